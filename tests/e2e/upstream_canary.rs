//! Ports of upstream's `test/e2e/canary_test.go` (9f8d111) that need no mesh: scaling while
//! paused and during an update (maxSurge 2 and 100 %), an update while paused, and a progress
//! deadline shorter than the pods' start, with upstream's expected counts.

use crate::common::*;
use crate::upstream_fixtures::*;
use serde_json::json;

fn rollout(name: &str, replicas: i32, extra_spec: &str, canary: &str) -> String {
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
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers: [{{name: {name}, image: "nginx:1.19-alpine"}}]
  strategy:
    canary:
{canary}
"#
    )
}

/// `TestRolloutScalingWhenPaused` (`functional/rollout-basic.yaml` with 25 %): paused with
/// 1 canary + 1 stable; scaled to 8: 2 + 6; scaled to 4: 1 + 3.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_rollout_scaling_when_paused() {
    let name = "basic";
    let (ns, _ctl) = setup("up-scale-paused").await;
    ns.apply(&rollout(
        name,
        1,
        "",
        "      steps:\n      - setWeight: 25\n      - pause: {}",
    ))
    .await;
    wait_status(&ns, name, "Healthy").await;
    update_spec(&ns, name, "2").await;
    wait_status(&ns, name, "Paused").await;
    expect_canary_stable_pods(&ns, name, 1, 1).await;
    scale(&ns, name, 8).await;
    wait_available(&ns, name, 8).await;
    expect_canary_stable_pods(&ns, name, 2, 6).await;
    scale(&ns, name, 4).await;
    wait_available(&ns, name, 4).await;
    expect_canary_stable_pods(&ns, name, 1, 3).await;
}

/// `TestRolloutWithMaxSurgeScalingDuringUpdate`: maxSurge 100 % (maxUnavailable 25 %) with new
/// pods that are not ready (upstream reads the counts before they are): 7 pods = 4 + 3;
/// scaled to 8: 11 = 8 + 3; back to 4: 7 = 4 + 3.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_rollout_with_max_surge_scaling_during_update() {
    let name = "updatescaling";
    let (ns, _ctl) = setup("up-maxsurge-scale").await;
    ns.apply(&rollout(name, 4, "", "      maxSurge: 100%"))
        .await;
    wait_status(&ns, name, "Healthy").await;
    patch_spec(
        &ns,
        name,
        json!({"template": {"spec": {"containers": [{"name": name, "image": "nginx:1.19-bad"}]}}}),
    )
    .await;
    wait_replicas(&ns, name, 7).await;
    expect_canary_stable_pods(&ns, name, 4, 3).await;
    scale(&ns, name, 8).await;
    wait_replicas(&ns, name, 11).await;
    expect_canary_stable_pods(&ns, name, 8, 3).await;
    scale(&ns, name, 4).await;
    wait_replicas(&ns, name, 7).await;
    expect_canary_stable_pods(&ns, name, 4, 3).await;
}

/// `TestRolloutScalingDuringUpdate`: maxSurge 2, maxUnavailable 0, a crashing update: 6 pods
/// = 2 + 4; scaled to 8: 10 = 6 + 4 (upstream's numbers, issue 738); back to 4: 6 = 2 + 4.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_rollout_scaling_during_update() {
    let name = "updatescaling";
    let (ns, _ctl) = setup("up-update-scale").await;
    ns.apply(&rollout(
        name,
        4,
        "",
        "      maxSurge: 2\n      maxUnavailable: 0",
    ))
    .await;
    wait_status(&ns, name, "Healthy").await;
    patch_spec(
        &ns,
        name,
        json!({"template": {"spec": {"containers": [{"name": name, "image": "nginx:1.19-bad"}]}}}),
    )
    .await;
    wait_replicas(&ns, name, 6).await;
    expect_canary_stable_pods(&ns, name, 2, 4).await;
    scale(&ns, name, 8).await;
    wait_replicas(&ns, name, 10).await;
    expect_canary_stable_pods(&ns, name, 6, 4).await;
    scale(&ns, name, 4).await;
    wait_replicas(&ns, name, 6).await;
    expect_canary_stable_pods(&ns, name, 2, 4).await;
}

/// `TestCanaryWithPausedRollout` (`functional/rollout-canary-with-pause.yaml`): an update
/// while paused at 20 % of 3 replaces the paused canary: revisions 1/2/3 at 3/0/1 pods.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_canary_with_paused_rollout() {
    let name = "rollout-canary-with-pause";
    let (ns, _ctl) = setup("up-canary-paused").await;
    let manifest = service("rollout-canary-with-pause-canary", name)
        + &service("rollout-canary-with-pause-stable", name)
        + &rollout(
            name,
            3,
            "  revisionHistoryLimit: 3",
            "      canaryService: rollout-canary-with-pause-canary\n      stableService: rollout-canary-with-pause-stable\n      steps:\n      - setWeight: 20\n      - pause: {}",
        );
    ns.apply(&manifest).await;
    wait_status(&ns, name, "Healthy").await;
    update_spec(&ns, name, "2").await;
    wait_status(&ns, name, "Paused").await;
    update_spec(&ns, name, "3").await;
    wait_status(&ns, name, "Paused").await;
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    expect_revision_pods(&ns, name, &[(1, 3), (2, 0), (3, 1)]).await;
}

/// `TestCanaryProgressDeadlineExceededWithPause`: pods that take longer to become ready (6 s,
/// upstream's readiness probe waits 10 s) than the progress deadline (2 s; upstream 5 s):
/// Degraded then Healthy on the first deploy; on an update Degraded then Paused at 20 % with
/// 1 canary + 3 stable; after promotion Degraded then Healthy again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_canary_progress_deadline_exceeded_with_pause() {
    let name = "rollout-canary-with-pause";
    let (ns, _ctl) = setup("up-canary-pde").await;
    let manifest = rollout(
        name,
        3,
        "  revisionHistoryLimit: 2\n  progressDeadlineSeconds: 2",
        "      steps:\n      - setWeight: 20\n      - pause: {}",
    )
    .replace(
        "metadata: {labels: {app: rollout-canary-with-pause}}",
        "metadata:\n      labels: {app: rollout-canary-with-pause}\n      annotations: {sim.rollouts.io/ready-delay: 6s}",
    );
    ns.apply(&manifest).await;
    wait_status(&ns, name, "Degraded").await;
    wait_status(&ns, name, "Healthy").await;
    wait_replicas(&ns, name, 3).await;
    update_spec(&ns, name, "2").await;
    wait_status(&ns, name, "Degraded").await;
    wait_status(&ns, name, "Paused").await;
    expect_canary_stable_pods(&ns, name, 1, 3).await;
    promote(&ns, name).await;
    wait_status(&ns, name, "Degraded").await;
    wait_status(&ns, name, "Healthy").await;
}
