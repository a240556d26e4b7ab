//! Triggers: which lifecycle moment fires which trigger, and which of its conditions hold.
//!
//! As upstream, a trigger fires when the controller records an event on the Rollout: the
//! event's reason, in kebab case with `on-` before it, names the trigger (`RolloutCompleted`
//! fires `on-rollout-completed`, `AnalysisRunFailed` fires `on-analysis-run-failed`). Each
//! condition of the trigger then sends its templates when its `when` (expr-lang, with the
//! variable `rollout`) holds or is empty.
//!
//! Each notification has a key, recorded once sent (the `notified.notifications.argoproj.io` annotation): the trigger, the
//! condition's index, the moment and the destination. The moment is the `oncePer` value when
//! the condition has one (so it sends once per distinct value), otherwise the Rollout's
//! revision and current step index (as the recording reconcile read them) and a digest of the
//! event (reason and message): the same event recorded again for the same step of the same
//! revision (a stale replay, or a new leader recording again what the old one recorded) sends
//! once; each pause of an update, a later revision and a rollback (which gets a new revision)
//! send again. A step completed a second time in one revision (after an abort and a retry) is
//! not notified again.

use super::subscriptions::Destination;
use rollouts_core::analysis::condition::{expand_member_shorthand, json_to_value};
use serde_json::Value as Json;

/// A `when` or `oncePer` that could not be evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TriggerError {
    #[error("trigger {trigger:?}: {field} {expr:?}: {message}")]
    Expr {
        trigger: String,
        field: &'static str,
        expr: String,
        message: String,
    },
    #[error("trigger {trigger:?}: when {expr:?} is a {got}, not a bool")]
    NotBool {
        trigger: String,
        expr: String,
        got: String,
    },
    #[error("trigger {0:?} is not defined in the notification ConfigMap")]
    Unknown(String),
}

/// Upstream's `translateReasonToTrigger`: `RolloutStepCompleted` → `on-rollout-step-completed`.
pub fn trigger_for_reason(reason: &str) -> String {
    let chars: Vec<char> = reason.chars().collect();
    let mut out = String::from("on-");
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            let prev = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            if prev.is_ascii_lowercase() || prev.is_ascii_digit() || next_lower {
                out.push('-');
            }
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// A condition that holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fired {
    pub condition: usize,
    pub templates: Vec<String>,
    /// The moment (see the module docs).
    pub moment: String,
}

fn eval(
    trigger: &str,
    field: &'static str,
    expr_text: &str,
    rollout: &expr::Value,
) -> Result<expr::Value, TriggerError> {
    let err = |message: String| TriggerError::Expr {
        trigger: trigger.into(),
        field,
        expr: expr_text.into(),
        message,
    };
    rollouts_core::analysis::condition::check_limits(expr_text).map_err(|e| err(e.to_string()))?;
    let program = expr::compile(&expand_member_shorthand(expr_text)).map_err(|e| {
        err(e
            .to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" "))
    })?;
    let mut ctx = expr::Context::default();
    ctx.insert("rollout", rollout.clone());
    expr::Environment::new()
        .run(&program, &ctx)
        .map_err(|e| err(e.to_string()))
}

/// The project's FNV-1a (the pod-template hash's), stable across versions and platforms.
fn digest(s: &str) -> String {
    format!("{:08x}", crate::plan::hash::fnv1a32(s.as_bytes()))
}

/// The conditions of `trigger` that hold for `rollout`, for an event `reason`/`message`.
pub fn evaluate(
    trigger: &str,
    conditions: &[super::config::Condition],
    rollout: &Json,
    reason: &str,
    message: &str,
) -> Result<Vec<Fired>, TriggerError> {
    let value = json_to_value(rollout);
    let revision = rollout
        .pointer("/metadata/annotations/rollout.argoproj.io~1revision")
        .and_then(Json::as_str)
        .unwrap_or("");
    let step = rollout
        .pointer("/status/currentStepIndex")
        .and_then(Json::as_i64)
        .map(|i| i.to_string())
        .unwrap_or_default();
    let mut out = Vec::new();
    for (i, c) in conditions.iter().enumerate() {
        if !c.when.trim().is_empty() {
            match eval(trigger, "when", &c.when, &value)? {
                expr::Value::Bool(true) => {}
                expr::Value::Bool(false) => continue,
                other => {
                    return Err(TriggerError::NotBool {
                        trigger: trigger.into(),
                        expr: c.when.clone(),
                        got: format!("{other:?}").chars().take(40).collect(),
                    });
                }
            }
        }
        let moment = if c.once_per.trim().is_empty() {
            format!(
                "{revision}/{step}/{}",
                digest(&format!("{reason}\n{message}"))
            )
        } else {
            let v = eval(trigger, "oncePer", &c.once_per, &value)?;
            match v {
                expr::Value::String(s) => s,
                expr::Value::Integer(i) => i.to_string(),
                expr::Value::Float(f) => f.to_string(),
                expr::Value::Bool(b) => b.to_string(),
                expr::Value::Nil => String::new(),
                other => digest(&format!("{other:?}")),
            }
        };
        out.push(Fired {
            condition: i,
            templates: c.send.clone(),
            moment,
        });
    }
    Ok(out)
}

/// The record key of one notification.
pub fn key(trigger: &str, fired: &Fired, dest: &Destination) -> String {
    format!(
        "{trigger}:{}:{}:{}:{}",
        fired.condition, fired.moment, dest.service, dest.recipient
    )
}

#[cfg(test)]
mod tests {
    use super::super::config::Condition;
    use super::*;
    use serde_json::json;

    #[test]
    fn reasons_translate_as_upstream() {
        for (r, t) in [
            ("RolloutUpdated", "on-rollout-updated"),
            ("RolloutStepCompleted", "on-rollout-step-completed"),
            ("RolloutPaused", "on-rollout-paused"),
            ("RolloutCompleted", "on-rollout-completed"),
            ("RolloutAborted", "on-rollout-aborted"),
            ("ScalingReplicaSet", "on-scaling-replica-set"),
            ("AnalysisRunRunning", "on-analysis-run-running"),
            ("AnalysisRunFailed", "on-analysis-run-failed"),
            ("AnalysisRunError", "on-analysis-run-error"),
        ] {
            assert_eq!(trigger_for_reason(r), t);
        }
    }

    fn ro(replicas: i64, generation: i64) -> Json {
        json!({"metadata": {"name": "web", "generation": generation, "resourceVersion": "41",
                            "annotations": {"rollout.argoproj.io/revision": "3"}},
               "spec": {"replicas": replicas}, "status": {"phase": "Healthy", "currentStepIndex": 2}})
    }

    fn cond(when: &str, once_per: &str) -> Condition {
        Condition {
            when: when.into(),
            send: vec!["t".into()],
            once_per: once_per.into(),
            description: String::new(),
        }
    }

    #[test]
    fn when_conditions() {
        let conds = [
            cond("", ""),
            cond("rollout.spec.replicas > 3", ""),
            cond("rollout.status.phase == 'Degraded'", ""),
        ];
        let fired = evaluate("on-x", &conds, &ro(5, 1), "R", "m").unwrap();
        assert_eq!(
            fired.iter().map(|f| f.condition).collect::<Vec<_>>(),
            vec![0, 1]
        );
        let fired = evaluate("on-x", &conds, &ro(2, 1), "R", "m").unwrap();
        assert_eq!(fired.len(), 1);
    }

    #[test]
    fn bad_when_is_an_error_naming_the_trigger() {
        let e = evaluate(
            "on-x",
            &[cond("rollout.spec.replicas >", "")],
            &ro(1, 1),
            "R",
            "m",
        )
        .unwrap_err();
        assert!(
            matches!(&e, TriggerError::Expr { trigger, field: "when", .. } if trigger == "on-x"),
            "{e}"
        );
        let e = evaluate(
            "on-x",
            &[cond("rollout.spec.replicas", "")],
            &ro(1, 1),
            "R",
            "m",
        )
        .unwrap_err();
        assert!(matches!(e, TriggerError::NotBool { .. }), "{e}");
    }

    #[test]
    fn once_per_and_moments() {
        let c = [cond("", "rollout.metadata.generation")];
        let a = evaluate("on-x", &c, &ro(1, 7), "R", "first").unwrap();
        let b = evaluate("on-x", &c, &ro(1, 7), "R", "second").unwrap();
        let d = evaluate("on-x", &c, &ro(1, 8), "R", "first").unwrap();
        assert_eq!(a[0].moment, "7");
        assert_eq!(
            a[0].moment, b[0].moment,
            "once per generation whatever the event"
        );
        assert_ne!(a[0].moment, d[0].moment);
        // Without oncePer: the revision and the event.
        let c = [cond("", "")];
        let a = evaluate("on-x", &c, &ro(1, 7), "R", "step 1").unwrap();
        let b = evaluate("on-x", &c, &ro(1, 7), "R", "step 1").unwrap();
        let d = evaluate("on-x", &c, &ro(1, 7), "R", "step 2").unwrap();
        assert_eq!(a, b);
        assert_ne!(a[0].moment, d[0].moment);
        assert!(a[0].moment.starts_with("3/2/"));
        // The same event at another step (a second pause) is another moment; read from a
        // later version of the Rollout at the same step, it is the same one.
        let mut later = ro(1, 7);
        later["status"]["currentStepIndex"] = json!(4);
        let e = evaluate("on-x", &c, &later, "R", "step 1").unwrap();
        assert_ne!(a[0].moment, e[0].moment);
        let mut same = ro(1, 7);
        same["metadata"]["resourceVersion"] = json!("57");
        let f = evaluate("on-x", &c, &same, "R", "step 1").unwrap();
        assert_eq!(a[0].moment, f[0].moment);
        let dest = Destination {
            service: "slack".into(),
            recipient: "ops".into(),
        };
        assert!(key("on-x", &a[0], &dest).starts_with("on-x:0:3/2/"));
        assert!(key("on-x", &a[0], &dest).ends_with(":slack:ops"));
    }
}
