//! The writes of the user commands, as upstream's plugin writes them
//! (`pkg/kubectl-argo-rollouts/cmd/{promote,abort,retry,undo,restart,set,pause}`). Pure: each
//! function turns what was read into the patches to send; `commands` sends them.
//!
//! | command | upstream's write | here |
//! | --- | --- | --- |
//! | `promote` (pause conditions set) | status merge `{"status":{"pauseConditions":null}}`, then, if `spec.paused`, merge `{"spec":{"paused":false}}` | same |
//! | `promote` (canary, no pause conditions) | status merge `{"status":{"pauseConditions":null,"currentStepIndex":N+1}}` (N capped at the step count) | same |
//! | `promote --full` | status merge `{"status":{"promoteFull":true}}`, only while `currentPodHash != stableRS` | same |
//! | `abort` | status merge `{"status":{"abort":true}}` | same |
//! | `retry rollout` | status merge `{"status":{"abort":false}}` | same |
//! | `pause` | merge `{"spec":{"paused":true}}` | same |
//! | `restart [--in D]` | merge `{"spec":{"restartAt":"<now+D, RFC 3339>"}}` | same |
//! | `undo [--to-revision N]` | JSON patch `[{"op":"replace","path":"/spec/template","value":T}]`, T the ReplicaSet's template without the `rollouts-pod-template-hash` label | same |
//! | `set image R C=I` | GET, set the image of every container (init, regular, ephemeral) named C (or all for `*`), PUT; retried on conflicts (5 attempts) | same, on the untyped object so that fields this build does not know survive |
//!
//! As upstream, a status patch answered 404 (a CRD without the status subresource, i.e. Argo
//! Rollouts v0.9) is sent again to the main resource, with the unified spec+status body for
//! `promote`.
//!
//! Differences from upstream:
//! - `undo` when the template already matches prints the revision it found; upstream prints
//!   the `--to-revision` value, i.e. `revision 0` for the default.
//! - `undo`'s "already matches" test is upstream's `DeepDerivative` on the JSON form: a field
//!   the Rollout's template leaves unset (or empty) is not compared.
//! - The deprecated `promote --skip-current-step/--skip-all-steps` flags are not offered.

use super::error::{CliError, Result};
use crate::api::Rollout;
use crate::api::consts::{DEFAULT_ROLLOUT_UNIQUE_LABEL_KEY, REVISION_ANNOTATION};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use serde_json::{Value, json};

/// How a patch body is applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchKind {
    /// `application/merge-patch+json`.
    Merge,
    /// `application/json-patch+json`.
    Json,
}

/// One write to a Rollout.
#[derive(Clone, Debug, PartialEq)]
pub struct PatchOp {
    /// Sent to the `status` subresource.
    pub status: bool,
    pub kind: PatchKind,
    pub body: Value,
    /// For a status patch: what to send to the main resource instead when the status
    /// subresource does not exist (404).
    pub fallback: Option<Value>,
}

impl PatchOp {
    fn spec(body: Value) -> PatchOp {
        PatchOp {
            status: false,
            kind: PatchKind::Merge,
            body,
            fallback: None,
        }
    }
    fn status(body: Value) -> PatchOp {
        PatchOp {
            status: true,
            kind: PatchKind::Merge,
            fallback: Some(body.clone()),
            body,
        }
    }
}

/// `promote [--full]`: the patches, in the order upstream sends them (status first).
pub fn promote(ro: &Rollout, full: bool) -> Vec<PatchOp> {
    let st = ro.status.clone().unwrap_or_default();
    if full {
        if !st.is_fully_promoted() {
            return vec![PatchOp {
                fallback: None,
                ..PatchOp::status(json!({"status": {"promoteFull": true}}))
            }];
        }
        return Vec::new();
    }
    let paused = ro.spec.paused == Some(true);
    let mut unified = json!({"spec": {"paused": false}, "status": {"pauseConditions": null}});
    let mut out = Vec::new();
    if st.pause_conditions.as_ref().is_some_and(|p| !p.is_empty()) {
        out.push(PatchOp {
            fallback: Some(unified.clone()),
            ..PatchOp::status(json!({"status": {"pauseConditions": null}}))
        });
    } else if ro.canary().is_some() && !ro.canary_steps().is_empty() {
        // No pause condition (e.g. promoting a running analysis step): advance the step.
        let steps = ro.canary_steps().len() as i32;
        let mut idx = st.current_step_index.unwrap_or(0);
        if idx < steps {
            idx += 1;
        }
        unified["status"]["currentStepIndex"] = json!(idx);
        out.push(PatchOp {
            fallback: Some(unified.clone()),
            ..PatchOp::status(json!({"status": {"pauseConditions": null, "currentStepIndex": idx}}))
        });
    }
    if paused {
        out.push(PatchOp::spec(json!({"spec": {"paused": false}})));
    }
    out
}

/// `abort`.
pub fn abort() -> PatchOp {
    PatchOp::status(json!({"status": {"abort": true}}))
}

/// `retry rollout`.
pub fn retry() -> PatchOp {
    PatchOp::status(json!({"status": {"abort": false}}))
}

/// `terminate experiment` and `terminate analysisrun`: upstream's merge patch of the main
/// resource.
pub fn terminate() -> Value {
    json!({"spec": {"terminate": true}})
}

/// `retry experiment`: upstream's merge patch, clearing the status (Experiments have no
/// status subresource), so the controller starts the Experiment over.
pub fn retry_experiment() -> Value {
    json!({"status": null})
}

/// `pause`.
pub fn pause() -> PatchOp {
    PatchOp::spec(json!({"spec": {"paused": true}}))
}

/// `restart [--in D]`: restart at `at` (now + D), in RFC 3339 to the second.
pub fn restart(at: Timestamp) -> PatchOp {
    let at = Timestamp::from_second(at.as_second()).unwrap_or(at);
    PatchOp::spec(json!({"spec": {"restartAt": at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()}}))
}

/// What `undo` does.
#[derive(Clone, Debug, PartialEq)]
pub enum Undo {
    /// The Rollout's template already is the revision's.
    Skip { revision: i64 },
    /// Replace the template with the revision's.
    Patch { revision: i64, op: PatchOp },
}

fn revision(rs: &ReplicaSet) -> Option<i64> {
    match rs.annotations().get(REVISION_ANNOTATION) {
        None => Some(0),
        Some(v) => v.parse().ok(),
    }
}

/// `undo [--to-revision N]` (0: the previous revision): the ReplicaSet of that revision among
/// those the Rollout controls, and the patch that puts its template back.
pub fn undo(ro: &Rollout, replica_sets: &[ReplicaSet], to_revision: i64) -> Result<Undo> {
    let (revision, template) = revision_template(ro, replica_sets, to_revision)?;
    let current = serde_json::to_value(ro.spec.template.clone().unwrap_or_default())
        .unwrap_or_else(|_| json!({}));
    if same_template(current, &template) {
        return Ok(Undo::Skip { revision });
    }
    Ok(Undo::Patch {
        revision,
        op: PatchOp {
            status: false,
            kind: PatchKind::Json,
            body: json!([{"op": "replace", "path": "/spec/template", "value": template}]),
            fallback: None,
        },
    })
}

/// `undo` of a Rollout with a `workloadRef`: its template lives in the object it names
/// (`workload`, a Deployment...), so that object gets the revision's template back, at
/// `pointer`. Returns the revision, and the updated object (`None`: it already matches).
pub fn undo_workload(
    ro: &Rollout,
    replica_sets: &[ReplicaSet],
    to_revision: i64,
    workload: &Value,
    pointer: &str,
) -> Result<(i64, Option<Value>)> {
    let (revision, template) = revision_template(ro, replica_sets, to_revision)?;
    let current = workload
        .pointer(pointer)
        .cloned()
        .unwrap_or_else(|| json!({}));
    if same_template(current, &template) {
        return Ok((revision, None));
    }
    let mut updated = workload.clone();
    match updated.pointer_mut(pointer) {
        Some(slot) => *slot = template,
        None => {
            return Err(CliError::failed(format!(
                "the workload of rollout {:?} has no pod template at {pointer}",
                ro.name_any()
            )));
        }
    }
    Ok((revision, Some(updated)))
}

/// Whether `current` already is `template` (upstream's `DeepDerivative`, hash label aside).
fn same_template(mut current: Value, template: &Value) -> bool {
    if let Some(labels) = current
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        labels.remove(DEFAULT_ROLLOUT_UNIQUE_LABEL_KEY);
    }
    derivative(&current, template)
}

/// The revision `undo` goes back to and its template (without the hash label).
fn revision_template(
    ro: &Rollout,
    replica_sets: &[ReplicaSet],
    to_revision: i64,
) -> Result<(i64, Value)> {
    let uid = ro.uid().unwrap_or_default();
    let owned = replica_sets.iter().filter(|rs| {
        rs.owner_references()
            .iter()
            .any(|o| o.uid == uid && o.controller == Some(true))
    });
    let mut latest: Option<(i64, &ReplicaSet)> = None;
    let mut previous: Option<(i64, &ReplicaSet)> = None;
    let mut found = None;
    for rs in owned {
        let Some(v) = revision(rs) else { continue };
        if to_revision == 0 {
            if latest.is_none_or(|(l, _)| l < v) {
                previous = latest;
                latest = Some((v, rs));
            } else if previous.is_none_or(|(p, _)| p < v) {
                previous = Some((v, rs));
            }
        } else if v == to_revision {
            found = Some((v, rs));
            break;
        }
    }
    let (revision, rs) = match (to_revision, found, previous) {
        (0, _, Some(p)) => p,
        (0, _, None) => {
            return Err(CliError::not_found(format!(
                "no revision to undo to: rollout {:?} in namespace {:?} has no previous revision",
                ro.name_any(),
                ro.namespace().unwrap_or_default()
            )));
        }
        (_, Some(f), _) => f,
        (n, None, _) => {
            return Err(CliError::not_found(format!(
                "revision {n} of rollout {:?} not found in namespace {:?} (unable to find specified revision {n} in history)",
                ro.name_any(),
                ro.namespace().unwrap_or_default()
            )));
        }
    };
    let mut template = rs
        .spec
        .as_ref()
        .and_then(|s| s.template.as_ref())
        .map(serde_json::to_value)
        .transpose()
        .map_err(|e| CliError::failed(format!("reading revision {revision}: {e}")))?
        .unwrap_or_else(|| json!({}));
    if let Some(labels) = template
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        labels.remove(DEFAULT_ROLLOUT_UNIQUE_LABEL_KEY);
    }
    Ok((revision, template))
}

/// Go's `apiequality.Semantic.DeepDerivative(a, b)` on JSON: every field `a` sets (non-null,
/// non-empty) equals `b`'s.
pub fn derivative(a: &Value, b: &Value) -> bool {
    match a {
        Value::Null => true,
        Value::String(s) if s.is_empty() => true,
        Value::Array(xs) if xs.is_empty() => true,
        Value::Object(m) if m.is_empty() => true,
        Value::Array(xs) => match b {
            Value::Array(ys) => {
                xs.len() == ys.len() && xs.iter().zip(ys).all(|(x, y)| derivative(x, y))
            }
            _ => false,
        },
        Value::Object(m) => match b {
            Value::Object(n) => m
                .iter()
                .all(|(k, v)| derivative(v, n.get(k).unwrap_or(&Value::Null))),
            _ => false,
        },
        _ => a == b,
    }
}

/// `set image`: sets `image` on every container named `container` (all for `*`) of the
/// Rollout's template, in the untyped object. Fails when no container has that name.
pub fn set_image(ro: &mut Value, container: &str, image: &str) -> Result<()> {
    set_image_at(ro, "/spec/template", "rollout", container, image)
}

/// [`set_image`] on any object with a pod template at `template` (a JSON pointer); `what`
/// names the object's kind in the error.
pub fn set_image_at(
    obj: &mut Value,
    template: &str,
    what: &str,
    container: &str,
    image: &str,
) -> Result<()> {
    let mut found = false;
    if let Some(spec) = obj.pointer_mut(&format!("{template}/spec")) {
        for list in ["initContainers", "containers", "ephemeralContainers"] {
            for c in spec
                .get_mut(list)
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                if container == "*" || c.get("name").and_then(Value::as_str) == Some(container) {
                    c["image"] = json!(image);
                    found = true;
                }
            }
        }
    }
    if !found {
        let name = obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        return Err(CliError::not_found(format!(
            "container {container:?} not found in {what} {name:?} (unable to find container named {container:?})"
        )));
    }
    Ok(())
}

/// Splits `CONTAINER=IMAGE` as upstream does (exactly one `=`).
pub fn parse_container_image(arg: &str) -> Result<(String, String)> {
    match arg.split('=').collect::<Vec<_>>().as_slice() {
        [c, i] if !c.is_empty() && !i.is_empty() => Ok((c.to_string(), i.to_string())),
        _ => Err(CliError::usage(format!(
            "expected CONTAINER=IMAGE, got {arg:?}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ro(spec_paused: bool, status: Value) -> Rollout {
        serde_json::from_value(json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
            "metadata": {"name": "r", "namespace": "ns", "uid": "u1"},
            "spec": {"paused": spec_paused, "replicas": 2,
                     "template": {"metadata": {"labels": {"app": "r"}},
                                  "spec": {"containers": [{"name": "app", "image": "app:v2"}]}},
                     "strategy": {"canary": {"steps": [{"setWeight": 50}, {"pause": {}}]}}},
            "status": status
        }))
        .unwrap()
    }

    #[test]
    fn promote_paused_clears_the_pause_conditions() {
        let r = ro(
            false,
            json!({"currentStepIndex": 1, "pauseConditions": [
                {"reason": "CanaryPauseStep", "startTime": "2024-01-01T00:00:00Z"}]}),
        );
        let ops = promote(&r, false);
        assert_eq!(ops.len(), 1);
        assert!(ops[0].status);
        assert_eq!(ops[0].body, json!({"status": {"pauseConditions": null}}));
        assert_eq!(
            ops[0].fallback,
            Some(json!({"spec": {"paused": false}, "status": {"pauseConditions": null}}))
        );
    }

    #[test]
    fn promote_manually_paused_also_unpauses_the_spec() {
        let r = ro(
            true,
            json!({"currentStepIndex": 1, "pauseConditions": [
                {"reason": "CanaryPauseStep", "startTime": "2024-01-01T00:00:00Z"}]}),
        );
        let ops = promote(&r, false);
        assert_eq!(ops.len(), 2);
        assert_eq!(ops[1], PatchOp::spec(json!({"spec": {"paused": false}})));
    }

    #[test]
    fn promote_without_pause_conditions_advances_the_step() {
        let r = ro(false, json!({"currentStepIndex": 0}));
        let ops = promote(&r, false);
        assert_eq!(
            ops[0].body,
            json!({"status": {"pauseConditions": null, "currentStepIndex": 1}})
        );
        // Past the last step: stays at the step count.
        let r = ro(false, json!({"currentStepIndex": 2}));
        assert_eq!(
            promote(&r, false)[0].body,
            json!({"status": {"pauseConditions": null, "currentStepIndex": 2}})
        );
    }

    #[test]
    fn promote_full_only_mid_update() {
        let r = ro(false, json!({"currentPodHash": "a", "stableRS": "b"}));
        assert_eq!(
            promote(&r, true),
            vec![PatchOp {
                status: true,
                kind: PatchKind::Merge,
                body: json!({"status": {"promoteFull": true}}),
                fallback: None
            }]
        );
        let r = ro(false, json!({"currentPodHash": "a", "stableRS": "a"}));
        assert!(promote(&r, true).is_empty());
    }

    #[test]
    fn abort_retry_pause_restart_bodies() {
        assert_eq!(abort().body, json!({"status": {"abort": true}}));
        assert!(abort().status);
        assert_eq!(retry().body, json!({"status": {"abort": false}}));
        assert_eq!(pause().body, json!({"spec": {"paused": true}}));
        assert_eq!(terminate(), json!({"spec": {"terminate": true}}));
        assert_eq!(retry_experiment(), json!({"status": null}));
        assert!(!pause().status);
        let at: Timestamp = "2024-05-06T07:08:09.5Z".parse().unwrap();
        assert_eq!(
            restart(at).body,
            json!({"spec": {"restartAt": "2024-05-06T07:08:09Z"}})
        );
    }

    fn rs(rev: &str, image: &str, owner: &str) -> ReplicaSet {
        serde_json::from_value(json!({
            "metadata": {"name": format!("r-{rev}"), "annotations": {"rollout.argoproj.io/revision": rev},
                         "ownerReferences": [{"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
                                              "name": "r", "uid": owner, "controller": true}]},
            "spec": {"selector": {"matchLabels": {"app": "r"}},
                     "template": {"metadata": {"labels": {"app": "r", "rollouts-pod-template-hash": format!("h{rev}")}},
                                  "spec": {"containers": [{"name": "app", "image": image,
                                           "imagePullPolicy": "IfNotPresent"}]}}}
        }))
        .unwrap()
    }

    #[test]
    fn undo_of_a_workload_ref_rollout_updates_the_workloads_template() {
        let mut r = ro(false, json!({}));
        r.spec.template = None;
        r.spec.workload_ref = serde_json::from_value(
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}),
        )
        .unwrap();
        let rss = vec![rs("1", "app:v1", "u1"), rs("2", "app:v2", "u1")];
        let deployment = |image: &str| {
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
                   "metadata": {"name": "web", "resourceVersion": "5"},
                   "spec": {"replicas": 0, "template": {"metadata": {"labels": {"app": "r"}},
                            "spec": {"containers": [{"name": "app", "image": image,
                                                     "imagePullPolicy": "IfNotPresent"}]}}}})
        };
        let (revision, updated) =
            undo_workload(&r, &rss, 0, &deployment("app:v2"), "/spec/template").unwrap();
        assert_eq!(revision, 1);
        let updated = updated.expect("an update");
        assert_eq!(
            updated["spec"]["template"]["spec"]["containers"][0]["image"],
            "app:v1"
        );
        assert_eq!(
            updated["spec"]["template"]["metadata"]["labels"],
            json!({"app": "r"})
        );
        assert_eq!(updated["metadata"]["resourceVersion"], "5");
        assert_eq!(updated["spec"]["replicas"], 0);
        let (_, same) =
            undo_workload(&r, &rss, 0, &deployment("app:v1"), "/spec/template").unwrap();
        assert_eq!(same, None);
        // set image on the workload's template.
        let mut d = deployment("app:v1");
        set_image_at(&mut d, "/spec/template", "deployment", "app", "app:v3").unwrap();
        assert_eq!(
            d["spec"]["template"]["spec"]["containers"][0]["image"],
            "app:v3"
        );
        let err = set_image_at(&mut d, "/spec/template", "deployment", "nope", "x").unwrap_err();
        assert!(
            err.message.contains("in deployment \"web\""),
            "{}",
            err.message
        );
    }

    #[test]
    fn undo_to_the_previous_revision_replaces_the_template() {
        let r = ro(false, json!({}));
        let rss = vec![
            rs("1", "app:v1", "u1"),
            rs("3", "app:v2", "u1"),
            rs("2", "app:v0", "u1"),
            rs("9", "other", "someone-else"),
        ];
        let Undo::Patch { revision, op } = undo(&r, &rss, 0).unwrap() else {
            panic!("expected a patch");
        };
        assert_eq!(revision, 2);
        assert_eq!(op.kind, PatchKind::Json);
        assert!(!op.status);
        assert_eq!(op.body[0]["op"], "replace");
        assert_eq!(op.body[0]["path"], "/spec/template");
        assert_eq!(
            op.body[0]["value"]["metadata"]["labels"],
            json!({"app": "r"})
        );
        assert_eq!(
            op.body[0]["value"]["spec"]["containers"][0]["image"],
            "app:v0"
        );
        let Undo::Patch { revision, .. } = undo(&r, &rss, 1).unwrap() else {
            panic!("expected a patch");
        };
        assert_eq!(revision, 1);
        let err = undo(&r, &rss, 7).unwrap_err();
        assert_eq!(err.code, super::super::error::exit::NOT_FOUND);
        assert!(err.message.contains("revision 7"), "{}", err.message);
        assert!(undo(&r, &rss[..1], 0).is_err());
    }

    #[test]
    fn undo_to_the_current_template_is_skipped() {
        let r = ro(false, json!({}));
        let rss = vec![rs("1", "app:v2", "u1"), rs("2", "app:v3", "u1")];
        assert_eq!(undo(&r, &rss, 1).unwrap(), Undo::Skip { revision: 1 });
    }

    #[test]
    fn derivative_ignores_unset_fields() {
        assert!(derivative(
            &json!({"a": 1, "b": null, "c": "", "d": []}),
            &json!({"a": 1, "e": 2})
        ));
        assert!(!derivative(&json!({"a": 1}), &json!({"a": 2})));
        assert!(!derivative(&json!({"a": [1, 2]}), &json!({"a": [1]})));
        assert!(!derivative(&json!({"a": "x"}), &json!({})));
    }

    #[test]
    fn set_image_by_name_or_star() {
        let mut v = json!({"metadata": {"name": "r"}, "spec": {"template": {"spec": {
            "initContainers": [{"name": "init", "image": "i:1"}],
            "containers": [{"name": "app", "image": "a:1"}, {"name": "side", "image": "s:1"}],
            "futureField": {"kept": true}}}}});
        set_image(&mut v, "app", "a:2").unwrap();
        assert_eq!(
            v["spec"]["template"]["spec"]["containers"][0]["image"],
            "a:2"
        );
        assert_eq!(
            v["spec"]["template"]["spec"]["containers"][1]["image"],
            "s:1"
        );
        set_image(&mut v, "*", "x:9").unwrap();
        assert_eq!(
            v["spec"]["template"]["spec"]["initContainers"][0]["image"],
            "x:9"
        );
        assert_eq!(v["spec"]["template"]["spec"]["futureField"]["kept"], true);
        let err = set_image(&mut v, "nope", "x").unwrap_err();
        assert_eq!(
            err.message,
            "container \"nope\" not found in rollout \"r\" (unable to find container named \"nope\")"
        );
    }

    #[test]
    fn container_image_argument() {
        assert_eq!(
            parse_container_image("app=img:v2").unwrap(),
            ("app".into(), "img:v2".into())
        );
        assert!(parse_container_image("app").is_err());
        assert!(parse_container_image("a=b=c").is_err());
    }
}
