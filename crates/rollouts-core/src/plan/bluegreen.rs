//! The blue-green strategy, after upstream's `rollout/bluegreen.go`, `service.go` and
//! `pause.go`: the new ReplicaSet comes up behind the preview Service while the active
//! Service keeps pointing at the stable one; the switch happens once the new ReplicaSet is
//! fully available and the pause (manual or `autoPromotionSeconds`) is over; the previous
//! ReplicaSet stays up for `scaleDownDelaySeconds`.
//!
//! Safety invariant (beyond upstream, which does not check it on abort): the active Service is
//! only ever pointed at a ReplicaSet whose pods are all available.

use super::canary::{Ctx, pause_deadline};
use super::conditions::reason;
use super::replicasets::{self as rsets, Rs};
use super::{Effect, Event, Observed, RsPatch};
use crate::api::consts::DEFAULT_REPLICASET_SCALE_DOWN_DEADLINE_ANNOTATION_KEY;
use crate::api::{BlueGreenStrategy, RolloutStatus, pause_reason};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use std::time::Duration;

static NO_BLUE_GREEN: std::sync::LazyLock<BlueGreenStrategy> =
    std::sync::LazyLock::new(BlueGreenStrategy::default);

impl<'a> Ctx<'a> {
    /// The blue-green strategy (only called on blue-green Rollouts).
    fn bgs(&self) -> &'a BlueGreenStrategy {
        self.bg.unwrap_or(&NO_BLUE_GREEN)
    }

    /// Upstream's `IsSaturated`: all replicas asked for, recorded, and available.
    pub(super) fn saturated(&self, rs: &Rs<'_>) -> bool {
        let replicas = self.replicas();
        rs.spec_replicas == replicas
            && rs.desired_replicas_annotation() == Some(replicas)
            && rs.available == replicas
    }

    /// Upstream's `shouldDelayScaleDownOnAbort`.
    pub(super) fn delay_scale_down_on_abort(&self) -> bool {
        if !self.aborted() || self.rs.stable_rs().is_none() {
            return false;
        }
        match self.bg {
            Some(bg) => bg.abort_scale_down_delay_seconds != Some(0),
            None => {
                // Without traffic routing a canary scales down on abort at once; with dynamic
                // stable scaling only when the user set a delay explicitly.
                let explicit = self.canary.abort_scale_down_delay_seconds;
                self.traffic_routed()
                    && explicit != Some(0)
                    && !(self.canary.dynamic_stable_scale == Some(true) && explicit.is_none())
            }
        }
    }

    fn abort_scale_down_delay(&self) -> i64 {
        let v = match self.bg {
            Some(bg) => bg.abort_scale_down_delay_seconds,
            None => self.canary.abort_scale_down_delay_seconds,
        };
        i64::from(v.unwrap_or(crate::api::defaults::ABORT_SCALE_DOWN_DELAY_SECONDS))
    }

    fn scale_down_delay(&self) -> i64 {
        let v = match self.bg {
            Some(bg) => bg.scale_down_delay_seconds,
            None => self.canary.scale_down_delay_seconds,
        };
        i64::from(v.unwrap_or(crate::api::defaults::SCALE_DOWN_DELAY_SECONDS))
    }

    fn scale_down_revision_limit(&self) -> i32 {
        match self.bg {
            Some(bg) => bg.scale_down_delay_revision_limit,
            None => self.canary.scale_down_delay_revision_limit,
        }
        .unwrap_or(i32::MAX)
    }

    /// Scales the new ReplicaSet to `want`, except after an abort with a scale-down delay: then
    /// it stays up until its `scale-down-deadline` (annotated once the stable is back at full
    /// size), then goes to 0 (upstream's `reconcileNewReplicaSet`). Returns whether it scaled.
    pub(super) fn scale_new_rs(&mut self, n: usize, mut want: i32) -> bool {
        let replicas = self.replicas();
        if self.delay_scale_down_on_abort() {
            match self.rs.all[n].scale_down_deadline() {
                Some(Ok(deadline)) if deadline > self.now => {
                    self.requeue_at(deadline);
                    return false;
                }
                Some(Ok(_)) => want = 0,
                Some(Err(_)) => return false,
                None => {
                    let stable_full = self.rs.stable_rs().is_some_and(|s| s.available == replicas);
                    if stable_full {
                        let delay = self.abort_scale_down_delay();
                        let deadline = self.stamp.0 + SignedDuration::from_secs(delay);
                        let mut patch = RsPatch::default();
                        patch.annotations.insert(
                            DEFAULT_REPLICASET_SCALE_DOWN_DEADLINE_ANNOTATION_KEY.into(),
                            Some(deadline.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()),
                        );
                        let name = self.rs.all[n].name.clone();
                        self.push_patch(&name, patch);
                        self.requeue_in(Duration::from_secs(delay.max(0) as u64));
                    }
                    // Leave it up until annotated.
                    return false;
                }
            }
        }
        self.scale(n, want)
    }

    fn selector(&self, svc: Option<&str>) -> Option<String> {
        self.selectors.get(svc?).cloned()
    }

    fn active_service(&self) -> Option<&'a str> {
        self.bgs()
            .active_service
            .as_deref()
            .filter(|s| !s.is_empty())
    }

    fn preview_service(&self) -> Option<&'a str> {
        self.bgs()
            .preview_service
            .as_deref()
            .filter(|s| !s.is_empty())
    }

    fn rs_by_hash(&self, hash: Option<&str>) -> Option<usize> {
        let h = hash?;
        self.rs.all.iter().position(|r| r.hash == h)
    }

    /// Points a Service at a hash (upstream's `switchServiceSelector`).
    fn switch_service(&mut self, svc: &str, hash: &str) {
        let current = self.selectors.get(svc).cloned().unwrap_or_default();
        if current == hash {
            return;
        }
        self.events.push(Event::normal(
            "SwitchService",
            format!("Switched selector for service '{svc}' from '{current}' to '{hash}'"),
        ));
        self.effects.push(Effect::SetServiceSelector {
            service: svc.to_string(),
            hash: hash.to_string(),
        });
        self.selectors.insert(svc.to_string(), hash.to_string());
    }

    /// `spec.paused` or an inconclusive analysis halts progress (upstream's `haltProgress`).
    fn halted(&self) -> bool {
        self.ro.spec.paused == Some(true)
            || self
                .old_pause_condition(pause_reason::INCONCLUSIVE_ANALYSIS)
                .is_some()
    }

    /// Upstream's `NewRSNewReplicas` for blue-green (`previewReplicaCount`).
    fn new_rs_replicas(&self) -> i32 {
        let replicas = self.replicas();
        let Some(preview) = self.bgs().preview_replica_count else {
            return replicas;
        };
        let active = self.rs_by_hash(
            self.old
                .blue_green
                .as_ref()
                .and_then(|b| b.active_selector.as_deref()),
        );
        if active.is_none() || active == self.new_idx() {
            return replicas;
        }
        if self.old.promote_full == Some(true) {
            return replicas;
        }
        let new_hash = self.rs.new_rs().map(|r| r.hash.as_str());
        if new_hash != self.old.current_pod_hash.as_deref() {
            return preview;
        }
        let not_paused = self.ro.spec.paused != Some(true)
            && self
                .old
                .pause_conditions
                .as_ref()
                .is_none_or(|p| p.is_empty());
        let checkpoint = self
            .old
            .blue_green
            .as_ref()
            .and_then(|b| b.scale_up_preview_check_point)
            == Some(true);
        if not_paused && checkpoint {
            replicas
        } else {
            preview
        }
    }

    /// Upstream's `ReadyForPause`: the new ReplicaSet is at its size and all available.
    fn ready_for_pause(&self) -> bool {
        let want = self.new_rs_replicas();
        self.rs
            .new_rs()
            .is_some_and(|r| r.spec_replicas == want && r.available == want)
    }

    fn needs_controller_pause(&self) -> bool {
        let bg = self.bgs();
        bg.auto_promotion_enabled == Some(false) || bg.auto_promotion_seconds.unwrap_or(0) > 0
    }

    /// Going back to a ReplicaSet still up within its scale-down delay (a fast rollback).
    /// Unlike upstream, a preview ReplicaSet that carries a deadline because its update was
    /// aborted does not count: retrying it must not skip the pause and the analysis.
    pub(super) fn rollback_in_scale_down_delay(&self) -> bool {
        let Some(new) = self.rs.new_rs() else {
            return false;
        };
        let has_deadline = new
            .annotation(DEFAULT_REPLICASET_SCALE_DOWN_DEADLINE_ANNOTATION_KEY)
            .is_some();
        let b = self.old.blue_green.clone().unwrap_or_default();
        let was_preview = self.bg.is_some()
            && b.preview_selector.as_deref() == Some(new.hash.as_str())
            && b.active_selector.as_deref() != Some(new.hash.as_str());
        has_deadline && !was_preview
    }

    /// Upstream's `isBlueGreenFastTracked`.
    fn fast_tracked(&self) -> bool {
        let Some(new) = self.rs.new_rs() else {
            return false;
        };
        if self.rollback_in_scale_down_delay() {
            return true;
        }
        if self.old.promote_full == Some(true) {
            return true;
        }
        match self.selector(self.active_service()) {
            None => true,
            Some(h) => h == new.hash,
        }
    }

    /// Upstream's `completedPrePromotionAnalysis`.
    fn completed_pre_promotion_analysis(&self) -> bool {
        if self.bgs().pre_promotion_analysis.is_none() {
            return true;
        }
        self.current
            .pre
            .as_ref()
            .is_some_and(|r| super::analysis::phase(r) == crate::api::analysis_phase::SUCCESSFUL)
    }

    /// Upstream's `CompletedBlueGreenPause`.
    fn completed_pause(&self) -> bool {
        if !self.pause.add.is_empty() {
            return false;
        }
        if self
            .old
            .blue_green
            .as_ref()
            .and_then(|b| b.scale_up_preview_check_point)
            == Some(true)
        {
            return true;
        }
        if !self.needs_controller_pause() {
            return true;
        }
        let bg = self.bgs();
        let cond = self.old_pause_condition(pause_reason::BLUE_GREEN_PAUSE);
        if bg.auto_promotion_enabled != Some(false) {
            let secs = i64::from(bg.auto_promotion_seconds.unwrap_or(0));
            if secs == 0 {
                return true;
            }
            return match cond.and_then(|c| c.start_time.clone()) {
                Some(start) => self.now >= pause_deadline(&start, secs),
                None => false,
            };
        }
        self.old.controller_pause == Some(true) && cond.is_none()
    }

    /// Upstream's `reconcileBlueGreenPause`.
    fn reconcile_bg_pause(&mut self) {
        if self.old.abort == Some(true) || !self.ready_for_pause() || self.halted() {
            return;
        }
        let new_hash = self.rs.new_rs().map(|r| r.hash.clone());
        let active = self.selector(self.active_service());
        let checkpoint = self
            .old
            .blue_green
            .as_ref()
            .and_then(|b| b.scale_up_preview_check_point)
            == Some(true);
        if self.fast_tracked() || active == new_hash || checkpoint || !self.needs_controller_pause()
        {
            self.pause.remove.push(pause_reason::BLUE_GREEN_PAUSE);
            return;
        }
        if !self.completed_pre_promotion_analysis() {
            return;
        }
        match self
            .old_pause_condition(pause_reason::BLUE_GREEN_PAUSE)
            .cloned()
        {
            Some(cond) => {
                if self.completed_pause() {
                    self.pause.remove.push(pause_reason::BLUE_GREEN_PAUSE);
                } else if let (Some(start), Some(secs)) =
                    (cond.start_time, self.bgs().auto_promotion_seconds)
                    && secs > 0
                    && self.bgs().auto_promotion_enabled != Some(false)
                {
                    self.requeue_at(pause_deadline(&start, i64::from(secs)));
                }
            }
            None => {
                if self.old.controller_pause != Some(true) {
                    self.pause.add.push(pause_reason::BLUE_GREEN_PAUSE);
                    let secs = self.bgs().auto_promotion_seconds.unwrap_or(0);
                    if secs > 0 && self.bgs().auto_promotion_enabled != Some(false) {
                        self.requeue_in(Duration::from_secs(secs as u64));
                    }
                }
            }
        }
    }

    /// Upstream's `reconcileActiveService`, never switching to a ReplicaSet that is not fully
    /// available.
    fn reconcile_active_service(&mut self) {
        let Some(active_svc) = self.active_service() else {
            return;
        };
        if self.halted() {
            return;
        }
        let Some(new_idx) = self.new_idx() else {
            return;
        };
        if !self.ready_for_pause() || !self.saturated(&self.rs.all[new_idx]) {
            return;
        }
        let new_hash = self.rs.all[new_idx].hash.clone();
        let mut target = self.selector(Some(active_svc));
        if self.fast_tracked()
            || (self.completed_pause() && self.completed_pre_promotion_analysis())
        {
            target = Some(new_hash);
        }
        if self.old.abort == Some(true) {
            target = self.old.stable_rs.clone().filter(|s| !s.is_empty());
        }
        let Some(target) = target else { return };
        let Some(idx) = self.rs_by_hash(Some(&target)) else {
            return;
        };
        if !self.saturated(&self.rs.all[idx]) {
            // The safety invariant: wait until the target is fully available.
            return;
        }
        self.switch_service(active_svc, &target);
    }

    /// Upstream's `scaleDownDelayHelper` for one old ReplicaSet: keep it (at full size) until
    /// its `scale-down-deadline`, annotating one when missing; then 0.
    pub(super) fn scale_down_delay_helper(&mut self, idx: usize, annotated: &mut i32) -> i32 {
        let replicas = self.replicas();
        let limit = self.scale_down_revision_limit();
        let rs = &self.rs.all[idx];
        let (name, spec) = (rs.name.clone(), rs.spec_replicas);
        match rs.scale_down_deadline() {
            None if spec > 0 && *annotated < limit => {
                *annotated += 1;
                let delay = self.scale_down_delay();
                if delay <= 0 {
                    return 0;
                }
                let deadline =
                    Timestamp::from_second(self.stamp.0.as_second() + delay).unwrap_or(self.now);
                let mut patch = RsPatch::default();
                patch.annotations.insert(
                    DEFAULT_REPLICASET_SCALE_DOWN_DEADLINE_ANNOTATION_KEY.into(),
                    Some(deadline.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()),
                );
                self.push_patch(&name, patch);
                self.requeue_in(Duration::from_secs(delay as u64));
                spec
            }
            None => 0,
            Some(Err(_)) => 0,
            Some(Ok(deadline)) => {
                *annotated += 1;
                if *annotated > limit {
                    return 0;
                }
                if deadline > self.now {
                    self.requeue_at(deadline);
                    replicas
                } else {
                    0
                }
            }
        }
    }

    /// Upstream's `isReplicaSetReferenced`.
    pub(super) fn referenced(&self, rs: &Rs<'_>) -> bool {
        let st = &self.old;
        let bgst = st.blue_green.clone().unwrap_or_default();
        !rs.hash.is_empty()
            && [
                st.stable_rs.as_deref(),
                st.current_pod_hash.as_deref(),
                bgst.active_selector.as_deref(),
                bgst.preview_selector.as_deref(),
            ]
            .contains(&Some(rs.hash.as_str()))
    }

    /// Upstream's `reconcileBlueGreenReplicaSets`.
    fn reconcile_bg_replica_sets(&mut self) {
        // Drop stale scale-down deadlines from the new and stable ReplicaSets (we moved back).
        let mut drop_deadline = Vec::new();
        if let Some(n) = self.new_idx().filter(|_| !self.delay_scale_down_on_abort()) {
            drop_deadline.push(n);
        }
        if let Some(s) = self.stable_idx().filter(|s| Some(*s) != self.new_idx()) {
            drop_deadline.push(s);
        }
        for idx in drop_deadline {
            self.drop_scale_down_deadline(idx);
        }
        // The active ReplicaSet runs at full size.
        let replicas = self.replicas();
        if let Some(active) = self.rs_by_hash(self.selector(self.active_service()).as_deref()) {
            self.scale(active, replicas);
        }
        // The new ReplicaSet: full, previewReplicaCount, or down after an abort's delay (which
        // does not apply once it is the active one).
        if let Some(n) = self.new_idx() {
            let want = self.new_rs_replicas();
            let active = self.selector(self.active_service());
            if active.as_deref() == Some(self.rs.all[n].hash.as_str()) {
                self.scale(n, want);
            } else {
                self.scale_new_rs(n, want);
            }
        }
        // Older ReplicaSets: scale down after their delay, unless still referenced.
        let inconclusive = self
            .old_pause_condition(pause_reason::INCONCLUSIVE_ANALYSIS)
            .is_some();
        // Without a scale-down delay, the previous version stays up until post-promotion
        // analysis succeeds (it is the rollback target).
        let waiting_post = self.bgs().post_promotion_analysis.is_some()
            && self.bgs().scale_down_delay_seconds.is_none()
            && !self.skip_post_promotion()
            && self.current.post.as_ref().is_none_or(|r| {
                super::analysis::phase(r) != crate::api::analysis_phase::SUCCESSFUL
            });
        if !inconclusive && !waiting_post {
            let mut others: Vec<usize> = (0..self.rs.all.len())
                .filter(|i| Some(*i) != self.new_idx() && Some(*i) != self.stable_idx())
                .collect();
            others.sort_by(|a, b| self.rs.all[*b].revision.cmp(&self.rs.all[*a].revision));
            let mut annotated = 0;
            for i in others {
                if self.referenced(&self.rs.all[i]) || self.rs.all[i].spec_replicas == 0 {
                    continue;
                }
                let want = self.scale_down_delay_helper(i, &mut annotated);
                if self.rs.all[i].spec_replicas != want {
                    self.scale(i, want);
                }
            }
        }
        let others: Vec<&Rs> = self.rs.others().collect();
        for (name, uid) in rsets::history_cleanup(&others, self.ro.spec.revision_history_limit) {
            self.effects.push(Effect::DeleteReplicaSet { name, uid });
        }
    }

    /// Upstream's `shouldFullPromote` for blue-green.
    fn bg_should_full_promote(&self, st: &RolloutStatus) -> Option<String> {
        if self.rs.stable_rs().is_none() {
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
        if self.old.promote_full == Some(true) {
            return Some("Full promotion requested".into());
        }
        if self.rollback_within_window() {
            return Some("Rollback within window".into());
        }
        if self.aborted() {
            return None;
        }
        if self.bgs().post_promotion_analysis.is_some() {
            if let Some(new) = self.rs.new_rs()
                && new
                    .annotation(DEFAULT_REPLICASET_SCALE_DOWN_DEADLINE_ANNOTATION_KEY)
                    .is_some()
            {
                return Some(format!("Rollback to '{}' within scaleDownDelay", new.name));
            }
            let ok = self.current.post.as_ref().is_some_and(|r| {
                super::analysis::phase(r) == crate::api::analysis_phase::SUCCESSFUL
            });
            if !ok {
                return None;
            }
        }
        Some("Completed blue-green update".into())
    }

    /// Upstream's `calculateScaleUpPreviewCheckPoint`.
    fn scale_up_preview_check_point(&self) -> bool {
        let Some(preview) = self.bgs().preview_replica_count else {
            return false;
        };
        if self
            .old
            .blue_green
            .as_ref()
            .and_then(|b| b.scale_up_preview_check_point)
            == Some(true)
        {
            return true;
        }
        if !self.completed_pre_promotion_analysis() || !self.completed_pause() {
            return false;
        }
        self.rs.new_rs().is_some_and(|r| r.available == preview)
    }

    /// Upstream's `rolloutBlueGreen` + `syncRolloutStatusBlueGreen`.
    pub(super) fn reconcile_blue_green(&mut self, obs: &Observed<'_>) -> RolloutStatus {
        let mut start = self.old.clone();
        if super::conditions::check_paused(&self.ro.spec, &self.old, &mut start, &self.stamp) {
            self.events.push(Event::normal(
                reason::ROLLOUT_RETRY,
                reason::ROLLOUT_RETRY_MESSAGE,
            ));
        }
        self.old.conditions = start.conditions.clone();
        self.current = self.current_runs(obs);
        let mut st = self.base_status();
        if self.new_idx().is_some() {
            self.sync_revision(&mut st);
        } else {
            self.create_new_rs(&mut st);
        }
        // The preview Service follows the new ReplicaSet at once.
        if let (Some(preview), false) = (self.preview_service(), self.halted())
            && let Some(hash) = self.rs.new_rs().map(|r| r.hash.clone())
        {
            self.switch_service(preview, &hash);
        }
        let changed = {
            let old_pod = self.old.current_pod_hash.as_deref().unwrap_or_default();
            let hash = self
                .rs
                .new_rs()
                .map(|r| r.hash.as_str())
                .unwrap_or(self.desired_hash.as_str());
            !old_pod.is_empty() && old_pod != hash
        };
        if !changed {
            self.restart_pods(obs, &mut st);
            self.sync_ephemeral_metadata(obs);
            self.reconcile_bg_replica_sets();
            self.reconcile_bg_pause();
            self.reconcile_active_service();
            if let Err(problem) = self.reconcile_analysis(obs, &mut st) {
                return self.blocked(problem, "AnalysisRunError");
            }
        }
        // syncRolloutStatusBlueGreen
        st.stable_rs = self.old.stable_rs.clone();
        if changed {
            self.pause.clear = true;
            self.pause.remove_abort = true;
            st.restarted_at = self.ro.spec.restart_at.clone();
            st.promote_full = None;
        }
        if self.old.promote_full == Some(true) || self.rollback_within_window() {
            self.pause.clear = true;
            self.pause.remove_abort = true;
        }
        let prev = st.blue_green.clone().unwrap_or_default();
        let bgst = crate::api::BlueGreenStatus {
            preview_selector: self.selector(self.preview_service()),
            active_selector: self.selector(self.active_service()),
            pre_promotion_analysis_run_status: prev.pre_promotion_analysis_run_status,
            post_promotion_analysis_run_status: prev.post_promotion_analysis_run_status,
            ..Default::default()
        };
        st.blue_green = Some(bgst);
        if let Some(why) = self.bg_should_full_promote(&st) {
            self.pause.clear = true;
            self.pause.remove_abort = true;
            st.promote_full = None;
            let current = st.current_pod_hash.clone().unwrap_or_default();
            if st.stable_rs.as_deref() != Some(current.as_str()) {
                st.stable_rs = Some(current.clone());
                let revision = rsets::revision_of(kube_core::ResourceExt::annotations(self.ro));
                let revision = self.planned_revision().unwrap_or(revision);
                self.events.push(Event::normal(
                    reason::ROLLOUT_COMPLETED,
                    format!("Rollout completed update to revision {revision} ({current}): {why}"),
                ));
            }
        } else if !changed {
            let cp = self.scale_up_preview_check_point();
            if let Some(b) = st.blue_green.as_mut() {
                b.scale_up_preview_check_point = cp.then_some(true);
            }
        }
        let active_hash = st
            .blue_green
            .as_ref()
            .and_then(|b| b.active_selector.clone());
        if let Some(active) = self
            .rs_by_hash(active_hash.as_deref())
            .map(|i| &self.rs.all[i])
        {
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
        self.calculate_conditions(&mut st);
        st
    }
}
