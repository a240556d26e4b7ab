//! The canary strategy's step machine, after upstream's `rollout/canary.go`, `sync.go`,
//! `replicaset.go`, `service.go` and `pause.go`. The Rollout's status is its only memory.
//!
//! [`reconcile`] reads the [`View`] and appends to the [`Writes`]: it creates or syncs the new
//! ReplicaSet, restarts pods and moves ephemeral metadata when asked, points the Services
//! ([`traffic::reconcile_services`]), drives the traffic routers
//! ([`traffic::reconcile_traffic`]), reconciles the Experiments of `experiment` steps
//! ([`experiments::reconcile_experiments`]) and the AnalysisRuns, scales the ReplicaSets
//! ([`scale::reconcile_replica_sets`]), pauses, and finally computes the status: the step
//! advances when its gate ([`gate::canary_step`]) opens.

mod scale;
mod traffic;

use super::conditions::reason;
use super::gate::{self, Wait};
use super::replicasets::{self as rsets, Rs};
use super::status;
use super::view::{View, pause_deadline, step_string};
use super::writes::Writes;
use super::{Effect, Event, Observed, analysis, ephemeral, experiments, restart, rollout_rs};
use crate::api::{RolloutStatus, pause_reason};
use std::time::Duration;

/// Upstream's `rolloutCanary`: this reconcile's writes (into `w`) and the new status. `v`
/// becomes the view with the new ReplicaSet once this plan creates it.
pub fn reconcile<'a>(v: &mut View<'a>, w: &mut Writes, obs: &Observed<'a>) -> RolloutStatus {
    if v.retried {
        w.events.push(Event::normal(
            reason::ROLLOUT_RETRY,
            reason::ROLLOUT_RETRY_MESSAGE,
        ));
    }
    // A scaling event (spec.replicas changed): only resize. As upstream's `isScalingEvent`,
    // judged on the new and the stable ReplicaSet only, and only once the new one exists: a
    // template change made together with a scale first creates its ReplicaSet.
    let ro_replicas = v.replicas();
    let scaling = v.new_idx().is_some()
        && [v.rs.new_rs(), v.rs.stable_rs()]
            .into_iter()
            .flatten()
            .filter(|r| r.spec_replicas > 0)
            .any(|r| {
                r.desired_replicas_annotation()
                    .is_some_and(|d| d != ro_replicas)
            });
    if scaling {
        let mut status = v.old.clone();
        rollout_rs::sync_revision(v, w, &mut status);
        scale::reconcile_replica_sets(v, w);
        status.available_replicas = Some(v.rs.all.iter().map(|r| r.available).sum());
        status.hpa_replicas = Some(v.rs.all.iter().map(|r| r.status_replicas).sum());
        return status;
    }

    let mut status = status::base_status(v);
    if v.template_or_steps_changed() {
        // The routers are not touched in this reconcile: the weights the status recorded are
        // still theirs. Dropping them would leave the next reconcile (an abort, dynamic stable
        // scaling) without the traffic it must move back first.
        if let Some(c) = status.canary.as_mut() {
            c.weights = v.old.canary.as_ref().and_then(|c| c.weights.clone());
        }
        rollout_rs::sync_revision(v, w, &mut status);
        w.reset = true;
        return sync_status(v, w, status, true);
    }
    if v.new_idx().is_some() {
        rollout_rs::sync_revision(v, w, &mut status);
    } else {
        *v = rollout_rs::create_new_rs(v, w, &mut status);
    }
    restart::restart_pods(v, w, obs, &mut status);
    ephemeral::sync_ephemeral_metadata(v, w, obs);
    let others: Vec<&Rs> = v.rs.others().collect();
    for (name, uid) in rsets::history_cleanup(&others, v.ro.spec.revision_history_limit) {
        w.effects.push(Effect::DeleteReplicaSet { name, uid });
    }
    traffic::reconcile_services(v, w, obs);
    if v.traffic_routed()
        && let Err(e) = traffic::reconcile_traffic(v, w, obs, &mut status)
    {
        // The router cannot be driven safely (a missing VirtualService or route...): change
        // nothing and say so.
        w.wait = Some(Wait::TrafficBlocked(e.to_string()));
        return status::blocked(v, w, e.to_string(), &e.reason());
    }
    if let Err(e) = experiments::reconcile_experiments(v, w, obs, &mut status) {
        let problem = e.to_string();
        w.wait = Some(Wait::InvalidSpec(problem.clone()));
        return status::blocked(v, w, problem, experiments::ERROR_REASON);
    }
    if let Err(problem) = analysis::reconcile_analysis(v, w, obs, &mut status) {
        let problem = problem.to_string();
        w.wait = Some(Wait::InvalidSpec(problem.clone()));
        return status::blocked(v, w, problem, "AnalysisRunError");
    }
    if !w.pause.add.is_empty() {
        // An inconclusive analysis or Experiment paused the Rollout: nothing else moves now.
        w.wait = gate::inconclusive(&w.runs)
            .or_else(|| gate::inconclusive_experiment(w.experiment.as_ref()));
        return sync_status(v, w, status, false);
    }
    let scaled = scale::reconcile_replica_sets(v, w);
    if !scaled {
        reconcile_pause(v, w);
    }
    sync_status(v, w, status, false)
}

/// Upstream's `reconcileCanaryPause`: a `pause` step adds its pause condition (and asks to look
/// again at its deadline).
fn reconcile_pause(v: &View<'_>, w: &mut Writes) {
    if v.ro.spec.paused == Some(true) || v.old.promote_full == Some(true) {
        return;
    }
    let (step, _) = v.current_step();
    let Some(pause) = step.and_then(|s| s.pause.as_ref()) else {
        return;
    };
    match v.old_pause_condition(pause_reason::CANARY_PAUSE_STEP) {
        None => {
            if v.old.controller_pause != Some(true) {
                w.pause.add.push(pause_reason::CANARY_PAUSE_STEP);
                if let Some(Ok(secs)) = pause.duration_seconds() {
                    w.requeue_in(Duration::from_secs(secs.max(0) as u64));
                }
            }
        }
        Some(pc) => {
            if let (Some(Ok(secs)), Some(start)) = (pause.duration_seconds(), pc.start_time.clone())
            {
                w.requeue_at(v.now, pause_deadline(&start, secs));
            }
        }
    }
}

/// Upstream's `shouldFullPromote` (canary): why the new ReplicaSet becomes the stable now, if
/// it does; otherwise, when a promotion is due but the canary's pods are not all there yet,
/// that wait.
fn should_full_promote(v: &View<'_>, w: &Writes) -> Result<String, Option<Wait>> {
    if v.rs.stable_rs().is_none() {
        return Ok("Initial deploy".into());
    }
    if w.aborted(v) {
        return Err(None);
    }
    let Some(new) = v.rs.new_rs() else {
        return Err(None);
    };
    let (_, idx) = v.current_step();
    let count = v.steps().len();
    let why = if v.old.promote_full == Some(true) {
        "Full promotion requested".to_string()
    } else if v.rollback_within_window() {
        "Rollback within window".to_string()
    } else if count == 0 || idx == Some(count as i32) {
        format!("Completed all {count} canary steps")
    } else {
        return Err(None);
    };
    // Only while the canary has fewer available pods than the Rollout wants (and below its
    // replicaProgressThreshold): more (an HPA scaled the Rollout down) promotes, and the
    // surplus is scaled down afterwards.
    let replicas = v.replicas();
    if new.available < replicas
        && !super::replicas::replica_progress_threshold_met(
            v.progress_threshold(),
            Some(new.state()),
            replicas,
        )
    {
        return Err(Some(gate::canary_replicas_wait(v, replicas)));
    }
    Ok(why)
}

/// Upstream's `syncRolloutStatusCanary`: the step index, a promotion to stable, the conditions.
fn sync_status(
    v: &View<'_>,
    w: &mut Writes,
    mut st: RolloutStatus,
    changed: bool,
) -> RolloutStatus {
    let step_count = v.steps().len() as i32;
    let (step, mut idx) = v.current_step();
    if changed {
        // resetRolloutStatus
        w.pause.clear = true;
        w.pause.remove_abort = true;
        st.restarted_at = v.ro.spec.restart_at.clone();
        st.promote_full = None;
        st.current_step_index = if step_count > 0 { Some(0) } else { None };
        if let Some(new) = v.rs.new_rs()
            && v.old.stable_rs.as_deref() == Some(new.hash.as_str())
            && step_count > 0
        {
            w.events.push(Event::normal(
                reason::SKIP_STEPS,
                "Rollback to stable ReplicaSets",
            ));
            st.current_step_index = Some(step_count);
        }
        status::calculate_conditions(v, w, &mut st);
        return st;
    }
    if v.old.promote_full == Some(true) || v.rollback_within_window() {
        w.pause.clear = true;
        w.pause.remove_abort = true;
        if step_count > 0 {
            idx = Some(step_count);
        }
    }
    match should_full_promote(v, w) {
        Ok(why) => {
            w.pause.clear = true;
            w.pause.remove_abort = true;
            st.promote_full = None;
            st.current_step_index = (step_count > 0).then_some(step_count);
            let current = st.current_pod_hash.clone().unwrap_or_default();
            if st.stable_rs.as_deref() != Some(current.as_str()) {
                st.stable_rs = Some(current.clone());
                let revision = w.revision(v);
                w.events.push(Event::normal(
                    reason::ROLLOUT_COMPLETED,
                    format!("Rollout completed update to revision {revision} ({current}): {why}"),
                ));
            }
            status::calculate_conditions(v, w, &mut st);
            return st;
        }
        Err(wait) => w.wait = w.wait.take().or(wait),
    }
    if w.aborted(v) {
        if step_count > 0 {
            st.current_step_index = Some(if st.is_fully_promoted() {
                step_count
            } else {
                0
            });
        }
        status::calculate_conditions(v, w, &mut st);
        return st;
    }
    match gate::canary_step(v, &w.runs, w.experiment.as_ref()) {
        Some(Ok(())) => {
            // (A full promotion may already have moved the index past the last step: the
            // step seen at the start is then not counted again.)
            if let (Some(step), Some(i)) = (step, idx.as_mut().filter(|i| **i < step_count)) {
                *i += 1;
                if let Some(c) = st.canary.as_mut() {
                    c.current_step_analysis_run_status = None;
                }
                w.events.push(Event::normal(
                    reason::ROLLOUT_STEP_COMPLETED,
                    format!(
                        "Rollout step {}/{} completed ({})",
                        *i,
                        step_count,
                        step_string(step)
                    ),
                ));
                w.pause.remove.push(pause_reason::CANARY_PAUSE_STEP);
                // The next step's gate is looked at on the next reconcile.
                w.wait = None;
            }
        }
        Some(Err(wait)) => {
            w.wait.get_or_insert(wait);
        }
        None => {}
    }
    st.current_step_index = idx;
    status::calculate_conditions(v, w, &mut st);
    st
}
