//! `cargo xtask demo`: the seeds' canary scenario end to end, on the local control plane (or an
//! existing cluster with `--kubeconfig`/`KUBECONFIG`): install the CRDs, run the controller,
//! apply `examples/canary-demo.yaml`, change the image, watch the rollout with
//! `kubectl-rollouts get rollout --watch` until it pauses, promote it, and end Healthy.

use crate::cluster::{Binaries, ControlPlane, Mode, client_for};
use crate::podsim;
use crate::testkit;
use anyhow::{Context, Result, bail};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{DynamicObject, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::{Api, Client};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

const NS: &str = "rollouts-demo";
const NAME: &str = "canary-demo";

fn say(msg: &str) {
    println!("\n\x1b[1m==> {msg}\x1b[0m");
}

fn spawn(bin: &Path, args: &[&str], kubeconfig: &Path, quiet: bool) -> Result<Child> {
    let mut cmd = Command::new(bin);
    cmd.args(args)
        .env("KUBECONFIG", kubeconfig)
        .kill_on_drop(true)
        .stdin(Stdio::null());
    if quiet {
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
    }
    cmd.spawn()
        .with_context(|| format!("starting {}", bin.display()))
}

async fn run_cli(cli: &Path, kubeconfig: &Path, args: &[&str]) -> Result<()> {
    println!("$ kubectl-rollouts {}", args.join(" "));
    let status = Command::new(cli)
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .status()
        .await?;
    if !status.success() {
        bail!("kubectl-rollouts {} failed: {status}", args.join(" "));
    }
    Ok(())
}

async fn rollout_phase(
    client: &Client,
) -> Result<(String, String, Option<i64>, Option<String>, Option<String>)> {
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("argoproj.io", "v1alpha1", "Rollout"),
        "rollouts",
    );
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), NS, &ar);
    let ro = api.get(NAME).await?;
    let st = ro.data.get("status").cloned().unwrap_or_default();
    let s = |k: &str| st.get(k).and_then(|v| v.as_str()).map(str::to_string);
    Ok((
        s("phase").unwrap_or_default(),
        s("message").unwrap_or_default(),
        st.get("currentStepIndex").and_then(|v| v.as_i64()),
        s("stableRS"),
        s("currentPodHash"),
    ))
}

async fn wait_until<F>(client: &Client, what: &str, timeout: Duration, f: F) -> Result<()>
where
    F: Fn(&(String, String, Option<i64>, Option<String>, Option<String>)) -> bool,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(p) = rollout_phase(client).await
            && f(&p)
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Runs the demo. `kubeconfig`: use this cluster instead of starting a local one.
pub async fn run(root: &Path, kubeconfig: Option<PathBuf>) -> Result<()> {
    say("building the controller and the CLI");
    let status = std::process::Command::new(env!("CARGO"))
        .current_dir(root)
        .args([
            "build",
            "--quiet",
            "--bin",
            "rollouts-controller",
            "--bin",
            "kubectl-rollouts",
        ])
        .status()?;
    if !status.success() {
        bail!("cargo build failed");
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let controller_bin = target.join("debug/rollouts-controller");
    let cli = target.join("debug/kubectl-rollouts");

    let mut _control_plane = None;
    let mut _sim = None;
    let kubeconfig = match kubeconfig {
        Some(k) => {
            say(&format!("using the cluster of {}", k.display()));
            k
        }
        None => {
            say(
                "starting a local control plane (etcd, kube-apiserver, kube-controller-manager, pod simulator)",
            );
            let bins = Binaries::ensure()?;
            let dir = std::env::temp_dir().join(format!("rollouts-demo-{}", std::process::id()));
            let cp = ControlPlane::start(bins, &dir, Mode::Attached).await?;
            let client = cp.client().await?;
            podsim::ensure_node(&client).await?;
            _sim = Some(tokio::spawn(podsim::run(
                client,
                podsim::SimOptions::default(),
            )));
            let kc = cp.kubeconfig.clone();
            _control_plane = Some(cp);
            kc
        }
    };
    let client = client_for(&kubeconfig).await?;
    say("installing the CRDs (crds/)");
    testkit::install_crds(&client, &root.join("crds")).await?;
    let ns: Namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": NS}}))?;
    match Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => return Err(e.into()),
    }
    say(&format!("running rollouts-controller (namespace {NS})"));
    let _controller = spawn(
        &controller_bin,
        &[
            "run",
            "--namespace",
            NS,
            "--log-level",
            "warn",
            "--metrics-addr",
            "127.0.0.1:0",
            "--healthz-addr",
            "127.0.0.1:0",
        ],
        &kubeconfig,
        false,
    )?;
    say(
        "applying examples/canary-demo.yaml: 5 replicas; setWeight 20 → pause {} → 40 → pause 10s → 60 → pause 10s → 80 → pause 10s",
    );
    let manifest = std::fs::read_to_string(root.join("examples/canary-demo.yaml"))?;
    testkit::apply_yaml(&client, Some(NS), &manifest, false).await?;
    wait_until(
        &client,
        "the first version to be Healthy",
        Duration::from_secs(120),
        |p| p.0 == "Healthy",
    )
    .await?;
    run_cli(&cli, &kubeconfig, &["-n", NS, "get", "rollout", NAME]).await?;

    say("updating the image: argoproj/rollouts-demo:blue → argoproj/rollouts-demo:yellow");
    run_cli(
        &cli,
        &kubeconfig,
        &[
            "-n",
            NS,
            "set",
            "image",
            NAME,
            "canary-demo=argoproj/rollouts-demo:yellow",
        ],
    )
    .await?;
    say("watching (kubectl-rollouts get rollout --watch) until the rollout pauses at 20%");
    let mut watch = spawn(
        &cli,
        &["-n", NS, "get", "rollout", NAME, "--watch"],
        &kubeconfig,
        false,
    )?;
    wait_until(
        &client,
        "the pause at step 1",
        Duration::from_secs(120),
        |p| p.0 == "Paused" && p.2 == Some(1),
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let _ = watch.kill().await;

    say("promoting: the remaining steps run by themselves (three 10 s pauses)");
    run_cli(&cli, &kubeconfig, &["-n", NS, "promote", NAME]).await?;
    let mut watch = spawn(
        &cli,
        &["-n", NS, "get", "rollout", NAME, "--watch"],
        &kubeconfig,
        false,
    )?;
    wait_until(
        &client,
        "the rollout to finish",
        Duration::from_secs(180),
        |p| p.0 == "Healthy" && p.3.is_some() && p.3 == p.4,
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let _ = watch.kill().await;
    run_cli(&cli, &kubeconfig, &["-n", NS, "get", "rollout", NAME]).await?;
    say("done: Healthy on the new version, the old ReplicaSet scaled to 0");
    Ok(())
}
