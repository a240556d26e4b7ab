//! The rollouts controller binary: `run` (the controllers, metrics, health, leader election)
//! and `crds`. The flags are [`rollouts::ops::cli::RunArgs`].

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use rollouts::api::crd;
use rollouts::ops::cli::{Cli, Command, LogFormat, RunArgs};
use rollouts::ops::{self, Process};

/// Why logging could not be set up, or the CRDs not written.
#[derive(Debug, thiserror::Error)]
enum StartError {
    #[error("--log-level {level:?}: {source}")]
    LogLevel {
        level: String,
        #[source]
        source: tracing_subscriber::filter::ParseError,
    },
    #[error("initialising logging: {0}")]
    Logging(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("creating {}: {source}", .dir.display())]
    CreateDir {
        dir: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("writing {}: {source}", .path.display())]
    Write {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn init_logging(args: &RunArgs) -> Result<(), StartError> {
    let filter = tracing_subscriber::EnvFilter::try_new(&args.log_level).map_err(|source| {
        StartError::LogLevel {
            level: args.log_level.clone(),
            source,
        }
    })?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let res = match args.log_format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
    res.map_err(StartError::Logging)
}

/// SIGTERM (Kubernetes stopping the pod) or Ctrl-C.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// How often freed heap memory is handed back to the system.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIM_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

/// glibc keeps pages freed by the allocator (the initial lists' response bodies, decoded
/// objects replaced by newer versions) in its arenas, where they count in the RSS although
/// nothing uses them; `malloc_trim` returns them (measured in the README, "At scale").
#[cfg(all(target_os = "linux", target_env = "gnu"))]
async fn trim_heap_periodically() {
    let mut every = tokio::time::interval(TRIM_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        // SAFETY: `malloc_trim` takes no pointer and only releases free pages; glibc's
        // allocator locks each arena while trimming it.
        unsafe {
            libc::malloc_trim(0);
        }
    }
}

fn run(args: &RunArgs) -> ExitCode {
    if let Err(e) = init_logging(args) {
        eprintln!("rollouts-controller: {e}");
        return ExitCode::FAILURE;
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rollouts-controller: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(async move {
        let config = match kube::Config::infer().await {
            Ok(c) => c,
            Err(e) => {
                tracing::error!("no usable Kubernetes configuration: {e}");
                return ExitCode::FAILURE;
            }
        };
        let opts = match args.options(&config.default_namespace) {
            Ok(o) => o,
            Err(e) => {
                tracing::error!("{e}");
                return ExitCode::from(2);
            }
        };
        let process = match Process::bind(opts, config).await {
            Ok(p) => p,
            Err(e) => {
                tracing::error!("{e}");
                return ExitCode::FAILURE;
            }
        };
        tracing::info!(
            metrics = ?process.metrics_addr(),
            health = ?process.healthz_addr(),
            leader_election = args.leader_elect,
            "rollouts-controller {} starting",
            env!("CARGO_PKG_VERSION")
        );
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        tokio::spawn(trim_heap_periodically());
        match process.run(shutdown_signal()).await {
            Ok(()) => {
                tracing::info!("stopped");
                ExitCode::SUCCESS
            }
            Err(e @ ops::Error::LostLease(_)) => {
                tracing::error!("{e}");
                ExitCode::FAILURE
            }
            Err(e) => {
                tracing::error!("{e}");
                ExitCode::FAILURE
            }
        }
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.cmd {
        Command::Run(args) => run(&args),
        Command::Crds { out: None } => {
            let mut stdout = std::io::stdout().lock();
            match stdout
                .write_all(crd::render_all_yaml().as_bytes())
                .and_then(|()| stdout.flush())
            {
                Ok(()) => ExitCode::SUCCESS,
                // e.g. `rollouts-controller crds | head`
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("rollouts-controller: writing to stdout: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Crds { out: Some(dir) } => match write_crds(&dir) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("rollouts-controller: {e}");
                ExitCode::FAILURE
            }
        },
    }
}

fn write_crds(dir: &std::path::Path) -> Result<(), StartError> {
    std::fs::create_dir_all(dir).map_err(|source| StartError::CreateDir {
        dir: dir.to_path_buf(),
        source,
    })?;
    for (name, def) in crd::all_crds() {
        let path = dir.join(&name);
        if let Err(source) = std::fs::write(&path, crd::render_yaml(&def)) {
            return Err(StartError::Write { path, source });
        }
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_debug_assert() {
        Cli::command().debug_assert();
    }

    #[test]
    fn run_flags_and_defaults() {
        let cli = Cli::try_parse_from(["rollouts-controller", "run"]).unwrap();
        let Command::Run(args) = cli.cmd else {
            panic!("not run")
        };
        let o = args.options("default").unwrap();
        assert_eq!((o.qps, o.burst), (40.0, 80));
        assert_eq!(o.metrics_addr.to_string(), "0.0.0.0:8090");
        assert_eq!(o.healthz_addr.to_string(), "0.0.0.0:8080");
        assert!(o.leader_election.is_none());
        let cli = Cli::try_parse_from([
            "rollouts-controller",
            "run",
            "--leader-elect",
            "--leader-election-namespace=ops",
            "--leader-election-lease-duration=3s",
            "--leader-election-renew-deadline=2s",
            "--leader-election-retry-period=500ms",
            "--log-format=json",
        ])
        .unwrap();
        let Command::Run(args) = cli.cmd else {
            panic!("not run")
        };
        let le = args.options("default").unwrap().leader_election.unwrap();
        assert_eq!(le.namespace, "ops");
        assert_eq!(le.retry_period, std::time::Duration::from_millis(500));
        assert!(Cli::try_parse_from(["rollouts-controller", "run", "--log-format=xml"]).is_err());
        let cli = Cli::try_parse_from([
            "rollouts-controller",
            "run",
            "--leader-elect",
            "--leader-election-renew-deadline=20s",
        ])
        .unwrap();
        let Command::Run(args) = cli.cmd else {
            panic!("not run")
        };
        assert!(args.options("default").is_err(), "renew deadline > lease");
    }
}
