//! Helpers shared by the integration tests: CRDs, an in-process controller per test
//! namespace, and the user commands the CLI and Argo CD write.

use k8s_openapi::api::apps::v1::ReplicaSet;
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, ResourceExt};
use rollouts::api::Rollout;
use rollouts::controller::{self, WriteCounters};
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::OnceCell;
pub use xtask::testkit::{self, TestNs};

static CRDS: OnceCell<()> = OnceCell::const_new();

/// Installs `crds/` once per test process.
pub async fn crds_installed() {
    CRDS.get_or_init(|| async {
        let client = testkit::client().await;
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("crds");
        testkit::install_crds(&client, &dir)
            .await
            .expect("installing crds/");
    })
    .await;
}

/// A controller running in this test's runtime, watching only the test's namespace.
pub struct Ctl {
    pub writes: Arc<WriteCounters>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Ctl {
    /// Stops the controller and waits until it has finished: a graceful stop first; a
    /// controller that has not stopped within 10 s is aborted, and the abort awaited, so no
    /// task of it runs after this returns. (A test that needs the old controller gone would
    /// otherwise pass without testing anything.)
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let mut task = std::mem::replace(&mut self.task, tokio::spawn(async {}));
        match tokio::time::timeout(Duration::from_secs(10), &mut task).await {
            Ok(done) => done.expect("the controller task panicked"),
            Err(_) => {
                eprintln!("the controller did not stop within 10 s: aborting it");
                task.abort();
                match tokio::time::timeout(Duration::from_secs(10), task).await {
                    Ok(Err(e)) if e.is_cancelled() => {}
                    Ok(Err(e)) => panic!("the controller task panicked: {e}"),
                    Ok(Ok(())) => {}
                    Err(_) => panic!("the aborted controller task did not end within 10 s"),
                }
            }
        }
    }
}

impl Drop for Ctl {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        self.task.abort();
    }
}

/// Starts the controller for `ns`.
pub fn start_controller(ns: &TestNs) -> Ctl {
    start_controller_with(ns, ns.client.clone())
}

/// [`start_controller`] with a client of the test's choosing (e.g. one that injects faults).
pub fn start_controller_with(ns: &TestNs, client: kube::Client) -> Ctl {
    start_controller_config(
        client,
        controller::Config {
            namespace: Some(ns.name.clone()),
            ..Default::default()
        },
    )
}

/// A controller with a client and a configuration of the test's choosing.
pub fn start_controller_config(client: kube::Client, config: controller::Config) -> Ctl {
    let writes = Arc::new(WriteCounters::default());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let w = writes.clone();
    let task = tokio::spawn(async move {
        controller::run(
            client,
            config,
            async move {
                let _ = rx.await;
            },
            w,
        )
        .await;
    });
    Ctl {
        writes,
        stop: Some(tx),
        task,
    }
}

/// Logs of the in-process controllers go to the test output (`RUST_LOG=rollouts=debug`).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("rollouts=info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}

/// A namespace with the CRDs installed and a controller running.
pub async fn setup(test: &str) -> (TestNs, Ctl) {
    init_logging();
    crds_installed().await;
    let ns = TestNs::new(test).await;
    let ctl = start_controller(&ns);
    (ns, ctl)
}

pub async fn get_rollout(ns: &TestNs, name: &str) -> Rollout {
    ns.api::<Rollout>()
        .get(name)
        .await
        .expect("reading the Rollout")
}

/// The Rollout's ReplicaSets, oldest revision first.
pub async fn replica_sets(ns: &TestNs, ro: &Rollout) -> Vec<ReplicaSet> {
    let uid = ro.uid();
    let mut out: Vec<ReplicaSet> = ns
        .api::<ReplicaSet>()
        .list(&ListParams::default())
        .await
        .expect("listing ReplicaSets")
        .items
        .into_iter()
        .filter(|rs| {
            rs.owner_references()
                .iter()
                .any(|o| Some(&o.uid) == uid.as_ref())
        })
        .collect();
    out.sort_by_key(revision);
    out
}

pub fn revision(rs: &ReplicaSet) -> i64 {
    rs.annotations()
        .get("rollout.argoproj.io/revision")
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

pub fn hash_of(rs: &ReplicaSet) -> String {
    rs.labels()
        .get("rollouts-pod-template-hash")
        .cloned()
        .unwrap_or_default()
}

pub fn spec_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0)
}

pub fn available(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|s| s.available_replicas)
        .unwrap_or(0)
}

/// The Rollout's phase, status message and step index.
pub fn phase(ro: &Rollout) -> (String, String, Option<i32>) {
    let st = ro.status.clone().unwrap_or_default();
    (
        st.phase.unwrap_or_default(),
        st.message.unwrap_or_default(),
        st.current_step_index,
    )
}

/// Waits until `pred(rollout, replica sets)` holds; panics with a dump otherwise.
pub async fn wait_rollout<F>(
    ns: &TestNs,
    name: &str,
    what: &str,
    timeout: Duration,
    pred: F,
) -> Rollout
where
    F: Fn(&Rollout, &[ReplicaSet]) -> bool,
{
    let pred = &pred;
    ns.wait_for(what, timeout, || async move {
        let ro = ns.api::<Rollout>().get(name).await?;
        let rss = replica_sets(ns, &ro).await;
        Ok(pred(&ro, &rss).then_some(ro))
    })
    .await
}

/// Healthy: phase Healthy, stable = current, every replica on the newest ReplicaSet.
pub fn is_healthy(ro: &Rollout, rss: &[ReplicaSet]) -> bool {
    let st = ro.status.clone().unwrap_or_default();
    let replicas = ro.spec.replicas.unwrap_or(1);
    st.phase.as_deref() == Some("Healthy")
        && st.observed_generation == ro.metadata.generation.map(|g| g.to_string())
        && st.stable_rs.is_some()
        && st.stable_rs == st.current_pod_hash
        && rss
            .last()
            .is_some_and(|rs| available(rs) == replicas && spec_replicas(rs) == replicas)
        && rss.iter().rev().skip(1).all(|rs| spec_replicas(rs) == 0)
}

/// Sets the first container's image (what `kubectl argo rollouts set image` does): read,
/// modify, write with the read resourceVersion, again on a conflict (the controller's status
/// writes move the resourceVersion too).
pub async fn set_image(ns: &TestNs, name: &str, image: &str) {
    for attempt in 1.. {
        let ro = get_rollout(ns, name).await;
        let mut template =
            serde_json::to_value(ro.spec.template.clone().unwrap_or_default()).unwrap();
        template["spec"]["containers"][0]["image"] = json!(image);
        let patch = json!({"metadata": {"resourceVersion": ro.resource_version()},
                           "spec": {"template": template}});
        match ns
            .api::<Rollout>()
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => return,
            Err(kube::Error::Api(e)) if e.code == 409 && attempt < 10 => continue,
            Err(e) => panic!("setting the image: {e}"),
        }
    }
}

/// A status merge patch, as the upstream CLI and Argo CD write user commands.
pub async fn patch_status(ns: &TestNs, name: &str, status: Value) {
    ns.api::<Rollout>()
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(&json!({ "status": status })),
        )
        .await
        .expect("patching status");
}

/// `kubectl argo rollouts promote`: clears the pause conditions.
pub async fn promote(ns: &TestNs, name: &str) {
    patch_status(ns, name, json!({"pauseConditions": null})).await;
}

/// `kubectl argo rollouts abort`.
pub async fn abort(ns: &TestNs, name: &str) {
    patch_status(ns, name, json!({"abort": true})).await;
}

/// `kubectl argo rollouts retry rollout`.
pub async fn retry(ns: &TestNs, name: &str) {
    patch_status(ns, name, json!({"abort": false})).await;
}

/// Reads an example manifest of this repository.
pub fn example(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path))
        .unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

/// Events recorded for an object in the namespace, oldest first.
async fn events_of(ns: &TestNs, object: &str) -> Vec<k8s_openapi::api::events::v1::Event> {
    let events: Api<k8s_openapi::api::events::v1::Event> = ns.api();
    let mut items = events
        .list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default();
    items.sort_by_key(|e| e.event_time.clone().map(|t| t.0));
    items.retain(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(object));
    items
}

/// Event reasons recorded for an object in the namespace, oldest first.
pub async fn event_reasons(ns: &TestNs, object: &str) -> Vec<String> {
    events_of(ns, object)
        .await
        .into_iter()
        .filter_map(|e| e.reason)
        .collect()
}

/// How long a test waits for events: the controller publishes them from a queue, after the
/// writes a test waits for, and on a loaded machine they trail those writes.
pub const EVENT_WAIT: Duration = Duration::from_secs(30);

/// Waits until events with every one of `reasons` are recorded on `object`, and returns the
/// reasons recorded (on a timeout, [`TestNs::wait_for`]'s dump lists the namespace's events).
pub async fn wait_events(ns: &TestNs, object: &str, reasons: &[&str]) -> Vec<String> {
    ns.wait_for(
        &format!("events {reasons:?} on {object}"),
        EVENT_WAIT,
        || async {
            let seen = event_reasons(ns, object).await;
            Ok(reasons
                .iter()
                .all(|r| seen.iter().any(|x| x == r))
                .then_some(seen))
        },
    )
    .await
}

/// When the first event of a reason was recorded for an object (its `eventTime`), if it was.
pub async fn event_time(ns: &TestNs, object: &str, reason: &str) -> Option<jiff::Timestamp> {
    events_of(ns, object)
        .await
        .into_iter()
        .find(|e| e.reason.as_deref() == Some(reason))
        .and_then(|e| e.event_time)
        .map(|t| t.0)
}

/// Upstream's compatibility corpus (`../shared/compat/argo-rollouts` beside the checkout; not
/// part of the repository): `None`, with a notice, where it is absent, unless
/// `ROLLOUTS_REQUIRE_COMPAT=1` (then absence fails the test).
pub fn compat_corpus() -> Option<std::path::PathBuf> {
    testkit::compat_corpus()
}

/// One file of the compatibility corpus (see [`compat_corpus`]); a missing file in a present
/// corpus fails the test.
pub fn compat_file(relative: &str) -> Option<String> {
    let path = compat_corpus()?.join(relative);
    Some(
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display())),
    )
}

/// What a [`tapped_client`] does around each request: delays, and what it was told.
pub trait Tap: Send + Sync + 'static {
    /// How long to hold the request before it is sent.
    fn before(&self, _method: &http::Method, _uri: &http::Uri) -> Duration {
        Duration::ZERO
    }
    /// Told the response's status; how long to hold the response before it is returned.
    fn after(
        &self,
        _method: &http::Method,
        _uri: &http::Uri,
        _status: http::StatusCode,
    ) -> Duration {
        Duration::ZERO
    }
}

/// A client for the test cluster whose requests and responses pass through `tap` (a slow or
/// overloaded API server, or a count of what the controller asked for).
pub async fn tapped_client(tap: Arc<dyn Tap>) -> kube::Client {
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    struct Tapped<S> {
        inner: S,
        tap: Arc<dyn Tap>,
    }
    impl<S, B, RB> tower::Service<http::Request<B>> for Tapped<S>
    where
        S: tower::Service<http::Request<B>, Response = http::Response<RB>>,
        S::Future: Send + 'static,
        S::Error: Send + 'static,
        RB: Send + 'static,
    {
        type Response = S::Response;
        type Error = S::Error;
        type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;
        fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
            self.inner.poll_ready(cx)
        }
        fn call(&mut self, req: http::Request<B>) -> Self::Future {
            let (method, uri) = (req.method().clone(), req.uri().clone());
            let before = self.tap.before(&method, &uri);
            let tap = self.tap.clone();
            // The inner future sends the request only when first polled.
            let fut = self.inner.call(req);
            Box::pin(async move {
                tokio::time::sleep(before).await;
                let res = fut.await;
                if let Ok(r) = &res {
                    tokio::time::sleep(tap.after(&method, &uri, r.status())).await;
                }
                res
            })
        }
    }
    let kc = kube::config::Kubeconfig::read_from(&testkit::cluster().kubeconfig)
        .expect("the test kubeconfig");
    let config =
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await
            .expect("a config for the test cluster");
    let layer = tower::layer::layer_fn(move |inner| Tapped {
        inner,
        tap: tap.clone(),
    });
    kube::client::ClientBuilder::try_from(config)
        .expect("a client for the test cluster")
        .with_layer(&layer)
        .build()
}

/// Whether a request is a LIST (a GET of a collection that is not a watch) of `resource`.
pub fn is_list_of(method: &http::Method, uri: &http::Uri, resource: &str) -> bool {
    method == http::Method::GET
        && uri.path().ends_with(&format!("/{resource}"))
        && !uri.query().unwrap_or("").contains("watch=")
}
