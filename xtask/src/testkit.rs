//! Integration-test harness: one local control plane per test process, one namespace per test.
//!
//! [`cluster()`] starts the control plane (and the pod simulator) the first time a test asks for
//! it, on a dedicated thread that lives as long as the test process; the processes die with it.
//! Set `ROLLOUTS_TEST_KUBECONFIG` to use an already running cluster (with its pod simulator)
//! instead. A control plane that cannot start fails the test: integration tests never skip.

use crate::cluster::{Binaries, ControlPlane, Mode, client_for};
use crate::podsim;
use anyhow::{Context, Result, anyhow, bail};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::GroupVersionKind;
use kube::discovery::{ApiCapabilities, ApiResource, Scope};
use kube::{Api, Client, ResourceExt};
use serde_json::Value;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The field manager the harness applies test objects with.
pub const TEST_MANAGER: &str = "rollouts-test";

/// A running cluster the tests talk to.
#[derive(Debug, Clone)]
pub struct TestCluster {
    pub kubeconfig: PathBuf,
    pub kubectl: Option<PathBuf>,
}

static CLUSTER: OnceLock<Result<TestCluster, anyhow::Error>> = OnceLock::new();

/// The shared cluster of this test process, started on first use. Panics (failing the test) with
/// the reason when the control plane cannot start.
pub fn cluster() -> &'static TestCluster {
    match CLUSTER.get_or_init(start_shared) {
        Ok(c) => c,
        Err(e) => panic!("the local control plane could not start: {e:#}"),
    }
}

fn start_shared() -> Result<TestCluster> {
    if let Some(kc) = std::env::var_os("ROLLOUTS_TEST_KUBECONFIG") {
        let kubectl = Binaries::locate().and_then(|b| b.kubectl);
        return Ok(TestCluster {
            kubeconfig: PathBuf::from(kc),
            kubectl,
        });
    }
    let binaries = Binaries::ensure()?;
    let base = if Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    clean_stale_dirs(&base);
    let dir = base.join(format!("rollouts-test-{}", std::process::id()));
    let (tx, rx) = std::sync::mpsc::channel::<Result<TestCluster>>();
    std::thread::Builder::new()
        .name("rollouts-test-cluster".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = tx.send(Err(e.into()));
                    return;
                }
            };
            rt.block_on(async move {
                let started = Instant::now();
                let cp = match ControlPlane::start(binaries.clone(), &dir, Mode::Attached).await {
                    Ok(cp) => cp,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                };
                let client = match cp.client().await {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                };
                if let Err(e) = podsim::ensure_node(&client).await {
                    let _ = tx.send(Err(e.context("registering the simulated node")));
                    return;
                }
                let sim = tokio::spawn(podsim::run(client, podsim::SimOptions::default()));
                eprintln!(
                    "local control plane up in {:.1}s: KUBECONFIG={}",
                    started.elapsed().as_secs_f64(),
                    cp.kubeconfig.display()
                );
                let _ = tx.send(Ok(TestCluster {
                    kubeconfig: cp.kubeconfig.clone(),
                    kubectl: binaries.kubectl.clone(),
                }));
                // Live as long as the process: the children die with this thread.
                let res = sim.await;
                eprintln!("pod simulator stopped: {res:?}");
                futures::future::pending::<()>().await;
                drop(cp);
            });
        })?;
    rx.recv()
        .map_err(|_| anyhow!("the control-plane thread died"))?
}

/// Removes `rollouts-test-<pid>` directories of processes that are gone.
fn clean_stale_dirs(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if let Some(pid) = name
            .strip_prefix("rollouts-test-")
            .and_then(|p| p.parse::<u32>().ok())
            && !Path::new(&format!("/proc/{pid}")).exists()
        {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// A fresh client for the shared cluster (one per test: clients do not outlive their runtime).
pub async fn client() -> Client {
    client_for(&cluster().kubeconfig)
        .await
        .expect("building a client for the local control plane")
}

static NS_COUNTER: AtomicU32 = AtomicU32::new(0);

/// A test's own namespace on the shared cluster.
pub struct TestNs {
    pub name: String,
    pub client: Client,
}

impl TestNs {
    /// Creates namespace `<prefix>-<pid>-<n>` (prefix sanitised to a DNS label).
    pub async fn new(prefix: &str) -> TestNs {
        let client = client().await;
        let clean: String = prefix
            .to_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .take(40)
            .collect();
        let name = format!(
            "{}-{}-{}",
            clean.trim_matches('-'),
            std::process::id() % 100000,
            NS_COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let ns: Namespace = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "labels": {"rollouts-test": "true"}}
        }))
        .unwrap();
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .unwrap_or_else(|e| panic!("creating namespace {name}: {e}"));
        TestNs { name, client }
    }

    /// Server-side applies every document of `yaml` (namespaced ones into this namespace).
    pub async fn apply(&self, yaml: &str) -> Vec<DynamicObject> {
        apply_yaml(&self.client, Some(&self.name), yaml, false)
            .await
            .unwrap_or_else(|e| panic!("applying YAML in {}: {e:#}", self.name))
    }

    /// Typed API for this namespace.
    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), &self.name)
    }

    /// Polls `check` every 100 ms until it yields `Some`, or panics after `timeout` with
    /// `what`, the last observation and a dump of the namespace (rollouts' status, ReplicaSets,
    /// pods and recent events).
    pub async fn wait_for<T, F, Fut>(&self, what: &str, timeout: Duration, mut check: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Option<T>>>,
    {
        let deadline = Instant::now() + timeout;
        loop {
            let last = match check().await {
                Ok(Some(v)) => return v,
                Ok(None) => "condition not met".to_string(),
                Err(e) => format!("{e:#}"),
            };
            if Instant::now() > deadline {
                let dump = self.diagnostics().await;
                panic!(
                    "timed out after {timeout:?} waiting for {what} in namespace {} (last: {last})\n{dump}",
                    self.name
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A readable dump of the namespace for failure messages.
    pub async fn diagnostics(&self) -> String {
        diagnostics(&self.client, &self.name).await
    }

    /// Runs kubectl against the shared cluster with `-n <this namespace>`.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        let mut full = vec!["-n", self.name.as_str()];
        full.extend_from_slice(args);
        kubectl(&full)
    }
}

/// Runs kubectl (the one built with the control plane, else the one on PATH) with the shared
/// cluster's kubeconfig.
pub fn kubectl(args: &[&str]) -> Output {
    let c = cluster();
    let bin = c
        .kubectl
        .clone()
        .unwrap_or_else(|| PathBuf::from("kubectl"));
    Command::new(&bin)
        .args(args)
        .env("KUBECONFIG", &c.kubeconfig)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", bin.display()))
}

fn api_for(
    client: &Client,
    ar: &ApiResource,
    caps: &ApiCapabilities,
    ns: Option<&str>,
) -> Api<DynamicObject> {
    match (caps.scope.clone(), ns) {
        (Scope::Namespaced, Some(ns)) => Api::namespaced_with(client.clone(), ns, ar),
        (Scope::Namespaced, None) => Api::default_namespaced_with(client.clone(), ar),
        (Scope::Cluster, _) => Api::all_with(client.clone(), ar),
    }
}

/// Splits a multi-document YAML text into JSON values, skipping empty documents.
pub fn yaml_documents(yaml: &str) -> Result<Vec<Value>> {
    use serde::Deserialize;
    let mut out = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(yaml) {
        let v = Value::deserialize(doc)?;
        if !v.is_null() {
            out.push(v);
        }
    }
    Ok(out)
}

/// Server-side applies (or, with `dry_run`, dry-runs) every document of `yaml`; namespaced
/// documents go into `ns` when given (overriding their own namespace).
pub async fn apply_yaml(
    client: &Client,
    ns: Option<&str>,
    yaml: &str,
    dry_run: bool,
) -> Result<Vec<DynamicObject>> {
    let mut out = Vec::new();
    for doc in yaml_documents(yaml)? {
        out.push(apply_value(client, ns, doc, dry_run).await?);
    }
    Ok(out)
}

/// Server-side applies one object given as JSON.
pub async fn apply_value(
    client: &Client,
    ns: Option<&str>,
    doc: Value,
    dry_run: bool,
) -> Result<DynamicObject> {
    let obj: DynamicObject = serde_json::from_value(doc).context("not a Kubernetes object")?;
    let tm = obj
        .types
        .clone()
        .ok_or_else(|| anyhow!("object {} has no apiVersion/kind", obj.name_any()))?;
    let gvk = GroupVersionKind::try_from(&tm)?;
    let (ar, caps) = kube::discovery::pinned_kind(client, &gvk)
        .await
        .with_context(|| format!("discovering {}/{}", tm.api_version, tm.kind))?;
    let name = obj.name_any();
    let target_ns = ns.map(str::to_string).or_else(|| obj.namespace());
    let api = api_for(client, &ar, &caps, target_ns.as_deref());
    let mut obj = obj;
    if caps.scope == Scope::Namespaced {
        obj.metadata.namespace = target_ns;
    }
    if obj.metadata.name.is_none() && obj.metadata.generate_name.is_some() {
        // Server-side apply needs a name; `generateName` objects are created.
        let pp = PostParams {
            dry_run,
            field_manager: Some(TEST_MANAGER.into()),
        };
        return api
            .create(&pp, &obj)
            .await
            .with_context(|| format!("creating {} {name}", tm.kind));
    }
    let mut pp = PatchParams::apply(TEST_MANAGER).force();
    pp.dry_run = dry_run;
    api.patch(&name, &pp, &Patch::Apply(&obj))
        .await
        .with_context(|| format!("applying {} {name}", tm.kind))
}

/// Installs the CRDs found in `dir` (every `*.yaml`) and waits until they are Established.
pub async fn install_crds(client: &Client, dir: &Path) -> Result<()> {
    let mut names = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    entries.sort();
    for path in entries {
        let text = std::fs::read_to_string(&path)?;
        for o in apply_yaml(client, None, &text, false)
            .await
            .with_context(|| format!("installing {}", path.display()))?
        {
            names.push(o.name_any());
        }
    }
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let deadline = Instant::now() + Duration::from_secs(30);
    for name in names {
        loop {
            let crd = crds.get(&name).await?;
            let established = crd
                .status
                .and_then(|s| s.conditions)
                .unwrap_or_default()
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True");
            if established {
                break;
            }
            if Instant::now() > deadline {
                bail!("CRD {name} not Established within 30s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

async fn list_dynamic(
    client: &Client,
    ns: &str,
    group: &str,
    version: &str,
    kind: &str,
    plural: &str,
) -> Vec<DynamicObject> {
    let gvk = GroupVersionKind::gvk(group, version, kind);
    let ar = ApiResource::from_gvk_with_plural(&gvk, plural);
    Api::<DynamicObject>::namespaced_with(client.clone(), ns, &ar)
        .list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default()
}

/// A readable dump of a namespace: rollouts (spec summary + status), ReplicaSets, pods, events.
pub async fn diagnostics(client: &Client, ns: &str) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    for ro in list_dynamic(client, ns, "argoproj.io", "v1alpha1", "Rollout", "rollouts").await {
        let status = ro.data.get("status").cloned().unwrap_or(Value::Null);
        let _ = writeln!(
            s,
            "--- Rollout {} (generation {:?})\nstatus: {}",
            ro.name_any(),
            ro.metadata.generation,
            serde_json::to_string_pretty(&status).unwrap_or_default()
        );
    }
    for ar in list_dynamic(
        client,
        ns,
        "argoproj.io",
        "v1alpha1",
        "AnalysisRun",
        "analysisruns",
    )
    .await
    {
        let status = ar.data.get("status").cloned().unwrap_or(Value::Null);
        let _ = writeln!(s, "--- AnalysisRun {} status: {}", ar.name_any(), status);
    }
    let rss: Api<k8s_openapi::api::apps::v1::ReplicaSet> = Api::namespaced(client.clone(), ns);
    if let Ok(list) = rss.list(&ListParams::default()).await {
        for rs in list.items {
            let st = rs.status.clone().unwrap_or_default();
            let _ = writeln!(
                s,
                "--- ReplicaSet {} spec.replicas={:?} status: replicas={} ready={:?} available={:?} annotations={:?}",
                rs.name_any(),
                rs.spec.as_ref().and_then(|sp| sp.replicas),
                st.replicas,
                st.ready_replicas,
                st.available_replicas,
                rs.annotations()
            );
        }
    }
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(client.clone(), ns);
    if let Ok(list) = pods.list(&ListParams::default()).await {
        for p in list.items {
            let st = p.status.clone().unwrap_or_default();
            let ready = st
                .conditions
                .unwrap_or_default()
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True");
            let _ = writeln!(
                s,
                "--- Pod {} phase={:?} ready={ready} deleting={}",
                p.name_any(),
                st.phase,
                p.metadata.deletion_timestamp.is_some()
            );
        }
    }
    let events: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(client.clone(), ns);
    if let Ok(list) = events.list(&ListParams::default()).await {
        let mut items = list.items;
        items.sort_by_key(|e| e.last_timestamp.clone().map(|t| t.0));
        for e in items.iter().rev().take(30).rev() {
            let _ = writeln!(
                s,
                "--- Event {} {}/{} {}: {}",
                e.type_.clone().unwrap_or_default(),
                e.involved_object.kind.clone().unwrap_or_default(),
                e.involved_object.name.clone().unwrap_or_default(),
                e.reason.clone().unwrap_or_default(),
                e.message.clone().unwrap_or_default()
            );
        }
    }
    s
}

/// One destination of an Istio VirtualService's first HTTP route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Destination {
    pub host: String,
    /// Empty without a subset.
    pub subset: String,
    pub weight: i64,
}

/// The destinations of the first HTTP route of a VirtualService (as JSON), in order.
pub fn first_route(vs: &Value) -> Vec<Destination> {
    vs["spec"]["http"][0]["route"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| {
            let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
            Destination {
                host: text(&d["destination"]["host"]),
                subset: text(&d["destination"]["subset"]),
                weight: d["weight"].as_i64().unwrap_or(0),
            }
        })
        .collect()
}

/// Upstream Argo Rollouts' compatibility corpus (`../shared/compat/argo-rollouts` beside the
/// checkout; not part of the repository), the one place every test finds it. `None`, with a
/// printed notice, where it is absent, unless `ROLLOUTS_REQUIRE_COMPAT=1` (as `cargo xtask
/// test` sets when the corpus is there): then absence fails the test.
pub fn compat_corpus() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/compat/argo-rollouts");
    if dir.is_dir() {
        return Some(dir);
    }
    if std::env::var("ROLLOUTS_REQUIRE_COMPAT").as_deref() == Ok("1") {
        panic!(
            "ROLLOUTS_REQUIRE_COMPAT=1 but the compat corpus is missing at {}",
            dir.display()
        );
    }
    eprintln!(
        "NOTICE: compat corpus not found at {}; skipping",
        dir.display()
    );
    None
}
