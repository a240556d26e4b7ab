//! The controller: [`observe`] (reflector stores) → [`crate::plan::plan`] (pure) →
//! [`actuate`] (idempotent writes, one field manager) → [`report`] (status subresource,
//! events, why the Rollout waits). Each reconcile runs in a span naming the Rollout.
//!
//! Reads come from reflector stores only. Writes:
//! - ReplicaSets are created, merge-patched (replicas, annotations) and deleted;
//! - Services get their `rollouts-pod-template-hash` selector and managed-by annotation;
//! - AnalysisRuns and the Experiments of canary `experiment` steps are created, terminated
//!   (`spec.terminate`) and deleted (history limits); both are watched and owned, so their
//!   phase changes reconcile the Rollout;
//! - the Rollout's status is merge-patched with the smallest diff, carrying
//!   `metadata.resourceVersion` as a precondition, so a status computed from a stale view can
//!   never overwrite a user's concurrent command (promote, abort, retry...): the write fails
//!   with a conflict and the next reconcile sees the command.
//!
//! After writing a Rollout we remember every resourceVersion of it that our writes left behind:
//! the one we read, and each one a later write of the same reconcile replaced (a metadata patch,
//! then the status). Until the store has moved past all of them, reconciles of that Rollout wait
//! (the watch event of our own last write triggers the next one). This is what keeps a stale
//! read from undoing the step we just took, and a reconcile from planning on the version between
//! two of our writes (its status write would only fail with a conflict).

pub mod actuate;
pub mod adopt;
pub mod analysis;
pub mod decode;
pub mod diff;
pub mod experiment;
pub mod index;
pub mod janitor;
mod observe;
pub mod report;
pub mod slim;
pub mod traffic;

use actuate::Sent;

use crate::api::Rollout;
use crate::events::Recorder;
use crate::plan::{self, Effect};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Service;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::Reporter;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::json;
use slim::Compact;
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
    /// Notifications (see [`crate::notify`]); `None`: none are sent.
    pub notifications: Option<crate::notify::Options>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            namespace: None,
            instance_id: None,
            concurrency: 10,
            observer: None,
            notifications: None,
        }
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("namespace", &self.namespace)
            .field("instance_id", &self.instance_id)
            .field("concurrency", &self.concurrency)
            .field("notifications", &self.notifications)
            .finish()
    }
}

/// Hooks for metrics, told about every reconcile of a Rollout.
pub trait Observer: Send + Sync {
    /// A reconcile finished: `rollout` as reconciled, `status` the status the plan wanted
    /// and `wait` why it waits (both `None` when the reconcile failed), `error` the bounded
    /// reason of a failure.
    fn reconciled(
        &self,
        rollout: &Rollout,
        status: Option<&crate::api::RolloutStatus>,
        wait: Option<&crate::plan::Wait>,
        elapsed: Duration,
        error: Option<&'static str>,
    );
    /// The Rollout store, once at start: per-Rollout gauges (`rollout_info`, `rollout_phase`)
    /// are best computed from it when scraped, so deleted Rollouts disappear by themselves.
    /// `synced` tells when it has listed (never poll the store's own readiness: see [`Synced`]).
    fn attach(&self, rollouts: Store<Compact<Rollout>>, synced: Synced);
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
    #[error("encoding or decoding an object: {0}")]
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
    /// Experiments of canary `experiment` steps.
    pub experiments: AtomicU64,
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
            + self.experiments.load(Ordering::Relaxed)
            + self.workloads.load(Ordering::Relaxed)
    }
}

/// State shared by reconciles.
pub struct Context {
    pub client: Client,
    pub replica_sets: Store<Compact<ReplicaSet>>,
    /// The ReplicaSets of `replica_sets` by their controller's uid.
    replica_sets_by_owner: index::Index<Compact<ReplicaSet>, String>,
    pub services: Store<Service>,
    pub recorder: Recorder,
    pub writes: Arc<WriteCounters>,
    /// Traffic router objects, watched on demand.
    pub traffic: traffic::TrafficStores,
    pub analysis_runs: Store<crate::api::AnalysisRun>,
    /// Experiments (those a Rollout controls are its `experiment` steps').
    pub experiments: Store<crate::api::Experiment>,
    /// The AnalysisRuns of `analysis_runs` by their controller's uid.
    analysis_runs_by_owner: index::Index<crate::api::AnalysisRun, String>,
    pub analysis_templates: Store<crate::api::AnalysisTemplate>,
    pub cluster_analysis_templates: Store<crate::api::ClusterAnalysisTemplate>,
    /// Whether `cluster_analysis_templates` is fed (cluster-wide mode only).
    pub cluster_templates_watched: bool,
    pub observer: Option<Arc<dyn Observer>>,
    /// Turns recorded events into notifications.
    pub notifier: Option<Arc<crate::notify::Notifier>>,
    /// Rollout → the resourceVersions our last writes left behind (see the module docs).
    written_from: Mutex<HashMap<ObjectRef<Rollout>, LeftBehind>>,
    /// Rollout → consecutive failures (for backoff).
    failures: Mutex<HashMap<ObjectRef<Rollout>, u32>>,
    /// Rollout → why it waited at its last reconcile (logged when it changes).
    waits: Mutex<HashMap<ObjectRef<Rollout>, String>>,
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
    let wc = watcher::Config::default().labels(&crate::api::instance_selector(
        config.instance_id.as_deref(),
    ));

    // Only the ReplicaSets Rollouts control are cached, without what no reader uses (see
    // `slim`): another owner's ReplicaSet concerns no plan (one in the way of a name we create
    // is found by the create's conflict).
    let (rs_store, rs_writer) = reflector::store();
    let rs_by_owner = index::Index::new(controller_uids::<Compact<ReplicaSet>>);
    let rs_stream = slim::controlled_by_kind(
        watcher(rs_api, watcher::Config::default()).default_backoff(),
        "argoproj.io",
        "Rollout",
    )
    .modify(slim::strip)
    .map_ok(slim::compact)
    .inspect(rs_by_owner.feeder())
    .reflect(rs_writer)
    .touched_objects();
    // AnalysisRuns (owned by Rollouts) and the templates runs are built from.
    let (ar_store, ar_writer) = reflector::store::<crate::api::AnalysisRun>();
    let ar_by_owner = index::Index::new(controller_uids::<crate::api::AnalysisRun>);
    let ar_stream = decode::tolerant(watcher(
        decode::untyped::<crate::api::AnalysisRun>(&client, config.namespace.as_deref()),
        watcher::Config::default(),
    ))
    .default_backoff()
    .modify(slim::strip)
    .inspect(ar_by_owner.feeder())
    .reflect(ar_writer)
    .touched_objects();
    // Experiments (owned by Rollouts through their `experiment` steps).
    let (ex_store, ex_writer) = reflector::store::<crate::api::Experiment>();
    let ex_stream = decode::tolerant(watcher(
        decode::untyped::<crate::api::Experiment>(&client, config.namespace.as_deref()),
        watcher::Config::default(),
    ))
    .default_backoff()
    .modify(slim::strip)
    .reflect(ex_writer)
    .touched_objects();
    let (at_store, at_writer) = reflector::store::<crate::api::AnalysisTemplate>();
    let tasks = Tasks::default();
    // A template's arrival or change concerns the Rollouts that name it (one named before it
    // existed is InvalidSpec until then).
    let at_stream = decode::tolerant(watcher(
        decode::untyped::<crate::api::AnalysisTemplate>(&client, config.namespace.as_deref()),
        watcher::Config::default(),
    ))
    .default_backoff()
    .modify(slim::strip)
    .reflect(at_writer)
    .touched_objects();
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
            .modify(slim::strip)
            .reflect(cat_writer)
            .for_each(|_| futures::future::ready(())),
        );
    }
    let (svc_store, svc_writer) = reflector::store();
    let svc_stream = watcher(svc_api, watcher::Config::default())
        .default_backoff()
        .modify(slim::strip)
        .reflect(svc_writer)
        .touched_objects();

    // Rollouts are watched untyped and decoded one by one (see `decode`).
    let (bad_tx, bad_rx) = tokio::sync::mpsc::unbounded_channel();
    let (ro_reader, ro_writer) = reflector::store::<Compact<Rollout>>();
    let ro_synced = Synced::default();
    // What each Rollout references, kept in step with the Rollout store: a change to a Service,
    // template, router object or workload finds the Rollouts concerned by look-up.
    let references = index::Index::new(references);
    // The Services each Rollout names, for the Service janitor (every Rollout, naming any or
    // not), so that it never decodes the cached Rollouts.
    let named_services = index::Index::new_keeping_all(crate::plan::referenced_services);
    let ro_stream = decode::typed(watcher(rollouts, wc).modify(slim::strip), bad_tx)
        .default_backoff()
        .inspect(references.feeder())
        .inspect(named_services.feeder())
        .map_ok(slim::compact)
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
        named_services,
        ro_synced,
        writes.clone(),
    ));
    let traffic_triggers = futures::stream::unfold(traffic_changes, |mut rx| async move {
        rx.recv().await.map(|key| (key, rx))
    })
    .flat_map({
        let references = references.clone();
        move |key| futures::stream::iter(concerned(&references, &Reference::object(&key)))
    });
    let reporter = Reporter {
        controller: FIELD_MANAGER.into(),
        instance: std::env::var("POD_NAME").ok(),
    };
    let notifier = config.notifications.clone().map(|opts| {
        crate::notify::Notifier::start(
            client.clone(),
            opts,
            config.namespace.as_deref(),
            &crate::api::instance_selector(config.instance_id.as_deref()),
            |f| tasks.spawn(f),
        )
    });
    let ctx = Arc::new(Context {
        client: client.clone(),
        replica_sets: rs_store,
        replica_sets_by_owner: rs_by_owner,
        services: svc_store,
        recorder: Recorder::new(client, reporter),
        writes,
        traffic: traffic_stores,
        analysis_runs: ar_store,
        experiments: ex_store,
        analysis_runs_by_owner: ar_by_owner,
        analysis_templates: at_store,
        cluster_analysis_templates: cat_store,
        cluster_templates_watched: config.namespace.is_none(),
        observer: config.observer.clone(),
        notifier,
        written_from: Mutex::new(HashMap::new()),
        failures: Mutex::new(HashMap::new()),
        waits: Mutex::new(HashMap::new()),
    });
    controller
        .with_config(kube::runtime::controller::Config::default().concurrency(config.concurrency))
        .owns_stream(rs_stream)
        .owns_stream(ar_stream)
        .owns_stream(ex_stream)
        .reconcile_on(traffic_triggers)
        .watches_stream(svc_stream, {
            // A Service change concerns the Rollouts that name it.
            let references = references.clone();
            move |svc: Service| {
                let svc = Reference::Service(svc.namespace().unwrap_or_default(), svc.name_any());
                concerned(&references, &svc)
            }
        })
        .watches_stream(at_stream, move |t: crate::api::AnalysisTemplate| {
            // A template's arrival or change concerns the Rollouts that name it.
            let t = Reference::Template(t.namespace().unwrap_or_default(), t.name_any());
            concerned(&references, &t)
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

/// The resourceVersions of a Rollout our last writes replaced, and when we wrote.
type LeftBehind = (Vec<String>, Instant);

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

/// The Rollouts `reference` concerns, by the controller's keys (its store holds them compact;
/// the index was fed the decoded Rollouts).
fn concerned(
    references: &index::Index<Rollout, Reference>,
    reference: &Reference,
) -> Vec<ObjectRef<Compact<Rollout>>> {
    references
        .get(reference)
        .into_iter()
        .map(|r| {
            let cached = ObjectRef::new(&r.name);
            match r.namespace {
                Some(ns) => cached.within(&ns),
                None => cached,
            }
        })
        .collect()
}

/// The uids of an object's controllers (the key of the by-owner indexes).
fn controller_uids<K: Resource>(obj: &K) -> Vec<String> {
    obj.meta()
        .owner_references
        .iter()
        .flatten()
        .filter(|o| o.controller == Some(true))
        .map(|o| o.uid.clone())
        .collect()
}

/// Something a Rollout references whose changes concern it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Reference {
    /// A Service (namespace, name).
    Service(String, String),
    /// An AnalysisTemplate (namespace, name) named directly by the strategy.
    Template(String, String),
    /// A router object or the `workloadRef` workload: apiVersion, kind, namespace, name.
    Object(String, String, String, String),
}

impl Reference {
    fn object(k: &crate::traffic::ObjectKey) -> Reference {
        Reference::Object(
            k.api_version.clone(),
            k.kind.clone(),
            k.namespace.clone(),
            k.name.clone(),
        )
    }
}

/// Everything `ro` references (the keys of the reference index).
fn references(ro: &Rollout) -> Vec<Reference> {
    let ns = ro.namespace().unwrap_or_default();
    let mut out: Vec<Reference> = plan::service_names(ro)
        .into_iter()
        .map(|s| Reference::Service(ns.clone(), s))
        .collect();
    let mut analyses: Vec<&crate::api::RolloutAnalysis> = Vec::new();
    if let Some(b) = ro.blue_green() {
        analyses.extend(b.pre_promotion_analysis.iter());
        analyses.extend(b.post_promotion_analysis.iter());
    }
    analyses.extend(ro.canary_steps().iter().filter_map(|s| s.analysis.as_ref()));
    analyses.extend(
        ro.canary()
            .and_then(|c| c.analysis.as_ref())
            .map(|a| &a.analysis),
    );
    out.extend(
        analyses
            .iter()
            .flat_map(|a| a.templates.iter().flatten())
            .filter(|t| t.cluster_scope != Some(true))
            .filter_map(|t| t.template_name.clone())
            .map(|name| Reference::Template(ns.clone(), name)),
    );
    let workload = plan::workload::key(ro).and_then(Result::ok);
    out.extend(
        crate::traffic::referenced_objects(ro)
            .iter()
            .chain(workload.as_ref())
            .map(Reference::object),
    );
    out.sort();
    out.dedup();
    out
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
        let (a, b, c, d, e, f) = futures::join!(
            store_ready(&self.replica_sets, limit),
            store_ready(&self.services, limit),
            store_ready(&self.analysis_runs, limit),
            store_ready(&self.analysis_templates, limit),
            cluster_templates,
            store_ready(&self.experiments, limit),
        );
        a && b && c && d && e && f
    }
}

/// One reconcile: observe → plan → actuate → report, in the Rollout's own span.
#[tracing::instrument(skip_all, fields(namespace = cached.namespace().unwrap_or_default(), name = cached.name_any()))]
async fn reconcile(cached: Arc<Compact<Rollout>>, ctx: Arc<Context>) -> Result<Action, Error> {
    if !ctx.caches_synced().await {
        return Ok(Action::requeue(Duration::from_millis(500)));
    }
    let ro = Arc::new(cached.decode()?);
    drop(cached);
    let key = ObjectRef::from_obj(&*ro);
    let rv = ro.resource_version().unwrap_or_default();
    {
        let mut written = ctx.written_from.lock().unwrap();
        if let Some((behind, at)) = written.get(&key) {
            if behind.contains(&rv) && at.elapsed() < Duration::from_secs(10) {
                // The store has not caught up with our last write yet.
                return Ok(Action::await_change());
            }
            written.remove(&key);
        }
    }
    let started = Instant::now();
    let now = k8s_openapi::jiff::Timestamp::now();
    let mut observation = observe::observe(&ctx, ro.clone(), now).await?;
    let plan = plan::plan(&observation.observed(), now);
    // The Rollout's AnalysisRuns, for notification templates (only when they may be needed).
    let runs = if ctx.notifier.is_some() && !plan.events.is_empty() {
        observation.analysis_runs().to_vec()
    } else {
        Vec::new()
    };
    drop(observation);
    report::wait_changed(&ctx, &ro, plan.wait.as_ref());

    // Actuate: every effect's requests, in order.
    let ns = ro.namespace().unwrap_or_default();
    let name = ro.name_any();
    let mut current_rv = rv.clone();
    // The versions of the Rollout our writes leave behind.
    let mut behind = vec![rv.clone()];
    for effect in &plan.effects {
        for req in actuate::requests(effect, &name, &current_rv) {
            match actuate::send(&ctx, &ns, &req).await? {
                Sent::Done => {}
                Sent::RolloutWritten(new_rv) => {
                    behind.push(std::mem::replace(&mut current_rv, new_rv));
                }
                Sent::Stale => {
                    // The object moved on since it was read: plan again (at once for the
                    // Rollout itself, whose watch event is already on its way).
                    let delay = match req {
                        actuate::Request::Patch { .. } => Duration::ZERO,
                        _ => Duration::from_millis(100),
                    };
                    return Ok(Action::requeue(delay));
                }
                Sent::Exists => {
                    let actuate::Request::CreateReplicaSet(rs) = &req else {
                        continue;
                    };
                    return replica_set_exists(&ctx, &ro, rs, &current_rv, &rv).await;
                }
            }
        }
        log_effect(effect);
    }

    // Report.
    match report::write_status(&ctx, &ro, &plan, &current_rv).await? {
        report::Reported::Conflict => return Ok(Action::requeue(Duration::from_millis(50))),
        report::Reported::Done { wrote: true } => behind.push(current_rv),
        // The last version written (if any) is the one to wait for, not one left behind.
        report::Reported::Done { wrote: false } => behind.retain(|v| *v != current_rv),
    }
    if !behind.is_empty() {
        ctx.written_from
            .lock()
            .unwrap()
            .insert(key.clone(), (behind, Instant::now()));
    }
    report::publish_events(&ctx.recorder, &report::reference(&ro), &plan.events).await;
    if let Some(n) = &ctx.notifier {
        // As upstream, templates see the Rollout as this reconcile read it (so the catalog's
        // `add .rollout.status.currentStepIndex 1` is the number of the step just completed).
        n.observe(
            &ro,
            &plan.events,
            &runs.iter().map(|r| &**r).collect::<Vec<_>>(),
        );
    }
    ctx.failures.lock().unwrap().remove(&key);
    if let Some(o) = &ctx.observer {
        o.reconciled(
            &ro,
            Some(&plan.status),
            plan.wait.as_ref(),
            started.elapsed(),
            None,
        );
    }
    debug!(
        effects = plan.effects.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "reconciled"
    );
    Ok(match plan.requeue_after {
        Some(d) => Action::requeue(d),
        None => Action::await_change(),
    })
}

/// The info line of an effect carried out (the others are routine).
fn log_effect(effect: &Effect) {
    match effect {
        Effect::CreateReplicaSet(rs) => info!(rs = rs.name_any(), "created ReplicaSet"),
        Effect::CreateAnalysisRun(run) => info!(run = run.name_any(), "created AnalysisRun"),
        Effect::EphemeralMetadata {
            replica_set, pods, ..
        } => info!(rs = %replica_set, pods = pods.len(), "synced ephemeral metadata"),
        Effect::EvictPod { name } => info!(pod = %name, "evicted pod for restart"),
        Effect::ScaleWorkload(change) => {
            info!(workload = %change.key(), "scaled the referenced workload")
        }
        _ => {}
    }
}

/// A ReplicaSet we create exists already. Ours (a store behind the API server) is fine: plan
/// again shortly. Anyone else's is a pod-template hash collision: `status.collisionCount`
/// goes up, and the next plan names the ReplicaSet differently.
async fn replica_set_exists(
    ctx: &Context,
    ro: &Rollout,
    rs: &ReplicaSet,
    current_rv: &str,
    read_rv: &str,
) -> Result<Action, Error> {
    let ns = ro.namespace().unwrap_or_default();
    let existing = ctx
        .replica_sets
        .get(&ObjectRef::new(&rs.name_any()).within(&ns));
    if existing
        .as_deref()
        .is_some_and(|e| crate::api::is_controlled_by(e, ro))
    {
        return Ok(Action::requeue(Duration::from_millis(200)));
    }
    let count = ro
        .status
        .as_ref()
        .and_then(|s| s.collision_count)
        .unwrap_or(0)
        + 1;
    warn!("pod template hash collision: collisionCount {count}");
    let patch = json!({"metadata": {"resourceVersion": current_rv},
                       "status": {"collisionCount": count}});
    let pp = PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    };
    ctx.writes.status.fetch_add(1, Ordering::Relaxed);
    Api::<Rollout>::namespaced(ctx.client.clone(), &ns)
        .patch_status(&ro.name_any(), &pp, &Patch::Merge(&patch))
        .await?;
    ctx.written_from.lock().unwrap().insert(
        ObjectRef::from_obj(ro),
        (
            vec![read_rv.to_owned(), current_rv.to_owned()],
            Instant::now(),
        ),
    );
    Ok(Action::await_change())
}

/// The wait before retrying an object after `failures` consecutive failed reconciles:
/// 200 ms doubling, at most 10 s.
pub(crate) fn retry_delay(failures: u32) -> Duration {
    Duration::from_millis(100u64.saturating_mul(1u64 << failures.min(7)))
        .min(Duration::from_secs(10))
}

fn error_policy(cached: Arc<Compact<Rollout>>, err: &Error, ctx: Arc<Context>) -> Action {
    let key = ObjectRef::<Rollout>::new(&cached.name_any())
        .within(&cached.namespace().unwrap_or_default());
    let n = {
        let mut f = ctx.failures.lock().unwrap();
        let n = f.entry(key).or_insert(0);
        *n = n.saturating_add(1);
        *n
    };
    let delay = retry_delay(n);
    warn!(rollout = %cached.name_any(), reason = err.reason(), "reconcile failed ({err}); retrying in {delay:?}");
    if let (Some(o), Ok(ro)) = (&ctx.observer, cached.decode()) {
        o.reconciled(&ro, None, None, Duration::ZERO, Some(err.reason()));
    }
    Action::requeue(delay)
}

#[cfg(test)]
mod interpret_tests;
#[cfg(test)]
mod request_tests;

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
