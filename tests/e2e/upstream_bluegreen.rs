//! Ports of upstream's `test/e2e/bluegreen_test.go` (9f8d111): progress deadlines shorter than
//! the pods' start with and without a pause, and `previewReplicaCount` with promote and
//! promote-full, with upstream's expected counts.

use crate::common::*;
use crate::upstream_fixtures::*;

fn rollout(name: &str, replicas: i32, extra_spec: &str, blue_green: &str) -> String {
    format!(
        r#"
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {{name: {name}}}
spec:
  replicas: {replicas}
{extra_spec}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata:
      labels: {{app: {name}}}
      annotations: {{sim.rollouts.io/ready-delay: 500ms}}
    spec:
      containers: [{{name: demo, image: "nginx:1.19-alpine"}}]
  strategy:
    blueGreen:
{blue_green}
"#
    )
}

/// `TestBlueGreenProgressDeadlineExceededWithPause` and `...WithoutPause`: pods that take 6 s
/// to become ready (upstream: a 10 s readiness delay) against a 2 s deadline (upstream 5 s):
/// Degraded then Healthy on the first deploy; on an update Degraded, then Paused (manual
/// promotion; promoted → Healthy) or straight Healthy (automatic), revision 2 active.
async fn progress_deadline_exceeded(auto_promotion: bool) {
    let name = if auto_promotion {
        "rollout-bluegreen-without-pause"
    } else {
        "rollout-bluegreen-with-pause"
    };
    let (ns, _ctl) = setup(name).await;
    let manifest = service(name, name)
        + &rollout(
            name,
            1,
            "  revisionHistoryLimit: 2\n  progressDeadlineSeconds: 2",
            &format!("      autoPromotionEnabled: {auto_promotion}\n      activeService: {name}"),
        )
        .replace("ready-delay: 500ms", "ready-delay: 6s");
    ns.apply(&manifest).await;
    wait_replicas(&ns, name, 1).await;
    wait_status(&ns, name, "Degraded").await;
    wait_status(&ns, name, "Healthy").await;
    update_spec(&ns, name, "2").await;
    wait_status(&ns, name, "Degraded").await;
    if !auto_promotion {
        wait_status(&ns, name, "Paused").await;
        promote(&ns, name).await;
    }
    let ro = wait_status(&ns, name, "Healthy").await;
    let v2 = revision_hash(&ns, name, 2).await;
    let active = ro
        .status
        .and_then(|s| s.blue_green)
        .and_then(|b| b.active_selector);
    assert_eq!(active, Some(v2), "active revision 2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_blue_green_progress_deadline_exceeded_with_pause() {
    progress_deadline_exceeded(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_blue_green_progress_deadline_exceeded_without_pause() {
    progress_deadline_exceeded(true).await;
}

/// `TestBlueGreenPreviewReplicaCount` / `TestBlueGreenPreviewReplicaCountPromoteFull`: paused
/// with 1 preview pod beside 2 active (2/3/1/2/2); promoted (or promoted full, with a 1 s
/// progress deadline that the pause must not turn into Degraded): 2/4/2/2/2.
async fn preview_replica_count(full: bool) {
    let name = if full {
        "bluegreen-preview-replicas-promote-full"
    } else {
        "bluegreen-preview-replicas"
    };
    let (ns, _ctl) = setup(name).await;
    let extra = if full {
        "  progressDeadlineSeconds: 1"
    } else {
        ""
    };
    let manifest = service("bluegreen-preview-replicas-active", name)
        + &service("bluegreen-preview-replicas-preview", name)
        + &rollout(
            name,
            2,
            extra,
            "      activeService: bluegreen-preview-replicas-active\n      previewService: bluegreen-preview-replicas-preview\n      previewReplicaCount: 1\n      scaleDownDelaySeconds: 5\n      autoPromotionEnabled: false",
        );
    ns.apply(&manifest).await;
    wait_status(&ns, name, "Healthy").await;
    update_spec(&ns, name, "2").await;
    wait_status(&ns, name, "Paused").await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let ro = get_rollout(&ns, name).await;
    assert_eq!(
        ro.status.as_ref().unwrap().phase.as_deref(),
        Some("Paused"),
        "a pause longer than the deadline is not Degraded"
    );
    expect_revision_pods(&ns, name, &[(2, 1), (1, 2)]).await;
    expect_replica_counts(&ns, name, (2, 3, 1, 2, 2)).await;
    if full {
        patch_status(&ns, name, serde_json::json!({"promoteFull": true})).await;
    } else {
        promote(&ns, name).await;
    }
    wait_status(&ns, name, "Healthy").await;
    expect_replica_counts(&ns, name, (2, 4, 2, 2, 2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_blue_green_preview_replica_count() {
    preview_replica_count(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_blue_green_preview_replica_count_promote_full() {
    preview_replica_count(true).await;
}
