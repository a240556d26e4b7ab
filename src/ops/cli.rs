//! The command line of `rollouts-controller` (every flag of `run` has an environment fallback).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

use super::leader::{LeaseConfig, LeaseConfigError};
use super::{NotificationOptions, Options};

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
    Run(Box<RunArgs>),
    /// Print the CustomResourceDefinitions as one multi-document YAML stream, or write one
    /// file per kind into a directory.
    Crds {
        /// Directory to write `rollout-crd.yaml`, `analysis-template-crd.yaml`, ... into.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Flags of `rollouts-controller run`.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Namespaced mode: watch only this namespace (needs only a Role there). All namespaces
    /// (a ClusterRole) when unset.
    #[arg(long, env = "ROLLOUTS_NAMESPACE")]
    pub namespace: Option<String>,
    /// Only reconcile objects labelled `argo-rollouts.argoproj.io/controller-instance-id` with
    /// this value. Without it, only objects lacking the label (upstream's sharding).
    #[arg(long, env = "ROLLOUTS_INSTANCE_ID")]
    pub instance_id: Option<String>,
    /// Rollouts reconciled concurrently.
    #[arg(long, env = "ROLLOUTS_ROLLOUT_CONCURRENCY", default_value_t = 10,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub rollout_concurrency: u16,
    /// Analysis measurements in flight at once (across all AnalysisRuns).
    #[arg(long, env = "ROLLOUTS_ANALYSIS_CONCURRENCY", default_value_t = 10,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub analysis_concurrency: u16,
    /// Client-side rate limit of Kubernetes API requests: sustained requests per second.
    #[arg(long, env = "ROLLOUTS_QPS", default_value_t = 40.0)]
    pub qps: f32,
    /// Client-side rate limit of Kubernetes API requests: burst above `--qps`.
    #[arg(long, env = "ROLLOUTS_BURST", default_value_t = 80,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub burst: u32,
    /// Elect a leader among replicas on a coordination.k8s.io/v1 Lease: only the holder
    /// reconciles.
    #[arg(long, env = "ROLLOUTS_LEADER_ELECT")]
    pub leader_elect: bool,
    /// Namespace of the Lease (default: `POD_NAMESPACE`, else the namespace of the
    /// kubeconfig context or of the in-cluster service account).
    #[arg(long, env = "ROLLOUTS_LEADER_ELECTION_NAMESPACE")]
    pub leader_election_namespace: Option<String>,
    /// Name of the Lease.
    #[arg(
        long,
        env = "ROLLOUTS_LEADER_ELECTION_LEASE_NAME",
        default_value = "rollouts-controller-lock"
    )]
    pub leader_election_lease_name: String,
    /// This replica's identity in the Lease (default: `POD_NAME` or the host name, plus a
    /// random suffix).
    #[arg(long, env = "ROLLOUTS_LEADER_ELECTION_IDENTITY")]
    pub leader_election_identity: Option<String>,
    /// How long a standby waits, from the last renewal it saw, before taking the Lease over.
    #[arg(long, env = "ROLLOUTS_LEADER_ELECTION_LEASE_DURATION", default_value = "15s",
          value_parser = parse_duration)]
    pub leader_election_lease_duration: Duration,
    /// How long the leader keeps acting without a successful renewal; past it, it stops at
    /// once. Must be shorter than the lease duration.
    #[arg(long, env = "ROLLOUTS_LEADER_ELECTION_RENEW_DEADLINE", default_value = "10s",
          value_parser = parse_duration)]
    pub leader_election_renew_deadline: Duration,
    /// Time between two attempts to acquire or renew the Lease.
    #[arg(long, env = "ROLLOUTS_LEADER_ELECTION_RETRY_PERIOD", default_value = "2s",
          value_parser = parse_duration)]
    pub leader_election_retry_period: Duration,
    /// Address of the Prometheus metrics endpoint (`/metrics`).
    #[arg(long, env = "ROLLOUTS_METRICS_ADDR", default_value = "0.0.0.0:8090")]
    pub metrics_addr: SocketAddr,
    /// Address of the health endpoints (`/healthz`, `/readyz`).
    #[arg(long, env = "ROLLOUTS_HEALTHZ_ADDR", default_value = "0.0.0.0:8080")]
    pub healthz_addr: SocketAddr,
    /// Also read the notification ConfigMap and Secret in each Rollout's own namespace
    /// (upstream's flag of the same name); the controller's namespace's pair is always read.
    #[arg(long, env = "ROLLOUTS_SELF_SERVICE_NOTIFICATION_ENABLED")]
    pub self_service_notification_enabled: bool,
    /// Namespace of the notification ConfigMap and Secret (default: `POD_NAMESPACE`, else the
    /// namespace of the kubeconfig context or of the in-cluster service account).
    #[arg(long, env = "ROLLOUTS_NOTIFICATIONS_NAMESPACE")]
    pub notifications_namespace: Option<String>,
    /// Notifications waiting to be sent at most; past it a notification is dropped and
    /// counted in `notification_send_error`.
    #[arg(long, env = "ROLLOUTS_NOTIFICATIONS_QUEUE", default_value_t = 1024,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub notifications_queue: u32,
    /// Log format.
    #[arg(long, env = "ROLLOUTS_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Log level: `error`, `warn`, `info`, `debug`, `trace`, or a tracing filter such as
    /// `info,rollouts=debug`.
    #[arg(long, env = "ROLLOUTS_LOG_LEVEL", default_value = "info")]
    pub log_level: String,
}

/// A flag value that is not a duration (the flag's text, trimmed).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DurationFlagError {
    #[error("{0:?}: a negative duration")]
    Negative(String),
    #[error("{0:?}: not a duration (a number of seconds, or e.g. 500ms, 2s, 1m30s, 1h)")]
    Invalid(String),
}

/// Flags that cannot be used together or at all.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum OptionsError {
    #[error("--qps must be a positive number (got {0})")]
    Qps(f32),
    #[error("--namespace must not be empty (omit it to watch all namespaces)")]
    EmptyNamespace,
    #[error(transparent)]
    LeaderElection(#[from] LeaseConfigError),
}

/// Parses a Go duration (`500ms`, `2s`, `1m30s`, `1h`) or a bare number of seconds: the
/// same parser as every other duration of the project ([`crate::api::parse_go_duration`]).
pub fn parse_duration(s: &str) -> Result<Duration, DurationFlagError> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    match crate::api::parse_go_duration(s) {
        Some(ns) if ns >= 0 => Ok(Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX))),
        Some(_) => Err(DurationFlagError::Negative(s.to_string())),
        None => Err(DurationFlagError::Invalid(s.to_string())),
    }
}

/// The Lease identity when none is given: `POD_NAME` (else the host name) and a random
/// suffix, so a restarted container never mistakes its predecessor's lease for its own.
pub fn default_identity() -> String {
    use std::hash::{BuildHasher, Hasher};
    let base = std::env::var("POD_NAME")
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|s| !s.is_empty()))
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
        })
        .unwrap_or_else(|| "rollouts-controller".into());
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    h.write_u32(std::process::id());
    format!("{base}_{:08x}", h.finish() as u32)
}

impl RunArgs {
    /// Checks the flags and resolves defaults. `default_namespace` is where the Lease lives
    /// when neither `--leader-election-namespace` nor `POD_NAMESPACE` says.
    pub fn options(&self, default_namespace: &str) -> Result<Options, OptionsError> {
        if !(self.qps.is_finite() && self.qps > 0.0) {
            return Err(OptionsError::Qps(self.qps));
        }
        if let Some(ns) = &self.namespace
            && ns.is_empty()
        {
            return Err(OptionsError::EmptyNamespace);
        }
        let leader_election = if self.leader_elect {
            let lease = LeaseConfig {
                name: self.leader_election_lease_name.clone(),
                namespace: self
                    .leader_election_namespace
                    .clone()
                    .or_else(|| std::env::var("POD_NAMESPACE").ok())
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| default_namespace.to_string()),
                identity: self
                    .leader_election_identity
                    .clone()
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(default_identity),
                lease_duration: self.leader_election_lease_duration,
                renew_deadline: self.leader_election_renew_deadline,
                retry_period: self.leader_election_retry_period,
            };
            lease.validate()?;
            Some(lease)
        } else {
            None
        };
        Ok(Options {
            namespace: self.namespace.clone(),
            instance_id: self.instance_id.clone().filter(|s| !s.is_empty()),
            rollout_concurrency: self.rollout_concurrency,
            analysis_concurrency: usize::from(self.analysis_concurrency),
            qps: self.qps,
            burst: self.burst,
            leader_election,
            metrics_addr: self.metrics_addr,
            healthz_addr: self.healthz_addr,
            notifications: NotificationOptions {
                namespace: self
                    .notifications_namespace
                    .clone()
                    .or_else(|| std::env::var("POD_NAMESPACE").ok())
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| default_namespace.to_string()),
                self_service: self.self_service_notification_enabled,
                queue: self.notifications_queue as usize,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("15s"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("10").is_ok());
        assert!(parse_duration("10x").is_err());
        assert!(parse_duration("s").is_err());
    }
}
