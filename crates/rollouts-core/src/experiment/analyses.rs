//! One analysis of an Experiment (`spec.analyses[]`): its AnalysisRun, created once the
//! Experiment is available (`availableAt`), followed into `status.analysisRuns[]`, and
//! terminated when the Experiment ends, as upstream's `reconcileAnalysisRun`.

use super::{Effect, Observed, Plan};
use crate::analysis::args::{ArgError, substitute};
use crate::analysis::build::{self, BuildRequest};
use crate::api::analysis_phase as phase;
use crate::api::{
    AnalysisRun, AnalysisTemplateRef, Argument, Experiment, ExperimentAnalysisRunStatus,
    ExperimentAnalysisTemplateRef,
};
use crate::plan::Event;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube_core::ResourceExt;
use std::collections::BTreeMap;
use std::time::Duration;

/// How long after its creation an Experiment may name an analysis template its caches do not
/// hold yet before that is an error: the template is often applied with the Experiment
/// (`kubectl apply -f` of one file), and the template and Experiment watches are separate, so
/// the Experiment can be seen first.
pub const TEMPLATE_GRACE_SECONDS: i64 = 10;

/// Reconciles one analysis: its run's effects, its status entry and events. An analysis
/// without a run has no entry (the CRD requires `analysisRun` and `phase`, and the 1.20 API
/// server reads an empty string as `null`): when it failed before a run could be created,
/// the failure is returned for the Experiment's phase instead.
pub fn reconcile(
    obs: &Observed<'_>,
    a: &ExperimentAnalysisTemplateRef,
    terminating: bool,
    now: Timestamp,
    plan: &mut Plan,
) -> Option<ExperimentAnalysisRunStatus> {
    let ex = obs.experiment;
    let old = ex.status.clone().unwrap_or_default();
    let name = a.name.clone().unwrap_or_default();
    let prev = old
        .analysis_runs
        .iter()
        .flatten()
        .find(|r| r.name.as_deref() == Some(name.as_str()))
        .cloned()
        .unwrap_or_else(|| ExperimentAnalysisRunStatus {
            name: Some(name.clone()),
            ..Default::default()
        });
    let mut new = prev.clone();
    step(obs, a, terminating, now, &prev, &mut new, plan);
    if prev.phase != new.phase && new.phase.as_deref().is_some_and(|p| !p.is_empty()) {
        let p = new.phase.clone().unwrap_or_default();
        let mut msg = format!(
            "AnalysisRun '{name}' transitioned from {} -> {p}",
            prev.phase.as_deref().unwrap_or_default()
        );
        if let Some(m) = new.message.as_deref().filter(|m| !m.is_empty()) {
            msg = format!("{msg}: {m}");
        }
        let reason = format!("AnalysisRun{p}");
        plan.events.push(
            if matches!(
                p.as_str(),
                phase::FAILED | phase::ERROR | phase::INCONCLUSIVE
            ) {
                Event::warning(&reason, msg)
            } else {
                Event::normal(&reason, msg)
            },
        );
    }
    let named = new.analysis_run.as_deref().is_some_and(|r| !r.is_empty());
    if !named {
        return new.phase.is_some().then_some(new);
    }
    let list = plan.status.analysis_runs.get_or_insert_with(Vec::new);
    match list.iter_mut().find(|r| r.name == new.name) {
        Some(slot) => *slot = new,
        None => list.push(new),
    }
    None
}

fn step(
    obs: &Observed<'_>,
    a: &ExperimentAnalysisTemplateRef,
    terminating: bool,
    now: Timestamp,
    prev: &ExperimentAnalysisRunStatus,
    new: &mut ExperimentAnalysisRunStatus,
    plan: &mut Plan,
) {
    let ex = obs.experiment;
    let name = a.name.clone().unwrap_or_default();
    let template = a.template_name.clone().unwrap_or_default();
    let cluster = a.cluster_scope == Some(true);
    let old = ex.status.clone().unwrap_or_default();
    if old.available_at.is_none() {
        if terminating {
            return;
        }
        // Not available yet: runs start later; the template must exist already.
        let exists = if cluster {
            obs.cluster_analysis_templates.contains_key(&template)
        } else {
            obs.analysis_templates.contains_key(&template)
        };
        let grace_ends = ex
            .metadata
            .creation_timestamp
            .as_ref()
            .and_then(|c| {
                c.0.checked_add(SignedDuration::from_secs(TEMPLATE_GRACE_SECONDS))
                    .ok()
            })
            .unwrap_or(now);
        if !exists && grace_ends > now {
            // Not in the caches yet; look again when the grace ends.
            let left = Duration::try_from(grace_ends.duration_since(now)).unwrap_or_default();
            super::templates::requeue(plan, left);
            return;
        }
        if !exists {
            let (kind, what) = if cluster {
                ("ClusterAnalysisTemplate", "clusteranalysistemplate")
            } else {
                ("AnalysisTemplate", "analysistemplate")
            };
            new.phase = Some(phase::ERROR.into());
            new.message = Some(format!(
                "{kind} verification failed for analysis '{name}': {what}.argoproj.io \"{template}\" not found"
            ));
        }
        return;
    }
    let recorded = prev.analysis_run.as_deref().filter(|r| !r.is_empty());
    let Some(run_name) = recorded else {
        if terminating {
            return;
        }
        match create(obs, a, plan) {
            Ok(run) => {
                new.phase = Some(phase::PENDING.into());
                new.analysis_run = Some(run);
                new.message = None;
            }
            Err(e) => {
                new.phase = Some(phase::ERROR.into());
                new.message = Some(format!(
                    "Failed to create AnalysisRun for analysis '{name}': {e}"
                ));
            }
        }
        return;
    };
    if prev.phase.as_deref().is_some_and(phase::is_completed) {
        return;
    }
    let Some(run) = obs.analysis_runs.iter().find(|r| r.name_any() == run_name) else {
        new.phase = Some(phase::ERROR.into());
        new.message = Some(format!("analysisruns.argoproj.io \"{run_name}\" not found"));
        return;
    };
    let st = run.status.clone().unwrap_or_default();
    if terminating {
        let completed = st.phase.as_deref().is_some_and(phase::is_completed);
        if !completed && run.spec.terminate != Some(true) {
            plan.events.push(Event::normal(
                "AnalysisRunTerminating",
                format!("Terminating {name} ({run_name})"),
            ));
            plan.effects.push(Effect::TerminateAnalysisRun {
                name: run_name.to_string(),
            });
        }
        return;
    }
    // A run the AnalysisRun controller has not started yet has no phase: its entry stays
    // Pending (the CRD requires a phase; upstream writes the run's, `""`).
    new.phase = Some(
        st.phase
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| phase::PENDING.into()),
    );
    new.message = st.message.filter(|m| !m.is_empty());
}

/// Why an Experiment's AnalysisRun cannot be built (the analysis' status message).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RunBuildError {
    /// A referenced template does not exist (upstream's lister error, word for word).
    #[error(
        "{}.argoproj.io \"{name}\" not found",
        if *cluster_scope { "clusteranalysistemplate" } else { "analysistemplate" }
    )]
    TemplateNotFound { name: String, cluster_scope: bool },
    /// The run cannot be built from its templates and arguments.
    #[error(transparent)]
    Build(build::BuildError),
    /// An argument's value could not be resolved.
    #[error(transparent)]
    Arg(#[from] ArgError),
}

/// Plans the run's creation; returns its name. An existing run of ours of the base name that
/// is still going is taken as it is (a status write lost after its creation); a name taken
/// otherwise gets upstream's collision suffix (`.1`, `.2`...).
fn create(
    obs: &Observed<'_>,
    a: &ExperimentAnalysisTemplateRef,
    plan: &mut Plan,
) -> Result<String, RunBuildError> {
    let ex = obs.experiment;
    let base = format!(
        "{}-{}",
        ex.name_any(),
        a.name.as_deref().unwrap_or_default()
    );
    let ours = |n: &str| obs.analysis_runs.iter().find(|r| r.name_any() == n);
    if let Some(r) = ours(&base) {
        let done = r
            .status
            .as_ref()
            .and_then(|s| s.phase.as_deref())
            .is_some_and(phase::is_completed);
        if !done && r.spec.terminate != Some(true) {
            return Ok(base);
        }
    }
    let taken = |n: &str| ours(n).is_some() || obs.taken_run_names.contains(n);
    let mut name = base.clone();
    let mut n = 0;
    while taken(&name) {
        n += 1;
        name = format!("{base}.{n}");
    }
    let run = new_run(obs, a, name.clone())?;
    plan.effects.push(Effect::CreateAnalysisRun(Box::new(run)));
    Ok(name)
}

/// Upstream's `newAnalysisRun`: the templates, the analysis' arguments (with the
/// Experiment's values substituted), the Experiment's dry-run and measurement-retention
/// rules, its `analysisRunMetadata` and instance id, and a controller reference to it.
fn new_run(
    obs: &Observed<'_>,
    a: &ExperimentAnalysisTemplateRef,
    name: String,
) -> Result<AnalysisRun, RunBuildError> {
    let ex = obs.experiment;
    let refs = [AnalysisTemplateRef {
        template_name: a.template_name.clone(),
        cluster_scope: a.cluster_scope,
    }];
    let (templates, cluster_templates) = build::resolve_templates(
        &refs,
        |t| obs.analysis_templates.get(t).map(|t| t.spec.clone()),
        |t| {
            obs.cluster_analysis_templates
                .get(t)
                .map(|t| t.spec.clone())
        },
    )
    .map_err(|e| match e {
        build::BuildError::TemplateNotFound {
            name,
            cluster_scope,
        } => RunBuildError::TemplateNotFound {
            name,
            cluster_scope,
        },
        e => RunBuildError::Build(e),
    })?;
    let args = resolve_args(obs, a.args.as_deref().unwrap_or_default())?;
    let mut labels = BTreeMap::new();
    let id_key = crate::api::consts::LABEL_KEY_CONTROLLER_INSTANCE_ID;
    if let Some(id) = ex.labels().get(id_key).filter(|v| !v.is_empty()) {
        labels.insert(id_key.to_string(), id.clone());
    }
    let md = ex.spec.analysis_run_metadata.clone().unwrap_or_default();
    labels.extend(md.labels.unwrap_or_default());
    build::build_analysis_run(&BuildRequest {
        templates: &templates,
        cluster_templates: &cluster_templates,
        args: &args,
        name,
        namespace: ex.namespace().unwrap_or_default(),
        owner: super::owner_reference(ex),
        labels,
        annotations: md.annotations.unwrap_or_default(),
        dry_run: ex.spec.dry_run.as_deref().unwrap_or_default(),
        measurement_retention: ex.spec.measurement_retention.as_deref().unwrap_or_default(),
    })
    .map_err(RunBuildError::Build)
}

/// Upstream's `ResolveExperimentArgsValue` on each argument's value:
/// `{{templates.NAME.podTemplateHash}}`, `{{templates.NAME.replicaset.name}}`,
/// `{{experiment.availableAt}}` and `{{experiment.finishedAt}}`. `valueFrom` is passed on
/// (upstream drops it).
fn resolve_args(obs: &Observed<'_>, args: &[Argument]) -> Result<Vec<Argument>, ArgError> {
    let values = experiment_values(obs);
    args.iter()
        .map(|arg| {
            let mut out = arg.clone();
            if let Some(v) = &arg.value {
                out.value = Some(substitute(v, &values, false)?);
            }
            Ok(out)
        })
        .collect()
}

fn experiment_values(obs: &Observed<'_>) -> BTreeMap<String, String> {
    let ex: &Experiment = obs.experiment;
    let mut values = BTreeMap::new();
    let status = ex.status.clone().unwrap_or_default();
    if let Some(at) = &status.available_at {
        values.insert(
            "experiment.availableAt".into(),
            at.0.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        );
        if let Some(nanos) = super::duration_nanos(ex) {
            let ends = k8s_openapi::jiff::Timestamp::from_nanosecond(at.0.as_nanosecond() + nanos);
            if let Ok(ends) = ends {
                values.insert(
                    "experiment.finishedAt".into(),
                    ends.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
                );
            }
        }
    }
    for rs in &obs.replica_sets {
        if let Some(t) = super::templates::template_of(ex, rs) {
            let hash = rs
                .labels()
                .get(crate::api::consts::DEFAULT_ROLLOUT_UNIQUE_LABEL_KEY)
                .cloned()
                .unwrap_or_default();
            values.insert(format!("templates.{t}.podTemplateHash"), hash);
            values.insert(format!("templates.{t}.replicaset.name"), rs.name_any());
        }
    }
    values
}
