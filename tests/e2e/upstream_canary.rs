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

/// `functional/canary-scaledownonabort.yaml` and friends: Services, an ALB Ingress on the
/// root Service (only the annotation is written: no load balancer runs), and a one-replica
/// Rollout whose canary step is `canary` (a `setCanaryScale` or a `setWeight`).
fn scale_down_on_abort_manifest(strategy_extra: &str, step: &str) -> String {
    let app = "canary-scaledowndelay";
    let mut out = String::new();
    for svc in ["root", "canary", "stable"] {
        out += &service(&format!("{app}-{svc}"), app);
    }
    out += &format!(
        r#"apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: {app}-ingress
  annotations: {{kubernetes.io/ingress.class: alb}}
spec:
  rules:
  - http:
      paths:
      - path: /*
        pathType: Prefix
        backend: {{service: {{name: {app}-root, port: {{name: use-annotation}}}}}}
---
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {{name: canary-scaledownd-on-abort}}
spec:
  selector: {{matchLabels: {{app: {app}}}}}
  template:
    metadata: {{labels: {{app: {app}}}}}
    spec:
      containers: [{{name: {app}, image: "nginx:1.19-alpine"}}]
  strategy:
    canary:
      canaryService: {app}-canary
      stableService: {app}-stable
{strategy_extra}
      steps:
      - {step}
      - pause: {{}}
"#
    );
    out
}

const ALB_ROUTING: &str = "      trafficRouting:\n        alb: {ingress: canary-scaledowndelay-ingress, rootService: canary-scaledowndelay-root, servicePort: 80}";

/// Aborts the paused update; returns (stable hash, canary hash).
async fn update_then_abort(ns: &TestNs, name: &str) -> (String, String) {
    wait_status(ns, name, "Healthy").await;
    update_spec(ns, name, "2").await;
    let ro = wait_status(ns, name, "Paused").await;
    let st = ro.status.unwrap();
    abort(ns, name).await;
    wait_status(ns, name, "Degraded").await;
    (st.stable_rs.unwrap(), st.current_pod_hash.unwrap())
}

/// `TestCanaryScaleDownOnAbort` (ALB, `abortScaleDownDelaySeconds: 1`, `setCanaryScale: 1`):
/// after the abort the canary Service selects the stable revision again, and 3 s later the
/// aborted revision has no pods.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_canary_scale_down_on_abort() {
    let name = "canary-scaledownd-on-abort";
    let (ns, _ctl) = setup("up-canary-sdoa").await;
    let extra = format!(
        "      abortScaleDownDelaySeconds: 1\n      scaleDownDelayRevisionLimit: 1\n{ALB_ROUTING}"
    );
    ns.apply(&scale_down_on_abort_manifest(
        &extra,
        "setCanaryScale: {replicas: 1}",
    ))
    .await;
    let (stable, _) = update_then_abort(&ns, name).await;
    ns.wait_for("canary Service on stable", WAIT, || async {
        Ok(
            (crate::bluegreen::selector(&ns, "canary-scaledowndelay-canary").await == stable)
                .then_some(()),
        )
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    expect_revision_pods(&ns, name, &[(2, 0)]).await;
}

/// `TestCanaryScaleDownOnAbortNoTrafficRouting` (`setWeight: 50`, no router): the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_canary_scale_down_on_abort_no_traffic_routing() {
    let name = "canary-scaledownd-on-abort";
    let (ns, _ctl) = setup("up-canary-sdoa-ntr").await;
    ns.apply(&scale_down_on_abort_manifest("", "setWeight: 50"))
        .await;
    let (stable, _) = update_then_abort(&ns, name).await;
    ns.wait_for("canary Service on stable", WAIT, || async {
        Ok(
            (crate::bluegreen::selector(&ns, "canary-scaledowndelay-canary").await == stable)
                .then_some(()),
        )
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    expect_revision_pods(&ns, name, &[(2, 0)]).await;
}

/// `TestCanaryUnScaleDownOnAbort` (ALB, `abortScaleDownDelaySeconds: 0`: never scale the
/// aborted canary down): 3 s after the abort it still has its pod and no scale-down deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_canary_unscale_down_on_abort() {
    let name = "canary-scaledownd-on-abort";
    let (ns, _ctl) = setup("up-canary-usdoa").await;
    let extra = format!(
        "      abortScaleDownDelaySeconds: 0\n      scaleDownDelayRevisionLimit: 1\n{ALB_ROUTING}"
    );
    ns.apply(&scale_down_on_abort_manifest(
        &extra,
        "setCanaryScale: {replicas: 1}",
    ))
    .await;
    update_then_abort(&ns, name).await;
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    expect_revision_pods(&ns, name, &[(2, 1)]).await;
    let ro = get_rollout(&ns, name).await;
    let rs2 = replica_sets(&ns, &ro)
        .await
        .into_iter()
        .find(|rs| revision(rs) == 2)
        .unwrap();
    assert!(
        !kube::ResourceExt::annotations(&rs2).contains_key(
            rollouts::api::consts::DEFAULT_REPLICASET_SCALE_DOWN_DEADLINE_ANNOTATION_KEY
        ),
        "no scale-down deadline: {:?}",
        rs2.metadata.annotations
    );
}

/// `functional/canary-scaledowndelay.yaml`: ALB, no steps, `scaleDownDelayRevisionLimit: 1`
/// (the default 30 s scale-down delay of a traffic-routed canary).
fn scale_down_delay_manifest(extra_spec: &str) -> String {
    scale_down_on_abort_manifest(
        &format!("      scaleDownDelayRevisionLimit: 1\n{ALB_ROUTING}"),
        "DROP",
    )
    .replace("      steps:\n      - DROP\n      - pause: {}\n", "")
    .replace(
        "spec:\n  selector: {matchLabels: {app: canary-scaledowndelay}}",
        &format!(
            "spec:\n{extra_spec}\n  selector: {{matchLabels: {{app: canary-scaledowndelay}}}}"
        ),
    )
}

async fn set_rev(ns: &TestNs, name: &str, rev: &str) {
    patch_spec(
        ns,
        name,
        json!({"template": {"metadata": {"annotations": {"rev": rev}}}}),
    )
    .await;
}

/// (spec.replicas, has a scale-down deadline) of the ReplicaSet of `revision`.
async fn rs_of_revision(ns: &TestNs, name: &str, revision_: i64) -> (i32, bool) {
    let ro = get_rollout(ns, name).await;
    let rs = replica_sets(ns, &ro)
        .await
        .into_iter()
        .find(|rs| revision(rs) == revision_)
        .unwrap_or_else(|| panic!("no ReplicaSet of revision {revision_}"));
    (
        spec_replicas(&rs),
        kube::ResourceExt::annotations(&rs).contains_key(
            rollouts::api::consts::DEFAULT_REPLICASET_SCALE_DOWN_DEADLINE_ANNOTATION_KEY,
        ),
    )
}

/// `TestCanaryScaleDownDelay`: the previous stable keeps its pod with a scale-down deadline;
/// a further update scales the oldest down at once (revision limit 1, deadline removed) and
/// puts the deadline on the next; going back to the second template makes it revision 4, the
/// stable, without a deadline, while revision 3 waits with one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_canary_scale_down_delay() {
    let name = "canary-scaledownd-on-abort";
    let (ns, _ctl) = setup("up-canary-sdd").await;
    ns.apply(&scale_down_delay_manifest("")).await;
    wait_status(&ns, name, "Healthy").await;
    set_rev(&ns, name, "two").await;
    wait_status(&ns, name, "Healthy").await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(rs_of_revision(&ns, name, 1).await, (1, true));
    set_rev(&ns, name, "three").await;
    wait_status(&ns, name, "Healthy").await;
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert_eq!(rs_of_revision(&ns, name, 1).await, (0, false));
    assert_eq!(rs_of_revision(&ns, name, 2).await, (1, true));
    set_rev(&ns, name, "two").await;
    wait_status(&ns, name, "Healthy").await;
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert_eq!(rs_of_revision(&ns, name, 1).await, (0, false));
    assert_eq!(rs_of_revision(&ns, name, 4).await, (1, false));
    assert_eq!(rs_of_revision(&ns, name, 3).await, (1, true));
}

/// `TestCanaryScaleDownDelayWithProgressDeadline`: a pending scale-down longer than the
/// progress deadline (5 s) does not make the Rollout Degraded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_canary_scale_down_delay_with_progress_deadline() {
    let name = "canary-scaledownd-on-abort";
    let (ns, _ctl) = setup("up-canary-sdd-pd").await;
    ns.apply(&scale_down_delay_manifest("  progressDeadlineSeconds: 5"))
        .await;
    wait_status(&ns, name, "Healthy").await;
    set_rev(&ns, name, "two").await;
    wait_status(&ns, name, "Healthy").await;
    tokio::time::sleep(std::time::Duration::from_secs(10)).await;
    assert_eq!(phase(&get_rollout(&ns, name).await).0, "Healthy");
    assert_eq!(rs_of_revision(&ns, name, 1).await, (1, true));
}
