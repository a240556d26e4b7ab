//! Why a Rollout is waiting, in words, read from its spec and status (pure).
//!
//! This reads what the controller wrote (pause conditions, the step, the analysis run
//! status, replica counts, conditions). It is one function so that it can be replaced by the
//! planner's own account of what a step waits for, once the planner reports it.

use crate::api::{Rollout, pause_reason, rollout_condition_type as ctype};
use crate::cli::info::RolloutInfo;
use crate::cli::timeline::duration_text;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use serde::Serialize;

/// What the Rollout waits for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Waiting {
    /// One or two sentences.
    pub text: String,
    /// When the wait ends by itself (a timed pause, automatic promotion), if it does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<Timestamp>,
}

fn words(text: impl Into<String>) -> Option<Waiting> {
    Some(Waiting {
        text: text.into(),
        until: None,
    })
}

fn condition<'a>(ro: &'a Rollout, kind: &str) -> Option<&'a crate::api::RolloutCondition> {
    ro.status
        .as_ref()?
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_.as_deref() == Some(kind))
}

fn stable_revision(info: &RolloutInfo) -> Option<i64> {
    info.replica_sets
        .iter()
        .find(|rs| rs.stable)
        .map(|rs| rs.revision)
}

/// Why `ro` is waiting now, or `None` when it is not (Healthy and complete).
pub fn waiting(ro: &Rollout, info: &RolloutInfo) -> Option<Waiting> {
    let st = ro.status.clone().unwrap_or_default();
    let desired = ro.replicas_or_default();
    if let Some(c) = condition(ro, ctype::INVALID_SPEC)
        && c.status.as_deref() == Some("True")
    {
        return words(format!(
            "The controller refuses this spec (InvalidSpec): {}",
            c.message.clone().unwrap_or_default()
        ));
    }
    if st.abort == Some(true) {
        let stable = match stable_revision(info) {
            Some(r) => format!("The stable revision {r} serves all traffic. "),
            None => String::new(),
        };
        return words(format!(
            "Aborted: {}. {stable}Retry goes to the new version again; Rollback reverts the spec.",
            info.message.trim_end_matches('.')
        ));
    }
    let generation = ro.metadata.generation.unwrap_or(0);
    if st
        .observed_generation
        .as_deref()
        .and_then(|g| g.parse::<i64>().ok())
        .is_some_and(|o| o < generation)
    {
        return words("Waiting for the controller to see the latest change of the spec.");
    }
    if ro.spec.paused == Some(true) {
        return words("Paused by a user (spec.paused): Promote resumes it.");
    }
    let step_number = st.current_step_index.map(|i| i.max(0) + 1);
    let step = st
        .current_step_index
        .and_then(|i| ro.canary_steps().get(i.max(0) as usize));
    for pc in st.pause_conditions.iter().flatten() {
        let started = pc.start_time.as_ref().map(|t| t.0);
        match pc.reason.as_deref() {
            Some(pause_reason::CANARY_PAUSE_STEP) => {
                let n = step_number.unwrap_or(0);
                match step.and_then(|s| s.pause.as_ref()?.duration_seconds()) {
                    Some(Ok(secs)) => {
                        let until = started
                            .and_then(|t| t.checked_add(SignedDuration::from_secs(secs)).ok());
                        return Some(Waiting {
                            text: format!(
                                "Paused at step {n} (a pause of {}): it goes on by itself when the pause ends, or Promote now.",
                                duration_text(secs)
                            ),
                            until,
                        });
                    }
                    _ => {
                        return words(format!(
                            "Waits for promote: step {n} is a pause without a duration."
                        ));
                    }
                }
            }
            Some(pause_reason::BLUE_GREEN_PAUSE) => {
                let bg = ro.blue_green();
                let auto = bg
                    .filter(|b| b.auto_promotion_enabled != Some(false))
                    .and_then(|b| b.auto_promotion_seconds);
                return match auto {
                    Some(secs) => {
                        let until = started.and_then(|t| {
                            t.checked_add(SignedDuration::from_secs(secs.into())).ok()
                        });
                        Some(Waiting {
                            text: format!(
                                "The preview is ready: the active Service switches to it automatically {} after the pause began, or Promote now.",
                                duration_text(secs.into())
                            ),
                            until,
                        })
                    }
                    None => words(
                        "Waits for promote: the preview is ready, and the active Service switches to it on promotion.",
                    ),
                };
            }
            Some(pause_reason::INCONCLUSIVE_ANALYSIS) => {
                return words(
                    "An analysis was inconclusive: Promote to go on, or Abort to go back to the stable version.",
                );
            }
            Some(other) => return words(format!("Paused ({other}): Promote resumes it.")),
            None => {}
        }
    }
    let canary = st.canary.clone().unwrap_or_default();
    if let Some(run) = &canary.current_step_analysis_run_status
        && step.is_some_and(|s| s.analysis.is_some())
        && run.status.as_deref() != Some("Successful")
    {
        return words(format!(
            "Waits for the analysis of step {}: AnalysisRun {} is {}.",
            step_number.unwrap_or(0),
            run.name.clone().unwrap_or_default(),
            run.status.clone().unwrap_or_else(|| "Pending".into())
        ));
    }
    let bgs = st.blue_green.clone().unwrap_or_default();
    for (run, what) in [
        (&bgs.pre_promotion_analysis_run_status, "pre-promotion"),
        (&bgs.post_promotion_analysis_run_status, "post-promotion"),
    ] {
        if let Some(run) = run
            && !matches!(
                run.status.as_deref(),
                Some("Successful" | "Failed" | "Error")
            )
        {
            return words(format!(
                "Waits for the {what} analysis: AnalysisRun {} is {}.",
                run.name.clone().unwrap_or_default(),
                run.status.clone().unwrap_or_else(|| "Pending".into())
            ));
        }
    }
    let updating = st.updating();
    let new_rs = info
        .replica_sets
        .iter()
        .find(|rs| rs.canary || rs.preview || (rs.active && !rs.stable));
    if let Some(rs) = new_rs
        && updating
    {
        let spec = rs.replicas.max(rs.pods.len() as i32);
        if rs.available < spec {
            return words(format!(
                "Waits for the new version's pods: {} of {} available in ReplicaSet {}.",
                rs.available, spec, rs.name
            ));
        }
    }
    let available = st.available_replicas.unwrap_or(0);
    let updated = st.updated_replicas.unwrap_or(0);
    if info.status == "Progressing" {
        if updated < desired {
            return words(format!(
                "Waits for pods of the new version: {updated} of {desired} updated."
            ));
        }
        if available < desired {
            return words(format!(
                "Waits for pods to become available: {available} of {desired}."
            ));
        }
        if let Some(old) = info
            .replica_sets
            .iter()
            .find(|rs| !rs.stable && rs.replicas > 0 && rs.scale_down_deadline.is_some())
        {
            return words(format!(
                "Waits to scale down ReplicaSet {} (scale-down delay, until {}).",
                old.name,
                old.scale_down_deadline.clone().unwrap_or_default()
            ));
        }
        if !info.message.is_empty() {
            return words(format!(
                "Progressing: {}.",
                info.message.trim_end_matches('.')
            ));
        }
        return words("Progressing.");
    }
    if info.status == "Degraded" {
        return words(format!("Degraded: {}.", info.message.trim_end_matches('.')));
    }
    if updating {
        return words(format!(
            "{}: {}.",
            info.status,
            info.message.trim_end_matches('.')
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::info::Model;
    use serde_json::json;

    fn ro(status: serde_json::Value, paused: bool) -> Rollout {
        serde_json::from_value(json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
            "metadata": {"name": "r", "namespace": "ns", "uid": "u1", "generation": 2},
            "spec": {"replicas": 5, "paused": paused, "strategy": {"canary": {"steps": [
                {"setWeight": 20}, {"pause": {}}, {"setWeight": 40}, {"pause": {"duration": "10s"}},
                {"analysis": {"templates": [{"templateName": "t"}]}}]}}},
            "status": status
        }))
        .unwrap()
    }

    fn why(r: &Rollout) -> Option<Waiting> {
        let info = RolloutInfo::new(&Model {
            rollout: r.clone(),
            ..Default::default()
        });
        waiting(r, &info)
    }

    #[test]
    fn an_indefinite_pause_waits_for_promote() {
        let r = ro(
            json!({"observedGeneration": "2", "currentStepIndex": 1, "phase": "Paused",
                   "currentPodHash": "b", "stableRS": "a",
                   "pauseConditions": [{"reason": "CanaryPauseStep", "startTime": "2024-01-01T00:00:00Z"}]}),
            false,
        );
        let w = why(&r).unwrap();
        assert_eq!(
            w.text,
            "Waits for promote: step 2 is a pause without a duration."
        );
        assert_eq!(w.until, None);
    }

    #[test]
    fn a_timed_pause_says_when_it_ends() {
        let r = ro(
            json!({"observedGeneration": "2", "currentStepIndex": 3, "phase": "Paused",
                   "currentPodHash": "b", "stableRS": "a",
                   "pauseConditions": [{"reason": "CanaryPauseStep", "startTime": "2024-01-01T00:00:00Z"}]}),
            false,
        );
        let w = why(&r).unwrap();
        assert_eq!(
            w.text,
            "Paused at step 4 (a pause of 10s): it goes on by itself when the pause ends, or Promote now."
        );
        assert_eq!(w.until, Some("2024-01-01T00:00:10Z".parse().unwrap()));
    }

    #[test]
    fn user_pause_abort_analysis_and_observation() {
        let r = ro(json!({"observedGeneration": "2"}), true);
        assert!(why(&r).unwrap().text.contains("spec.paused"));
        let r = ro(
            json!({"observedGeneration": "2", "abort": true, "phase": "Degraded",
                   "message": "RolloutAborted: Rollout aborted update to revision 2"}),
            false,
        );
        let t = why(&r).unwrap().text;
        assert!(
            t.starts_with("Aborted: RolloutAborted: Rollout aborted update to revision 2."),
            "{t}"
        );
        let r = ro(
            json!({"observedGeneration": "2", "currentStepIndex": 4, "currentPodHash": "b",
                   "stableRS": "a", "phase": "Progressing",
                   "canary": {"currentStepAnalysisRunStatus": {"name": "r-2-4", "status": "Running"}}}),
            false,
        );
        assert_eq!(
            why(&r).unwrap().text,
            "Waits for the analysis of step 5: AnalysisRun r-2-4 is Running."
        );
        let r = ro(json!({"observedGeneration": "1"}), false);
        assert!(why(&r).unwrap().text.contains("see the latest change"));
    }

    #[test]
    fn healthy_is_not_waiting() {
        let r = ro(
            json!({"observedGeneration": "2", "currentStepIndex": 5, "phase": "Healthy",
                   "currentPodHash": "a", "stableRS": "a", "availableReplicas": 5,
                   "updatedReplicas": 5, "replicas": 5}),
            false,
        );
        assert_eq!(why(&r), None);
    }
}
