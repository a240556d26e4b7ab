//! The Experiment planner: `plan(&Observed, now) -> Plan`, pure like the Rollout planner.
//!
//! An Experiment runs one ReplicaSet per `spec.templates[]` side by side for a while. The
//! rules are upstream's (`experiments/experiment.go`, `utils/experiment`,
//! `utils/conditions/experiments.go`), in three layers:
//!
//! 1. [`validate`]: upstream's `VerifyExperimentSpec` and the features not built yet; an
//!    invalid spec only gets an `InvalidSpec` condition (upstream leaves the phase as it is).
//! 2. [`templates`]: per template, the ReplicaSet to create (`<experiment>-<template>`, the
//!    template's labels plus `rollouts-pod-template-hash`, a controller owner reference, the
//!    experiment and template name annotations) or scale (to 0 once the Experiment ends, after
//!    `scaleDownDelaySeconds`), its Service ([`services`], when `service` is set), and its
//!    `status.templateStatuses[]` entry (Progressing →
//!    Running when every replica is available, Successful once `duration` has passed since
//!    `availableAt` or the Experiment terminates, Failed after `progressDeadlineSeconds`
//!    without progress).
//!    [`analyses`]: per analysis, its AnalysisRun (`<experiment>-<analysis>`), created once
//!    the Experiment is available, followed into `status.analysisRuns[]`, terminated when the
//!    Experiment ends.
//! 3. [`status`]: the phase (Pending → Running → Successful / Failed / Error / Inconclusive,
//!    a failed, errored or inconclusive analysis ending the Experiment with its phase), `availableAt`,
//!    the message, the `Progressing` condition, events, and when to look again.
//!
//! The Experiment's status is the only memory: planning again from the same observation
//! yields the same plan, and a plan whose effects are in place writes nothing.

pub mod analyses;
pub mod services;
pub mod status;
pub mod templates;
pub mod validate;

use crate::api::{
    AnalysisRun, AnalysisTemplate, ClusterAnalysisTemplate, Experiment, ExperimentStatus,
    TemplateSpec, analysis_phase,
};
use crate::plan::Event;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::jiff::Timestamp;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// Everything the planner may look at for one Experiment.
#[derive(Clone, Debug)]
pub struct Observed<'a> {
    /// The Experiment (spec and status) as last seen.
    pub experiment: &'a Experiment,
    /// The ReplicaSets this Experiment controls (controller owner reference to its uid).
    pub replica_sets: Vec<&'a ReplicaSet>,
    /// Names a template's ReplicaSet would take ([`replica_set_name`]) that belong
    /// to a ReplicaSet the Experiment does not control.
    pub taken_names: BTreeSet<String>,
    /// The Services this Experiment controls.
    pub services: Vec<&'a Service>,
    /// Names a template's Service would take ([`services::service_name`]) that belong to a
    /// Service the Experiment does not control.
    pub taken_service_names: BTreeSet<String>,
    /// The AnalysisRuns this Experiment controls.
    pub analysis_runs: Vec<&'a AnalysisRun>,
    /// Names of AnalysisRuns of the namespace that start with `<experiment>-` and that the
    /// Experiment does not control (an analysis' run takes another name).
    pub taken_run_names: BTreeSet<String>,
    /// Templates whose ReplicaSet the API server refused to create in this reconcile (an
    /// invalid pod template, a quota), with the API server's message: upstream's
    /// `Failed to create ReplicaSet for template` Error.
    pub refused_templates: BTreeMap<String, String>,
    /// AnalysisTemplates of the Experiment's namespace, by name.
    pub analysis_templates: BTreeMap<String, &'a AnalysisTemplate>,
    /// ClusterAnalysisTemplates, by name.
    pub cluster_analysis_templates: BTreeMap<String, &'a ClusterAnalysisTemplate>,
}

/// What one reconcile of an Experiment should do.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    /// Writes to carry out, in order. Each is idempotent.
    pub effects: Vec<Effect>,
    /// The status the Experiment should have; written only where it differs.
    pub status: ExperimentStatus,
    /// Events to record on the Experiment (after the writes succeed).
    pub events: Vec<Event>,
    /// When to look again even if nothing changes (duration, progress deadline, scale-down).
    pub requeue_after: Option<Duration>,
}

/// One write.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// Create a template's ReplicaSet.
    CreateReplicaSet(Box<ReplicaSet>),
    /// Merge-patch a template's ReplicaSet: `replicas` when `Some`; the `scale-down-deadline`
    /// annotation set (`Some(Some(_))`) or removed (`Some(None)`).
    PatchReplicaSet {
        name: String,
        replicas: Option<i32>,
        scale_down_deadline: Option<Option<String>>,
    },
    /// Create a template's Service.
    CreateService(Box<Service>),
    /// Delete a template's Service.
    DeleteService { name: String },
    /// Create an analysis' AnalysisRun.
    CreateAnalysisRun(Box<AnalysisRun>),
    /// Terminate a running AnalysisRun (`spec.terminate: true`).
    TerminateAnalysisRun { name: String },
}

/// Plans one reconcile of an Experiment at `now`.
pub fn plan(obs: &Observed<'_>, now: Timestamp) -> Plan {
    let ex = obs.experiment;
    let old = ex.status.clone().unwrap_or_default();
    let mut plan = Plan {
        status: old.clone(),
        ..Default::default()
    };
    if ex.metadata.deletion_timestamp.is_some() {
        return plan;
    }
    if let Some(message) = validate::invalid(ex) {
        status::set_invalid_spec(&mut plan, &message, now);
        return plan;
    }
    let terminating = is_terminating(ex, &old);
    for template in ex.spec.templates.iter().flatten() {
        templates::reconcile(obs, template, terminating, now, &mut plan);
    }
    let unrecorded: Vec<_> = ex
        .spec
        .analyses
        .iter()
        .flatten()
        .filter_map(|a| analyses::reconcile(obs, a, terminating, now, &mut plan))
        .collect();
    status::calculate(ex, &mut plan, &unrecorded, now);
    plan
}

/// The name of a template's ReplicaSet: `<experiment>-<template>`, as upstream names it.
pub fn replica_set_name(ex: &Experiment, template: &str) -> String {
    format!("{}-{template}", kube_core::ResourceExt::name_any(ex))
}

/// The controller owner reference to an Experiment.
pub fn owner_reference(
    ex: &Experiment,
) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
    k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
        api_version: crate::api::API_VERSION.into(),
        kind: "Experiment".into(),
        name: kube_core::ResourceExt::name_any(ex),
        uid: kube_core::ResourceExt::uid(ex).unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// Upstream's `IsTerminating`: `spec.terminate`, a completed phase, a Failed or Error
/// template, a Failed, Error or Inconclusive analysis, or every required analysis Successful.
pub fn is_terminating(ex: &Experiment, status: &ExperimentStatus) -> bool {
    if ex.spec.terminate == Some(true) {
        return true;
    }
    if status
        .phase
        .as_deref()
        .is_some_and(analysis_phase::is_completed)
    {
        return true;
    }
    let template_failed = status.template_statuses.iter().flatten().any(|t| {
        matches!(
            t.status.as_deref(),
            Some(
                crate::api::template_status_code::FAILED | crate::api::template_status_code::ERROR
            )
        )
    });
    let analysis_failed = status.analysis_runs.iter().flatten().any(|r| {
        matches!(
            r.phase.as_deref(),
            Some(analysis_phase::FAILED | analysis_phase::ERROR | analysis_phase::INCONCLUSIVE)
        )
    });
    template_failed || analysis_failed || required_analyses_successful(ex, status)
}

/// Upstream's `RequiredAnalysisRunsSuccessful`: at least one analysis is
/// `requiredForCompletion`, and every such analysis is Successful.
pub fn required_analyses_successful(ex: &Experiment, status: &ExperimentStatus) -> bool {
    let required: Vec<_> = ex
        .spec
        .analyses
        .iter()
        .flatten()
        .filter(|a| a.required_for_completion == Some(true))
        .collect();
    !required.is_empty()
        && required.iter().all(|a| {
            status
                .analysis_runs
                .iter()
                .flatten()
                .find(|r| r.name == a.name)
                .is_some_and(|r| r.phase.as_deref() == Some(analysis_phase::SUCCESSFUL))
        })
}

/// The Experiment's `duration` in nanoseconds, when set and valid (Go's duration syntax).
pub fn duration_nanos(ex: &Experiment) -> Option<i128> {
    ex.spec
        .duration
        .as_deref()
        .filter(|d| !d.is_empty())
        .and_then(crate::api::parse_go_duration)
}

/// Upstream's `PassedDurations`: whether `duration` has passed since `availableAt`, and the
/// time left when it has not.
pub fn passed_duration(
    ex: &Experiment,
    status: &ExperimentStatus,
    now: Timestamp,
) -> (bool, Option<Duration>) {
    let (Some(nanos), Some(at)) = (duration_nanos(ex), status.available_at.as_ref()) else {
        return (false, None);
    };
    let expires = at.0.as_nanosecond() + nanos;
    let now = now.as_nanosecond();
    if now > expires {
        (true, None)
    } else {
        let left = u64::try_from(expires - now).unwrap_or(0);
        (false, Some(Duration::from_nanos(left)))
    }
}

/// `spec.progressDeadlineSeconds`, or upstream's default (600).
pub fn progress_deadline_seconds(ex: &Experiment) -> i32 {
    ex.spec
        .progress_deadline_seconds
        .unwrap_or(crate::api::defaults::PROGRESS_DEADLINE_SECONDS)
}

/// `spec.scaleDownDelaySeconds`, or upstream's default (30).
pub fn scale_down_delay_seconds(ex: &Experiment) -> i32 {
    ex.spec
        .scale_down_delay_seconds
        .unwrap_or(crate::api::defaults::SCALE_DOWN_DELAY_SECONDS)
}

/// Upstream's `CalculateTemplateReplicasCount`: 0 once the Experiment (or the template) is
/// done, else the template's replicas (default 1).
pub fn desired_replicas(ex: &Experiment, status: &ExperimentStatus, t: &TemplateSpec) -> i32 {
    if is_terminating(ex, status) {
        return 0;
    }
    let done = template_status(status, t.name.as_deref().unwrap_or_default())
        .and_then(|s| s.status.as_deref())
        .is_some_and(templates::status_completed);
    if done {
        0
    } else {
        t.replicas.unwrap_or(crate::api::defaults::REPLICAS)
    }
}

/// The status entry of the template named `name`.
pub fn template_status<'a>(
    status: &'a ExperimentStatus,
    name: &str,
) -> Option<&'a crate::api::TemplateStatus> {
    status
        .template_statuses
        .iter()
        .flatten()
        .find(|t| t.name.as_deref() == Some(name))
}

#[cfg(test)]
mod tests;
