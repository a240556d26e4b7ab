//! The Experiment's phase, message, `availableAt`, conditions, events and next look, as
//! upstream's `calculateStatus`, `calculateExperimentConditions` and
//! `calculateEnqueueDuration`.

use super::Plan;
use super::templates::requeue;
use crate::api::experiment_condition_type as cond_type;
use crate::api::template_status_code as code;
use crate::api::{
    Experiment, ExperimentAnalysisRunStatus, ExperimentCondition, ExperimentStatus,
    analysis_phase as phase,
};
use crate::plan::{Event, stamp};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use std::time::Duration;

/// `Experiment %q is progressing.`
pub fn progressing_message(name: &str) -> String {
    format!("Experiment \"{name}\" is progressing.")
}
/// `Experiment %q is running.`
pub fn running_message(name: &str) -> String {
    format!("Experiment \"{name}\" is running.")
}
/// `Experiment %q has successfully ran and completed.`
pub fn completed_message(name: &str) -> String {
    format!("Experiment \"{name}\" has successfully ran and completed.")
}
/// Upstream's `ExperimentCompleteReason`.
pub const COMPLETED_REASON: &str = "ExperimentCompleted";
/// Upstream's `ReplicaSetUpdatedReason`.
pub const PROGRESSING_REASON: &str = "ReplicaSetUpdated";
/// Upstream's `NewRSAvailableReason`.
pub const RUNNING_REASON: &str = "NewReplicaSetAvailable";
/// Upstream's `InvalidSpecReason`.
pub const INVALID_SPEC_REASON: &str = "InvalidSpec";

fn new_condition(
    kind: &str,
    status: &str,
    reason: &str,
    message: String,
    now: Timestamp,
) -> ExperimentCondition {
    ExperimentCondition {
        type_: Some(kind.into()),
        status: Some(status.into()),
        last_update_time: Some(stamp(now)),
        last_transition_time: Some(stamp(now)),
        reason: Some(reason.into()),
        message: Some(message),
    }
}

/// The condition of type `kind`.
pub fn condition<'a>(status: &'a ExperimentStatus, kind: &str) -> Option<&'a ExperimentCondition> {
    status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_.as_deref() == Some(kind))
}

fn remove_condition(status: &mut ExperimentStatus, kind: &str) {
    if let Some(cs) = status.conditions.as_mut() {
        cs.retain(|c| c.type_.as_deref() != Some(kind));
    }
}

/// Upstream's `SetExperimentCondition`: nothing changes when a condition of the type has the
/// same status and reason; the transition time is kept when the status is the same.
fn set_condition(status: &mut ExperimentStatus, mut c: ExperimentCondition) {
    let kind = c.type_.clone().unwrap_or_default();
    if let Some(cur) = condition(status, &kind) {
        if cur.status == c.status && cur.reason == c.reason {
            return;
        }
        if cur.status == c.status {
            c.last_transition_time = cur.last_transition_time.clone();
        }
    }
    remove_condition(status, &kind);
    status.conditions.get_or_insert_with(Vec::new).push(c);
}

/// An invalid spec: the `InvalidSpec` condition (replaced when its message changes), nothing
/// else (upstream leaves the phase as it is), and a Warning event when it is new.
pub fn set_invalid_spec(plan: &mut Plan, message: &str, now: Timestamp) {
    let prev = condition(&plan.status, cond_type::INVALID_SPEC).cloned();
    if prev.as_ref().and_then(|c| c.message.as_deref()) == Some(message) {
        return;
    }
    remove_condition(&mut plan.status, cond_type::INVALID_SPEC);
    set_condition(
        &mut plan.status,
        new_condition(
            cond_type::INVALID_SPEC,
            "True",
            INVALID_SPEC_REASON,
            message.to_string(),
            now,
        ),
    );
    plan.events
        .push(Event::warning(INVALID_SPEC_REASON, message.to_string()));
}

/// Order of template statuses, best first (upstream's `templateStatusOrder`).
fn template_rank(s: &str) -> usize {
    [
        code::SUCCESSFUL,
        code::RUNNING,
        code::PROGRESSING,
        code::ERROR,
        code::FAILED,
    ]
    .iter()
    .position(|c| *c == s)
    .unwrap_or(0)
}

/// Order of analysis phases, best first (upstream's `analysisStatusOrder`).
fn analysis_rank(s: &str) -> usize {
    [
        phase::SUCCESSFUL,
        phase::RUNNING,
        phase::PENDING,
        phase::INCONCLUSIVE,
        phase::ERROR,
        phase::FAILED,
    ]
    .iter()
    .position(|c| *c == s)
    .unwrap_or(0)
}

/// Upstream's `assessTemplates`: the worst template status as an experiment phase, with its
/// message.
fn assess_templates(ex: &Experiment, status: &ExperimentStatus) -> (&'static str, String) {
    let mut worst = code::SUCCESSFUL.to_string();
    let mut message = String::new();
    for t in ex.spec.templates.iter().flatten() {
        match super::template_status(status, t.name.as_deref().unwrap_or_default()) {
            None => {
                if template_rank(code::PROGRESSING) > template_rank(&worst) {
                    worst = code::PROGRESSING.into();
                }
            }
            Some(ts) => {
                let s = ts.status.clone().unwrap_or_default();
                if template_rank(&s) > template_rank(&worst) {
                    worst = s;
                    message = ts.message.clone().unwrap_or_default();
                }
            }
        }
    }
    let p = match worst.as_str() {
        code::PROGRESSING => phase::PENDING,
        code::FAILED => phase::FAILED,
        code::ERROR => phase::ERROR,
        code::SUCCESSFUL => phase::SUCCESSFUL,
        _ => phase::RUNNING,
    };
    (p, message)
}

/// Upstream's `assessAnalysisRuns`: the worst analysis phase (Successful when there are
/// none), Running instead of Pending.
fn assess_analyses(
    ex: &Experiment,
    status: &ExperimentStatus,
    unrecorded: &[ExperimentAnalysisRunStatus],
) -> (String, String) {
    let mut worst = phase::SUCCESSFUL.to_string();
    let mut message = String::new();
    for a in ex.spec.analyses.iter().flatten() {
        let run = status
            .analysis_runs
            .iter()
            .flatten()
            .chain(unrecorded)
            .find(|r| r.name == a.name);
        let p = run.and_then(|r| r.phase.clone()).unwrap_or_default();
        if analysis_rank(&p) > analysis_rank(&worst) {
            worst = p;
            message = run.and_then(|r| r.message.clone()).unwrap_or_default();
        }
    }
    if super::required_analyses_successful(ex, status)
        && analysis_rank(phase::RUNNING) > analysis_rank(&worst)
    {
        return (
            phase::SUCCESSFUL.into(),
            "Required AnalysisRuns completed".into(),
        );
    }
    if worst == phase::PENDING {
        worst = phase::RUNNING.into();
    }
    (worst, message)
}

/// The phase, message, `availableAt` and conditions of `plan.status` (whose template and
/// analysis statuses are this reconcile's; `unrecorded`: analyses that failed before their run
/// could be created), the phase-change event, and the requeue.
pub fn calculate(
    ex: &Experiment,
    plan: &mut Plan,
    unrecorded: &[ExperimentAnalysisRunStatus],
    now: Timestamp,
) {
    let old = ex.status.clone().unwrap_or_default();
    let status = &mut plan.status;
    match status.phase.as_deref().unwrap_or_default() {
        "" => status.phase = Some(phase::PENDING.into()),
        phase::PENDING | phase::RUNNING => {
            let (t_phase, t_msg) = assess_templates(ex, status);
            let (a_phase, a_msg) = assess_analyses(ex, status, unrecorded);
            if t_phase == phase::RUNNING && status.available_at.is_none() {
                status.available_at = Some(stamp(now));
            }
            let has_required = ex
                .spec
                .analyses
                .iter()
                .flatten()
                .any(|a| a.required_for_completion == Some(true));
            let (p, m) = if phase::is_completed(t_phase) {
                if t_phase == phase::SUCCESSFUL && (phase::is_completed(&a_phase) || has_required) {
                    (a_phase, a_msg)
                } else {
                    (t_phase.to_string(), t_msg)
                }
            } else if (phase::is_completed(&a_phase) && a_phase != phase::SUCCESSFUL)
                || super::required_analyses_successful(ex, status)
            {
                (a_phase, a_msg)
            } else {
                (t_phase.to_string(), t_msg)
            };
            status.phase = Some(p);
            status.message = Some(m).filter(|m| !m.is_empty());
        }
        _ => {}
    }
    conditions(ex, &old, status, now);
    if old.phase != status.phase {
        let new = status.phase.clone().unwrap_or_default();
        let msg = format!(
            "Experiment transitioned from {} -> {new}",
            old.phase.as_deref().unwrap_or_default()
        );
        let reason = format!("Experiment{new}");
        plan.events.push(
            if matches!(
                new.as_str(),
                phase::ERROR | phase::FAILED | phase::INCONCLUSIVE
            ) {
                Event::warning(&reason, msg)
            } else {
                Event::normal(&reason, msg)
            },
        );
    }
    if let Some(d) = enqueue_after(ex, &plan.status, now) {
        requeue(plan, d);
    }
}

/// Upstream's `calculateExperimentConditions`.
fn conditions(ex: &Experiment, old: &ExperimentStatus, new: &mut ExperimentStatus, now: Timestamp) {
    let name = kube_core::ResourceExt::name_any(ex);
    // Only reached with a valid spec: a stale InvalidSpec goes.
    remove_condition(new, cond_type::INVALID_SPEC);
    if new.phase.as_deref() == Some(phase::SUCCESSFUL) {
        set_condition(
            new,
            new_condition(
                cond_type::PROGRESSING,
                "False",
                COMPLETED_REASON,
                completed_message(&name),
                now,
            ),
        );
    } else if progressed(old, new) {
        let mut c = new_condition(
            cond_type::PROGRESSING,
            "True",
            PROGRESSING_REASON,
            progressing_message(&name),
            now,
        );
        if let Some(cur) = condition(old, cond_type::PROGRESSING) {
            if cur.status.as_deref() == Some("True") {
                c.last_transition_time = cur.last_transition_time.clone();
            }
            remove_condition(new, cond_type::PROGRESSING);
        }
        set_condition(new, c);
    } else if old.available_at.is_some() && !super::passed_duration(ex, old, now).0 {
        set_condition(
            new,
            new_condition(
                cond_type::PROGRESSING,
                "True",
                RUNNING_REASON,
                running_message(&name),
                now,
            ),
        );
    }
}

/// Upstream's `ExperimentProgressing`: a new template status, or changed replica counts.
fn progressed(old: &ExperimentStatus, new: &ExperimentStatus) -> bool {
    let old_list = old.template_statuses.as_deref().unwrap_or_default();
    let new_list = new.template_statuses.as_deref().unwrap_or_default();
    if old_list.len() < new_list.len() {
        return true;
    }
    old_list.iter().any(|o| {
        new_list.iter().find(|n| n.name == o.name).is_some_and(|n| {
            (
                o.replicas,
                o.updated_replicas,
                o.ready_replicas,
                o.available_replicas,
            ) != (
                n.replicas,
                n.updated_replicas,
                n.ready_replicas,
                n.available_replicas,
            )
        })
    })
}

/// Upstream's `calculateEnqueueDuration`: the earliest of `availableAt + duration` and, for
/// templates short of their replicas, `lastTransitionTime + progressDeadlineSeconds`; nothing
/// once the Experiment terminates. A moment is added so that the look comes after the instant.
fn enqueue_after(ex: &Experiment, status: &ExperimentStatus, now: Timestamp) -> Option<Duration> {
    if super::is_terminating(ex, status) {
        return None;
    }
    let margin = Duration::from_millis(100);
    let mut best: Option<Duration> = None;
    let mut consider = |d: Duration| best = Some(best.map_or(d, |b| b.min(d)));
    if let (false, Some(left)) = super::passed_duration(ex, status, now) {
        consider(left + margin);
    }
    let pds = i64::from(super::progress_deadline_seconds(ex));
    for t in ex.spec.templates.iter().flatten() {
        let Some(ts) = super::template_status(status, t.name.as_deref().unwrap_or_default()) else {
            continue;
        };
        if !matches!(
            ts.status.as_deref(),
            Some(code::PROGRESSING | code::RUNNING)
        ) {
            continue;
        }
        let desired = super::desired_replicas(ex, status, t);
        let (Some(ltt), true) = (
            &ts.last_transition_time,
            ts.available_replicas.unwrap_or(0) != desired,
        ) else {
            continue;
        };
        let at = ltt
            .0
            .checked_add(SignedDuration::from_secs(pds))
            .unwrap_or(ltt.0);
        let left = Duration::try_from(at.duration_since(now)).unwrap_or_default();
        consider(left + margin);
    }
    best
}
