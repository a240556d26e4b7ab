//! Blue-green against the real API server: preview/active Services, pauses, promotion,
//! scale-down delay, previewReplicaCount, abort.

use crate::common::*;
use k8s_openapi::api::core::v1::{Endpoints, Pod, Service};
use kube::ResourceExt;
use kube::api::ListParams;
use rollouts::api::Rollout;
use std::time::{Duration, Instant};

pub(crate) async fn selector(ns: &TestNs, svc: &str) -> String {
    ns.api::<Service>()
        .get(svc)
        .await
        .unwrap()
        .spec
        .and_then(|s| s.selector)
        .and_then(|s| s.get("rollouts-pod-template-hash").cloned())
        .unwrap_or_default()
}

/// The pod-template hashes of the pods behind a Service's endpoints.
pub(crate) async fn endpoint_hashes(ns: &TestNs, svc: &str) -> Vec<String> {
    let ep = ns.api::<Endpoints>().get(svc).await.unwrap();
    let ips: Vec<String> = ep
        .subsets
        .unwrap_or_default()
        .into_iter()
        .flat_map(|s| s.addresses.unwrap_or_default())
        .map(|a| a.ip)
        .collect();
    let pods = ns
        .api::<Pod>()
        .list(&ListParams::default())
        .await
        .unwrap()
        .items;
    let mut out: Vec<String> = pods
        .iter()
        .filter(|p| {
            p.status
                .as_ref()
                .and_then(|s| s.pod_ip.as_ref())
                .is_some_and(|ip| ips.contains(ip))
        })
        .filter_map(|p| p.labels().get("rollouts-pod-template-hash").cloned())
        .collect();
    out.sort();
    out.dedup();
    out
}

fn bg_status(ro: &Rollout) -> (String, String) {
    let b = ro
        .status
        .clone()
        .unwrap_or_default()
        .blue_green
        .unwrap_or_default();
    (
        b.active_selector.unwrap_or_default(),
        b.preview_selector.unwrap_or_default(),
    )
}

fn spec_of(rss: &[k8s_openapi::api::apps::v1::ReplicaSet], hash: &str) -> i32 {
    rss.iter()
        .find(|rs| hash_of(rs) == hash)
        .map_or(-1, spec_replicas)
}

/// The project's own blue-green manifest (no corpus needed) through a manual promotion, with
/// the Services' selectors and endpoints checked before and after, and the old ReplicaSet
/// kept for its `scaleDownDelaySeconds` (10 s) before it goes to 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bluegreen_manual_promotion_keeps_the_old_replica_set_for_the_delay() {
    manual_promotion_with_scale_down_delay(
        "bg-manual",
        &bg("autoPromotionEnabled: false\n      scaleDownDelaySeconds: 10"),
        Names {
            rollout: "bg",
            active: "bg-active",
            preview: "bg-preview",
            replicas: 3,
        },
        "app:v2",
        Duration::from_secs(10),
    )
    .await;
}

/// Upstream's `examples/rollout-bluegreen.yaml` (the compatibility corpus; skipped with a
/// notice where it is absent) through the same manual promotion, with upstream's default
/// scale-down delay (30 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_bluegreen_example_manual_promotion() {
    let Some(manifest) = compat_file("examples/rollout-bluegreen.yaml") else {
        return;
    };
    manual_promotion_with_scale_down_delay(
        "bg-example",
        &manifest,
        Names {
            rollout: "rollout-bluegreen",
            active: "rollout-bluegreen-active",
            preview: "rollout-bluegreen-preview",
            replicas: 2,
        },
        "argoproj/rollouts-demo:green",
        Duration::from_secs(30),
    )
    .await;
}

/// The objects of a blue-green manifest.
struct Names {
    rollout: &'static str,
    active: &'static str,
    preview: &'static str,
    replicas: i32,
}

/// Deploys `manifest`, updates it to `image`, checks the Services and endpoints while paused,
/// promotes, and checks that the previous ReplicaSet keeps its pods for `delay` after the
/// promotion, then goes to 0.
async fn manual_promotion_with_scale_down_delay(
    test: &str,
    manifest: &str,
    names: Names,
    image: &str,
    delay: Duration,
) {
    let Names {
        rollout: name,
        active,
        preview,
        replicas,
    } = names;
    let (ns, _ctl) = setup(test).await;
    ns.apply(manifest).await;
    let ro = wait_rollout(&ns, name, "Healthy", Duration::from_secs(60), is_healthy).await;
    let v1 = ro.status.clone().unwrap().stable_rs.unwrap();
    assert_eq!(bg_status(&ro), (v1.clone(), v1.clone()));
    ns.wait_for(
        "active endpoints on v1",
        Duration::from_secs(30),
        || async { Ok((endpoint_hashes(&ns, active).await == vec![v1.clone()]).then_some(())) },
    )
    .await;

    set_image(&ns, name, image).await;
    let ro = wait_rollout(
        &ns,
        name,
        "Paused before promotion",
        Duration::from_secs(60),
        |ro, _| {
            let (ph, msg, _) = phase(ro);
            ph == "Paused" && msg == "BlueGreenPause"
        },
    )
    .await;
    let v2 = ro.status.clone().unwrap().current_pod_hash.unwrap();
    assert_eq!(bg_status(&ro), (v1.clone(), v2.clone()));
    assert_eq!(selector(&ns, active).await, v1);
    assert_eq!(selector(&ns, preview).await, v2);
    ns.wait_for(
        "preview endpoints on v2, active still v1",
        Duration::from_secs(30),
        || async {
            let ok = endpoint_hashes(&ns, preview).await == vec![v2.clone()]
                && endpoint_hashes(&ns, active).await == vec![v1.clone()];
            Ok(ok.then_some(()))
        },
    )
    .await;

    // The controller writes the promotion (and so starts the delay) after this instant.
    let promoted_at = Instant::now();
    promote(&ns, name).await;
    let ro = wait_rollout(&ns, name, "promoted", Duration::from_secs(60), |ro, _| {
        ro.status.as_ref().and_then(|s| s.stable_rs.as_deref()) == Some(v2.as_str())
    })
    .await;
    assert_eq!(bg_status(&ro), (v2.clone(), v2.clone()));
    assert_eq!(selector(&ns, active).await, v2);
    ns.wait_for(
        "active endpoints on v2",
        Duration::from_secs(30),
        || async { Ok((endpoint_hashes(&ns, active).await == vec![v2.clone()]).then_some(())) },
    )
    .await;
    // The previous ReplicaSet is still up, with its scale-down deadline.
    let rss = replica_sets(&ns, &ro).await;
    assert_eq!(spec_of(&rss, &v1), replicas);
    let old = rss.iter().find(|rs| hash_of(rs) == v1).unwrap();
    assert!(
        old.annotations().contains_key("scale-down-deadline"),
        "no scale-down deadline on the previous ReplicaSet: {:?}",
        old.annotations()
    );
    let ro = wait_rollout(
        &ns,
        name,
        "old ReplicaSet scaled down after the delay",
        delay + Duration::from_secs(60),
        |_, rss| spec_of(rss, &v1) == 0,
    )
    .await;
    // Not before the delay (the deadline is written in whole seconds: 1 s of slack).
    let waited = promoted_at.elapsed();
    assert!(
        waited + Duration::from_secs(1) >= delay,
        "scaled down after only {waited:?} (delay {delay:?})"
    );
    assert!(is_healthy(&ro, &replica_sets(&ns, &ro).await));
}

const BG: &str = r#"
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: bg}
spec:
  replicas: 3
  selector: {matchLabels: {app: bg}}
  template:
    metadata: {labels: {app: bg}}
    spec:
      containers: [{name: app, image: "app:v1"}]
  strategy:
    blueGreen:
      activeService: bg-active
      previewService: bg-preview
      STRATEGY
---
apiVersion: v1
kind: Service
metadata: {name: bg-active}
spec:
  selector: {app: bg}
  ports: [{port: 80, protocol: TCP}]
---
apiVersion: v1
kind: Service
metadata: {name: bg-preview}
spec:
  selector: {app: bg}
  ports: [{port: 80, protocol: TCP}]
"#;

fn bg(strategy: &str) -> String {
    BG.replace("STRATEGY", strategy)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_promotion_after_seconds() {
    let (ns, _ctl) = setup("bg-auto").await;
    ns.apply(&bg(
        "autoPromotionSeconds: 3\n      scaleDownDelaySeconds: 2",
    ))
    .await;
    wait_rollout(&ns, "bg", "Healthy", Duration::from_secs(60), is_healthy).await;
    set_image(&ns, "bg", "app:v2").await;
    let ro = wait_rollout(&ns, "bg", "Paused", Duration::from_secs(60), |ro, _| {
        phase(ro).0 == "Paused"
    })
    .await;
    let v2 = ro.status.unwrap().current_pod_hash.unwrap();
    wait_rollout(
        &ns,
        "bg",
        "auto-promoted",
        Duration::from_secs(60),
        |ro, _| ro.status.as_ref().and_then(|s| s.stable_rs.as_deref()) == Some(v2.as_str()),
    )
    .await;
    // How long the pause lasted, by the times the controller stamped on its own events (when
    // its reconcile queued them), not by when this test saw the phases: a loaded machine
    // delays the latter.
    // The pause's start is stored in whole seconds, so 3 s can end up to 1 s early.
    let waited = ns
        .wait_for(
            "RolloutPaused and RolloutResumed events",
            EVENT_WAIT,
            || async {
                let paused = event_time(&ns, "bg", "RolloutPaused").await;
                let resumed = event_time(&ns, "bg", "RolloutResumed").await;
                Ok(paused.zip(resumed).map(|(p, r)| r.duration_since(p)))
            },
        )
        .await;
    assert!(
        waited >= jiff::SignedDuration::from_secs(2),
        "promoted {waited:?} after the pause began (autoPromotionSeconds 3)"
    );
    assert_eq!(selector(&ns, "bg-active").await, v2);
    wait_rollout(
        &ns,
        "bg",
        "Healthy on v2",
        Duration::from_secs(60),
        is_healthy,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preview_replica_count_then_full_before_switch() {
    let (ns, _ctl) = setup("bg-preview-count").await;
    ns.apply(&bg(
        "autoPromotionEnabled: false\n      previewReplicaCount: 1\n      scaleDownDelaySeconds: 2",
    ))
    .await;
    let ro = wait_rollout(&ns, "bg", "Healthy", Duration::from_secs(60), is_healthy).await;
    let v1 = ro.status.unwrap().stable_rs.unwrap();
    set_image(&ns, "bg", "app:v2").await;
    let ro = wait_rollout(
        &ns,
        "bg",
        "Paused with a 1-pod preview",
        Duration::from_secs(60),
        |ro, rss| {
            let v2 = ro
                .status
                .as_ref()
                .and_then(|s| s.current_pod_hash.clone())
                .unwrap_or_default();
            phase(ro).0 == "Paused"
                && spec_of(rss, &v2) == 1
                && rss.iter().any(|rs| hash_of(rs) == v2 && available(rs) == 1)
        },
    )
    .await;
    let v2 = ro.status.unwrap().current_pod_hash.unwrap();
    assert_eq!(selector(&ns, "bg-active").await, v1);
    promote(&ns, "bg").await;
    let ro = wait_rollout(
        &ns,
        "bg",
        "switched after scaling to 3",
        Duration::from_secs(60),
        |ro, _| ro.status.as_ref().and_then(|s| s.stable_rs.as_deref()) == Some(v2.as_str()),
    )
    .await;
    let rss = replica_sets(&ns, &ro).await;
    assert_eq!(spec_of(&rss, &v2), 3);
    assert_eq!(selector(&ns, "bg-active").await, v2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_keeps_active_on_stable() {
    let (ns, _ctl) = setup("bg-abort").await;
    ns.apply(&bg(
        "autoPromotionEnabled: false\n      abortScaleDownDelaySeconds: 2",
    ))
    .await;
    let ro = wait_rollout(&ns, "bg", "Healthy", Duration::from_secs(60), is_healthy).await;
    let v1 = ro.status.unwrap().stable_rs.unwrap();
    set_image(&ns, "bg", "app:v2").await;
    let ro = wait_rollout(&ns, "bg", "Paused", Duration::from_secs(60), |ro, _| {
        phase(ro).0 == "Paused"
    })
    .await;
    let v2 = ro.status.unwrap().current_pod_hash.unwrap();
    abort(&ns, "bg").await;
    wait_rollout(
        &ns,
        "bg",
        "aborted, preview scaled down",
        Duration::from_secs(60),
        |ro, rss| phase(ro).0 == "Degraded" && spec_of(rss, &v2) == 0,
    )
    .await;
    assert_eq!(selector(&ns, "bg-active").await, v1);
    assert_eq!(endpoint_hashes(&ns, "bg-active").await, vec![v1]);
}
