//! `kubectl-rollouts`: the kubectl plugin for Rollouts (`kubectl rollouts ...`), command for
//! command compatible with upstream's `kubectl-argo-rollouts`, plus `plan` (the offline
//! timeline of an update).
//!
//! Layout: [`info`] and [`render`] turn objects into text (pure, snapshot-tested),
//! [`actions`] turns objects into the patches upstream writes (pure), [`timeline`] and
//! [`lint`] work on manifests without a cluster, [`cluster`] and [`watch`] do the I/O,
//! [`verbs`] runs each user command (read, patch) for the CLI and the dashboard alike, and
//! [`dashboard`] serves the web UI.
//!
//! # Differences from upstream's plugin
//!
//! - Exit codes are specific (see [`error::exit`]): upstream exits 1 for every error,
//!   including a `status` timeout (4 here) and an unreachable cluster (5 here).
//! - Errors are one line naming what was looked for and where, e.g.
//!   `rollout "foo" not found in namespace "bar"`, `namespace "bar" not found`.
//! - `list rollouts` has an ACTUAL-WEIGHT column (after SET-WEIGHT).
//! - `get rollout` has `-o json|yaml` (the view's data); `get experiment` has not.
//! - `terminate experiment` prints "experiment 'NAME' terminated" (upstream's says "retried").
//! - `lint` prints field paths and reports unknown fields and features the controller does
//!   not carry out yet; a file without a Rollout is an error.
//! - `plan` and `analysis backtest` (see [`backtest`]) are new. Not offered: `create`,
//!   the deprecated `promote --skip-*` and `resume`.
//! - `dashboard` ([`dashboard`]) listens on 127.0.0.1 and needs a per-start token for
//!   actions (upstream's has no authentication); `--read-only`, `--address`, `-A` are new.
//! - The writes themselves are upstream's; see [`actions`].

pub mod actions;
pub mod backtest;
pub mod cluster;
mod commands;
pub mod dashboard;
pub mod error;
pub mod info;
pub mod lint;
pub mod notifications;
pub mod render;
pub mod timeline;
pub mod verbs;
pub mod waiting;
mod watch;

use clap::{ArgAction, Args, CommandFactory, Parser, Subcommand, ValueEnum};
use error::{CliError, EXIT_CODES_HELP, exit};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// Manage Rollouts (argoproj.io/v1alpha1): inspect, promote, abort, retry, undo, plan; inspect,
/// terminate and retry Experiments.
///
/// Installed on the PATH as `kubectl-rollouts`, it also runs as `kubectl rollouts ...`.
#[derive(Debug, Parser)]
#[command(name = "kubectl-rollouts", version, after_help = EXIT_CODES_HELP)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Connection flags, as kubectl's.
#[derive(Debug, Clone, Args)]
pub struct Global {
    /// Path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config).
    #[arg(long, global = true, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use.
    #[arg(long, global = true, value_name = "NAME")]
    pub context: Option<String>,
    /// The namespace (default: the context's, else `default`).
    #[arg(short = 'n', long, global = true, value_name = "NAMESPACE")]
    pub namespace: Option<String>,
}

/// Output formats of `get rollout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Json,
    Yaml,
}

/// Output formats of `plan`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanOutput {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List rollouts.
    List {
        #[command(subcommand)]
        what: ListWhat,
    },
    /// Show a rollout and its revisions, ReplicaSets, pods and AnalysisRuns as a tree.
    ///
    /// The summary shows the status with its message, the strategy, step, set and actual
    /// weight, the images with their (stable)/(canary)/(active)/(preview) markers and the
    /// replica counts.
    Get {
        #[command(subcommand)]
        what: GetWhat,
    },
    /// Promote a paused rollout (`--full`: skip all remaining steps).
    ///
    /// Clears the pause conditions of a rollout paused at a step (and `spec.paused`), or
    /// advances the current step when there is no pause condition. `--full` skips the
    /// remaining steps, pauses and analyses.
    Promote {
        /// The rollout.
        name: String,
        /// Fully promote to the desired version, skipping analysis, pauses and steps.
        #[arg(long)]
        full: bool,
    },
    /// Abort a rollout: go back to the stable version.
    ///
    /// Scales the canary down and sends all traffic back to the stable ReplicaSet.
    /// `spec.template` still holds the new version: `retry rollout` goes to it again, `undo`
    /// reverts it.
    Abort {
        /// The rollouts.
        #[arg(required = true, value_name = "NAME")]
        names: Vec<String>,
    },
    /// Retry an aborted rollout or a failed experiment.
    Retry {
        #[command(subcommand)]
        what: RetryWhat,
    },
    /// Terminate an AnalysisRun or Experiment that is in progress.
    Terminate {
        #[command(subcommand)]
        what: TerminateWhat,
    },
    /// Roll back to the previous (or a given) revision.
    ///
    /// Copies the pod template of that revision's ReplicaSet into the rollout's spec.
    Undo {
        /// The rollout.
        name: String,
        /// The revision to roll back to (0: the previous one).
        #[arg(long, default_value_t = 0, value_name = "N")]
        to_revision: i64,
    },
    /// Pause a rollout (sets `spec.paused`; `promote` resumes it).
    Pause {
        /// The rollouts.
        #[arg(required = true, value_name = "NAME")]
        names: Vec<String>,
    },
    /// Restart the pods of a rollout (sets `spec.restartAt`).
    Restart {
        /// The rollout.
        name: String,
        /// Restart after this long (e.g. 30s, 5m, 1h).
        #[arg(short = 'i', long = "in", value_name = "DURATION")]
        in_: Option<String>,
    },
    /// Update a field of a rollout.
    Set {
        #[command(subcommand)]
        what: SetWhat,
    },
    /// Wait until a rollout is Healthy or Degraded (for CI pipelines).
    ///
    /// Prints each status change; exits 0 when Healthy, 1 when Degraded, 4 when the
    /// timeout expires first. With `--watch=false`, prints the status once (exit 1 only
    /// when Degraded).
    #[command(after_help = EXIT_CODES_HELP)]
    Status {
        /// The rollout.
        name: String,
        /// Watch until done (`--watch=false`: print the status once).
        #[arg(short = 'w', long, action = ArgAction::Set, default_value_t = true,
              num_args = 0..=1, require_equals = true, default_missing_value = "true")]
        watch: bool,
        /// Give up after this long (e.g. 60s, 5m; 0: wait forever).
        #[arg(short = 't', long, value_name = "DURATION", default_value = "0")]
        timeout: String,
    },
    /// Validate the Rollouts of a manifest as the controller does.
    ///
    /// Prints one line per problem, starting with its field path; exits 1 when there is
    /// any. Also reports fields the API does not have, and features the controller does not
    /// carry out yet.
    Lint {
        /// The manifest (`-` for standard input).
        #[arg(short = 'f', long = "filename", value_name = "FILE")]
        file: PathBuf,
    },
    /// Print the timeline of an update of a manifest's Rollout, without a cluster.
    ///
    /// Runs the controller's own planner in memory: deploys the manifest, changes the
    /// image, and follows the steps (promoting at indefinite pauses, waiting out timed
    /// ones). Prints per step the weight, canary and stable pods, the most pods at once
    /// (maxSurge) and the fewest available (maxUnavailable), the pauses, and the minimum
    /// total duration. Pods are assumed ready at once. Exits 1 when the controller would
    /// refuse the Rollout (InvalidSpec) or the update would not complete.
    Plan {
        /// The manifest holding the Rollout (`-` for standard input).
        #[arg(short = 'f', long = "filename", value_name = "FILE")]
        file: PathBuf,
        /// The image the stable version runs (the manifest's image is the new one). Without
        /// it, the manifest's image is the stable one and the update is to `<image>-next`.
        #[arg(long, value_name = "IMAGE")]
        from_image: Option<String>,
        /// Also draw the timeline (weight and pods over time) as an SVG chart to this file.
        #[arg(long, value_name = "FILE")]
        svg: Option<PathBuf>,
        /// Output format.
        #[arg(short = 'o', long, value_enum, default_value_t = PlanOutput::Text)]
        output: PlanOutput,
    },
    /// Analysis tools: `analysis backtest`.
    Analysis {
        #[command(subcommand)]
        what: AnalysisWhat,
    },
    /// Serve a live web dashboard of the rollouts (http://127.0.0.1:3100/rollouts/).
    ///
    /// Reads and acts with your kubeconfig identity, so RBAC applies as for the other
    /// commands. Actions need the token printed in the URL at start; `--read-only` offers
    /// none. Stops on Ctrl-C.
    Dashboard(dashboard::Options),
    /// Notification settings: `template get|notify`, `trigger get|run`.
    ///
    /// Reads the namespace's argo-rollouts-notification-configmap and -secret (or the files
    /// given), renders with the controller's templates and sends with its services.
    Notifications(notifications::NotificationsArgs),
    /// Print the version.
    Version {
        /// Only the version number.
        #[arg(long)]
        short: bool,
    },
    /// Print a shell completion script.
    Completion {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Subcommand)]
pub enum AnalysisWhat {
    /// Replay an AnalysisTemplate over a past window of Prometheus data.
    ///
    /// Builds the AnalysisRun the controller would create from the template and its
    /// arguments, then runs the controller's own analysis code over the window: each metric
    /// is measured at the times a live run would have measured it (its interval, the retry
    /// delay after an error, initial delays), by evaluating its query as of that time, and
    /// judged by the same conditions and limits. Prints every measurement and the verdict
    /// the run would have reached, and when. Only Prometheus metrics can be replayed.
    /// Exits 1 when the verdict is Failed, Error or Inconclusive.
    Backtest {
        /// A manifest with the AnalysisTemplate (and the templates it includes). Without it,
        /// the template is read from the cluster.
        #[arg(short = 'f', long = "filename", value_name = "FILE")]
        file: Option<PathBuf>,
        /// The AnalysisTemplate (needed when the file holds several, or from the cluster).
        #[arg(long, value_name = "NAME", conflicts_with = "cluster_template")]
        template: Option<String>,
        /// A ClusterAnalysisTemplate instead.
        #[arg(long, value_name = "NAME")]
        cluster_template: Option<String>,
        /// A template argument (repeatable).
        #[arg(long = "arg", value_name = "NAME=VALUE")]
        args: Vec<String>,
        /// Start of the window: a time (2024-05-01T10:00:00Z), Unix seconds, or a duration
        /// ago (2h).
        #[arg(long, value_name = "TIME")]
        from: String,
        /// End of the window (default: now).
        #[arg(long, value_name = "TIME")]
        to: Option<String>,
        /// Query this Prometheus instead of the metrics' own addresses (e.g. through
        /// `kubectl port-forward`); default for metrics without an address:
        /// `ARGO_ROLLOUTS_PROMETHEUS_ADDRESS`.
        #[arg(long, value_name = "URL")]
        prometheus_address: Option<String>,
        /// Also draw the values against the conditions as an SVG chart to this file.
        #[arg(long, value_name = "FILE")]
        svg: Option<PathBuf>,
        /// Output format.
        #[arg(short = 'o', long, value_enum, default_value_t = PlanOutput::Text)]
        output: PlanOutput,
    },
}

#[derive(Debug, Subcommand)]
pub enum ListWhat {
    /// List rollouts.
    #[command(visible_aliases = ["ro", "rollout"])]
    Rollouts {
        /// Rollouts of every namespace.
        #[arg(short = 'A', long)]
        all_namespaces: bool,
        /// Keep watching, printing a line when a rollout changes.
        #[arg(short = 'w', long)]
        watch: bool,
        /// Only the rollout of this name.
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
    },
    /// List experiments: name, phase, duration, time remaining and age.
    #[command(visible_aliases = ["exp", "experiment"])]
    Experiments {
        /// Experiments of every namespace.
        #[arg(short = 'A', long)]
        all_namespaces: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum GetWhat {
    /// Show a rollout.
    #[command(visible_aliases = ["ro", "rollouts"])]
    Rollout {
        /// The rollout.
        name: String,
        /// Keep watching, redrawing on every change.
        #[arg(short = 'w', long)]
        watch: bool,
        /// No colours, even on a terminal.
        #[arg(long)]
        no_color: bool,
        /// Print as JSON or YAML instead of the tree.
        #[arg(short = 'o', long, value_enum)]
        output: Option<Output>,
    },
    /// Show an experiment and its ReplicaSets, pods and AnalysisRuns as a tree.
    #[command(visible_aliases = ["exp", "experiments"])]
    Experiment {
        /// The experiment.
        name: String,
        /// Keep watching, redrawing on every change.
        #[arg(short = 'w', long)]
        watch: bool,
        /// No colours, even on a terminal.
        #[arg(long)]
        no_color: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum RetryWhat {
    /// Retry an aborted rollout.
    #[command(visible_aliases = ["ro", "rollouts"])]
    Rollout {
        /// The rollouts.
        #[arg(required = true, value_name = "NAME")]
        names: Vec<String>,
    },
    /// Retry experiments: clears their status, so the controller runs them again.
    #[command(visible_aliases = ["exp", "experiments"])]
    Experiment {
        /// The experiments.
        #[arg(required = true, value_name = "NAME")]
        names: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum TerminateWhat {
    /// Terminate AnalysisRuns (sets `spec.terminate`): the run stops measuring and ends
    /// with the phase of what it measured so far.
    #[command(visible_aliases = ["ar", "analysisruns"])]
    Analysisrun {
        /// The AnalysisRuns.
        #[arg(required = true, value_name = "NAME")]
        names: Vec<String>,
    },
    /// Terminate experiments (sets `spec.terminate`): their templates scale down and their
    /// runs are terminated.
    #[command(visible_aliases = ["exp", "experiments"])]
    Experiment {
        /// The experiments.
        #[arg(required = true, value_name = "NAME")]
        names: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum SetWhat {
    /// Set the image of a container (`*` for all) of a rollout.
    Image {
        /// The rollout.
        name: String,
        /// `CONTAINER=IMAGE`.
        #[arg(value_name = "CONTAINER=IMAGE")]
        container_image: String,
    },
}

/// Prints `get rollout`'s view (or its JSON/YAML form) once.
pub(crate) fn print_info(info: &info::RolloutInfo, style: render::Style, output: Option<Output>) {
    match output {
        None => out(&render::rollout(
            info,
            k8s_openapi::jiff::Timestamp::now(),
            style,
        )),
        Some(Output::Json) => out(&format!(
            "{}\n",
            serde_json::to_string_pretty(info).unwrap_or_default()
        )),
        Some(Output::Yaml) => out(&serde_yaml::to_string(info).unwrap_or_default()),
    }
}

/// Writes to standard output. When the reader has gone (`... --watch | head`), exits at once
/// with the status a process killed by SIGPIPE has (141), as upstream's Go binary does.
pub(crate) fn out(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let res = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush());
    if let Err(e) = res
        && e.kind() == std::io::ErrorKind::BrokenPipe
    {
        std::process::exit(141);
    }
}

/// The clap command (for completions and tests).
pub fn command() -> clap::Command {
    Cli::command()
}

/// Runs the CLI with these arguments; returns the exit code.
pub fn main_with<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            });
        }
    };
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.code)
        }
    }
}

/// The binary's entry point.
pub fn main() -> ExitCode {
    main_with(std::env::args_os())
}

/// Parses a duration flag: a Go duration (`30s`, `5m`, `1h30m`) or a number of seconds.
pub fn parse_duration(flag: &str, s: &str) -> Result<std::time::Duration, CliError> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(std::time::Duration::from_secs(secs));
    }
    match crate::api::parse_go_duration(s) {
        Some(ns) if ns >= 0 => Ok(std::time::Duration::from_nanos(
            u64::try_from(ns).unwrap_or(u64::MAX),
        )),
        _ => Err(CliError::usage(format!(
            "invalid {flag} {s:?}: expected a duration such as 30s, 5m or 1h"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        command().debug_assert();
    }

    #[test]
    fn status_watches_by_default() {
        let cli = Cli::try_parse_from(["kubectl-rollouts", "status", "r"]).unwrap();
        let Command::Status { watch, .. } = cli.command else {
            panic!()
        };
        assert!(watch);
        let cli = Cli::try_parse_from([
            "kubectl-rollouts",
            "status",
            "--watch=false",
            "r",
            "-n",
            "x",
        ])
        .unwrap();
        let Command::Status { watch, .. } = cli.command else {
            panic!()
        };
        assert!(!watch);
        assert_eq!(cli.global.namespace.as_deref(), Some("x"));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("--timeout", "90").unwrap().as_secs(), 90);
        assert_eq!(parse_duration("--timeout", "1m30s").unwrap().as_secs(), 90);
        assert_eq!(parse_duration("--timeout", "0").unwrap().as_secs(), 0);
        let err = parse_duration("--timeout", "soon").unwrap_err();
        assert_eq!(err.code, exit::USAGE);
    }

    #[test]
    fn help_documents_exit_codes() {
        let help = command().render_long_help().to_string();
        assert!(help.contains("Exit codes:"), "{help}");
        assert!(help.contains("5  cluster unreachable"), "{help}");
    }
}
