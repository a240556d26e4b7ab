//! The Experiment controller: a kube-rs [`Controller`] over Experiments, owning their
//! ReplicaSets, shaped like the Rollout controller:
//!
//! - observe: the Experiment, the ReplicaSets, Services and AnalysisRuns it controls and the
//!   analysis templates, from reflector stores (no LIST or GET per reconcile);
//! - plan: [`crate::experiment::plan`] (pure);
//! - actuate: the plan's ReplicaSet creations and merge patches (replicas, the
//!   `scale-down-deadline` annotation), template Services created and deleted, AnalysisRun
//!   creations and terminations, with one field manager (the runs are measured by the AnalysisRun controller);
//!   a ReplicaSet the API server refuses (an invalid pod template, a quota) is planned again
//!   as observed (`Observed::refused_templates`): the template is an Error, as upstream, not
//!   a retry;
//! - report: the status as a JSON merge patch of the smallest diff on the main resource
//!   (Experiment has no status subresource, as upstream) carrying `metadata.resourceVersion`
//!   as precondition, so a status computed from a stale view never overwrites a user's
//!   `spec.terminate`; the plan's events; a tracing span per Experiment.
//!
//! Then the reconcile asks to be called again when the plan says (the end of `duration`, a
//! progress deadline, a scale-down deadline). Experiments are watched untyped and decoded one
//! by one ([`decode::tolerant`]): one that does not decode is logged and left out, the others
//! carry on.

use super::{Error, FIELD_MANAGER, decode, diff, store_ready};
use crate::api::{AnalysisRun, AnalysisTemplate, ClusterAnalysisTemplate, Experiment};
use crate::events::Recorder;
use crate::experiment::{self, Effect, Observed, Plan};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::Reporter;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tracing::{debug, info, warn};

/// Settings of the Experiment controller.
#[derive(Clone, Debug)]
pub struct Config {
    /// Watch one namespace only; `None` watches all.
    pub namespace: Option<String>,
    /// Only Experiments labelled with this controller instance id (or, when `None`, only
    /// those without the label), as upstream's sharding.
    pub instance_id: Option<String>,
    /// Experiments reconciled at once.
    pub concurrency: u16,
}

impl From<&crate::controller::Config> for Config {
    /// The Rollout controller's scope and concurrency.
    fn from(c: &crate::controller::Config) -> Self {
        Config {
            namespace: c.namespace.clone(),
            instance_id: c.instance_id.clone(),
            concurrency: c.concurrency,
        }
    }
}

struct Context {
    client: Client,
    /// The ReplicaSets and Services Experiments control.
    replica_sets: Store<ReplicaSet>,
    services: Store<Service>,
    /// Every ReplicaSet and Service by name, with its controllers' uids: the names others'
    /// objects take, without caching those objects.
    replica_set_owners: super::index::Index<ReplicaSet, String>,
    service_owners: super::index::Index<Service, String>,
    analysis_runs: Store<AnalysisRun>,
    analysis_templates: Store<AnalysisTemplate>,
    cluster_analysis_templates: Store<ClusterAnalysisTemplate>,
    /// Whether `cluster_analysis_templates` is fed (cluster-wide mode only).
    cluster_templates_watched: bool,
    recorder: Recorder,
    /// Experiment → the resourceVersion our last status write started from.
    written_from: Mutex<HashMap<ObjectRef<Experiment>, (String, Instant)>>,
    /// Experiment → consecutive failures (for backoff).
    failures: Mutex<HashMap<ObjectRef<Experiment>, u32>>,
}

/// Whether an object named `name` in `ns` exists and `ex` does not control it.
fn taken_by_another<K>(
    owners: &super::index::Index<K, String>,
    name: &str,
    ns: &str,
    ex: &Experiment,
) -> bool
where
    K: kube::runtime::reflector::Lookup + Clone,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone,
{
    let uid = ex.uid().unwrap_or_default();
    owners
        .keys_of(&ObjectRef::new_with(name, Default::default()).within(ns))
        .is_some_and(|uids| !uids.contains(&uid))
}

/// Runs the Experiment controller until `shutdown` resolves.
pub async fn run(
    client: Client,
    config: Config,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let rs_api: Api<ReplicaSet> = match &config.namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    // Only the ReplicaSets and Services Experiments control are cached; of the others only the
    // names they take are kept, in an index (see `super::slim`, `super::index`).
    let (rs_store, rs_writer) = reflector::store();
    let rs_owners = super::index::Index::new_keeping_all(super::controller_uids::<ReplicaSet>);
    let rs_stream = super::slim::controlled_by_kind(
        watcher(rs_api, watcher::Config::default())
            .default_backoff()
            .inspect(rs_owners.feeder()),
        "argoproj.io",
        "Experiment",
    )
    .modify(super::slim::strip)
    .reflect(rs_writer)
    .touched_objects();
    let ns = config.namespace.as_deref();
    let svc_api: Api<Service> = match ns {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let (svc_store, svc_writer) = reflector::store();
    let svc_owners = super::index::Index::new_keeping_all(super::controller_uids::<Service>);
    let svc_stream = super::slim::controlled_by_kind(
        watcher(svc_api, watcher::Config::default())
            .default_backoff()
            .inspect(svc_owners.feeder()),
        "argoproj.io",
        "Experiment",
    )
    .modify(super::slim::strip)
    .reflect(svc_writer)
    .touched_objects();
    let (ar_store, ar_writer) = reflector::store::<AnalysisRun>();
    let ar_stream = decode::tolerant(watcher(
        decode::untyped::<AnalysisRun>(&client, ns),
        watcher::Config::default(),
    ))
    .default_backoff()
    .modify(super::slim::strip)
    .reflect(ar_writer)
    .touched_objects();
    let tasks = super::Tasks::default();
    let (at_store, at_writer) = reflector::store::<AnalysisTemplate>();
    tasks.spawn(
        decode::tolerant(watcher(
            decode::untyped::<AnalysisTemplate>(&client, ns),
            watcher::Config::default(),
        ))
        .default_backoff()
        .modify(super::slim::strip)
        .reflect(at_writer)
        .for_each(|_| futures::future::ready(())),
    );
    let (cat_store, cat_writer) = reflector::store::<ClusterAnalysisTemplate>();
    // Cluster-scoped templates are watched only when the controller is cluster-wide.
    if ns.is_none() {
        tasks.spawn(
            decode::tolerant(watcher(
                decode::untyped::<ClusterAnalysisTemplate>(&client, None),
                watcher::Config::default(),
            ))
            .default_backoff()
            .modify(super::slim::strip)
            .reflect(cat_writer)
            .for_each(|_| futures::future::ready(())),
        );
    }
    let wc = watcher::Config::default().labels(&crate::api::instance_selector(
        config.instance_id.as_deref(),
    ));
    let (ex_reader, ex_writer) = reflector::store::<Experiment>();
    let ex_stream = decode::tolerant(watcher(
        decode::untyped::<Experiment>(&client, config.namespace.as_deref()),
        wc,
    ))
    .default_backoff()
    .modify(super::slim::strip)
    .reflect(ex_writer)
    .applied_objects();
    let reporter = Reporter {
        controller: FIELD_MANAGER.into(),
        instance: std::env::var("POD_NAME").ok(),
    };
    let ctx = Arc::new(Context {
        client: client.clone(),
        replica_sets: rs_store,
        services: svc_store,
        replica_set_owners: rs_owners,
        service_owners: svc_owners,
        analysis_runs: ar_store,
        analysis_templates: at_store,
        cluster_analysis_templates: cat_store,
        cluster_templates_watched: config.namespace.is_none(),
        recorder: Recorder::new(client, reporter),
        written_from: Mutex::new(HashMap::new()),
        failures: Mutex::new(HashMap::new()),
    });
    Controller::for_stream(ex_stream, ex_reader)
        .with_config(kube::runtime::controller::Config::default().concurrency(config.concurrency))
        .owns_stream(rs_stream)
        .owns_stream(ar_stream)
        .owns_stream(svc_stream)
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|res| async move {
            if let Err(e) = res {
                debug!("experiment reconcile: {e}");
            }
        })
        .await;
    drop(tasks);
}

impl Context {
    /// Whether every cache a plan reads has listed: until then "none" means "not known yet".
    async fn caches_synced(&self) -> bool {
        let limit = Some(Duration::from_secs(2));
        let cluster = async {
            !self.cluster_templates_watched
                || store_ready(&self.cluster_analysis_templates, limit).await
        };
        let (a, b, c, d, e) = futures::join!(
            store_ready(&self.replica_sets, limit),
            store_ready(&self.services, limit),
            store_ready(&self.analysis_runs, limit),
            store_ready(&self.analysis_templates, limit),
            cluster,
        );
        a && b && c && d && e
    }
}

/// One reconcile: observe → plan → actuate → report, in the Experiment's own span.
#[tracing::instrument(skip_all, fields(namespace = ex.namespace().unwrap_or_default(), experiment = ex.name_any()))]
async fn reconcile(ex: Arc<Experiment>, ctx: Arc<Context>) -> Result<Action, Error> {
    if !ctx.caches_synced().await {
        return Ok(Action::requeue(Duration::from_millis(500)));
    }
    let key = ObjectRef::from_obj(&*ex);
    let rv = ex.resource_version().unwrap_or_default();
    {
        let mut written = ctx.written_from.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((from, at)) = written.get(&key) {
            if *from == rv && at.elapsed() < Duration::from_secs(10) {
                // The store has not caught up with our last write; its event comes.
                return Ok(Action::await_change());
            }
            written.remove(&key);
        }
    }
    let started = Instant::now();
    let now = Timestamp::now();
    let ns = ex.namespace().unwrap_or_default();

    // Observe.
    let owned: Vec<Arc<ReplicaSet>> = ctx
        .replica_sets
        .state()
        .into_iter()
        .filter(|rs| {
            rs.namespace().as_deref() == Some(ns.as_str())
                && crate::api::is_controlled_by(&**rs, &*ex)
        })
        .collect();
    let taken_names: BTreeSet<String> = ex
        .spec
        .templates
        .iter()
        .flatten()
        .map(|t| experiment::replica_set_name(&ex, t.name.as_deref().unwrap_or("")))
        .filter(|n| taken_by_another(&ctx.replica_set_owners, n, &ns, &ex))
        .collect();
    let services: Vec<Arc<Service>> = ctx
        .services
        .state()
        .into_iter()
        .filter(|s| {
            s.namespace().as_deref() == Some(ns.as_str())
                && crate::api::is_controlled_by(&**s, &*ex)
        })
        .collect();
    let taken_service_names: BTreeSet<String> = ex
        .spec
        .templates
        .iter()
        .flatten()
        .filter_map(|t| experiment::services::service_name(&ex, t))
        .filter(|n| taken_by_another(&ctx.service_owners, n, &ns, &ex))
        .collect();
    let in_ns = |o: Option<String>| o.as_deref() == Some(ns.as_str());
    let prefix = format!("{}-", ex.name_any());
    let (runs, others): (Vec<Arc<AnalysisRun>>, Vec<Arc<AnalysisRun>>) = ctx
        .analysis_runs
        .state()
        .into_iter()
        .filter(|r| in_ns(r.namespace()) && r.name_any().starts_with(&prefix))
        .partition(|r| crate::api::is_controlled_by(&**r, &*ex));
    let templates: Vec<Arc<AnalysisTemplate>> = ctx
        .analysis_templates
        .state()
        .into_iter()
        .filter(|t| in_ns(t.namespace()))
        .collect();
    let cluster_templates = ctx.cluster_analysis_templates.state();
    let mut refused_templates = std::collections::BTreeMap::new();
    let mut done: Vec<Effect> = Vec::new();
    let plan = loop {
        let plan = experiment::plan(
            &Observed {
                experiment: &ex,
                replica_sets: owned.iter().map(|rs| &**rs).collect(),
                taken_names: taken_names.clone(),
                services: services.iter().map(|s| &**s).collect(),
                taken_service_names: taken_service_names.clone(),
                analysis_runs: runs.iter().map(|r| &**r).collect(),
                taken_run_names: others.iter().map(|r| r.name_any()).collect(),
                refused_templates: refused_templates.clone(),
                analysis_templates: templates.iter().map(|t| (t.name_any(), &**t)).collect(),
                cluster_analysis_templates: cluster_templates
                    .iter()
                    .map(|t| (t.name_any(), &**t))
                    .collect(),
            },
            now,
        );

        // Actuate.
        let mut refused = None;
        for effect in &plan.effects {
            if done.contains(effect) {
                // Carried out before the refusal that made this plan.
                continue;
            }
            match actuate(&ctx, &ns, effect).await? {
                Actuated::Done => done.push(effect.clone()),
                Actuated::Again(action) => return Ok(action),
                Actuated::Refused { template, message } => {
                    refused = Some((template, message));
                    break;
                }
            }
        }
        match refused {
            // Plan again with the refusal observed: the template is an Error (once per
            // template, so this ends).
            Some((template, message)) if !refused_templates.contains_key(&template) => {
                warn!(template = %template, %message, "the API server refused a template's ReplicaSet");
                refused_templates.insert(template, message);
            }
            _ => break plan,
        }
    };

    // Report.
    if let Some(action) = write_status(&ctx, &ex, &plan, &key, &rv).await? {
        return Ok(action);
    }
    super::report::publish_events(&ctx.recorder, &ex.object_ref(&()), &plan.events).await;
    ctx.failures
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&key);
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

/// What became of one effect.
enum Actuated {
    Done,
    /// End the reconcile there and plan again (the store is behind).
    Again(Action),
    /// The API server refused a template's ReplicaSet (a client error other than a
    /// conflict or throttling): a domain outcome, not a retry.
    Refused {
        template: String,
        message: String,
    },
}

/// Whether an API error refuses the request itself (invalid, forbidden, quota), rather than
/// saying the world is briefly in the way (conflict, throttling) or unreachable.
fn is_refusal(e: &kube::core::Status) -> bool {
    (400..500).contains(&e.code) && !matches!(e.code, 404 | 408 | 409 | 429)
}

/// Carries out one effect.
async fn actuate(ctx: &Context, ns: &str, effect: &Effect) -> Result<Actuated, Error> {
    let api: Api<ReplicaSet> = Api::namespaced(ctx.client.clone(), ns);
    match effect {
        Effect::CreateReplicaSet(rs) => {
            let post = PostParams {
                field_manager: Some(FIELD_MANAGER.into()),
                ..Default::default()
            };
            match api.create(&post, rs).await {
                Ok(_) => info!(rs = rs.name_any(), "created ReplicaSet"),
                // Ours, ahead of the store, or someone else's: the next plan tells them apart.
                Err(kube::Error::Api(e)) if e.code == 409 => {
                    return Ok(Actuated::Again(Action::requeue(Duration::from_millis(200))));
                }
                Err(kube::Error::Api(e)) if is_refusal(&e) => {
                    let template = rs
                        .annotations()
                        .get(crate::api::consts::EXPERIMENT_TEMPLATE_NAME_ANNOTATION_KEY)
                        .cloned()
                        .unwrap_or_default();
                    return Ok(Actuated::Refused {
                        template,
                        message: e.message,
                    });
                }
                Err(e) => return Err(e.into()),
            }
        }
        Effect::PatchReplicaSet {
            name,
            replicas,
            scale_down_deadline,
        } => {
            let body = replica_set_patch(*replicas, scale_down_deadline.as_ref());
            let pp = PatchParams {
                field_manager: Some(FIELD_MANAGER.into()),
                ..Default::default()
            };
            match api.patch(name, &pp, &Patch::Merge(&body)).await {
                Ok(_) => debug!(rs = %name, patch = %body, "patched ReplicaSet"),
                Err(kube::Error::Api(e)) if e.code == 404 => {
                    return Ok(Actuated::Again(Action::requeue(Duration::from_millis(200))));
                }
                Err(e) => return Err(e.into()),
            }
        }
        Effect::CreateService(svc) => {
            let post = PostParams {
                field_manager: Some(FIELD_MANAGER.into()),
                ..Default::default()
            };
            let api: Api<Service> = Api::namespaced(ctx.client.clone(), ns);
            match api.create(&post, svc).await {
                Ok(_) => info!(service = svc.name_any(), "created Service"),
                Err(kube::Error::Api(e)) if e.code == 409 => {
                    return Ok(Actuated::Again(Action::requeue(Duration::from_millis(200))));
                }
                Err(e) => return Err(e.into()),
            }
        }
        Effect::DeleteService { name } => {
            let api: Api<Service> = Api::namespaced(ctx.client.clone(), ns);
            match api.delete(name, &DeleteParams::default()).await {
                Ok(_) => info!(service = %name, "deleted Service"),
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => return Err(e.into()),
            }
        }
        Effect::CreateAnalysisRun(run) => {
            let post = PostParams {
                field_manager: Some(FIELD_MANAGER.into()),
                ..Default::default()
            };
            let runs: Api<AnalysisRun> = Api::namespaced(ctx.client.clone(), ns);
            match runs.create(&post, run).await {
                Ok(_) => info!(run = run.name_any(), "created AnalysisRun"),
                // Ours, ahead of the store, or someone else's: the next plan tells them apart.
                Err(kube::Error::Api(e)) if e.code == 409 => {
                    return Ok(Actuated::Again(Action::requeue(Duration::from_millis(200))));
                }
                Err(e) => return Err(e.into()),
            }
        }
        Effect::TerminateAnalysisRun { name } => {
            let pp = PatchParams {
                field_manager: Some(FIELD_MANAGER.into()),
                ..Default::default()
            };
            let runs: Api<AnalysisRun> = Api::namespaced(ctx.client.clone(), ns);
            let body = json!({"spec": {"terminate": true}});
            match runs.patch(name, &pp, &Patch::Merge(&body)).await {
                Ok(_) => info!(run = %name, "terminated AnalysisRun"),
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(Actuated::Done)
}

/// The merge patch of a template ReplicaSet.
fn replica_set_patch(replicas: Option<i32>, deadline: Option<&Option<String>>) -> Value {
    let mut body = json!({});
    if let Some(n) = replicas {
        body["spec"] = json!({ "replicas": n });
    }
    if let Some(d) = deadline {
        let key = crate::api::consts::DEFAULT_REPLICASET_SCALE_DOWN_DEADLINE_ANNOTATION_KEY;
        body["metadata"] = json!({"annotations": { key: d }});
    }
    body
}

/// The status merge patch that takes `ex`'s status to `plan.status`, with the resourceVersion
/// as a precondition; `None` when nothing differs.
pub fn status_patch(
    ex: &Experiment,
    plan: &Plan,
    resource_version: &str,
) -> Result<Option<Value>, serde_json::Error> {
    let old = serde_json::to_value(ex.status.clone().unwrap_or_default())?;
    // Not stripped of empty strings: `status.analysisRuns[]` needs its `analysisRun` and
    // `phase` even when empty, as Go writes them.
    let new = serde_json::to_value(&plan.status)?;
    Ok(diff::merge_diff(&old, &new)
        .map(|d| json!({"metadata": {"resourceVersion": resource_version}, "status": d})))
}

/// Writes the plan's status; `Some(action)` when the reconcile should end there.
async fn write_status(
    ctx: &Context,
    ex: &Experiment,
    plan: &Plan,
    key: &ObjectRef<Experiment>,
    rv: &str,
) -> Result<Option<Action>, Error> {
    let Some(body) = status_patch(ex, plan, rv)? else {
        return Ok(None);
    };
    let name = ex.name_any();
    let api: Api<Experiment> =
        Api::namespaced(ctx.client.clone(), &ex.namespace().unwrap_or_default());
    let pp = PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    };
    match api.patch(&name, &pp, &Patch::Merge(&body)).await {
        Ok(_) => {
            ctx.written_from
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(key.clone(), (rv.to_string(), Instant::now()));
            debug!(patch = %body["status"], "status updated");
            let old = ex.status.as_ref().and_then(|s| s.phase.clone());
            if old != plan.status.phase {
                info!(
                    phase = plan.status.phase.as_deref().unwrap_or(""),
                    "experiment phase"
                );
            }
            Ok(None)
        }
        Err(kube::Error::Api(e)) if e.code == 409 => {
            debug!("status conflict; planning again");
            Ok(Some(Action::requeue(Duration::from_millis(50))))
        }
        Err(e) => {
            warn!(patch = %body["status"], "status update rejected: {e}");
            Err(e.into())
        }
    }
}

fn error_policy(ex: Arc<Experiment>, err: &Error, ctx: Arc<Context>) -> Action {
    let key = ObjectRef::from_obj(&*ex);
    let n = {
        let mut f = ctx.failures.lock().unwrap_or_else(|e| e.into_inner());
        let n = f.entry(key).or_insert(0);
        *n = n.saturating_add(1);
        *n
    };
    let delay = super::retry_delay(n);
    warn!(experiment = %ex.name_any(), reason = err.reason(), "experiment reconcile failed ({err}); retrying in {delay:?}");
    Action::requeue(delay)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replica_set_patches_set_and_remove_the_deadline() {
        assert_eq!(
            replica_set_patch(Some(0), Some(&None)),
            json!({"spec": {"replicas": 0},
                   "metadata": {"annotations": {"scale-down-deadline": null}}})
        );
        assert_eq!(
            replica_set_patch(None, Some(&Some("2026-01-01T00:00:30Z".into()))),
            json!({"metadata": {"annotations": {"scale-down-deadline": "2026-01-01T00:00:30Z"}}})
        );
        assert_eq!(
            replica_set_patch(Some(2), None),
            json!({"spec": {"replicas": 2}})
        );
    }
}
