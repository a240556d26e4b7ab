//! The first layer of a plan: a read-only view of one observation, computed once.
//!
//! [`View`] holds what a reconcile looks at (the Rollout, its strategy, its previous status,
//! its ReplicaSets classified as new, stable and older, the current AnalysisRuns, the
//! Services' selectors, the desired pod-template and step hashes) and answers questions about
//! it that do not depend on what this plan decides. What a plan decides accumulates in
//! `writes::Writes`; the only other way the view changes is when the plan creates the
//! new ReplicaSet ([`View::with_created`]): the rest of the reconcile then sees it, as upstream
//! sees the ReplicaSet it has just created.

use super::conditions;
use super::replicas::{self, int_or_percent};
use super::replicasets::{Classified, Rs};
use super::{Observed, stamp};
use crate::api::consts::{DEFAULT_ROLLOUT_UNIQUE_LABEL_KEY, EXPERIMENT_NAME_ANNOTATION_KEY};
use crate::api::{
    AnalysisRun, BlueGreenStrategy, CanaryStep, CanaryStrategy, Experiment, PauseCondition,
    Rollout, RolloutAnalysisRunStatus, RolloutStatus, analysis_phase, pause_reason,
};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;
use kube_core::ResourceExt;
use std::collections::BTreeMap;

static NO_CANARY: std::sync::LazyLock<CanaryStrategy> =
    std::sync::LazyLock::new(CanaryStrategy::default);
static NO_BLUE_GREEN: std::sync::LazyLock<BlueGreenStrategy> =
    std::sync::LazyLock::new(BlueGreenStrategy::default);

/// The AnalysisRuns a Rollout's status names as current.
#[derive(Clone, Debug, Default)]
pub struct CurrentRuns {
    pub step: Option<AnalysisRun>,
    pub background: Option<AnalysisRun>,
    pub pre: Option<AnalysisRun>,
    pub post: Option<AnalysisRun>,
}

impl CurrentRuns {
    /// Their names.
    pub fn names(&self) -> Vec<String> {
        [&self.step, &self.background, &self.pre, &self.post]
            .into_iter()
            .flatten()
            .map(|r| r.name_any())
            .collect()
    }
}

/// A run's phase (empty until the AnalysisRun controller sets one).
pub fn run_phase(run: &AnalysisRun) -> &str {
    run.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or_default()
}

/// An Experiment's phase (empty until the Experiment controller sets one).
pub fn experiment_phase(ex: &Experiment) -> &str {
    ex.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or_default()
}

/// Whether a run ended successfully.
pub fn run_succeeded(run: Option<&AnalysisRun>) -> bool {
    run.is_some_and(|r| run_phase(r) == analysis_phase::SUCCESSFUL)
}

/// One reconcile's view of a Rollout (see the module docs).
#[derive(Clone, Debug)]
pub struct View<'a> {
    pub ro: &'a Rollout,
    /// The canary strategy (an empty one for blue-green Rollouts).
    pub canary: &'a CanaryStrategy,
    /// The blue-green strategy, for blue-green Rollouts.
    pub bg: Option<&'a BlueGreenStrategy>,
    /// The previous status, its Paused and Progressing conditions brought up to date as
    /// upstream's `checkPausedConditions` does at the start of every reconcile.
    pub old: RolloutStatus,
    /// That bookkeeping noticed a retry after an abort (a `RolloutRetry` event).
    pub retried: bool,
    pub now: Timestamp,
    /// `now` in whole seconds, as status times are written.
    pub stamp: Time,
    /// The Rollout's ReplicaSets: new, stable and older.
    pub rs: Classified<'a>,
    /// Our hash of the Rollout's pod template.
    pub desired_hash: String,
    /// Upstream's hash of the canary steps (empty for blue-green).
    pub step_hash: String,
    /// The observed Services' `rollouts-pod-template-hash` selectors, by name.
    pub selectors: BTreeMap<String, String>,
    /// The AnalysisRuns the previous status names as current.
    pub runs: CurrentRuns,
    /// The Experiment `status.canary.currentExperiment` names, when observed (upstream's
    /// `currentEx`).
    pub experiment: Option<&'a Experiment>,
}

impl<'a> View<'a> {
    /// The view of a resolved, valid Rollout (`None` for one with neither strategy).
    pub fn new(obs: &Observed<'a>, now: Timestamp) -> Option<View<'a>> {
        let ro = obs.rollout;
        let bg = ro.blue_green();
        let canary = match (ro.canary(), bg) {
            (Some(c), _) => c,
            (None, Some(_)) => &*NO_CANARY,
            (None, None) => return None,
        };
        let raw = ro.status.clone().unwrap_or_default();
        let stamp = stamp(now);
        let mut old = raw.clone();
        let retried = conditions::check_paused(&ro.spec, &raw, &mut old, &stamp);
        let (desired_hash, rs) = classify(ro, &obs.replica_sets, obs.adoptable.as_deref());
        let selectors = obs
            .services
            .iter()
            .filter_map(|(name, svc)| {
                let hash = svc
                    .spec
                    .as_ref()?
                    .selector
                    .as_ref()?
                    .get(DEFAULT_ROLLOUT_UNIQUE_LABEL_KEY)?;
                Some((name.clone(), hash.clone()))
            })
            .collect();
        let runs = current_runs(&raw, &obs.analysis_runs);
        let current_ex = raw
            .canary
            .as_ref()
            .and_then(|c| c.current_experiment.as_deref())
            .filter(|n| !n.is_empty());
        let experiment = current_ex.and_then(|name| {
            obs.experiments
                .iter()
                .copied()
                .find(|e| e.metadata.name.as_deref() == Some(name))
        });
        Some(View {
            ro,
            canary,
            bg,
            step_hash: if bg.is_some() {
                String::new()
            } else {
                super::hash::step_hash(canary.steps.as_ref())
            },
            old,
            retried,
            now,
            stamp,
            rs,
            desired_hash,
            selectors,
            runs,
            experiment,
        })
    }

    /// The same view with `created` (a ReplicaSet this plan creates) as the new ReplicaSet.
    pub fn with_created(&self, created: Rs<'static>) -> View<'a> {
        let mut v = self.clone();
        v.rs.all.push(created);
        v.rs.new = Some(v.rs.all.len() - 1);
        v
    }

    /// `spec.replicas` (1 when unset).
    pub fn replicas(&self) -> i32 {
        self.ro.replicas_or_default()
    }

    pub fn steps(&self) -> &'a [CanaryStep] {
        self.canary.steps.as_deref().unwrap_or_default()
    }

    /// Upstream's `GetCurrentCanaryStep`: the step at `status.currentStepIndex` (`None` past
    /// the last one) and that index (`None` without steps).
    pub fn current_step(&self) -> (Option<&'a CanaryStep>, Option<i32>) {
        let steps = self.steps();
        if steps.is_empty() {
            return (None, None);
        }
        let idx = self.old.current_step_index.unwrap_or(0).max(0);
        (steps.get(idx as usize), Some(idx))
    }

    /// The weight of the last `setWeight` step up to `index` (inclusive), or 0.
    pub fn set_weight_up_to(&self, index: usize) -> i32 {
        crate::api::last_set_weight(self.steps(), index)
    }

    /// The observed pause condition of this reason.
    pub fn old_pause_condition(&self, reason: &str) -> Option<&PauseCondition> {
        self.old
            .pause_conditions
            .as_ref()?
            .iter()
            .find(|p| p.reason.as_deref() == Some(reason))
    }

    /// A pause condition, or `spec.paused`.
    pub fn is_paused(&self) -> bool {
        self.old
            .pause_conditions
            .as_ref()
            .is_some_and(|p| !p.is_empty())
            || self.ro.spec.paused == Some(true)
    }

    /// `spec.paused` or an inconclusive analysis halts progress (upstream's `haltProgress`).
    pub fn halted(&self) -> bool {
        self.ro.spec.paused == Some(true)
            || self
                .old_pause_condition(pause_reason::INCONCLUSIVE_ANALYSIS)
                .is_some()
    }

    pub fn new_idx(&self) -> Option<usize> {
        self.rs.new
    }

    pub fn stable_idx(&self) -> Option<usize> {
        self.rs.stable
    }

    /// The new ReplicaSet's pod-template hash (empty before it exists).
    pub fn new_hash(&self) -> String {
        self.rs.new_rs().map(|r| r.hash.clone()).unwrap_or_default()
    }

    /// The ReplicaSet with this pod-template hash.
    pub fn rs_by_hash(&self, hash: Option<&str>) -> Option<usize> {
        let h = hash?;
        self.rs.all.iter().position(|r| r.hash == h)
    }

    /// `status.stableRS` is the current pod hash: the update is done (or there is none).
    pub fn fully_promoted(&self) -> bool {
        self.old.stable_is_current()
    }

    /// Upstream's `checkPodSpecChange || checkStepHashChange`.
    pub fn template_or_steps_changed(&self) -> bool {
        let old_step = self.old.current_step_hash.as_deref().unwrap_or_default();
        if !old_step.is_empty() && old_step != self.step_hash {
            return true;
        }
        self.template_changed()
    }

    /// Upstream's `checkPodSpecChange`.
    pub fn template_changed(&self) -> bool {
        let old_pod = self.old.current_pod_hash.as_deref().unwrap_or_default();
        if old_pod.is_empty() {
            return false;
        }
        let pod_hash = self
            .rs
            .new_rs()
            .map(|r| r.hash.as_str())
            .unwrap_or(self.desired_hash.as_str());
        old_pod != pod_hash
    }

    /// Whether the canary's traffic is split by a router (not by pod counts).
    pub fn traffic_routed(&self) -> bool {
        self.bg.is_none() && self.canary.traffic_routing.is_some()
    }

    /// `trafficRouting.maxTrafficWeight` (100 unless set; always 100 for a basic canary).
    pub fn max_weight(&self) -> i32 {
        if self.traffic_routed() {
            crate::traffic::max_weight(self.ro)
        } else {
            100
        }
    }

    /// The weights the router carries now, from the status (`status.canary.weights`).
    pub fn current_weights(&self) -> Option<replicas::TrafficWeights> {
        let w = self.old.canary.as_ref()?.weights.as_ref()?;
        Some(replicas::TrafficWeights {
            canary: w.canary.as_ref().and_then(|d| d.weight).unwrap_or(0),
            stable: w.stable.as_ref().and_then(|d| d.weight).unwrap_or(0),
        })
    }

    /// The canary strategy's `replicaProgressThreshold`: `type: Percent`, or a pod count for
    /// any other type (as upstream reads it; its docs say `Pod`, its constant `Pods`).
    pub fn progress_threshold(&self) -> Option<replicas::ProgressThreshold> {
        let t = self.canary.replica_progress_threshold.as_ref()?;
        let value = t.value.unwrap_or(0);
        Some(
            if t.type_.as_deref() == Some(crate::api::replica_progress_threshold_type::PERCENT) {
                replicas::ProgressThreshold::Percent(value)
            } else {
                replicas::ProgressThreshold::Pods(value)
            },
        )
    }

    /// The pods that may be unavailable: blue-green's `maxUnavailable` (default 0, it only
    /// bounds restarts), or the canary's (with its `maxSurge`).
    pub fn max_unavailable(&self) -> i32 {
        if let Some(bg) = self.bg {
            return int_or_percent(bg.max_unavailable.as_ref())
                .map_or(0, |v| v.scaled_value(self.replicas(), false))
                .clamp(0, self.replicas());
        }
        replicas::max_unavailable(
            self.replicas(),
            int_or_percent(self.canary.max_surge.as_ref()),
            int_or_percent(self.canary.max_unavailable.as_ref()),
        )
    }

    /// `abortScaleDownDelaySeconds` of the strategy (default 30).
    pub fn abort_scale_down_delay(&self) -> i64 {
        let v = match self.bg {
            Some(bg) => bg.abort_scale_down_delay_seconds,
            None => self.canary.abort_scale_down_delay_seconds,
        };
        i64::from(v.unwrap_or(crate::api::defaults::ABORT_SCALE_DOWN_DELAY_SECONDS))
    }

    /// `scaleDownDelaySeconds` of the strategy (default 30).
    pub fn scale_down_delay(&self) -> i64 {
        let v = match self.bg {
            Some(bg) => bg.scale_down_delay_seconds,
            None => self.canary.scale_down_delay_seconds,
        };
        i64::from(v.unwrap_or(crate::api::defaults::SCALE_DOWN_DELAY_SECONDS))
    }

    /// `scaleDownDelayRevisionLimit` of the strategy (unlimited when unset).
    pub fn scale_down_revision_limit(&self) -> i32 {
        match self.bg {
            Some(bg) => bg.scale_down_delay_revision_limit,
            None => self.canary.scale_down_delay_revision_limit,
        }
        .unwrap_or(i32::MAX)
    }

    /// `progressDeadlineSeconds` (default 600).
    pub fn progress_deadline(&self) -> i64 {
        i64::from(
            self.ro
                .spec
                .progress_deadline_seconds
                .unwrap_or(crate::api::defaults::PROGRESS_DEADLINE_SECONDS),
        )
    }

    /// A current step that waits for something other than time or pods (an experiment, an
    /// analysis or a pause): the progress deadline does not run.
    pub fn indefinite_step(&self) -> bool {
        let (step, _) = self.current_step();
        step.is_some_and(|s| s.experiment.is_some() || s.analysis.is_some() || s.pause.is_some())
    }

    /// Upstream's `isRollbackWithinWindow`.
    pub fn rollback_within_window(&self) -> bool {
        let (Some(new), Some(stable)) = (self.rs.new_rs(), self.rs.stable_rs()) else {
            return false;
        };
        let Some(window) = self
            .ro
            .spec
            .rollback_window
            .as_ref()
            .and_then(|w| w.revisions)
        else {
            return false;
        };
        if window <= 0 || (new.created >= stable.created) {
            return false;
        }
        let between = self
            .rs
            .all
            .iter()
            .filter(|rs| !rs.annotations.contains_key(EXPERIMENT_NAME_ANNOTATION_KEY))
            .filter(|rs| rs.created < stable.created && new.created < rs.created)
            .count() as i32;
        between < window
    }

    /// Upstream's `IsSaturated`: all replicas asked for, recorded, and available.
    pub fn saturated(&self, rs: &Rs<'_>) -> bool {
        let replicas = self.replicas();
        rs.spec_replicas == replicas
            && rs.desired_replicas_annotation() == Some(replicas)
            && rs.available == replicas
    }

    /// Upstream's `isReplicaSetReferenced`: the ReplicaSet is the stable, the current, one
    /// the status' blue-green selectors or traffic weights name, or one the strategy's Services
    /// (canary and stable, or active and preview) select as observed. (Upstream also looks at
    /// an Istio DestinationRule's subsets; Services are what the routers here send traffic to.)
    pub fn referenced(&self, rs: &Rs<'_>) -> bool {
        let st = &self.old;
        let bgst = st.blue_green.clone().unwrap_or_default();
        let weights = st.canary.as_ref().and_then(|c| c.weights.as_ref());
        let weighted = [
            weights.and_then(|w| w.canary.as_ref()),
            weights.and_then(|w| w.stable.as_ref()),
        ]
        .map(|d| d.and_then(|d| d.pod_template_hash.as_deref()));
        let services = if self.bg.is_some() {
            [self.active_service(), self.preview_service()]
        } else {
            [
                self.canary.canary_service.as_deref(),
                self.canary.stable_service.as_deref(),
            ]
        };
        let selected = services.map(|s| s.and_then(|s| self.selectors.get(s)).map(String::as_str));
        !rs.hash.is_empty()
            && [
                st.stable_rs.as_deref(),
                st.current_pod_hash.as_deref(),
                bgst.active_selector.as_deref(),
                bgst.preview_selector.as_deref(),
            ]
            .into_iter()
            .chain(weighted)
            .chain(selected)
            .any(|h| h == Some(rs.hash.as_str()))
    }

    /// The blue-green strategy (an empty one for canary Rollouts).
    pub fn bgs(&self) -> &'a BlueGreenStrategy {
        self.bg.unwrap_or(&NO_BLUE_GREEN)
    }

    pub fn active_service(&self) -> Option<&'a str> {
        self.bgs()
            .active_service
            .as_deref()
            .filter(|s| !s.is_empty())
    }

    pub fn preview_service(&self) -> Option<&'a str> {
        self.bgs()
            .preview_service
            .as_deref()
            .filter(|s| !s.is_empty())
    }

    /// Going back to a ReplicaSet still up within its scale-down delay (a fast rollback).
    /// As upstream's `isRollback`, only a ReplicaSet created before the stable one can be
    /// rolled back to: a canary carrying a deadline because its update was aborted is not
    /// (when the controller died after writing that deadline and before recording the abort,
    /// the next plan must abort again, not cancel the step's analysis and run it anew).
    /// Unlike upstream, a preview ReplicaSet that carries a deadline because its update was
    /// aborted does not count either: retrying it must not skip the pause and the analysis.
    pub fn rollback_in_scale_down_delay(&self) -> bool {
        let Some(new) = self.rs.new_rs() else {
            return false;
        };
        let Some(stable) = self.rs.stable_rs() else {
            return false;
        };
        let older = (new.created, new.revision) < (stable.created, stable.revision);
        if !older {
            return false;
        }
        let has_deadline = new
            .annotation(crate::api::consts::DEFAULT_REPLICASET_SCALE_DOWN_DEADLINE_ANNOTATION_KEY)
            .is_some();
        let b = self.old.blue_green.clone().unwrap_or_default();
        let was_preview = self.bg.is_some()
            && b.preview_selector.as_deref() == Some(new.hash.as_str())
            && b.active_selector.as_deref() != Some(new.hash.as_str());
        has_deadline && !was_preview
    }

    /// `status.blueGreen.scaleUpPreviewCheckPoint`.
    pub fn preview_check_point(&self) -> bool {
        self.old
            .blue_green
            .as_ref()
            .and_then(|b| b.scale_up_preview_check_point)
            == Some(true)
    }

    /// What the previous status recorded about a run.
    pub fn recorded_run_status(&self, name: &str) -> Option<RolloutAnalysisRunStatus> {
        let c = self.old.canary.clone().unwrap_or_default();
        let b = self.old.blue_green.clone().unwrap_or_default();
        [
            c.current_step_analysis_run_status,
            c.current_background_analysis_run_status,
            b.pre_promotion_analysis_run_status,
            b.post_promotion_analysis_run_status,
        ]
        .into_iter()
        .flatten()
        .find(|s| s.name.as_deref() == Some(name))
    }
}

/// Our hash of the Rollout's template, and its ReplicaSets classified (new, stable).
pub fn classify<'r>(
    ro: &Rollout,
    replica_sets: &[&'r ReplicaSet],
    adoptable: Option<&str>,
) -> (String, Classified<'r>) {
    let status = ro.status.as_ref();
    let template =
        serde_json::to_value(ro.spec.template.clone().unwrap_or_default()).unwrap_or_default();
    let desired_hash =
        super::hash::pod_template_hash(&template, status.and_then(|s| s.collision_count));
    let rs = Classified::new(
        replica_sets,
        &desired_hash,
        adoptable,
        status.and_then(|s| s.stable_rs.as_deref()),
    );
    (desired_hash, rs)
}

/// The runs `status` names as current, looked up among the observed runs.
fn current_runs(status: &RolloutStatus, runs: &[&AnalysisRun]) -> CurrentRuns {
    let find = |s: Option<&RolloutAnalysisRunStatus>| {
        let name = s?.name.as_deref()?;
        runs.iter()
            .find(|r| r.name_any() == name)
            .map(|r| (*r).clone())
    };
    let c = status.canary.clone().unwrap_or_default();
    let b = status.blue_green.clone().unwrap_or_default();
    CurrentRuns {
        step: find(c.current_step_analysis_run_status.as_ref()),
        background: find(c.current_background_analysis_run_status.as_ref()),
        pre: find(b.pre_promotion_analysis_run_status.as_ref()),
        post: find(b.post_promotion_analysis_run_status.as_ref()),
    }
}

/// A step as upstream's `CanaryStepString` prints it.
pub fn step_string(step: &CanaryStep) -> String {
    if let Some(w) = step.set_weight {
        return format!("setWeight: {w}");
    }
    if let Some(p) = &step.pause {
        return match &p.duration {
            Some(IntOrString::Int(i)) => format!("pause: {i}"),
            Some(IntOrString::String(s)) => format!("pause: {s}"),
            None => "pause".into(),
        };
    }
    if step.experiment.is_some() {
        return "experiment".into();
    }
    if step.analysis.is_some() {
        return "analysis".into();
    }
    if let Some(s) = &step.set_canary_scale {
        if let Some(w) = s.weight {
            return format!("setCanaryScale{{weight: {w}}}");
        } else if s.match_traffic_weight == Some(true) {
            return "setCanaryScale{matchTrafficWeight: true}".into();
        } else if let Some(r) = s.replicas {
            return format!("setCanaryScale{{replicas: {r}}}");
        }
    }
    "invalid".into()
}

/// When a pause that started at `start` for `secs` seconds ends.
pub fn pause_deadline(start: &Time, secs: i64) -> Timestamp {
    Timestamp::from_second(start.0.as_second().saturating_add(secs)).unwrap_or(start.0)
}
