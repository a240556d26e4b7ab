//! `cargo xtask bench scale`: the controller at scale, against its own local control plane.
//!
//! The controller runs as a separate process (the release build of `rollouts-controller`, with
//! its default flags), so its memory is its own: RSS is read from `/proc/<pid>/status`
//! (`VmRSS` sampled, `VmHWM` for the peak). API writes are counted from the API server's audit
//! log (`--audit-log-path`, every write at level Metadata), per client by `User-Agent`: the
//! controller sends `rollouts-controller/<version>`, the controller manager's Deployment
//! controller `.../deployment-controller`; both sides are counted the same way.
//!
//! Parts, in this order, in one run:
//! 1. **side by side**: the same no-steps rolling update of `objects` × `replicas` (maxSurge
//!    and maxUnavailable 25 %), started at the same instant, as Deployments (the controller
//!    manager) and as canary Rollouts without steps (this controller): wall time to complete,
//!    writes per object;
//! 2. **N Rollouts** (one replica each), in stages (`--rollouts 1000,5000`: 1,000, then 4,000
//!    more): per stage, time to Healthy, writes per new Rollout until Healthy, how long the
//!    queued events took to follow, RSS while they come up (peak) and at steady state, and
//!    writes over a steady-state window; then a restart: time until every Rollout has been
//!    reconciled again, and the writes it made;
//! 3. **the pod simulator**: how late pods became Ready after their ready delay (from the
//!    benchmark's own pod watch: created → Ready; and inside the simulator: bind → Ready).
//!
//! Figures are printed; nothing is asserted about time.

use crate::cluster::{self, Binaries, ControlPlane, Mode};
use crate::podsim::{self, SimOptions, SimStats};
use anyhow::{Context, Result, bail};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::GroupVersionKind;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client, ResourceExt};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, Seek};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The benchmark's settings.
#[derive(Clone, Debug)]
pub struct ScaleOptions {
    /// Rollouts in part 2, in stages: each stage adds Rollouts up to its count, and is
    /// measured once all are Healthy (e.g. 1,000 then 5,000).
    pub rollouts: Vec<usize>,
    /// Objects per side in part 1.
    pub objects: usize,
    /// Replicas per object in part 1.
    pub replicas: i32,
    /// The steady-state window (and the one after the restart).
    pub window: Duration,
    /// The pod simulator's ready delay.
    pub ready_delay: Duration,
    /// A prebuilt controller binary (default: build the release binary).
    pub controller: Option<PathBuf>,
    /// Skip part 1 or part 2.
    pub skip_side_by_side: bool,
    pub skip_scale: bool,
    /// Keep the run's directory (logs, audit log) after a successful run.
    pub keep: bool,
}

const AGENT_OURS: &str = "rollouts-controller/";
const AGENT_DEPLOYMENT: &str = "/deployment-controller";
const AGENT_BENCH: &str = "rollouts-bench";
const AUDIT_POLICY: &str = "apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: None
  verbs: [get, list, watch]
- level: None
  resources: [{group: coordination.k8s.io, resources: [leases]}]
- level: Metadata
";

/// Builds the release controller (unless one is given) and runs every part.
pub async fn scale(root: &Path, opts: ScaleOptions) -> Result<()> {
    let bin = match &opts.controller {
        Some(b) => b.clone(),
        None => {
            let t = Instant::now();
            let status = Command::new(env!("CARGO"))
                .current_dir(root)
                .args(["build", "--release", "--bin", "rollouts-controller"])
                .status()
                .context("building the controller")?;
            if !status.success() {
                bail!("building the release controller failed");
            }
            eprintln!(
                "release controller built in {:.0}s",
                t.elapsed().as_secs_f64()
            );
            root.join("target/release/rollouts-controller")
        }
    };
    let bins = Binaries::ensure()?;
    let base = if Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let dir = base.join(format!("rollouts-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let policy = dir.join("audit-policy.yaml");
    std::fs::write(&policy, AUDIT_POLICY)?;
    let audit_path = dir.join("audit.log");
    let flags = vec![
        format!("--audit-policy-file={}", policy.display()),
        format!("--audit-log-path={}", audit_path.display()),
        "--audit-log-maxsize=0".into(),
    ];
    let cp = ControlPlane::start_with(bins, &dir, Mode::Attached, &flags).await?;
    let client = cluster::client_with_agent(&cp.kubeconfig, AGENT_BENCH).await?;
    crate::testkit::install_crds(&client, &root.join("crds")).await?;
    let sim_stats = Arc::new(SimStats::default());
    let sim_client = cluster::client_with_agent(&cp.kubeconfig, "rollouts-podsim").await?;
    let sim_opts = SimOptions {
        ready_delay: opts.ready_delay,
        ..Default::default()
    };
    let sim = tokio::spawn(podsim::run_with_stats(
        sim_client,
        sim_opts,
        sim_stats.clone(),
    ));
    let pods = PodWatch::start(client.clone());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "machine: {} cores, load average at start {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    let mut audit = Audit::new(audit_path);
    let mut ctl = ControllerProcess::start(&bin, &cp.kubeconfig, &dir)?;

    let res = async {
        if !opts.skip_side_by_side {
            side_by_side(&client, &opts, &mut audit).await?;
            report_sim(&pods, &sim_stats, opts.ready_delay);
        }
        if !opts.skip_scale {
            many(
                &client,
                &opts,
                &mut audit,
                &mut ctl,
                &bin,
                &cp.kubeconfig,
                &dir,
            )
            .await?;
            report_sim(&pods, &sim_stats, opts.ready_delay);
        }
        Ok::<_, anyhow::Error>(())
    }
    .await;
    ctl.stop();
    sim.abort();
    drop(cp);
    if res.is_ok() && !opts.keep {
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        eprintln!("state kept in {} (logs, audit log)", dir.display());
    }
    res
}

/// The controller under test, as its own process.
struct ControllerProcess {
    child: Child,
    metrics: u16,
}

impl ControllerProcess {
    fn start(bin: &Path, kubeconfig: &Path, dir: &Path) -> Result<ControllerProcess> {
        let metrics = cluster::free_port()?;
        let healthz = cluster::free_port()?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("rollouts-controller.log"))?;
        let mut cmd = Command::new(bin);
        cmd.args([
            "run",
            &format!("--metrics-addr=127.0.0.1:{metrics}"),
            &format!("--healthz-addr=127.0.0.1:{healthz}"),
        ])
        .env("KUBECONFIG", kubeconfig)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
        cluster::die_with_parent(&mut cmd);
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        Ok(ControllerProcess { child, metrics })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `VmRSS` and `VmHWM` in KiB.
    fn memory(&self) -> (u64, u64) {
        let (rss, hwm, _, _) = self.memory_detail();
        (rss, hwm)
    }

    /// `VmRSS`, `VmHWM`, `RssAnon` (heap, stacks) and `RssFile` (the binary's pages) in KiB.
    fn memory_detail(&self) -> (u64, u64, u64, u64) {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
                .unwrap_or(0)
        };
        (
            field("VmRSS:"),
            field("VmHWM:"),
            field("RssAnon:"),
            field("RssFile:"),
        )
    }

    /// SIGTERM, then waits (SIGKILL after 10 s).
    fn stop(&mut self) {
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The metrics text (plain HTTP/1.0 on loopback).
    async fn metrics(&self) -> Result<String> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", self.metrics)).await?;
        s.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
            .await?;
        let mut body = String::new();
        s.read_to_string(&mut body).await?;
        Ok(body)
    }

    /// Rollouts in `ns` reconciled at least once by this process.
    async fn reconciled_in(&self, ns: &str) -> usize {
        let Ok(text) = self.metrics().await else {
            return 0;
        };
        let needle = format!("namespace=\"{ns}\"");
        text.lines()
            .filter(|l| l.starts_with("rollout_reconcile_count{") && l.contains(&needle))
            .filter(|l| {
                l.rsplit(' ')
                    .next()
                    .and_then(|v| v.parse::<f64>().ok())
                    .is_some_and(|v| v >= 1.0)
            })
            .count()
    }
}

/// Samples a process's RSS every 100 ms until dropped; keeps the largest.
struct RssSampler {
    max: Arc<Mutex<u64>>,
    task: tokio::task::JoinHandle<()>,
}

impl RssSampler {
    fn start(pid: u32) -> RssSampler {
        let max = Arc::new(Mutex::new(0));
        let m = max.clone();
        let task = tokio::spawn(async move {
            loop {
                let status =
                    std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
                if let Some(kib) = status
                    .lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                {
                    let mut g = m.lock().unwrap();
                    *g = (*g).max(kib);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        RssSampler { max, task }
    }

    fn max(&self) -> u64 {
        *self.max.lock().unwrap()
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// One write in the audit log.
#[derive(Debug, Clone)]
struct Write {
    agent: String,
    namespace: String,
    /// `resource` or `resource/subresource`.
    resource: String,
    verb: String,
    code: u16,
}

/// The audit log, read on from where the last read stopped.
struct Audit {
    path: PathBuf,
    offset: u64,
}

impl Audit {
    fn new(path: PathBuf) -> Audit {
        Audit { path, offset: 0 }
    }

    /// Skips everything logged so far.
    fn mark(&mut self) {
        let _ = self.take();
    }

    /// The writes logged since the last call.
    fn take(&mut self) -> Vec<Write> {
        let Ok(mut f) = std::fs::File::open(&self.path) else {
            return Vec::new();
        };
        if f.seek(std::io::SeekFrom::Start(self.offset)).is_err() {
            return Vec::new();
        }
        let mut out = Vec::new();
        let mut reader = std::io::BufReader::new(f);
        let mut line = String::new();
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                // A line still being written: read it next time.
                Ok(_) if !line.ends_with('\n') => break,
                Ok(n) => {
                    self.offset += n as u64;
                    if let Some(w) = parse_audit(&line) {
                        out.push(w);
                    }
                }
            }
        }
        out
    }
}

fn parse_audit(line: &str) -> Option<Write> {
    let v: Value = serde_json::from_str(line).ok()?;
    if v["stage"] != "ResponseComplete" {
        return None;
    }
    let verb = v["verb"].as_str()?;
    if !matches!(
        verb,
        "create" | "update" | "patch" | "delete" | "deletecollection"
    ) {
        return None;
    }
    let o = &v["objectRef"];
    let mut resource = o["resource"].as_str().unwrap_or_default().to_string();
    if let Some(sub) = o["subresource"].as_str() {
        resource = format!("{resource}/{sub}");
    }
    Some(Write {
        agent: v["userAgent"].as_str().unwrap_or_default().to_string(),
        namespace: o["namespace"].as_str().unwrap_or_default().to_string(),
        resource,
        verb: verb.to_string(),
        code: v["responseStatus"]["code"].as_u64().unwrap_or(0) as u16,
    })
}

/// Writes by an agent (`pred`) in namespace `ns` (`None`: any), by resource; events apart.
fn tally<'a>(
    writes: impl IntoIterator<Item = &'a Write>,
    pred: impl Fn(&str) -> bool,
    ns: Option<&str>,
) -> (u64, u64, BTreeMap<String, u64>) {
    let mut total = 0;
    let mut events = 0;
    let mut by = BTreeMap::new();
    for w in writes {
        if !pred(&w.agent) || ns.is_some_and(|n| n != w.namespace) {
            continue;
        }
        if w.resource == "events" {
            events += 1;
            continue;
        }
        total += 1;
        let failed = if w.code >= 400 {
            format!(" ({})", w.code)
        } else {
            String::new()
        };
        *by.entry(format!("{} {}{failed}", w.verb, w.resource))
            .or_insert(0) += 1;
    }
    (total, events, by)
}

fn breakdown(by: &BTreeMap<String, u64>) -> String {
    by.iter()
        .map(|(k, v)| format!("{v} {k}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn ours(agent: &str) -> bool {
    agent.starts_with(AGENT_OURS)
}

fn deployment_controller(agent: &str) -> bool {
    agent.ends_with(AGENT_DEPLOYMENT)
}

fn rollout_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("argoproj.io", "v1alpha1", "Rollout"),
        "rollouts",
    )
}

async fn create_namespace(client: &Client, name: &str) -> Result<()> {
    let api: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}}))?;
    match api.create(&PostParams::default(), &ns).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

fn template(app: &str, image: &str) -> Value {
    json!({"metadata": {"labels": {"app": app}},
           "spec": {"containers": [{"name": "app", "image": image}]}})
}

fn deployment(name: &str, replicas: i32) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "strategy": {"type": "RollingUpdate",
                              "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                 "template": template(name, "app:v1")}})
}

fn rollout(name: &str, replicas: i32) -> Value {
    json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "strategy": {"canary": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                 "template": template(name, "app:v1")}})
}

/// Whether a Deployment (as JSON) has completed its rollout of `image`.
fn deployment_done(d: &Value, replicas: i32, image: &str) -> bool {
    let s = &d["status"];
    d["spec"]["template"]["spec"]["containers"][0]["image"] == image
        && s["observedGeneration"].as_i64() >= d["metadata"]["generation"].as_i64()
        && s["updatedReplicas"].as_i64() == Some(replicas.into())
        && s["replicas"].as_i64() == Some(replicas.into())
        && s["availableReplicas"].as_i64() == Some(replicas.into())
}

/// Whether a Rollout (as JSON) is Healthy on `image` with every replica updated.
fn rollout_done(r: &Value, replicas: i32, image: &str) -> bool {
    let s = &r["status"];
    let generation = r["metadata"]["generation"]
        .as_i64()
        .unwrap_or(0)
        .to_string();
    r["spec"]["template"]["spec"]["containers"][0]["image"] == image
        && s["observedGeneration"].as_str() == Some(generation.as_str())
        && s["phase"] == "Healthy"
        && s["stableRS"] == s["currentPodHash"]
        && s["updatedReplicas"].as_i64() == Some(replicas.into())
        && s["replicas"].as_i64() == Some(replicas.into())
        && s["availableReplicas"].as_i64() == Some(replicas.into())
}

/// Watches `api` until `done` holds for `count` objects; returns when each object was first
/// seen done, in order (the last is when all were).
async fn wait_all(
    api: Api<DynamicObject>,
    count: usize,
    timeout: Duration,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Result<Vec<Instant>> {
    let mut state: HashMap<String, Option<Instant>> = HashMap::new();
    let mut stream = watcher::watcher(api, watcher::Config::default()).boxed();
    let finished = |state: &HashMap<String, Option<Instant>>| state.values().flatten().count();
    let fut = async {
        while let Some(ev) = stream.try_next().await? {
            if let Event::Apply(o) | Event::InitApply(o) = ev {
                let at = done(&serde_json::to_value(&o)?).then(Instant::now);
                let entry = state.entry(o.name_any()).or_default();
                *entry = entry.or(at).filter(|_| at.is_some());
                if state.len() >= count && finished(&state) >= count {
                    let mut times: Vec<Instant> = state.values().flatten().copied().collect();
                    times.sort();
                    return Ok::<_, anyhow::Error>(times);
                }
            }
        }
        bail!("the watch ended")
    };
    match tokio::time::timeout(timeout, fut).await {
        Ok(r) => r,
        Err(_) => bail!(
            "{what}: only {} of {count} done after {timeout:?}",
            finished(&state)
        ),
    }
}

/// When a share of the objects was done, in seconds after `start`: "p50 / p90 / all".
fn spread(times: &[Instant], start: Instant) -> String {
    let at = |q: f64| {
        let i = ((times.len() as f64 * q).ceil() as usize).clamp(1, times.len()) - 1;
        times[i].saturating_duration_since(start).as_secs_f64()
    };
    format!("{:.1} / {:.1} / {:.1} s", at(0.5), at(0.9), at(1.0))
}

/// Creates (or patches) many objects, 32 requests at a time.
async fn for_all<F, Fut>(count: usize, f: F) -> Result<()>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    futures::stream::iter((0..count).map(f))
        .buffer_unordered(32)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

async fn side_by_side(client: &Client, opts: &ScaleOptions, audit: &mut Audit) -> Result<()> {
    let (n, r) = (opts.objects, opts.replicas);
    println!(
        "\n== side by side: rolling update of {n} objects x {r} replicas (maxSurge/maxUnavailable 25 %), \
         Deployments (kube-controller-manager) and Rollouts (rollouts-controller) at once =="
    );
    let (dns, rns) = ("bench-deployments", "bench-rollouts");
    create_namespace(client, dns).await?;
    create_namespace(client, rns).await?;
    let deps: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), dns, &ApiResource::erase::<Deployment>(&()));
    let ros: Api<DynamicObject> = Api::namespaced_with(client.clone(), rns, &rollout_resource());
    let pp = PostParams::default();
    for_all(n, |i| {
        let (deps, ros, pp) = (deps.clone(), ros.clone(), pp.clone());
        async move {
            deps.create(
                &pp,
                &serde_json::from_value(deployment(&format!("d{i}"), r))?,
            )
            .await?;
            ros.create(&pp, &serde_json::from_value(rollout(&format!("r{i}"), r))?)
                .await?;
            Ok(())
        }
    })
    .await?;
    let timeout = Duration::from_secs(300 + 2 * (n as u64) * (r as u64));
    let (a, b) = tokio::join!(
        wait_all(deps.clone(), n, timeout, "Deployments up", |d| {
            deployment_done(d, r, "app:v1")
        }),
        wait_all(ros.clone(), n, timeout, "Rollouts up", |o| rollout_done(
            o, r, "app:v1"
        )),
    );
    a?;
    b?;
    // Let the last status writes land, then count from the update on.
    tokio::time::sleep(Duration::from_secs(3)).await;
    audit.mark();
    let patch_of = |name: String| {
        json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "app:v2"}]}}},
               "metadata": {"name": name}})
    };
    let started = Instant::now();
    let ppatch = PatchParams::default();
    // Alternate the sides so neither gets a head start.
    for_all(n, |i| {
        let (deps, ros, pp) = (deps.clone(), ros.clone(), ppatch.clone());
        let (dp, rp) = (patch_of(format!("d{i}")), patch_of(format!("r{i}")));
        async move {
            deps.patch(&format!("d{i}"), &pp, &Patch::Merge(&dp))
                .await?;
            ros.patch(&format!("r{i}"), &pp, &Patch::Merge(&rp)).await?;
            Ok(())
        }
    })
    .await?;
    let patched = started.elapsed();
    let (a, b) = tokio::join!(
        wait_all(deps.clone(), n, timeout, "Deployments updated", |d| {
            deployment_done(d, r, "app:v2")
        }),
        wait_all(ros.clone(), n, timeout, "Rollouts updated", |o| {
            rollout_done(o, r, "app:v2")
        }),
    );
    let (da, ra) = (a?, b?);
    let last = |t: &[Instant]| t.last().map_or(Duration::ZERO, |l| *l - started);
    let (dt, rt) = (last(&da), last(&ra));
    // Trailing writes (a last status update after the objects are done) count too.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let writes = audit.take();
    let (dw, de, dby) = tally(&writes, deployment_controller, Some(dns));
    let (rw, re, rby) = tally(&writes, ours, Some(rns));
    println!("(the {} update patches took {patched:?})", 2 * n);
    println!(
        "Deployment controller: {:.1} s (p50 / p90 / all: {}), {:.1} writes per object ({dw}: {}), {de} events",
        dt.as_secs_f64(),
        spread(&da, started),
        dw as f64 / n as f64,
        breakdown(&dby)
    );
    println!(
        "Rollout controller:    {:.1} s (p50 / p90 / all: {}), {:.1} writes per object ({rw}: {}), {re} events",
        rt.as_secs_f64(),
        spread(&ra, started),
        rw as f64 / n as f64,
        breakdown(&rby)
    );
    println!(
        "ratio (Rollouts / Deployments): time {:.2}x, writes {:.2}x",
        rt.as_secs_f64() / dt.as_secs_f64(),
        rw as f64 / dw.max(1) as f64
    );
    let rs_controller = |a: &str| a.ends_with("/replicaset-controller");
    let (rs, _, rsby) = tally(&writes, rs_controller, None);
    let (rs_d, _, _) = tally(&writes, rs_controller, Some(dns));
    let (rs_r, _, _) = tally(&writes, rs_controller, Some(rns));
    println!(
        "(the ReplicaSet controller, serving both: {rs} writes: {}; {rs_d} for the Deployments, {rs_r} for the Rollouts)",
        breakdown(&rsby)
    );
    Ok(())
}

async fn many(
    client: &Client,
    opts: &ScaleOptions,
    audit: &mut Audit,
    ctl: &mut ControllerProcess,
    bin: &Path,
    kubeconfig: &Path,
    dir: &Path,
) -> Result<()> {
    let ns = "bench-scale";
    create_namespace(client, ns).await?;
    let ros: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &rollout_resource());
    let (rss0, _, anon0, file0) = ctl.memory_detail();
    println!(
        "\ncontroller RSS before any Rollout: {} ({} anonymous, {} file-backed)",
        mib(rss0),
        mib(anon0),
        mib(file0)
    );
    let spec = |name: &str| {
        let mut v = rollout(name, 1);
        v["spec"]["strategy"] =
            json!({"canary": {"steps": [{"setWeight": 50}, {"pause": {"duration": "10s"}}]}});
        v
    };
    let mut created = 0;
    for &n in &opts.rollouts {
        if n <= created {
            continue;
        }
        let added = n - created;
        if created == 0 {
            println!("\n== {n} one-replica canary Rollouts on one controller ==");
        } else {
            println!("\n== {added} more: {n} one-replica canary Rollouts on one controller ==");
        }
        let sampler = RssSampler::start(ctl.pid());
        audit.mark();
        let started = Instant::now();
        let pp = PostParams::default();
        let from = created;
        let creating = for_all(added, |i| {
            let (ros, pp) = (ros.clone(), pp.clone());
            let obj = spec(&format!("s{}", from + i));
            async move {
                ros.create(&pp, &serde_json::from_value(obj)?).await?;
                Ok(())
            }
        });
        let timeout = Duration::from_secs(600 + added as u64 / 2);
        let waiting = wait_all(ros.clone(), n, timeout, "Rollouts Healthy", |o| {
            rollout_done(o, 1, "app:v1")
        });
        let (c, w) = tokio::join!(creating, waiting);
        c?;
        let healthy = w?.last().map_or(Duration::ZERO, |l| *l - started);
        created = n;
        let writes = audit.take();
        let (total, events, by) = tally(&writes, ours, Some(ns));
        println!(
            "all {n} Healthy after {:.1} s (the {added} new ones created from the start, 32 at a time)",
            healthy.as_secs_f64()
        );
        println!(
            "writes until Healthy: {:.2} per new Rollout ({total}: {}), {events} events",
            total as f64 / added as f64,
            breakdown(&by)
        );
        // Events are published from a queue behind the writes: let it drain, and say how long
        // that took.
        let drained = Instant::now();
        let mut trailing = 0;
        while drained.elapsed() < Duration::from_secs(300) {
            audit.mark();
            tokio::time::sleep(Duration::from_secs(1)).await;
            let (_, e, _) = tally(&audit.take(), ours, Some(ns));
            trailing += e;
            if e == 0 {
                break;
            }
        }
        println!(
            "events still queued when Healthy: {trailing}, published within {:.0} s",
            drained.elapsed().as_secs_f64()
        );
        audit.mark();
        tokio::time::sleep(opts.window).await;
        let (steady_writes, steady_events, _) = tally(&audit.take(), ours, None);
        let (rss, hwm, anon, file) = ctl.memory_detail();
        let peak = sampler.max();
        println!(
            "steady state over {:?}: {steady_writes} writes, {steady_events} events",
            opts.window
        );
        println!(
            "controller RSS at {n}: steady {} ({} anonymous, {} file-backed), peak {} (sampled {}, VmHWM {})",
            mib(rss),
            mib(anon),
            mib(file),
            mib(hwm.max(peak)),
            mib(peak),
            mib(hwm)
        );
    }

    // Restart.
    let n = created;
    ctl.stop();
    audit.mark();
    let t = Instant::now();
    *ctl = ControllerProcess::start(bin, kubeconfig, dir)?;
    let deadline = t + Duration::from_secs(300);
    loop {
        if ctl.reconciled_in(ns).await >= n {
            break;
        }
        if Instant::now() > deadline {
            bail!("after the restart, not every Rollout was reconciled within 300 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let observed = t.elapsed();
    tokio::time::sleep(opts.window).await;
    let (w, e, by) = tally(&audit.take(), ours, None);
    let (rss, hwm) = ctl.memory();
    println!(
        "restart: all {n} reconciled {:.2} s after the process started; writes in the {:?} after: {w} ({}), {e} events; RSS {} (peak {})",
        observed.as_secs_f64(),
        opts.window,
        breakdown(&by),
        mib(rss),
        mib(hwm)
    );
    Ok(())
}

/// When a pod was first seen, and when it was first seen Ready.
type Seen = (Instant, Option<Instant>);

/// Pods seen by the benchmark: first seen → seen Ready.
struct PodWatch {
    seen: Arc<Mutex<HashMap<String, Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl PodWatch {
    fn start(client: Client) -> PodWatch {
        let seen: Arc<Mutex<HashMap<String, Seen>>> = Arc::default();
        let s = seen.clone();
        let task = tokio::spawn(async move {
            let api: Api<Pod> = Api::all(client);
            let mut stream = watcher::watcher(api, watcher::Config::default()).boxed();
            while let Some(ev) = stream.next().await {
                let Ok(Event::Apply(p) | Event::InitApply(p)) = ev else {
                    continue;
                };
                let ready = p
                    .status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
                let now = Instant::now();
                let mut g = s.lock().unwrap();
                let e = g.entry(p.uid().unwrap_or_default()).or_insert((now, None));
                if ready && e.1.is_none() {
                    e.1 = Some(now);
                }
            }
        });
        PodWatch { seen, task }
    }

    /// Created → Ready of the pods that became Ready since the last call (sorted).
    fn take(&self) -> Vec<Duration> {
        let mut g = self.seen.lock().unwrap();
        let mut out: Vec<Duration> = g.values().filter_map(|(a, b)| b.map(|b| b - *a)).collect();
        g.retain(|_, (_, b)| b.is_none());
        out.sort();
        out
    }
}

impl Drop for PodWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn quantiles(v: &[Duration]) -> String {
    if v.is_empty() {
        return "none".into();
    }
    let q = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
    format!(
        "median {:?}, p90 {:?}, max {:?} over {} pods",
        q(0.5),
        q(0.9),
        v[v.len() - 1],
        v.len()
    )
}

fn report_sim(pods: &PodWatch, stats: &SimStats, delay: Duration) {
    let seen: Vec<Duration> = pods.take();
    let late: Vec<Duration> = seen.iter().map(|d| d.saturating_sub(delay)).collect();
    println!(
        "pod simulator (ready delay {delay:?}): created -> Ready, beyond the delay: {}",
        quantiles(&late)
    );
    println!(
        "pod simulator: bind -> Ready status written, beyond the delay: {} ({} pods bound in all)",
        quantiles(&stats.take_ready_lags()),
        stats.bound()
    );
}
