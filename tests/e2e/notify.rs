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
async fn fake_slack() -> FakeServer {
    FakeServer::start(|_| json(200, r#"{"ok":true,"ts":"1700000000.000100"}"#)).await
}

/// The chat.postMessage bodies received, in order.
fn slack_messages(server: &FakeServer) -> Vec<Value> {
    server
        .requests()
        .iter()
        .filter(|r: &&Req| r.path == "/api/chat.postMessage")
        .map(Req::json)
        .collect()
}

fn texts(messages: &[Value]) -> Vec<String> {
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
fn settings(slack: &FakeServer) -> String {
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
fn subscribed_canary(annotations: &[(&str, &str)]) -> String {
    let mut yaml = example("examples/canary-demo.yaml");
    let mut meta = String::from("metadata:\n  annotations:\n");
    for (k, v) in annotations {
        meta.push_str(&format!("    {k}: {v:?}\n"));
    }
    meta.push_str("  name: canary-demo\n");
    yaml = yaml.replacen("metadata:\n  name: canary-demo\n", &meta, 1);
    yaml
}

const SUBSCRIPTIONS: &[(&str, &str)] = &[
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
async fn settle(ns: &TestNs, server: &FakeServer, n: usize) -> Vec<Value> {
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
    let slack = fake_slack().await;
    ns.apply(&settings(&slack)).await;
    let _ctl = start(&ns, options(&ns));
    ns.apply(&subscribed_canary(SUBSCRIPTIONS)).await;
    update_and_promote(&ns).await;
    let messages = settle(&ns, &slack, 1).await;
    let got = texts(&messages);
    eprintln!("{got:#?}");
    let mut expected = vec![
        "deploys: canary-demo completed argoproj/rollouts-demo:blue".to_string(),
        "deploys: canary-demo step 1/8".into(),
        "deploys: canary-demo paused at step 1".into(),
        "oncall: canary-demo paused at step 1".into(),
    ];
    expected.extend((2..=8).map(|i| format!("deploys: canary-demo step {i}/8")));
    expected.push("deploys: canary-demo completed argoproj/rollouts-demo:yellow".into());
    assert_eq!(got, expected);
    // Rendered attachments, the token, the username.
    let step = &messages[1];
    assert_eq!(
        step["attachments"],
        serde_json::json!([{"title": "canary-demo", "fields": [
            {"title": "canary-demo", "value": "argoproj/rollouts-demo:yellow"}]}])
    );
    assert_eq!(step["username"], "rollouts");
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
}
