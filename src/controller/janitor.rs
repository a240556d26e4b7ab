//! Services released when their Rollout is gone (upstream's Service controller): a Service a
//! Rollout managed (annotation `argo-rollouts.argoproj.io/managed-by-rollouts`) gets its
//! `rollouts-pod-template-hash` selector and that annotation removed once the Rollout is
//! deleted, so that it selects the application's pods again (say, of the Deployment the team
//! goes back to) instead of the deleted ReplicaSets' hash.
//!
//! Safe with sharding and with caches that have not listed: a Service is released only for
//! a Rollout this controller saw disappear from its cache (or, at start, one missing from its
//! synced cache), and only after a GET of that Rollout answers 404. The patch carries the
//! Service's resourceVersion, so a new Rollout of the same name that has just taken the
//! Service over is never undone.

use super::{Error, FIELD_MANAGER, Synced, WriteCounters};
use crate::api::Rollout;
use crate::api::consts::{DEFAULT_ROLLOUT_UNIQUE_LABEL_KEY, MANAGED_BY_ROLLOUTS_KEY};
use k8s_openapi::api::core::v1::Service;
use kube::api::{DynamicObject, Patch, PatchParams};
use kube::runtime::reflector::Store;
use kube::{Api, Client, ResourceExt};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tracing::{info, warn};

/// How often the caches are compared (in memory).
const SWEEP: Duration = Duration::from_secs(2);

/// The Rollout (name) that manages a Service, if one does.
pub fn managed_by(svc: &Service) -> Option<&str> {
    svc.annotations()
        .get(MANAGED_BY_ROLLOUTS_KEY)
        .map(String::as_str)
        .filter(|n| !n.is_empty())
}

/// The merge patch releasing a Service (its resourceVersion as precondition).
pub fn release_patch(svc: &Service) -> Value {
    let mut patch = json!({
        "metadata": {"annotations": {MANAGED_BY_ROLLOUTS_KEY: null}},
        "spec": {"selector": {DEFAULT_ROLLOUT_UNIQUE_LABEL_KEY: null}},
    });
    if let Some(rv) = svc.resource_version() {
        patch["metadata"]["resourceVersion"] = json!(rv);
    }
    patch
}

type Key = (String, String);

fn rollout_keys(rollouts: &Store<Rollout>) -> BTreeSet<Key> {
    rollouts
        .state()
        .iter()
        .map(|r| (r.namespace().unwrap_or_default(), r.name_any()))
        .collect()
}

/// Releases the Services of the Rollouts that disappear from `rollouts`, until the future is
/// dropped.
pub async fn run(
    client: Client,
    services: Store<Service>,
    rollouts: Store<Rollout>,
    rollouts_synced: Synced,
    writes: Arc<WriteCounters>,
) {
    // The Service store is only waited on by reconciles, which poll it again on a timeout;
    // the Rollout store's readiness must not be polled at all ([`Synced`]).
    super::store_ready(&services, None).await;
    rollouts_synced.wait().await;
    let mut known = rollout_keys(&rollouts);
    // At start: Rollouts deleted while no controller ran.
    let mut pending: BTreeSet<Key> = services
        .state()
        .iter()
        .filter_map(|s| {
            Some((
                s.namespace().unwrap_or_default(),
                managed_by(s)?.to_string(),
            ))
        })
        .filter(|k| !known.contains(k))
        .collect();
    loop {
        let now = rollout_keys(&rollouts);
        pending.extend(known.difference(&now).cloned());
        known = now;
        let mut done = Vec::new();
        for key in &pending {
            match release(&client, &services, key, &writes).await {
                Ok(()) => done.push(key.clone()),
                Err(e) => {
                    warn!(rollout = %key.1, namespace = %key.0, "releasing its Services: {e}")
                }
            }
        }
        for key in done {
            pending.remove(&key);
        }
        tokio::time::sleep(SWEEP).await;
    }
}

/// Releases the Services of Rollout `name` in `ns`, if the Rollout is really gone.
async fn release(
    client: &Client,
    services: &Store<Service>,
    (ns, name): &Key,
    writes: &WriteCounters,
) -> Result<(), Error> {
    let managed: Vec<_> = services
        .state()
        .into_iter()
        .filter(|s| s.namespace().as_deref() == Some(ns.as_str()) && managed_by(s) == Some(name))
        .collect();
    if managed.is_empty() {
        return Ok(());
    }
    // Untyped: a Rollout that exists but does not decode is still there.
    let ro_api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), ns, &super::decode::rollout_resource());
    if ro_api.get_opt(name).await?.is_some() {
        // Still there (another shard's, or relabelled): not ours to release.
        return Ok(());
    }
    let api: Api<Service> = Api::namespaced(client.clone(), ns);
    let pp = PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    };
    for svc in managed {
        writes.services.fetch_add(1, Ordering::Relaxed);
        match api
            .patch(&svc.name_any(), &pp, &Patch::Merge(&release_patch(&svc)))
            .await
        {
            Ok(_) => info!(service = %svc.name_any(), namespace = %ns, rollout = %name,
                           "released the Service of a deleted Rollout"),
            // Changed meanwhile (a new Rollout took it over) or gone: nothing to undo.
            Err(kube::Error::Api(e)) if e.code == 409 || e.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_release_patch_removes_the_hash_and_the_annotation_only() {
        let svc: Service = serde_json::from_value(json!({
            "metadata": {"name": "s", "resourceVersion": "12",
                         "annotations": {MANAGED_BY_ROLLOUTS_KEY: "ro", "keep": "me"}},
            "spec": {"selector": {"app": "a", DEFAULT_ROLLOUT_UNIQUE_LABEL_KEY: "abc"}}
        }))
        .unwrap();
        assert_eq!(managed_by(&svc), Some("ro"));
        assert_eq!(
            release_patch(&svc),
            json!({"metadata": {"resourceVersion": "12",
                                "annotations": {MANAGED_BY_ROLLOUTS_KEY: null}},
                   "spec": {"selector": {DEFAULT_ROLLOUT_UNIQUE_LABEL_KEY: null}}})
        );
        let plain: Service = serde_json::from_value(json!({"metadata": {"name": "p"}})).unwrap();
        assert_eq!(managed_by(&plain), None);
    }
}
