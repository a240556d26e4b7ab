//! The blue-green strategy, after upstream's `rollout/bluegreen.go`, `service.go` and
//! `pause.go`: the new ReplicaSet comes up behind the preview Service while the active
//! Service keeps pointing at the stable one; the switch happens once the new ReplicaSet is
//! fully available and the pause (manual or `autoPromotionSeconds`) is over; the previous
//! ReplicaSet stays up for `scaleDownDelaySeconds`.
//!
//! Safety invariant (beyond upstream, which does not check it on abort): the active Service is
//! only ever pointed at a ReplicaSet whose pods are all available.

use super::conditions::reason;
use super::gate::{self, Wait};
use super::replicasets::{self as rsets, Rs};
use super::status;
use super::view::{View, pause_deadline, run_succeeded};
use super::writes::Writes;
use super::{Effect, Event, Observed, analysis, ephemeral, restart, rollout_rs};
use crate::api::consts::DEFAULT_REPLICASET_SCALE_DOWN_DEADLINE_ANNOTATION_KEY;
use crate::api::{RolloutStatus, pause_reason};
use std::time::Duration;

/// Upstream's `rolloutBlueGreen` + `syncRolloutStatusBlueGreen`: this reconcile's writes (into
/// `w`) and the new status. `v` becomes the view with the new ReplicaSet once this plan creates
/// it.
pub fn reconcile<'a>(v: &mut View<'a>, w: &mut Writes, obs: &Observed<'a>) -> RolloutStatus {
    if v.retried {
        w.events.push(Event::normal(
            reason::ROLLOUT_RETRY,
            reason::ROLLOUT_RETRY_MESSAGE,
        ));
    }
    let mut st = status::base_status(v);
    if v.new_idx().is_some() {
        rollout_rs::sync_revision(v, w, &mut st);
    } else {
        *v = rollout_rs::create_new_rs(v, w, &mut st);
    }
    // The preview Service follows the new ReplicaSet at once.
    if let (Some(preview), false) = (v.preview_service(), v.halted())
        && let Some(hash) = v.rs.new_rs().map(|r| r.hash.clone())
    {
        w.switch_service(preview, &hash);
    }
    let changed = v.template_changed();
    if !changed {
        restart::restart_pods(v, w, obs, &mut st);
        ephemeral::sync_ephemeral_metadata(v, w, obs);
        reconcile_replica_sets(v, w);
        reconcile_pause(v, w);
        reconcile_active_service(v, w);
        if let Err(problem) = analysis::reconcile_analysis(v, w, obs, &mut st) {
            let problem = problem.to_string();
            w.wait = Some(Wait::InvalidSpec(problem.clone()));
            return status::blocked(v, w, problem, "AnalysisRunError");
        }
    }
    // syncRolloutStatusBlueGreen
    st.stable_rs = v.old.stable_rs.clone();
    if changed {
        w.pause.clear = true;
        w.pause.remove_abort = true;
        st.restarted_at = v.ro.spec.restart_at.clone();
        st.promote_full = None;
    }
    if v.old.promote_full == Some(true) || v.rollback_within_window() {
        w.pause.clear = true;
        w.pause.remove_abort = true;
    }
    let prev = st.blue_green.clone().unwrap_or_default();
    st.blue_green = Some(crate::api::BlueGreenStatus {
        preview_selector: w.selector(v.preview_service()),
        active_selector: w.selector(v.active_service()),
        pre_promotion_analysis_run_status: prev.pre_promotion_analysis_run_status,
        post_promotion_analysis_run_status: prev.post_promotion_analysis_run_status,
        ..Default::default()
    });
    if let Some(why) = should_full_promote(v, w, &st) {
        w.pause.clear = true;
        w.pause.remove_abort = true;
        st.promote_full = None;
        let current = st.current_pod_hash.clone().unwrap_or_default();
        if st.stable_rs.as_deref() != Some(current.as_str()) {
            st.stable_rs = Some(current.clone());
            let revision = w.revision(v);
            w.events.push(Event::normal(
                reason::ROLLOUT_COMPLETED,
                format!("Rollout completed update to revision {revision} ({current}): {why}"),
            ));
        }
    } else if !changed {
        let cp = scale_up_preview_check_point(v, w);
        if let Some(b) = st.blue_green.as_mut() {
            b.scale_up_preview_check_point = cp.then_some(true);
        }
        w.wait = waiting_for(v, w, &st);
    }
    let active_hash = st
        .blue_green
        .as_ref()
        .and_then(|b| b.active_selector.clone());
    if let Some(active) = v.rs_by_hash(active_hash.as_deref()).map(|i| &v.rs.all[i]) {
        st.hpa_replicas = Some(active.status_replicas);
        st.selector = Some(rsets::format_selector(
            active
                .obj
                .and_then(|o| o.spec.as_ref())
                .map(|s| &s.selector),
        ));
        st.available_replicas = Some(active.available);
        st.ready_replicas = Some(active.ready);
    }
    status::calculate_conditions(v, w, &mut st);
    st
}

/// Upstream's `reconcileBlueGreenPause`.
fn reconcile_pause(v: &View<'_>, w: &mut Writes) {
    if v.old.abort == Some(true) || gate::ready_for_pause(v).is_err() || v.halted() {
        return;
    }
    let new_hash = v.rs.new_rs().map(|r| r.hash.clone());
    let active = w.selector(v.active_service());
    if gate::fast_tracked(v, w)
        || active == new_hash
        || v.preview_check_point()
        || !gate::needs_controller_pause(v)
    {
        w.pause.remove.push(pause_reason::BLUE_GREEN_PAUSE);
        return;
    }
    if gate::completed_pre_promotion_analysis(v, w).is_err() {
        return;
    }
    let bg = v.bgs();
    let auto_seconds = bg
        .auto_promotion_seconds
        .filter(|s| *s > 0 && bg.auto_promotion_enabled != Some(false));
    match v.old_pause_condition(pause_reason::BLUE_GREEN_PAUSE) {
        Some(cond) => {
            if gate::completed_pause(v, w).is_ok() {
                w.pause.remove.push(pause_reason::BLUE_GREEN_PAUSE);
            } else if let (Some(start), Some(secs)) = (cond.start_time.clone(), auto_seconds) {
                w.requeue_at(v.now, pause_deadline(&start, i64::from(secs)));
            }
        }
        None => {
            if v.old.controller_pause != Some(true) {
                w.pause.add.push(pause_reason::BLUE_GREEN_PAUSE);
                if let Some(secs) = auto_seconds {
                    w.requeue_in(Duration::from_secs(secs as u64));
                }
            }
        }
    }
}

/// Upstream's `reconcileActiveService`, never switching to a ReplicaSet that is not fully
/// available.
fn reconcile_active_service(v: &View<'_>, w: &mut Writes) {
    let Some(active_svc) = v.active_service() else {
        return;
    };
    if v.halted() {
        return;
    }
    let Some(new) = v.rs.new_rs() else {
        return;
    };
    if gate::ready_for_pause(v).is_err() || !v.saturated(new) {
        return;
    }
    let mut target = w.selector(Some(active_svc));
    if gate::fast_tracked(v, w)
        || (gate::completed_pause(v, w).is_ok()
            && gate::completed_pre_promotion_analysis(v, w).is_ok())
    {
        target = Some(new.hash.clone());
    }
    if v.old.abort == Some(true) {
        target = v.old.stable_rs.clone().filter(|s| !s.is_empty());
    }
    let Some(target) = target else { return };
    let Some(idx) = v.rs_by_hash(Some(&target)) else {
        return;
    };
    if !v.saturated(&v.rs.all[idx]) {
        // The safety invariant: wait until the target is fully available.
        return;
    }
    w.switch_service(active_svc, &target);
}

/// Upstream's `reconcileBlueGreenReplicaSets`.
fn reconcile_replica_sets(v: &View<'_>, w: &mut Writes) {
    // Drop stale scale-down deadlines from the new and stable ReplicaSets (we moved back).
    let mut drop_deadline = Vec::new();
    if let Some(n) = v.new_idx().filter(|_| !w.delay_scale_down_on_abort(v)) {
        drop_deadline.push(n);
    }
    if let Some(s) = v.stable_idx().filter(|s| Some(*s) != v.new_idx()) {
        drop_deadline.push(s);
    }
    for idx in drop_deadline {
        w.drop_scale_down_deadline(&v.rs.all[idx]);
    }
    // The active ReplicaSet runs at full size.
    if let Some(active) = v.rs_by_hash(w.selector(v.active_service()).as_deref()) {
        w.scale(v, active, v.replicas());
    }
    // The new ReplicaSet: full, previewReplicaCount, or down after an abort's delay (which does
    // not apply once it is the active one).
    if let Some(n) = v.new_idx() {
        let want = gate::bg_new_rs_replicas(v);
        let active = w.selector(v.active_service());
        if active.as_deref() == Some(v.rs.all[n].hash.as_str()) {
            w.scale(v, n, want);
        } else {
            rollout_rs::scale_new_rs(v, w, n, want);
        }
    }
    // Older ReplicaSets: scale down after their delay, unless still referenced.
    let inconclusive = v
        .old_pause_condition(pause_reason::INCONCLUSIVE_ANALYSIS)
        .is_some();
    // Without a scale-down delay, the previous version stays up until post-promotion analysis
    // succeeds (it is the rollback target).
    let waiting_post = v.bgs().post_promotion_analysis.is_some()
        && v.bgs().scale_down_delay_seconds.is_none()
        && !analysis::skip_post_promotion(v)
        && !run_succeeded(w.runs.post.as_ref());
    if !inconclusive && !waiting_post {
        let mut others: Vec<usize> = (0..v.rs.all.len())
            .filter(|i| Some(*i) != v.new_idx() && Some(*i) != v.stable_idx())
            .collect();
        others.sort_by(|a, b| v.rs.all[*b].revision.cmp(&v.rs.all[*a].revision));
        let mut annotated = 0;
        for i in others {
            if v.referenced(&v.rs.all[i]) || v.rs.all[i].spec_replicas == 0 {
                continue;
            }
            let want = rollout_rs::scale_down_delay_helper(v, w, i, &mut annotated);
            if v.rs.all[i].spec_replicas != want {
                w.scale(v, i, want);
            }
        }
    }
    let others: Vec<&Rs> = v.rs.others().collect();
    for (name, uid) in rsets::history_cleanup(&others, v.ro.spec.revision_history_limit) {
        w.effects.push(Effect::DeleteReplicaSet { name, uid });
    }
}

/// Upstream's `shouldFullPromote` for blue-green.
fn should_full_promote(v: &View<'_>, w: &Writes, st: &RolloutStatus) -> Option<String> {
    if v.rs.stable_rs().is_none() {
        return Some("Initial deploy".into());
    }
    let active = st
        .blue_green
        .as_ref()
        .and_then(|b| b.active_selector.clone())
        .unwrap_or_default();
    if active.is_empty() {
        return Some("Initial deploy".into());
    }
    if Some(active.as_str()) != st.current_pod_hash.as_deref() {
        return None;
    }
    if v.old.promote_full == Some(true) {
        return Some("Full promotion requested".into());
    }
    if v.rollback_within_window() {
        return Some("Rollback within window".into());
    }
    if w.aborted(v) {
        return None;
    }
    if v.bgs().post_promotion_analysis.is_some() {
        if let Some(new) = v.rs.new_rs()
            && new
                .annotation(DEFAULT_REPLICASET_SCALE_DOWN_DEADLINE_ANNOTATION_KEY)
                .is_some()
        {
            return Some(format!("Rollback to '{}' within scaleDownDelay", new.name));
        }
        if !run_succeeded(w.runs.post.as_ref()) {
            return None;
        }
    }
    Some("Completed blue-green update".into())
}

/// Upstream's `calculateScaleUpPreviewCheckPoint`.
fn scale_up_preview_check_point(v: &View<'_>, w: &Writes) -> bool {
    let Some(preview) = v.bgs().preview_replica_count else {
        return false;
    };
    if v.preview_check_point() {
        return true;
    }
    if gate::completed_pre_promotion_analysis(v, w).is_err() || gate::completed_pause(v, w).is_err()
    {
        return false;
    }
    v.rs.new_rs().is_some_and(|r| r.available == preview)
}

/// What an unpromoted blue-green update waits for: the preview's pods, the pause, the
/// pre-promotion analysis, the new ReplicaSet's full size before the switch, then the
/// post-promotion analysis.
fn waiting_for(v: &View<'_>, w: &Writes, st: &RolloutStatus) -> Option<Wait> {
    if let Some(wait) = gate::inconclusive(&w.runs) {
        return Some(wait);
    }
    gate::ready_for_pause(v).err().or_else(|| {
        let new = v.rs.new_rs()?;
        let active = st.blue_green.as_ref()?.active_selector.clone();
        if active.as_deref() == Some(new.hash.as_str()) {
            return (v.bgs().post_promotion_analysis.is_some())
                .then(|| gate::post_promotion_wait(w));
        }
        if !gate::fast_tracked(v, w) {
            if let Err(wait) = gate::completed_pre_promotion_analysis(v, w) {
                return Some(wait);
            }
            if let Err(wait) = gate::completed_pause(v, w) {
                let bg = v.bgs();
                return Some(match (wait, bg.auto_promotion_seconds) {
                    // A pause added by this very plan starts now.
                    (Wait::Indefinite, Some(secs))
                        if secs > 0 && bg.auto_promotion_enabled != Some(false) =>
                    {
                        Wait::PauseUntil(pause_deadline(&v.stamp, i64::from(secs)))
                    }
                    (wait, _) => wait,
                });
            }
        }
        Some(gate::replicas_wait(v, v.replicas(), v.replicas()))
    })
}
