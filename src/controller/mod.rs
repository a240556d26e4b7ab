//! The controller: observe (reflector stores) → [`crate::plan::plan`] (pure) → actuate
//! (idempotent writes, one field manager) → report (status subresource, events).
//!
//! Reads come from reflector stores only. Writes:
//! - ReplicaSets are created, merge-patched (replicas, annotations) and deleted;
//! - Services get their `rollouts-pod-template-hash` selector and managed-by annotation;
//! - the Rollout's status is merge-patched with the smallest diff, carrying
//!   `metadata.resourceVersion` as a precondition, so a status computed from a stale view can
//!   never overwrite a user's concurrent command (promote, abort, retry...): the write fails
//!   with a conflict and the next reconcile sees the command.
//!
//! After writing a Rollout we remember the resourceVersion we started from; until the store has
//! moved past it, reconciles of that Rollout wait (the watch event of our own write triggers the
//! next one). This is what keeps a stale read from undoing the step we just took.

pub mod adopt;
pub mod analysis;
pub mod decode;
pub mod diff;
pub mod janitor;
pub mod traffic;

use crate::api::Rollout;
use crate::plan::{self, Effect, Observed};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event as KEvent, EventType, Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tracing::{debug, info, warn};

/// The field manager of every write.
pub const FIELD_MANAGER: &str = "rollouts-controller";

/// Controller settings.
#[derive(Clone)]
pub struct Config {
    /// Watch one namespace only (namespaced mode); `None` watches all.
    pub namespace: Option<String>,
    /// Upstream's sharding: only objects labelled with this controller instance id (or, when
    /// `None`, only objects without the label).
    pub instance_id: Option<String>,
    /// Rollouts reconciled at once.
    pub concurrency: u16,
    /// Told about every reconcile (metrics).
    pub observer: Option<Arc<dyn Observer>>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            namespace: None,
            instance_id: None,
            concurrency: 10,
            observer: None,
        }
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("namespace", &self.namespace)
            .field("instance_id", &self.instance_id)
            .field("concurrency", &self.concurrency)
            .finish()
    }
}

/// Hooks for metrics, told about every reconcile of a Rollout.
pub trait Observer: Send + Sync {
    /// A reconcile finished: `rollout` as reconciled, `status` the status the plan wanted
    /// (`None` when the reconcile failed), `error` the bounded reason of a failure.
    fn reconciled(
        &self,
        rollout: &Rollout,
        status: Option<&crate::api::RolloutStatus>,
        elapsed: Duration,
        error: Option<&'static str>,
    );
    /// The Rollout store, once at start: per-Rollout gauges (`rollout_info`, `rollout_phase`)
    /// are best computed from it when scraped, so deleted Rollouts disappear by themselves.
    /// `synced` tells when it has listed (never poll the store's own readiness: see [`Synced`]).
    fn attach(&self, rollouts: Store<Rollout>, synced: Synced);
}

/// Whether `store` has listed, waiting at most `limit` (`None`: as long as it takes). A
/// store's readiness wakes only the task that polled it last (see [`Synced`]), so it is
/// polled again every 250 ms instead of trusting one wakeup. Not for the Rollout store.
pub(crate) async fn store_ready<K>(store: &Store<K>, limit: Option<Duration>) -> bool
where
    K: kube::runtime::reflector::Lookup + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    let start = Instant::now();
    loop {
        match tokio::time::timeout(Duration::from_millis(250), store.wait_until_ready()).await {
            Ok(res) => return res.is_ok(),
            Err(_) if limit.is_some_and(|l| start.elapsed() >= l) => return false,
            Err(_) => {}
        }
    }
}

/// Set once the Rollout cache has had its first full listing.
///
/// A kube `Store`'s readiness future wakes only the task that polled it last (kube's
/// `DelayedInit` keeps one waker), and the kube `Controller` waits on the Rollout store's
/// readiness before it reconciles anything. Any other poll of that future, even a
/// `now_or_never` from a `/readyz` probe during the first listing, takes the waker away from
/// the Controller, which then never starts. So nothing else polls it; they read this flag,
/// set from the watch stream itself.
#[derive(Clone, Default)]
pub struct Synced(Arc<(std::sync::atomic::AtomicBool, tokio::sync::Notify)>);

impl Synced {
    /// Whether the first listing is in.
    pub fn is_set(&self) -> bool {
        self.0.0.load(Ordering::Acquire)
    }

    /// Records the first listing, waking every waiter.
    pub fn set(&self) {
        self.0.0.store(true, Ordering::Release);
        self.0.1.notify_waiters();
    }

    /// Waits for [`Synced::set`].
    pub async fn wait(&self) {
        loop {
            // Created before the check: it sees a `set` that happens in between.
            let notified = self.0.1.notified();
            if self.is_set() {
                return;
            }
            notified.await;
        }
    }
}

/// Errors: only "could not talk to the world" — domain outcomes are status conditions.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("encoding an object: {0}")]
    Serialize(#[from] serde_json::Error),
}

impl Error {
    /// A short bounded label for events and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Kube(kube::Error::Api(s)) if s.code == 409 => "conflict",
            Error::Kube(kube::Error::Api(_)) => "api_error",
            Error::Kube(_) => "transport",
            Error::Serialize(_) => "serialize",
        }
    }
}

/// Counts of API writes, by kind (for tests and the README's measurements).
#[derive(Debug, Default)]
pub struct WriteCounters {
    pub status: AtomicU64,
    pub replica_sets: AtomicU64,
    pub services: AtomicU64,
    pub rollouts: AtomicU64,
    pub pods: AtomicU64,
    pub traffic: AtomicU64,
    pub analysis_runs: AtomicU64,
    /// Deployments named by `workloadRef` (scale-down).
    pub workloads: AtomicU64,
}

impl WriteCounters {
    pub fn total(&self) -> u64 {
        self.status.load(Ordering::Relaxed)
            + self.replica_sets.load(Ordering::Relaxed)
            + self.services.load(Ordering::Relaxed)
            + self.rollouts.load(Ordering::Relaxed)
            + self.pods.load(Ordering::Relaxed)
            + self.traffic.load(Ordering::Relaxed)
            + self.analysis_runs.load(Ordering::Relaxed)
            + self.workloads.load(Ordering::Relaxed)
    }
}

/// State shared by reconciles.
pub struct Context {
    pub client: Client,
    pub replica_sets: Store<ReplicaSet>,
    pub services: Store<Service>,
    pub recorder: Recorder,
    pub writes: Arc<WriteCounters>,
    /// Traffic router objects, watched on demand.
    pub traffic: traffic::TrafficStores,
    pub analysis_runs: Store<crate::api::AnalysisRun>,
    pub analysis_templates: Store<crate::api::AnalysisTemplate>,
    pub cluster_analysis_templates: Store<crate::api::ClusterAnalysisTemplate>,
    /// Whether `cluster_analysis_templates` is fed (cluster-wide mode only).
    pub cluster_templates_watched: bool,
    pub observer: Option<Arc<dyn Observer>>,
    /// Rollout → the resourceVersion our last write started from (see the module docs).
    written_from: Mutex<HashMap<ObjectRef<Rollout>, (String, Instant)>>,
    /// Rollout → consecutive failures (for backoff).
    failures: Mutex<HashMap<ObjectRef<Rollout>, u32>>,
}

fn label_selector(instance_id: &Option<String>) -> String {
    match instance_id {
        Some(id) => format!(
            "{}={id}",
            crate::api::consts::LABEL_KEY_CONTROLLER_INSTANCE_ID
        ),
        None => format!("!{}", crate::api::consts::LABEL_KEY_CONTROLLER_INSTANCE_ID),
    }
}

fn api_for<K>(client: &Client, ns: &Option<String>) -> Api<K>
where
    K: Resource<Scope = kube::core::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    <K as Resource>::DynamicType: Default,
{
    match ns {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Runs the Rollout controller until `shutdown` resolves. Returns the write counters.
pub async fn run(
    client: Client,
    config: Config,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
    writes: Arc<WriteCounters>,
) {
    let ro_resource = decode::rollout_resource();
    let rollouts: Api<kube::api::DynamicObject> = match &config.namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &ro_resource),
        None => Api::all_with(client.clone(), &ro_resource),
    };
    let rs_api: Api<ReplicaSet> = api_for(&client, &config.namespace);
    let svc_api: Api<Service> = api_for(&client, &config.namespace);
    let wc = watcher::Config::default().labels(&label_selector(&config.instance_id));

    let (rs_store, rs_writer) = reflector::store();
    let rs_stream = watcher(rs_api, watcher::Config::default())
        .default_backoff()
        .reflect(rs_writer)
        .touched_objects();
    // AnalysisRuns (owned by Rollouts) and the templates runs are built from.
    let (ar_store, ar_writer) = reflector::store::<crate::api::AnalysisRun>();
    let ar_stream = decode::tolerant(watcher(
        decode::untyped::<crate::api::AnalysisRun>(&client, config.namespace.as_deref()),
        watcher::Config::default(),
    ))
    .default_backoff()
    .reflect(ar_writer)
    .touched_objects();
    let (at_store, at_writer) = reflector::store::<crate::api::AnalysisTemplate>();
    let tasks = Tasks::default();
    tasks.spawn(
        decode::tolerant(watcher(
            decode::untyped::<crate::api::AnalysisTemplate>(&client, config.namespace.as_deref()),
            watcher::Config::default(),
        ))
        .default_backoff()
        .reflect(at_writer)
        .for_each(|_| futures::future::ready(())),
    );
    let (cat_store, cat_writer) = reflector::store::<crate::api::ClusterAnalysisTemplate>();
    // Cluster-scoped templates are watched only when the controller is cluster-wide.
    if config.namespace.is_none() {
        tasks.spawn(
            decode::tolerant(watcher(
                Api::<kube::api::DynamicObject>::all_with(
                    client.clone(),
                    &kube::api::ApiResource::erase::<crate::api::ClusterAnalysisTemplate>(&()),
                ),
                watcher::Config::default(),
            ))
            .default_backoff()
            .reflect(cat_writer)
            .for_each(|_| futures::future::ready(())),
        );
    }
    let (svc_store, svc_writer) = reflector::store();
    let svc_stream = watcher(svc_api, watcher::Config::default())
        .default_backoff()
        .reflect(svc_writer)
        .touched_objects();

    // Rollouts are watched untyped and decoded one by one (see `decode`).
    let (bad_tx, bad_rx) = tokio::sync::mpsc::unbounded_channel();
    let (ro_reader, ro_writer) = reflector::store::<Rollout>();
    let ro_synced = Synced::default();
    let ro_stream = decode::typed(watcher(rollouts, wc), bad_tx)
        .default_backoff()
        .reflect(ro_writer)
        .inspect({
            let synced = ro_synced.clone();
            move |ev| {
                if matches!(ev, Ok(watcher::Event::InitDone)) {
                    synced.set();
                }
            }
        })
        .applied_objects();
    tasks.spawn(decode::report(
        client.clone(),
        Recorder::new(
            client.clone(),
            Reporter {
                controller: FIELD_MANAGER.into(),
                instance: std::env::var("POD_NAME").ok(),
            },
        ),
        bad_rx,
    ));
    let controller = Controller::for_stream(ro_stream, ro_reader);
    let ro_store = controller.store();
    if let Some(o) = &config.observer {
        o.attach(ro_store.clone(), ro_synced.clone());
    }
    let (traffic_stores, traffic_changes) =
        traffic::TrafficStores::new(client.clone(), config.namespace.clone());
    tasks.spawn(janitor::run(
        client.clone(),
        svc_store.clone(),
        ro_store.clone(),
        ro_synced,
        writes.clone(),
    ));
    let ro_store_for_traffic = ro_store.clone();
    let traffic_triggers = futures::stream::unfold(traffic_changes, |mut rx| async move {
        rx.recv().await.map(|key| (key, rx))
    })
    .flat_map(move |key| {
        futures::stream::iter(traffic::rollouts_referencing(&ro_store_for_traffic, &key))
    });
    let reporter = Reporter {
        controller: FIELD_MANAGER.into(),
        instance: std::env::var("POD_NAME").ok(),
    };
    let ctx = Arc::new(Context {
        client: client.clone(),
        replica_sets: rs_store,
        services: svc_store,
        recorder: Recorder::new(client, reporter),
        writes,
        traffic: traffic_stores,
        analysis_runs: ar_store,
        analysis_templates: at_store,
        cluster_analysis_templates: cat_store,
        cluster_templates_watched: config.namespace.is_none(),
        observer: config.observer.clone(),
        written_from: Mutex::new(HashMap::new()),
        failures: Mutex::new(HashMap::new()),
    });
    controller
        .with_config(kube::runtime::controller::Config::default().concurrency(config.concurrency))
        .owns_stream(rs_stream)
        .owns_stream(ar_stream)
        .reconcile_on(traffic_triggers)
        .watches_stream(svc_stream, move |svc: Service| {
            // A Service change concerns the Rollouts that name it.
            let ns = svc.namespace();
            let name = svc.name_any();
            ro_store
                .state()
                .into_iter()
                .filter(|ro| ro.namespace() == ns && references_service(ro, &name))
                .map(|ro| ObjectRef::from_obj(&*ro))
                .collect::<Vec<_>>()
        })
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|res| async move {
            if let Err(e) = res {
                debug!("reconcile: {e}");
            }
        })
        .await;
}

/// Records a plan's events on an object (a failure is logged: events are best effort).
pub(crate) async fn publish_events(
    recorder: &Recorder,
    reference: &k8s_openapi::api::core::v1::ObjectReference,
    events: &[plan::Event],
) {
    for ev in events {
        let kev = KEvent {
            type_: if ev.warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: ev.reason.clone(),
            note: Some(ev.message.chars().take(1000).collect()),
            action: ev.reason.clone(),
            secondary: None,
        };
        if let Err(e) = recorder.publish(&kev, reference).await {
            let object = reference.name.as_deref().unwrap_or_default();
            warn!(%object, "recording event {}: {e}", ev.reason);
        }
    }
}

/// Background tasks that end with their owner: dropping the set (when [`run`] returns, or
/// when its future is dropped, as on a lost Lease) aborts every task still running, so no
/// watch outlives the controller that started it.
#[derive(Default)]
pub(crate) struct Tasks(Mutex<Vec<tokio::task::AbortHandle>>);

impl Tasks {
    pub(crate) fn spawn<F>(&self, fut: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let handle = tokio::spawn(fut).abort_handle();
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(handle);
    }
}

impl Drop for Tasks {
    fn drop(&mut self) {
        for h in self
            .0
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            h.abort();
        }
    }
}

fn references_service(ro: &Rollout, name: &str) -> bool {
    plan::service_names(ro).iter().any(|s| s == name)
}

fn is_owned_by(rs: &ReplicaSet, ro: &Rollout) -> bool {
    let uid = ro.uid();
    rs.owner_references()
        .iter()
        .any(|o| o.controller == Some(true) && Some(&o.uid) == uid.as_ref())
}

impl Context {
    /// Whether every cache a plan reads from has had its first full listing. Until then an
    /// empty store means "not known yet", not "none": planning from it would, for example,
    /// create a second ReplicaSet beside one that exists.
    async fn caches_synced(&self) -> bool {
        let limit = Some(Duration::from_secs(2));
        let cluster_templates = async {
            !self.cluster_templates_watched
                || store_ready(&self.cluster_analysis_templates, limit).await
        };
        let (a, b, c, d, e) = futures::join!(
            store_ready(&self.replica_sets, limit),
            store_ready(&self.services, limit),
            store_ready(&self.analysis_runs, limit),
            store_ready(&self.analysis_templates, limit),
            cluster_templates,
        );
        a && b && c && d && e
    }
}

async fn reconcile(ro: Arc<Rollout>, ctx: Arc<Context>) -> Result<Action, Error> {
    if !ctx.caches_synced().await {
        return Ok(Action::requeue(Duration::from_millis(500)));
    }
    let key = ObjectRef::from_obj(&*ro);
    let rv = ro.resource_version().unwrap_or_default();
    {
        let mut written = ctx.written_from.lock().unwrap();
        if let Some((from, at)) = written.get(&key) {
            if *from == rv && at.elapsed() < Duration::from_secs(10) {
                // The store has not caught up with our last write yet.
                return Ok(Action::await_change());
            }
            written.remove(&key);
        }
    }
    let ns = ro.namespace().unwrap_or_default();
    let started = Instant::now();

    // Observe (stores only).
    let rs_all = ctx.replica_sets.state();
    let owned: Vec<&ReplicaSet> = rs_all
        .iter()
        .filter(|rs| rs.namespace().as_deref() == Some(ns.as_str()) && is_owned_by(rs, &ro))
        .map(|rs| &**rs)
        .collect();
    let svcs: Vec<(String, Arc<Service>)> = plan::service_names(&ro)
        .into_iter()
        .filter_map(|n| {
            let svc = ctx.services.get(&ObjectRef::new(&n).within(&ns))?;
            Some((n, svc))
        })
        .collect();
    // The object a `workloadRef` names (kept in a lazily started store, like router objects),
    // and the Rollout resolved with its template for the look-ups below; the planner resolves
    // it again itself (and reports a missing or unsupported workload).
    let workload_key = plan::workload::key(&ro).and_then(Result::ok);
    let workload = match &workload_key {
        Some(k) => ctx.traffic.observe(std::slice::from_ref(k)).await.remove(k),
        None => None,
    };
    let resolved = plan::workload::resolve(&ro, workload.as_ref())
        .ok()
        .map(|(r, _)| r);
    let effective: &Rollout = resolved.as_ref().unwrap_or(&ro);
    let adoptable = adopt::find_adoptable(&ctx.client, effective, &owned).await?;
    // Router objects, for traffic-routed canaries.
    let traffic_objects = if ro.canary().is_some_and(|c| c.traffic_routing.is_some()) {
        ctx.traffic
            .observe(&crate::traffic::referenced_objects(&ro))
            .await
    } else {
        Default::default()
    };
    // Pods are listed only while a restart is due or a ReplicaSet's pods change ephemeral
    // metadata (not cached: most reconciles need none).
    let now = k8s_openapi::jiff::Timestamp::now();
    let pod_list = if plan::needs_pods(effective, &owned, adoptable.as_deref(), now) {
        let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
        let selector = plan::replicasets::format_selector(effective.spec.selector.as_ref());
        Some(
            pods.list(&ListParams::default().labels(&selector))
                .await?
                .items,
        )
    } else {
        None
    };
    let runs_all = ctx.analysis_runs.state();
    let runs: Vec<&crate::api::AnalysisRun> = runs_all
        .iter()
        .filter(|r| {
            r.namespace().as_deref() == Some(ns.as_str())
                && r.owner_references()
                    .iter()
                    .any(|o| o.controller == Some(true) && Some(&o.uid) == ro.uid().as_ref())
        })
        .map(|r| &**r)
        .collect();
    let templates_all = ctx.analysis_templates.state();
    let cluster_templates_all = ctx.cluster_analysis_templates.state();
    let obs = Observed {
        rollout: &ro,
        replica_sets: owned,
        services: svcs.iter().map(|(n, s)| (n.clone(), &**s)).collect(),
        adoptable,
        pods: pod_list.as_ref().map(|l| l.iter().collect()),
        traffic_objects,
        analysis_runs: runs,
        analysis_templates: templates_all
            .iter()
            .filter(|t| t.namespace().as_deref() == Some(ns.as_str()))
            .map(|t| (t.name_any(), &**t))
            .collect(),
        cluster_analysis_templates: cluster_templates_all
            .iter()
            .map(|t| (t.name_any(), &**t))
            .collect(),
        workload,
    };

    // Plan (pure).
    let plan = plan::plan(&obs, now);

    // Actuate.
    let mut current_rv = rv.clone();
    let mut wrote_rollout = false;
    let name = ro.name_any();
    let rs_api: Api<ReplicaSet> = Api::namespaced(ctx.client.clone(), &ns);
    let svc_api: Api<Service> = Api::namespaced(ctx.client.clone(), &ns);
    let ro_api: Api<Rollout> = Api::namespaced(ctx.client.clone(), &ns);
    let pp = PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    };
    for effect in &plan.effects {
        match effect {
            Effect::CreateReplicaSet(rs) => {
                let post = PostParams {
                    field_manager: Some(FIELD_MANAGER.into()),
                    ..Default::default()
                };
                ctx.writes.replica_sets.fetch_add(1, Ordering::Relaxed);
                match rs_api.create(&post, rs).await {
                    Ok(_) => info!(rollout = %name, rs = rs.name_any(), "created ReplicaSet"),
                    Err(kube::Error::Api(e)) if e.code == 409 => {
                        // Exists: ours (a stale store) is fine; anything else is a collision.
                        let existing = ctx
                            .replica_sets
                            .get(&ObjectRef::new(&rs.name_any()).within(&ns));
                        let ours = existing.as_deref().is_some_and(|e| is_owned_by(e, &ro));
                        if !ours {
                            let count = ro
                                .status
                                .as_ref()
                                .and_then(|s| s.collision_count)
                                .unwrap_or(0)
                                + 1;
                            warn!(rollout = %name, "pod template hash collision: collisionCount {count}");
                            let patch = json!({"metadata": {"resourceVersion": current_rv},
                                               "status": {"collisionCount": count}});
                            ctx.writes.status.fetch_add(1, Ordering::Relaxed);
                            ro_api
                                .patch_status(&name, &pp, &Patch::Merge(&patch))
                                .await?;
                            ctx.written_from
                                .lock()
                                .unwrap()
                                .insert(key.clone(), (rv.clone(), Instant::now()));
                            return Ok(Action::await_change());
                        }
                        return Ok(Action::requeue(Duration::from_millis(200)));
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            Effect::PatchReplicaSet {
                name: rs_name,
                patch,
            } => {
                let mut body = json!({});
                if !patch.annotations.is_empty() {
                    body["metadata"] = json!({"annotations": patch.annotations});
                }
                if patch.replicas.is_some()
                    || patch.min_ready_seconds.is_some()
                    || patch.affinity.is_some()
                {
                    let mut spec = serde_json::Map::new();
                    if let Some(r) = patch.replicas {
                        spec.insert("replicas".into(), json!(r));
                    }
                    if let Some(m) = patch.min_ready_seconds {
                        spec.insert("minReadySeconds".into(), json!(m));
                    }
                    if let Some(a) = &patch.affinity {
                        spec.insert("template".into(), json!({"spec": {"affinity": a}}));
                    }
                    body["spec"] = Value::Object(spec);
                }
                ctx.writes.replica_sets.fetch_add(1, Ordering::Relaxed);
                rs_api.patch(rs_name, &pp, &Patch::Merge(&body)).await?;
            }
            Effect::DeleteReplicaSet { name: rs_name, uid } => {
                let dp = DeleteParams {
                    preconditions: Some(Preconditions {
                        uid: uid.clone(),
                        resource_version: None,
                    }),
                    ..Default::default()
                };
                ctx.writes.replica_sets.fetch_add(1, Ordering::Relaxed);
                match rs_api.delete(rs_name, &dp).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Effect::SetServiceSelector { service, hash } => {
                let body = json!({
                    "metadata": {"annotations": {crate::api::consts::MANAGED_BY_ROLLOUTS_KEY: name}},
                    "spec": {"selector": {crate::api::consts::DEFAULT_ROLLOUT_UNIQUE_LABEL_KEY: hash}},
                });
                ctx.writes.services.fetch_add(1, Ordering::Relaxed);
                svc_api.patch(service, &pp, &Patch::Merge(&body)).await?;
            }
            Effect::Traffic(change) => {
                ctx.writes.traffic.fetch_add(1, Ordering::Relaxed);
                match ctx.traffic.apply(change).await {
                    Ok(()) => {}
                    Err(Error::Kube(kube::Error::Api(e))) if e.code == 409 => {
                        // The router object moved on since we read it: plan again.
                        return Ok(Action::requeue(Duration::from_millis(100)));
                    }
                    Err(e) => return Err(e),
                }
            }
            Effect::CreateAnalysisRun(run) => {
                let api: Api<crate::api::AnalysisRun> = Api::namespaced(ctx.client.clone(), &ns);
                let post = PostParams {
                    field_manager: Some(FIELD_MANAGER.into()),
                    ..Default::default()
                };
                ctx.writes.analysis_runs.fetch_add(1, Ordering::Relaxed);
                match api.create(&post, run).await {
                    Ok(_) => info!(rollout = %name, run = run.name_any(), "created AnalysisRun"),
                    // Ours, not yet in the store.
                    Err(kube::Error::Api(e)) if e.code == 409 => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Effect::TerminateAnalysisRun { name: run } => {
                let api: Api<crate::api::AnalysisRun> = Api::namespaced(ctx.client.clone(), &ns);
                ctx.writes.analysis_runs.fetch_add(1, Ordering::Relaxed);
                match api
                    .patch(
                        run,
                        &pp,
                        &Patch::Merge(json!({"spec": {"terminate": true}})),
                    )
                    .await
                {
                    Ok(_) => {}
                    Err(kube::Error::Api(e)) if e.code == 404 => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Effect::DeleteAnalysisRun { name: run } => {
                let api: Api<crate::api::AnalysisRun> = Api::namespaced(ctx.client.clone(), &ns);
                ctx.writes.analysis_runs.fetch_add(1, Ordering::Relaxed);
                match api.delete(run, &DeleteParams::default()).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(e)) if e.code == 404 => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Effect::EphemeralMetadata {
                replica_set,
                template,
                pods,
                record,
            } => {
                let record_body = record.as_ref().map(|r| {
                    json!({"metadata": {"annotations": {
                        crate::api::consts::EPHEMERAL_METADATA_ANNOTATION: r}}})
                });
                let mut rs_body = (!template.is_empty())
                    .then(|| json!({"spec": {"template": {"metadata": template.to_json()}}}));
                // Without pods to update, the template and the record go in one patch.
                if pods.is_empty()
                    && let (Some(body), Some(rec)) = (rs_body.as_mut(), record_body.as_ref())
                {
                    body["metadata"] = rec["metadata"].clone();
                }
                let record_apart = !(pods.is_empty() && rs_body.is_some());
                if let Some(body) = rs_body {
                    ctx.writes.replica_sets.fetch_add(1, Ordering::Relaxed);
                    rs_api.patch(replica_set, &pp, &Patch::Merge(&body)).await?;
                }
                let pod_api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
                for (pod, change) in pods {
                    ctx.writes.pods.fetch_add(1, Ordering::Relaxed);
                    let body = json!({"metadata": change.to_json()});
                    match pod_api.patch(pod, &pp, &Patch::Merge(&body)).await {
                        Ok(_) => {}
                        Err(kube::Error::Api(e)) if e.code == 404 => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                if let (true, Some(body)) = (record_apart, record_body) {
                    ctx.writes.replica_sets.fetch_add(1, Ordering::Relaxed);
                    rs_api.patch(replica_set, &pp, &Patch::Merge(&body)).await?;
                }
                info!(rollout = %name, rs = %replica_set, pods = pods.len(), "synced ephemeral metadata");
            }
            Effect::EvictPod { name: pod } => {
                let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
                // policy/v1beta1: the Eviction version every server since 1.20 accepts.
                let eviction = json!({"apiVersion": "policy/v1beta1", "kind": "Eviction",
                                      "metadata": {"name": pod, "namespace": ns}});
                ctx.writes.pods.fetch_add(1, Ordering::Relaxed);
                let res: Result<Value, _> = pods
                    .create_subresource("eviction", pod, &PostParams::default(), &eviction)
                    .await;
                match res {
                    Ok(_) => info!(rollout = %name, pod = %pod, "evicted pod for restart"),
                    // 429: a PodDisruptionBudget refused; 404: already gone.
                    Err(kube::Error::Api(e)) if e.code == 429 || e.code == 404 => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Effect::ScaleWorkload(change) => {
                ctx.writes.workloads.fetch_add(1, Ordering::Relaxed);
                match ctx.traffic.apply(change).await {
                    Ok(()) => {
                        info!(rollout = %name, workload = %change.key(), "scaled the referenced workload")
                    }
                    Err(Error::Kube(kube::Error::Api(e))) if e.code == 409 => {
                        // The Deployment moved on since we read it: plan again.
                        return Ok(Action::requeue(Duration::from_millis(100)));
                    }
                    Err(e) => return Err(e),
                }
            }
            Effect::SetRolloutRevision { .. } | Effect::SetWorkloadGeneration { .. } => {
                let Some((key, value)) = effect.rollout_annotation() else {
                    continue;
                };
                let body = json!({
                    "metadata": {"resourceVersion": current_rv, "annotations": {key: value}},
                });
                ctx.writes.rollouts.fetch_add(1, Ordering::Relaxed);
                match ro_api.patch(&name, &pp, &Patch::Merge(&body)).await {
                    Ok(updated) => {
                        current_rv = updated.resource_version().unwrap_or_default();
                        wrote_rollout = true;
                    }
                    Err(kube::Error::Api(e)) if e.code == 409 => {
                        return Ok(Action::requeue(Duration::ZERO));
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }

    // Report: the status diff, with the resourceVersion as precondition.
    let old = serde_json::to_value(ro.status.clone().unwrap_or_default())?;
    let mut new = serde_json::to_value(&plan.status)?;
    // Go's `omitempty`: an empty string is never written (and the 1.20 API server rejects one
    // in a CRD merge patch as `null`).
    diff::strip_empty_strings(&mut new);
    if let Some(d) = diff::merge_diff(&old, &new) {
        let body = json!({"metadata": {"resourceVersion": current_rv}, "status": d});
        ctx.writes.status.fetch_add(1, Ordering::Relaxed);
        match ro_api.patch_status(&name, &pp, &Patch::Merge(&body)).await {
            Ok(_) => wrote_rollout = true,
            Err(kube::Error::Api(e)) if e.code == 409 => {
                // Someone (a user command, or our own earlier write) changed the Rollout since
                // we read it: plan again from the fresh object.
                debug!(rollout = %name, "status conflict; replanning");
                return Ok(Action::requeue(Duration::from_millis(50)));
            }
            Err(e) => {
                warn!(rollout = %name, patch = %d, "status update rejected: {e}");
                return Err(e.into());
            }
        }
        debug!(rollout = %name, patch = %d, "status updated");
    }
    if wrote_rollout {
        ctx.written_from
            .lock()
            .unwrap()
            .insert(key.clone(), (rv, Instant::now()));
    }
    publish_events(&ctx.recorder, &ro.object_ref(&()), &plan.events).await;
    ctx.failures.lock().unwrap().remove(&key);
    if let Some(o) = &ctx.observer {
        o.reconciled(&ro, Some(&plan.status), started.elapsed(), None);
    }
    debug!(rollout = %name, effects = plan.effects.len(), elapsed_ms = started.elapsed().as_millis() as u64, "reconciled");
    Ok(match plan.requeue_after {
        Some(d) => Action::requeue(d),
        None => Action::await_change(),
    })
}

fn error_policy(ro: Arc<Rollout>, err: &Error, ctx: Arc<Context>) -> Action {
    let key = ObjectRef::from_obj(&*ro);
    let n = {
        let mut f = ctx.failures.lock().unwrap();
        let n = f.entry(key).or_insert(0);
        *n = n.saturating_add(1);
        *n
    };
    let delay =
        Duration::from_millis(100u64.saturating_mul(1u64 << n.min(7))).min(Duration::from_secs(10));
    warn!(rollout = %ro.name_any(), reason = err.reason(), "reconcile failed ({err}); retrying in {delay:?}");
    if let Some(o) = &ctx.observer {
        o.reconciled(&ro, None, Duration::ZERO, Some(err.reason()));
    }
    Action::requeue(delay)
}

#[cfg(test)]
mod tests {
    use super::Tasks;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    /// Sets its flag when dropped: a task's future is dropped when the task is aborted.
    struct Flag(Arc<AtomicBool>);
    impl Drop for Flag {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    #[tokio::test]
    async fn dropping_tasks_aborts_what_is_still_running() {
        let ended = Arc::new(AtomicBool::new(false));
        let tasks = Tasks::default();
        let flag = Flag(ended.clone());
        tasks.spawn(async move {
            let _flag = flag;
            std::future::pending::<()>().await;
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!ended.load(Ordering::SeqCst), "the task runs while held");
        drop(tasks);
        for _ in 0..100 {
            if ended.load(Ordering::SeqCst) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the task outlived the dropped set");
    }
}
