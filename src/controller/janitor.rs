//! Services released when their Rollout no longer uses them (upstream's Service controller): a
//! Service a Rollout managed (annotation `argo-rollouts.argoproj.io/managed-by-rollouts`) gets
//! its `rollouts-pod-template-hash` selector and that annotation removed once the Rollout is
//! deleted, or once its spec stops naming the Service (a strategy switched from blue-green to
//! canary, a renamed `canaryService`, a removed `previewService`), so that it selects the
//! application's pods again instead of one ReplicaSet's hash that will soon have no pods.
//!
//! Safe with sharding and with caches that have not listed: a Service is released only for a
//! Rollout this controller saw disappear from its cache or stop naming the Service (or, at
//! start, one missing from its synced cache or not naming a Service it manages), and only after
//! a GET of that Rollout answers 404 or shows a spec that does not name it. The patch carries
//! the Service's resourceVersion, so a Rollout that has just taken the Service (back) over is
//! never undone.

use super::index::Index;
use super::{Error, FIELD_MANAGER, Synced, WriteCounters};
use crate::api::Rollout;
use crate::api::consts::{DEFAULT_ROLLOUT_UNIQUE_LABEL_KEY, MANAGED_BY_ROLLOUTS_KEY};
use k8s_openapi::api::core::v1::Service;
use kube::api::{DynamicObject, Patch, PatchParams};
use kube::runtime::reflector::Store;
use kube::{Api, Client, ResourceExt};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
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

/// The Services each cached Rollout names, by Rollout.
type References = BTreeMap<Key, BTreeSet<String>>;

fn references(rollouts: &Index<Rollout, String>) -> References {
    rollouts
        .all()
        .into_iter()
        .map(|(r, services)| {
            let key = (r.namespace.unwrap_or_default(), r.name);
            (key, services.into_iter().collect())
        })
        .collect()
}

/// The Services each Rollout manages (by their managed-by annotation), by Rollout.
fn managed_index(services: &Store<Service>) -> References {
    let mut out = References::new();
    for svc in services.state() {
        if let Some(owner) = managed_by(&svc) {
            out.entry((svc.namespace().unwrap_or_default(), owner.to_string()))
                .or_default()
                .insert(svc.name_any());
        }
    }
    out
}

/// What to release: the Services of a Rollout that is gone (`None`), or the named Services a
/// Rollout does not name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Pending(BTreeMap<Key, Option<BTreeSet<String>>>);

impl Pending {
    fn gone(&mut self, key: Key) {
        self.0.insert(key, None);
    }

    fn dropped(&mut self, key: Key, services: impl IntoIterator<Item = String>) {
        if let Some(named) = self.0.entry(key).or_insert_with(|| Some(BTreeSet::new())) {
            named.extend(services);
        }
    }

    /// Rollouts that were in the cache `before` and are not `now`.
    fn deleted(&mut self, before: &References, now: &References) {
        for key in before.keys().filter(|k| !now.contains_key(*k)) {
            self.gone(key.clone());
        }
    }

    /// Services a cached Rollout manages but does not name (in memory; confirmed by a GET
    /// before anything is written).
    fn unnamed(&mut self, managed: &References, named: &References) {
        for (key, services) in managed {
            if let Some(named) = named.get(key) {
                let dropped: Vec<String> = services.difference(named).cloned().collect();
                if !dropped.is_empty() {
                    self.dropped(key.clone(), dropped);
                }
            }
        }
    }
}

/// Releases the Services of the Rollouts that disappear from `rollouts` or stop naming them,
/// until the future is dropped.
pub async fn run(
    client: Client,
    services: Store<Service>,
    rollouts: Index<Rollout, String>,
    rollouts_synced: Synced,
    writes: Arc<WriteCounters>,
) {
    // The Service store is only waited on by reconciles, which poll it again on a timeout;
    // the Rollout store's readiness must not be polled at all ([`Synced`]).
    super::store_ready(&services, None).await;
    rollouts_synced.wait().await;
    let mut known = references(&rollouts);
    // At start: Rollouts deleted while no controller ran.
    let mut pending = Pending::default();
    for key in managed_index(&services).into_keys() {
        if !known.contains_key(&key) {
            pending.gone(key);
        }
    }
    loop {
        let now = references(&rollouts);
        pending.deleted(&known, &now);
        pending.unnamed(&managed_index(&services), &now);
        known = now;
        let mut done = Vec::new();
        for (key, which) in &pending.0 {
            match release(&client, &services, key, which.as_ref(), &writes).await {
                Ok(()) => done.push(key.clone()),
                Err(e) => {
                    warn!(rollout = %key.1, namespace = %key.0, "releasing its Services: {e}")
                }
            }
        }
        for key in done {
            pending.0.remove(&key);
        }
        tokio::time::sleep(SWEEP).await;
    }
}

/// Releases Services managed by Rollout `name` in `ns`: all of them if the Rollout is really
/// gone (`which` is `None`), or those of `which` its current spec really does not name.
async fn release(
    client: &Client,
    services: &Store<Service>,
    (ns, name): &Key,
    which: Option<&BTreeSet<String>>,
    writes: &WriteCounters,
) -> Result<(), Error> {
    let managed: Vec<_> = services
        .state()
        .into_iter()
        .filter(|s| s.namespace().as_deref() == Some(ns.as_str()) && managed_by(s) == Some(name))
        .filter(|s| which.is_none_or(|w| w.contains(&s.name_any())))
        .collect();
    if managed.is_empty() {
        return Ok(());
    }
    // Untyped: a Rollout that exists but does not decode is still there, and its spec is read
    // field by field.
    let ro_api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), ns, &super::decode::rollout_resource());
    let named = match ro_api.get_opt(name).await? {
        // Gone: every Service it managed is released.
        None => BTreeSet::new(),
        // Still there and this is a deletion (another shard's, or relabelled): not ours.
        Some(_) if which.is_none() => return Ok(()),
        Some(ro) => named_services(&ro.data),
    };
    let api: Api<Service> = Api::namespaced(client.clone(), ns);
    let pp = PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    };
    for svc in managed.iter().filter(|s| !named.contains(&s.name_any())) {
        writes.services.fetch_add(1, Ordering::Relaxed);
        match api
            .patch(&svc.name_any(), &pp, &Patch::Merge(&release_patch(svc)))
            .await
        {
            Ok(_) => info!(service = %svc.name_any(), namespace = %ns, rollout = %name,
                           "released a Service its Rollout no longer uses"),
            // Changed meanwhile (a Rollout took it over) or gone: nothing to undo.
            Err(kube::Error::Api(e)) if e.code == 409 || e.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// The Services a Rollout's spec names, read from its JSON (upstream's
/// `GetRolloutServiceKeys`): active and preview for blue-green, else canary, stable, ping and
/// pong.
fn named_services(ro: &Value) -> BTreeSet<String> {
    let strategy = &ro["spec"]["strategy"];
    let fields: &[&str] = if strategy["blueGreen"].is_object() {
        &["/blueGreen/activeService", "/blueGreen/previewService"]
    } else {
        &[
            "/canary/canaryService",
            "/canary/stableService",
            "/canary/pingPong/pingService",
            "/canary/pingPong/pongService",
        ]
    };
    fields
        .iter()
        .filter_map(|f| strategy.pointer(f)?.as_str())
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
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

    #[test]
    fn named_services_follow_upstreams_keys() {
        let bg = json!({"spec": {"strategy": {"blueGreen": {"activeService": "a", "previewService": ""}}}});
        assert_eq!(named_services(&bg), ["a".to_string()].into());
        let canary = json!({"spec": {"strategy": {"canary": {
            "canaryService": "c", "stableService": "s",
            "pingPong": {"pingService": "ping", "pongService": "pong"}}}}});
        assert_eq!(
            named_services(&canary),
            ["c", "ping", "pong", "s"].map(String::from).into()
        );
        assert!(named_services(&json!({"spec": {}})).is_empty());
    }

    #[test]
    fn a_dropped_reference_or_a_deleted_rollout_is_pending() {
        let key = |n: &str| ("ns".to_string(), n.to_string());
        let refs = |v: &[(&str, &[&str])]| -> References {
            v.iter()
                .map(|(n, s)| (key(n), s.iter().map(|x| x.to_string()).collect()))
                .collect()
        };
        let before = refs(&[
            ("switched", &["active", "preview"]),
            ("gone", &["x"]),
            ("same", &["y"]),
        ]);
        let now = refs(&[
            ("switched", &["active", "canary"]),
            ("same", &["y"]),
            ("new", &["z"]),
        ]);
        // What the Services' annotations say (another shard's Rollout "other" is not cached).
        let managed = refs(&[
            ("switched", &["active", "preview"]),
            ("gone", &["x"]),
            ("same", &["y"]),
            ("new", &["old-z", "z"]),
            ("other", &["o"]),
        ]);
        let mut pending = Pending::default();
        pending.deleted(&before, &now);
        pending.unnamed(&managed, &now);
        assert_eq!(
            pending.0,
            [
                (key("gone"), None),
                (key("new"), Some(["old-z".to_string()].into())),
                (key("switched"), Some(["preview".to_string()].into())),
            ]
            .into()
        );
        // A deletion wins over a dropped reference of the same Rollout.
        pending.dropped(key("gone"), ["x".to_string()]);
        assert_eq!(pending.0[&key("gone")], None);
    }
}
