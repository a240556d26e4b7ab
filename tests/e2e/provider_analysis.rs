//! A canary judged by Datadog, against the real API server: both controllers run in-process
//! for the test namespace (which is also the controller's namespace, where the `datadog`
//! Secret lives), Datadog is a local server speaking its v2 scalar-query API, its address
//! taken from the Secret's `address` key as a proxy's would be.

use crate::analysis::start_analysis_controller_with;
use crate::common::*;
use crate::fake_http::{FakeServer, Req, json};
use k8s_openapi::api::core::v1::Secret;
use kube::api::PostParams;
use rollouts::analysis::providers::Vars;
use rollouts::api::{AnalysisRun, Rollout};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const MANIFEST: &str = r#"
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: dd-error-rate}
spec:
  args:
  - name: service
  metrics:
  - name: error-rate
    interval: 1s
    count: 2
    successCondition: default(result, 1) < 0.01
    failureLimit: 0
    provider:
      datadog:
        apiVersion: v2
        interval: 5m
        queries:
          a: sum:trace.http.request.errors{service:{{args.service}}}.as_count()
          b: sum:trace.http.request.hits{service:{{args.service}}}.as_count()
        formula: a / b
        SECRET_REF
---
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: checkout}
spec:
  replicas: 4
  selector: {matchLabels: {app: checkout}}
  template:
    metadata: {labels: {app: checkout}}
    spec:
      containers: [{name: app, image: "checkout:v1"}]
  strategy:
    canary:
      steps:
      - setWeight: 50
      - analysis:
          templates: [{templateName: dd-error-rate}]
          args: [{name: service, value: checkout}]
"#;

fn stable_of(ro: &Rollout) -> String {
    ro.status
        .clone()
        .unwrap_or_default()
        .stable_rs
        .unwrap_or_default()
}

async fn secret(ns: &TestNs, name: &str, data: &[(&str, String)]) {
    let s = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        string_data: Some(
            data.iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect::<BTreeMap<_, _>>(),
        ),
        ..Default::default()
    };
    ns.api::<Secret>()
        .create(&PostParams::default(), &s)
        .await
        .unwrap();
}

fn scalar(v: f64) -> String {
    format!(
        r#"{{"data":{{"type":"scalar_response","attributes":{{"columns":[{{"name":"a / b","type":"number","values":[{v}],"meta":{{"unit":null}}}}]}}}},"errors":null}}"#
    )
}

async fn runs(ns: &TestNs) -> Vec<AnalysisRun> {
    let mut r = ns
        .api::<AnalysisRun>()
        .list(&Default::default())
        .await
        .unwrap()
        .items;
    r.sort_by_key(|r| r.metadata.creation_timestamp.clone().map(|t| t.0));
    r
}

/// A healthy canary passes its Datadog analysis and is promoted; a canary whose error rate
/// is over the threshold fails it and is aborted back to the stable version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datadog_canary_passes_and_fails() {
    let (ns, _ctl) = setup("dd-canary").await;
    let controller_ns = ns.name.clone();
    let _actl = start_analysis_controller_with(&ns, move |c| {
        c.controller_namespace = Some(controller_ns);
        c.provider_vars = Vars::fixed(Vec::<(String, String)>::new());
    });
    let error_rate = Arc::new(Mutex::new(0.002f64));
    let rate = error_rate.clone();
    let dd = FakeServer::start(move |r: &Req| {
        if r.path != "/api/v2/query/scalar" || r.method != "POST" {
            return json(404, r#"{"errors":["Not Found"]}"#);
        }
        let authorised = r
            .header("dd-api-key")
            .is_some_and(|k| k.starts_with("api-"))
            && r.header("dd-application-key")
                .is_some_and(|k| k.starts_with("app-"));
        if !authorised {
            return json(403, r#"{"errors":["Forbidden"]}"#);
        }
        json(200, scalar(*rate.lock().unwrap()))
    })
    .await;
    secret(
        &ns,
        "datadog",
        &[
            ("api-key", "api-controller".into()),
            ("app-key", "app-controller".into()),
            ("address", dd.url()),
        ],
    )
    .await;
    ns.apply(&MANIFEST.replace("SECRET_REF", "")).await;
    let ro = wait_rollout(
        &ns,
        "checkout",
        "Healthy",
        Duration::from_secs(60),
        is_healthy,
    )
    .await;
    let v1 = stable_of(&ro);

    // Pass: 0.2% errors.
    set_image(&ns, "checkout", "checkout:v2").await;
    let ro = wait_rollout(
        &ns,
        "checkout",
        "Healthy on v2 after the Datadog analysis",
        Duration::from_secs(90),
        |ro, rss| is_healthy(ro, rss) && stable_of(ro) != v1,
    )
    .await;
    let v2 = stable_of(&ro);
    let rs = runs(&ns).await;
    assert_eq!(rs.len(), 1);
    let st = rs[0].status.clone().unwrap();
    assert_eq!(st.phase.as_deref(), Some("Successful"), "{st:?}");
    let result = &st.metric_results.unwrap()[0];
    assert_eq!(result.count, Some(2));
    let values: Vec<_> = result
        .measurements
        .iter()
        .flatten()
        .map(|m| m.value.clone().unwrap_or_default())
        .collect();
    assert_eq!(values, vec!["0.002", "0.002"]);
    let reqs = dd.requests();
    assert_eq!(reqs.len(), 2, "one query per measurement");
    let body = reqs[0].json();
    let q = &body["data"]["attributes"];
    assert_eq!(
        q["queries"][0]["query"],
        "sum:trace.http.request.errors{service:checkout}.as_count()"
    );
    assert_eq!(q["formulas"][0]["formula"], "a / b");
    assert_eq!(
        q["to"].as_i64().unwrap() - q["from"].as_i64().unwrap(),
        300_000
    );
    assert_eq!(reqs[0].header("dd-api-key"), Some("api-controller"));

    // Fail: 50% errors, with credentials from a Secret in the run's namespace this time.
    *error_rate.lock().unwrap() = 0.5;
    secret(
        &ns,
        "dd-team",
        &[
            ("api-key", "api-team".into()),
            ("app-key", "app-team".into()),
            ("address", dd.url()),
        ],
    )
    .await;
    let template = MANIFEST
        .split("\n---\n")
        .next()
        .unwrap()
        .replace("SECRET_REF", "secretRef: {name: dd-team, namespaced: true}");
    ns.apply(&template).await;
    dd.clear();
    set_image(&ns, "checkout", "checkout:v3").await;
    let ro = wait_rollout(
        &ns,
        "checkout",
        "aborted back to v2 by the failed Datadog analysis",
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
    assert_eq!(stable_of(&ro), v2);
    let msg = phase(&ro).1;
    assert!(msg.contains("RolloutAborted"), "{msg}");
    let rs = runs(&ns).await;
    assert_eq!(rs.len(), 2);
    let st = rs[1].status.clone().unwrap();
    assert_eq!(st.phase.as_deref(), Some("Failed"), "{st:?}");
    assert_eq!(
        st.metric_results.unwrap()[0].measurements.as_ref().unwrap()[0]
            .value
            .as_deref(),
        Some("0.5")
    );
    assert_eq!(dd.last().header("dd-api-key"), Some("api-team"));
    wait_events(&ns, "checkout", &["AnalysisRunFailed"]).await;
}
