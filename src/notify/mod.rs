//! Notifications, configured as upstream's (ConfigMap `argo-rollouts-notification-configmap`,
//! Secret `argo-rollouts-notification-secret`, subscription annotations on the Rollout) and
//! delivered to Slack, webhooks, Microsoft Teams, email, Mattermost and Google Chat.
//!
//! - **When.** The controller records events on a Rollout after writing its status; each event fires the trigger its reason names
//!   ([`trigger::trigger_for_reason`]), as upstream's event recorder does. [`Notifier::observe`]
//!   works out, without any I/O, the destinations subscribed to that trigger, the conditions
//!   that hold and the key of each notification, and puts one job per notification in a
//!   bounded queue (`try_send`: a reconcile never waits for a notification; a full queue drops
//!   the job and counts an error).
//! - **Who sends.** One worker per controller. The controller runs only while its replica holds
//!   the leader Lease, so only the leader sends, and a replica that loses the Lease stops
//!   sending in the same instant its controller is dropped.
//! - **Never twice, never lost.** The worker works in two stages. Stage one renders a job and
//!   stores it, rendered, in the Rollout's annotation `pending.notifications.argoproj.io`
//!   (skipping a key already sent or pending); stage two delivers pending notifications in
//!   order and then, in one write, removes the entry and adds the key to the record
//!   `notified.notifications.argoproj.io` (see [`record`]). Both writes are merge patches with
//!   the resourceVersion read as precondition (read again and retried on a conflict). Both
//!   annotations live on the Rollout, so they survive restarts and move with leadership: a new
//!   leader lists the Rollouts once at start and delivers what was left pending. What stays
//!   possible (a crash between the delivery and the record, or between the status write and
//!   the pending entry) is in the README.
//! - **Failures.** Transport errors, timeouts, 5xx and 429 are retried with exponential backoff
//!   (capped) until [`Retry::give_up_after`]; a 4xx is not retried. A broken template, an
//!   unknown service, a missing secret key or a bad subscription annotation is a Warning event
//!   on the Rollout (once per problem and Rollout while the process runs) and an error metric;
//!   nothing else changes.

pub mod config;
pub mod metrics;
pub mod record;
pub mod services;
pub mod subscriptions;
pub mod template;
pub mod trigger;

use crate::api::{AnalysisRun, Rollout};
use crate::events::Recorder;
use config::{CONFIG_MAP, ConfigError, SECRET, Settings};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, ObjectReference, Secret};
use kube::api::{Patch, PatchParams};
use kube::runtime::events::{Event as KEvent, EventType};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use metrics::{EventLabels, NotifyMetrics, SendLabels};
use serde_json::{Value as Json, json};
use services::{Outgoing, SendError};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use subscriptions::{AnnotationError, Destination};
use template::TemplateError;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};
use trigger::TriggerError;

/// The reason of the Warning events this module records.
pub const WARNING_REASON: &str = "NotificationFailed";

/// Retry policy for deliveries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retry {
    /// First wait.
    pub initial: Duration,
    /// Cap on one wait.
    pub max: Duration,
    /// A notification still failing this long after its first attempt is given up.
    pub give_up_after: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(30),
            give_up_after: Duration::from_secs(600),
        }
    }
}

/// Notification settings of a controller.
#[derive(Clone, Debug)]
pub struct Options {
    /// Where the ConfigMap and Secret are read (the controller's namespace).
    pub namespace: String,
    /// Also read the pair in each Rollout's own namespace (`--self-service-notification-enabled`).
    pub self_service: bool,
    /// Jobs waiting at most.
    pub queue_capacity: usize,
    pub retry: Retry,
    pub metrics: Arc<NotifyMetrics>,
}

impl Options {
    pub fn new(namespace: impl Into<String>) -> Options {
        Options {
            namespace: namespace.into(),
            self_service: false,
            queue_capacity: 1024,
            retry: Retry::default(),
            metrics: Arc::new(NotifyMetrics::default()),
        }
    }
}

/// Why a notification was not sent.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Annotation(#[from] AnnotationError),
    #[error(transparent)]
    Trigger(#[from] TriggerError),
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error("service {0:?} is not defined in the notification ConfigMap")]
    UnknownService(String),
    #[error(transparent)]
    Send(#[from] SendError),
    #[error("the notification queue is full ({0} jobs); notification dropped")]
    QueueFull(usize),
}

impl NotifyError {
    /// A bounded name for the kind of problem (the Warning event's action: events with the
    /// same reason and action on one object are aggregated into one).
    pub fn action(&self) -> &'static str {
        match self {
            NotifyError::Config(_) => "LoadSettings",
            NotifyError::Annotation(_) => "ReadSubscriptions",
            NotifyError::Trigger(_) => "EvaluateTrigger",
            NotifyError::Template(_) => "RenderTemplate",
            NotifyError::UnknownService(_) => "FindService",
            NotifyError::Send(_) => "Send",
            NotifyError::QueueFull(_) => "Queue",
        }
    }
}

/// One notification to deliver.
#[derive(Debug, Clone)]
pub struct Job {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub reference: ObjectReference,
    pub key: String,
    pub trigger: String,
    pub event: EventLabels,
    pub destination: Destination,
    pub templates: Vec<String>,
    /// The Rollout as the reconcile that recorded the event read it.
    pub rollout: Arc<Json>,
    pub analysis_runs: Arc<Vec<Json>>,
    pub settings: Arc<Settings>,
}

/// Events recorded before the settings were read.
struct Deferred {
    rollout: Rollout,
    events: Vec<crate::plan::Event>,
    runs: Vec<AnalysisRun>,
}

enum Work {
    Send(Box<Job>),
    Defer(Box<Deferred>),
    Warn {
        reference: Box<ObjectReference>,
        labels: SendLabels,
        action: &'static str,
        problem: String,
    },
}

/// Settings parsed from one ConfigMap/Secret pair, by their resourceVersions.
type Cached = HashMap<String, ((String, String), Arc<Settings>)>;

/// The notification front end: watches the settings, turns events into jobs.
pub struct Notifier {
    shared: Arc<Shared>,
    tx: mpsc::Sender<Work>,
}

/// What the front end and the worker both read.
struct Shared {
    opts: Options,
    /// One store per namespace scope watched.
    config_maps: Vec<Store<ConfigMap>>,
    secrets: Vec<Store<Secret>>,
    /// Set when each store has had its first listing (read from the watch streams: a store's
    /// own readiness future wakes only one waiter).
    synced: Vec<Arc<std::sync::atomic::AtomicBool>>,
    cache: Mutex<Cached>,
}

/// Watches the objects named `name` in `ns` (`None`: all namespaces) into a store, spawned
/// with `spawn`; the flag is set once the store has listed.
fn watch_named<K>(
    client: &Client,
    ns: Option<&str>,
    name: &str,
    spawn: &impl Fn(futures::future::BoxFuture<'static, ()>),
) -> (Store<K>, Arc<std::sync::atomic::AtomicBool>)
where
    K: Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let flag = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (store, writer) = reflector::store::<K>();
    let api: Api<K> = match ns {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let what = format!("{name} in {}", ns.unwrap_or("all namespaces"));
    spawn(Box::pin(
        watcher(
            api,
            watcher::Config::default().fields(&format!("metadata.name={name}")),
        )
        .default_backoff()
        .reflect(writer)
        .inspect(synced_on_init(flag.clone()))
        .for_each(move |ev| {
            if let Err(e) = ev {
                debug!("watching {what}: {e}");
            }
            futures::future::ready(())
        }),
    ));
    (store, flag)
}

/// Sets `flag` when a watch stream has listed.
fn synced_on_init<K>(
    flag: Arc<std::sync::atomic::AtomicBool>,
) -> impl FnMut(&Result<watcher::Event<K>, watcher::Error>) {
    move |ev| {
        if matches!(ev, Ok(watcher::Event::InitDone)) {
            flag.store(true, std::sync::atomic::Ordering::Release);
        }
    }
}

fn secret_data(secret: Option<&Secret>) -> HashMap<String, String> {
    let mut out = HashMap::new();
    if let Some(s) = secret {
        for (k, v) in s.data.iter().flatten() {
            out.insert(k.clone(), String::from_utf8_lossy(&v.0).into_owned());
        }
        for (k, v) in s.string_data.iter().flatten() {
            out.insert(k.clone(), v.clone());
        }
    }
    out
}

impl Notifier {
    /// Starts watching the settings and the delivery worker; both are spawned with `spawn`
    /// (the controller's task set, so they end with it). `scope` is the controller's namespace
    /// (`None`: all), `selector` the label selector of the Rollouts it manages.
    pub fn start(
        client: Client,
        opts: Options,
        scope: Option<&str>,
        selector: &str,
        spawn: impl Fn(futures::future::BoxFuture<'static, ()>),
    ) -> Arc<Notifier> {
        // The controller's namespace; with self-service also the Rollouts' (all of them, or
        // the one a namespaced controller watches).
        let mut scopes: Vec<Option<String>> = vec![Some(opts.namespace.clone())];
        if opts.self_service {
            match scope {
                None => scopes = vec![None],
                Some(x) if x != opts.namespace => scopes.push(Some(x.to_string())),
                Some(_) => {}
            }
        }
        let mut config_maps = Vec::new();
        let mut secrets = Vec::new();
        let mut synced = Vec::new();
        for ns in &scopes {
            let (store, flag) =
                watch_named::<ConfigMap>(&client, ns.as_deref(), CONFIG_MAP, &spawn);
            config_maps.push(store);
            synced.push(flag);
            let (store, flag) = watch_named::<Secret>(&client, ns.as_deref(), SECRET, &spawn);
            secrets.push(store);
            synced.push(flag);
        }
        let (tx, rx) = mpsc::channel(opts.queue_capacity.max(1));
        let shared = Arc::new(Shared {
            opts: opts.clone(),
            config_maps,
            secrets,
            synced,
            cache: Mutex::new(HashMap::new()),
        });
        let worker = Arc::new(Worker {
            client: client.clone(),
            recorder: Recorder::new(
                client,
                kube::runtime::events::Reporter {
                    controller: "rollouts-controller".into(),
                    instance: std::env::var("POD_NAME").ok(),
                },
            ),
            retry: opts.retry,
            metrics: opts.metrics.clone(),
            http: services::http_client(),
            threads: services::slack::Threads::default(),
            warned: Mutex::new(HashSet::new()),
            shared: shared.clone(),
            seq: Mutex::new(0),
        });
        spawn(Box::pin(worker.run(
            rx,
            scope.map(str::to_string),
            selector.to_string(),
        )));
        Arc::new(Notifier { shared, tx })
    }

    /// The settings for a Rollout in `ns` (`None` without a notification ConfigMap).
    pub fn settings_for(&self, ns: &str) -> Option<Arc<Settings>> {
        self.shared.settings_for(ns)
    }
}

impl Shared {
    /// Whether every store has listed.
    fn synced(&self) -> bool {
        self.synced
            .iter()
            .all(|f| f.load(std::sync::atomic::Ordering::Acquire))
    }

    /// Waits until [`Shared::synced`].
    async fn wait_synced(&self) {
        while !self.synced() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The settings of one namespace's pair, if its ConfigMap exists.
    fn settings_in(&self, ns: &str) -> Option<Arc<Settings>> {
        let cm = self
            .config_maps
            .iter()
            .find_map(|s| s.get(&ObjectRef::new(CONFIG_MAP).within(ns)))?;
        let secret = self
            .secrets
            .iter()
            .find_map(|s| s.get(&ObjectRef::new(SECRET).within(ns)));
        let versions = (
            cm.resource_version().unwrap_or_default(),
            secret
                .as_ref()
                .and_then(|s| s.resource_version())
                .unwrap_or_default(),
        );
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((v, s)) = cache.get(ns)
            && *v == versions
        {
            return Some(s.clone());
        }
        let data: BTreeMap<String, String> = cm.data.clone().unwrap_or_default();
        let settings = Arc::new(Settings::parse(&data, &secret_data(secret.as_deref())));
        cache.insert(ns.to_string(), (versions, settings.clone()));
        Some(settings)
    }

    /// The settings for a Rollout in `ns`.
    fn settings_for(&self, ns: &str) -> Option<Arc<Settings>> {
        let global = self.settings_in(&self.opts.namespace);
        if !self.opts.self_service || ns == self.opts.namespace {
            return global;
        }
        match (global, self.settings_in(ns)) {
            (Some(g), Some(l)) => Some(Arc::new(g.merged(&l))),
            (g, l) => g.or(l),
        }
    }
}

impl Notifier {
    /// Queues the notifications that `events`, just recorded on `rollout` (as the reconcile
    /// that recorded them read it), fire. Never waits. Until the settings have been read, the
    /// events are queued as they are and judged by the worker once they are.
    pub fn observe(&self, rollout: &Rollout, events: &[crate::plan::Event], runs: &[&AnalysisRun]) {
        if events.is_empty() {
            return;
        }
        let works = if self.shared.synced() {
            let Some(settings) = self
                .shared
                .settings_for(&rollout.namespace().unwrap_or_default())
            else {
                return;
            };
            works(&settings, rollout, events, runs)
        } else {
            vec![Work::Defer(Box::new(Deferred {
                rollout: rollout.clone(),
                events: events.to_vec(),
                runs: runs.iter().map(|r| (*r).clone()).collect(),
            }))]
        };
        for w in works {
            let labels = match &w {
                Work::Send(job) => Some(SendLabels {
                    namespace: job.namespace.clone(),
                    name: job.name.clone(),
                    event: job.event.clone(),
                }),
                _ => None,
            };
            if self.tx.try_send(w).is_err() {
                let e = NotifyError::QueueFull(self.shared.opts.queue_capacity);
                warn!(rollout = %rollout.name_any(), "{e}");
                if let Some(l) = labels {
                    self.shared.opts.metrics.failed(l, None);
                }
            }
        }
    }
}

/// The jobs and problems that `events` on `rollout` give with `settings` (no I/O).
fn works(
    settings: &Arc<Settings>,
    rollout: &Rollout,
    events: &[crate::plan::Event],
    runs: &[&AnalysisRun],
) -> Vec<Work> {
    let mut out = Vec::new();
    let ns = rollout.namespace().unwrap_or_default();
    let labels: BTreeMap<String, String> = rollout.labels().clone();
    let (destinations, annotation_errors) =
        subscriptions::destinations(settings, &labels, rollout.annotations());
    let reference = rollout.object_ref(&());
    let name = rollout.name_any();
    let labels_for = |ev: &crate::plan::Event| SendLabels {
        namespace: ns.clone(),
        name: name.clone(),
        event: EventLabels {
            r#type: if ev.warning { "Warning" } else { "Normal" }.into(),
            reason: ev.reason.clone(),
        },
    };
    let warn = |labels: SendLabels, problem: NotifyError| Work::Warn {
        reference: Box::new(reference.clone()),
        labels,
        action: problem.action(),
        problem: problem.to_string(),
    };
    if let Some(first) = events.first() {
        for e in annotation_errors {
            out.push(warn(labels_for(first), NotifyError::from(e)));
        }
    }
    if destinations.is_empty() {
        return out;
    }
    let mut rollout_json: Option<Arc<Json>> = None;
    let mut runs_json: Option<Arc<Vec<Json>>> = None;
    for ev in events {
        let trigger = trigger::trigger_for_reason(&ev.reason);
        let Some(dests) = destinations.get(&trigger) else {
            continue;
        };
        let Some(conditions) = settings.triggers.get(&trigger) else {
            out.push(warn(labels_for(ev), TriggerError::Unknown(trigger).into()));
            continue;
        };
        let rj = rollout_json
            .get_or_insert_with(|| Arc::new(serde_json::to_value(rollout).unwrap_or(Json::Null)))
            .clone();
        let fired = match trigger::evaluate(&trigger, conditions, &rj, &ev.reason, &ev.message) {
            Ok(f) => f,
            Err(e) => {
                out.push(warn(labels_for(ev), e.into()));
                continue;
            }
        };
        let runs = runs_json
            .get_or_insert_with(|| Arc::new(current_runs(rollout, runs)))
            .clone();
        for f in &fired {
            for d in dests {
                if !settings.services.contains_key(&d.service) {
                    let problem = settings
                        .errors
                        .iter()
                        .find(|e| config_error_names_service(e, &d.service))
                        .map(|e| NotifyError::Config(e.clone()))
                        .unwrap_or_else(|| NotifyError::UnknownService(d.service.clone()));
                    out.push(warn(labels_for(ev), problem));
                    continue;
                }
                out.push(Work::Send(Box::new(Job {
                    namespace: ns.clone(),
                    name: name.clone(),
                    uid: rollout.uid().unwrap_or_default(),
                    reference: reference.clone(),
                    key: trigger::key(&trigger, f, d),
                    trigger: trigger.clone(),
                    event: labels_for(ev).event,
                    destination: d.clone(),
                    templates: f.templates.clone(),
                    rollout: rj.clone(),
                    analysis_runs: runs.clone(),
                    settings: settings.clone(),
                })));
            }
        }
    }
    out
}

fn config_error_names_service(e: &ConfigError, service: &str) -> bool {
    let key = match e {
        ConfigError::Yaml { key, .. }
        | ConfigError::MissingSecretKey { key, .. }
        | ConfigError::UnknownServiceType { key, .. } => key,
    };
    key.strip_prefix("service.").is_some_and(|rest| {
        rest == service || rest.rsplit_once('.').is_some_and(|(_, n)| n == service)
    })
}

/// The Rollout's AnalysisRuns of its current revision, as JSON (upstream's `.analysisRuns`).
fn current_runs(rollout: &Rollout, runs: &[&AnalysisRun]) -> Vec<Json> {
    let hash = rollout
        .status
        .as_ref()
        .and_then(|s| s.current_pod_hash.clone())
        .unwrap_or_default();
    runs.iter()
        .filter(|r| {
            r.labels()
                .get(crate::api::consts::DEFAULT_ROLLOUT_UNIQUE_LABEL_KEY)
                .is_some_and(|h| *h == hash)
        })
        .filter_map(|r| serde_json::to_value(r).ok())
        .collect()
}

/// Deep-merges `b` into `a` (upstream applies a trigger's templates one after the other onto
/// one notification).
fn merge(a: &mut Json, b: Json) {
    match (a, b) {
        (Json::Object(a), Json::Object(b)) => {
            for (k, v) in b {
                match a.get_mut(&k) {
                    Some(x) => merge(x, v),
                    None => {
                        a.insert(k, v);
                    }
                }
            }
        }
        (a, b) => *a = b,
    }
}

/// Renders `templates` for one destination.
pub fn render(
    settings: &Settings,
    templates: &[String],
    rollout: &Json,
    recipient: &str,
    analysis_runs: &[Json],
) -> Result<Json, TemplateError> {
    let vars = template::vars(rollout, recipient, analysis_runs);
    let mut out = json!({});
    for name in templates {
        let doc = settings
            .templates
            .get(name)
            .ok_or_else(|| TemplateError::Unknown(name.clone()))?;
        merge(&mut out, template::render_doc(name, doc, &vars)?);
    }
    Ok(out)
}

/// Delivers a rendered notification to a service; `Ok(false)` when the template has nothing
/// for it (a webhook without a section).
pub async fn deliver(
    http: &reqwest::Client,
    threads: &services::slack::Threads,
    settings: &Settings,
    destination: &Destination,
    rendered: &Json,
) -> Result<bool, NotifyError> {
    let service = settings
        .services
        .get(&destination.service)
        .ok_or_else(|| NotifyError::UnknownService(destination.service.clone()))?;
    let out = Outgoing {
        service: &destination.service,
        options: &service.options,
        rendered,
        recipient: &destination.recipient,
    };
    match service.kind.as_str() {
        "slack" => services::slack::send(http, threads, &out)
            .await
            .map(|_| true),
        "webhook" => services::webhook::send(http, &out).await,
        "teams" => services::teams::send(http, &out).await.map(|_| true),
        "email" => services::email::send(&out).await.map(|_| true),
        "mattermost" => services::mattermost::send(http, &out).await.map(|_| true),
        "googlechat" => services::googlechat::send(http, &out).await.map(|_| true),
        _ => return Err(NotifyError::UnknownService(destination.service.clone())),
    }
    .map_err(NotifyError::from)
}

/// A pending notification, queued for the sender.
struct Queued {
    namespace: String,
    name: String,
    uid: String,
    reference: ObjectReference,
    key: String,
    pending: record::Pending,
}

impl Queued {
    fn labels(&self) -> SendLabels {
        SendLabels {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            event: EventLabels {
                r#type: self.pending.event_type.clone(),
                reason: self.pending.reason.clone(),
            },
        }
    }
}

/// How [`Worker::update`] changes the Rollout's annotations.
enum Update {
    /// Nothing to write.
    Skip,
    /// New values (`None` removes the annotation).
    Write(BTreeMap<&'static str, Option<String>>),
}

struct Worker {
    client: Client,
    recorder: Recorder,
    retry: Retry,
    metrics: Arc<NotifyMetrics>,
    http: reqwest::Client,
    threads: services::slack::Threads,
    /// (Rollout uid, problem) already reported.
    warned: Mutex<HashSet<(String, String)>>,
    shared: Arc<Shared>,
    /// The last `seq` given (they increase).
    seq: Mutex<i64>,
}

impl Worker {
    /// Recovers what the previous leader left pending, then persists new jobs (stage one) while
    /// a second loop delivers them (stage two), so a slow service never delays persisting.
    async fn run(
        self: Arc<Self>,
        mut rx: mpsc::Receiver<Work>,
        scope: Option<String>,
        selector: String,
    ) {
        let (send_tx, send_rx) = mpsc::unbounded_channel::<Queued>();
        self.recover(scope.as_deref(), &selector, &send_tx).await;
        let sender = self.clone().send_loop(send_rx);
        let persister = async {
            while let Some(work) = rx.recv().await {
                let works = match work {
                    Work::Defer(d) => {
                        self.shared.wait_synced().await;
                        let ns = d.rollout.namespace().unwrap_or_default();
                        match self.shared.settings_for(&ns) {
                            Some(settings) => {
                                let runs: Vec<&AnalysisRun> = d.runs.iter().collect();
                                works(&settings, &d.rollout, &d.events, &runs)
                            }
                            None => Vec::new(),
                        }
                    }
                    w => vec![w],
                };
                for w in works {
                    match w {
                        Work::Send(job) => self.persist(*job, &send_tx).await,
                        Work::Warn {
                            reference,
                            labels,
                            action,
                            problem,
                        } => self.report(&reference, labels, action, problem).await,
                        Work::Defer(_) => {}
                    }
                }
            }
        };
        tokio::join!(sender, persister);
    }

    /// Queues the pending entries stored on the Rollouts in scope (one LIST, at start).
    async fn recover(
        &self,
        scope: Option<&str>,
        selector: &str,
        tx: &mpsc::UnboundedSender<Queued>,
    ) {
        let api: Api<Rollout> = match scope {
            Some(ns) => Api::namespaced(self.client.clone(), ns),
            None => Api::all(self.client.clone()),
        };
        let started = Instant::now();
        let mut attempt = 0;
        let list = loop {
            attempt += 1;
            match api
                .list_metadata(&kube::api::ListParams::default().labels(selector))
                .await
            {
                Ok(l) => break l,
                Err(e) => {
                    if !self.backoff(attempt, started).await {
                        warn!("notifications: reading pending notifications failed: {e}");
                        return;
                    }
                }
            }
        };
        let mut all = Vec::new();
        for ro in list.items {
            let pending =
                record::parse_pending(ro.annotations().get(record::PENDING).map(String::as_str));
            for (key, p) in record::in_order(&pending) {
                all.push(Queued {
                    namespace: ro.namespace().unwrap_or_default(),
                    name: ro.name_any(),
                    uid: ro.uid().unwrap_or_default(),
                    reference: ObjectReference {
                        api_version: Some(Rollout::api_version(&()).into_owned()),
                        kind: Some(Rollout::kind(&()).into_owned()),
                        name: ro.metadata.name.clone(),
                        namespace: ro.metadata.namespace.clone(),
                        uid: ro.metadata.uid.clone(),
                        ..Default::default()
                    },
                    key,
                    pending: p,
                });
            }
        }
        all.sort_by_key(|q| q.pending.seq);
        if !all.is_empty() {
            info!(
                count = all.len(),
                "notifications: resuming what the previous leader left pending"
            );
        }
        for q in all {
            let _ = tx.send(q);
        }
    }

    async fn report(
        &self,
        reference: &ObjectReference,
        labels: SendLabels,
        action: &str,
        problem: String,
    ) {
        let first = {
            let mut w = self.warned.lock().unwrap_or_else(|e| e.into_inner());
            if w.len() > 10_000 {
                w.clear();
            }
            w.insert((reference.uid.clone().unwrap_or_default(), problem.clone()))
        };
        if !first {
            return;
        }
        warn!(
            rollout = reference.name.as_deref().unwrap_or_default(),
            "notification: {problem}"
        );
        self.metrics.failed(labels, None);
        let ev = KEvent {
            type_: EventType::Warning,
            reason: WARNING_REASON.into(),
            note: Some(problem.chars().take(1000).collect()),
            action: action.into(),
            secondary: None,
        };
        self.recorder.publish(ev, reference).await;
    }

    /// Waits before attempt `n` (1-based), or says to give up.
    async fn backoff(&self, n: u32, started: Instant) -> bool {
        let wait = self
            .retry
            .initial
            .saturating_mul(1u32 << n.saturating_sub(1).min(16))
            .min(self.retry.max);
        if started.elapsed() + wait > self.retry.give_up_after {
            return false;
        }
        tokio::time::sleep(wait).await;
        true
    }

    /// Reads the Rollout (`uid` must match) and writes the annotations `decide` asks for, with
    /// the resourceVersion read as precondition; again on a conflict, with backoff while the API
    /// server cannot be reached. `Ok(false)`: the Rollout is gone or `decide` skipped.
    async fn update(
        &self,
        namespace: &str,
        name: &str,
        uid: &str,
        decide: impl Fn(&Rollout) -> Update,
    ) -> Result<bool, kube::Error> {
        let api: Api<Rollout> = Api::namespaced(self.client.clone(), namespace);
        let started = Instant::now();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let res = async {
                let ro = match api.get_opt(name).await? {
                    Some(ro) if ro.uid().as_deref() == Some(uid) => ro,
                    _ => return Ok(Some(false)),
                };
                let Update::Write(values) = decide(&ro) else {
                    return Ok(Some(false));
                };
                let body = json!({"metadata": {
                    "resourceVersion": ro.resource_version(),
                    "annotations": values,
                }});
                match api
                    .patch(name, &PatchParams::default(), &Patch::Merge(&body))
                    .await
                {
                    Ok(_) => Ok(Some(true)),
                    Err(kube::Error::Api(e)) if e.code == 409 => Ok(None),
                    Err(kube::Error::Api(e)) if e.code == 404 => Ok(Some(false)),
                    Err(e) => Err(e),
                }
            }
            .await;
            match res {
                Ok(Some(done)) => return Ok(done),
                Ok(None) => continue,
                Err(e) => {
                    if !self.backoff(attempt, started).await {
                        return Err(e);
                    }
                }
            }
        }
    }

    fn next_seq(&self) -> i64 {
        let mut s = self.seq.lock().unwrap_or_else(|e| e.into_inner());
        let now = k8s_openapi::jiff::Timestamp::now().as_microsecond();
        *s = (*s + 1).max(now);
        *s
    }

    /// Stage one: renders a job and stores it as pending on the Rollout (unless it was sent or
    /// is pending already), then hands it to the sender.
    async fn persist(&self, job: Job, tx: &mpsc::UnboundedSender<Queued>) {
        let labels = SendLabels {
            namespace: job.namespace.clone(),
            name: job.name.clone(),
            event: job.event.clone(),
        };
        let rendered = match render(
            &job.settings,
            &job.templates,
            &job.rollout,
            &job.destination.recipient,
            &job.analysis_runs,
        ) {
            Ok(r) => r,
            Err(e) => {
                let e = NotifyError::from(e);
                return self
                    .report(&job.reference, labels, e.action(), e.to_string())
                    .await;
            }
        };
        let pending = record::Pending {
            trigger: job.trigger.clone(),
            service: job.destination.service.clone(),
            recipient: job.destination.recipient.clone(),
            event_type: job.event.r#type.clone(),
            reason: job.event.reason.clone(),
            notification: rendered,
            seq: self.next_seq(),
        };
        let dropped = Mutex::new(Vec::new());
        let res = self
            .update(&job.namespace, &job.name, &job.uid, |ro| {
                let a = ro.annotations();
                if record::parse(a.get(record::ANNOTATION).map(String::as_str))
                    .contains_key(&job.key)
                {
                    return Update::Skip;
                }
                let mut p = record::parse_pending(a.get(record::PENDING).map(String::as_str));
                if p.contains_key(&job.key) {
                    return Update::Skip;
                }
                p.insert(job.key.clone(), pending.clone());
                let (value, d) = record::pending_value(p);
                *dropped.lock().unwrap_or_else(|e| e.into_inner()) = d;
                Update::Write([(record::PENDING, value)].into())
            })
            .await;
        match res {
            Ok(true) => {
                for d in dropped.into_inner().unwrap_or_else(|e| e.into_inner()) {
                    warn!(rollout = %job.name, key = %d, "notification dropped: more than {} pending", record::MAX_PENDING);
                    self.metrics.failed(labels.clone(), None);
                }
                debug!(rollout = %job.name, key = %job.key, "notification pending");
                let _ = tx.send(Queued {
                    namespace: job.namespace,
                    name: job.name,
                    uid: job.uid,
                    reference: job.reference,
                    key: job.key,
                    pending,
                });
            }
            Ok(false) => debug!(rollout = %job.name, key = %job.key, "already sent or pending"),
            Err(e) => {
                warn!(rollout = %job.name, key = %job.key, "notification lost: storing it failed: {e}");
                self.metrics.failed(labels, None);
            }
        }
    }

    async fn send_loop(self: Arc<Self>, mut rx: mpsc::UnboundedReceiver<Queued>) {
        // The settings must be known before anything is sent.
        self.shared.wait_synced().await;
        while let Some(q) = rx.recv().await {
            self.send(q).await;
        }
    }

    /// Stage two: delivers a pending notification, then moves its key from the pending
    /// entries to the record in one write.
    async fn send(&self, q: Queued) {
        let started = Instant::now();
        let labels = q.labels();
        let Some(settings) = self.shared.settings_for(&q.namespace) else {
            return self
                .report(
                    &q.reference,
                    labels,
                    "LoadSettings",
                    format!("{CONFIG_MAP} is gone; {} not sent", q.pending.trigger),
                )
                .await;
        };
        let destination = Destination {
            service: q.pending.service.clone(),
            recipient: q.pending.recipient.clone(),
        };
        let mut attempt = 0;
        let outcome: Result<bool, (NotifyError, u32)> = loop {
            attempt += 1;
            match deliver(
                &self.http,
                &self.threads,
                &settings,
                &destination,
                &q.pending.notification,
            )
            .await
            {
                Ok(sent) => break Ok(sent),
                Err(NotifyError::Send(e)) if e.retryable() => {
                    debug!(rollout = %q.name, key = %q.key, attempt, "notification failed, retrying: {e}");
                    if !self.backoff(attempt, started).await {
                        break Err((NotifyError::Send(e), attempt));
                    }
                }
                Err(e) => break Err((e, attempt)),
            }
        };
        let sent = matches!(outcome, Ok(true));
        let now = k8s_openapi::jiff::Timestamp::now().as_second();
        let res = self
            .update(&q.namespace, &q.name, &q.uid, |ro| {
                let a = ro.annotations();
                let mut p = record::parse_pending(a.get(record::PENDING).map(String::as_str));
                let was_pending = p.remove(&q.key).is_some();
                let mut values: BTreeMap<&'static str, Option<String>> = BTreeMap::new();
                if was_pending {
                    values.insert(record::PENDING, record::pending_value(p).0);
                }
                if sent {
                    let r = record::parse(a.get(record::ANNOTATION).map(String::as_str));
                    if !r.contains_key(&q.key) {
                        values.insert(record::ANNOTATION, Some(record::with(r, &q.key, now)));
                    }
                }
                if values.is_empty() {
                    Update::Skip
                } else {
                    Update::Write(values)
                }
            })
            .await;
        if let Err(e) = res {
            warn!(rollout = %q.name, key = %q.key, "recording the notification failed: {e}");
        }
        match outcome {
            Ok(true) => {
                info!(rollout = %q.name, trigger = %q.pending.trigger, service = %q.pending.service,
                      recipient = %q.pending.recipient, "notification sent");
                self.metrics.sent(labels, started.elapsed());
            }
            Ok(false) => {}
            Err((e, attempts)) => {
                let problem = format!(
                    "{} to {}:{} failed after {attempts} attempt(s): {e}",
                    q.pending.trigger, q.pending.service, q.pending.recipient
                );
                self.report(&q.reference, labels, e.action(), problem).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn canary() -> Json {
        json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
               "metadata": {"name": "canary-demo", "namespace": "ns",
                            "annotations": {"rollout.argoproj.io/revision": "2"}},
               "spec": {"replicas": 5,
                        "strategy": {"canary": {"steps": [{"setWeight": 20}, {"pause": {}}]}},
                        "template": {"spec": {"containers": [
                            {"name": "app", "image": "app:2"}, {"name": "side", "image": "side:1"}]}}},
               "status": {"currentStepIndex": 0, "updatedReplicas": 1, "phase": "Progressing"}})
    }

    fn blue_green() -> Json {
        let mut ro = canary();
        ro["spec"]["strategy"] = json!({"blueGreen": {"activeService": "a"}});
        ro["spec"]["template"]["spec"]["containers"] = json!([{"name": "app", "image": "app:2"}]);
        ro
    }

    /// Checks one rendered catalog notification.
    fn check(name: &str, rendered: &Json, strategy: &str) {
        let message = rendered["message"].as_str().unwrap_or_default();
        assert!(message.contains("canary-demo"), "{name}: {message:?}");
        assert!(!message.contains("<no value>"), "{name}: {message:?}");
        let subject = rendered["email"]["subject"].as_str().unwrap_or_default();
        assert!(subject.contains("canary-demo"), "{name}: {subject:?}");
        let attachments = rendered["slack"]["attachments"]
            .as_str()
            .unwrap_or_default();
        let parsed: Json = serde_json::from_str(attachments)
            .unwrap_or_else(|e| panic!("{name}: attachments are not JSON ({e}): {attachments}"));
        assert_eq!(parsed[0]["title"], "canary-demo", "{name}");
        assert_eq!(parsed[0]["fields"][0]["value"], strategy, "{name}");
        let images: Vec<&str> = parsed[0]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|f| f["value"].as_str())
            .filter(|v| v.contains(':'))
            .collect();
        assert!(images.contains(&"app:2"), "{name}: {parsed}");
    }

    /// Every template of upstream's catalog (`notifications-install.yaml` and each file of
    /// `manifests/notifications/`) renders, unchanged, for a canary and a blue-green Rollout.
    #[test]
    fn upstream_catalog_renders() {
        let root =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/compat/argo-rollouts/manifests");
        if !root.is_dir() {
            eprintln!(
                "NOTICE: compat corpus not found at {}; skipping",
                root.display()
            );
            return;
        }
        let mut files = vec![root.join("notifications-install.yaml")];
        let mut dir: Vec<_> = std::fs::read_dir(root.join("notifications"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                p.extension().is_some_and(|e| e == "yaml") && !p.ends_with("kustomization.yaml")
            })
            .collect();
        dir.sort();
        files.extend(dir);
        let mut rendered = 0;
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            let cm: ConfigMap = serde_yaml::from_str(&text).unwrap();
            let settings = Settings::parse(&cm.data.unwrap_or_default(), &HashMap::new());
            assert_eq!(settings.errors, vec![], "{}", file.display());
            for (trigger, conditions) in &settings.triggers {
                for c in conditions {
                    for t in &c.send {
                        assert!(
                            settings.templates.contains_key(t),
                            "{trigger} sends unknown {t}"
                        );
                    }
                }
            }
            for name in settings.templates.keys() {
                for (ro, strategy) in [(canary(), "Canary"), (blue_green(), "BlueGreen")] {
                    if name.contains("step") && strategy == "BlueGreen" {
                        continue; // a step needs canary steps (`len .rollout.spec.strategy.canary.steps`)
                    }
                    let out = render(&settings, std::slice::from_ref(name), &ro, "chan", &[])
                        .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
                    check(name, &out, strategy);
                    rendered += 1;
                }
            }
        }
        assert!(rendered >= 17 * 2 - 2, "rendered only {rendered}");
        let settings = Settings::parse(
            &serde_yaml::from_str::<ConfigMap>(
                &std::fs::read_to_string(root.join("notifications-install.yaml")).unwrap(),
            )
            .unwrap()
            .data
            .unwrap(),
            &HashMap::new(),
        );
        let step = render(
            &settings,
            &["rollout-step-completed".into()],
            &canary(),
            "",
            &[],
        )
        .unwrap();
        assert_eq!(
            step["message"],
            "Rollout canary-demo step number 1/2 has been completed."
        );
    }

    /// The project's own template (for a clean clone without the catalog).
    #[test]
    fn own_template_renders_and_merges() {
        let data: BTreeMap<String, String> = [
            ("template.a".to_string(), "message: \"{{.rollout.metadata.name}} {{.recipient}}\"\nslack:\n  attachments: '[{\"title\": \"{{.rollout.spec.replicas}}\"}]'\n".to_string()),
            ("template.b".to_string(), "email:\n  subject: \"S {{len .analysisRuns}}\"\n".to_string()),
        ]
        .into();
        let settings = Settings::parse(&data, &HashMap::new());
        let out = render(
            &settings,
            &["a".into(), "b".into()],
            &canary(),
            "ops",
            &[json!({})],
        )
        .unwrap();
        assert_eq!(out["message"], "canary-demo ops");
        assert_eq!(out["slack"]["attachments"], "[{\"title\": \"5\"}]");
        assert_eq!(out["email"]["subject"], "S 1");
        let e = render(&settings, &["nope".into()], &canary(), "", &[]).unwrap_err();
        assert_eq!(e, TemplateError::Unknown("nope".into()));
    }
}
