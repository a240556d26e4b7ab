//! What the caches keep: every watched object loses what no reader uses before it enters a
//! reflector store (measured in the README: at 1,000 Rollouts most of a cached object's bytes
//! were its `managedFields`).
//!
//! - [`strip`]: `metadata.managedFields` and kubectl's `last-applied-configuration` annotation
//!   go from every cached object (nothing in the controller reads either);
//! - [`controlled_by_kind`]: a controller's store of ReplicaSets (or Services) holds only the
//!   ones a controller of one kind controls; others become deletions, so an object released
//!   by its owner leaves the store;
//!
//! (The Experiment controller, which must also know which names others' ReplicaSets and
//! Services take, keeps those names in an index, not the objects.)

use futures::{Stream, StreamExt};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use kube::runtime::watcher;

/// kubectl's client-side apply record.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Drops `managedFields` and the last-applied annotation.
pub fn strip<K: Resource>(obj: &mut K) {
    strip_meta(obj.meta_mut());
}

fn strip_meta(meta: &mut ObjectMeta) {
    meta.managed_fields = None;
    if let Some(a) = meta.annotations.as_mut() {
        a.remove(LAST_APPLIED);
    }
}

/// Whether `obj` has a controller owner of `kind` (any version of `group`).
pub fn has_controller_of_kind<K: Resource>(obj: &K, group: &str, kind: &str) -> bool {
    obj.meta().owner_references.iter().flatten().any(|o| {
        o.controller == Some(true)
            && o.kind == kind
            && o.api_version.split('/').next() == Some(group)
    })
}

/// Keeps, of a watch, only the objects a controller of `kind` (in `group`) controls: others
/// are not listed, and an update that shows one is no longer controlled is a deletion.
pub fn controlled_by_kind<K, S>(
    events: S,
    group: &'static str,
    kind: &'static str,
) -> impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static
where
    K: Resource + Send + 'static,
    S: Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static,
{
    events.filter_map(move |ev| {
        let out = match ev {
            Ok(watcher::Event::InitApply(o)) if !has_controller_of_kind(&o, group, kind) => None,
            Ok(watcher::Event::Apply(o)) if !has_controller_of_kind(&o, group, kind) => {
                Some(Ok(watcher::Event::Delete(o)))
            }
            other => Some(other),
        };
        futures::future::ready(out)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::ReplicaSet;
    use serde_json::json;

    fn rs(owner_kind: Option<&str>) -> ReplicaSet {
        let owners = owner_kind.map(|k| {
            json!([{"apiVersion": if k == "Rollout" { "argoproj.io/v1alpha1" } else { "apps/v1" },
                    "kind": k, "name": "o", "uid": "u1", "controller": true}])
        });
        serde_json::from_value(json!({
            "metadata": {"name": "a", "namespace": "n", "uid": "rs1",
                "ownerReferences": owners.unwrap_or(json!([])),
                "managedFields": [{"manager": "m", "operation": "Update", "apiVersion": "apps/v1"}],
                "annotations": {LAST_APPLIED: "{}", "keep": "1"}},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"a": "b"}}},
            "status": {"replicas": 2}
        }))
        .unwrap()
    }

    #[test]
    fn strip_drops_managed_fields_and_last_applied_only() {
        let mut o = rs(Some("Rollout"));
        strip(&mut o);
        assert_eq!(o.metadata.managed_fields, None);
        let ann = o.metadata.annotations.clone().unwrap();
        assert_eq!(ann.len(), 1);
        assert_eq!(ann["keep"], "1");
        assert_eq!(o.spec.as_ref().unwrap().replicas, Some(2));
    }

    #[tokio::test]
    async fn only_controlled_objects_pass_and_a_released_one_is_deleted() {
        let events = futures::stream::iter(vec![
            Ok(watcher::Event::Init),
            Ok(watcher::Event::InitApply(rs(Some("Rollout")))),
            Ok(watcher::Event::InitApply(rs(Some("Deployment")))),
            Ok(watcher::Event::InitDone),
            Ok(watcher::Event::Apply(rs(None))),
            Ok(watcher::Event::Apply(rs(Some("Rollout")))),
        ]);
        let out: Vec<_> = controlled_by_kind(events, "argoproj.io", "Rollout")
            .map(|e| match e.unwrap() {
                watcher::Event::Init => "init",
                watcher::Event::InitApply(_) => "init-apply",
                watcher::Event::InitDone => "init-done",
                watcher::Event::Apply(_) => "apply",
                watcher::Event::Delete(_) => "delete",
            })
            .collect()
            .await;
        assert_eq!(out, ["init", "init-apply", "init-done", "delete", "apply"]);
    }
}
