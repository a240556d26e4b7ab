//! Observe: everything one plan reads, gathered from the reflector stores (and, only when the
//! planner needs them, the few reads no store holds: the workload a `workloadRef` names and the
//! router objects are lazily watched stores; Experiments come from a store like AnalysisRuns; the pods of a restart or an ephemeral-metadata
//! change, and the dry run that decides adoption, are requests).
//!
//! [`observe`] owns what it gathered ([`Observation`]); [`Observation::observed`] lends it to
//! the pure planner as [`Observed`]. The Rollout's ReplicaSets are decoded here from the compact
//! cache ([`super::slim::Compact`]), as the reconcile decoded the Rollout itself.

use super::{Context, Error, adopt};
use crate::api::{AnalysisRun, AnalysisTemplate, ClusterAnalysisTemplate, Experiment, Rollout};
use crate::plan::{self, Observed};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::jiff::Timestamp;
use kube::api::ListParams;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, ResourceExt};
use std::sync::Arc;

/// What one reconcile of one Rollout sees (owned; see [`Observation::observed`]).
pub(crate) struct Observation {
    rollout: Arc<Rollout>,
    replica_sets: Vec<Arc<ReplicaSet>>,
    services: Vec<(String, Arc<Service>)>,
    adoptable: Option<String>,
    pods: Option<Vec<Pod>>,
    traffic_objects: crate::traffic::Objects,
    analysis_runs: Vec<Arc<AnalysisRun>>,
    experiments: Vec<Arc<Experiment>>,
    analysis_templates: Vec<Arc<AnalysisTemplate>>,
    cluster_analysis_templates: Vec<Arc<ClusterAnalysisTemplate>>,
    workload: Option<serde_json::Value>,
}

/// Gathers what the planner reads about `ro` at `now`.
pub(crate) async fn observe(
    ctx: &Context,
    ro: Arc<Rollout>,
    now: Timestamp,
) -> Result<Observation, Error> {
    let ns = ro.namespace().unwrap_or_default();
    let in_ns = |o: Option<String>| o.as_deref() == Some(ns.as_str());
    // The Rollout's own ReplicaSets and AnalysisRuns, by look-up in the by-owner indexes
    // (confirmed against the stores, which are the truth).
    let uid = ro.uid().unwrap_or_default();
    let replica_sets: Vec<Arc<ReplicaSet>> = ctx
        .replica_sets_by_owner
        .get(&uid)
        .iter()
        .filter_map(|r| ctx.replica_sets.get(r))
        .filter(|rs| in_ns(rs.namespace()) && crate::api::is_controlled_by(&**rs, &*ro))
        .map(|rs| rs.decode().map(Arc::new))
        .collect::<Result<_, _>>()?;
    let services: Vec<(String, Arc<Service>)> = plan::service_names(&ro)
        .into_iter()
        .filter_map(|n| {
            let svc = ctx.services.get(&ObjectRef::new(&n).within(&ns))?;
            Some((n, svc))
        })
        .collect();
    // The object a `workloadRef` names (kept in a lazily started store, like router objects),
    // and the Rollout resolved with its template for the look-ups below; the planner resolves
    // it again itself (and reports a missing or unsupported workload).
    let workload_key = plan::workload::key(&ro).and_then(Result::ok);
    let workload = match &workload_key {
        Some(k) => ctx.traffic.observe(std::slice::from_ref(k)).await.remove(k),
        None => None,
    };
    let resolved = plan::workload::resolve(&ro, workload.as_ref())
        .ok()
        .map(|(r, _)| r);
    let effective: &Rollout = resolved.as_ref().unwrap_or(&ro);
    let owned: Vec<&ReplicaSet> = replica_sets.iter().map(|rs| &**rs).collect();
    let adoptable = adopt::find_adoptable(&ctx.client, effective, &owned).await?;
    // Router objects, for traffic-routed canaries.
    let traffic_objects = if ro.canary().is_some_and(|c| c.traffic_routing.is_some()) {
        ctx.traffic
            .observe(&crate::traffic::referenced_objects(&ro))
            .await
    } else {
        Default::default()
    };
    // Pods are listed only while a restart is due or a ReplicaSet's pods change ephemeral
    // metadata (not cached: most reconciles need none).
    let pods = if plan::needs_pods(effective, &owned, adoptable.as_deref(), now) {
        let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
        let selector = plan::replicasets::format_selector(effective.spec.selector.as_ref());
        Some(
            api.list(&ListParams::default().labels(&selector))
                .await?
                .items,
        )
    } else {
        None
    };
    drop(owned);
    let analysis_runs = ctx
        .analysis_runs_by_owner
        .get(&uid)
        .iter()
        .filter_map(|r| ctx.analysis_runs.get(r))
        .filter(|r| in_ns(r.namespace()) && crate::api::is_controlled_by(&**r, &*ro))
        .collect();
    let experiments = ctx
        .experiments
        .state()
        .into_iter()
        .filter(|e| in_ns(e.namespace()) && crate::api::is_controlled_by(&**e, &*ro))
        .collect();
    let analysis_templates = ctx
        .analysis_templates
        .state()
        .into_iter()
        .filter(|t| in_ns(t.namespace()))
        .collect();
    Ok(Observation {
        rollout: ro,
        replica_sets,
        services,
        adoptable,
        pods,
        traffic_objects,
        analysis_runs,
        experiments,
        analysis_templates,
        cluster_analysis_templates: ctx.cluster_analysis_templates.state(),
        workload,
    })
}

impl Observation {
    /// The AnalysisRuns the Rollout controls (shared with the store).
    pub(crate) fn analysis_runs(&self) -> &[Arc<AnalysisRun>] {
        &self.analysis_runs
    }

    /// The planner's input, borrowed from this observation (the router objects and the
    /// workload move into it: call once).
    pub(crate) fn observed(&mut self) -> Observed<'_> {
        let traffic_objects = std::mem::take(&mut self.traffic_objects);
        let workload = self.workload.take();
        let this = &*self;
        Observed {
            rollout: &this.rollout,
            replica_sets: this.replica_sets.iter().map(|rs| &**rs).collect(),
            services: this
                .services
                .iter()
                .map(|(n, s)| (n.clone(), &**s))
                .collect(),
            adoptable: this.adoptable.clone(),
            pods: this.pods.as_ref().map(|l| l.iter().collect()),
            traffic_objects,
            analysis_runs: this.analysis_runs.iter().map(|r| &**r).collect(),
            analysis_templates: this
                .analysis_templates
                .iter()
                .map(|t| (t.name_any(), &**t))
                .collect(),
            cluster_analysis_templates: this
                .cluster_analysis_templates
                .iter()
                .map(|t| (t.name_any(), &**t))
                .collect(),
            workload,
            experiments: this.experiments.iter().map(|e| &**e).collect(),
        }
    }
}
