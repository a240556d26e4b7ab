//! Canary without a mesh, against the real API server.

use crate::common::*;
use kube::ResourceExt;
use rollouts::api::Rollout;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const NAME: &str = "canary-demo";

/// (step index, canary available, stable available) as seen by the test.
fn counts(ro: &Rollout, rss: &[k8s_openapi::api::apps::v1::ReplicaSet]) -> (i32, i32, i32) {
    let st = ro.status.clone().unwrap_or_default();
    let current = st.current_pod_hash.unwrap_or_default();
    let stable = st.stable_rs.unwrap_or_default();
    let of = |h: &str| rss.iter().find(|rs| hash_of(rs) == h).map_or(0, available);
    (
        st.current_step_index.unwrap_or(-1),
        of(&current),
        if stable == current { 0 } else { of(&stable) },
    )
}

/// The seeds' scenario, with the example manifest as shipped: deploy, update, paused at
/// `pause {}` with 1 canary of 5, promote, the timed pauses, Healthy with the old RS at 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeds_scenario_update_pause_promote_complete() {
    let (ns, ctl) = setup("canary-seeds").await;
    ns.apply(&example("examples/canary-demo.yaml")).await;
    let ro = wait_rollout(
        &ns,
        NAME,
        "initial deploy Healthy",
        Duration::from_secs(60),
        is_healthy,
    )
    .await;
    let st = ro.status.clone().unwrap();
    assert_eq!(
        st.current_step_index,
        Some(8),
        "initial deploy skips the steps"
    );
    assert_eq!(st.hpa_replicas, Some(5));
    assert_eq!(st.selector.as_deref(), Some("app=canary-demo"));
    assert_eq!(
        ro.annotations()
            .get("rollout.argoproj.io/revision")
            .map(String::as_str),
        Some("1")
    );

    set_image(&ns, NAME, "argoproj/rollouts-demo:yellow").await;
    let ro = wait_rollout(
        &ns,
        NAME,
        "paused at step 1 with 1 canary / 4 stable",
        Duration::from_secs(60),
        |ro, rss| {
            let (phase, msg, idx) = phase(ro);
            phase == "Paused"
                && msg == "CanaryPauseStep"
                && idx == Some(1)
                && counts(ro, rss) == (1, 1, 4)
        },
    )
    .await;
    let st = ro.status.clone().unwrap();
    assert_eq!(st.controller_pause, Some(true));
    assert_eq!(st.pause_conditions.as_ref().map(Vec::len), Some(1));
    assert_ne!(st.stable_rs, st.current_pod_hash);
    // Paused stays paused.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(phase(&get_rollout(&ns, NAME).await).2, Some(1));

    promote(&ns, NAME).await;
    let t0 = Instant::now();
    let seen = std::sync::Mutex::new(BTreeSet::new());
    let ro = wait_rollout(
        &ns,
        NAME,
        "promoted to Healthy",
        Duration::from_secs(120),
        |ro, rss| {
            seen.lock().unwrap().insert(counts(ro, rss));
            is_healthy(ro, rss) && ro.status.as_ref().unwrap().current_step_index == Some(8)
        },
    )
    .await;
    let elapsed = t0.elapsed();
    let seen = seen.into_inner().unwrap();
    for expected in [(3, 2, 3), (5, 3, 2), (7, 4, 1)] {
        assert!(
            seen.contains(&expected),
            "never saw (step, canary, stable) = {expected:?}; saw {seen:?}"
        );
    }
    assert!(
        elapsed >= Duration::from_secs(30),
        "three 10s pauses took only {elapsed:?}"
    );
    let rss = replica_sets(&ns, &ro).await;
    assert_eq!(rss.len(), 2);
    assert_eq!(spec_replicas(&rss[0]), 0, "old ReplicaSet scaled to 0");
    assert_eq!(
        ro.status.as_ref().unwrap().stable_rs.as_deref(),
        Some(hash_of(&rss[1]).as_str())
    );
    wait_events(
        &ns,
        NAME,
        &[
            "NewReplicaSetCreated",
            "RolloutUpdated",
            "ScalingReplicaSet",
            "RolloutStepCompleted",
            "RolloutPaused",
            "RolloutResumed",
            "RolloutCompleted",
        ],
    )
    .await;

    // An unchanged Rollout costs no writes (over 10 s, as the README says).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = ctl.writes.total();
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(ctl.writes.total(), before, "writes while nothing changed");
    ctl.stop().await;
}

const FAST: &str = r#"
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: fast}
spec:
  replicas: 4
  selector: {matchLabels: {app: fast}}
  template:
    metadata: {labels: {app: fast}}
    spec:
      containers: [{name: app, image: "app:v1"}]
  strategy:
    canary:
      canaryService: fast-canary
      stableService: fast-stable
      steps:
      - setWeight: 50
      - pause: {}
      - setWeight: 75
      - pause: {duration: 1}
---
apiVersion: v1
kind: Service
metadata: {name: fast-canary}
spec:
  selector: {app: fast}
  ports: [{port: 80, protocol: TCP}]
---
apiVersion: v1
kind: Service
metadata: {name: fast-stable}
spec:
  selector: {app: fast}
  ports: [{port: 80, protocol: TCP}]
"#;

async fn service_hash(ns: &TestNs, name: &str) -> String {
    let svc = ns
        .api::<k8s_openapi::api::core::v1::Service>()
        .get(name)
        .await
        .unwrap();
    svc.spec
        .and_then(|s| s.selector)
        .and_then(|s| s.get("rollouts-pod-template-hash").cloned())
        .unwrap_or_default()
}

/// Abort scales the canary down and stable back up (Degraded, RolloutAborted); retry starts
/// again from step 0; canary/stable Services follow the right ReplicaSets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_then_retry() {
    let (ns, _ctl) = setup("canary-abort").await;
    ns.apply(FAST).await;
    let ro = wait_rollout(&ns, "fast", "Healthy", Duration::from_secs(60), is_healthy).await;
    let v1 = ro.status.clone().unwrap().stable_rs.unwrap();
    assert_eq!(service_hash(&ns, "fast-stable").await, v1);
    assert_eq!(service_hash(&ns, "fast-canary").await, v1);

    set_image(&ns, "fast", "app:v2").await;
    let ro = wait_rollout(
        &ns,
        "fast",
        "paused at 50%",
        Duration::from_secs(60),
        |ro, rss| phase(ro).0 == "Paused" && counts(ro, rss) == (1, 2, 2),
    )
    .await;
    let v2 = ro.status.clone().unwrap().current_pod_hash.unwrap();
    ns.wait_for("canary Service on v2", Duration::from_secs(20), || async {
        Ok((service_hash(&ns, "fast-canary").await == v2).then_some(()))
    })
    .await;
    assert_eq!(service_hash(&ns, "fast-stable").await, v1);

    abort(&ns, "fast").await;
    let ro = wait_rollout(
        &ns,
        "fast",
        "aborted: Degraded, stable back to 4, canary 0",
        Duration::from_secs(60),
        |ro, rss| {
            let (ph, msg, idx) = phase(ro);
            let v2rs = rss.iter().find(|rs| hash_of(rs) == v2);
            ph == "Degraded"
                && msg.starts_with("RolloutAborted: Rollout aborted update to revision 2")
                && idx == Some(0)
                && v2rs.is_some_and(|rs| spec_replicas(rs) == 0)
                && counts(ro, rss).2 == 4
        },
    )
    .await;
    let st = ro.status.clone().unwrap();
    assert_eq!(st.abort, Some(true));
    assert!(st.aborted_at.is_some());
    assert!(st.pause_conditions.is_none());
    let progressing = st
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_.as_deref() == Some("Progressing"))
        .unwrap();
    assert_eq!(progressing.status.as_deref(), Some("False"));
    assert_eq!(progressing.reason.as_deref(), Some("RolloutAborted"));
    ns.wait_for(
        "canary Service back on stable",
        Duration::from_secs(20),
        || async { Ok((service_hash(&ns, "fast-canary").await == v1).then_some(())) },
    )
    .await;
    wait_events(&ns, "fast", &["RolloutAborted"]).await;

    retry(&ns, "fast").await;
    wait_rollout(
        &ns,
        "fast",
        "retried: paused at 50% again",
        Duration::from_secs(60),
        |ro, rss| {
            let (ph, _, idx) = phase(ro);
            ph == "Paused"
                && idx == Some(1)
                && counts(ro, rss) == (1, 2, 2)
                && ro.status.as_ref().unwrap().abort.is_none()
        },
    )
    .await;
    promote(&ns, "fast").await;
    wait_rollout(
        &ns,
        "fast",
        "Healthy on v2",
        Duration::from_secs(60),
        |ro, rss| {
            is_healthy(ro, rss)
                && ro.status.as_ref().unwrap().stable_rs.as_deref() == Some(v2.as_str())
        },
    )
    .await;
    // The stable Service follows `status.stableRS` on the reconcile after the promotion.
    ns.wait_for("stable Service on v2", Duration::from_secs(20), || async {
        Ok((service_hash(&ns, "fast-stable").await == v2).then_some(()))
    })
    .await;
}

/// Going back to the stable template mid-update is a fast rollback: no steps.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fast_rollback_to_stable_skips_steps() {
    let (ns, _ctl) = setup("canary-rollback").await;
    ns.apply(FAST).await;
    let ro = wait_rollout(&ns, "fast", "Healthy", Duration::from_secs(60), is_healthy).await;
    let v1 = ro.status.clone().unwrap().stable_rs.unwrap();
    set_image(&ns, "fast", "app:v2").await;
    wait_rollout(
        &ns,
        "fast",
        "paused at 50%",
        Duration::from_secs(60),
        |ro, rss| phase(ro).0 == "Paused" && counts(ro, rss) == (1, 2, 2),
    )
    .await;
    set_image(&ns, "fast", "app:v1").await;
    let ro = wait_rollout(
        &ns,
        "fast",
        "back on v1, Healthy",
        Duration::from_secs(60),
        |ro, rss| {
            is_healthy(ro, rss)
                && ro.status.as_ref().unwrap().current_pod_hash.as_deref() == Some(v1.as_str())
        },
    )
    .await;
    assert_eq!(ro.status.unwrap().current_step_index, Some(4));
    wait_events(&ns, "fast", &["SkipSteps"]).await;
    // The rollback reused the v1 ReplicaSet with a new revision.
    let rss = replica_sets(&ns, &get_rollout(&ns, "fast").await).await;
    assert_eq!(rss.len(), 2);
    let v1rs = rss.iter().find(|rs| hash_of(rs) == v1).unwrap();
    assert_eq!(revision(v1rs), 3);
    assert_eq!(
        v1rs.annotations()
            .get("rollout.argoproj.io/revision-history")
            .map(String::as_str),
        Some("1")
    );
}

/// A bad canary image never becomes available: the progress deadline marks the Rollout
/// Degraded (ProgressDeadlineExceeded); with progressDeadlineAbort it aborts to stable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_canary_hits_progress_deadline_and_aborts() {
    let (ns, _ctl) = setup("canary-deadline").await;
    let manifest = FAST.replace(
        "replicas: 4",
        "replicas: 4\n  progressDeadlineSeconds: 5\n  progressDeadlineAbort: true",
    );
    ns.apply(&manifest).await;
    wait_rollout(&ns, "fast", "Healthy", Duration::from_secs(60), is_healthy).await;
    set_image(&ns, "fast", "app:v2-bad").await;
    let ro = wait_rollout(
        &ns,
        "fast",
        "aborted after the deadline",
        Duration::from_secs(60),
        |ro, rss| {
            let (ph, msg, _) = phase(ro);
            ph == "Degraded" && msg.starts_with("RolloutAborted") && counts(ro, rss).2 == 4
        },
    )
    .await;
    wait_events(&ns, "fast", &["RolloutAborted"]).await;
    assert_eq!(ro.status.unwrap().abort, Some(true));
}

/// The controller's status writes are held 500 ms before they are sent (a slow network), and
/// their answers counted.
#[derive(Default)]
struct SlowStatusWrites {
    /// Set by the test: the next status write notifies `started` (and clears it).
    armed: std::sync::atomic::AtomicBool,
    /// Told when a status write starts its wait, once armed.
    started: tokio::sync::Notify,
    conflicts: AtomicU64,
}

impl SlowStatusWrites {
    fn is_status_write(method: &http::Method, uri: &http::Uri) -> bool {
        method == http::Method::PATCH
            && uri.path().contains("/rollouts/")
            && uri.path().ends_with("/status")
    }
}

impl Tap for SlowStatusWrites {
    fn before(&self, method: &http::Method, uri: &http::Uri) -> Duration {
        if Self::is_status_write(method, uri) {
            if self.armed.swap(false, Ordering::SeqCst) {
                self.started.notify_one();
            }
            Duration::from_millis(500)
        } else {
            Duration::ZERO
        }
    }
    fn after(&self, method: &http::Method, uri: &http::Uri, status: http::StatusCode) -> Duration {
        if Self::is_status_write(method, uri) && status == http::StatusCode::CONFLICT {
            self.conflicts.fetch_add(1, Ordering::Relaxed);
        }
        Duration::ZERO
    }
}

/// A command written while a reconcile's status write is in flight is never overwritten: the
/// user's abort lands between the controller's read and its write (the write is held back
/// to make sure), the write fails with a conflict (counted), and the abort wins. (The abort
/// is sent once the update is recorded in the status: an abort the controller reads together
/// with a spec change it has not recorded yet is cleared by that update, as upstream's
/// `resetRolloutStatus` does.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_command_racing_reconciles_is_kept() {
    init_logging();
    crds_installed().await;
    let ns = TestNs::new("canary-race").await;
    let tap = Arc::new(SlowStatusWrites::default());
    let client = tapped_client(tap.clone()).await;
    let _ctl = start_controller_with(&ns, client);
    ns.apply(FAST).await;
    let ro = wait_rollout(&ns, "fast", "Healthy", Duration::from_secs(60), is_healthy).await;
    let v1 = ro.status.unwrap().stable_rs.unwrap();
    let before = tap.conflicts.load(Ordering::Relaxed);
    set_image(&ns, "fast", "app:v2").await;
    // The update is recorded; the controller is busy scaling the canary and will write its
    // status again.
    wait_rollout(
        &ns,
        "fast",
        "the update recorded",
        Duration::from_secs(30),
        |ro, _| {
            ro.status
                .as_ref()
                .and_then(|s| s.current_pod_hash.as_deref())
                .is_some_and(|h| h != v1)
        },
    )
    .await;
    tap.armed.store(true, Ordering::SeqCst);
    // A status write computed before the abort is on its way: abort now.
    tokio::time::timeout(Duration::from_secs(30), tap.started.notified())
        .await
        .expect("no status write within 30 s of the update");
    abort(&ns, "fast").await;
    wait_rollout(
        &ns,
        "fast",
        "aborted and settled",
        Duration::from_secs(60),
        |ro, rss| phase(ro).0 == "Degraded" && counts(ro, rss).2 == 4,
    )
    .await;
    assert!(
        tap.conflicts.load(Ordering::Relaxed) > before,
        "the controller's stale status write did not conflict: the race was not exercised"
    );
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let ro = get_rollout(&ns, "fast").await;
        assert_eq!(
            ro.status.unwrap().abort,
            Some(true),
            "the abort was overwritten"
        );
    }
}

/// Killing the controller mid-rollout and starting a new one continues at the right step
/// with no duplicate ReplicaSet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_restart_continues_at_the_step() {
    let (ns, ctl) = setup("canary-restart").await;
    ns.apply(FAST).await;
    wait_rollout(&ns, "fast", "Healthy", Duration::from_secs(60), is_healthy).await;
    set_image(&ns, "fast", "app:v2").await;
    wait_rollout(
        &ns,
        "fast",
        "paused at 50%",
        Duration::from_secs(60),
        |ro, rss| phase(ro).0 == "Paused" && counts(ro, rss) == (1, 2, 2),
    )
    .await;
    ctl.stop().await;
    promote(&ns, "fast").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    // Nothing moves without a controller.
    assert_eq!(phase(&get_rollout(&ns, "fast").await).2, Some(1));
    let ctl2 = start_controller(&ns);
    let ro = wait_rollout(
        &ns,
        "fast",
        "Healthy after restart",
        Duration::from_secs(60),
        is_healthy,
    )
    .await;
    assert_eq!(
        replica_sets(&ns, &ro).await.len(),
        2,
        "duplicate ReplicaSet"
    );
    assert!(ctl2.writes.status.load(Ordering::Relaxed) > 0);
}

/// `kubectl scale` during a rollout resizes through the scale subresource.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_scale_during_rollout() {
    let (ns, _ctl) = setup("canary-scale").await;
    ns.apply(FAST).await;
    wait_rollout(&ns, "fast", "Healthy", Duration::from_secs(60), is_healthy).await;
    set_image(&ns, "fast", "app:v2").await;
    wait_rollout(
        &ns,
        "fast",
        "paused at 50%",
        Duration::from_secs(60),
        |ro, rss| phase(ro).0 == "Paused" && counts(ro, rss) == (1, 2, 2),
    )
    .await;
    let out = ns.kubectl(&["scale", "rollout/fast", "--replicas=8"]);
    assert!(
        out.status.success(),
        "kubectl scale: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_rollout(
        &ns,
        "fast",
        "8 replicas split 4/4",
        Duration::from_secs(60),
        |ro, rss| {
            counts(ro, rss) == (1, 4, 4) && ro.status.as_ref().unwrap().hpa_replicas == Some(8)
        },
    )
    .await;
    let out = ns.kubectl(&[
        "get",
        "rollout",
        "fast",
        "-o",
        "jsonpath={.status.HPAReplicas} {.status.selector}",
    ]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(text, "8 app=fast");
}

/// An invalid spec gets InvalidSpec, Degraded, a Warning event, and nothing is created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_spec_is_reported_not_acted_on() {
    let (ns, _ctl) = setup("canary-invalid").await;
    ns.apply(&FAST.replace("setWeight: 75", "setWeight: 175"))
        .await;
    let ro = wait_rollout(
        &ns,
        "fast",
        "InvalidSpec",
        Duration::from_secs(30),
        |ro, _| phase(ro).0 == "Degraded" && phase(ro).1.starts_with("InvalidSpec"),
    )
    .await;
    let msg = phase(&ro).1;
    assert!(msg.contains("steps[2].setWeight"), "{msg}");
    assert!(
        replica_sets(&ns, &ro).await.is_empty(),
        "an invalid Rollout created ReplicaSets"
    );
    wait_events(&ns, "fast", &["InvalidSpec"]).await;
    // Fixing it clears the condition and the Rollout deploys.
    ns.apply(FAST).await;
    wait_rollout(
        &ns,
        "fast",
        "Healthy after the fix",
        Duration::from_secs(60),
        is_healthy,
    )
    .await;
}

/// `spec.restartAt` (what `kubectl argo rollouts restart` writes) replaces every pod, a bounded
/// number at a time, then records `status.restartedAt`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_at_replaces_pods_within_max_unavailable() {
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::{ListParams, Patch, PatchParams};
    let (ns, _ctl) = setup("canary-restart-at").await;
    ns.apply(FAST).await;
    wait_rollout(&ns, "fast", "Healthy", Duration::from_secs(60), is_healthy).await;
    let before: BTreeSet<String> = ns
        .api::<Pod>()
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|p| p.name_any())
        .collect();
    assert_eq!(before.len(), 4);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let now = k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    ns.api::<Rollout>()
        .patch(
            "fast",
            &PatchParams::default(),
            &Patch::Merge(&serde_json::json!({"spec": {"restartAt": now}})),
        )
        .await
        .unwrap();
    let min_ready = std::sync::Mutex::new(i32::MAX);
    let ro = wait_rollout(
        &ns,
        "fast",
        "restartedAt recorded",
        Duration::from_secs(90),
        |ro, rss| {
            let avail: i32 = rss.iter().map(available).sum();
            let mut m = min_ready.lock().unwrap();
            *m = (*m).min(avail);
            ro.status
                .as_ref()
                .and_then(|s| s.restarted_at.as_ref())
                .map(|t| t.0.to_string())
                == ro.spec.restart_at.as_ref().map(|t| t.0.to_string())
        },
    )
    .await;
    assert!(
        *min_ready.lock().unwrap() >= 3,
        "availability fell below replicas - maxUnavailable"
    );
    let after: BTreeSet<String> = ns
        .api::<Pod>()
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .map(|p| p.name_any())
        .collect();
    assert!(
        before.is_disjoint(&after),
        "old pods survived the restart: {before:?} / {after:?}"
    );
    assert_eq!(
        replica_sets(&ns, &ro).await.len(),
        1,
        "a restart is not a new revision"
    );
}

/// A Rollout that passes the CRD schema but does not decode is reported by name with the
/// field path (InvalidSpec, Warning event), and the other Rollouts carry on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_rollout_is_reported_and_others_unaffected() {
    use kube::api::{ApiResource, DynamicObject};
    let (ns, _ctl) = setup("canary-undecodable").await;
    let bad = FAST
        .replace("name: fast}", "name: broken}")
        .replace("app: fast", "app: broken")
        .replace("fast-canary", "broken-canary")
        .replace("fast-stable", "broken-stable")
        .replace(
            r#"containers: [{name: app, image: "app:v1"}]"#,
            r#"containers: [{name: app, image: "app:v1", ports: "80"}]"#,
        );
    assert!(bad.contains(r#"ports: "80""#));
    ns.apply(&bad).await;
    ns.apply(FAST).await;
    wait_rollout(
        &ns,
        "fast",
        "the good Rollout Healthy",
        Duration::from_secs(60),
        is_healthy,
    )
    .await;
    let ar = ApiResource::from_gvk_with_plural(
        &kube::core::GroupVersionKind::gvk("argoproj.io", "v1alpha1", "Rollout"),
        "rollouts",
    );
    let api: kube::Api<DynamicObject> =
        kube::Api::namespaced_with(ns.client.clone(), &ns.name, &ar);
    let msg = ns
        .wait_for(
            "the broken Rollout reported",
            Duration::from_secs(30),
            || async {
                let o = api.get("broken").await?;
                let m = o
                    .data
                    .pointer("/status/message")
                    .and_then(|m| m.as_str())
                    .unwrap_or_default()
                    .to_string();
                Ok(
                    (o.data.pointer("/status/phase").and_then(|p| p.as_str()) == Some("Degraded"))
                        .then_some(m),
                )
            },
        )
        .await;
    assert!(
        msg.contains("spec.template.spec.containers[0].ports"),
        "{msg}"
    );
    wait_events(&ns, "broken", &["InvalidSpec"]).await;
    // Fixing it brings it back under management.
    ns.apply(&bad.replace(r#", ports: "80""#, "")).await;
    wait_rollout(
        &ns,
        "broken",
        "the fixed Rollout Healthy",
        Duration::from_secs(60),
        is_healthy,
    )
    .await;
}

/// Migration from Argo Rollouts: a Rollout whose ReplicaSet and status were written by the
/// upstream controller (its own hash) is adopted — no second ReplicaSet, the hash kept — and
/// the next update proceeds from it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adopts_replica_sets_created_by_argo_rollouts() {
    use k8s_openapi::api::apps::v1::ReplicaSet;
    use kube::api::{Patch, PatchParams, PostParams};
    crds_installed().await;
    init_logging();
    let ns = TestNs::new("canary-adopt").await;
    ns.apply(FAST).await;
    let ro = get_rollout(&ns, "fast").await;
    let argo_hash = "6d7c9b8f5";
    let mut template = serde_json::to_value(ro.spec.template.clone().unwrap()).unwrap();
    template["metadata"]["labels"]["rollouts-pod-template-hash"] = serde_json::json!(argo_hash);
    let rs: ReplicaSet = serde_json::from_value(serde_json::json!({
        "metadata": {
            "name": format!("fast-{argo_hash}"),
            "labels": {"app": "fast", "rollouts-pod-template-hash": argo_hash},
            "annotations": {"rollout.argoproj.io/revision": "1", "rollout.argoproj.io/desired-replicas": "4"},
            "ownerReferences": [{"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": "fast",
                                 "uid": ro.uid().unwrap(), "controller": true, "blockOwnerDeletion": true}]
        },
        "spec": {
            "replicas": 4,
            "selector": {"matchLabels": {"app": "fast", "rollouts-pod-template-hash": argo_hash}},
            "template": template
        }
    }))
    .unwrap();
    ns.api::<ReplicaSet>()
        .create(&PostParams::default(), &rs)
        .await
        .unwrap();
    let step_hash = rollouts::plan::hash::step_hash(ro.canary().unwrap().steps.as_ref());
    ns.api::<Rollout>()
        .patch_status(
            "fast",
            &PatchParams::default(),
            &Patch::Merge(&serde_json::json!({"status": {
                "stableRS": argo_hash, "currentPodHash": argo_hash, "currentStepHash": step_hash,
                "currentStepIndex": 4, "observedGeneration": "1", "phase": "Healthy"
            }})),
        )
        .await
        .unwrap();
    ns.wait_for(
        "the Argo ReplicaSet's pods available",
        Duration::from_secs(60),
        || async {
            let rs = ns
                .api::<ReplicaSet>()
                .get(&format!("fast-{argo_hash}"))
                .await?;
            Ok((available(&rs) == 4).then_some(()))
        },
    )
    .await;

    let ctl = start_controller(&ns);
    let ro = wait_rollout(
        &ns,
        "fast",
        "Healthy under our controller",
        Duration::from_secs(60),
        |ro, rss| {
            is_healthy(ro, rss)
                && ctl.writes.total() > 0
                && rss.iter().all(|rs| {
                    rs.annotations()
                        .contains_key("rollout.argoproj.io/canonical-template-hash")
                })
        },
    )
    .await;
    let rss = replica_sets(&ns, &ro).await;
    assert_eq!(rss.len(), 1, "a duplicate ReplicaSet was created");
    assert_eq!(hash_of(&rss[0]), argo_hash);
    assert_eq!(
        ro.status.as_ref().unwrap().current_pod_hash.as_deref(),
        Some(argo_hash)
    );
    assert!(
        rss[0]
            .annotations()
            .contains_key("rollout.argoproj.io/canonical-template-hash")
    );

    set_image(&ns, "fast", "app:v2").await;
    let ro = wait_rollout(
        &ns,
        "fast",
        "paused at 50% from the adopted stable",
        Duration::from_secs(60),
        |ro, rss| phase(ro).0 == "Paused" && counts(ro, rss) == (1, 2, 2),
    )
    .await;
    assert_eq!(
        ro.status.as_ref().unwrap().stable_rs.as_deref(),
        Some(argo_hash)
    );
    ctl.stop().await;
}

/// ReplicaSet LISTs answer late (a slow or overloaded API server), to start a controller whose
/// Rollout cache fills before its ReplicaSet cache.
struct SlowReplicaSetLists(Duration);

impl Tap for SlowReplicaSetLists {
    fn after(&self, method: &http::Method, uri: &http::Uri, _: http::StatusCode) -> Duration {
        if is_list_of(method, uri, "replicasets") {
            self.0
        } else {
            Duration::ZERO
        }
    }
}

/// Safety under a slow API server: a controller (e.g. a new leader) that starts while an update
/// is pending must not plan before it has listed the ReplicaSets. Planning from the empty cache
/// would take the update for an initial deploy: a second ReplicaSet at full size, skipping
/// every step.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_waits_for_its_replica_set_cache_before_acting() {
    let (ns, ctl) = setup("canary-slow-cache").await;
    ns.apply(FAST).await;
    let ro = wait_rollout(&ns, "fast", "Healthy", Duration::from_secs(60), is_healthy).await;
    let v1 = ro.status.clone().unwrap().stable_rs.unwrap();
    ctl.stop().await;
    set_image(&ns, "fast", "app:v2").await;

    let slow = tapped_client(Arc::new(SlowReplicaSetLists(Duration::from_secs(4)))).await;
    let _ctl = start_controller_with(&ns, slow);
    let ro = wait_rollout(
        &ns,
        "fast",
        "paused at the first step of the update",
        Duration::from_secs(60),
        |ro, rss| phase(ro).0 == "Paused" && counts(ro, rss) == (1, 2, 2),
    )
    .await;
    let st = ro.status.unwrap();
    assert_eq!(st.stable_rs.as_deref(), Some(v1.as_str()));
    // Events are published in the order they were planned: once the pause's is out, a
    // RolloutCompleted planned before it would be too.
    let completed = wait_events(&ns, "fast", &["RolloutPaused"])
        .await
        .iter()
        .filter(|r| *r == "RolloutCompleted")
        .count();
    assert_eq!(completed, 1, "the update was taken for an initial deploy");
}

const LABELLED: &str = r#"
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: labelled}
spec:
  replicas: 2
  selector: {matchLabels: {app: labelled}}
  template:
    metadata: {labels: {app: labelled}}
    spec: {containers: [{name: app, image: "argoproj/rollouts-demo:blue"}]}
  strategy:
    canary:
      canaryMetadata:
        labels: {role: canary}
        annotations: {note: under-test}
      stableMetadata:
        labels: {role: stable}
      steps: [{setWeight: 50}, {pause: {}}]
"#;

/// `canaryMetadata`/`stableMetadata`: pods carry their ReplicaSet's role, and a promoted
/// canary's running pods are relabelled stable in place (same pods, no restart).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ephemeral_metadata_moves_onto_running_pods_on_promotion() {
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::ListParams;
    use std::collections::BTreeMap;
    init_logging();
    crds_installed().await;
    let ns = TestNs::new("canary-ephemeral").await;
    let pod_lists = Arc::new(PodLists::default());
    let ctl = start_controller_with(&ns, tapped_client(pod_lists.clone()).await);
    let pods_by_hash = || async {
        let mut out: BTreeMap<String, Vec<Pod>> = BTreeMap::new();
        for p in ns
            .api::<Pod>()
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
        {
            if p.metadata.deletion_timestamp.is_none() {
                let h = p.labels().get("rollouts-pod-template-hash").cloned();
                out.entry(h.unwrap_or_default()).or_default().push(p);
            }
        }
        out
    };
    let role = |p: &Pod| p.labels().get("role").cloned().unwrap_or_default();
    ns.apply(LABELLED).await;
    let ro = wait_rollout(
        &ns,
        "labelled",
        "Healthy",
        Duration::from_secs(60),
        is_healthy,
    )
    .await;
    let v1 = ro.status.clone().unwrap().stable_rs.unwrap();
    let pods = pods_by_hash().await;
    assert_eq!(pods[&v1].len(), 2);
    assert!(pods[&v1].iter().all(|p| role(p) == "stable"), "{pods:?}");

    set_image(&ns, "labelled", "argoproj/rollouts-demo:yellow").await;
    let ro = wait_rollout(
        &ns,
        "labelled",
        "paused with 1 canary",
        Duration::from_secs(60),
        |ro, rss| phase(ro).0 == "Paused" && counts(ro, rss).1 == 1,
    )
    .await;
    let v2 = ro.status.clone().unwrap().current_pod_hash.unwrap();
    let pods = pods_by_hash().await;
    let canary: Vec<&Pod> = pods[&v2].iter().collect();
    assert_eq!(canary.len(), 1);
    assert_eq!(role(canary[0]), "canary");
    assert_eq!(
        canary[0].annotations().get("note").map(String::as_str),
        Some("under-test")
    );
    assert!(pods[&v1].iter().all(|p| role(p) == "stable"));
    let canary_uid = canary[0].uid();

    promote(&ns, "labelled").await;
    wait_rollout(
        &ns,
        "labelled",
        "promoted to Healthy",
        Duration::from_secs(60),
        |ro, rss| {
            is_healthy(ro, rss) && ro.status.as_ref().unwrap().stable_rs.as_deref() == Some(&v2)
        },
    )
    .await;
    // The relabelling follows the promotion's status write: wait for it.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let pods = pods_by_hash().await;
        let new = pods.get(&v2).cloned().unwrap_or_default();
        if new.len() == 2 && new.iter().all(|p| role(p) == "stable") {
            assert!(
                new.iter().any(|p| p.uid() == canary_uid),
                "the canary pod was replaced, not relabelled"
            );
            assert!(new.iter().all(|p| !p.annotations().contains_key("note")));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "pods not relabelled stable: {new:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The record is written last, right after the pods.
    ns.wait_for(
        "the ReplicaSet's record",
        Duration::from_secs(10),
        || async {
            let ro = get_rollout(&ns, "labelled").await;
            let rss = replica_sets(&ns, &ro).await;
            let v2_rs = rss.iter().find(|rs| hash_of(rs) == v2).cloned();
            let record = v2_rs.and_then(|rs| {
                rs.annotations()
                    .get("rollout.argoproj.io/ephemeral-metadata")
                    .cloned()
            });
            Ok((record.as_deref() == Some(r#"{"labels":{"role":"stable"}}"#)).then_some(()))
        },
    )
    .await;
    // The pods were listed while they had to be relabelled.
    assert!(
        pod_lists.0.load(Ordering::Relaxed) > 0,
        "the controller never listed the pods it relabelled"
    );
    // Steady state again: no writes and no pod listing once the record is current (over
    // 10 s, resyncs included).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (writes, lists) = (ctl.writes.total(), pod_lists.0.load(Ordering::Relaxed));
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(ctl.writes.total(), writes, "writes while nothing changed");
    assert_eq!(
        pod_lists.0.load(Ordering::Relaxed),
        lists,
        "pods listed while nothing changed"
    );
    ctl.stop().await;
}

/// Counts the pod LISTs a controller makes.
#[derive(Default)]
struct PodLists(AtomicU64);

impl Tap for PodLists {
    fn before(&self, method: &http::Method, uri: &http::Uri) -> Duration {
        if is_list_of(method, uri, "pods") {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
        Duration::ZERO
    }
}

const WORKLOAD: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: wl}
spec:
  replicas: 3
  selector: {matchLabels: {app: wl}}
  template:
    metadata: {labels: {app: wl}}
    spec: {containers: [{name: app, image: "argoproj/rollouts-demo:blue"}]}
---
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: wl}
spec:
  replicas: 3
  workloadRef: {apiVersion: apps/v1, kind: Deployment, name: wl, scaleDown: progressively}
  strategy:
    canary:
      steps: [{setWeight: 50}, {pause: {}}]
"#;

/// `workloadRef` (upstream's migration path): the Rollout runs the Deployment's template,
/// takes over its replicas progressively, and is updated through the Deployment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workload_ref_takes_over_a_deployment_and_follows_its_template() {
    use k8s_openapi::api::apps::v1::Deployment;
    use kube::api::{Patch, PatchParams};
    let (ns, _ctl) = setup("canary-workload-ref").await;
    ns.apply(WORKLOAD).await;
    let deployments = ns.api::<Deployment>();
    let dep_replicas = || async {
        let d = deployments.get("wl").await.unwrap();
        let spec = d.spec.and_then(|s| s.replicas).unwrap_or(-1);
        (spec, d.metadata.generation.unwrap_or(0))
    };
    // The Deployment's pods are up before the Rollout's take over.
    let ro = wait_rollout(&ns, "wl", "Healthy", Duration::from_secs(90), is_healthy).await;
    let st = ro.status.clone().unwrap();
    let rss = replica_sets(&ns, &ro).await;
    assert_eq!(rss.len(), 1);
    let image = |rs: &k8s_openapi::api::apps::v1::ReplicaSet| {
        rs.spec
            .as_ref()
            .unwrap()
            .template
            .as_ref()
            .unwrap()
            .spec
            .as_ref()
            .unwrap()
            .containers[0]
            .image
            .clone()
            .unwrap()
    };
    assert_eq!(image(&rss[0]), "argoproj/rollouts-demo:blue");
    assert_eq!(st.selector.as_deref(), Some("app=wl"));
    ns.wait_for(
        "the Deployment scaled to 0",
        Duration::from_secs(20),
        || async { Ok((dep_replicas().await.0 == 0).then_some(())) },
    )
    .await;
    // Scaling the Deployment bumped its generation: the Rollout records the new one (status
    // and annotation, as Argo CD compares them) on its next reconcile.
    let observed = |ro: &Rollout| {
        let st = ro
            .status
            .as_ref()
            .and_then(|s| s.workload_observed_generation.clone());
        let ann = ro
            .annotations()
            .get("rollout.argoproj.io/workload-generation")
            .cloned();
        (st, ann)
    };
    ns.wait_for(
        "the workload generation recorded",
        Duration::from_secs(20),
        || async {
            let generation = Some(dep_replicas().await.1.to_string());
            let ro = get_rollout(&ns, "wl").await;
            Ok((observed(&ro) == (generation.clone(), generation)).then_some(()))
        },
    )
    .await;

    // An update is made to the Deployment's template: the Rollout canaries it.
    deployments
        .patch(
            "wl",
            &PatchParams::default(),
            &Patch::Merge(
                &serde_json::json!({"spec": {"template": {"spec": {"containers": [
                {"name": "app", "image": "argoproj/rollouts-demo:yellow"}]}}}}),
            ),
        )
        .await
        .unwrap();
    let ro = wait_rollout(
        &ns,
        "wl",
        "paused on the canary step",
        Duration::from_secs(60),
        |ro, rss| phase(ro).0 == "Paused" && rss.len() == 2 && counts(ro, rss).1 >= 1,
    )
    .await;
    let v2 = ro.status.clone().unwrap().current_pod_hash.unwrap();
    let rss = replica_sets(&ns, &ro).await;
    let canary = rss.iter().find(|rs| hash_of(rs) == v2).unwrap();
    assert_eq!(image(canary), "argoproj/rollouts-demo:yellow");
    ns.wait_for(
        "the new workload generation recorded",
        Duration::from_secs(20),
        || async {
            let generation = Some(dep_replicas().await.1.to_string());
            let ro = get_rollout(&ns, "wl").await;
            Ok((observed(&ro) == (generation.clone(), generation)).then_some(()))
        },
    )
    .await;
    assert_eq!(
        dep_replicas().await.0,
        0,
        "the Deployment stays scaled down"
    );
    promote(&ns, "wl").await;
    wait_rollout(
        &ns,
        "wl",
        "Healthy on yellow",
        Duration::from_secs(60),
        |ro, rss| {
            is_healthy(ro, rss)
                && ro.status.as_ref().unwrap().stable_rs.as_deref() == Some(v2.as_str())
        },
    )
    .await;
    assert_eq!(dep_replicas().await.0, 0);
}

/// A `workloadRef` naming no existing Deployment is InvalidSpec (nothing created) until the
/// Deployment appears, which the controller notices without polling.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workload_ref_to_a_missing_deployment_waits_for_it() {
    let (ns, _ctl) = setup("canary-workload-missing").await;
    let (deployment, rollout) = WORKLOAD.split_once("---").unwrap();
    ns.apply(rollout).await;
    let ro = wait_rollout(
        &ns,
        "wl",
        "InvalidSpec",
        Duration::from_secs(30),
        |ro, _| phase(ro).0 == "Degraded",
    )
    .await;
    assert!(
        phase(&ro).1.contains("Deployment \"wl\" not found"),
        "{:?}",
        phase(&ro)
    );
    assert!(replica_sets(&ns, &ro).await.is_empty());
    ns.apply(deployment).await;
    wait_rollout(
        &ns,
        "wl",
        "Healthy once the Deployment exists",
        Duration::from_secs(90),
        is_healthy,
    )
    .await;
}

const ANTI: &str = r#"
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: anti}
spec:
  replicas: 2
  selector: {matchLabels: {app: anti}}
  template:
    metadata: {labels: {app: anti}}
    spec: {containers: [{name: app, image: "argoproj/rollouts-demo:blue"}]}
  strategy:
    canary:
      antiAffinity:
        preferredDuringSchedulingIgnoredDuringExecution: {weight: 50}
      steps: [{setWeight: 50}, {pause: {}}]
"#;

/// `antiAffinity`: the canary's pods prefer nodes without stable pods (the term reaches the
/// pods the ReplicaSet creates); the template hash ignores it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anti_affinity_term_reaches_the_canary_pods() {
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::ListParams;
    let (ns, _ctl) = setup("canary-anti-affinity").await;
    ns.apply(ANTI).await;
    let ro = wait_rollout(&ns, "anti", "Healthy", Duration::from_secs(60), is_healthy).await;
    let v1 = ro.status.unwrap().stable_rs.unwrap();
    set_image(&ns, "anti", "argoproj/rollouts-demo:yellow").await;
    let ro = wait_rollout(
        &ns,
        "anti",
        "paused with a canary pod",
        Duration::from_secs(60),
        |ro, rss| phase(ro).0 == "Paused" && counts(ro, rss).1 == 1,
    )
    .await;
    let v2 = ro.status.unwrap().current_pod_hash.unwrap();
    let pods = ns
        .api::<Pod>()
        .list(&ListParams::default().labels(&format!("rollouts-pod-template-hash={v2}")))
        .await
        .unwrap()
        .items;
    assert_eq!(pods.len(), 1);
    let affinity = serde_json::to_value(pods[0].spec.as_ref().unwrap().affinity.clone()).unwrap();
    assert_eq!(
        affinity["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0],
        serde_json::json!({"weight": 50, "podAffinityTerm": {
            "labelSelector": {"matchExpressions": [
                {"key": "rollouts-pod-template-hash", "operator": "In", "values": [v1]}]},
            "namespaces": [ns.name.clone()], "topologyKey": "kubernetes.io/hostname"}})
    );
}

/// Deleting a Rollout releases its Services (hash selector and managed-by annotation
/// removed), so they select the application's pods again; a Service another controller's
/// Rollout manages, or one this controller only restarted next to, is left alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_rollout_releases_its_services() {
    use k8s_openapi::api::core::v1::Service;
    use kube::api::DeleteParams;
    let (ns, ctl) = setup("canary-release-services").await;
    ns.apply(FAST).await;
    let ro = wait_rollout(&ns, "fast", "Healthy", Duration::from_secs(60), is_healthy).await;
    let v1 = ro.status.unwrap().stable_rs.unwrap();
    ns.wait_for("both Services on v1", Duration::from_secs(20), || async {
        let both = service_hash(&ns, "fast-stable").await == v1
            && service_hash(&ns, "fast-canary").await == v1;
        Ok(both.then_some(()))
    })
    .await;
    // A controller restarted now must not take its own cold cache for a deletion.
    ctl.stop().await;
    let ctl = start_controller(&ns);
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(service_hash(&ns, "fast-stable").await, v1);
    ns.api::<Rollout>()
        .delete("fast", &DeleteParams::default())
        .await
        .unwrap();
    for name in ["fast-stable", "fast-canary"] {
        let svc = ns
            .wait_for("the Service released", Duration::from_secs(30), || async {
                let svc = ns.api::<Service>().get(name).await?;
                let released = !svc
                    .annotations()
                    .contains_key("argo-rollouts.argoproj.io/managed-by-rollouts");
                Ok(released.then_some(svc))
            })
            .await;
        let selector = svc.spec.unwrap().selector.unwrap();
        assert_eq!(
            selector,
            [("app".to_string(), "fast".to_string())].into(),
            "{name}"
        );
    }
    ctl.stop().await;
}

/// A Service the Rollout stops naming is released (upstream's Service controller): a renamed
/// `canaryService` gives the old Service back its plain selector at once, and a Service dropped
/// from the spec while no controller runs is released when the next one starts. The Services
/// the Rollout still names keep their hash.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_dropped_from_the_spec_are_released() {
    use k8s_openapi::api::core::v1::Service;
    use kube::api::{Patch, PatchParams};
    let (ns, ctl) = setup("canary-dropped-services").await;
    ns.apply(FAST).await;
    ns.apply(
        r#"
apiVersion: v1
kind: Service
metadata: {name: fast-canary-2}
spec:
  selector: {app: fast}
  ports: [{port: 80, protocol: TCP}]
"#,
    )
    .await;
    let ro = wait_rollout(&ns, "fast", "Healthy", Duration::from_secs(60), is_healthy).await;
    let v1 = ro.status.unwrap().stable_rs.unwrap();
    ns.wait_for("both Services on v1", Duration::from_secs(20), || async {
        let both = service_hash(&ns, "fast-stable").await == v1
            && service_hash(&ns, "fast-canary").await == v1;
        Ok(both.then_some(()))
    })
    .await;
    let released = |name: &'static str| {
        let ns = &ns;
        async move {
            ns.wait_for(
                &format!("{name} released"),
                Duration::from_secs(30),
                || async {
                    let svc = ns.api::<Service>().get(name).await?;
                    let managed = svc
                        .annotations()
                        .contains_key("argo-rollouts.argoproj.io/managed-by-rollouts");
                    let selector = svc.spec.unwrap().selector.unwrap_or_default();
                    let plain = selector == [("app".to_string(), "fast".to_string())].into();
                    Ok((!managed && plain).then_some(()))
                },
            )
            .await
        }
    };
    let set_strategy = |patch: serde_json::Value| {
        let ns = &ns;
        async move {
            ns.api::<Rollout>()
                .patch(
                    "fast",
                    &PatchParams::default(),
                    &Patch::Merge(&serde_json::json!({"spec": {"strategy": {"canary": patch}}})),
                )
                .await
                .expect("patching the strategy");
        }
    };
    // Renamed while the controller runs.
    set_strategy(serde_json::json!({"canaryService": "fast-canary-2"})).await;
    released("fast-canary").await;
    ns.wait_for(
        "the new canary Service adopted",
        Duration::from_secs(30),
        || async { Ok((service_hash(&ns, "fast-canary-2").await == v1).then_some(())) },
    )
    .await;
    assert_eq!(service_hash(&ns, "fast-stable").await, v1);

    // Dropped while no controller runs: released by the next one, at start.
    ctl.stop().await;
    set_strategy(serde_json::json!({"canaryService": null})).await;
    let ctl = start_controller(&ns);
    released("fast-canary-2").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(service_hash(&ns, "fast-stable").await, v1, "still named");
    ctl.stop().await;
}

/// A Rollout `NAME` (app label `NAME`), with the controller-instance-id label `LABEL` (a
/// whole line, or nothing).
const SHARDED: &str = r#"
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: NAME
  LABEL
spec:
  replicas: 1
  selector: {matchLabels: {app: NAME}}
  template:
    metadata: {labels: {app: NAME}}
    spec:
      containers: [{name: app, image: "app:v1"}]
  strategy:
    canary:
      steps: [{setWeight: 50}, {pause: {}}]
"#;

fn sharded(name: &str, instance_id: Option<&str>) -> String {
    let label = match instance_id {
        Some(id) => format!("labels: {{argo-rollouts.argoproj.io/controller-instance-id: {id}}}"),
        None => String::new(),
    };
    SHARDED.replace("NAME", name).replace("LABEL", &label)
}

/// Sharding by `--instance-id`: a controller with an instance id acts only on objects with
/// that label; one without acts only on unlabelled objects. Neither touches the others'.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instance_id_controllers_act_only_on_their_own_rollouts() {
    init_logging();
    crds_installed().await;
    let ns = TestNs::new("canary-instance-id").await;
    let config = |instance_id: Option<&str>| rollouts::controller::Config {
        namespace: Some(ns.name.clone()),
        instance_id: instance_id.map(str::to_string),
        ..Default::default()
    };
    ns.apply(&sharded("mine", Some("shard-a"))).await;
    ns.apply(&sharded("theirs", Some("shard-b"))).await;
    ns.apply(&sharded("unlabelled", None)).await;
    let untouched = |name: &'static str| {
        let ns = &ns;
        async move {
            let ro = get_rollout(ns, name).await;
            assert_eq!(ro.status, None, "{name} was reconciled: {:?}", ro.status);
            assert!(
                replica_sets(ns, &ro).await.is_empty(),
                "{name} got a ReplicaSet"
            );
        }
    };

    let a = start_controller_config(ns.client.clone(), config(Some("shard-a")));
    wait_rollout(&ns, "mine", "Healthy", Duration::from_secs(60), is_healthy).await;
    // The controller has listed everything by now; give it a while longer to misbehave.
    tokio::time::sleep(Duration::from_secs(3)).await;
    untouched("theirs").await;
    untouched("unlabelled").await;
    a.stop().await;

    let default = start_controller_config(ns.client.clone(), config(None));
    wait_rollout(
        &ns,
        "unlabelled",
        "Healthy",
        Duration::from_secs(60),
        is_healthy,
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    untouched("theirs").await;
    // Nor does it take over the shard's Rollout: an update of `mine` stays unplanned.
    set_image(&ns, "mine", "app:v2").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let ro = get_rollout(&ns, "mine").await;
    assert_eq!(replica_sets(&ns, &ro).await.len(), 1, "mine was updated");
    default.stop().await;
}
