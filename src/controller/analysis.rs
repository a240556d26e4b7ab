//! The AnalysisRun controller: a kube-rs [`Controller`] over AnalysisRuns, owning Jobs.
//!
//! Each reconcile: [`core::begin`] (pure) → the due measurements, taken concurrently by the
//! [providers](crate::analysis::providers) (at most `analysis_concurrency` in flight across all
//! runs, each bounded by its provider's deadline, so a hanging provider only ever delays its
//! own metric) → [`core::finish`] (pure) → writes:
//!
//! - the status, as a JSON merge patch of the smallest diff on the main resource (AnalysisRun
//!   has no status subresource, as upstream) with `metadata.resourceVersion` as precondition:
//!   a status computed from a stale view never overwrites a concurrent change (e.g.
//!   `spec.terminate`), the write fails with a conflict and the next reconcile sees it;
//! - events (`Metric<Phase>`, `AnalysisRun<Phase>`);
//! - Job clean-up: finished Jobs whose measurement left the history, and every Job once the
//!   run is complete;
//! - deletion of a completed run whose `ttlStrategy` expired.
//!
//! Then the reconcile asks to be called again at the exact instant the next measurement is due
//! (or the TTL expires). In-flight Job measurements are resumed by the Jobs' watch events.
//! Secrets (`valueFrom.secretKeyRef` arguments, and the providers' credentials) are read by
//! GET at measurement time, each at most once per reconcile, used only in memory; argument
//! values are redacted (`*****`) from anything written.

use crate::analysis::core::{self, Begin, Outcome, Reconciled, Task, TaskKind};
use crate::analysis::providers::secrets::{
    self as provider_secrets, KubeSecrets, SecretError, SecretSource,
};
use crate::analysis::providers::{self, ProviderContext, ProviderEnv, Vars};
use crate::analysis::{AnalysisMetrics, JOB_NAME_KEY, JOB_RUN_UID_LABEL, args};
use crate::api::{AnalysisRun, Measurement, analysis_phase};
use crate::controller::{FIELD_MANAGER, diff};
use crate::events::Recorder;
use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions, PropagationPolicy};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::Reporter;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tracing::{debug, info, warn};

/// Settings of the AnalysisRun controller.
#[derive(Clone, Debug)]
pub struct Config {
    /// Watch one namespace only; `None` watches all.
    pub namespace: Option<String>,
    /// Only runs labelled with this controller instance id (or, when `None`, only runs
    /// without the label), as upstream's sharding.
    pub instance_id: Option<String>,
    /// Measurements in flight at once, across all runs.
    pub analysis_concurrency: usize,
    /// Runs reconciled at once (0: unbounded; a run waiting for a measurement holds a slot).
    pub reconcile_concurrency: u16,
    /// Default Prometheus address for metrics that name none (the default reads
    /// `ARGO_ROLLOUTS_PROMETHEUS_ADDRESS`).
    pub prometheus_address: Option<String>,
    /// Where measurements are exported as gauges.
    pub metrics: Arc<AnalysisMetrics>,
    /// Environment variables of the providers (`DD_*`, `AWS_*`, `POD_NAMESPACE`).
    pub provider_vars: Vars,
    /// Where provider Secrets (`datadog`, `newrelic`, ...) are read; `None`: the controller's
    /// namespace (`POD_NAMESPACE`, else the service account's, else `argo-rollouts`).
    pub controller_namespace: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            namespace: None,
            instance_id: None,
            analysis_concurrency: 10,
            reconcile_concurrency: 0,
            prometheus_address: std::env::var(providers::prometheus::ADDRESS_ENV)
                .ok()
                .filter(|a| !a.is_empty()),
            metrics: Arc::new(AnalysisMetrics::new()),
            provider_vars: Vars::Process,
            controller_namespace: None,
        }
    }
}

impl From<&crate::controller::Config> for Config {
    /// The Rollout controller's scope (namespace, instance id) with default analysis settings.
    fn from(c: &crate::controller::Config) -> Self {
        Config {
            namespace: c.namespace.clone(),
            instance_id: c.instance_id.clone(),
            ..Default::default()
        }
    }
}

/// Errors: only "could not talk to the world" (analysis outcomes are the run's status); the
/// Rollout controller's.
pub use super::Error;

struct Context {
    client: Client,
    jobs: Store<Job>,
    recorder: Recorder,
    env: ProviderEnv,
    permits: Arc<Semaphore>,
    metrics: Arc<AnalysisMetrics>,
    /// Run → the resourceVersion our last write started from.
    written_from: Mutex<HashMap<ObjectRef<AnalysisRun>, (String, Instant)>>,
    /// Run → consecutive failures (for backoff).
    failures: Mutex<HashMap<ObjectRef<AnalysisRun>, u32>>,
}

/// Runs the AnalysisRun controller until `shutdown` resolves.
pub async fn run(
    client: Client,
    config: Config,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let (runs, jobs_api): (Api<AnalysisRun>, Api<Job>) = match &config.namespace {
        Some(ns) => (
            Api::namespaced(client.clone(), ns),
            Api::namespaced(client.clone(), ns),
        ),
        None => (Api::all(client.clone()), Api::all(client.clone())),
    };
    let (job_store, job_writer) = reflector::store();
    let job_stream = watcher(
        jobs_api,
        watcher::Config::default().labels(JOB_RUN_UID_LABEL),
    )
    .default_backoff()
    .reflect(job_writer)
    .touched_objects();
    let reporter = Reporter {
        controller: FIELD_MANAGER.into(),
        instance: std::env::var("POD_NAME").ok(),
    };
    let ctx = Arc::new(Context {
        client: client.clone(),
        jobs: job_store.clone(),
        recorder: Recorder::new(client.clone(), reporter),
        env: ProviderEnv {
            client: client.clone(),
            jobs: job_store,
            prometheus_address: config.prometheus_address.clone(),
            context: {
                let mut pc = ProviderContext::new(
                    Arc::new(KubeSecrets::new(client.clone())),
                    config.provider_vars.clone(),
                );
                if let Some(ns) = config.controller_namespace.clone() {
                    pc.controller_namespace = ns;
                }
                pc
            },
        },
        permits: Arc::new(Semaphore::new(config.analysis_concurrency.max(1))),
        metrics: config.metrics.clone(),
        written_from: Mutex::new(HashMap::new()),
        failures: Mutex::new(HashMap::new()),
    });
    let wc = watcher::Config::default().labels(&crate::api::instance_selector(
        config.instance_id.as_deref(),
    ));
    Controller::new(runs, wc)
        .with_config(
            kube::runtime::controller::Config::default().concurrency(config.reconcile_concurrency),
        )
        .owns_stream(job_stream)
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|res| async move {
            if let Err(e) = res {
                debug!("analysis reconcile: {e}");
            }
        })
        .await;
}

/// A secret argument that cannot be read.
enum ArgSecretError {
    /// Missing secret or key: the run ends in Error.
    Fatal(String),
    /// The API could not be reached: retry.
    Transient(kube::Error),
}

/// Reads the `secretKeyRef` arguments through `secrets` (the reconcile's cache): argument
/// name → value.
async fn read_secrets(
    secrets: &dyn SecretSource,
    run: &AnalysisRun,
) -> Result<BTreeMap<String, String>, ArgSecretError> {
    let ns = run.namespace().unwrap_or_default();
    let mut out = BTreeMap::new();
    for a in run.spec.args.iter().flatten() {
        let Some(r) = a
            .value_from
            .as_ref()
            .and_then(|v| v.secret_key_ref.as_ref())
        else {
            continue;
        };
        let name = r.name.clone().unwrap_or_default();
        let key = r.key.clone().unwrap_or_default();
        let data = match secrets.get(&ns, &name).await {
            Ok(d) => d,
            Err(SecretError::NotFound { .. }) => {
                return Err(ArgSecretError::Fatal(format!(
                    "secrets \"{name}\" not found"
                )));
            }
            Err(e @ SecretError::Forbidden { .. }) => {
                return Err(ArgSecretError::Fatal(e.to_string()));
            }
            Err(SecretError::Unreachable { source, .. }) => {
                return Err(ArgSecretError::Transient(source));
            }
        };
        let value = provider_secrets::text(&data, &key).ok_or_else(|| {
            ArgSecretError::Fatal(format!("key '{key}' does not exist in secret '{name}'"))
        })?;
        out.insert(a.name.clone().unwrap_or_default(), value);
    }
    Ok(out)
}

fn redact_measurement(mut m: Measurement, secrets: &[String]) -> Measurement {
    if secrets.is_empty() {
        return m;
    }
    m.message = m.message.map(|s| args::redact(&s, secrets));
    m.value = m.value.map(|s| args::redact(&s, secrets));
    if let Some(md) = m.metadata.as_mut() {
        for v in md.values_mut() {
            *v = args::redact(v, secrets);
        }
    }
    m
}

/// Carries out one task with its provider, within the provider's deadline and a permit.
async fn measure(
    ctx: &Context,
    env: &ProviderEnv,
    run: &AnalysisRun,
    task: Task,
    secrets: &BTreeMap<String, String>,
    secret_values: &[String],
) -> Outcome {
    let base = task.incomplete.clone().unwrap_or_default();
    let fail = |task: Task, msg: String| Outcome {
        measurement: redact_measurement(
            core::error_measurement(base.clone(), msg, Timestamp::now()),
            secret_values,
        ),
        task,
        metadata: None,
    };
    let metric = match core::resolve_for_measurement(run, task.index, secrets) {
        Ok(m) => m,
        Err(e) => return fail(task, format!("Unable to resolve metric arguments: {e}")),
    };
    let provider = match providers::new_provider(&metric, env) {
        Ok(p) => p,
        Err(e) => return fail(task, e.to_string()),
    };
    let metadata = provider.metadata(&metric).map(|mut md| {
        for v in md.values_mut() {
            *v = args::redact(v, secret_values);
        }
        md
    });
    let Ok(_permit) = ctx.permits.clone().acquire_owned().await else {
        return fail(task, "the controller is shutting down".into());
    };
    let deadline = provider.deadline();
    let fut = match task.kind {
        TaskKind::Start => provider.run(run, &metric),
        TaskKind::Resume => provider.resume(run, &metric, base.clone()),
        TaskKind::Terminate => provider.terminate(run, &metric, base.clone()),
    };
    let m = match tokio::time::timeout(deadline, fut).await {
        Ok(m) => m,
        Err(_) => {
            return fail(
                task,
                format!(
                    "the {} provider did not answer within {}s",
                    provider.kind(),
                    deadline.as_secs()
                ),
            );
        }
    };
    Outcome {
        measurement: redact_measurement(m, secret_values),
        task,
        metadata,
    }
}

async fn reconcile(run: Arc<AnalysisRun>, ctx: Arc<Context>) -> Result<Action, Error> {
    let key = ObjectRef::from_obj(&*run);
    let rv = run.resource_version().unwrap_or_default();
    {
        let mut written = ctx.written_from.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((from, at)) = written.get(&key) {
            if *from == rv && at.elapsed() < Duration::from_secs(10) {
                // The store has not caught up with our last write yet; its watch event will
                // trigger the next reconcile.
                return Ok(Action::await_change());
            }
            written.remove(&key);
        }
    }
    if run.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let started = Instant::now();
    let now = Timestamp::now();
    let reconciled = match core::begin(&run, now) {
        Begin::Done(r) => r,
        Begin::Measure { prepared, tasks } => {
            // Secrets are read by GET, each at most once per reconcile, only when a
            // measurement needs them.
            let source = Arc::new(KubeSecrets::new(ctx.client.clone()));
            let mut env = ctx.env.clone();
            env.context.secrets = source.clone();
            let secrets = if tasks.is_empty() {
                Ok(BTreeMap::new())
            } else {
                read_secrets(source.as_ref(), &run).await
            };
            match secrets {
                Err(ArgSecretError::Transient(e)) => return Err(e.into()),
                Err(ArgSecretError::Fatal(msg)) => core::fail_run(
                    &run,
                    &format!("Unable to resolve metric arguments: {msg}"),
                    now,
                ),
                Ok(secrets) => {
                    let values: Vec<String> = secrets.values().cloned().collect();
                    let n = tasks.len();
                    let outcomes = futures::future::join_all(
                        tasks
                            .into_iter()
                            .map(|t| measure(&ctx, &env, &run, t, &secrets, &values)),
                    )
                    .await;
                    for o in &outcomes {
                        let m = &o.measurement;
                        if m.phase.as_deref().is_some_and(analysis_phase::is_completed) {
                            ctx.metrics.record(&run, &o.task.name, m);
                        }
                    }
                    if n > 0 {
                        debug!(run = %run.name_any(), measurements = n, elapsed_ms = started.elapsed().as_millis() as u64, "measured");
                    }
                    core::finish(&run, &prepared, outcomes, Timestamp::now())
                }
            }
        }
    };
    apply(&run, reconciled, &ctx, &key, &rv).await
}

/// Job names the run's measurements still reference.
fn referenced_jobs(status: &crate::api::AnalysisRunStatus) -> BTreeSet<String> {
    status
        .metric_results
        .iter()
        .flatten()
        .flat_map(|r| r.measurements.iter().flatten())
        .filter_map(|m| m.metadata.as_ref()?.get(JOB_NAME_KEY).cloned())
        .collect()
}

/// Deletes the run's Jobs that are no longer needed: all of them once the run is complete,
/// otherwise finished ones no measurement references any more.
async fn clean_up_jobs(ctx: &Context, run: &AnalysisRun, r: &Reconciled) {
    let Some(uid) = run.metadata.uid.as_deref() else {
        return;
    };
    let ns = run.namespace().unwrap_or_default();
    let completed = r
        .status
        .phase
        .as_deref()
        .is_some_and(analysis_phase::is_completed);
    let keep = if completed {
        BTreeSet::new()
    } else {
        referenced_jobs(&r.status)
    };
    let doomed: Vec<String> = ctx
        .jobs
        .state()
        .iter()
        .filter(|j| j.namespace().as_deref() == Some(ns.as_str()))
        .filter(|j| j.labels().get(JOB_RUN_UID_LABEL).map(String::as_str) == Some(uid))
        .filter(|j| j.metadata.deletion_timestamp.is_none())
        .filter(|j| {
            completed || (!keep.contains(&j.name_any()) && providers::job::job_outcome(j).is_some())
        })
        .map(|j| j.name_any())
        .collect();
    if doomed.is_empty() {
        return;
    }
    let api: Api<Job> = Api::namespaced(ctx.client.clone(), &ns);
    let dp = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        ..Default::default()
    };
    for name in doomed {
        match api.delete(&name, &dp).await {
            Ok(_) => debug!(run = %run.name_any(), job = %name, "deleted job"),
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => warn!(run = %run.name_any(), job = %name, "deleting job: {e}"),
        }
    }
}

async fn apply(
    run: &AnalysisRun,
    r: Reconciled,
    ctx: &Context,
    key: &ObjectRef<AnalysisRun>,
    rv: &str,
) -> Result<Action, Error> {
    let ns = run.namespace().unwrap_or_default();
    let name = run.name_any();
    let api: Api<AnalysisRun> = Api::namespaced(ctx.client.clone(), &ns);
    if r.delete {
        let dp = DeleteParams {
            preconditions: Some(Preconditions {
                uid: run.metadata.uid.clone(),
                resource_version: None,
            }),
            ..Default::default()
        };
        info!(run = %name, "deleting AnalysisRun: ttlStrategy expired");
        match api.delete(&name, &dp).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {}
            Err(e) => return Err(e.into()),
        }
        return Ok(Action::await_change());
    }
    let old = serde_json::to_value(run.status.clone().unwrap_or_default())?;
    let new = serde_json::to_value(&r.status)?;
    if let Some(d) = diff::merge_diff(&old, &new) {
        let body = json!({"metadata": {"resourceVersion": rv}, "status": d});
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
            }
            Err(kube::Error::Api(e)) if e.code == 409 => {
                debug!(run = %name, "status conflict; reconciling again");
                return Ok(Action::requeue(Duration::from_millis(50)));
            }
            Err(e) => {
                warn!(run = %name, "status update rejected: {e}");
                return Err(e.into());
            }
        }
        if r.status.phase != run.status.as_ref().and_then(|s| s.phase.clone()) {
            info!(run = %name, phase = r.status.phase.as_deref().unwrap_or(""), "analysis run phase");
        }
    }
    super::report::publish_events(&ctx.recorder, &run.object_ref(&()), &r.events).await;
    clean_up_jobs(ctx, run, &r).await;
    ctx.failures
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(key);
    Ok(match r.requeue_at {
        Some(at) => {
            let wait = at.duration_since(Timestamp::now());
            let wait = Duration::try_from(wait).unwrap_or(Duration::ZERO);
            Action::requeue(wait)
        }
        None => Action::await_change(),
    })
}

fn error_policy(run: Arc<AnalysisRun>, err: &Error, ctx: Arc<Context>) -> Action {
    let key = ObjectRef::from_obj(&*run);
    let n = {
        let mut f = ctx.failures.lock().unwrap_or_else(|e| e.into_inner());
        let n = f.entry(key).or_insert(0);
        *n = n.saturating_add(1);
        *n
    };
    let delay = super::retry_delay(n);
    warn!(run = %run.name_any(), reason = err.reason(), "analysis reconcile failed ({err}); retrying in {delay:?}");
    Action::requeue(delay)
}
