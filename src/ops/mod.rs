//! Running the controller in production: the command line ([`cli`]), the rate-limited,
//! instrumented Kubernetes client ([`client`]), leader election ([`leader`]), Prometheus
//! metrics ([`metrics`]) and the HTTP endpoints ([`http`]), wired together by [`Process`].
//!
//! A [`Process`] runs the Rollout controller ([`crate::controller::run`]), the AnalysisRun
//! controller ([`crate::controller::analysis::run`]) and the Experiment controller
//! ([`crate::controller::experiment::run`]) — with leader election, only while holding the
//! Lease — and serves `/metrics`, `/healthz` and `/readyz` all along. Losing the Lease drops
//! the controllers at once and ends [`Process::run`] with
//! [`Error::LostLease`]: the binary then exits non-zero and Kubernetes restarts it as a
//! standby (as kube-controller-manager does), so nothing a controller spawned can outlive the
//! leadership it was started under.

pub mod cli;
pub mod client;
pub mod http;
pub mod leader;
pub mod metrics;

use crate::api::AnalysisRun;
use crate::controller::{self, WriteCounters};
use futures::StreamExt;
use futures::future::BoxFuture;
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Api, Client};
use leader::{Elector, LeaseConfig, Outcome, Role};
use metrics::Metrics;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tracing::{info, warn};

/// Everything `rollouts-controller run` is told (see [`cli::RunArgs`]).
#[derive(Clone, Debug)]
pub struct Options {
    /// Watch one namespace only; all when `None`.
    pub namespace: Option<String>,
    /// Upstream's sharding label value.
    pub instance_id: Option<String>,
    /// Rollouts reconciled at once.
    pub rollout_concurrency: u16,
    /// Analysis measurements in flight at once.
    pub analysis_concurrency: usize,
    /// Client-side rate limit (requests per second).
    pub qps: f32,
    /// Client-side burst.
    pub burst: u32,
    /// Leader election, when on.
    pub leader_election: Option<LeaseConfig>,
    /// Where `/metrics` is served.
    pub metrics_addr: SocketAddr,
    /// Where `/healthz` and `/readyz` are served.
    pub healthz_addr: SocketAddr,
    /// Where and how notifications are configured.
    pub notifications: NotificationOptions,
}

/// The process's notification settings (see [`crate::notify`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotificationOptions {
    /// Namespace of the notification ConfigMap and Secret.
    pub namespace: String,
    /// Also read the pair in each Rollout's namespace.
    pub self_service: bool,
    /// Queue capacity.
    pub queue: usize,
}

impl Default for NotificationOptions {
    fn default() -> Self {
        NotificationOptions {
            namespace: "argo-rollouts".into(),
            self_service: false,
            queue: 1024,
        }
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            namespace: None,
            instance_id: None,
            rollout_concurrency: 10,
            analysis_concurrency: 10,
            qps: 40.0,
            burst: 80,
            leader_election: None,
            metrics_addr: SocketAddr::from(([0, 0, 0, 0], 8090)),
            healthz_addr: SocketAddr::from(([0, 0, 0, 0], 8080)),
            notifications: NotificationOptions::default(),
        }
    }
}

/// Why a process stopped other than by being asked to.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("building the Kubernetes client: {0}")]
    Client(#[from] kube::Error),
    #[error("invalid leader election settings: {0}")]
    LeaderElection(#[source] leader::LeaseConfigError),
    #[error("listening on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("serving HTTP: {0}")]
    Serve(std::io::Error),
    #[error("lost the leader election lease ({0}); exiting so a standby can take over")]
    LostLease(String),
}

/// Bound on a graceful stop of the controllers (the chart gives the pod 30 s).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

/// The controller process: bound listeners, client, metrics, election.
pub struct Process {
    opts: Options,
    client: Client,
    metrics: Arc<Metrics>,
    writes: Arc<WriteCounters>,
    metrics_listener: TcpListener,
    /// `None` when the health address is the metrics address.
    health_listener: Option<TcpListener>,
    elector: Option<Elector>,
    role: Option<watch::Receiver<Role>>,
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, Error> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Listen { addr, source })
}

impl Process {
    /// Builds the client and binds the HTTP listeners (port 0 picks a free port).
    pub async fn bind(opts: Options, kube_config: kube::Config) -> Result<Process, Error> {
        let metrics = Arc::new(Metrics::new());
        // The Lease is renewed on a client of its own, never queued behind the controllers'
        // requests at the rate limit.
        let lease_client = client::build_unlimited(kube_config.clone(), Some(metrics.clone()))?;
        let client = client::build(kube_config, opts.qps, opts.burst, Some(metrics.clone()))?;
        let metrics_listener = bind(opts.metrics_addr).await?;
        let health_listener = if opts.healthz_addr == opts.metrics_addr {
            None
        } else {
            Some(bind(opts.healthz_addr).await?)
        };
        let elector = match &opts.leader_election {
            Some(cfg) => {
                cfg.validate().map_err(Error::LeaderElection)?;
                let mut e = Elector::new(lease_client, cfg.clone());
                e.shutdown_grace = SHUTDOWN_GRACE;
                Some(e)
            }
            None => None,
        };
        let role = elector.as_ref().map(Elector::subscribe);
        Ok(Process {
            opts,
            client,
            metrics,
            writes: Arc::new(WriteCounters::default()),
            metrics_listener,
            health_listener,
            elector,
            role,
        })
    }

    /// Where `/metrics` is served.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener.local_addr().ok()
    }

    /// Where `/healthz` and `/readyz` are served.
    pub fn healthz_addr(&self) -> Option<SocketAddr> {
        match &self.health_listener {
            Some(l) => l.local_addr().ok(),
            None => self.metrics_addr(),
        }
    }

    /// The Rollout controller's write counters.
    pub fn writes(&self) -> Arc<WriteCounters> {
        self.writes.clone()
    }

    /// The metrics.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// This replica's election role (`None` without leader election).
    pub fn role(&self) -> Option<watch::Receiver<Role>> {
        self.role.clone()
    }

    /// Runs until `shutdown` resolves (then stops the controllers gracefully, within 20 s, and
    /// releases the Lease) or the Lease is lost ([`Error::LostLease`], the controllers dropped
    /// at once).
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), Error> {
        let Process {
            opts,
            client,
            metrics,
            writes,
            metrics_listener,
            health_listener,
            elector,
            role,
        } = self;
        let health = http::Health {
            metrics: metrics.clone(),
            role: role.clone(),
        };
        let servers = async {
            let m = http::metrics_router(health.clone());
            let h = http::health_router(health.clone());
            let res = match health_listener {
                Some(hl) => {
                    futures::future::try_join(http::serve(metrics_listener, m), http::serve(hl, h))
                        .await
                        .map(|_| ())
                }
                None => http::serve(metrics_listener, m.merge(h)).await,
            };
            Error::Serve(
                res.err()
                    .unwrap_or_else(|| std::io::Error::other("the HTTP server stopped")),
            )
        };
        let follow_role = {
            let metrics = metrics.clone();
            let lease = opts.leader_election.as_ref().map(|l| l.name.clone());
            let mut role = role.clone();
            async move {
                let (Some(r), Some(lease)) = (role.as_mut(), lease) else {
                    return std::future::pending::<()>().await;
                };
                loop {
                    let leading = *r.borrow_and_update() == Role::Leader;
                    metrics.set_leader(&lease, leading);
                    if r.changed().await.is_err() {
                        return std::future::pending::<()>().await;
                    }
                }
            }
        };
        let work = {
            let opts = opts.clone();
            let metrics = metrics.clone();
            move |stop: BoxFuture<'static, ()>| controllers(client, opts, metrics, writes, stop)
        };
        let main = async move {
            match elector {
                Some(e) => match e.run(work, shutdown).await {
                    Outcome::Finished => Ok(()),
                    Outcome::Lost(why) => Err(Error::LostLease(why)),
                },
                None => {
                    let (tx, rx) = oneshot::channel::<()>();
                    let mut work = Box::pin(work(Box::pin(async move {
                        let _ = rx.await;
                    })));
                    tokio::select! {
                        () = &mut work => return Ok(()),
                        () = shutdown => {}
                    }
                    info!("shutting down: stopping the controllers");
                    let _ = tx.send(());
                    if tokio::time::timeout(SHUTDOWN_GRACE, work).await.is_err() {
                        warn!(
                            "the controllers did not stop within {SHUTDOWN_GRACE:?}; dropping them"
                        );
                    }
                    Ok(())
                }
            }
        };
        tokio::select! {
            r = main => r,
            e = servers => Err(e),
            () = follow_role => Ok(()),
        }
    }
}

/// The controllers, until `stop` resolves: the Rollout controller, the AnalysisRun controller,
/// the Experiment controller and the AnalysisRun cache the `analysis_run_*` gauges are
/// computed from.
async fn controllers(
    client: Client,
    opts: Options,
    metrics: Arc<Metrics>,
    writes: Arc<WriteCounters>,
    stop: BoxFuture<'static, ()>,
) {
    let (tx_rollouts, rx_rollouts) = oneshot::channel::<()>();
    let (tx_analysis, rx_analysis) = oneshot::channel::<()>();
    let (tx_runs, rx_runs) = oneshot::channel::<()>();
    let (tx_experiments, rx_experiments) = oneshot::channel::<()>();
    let fan_out = async move {
        stop.await;
        let _ = tx_rollouts.send(());
        let _ = tx_analysis.send(());
        let _ = tx_runs.send(());
        let _ = tx_experiments.send(());
    };
    let config = controller::Config {
        namespace: opts.namespace.clone(),
        instance_id: opts.instance_id.clone(),
        concurrency: opts.rollout_concurrency,
        observer: Some(metrics.clone()),
        notifications: Some({
            let mut n = crate::notify::Options::new(opts.notifications.namespace.clone());
            n.self_service = opts.notifications.self_service;
            n.queue_capacity = opts.notifications.queue;
            n.metrics = metrics.notifications();
            n
        }),
    };
    let experiment_config = controller::experiment::Config::from(&config);
    let mut analysis_config = controller::analysis::Config::from(&config);
    analysis_config.analysis_concurrency = opts.analysis_concurrency;
    metrics.attach_analysis(analysis_config.metrics.clone());
    info!(
        namespace = opts.namespace.as_deref().unwrap_or("(all)"),
        instance_id = opts.instance_id.as_deref().unwrap_or("(none)"),
        "starting the controllers"
    );
    let rollouts = controller::run(
        client.clone(),
        config,
        async move {
            let _ = rx_rollouts.await;
        },
        writes,
    );
    let analysis = controller::analysis::run(client.clone(), analysis_config, async move {
        let _ = rx_analysis.await;
    });
    let experiments = controller::experiment::run(client.clone(), experiment_config, async move {
        let _ = rx_experiments.await;
    });
    let runs_api: Api<AnalysisRun> = match &opts.namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let (reader, writer) = reflector::store::<AnalysisRun>();
    metrics.attach_runs(reader);
    let runs = async move {
        let wc = watcher::Config::default()
            .labels(&crate::api::instance_selector(opts.instance_id.as_deref()));
        let stream = watcher(runs_api, wc)
            .default_backoff()
            .modify(controller::slim::strip)
            .reflect(writer)
            .for_each(|ev| async move {
                if let Err(e) = ev {
                    tracing::debug!("watching AnalysisRuns for metrics: {e}");
                }
            });
        tokio::select! {
            () = stream => {}
            _ = rx_runs => {}
        }
    };
    tokio::join!(fan_out, rollouts, analysis, experiments, runs);
    info!("the controllers stopped");
}
