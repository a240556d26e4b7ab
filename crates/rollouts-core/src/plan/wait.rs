//! [`Wait`]: why a Rollout is not advancing, as a plan answers it ([`super::Plan::wait`]) for
//! people: `kubectl-rollouts get`, the controller's logs and its `rollout_wait` metric.

use k8s_openapi::jiff::Timestamp;
use std::fmt;

/// Why a Rollout is not advancing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Wait {
    /// Pods are coming up or going away: the new (canary, preview) and the stable (active)
    /// ReplicaSets' available pods against the counts wanted now, as `(have, want)`.
    Replicas {
        canary: (i32, i32),
        stable: (i32, i32),
    },
    /// A timed pause (a `pause` step with a duration, `autoPromotionSeconds`) until then.
    PauseUntil(Timestamp),
    /// An indefinite pause: it waits for `kubectl rollouts promote`.
    Indefinite,
    /// An AnalysisRun must succeed first (or an inconclusive one be promoted).
    Analysis { run: String, phase: String },
    /// The Experiment of an `experiment` step must succeed first (or an inconclusive one be
    /// promoted); an empty name: not created yet.
    Experiment { name: String, phase: String },
    /// The traffic router cannot be driven (a missing VirtualService, a route...); the
    /// message names the object.
    TrafficBlocked(String),
    /// Paused by the user: `spec.paused` (`kubectl rollouts pause`).
    UserPaused,
    /// Aborted: the stable version runs; it waits for `retry` or a new update.
    Aborted,
    /// The spec (or something it references) is invalid; the InvalidSpec message.
    InvalidSpec(String),
}

impl Wait {
    /// A short, bounded name of the kind of wait (a metric label value).
    pub fn kind(&self) -> &'static str {
        match self {
            Wait::Replicas { .. } => "Replicas",
            Wait::PauseUntil(_) => "PauseUntil",
            Wait::Indefinite => "Indefinite",
            Wait::Analysis { .. } => "Analysis",
            Wait::Experiment { .. } => "Experiment",
            Wait::TrafficBlocked(_) => "TrafficBlocked",
            Wait::UserPaused => "UserPaused",
            Wait::Aborted => "Aborted",
            Wait::InvalidSpec(_) => "InvalidSpec",
        }
    }

    /// The words for people, with a pause's deadline relative to `now`.
    pub fn describe(&self, now: Timestamp) -> String {
        match self {
            Wait::PauseUntil(t) => {
                let secs = now.duration_until(*t).as_secs().max(0);
                format!("paused for {secs}s more (until {t})")
            }
            other => other.to_string(),
        }
    }
}

impl fmt::Display for Wait {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Wait::Replicas { canary, stable } => {
                let (ch, cw) = *canary;
                let (sh, sw) = *stable;
                let mut parts = Vec::new();
                if ch != cw || sh == sw {
                    parts.push(format!("canary {ch}/{cw} available"));
                }
                if sh != sw {
                    parts.push(format!("stable {sh}/{sw} available"));
                }
                write!(f, "{}", parts.join(", "))
            }
            Wait::PauseUntil(t) => write!(f, "paused until {t}"),
            Wait::Indefinite => write!(f, "paused, waits for promote"),
            Wait::Analysis { run, phase } if phase.is_empty() => {
                write!(f, "analysis run {run} has not started")
            }
            Wait::Analysis { run, phase } => write!(f, "analysis run {run} is {phase}"),
            Wait::Experiment { name, .. } if name.is_empty() => {
                write!(f, "experiment not created yet")
            }
            Wait::Experiment { name, phase } if phase.is_empty() => {
                write!(f, "experiment {name} has not started")
            }
            Wait::Experiment { name, phase } => write!(f, "experiment {name} is {phase}"),
            Wait::TrafficBlocked(msg) => write!(f, "traffic routing blocked: {msg}"),
            Wait::UserPaused => write!(f, "paused by the user (spec.paused)"),
            Wait::Aborted => write!(f, "aborted, waits for retry or a new update"),
            Wait::InvalidSpec(msg) => write!(f, "invalid spec: {msg}"),
        }
    }
}
