//! Actuate: a plan's effects become API requests, sent in order.
//!
//! [`requests`] is the whole translation, and it is pure: each [`Effect`] becomes the exact
//! requests (verb, object, merge-patch body) the controller sends. [`send`] then carries one
//! request out, with the field manager of every write, and says which answers are expected
//! ([`tolerated`]): a 404 for an object already gone, a 409 for a create that already
//! happened. The in-memory simulator interprets the same effects; the tests below prove, for
//! every [`Effect`] variant, that applying these requests as the API server would (JSON merge
//! patches) leaves the objects as the simulator leaves them.

use super::{Context, Error, FIELD_MANAGER};
use crate::api::consts::{
    DEFAULT_ROLLOUT_UNIQUE_LABEL_KEY, EPHEMERAL_METADATA_ANNOTATION, MANAGED_BY_ROLLOUTS_KEY,
};
use crate::api::{AnalysisRun, Experiment, Rollout};
use crate::plan::{Effect, RsPatch};
use crate::traffic::ObjectChange;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use serde_json::{Value, json};
use std::sync::atomic::Ordering;

/// The kinds the controller writes by name (router objects and workloads are
/// [`ObjectChange`]s).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    ReplicaSet,
    Service,
    Pod,
    AnalysisRun,
    Experiment,
    /// The Rollout's own metadata (its status is written by `report`).
    Rollout,
}

/// One API request.
#[derive(Clone, Debug, PartialEq)]
pub enum Request {
    CreateReplicaSet(Box<ReplicaSet>),
    CreateAnalysisRun(Box<AnalysisRun>),
    CreateExperiment(Box<Experiment>),
    /// A JSON merge patch of the named object.
    Patch {
        kind: Kind,
        name: String,
        body: Value,
    },
    /// A delete, with the object's uid as a precondition when known.
    Delete {
        kind: Kind,
        name: String,
        uid: Option<String>,
    },
    /// The `eviction` subresource of a pod.
    Evict {
        pod: String,
    },
    /// A change to a traffic router object.
    Router(ObjectChange),
    /// A change to the workload a `workloadRef` names.
    Workload(ObjectChange),
}

/// The requests that carry out `effect` for the Rollout `rollout`, whose metadata writes carry
/// `resource_version` as a precondition.
pub fn requests(effect: &Effect, rollout: &str, resource_version: &str) -> Vec<Request> {
    match effect {
        Effect::CreateReplicaSet(rs) => vec![Request::CreateReplicaSet(rs.clone())],
        Effect::PatchReplicaSet { name, patch } => vec![Request::Patch {
            kind: Kind::ReplicaSet,
            name: name.clone(),
            body: replica_set_patch(patch),
        }],
        Effect::DeleteReplicaSet { name, uid } => vec![Request::Delete {
            kind: Kind::ReplicaSet,
            name: name.clone(),
            uid: uid.clone(),
        }],
        Effect::SetServiceSelector { service, hash } => vec![Request::Patch {
            kind: Kind::Service,
            name: service.clone(),
            body: json!({
                "metadata": {"annotations": {MANAGED_BY_ROLLOUTS_KEY: rollout}},
                "spec": {"selector": {DEFAULT_ROLLOUT_UNIQUE_LABEL_KEY: hash}},
            }),
        }],
        Effect::Traffic(change) => vec![Request::Router(change.clone())],
        Effect::ScaleWorkload(change) => vec![Request::Workload(change.clone())],
        Effect::CreateAnalysisRun(run) => vec![Request::CreateAnalysisRun(run.clone())],
        Effect::TerminateAnalysisRun { name } => vec![Request::Patch {
            kind: Kind::AnalysisRun,
            name: name.clone(),
            body: json!({"spec": {"terminate": true}}),
        }],
        Effect::DeleteAnalysisRun { name } => vec![Request::Delete {
            kind: Kind::AnalysisRun,
            name: name.clone(),
            uid: None,
        }],
        Effect::CreateExperiment(ex) => vec![Request::CreateExperiment(ex.clone())],
        Effect::TerminateExperiment { name } => vec![Request::Patch {
            kind: Kind::Experiment,
            name: name.clone(),
            body: json!({"spec": {"terminate": true}}),
        }],
        Effect::DeleteExperiment { name } => vec![Request::Delete {
            kind: Kind::Experiment,
            name: name.clone(),
            uid: None,
        }],
        Effect::EphemeralMetadata {
            replica_set,
            template,
            pods,
            record,
        } => {
            let record_body = record
                .as_ref()
                .map(|r| json!({"metadata": {"annotations": {EPHEMERAL_METADATA_ANNOTATION: r}}}));
            let mut rs_body = (!template.is_empty())
                .then(|| json!({"spec": {"template": {"metadata": template.to_json()}}}));
            // Without pods to update, the template and the record go in one patch; otherwise
            // the record is written last, once every pod has its metadata.
            let together = pods.is_empty() && rs_body.is_some();
            if together && let (Some(body), Some(rec)) = (rs_body.as_mut(), record_body.as_ref()) {
                body["metadata"] = rec["metadata"].clone();
            }
            let rs_patch = |body| Request::Patch {
                kind: Kind::ReplicaSet,
                name: replica_set.clone(),
                body,
            };
            let mut out: Vec<Request> = rs_body.into_iter().map(rs_patch).collect();
            out.extend(pods.iter().map(|(pod, change)| Request::Patch {
                kind: Kind::Pod,
                name: pod.clone(),
                body: json!({"metadata": change.to_json()}),
            }));
            if !together && let Some(body) = record_body {
                out.push(rs_patch(body));
            }
            out
        }
        Effect::EvictPod { name } => vec![Request::Evict { pod: name.clone() }],
        Effect::SetRolloutRevision { .. } | Effect::SetWorkloadGeneration { .. } => effect
            .rollout_annotation()
            .map(|(key, value)| Request::Patch {
                kind: Kind::Rollout,
                name: rollout.to_owned(),
                body: json!({
                    "metadata": {"resourceVersion": resource_version, "annotations": {key: value}},
                }),
            })
            .into_iter()
            .collect(),
    }
}

/// The merge patch of a ReplicaSet's replicas, minReadySeconds, annotations and affinity.
fn replica_set_patch(patch: &RsPatch) -> Value {
    let mut body = json!({});
    if !patch.annotations.is_empty() {
        body["metadata"] = json!({"annotations": patch.annotations});
    }
    let mut spec = serde_json::Map::new();
    if let Some(r) = patch.replicas {
        spec.insert("replicas".into(), json!(r));
    }
    if let Some(m) = patch.min_ready_seconds {
        spec.insert("minReadySeconds".into(), json!(m));
    }
    if let Some(a) = &patch.affinity {
        spec.insert("template".into(), json!({"spec": {"affinity": a}}));
    }
    if !spec.is_empty() {
        body["spec"] = Value::Object(spec);
    }
    body
}

/// The error codes that mean a request's work is already done (or cannot be, harmlessly):
/// 404 for what is gone, 409 for a create that already happened or a delete whose object was
/// replaced, 429 for an eviction a PodDisruptionBudget refuses (the next reconcile retries).
pub fn tolerated(req: &Request) -> &'static [u16] {
    match req {
        Request::CreateAnalysisRun(_) | Request::CreateExperiment(_) => &[409],
        Request::Patch {
            kind: Kind::Pod | Kind::AnalysisRun | Kind::Experiment,
            ..
        } => &[404],
        Request::Delete {
            kind: Kind::ReplicaSet,
            ..
        } => &[404, 409],
        Request::Delete { .. } => &[404],
        Request::Evict { .. } => &[404, 429],
        _ => &[],
    }
}

/// What a sent request came to.
#[derive(Debug)]
pub enum Sent {
    /// Done (or already done: a tolerated answer).
    Done,
    /// The Rollout's metadata was written; its new resourceVersion.
    RolloutWritten(String),
    /// The object exists already (a `CreateReplicaSet` answered 409).
    Exists,
    /// The object moved on since it was read: plan again.
    Stale,
}

fn api_error(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(s) => Some(s.code),
        _ => None,
    }
}

/// Sends one request in namespace `ns`, counting it.
pub(crate) async fn send(ctx: &Context, ns: &str, req: &Request) -> Result<Sent, Error> {
    let client = &ctx.client;
    let pp = PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    };
    let post = PostParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    };
    let w = &ctx.writes;
    let counter = match req {
        Request::CreateReplicaSet(_) => &w.replica_sets,
        Request::CreateAnalysisRun(_) => &w.analysis_runs,
        Request::CreateExperiment(_) => &w.experiments,
        Request::Evict { .. } => &w.pods,
        Request::Router(_) => &w.traffic,
        Request::Workload(_) => &w.workloads,
        Request::Patch { kind, .. } | Request::Delete { kind, .. } => match kind {
            Kind::ReplicaSet => &w.replica_sets,
            Kind::AnalysisRun => &w.analysis_runs,
            Kind::Experiment => &w.experiments,
            Kind::Service => &w.services,
            Kind::Pod => &w.pods,
            Kind::Rollout => &w.rollouts,
        },
    };
    counter.fetch_add(1, Ordering::Relaxed);
    let res: Result<Sent, kube::Error> = match req {
        Request::CreateReplicaSet(rs) => {
            let api: Api<ReplicaSet> = Api::namespaced(client.clone(), ns);
            match api.create(&post, rs).await {
                Ok(_) => Ok(Sent::Done),
                Err(e) if api_error(&e) == Some(409) => return Ok(Sent::Exists),
                Err(e) => Err(e),
            }
        }
        Request::CreateAnalysisRun(run) => {
            let api: Api<AnalysisRun> = Api::namespaced(client.clone(), ns);
            api.create(&post, run).await.map(|_| Sent::Done)
        }
        Request::CreateExperiment(ex) => {
            let api: Api<Experiment> = Api::namespaced(client.clone(), ns);
            api.create(&post, ex).await.map(|_| Sent::Done)
        }
        Request::Patch { kind, name, body } => {
            let patch = Patch::Merge(body);
            match kind {
                Kind::ReplicaSet => patch_of::<ReplicaSet>(client, ns, name, &pp, &patch).await,
                Kind::Service => patch_of::<Service>(client, ns, name, &pp, &patch).await,
                Kind::Pod => patch_of::<Pod>(client, ns, name, &pp, &patch).await,
                Kind::AnalysisRun => patch_of::<AnalysisRun>(client, ns, name, &pp, &patch).await,
                Kind::Experiment => patch_of::<Experiment>(client, ns, name, &pp, &patch).await,
                Kind::Rollout => {
                    let api: Api<Rollout> = Api::namespaced(client.clone(), ns);
                    match api.patch(name, &pp, &patch).await {
                        Ok(updated) => Ok(Sent::RolloutWritten(
                            kube::ResourceExt::resource_version(&updated).unwrap_or_default(),
                        )),
                        Err(e) if api_error(&e) == Some(409) => return Ok(Sent::Stale),
                        Err(e) => Err(e),
                    }
                }
            }
        }
        Request::Delete { kind, name, uid } => {
            let dp = DeleteParams {
                preconditions: uid.as_ref().map(|uid| Preconditions {
                    uid: Some(uid.clone()),
                    resource_version: None,
                }),
                ..Default::default()
            };
            match kind {
                Kind::ReplicaSet => delete_of::<ReplicaSet>(client, ns, name, &dp).await,
                Kind::Service => delete_of::<Service>(client, ns, name, &dp).await,
                Kind::Pod => delete_of::<Pod>(client, ns, name, &dp).await,
                Kind::AnalysisRun => delete_of::<AnalysisRun>(client, ns, name, &dp).await,
                Kind::Experiment => delete_of::<Experiment>(client, ns, name, &dp).await,
                Kind::Rollout => delete_of::<Rollout>(client, ns, name, &dp).await,
            }
        }
        Request::Evict { pod } => {
            let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
            // policy/v1beta1: the Eviction version every server since 1.20 accepts.
            let eviction = json!({"apiVersion": "policy/v1beta1", "kind": "Eviction",
                                  "metadata": {"name": pod, "namespace": ns}});
            pods.create_subresource::<Value, Value>(
                "eviction",
                pod,
                &PostParams::default(),
                &eviction,
            )
            .await
            .map(|_| Sent::Done)
        }
        Request::Router(change) | Request::Workload(change) => {
            return match ctx.traffic.apply(change).await {
                Ok(()) => Ok(Sent::Done),
                Err(Error::Kube(e)) if api_error(&e) == Some(409) => Ok(Sent::Stale),
                Err(e) => Err(e),
            };
        }
    };
    match res {
        Ok(sent) => Ok(sent),
        Err(e) if api_error(&e).is_some_and(|c| tolerated(req).contains(&c)) => Ok(Sent::Done),
        Err(e) => Err(e.into()),
    }
}

async fn patch_of<K>(
    client: &kube::Client,
    ns: &str,
    name: &str,
    pp: &PatchParams,
    patch: &Patch<&Value>,
) -> Result<Sent, kube::Error>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::namespaced(client.clone(), ns);
    api.patch(name, pp, patch).await.map(|_| Sent::Done)
}

async fn delete_of<K>(
    client: &kube::Client,
    ns: &str,
    name: &str,
    dp: &DeleteParams,
) -> Result<Sent, kube::Error>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::namespaced(client.clone(), ns);
    api.delete(name, dp).await.map(|_| Sent::Done)
}
