//! Rollout conditions, reasons, messages and the phase rules, as upstream writes them
//! (`utils/conditions/conditions.go`, `utils/rollout/rolloututil.go`). Argo CD and the CLI read
//! these strings, so they are kept verbatim.

use crate::api::rollout_condition_type as ctype;
use crate::api::{RolloutCondition, RolloutSpec, RolloutStatus, rollout_phase};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// Reasons (and message formats) of conditions and events.
pub mod reason {
    pub const INVALID_SPEC: &str = "InvalidSpec";
    pub const AVAILABLE: &str = "AvailableReason";
    pub const NOT_AVAILABLE_MESSAGE: &str = "Rollout does not have minimum availability";
    pub const AVAILABLE_MESSAGE: &str = "Rollout has minimum availability";
    pub const REPLICA_SET_UPDATED: &str = "ReplicaSetUpdated";
    pub const FAILED_RS_CREATE: &str = "ReplicaSetCreateError";
    pub const NEW_REPLICA_SET: &str = "NewReplicaSetCreated";
    pub const FOUND_NEW_RS: &str = "FoundNewReplicaSet";
    pub const ROLLOUT_UPDATED: &str = "RolloutUpdated";
    pub const ROLLOUT_COMPLETED: &str = "RolloutCompleted";
    pub const ROLLOUT_NOT_COMPLETED: &str = "RolloutNotCompleted";
    pub const ROLLOUT_HEALTHY: &str = "RolloutHealthy";
    pub const ROLLOUT_HEALTHY_MESSAGE: &str = "Rollout is healthy";
    pub const ROLLOUT_NOT_HEALTHY_MESSAGE: &str = "Rollout is not healthy";
    pub const ROLLOUT_ABORTED: &str = "RolloutAborted";
    pub const ROLLOUT_RETRY: &str = "RolloutRetry";
    pub const ROLLOUT_RETRY_MESSAGE: &str = "Retrying Rollout after abort";
    pub const ROLLOUT_PAUSED: &str = "RolloutPaused";
    pub const ROLLOUT_PAUSED_MESSAGE: &str = "Rollout is paused";
    pub const ROLLOUT_RESUMED: &str = "RolloutResumed";
    pub const ROLLOUT_RESUMED_MESSAGE: &str = "Rollout is resumed";
    pub const REPLICA_SET_NOT_AVAILABLE: &str = "ReplicaSetNotAvailable";
    pub const ROLLOUT_STEP_COMPLETED: &str = "RolloutStepCompleted";
    pub const NEW_RS_AVAILABLE: &str = "NewReplicaSetAvailable";
    pub const TIMED_OUT: &str = "ProgressDeadlineExceeded";
    pub const SCALING_REPLICA_SET: &str = "ScalingReplicaSet";
    pub const SKIP_STEPS: &str = "SkipSteps";
    pub const SERVICE_REFERENCE: &str = "ServiceReferenceError";
}

/// A new condition stamped `now` (both times).
pub fn new_condition(
    kind: &str,
    status: &str,
    reason: &str,
    message: impl Into<String>,
    now: &Time,
) -> RolloutCondition {
    RolloutCondition {
        type_: Some(kind.to_string()),
        status: Some(status.to_string()),
        reason: Some(reason.to_string()),
        message: Some(message.into()),
        last_update_time: Some(now.clone()),
        last_transition_time: Some(now.clone()),
    }
}

/// The condition of a type.
pub fn get<'a>(status: &'a RolloutStatus, kind: &str) -> Option<&'a RolloutCondition> {
    status
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_.as_deref() == Some(kind))
}

fn is(c: Option<&RolloutCondition>, status: &str, reason: &str) -> bool {
    c.is_some_and(|c| c.status.as_deref() == Some(status) && c.reason.as_deref() == Some(reason))
}

/// Upstream's `SetRolloutCondition`: no change when a condition of the type exists with the
/// same status and reason; otherwise replace it (keeping its transition time when the status
/// is unchanged) and move it to the end. Returns whether anything changed.
pub fn set(status: &mut RolloutStatus, mut cond: RolloutCondition) -> bool {
    let kind = cond.type_.clone().unwrap_or_default();
    let current = get(status, &kind).cloned();
    if let Some(cur) = &current {
        if cur.status == cond.status && cur.reason == cond.reason {
            return false;
        }
        if cur.status == cond.status {
            cond.last_transition_time = cur.last_transition_time.clone();
        }
    }
    remove(status, &kind);
    status.conditions.get_or_insert_with(Vec::new).push(cond);
    true
}

/// Removes the condition of a type.
pub fn remove(status: &mut RolloutStatus, kind: &str) {
    if let Some(cs) = status.conditions.as_mut() {
        cs.retain(|c| c.type_.as_deref() != Some(kind));
        if cs.is_empty() {
            status.conditions = None;
        }
    }
}

/// Whether the Progressing condition has the given reason.
pub fn progressing_reason_is(status: &RolloutStatus, reason: &str) -> bool {
    get(status, ctype::PROGRESSING).is_some_and(|c| c.reason.as_deref() == Some(reason))
}

/// Upstream's `CalculateRolloutPhase`: the phase and message for a spec and (new) status.
pub fn phase(spec: &RolloutSpec, status: &RolloutStatus) -> (&'static str, String) {
    for c in status.conditions.iter().flatten() {
        if c.type_.as_deref() == Some(ctype::INVALID_SPEC) {
            return (
                rollout_phase::DEGRADED,
                format!(
                    "{}: {}",
                    ctype::INVALID_SPEC,
                    c.message.as_deref().unwrap_or_default()
                ),
            );
        }
        let r = c.reason.as_deref().unwrap_or_default();
        if r == reason::ROLLOUT_ABORTED || r == reason::TIMED_OUT {
            return (
                rollout_phase::DEGRADED,
                format!("{r}: {}", c.message.as_deref().unwrap_or_default()),
            );
        }
    }
    if spec.paused == Some(true) {
        return (rollout_phase::PAUSED, "manually paused".into());
    }
    if let Some(pc) = status.pause_conditions.as_ref().and_then(|p| p.first()) {
        return (rollout_phase::PAUSED, pc.reason.clone().unwrap_or_default());
    }
    if let Some(restart_at) = &spec.restart_at
        && status.restarted_at.as_ref() != Some(restart_at)
    {
        return (rollout_phase::PROGRESSING, "rollout is restarting".into());
    }
    let replicas = spec.replicas.unwrap_or(crate::api::defaults::REPLICAS);
    let updated = status.updated_replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    if updated < replicas {
        return (
            rollout_phase::PROGRESSING,
            "more replicas need to be updated".into(),
        );
    }
    if available < updated {
        return (
            rollout_phase::PROGRESSING,
            "updated replicas are still becoming available".into(),
        );
    }
    let stable = status.stable_rs.as_deref().unwrap_or_default();
    let current = status.current_pod_hash.as_deref().unwrap_or_default();
    let strategy = spec.strategy.as_ref();
    if let Some(bg) = strategy.and_then(|s| s.blue_green.as_ref()) {
        let active = status
            .blue_green
            .as_ref()
            .and_then(|b| b.active_selector.as_deref())
            .unwrap_or_default();
        if active.is_empty() || active != current {
            return (
                rollout_phase::PROGRESSING,
                "active service cutover pending".into(),
            );
        }
        if stable.is_empty() || stable != current {
            let waiting_post = bg.post_promotion_analysis.is_some()
                && !status
                    .blue_green
                    .as_ref()
                    .and_then(|b| b.post_promotion_analysis_run_status.as_ref())
                    .and_then(|s| s.status.as_deref())
                    .is_some_and(crate::api::analysis_phase::is_completed);
            if waiting_post {
                return (
                    rollout_phase::PROGRESSING,
                    "waiting for analysis to complete".into(),
                );
            }
            return (
                rollout_phase::PROGRESSING,
                "waiting for post-promotion verification to complete".into(),
            );
        }
    } else if let Some(canary) = strategy.and_then(|s| s.canary.as_ref()) {
        if canary.traffic_routing.is_none() && status.replicas.unwrap_or(0) > updated {
            return (
                rollout_phase::PROGRESSING,
                "old replicas are pending termination".into(),
            );
        }
        if stable.is_empty() || stable != current {
            return (
                rollout_phase::PROGRESSING,
                "waiting for all steps to complete".into(),
            );
        }
    }
    (rollout_phase::HEALTHY, String::new())
}

/// The Paused/Progressing bookkeeping upstream does at the start of every reconcile
/// (`checkPausedConditions`), applied to `status` (which holds the previous conditions).
/// Returns whether a retry after an abort was detected (for the RolloutRetry event).
pub fn check_paused(
    spec: &RolloutSpec,
    old: &RolloutStatus,
    status: &mut RolloutStatus,
    now: &Time,
) -> bool {
    let prog = get(old, ctype::PROGRESSING);
    let prog_paused = prog.is_some_and(|c| c.reason.as_deref() == Some(reason::ROLLOUT_PAUSED));
    let is_paused =
        old.pause_conditions.as_ref().is_some_and(|p| !p.is_empty()) || spec.paused == Some(true);
    let abort_cond = prog.is_some_and(|c| c.reason.as_deref() == Some(reason::ROLLOUT_ABORTED));
    if is_paused != prog_paused && !abort_cond {
        let c = if is_paused {
            new_condition(
                ctype::PROGRESSING,
                "Unknown",
                reason::ROLLOUT_PAUSED,
                reason::ROLLOUT_PAUSED_MESSAGE,
                now,
            )
        } else {
            new_condition(
                ctype::PROGRESSING,
                "Unknown",
                reason::ROLLOUT_RESUMED,
                reason::ROLLOUT_RESUMED_MESSAGE,
                now,
            )
        };
        set(status, c);
    }
    let mut retried = false;
    if old.abort != Some(true) && abort_cond {
        retried = set(
            status,
            new_condition(
                ctype::PROGRESSING,
                "Unknown",
                reason::ROLLOUT_RETRY,
                reason::ROLLOUT_RETRY_MESSAGE,
                now,
            ),
        );
    }
    let paused_true = is(get(old, ctype::PAUSED), "True", reason::ROLLOUT_PAUSED)
        || get(old, ctype::PAUSED).is_some_and(|c| c.status.as_deref() == Some("True"));
    if is_paused != paused_true && !abort_cond {
        let st = if is_paused { "True" } else { "False" };
        set(
            status,
            new_condition(
                ctype::PAUSED,
                st,
                reason::ROLLOUT_PAUSED,
                reason::ROLLOUT_PAUSED_MESSAGE,
                now,
            ),
        );
    }
    retried
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::PauseCondition;

    fn t(s: i64) -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(s).unwrap())
    }

    #[test]
    fn set_keeps_transition_time_when_status_unchanged() {
        let mut st = RolloutStatus::default();
        assert!(set(
            &mut st,
            new_condition("Progressing", "True", "A", "a", &t(10))
        ));
        assert!(!set(
            &mut st,
            new_condition("Progressing", "True", "A", "other", &t(20))
        ));
        assert!(set(
            &mut st,
            new_condition("Progressing", "True", "B", "b", &t(30))
        ));
        let c = get(&st, "Progressing").unwrap();
        assert_eq!(c.last_transition_time, Some(t(10)));
        assert_eq!(c.last_update_time, Some(t(30)));
        assert!(set(
            &mut st,
            new_condition("Progressing", "False", "C", "c", &t(40))
        ));
        assert_eq!(
            get(&st, "Progressing").unwrap().last_transition_time,
            Some(t(40))
        );
    }

    #[test]
    fn phase_rules_in_upstream_order() {
        let spec = RolloutSpec {
            replicas: Some(5),
            ..Default::default()
        };
        let mut st = RolloutStatus {
            updated_replicas: Some(5),
            available_replicas: Some(5),
            replicas: Some(5),
            ..Default::default()
        };
        assert_eq!(phase(&spec, &st).0, "Healthy");
        st.pause_conditions = Some(vec![PauseCondition {
            reason: Some("CanaryPauseStep".into()),
            start_time: Some(t(1)),
        }]);
        assert_eq!(phase(&spec, &st), ("Paused", "CanaryPauseStep".to_string()));
        set(
            &mut st,
            new_condition(
                "Progressing",
                "False",
                reason::ROLLOUT_ABORTED,
                "Rollout aborted update to revision 2",
                &t(2),
            ),
        );
        assert_eq!(
            phase(&spec, &st),
            (
                "Degraded",
                "RolloutAborted: Rollout aborted update to revision 2".to_string()
            )
        );
        let mut st2 = RolloutStatus {
            updated_replicas: Some(2),
            ..Default::default()
        };
        assert_eq!(phase(&spec, &st2).1, "more replicas need to be updated");
        st2.updated_replicas = Some(5);
        st2.available_replicas = Some(4);
        assert_eq!(
            phase(&spec, &st2).1,
            "updated replicas are still becoming available"
        );
    }
}
