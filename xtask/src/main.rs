//! `cargo xtask ...`: developer tooling for rollouts.

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use xtask::cluster::{self, Binaries, ControlPlane, Mode};
use xtask::podsim;

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Developer tooling for rollouts")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// A local control plane (etcd, kube-apiserver, kube-controller-manager, pod simulator).
    Cluster {
        #[command(subcommand)]
        action: ClusterCmd,
        /// State directory (certificates, kubeconfig, logs, pid files).
        #[arg(long, global = true, env = "ROLLOUTS_CLUSTER_DIR")]
        dir: Option<PathBuf>,
    },
    /// Runs the pod simulator in the foreground against a cluster.
    Podsim {
        #[arg(long, env = "KUBECONFIG")]
        kubeconfig: PathBuf,
        /// Time from binding to Ready, e.g. 500ms, 2s.
        #[arg(long, default_value = "500ms", value_parser = parse_duration)]
        ready_delay: Duration,
    },
    /// The project's test command: set-up on a fresh Debian machine, then every test.
    Test {
        /// Extra arguments for `cargo test`.
        #[arg(trailing_var_arg = true)]
        args: Vec<String>,
    },
    /// The randomized tests for a time budget: the planner's model-based tests (half of it)
    /// and every input fuzz target (the other half, shared), then the totals.
    Fuzz {
        /// Minutes to spend (building the tests first is not counted).
        #[arg(long, default_value_t = 5.0)]
        minutes: f64,
    },
    /// Regenerates crds/ from the API types.
    Crds,
    /// Benchmarks (figures printed, nothing asserted).
    Bench {
        #[command(subcommand)]
        which: BenchCmd,
    },
    /// The chaos suite: Rollouts updated at once while the leader replica is SIGKILLed every
    /// 1–5 s, the API server restarts, etcd pauses and Prometheus stops; invariants sampled
    /// every 200 ms. Exits non-zero on any violation.
    Chaos {
        /// How many Rollouts (four scenarios in turn).
        #[arg(long, default_value_t = 50)]
        rollouts: usize,
        /// How long faults are injected, e.g. 90s, 10m.
        #[arg(long, default_value = "5m", value_parser = parse_duration)]
        duration: Duration,
        /// How long etcd is paused (once).
        #[arg(long, default_value = "8s", value_parser = parse_duration)]
        etcd_pause: Duration,
        /// Seed of the random kill times (default: from the clock; printed).
        #[arg(long)]
        seed: Option<u64>,
        /// The controller binary (default: built with `cargo build --bin rollouts-controller`).
        #[arg(long)]
        controller: Option<PathBuf>,
    },
    /// The seeds' canary scenario end to end on a local control plane (or, with
    /// --kubeconfig/KUBECONFIG, an existing cluster). Ctrl-C stops and cleans up.
    Demo {
        #[arg(long, env = "KUBECONFIG")]
        kubeconfig: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum BenchCmd {
    /// The controller at scale on its own local control plane: a side-by-side rolling update
    /// against the Deployment controller, then N Rollouts (time to Healthy, RSS, API writes,
    /// restart), and whether the pod simulator keeps up.
    Scale {
        /// Rollouts in the scale part; a list adds them in stages, measuring each (1000,5000).
        #[arg(long, default_value = "1000", value_delimiter = ',')]
        rollouts: Vec<usize>,
        /// Objects per side in the side-by-side update.
        #[arg(long, default_value_t = 60)]
        objects: usize,
        /// Replicas per object in the side-by-side update.
        #[arg(long, default_value_t = 2)]
        replicas: i32,
        /// The steady-state window (also after the restart).
        #[arg(long, default_value = "30s", value_parser = parse_duration)]
        window: Duration,
        /// The pod simulator's ready delay.
        #[arg(long, default_value = "500ms", value_parser = parse_duration)]
        ready_delay: Duration,
        /// A controller binary to use instead of building the release binary.
        #[arg(long)]
        controller: Option<PathBuf>,
        /// Skip the side-by-side update.
        #[arg(long)]
        no_side_by_side: bool,
        /// Skip the N Rollouts part.
        #[arg(long)]
        no_scale: bool,
        /// Keep the run's directory (controller log, audit log) after a successful run.
        #[arg(long)]
        keep: bool,
    },
}

#[derive(Subcommand)]
enum ClusterCmd {
    /// Starts the control plane and the pod simulator in the background (idempotent).
    Up,
    /// Stops the processes `up` started (by their pid files).
    Down,
    /// Shows which processes run and whether the API server answers.
    Status,
    /// Prints `export KUBECONFIG=...` for the running cluster.
    Env,
}

/// A flag value that is not a duration.
#[derive(Debug, thiserror::Error)]
#[error("not a duration: {0:?} (try 500ms, 2s)")]
struct NotADuration(String);

fn parse_duration(s: &str) -> Result<Duration, NotADuration> {
    podsim::parse_delay(s).ok_or_else(|| NotADuration(s.to_string()))
}

fn clock_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or_default()
}

async fn chaos(opts: xtask::chaos::Options) -> Result<()> {
    eprintln!(
        "+ chaos: {} Rollouts, faults for {:?}, seed {} (repeat with --seed)",
        opts.rollouts, opts.duration, opts.seed
    );
    let report = xtask::chaos::run(&workspace_root(), &opts).await?;
    println!("{report}");
    if report.violation_count > 0 {
        bail!(
            "chaos: {} invariant violations (seed {})",
            report.violation_count,
            opts.seed
        );
    }
    Ok(())
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Cluster { action, dir } => {
            let dir = dir.unwrap_or_else(|| cluster::cache_dir().join("cluster"));
            cluster_cmd(action, &dir).await
        }
        Cmd::Podsim {
            kubeconfig,
            ready_delay,
        } => {
            let client = cluster::client_for(&kubeconfig).await?;
            let opts = podsim::SimOptions {
                ready_delay,
                ..Default::default()
            };
            tokio::select! {
                r = podsim::run(client, opts) => r,
                _ = tokio::signal::ctrl_c() => Ok(()),
            }
        }
        Cmd::Test { args } => {
            let filtered = !args.is_empty();
            test(args)?;
            if filtered {
                eprintln!("NOTICE: arguments given to cargo test: the chaos run is left out");
                return Ok(());
            }
            // A small chaos run (about two minutes) completes the gate.
            chaos(xtask::chaos::Options {
                rollouts: 6,
                duration: Duration::from_secs(60),
                seed: clock_seed(),
                etcd_pause: Duration::from_secs(5),
                controller: None,
            })
            .await
        }
        Cmd::Chaos {
            rollouts,
            duration,
            etcd_pause,
            seed,
            controller,
        } => {
            chaos(xtask::chaos::Options {
                rollouts,
                duration,
                seed: seed.unwrap_or_else(clock_seed),
                etcd_pause,
                controller,
            })
            .await
        }
        Cmd::Bench {
            which:
                BenchCmd::Scale {
                    rollouts,
                    objects,
                    replicas,
                    window,
                    ready_delay,
                    controller,
                    no_side_by_side,
                    no_scale,
                    keep,
                },
        } => {
            let opts = xtask::bench::ScaleOptions {
                rollouts,
                objects,
                replicas,
                window,
                ready_delay,
                controller,
                skip_side_by_side: no_side_by_side,
                skip_scale: no_scale,
                keep,
            };
            xtask::bench::scale(&workspace_root(), opts).await
        }
        Cmd::Fuzz { minutes } => fuzz(minutes),
        Cmd::Demo { kubeconfig } => {
            let root = workspace_root();
            tokio::select! {
                r = xtask::demo::run(&root, kubeconfig) => r,
                _ = tokio::signal::ctrl_c() => {
                    eprintln!("interrupted: stopping the controller and the local control plane");
                    Ok(())
                }
            }
        }
        Cmd::Crds => {
            let status = Command::new(env!("CARGO"))
                .current_dir(workspace_root())
                .args([
                    "run",
                    "--quiet",
                    "--bin",
                    "rollouts-controller",
                    "--",
                    "crds",
                    "--out",
                    "crds",
                ])
                .status()?;
            if !status.success() {
                bail!("generating CRDs failed");
            }
            Ok(())
        }
    }
}

async fn cluster_cmd(action: ClusterCmd, dir: &Path) -> Result<()> {
    let procs = cluster::detached_processes(dir);
    let running = !procs.is_empty() && procs.iter().all(|(_, _, alive)| *alive);
    let kubeconfig = dir.join("kubeconfig");
    match action {
        ClusterCmd::Up => {
            if running {
                println!(
                    "local control plane already running (state in {})",
                    dir.display()
                );
                print_usage(&kubeconfig);
                return Ok(());
            }
            // Half-running (a crash): stop what is left and start afresh.
            cluster::stop_detached(dir);
            let bins = Binaries::ensure()?;
            let cp = ControlPlane::start(bins, dir, Mode::Detached).await?;
            let client = cp.client().await?;
            podsim::ensure_node(&client).await?;
            let log = std::fs::File::create(dir.join("podsim.log"))?;
            let mut cmd = Command::new(std::env::current_exe()?);
            cmd.arg("podsim")
                .arg("--kubeconfig")
                .arg(&cp.kubeconfig)
                .stdin(std::process::Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log);
            unsafe {
                use std::os::unix::process::CommandExt;
                cmd.pre_exec(|| {
                    libc::setsid();
                    Ok(())
                });
            }
            let child = cmd.spawn().context("starting the pod simulator")?;
            std::fs::write(dir.join("podsim.pid"), child.id().to_string())?;
            cp.detach();
            println!("local control plane up (state in {})", dir.display());
            print_usage(&kubeconfig);
            Ok(())
        }
        ClusterCmd::Down => {
            let stopped = cluster::stop_detached(dir);
            if stopped.is_empty() {
                println!("nothing to stop in {}", dir.display());
            } else {
                println!("stopped {}", stopped.join(", "));
            }
            Ok(())
        }
        ClusterCmd::Status => {
            if procs.is_empty() {
                println!("no local control plane in {}", dir.display());
                return Ok(());
            }
            for (name, pid, alive) in &procs {
                println!(
                    "{name:<24} pid {pid:<8} {}",
                    if *alive { "running" } else { "not running" }
                );
            }
            match cluster::client_for(&kubeconfig).await {
                Ok(c) => match c.apiserver_version().await {
                    Ok(v) => println!("API server answers: Kubernetes {}", v.git_version),
                    Err(e) => println!("API server does not answer: {e}"),
                },
                Err(e) => println!("no usable kubeconfig: {e:#}"),
            }
            Ok(())
        }
        ClusterCmd::Env => {
            if !running {
                bail!(
                    "no running local control plane in {} (run `cargo xtask cluster up`)",
                    dir.display()
                );
            }
            println!("export KUBECONFIG={}", kubeconfig.display());
            Ok(())
        }
    }
}

fn print_usage(kubeconfig: &Path) {
    let kubectl = Binaries::locate()
        .and_then(|b| b.kubectl)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "kubectl".into());
    println!("  export KUBECONFIG={}", kubeconfig.display());
    println!("  {kubectl} get nodes");
    println!("  cargo xtask cluster down   # stops it");
}

fn run(cmd: &mut Command) -> Result<()> {
    eprintln!("+ {:?}", cmd);
    let status = cmd.status().with_context(|| format!("running {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed: {status}");
    }
    Ok(())
}

/// Installs missing Debian packages (as root); elsewhere says what to install.
fn ensure_packages(pkgs: &[&str]) -> Result<()> {
    let missing: Vec<&str> = pkgs
        .iter()
        .copied()
        .filter(|p| {
            !Command::new("dpkg-query")
                .args(["-W", "-f=${Status}", p])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
                .unwrap_or(false)
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if unsafe { libc::geteuid() } != 0 {
        bail!(
            "missing packages {missing:?}: install them (apt-get install {})",
            missing.join(" ")
        );
    }
    let install = || {
        run(Command::new("apt-get")
            .args(["install", "-y", "-qq"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"))
    };
    install().or_else(|_| {
        run(Command::new("apt-get").args(["update", "-qq"]))?;
        install()
    })
}

/// The README's test command.
fn test(args: Vec<String>) -> Result<()> {
    let root = workspace_root();
    // 1. The control plane's binaries (built from Debian's sources once per machine).
    let bins = Binaries::ensure().context("the local control plane cannot be set up")?;
    eprintln!("control plane binaries: {bins:?}");
    // 2. Debian packages the tests use: a real Prometheus for the analysis tests, a real
    //    Chromium (headless) for the dashboard's browser tests.
    ensure_packages(&["prometheus", "openssl", "chromium"])?;
    // A real Helm engine for the chart tests (helm-python-sdk).
    xtask::python::ensure_python_packages().context("Helm for the chart tests")?;
    // 3. Formatting and lints are part of the gate.
    run(Command::new(env!("CARGO"))
        .current_dir(&root)
        .args(["fmt", "--all", "--", "--check"]))?;
    run(Command::new(env!("CARGO")).current_dir(&root).args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    // 4. Every test: unit, pure table tests, compatibility and integration tests against the
    //    local control plane. Missing prerequisites are failures, never skips; the one
    //    exception is upstream's compatibility corpus beside the checkout, which is not part of
    //    the repository: its tests print a notice where it is absent (as for users), and must
    //    all run where it is present.
    let mut cmd = Command::new(env!("CARGO"));
    cmd.current_dir(&root)
        .args(["test", "--workspace", "--all-targets"])
        .env("KUBEBUILDER_ASSETS", cluster::k8s_cache_dir());
    // The e2e tests mostly wait (pauses, pods coming up), each with its own namespace and
    // controller on one shared control plane: six at a time keep two cores busy without
    // starving them. `RUST_TEST_THREADS` set by the caller wins.
    if std::env::var_os("RUST_TEST_THREADS").is_none() {
        cmd.env("RUST_TEST_THREADS", "6");
    }
    let corpus = root.join("../shared/compat/argo-rollouts");
    if corpus.is_dir() {
        cmd.env("ROLLOUTS_REQUIRE_COMPAT", "1");
    } else {
        eprintln!(
            "NOTICE: upstream's compatibility corpus is not at {}: the tests that read it are skipped",
            corpus.display()
        );
    }
    cmd.args(&args);
    run(&mut cmd)
}

/// One randomized test binary target: `cargo test` arguments selecting it.
struct FuzzSuite {
    /// Arguments before `--` (package and target).
    target: &'static [&'static str],
    /// Test names, or empty: the suite's `fuzz_*` tests as listed.
    tests: &'static [&'static str],
}

const FUZZ_SUITES: [FuzzSuite; 3] = [
    FuzzSuite {
        target: &["-p", "rollouts-core", "--lib"],
        tests: &["plan::model_tests::planner_model_invariants"],
    },
    FuzzSuite {
        target: &["-p", "rollouts-core", "--test", "fuzz_inputs"],
        tests: &[],
    },
    FuzzSuite {
        target: &["-p", "rollouts", "--test", "fuzz_inputs"],
        tests: &[],
    },
];

/// What one run printed: (cases, failures) from its `FUZZ ...` or `planner model: ...` line.
fn fuzz_counts(stdout: &str) -> Option<(u64, u64)> {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("FUZZ ") || l.starts_with("planner model: "))?;
    let (_, rest) = line.split_once(": ")?;
    let cases = rest.split_whitespace().next()?.parse().ok()?;
    let failures = rest
        .rsplit_once(", ")?
        .1
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some((cases, failures))
}

/// `cargo xtask fuzz --minutes N`.
fn fuzz(minutes: f64) -> Result<()> {
    let root = workspace_root();
    let cargo = || {
        let mut c = Command::new(env!("CARGO"));
        c.current_dir(&root);
        c
    };
    // Build first, and list the fuzz targets.
    let mut runs: Vec<(&FuzzSuite, String)> = Vec::new();
    for suite in &FUZZ_SUITES {
        run(cargo().arg("test").args(suite.target).arg("--no-run"))?;
        if suite.tests.is_empty() {
            let out = cargo()
                .arg("test")
                .args(suite.target)
                .args(["--", "--list"])
                .output()
                .context("listing the fuzz targets")?;
            let listed = String::from_utf8_lossy(&out.stdout).into_owned();
            for name in listed.lines().filter_map(|l| l.strip_suffix(": test")) {
                if name.starts_with("fuzz_") {
                    runs.push((suite, name.to_string()));
                }
            }
        } else {
            runs.extend(suite.tests.iter().map(|t| (suite, t.to_string())));
        }
    }
    let inputs = runs.len().saturating_sub(1).max(1);
    let total = minutes * 60.0;
    let start = std::time::Instant::now();
    let (mut cases, mut failures, mut model_cases, mut input_cases) = (0u64, 0u64, 0u64, 0u64);
    for (i, (suite, name)) in runs.iter().enumerate() {
        // The model gets half of the time; the input targets share the other half.
        let share = if i == 0 {
            total / 2.0
        } else {
            total / 2.0 / inputs as f64
        };
        eprintln!("+ {name}: {share:.0}s");
        let out = cargo()
            .arg("test")
            .args(suite.target)
            .args(["--", "--exact", name, "--nocapture"])
            .env("ROLLOUTS_FUZZ_SECONDS", format!("{share:.0}"))
            .output()
            .with_context(|| format!("running {name}"))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let (n, f) = fuzz_counts(&stdout).unwrap_or((0, 1));
        println!(
            "{}",
            stdout
                .lines()
                .find(|l| l.starts_with("FUZZ ") || l.starts_with("planner model: "))
                .unwrap_or(name)
        );
        if !out.status.success() || f > 0 {
            failures += f.max(1);
            eprintln!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
        }
        cases += n;
        if i == 0 {
            model_cases += n;
        } else {
            input_cases += n;
        }
    }
    println!(
        "fuzz: {cases} cases ({model_cases} planner model cases, {input_cases} input cases in {} targets) \
         in {:.1} minutes, {failures} failures (invariant violations or panics)",
        runs.len() - 1,
        start.elapsed().as_secs_f64() / 60.0
    );
    if failures > 0 {
        bail!("{failures} fuzz targets failed");
    }
    Ok(())
}
