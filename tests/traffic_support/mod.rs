//! Helpers shared by the `tests/traffic_*.rs` suites: building Rollouts and router objects,
//! and a simulated API server that carries out [`ObjectChange`]s the way the controller will
//! (creates get a resourceVersion, patches must carry the current one and bump it).
#![allow(dead_code)]

use std::path::PathBuf;

use rollouts::api::Rollout;
use rollouts::traffic::{
    ObjectChange, ObjectKey, Objects, TrafficIntent, gatewayapi, istio, json as tjson, nginx,
};
use serde_json::{Value, json};

pub const NS: &str = "ns";

/// A canary Rollout `ro` in namespace `ns` (uid `uid-1`) with Services `canary`/`stable`.
pub fn rollout(traffic_routing: Value) -> Rollout {
    rollout_with(traffic_routing, json!([{"setWeight": 20}, {"pause": {}}]))
}

pub fn rollout_with(traffic_routing: Value, steps: Value) -> Rollout {
    serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "ro", "namespace": NS, "uid": "uid-1"},
        "spec": {"strategy": {"canary": {
            "canaryService": "canary",
            "stableService": "stable",
            "trafficRouting": traffic_routing,
            "steps": steps,
        }}},
    }))
    .expect("rollout")
}

/// An intent at `weight` for `ro` with hashes `c1`/`s1`.
pub fn intent(ro: &Rollout, weight: i32) -> TrafficIntent<'_> {
    let mut i = TrafficIntent::for_rollout(ro);
    i.weight = weight;
    i.canary_hash = Some("c1");
    i.stable_hash = Some("s1");
    i
}

/// A host-split destination.
pub fn dest(host: &str, weight: i64) -> Value {
    json!({"destination": {"host": host}, "weight": weight})
}

/// A subset-split destination.
pub fn subset_dest(host: &str, subset: &str, weight: i64) -> Value {
    json!({"destination": {"host": host, "subset": subset}, "weight": weight})
}

/// An HTTP route.
pub fn http_route(name: &str, dests: Vec<Value>) -> Value {
    json!({"name": name, "route": dests})
}

/// A VirtualService `name` in `ns` with the given spec (resourceVersion 7).
pub fn virtual_service(name: &str, spec: Value) -> Value {
    virtual_service_in(NS, name, spec)
}

pub fn virtual_service_in(ns: &str, name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": istio::API_VERSION,
        "kind": "VirtualService",
        "metadata": {"name": name, "namespace": ns, "resourceVersion": "7"},
        "spec": spec,
    })
}

/// A DestinationRule `name` in `ns` (resourceVersion 5).
pub fn destination_rule(name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": istio::API_VERSION,
        "kind": "DestinationRule",
        "metadata": {"name": name, "namespace": NS, "resourceVersion": "5"},
        "spec": spec,
    })
}

/// The key an object is stored under (by kind; namespace defaults to `ns`).
pub fn key_of(obj: &Value) -> ObjectKey {
    let kind = tjson::get_str(obj, &["kind"]).unwrap_or_default();
    let name = tjson::get_str(obj, &["metadata", "name"]).unwrap_or_default();
    let ns = tjson::get_str(obj, &["metadata", "namespace"]).unwrap_or(NS);
    match kind {
        "VirtualService" => istio::virtual_service_key(ns, name),
        "DestinationRule" => istio::destination_rule_key(ns, name),
        "Ingress" => nginx::ingress_key(ns, name),
        "HTTPRoute" => gatewayapi::http_route_key(ns, name),
        other => panic!("no key for kind {other}"),
    }
}

pub fn objects(list: Vec<Value>) -> Objects {
    list.into_iter().map(|o| (key_of(&o), o)).collect()
}

/// Carries out changes like the API server: a patch must name the current resourceVersion.
pub fn apply(objects: &Objects, changes: &[ObjectChange]) -> Objects {
    let mut out = objects.clone();
    for c in changes {
        match c {
            ObjectChange::Create { key, object } => {
                assert!(!out.contains_key(key), "create of existing {key}");
                let mut o = object.clone();
                o["metadata"]["resourceVersion"] = json!("1");
                out.insert(key.clone(), o);
            }
            ObjectChange::Patch { key, patch } => {
                let obj = out
                    .get_mut(key)
                    .unwrap_or_else(|| panic!("patch of missing {key}"));
                let rv = tjson::resource_version(obj).map(str::to_string);
                assert_eq!(
                    tjson::get_str(patch, &["metadata", "resourceVersion"]).map(str::to_string),
                    rv,
                    "patch of {key} must carry its resourceVersion"
                );
                tjson::apply_merge_patch(obj, patch);
                let next = rv.and_then(|r| r.parse::<u64>().ok()).unwrap_or(0) + 1;
                obj["metadata"]["resourceVersion"] = json!(next.to_string());
            }
            ObjectChange::Delete { key } => {
                assert!(out.remove(key).is_some(), "delete of missing {key}");
            }
        }
    }
    out
}

/// The patch of the only change, which must be a patch of `key`.
pub fn only_patch(changes: &[ObjectChange], key: &ObjectKey) -> Value {
    assert_eq!(changes.len(), 1, "changes: {changes:#?}");
    match &changes[0] {
        ObjectChange::Patch { key: k, patch } if k == key => patch.clone(),
        other => panic!("expected a patch of {key}, got {other:#?}"),
    }
}

/// The upstream compatibility corpus, or `None` (with a notice) when it is absent, unless
/// `ROLLOUTS_REQUIRE_COMPAT=1`.
pub fn compat_corpus() -> Option<PathBuf> {
    xtask::testkit::compat_corpus()
}
