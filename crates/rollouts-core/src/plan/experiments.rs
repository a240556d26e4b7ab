//! The Experiments of a canary Rollout's `experiment` steps, after upstream's
//! `rollout/experiment.go` and `utils/experiment/filter.go`.
//!
//! When the current step is an `experiment`, the Rollout creates one Experiment from it
//! ([`build`]): named `<rollout>-<pod-template hash>-<revision>-<step index>` (`-1`, `-2`...
//! when that name is taken by an Experiment that is not this one), with the Rollout's labels,
//! its pod-template hash and revision, a controller owner reference, and one template per step
//! template, whose pod template and selector are those of the canary or stable ReplicaSet
//! (`specRef`), with the step's `replicas`, `metadata` and `selector`, and a Service when
//! `service` or `weight` is set. Its analyses carry the Rollout's resolved args. The step
//! completes when the Experiment is Successful; Failed or Error aborts the Rollout;
//! Inconclusive pauses it (`InconclusiveExperiment`). `status.canary.currentExperiment` names
//! the Experiment while it has not ended. An abort, a full promotion, or a step that is no
//! longer an `experiment` terminates every Experiment still running (`spec.terminate`); ended
//! ones are kept within the analysis history limits, and deleted once their ReplicaSet is gone.
//! The Experiments themselves are run by the Experiment controller.

use super::view::{View, experiment_phase as phase};
use super::writes::Writes;
use super::{Effect, Event, Observed};
use crate::analysis::build::{self, BuildError};
use crate::api::consts::{
    DEFAULT_ROLLOUT_UNIQUE_LABEL_KEY, LABEL_KEY_CONTROLLER_INSTANCE_ID, REVISION_ANNOTATION,
};
use crate::api::{
    Experiment, ExperimentAnalysisTemplateRef, ExperimentSpec, RolloutExperimentStep,
    RolloutStatus, TemplateService, TemplateSpec, analysis_phase, pause_reason, spec_ref,
};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube_core::ResourceExt;
use std::collections::BTreeMap;

/// Why the Experiment of an `experiment` step cannot be built (the Rollout is blocked with an
/// InvalidSpec condition naming the field).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StepError {
    #[error(
        "spec.strategy.canary.steps[{step}].experiment.templates[{template}].specRef: Invalid template step SpecRef: must be canary or stable"
    )]
    SpecRef { step: i32, template: usize },
    #[error("spec.strategy.canary.steps[{step}].experiment.analyses[{analysis}].args: {source}")]
    Args {
        step: i32,
        analysis: usize,
        #[source]
        source: BuildError,
    },
}

/// The event reason of a [`StepError`].
pub const ERROR_REASON: &str = "ExperimentError";

fn completed(ex: &Experiment) -> bool {
    analysis_phase::is_completed(phase(ex))
}

/// Upstream's `GetExperimentFromTemplate`: the Experiment for the `experiment` step `step` (at
/// index `idx`), from the stable and canary ReplicaSets, named `name`.
pub fn build(
    v: &View<'_>,
    w: &Writes,
    step: &RolloutExperimentStep,
    idx: i32,
    stable: &ReplicaSet,
    canary: &ReplicaSet,
) -> Result<Experiment, StepError> {
    let ro = v.ro;
    let pod_hash = v.desired_hash.clone();
    let revision = w
        .planned_revision()
        .map(|r| r.to_string())
        .or_else(|| ro.annotations().get(REVISION_ANNOTATION).cloned())
        .unwrap_or_default();
    let mut labels = ro.labels().clone();
    labels.insert(DEFAULT_ROLLOUT_UNIQUE_LABEL_KEY.into(), pod_hash.clone());
    if let Some(id) = ro
        .labels()
        .get(LABEL_KEY_CONTROLLER_INSTANCE_ID)
        .filter(|i| !i.is_empty())
    {
        labels.insert(LABEL_KEY_CONTROLLER_INSTANCE_ID.into(), id.clone());
    }
    let mut templates = Vec::new();
    for (k, t) in step.templates.iter().flatten().enumerate() {
        let source = match t.spec_ref.as_deref() {
            Some(spec_ref::CANARY) => canary,
            Some(spec_ref::STABLE) => stable,
            _ => {
                return Err(StepError::SpecRef {
                    step: idx,
                    template: k,
                });
            }
        };
        let rs_spec = source.spec.clone().unwrap_or_default();
        let mut template = rs_spec.template.unwrap_or_default();
        let mut selector = t.selector.clone().unwrap_or(rs_spec.selector);
        let md = t.metadata.clone().unwrap_or_default();
        if let Some(extra) = md.labels {
            let meta = template.metadata.get_or_insert_with(Default::default);
            let tl = meta.labels.get_or_insert_with(Default::default);
            let sl = selector.match_labels.get_or_insert_with(Default::default);
            for (key, value) in extra {
                tl.insert(key.clone(), value.clone());
                sl.insert(key, value);
            }
        }
        if let Some(extra) = md.annotations {
            let meta = template.metadata.get_or_insert_with(Default::default);
            meta.annotations
                .get_or_insert_with(Default::default)
                .extend(extra);
        }
        let service = (t.weight.is_some() || t.service.is_some()).then(|| TemplateService {
            name: t
                .service
                .as_ref()
                .and_then(|s| s.name.clone())
                .filter(|n| !n.is_empty()),
        });
        templates.push(TemplateSpec {
            name: t.name.clone(),
            replicas: t.replicas,
            min_ready_seconds: rs_spec.min_ready_seconds,
            selector: Some(selector),
            template: Some(template),
            service,
        });
    }
    let stable_hash = stable
        .labels()
        .get(DEFAULT_ROLLOUT_UNIQUE_LABEL_KEY)
        .cloned();
    let canary_hash = canary
        .labels()
        .get(DEFAULT_ROLLOUT_UNIQUE_LABEL_KEY)
        .cloned();
    let mut analyses = Vec::new();
    for (k, a) in step.analyses.iter().flatten().enumerate() {
        let args = build::resolve_rollout_args(
            a.args.as_deref().unwrap_or_default(),
            ro,
            stable_hash.as_deref(),
            canary_hash.as_deref(),
        )
        .map_err(|source| StepError::Args {
            step: idx,
            analysis: k,
            source,
        })?;
        analyses.push(ExperimentAnalysisTemplateRef {
            name: a.name.clone(),
            template_name: a.template_name.clone(),
            cluster_scope: a.cluster_scope,
            args: (!args.is_empty()).then_some(args),
            required_for_completion: a.required_for_completion,
        });
    }
    Ok(Experiment {
        metadata: ObjectMeta {
            name: Some(format!("{}-{pod_hash}-{revision}-{idx}", ro.name_any())),
            namespace: ro.namespace(),
            owner_references: Some(vec![super::replicasets::owner_reference(ro)]),
            labels: Some(labels),
            annotations: Some(BTreeMap::from([(REVISION_ANNOTATION.into(), revision)])),
            ..Default::default()
        },
        spec: ExperimentSpec {
            templates: Some(templates),
            duration: step.duration.clone().filter(|d| !d.is_empty()),
            progress_deadline_seconds: ro.spec.progress_deadline_seconds,
            terminate: None,
            analyses: (!analyses.is_empty()).then_some(analyses),
            scale_down_delay_seconds: step.scale_down_delay_seconds,
            dry_run: step.dry_run.clone(),
            measurement_retention: None,
            analysis_run_metadata: step.analysis_run_metadata.clone(),
        },
        status: None,
    })
}

/// Upstream's `createExperimentWithCollisionHandling`, against the observed Experiments, and
/// written ahead as the step's AnalysisRuns are (see [`super::analysis`]): `recorded` is the
/// status's `currentExperiment`; when no such Experiment exists and the name is one this step
/// would get, the status recorded it ahead and it is created now. Otherwise an unfinished
/// Experiment of ours under a taken name with the same spec is the one (created by a
/// controller that did not write ahead), or the first free `name-N` is recorded, to be
/// created by a later plan.
fn create(
    w: &mut Writes,
    obs: &Observed<'_>,
    mut ex: Experiment,
    recorded: Option<&str>,
) -> Experiment {
    let base = ex.name_any();
    let existing = |n: &str| obs.experiments.iter().copied().find(|e| e.name_any() == n);
    let ours = |n: &str| super::analysis::is_collision_name(n, &base, '-');
    if let Some(name) = recorded.filter(|n| ours(n) && existing(n).is_none()) {
        ex.metadata.name = Some(name.to_string());
        w.effects
            .push(Effect::CreateExperiment(Box::new(ex.clone())));
        w.events.push(Event::normal(
            "ExperimentCreated",
            format!("Created Experiment '{name}'"),
        ));
        return ex;
    }
    let mut name = base.clone();
    let mut n = 0;
    while let Some(e) = existing(&name) {
        let mut same = e.spec.clone();
        same.terminate = None;
        if !completed(e) && e.spec.terminate != Some(true) && same == ex.spec {
            return e.clone();
        }
        n += 1;
        name = format!("{base}-{n}");
    }
    ex.metadata.name = Some(name);
    ex
}

/// Terminates an Experiment still running.
fn cancel(w: &mut Writes, ex: &Experiment) {
    if ex.spec.terminate != Some(true) && !completed(ex) {
        w.effects.push(Effect::TerminateExperiment {
            name: ex.name_any(),
        });
    }
}

/// Upstream's `reconcileExperiments`: the Experiment of the current step (created when
/// missing), the pause or abort its phase asks for, `status.canary.currentExperiment`, and the
/// termination and cleanup of the others.
pub fn reconcile_experiments(
    v: &View<'_>,
    w: &mut Writes,
    obs: &Observed<'_>,
    st: &mut RolloutStatus,
) -> Result<(), StepError> {
    let current = v.experiment;
    let current_name = current.map(|e| e.name_any());
    let mut others: Vec<&Experiment> = obs
        .experiments
        .iter()
        .copied()
        .filter(|e| Some(e.name_any()) != current_name)
        .collect();
    if w.aborted(v) || v.old.promote_full == Some(true) {
        for ex in others.iter().copied().chain(current) {
            cancel(w, ex);
        }
        w.experiment = None;
        return Ok(());
    }
    if v.old_pause_condition(pause_reason::INCONCLUSIVE_ANALYSIS)
        .is_some()
    {
        return Ok(());
    }
    let (step, idx) = v.current_step();
    let mut current = current.cloned();
    match (step.and_then(|s| s.experiment.as_ref()), idx) {
        (Some(ex_step), Some(i)) => {
            if current.is_none() {
                // Upstream cannot create the Experiment before the stable ReplicaSet exists;
                // both ReplicaSets must also have been observed (one created by this plan
                // has no pod template to copy yet: the next reconcile sees it).
                if let (Some(stable), Some(canary)) = (
                    v.rs.stable_rs().and_then(|r| r.obj),
                    v.rs.new_rs().and_then(|r| r.obj),
                ) {
                    let ex = build(v, w, ex_step, i, stable, canary)?;
                    let recorded = v
                        .old
                        .canary
                        .as_ref()
                        .and_then(|c| c.current_experiment.as_deref());
                    let ex = create(w, obs, ex, recorded);
                    let name = ex.name_any();
                    others.retain(|e| e.name_any() != name);
                    current = Some(ex);
                }
            }
            if let Some(ex) = &current {
                match phase(ex) {
                    analysis_phase::INCONCLUSIVE => {
                        w.pause.add.push(pause_reason::INCONCLUSIVE_EXPERIMENT);
                    }
                    analysis_phase::ERROR | analysis_phase::FAILED => {
                        let mut message = "Experiment analysis phase is error/failed".to_string();
                        if let Some(m) = ex
                            .status
                            .as_ref()
                            .and_then(|s| s.message.as_deref())
                            .filter(|m| !m.is_empty())
                        {
                            message = format!("{message}: {m}");
                        }
                        if w.pause.add_abort.is_none() {
                            w.pause.add_abort = Some(message);
                        }
                    }
                    analysis_phase::SUCCESSFUL => {}
                    _ => {
                        st.canary
                            .get_or_insert_with(Default::default)
                            .current_experiment = Some(ex.name_any());
                    }
                }
            }
            w.experiment = current;
        }
        _ => {
            others.extend(current.as_ref());
            w.experiment = None;
        }
    }
    for ex in &others {
        cancel(w, ex);
    }
    for name in to_delete(v, &others) {
        w.effects.push(Effect::DeleteExperiment { name });
    }
    Ok(())
}

/// Upstream's `FilterExperimentsToDelete`: Experiments without a pod-template hash label or
/// whose ReplicaSet is gone (or going), and ended ones beyond the analysis history limits
/// (`successfulRunHistoryLimit`, `unsuccessfulRunHistoryLimit`; newest kept).
fn to_delete(v: &View<'_>, others: &[&Experiment]) -> Vec<String> {
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
    let mut exs: Vec<&&Experiment> = others
        .iter()
        .filter(|e| e.metadata.deletion_timestamp.is_none())
        .collect();
    exs.sort_by(|a, b| {
        b.metadata
            .creation_timestamp
            .cmp(&a.metadata.creation_timestamp)
            .then_with(|| b.name_any().cmp(&a.name_any()))
    });
    let (mut ok, mut bad) = (0, 0);
    let mut out = Vec::new();
    for e in exs {
        let Some(hash) = e.labels().get(DEFAULT_ROLLOUT_UNIQUE_LABEL_KEY) else {
            out.push(e.name_any());
            continue;
        };
        match hashes.get(hash.as_str()) {
            None | Some(true) => {
                out.push(e.name_any());
                continue;
            }
            _ => {}
        }
        match phase(e) {
            analysis_phase::SUCCESSFUL => {
                if ok < max_ok {
                    ok += 1;
                } else {
                    out.push(e.name_any());
                }
            }
            analysis_phase::FAILED | analysis_phase::ERROR | analysis_phase::INCONCLUSIVE => {
                if bad < max_bad {
                    bad += 1;
                } else {
                    out.push(e.name_any());
                }
            }
            _ => {}
        }
    }
    out
}

/// Upstream's `calculateWeightDestinationsFromExperiment`: while the current step's
/// Experiment (as the status names it) is Running, a destination per template with a
/// `weight`: its Service and pod-template hash.
pub fn weight_destinations(v: &View<'_>) -> Vec<crate::api::WeightDestination> {
    let (step, _) = v.current_step();
    let (Some(ex_step), Some(ex)) = (step.and_then(|s| s.experiment.as_ref()), v.experiment) else {
        return Vec::new();
    };
    if phase(ex) != analysis_phase::RUNNING {
        return Vec::new();
    }
    let weight_of = |name: Option<&str>| {
        ex_step
            .templates
            .iter()
            .flatten()
            .find(|t| t.name.as_deref() == name)
            .and_then(|t| t.weight)
    };
    ex.status
        .as_ref()
        .and_then(|s| s.template_statuses.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|ts| {
            let weight = weight_of(ts.name.as_deref())?;
            Some(crate::api::WeightDestination {
                weight: Some(weight),
                service_name: ts.service_name.clone(),
                pod_template_hash: ts.pod_template_hash.clone(),
            })
        })
        .collect()
}
