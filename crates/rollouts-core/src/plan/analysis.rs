//! AnalysisRuns of a Rollout, after upstream's `rollout/analysis.go`: step runs, the
//! background run, blue-green pre- and post-promotion runs; their phases pause (Inconclusive)
//! or abort (Failed, Error) the Rollout; runs of earlier updates are terminated and cleaned up
//! beyond the history limits. The runs themselves are measured by the AnalysisRun controller.

use super::canary::Ctx;
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

/// The runs the status names as current.
#[derive(Clone, Debug, Default)]
pub(super) struct CurrentRuns {
    pub step: Option<AnalysisRun>,
    pub background: Option<AnalysisRun>,
    pub pre: Option<AnalysisRun>,
    pub post: Option<AnalysisRun>,
}

impl CurrentRuns {
    fn names(&self) -> Vec<String> {
        [&self.step, &self.background, &self.pre, &self.post]
            .into_iter()
            .flatten()
            .map(|r| r.name_any())
            .collect()
    }
}

pub(super) fn phase(run: &AnalysisRun) -> &str {
    run.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or_default()
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

impl<'a> Ctx<'a> {
    /// The runs the observed status names as current (looked up among the owned runs).
    pub(super) fn current_runs(&self, obs: &Observed<'_>) -> CurrentRuns {
        let find = |s: Option<&RolloutAnalysisRunStatus>| {
            let name = s?.name.as_deref()?;
            obs.analysis_runs
                .iter()
                .find(|r| r.name_any() == name)
                .map(|r| (*r).clone())
        };
        let c = self.old.canary.clone().unwrap_or_default();
        let b = self.old.blue_green.clone().unwrap_or_default();
        CurrentRuns {
            step: find(c.current_step_analysis_run_status.as_ref()),
            background: find(c.current_background_analysis_run_status.as_ref()),
            pre: find(b.pre_promotion_analysis_run_status.as_ref()),
            post: find(b.post_promotion_analysis_run_status.as_ref()),
        }
    }

    /// Upstream's `needsNewAnalysisRun`.
    fn needs_new_run(&self, current: Option<&AnalysisRun>) -> bool {
        let Some(current) = current else { return true };
        // A failed run whose failure the status already recorded, on a Rollout no longer
        // aborted: the user retried (the `abortedAt` upstream relies on is gone once the retry
        // has been recorded).
        let recorded_failed = self.recorded_status(&current.name_any()).is_some_and(|s| {
            matches!(
                s.status.as_deref(),
                Some(analysis_phase::FAILED | analysis_phase::ERROR)
            )
        });
        if recorded_failed && self.old.abort != Some(true) {
            return true;
        }
        let bg_paused = self
            .old_pause_condition(pause_reason::BLUE_GREEN_PAUSE)
            .is_some();
        if self.old.controller_pause == Some(true) && !bg_paused {
            return phase(current) == analysis_phase::INCONCLUSIVE;
        }
        self.old.aborted_at.is_some()
    }

    /// What the observed status recorded about a run.
    fn recorded_status(&self, name: &str) -> Option<RolloutAnalysisRunStatus> {
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

    /// Terminates a run that is still going.
    fn cancel(&mut self, run: Option<&AnalysisRun>) {
        if let Some(r) = run
            && !completed(r)
            && r.spec.terminate != Some(true)
        {
            self.effects
                .push(Effect::TerminateAnalysisRun { name: r.name_any() });
        }
    }

    /// Inconclusive pauses; Failed or Error aborts (upstream's `setPauseOrAbort`).
    fn pause_or_abort(&mut self, run: Option<&AnalysisRun>) {
        let Some(r) = run else { return };
        match phase(r) {
            analysis_phase::INCONCLUSIVE => {
                self.pause.add.push(pause_reason::INCONCLUSIVE_ANALYSIS)
            }
            analysis_phase::FAILED | analysis_phase::ERROR => {
                let message = r
                    .status
                    .as_ref()
                    .and_then(|s| s.message.clone())
                    .unwrap_or_default();
                if self.pause.add_abort.is_none() {
                    self.pause.add_abort = Some(message);
                }
            }
            _ => {}
        }
    }

    /// Builds a run from a Rollout analysis block, reusing an unfinished run of the same name
    /// (a store that has not seen our last write) or picking the next free `name.N`.
    fn create_run(
        &mut self,
        obs: &Observed<'_>,
        analysis: &RolloutAnalysis,
        infix: &str,
        labels: BTreeMap<String, String>,
    ) -> Result<AnalysisRun, String> {
        let new_hash = self.rs.new_rs().map(|r| r.hash.clone()).unwrap_or_default();
        if new_hash.is_empty() {
            return Err("the new ReplicaSet has no pod-template hash".into());
        }
        let revision = self
            .planned_revision()
            .map(|r| r.to_string())
            .or_else(|| self.ro.annotations().get(REVISION_ANNOTATION).cloned())
            .unwrap_or_default();
        let mut parts = vec![self.ro.name_any(), new_hash.clone(), revision.clone()];
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
        let mut name = base.clone();
        let mut n = 0;
        while existing(&name).is_some() {
            n += 1;
            name = format!("{base}.{n}");
        }
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
        )
        .map_err(|e| e.to_string())?;
        let stable_hash = self.rs.stable_rs().map(|r| r.hash.clone());
        let args = build::resolve_rollout_args(
            analysis.args.as_deref().unwrap_or_default(),
            self.ro,
            stable_hash.as_deref(),
            Some(&new_hash),
        )
        .map_err(|e| e.to_string())?;
        let mut labels = labels;
        let md = analysis.analysis_run_metadata.clone().unwrap_or_default();
        labels.extend(md.labels.unwrap_or_default());
        if let Some(sel) = self
            .ro
            .spec
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
            namespace: self.ro.namespace().unwrap_or_default(),
            owner: super::replicasets::owner_reference(self.ro),
            labels,
            annotations,
            dry_run: analysis.dry_run.as_deref().unwrap_or_default(),
            measurement_retention: analysis
                .measurement_retention
                .as_deref()
                .unwrap_or_default(),
        })
        .map_err(|e| e.to_string())?;
        self.effects
            .push(Effect::CreateAnalysisRun(Box::new(run.clone())));
        Ok(run)
    }

    fn instance_id(&self) -> Option<String> {
        self.ro
            .labels()
            .get(LABEL_KEY_CONTROLLER_INSTANCE_ID)
            .cloned()
    }

    fn new_hash(&self) -> String {
        self.rs.new_rs().map(|r| r.hash.clone()).unwrap_or_default()
    }

    /// Upstream's `reconcileStepBasedAnalysisRun`.
    fn step_run(
        &mut self,
        obs: &Observed<'_>,
        current: Option<AnalysisRun>,
    ) -> Result<Option<AnalysisRun>, String> {
        let (step, idx) = self.current_step();
        if self
            .old
            .pause_conditions
            .as_ref()
            .is_some_and(|p| !p.is_empty())
            || self.old.abort == Some(true)
        {
            return Ok(current);
        }
        let (Some(step), Some(i)) = (step, idx) else {
            self.cancel(current.as_ref());
            return Ok(None);
        };
        let Some(analysis) = step.analysis.as_ref() else {
            self.cancel(current.as_ref());
            return Ok(None);
        };
        if self.needs_new_run(current.as_ref()) {
            let labels = build::step_labels(i, &self.new_hash(), self.instance_id().as_deref());
            return self
                .create_run(obs, analysis, &i.to_string(), labels)
                .map(Some);
        }
        self.pause_or_abort(current.as_ref());
        Ok(current)
    }

    /// Upstream's `reconcileBackgroundAnalysisRun`.
    fn background_run(
        &mut self,
        obs: &Observed<'_>,
        current: Option<AnalysisRun>,
    ) -> Result<Option<AnalysisRun>, String> {
        let Some(bg) = self.canary.analysis.as_ref() else {
            self.cancel(current.as_ref());
            return Ok(None);
        };
        let stable = self.old.stable_rs.as_deref().unwrap_or_default();
        let current_hash = self.old.current_pod_hash.as_deref().unwrap_or_default();
        let before_start = self.old.current_step_index.unwrap_or(0) < bg.starting_step.unwrap_or(0);
        if stable.is_empty() || current_hash.is_empty() || stable == current_hash || before_start {
            return Ok(None);
        }
        if self
            .old_pause_condition(pause_reason::INCONCLUSIVE_ANALYSIS)
            .is_some()
        {
            return Ok(current);
        }
        if self.needs_new_run(current.as_ref()) {
            let labels = build::run_labels(
                ROLLOUT_TYPE_BACKGROUND_RUN_LABEL,
                &self.new_hash(),
                self.instance_id().as_deref(),
            );
            return self.create_run(obs, &bg.analysis, "", labels).map(Some);
        }
        self.pause_or_abort(current.as_ref());
        Ok(current)
    }

    /// Upstream's `skipPrePromotionAnalysisRun`.
    fn skip_pre_promotion(&self) -> bool {
        let hash = self.new_hash();
        let active = self
            .old
            .blue_green
            .as_ref()
            .and_then(|b| b.active_selector.clone())
            .unwrap_or_default();
        if self.old.stable_rs.as_deref() == Some(hash.as_str())
            || active.is_empty()
            || active == hash
            || hash.is_empty()
        {
            return true;
        }
        let Some(new) = self.rs.new_rs() else {
            return true;
        };
        match self.bg.and_then(|b| b.preview_replica_count) {
            Some(p) => new.spec_replicas != p || new.available != p,
            None => !self.saturated(new),
        }
    }

    /// Upstream's `skipPostPromotionAnalysisRun`.
    pub(super) fn skip_post_promotion(&self) -> bool {
        let hash = self.new_hash();
        let active = self
            .old
            .blue_green
            .as_ref()
            .and_then(|b| b.active_selector.clone())
            .unwrap_or_default();
        self.old.stable_rs.as_deref() == Some(hash.as_str())
            || active != hash
            || hash.is_empty()
            || self.rs.new_rs().is_none_or(|r| !self.saturated(r))
    }

    fn promotion_run(
        &mut self,
        obs: &Observed<'_>,
        current: Option<AnalysisRun>,
        pre: bool,
    ) -> Result<Option<AnalysisRun>, String> {
        let bg = self.bg.cloned().unwrap_or_default();
        let spec = if pre {
            bg.pre_promotion_analysis
        } else {
            bg.post_promotion_analysis
        };
        let Some(analysis) = spec else {
            self.cancel(current.as_ref());
            return Ok(None);
        };
        let skip = if pre {
            self.skip_pre_promotion()
        } else {
            self.skip_post_promotion()
        };
        if skip {
            self.cancel(current.as_ref());
            return Ok(current);
        }
        if self
            .old_pause_condition(pause_reason::INCONCLUSIVE_ANALYSIS)
            .is_some()
        {
            return Ok(current);
        }
        let run = if self.needs_new_run(current.as_ref()) {
            let (kind, infix) = if pre {
                (ROLLOUT_TYPE_PRE_PROMOTION_LABEL, "pre")
            } else {
                (ROLLOUT_TYPE_POST_PROMOTION_LABEL, "post")
            };
            let labels = build::run_labels(kind, &self.new_hash(), self.instance_id().as_deref());
            Some(self.create_run(obs, &analysis, infix, labels)?)
        } else {
            current
        };
        self.pause_or_abort(run.as_ref());
        Ok(run)
    }

    /// Upstream's `reconcileAnalysisRuns`: the runs for this reconcile, the status fields naming
    /// them, and cleanup. `Err` names a problem that blocks the Rollout (a missing template...).
    pub(super) fn reconcile_analysis(
        &mut self,
        obs: &Observed<'_>,
        st: &mut RolloutStatus,
    ) -> Result<(), String> {
        let current = self.current_runs(obs);
        self.current = current.clone();
        let rollback_in_delay = self.rollback_in_scale_down_delay();
        let initial = self.old.stable_rs.as_deref().unwrap_or_default().is_empty();
        if self.aborted() || self.old.promote_full == Some(true) || rollback_in_delay || initial {
            let names = current.names();
            for r in obs
                .analysis_runs
                .iter()
                .filter(|r| !names.contains(&r.name_any()))
            {
                self.cancel(Some(r));
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
                self.cancel(Some(r));
            }
            self.set_run_statuses(st, &current);
            return Ok(());
        }
        let mut next = CurrentRuns::default();
        if self.bg.is_some() {
            next.pre = self.promotion_run(obs, current.pre.clone(), true)?;
            next.post = self.promotion_run(obs, current.post.clone(), false)?;
        } else {
            next.step = self.step_run(obs, current.step.clone())?;
            next.background = self.background_run(obs, current.background.clone())?;
        }
        self.emit_run_events(&current, &next);
        self.set_run_statuses(st, &next);
        self.current = next.clone();
        // Runs of earlier updates: terminate, then keep only the history limits.
        let keep = next.names();
        let others: Vec<&AnalysisRun> = obs
            .analysis_runs
            .iter()
            .copied()
            .filter(|r| !keep.contains(&r.name_any()))
            .collect();
        for r in &others {
            self.cancel(Some(r));
        }
        for name in self.runs_to_delete(&others) {
            self.effects.push(Effect::DeleteAnalysisRun { name });
        }
        Ok(())
    }

    fn set_run_statuses(&self, st: &mut RolloutStatus, runs: &CurrentRuns) {
        if self.bg.is_some() {
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
    fn emit_run_events(&mut self, prev: &CurrentRuns, next: &CurrentRuns) {
        let c = self.old.canary.clone().unwrap_or_default();
        let b = self.old.blue_green.clone().unwrap_or_default();
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
        let _ = prev;
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
            self.events.push(ev);
        }
    }

    /// Upstream's `FilterAnalysisRunsToDelete`: runs of ReplicaSets that are gone, and
    /// finished runs beyond `successfulRunHistoryLimit` / `unsuccessfulRunHistoryLimit`
    /// (default 5 each), newest kept.
    fn runs_to_delete(&self, others: &[&AnalysisRun]) -> Vec<String> {
        let limits = self.ro.spec.analysis.clone().unwrap_or_default();
        let max_ok = limits
            .successful_run_history_limit
            .unwrap_or(crate::api::defaults::ANALYSIS_RUN_SUCCESSFUL_HISTORY_LIMIT);
        let max_bad = limits
            .unsuccessful_run_history_limit
            .unwrap_or(crate::api::defaults::ANALYSIS_RUN_UNSUCCESSFUL_HISTORY_LIMIT);
        let hashes: BTreeMap<&str, bool> = self
            .rs
            .all
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
}
