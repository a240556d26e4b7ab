//! Leader election on a `coordination.k8s.io/v1` Lease, with client-go's semantics.
//!
//! - **Acquire.** A candidate reads the Lease every retry period. It takes the Lease over only
//!   when it is free (no holder) or when the record has not changed for the lease's
//!   `leaseDurationSeconds`, measured on the candidate's own monotonic clock from the moment it
//!   first saw that record (never from the holder's `renewTime`, so clock skew between
//!   machines does not matter). Acquiring is an update carrying the `resourceVersion` read, so
//!   of two candidates racing for an expired Lease exactly one wins.
//! - **Hold.** The holder renews every retry period. Its right to act ends `renew_deadline`
//!   after the *start* of its last successful renewal (`renew_deadline < lease_duration`): at
//!   that instant the work future is dropped, in the same poll, whether or not the API server
//!   can be reached. A standby can only take over `lease_duration` after it saw that renewal,
//!   which is later still, so two holders never act together (the gap is the safety margin
//!   for requests already on the wire). A renewal that finds another holder in the Lease
//!   stops the work at once too.
//! - **Release.** On shutdown the work is stopped gracefully (bounded), then the Lease is
//!   handed back (holder cleared) so a standby takes over at its next retry instead of
//!   waiting for expiry. A crashed holder releases nothing: the standby waits out the lease.
//!
//! Why not `kube-lease-manager` (which builds with kube 5): its `watch()` channel only reports
//! changes it could confirm with the API server, so a holder that can no longer reach the
//! server is never told it lost the lease and would keep acting after a standby took over;
//! it judges expiry by comparing the holder's `renewTime` with the local wall clock; it has
//! no renew deadline and whole-second durations only. The loop here is about 300 lines.

use futures::FutureExt;
use futures::future::BoxFuture;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{oneshot, watch};
use tokio::time::{Instant, sleep, sleep_until};
use tracing::{debug, info, warn};

/// Where and how to elect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseConfig {
    /// Name of the Lease.
    pub name: String,
    /// Namespace of the Lease.
    pub namespace: String,
    /// This replica's identity (unique among replicas).
    pub identity: String,
    /// How long a standby waits after the last renewal it saw (written to the Lease, rounded
    /// up to whole seconds).
    pub lease_duration: Duration,
    /// How long the holder acts without a successful renewal.
    pub renew_deadline: Duration,
    /// Time between attempts.
    pub retry_period: Duration,
}

/// Leader election settings that cannot work.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LeaseConfigError {
    #[error("leader election needs a lease name, a namespace and an identity")]
    Incomplete,
    #[error("the leader election retry period must be positive")]
    ZeroRetryPeriod,
    #[error(
        "the leader election renew deadline ({renew_deadline:?}) must be longer than the retry period ({retry_period:?})"
    )]
    RenewDeadlineTooShort {
        renew_deadline: Duration,
        retry_period: Duration,
    },
    #[error(
        "the leader election lease duration ({lease_duration:?}) must be longer than the renew deadline ({renew_deadline:?})"
    )]
    LeaseDurationTooShort {
        lease_duration: Duration,
        renew_deadline: Duration,
    },
    #[error("the leader election lease duration is too long")]
    LeaseDurationTooLong,
}

impl LeaseConfig {
    /// `retry_period < renew_deadline < lease_duration`, all non-zero.
    pub fn validate(&self) -> Result<(), LeaseConfigError> {
        if self.name.is_empty() || self.namespace.is_empty() || self.identity.is_empty() {
            return Err(LeaseConfigError::Incomplete);
        }
        if self.retry_period.is_zero() {
            return Err(LeaseConfigError::ZeroRetryPeriod);
        }
        if self.renew_deadline <= self.retry_period {
            return Err(LeaseConfigError::RenewDeadlineTooShort {
                renew_deadline: self.renew_deadline,
                retry_period: self.retry_period,
            });
        }
        if self.lease_duration <= self.renew_deadline {
            return Err(LeaseConfigError::LeaseDurationTooShort {
                lease_duration: self.lease_duration,
                renew_deadline: self.renew_deadline,
            });
        }
        if self.lease_duration > Duration::from_secs(i32::MAX as u64) {
            return Err(LeaseConfigError::LeaseDurationTooLong);
        }
        Ok(())
    }

    fn lease_duration_seconds(&self) -> i32 {
        let secs =
            self.lease_duration.as_secs() + u64::from(self.lease_duration.subsec_nanos() > 0);
        i32::try_from(secs).unwrap_or(i32::MAX)
    }
}

/// This replica's part in the election.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The Lease has not been read yet (or could not be).
    Unknown,
    /// Another replica holds the Lease (or held it recently).
    Follower,
    /// This replica holds the Lease and runs the work.
    Leader,
}

/// How [`Elector::run`] ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Shutdown was asked for (or the work ended by itself); the work has stopped and the Lease
    /// was released if held.
    Finished,
    /// The Lease was lost while holding it; the work was dropped at once.
    Lost(String),
}

/// What one attempt found.
#[derive(Debug)]
enum Attempt {
    /// We hold the Lease (acquired or renewed).
    Held,
    /// Someone else holds a valid Lease.
    HeldBy(String),
    /// Our write lost a race (409): try again.
    Conflict,
}

/// The last Lease record seen, and when it was first seen with this content.
#[derive(Clone, Debug)]
struct Observed {
    spec: LeaseSpec,
    since: Instant,
}

/// Runs work while holding a Lease.
pub struct Elector {
    api: Api<Lease>,
    cfg: Arc<LeaseConfig>,
    role: watch::Sender<Role>,
    observed: Option<Observed>,
    /// Bound on stopping the work gracefully at shutdown before it is dropped.
    pub shutdown_grace: Duration,
}

impl Elector {
    /// An elector for `cfg` (assumed [validated](LeaseConfig::validate)).
    pub fn new(client: Client, cfg: LeaseConfig) -> Elector {
        let api = Api::namespaced(client, &cfg.namespace);
        Elector {
            api,
            cfg: Arc::new(cfg),
            role: watch::Sender::new(Role::Unknown),
            observed: None,
            shutdown_grace: Duration::from_secs(20),
        }
    }

    /// Follows this replica's role.
    pub fn subscribe(&self) -> watch::Receiver<Role> {
        self.role.subscribe()
    }

    /// The configuration.
    pub fn config(&self) -> &LeaseConfig {
        &self.cfg
    }

    fn set_role(&self, role: Role) {
        self.role.send_if_modified(|r| {
            let changed = *r != role;
            *r = role;
            changed
        });
    }

    /// Waits for the Lease, then runs `work(stop)` while holding it. `stop` resolves when
    /// shutdown begins; the work should then finish (it is dropped after
    /// [`shutdown_grace`](Elector::shutdown_grace)). Losing the Lease drops the work at once.
    pub async fn run<W, Fut>(mut self, work: W, shutdown: impl Future<Output = ()>) -> Outcome
    where
        W: FnOnce(BoxFuture<'static, ()>) -> Fut,
        Fut: Future<Output = ()>,
    {
        let mut shutdown = std::pin::pin!(shutdown);
        let retry = self.cfg.retry_period;
        // 1. Candidate.
        let acquired_at = loop {
            let started = Instant::now();
            let attempt = tokio::select! {
                biased;
                () = &mut shutdown => {
                    self.set_role(Role::Unknown);
                    return Outcome::Finished;
                }
                r = attempt(self.api.clone(), self.cfg.clone(), self.observed.take()) => r,
            };
            let (observed, result) = attempt;
            self.observed = observed;
            match result {
                Ok(Attempt::Held) => break started,
                Ok(Attempt::HeldBy(holder)) => {
                    if *self.role.borrow() != Role::Follower {
                        info!(lease = %self.cfg.name, %holder, "another replica leads; standing by");
                    }
                    self.set_role(Role::Follower);
                }
                Ok(Attempt::Conflict) => {
                    debug!(lease = %self.cfg.name, "lost a race for the lease")
                }
                Err(e) => warn!(lease = %self.cfg.name, "reading the lease: {e}"),
            }
            let wait = candidate_wait(self.expires_in(), retry);
            tokio::select! {
                biased;
                () = &mut shutdown => {
                    self.set_role(Role::Unknown);
                    return Outcome::Finished;
                }
                () = sleep(wait) => {}
            }
        };

        // 2. Leader.
        info!(lease = %self.cfg.name, identity = %self.cfg.identity, "acquired the lease; starting");
        self.set_role(Role::Leader);
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let mut stop_tx = Some(stop_tx);
        let stop: BoxFuture<'static, ()> = Box::pin(async move {
            let _ = stop_rx.await;
        });
        let mut work = Box::pin(work(stop));
        let mut last_renew = acquired_at;
        let mut next_renew = Instant::now() + retry;
        let mut in_flight: Option<(Instant, AttemptFuture)> = None;
        let mut grace_deadline: Option<Instant> = None;
        loop {
            let deadline = last_renew + self.cfg.renew_deadline;
            tokio::select! {
                biased;
                () = sleep_until(deadline) => {
                    self.set_role(Role::Unknown);
                    let why = format!("no renewal of the lease within {:?}", self.cfg.renew_deadline);
                    warn!(lease = %self.cfg.name, "{why}: stopping at once");
                    return Outcome::Lost(why);
                }
                (observed, result) = async { match in_flight.as_mut() {
                    Some((_, f)) => f.await,
                    None => std::future::pending().await,
                } } => {
                    let started = in_flight.take().map(|(s, _)| s).unwrap_or(last_renew);
                    self.observed = observed;
                    match result {
                        Ok(Attempt::Held) => last_renew = started,
                        Ok(Attempt::HeldBy(holder)) => {
                            self.set_role(Role::Follower);
                            let why = format!("the lease is held by {holder}");
                            warn!(lease = %self.cfg.name, "{why}: stopping at once");
                            return Outcome::Lost(why);
                        }
                        Ok(Attempt::Conflict) => debug!(lease = %self.cfg.name, "renewal conflict; retrying"),
                        Err(e) => warn!(lease = %self.cfg.name, "renewing the lease: {e}"),
                    }
                    next_renew = Instant::now() + retry;
                }
                () = sleep_until(next_renew), if in_flight.is_none() => {
                    let f = attempt(self.api.clone(), self.cfg.clone(), self.observed.take()).boxed();
                    in_flight = Some((Instant::now(), f));
                }
                () = &mut work => {
                    if grace_deadline.is_none() {
                        warn!(lease = %self.cfg.name, "the controllers stopped by themselves");
                    }
                    break;
                }
                () = &mut shutdown, if grace_deadline.is_none() => {
                    info!(lease = %self.cfg.name, "shutting down: stopping the controllers");
                    if let Some(tx) = stop_tx.take() {
                        let _ = tx.send(());
                    }
                    grace_deadline = Some(Instant::now() + self.shutdown_grace);
                }
                () = async { match grace_deadline {
                    Some(d) => sleep_until(d).await,
                    None => std::future::pending().await,
                } } => {
                    warn!(lease = %self.cfg.name, "the controllers did not stop within {:?}; dropping them", self.shutdown_grace);
                    break;
                }
            }
        }
        drop(in_flight);
        // Finished, or not stopped in time: dropped before the Lease is handed back.
        drop(work);
        self.set_role(Role::Unknown);
        self.release().await;
        Outcome::Finished
    }

    /// Time until the observed record of another holder expires (`None`: no such record).
    fn expires_in(&self) -> Option<Duration> {
        let o = self.observed.as_ref()?;
        let holder = o
            .spec
            .holder_identity
            .as_deref()
            .filter(|h| !h.is_empty())?;
        if holder == self.cfg.identity {
            return None;
        }
        let d = record_duration(&o.spec, &self.cfg);
        Some((o.since + d).saturating_duration_since(Instant::now()))
    }

    /// Hands the Lease back if we hold it.
    async fn release(&self) {
        let lease = match self.api.get_opt(&self.cfg.name).await {
            Ok(Some(l)) => l,
            Ok(None) => return,
            Err(e) => {
                warn!(lease = %self.cfg.name, "releasing the lease: {e}");
                return;
            }
        };
        let mut spec = lease.spec.clone().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(self.cfg.identity.as_str()) {
            return;
        }
        let now = MicroTime(k8s_openapi::jiff::Timestamp::now());
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(now.clone());
        spec.acquire_time = Some(now);
        let released = Lease {
            metadata: lease.metadata.clone(),
            spec: Some(spec),
        };
        match self
            .api
            .replace(&self.cfg.name, &PostParams::default(), &released)
            .await
        {
            Ok(_) => info!(lease = %self.cfg.name, "released the lease"),
            Err(e) => warn!(lease = %self.cfg.name, "releasing the lease: {e}"),
        }
    }
}

type AttemptFuture = BoxFuture<'static, (Option<Observed>, Result<Attempt, kube::Error>)>;

fn record_duration(spec: &LeaseSpec, cfg: &LeaseConfig) -> Duration {
    spec.lease_duration_seconds
        .and_then(|s| u64::try_from(s).ok())
        .filter(|s| *s > 0)
        .map(Duration::from_secs)
        .unwrap_or(cfg.lease_duration)
}

/// One read-and-maybe-write of the Lease. Returns the record now observed.
async fn attempt(
    api: Api<Lease>,
    cfg: Arc<LeaseConfig>,
    observed: Option<Observed>,
) -> (Option<Observed>, Result<Attempt, kube::Error>) {
    let now = MicroTime(k8s_openapi::jiff::Timestamp::now());
    let ours = |transitions: i32, acquire: MicroTime| LeaseSpec {
        holder_identity: Some(cfg.identity.clone()),
        lease_duration_seconds: Some(cfg.lease_duration_seconds()),
        acquire_time: Some(acquire),
        renew_time: Some(now.clone()),
        lease_transitions: Some(transitions),
        ..Default::default()
    };
    let lease = match api.get_opt(&cfg.name).await {
        Ok(Some(l)) => l,
        Ok(None) => {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(cfg.name.clone()),
                    namespace: Some(cfg.namespace.clone()),
                    ..Default::default()
                },
                spec: Some(ours(0, now.clone())),
            };
            return match api.create(&PostParams::default(), &lease).await {
                Ok(created) => (observe(None, created.spec), Ok(Attempt::Held)),
                Err(kube::Error::Api(e)) if e.code == 409 => (observed, Ok(Attempt::Conflict)),
                Err(e) => (observed, Err(e)),
            };
        }
        Err(e) => return (observed, Err(e)),
    };
    let spec = lease.spec.clone().unwrap_or_default();
    let observed = observe(observed, Some(spec.clone()));
    let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
    let is_ours = holder.as_deref() == Some(cfg.identity.as_str());
    if let Some(h) = &holder
        && !is_ours
    {
        let since = observed
            .as_ref()
            .map(|o| o.since)
            .unwrap_or_else(Instant::now);
        if since + record_duration(&spec, &cfg) > Instant::now() {
            return (observed, Ok(Attempt::HeldBy(h.clone())));
        }
        info!(lease = %cfg.name, previous = %h, "the lease expired; taking it over");
    }
    let transitions = spec.lease_transitions.unwrap_or(0);
    let new_spec = if is_ours {
        ours(
            transitions,
            spec.acquire_time.clone().unwrap_or_else(|| now.clone()),
        )
    } else {
        ours(transitions.saturating_add(1), now.clone())
    };
    let updated = Lease {
        metadata: lease.metadata.clone(),
        spec: Some(new_spec),
    };
    match api
        .replace(&cfg.name, &PostParams::default(), &updated)
        .await
    {
        Ok(written) => (observe(observed, written.spec), Ok(Attempt::Held)),
        Err(kube::Error::Api(e)) if e.code == 409 => (observed, Ok(Attempt::Conflict)),
        Err(e) => (observed, Err(e)),
    }
}

/// How long a candidate waits before its next attempt: until the instant the observed record
/// of another holder expires, if that comes before the next regular attempt, else the retry
/// period. A record that has already expired was acted on by the attempt just made (which
/// failed, or lost a race): the next try waits the retry period, so a candidate never spins
/// while the API server cannot be reached (it retried every 10 ms before; the chaos suite
/// found it).
fn candidate_wait(expires_in: Option<Duration>, retry: Duration) -> Duration {
    match expires_in {
        Some(d) if !d.is_zero() && d < retry => d + Duration::from_millis(10),
        _ => retry,
    }
}

/// The observation after seeing `spec`: the time it was first seen is kept while it is
/// unchanged.
fn observe(prev: Option<Observed>, spec: Option<LeaseSpec>) -> Option<Observed> {
    let spec = spec.unwrap_or_default();
    match prev {
        Some(p) if p.spec == spec => Some(p),
        _ => Some(Observed {
            spec,
            since: Instant::now(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> LeaseConfig {
        LeaseConfig {
            name: "l".into(),
            namespace: "ns".into(),
            identity: "me".into(),
            lease_duration: Duration::from_millis(2500),
            renew_deadline: Duration::from_secs(2),
            retry_period: Duration::from_millis(500),
        }
    }

    #[test]
    fn validation() {
        assert_eq!(cfg().validate(), Ok(()));
        assert_eq!(cfg().lease_duration_seconds(), 3);
        let mut c = cfg();
        c.renew_deadline = c.lease_duration;
        assert!(c.validate().is_err());
        let mut c = cfg();
        c.retry_period = c.renew_deadline;
        assert!(c.validate().is_err());
        let mut c = cfg();
        c.identity.clear();
        assert!(c.validate().is_err());
    }

    #[test]
    fn a_candidate_waits_for_the_expiry_or_the_retry_period_never_less() {
        let retry = Duration::from_millis(500);
        assert_eq!(candidate_wait(None, retry), retry);
        assert_eq!(
            candidate_wait(Some(Duration::from_millis(200)), retry),
            Duration::from_millis(210)
        );
        assert_eq!(candidate_wait(Some(Duration::from_secs(2)), retry), retry);
        // Expired already: the attempt just made saw it; no hot loop.
        assert_eq!(candidate_wait(Some(Duration::ZERO), retry), retry);
    }

    /// A standby that saw another holder's record expire while the API server stopped
    /// answering tries again once per retry period, not every 10 ms (found by the chaos
    /// suite: ~100 attempts a second during an API server restart).
    #[tokio::test(start_paused = true)]
    async fn a_standby_retries_at_the_retry_period_while_the_api_server_is_down() {
        use http::{Request, Response};
        use kube::client::Body;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let calls = Arc::new(AtomicUsize::new(0));
        let seen = calls.clone();
        let svc = tower::service_fn(move |_req: Request<Body>| {
            let n = seen.fetch_add(1, Ordering::SeqCst);
            async move {
                if n == 0 {
                    // The first read: another holder, whose record lasts 1 s.
                    let lease = serde_json::json!({
                        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                        "metadata": {"name": "l", "namespace": "ns", "resourceVersion": "1"},
                        "spec": {"holderIdentity": "other", "leaseDurationSeconds": 1}
                    });
                    Ok(Response::new(Body::from(
                        serde_json::to_vec(&lease).unwrap(),
                    )))
                } else {
                    Err::<Response<Body>, std::io::Error>(std::io::Error::new(
                        std::io::ErrorKind::ConnectionRefused,
                        "the API server is down",
                    ))
                }
            }
        });
        let client = Client::new(svc, "ns");
        let elector = Elector::new(client, cfg());
        let run = elector.run(|_stop| async {}, std::future::pending());
        let _ = tokio::time::timeout(Duration::from_secs(5), run).await;
        // 5 s at one attempt per 500 ms (plus the one at the expiry).
        let n = calls.load(Ordering::SeqCst);
        assert!(n <= 13, "{n} attempts in 5 s");
        assert!(n >= 8, "{n} attempts in 5 s");
    }

    #[tokio::test]
    async fn an_unchanged_record_keeps_its_first_sighting() {
        let spec = LeaseSpec {
            holder_identity: Some("other".into()),
            lease_duration_seconds: Some(5),
            ..Default::default()
        };
        let first = observe(None, Some(spec.clone())).unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        let again = observe(Some(first.clone()), Some(spec.clone())).unwrap();
        assert_eq!(again.since, first.since);
        let mut renewed = spec;
        renewed.renew_time = Some(MicroTime(k8s_openapi::jiff::Timestamp::now()));
        let after = observe(Some(first.clone()), Some(renewed)).unwrap();
        assert!(after.since > first.since);
    }
}
