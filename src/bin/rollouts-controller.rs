//! The rollouts controller binary.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use rollouts::api::crd;

/// A Kubernetes progressive-delivery controller, drop-in compatible with Argo Rollouts.
#[derive(Debug, Parser)]
#[command(name = "rollouts-controller", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub cmd: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the controller against the cluster of the current kubeconfig (or in-cluster config).
    Run(RunArgs),
    /// Print the CustomResourceDefinitions as one multi-document YAML stream, or write one
    /// file per kind into a directory.
    Crds {
        /// Directory to write `rollout-crd.yaml`, `analysis-template-crd.yaml`, ... into.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// Flags of `rollouts-controller run` (each with an environment fallback).
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Watch only this namespace (namespaced mode); all namespaces when unset.
    #[arg(long, env = "ROLLOUTS_NAMESPACE")]
    pub namespace: Option<String>,
    /// Only reconcile objects labelled `argo-rollouts.argoproj.io/controller-instance-id`
    /// with this value (without it: only objects lacking the label).
    #[arg(long, env = "ROLLOUTS_INSTANCE_ID")]
    pub instance_id: Option<String>,
    /// Rollouts reconciled concurrently.
    #[arg(long, env = "ROLLOUTS_ROLLOUT_CONCURRENCY", default_value_t = 10)]
    pub rollout_concurrency: u16,
    /// Log format.
    #[arg(long, env = "ROLLOUTS_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
    /// Log level (a tracing filter, e.g. `info`, `rollouts=debug`).
    #[arg(long, env = "ROLLOUTS_LOG_LEVEL", default_value = "info")]
    pub log_level: String,
}

fn run(args: RunArgs) -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_new(&args.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if args.log_format == "json" {
        builder.json().init();
    } else {
        builder.init();
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
        let client = match kube::Client::try_default().await {
            Ok(c) => c,
            Err(e) => {
                eprintln!("rollouts-controller: no usable Kubernetes configuration: {e}");
                return ExitCode::FAILURE;
            }
        };
        let config = rollouts::controller::Config {
            namespace: args.namespace,
            instance_id: args.instance_id,
            concurrency: args.rollout_concurrency,
            observer: None,
        };
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        rollouts::controller::run(client, config, shutdown, Default::default()).await;
        ExitCode::SUCCESS
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.cmd {
        Command::Run(args) => run(args),
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

fn write_crds(dir: &std::path::Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    for (name, def) in crd::all_crds() {
        let path = dir.join(&name);
        std::fs::write(&path, crd::render_yaml(&def))
            .map_err(|e| format!("writing {}: {e}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}
