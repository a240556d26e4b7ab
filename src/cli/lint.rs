//! `lint -f FILE`: the controller's validation of every Rollout in a manifest, offline.
//!
//! For each `argoproj.io` `Rollout` document:
//! 1. fields this version of the API does not know are errors (upstream decodes strictly);
//! 2. [`crate::plan::validate::validate_rollout`], the rules the controller applies, each
//!    error with its field path;
//! 3. when the spec is valid, one plan of the controller's planner: a feature this controller
//!    does not carry out yet (blue-green, traffic routing, analysis, ...) is reported as the
//!    InvalidSpec the controller would set.
//!
//! Differences from upstream's `lint`: errors print with their field path; referenced
//! Services/Ingresses in the file are not cross-checked; a file without any Rollout is an
//! error (upstream accepts it silently).

use super::error::{CliError, Result};
use crate::api::Rollout;
use crate::api::rollout_condition_type as ctype;
use crate::plan::simulate::World;
use kube::ResourceExt;
use serde::Deserialize as _;
use serde_json::Value;

/// The problems of one Rollout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RolloutProblems {
    pub name: String,
    /// One line each, starting with the field path.
    pub errors: Vec<String>,
}

/// Lints a manifest: the Rollouts found and their problems.
pub fn lint(text: &str, file: &str) -> Result<Vec<RolloutProblems>> {
    let mut out = Vec::new();
    for (i, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let n = i + 1;
        let value = serde_yaml::Value::deserialize(doc)
            .map_err(|e| CliError::failed(format!("{file}: document {n}: not valid YAML: {e}")))?;
        if value.is_null() {
            continue;
        }
        let json: Value = serde_json::to_value(&value).map_err(|e| {
            CliError::failed(format!("{file}: document {n}: not JSON-compatible: {e}"))
        })?;
        let group = json
            .get("apiVersion")
            .and_then(Value::as_str)
            .and_then(|v| v.split('/').next())
            .unwrap_or_default();
        if group != crate::api::GROUP || json.get("kind").and_then(Value::as_str) != Some("Rollout")
        {
            continue;
        }
        let name = json
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("<unnamed>")
            .to_string();
        let ro: Rollout = match serde_json::from_value(json.clone()) {
            Ok(ro) => ro,
            Err(e) => {
                out.push(RolloutProblems {
                    name,
                    errors: vec![format!("cannot decode the Rollout: {e}")],
                });
                continue;
            }
        };
        let mut errors = Vec::new();
        let typed = serde_json::to_value(&ro).unwrap_or(Value::Null);
        unknown_fields(&json, &typed, "", &mut errors);
        let validation = crate::plan::validate::validate_rollout(&ro);
        errors.extend(validation.iter().map(ToString::to_string));
        if validation.is_empty()
            && let Some(msg) = controller_refusal(&ro)
        {
            errors.push(msg);
        }
        out.push(RolloutProblems { name, errors });
    }
    if out.is_empty() {
        return Err(CliError::failed(format!(
            "{file}: no Rollout (apiVersion: argoproj.io/v1alpha1, kind: Rollout) found"
        )));
    }
    Ok(out)
}

/// Keys of `input` that the typed round trip dropped: fields the API does not have.
fn unknown_fields(input: &Value, typed: &Value, path: &str, out: &mut Vec<String>) {
    match (input, typed) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match b.get(k) {
                    None if !v.is_null() => out.push(format!("{p}: Unknown field")),
                    Some(t) => unknown_fields(v, t, &p, out),
                    None => {}
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                unknown_fields(x, y, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// What the controller would set as InvalidSpec for a Rollout that passes validation (a
/// feature it does not carry out yet), from one plan of the real planner.
fn controller_refusal(ro: &Rollout) -> Option<String> {
    let mut ro = ro.clone();
    ro.metadata.uid.get_or_insert_with(|| "lint".into());
    ro.metadata
        .namespace
        .get_or_insert_with(|| "default".into());
    ro.status = None;
    let name = ro.name_any();
    // Offline, the Services and AnalysisTemplates it names are assumed to exist.
    let mut world = World::new(ro);
    world.assume_templates();
    let plan = world.plan();
    let cond = crate::plan::conditions::get(&plan.status, ctype::INVALID_SPEC)?;
    let msg = cond.message.clone().unwrap_or_default();
    let prefix = format!("The Rollout \"{name}\" is invalid: ");
    Some(msg.strip_prefix(&prefix).unwrap_or(&msg).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = r#"
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: ok}
spec:
  replicas: 2
  selector: {matchLabels: {app: ok}}
  template:
    metadata: {labels: {app: ok}}
    spec: {containers: [{name: app, image: "app:1", resources: {limits: {cpu: 1}}}]}
  strategy: {canary: {steps: [{setWeight: 50}, {pause: {}}]}}
---
apiVersion: v1
kind: Service
metadata: {name: ok}
"#;

    #[test]
    fn a_valid_manifest_has_no_errors() {
        let got = lint(VALID, "f").unwrap();
        assert_eq!(
            got,
            vec![RolloutProblems {
                name: "ok".into(),
                errors: vec![]
            }]
        );
    }

    #[test]
    fn errors_carry_field_paths() {
        let bad = VALID
            .replace("setWeight: 50", "setWeight: 150")
            .replace("replicas: 2", "replicas: 2\n  replicaz: 3");
        let got = lint(&bad, "f").unwrap();
        assert_eq!(got[0].errors[0], "spec.replicaz: Unknown field");
        assert!(
            got[0].errors[1].starts_with("spec.strategy.steps[0].setWeight: Invalid value: 150"),
            "{:?}",
            got[0].errors
        );
    }

    #[test]
    fn unsupported_features_are_reported_as_the_controller_would() {
        let bad = VALID.replace("{pause: {}}", "{plugin: {name: acme/step}}");
        let got = lint(&bad, "f").unwrap();
        assert_eq!(got[0].errors.len(), 1, "{:?}", got[0].errors);
        assert!(
            got[0].errors[0].starts_with("spec.strategy.canary.steps[1].plugin: Forbidden"),
            "{:?}",
            got[0].errors
        );
    }

    #[test]
    fn no_rollout_is_an_error() {
        let err = lint("apiVersion: v1\nkind: Service\n", "svc.yaml").unwrap_err();
        assert!(err.message.starts_with("svc.yaml: no Rollout"));
        assert!(lint("a: [", "x").is_err());
    }
}
