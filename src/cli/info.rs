//! What `get rollout`, `list rollouts`, `get experiment` and `list experiments` show, computed
//! from the objects alone (pure), after upstream's `pkg/kubectl-argo-rollouts/info`: the phase
//! and message, the step, set and actual weight, the images with their stack markers (and
//! `Σ:<template>` for an Experiment's), and the revisions → ReplicaSets → pods tree with the
//! Experiments (their ReplicaSets, pods and runs) and AnalysisRuns.
//!
//! Times are kept as timestamps; ages are computed when rendering, from an injected `now`.

use crate::api::consts::{
    DEFAULT_ROLLOUT_UNIQUE_LABEL_KEY, EXPERIMENT_TEMPLATE_NAME_ANNOTATION_KEY, REVISION_ANNOTATION,
};
use crate::api::{AnalysisRun, Experiment, Rollout, rollout_phase};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use serde::Serialize;
use std::collections::BTreeSet;

/// Status icons, as upstream draws them.
pub mod icon {
    pub const WAITING: &str = "◷";
    pub const PROGRESSING: &str = "◌";
    pub const WARNING: &str = "⚠";
    pub const UNKNOWN: &str = "?";
    pub const OK: &str = "✔";
    pub const BAD: &str = "✖";
    pub const PAUSED: &str = "॥";
    pub const NEUTRAL: &str = "•";
    pub const ROLLOUT: &str = "⟳";
    pub const REVISION: &str = "#";
    pub const REPLICA_SET: &str = "⧉";
    pub const POD: &str = "□";
    pub const ANALYSIS: &str = "α";
    pub const JOB: &str = "⊞";
    pub const EXPERIMENT: &str = "Σ";
}

/// Stack markers of ReplicaSets and images.
pub mod tag {
    pub const CANARY: &str = "canary";
    pub const STABLE: &str = "stable";
    pub const ACTIVE: &str = "active";
    pub const PREVIEW: &str = "preview";
}

/// A Rollout and the objects it owns, as read from the cluster (or a fixture).
#[derive(Clone, Debug, Default)]
pub struct Model {
    pub rollout: Rollout,
    /// ReplicaSets of the namespace (those not owned by the Rollout are ignored).
    pub replica_sets: Vec<ReplicaSet>,
    /// Pods of the namespace (those not owned by one of the Rollout's ReplicaSets are ignored).
    pub pods: Vec<Pod>,
    /// AnalysisRuns of the namespace (those not owned by the Rollout or one of its
    /// Experiments are ignored).
    pub analysis_runs: Vec<AnalysisRun>,
    /// Experiments of the namespace (those not owned by the Rollout are ignored).
    pub experiments: Vec<Experiment>,
}

/// An Experiment and the objects it owns, as read from the cluster (or a fixture).
#[derive(Clone, Debug, Default)]
pub struct ExperimentModel {
    pub experiment: Experiment,
    /// ReplicaSets of the namespace (those not owned by the Experiment are ignored).
    pub replica_sets: Vec<ReplicaSet>,
    /// Pods of the namespace (those not owned by one of its ReplicaSets are ignored).
    pub pods: Vec<Pod>,
    /// AnalysisRuns of the namespace (those not owned by the Experiment are ignored).
    pub analysis_runs: Vec<AnalysisRun>,
}

/// What `get experiment` shows, and an Experiment in `get rollout`'s tree (upstream's
/// `ExperimentInfo`).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExperimentInfo {
    pub name: String,
    pub namespace: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creation_timestamp: Option<Timestamp>,
    /// The phase (`Pending`, `Running`, `Successful`, `Failed`, `Error`, `Inconclusive`).
    pub status: String,
    pub message: String,
    #[serde(skip)]
    pub icon: &'static str,
    /// The `rollout.argoproj.io/revision` annotation (set on an Experiment a Rollout created).
    pub revision: i64,
    pub replica_sets: Vec<ReplicaSetInfo>,
    pub analysis_runs: Vec<AnalysisRunInfo>,
}

/// One line of `list experiments`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExperimentListLine {
    pub namespace: String,
    pub name: String,
    pub status: String,
    /// `spec.duration` in seconds, when set.
    pub duration: Option<i64>,
    /// The seconds left of the duration while the Experiment runs.
    pub remaining: Option<i64>,
    pub creation_timestamp: Option<Timestamp>,
}

/// What `get rollout` shows (also its `-o json|yaml` form).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RolloutInfo {
    pub name: String,
    pub namespace: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creation_timestamp: Option<Timestamp>,
    /// The phase (`Healthy`, `Progressing`, `Paused`, `Degraded`), as upstream's
    /// `GetRolloutPhase` reads it.
    pub status: String,
    pub message: String,
    #[serde(skip)]
    pub icon: &'static str,
    /// `Canary`, `BlueGreen` or empty.
    pub strategy: String,
    /// `n/m` (canary with steps and a current step index).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub set_weight: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actual_weight: Option<String>,
    pub images: Vec<ImageInfo>,
    pub desired: i32,
    pub current: i32,
    pub updated: i32,
    pub ready: i32,
    pub available: i32,
    pub replica_sets: Vec<ReplicaSetInfo>,
    pub experiments: Vec<ExperimentInfo>,
    pub analysis_runs: Vec<AnalysisRunInfo>,
    /// Why it is not advancing, as the controller would plan it now (`get` fills it in; see
    /// `cli::waiting`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting: Option<String>,
}

/// An image and the stacks running it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ImageInfo {
    pub image: String,
    pub tags: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaSetInfo {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creation_timestamp: Option<Timestamp>,
    pub revision: i64,
    pub status: String,
    #[serde(skip)]
    pub icon: &'static str,
    pub replicas: i32,
    pub available: i32,
    pub stable: bool,
    pub canary: bool,
    pub active: bool,
    pub preview: bool,
    /// The Experiment template it runs (its `experiment.argoproj.io/template-name`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scale_down_deadline: Option<String>,
    pub images: Vec<String>,
    pub pods: Vec<PodInfo>,
    #[serde(skip)]
    uid: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodInfo {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creation_timestamp: Option<Timestamp>,
    pub status: String,
    #[serde(skip)]
    pub icon: &'static str,
    /// `ready/total` containers.
    pub ready: String,
    pub restarts: i32,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisRunInfo {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creation_timestamp: Option<Timestamp>,
    pub revision: i64,
    pub status: String,
    #[serde(skip)]
    pub icon: &'static str,
    pub successful: i32,
    pub failed: i32,
    pub inconclusive: i32,
    pub error: i32,
    pub jobs: Vec<JobInfo>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobInfo {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creation_timestamp: Option<Timestamp>,
    pub status: String,
    #[serde(skip)]
    pub icon: &'static str,
}

/// One line of `list rollouts`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListLine {
    pub namespace: String,
    pub name: String,
    pub strategy: String,
    pub status: String,
    pub step: String,
    pub set_weight: String,
    pub actual_weight: String,
    /// `ready/current`.
    pub ready: String,
    pub desired: i32,
    pub up_to_date: i32,
    pub available: i32,
}

fn created(meta: &kube::api::ObjectMeta) -> Option<Timestamp> {
    meta.creation_timestamp.as_ref().map(|t| t.0)
}

fn revision(annotations: &std::collections::BTreeMap<String, String>) -> i64 {
    annotations
        .get(REVISION_ANNOTATION)
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

fn owned_by(refs: &[OwnerReference], uid: &str) -> bool {
    !uid.is_empty() && refs.iter().any(|o| o.uid == uid)
}

/// Upstream's `GetRolloutPhase`: the controller's phase and message, unless the controller has
/// not seen the latest spec yet or a user just cleared the pause conditions (then Progressing).
/// Without a controller-written phase, the phase is computed from the spec and status.
pub fn rollout_phase(ro: &Rollout) -> (String, String) {
    let st = ro.status.clone().unwrap_or_default();
    let generation = ro.metadata.generation.unwrap_or(0);
    if let Some(observed) = st
        .observed_generation
        .as_deref()
        .and_then(|g| g.parse::<i64>().ok())
        && observed < generation
    {
        return (
            rollout_phase::PROGRESSING.into(),
            "waiting for rollout spec update to be observed".into(),
        );
    }
    if st.controller_pause == Some(true) && st.pause_conditions.as_ref().is_none_or(Vec::is_empty) {
        return (
            rollout_phase::PROGRESSING.into(),
            "waiting for rollout to unpause".into(),
        );
    }
    if let Some(phase) = st.phase.as_deref().filter(|p| !p.is_empty()) {
        return (phase.to_string(), st.message.clone().unwrap_or_default());
    }
    let (phase, message) = crate::plan::conditions::phase(&ro.spec, &st);
    (phase.to_string(), message)
}

/// The icon of a Rollout phase.
pub fn rollout_icon(status: &str) -> &'static str {
    match status {
        "Progressing" => icon::PROGRESSING,
        "Error" | "InvalidSpec" => icon::WARNING,
        "Paused" => icon::PAUSED,
        "Healthy" => icon::OK,
        "Degraded" => icon::BAD,
        "Unknown" => icon::UNKNOWN,
        "ScaledDown" => icon::NEUTRAL,
        _ => " ",
    }
}

fn replica_set_icon(status: &str) -> &'static str {
    match status {
        "Progressing" => icon::PROGRESSING,
        "Healthy" => icon::OK,
        "ReplicaFailure" => icon::BAD,
        "ScaledDown" => icon::NEUTRAL,
        _ => " ",
    }
}

/// The icon of an AnalysisRun, metric or measurement phase.
pub fn analysis_icon(phase: &str) -> &'static str {
    match phase {
        "Successful" => icon::OK,
        "Inconclusive" => icon::UNKNOWN,
        "Failed" => icon::BAD,
        "Error" => icon::WARNING,
        "Running" => icon::PROGRESSING,
        "Pending" => icon::WAITING,
        _ => " ",
    }
}

fn pod_icon(status: &str) -> &'static str {
    if status.starts_with("Init:") {
        return icon::PROGRESSING;
    }
    if status.starts_with("Signal:") || status.starts_with("ExitCode:") {
        return icon::BAD;
    }
    if status.ends_with("Error") || status.starts_with("Err") {
        return icon::WARNING;
    }
    match status {
        "Pending" | "Terminating" | "ContainerCreating" => icon::PROGRESSING,
        "Running" | "Completed" => icon::OK,
        "Failed" | "InvalidImageName" | "CrashLoopBackOff" => icon::BAD,
        "ImagePullBackOff" | "RegistryUnavailable" => icon::WARNING,
        "Unknown" => icon::UNKNOWN,
        _ => " ",
    }
}

/// Upstream's `GetCurrentCanaryStep`: the index, and whether it names a step (an index past
/// the last step means all steps are done).
fn current_step(ro: &Rollout) -> Option<(usize, bool)> {
    let steps = ro.canary_steps();
    if ro.canary().is_none() || steps.is_empty() {
        return None;
    }
    let idx = ro
        .status
        .as_ref()
        .and_then(|s| s.current_step_index)
        .unwrap_or(0)
        .max(0) as usize;
    Some((idx, idx < steps.len()))
}

/// Upstream's `GetCurrentSetWeight`: the weight of the last `setWeight` up to the current step
/// (0 when aborted, `maxTrafficWeight` (100 unless set) when all steps are done or there are
/// none). Like upstream's, it is out of `maxTrafficWeight`, not a percentage.
pub fn current_set_weight(ro: &Rollout) -> i32 {
    if ro.status.as_ref().and_then(|s| s.abort) == Some(true) {
        return 0;
    }
    match current_step(ro) {
        Some((idx, true)) => crate::api::last_set_weight(ro.canary_steps(), idx),
        _ => crate::traffic::max_weight(ro),
    }
}

fn strategy_name(ro: &Rollout) -> &'static str {
    if ro.canary().is_some() {
        "Canary"
    } else if ro.blue_green().is_some() {
        "BlueGreen"
    } else {
        ""
    }
}

fn step_text(ro: &Rollout) -> Option<String> {
    let steps = ro.canary_steps();
    let idx = ro.status.as_ref()?.current_step_index?;
    (ro.canary().is_some() && !steps.is_empty()).then(|| format!("{idx}/{}", steps.len()))
}

fn pod_template_hash(rs: &ReplicaSet) -> String {
    rs.labels()
        .get(DEFAULT_ROLLOUT_UNIQUE_LABEL_KEY)
        .cloned()
        .unwrap_or_default()
}

/// Upstream's `getReplicaSetHealth`.
fn replica_set_health(rs: &ReplicaSet) -> &'static str {
    let status = rs.status.clone().unwrap_or_default();
    let spec_replicas = rs.spec.as_ref().and_then(|s| s.replicas);
    if rs.metadata.generation.unwrap_or(0) <= status.observed_generation.unwrap_or(0) {
        let failure = status
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == "ReplicaFailure");
        if failure.is_some_and(|c| c.status == "True") {
            return "ReplicaFailure";
        }
        if spec_replicas.is_some_and(|r| status.available_replicas.unwrap_or(0) < r) {
            return "Progressing";
        }
    } else {
        return "Progressing";
    }
    if spec_replicas == Some(0) {
        return "ScaledDown";
    }
    "Healthy"
}

/// Upstream's `newPodInfo` (kubectl's pod status column).
fn pod_info(pod: &Pod) -> PodInfo {
    let spec = pod.spec.clone().unwrap_or_default();
    let status = pod.status.clone().unwrap_or_default();
    let total = spec.containers.len();
    let mut ready = 0;
    let mut restarts = 0;
    let mut reason = status.phase.clone().unwrap_or_default();
    if let Some(r) = status.reason.as_deref().filter(|r| !r.is_empty()) {
        reason = r.to_string();
    }
    let sidecar = |name: &str| {
        spec.init_containers
            .iter()
            .flatten()
            .any(|c| c.name == name && c.restart_policy.as_deref() == Some("Always"))
    };
    let init_count = spec.init_containers.as_ref().map_or(0, Vec::len);
    let mut initializing = false;
    for (i, c) in status.init_container_statuses.iter().flatten().enumerate() {
        restarts += c.restart_count;
        let state = c.state.clone().unwrap_or_default();
        if let Some(t) = &state.terminated {
            if t.exit_code == 0 {
                continue;
            }
            reason = match t.reason.as_deref().filter(|r| !r.is_empty()) {
                Some(r) => format!("Init:{r}"),
                None if t.signal.unwrap_or(0) != 0 => {
                    format!("Init:Signal:{}", t.signal.unwrap_or(0))
                }
                None => format!("Init:ExitCode:{}", t.exit_code),
            };
            initializing = true;
            break;
        }
        if sidecar(&c.name) && c.started == Some(true) {
            if c.ready {
                continue;
            }
            break;
        }
        match state
            .waiting
            .as_ref()
            .and_then(|w| w.reason.as_deref())
            .filter(|r| !r.is_empty() && *r != "PodInitializing")
        {
            Some(r) => reason = format!("Init:{r}"),
            None => reason = format!("Init:{i}/{init_count}"),
        }
        initializing = true;
        break;
    }
    if !initializing {
        restarts = 0;
        let mut has_running = false;
        for c in status.container_statuses.iter().flatten().rev() {
            restarts += c.restart_count;
            let state = c.state.clone().unwrap_or_default();
            let waiting = state
                .waiting
                .as_ref()
                .and_then(|w| w.reason.clone())
                .filter(|r| !r.is_empty());
            if let Some(w) = waiting {
                reason = w;
            } else if let Some(t) = &state.terminated {
                reason = match t.reason.as_deref().filter(|r| !r.is_empty()) {
                    Some(r) => r.to_string(),
                    None if t.signal.unwrap_or(0) != 0 => {
                        format!("Signal:{}", t.signal.unwrap_or(0))
                    }
                    None => format!("ExitCode:{}", t.exit_code),
                };
            } else if c.ready && state.running.is_some() {
                has_running = true;
                ready += 1;
            }
        }
        if reason == "Completed" && has_running {
            reason = "Running".into();
        }
    }
    if pod.metadata.deletion_timestamp.is_some() {
        reason = if status.reason.as_deref() == Some("NodeLost") {
            "Unknown".into()
        } else {
            "Terminating".into()
        };
    }
    PodInfo {
        name: pod.name_any(),
        creation_timestamp: created(&pod.metadata),
        icon: pod_icon(&reason),
        status: reason,
        ready: format!("{ready}/{total}"),
        restarts,
    }
}

fn replica_set_infos(model: &Model) -> Vec<ReplicaSetInfo> {
    let uid = model.rollout.uid().unwrap_or_default();
    replica_set_infos_of(&uid, Some(&model.rollout), &model.replica_sets, &model.pods)
}

/// Upstream's `GetReplicaSetInfo`: the ReplicaSets owned by `owner_uid` with their pods,
/// newest revision first; `ro` (the owning Rollout, if it is one) marks the stacks.
fn replica_set_infos_of(
    owner_uid: &str,
    ro: Option<&Rollout>,
    replica_sets: &[ReplicaSet],
    pods: &[Pod],
) -> Vec<ReplicaSetInfo> {
    let st = ro.and_then(|r| r.status.clone()).unwrap_or_default();
    let stable = st.stable_rs.clone().unwrap_or_default();
    let current = st.current_pod_hash.clone().unwrap_or_default();
    let bg = st.blue_green.clone().unwrap_or_default();
    let mut out: Vec<ReplicaSetInfo> = replica_sets
        .iter()
        .filter(|rs| owned_by(rs.owner_references(), owner_uid))
        .map(|rs| {
            let status = replica_set_health(rs);
            let hash = pod_template_hash(rs);
            let mut info = ReplicaSetInfo {
                name: rs.name_any(),
                creation_timestamp: created(&rs.metadata),
                revision: revision(rs.annotations()),
                status: status.into(),
                icon: replica_set_icon(status),
                replicas: rs.status.as_ref().map_or(0, |s| s.replicas),
                available: rs
                    .status
                    .as_ref()
                    .and_then(|s| s.available_replicas)
                    .unwrap_or(0),
                scale_down_deadline: rs
                    .annotations()
                    .get(crate::api::consts::DEFAULT_REPLICASET_SCALE_DOWN_DEADLINE_ANNOTATION_KEY)
                    .filter(|d| !d.is_empty())
                    .cloned(),
                template: rs
                    .annotations()
                    .get(EXPERIMENT_TEMPLATE_NAME_ANNOTATION_KEY)
                    .filter(|t| !t.is_empty())
                    .cloned(),
                images: rs
                    .spec
                    .as_ref()
                    .and_then(|s| s.template.as_ref())
                    .and_then(|t| t.spec.as_ref())
                    .map(|s| {
                        s.containers
                            .iter()
                            .map(|c| c.image.clone().unwrap_or_default())
                            .collect()
                    })
                    .unwrap_or_default(),
                uid: rs.uid().unwrap_or_default(),
                ..Default::default()
            };
            let Some(ro) = ro else {
                return info;
            };
            if ro.canary().is_some() {
                if !hash.is_empty() && stable == hash {
                    info.stable = true;
                } else if !hash.is_empty() && current == hash {
                    info.canary = true;
                }
            }
            if ro.blue_green().is_some() {
                info.stable = !hash.is_empty() && stable == hash;
                if !hash.is_empty() && bg.active_selector.as_deref() == Some(hash.as_str()) {
                    info.active = true;
                } else if !hash.is_empty() && bg.preview_selector.as_deref() == Some(hash.as_str())
                {
                    info.preview = true;
                }
            }
            info
        })
        .collect();
    out.sort_by(|a, b| b.revision.cmp(&a.revision).then(a.name.cmp(&b.name)));
    for rs in &mut out {
        let mut pods: Vec<PodInfo> = pods
            .iter()
            .filter(|p| owned_by(p.owner_references(), &rs.uid))
            .map(pod_info)
            .collect();
        pods.sort_by(|a, b| {
            a.creation_timestamp
                .cmp(&b.creation_timestamp)
                .then(a.name.cmp(&b.name))
        });
        rs.pods = pods;
    }
    out
}

fn analysis_run_infos(model: &Model) -> Vec<AnalysisRunInfo> {
    let uid = model.rollout.uid().unwrap_or_default();
    analysis_run_infos_of(&uid, &model.analysis_runs)
}

/// Upstream's `getAnalysisRunInfo`: the AnalysisRuns owned by `owner_uid`, newest revision
/// first.
fn analysis_run_infos_of(owner_uid: &str, analysis_runs: &[AnalysisRun]) -> Vec<AnalysisRunInfo> {
    let mut out: Vec<AnalysisRunInfo> = analysis_runs
        .iter()
        .filter(|ar| owned_by(ar.owner_references(), owner_uid))
        .map(|ar| {
            let st = ar.status.clone().unwrap_or_default();
            let phase = st.phase.clone().unwrap_or_default();
            let mut info = AnalysisRunInfo {
                name: ar.name_any(),
                creation_timestamp: created(&ar.metadata),
                revision: revision(ar.annotations()),
                icon: analysis_icon(&phase),
                status: phase,
                ..Default::default()
            };
            for mr in st.metric_results.iter().flatten() {
                info.successful += mr.successful.unwrap_or(0);
                info.failed += mr.failed.unwrap_or(0);
                info.inconclusive += mr.inconclusive.unwrap_or(0);
                info.error += mr.error.unwrap_or(0);
                for m in mr.measurements.iter().flatten() {
                    if let Some(job) = m.metadata.as_ref().and_then(|md| md.get("job-name")) {
                        let phase = m.phase.clone().unwrap_or_default();
                        info.jobs.push(JobInfo {
                            name: job.clone(),
                            creation_timestamp: m.started_at.as_ref().map(|t| t.0),
                            icon: analysis_icon(&phase),
                            status: phase,
                        });
                    }
                }
            }
            info
        })
        .collect();
    out.sort_by(|a, b| {
        b.revision
            .cmp(&a.revision)
            .then(a.creation_timestamp.cmp(&b.creation_timestamp))
            .then(b.name.cmp(&a.name))
    });
    out
}

/// Upstream's `Images`: images of ReplicaSets with pods, sorted by image, with their stack
/// tags. As upstream's `mergeImageAndTags`: one ReplicaSet's tags in the order canary, stable,
/// active, preview (a blue-green stable is `(stable, active)`); tags merged from several
/// ReplicaSets running the same image are sorted (`mergeTags`).
fn images(replica_sets: &[ReplicaSetInfo], experiments: &[ExperimentInfo]) -> Vec<ImageInfo> {
    let mut out: Vec<ImageInfo> = Vec::new();
    for rs in replica_sets.iter().filter(|rs| rs.replicas > 0) {
        let tags: Vec<String> = [
            (rs.canary, tag::CANARY),
            (rs.stable, tag::STABLE),
            (rs.active, tag::ACTIVE),
            (rs.preview, tag::PREVIEW),
        ]
        .into_iter()
        .filter(|(on, _)| *on)
        .map(|(_, t)| t.to_string())
        .collect();
        for image in &rs.images {
            merge_image(&mut out, image, &tags);
        }
    }
    for ex in experiments {
        for image in experiment_images(ex) {
            merge_image(&mut out, &image.image, &image.tags);
        }
    }
    out
}

/// Upstream's `mergeImageAndTags`: adds `image` with `tags`, or merges (and sorts) the tags
/// of the entry already there; the list stays sorted by image.
fn merge_image(out: &mut Vec<ImageInfo>, image: &str, tags: &[String]) {
    match out.iter_mut().find(|i| i.image == image) {
        Some(existing) => {
            let merged: BTreeSet<String> = existing
                .tags
                .drain(..)
                .chain(tags.iter().cloned())
                .collect();
            existing.tags = merged.into_iter().collect();
        }
        None => out.push(ImageInfo {
            image: image.to_string(),
            tags: tags.to_vec(),
        }),
    }
    out.sort_by(|a, b| a.image.cmp(&b.image));
}

/// Upstream's `ExperimentImages`: the images of an Experiment's ReplicaSets with pods, each
/// tagged `Σ:<template>`.
pub fn experiment_images(ex: &ExperimentInfo) -> Vec<ImageInfo> {
    let mut out = Vec::new();
    for rs in ex.replica_sets.iter().filter(|rs| rs.replicas > 0) {
        let tags: Vec<String> = rs
            .template
            .iter()
            .map(|t| format!("{}:{t}", icon::EXPERIMENT))
            .collect();
        for image in &rs.images {
            merge_image(&mut out, image, &tags);
        }
    }
    out
}

/// Upstream's actual weight for a canary, out of `maxTrafficWeight` (100 unless set): the full
/// weight when no step is current; for a basic canary, the canary ReplicaSet's share of the
/// available pods; with traffic routing, the recorded canary weight (else the set weight).
fn actual_weight(ro: &Rollout, replica_sets: &[ReplicaSetInfo], set_weight: i32) -> String {
    let st = ro.status.clone().unwrap_or_default();
    let max_weight = crate::traffic::max_weight(ro);
    match current_step(ro) {
        None | Some((_, false)) => max_weight.to_string(),
        Some(_) => {
            let available = st.available_replicas.unwrap_or(0);
            if available <= 0 {
                return "0".into();
            }
            let routed = ro.canary().is_some_and(|c| c.traffic_routing.is_some());
            if !routed {
                let canary = replica_sets
                    .iter()
                    .rfind(|rs| rs.canary)
                    .map_or(0, |rs| rs.available);
                return (i64::from(canary) * i64::from(max_weight) / i64::from(available))
                    .to_string();
            }
            st.canary
                .and_then(|c| c.weights)
                .and_then(|w| w.canary)
                .and_then(|c| c.weight)
                .unwrap_or(set_weight)
                .to_string()
        }
    }
}

/// Upstream's `getExperimentInfo`: the Experiments the Rollout owns, newest revision first.
fn experiment_infos(model: &Model) -> Vec<ExperimentInfo> {
    let uid = model.rollout.uid().unwrap_or_default();
    let mut out: Vec<ExperimentInfo> = model
        .experiments
        .iter()
        .filter(|ex| owned_by(ex.owner_references(), &uid))
        .map(|ex| ExperimentInfo::of(ex, &model.replica_sets, &model.pods, &model.analysis_runs))
        .collect();
    out.sort_by(|a, b| {
        b.revision
            .cmp(&a.revision)
            .then(a.creation_timestamp.cmp(&b.creation_timestamp))
            .then(a.name.cmp(&b.name))
    });
    out
}

impl ExperimentInfo {
    /// Everything `get experiment` shows, from the objects.
    pub fn new(model: &ExperimentModel) -> ExperimentInfo {
        ExperimentInfo::of(
            &model.experiment,
            &model.replica_sets,
            &model.pods,
            &model.analysis_runs,
        )
    }

    /// Upstream's `NewExperimentInfo`.
    fn of(
        ex: &Experiment,
        replica_sets: &[ReplicaSet],
        pods: &[Pod],
        analysis_runs: &[AnalysisRun],
    ) -> ExperimentInfo {
        let uid = ex.uid().unwrap_or_default();
        let st = ex.status.clone().unwrap_or_default();
        let phase = st.phase.unwrap_or_default();
        ExperimentInfo {
            name: ex.name_any(),
            namespace: ex.namespace().unwrap_or_default(),
            creation_timestamp: created(&ex.metadata),
            icon: analysis_icon(&phase),
            status: phase,
            message: st.message.unwrap_or_default(),
            revision: revision(ex.annotations()),
            replica_sets: replica_set_infos_of(&uid, None, replica_sets, pods),
            analysis_runs: analysis_run_infos_of(&uid, analysis_runs),
        }
    }
}

impl ExperimentListLine {
    /// `list experiments` lines, in the order given (the API server's: namespace, name).
    pub fn for_experiments(exs: &[Experiment], now: Timestamp) -> Vec<ExperimentListLine> {
        exs.iter()
            .map(|ex| ExperimentListLine::new(ex, now))
            .collect()
    }

    /// Upstream's `PrintExperimentTable` row: the duration and, while the Experiment runs
    /// (not completed, available), the time left of it.
    pub fn new(ex: &Experiment, now: Timestamp) -> ExperimentListLine {
        let st = ex.status.clone().unwrap_or_default();
        let phase = st.phase.clone().unwrap_or_default();
        let mut line = ExperimentListLine {
            namespace: ex.namespace().unwrap_or_default(),
            name: ex.name_any(),
            status: phase.clone(),
            duration: None,
            remaining: None,
            creation_timestamp: created(&ex.metadata),
        };
        if let Some(nanos) = crate::experiment::duration_nanos(ex) {
            line.duration = Some((nanos / 1_000_000_000) as i64);
            if !crate::api::analysis_phase::is_completed(&phase) && st.available_at.is_some() {
                let (_, left) = crate::experiment::passed_duration(ex, &st, now);
                line.remaining = left.filter(|l| !l.is_zero()).map(|l| l.as_secs() as i64);
            }
        }
        line
    }
}

impl RolloutInfo {
    /// Everything `get rollout` shows, from the objects.
    pub fn new(model: &Model) -> RolloutInfo {
        let ro = &model.rollout;
        let st = ro.status.clone().unwrap_or_default();
        let replica_sets = replica_set_infos(model);
        let experiments = experiment_infos(model);
        let (status, message) = rollout_phase(ro);
        let strategy = strategy_name(ro);
        let (step, set_weight, actual) = if ro.canary().is_some() {
            let set = current_set_weight(ro);
            (
                step_text(ro),
                Some(set.to_string()),
                Some(actual_weight(ro, &replica_sets, set)),
            )
        } else {
            (None, None, None)
        };
        RolloutInfo {
            name: ro.name_any(),
            namespace: ro.namespace().unwrap_or_default(),
            creation_timestamp: created(&ro.metadata),
            icon: rollout_icon(&status),
            status,
            message,
            strategy: strategy.into(),
            step,
            set_weight,
            actual_weight: actual,
            images: images(&replica_sets, &experiments),
            desired: ro.replicas_or_default(),
            current: st.replicas.unwrap_or(0),
            updated: st.updated_replicas.unwrap_or(0),
            ready: st.ready_replicas.unwrap_or(0),
            available: st.available_replicas.unwrap_or(0),
            analysis_runs: analysis_run_infos(model),
            waiting: None,
            replica_sets,
            experiments,
        }
    }

    /// Revisions of the ReplicaSets and AnalysisRuns, newest first.
    pub fn revisions(&self) -> Vec<i64> {
        let set: BTreeSet<i64> = self
            .replica_sets
            .iter()
            .map(|r| r.revision)
            .chain(self.experiments.iter().map(|e| e.revision))
            .chain(self.analysis_runs.iter().map(|a| a.revision))
            .collect();
        set.into_iter().rev().collect()
    }
}

impl ListLine {
    /// `list rollouts` lines: one per Rollout, from the ReplicaSets of its namespace, sorted
    /// by namespace and name.
    pub fn for_rollouts(ros: &[Rollout], rss: &[ReplicaSet]) -> Vec<ListLine> {
        let mut lines: Vec<ListLine> = ros
            .iter()
            .map(|ro| {
                let ns = ro.namespace();
                let own: Vec<ReplicaSet> = rss
                    .iter()
                    .filter(|rs| rs.namespace() == ns)
                    .cloned()
                    .collect();
                ListLine::new(ro, &own)
            })
            .collect();
        lines.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        lines
    }

    /// A `list rollouts` line; `replica_sets` are the namespace's (for the actual weight).
    pub fn new(ro: &Rollout, replica_sets: &[ReplicaSet]) -> ListLine {
        let st = ro.status.clone().unwrap_or_default();
        let (status, _) = rollout_phase(ro);
        let mut line = ListLine {
            namespace: ro.namespace().unwrap_or_default(),
            name: ro.name_any(),
            strategy: "unknown".into(),
            status,
            step: "-".into(),
            set_weight: "-".into(),
            actual_weight: "-".into(),
            ready: format!(
                "{}/{}",
                st.ready_replicas.unwrap_or(0),
                st.replicas.unwrap_or(0)
            ),
            desired: ro.replicas_or_default(),
            up_to_date: st.updated_replicas.unwrap_or(0),
            available: st.available_replicas.unwrap_or(0),
        };
        if ro.canary().is_some() {
            line.strategy = "Canary".into();
            if let Some(step) = step_text(ro) {
                line.step = step;
            }
            let set = current_set_weight(ro);
            line.set_weight = set.to_string();
            let model = Model {
                rollout: ro.clone(),
                replica_sets: replica_sets.to_vec(),
                ..Default::default()
            };
            line.actual_weight = actual_weight(ro, &replica_set_infos(&model), set);
        } else if ro.blue_green().is_some() {
            line.strategy = "BlueGreen".into();
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn image_tags_follow_upstreams_order() {
        let rs = |image: &str, stable, canary, active, preview| ReplicaSetInfo {
            replicas: 1,
            stable,
            canary,
            active,
            preview,
            images: vec![image.to_string()],
            ..Default::default()
        };
        let tags = |rss: &[ReplicaSetInfo]| {
            images(rss, &[])
                .into_iter()
                .map(|i| format!("{} ({})", i.image, i.tags.join(", ")))
                .collect::<Vec<_>>()
        };
        // One ReplicaSet: canary, stable, active, preview order (upstream's `Images`).
        assert_eq!(
            tags(&[rs("app:v1", true, false, true, false)]),
            ["app:v1 (stable, active)"]
        );
        assert_eq!(
            tags(&[rs("app:v1", true, true, false, false)]),
            ["app:v1 (canary, stable)"]
        );
        // Two ReplicaSets running one image: the tags merged and sorted (`mergeTags`).
        assert_eq!(
            tags(&[
                rs("app:v2", false, false, false, true),
                rs("app:v2", true, false, true, false),
                rs("app:v1", false, true, false, false),
            ]),
            ["app:v1 (canary)", "app:v2 (active, preview, stable)"]
        );
    }

    fn ro(v: serde_json::Value) -> Rollout {
        serde_json::from_value(v).unwrap()
    }

    fn canary(status: serde_json::Value) -> Rollout {
        ro(json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
            "metadata": {"name": "r", "namespace": "ns", "uid": "u1", "generation": 2},
            "spec": {"replicas": 5, "strategy": {"canary": {"steps": [
                {"setWeight": 20}, {"pause": {}}, {"setWeight": 40}, {"pause": {"duration": 10}}
            ]}}},
            "status": status
        }))
    }

    #[test]
    fn phase_waits_for_the_spec_to_be_observed() {
        let r = canary(json!({"observedGeneration": "1", "phase": "Healthy"}));
        assert_eq!(
            rollout_phase(&r),
            (
                "Progressing".into(),
                "waiting for rollout spec update to be observed".into()
            )
        );
        let r = canary(json!({"observedGeneration": "2", "phase": "Healthy"}));
        assert_eq!(rollout_phase(&r).0, "Healthy");
        // A non-numeric observedGeneration (v0.9) counts as observed.
        let r = canary(json!({"observedGeneration": "abc", "phase": "Paused",
                              "message": "CanaryPauseStep"}));
        assert_eq!(
            rollout_phase(&r),
            ("Paused".into(), "CanaryPauseStep".into())
        );
    }

    #[test]
    fn phase_while_unpausing() {
        let r = canary(json!({"observedGeneration": "2", "controllerPause": true,
                              "phase": "Paused", "message": "CanaryPauseStep"}));
        assert_eq!(
            rollout_phase(&r),
            (
                "Progressing".into(),
                "waiting for rollout to unpause".into()
            )
        );
    }

    #[test]
    fn phase_falls_back_to_the_computed_one() {
        let r = canary(json!({"observedGeneration": "2", "updatedReplicas": 1}));
        assert_eq!(
            rollout_phase(&r),
            (
                "Progressing".into(),
                "more replicas need to be updated".into()
            )
        );
    }

    #[test]
    fn set_weight_follows_the_steps() {
        assert_eq!(
            current_set_weight(&canary(json!({"currentStepIndex": 0}))),
            20
        );
        assert_eq!(
            current_set_weight(&canary(json!({"currentStepIndex": 1}))),
            20
        );
        assert_eq!(
            current_set_weight(&canary(json!({"currentStepIndex": 3}))),
            40
        );
        assert_eq!(
            current_set_weight(&canary(json!({"currentStepIndex": 4}))),
            100
        );
        assert_eq!(
            current_set_weight(&canary(json!({"currentStepIndex": 3, "abort": true}))),
            0
        );
        assert_eq!(current_set_weight(&canary(json!({}))), 20);
    }

    #[test]
    fn icons() {
        assert_eq!(rollout_icon("Paused"), "॥");
        assert_eq!(rollout_icon("Degraded"), "✖");
        assert_eq!(pod_icon("Init:0/1"), "◌");
        assert_eq!(pod_icon("CrashLoopBackOff"), "✖");
        assert_eq!(pod_icon("ErrImagePull"), "⚠");
        assert_eq!(analysis_icon("Pending"), "◷");
    }

    #[test]
    fn pod_status_column() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "a"}, {"name": "b"}]},
            "status": {"phase": "Running", "containerStatuses": [
                {"name": "a", "ready": true, "restartCount": 0, "image": "", "imageID": "",
                 "state": {"running": {}}},
                {"name": "b", "ready": false, "restartCount": 3, "image": "", "imageID": "",
                 "state": {"waiting": {"reason": "CrashLoopBackOff"}}}
            ]}
        }))
        .unwrap();
        let info = pod_info(&pod);
        assert_eq!(info.status, "CrashLoopBackOff");
        assert_eq!(info.ready, "1/2");
        assert_eq!(info.restarts, 3);
        let init: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p"},
            "spec": {"initContainers": [{"name": "i"}], "containers": [{"name": "a"}]},
            "status": {"phase": "Pending", "initContainerStatuses": [
                {"name": "i", "ready": false, "restartCount": 0, "image": "", "imageID": "",
                 "state": {"waiting": {"reason": "PodInitializing"}}}
            ]}
        }))
        .unwrap();
        assert_eq!(pod_info(&init).status, "Init:0/1");
    }
}
