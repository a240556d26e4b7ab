//! Prometheus metrics (`prometheus-client`), upstream's names where upstream has them.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `rollout_info` | gauge (1) | namespace, name, strategy, traffic_router, phase |
//! | `rollout_info_replicas_{available,unavailable,desired,updated}` | gauge | namespace, name |
//! | `rollout_phase` | gauge (1/0 per phase) | namespace, name, strategy, phase |
//! | `rollout_reconcile` | histogram (seconds) | namespace, name |
//! | `rollout_wait` | gauge (1) while the Rollout waits | namespace, name, kind (one of the 8 [`crate::plan::Wait`] kinds) |
//! | `rollout_reconcile_error` | counter (untyped, upstream's exact name) | namespace, name, reason |
//! | `analysis_run_info` | gauge (number of runs) | namespace, rollout, phase |
//! | `analysis_run_metric_type` | gauge (1) | namespace, rollout, metric, type |
//! | `analysis_run_metric_phase` | gauge (1/0 per phase) | namespace, rollout, metric, type, dry_run, phase |
//! | `rollouts_analysis_measurement_value` / `_phase` | gauge | namespace, rollout, template, metric (, phase) |
//! | `controller_clientset_k8s_request_total` | counter | kind, verb, status_code |
//! | `notification_send_success`, `notification_send_error` | counter (untyped, upstream's names) | namespace, name, type, reason |
//! | `notification_send` | histogram (seconds) | namespace, name |
//! | `leader_election_master_status` | gauge (1 leader / 0) | name |
//! | `rollouts_controller_info` | gauge (1) | version |
//!
//! Labels are bounded: Rollout names and namespaces (as upstream), never an AnalysisRun's or a
//! ReplicaSet's name (they change with every revision: upstream's `name` label of the
//! `analysis_run_*` metrics is the run's name; ours is `rollout`, the run's owner), never an
//! error string (`reason` is one of `conflict`, `api_error`, `transport`, `serialize`).
//! Per-Rollout gauges are computed from the controller's stores when scraped, so a deleted
//! Rollout's series disappear; its histogram and error series are dropped at the next scrape.
//!
//! Differences from upstream: `rollout_reconcile_error` is exposed untyped (prometheus-client
//! would add `_total` to a counter's name; the series keeps upstream's name);
//! `controller_clientset_k8s_request_total` has no `namespace`/`name` labels.

use crate::analysis::AnalysisMetrics;
use crate::analysis::metrics::key_for;
use crate::api::{AnalysisRun, Rollout, RolloutStatus, analysis_phase};
use crate::controller::Observer;
use crate::controller::slim::Compact;
use crate::plan::conditions::reason;
use kube::ResourceExt;
use kube::runtime::reflector::Store;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// Labels of `controller_clientset_k8s_request_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub kind: String,
    pub verb: String,
    pub status_code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, Ord, PartialOrd, EncodeLabelSet)]
struct RolloutLabels {
    namespace: String,
    name: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LeaseLabels {
    name: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabels {
    version: String,
}

fn histogram() -> Histogram {
    // Upstream's buckets.
    Histogram::new([0.01, 0.15, 0.25, 0.5, 1.0])
}

type ErrorCounts = BTreeMap<(String, String, &'static str), u64>;

/// What the collectors read when scraped.
#[derive(Default)]
struct Sources {
    rollouts: Mutex<Option<(Store<Compact<Rollout>>, crate::controller::Synced)>>,
    runs: Mutex<Option<Store<AnalysisRun>>>,
    analysis: Mutex<Option<Arc<AnalysisMetrics>>>,
    errors: Mutex<ErrorCounts>,
    /// Rollout → the kind of its wait at its last reconcile ([`crate::plan::Wait::kind`]).
    waits: Mutex<BTreeMap<(String, String), &'static str>>,
}

impl std::fmt::Debug for Sources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sources").finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The process's metrics. Implements the Rollout controller's [`Observer`].
pub struct Metrics {
    registry: Registry,
    reconcile: Family<RolloutLabels, Histogram, fn() -> Histogram>,
    requests: Family<RequestLabels, Counter>,
    leader: Family<LeaseLabels, Gauge>,
    sources: Arc<Sources>,
    /// Rollouts with histogram series (pruned when they leave the store).
    seen: Mutex<BTreeSet<RolloutLabels>>,
    notifications: Arc<crate::notify::metrics::NotifyMetrics>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let reconcile = Family::<RolloutLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            histogram as fn() -> Histogram,
        );
        registry.register(
            "rollout_reconcile",
            "Rollout reconciliation performance",
            reconcile.clone(),
        );
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "controller_clientset_k8s_request",
            "Number of kubernetes requests executed during application reconciliation",
            requests.clone(),
        );
        let leader = Family::<LeaseLabels, Gauge>::default();
        registry.register(
            "leader_election_master_status",
            "Whether this replica leads (1) or stands by (0), by Lease name",
            leader.clone(),
        );
        let info = Family::<VersionLabels, Gauge>::default();
        info.get_or_create(&VersionLabels {
            version: env!("CARGO_PKG_VERSION").to_string(),
        })
        .set(1);
        registry.register(
            "rollouts_controller_info",
            "Running controller version.",
            info,
        );
        let sources = Arc::new(Sources::default());
        registry.register_collector(Box::new(RolloutCollector(sources.clone())));
        registry.register_collector(Box::new(AnalysisCollector(sources.clone())));
        let notifications = Arc::new(crate::notify::metrics::NotifyMetrics::default());
        registry.register_collector(Box::new(crate::notify::metrics::NotifyCollector(
            notifications.clone(),
        )));
        Metrics {
            notifications,
            registry,
            reconcile,
            requests,
            leader,
            sources,
            seen: Mutex::new(BTreeSet::new()),
        }
    }

    /// The notification metrics (`notification_send*`).
    pub fn notifications(&self) -> Arc<crate::notify::metrics::NotifyMetrics> {
        self.notifications.clone()
    }

    /// Counts one API request.
    pub fn count_request(&self, labels: &RequestLabels) {
        self.requests.get_or_create(labels).inc();
    }

    /// Records whether this replica leads on the Lease `name`.
    pub fn set_leader(&self, name: &str, leading: bool) {
        self.leader
            .get_or_create(&LeaseLabels {
                name: name.to_string(),
            })
            .set(i64::from(leading));
    }

    /// The AnalysisRun store the `analysis_run_*` gauges are computed from.
    pub fn attach_runs(&self, runs: Store<AnalysisRun>) {
        *lock(&self.sources.runs) = Some(runs);
    }

    /// The analysis controller's measurement gauges.
    pub fn attach_analysis(&self, analysis: Arc<AnalysisMetrics>) {
        *lock(&self.sources.analysis) = Some(analysis);
    }

    /// Whether the Rollout store has listed (false before the controller started).
    pub fn rollouts_synced(&self) -> bool {
        lock(&self.sources.rollouts)
            .as_ref()
            .is_some_and(|(_, synced)| synced.is_set())
    }

    /// Drops the histogram and error series of Rollouts no longer in the store.
    fn prune(&self) {
        let Some((store, synced)) = lock(&self.sources.rollouts).clone() else {
            return;
        };
        if !synced.is_set() {
            return;
        }
        let live: BTreeSet<RolloutLabels> = store
            .state()
            .iter()
            .map(|ro| RolloutLabels {
                namespace: ro.namespace().unwrap_or_default(),
                name: ro.name_any(),
            })
            .collect();
        let mut seen = lock(&self.seen);
        seen.retain(|k| {
            let keep = live.contains(k);
            if !keep {
                self.reconcile.remove(k);
            }
            keep
        });
        lock(&self.sources.waits).retain(|(ns, name), _| {
            live.contains(&RolloutLabels {
                namespace: ns.clone(),
                name: name.clone(),
            })
        });
        lock(&self.sources.errors).retain(|(ns, name, _), _| {
            live.contains(&RolloutLabels {
                namespace: ns.clone(),
                name: name.clone(),
            })
        });
    }

    /// The exposition: OpenMetrics text when `openmetrics`, else Prometheus text 0.0.4.
    pub fn encode(&self, openmetrics: bool) -> Result<String, std::fmt::Error> {
        self.prune();
        let mut out = String::new();
        if openmetrics {
            prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        } else {
            prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)?;
        }
        Ok(out)
    }
}

impl Observer for Metrics {
    fn reconciled(
        &self,
        rollout: &Rollout,
        _status: Option<&RolloutStatus>,
        wait: Option<&crate::plan::Wait>,
        elapsed: Duration,
        error: Option<&'static str>,
    ) {
        let key = RolloutLabels {
            namespace: rollout.namespace().unwrap_or_default(),
            name: rollout.name_any(),
        };
        match error {
            None => {
                self.reconcile
                    .get_or_create(&key)
                    .observe(elapsed.as_secs_f64());
                let id = (key.namespace.clone(), key.name.clone());
                match wait {
                    Some(w) => lock(&self.sources.waits).insert(id, w.kind()),
                    None => lock(&self.sources.waits).remove(&id),
                };
                lock(&self.seen).insert(key);
            }
            Some(reason) => {
                *lock(&self.sources.errors)
                    .entry((key.namespace, key.name, reason))
                    .or_insert(0) += 1;
            }
        }
    }

    fn attach(&self, rollouts: Store<Compact<Rollout>>, synced: crate::controller::Synced) {
        *lock(&self.sources.rollouts) = Some((rollouts, synced));
    }
}

/// `strategy` and `traffic_router` labels, as upstream names them.
fn strategy_and_router(ro: &Rollout) -> (&'static str, &'static str) {
    if ro.blue_green().is_some() {
        return ("blueGreen", "");
    }
    let Some(canary) = ro.canary() else {
        return ("none", "");
    };
    let Some(tr) = canary.traffic_routing.as_ref() else {
        return ("canary", "");
    };
    // Upstream's precedence (the last match wins there).
    let router = [
        (tr.app_mesh.is_some(), "AppMesh"),
        (tr.smi.is_some(), "SMI"),
        (tr.nginx.is_some(), "Nginx"),
        (tr.istio.is_some(), "Istio"),
        (tr.ambassador.is_some(), "Ambassador"),
        (tr.alb.is_some(), "ALB"),
        (tr.traefik.is_some(), "Traefik"),
        (tr.apisix.is_some(), "Apisix"),
        (tr.plugins.as_ref().is_some_and(|p| !p.is_empty()), "Plugin"),
    ]
    .into_iter()
    .find(|(set, _)| *set)
    .map_or("", |(_, n)| n);
    ("canary", router)
}

const ROLLOUT_PHASES: [&str; 6] = [
    "Completed",
    "Progressing",
    "Paused",
    "Timeout",
    "Error",
    "Abort",
];

/// Upstream's `calculatePhase`: from the Progressing condition's reason and InvalidSpec.
pub fn calculated_phase(ro: &Rollout) -> &'static str {
    use crate::api::rollout_condition_type as ctype;
    let conditions = ro
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_deref())
        .unwrap_or_default();
    if conditions
        .iter()
        .any(|c| c.type_.as_deref() == Some(ctype::INVALID_SPEC))
    {
        return "InvalidSpec";
    }
    let progressing = conditions
        .iter()
        .find(|c| c.type_.as_deref() == Some(ctype::PROGRESSING))
        .and_then(|c| c.reason.as_deref());
    match progressing {
        Some(reason::NEW_RS_AVAILABLE) => "Completed",
        Some(reason::ROLLOUT_PAUSED) => "Paused",
        Some(reason::FAILED_RS_CREATE) => "Error",
        Some(reason::TIMED_OUT) => "Timeout",
        Some(reason::ROLLOUT_ABORTED) => "Abort",
        _ => "Progressing",
    }
}

fn gauge_family<S: EncodeLabelSet, V: prometheus_client::encoding::EncodeGaugeValue>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    metric_type: MetricType,
    series: &[(S, V)],
) -> Result<(), std::fmt::Error> {
    if series.is_empty() {
        return Ok(());
    }
    let mut m = encoder.encode_descriptor(name, help, None, metric_type)?;
    for (labels, value) in series {
        m.encode_family(labels)?.encode_gauge(value)?;
    }
    Ok(())
}

type Labels = Vec<(&'static str, String)>;

#[derive(Debug)]
struct RolloutCollector(Arc<Sources>);

impl Collector for RolloutCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let store = lock(&self.0.rollouts).clone();
        // The cached Rollouts are compact (`controller::slim`): decoded for the scrape only.
        let mut rollouts: Vec<Rollout> = store
            .map(|(s, _)| s.state())
            .unwrap_or_default()
            .iter()
            .filter_map(|c| c.decode().ok())
            .collect();
        rollouts.sort_by_key(|r| (r.namespace(), r.name_any()));
        let mut info: Vec<(Labels, i64)> = Vec::new();
        let mut phase: Vec<(Labels, i64)> = Vec::new();
        let mut available: Vec<(Labels, i64)> = Vec::new();
        let mut unavailable: Vec<(Labels, i64)> = Vec::new();
        let mut desired: Vec<(Labels, i64)> = Vec::new();
        let mut updated: Vec<(Labels, i64)> = Vec::new();
        let mut waiting: Vec<(Labels, i64)> = Vec::new();
        let waits = lock(&self.0.waits).clone();
        for ro in &rollouts {
            let ns = ro.namespace().unwrap_or_default();
            let name = ro.name_any();
            let (strategy, router) = strategy_and_router(ro);
            let calculated = calculated_phase(ro);
            let base = || vec![("namespace", ns.clone()), ("name", name.clone())];
            let mut l = base();
            l.extend([
                ("strategy", strategy.to_string()),
                ("traffic_router", router.to_string()),
                ("phase", calculated.to_string()),
            ]);
            info.push((l, 1));
            for p in ROLLOUT_PHASES {
                let mut l = base();
                l.extend([("strategy", strategy.to_string()), ("phase", p.to_string())]);
                phase.push((l, i64::from(calculated == p)));
            }
            let st = ro.status.clone().unwrap_or_default();
            let avail = i64::from(st.available_replicas.unwrap_or(0));
            available.push((base(), avail));
            unavailable.push((base(), i64::from(st.replicas.unwrap_or(0)) - avail));
            desired.push((base(), i64::from(ro.replicas_or_default())));
            updated.push((base(), i64::from(st.updated_replicas.unwrap_or(0))));
            if let Some(kind) = waits.get(&(ns.clone(), name.clone())) {
                let mut l = base();
                l.push(("kind", kind.to_string()));
                waiting.push((l, 1));
            }
        }
        gauge_family(
            &mut encoder,
            "rollout_info",
            "Information about rollout.",
            MetricType::Gauge,
            &info,
        )?;
        gauge_family(
            &mut encoder,
            "rollout_info_replicas_available",
            "The number of available replicas per rollout.",
            MetricType::Gauge,
            &available,
        )?;
        gauge_family(
            &mut encoder,
            "rollout_info_replicas_unavailable",
            "The number of unavailable replicas per rollout.",
            MetricType::Gauge,
            &unavailable,
        )?;
        gauge_family(
            &mut encoder,
            "rollout_info_replicas_desired",
            "The number of desired replicas per rollout.",
            MetricType::Gauge,
            &desired,
        )?;
        gauge_family(
            &mut encoder,
            "rollout_info_replicas_updated",
            "The number of updated replicas per rollout.",
            MetricType::Gauge,
            &updated,
        )?;
        gauge_family(
            &mut encoder,
            "rollout_wait",
            "Why the rollout is not advancing, as of its last reconcile (1 for the kind of wait; no series while it advances or is healthy).",
            MetricType::Gauge,
            &waiting,
        )?;
        gauge_family(
            &mut encoder,
            "rollout_phase",
            "Information on the state of the rollout (DEPRECATED - use rollout_info)",
            MetricType::Gauge,
            &phase,
        )?;
        let errors: Vec<(Labels, u64)> = lock(&self.0.errors)
            .iter()
            .map(|((ns, name, reason), n)| {
                (
                    vec![
                        ("namespace", ns.clone()),
                        ("name", name.clone()),
                        ("reason", reason.to_string()),
                    ],
                    *n,
                )
            })
            .collect();
        // Untyped so the series keeps upstream's name (a counter would get `_total`).
        gauge_family(
            &mut encoder,
            "rollout_reconcile_error",
            "Error occurring during the rollout",
            MetricType::Unknown,
            &errors,
        )?;
        Ok(())
    }
}

const ANALYSIS_PHASES: [&str; 6] = [
    analysis_phase::PENDING,
    analysis_phase::ERROR,
    analysis_phase::FAILED,
    analysis_phase::SUCCESSFUL,
    analysis_phase::RUNNING,
    analysis_phase::INCONCLUSIVE,
];

/// Upstream's `type` label of a metric (its provider).
fn metric_type(metric: &crate::api::Metric) -> String {
    match crate::analysis::providers::provider_name(metric).as_deref() {
        Some("prometheus") => "Prometheus".into(),
        Some("web") => "Web".into(),
        Some("job") => "Job".into(),
        Some("kayenta") => "Kayenta".into(),
        Some("datadog") => "Datadog".into(),
        Some("wavefront") => "Wavefront".into(),
        Some("newRelic") => "NewRelic".into(),
        Some("cloudWatch") => "CloudWatch".into(),
        Some("graphite") => "Graphite".into(),
        Some("influxdb") => "Influxdb".into(),
        Some("skywalking") => "SkyWalking".into(),
        Some(p) if p.starts_with("plugin ") => "Plugin".into(),
        _ => "Unknown".into(),
    }
}

fn is_dry_run(run: &AnalysisRun, metric: &str) -> bool {
    run.spec.dry_run.iter().flatten().any(
        |d| matches!(d.metric_name.as_deref(), Some(n) if n == metric || n == "*" || n == ".*"),
    )
}

#[derive(Debug)]
struct AnalysisCollector(Arc<Sources>);

impl Collector for AnalysisCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let store = lock(&self.0.runs).clone();
        let mut runs = store.map(|s| s.state()).unwrap_or_default();
        // Oldest first: for a metric, the newest run's phase wins below.
        runs.sort_by_key(|r| {
            (
                r.metadata.creation_timestamp.clone().map(|t| t.0),
                r.name_any(),
            )
        });
        let mut counts: BTreeMap<(String, String, String), i64> = BTreeMap::new();
        // (namespace, rollout, metric) → (type, dry_run, phase) of the newest run.
        let mut metrics: BTreeMap<(String, String, String), (String, bool, String)> =
            BTreeMap::new();
        for run in &runs {
            let owner = key_for(run, "");
            let phase = run
                .status
                .as_ref()
                .and_then(|s| s.phase.clone())
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| analysis_phase::PENDING.to_string());
            *counts
                .entry((owner.namespace.clone(), owner.rollout.clone(), phase))
                .or_insert(0) += 1;
            for m in run.spec.metrics.iter().flatten() {
                let Some(name) = m.name.clone() else { continue };
                let result_phase = run
                    .status
                    .as_ref()
                    .and_then(|s| s.metric_results.as_ref())
                    .and_then(|rs| rs.iter().find(|r| r.name.as_deref() == Some(name.as_str())))
                    .and_then(|r| r.phase.clone())
                    .filter(|p| !p.is_empty())
                    .unwrap_or_else(|| analysis_phase::PENDING.to_string());
                let dry = is_dry_run(run, &name);
                metrics.insert(
                    (owner.namespace.clone(), owner.rollout.clone(), name),
                    (metric_type(m), dry, result_phase),
                );
            }
        }
        let info: Vec<(Labels, i64)> = counts
            .into_iter()
            .map(|((ns, ro, phase), n)| {
                (
                    vec![("namespace", ns), ("rollout", ro), ("phase", phase)],
                    n,
                )
            })
            .collect();
        gauge_family(
            &mut encoder,
            "analysis_run_info",
            "Number of AnalysisRuns by owner and phase.",
            MetricType::Gauge,
            &info,
        )?;
        let mut types: Vec<(Labels, i64)> = Vec::new();
        let mut phases: Vec<(Labels, i64)> = Vec::new();
        for ((ns, ro, metric), (ty, dry, phase)) in metrics {
            let base = vec![
                ("namespace", ns),
                ("rollout", ro),
                ("metric", metric),
                ("type", ty),
            ];
            types.push((base.clone(), 1));
            for p in ANALYSIS_PHASES {
                let mut l = base.clone();
                l.extend([("dry_run", dry.to_string()), ("phase", p.to_string())]);
                phases.push((l, i64::from(phase == p)));
            }
        }
        gauge_family(
            &mut encoder,
            "analysis_run_metric_type",
            "Information on the type of a specific metric in the Analysis Runs",
            MetricType::Gauge,
            &types,
        )?;
        gauge_family(
            &mut encoder,
            "analysis_run_metric_phase",
            "Phase of a metric in the newest AnalysisRun of its owner (1 for the current phase).",
            MetricType::Gauge,
            &phases,
        )?;
        let samples = lock(&self.0.analysis)
            .clone()
            .map(|a| a.samples())
            .unwrap_or_default();
        let values: Vec<(Labels, f64)> = samples
            .iter()
            .map(|(k, s)| {
                (
                    vec![
                        ("namespace", k.namespace.clone()),
                        ("rollout", k.rollout.clone()),
                        ("template", k.template.clone()),
                        ("metric", k.metric.clone()),
                    ],
                    s.value,
                )
            })
            .collect();
        gauge_family(
            &mut encoder,
            "rollouts_analysis_measurement_value",
            "Value of the latest measurement of an analysis metric (NaN when not a single number).",
            MetricType::Gauge,
            &values,
        )?;
        let mut measurement_phases: Vec<(Labels, i64)> = Vec::new();
        for (k, s) in &samples {
            for p in ANALYSIS_PHASES {
                measurement_phases.push((
                    vec![
                        ("namespace", k.namespace.clone()),
                        ("rollout", k.rollout.clone()),
                        ("template", k.template.clone()),
                        ("metric", k.metric.clone()),
                        ("phase", p.to_string()),
                    ],
                    i64::from(s.phase == p),
                ));
            }
        }
        gauge_family(
            &mut encoder,
            "rollouts_analysis_measurement_phase",
            "Phase of the latest measurement of an analysis metric.",
            MetricType::Gauge,
            &measurement_phases,
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rollout(name: &str, conditions: serde_json::Value) -> Rollout {
        serde_json::from_value(json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
            "metadata": {"name": name, "namespace": "ns"},
            "spec": {"replicas": 3, "strategy": {"canary": {"trafficRouting": {"istio": {}}}}},
            "status": {"replicas": 3, "availableReplicas": 2, "updatedReplicas": 1,
                       "conditions": conditions}
        }))
        .unwrap()
    }

    #[test]
    fn phases_follow_upstream() {
        let ro = rollout(
            "a",
            json!([{"type": "Progressing", "reason": "RolloutPaused"}]),
        );
        assert_eq!(calculated_phase(&ro), "Paused");
        let ro = rollout(
            "a",
            json!([{"type": "Progressing", "reason": "NewReplicaSetAvailable"},
                   {"type": "InvalidSpec", "reason": "InvalidSpec"}]),
        );
        assert_eq!(calculated_phase(&ro), "InvalidSpec");
        let ro = rollout("a", json!([]));
        assert_eq!(calculated_phase(&ro), "Progressing");
        assert_eq!(strategy_and_router(&ro), ("canary", "Istio"));
    }

    #[tokio::test]
    async fn exposes_rollouts_reconciles_errors_and_requests() {
        let m = Metrics::new();
        let (reader, mut writer) = kube::runtime::reflector::store::<Compact<Rollout>>();
        let a = rollout(
            "a",
            json!([{"type": "Progressing", "reason": "NewReplicaSetAvailable"}]),
        );
        writer.apply_watcher_event(&kube::runtime::watcher::Event::Init);
        writer.apply_watcher_event(&kube::runtime::watcher::Event::InitApply(Compact::new(&a)));
        writer.apply_watcher_event(&kube::runtime::watcher::Event::InitDone);
        let synced = crate::controller::Synced::default();
        synced.set();
        m.attach(reader, synced);
        assert!(m.rollouts_synced());
        m.reconciled(
            &a,
            None,
            Some(&crate::plan::Wait::Indefinite),
            Duration::from_millis(20),
            None,
        );
        m.reconciled(&a, None, None, Duration::ZERO, Some("conflict"));
        m.count_request(&RequestLabels {
            kind: "rollouts".into(),
            verb: "list".into(),
            status_code: "200".into(),
        });
        m.set_leader("lock", true);
        let text = m.encode(false).unwrap();
        for want in [
            r#"rollout_info{namespace="ns",name="a",strategy="canary",traffic_router="Istio",phase="Completed"} 1"#,
            r#"rollout_phase{namespace="ns",name="a",strategy="canary",phase="Completed"} 1"#,
            r#"rollout_phase{namespace="ns",name="a",strategy="canary",phase="Paused"} 0"#,
            r#"rollout_info_replicas_unavailable{namespace="ns",name="a"} 1"#,
            r#"rollout_reconcile_count{namespace="ns",name="a"} 1"#,
            r#"rollout_reconcile_bucket{namespace="ns",name="a",le="0.15"} 1"#,
            r#"rollout_reconcile_error{namespace="ns",name="a",reason="conflict"} 1"#,
            r#"controller_clientset_k8s_request_total{kind="rollouts",verb="list",status_code="200"} 1"#,
            r#"leader_election_master_status{name="lock"} 1"#,
            r#"rollout_wait{namespace="ns",name="a",kind="Indefinite"} 1"#,
        ] {
            assert!(text.contains(want), "missing {want} in\n{text}");
        }
        // The Rollout is deleted: its series go.
        writer.apply_watcher_event(&kube::runtime::watcher::Event::Delete(Compact::new(&a)));
        let text = m.encode(true).unwrap();
        assert!(!text.contains("name=\"a\""), "{text}");
        assert!(text.contains("controller_clientset_k8s_request_total"));
    }

    /// A `/readyz` probe during the first listing must not take the store's readiness waker
    /// away from the kube Controller (which then would never start reconciling).
    #[tokio::test]
    async fn a_probe_during_the_first_listing_does_not_stall_the_controller() {
        use kube::runtime::watcher::Event;
        let m = Metrics::new();
        let (reader, mut writer) = kube::runtime::reflector::store::<Compact<Rollout>>();
        let synced = crate::controller::Synced::default();
        m.attach(reader.clone(), synced.clone());
        // The Controller's runner waits on the store's readiness.
        let runner = tokio::spawn({
            let reader = reader.clone();
            async move { reader.wait_until_ready().await.is_ok() }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        // Probes and scrapes while it lists.
        assert!(!m.rollouts_synced());
        let _ = m.encode(true).unwrap();
        writer.apply_watcher_event(&Event::Init);
        writer.apply_watcher_event(&Event::InitDone);
        synced.set();
        let started = tokio::time::timeout(Duration::from_secs(2), runner).await;
        assert!(
            matches!(started, Ok(Ok(true))),
            "the runner was never woken"
        );
        assert!(m.rollouts_synced());
    }

    #[tokio::test]
    async fn analysis_runs_are_labelled_by_owner() {
        let m = Metrics::new();
        let (reader, mut writer) = kube::runtime::reflector::store::<AnalysisRun>();
        let run: AnalysisRun = serde_json::from_value(json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisRun",
            "metadata": {"name": "ro-6f9c-2-1", "namespace": "ns",
                "ownerReferences": [{"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
                    "name": "ro", "uid": "u", "controller": true}]},
            "spec": {"metrics": [{"name": "success-rate",
                "provider": {"prometheus": {"query": "up"}}}]},
            "status": {"phase": "Running",
                "metricResults": [{"name": "success-rate", "phase": "Running"}]}
        }))
        .unwrap();
        writer.apply_watcher_event(&kube::runtime::watcher::Event::Apply(run));
        m.attach_runs(reader);
        let text = m.encode(false).unwrap();
        assert!(
            text.contains(r#"analysis_run_info{namespace="ns",rollout="ro",phase="Running"} 1"#),
            "{text}"
        );
        assert!(text.contains(
            r#"analysis_run_metric_phase{namespace="ns",rollout="ro",metric="success-rate",type="Prometheus",dry_run="false",phase="Running"} 1"#
        ), "{text}");
        assert!(!text.contains("ro-6f9c-2-1"));
    }
}
