//! Figures for the README (`cargo bench --bench controller`): planner speed, and, against the
//! local control plane, API writes for an unchanged Rollout and the time from a trigger to
//! the controller's next write. Prints numbers; asserts nothing about time. Every wait has a
//! timeout: a controller that never gets there fails the run instead of hanging it.
//!
//! `cargo bench` passes `--bench`; `cargo test --all-targets` (the test gate) runs this binary
//! without it, and then it returns at once: figures are not tests.

use futures::StreamExt;
use k8s_openapi::api::apps::v1::ReplicaSet;
use kube::api::{Patch, PatchParams};
use kube::runtime::watcher::{self, Event};
use kube::{Api, ResourceExt};
use rollouts::api::Rollout;
use rollouts::controller::{self, WriteCounters};
use rollouts::plan::simulate::World;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use xtask::testkit::{self, TestNs};

const RO: &str = r#"
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: bench}
spec:
  replicas: 5
  selector: {matchLabels: {app: bench}}
  template:
    metadata: {labels: {app: bench}}
    spec:
      containers: [{name: app, image: "app:v1"}]
  strategy:
    canary:
      steps:
      - setWeight: 20
      - pause: {}
      - setWeight: 40
      - pause: {duration: 2}
      - setWeight: 60
      - pause: {duration: 2}
"#;

fn planner_speed() {
    let ro: Rollout = serde_yaml::from_str(RO).unwrap();
    let mut w = World::new(ro);
    w.try_settle();
    w.set_image("app:v2");
    w.try_settle();
    let n = 20_000;
    let t = Instant::now();
    let mut effects = 0;
    for _ in 0..n {
        effects += std::hint::black_box(w.plan()).effects.len();
    }
    let per = t.elapsed() / n;
    println!(
        "planner: {per:?} per plan() of a paused 5-replica canary with 2 ReplicaSets ({effects} effects)"
    );
    let t = Instant::now();
    let mut rounds = 0;
    for i in 0..200 {
        let mut w = World::new(serde_yaml::from_str(RO).unwrap());
        w.try_settle();
        w.set_image(&format!("app:v{i}"));
        rounds += w.try_settle().unwrap_or(0);
        w.promote();
        rounds += w.try_settle().unwrap_or(0);
        w.advance(2);
        rounds += w.try_settle().unwrap_or(0);
        w.advance(2);
        rounds += w.try_settle().unwrap_or(0);
    }
    println!(
        "planner: a whole simulated update (deploy, update, promote, 2 timed pauses) takes {:?} ({} plan rounds each)",
        t.elapsed() / 200,
        rounds / 200
    );
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// How long any one wait may take before the run fails.
const WAIT: Duration = Duration::from_secs(120);

/// `fut`, or a panic naming `what` after [`WAIT`].
async fn within<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, fut)
        .await
        .unwrap_or_else(|_| panic!("timed out after {WAIT:?} waiting for {what}"))
}

async fn wait_status<F: Fn(&Rollout) -> bool>(api: &Api<Rollout>, what: &str, f: F) -> Instant {
    within(what, wait_status_forever(api, f)).await
}

async fn wait_status_forever<F: Fn(&Rollout) -> bool>(api: &Api<Rollout>, f: F) -> Instant {
    let mut stream = watcher::watcher(
        api.clone(),
        watcher::Config::default().fields("metadata.name=bench"),
    )
    .boxed();
    while let Some(ev) = stream.next().await {
        if let Ok(Event::Apply(ro) | Event::InitApply(ro)) = ev
            && f(&ro)
        {
            return Instant::now();
        }
    }
    panic!("the Rollout watch ended")
}

/// When a ReplicaSet running `image` first has all its replicas available (seen by a watcher).
async fn wait_rs_available(api: &Api<ReplicaSet>, image: &str) -> Instant {
    within(
        &format!("a ReplicaSet of {image} to be available"),
        wait_rs_available_forever(api, image),
    )
    .await
}

async fn wait_rs_available_forever(api: &Api<ReplicaSet>, image: &str) -> Instant {
    let mut stream = watcher::watcher(api.clone(), watcher::Config::default()).boxed();
    while let Some(ev) = stream.next().await {
        if let Ok(Event::Apply(rs) | Event::InitApply(rs)) = ev {
            let runs_image = rs
                .spec
                .as_ref()
                .and_then(|s| s.template.as_ref())
                .and_then(|t| t.spec.as_ref())
                .is_some_and(|p| p.containers[0].image.as_deref() == Some(image));
            let want = rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
            let available = rs
                .status
                .as_ref()
                .and_then(|s| s.available_replicas)
                .unwrap_or(0);
            if runs_image && want > 0 && available >= want {
                return Instant::now();
            }
        }
    }
    panic!("the ReplicaSet watch ended")
}

fn idx(ro: &Rollout) -> Option<i32> {
    ro.status.as_ref().and_then(|s| s.current_step_index)
}

async fn cluster_figures() {
    let client = testkit::client().await;
    testkit::install_crds(
        &client,
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("crds"),
    )
    .await
    .unwrap();
    let ns = TestNs::new("bench").await;
    let writes = Arc::new(WriteCounters::default());
    let rss0 = rss_kib();
    let cfg = controller::Config {
        namespace: Some(ns.name.clone()),
        ..Default::default()
    };
    let w = writes.clone();
    let c = ns.client.clone();
    tokio::spawn(async move { controller::run(c, cfg, futures::future::pending(), w).await });
    let api: Api<Rollout> = ns.api();
    ns.apply(RO).await;
    wait_status(&api, "the first deploy to be Healthy", |ro| {
        ro.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Healthy")
    })
    .await;

    // Writes for an unchanged Rollout over 10 s (resyncs, watch reconnects included).
    let before = writes.total();
    tokio::time::sleep(Duration::from_secs(10)).await;
    println!(
        "writes for an unchanged Rollout over 10 s: {}",
        writes.total() - before
    );

    let rs_api: Api<ReplicaSet> = ns.api();
    let mut available_lat = Vec::new();
    let mut promote_lat = Vec::new();
    let mut deadline_late = Vec::new();
    for round in 0..5 {
        let image = format!("app:v{}", round + 2);
        let ro = api.get("bench").await.unwrap();
        let mut template = serde_json::to_value(ro.spec.template.clone().unwrap()).unwrap();
        template["spec"]["containers"][0]["image"] = json!(image);
        // Trigger: the canary ReplicaSet became available. Measured: until the controller's
        // write completing the setWeight step (both seen by watchers started before the update).
        let available = tokio::spawn({
            let rs_api = rs_api.clone();
            let image = image.clone();
            async move { wait_rs_available(&rs_api, &image).await }
        });
        let stepped = tokio::spawn({
            let api = api.clone();
            async move {
                wait_status(&api, "the pause after the first setWeight", |ro| {
                    idx(ro) == Some(1)
                        && ro.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Paused")
                })
                .await
            }
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        api.patch(
            "bench",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"template": template}})),
        )
        .await
        .unwrap();
        let (t_available, t_stepped) = (available.await.unwrap(), stepped.await.unwrap());
        available_lat.push(t_stepped.saturating_duration_since(t_available));
        // Trigger: a user's promote. Measured: until the controller's write moving the step.
        let t0 = Instant::now();
        api.patch_status(
            "bench",
            &PatchParams::default(),
            &Patch::Merge(&json!({"status": {"pauseConditions": null}})),
        )
        .await
        .unwrap();
        let t1 = wait_status(&api, "the step after promote", |ro| {
            idx(ro).is_some_and(|i| i >= 2)
        })
        .await;
        promote_lat.push(t1 - t0);
        // Trigger: a pause deadline. Measured: the step-completing write vs. the deadline.
        let paused = within("the timed pause at step 3", async {
            loop {
                let ro = api.get("bench").await.unwrap();
                let st = ro.status.clone().unwrap_or_default();
                if idx(&ro) == Some(3)
                    && let Some(pc) = st.pause_conditions.as_ref().and_then(|p| p.first())
                {
                    break pc.start_time.clone().unwrap();
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        wait_status(&api, "the end of the timed pause", |ro| {
            idx(ro).is_some_and(|i| i >= 4)
        })
        .await;
        let wrote = k8s_openapi::jiff::Timestamp::now();
        let deadline = paused.0 + k8s_openapi::jiff::SignedDuration::from_secs(2);
        deadline_late.push(deadline.duration_until(wrote).as_secs_f64());
        api.patch_status(
            "bench",
            &PatchParams::default(),
            &Patch::Merge(&json!({"status": {"promoteFull": true}})),
        )
        .await
        .unwrap();
        wait_status(&api, "Healthy after promoteFull", |ro| {
            ro.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Healthy")
        })
        .await;
    }
    let ms = |d: &Duration| d.as_secs_f64() * 1000.0;
    available_lat.sort();
    println!(
        "canary ReplicaSet available → controller's write: median {:.0} ms, max {:.0} ms (5 runs)",
        ms(&available_lat[2]),
        ms(&available_lat[4])
    );
    promote_lat.sort();
    println!(
        "promote → controller's write: median {:.0} ms, max {:.0} ms (5 runs)",
        ms(&promote_lat[2]),
        ms(&promote_lat[4])
    );
    deadline_late.sort_by(f64::total_cmp);
    println!(
        "pause deadline → controller's write (observed by a watcher): median {:.0} ms, max {:.0} ms",
        deadline_late[2] * 1000.0,
        deadline_late[4] * 1000.0
    );
    println!(
        "total writes for 5 updates of a 3-step canary: {} (status {}, ReplicaSets {}, Services {}, Rollout {})",
        writes.total(),
        writes.status.load(std::sync::atomic::Ordering::Relaxed),
        writes
            .replica_sets
            .load(std::sync::atomic::Ordering::Relaxed),
        writes.services.load(std::sync::atomic::Ordering::Relaxed),
        writes.rollouts.load(std::sync::atomic::Ordering::Relaxed),
    );
    println!(
        "bench process RSS grew by {} KiB while running the controller",
        rss_kib().saturating_sub(rss0)
    );
    let _ = ns.name.clone();
    let _ = api.get("bench").await.map(|r| r.name_any());
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!(
            "benches/controller.rs prints figures under `cargo bench --bench controller`; nothing to test"
        );
        return;
    }
    planner_speed();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(cluster_figures());
}
