//! The last layer of a plan, shared by both strategies: the status fields every reconcile
//! recomputes, the conditions (Healthy, Progressing, Available, Completed, ReplicaFailure,
//! InvalidSpec), the pause and abort bookkeeping, the phase and message, the state-change
//! events, and the [`Plan`] itself (upstream's `calculateBaseStatus`,
//! `calculateRolloutConditions`, `CalculatePauseStatus` and `persistRolloutStatus`).

use super::conditions::{self as cond, reason};
use super::replicasets::{self as rsets, Rs};
use super::validate::FieldError;
use super::view::View;
use super::wait::Wait;
use super::writes::Writes;
use super::{Effect, Event, Plan, stamp};
use crate::api::rollout_condition_type as ctype;
use crate::api::{BlueGreenStatus, CanaryStatus, PauseCondition, Rollout, RolloutStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube_core::ResourceExt;
use std::time::Duration;

/// How long to wait before looking at an invalid Rollout again (the error may be timing
/// related, e.g. a Service applied after the Rollout), as upstream.
pub const INVALID_SPEC_REQUEUE: Duration = Duration::from_secs(20);

/// The status fields every canary reconcile recomputes (upstream's `calculateBaseStatus` plus
/// the canary specifics).
pub fn base_status(v: &View<'_>) -> RolloutStatus {
    let old = &v.old;
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
        v.rs.new_rs()
            .map(|r| r.hash.clone())
            .unwrap_or_else(|| v.desired_hash.clone()),
    );
    let sum = |f: fn(&Rs) -> i32| v.rs.all.iter().map(f).sum::<i32>();
    st.replicas = Some(sum(|r| r.status_replicas));
    st.updated_replicas = Some(v.rs.new_rs().map_or(0, |r| r.status_replicas));
    st.ready_replicas = Some(sum(|r| r.ready));
    st.available_replicas = Some(sum(|r| r.available));
    st.hpa_replicas = st.replicas;
    st.collision_count = old.collision_count;
    st.promote_full = old.promote_full.filter(|p| *p);
    st.selector = Some(rsets::format_selector(v.ro.spec.selector.as_ref()));
    st.stable_rs = old.stable_rs.clone();
    st.current_step_hash = (!v.step_hash.is_empty()).then(|| v.step_hash.clone());
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

/// Sets the InvalidSpec condition for `problem` (upstream's message). Returns the message when
/// it is new (for the Warning event), `None` when the condition already says it.
pub fn mark_invalid(
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
pub fn invalid_spec(ro: &Rollout, err: &FieldError, now: Timestamp) -> Plan {
    let mut status = ro.status.clone().unwrap_or_default();
    let msg = format!("The Rollout \"{}\" is invalid: {err}", ro.name_any());
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
        wait: Some(Wait::InvalidSpec(msg)),
    }
}

/// The status when something the Rollout references cannot be used (a missing VirtualService
/// or AnalysisTemplate...): an InvalidSpec condition naming it and a Warning event; no writes.
pub fn blocked(v: &View<'_>, w: &mut Writes, problem: String, event_reason: &str) -> RolloutStatus {
    w.effects.clear();
    let mut status = v.old.clone();
    if let Some(msg) = mark_invalid(v.ro, &mut status, problem, &v.stamp) {
        w.events.push(Event::warning(event_reason, msg));
    }
    w.requeue_in(INVALID_SPEC_REQUEUE);
    status
}

/// Upstream's `RolloutHealthy`.
pub fn healthy(v: &View<'_>, st: &RolloutStatus) -> bool {
    let replicas = v.replicas();
    let step_count = v.steps().len() as i32;
    let executed_all = match st.current_step_index {
        Some(i) if step_count > 0 => i == step_count,
        _ => true,
    };
    let _stable = st.stable_rs.as_deref().unwrap_or_default();
    let current_is_stable = st.stable_is_current();
    let completed_strategy = match v.bg {
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
        && v.old.observed_generation.as_deref()
            == Some(v.ro.metadata.generation.unwrap_or(0).to_string().as_str())
        && completed_strategy
}

/// Upstream's `RolloutProgressing`.
fn progressing(v: &View<'_>, st: &RolloutStatus) -> bool {
    let old = &v.old;
    let c = |x: Option<i32>| x.unwrap_or(0);
    let made_progress = st.updated_replicas != old.updated_replicas
        || c(st.replicas) - c(st.updated_replicas) < c(old.replicas) - c(old.updated_replicas)
        || c(st.ready_replicas) > c(old.ready_replicas)
        || c(st.available_replicas) > c(old.available_replicas);
    if v.bg.is_some() {
        let (o, n) = (
            old.blue_green.clone().unwrap_or_default(),
            st.blue_green.clone().unwrap_or_default(),
        );
        let selectors_change =
            o.active_selector != n.active_selector || o.preview_selector != n.preview_selector;
        return made_progress || selectors_change;
    }
    let stable_change = st.stable_rs != old.stable_rs;
    let index_change =
        matches!((st.current_step_index, old.current_step_index), (Some(a), Some(b)) if a != b);
    let steps_hash_change = st.current_step_hash != old.current_step_hash;
    made_progress || stable_change || index_change || steps_hash_change
}

/// Upstream's `RolloutTimedOut` on the new status.
/// Upstream's `isWaitingForReplicaSetScaleDown`: an older ReplicaSet waits for its scale-down
/// deadline, which is not a lack of progress (the update itself is done). Unlike upstream, a
/// ReplicaSet already at 0 waits for nothing: an aborted canary keeps its annotation when it is
/// scaled down (upstream's too), and once a newer revision made it an older ReplicaSet, that
/// stale annotation kept the new revision from ever timing out (found by the planner's model).
fn waiting_for_scale_down(v: &View<'_>) -> bool {
    v.rs.others()
        .any(|r| r.spec_replicas > 0 && r.scale_down_deadline().is_some())
}

fn timed_out(v: &View<'_>, st: &RolloutStatus) -> bool {
    let Some(c) = cond::get(st, ctype::PROGRESSING) else {
        return false;
    };
    match c.reason.as_deref() {
        Some(reason::ROLLOUT_ABORTED) => false,
        Some(reason::TIMED_OUT) => true,
        _ => c
            .last_update_time
            .as_ref()
            .is_some_and(|t| t.0.as_second() + v.progress_deadline() < v.now.as_second()),
    }
}

/// The ReplicaFailure condition of the new ReplicaSet (else of any), as a Rollout condition.
fn replica_failure(v: &View<'_>) -> Option<crate::api::RolloutCondition> {
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
    v.rs.new_rs()
        .and_then(convert)
        .or_else(|| v.rs.all.iter().find_map(convert))
}

/// Upstream's `calculateRolloutConditions`. A progress deadline with `progressDeadlineAbort`
/// aborts the Rollout.
pub fn calculate_conditions(v: &View<'_>, w: &mut Writes, st: &mut RolloutStatus) {
    let now = v.stamp.clone();
    let paused = v.is_paused();
    let aborted = w.aborted(v);
    let mut became_unhealthy = false;
    let healthy = healthy(v, st);
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
    } else if cond::get(&v.old, ctype::HEALTHY).is_some() {
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
    if aborted {
        let mut message = format!("Rollout aborted update to revision {}", w.revision(v));
        if let Some(m) = w.pause.add_abort.as_deref().filter(|m| !m.is_empty()) {
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
            w.events
                .push(Event::warning(reason::ROLLOUT_ABORTED, message));
        }
    }
    let current = cond::get(&v.old, ctype::PROGRESSING).cloned();
    let new_name = v.rs.new_rs().map(|r| r.name.clone());
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
        } else if progressing(v, st) || became_unhealthy {
            let mut msg = match &new_name {
                Some(n) => format!("ReplicaSet \"{n}\" is progressing."),
                None => format!("Rollout \"{}\" is progressing.", v.ro.name_any()),
            };
            let reason = if st.is_fully_promoted() && became_unhealthy {
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
        } else if !v.indefinite_step() && !waiting_for_scale_down(v) && !paused && timed_out(v, st)
        {
            let msg = match &new_name {
                Some(n) => format!("ReplicaSet \"{n}\" has timed out progressing."),
                None => format!("Rollout \"{}\" has timed out progressing.", v.ro.name_any()),
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
            if v.ro.spec.progress_deadline_abort == Some(true) && (changed || !w.aborted(v)) {
                w.pause.add_abort = Some(msg.clone());
                w.events.push(Event::warning(reason::ROLLOUT_ABORTED, msg));
            }
        }
    }
    let available: i32 = v.rs.all.iter().map(|r| r.available).sum();
    let has_availability = match v.bg {
        Some(_) => st
            .blue_green
            .as_ref()
            .and_then(|b| b.active_selector.as_deref())
            .and_then(|h| v.rs.all.iter().find(|r| r.hash == h))
            .is_some_and(|r| v.saturated(r)),
        None => available >= v.replicas(),
    };
    let (status, message) = if has_availability {
        ("True", reason::AVAILABLE_MESSAGE)
    } else {
        ("False", reason::NOT_AVAILABLE_MESSAGE)
    };
    cond::set(
        st,
        cond::new_condition(ctype::AVAILABLE, status, reason::AVAILABLE, message, &now),
    );
    match replica_failure(v) {
        Some(c) => {
            cond::set(st, c);
        }
        None => cond::remove(st, ctype::REPLICA_FAILURE),
    }
    if st.stable_is_current() {
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
        let observed_revision = rsets::revision_of(v.ro.annotations());
        w.events.push(Event::normal(
            reason::ROLLOUT_NOT_COMPLETED,
            format!(
                "Rollout not completed, started update to revision {} ({})",
                observed_revision + 1,
                st.current_pod_hash.clone().unwrap_or_default()
            ),
        ));
    }
}

/// Upstream's `CalculatePauseStatus`: the abort, pause conditions and `controllerPause` after
/// this plan.
fn calculate_pause_status(v: &View<'_>, w: &Writes, st: &mut RolloutStatus) {
    let aborted_at = v.old.aborted_at.clone().unwrap_or_else(|| v.stamp.clone());
    if w.pause.add_abort.is_some() || (!w.pause.remove_abort && v.old.abort == Some(true)) {
        st.abort = Some(true);
        st.aborted_at = Some(aborted_at);
        return;
    }
    st.abort = None;
    st.aborted_at = None;
    if w.pause.clear {
        return;
    }
    let mut controller_pause = v.old.controller_pause == Some(true);
    let mut conds: Vec<PauseCondition> = Vec::new();
    let old = v.old.pause_conditions.clone().unwrap_or_default();
    for c in &old {
        if !w
            .pause
            .remove
            .iter()
            .any(|r| Some(*r) == c.reason.as_deref())
        {
            conds.push(c.clone());
        }
    }
    for reason in &w.pause.add {
        if !old.iter().any(|c| c.reason.as_deref() == Some(*reason)) {
            conds.push(PauseCondition {
                reason: Some((*reason).into()),
                start_time: Some(v.stamp.clone()),
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

/// Upstream's `requeueStuckRollout`: look again when the progress deadline passes.
fn requeue_stuck(v: &View<'_>, w: &mut Writes, st: &RolloutStatus) {
    let Some(c) = cond::get(&v.old, ctype::PROGRESSING) else {
        return;
    };
    if healthy(v, st)
        || c.reason.as_deref() == Some(reason::TIMED_OUT)
        || v.is_paused()
        || v.old.abort == Some(true)
        || v.indefinite_step()
    {
        return;
    }
    if let Some(t) = &c.last_update_time {
        let at = t.0.as_second() + v.progress_deadline() + 1;
        if let Ok(at) = Timestamp::from_second(at) {
            w.requeue_at(v.now, at);
        }
    }
}

/// What holds the Rollout after this plan: an abort, the user's pause, otherwise the gate
/// that held it (none once it is healthy).
fn wait_after(v: &View<'_>, w: &Writes, st: &RolloutStatus) -> Option<Wait> {
    if st.abort == Some(true) {
        return Some(Wait::Aborted);
    }
    if let Some(wait @ (Wait::TrafficBlocked(_) | Wait::InvalidSpec(_))) = &w.wait {
        return Some(wait.clone());
    }
    if v.ro.spec.paused == Some(true) {
        return Some(Wait::UserPaused);
    }
    if st.phase.as_deref() == Some(crate::api::rollout_phase::HEALTHY) {
        return None;
    }
    w.wait.clone()
}

/// `persistRolloutStatus`: the pause status, observed generation, phase and message, the
/// pause/resume events, the requeue for the progress deadline, and the [`Plan`].
pub fn finish(v: &View<'_>, mut w: Writes, mut st: RolloutStatus) -> Plan {
    calculate_pause_status(v, &w, &mut st);
    st.observed_generation = Some(v.ro.metadata.generation.unwrap_or(0).to_string());
    let (phase, message) = cond::phase(&v.ro.spec, &st);
    st.phase = Some(phase.into());
    // Go omits an empty message (`omitempty`).
    st.message = (!message.is_empty()).then_some(message);
    // sendStateChangeEvents
    let was_paused = v
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
            w.events.push(Event::normal(
                reason::ROLLOUT_PAUSED,
                format!("{} ({r})", reason::ROLLOUT_PAUSED_MESSAGE),
            ));
        } else if st.aborted_at.is_none() {
            w.events.push(Event::normal(
                reason::ROLLOUT_RESUMED,
                reason::ROLLOUT_RESUMED_MESSAGE,
            ));
        }
    }
    requeue_stuck(v, &mut w, &st);
    let wait = wait_after(v, &w, &st);
    Plan {
        effects: compact(w.effects),
        status: st,
        events: w.events,
        requeue_after: w.requeue,
        wait,
    }
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
