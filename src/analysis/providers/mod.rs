//! Metric providers: where measurements come from. Each is a [`Provider`]; [`new_provider`]
//! picks the one a metric names. Built: `prometheus`, `web`, `job`, `datadog`, `newRelic`,
//! `cloudWatch`, `graphite`, `influxdb`, `wavefront`, `kayenta`, `skywalking`. A plugin
//! makes the measurement an Error "provider plugin X is not supported by this controller".
//!
//! Providers never return errors: a measurement that cannot be taken is a measurement in phase
//! Error with the reason ([`ProviderError`]) as its message (it counts against
//! `consecutiveErrorLimit`). Every call is bounded by [`Provider::deadline`]; the controller
//! enforces it.
//!
//! Each HTTP provider has one file with a pure part (build the request from the spec,
//! credentials and time; parse the response into the condition's `result` and the
//! measurement's value), table-tested, and one request through [`http::send`]. What they need
//! from the world besides the network — Secrets, environment variables, the controller's
//! namespace, cached AWS credentials — comes in a [`ProviderContext`].

pub mod aws;
pub mod cloudwatch;
pub mod datadog;
pub mod graphite;
pub mod http;
pub mod influxdb;
pub mod job;
pub mod kayenta;
pub mod newrelic;
pub mod prometheus;
pub mod secrets;
pub mod skywalking;
pub mod wavefront;
pub mod web;

use crate::analysis::condition::{self, ValueWithText};
use crate::api::{AnalysisRun, Measurement, Metric};
use crate::plan::stamp;
use futures::future::BoxFuture;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::reflector::Store;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Why a measurement could not be taken (the measurement's message; `reason()` is a bounded
/// label).
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The metric names no provider.
    #[error("no provider specified")]
    Missing,
    /// The metric names a provider this controller does not carry out.
    #[error("provider {0} is not supported by this controller")]
    Unsupported(String),
    /// The provider's spec is invalid (a field, with why).
    #[error("{0}")]
    Spec(String),
    /// Credentials or settings could not be found (a Secret, a key, an environment variable).
    #[error("{0}")]
    Credentials(String),
    /// The Prometheus provider's spec is invalid.
    #[error(transparent)]
    PrometheusSpec(#[from] prometheus::PrometheusSpecError),
    /// The Web provider's spec is invalid.
    #[error(transparent)]
    WebSpec(#[from] web::WebSpecError),
    /// A Secret could not be read.
    #[error(transparent)]
    Secret(#[from] secrets::SecretError),
    /// The request could not be sent or its answer not read (connection refused, timeout).
    #[error("requesting {url}: {message}")]
    Transport { url: String, message: String },
    /// The server answered with an error status.
    #[error("{provider} returned HTTP {status}{}: {body}", status_note(*.status))]
    Status {
        provider: &'static str,
        status: u16,
        body: String,
    },
    /// The answer is not what the API documents.
    #[error("could not parse the {provider} response: {message}")]
    Parse {
        provider: &'static str,
        message: String,
    },
    /// The provider answered with an error of its own (a bad query, ...).
    #[error("{provider}: {message}")]
    Api {
        provider: &'static str,
        message: String,
    },
}

fn status_note(status: u16) -> &'static str {
    match status {
        401 | 403 => " (authentication failed)",
        429 => " (rate limited)",
        500..=599 => " (server error)",
        _ => "",
    }
}

impl ProviderError {
    /// A bounded reason, for logs and metric labels.
    pub fn reason(&self) -> &'static str {
        match self {
            ProviderError::Missing => "NoProvider",
            ProviderError::Unsupported(_) => "UnsupportedProvider",
            ProviderError::Spec(_)
            | ProviderError::PrometheusSpec(_)
            | ProviderError::WebSpec(_) => "InvalidSpec",
            ProviderError::Credentials(_) => "Credentials",
            ProviderError::Secret(_) => "Secret",
            ProviderError::Transport { .. } => "Transport",
            ProviderError::Status { .. } => "HttpStatus",
            ProviderError::Parse { .. } => "BadResponse",
            ProviderError::Api { .. } => "ProviderError",
        }
    }

    pub(crate) fn spec(msg: impl Into<String>) -> Self {
        ProviderError::Spec(msg.into())
    }

    pub(crate) fn parse(provider: &'static str, msg: impl std::fmt::Display) -> Self {
        ProviderError::Parse {
            provider,
            message: msg.to_string(),
        }
    }

    pub(crate) fn api(provider: &'static str, msg: impl Into<String>) -> Self {
        ProviderError::Api {
            provider,
            message: msg.into(),
        }
    }
}

/// Environment variables: the process's, or a fixed set (a controller embedded in another
/// program, tests).
#[derive(Clone, Debug, Default)]
pub enum Vars {
    /// `std::env`.
    #[default]
    Process,
    /// These and no others.
    Fixed(Arc<BTreeMap<String, String>>),
}

impl Vars {
    /// A fixed set of variables.
    pub fn fixed<K: Into<String>, V: Into<String>>(vars: impl IntoIterator<Item = (K, V)>) -> Self {
        Vars::Fixed(Arc::new(
            vars.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        ))
    }

    /// The value of `name`, when set (an empty value counts as set, as Go's `LookupEnv`).
    pub fn get(&self, name: &str) -> Option<String> {
        match self {
            Vars::Process => std::env::var(name).ok(),
            Vars::Fixed(m) => m.get(name).cloned(),
        }
    }

    /// The value of `name` when set and not empty.
    pub fn non_empty(&self, name: &str) -> Option<String> {
        self.get(name).filter(|v| !v.is_empty())
    }
}

/// The namespace the controller runs in (upstream's `defaults.Namespace()`): `POD_NAMESPACE`,
/// else the service account's namespace file, else `argo-rollouts`. Provider Secrets
/// (`datadog`, `newrelic`, `influxdb`, `wavefront-api-tokens`) are read there.
pub fn controller_namespace(vars: &Vars) -> String {
    if let Some(ns) = vars.get("POD_NAMESPACE") {
        return ns;
    }
    if let Ok(ns) =
        std::fs::read_to_string("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
        && !ns.trim().is_empty()
    {
        return ns.trim().to_string();
    }
    "argo-rollouts".into()
}

/// What the HTTP providers need from the world besides the network.
#[derive(Clone)]
pub struct ProviderContext {
    /// Reads Secrets (the controller's is a per-reconcile cache over GETs).
    pub secrets: Arc<dyn secrets::SecretSource>,
    /// Environment variables (`DD_*`, `AWS_*`).
    pub vars: Vars,
    /// Where provider Secrets live (see [`controller_namespace`]).
    pub controller_namespace: String,
    /// AWS credentials obtained through web identity, kept until they expire.
    pub aws: Arc<aws::CredentialCache>,
}

impl ProviderContext {
    /// A context reading Secrets from `secrets`, variables from `vars`, with the controller's
    /// namespace derived from `vars` (and the service account).
    pub fn new(secrets: Arc<dyn secrets::SecretSource>, vars: Vars) -> Self {
        ProviderContext {
            secrets,
            controller_namespace: controller_namespace(&vars),
            vars,
            aws: Arc::default(),
        }
    }
}

/// What providers need from the controller.
#[derive(Clone)]
pub struct ProviderEnv {
    /// For the Job provider.
    pub client: kube::Client,
    /// The Jobs the controller watches (label `analysisrun.argoproj.io/uid`).
    pub jobs: Store<Job>,
    /// The default Prometheus address (`ARGO_ROLLOUTS_PROMETHEUS_ADDRESS`), used when a metric
    /// names none.
    pub prometheus_address: Option<String>,
    /// Secrets, variables and caches of the HTTP providers.
    pub context: ProviderContext,
}

/// A source of measurements (upstream's `metric.Provider`).
pub trait Provider: Send + Sync {
    /// The provider's name (`Prometheus`, `Web`, `Job`).
    fn kind(&self) -> &'static str;

    /// Metadata stored on the metric's result when it is created.
    fn metadata(&self, _metric: &Metric) -> Option<BTreeMap<String, String>> {
        None
    }

    /// The longest a call may take; the controller turns an overrun into an Error measurement.
    fn deadline(&self) -> Duration {
        Duration::from_secs(60)
    }

    /// Takes a new measurement. A measurement left unfinished (no `finishedAt`, e.g. a Job
    /// still running) is resumed on a later reconcile.
    fn run<'a>(&'a self, run: &'a AnalysisRun, metric: &'a Metric) -> BoxFuture<'a, Measurement>;

    /// Checks on an unfinished measurement.
    fn resume<'a>(
        &'a self,
        _run: &'a AnalysisRun,
        _metric: &'a Metric,
        m: Measurement,
    ) -> BoxFuture<'a, Measurement> {
        Box::pin(async move { m })
    }

    /// Stops an unfinished measurement (the run is terminating).
    fn terminate<'a>(
        &'a self,
        _run: &'a AnalysisRun,
        _metric: &'a Metric,
        m: Measurement,
    ) -> BoxFuture<'a, Measurement> {
        Box::pin(async move { m })
    }
}

/// The name of the (single) provider a metric uses, as in the spec.
pub fn provider_name(metric: &Metric) -> Option<String> {
    let p = metric.provider.as_ref()?;
    let named = [
        ("prometheus", p.prometheus.is_some()),
        ("web", p.web.is_some()),
        ("job", p.job.is_some()),
        ("kayenta", p.kayenta.is_some()),
        ("datadog", p.datadog.is_some()),
        ("wavefront", p.wavefront.is_some()),
        ("newRelic", p.new_relic.is_some()),
        ("cloudWatch", p.cloud_watch.is_some()),
        ("graphite", p.graphite.is_some()),
        ("influxdb", p.influxdb.is_some()),
        ("skywalking", p.skywalking.is_some()),
    ];
    if let Some((n, _)) = named.iter().find(|(_, set)| *set) {
        return Some(n.to_string());
    }
    p.plugin
        .as_ref()
        .and_then(|m| m.keys().next())
        .map(|k| format!("plugin {k}"))
}

/// The provider for `metric` (whose arguments are resolved), or why there is none.
pub fn new_provider(
    metric: &Metric,
    env: &ProviderEnv,
) -> Result<Box<dyn Provider>, ProviderError> {
    let p = metric.provider.as_ref().ok_or(ProviderError::Missing)?;
    let ctx = &env.context;
    if let Some(prom) = &p.prometheus {
        return Ok(Box::new(prometheus::PrometheusProvider::new(
            prom,
            env.prometheus_address.as_deref(),
        )?));
    }
    if let Some(web) = &p.web {
        return Ok(Box::new(web::WebProvider::new(web)?));
    }
    if p.job.is_some() {
        return Ok(Box::new(job::JobProvider::new(
            env.client.clone(),
            env.jobs.clone(),
        )));
    }
    if let Some(dd) = &p.datadog {
        return Ok(Box::new(datadog::DatadogProvider::new(dd, ctx.clone())?));
    }
    if let Some(nr) = &p.new_relic {
        return Ok(Box::new(newrelic::NewRelicProvider::new(nr, ctx.clone())?));
    }
    if let Some(cw) = &p.cloud_watch {
        return Ok(Box::new(cloudwatch::CloudWatchProvider::new(
            cw,
            ctx.clone(),
        )?));
    }
    if let Some(g) = &p.graphite {
        return Ok(Box::new(graphite::GraphiteProvider::new(g)?));
    }
    if let Some(i) = &p.influxdb {
        return Ok(Box::new(influxdb::InfluxdbProvider::new(i, ctx.clone())?));
    }
    if let Some(w) = &p.wavefront {
        return Ok(Box::new(wavefront::WavefrontProvider::new(w, ctx.clone())?));
    }
    if let Some(k) = &p.kayenta {
        return Ok(Box::new(kayenta::KayentaProvider::new(k)?));
    }
    if let Some(s) = &p.skywalking {
        return Ok(Box::new(skywalking::SkyWalkingProvider::new(s)?));
    }
    match provider_name(metric) {
        Some(name) => Err(ProviderError::Unsupported(name)),
        None => Err(ProviderError::Missing),
    }
}

/// A measurement started now.
pub(crate) fn started_now() -> Measurement {
    Measurement {
        started_at: Some(stamp(Timestamp::now())),
        ..Default::default()
    }
}

/// A measurement that could not be taken, finished now.
pub(crate) fn errored(started: Measurement, e: &ProviderError) -> Measurement {
    crate::analysis::core::error_measurement(started, e.to_string(), Timestamp::now())
}

/// A measurement judged by the metric's conditions, finished now: its value is `v.text`, its
/// phase what the conditions say of `v.value` (Error with the reason when they cannot be
/// evaluated).
pub(crate) fn judged(
    started: Measurement,
    v: &ValueWithText,
    metric: &Metric,
    metadata: Option<BTreeMap<String, String>>,
) -> Measurement {
    let (p, note) = condition::judge(
        &v.value,
        metric.success_condition.as_deref(),
        metric.failure_condition.as_deref(),
    );
    Measurement {
        value: Some(v.text.clone()),
        phase: Some(p.to_string()),
        message: note,
        finished_at: Some(stamp(Timestamp::now())),
        metadata: metadata.filter(|m| !m.is_empty()),
        ..started
    }
}

/// The outcome of a one-request provider: judged, or an Error with the reason.
pub(crate) fn conclude(
    started: Measurement,
    metric: &Metric,
    outcome: Result<(ValueWithText, Option<BTreeMap<String, String>>), ProviderError>,
) -> Measurement {
    match outcome {
        Ok((v, md)) => judged(started, &v, metric, md),
        Err(e) => errored(started, &e),
    }
}

/// Formats a number as Go's `strconv.FormatFloat(v, 'f', -1, 64)` (upstream's value strings):
/// the shortest decimal that round-trips, never an exponent.
pub fn format_float(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    // Rust's Display is the shortest round-trip representation, without exponent.
    format!("{v}")
}

/// Go's `%v` of a float64: the shortest representation, with an exponent below 1e-4 or from
/// 1e21 (`1e-05`, `1e+21`).
pub fn go_float(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    let a = v.abs();
    if a != 0.0 && !(1e-4..1e21).contains(&a) {
        let e = format!("{v:e}");
        let (mantissa, exp) = e.split_once('e').unwrap_or((&e, "0"));
        let exp: i32 = exp.parse().unwrap_or(0);
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exp.abs());
    }
    format!("{v}")
}

/// A JSON number as an expr value: a float (Go decodes JSON numbers as `float64`).
pub(crate) fn float_list(values: &[f64]) -> expr::Value {
    expr::Value::Array(values.iter().map(|v| expr::Value::Float(*v)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_format_as_go_does() {
        assert_eq!(format_float(0.25), "0.25");
        assert_eq!(format_float(1.0), "1");
        assert_eq!(format_float(1e21), "1000000000000000000000");
        assert_eq!(format_float(0.1 + 0.2), "0.30000000000000004");
        assert_eq!(format_float(f64::NAN), "NaN");
        assert_eq!(format_float(f64::NEG_INFINITY), "-Inf");
    }

    #[test]
    fn go_floats() {
        assert_eq!(go_float(0.5), "0.5");
        assert_eq!(go_float(100.0), "100");
        assert_eq!(go_float(0.0001), "0.0001");
        assert_eq!(go_float(0.00001), "1e-05");
        assert_eq!(go_float(1.5e21), "1.5e+21");
        assert_eq!(go_float(0.0), "0");
    }

    #[test]
    fn status_errors_say_what_kind() {
        let e = ProviderError::Status {
            provider: "Datadog",
            status: 429,
            body: "slow down".into(),
        };
        assert_eq!(
            e.to_string(),
            "Datadog returned HTTP 429 (rate limited): slow down"
        );
        assert_eq!(e.reason(), "HttpStatus");
    }

    #[test]
    fn vars_and_the_controller_namespace() {
        let v = Vars::fixed([("POD_NAMESPACE", "rollouts"), ("EMPTY", "")]);
        assert_eq!(controller_namespace(&v), "rollouts");
        assert_eq!(v.get("EMPTY").as_deref(), Some(""));
        assert_eq!(v.non_empty("EMPTY"), None);
        assert_eq!(v.get("MISSING"), None);
    }
}
