//! `kubectl-rollouts` against the real API server, with the controller running: the seeds'
//! canary scenario driven through the CLI only (set image, paused, promote, status until
//! Healthy; abort → Degraded, retry; undo), `get rollout`/`list rollouts` output, and the
//! errors for an unknown rollout or namespace.

use crate::common::*;
use serde_json::Value;
use std::process::Command;
use std::time::{Duration, Instant};

const NAME: &str = "cli-demo";

/// The seeds' scenario with short timed pauses.
const MANIFEST: &str = r#"
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: cli-demo}
spec:
  replicas: 5
  revisionHistoryLimit: 3
  selector: {matchLabels: {app: cli-demo}}
  template:
    metadata: {labels: {app: cli-demo}}
    spec:
      containers: [{name: cli-demo, image: "argoproj/rollouts-demo:blue"}]
  strategy:
    canary:
      steps:
      - setWeight: 20
      - pause: {}
      - setWeight: 40
      - pause: {duration: 1s}
      - setWeight: 80
      - pause: {duration: 1}
"#;

pub(crate) struct Out {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl std::fmt::Display for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Runs the CLI (off the async runtime's workers) with the test cluster's kubeconfig.
pub(crate) async fn cli(ns: &TestNs, args: &[&str]) -> Out {
    let mut full: Vec<String> = vec!["-n".into(), ns.name.clone()];
    full.extend(args.iter().map(|s| s.to_string()));
    cli_raw(full).await
}

async fn cli_raw(args: Vec<String>) -> Out {
    let kubeconfig = testkit::cluster().kubeconfig.clone();
    tokio::task::spawn_blocking(move || {
        let out = Command::new(env!("CARGO_BIN_EXE_kubectl-rollouts"))
            .args(&args)
            .env("KUBECONFIG", &kubeconfig)
            .env_remove("NO_COLOR")
            .output()
            .expect("running kubectl-rollouts");
        Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into(),
            stderr: String::from_utf8_lossy(&out.stderr).into(),
        }
    })
    .await
    .expect("the CLI thread")
}

/// Polls `status --watch=false` until its line starts with `want`.
async fn wait_status(ns: &TestNs, want: &str, timeout: Duration) -> Out {
    let start = Instant::now();
    loop {
        let out = cli(ns, &["status", NAME, "--watch=false"]).await;
        if out.stdout.starts_with(want) {
            return out;
        }
        if start.elapsed() > timeout {
            panic!(
                "status never showed {want:?} within {timeout:?}; last:\n{out}\n{}",
                ns.diagnostics().await
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Polls `get rollout` until its output holds every string of `wants` (ReplicaSets settle a
/// moment after the Rollout does); returns that output.
async fn wait_get(ns: &TestNs, wants: &[String], timeout: Duration) -> String {
    let start = Instant::now();
    loop {
        let out = cli(ns, &["get", "rollout", NAME]).await;
        assert_eq!(out.code, 0, "{out}");
        let missing: Vec<&String> = wants.iter().filter(|w| !out.stdout.contains(*w)).collect();
        if missing.is_empty() {
            return out.stdout;
        }
        if start.elapsed() > timeout {
            panic!("get rollout never showed {missing:?}:\n{out}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn images(ro: &rollouts::api::Rollout) -> String {
    ro.spec
        .template
        .as_ref()
        .and_then(|t| t.spec.as_ref())
        .and_then(|s| s.containers[0].image.clone())
        .unwrap_or_default()
}

/// update → paused → promote → Healthy; undo → back to the old image through the steps
/// (status times out while paused: exit 4) → promote → Healthy on the old image.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeds_scenario_through_the_cli() {
    let (ns, _ctl) = setup("cli-seeds").await;
    ns.apply(MANIFEST).await;

    let out = cli(&ns, &["status", NAME, "--timeout", "60s"]).await;
    assert_eq!(out.code, 0, "initial deploy: {out}");
    assert_eq!(out.stdout.lines().last(), Some("Healthy"), "{out}");

    let out = cli(
        &ns,
        &[
            "set",
            "image",
            NAME,
            "cli-demo=argoproj/rollouts-demo:yellow",
        ],
    )
    .await;
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(out.stdout, "rollout \"cli-demo\" image updated\n");
    assert_eq!(
        images(&get_rollout(&ns, NAME).await),
        "argoproj/rollouts-demo:yellow"
    );

    let out = wait_status(&ns, "Paused - CanaryPauseStep", Duration::from_secs(60)).await;
    assert_eq!(out.code, 0, "{out}");
    // Wait for the canary's pod to be counted as well (20% of 5).
    let ro = wait_rollout(
        &ns,
        NAME,
        "1 canary pod available",
        Duration::from_secs(60),
        |ro, rss| {
            let st = ro.status.clone().unwrap_or_default();
            rss.iter()
                .find(|rs| Some(hash_of(rs)) == st.current_pod_hash)
                .is_some_and(|rs| available(rs) == 1)
                && st.available_replicas == Some(5)
        },
    )
    .await;
    let ns_name = ns.name.clone();

    // The tree, as upstream draws it (no colour off a terminal).
    let wants: Vec<String> = vec![
        "Name:            cli-demo".to_string(),
        format!("Namespace:       {ns_name}"),
        "Status:          ॥ Paused".into(),
        "Message:         CanaryPauseStep".into(),
        "Strategy:        Canary".into(),
        "  Step:          1/6".into(),
        "  SetWeight:     20".into(),
        "  ActualWeight:  20".into(),
        "argoproj/rollouts-demo:blue (stable)".into(),
        "argoproj/rollouts-demo:yellow (canary)".into(),
        "  Desired:       5".into(),
        "NAME".into(),
        "KIND".into(),
        "⟳ cli-demo".into(),
        "# revision:2".into(),
        "# revision:1".into(),
        "ReplicaSet  ✔ Healthy".into(),
        "Pod         ✔ Running".into(),
        "ready:1/1".into(),
        "canary".into(),
        "stable".into(),
    ];
    let text = wait_get(&ns, &wants, Duration::from_secs(30)).await;
    assert!(!text.contains('\x1b'), "colour off a terminal:\n{text}");
    let st = ro.status.clone().unwrap();
    let canary_rs = format!("cli-demo-{}", st.current_pod_hash.clone().unwrap());
    assert!(text.contains(&canary_rs), "{text}");

    let out = cli(&ns, &["get", "rollout", NAME, "-o", "json"]).await;
    assert_eq!(out.code, 0, "{out}");
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["status"], "Paused");
    assert_eq!(v["step"], "1/6");
    assert_eq!(v["replicaSets"].as_array().map(Vec::len), Some(2));

    let out = cli(&ns, &["list", "rollouts"]).await;
    assert_eq!(out.code, 0, "{out}");
    let line = out
        .stdout
        .lines()
        .find(|l| l.starts_with(NAME))
        .unwrap_or_else(|| panic!("no line for {NAME}:\n{out}"));
    let cols: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(
        cols,
        [
            "cli-demo", "Canary", "Paused", "1/6", "20", "20", "5/5", "5", "1", "5"
        ],
        "{out}"
    );
    let out = cli_raw(vec!["list".into(), "rollouts".into(), "-A".into()]).await;
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with(&ns_name) && l.contains(NAME)),
        "{out}"
    );

    // Paused stays paused: status with a short timeout gives up (exit 4) with the reason.
    let out = cli(&ns, &["status", NAME, "--timeout", "2s"]).await;
    assert_eq!(out.code, 4, "{out}");
    assert!(out.stdout.starts_with("Paused - CanaryPauseStep"), "{out}");
    assert_eq!(out.stderr.lines().count(), 1, "{out}");
    assert!(
        out.stderr.contains("did not become Healthy within 2s"),
        "{out}"
    );

    let out = cli(&ns, &["promote", NAME]).await;
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "rollout 'cli-demo' promoted\n"),
        "{out}"
    );
    let out = cli(&ns, &["status", NAME, "--timeout", "90s"]).await;
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(out.stdout.lines().last(), Some("Healthy"), "{out}");
    let ro = wait_rollout(&ns, NAME, "Healthy", Duration::from_secs(30), is_healthy).await;
    let yellow = ro.status.clone().unwrap().stable_rs.unwrap();

    wait_get(
        &ns,
        &[
            "Status:          ✔ Healthy".into(),
            "  Step:          6/6".into(),
            "argoproj/rollouts-demo:yellow (stable)".into(),
            "• ScaledDown".into(),
        ],
        Duration::from_secs(30),
    )
    .await;

    // Undo: back to revision 1's template (blue); a new update through the steps.
    let out = cli(&ns, &["undo", NAME]).await;
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "rollout 'cli-demo' undo\n"),
        "{out}"
    );
    assert_eq!(
        images(&get_rollout(&ns, NAME).await),
        "argoproj/rollouts-demo:blue"
    );
    wait_status(&ns, "Paused - CanaryPauseStep", Duration::from_secs(60)).await;
    let out = cli(&ns, &["promote", NAME, "--full"]).await;
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "rollout 'cli-demo' fully promoted\n"),
        "{out}"
    );
    let out = cli(&ns, &["status", NAME, "--timeout", "90s"]).await;
    assert_eq!(out.code, 0, "{out}");
    let ro = wait_rollout(
        &ns,
        NAME,
        "Healthy on blue",
        Duration::from_secs(30),
        is_healthy,
    )
    .await;
    assert_eq!(images(&ro), "argoproj/rollouts-demo:blue");
    assert_ne!(ro.status.unwrap().stable_rs.unwrap(), yellow);

    // Undo to the current template is a no-op; to a revision that does not exist, exit 3.
    let rss = replica_sets(&ns, &get_rollout(&ns, NAME).await).await;
    let newest = rss.iter().map(revision).max().unwrap().to_string();
    let out = cli(&ns, &["undo", NAME, "--to-revision", &newest]).await;
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stdout.starts_with("skipped rollback"), "{out}");
    let out = cli(&ns, &["undo", NAME, "--to-revision", "99"]).await;
    assert_eq!(out.code, 3, "{out}");
    assert!(out.stderr.contains("revision 99"), "{out}");
}

/// abort → Degraded (status exits 1 with the reason) → retry → paused again → promote →
/// Healthy; pause/restart write what upstream writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_retry_pause_restart_through_the_cli() {
    let (ns, _ctl) = setup("cli-abort").await;
    ns.apply(MANIFEST).await;
    assert_eq!(cli(&ns, &["status", NAME, "-t", "60s"]).await.code, 0);
    let out = cli(&ns, &["set", "image", NAME, "*=argoproj/rollouts-demo:red"]).await;
    assert_eq!(out.code, 0, "{out}");
    wait_status(&ns, "Paused - CanaryPauseStep", Duration::from_secs(60)).await;

    let out = cli(&ns, &["abort", NAME]).await;
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "rollout 'cli-demo' aborted\n"),
        "{out}"
    );
    let out = cli(&ns, &["status", NAME, "--timeout", "60s"]).await;
    assert_eq!(out.code, 1, "{out}");
    assert_eq!(out.stderr.lines().count(), 1, "{out}");
    assert!(out.stderr.contains("is Degraded: RolloutAborted"), "{out}");
    assert_eq!(
        get_rollout(&ns, NAME).await.status.unwrap().abort,
        Some(true)
    );
    wait_get(
        &ns,
        &[
            "Status:          ✖ Degraded".into(),
            "  SetWeight:     0".into(),
        ],
        Duration::from_secs(30),
    )
    .await;

    let out = cli(&ns, &["retry", "rollout", NAME]).await;
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "rollout 'cli-demo' retried\n"),
        "{out}"
    );
    wait_status(&ns, "Paused - CanaryPauseStep", Duration::from_secs(60)).await;
    assert_ne!(
        get_rollout(&ns, NAME).await.status.unwrap().abort,
        Some(true)
    );
    assert_eq!(cli(&ns, &["promote", NAME]).await.code, 0);
    let out = cli(&ns, &["status", NAME, "--timeout", "90s"]).await;
    assert_eq!(out.code, 0, "{out}");

    let out = cli(&ns, &["pause", NAME]).await;
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "rollout 'cli-demo' paused\n"),
        "{out}"
    );
    assert_eq!(get_rollout(&ns, NAME).await.spec.paused, Some(true));
    wait_status(&ns, "Paused - manually paused", Duration::from_secs(30)).await;
    let out = cli(&ns, &["promote", NAME]).await;
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(get_rollout(&ns, NAME).await.spec.paused, Some(false));

    let before = k8s_openapi::jiff::Timestamp::now().as_second();
    let out = cli(&ns, &["restart", NAME]).await;
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "rollout 'cli-demo' restarts in 0s\n"),
        "{out}"
    );
    let restart_at = get_rollout(&ns, NAME).await.spec.restart_at.unwrap().0;
    assert!((restart_at.as_second() - before).abs() <= 2, "{restart_at}");
}

/// Unknown rollout, unknown namespace, unknown container: one line each, exit 3.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clear_errors_for_what_is_not_there() {
    let (ns, _ctl) = setup("cli-errors").await;
    ns.apply(MANIFEST).await;
    let ns_name = ns.name.clone();

    for args in [
        vec!["get", "rollout", "nope"],
        vec!["status", "nope"],
        vec!["promote", "nope"],
        vec!["abort", "nope"],
        vec!["undo", "nope"],
        vec!["set", "image", "nope", "a=b"],
    ] {
        let out = cli(&ns, &args).await;
        assert_eq!(out.code, 3, "{args:?}: {out}");
        assert_eq!(
            out.stderr,
            format!("error: rollout \"nope\" not found in namespace \"{ns_name}\"\n"),
            "{args:?}"
        );
        assert!(out.stdout.is_empty(), "{args:?}: {out}");
    }

    let out = cli_raw(
        ["-n", "no-such-namespace", "get", "rollout", NAME]
            .map(String::from)
            .to_vec(),
    )
    .await;
    assert_eq!(out.code, 3, "{out}");
    assert_eq!(out.stderr.lines().count(), 1, "{out}");
    assert!(
        out.stderr.starts_with(
            "error: namespace \"no-such-namespace\" not found (looking for rollout \"cli-demo\""
        ),
        "{out}"
    );
    let out = cli_raw(
        ["-n", "no-such-namespace", "list", "rollouts"]
            .map(String::from)
            .to_vec(),
    )
    .await;
    assert_eq!(out.code, 3, "{out}");
    assert!(
        out.stderr
            .contains("namespace \"no-such-namespace\" not found"),
        "{out}"
    );

    let out = cli(&ns, &["set", "image", NAME, "sidecar=x:1"]).await;
    assert_eq!(out.code, 3, "{out}");
    assert!(
        out.stderr.contains("container \"sidecar\" not found"),
        "{out}"
    );
}

const WORKLOAD: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: cli-wl}
spec:
  replicas: 0
  selector: {matchLabels: {app: cli-wl}}
  template:
    metadata: {labels: {app: cli-wl}}
    spec: {containers: [{name: app, image: "argoproj/rollouts-demo:blue"}]}
---
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: cli-wl}
spec:
  replicas: 2
  workloadRef: {apiVersion: apps/v1, kind: Deployment, name: cli-wl}
  strategy:
    canary:
      steps: [{setWeight: 50}, {pause: {}}]
"#;

/// For a Rollout with a `workloadRef`, `set image` and `undo` change the Deployment's template
/// (where the Rollout's template comes from), and the controller follows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workload_ref_set_image_and_undo_go_through_the_deployment() {
    use k8s_openapi::api::apps::v1::Deployment;
    let (ns, _ctl) = setup("cli-workload").await;
    ns.apply(WORKLOAD).await;
    wait_rollout(
        &ns,
        "cli-wl",
        "Healthy",
        Duration::from_secs(60),
        is_healthy,
    )
    .await;
    let image = || async {
        let d = ns.api::<Deployment>().get("cli-wl").await.unwrap();
        d.spec.unwrap().template.spec.unwrap().containers[0]
            .image
            .clone()
            .unwrap()
    };
    let out = cli(
        &ns,
        &[
            "set",
            "image",
            "cli-wl",
            "app=argoproj/rollouts-demo:yellow",
        ],
    )
    .await;
    assert_eq!(out.code, 0, "{out}");
    assert!(
        out.stdout.contains("image updated (Deployment \"cli-wl\")"),
        "{out}"
    );
    assert_eq!(image().await, "argoproj/rollouts-demo:yellow");
    let paused = |ro: &rollouts::api::Rollout, _: &[k8s_openapi::api::apps::v1::ReplicaSet]| {
        phase(ro).0 == "Paused"
    };
    wait_rollout(
        &ns,
        "cli-wl",
        "paused on yellow",
        Duration::from_secs(60),
        paused,
    )
    .await;
    let out = cli(&ns, &["promote", "cli-wl"]).await;
    assert_eq!(out.code, 0, "{out}");
    let ro = wait_rollout(
        &ns,
        "cli-wl",
        "Healthy on yellow",
        Duration::from_secs(60),
        |ro, rss| is_healthy(ro, rss) && rss.len() == 2,
    )
    .await;
    let yellow = ro.status.unwrap().stable_rs.unwrap();
    let out = cli(&ns, &["undo", "cli-wl"]).await;
    assert_eq!(out.code, 0, "{out}");
    assert!(
        out.stdout.contains("undo (Deployment \"cli-wl\" updated)"),
        "{out}"
    );
    assert_eq!(image().await, "argoproj/rollouts-demo:blue");
    // The Rollout goes back to blue (its old ReplicaSet) through the steps.
    let ro = wait_rollout(
        &ns,
        "cli-wl",
        "paused on blue",
        Duration::from_secs(60),
        paused,
    )
    .await;
    let st = ro.status.unwrap();
    assert_eq!(st.stable_rs.as_deref(), Some(yellow.as_str()));
    assert_ne!(st.current_pod_hash.as_deref(), Some(yellow.as_str()));
    let out = cli(&ns, &["undo", "cli-wl", "--to-revision", "3"]).await;
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stdout.contains("skipped rollback"), "{out}");
}

/// `get rollout` says why the Rollout is waiting, from the planner's own gate: a canary step
/// whose pods do not come up, an indefinite pause, the user's pause, an abort.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_says_why_the_rollout_is_waiting() {
    let (ns, _ctl) = setup("cli-waiting").await;
    ns.apply(MANIFEST).await;
    let out = cli(&ns, &["status", NAME, "--timeout", "60s"]).await;
    assert_eq!(out.code, 0, "initial deploy: {out}");
    let out = cli(&ns, &["get", "rollout", NAME]).await;
    assert!(!out.stdout.contains("Waiting:"), "healthy: {out}");

    // A canary whose pods never become ready holds the 20% step.
    let out = cli(
        &ns,
        &["set", "image", NAME, "cli-demo=argoproj/rollouts-demo:bad"],
    )
    .await;
    assert_eq!(out.code, 0, "{out}");
    wait_get(
        &ns,
        &["Waiting:         canary 0/1 available".to_string()],
        Duration::from_secs(60),
    )
    .await;

    // A good image reaches the indefinite pause.
    let out = cli(
        &ns,
        &[
            "set",
            "image",
            NAME,
            "cli-demo=argoproj/rollouts-demo:yellow",
        ],
    )
    .await;
    assert_eq!(out.code, 0, "{out}");
    wait_get(
        &ns,
        &["Waiting:         paused, waits for promote".to_string()],
        Duration::from_secs(60),
    )
    .await;

    // The user's pause, then an abort.
    let out = cli(&ns, &["pause", NAME]).await;
    assert_eq!(out.code, 0, "{out}");
    wait_get(
        &ns,
        &["Waiting:         paused by the user (spec.paused)".to_string()],
        Duration::from_secs(60),
    )
    .await;
    let out = cli(&ns, &["abort", NAME]).await;
    assert_eq!(out.code, 0, "{out}");
    wait_get(
        &ns,
        &["Waiting:         aborted, waits for retry or a new update".to_string()],
        Duration::from_secs(60),
    )
    .await;
}

/// A child process killed (and reaped) when dropped, also when the test panics.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `get rollout --watch` redraws when the Rollout changes: off a terminal each view is printed
/// after the last, so the output first shows the pause, then (after a promote made
/// elsewhere) the Healthy Rollout, without the command being run again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_watch_redraws_when_the_rollout_changes() {
    use std::io::Read;
    use std::sync::{Arc, Mutex};
    let (ns, _ctl) = setup("cli-get-watch").await;
    ns.apply(MANIFEST).await;
    wait_rollout(&ns, NAME, "Healthy", Duration::from_secs(60), is_healthy).await;
    set_image(&ns, NAME, "argoproj/rollouts-demo:yellow").await;
    wait_status(&ns, "Paused - CanaryPauseStep", Duration::from_secs(60)).await;

    let mut child = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_kubectl-rollouts"))
            .args(["-n", &ns.name, "get", "rollout", NAME, "--watch"])
            .env("KUBECONFIG", &testkit::cluster().kubeconfig)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("starting get --watch"),
    );
    let output = Arc::new(Mutex::new(String::new()));
    let mut stdout = child.0.stdout.take().unwrap();
    let sink = output.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    let text = || output.lock().unwrap().clone();
    until(&output, "the paused view", Duration::from_secs(30), |t| {
        t.contains("Status:          ॥ Paused") && t.contains("  Step:          1/6")
    })
    .await;
    promote(&ns, NAME).await;
    until(&output, "a Healthy view", Duration::from_secs(60), |t| {
        t.contains("Status:          ✔ Healthy")
    })
    .await;
    drop(child);
    let t = text();
    let paused = t.find("॥ Paused").unwrap();
    let healthy = t.rfind("✔ Healthy").unwrap();
    assert!(paused < healthy, "the views out of order:\n{t}");
    assert!(
        t.matches("Name:            cli-demo").count() >= 2,
        "one view only:\n{t}"
    );
}

/// Waits (at most `timeout`) until the output so far satisfies `done`.
async fn until(
    output: &std::sync::Mutex<String>,
    what: &str,
    timeout: Duration,
    done: impl Fn(&str) -> bool,
) {
    let start = Instant::now();
    loop {
        let text = output.lock().unwrap().clone();
        if done(&text) {
            return;
        }
        assert!(
            start.elapsed() < timeout,
            "get --watch never showed {what} within {timeout:?}; it printed:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
