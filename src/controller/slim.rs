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
//! - [`Compact`]: the Rollout controller's Rollouts and ReplicaSets are cached as their JSON
//!   bytes, with only their identity decoded, and decoded whole when a reconcile reads them.
//!   A decoded Kubernetes object takes several times its JSON: every label, annotation and
//!   selector map is a B-tree with room for eleven entries, and every string its own
//!   allocation (heaptrack at 1,000 Rollouts: the two stores were 19 of the 25.5 MB heap, about
//!   9 KB per object, against 1.5 to 2.5 KB of JSON). Decoding one costs tens of
//!   microseconds, once per reconcile.
//!
//! (The Experiment controller, which must also know which names others' ReplicaSets and
//! Services take, keeps those names in an index, not the objects.)

use futures::{Stream, StreamExt};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use kube::runtime::watcher;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::borrow::Cow;
use std::marker::PhantomData;

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

/// An object of kind `K` kept as its JSON (see the module docs). Its [`Resource::meta`] holds
/// only its identity: name, namespace, uid, resourceVersion, generation, creation and deletion
/// times and owner references (what the stores, the indexes and the controller's owner
/// look-ups read); everything else is in [`Compact::decode`].
pub struct Compact<K> {
    meta: ObjectMeta,
    json: Box<[u8]>,
    kind: PhantomData<fn() -> K>,
}

impl<K: Resource + Serialize> Compact<K> {
    /// `obj`, compacted (after [`strip`]).
    pub fn new(obj: &K) -> Compact<K> {
        let m = obj.meta();
        Compact {
            meta: ObjectMeta {
                name: m.name.clone(),
                namespace: m.namespace.clone(),
                uid: m.uid.clone(),
                resource_version: m.resource_version.clone(),
                generation: m.generation,
                creation_timestamp: m.creation_timestamp.clone(),
                deletion_timestamp: m.deletion_timestamp.clone(),
                owner_references: m.owner_references.clone(),
                ..ObjectMeta::default()
            },
            // Serializing a decoded object cannot fail (its maps have string keys).
            json: serde_json::to_vec(obj)
                .unwrap_or_default()
                .into_boxed_slice(),
            kind: PhantomData,
        }
    }
}

impl<K: DeserializeOwned> Compact<K> {
    /// The whole object.
    pub fn decode(&self) -> Result<K, serde_json::Error> {
        serde_json::from_slice(&self.json)
    }
}

/// Compacts the objects of a watch.
pub fn compact<K: Resource + Serialize>(ev: watcher::Event<K>) -> watcher::Event<Compact<K>> {
    match ev {
        watcher::Event::Init => watcher::Event::Init,
        watcher::Event::InitApply(o) => watcher::Event::InitApply(Compact::new(&o)),
        watcher::Event::InitDone => watcher::Event::InitDone,
        watcher::Event::Apply(o) => watcher::Event::Apply(Compact::new(&o)),
        watcher::Event::Delete(o) => watcher::Event::Delete(Compact::new(&o)),
    }
}

impl<K> Clone for Compact<K> {
    fn clone(&self) -> Self {
        Compact {
            meta: self.meta.clone(),
            json: self.json.clone(),
            kind: PhantomData,
        }
    }
}

impl<K> std::fmt::Debug for Compact<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compact")
            .field("name", &self.meta.name)
            .field("namespace", &self.meta.namespace)
            .field("resource_version", &self.meta.resource_version)
            .field("bytes", &self.json.len())
            .finish()
    }
}

impl<K: Resource> Resource for Compact<K> {
    type DynamicType = K::DynamicType;
    type Scope = K::Scope;

    fn kind(dt: &Self::DynamicType) -> Cow<'_, str> {
        K::kind(dt)
    }
    fn group(dt: &Self::DynamicType) -> Cow<'_, str> {
        K::group(dt)
    }
    fn version(dt: &Self::DynamicType) -> Cow<'_, str> {
        K::version(dt)
    }
    fn plural(dt: &Self::DynamicType) -> Cow<'_, str> {
        K::plural(dt)
    }
    fn meta(&self) -> &ObjectMeta {
        &self.meta
    }
    /// The identity only: a change here does not reach [`Compact::decode`].
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.meta
    }
}

/// Decoded as `K`, then compacted (the controller runtime's bound on its main resource; the
/// controller itself is fed from a watch of `K`).
impl<'de, K: Resource + Serialize + DeserializeOwned> serde::Deserialize<'de> for Compact<K> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        K::deserialize(d).map(|k| Compact::new(&k))
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
    fn a_compact_object_keeps_its_identity_and_decodes_to_the_same_object() {
        let mut o = rs(Some("Rollout"));
        strip(&mut o);
        o.metadata.labels = Some([("a".to_string(), "b".to_string())].into());
        o.metadata.resource_version = Some("7".into());
        let c = Compact::new(&o);
        assert_eq!(c.decode().unwrap(), o);
        assert_eq!(c.meta().name.as_deref(), Some("a"));
        assert_eq!(c.meta().namespace.as_deref(), Some("n"));
        assert_eq!(c.meta().uid.as_deref(), Some("rs1"));
        assert_eq!(c.meta().resource_version.as_deref(), Some("7"));
        assert_eq!(c.meta().owner_references, o.metadata.owner_references);
        assert!(
            has_controller_of_kind(&c, "argoproj.io", "Rollout"),
            "owner look-ups work on the compact form"
        );
        assert_eq!(c.meta().labels, None, "the rest is only in the JSON");
        assert_eq!(
            Compact::<ReplicaSet>::url_path(&(), Some("n")),
            ReplicaSet::url_path(&(), Some("n"))
        );
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
