//! Request-level tests: a whole reconcile against a mocked API service (as kube-rs's
//! controller-rs does with `tower-test`), checking the exact requests a canonical plan sends.

use super::*;
use http::{Request, Response};
use kube::client::Body;
use kube::runtime::watcher::Event;
use serde_json::json;

/// One request the controller sent.
#[derive(Debug)]
struct Sent {
    method: String,
    path: String,
    content_type: String,
    body: Value,
}

use serde_json::Value;

/// Answers every request like a permissive API server (echoing the object, with a new
/// resourceVersion: 2, 3, ...) and records it.
async fn serve(
    mut handle: tower_test::mock::Handle<Request<Body>, Response<Body>>,
    sent: Arc<Mutex<Vec<Sent>>>,
    rollout: Value,
) {
    let mut version = 1;
    while let Some((req, respond)) = handle.next_request().await {
        version += 1;
        let method = req.method().to_string();
        let path = req.uri().path().to_string();
        let content_type = req
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let bytes = req.into_body().collect_bytes().await.unwrap();
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let answer = if path.contains("/rollouts/") {
            let mut ro = rollout.clone();
            ro["metadata"]["resourceVersion"] = json!(version.to_string());
            ro
        } else {
            let mut obj = body.clone();
            if obj.is_object() {
                obj["metadata"]["resourceVersion"] = json!(version.to_string());
            }
            obj
        };
        sent.lock().unwrap().push(Sent {
            method,
            path,
            content_type,
            body,
        });
        let code = if answer.get("metadata").is_some() {
            200
        } else {
            201
        };
        respond.send_response(
            Response::builder()
                .status(code)
                .body(Body::from(serde_json::to_vec(&answer).unwrap()))
                .unwrap(),
        );
    }
}

fn rollout_json() -> Value {
    json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "web", "namespace": "ns", "uid": "ro-uid", "resourceVersion": "1",
                     "generation": 1, "annotations": {"rollout.argoproj.io/revision": "1"}},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                         "spec": {"containers": [{"name": "web", "image": "nginx:1"}]}},
            "strategy": {"canary": {"steps": [{"setWeight": 50}, {"pause": {}}]}}
        }
    })
}

/// A Context over the mocked service, with stores holding `replica_sets` (listed).
fn context(client: Client, replica_sets: Vec<ReplicaSet>) -> Arc<Context> {
    let replica_sets: Vec<Compact<ReplicaSet>> = replica_sets.iter().map(Compact::new).collect();
    fn listed<K>(items: Vec<K>) -> Store<K>
    where
        K: kube::runtime::reflector::Lookup + Clone + 'static,
        K::DynamicType: Eq + std::hash::Hash + Clone + Default,
    {
        let (reader, mut writer) = reflector::store::<K>();
        writer.apply_watcher_event(&Event::Init);
        for i in items {
            writer.apply_watcher_event(&Event::InitApply(i));
        }
        writer.apply_watcher_event(&Event::InitDone);
        reader
    }
    /// The by-owner index of `items`, fed as the store is.
    fn by_owner<K>(items: &[K]) -> super::index::Index<K, String>
    where
        K: kube::runtime::reflector::Lookup + kube::Resource + Clone + 'static,
        <K as kube::runtime::reflector::Lookup>::DynamicType:
            Eq + std::hash::Hash + Clone + Default,
    {
        let index = super::index::Index::new(super::controller_uids::<K>);
        index.apply(&Event::Init);
        for i in items {
            index.apply(&Event::InitApply(i.clone()));
        }
        index.apply(&Event::InitDone);
        index
    }
    let (traffic, _changes) = traffic::TrafficStores::new(client.clone(), Some("ns".into()));
    Arc::new(Context {
        client: client.clone(),
        replica_sets_by_owner: by_owner(&replica_sets),
        replica_sets: listed(replica_sets),
        services: listed(vec![]),
        recorder: Recorder::new(
            client,
            Reporter {
                controller: FIELD_MANAGER.into(),
                instance: None,
            },
        ),
        writes: Arc::new(WriteCounters::default()),
        traffic,
        analysis_runs: listed(vec![]),
        experiments: listed(vec![]),
        analysis_runs_by_owner: by_owner::<crate::api::AnalysisRun>(&[]),
        analysis_templates: listed(vec![]),
        cluster_analysis_templates: listed(vec![]),
        cluster_templates_watched: false,
        observer: None,
        notifier: None,
        written_from: Mutex::new(HashMap::new()),
        failures: Mutex::new(HashMap::new()),
        waits: Mutex::new(HashMap::new()),
    })
}

/// Runs one reconcile of `rollout` against the mock; returns the requests, events left out.
async fn reconcile_once(rollout: Value, replica_sets: Vec<ReplicaSet>) -> (Action, Vec<Sent>) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(service, "ns");
    let sent = Arc::new(Mutex::new(Vec::new()));
    let server = tokio::spawn(serve(handle, sent.clone(), rollout.clone()));
    let ro: Rollout = serde_json::from_value(rollout).unwrap();
    let action = reconcile_in(&context(client, replica_sets), &ro).await;
    server.abort();
    (action, take_writes(&sent))
}

/// One reconcile of `ro` with `ctx` (within 10 s, and successful).
async fn reconcile_in(ctx: &Arc<Context>, ro: &Rollout) -> Action {
    tokio::time::timeout(
        Duration::from_secs(10),
        reconcile(Arc::new(Compact::new(ro)), ctx.clone()),
    )
    .await
    .expect("the reconcile finishes")
    .expect("the reconcile succeeds")
}

/// The requests sent so far, events left out (taken: the record starts over).
fn take_writes(sent: &Mutex<Vec<Sent>>) -> Vec<Sent> {
    std::mem::take(&mut *sent.lock().unwrap())
        .into_iter()
        .filter(|s| !s.path.contains("/events"))
        .collect()
}

/// A Rollout that is stable on its first template, as JSON, and its ReplicaSet (the one a
/// first reconcile creates, with 3 available pods).
async fn stable_rollout() -> (Value, ReplicaSet) {
    let (_, first) = reconcile_once(rollout_json(), vec![]).await;
    let mut rs: ReplicaSet = serde_json::from_value(first[0].body.clone()).unwrap();
    let hash = rs.labels()["rollouts-pod-template-hash"].clone();
    rs.metadata.namespace = Some("ns".into());
    rs.metadata.uid = Some("rs-uid".into());
    rs.status = Some(k8s_openapi::api::apps::v1::ReplicaSetStatus {
        replicas: 3,
        ready_replicas: Some(3),
        available_replicas: Some(3),
        observed_generation: Some(1),
        ..Default::default()
    });
    let mut ro = rollout_json();
    ro["status"] = json!({
        "currentPodHash": hash, "stableRS": hash, "observedGeneration": "1",
        "currentStepIndex": 2, "currentStepHash": "x", "replicas": 3, "availableReplicas": 3,
        "updatedReplicas": 3, "readyReplicas": 3,
    });
    (ro, rs)
}

#[tokio::test]
async fn a_new_rollout_creates_its_replica_set_then_patches_its_status() {
    let (_, sent) = reconcile_once(rollout_json(), vec![]).await;
    let summary: Vec<(&str, &str)> = sent
        .iter()
        .map(|s| (s.method.as_str(), s.path.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            ("POST", "/apis/apps/v1/namespaces/ns/replicasets"),
            (
                "PATCH",
                "/apis/argoproj.io/v1alpha1/namespaces/ns/rollouts/web/status"
            ),
        ],
        "{sent:#?}"
    );
    let rs = &sent[0].body;
    let hash = rs["metadata"]["labels"]["rollouts-pod-template-hash"]
        .as_str()
        .expect("the pod-template-hash label");
    assert_eq!(rs["metadata"]["name"], format!("web-{hash}"));
    assert_eq!(rs["spec"]["replicas"], 3, "no stable yet: every replica");
    assert_eq!(rs["metadata"]["ownerReferences"][0]["uid"], "ro-uid");
    assert_eq!(rs["metadata"]["ownerReferences"][0]["controller"], true);
    assert_eq!(
        rs["spec"]["selector"]["matchLabels"],
        json!({"app": "web", "rollouts-pod-template-hash": hash})
    );
    let status = &sent[1];
    assert_eq!(status.content_type, "application/merge-patch+json");
    assert_eq!(
        status.body["metadata"],
        json!({"resourceVersion": "1"}),
        "the status patch carries the resourceVersion it was planned from"
    );
    assert_eq!(status.body["status"]["currentPodHash"], hash);
    assert_eq!(status.body["status"]["observedGeneration"], "1");
}

#[tokio::test]
async fn a_scale_is_one_merge_patch_of_replicas() {
    // The Rollout's ReplicaSet exists (stable, done), and the Rollout now wants 5 pods.
    let (mut ro, rs) = stable_rollout().await;
    let hash = rs.labels()["rollouts-pod-template-hash"].clone();
    ro["spec"]["replicas"] = json!(5);
    let (_, sent) = reconcile_once(ro, vec![rs]).await;
    let rs_patches: Vec<&Sent> = sent
        .iter()
        .filter(|s| s.path.contains("/replicasets/"))
        .collect();
    assert_eq!(rs_patches.len(), 1, "{sent:#?}");
    let patch = rs_patches[0];
    assert_eq!(patch.method, "PATCH");
    assert_eq!(
        patch.path,
        format!("/apis/apps/v1/namespaces/ns/replicasets/web-{hash}")
    );
    assert_eq!(patch.content_type, "application/merge-patch+json");
    assert_eq!(
        patch.body,
        json!({"metadata": {"annotations": {"rollout.argoproj.io/desired-replicas": "5"}},
               "spec": {"replicas": 5}})
    );
    let last = sent.last().unwrap();
    assert!(last.path.ends_with("/rollouts/web/status"), "{sent:#?}");
    assert_eq!(last.body["metadata"]["resourceVersion"], "1");
}

#[tokio::test]
async fn a_reconcile_after_our_writes_waits_for_the_last_one_not_one_in_between() {
    // A stable Rollout whose template then changes: one reconcile creates the ReplicaSet,
    // sets the revision annotation (version 3) and writes the status (version 4).
    let (mut ro, rs) = stable_rollout().await;
    ro["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:2");
    ro["metadata"]["generation"] = json!(2);
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let sent = Arc::new(Mutex::new(Vec::new()));
    let server = tokio::spawn(serve(handle, sent.clone(), ro.clone()));
    let ctx = context(Client::new(service, "ns"), vec![rs]);
    let at = |version: &str| {
        let mut o: Rollout = serde_json::from_value(ro.clone()).unwrap();
        o.metadata.resource_version = Some(version.into());
        o
    };
    reconcile_in(&ctx, &at("1")).await;
    let writes: Vec<(String, String)> = take_writes(&sent)
        .into_iter()
        .map(|s| (s.method, s.path))
        .collect();
    let rollout = "/apis/argoproj.io/v1alpha1/namespaces/ns/rollouts/web";
    assert_eq!(
        writes,
        [
            (
                "POST".into(),
                "/apis/apps/v1/namespaces/ns/replicasets".into()
            ),
            ("PATCH".into(), rollout.into()),
            ("PATCH".into(), format!("{rollout}/status")),
        ],
        "the reset status and the new ReplicaSet in one reconcile"
    );
    // The store shows the version we read, then the one between our two writes: both are
    // behind our last write, so nothing is planned from them.
    for behind in ["1", "3"] {
        assert_eq!(
            reconcile_in(&ctx, &at(behind)).await,
            Action::await_change(),
            "{behind}"
        );
    }
    assert_eq!(
        take_writes(&sent).len(),
        0,
        "no write planned from a version behind ours"
    );
    // Our last write (version 4) arrived: planning goes on from it.
    reconcile_in(&ctx, &at("4")).await;
    assert!(
        !take_writes(&sent).is_empty(),
        "planned from the latest version"
    );
    server.abort();
}
