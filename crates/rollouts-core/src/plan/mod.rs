//! The pure heart of the controller: `plan(&Observed, now) -> Plan`.
//!
//! Nothing in here talks to the API server, reads a clock or spawns a task: this is the
//! `rollouts-core` crate, whose dependencies are data-only (see `crates/rollouts-core/clippy.toml`
//! and `tests/purity.rs`). The controller observes the world from its reflector stores, calls
//! [`plan`], then carries out the [`Plan`]: the effects in order, then the status, then the
//! events. The Rollout's status is the only memory: running `plan` again on the same
//! observation yields the same plan, and a plan whose effects are already in place yields no
//! effects and the same status (0 writes).
//!
//! The layers go one way:
//!
//! 1. [`entry`]: a Rollout being deleted is left alone, a `workloadRef` is resolved, and the
//!    validation gate ([`validate`]) turns an invalid spec into an InvalidSpec condition.
//! 2. [`view`]: a read-only [`view::View`] of the observation, computed once: the strategy, the
//!    previous status, the ReplicaSets classified, the current AnalysisRuns and Experiment. [`targets`]
//!    derives what the current step asks for (counts, weights) from it.
//! 3. [`gate`]: what holds the Rollout, as a typed [`Wait`] ("why is my rollout waiting?").
//! 4. The strategies, [`canary`] and [`bluegreen`], with what they share ([`rollout_rs`],
//!    [`analysis`], [`experiments`], [`ephemeral`], [`restart`]): they read the view and append to one
//!    [`writes::Writes`] accumulator.
//! 5. [`status`]: conditions, pause and abort bookkeeping, phase, events, and the [`Plan`].
//!
//! The arithmetic ([`replicas`]), the ReplicaSet objects ([`replicasets`]), hashes, conditions,
//! anti-affinity and workload references are plain functions the layers call. [`simulate`] is
//! an in-memory world the tests and `kubectl-rollouts plan` run plans in.

pub mod affinity;
pub mod analysis;
pub mod bluegreen;
pub mod canary;
pub mod conditions;
pub mod entry;
pub mod ephemeral;
pub mod experiments;
pub mod gate;
pub mod hash;
pub mod replicas;
pub mod replicasets;
pub mod restart;
pub mod rollout_rs;
pub mod simulate;
pub mod status;
pub mod targets;
pub mod validate;
pub mod view;
pub mod wait;
pub mod workload;
pub mod writes;

pub use entry::{needs_pods, plan};
pub use view::step_string;
pub use wait::Wait;

use crate::api::{Rollout, RolloutStatus};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use std::collections::BTreeMap;
use std::time::Duration;

/// Everything the planner may look at for one Rollout.
#[derive(Clone, Debug)]
pub struct Observed<'a> {
    /// The Rollout (spec and status) as last seen.
    pub rollout: &'a Rollout,
    /// The ReplicaSets this Rollout controls (controller owner reference to its uid).
    pub replica_sets: Vec<&'a ReplicaSet>,
    /// The Services of the Rollout's namespace that its spec names, by name. A name the spec
    /// uses that is missing here does not exist.
    pub services: BTreeMap<String, &'a Service>,
    /// The name of a ReplicaSet of this Rollout, created by an earlier controller (e.g. Argo
    /// Rollouts) under another hash, whose pod template the controller found equal to the
    /// Rollout's (after API-server defaulting). It is adopted as the new ReplicaSet instead of
    /// creating a duplicate.
    pub adoptable: Option<String>,
    /// The pods of the Rollout's ReplicaSets, listed only while a `spec.restartAt` restart is
    /// due ([`restart::needs_restart`]); `None` otherwise.
    pub pods: Option<Vec<&'a Pod>>,
    /// The traffic router objects the Rollout references ([`crate::traffic::referenced_objects`]),
    /// by key; a missing key means the object does not exist.
    pub traffic_objects: crate::traffic::Objects,
    /// The AnalysisRuns this Rollout controls.
    pub analysis_runs: Vec<&'a crate::api::AnalysisRun>,
    /// AnalysisTemplates of the Rollout's namespace, by name.
    pub analysis_templates: BTreeMap<String, &'a crate::api::AnalysisTemplate>,
    /// ClusterAnalysisTemplates, by name.
    pub cluster_analysis_templates: BTreeMap<String, &'a crate::api::ClusterAnalysisTemplate>,
    /// The object the Rollout's `spec.workloadRef` names ([`workload::key`]), when it exists.
    pub workload: Option<serde_json::Value>,
    /// The Experiments this Rollout controls (its canary `experiment` steps).
    pub experiments: Vec<&'a crate::api::Experiment>,
}

/// What one reconcile should do.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    /// Writes to carry out, in order. Each is idempotent.
    pub effects: Vec<Effect>,
    /// The status the Rollout should have. Written only where it differs from the observed.
    pub status: RolloutStatus,
    /// Events to record (after the writes succeed).
    pub events: Vec<Event>,
    /// When to look again even if nothing changes (pause deadlines, progress deadlines...).
    pub requeue_after: Option<Duration>,
    /// Why the Rollout is not advancing, when it is not (`None`: healthy, or progressing).
    pub wait: Option<Wait>,
}

/// One write.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// Create this ReplicaSet.
    CreateReplicaSet(Box<ReplicaSet>),
    /// Merge-patch a ReplicaSet's replicas, minReadySeconds and annotations.
    PatchReplicaSet { name: String, patch: RsPatch },
    /// Delete an old ReplicaSet (revision history cleanup); `uid` is a precondition.
    DeleteReplicaSet { name: String, uid: Option<String> },
    /// Point a Service at a pod-template hash and mark it managed by this Rollout.
    SetServiceSelector { service: String, hash: String },
    /// Set the Rollout's `rollout.argoproj.io/revision` annotation.
    SetRolloutRevision { revision: String },
    /// Set the Rollout's `rollout.argoproj.io/workload-generation` annotation to the
    /// generation of the object its `workloadRef` names (Argo CD compares it with
    /// `status.workloadObservedGeneration`).
    SetWorkloadGeneration { generation: String },
    /// Scale the Deployment a `workloadRef` names (`scaleDown`): a merge patch of
    /// `spec.replicas` carrying its resourceVersion.
    ScaleWorkload(crate::traffic::ObjectChange),
    /// Evict a pod (restart); a PodDisruptionBudget refusal is not an error.
    EvictPod { name: String },
    /// Write a traffic router object (VirtualService, DestinationRule, Ingress, HTTPRoute).
    Traffic(crate::traffic::ObjectChange),
    /// Create an AnalysisRun (an existing one of the same name is ours: not an error).
    CreateAnalysisRun(Box<crate::api::AnalysisRun>),
    /// Terminate a running AnalysisRun (`spec.terminate: true`).
    TerminateAnalysisRun { name: String },
    /// Delete a finished AnalysisRun (history limits).
    DeleteAnalysisRun { name: String },
    /// Create an Experiment (a canary `experiment` step; an existing one of the same name is
    /// ours: not an error).
    CreateExperiment(Box<crate::api::Experiment>),
    /// Terminate a running Experiment (`spec.terminate: true`).
    TerminateExperiment { name: String },
    /// Delete a finished Experiment (history limits, or its ReplicaSet is gone).
    DeleteExperiment { name: String },
    /// Bring a ReplicaSet's ephemeral metadata to its role ([`ephemeral`]), in this order:
    /// its pod template, its pods (in place, by name), then its record annotation
    /// (`None`: leave it, pods are still to be listed; `Some(None)`: remove it).
    EphemeralMetadata {
        replica_set: String,
        template: ephemeral::MetadataChange,
        pods: Vec<(String, ephemeral::MetadataChange)>,
        record: Option<Option<String>>,
    },
}

impl Effect {
    /// The annotation of the Rollout itself this effect sets, if it sets one.
    pub fn rollout_annotation(&self) -> Option<(&'static str, &str)> {
        match self {
            Effect::SetRolloutRevision { revision } => {
                Some((crate::api::consts::REVISION_ANNOTATION, revision))
            }
            Effect::SetWorkloadGeneration { generation } => Some((
                crate::api::consts::WORKLOAD_GENERATION_ANNOTATION,
                generation,
            )),
            _ => None,
        }
    }
}

/// The fields of a ReplicaSet the controller changes after creating it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RsPatch {
    pub replicas: Option<i32>,
    pub min_ready_seconds: Option<i32>,
    /// `Some(v)` sets, `None` removes.
    pub annotations: BTreeMap<String, Option<String>>,
    /// The pod template's `spec.affinity` (JSON; [`affinity`]: a stale injected term).
    pub affinity: Option<serde_json::Value>,
}

impl RsPatch {
    /// Folds `later` into `self` (later values win).
    pub fn merge(&mut self, later: RsPatch) {
        if later.replicas.is_some() {
            self.replicas = later.replicas;
        }
        if later.min_ready_seconds.is_some() {
            self.min_ready_seconds = later.min_ready_seconds;
        }
        self.annotations.extend(later.annotations);
        if later.affinity.is_some() {
            self.affinity = later.affinity;
        }
    }
}

/// An event to record on the Rollout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub warning: bool,
    pub reason: String,
    pub message: String,
}

impl Event {
    pub fn normal(reason: &str, message: impl Into<String>) -> Event {
        Event {
            warning: false,
            reason: reason.into(),
            message: message.into(),
        }
    }
    pub fn warning(reason: &str, message: impl Into<String>) -> Event {
        Event {
            warning: true,
            reason: reason.into(),
            message: message.into(),
        }
    }
}

/// The Service names a Rollout's spec uses (canary/stable, active/preview).
pub fn service_names(ro: &Rollout) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(c) = ro.canary() {
        out.extend(c.canary_service.clone());
        out.extend(c.stable_service.clone());
    }
    if let Some(b) = ro.blue_green() {
        out.extend(b.active_service.clone());
        out.extend(b.preview_service.clone());
    }
    out.retain(|s| !s.is_empty());
    out.dedup();
    out
}

/// The Services a Rollout's spec names, as upstream's `GetRolloutServiceKeys` lists them: active
/// and preview for blue-green, else canary, stable, ping and pong. A Service it manages that
/// is not among them is released (the controller's Service janitor).
pub fn referenced_services(ro: &Rollout) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(b) = ro.blue_green() {
        out.extend(b.active_service.clone());
        out.extend(b.preview_service.clone());
    } else if let Some(c) = ro.canary() {
        out.extend(c.canary_service.clone());
        out.extend(c.stable_service.clone());
        if let Some(pp) = &c.ping_pong {
            out.extend(pp.ping_service.clone());
            out.extend(pp.pong_service.clone());
        }
    }
    out.retain(|s| !s.is_empty());
    out
}

/// `now` truncated to whole seconds, as Kubernetes stores times.
pub fn stamp(now: Timestamp) -> Time {
    Time(Timestamp::from_second(now.as_second()).unwrap_or(now))
}

#[cfg(test)]
mod experiment_tests;
#[cfg(test)]
mod model_tests;
#[cfg(test)]
mod parity_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod upstream_scenarios;
#[cfg(test)]
mod wait_tests;
