//! The Datadog provider (upstream's `metricproviders/datadog`).
//!
//! - `apiVersion: v1` (the default): `GET {address}/api/v1/query?from=&query=&to=` over the
//!   last `interval` (default `5m`), Unix seconds. The condition's `result` is the value of the
//!   last point of the first series (a number), or nil when there is none (use
//!   `default(result, 0)`); the measurement's value is that number, or the series' JSON.
//! - `apiVersion: v2`: `POST {address}/api/v2/query/scalar` with a `scalar_request` of the
//!   `queries` (or `query` as the query named `query`), the `formula`, and the `aggregator`
//!   (default `last`), in milliseconds. `result` is the first number column's value (a
//!   number), or — when the query groups `by {tag}` — the list of the groups' values, with
//!   `metadata.groups` naming them (at most 100: the 50 lowest and 50 highest, with
//!   `groups_truncated`); nil and `[]` when there is no data.
//! - Headers `DD-API-KEY` and `DD-APPLICATION-KEY`; `requestTimeout` (default `10s`).
//!
//! Credentials (upstream's order): with `secretRef.name`, only that Secret (`api-key`,
//! `app-key`, optional `address`), in the run's namespace when `secretRef.namespaced`, else in
//! the controller's; without, the environment (`DD_API_KEY`, `DD_APP_KEY` and `DD_ADDRESS`,
//! all three set), then the Secret `datadog` in the controller's namespace. The address
//! defaults to `https://api.datadoghq.com`.
//!
//! Difference from upstream: a v1 point whose value is null (no data in the last bucket) is
//! skipped, the last point with a value is used (upstream reads it as 0).

use super::http::{self, Request, Response};
use super::{Provider, ProviderContext, ProviderError, conclude, format_float, secrets};
use crate::analysis::condition::ValueWithText;
use crate::api::{AnalysisRun, DatadogMetric, Measurement, Metric};
use futures::future::BoxFuture;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

const PROVIDER: &str = "Datadog";
/// The default API address.
pub const DEFAULT_ADDRESS: &str = "https://api.datadoghq.com";
/// The Secret read when the metric names none.
pub const SECRET_NAME: &str = "datadog";
/// Secret key of the API key.
pub const API_KEY: &str = "api-key";
/// Secret key of the application key.
pub const APP_KEY: &str = "app-key";
/// Secret key of the address.
pub const ADDRESS_KEY: &str = "address";
const MAX_GROUPS_IN_METADATA: usize = 100;

/// Which API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApiVersion {
    V1,
    V2,
}

/// A validated Datadog metric.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    pub api_version: ApiVersion,
    /// The query window.
    pub interval: Duration,
    pub request_timeout: Duration,
    /// v2: query name → query (v1: `query` alone).
    pub queries: BTreeMap<String, String>,
    pub formula: Option<String>,
    pub aggregator: String,
}

/// Upstream's `validateIncomingProps`, plus the defaults.
pub fn settings(dd: &DatadogMetric) -> Result<Settings, ProviderError> {
    let query = dd.query.clone().filter(|q| !q.is_empty());
    let queries = dd.queries.clone().unwrap_or_default();
    let formula = dd.formula.clone().filter(|f| !f.is_empty());
    let aggregator = dd.aggregator.clone().filter(|a| !a.is_empty());
    let api_version = match dd.api_version.as_deref().unwrap_or("v1") {
        "" | "v1" => ApiVersion::V1,
        "v2" => ApiVersion::V2,
        other => {
            return Err(ProviderError::spec(format!(
                "datadog apiVersion {other:?} is not one of v1, v2"
            )));
        }
    };
    if query.is_none() && queries.is_empty() {
        return Err(ProviderError::spec(
            "Must have either a query or queries. Please review the Analysis Template.",
        ));
    }
    if query.is_some() && !queries.is_empty() {
        return Err(ProviderError::spec(
            "Cannot have both a query and queries. Please review the Analysis Template.",
        ));
    }
    if api_version == ApiVersion::V1 && query.is_none() {
        return Err(ProviderError::spec(
            "Query is empty. API Version v1 only supports using the query parameter in your Analysis Template.",
        ));
    }
    if formula.is_some() && queries.is_empty() {
        return Err(ProviderError::spec(
            "Formula are only valid when queries are set. Please review the Analysis Template.",
        ));
    }
    if formula.is_none() && queries.len() > 1 {
        return Err(ProviderError::spec(
            "When multiple queries are provided you must include a formula.",
        ));
    }
    if api_version == ApiVersion::V1 && aggregator.is_some() {
        return Err(ProviderError::spec(
            "Aggregator is not supported in v1. Please review the Analysis Template.",
        ));
    }
    let duration =
        |field: &str, v: Option<&str>, default: Duration| match v.filter(|s| !s.is_empty()) {
            None => Ok(default),
            Some(s) => crate::analysis::core::parse_duration(s)
                .map_err(|e| ProviderError::spec(format!("datadog {field}: {e}"))),
        };
    let interval = duration("interval", dd.interval.as_deref(), Duration::from_secs(300))?;
    let request_timeout = duration(
        "requestTimeout",
        dd.request_timeout.as_deref(),
        Duration::from_secs(10),
    )?;
    if request_timeout.is_zero() {
        return Err(ProviderError::spec(
            "Request timeout must be a positive duration (e.g. 30s). Please review the Analysis Template.",
        ));
    }
    let queries = match query {
        Some(q) => BTreeMap::from([("query".to_string(), q)]),
        None => queries,
    };
    Ok(Settings {
        api_version,
        interval,
        request_timeout,
        queries,
        formula,
        aggregator: aggregator.unwrap_or_else(|| "last".into()),
    })
}

/// Datadog credentials and address.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The API's base address (scheme and host).
    pub address: String,
    pub api_key: String,
    pub app_key: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

fn from_secret(data: &secrets::SecretData) -> Option<Credentials> {
    let api_key = secrets::text(data, API_KEY).filter(|k| !k.is_empty())?;
    let app_key = secrets::text(data, APP_KEY).filter(|k| !k.is_empty())?;
    Some(Credentials {
        address: secrets::text(data, ADDRESS_KEY).unwrap_or_default(),
        api_key,
        app_key,
    })
}

/// Upstream's `findCredentials` (see the module docs), for a run in `run_namespace`.
pub async fn find_credentials(
    dd: &DatadogMetric,
    ctx: &ProviderContext,
    run_namespace: &str,
) -> Result<Credentials, ProviderError> {
    let secret_ref = dd.secret_ref.clone().unwrap_or_default();
    let name = secret_ref.name.clone().filter(|n| !n.is_empty());
    let namespaced = secret_ref.namespaced == Some(true);
    let not_found = |why: String| {
        ProviderError::Credentials(format!(
            "failed to find the credentials for datadog metrics provider: {why}"
        ))
    };
    let read = |ns: String, name: String| async move {
        let data = ctx.secrets.get(&ns, &name).await?;
        from_secret(&data).ok_or_else(|| {
            not_found(format!(
                "secret \"{name}\" in namespace \"{ns}\" has no non-empty '{API_KEY}' and '{APP_KEY}'"
            ))
        })
    };
    if namespaced {
        let name = name.ok_or_else(|| {
            ProviderError::spec("secret name is required for namespaced credentials")
        })?;
        return read(run_namespace.to_string(), name).await;
    }
    if let Some(name) = name {
        return read(ctx.controller_namespace.clone(), name).await;
    }
    let env = (
        ctx.vars.get("DD_API_KEY"),
        ctx.vars.get("DD_APP_KEY"),
        ctx.vars.get("DD_ADDRESS"),
    );
    if let (Some(api_key), Some(app_key), Some(address)) = env
        && !api_key.is_empty()
        && !app_key.is_empty()
    {
        return Ok(Credentials {
            address,
            api_key,
            app_key,
        });
    }
    read(ctx.controller_namespace.clone(), SECRET_NAME.to_string())
        .await
        .map_err(|e| match e {
            ProviderError::Secret(s) => not_found(format!(
                "DD_API_KEY, DD_APP_KEY and DD_ADDRESS are not all set, and {s}"
            )),
            other => other,
        })
}

/// The request for a measurement at `now` (Unix seconds).
pub fn build_request(
    s: &Settings,
    creds: &Credentials,
    now: i64,
) -> Result<Request, ProviderError> {
    let base = if creds.address.is_empty() {
        DEFAULT_ADDRESS
    } else {
        creds.address.as_str()
    };
    if !http::is_url(base) {
        return Err(ProviderError::spec(format!(
            "datadog address {base:?} is not a URL"
        )));
    }
    let window = i64::try_from(s.interval.as_secs()).unwrap_or(i64::MAX);
    let from = now.saturating_sub(window);
    let req = match s.api_version {
        ApiVersion::V1 => {
            let query = s.queries.values().next().cloned().unwrap_or_default();
            let qs = http::query_string([
                ("from", from.to_string().as_str()),
                ("query", query.as_str()),
                ("to", now.to_string().as_str()),
            ]);
            let mut r = Request::get(format!("{}?{qs}", http::join(base, "/api/v1/query")));
            r.headers
                .push(("Content-Type".into(), "application/json".into()));
            r
        }
        ApiVersion::V2 => {
            let queries: Vec<Value> = s
                .queries
                .iter()
                .map(|(name, q)| {
                    serde_json::json!({
                        "aggregator": s.aggregator,
                        "data_source": "metrics",
                        "name": name,
                        "query": q,
                    })
                })
                .collect();
            let formulas: Vec<Value> = s
                .formula
                .iter()
                .map(|f| serde_json::json!({ "formula": f }))
                .collect();
            let body = serde_json::json!({
                "data": {
                    "attributes": {
                        "from": from.saturating_mul(1000),
                        "to": now.saturating_mul(1000),
                        "queries": queries,
                        "formulas": formulas,
                    },
                    "type": "scalar_request",
                }
            });
            Request::post(
                http::join(base, "/api/v2/query/scalar"),
                "application/json",
                body.to_string().into_bytes(),
            )
        }
    };
    Ok(req
        .header("DD-API-KEY", creds.api_key.clone())
        .header("DD-APPLICATION-KEY", creds.app_key.clone()))
}

/// A parsed answer: the condition's `result` with the measurement's value, and metadata.
pub type Parsed = (ValueWithText, Option<BTreeMap<String, String>>);

fn check_status(resp: &Response) -> Result<Value, ProviderError> {
    if resp.status != 200 {
        return Err(resp.status_error(PROVIDER));
    }
    serde_json::from_str(&resp.body).map_err(|e| ProviderError::parse(PROVIDER, e))
}

/// Parses a v1 `/api/v1/query` answer.
pub fn parse_v1(resp: &Response) -> Result<Parsed, ProviderError> {
    let body = check_status(resp)?;
    if let Some(errors) = body.get("errors").filter(|e| !e.is_null()) {
        return Err(ProviderError::api(
            PROVIDER,
            format!("There were errors in your query: {errors}"),
        ));
    }
    let series = body.get("series").cloned().unwrap_or(Value::Null);
    let points = series
        .as_array()
        .and_then(|s| s.first())
        .and_then(|s| s.get("pointlist"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut last = None;
    for p in points.iter().rev() {
        let pair = p
            .as_array()
            .filter(|a| a.len() == 2)
            .ok_or_else(|| ProviderError::parse(PROVIDER, "Datapoint does not have 2 values"))?;
        if let Some(v) = pair[1].as_f64() {
            last = Some(v);
            break;
        }
        if !pair[1].is_null() {
            return Err(ProviderError::parse(
                PROVIDER,
                format!("point value {} is not a number", pair[1]),
            ));
        }
    }
    Ok(match last {
        Some(v) => (
            ValueWithText {
                value: expr::Value::Float(v),
                text: format_float(v),
            },
            None,
        ),
        None => (
            ValueWithText {
                value: expr::Value::Nil,
                text: series.to_string(),
            },
            None,
        ),
    })
}

fn group_label(group_columns: &[&Value], row: usize) -> Option<String> {
    let mut parts = Vec::new();
    for col in group_columns {
        let tags = col.get("values")?.as_array()?.get(row)?.as_array()?;
        if tags.is_empty() {
            return None;
        }
        for t in tags {
            parts.push(t.as_str()?.to_string());
        }
    }
    Some(parts.join(","))
}

fn groups_json(groups: &[(String, f64)]) -> (String, bool) {
    let mut shown: Vec<(String, f64)> = groups.to_vec();
    let truncated = shown.len() > MAX_GROUPS_IN_METADATA;
    if truncated {
        shown.sort_by(|a, b| a.1.total_cmp(&b.1));
        let low = MAX_GROUPS_IN_METADATA / 2;
        let high = MAX_GROUPS_IN_METADATA - low;
        let tail = shown.split_off(shown.len() - high);
        shown.truncate(low);
        shown.extend(tail);
    }
    let items: Vec<String> = shown
        .iter()
        .map(|(name, v)| {
            format!(
                "{{\"name\":{},\"value\":{}}}",
                Value::String(name.clone()),
                format_float(*v)
            )
        })
        .collect();
    (format!("[{}]", items.join(",")), truncated)
}

/// Parses a v2 `/api/v2/query/scalar` answer.
pub fn parse_v2(resp: &Response) -> Result<Parsed, ProviderError> {
    let body = check_status(resp)?;
    let data = body.get("data").cloned().unwrap_or(Value::Null);
    if let Some(errors) = data
        .get("errors")
        .and_then(Value::as_str)
        .filter(|e| !e.is_empty())
    {
        return Err(ProviderError::api(
            PROVIDER,
            format!("There were errors in your query: {errors}"),
        ));
    }
    if let Some(errors) = body
        .get("errors")
        .and_then(Value::as_array)
        .filter(|e| !e.is_empty())
    {
        let text: Vec<String> = errors
            .iter()
            .map(|e| {
                e.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| e.to_string())
            })
            .collect();
        return Err(ProviderError::api(
            PROVIDER,
            format!("There were errors in your query: {}", text.join("; ")),
        ));
    }
    let columns = data
        .pointer("/attributes/columns")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let kind = |c: &Value| {
        c.get("type")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let number = columns
        .iter()
        .find(|c| matches!(kind(c).as_str(), "" | "number"));
    let group_columns: Vec<&Value> = columns.iter().filter(|c| kind(c) == "group").collect();
    let grouped = !group_columns.is_empty();
    let mut values = Vec::new();
    let mut groups = Vec::new();
    if let Some(col) = number {
        let name = col.get("name").and_then(Value::as_str).unwrap_or_default();
        for (i, raw) in col
            .get("values")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            if raw.is_null() {
                continue;
            }
            let v = raw.as_f64().ok_or_else(|| {
                ProviderError::parse(
                    PROVIDER,
                    format!("could not parse numeric value {raw} in column {name:?}"),
                )
            })?;
            values.push(v);
            if grouped {
                let label = group_label(&group_columns, i).ok_or_else(|| {
                    ProviderError::parse(
                        PROVIDER,
                        format!("could not parse group label at index {i}"),
                    )
                })?;
                groups.push((label, v));
            }
        }
    }
    if values.is_empty() {
        return Ok((
            ValueWithText {
                value: expr::Value::Nil,
                text: "[]".into(),
            },
            None,
        ));
    }
    if !grouped {
        return Ok((
            ValueWithText {
                value: expr::Value::Float(values[0]),
                text: format_float(values[0]),
            },
            None,
        ));
    }
    let (json, truncated) = groups_json(&groups);
    let mut md = BTreeMap::from([("groups".to_string(), json)]);
    if truncated {
        md.insert("groups_truncated".into(), "true".into());
    }
    Ok((
        ValueWithText {
            value: super::float_list(&values),
            text: format!(
                "[{}]",
                values
                    .iter()
                    .map(|v| format_float(*v))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        },
        Some(md),
    ))
}

/// A configured Datadog query.
pub struct DatadogProvider {
    spec: DatadogMetric,
    settings: Settings,
    ctx: ProviderContext,
}

impl DatadogProvider {
    /// Checks the spec; credentials are looked up at measurement time.
    pub fn new(spec: &DatadogMetric, ctx: ProviderContext) -> Result<Self, ProviderError> {
        Ok(DatadogProvider {
            settings: settings(spec)?,
            spec: spec.clone(),
            ctx,
        })
    }

    async fn measure(&self, run: &AnalysisRun) -> Result<Parsed, ProviderError> {
        let ns = run.namespace().unwrap_or_default();
        let creds = find_credentials(&self.spec, &self.ctx, &ns).await?;
        let req = build_request(&self.settings, &creds, Timestamp::now().as_second())?;
        let resp = http::send(&req, self.settings.request_timeout).await?;
        match self.settings.api_version {
            ApiVersion::V1 => parse_v1(&resp),
            ApiVersion::V2 => parse_v2(&resp),
        }
    }
}

impl Provider for DatadogProvider {
    fn kind(&self) -> &'static str {
        PROVIDER
    }

    fn deadline(&self) -> Duration {
        self.settings.request_timeout + Duration::from_secs(15)
    }

    fn run<'a>(&'a self, run: &'a AnalysisRun, metric: &'a Metric) -> BoxFuture<'a, Measurement> {
        Box::pin(async move {
            let started = super::started_now();
            conclude(started, metric, self.measure(run).await)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn dd(v: Value) -> DatadogMetric {
        serde_json::from_value(v).unwrap()
    }

    fn ok(body: &str) -> Response {
        Response {
            status: 200,
            body: body.into(),
        }
    }

    fn creds() -> Credentials {
        Credentials {
            address: "http://dd.local:8080/".into(),
            api_key: "api".into(),
            app_key: "app".into(),
        }
    }

    #[test]
    fn validation_follows_upstream() {
        let cases = [
            (json!({}), Some("Must have either a query or queries")),
            (
                json!({"query": "q", "queries": {"a": "x"}, "apiVersion": "v2"}),
                Some("Cannot have both"),
            ),
            (
                json!({"queries": {"a": "x"}}),
                Some("API Version v1 only supports"),
            ),
            (
                json!({"formula": "a", "query": "q", "apiVersion": "v2"}),
                Some("Formula are only valid"),
            ),
            (
                json!({"queries": {"a": "x", "b": "y"}, "apiVersion": "v2"}),
                Some("you must include a formula"),
            ),
            (
                json!({"query": "q", "aggregator": "sum"}),
                Some("Aggregator is not supported in v1"),
            ),
            (
                json!({"query": "q", "requestTimeout": "0s"}),
                Some("positive duration"),
            ),
            (json!({"query": "q", "interval": "5x"}), Some("interval")),
            (json!({"query": "q", "apiVersion": "v3"}), Some("v3")),
            (json!({"query": "q"}), None),
            (
                json!({"queries": {"a": "x", "b": "y"}, "formula": "a/b", "apiVersion": "v2"}),
                None,
            ),
        ];
        for (spec, want) in cases {
            let got = settings(&dd(spec.clone()));
            match want {
                None => assert!(got.is_ok(), "{spec}: {got:?}"),
                Some(w) => {
                    let e = got.unwrap_err().to_string();
                    assert!(e.contains(w), "{spec}: {e}");
                }
            }
        }
        let s = settings(&dd(json!({"query": "q"}))).unwrap();
        assert_eq!(s.api_version, ApiVersion::V1);
        assert_eq!(s.interval, Duration::from_secs(300));
        assert_eq!(s.request_timeout, Duration::from_secs(10));
        assert_eq!(s.aggregator, "last");
    }

    #[test]
    fn v1_request() {
        let s = settings(&dd(
            json!({"query": "avg:cpu{a:b} by {c}", "interval": "10m"}),
        ))
        .unwrap();
        let r = build_request(&s, &creds(), 1_599_076_435).unwrap();
        assert_eq!(r.method, reqwest::Method::GET);
        assert_eq!(
            r.url,
            "http://dd.local:8080/api/v1/query?from=1599075835&query=avg%3Acpu%7Ba%3Ab%7D%20by%20%7Bc%7D&to=1599076435"
        );
        assert_eq!(r.header_value("dd-api-key"), Some("api"));
        assert_eq!(r.header_value("DD-APPLICATION-KEY"), Some("app"));
        let no_address = Credentials {
            address: String::new(),
            ..creds()
        };
        let r = build_request(&s, &no_address, 100_000).unwrap();
        assert!(r.url.starts_with("https://api.datadoghq.com/api/v1/query?"));
    }

    #[test]
    fn v2_request() {
        let s = settings(&dd(
            json!({"apiVersion": "v2", "queries": {"b": "sum:y", "a": "sum:x"},
            "formula": "a/b", "aggregator": "sum"}),
        ))
        .unwrap();
        let r = build_request(&s, &creds(), 1_599_076_435).unwrap();
        assert_eq!(r.method, reqwest::Method::POST);
        assert_eq!(r.url, "http://dd.local:8080/api/v2/query/scalar");
        assert_eq!(r.header_value("content-type"), Some("application/json"));
        let body: Value = serde_json::from_slice(r.body.as_ref().unwrap()).unwrap();
        assert_eq!(
            body,
            json!({"data": {"type": "scalar_request", "attributes": {
                "from": 1_599_076_135_000i64, "to": 1_599_076_435_000i64,
                "queries": [
                    {"aggregator": "sum", "data_source": "metrics", "name": "a", "query": "sum:x"},
                    {"aggregator": "sum", "data_source": "metrics", "name": "b", "query": "sum:y"}],
                "formulas": [{"formula": "a/b"}]}}})
        );
        // A single `query` is the query named `query`; no formula is an empty list.
        let s = settings(&dd(json!({"apiVersion": "v2", "query": "avg:z"}))).unwrap();
        let r = build_request(&s, &creds(), 1000).unwrap();
        let body: Value = serde_json::from_slice(r.body.as_ref().unwrap()).unwrap();
        assert_eq!(body["data"]["attributes"]["formulas"], json!([]));
        assert_eq!(
            body["data"]["attributes"]["queries"][0],
            json!({"aggregator": "last", "data_source": "metrics", "name": "query", "query": "avg:z"})
        );
    }

    #[test]
    fn v1_responses() {
        let (v, _) = parse_v1(&ok(
            r#"{"series":[{"pointlist":[[1598867910000,0.0020008318672513122],[1598867925000,0.0003332881882246533]]}]}"#,
        ))
        .unwrap();
        assert_eq!(v.value, expr::Value::Float(0.0003332881882246533));
        assert_eq!(v.text, "0.0003332881882246533");
        // The last point without a value is skipped.
        let (v, _) = parse_v1(&ok(r#"{"series":[{"pointlist":[[1,0.5],[2,null]]}]}"#)).unwrap();
        assert_eq!(v.text, "0.5");
        for (body, text) in [
            (r#"{"series":[]}"#, "[]"),
            (r#"{"series":[{"pointlist":[]}]}"#, r#"[{"pointlist":[]}]"#),
            (r#"{}"#, "null"),
        ] {
            let (v, _) = parse_v1(&ok(body)).unwrap();
            assert_eq!(v.value, expr::Value::Nil, "{body}");
            assert_eq!(v.text, text);
        }
        assert!(
            parse_v1(&ok(r#"{"series":[{"pointlist":[[1]]}]}"#))
                .unwrap_err()
                .to_string()
                .contains("2 values")
        );
        let e = parse_v1(&Response {
            status: 403,
            body: r#"{"errors": ["Forbidden"]}"#.into(),
        })
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"Datadog returned HTTP 403 (authentication failed): {"errors": ["Forbidden"]}"#
        );
        let e = parse_v1(&Response {
            status: 200,
            body: "<html>".into(),
        })
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("could not parse the Datadog response")
        );
    }

    #[test]
    fn v2_responses() {
        let (v, md) = parse_v2(&ok(
            r#"{"data": {"attributes": {"columns": [ {"values": [0.0006332881882246533]}]}}}"#,
        ))
        .unwrap();
        assert_eq!(v.value, expr::Value::Float(0.0006332881882246533));
        assert_eq!(md, None);
        let (v, _) = parse_v2(&ok(
            r#"{"data": {"attributes": {"columns": [{"name":"a","type":"number","values": []}]}}}"#,
        ))
        .unwrap();
        assert_eq!((v.value, v.text.as_str()), (expr::Value::Nil, "[]"));
        let (v, _) = parse_v2(&ok(
            r#"{"data": {"attributes": {"columns": [{"type":"number","values": [null]}]}}}"#,
        ))
        .unwrap();
        assert_eq!(v.value, expr::Value::Nil);
        let e = parse_v2(&ok(r#"{"data": {"errors": "bad query"}}"#)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Datadog: There were errors in your query: bad query"
        );
        let e = parse_v2(&ok(
            r#"{"data": {"attributes": {"columns": [{"name":"q","type":"number","values": ["x"]}]}}}"#,
        ))
        .unwrap_err();
        assert!(
            e.to_string().contains("could not parse numeric value"),
            "{e}"
        );
    }

    #[test]
    fn v2_groups() {
        let (v, md) = parse_v2(&ok(r#"{"data": {"type": "scalar_response", "attributes": {"columns": [
            {"name": "env", "type": "group", "values": [["prod"], ["prod"], ["dev"]]},
            {"name": "resource_name", "type": "group", "values": [["GET /a"], ["GET /b"], ["GET /c"]]},
            {"name": "query", "type": "number", "values": [0.5, null, 1]}]}}}"#))
        .unwrap();
        assert_eq!(v.text, "[0.5,1]");
        assert_eq!(
            v.value,
            expr::Value::Array(vec![expr::Value::Float(0.5), expr::Value::Float(1.0)])
        );
        let md = md.unwrap();
        assert_eq!(
            md["groups"],
            r#"[{"name":"prod,GET /a","value":0.5},{"name":"dev,GET /c","value":1}]"#
        );
        assert!(!md.contains_key("groups_truncated"));
        // One group is still a list.
        let (v, _) = parse_v2(&ok(r#"{"data": {"attributes": {"columns": [
            {"name": "host", "type": "group", "values": [["a"]]},
            {"name": "q", "type": "number", "values": [3]}]}}}"#))
        .unwrap();
        assert_eq!(v.value, expr::Value::Array(vec![expr::Value::Float(3.0)]));
        // A missing label is an error, not a blank name.
        assert!(
            parse_v2(&ok(r#"{"data": {"attributes": {"columns": [
            {"name": "host", "type": "group", "values": [[]]},
            {"name": "q", "type": "number", "values": [3]}]}}}"#))
            .is_err()
        );
        // More than 100 groups: the extremes are kept.
        let groups: Vec<(String, f64)> = (0..150).map(|i| (format!("h{i}"), i as f64)).collect();
        let (json, truncated) = groups_json(&groups);
        assert!(truncated);
        let parsed: Vec<Value> = serde_json::from_str(&json).unwrap();
        assert_eq!(parsed.len(), 100);
        assert_eq!(parsed[0]["name"], "h0");
        assert_eq!(parsed[99]["name"], "h149");
    }

    #[tokio::test]
    async fn credential_lookup_order() {
        use super::super::Vars;
        use super::super::secrets::StaticSecrets;
        use std::sync::Arc;
        let secrets = StaticSecrets::default()
            .with(
                "rollouts",
                "datadog",
                &[("api-key", "k1"), ("app-key", "a1")],
            )
            .with(
                "rollouts",
                "custom",
                &[
                    ("api-key", "k2"),
                    ("app-key", "a2"),
                    ("address", "http://x"),
                ],
            )
            .with("app", "mine", &[("api-key", "k3"), ("app-key", "a3")])
            .with("app", "empty", &[("api-key", "")]);
        let ctx = |vars: Vars| ProviderContext {
            secrets: Arc::new(StaticSecrets(secrets.0.clone())),
            vars,
            controller_namespace: "rollouts".into(),
            aws: Arc::default(),
        };
        let none = ctx(Vars::fixed(Vec::<(&str, &str)>::new()));
        let c = find_credentials(&dd(json!({})), &none, "app")
            .await
            .unwrap();
        assert_eq!((c.api_key.as_str(), c.address.as_str()), ("k1", ""));
        let c = find_credentials(&dd(json!({"secretRef": {"name": "custom"}})), &none, "app")
            .await
            .unwrap();
        assert_eq!((c.api_key.as_str(), c.address.as_str()), ("k2", "http://x"));
        let c = find_credentials(
            &dd(json!({"secretRef": {"name": "mine", "namespaced": true}})),
            &none,
            "app",
        )
        .await
        .unwrap();
        assert_eq!(c.api_key, "k3");
        let e = find_credentials(
            &dd(json!({"secretRef": {"namespaced": true}})),
            &none,
            "app",
        )
        .await
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "secret name is required for namespaced credentials"
        );
        let e = find_credentials(
            &dd(json!({"secretRef": {"name": "empty", "namespaced": true}})),
            &none,
            "app",
        )
        .await
        .unwrap_err();
        assert!(e.to_string().contains("no non-empty 'api-key'"), "{e}");
        // A named Secret that does not exist is not replaced by the environment.
        let env = ctx(Vars::fixed([
            ("DD_API_KEY", "ek"),
            ("DD_APP_KEY", "ea"),
            ("DD_ADDRESS", "http://env"),
        ]));
        let e = find_credentials(&dd(json!({"secretRef": {"name": "nope"}})), &env, "app")
            .await
            .unwrap_err();
        assert!(e.to_string().contains("\"nope\" not found"), "{e}");
        let c = find_credentials(&dd(json!({})), &env, "app").await.unwrap();
        assert_eq!(
            (c.api_key.as_str(), c.address.as_str()),
            ("ek", "http://env")
        );
        // All three variables are needed.
        let partial = ctx(Vars::fixed([("DD_API_KEY", "ek"), ("DD_APP_KEY", "ea")]));
        let c = find_credentials(&dd(json!({})), &partial, "app")
            .await
            .unwrap();
        assert_eq!(c.api_key, "k1");
        let empty = ProviderContext {
            secrets: Arc::new(StaticSecrets::default()),
            ..none.clone()
        };
        let e = find_credentials(&dd(json!({})), &empty, "app")
            .await
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "failed to find the credentials for datadog metrics provider: DD_API_KEY, DD_APP_KEY \
             and DD_ADDRESS are not all set, and secrets \"datadog\" not found in namespace \"rollouts\""
        );
    }
}
