//! Running in production, against the real API server: the chart's manifests (rendered by
//! Helm's engine) server-side dry-run applied; the controller process ([`rollouts::ops`]) run
//! as the chart's ServiceAccount (impersonation, RBAC on) through promotions, in cluster and
//! namespaced mode; leader election (one writer, failover after a crash, stopping at once on
//! loss); `/metrics`, `/healthz`, `/readyz`; and the examples of `examples/`.

#[path = "../helm/render.rs"]
pub(crate) mod render;

use crate::common::*;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, RoleBinding};
use kube::Api;
use kube::api::{ApiResource, DeleteParams, DynamicObject, ListParams, PostParams};
use kube::core::GroupVersionKind;
use rollouts::api::consts::LABEL_KEY_CONTROLLER_INSTANCE_ID;
use rollouts::controller::WriteCounters;
use rollouts::ops::leader::{LeaseConfig, Role};
use rollouts::ops::{self, Options, Process};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{OnceCell, oneshot, watch};

const LEASE: &str = "rollouts-controller-lock";

// ---------------------------------------------------------------------------------------------
// Helpers

static ISTIO_CRDS: OnceCell<()> = OnceCell::const_new();

async fn istio_crds() {
    ISTIO_CRDS
        .get_or_init(|| async {
            let client = testkit::client().await;
            let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/crds");
            testkit::install_crds(&client, &dir)
                .await
                .expect("installing tests/crds");
        })
        .await;
}

/// The Prometheus Operator's ServiceMonitor, reduced to what a dry-run of the chart's needs.
const SERVICE_MONITOR_CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: servicemonitors.monitoring.coreos.com}
spec:
  group: monitoring.coreos.com
  scope: Namespaced
  names: {kind: ServiceMonitor, listKind: ServiceMonitorList, plural: servicemonitors, singular: servicemonitor}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: {type: object, x-kubernetes-preserve-unknown-fields: true}
"#;

static SM_CRD: OnceCell<()> = OnceCell::const_new();

async fn service_monitor_crd() {
    SM_CRD
        .get_or_init(|| async {
            let client = testkit::client().await;
            testkit::apply_yaml(&client, None, SERVICE_MONITOR_CRD, false)
                .await
                .expect("installing the ServiceMonitor CRD");
            let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
                Api::all(client);
            for _ in 0..100 {
                let established = crds
                    .get("servicemonitors.monitoring.coreos.com")
                    .await
                    .ok()
                    .and_then(|c| c.status)
                    .and_then(|s| s.conditions)
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.type_ == "Established" && c.status == "True");
                if established {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            panic!("the ServiceMonitor CRD was not Established");
        })
        .await;
}

/// A kube config for the test cluster, optionally impersonating `user`.
async fn kube_config(impersonate: Option<String>) -> kube::Config {
    let kc = kube::config::Kubeconfig::read_from(&testkit::cluster().kubeconfig)
        .expect("reading the test kubeconfig");
    let mut c =
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await
            .expect("a config for the test cluster");
    c.auth_info.impersonate = impersonate;
    c
}

fn local() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// A namespaced controller's options for `ns` (its notification ConfigMap there too), with
/// metrics and health on free local ports.
fn local_options(ns: &str) -> Options {
    Options {
        namespace: Some(ns.to_string()),
        metrics_addr: local(),
        healthz_addr: local(),
        notifications: ops::NotificationOptions {
            namespace: ns.to_string(),
            ..Default::default()
        },
        ..Options::default()
    }
}

fn lease_config(ns: &str, identity: &str) -> LeaseConfig {
    LeaseConfig {
        name: LEASE.into(),
        namespace: ns.into(),
        identity: identity.into(),
        lease_duration: Duration::from_secs(3),
        renew_deadline: Duration::from_secs(2),
        retry_period: Duration::from_millis(500),
    }
}

/// A controller process running in this test's runtime.
struct Running {
    task: Option<tokio::task::JoinHandle<Result<(), ops::Error>>>,
    stop: Option<oneshot::Sender<()>>,
    writes: Arc<WriteCounters>,
    metrics: SocketAddr,
    health: SocketAddr,
    role: Option<watch::Receiver<Role>>,
}

async fn start(opts: Options, config: kube::Config) -> Running {
    let p = Process::bind(opts, config)
        .await
        .expect("starting the process");
    let writes = p.writes();
    let metrics = p.metrics_addr().expect("metrics address");
    let health = p.healthz_addr().expect("health address");
    let role = p.role();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(p.run(async move {
        let _ = rx.await;
    }));
    Running {
        task: Some(task),
        stop: Some(tx),
        writes,
        metrics,
        health,
        role,
    }
}

impl Running {
    fn role(&self) -> Role {
        self.role.as_ref().map_or(Role::Leader, |r| *r.borrow())
    }

    async fn wait_role(&self, want: Role, timeout: Duration) -> Instant {
        let mut rx = self.role.clone().expect("leader election on");
        let res = tokio::time::timeout(timeout, rx.wait_for(|r| *r == want)).await;
        assert!(
            matches!(res, Ok(Ok(_))),
            "role {want:?} not reached within {timeout:?} (now {:?})",
            self.role()
        );
        Instant::now()
    }

    /// Asks for a graceful stop and waits for the process to end.
    async fn shutdown(mut self) -> Result<(), ops::Error> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let task = self.task.take().expect("running");
        tokio::time::timeout(Duration::from_secs(30), task)
            .await
            .expect("the process did not stop within 30s")
            .expect("the process task panicked")
    }

    /// A crash: the task is aborted, nothing is released.
    fn kill(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }

    async fn get(&self, addr: SocketAddr, path: &str) -> (u16, String) {
        let res = reqwest::get(format!("http://{addr}{path}"))
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let status = res.status().as_u16();
        (status, res.text().await.unwrap_or_default())
    }

    async fn metrics_text(&self) -> String {
        let (status, body) = self.get(self.metrics, "/metrics").await;
        assert_eq!(status, 200, "/metrics: {body}");
        body
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The request counts of `/metrics` answered with `code`.
fn requests_with_status(metrics: &str, code: &str) -> Vec<String> {
    metrics
        .lines()
        .filter(|l| {
            l.starts_with("controller_clientset_k8s_request_total{")
                && l.contains(&format!("status_code=\"{code}\""))
        })
        .map(str::to_string)
        .collect()
}

/// Applies an example, labelling its Rollouts and AnalysisRuns with `instance_id`.
async fn apply_example(ns: &TestNs, path: &str, instance_id: Option<&str>) {
    for mut doc in testkit::yaml_documents(&example(path)).expect("example YAML") {
        if let Some(id) = instance_id
            && matches!(doc["kind"].as_str(), Some("Rollout" | "AnalysisRun"))
        {
            doc["metadata"]["labels"][LABEL_KEY_CONTROLLER_INSTANCE_ID] = json!(id);
        }
        testkit::apply_value(&ns.client, Some(&ns.name), doc, false)
            .await
            .unwrap_or_else(|e| panic!("applying {path}: {e:#}"));
    }
}

/// `set_image`, retried when a controller's write moved the Rollout on in between (the
/// command carries the resourceVersion it read).
async fn set_image_retrying(ns: &TestNs, name: &str, image: &str) {
    for _ in 0..20 {
        let ro = get_rollout(ns, name).await;
        let mut template =
            serde_json::to_value(ro.spec.template.clone().unwrap_or_default()).unwrap_or_default();
        template["spec"]["containers"][0]["image"] = json!(image);
        let patch = json!({"metadata": {"resourceVersion": ro.metadata.resource_version},
                           "spec": {"template": template}});
        match ns
            .api::<rollouts::api::Rollout>()
            .patch(
                name,
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(&patch),
            )
            .await
        {
            Ok(_) => return,
            Err(kube::Error::Api(e)) if e.code == 409 => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("setting the image: {e}"),
        }
    }
    panic!("setting the image: conflicts for 2s");
}

async fn svc_hash(ns: &TestNs, name: &str) -> String {
    ns.api::<Service>()
        .get(name)
        .await
        .ok()
        .and_then(|s| s.spec)
        .and_then(|s| s.selector)
        .and_then(|s| s.get("rollouts-pod-template-hash").cloned())
        .unwrap_or_default()
}

/// (canary, stable) weights of the VirtualService's first route.
async fn vs_weights(ns: &TestNs, vs: &str, canary: &str, stable: &str) -> (i64, i64) {
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("networking.istio.io", "v1alpha3", "VirtualService"),
        "virtualservices",
    );
    let api: Api<DynamicObject> = Api::namespaced_with(ns.client.clone(), &ns.name, &ar);
    let v = serde_json::to_value(api.get(vs).await.expect("reading the VirtualService"))
        .unwrap_or_default();
    let route = v["spec"]["http"][0]["route"].clone();
    let of = |host: &str| {
        route
            .as_array()
            .into_iter()
            .flatten()
            .find(|d| d["destination"]["host"] == host)
            .and_then(|d| d["weight"].as_i64())
            .unwrap_or(0)
    };
    (of(canary), of(stable))
}

fn paused_at(
    step: i32,
) -> impl Fn(&rollouts::api::Rollout, &[k8s_openapi::api::apps::v1::ReplicaSet]) -> bool {
    move |ro, _| {
        let (ph, msg, idx) = phase(ro);
        ph == "Paused" && msg == "CanaryPauseStep" && idx == Some(step)
    }
}

/// Healthy on the image `image`.
fn healthy_on(
    image: &'static str,
) -> impl Fn(&rollouts::api::Rollout, &[k8s_openapi::api::apps::v1::ReplicaSet]) -> bool {
    move |ro, rss| {
        is_healthy(ro, rss)
            && ro
                .spec
                .template
                .as_ref()
                .and_then(|t| t.spec.as_ref())
                .and_then(|s| s.containers.first())
                .and_then(|c| c.image.as_deref())
                == Some(image)
    }
}

/// Renders the chart for `release` in the test namespace and applies (for real) the objects
/// of `kinds` with the admin client. Returns the ServiceAccount's user name.
async fn install_rbac(ns: &TestNs, release: &str, values: &Value) -> String {
    let r = render::render(release, &ns.name, values);
    for o in r.objects() {
        let kind = o["kind"].as_str().unwrap_or_default();
        if matches!(
            kind,
            "ServiceAccount" | "ClusterRole" | "ClusterRoleBinding" | "Role" | "RoleBinding"
        ) {
            testkit::apply_value(&ns.client, Some(&ns.name), o.clone(), false)
                .await
                .unwrap_or_else(|e| panic!("applying the chart's {kind}: {e:#}"));
        }
    }
    let sa = r.one("ServiceAccount");
    format!(
        "system:serviceaccount:{}:{}",
        ns.name,
        sa["metadata"]["name"].as_str().unwrap_or_default()
    )
}

async fn remove_cluster_rbac(ns: &TestNs, name: &str) {
    let _ = Api::<ClusterRoleBinding>::all(ns.client.clone())
        .delete(name, &DeleteParams::default())
        .await;
    let _ = Api::<ClusterRole>::all(ns.client.clone())
        .delete(name, &DeleteParams::default())
        .await;
}

/// The impersonated client really is limited: what the chart does not grant is refused.
async fn assert_impersonation_is_limited(user: &str, ns: &str) {
    let client = kube::Client::try_from(kube_config(Some(user.to_string())).await)
        .expect("impersonating client");
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(client.clone(), ns);
    match secrets.list(&ListParams::default()).await {
        Err(kube::Error::Api(e)) if e.code == 403 => {}
        other => panic!("listing secrets as {user} should be forbidden, got {other:?}"),
    }
    let cms: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::namespaced(client, ns);
    match cms.list(&ListParams::default()).await {
        Err(kube::Error::Api(e)) if e.code == 403 => {}
        other => panic!("listing configmaps as {user} should be forbidden, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// The chart against the API server

/// Every manifest of the chart (default values; namespaced mode with a ServiceMonitor) and the
/// static install manifest pass a server-side dry-run apply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chart_manifests_pass_server_side_dry_run() {
    init_logging();
    crds_installed().await;
    service_monitor_crd().await;
    let ns = TestNs::new("ops-dry-run").await;
    let version = ns.client.apiserver_version().await.expect("server version");
    let minor: u32 = version.minor.trim_end_matches('+').parse().unwrap_or(99);
    // The chart picks the PDB's API from the server's version at install; rendered offline it
    // assumes a current server, so say which one this (1.20) is.
    let pdb_api = if minor < 21 {
        "policy/v1beta1"
    } else {
        "policy/v1"
    };
    for values in [
        json!({"podDisruptionBudget": {"apiVersion": pdb_api}}),
        json!({"podDisruptionBudget": {"apiVersion": pdb_api}, "namespaced": true,
               "instanceId": "a", "logFormat": "json",
               "metrics": {"serviceMonitor": {"enabled": true}},
               "dashboard": {"enabled": true, "readOnly": false}}),
        json!({"podDisruptionBudget": {"apiVersion": pdb_api}, "dashboard": {"enabled": true}}),
    ] {
        let r = render::render("dry", &ns.name, &values);
        let crd_texts: Vec<&String> = r.crds.values().collect();
        assert_eq!(crd_texts.len(), 5, "the chart ships the five CRDs");
        for text in crd_texts {
            testkit::apply_yaml(&ns.client, None, text, true)
                .await
                .unwrap_or_else(|e| panic!("dry-run of a chart CRD: {e:#}"));
        }
        let objects = r.objects();
        assert!(objects.len() >= 8, "{} objects rendered", objects.len());
        for o in objects {
            let what = format!("{} {}", o["kind"], o["metadata"]["name"]);
            testkit::apply_value(&ns.client, Some(&ns.name), o, true)
                .await
                .unwrap_or_else(|e| panic!("server-side dry-run of {what} ({values}): {e:#}"));
        }
    }
    // examples/install.yaml (its namespaced objects into this namespace).
    let text = example("examples/install.yaml");
    let mut text = text;
    if minor < 21 {
        text = text.replace("apiVersion: policy/v1\n", "apiVersion: policy/v1beta1\n");
    }
    for doc in testkit::yaml_documents(&text).expect("install.yaml") {
        let what = format!("{} {}", doc["kind"], doc["metadata"]["name"]);
        testkit::apply_value(&ns.client, Some(&ns.name), doc, true)
            .await
            .unwrap_or_else(|e| panic!("server-side dry-run of install.yaml's {what}: {e:#}"));
    }
}

// ---------------------------------------------------------------------------------------------
// RBAC: the controller as the chart's ServiceAccount

/// Cluster mode (the chart's ClusterRole), sharded by a unique instance id so that it only
/// touches this test's objects in the shared cluster: the basic canary example through a
/// promotion, a Job analysis with a Secret argument, leader election on the chart's Lease
/// Role; not a single request refused; `/metrics`, `/healthz`, `/readyz`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rbac_cluster_role_drives_canary_analysis_and_experiments_as_the_service_account() {
    init_logging();
    crds_installed().await;
    let ns = TestNs::new("ops-rbac").await;
    let release = ns.name.clone();
    let user = install_rbac(&ns, &release, &json!({})).await;
    let fullname = format!("{release}-rollouts");
    let fullname = fullname.chars().take(63).collect::<String>();
    let fullname = fullname.trim_end_matches('-').to_string();
    assert_impersonation_is_limited(&user, &ns.name).await;

    let instance_id = ns.name.clone();
    let opts = Options {
        namespace: None,
        instance_id: Some(instance_id.clone()),
        leader_election: Some(lease_config(&ns.name, "rbac-test")),
        ..local_options(&ns.name)
    };
    let proc = start(opts, kube_config(Some(user.clone())).await).await;
    proc.wait_role(Role::Leader, Duration::from_secs(10)).await;

    apply_example(&ns, "examples/basic-canary.yaml", Some(&instance_id)).await;
    let name = "basic-canary";
    wait_rollout(&ns, name, "Healthy", Duration::from_secs(60), is_healthy).await;
    set_image(&ns, name, "argoproj/rollouts-demo:yellow").await;
    let ro = wait_rollout(
        &ns,
        name,
        "paused at the first pause",
        Duration::from_secs(60),
        paused_at(1),
    )
    .await;
    let st = ro.status.clone().unwrap_or_default();
    let (stable, canary) = (
        st.stable_rs.clone().unwrap_or_default(),
        st.current_pod_hash.clone().unwrap_or_default(),
    );
    assert_ne!(stable, canary);
    assert_eq!(svc_hash(&ns, "basic-canary-stable").await, stable);
    assert_eq!(svc_hash(&ns, "basic-canary-canary").await, canary);
    promote(&ns, name).await;
    wait_rollout(
        &ns,
        name,
        "Healthy on yellow after promotion",
        Duration::from_secs(90),
        healthy_on("argoproj/rollouts-demo:yellow"),
    )
    .await;
    // The stable Service follows `status.stableRS` on the reconcile after the promotion.
    ns.wait_for(
        "stable Service on the promoted ReplicaSet",
        Duration::from_secs(20),
        || async { Ok((svc_hash(&ns, "basic-canary-stable").await == canary).then_some(())) },
    )
    .await;

    // A Job measurement with a Secret argument, as the AnalysisRun controller runs it.
    ns.apply(
        r#"
apiVersion: v1
kind: Secret
metadata: {name: smoke-token}
stringData: {token: s3cr3t}
"#,
    )
    .await;
    let run = json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisRun",
        "metadata": {"name": "smoke", "labels": {LABEL_KEY_CONTROLLER_INSTANCE_ID: instance_id}},
        "spec": {
            "args": [{"name": "token", "valueFrom": {"secretKeyRef": {"name": "smoke-token", "key": "token"}}}],
            "metrics": [{"name": "smoke", "provider": {"job": {"spec": {
                "backoffLimit": 0,
                "template": {"spec": {"restartPolicy": "Never", "containers": [{
                    "name": "smoke", "image": "busybox:1.36",
                    "command": ["sh", "-c", "test -n '{{args.token}}'"]}]}}}}}}]
        }
    });
    testkit::apply_value(&ns.client, Some(&ns.name), run, false)
        .await
        .expect("creating the AnalysisRun");
    let runs: Api<rollouts::api::AnalysisRun> = ns.api();
    let phase = ns
        .wait_for(
            "the Job analysis to complete",
            Duration::from_secs(60),
            || async {
                let r = runs.get("smoke").await?;
                let phase = r.status.and_then(|s| s.phase).unwrap_or_default();
                let done = matches!(
                    phase.as_str(),
                    "Successful" | "Failed" | "Error" | "Inconclusive"
                );
                Ok(done.then_some(phase))
            },
        )
        .await;
    assert_eq!(phase, "Successful", "{}", ns.diagnostics().await);

    // An Experiment with a template Service, run to its end by the Experiment controller.
    let ex = json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Experiment",
        "metadata": {"name": "rbac-exp", "labels": {LABEL_KEY_CONTROLLER_INSTANCE_ID: instance_id}},
        "spec": {"duration": "2s", "scaleDownDelaySeconds": 0, "templates": [{
            "name": "t", "service": {},
            "selector": {"matchLabels": {"app": "rbac-exp"}},
            "template": {"metadata": {"labels": {"app": "rbac-exp"}},
                "spec": {"containers": [{"name": "c", "image": "nginx:1.20",
                    "ports": [{"containerPort": 80}]}]}}}]}
    });
    testkit::apply_value(&ns.client, Some(&ns.name), ex, false)
        .await
        .expect("creating the Experiment");
    let experiments: Api<rollouts::api::Experiment> = ns.api();
    ns.wait_for(
        "the Experiment's Service",
        Duration::from_secs(60),
        || async { Ok(ns.api::<Service>().get_opt("rbac-exp-t").await?) },
    )
    .await;
    let phase = ns
        .wait_for("the Experiment to end", Duration::from_secs(60), || async {
            let e = experiments.get("rbac-exp").await?;
            let phase = e.status.and_then(|s| s.phase).unwrap_or_default();
            let done = matches!(phase.as_str(), "Successful" | "Failed" | "Error");
            Ok(done.then_some(phase))
        })
        .await;
    assert_eq!(phase, "Successful", "{}", ns.diagnostics().await);
    ns.wait_for(
        "the Experiment's Service deleted",
        Duration::from_secs(60),
        || async {
            let gone = ns.api::<Service>().get_opt("rbac-exp-t").await?.is_none();
            Ok(gone.then_some(()))
        },
    )
    .await;

    // A canary `experiment` step: the Rollout controller creates (and the Experiment
    // controller runs) its Experiment.
    let ro = json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": "rbac-step", "labels": {LABEL_KEY_CONTROLLER_INSTANCE_ID: instance_id}},
        "spec": {"replicas": 1,
            "selector": {"matchLabels": {"app": "rbac-step"}},
            "template": {"metadata": {"labels": {"app": "rbac-step"}},
                "spec": {"containers": [{"name": "c", "image": "nginx:1.20"}]}},
            "strategy": {"canary": {"steps": [
                {"experiment": {"duration": "2s", "templates": [{"name": "c", "specRef": "canary"}]}}]}}}
    });
    testkit::apply_value(&ns.client, Some(&ns.name), ro, false)
        .await
        .expect("creating the Rollout");
    wait_rollout(
        &ns,
        "rbac-step",
        "Healthy",
        Duration::from_secs(60),
        is_healthy,
    )
    .await;
    set_image(&ns, "rbac-step", "nginx:1.21").await;
    wait_rollout(
        &ns,
        "rbac-step",
        "Healthy on nginx:1.21 after its experiment step",
        Duration::from_secs(90),
        healthy_on("nginx:1.21"),
    )
    .await;
    let step_experiments: Vec<String> = experiments
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| {
            e.metadata
                .owner_references
                .iter()
                .flatten()
                .any(|o| o.name == "rbac-step")
        })
        .map(|e| e.status.and_then(|s| s.phase).unwrap_or_default())
        .collect();
    assert_eq!(step_experiments, vec!["Successful".to_string()]);

    // Observability.
    let (status, _) = proc.get(proc.health, "/healthz").await;
    assert_eq!(status, 200);
    let (status, body) = proc.get(proc.health, "/readyz").await;
    assert_eq!(status, 200, "/readyz: {body}");
    let text = proc.metrics_text().await;
    for want in [
        format!(
            "rollout_info{{namespace=\"{}\",name=\"basic-canary\",strategy=\"canary\",traffic_router=\"\",phase=\"Completed\"}} 1",
            ns.name
        ),
        format!("rollout_reconcile_count{{namespace=\"{}\",name=\"basic-canary\"}}", ns.name),
        format!(
            "rollout_phase{{namespace=\"{}\",name=\"basic-canary\",strategy=\"canary\",phase=\"Completed\"}} 1",
            ns.name
        ),
        format!(
            "analysis_run_info{{namespace=\"{}\",rollout=\"\",phase=\"Successful\"}} 1",
            ns.name
        ),
        format!(
            "analysis_run_metric_phase{{namespace=\"{}\",rollout=\"\",metric=\"smoke\",type=\"Job\",dry_run=\"false\",phase=\"Successful\"}} 1",
            ns.name
        ),
        "controller_clientset_k8s_request_total{kind=\"rollouts/status\",verb=\"patch\",status_code=\"200\"}".to_string(),
        "controller_clientset_k8s_request_total{kind=\"replicasets\",verb=\"create\",status_code=\"201\"}".to_string(),
        // The promoted canary's pods relabelled in place (the example's ephemeral metadata).
        "controller_clientset_k8s_request_total{kind=\"pods\",verb=\"patch\",status_code=\"200\"}".to_string(),
        "controller_clientset_k8s_request_total{kind=\"jobs\",verb=\"create\",status_code=\"201\"}".to_string(),
        format!("leader_election_master_status{{name=\"{LEASE}\"}} 1"),
    ] {
        assert!(text.contains(&want), "/metrics lacks {want}:\n{text}");
    }
    // Bounded labels: no ReplicaSet, run or pod names.
    assert!(!text.contains(&stable) && !text.contains(&canary) && !text.contains("\"smoke-"));
    let forbidden = requests_with_status(&text, "403");
    assert!(
        forbidden.is_empty(),
        "requests the chart's RBAC refused: {forbidden:#?}"
    );
    assert!(proc.writes.total() > 0);

    // A graceful stop hands the Lease back.
    proc.shutdown().await.expect("a clean stop");
    let lease = ns.api::<Lease>().get(LEASE).await.expect("the Lease");
    assert_eq!(
        lease
            .spec
            .and_then(|s| s.holder_identity)
            .unwrap_or_default(),
        "",
        "the Lease was not released"
    );
    remove_cluster_rbac(&ns, &fullname).await;
}

/// Namespaced mode (the chart's Role, no cluster-scoped RBAC): the Istio example through a
/// promotion, with the VirtualService's weights written at each step.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rbac_namespaced_role_drives_istio_canary_as_the_service_account() {
    init_logging();
    crds_installed().await;
    istio_crds().await;
    let ns = TestNs::new("ops-rbac-ns").await;
    let user = install_rbac(
        &ns,
        "rollouts",
        &json!({"namespaced": true, "leaderElection": {"enabled": false}}),
    )
    .await;
    assert_impersonation_is_limited(&user, &ns.name).await;
    let opts = local_options(&ns.name);
    let proc = start(opts, kube_config(Some(user)).await).await;
    apply_example(&ns, "examples/istio-canary.yaml", None).await;
    let name = "istio-canary";
    wait_rollout(&ns, name, "Healthy", Duration::from_secs(60), is_healthy).await;
    set_image(&ns, name, "argoproj/rollouts-demo:yellow").await;
    wait_rollout(
        &ns,
        name,
        "paused at 20%",
        Duration::from_secs(60),
        paused_at(1),
    )
    .await;
    ns.wait_for("weights 20/80", Duration::from_secs(20), || async {
        let w = vs_weights(&ns, name, "istio-canary-canary", "istio-canary-stable").await;
        Ok((w == (20, 80)).then_some(()))
    })
    .await;
    promote(&ns, name).await;
    wait_rollout(
        &ns,
        name,
        "Healthy on yellow",
        Duration::from_secs(90),
        healthy_on("argoproj/rollouts-demo:yellow"),
    )
    .await;
    ns.wait_for("weights back to 0/100", Duration::from_secs(20), || async {
        let w = vs_weights(&ns, name, "istio-canary-canary", "istio-canary-stable").await;
        Ok((w == (0, 100)).then_some(()))
    })
    .await;
    let text = proc.metrics_text().await;
    assert!(text.contains("traffic_router=\"Istio\""), "{text}");
    let forbidden = requests_with_status(&text, "403");
    assert!(
        forbidden.is_empty(),
        "requests the chart's Role refused: {forbidden:#?}"
    );
    proc.shutdown().await.expect("a clean stop");
}

// ---------------------------------------------------------------------------------------------
// Leader election

/// Two controllers on one Lease: only the holder writes; the holder crashes (its task aborted,
/// nothing released); the standby takes over no sooner than the lease allows and within lease
/// duration + retry period + a margin, and carries the next update.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_election_one_writer_then_failover_after_a_crash() {
    init_logging();
    crds_installed().await;
    let ns = TestNs::new("ops-leader").await;
    let config = |id: &str| Options {
        leader_election: Some(lease_config(&ns.name, id)),
        ..local_options(&ns.name)
    };
    let mut a = start(config("a"), kube_config(None).await).await;
    a.wait_role(Role::Leader, Duration::from_secs(10)).await;
    let b = start(config("b"), kube_config(None).await).await;
    b.wait_role(Role::Follower, Duration::from_secs(10)).await;

    apply_example(&ns, "examples/basic-canary.yaml", None).await;
    let name = "basic-canary";
    wait_rollout(&ns, name, "Healthy", Duration::from_secs(60), is_healthy).await;
    // Past the initial deploy, so that no write of `a` is in flight.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(a.writes.total() > 0, "the leader wrote nothing");
    assert_eq!(b.writes.total(), 0, "the standby wrote");
    assert_eq!(b.role(), Role::Follower);
    // Both are ready: the standby is what takes over.
    assert_eq!(a.get(a.health, "/readyz").await.0, 200);
    assert_eq!(b.get(b.health, "/readyz").await.0, 200);
    assert!(b.metrics_text().await.contains(&format!(
        "leader_election_master_status{{name=\"{LEASE}\"}} 0"
    )));
    let transitions_before = ns
        .api::<Lease>()
        .get(LEASE)
        .await
        .expect("the Lease")
        .spec
        .and_then(|s| s.lease_transitions)
        .unwrap_or(0);

    // Crash the leader.
    let a_writes = a.writes.total();
    let crashed = Instant::now();
    a.kill();
    // A generous wait (the lease lasts 3 s); how fast it happens is a figure, printed here and
    // measured by `cargo bench --bench controller`, not asserted.
    let took_over = b.wait_role(Role::Leader, Duration::from_secs(30)).await;
    let after = took_over - crashed;
    eprintln!("the standby took over {after:?} after the leader crashed");
    let lease = lease_config(&ns.name, "b");
    // Safety, not speed: the standby only acts once the lease expired, at least lease
    // duration after the holder's last renewal, which started at most one retry period (plus
    // the request's latency) before the crash. Load only makes this later.
    assert!(
        after + lease.retry_period + Duration::from_millis(400) >= lease.lease_duration,
        "took over after {after:?}: before the lease expired"
    );
    let l = ns.api::<Lease>().get(LEASE).await.expect("the Lease");
    let spec = l.spec.unwrap_or_default();
    assert_eq!(spec.holder_identity.as_deref(), Some("b"));
    assert_eq!(spec.lease_transitions, Some(transitions_before + 1));

    // The new leader carries the next update; the crashed one wrote nothing more.
    set_image_retrying(&ns, name, "argoproj/rollouts-demo:yellow").await;
    wait_rollout(
        &ns,
        name,
        "paused by the new leader",
        Duration::from_secs(60),
        paused_at(1),
    )
    .await;
    assert!(b.writes.total() > 0);
    assert_eq!(a.writes.total(), a_writes);
    b.shutdown().await.expect("a clean stop");
}

/// The Lease is renewed on a client of its own: a leader whose controllers' requests queue at
/// a tiny rate limit (1 request a second, while starting the watches and deploying a Rollout
/// takes dozens) still renews every retry period and keeps the Lease. On the shared client
/// each renewal waited its turn in the bucket, past the 2 s renew deadline, and the leader
/// stepped down (found by `cargo xtask chaos` with 50 Rollouts starting at once).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_keeps_the_lease_while_its_requests_queue_at_the_rate_limit() {
    init_logging();
    crds_installed().await;
    let ns = TestNs::new("ops-lease-qps").await;
    apply_example(&ns, "examples/basic-canary.yaml", None).await;
    let opts = Options {
        leader_election: Some(lease_config(&ns.name, "throttled")),
        qps: 1.0,
        burst: 1,
        ..local_options(&ns.name)
    };
    let a = start(opts, kube_config(None).await).await;
    a.wait_role(Role::Leader, Duration::from_secs(10)).await;
    // Four renew deadlines long.
    let mut role = a.role.clone().expect("leader election on");
    let stepped_down = tokio::time::timeout(
        Duration::from_secs(8),
        role.wait_for(|r| *r != Role::Leader),
    )
    .await;
    assert!(
        stepped_down.is_err(),
        "the leader stepped down while its requests queued at the rate limit (now {:?})",
        a.role()
    );
    let lease = ns.api::<Lease>().get(LEASE).await.expect("the Lease");
    assert_eq!(
        lease.spec.and_then(|s| s.holder_identity).as_deref(),
        Some("throttled")
    );
    // The controllers do their work meanwhile, at their pace (at 1 request a second the
    // watches' initial lists come first, so the first write may take a while on a loaded
    // machine), and the leader stays the leader throughout.
    let started = std::time::Instant::now();
    while a.writes.total() == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "the leader wrote nothing in 98 s"
        );
        assert_eq!(a.role(), Role::Leader, "the leader stepped down");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(a.role(), Role::Leader, "the leader stepped down");
    a.shutdown().await.expect("a clean stop");
}

/// The holder stops acting at once when it learns another holder took the Lease (here an
/// intruder overwriting it), and when it cannot renew within the renew deadline (here its
/// permission on the Lease revoked).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_stops_at_once_when_the_lease_is_lost() {
    init_logging();
    crds_installed().await;
    let ns = TestNs::new("ops-lease-loss").await;
    let opts = Options {
        leader_election: Some(lease_config(&ns.name, "holder")),
        ..local_options(&ns.name)
    };
    let mut a = start(opts, kube_config(None).await).await;
    a.wait_role(Role::Leader, Duration::from_secs(10)).await;
    apply_example(&ns, "examples/basic-canary.yaml", None).await;
    let name = "basic-canary";
    wait_rollout(&ns, name, "Healthy", Duration::from_secs(60), is_healthy).await;

    // Someone else holds the Lease now (retried: the holder renews every 500 ms).
    let leases = ns.api::<Lease>();
    let mut stolen = None;
    for _ in 0..50 {
        let mut l = leases.get(LEASE).await.expect("the Lease");
        if let Some(spec) = l.spec.as_mut() {
            spec.holder_identity = Some("intruder".into());
            spec.lease_duration_seconds = Some(60);
            spec.renew_time = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(
                k8s_openapi::jiff::Timestamp::now(),
            ));
        }
        match leases.replace(LEASE, &PostParams::default(), &l).await {
            Ok(_) => {
                stolen = Some(Instant::now());
                break;
            }
            Err(kube::Error::Api(e)) if e.code == 409 => continue,
            Err(e) => panic!("taking the Lease over: {e}"),
        }
    }
    let stolen = stolen.expect("the Lease could not be taken over");
    let task = a.task.take().expect("running");
    // A generous wait: it stops at its next renewal (every 500 ms); the figure is printed.
    let res = tokio::time::timeout(Duration::from_secs(20), task)
        .await
        .expect("the leader kept running 20 s after losing the Lease")
        .expect("the process task panicked");
    let stopped = stolen.elapsed();
    eprintln!("the leader stopped {stopped:?} after the Lease was taken");
    assert!(
        matches!(res, Err(ops::Error::LostLease(_))),
        "ended with {res:?}"
    );
    let writes = a.writes.total();
    set_image_retrying(&ns, name, "argoproj/rollouts-demo:yellow").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(a.writes.total(), writes, "wrote after losing the Lease");
    let ro = get_rollout(&ns, name).await;
    assert_eq!(
        replica_sets(&ns, &ro).await.len(),
        1,
        "a ReplicaSet was created after the Lease was lost"
    );

    // Renewals failing: the chart's RBAC, then the Lease permission revoked mid-term.
    let ns2 = TestNs::new("ops-lease-deadline").await;
    let user = install_rbac(&ns2, "rollouts", &json!({"namespaced": true})).await;
    let opts = Options {
        namespace: Some(ns2.name.clone()),
        leader_election: Some(lease_config(&ns2.name, "holder")),
        ..local_options(&ns.name)
    };
    let mut p = start(opts, kube_config(Some(user)).await).await;
    p.wait_role(Role::Leader, Duration::from_secs(10)).await;
    Api::<RoleBinding>::namespaced(ns2.client.clone(), &ns2.name)
        .delete("rollouts-leader-election", &DeleteParams::default())
        .await
        .expect("revoking the Lease permission");
    let revoked = Instant::now();
    let task = p.task.take().expect("running");
    // A generous wait: it stops once the renew deadline (2 s) has passed since its last
    // successful renewal; the figure is printed.
    let res = tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .expect("the leader kept running 30 s without renewing")
        .expect("the process task panicked");
    let stopped = revoked.elapsed();
    eprintln!("the leader stopped {stopped:?} after its renewals started failing");
    assert!(
        matches!(res, Err(ops::Error::LostLease(_))),
        "ended with {res:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// The examples (the canary-demo one is `canary::seeds_scenario_update_pause_promote_complete`;
// basic-canary and istio-canary run above as the chart's ServiceAccount)

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn example_blue_green_promotes() {
    let (ns, _ctl) = setup("ops-ex-bg").await;
    let name = "blue-green";
    ns.apply(&example("examples/blue-green.yaml")).await;
    let ro = wait_rollout(&ns, name, "Healthy", Duration::from_secs(60), is_healthy).await;
    let v1 = ro.status.and_then(|s| s.stable_rs).unwrap_or_default();
    assert_eq!(svc_hash(&ns, "blue-green-active").await, v1);
    set_image(&ns, name, "argoproj/rollouts-demo:green").await;
    let ro = wait_rollout(
        &ns,
        name,
        "paused before promotion",
        Duration::from_secs(60),
        |ro, _| {
            let (ph, msg, _) = phase(ro);
            ph == "Paused" && msg == "BlueGreenPause"
        },
    )
    .await;
    let v2 = ro
        .status
        .and_then(|s| s.current_pod_hash)
        .unwrap_or_default();
    assert_eq!(svc_hash(&ns, "blue-green-preview").await, v2);
    assert_eq!(svc_hash(&ns, "blue-green-active").await, v1);
    promote(&ns, name).await;
    wait_rollout(&ns, name, "promoted", Duration::from_secs(60), |ro, _| {
        ro.status.as_ref().and_then(|s| s.stable_rs.as_deref()) == Some(v2.as_str())
    })
    .await;
    assert_eq!(svc_hash(&ns, "blue-green-active").await, v2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn example_basic_canary_is_healthy_with_the_default_controller() {
    let (ns, _ctl) = setup("ops-ex-basic").await;
    ns.apply(&example("examples/basic-canary.yaml")).await;
    wait_rollout(
        &ns,
        "basic-canary",
        "Healthy",
        Duration::from_secs(60),
        is_healthy,
    )
    .await;
}

/// The Prometheus analysis example: accepted by the API server (dry-run, every object) and by
/// the controller's validation and lint; it deploys and becomes Healthy (the first deploy runs
/// no analysis).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn example_canary_analysis_prometheus_validates() {
    let (ns, _ctl) = setup("ops-ex-analysis").await;
    let path = "examples/canary-analysis-prometheus.yaml";
    let text = example(path);
    testkit::apply_yaml(&ns.client, Some(&ns.name), &text, true)
        .await
        .unwrap_or_else(|e| panic!("server-side dry-run of {path}: {e:#}"));
    for doc in testkit::yaml_documents(&text).expect("YAML") {
        if doc["kind"] == "Rollout" {
            let ro: rollouts::api::Rollout =
                serde_json::from_value(doc.clone()).expect("a Rollout");
            let errors = rollouts::plan::validate::validate_rollout(&ro);
            assert!(errors.is_empty(), "{errors:?}");
        }
        if doc["kind"] == "AnalysisTemplate" {
            let _: rollouts::api::AnalysisTemplate =
                serde_json::from_value(doc).expect("an AnalysisTemplate");
        }
    }
    let problems = rollouts::cli::lint::lint(&text, path).expect("lint");
    let errors: Vec<&String> = problems.iter().flat_map(|p| p.errors.iter()).collect();
    assert!(errors.is_empty(), "{errors:?}");
    ns.apply(&text).await;
    wait_rollout(
        &ns,
        "analysis-canary",
        "Healthy",
        Duration::from_secs(60),
        is_healthy,
    )
    .await;
}

/// Notifications across a leader crash: two replicas with leader election, Slack subscriptions
/// on the seed canary; the leader is killed in the middle of the update and the standby takes
/// over: every message arrives exactly once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_once_each_across_a_leader_crash() {
    use crate::notify::{
        SUBSCRIPTIONS, expected_sequence, fake_slack, settings, settle, subscribed_canary, texts,
        wait_for_first_timed_pause_messages,
    };
    init_logging();
    crds_installed().await;
    let ns = TestNs::new("ops-notify").await;
    let slack = fake_slack().await;
    ns.apply(&settings(&slack)).await;
    let config = |id: &str| Options {
        leader_election: Some(lease_config(&ns.name, id)),
        ..local_options(&ns.name)
    };
    let mut a = start(config("a"), kube_config(None).await).await;
    a.wait_role(Role::Leader, Duration::from_secs(10)).await;
    let b = start(config("b"), kube_config(None).await).await;
    b.wait_role(Role::Follower, Duration::from_secs(10)).await;
    ns.apply(&subscribed_canary(SUBSCRIPTIONS)).await;
    let name = "canary-demo";
    wait_rollout(&ns, name, "Healthy", Duration::from_secs(60), is_healthy).await;
    set_image_retrying(&ns, name, "argoproj/rollouts-demo:yellow").await;
    wait_rollout(&ns, name, "paused", Duration::from_secs(60), paused_at(1)).await;
    promote(&ns, name).await;
    wait_rollout(
        &ns,
        name,
        "in the first timed pause",
        Duration::from_secs(60),
        |ro, _| phase(ro).2 == Some(3),
    )
    .await;
    wait_for_first_timed_pause_messages(&ns, &slack).await;
    a.kill();
    b.wait_role(Role::Leader, Duration::from_secs(10)).await;
    wait_rollout(
        &ns,
        name,
        "Healthy on the new image",
        Duration::from_secs(120),
        |ro, rss| is_healthy(ro, rss) && phase(ro).2 == Some(8),
    )
    .await;
    let expected = expected_sequence();
    assert_eq!(texts(&settle(&ns, &slack, expected.len()).await), expected);
    b.shutdown().await.expect("a clean stop");
}

/// The controllers' event publisher against the API server: a new event is an
/// `events.k8s.io/v1` Event named and filled as kube's recorder names and fills it; the same
/// event again is the next count of its series on that object (not a new object); another
/// action or another object is an event of its own.
#[tokio::test]
async fn repeated_events_become_a_series_on_the_first_event() {
    use k8s_openapi::api::core::v1::{ConfigMap, ObjectReference};
    use k8s_openapi::api::events::v1::Event as K8sEvent;
    use kube::runtime::events::{Event, EventType, Reporter};
    let ns = TestNs::new("event-series").await;
    let reference = |name: &str| ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("ConfigMap".into()),
        namespace: Some(ns.name.clone()),
        name: Some(name.into()),
        ..Default::default()
    };
    for name in ["a", "b"] {
        ns.api::<ConfigMap>()
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({"metadata": {"name": name}})).unwrap(),
            )
            .await
            .unwrap();
    }
    let recorder = rollouts::events::Recorder::new(
        ns.client.clone(),
        Reporter {
            controller: "rollouts-controller".into(),
            instance: Some("pod-1".into()),
        },
    );
    let ev = |action: &str| Event {
        type_: EventType::Warning,
        reason: "Testing".into(),
        note: Some(format!("note of {action}")),
        action: action.into(),
        secondary: None,
    };
    // Queued: published in order by the recorder's task, off the caller's path.
    for _ in 0..3 {
        recorder.publish(ev("one"), &reference("a")).await;
    }
    recorder.publish(ev("two"), &reference("a")).await;
    recorder.publish(ev("one"), &reference("b")).await;
    let expected = vec![
        ("a".to_string(), "one".to_string(), Some(3)),
        ("a".to_string(), "two".to_string(), None),
        ("b".to_string(), "one".to_string(), None),
    ];
    let events = ns
        .wait_for(
            "the events and their series",
            Duration::from_secs(30),
            || async {
                let mut events = ns
                    .api::<K8sEvent>()
                    .list(&ListParams::default())
                    .await?
                    .items;
                events.sort_by_key(|e| e.event_time.clone().map(|t| t.0));
                let summary: Vec<(String, String, Option<i32>)> = events
                    .iter()
                    .map(|e| {
                        (
                            e.regarding
                                .as_ref()
                                .and_then(|r| r.name.clone())
                                .unwrap_or_default(),
                            e.action.clone().unwrap_or_default(),
                            e.series.as_ref().map(|s| s.count),
                        )
                    })
                    .collect();
                Ok((summary == expected).then_some(events))
            },
        )
        .await;
    let first = &events[0];
    assert!(first.metadata.name.as_deref().unwrap().starts_with("a."));
    assert_eq!(first.type_.as_deref(), Some("Warning"));
    assert_eq!(first.reason.as_deref(), Some("Testing"));
    assert_eq!(first.note.as_deref(), Some("note of one"));
    assert_eq!(
        first.reporting_controller.as_deref(),
        Some("rollouts-controller")
    );
    assert_eq!(first.reporting_instance.as_deref(), Some("pod-1"));
    let series = first.series.as_ref().unwrap();
    assert!(series.last_observed_time.0 >= first.event_time.as_ref().unwrap().0);
}
