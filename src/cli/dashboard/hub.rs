//! The dashboard's live data: per namespace (or for all namespaces with `-A`), kube watches
//! (reflectors) of Rollouts, ReplicaSets, pods and AnalysisRuns, with the user's identity.
//!
//! Every watch event names the Rollouts it concerns (a ReplicaSet its owner, a pod its
//! ReplicaSet's owner, an AnalysisRun its owner). Every 100 ms at most, the list rows of
//! those Rollouts are recomputed from the caches and the rows that changed are published as
//! one [`Change`]; the pages' event streams turn that into deltas (the list) or a new view
//! (the Rollout shown). Nothing is polled, nothing is listed again except by the watches
//! themselves when their connection drops (kube's watcher relists and resumes, with backoff).
//!
//! A watch the API server refuses (403) or does not know (no AnalysisRun CRD) is reported
//! in words to the pages, and retried.

use super::view::{self, ListRow};
use crate::api::{AnalysisRun, Rollout};
use crate::cli::cluster::chain;
use crate::cli::info::Model;
use futures::StreamExt;
use futures::stream::BoxStream;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, watch};

/// A Rollout: (namespace, name).
pub type Key = (String, String);

/// What changed in a flush.
#[derive(Debug, Default)]
pub struct Change {
    /// Increases by one per flush.
    pub seq: u64,
    /// Rows that are new or changed.
    pub upsert: Vec<ListRow>,
    /// Rollouts that are gone.
    pub remove: Vec<Key>,
    /// Every Rollout one of whose objects changed (its view may have changed even when its
    /// row did not: a pod became ready, a measurement arrived).
    pub touched: BTreeSet<Key>,
    /// The watches' problems changed (see [`WatchSet::problems`]).
    pub problems: Option<Vec<String>>,
}

/// The kinds watched, in the order of [`WatchSet`]'s readiness flags.
const KINDS: [&str; 4] = ["Rollouts", "ReplicaSets", "pods", "AnalysisRuns"];
const ROLLOUTS: usize = 0;
const REPLICA_SETS: usize = 1;

#[derive(Default)]
struct State {
    seq: u64,
    rows: BTreeMap<Key, ListRow>,
    /// Per kind: its first listing is complete.
    synced: [bool; 4],
    /// Per kind: the last error of its watch, until it works again.
    errors: [Option<String>; 4],
}

/// The watches of one namespace (or of all).
pub struct WatchSet {
    /// `None`: all namespaces.
    pub namespace: Option<String>,
    rollouts: Store<Rollout>,
    replica_sets: Store<ReplicaSet>,
    pods: Store<Pod>,
    analysis_runs: Store<AnalysisRun>,
    state: Mutex<State>,
    changes: broadcast::Sender<Arc<Change>>,
    /// Bumped when the readiness or the problems change.
    progress: watch::Sender<u64>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Drop for WatchSet {
    fn drop(&mut self) {
        if let Ok(mut t) = self.task.lock()
            && let Some(t) = t.take()
        {
            t.abort();
        }
    }
}

/// What happened on one watch.
enum Tick {
    /// These Rollouts' objects changed.
    Touched(Vec<Key>),
    /// The kind's (re)listing is complete: anything may have changed.
    Synced(usize),
    /// The watch works (again).
    Ok(usize),
    /// The watch failed (it is retried with backoff).
    Failed(usize, String),
}

fn api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

fn controller_owner(obj: &impl ResourceExt, kind: &str) -> Option<String> {
    obj.owner_references()
        .iter()
        .find(|o| o.kind == kind && o.controller == Some(true))
        .or_else(|| obj.owner_references().iter().find(|o| o.kind == kind))
        .map(|o| o.name.clone())
}

/// The words for a failed watch.
fn watch_error(kind: usize, namespace: Option<&str>, e: &watcher::Error) -> String {
    let where_ = match namespace {
        Some(ns) => format!("in namespace {ns:?}"),
        None => "in all namespaces".into(),
    };
    let api = match e {
        watcher::Error::InitialListFailed(kube::Error::Api(s))
        | watcher::Error::WatchStartFailed(kube::Error::Api(s))
        | watcher::Error::WatchFailed(kube::Error::Api(s)) => Some((s.code, s.message.clone())),
        watcher::Error::WatchError(s) => Some((s.code, s.message.clone())),
        _ => None,
    };
    match api {
        Some((403, msg)) => format!(
            "The API server refuses to show {} {where_} (403 Forbidden): {msg}",
            KINDS[kind]
        ),
        Some((404, _)) if kind == 3 => format!(
            "AnalysisRuns cannot be read {where_}: their CRD (analysisruns.argoproj.io) is not installed"
        ),
        Some((code, msg)) => format!("Watching {} {where_} failed ({code}): {msg}", KINDS[kind]),
        None => format!(
            "Watching {} {where_} failed: {}; retrying",
            KINDS[kind],
            chain(e)
        ),
    }
}

fn reflect<K, F>(
    api: Api<K>,
    index: usize,
    namespace: Option<String>,
    keys: F,
) -> (Store<K>, BoxStream<'static, Tick>)
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
    F: Fn(&K) -> Vec<Key> + Send + Sync + 'static,
{
    let (store, writer) = reflector::store();
    let stream = watcher(api, watcher::Config::default())
        .default_backoff()
        .reflect(writer)
        .map(move |ev| match ev {
            Ok(watcher::Event::InitDone) => vec![Tick::Ok(index), Tick::Synced(index)],
            Ok(watcher::Event::Init) => vec![Tick::Ok(index)],
            Ok(watcher::Event::Apply(o) | watcher::Event::Delete(o)) => {
                vec![Tick::Ok(index), Tick::Touched(keys(&o))]
            }
            Ok(watcher::Event::InitApply(_)) => Vec::new(),
            Err(e) => vec![Tick::Failed(
                index,
                watch_error(index, namespace.as_deref(), &e),
            )],
        })
        .flat_map(futures::stream::iter)
        .boxed();
    (store, stream)
}

impl WatchSet {
    /// Starts the watches of `namespace` (`None`: all namespaces).
    pub fn start(client: &Client, namespace: Option<String>) -> Arc<WatchSet> {
        let ns = namespace.as_deref();
        let (rollouts, s0) = reflect(
            api::<Rollout>(client, ns),
            0,
            namespace.clone(),
            |ro: &Rollout| vec![(ro.namespace().unwrap_or_default(), ro.name_any())],
        );
        let (replica_sets, s1) = reflect(
            api::<ReplicaSet>(client, ns),
            1,
            namespace.clone(),
            move |rs: &ReplicaSet| {
                controller_owner(rs, "Rollout")
                    .map(|n| vec![(rs.namespace().unwrap_or_default(), n)])
                    .unwrap_or_default()
            },
        );
        let rs_reader = replica_sets.clone();
        let (pods, s2) = reflect(
            api::<Pod>(client, ns),
            2,
            namespace.clone(),
            move |pod: &Pod| {
                let ns = pod.namespace().unwrap_or_default();
                let Some(rs) = controller_owner(pod, "ReplicaSet") else {
                    return Vec::new();
                };
                rs_reader
                    .get(&ObjectRef::new(&rs).within(&ns))
                    .and_then(|rs| controller_owner(rs.as_ref(), "Rollout"))
                    .map(|n| vec![(ns, n)])
                    .unwrap_or_default()
            },
        );
        let (analysis_runs, s3) = reflect(
            api::<AnalysisRun>(client, ns),
            3,
            namespace.clone(),
            move |ar: &AnalysisRun| {
                controller_owner(ar, "Rollout")
                    .map(|n| vec![(ar.namespace().unwrap_or_default(), n)])
                    .unwrap_or_default()
            },
        );
        let (changes, _) = broadcast::channel(256);
        let (progress, _) = watch::channel(0);
        let set = Arc::new(WatchSet {
            namespace,
            rollouts,
            replica_sets,
            pods,
            analysis_runs,
            state: Mutex::new(State::default()),
            changes,
            progress,
            task: Mutex::new(None),
        });
        let streams = futures::stream::select_all(vec![s0, s1, s2, s3]);
        let task = tokio::spawn(drive(Arc::downgrade(&set), streams));
        if let Ok(mut t) = set.task.lock() {
            *t = Some(task);
        }
        set
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Subscribes to the changes (before taking a snapshot, so that none is missed).
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Change>> {
        self.changes.subscribe()
    }

    /// The watches' problems, in words.
    pub fn problems(&self) -> Vec<String> {
        self.state().errors.iter().flatten().cloned().collect()
    }

    /// Waits until the list can be shown (Rollouts and ReplicaSets listed), or the Rollout
    /// watch fails, or `timeout`. Returns whether the list is complete.
    pub async fn list_ready(&self, timeout: Duration) -> bool {
        self.wait(timeout, |s| {
            (s.synced[ROLLOUTS] && s.synced[REPLICA_SETS] && s.seq > 0)
                || s.errors[ROLLOUTS].is_some()
        })
        .await;
        let s = self.state();
        s.synced[ROLLOUTS] && s.synced[REPLICA_SETS] && s.seq > 0
    }

    /// Waits until a Rollout's view can be shown: every kind listed or failing.
    pub async fn view_ready(&self, timeout: Duration) {
        self.wait(timeout, |s| {
            s.seq > 0 && (0..4).all(|i| s.synced[i] || s.errors[i].is_some())
        })
        .await;
    }

    async fn wait(&self, timeout: Duration, done: impl Fn(&State) -> bool) {
        let mut rx = self.progress.subscribe();
        let _ = tokio::time::timeout(timeout, async {
            loop {
                if done(&self.state()) {
                    return;
                }
                if rx.changed().await.is_err() {
                    return;
                }
            }
        })
        .await;
    }

    /// The rows now (of one namespace, in all-namespaces mode), with the sequence number of
    /// the last change they include.
    pub fn snapshot(&self, namespace: Option<&str>) -> (u64, Vec<ListRow>) {
        let s = self.state();
        let rows = s
            .rows
            .values()
            .filter(|r| namespace.is_none_or(|ns| r.namespace == ns))
            .cloned()
            .collect();
        (s.seq, rows)
    }

    /// The namespaces that have Rollouts (all-namespaces mode).
    pub fn namespaces(&self) -> Vec<String> {
        let s = self.state();
        let set: BTreeSet<String> = s.rows.keys().map(|(ns, _)| ns.clone()).collect();
        set.into_iter().collect()
    }

    /// A Rollout and what it owns, from the caches.
    pub fn model(&self, key: &Key) -> Option<Model> {
        let ro = self.rollouts.get(&ObjectRef::new(&key.1).within(&key.0))?;
        let uid = ro.uid().unwrap_or_default();
        let replica_sets: Vec<ReplicaSet> = self
            .replica_sets
            .state()
            .iter()
            .filter(|rs| rs.namespace().as_deref() == Some(&key.0))
            .filter(|rs| rs.owner_references().iter().any(|o| o.uid == uid))
            .map(|rs| (**rs).clone())
            .collect();
        let rs_uids: BTreeSet<String> = replica_sets.iter().filter_map(|rs| rs.uid()).collect();
        let pods = self
            .pods
            .state()
            .iter()
            .filter(|p| p.namespace().as_deref() == Some(&key.0))
            .filter(|p| {
                p.owner_references()
                    .iter()
                    .any(|o| rs_uids.contains(&o.uid))
            })
            .map(|p| (**p).clone())
            .collect();
        let analysis_runs = self
            .analysis_runs
            .state()
            .iter()
            .filter(|a| a.namespace().as_deref() == Some(&key.0))
            .filter(|a| a.owner_references().iter().any(|o| o.uid == uid))
            .map(|a| (**a).clone())
            .collect();
        Some(Model {
            rollout: (*ro).clone(),
            replica_sets,
            pods,
            analysis_runs,
            // The dashboard does not watch Experiments (yet): its tree has none.
            experiments: Vec::new(),
        })
    }

    /// Recomputes the rows of `dirty` (all when `None`) and publishes what changed.
    fn flush(&self, dirty: Option<BTreeSet<Key>>, problems_changed: bool) {
        let rollouts = self.rollouts.state();
        let mut by_owner: HashMap<String, Vec<ReplicaSet>> = HashMap::new();
        for rs in self.replica_sets.state() {
            for o in rs.owner_references().iter().filter(|o| o.kind == "Rollout") {
                by_owner
                    .entry(o.uid.clone())
                    .or_default()
                    .push((*rs).clone());
            }
        }
        let mut s = self.state();
        let keys: BTreeSet<Key> = match dirty {
            Some(d) => d,
            None => rollouts
                .iter()
                .map(|r| (r.namespace().unwrap_or_default(), r.name_any()))
                .chain(s.rows.keys().cloned())
                .collect(),
        };
        let mut change = Change::default();
        for key in &keys {
            let ro = self.rollouts.get(&ObjectRef::new(&key.1).within(&key.0));
            match ro {
                Some(ro) => {
                    let owned = by_owner
                        .get(&ro.uid().unwrap_or_default())
                        .map(Vec::as_slice)
                        .unwrap_or_default();
                    let row = view::list_row(&ro, owned);
                    if s.rows.get(key) != Some(&row) {
                        s.rows.insert(key.clone(), row.clone());
                        change.upsert.push(row);
                    }
                }
                None => {
                    if s.rows.remove(key).is_some() {
                        change.remove.push(key.clone());
                    }
                }
            }
        }
        s.seq += 1;
        change.seq = s.seq;
        change.touched = keys;
        if problems_changed {
            change.problems = Some(s.errors.iter().flatten().cloned().collect());
        }
        drop(s);
        // No subscriber is fine: the rows are kept for the next snapshot.
        let _ = self.changes.send(Arc::new(change));
        self.progress.send_modify(|v| *v += 1);
    }
}

/// The watch loop of a set: gathers the Rollouts touched, flushes at most every 100 ms.
async fn drive(
    set: std::sync::Weak<WatchSet>,
    mut streams: futures::stream::SelectAll<BoxStream<'static, Tick>>,
) {
    let mut dirty: BTreeSet<Key> = BTreeSet::new();
    let mut all = false;
    let mut problems_changed = false;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            t = streams.next() => {
                let Some(t) = t else { return };
                let Some(set) = set.upgrade() else { return };
                let mut s = set.state();
                match t {
                    Tick::Touched(keys) => dirty.extend(keys),
                    Tick::Synced(i) => {
                        s.synced[i] = true;
                        all = true;
                    }
                    Tick::Ok(i) => {
                        if s.errors[i].take().is_some() {
                            problems_changed = true;
                        }
                    }
                    Tick::Failed(i, e) => {
                        if s.errors[i].as_ref() != Some(&e) {
                            s.errors[i] = Some(e);
                            problems_changed = true;
                        }
                    }
                }
                drop(s);
                if problems_changed {
                    set.progress.send_modify(|v| *v += 1);
                }
            }
            _ = tick.tick() => {
                let Some(set) = set.upgrade() else { return };
                let ready = {
                    let s = set.state();
                    s.synced[ROLLOUTS] && s.synced[REPLICA_SETS]
                };
                if !ready && !problems_changed {
                    continue;
                }
                if !ready {
                    // Not listed yet, but a problem to report.
                    let c = Change {
                        problems: Some(set.problems()),
                        seq: set.state().seq,
                        ..Default::default()
                    };
                    let _ = set.changes.send(Arc::new(c));
                    problems_changed = false;
                    continue;
                }
                if all || !dirty.is_empty() || problems_changed || set.state().seq == 0 {
                    let d = if all || set.state().seq == 0 {
                        None
                    } else {
                        Some(std::mem::take(&mut dirty))
                    };
                    dirty.clear();
                    all = false;
                    set.flush(d, problems_changed);
                    problems_changed = false;
                }
            }
        }
    }
}

/// The watch sets of a dashboard: one for all namespaces (`-A`), or one per namespace
/// looked at, started on first use. A namespace no page looks at any more is dropped (its
/// watches stop) when another one is started.
pub struct Hub {
    client: Client,
    all_namespaces: bool,
    sets: Mutex<BTreeMap<String, Arc<WatchSet>>>,
}

impl Hub {
    pub fn new(client: Client, all_namespaces: bool) -> Hub {
        Hub {
            client,
            all_namespaces,
            sets: Mutex::new(BTreeMap::new()),
        }
    }

    pub fn all_namespaces(&self) -> bool {
        self.all_namespaces
    }

    /// The set that has `namespace`'s objects.
    pub fn set_for(&self, namespace: &str) -> Arc<WatchSet> {
        let key = if self.all_namespaces { "" } else { namespace };
        let mut sets = self.sets.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = sets.get(key) {
            return s.clone();
        }
        // Only the map holds them: no page streams from them.
        sets.retain(|_, s| Arc::strong_count(s) > 1);
        let ns = (!self.all_namespaces).then(|| namespace.to_string());
        let set = WatchSet::start(&self.client, ns);
        sets.insert(key.to_string(), set.clone());
        set
    }
}
