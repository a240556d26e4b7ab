//! The Web provider (upstream's `metricproviders/webmetric`): an HTTP request whose JSON
//! response, narrowed by `jsonPath` (Kubernetes JSONPath syntax, e.g. `{$.data.ok}`; default
//! `{$}`), is the condition's `result`.
//!
//! `method` (default GET; a body needs POST, PUT or PATCH), `url`, `headers`, `body` or
//! `jsonBody` (sent with `Content-Type: application/json`), `timeoutSeconds` (default 10),
//! `insecure`, `authentication.basicAuth`/`oauth2`. A non-2xx status is an Error; a body that
//! is not JSON is the value as is and the measurement is Successful (upstream's behaviour).

use super::Provider;
use super::http::{self, error_chain};
use crate::analysis::condition;
use crate::api::{AnalysisRun, Measurement, Metric, WebMetric};
use crate::plan::stamp;
use futures::future::BoxFuture;
use jsonpath_rust::JsonPath;
use jsonpath_rust::parser::errors::JsonPathError;
use k8s_openapi::jiff::Timestamp;
use std::time::Duration;

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// A configured web request.
pub struct WebProvider {
    spec: WebMetric,
    method: reqwest::Method,
    timeout: Duration,
    json_path: String,
}

/// Why a web metric's spec is invalid.
#[derive(Debug, thiserror::Error)]
pub enum WebSpecError {
    #[error("invalid jsonPath {0:?}: unbalanced braces")]
    UnbalancedBraces(String),
    #[error("invalid jsonPath {0:?}: only a single {{...}} expression is supported")]
    NestedExpression(String),
    #[error("invalid web metric method {0:?}")]
    Method(String),
    #[error("use either Body or JSONBody; both cannot exists for WebMetric payload")]
    BodyAndJsonBody,
    #[error("Body/JSONBody can only be used with POST or PUT WebMetric Method types")]
    BodyWithoutPayloadMethod,
    #[error("web metric url is empty")]
    EmptyUrl,
}

/// Why a web measurement could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error(transparent)]
    Http(#[from] http::HttpError),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    #[error("requesting {url}: {}", error_chain(.source))]
    Request {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("received non 2xx response code: {0}")]
    Status(u16),
    #[error("Received no bytes in response: {}", error_chain(.0))]
    Body(#[source] reqwest::Error),
    #[error("Could not find JSONPath in body: {0}")]
    JsonPath(#[source] JsonPathError),
    #[error("result of web metric produced no value")]
    NoValue,
}

/// Converts a Kubernetes JSONPath template (`{$.a.b}`, `{.a.b}`) into a JSONPath expression
/// (`$.a.b`).
pub fn json_path_expr(template: &str) -> Result<String, WebSpecError> {
    let t = template.trim();
    let inner = match (t.strip_prefix('{'), t.ends_with('}')) {
        (Some(rest), true) => rest[..rest.len() - 1].trim(),
        (None, false) => t,
        _ => return Err(WebSpecError::UnbalancedBraces(template.to_string())),
    };
    if inner.contains('{') {
        return Err(WebSpecError::NestedExpression(template.to_string()));
    }
    Ok(if inner.is_empty() || inner == "$" {
        "$".to_string()
    } else if inner.starts_with('$') {
        inner.to_string()
    } else if inner.starts_with('.') || inner.starts_with('[') {
        format!("${inner}")
    } else {
        format!("$.{inner}")
    })
}

/// The first value `path` selects in `body` (upstream's `getValue`), with its JSON text.
pub fn select(body: &serde_json::Value, path: &str) -> Result<serde_json::Value, WebError> {
    let found = body.query(path).map_err(WebError::JsonPath)?;
    found.first().map(|v| (*v).clone()).ok_or(WebError::NoValue)
}

impl WebProvider {
    /// Checks the method, body and JSONPath.
    pub fn new(spec: &WebMetric) -> Result<Self, WebSpecError> {
        let method_name = spec
            .method
            .clone()
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| "GET".into())
            .to_uppercase();
        let method = reqwest::Method::from_bytes(method_name.as_bytes())
            .map_err(|_| WebSpecError::Method(method_name.clone()))?;
        let has_body = spec.body.as_deref().is_some_and(|b| !b.is_empty());
        if has_body && spec.json_body.is_some() {
            return Err(WebSpecError::BodyAndJsonBody);
        }
        if (has_body || spec.json_body.is_some())
            && !matches!(method_name.as_str(), "POST" | "PUT" | "PATCH")
        {
            return Err(WebSpecError::BodyWithoutPayloadMethod);
        }
        if spec.url.as_deref().is_none_or(str::is_empty) {
            return Err(WebSpecError::EmptyUrl);
        }
        let timeout = match spec.timeout_seconds {
            Some(t) if t > 0 => Duration::from_secs(u64::try_from(t).unwrap_or(10)),
            _ => DEFAULT_TIMEOUT,
        };
        let json_path = json_path_expr(spec.json_path.as_deref().unwrap_or("{$}"))?;
        Ok(WebProvider {
            spec: spec.clone(),
            method,
            timeout,
            json_path,
        })
    }

    async fn measure(
        &self,
        metric: &Metric,
    ) -> Result<(String, &'static str, Option<String>), WebError> {
        let headers = http::header_map(self.spec.headers.as_deref().unwrap_or_default())?;
        let hc = http::client(self.spec.insecure == Some(true), self.timeout, headers)?;
        let auth = http::authorization(self.spec.authentication.as_ref(), &hc).await?;
        let url = self.spec.url.clone().unwrap_or_default();
        let mut req = hc.request(self.method.clone(), &url);
        if let Some(a) = auth {
            req = req.header(reqwest::header::AUTHORIZATION, a);
        }
        if let Some(j) = &self.spec.json_body {
            req = req
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(serde_json::to_vec(j)?);
        } else if let Some(b) = self.spec.body.as_ref().filter(|b| !b.is_empty()) {
            req = req.body(b.clone());
        }
        let resp = req.send().await.map_err(|source| WebError::Request {
            url: url.clone(),
            source,
        })?;
        let status = resp.status();
        if !status.is_success() {
            return Err(WebError::Status(status.as_u16()));
        }
        let bytes = resp.bytes().await.map_err(WebError::Body)?;
        let Ok(body) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
            return Ok((
                String::from_utf8_lossy(&bytes).into_owned(),
                crate::api::analysis_phase::SUCCESSFUL,
                None,
            ));
        };
        let value = select(&body, &self.json_path)?;
        let text = serde_json::to_string(&value)?;
        let (p, note) = condition::judge(
            &condition::json_to_value(&value),
            metric.success_condition.as_deref(),
            metric.failure_condition.as_deref(),
        );
        Ok((text, p, note))
    }
}

impl Provider for WebProvider {
    fn kind(&self) -> &'static str {
        "Web"
    }

    fn deadline(&self) -> Duration {
        self.timeout * 2 + Duration::from_secs(5)
    }

    fn run<'a>(&'a self, _run: &'a AnalysisRun, metric: &'a Metric) -> BoxFuture<'a, Measurement> {
        Box::pin(async move {
            let started = Measurement {
                started_at: Some(stamp(Timestamp::now())),
                ..Default::default()
            };
            match self.measure(metric).await {
                Err(e) => crate::analysis::core::error_measurement(
                    started,
                    e.to_string(),
                    Timestamp::now(),
                ),
                Ok((value, p, note)) => Measurement {
                    value: Some(value),
                    phase: Some(p.to_string()),
                    message: note,
                    finished_at: Some(stamp(Timestamp::now())),
                    ..started
                },
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kubernetes_json_paths() {
        assert_eq!(json_path_expr("{$}").unwrap(), "$");
        assert_eq!(json_path_expr("{$.data.ok}").unwrap(), "$.data.ok");
        assert_eq!(json_path_expr("{.data.ok}").unwrap(), "$.data.ok");
        assert_eq!(json_path_expr("{$.items[0]}").unwrap(), "$.items[0]");
        assert_eq!(json_path_expr("$.a").unwrap(), "$.a");
        assert!(json_path_expr("{$.a").is_err());
        let body = json!({"data": {"ok": true, "items": [{"v": 1}, {"v": 2}]}, "major": "1"});
        assert_eq!(select(&body, "$.data.ok").unwrap(), json!(true));
        assert_eq!(select(&body, "$.data.items[*].v").unwrap(), json!(1));
        assert_eq!(select(&body, "$.major").unwrap(), json!("1"));
        assert_eq!(
            select(&body, "$.missing").unwrap_err().to_string(),
            "result of web metric produced no value"
        );
    }

    #[test]
    fn body_rules() {
        let get_with_body = WebMetric {
            url: Some("http://x".into()),
            body: Some("b".into()),
            ..Default::default()
        };
        assert!(WebProvider::new(&get_with_body).is_err());
        let both = WebMetric {
            url: Some("http://x".into()),
            method: Some("POST".into()),
            body: Some("b".into()),
            json_body: Some(json!({})),
            ..Default::default()
        };
        assert!(WebProvider::new(&both).is_err());
        let ok = WebMetric {
            url: Some("http://x".into()),
            method: Some("post".into()),
            json_body: Some(json!({"a": 1})),
            ..Default::default()
        };
        assert!(WebProvider::new(&ok).is_ok());
    }
}
