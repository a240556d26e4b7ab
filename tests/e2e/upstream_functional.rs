//! Ports of upstream's `test/e2e/functional_test.go` (9f8d111) that need no mesh: abort/retry,
//! good-to-bad, bad-to-good and bad-to-bad updates, blue-green updates, scale-down delay and
//! revision limit, progress deadline abort, scale-down on abort, and strategy switches, with
//! upstream's expected counts and selectors. Manifests are the project's own, written after
//! upstream's; the pod simulator's crash is an image tag containing `bad` (upstream runs
//! `command: [/bad-command]`). Progress deadlines are shortened where the test is not about
//! their length.

use crate::common::*;
use crate::upstream_fixtures::*;
use serde_json::json;
use std::time::Duration;

fn canary_rollout(name: &str, replicas: i32, extra_spec: &str, canary: &str) -> String {
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

fn image(name: &str, image: &str) -> serde_json::Value {
    json!({"template": {"spec": {"containers": [{"name": name, "image": image}]}}})
}

/// `TestRolloutAbortRetryPromote`: paused at 50 % of 1 (1 + 1 pods), abort → Degraded, retry
/// → Paused with 1 + 1 again, the 3 s pause ends → Healthy with revision 1 at 0; upstream's
/// events, in order (except `RolloutAddedToInformer`, an informer detail this controller does
/// not report as an event).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_rollout_abort_retry_promote() {
    let name = "abort-retry-promote";
    let (ns, _ctl) = setup("up-abort-retry").await;
    let events = EventWatch::start(&ns).await;
    ns.apply(&canary_rollout(
        name,
        1,
        "",
        "      steps:\n      - setWeight: 50\n      - pause: {duration: 3s}",
    ))
    .await;
    wait_status(&ns, name, "Healthy").await;
    update_spec(&ns, name, "2").await;
    wait_status(&ns, name, "Paused").await;
    expect_revision_pods(&ns, name, &[(1, 1), (2, 1)]).await;
    abort(&ns, name).await;
    wait_status(&ns, name, "Degraded").await;
    retry(&ns, name).await;
    wait_status(&ns, name, "Paused").await;
    expect_revision_pods(&ns, name, &[(1, 1), (2, 1)]).await;
    wait_status(&ns, name, "Healthy").await;
    expect_revision_pods(&ns, name, &[(1, 0), (2, 1)]).await;
    let upstream = [
        "RolloutUpdated",
        "NewReplicaSetCreated",
        "ScalingReplicaSet",
        "RolloutCompleted",
        "RolloutUpdated",
        "NewReplicaSetCreated",
        "ScalingReplicaSet",
        "RolloutStepCompleted",
        "RolloutPaused",
        "ScalingReplicaSet",
        "RolloutAborted",
        "ScalingReplicaSet",
        "RolloutStepCompleted",
        "RolloutPaused",
        "RolloutStepCompleted",
        "RolloutResumed",
        "ScalingReplicaSet",
        "RolloutCompleted",
    ];
    events.wait_in_order(&ns, name, &upstream).await;
    // As upstream's recorder, different messages are different Event objects: "updated to
    // revision 1" and "... revision 2" are two events, not one counted twice.
    let listed = event_reasons(&ns, name).await;
    assert_eq!(
        listed.iter().filter(|r| *r == "RolloutUpdated").count(),
        2,
        "{listed:?}"
    );
}

/// `TestRolloutGoodToBadUpdate`: a crashing update goes Degraded at the deadline with 1 canary
/// pod beside 4 stable (maxSurge 1, maxUnavailable 0); a second crashing update replaces it:
/// Progressing, then Degraded with revisions 1/2/3 at 4/0/1 pods.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_rollout_good_to_bad_update() {
    let name = "good2bad";
    let (ns, _ctl) = setup("up-good2bad").await;
    ns.apply(&canary_rollout(
        name,
        4,
        "",
        "      maxSurge: 1\n      maxUnavailable: 0",
    ))
    .await;
    wait_status(&ns, name, "Healthy").await;
    let mut patch = image(name, "nginx:1.19-bad");
    patch["progressDeadlineSeconds"] = json!(4);
    patch_spec(&ns, name, patch).await;
    wait_status(&ns, name, "Degraded").await;
    expect_canary_stable_pods(&ns, name, 1, 4).await;
    patch_spec(&ns, name, image(name, "nginx:1.19-bad2")).await;
    wait_status(&ns, name, "Progressing").await;
    wait_status(&ns, name, "Degraded").await;
    expect_revision_pods(&ns, name, &[(1, 4), (2, 0), (3, 1)]).await;
}

/// `TestRolloutBadToGoodUpdate`: a Rollout that crashes from its first revision goes Degraded,
/// then an update to a working template becomes Healthy with all 4 pods on revision 2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_rollout_bad_to_good_update() {
    let name = "bad2good";
    let (ns, _ctl) = setup("up-bad2good").await;
    let manifest = canary_rollout(
        name,
        4,
        "  progressDeadlineSeconds: 4",
        "      maxSurge: 1\n      maxUnavailable: 0",
    )
    .replace("nginx:1.19-alpine", "nginx:1.19-bad");
    ns.apply(&manifest).await;
    wait_status(&ns, name, "Degraded").await;
    let mut patch = image(name, "nginx:1.19-alpine");
    patch["progressDeadlineSeconds"] = json!(60);
    patch_spec(&ns, name, patch).await;
    wait_status(&ns, name, "Healthy").await;
    expect_revision_pods(&ns, name, &[(2, 4), (1, 0)]).await;
}

/// `TestRolloutBadToBadUpdate`: crashing to crashing still honours maxSurge/maxUnavailable:
/// 1 pod of revision 2 beside the 4 of revision 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_rollout_bad_to_bad_update() {
    let name = "bad2bad";
    let (ns, _ctl) = setup("up-bad2bad").await;
    let manifest = canary_rollout(
        name,
        4,
        "  progressDeadlineSeconds: 4",
        "      maxSurge: 1\n      maxUnavailable: 0",
    )
    .replace("nginx:1.19-alpine", "nginx:1.19-bad");
    ns.apply(&manifest).await;
    wait_status(&ns, name, "Degraded").await;
    patch_spec(&ns, name, image(name, "nginx:1.19-bad2")).await;
    wait_status(&ns, name, "Progressing").await;
    wait_status(&ns, name, "Degraded").await;
    expect_revision_pods(&ns, name, &[(2, 1), (1, 4)]).await;
}

/// `TestRolloutBadToGoodSetWeightUpdate`: the same with `setWeight: 50` and a 5 s pause.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_rollout_bad_to_good_set_weight_update() {
    let name = "bad2good-setweight";
    let (ns, _ctl) = setup("up-bad2good-sw").await;
    let manifest = canary_rollout(
        name,
        4,
        "  progressDeadlineSeconds: 4",
        "      maxSurge: 1\n      maxUnavailable: 0\n      steps:\n      - setWeight: 50\n      - pause: {duration: 5s}",
    )
    .replace("nginx:1.19-alpine", "nginx:1.19-bad");
    ns.apply(&manifest).await;
    wait_status(&ns, name, "Degraded").await;
    patch_spec(&ns, name, image(name, "nginx:1.19-alpine")).await;
    wait_status(&ns, name, "Healthy").await;
    expect_revision_pods(&ns, name, &[(2, 4), (1, 0)]).await;
}

fn blue_green_rollout(name: &str, replicas: i32, extra_spec: &str, blue_green: &str) -> String {
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
    blueGreen:
{blue_green}
"#
    )
}

/// `TestBlueGreenUpdate` (`functional/rollout-bluegreen.yaml`): 3/3/3/3/3, then after the
/// switch to revision 2 the old ReplicaSet stays for the scale-down delay: 3/6/3/3/3; and
/// upstream's events in order (less `RolloutAddedToInformer`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_blue_green_update() {
    let name = "bluegreen";
    let (ns, _ctl) = setup("up-bg-update").await;
    let events = EventWatch::start(&ns).await;
    let manifest = service(name, name)
        + &blue_green_rollout(
            name,
            3,
            "",
            "      activeService: bluegreen\n      scaleDownDelaySeconds: 10",
        );
    ns.apply(&manifest).await;
    wait_status(&ns, name, "Healthy").await;
    expect_replica_counts(&ns, name, (3, 3, 3, 3, 3)).await;
    update_spec(&ns, name, "2").await;
    let v2 = wait_rollout(&ns, name, "active revision 2", WAIT, |ro, rss| {
        let active = ro
            .status
            .as_ref()
            .and_then(|s| s.blue_green.as_ref())
            .and_then(|b| b.active_selector.clone());
        rss.iter()
            .find(|rs| revision(rs) == 2)
            .is_some_and(|rs| Some(hash_of(rs)) == active)
    })
    .await
    .status
    .unwrap()
    .current_pod_hash
    .unwrap();
    expect_replica_counts(&ns, name, (3, 6, 3, 3, 3)).await;
    wait_status(&ns, name, "Healthy").await;
    let ro = get_rollout(&ns, name).await;
    assert_eq!(replica_counts(&ro), (3, 6, 3, 3, 3));
    assert_eq!(
        crate::bluegreen::selector(&ns, "bluegreen").await,
        v2,
        "active Service on revision 2"
    );
    let upstream = [
        "RolloutUpdated",
        "NewReplicaSetCreated",
        "ScalingReplicaSet",
        "RolloutCompleted",
        "SwitchService",
        "RolloutUpdated",
        "NewReplicaSetCreated",
        "ScalingReplicaSet",
        "SwitchService",
        "RolloutCompleted",
    ];
    events.wait_in_order(&ns, name, &upstream).await;
}

/// `TestBlueGreenToCanary`: a Healthy blue-green Rollout switched to canary (with a template
/// change) pauses at 50 % with 2/2/1/2/2, and the former active Service is released: its
/// selector is `app` alone again and the managed-by annotation is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_blue_green_to_canary() {
    let name = "bluegreen-to-canary";
    let (ns, _ctl) = setup("up-bg2canary").await;
    let manifest = service(name, name)
        + &blue_green_rollout(
            name,
            2,
            "",
            "      activeService: bluegreen-to-canary\n      scaleDownDelaySeconds: 5",
        );
    ns.apply(&manifest).await;
    wait_status(&ns, name, "Healthy").await;
    let (sel, managed) = service_selector(&ns, name).await;
    assert!(sel.contains_key("rollouts-pod-template-hash") && managed);
    patch_spec(
        &ns,
        name,
        json!({"template": {"metadata": {"annotations": {"foo": "bar"}}},
               "strategy": {"blueGreen": null,
                            "canary": {"steps": [{"setWeight": 50}, {"pause": {}}]}}}),
    )
    .await;
    wait_status(&ns, name, "Paused").await;
    wait_available(&ns, name, 2).await;
    expect_replica_counts(&ns, name, (2, 2, 1, 2, 2)).await;
    ns.wait_for(
        "the former active Service released",
        Duration::from_secs(30),
        || async {
            let (sel, managed) = service_selector(&ns, name).await;
            let want: std::collections::BTreeMap<String, String> =
                [("app".to_string(), name.to_string())].into();
            Ok((sel == want && !managed).then_some(()))
        },
    )
    .await;
}

/// The reverse switch (upstream has no e2e test for it): a canary whose stable Service becomes
/// the active Service of a blue-green strategy, with a template change. The active Service
/// selects the stable revision, so the update is not fast tracked: the new revision comes up
/// behind the preview Service at full size, waits for promotion, and the canary Service the
/// spec no longer names is released.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_canary_to_blue_green() {
    let name = "canary-to-bluegreen";
    let (ns, _ctl) = setup("up-canary2bg").await;
    let manifest = service("c2bg-active", name)
        + &service("c2bg-canary", name)
        + &service("c2bg-preview", name)
        + &canary_rollout(
            name,
            2,
            "",
            "      stableService: c2bg-active\n      canaryService: c2bg-canary\n      steps:\n      - setWeight: 50\n      - pause: {}",
        );
    ns.apply(&manifest).await;
    let v1 = wait_status(&ns, name, "Healthy")
        .await
        .status
        .unwrap()
        .stable_rs
        .unwrap();
    patch_spec(
        &ns,
        name,
        json!({"template": {"metadata": {"annotations": {"foo": "bar"}}},
               "strategy": {"canary": null,
                            "blueGreen": {"activeService": "c2bg-active",
                                          "previewService": "c2bg-preview",
                                          "autoPromotionEnabled": false}}}),
    )
    .await;
    let ro = wait_status(&ns, name, "Paused").await;
    let v2 = ro.status.clone().unwrap().current_pod_hash.unwrap();
    assert_ne!(v1, v2);
    assert_eq!(crate::bluegreen::selector(&ns, "c2bg-active").await, v1);
    ns.wait_for("preview on revision 2", Duration::from_secs(20), || async {
        Ok((crate::bluegreen::selector(&ns, "c2bg-preview").await == v2).then_some(()))
    })
    .await;
    expect_replica_counts(&ns, name, (2, 4, 2, 2, 2)).await;
    ns.wait_for(
        "the canary Service released",
        Duration::from_secs(30),
        || async {
            let (sel, managed) = service_selector(&ns, "c2bg-canary").await;
            Ok((!sel.contains_key("rollouts-pod-template-hash") && !managed).then_some(()))
        },
    )
    .await;
    promote(&ns, name).await;
    wait_status(&ns, name, "Healthy").await;
    assert_eq!(crate::bluegreen::selector(&ns, "c2bg-active").await, v2);
}

/// `TestBlueGreenScaleDownDelay`: a day's delay with `scaleDownDelayRevisionLimit: 2` keeps
/// revisions 4, 3 and 2 up (1 pod each) and 1 down after three updates (1/3/1/1/1); lowering
/// the limit to 1 scales revision 2 down (1/2/1/1/1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_blue_green_scale_down_delay() {
    let name = "bluegreen-scaledowndelay";
    let (ns, _ctl) = setup("up-bg-sdd").await;
    let manifest = service("bluegreen-scaledowndelay-active", name)
        + &blue_green_rollout(
            name,
            1,
            "",
            "      activeService: bluegreen-scaledowndelay-active\n      scaleDownDelaySeconds: 86400\n      scaleDownDelayRevisionLimit: 2",
        );
    ns.apply(&manifest).await;
    wait_status(&ns, name, "Healthy").await;
    update_spec(&ns, name, "2").await;
    wait_status(&ns, name, "Healthy").await;
    expect_revision_pods(&ns, name, &[(2, 1), (1, 1)]).await;
    expect_replica_counts(&ns, name, (1, 2, 1, 1, 1)).await;
    update_spec(&ns, name, "3").await;
    wait_status(&ns, name, "Healthy").await;
    update_spec(&ns, name, "4").await;
    wait_status(&ns, name, "Healthy").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    expect_revision_pods(&ns, name, &[(4, 1), (3, 1), (2, 1), (1, 0)]).await;
    expect_replica_counts(&ns, name, (1, 3, 1, 1, 1)).await;
    patch_spec(
        &ns,
        name,
        json!({"strategy": {"blueGreen": {"scaleDownDelayRevisionLimit": 1}}}),
    )
    .await;
    expect_revision_pods(&ns, name, &[(4, 1), (3, 1), (2, 0), (1, 0)]).await;
    expect_replica_counts(&ns, name, (1, 2, 1, 1, 1)).await;
}

/// `TestBlueGreenExceedProgressDeadlineAbort`: with `progressDeadlineAbort: false` a crashing
/// update goes Degraded and keeps its pod, `status.abort` false; with it true the Rollout
/// aborts (4 conditions) and the pod goes after `abortScaleDownDelaySeconds: 2`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_blue_green_exceed_progress_deadline_abort() {
    let name = "bluegreen-scaledowndelay";
    let (ns, _ctl) = setup("up-bg-pda").await;
    let manifest = service("bluegreen-scaledowndelay-active", name)
        + &blue_green_rollout(
            name,
            1,
            "",
            "      activeService: bluegreen-scaledowndelay-active\n      abortScaleDownDelaySeconds: 2",
        );
    ns.apply(&manifest).await;
    wait_status(&ns, name, "Healthy").await;
    let mut patch = image(name, "nginx:1.19-bad");
    patch["progressDeadlineAbort"] = json!(false);
    patch["progressDeadlineSeconds"] = json!(1);
    patch_spec(&ns, name, patch).await;
    wait_status(&ns, name, "Degraded").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    expect_revision_pods(&ns, name, &[(2, 1)]).await;
    let ro = get_rollout(&ns, name).await;
    assert_ne!(ro.status.unwrap().abort, Some(true), "Abort=False");
    patch_spec(&ns, name, json!({"progressDeadlineAbort": true})).await;
    wait_status(&ns, name, "Degraded").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    expect_revision_pods(&ns, name, &[(2, 0)]).await;
    let st = get_rollout(&ns, name).await.status.unwrap();
    assert_eq!(st.abort, Some(true), "Abort=True");
    assert_eq!(
        st.conditions.clone().unwrap_or_default().len(),
        4,
        "{:?}",
        st.conditions
    );
}

/// `TestBlueGreenScaleDownOnAbort`: the preview (1 of 2 with previewReplicaCount) goes to 0
/// after `abortScaleDownDelaySeconds: 1`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_blue_green_scale_down_on_abort() {
    let name = "bluegreen-scaledown-on-abort";
    let app = "bluegreen-preview-replicas";
    let (ns, _ctl) = setup("up-bg-sdoa").await;
    let manifest = service("bluegreen-preview-replicas-active", app)
        + &service("bluegreen-preview-replicas-preview", app)
        + &blue_green_rollout(
            name,
            2,
            "",
            "      abortScaleDownDelaySeconds: 1\n      activeService: bluegreen-preview-replicas-active\n      previewService: bluegreen-preview-replicas-preview\n      previewReplicaCount: 1\n      scaleDownDelaySeconds: 5\n      autoPromotionEnabled: false",
        )
        .replace(&format!("app: {name}"), &format!("app: {app}"));
    ns.apply(&manifest).await;
    wait_status(&ns, name, "Healthy").await;
    update_spec(&ns, name, "2").await;
    wait_status(&ns, name, "Paused").await;
    expect_revision_pods(&ns, name, &[(2, 1), (1, 2)]).await;
    abort(&ns, name).await;
    wait_status(&ns, name, "Degraded").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    expect_revision_pods(&ns, name, &[(2, 0)]).await;
}

/// Upstream's `sleep-job` AnalysisTemplate for the pod simulator: the Job's pod finishes after
/// `duration` (the simulator's ready delay; upstream runs `sleep`), failing when `image` says so.
const SLEEP_JOB: &str = r#"
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: sleep-job}
spec:
  args:
  - {name: duration, value: "0s"}
  metrics:
  - name: sleep-job
    provider:
      job:
        spec:
          backoffLimit: 0
          template:
            metadata:
              annotations: {sim.rollouts.io/ready-delay: "{{args.duration}}"}
            spec:
              restartPolicy: Never
              containers: [{name: sleep-job, image: "nginx:1.19-alpine"}]
---
"#;

async fn analysis_runs(ns: &TestNs) -> Vec<rollouts::api::AnalysisRun> {
    ns.api::<rollouts::api::AnalysisRun>()
        .list(&Default::default())
        .await
        .expect("listing AnalysisRuns")
        .items
}

/// `TestCanaryPromoteFull`: promoted past a 24 h pause, the Rollout runs the step analysis (a
/// 24 h job: Progressing at step 1, one AnalysisRun); promoted to the `pause: {}`, aborted,
/// then promoted full: Healthy, and the background analysis from step 4 never ran (still one
/// AnalysisRun).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_canary_promote_full() {
    let name = "canary-promote-full";
    let (ns, _ctl) = setup("up-canary-pf").await;
    let _actl = crate::analysis::start_analysis_controller(&ns);
    ns.apply(
        &(SLEEP_JOB.to_string()
            + &canary_rollout(
                name,
                1,
                "",
                "      analysis:\n        templates: [{templateName: sleep-job}]\n        startingStep: 4\n      steps:\n      - pause: {duration: 24h}\n      - analysis:\n          templates: [{templateName: sleep-job}]\n          args: [{name: duration, value: 86400s}]\n      - pause: {}\n      - analysis:\n          templates: [{templateName: sleep-job}]",
            )),
    )
    .await;
    wait_status(&ns, name, "Healthy").await;
    update_spec(&ns, name, "2").await;
    wait_status(&ns, name, "Paused").await;
    cli_promote(&ns, name, false).await;
    ns.wait_for("the step's AnalysisRun Running", WAIT, || async {
        let runs = analysis_runs(&ns).await;
        Ok(runs
            .iter()
            .any(|r| r.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
            .then_some(()))
    })
    .await;
    let ro = get_rollout(&ns, name).await;
    assert_eq!(phase(&ro).0, "Progressing");
    assert_eq!(phase(&ro).2, Some(1));
    assert_eq!(analysis_runs(&ns).await.len(), 1);
    cli_promote(&ns, name, false).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    wait_status(&ns, name, "Paused").await;
    abort(&ns, name).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    cli_promote(&ns, name, true).await;
    wait_status(&ns, name, "Healthy").await;
    assert_eq!(analysis_runs(&ns).await.len(), 1, "no new analysis");
}

/// `TestBlueGreenPromoteFull`: promoted full while the pre-promotion analysis runs, the
/// Rollout becomes Healthy without a post-promotion analysis (one AnalysisRun).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_blue_green_promote_full() {
    let name = "bluegreen-promote-full";
    let (ns, _ctl) = setup("up-bg-pf").await;
    let _actl = crate::analysis::start_analysis_controller(&ns);
    let manifest = SLEEP_JOB.to_string()
        + &service("bluegreen-promote-full-active", name)
        + &blue_green_rollout(
            name,
            3,
            "",
            "      activeService: bluegreen-promote-full-active\n      autoPromotionEnabled: false\n      prePromotionAnalysis:\n        templates: [{templateName: sleep-job}]\n        args: [{name: duration, value: 10s}]\n      postPromotionAnalysis:\n        templates: [{templateName: sleep-job}]",
        );
    ns.apply(&manifest).await;
    wait_status(&ns, name, "Healthy").await;
    update_spec(&ns, name, "2").await;
    ns.wait_for("pre-promotion AnalysisRun Running", WAIT, || async {
        let ro = get_rollout(&ns, name).await;
        let phase = ro
            .status
            .and_then(|s| s.blue_green)
            .and_then(|b| b.pre_promotion_analysis_run_status)
            .and_then(|r| r.status);
        Ok((phase.as_deref() == Some("Running")).then_some(()))
    })
    .await;
    cli_promote(&ns, name, true).await;
    wait_status(&ns, name, "Healthy").await;
    assert_eq!(analysis_runs(&ns).await.len(), 1);
}

/// `TestRolloutRestart`: paused at 25 % of 4 with `maxUnavailable: 75%`, a restart replaces 3
/// pods at once (pods take 5 s to become ready, upstream's `postStart: sleep 5`): 2 s later
/// 4/4/1/1/1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_rollout_restart() {
    let name = "rollout-restart";
    let (ns, _ctl) = setup("up-restart").await;
    let manifest = canary_rollout(
        name,
        4,
        "",
        "      maxUnavailable: 75%\n      steps:\n      - setWeight: 25\n      - pause: {}",
    )
    .replace(
        &format!("metadata: {{labels: {{app: {name}}}}}"),
        &format!(
            "metadata:\n      labels: {{app: {name}}}\n      annotations: {{sim.rollouts.io/ready-delay: 5s}}"
        ),
    );
    ns.apply(&manifest).await;
    wait_status(&ns, name, "Healthy").await;
    update_spec(&ns, name, "2").await;
    wait_status(&ns, name, "Paused").await;
    wait_available(&ns, name, 4).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let now = jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    patch_spec(&ns, name, json!({ "restartAt": now })).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    expect_replica_counts(&ns, name, (4, 4, 1, 1, 1)).await;
}

fn kubectl_wait(ns: &TestNs, name: &str, condition: &str) {
    let out = ns.kubectl(&[
        "wait",
        &format!("--for=condition={condition}"),
        "--timeout=60s",
        &format!("rollout/{name}"),
    ]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success() && text.contains(&format!("rollout.argoproj.io/{name} condition met")),
        "kubectl wait --for=condition={condition}: {text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn active_selector(ro: &rollouts::api::Rollout) -> Option<String> {
    ro.status
        .as_ref()
        .and_then(|s| s.blue_green.as_ref())
        .and_then(|b| b.active_selector.clone())
}

/// `TestKubectlWaitForPaused`: `kubectl wait --for=condition=Paused` returns once a blue-green
/// update pauses (active still revision 1), `Paused=False` once promoted (Healthy, revision
/// 2 active).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_kubectl_wait_for_paused() {
    let name = "kubectl-wait-paused";
    let (ns, _ctl) = setup("up-wait-paused").await;
    ns.apply(
        &(service(name, name)
            + &blue_green_rollout(
                name,
                1,
                "",
                "      activeService: kubectl-wait-paused\n      autoPromotionEnabled: false",
            )),
    )
    .await;
    wait_status(&ns, name, "Healthy").await;
    update_spec(&ns, name, "2").await;
    let ns2 = &ns;
    tokio::task::block_in_place(|| kubectl_wait(ns2, name, "Paused"));
    let ro = get_rollout(&ns, name).await;
    assert_eq!(phase(&ro).0, "Paused");
    assert_eq!(
        active_selector(&ro),
        Some(revision_hash(&ns, name, 1).await)
    );
    promote(&ns, name).await;
    tokio::task::block_in_place(|| kubectl_wait(ns2, name, "Paused=False"));
    let ro = wait_status(&ns, name, "Healthy").await;
    assert_eq!(
        active_selector(&ro),
        Some(revision_hash(&ns, name, 2).await)
    );
}

/// `TestKubectlWaitForCompleted`: with pods that take 5 s to become ready, `Healthy=False`
/// holds right after an update (Progressing, revision 1 active), then `Healthy=True` once
/// revision 2 is active.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_kubectl_wait_for_completed() {
    let name = "kubectl-wait-healthy";
    let (ns, _ctl) = setup("up-wait-healthy").await;
    let manifest = service(name, name)
        + &blue_green_rollout(
            name,
            1,
            "",
            "      activeService: kubectl-wait-healthy\n      autoPromotionEnabled: true",
        )
        .replace(
            &format!("metadata: {{labels: {{app: {name}}}}}"),
            &format!(
                "metadata:\n      labels: {{app: {name}}}\n      annotations: {{sim.rollouts.io/ready-delay: 5s}}"
            ),
        );
    ns.apply(&manifest).await;
    wait_status(&ns, name, "Healthy").await;
    update_spec(&ns, name, "2").await;
    let ns2 = &ns;
    tokio::task::block_in_place(|| kubectl_wait(ns2, name, "Healthy=False"));
    let ro = wait_status(&ns, name, "Progressing").await;
    assert_eq!(
        active_selector(&ro),
        Some(revision_hash(&ns, name, 1).await)
    );
    tokio::task::block_in_place(|| kubectl_wait(ns2, name, "Healthy=True"));
    let ro = get_rollout(&ns, name).await;
    assert_eq!(
        active_selector(&ro),
        Some(revision_hash(&ns, name, 2).await)
    );
}

/// Upstream's `WatchRolloutStatus`: waits for `status`, failing if the Rollout goes Degraded
/// on the way.
async fn watch_status(ns: &TestNs, name: &str, status: &str) {
    wait_rollout(ns, name, &format!("status {status}"), WAIT, |ro, _| {
        let (ph, msg, _) = phase(ro);
        assert_ne!(ph, "Degraded", "went Degraded waiting for {status}: {msg}");
        ph == status
            && ro
                .status
                .as_ref()
                .and_then(|s| s.observed_generation.clone())
                == ro.metadata.generation.map(|g| g.to_string())
    })
    .await;
}

/// `TestRolloutPauseDurationGreaterThanProgressDeadlineSeconds`: a timed pause longer than the
/// progress deadline (5 s against 2 s; upstream 30 s against 5 s) never makes the update
/// Degraded; it ends Healthy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_rollout_pause_duration_greater_than_progress_deadline() {
    let name = "rollout-canary";
    let (ns, _ctl) = setup("up-pause-gt-pds").await;
    ns.apply(&canary_rollout(
        name,
        3,
        "  progressDeadlineSeconds: 2",
        "      steps:\n      - setWeight: 32\n      - pause: {duration: 5s}\n      - setWeight: 67",
    ))
    .await;
    wait_status(&ns, name, "Healthy").await;
    update_spec(&ns, name, "2").await;
    watch_status(&ns, name, "Paused").await;
    watch_status(&ns, name, "Healthy").await;
}

/// `TestCompleteRolloutRestart`: with `progressDeadlineAbort`, a restart long after the last
/// update (past the deadline: 3 s, upstream 15 s) does not abort; the Rollout stays Healthy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_complete_rollout_restart() {
    let name = "rollout-restart";
    let (ns, _ctl) = setup("up-complete-restart").await;
    ns.apply(&canary_rollout(
        name,
        2,
        "  progressDeadlineAbort: true\n  progressDeadlineSeconds: 3",
        "      steps:\n      - setWeight: 20",
    ))
    .await;
    watch_status(&ns, name, "Healthy").await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let now = jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    patch_spec(&ns, name, json!({ "restartAt": now })).await;
    wait_rollout(&ns, name, "restartedAt recorded", WAIT, |ro, _| {
        assert_ne!(phase(ro).0, "Degraded", "{:?}", ro.status);
        ro.status
            .as_ref()
            .and_then(|s| s.restarted_at.as_ref())
            .is_some()
    })
    .await;
    watch_status(&ns, name, "Healthy").await;
    assert_ne!(
        get_rollout(&ns, name).await.status.unwrap().abort,
        Some(true)
    );
}

/// `TestSpecAndReplicaChangeSameTime`: a template change together with a scale (2 → 3), then
/// while paused another template change with another scale (→ 4) ends Healthy at 4/4/4/4/4
/// (timed pauses shortened from 10 s and 5 s to 2 s and 1 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_spec_and_replica_change_same_time() {
    let name = "canary-change-same-time";
    let (ns, _ctl) = setup("up-spec-and-scale").await;
    ns.apply(&canary_rollout(
        name,
        2,
        "",
        "      steps:\n      - setWeight: 10\n      - pause: {duration: 2s}\n      - setWeight: 20\n      - pause: {duration: 1s}",
    ))
    .await;
    wait_status(&ns, name, "Healthy").await;
    let env = |v: &str| {
        json!({"replicas": 0, "template": {"spec": {"containers": [
            {"name": name, "image": "nginx:1.19-alpine", "env": [{"name": "TEST", "value": v}]}]}}})
    };
    let mut p = env("test");
    p["replicas"] = json!(3);
    patch_spec(&ns, name, p).await;
    wait_status(&ns, name, "Paused").await;
    let mut p = env("test-new");
    p["replicas"] = json!(4);
    patch_spec(&ns, name, p).await;
    wait_status(&ns, name, "Healthy").await;
    expect_replica_counts(&ns, name, (4, 4, 4, 4, 4)).await;
}

/// `TestFixInvalidSpec`: a Rollout (0 replicas) whose background analysis names a template
/// that does not exist yet is Degraded (InvalidSpec); once the template is created it becomes
/// Healthy. (Upstream's template queries the API server's version with a web metric; this one
/// is a Job, the point being the missing reference.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_fix_invalid_spec() {
    let name = "fix-invalid-spec";
    let (ns, _ctl) = setup("up-fix-invalid").await;
    let _actl = crate::analysis::start_analysis_controller(&ns);
    ns.apply(&canary_rollout(
        name,
        0,
        "",
        "      analysis:\n        templates: [{templateName: doesnt-exist-yet}]",
    ))
    .await;
    let ro = wait_status(&ns, name, "Degraded").await;
    assert!(phase(&ro).1.starts_with("InvalidSpec"), "{:?}", phase(&ro));
    ns.apply(&SLEEP_JOB.replace("name: sleep-job}", "name: doesnt-exist-yet}"))
        .await;
    wait_status(&ns, name, "Healthy").await;
}

/// `TestReduceWeightAndHonorMaxUnavailable`: maxSurge 2, maxUnavailable 0, pods that take 5 s
/// to start (upstream's `postStart: sleep 5`). At `setWeight: 100` the canary runs all 3 pods
/// and the stable none; going to `setWeight: 0`, 2 s later the canary still has its 3 pods
/// beside 2 new stable ones (no scale-down before the stable is ready); at `setWeight: 100`
/// again a failing analysis aborts the update (Degraded, one AnalysisRun), and 2 s later the
/// canary again keeps 3 pods beside 2 stable ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_reduce_weight_and_honor_max_unavailable() {
    let name = "reduceweight-maxunavailable";
    let (ns, _ctl) = setup("up-reduce-weight").await;
    let _actl = crate::analysis::start_analysis_controller(&ns);
    let manifest = SLEEP_JOB.to_string()
        + &canary_rollout(
            name,
            3,
            "",
            "      maxSurge: 2\n      maxUnavailable: 0\n      steps:\n      - setWeight: 100\n      - pause: {}\n      - setWeight: 0\n      - pause: {}\n      - setWeight: 100\n      - analysis:\n          templates: [{templateName: sleep-job}]\n          args: [{name: image, value: \"nginx:fail\"}]",
        )
        .replace(
            &format!("metadata: {{labels: {{app: {name}}}}}"),
            &format!(
                "metadata:\n      labels: {{app: {name}}}\n      annotations: {{sim.rollouts.io/ready-delay: 5s}}"
            ),
        );
    let manifest = manifest
        .replace(
            "  - {name: duration, value: \"0s\"}",
            "  - {name: duration, value: \"0s\"}\n  - {name: image, value: \"nginx:1.19-alpine\"}",
        )
        .replace(
            "containers: [{name: sleep-job, image: \"nginx:1.19-alpine\"}]",
            "containers: [{name: sleep-job, image: \"{{args.image}}\"}]",
        );
    ns.apply(&manifest).await;
    wait_status(&ns, name, "Healthy").await;
    update_spec(&ns, name, "2").await;
    wait_status(&ns, name, "Paused").await;
    expect_canary_stable_pods(&ns, name, 3, 0).await;
    cli_promote(&ns, name, false).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let counts = canary_stable_now(&ns, name).await;
    assert_eq!(counts, (3, 2), "no scale-down before the stable is ready");
    wait_rollout(&ns, name, "step index 3", WAIT, |ro, _| {
        phase(ro).2 == Some(3)
    })
    .await;
    cli_promote(&ns, name, false).await;
    wait_status(&ns, name, "Degraded").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(analysis_runs(&ns).await.len(), 1);
    let counts = canary_stable_now(&ns, name).await;
    assert_eq!(counts, (3, 2), "the abort honours maxUnavailable");
}

/// Pods of the canary and the stable hash right now (upstream's checks after a sleep).
async fn canary_stable_now(ns: &TestNs, name: &str) -> (i32, i32) {
    let st = get_rollout(ns, name).await.status.unwrap_or_default();
    (
        pods_with_hash(ns, st.current_pod_hash.as_deref().unwrap_or("-")).await,
        pods_with_hash(ns, st.stable_rs.as_deref().unwrap_or("-")).await,
    )
}
