//! The canary strategy's step machine, after upstream's `rollout/canary.go`, `sync.go`,
//! `replicaset.go`, `service.go` and `pause.go`. The Rollout's status is its only memory.

use super::conditions::{self as cond, reason};
use super::replicas::{
    self, BasicCanaryInput, CanaryScale, CanaryScaleInput, IntOrPercent, StableRs,
};
use super::replicasets::{self as rsets, Classified, Rs};
use super::validate::{self, FieldError};
use super::{Effect, Event, Observed, Plan, RsPatch, stamp};
use crate::api::consts::{
    DEFAULT_REPLICASET_SCALE_DOWN_DEADLINE_ANNOTATION_KEY, DESIRED_REPLICAS_ANNOTATION,
    MANAGED_BY_ROLLOUTS_KEY,
};
use crate::api::rollout_condition_type as ctype;
use crate::api::{
    BlueGreenStatus, BlueGreenStrategy, CanaryStatus, CanaryStep, CanaryStrategy, PauseCondition,
    Rollout, RolloutStatus, pause_reason,
};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;
use kube_core::ResourceExt;
use std::collections::BTreeMap;
use std::time::Duration;

/// How long to wait before looking at an invalid Rollout again (the error may be timing
/// related, e.g. a Service applied after the Rollout), as upstream.
pub const INVALID_SPEC_REQUEUE: Duration = Duration::from_secs(20);

/// Pause bookkeeping for one reconcile (upstream's `pauseContext`).
#[derive(Default)]
pub(super) struct PauseCtx {
    pub(super) add: Vec<&'static str>,
    pub(super) remove: Vec<&'static str>,
    pub(super) clear: bool,
    pub(super) add_abort: Option<String>,
    pub(super) remove_abort: bool,
}

/// One reconcile's working state, shared by the canary and blue-green step machines.
pub(super) struct Ctx<'a> {
    pub(super) ro: &'a Rollout,
    /// The canary strategy (an empty one for blue-green Rollouts).
    pub(super) canary: &'a CanaryStrategy,
    /// The blue-green strategy, for blue-green Rollouts.
    pub(super) bg: Option<&'a BlueGreenStrategy>,
    pub(super) old: RolloutStatus,
    pub(super) now: Timestamp,
    pub(super) stamp: Time,
    pub(super) rs: Classified<'a>,
    pub(super) desired_hash: String,
    pub(super) step_hash: String,
    pub(super) pause: PauseCtx,
    pub(super) effects: Vec<Effect>,
    pub(super) events: Vec<Event>,
    pub(super) requeue: Option<Duration>,
    /// Service selectors as they will be after this plan's writes (name → hash).
    pub(super) selectors: BTreeMap<String, String>,
    /// The AnalysisRuns current in this reconcile.
    pub(super) current: super::analysis::CurrentRuns,
}

static NO_CANARY: std::sync::LazyLock<CanaryStrategy> =
    std::sync::LazyLock::new(CanaryStrategy::default);

/// Plans one reconcile of a Rollout. One with a `workloadRef` is planned as if the template
/// of the object it names were inline ([`super::workload`]).
pub fn plan(obs: &Observed<'_>, now: Timestamp) -> Plan {
    let ro = obs.rollout;
    if ro.spec.workload_ref.is_none() || ro.metadata.deletion_timestamp.is_some() {
        return plan_resolved(obs, now, None);
    }
    let old = ro.status.clone().unwrap_or_default();
    if let Some(err) = validate::validate_rollout_spec(ro, false).first() {
        return invalid_spec(ro, &old, err, now);
    }
    match super::workload::resolve(ro, obs.workload.as_ref()) {
        Err(err) => invalid_spec(ro, &old, &err, now),
        Ok((resolved, generation)) => {
            let inner = Observed {
                rollout: &resolved,
                replica_sets: obs.replica_sets.clone(),
                services: obs.services.clone(),
                adoptable: obs.adoptable.clone(),
                pods: obs.pods.clone(),
                traffic_objects: obs.traffic_objects.clone(),
                analysis_runs: obs.analysis_runs.clone(),
                analysis_templates: obs.analysis_templates.clone(),
                cluster_analysis_templates: obs.cluster_analysis_templates.clone(),
                workload: None,
            };
            let mut plan = plan_resolved(&inner, now, Some(generation));
            workload_effects(
                &resolved,
                &inner,
                obs.workload.as_ref(),
                generation,
                &mut plan,
            );
            plan
        }
    }
}

/// What a Rollout with a `workloadRef` writes besides its own plan: the generation it was
/// planned from (status and annotation), and the Deployment's scale-down.
fn workload_effects(
    resolved: &Rollout,
    obs: &Observed<'_>,
    workload: Option<&serde_json::Value>,
    generation: i64,
    plan: &mut Plan,
) {
    let generation = generation.to_string();
    plan.status.workload_observed_generation = Some(generation.clone());
    let annotated = resolved
        .annotations()
        .get(crate::api::consts::WORKLOAD_GENERATION_ANNOTATION);
    if annotated != Some(&generation) {
        plan.effects
            .insert(0, Effect::SetWorkloadGeneration { generation });
    }
    let (_, rs) = classify(resolved, &obs.replica_sets, obs.adoptable.as_deref());
    let revision = rs.new_rs().map(|r| r.revision);
    let (Some(target), Some(obj), Some(Ok(key))) = (
        super::workload::scale_down_target(resolved, revision),
        workload,
        super::workload::key(resolved),
    ) else {
        return;
    };
    let current = obj
        .pointer("/spec/replicas")
        .and_then(serde_json::Value::as_i64)
        .unwrap_or(1);
    if current != i64::from(target) {
        let rv = obj.pointer("/metadata/resourceVersion").cloned();
        plan.effects
            .push(Effect::ScaleWorkload(crate::traffic::ObjectChange::Patch {
                key,
                patch: serde_json::json!({"metadata": {"resourceVersion": rv},
                                          "spec": {"replicas": target}}),
            }));
        plan.events.push(Event::normal(
            "ScalingDeployment",
            format!(
                "Scaled Deployment {} from {current} to {target}",
                obj.pointer("/metadata/name")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or_default()
            ),
        ));
    }
}

/// [`plan`] on a Rollout whose template is inline, or was taken from the object of
/// generation `workload_generation` its `workloadRef` names.
fn plan_resolved(obs: &Observed<'_>, now: Timestamp, workload_generation: Option<i64>) -> Plan {
    let ro = obs.rollout;
    let old = ro.status.clone().unwrap_or_default();
    if ro.metadata.deletion_timestamp.is_some() {
        return Plan {
            status: old,
            ..Plan::default()
        };
    }
    let errors = validate::validate_rollout_spec(ro, workload_generation.is_some());
    if let Some(err) = errors.first() {
        return invalid_spec(ro, &old, err, now);
    }
    if let Some(err) = unsupported(ro).or_else(|| missing_services(obs)) {
        return invalid_spec(ro, &old, &err, now);
    }
    let bg = ro.blue_green();
    let canary = match (ro.canary(), bg) {
        (Some(c), _) => c,
        (None, Some(_)) => &*NO_CANARY,
        // Validation guarantees a strategy.
        (None, None) => {
            return Plan {
                status: old,
                ..Plan::default()
            };
        }
    };
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
                .get(crate::api::consts::DEFAULT_ROLLOUT_UNIQUE_LABEL_KEY)?;
            Some((name.clone(), hash.clone()))
        })
        .collect();
    let mut c = Ctx {
        ro,
        canary,
        bg,
        selectors,
        current: Default::default(),
        step_hash: if bg.is_some() {
            String::new()
        } else {
            super::hash::step_hash(canary.steps.as_ref())
        },
        old,
        now,
        stamp: stamp(now),
        rs,
        desired_hash,
        pause: PauseCtx::default(),
        effects: Vec::new(),
        events: Vec::new(),
        requeue: None,
    };
    let status = if bg.is_some() {
        c.reconcile_blue_green(obs)
    } else {
        c.reconcile(obs)
    };
    c.into_plan(status)
}

/// Our hash of the Rollout's template, and its ReplicaSets classified (new, stable).
fn classify<'r>(
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

/// Whether the controller must list the Rollout's pods for this reconcile: a restart is due,
/// or a ReplicaSet's pods must be moved to the ephemeral metadata of a new role. Steady
/// state lists nothing.
pub fn needs_pods(
    ro: &Rollout,
    replica_sets: &[&ReplicaSet],
    adoptable: Option<&str>,
    now: Timestamp,
) -> bool {
    if needs_restart(ro, now) {
        return true;
    }
    if !super::ephemeral::configured(ro) {
        return false;
    }
    let (_, rs) = classify(ro, replica_sets, adoptable);
    super::ephemeral::targets(ro, &rs)
        .iter()
        .any(|t| super::ephemeral::pods_pending(t, &rs.all[t.idx]))
}

/// Sets the InvalidSpec condition for `problem` (upstream's message). Returns the message
/// when it is new (for the Warning event), `None` when the condition already says it.
fn mark_invalid(
    ro: &Rollout,
    status: &mut RolloutStatus,
    problem: impl std::fmt::Display,
    stamp: &Time,
) -> Option<String> {
    let msg = format!("The Rollout \"{}\" is invalid: {problem}", ro.name_any());
    if cond::get(status, ctype::INVALID_SPEC).and_then(|c| c.message.as_deref()) == Some(&msg) {
        return None;
    }
    cond::remove(status, ctype::INVALID_SPEC);
    cond::set(
        status,
        cond::new_condition(
            ctype::INVALID_SPEC,
            "True",
            reason::INVALID_SPEC,
            msg.clone(),
            stamp,
        ),
    );
    Some(msg)
}

/// The InvalidSpec plan: set (or refresh) the condition, touch nothing else.
fn invalid_spec(ro: &Rollout, old: &RolloutStatus, err: &FieldError, now: Timestamp) -> Plan {
    let mut status = old.clone();
    let events = mark_invalid(ro, &mut status, err, &stamp(now))
        .map(|msg| Event::warning(reason::INVALID_SPEC, msg))
        .into_iter()
        .collect();
    status.observed_generation = Some(ro.metadata.generation.unwrap_or(0).to_string());
    let (phase, message) = cond::phase(&ro.spec, &status);
    status.phase = Some(phase.into());
    status.message = (!message.is_empty()).then_some(message);
    Plan {
        effects: Vec::new(),
        status,
        events,
        requeue_after: Some(INVALID_SPEC_REQUEUE),
    }
}

/// Features this controller does not carry out yet: refusing them (InvalidSpec) is safer than
/// silently skipping them (e.g. promoting without the analysis a user asked for). The list of
/// every spec field and what the controller does with it is `tests/field_audit.rs`.
fn unsupported(ro: &Rollout) -> Option<FieldError> {
    if ro.canary().is_some_and(|c| c.ping_pong.is_some()) {
        // Ping-pong swaps the roles of two Services at each promotion instead of moving the
        // stable Service's selector; not built.
        return Some(FieldError::forbidden(
            "spec.strategy.canary.pingPong",
            "ping-pong Services are not supported by this controller yet",
        ));
    }
    let alb = ro
        .canary()
        .and_then(|c| c.traffic_routing.as_ref())
        .is_some_and(|tr| tr.alb.is_some());
    for (i, step) in ro.canary_steps().iter().enumerate() {
        if alb
            && step
                .set_header_route
                .as_ref()
                .is_some_and(crate::traffic::route_wanted)
        {
            // Refused up front rather than when the update reaches the step.
            return Some(FieldError::forbidden(
                format!("spec.strategy.canary.steps[{i}].setHeaderRoute"),
                "header routes with ALB are not supported by this controller yet",
            ));
        }
        let what = if step.experiment.is_some() {
            "experiment"
        } else if step.plugin.is_some() {
            "plugin"
        } else {
            continue;
        };
        return Some(FieldError::forbidden(
            format!("spec.strategy.canary.steps[{i}].{what}"),
            format!("{what} steps are not supported by this controller yet"),
        ));
    }
    None
}

/// Services the spec names that do not exist (upstream reports them as InvalidSpec too).
fn missing_services(obs: &Observed<'_>) -> Option<FieldError> {
    let ro = obs.rollout;
    let mut named: Vec<(&str, &Option<String>)> = Vec::new();
    if let Some(c) = ro.canary() {
        named.push(("canary.canaryService", &c.canary_service));
        named.push(("canary.stableService", &c.stable_service));
    }
    if let Some(b) = ro.blue_green() {
        named.push(("blueGreen.activeService", &b.active_service));
        named.push(("blueGreen.previewService", &b.preview_service));
    }
    for (field, name) in named {
        if let Some(name) = name.as_deref().filter(|n| !n.is_empty())
            && !obs.services.contains_key(name)
        {
            return Some(FieldError::invalid(
                format!("spec.strategy.{field}"),
                format!("\"{name}\""),
                format!("service \"{name}\" not found"),
            ));
        }
    }
    None
}

pub(super) fn int_or_percent(v: Option<&IntOrString>) -> Option<IntOrPercent> {
    match v? {
        IntOrString::Int(i) => Some(IntOrPercent::Int(*i)),
        IntOrString::String(s) => s.parse().ok(),
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

impl<'a> Ctx<'a> {
    pub(super) fn replicas(&self) -> i32 {
        self.ro.replicas_or_default()
    }

    pub(super) fn steps(&self) -> &'a [CanaryStep] {
        self.canary.steps.as_deref().unwrap_or_default()
    }

    /// Upstream's `GetCurrentCanaryStep` on the observed status.
    pub(super) fn current_step(&self) -> (Option<&'a CanaryStep>, Option<i32>) {
        let steps = self.steps();
        if steps.is_empty() {
            return (None, None);
        }
        let idx = self.old.current_step_index.unwrap_or(0).max(0);
        (steps.get(idx as usize), Some(idx))
    }

    pub(super) fn aborted(&self) -> bool {
        if self.pause.remove_abort {
            return false;
        }
        self.pause.add_abort.is_some() || self.old.abort == Some(true)
    }

    pub(super) fn old_pause_condition(&self, reason: &str) -> Option<&PauseCondition> {
        self.old
            .pause_conditions
            .as_ref()?
            .iter()
            .find(|p| p.reason.as_deref() == Some(reason))
    }

    pub(super) fn requeue_in(&mut self, d: Duration) {
        self.requeue = Some(self.requeue.map_or(d, |r| r.min(d)));
    }

    pub(super) fn requeue_at(&mut self, at: Timestamp) {
        let d = self.now.duration_until(at);
        if d.is_positive() {
            self.requeue_in(Duration::try_from(d).unwrap_or(Duration::ZERO));
        } else {
            self.requeue_in(Duration::ZERO);
        }
    }

    pub(super) fn new_idx(&self) -> Option<usize> {
        self.rs.new
    }

    pub(super) fn stable_idx(&self) -> Option<usize> {
        self.rs.stable
    }

    /// Upstream's `checkPodSpecChange || checkStepHashChange`.
    pub(super) fn template_or_steps_changed(&self) -> bool {
        let old_step = self.old.current_step_hash.as_deref().unwrap_or_default();
        if !old_step.is_empty() && old_step != self.step_hash {
            return true;
        }
        let old_pod = self.old.current_pod_hash.as_deref().unwrap_or_default();
        if old_pod.is_empty() {
            return false;
        }
        let pod_hash = self
            .rs
            .new_rs()
            .map(|r| r.hash.clone())
            .unwrap_or_else(|| self.desired_hash.clone());
        old_pod != pod_hash
    }

    /// The weight the current step asks of the canary (upstream's `GetCanaryReplicasOrWeight`
    /// for a basic canary).
    pub(super) fn canary_scale(&self) -> CanaryScale {
        let max_weight = self.max_weight();
        let (step, idx) = self.current_step();
        let step_weight = match (step, idx) {
            (None, _) | (_, None) => max_weight,
            (Some(_), Some(i)) => self.steps()[..=i as usize]
                .iter()
                .rev()
                .find_map(|s| s.set_weight)
                .unwrap_or(0),
        };
        let stable = self.old.stable_rs.as_deref().unwrap_or_default();
        // The latest setCanaryScale at or before the current step.
        let set_canary_scale = match (step, idx) {
            (Some(_), Some(i)) => self.steps()[..=i as usize]
                .iter()
                .rev()
                .find_map(|s| s.set_canary_scale.as_ref())
                .map(|s| replicas::SetCanaryScale {
                    replicas: s.replicas,
                    weight: s.weight,
                    match_traffic_weight: s.match_traffic_weight == Some(true),
                }),
            _ => None,
        };
        replicas::canary_scale(&CanaryScaleInput {
            promote_full: self.old.promote_full == Some(true),
            stable_is_current: stable.is_empty()
                || Some(stable) == self.old.current_pod_hash.as_deref(),
            aborted: self.old.abort == Some(true),
            traffic_routed: self.traffic_routed(),
            abort_scale_down_delay_seconds: self.canary.abort_scale_down_delay_seconds,
            set_canary_scale,
            step_weight,
            abort_weight: self.dynamic_abort_weight().unwrap_or(0),
            max_weight,
        })
    }

    /// `trafficRouting.maxTrafficWeight` (100 unless set; always 100 for a basic canary).
    pub(super) fn max_weight(&self) -> i32 {
        if self.traffic_routed() {
            crate::traffic::max_weight(self.ro)
        } else {
            100
        }
    }

    /// The weight an aborted Rollout with `dynamicStableScale` has stepped back to (upstream's
    /// `GetDesiredCanaryWeight`); `None` when that does not apply (not aborted, no dynamic
    /// stable scale, or no canary or stable ReplicaSet).
    fn dynamic_abort_weight(&self) -> Option<i32> {
        if self.old.abort != Some(true)
            || !self.traffic_routed()
            || self.canary.dynamic_stable_scale != Some(true)
        {
            return None;
        }
        let (new, stable) = (self.rs.new_rs()?, self.rs.stable_rs()?);
        let step_weights: Vec<i32> = self.steps().iter().filter_map(|s| s.set_weight).collect();
        Some(replicas::dynamic_abort_weight(
            &replicas::DynamicAbortInput {
                spec_replicas: self.replicas(),
                max_weight: self.max_weight(),
                stable_available: stable.available,
                canary_available: new.available,
                explicit_abort_delay: self
                    .canary
                    .abort_scale_down_delay_seconds
                    .is_some_and(|d| d != 0),
                step_weights: &step_weights,
            },
        ))
    }

    /// The canary strategy's `replicaProgressThreshold`: `type: Percent`, or a pod count for
    /// any other type (as upstream reads it; its docs say `Pod`, its constant `Pods`).
    fn progress_threshold(&self) -> Option<replicas::ProgressThreshold> {
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

    /// Whether the canary's traffic is split by a router (not by pod counts).
    pub(super) fn traffic_routed(&self) -> bool {
        self.bg.is_none() && self.canary.traffic_routing.is_some()
    }

    /// The weights the router carries now, from the status (`status.canary.weights`).
    fn current_weights(&self) -> Option<replicas::TrafficWeights> {
        let w = self.old.canary.as_ref()?.weights.as_ref()?;
        Some(replicas::TrafficWeights {
            canary: w.canary.as_ref().and_then(|d| d.weight).unwrap_or(0),
            stable: w.stable.as_ref().and_then(|d| d.weight).unwrap_or(0),
        })
    }

    /// Upstream's `CalculateReplicaCountsForCanary` (basic canary) for the current state.
    pub(super) fn desired_counts(&self) -> replicas::ReplicaCounts {
        if self.traffic_routed() {
            return replicas::traffic_routed_canary_replica_counts(
                &replicas::TrafficRoutedCanaryInput {
                    spec_replicas: self.replicas(),
                    scale: self.canary_scale(),
                    max_weight: self.max_weight(),
                    dynamic_stable_scale: self.canary.dynamic_stable_scale == Some(true),
                    aborted: self.old.abort == Some(true),
                    min_pods_per_replica_set: self.canary.min_pods_per_replica_set,
                    current_weights: self.current_weights(),
                },
            );
        }
        let weight = match self.canary_scale() {
            CanaryScale::Weight(w) => w,
            CanaryScale::Replicas(r) => {
                (r.saturating_mul(100) / self.replicas().max(1)).clamp(0, 100)
            }
        };
        let new = self.rs.new_rs();
        let stable = match (self.rs.stable_rs(), self.stable_idx() == self.new_idx()) {
            (None, _) => StableRs::Missing,
            (Some(_), true) => StableRs::SameAsCanary,
            (Some(s), false) => StableRs::Distinct(s.state()),
        };
        let others: Vec<replicas::RsState> = self.rs.others().map(|r| r.state()).collect();
        replicas::basic_canary_replica_counts(&BasicCanaryInput {
            spec_replicas: self.replicas(),
            weight,
            max_surge: int_or_percent(self.canary.max_surge.as_ref()),
            max_unavailable: int_or_percent(self.canary.max_unavailable.as_ref()),
            canary: new.map(Rs::state),
            stable,
            others: &others,
        })
    }

    pub(super) fn max_unavailable(&self) -> i32 {
        if let Some(bg) = self.bg {
            // Blue-green: maxUnavailable (default 0) only bounds restarts.
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

    /// Removes the scale-down deadline annotation from an existing ReplicaSet that has one.
    pub(super) fn drop_scale_down_deadline(&mut self, idx: usize) {
        let rs = &self.rs.all[idx];
        if rs.obj.is_none()
            || rs
                .annotation(DEFAULT_REPLICASET_SCALE_DOWN_DEADLINE_ANNOTATION_KEY)
                .is_none()
        {
            return;
        }
        let mut patch = RsPatch::default();
        patch.annotations.insert(
            DEFAULT_REPLICASET_SCALE_DOWN_DEADLINE_ANNOTATION_KEY.into(),
            None,
        );
        let name = rs.name.clone();
        self.push_patch(&name, patch);
    }

    pub(super) fn push_patch(&mut self, name: &str, patch: RsPatch) {
        self.effects.push(Effect::PatchReplicaSet {
            name: name.to_string(),
            patch,
        });
    }

    /// Upstream's `scaleReplicaSetAndRecordEvent`: returns whether the size changed.
    pub(super) fn scale(&mut self, idx: usize, new_scale: i32) -> bool {
        let ro_replicas = self.replicas();
        let rs = &self.rs.all[idx];
        let size_change = rs.spec_replicas != new_scale;
        let annotation_change = rs.desired_replicas_annotation() != Some(ro_replicas);
        if !size_change && !annotation_change {
            return false;
        }
        let mut patch = RsPatch {
            replicas: Some(new_scale),
            ..Default::default()
        };
        patch.annotations.insert(
            DESIRED_REPLICAS_ANNOTATION.into(),
            Some(ro_replicas.to_string()),
        );
        if new_scale == 0
            && !self.delay_scale_down_on_abort()
            && rs
                .annotation(DEFAULT_REPLICASET_SCALE_DOWN_DEADLINE_ANNOTATION_KEY)
                .is_some()
        {
            patch.annotations.insert(
                DEFAULT_REPLICASET_SCALE_DOWN_DEADLINE_ANNOTATION_KEY.into(),
                None,
            );
        }
        let (name, old, revision) = (rs.name.clone(), rs.spec_replicas, rs.revision);
        self.push_patch(&name, patch);
        if size_change {
            let dir = if old < new_scale { "up" } else { "down" };
            self.events.push(Event::normal(
                reason::SCALING_REPLICA_SET,
                format!(
                    "Scaled {dir} ReplicaSet {name} (revision {revision}) from {old} to {new_scale}"
                ),
            ));
        }
        size_change
    }

    /// Creates the new ReplicaSet (upstream's `createDesiredReplicaSet`), with 0 replicas: the
    /// scaling further down sets its size (folded into the create by the effect compaction).
    pub(super) fn create_new_rs(&mut self, status: &mut RolloutStatus) {
        let revision = self.rs.max_old_revision() + 1;
        let ephemeral = match (self.rs.stable_rs(), self.bg) {
            (Some(_), Some(bg)) => bg.preview_metadata.as_ref(),
            (None, Some(bg)) => bg.active_metadata.as_ref(),
            (Some(_), None) => self.canary.canary_metadata.as_ref(),
            (None, None) => self.canary.stable_metadata.as_ref(),
        };
        let obj = rsets::new_replica_set(self.ro, &self.desired_hash, revision, 0, ephemeral);
        let name = obj.name_any();
        let mut view = Rs::detached(&obj);
        view.revision = revision;
        self.rs.all.push(view);
        self.rs.new = Some(self.rs.all.len() - 1);
        self.effects.push(Effect::CreateReplicaSet(Box::new(obj)));
        self.set_rollout_revision(revision);
        self.events.push(Event::normal(
            reason::NEW_REPLICA_SET,
            format!("Created ReplicaSet {name} (revision {revision})"),
        ));
        cond::set(
            status,
            cond::new_condition(
                ctype::PROGRESSING,
                "True",
                reason::NEW_REPLICA_SET,
                format!("Created new replica set \"{name}\""),
                &self.stamp,
            ),
        );
    }

    pub(super) fn set_rollout_revision(&mut self, revision: i64) {
        let current = self
            .ro
            .annotations()
            .get(crate::api::consts::REVISION_ANNOTATION);
        if current.map(String::as_str) != Some(revision.to_string().as_str()) {
            self.effects.push(Effect::SetRolloutRevision {
                revision: revision.to_string(),
            });
            self.events.push(Event::normal(
                reason::ROLLOUT_UPDATED,
                format!("Rollout updated to revision {revision}"),
            ));
        }
    }

    /// Upstream's `syncReplicaSetRevision` for an existing new ReplicaSet.
    pub(super) fn sync_revision(&mut self, status: &mut RolloutStatus) {
        let Some(idx) = self.new_idx() else { return };
        let new_revision = self.rs.max_old_revision() + 1;
        let rs = &self.rs.all[idx];
        let mut patch = RsPatch {
            annotations: rsets::revision_annotations(rs, new_revision),
            ..Default::default()
        };
        if rs.annotation(rsets::TEMPLATE_HASH_ANNOTATION) != Some(self.desired_hash.as_str()) {
            // Adopted (or created before we recorded our hash): remember it.
            patch.annotations.insert(
                rsets::TEMPLATE_HASH_ANNOTATION.into(),
                Some(self.desired_hash.clone()),
            );
        }
        let min_ready = self.ro.spec.min_ready_seconds.unwrap_or(0);
        let rs_min_ready = rs
            .obj
            .and_then(|o| o.spec.as_ref())
            .and_then(|s| s.min_ready_seconds)
            .unwrap_or(0);
        if rs_min_ready != min_ready {
            patch.min_ready_seconds = Some(min_ready);
        }
        let rs_affinity = rs
            .obj
            .and_then(|o| o.spec.as_ref())
            .and_then(|s| s.template.as_ref())
            .and_then(|t| t.spec.as_ref())
            .and_then(|s| s.affinity.as_ref());
        if super::affinity::needs_update(self.ro, rs_affinity, &rs.hash)
            && let Some(affinity) = super::affinity::replica_set_affinity(self.ro, &rs.hash)
        {
            patch.affinity = Some(serde_json::to_value(affinity).unwrap_or_default());
        }
        let name = rs.name.clone();
        let revision_changed = patch
            .annotations
            .contains_key(crate::api::consts::REVISION_ANNOTATION);
        let effective_revision = if revision_changed {
            new_revision
        } else {
            rs.revision
        };
        if patch != RsPatch::default() {
            self.push_patch(&name, patch);
        }
        if !revision_changed {
            self.set_rollout_revision(effective_revision);
        }
        if cond::get(status, ctype::PROGRESSING).is_none() {
            cond::set(
                status,
                cond::new_condition(
                    ctype::PROGRESSING,
                    "True",
                    reason::FOUND_NEW_RS,
                    format!("Found new replica set \"{name}\""),
                    &self.stamp,
                ),
            );
        }
    }

    /// Upstream's `reconcileStableAndCanaryService`, and the canary Service's return to the
    /// stable on an abort (`reconcileTrafficRouting`): at once, except with dynamic stable
    /// scaling, where the canary Service keeps the canary until its traffic weight is back
    /// at 0. While rolling back to the stable with dynamic stable scaling, the canary Service
    /// is left alone until the stable is at full size.
    pub(super) fn reconcile_services(&mut self, obs: &Observed<'_>) {
        let stable = self.stable_idx();
        let new = self.new_idx();
        self.ensure_service(obs, self.canary.stable_service.as_deref(), stable);
        let dynamic = self.traffic_routed() && self.canary.dynamic_stable_scale == Some(true);
        if self.aborted() {
            let target = if dynamic && self.abort_weight() > 0 {
                new
            } else {
                stable
            };
            self.ensure_service(obs, self.canary.canary_service.as_deref(), target);
            return;
        }
        if self.traffic_routed() && self.dynamically_rolling_back_to_stable().is_some() {
            return;
        }
        self.ensure_service(obs, self.canary.canary_service.as_deref(), new);
    }

    pub(super) fn ensure_service(
        &mut self,
        obs: &Observed<'_>,
        svc: Option<&str>,
        rs: Option<usize>,
    ) {
        let (Some(svc_name), Some(idx)) = (svc.filter(|s| !s.is_empty()), rs) else {
            return;
        };
        let Some(svc) = obs.services.get(svc_name) else {
            return;
        };
        let rs = &self.rs.all[idx];
        let current = svc
            .spec
            .as_ref()
            .and_then(|s| s.selector.as_ref())
            .and_then(|s| s.get(crate::api::consts::DEFAULT_ROLLOUT_UNIQUE_LABEL_KEY))
            .cloned()
            .unwrap_or_default();
        if current == rs.hash {
            return;
        }
        let adopting = !svc.annotations().contains_key(MANAGED_BY_ROLLOUTS_KEY);
        if adopting && rs.available < rs.spec_replicas.max(1) {
            // Adopting a Service: wait until the ReplicaSet is fully available.
            return;
        }
        if rs.available == 0 {
            // Never point a Service at nothing.
            return;
        }
        let hash = rs.hash.clone();
        self.events.push(Event::normal(
            "SwitchService",
            format!("Switched selector for service '{svc_name}' from '{current}' to '{hash}'"),
        ));
        self.effects.push(Effect::SetServiceSelector {
            service: svc_name.to_string(),
            hash,
        });
    }

    /// Upstream's `scaleDownOldReplicaSetsForCanary` (basic canary).
    pub(super) fn scale_down_old(&mut self) -> bool {
        let mut others: Vec<usize> = (0..self.rs.all.len())
            .filter(|i| Some(*i) != self.new_idx() && Some(*i) != self.stable_idx())
            .filter(|i| self.rs.all[*i].spec_replicas > 0)
            .collect();
        if others.is_empty() {
            return false;
        }
        // First clean up unhealthy replicas (oldest first).
        let mut planned: BTreeMap<usize, i32> = BTreeMap::new();
        let mut scaled_any = false;
        others.sort_by(|a, b| self.rs.all[*a].created.cmp(&self.rs.all[*b].created));
        for &i in &others {
            let rs = &self.rs.all[i];
            if rs.spec_replicas != rs.available && rs.available < rs.spec_replicas {
                let to = rs.available;
                scaled_any |= self.scale(i, to);
                planned.insert(i, to);
            }
        }
        let available: i32 = self.rs.all.iter().map(|r| r.available).sum();
        let min_available = self.replicas() - self.max_unavailable();
        let mut max_scale_down = available - min_available;
        if max_scale_down <= 0 {
            return scaled_any;
        }
        others.sort_by(|a, b| self.rs.all[*b].revision.cmp(&self.rs.all[*a].revision));
        let current = self.old.current_pod_hash.clone().unwrap_or_default();
        let stable = self.old.stable_rs.clone().unwrap_or_default();
        let fully_promoted = !stable.is_empty() && stable == current;
        let mut annotated = 0;
        for i in others {
            let rs = &self.rs.all[i];
            if rs.hash == current || rs.hash == stable {
                continue;
            }
            if self.traffic_routed() && self.referenced(rs) {
                continue;
            }
            if max_scale_down <= 0 {
                break;
            }
            let spec = planned.get(&i).copied().unwrap_or(rs.spec_replicas);
            if spec == 0 {
                continue;
            }
            let desired = if !self.traffic_routed() {
                // Pods split the traffic: every other ReplicaSet goes.
                if spec > max_scale_down {
                    spec - max_scale_down
                } else {
                    0
                }
            } else if fully_promoted
                || rs
                    .annotation(DEFAULT_REPLICASET_SCALE_DOWN_DEADLINE_ANNOTATION_KEY)
                    .is_some()
            {
                // Likely the previous stable: keep it for scaleDownDelaySeconds (not with
                // dynamic stable scaling, where traffic already left it).
                if self.canary.dynamic_stable_scale == Some(true) {
                    0
                } else {
                    self.scale_down_delay_helper(i, &mut annotated).min(spec)
                }
            } else {
                // An intermediate ReplicaSet (V1 → V2 → V3): no traffic goes to it.
                0
            };
            if spec == desired {
                continue;
            }
            scaled_any |= self.scale(i, desired);
            max_scale_down -= spec - desired;
        }
        scaled_any
    }

    /// Upstream's `reconcileCanaryReplicaSets`: returns true when something was scaled (the
    /// step then cannot complete in this reconcile).
    pub(super) fn reconcile_replica_sets(&mut self) -> bool {
        // haltProgress: a manual pause or an inconclusive analysis freezes the ReplicaSets.
        if self.ro.spec.paused == Some(true)
            || self
                .old_pause_condition(pause_reason::INCONCLUSIVE_ANALYSIS)
                .is_some()
        {
            return false;
        }
        // Drop stale scale-down deadlines from the new (unless an abort delays its scale-down)
        // and stable ReplicaSets: we moved back to them.
        let keep_new = self.delay_scale_down_on_abort();
        for idx in [self.new_idx().filter(|_| !keep_new), self.stable_idx()]
            .into_iter()
            .flatten()
        {
            self.drop_scale_down_deadline(idx);
        }
        let counts = self.desired_counts();
        if let (Some(s), Some(n)) = (self.stable_idx(), self.new_idx())
            && s != n
            && self.scale(s, counts.stable)
        {
            return true;
        }
        if let Some(n) = self.new_idx()
            && self.scale_new_rs(n, counts.canary)
        {
            return true;
        }
        self.scale_down_old()
    }

    /// Upstream's `reconcileCanaryPause`.
    pub(super) fn reconcile_pause(&mut self) {
        if self.ro.spec.paused == Some(true) || self.old.promote_full == Some(true) {
            return;
        }
        let (step, _) = self.current_step();
        let Some(pause) = step.and_then(|s| s.pause.as_ref()) else {
            return;
        };
        match self.old_pause_condition(pause_reason::CANARY_PAUSE_STEP) {
            None => {
                if self.old.controller_pause != Some(true) {
                    self.pause.add.push(pause_reason::CANARY_PAUSE_STEP);
                    if let Some(Ok(secs)) = pause.duration_seconds() {
                        self.requeue_in(Duration::from_secs(secs.max(0) as u64));
                    }
                }
            }
            Some(pc) => {
                if let (Some(Ok(secs)), Some(start)) =
                    (pause.duration_seconds(), pc.start_time.clone())
                {
                    self.requeue_at(pause_deadline(&start, secs));
                }
            }
        }
    }

    /// Upstream's `completedCurrentCanaryStep` (basic canary).
    pub(super) fn completed_current_step(&self) -> bool {
        if self.ro.spec.paused == Some(true) {
            return false;
        }
        let (Some(step), _) = self.current_step() else {
            return false;
        };
        if let Some(pause) = &step.pause {
            let pc = self.old_pause_condition(pause_reason::CANARY_PAUSE_STEP);
            if self.old.controller_pause == Some(true) && pc.is_none() {
                return true;
            }
            if let (Some(Ok(secs)), Some(start)) = (
                pause.duration_seconds(),
                pc.and_then(|p| p.start_time.clone()),
            ) {
                return self.now >= pause_deadline(&start, secs);
            }
            return false;
        }
        if step.set_weight.is_some() || step.set_canary_scale.is_some() {
            return self.at_desired_counts();
        }
        if step.analysis.is_some() {
            return self.current.step.as_ref().is_some_and(|r| {
                super::analysis::phase(r) == crate::api::analysis_phase::SUCCESSFUL
            });
        }
        step.set_header_route.is_some() || step.set_mirror_route.is_some()
    }

    pub(super) fn at_desired_counts(&self) -> bool {
        let counts = self.desired_counts();
        let others: Vec<replicas::RsState> = self.rs.others().map(|r| r.state()).collect();
        replicas::at_desired_replica_counts(&replicas::DesiredCountsCheck {
            desired: counts,
            canary: self.rs.new_rs().map(Rs::state),
            stable: self.rs.stable_rs().map(Rs::state),
            stable_created: self.rs.stable_rs().map_or(0, |r| r.status_replicas),
            traffic_routed: self.traffic_routed(),
            dynamic_stable_scale: self.canary.dynamic_stable_scale == Some(true),
            progress_threshold: self.progress_threshold(),
            others: &others,
        })
    }

    /// Upstream's `shouldFullPromote` (canary).
    pub(super) fn should_full_promote(&self) -> Option<String> {
        if self.rs.stable_rs().is_none() {
            return Some("Initial deploy".into());
        }
        if self.bg.is_some() {
            return None;
        }
        if self.aborted() {
            return None;
        }
        // Only while the canary has fewer available pods than the Rollout wants (and below
        // its replicaProgressThreshold): more (an HPA scaled the Rollout down) promotes, and
        // the surplus is scaled down afterwards.
        let new = self.rs.new_rs()?;
        let replicas = self.replicas();
        if new.available < replicas
            && !replicas::replica_progress_threshold_met(
                self.progress_threshold(),
                Some(new.state()),
                replicas,
            )
        {
            return None;
        }
        if self.old.promote_full == Some(true) {
            return Some("Full promotion requested".into());
        }
        if self.rollback_within_window() {
            return Some("Rollback within window".into());
        }
        let (_, idx) = self.current_step();
        let count = self.steps().len();
        if count == 0 || idx == Some(count as i32) {
            return Some(format!("Completed all {count} canary steps"));
        }
        None
    }

    /// Upstream's `isRollbackWithinWindow`.
    pub(super) fn rollback_within_window(&self) -> bool {
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
            .filter(|rs| !rs.annotations.contains_key("experiment.argoproj.io/name"))
            .filter(|rs| rs.created < stable.created && new.created < rs.created)
            .count() as i32;
        between < window
    }

    /// The status fields every canary reconcile recomputes (upstream's `calculateBaseStatus`
    /// plus the canary specifics).
    pub(super) fn base_status(&self) -> RolloutStatus {
        let old = &self.old;
        let mut st = RolloutStatus {
            restarted_at: old.restarted_at.clone(),
            alb: old.alb.clone(),
            albs: old.albs.clone(),
            duration: old.duration.clone(),
            ..Default::default()
        };
        let mut conditions_src = old.clone();
        cond::remove(&mut conditions_src, ctype::INVALID_SPEC);
        st.conditions = conditions_src.conditions;
        st.current_pod_hash = Some(
            self.rs
                .new_rs()
                .map(|r| r.hash.clone())
                .unwrap_or_else(|| self.desired_hash.clone()),
        );
        let sum = |f: fn(&Rs) -> i32| self.rs.all.iter().map(f).sum::<i32>();
        st.replicas = Some(sum(|r| r.status_replicas));
        st.updated_replicas = Some(self.rs.new_rs().map_or(0, |r| r.status_replicas));
        st.ready_replicas = Some(sum(|r| r.ready));
        st.available_replicas = Some(sum(|r| r.available));
        st.hpa_replicas = st.replicas;
        st.collision_count = old.collision_count;
        st.promote_full = old.promote_full.filter(|p| *p);
        st.selector = Some(rsets::format_selector(self.ro.spec.selector.as_ref()));
        st.stable_rs = old.stable_rs.clone();
        st.current_step_hash = (!self.step_hash.is_empty()).then(|| self.step_hash.clone());
        st.canary = Some(CanaryStatus {
            step_plugin_statuses: old
                .canary
                .as_ref()
                .and_then(|c| c.step_plugin_statuses.clone()),
            stable_ping_pong: old.canary.as_ref().and_then(|c| c.stable_ping_pong.clone()),
            ..Default::default()
        });
        st.blue_green = Some(BlueGreenStatus::default());
        st
    }

    pub(super) fn reconcile(&mut self, obs: &Observed<'_>) -> RolloutStatus {
        // checkPausedConditions, applied to the conditions we start from.
        let mut start = self.old.clone();
        if cond::check_paused(&self.ro.spec, &self.old, &mut start, &self.stamp) {
            self.events.push(Event::normal(
                reason::ROLLOUT_RETRY,
                reason::ROLLOUT_RETRY_MESSAGE,
            ));
        }
        self.old.conditions = start.conditions.clone();
        self.current = self.current_runs(obs);

        // A scaling event (spec.replicas changed): only resize.
        let ro_replicas = self.replicas();
        let scaling = self.rs.all.iter().filter(|r| r.spec_replicas > 0).any(|r| {
            r.desired_replicas_annotation()
                .is_some_and(|d| d != ro_replicas)
        });
        if scaling {
            let mut status = self.old.clone();
            self.sync_revision(&mut status);
            self.reconcile_replica_sets();
            status.available_replicas = Some(self.rs.all.iter().map(|r| r.available).sum());
            status.hpa_replicas = Some(self.rs.all.iter().map(|r| r.status_replicas).sum());
            return status;
        }

        let mut status = self.base_status();
        if self.template_or_steps_changed() {
            self.sync_revision(&mut status);
            return self.sync_status(status, true);
        }
        if self.new_idx().is_some() {
            self.sync_revision(&mut status);
        } else {
            self.create_new_rs(&mut status);
        }
        self.restart_pods(obs, &mut status);
        self.sync_ephemeral_metadata(obs);
        let others: Vec<&Rs> = self.rs.others().collect();
        for (name, uid) in rsets::history_cleanup(&others, self.ro.spec.revision_history_limit) {
            self.effects.push(Effect::DeleteReplicaSet { name, uid });
        }
        self.reconcile_services(obs);
        if self.traffic_routed()
            && let Err(e) = self.reconcile_traffic(obs, &mut status)
        {
            // The router cannot be driven safely (a missing VirtualService or route...):
            // change nothing and say so.
            return self.traffic_blocked(status, e);
        }
        if let Err(problem) = self.reconcile_analysis(obs, &mut status) {
            return self.blocked(problem, "AnalysisRunError");
        }
        if !self.pause.add.is_empty() {
            // An inconclusive analysis paused the Rollout: nothing else moves now.
            return self.sync_status(status, false);
        }
        let scaled = self.reconcile_replica_sets();
        if !scaled {
            self.reconcile_pause();
        }
        self.sync_status(status, false)
    }

    /// Upstream's desired canary weight (`reconcileTrafficRouting`): 0 when fully promoted, or
    /// aborted (with dynamic stable scaling: stepping back as the stable can take the traffic,
    /// [`Self::abort_weight`]); the previous step's weight until the canary pods for this step
    /// are available, then the step's weight, and `maxTrafficWeight` once all steps are done.
    /// On a full promotion the weight stays where it is (with dynamic stable scaling: follows
    /// the canary's available pods).
    fn desired_weight(&self) -> i32 {
        let max = self.max_weight();
        let (_, idx) = self.current_step();
        let steps = self.steps();
        let new = self.rs.new_rs();
        let dynamic = self.canary.dynamic_stable_scale == Some(true);
        let weight = if self.dynamically_rolling_back_to_stable().is_some() {
            self.abort_weight()
        } else if self.fully_promoted() {
            0
        } else if self.aborted() {
            self.abort_weight()
        } else if new.is_none_or(|r| r.available == 0) {
            0
        } else if self.old.promote_full == Some(true) {
            if dynamic {
                let available = new.map_or(0, |r| r.available);
                ((i64::from(max) * i64::from(available)) / i64::from(self.replicas().max(1))) as i32
            } else {
                self.current_weights().map_or(0, |w| w.canary)
            }
        } else if let Some(i) = idx {
            let i = i.max(0) as usize;
            if !self.at_desired_counts() {
                steps[..i.min(steps.len())]
                    .iter()
                    .rev()
                    .find_map(|s| s.set_weight)
                    .unwrap_or(0)
            } else if i < steps.len() {
                steps[..=i]
                    .iter()
                    .rev()
                    .find_map(|s| s.set_weight)
                    .unwrap_or(0)
            } else {
                max
            }
        } else {
            0
        };
        weight.clamp(0, max)
    }

    /// Upstream's `checkReplicasAvailable` for the stable ReplicaSet and its share
    /// `stable_weight` of the traffic: it has the available pods that share needs (rounded
    /// down), or meets the `replicaProgressThreshold` for them. Without a stable ReplicaSet
    /// (the first deploy) there is nothing to protect, and the weights are recorded at once
    /// (upstream records none until the first deploy completes).
    fn stable_can_take(&self, stable_weight: i32) -> bool {
        let Some(stable) = self.rs.stable_rs() else {
            return true;
        };
        let needed = (i64::from(stable_weight.max(0)) * i64::from(self.replicas()))
            / i64::from(self.max_weight().max(1));
        let needed = i32::try_from(needed).unwrap_or(i32::MAX);
        stable.available >= needed
            || replicas::replica_progress_threshold_met(
                self.progress_threshold(),
                Some(stable.state()),
                needed,
            )
    }

    /// `status.stableRS` is the current pod hash.
    fn fully_promoted(&self) -> bool {
        let stable = self.old.stable_rs.as_deref().unwrap_or_default();
        !stable.is_empty() && Some(stable) == self.old.current_pod_hash.as_deref()
    }

    /// Upstream's `IsDynamicallyRollingBackToStable`: with dynamic stable scaling, the template
    /// went back to the stable's while traffic still went to another canary (the hash recorded
    /// in `status.canary.weights`), and the stable is not back at full size: traffic returns
    /// as an abort's would. Returns that previous canary's hash.
    fn dynamically_rolling_back_to_stable(&self) -> Option<String> {
        if !self.fully_promoted() || self.canary.dynamic_stable_scale != Some(true) {
            return None;
        }
        let previous = self
            .old
            .canary
            .as_ref()?
            .weights
            .as_ref()?
            .canary
            .as_ref()?
            .pod_template_hash
            .clone()
            .unwrap_or_default();
        let desired = self.rs.new_rs()?;
        (previous != desired.hash && desired.available < self.replicas()).then_some(previous)
    }

    /// Upstream's `GetDesiredCanaryWeight`: on an abort with dynamic stable scaling, the step
    /// weight walked back to; otherwise the current `setWeight` (0 once aborted, the full
    /// weight once all steps are done).
    fn desired_canary_weight(&self) -> i32 {
        if let Some(w) = self.dynamic_abort_weight() {
            return w;
        }
        if self.old.abort == Some(true) {
            return 0;
        }
        match self.current_step() {
            (Some(_), Some(i)) => self.steps()[..=i as usize]
                .iter()
                .rev()
                .find_map(|s| s.set_weight)
                .unwrap_or(0),
            _ => self.max_weight(),
        }
    }

    /// Upstream's `calculateDesiredWeightOnAbortOrStableRollback`: 0 at once without dynamic
    /// stable scaling; with it, the canary's weight goes down only as far as the stable's
    /// available pods can take ([`replicas::abort_traffic_weight`]).
    fn abort_weight(&self) -> i32 {
        let Some(stable) = self.rs.stable_rs().filter(|_| self.rs.new_rs().is_some()) else {
            return 0;
        };
        // As upstream, an unset `spec.replicas` counts as 0 here.
        if self.canary.dynamic_stable_scale != Some(true)
            || self.ro.spec.replicas.is_none_or(|r| r == 0)
        {
            return 0;
        }
        replicas::abort_traffic_weight(&replicas::AbortTrafficInput {
            spec_replicas: self.replicas(),
            max_weight: self.max_weight(),
            stable_available: stable.available,
            desired_canary_weight: self.desired_canary_weight(),
            current_canary_weight: self.current_weights().map(|w| w.canary),
        })
    }

    /// Drives the traffic routers toward the desired weight, hashes and routes, and records
    /// `status.canary.weights`.
    fn reconcile_traffic(
        &mut self,
        obs: &Observed<'_>,
        status: &mut RolloutStatus,
    ) -> Result<(), Box<crate::traffic::TrafficError>> {
        let weight = self.desired_weight();
        // Rolling back to the stable with dynamic stable scaling: the previous canary keeps its
        // share of the traffic while the stable scales back up (upstream issue 3020).
        let rolling_back = self.dynamically_rolling_back_to_stable();
        let new_hash = rolling_back
            .clone()
            .or_else(|| self.rs.new_rs().map(|r| r.hash.clone()));
        let stable_hash = self.rs.stable_rs().map(|r| r.hash.clone());
        let fully_promoted = self.fully_promoted() && rolling_back.is_none();
        if !self.stable_can_take(self.max_weight() - weight) {
            // Upstream's `checkReplicasAvailable`: the stable cannot carry its share of the new
            // weight yet; leave the routers and the recorded weights as they are.
            let old_weights = self.old.canary.as_ref().and_then(|c| c.weights.clone());
            status.canary.get_or_insert_with(Default::default).weights = old_weights;
            return Ok(());
        }
        let mut intent = crate::traffic::TrafficIntent::for_rollout(self.ro);
        intent.canary_hash = new_hash.as_deref();
        intent.stable_hash = stable_hash.as_deref();
        intent.weight = weight;
        // Managed routes go when the update ends (promoted, aborted, promoted fully) or when the
        // canary has no available pod (a V2 given up for a V3 must not keep its routes).
        intent.remove_managed_routes = fully_promoted
            || (rolling_back.is_none()
                && (self.aborted()
                    || self.rs.new_rs().is_none_or(|r| r.available == 0)
                    || self.old.promote_full == Some(true)));
        if let (false, (_, Some(i))) = (intent.remove_managed_routes, self.current_step()) {
            let (headers, mirrors) = crate::traffic::routes_at_step(self.ro, i.max(0) as usize);
            intent.header_routes = headers;
            intent.mirror_routes = mirrors;
        }
        let changes =
            crate::traffic::plan_traffic(&intent, &obs.traffic_objects).map_err(Box::new)?;
        let max = intent.max_weight;
        let (canary_svc, stable_svc) = (
            intent.canary_service.to_string(),
            intent.stable_service.to_string(),
        );
        let changed_weight = self.current_weights().map(|w| w.canary) != Some(weight);
        for c in changes {
            self.effects.push(Effect::Traffic(c));
        }
        if changed_weight {
            self.events.push(Event::normal(
                "TrafficWeightUpdated",
                format!(
                    "Traffic weight updated from {} to {weight}",
                    self.current_weights().map_or(0, |w| w.canary)
                ),
            ));
        }
        let weights = crate::api::TrafficWeights {
            canary: Some(crate::api::WeightDestination {
                weight: Some(weight),
                service_name: Some(canary_svc),
                pod_template_hash: new_hash,
            }),
            stable: Some(crate::api::WeightDestination {
                weight: Some(max - weight),
                service_name: Some(stable_svc),
                pod_template_hash: stable_hash,
            }),
            additional: None,
            verified: None,
        };
        status.canary.get_or_insert_with(Default::default).weights = Some(weights);
        Ok(())
    }

    /// The plan when the traffic routers cannot be driven: an InvalidSpec condition naming the
    /// object and a Warning event; no writes to ReplicaSets or routers.
    fn traffic_blocked(
        &mut self,
        _status: RolloutStatus,
        e: Box<crate::traffic::TrafficError>,
    ) -> RolloutStatus {
        self.blocked(e.to_string(), &e.reason())
    }

    /// The plan when something the Rollout references cannot be used (a missing VirtualService
    /// or AnalysisTemplate...): an InvalidSpec condition naming it and a Warning event; no
    /// writes.
    pub(super) fn blocked(&mut self, problem: String, event_reason: &str) -> RolloutStatus {
        self.effects.clear();
        let mut status = self.old.clone();
        if let Some(msg) = mark_invalid(self.ro, &mut status, problem, &self.stamp) {
            self.events.push(Event::warning(event_reason, msg));
        }
        self.requeue_in(INVALID_SPEC_REQUEUE);
        status
    }

    /// Upstream's `RolloutPodRestarter`: with `spec.restartAt` in the past and not yet
    /// recorded in `status.restartedAt`, evict pods created before it — stable first, then
    /// new, then older ReplicaSets — never more at once than keeps
    /// `max(replicas, total) - max(maxUnavailable, 1)` pods available. When every pod is newer,
    /// record `status.restartedAt`.
    pub(super) fn restart_pods(&mut self, obs: &Observed<'_>, status: &mut RolloutStatus) {
        let Some(restart_at) = self.ro.spec.restart_at.clone() else {
            return;
        };
        if self.old.restarted_at.as_ref() == Some(&restart_at) {
            return;
        }
        if self.now < restart_at.0 {
            self.requeue_at(restart_at.0);
            return;
        }
        let Some(pods) = obs.pods.as_ref() else {
            // The controller lists pods only when a restart is due (see `needs_restart`).
            return;
        };
        let stable = self.rs.stable_rs().and_then(|r| r.uid.clone());
        let new = self.rs.new_rs().and_then(|r| r.uid.clone());
        let rs_uids: Vec<(Option<String>, Option<Timestamp>)> = self
            .rs
            .all
            .iter()
            .map(|r| (r.uid.clone(), r.created))
            .collect();
        let priority = |uid: &Option<String>| -> (u8, Option<Timestamp>) {
            if uid.is_some() && *uid == stable {
                (0, None)
            } else if uid.is_some() && *uid == new {
                (1, None)
            } else {
                (
                    2,
                    rs_uids.iter().find(|(u, _)| u == uid).and_then(|(_, c)| *c),
                )
            }
        };
        let owner_uid = |p: &k8s_openapi::api::core::v1::Pod| {
            p.owner_references()
                .iter()
                .find(|o| {
                    rs_uids
                        .iter()
                        .any(|(u, _)| u.as_deref() == Some(o.uid.as_str()))
                })
                .map(|o| o.uid.clone())
        };
        let mut ours: Vec<&k8s_openapi::api::core::v1::Pod> = pods
            .iter()
            .copied()
            .filter(|p| owner_uid(p).is_some())
            .collect();
        ours.sort_by_key(|p| {
            (
                priority(&owner_uid(p)),
                p.metadata.creation_timestamp.as_ref().map(|t| t.0),
            )
        });
        let min_ready = i64::from(self.ro.spec.min_ready_seconds.unwrap_or(0));
        let available = ours
            .iter()
            .filter(|p| {
                p.metadata.deletion_timestamp.is_none() && pod_available(p, min_ready, self.now)
            })
            .count() as i32;
        let total: i32 = self.rs.all.iter().map(|r| r.spec_replicas).sum();
        let concurrent = self.max_unavailable().max(1);
        let mut can_restart = available - (self.replicas().max(total) - concurrent);
        let (mut needs, mut restarted) = (0, 0);
        for pod in ours {
            let created = pod.metadata.creation_timestamp.as_ref().map(|t| t.0);
            if created.is_some_and(|c| c >= restart_at.0) {
                continue;
            }
            needs += 1;
            if can_restart <= 0 || pod.metadata.deletion_timestamp.is_some() {
                continue;
            }
            self.effects.push(Effect::EvictPod {
                name: pod.name_any(),
            });
            can_restart -= 1;
            restarted += 1;
        }
        if needs - restarted != 0 {
            // Pod churn does not always change a ReplicaSet's availability: look again.
            self.requeue_in(Duration::from_secs(30));
        } else {
            status.restarted_at = Some(restart_at);
        }
    }

    /// Upstream's `syncRolloutStatusCanary`.
    pub(super) fn sync_status(&mut self, mut st: RolloutStatus, changed: bool) -> RolloutStatus {
        let step_count = self.steps().len() as i32;
        let (step, mut idx) = self.current_step();
        if changed {
            // resetRolloutStatus
            self.pause.clear = true;
            self.pause.remove_abort = true;
            st.restarted_at = self.ro.spec.restart_at.clone();
            st.promote_full = None;
            st.current_step_index = if step_count > 0 { Some(0) } else { None };
            if let Some(new) = self.rs.new_rs()
                && self.old.stable_rs.as_deref() == Some(new.hash.as_str())
                && step_count > 0
            {
                self.events.push(Event::normal(
                    reason::SKIP_STEPS,
                    "Rollback to stable ReplicaSets",
                ));
                st.current_step_index = Some(step_count);
            }
            self.calculate_conditions(&mut st);
            return st;
        }
        if self.old.promote_full == Some(true) || self.rollback_within_window() {
            self.pause.clear = true;
            self.pause.remove_abort = true;
            if step_count > 0 {
                idx = Some(step_count);
            }
        }
        if let Some(why) = self.should_full_promote() {
            self.pause.clear = true;
            self.pause.remove_abort = true;
            st.promote_full = None;
            st.current_step_index = if step_count > 0 {
                Some(step_count)
            } else {
                None
            };
            let current = st.current_pod_hash.clone().unwrap_or_default();
            if st.stable_rs.as_deref() != Some(current.as_str()) {
                st.stable_rs = Some(current.clone());
                let revision = crate::plan::replicasets::revision_of(self.ro.annotations());
                let revision = self.planned_revision().unwrap_or(revision);
                self.events.push(Event::normal(
                    reason::ROLLOUT_COMPLETED,
                    format!("Rollout completed update to revision {revision} ({current}): {why}"),
                ));
            }
            self.calculate_conditions(&mut st);
            return st;
        }
        if self.aborted() {
            if step_count > 0 {
                st.current_step_index = Some(if st.stable_rs == st.current_pod_hash {
                    step_count
                } else {
                    0
                });
            }
            self.calculate_conditions(&mut st);
            return st;
        }
        if self.completed_current_step()
            && let (Some(step), Some(i)) = (step, idx.as_mut())
        {
            *i += 1;
            if let Some(c) = st.canary.as_mut() {
                c.current_step_analysis_run_status = None;
            }
            self.events.push(Event::normal(
                reason::ROLLOUT_STEP_COMPLETED,
                format!(
                    "Rollout step {}/{} completed ({})",
                    *i,
                    step_count,
                    step_string(step)
                ),
            ));
            self.pause.remove.push(pause_reason::CANARY_PAUSE_STEP);
        }
        st.current_step_index = idx;
        self.calculate_conditions(&mut st);
        st
    }

    /// The revision this plan sets on the Rollout, if it changes it.
    pub(super) fn planned_revision(&self) -> Option<i64> {
        self.effects.iter().rev().find_map(|e| match e {
            Effect::SetRolloutRevision { revision } => revision.parse().ok(),
            _ => None,
        })
    }

    pub(super) fn is_paused(&self) -> bool {
        self.old
            .pause_conditions
            .as_ref()
            .is_some_and(|p| !p.is_empty())
            || self.ro.spec.paused == Some(true)
    }

    /// Upstream's `RolloutHealthy`.
    pub(super) fn healthy(&self, st: &RolloutStatus) -> bool {
        let replicas = self.replicas();
        let step_count = self.steps().len() as i32;
        let executed_all = match st.current_step_index {
            Some(i) if step_count > 0 => i == step_count,
            _ => true,
        };
        let stable = st.stable_rs.as_deref().unwrap_or_default();
        let current_is_stable =
            !stable.is_empty() && Some(stable) == st.current_pod_hash.as_deref();
        let completed_strategy = match self.bg {
            Some(bg) => {
                let b = st.blue_green.clone().unwrap_or_default();
                let active_done = b.active_selector == st.current_pod_hash;
                let preview_done = bg.preview_service.as_deref().is_none_or(str::is_empty)
                    || b.preview_selector == st.current_pod_hash;
                active_done && preview_done
            }
            None => executed_all && current_is_stable && st.replicas == Some(replicas),
        };
        st.updated_replicas == Some(replicas)
            && st.available_replicas == Some(replicas)
            && self.old.observed_generation.as_deref()
                == Some(
                    self.ro
                        .metadata
                        .generation
                        .unwrap_or(0)
                        .to_string()
                        .as_str(),
                )
            && completed_strategy
    }

    /// Upstream's `RolloutProgressing`.
    pub(super) fn progressing(&self, st: &RolloutStatus) -> bool {
        let old = &self.old;
        let stable_change = st.stable_rs != old.stable_rs;
        let index_change =
            matches!((st.current_step_index, old.current_step_index), (Some(a), Some(b)) if a != b);
        let steps_hash_change = st.current_step_hash != old.current_step_hash;
        if self.bg.is_some() {
            let (o, n) = (
                old.blue_green.clone().unwrap_or_default(),
                st.blue_green.clone().unwrap_or_default(),
            );
            let selectors_change =
                o.active_selector != n.active_selector || o.preview_selector != n.preview_selector;
            let c = |v: Option<i32>| v.unwrap_or(0);
            return st.updated_replicas != old.updated_replicas
                || c(st.replicas) - c(st.updated_replicas)
                    < c(old.replicas) - c(old.updated_replicas)
                || c(st.ready_replicas) > c(old.ready_replicas)
                || c(st.available_replicas) > c(old.available_replicas)
                || selectors_change;
        }
        let o = |v: Option<i32>| v.unwrap_or(0);
        let old_old = o(old.replicas) - o(old.updated_replicas);
        let new_old = o(st.replicas) - o(st.updated_replicas);
        st.updated_replicas != old.updated_replicas
            || new_old < old_old
            || o(st.ready_replicas) > o(old.ready_replicas)
            || o(st.available_replicas) > o(old.available_replicas)
            || stable_change
            || index_change
            || steps_hash_change
    }

    pub(super) fn progress_deadline(&self) -> i64 {
        i64::from(
            self.ro
                .spec
                .progress_deadline_seconds
                .unwrap_or(crate::api::defaults::PROGRESS_DEADLINE_SECONDS),
        )
    }

    pub(super) fn indefinite_step(&self) -> bool {
        let (step, _) = self.current_step();
        step.is_some_and(|s| s.experiment.is_some() || s.analysis.is_some() || s.pause.is_some())
    }

    /// Upstream's `calculateRolloutConditions`.
    pub(super) fn calculate_conditions(&mut self, st: &mut RolloutStatus) {
        let now = self.stamp.clone();
        let paused = self.is_paused();
        let aborted = self.aborted();
        let mut became_unhealthy = false;
        let healthy = self.healthy(st);
        if !paused && healthy {
            cond::set(
                st,
                cond::new_condition(
                    ctype::HEALTHY,
                    "True",
                    reason::ROLLOUT_HEALTHY,
                    reason::ROLLOUT_HEALTHY_MESSAGE,
                    &now,
                ),
            );
        } else if cond::get(&self.old, ctype::HEALTHY).is_some() {
            became_unhealthy = cond::set(
                st,
                cond::new_condition(
                    ctype::HEALTHY,
                    "False",
                    reason::ROLLOUT_HEALTHY,
                    reason::ROLLOUT_NOT_HEALTHY_MESSAGE,
                    &now,
                ),
            );
        }
        let revision = self
            .planned_revision()
            .unwrap_or_else(|| rsets::revision_of(self.ro.annotations()));
        if aborted {
            let mut message = format!("Rollout aborted update to revision {revision}");
            if let Some(m) = self.pause.add_abort.as_deref().filter(|m| !m.is_empty()) {
                message = format!("{message}: {m}");
            }
            if cond::set(
                st,
                cond::new_condition(
                    ctype::PROGRESSING,
                    "False",
                    reason::ROLLOUT_ABORTED,
                    message.clone(),
                    &now,
                ),
            ) {
                self.events
                    .push(Event::warning(reason::ROLLOUT_ABORTED, message));
            }
        }
        let current = cond::get(&self.old, ctype::PROGRESSING).cloned();
        let new_name = self.rs.new_rs().map(|r| r.name.clone());
        if !aborted {
            if healthy {
                let msg = format!(
                    "ReplicaSet \"{}\" has successfully progressed.",
                    new_name.clone().unwrap_or_default()
                );
                cond::set(
                    st,
                    cond::new_condition(
                        ctype::PROGRESSING,
                        "True",
                        reason::NEW_RS_AVAILABLE,
                        msg,
                        &now,
                    ),
                );
            } else if self.progressing(st) || became_unhealthy {
                let mut msg = match &new_name {
                    Some(n) => format!("ReplicaSet \"{n}\" is progressing."),
                    None => format!("Rollout \"{}\" is progressing.", self.ro.name_any()),
                };
                let reason = if st.stable_rs == st.current_pod_hash && became_unhealthy {
                    msg = reason::NOT_AVAILABLE_MESSAGE.to_string();
                    reason::REPLICA_SET_NOT_AVAILABLE
                } else {
                    reason::REPLICA_SET_UPDATED
                };
                let mut c = cond::new_condition(ctype::PROGRESSING, "True", reason, msg, &now);
                if let Some(cur) = &current {
                    if cur.status.as_deref() == Some("True") {
                        c.last_transition_time = cur.last_transition_time.clone();
                    }
                    cond::remove(st, ctype::PROGRESSING);
                }
                cond::set(st, c);
            } else if !self.indefinite_step() && !paused && self.timed_out(st) {
                let msg = match &new_name {
                    Some(n) => format!("ReplicaSet \"{n}\" has timed out progressing."),
                    None => format!(
                        "Rollout \"{}\" has timed out progressing.",
                        self.ro.name_any()
                    ),
                };
                let changed = cond::set(
                    st,
                    cond::new_condition(
                        ctype::PROGRESSING,
                        "False",
                        reason::TIMED_OUT,
                        msg.clone(),
                        &now,
                    ),
                );
                if self.ro.spec.progress_deadline_abort == Some(true)
                    && (changed || !self.aborted())
                {
                    self.pause.add_abort = Some(msg.clone());
                    self.events
                        .push(Event::warning(reason::ROLLOUT_ABORTED, msg));
                }
            }
        }
        let available: i32 = self.rs.all.iter().map(|r| r.available).sum();
        let has_availability = match self.bg {
            Some(_) => st
                .blue_green
                .as_ref()
                .and_then(|b| b.active_selector.as_deref())
                .and_then(|h| self.rs.all.iter().find(|r| r.hash == h))
                .is_some_and(|r| self.saturated(r)),
            None => available >= self.replicas(),
        };
        let avail = if has_availability {
            cond::new_condition(
                ctype::AVAILABLE,
                "True",
                reason::AVAILABLE,
                reason::AVAILABLE_MESSAGE,
                &now,
            )
        } else {
            cond::new_condition(
                ctype::AVAILABLE,
                "False",
                reason::AVAILABLE,
                reason::NOT_AVAILABLE_MESSAGE,
                &now,
            )
        };
        cond::set(st, avail);
        match self.replica_failure() {
            Some(c) => {
                cond::set(st, c);
            }
            None => cond::remove(st, ctype::REPLICA_FAILURE),
        }
        let stable = st.stable_rs.as_deref().unwrap_or_default();
        if !stable.is_empty() && Some(stable) == st.current_pod_hash.as_deref() {
            cond::set(
                st,
                cond::new_condition(
                    ctype::COMPLETED,
                    "True",
                    reason::ROLLOUT_COMPLETED,
                    reason::ROLLOUT_COMPLETED,
                    &now,
                ),
            );
        } else if cond::set(
            st,
            cond::new_condition(
                ctype::COMPLETED,
                "False",
                reason::ROLLOUT_COMPLETED,
                reason::ROLLOUT_COMPLETED,
                &now,
            ),
        ) {
            let observed_revision = rsets::revision_of(self.ro.annotations());
            self.events.push(Event::normal(
                reason::ROLLOUT_NOT_COMPLETED,
                format!(
                    "Rollout not completed, started update to revision {} ({})",
                    observed_revision + 1,
                    st.current_pod_hash.clone().unwrap_or_default()
                ),
            ));
        }
    }

    /// Upstream's `RolloutTimedOut` on the new status.
    pub(super) fn timed_out(&self, st: &RolloutStatus) -> bool {
        let Some(c) = cond::get(st, ctype::PROGRESSING) else {
            return false;
        };
        match c.reason.as_deref() {
            Some(reason::ROLLOUT_ABORTED) => false,
            Some(reason::TIMED_OUT) => true,
            _ => c
                .last_update_time
                .as_ref()
                .is_some_and(|t| t.0.as_second() + self.progress_deadline() < self.now.as_second()),
        }
    }

    pub(super) fn replica_failure(&self) -> Option<crate::api::RolloutCondition> {
        let convert = |rs: &Rs| {
            rs.obj?
                .status
                .as_ref()?
                .conditions
                .as_ref()?
                .iter()
                .find(|c| c.type_ == "ReplicaFailure")
                .map(|c| crate::api::RolloutCondition {
                    type_: Some(c.type_.clone()),
                    status: Some(c.status.clone()),
                    last_transition_time: c.last_transition_time.clone(),
                    last_update_time: c.last_transition_time.clone(),
                    reason: c.reason.clone(),
                    message: c.message.clone(),
                })
        };
        self.rs
            .new_rs()
            .and_then(convert)
            .or_else(|| self.rs.all.iter().find_map(convert))
    }

    /// Upstream's `CalculatePauseStatus`.
    pub(super) fn calculate_pause_status(&self, st: &mut RolloutStatus) {
        let aborted_at = self
            .old
            .aborted_at
            .clone()
            .unwrap_or_else(|| self.stamp.clone());
        if self.pause.add_abort.is_some()
            || (!self.pause.remove_abort && self.old.abort == Some(true))
        {
            st.abort = Some(true);
            st.aborted_at = Some(aborted_at);
            return;
        }
        st.abort = None;
        st.aborted_at = None;
        if self.pause.clear {
            return;
        }
        let mut controller_pause = self.old.controller_pause == Some(true);
        let mut conds: Vec<PauseCondition> = Vec::new();
        let old = self.old.pause_conditions.clone().unwrap_or_default();
        for c in &old {
            if !self
                .pause
                .remove
                .iter()
                .any(|r| Some(*r) == c.reason.as_deref())
            {
                conds.push(c.clone());
            }
        }
        for reason in &self.pause.add {
            if !old.iter().any(|c| c.reason.as_deref() == Some(*reason)) {
                conds.push(PauseCondition {
                    reason: Some((*reason).into()),
                    start_time: Some(self.stamp.clone()),
                });
                controller_pause = true;
            }
        }
        if conds.is_empty() {
            return;
        }
        st.controller_pause = controller_pause.then_some(true);
        st.pause_conditions = Some(conds);
    }

    /// persistRolloutStatus + the requeue for progress checks.
    pub(super) fn into_plan(mut self, mut st: RolloutStatus) -> Plan {
        self.calculate_pause_status(&mut st);
        st.observed_generation = Some(self.ro.metadata.generation.unwrap_or(0).to_string());
        let (phase, message) = cond::phase(&self.ro.spec, &st);
        st.phase = Some(phase.into());
        // Go omits an empty message (`omitempty`).
        st.message = (!message.is_empty()).then_some(message);
        // sendStateChangeEvents
        let was_paused = self
            .old
            .pause_conditions
            .as_ref()
            .is_some_and(|p| !p.is_empty());
        let now_paused = st.pause_conditions.as_ref().is_some_and(|p| !p.is_empty());
        if was_paused != now_paused {
            if now_paused {
                let r = st
                    .pause_conditions
                    .as_ref()
                    .and_then(|p| p[0].reason.clone())
                    .unwrap_or_default();
                self.events.push(Event::normal(
                    reason::ROLLOUT_PAUSED,
                    format!("{} ({r})", reason::ROLLOUT_PAUSED_MESSAGE),
                ));
            } else if st.aborted_at.is_none() {
                self.events.push(Event::normal(
                    reason::ROLLOUT_RESUMED,
                    reason::ROLLOUT_RESUMED_MESSAGE,
                ));
            }
        }
        self.requeue_stuck(&st);
        Plan {
            effects: compact(self.effects),
            status: st,
            events: self.events,
            requeue_after: self.requeue,
        }
    }

    /// Upstream's `requeueStuckRollout`: look again when the progress deadline passes.
    pub(super) fn requeue_stuck(&mut self, st: &RolloutStatus) {
        let Some(c) = cond::get(&self.old, ctype::PROGRESSING) else {
            return;
        };
        if self.healthy(st)
            || c.reason.as_deref() == Some(reason::TIMED_OUT)
            || self.is_paused()
            || self.old.abort == Some(true)
            || self.indefinite_step()
        {
            return;
        }
        if let Some(t) = &c.last_update_time {
            let at = t.0.as_second() + self.progress_deadline() + 1;
            if let Ok(at) = Timestamp::from_second(at) {
                self.requeue_at(at);
            }
        }
    }
}

/// Kubernetes' `IsPodAvailable`: Ready, for at least `min_ready` seconds.
fn pod_available(pod: &k8s_openapi::api::core::v1::Pod, min_ready: i64, now: Timestamp) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
        .is_some_and(|c| {
            c.status == "True"
                && (min_ready == 0
                    || c.last_transition_time
                        .as_ref()
                        .is_some_and(|t| t.0.as_second() + min_ready <= now.as_second()))
        })
}

/// Whether `spec.restartAt` asks for a restart now (the controller then lists the pods).
pub fn needs_restart(ro: &Rollout, now: Timestamp) -> bool {
    let Some(at) = ro.spec.restart_at.as_ref() else {
        return false;
    };
    let done = ro.status.as_ref().and_then(|s| s.restarted_at.as_ref()) == Some(at);
    !done && now >= at.0
}

pub(super) fn pause_deadline(start: &Time, secs: i64) -> Timestamp {
    Timestamp::from_second(start.0.as_second().saturating_add(secs)).unwrap_or(start.0)
}

/// Folds the writes of one plan: patches of one ReplicaSet become one patch, and a patch of a
/// ReplicaSet this plan creates goes into the created object.
fn compact(effects: Vec<Effect>) -> Vec<Effect> {
    let mut out: Vec<Effect> = Vec::new();
    for e in effects {
        match e {
            Effect::PatchReplicaSet { name, patch } => {
                if let Some(existing) = out.iter_mut().find_map(|o| match o {
                    Effect::PatchReplicaSet { name: n, patch: p } if *n == name => Some(p),
                    _ => None,
                }) {
                    existing.merge(patch);
                    continue;
                }
                if let Some(rs) = out.iter_mut().find_map(|o| match o {
                    Effect::CreateReplicaSet(rs)
                        if rs.metadata.name.as_deref() == Some(name.as_str()) =>
                    {
                        Some(rs)
                    }
                    _ => None,
                }) {
                    if let Some(r) = patch.replicas {
                        rs.spec.get_or_insert_with(Default::default).replicas = Some(r);
                    }
                    if let Some(m) = patch.min_ready_seconds {
                        rs.spec
                            .get_or_insert_with(Default::default)
                            .min_ready_seconds = Some(m);
                    }
                    let ann = rs.metadata.annotations.get_or_insert_with(Default::default);
                    for (k, v) in patch.annotations {
                        match v {
                            Some(v) => ann.insert(k, v),
                            None => ann.remove(&k),
                        };
                    }
                    continue;
                }
                out.push(Effect::PatchReplicaSet { name, patch });
            }
            other => out.push(other),
        }
    }
    out
}
