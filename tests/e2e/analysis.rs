//! The AnalysisRun controller against the real API server (no Rollout involved): runs are
//! applied directly and their phases checked, with
//! - a real Prometheus (Debian's package, started by `xtask::prometheus`) scraping a metrics
//!   endpoint this test serves;
//! - a local HTTP server for the web provider;
//! - Jobs run by the control plane's job controller and the pod simulator (an image tag
//!   containing `fail` fails).

use crate::common::*;
use k8s_openapi::api::batch::v1::Job;
use kube::api::{ListParams, Patch, PatchParams};
use rollouts::analysis::AnalysisMetrics;
use rollouts::api::{AnalysisRun, analysis_phase};
use rollouts::controller::analysis as actl;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use xtask::prometheus::Prometheus;

// ------------------------------------------------------------------------------------------
// Harness
// ------------------------------------------------------------------------------------------

/// The AnalysisRun controller running in this test's runtime, scoped to the test namespace.
pub(crate) struct AnalysisCtl {
    metrics: Arc<AnalysisMetrics>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for AnalysisCtl {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        self.task.abort();
    }
}

pub(crate) fn start_analysis_controller(ns: &TestNs) -> AnalysisCtl {
    start_analysis_controller_with(ns, |_| {})
}

/// [`start_analysis_controller`] with settings changed by `tweak`.
pub(crate) fn start_analysis_controller_with(
    ns: &TestNs,
    tweak: impl FnOnce(&mut actl::Config),
) -> AnalysisCtl {
    let metrics = Arc::new(AnalysisMetrics::new());
    let mut config = actl::Config {
        namespace: Some(ns.name.clone()),
        analysis_concurrency: 8,
        prometheus_address: None,
        metrics: metrics.clone(),
        ..Default::default()
    };
    tweak(&mut config);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let client = ns.client.clone();
    let task = tokio::spawn(async move {
        actl::run(client, config, async move {
            let _ = rx.await;
        })
        .await;
    });
    AnalysisCtl {
        metrics,
        stop: Some(tx),
        task,
    }
}

async fn setup_analysis(test: &str) -> (TestNs, AnalysisCtl) {
    init_logging();
    crds_installed().await;
    let ns = TestNs::new(test).await;
    let ctl = start_analysis_controller(&ns);
    (ns, ctl)
}

/// One request the test server received.
#[derive(Clone, Debug)]
#[allow(dead_code)]
struct Request {
    method: String,
    path: String,
    headers: HashMap<String, String>,
    body: String,
}

/// What the test server answers: `/metrics` (Prometheus text) and fixed routes.
#[derive(Default)]
pub(crate) struct Served {
    pub(crate) metrics: String,
    pub(crate) routes: HashMap<String, (u16, String)>,
    requests: Vec<Request>,
}

pub(crate) type Shared = Arc<Mutex<Served>>;

async fn handle(mut s: tokio::net::TcpStream, state: Shared) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 1 << 20 {
            return;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.lines();
    let mut first = lines.next().unwrap_or_default().split_whitespace();
    let method = first.next().unwrap_or_default().to_string();
    let target = first.next().unwrap_or_default().to_string();
    let path = target.split('?').next().unwrap_or_default().to_string();
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_string()))
        .collect();
    let len: usize = headers
        .get("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + len {
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let body = String::from_utf8_lossy(&buf[head_end..]).into_owned();
    let (code, ctype, text) = {
        let mut st = state.lock().unwrap();
        if path == "/metrics" {
            (200, "text/plain; version=0.0.4", st.metrics.clone())
        } else {
            st.requests.push(Request {
                method,
                path: path.clone(),
                headers,
                body,
            });
            match st.routes.get(&path) {
                Some((c, b)) => (*c, "application/json", b.clone()),
                None => (404, "text/plain", "not found".to_string()),
            }
        }
    };
    let resp = format!(
        "HTTP/1.1 {code} X\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    );
    let _ = s.write_all(resp.as_bytes()).await;
    let _ = s.shutdown().await;
}

/// Serves `state` on a free loopback port for the rest of the test.
pub(crate) async fn serve(state: Shared) -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            tokio::spawn(handle(s, state.clone()));
        }
    });
    port
}

/// Prometheus text for request counters of `(service, 2xx, 5xx)`.
pub(crate) fn request_metrics(services: &[(&str, u32, u32)]) -> String {
    let mut out = String::from("# TYPE test_requests gauge\n");
    for (svc, ok, err) in services {
        out.push_str(&format!(
            "test_requests{{svc=\"{svc}\",code=\"2xx\"}} {ok}\n"
        ));
        out.push_str(&format!(
            "test_requests{{svc=\"{svc}\",code=\"5xx\"}} {err}\n"
        ));
    }
    out
}

pub(crate) fn error_ratio(svc: &str) -> String {
    format!(
        "sum(test_requests{{svc=\"{svc}\",code=\"5xx\"}}) / sum(test_requests{{svc=\"{svc}\"}})"
    )
}

fn phase_of(ar: &AnalysisRun) -> String {
    ar.status
        .as_ref()
        .and_then(|s| s.phase.clone())
        .unwrap_or_default()
}

/// Waits until the run's phase is `want`; returns the run.
async fn wait_phase(ns: &TestNs, name: &str, want: &str, timeout: Duration) -> AnalysisRun {
    let api = ns.api::<AnalysisRun>();
    ns.wait_for(&format!("AnalysisRun {name} {want}"), timeout, || {
        let api = api.clone();
        async move {
            let ar = api.get(name).await?;
            Ok((phase_of(&ar) == want).then_some(ar))
        }
    })
    .await
}

fn result<'a>(ar: &'a AnalysisRun, metric: &str) -> &'a rollouts::api::MetricResult {
    ar.status
        .as_ref()
        .and_then(|s| s.metric_results.as_ref())
        .and_then(|rs| rs.iter().find(|r| r.name.as_deref() == Some(metric)))
        .unwrap_or_else(|| panic!("no result for metric {metric}: {:?}", ar.status))
}

fn run_yaml(name: &str, body: &str) -> String {
    format!(
        "apiVersion: argoproj.io/v1alpha1\nkind: AnalysisRun\nmetadata:\n  name: {name}\nspec:\n{body}"
    )
}

// ------------------------------------------------------------------------------------------
// Prometheus
// ------------------------------------------------------------------------------------------

/// One Prometheus, four runs: a healthy error ratio (instant and range queries, plus a dry-run
/// metric on a series that does not exist) → Successful; a failing ratio → Failed after the
/// failure limit; a ratio between the conditions → Inconclusive; an unbounded run →
/// Successful once terminated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_runs_end_successful_failed_inconclusive_or_terminated() {
    let (ns, ctl) = setup_analysis("analysis-prometheus").await;
    let state: Shared = Arc::default();
    state.lock().unwrap().metrics =
        request_metrics(&[("good", 990, 10), ("bad", 500, 500), ("meh", 800, 200)]);
    let port = serve(state.clone()).await;
    let prom = Prometheus::start(&[format!("127.0.0.1:{port}")])
        .await
        .expect("a real Prometheus must start for the analysis tests");
    prom.wait_for(&error_ratio("meh"), "0.2", Duration::from_secs(30))
        .await
        .expect("Prometheus scrapes the test endpoint");
    let addr = prom.url();

    ns.apply(&run_yaml(
        "good",
        &format!(
            r#"  dryRun:
  - metricName: absent
  metrics:
  - name: error-ratio
    interval: 1s
    count: 3
    successCondition: result[0] < 0.05
    provider:
      prometheus:
        address: {addr}
        query: '{q}'
  - name: error-ratio-range
    successCondition: len(result) > 0 && all(result, {{# < 0.05}})
    provider:
      prometheus:
        address: {addr}
        query: '{q}'
        rangeQuery:
          start: now() - duration("5s")
          end: now()
          step: 1s
  - name: absent
    consecutiveErrorLimit: 0
    successCondition: result[0] < 1
    provider:
      prometheus:
        address: {addr}
        query: 'sum(no_such_metric)'
"#,
            q = error_ratio("good")
        ),
    ))
    .await;
    ns.apply(&run_yaml(
        "bad",
        &format!(
            r#"  metrics:
  - name: error-ratio
    interval: 1s
    count: 10
    failureLimit: 1
    successCondition: result[0] < 0.05
    provider:
      prometheus:
        address: {addr}
        query: '{q}'
"#,
            q = error_ratio("bad")
        ),
    ))
    .await;
    ns.apply(&run_yaml(
        "meh",
        &format!(
            r#"  metrics:
  - name: error-ratio
    successCondition: result[0] < 0.05
    failureCondition: result[0] > 0.5
    provider:
      prometheus:
        address: {addr}
        query: '{q}'
"#,
            q = error_ratio("meh")
        ),
    ))
    .await;
    ns.apply(&run_yaml(
        "forever",
        &format!(
            r#"  metrics:
  - name: error-ratio
    interval: 1s
    successCondition: result[0] < 0.05
    provider:
      prometheus:
        address: {addr}
        query: '{q}'
"#,
            q = error_ratio("good")
        ),
    ))
    .await;

    let good = wait_phase(
        &ns,
        "good",
        analysis_phase::SUCCESSFUL,
        Duration::from_secs(60),
    )
    .await;
    let r = result(&good, "error-ratio");
    assert_eq!(r.count, Some(3));
    assert_eq!(r.successful, Some(3));
    let ms = r.measurements.as_ref().unwrap();
    assert_eq!(ms.len(), 3);
    assert!(
        ms.iter().all(|m| m.value.as_deref() == Some("[0.01]")),
        "{ms:?}"
    );
    // Measurements at their scheduled times: one second apart (stored with 1 s precision).
    for w in ms.windows(2) {
        let gap = w[1].started_at.as_ref().unwrap().0.as_second()
            - w[0].finished_at.as_ref().unwrap().0.as_second();
        assert!((0..=3).contains(&gap), "measurements {gap}s apart: {ms:?}");
    }
    assert_eq!(
        r.metadata
            .as_ref()
            .and_then(|m| m.get("ResolvedPrometheusQuery"))
            .map(String::as_str),
        Some(error_ratio("good").as_str())
    );
    let range = result(&good, "error-ratio-range");
    assert_eq!(range.phase.as_deref(), Some(analysis_phase::SUCCESSFUL));
    let v = range.measurements.as_ref().unwrap()[0]
        .value
        .clone()
        .unwrap();
    assert!(
        v.starts_with("[0.01"),
        "a range query gives every sample: {v}"
    );
    let absent = result(&good, "absent");
    assert_eq!(absent.phase.as_deref(), Some(analysis_phase::ERROR));
    assert_eq!(absent.dry_run, Some(true));
    let msg = absent.measurements.as_ref().unwrap()[0]
        .message
        .clone()
        .unwrap();
    assert!(
        msg.contains("empty result"),
        "a clear message for an empty result: {msg}"
    );
    let st = good.status.clone().unwrap();
    assert_eq!(st.run_summary.as_ref().unwrap().count, Some(2));
    assert_eq!(st.run_summary.as_ref().unwrap().successful, Some(2));
    assert_eq!(st.dry_run_summary.as_ref().unwrap().error, Some(1));
    assert!(st.started_at.is_some() && st.completed_at.is_some());

    let bad = wait_phase(&ns, "bad", analysis_phase::FAILED, Duration::from_secs(60)).await;
    let r = result(&bad, "error-ratio");
    assert_eq!(
        (r.failed, r.count),
        (Some(2), Some(2)),
        "ends at the second failure"
    );
    assert_eq!(
        bad.status.as_ref().unwrap().message.as_deref(),
        Some("Metric \"error-ratio\" assessed Failed due to failed (2) > failureLimit (1)")
    );

    let meh = wait_phase(
        &ns,
        "meh",
        analysis_phase::INCONCLUSIVE,
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(result(&meh, "error-ratio").inconclusive, Some(1));

    // The unbounded run measures until terminated.
    let api = ns.api::<AnalysisRun>();
    ns.wait_for("forever measured twice", Duration::from_secs(30), || {
        let api = api.clone();
        async move {
            let ar = api.get("forever").await?;
            let n = ar
                .status
                .as_ref()
                .and_then(|s| s.metric_results.as_ref())
                .and_then(|r| r.first())
                .and_then(|r| r.count)
                .unwrap_or(0);
            Ok((n >= 2).then_some(()))
        }
    })
    .await;
    api.patch(
        "forever",
        &PatchParams::default(),
        &Patch::Merge(&serde_json::json!({"spec": {"terminate": true}})),
    )
    .await
    .unwrap();
    let forever = wait_phase(
        &ns,
        "forever",
        analysis_phase::SUCCESSFUL,
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(
        forever.status.unwrap().message.as_deref(),
        Some("Run Terminated")
    );

    wait_events(&ns, "bad", &["MetricFailed", "AnalysisRunFailed"]).await;
    let text = ctl.metrics.render();
    assert!(
        text.contains(&format!(
            "rollouts_analysis_measurement_value{{namespace=\"{}\",rollout=\"\",template=\"\",metric=\"error-ratio\"}}",
            ns.name
        )),
        "{text}"
    );
    drop(prom);
}

/// Prometheus goes away mid-run: measurements turn to Error, counted against
/// `consecutiveErrorLimit`, then the run is Error with the cause in its message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_stopped_mid_run_errors_after_the_consecutive_error_limit() {
    let (ns, _ctl) = setup_analysis("analysis-prom-down").await;
    let state: Shared = Arc::default();
    state.lock().unwrap().metrics = request_metrics(&[("good", 990, 10)]);
    let port = serve(state.clone()).await;
    let mut prom = Prometheus::start(&[format!("127.0.0.1:{port}")])
        .await
        .expect("a real Prometheus must start for the analysis tests");
    prom.wait_for(&error_ratio("good"), "0.01", Duration::from_secs(30))
        .await
        .expect("Prometheus scrapes the test endpoint");
    ns.apply(&run_yaml(
        "down",
        &format!(
            r#"  metrics:
  - name: error-ratio
    interval: 1s
    consecutiveErrorLimit: 1
    successCondition: result[0] < 0.05
    provider:
      prometheus:
        address: {}
        timeout: 2
        query: '{}'
"#,
            prom.url(),
            error_ratio("good")
        ),
    ))
    .await;
    let api = ns.api::<AnalysisRun>();
    ns.wait_for(
        "two successful measurements",
        Duration::from_secs(30),
        || {
            let api = api.clone();
            async move {
                let ar = api.get("down").await?;
                let ok = ar
                    .status
                    .as_ref()
                    .and_then(|s| s.metric_results.as_ref())
                    .and_then(|r| r.first())
                    .and_then(|r| r.successful)
                    .unwrap_or(0);
                Ok((ok >= 2).then_some(()))
            }
        },
    )
    .await;
    prom.stop();
    // The first error, then one retry 10 s later (upstream's error retry interval).
    let ar = wait_phase(&ns, "down", analysis_phase::ERROR, Duration::from_secs(40)).await;
    let r = result(&ar, "error-ratio");
    assert_eq!(r.consecutive_error, Some(2));
    let msg = ar.status.as_ref().unwrap().message.clone().unwrap();
    assert!(
        msg.starts_with(
            "Metric \"error-ratio\" assessed Error due to consecutiveErrors (2) > consecutiveErrorLimit (1)"
        ),
        "{msg}"
    );
    assert!(
        msg.contains("querying prometheus"),
        "the cause is in the message: {msg}"
    );
    let errs: Vec<_> = r
        .measurements
        .iter()
        .flatten()
        .filter(|m| m.phase.as_deref() == Some(analysis_phase::ERROR))
        .collect();
    assert_eq!(errs.len(), 2);
    let gap = errs[1].started_at.as_ref().unwrap().0.as_second()
        - errs[0].finished_at.as_ref().unwrap().0.as_second();
    assert!(
        (9..=12).contains(&gap),
        "errors retry after 10s, got {gap}s"
    );
}

// ------------------------------------------------------------------------------------------
// Web
// ------------------------------------------------------------------------------------------

/// The web provider against a local server: jsonPath, headers with a secret argument (never
/// written anywhere), POST with a JSON body, a non-2xx answer → Error; a `ttlStrategy` deletes
/// the finished run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_provider_json_path_args_secrets_and_errors() {
    let (ns, _ctl) = setup_analysis("analysis-web").await;
    let state: Shared = Arc::default();
    {
        let mut st = state.lock().unwrap();
        st.routes.insert(
            "/status".into(),
            (
                200,
                r#"{"data":{"ok":true,"ratio":0.01},"version":"1.2.3"}"#.into(),
            ),
        );
        st.routes
            .insert("/check".into(), (200, r#"{"verdict":"pass"}"#.into()));
        st.routes
            .insert("/broken".into(), (500, r#"{"error":"boom"}"#.into()));
    }
    let port = serve(state.clone()).await;
    let base = format!("http://127.0.0.1:{port}");
    ns.apply(
        r#"
apiVersion: v1
kind: Secret
metadata:
  name: web-token
stringData:
  token: s3cr3t-token-value
"#,
    )
    .await;
    ns.apply(&run_yaml(
        "web",
        &format!(
            r#"  args:
  - name: base
    value: {base}
  - name: token
    valueFrom:
      secretKeyRef:
        name: web-token
        key: token
  ttlStrategy:
    secondsAfterSuccess: 3
  metrics:
  - name: status
    interval: 1s
    count: 2
    successCondition: result.ok == true && result.ratio < 0.05
    provider:
      web:
        url: "{{{{args.base}}}}/status"
        jsonPath: "{{$.data}}"
        headers:
        - key: Authorization
          value: "Bearer {{{{args.token}}}}"
  - name: post
    successCondition: result == "pass"
    provider:
      web:
        method: POST
        url: "{{{{args.base}}}}/check"
        jsonPath: "{{$.verdict}}"
        jsonBody:
          canary: true
          weight: 20
"#
        ),
    ))
    .await;
    ns.apply(&run_yaml(
        "web-broken",
        &format!(
            r#"  metrics:
  - name: broken
    consecutiveErrorLimit: 0
    successCondition: result.ok
    provider:
      web:
        url: {base}/broken
        timeoutSeconds: 2
"#
        ),
    ))
    .await;

    let ar = wait_phase(
        &ns,
        "web",
        analysis_phase::SUCCESSFUL,
        Duration::from_secs(60),
    )
    .await;
    let r = result(&ar, "status");
    assert_eq!(r.count, Some(2));
    assert_eq!(
        r.measurements.as_ref().unwrap()[0].value.as_deref(),
        Some(r#"{"ok":true,"ratio":0.01}"#)
    );
    assert_eq!(
        result(&ar, "post").measurements.as_ref().unwrap()[0]
            .value
            .as_deref(),
        Some("\"pass\"")
    );
    let whole = serde_json::to_string(&ar).unwrap();
    assert!(
        !whole.contains("s3cr3t"),
        "the secret value is never written: {whole}"
    );
    {
        let st = state.lock().unwrap();
        let status_reqs: Vec<_> = st.requests.iter().filter(|r| r.path == "/status").collect();
        assert_eq!(status_reqs.len(), 2);
        assert_eq!(
            status_reqs[0]
                .headers
                .get("authorization")
                .map(String::as_str),
            Some("Bearer s3cr3t-token-value"),
            "the secret is read at measurement time"
        );
        let post = st.requests.iter().find(|r| r.path == "/check").unwrap();
        assert_eq!(post.method, "POST");
        assert_eq!(
            post.headers.get("content-type").map(String::as_str),
            Some("application/json")
        );
        let body: serde_json::Value = serde_json::from_str(&post.body).unwrap();
        assert_eq!(body, serde_json::json!({"canary": true, "weight": 20}));
    }

    let broken = wait_phase(
        &ns,
        "web-broken",
        analysis_phase::ERROR,
        Duration::from_secs(30),
    )
    .await;
    let msg = broken.status.unwrap().message.unwrap();
    assert!(msg.contains("received non 2xx response code: 500"), "{msg}");

    // ttlStrategy: the successful run is deleted 3 s after it completed.
    let api = ns.api::<AnalysisRun>();
    ns.wait_for(
        "the run deleted by its ttlStrategy",
        Duration::from_secs(30),
        || {
            let api = api.clone();
            async move { Ok(api.get_opt("web").await?.is_none().then_some(())) }
        },
    )
    .await;
}

/// A server that accepts connections and never answers.
async fn hanging_server() -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = l.accept().await {
            held.push(s);
        }
    });
    port
}

/// Specs that cannot run end in Error with a message naming the cause: an unsupported
/// provider (a plugin), provider credentials that cannot be found, an unresolved argument, an
/// invalid expression, a missing secret. A provider that
/// never answers times out without holding up the other runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_runs_end_in_error_with_the_cause() {
    let (ns, _ctl) = setup_analysis("analysis-invalid").await;
    let port = hanging_server().await;
    ns.apply(&run_yaml(
        "hang",
        &format!(
            r#"  metrics:
  - name: m
    consecutiveErrorLimit: 0
    provider:
      web:
        url: http://127.0.0.1:{port}/
        timeoutSeconds: 8
"#
        ),
    ))
    .await;
    ns.apply(&run_yaml(
        "plugin",
        r#"  metrics:
  - name: p
    consecutiveErrorLimit: 0
    provider:
      plugin:
        argoproj-labs/sample-prometheus:
          query: up
"#,
    ))
    .await;
    ns.apply(&run_yaml(
        "datadog",
        r#"  metrics:
  - name: dd
    consecutiveErrorLimit: 0
    provider:
      datadog:
        query: avg:kubernetes.cpu.user.total{*}
"#,
    ))
    .await;
    ns.apply(&run_yaml(
        "unresolved",
        r#"  metrics:
  - name: m
    successCondition: result < {{args.threshold}}
    provider:
      web:
        url: http://127.0.0.1:1/
"#,
    ))
    .await;
    ns.apply(&run_yaml(
        "bad-expr",
        r#"  metrics:
  - name: m
    successCondition: result[0] >=
    provider:
      web:
        url: http://127.0.0.1:1/
"#,
    ))
    .await;
    ns.apply(&run_yaml(
        "no-secret",
        r#"  args:
  - name: token
    valueFrom:
      secretKeyRef:
        name: missing
        key: token
  metrics:
  - name: m
    provider:
      web:
        url: http://127.0.0.1:1/{{args.token}}
"#,
    ))
    .await;
    let cases = [
        (
            "plugin",
            "provider plugin argoproj-labs/sample-prometheus is not supported by this controller",
        ),
        (
            "datadog",
            "failed to find the credentials for datadog metrics provider",
        ),
        (
            "unresolved",
            "Unable to resolve metric arguments: failed to resolve {{args.threshold}}",
        ),
        (
            "bad-expr",
            "successCondition: invalid expression \"result[0] >=\"",
        ),
        (
            "no-secret",
            "Unable to resolve metric arguments: secrets \"missing\" not found",
        ),
    ];
    for (name, want) in cases {
        let ar = wait_phase(&ns, name, analysis_phase::ERROR, Duration::from_secs(30)).await;
        let msg = ar.status.unwrap().message.unwrap_or_default();
        assert!(msg.contains(want), "{name}: {msg}");
    }
    // The others ended while the hanging measurement was still waiting.
    let hang = ns.api::<AnalysisRun>().get("hang").await.unwrap();
    assert_ne!(
        phase_of(&hang),
        analysis_phase::ERROR,
        "the hanging run is still measuring"
    );
    let hang = wait_phase(&ns, "hang", analysis_phase::ERROR, Duration::from_secs(30)).await;
    let msg = hang.status.unwrap().message.unwrap_or_default();
    assert!(msg.to_lowercase().contains("timed out"), "{msg}");
}

// ------------------------------------------------------------------------------------------
// Job
// ------------------------------------------------------------------------------------------

fn job_run(name: &str, image: &str) -> String {
    run_yaml(
        name,
        &format!(
            r#"  metrics:
  - name: smoke
    provider:
      job:
        metadata:
          labels:
            purpose: smoke
        spec:
          backoffLimit: 0
          template:
            spec:
              restartPolicy: Never
              containers:
              - name: test
                image: {image}
                command: [sh, -c, "exit 0"]
"#
        ),
    )
}

/// A Job that completes → Successful; one that fails → Failed. Jobs are owned by their run
/// and deleted once it ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_provider_succeeds_or_fails_with_the_job() {
    let (ns, _ctl) = setup_analysis("analysis-job").await;
    ns.apply(&job_run("job-ok", "busybox:1.36")).await;
    ns.apply(&job_run("job-fail", "busybox:fail")).await;

    let ok = wait_phase(
        &ns,
        "job-ok",
        analysis_phase::SUCCESSFUL,
        Duration::from_secs(90),
    )
    .await;
    let m = &result(&ok, "smoke").measurements.as_ref().unwrap()[0];
    let job_name = m
        .metadata
        .as_ref()
        .unwrap()
        .get("job-name")
        .unwrap()
        .clone();
    assert!(
        job_name.starts_with(ok.metadata.uid.as_deref().unwrap()),
        "{job_name}"
    );
    assert!(m.finished_at.is_some());

    let failed = wait_phase(
        &ns,
        "job-fail",
        analysis_phase::FAILED,
        Duration::from_secs(90),
    )
    .await;
    assert_eq!(result(&failed, "smoke").failed, Some(1));

    let jobs = ns.api::<Job>();
    ns.wait_for("the runs' Jobs deleted", Duration::from_secs(30), || {
        let jobs = jobs.clone();
        async move {
            let left: Vec<String> = jobs
                .list(&ListParams::default().labels("analysisrun.argoproj.io/uid"))
                .await?
                .items
                .into_iter()
                .filter(|j| j.metadata.deletion_timestamp.is_none())
                .filter_map(|j| j.metadata.name)
                .collect();
            Ok(left.is_empty().then_some(()))
        }
    })
    .await;
}
