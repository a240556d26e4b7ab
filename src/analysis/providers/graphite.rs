//! The Graphite provider (upstream's `metricproviders/graphite`): the render API.
//!
//! The query is a render query string (`target=...&from=-5min`) with its whitespace removed;
//! `format=json` is added and the parameters are re-encoded, sorted by name (as upstream's Go
//! `url.Values`); `GET {address}/render?...` (the address's path is kept), 10 s timeout.
//!
//! The condition's `result` is the list of the first target's non-null values; the
//! measurement's value prints them with 6 decimals (`[90.000000,95.500000]`). No target or no
//! point is an Error ("no values found").

use super::http::{self, Request, Response};
use super::{Provider, ProviderError, conclude};
use crate::analysis::condition::ValueWithText;
use crate::api::{AnalysisRun, GraphiteMetric, Measurement, Metric};
use futures::future::BoxFuture;
use serde_json::Value;
use std::time::Duration;

const PROVIDER: &str = "Graphite";
const TIMEOUT: Duration = Duration::from_secs(10);

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(&s.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

/// The render request for `query` against `address`.
pub fn build_request(address: &str, query: &str) -> Result<Request, ProviderError> {
    if !http::is_url(address) {
        return Err(ProviderError::spec(format!(
            "Graphite address {address:?} is not a valid URL"
        )));
    }
    let compact: String = query.chars().filter(|c| !c.is_whitespace()).collect();
    let mut params: Vec<(String, String)> = compact
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(p), String::new()),
        })
        .filter(|(k, _)| k != "format")
        .collect();
    params.push(("format".into(), "json".into()));
    params.sort_by(|a, b| a.0.cmp(&b.0));
    let qs = http::query_string(params.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let (base, _) = address.split_once('?').unwrap_or((address, ""));
    Ok(Request::get(format!(
        "{}?{qs}",
        http::join(base, "/render")
    )))
}

/// A datapoint value that is not a number.
#[derive(Debug, thiserror::Error)]
pub enum NumberError {
    #[error("value {text:?}: {source}")]
    Parse {
        text: String,
        #[source]
        source: std::num::ParseFloatError,
    },
    #[error("value {0} is not a number")]
    NotNumber(Value),
}

fn number(v: &Value) -> Result<Option<f64>, NumberError> {
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => Ok(n.as_f64()),
        Value::String(s) => {
            s.trim()
                .parse::<f64>()
                .map(Some)
                .map_err(|source| NumberError::Parse {
                    text: s.clone(),
                    source,
                })
        }
        other => Err(NumberError::NotNumber(other.clone())),
    }
}

/// Parses the render API's JSON: the first target's non-null values.
pub fn parse_response(resp: &Response) -> Result<ValueWithText, ProviderError> {
    if resp.status >= 400 {
        return Err(resp.status_error(PROVIDER));
    }
    let body: Value =
        serde_json::from_str(&resp.body).map_err(|e| ProviderError::parse(PROVIDER, e))?;
    let targets = body
        .as_array()
        .ok_or_else(|| ProviderError::parse(PROVIDER, "expected a list of targets"))?;
    let points = targets
        .first()
        .and_then(|t| t.get("datapoints"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if points.is_empty() {
        return Err(ProviderError::api(PROVIDER, "no values found"));
    }
    let mut values = Vec::new();
    for p in &points {
        let pair = p
            .as_array()
            .filter(|a| a.len() == 2)
            .ok_or_else(|| ProviderError::parse(PROVIDER, format!("data point {p}")))?;
        if let Some(v) = number(&pair[0]).map_err(|e| ProviderError::parse(PROVIDER, e))? {
            values.push(v);
        }
    }
    Ok(ValueWithText {
        text: format!(
            "[{}]",
            values
                .iter()
                .map(|v| format!("{v:.6}"))
                .collect::<Vec<_>>()
                .join(",")
        ),
        value: super::float_list(&values),
    })
}

/// A configured Graphite query.
pub struct GraphiteProvider {
    spec: GraphiteMetric,
}

impl GraphiteProvider {
    /// Checks the address.
    pub fn new(spec: &GraphiteMetric) -> Result<Self, ProviderError> {
        build_request(
            spec.address.as_deref().unwrap_or_default(),
            spec.query.as_deref().unwrap_or_default(),
        )?;
        Ok(GraphiteProvider { spec: spec.clone() })
    }

    async fn measure(&self) -> Result<ValueWithText, ProviderError> {
        let req = build_request(
            self.spec.address.as_deref().unwrap_or_default(),
            self.spec.query.as_deref().unwrap_or_default(),
        )?;
        parse_response(&http::send(&req, TIMEOUT).await?)
    }
}

impl Provider for GraphiteProvider {
    fn kind(&self) -> &'static str {
        PROVIDER
    }

    fn deadline(&self) -> Duration {
        TIMEOUT + Duration::from_secs(5)
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

    fn ok(body: &str) -> Response {
        Response {
            status: 200,
            body: body.into(),
        }
    }

    #[test]
    fn request() {
        let q = "target=summarize(\n  asPercent(sumSeries(a.{x,y}.count), sumSeries(a.*.count)),\n  '5min', 'avg')&from=-5min";
        let r = build_request("http://graphite.example.com:9090", q).unwrap();
        assert_eq!(
            r.url,
            "http://graphite.example.com:9090/render?format=json&from=-5min&target=summarize%28asPercent%28sumSeries%28a.%7Bx%2Cy%7D.count%29%2CsumSeries%28a.%2A.count%29%29%2C%275min%27%2C%27avg%27%29"
        );
        let r = build_request("http://g.example/graphite/", "target=a&format=raw").unwrap();
        assert_eq!(
            r.url,
            "http://g.example/graphite/render?format=json&target=a"
        );
        assert!(build_request("", "target=a").is_err());
        assert!(build_request("not a url", "target=a").is_err());
    }

    #[test]
    fn responses() {
        let v = parse_response(&ok(
            r#"[{"target":"a","datapoints":[[90,1600000000],[null,1600000060],["95.5",1600000120]]},{"target":"b","datapoints":[[1,1]]}]"#,
        ))
        .unwrap();
        assert_eq!(v.text, "[90.000000,95.500000]");
        assert_eq!(
            v.value,
            expr::Value::Array(vec![expr::Value::Float(90.0), expr::Value::Float(95.5)])
        );
        // Only nulls: an empty list (the condition decides).
        let v = parse_response(&ok(r#"[{"target":"a","datapoints":[[null,1]]}]"#)).unwrap();
        assert_eq!(v.text, "[]");
        for empty in ["[]", r#"[{"target":"a","datapoints":[]}]"#] {
            assert_eq!(
                parse_response(&ok(empty)).unwrap_err().to_string(),
                "Graphite: no values found"
            );
        }
        assert!(parse_response(&ok(r#"[{"datapoints":[[1]]}]"#)).is_err());
        assert!(parse_response(&ok(r#"[{"datapoints":[["x",1]]}]"#)).is_err());
        let e = parse_response(&Response {
            status: 500,
            body: "Traceback".into(),
        })
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "Graphite returned HTTP 500 (server error): Traceback"
        );
    }
}
