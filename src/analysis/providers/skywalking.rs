//! The Apache SkyWalking provider (upstream's `metricproviders/skywalking`): a GraphQL query
//! of the OAP server.
//!
//! `POST {address}/graphql` with the query and the variable `duration`:
//! `{start, end, step: "MINUTE"}`, the last `interval` in SkyWalking's minute format
//! (`2006-01-02 1504`, UTC), 30 s timeout. The condition's `result` is the answer's `data`
//! (e.g. `result.service_apdex.values.values`); the measurement's value is its JSON. A GraphQL
//! error is an Error with its message; no data is an Error.

use super::http::{self, Request, Response};
use super::{Provider, ProviderError, conclude};
use crate::analysis::condition::{self, ValueWithText};
use crate::api::{AnalysisRun, Measurement, Metric, SkyWalkingMetric};
use futures::future::BoxFuture;
use k8s_openapi::jiff::{SignedDuration, Timestamp, tz::TimeZone};
use serde_json::{Value, json};
use std::time::Duration;

const PROVIDER: &str = "SkyWalking";
const TIMEOUT: Duration = Duration::from_secs(30);

/// SkyWalking's minute-step time format of `t` (UTC).
pub fn minute(t: Timestamp) -> String {
    t.to_zoned(TimeZone::UTC)
        .strftime("%Y-%m-%d %H%M")
        .to_string()
}

/// The GraphQL request for the `interval` before `now`.
pub fn build_request(
    address: &str,
    query: &str,
    interval: Duration,
    now: Timestamp,
) -> Result<Request, ProviderError> {
    let url = http::join(address, "/graphql");
    if !http::is_url(&url) {
        return Err(ProviderError::spec(format!(
            "skywalking address {address:?} is not a URL"
        )));
    }
    let back = SignedDuration::try_from(interval).unwrap_or(SignedDuration::MAX);
    let start = now.checked_sub(back).unwrap_or(Timestamp::MIN);
    let body = json!({
        "query": query,
        "variables": {"duration": {"start": minute(start), "end": minute(now), "step": "MINUTE"}},
    });
    Ok(Request::post(
        url,
        "application/json; charset=utf-8",
        body.to_string().into_bytes(),
    )
    .header("Accept", "application/json; charset=utf-8"))
}

/// Parses the GraphQL answer: `data` is the result.
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
    if resp.status != 200 {
        return Err(resp.status_error(PROVIDER));
    }
    let body = body.ok_or_else(|| ProviderError::parse(PROVIDER, "the body is not JSON"))?;
    let data = body.get("data").cloned().unwrap_or(Value::Null);
    if data.is_null() {
        return Err(ProviderError::api(
            PROVIDER,
            "no results returned from SkyWalking query",
        ));
    }
    Ok(ValueWithText {
        value: condition::json_to_value(&data),
        text: data.to_string(),
    })
}

/// A configured SkyWalking query.
pub struct SkyWalkingProvider {
    spec: SkyWalkingMetric,
    interval: Duration,
}

impl SkyWalkingProvider {
    /// Checks the address and the interval (required, as upstream).
    pub fn new(spec: &SkyWalkingMetric) -> Result<Self, ProviderError> {
        let interval =
            crate::analysis::core::parse_duration(spec.interval.as_deref().unwrap_or_default())
                .map_err(|e| ProviderError::spec(format!("skywalking interval: {e}")))?;
        build_request(
            spec.address.as_deref().unwrap_or_default(),
            "",
            interval,
            Timestamp::UNIX_EPOCH,
        )?;
        Ok(SkyWalkingProvider {
            spec: spec.clone(),
            interval,
        })
    }

    async fn measure(&self) -> Result<ValueWithText, ProviderError> {
        let req = build_request(
            self.spec.address.as_deref().unwrap_or_default(),
            self.spec.query.as_deref().unwrap_or_default(),
            self.interval,
            Timestamp::now(),
        )?;
        parse_response(&http::send(&req, TIMEOUT).await?)
    }
}

impl Provider for SkyWalkingProvider {
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

    #[test]
    fn request() {
        let now: Timestamp = "2023-05-04T10:07:30Z".parse().unwrap();
        let r = build_request(
            "http://oap:12800/",
            "query q($duration: Duration!) { x }",
            Duration::from_secs(180),
            now,
        )
        .unwrap();
        assert_eq!(r.url, "http://oap:12800/graphql");
        let body: Value = serde_json::from_slice(r.body.as_ref().unwrap()).unwrap();
        assert_eq!(
            body["variables"],
            json!({"duration": {"start": "2023-05-04 1004", "end": "2023-05-04 1007", "step": "MINUTE"}})
        );
        assert_eq!(body["query"], "query q($duration: Duration!) { x }");
        assert!(
            SkyWalkingProvider::new(&SkyWalkingMetric {
                address: Some("http://oap".into()),
                ..Default::default()
            })
            .is_err()
        );
    }

    #[test]
    fn responses() {
        let ok = Response {
            status: 200,
            body: r#"{"data":{"service_apdex":{"label":null,"values":{"values":[{"value":10000},{"value":9950}]}}}}"#.into(),
        };
        let v = parse_response(&ok).unwrap();
        assert!(
            condition::eval_condition(
                &v.value,
                "all(result.service_apdex.values.values, {asFloat(.value) >= 9900})"
            )
            .unwrap()
        );
        let e = parse_response(&Response {
            status: 200,
            body: r#"{"data":null,"errors":[{"message":"Unknown metric service_apdx"}]}"#.into(),
        })
        .unwrap_err();
        assert_eq!(e.to_string(), "SkyWalking: Unknown metric service_apdx");
        let e = parse_response(&Response {
            status: 200,
            body: r#"{"data":null}"#.into(),
        })
        .unwrap_err();
        assert!(e.to_string().contains("no results"));
        let e = parse_response(&Response {
            status: 502,
            body: "bad gateway".into(),
        })
        .unwrap_err();
        assert!(e.to_string().contains("HTTP 502"));
    }
}
