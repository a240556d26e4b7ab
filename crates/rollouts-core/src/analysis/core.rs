//! The AnalysisRun state machine (a port of upstream's `analysis/analysis.go` and
//! `utils/analysis/helpers.go`), pure: the time is an argument and measurements are inputs.
//!
//! One reconcile is:
//!
//! 1. [`begin`]: a completed run only waits for its `ttlStrategy` ([`Begin::Done`]); a run whose
//!    arguments or spec are invalid ends in Error ([`Begin::Done`]); otherwise the
//!    [`Prepared`] metrics and the [`Task`]s due at `now` ([`Begin::Measure`]): measurements to
//!    start, in-flight ones to resume, or — when the run is terminating — to terminate.
//! 2. The controller carries out the tasks with the providers, giving one [`Outcome`] each.
//! 3. [`finish`]: counts the outcomes into the metric results, assesses every metric and the
//!    run (phases, messages, `runSummary`, `dryRunSummary`), trims measurement history and says
//!    when to look again ([`Reconciled::requeue_at`]: the exact instant the next measurement is
//!    due, never a poll).
//!
//! Phases follow upstream: a metric is Failed when `failed > failureLimit` (default 0; -1
//! disables the limit), Inconclusive when `inconclusive > inconclusiveLimit` (default 0), Error
//! when `consecutiveError > consecutiveErrorLimit` (default 4), Successful when
//! `consecutiveSuccessLimit` (when > 0) consecutive measurements succeeded or when its count is
//! reached. A Failed, Error or Inconclusive metric ends the run early ("terminating": no new
//! measurements, in-flight ones are terminated); the run's phase is the worst of its metrics'
//! (Successful < Inconclusive < Error < Failed). Dry-run metrics never change the run's phase
//! and are counted in `dryRunSummary`.

use crate::analysis::args::{self, ArgError};
use crate::analysis::condition;
use crate::api::rollout::parse_go_duration;
use crate::api::{
    AnalysisRun, AnalysisRunStatus, Measurement, Metric, MetricResult, RunSummary,
    analysis_phase as phase,
};
use crate::plan::{Event, stamp};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// Measurements kept per metric when no `measurementRetention` rule applies.
pub const DEFAULT_MEASUREMENT_HISTORY_LIMIT: usize = 10;
/// Consecutive errors a metric tolerates when `consecutiveErrorLimit` is not set.
pub const DEFAULT_CONSECUTIVE_ERROR_LIMIT: i64 = 4;
/// Delay before retrying a measurement that ended in Error (upstream's).
pub const DEFAULT_ERROR_RETRY_INTERVAL: Duration = Duration::from_secs(10);

/// Event reasons (upstream's: `"Metric" + phase` and `"AnalysisRun" + phase`).
pub fn metric_event_reason(p: &str) -> String {
    format!("Metric{p}")
}

fn is_completed(p: Option<&str>) -> bool {
    p.is_some_and(phase::is_completed)
}

/// A duration string that is not a (non-negative) Go duration.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("negative duration {0:?}")]
    Negative(String),
    #[error("time: invalid duration {0:?}")]
    Invalid(String),
}

/// Parses a Go duration string (`30s`, `5m`, `1h30m`, `500ms`).
pub fn parse_duration(s: &str) -> Result<Duration, DurationError> {
    match parse_go_duration(s) {
        Some(ns) if ns >= 0 => Ok(Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX))),
        Some(_) => Err(DurationError::Negative(s.to_string())),
        None => Err(DurationError::Invalid(s.to_string())),
    }
}

/// Why a metric is invalid (upstream's `ValidateMetric` messages).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MetricError {
    #[error("{field}: invalid integer {text:?}")]
    Integer { field: &'static str, text: String },
    #[error("invalid interval string: {0}")]
    Interval(#[source] DurationError),
    #[error("invalid startDelay string: {0}")]
    StartDelay(#[source] DurationError),
    #[error("count must be >= failureLimit")]
    CountBelowFailureLimit,
    #[error("count must be >= inconclusiveLimit")]
    CountBelowInconclusiveLimit,
    #[error("count must be >= consecutiveSuccessLimit")]
    CountBelowConsecutiveSuccessLimit,
    #[error("interval must be specified when count > 1")]
    NoInterval,
    #[error("failureLimit must be >= -1")]
    FailureLimit,
    #[error("inconclusiveLimit must be >= 0")]
    InconclusiveLimit,
    #[error("consecutiveErrorLimit must be >= 0")]
    ConsecutiveErrorLimit,
    #[error("consecutiveSuccessLimit must be >= 0")]
    ConsecutiveSuccessLimit,
    #[error("failureLimit of -1 needs a consecutiveSuccessLimit > 0")]
    UnboundedWithoutSuccessLimit,
    #[error("no provider specified")]
    NoProvider,
    #[error("multiple providers specified")]
    MultipleProviders,
    #[error("{field}: {source}")]
    Condition {
        field: &'static str,
        #[source]
        source: condition::ConditionError,
    },
}

/// Why a run's metrics cannot be used (the run's status message).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PrepareError {
    #[error("Unable to resolve metric arguments: {0}")]
    Args(#[source] ArgError),
    #[error("Analysis spec invalid: no metrics specified")]
    NoMetrics,
    #[error("Analysis spec invalid: metrics[{index}]: duplicate name '{name}'")]
    DuplicateName { index: usize, name: String },
    #[error("Analysis spec invalid: metrics[{index}]: {source}")]
    Metric {
        index: usize,
        #[source]
        source: MetricError,
    },
    #[error("Analysis spec invalid: dryRun[{0}]: Rule didn't match any metric name(s)")]
    DryRunUnmatched(usize),
    #[error(
        "Analysis spec invalid: measurementRetention[{0}]: Rule didn't match any metric name(s)"
    )]
    RetentionUnmatched(usize),
}

fn int_value(v: &Option<IntOrString>, field: &'static str) -> Result<Option<i64>, MetricError> {
    match v {
        None => Ok(None),
        Some(IntOrString::Int(i)) => Ok(Some(i64::from(*i))),
        Some(IntOrString::String(s)) => {
            s.trim()
                .parse::<i64>()
                .map(Some)
                .map_err(|_| MetricError::Integer {
                    field,
                    text: s.clone(),
                })
        }
    }
}

fn after(t: Timestamp, d: Duration) -> Timestamp {
    let d = SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX);
    t.checked_add(d).unwrap_or(Timestamp::MAX)
}

/// The numbers a metric is scheduled and judged by, parsed once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetricSettings {
    pub name: String,
    pub interval: Option<Duration>,
    pub initial_delay: Option<Duration>,
    pub count: Option<i64>,
    pub failure_limit: i64,
    pub inconclusive_limit: i64,
    pub consecutive_error_limit: i64,
    pub consecutive_success_limit: i64,
}

impl MetricSettings {
    /// Parses and validates a metric (upstream's `ValidateMetric`), after argument resolution.
    pub fn from_metric(m: &Metric) -> Result<MetricSettings, MetricError> {
        let count = int_value(&m.count, "count")?;
        let failure_limit = int_value(&m.failure_limit, "failureLimit")?.unwrap_or(0);
        let inconclusive_limit =
            int_value(&m.inconclusive_limit, "inconclusiveLimit")?.unwrap_or(0);
        let consecutive_error_limit =
            int_value(&m.consecutive_error_limit, "consecutiveErrorLimit")?
                .unwrap_or(DEFAULT_CONSECUTIVE_ERROR_LIMIT);
        let consecutive_success_limit =
            int_value(&m.consecutive_success_limit, "consecutiveSuccessLimit")?.unwrap_or(0);
        let interval = match m.interval.as_deref().filter(|s| !s.is_empty()) {
            Some(s) => Some(parse_duration(s).map_err(MetricError::Interval)?),
            None => None,
        };
        let initial_delay = match m.initial_delay.as_deref().filter(|s| !s.is_empty()) {
            Some(s) => Some(parse_duration(s).map_err(MetricError::StartDelay)?),
            None => None,
        };
        let c = count.unwrap_or(0);
        if c > 0 {
            if c < failure_limit {
                return Err(MetricError::CountBelowFailureLimit);
            }
            if c < inconclusive_limit {
                return Err(MetricError::CountBelowInconclusiveLimit);
            }
            if c < consecutive_success_limit {
                return Err(MetricError::CountBelowConsecutiveSuccessLimit);
            }
        }
        if c > 1 && interval.is_none() {
            return Err(MetricError::NoInterval);
        }
        if failure_limit < -1 {
            return Err(MetricError::FailureLimit);
        }
        if inconclusive_limit < 0 {
            return Err(MetricError::InconclusiveLimit);
        }
        if consecutive_error_limit < 0 {
            return Err(MetricError::ConsecutiveErrorLimit);
        }
        if consecutive_success_limit < 0 {
            return Err(MetricError::ConsecutiveSuccessLimit);
        }
        if failure_limit == -1 && consecutive_success_limit == 0 {
            return Err(MetricError::UnboundedWithoutSuccessLimit);
        }
        let providers = m.provider.as_ref().map(provider_count).unwrap_or(0);
        if providers == 0 {
            return Err(MetricError::NoProvider);
        }
        if providers > 1 {
            return Err(MetricError::MultipleProviders);
        }
        for (field, cond) in [
            ("successCondition", &m.success_condition),
            ("failureCondition", &m.failure_condition),
        ] {
            if let Some(c) = cond.as_deref().filter(|c| !c.trim().is_empty()) {
                condition::check_syntax(c)
                    .map_err(|source| MetricError::Condition { field, source })?;
            }
        }
        Ok(MetricSettings {
            name: m.name.clone().unwrap_or_default(),
            interval,
            initial_delay,
            count,
            failure_limit,
            inconclusive_limit,
            consecutive_error_limit,
            consecutive_success_limit,
        })
    }

    /// How many measurements the metric takes: `count`, or 1 when neither `count` nor
    /// `interval` is set, or unbounded (`None`) with only an interval.
    pub fn effective_count(&self) -> Option<i64> {
        match self.count {
            None | Some(0) if self.interval.is_none() => Some(1),
            None | Some(0) => None,
            Some(c) => Some(c),
        }
    }
}

/// Number of providers a metric names (exactly one is valid).
pub fn provider_count(p: &crate::api::MetricProvider) -> usize {
    [
        p.prometheus.is_some(),
        p.kayenta.is_some(),
        p.web.is_some(),
        p.datadog.is_some(),
        p.wavefront.is_some(),
        p.new_relic.is_some(),
        p.job.is_some(),
        p.cloud_watch.is_some(),
        p.graphite.is_some(),
        p.influxdb.is_some(),
        p.skywalking.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count()
        + p.plugin.as_ref().map(|m| m.len()).unwrap_or(0)
}

/// Whether a `dryRun`/`measurementRetention` rule names a metric: `*` is every metric, anything
/// else is an (unanchored) regular expression, as upstream.
pub fn rule_matches(pattern: &str, name: &str) -> bool {
    pattern == "*" || regex::Regex::new(pattern).is_ok_and(|r| r.is_match(name))
}

/// A run's metrics, ready to schedule.
#[derive(Clone, Debug, PartialEq)]
pub struct Prepared {
    /// `spec.metrics` with arguments resolved (secrets as [`args::SECRET_PLACEHOLDER`]).
    pub metrics: Vec<Metric>,
    /// The settings of each metric, in the same order.
    pub settings: Vec<MetricSettings>,
    /// Names of the dry-run metrics.
    pub dry_run: BTreeSet<String>,
    /// Measurements kept per metric, where a retention rule applies.
    pub retention: BTreeMap<String, usize>,
}

/// Resolves and validates a run's metrics. The error is the run's status message.
pub fn prepare(run: &AnalysisRun) -> Result<Prepared, PrepareError> {
    let spec = &run.spec;
    let raw = spec.metrics.clone().unwrap_or_default();
    let args = spec.args.clone().unwrap_or_default();
    let metrics = args::resolve_metrics_without_secrets(&raw, &args).map_err(PrepareError::Args)?;
    if metrics.is_empty() {
        return Err(PrepareError::NoMetrics);
    }
    let mut seen = BTreeSet::new();
    let mut settings = Vec::with_capacity(metrics.len());
    for (i, m) in metrics.iter().enumerate() {
        let name = m.name.clone().unwrap_or_default();
        if !seen.insert(name.clone()) {
            return Err(PrepareError::DuplicateName { index: i, name });
        }
        settings.push(
            MetricSettings::from_metric(m)
                .map_err(|source| PrepareError::Metric { index: i, source })?,
        );
    }
    let mut dry_run = BTreeSet::new();
    for (i, rule) in spec.dry_run.iter().flatten().enumerate() {
        let pattern = rule.metric_name.as_deref().unwrap_or_default();
        let matched: Vec<&String> = seen.iter().filter(|n| rule_matches(pattern, n)).collect();
        if matched.is_empty() {
            return Err(PrepareError::DryRunUnmatched(i));
        }
        dry_run.extend(matched.into_iter().cloned());
    }
    let mut retention = BTreeMap::new();
    for (i, rule) in spec.measurement_retention.iter().flatten().enumerate() {
        let pattern = rule.metric_name.as_deref().unwrap_or_default();
        let limit = rule.limit.unwrap_or(0);
        let mut matched = 0;
        for n in seen.iter().filter(|n| rule_matches(pattern, n)) {
            matched += 1;
            if limit > 0 {
                retention.insert(n.clone(), usize::try_from(limit).unwrap_or(usize::MAX));
            }
        }
        if matched == 0 {
            return Err(PrepareError::RetentionUnmatched(i));
        }
    }
    Ok(Prepared {
        metrics,
        settings,
        dry_run,
        retention,
    })
}

fn result_of<'a>(status: &'a AnalysisRunStatus, name: &str) -> Option<&'a MetricResult> {
    status
        .metric_results
        .as_ref()?
        .iter()
        .find(|r| r.name.as_deref() == Some(name))
}

fn last_measurement<'a>(status: &'a AnalysisRunStatus, name: &str) -> Option<&'a Measurement> {
    result_of(status, name)?.measurements.as_ref()?.last()
}

/// Whether the run is ending: `spec.terminate`, or a (non dry-run) metric already Failed,
/// Error or Inconclusive.
pub fn is_terminating(run_terminate: bool, status: &AnalysisRunStatus) -> bool {
    run_terminate
        || status.metric_results.iter().flatten().any(|r| {
            r.dry_run != Some(true)
                && matches!(
                    r.phase.as_deref(),
                    Some(phase::FAILED | phase::ERROR | phase::INCONCLUSIVE)
                )
        })
}

/// What to do with a metric now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskKind {
    /// Take a new measurement.
    Start,
    /// Check on the in-flight measurement (e.g. a Job still running).
    Resume,
    /// Stop the in-flight measurement: the run is terminating.
    Terminate,
}

/// One metric to measure now.
#[derive(Clone, Debug, PartialEq)]
pub struct Task {
    /// Index into `spec.metrics` (and [`Prepared::metrics`]).
    pub index: usize,
    /// The metric's name.
    pub name: String,
    pub kind: TaskKind,
    /// The in-flight measurement, for [`TaskKind::Resume`] and [`TaskKind::Terminate`].
    pub incomplete: Option<Measurement>,
}

/// The tasks due at `now` (upstream's `generateMetricTasks`).
pub fn generate_tasks(run: &AnalysisRun, prepared: &Prepared, now: Timestamp) -> Vec<Task> {
    let status = run.status.clone().unwrap_or_default();
    let terminating = is_terminating(run.spec.terminate == Some(true), &status);
    let mut tasks = Vec::new();
    for (index, s) in prepared.settings.iter().enumerate() {
        let result = result_of(&status, &s.name);
        if result.is_some_and(|r| is_completed(r.phase.as_deref())) {
            continue;
        }
        let last = last_measurement(&status, &s.name);
        if let Some(l) = last
            && l.finished_at.is_none()
        {
            if l.resume_at.as_ref().is_some_and(|r| r.0 > now) {
                continue;
            }
            tasks.push(Task {
                index,
                name: s.name.clone(),
                kind: if terminating {
                    TaskKind::Terminate
                } else {
                    TaskKind::Resume
                },
                incomplete: Some(l.clone()),
            });
            continue;
        }
        if terminating {
            continue;
        }
        let Some(last) = last else {
            if let Some(delay) = s.initial_delay {
                match &status.started_at {
                    Some(started) if after(started.0, delay) <= now => {}
                    _ => continue,
                }
            }
            tasks.push(Task {
                index,
                name: s.name.clone(),
                kind: TaskKind::Start,
                incomplete: None,
            });
            continue;
        };
        let count = result.and_then(|r| r.count).unwrap_or(0);
        if s.effective_count().is_some_and(|c| i64::from(count) >= c) {
            continue;
        }
        let interval = if last.phase.as_deref() == Some(phase::ERROR) {
            DEFAULT_ERROR_RETRY_INTERVAL
        } else {
            s.interval.unwrap_or(DEFAULT_ERROR_RETRY_INTERVAL)
        };
        let Some(finished) = &last.finished_at else {
            continue;
        };
        if after(finished.0, interval) <= now {
            tasks.push(Task {
                index,
                name: s.name.clone(),
                kind: TaskKind::Start,
                incomplete: None,
            });
        }
    }
    tasks
}

/// The result of carrying out one [`Task`].
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    pub task: Task,
    /// The new (or updated in-flight) measurement. Secret values must already be redacted.
    pub measurement: Measurement,
    /// Provider metadata for the metric's result, set when the result is created (e.g.
    /// `ResolvedPrometheusQuery`).
    pub metadata: Option<BTreeMap<String, String>>,
}

/// What one reconcile decided.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Reconciled {
    /// The run's new status (written when it differs).
    pub status: AnalysisRunStatus,
    /// Events to record on the run.
    pub events: Vec<Event>,
    /// When to reconcile again even if nothing changes: the next measurement, the end of an
    /// initial delay, a `resumeAt`, or the TTL of a completed run.
    pub requeue_at: Option<Timestamp>,
    /// The run's `ttlStrategy` expired: delete it.
    pub delete: bool,
}

/// The start of a reconcile.
#[derive(Clone, Debug, PartialEq)]
pub enum Begin {
    /// Nothing to measure: the run is complete (or just ended in Error).
    Done(Reconciled),
    /// Take these measurements, then call [`finish`].
    Measure {
        prepared: Prepared,
        tasks: Vec<Task>,
    },
}

/// When a completed run's `ttlStrategy` deletes it.
pub fn ttl_deadline(run: &AnalysisRun) -> Option<Timestamp> {
    let status = run.status.as_ref()?;
    let p = status.phase.as_deref()?;
    if !phase::is_completed(p) {
        return None;
    }
    let ttl = run.spec.ttl_strategy.as_ref()?;
    let completed = status.completed_at.as_ref()?.0;
    let secs = match p {
        phase::SUCCESSFUL if ttl.seconds_after_success.is_some() => ttl.seconds_after_success,
        phase::FAILED if ttl.seconds_after_failure.is_some() => ttl.seconds_after_failure,
        _ => ttl.seconds_after_completion,
    }?;
    Some(after(
        completed,
        Duration::from_secs(u64::try_from(secs.max(0)).unwrap_or(0)),
    ))
}

fn completion_event(p: &str) -> Event {
    let reason = format!("AnalysisRun{p}");
    let msg = format!("Analysis Completed. Result: {p}");
    if matches!(p, phase::ERROR | phase::FAILED) {
        Event::warning(&reason, msg)
    } else {
        Event::normal(&reason, msg)
    }
}

/// Ends the run in Error with `message` (invalid spec, unresolvable arguments, missing secret).
pub fn fail_run(run: &AnalysisRun, message: &str, now: Timestamp) -> Reconciled {
    let mut status = run.status.clone().unwrap_or_default();
    status.phase = Some(phase::ERROR.into());
    status.message = Some(message.to_string());
    if status.completed_at.is_none() {
        status.completed_at = Some(stamp(now));
    }
    let mut out = Reconciled {
        status,
        events: vec![completion_event(phase::ERROR)],
        ..Default::default()
    };
    let mut done = run.clone();
    done.status = Some(out.status.clone());
    out.requeue_at = ttl_deadline(&done);
    out
}

/// Starts a reconcile at `now`.
pub fn begin(run: &AnalysisRun, now: Timestamp) -> Begin {
    let status = run.status.clone().unwrap_or_default();
    if is_completed(status.phase.as_deref()) {
        let deadline = ttl_deadline(run);
        let expired = deadline.is_some_and(|d| d <= now);
        return Begin::Done(Reconciled {
            status,
            events: vec![],
            requeue_at: if expired { None } else { deadline },
            delete: expired,
        });
    }
    match prepare(run) {
        Ok(prepared) => {
            let tasks = generate_tasks(run, &prepared, now);
            Begin::Measure { prepared, tasks }
        }
        Err(e) => Begin::Done(fail_run(run, &e.to_string(), now)),
    }
}

/// The counters of a metric result as plain numbers.
#[derive(Clone, Copy, Debug, Default)]
struct Counters {
    count: i32,
    successful: i32,
    failed: i32,
    inconclusive: i32,
    error: i32,
    consecutive_error: i32,
    consecutive_success: i32,
}

fn nz(v: i32) -> Option<i32> {
    (v != 0).then_some(v)
}

impl Counters {
    fn of(r: &MetricResult) -> Counters {
        Counters {
            count: r.count.unwrap_or(0),
            successful: r.successful.unwrap_or(0),
            failed: r.failed.unwrap_or(0),
            inconclusive: r.inconclusive.unwrap_or(0),
            error: r.error.unwrap_or(0),
            consecutive_error: r.consecutive_error.unwrap_or(0),
            consecutive_success: r.consecutive_success.unwrap_or(0),
        }
    }
    fn store(self, r: &mut MetricResult) {
        r.count = nz(self.count);
        r.successful = nz(self.successful);
        r.failed = nz(self.failed);
        r.inconclusive = nz(self.inconclusive);
        r.error = nz(self.error);
        r.consecutive_error = nz(self.consecutive_error);
        r.consecutive_success = nz(self.consecutive_success);
    }
}

fn apply_outcome(status: &mut AnalysisRunStatus, prepared: &Prepared, o: Outcome, now: Timestamp) {
    let results = status.metric_results.get_or_insert_with(Vec::new);
    let pos = results
        .iter()
        .position(|r| r.name.as_deref() == Some(o.task.name.as_str()));
    let mut result = match pos {
        Some(i) => results[i].clone(),
        None => MetricResult {
            name: Some(o.task.name.clone()),
            phase: Some(phase::RUNNING.into()),
            dry_run: prepared.dry_run.contains(&o.task.name).then_some(true),
            metadata: o.metadata.clone().filter(|m| !m.is_empty()),
            ..Default::default()
        },
    };
    let mut m = o.measurement;
    if o.task.kind == TaskKind::Terminate && m.phase.as_deref() == Some(phase::SUCCESSFUL) {
        m.message = Some("Metric Terminated".into());
    }
    if is_completed(m.phase.as_deref()) {
        if m.finished_at.is_none() {
            m.finished_at = Some(stamp(now));
        }
        let mut c = Counters::of(&result);
        match m.phase.as_deref() {
            Some(phase::SUCCESSFUL) => {
                c.successful += 1;
                c.count += 1;
                c.consecutive_error = 0;
                c.consecutive_success += 1;
            }
            Some(phase::FAILED) => {
                c.failed += 1;
                c.count += 1;
                c.consecutive_error = 0;
                c.consecutive_success = 0;
            }
            Some(phase::INCONCLUSIVE) => {
                c.inconclusive += 1;
                c.count += 1;
                c.consecutive_error = 0;
                c.consecutive_success = 0;
            }
            _ => {
                c.error += 1;
                c.consecutive_error += 1;
                c.consecutive_success = 0;
            }
        }
        c.store(&mut result);
    }
    let ms = result.measurements.get_or_insert_with(Vec::new);
    match o.task.kind {
        TaskKind::Resume | TaskKind::Terminate if !ms.is_empty() => {
            let last = ms.len() - 1;
            ms[last] = m;
        }
        _ => ms.push(m),
    }
    match pos {
        Some(i) => results[i] = result,
        None => results.push(result),
    }
}

/// Upstream's `assessMetricFailureInconclusiveOrError`: the phase a metric's limits force, and
/// why (the last applicable limit wins: Error over Inconclusive over Failed).
pub fn limit_breach(s: &MetricSettings, r: &MetricResult) -> (Option<&'static str>, String) {
    let c = Counters::of(r);
    let mut out = (None, String::new());
    if s.failure_limit >= 0 && i64::from(c.failed) > s.failure_limit {
        out = (
            Some(phase::FAILED),
            format!("failed ({}) > failureLimit ({})", c.failed, s.failure_limit),
        );
    }
    if i64::from(c.inconclusive) > s.inconclusive_limit {
        out = (
            Some(phase::INCONCLUSIVE),
            format!(
                "inconclusive ({}) > inconclusiveLimit ({})",
                c.inconclusive, s.inconclusive_limit
            ),
        );
    }
    if i64::from(c.consecutive_error) > s.consecutive_error_limit {
        out = (
            Some(phase::ERROR),
            format!(
                "consecutiveErrors ({}) > consecutiveErrorLimit ({})",
                c.consecutive_error, s.consecutive_error_limit
            ),
        );
    }
    out
}

/// Upstream's `assessMetricStatus`: a metric's phase from its measurements and limits.
pub fn assess_metric(s: &MetricSettings, r: &MetricResult, terminating: bool) -> &'static str {
    if let Some(p) = r.phase.as_deref().filter(|p| phase::is_completed(p)) {
        return static_phase(p);
    }
    let Some(last) = r.measurements.as_ref().and_then(|m| m.last()) else {
        return if terminating {
            phase::SUCCESSFUL
        } else {
            phase::PENDING
        };
    };
    if !is_completed(last.phase.as_deref()) {
        return phase::RUNNING;
    }
    if let (Some(p), _) = limit_breach(s, r) {
        return p;
    }
    let c = Counters::of(r);
    let success_applicable = s.consecutive_success_limit > 0;
    if success_applicable && i64::from(c.consecutive_success) >= s.consecutive_success_limit {
        return phase::SUCCESSFUL;
    }
    if s.effective_count().is_some_and(|n| i64::from(c.count) >= n) {
        let failure_applicable = s.failure_limit >= 0;
        return match (failure_applicable, success_applicable) {
            (true, true) => phase::INCONCLUSIVE,
            (false, true) => phase::FAILED,
            _ => phase::SUCCESSFUL,
        };
    }
    if terminating {
        return phase::SUCCESSFUL;
    }
    phase::RUNNING
}

fn static_phase(p: &str) -> &'static str {
    match p {
        phase::SUCCESSFUL => phase::SUCCESSFUL,
        phase::FAILED => phase::FAILED,
        phase::ERROR => phase::ERROR,
        phase::INCONCLUSIVE => phase::INCONCLUSIVE,
        phase::RUNNING => phase::RUNNING,
        _ => phase::PENDING,
    }
}

const ORDER: [&str; 6] = [
    phase::SUCCESSFUL,
    phase::RUNNING,
    phase::PENDING,
    phase::INCONCLUSIVE,
    phase::ERROR,
    phase::FAILED,
];

/// Whether `new` is a worse phase than `current`.
pub fn is_worse(current: &str, new: &str) -> bool {
    let idx = |p: &str| ORDER.iter().position(|o| *o == p).unwrap_or(0);
    idx(new) > idx(current)
}

#[derive(Default)]
struct Summary {
    count: i32,
    successful: i32,
    failed: i32,
    inconclusive: i32,
    error: i32,
}

impl Summary {
    fn add(&mut self, limit_phase: Option<&str>) {
        match limit_phase {
            Some(phase::ERROR) => self.error += 1,
            Some(phase::FAILED) => self.failed += 1,
            Some(phase::INCONCLUSIVE) => self.inconclusive += 1,
            _ => self.successful += 1,
        }
    }
    fn into_status(self) -> RunSummary {
        RunSummary {
            count: nz(self.count),
            successful: nz(self.successful),
            failed: nz(self.failed),
            inconclusive: nz(self.inconclusive),
            error: nz(self.error),
        }
    }
}

/// Upstream's `assessRunStatus`: updates every metric result's phase (recording an event per
/// completed metric), the summaries and `startedAt`; returns the run's phase and message.
fn assess_run(
    run_terminate: bool,
    status: &mut AnalysisRunStatus,
    prepared: &Prepared,
    events: &mut Vec<Event>,
    now: Timestamp,
) -> (&'static str, String) {
    let terminating = is_terminating(run_terminate, status);
    if status.started_at.is_none() {
        status.started_at = Some(stamp(now));
    }
    let mut worst: Option<&'static str> = None;
    let mut worst_message = if run_terminate {
        "Run Terminated".to_string()
    } else {
        String::new()
    };
    let mut summary = Summary::default();
    let mut dry_summary = Summary::default();
    let mut everything_completed = true;
    for s in &prepared.settings {
        let dry = prepared.dry_run.contains(&s.name);
        if dry {
            dry_summary.count += 1;
        } else {
            summary.count += 1;
        }
        let results = status.metric_results.get_or_insert_with(Vec::new);
        let Some(result) = results
            .iter_mut()
            .find(|r| r.name.as_deref() == Some(s.name.as_str()))
        else {
            everything_completed = false;
            continue;
        };
        let metric_phase = assess_metric(s, result, terminating);
        if result.phase.as_deref() != Some(metric_phase) {
            if phase::is_completed(metric_phase) {
                let reason = metric_event_reason(metric_phase);
                let msg = format!("Metric '{}' Completed. Result: {metric_phase}", s.name);
                events.push(if matches!(metric_phase, phase::ERROR | phase::FAILED) {
                    Event::warning(&reason, msg)
                } else {
                    Event::normal(&reason, msg)
                });
            }
            if let Some(last) = result.measurements.as_ref().and_then(|m| m.last()) {
                result.message = last.message.clone();
            }
            result.phase = Some(metric_phase.into());
        }
        if !phase::is_completed(metric_phase) {
            everything_completed = false;
            continue;
        }
        let (limit_phase, why) = limit_breach(s, result);
        if !dry {
            if worst.is_none_or(|w| is_worse(w, metric_phase)) {
                worst = Some(metric_phase);
                if !why.is_empty() {
                    worst_message =
                        format!("Metric \"{}\" assessed {metric_phase} due to {why}", s.name);
                    if let Some(m) = result.message.as_deref().filter(|m| !m.is_empty()) {
                        worst_message.push_str(&format!(": \"Error Message: {m}\""));
                    }
                }
            }
            summary.add(limit_phase);
        } else {
            if worst.is_none() {
                worst = Some(phase::SUCCESSFUL);
            }
            if !why.is_empty() {
                result.message = Some(format!("Metric assessed {metric_phase} due to {why}"));
            }
            dry_summary.add(limit_phase);
        }
    }
    status.run_summary = Some(summary.into_status());
    status.dry_run_summary = Some(dry_summary.into_status());
    let worst_message = worst_message.trim().to_string();
    if terminating {
        return (worst.unwrap_or(phase::SUCCESSFUL), worst_message);
    }
    match worst {
        Some(w) if everything_completed => (w, worst_message),
        _ => (phase::RUNNING, String::new()),
    }
}

/// The earliest instant a metric needs attention (upstream's `calculateNextReconcileTime`).
pub fn next_reconcile(
    status: &AnalysisRunStatus,
    prepared: &Prepared,
    now: Timestamp,
) -> Option<Timestamp> {
    let mut at: Option<Timestamp> = None;
    let mut earliest = |t: Timestamp| {
        if at.is_none_or(|a| t < a) {
            at = Some(t);
        }
    };
    for s in &prepared.settings {
        let result = result_of(status, &s.name);
        if result.is_some_and(|r| is_completed(r.phase.as_deref())) {
            continue;
        }
        let Some(last) = last_measurement(status, &s.name) else {
            if let Some(delay) = s.initial_delay {
                let start = status.started_at.as_ref().map(|t| t.0).unwrap_or(now);
                earliest(after(start, delay));
            }
            continue;
        };
        let Some(finished) = &last.finished_at else {
            if let Some(r) = &last.resume_at {
                earliest(r.0);
            }
            continue;
        };
        let count = result.and_then(|r| r.count).unwrap_or(0);
        if s.effective_count().is_some_and(|c| i64::from(count) >= c) {
            continue;
        }
        let interval = if last.phase.as_deref() == Some(phase::ERROR) {
            DEFAULT_ERROR_RETRY_INTERVAL
        } else if let Some(i) = s.interval {
            i
        } else {
            continue;
        };
        earliest(after(finished.0, interval));
    }
    at
}

/// Trims each metric's measurements to its retention limit (oldest first).
pub fn trim_measurements(status: &mut AnalysisRunStatus, prepared: &Prepared) {
    for r in status.metric_results.iter_mut().flatten() {
        let name = r.name.clone().unwrap_or_default();
        let limit = prepared
            .retention
            .get(&name)
            .copied()
            .unwrap_or(DEFAULT_MEASUREMENT_HISTORY_LIMIT);
        if let Some(ms) = r.measurements.as_mut()
            && ms.len() > limit
        {
            let drop = ms.len() - limit;
            ms.drain(..drop);
        }
    }
}

/// Ends a reconcile: folds `outcomes` into the status and assesses the run at `now`.
pub fn finish(
    run: &AnalysisRun,
    prepared: &Prepared,
    outcomes: Vec<Outcome>,
    now: Timestamp,
) -> Reconciled {
    let mut status = run.status.clone().unwrap_or_default();
    for o in outcomes {
        apply_outcome(&mut status, prepared, o, now);
    }
    let mut events = Vec::new();
    let run_terminate = run.spec.terminate == Some(true);
    let (new_phase, message) = assess_run(run_terminate, &mut status, prepared, &mut events, now);
    if status.phase.as_deref() != Some(new_phase) {
        status.phase = Some(new_phase.into());
        status.message = (!message.is_empty()).then_some(message);
        if phase::is_completed(new_phase) {
            events.push(completion_event(new_phase));
            if status.completed_at.is_none() {
                status.completed_at = Some(stamp(now));
            }
        }
    }
    trim_measurements(&mut status, prepared);
    let requeue_at = if phase::is_completed(new_phase) {
        let mut done = run.clone();
        done.status = Some(status.clone());
        ttl_deadline(&done)
    } else {
        next_reconcile(&status, prepared, now)
    };
    Reconciled {
        status,
        events,
        requeue_at,
        delete: false,
    }
}

/// Runs a whole reconcile with `measure` standing in for the providers (tests, simulations).
pub fn reconcile_with(
    run: &AnalysisRun,
    now: Timestamp,
    mut measure: impl FnMut(&Task, &Metric) -> Measurement,
) -> Reconciled {
    match begin(run, now) {
        Begin::Done(r) => r,
        Begin::Measure { prepared, tasks } => {
            let outcomes = tasks
                .into_iter()
                .map(|t| {
                    let m = measure(&t, &prepared.metrics[t.index]);
                    Outcome {
                        task: t,
                        measurement: m,
                        metadata: None,
                    }
                })
                .collect();
            finish(run, &prepared, outcomes, now)
        }
    }
}

/// A measurement that could not be taken (upstream's `MarkMeasurementError`).
pub fn error_measurement(
    mut m: Measurement,
    message: impl Into<String>,
    now: Timestamp,
) -> Measurement {
    if m.started_at.is_none() {
        m.started_at = Some(stamp(now));
    }
    m.phase = Some(phase::ERROR.into());
    m.message = Some(message.into());
    m.finished_at = Some(stamp(now));
    m
}

/// Resolves the arguments of the task's metric with the real secret values (by argument name).
pub fn resolve_for_measurement(
    run: &AnalysisRun,
    index: usize,
    secrets: &BTreeMap<String, String>,
) -> Result<Metric, ArgError> {
    let metric = run
        .spec
        .metrics
        .as_ref()
        .and_then(|m| m.get(index))
        .cloned()
        .unwrap_or_default();
    args::resolve_metric(
        &metric,
        run.spec.args.as_deref().unwrap_or_default(),
        secrets,
    )
}
