//! Decoding Rollouts one by one.
//!
//! Parts of a Rollout are stored as given by the API server (the pod template is a
//! preserve-unknown-fields subtree), so an object can pass the CRD's schema and still not
//! decode into our types. A typed watch would then fail its whole LIST, and every Rollout would
//! stop being reconciled. Instead we watch Rollouts untyped and decode each one: one that does
//! not decode is taken out of the store (we stop acting on a spec we cannot read) and reported
//! by name — an InvalidSpec condition with the field path, and a Warning event — while every
//! other Rollout carries on.

use super::FIELD_MANAGER;
use crate::api::Rollout;
use crate::events::Recorder;
use futures::{Stream, StreamExt};
use kube::api::{ApiResource, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::runtime::events::{Event, EventType};
use kube::runtime::watcher;
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use tracing::warn;

/// The Rollout API as an untyped resource.
pub fn rollout_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("argoproj.io", "v1alpha1", "Rollout"),
        "rollouts",
    )
}

/// Why an object does not decode into a Rollout.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The object could not be turned into JSON.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// A field does not have the type a Rollout needs (its path, e.g.
    /// `spec.template.spec.containers[0].ports`, and why).
    #[error("{path}: {source}")]
    Field {
        path: String,
        #[source]
        source: serde_json::Error,
    },
}

/// Decodes one object, with the path of the first field that failed.
pub fn decode(obj: &DynamicObject) -> Result<Rollout, DecodeError> {
    let value = serde_json::to_value(obj)?;
    serde_path_to_error::deserialize::<_, Rollout>(value).map_err(|e| DecodeError::Field {
        path: e.path().to_string(),
        source: e.into_inner(),
    })
}

/// A Rollout that could not be decoded.
#[derive(Debug)]
pub struct Undecodable {
    pub namespace: String,
    pub name: String,
    pub error: DecodeError,
    pub object: Box<DynamicObject>,
}

/// Turns an untyped watch into a typed one: decodable Rollouts pass; an undecodable one is
/// sent to `bad` and, if it was known, deleted from the typed stream's point of view.
pub fn typed(
    events: impl Stream<Item = Result<watcher::Event<DynamicObject>, watcher::Error>> + Send + 'static,
    bad: mpsc::UnboundedSender<Undecodable>,
) -> impl Stream<Item = Result<watcher::Event<Rollout>, watcher::Error>> + Send + 'static {
    let convert = move |obj: DynamicObject, remove: bool| -> Option<Rollout> {
        match decode(&obj) {
            Ok(ro) => Some(ro),
            Err(error) => {
                if !remove {
                    let _ = bad.send(Undecodable {
                        namespace: obj.namespace().unwrap_or_default(),
                        name: obj.name_any(),
                        error,
                        object: Box::new(obj.clone()),
                    });
                }
                // A stand-in with the same identity, so the store drops it.
                let mut stub = Rollout::new(&obj.name_any(), Default::default());
                stub.metadata = obj.metadata.clone();
                Some(stub).filter(|_| remove)
            }
        }
    };
    events.filter_map(move |ev| {
        let out = match ev {
            Err(e) => Some(Err(e)),
            Ok(watcher::Event::Init) => Some(Ok(watcher::Event::Init)),
            Ok(watcher::Event::InitDone) => Some(Ok(watcher::Event::InitDone)),
            Ok(watcher::Event::InitApply(obj)) => match decode(&obj) {
                Ok(ro) => Some(Ok(watcher::Event::InitApply(ro))),
                Err(_) => {
                    convert(obj, false);
                    None
                }
            },
            Ok(watcher::Event::Apply(obj)) => match decode(&obj) {
                Ok(ro) => Some(Ok(watcher::Event::Apply(ro))),
                Err(_) => {
                    // Report it, and forget any earlier (decodable) version of it.
                    convert(obj.clone(), false);
                    convert(obj, true).map(|stub| Ok(watcher::Event::Delete(stub)))
                }
            },
            Ok(watcher::Event::Delete(obj)) => {
                convert(obj, true).map(|ro| Ok(watcher::Event::Delete(ro)))
            }
        };
        futures::future::ready(out)
    })
}

/// Reports undecodable Rollouts: an InvalidSpec condition (phase Degraded) through the status
/// subresource, and a Warning event; each distinct error once per object version.
pub async fn report(
    client: Client,
    recorder: Recorder,
    mut bad: mpsc::UnboundedReceiver<Undecodable>,
) {
    let seen: Arc<Mutex<HashMap<(String, String), String>>> = Default::default();
    while let Some(u) = bad.recv().await {
        let key = (u.namespace.clone(), u.name.clone());
        let fingerprint = format!(
            "{}|{}",
            u.object.resource_version().unwrap_or_default(),
            u.error
        );
        if seen
            .lock()
            .map(|s| s.get(&key) == Some(&fingerprint))
            .unwrap_or(false)
        {
            continue;
        }
        let message = format!(
            "The Rollout \"{}\" is invalid: cannot decode {}",
            u.name, u.error
        );
        warn!(rollout = %u.name, namespace = %u.namespace, "{message}");
        let already = u
            .object
            .data
            .pointer("/status/conditions")
            .and_then(|c| c.as_array())
            .is_some_and(|cs| {
                cs.iter()
                    .any(|c| c["type"] == "InvalidSpec" && c["message"] == message.as_str())
            });
        let api: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), &u.namespace, &rollout_resource());
        if !already {
            let now = k8s_openapi::jiff::Timestamp::now()
                .strftime("%Y-%m-%dT%H:%M:%SZ")
                .to_string();
            let mut conditions: Vec<serde_json::Value> = u
                .object
                .data
                .pointer("/status/conditions")
                .and_then(|c| c.as_array())
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter(|c| c["type"] != "InvalidSpec")
                .collect();
            conditions.push(json!({
                "type": "InvalidSpec", "status": "True", "reason": "InvalidSpec", "message": message,
                "lastUpdateTime": now, "lastTransitionTime": now,
            }));
            let patch = json!({"status": {
                "conditions": conditions,
                "phase": "Degraded",
                "message": format!("InvalidSpec: {message}"),
            }});
            let pp = PatchParams {
                field_manager: Some(FIELD_MANAGER.into()),
                ..Default::default()
            };
            if let Err(e) = api.patch_status(&u.name, &pp, &Patch::Merge(&patch)).await {
                warn!(rollout = %u.name, "reporting an undecodable Rollout: {e}");
                continue;
            }
        }
        let reference = u.object.object_ref(&rollout_resource());
        let ev = Event {
            type_: EventType::Warning,
            reason: "InvalidSpec".into(),
            note: Some(message.chars().take(1000).collect()),
            action: "Decode".into(),
            secondary: None,
        };
        recorder.publish(ev, &reference).await;
        if let Ok(mut s) = seen.lock() {
            s.insert(key, fingerprint);
        }
    }
}

/// Turns an untyped watch into a typed one for kinds we only read (AnalysisRuns, templates):
/// objects that do not decode are left out (and logged), so one bad object never stops the
/// watch. The AnalysisRun controller reports its own runs.
pub fn tolerant<K>(
    events: impl Stream<Item = Result<watcher::Event<DynamicObject>, watcher::Error>> + Send + 'static,
) -> impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static
where
    K: serde::de::DeserializeOwned + Send + 'static,
{
    fn conv<K: serde::de::DeserializeOwned>(obj: DynamicObject) -> Option<K> {
        let name = obj.name_any();
        match serde_json::to_value(&obj).and_then(serde_json::from_value::<K>) {
            Ok(k) => Some(k),
            Err(e) => {
                warn!(object = %name, "ignoring an object that does not decode: {e}");
                None
            }
        }
    }
    events.filter_map(|ev| {
        futures::future::ready(match ev {
            Err(e) => Some(Err(e)),
            Ok(watcher::Event::Init) => Some(Ok(watcher::Event::Init)),
            Ok(watcher::Event::InitDone) => Some(Ok(watcher::Event::InitDone)),
            Ok(watcher::Event::InitApply(o)) => conv(o).map(|k| Ok(watcher::Event::InitApply(k))),
            Ok(watcher::Event::Apply(o)) => conv(o).map(|k| Ok(watcher::Event::Apply(k))),
            Ok(watcher::Event::Delete(o)) => conv(o).map(|k| Ok(watcher::Event::Delete(k))),
        })
    })
}

/// The untyped API of a typed kind.
pub fn untyped<K: kube::Resource<DynamicType = ()>>(
    client: &Client,
    namespace: Option<&str>,
) -> Api<DynamicObject> {
    let ar = ApiResource::erase::<K>(&());
    match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
        None => Api::all_with(client.clone(), &ar),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dynamic(v: serde_json::Value) -> DynamicObject {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn decode_names_the_failing_field() {
        let bad = dynamic(json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
            "metadata": {"name": "x", "namespace": "ns"},
            "spec": {"template": {"spec": {"containers": [{"name": "c", "ports": "80"}]}}}
        }));
        let err = decode(&bad).unwrap_err().to_string();
        assert!(
            err.starts_with("spec.template.spec.containers[0].ports"),
            "{err}"
        );
        let good = dynamic(json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
            "metadata": {"name": "x", "namespace": "ns"},
            "spec": {"template": {"spec": {"containers": [{"name": "c"}]}}}
        }));
        assert!(decode(&good).is_ok());
    }
}
