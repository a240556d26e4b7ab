//! `cargo xtask chaos`: Rollouts updated under faults, with safety invariants sampled from the
//! API every 200 ms.
//!
//! On its own local control plane (etcd, kube-apiserver with an audit log, the controller
//! manager, the pod simulator) and a real Prometheus, `N` Rollouts of four scenarios
//! ([`scenario::Scenario`]: Istio canary, canary with a Prometheus step analysis, blue-green
//! with a pre-promotion analysis, Istio canary whose analysis fails and aborts) are updated
//! all at once, round after round, while:
//! - two controller replicas (the built `rollouts-controller` binary, separate processes, each
//!   its own API user) elect a leader on a Lease; the leader is SIGKILLed every 1–5 s
//!   (chosen at random) and restarted 0.5–2 s later;
//! - once, the kube-apiserver process is restarted (every watch is gone), etcd is paused
//!   (SIGSTOP, then SIGCONT) and Prometheus is stopped for 20 s.
//!
//! Every 200 ms a sampler reads one consistent snapshot (a LIST of Rollouts, then the
//! ReplicaSets, Services and VirtualServices at exactly that resourceVersion) and checks
//! [`invariants`] (never two AnalysisRuns of one step running at once among them). At the end
//! every Rollout must reach its scenario's phase with only its stable ReplicaSet scaled up and
//! no orphaned ReplicaSet, and the audit log must show no write by a replica that did not hold
//! the Lease ([`audit`]), and no step's analysis may have run twice, even one run after the
//! other.

pub mod audit;
pub mod invariants;
pub mod scenario;

use crate::cluster::{Binaries, ControlPlane, Extras, Mode};
use crate::prometheus::Prometheus;
use crate::{podsim, testkit};
use anyhow::{Context, Result, bail};
use invariants::{Invariant, RsView, Snapshot, Violation};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Service};
use kube::api::{ApiResource, DynamicObject, ListParams, Patch, PatchParams, VersionMatch};
use kube::core::GroupVersionKind;
use kube::{Api, Client, ResourceExt};
use rollouts_core::api::{AnalysisRun, Rollout};
use scenario::Scenario;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The namespace of the Rollouts, the Lease and the controllers (namespaced mode).
pub const NAMESPACE: &str = "chaos";
/// The Lease the replicas elect their leader on.
pub const LEASE: &str = "chaos-lock";
/// The API users of the two replicas.
pub const USERS: [&str; 2] = ["ctl-a", "ctl-b"];
const MANAGER: &str = "chaos";

/// What to run.
#[derive(Clone, Debug)]
pub struct Options {
    /// How many Rollouts.
    pub rollouts: usize,
    /// How long faults are injected (rounds of updates start until then).
    pub duration: Duration,
    /// The seed of the random kill times (printed; a run is repeated with the same seed,
    /// though the cluster's own timing still varies).
    pub seed: u64,
    /// How long etcd stays paused.
    pub etcd_pause: Duration,
    /// The controller binary; built with `cargo build --bin rollouts-controller` when unset.
    pub controller: Option<PathBuf>,
}

/// The run's figures.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub rollouts: usize,
    pub rounds: u32,
    pub kills: u32,
    pub kills_skipped: u32,
    /// Replicas that ended by themselves (and were restarted).
    pub exits: u32,
    pub failovers: i32,
    pub apiserver_restarts: u32,
    pub etcd_pauses: u32,
    pub prometheus_stops: u32,
    pub samples: u64,
    pub samples_skipped: u64,
    pub samples_weighted: u64,
    pub samples_aborted: u64,
    pub writes: usize,
    pub lease_writes: usize,
    pub late_completions: usize,
    /// Violations, each counted once per sample it was seen in.
    pub violation_count: u64,
    /// The distinct violations (first few hundred).
    pub violations: Vec<Violation>,
    pub elapsed: Duration,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "chaos: {} Rollouts, {} rounds of updates (all at once), {:.0} s",
            self.rollouts,
            self.rounds,
            self.elapsed.as_secs_f64()
        )?;
        writeln!(
            f,
            "  leader kills (SIGKILL)        {} ({} times no live leader to kill)",
            self.kills, self.kills_skipped
        )?;
        writeln!(
            f,
            "  replicas that exited by themselves (restarted) {}",
            self.exits
        )?;
        writeln!(f, "  failovers (Lease transitions) {}", self.failovers)?;
        writeln!(
            f,
            "  API server restarts           {}",
            self.apiserver_restarts
        )?;
        writeln!(f, "  etcd pauses                   {}", self.etcd_pauses)?;
        writeln!(
            f,
            "  Prometheus stops (20 s)       {}",
            self.prometheus_stops
        )?;
        writeln!(
            f,
            "  samples                       {} ({} skipped: API not answering; {} with traffic on a canary, {} with an aborted Rollout)",
            self.samples, self.samples_skipped, self.samples_weighted, self.samples_aborted
        )?;
        writeln!(
            f,
            "  controller writes audited     {} (+{} Lease writes; {} sent by a holder, completed after a take-over)",
            self.writes, self.lease_writes, self.late_completions
        )?;
        writeln!(
            f,
            "  violations                    {}",
            self.violation_count
        )?;
        for v in &self.violations {
            writeln!(f, "    {v}")?;
        }
        Ok(())
    }
}

/// One controller replica (a slot, restarted under a new identity after each kill).
struct Replica {
    user: &'static str,
    generation: u32,
    identity: String,
    child: Option<Child>,
    restart_at: Option<Instant>,
}

fn kill(child: &mut Child, signal: i32) {
    unsafe {
        libc::kill(child.id() as i32, signal);
    }
    let _ = child.wait();
}

impl Replica {
    fn start(&mut self, bin: &Path, dir: &Path) -> Result<()> {
        self.generation += 1;
        self.identity = format!("{}-{}", self.user, self.generation);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(format!("controller-{}.log", self.user)))?;
        let mut cmd = Command::new(bin);
        cmd.args([
            "run",
            "--namespace",
            NAMESPACE,
            "--leader-elect",
            "--leader-election-namespace",
            NAMESPACE,
            "--leader-election-lease-name",
            LEASE,
            "--leader-election-identity",
            &self.identity,
            "--leader-election-lease-duration",
            "3s",
            "--leader-election-renew-deadline",
            "2s",
            "--leader-election-retry-period",
            "500ms",
            "--metrics-addr",
            "127.0.0.1:0",
            "--healthz-addr",
            "127.0.0.1:0",
            "--notifications-namespace",
            NAMESPACE,
        ])
        .env("KUBECONFIG", dir.join(format!("kubeconfig-{}", self.user)))
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
        crate::cluster::die_with_parent(&mut cmd);
        self.child = Some(
            cmd.spawn()
                .with_context(|| format!("starting {}", bin.display()))?,
        );
        self.restart_at = None;
        Ok(())
    }

    fn alive(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }
}

/// Restarts a replica 0.5–2 s after it was killed or ended by itself (a leader that cannot
/// renew its Lease exits), as a pod's container would be restarted, until `running` is false.
async fn supervise(
    replicas: Arc<Mutex<Vec<Replica>>>,
    bin: PathBuf,
    dir: PathBuf,
    seed: u64,
    exits: Arc<AtomicU64>,
    running: Arc<AtomicBool>,
) -> Result<()> {
    let mut rng = fastrand::Rng::with_seed(seed);
    while running.load(Ordering::SeqCst) {
        {
            let now = Instant::now();
            let mut list = replicas.lock().unwrap();
            for r in list.iter_mut() {
                if r.child.is_some() && r.restart_at.is_none() && !r.alive() {
                    if let Some(mut c) = r.child.take() {
                        let status = c.wait();
                        eprintln!("chaos: replica {} exited by itself: {status:?}", r.identity);
                    }
                    exits.fetch_add(1, Ordering::SeqCst);
                    r.restart_at = Some(now + Duration::from_millis(rng.u64(500..=2000)));
                }
                if r.restart_at.is_some_and(|t| now >= t) {
                    r.start(&bin, &dir)?;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// What the sampler shares with the run.
#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    samples: AtomicU64,
    skipped: AtomicU64,
    /// Samples in which some traffic went to a canary.
    weighted: AtomicU64,
    /// Samples in which some Rollout was aborted.
    aborted: AtomicU64,
    violation_count: AtomicU64,
    violations: Mutex<Vec<Violation>>,
    /// The Lease's holder as last read.
    holder: Mutex<Option<String>>,
    /// The last snapshot read.
    last: Mutex<Option<Snapshot>>,
    /// Rollouts seen Healthy at least once.
    up: Mutex<BTreeSet<String>>,
}

fn record(shared: &Shared, found: Vec<Violation>) {
    if found.is_empty() {
        return;
    }
    shared
        .violation_count
        .fetch_add(found.len() as u64, Ordering::SeqCst);
    let mut all = shared.violations.lock().unwrap();
    for v in found {
        if all.len() < 200 && !all.contains(&v) {
            eprintln!("VIOLATION {v}");
            all.push(v);
        }
    }
}

fn vs_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("networking.istio.io", "v1alpha3", "VirtualService"),
        "virtualservices",
    )
}

const CALL: Duration = Duration::from_secs(3);

async fn timed<T>(f: impl std::future::Future<Output = kube::Result<T>>) -> Result<T> {
    Ok(tokio::time::timeout(CALL, f).await.context("timed out")??)
}

/// One consistent snapshot: the Rollouts, then everything else at their list's revision.
async fn snapshot(client: &Client) -> Result<Snapshot> {
    let rollouts =
        timed(Api::<Rollout>::namespaced(client.clone(), NAMESPACE).list(&ListParams::default()))
            .await?;
    let rv = rollouts
        .metadata
        .resource_version
        .clone()
        .unwrap_or_default();
    let at = ListParams::default().at(&rv).matching(VersionMatch::Exact);
    let rs_api = Api::<ReplicaSet>::namespaced(client.clone(), NAMESPACE);
    let svc_api = Api::<Service>::namespaced(client.clone(), NAMESPACE);
    let vs_api = Api::<DynamicObject>::namespaced_with(client.clone(), NAMESPACE, &vs_resource());
    let ar_api = Api::<AnalysisRun>::namespaced(client.clone(), NAMESPACE);
    let (rss, svcs, vss, ars) = tokio::try_join!(
        timed(rs_api.list(&at)),
        timed(svc_api.list(&at)),
        timed(vs_api.list(&at)),
        timed(ar_api.list(&at)),
    )?;
    Ok(Snapshot {
        analysis_runs: ars.items,
        rollouts: rollouts.items,
        replica_sets: rss.items.iter().map(RsView::from_api).collect(),
        services: svcs
            .items
            .iter()
            .map(|s| {
                let hash = s
                    .spec
                    .as_ref()
                    .and_then(|sp| sp.selector.as_ref())
                    .and_then(|sel| sel.get(invariants::HASH_LABEL))
                    .cloned();
                (s.name_any(), hash)
            })
            .collect(),
        virtual_services: vss
            .items
            .iter()
            .map(|vs| {
                let dests = testkit::first_route(&vs.data)
                    .into_iter()
                    .map(|d| (d.host, d.weight))
                    .collect();
                (vs.name_any(), dests)
            })
            .collect(),
    })
}

async fn sampler(client: Client, shared: Arc<Shared>) {
    let leases: Api<Lease> = Api::namespaced(client.clone(), NAMESPACE);
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !shared.stop.load(Ordering::SeqCst) {
        tick.tick().await;
        let (lease, snap) = tokio::join!(timed(leases.get_opt(LEASE)), snapshot(&client));
        if let Ok(Some(l)) = lease {
            *shared.holder.lock().unwrap() = l.spec.and_then(|s| s.holder_identity);
        }
        match snap {
            Ok(snap) => {
                let up = {
                    let mut up = shared.up.lock().unwrap();
                    for ro in &snap.rollouts {
                        if phase(ro) == "Healthy" {
                            up.insert(ro.name_any());
                        }
                    }
                    up.clone()
                };
                record(&shared, invariants::check(&snap, &up));
                shared.samples.fetch_add(1, Ordering::SeqCst);
                if snap
                    .virtual_services
                    .values()
                    .flatten()
                    .any(|(host, w)| host.ends_with("-canary") && *w > 0)
                {
                    shared.weighted.fetch_add(1, Ordering::SeqCst);
                }
                if snap
                    .rollouts
                    .iter()
                    .any(|ro| ro.status.as_ref().and_then(|s| s.abort) == Some(true))
                {
                    shared.aborted.fetch_add(1, Ordering::SeqCst);
                }
                *shared.last.lock().unwrap() = Some(snap);
            }
            Err(_) => {
                shared.skipped.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
}

fn phase(ro: &Rollout) -> String {
    ro.status
        .as_ref()
        .and_then(|s| s.phase.clone())
        .unwrap_or_default()
}

fn image(ro: &Rollout) -> String {
    ro.spec
        .template
        .as_ref()
        .and_then(|t| t.spec.as_ref())
        .and_then(|s| s.containers.first())
        .and_then(|c| c.image.clone())
        .unwrap_or_default()
}

/// Why a Rollout has not (yet) settled into its scenario's end for image tag `tag`, or None.
/// The first version (`initial`) ends Healthy in every scenario: there is no step to fail.
fn unsettled(snap: &Snapshot, ro: &Rollout, tag: &str, initial: bool) -> Option<String> {
    let name = ro.name_any();
    let scenario = if initial {
        Scenario::IstioCanary
    } else {
        scenario_of(&name)
    };
    let status = ro.status.clone().unwrap_or_default();
    let want = scenario.expected_phase();
    if image(ro) != format!("app:{tag}") {
        return Some(format!("spec at {} (not yet updated to {tag})", image(ro)));
    }
    let generation = ro.metadata.generation.unwrap_or_default().to_string();
    if status.observed_generation.as_deref() != Some(generation.as_str()) {
        return Some(format!(
            "generation {generation} not observed yet ({:?})",
            status.observed_generation
        ));
    }
    if phase(ro) != want {
        return Some(format!(
            "phase {:?} ({}), expected {want}",
            phase(ro),
            status.message.clone().unwrap_or_default()
        ));
    }
    let stable = status.stable_rs.clone().unwrap_or_default();
    let current = status.current_pod_hash.clone().unwrap_or_default();
    match scenario {
        Scenario::IstioAbort if status.abort != Some(true) => {
            return Some("Degraded but not aborted".into());
        }
        Scenario::IstioAbort => {}
        _ if stable != current => {
            return Some(format!("stable {stable} is not the current {current}"));
        }
        _ => {}
    }
    let uid = ro.metadata.uid.clone();
    for rs in snap.replica_sets.iter().filter(|rs| rs.owner_uid == uid) {
        if rs.hash != stable && rs.spec_replicas > 0 {
            return Some(format!(
                "ReplicaSet {} (not the stable) still has {} replicas",
                rs.name, rs.spec_replicas
            ));
        }
    }
    None
}

fn scenario_of(name: &str) -> Scenario {
    (0..4)
        .map(Scenario::nth)
        .find(|s| name.starts_with(&format!("{}-", s.prefix())))
        .unwrap_or(Scenario::IstioCanary)
}

/// The Rollouts not settled for `tag` in the sampler's last snapshot, with the reason.
fn waiting(shared: &Shared, tag: &str, initial: bool) -> Option<Vec<(String, String)>> {
    let last = shared.last.lock().unwrap();
    let snap = last.as_ref()?;
    Some(
        snap.rollouts
            .iter()
            .filter_map(|ro| unsettled(snap, ro, tag, initial).map(|why| (ro.name_any(), why)))
            .collect(),
    )
}

/// Sets every Rollout's image to `app:<tag>` (retried until the API server takes it).
async fn update_all(client: &Client, names: &[String], tag: &str) {
    let api: Api<Rollout> = Api::namespaced(client.clone(), NAMESPACE);
    let patch = json!({"spec": {"template": {"spec": {"containers": [
        {"name": "app", "image": format!("app:{tag}"), "ports": [{"containerPort": 8080, "protocol": "TCP"}]}
    ]}}}});
    let pp = PatchParams {
        field_manager: Some(MANAGER.into()),
        ..Default::default()
    };
    futures::future::join_all(names.iter().map(|n| {
        let (api, patch, pp) = (api.clone(), patch.clone(), pp.clone());
        async move {
            while timed(api.patch(n, &pp, &Patch::Merge(&patch)))
                .await
                .is_err()
            {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }))
    .await;
}

fn build_controller(root: &Path) -> Result<PathBuf> {
    let status = Command::new(env!("CARGO"))
        .current_dir(root)
        .args(["build", "--bin", "rollouts-controller"])
        .status()
        .context("building rollouts-controller")?;
    if !status.success() {
        bail!("building rollouts-controller failed: {status}");
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    Ok(target.join("debug/rollouts-controller"))
}

/// Runs the chaos suite; the report's violations are the verdict.
pub async fn run(root: &Path, opts: &Options) -> Result<Report> {
    let started = Instant::now();
    let mut rng = fastrand::Rng::with_seed(opts.seed);
    let bin = match &opts.controller {
        Some(b) => b.clone(),
        None => build_controller(root)?,
    };
    let bins = Binaries::ensure()?;
    crate::prometheus::binary()?;
    let base = if Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    // State of earlier runs whose process is gone (a failed run keeps its logs until then).
    for e in std::fs::read_dir(&base).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if let Some(pid) = name.strip_prefix("rollouts-chaos-")
            && !Path::new(&format!("/proc/{pid}")).exists()
        {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
    let dir = base.join(format!("rollouts-chaos-{}", std::process::id()));
    let extras = Extras {
        users: USERS.iter().map(|u| u.to_string()).collect(),
        audit_policy: Some(audit::policy(&USERS)),
    };
    let mut cp = ControlPlane::start_with_extras(bins, &dir, Mode::Attached, &extras).await?;
    eprintln!(
        "chaos: control plane up in {:.1}s (state in {}), seed {}",
        started.elapsed().as_secs_f64(),
        dir.display(),
        opts.seed
    );
    let client = cp.client().await?;
    podsim::ensure_node(&client).await?;
    let sim = tokio::spawn(podsim::run(client.clone(), podsim::SimOptions::default()));
    testkit::install_crds(&client, &root.join("crds")).await?;
    testkit::install_crds(&client, &root.join("tests/crds")).await?;
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": NAMESPACE}}))?;
    Api::<Namespace>::all(client.clone())
        .create(&Default::default(), &ns)
        .await?;
    let mut prom = Prometheus::start(&[]).await?;
    testkit::apply_yaml(
        &client,
        Some(NAMESPACE),
        &scenario::templates(&prom.url()),
        false,
    )
    .await?;
    let names: Vec<String> = (0..opts.rollouts)
        .map(|i| format!("{}-{i}", Scenario::nth(i).prefix()))
        .collect();
    for (i, name) in names.iter().enumerate() {
        testkit::apply_yaml(
            &client,
            Some(NAMESPACE),
            &Scenario::nth(i).manifests(name, "v1"),
            false,
        )
        .await?;
    }
    let mut list: Vec<Replica> = USERS
        .iter()
        .map(|u| Replica {
            user: u,
            generation: 0,
            identity: String::new(),
            child: None,
            restart_at: None,
        })
        .collect();
    for r in &mut list {
        r.start(&bin, &dir)?;
    }
    let replicas = Arc::new(Mutex::new(list));
    let exits = Arc::new(AtomicU64::new(0));
    let supervising = Arc::new(AtomicBool::new(true));
    let supervisor = tokio::spawn(supervise(
        replicas.clone(),
        bin.clone(),
        dir.clone(),
        opts.seed.wrapping_add(1),
        exits.clone(),
        supervising.clone(),
    ));
    let shared = Arc::new(Shared::default());
    let sampling = tokio::spawn(sampler(client.clone(), shared.clone()));
    let mut report = Report {
        rollouts: opts.rollouts,
        ..Default::default()
    };

    // The first version, without faults (the IstioAbort Rollouts' first version has no
    // analysis step to fail: they become Healthy too).
    let deploy_limit = Duration::from_secs(120 + 2 * opts.rollouts as u64);
    wait_settled(&shared, "v1", deploy_limit, &names, true).await?;
    eprintln!(
        "chaos: {} Rollouts Healthy at v1 after {:.1}s",
        names.len(),
        started.elapsed().as_secs_f64()
    );

    // Faults, while rounds of updates run.
    let t0 = Instant::now();
    let at = |f: f64| t0 + opts.duration.mul_f64(f);
    let mut prom_stop = Some(at(0.12));
    let mut prom_start: Option<Instant> = None;
    let mut api_restart = Some(at(0.4));
    let mut etcd_pause = Some(at(0.65));
    let mut etcd_resume: Option<Instant> = None;
    let mut next_kill = t0 + Duration::from_millis(rng.u64(1000..=5000));
    let mut round = 1u32;
    let mut tag = format!("v{}", round + 1);
    update_all(&client, &names, &tag).await;
    report.rounds = 1;
    eprintln!("chaos: round 1: every Rollout set to {tag}");
    while Instant::now() < t0 + opts.duration || prom_start.is_some() || etcd_resume.is_some() {
        let now = Instant::now();
        let in_faults = now < t0 + opts.duration;
        if let Some(t) = prom_stop
            && now >= t
        {
            prom.stop();
            report.prometheus_stops += 1;
            prom_stop = None;
            prom_start = Some(now + Duration::from_secs(20));
            eprintln!(
                "chaos: Prometheus stopped at +{:.1}s",
                t0.elapsed().as_secs_f64()
            );
        }
        if let Some(t) = prom_start
            && now >= t
        {
            prom.restart().await?;
            prom_start = None;
            eprintln!(
                "chaos: Prometheus back at +{:.1}s",
                t0.elapsed().as_secs_f64()
            );
        }
        if let Some(t) = api_restart
            && now >= t
        {
            eprintln!(
                "chaos: restarting kube-apiserver at +{:.1}s",
                t0.elapsed().as_secs_f64()
            );
            cp.restart("kube-apiserver").await?;
            report.apiserver_restarts += 1;
            api_restart = None;
            eprintln!(
                "chaos: kube-apiserver back at +{:.1}s",
                t0.elapsed().as_secs_f64()
            );
        }
        if let Some(t) = etcd_pause
            && now >= t
            && let Some(pid) = cp.pid("etcd")
        {
            unsafe {
                libc::kill(pid, libc::SIGSTOP);
            }
            report.etcd_pauses += 1;
            etcd_pause = None;
            etcd_resume = Some(now + opts.etcd_pause);
            eprintln!(
                "chaos: etcd paused at +{:.1}s for {:?}",
                t0.elapsed().as_secs_f64(),
                opts.etcd_pause
            );
        }
        if let Some(t) = etcd_resume
            && now >= t
            && let Some(pid) = cp.pid("etcd")
        {
            unsafe {
                libc::kill(pid, libc::SIGCONT);
            }
            etcd_resume = None;
            eprintln!("chaos: etcd resumed at +{:.1}s", t0.elapsed().as_secs_f64());
        }
        if in_faults && now >= next_kill {
            let holder = shared.holder.lock().unwrap().clone();
            let mut list = replicas.lock().unwrap();
            let leader = list
                .iter_mut()
                .find(|r| Some(&r.identity) == holder.as_ref());
            match leader {
                Some(r) if r.child.is_some() => {
                    if let Some(c) = r.child.as_mut() {
                        kill(c, libc::SIGKILL);
                    }
                    r.child = None;
                    r.restart_at = Some(now + Duration::from_millis(rng.u64(500..=2000)));
                    report.kills += 1;
                }
                _ => report.kills_skipped += 1,
            }
            next_kill = now + Duration::from_millis(rng.u64(1000..=5000));
        }
        if in_faults && waiting(&shared, &tag, false).is_some_and(|w| w.is_empty()) {
            round += 1;
            tag = format!("v{}", round + 1);
            update_all(&client, &names, &tag).await;
            report.rounds = round;
            eprintln!(
                "chaos: round {round} at +{:.1}s: every Rollout set to {tag}",
                t0.elapsed().as_secs_f64()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Faults over: both replicas up (the supervisor restarts a killed one within 2 s), then
    // every Rollout must settle.
    eprintln!(
        "chaos: faults over after {:.1}s ({} kills); waiting for every Rollout to settle at {tag}",
        t0.elapsed().as_secs_f64(),
        report.kills
    );
    let settle_limit = Duration::from_secs(150 + 2 * opts.rollouts as u64);
    if let Err(e) = wait_settled(&shared, &tag, settle_limit, &names, false).await {
        let left = waiting(&shared, &tag, false).unwrap_or_default();
        let found = left
            .into_iter()
            .map(|(name, why)| Violation {
                invariant: Invariant::FinalPhase,
                object: name,
                detail: why,
            })
            .collect();
        record(&shared, found);
        eprintln!("chaos: {e:#}");
    }
    shared.stop.store(true, Ordering::SeqCst);
    let _ = sampling.await;

    // Final checks.
    let found = final_checks(&client).await?;
    record(&shared, found);
    supervising.store(false, Ordering::SeqCst);
    supervisor.await??;
    for r in replicas.lock().unwrap().iter_mut() {
        if let Some(c) = r.child.as_mut() {
            kill(c, libc::SIGKILL);
        }
    }
    report.exits = exits.load(Ordering::SeqCst) as u32;
    let lease = Api::<Lease>::namespaced(client.clone(), NAMESPACE)
        .get(LEASE)
        .await?;
    report.failovers = lease.spec.and_then(|s| s.lease_transitions).unwrap_or(0);
    let text = std::fs::read_to_string(dir.join("audit.log")).context("reading the audit log")?;
    let writers = audit::check(&audit::parse(&text)?, LEASE);
    report.writes = writers.writes;
    report.lease_writes = writers.lease_writes;
    report.late_completions = writers.late_completions;
    record(&shared, writers.violations);
    report.samples = shared.samples.load(Ordering::SeqCst);
    report.samples_skipped = shared.skipped.load(Ordering::SeqCst);
    report.samples_weighted = shared.weighted.load(Ordering::SeqCst);
    report.samples_aborted = shared.aborted.load(Ordering::SeqCst);
    report.violation_count = shared.violation_count.load(Ordering::SeqCst);
    report.violations = shared.violations.lock().unwrap().clone();
    report.elapsed = started.elapsed();
    sim.abort();
    drop(prom);
    cp.stop();
    // The logs stay (until the next run) for a look; etcd's data goes.
    let _ = std::fs::remove_dir_all(dir.join("etcd-data"));
    eprintln!(
        "chaos: logs (controllers, audit, control plane) in {}",
        dir.display()
    );
    Ok(report)
}

async fn wait_settled(
    shared: &Shared,
    tag: &str,
    limit: Duration,
    names: &[String],
    initial: bool,
) -> Result<()> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(w) = waiting(shared, tag, initial)
            && w.is_empty()
            && shared
                .last
                .lock()
                .unwrap()
                .as_ref()
                .is_some_and(|s| s.rollouts.len() == names.len())
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            let w = waiting(shared, tag, initial).unwrap_or_default();
            bail!(
                "{} Rollouts not settled at {tag} within {limit:?}: {}",
                w.len(),
                w.iter()
                    .take(10)
                    .map(|(n, why)| format!("{n}: {why}"))
                    .collect::<Vec<_>>()
                    .join("; ")
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// No orphaned ReplicaSets (every one controlled by an existing Rollout), and no step whose
/// analysis ran more than once, even one run after the other (no scenario retries or
/// resumes a step: a second run means a controller lost track of the first, e.g. killed
/// between creating it and recording it).
async fn final_checks(client: &Client) -> Result<Vec<Violation>> {
    let mut out = Vec::new();
    let rollouts = Api::<Rollout>::namespaced(client.clone(), NAMESPACE)
        .list(&ListParams::default())
        .await?;
    let uids: BTreeMap<String, String> = rollouts
        .items
        .iter()
        .filter_map(|r| Some((r.metadata.uid.clone()?, r.name_any())))
        .collect();
    let runs = Api::<AnalysisRun>::namespaced(client.clone(), NAMESPACE)
        .list(&ListParams::default())
        .await?;
    let mut keys: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for run in &runs.items {
        keys.entry(invariants::run_key(run))
            .or_default()
            .push(run.name_any());
    }
    for (key, names) in keys.into_iter().filter(|(_, names)| names.len() > 1) {
        out.push(Violation {
            invariant: Invariant::StepJudgedTwice,
            object: key,
            detail: format!("{} AnalysisRuns: {}", names.len(), names.join(", ")),
        });
    }
    let rss = Api::<ReplicaSet>::namespaced(client.clone(), NAMESPACE)
        .list(&ListParams::default())
        .await?;
    for rs in &rss.items {
        let v = RsView::from_api(rs);
        if !v.owner_uid.as_ref().is_some_and(|u| uids.contains_key(u)) {
            out.push(Violation {
                invariant: Invariant::OrphanedReplicaSet,
                object: v.name.clone(),
                detail: format!("no live Rollout controls it ({} replicas)", v.spec_replicas),
            });
        }
    }
    Ok(out)
}
