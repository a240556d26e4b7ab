//! Notifications against the real API server, with local HTTP servers standing in for Slack
//! and a webhook receiver: upstream's ConfigMap, Secret and subscription annotations.

use crate::common::*;
use crate::fake_http::{FakeServer, Req, json};
use rollouts::controller;
use rollouts::notify::{self, Retry};
use serde_json::Value;
use std::time::Duration;

const NAME: &str = "canary-demo";

/// A Slack API answering `ok`.
pub(crate) async fn fake_slack() -> FakeServer {
    FakeServer::start(|_| json(200, r#"{"ok":true,"ts":"1700000000.000100"}"#)).await
}

/// The chat.postMessage bodies received, in order.
pub(crate) fn slack_messages(server: &FakeServer) -> Vec<Value> {
    server
        .requests()
        .iter()
        .filter(|r: &&Req| r.path == "/api/chat.postMessage")
        .map(Req::json)
        .collect()
}

pub(crate) fn texts(messages: &[Value]) -> Vec<String> {
    messages
        .iter()
        .map(|m| {
            format!(
                "{}: {}",
                m["channel"].as_str().unwrap_or(""),
                m["text"].as_str().unwrap_or("")
            )
        })
        .collect()
}

fn options(ns: &TestNs) -> notify::Options {
    let mut o = notify::Options::new(ns.name.clone());
    o.retry = Retry {
        initial: Duration::from_millis(200),
        max: Duration::from_secs(2),
        give_up_after: Duration::from_secs(120),
    };
    o
}

fn start(ns: &TestNs, opts: notify::Options) -> Ctl {
    start_controller_config(
        ns.client.clone(),
        controller::Config {
            namespace: Some(ns.name.clone()),
            notifications: Some(opts),
            ..Default::default()
        },
    )
}

/// The project's own small settings (a clean clone has no upstream catalog).
pub(crate) fn settings(slack: &FakeServer) -> String {
    format!(
        r#"
apiVersion: v1
kind: Secret
metadata: {{name: argo-rollouts-notification-secret}}
stringData:
  slack-token: xoxb-test
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: argo-rollouts-notification-configmap}}
data:
  service.slack: |
    token: $slack-token
    apiURL: {url}/api
    username: rollouts
  template.step: |
    message: "{{{{.rollout.metadata.name}}}} step {{{{add .rollout.status.currentStepIndex 1}}}}/{{{{len .rollout.spec.strategy.canary.steps}}}}"
    slack:
      groupingKey: 'steps-{{{{index .rollout.metadata.annotations "rollout.argoproj.io/revision"}}}}'
      attachments: |
        [{{"title": "{{{{.rollout.metadata.name}}}}", "fields": [{{{{range $i, $c := .rollout.spec.template.spec.containers}}}}{{{{if $i}}}},{{{{end}}}}{{"title": "{{{{$c.name}}}}", "value": "{{{{$c.image}}}}"}}{{{{end}}}}]}}]
  template.paused: |
    message: "{{{{.rollout.metadata.name}}}} paused at step {{{{.rollout.status.currentStepIndex}}}}"
  template.completed: |
    message: "{{{{.rollout.metadata.name}}}} completed{{{{range .rollout.spec.template.spec.containers}}}} {{{{.image}}}}{{{{end}}}}"
  trigger.on-rollout-step-completed: |
    - send: [step]
  trigger.on-rollout-paused: |
    - send: [paused]
  trigger.on-rollout-completed: |
    - send: [completed]
      when: rollout.spec.replicas == 5
    - send: [paused]
      when: rollout.spec.replicas > 100
"#,
        url = slack.url()
    )
}

/// The seed canary with subscriptions.
pub(crate) fn subscribed_canary(annotations: &[(&str, &str)]) -> String {
    let mut yaml = example("examples/canary-demo.yaml");
    let mut meta = String::from("metadata:\n  annotations:\n");
    for (k, v) in annotations {
        meta.push_str(&format!("    {k}: {v:?}\n"));
    }
    meta.push_str("  name: canary-demo\n");
    yaml = yaml.replacen("metadata:\n  name: canary-demo\n", &meta, 1);
    yaml
}

pub(crate) const SUBSCRIPTIONS: &[(&str, &str)] = &[
    (
        "notifications.argoproj.io/subscribe.on-rollout-step-completed.slack",
        "deploys",
    ),
    (
        "notifications.argoproj.io/subscribe.on-rollout-paused.slack",
        "deploys;oncall",
    ),
    (
        "notifications.argoproj.io/subscribe.on-rollout-completed.slack",
        "deploys",
    ),
];

/// Deploys, updates, promotes; returns once Healthy on the new image.
async fn update_and_promote(ns: &TestNs) {
    wait_rollout(
        ns,
        NAME,
        "initial deploy Healthy",
        Duration::from_secs(60),
        is_healthy,
    )
    .await;
    set_image(ns, NAME, "argoproj/rollouts-demo:yellow").await;
    wait_rollout(
        ns,
        NAME,
        "paused at step 1",
        Duration::from_secs(60),
        |ro, _| phase(ro).0 == "Paused" && phase(ro).2 == Some(1),
    )
    .await;
    promote(ns, NAME).await;
    wait_rollout(
        ns,
        NAME,
        "Healthy on the new image",
        Duration::from_secs(120),
        |ro, rss| is_healthy(ro, rss) && phase(ro).2 == Some(8),
    )
    .await;
}

/// Waits until `server` has received `n` messages, then a little longer for extra ones.
pub(crate) async fn settle(ns: &TestNs, server: &FakeServer, n: usize) -> Vec<Value> {
    let s = server.clone();
    ns.wait_for(
        "the expected Slack messages",
        Duration::from_secs(60),
        || {
            let s = s.clone();
            async move { Ok((slack_messages(&s).len() >= n).then_some(())) }
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    slack_messages(server)
}

/// The seed canary, subscribed to the step, pause and completion triggers: the fake Slack API
/// receives each message once, in order, rendered, with the bot token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_gets_each_message_once_in_order() {
    init_logging();
    crds_installed().await;
    let ns = TestNs::new("notify-slack").await;
    // Arrival times (Unix µs) of the step messages, by step number.
    let arrivals: std::sync::Arc<std::sync::Mutex<Vec<(String, i64)>>> = Default::default();
    let arr = arrivals.clone();
    let slack = FakeServer::start(move |r| {
        let text = r.json()["text"].as_str().unwrap_or_default().to_string();
        let now = k8s_openapi::jiff::Timestamp::now().as_microsecond();
        arr.lock().unwrap().push((text, now));
        json(200, r#"{"ok":true,"ts":"1700000000.000100"}"#)
    })
    .await;
    ns.apply(&settings(&slack)).await;
    let opts = options(&ns);
    let metrics = opts.metrics.clone();
    let _ctl = start(&ns, opts);
    let steps = watch_steps(&ns);
    ns.apply(&subscribed_canary(SUBSCRIPTIONS)).await;
    update_and_promote(&ns).await;
    let messages = settle(&ns, &slack, expected_sequence().len()).await;
    let got = texts(&messages);
    eprintln!("{got:#?}");
    let expected = expected_sequence();
    assert_eq!(got, expected);
    // Rendered attachments, the token, the username.
    let step = &messages[1];
    assert_eq!(
        step["attachments"],
        serde_json::json!([{"title": "canary-demo", "fields": [
            {"title": "canary-demo", "value": "argoproj/rollouts-demo:yellow"}]}])
    );
    assert_eq!(step["username"], "rollouts");
    check_threads(&messages);
    let hash = get_rollout(&ns, NAME)
        .await
        .status
        .and_then(|s| s.current_pod_hash)
        .unwrap_or_default();
    print_latency(&hash, &steps.lock().unwrap(), &arrivals.lock().unwrap());
    let req = slack.requests()[0].clone();
    assert_eq!(req.header("authorization"), Some("Bearer xoxb-test"));
    // The record on the Rollout names every notification sent.
    let ro = get_rollout(&ns, NAME).await;
    let record = rollouts::notify::record::parse(
        kube::ResourceExt::annotations(&ro)
            .get(rollouts::notify::record::ANNOTATION)
            .map(String::as_str),
    );
    assert_eq!(record.len(), expected.len(), "{record:?}");
    // Metrics, with upstream's names and labels.
    let labels = |reason: &str| notify::metrics::SendLabels {
        namespace: ns.name.clone(),
        name: NAME.into(),
        event: notify::metrics::EventLabels {
            r#type: "Normal".into(),
            reason: reason.into(),
        },
    };
    assert_eq!(metrics.success_count(&labels("RolloutStepCompleted")), 8);
    assert_eq!(metrics.success_count(&labels("RolloutPaused")), 8);
    assert_eq!(metrics.error_total(), 0);
    let mut registry = prometheus_client::registry::Registry::default();
    registry.register_collector(Box::new(notify::metrics::NotifyCollector(metrics.clone())));
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    let want = format!(
        "notification_send_success{{namespace=\"{}\",name=\"canary-demo\",type=\"Normal\",reason=\"RolloutCompleted\"}} 2",
        ns.name
    );
    assert!(text.contains(&want), "{want} not in\n{text}");
    assert!(text.contains("notification_send_count{"), "{text}");
}

/// Records when a watch first sees each (currentPodHash, currentStepIndex) of the Rollout.
fn watch_steps(ns: &TestNs) -> std::sync::Arc<std::sync::Mutex<Vec<(String, i32, i64)>>> {
    use futures::StreamExt;
    use kube::runtime::WatchStreamExt;
    let seen: std::sync::Arc<std::sync::Mutex<Vec<(String, i32, i64)>>> = Default::default();
    let s = seen.clone();
    let api = ns.api::<rollouts::api::Rollout>();
    tokio::spawn(async move {
        let mut stream = kube::runtime::watcher(api, Default::default())
            .applied_objects()
            .boxed();
        while let Some(Ok(ro)) = stream.next().await {
            let now = k8s_openapi::jiff::Timestamp::now().as_microsecond();
            let st = ro.status.clone().unwrap_or_default();
            let (Some(hash), Some(idx)) = (st.current_pod_hash, st.current_step_index) else {
                continue;
            };
            let mut v = s.lock().unwrap();
            if !v.iter().any(|(h, i, _)| *h == hash && *i == idx) {
                v.push((hash, idx, now));
            }
        }
    });
    seen
}

/// Prints (a figure, not an assertion) the time from the status write completing a step, as
/// a watch sees it, to that step's Slack message arriving.
fn print_latency(hash: &str, steps: &[(String, i32, i64)], arrivals: &[(String, i64)]) {
    let mut lat: Vec<i64> = Vec::new();
    for k in 1..=8 {
        let seen = steps.iter().find(|(h, i, _)| h == hash && *i == k);
        let arrived = arrivals
            .iter()
            .find(|(t, _)| t.ends_with(&format!(" step {k}/8")));
        if let (Some((_, _, at)), Some((_, arr))) = (seen, arrived) {
            lat.push(arr - at);
        }
    }
    lat.sort();
    if let (Some(min), Some(max)) = (lat.first(), lat.last()) {
        eprintln!(
            "FIGURE: step completed (seen by a watch) -> Slack message: median {} ms, min {} ms, max {} ms ({} steps)",
            lat[lat.len() / 2] / 1000,
            min / 1000,
            max / 1000,
            lat.len()
        );
    }
}

/// The steps of one revision go in one Slack thread (`groupingKey`): the first message starts
/// it, the next ones answer in it.
fn check_threads(messages: &[Value]) {
    let steps: Vec<&Value> = messages
        .iter()
        .filter(|m| {
            m["text"]
                .as_str()
                .is_some_and(|t| t.contains("canary-demo step "))
        })
        .collect();
    assert_eq!(steps.len(), 8);
    assert!(steps[0].get("thread_ts").is_none(), "{}", steps[0]);
    for s in &steps[1..] {
        assert_eq!(s["thread_ts"], "1700000000.000100", "{s}");
    }
    let others: Vec<&Value> = messages
        .iter()
        .filter(|m| {
            !m["text"]
                .as_str()
                .is_some_and(|t| t.contains("canary-demo step "))
        })
        .collect();
    assert!(others.iter().all(|m| m.get("thread_ts").is_none()));
}

/// The messages of [`update_and_promote`] with [`settings`] and [`SUBSCRIPTIONS`].
pub(crate) fn expected_sequence() -> Vec<String> {
    let mut expected =
        vec!["deploys: canary-demo completed argoproj/rollouts-demo:blue".to_string()];
    for step in 1..=8 {
        expected.push(format!("deploys: canary-demo step {step}/8"));
        // Each pause (steps 1, 3, 5, 7) is announced to both recipients.
        if step % 2 == 1 {
            expected.push(format!("deploys: canary-demo paused at step {step}"));
            expected.push(format!("oncall: canary-demo paused at step {step}"));
        }
    }
    expected.push("deploys: canary-demo completed argoproj/rollouts-demo:yellow".into());
    expected
}

/// Waits until the messages up to the first timed pause (step 3) have all arrived, so that a
/// controller killed then has nothing in flight (what a kill in flight may cost is in the
/// README).
pub(crate) async fn wait_for_first_timed_pause_messages(ns: &TestNs, slack: &FakeServer) {
    let want = expected_sequence()
        .iter()
        .position(|m| m == "oncall: canary-demo paused at step 3")
        .expect("in the sequence")
        + 1;
    settle(ns, slack, want).await;
}

/// The controller is stopped abruptly in the middle of the update (its task dropped, as when
/// the process dies or loses the Lease) and another one takes over: no message is sent twice
/// and none is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_controller_sends_no_duplicates() {
    init_logging();
    crds_installed().await;
    let ns = TestNs::new("notify-kill").await;
    let slack = fake_slack().await;
    ns.apply(&settings(&slack)).await;
    let first = start(&ns, options(&ns));
    ns.apply(&subscribed_canary(SUBSCRIPTIONS)).await;
    wait_rollout(
        &ns,
        NAME,
        "initial deploy Healthy",
        Duration::from_secs(60),
        is_healthy,
    )
    .await;
    set_image(&ns, NAME, "argoproj/rollouts-demo:yellow").await;
    wait_rollout(
        &ns,
        NAME,
        "paused at step 1",
        Duration::from_secs(60),
        |ro, _| phase(ro).0 == "Paused" && phase(ro).2 == Some(1),
    )
    .await;
    promote(&ns, NAME).await;
    wait_rollout(
        &ns,
        NAME,
        "in the first timed pause",
        Duration::from_secs(60),
        |ro, _| phase(ro).2 == Some(3),
    )
    .await;
    wait_for_first_timed_pause_messages(&ns, &slack).await;
    drop(first);
    // A standby takes over with nothing but what is stored in the API server.
    let second = start(&ns, options(&ns));
    wait_rollout(
        &ns,
        NAME,
        "Healthy on the new image",
        Duration::from_secs(120),
        |ro, rss| is_healthy(ro, rss) && phase(ro).2 == Some(8),
    )
    .await;
    let expected = expected_sequence();
    let got = texts(&settle(&ns, &slack, expected.len()).await);
    assert_eq!(got, expected);
    // Restarting once more sends nothing new.
    drop(second);
    let _third = start(&ns, options(&ns));
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(texts(&slack_messages(&slack)), expected);
}

/// The Slack API answers 500 for the first 30 s: the rollout progresses on schedule meanwhile,
/// and every message arrives once after recovery, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_down_for_30s_delays_messages_not_the_rollout() {
    init_logging();
    crds_installed().await;
    let ns = TestNs::new("notify-500").await;
    let accepted: std::sync::Arc<std::sync::Mutex<Vec<Value>>> = Default::default();
    let since = std::time::Instant::now();
    let acc = accepted.clone();
    let slack = FakeServer::start(move |r| {
        if since.elapsed() < Duration::from_secs(30) {
            return json(500, r#"{"ok":false,"error":"internal_error"}"#);
        }
        acc.lock().unwrap().push(r.json());
        json(200, r#"{"ok":true,"ts":"1.1"}"#)
    })
    .await;
    ns.apply(&settings(&slack)).await;
    let _ctl = start(&ns, options(&ns));
    ns.apply(&subscribed_canary(SUBSCRIPTIONS)).await;
    wait_rollout(
        &ns,
        NAME,
        "initial deploy Healthy",
        Duration::from_secs(60),
        is_healthy,
    )
    .await;
    set_image(&ns, NAME, "argoproj/rollouts-demo:yellow").await;
    wait_rollout(
        &ns,
        NAME,
        "paused at step 1",
        Duration::from_secs(60),
        |ro, _| phase(ro).0 == "Paused" && phase(ro).2 == Some(1),
    )
    .await;
    assert!(
        since.elapsed() < Duration::from_secs(30),
        "the rollout reached its pause only after Slack recovered ({:?})",
        since.elapsed()
    );
    assert!(accepted.lock().unwrap().is_empty());
    promote(&ns, NAME).await;
    wait_rollout(
        &ns,
        NAME,
        "Healthy on the new image",
        Duration::from_secs(120),
        |ro, rss| is_healthy(ro, rss) && phase(ro).2 == Some(8),
    )
    .await;
    let expected = expected_sequence();
    let acc = accepted.clone();
    ns.wait_for(
        "every message after recovery",
        Duration::from_secs(60),
        || {
            let n = acc.lock().unwrap().len();
            let want = expected.len();
            async move { Ok((n >= want).then_some(())) }
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(texts(&accepted.lock().unwrap()), expected);
    assert!(
        slack.requests().len() > expected.len(),
        "the 500s were answered and retried"
    );
}

/// Warning events on the Rollout (reason, note), newest last.
async fn warnings(ns: &TestNs) -> Vec<(String, String)> {
    let events: kube::Api<k8s_openapi::api::events::v1::Event> = ns.api();
    events
        .list(&Default::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e.type_.as_deref() == Some("Warning"))
        .map(|e| (e.reason.unwrap_or_default(), e.note.unwrap_or_default()))
        .collect()
}

/// A broken template, an unknown service and a missing secret key each give a Warning event
/// on the Rollout; the Rollout is unaffected and the good subscription still sends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_settings_give_warning_events() {
    init_logging();
    crds_installed().await;
    let ns = TestNs::new("notify-bad").await;
    let slack = fake_slack().await;
    ns.apply(&settings(&slack)).await;
    let cms: kube::Api<k8s_openapi::api::core::v1::ConfigMap> = ns.api();
    cms.patch(
        "argo-rollouts-notification-configmap",
        &Default::default(),
        &kube::api::Patch::Merge(serde_json::json!({"data": {
            "template.bad": "message: \"{{if .rollout}\"\n",
            "trigger.on-rollout-completed": "- send: [completed]\n- send: [bad]\n",
            "service.teams": "recipientUrls:\n  ops: $teams-url\n",
        }})),
    )
    .await
    .unwrap();
    let _ctl = start(&ns, options(&ns));
    ns.apply(&subscribed_canary(&[
        (
            "notifications.argoproj.io/subscribe.on-rollout-completed.slack",
            "deploys",
        ),
        (
            "notifications.argoproj.io/subscribe.on-rollout-completed.pager",
            "x",
        ),
        (
            "notifications.argoproj.io/subscribe.on-rollout-completed.teams",
            "ops",
        ),
    ]))
    .await;
    wait_rollout(&ns, NAME, "Healthy", Duration::from_secs(60), is_healthy).await;
    let want = [
        "template \"bad\"",
        "service \"pager\" is not defined",
        "secret key \"teams-url\"",
    ];
    let found = ns
        .wait_for("the three warnings", Duration::from_secs(30), || {
            let ns = &ns;
            async move {
                let w = warnings(ns).await;
                let all = want.iter().all(|p| {
                    w.iter()
                        .any(|(r, n)| r == notify::WARNING_REASON && n.contains(p))
                });
                Ok(all.then_some(w))
            }
        })
        .await;
    eprintln!("{found:#?}");
    let messages = settle(&ns, &slack, 1).await;
    assert_eq!(
        texts(&messages),
        vec!["deploys: canary-demo completed argoproj/rollouts-demo:blue"]
    );
    let ro = get_rollout(&ns, NAME).await;
    assert_eq!(phase(&ro).0, "Healthy");
}

/// Upstream's catalog ConfigMap, applied unchanged (plus `service.slack`): the update and the
/// abort send the catalog's messages with their rendered attachments.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_catalog_update_and_abort() {
    let Some(catalog) = compat_file("manifests/notifications-install.yaml") else {
        return;
    };
    init_logging();
    crds_installed().await;
    let ns = TestNs::new("notify-catalog").await;
    let slack = fake_slack().await;
    ns.apply(&catalog).await;
    ns.apply("apiVersion: v1\nkind: Secret\nmetadata: {name: argo-rollouts-notification-secret}\nstringData: {slack-token: xoxb-1}\n").await;
    let cms: kube::Api<k8s_openapi::api::core::v1::ConfigMap> = ns.api();
    cms.patch(
        "argo-rollouts-notification-configmap",
        &Default::default(),
        &kube::api::Patch::Merge(serde_json::json!({"data": {
            "service.slack": format!("token: $slack-token\napiURL: {}/api\n", slack.url()),
        }})),
    )
    .await
    .unwrap();
    let _ctl = start(&ns, options(&ns));
    let triggers = [
        "on-rollout-updated",
        "on-rollout-step-completed",
        "on-rollout-paused",
        "on-rollout-completed",
        "on-rollout-aborted",
    ];
    let keys: Vec<String> = triggers
        .iter()
        .map(|t| format!("notifications.argoproj.io/subscribe.{t}.slack"))
        .collect();
    let subs: Vec<(&str, &str)> = keys.iter().map(|k| (k.as_str(), "rollouts")).collect();
    ns.apply(&subscribed_canary(&subs)).await;
    wait_rollout(
        &ns,
        NAME,
        "initial deploy Healthy",
        Duration::from_secs(60),
        is_healthy,
    )
    .await;
    set_image(&ns, NAME, "argoproj/rollouts-demo:yellow").await;
    wait_rollout(
        &ns,
        NAME,
        "paused at step 1",
        Duration::from_secs(60),
        |ro, _| phase(ro).0 == "Paused" && phase(ro).2 == Some(1),
    )
    .await;
    abort(&ns, NAME).await;
    wait_rollout(&ns, NAME, "aborted", Duration::from_secs(60), |ro, _| {
        phase(ro).0 == "Degraded"
    })
    .await;
    let messages = settle(&ns, &slack, 5).await;
    let got = texts(&messages);
    eprintln!("{got:#?}");
    assert_eq!(
        got,
        vec![
            "rollouts: Rollout canary-demo has been updated.",
            "rollouts: Rollout canary-demo has been completed.",
            "rollouts: Rollout canary-demo has been updated.",
            "rollouts: Rollout canary-demo step number 1/8 has been completed.",
            "rollouts: Rollout canary-demo has been paused.",
            "rollouts: Rollout canary-demo has been aborted.",
        ]
    );
    for m in &messages {
        let a = &m["attachments"][0];
        assert_eq!(a["title"], "canary-demo", "{m}");
        assert_eq!(a["fields"][0]["value"], "Canary", "{m}");
        let fields = a["fields"].as_array().expect("fields");
        let last = fields.last().expect("a field");
        assert_eq!(last["title"], "canary-demo", "{m}");
        assert!(
            last["value"]
                .as_str()
                .is_some_and(|v| v.starts_with("argoproj/rollouts-demo:")),
            "{m}"
        );
    }
}

/// Slack is down while the first controller runs: what it decided is stored as pending on the
/// Rollout. It dies; the next controller delivers the pending messages once Slack is back, then
/// carries on: every message exactly once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_messages_survive_the_controller() {
    init_logging();
    crds_installed().await;
    let ns = TestNs::new("notify-pending").await;
    let up = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let accepted: std::sync::Arc<std::sync::Mutex<Vec<Value>>> = Default::default();
    let (u, acc) = (up.clone(), accepted.clone());
    let slack = FakeServer::start(move |r| {
        if !u.load(std::sync::atomic::Ordering::SeqCst) {
            return json(503, "unavailable");
        }
        acc.lock().unwrap().push(r.json());
        json(200, r#"{"ok":true,"ts":"1.1"}"#)
    })
    .await;
    ns.apply(&settings(&slack)).await;
    let first = start(&ns, options(&ns));
    ns.apply(&subscribed_canary(SUBSCRIPTIONS)).await;
    wait_rollout(
        &ns,
        NAME,
        "initial deploy Healthy",
        Duration::from_secs(60),
        is_healthy,
    )
    .await;
    set_image(&ns, NAME, "argoproj/rollouts-demo:yellow").await;
    wait_rollout(
        &ns,
        NAME,
        "paused at step 1",
        Duration::from_secs(60),
        |ro, _| phase(ro).0 == "Paused" && phase(ro).2 == Some(1),
    )
    .await;
    // Completed (blue), step 1, paused ×2: pending on the Rollout.
    let pending = ns
        .wait_for(
            "four pending notifications",
            Duration::from_secs(30),
            || {
                let ns = &ns;
                async move {
                    let ro = get_rollout(ns, NAME).await;
                    let p = notify::record::parse_pending(
                        kube::ResourceExt::annotations(&ro)
                            .get(notify::record::PENDING)
                            .map(String::as_str),
                    );
                    Ok((p.len() == 4).then_some(p))
                }
            },
        )
        .await;
    assert!(pending.values().all(|p| p.service == "slack"));
    drop(first);
    up.store(true, std::sync::atomic::Ordering::SeqCst);
    let _second = start(&ns, options(&ns));
    promote(&ns, NAME).await;
    wait_rollout(
        &ns,
        NAME,
        "Healthy on the new image",
        Duration::from_secs(120),
        |ro, rss| is_healthy(ro, rss) && phase(ro).2 == Some(8),
    )
    .await;
    let expected = expected_sequence();
    let acc = accepted.clone();
    ns.wait_for("every message", Duration::from_secs(60), || {
        let n = acc.lock().unwrap().len();
        let want = expected.len();
        async move { Ok((n >= want).then_some(())) }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(texts(&accepted.lock().unwrap()), expected);
    let ro = get_rollout(&ns, NAME).await;
    assert!(
        !kube::ResourceExt::annotations(&ro).contains_key(notify::record::PENDING),
        "nothing left pending"
    );
}

/// A small SMTP server (no TLS, no auth): records each message's envelope and data.
async fn fake_smtp() -> (u16, std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let mails: std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>> = Default::default();
    let m = mails.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let m = m.clone();
            tokio::spawn(async move {
                let (r, mut w) = s.into_split();
                let mut lines = BufReader::new(r).lines();
                let _ = w.write_all(b"220 fake ESMTP\r\n").await;
                let mut rcpt = String::new();
                while let Ok(Some(line)) = lines.next_line().await {
                    let upper = line.to_ascii_uppercase();
                    let answer: &[u8] = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                        b"250-fake\r\n250 8BITMIME\r\n"
                    } else if upper.starts_with("RCPT TO:") {
                        rcpt = line[8..]
                            .trim()
                            .trim_matches(|c| c == '<' || c == '>')
                            .to_string();
                        b"250 ok\r\n"
                    } else if upper.starts_with("DATA") {
                        let _ = w.write_all(b"354 go on\r\n").await;
                        let mut data = String::new();
                        while let Ok(Some(l)) = lines.next_line().await {
                            if l == "." {
                                break;
                            }
                            data.push_str(&l);
                            data.push('\n');
                        }
                        m.lock().unwrap().push((rcpt.clone(), data));
                        b"250 queued\r\n"
                    } else if upper.starts_with("QUIT") {
                        let _ = w.write_all(b"221 bye\r\n").await;
                        return;
                    } else {
                        b"250 ok\r\n"
                    };
                    let _ = w.write_all(answer).await;
                }
            });
        }
    });
    (port, mails)
}

/// A webhook (templated method, path, body; headers, basic auth), Microsoft Teams, email
/// (SMTP), Mattermost and Google Chat (cards, thread key) each receive the completion of the
/// initial deploy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_teams_email_mattermost_and_googlechat_deliver() {
    init_logging();
    crds_installed().await;
    let ns = TestNs::new("notify-services").await;
    let hook = FakeServer::start(|_| json(200, "{}")).await;
    let teams = FakeServer::start(|_| crate::fake_http::reply(200, "text/plain", "1")).await;
    let (smtp_port, mails) = fake_smtp().await;
    let mm = FakeServer::start(|_| json(201, r#"{"id":"p1"}"#)).await;
    let chat = FakeServer::start(|_| json(200, "{}")).await;
    ns.apply(&format!(
        r#"
apiVersion: v1
kind: Secret
metadata: {{name: argo-rollouts-notification-secret}}
stringData: {{hook-password: s3cret}}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: argo-rollouts-notification-configmap}}
data:
  service.webhook.deploys: |
    url: {hook}
    headers:
    - name: Content-Type
      value: application/json
    basicAuth:
      username: bot
      password: $hook-password
  service.teams: |
    recipientUrls:
      ops: {teams}/hook
  service.email: |
    host: 127.0.0.1
    port: {smtp_port}
    from: rollouts@example.com
  service.mattermost: |
    apiURL: {mm}
    token: mm-token
  service.googlechat: |
    webhooks:
      space: {chat}/v1/spaces/x/messages?key=k
  template.completed: |
    message: "{{{{.rollout.metadata.name}}}} completed"
    email:
      subject: "Rollout {{{{.rollout.metadata.name}}}} completed"
    teams:
      title: "{{{{.rollout.metadata.name}}}}"
      facts: '[{{"name": "replicas", "value": "{{{{.rollout.spec.replicas}}}}"}}]'
    mattermost:
      attachments: '[{{"title": "{{{{.rollout.metadata.name}}}}"}}]'
    googlechat:
      threadKey: "{{{{.rollout.metadata.name}}}}"
      cardsV2: |
        - header:
            title: "{{{{.rollout.metadata.name}}}}"
    webhook:
      deploys:
        method: POST
        path: /rollouts/{{{{.rollout.metadata.name}}}}
        body: '{{"rollout": "{{{{.rollout.metadata.name}}}}", "to": "{{{{.recipient}}}}"}}'
  trigger.on-rollout-completed: |
    - send: [completed]
"#,
        hook = hook.url(),
        teams = teams.url(),
        mm = mm.url(),
        chat = chat.url(),
    ))
    .await;
    let _ctl = start(&ns, options(&ns));
    ns.apply(&subscribed_canary(&[
        (
            "notifications.argoproj.io/subscribe.on-rollout-completed.deploys",
            "",
        ),
        (
            "notifications.argoproj.io/subscribe.on-rollout-completed.teams",
            "ops",
        ),
        (
            "notifications.argoproj.io/subscribe.on-rollout-completed.email",
            "oncall@example.com",
        ),
        (
            "notifications.argoproj.io/subscribe.on-rollout-completed.mattermost",
            "chan-1",
        ),
        (
            "notifications.argoproj.io/subscribe.on-rollout-completed.googlechat",
            "space",
        ),
    ]))
    .await;
    wait_rollout(&ns, NAME, "Healthy", Duration::from_secs(60), is_healthy).await;
    let (h, t, m, mm2, c2) = (
        hook.clone(),
        teams.clone(),
        mails.clone(),
        mm.clone(),
        chat.clone(),
    );
    ns.wait_for("the five deliveries", Duration::from_secs(30), || {
        let done = !h.requests().is_empty()
            && !t.requests().is_empty()
            && !m.lock().unwrap().is_empty()
            && !mm2.requests().is_empty()
            && !c2.requests().is_empty();
        async move { Ok(done.then_some(())) }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let reqs = hook.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].method, "POST");
    assert_eq!(reqs[0].path, "/rollouts/canary-demo");
    assert_eq!(
        reqs[0].json(),
        serde_json::json!({"rollout": "canary-demo", "to": ""})
    );
    assert_eq!(reqs[0].header("content-type"), Some("application/json"));
    use base64::Engine;
    let auth = base64::engine::general_purpose::STANDARD.encode("bot:s3cret");
    assert_eq!(
        reqs[0].header("authorization"),
        Some(format!("Basic {auth}").as_str())
    );
    let t = teams.requests();
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].path, "/hook");
    let card = t[0].json();
    assert_eq!(card["@type"], "MessageCard");
    assert_eq!(card["title"], "canary-demo");
    assert_eq!(card["text"], "canary-demo completed");
    assert_eq!(card["sections"][0]["facts"][0]["value"], "5");
    let mails = mails.lock().unwrap().clone();
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].0, "oncall@example.com");
    assert!(
        mails[0]
            .1
            .contains("Subject: Rollout canary-demo completed"),
        "{}",
        mails[0].1
    );
    assert!(
        mails[0].1.contains("canary-demo completed"),
        "{}",
        mails[0].1
    );
    assert!(
        mails[0].1.contains("From: rollouts@example.com"),
        "{}",
        mails[0].1
    );
    let p = mm.requests();
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].path, "/api/v4/posts");
    assert_eq!(p[0].header("authorization"), Some("Bearer mm-token"));
    assert_eq!(
        p[0].json(),
        serde_json::json!({"channel_id": "chan-1", "message": "canary-demo completed",
                           "props": {"attachments": [{"title": "canary-demo"}]}})
    );
    let c = chat.requests();
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].path, "/v1/spaces/x/messages");
    assert_eq!(c[0].q("key"), Some("k"));
    assert_eq!(c[0].q("threadKey"), Some("canary-demo"));
    assert_eq!(
        c[0].json()["cardsV2"][0]["card"]["header"]["title"],
        "canary-demo"
    );
}

/// Runs `kubectl-rollouts -n NS args...` with the test cluster's kubeconfig: (exit, stdout,
/// stderr).
async fn cli(ns: &TestNs, args: &[&str]) -> (i32, String, String) {
    let kubeconfig = testkit::cluster().kubeconfig.clone();
    let mut full: Vec<String> = vec!["-n".into(), ns.name.clone()];
    full.extend(args.iter().map(|s| s.to_string()));
    tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_kubectl-rollouts"))
            .args(&full)
            .env("KUBECONFIG", &kubeconfig)
            .output()
            .expect("running kubectl-rollouts");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .expect("the CLI thread")
}

/// `notifications template get|notify` and `trigger get|run`: an administrator previews a
/// template against a Rollout, test-sends it, and sees which conditions of a trigger hold.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_previews_and_test_sends() {
    init_logging();
    crds_installed().await;
    let ns = TestNs::new("notify-cli").await;
    let slack = fake_slack().await;
    let settings_yaml = settings(&slack);
    ns.apply(&settings_yaml).await;
    let _ctl = start_controller(&ns);
    ns.apply(&subscribed_canary(&[])).await;
    wait_rollout(&ns, NAME, "Healthy", Duration::from_secs(60), is_healthy).await;

    let (code, out, err) = cli(&ns, &["notifications", "template", "get", "-o", "name"]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "completed\npaused\nstep\n");
    let (code, out, err) = cli(&ns, &["notifications", "template", "get"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("NAME"), "{out}");
    assert!(
        out.contains("paused     {{.rollout.metadata.name}} paused at step"),
        "{out}"
    );
    let (code, out, err) = cli(&ns, &["notifications", "trigger", "get"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.lines().any(|l| l.starts_with("on-rollout-completed")
            && l.contains("completed")
            && l.ends_with("rollout.spec.replicas == 5")),
        "{out}"
    );
    let (code, out, err) = cli(
        &ns,
        &[
            "notifications",
            "trigger",
            "run",
            "on-rollout-completed",
            NAME,
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let lines: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0], vec!["CONDITION", "RESULT"]);
    assert_eq!(lines[1].last(), Some(&"true"), "{out}");
    assert_eq!(lines[2].last(), Some(&"false"), "{out}");
    let (code, out, err) = cli(
        &ns,
        &["notifications", "template", "notify", "completed", NAME],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("message: canary-demo completed argoproj/rollouts-demo:blue"),
        "{out}"
    );
    assert!(slack.requests().is_empty(), "a preview sends nothing");
    let (code, out, err) = cli(
        &ns,
        &[
            "notifications",
            "template",
            "notify",
            "completed",
            NAME,
            "--recipient",
            "slack:ops",
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "notification sent to slack:ops\n");
    let sent = slack_messages(&slack);
    assert_eq!(
        texts(&sent),
        vec!["ops: canary-demo completed argoproj/rollouts-demo:blue"]
    );
    // Files instead of the cluster's objects; an unknown template is an error naming it.
    let dir = std::env::temp_dir().join(format!("notify-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cm_file = dir.join("cm.yaml");
    let cm_doc = settings_yaml.split("---").nth(1).unwrap();
    std::fs::write(&cm_file, cm_doc).unwrap();
    let (code, out, err) = cli(
        &ns,
        &[
            "notifications",
            "--config-map",
            cm_file.to_str().unwrap(),
            "--secret",
            ":empty",
            "trigger",
            "get",
            "-o",
            "name",
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "on-rollout-completed\non-rollout-paused\non-rollout-step-completed\n"
    );
    let (code, _, err) = cli(&ns, &["notifications", "template", "get", "nope"]).await;
    assert_ne!(code, 0);
    assert!(err.contains("template \"nope\" is not defined"), "{err}");
}

/// A failing analysis (a web metric whose value fails its condition) fires
/// `on-analysis-run-running`, `on-analysis-run-failed` and `on-rollout-aborted`; templates see
/// the run in `.analysisRuns`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analysis_triggers_fire_on_a_failing_analysis() {
    init_logging();
    crds_installed().await;
    let ns = TestNs::new("notify-analysis").await;
    let slack = fake_slack().await;
    let metric = FakeServer::start(|_| json(200, r#"{"value": 1}"#)).await;
    ns.apply(&format!(
        r#"
apiVersion: v1
kind: Secret
metadata: {{name: argo-rollouts-notification-secret}}
stringData: {{slack-token: xoxb-test}}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: argo-rollouts-notification-configmap}}
data:
  service.slack: |
    token: $slack-token
    apiURL: {url}/api
  template.analysis: |
    message: "{{{{.rollout.metadata.name}}}} analysis:{{{{range .analysisRuns}}}} {{{{.status.phase}}}}{{{{end}}}}"
  template.aborted: |
    message: "{{{{.rollout.metadata.name}}}} aborted"
  trigger.on-analysis-run-running: |
    - send: [analysis]
  trigger.on-analysis-run-failed: |
    - send: [analysis]
  trigger.on-analysis-run-error: |
    - send: [analysis]
  trigger.on-rollout-aborted: |
    - send: [aborted]
  defaultTriggers: |
    - on-analysis-run-running
    - on-analysis-run-failed
    - on-analysis-run-error
    - on-rollout-aborted
---
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {{name: zero-errors}}
spec:
  metrics:
  - name: errors
    count: 1
    initialDelay: 3s
    failureLimit: 0
    successCondition: result == 0
    provider:
      web:
        url: {metric}/errors
        jsonPath: "{{$.value}}"
---
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: judged
  annotations:
    notifications.argoproj.io/subscribe.slack: deploys
spec:
  replicas: 2
  selector: {{matchLabels: {{app: judged}}}}
  template:
    metadata: {{labels: {{app: judged}}}}
    spec:
      containers: [{{name: app, image: "app:v1"}}]
  strategy:
    canary:
      steps:
      - setWeight: 50
      - analysis:
          templates: [{{templateName: zero-errors}}]
"#,
        url = slack.url(),
        metric = metric.url(),
    ))
    .await;
    let _ctl = start(&ns, options(&ns));
    let _actl = crate::analysis::start_analysis_controller(&ns);
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
        "aborted",
        Duration::from_secs(90),
        |ro, _| ro.status.as_ref().and_then(|s| s.abort) == Some(true),
    )
    .await;
    let got = texts(&settle(&ns, &slack, 3).await);
    assert_eq!(
        got,
        vec![
            "deploys: judged analysis: Running",
            "deploys: judged analysis: Failed",
            "deploys: judged aborted",
        ]
    );
}

/// Self-service: the controller's namespace has the Slack service, the Rollout's namespace its
/// own template (which wins over the controller's of the same name).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_service_reads_the_rollouts_namespace_too() {
    init_logging();
    crds_installed().await;
    let controller_ns = TestNs::new("notify-ctl").await;
    let ns = TestNs::new("notify-self").await;
    let slack = fake_slack().await;
    controller_ns.apply(&settings(&slack)).await;
    ns.apply(
        r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: argo-rollouts-notification-configmap}
data:
  template.completed: |
    message: "{{.rollout.metadata.namespace}} team says: done"
"#,
    )
    .await;
    let mut opts = options(&controller_ns);
    opts.self_service = true;
    let _ctl = start(&ns, opts);
    ns.apply(&subscribed_canary(&[(
        "notifications.argoproj.io/subscribe.on-rollout-completed.slack",
        "team",
    )]))
    .await;
    wait_rollout(&ns, NAME, "Healthy", Duration::from_secs(60), is_healthy).await;
    let got = texts(&settle(&ns, &slack, 1).await);
    assert_eq!(got, vec![format!("team: {} team says: done", ns.name)]);
}
