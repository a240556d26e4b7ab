//! What one plan decides, accumulated in one place: the writes (effects), the events, when to
//! look again, the pause bookkeeping (upstream's `pauseContext`), the Services' selectors as
//! they will be after the writes, and the AnalysisRuns that are current after this reconcile.
//!
//! The strategies read the observation from the [`View`] and append here; nothing else is
//! mutable during a plan. `status::finish` turns the accumulated state into the `Plan`.

use super::conditions::reason;
use super::replicasets::Rs;
use super::view::{CurrentRuns, View};
use super::wait::Wait;
use super::{Effect, Event, RsPatch};
use crate::api::consts::{
    DEFAULT_REPLICASET_SCALE_DOWN_DEADLINE_ANNOTATION_KEY, DESIRED_REPLICAS_ANNOTATION,
    REVISION_ANNOTATION,
};
use k8s_openapi::jiff::Timestamp;
use kube_core::ResourceExt;
use std::collections::BTreeMap;
use std::time::Duration;

/// Pause bookkeeping for one reconcile (upstream's `pauseContext`).
#[derive(Clone, Debug, Default)]
pub struct PauseCtx {
    /// Pause conditions to add (their reasons).
    pub add: Vec<&'static str>,
    /// Pause conditions to remove.
    pub remove: Vec<&'static str>,
    /// Remove every pause condition (and `controllerPause`).
    pub clear: bool,
    /// Abort, with this message.
    pub add_abort: Option<String>,
    /// Clear a recorded abort (a retry, a new update).
    pub remove_abort: bool,
}

/// One plan's decisions (see the module docs).
#[derive(Clone, Debug, Default)]
pub struct Writes {
    /// Writes to carry out, in order.
    pub effects: Vec<Effect>,
    pub events: Vec<Event>,
    /// When to look again at the latest.
    pub requeue: Option<Duration>,
    pub pause: PauseCtx,
    /// Service selectors as they will be after this plan's writes (name → hash).
    pub selectors: BTreeMap<String, String>,
    /// The AnalysisRuns current after this reconcile.
    pub runs: CurrentRuns,
    /// The Experiment of the current `experiment` step after this reconcile (upstream's
    /// `currentEx` once `reconcileExperiments` ran).
    pub experiment: Option<crate::api::Experiment>,
    /// The first gate that held the Rollout in this reconcile.
    pub wait: Option<Wait>,
    /// The traffic weights this plan sets on the routers (traffic is reconciled before the
    /// ReplicaSets are scaled), when it sets them.
    pub weights: Option<super::replicas::TrafficWeights>,
    /// The canary's status was reset for a changed pod template or steps (upstream's
    /// `resetRolloutStatus`); the rest of the update is left to the next plan (which
    /// `plan::entry` makes at once when the reset wrote nothing else).
    pub reset: bool,
}

impl Writes {
    /// Nothing decided yet; selectors and runs as observed.
    pub fn new(v: &View<'_>) -> Writes {
        Writes {
            selectors: v.selectors.clone(),
            runs: v.runs.clone(),
            experiment: v.experiment.cloned(),
            ..Writes::default()
        }
    }

    /// Aborted: as observed, or by this plan (and not retried by it).
    pub fn aborted(&self, v: &View<'_>) -> bool {
        if self.pause.remove_abort {
            return false;
        }
        self.pause.add_abort.is_some() || v.old.abort == Some(true)
    }

    /// Look again in `d` at the latest.
    pub fn requeue_in(&mut self, d: Duration) {
        self.requeue = Some(self.requeue.map_or(d, |r| r.min(d)));
    }

    /// Look again at `at` (at once if it has passed).
    pub fn requeue_at(&mut self, now: Timestamp, at: Timestamp) {
        let d = now.duration_until(at);
        if d.is_positive() {
            self.requeue_in(Duration::try_from(d).unwrap_or(Duration::ZERO));
        } else {
            self.requeue_in(Duration::ZERO);
        }
    }

    pub fn push_patch(&mut self, name: &str, patch: RsPatch) {
        self.effects.push(Effect::PatchReplicaSet {
            name: name.to_string(),
            patch,
        });
    }

    /// The revision this plan sets on the Rollout, if it changes it.
    pub fn planned_revision(&self) -> Option<i64> {
        self.effects.iter().rev().find_map(|e| match e {
            Effect::SetRolloutRevision { revision } => revision.parse().ok(),
            _ => None,
        })
    }

    /// The Rollout's revision after this plan.
    pub fn revision(&self, v: &View<'_>) -> i64 {
        self.planned_revision()
            .unwrap_or_else(|| super::replicasets::revision_of(v.ro.annotations()))
    }

    /// The selector a Service will have after this plan.
    pub fn selector(&self, svc: Option<&str>) -> Option<String> {
        self.selectors.get(svc?).cloned()
    }

    /// Points a Service at a hash (upstream's `switchServiceSelector`).
    pub fn switch_service(&mut self, svc: &str, hash: &str) {
        let current = self.selectors.get(svc).cloned().unwrap_or_default();
        if current == hash {
            return;
        }
        self.set_selector(svc, &current, hash);
        self.selectors.insert(svc.to_string(), hash.to_string());
    }

    /// The write and event of a selector change.
    pub fn set_selector(&mut self, svc: &str, from: &str, to: &str) {
        self.events.push(Event::normal(
            "SwitchService",
            format!("Switched selector for service '{svc}' from '{from}' to '{to}'"),
        ));
        self.effects.push(Effect::SetServiceSelector {
            service: svc.to_string(),
            hash: to.to_string(),
        });
    }

    /// Sets the Rollout's revision annotation, if it changes.
    pub fn set_rollout_revision(&mut self, v: &View<'_>, revision: i64) {
        let current = v.ro.annotations().get(REVISION_ANNOTATION);
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

    /// Upstream's `shouldDelayScaleDownOnAbort`: after an abort, the new ReplicaSet stays up
    /// for `abortScaleDownDelaySeconds` (blue-green, and a traffic-routed canary; with
    /// dynamic stable scaling only when the delay is set explicitly; never when it is 0).
    pub fn delay_scale_down_on_abort(&self, v: &View<'_>) -> bool {
        if !self.aborted(v) || v.rs.stable_rs().is_none() {
            return false;
        }
        // An abort of a fully promoted Rollout: the new ReplicaSet is the stable one, there is
        // no canary or preview to keep up for a while (upstream annotates it, then its
        // `removeScaleDownDeadlines` removes the annotation from the stable, every reconcile).
        if v.new_idx().is_some() && v.new_idx() == v.stable_idx() {
            return false;
        }
        match v.bg {
            Some(bg) => bg.abort_scale_down_delay_seconds != Some(0),
            None => {
                let explicit = v.canary.abort_scale_down_delay_seconds;
                v.traffic_routed()
                    && explicit != Some(0)
                    && !(v.canary.dynamic_stable_scale == Some(true) && explicit.is_none())
            }
        }
    }

    /// Removes the scale-down deadline annotation from an existing ReplicaSet that has one.
    pub fn drop_scale_down_deadline(&mut self, rs: &Rs<'_>) {
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
        self.push_patch(&rs.name, patch);
    }

    /// Upstream's `scaleReplicaSetAndRecordEvent`: scales the ReplicaSet `idx` of the view
    /// (recording the Rollout's size on it); returns whether the size changed.
    pub fn scale(&mut self, v: &View<'_>, idx: usize, new_scale: i32) -> bool {
        let ro_replicas = v.replicas();
        let rs = &v.rs.all[idx];
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
            && !self.delay_scale_down_on_abort(v)
            && rs
                .annotation(DEFAULT_REPLICASET_SCALE_DOWN_DEADLINE_ANNOTATION_KEY)
                .is_some()
        {
            patch.annotations.insert(
                DEFAULT_REPLICASET_SCALE_DOWN_DEADLINE_ANNOTATION_KEY.into(),
                None,
            );
        }
        self.push_patch(&rs.name, patch);
        if size_change {
            let (old, revision) = (rs.spec_replicas, rs.revision);
            let dir = if old < new_scale { "up" } else { "down" };
            self.events.push(Event::normal(
                reason::SCALING_REPLICA_SET,
                format!(
                    "Scaled {dir} ReplicaSet {} (revision {revision}) from {old} to {new_scale}",
                    rs.name
                ),
            ));
        }
        size_change
    }
}
