//! `kubectl-rollouts dashboard` against the real API server: the HTTP API and its safety
//! checks (token, read-only, Origin, Host, headers, RBAC refusals in words, no Secret value
//! sent), a real headless Chromium driving the pages (the seeds' canary paused at step 2/8,
//! Promote and Abort after confirmation, live without reload, the analysis chart, read-only),
//! 500 Rollouts (the first render measured; updates as deltas), and the command itself.
//!
//! Screenshots of each view are saved under `target/dashboard-screenshots/`.

use crate::analysis::{Shared, serve, start_analysis_controller};
use crate::browser::{Chromium, click, eval, screenshot, screenshot_window, wait_js};
use crate::common::*;
use futures::StreamExt;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Patch, PatchParams, PostParams};
use rollouts::api::{AnalysisRun, Rollout};
use rollouts::cli::dashboard::{self, Config, Running};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A dashboard on a free loopback port, reading and acting with `client`.
async fn start_dashboard(ns: &TestNs, client: kube::Client, read_only: bool) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    dashboard::start(
        client,
        Config {
            namespace: ns.name.clone(),
            all_namespaces: false,
            read_only,
            root_path: "rollouts".into(),
            server: testkit::cluster().kubeconfig.display().to_string(),
        },
        listener,
    )
    .expect("starting the dashboard")
}

/// A response read off the wire.
#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.body))
    }
}

/// One HTTP/1.1 request with exactly these headers (a `Host` is added unless given).
async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Resp {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut req = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req.push_str(&format!("Host: {addr}\r\n"));
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    s.write_all(req.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut raw))
        .await
        .expect("the dashboard answers within 30 s")
        .expect("read");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    let body = if chunked {
        let mut out = String::new();
        let mut rest = rest;
        while let Some((size, tail)) = rest.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if n == 0 || tail.len() < n {
                break;
            }
            out.push_str(&tail[..n]);
            rest = tail[n..].trim_start_matches("\r\n");
        }
        out
    } else {
        rest.to_string()
    };
    Resp {
        status,
        headers,
        body,
    }
}

/// A POST of an action as the page sends it: JSON, same origin, with `token`.
async fn post_action(d: &Running, path: &str, token: Option<&str>, body: &str) -> Resp {
    let origin = format!("http://{}", d.addr);
    let mut headers = vec![
        ("Origin", origin.as_str()),
        ("Content-Type", "application/json"),
        ("Sec-Fetch-Site", "same-origin"),
    ];
    if let Some(t) = token {
        headers.push(("X-Rollouts-Token", t));
    }
    request(d.addr, "POST", path, &headers, body).await
}

/// A server-sent event stream, read as a browser's EventSource would.
struct Events {
    resp: reqwest::Response,
    buf: String,
    bytes: usize,
}

impl Events {
    async fn open(url: &str) -> Events {
        let resp = reqwest::Client::new()
            .get(url)
            .header("accept", "text/event-stream")
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        assert_eq!(resp.status(), 200, "GET {url}");
        Events {
            resp,
            buf: String::new(),
            bytes: 0,
        }
    }

    /// The next event (name, data), skipping comments and keep-alives.
    async fn next(&mut self, timeout: Duration) -> (String, Value) {
        let deadline = Instant::now() + timeout;
        loop {
            while let Some(i) = self.buf.find("\n\n") {
                let block: String = self.buf[..i].to_string();
                self.buf.drain(..i + 2);
                let mut event = String::from("message");
                let mut data = Vec::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push(v.strip_prefix(' ').unwrap_or(v).to_string());
                    }
                }
                if data.is_empty() {
                    continue;
                }
                self.bytes = data.iter().map(String::len).sum();
                let value = serde_json::from_str(&data.join("\n"))
                    .unwrap_or_else(|e| panic!("event {event} is not JSON: {e}"));
                return (event, value);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let chunk = tokio::time::timeout(left, self.resp.chunk())
                .await
                .expect("an event within the timeout")
                .expect("reading the event stream")
                .expect("the event stream stays open");
            self.buf.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}

/// A small canary paused at its indefinite pause (step 2 of 2) after an update.
const SMALL: &str = r#"
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: "web:v1"
        env: [{name: DB_PASSWORD, value: "SENTINEL-do-not-send-1"}]
  strategy:
    canary:
      steps:
      - setWeight: 50
      - pause: {}
"#;

async fn paused_small(ns: &TestNs) {
    ns.apply(SMALL).await;
    wait_rollout(ns, "web", "Healthy", Duration::from_secs(60), is_healthy).await;
    set_image(ns, "web", "web:v2").await;
    wait_rollout(
        ns,
        "web",
        "paused at its pause",
        Duration::from_secs(60),
        |ro, _| {
            let (phase, _, step) = phase(ro);
            phase == "Paused" && step == Some(1)
        },
    )
    .await;
}

/// The page, the API and every safety check, over HTTP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_http_api_and_its_safety_checks() {
    let (ns, _ctl) = setup("dash-http").await;
    // A Secret and an analysis argument the dashboard must never pass on.
    ns.apply(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: creds}\nstringData: {token: SENTINEL-do-not-send-2}\n",
    )
    .await;
    paused_small(&ns).await;
    let d = start_dashboard(&ns, ns.client.clone(), false).await;
    let base = "/rollouts";

    // The page and its assets, with the security headers.
    let page = request(d.addr, "GET", &format!("{base}/"), &[], "").await;
    assert_eq!(page.status, 200, "{page:?}");
    assert!(
        page.body.contains("<script src=\"app.js\""),
        "{}",
        page.body
    );
    let csp = page.header("content-security-policy").unwrap_or_default();
    for want in [
        "default-src 'none'",
        "script-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(want), "CSP {csp:?} lacks {want}");
    }
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    assert_eq!(page.header("referrer-policy"), Some("no-referrer"));
    let js = request(d.addr, "GET", &format!("{base}/app.js"), &[], "").await;
    assert_eq!(js.status, 200);
    assert!(
        js.header("content-type")
            .unwrap_or_default()
            .starts_with("text/javascript")
    );
    let redirect = request(d.addr, "GET", base, &[], "").await;
    assert_eq!(redirect.status, 308, "{redirect:?}");
    assert_eq!(redirect.header("location"), Some("/rollouts/"));

    // DNS rebinding: another Host is refused, whatever the path.
    let rebound = request(
        d.addr,
        "GET",
        &format!("{base}/api/v1/info"),
        &[("Host", "attacker.example:3100")],
        "",
    )
    .await;
    assert_eq!(rebound.status, 403, "{rebound:?}");
    assert!(rebound.body.contains("DNS-rebinding"), "{}", rebound.body);
    let localhost = format!("localhost:{}", d.addr.port());
    let ok = request(
        d.addr,
        "GET",
        &format!("{base}/api/v1/info"),
        &[("Host", &localhost)],
        "",
    )
    .await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.json()["readOnly"], false);
    assert_eq!(ok.header("cache-control"), Some("no-store"));

    // The list and the view.
    let list = request(
        d.addr,
        "GET",
        &format!("{base}/api/v1/rollouts?namespace={}", ns.name),
        &[],
        "",
    )
    .await;
    assert_eq!(list.status, 200, "{list:?}");
    let rows = list.json()["rows"].as_array().cloned().unwrap_or_default();
    assert_eq!(rows.len(), 1, "{}", list.body);
    assert_eq!(rows[0]["status"], "Paused");
    assert_eq!(
        rows[0]["step"],
        json!({"current": 2, "count": 2, "done": false})
    );
    let view_path = format!("{base}/api/v1/rollouts/{}/web", ns.name);
    let view = request(d.addr, "GET", &view_path, &[], "").await;
    assert_eq!(view.status, 200, "{view:?}");
    let v = view.json();
    assert_eq!(v["steps"][1]["state"], "current");
    assert_eq!(v["revisions"][0]["revision"], 2);
    assert!(
        v["waiting"]["text"]
            .as_str()
            .unwrap_or_default()
            .contains("Waits for promote"),
        "{v}"
    );
    let missing = request(
        d.addr,
        "GET",
        &format!("{base}/api/v1/rollouts/{}/nope", ns.name),
        &[],
        "",
    )
    .await;
    assert_eq!(missing.status, 404);
    let bad = request(
        d.addr,
        "GET",
        &format!("{base}/api/v1/rollouts/{}/a..%2F..", ns.name),
        &[],
        "",
    )
    .await;
    assert_eq!(bad.status, 400, "{bad:?}");

    // No Secret value, environment value or analysis argument reaches the page.
    for body in [&list.body, &view.body] {
        assert!(
            !body.contains("SENTINEL"),
            "a secret value was sent: {body}"
        );
        assert!(!body.contains("DB_PASSWORD"), "{body}");
    }

    // Actions: POST only, JSON only, same origin only, with the token only.
    let promote = format!("{base}/api/v1/rollouts/{}/web/promote", ns.name);
    let get = request(d.addr, "GET", &promote, &[], "").await;
    assert_eq!(get.status, 405, "{get:?}");
    let r = post_action(&d, &promote, None, "{}").await;
    assert_eq!(r.status, 403, "{r:?}");
    assert!(
        r.json()["error"].as_str().unwrap().contains("token"),
        "{r:?}"
    );
    let r = post_action(&d, &promote, Some("not-the-token"), "{}").await;
    assert_eq!(r.status, 403, "{r:?}");
    assert!(r.json()["error"].as_str().unwrap().contains("Wrong token"));
    let json_ct = ("Content-Type", "application/json");
    let token = ("X-Rollouts-Token", d.token.as_str());
    let r = request(d.addr, "POST", &promote, &[json_ct, token], "{}").await;
    assert_eq!(r.status, 403, "no Origin: {r:?}");
    assert!(r.json()["error"].as_str().unwrap().contains("Origin"));
    let r = request(
        d.addr,
        "POST",
        &promote,
        &[json_ct, token, ("Origin", "http://attacker.example")],
        "{}",
    )
    .await;
    assert_eq!(r.status, 403, "another origin: {r:?}");
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .contains("another origin")
    );
    let origin = format!("http://{}", d.addr);
    let r = request(
        d.addr,
        "POST",
        &promote,
        &[
            json_ct,
            token,
            ("Origin", &origin),
            ("Sec-Fetch-Site", "cross-site"),
        ],
        "{}",
    )
    .await;
    assert_eq!(r.status, 403, "cross-site: {r:?}");
    let r = request(
        d.addr,
        "POST",
        &promote,
        &[("Content-Type", "text/plain"), token, ("Origin", &origin)],
        "{}",
    )
    .await;
    assert_eq!(r.status, 415, "a form-like body: {r:?}");
    let r = post_action(
        &d,
        &format!("{base}/api/v1/rollouts/{}/web/delete", ns.name),
        Some(&d.token),
        "{}",
    )
    .await;
    assert_eq!(r.status, 404, "{r:?}");
    let r = post_action(
        &d,
        &format!("{base}/api/v1/rollouts/{}/web/rollback", ns.name),
        Some(&d.token),
        "{\"revision\": 9}",
    )
    .await;
    assert_eq!(r.status, 404, "{r:?}");
    assert!(
        r.json()["error"].as_str().unwrap().contains("revision 9"),
        "{r:?}"
    );
    // Nothing refused above changed the rollout.
    assert_eq!(phase(&get_rollout(&ns, "web").await).2, Some(1));

    // The real thing: the CLI's promote, through the dashboard.
    let r = post_action(&d, &promote, Some(&d.token), "{}").await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["message"], "rollout 'web' promoted");
    wait_rollout(
        &ns,
        "web",
        "Healthy on v2 after the promotion",
        Duration::from_secs(60),
        is_healthy,
    )
    .await;

    // Read-only: the same request is refused.
    let ro = start_dashboard(&ns, ns.client.clone(), true).await;
    let info = request(ro.addr, "GET", &format!("{base}/api/v1/info"), &[], "").await;
    assert_eq!(info.json()["readOnly"], true);
    let r = post_action(
        &ro,
        &format!("{base}/api/v1/rollouts/{}/web/abort", ns.name),
        Some(&ro.token),
        "{}",
    )
    .await;
    assert_eq!(r.status, 403, "{r:?}");
    assert!(r.json()["error"].as_str().unwrap().contains("read-only"));
    assert_ne!(
        get_rollout(&ns, "web").await.status.and_then(|s| s.abort),
        Some(true)
    );
    ro.stop().await;
    d.stop().await;
}

/// A kube client for the test cluster that impersonates `user`.
async fn impersonating(user: &str) -> kube::Client {
    let kc = kube::config::Kubeconfig::read_from(&testkit::cluster().kubeconfig)
        .expect("reading the test kubeconfig");
    let mut c =
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await
            .expect("a config for the test cluster");
    c.auth_info.impersonate = Some(user.to_string());
    kube::Client::try_from(c).expect("an impersonating client")
}

/// The dashboard acts with the user's identity: what RBAC refuses is refused, in words.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_shows_rbac_refusals_in_words() {
    let (ns, _ctl) = setup("dash-rbac").await;
    paused_small(&ns).await;
    // A user who may look at rollouts and their ReplicaSets and AnalysisRuns, but not at
    // pods, and may change nothing.
    let user = format!("dash-viewer-{}", ns.name);
    let role: Role = serde_json::from_value(json!({
        "metadata": {"name": "rollouts-viewer"},
        "rules": [
            {"apiGroups": ["argoproj.io"], "resources": ["rollouts", "analysisruns"],
             "verbs": ["get", "list", "watch"]},
            {"apiGroups": ["apps"], "resources": ["replicasets"], "verbs": ["get", "list", "watch"]}
        ]
    }))
    .unwrap();
    ns.api::<Role>()
        .create(&PostParams::default(), &role)
        .await
        .expect("the viewer Role");
    let binding: RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "rollouts-viewer"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "rollouts-viewer"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}]
    }))
    .unwrap();
    ns.api::<RoleBinding>()
        .create(&PostParams::default(), &binding)
        .await
        .expect("the viewer RoleBinding");
    let d = start_dashboard(&ns, impersonating(&user).await, false).await;
    let base = "/rollouts";

    // It shows what the user may see, and says what it may not.
    let view = request(
        d.addr,
        "GET",
        &format!("{base}/api/v1/rollouts/{}/web", ns.name),
        &[],
        "",
    )
    .await;
    assert_eq!(view.status, 200, "{view:?}");
    assert_eq!(view.json()["status"], "Paused");
    let mut events = Events::open(&format!(
        "http://{}{base}/api/v1/stream/rollouts/{}/web",
        d.addr, ns.name
    ))
    .await;
    let mut problems = Vec::new();
    for _ in 0..4 {
        let (event, data) = events.next(Duration::from_secs(30)).await;
        if event == "problems" {
            problems = data["problems"].as_array().cloned().unwrap_or_default();
            break;
        }
    }
    let text = format!("{problems:?}");
    assert!(
        text.contains("The API server refuses to show pods") && text.contains("403 Forbidden"),
        "{text}"
    );
    assert!(text.contains(&user), "the refusal names the user: {text}");

    // Actions the user may not take: 403, in words, and nothing changes.
    let promote = format!("{base}/api/v1/rollouts/{}/web/promote", ns.name);
    let r = post_action(&d, &promote, Some(&d.token), "{}").await;
    assert_eq!(r.status, 403, "{r:?}");
    let words = r.json()["error"].as_str().unwrap_or_default().to_string();
    assert!(
        words.starts_with("Forbidden (403): your Kubernetes user may not do this."),
        "{words}"
    );
    assert!(words.contains("cannot patch"), "{words}");
    let r = post_action(
        &d,
        &format!("{base}/api/v1/rollouts/{}/web/set-image", ns.name),
        Some(&d.token),
        "{\"container\": \"web\", \"image\": \"web:v3\"}",
    )
    .await;
    assert_eq!(r.status, 403, "{r:?}");
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap_or_default()
            .contains("cannot update"),
        "{r:?}"
    );
    let (ph, _, step) = phase(&get_rollout(&ns, "web").await);
    assert_eq!((ph.as_str(), step), ("Paused", Some(1)));
    d.stop().await;
}

fn step_now(page: &str) -> String {
    format!(
        "(() => {{ const s = document.querySelector('#steps li[aria-current=step]'); return s && Number(s.dataset.number) {page}; }})()"
    )
}

/// The seeds' canary in a real browser: the list shows it paused at step 2/8; Promote (after
/// confirming) moves the page to the next step without a reload; Abort shows Degraded and the
/// stable revision.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_in_a_browser_promote_and_abort_the_seed_canary() {
    let (ns, _ctl) = setup("dash-seed").await;
    ns.apply(&example("examples/canary-demo.yaml")).await;
    wait_rollout(
        &ns,
        "canary-demo",
        "Healthy",
        Duration::from_secs(60),
        is_healthy,
    )
    .await;
    set_image(&ns, "canary-demo", "argoproj/rollouts-demo:yellow").await;
    wait_rollout(
        &ns,
        "canary-demo",
        "paused at the pause of step 2",
        Duration::from_secs(60),
        |ro, rss| phase(ro).0 == "Paused" && phase(ro).2 == Some(1) && rss.len() == 2,
    )
    .await;
    let d = start_dashboard(&ns, ns.client.clone(), false).await;
    let chrome = Chromium::launch("seed").await;
    let page = chrome.open(&d.url_with_token()).await;
    let row = format!("#rollouts-body tr[data-key='{}/canary-demo']", ns.name);

    // The list: paused at step 2 of 8.
    wait_js(
        &page,
        "the seed canary paused at 2/8",
        &format!(
            "document.querySelector(\"{row} td.step\")?.textContent === '2/8' && document.querySelector(\"{row}\").dataset.status === 'Paused'"
        ),
        Duration::from_secs(30),
    )
    .await;
    // The token left the address bar.
    let href: String = eval(&page, "location.href").await;
    assert!(!href.contains("token"), "{href}");
    let weight: String = eval(
        &page,
        &format!("document.querySelector(\"{row} td.weight\").textContent"),
    )
    .await;
    assert_eq!(weight, "20% / 20%");
    screenshot(&page, "list").await;

    // The rollout view.
    click(&page, &format!("{row} td.name a")).await;
    wait_js(
        &page,
        "step 2 highlighted",
        &step_now("=== 2"),
        Duration::from_secs(30),
    )
    .await;
    wait_js(
        &page,
        "the planned timeline with its indefinite pause",
        "document.querySelector('#plan-chart .waits-for-promote') !== null",
        Duration::from_secs(10),
    )
    .await;
    let why: String = eval(&page, "document.querySelector('#why-text').textContent").await;
    assert_eq!(
        why,
        "Waits for promote: step 2 is a pause without a duration."
    );
    wait_js(
        &page,
        "one square per pod",
        "document.querySelectorAll('.revision .pod').length === 5",
        Duration::from_secs(30),
    )
    .await;
    screenshot(&page, "rollout-paused").await;

    // Promote, after confirming: the page follows without a reload.
    let _: bool = eval(&page, "(window.__sameDocument = true)").await;
    let promote_button: bool = eval(
        &page,
        "(window.__promote = document.querySelector('#act-promote'), !window.__promote.disabled)",
    )
    .await;
    assert!(promote_button, "Promote is enabled at an indefinite pause");
    click(&page, "#act-promote").await;
    wait_js(
        &page,
        "the confirmation",
        "document.querySelector('#confirm').open",
        Duration::from_secs(5),
    )
    .await;
    let asked: String = eval(&page, "document.querySelector('#confirm-text').textContent").await;
    assert!(asked.contains("canary-demo"), "{asked}");
    let clicked = Instant::now();
    click(&page, "#confirm-ok").await;
    wait_js(
        &page,
        "the next step",
        &step_now("> 2"),
        Duration::from_secs(60),
    )
    .await;
    eprintln!(
        "promote clicked -> next step shown: {} ms (a figure, not an assertion)",
        clicked.elapsed().as_millis()
    );
    let same: bool = eval(
        &page,
        "window.__sameDocument === true && window.__promote === document.querySelector('#act-promote')",
    )
    .await;
    assert!(same, "the page was reloaded, or its buttons redrawn");
    let ro = get_rollout(&ns, "canary-demo").await;
    assert!(phase(&ro).2 >= Some(2), "{:?}", phase(&ro));

    // Abort: Degraded, and the stable revision serves.
    wait_js(
        &page,
        "Abort enabled",
        "document.querySelector('#act-abort').disabled === false",
        Duration::from_secs(10),
    )
    .await;
    click(&page, "#act-abort").await;
    wait_js(
        &page,
        "the confirmation",
        "document.querySelector('#confirm').open",
        Duration::from_secs(5),
    )
    .await;
    click(&page, "#confirm-ok").await;
    wait_js(
        &page,
        "Degraded with the stable revision",
        "document.querySelector('#status')?.textContent.includes('Degraded') && \
         document.querySelector('.revision[data-revision=\"1\"] .role-stable') !== null && \
         document.querySelector('#why-text')?.textContent.includes('stable revision 1')",
        Duration::from_secs(60),
    )
    .await;
    let same: bool = eval(&page, "window.__sameDocument === true").await;
    assert!(same, "the page was reloaded");
    let aborted: bool = eval(
        &page,
        "document.querySelector('#steps li[data-state=aborted]') !== null",
    )
    .await;
    assert!(aborted);
    screenshot(&page, "rollout-aborted").await;
    assert_eq!(
        get_rollout(&ns, "canary-demo")
            .await
            .status
            .and_then(|s| s.abort),
        Some(true)
    );

    // Retry: back to the new version, from the first step (paused at 2/8 again).
    wait_js(
        &page,
        "Retry enabled",
        "document.querySelector('#act-retry').disabled === false",
        Duration::from_secs(10),
    )
    .await;
    click(&page, "#act-retry").await;
    wait_js(
        &page,
        "the confirmation",
        "document.querySelector('#confirm').open",
        Duration::from_secs(5),
    )
    .await;
    click(&page, "#confirm-ok").await;
    wait_js(
        &page,
        "paused at step 2 again",
        &format!(
            "document.querySelector('#status')?.textContent.includes('Paused') && {}",
            step_now("=== 2")
        ),
        Duration::from_secs(60),
    )
    .await;
    assert_ne!(
        get_rollout(&ns, "canary-demo")
            .await
            .status
            .and_then(|s| s.abort),
        Some(true)
    );
    chrome.close().await;
    d.stop().await;
}

/// A web metric the test serves, measured 4 times by the real AnalysisRun controller.
fn analysed(url: &str) -> String {
    format!(
        r#"
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {{name: success-rate}}
spec:
  args: [{{name: threshold, value: "0.9"}}]
  metrics:
  - name: success-rate
    interval: 1s
    count: 4
    successCondition: result >= {{{{args.threshold}}}}
    failureCondition: result < 0.5
    provider:
      web:
        url: {url}
        jsonPath: "{{$.value}}"
---
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {{name: analysed}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: analysed}}}}
  template:
    metadata: {{labels: {{app: analysed}}}}
    spec:
      containers: [{{name: app, image: "app:v1"}}]
  strategy:
    canary:
      steps:
      - setWeight: 50
      - analysis: {{templates: [{{templateName: success-rate}}]}}
"#
    )
}

/// The analysis chart draws one point per measurement, against the success and failure
/// thresholds; a read-only dashboard shows no action and refuses a forged POST.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_analysis_chart_and_read_only_in_a_browser() {
    let (ns, _ctl) = setup("dash-analysis").await;
    let _actl = start_analysis_controller(&ns);
    let state: Shared = Arc::default();
    state
        .lock()
        .unwrap()
        .routes
        .insert("/rate".into(), (200, "{\"value\": 0.97}".into()));
    let port = serve(state).await;
    ns.apply(&analysed(&format!("http://127.0.0.1:{port}/rate")))
        .await;
    wait_rollout(
        &ns,
        "analysed",
        "Healthy",
        Duration::from_secs(60),
        is_healthy,
    )
    .await;
    set_image(&ns, "analysed", "app:v2").await;
    let run = ns
        .wait_for(
            "a Successful AnalysisRun",
            Duration::from_secs(90),
            || async {
                let runs = ns.api::<AnalysisRun>().list(&Default::default()).await?;
                Ok(runs.items.into_iter().find(|r| {
                    r.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Successful")
                }))
            },
        )
        .await;
    let measurements = run
        .status
        .as_ref()
        .and_then(|s| s.metric_results.as_ref())
        .map(|m| {
            m.iter()
                .map(|r| r.measurements.as_ref().map_or(0, Vec::len))
                .sum::<usize>()
        })
        .unwrap_or(0);
    assert!(measurements >= 4, "{measurements} measurements");

    let d = start_dashboard(&ns, ns.client.clone(), false).await;
    let chrome = Chromium::launch("analysis").await;
    let page = chrome
        .open(&format!(
            "{}#/rollout/{}/analysed",
            d.url_with_token(),
            ns.name
        ))
        .await;
    wait_js(
        &page,
        "the analysis chart",
        "document.querySelectorAll('svg.chart circle.measurement').length > 0",
        Duration::from_secs(30),
    )
    .await;
    let points: usize = eval(
        &page,
        "document.querySelectorAll('svg.chart circle.measurement').length",
    )
    .await;
    assert_eq!(points, measurements, "one point per measurement");
    let ok: usize = eval(
        &page,
        "document.querySelectorAll('svg.chart circle.measurement.phase-Successful').length",
    )
    .await;
    assert_eq!(ok, measurements);
    // The success threshold comes from the argument (0.9), the failure one is literal.
    let thresholds: Vec<String> = eval(
        &page,
        "[...document.querySelectorAll('svg.chart text.lbl-success, svg.chart text.lbl-failure')].map(t => t.textContent)",
    )
    .await;
    assert_eq!(thresholds, ["success: >= 0.9", "failure: < 0.5"]);
    let label: String = eval(
        &page,
        "document.querySelector('svg.chart').getAttribute('aria-label')",
    )
    .await;
    assert!(
        label.starts_with(&format!("{measurements} measurements of success-rate")),
        "{label}"
    );
    screenshot(&page, "rollout-analysis").await;

    // Read-only: no action buttons, and a forged POST (with the real token) gets 403.
    let ro = start_dashboard(&ns, ns.client.clone(), true).await;
    let page = chrome
        .open(&format!("{}#/rollout/{}/analysed", ro.url, ns.name))
        .await;
    wait_js(
        &page,
        "the rollout view",
        "document.querySelector('#steps') !== null",
        Duration::from_secs(30),
    )
    .await;
    let buttons: usize = eval(
        &page,
        "document.querySelectorAll('[data-action], .actions button').length",
    )
    .await;
    assert_eq!(buttons, 0, "read-only shows no action");
    let mode: String = eval(&page, "document.querySelector('#mode').textContent").await;
    assert_eq!(mode, "read-only");
    let status: u16 = eval(
        &page,
        &format!(
            "fetch('api/v1/rollouts/{}/analysed/restart', {{method: 'POST', headers: {{'content-type': 'application/json', 'x-rollouts-token': '{}'}}, body: '{{}}'}}).then(r => r.status)",
            ns.name, ro.token
        ),
    )
    .await;
    assert_eq!(status, 403);
    screenshot(&page, "rollout-read-only").await;
    assert!(get_rollout(&ns, "analysed").await.spec.restart_at.is_none());
    chrome.close().await;
    ro.stop().await;
    d.stop().await;
}

fn many(i: usize) -> Rollout {
    serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": format!("app-{i:03}")},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": format!("app-{i:03}")}},
            "template": {"metadata": {"labels": {"app": format!("app-{i:03}")}},
                         "spec": {"containers": [{"name": "app", "image": "app:v1"}]}},
            "strategy": {"canary": {"steps": [{"setWeight": 50}, {"pause": {}}]}}
        }
    }))
    .unwrap()
}

async fn set_phase(ns: &TestNs, name: &str, phase: &str) {
    ns.api::<Rollout>()
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(&json!({"status": {"phase": phase, "message": "set by the test"}})),
        )
        .await
        .expect("patching the status");
}

/// 500 Rollouts in one namespace: the list's first render is measured (printed, not
/// asserted), and a change reaches the page as a delta of one row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_500_rollouts_first_render_and_deltas() {
    init_logging();
    crds_installed().await;
    let ns = TestNs::new("dash-500").await;
    let api = ns.api::<Rollout>();
    let started = Instant::now();
    let created: Vec<()> = futures::stream::iter(0..500)
        .map(|i| {
            let api = api.clone();
            async move {
                api.create(&PostParams::default(), &many(i))
                    .await
                    .unwrap_or_else(|e| panic!("creating rollout {i}: {e}"));
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    assert_eq!(created.len(), 500);
    eprintln!(
        "created 500 rollouts in {} ms",
        started.elapsed().as_millis()
    );
    let d = start_dashboard(&ns, ns.client.clone(), true).await;

    // The event stream: a snapshot of 500 rows, then one delta per change.
    let started = Instant::now();
    let mut events = Events::open(&format!(
        "http://{}/rollouts/api/v1/stream/rollouts?namespace={}",
        d.addr, ns.name
    ))
    .await;
    let (event, snapshot) = events.next(Duration::from_secs(60)).await;
    assert_eq!(event, "snapshot");
    assert_eq!(snapshot["rows"].as_array().map(Vec::len), Some(500));
    let snapshot_bytes = events.bytes;
    eprintln!(
        "snapshot of 500 rows: {} ms after connecting, {} KiB",
        started.elapsed().as_millis(),
        snapshot_bytes / 1024
    );
    set_phase(&ns, "app-250", "Degraded").await;
    let (event, delta) = events.next(Duration::from_secs(30)).await;
    assert_eq!(event, "delta", "{delta}");
    let upsert = delta["upsert"].as_array().cloned().unwrap_or_default();
    assert_eq!(upsert.len(), 1, "one row changed: {delta}");
    assert_eq!(upsert[0]["name"], "app-250");
    assert_eq!(upsert[0]["status"], "Degraded");
    assert_eq!(delta["remove"], json!([]));
    eprintln!(
        "delta of one change: {} bytes (the snapshot: {snapshot_bytes})",
        events.bytes
    );
    assert!(events.bytes * 50 < snapshot_bytes, "a delta, not a list");
    api.delete("app-499", &Default::default())
        .await
        .expect("deleting a rollout");
    let (event, delta) = events.next(Duration::from_secs(30)).await;
    assert_eq!(event, "delta");
    assert_eq!(delta["upsert"], json!([]));
    assert_eq!(
        delta["remove"],
        json!([{"namespace": ns.name, "name": "app-499"}])
    );

    // The page: first render measured; a change arrives as a row update, without reload.
    let chrome = Chromium::launch("500").await;
    let page = chrome.open(&d.url).await;
    wait_js(
        &page,
        "499 rows",
        "document.querySelectorAll('#rollouts-body tr').length === 499",
        Duration::from_secs(60),
    )
    .await;
    let first: f64 = eval(
        &page,
        "performance.getEntriesByName('rollouts-list-rendered')[0].startTime",
    )
    .await;
    eprintln!(
        "first render of the list of 499 rollouts: {first:.0} ms from navigation (a figure, not an assertion)"
    );
    screenshot_window(&page, "list-500").await;
    let _: bool = eval(&page, "(window.__sameDocument = true)").await;
    let _: bool = eval(
        &page,
        "(window.__rowBefore = document.querySelector(\"tr[data-key$='/app-100']\"), true)",
    )
    .await;
    set_phase(&ns, "app-007", "Paused").await;
    wait_js(
        &page,
        "app-007 Paused",
        "document.querySelector(\"tr[data-key$='/app-007']\").dataset.status === 'Paused'",
        Duration::from_secs(30),
    )
    .await;
    let kept: bool = eval(
        &page,
        "window.__sameDocument === true && window.__rowBefore === document.querySelector(\"tr[data-key$='/app-100']\")",
    )
    .await;
    assert!(kept, "the page reloaded or redrew rows that did not change");

    // Filter by name, then by status.
    let visible =
        "[...document.querySelectorAll('#rollouts-body tr')].filter(tr => !tr.hidden).length";
    page.find_element("#filter")
        .await
        .expect("the filter")
        .click()
        .await
        .expect("focusing the filter")
        .type_str("app-01")
        .await
        .expect("typing");
    wait_js(
        &page,
        "app-010 to app-019",
        &format!("{visible} === 10"),
        Duration::from_secs(10),
    )
    .await;
    let _: bool = eval(
        &page,
        "(() => { const f = document.querySelector('#filter'); f.value = ''; f.dispatchEvent(new Event('input')); return true; })()",
    )
    .await;
    click(&page, "#chip-Degraded").await;
    wait_js(
        &page,
        "only the Degraded one",
        &format!(
            "{visible} === 1 && document.querySelector(\"tr[data-key$='/app-250']\").hidden === false"
        ),
        Duration::from_secs(10),
    )
    .await;
    click(&page, "#chip-Degraded").await;
    wait_js(
        &page,
        "every row again",
        &format!("{visible} === 499"),
        Duration::from_secs(10),
    )
    .await;

    // The namespace switcher: another namespace (none of its own rollouts), and back.
    let _: bool = eval(
        &page,
        "(() => { const s = document.querySelector('#ns'); s.value = 'default'; s.dispatchEvent(new Event('change')); return true; })()",
    )
    .await;
    wait_js(
        &page,
        "namespace default, without rollouts",
        "!document.querySelector('#empty').hidden && document.querySelector('#empty').textContent.includes('default') && location.hash === '#/ns/default'",
        Duration::from_secs(30),
    )
    .await;
    let back: bool = eval(
        &page,
        &format!("(location.hash = '#/ns/{}', true)", ns.name),
    )
    .await;
    assert!(back);
    wait_js(
        &page,
        "the 499 rows again",
        "document.querySelectorAll('#rollouts-body tr').length === 499",
        Duration::from_secs(30),
    )
    .await;

    // A dropped connection: the page says so, reconnects to the dashboard started again on
    // the same address, and goes on with the live list.
    let addr = d.addr;
    d.stop().await;
    wait_js(
        &page,
        "the connection lost",
        "document.querySelector('#live').classList.contains('off')",
        Duration::from_secs(30),
    )
    .await;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .expect("the same address again");
    let d = dashboard::start(
        ns.client.clone(),
        Config {
            namespace: ns.name.clone(),
            all_namespaces: false,
            read_only: true,
            root_path: "rollouts".into(),
            server: String::new(),
        },
        listener,
    )
    .expect("starting the dashboard again");
    set_phase(&ns, "app-300", "Degraded").await;
    wait_js(
        &page,
        "reconnected, with app-300 Degraded",
        "document.querySelector('#live').classList.contains('on') && document.querySelector(\"tr[data-key$='/app-300']\").dataset.status === 'Degraded'",
        Duration::from_secs(60),
    )
    .await;
    let same: bool = eval(&page, "window.__sameDocument === true").await;
    assert!(same, "the page was reloaded");
    chrome.close().await;
    d.stop().await;
}

/// The command: prints its URL with the token, and serves the page there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_command_prints_its_url_and_serves() {
    init_logging();
    crds_installed().await;
    let ns = TestNs::new("dash-cmd").await;
    for (flags, read_only) in [(vec![], false), (vec!["--read-only"], true)] {
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_kubectl-rollouts"))
            .args(["-n", &ns.name, "dashboard", "-p", "0"])
            .args(&flags)
            .env("KUBECONFIG", &testkit::cluster().kubeconfig)
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("running kubectl-rollouts dashboard");
        let mut out = child.stdout.take().unwrap();
        let mut text = String::new();
        let mut buf = [0u8; 1024];
        let deadline = Instant::now() + Duration::from_secs(30);
        while !text.contains('\n') || text.lines().count() < 2 {
            let left = deadline.saturating_duration_since(Instant::now());
            let n = tokio::time::timeout(left, out.read(&mut buf))
                .await
                .expect("the dashboard prints its URL")
                .expect("reading its output");
            assert!(n > 0, "the dashboard exited: {text}");
            text.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        let url = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("Rollouts dashboard: "))
            .unwrap_or_else(|| panic!("no URL in {text:?}"))
            .to_string();
        assert!(url.starts_with("http://127.0.0.1:"), "{url}");
        assert_eq!(url.contains("/rollouts/#token="), !read_only, "{url}");
        if read_only {
            assert!(text.contains("Read-only"), "{text}");
        } else {
            assert!(text.contains("keep it to yourself"), "{text}");
        }
        let addr: SocketAddr = url
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let page = request(addr, "GET", "/rollouts/", &[], "").await;
        assert_eq!(page.status, 200);
        let info = request(addr, "GET", "/rollouts/api/v1/info", &[], "").await;
        assert_eq!(info.json()["namespace"], ns.name.as_str());
        assert_eq!(info.json()["readOnly"], read_only);
        child.kill().await.expect("stopping the dashboard");
    }
}

/// The chart's dashboard ServiceAccount (namespaced mode) reads everything the pages show,
/// and, with `dashboard.readOnly=false`, may take the actions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_as_the_charts_service_account() {
    let (ns, _ctl) = setup("dash-chart").await;
    paused_small(&ns).await;
    let r = crate::ops::render::render(
        "rel",
        &ns.name,
        &json!({"namespaced": true, "dashboard": {"enabled": true, "readOnly": false}}),
    );
    let mut sa = None;
    for o in r.objects() {
        let name = o["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let kind = o["kind"].as_str().unwrap_or_default().to_string();
        if name.ends_with("-dashboard")
            && matches!(kind.as_str(), "ServiceAccount" | "Role" | "RoleBinding")
        {
            testkit::apply_value(&ns.client, Some(&ns.name), o, false)
                .await
                .unwrap_or_else(|e| panic!("applying the chart's {kind}: {e:#}"));
            if kind == "ServiceAccount" {
                sa = Some(name);
            }
        }
    }
    let user = format!(
        "system:serviceaccount:{}:{}",
        ns.name,
        sa.expect("the chart's dashboard ServiceAccount")
    );
    let d = start_dashboard(&ns, impersonating(&user).await, false).await;
    let mut events = Events::open(&format!(
        "http://{}/rollouts/api/v1/stream/rollouts/{}/web",
        d.addr, ns.name
    ))
    .await;
    let (event, view) = events.next(Duration::from_secs(30)).await;
    assert_eq!(event, "view", "{view}");
    assert_eq!(view["status"], "Paused");
    let pods: usize = view["revisions"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|r| r["replicaSets"].as_array().cloned().unwrap_or_default())
        .map(|rs| rs["pods"].as_array().map_or(0, Vec::len))
        .sum();
    assert!(pods >= 2, "the pods are shown: {view}");
    let list = request(
        d.addr,
        "GET",
        &format!("/rollouts/api/v1/rollouts?namespace={}", ns.name),
        &[],
        "",
    )
    .await;
    assert_eq!(
        list.json()["problems"],
        json!([]),
        "the chart's Role lets the dashboard see everything it shows"
    );
    let r = post_action(
        &d,
        &format!("/rollouts/api/v1/rollouts/{}/web/promote", ns.name),
        Some(&d.token),
        "{}",
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    wait_rollout(
        &ns,
        "web",
        "Healthy after the promotion",
        Duration::from_secs(60),
        is_healthy,
    )
    .await;
    let r = post_action(
        &d,
        &format!("/rollouts/api/v1/rollouts/{}/web/set-image", ns.name),
        Some(&d.token),
        "{\"container\": \"web\", \"image\": \"web:v3\"}",
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    wait_rollout(
        &ns,
        "web",
        "paused on v3",
        Duration::from_secs(60),
        |ro, _| phase(ro).0 == "Paused",
    )
    .await;
    let r = post_action(
        &d,
        &format!("/rollouts/api/v1/rollouts/{}/web/abort", ns.name),
        Some(&d.token),
        "{}",
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = post_action(
        &d,
        &format!("/rollouts/api/v1/rollouts/{}/web/rollback", ns.name),
        Some(&d.token),
        "{\"revision\": 2}",
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["message"], "rollout 'web' undo");
    d.stop().await;
}
