//! The Prometheus provider (upstream's `metricproviders/prometheus`), on `prometheus-http-query`.
//!
//! `address` (else `ARGO_ROLLOUTS_PROMETHEUS_ADDRESS`), `query`, `timeout` (seconds, default
//! 30), `headers`, `insecure`, `authentication.basicAuth`/`oauth2`, and `rangeQuery` (`start` and
//! `end` are expr expressions such as `now() - duration("5m")`, `step` a duration).
//!
//! The condition's `result` is a number for a scalar, a list of numbers for a vector (one per
//! series, as upstream), and the flattened list of every sample for a range query. The
//! measurement's value is the number, or `[v1,v2,...]`. Prometheus warnings go to the
//! measurement's `warnings` metadata.
//!
//! [`PrometheusProvider::measure_at`] takes the measurement the controller would have taken at
//! a past instant (the query evaluated with `time=`), for the backtest.

use super::Provider;
use super::http::{self, error_chain};
use crate::analysis::condition;
use crate::api::{AnalysisRun, Measurement, Metric, PrometheusMetric, analysis_phase};
use crate::plan::stamp;
use futures::future::BoxFuture;
use k8s_openapi::jiff::Timestamp;
use prometheus_http_query::response::Data;
use std::collections::BTreeMap;
use std::time::Duration;

/// Environment variable with the default Prometheus address.
pub const ADDRESS_ENV: &str = "ARGO_ROLLOUTS_PROMETHEUS_ADDRESS";
/// Result metadata key holding the query (upstream's).
pub const RESOLVED_QUERY_KEY: &str = "ResolvedPrometheusQuery";
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a Prometheus metric's spec is invalid.
#[derive(Debug, thiserror::Error)]
pub enum PrometheusSpecError {
    #[error("prometheus address is not configured")]
    NoAddress,
    #[error("prometheus address {0:?} is not in url format")]
    AddressNotUrl(String),
    #[error("prometheus timeout should not be negative")]
    NegativeTimeout,
}

/// Why a Prometheus measurement could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum PrometheusError {
    #[error("prometheus query is empty")]
    EmptyQuery,
    #[error(transparent)]
    Http(#[from] http::HttpError),
    #[error("prometheus address {address:?}: {source}")]
    Address {
        address: String,
        #[source]
        source: prometheus_http_query::Error,
    },
    #[error(transparent)]
    Range(#[from] RangeError),
    #[error("querying prometheus at {address}: {}", error_chain(.source))]
    Query {
        address: String,
        #[source]
        source: prometheus_http_query::Error,
    },
    #[error("reading the prometheus response: {}", error_chain(.0))]
    Read(#[source] reqwest::Error),
    #[error(transparent)]
    Response(#[from] ResponseError),
}

/// A Prometheus API response that is an error or not a query result.
#[derive(Debug, thiserror::Error)]
pub enum ResponseError {
    /// Not the API's JSON: the start of the body.
    #[error("prometheus returned HTTP {status}: {snippet}")]
    NotJson { status: u16, snippet: String },
    /// An error status in the API's JSON.
    #[error("prometheus returned HTTP {status}: {error_type}: {error}")]
    Api {
        status: u16,
        error_type: String,
        error: String,
    },
    #[error("prometheus response has no data")]
    NoData,
    #[error("Prometheus metric type not supported: {0}")]
    UnsupportedData(#[source] serde_json::Error),
}

/// A range query's bounds or step that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RangeError {
    /// `start` or `end` could not be evaluated.
    #[error("rangeQuery.{field}: {source}")]
    Time {
        field: &'static str,
        #[source]
        source: condition::TimeExprError,
    },
    #[error("rangeQuery.step is required")]
    NoStep,
    #[error("rangeQuery.step: {0}")]
    Step(#[source] crate::analysis::core::DurationError),
    #[error("rangeQuery.step must be positive")]
    ZeroStep,
    #[error("rangeQuery: start ({start}) is after end ({end})")]
    StartAfterEnd { start: i64, end: i64 },
}

/// A configured Prometheus query.
pub struct PrometheusProvider {
    spec: PrometheusMetric,
    address: String,
    timeout: Duration,
}

impl PrometheusProvider {
    /// Checks the address and timeout. `default_address` is `ARGO_ROLLOUTS_PROMETHEUS_ADDRESS`.
    pub fn new(
        spec: &PrometheusMetric,
        default_address: Option<&str>,
    ) -> Result<Self, PrometheusSpecError> {
        let address = match spec.address.as_deref().filter(|a| !a.is_empty()) {
            Some(a) => a.to_string(),
            None => default_address
                .filter(|a| !a.is_empty())
                .ok_or(PrometheusSpecError::NoAddress)?
                .to_string(),
        };
        if !http::is_url(&address) {
            return Err(PrometheusSpecError::AddressNotUrl(address));
        }
        let timeout = match spec.timeout {
            None => DEFAULT_TIMEOUT,
            Some(t) if t < 0 => return Err(PrometheusSpecError::NegativeTimeout),
            Some(0) => DEFAULT_TIMEOUT,
            Some(t) => Duration::from_secs(u64::try_from(t).unwrap_or(30)),
        };
        Ok(PrometheusProvider {
            spec: spec.clone(),
            address,
            timeout,
        })
    }

    /// Queries Prometheus as of `now`; with `past`, an instant query is evaluated at `now`
    /// (`time=`) instead of Prometheus's present (a range query is always relative to `now`).
    async fn measure(
        &self,
        now: Timestamp,
        past: bool,
    ) -> Result<(String, condition::ValueWithText, Vec<String>), PrometheusError> {
        let query = self.spec.query.clone().unwrap_or_default();
        if query.trim().is_empty() {
            return Err(PrometheusError::EmptyQuery);
        }
        let headers = http::header_map(self.spec.headers.as_deref().unwrap_or_default())?;
        let insecure = self.spec.insecure == Some(true);
        let hc = http::client(insecure, self.timeout, headers)?;
        let auth = http::authorization(self.spec.authentication.as_ref(), &hc).await?;
        let client = prometheus_http_query::Client::from(hc, &self.address).map_err(|source| {
            PrometheusError::Address {
                address: self.address.clone(),
                source,
            }
        })?;
        let response = match &self.spec.range_query {
            Some(r) => {
                let (start, end, step) = range_bounds(r, now)?;
                let mut b = client.query_range(&query, start, end, step);
                if let Some(a) = auth {
                    b = b.header(reqwest::header::AUTHORIZATION, a);
                }
                b.get_raw().await
            }
            None => {
                let mut b = client.query(&query);
                if past {
                    b = b.at(now.as_second());
                }
                if let Some(a) = auth {
                    b = b.header(reqwest::header::AUTHORIZATION, a);
                }
                b.get_raw().await
            }
        }
        .map_err(|source| PrometheusError::Query {
            address: self.address.clone(),
            source,
        })?;
        let status = response.status();
        let body = response.text().await.map_err(PrometheusError::Read)?;
        let (data, warnings) = parse_response(status.as_u16(), &body)?;
        let v = data_to_result(data);
        Ok((query, v, warnings))
    }
}

/// A parsed query result and the warnings Prometheus returned with it.
pub type Parsed = (Data, Vec<String>);

#[derive(serde::Deserialize)]
struct ApiResponse {
    status: String,
    #[serde(default)]
    data: Option<serde_json::Value>,
    #[serde(rename = "errorType", default)]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    warnings: Option<Vec<String>>,
}

/// Parses a Prometheus API response body.
pub fn parse_response(http_status: u16, body: &str) -> Result<Parsed, ResponseError> {
    let api: ApiResponse = serde_json::from_str(body).map_err(|_| {
        let snippet: String = body.chars().take(200).collect();
        ResponseError::NotJson {
            status: http_status,
            snippet: snippet.trim().to_string(),
        }
    })?;
    if api.status != "success" {
        return Err(ResponseError::Api {
            status: http_status,
            error_type: api.error_type.unwrap_or_else(|| "error".into()),
            error: api.error.unwrap_or_default(),
        });
    }
    let data = api.data.ok_or(ResponseError::NoData)?;
    let data: Data = serde_json::from_value(data).map_err(ResponseError::UnsupportedData)?;
    Ok((data, api.warnings.unwrap_or_default()))
}

/// Formats a sample value as Prometheus (and upstream's value string) does.
pub fn format_sample(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

/// The condition's `result` and the measurement's value for a query result.
pub fn data_to_result(data: Data) -> condition::ValueWithText {
    let list = |vals: Vec<f64>| condition::ValueWithText {
        text: format!(
            "[{}]",
            vals.iter()
                .map(|v| format_sample(*v))
                .collect::<Vec<_>>()
                .join(",")
        ),
        value: expr::Value::Array(vals.into_iter().map(expr::Value::Float).collect()),
    };
    match data {
        Data::Scalar(s) => condition::ValueWithText {
            text: format_sample(s.value()),
            value: expr::Value::Float(s.value()),
        },
        Data::Vector(v) => list(v.iter().map(|s| s.sample().value()).collect()),
        Data::Matrix(m) => list(
            m.iter()
                .flat_map(|r| r.samples().iter().map(|s| s.value()))
                .collect(),
        ),
    }
}

/// Evaluates a range query's `start`/`end` expressions (with `now()` fixed at `now`) and its
/// `step`: (start, end) in Unix seconds and the step in seconds. The API takes whole seconds:
/// the start is rounded down and the end up, so the range always covers the instants asked for
/// (a range ending in the same second as the latest scrape still includes it).
pub fn range_bounds(
    r: &crate::api::PrometheusRangeQueryArgs,
    now: Timestamp,
) -> Result<(i64, i64, f64), RangeError> {
    let at = |field: &'static str, e: Option<&str>| -> Result<f64, RangeError> {
        let e = e.filter(|s| !s.trim().is_empty()).unwrap_or("now()");
        condition::eval_time(e, now).map_err(|source| RangeError::Time { field, source })
    };
    let start = at("start", r.start.as_deref())?.floor() as i64;
    let end = at("end", r.end.as_deref())?.ceil() as i64;
    let step = r
        .step
        .as_deref()
        .filter(|s| !s.is_empty())
        .ok_or(RangeError::NoStep)?;
    let step = crate::analysis::core::parse_duration(step).map_err(RangeError::Step)?;
    if step.is_zero() {
        return Err(RangeError::ZeroStep);
    }
    if start > end {
        return Err(RangeError::StartAfterEnd { start, end });
    }
    Ok((start, end, step.as_secs_f64()))
}

impl Provider for PrometheusProvider {
    fn kind(&self) -> &'static str {
        "Prometheus"
    }

    fn metadata(&self, _metric: &Metric) -> Option<BTreeMap<String, String>> {
        self.spec
            .query
            .as_ref()
            .filter(|q| !q.is_empty())
            .map(|q| BTreeMap::from([(RESOLVED_QUERY_KEY.to_string(), q.clone())]))
    }

    fn deadline(&self) -> Duration {
        // The token request and the query each get the timeout.
        self.timeout * 2 + Duration::from_secs(5)
    }

    fn run<'a>(&'a self, _run: &'a AnalysisRun, metric: &'a Metric) -> BoxFuture<'a, Measurement> {
        Box::pin(async move { self.take(metric, Timestamp::now(), false).await })
    }
}

impl PrometheusProvider {
    /// The measurement the controller would have taken at `at`, a past instant: the query is
    /// evaluated at `at` (a range query relative to it), judged by the same conditions, and
    /// the measurement is stamped `at` (`kubectl-rollouts analysis backtest`).
    pub async fn measure_at(&self, metric: &Metric, at: Timestamp) -> Measurement {
        self.take(metric, at, true).await
    }

    async fn take(&self, metric: &Metric, now: Timestamp, past: bool) -> Measurement {
        let clock = || if past { now } else { Timestamp::now() };
        let started = Measurement {
            started_at: Some(stamp(now)),
            ..Default::default()
        };
        match self.measure(now, past).await {
            Err(e) => crate::analysis::core::error_measurement(started, e.to_string(), clock()),
            Ok((_, v, warnings)) => {
                let (p, note) = condition::judge(
                    &v.value,
                    metric.success_condition.as_deref(),
                    metric.failure_condition.as_deref(),
                );
                let mut m = started;
                m.value = Some(v.text);
                m.phase = Some(p.to_string());
                m.message = note;
                m.finished_at = Some(stamp(clock()));
                if !warnings.is_empty() {
                    let joined = warnings
                        .iter()
                        .map(|w| format!("\"{w}\""))
                        .collect::<Vec<_>>()
                        .join(", ");
                    m.metadata = Some(BTreeMap::from([("warnings".to_string(), joined)]));
                }
                debug_assert!(analysis_phase::is_completed(
                    m.phase.as_deref().unwrap_or("")
                ));
                m
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_vectors_scalars_matrices_and_errors() {
        let (d, w) = parse_response(
            200,
            r#"{"status":"success","data":{"resultType":"vector","result":[
                {"metric":{"a":"b"},"value":[1700000000.1,"0.25"]},
                {"metric":{},"value":[1700000000.1,"NaN"]}]},"warnings":["w1"]}"#,
        )
        .unwrap();
        assert_eq!(w, vec!["w1".to_string()]);
        let r = data_to_result(d);
        assert_eq!(r.text, "[0.25,NaN]");
        let (d, _) = parse_response(
            200,
            r#"{"status":"success","data":{"resultType":"scalar","result":[1700000000,"+Inf"]}}"#,
        )
        .unwrap();
        assert_eq!(data_to_result(d).text, "+Inf");
        let (d, _) = parse_response(
            200,
            r#"{"status":"success","data":{"resultType":"matrix","result":[
                {"metric":{},"values":[[1,"1"],[2,"2"]]},{"metric":{},"values":[[1,"3"]]}]}}"#,
        )
        .unwrap();
        assert_eq!(data_to_result(d).text, "[1,2,3]");
        let (d, _) = parse_response(
            200,
            r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#,
        )
        .unwrap();
        assert_eq!(data_to_result(d).text, "[]");
        let e = parse_response(
            400,
            r#"{"status":"error","errorType":"bad_data","error":"parse error at char 3"}"#,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "prometheus returned HTTP 400: bad_data: parse error at char 3"
        );
        let e = parse_response(502, "Bad Gateway").unwrap_err();
        assert_eq!(e.to_string(), "prometheus returned HTTP 502: Bad Gateway");
    }

    #[test]
    fn addresses_and_timeouts() {
        let spec = PrometheusMetric::default();
        assert_eq!(
            PrometheusProvider::new(&spec, None)
                .err()
                .unwrap()
                .to_string(),
            "prometheus address is not configured"
        );
        assert!(PrometheusProvider::new(&spec, Some("http://p:9090")).is_ok());
        let bad = PrometheusMetric {
            address: Some("not a url".into()),
            ..Default::default()
        };
        assert!(PrometheusProvider::new(&bad, None).is_err());
        let neg = PrometheusMetric {
            address: Some("http://p".into()),
            timeout: Some(-1),
            ..Default::default()
        };
        assert_eq!(
            PrometheusProvider::new(&neg, None)
                .err()
                .unwrap()
                .to_string(),
            "prometheus timeout should not be negative"
        );
    }

    #[test]
    fn range_bounds_use_the_given_now() {
        let now = Timestamp::from_second(1_700_000_000).unwrap();
        let later = Timestamp::new(1_700_000_000, 500_000_000).unwrap();
        let r = crate::api::PrometheusRangeQueryArgs {
            start: Some("now() - duration(\"5m\")".into()),
            end: Some("now()".into()),
            step: Some("1m".into()),
        };
        assert_eq!(
            range_bounds(&r, now).unwrap(),
            (1_700_000_000 - 300, 1_700_000_000, 60.0)
        );
        assert_eq!(
            range_bounds(&r, later).unwrap(),
            (1_700_000_000 - 300, 1_700_000_001, 60.0),
            "start rounded down, end up"
        );
        let bad = crate::api::PrometheusRangeQueryArgs {
            start: Some("now() +".into()),
            ..r.clone()
        };
        assert!(
            range_bounds(&bad, now)
                .unwrap_err()
                .to_string()
                .starts_with("rangeQuery.start")
        );
    }
}
