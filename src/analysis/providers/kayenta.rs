//! The Kayenta provider (upstream's `metricproviders/kayenta`): a canary judgement that runs
//! asynchronously.
//!
//! A measurement:
//! 1. finds the canary config's id: `GET {address}/canaryConfig?application=..&configurationAccountName=..`
//!    (upstream passes the `storageAccountName` there; so do we, so that templates that work
//!    with upstream keep working), the entry whose `name` is `canaryConfigName`;
//! 2. starts the judgement: `POST {address}/canary/{id}?application=..&metricsAccountName=..&configurationAccountName=..&storageAccountName=..`
//!    with the scopes (`start`/`end` default to `now - interval` — or the run's start with
//!    `lookback` — and `now`, RFC 3339) and the `thresholds`; the answer's
//!    `canaryExecutionId` goes to the measurement's metadata and the measurement stays
//!    Running, to be resumed 15 s later;
//! 3. on resume, `GET {address}/canary/{canaryExecutionId}`: while `complete` is false it waits
//!    15 s more; then the score (`result.judgeResult.score.score`, truncated to an integer) is
//!    the value, and the phase is Successful when score ≥ `threshold.pass`, Inconclusive when
//!    ≥ `threshold.marginal`, else Failed. (There are no conditions: the thresholds judge.)
//!
//! Each request has a 15 s timeout.

use super::http::{self, Request, Response};
use super::{Provider, ProviderError, errored};
use crate::api::{
    AnalysisRun, KayentaMetric, KayentaScope, Measurement, Metric, ScopeDetail, analysis_phase,
};
use crate::plan::stamp;
use futures::future::BoxFuture;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

const PROVIDER: &str = "Kayenta";
/// Measurement metadata key of the judgement's id (upstream's).
pub const EXECUTION_ID_KEY: &str = "canaryExecutionId";
/// How long to wait before checking on a judgement.
pub const RESUME_DELAY: Duration = Duration::from_secs(15);
const TIMEOUT: Duration = Duration::from_secs(15);

fn s(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or_default()
}

/// The canary config lookup.
pub fn config_lookup_request(k: &KayentaMetric) -> Request {
    Request::get(format!(
        "{}?{}",
        http::join(s(&k.address), "/canaryConfig"),
        http::query_string([
            ("application", s(&k.application)),
            ("configurationAccountName", s(&k.storage_account_name)),
        ])
    ))
}

/// The id of the canary config named `canaryConfigName` in the lookup's answer.
pub fn parse_config_id(k: &KayentaMetric, resp: &Response) -> Result<String, ProviderError> {
    if resp.status != 200 {
        return Err(resp.status_error(PROVIDER));
    }
    let configs: Vec<Value> =
        serde_json::from_str(&resp.body).map_err(|e| ProviderError::parse(PROVIDER, e))?;
    configs
        .iter()
        .find(|c| c.get("name").and_then(Value::as_str) == Some(s(&k.canary_config_name)))
        .and_then(|c| c.get("id").and_then(Value::as_str))
        .map(str::to_string)
        .ok_or_else(|| {
            ProviderError::api(
                PROVIDER,
                format!("Canary config {:?} not found", s(&k.canary_config_name)),
            )
        })
}

fn rfc3339(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn scope_detail(d: &ScopeDetail, start: &str, end: &str) -> Value {
    let mut m = Map::new();
    m.insert("scope".into(), json!(s(&d.scope)));
    m.insert("location".into(), json!(s(&d.region)));
    m.insert("step".into(), json!(d.step.unwrap_or(0)));
    if !start.is_empty() {
        m.insert("start".into(), json!(start));
    }
    if !end.is_empty() {
        m.insert("end".into(), json!(end));
    }
    Value::Object(m)
}

/// One scope of the request (upstream's `getScopeRequest`). `run_started` is the run's
/// `startedAt` (for `lookback`), `interval` the metric's.
pub fn scope_request(
    scope: &KayentaScope,
    lookback: bool,
    run_started: Option<Timestamp>,
    interval: Option<&str>,
    now: Timestamp,
) -> Result<Value, ProviderError> {
    let control = scope.control_scope.clone().unwrap_or_default();
    let experiment = scope.experiment_scope.clone().unwrap_or_default();
    let (cs, es) = (s(&control.start), s(&experiment.start));
    let (ce, ee) = (s(&control.end), s(&experiment.end));
    if cs.is_empty() != es.is_empty() {
        return Err(ProviderError::spec(
            "controlScope.start and experimentScope.start must both be set or be empty",
        ));
    }
    if ce.is_empty() != ee.is_empty() {
        return Err(ProviderError::spec(
            "controlScope.end and experimentScope.end must both be set or be empty",
        ));
    }
    let default_start = if cs.is_empty() {
        if lookback {
            rfc3339(run_started.unwrap_or(now))
        } else {
            let text = interval.unwrap_or_default();
            let d = crate::analysis::core::parse_duration(text)
                .map_err(|e| ProviderError::spec(format!("Invalid duration {text:?}: {e}")))?;
            let back = SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX);
            rfc3339(now.checked_sub(back).unwrap_or(Timestamp::MIN))
        }
    } else {
        String::new()
    };
    let default_end = if ce.is_empty() {
        rfc3339(now)
    } else {
        String::new()
    };
    let pick = |given: &str, default: &str| {
        if given.is_empty() {
            default.to_string()
        } else {
            given.to_string()
        }
    };
    Ok(json!({
        "controlScope": scope_detail(&control, &pick(cs, &default_start), &pick(ce, &default_end)),
        "experimentScope": scope_detail(&experiment, &pick(es, &default_start), &pick(ee, &default_end)),
    }))
}

/// The request starting a judgement with config `config_id`.
pub fn start_request(
    k: &KayentaMetric,
    config_id: &str,
    run_started: Option<Timestamp>,
    interval: Option<&str>,
    now: Timestamp,
) -> Result<Request, ProviderError> {
    let mut scopes = Map::new();
    for scope in k.scopes.iter().flatten() {
        scopes.insert(
            s(&scope.name).to_string(),
            scope_request(scope, k.lookback == Some(true), run_started, interval, now)?,
        );
    }
    let t = k.threshold.clone().unwrap_or_default();
    let body = json!({
        "scopes": scopes,
        "thresholds": {"pass": t.pass.unwrap_or(0), "marginal": t.marginal.unwrap_or(0)},
    });
    let url = format!(
        "{}?{}",
        http::join(
            s(&k.address),
            &format!("/canary/{}", http::encode(config_id))
        ),
        http::query_string([
            ("application", s(&k.application)),
            ("metricsAccountName", s(&k.metrics_account_name)),
            ("configurationAccountName", s(&k.configuration_account_name)),
            ("storageAccountName", s(&k.storage_account_name)),
        ])
    );
    Ok(Request::post(
        url,
        "application/json",
        body.to_string().into_bytes(),
    ))
}

/// The execution id in the start answer.
pub fn parse_execution_id(resp: &Response) -> Result<String, ProviderError> {
    if resp.status != 200 {
        return Err(resp.status_error(PROVIDER));
    }
    let body: Value =
        serde_json::from_str(&resp.body).map_err(|e| ProviderError::parse(PROVIDER, e))?;
    match body.get(EXECUTION_ID_KEY) {
        Some(Value::String(id)) if !id.is_empty() => Ok(id.clone()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        _ => Err(ProviderError::api(PROVIDER, "Invalid canaryExecutionId")),
    }
}

/// The poll of judgement `id`.
pub fn score_request(k: &KayentaMetric, id: &str) -> Request {
    Request::get(http::join(
        s(&k.address),
        &format!("/canary/{}", http::encode(id)),
    ))
}

/// A judgement's state.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Judgement {
    /// Still running.
    Pending,
    /// Done, with its score.
    Score(i64),
}

/// Parses the poll's answer.
pub fn parse_score(resp: &Response) -> Result<Judgement, ProviderError> {
    if resp.status != 200 {
        return Err(resp.status_error(PROVIDER));
    }
    let body: Value =
        serde_json::from_str(&resp.body).map_err(|e| ProviderError::parse(PROVIDER, e))?;
    match body.get("complete") {
        Some(Value::Bool(false)) => return Ok(Judgement::Pending),
        Some(Value::Bool(true)) => {}
        _ => return Err(ProviderError::api(PROVIDER, "Missing Complete Status")),
    }
    body.pointer("/result/judgeResult/score/score")
        .and_then(Value::as_f64)
        .map(|f| Judgement::Score(f.trunc() as i64))
        .ok_or_else(|| ProviderError::api(PROVIDER, "Missing Score"))
}

/// The phase of a score (upstream's `evaluateResult`).
pub fn evaluate(score: i64, pass: i64, marginal: i64) -> &'static str {
    if score >= pass {
        analysis_phase::SUCCESSFUL
    } else if score >= marginal {
        analysis_phase::INCONCLUSIVE
    } else {
        analysis_phase::FAILED
    }
}

/// A configured Kayenta judgement.
pub struct KayentaProvider {
    spec: KayentaMetric,
}

fn later(d: Duration) -> Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time> {
    let now = Timestamp::now();
    let d = SignedDuration::try_from(d).unwrap_or(SignedDuration::ZERO);
    Some(stamp(now.checked_add(d).unwrap_or(now)))
}

impl KayentaProvider {
    /// Checks the address.
    pub fn new(spec: &KayentaMetric) -> Result<Self, ProviderError> {
        if !http::is_url(s(&spec.address)) {
            return Err(ProviderError::spec(format!(
                "kayenta address {:?} is not a URL",
                s(&spec.address)
            )));
        }
        Ok(KayentaProvider { spec: spec.clone() })
    }

    async fn start(&self, run: &AnalysisRun, metric: &Metric) -> Result<String, ProviderError> {
        let lookup = config_lookup_request(&self.spec);
        let config_id = parse_config_id(&self.spec, &http::send(&lookup, TIMEOUT).await?)?;
        let run_started = run
            .status
            .as_ref()
            .and_then(|s| s.started_at.as_ref())
            .map(|t| t.0);
        let req = start_request(
            &self.spec,
            &config_id,
            run_started,
            metric.interval.as_deref(),
            Timestamp::now(),
        )?;
        parse_execution_id(&http::send(&req, TIMEOUT).await?)
    }

    async fn poll(&self, id: &str) -> Result<Judgement, ProviderError> {
        parse_score(&http::send(&score_request(&self.spec, id), TIMEOUT).await?)
    }
}

impl Provider for KayentaProvider {
    fn kind(&self) -> &'static str {
        PROVIDER
    }

    fn deadline(&self) -> Duration {
        TIMEOUT * 2 + Duration::from_secs(5)
    }

    fn run<'a>(&'a self, run: &'a AnalysisRun, metric: &'a Metric) -> BoxFuture<'a, Measurement> {
        Box::pin(async move {
            let started = super::started_now();
            match self.start(run, metric).await {
                Err(e) => errored(started, &e),
                Ok(id) => Measurement {
                    phase: Some(analysis_phase::RUNNING.into()),
                    metadata: Some(BTreeMap::from([(EXECUTION_ID_KEY.to_string(), id)])),
                    resume_at: later(RESUME_DELAY),
                    ..started
                },
            }
        })
    }

    fn resume<'a>(
        &'a self,
        _run: &'a AnalysisRun,
        _metric: &'a Metric,
        m: Measurement,
    ) -> BoxFuture<'a, Measurement> {
        Box::pin(async move {
            let id = m
                .metadata
                .as_ref()
                .and_then(|md| md.get(EXECUTION_ID_KEY))
                .cloned()
                .unwrap_or_default();
            if id.is_empty() {
                return errored(
                    m,
                    &ProviderError::api(PROVIDER, "Invalid canaryExecutionId"),
                );
            }
            match self.poll(&id).await {
                Err(e) => errored(m, &e),
                Ok(Judgement::Pending) => Measurement {
                    phase: Some(analysis_phase::RUNNING.into()),
                    resume_at: later(RESUME_DELAY),
                    ..m
                },
                Ok(Judgement::Score(score)) => {
                    let t = self.spec.threshold.clone().unwrap_or_default();
                    let phase = evaluate(score, t.pass.unwrap_or(0), t.marginal.unwrap_or(0));
                    Measurement {
                        value: Some(score.to_string()),
                        phase: Some(phase.into()),
                        finished_at: Some(stamp(Timestamp::now())),
                        ..m
                    }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> KayentaMetric {
        serde_json::from_value(json!({
            "address": "http://kayenta:8090",
            "application": "guestbook",
            "canaryConfigName": "my-test",
            "metricsAccountName": "wavefront-prod",
            "configurationAccountName": "intuit-kayenta",
            "storageAccountName": "intuit-kayenta-storage",
            "threshold": {"pass": 90, "marginal": 75},
            "scopes": [{"name": "default",
                "controlScope": {"scope": "app=guestbook and hash=1", "region": "us-west-2", "step": 60},
                "experimentScope": {"scope": "app=guestbook and hash=2", "region": "us-west-2", "step": 60}}]
        }))
        .unwrap()
    }

    fn ok(body: &str) -> Response {
        Response {
            status: 200,
            body: body.into(),
        }
    }

    #[test]
    fn config_lookup() {
        let r = config_lookup_request(&spec());
        assert_eq!(
            r.url,
            "http://kayenta:8090/canaryConfig?application=guestbook&configurationAccountName=intuit-kayenta-storage"
        );
        let configs = ok(
            r#"[{"id":"a","name":"other"},{"id":"abc-123","name":"my-test","applications":["guestbook"]}]"#,
        );
        assert_eq!(parse_config_id(&spec(), &configs).unwrap(), "abc-123");
        assert!(
            parse_config_id(&spec(), &ok("[]"))
                .unwrap_err()
                .to_string()
                .contains("Canary config \"my-test\" not found")
        );
        assert!(
            parse_config_id(
                &spec(),
                &Response {
                    status: 500,
                    body: String::new()
                }
            )
            .is_err()
        );
    }

    #[test]
    fn start() {
        let now: Timestamp = "2021-01-01T10:00:00Z".parse().unwrap();
        let started: Timestamp = "2021-01-01T09:00:00Z".parse().unwrap();
        let r = start_request(&spec(), "abc-123", Some(started), Some("30m"), now).unwrap();
        assert_eq!(
            r.url,
            "http://kayenta:8090/canary/abc-123?application=guestbook&metricsAccountName=wavefront-prod&configurationAccountName=intuit-kayenta&storageAccountName=intuit-kayenta-storage"
        );
        let body: Value = serde_json::from_slice(r.body.as_ref().unwrap()).unwrap();
        assert_eq!(
            body,
            json!({"scopes": {"default": {
                "controlScope": {"scope": "app=guestbook and hash=1", "location": "us-west-2", "step": 60,
                    "start": "2021-01-01T09:30:00Z", "end": "2021-01-01T10:00:00Z"},
                "experimentScope": {"scope": "app=guestbook and hash=2", "location": "us-west-2", "step": 60,
                    "start": "2021-01-01T09:30:00Z", "end": "2021-01-01T10:00:00Z"}}},
                "thresholds": {"pass": 90, "marginal": 75}})
        );
        let mut lookback = spec();
        lookback.lookback = Some(true);
        let r = start_request(&lookback, "x", Some(started), None, now).unwrap();
        let body: Value = serde_json::from_slice(r.body.as_ref().unwrap()).unwrap();
        assert_eq!(
            body["scopes"]["default"]["controlScope"]["start"],
            "2021-01-01T09:00:00Z"
        );
        // Without lookback or start, the metric's interval is needed.
        assert!(start_request(&spec(), "x", None, None, now).is_err());
        let mut half = spec();
        half.scopes.as_mut().unwrap()[0]
            .control_scope
            .as_mut()
            .unwrap()
            .start = Some("2021-01-01T00:00:00Z".into());
        assert!(
            start_request(&half, "x", None, Some("1m"), now)
                .unwrap_err()
                .to_string()
                .contains("must both be set")
        );
        assert_eq!(
            parse_execution_id(&ok(r#"{"canaryExecutionId":"01EX"}"#)).unwrap(),
            "01EX"
        );
        assert!(parse_execution_id(&ok(r#"{}"#)).is_err());
    }

    #[test]
    fn scores() {
        assert_eq!(
            score_request(&spec(), "01EX").url,
            "http://kayenta:8090/canary/01EX"
        );
        assert_eq!(
            parse_score(&ok(r#"{"complete":false}"#)).unwrap(),
            Judgement::Pending
        );
        assert_eq!(
            parse_score(&ok(
                r#"{"complete":true,"result":{"judgeResult":{"score":{"score":87.6}}}}"#
            ))
            .unwrap(),
            Judgement::Score(87)
        );
        assert!(
            parse_score(&ok(r#"{"result":{}}"#))
                .unwrap_err()
                .to_string()
                .contains("Missing Complete Status")
        );
        assert!(
            parse_score(&ok(r#"{"complete":true,"result":{}}"#))
                .unwrap_err()
                .to_string()
                .contains("Missing Score")
        );
        assert_eq!(evaluate(95, 90, 75), analysis_phase::SUCCESSFUL);
        assert_eq!(evaluate(90, 90, 75), analysis_phase::SUCCESSFUL);
        assert_eq!(evaluate(80, 90, 75), analysis_phase::INCONCLUSIVE);
        assert_eq!(evaluate(74, 90, 75), analysis_phase::FAILED);
    }
}
