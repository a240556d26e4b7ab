//! The Wavefront provider (upstream's `metricproviders/wavefront`): a query of the chart API.
//!
//! `GET https://{address}/api/v2/chart/api` with `q` (the query), `s` and `e` both the
//! measurement's start (epoch milliseconds), `g=s`, `p=1`, `i=true` (series whose points are
//! outside the window are returned) and the other flags false, header
//! `Authorization: Bearer <token>`. The token is the value of the key named like the address
//! in the Secret `wavefront-api-tokens` (controller's namespace). An address with a scheme
//! (`http://host:port`) is used as given.
//!
//! For each series the point closest in time to the measurement is used: the condition's
//! `result` is its value (a number) for one series, the list of values for several; the
//! measurement's value has two decimals (`0.95`, `[0.95,1.00]`); its metadata has the points'
//! `timestamps` and their `drift` from the measurement time (seconds), and Wavefront's
//! `warnings`. No series is an Error (with Wavefront's error message when it gave one).
//!
//! Difference from upstream: a series without any point is an Error (upstream uses 0).

use super::http::{self, Request, Response};
use super::{Provider, ProviderContext, ProviderError, errored, judged, secrets};
use crate::analysis::condition::ValueWithText;
use crate::api::{AnalysisRun, Measurement, Metric, WavefrontMetric};
use futures::future::BoxFuture;
use k8s_openapi::jiff::Timestamp;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

const PROVIDER: &str = "Wavefront";
/// The Secret holding the API tokens, keyed by address.
pub const TOKENS_SECRET: &str = "wavefront-api-tokens";
const TIMEOUT: Duration = Duration::from_secs(30);

/// The chart API request for a measurement at `at_ms` (epoch milliseconds).
pub fn build_request(address: &str, query: &str, token: &str, at_ms: i64) -> Request {
    let base = if address.contains("://") {
        address.trim_end_matches('/').to_string()
    } else {
        format!("https://{}", address.trim_end_matches('/'))
    };
    let at = at_ms.to_string();
    // Sorted by key, as Go's url.Values encodes them.
    let qs = http::query_string([
        ("autoEvents", "false"),
        ("e", at.as_str()),
        ("g", "s"),
        ("i", "true"),
        ("includeObsoleteMetrics", "false"),
        ("listmode", "false"),
        ("p", "1"),
        ("q", query),
        ("s", at.as_str()),
        ("strict", "false"),
    ]);
    Request::get(format!("{base}/api/v2/chart/api?{qs}"))
        .header("Authorization", format!("Bearer {token}"))
        .header("Accept", "application/json")
}

/// The point of `points` (`[[epoch seconds, value], ...]`) closest to `at` (epoch seconds):
/// (value, its time, its drift from `at`).
pub fn closest_point(points: &[(f64, f64)], at: i64) -> Option<(f64, i64, i64)> {
    let at = at as f64;
    points
        .iter()
        .min_by(|a, b| (a.0 - at).abs().total_cmp(&(b.0 - at).abs()))
        .map(|(t, v)| (*v, *t as i64, (*t - at) as i64))
}

/// A parsed answer: the judged value, its metadata, and the warnings.
#[derive(Clone, Debug, PartialEq)]
pub struct Parsed {
    pub value: ValueWithText,
    pub metadata: BTreeMap<String, String>,
}

/// Wavefront's warnings in an answer, for the measurement's metadata (even when it fails).
pub fn warnings(resp: &Response) -> Option<String> {
    serde_json::from_str::<Value>(&resp.body)
        .ok()?
        .get("warnings")
        .and_then(Value::as_str)
        .filter(|w| !w.is_empty())
        .map(str::to_string)
}

/// Parses the chart API's answer for a measurement at `at` (epoch seconds).
pub fn parse_response(resp: &Response, at: i64) -> Result<Parsed, ProviderError> {
    if resp.status != 200 {
        return Err(resp.status_error(PROVIDER));
    }
    let body: Value =
        serde_json::from_str(&resp.body).map_err(|e| ProviderError::parse(PROVIDER, e))?;
    let series = body
        .get("timeseries")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if series.is_empty() {
        let why = body
            .get("errorMessage")
            .and_then(Value::as_str)
            .filter(|m| !m.is_empty())
            .map(|m| format!(" ({m})"))
            .unwrap_or_default();
        return Err(ProviderError::api(
            PROVIDER,
            format!("No TimeSeries found in response from Wavefront{why}"),
        ));
    }
    let mut values = Vec::new();
    let mut times = Vec::new();
    let mut drifts = Vec::new();
    for s in &series {
        let label = s.get("label").and_then(Value::as_str).unwrap_or("");
        let points: Vec<(f64, f64)> = s
            .get("data")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|p| {
                let p = p.as_array()?;
                Some((p.first()?.as_f64()?, p.get(1)?.as_f64()?))
            })
            .collect();
        let (v, t, d) = closest_point(&points, at).ok_or_else(|| {
            ProviderError::api(PROVIDER, format!("series {label:?} has no data points"))
        })?;
        values.push(v);
        times.push(t);
        drifts.push(d);
    }
    let list = |items: Vec<String>| format!("[{}]", items.join(","));
    let (value, ts, drift) = if values.len() == 1 {
        (
            ValueWithText {
                value: expr::Value::Float(values[0]),
                text: format!("{:.2}", values[0]),
            },
            times[0].to_string(),
            drifts[0].to_string(),
        )
    } else {
        (
            ValueWithText {
                value: super::float_list(&values),
                text: list(values.iter().map(|v| format!("{v:.2}")).collect()),
            },
            list(times.iter().map(i64::to_string).collect()),
            list(drifts.iter().map(i64::to_string).collect()),
        )
    };
    let mut metadata =
        BTreeMap::from([("timestamps".to_string(), ts), ("drift".to_string(), drift)]);
    if let Some(w) = warnings(resp) {
        metadata.insert("warnings".into(), w);
    }
    Ok(Parsed { value, metadata })
}

/// A configured Wavefront query.
pub struct WavefrontProvider {
    spec: WavefrontMetric,
    ctx: ProviderContext,
}

impl WavefrontProvider {
    /// Checks the spec; the token is read at measurement time.
    pub fn new(spec: &WavefrontMetric, ctx: ProviderContext) -> Result<Self, ProviderError> {
        if spec.address.as_deref().is_none_or(str::is_empty) {
            return Err(ProviderError::spec("wavefront address is empty"));
        }
        Ok(WavefrontProvider {
            spec: spec.clone(),
            ctx,
        })
    }

    async fn measure(&self, at: Timestamp) -> Result<(Response, i64), ProviderError> {
        let address = self.spec.address.clone().unwrap_or_default();
        let data = self
            .ctx
            .secrets
            .get(&self.ctx.controller_namespace, TOKENS_SECRET)
            .await?;
        let token = secrets::text(&data, &address).ok_or_else(|| {
            ProviderError::Credentials(format!(
                "API token not found: secret \"{TOKENS_SECRET}\" has no key \"{address}\""
            ))
        })?;
        let req = build_request(
            &address,
            self.spec.query.as_deref().unwrap_or_default(),
            &token,
            at.as_millisecond(),
        );
        Ok((http::send(&req, TIMEOUT).await?, at.as_second()))
    }
}

impl Provider for WavefrontProvider {
    fn kind(&self) -> &'static str {
        PROVIDER
    }

    fn deadline(&self) -> Duration {
        TIMEOUT + Duration::from_secs(15)
    }

    fn run<'a>(&'a self, _run: &'a AnalysisRun, metric: &'a Metric) -> BoxFuture<'a, Measurement> {
        Box::pin(async move {
            let started = super::started_now();
            let at = started
                .started_at
                .as_ref()
                .map(|t| t.0)
                .unwrap_or_else(Timestamp::now);
            let (resp, at) = match self.measure(at).await {
                Ok(r) => r,
                Err(e) => return errored(started, &e),
            };
            match parse_response(&resp, at) {
                Ok(p) => judged(started, &p.value, metric, Some(p.metadata)),
                Err(e) => {
                    let mut m = errored(started, &e);
                    m.metadata = warnings(&resp).map(|w| BTreeMap::from([("warnings".into(), w)]));
                    m
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(body: &str) -> Response {
        Response {
            status: 200,
            body: body.into(),
        }
    }

    #[test]
    fn request() {
        let r = build_request(
            "example.wavefront.com",
            "ts(\"a.b\", x=1)",
            "tok",
            1_600_000_000_000,
        );
        assert_eq!(
            r.url,
            "https://example.wavefront.com/api/v2/chart/api?autoEvents=false&e=1600000000000&g=s&i=true&includeObsoleteMetrics=false&listmode=false&p=1&q=ts%28%22a.b%22%2C%20x%3D1%29&s=1600000000000&strict=false"
        );
        assert_eq!(r.header_value("authorization"), Some("Bearer tok"));
        let r = build_request("http://127.0.0.1:9/", "q", "t", 1);
        assert!(r.url.starts_with("http://127.0.0.1:9/api/v2/chart/api?"));
    }

    #[test]
    fn closest_points() {
        let pts = [(100.0, 1.0), (160.0, 2.0), (220.0, 3.0)];
        assert_eq!(closest_point(&pts, 170), Some((2.0, 160, -10)));
        assert_eq!(closest_point(&pts, 300), Some((3.0, 220, -80)));
        assert_eq!(closest_point(&[], 300), None);
    }

    #[test]
    fn responses() {
        let one =
            ok(r#"{"query":"q","timeseries":[{"label":"l","data":[[1000,0.5],[1060,0.95]]}]}"#);
        let p = parse_response(&one, 1061).unwrap();
        assert_eq!(p.value.value, expr::Value::Float(0.95));
        assert_eq!(p.value.text, "0.95");
        assert_eq!(p.metadata["timestamps"], "1060");
        assert_eq!(p.metadata["drift"], "-1");
        let two =
            ok(r#"{"warnings":"slow","timeseries":[{"data":[[1000,1]]},{"data":[[1010,0.123]]}]}"#);
        let p = parse_response(&two, 1000).unwrap();
        assert_eq!(p.value.text, "[1.00,0.12]");
        assert_eq!(p.metadata["timestamps"], "[1000,1010]");
        assert_eq!(p.metadata["drift"], "[0,10]");
        assert_eq!(p.metadata["warnings"], "slow");
        let e = parse_response(
            &ok(r#"{"query":"q","errorType":"QueryExecutionFailed","errorMessage":"Terminating Query to save resources"}"#),
            0,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "Wavefront: No TimeSeries found in response from Wavefront (Terminating Query to save resources)"
        );
        assert!(parse_response(&ok(r#"{"timeseries":[{"label":"x","data":[]}]}"#), 0).is_err());
        let e = parse_response(
            &Response {
                status: 401,
                body: "unauthorized".into(),
            },
            0,
        )
        .unwrap_err();
        assert!(e.to_string().contains("HTTP 401"));
    }
}
