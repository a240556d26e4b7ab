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
    /// Print the CustomResourceDefinitions as one multi-document YAML stream, or write one
    /// file per kind into a directory.
    Crds {
        /// Directory to write `rollout-crd.yaml`, `analysis-template-crd.yaml`, ... into.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.cmd {
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
