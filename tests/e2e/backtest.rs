//! `kubectl-rollouts analysis backtest` against the real Prometheus of the harness: two live
//! AnalysisRuns (the controller running in-process against the real API server) judge a
//! steady series and one that regresses mid-run; afterwards the backtest replays the same
//! template over the same window of the same Prometheus, and must reach the same verdicts at
//! about the same time — through the library and through the binary, with the template read
//! from a file or from the cluster.

use crate::analysis::{Shared, request_metrics, serve, start_analysis_controller};
use crate::common::*;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::PostParams;
use rollouts::api::AnalysisRun;
use rollouts::cli::backtest::{self, TemplateSet};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;
use xtask::prometheus::Prometheus;

const TEMPLATE: &str = r#"
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: error-ratio}
spec:
  args:
  - name: service
  metrics:
  - name: error-ratio
    interval: 2s
    count: 8
    failureLimit: 1
    successCondition: result[0] < 0.05
    failureCondition: result[0] >= 0.3
    provider:
      prometheus:
        address: ADDRESS
        query: 'sum(test_requests{svc="{{args.service}}",code="5xx"}) / sum(test_requests{svc="{{args.service}}"})'
"#;

fn phase_of(r: &AnalysisRun) -> String {
    r.status
        .as_ref()
        .and_then(|s| s.phase.clone())
        .unwrap_or_default()
}

fn measurements(r: &AnalysisRun) -> usize {
    r.status
        .as_ref()
        .and_then(|s| s.metric_results.as_ref())
        .and_then(|m| m.first())
        .map(|m| {
            (m.count.unwrap_or(0) + m.error.unwrap_or(0))
                .try_into()
                .unwrap_or(0)
        })
        .unwrap_or(0)
}

async fn live_run(ns: &TestNs, template: &str, service: &str) -> AnalysisRun {
    let set = TemplateSet::from_manifest(template, "template").unwrap();
    let root = set.root(None, false).unwrap();
    let mut run = backtest::analysis_run(&set, &root, &[("service".into(), service.into())])
        .expect("the run the controller would create");
    run.metadata.name = Some(service.into());
    run.metadata.namespace = Some(ns.name.clone());
    run.metadata.annotations = None;
    ns.api::<AnalysisRun>()
        .create(&PostParams::default(), &run)
        .await
        .unwrap()
}

async fn wait_run(
    ns: &TestNs,
    name: &str,
    what: &str,
    pred: impl Fn(&AnalysisRun) -> bool,
) -> AnalysisRun {
    let api = ns.api::<AnalysisRun>();
    let pred = &pred;
    ns.wait_for(what, Duration::from_secs(90), || {
        let api = api.clone();
        async move {
            let r = api.get(name).await?;
            Ok(pred(&r).then_some(r))
        }
    })
    .await
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

async fn cli(args: Vec<String>) -> Out {
    let kubeconfig = testkit::cluster().kubeconfig.clone();
    tokio::task::spawn_blocking(move || {
        let out = Command::new(env!("CARGO_BIN_EXE_kubectl-rollouts"))
            .args(&args)
            .env("KUBECONFIG", &kubeconfig)
            .env_remove("ARGO_ROLLOUTS_PROMETHEUS_ADDRESS")
            .output()
            .expect("running kubectl-rollouts");
        Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into(),
            stderr: String::from_utf8_lossy(&out.stderr).into(),
        }
    })
    .await
    .expect("the CLI thread")
}

fn started(r: &AnalysisRun) -> Timestamp {
    r.status.as_ref().unwrap().started_at.clone().unwrap().0
}

fn completed(r: &AnalysisRun) -> Timestamp {
    r.status.as_ref().unwrap().completed_at.clone().unwrap().0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backtest_verdicts_equal_live_runs_on_the_same_data() {
    let (ns, _ctl) = setup("backtest").await;
    let _actl = start_analysis_controller(&ns);
    let state: Shared = Arc::default();
    state.lock().unwrap().metrics = request_metrics(&[("steady", 990, 10), ("regress", 990, 10)]);
    let port = serve(state.clone()).await;
    let prom = Prometheus::start(&[format!("127.0.0.1:{port}")])
        .await
        .expect("a real Prometheus must start for the backtest");
    prom.wait_for(
        "sum(test_requests{svc=\"regress\"})",
        "1000",
        Duration::from_secs(30),
    )
    .await
    .expect("Prometheus scrapes the test endpoint");
    // The series exists a while before the runs start (the backtest measures at whole
    // seconds, as the controller stamps its measurements; a live run may measure within the
    // very second the first sample was scraped).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let template = TEMPLATE.replace("ADDRESS", &prom.url());

    // Live: both runs start on a 1% error ratio; after two measurements, `regress` jumps to
    // 50% and fails; `steady` stays and succeeds.
    live_run(&ns, &template, "steady").await;
    live_run(&ns, &template, "regress").await;
    wait_run(&ns, "regress", "two measurements of regress", |r| {
        measurements(r) >= 2
    })
    .await;
    state.lock().unwrap().metrics = request_metrics(&[("steady", 990, 10), ("regress", 500, 500)]);
    let regress = wait_run(&ns, "regress", "regress completed", |r| {
        backtest_done(&phase_of(r))
    })
    .await;
    let steady = wait_run(&ns, "steady", "steady completed", |r| {
        backtest_done(&phase_of(r))
    })
    .await;
    assert_eq!(phase_of(&regress), "Failed", "{:?}", regress.status);
    assert_eq!(phase_of(&steady), "Successful", "{:?}", steady.status);

    // Replay, through the library (the same code the CLI runs).
    let set = TemplateSet::from_manifest(&template, "template").unwrap();
    let root = set.root(None, false).unwrap();
    for live in [&steady, &regress] {
        let name = live.metadata.name.clone().unwrap();
        let run = backtest::analysis_run(&set, &root, &[("service".into(), name.clone())]).unwrap();
        let from = started(live);
        let to = completed(live)
            .checked_add(SignedDuration::from_secs(10))
            .unwrap();
        let b = backtest::backtest(&run, from, to, None).await.unwrap();
        let report = backtest::render(&b);
        assert_eq!(
            b.phase,
            phase_of(live),
            "{name}:\n{report}\nlive: {:?}",
            live.status
        );
        let decided = b.decided_at.expect("a verdict within the window");
        let drift = decided.duration_since(completed(live)).abs();
        assert!(
            drift <= SignedDuration::from_secs(5),
            "{name}: the backtest decided at {decided}, the live run at {} ({drift:?} apart)\n{report}",
            completed(live)
        );
        let live_count = measurements(live);
        let replayed = b.measurements.len();
        if name == "steady" {
            assert_eq!(replayed, live_count, "{report}");
            assert!(
                b.measurements.iter().all(|m| m.phase == "Successful"),
                "{report}"
            );
        } else {
            assert!(
                replayed.abs_diff(live_count) <= 1,
                "{replayed} vs {live_count}\n{report}"
            );
            assert_eq!(b.measurements[0].phase, "Successful", "{report}");
            assert_eq!(b.measurements.last().unwrap().phase, "Failed", "{report}");
            assert!(
                b.message
                    .as_deref()
                    .unwrap_or_default()
                    .contains("failureLimit (1)"),
                "{report}"
            );
        }
    }

    // The binary, from a file, with the address overridden and a chart.
    let dir = std::env::temp_dir().join(format!("rollouts-backtest-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("template.yaml");
    std::fs::write(
        &file,
        TEMPLATE.replace("ADDRESS", "http://prometheus.monitoring:9090"),
    )
    .unwrap();
    let svg = dir.join("regress.svg");
    let window = |r: &AnalysisRun| {
        (
            started(r).to_string(),
            completed(r)
                .checked_add(SignedDuration::from_secs(10))
                .unwrap()
                .to_string(),
        )
    };
    let (from, to) = window(&regress);
    let out = cli(vec![
        "analysis".into(),
        "backtest".into(),
        "-f".into(),
        file.display().to_string(),
        "--arg".into(),
        "service=regress".into(),
        "--from".into(),
        from,
        "--to".into(),
        to,
        "--prometheus-address".into(),
        prom.url(),
        "--svg".into(),
        svg.display().to_string(),
    ])
    .await;
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.starts_with("TIME "), "{}", out.stdout);
    assert!(out.stdout.contains("Verdict: Failed at "), "{}", out.stdout);
    assert!(
        out.stderr.contains("the analysis would have ended Failed"),
        "{}",
        out.stderr
    );
    let chart = std::fs::read_to_string(&svg).unwrap();
    assert!(
        chart.contains("<circle") && chart.contains("result[0] &gt;= 0.3"),
        "{chart}"
    );

    // The binary, with the template from the cluster, JSON out.
    ns.apply(&template).await;
    let (from, to) = window(&steady);
    let out = cli(vec![
        "-n".into(),
        ns.name.clone(),
        "analysis".into(),
        "backtest".into(),
        "--template".into(),
        "error-ratio".into(),
        "--arg".into(),
        "service=steady".into(),
        "--from".into(),
        from,
        "--to".into(),
        to,
        "-o".into(),
        "json".into(),
    ])
    .await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["phase"], "Successful");
    assert_eq!(v["measurements"].as_array().unwrap().len(), 8);
    let _ = std::fs::remove_dir_all(&dir);
}

fn backtest_done(p: &str) -> bool {
    rollouts::api::analysis_phase::is_completed(p)
}
