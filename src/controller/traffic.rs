//! Traffic router objects (VirtualServices, DestinationRules, Ingresses, HTTPRoutes), and the
//! workloads `workloadRef`s name (Deployments...), kept in reflector stores started lazily per
//! kind the first time a Rollout references one; and the writes the planner asks for.
//!
//! A change to a watched router object re-triggers the Rollouts that reference it, so a
//! VirtualService edited behind our back is put right, and one created after the Rollout
//! unblocks it, without polling.

use super::{Error, FIELD_MANAGER, Tasks};
use crate::traffic::{ObjectChange, ObjectKey, Objects};
use futures::StreamExt;
use kube::api::{ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::mpsc;
use tracing::{info, warn};

/// The kind a store watches (group/version + plural).
type KindKey = (String, String);

/// Lazily started stores of router objects.
pub struct TrafficStores {
    client: Client,
    namespace: Option<String>,
    stores: Mutex<HashMap<KindKey, Store<DynamicObject>>>,
    /// Router object changes, as the keys of the objects that changed.
    changed: mpsc::UnboundedSender<ObjectKey>,
    /// The watches feeding the stores, aborted when the stores are dropped.
    watches: Tasks,
}

fn api_resource(key: &ObjectKey) -> ApiResource {
    key.api_resource()
}

impl TrafficStores {
    /// Returns the stores and the stream of changed object keys.
    pub fn new(
        client: Client,
        namespace: Option<String>,
    ) -> (TrafficStores, mpsc::UnboundedReceiver<ObjectKey>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            TrafficStores {
                client,
                namespace,
                stores: Mutex::new(HashMap::new()),
                changed: tx,
                watches: Tasks::default(),
            },
            rx,
        )
    }

    fn store_for(&self, key: &ObjectKey) -> Store<DynamicObject> {
        let kind = (key.api_version.clone(), key.plural.clone());
        let mut stores = self.stores.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = stores.get(&kind) {
            return s.clone();
        }
        let ar = api_resource(key);
        let api: Api<DynamicObject> = match &self.namespace {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, &ar),
            None => Api::all_with(self.client.clone(), &ar),
        };
        let writer = reflector::store::Writer::new(ar.clone());
        let reader = writer.as_reader();
        let tx = self.changed.clone();
        let template = key.clone();
        // managedFields go (see `super::slim`); annotations stay as they are, since router
        // objects are patched from what was read.
        let stream = watcher(api, watcher::Config::default())
            .default_backoff()
            .modify(|o: &mut DynamicObject| o.metadata.managed_fields = None)
            .reflect(writer)
            .applied_objects();
        self.watches.spawn(async move {
            futures::pin_mut!(stream);
            // The last fingerprint passed on, per object: status-only updates (a Deployment's
            // replica counts, an Ingress's load balancer) concern no Rollout.
            let mut seen: HashMap<(String, String), u64> = HashMap::new();
            while let Some(ev) = stream.next().await {
                match ev {
                    Ok(obj) => {
                        let mut k = template.clone();
                        k.namespace = obj.namespace().unwrap_or_default();
                        k.name = obj.name_any();
                        let fp = fingerprint(&obj);
                        if seen.insert((k.namespace.clone(), k.name.clone()), fp) == Some(fp) {
                            continue;
                        }
                        let _ = tx.send(k);
                    }
                    Err(e) => warn!(kind = %template.kind, "watching traffic router objects: {e}"),
                }
            }
        });
        info!(kind = %key.kind, "watching traffic router objects");
        stores.insert(kind, reader.clone());
        reader
    }

    /// The current objects for these keys. A store that has not listed yet is waited for
    /// (bounded): a missing VirtualService must not be reported before we have looked.
    pub async fn observe(&self, keys: &[ObjectKey]) -> Objects {
        let mut out = Objects::new();
        for key in keys {
            let store = self.store_for(key);
            if !super::store_ready(&store, Some(Duration::from_secs(5))).await {
                warn!(kind = %key.kind, "no {} listed yet (is its CRD installed?)", key.plural);
            }
            let r = ObjectRef::new_with(&key.name, api_resource(key)).within(&key.namespace);
            if let Some(obj) = store.get(&r)
                && let Ok(v) = serde_json::to_value(&*obj)
            {
                out.insert(key.clone(), v);
            }
        }
        out
    }

    /// Carries out one change. A conflict (the object moved on) is reported so the Rollout is
    /// planned again from the fresh object.
    pub async fn apply(&self, change: &ObjectChange) -> Result<(), Error> {
        let key = change.key();
        let ar = api_resource(key);
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), &key.namespace, &ar);
        let pp = PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..Default::default()
        };
        match change {
            ObjectChange::Create { object, .. } => {
                let obj: DynamicObject = serde_json::from_value(object.clone())?;
                let post = PostParams {
                    field_manager: Some(FIELD_MANAGER.into()),
                    ..Default::default()
                };
                match api.create(&post, &obj).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(e)) if e.code == 409 => {}
                    Err(e) => return Err(e.into()),
                }
            }
            ObjectChange::Patch { patch, .. } => {
                api.patch(&key.name, &pp, &Patch::Merge(patch)).await?;
            }
            ObjectChange::Delete { .. } => {
                match api.delete(&key.name, &DeleteParams::default()).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(e)) if e.code == 404 => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        info!(object = %key, "traffic router object written");
        Ok(())
    }
}

/// What of a watched object can concern a Rollout: its identity, its generation (the spec)
/// and its labels and annotations.
fn fingerprint(obj: &DynamicObject) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    obj.metadata.uid.hash(&mut h);
    obj.metadata.generation.hash(&mut h);
    obj.metadata.labels.hash(&mut h);
    obj.metadata.annotations.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::fingerprint;
    use kube::api::DynamicObject;
    use serde_json::json;

    fn obj(v: serde_json::Value) -> DynamicObject {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn status_only_updates_keep_the_fingerprint() {
        let base = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d", "uid": "u1", "generation": 2, "resourceVersion": "5",
                         "annotations": {"a": "1"}},
            "spec": {"replicas": 3}, "status": {"readyReplicas": 1}});
        let fp = fingerprint(&obj(base.clone()));
        let mut status = base.clone();
        status["status"]["readyReplicas"] = json!(3);
        status["metadata"]["resourceVersion"] = json!("6");
        assert_eq!(fingerprint(&obj(status)), fp);
        for (path, value) in [
            ("/metadata/generation", json!(3)),
            ("/metadata/uid", json!("u2")),
            ("/metadata/annotations/a", json!("2")),
        ] {
            let mut changed = base.clone();
            *changed.pointer_mut(path).unwrap() = value;
            assert_ne!(fingerprint(&obj(changed)), fp, "{path}");
        }
    }
}
