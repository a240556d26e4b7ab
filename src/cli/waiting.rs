//! "Why is my rollout waiting?" for `get rollout`: the planner's own answer ([`Wait`]), from
//! the objects the controller would look at.
//!
//! `get` already has the Rollout, its ReplicaSets and its AnalysisRuns; this reads the rest
//! of what a plan observes (the Services the spec names, the traffic router objects, the
//! AnalysisTemplates, the Experiments and the workload a `workloadRef` names) with a few GETs, and runs
//! [`plan::plan`] on it, exactly as the controller would now. Nothing is written. An object it
//! may not read is taken as missing, which can only make the answer name it.

use super::cluster::Conn;
use super::info::Model;
use crate::api::{AnalysisTemplate, ClusterAnalysisTemplate, Experiment};
use crate::plan::{self, Observed, Wait};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::{Api, DynamicObject, ListParams};

/// What holds the Rollout now, as the controller would plan it (`None`: nothing does, or the
/// objects could not be read).
pub async fn waiting(conn: &Conn, model: &Model, now: Timestamp) -> Option<Wait> {
    let ro = &model.rollout;
    let ns = &conn.namespace;
    let svc_api: Api<Service> = Api::namespaced(conn.client.clone(), ns);
    let mut services = Vec::new();
    for name in plan::service_names(ro) {
        if let Ok(Some(svc)) = svc_api.get_opt(&name).await {
            services.push((name, svc));
        }
    }
    let mut traffic_objects = crate::traffic::Objects::new();
    for key in crate::traffic::referenced_objects(ro) {
        let api: Api<DynamicObject> =
            Api::namespaced_with(conn.client.clone(), &key.namespace, &key.api_resource());
        if let Ok(Some(obj)) = api.get_opt(&key.name).await
            && let Ok(value) = serde_json::to_value(obj)
        {
            traffic_objects.insert(key, value);
        }
    }
    let workload = match plan::workload::key(ro) {
        Some(Ok(key)) => {
            let api: Api<DynamicObject> =
                Api::namespaced_with(conn.client.clone(), &key.namespace, &key.api_resource());
            api.get_opt(&key.name)
                .await
                .ok()
                .flatten()
                .and_then(|o| serde_json::to_value(o).ok())
        }
        _ => None,
    };
    let templates: Vec<AnalysisTemplate> = Api::namespaced(conn.client.clone(), ns)
        .list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default();
    let experiments: Vec<Experiment> = Api::namespaced(conn.client.clone(), ns)
        .list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default();
    let cluster_templates: Vec<ClusterAnalysisTemplate> = Api::all(conn.client.clone())
        .list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default();
    let uid = ro.uid();
    let owned = |refs: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference]| {
        refs.iter()
            .any(|o| o.controller == Some(true) && Some(&o.uid) == uid.as_ref())
    };
    let obs = Observed {
        rollout: ro,
        replica_sets: model
            .replica_sets
            .iter()
            .filter(|rs| owned(rs.owner_references()))
            .collect(),
        services: services.iter().map(|(n, s)| (n.clone(), s)).collect(),
        adoptable: None,
        pods: Some(model.pods.iter().collect()),
        traffic_objects,
        analysis_runs: model
            .analysis_runs
            .iter()
            .filter(|r| owned(r.owner_references()))
            .collect(),
        analysis_templates: templates.iter().map(|t| (t.name_any(), t)).collect(),
        cluster_analysis_templates: cluster_templates
            .iter()
            .map(|t| (t.name_any(), t))
            .collect(),
        workload,
        experiments: experiments
            .iter()
            .filter(|e| owned(e.owner_references()))
            .collect(),
    };
    plan::plan(&obs, now).wait
}
