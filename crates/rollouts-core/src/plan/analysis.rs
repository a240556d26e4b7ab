//! AnalysisRuns of a Rollout, after upstream's `rollout/analysis.go`: step runs, the
//! background run, blue-green pre- and post-promotion runs; their phases pause (Inconclusive)
//! or abort (Failed, Error) the Rollout; runs of earlier updates are terminated and cleaned up
//! beyond the history limits. The runs themselves are measured by the AnalysisRun controller.
//!
//! A new run is written ahead: one plan records its name in the status (phase Pending), and
//! only a later plan, which sees that name in the status but no such run, creates it. A
//! controller that dies between the two leaves a name the next one creates, never a run the
//! status does not name: a completed run the status does not name is always one of an
//! earlier attempt (before a `retry`), so it is never adopted and no step is judged twice.

use super::view::{CurrentRuns, View, run_phase as phase};
use super::writes::Writes;
use super::{Effect, Event, Observed};
use crate::analysis::build::{self, BuildRequest};
use crate::api::analysis_phase;
use crate::api::consts::{
    DEFAULT_ROLLOUT_UNIQUE_LABEL_KEY, LABEL_KEY_CONTROLLER_INSTANCE_ID, REVISION_ANNOTATION,
    ROLLOUT_TYPE_BACKGROUND_RUN_LABEL, ROLLOUT_TYPE_POST_PROMOTION_LABEL,
    ROLLOUT_TYPE_PRE_PROMOTION_LABEL, ROLLOUT_TYPE_STEP_LABEL,
};
use crate::api::{
    AnalysisRun, RolloutAnalysis, RolloutAnalysisRunStatus, RolloutStatus, pause_reason,
};
use kube_core::ResourceExt;
use std::collections::BTreeMap;

/// Why the Rollout's runs cannot be reconciled: it is blocked until its spec or templates
/// change.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RunError {
    /// There is no new ReplicaSet hash to name the run after.
    #[error("the new ReplicaSet has no pod-template hash")]
    NoHash,
    /// The run cannot be built from its templates and arguments.
    #[error(transparent)]
    Build(#[from] build::BuildError),
}

/// The Rollout's `controller-instance-id` label, for its runs.
fn instance_id(v: &View<'_>) -> Option<String> {
    v.ro.labels().get(LABEL_KEY_CONTROLLER_INSTANCE_ID).cloned()
}

fn completed(run: &AnalysisRun) -> bool {
    analysis_phase::is_completed(phase(run))
}

fn run_status(run: &AnalysisRun) -> RolloutAnalysisRunStatus {
    RolloutAnalysisRunStatus {
        name: Some(run.name_any()),
        // Required by the CRD; a run the AnalysisRun controller has not picked up yet is
        // Pending (upstream writes an empty phase, which the schema's required `status`
        // forbids on some API servers).
        status: Some(match phase(run) {
            "" => analysis_phase::PENDING.to_string(),
            p => p.to_string(),
        }),
        message: run
            .status
            .as_ref()
            .and_then(|s| s.message.clone())
            .filter(|m| !m.is_empty()),
    }
}

/// Upstream's `needsNewAnalysisRun`.
fn needs_new_run(v: &View<'_>, current: Option<&AnalysisRun>) -> bool {
    let Some(current) = current else { return true };
    // A failed run whose failure the status already recorded, on a Rollout no longer
    // aborted: the user retried (the `abortedAt` upstream relies on is gone once the retry
    // has been recorded).
    let recorded_failed = v.recorded_run_status(&current.name_any()).is_some_and(|s| {
        matches!(
            s.status.as_deref(),
            Some(analysis_phase::FAILED | analysis_phase::ERROR)
        )
    });
    if recorded_failed && v.old.abort != Some(true) {
        return true;
    }
    let bg_paused = v
        .old_pause_condition(pause_reason::BLUE_GREEN_PAUSE)
        .is_some();
    if v.old.controller_pause == Some(true) && !bg_paused {
        return phase(current) == analysis_phase::INCONCLUSIVE;
    }
    v.old.aborted_at.is_some()
}

/// Terminates a run that is still going.
fn cancel(w: &mut Writes, run: Option<&AnalysisRun>) {
    if let Some(r) = run
        && !completed(r)
        && r.spec.terminate != Some(true)
    {
        w.effects
            .push(Effect::TerminateAnalysisRun { name: r.name_any() });
    }
}

/// Inconclusive pauses; Failed or Error aborts (upstream's `setPauseOrAbort`).
fn pause_or_abort(w: &mut Writes, run: Option<&AnalysisRun>) {
    let Some(r) = run else { return };
    match phase(r) {
        analysis_phase::INCONCLUSIVE => w.pause.add.push(pause_reason::INCONCLUSIVE_ANALYSIS),
        analysis_phase::FAILED | analysis_phase::ERROR => {
            let message = r
                .status
                .as_ref()
                .and_then(|s| s.message.clone())
                .unwrap_or_default();
            if w.pause.add_abort.is_none() {
                w.pause.add_abort = Some(message);
            }
        }
        _ => {}
    }
}

/// Builds a run from a Rollout analysis block (see the module docs). `recorded` is the name
/// the status gives this run's slot: when the store holds no such run and the name is one
/// this block would get, it was written ahead and the run is created now. Otherwise an
/// unfinished run of the base name is reused (a run an earlier controller created without
/// writing ahead), or the next free `name.N` is recorded, to be created by a later plan.
fn create_run(
    v: &View<'_>,
    w: &mut Writes,
    obs: &Observed<'_>,
    analysis: &RolloutAnalysis,
    infix: &str,
    labels: BTreeMap<String, String>,
    recorded: Option<&str>,
) -> Result<AnalysisRun, RunError> {
    let new_hash = v.rs.new_rs().map(|r| r.hash.clone()).unwrap_or_default();
    if new_hash.is_empty() {
        return Err(RunError::NoHash);
    }
    let revision = w
        .planned_revision()
        .map(|r| r.to_string())
        .or_else(|| v.ro.annotations().get(REVISION_ANNOTATION).cloned())
        .unwrap_or_default();
    let mut parts = vec![v.ro.name_any(), new_hash.clone(), revision.clone()];
    if !infix.is_empty() {
        parts.push(infix.to_string());
    }
    let base = parts.join("-");
    let existing = |n: &str| {
        obs.analysis_runs
            .iter()
            .find(|r| r.name_any() == n)
            .copied()
    };
    if let Some(r) = existing(&base)
        && !completed(r)
        && r.spec.terminate != Some(true)
    {
        return Ok(r.clone());
    }
    let written_ahead =
        recorded.filter(|n| is_collision_name(n, &base, '.') && existing(n).is_none());
    let name = match written_ahead {
        Some(n) => n.to_string(),
        None => {
            let mut name = base.clone();
            let mut n = 0;
            while existing(&name).is_some() {
                n += 1;
                name = format!("{base}.{n}");
            }
            name
        }
    };
    let namespaced = |t: &str| obs.analysis_templates.get(t).map(|t| t.spec.clone());
    let cluster = |t: &str| {
        obs.cluster_analysis_templates
            .get(t)
            .map(|t| t.spec.clone())
    };
    let (templates, cluster_templates) = build::resolve_templates(
        analysis.templates.as_deref().unwrap_or_default(),
        namespaced,
        cluster,
    )?;
    let stable_hash = v.rs.stable_rs().map(|r| r.hash.clone());
    let args = build::resolve_rollout_args(
        analysis.args.as_deref().unwrap_or_default(),
        v.ro,
        stable_hash.as_deref(),
        Some(&new_hash),
    )?;
    let mut labels = labels;
    let md = analysis.analysis_run_metadata.clone().unwrap_or_default();
    labels.extend(md.labels.unwrap_or_default());
    if let Some(sel) =
        v.ro.spec
            .selector
            .as_ref()
            .and_then(|s| s.match_labels.clone())
    {
        labels.extend(sel);
    }
    let mut annotations = BTreeMap::from([(REVISION_ANNOTATION.to_string(), revision)]);
    annotations.extend(md.annotations.unwrap_or_default());
    let run = build::build_analysis_run(&BuildRequest {
        templates: &templates,
        cluster_templates: &cluster_templates,
        args: &args,
        name,
        namespace: v.ro.namespace().unwrap_or_default(),
        owner: super::replicasets::owner_reference(v.ro),
        labels,
        annotations,
        dry_run: analysis.dry_run.as_deref().unwrap_or_default(),
        measurement_retention: analysis
            .measurement_retention
            .as_deref()
            .unwrap_or_default(),
    })?;
    if written_ahead.is_some() {
        w.effects
            .push(Effect::CreateAnalysisRun(Box::new(run.clone())));
    }
    Ok(run)
}

/// Whether `name` is `base` or one of its collision names (`base<sep>N`): a name this
/// Rollout would give the object (runs use `.N`, step Experiments `-N`).
pub(super) fn is_collision_name(name: &str, base: &str, sep: char) -> bool {
    name == base
        || name
            .strip_prefix(base)
            .and_then(|rest| rest.strip_prefix(sep))
            .is_some_and(|k| k.parse::<u32>().is_ok())
}

/// The run name a status slot records.
fn slot_name(slot: Option<&RolloutAnalysisRunStatus>) -> Option<&str> {
    slot?.name.as_deref()
}

/// Upstream's `reconcileStepBasedAnalysisRun`.
fn step_run(
    v: &View<'_>,
    w: &mut Writes,
    obs: &Observed<'_>,
    current: Option<AnalysisRun>,
) -> Result<Option<AnalysisRun>, RunError> {
    let (step, idx) = v.current_step();
    if v.old
        .pause_conditions
        .as_ref()
        .is_some_and(|p| !p.is_empty())
        || v.old.abort == Some(true)
    {
        return Ok(current);
    }
    let (Some(step), Some(i)) = (step, idx) else {
        cancel(w, current.as_ref());
        return Ok(None);
    };
    let Some(analysis) = step.analysis.as_ref() else {
        cancel(w, current.as_ref());
        return Ok(None);
    };
    if needs_new_run(v, current.as_ref()) {
        let labels = build::step_labels(i, &v.new_hash(), instance_id(v).as_deref());
        let recorded = slot_name(
            v.old
                .canary
                .as_ref()
                .and_then(|c| c.current_step_analysis_run_status.as_ref()),
        );
        return create_run(v, w, obs, analysis, &i.to_string(), labels, recorded).map(Some);
    }
    pause_or_abort(w, current.as_ref());
    Ok(current)
}

/// Upstream's `reconcileBackgroundAnalysisRun`.
fn background_run(
    v: &View<'_>,
    w: &mut Writes,
    obs: &Observed<'_>,
    current: Option<AnalysisRun>,
) -> Result<Option<AnalysisRun>, RunError> {
    let Some(bg) = v.canary.analysis.as_ref() else {
        cancel(w, current.as_ref());
        return Ok(None);
    };
    let stable = v.old.stable_rs.as_deref().unwrap_or_default();
    let current_hash = v.old.current_pod_hash.as_deref().unwrap_or_default();
    let before_start = v.old.current_step_index.unwrap_or(0) < bg.starting_step.unwrap_or(0);
    if stable.is_empty() || current_hash.is_empty() || stable == current_hash || before_start {
        return Ok(None);
    }
    if v.old_pause_condition(pause_reason::INCONCLUSIVE_ANALYSIS)
        .is_some()
    {
        return Ok(current);
    }
    if needs_new_run(v, current.as_ref()) {
        let labels = build::run_labels(
            ROLLOUT_TYPE_BACKGROUND_RUN_LABEL,
            &v.new_hash(),
            instance_id(v).as_deref(),
        );
        let recorded = slot_name(
            v.old
                .canary
                .as_ref()
                .and_then(|c| c.current_background_analysis_run_status.as_ref()),
        );
        return create_run(v, w, obs, &bg.analysis, "", labels, recorded).map(Some);
    }
    pause_or_abort(w, current.as_ref());
    Ok(current)
}

/// Upstream's `skipPrePromotionAnalysisRun`.
fn skip_pre_promotion(v: &View<'_>) -> bool {
    let hash = v.new_hash();
    let active = v
        .old
        .blue_green
        .as_ref()
        .and_then(|b| b.active_selector.clone())
        .unwrap_or_default();
    if v.old.stable_rs.as_deref() == Some(hash.as_str())
        || active.is_empty()
        || active == hash
        || hash.is_empty()
    {
        return true;
    }
    let Some(new) = v.rs.new_rs() else {
        return true;
    };
    match v.bg.and_then(|b| b.preview_replica_count) {
        Some(p) => new.spec_replicas != p || new.available != p,
        None => !v.saturated(new),
    }
}

/// Upstream's `skipPostPromotionAnalysisRun`.
pub fn skip_post_promotion(v: &View<'_>) -> bool {
    let hash = v.new_hash();
    let active = v
        .old
        .blue_green
        .as_ref()
        .and_then(|b| b.active_selector.clone())
        .unwrap_or_default();
    v.old.stable_rs.as_deref() == Some(hash.as_str())
        || active != hash
        || hash.is_empty()
        || v.rs.new_rs().is_none_or(|r| !v.saturated(r))
}

fn promotion_run(
    v: &View<'_>,
    w: &mut Writes,
    obs: &Observed<'_>,
    current: Option<AnalysisRun>,
    pre: bool,
) -> Result<Option<AnalysisRun>, RunError> {
    let bg = v.bg.cloned().unwrap_or_default();
    let spec = if pre {
        bg.pre_promotion_analysis
    } else {
        bg.post_promotion_analysis
    };
    let Some(analysis) = spec else {
        cancel(w, current.as_ref());
        return Ok(None);
    };
    let skip = if pre {
        skip_pre_promotion(v)
    } else {
        skip_post_promotion(v)
    };
    if skip {
        cancel(w, current.as_ref());
        return Ok(current);
    }
    if v.old_pause_condition(pause_reason::INCONCLUSIVE_ANALYSIS)
        .is_some()
    {
        return Ok(current);
    }
    let run = if needs_new_run(v, current.as_ref()) {
        let (kind, infix) = if pre {
            (ROLLOUT_TYPE_PRE_PROMOTION_LABEL, "pre")
        } else {
            (ROLLOUT_TYPE_POST_PROMOTION_LABEL, "post")
        };
        let labels = build::run_labels(kind, &v.new_hash(), instance_id(v).as_deref());
        let recorded = slot_name(v.old.blue_green.as_ref().and_then(|b| {
            if pre {
                b.pre_promotion_analysis_run_status.as_ref()
            } else {
                b.post_promotion_analysis_run_status.as_ref()
            }
        }));
        Some(create_run(v, w, obs, &analysis, infix, labels, recorded)?)
    } else {
        current
    };
    pause_or_abort(w, run.as_ref());
    Ok(run)
}

/// Upstream's `reconcileAnalysisRuns`: the runs for this reconcile, the status fields naming
/// them, and cleanup. `Err` names a problem that blocks the Rollout (a missing template...).
pub fn reconcile_analysis(
    v: &View<'_>,
    w: &mut Writes,
    obs: &Observed<'_>,
    st: &mut RolloutStatus,
) -> Result<(), RunError> {
    let current = v.runs.clone();
    w.runs = current.clone();
    let rollback_in_delay = v.rollback_in_scale_down_delay();
    let initial = v.old.stable_rs.as_deref().unwrap_or_default().is_empty();
    if w.aborted(v) || v.old.promote_full == Some(true) || rollback_in_delay || initial {
        let names = current.names();
        for r in obs
            .analysis_runs
            .iter()
            .filter(|r| !names.contains(&r.name_any()))
        {
            cancel(w, Some(r));
        }
        for r in [
            &current.step,
            &current.background,
            &current.pre,
            &current.post,
        ]
        .into_iter()
        .flatten()
        {
            cancel(w, Some(r));
        }
        set_run_statuses(v, st, &current);
        return Ok(());
    }
    let mut next = CurrentRuns::default();
    if v.bg.is_some() {
        next.pre = promotion_run(v, w, obs, current.pre.clone(), true)?;
        next.post = promotion_run(v, w, obs, current.post.clone(), false)?;
    } else {
        next.step = step_run(v, w, obs, current.step.clone())?;
        next.background = background_run(v, w, obs, current.background.clone())?;
    }
    emit_run_events(v, w, &next);
    set_run_statuses(v, st, &next);
    w.runs = next.clone();
    // Runs of earlier updates: terminate, then keep only the history limits.
    let keep = next.names();
    let others: Vec<&AnalysisRun> = obs
        .analysis_runs
        .iter()
        .copied()
        .filter(|r| !keep.contains(&r.name_any()))
        .collect();
    for r in &others {
        cancel(w, Some(r));
    }
    for name in runs_to_delete(v, &others) {
        w.effects.push(Effect::DeleteAnalysisRun { name });
    }
    Ok(())
}

fn set_run_statuses(v: &View<'_>, st: &mut RolloutStatus, runs: &CurrentRuns) {
    if v.bg.is_some() {
        let b = st.blue_green.get_or_insert_with(Default::default);
        b.pre_promotion_analysis_run_status = runs.pre.as_ref().map(run_status);
        b.post_promotion_analysis_run_status = runs.post.as_ref().map(run_status);
    } else {
        let c = st.canary.get_or_insert_with(Default::default);
        c.current_step_analysis_run_status = runs.step.as_ref().map(run_status);
        c.current_background_analysis_run_status = runs.background.as_ref().map(run_status);
    }
}

/// Upstream's `emitAnalysisRunStatusChanges`.
fn emit_run_events(v: &View<'_>, w: &mut Writes, next: &CurrentRuns) {
    let c = v.old.canary.clone().unwrap_or_default();
    let b = v.old.blue_green.clone().unwrap_or_default();
    let pairs = [
        (
            b.post_promotion_analysis_run_status,
            &next.post,
            ROLLOUT_TYPE_POST_PROMOTION_LABEL,
        ),
        (
            b.pre_promotion_analysis_run_status,
            &next.pre,
            ROLLOUT_TYPE_PRE_PROMOTION_LABEL,
        ),
        (
            c.current_step_analysis_run_status,
            &next.step,
            ROLLOUT_TYPE_STEP_LABEL,
        ),
        (
            c.current_background_analysis_run_status,
            &next.background,
            ROLLOUT_TYPE_BACKGROUND_RUN_LABEL,
        ),
    ];
    for (prev_status, run, kind) in pairs {
        let Some(run) = run else { continue };
        let ph = phase(run);
        if ph.is_empty() {
            continue;
        }
        let changed = match &prev_status {
            None => true,
            Some(p) => {
                p.name.as_deref() == Some(run.name_any().as_str())
                    && p.status.as_deref() != Some(ph)
            }
        };
        if !changed {
            continue;
        }
        let previous = prev_status
            .and_then(|p| p.status)
            .unwrap_or_else(|| "NoPreviousStatus".into());
        let msg = format!(
            "{kind} Analysis Run '{}' Status New: '{ph}' Previous: '{previous}'",
            run.name_any()
        );
        let ev = if ph == analysis_phase::FAILED || ph == analysis_phase::ERROR {
            Event::warning(&format!("AnalysisRun{ph}"), msg)
        } else {
            Event::normal(&format!("AnalysisRun{ph}"), msg)
        };
        w.events.push(ev);
    }
}

/// Upstream's `FilterAnalysisRunsToDelete`: runs of ReplicaSets that are gone, and
/// finished runs beyond `successfulRunHistoryLimit` / `unsuccessfulRunHistoryLimit`
/// (default 5 each), newest kept.
fn runs_to_delete(v: &View<'_>, others: &[&AnalysisRun]) -> Vec<String> {
    let limits = v.ro.spec.analysis.clone().unwrap_or_default();
    let max_ok = limits
        .successful_run_history_limit
        .unwrap_or(crate::api::defaults::ANALYSIS_RUN_SUCCESSFUL_HISTORY_LIMIT);
    let max_bad = limits
        .unsuccessful_run_history_limit
        .unwrap_or(crate::api::defaults::ANALYSIS_RUN_UNSUCCESSFUL_HISTORY_LIMIT);
    let hashes: BTreeMap<&str, bool> =
        v.rs.all
            .iter()
            .map(|r| (r.hash.as_str(), r.deleting))
            .collect();
    let mut runs: Vec<&&AnalysisRun> = others
        .iter()
        .filter(|r| r.metadata.deletion_timestamp.is_none())
        .collect();
    runs.sort_by(|a, b| {
        b.metadata
            .creation_timestamp
            .cmp(&a.metadata.creation_timestamp)
    });
    let (mut ok, mut bad) = (0, 0);
    let mut out = Vec::new();
    for r in runs {
        let Some(hash) = r.labels().get(DEFAULT_ROLLOUT_UNIQUE_LABEL_KEY) else {
            continue;
        };
        match hashes.get(hash.as_str()) {
            None | Some(true) => {
                out.push(r.name_any());
                continue;
            }
            _ => {}
        }
        if phase(r) == analysis_phase::SUCCESSFUL {
            if ok < max_ok {
                ok += 1;
            } else {
                out.push(r.name_any());
            }
        } else if completed(r) {
            if bad < max_bad {
                bad += 1;
            } else {
                out.push(r.name_any());
            }
        }
    }
    out
}

#[cfg(test)]
mod naming_tests {
    use super::is_collision_name;

    #[test]
    fn collision_names_are_the_base_or_base_sep_number() {
        assert!(is_collision_name("ro-abc-2-1", "ro-abc-2-1", '.'));
        assert!(is_collision_name("ro-abc-2-1.3", "ro-abc-2-1", '.'));
        assert!(!is_collision_name("ro-abc-2-1.x", "ro-abc-2-1", '.'));
        assert!(!is_collision_name("ro-abc-2-1-3", "ro-abc-2-1", '.'));
        assert!(!is_collision_name("ro-abc-2-10", "ro-abc-2-1", '.'));
        assert!(is_collision_name("ro-abc-2-1-3", "ro-abc-2-1", '-'));
        assert!(!is_collision_name("other", "ro-abc-2-1", '-'));
    }
}
