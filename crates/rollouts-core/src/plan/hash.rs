//! Hashes that name ReplicaSets and detect spec changes.
//!
//! **Pod template hash.** Upstream hashes the Go struct of the pod template with a printer
//! whose output changes between Go and Kubernetes library versions, so a new Argo Rollouts
//! release can compute a different hash for an unchanged template (upstream issue 4696) and
//! start a needless rollout. Ours is defined on data, not on a library's printing:
//!
//! 1. take the pod template as JSON (the Rollout's `spec.template`);
//! 2. drop the `rollouts-pod-template-hash` label, and recursively drop `null`s, empty
//!    objects and empty arrays (they mean "unset" to Kubernetes);
//! 3. serialise with object keys sorted, no whitespace;
//! 4. FNV-1a (32 bit) over those bytes, then over `collisionCount` as 4 little-endian bytes
//!    when it is set;
//! 5. print the number in decimal and map each digit through Kubernetes' safe alphabet
//!    (`bcdfghjklmnpqrstvwxz2456789`), as upstream does.
//!
//! The result depends only on the template's content, so it is stable across our releases.
//! ReplicaSets created by Argo Rollouts keep their own hash label; they are recognised by
//! template equality instead (see `Observed::adoptable`).
//!
//! **Step hash** (`status.currentStepHash`): exactly upstream's — FNV-1a over the JSON of
//! `spec.strategy.canary.steps` in upstream's field order — so a Rollout taken over from Argo
//! Rollouts in the middle of an update continues at its step instead of restarting.

use serde_json::Value;

const SAFE_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// Kubernetes' `rand.SafeEncodeString`: each byte mapped into an alphabet without vowels
/// (so that no words are spelled) and without look-alike characters.
pub fn safe_encode(s: &str) -> String {
    s.chars()
        .map(|c| SAFE_ALPHABET[(c as usize) % SAFE_ALPHABET.len()] as char)
        .collect()
}

/// 32-bit FNV-1a.
pub fn fnv1a32(bytes: &[u8]) -> u32 {
    fnv1a32_continue(0x811c_9dc5, bytes)
}

fn fnv1a32_continue(mut h: u32, bytes: &[u8]) -> u32 {
    for b in bytes {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

fn canonicalise(v: &Value) -> Option<Value> {
    match v {
        Value::Null => None,
        Value::Object(m) => {
            // Sort explicitly: serde_json keeps insertion order when its `preserve_order`
            // feature is on (any crate in the build may turn it on).
            let sorted: std::collections::BTreeMap<&String, Value> = m
                .iter()
                .filter_map(|(k, v)| canonicalise(v).map(|v| (k, v)))
                .collect();
            let out: serde_json::Map<String, Value> =
                sorted.into_iter().map(|(k, v)| (k.clone(), v)).collect();
            (!out.is_empty()).then_some(Value::Object(out))
        }
        Value::Array(a) => {
            let out: Vec<Value> = a
                .iter()
                .map(|v| canonicalise(v).unwrap_or(Value::Null))
                .collect();
            (!out.is_empty()).then_some(Value::Array(out))
        }
        other => Some(other.clone()),
    }
}

/// The canonical text of a pod template (see the module docs): what [`pod_template_hash`]
/// hashes. Also used to compare templates for equality.
pub fn canonical_template(template: &Value) -> String {
    let mut t = template.clone();
    if let Some(labels) = t
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        labels.remove(crate::api::consts::DEFAULT_ROLLOUT_UNIQUE_LABEL_KEY);
    }
    canonicalise(&t).map(|v| v.to_string()).unwrap_or_default()
}

/// The pod template hash of a Rollout's template (see the module docs).
pub fn pod_template_hash(template: &Value, collision_count: Option<i32>) -> String {
    let mut h = fnv1a32(canonical_template(template).as_bytes());
    if let Some(c) = collision_count {
        h = fnv1a32_continue(h, &c.to_le_bytes());
    }
    safe_encode(&h.to_string())
}

/// Upstream's `ComputeStepHash`: FNV-1a over the JSON of the canary steps (`null` when there
/// are none), safe-encoded. Our step types serialise their fields in upstream's order with
/// unset fields omitted, as Go's `encoding/json` does with `omitempty`.
pub fn step_hash(steps: Option<&Vec<crate::api::CanaryStep>>) -> String {
    let json = serde_json::to_string(&steps).unwrap_or_else(|_| "null".into());
    safe_encode(&fnv1a32(json.as_bytes()).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fnv_matches_reference_vectors() {
        assert_eq!(fnv1a32(b""), 0x811c9dc5);
        assert_eq!(fnv1a32(b"a"), 0xe40c292c);
        assert_eq!(fnv1a32(b"foobar"), 0xbf9cf968);
    }

    #[test]
    fn safe_encode_maps_digits() {
        // '0' is 48: 48 % 27 = 21 -> '4'; '1' -> '5'; '9' is 57 % 27 = 3 -> 'f'.
        assert_eq!(safe_encode("0"), "4");
        assert_eq!(safe_encode("19"), "5f");
    }

    #[test]
    fn template_hash_ignores_hash_label_key_order_and_empties() {
        let a = json!({"metadata": {"labels": {"app": "x"}},
                       "spec": {"containers": [{"name": "c", "image": "i:1", "env": []}]}});
        let b = json!({"spec": {"containers": [{"image": "i:1", "name": "c", "resources": {}}]},
                       "metadata": {"labels": {"app": "x", "rollouts-pod-template-hash": "abc"},
                                    "creationTimestamp": null}});
        assert_eq!(pod_template_hash(&a, None), pod_template_hash(&b, None));
        let c = json!({"metadata": {"labels": {"app": "x"}},
                       "spec": {"containers": [{"name": "c", "image": "i:2"}]}});
        assert_ne!(pod_template_hash(&a, None), pod_template_hash(&c, None));
    }

    #[test]
    fn collision_count_changes_the_hash() {
        let a = json!({"spec": {"containers": [{"name": "c", "image": "i:1"}]}});
        assert_ne!(pod_template_hash(&a, None), pod_template_hash(&a, Some(1)));
        assert_ne!(
            pod_template_hash(&a, Some(1)),
            pod_template_hash(&a, Some(2))
        );
    }

    #[test]
    fn step_hash_matches_upstream_vectors() {
        // Values from upstream's TestComputeStepHash.
        let pause = || crate::api::CanaryStep {
            pause: Some(crate::api::RolloutPause::default()),
            ..Default::default()
        };
        assert_eq!(step_hash(Some(&vec![pause()])), "6b9b86fbd5");
        assert_eq!(step_hash(Some(&vec![pause(), pause()])), "79c9b9f6bf");
    }

    #[test]
    fn template_hash_is_pinned() {
        // The hash is part of our compatibility promise: it must never change between
        // releases for the same template. If this fails, the canonical form changed.
        let t = json!({"metadata": {"labels": {"app": "demo"}},
                       "spec": {"containers": [{"name": "demo", "image": "nginx:1.19",
                                                "ports": [{"containerPort": 80}]}]}});
        assert_eq!(
            canonical_template(&t),
            r#"{"metadata":{"labels":{"app":"demo"}},"spec":{"containers":[{"image":"nginx:1.19","name":"demo","ports":[{"containerPort":80}]}]}}"#
        );
        let h = pod_template_hash(&t, None);
        assert_eq!(
            h,
            safe_encode(&fnv1a32(canonical_template(&t).as_bytes()).to_string())
        );
        assert!(h.len() >= 6 && h.len() <= 10, "{h}");
    }
}
