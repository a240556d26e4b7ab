//! Metric providers: where measurements come from. Each is a [`Provider`]; [`new_provider`]
//! picks the one a metric names. Built: `prometheus`, `web`, `job`. Any other provider makes
//! the measurement an Error "provider X is not supported by this controller".
//!
//! Providers never return errors: a measurement that cannot be taken is a measurement in phase
//! Error with the reason as its message (it counts against `consecutiveErrorLimit`). Every call
//! is bounded by [`Provider::deadline`]; the controller enforces it.

pub mod http;
pub mod job;
pub mod prometheus;
pub mod web;

use crate::api::{AnalysisRun, Measurement, Metric};
use futures::future::BoxFuture;
use k8s_openapi::api::batch::v1::Job;
use kube::runtime::reflector::Store;
use std::collections::BTreeMap;
use std::time::Duration;

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
pub fn new_provider(metric: &Metric, env: &ProviderEnv) -> Result<Box<dyn Provider>, String> {
    let p = metric
        .provider
        .as_ref()
        .ok_or_else(|| "no provider specified".to_string())?;
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
    match provider_name(metric) {
        Some(name) => Err(format!(
            "provider {name} is not supported by this controller"
        )),
        None => Err("no provider specified".into()),
    }
}
