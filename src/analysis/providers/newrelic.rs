//! The New Relic provider (upstream's `metricproviders/newrelic`): an NRQL query over
//! NerdGraph, New Relic's GraphQL API.
//!
//! `POST` to NerdGraph (`https://api.newrelic.com/graphql`, `https://api.eu.newrelic.com/graphql`
//! for region `eu`, or the profile's `base-url-nerdgraph`) with header `Api-Key` and the
//! GraphQL query `actor.account(id).nrql(query, timeout).results`; `timeout` is in seconds
//! (default 5).
//!
//! The profile is the Secret named by `profile` (default `newrelic`) in the controller's
//! namespace: `personal-api-key`, `account-id`, optional `region` (`us`, `eu`) and
//! `base-url-nerdgraph` (`base-url-rest` is accepted and unused: NRQL goes through NerdGraph).
//!
//! The condition's `result` is the single result row (a map: `result.successRate`,
//! `result['average.duration']`), or the list of rows when there are several; the
//! measurement's value is its JSON. No row (or an empty one) is an Error. The metric's result
//! has the metadata `ResolvedNewRelicQuery`.

use super::http::{self, Request, Response};
use super::{Provider, ProviderContext, ProviderError, conclude, secrets};
use crate::analysis::condition::{self, ValueWithText};
use crate::api::{AnalysisRun, Measurement, Metric, NewRelicMetric};
use futures::future::BoxFuture;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

const PROVIDER: &str = "NewRelic";
/// The profile Secret read when the metric names none.
pub const DEFAULT_PROFILE: &str = "newrelic";
/// Result metadata key holding the query (upstream's).
pub const RESOLVED_QUERY_KEY: &str = "ResolvedNewRelicQuery";
const DEFAULT_NRQL_TIMEOUT: i64 = 5;

/// The GraphQL document (upstream's).
pub const NRQL_QUERY: &str = "query (\n  $query: Nrql!, \n  $accountId: Int!,\n  $timeout: Seconds!\n)\n{\n  actor {\n    account(id: $accountId) {\n      nrql(query: $query, timeout: $timeout) {\n        results\n      }\n    }\n  }\n}\n";

/// A New Relic account profile.
#[derive(Clone, PartialEq, Eq)]
pub struct Profile {
    pub api_key: String,
    pub account_id: i64,
    /// The NerdGraph URL.
    pub nerdgraph_url: String,
}

impl std::fmt::Debug for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Profile")
            .field("account_id", &self.account_id)
            .field("nerdgraph_url", &self.nerdgraph_url)
            .finish_non_exhaustive()
    }
}

/// The NerdGraph URL of a region.
pub fn region_url(region: &str) -> Result<&'static str, ProviderError> {
    match region.to_ascii_lowercase().as_str() {
        "" | "us" => Ok("https://api.newrelic.com/graphql"),
        "eu" => Ok("https://api.eu.newrelic.com/graphql"),
        "staging" => Ok("https://staging-api.newrelic.com/graphql"),
        other => Err(ProviderError::Credentials(format!(
            "invalid New Relic region {other:?} (us, eu)"
        ))),
    }
}

/// The profile in a Secret's data.
pub fn profile(data: &secrets::SecretData) -> Result<Profile, ProviderError> {
    let api_key = secrets::text(data, "personal-api-key").unwrap_or_default();
    let account = secrets::text(data, "account-id").unwrap_or_default();
    if api_key.is_empty() || account.is_empty() {
        return Err(ProviderError::Credentials(
            "account ID or personal API key not found".into(),
        ));
    }
    let account_id = account
        .trim()
        .parse::<i64>()
        .map_err(|e| ProviderError::Credentials(format!("could not parse account ID: {e}")))?;
    let region = secrets::text(data, "region").unwrap_or_else(|| "us".into());
    let nerdgraph_url = match secrets::text(data, "base-url-nerdgraph").filter(|u| !u.is_empty()) {
        Some(u) => u,
        None => region_url(&region)?.to_string(),
    };
    Ok(Profile {
        api_key,
        account_id,
        nerdgraph_url,
    })
}

/// The NRQL timeout in seconds.
pub fn nrql_timeout(spec: &NewRelicMetric) -> Result<i64, ProviderError> {
    match spec.timeout {
        None => Ok(DEFAULT_NRQL_TIMEOUT),
        Some(t) if t < 0 => Err(ProviderError::spec(
            "timeout value needs to be a positive value",
        )),
        Some(t) => Ok(t),
    }
}

/// The NerdGraph request.
pub fn build_request(spec: &NewRelicMetric, p: &Profile) -> Result<Request, ProviderError> {
    let timeout = nrql_timeout(spec)?;
    let body = json!({
        "query": NRQL_QUERY,
        "variables": {
            "accountId": p.account_id,
            "query": spec.query.clone().unwrap_or_default(),
            "timeout": timeout,
        }
    });
    Ok(Request::post(
        p.nerdgraph_url.clone(),
        "application/json",
        body.to_string().into_bytes(),
    )
    .header("Api-Key", p.api_key.clone())
    .header(
        "User-Agent",
        format!("rollouts/{}", env!("CARGO_PKG_VERSION")),
    ))
}

/// Parses NerdGraph's answer into the condition's `result` and the measurement's value.
pub fn parse_response(resp: &Response) -> Result<ValueWithText, ProviderError> {
    let body: Option<Value> = serde_json::from_str(&resp.body).ok();
    if let Some(errors) = body
        .as_ref()
        .and_then(|b| b.get("errors"))
        .and_then(Value::as_array)
        .filter(|e| !e.is_empty())
    {
        let messages: Vec<String> = errors
            .iter()
            .map(|e| {
                e.get("message")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .unwrap_or_else(|| e.to_string())
            })
            .collect();
        return Err(ProviderError::api(PROVIDER, messages.join("; ")));
    }
    if !resp.ok() {
        return Err(resp.status_error(PROVIDER));
    }
    let body = body.ok_or_else(|| ProviderError::parse(PROVIDER, "the body is not JSON"))?;
    let results = body
        .pointer("/data/actor/account/nrql/results")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let no_results = || ProviderError::api(PROVIDER, "no results returned from NRQL query");
    let value = match results.as_slice() {
        [] => return Err(no_results()),
        [one] => {
            if one.as_object().is_none_or(|o| o.is_empty()) {
                return Err(no_results());
            }
            one.clone()
        }
        _ => Value::Array(results),
    };
    Ok(ValueWithText {
        value: condition::json_to_value(&value),
        text: value.to_string(),
    })
}

/// A configured NRQL query.
pub struct NewRelicProvider {
    spec: NewRelicMetric,
    ctx: ProviderContext,
}

impl NewRelicProvider {
    /// Checks the spec; the profile is read at measurement time.
    pub fn new(spec: &NewRelicMetric, ctx: ProviderContext) -> Result<Self, ProviderError> {
        if spec.query.as_deref().is_none_or(|q| q.trim().is_empty()) {
            return Err(ProviderError::spec("newRelic query is empty"));
        }
        nrql_timeout(spec)?;
        Ok(NewRelicProvider {
            spec: spec.clone(),
            ctx,
        })
    }

    fn http_timeout(&self) -> Duration {
        // The NRQL timeout bounds the query on New Relic's side; allow for the round trip.
        let t = nrql_timeout(&self.spec).unwrap_or(DEFAULT_NRQL_TIMEOUT);
        Duration::from_secs(u64::try_from(t).unwrap_or(5) + 10)
    }

    async fn measure(&self) -> Result<ValueWithText, ProviderError> {
        let name = self
            .spec
            .profile
            .clone()
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| DEFAULT_PROFILE.into());
        let data = self
            .ctx
            .secrets
            .get(&self.ctx.controller_namespace, &name)
            .await?;
        let p = profile(&data)?;
        let req = build_request(&self.spec, &p)?;
        parse_response(&http::send(&req, self.http_timeout()).await?)
    }
}

impl Provider for NewRelicProvider {
    fn kind(&self) -> &'static str {
        PROVIDER
    }

    fn metadata(&self, _metric: &Metric) -> Option<BTreeMap<String, String>> {
        self.spec
            .query
            .as_ref()
            .filter(|q| !q.is_empty())
            .map(|q| BTreeMap::from([(RESOLVED_QUERY_KEY.to_string(), q.clone())]))
    }

    fn deadline(&self) -> Duration {
        self.http_timeout() + Duration::from_secs(15)
    }

    fn run<'a>(&'a self, _run: &'a AnalysisRun, metric: &'a Metric) -> BoxFuture<'a, Measurement> {
        Box::pin(async move {
            let started = super::started_now();
            conclude(started, metric, self.measure().await.map(|v| (v, None)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(pairs: &[(&str, &str)]) -> secrets::SecretData {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect()
    }

    fn ok(body: &str) -> Response {
        Response {
            status: 200,
            body: body.into(),
        }
    }

    #[test]
    fn profiles() {
        let p = profile(&data(&[("personal-api-key", "k"), ("account-id", "12345")])).unwrap();
        assert_eq!(p.account_id, 12345);
        assert_eq!(p.nerdgraph_url, "https://api.newrelic.com/graphql");
        let p = profile(&data(&[
            ("personal-api-key", "k"),
            ("account-id", "1"),
            ("region", "eu"),
        ]))
        .unwrap();
        assert_eq!(p.nerdgraph_url, "https://api.eu.newrelic.com/graphql");
        let p = profile(&data(&[
            ("personal-api-key", "k"),
            ("account-id", "1"),
            ("base-url-nerdgraph", "http://proxy/graphql"),
        ]))
        .unwrap();
        assert_eq!(p.nerdgraph_url, "http://proxy/graphql");
        assert_eq!(
            profile(&data(&[("personal-api-key", "k")]))
                .unwrap_err()
                .to_string(),
            "account ID or personal API key not found"
        );
        assert!(
            profile(&data(&[("personal-api-key", "k"), ("account-id", "x1")]))
                .unwrap_err()
                .to_string()
                .starts_with("could not parse account ID")
        );
        assert!(
            profile(&data(&[
                ("personal-api-key", "k"),
                ("account-id", "1"),
                ("region", "mars")
            ]))
            .is_err()
        );
    }

    #[test]
    fn request() {
        let spec = NewRelicMetric {
            query: Some("FROM Transaction SELECT count(*)".into()),
            timeout: Some(10),
            ..Default::default()
        };
        let p = Profile {
            api_key: "NRAK-1".into(),
            account_id: 42,
            nerdgraph_url: "https://api.newrelic.com/graphql".into(),
        };
        let r = build_request(&spec, &p).unwrap();
        assert_eq!(r.url, "https://api.newrelic.com/graphql");
        assert_eq!(r.header_value("api-key"), Some("NRAK-1"));
        let body: Value = serde_json::from_slice(r.body.as_ref().unwrap()).unwrap();
        assert_eq!(
            body["variables"],
            json!({"accountId": 42,
            "query": "FROM Transaction SELECT count(*)", "timeout": 10})
        );
        assert!(
            body["query"]
                .as_str()
                .unwrap()
                .contains("nrql(query: $query, timeout: $timeout)")
        );
        let defaulted = NewRelicMetric {
            timeout: None,
            ..spec.clone()
        };
        let body: Value = serde_json::from_slice(
            build_request(&defaulted, &p)
                .unwrap()
                .body
                .as_ref()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(body["variables"]["timeout"], json!(5));
        let negative = NewRelicMetric {
            timeout: Some(-1),
            ..spec
        };
        assert!(build_request(&negative, &p).is_err());
    }

    #[test]
    fn responses() {
        let one = ok(
            r#"{"data":{"actor":{"account":{"nrql":{"results":[{"successRate":99.5,"count":10}]}}}}}"#,
        );
        let v = parse_response(&one).unwrap();
        assert!(condition::eval_condition(&v.value, "result.successRate >= 95").unwrap());
        assert!(v.text.contains("\"successRate\":99.5"));
        let many = ok(r#"{"data":{"actor":{"account":{"nrql":{"results":[{"a":1},{"a":2}]}}}}}"#);
        let v = parse_response(&many).unwrap();
        assert!(condition::eval_condition(&v.value, "result[1].a == 2").unwrap());
        let dotted =
            ok(r#"{"data":{"actor":{"account":{"nrql":{"results":[{"average.duration":0.2}]}}}}}"#);
        let v = parse_response(&dotted).unwrap();
        assert!(condition::eval_condition(&v.value, "result['average.duration'] < 0.5").unwrap());
        for empty in [
            r#"{"data":{"actor":{"account":{"nrql":{"results":[]}}}}}"#,
            r#"{"data":{"actor":{"account":{"nrql":{"results":[{}]}}}}}"#,
            r#"{"data":{"actor":{"account":{"nrql":null}}}}"#,
        ] {
            assert_eq!(
                parse_response(&ok(empty)).unwrap_err().to_string(),
                "NewRelic: no results returned from NRQL query"
            );
        }
        let e = parse_response(&ok(
            r#"{"data":{"actor":{"account":{"nrql":null}}},"errors":[{"message":"NRQL Syntax Error: Error at line 1"}]}"#,
        ))
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "NewRelic: NRQL Syntax Error: Error at line 1"
        );
        let e = parse_response(&Response {
            status: 503,
            body: "upstream connect error".into(),
        })
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "NewRelic returned HTTP 503 (server error): upstream connect error"
        );
    }
}
