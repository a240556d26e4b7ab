//! Table tests of the pure core: ports of upstream's `analysis/analysis_test.go` cases where
//! they apply, plus whole-run simulations through [`core::reconcile_with`].

use super::core::{self, Begin, TaskKind};
use crate::api::{AnalysisRun, AnalysisRunStatus, Measurement, MetricResult, analysis_phase as p};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

const BASE: i64 = 1_700_000_000;

fn ts(secs: i64) -> Timestamp {
    Timestamp::from_second(BASE + secs).unwrap()
}

fn time(secs: i64) -> String {
    ts(secs).to_string()
}

/// A run from JSON metrics (each gets a job provider unless it has one) and status.
fn run(metrics: Value, status: Value) -> AnalysisRun {
    let mut metrics = metrics;
    for m in metrics.as_array_mut().unwrap() {
        if m.get("provider").is_none() {
            m["provider"] = json!({"job": {"spec": {"template": {"spec": {"containers": []}}}}});
        }
    }
    serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisRun",
        "metadata": {"name": "r", "namespace": "ns", "uid": "uid-1"},
        "spec": {"metrics": metrics},
        "status": status,
    }))
    .unwrap()
}

fn measurement(phase: &str, started: i64, finished: Option<i64>) -> Value {
    let mut m = json!({"phase": phase, "value": "1", "startedAt": time(started)});
    if let Some(f) = finished {
        m["finishedAt"] = json!(time(f));
    }
    m
}

fn tasks(r: &AnalysisRun, now: i64) -> Vec<core::Task> {
    let prepared = core::prepare(r).expect("valid run");
    core::generate_tasks(r, &prepared, ts(now))
}

fn result<'a>(s: &'a AnalysisRunStatus, name: &str) -> &'a MetricResult {
    s.metric_results
        .as_ref()
        .unwrap()
        .iter()
        .find(|r| r.name.as_deref() == Some(name))
        .unwrap()
}

fn mr(v: Value) -> MetricResult {
    serde_json::from_value(v).unwrap()
}

fn settings(m: Value) -> core::MetricSettings {
    let mut m = m;
    m["provider"] = json!({"job": {}});
    core::MetricSettings::from_metric(&serde_json::from_value(m).unwrap()).unwrap()
}

// --- generateMetricTasks -------------------------------------------------------------------

#[test]
fn tasks_honor_the_interval() {
    let mut r = run(
        json!([{"name": "success-rate", "interval": "60s"}]),
        json!({"phase": "Running", "metricResults": [{"name": "success-rate", "phase": "Running",
            "count": 1, "successful": 1, "measurements": [measurement("Successful", -50, Some(-50))]}]}),
    );
    assert!(tasks(&r, 0).is_empty(), "within the interval");
    r.status.as_mut().unwrap().metric_results.as_mut().unwrap()[0]
        .measurements
        .as_mut()
        .unwrap()[0]
        .finished_at = Some(Time(ts(-61)));
    let t = tasks(&r, 0);
    assert_eq!(t.len(), 1, "overdue");
    assert_eq!(t[0].kind, TaskKind::Start);
    // Exactly at the due instant counts as due (the controller requeues at that instant).
    assert_eq!(tasks(&r, -1).len(), 1);
    assert!(tasks(&r, -2).is_empty());
}

#[test]
fn tasks_stop_when_a_metric_failed() {
    let mut r = run(
        json!([{"name": "success-rate"}, {"name": "latency"}]),
        json!({"phase": "Running", "metricResults": [{"name": "latency", "phase": "Failed"}]}),
    );
    assert!(tasks(&r, 0).is_empty());
    r.status.as_mut().unwrap().metric_results = None;
    assert_eq!(tasks(&r, 0).len(), 2);
}

#[test]
fn tasks_without_interval_or_count_measure_once() {
    let mut r = run(
        json!([{"name": "success-rate"}]),
        json!({"phase": "Running", "metricResults": [{"name": "success-rate", "phase": "Running",
            "count": 1, "measurements": [measurement("Successful", -50, Some(-50))]}]}),
    );
    assert!(tasks(&r, 0).is_empty());
    let res = &mut r.status.as_mut().unwrap().metric_results.as_mut().unwrap()[0];
    res.measurements = None;
    res.count = None;
    assert_eq!(tasks(&r, 0).len(), 1);
}

#[test]
fn tasks_resume_incomplete_measurements() {
    let r = run(
        json!([{"name": "success-rate"}]),
        json!({"phase": "Running", "metricResults": [{"name": "success-rate", "phase": "Running",
            "measurements": [measurement("Successful", -50, None)]}]}),
    );
    let t = tasks(&r, 0);
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].kind, TaskKind::Resume);
    assert!(t[0].incomplete.is_some());
}

#[test]
fn tasks_honor_the_initial_delay() {
    let mut r = run(
        json!([{"name": "success-rate", "initialDelay": "20s"}]),
        json!({"phase": "Running"}),
    );
    assert!(tasks(&r, 0).is_empty(), "no startedAt");
    r.status.as_mut().unwrap().started_at = Some(Time(ts(-10)));
    assert!(tasks(&r, 0).is_empty(), "delay not passed");
    r.status.as_mut().unwrap().started_at = Some(Time(ts(-20)));
    assert_eq!(tasks(&r, 0).len(), 1, "delay passed");
    r.spec.metrics.as_mut().unwrap()[0].initial_delay = Some("invalid-start-delay".into());
    let err = core::prepare(&r).unwrap_err().to_string();
    assert!(err.contains("invalid startDelay string"), "{err}");
}

#[test]
fn tasks_honor_resume_at() {
    let mut a = measurement("Successful", -50, None);
    a["resumeAt"] = json!(time(10));
    let mut b = measurement("Successful", -50, None);
    b["resumeAt"] = json!(time(-10));
    let r = run(
        json!([{"name": "success-rate"}, {"name": "success-rate2"}]),
        json!({"phase": "Running", "metricResults": [
            {"name": "success-rate", "phase": "Running", "measurements": [a]},
            {"name": "success-rate2", "phase": "Running", "measurements": [b]}]}),
    );
    let t = tasks(&r, 0);
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].name, "success-rate2");
}

#[test]
fn errored_measurements_retry_after_the_error_interval() {
    let mut r = run(
        json!([{"name": "success-rate"}]),
        json!({"phase": "Running", "metricResults": [{"name": "success-rate", "phase": "Running",
            "error": 1, "consecutiveError": 1,
            "measurements": [measurement("Error", -120, Some(-120))]}]}),
    );
    assert_eq!(tasks(&r, 0).len(), 1);
    r.spec.metrics.as_mut().unwrap()[0].interval = Some("5m".into());
    assert_eq!(
        tasks(&r, 0).len(),
        1,
        "an error retries after 10s, not the interval"
    );
    assert!(tasks(&r, -111).is_empty());
}

#[test]
fn terminating_runs_terminate_in_flight_measurements_only() {
    for (status, dry_run) in [
        (p::FAILED, false),
        (p::INCONCLUSIVE, false),
        (p::ERROR, false),
        (p::FAILED, true),
    ] {
        let mut r = run(
            json!([{"name": "run-forever"}, {"name": "failed-metric"}]),
            json!({"phase": "Running", "metricResults": [
                {"name": "run-forever", "phase": "Running", "dryRun": dry_run,
                    "measurements": [measurement("Running", -60, None)]},
                {"name": "failed-metric", "phase": status, "count": 1, "dryRun": dry_run,
                    "measurements": [measurement(status, -60, Some(-60))]}]}),
        );
        if dry_run {
            r.spec.dry_run = Some(
                serde_json::from_value(json!([
                {"metricName": "run-forever"}, {"metricName": "failed-metric"}]))
                .unwrap(),
            );
        }
        let t = tasks(&r, 0);
        assert_eq!(t.len(), 1, "{status}");
        let want = if dry_run {
            TaskKind::Resume
        } else {
            TaskKind::Terminate
        };
        assert_eq!(t[0].kind, want, "{status} dry_run={dry_run}");
    }
}

// --- assessMetricStatus -------------------------------------------------------------------

#[test]
fn metric_status_without_measurements() {
    let s = settings(json!({"name": "success-rate"}));
    let r = mr(json!({"name": "success-rate"}));
    assert_eq!(core::assess_metric(&s, &r, false), p::PENDING);
    assert_eq!(core::assess_metric(&s, &r, true), p::SUCCESSFUL);
}

#[test]
fn metric_status_in_flight() {
    let s = settings(json!({"name": "success-rate"}));
    let r = mr(json!({"name": "success-rate", "measurements": [
        measurement("Successful", -60, Some(-60)), measurement("Running", -10, None)]}));
    assert_eq!(core::assess_metric(&s, &r, false), p::RUNNING);
    assert_eq!(core::assess_metric(&s, &r, true), p::RUNNING);
}

#[test]
fn metric_status_limits() {
    let done = json!([measurement("Failed", -10, Some(-10))]);
    let s = settings(json!({"name": "m", "interval": "60s", "failureLimit": 2}));
    let r = mr(json!({"name": "m", "failed": 3, "count": 3, "measurements": done}));
    assert_eq!(core::assess_metric(&s, &r, false), p::FAILED);
    let r = mr(json!({"name": "m", "failed": 2, "count": 2, "measurements": done}));
    assert_eq!(core::assess_metric(&s, &r, false), p::RUNNING);
    assert_eq!(core::assess_metric(&s, &r, true), p::SUCCESSFUL);

    let s = settings(json!({"name": "m", "interval": "60s", "inconclusiveLimit": 2}));
    let r = mr(json!({"name": "m", "inconclusive": 3, "count": 3, "measurements": done}));
    assert_eq!(core::assess_metric(&s, &r, false), p::INCONCLUSIVE);
    let r = mr(json!({"name": "m", "inconclusive": 2, "count": 2, "measurements": done}));
    assert_eq!(core::assess_metric(&s, &r, false), p::RUNNING);

    let s = settings(json!({"name": "m", "interval": "60s"}));
    let r = mr(json!({"name": "m", "error": 5, "consecutiveError": 5, "measurements": done}));
    assert_eq!(core::assess_metric(&s, &r, false), p::ERROR);
    let r = mr(json!({"name": "m", "error": 4, "consecutiveError": 4, "measurements": done}));
    assert_eq!(core::assess_metric(&s, &r, false), p::RUNNING);
    let s = settings(json!({"name": "m", "interval": "60s", "consecutiveErrorLimit": 0}));
    let r = mr(json!({"name": "m", "error": 1, "consecutiveError": 1, "measurements": done}));
    assert_eq!(core::assess_metric(&s, &r, false), p::ERROR);
}

#[test]
fn metric_status_count_reached() {
    let done = json!([measurement("Successful", -10, Some(-10))]);
    let s = settings(json!({"name": "m", "interval": "60s", "count": 10, "failureLimit": 5}));
    let r =
        mr(json!({"name": "m", "count": 10, "successful": 5, "failed": 5, "measurements": done}));
    assert_eq!(core::assess_metric(&s, &r, false), p::SUCCESSFUL);
    let r = mr(json!({"name": "m", "count": 9, "successful": 9, "measurements": done}));
    assert_eq!(core::assess_metric(&s, &r, false), p::RUNNING);
}

#[test]
fn metric_status_consecutive_success_limit() {
    let done = json!([measurement("Successful", -10, Some(-10))]);
    // Reached: Successful before the count.
    let s = settings(json!({"name": "m", "interval": "1s", "count": 10,
        "consecutiveSuccessLimit": 3, "failureLimit": 5}));
    let r = mr(
        json!({"name": "m", "count": 4, "successful": 3, "failed": 1,
        "consecutiveSuccess": 3, "measurements": done}),
    );
    assert_eq!(core::assess_metric(&s, &r, false), p::SUCCESSFUL);
    // Count reached without it, failure limit applicable too: Inconclusive.
    let r = mr(
        json!({"name": "m", "count": 10, "successful": 6, "failed": 4,
        "consecutiveSuccess": 2, "measurements": done}),
    );
    assert_eq!(core::assess_metric(&s, &r, false), p::INCONCLUSIVE);
    // Only the success limit applies (failureLimit -1): Failed.
    let s = settings(json!({"name": "m", "interval": "1s", "count": 10,
        "consecutiveSuccessLimit": 3, "failureLimit": -1}));
    let r = mr(
        json!({"name": "m", "count": 10, "successful": 2, "failed": 8,
        "consecutiveSuccess": 1, "measurements": done}),
    );
    assert_eq!(core::assess_metric(&s, &r, false), p::FAILED);
    // failureLimit -1 never fails on failures alone.
    let r = mr(json!({"name": "m", "count": 5, "failed": 5, "measurements": done}));
    assert_eq!(core::assess_metric(&s, &r, false), p::RUNNING);
}

#[test]
fn limit_breach_messages_and_precedence() {
    let s = settings(json!({"name": "m", "interval": "1s"}));
    let r = mr(json!({"name": "m", "failed": 1, "inconclusive": 1, "consecutiveError": 5}));
    let (ph, msg) = core::limit_breach(&s, &r);
    assert_eq!(ph, Some(p::ERROR));
    assert_eq!(msg, "consecutiveErrors (5) > consecutiveErrorLimit (4)");
    let r = mr(json!({"name": "m", "failed": 1}));
    assert_eq!(
        core::limit_breach(&s, &r),
        (Some(p::FAILED), "failed (1) > failureLimit (0)".to_string())
    );
}

#[test]
fn worse_phases() {
    assert!(core::is_worse(p::SUCCESSFUL, p::FAILED));
    assert!(core::is_worse(p::INCONCLUSIVE, p::ERROR));
    assert!(core::is_worse(p::ERROR, p::FAILED));
    assert!(!core::is_worse(p::FAILED, p::ERROR));
    assert!(!core::is_worse(p::FAILED, p::SUCCESSFUL));
}

// --- assessRunStatus ----------------------------------------------------------------------

fn finish(r: &AnalysisRun, now: i64) -> core::Reconciled {
    let prepared = core::prepare(r).unwrap();
    core::finish(r, &prepared, vec![], ts(now))
}

#[test]
fn run_status_is_running_until_every_metric_completes_then_the_worst() {
    let mut r = run(
        json!([{"name": "latency"}, {"name": "success-rate"}]),
        json!({"phase": "Running", "metricResults": [
            {"name": "latency", "phase": "Successful"},
            {"name": "success-rate", "phase": "Running"}]}),
    );
    let out = finish(&r, 0);
    assert_eq!(out.status.phase.as_deref(), Some(p::RUNNING));
    assert_eq!(out.status.message, None);
    r.status.as_mut().unwrap().metric_results.as_mut().unwrap()[1].phase = Some(p::FAILED.into());
    let out = finish(&r, 0);
    assert_eq!(out.status.phase.as_deref(), Some(p::FAILED));
    assert_eq!(out.status.completed_at, Some(Time(ts(0))));
    assert!(
        out.events
            .iter()
            .any(|e| e.reason == "AnalysisRunFailed" && e.warning)
    );
}

#[test]
fn run_status_updates_metric_results() {
    let r = run(
        json!([{"name": "sleep-infinity"}, {"name": "fail-after-30"}]),
        json!({"phase": "Running", "metricResults": [
            {"name": "sleep-infinity", "phase": "Running",
                "measurements": [measurement("Running", -60, None)]},
            {"name": "fail-after-30", "phase": "Running", "count": 1, "failed": 1,
                "measurements": [measurement("Failed", -60, Some(-60))]}]}),
    );
    let out = finish(&r, 0);
    assert_eq!(out.status.phase.as_deref(), Some(p::RUNNING));
    assert_eq!(
        result(&out.status, "fail-after-30").phase.as_deref(),
        Some(p::FAILED)
    );
    assert!(out.events.iter().any(|e| e.reason == "MetricFailed"
        && e.message == "Metric 'fail-after-30' Completed. Result: Failed"));
    // The next reconcile terminates the in-flight measurement, then the run is Failed.
    let mut next = r.clone();
    next.status = Some(out.status);
    let t = tasks(&next, 1);
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].kind, TaskKind::Terminate);
    let out = core::reconcile_with(&next, ts(1), |task, _| Measurement {
        phase: Some(p::SUCCESSFUL.into()),
        ..task.incomplete.clone().unwrap()
    });
    assert_eq!(out.status.phase.as_deref(), Some(p::FAILED));
    assert_eq!(
        out.status.message.as_deref(),
        Some("Metric \"fail-after-30\" assessed Failed due to failed (1) > failureLimit (0)")
    );
    let sleep = result(&out.status, "sleep-infinity");
    assert_eq!(sleep.phase.as_deref(), Some(p::SUCCESSFUL));
    assert_eq!(
        sleep.measurements.as_ref().unwrap()[0].message.as_deref(),
        Some("Metric Terminated")
    );
}

#[test]
fn run_message_carries_the_provider_error() {
    let r = run(
        json!([{"name": "m", "interval": "1s", "consecutiveErrorLimit": 1}]),
        json!({"phase": "Running", "metricResults": [{"name": "m", "phase": "Running",
            "error": 2, "consecutiveError": 2, "measurements": [
                {"phase": "Error", "message": "connection refused",
                    "startedAt": time(-1), "finishedAt": time(-1)}]}]}),
    );
    let out = finish(&r, 0);
    assert_eq!(out.status.phase.as_deref(), Some(p::ERROR));
    assert_eq!(
        out.status.message.as_deref(),
        Some(
            "Metric \"m\" assessed Error due to consecutiveErrors (2) > consecutiveErrorLimit (1): \"Error Message: connection refused\""
        )
    );
    assert_eq!(
        result(&out.status, "m").message.as_deref(),
        Some("connection refused")
    );
    let summary = out.status.run_summary.unwrap();
    assert_eq!((summary.count, summary.error), (Some(1), Some(1)));
}

#[test]
fn dry_run_metrics_never_change_the_phase() {
    let mut r = run(
        json!([{"name": "real"}, {"name": "dry"}]),
        json!({"phase": "Running", "metricResults": [
            {"name": "real", "phase": "Running", "count": 1, "successful": 1,
                "measurements": [measurement("Successful", -1, Some(-1))]},
            {"name": "dry", "phase": "Running", "count": 1, "failed": 1, "dryRun": true,
                "measurements": [measurement("Failed", -1, Some(-1))]}]}),
    );
    r.spec.dry_run = Some(serde_json::from_value(json!([{"metricName": "dr.*"}])).unwrap());
    let out = finish(&r, 0);
    assert_eq!(out.status.phase.as_deref(), Some(p::SUCCESSFUL));
    let dry = result(&out.status, "dry");
    assert_eq!(dry.phase.as_deref(), Some(p::FAILED));
    assert_eq!(
        dry.message.as_deref(),
        Some("Metric assessed Failed due to failed (1) > failureLimit (0)")
    );
    let rs = out.status.run_summary.unwrap();
    assert_eq!(
        (rs.count, rs.successful, rs.failed),
        (Some(1), Some(1), None)
    );
    let ds = out.status.dry_run_summary.unwrap();
    assert_eq!((ds.count, ds.failed), (Some(1), Some(1)));
    // Only dry-run metrics: Successful.
    let mut only = r.clone();
    only.spec.dry_run = Some(serde_json::from_value(json!([{"metricName": "*"}])).unwrap());
    let out = finish(&only, 0);
    assert_eq!(out.status.phase.as_deref(), Some(p::SUCCESSFUL));
    assert_eq!(out.status.dry_run_summary.unwrap().count, Some(2));
    // A rule matching nothing is a spec error.
    only.spec.dry_run = Some(serde_json::from_value(json!([{"metricName": "nope"}])).unwrap());
    assert_eq!(
        core::prepare(&only).unwrap_err().to_string(),
        "Analysis spec invalid: dryRun[0]: Rule didn't match any metric name(s)"
    );
}

#[test]
fn spec_terminate_ends_the_run_successfully() {
    let mut r = run(
        json!([{"name": "m", "interval": "60s"}]),
        json!({"phase": "Running", "metricResults": [{"name": "m", "phase": "Running",
            "count": 1, "successful": 1, "measurements": [measurement("Successful", -5, Some(-5))]}]}),
    );
    r.spec.terminate = Some(true);
    let out = core::reconcile_with(&r, ts(0), |_, _| unreachable!("no measurement"));
    assert_eq!(out.status.phase.as_deref(), Some(p::SUCCESSFUL));
    assert_eq!(out.status.message.as_deref(), Some("Run Terminated"));
    assert_eq!(out.requeue_at, None);
}

#[test]
fn terminated_before_any_measurement_is_successful() {
    let mut r = run(json!([{"name": "m", "initialDelay": "1h"}]), json!({}));
    r.spec.terminate = Some(true);
    let out = core::reconcile_with(&r, ts(0), |_, _| unreachable!());
    assert_eq!(out.status.phase.as_deref(), Some(p::SUCCESSFUL));
}

// --- next reconcile, retention, TTL -------------------------------------------------------

#[test]
fn next_reconcile_is_the_earliest_due_instant() {
    let r = run(
        json!([{"name": "a", "interval": "30s"}, {"name": "b", "interval": "60s"},
               {"name": "c", "initialDelay": "100s"}, {"name": "d"}]),
        json!({"phase": "Running", "startedAt": time(-90), "metricResults": [
            {"name": "a", "phase": "Running", "count": 1, "measurements": [measurement("Successful", -20, Some(-20))]},
            {"name": "b", "phase": "Running", "count": 1, "measurements": [measurement("Error", -5, Some(-5))]},
            {"name": "d", "phase": "Running", "measurements": [measurement("Running", -5, None)]}]}),
    );
    let prepared = core::prepare(&r).unwrap();
    let st = r.status.clone().unwrap();
    // a: -20 + 30 = 10; b: error retry -5 + 10 = 5; c: -90 + 100 = 10; d: in flight, no resumeAt.
    assert_eq!(core::next_reconcile(&st, &prepared, ts(0)), Some(ts(5)));
}

#[test]
fn no_requeue_when_the_count_is_reached() {
    let r = run(
        json!([{"name": "a", "interval": "30s", "count": 1}]),
        json!({"phase": "Running", "metricResults": [
            {"name": "a", "phase": "Running", "count": 1, "measurements": [measurement("Successful", -20, Some(-20))]}]}),
    );
    let prepared = core::prepare(&r).unwrap();
    assert_eq!(
        core::next_reconcile(r.status.as_ref().unwrap(), &prepared, ts(0)),
        None
    );
}

#[test]
fn measurements_are_trimmed_to_the_retention_limit() {
    let many: Vec<Value> = (0..12)
        .map(|i| measurement("Successful", i, Some(i)))
        .collect();
    let mut r = run(
        json!([{"name": "a", "interval": "1s"}, {"name": "b", "interval": "1s"}]),
        json!({"phase": "Running", "metricResults": [
            {"name": "a", "phase": "Running", "count": 12, "successful": 12, "measurements": many},
            {"name": "b", "phase": "Running", "count": 12, "successful": 12, "measurements": many}]}),
    );
    r.spec.measurement_retention =
        Some(serde_json::from_value(json!([{"metricName": "b", "limit": 3}])).unwrap());
    let out = finish(&r, 20);
    let a = result(&out.status, "a").measurements.as_ref().unwrap();
    assert_eq!(a.len(), core::DEFAULT_MEASUREMENT_HISTORY_LIMIT);
    assert_eq!(a[0].started_at, Some(Time(ts(2))), "oldest dropped first");
    assert_eq!(
        result(&out.status, "b")
            .measurements
            .as_ref()
            .unwrap()
            .len(),
        3
    );
}

#[test]
fn ttl_strategy_deletes_completed_runs_on_time() {
    let mut r = run(
        json!([{"name": "m"}]),
        json!({"phase": "Successful", "completedAt": time(0)}),
    );
    r.spec.ttl_strategy = Some(
        serde_json::from_value(json!({
        "secondsAfterCompletion": 100, "secondsAfterFailure": 10}))
        .unwrap(),
    );
    match core::begin(&r, ts(50)) {
        Begin::Done(d) => {
            assert!(!d.delete);
            assert_eq!(d.requeue_at, Some(ts(100)));
        }
        other => panic!("{other:?}"),
    }
    match core::begin(&r, ts(100)) {
        Begin::Done(d) => assert!(d.delete),
        other => panic!("{other:?}"),
    }
    r.status.as_mut().unwrap().phase = Some(p::FAILED.into());
    assert_eq!(core::ttl_deadline(&r), Some(ts(10)));
    r.spec.ttl_strategy = Some(serde_json::from_value(json!({"secondsAfterSuccess": 5})).unwrap());
    assert_eq!(
        core::ttl_deadline(&r),
        None,
        "a success TTL never deletes a failed run"
    );
    r.spec.ttl_strategy = None;
    match core::begin(&r, ts(1_000_000)) {
        Begin::Done(d) => assert!(!d.delete && d.requeue_at.is_none()),
        other => panic!("{other:?}"),
    }
}

// --- argument and spec errors -------------------------------------------------------------

#[test]
fn unresolved_arguments_end_the_run_in_error_naming_them() {
    let mut r = run(
        json!([{"name": "m", "successCondition": "result > {{args.threshold}}"}]),
        json!(null),
    );
    r.status = None;
    let out = core::reconcile_with(&r, ts(0), |_, _| unreachable!());
    assert_eq!(out.status.phase.as_deref(), Some(p::ERROR));
    assert_eq!(
        out.status.message.as_deref(),
        Some("Unable to resolve metric arguments: failed to resolve {{args.threshold}}")
    );
    assert!(out.events.iter().any(|e| e.reason == "AnalysisRunError"));
}

#[test]
fn invalid_expressions_end_the_run_with_the_parse_error() {
    let r = run(
        json!([{"name": "m", "successCondition": "result[0] >="}]),
        json!({}),
    );
    let out = core::reconcile_with(&r, ts(0), |_, _| unreachable!());
    assert_eq!(out.status.phase.as_deref(), Some(p::ERROR));
    let msg = out.status.message.unwrap();
    assert!(
        msg.starts_with("Analysis spec invalid: metrics[0]: successCondition: invalid expression \"result[0] >=\": at 1:"),
        "{msg}"
    );
}

#[test]
fn spec_validation_table() {
    let cases = [
        (json!([]), "no metrics specified"),
        (
            json!([{"name": "a"}, {"name": "a"}]),
            "metrics[1]: duplicate name 'a'",
        ),
        (
            json!([{"name": "a", "count": 2}]),
            "interval must be specified when count > 1",
        ),
        (
            json!([{"name": "a", "count": 2, "interval": "1s", "failureLimit": 3}]),
            "count must be >= failureLimit",
        ),
        (
            json!([{"name": "a", "interval": "5"}]),
            "invalid interval string",
        ),
        (
            json!([{"name": "a", "inconclusiveLimit": -1}]),
            "inconclusiveLimit must be >= 0",
        ),
        (
            json!([{"name": "a", "failureLimit": "x"}]),
            "failureLimit: invalid integer \"x\"",
        ),
        (
            json!([{"name": "a", "provider": {}}]),
            "no provider specified",
        ),
        (
            json!([{"name": "a", "provider": {"web": {"url": "u"}, "job": {}}}]),
            "multiple providers specified",
        ),
    ];
    for (metrics, want) in cases {
        let r = run(metrics.clone(), json!({}));
        let err = core::prepare(&r).unwrap_err().to_string();
        assert!(err.contains(want), "{metrics}: {err}");
    }
}

// --- whole-run simulations ----------------------------------------------------------------

/// Drives a run reconcile by reconcile, jumping to each requeue instant, with `measure`
/// giving each new measurement's phase from the measurement number (1-based) of its metric.
fn simulate(
    mut r: AnalysisRun,
    mut measure: impl FnMut(&str, usize) -> &'static str,
    max_steps: usize,
) -> (AnalysisRun, Vec<i64>, Vec<String>) {
    let mut now = 0;
    let mut times = vec![];
    let mut events = vec![];
    let mut n: std::collections::BTreeMap<String, usize> = Default::default();
    for _ in 0..max_steps {
        let out = core::reconcile_with(&r, ts(now), |task, _| {
            times.push(now);
            let k = n.entry(task.name.clone()).or_default();
            *k += 1;
            let ph = measure(&task.name, *k);
            Measurement {
                phase: Some(ph.into()),
                value: Some(format!("{k}")),
                started_at: Some(Time(ts(now))),
                finished_at: Some(Time(ts(now))),
                message: (ph == p::ERROR).then(|| "boom".into()),
                ..Default::default()
            }
        });
        events.extend(out.events.iter().map(|e| e.reason.clone()));
        r.status = Some(out.status.clone());
        match out.requeue_at {
            Some(at) if !p::is_completed(out.status.phase.as_deref().unwrap_or("")) => {
                assert!(at >= ts(now), "requeue in the past");
                now = at.as_second() - BASE;
            }
            _ => break,
        }
    }
    (r, times, events)
}

#[test]
fn simulation_count_and_interval() {
    let r = run(
        json!([{"name": "m", "interval": "30s", "count": 3}]),
        json!({}),
    );
    let (r, times, events) = simulate(r, |_, _| p::SUCCESSFUL, 20);
    let st = r.status.unwrap();
    assert_eq!(st.phase.as_deref(), Some(p::SUCCESSFUL));
    assert_eq!(
        times,
        vec![0, 30, 60],
        "measured exactly at the scheduled instants"
    );
    assert_eq!(result(&st, "m").count, Some(3));
    assert_eq!(st.run_summary.unwrap().successful, Some(1));
    assert_eq!(events, vec!["MetricSuccessful", "AnalysisRunSuccessful"]);
    assert_eq!(st.started_at, Some(Time(ts(0))));
    assert_eq!(st.completed_at, Some(Time(ts(60))));
}

#[test]
fn simulation_failure_limit() {
    let r = run(
        json!([{"name": "m", "interval": "10s", "count": 10, "failureLimit": 1}]),
        json!({}),
    );
    let (r, times, _) = simulate(r, |_, k| if k >= 3 { p::FAILED } else { p::SUCCESSFUL }, 20);
    let st = r.status.unwrap();
    assert_eq!(st.phase.as_deref(), Some(p::FAILED));
    assert_eq!(times, vec![0, 10, 20, 30], "ends at the second failure");
    assert_eq!(
        st.message.as_deref(),
        Some("Metric \"m\" assessed Failed due to failed (2) > failureLimit (1)")
    );
}

#[test]
fn simulation_consecutive_errors_retry_every_ten_seconds() {
    let r = run(
        json!([{"name": "m", "interval": "1s", "consecutiveErrorLimit": 2}]),
        json!({}),
    );
    let (r, times, _) = simulate(r, |_, k| if k == 1 { p::SUCCESSFUL } else { p::ERROR }, 20);
    let st = r.status.unwrap();
    assert_eq!(st.phase.as_deref(), Some(p::ERROR));
    assert_eq!(times, vec![0, 1, 11, 21]);
    let m = result(&st, "m");
    assert_eq!(
        (m.error, m.consecutive_error, m.count),
        (Some(3), Some(3), Some(1))
    );
}

#[test]
fn simulation_errors_reset_by_a_success() {
    let r = run(
        json!([{"name": "m", "interval": "1s", "count": 6}]),
        json!({}),
    );
    let (r, _, _) = simulate(
        r,
        |_, k| if k % 2 == 0 { p::ERROR } else { p::SUCCESSFUL },
        40,
    );
    let st = r.status.unwrap();
    assert_eq!(st.phase.as_deref(), Some(p::SUCCESSFUL));
    let m = result(&st, "m");
    assert_eq!(m.count, Some(6));
    assert_eq!(m.consecutive_error, None);
}

#[test]
fn simulation_inconclusive_ends_the_run_early() {
    let r = run(
        json!([{"name": "i", "interval": "5s"}, {"name": "ok", "interval": "5s", "count": 100}]),
        json!({}),
    );
    let (r, _, events) = simulate(
        r,
        |name, _| {
            if name == "i" {
                p::INCONCLUSIVE
            } else {
                p::SUCCESSFUL
            }
        },
        20,
    );
    let st = r.status.unwrap();
    assert_eq!(st.phase.as_deref(), Some(p::INCONCLUSIVE));
    assert_eq!(result(&st, "ok").phase.as_deref(), Some(p::SUCCESSFUL));
    assert!(events.contains(&"AnalysisRunInconclusive".to_string()));
}

#[test]
fn simulation_initial_delay() {
    let r = run(
        json!([{"name": "now"}, {"name": "later", "initialDelay": "45s"}]),
        json!({}),
    );
    let (r, times, _) = simulate(r, |_, _| p::SUCCESSFUL, 10);
    assert_eq!(times, vec![0, 45]);
    assert_eq!(r.status.unwrap().phase.as_deref(), Some(p::SUCCESSFUL));
}

#[test]
fn simulation_consecutive_success_limit() {
    let r = run(
        json!([{"name": "m", "interval": "1s", "count": 10, "consecutiveSuccessLimit": 2, "failureLimit": 3}]),
        json!({}),
    );
    let (r, times, _) = simulate(r, |_, k| if k <= 2 { p::FAILED } else { p::SUCCESSFUL }, 20);
    assert_eq!(r.status.unwrap().phase.as_deref(), Some(p::SUCCESSFUL));
    assert_eq!(times.len(), 4);
}

#[test]
fn reconciling_twice_at_the_same_instant_changes_nothing() {
    let r = run(
        json!([{"name": "m", "interval": "30s", "count": 3}]),
        json!({}),
    );
    let first = core::reconcile_with(&r, ts(0), |_, _| Measurement {
        phase: Some(p::SUCCESSFUL.into()),
        started_at: Some(Time(ts(0))),
        finished_at: Some(Time(ts(0))),
        ..Default::default()
    });
    let mut again = r.clone();
    again.status = Some(first.status.clone());
    let second = core::reconcile_with(&again, ts(0), |_, _| unreachable!("not due"));
    assert_eq!(second.status, first.status);
    assert!(second.events.is_empty());
    assert_eq!(second.requeue_at, Some(ts(30)));
}
