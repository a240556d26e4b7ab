//! The second layer of a plan: the gates that hold a Rollout, and [`Wait`], the typed answer to
//! "why is my rollout waiting?".
//!
//! A canary step completes when its gate opens ([`canary_step`]): a `setWeight` step when the
//! ReplicaSets are at its counts, a timed pause at its deadline, an indefinite pause on a
//! promotion, an analysis step when its run succeeds, an experiment step when its Experiment
//! succeeds. Blue-green's gates are the preview's size
//! ([`ready_for_pause`]), the pause ([`completed_pause`]) and the pre-promotion analysis
//! ([`completed_pre_promotion_analysis`]). Every gate that holds the Rollout says why with a
//! [`Wait`], which the plan returns ([`super::Plan::wait`]) for the CLI, the logs and a metric.

use super::targets;
use super::view::{CurrentRuns, View, experiment_phase, pause_deadline, run_phase, run_succeeded};
pub use super::wait::Wait;
use super::writes::Writes;
use crate::api::{analysis_phase, pause_reason};

/// The canary and stable ReplicaSets' `(available, wanted)` pods for the counts wanted now.
pub fn replicas_wait(v: &View<'_>, canary_want: i32, stable_want: i32) -> Wait {
    Wait::Replicas {
        canary: (v.rs.new_rs().map_or(0, |r| r.available), canary_want),
        stable: (v.rs.stable_rs().map_or(0, |r| r.available), stable_want),
    }
}

/// The canary's `(available, want)` pods, the stable as it is.
pub fn canary_replicas_wait(v: &View<'_>, want: i32) -> Wait {
    let stable = v.rs.stable_rs().map_or(0, |r| r.available);
    Wait::Replicas {
        canary: (v.rs.new_rs().map_or(0, |r| r.available), want),
        stable: (stable, stable),
    }
}

/// An analysis gate on `run` (`None`: not created yet).
fn analysis_wait(run: Option<&crate::api::AnalysisRun>) -> Wait {
    Wait::Analysis {
        run: run
            .and_then(|r| r.metadata.name.clone())
            .unwrap_or_default(),
        phase: run.map(run_phase).unwrap_or_default().to_string(),
    }
}

/// Upstream's `completedCurrentCanaryStep`: `None` without a current step (all done, or none),
/// `Some(Ok(()))` when it is complete, or what it waits for. `runs` are the AnalysisRuns
/// current after this reconcile's analysis, `experiment` the Experiment of the current step
/// after this reconcile's experiments.
pub fn canary_step(
    v: &View<'_>,
    runs: &CurrentRuns,
    experiment: Option<&crate::api::Experiment>,
) -> Option<Result<(), Wait>> {
    if v.ro.spec.paused == Some(true) {
        return Some(Err(Wait::UserPaused));
    }
    let (Some(step), _) = v.current_step() else {
        return None;
    };
    if let Some(pause) = &step.pause {
        let pc = v.old_pause_condition(pause_reason::CANARY_PAUSE_STEP);
        if v.old.controller_pause == Some(true) && pc.is_none() {
            return Some(Ok(()));
        }
        return Some(match pause.duration_seconds() {
            Some(Ok(secs)) => {
                let start = pc.and_then(|p| p.start_time.clone());
                let deadline = pause_deadline(start.as_ref().unwrap_or(&v.stamp), secs);
                if start.is_some() && v.now >= deadline {
                    Ok(())
                } else {
                    Err(Wait::PauseUntil(deadline))
                }
            }
            _ => Err(Wait::Indefinite),
        });
    }
    if step.set_weight.is_some() || step.set_canary_scale.is_some() {
        let (done, counts) = targets::at_desired_counts(v);
        return Some(if done {
            Ok(())
        } else {
            Err(replicas_wait(v, counts.canary, counts.stable))
        });
    }
    if step.analysis.is_some() {
        return Some(if run_succeeded(runs.step.as_ref()) {
            Ok(())
        } else {
            Err(analysis_wait(runs.step.as_ref()))
        });
    }
    if step.set_header_route.is_some() || step.set_mirror_route.is_some() {
        return Some(Ok(()));
    }
    if step.experiment.is_some() {
        return Some(match experiment {
            Some(ex) if experiment_phase(ex) == analysis_phase::SUCCESSFUL => Ok(()),
            _ => Err(experiment_wait(experiment)),
        });
    }
    // Plugin steps are refused before planning (InvalidSpec).
    Some(Err(Wait::Indefinite))
}

/// An `experiment` step's gate on `ex` (`None`: not created yet).
fn experiment_wait(ex: Option<&crate::api::Experiment>) -> Wait {
    Wait::Experiment {
        name: ex.and_then(|e| e.metadata.name.clone()).unwrap_or_default(),
        phase: ex.map(experiment_phase).unwrap_or_default().to_string(),
    }
}

/// An inconclusive Experiment holds the Rollout until promoted.
pub fn inconclusive_experiment(ex: Option<&crate::api::Experiment>) -> Option<Wait> {
    ex.filter(|e| experiment_phase(e) == analysis_phase::INCONCLUSIVE)
        .map(|e| experiment_wait(Some(e)))
}

/// Upstream's `NewRSNewReplicas` for blue-green: the new ReplicaSet's size (all replicas, or
/// `previewReplicaCount` until the promotion).
pub fn bg_new_rs_replicas(v: &View<'_>) -> i32 {
    let replicas = v.replicas();
    let Some(preview) = v.bgs().preview_replica_count else {
        return replicas;
    };
    let active = v.rs_by_hash(
        v.old
            .blue_green
            .as_ref()
            .and_then(|b| b.active_selector.as_deref()),
    );
    if active.is_none() || active == v.new_idx() {
        return replicas;
    }
    if v.old.promote_full == Some(true) {
        return replicas;
    }
    let new_hash = v.rs.new_rs().map(|r| r.hash.as_str());
    if new_hash != v.old.current_pod_hash.as_deref() {
        return preview;
    }
    let not_paused = v.ro.spec.paused != Some(true)
        && v.old.pause_conditions.as_ref().is_none_or(|p| p.is_empty());
    if not_paused && v.preview_check_point() {
        replicas
    } else {
        preview
    }
}

/// Upstream's `ReadyForPause`: the new ReplicaSet is at its size and all available; otherwise
/// what it waits for.
pub fn ready_for_pause(v: &View<'_>) -> Result<(), Wait> {
    let want = bg_new_rs_replicas(v);
    match v.rs.new_rs() {
        Some(r) if r.spec_replicas == want && r.available == want => Ok(()),
        _ => Err(replicas_wait(v, want, v.replicas())),
    }
}

/// Blue-green pauses before the promotion (manual promotion or `autoPromotionSeconds`).
pub fn needs_controller_pause(v: &View<'_>) -> bool {
    let bg = v.bgs();
    bg.auto_promotion_enabled == Some(false) || bg.auto_promotion_seconds.unwrap_or(0) > 0
}

/// Upstream's `CompletedBlueGreenPause`, or what the pause waits for.
pub fn completed_pause(v: &View<'_>, w: &Writes) -> Result<(), Wait> {
    if !w.pause.add.is_empty() {
        return Err(Wait::Indefinite);
    }
    if v.preview_check_point() || !needs_controller_pause(v) {
        return Ok(());
    }
    let bg = v.bgs();
    let cond = v.old_pause_condition(pause_reason::BLUE_GREEN_PAUSE);
    if bg.auto_promotion_enabled != Some(false) {
        let secs = i64::from(bg.auto_promotion_seconds.unwrap_or(0));
        if secs == 0 {
            return Ok(());
        }
        return match cond.and_then(|c| c.start_time.clone()) {
            Some(start) if v.now >= pause_deadline(&start, secs) => Ok(()),
            Some(start) => Err(Wait::PauseUntil(pause_deadline(&start, secs))),
            None => Err(Wait::PauseUntil(pause_deadline(&v.stamp, secs))),
        };
    }
    if v.old.controller_pause == Some(true) && cond.is_none() {
        Ok(())
    } else {
        Err(Wait::Indefinite)
    }
}

/// Upstream's `completedPrePromotionAnalysis`, or the run it waits for.
pub fn completed_pre_promotion_analysis(v: &View<'_>, w: &Writes) -> Result<(), Wait> {
    if v.bgs().pre_promotion_analysis.is_none() || run_succeeded(w.runs.pre.as_ref()) {
        return Ok(());
    }
    Err(analysis_wait(w.runs.pre.as_ref()))
}

/// Upstream's `isBlueGreenFastTracked`: the new ReplicaSet goes active without a pause (a
/// rollback within the scale-down delay, a full promotion, no active Service selector yet, or
/// already active).
pub fn fast_tracked(v: &View<'_>, w: &Writes) -> bool {
    let Some(new) = v.rs.new_rs() else {
        return false;
    };
    if v.rollback_in_scale_down_delay() || v.old.promote_full == Some(true) {
        return true;
    }
    match w.selector(v.active_service()) {
        None => true,
        Some(h) => h == new.hash,
    }
}

/// A blue-green post-promotion analysis still to succeed, as a wait.
pub fn post_promotion_wait(w: &Writes) -> Wait {
    analysis_wait(w.runs.post.as_ref())
}

/// An inconclusive run holds the Rollout until promoted.
pub fn inconclusive(runs: &CurrentRuns) -> Option<Wait> {
    [&runs.step, &runs.background, &runs.pre, &runs.post]
        .into_iter()
        .flatten()
        .find(|r| run_phase(r) == analysis_phase::INCONCLUSIVE)
        .map(|r| analysis_wait(Some(r)))
}
