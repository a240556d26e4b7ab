//! Rollouts judged by analysis, against the real API server and a real Prometheus: both
//! controllers (Rollout and AnalysisRun) run in-process for the test namespace.

use crate::analysis::{Shared, error_ratio, request_metrics, serve, start_analysis_controller};
use crate::common::*;
use kube::ResourceExt;
use rollouts::api::{AnalysisRun, Rollout};
use std::sync::Arc;
use std::time::Duration;
use xtask::prometheus::Prometheus;

/// A metrics endpoint the test controls, scraped every second by a real Prometheus.
async fn prometheus(state: &Shared) -> Prometheus {
    let port = serve(state.clone()).await;
    let prom = Prometheus::start(&[format!("127.0.0.1:{port}")])
        .await
        .expect("a real Prometheus must start for the analysis tests");
    prom.wait_for("up", "1", Duration::from_secs(30))
        .await
        .expect("Prometheus scrapes the test endpoint");
    prom
}

fn manifest(addr: &str, svc: &str, steps: &str, background: &str) -> String {
    format!(
        r#"
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {{name: error-ratio}}
spec:
  args:
  - name: service
  metrics:
  - name: error-ratio
    interval: 1s
    count: 3
    successCondition: result[0] < 0.05
    failureCondition: result[0] >= 0.3
    failureLimit: 0
    inconclusiveLimit: 0
    provider:
      prometheus:
        address: {addr}
        query: 'sum(test_requests{{svc="{{{{args.service}}}}",code="5xx"}}) / sum(test_requests{{svc="{{{{args.service}}}}"}})'
---
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {{name: judged}}
spec:
  replicas: 4
  selector: {{matchLabels: {{app: judged}}}}
  template:
    metadata: {{labels: {{app: judged}}}}
    spec:
      containers: [{{name: app, image: "app:v1"}}]
  strategy:
    canary:
{background}      steps:
{steps}
"#
    )
    .replace("SVC", svc)
}

fn step_analysis(svc: &str) -> String {
    format!(
        "      - setWeight: 50\n      - analysis:\n          templates: [{{templateName: error-ratio}}]\n          args: [{{name: service, value: {svc}}}]\n"
    )
}

async fn runs(ns: &TestNs) -> Vec<AnalysisRun> {
    ns.api::<AnalysisRun>()
        .list(&Default::default())
        .await
        .unwrap()
        .items
}

fn stable_of(ro: &Rollout) -> String {
    ro.status
        .clone()
        .unwrap_or_default()
        .stable_rs
        .unwrap_or_default()
}

/// A healthy canary passes its step analysis and completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_canary_passes_step_analysis() {
    let (ns, _ctl) = setup("ra-healthy").await;
    let _actl = start_analysis_controller(&ns);
    let state: Shared = Arc::default();
    state.lock().unwrap().metrics = request_metrics(&[("judged", 990, 10)]);
    let prom = prometheus(&state).await;
    ns.apply(&manifest(
        &prom.url(),
        "judged",
        &step_analysis("judged"),
        "",
    ))
    .await;
    let ro = wait_rollout(
        &ns,
        "judged",
        "Healthy",
        Duration::from_secs(60),
        is_healthy,
    )
    .await;
    let v1 = stable_of(&ro);
    set_image(&ns, "judged", "app:v2").await;
    let ro = wait_rollout(
        &ns,
        "judged",
        "Healthy on v2 after the analysis",
        Duration::from_secs(90),
        |ro, rss| is_healthy(ro, rss) && stable_of(ro) != v1,
    )
    .await;
    let rs = runs(&ns).await;
    assert_eq!(rs.len(), 1);
    assert_eq!(
        rs[0].status.as_ref().unwrap().phase.as_deref(),
        Some("Successful")
    );
    assert_eq!(
        rs[0].labels().get("rollout-type").map(String::as_str),
        Some("Step")
    );
    wait_events(&ns, "judged", &["AnalysisRunSuccessful"]).await;
    let _ = ro;
}

/// A canary whose 5xx ratio exceeds the threshold aborts; the stable takes all replicas back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_analysis_aborts_to_stable() {
    let (ns, _ctl) = setup("ra-failing").await;
    let _actl = start_analysis_controller(&ns);
    let state: Shared = Arc::default();
    state.lock().unwrap().metrics = request_metrics(&[("judged", 500, 500)]);
    let prom = prometheus(&state).await;
    ns.apply(&manifest(
        &prom.url(),
        "judged",
        &step_analysis("judged"),
        "",
    ))
    .await;
    let ro = wait_rollout(
        &ns,
        "judged",
        "Healthy",
        Duration::from_secs(60),
        is_healthy,
    )
    .await;
    let v1 = stable_of(&ro);
    set_image(&ns, "judged", "app:v2").await;
    let ro = wait_rollout(
        &ns,
        "judged",
        "aborted with the stable back at 4",
        Duration::from_secs(90),
        |ro, rss| {
            let stable_full = rss
                .iter()
                .find(|rs| hash_of(rs) == stable_of(ro))
                .is_some_and(|rs| available(rs) == 4);
            let canary_gone = rss
                .iter()
                .filter(|rs| hash_of(rs) != stable_of(ro))
                .all(|rs| spec_replicas(rs) == 0);
            phase(ro).0 == "Degraded" && stable_full && canary_gone
        },
    )
    .await;
    assert_eq!(stable_of(&ro), v1);
    let msg = phase(&ro).1;
    assert!(
        msg.contains("RolloutAborted") && msg.contains("error-ratio"),
        "{msg}"
    );
}

/// Prometheus stopped mid-analysis: Error measurements up to the limit, then the run is Error
/// and the Rollout aborts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_down_errors_and_aborts() {
    let (ns, _ctl) = setup("ra-prom-down").await;
    let _actl = start_analysis_controller(&ns);
    let state: Shared = Arc::default();
    state.lock().unwrap().metrics = request_metrics(&[("judged", 1000, 0)]);
    let mut prom = prometheus(&state).await;
    let steps = step_analysis("judged");
    let text = manifest(&prom.url(), "judged", &steps, "")
        .replace("count: 3", "count: 100")
        .replace(
            "failureLimit: 0",
            "failureLimit: 0\n    consecutiveErrorLimit: 1",
        );
    ns.apply(&text).await;
    wait_rollout(
        &ns,
        "judged",
        "Healthy",
        Duration::from_secs(60),
        is_healthy,
    )
    .await;
    set_image(&ns, "judged", "app:v2").await;
    ns.wait_for(
        "the step AnalysisRun running",
        Duration::from_secs(60),
        || async {
            let r = runs(&ns).await;
            Ok(r.iter()
                .any(|r| r.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
                .then_some(()))
        },
    )
    .await;
    prom.stop();
    let ro = wait_rollout(
        &ns,
        "judged",
        "aborted after Prometheus went away",
        Duration::from_secs(120),
        |ro, _| phase(ro).0 == "Degraded",
    )
    .await;
    let r = runs(&ns).await;
    assert_eq!(
        r[0].status.as_ref().unwrap().phase.as_deref(),
        Some("Error"),
        "{:?}",
        r[0].status
    );
    assert!(phase(&ro).1.contains("RolloutAborted"));
}

/// Background analysis aborts the Rollout between steps.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_analysis_aborts_between_steps() {
    let (ns, _ctl) = setup("ra-background").await;
    let _actl = start_analysis_controller(&ns);
    let state: Shared = Arc::default();
    state.lock().unwrap().metrics = request_metrics(&[("judged", 1000, 0)]);
    let prom = prometheus(&state).await;
    let background = "      analysis:\n        templates: [{templateName: error-ratio}]\n        args: [{name: service, value: judged}]\n";
    let steps =
        "      - setWeight: 25\n      - pause: {}\n      - setWeight: 50\n      - pause: {}\n";
    let text =
        manifest(&prom.url(), "judged", steps, background).replace("count: 3", "count: 1000");
    ns.apply(&text).await;
    wait_rollout(
        &ns,
        "judged",
        "Healthy",
        Duration::from_secs(60),
        is_healthy,
    )
    .await;
    set_image(&ns, "judged", "app:v2").await;
    wait_rollout(
        &ns,
        "judged",
        "paused at step 1 with the background run going",
        Duration::from_secs(60),
        |ro, _| {
            phase(ro).0 == "Paused"
                && ro
                    .status
                    .as_ref()
                    .and_then(|s| s.canary.as_ref())
                    .and_then(|c| c.current_background_analysis_run_status.as_ref())
                    .is_some()
        },
    )
    .await;
    // The canary starts failing while the Rollout waits at its pause.
    state.lock().unwrap().metrics = request_metrics(&[("judged", 100, 900)]);
    wait_rollout(
        &ns,
        "judged",
        "aborted by the background analysis",
        Duration::from_secs(90),
        |ro, rss| {
            phase(ro).0 == "Degraded"
                && rss
                    .iter()
                    .filter(|rs| hash_of(rs) != stable_of(ro))
                    .all(|rs| spec_replicas(rs) == 0)
        },
    )
    .await;
    let r = runs(&ns).await;
    assert_eq!(
        r[0].labels().get("rollout-type").map(String::as_str),
        Some("Background")
    );
}

/// An inconclusive result pauses the Rollout; promote runs the analysis again and resumes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inconclusive_pauses_and_promote_resumes() {
    let (ns, _ctl) = setup("ra-inconclusive").await;
    let _actl = start_analysis_controller(&ns);
    let state: Shared = Arc::default();
    state.lock().unwrap().metrics = request_metrics(&[("judged", 850, 150)]);
    let prom = prometheus(&state).await;
    ns.apply(&manifest(
        &prom.url(),
        "judged",
        &step_analysis("judged"),
        "",
    ))
    .await;
    let ro = wait_rollout(
        &ns,
        "judged",
        "Healthy",
        Duration::from_secs(60),
        is_healthy,
    )
    .await;
    let v1 = stable_of(&ro);
    set_image(&ns, "judged", "app:v2").await;
    wait_rollout(
        &ns,
        "judged",
        "paused: inconclusive",
        Duration::from_secs(90),
        |ro, _| {
            let (ph, msg, _) = phase(ro);
            ph == "Paused" && msg == "InconclusiveAnalysisRun"
        },
    )
    .await;
    state.lock().unwrap().metrics = request_metrics(&[("judged", 1000, 0)]);
    prom.wait_for(&error_ratio("judged"), "\"0\"", Duration::from_secs(30))
        .await
        .ok();
    promote(&ns, "judged").await;
    wait_rollout(
        &ns,
        "judged",
        "Healthy on v2 after a second analysis",
        Duration::from_secs(90),
        |ro, rss| is_healthy(ro, rss) && stable_of(ro) != v1,
    )
    .await;
    assert_eq!(
        runs(&ns).await.len(),
        2,
        "the inconclusive run and the one after promote"
    );
}

/// A job-provider analysis step (the pod simulator finishes Job pods).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_provider_step_analysis() {
    let (ns, _ctl) = setup("ra-job").await;
    let _actl = start_analysis_controller(&ns);
    let text = r#"
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: smoke}
spec:
  metrics:
  - name: smoke-test
    provider:
      job:
        spec:
          backoffLimit: 0
          template:
            spec:
              restartPolicy: Never
              containers: [{name: smoke, image: "smoke:IMAGE"}]
---
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: judged}
spec:
  replicas: 2
  selector: {matchLabels: {app: judged}}
  template:
    metadata: {labels: {app: judged}}
    spec:
      containers: [{name: app, image: "app:v1"}]
  strategy:
    canary:
      steps:
      - setWeight: 50
      - analysis: {templates: [{templateName: smoke}]}
"#;
    ns.apply(&text.replace("IMAGE", "ok")).await;
    let ro = wait_rollout(
        &ns,
        "judged",
        "Healthy",
        Duration::from_secs(60),
        is_healthy,
    )
    .await;
    let v1 = stable_of(&ro);
    set_image(&ns, "judged", "app:v2").await;
    let ro = wait_rollout(
        &ns,
        "judged",
        "Healthy on v2 after the smoke Job",
        Duration::from_secs(90),
        |ro, rss| is_healthy(ro, rss) && stable_of(ro) != v1,
    )
    .await;
    let v2 = stable_of(&ro);
    // A failing smoke test aborts the next update (only the template is re-applied).
    let template_doc = text
        .split("\n---\n")
        .next()
        .unwrap()
        .replace("IMAGE", "fail");
    ns.apply(&template_doc).await;
    set_image(&ns, "judged", "app:v3").await;
    wait_rollout(
        &ns,
        "judged",
        "aborted by the failing Job",
        Duration::from_secs(90),
        |ro, _| phase(ro).0 == "Degraded",
    )
    .await;
    assert_eq!(stable_of(&get_rollout(&ns, "judged").await), v2);
}

/// A blue-green Rollout with Job-provider smoke tests before and after the switch; `PRE` and
/// `POST` are the image tags of the Jobs (`ok` succeeds, `fail` fails).
const BG_ANALYSED: &str = r#"
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: pre}
spec:
  metrics:
  - name: pre-smoke
    provider:
      job:
        spec:
          backoffLimit: 0
          template:
            spec:
              restartPolicy: Never
              containers: [{name: smoke, image: "smoke:PRE"}]
---
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: post}
spec:
  metrics:
  - name: post-smoke
    provider:
      job:
        spec:
          backoffLimit: 0
          template:
            spec:
              restartPolicy: Never
              containers: [{name: smoke, image: "smoke:POST"}]
---
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: bg}
spec:
  replicas: 2
  selector: {matchLabels: {app: bg}}
  template:
    metadata: {labels: {app: bg}}
    spec:
      containers: [{name: app, image: "app:v1"}]
  strategy:
    blueGreen:
      activeService: bg-active
      previewService: bg-preview
      abortScaleDownDelaySeconds: 2
      scaleDownDelaySeconds: 600
      prePromotionAnalysis: {templates: [{templateName: pre}]}
      postPromotionAnalysis: {templates: [{templateName: post}]}
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

fn bg_analysed(pre: &str, post: &str) -> String {
    BG_ANALYSED.replace("PRE", pre).replace("POST", post)
}

fn runs_of_type(rs: &[AnalysisRun], kind: &str) -> Vec<String> {
    rs.iter()
        .filter(|r| r.labels().get("rollout-type").map(String::as_str) == Some(kind))
        .map(|r| {
            r.status
                .as_ref()
                .and_then(|s| s.phase.clone())
                .unwrap_or_default()
        })
        .collect()
}

/// Both analyses pass: the switch happens after the pre-promotion run, and the new version
/// becomes stable only after the post-promotion run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blue_green_pre_and_post_promotion_analysis_pass() {
    let (ns, _ctl) = setup("ra-bg-pass").await;
    let _actl = start_analysis_controller(&ns);
    ns.apply(&bg_analysed("ok", "ok")).await;
    let ro = wait_rollout(&ns, "bg", "Healthy", Duration::from_secs(60), is_healthy).await;
    let v1 = stable_of(&ro);
    assert!(
        runs(&ns).await.is_empty(),
        "no analysis on the first deploy"
    );
    set_image(&ns, "bg", "app:v2").await;
    let ro = wait_rollout(
        &ns,
        "bg",
        "Healthy on v2 after both analyses (v1 kept for its scale-down delay)",
        Duration::from_secs(120),
        |ro, _| phase(ro).0 == "Healthy" && stable_of(ro) != v1,
    )
    .await;
    let v2 = stable_of(&ro);
    assert_eq!(crate::bluegreen::selector(&ns, "bg-active").await, v2);
    let rs = runs(&ns).await;
    assert_eq!(runs_of_type(&rs, "PrePromotion"), vec!["Successful"]);
    assert_eq!(runs_of_type(&rs, "PostPromotion"), vec!["Successful"]);
    let bg = ro.status.unwrap().blue_green.unwrap_or_default();
    assert!(bg.pre_promotion_analysis_run_status.is_some());
    assert!(bg.post_promotion_analysis_run_status.is_some());
}

/// A failing pre-promotion analysis aborts before the switch: the active Service never leaves
/// the old version, and the preview is scaled down after the abort delay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blue_green_pre_promotion_failure_aborts_with_active_untouched() {
    let (ns, _ctl) = setup("ra-bg-pre").await;
    let _actl = start_analysis_controller(&ns);
    ns.apply(&bg_analysed("fail", "ok")).await;
    let ro = wait_rollout(&ns, "bg", "Healthy", Duration::from_secs(60), is_healthy).await;
    let v1 = stable_of(&ro);
    set_image(&ns, "bg", "app:v2").await;
    // Sample the active Service's selector all along: it must never point at v2.
    let seen: Arc<std::sync::Mutex<std::collections::BTreeSet<String>>> = Arc::default();
    let watcher = {
        let services = ns.api::<k8s_openapi::api::core::v1::Service>();
        let seen = seen.clone();
        tokio::spawn(async move {
            loop {
                let sel = services
                    .get("bg-active")
                    .await
                    .ok()
                    .and_then(|s| s.spec?.selector?.get("rollouts-pod-template-hash").cloned())
                    .unwrap_or_default();
                seen.lock().unwrap().insert(sel);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let ro = wait_rollout(
        &ns,
        "bg",
        "aborted with the preview scaled down",
        Duration::from_secs(120),
        |ro, rss| {
            let cur = ro
                .status
                .as_ref()
                .and_then(|s| s.current_pod_hash.clone())
                .unwrap_or_default();
            phase(ro).0 == "Degraded"
                && cur != v1
                && rss
                    .iter()
                    .filter(|rs| hash_of(rs) == cur)
                    .all(|rs| spec_replicas(rs) == 0)
        },
    )
    .await;
    watcher.abort();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen, [v1.clone()].into(), "the active Service left v1");
    assert_eq!(stable_of(&ro), v1);
    assert_eq!(crate::bluegreen::selector(&ns, "bg-active").await, v1);
    assert_eq!(
        crate::bluegreen::endpoint_hashes(&ns, "bg-active").await,
        vec![v1.clone()]
    );
    let rs = runs(&ns).await;
    assert_eq!(runs_of_type(&rs, "PrePromotion"), vec!["Failed"]);
    assert!(runs_of_type(&rs, "PostPromotion").is_empty());
    let msg = phase(&ro).1;
    assert!(msg.contains("RolloutAborted"), "{msg}");
}

/// A failing post-promotion analysis rolls back: the active Service returns to the old version
/// (still up within its scale-down delay), which stays stable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blue_green_post_promotion_failure_rolls_back() {
    let (ns, _ctl) = setup("ra-bg-post").await;
    let _actl = start_analysis_controller(&ns);
    ns.apply(&bg_analysed("ok", "fail")).await;
    let ro = wait_rollout(&ns, "bg", "Healthy", Duration::from_secs(60), is_healthy).await;
    let v1 = stable_of(&ro);
    set_image(&ns, "bg", "app:v2").await;
    let ro = wait_rollout(
        &ns,
        "bg",
        "switched to v2, waiting for post-promotion analysis",
        Duration::from_secs(120),
        |ro, _| {
            let b = ro
                .status
                .as_ref()
                .and_then(|s| s.blue_green.clone())
                .unwrap_or_default();
            let cur = ro
                .status
                .as_ref()
                .and_then(|s| s.current_pod_hash.clone())
                .unwrap_or_default();
            cur != v1 && b.active_selector.as_deref() == Some(cur.as_str())
        },
    )
    .await;
    let v2 = ro.status.unwrap().current_pod_hash.unwrap();
    assert_eq!(
        stable_of(&get_rollout(&ns, "bg").await),
        v1,
        "not stable before post"
    );
    let ro = wait_rollout(
        &ns,
        "bg",
        "aborted, active back on v1",
        Duration::from_secs(120),
        |ro, rss| {
            phase(ro).0 == "Degraded"
                && rss
                    .iter()
                    .find(|rs| hash_of(rs) == v1)
                    .is_some_and(|rs| available(rs) == 2)
        },
    )
    .await;
    assert_eq!(stable_of(&ro), v1);
    ns.wait_for(
        "the active Service back on v1",
        Duration::from_secs(30),
        || async { Ok((crate::bluegreen::selector(&ns, "bg-active").await == v1).then_some(())) },
    )
    .await;
    let rs = runs(&ns).await;
    assert_eq!(runs_of_type(&rs, "PostPromotion"), vec!["Failed"]);
    let _ = v2;
}
