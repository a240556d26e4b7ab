//! The verbs of upstream's e2e fixtures (`test/fixtures/when.go`, `then.go`) over the real API
//! server, so that the ports in `upstream_*.rs` read like upstream's tests: wait for a status,
//! patch or update the spec, scale, and expect pod counts by revision or by canary/stable hash
//! and the Rollout's replica counts.

use crate::common::*;
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::ResourceExt;
use kube::api::{ListParams, Patch, PatchParams};
use rollouts::api::Rollout;
use serde_json::{Value, json};
use std::time::Duration;

/// How long a wait for a Rollout status may take.
pub const WAIT: Duration = Duration::from_secs(90);

/// Upstream's `WaitForRolloutStatus`: the phase, for the Rollout's current generation.
pub async fn wait_status(ns: &TestNs, name: &str, status: &str) -> Rollout {
    wait_rollout(ns, name, &format!("status {status}"), WAIT, |ro, _| {
        let st = ro.status.clone().unwrap_or_default();
        st.phase.as_deref() == Some(status)
            && st.observed_generation == ro.metadata.generation.map(|g| g.to_string())
    })
    .await
}

/// Upstream's `WaitForRolloutReplicas`: `status.replicas`.
pub async fn wait_replicas(ns: &TestNs, name: &str, count: i32) -> Rollout {
    wait_rollout(
        ns,
        name,
        &format!("status.replicas={count}"),
        WAIT,
        |ro, _| ro.status.as_ref().and_then(|s| s.replicas) == Some(count),
    )
    .await
}

/// Upstream's `WaitForRolloutAvailableReplicas`: `status.availableReplicas`.
pub async fn wait_available(ns: &TestNs, name: &str, count: i32) -> Rollout {
    wait_rollout(
        ns,
        name,
        &format!("status.availableReplicas={count}"),
        WAIT,
        |ro, _| ro.status.as_ref().and_then(|s| s.available_replicas) == Some(count),
    )
    .await
}

/// A merge patch of the Rollout (upstream's `PatchSpec` takes `spec:` YAML; here JSON).
pub async fn patch_rollout(ns: &TestNs, name: &str, patch: Value) {
    ns.api::<Rollout>()
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap_or_else(|e| panic!("patching {name}: {e}"));
}

/// Upstream's `PatchSpec`.
pub async fn patch_spec(ns: &TestNs, name: &str, spec: Value) {
    patch_rollout(ns, name, json!({ "spec": spec })).await;
}

/// Upstream's `UpdateSpec()`: a new pod template annotation, hence a new revision.
pub async fn update_spec(ns: &TestNs, name: &str, rev: &str) {
    patch_spec(
        ns,
        name,
        json!({"template": {"metadata": {"annotations": {"update": rev}}}}),
    )
    .await;
}

/// Upstream's `ScaleRollout`.
pub async fn scale(ns: &TestNs, name: &str, replicas: i32) {
    patch_spec(ns, name, json!({ "replicas": replicas })).await;
}

/// Pods with this pod-template hash that are not being deleted (upstream's
/// `expectPodCountByHash`).
pub async fn pods_with_hash(ns: &TestNs, hash: &str) -> i32 {
    ns.api::<Pod>()
        .list(&ListParams::default().labels(&format!("rollouts-pod-template-hash={hash}")))
        .await
        .expect("listing pods")
        .items
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .count() as i32
}

/// The pod-template hash of the Rollout's ReplicaSet of `revision`.
pub async fn revision_hash(ns: &TestNs, name: &str, revision: i64) -> String {
    let ro = get_rollout(ns, name).await;
    let rss = replica_sets(ns, &ro).await;
    rss.iter()
        .find(|rs| crate::common::revision(rs) == revision)
        .map(hash_of)
        .unwrap_or_else(|| panic!("{name} has no ReplicaSet of revision {revision}"))
}

/// Upstream's `ExpectRevisionPodCount` for several revisions at once: waits (20 s) until the
/// pods of each revision number as given; pods take a moment to follow their ReplicaSet.
pub async fn expect_revision_pods(ns: &TestNs, name: &str, expected: &[(i64, i32)]) {
    let mut hashes = Vec::new();
    for (rev, _) in expected {
        hashes.push(revision_hash(ns, name, *rev).await);
    }
    let hashes = &hashes;
    ns.wait_for(
        &format!("pods by revision {expected:?}"),
        Duration::from_secs(20),
        || async move {
            for ((_, want), hash) in expected.iter().zip(hashes) {
                if pods_with_hash(ns, hash).await != *want {
                    return Ok(None);
                }
            }
            Ok(Some(()))
        },
    )
    .await;
}

/// Upstream's `ExpectCanaryStablePodCount`: pods of `status.currentPodHash` and of
/// `status.stableRS` (waits up to 20 s for the pods to follow their ReplicaSets).
pub async fn expect_canary_stable_pods(ns: &TestNs, name: &str, canary: i32, stable: i32) {
    ns.wait_for(
        &format!("canary/stable pods {canary}/{stable}"),
        Duration::from_secs(20),
        || async move {
            let st = get_rollout(ns, name).await.status.unwrap_or_default();
            let c = pods_with_hash(ns, st.current_pod_hash.as_deref().unwrap_or("-")).await;
            let s = pods_with_hash(ns, st.stable_rs.as_deref().unwrap_or("-")).await;
            Ok(((c, s) == (canary, stable)).then_some(()))
        },
    )
    .await;
}

/// Upstream's `ExpectReplicaCounts`: (desired, current, updated, ready, available) from the
/// Rollout's spec and status.
pub fn replica_counts(ro: &Rollout) -> (i32, i32, i32, i32, i32) {
    let st = ro.status.clone().unwrap_or_default();
    (
        ro.spec.replicas.unwrap_or(1),
        st.replicas.unwrap_or(0),
        st.updated_replicas.unwrap_or(0),
        st.ready_replicas.unwrap_or(0),
        st.available_replicas.unwrap_or(0),
    )
}

/// Waits (20 s) for upstream's `ExpectReplicaCounts`.
pub async fn expect_replica_counts(
    ns: &TestNs,
    name: &str,
    counts: (i32, i32, i32, i32, i32),
) -> Rollout {
    wait_rollout(
        ns,
        name,
        &format!("replica counts {counts:?}"),
        Duration::from_secs(20),
        |ro, _| replica_counts(ro) == counts,
    )
    .await
}

/// Upstream's `newService(name, app)`: a Service selecting `app`.
pub fn service(name: &str, app: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}}}\nspec:\n  selector: {{app: {app}}}\n  ports: [{{port: 80, protocol: TCP, targetPort: 8080}}]\n---\n"
    )
}

/// A Service's selector and whether it carries the managed-by annotation.
pub async fn service_selector(
    ns: &TestNs,
    name: &str,
) -> (std::collections::BTreeMap<String, String>, bool) {
    let svc = ns
        .api::<Service>()
        .get(name)
        .await
        .expect("reading Service");
    let managed = svc
        .annotations()
        .contains_key("argo-rollouts.argoproj.io/managed-by-rollouts");
    (
        svc.spec.and_then(|s| s.selector).unwrap_or_default(),
        managed,
    )
}

/// Upstream's `StartEventWatch` / `GetRolloutEventReasons`: every event of the namespace as the
/// watch delivers it (a new event, or a repeat counted on an existing one), so that a reason
/// recorded twice appears twice, in order.
pub struct EventWatch {
    seen: std::sync::Arc<std::sync::Mutex<Vec<(String, String, String)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl EventWatch {
    pub async fn start(ns: &TestNs) -> EventWatch {
        use futures::StreamExt;
        use k8s_openapi::api::events::v1::Event;
        use kube::api::{WatchEvent, WatchParams};
        let api = ns.api::<Event>();
        let mut stream = api
            .watch(&WatchParams::default(), "0")
            .await
            .expect("watching events")
            .boxed();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let out = seen.clone();
        let task = tokio::spawn(async move {
            while let Some(Ok(ev)) = stream.next().await {
                if let WatchEvent::Added(e) | WatchEvent::Modified(e) = ev {
                    let r = e.regarding.clone().unwrap_or_default();
                    out.lock().unwrap().push((
                        r.kind.unwrap_or_default(),
                        r.name.unwrap_or_default(),
                        e.reason.unwrap_or_default(),
                    ));
                }
            }
        });
        EventWatch { seen, task }
    }

    /// Reasons of the events regarding Rollout `name`, in the order the watch saw them.
    pub fn rollout_reasons(&self, name: &str) -> Vec<String> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(kind, n, _)| kind == "Rollout" && n == name)
            .map(|(_, _, reason)| reason.clone())
            .collect()
    }

    /// Waits until the reasons of the events regarding Rollout `name` contain `want` in order
    /// (not necessarily adjacent), and returns them.
    pub async fn wait_in_order(&self, ns: &TestNs, name: &str, want: &[&str]) -> Vec<String> {
        ns.wait_for(
            &format!("upstream's events {want:?} in order on {name}"),
            EVENT_WAIT,
            || async {
                let seen = self.rollout_reasons(name);
                let mut it = seen.iter();
                let all = want.iter().all(|w| it.any(|r| r == w));
                Ok(all.then_some(seen))
            },
        )
        .await
    }
}

impl Drop for EventWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Upstream's `PromoteRollout` / `PromoteRolloutFull`: the CLI's `promote` (which, upstream
/// and here, skips the current step of a canary that is not paused).
pub async fn cli_promote(ns: &TestNs, name: &str, full: bool) {
    let mut args = vec!["promote", name];
    if full {
        args.push("--full");
    }
    let out = crate::cli::cli(ns, &args).await;
    assert_eq!(out.code, 0, "{out}");
}
