//! `antiAffinity` (canary and blue-green): while an update is in flight, the new ReplicaSet's
//! pods get a pod anti-affinity term against the stable ReplicaSet's pods
//! (`rollouts-pod-template-hash In [status.stableRS]`, per node), preferred with a weight or
//! required, so that the two versions do not share a node (upstream's
//! `GenerateReplicaSetAffinity`). The term is not part of the template hash.

use crate::api::consts::DEFAULT_ROLLOUT_UNIQUE_LABEL_KEY;
use crate::api::{AntiAffinity, Rollout};
use k8s_openapi::api::core::v1::{
    Affinity, PodAffinityTerm, PodAntiAffinity, WeightedPodAffinityTerm,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use serde_json::Value;

const TOPOLOGY_KEY: &str = "kubernetes.io/hostname";

/// The strategy's `antiAffinity`, when it asks for a rule.
fn strategy(ro: &Rollout) -> Option<&AntiAffinity> {
    let a = ro
        .canary()
        .and_then(|c| c.anti_affinity.as_ref())
        .or_else(|| ro.blue_green().and_then(|b| b.anti_affinity.as_ref()))?;
    (a.preferred_during_scheduling_ignored_during_execution
        .is_some()
        || a.required_during_scheduling_ignored_during_execution
            .is_some())
    .then_some(a)
}

fn stable_hash(ro: &Rollout) -> &str {
    ro.status
        .as_ref()
        .and_then(|s| s.stable_rs.as_deref())
        .unwrap_or_default()
}

/// The term injected against the stable ReplicaSet's pods.
fn injected_term(ro: &Rollout) -> PodAffinityTerm {
    PodAffinityTerm {
        label_selector: Some(LabelSelector {
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: DEFAULT_ROLLOUT_UNIQUE_LABEL_KEY.into(),
                operator: "In".into(),
                values: Some(vec![stable_hash(ro).to_string()]),
            }]),
            match_labels: None,
        }),
        namespaces: Some(vec![ro.metadata.namespace.clone().unwrap_or_default()]),
        topology_key: TOPOLOGY_KEY.into(),
        ..Default::default()
    }
}

fn selects_by_hash(term: &PodAffinityTerm) -> bool {
    term.label_selector
        .as_ref()
        .and_then(|s| s.match_expressions.as_ref())
        .is_some_and(|e| e.iter().any(|r| r.key == DEFAULT_ROLLOUT_UNIQUE_LABEL_KEY))
}

/// The affinity of the pod template of the ReplicaSet with hash `pod_hash`: the Rollout's own,
/// plus the injected term while that ReplicaSet is not the stable one. `None` when the
/// strategy has no `antiAffinity` (the template's affinity is left as it is).
pub fn replica_set_affinity(ro: &Rollout, pod_hash: &str) -> Option<Option<Affinity>> {
    let strategy = strategy(ro)?;
    let mut affinity = ro
        .spec
        .template
        .as_ref()
        .and_then(|t| t.spec.as_ref())
        .and_then(|s| s.affinity.clone());
    let stable = stable_hash(ro);
    if !stable.is_empty() && stable != pod_hash {
        let term = injected_term(ro);
        let anti = affinity
            .get_or_insert_with(Affinity::default)
            .pod_anti_affinity
            .get_or_insert_with(PodAntiAffinity::default);
        match &strategy.preferred_during_scheduling_ignored_during_execution {
            Some(p) => anti
                .preferred_during_scheduling_ignored_during_execution
                .get_or_insert_with(Vec::new)
                .push(WeightedPodAffinityTerm {
                    weight: p.weight.unwrap_or(0),
                    pod_affinity_term: term,
                }),
            None => anti
                .required_during_scheduling_ignored_during_execution
                .get_or_insert_with(Vec::new)
                .push(term),
        }
    }
    Some(affinity)
}

/// The stable hash an injected term of `affinity` points at, if there is one.
fn injected_target(affinity: Option<&Affinity>) -> Option<String> {
    let anti = affinity?.pod_anti_affinity.as_ref()?;
    let preferred = anti
        .preferred_during_scheduling_ignored_during_execution
        .iter()
        .flatten()
        .map(|w| &w.pod_affinity_term);
    let required = anti
        .required_during_scheduling_ignored_during_execution
        .iter()
        .flatten();
    preferred.chain(required).find_map(|t| {
        t.label_selector
            .as_ref()?
            .match_expressions
            .as_ref()?
            .iter()
            .find(|r| r.key == DEFAULT_ROLLOUT_UNIQUE_LABEL_KEY)?
            .values
            .as_ref()?
            .first()
            .cloned()
    })
}

/// Upstream's `IfInjectedAntiAffinityRuleNeedsUpdate`: the ReplicaSet `pod_hash` (not the
/// stable one) carries an injected term against another ReplicaSet than the current stable
/// one (it was created during an earlier update, and is now reused, as by `undo`).
pub fn needs_update(ro: &Rollout, affinity: Option<&Affinity>, pod_hash: &str) -> bool {
    if strategy(ro).is_none() || stable_hash(ro) == pod_hash {
        return false;
    }
    injected_target(affinity).is_some_and(|t| t != stable_hash(ro))
}

/// Removes injected terms from a pod template (JSON), as upstream does before comparing a
/// ReplicaSet's template with the Rollout's (adoption). Only for a Rollout with
/// `antiAffinity`: otherwise such a term is the user's own.
pub fn strip_injected(ro: &Rollout, template: &mut Value) {
    if strategy(ro).is_none() {
        return;
    }
    let Some(anti) = template
        .pointer_mut("/spec/affinity/podAntiAffinity")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    let hash_term = |t: &Value| {
        serde_json::from_value::<PodAffinityTerm>(t.clone()).is_ok_and(|t| selects_by_hash(&t))
    };
    for (field, weighted) in [
        ("preferredDuringSchedulingIgnoredDuringExecution", true),
        ("requiredDuringSchedulingIgnoredDuringExecution", false),
    ] {
        if let Some(list) = anti.get_mut(field).and_then(Value::as_array_mut) {
            list.retain(|t| {
                let term = if weighted {
                    t.get("podAffinityTerm").cloned().unwrap_or(Value::Null)
                } else {
                    t.clone()
                };
                !hash_term(&term)
            });
            if list.is_empty() {
                anti.remove(field);
            }
        }
    }
    if anti.is_empty()
        && let Some(affinity) = template
            .pointer_mut("/spec/affinity")
            .and_then(Value::as_object_mut)
    {
        affinity.remove("podAntiAffinity");
        if affinity.is_empty()
            && let Some(spec) = template.pointer_mut("/spec").and_then(Value::as_object_mut)
        {
            spec.remove("affinity");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rollout(anti: Value, stable: Option<&str>, own_affinity: Value) -> Rollout {
        serde_json::from_value(json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
            "metadata": {"name": "ro", "namespace": "ns"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "a"}},
                     "template": {"metadata": {"labels": {"app": "a"}},
                                  "spec": {"containers": [{"name": "a", "image": "a:1"}],
                                           "affinity": own_affinity}},
                     "strategy": {"canary": {"antiAffinity": anti}}},
            "status": {"stableRS": stable}
        }))
        .unwrap()
    }

    fn json_of(a: &Option<Affinity>) -> Value {
        serde_json::to_value(a).unwrap()
    }

    #[test]
    fn preferred_and_required_terms_against_the_stable() {
        let ro = rollout(
            json!({"preferredDuringSchedulingIgnoredDuringExecution": {"weight": 40}}),
            Some("s1"),
            Value::Null,
        );
        let a = replica_set_affinity(&ro, "new").unwrap();
        assert_eq!(
            json_of(&a),
            json!({"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 40, "podAffinityTerm": {
                    "labelSelector": {"matchExpressions": [
                        {"key": "rollouts-pod-template-hash", "operator": "In", "values": ["s1"]}]},
                    "namespaces": ["ns"], "topologyKey": "kubernetes.io/hostname"}}]}})
        );
        // The stable itself, or no stable yet: the Rollout's own affinity only.
        assert_eq!(replica_set_affinity(&ro, "s1").unwrap(), None);
        let first = rollout(
            json!({"requiredDuringSchedulingIgnoredDuringExecution": {}}),
            None,
            json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]}}}),
        );
        let own = replica_set_affinity(&first, "new").unwrap();
        assert!(own.as_ref().unwrap().pod_anti_affinity.is_none());
        assert!(own.unwrap().node_affinity.is_some());
        let required = rollout(
            json!({"requiredDuringSchedulingIgnoredDuringExecution": {}}),
            Some("s1"),
            Value::Null,
        );
        let a = replica_set_affinity(&required, "new").unwrap().unwrap();
        let terms = a
            .pod_anti_affinity
            .unwrap()
            .required_during_scheduling_ignored_during_execution
            .unwrap();
        assert_eq!(terms.len(), 1);
        assert_eq!(terms[0].topology_key, "kubernetes.io/hostname");
        // Without antiAffinity nothing is generated.
        assert!(
            replica_set_affinity(&rollout(json!({}), Some("s1"), Value::Null), "new").is_none()
        );
    }

    #[test]
    fn a_stale_injected_term_needs_an_update_and_is_stripped_for_comparison() {
        let old = rollout(
            json!({"requiredDuringSchedulingIgnoredDuringExecution": {}}),
            Some("s0"),
            Value::Null,
        );
        let injected = replica_set_affinity(&old, "v1").unwrap();
        let now = rollout(
            json!({"requiredDuringSchedulingIgnoredDuringExecution": {}}),
            Some("s1"),
            Value::Null,
        );
        assert!(needs_update(&now, injected.as_ref(), "v1"));
        assert!(!needs_update(&old, injected.as_ref(), "v1"));
        assert!(!needs_update(&now, injected.as_ref(), "s1"));
        let mut template = json!({"metadata": {"labels": {"app": "a"}},
                                  "spec": {"containers": [], "affinity": json_of(&injected)}});
        strip_injected(&now, &mut template);
        assert_eq!(
            template,
            json!({"metadata": {"labels": {"app": "a"}}, "spec": {"containers": []}})
        );
    }
}
