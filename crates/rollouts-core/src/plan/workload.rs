//! `spec.workloadRef` (upstream's template resolver): the pod template, and the selector when
//! the Rollout names none, come from another object of the namespace: a Deployment, a
//! ReplicaSet or a PodTemplate. The planner then runs on the Rollout as if the template were
//! inline. Pure: the controller observes the object; this builds the resolved Rollout.

use super::validate::FieldError;
use crate::api::Rollout;
use crate::traffic::ObjectKey;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde_json::Value;

/// A kind a `workloadRef` may name: its API version, kind, plural, and where its pod template
/// and selector are.
struct Kind {
    group: &'static str,
    kind: &'static str,
    api_version: &'static str,
    plural: &'static str,
    template: &'static str,
    selector: Option<&'static str>,
}

/// Upstream's `infoByGroupKind`.
const KINDS: [Kind; 3] = [
    Kind {
        group: "",
        kind: "PodTemplate",
        api_version: "v1",
        plural: "podtemplates",
        template: "/template",
        selector: None,
    },
    Kind {
        group: "apps",
        kind: "Deployment",
        api_version: "apps/v1",
        plural: "deployments",
        template: "/spec/template",
        selector: Some("/spec/selector"),
    },
    Kind {
        group: "apps",
        kind: "ReplicaSet",
        api_version: "apps/v1",
        plural: "replicasets",
        template: "/spec/template",
        selector: Some("/spec/selector"),
    },
];

fn group_of(api_version: &str) -> &str {
    api_version.split_once('/').map_or("", |(g, _)| g)
}

fn kind_of(ro: &Rollout) -> Option<Result<&'static Kind, FieldError>> {
    let r = ro.spec.workload_ref.as_ref()?;
    let api_version = r.api_version.as_deref().unwrap_or_default();
    let kind = r.kind.as_deref().unwrap_or_default();
    let group = group_of(api_version);
    Some(
        KINDS
            .iter()
            .find(|k| k.group == group && k.kind == kind)
            .ok_or_else(|| {
                FieldError::invalid(
                    "spec.workloadRef.kind",
                    super::validate::go_quote(kind),
                    format!("workload of type {group}/{kind} is not supported"),
                )
            }),
    )
}

/// Where the pod template is in the object a Rollout's `workloadRef` names (a JSON pointer:
/// `/spec/template`, or `/template` for a PodTemplate).
pub fn template_pointer(ro: &Rollout) -> Option<&'static str> {
    kind_of(ro)?.ok().map(|k| k.template)
}

/// The object a Rollout's `workloadRef` names (in the Rollout's namespace), or why it cannot
/// name one. `None` without a `workloadRef`.
pub fn key(ro: &Rollout) -> Option<Result<ObjectKey, FieldError>> {
    let kind = kind_of(ro)?;
    let name = ro
        .spec
        .workload_ref
        .as_ref()
        .and_then(|r| r.name.as_deref())
        .unwrap_or_default();
    Some(kind.and_then(|k| {
        if name.is_empty() {
            return Err(FieldError::required("spec.workloadRef.name", ""));
        }
        Ok(ObjectKey::new(
            k.api_version,
            k.kind,
            k.plural,
            ro.metadata.namespace.as_deref().unwrap_or("default"),
            name,
        ))
    }))
}

/// The Rollout with its template (and, when it has none, its selector) taken from `workload`,
/// the observed object its `workloadRef` names (`None`: it does not exist), and that object's
/// `metadata.generation`.
pub fn resolve(ro: &Rollout, workload: Option<&Value>) -> Result<(Rollout, i64), FieldError> {
    let kind = match kind_of(ro) {
        None => return Ok((ro.clone(), 0)),
        Some(k) => k?,
    };
    let key = key(ro).transpose()?;
    let Some(obj) = workload else {
        let name = key.map(|k| k.name).unwrap_or_default();
        return Err(FieldError::invalid(
            "spec.workloadRef.name",
            super::validate::go_quote(&name),
            format!("{} \"{name}\" not found", kind.kind),
        ));
    };
    let mut out = ro.clone();
    let template = obj.pointer(kind.template).cloned().unwrap_or(Value::Null);
    let template: PodTemplateSpec = serde_json::from_value(template).map_err(|e| {
        FieldError::invalid(
            "spec.workloadRef",
            super::validate::go_quote(&key.as_ref().map(|k| k.name.clone()).unwrap_or_default()),
            format!("its pod template does not decode: {e}"),
        )
    })?;
    out.spec.template = Some(template);
    if out.spec.selector.is_none()
        && let Some(path) = kind.selector
        && let Some(sel) = obj.pointer(path)
    {
        out.spec.selector = serde_json::from_value::<LabelSelector>(sel.clone()).ok();
    }
    let generation = obj
        .pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    Ok((out, generation))
}

/// The replica count the Deployment a `workloadRef` names should be scaled to, when
/// `scaleDown` asks for one (upstream's `scaleDeployment` call sites):
///
/// * `onsuccess`: 0 once the Rollout is Healthy.
/// * `progressively`: during the first revision, `spec.replicas − status.readyReplicas` (the
///   Deployment gives back what the Rollout has made ready, and grows again if the Rollout
///   loses pods, as on an abort); 0 once the Rollout is Healthy, and 0 in every later
///   revision (the migration is over).
/// * `never` (the default), or another kind than a Deployment: nothing.
///
/// Upstream acts only while the revision is 1 for `onsuccess` too, so a Deployment scaled back
/// up later (say by a GitOps sync) is left running beside the Rollout (upstream issue 4681);
/// here it is scaled down again once the Rollout is Healthy.
pub fn scale_down_target(ro: &Rollout, new_rs_revision: Option<i64>) -> Option<i32> {
    let r = ro.spec.workload_ref.as_ref()?;
    if r.kind.as_deref() != Some("Deployment") {
        return None;
    }
    let status = ro.status.as_ref();
    let healthy = status.and_then(|s| s.phase.as_deref()) == Some("Healthy");
    match r.scale_down.as_deref()?.to_ascii_lowercase().as_str() {
        crate::api::consts::SCALE_DOWN_ON_SUCCESS => healthy.then_some(0),
        crate::api::consts::SCALE_DOWN_PROGRESSIVELY => {
            if healthy || new_rs_revision.is_some_and(|r| r > 1) {
                return Some(0);
            }
            let ready = status.and_then(|s| s.ready_replicas).unwrap_or(0);
            Some((ro.replicas_or_default() - ready).max(0))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rollout(workload_ref: Value, extra: Value) -> Rollout {
        let mut spec = json!({"replicas": 2, "workloadRef": workload_ref,
                              "strategy": {"canary": {"steps": [{"setWeight": 50}]}}});
        if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
            s.extend(e.clone());
        }
        serde_json::from_value(json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
            "metadata": {"name": "ro", "namespace": "ns"}, "spec": spec
        }))
        .unwrap()
    }

    fn deployment() -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "web", "namespace": "ns", "generation": 3},
               "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                        "template": {"metadata": {"labels": {"app": "web"}},
                                     "spec": {"containers": [{"name": "web", "image": "web:v1"}]}}}})
    }

    #[test]
    fn a_deployment_gives_its_template_selector_and_generation() {
        let ro = rollout(
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}),
            json!({}),
        );
        let key = key(&ro).unwrap().unwrap();
        assert_eq!(
            (
                key.api_version.as_str(),
                key.plural.as_str(),
                key.namespace.as_str(),
                key.name.as_str()
            ),
            ("apps/v1", "deployments", "ns", "web")
        );
        let (resolved, generation) = resolve(&ro, Some(&deployment())).unwrap();
        assert_eq!(generation, 3);
        let c = &resolved.spec.template.unwrap().spec.unwrap().containers[0];
        assert_eq!(c.image.as_deref(), Some("web:v1"));
        assert_eq!(
            resolved.spec.selector.unwrap().match_labels.unwrap()["app"],
            "web"
        );
    }

    #[test]
    fn the_rollouts_own_selector_wins() {
        let ro = rollout(
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}),
            json!({"selector": {"matchLabels": {"app": "web", "tier": "x"}}}),
        );
        let (resolved, _) = resolve(&ro, Some(&deployment())).unwrap();
        assert_eq!(
            resolved.spec.selector.unwrap().match_labels.unwrap().len(),
            2
        );
    }

    #[test]
    fn missing_and_unsupported_workloads_are_field_errors() {
        let ro = rollout(
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}),
            json!({}),
        );
        assert_eq!(
            resolve(&ro, None).unwrap_err().to_string(),
            "spec.workloadRef.name: Invalid value: \"web\": Deployment \"web\" not found"
        );
        let ro = rollout(
            json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web"}),
            json!({}),
        );
        assert_eq!(
            key(&ro).unwrap().unwrap_err().to_string(),
            "spec.workloadRef.kind: Invalid value: \"StatefulSet\": workload of type apps/StatefulSet is not supported"
        );
        let ro = rollout(
            json!({"apiVersion": "v1", "kind": "PodTemplate"}),
            json!({}),
        );
        assert_eq!(
            key(&ro).unwrap().unwrap_err().to_string(),
            "spec.workloadRef.name: Required value"
        );
    }

    #[test]
    fn scale_down_targets() {
        let with = |mode: &str, phase: &str, ready: i32| {
            let mut ro = rollout(
                json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "web",
                       "scaleDown": mode}),
                json!({"replicas": 4}),
            );
            ro.status =
                serde_json::from_value(json!({"phase": phase, "readyReplicas": ready})).unwrap();
            ro
        };
        let cases = [
            ("never", "Healthy", 4, Some(1), None),
            ("onsuccess", "Progressing", 2, Some(1), None),
            ("onsuccess", "Healthy", 4, Some(1), Some(0)),
            ("onsuccess", "Healthy", 4, Some(3), Some(0)),
            ("progressively", "Progressing", 0, Some(1), Some(4)),
            ("progressively", "Progressing", 3, Some(1), Some(1)),
            ("progressively", "Degraded", 1, Some(1), Some(3)),
            ("progressively", "Healthy", 4, Some(1), Some(0)),
            ("progressively", "Progressing", 2, Some(2), Some(0)),
            ("Progressively", "Progressing", 4, None, Some(0)),
        ];
        for (mode, phase, ready, revision, want) in cases {
            assert_eq!(
                scale_down_target(&with(mode, phase, ready), revision),
                want,
                "{mode} {phase} ready {ready} revision {revision:?}"
            );
        }
        let mut ro = with("onsuccess", "Healthy", 4);
        ro.spec.workload_ref.as_mut().unwrap().kind = Some("ReplicaSet".into());
        assert_eq!(scale_down_target(&ro, Some(1)), None);
    }

    #[test]
    fn a_pod_template_has_no_selector() {
        let ro = rollout(
            json!({"apiVersion": "v1", "kind": "PodTemplate", "name": "tpl"}),
            json!({"selector": {"matchLabels": {"app": "web"}}}),
        );
        let tpl = json!({"apiVersion": "v1", "kind": "PodTemplate",
                         "metadata": {"name": "tpl", "generation": 1},
                         "template": {"metadata": {"labels": {"app": "web"}},
                                      "spec": {"containers": [{"name": "web", "image": "web:v2"}]}}});
        let (resolved, _) = resolve(&ro, Some(&tpl)).unwrap();
        let c = &resolved.spec.template.unwrap().spec.unwrap().containers[0];
        assert_eq!(c.image.as_deref(), Some("web:v2"));
    }
}
