//! Whether an Experiment's spec can be run: upstream's `VerifyExperimentSpec` (with its
//! messages), an unreadable `duration`, and the features this controller does not carry out
//! yet, refused by field rather than skipped.

use crate::api::Experiment;
use crate::plan::validate::FieldError;
use kube_core::ResourceExt;

/// The `InvalidSpec` message for `ex`, when its spec cannot be run.
pub fn invalid(ex: &Experiment) -> Option<String> {
    upstream(ex).or_else(|| ours(ex))
}

/// Upstream's `VerifyExperimentSpec`, message for message.
fn upstream(ex: &Experiment) -> Option<String> {
    let name = ex.name_any();
    let pds = super::progress_deadline_seconds(ex);
    let mut seen = std::collections::BTreeSet::new();
    for (i, t) in ex.spec.templates.iter().flatten().enumerate() {
        let Some(sel) = &t.selector else {
            return Some(format!(
                "Rollout has missing field '.Spec.Templates[{i}].Selector'"
            ));
        };
        if sel.match_labels.is_none() && sel.match_expressions.is_none() {
            return Some(format!(
                "This experiment is selecting all pods at index {i}. A non-empty selector is required."
            ));
        }
        if t.min_ready_seconds.unwrap_or(0) > pds {
            return Some(format!(
                "MinReadySeconds cannot be longer than ProgressDeadlineSeconds. Check template index {i}"
            ));
        }
        let tname = t.name.as_deref().unwrap_or_default();
        if tname.is_empty() {
            return Some(format!(
                "Experiment {name} has empty template name at index {i}"
            ));
        }
        if !seen.insert(tname) {
            return Some(format!(
                "Experiment {name} has repeated template name '{tname}' in templates"
            ));
        }
    }
    None
}

/// What upstream accepts but this controller refuses: a `duration` Go cannot parse (upstream
/// then runs the Experiment forever).
fn ours(ex: &Experiment) -> Option<String> {
    if let Some(d) = ex.spec.duration.as_deref().filter(|d| !d.is_empty())
        && crate::api::parse_go_duration(d).is_none()
    {
        return Some(
            FieldError::invalid(
                "spec.duration",
                format!("\"{d}\""),
                "not a duration (e.g. 30s, 5m, 1h)",
            )
            .to_string(),
        );
    }
    None
}
