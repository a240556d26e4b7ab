//! `analysis backtest`: would this AnalysisTemplate have passed or failed on past metrics?
//!
//! The template (from a file or the cluster) with its arguments becomes the AnalysisRun the
//! controller would create ([`crate::analysis::build_analysis_run`]); then the controller's own
//! state machine runs it over a past window: [`core::begin`] says which metrics are due at the
//! simulated time, each is measured by the controller's Prometheus provider evaluating its
//! query *at that time* ([`PrometheusProvider::measure_at`]: an instant query with `time=`, or
//! the range query relative to it), and [`core::finish`] judges them with the same
//! success/failure conditions, limits and scheduling as a live run, which gives the next
//! instant. Nothing here decides a phase: the verdict is the one the controller's code reached,
//! and the instant it reached it.
//!
//! Only Prometheus metrics can be evaluated in the past; a template with another provider is
//! refused naming the metric. A `secretKeyRef` argument needs its value on the command line.

use super::error::{CliError, Result};
use crate::analysis::core::{self, Begin, Outcome};
use crate::analysis::providers::prometheus::PrometheusProvider;
use crate::analysis::providers::{Provider, provider_name};
use crate::analysis::{BuildRequest, ResolvedTemplate, build_analysis_run, resolve_templates};
use crate::api::{
    AnalysisRun, AnalysisTemplateRef, AnalysisTemplateSpec, Argument, Measurement,
    analysis_phase as phase,
};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The templates available to resolve a root template and the ones it includes.
#[derive(Clone, Debug, Default)]
pub struct TemplateSet {
    /// AnalysisTemplates by name.
    pub namespaced: BTreeMap<String, AnalysisTemplateSpec>,
    /// ClusterAnalysisTemplates by name.
    pub cluster: BTreeMap<String, AnalysisTemplateSpec>,
}

impl TemplateSet {
    /// The AnalysisTemplates and ClusterAnalysisTemplates of a manifest.
    pub fn from_manifest(text: &str, file: &str) -> Result<TemplateSet> {
        use serde::Deserialize as _;
        let mut set = TemplateSet::default();
        for (i, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
            let value = serde_yaml::Value::deserialize(doc).map_err(|e| {
                CliError::failed(format!("{file}: document {}: not valid YAML: {e}", i + 1))
            })?;
            if value.is_null() {
                continue;
            }
            let json: serde_json::Value = serde_json::to_value(&value)
                .map_err(|e| CliError::failed(format!("{file}: document {}: {e}", i + 1)))?;
            let kind = json
                .get("kind")
                .and_then(|k| k.as_str())
                .unwrap_or_default();
            if !matches!(kind, "AnalysisTemplate" | "ClusterAnalysisTemplate") {
                continue;
            }
            let name = json
                .pointer("/metadata/name")
                .and_then(|n| n.as_str())
                .unwrap_or_default()
                .to_string();
            let spec: AnalysisTemplateSpec =
                serde_path_to_error::deserialize(json.get("spec").cloned().unwrap_or_default())
                    .map_err(|e| {
                        CliError::failed(format!(
                            "{file}: {kind} {name:?}: spec.{}: {}",
                            e.path(),
                            e.inner()
                        ))
                    })?;
            if kind == "AnalysisTemplate" {
                set.namespaced.insert(name, spec);
            } else {
                set.cluster.insert(name, spec);
            }
        }
        Ok(set)
    }

    /// The root template: `name` (cluster-scoped with `cluster`), or the only template there is.
    pub fn root(&self, name: Option<&str>, cluster: bool) -> Result<AnalysisTemplateRef> {
        let kind = if cluster {
            "ClusterAnalysisTemplate"
        } else {
            "AnalysisTemplate"
        };
        let pool = if cluster {
            &self.cluster
        } else {
            &self.namespaced
        };
        let name = match name {
            Some(n) => {
                if !pool.contains_key(n) {
                    return Err(CliError::not_found(format!("{kind} {n:?} not found")));
                }
                n.to_string()
            }
            None => {
                let all: Vec<(&String, bool)> = self
                    .namespaced
                    .keys()
                    .map(|k| (k, false))
                    .chain(self.cluster.keys().map(|k| (k, true)))
                    .collect();
                match all.as_slice() {
                    [(n, c)] => {
                        return Ok(AnalysisTemplateRef {
                            template_name: Some((*n).clone()),
                            cluster_scope: Some(*c),
                        });
                    }
                    [] => return Err(CliError::failed("no AnalysisTemplate found")),
                    _ => {
                        return Err(CliError::usage(format!(
                            "several templates ({}): choose one with --template or --cluster-template",
                            all.iter()
                                .map(|(n, _)| n.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        )));
                    }
                }
            }
        };
        Ok(AnalysisTemplateRef {
            template_name: Some(name),
            cluster_scope: Some(cluster),
        })
    }
}

/// The AnalysisRun the controller would create from `root` (and the templates it includes)
/// with these `NAME=VALUE` arguments.
pub fn analysis_run(
    set: &TemplateSet,
    root: &AnalysisTemplateRef,
    args: &[(String, String)],
) -> Result<AnalysisRun> {
    let (templates, cluster_templates): (Vec<ResolvedTemplate>, Vec<ResolvedTemplate>) =
        resolve_templates(
            std::slice::from_ref(root),
            |n| set.namespaced.get(n).cloned(),
            |n| set.cluster.get(n).cloned(),
        )
        .map_err(|e| CliError::failed(e.to_string()))?;
    let incoming: Vec<Argument> = args
        .iter()
        .map(|(n, v)| Argument {
            name: Some(n.clone()),
            value: Some(v.clone()),
            value_from: None,
        })
        .collect();
    let mut run = build_analysis_run(&BuildRequest {
        templates: &templates,
        cluster_templates: &cluster_templates,
        args: &incoming,
        name: "backtest".into(),
        namespace: "default".into(),
        owner: Default::default(),
        labels: Default::default(),
        annotations: Default::default(),
        dry_run: &[],
        measurement_retention: &[],
    })
    .map_err(|e| CliError::failed(format!("building the AnalysisRun: {e}")))?;
    run.metadata.owner_references = None;
    // A value given on the command line wins over the template's `valueFrom`.
    for a in run.spec.args.iter_mut().flatten() {
        if incoming.iter().any(|i| i.name == a.name) {
            a.value_from = None;
        }
        if let Some(s) = a
            .value_from
            .as_ref()
            .and_then(|v| v.secret_key_ref.as_ref())
        {
            return Err(CliError::usage(format!(
                "argument {:?} comes from secret {:?} (key {:?}): give its value with --arg {}=VALUE",
                a.name.clone().unwrap_or_default(),
                s.name.clone().unwrap_or_default(),
                s.key.clone().unwrap_or_default(),
                a.name.clone().unwrap_or_default()
            )));
        }
        if a.value_from.as_ref().is_some_and(|v| v.field_ref.is_some()) {
            return Err(CliError::usage(format!(
                "argument {:?} comes from a field of the Rollout: give its value with --arg {}=VALUE",
                a.name.clone().unwrap_or_default(),
                a.name.clone().unwrap_or_default()
            )));
        }
    }
    Ok(run)
}

/// One measurement of the backtest.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    /// The simulated instant.
    pub time: Timestamp,
    pub metric: String,
    pub value: Option<String>,
    pub phase: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// A metric's conditions, for the chart.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricSummary {
    pub name: String,
    pub success_condition: Option<String>,
    pub failure_condition: Option<String>,
    /// Its phase when the backtest ended.
    pub phase: String,
}

/// What the run would have done over the window.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Backtest {
    pub from: Timestamp,
    pub to: Timestamp,
    /// The run's phase at the end: its verdict, or Running when the window ended first.
    pub phase: String,
    /// The run's status message (why it failed, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When the verdict was reached.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<Timestamp>,
    pub metrics: Vec<MetricSummary>,
    pub measurements: Vec<Step>,
}

impl Backtest {
    /// Whether the run reached a verdict other than Successful.
    pub fn failed(&self) -> bool {
        matches!(
            self.phase.as_str(),
            phase::FAILED | phase::ERROR | phase::INCONCLUSIVE
        )
    }
}

/// Points every Prometheus metric at `address` (a port-forward, say), whatever its own.
pub fn override_address(run: &mut AnalysisRun, address: &str) {
    for m in run.spec.metrics.iter_mut().flatten() {
        if let Some(p) = m.provider.as_mut().and_then(|p| p.prometheus.as_mut()) {
            p.address = Some(address.to_string());
        }
    }
}

/// Refuses metrics that cannot be evaluated in the past.
pub fn check_metrics(run: &AnalysisRun) -> Result<()> {
    for m in run.spec.metrics.iter().flatten() {
        if m.provider.as_ref().is_some_and(|p| p.prometheus.is_none()) {
            return Err(CliError::usage(format!(
                "metric {:?} uses the {} provider: only Prometheus metrics can be evaluated over a past window",
                m.name.clone().unwrap_or_default(),
                provider_name(m).unwrap_or_else(|| "(none)".into())
            )));
        }
    }
    Ok(())
}

/// Runs `run` with the controller's core over `[from, to]`, measuring with Prometheus as of
/// each simulated instant. `default_address` is for metrics that name no address.
pub async fn backtest(
    run: &AnalysisRun,
    from: Timestamp,
    to: Timestamp,
    default_address: Option<&str>,
) -> Result<Backtest> {
    check_metrics(run)?;
    if from >= to {
        return Err(CliError::usage(format!(
            "the window is empty: --from {from} is not before --to {to}"
        )));
    }
    let mut run = run.clone();
    run.status = None;
    // Whole seconds, as the controller stamps its measurements.
    let mut now = Timestamp::from_second(from.as_second()).unwrap_or(from);
    let mut steps = Vec::new();
    let mut decided_at = None;
    // Bounded: a measurement per metric per second of the window at most, plus slack.
    let budget = usize::try_from((to.as_second() - from.as_second()).max(0)).unwrap_or(0) * 4 + 100;
    for _ in 0..budget {
        let r = match core::begin(&run, now) {
            Begin::Done(r) => r,
            Begin::Measure { prepared, tasks } => {
                let mut outcomes = Vec::new();
                for t in tasks {
                    let metric = core::resolve_for_measurement(&run, t.index, &BTreeMap::new())
                        .map_err(|e| CliError::failed(format!("metric {:?}: {e}", t.name)))?;
                    let (m, metadata) = match metric
                        .provider
                        .as_ref()
                        .and_then(|p| p.prometheus.as_ref())
                        .map(|p| PrometheusProvider::new(p, default_address))
                    {
                        Some(Ok(p)) => (p.measure_at(&metric, now).await, p.metadata(&metric)),
                        Some(Err(e)) => (
                            core::error_measurement(Measurement::default(), e.to_string(), now),
                            None,
                        ),
                        None => (
                            core::error_measurement(
                                Measurement::default(),
                                "not a Prometheus metric",
                                now,
                            ),
                            None,
                        ),
                    };
                    steps.push(Step {
                        time: now,
                        metric: t.name.clone(),
                        value: m.value.clone(),
                        phase: m.phase.clone().unwrap_or_default(),
                        message: m.message.clone(),
                    });
                    outcomes.push(Outcome {
                        task: t,
                        measurement: m,
                        metadata,
                    });
                }
                core::finish(&run, &prepared, outcomes, now)
            }
        };
        let requeue = r.requeue_at;
        run.status = Some(r.status);
        let p = run
            .status
            .as_ref()
            .and_then(|s| s.phase.clone())
            .unwrap_or_default();
        if phase::is_completed(&p) {
            decided_at = Some(now);
            break;
        }
        match requeue {
            Some(t) if t > now && t <= to => now = t,
            Some(t) if t <= now => {
                now = now.checked_add(SignedDuration::from_secs(1)).unwrap_or(to)
            }
            _ => break,
        }
    }
    let status = run.status.clone().unwrap_or_default();
    let metrics = run
        .spec
        .metrics
        .iter()
        .flatten()
        .map(|m| {
            let name = m.name.clone().unwrap_or_default();
            MetricSummary {
                phase: status
                    .metric_results
                    .iter()
                    .flatten()
                    .find(|r| r.name.as_deref() == Some(name.as_str()))
                    .and_then(|r| r.phase.clone())
                    .unwrap_or_else(|| phase::PENDING.into()),
                success_condition: m.success_condition.clone().filter(|c| !c.is_empty()),
                failure_condition: m.failure_condition.clone().filter(|c| !c.is_empty()),
                name,
            }
        })
        .collect();
    Ok(Backtest {
        from,
        to,
        phase: status.phase.unwrap_or_else(|| phase::PENDING.into()),
        message: status.message,
        decided_at,
        metrics,
        measurements: steps,
    })
}

fn offset(from: Timestamp, t: Timestamp) -> String {
    super::timeline::duration_text(t.as_second() - from.as_second())
}

fn stamp_text(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The report: the measurements, then the verdict.
pub fn render(b: &Backtest) -> String {
    let mut out = String::new();
    let rows: Vec<[String; 6]> = b
        .measurements
        .iter()
        .map(|s| {
            [
                stamp_text(s.time),
                format!("+{}", offset(b.from, s.time)),
                s.metric.clone(),
                s.value.clone().unwrap_or_default(),
                s.phase.clone(),
                s.message.clone().unwrap_or_default(),
            ]
        })
        .collect();
    let header = ["TIME", "OFFSET", "METRIC", "VALUE", "PHASE", "MESSAGE"].map(String::from);
    let widths: Vec<usize> = (0..6)
        .map(|i| {
            rows.iter()
                .chain(std::iter::once(&header))
                .map(|r| r[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for r in std::iter::once(&header).chain(rows.iter()) {
        let line: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i == 5 {
                    c.clone()
                } else {
                    format!("{c:<w$}", w = widths[i])
                }
            })
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
    if b.measurements.is_empty() {
        let _ = writeln!(out, "(no measurement was due in the window)");
    }
    let _ = writeln!(out);
    match b.decided_at {
        Some(t) => {
            let _ = write!(
                out,
                "Verdict: {} at {} (+{})",
                b.phase,
                stamp_text(t),
                offset(b.from, t)
            );
            if let Some(m) = b.message.as_deref().filter(|m| !m.is_empty()) {
                let _ = write!(out, ": {m}");
            }
            let _ = writeln!(out);
        }
        None => {
            let _ = writeln!(
                out,
                "Verdict: none by {}: the run would still be {} (metrics: {})",
                stamp_text(b.to),
                b.phase,
                b.metrics
                    .iter()
                    .map(|m| format!("{} {}", m.name, m.phase))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    out
}

/// The numbers of a measurement's value (`0.5`, `[0.5,NaN]`; NaN and ±Inf dropped).
pub fn numbers(value: &str) -> Vec<f64> {
    value
        .trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .split([',', ' '])
        .filter_map(|s| s.trim().parse::<f64>().ok())
        .filter(|f| f.is_finite())
        .collect()
}

/// The thresholds a simple condition compares `result` (or `result[0]`) with.
pub fn thresholds(condition: &str) -> Vec<f64> {
    static RE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(
            r"result(?:\[\d+\])?\s*(?:<=|>=|<|>|==)\s*(-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?)",
        )
        .expect("a valid regular expression")
    });
    RE.captures_iter(condition)
        .filter_map(|c| c[1].parse::<f64>().ok())
        .collect()
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn phase_color(p: &str) -> &'static str {
    match p {
        phase::SUCCESSFUL => "#2a9d2a",
        phase::FAILED => "#d62728",
        phase::INCONCLUSIVE => "#e69500",
        _ => "#777777",
    }
}

/// The backtest as an SVG chart: per metric, its values over the window (coloured by the
/// measurement's phase) against the thresholds of its conditions, and the verdict.
pub fn svg(b: &Backtest) -> String {
    const W: f64 = 860.0;
    const LEFT: f64 = 70.0;
    const RIGHT: f64 = 30.0;
    const PANEL: f64 = 200.0;
    const GAP: f64 = 70.0;
    const TOP: f64 = 50.0;
    let n = b.metrics.len().max(1) as f64;
    let h = TOP + n * (PANEL + GAP) + 20.0;
    let plot_w = W - LEFT - RIGHT;
    let span = (b.to.as_second() - b.from.as_second()).max(1) as f64;
    let x_of = |t: Timestamp| LEFT + plot_w * ((t.as_second() - b.from.as_second()) as f64 / span);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{h}\" viewBox=\"0 0 {W} {h}\" font-family=\"sans-serif\">\n\
         <title>analysis backtest</title>\n<rect width=\"{W}\" height=\"{h}\" fill=\"white\"/>"
    );
    let verdict = match b.decided_at {
        Some(t) => format!("{} at +{}", b.phase, offset(b.from, t)),
        None => format!("no verdict (still {})", b.phase),
    };
    let _ = writeln!(
        out,
        "<text x=\"{LEFT}\" y=\"22\" font-size=\"14\">Backtest {} to {}: {}</text>",
        stamp_text(b.from),
        stamp_text(b.to),
        xml_escape(&verdict)
    );
    for (i, m) in b.metrics.iter().enumerate() {
        let top = TOP + i as f64 * (PANEL + GAP);
        let points: Vec<(Timestamp, f64, &str)> = b
            .measurements
            .iter()
            .filter(|s| s.metric == m.name)
            .flat_map(|s| {
                numbers(s.value.as_deref().unwrap_or_default())
                    .into_iter()
                    .map(move |v| (s.time, v, s.phase.as_str()))
            })
            .collect();
        let success = m
            .success_condition
            .as_deref()
            .map(thresholds)
            .unwrap_or_default();
        let failure = m
            .failure_condition
            .as_deref()
            .map(thresholds)
            .unwrap_or_default();
        let all: Vec<f64> = points
            .iter()
            .map(|p| p.1)
            .chain(success.iter().copied())
            .chain(failure.iter().copied())
            .collect();
        let (mut lo, mut hi) = all
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                (a.min(*v), b.max(*v))
            });
        if !lo.is_finite() {
            (lo, hi) = (0.0, 1.0);
        }
        if (hi - lo).abs() < f64::EPSILON {
            (lo, hi) = (lo - 0.5 * lo.abs().max(1.0), hi + 0.5 * hi.abs().max(1.0));
        }
        let pad = (hi - lo) * 0.08;
        let (lo, hi) = (lo - pad, hi + pad);
        let y_of = |v: f64| top + PANEL - PANEL * (v - lo) / (hi - lo);
        let _ = writeln!(
            out,
            "<text x=\"{LEFT}\" y=\"{:.1}\" font-size=\"12\">{} ({})</text>",
            top - 8.0,
            xml_escape(&m.name),
            xml_escape(&m.phase)
        );
        let _ = writeln!(
            out,
            "<rect x=\"{LEFT}\" y=\"{top:.1}\" width=\"{plot_w}\" height=\"{PANEL}\" fill=\"none\" stroke=\"#333\"/>"
        );
        for v in [lo + pad, hi - pad] {
            let _ = writeln!(
                out,
                "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"end\">{}</text>",
                LEFT - 6.0,
                y_of(v) + 3.0,
                crate::analysis::providers::format_float((v * 1e6).round() / 1e6)
            );
        }
        for (lines, color, cond) in [
            (&success, "#2a9d2a", m.success_condition.as_deref()),
            (&failure, "#d62728", m.failure_condition.as_deref()),
        ] {
            for v in lines {
                let y = y_of(*v);
                let _ = writeln!(
                    out,
                    "<line x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"{color}\" stroke-dasharray=\"6 4\"/>\
                     <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"end\" fill=\"{color}\">{}</text>",
                    LEFT + plot_w,
                    LEFT + plot_w - 4.0,
                    y - 4.0,
                    xml_escape(cond.unwrap_or_default())
                );
            }
        }
        let mut path = String::new();
        for (k, (t, v, _)) in points.iter().enumerate() {
            let _ = write!(
                path,
                "{}{:.1},{:.1} ",
                if k == 0 { "M" } else { "L" },
                x_of(*t),
                y_of(*v)
            );
        }
        if !path.is_empty() {
            let _ = writeln!(
                out,
                "<path d=\"{}\" fill=\"none\" stroke=\"#1f5fbf\" stroke-width=\"1\"/>",
                path.trim_end()
            );
        }
        for (t, v, p) in &points {
            let _ = writeln!(
                out,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3.5\" fill=\"{}\"><title>+{} {} {}</title></circle>",
                x_of(*t),
                y_of(*v),
                phase_color(p),
                offset(b.from, *t),
                crate::analysis::providers::format_float(*v),
                p
            );
        }
        for s in b.measurements.iter().filter(|s| s.metric == m.name) {
            if s.phase == phase::ERROR {
                let _ = writeln!(
                    out,
                    "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"middle\" fill=\"#777\">×<title>{}</title></text>",
                    x_of(s.time),
                    top + 12.0,
                    xml_escape(s.message.as_deref().unwrap_or("Error"))
                );
            }
        }
        if let Some(t) = b.decided_at {
            let x = x_of(t);
            let _ = writeln!(
                out,
                "<line x1=\"{x:.1}\" y1=\"{top:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"{}\" stroke-width=\"1.5\"/>",
                top + PANEL,
                phase_color(&b.phase)
            );
        }
        let axis_y = top + PANEL + 14.0;
        for k in 0..=4 {
            let t = b
                .from
                .checked_add(SignedDuration::from_secs((span * k as f64 / 4.0) as i64))
                .unwrap_or(b.to);
            let _ = writeln!(
                out,
                "<text x=\"{:.1}\" y=\"{axis_y:.1}\" font-size=\"10\" text-anchor=\"middle\" fill=\"#666\">+{}</text>",
                x_of(t),
                offset(b.from, t)
            );
        }
    }
    out.push_str("</svg>\n");
    out
}

/// Parses a `--from`/`--to` time: RFC 3339 (`2024-05-01T10:00:00Z`), Unix seconds, or a
/// duration ago (`2h`, `90m`, `1h30m`).
pub fn parse_time(flag: &str, s: &str, now: Timestamp) -> Result<Timestamp> {
    let s = s.trim();
    if let Ok(t) = s.parse::<Timestamp>() {
        return Ok(t);
    }
    if let Ok(secs) = s.parse::<i64>() {
        return Timestamp::from_second(secs)
            .map_err(|e| CliError::usage(format!("invalid {flag} {s:?}: {e}")));
    }
    if let Some(ns) = crate::api::parse_go_duration(s).filter(|ns| *ns >= 0) {
        return now
            .checked_sub(SignedDuration::from_nanos(
                i64::try_from(ns).unwrap_or(i64::MAX),
            ))
            .map_err(|e| CliError::usage(format!("invalid {flag} {s:?}: {e}")));
    }
    Err(CliError::usage(format!(
        "invalid {flag} {s:?}: expected a time (2024-05-01T10:00:00Z), Unix seconds, or a duration ago (2h)"
    )))
}

/// Parses `NAME=VALUE`.
pub fn parse_arg(s: &str) -> Result<(String, String)> {
    match s.split_once('=') {
        Some((n, v)) if !n.is_empty() => Ok((n.to_string(), v.to_string())),
        _ => Err(CliError::usage(format!(
            "invalid --arg {s:?}: expected NAME=VALUE"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATE: &str = r#"
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: error-ratio}
spec:
  args:
  - name: service
  - name: threshold
    value: "0.05"
  metrics:
  - name: error-ratio
    interval: 1m
    count: 5
    successCondition: result[0] < {{args.threshold}}
    failureCondition: result[0] >= 0.3
    provider:
      prometheus:
        address: http://prometheus:9090
        query: sum(rate(errors{svc="{{args.service}}"}[1m]))
"#;

    #[test]
    fn builds_the_run_the_controller_would() {
        let set = TemplateSet::from_manifest(TEMPLATE, "t.yaml").unwrap();
        let root = set.root(None, false).unwrap();
        let run = analysis_run(&set, &root, &[("service".into(), "checkout".into())]).unwrap();
        let args = run.spec.args.clone().unwrap();
        assert_eq!(args.len(), 2);
        assert_eq!(args[0].value.as_deref(), Some("checkout"));
        assert!(check_metrics(&run).is_ok());
        let e = analysis_run(&set, &root, &[]).unwrap_err();
        assert_eq!(
            e.message,
            "building the AnalysisRun: args.service was not resolved"
        );
        assert_eq!(set.root(Some("nope"), false).unwrap_err().code, 3);
    }

    #[test]
    fn refuses_what_cannot_be_replayed() {
        let web = TEMPLATE.replace(
            "prometheus:\n        address: http://prometheus:9090\n        query: sum(rate(errors{svc=\"{{args.service}}\"}[1m]))",
            "web: {url: \"http://x/{{args.service}}\"}",
        );
        let set = TemplateSet::from_manifest(&web, "t.yaml").unwrap();
        let run = analysis_run(
            &set,
            &set.root(None, false).unwrap(),
            &[("service".into(), "a".into())],
        )
        .unwrap();
        assert_eq!(
            check_metrics(&run).unwrap_err().message,
            "metric \"error-ratio\" uses the web provider: only Prometheus metrics can be evaluated over a past window"
        );
        let secret = TEMPLATE.replace(
            "  - name: service\n",
            "  - name: service\n    valueFrom: {secretKeyRef: {name: s, key: k}}\n",
        );
        let set = TemplateSet::from_manifest(&secret, "t.yaml").unwrap();
        let root = set.root(None, false).unwrap();
        let e = analysis_run(&set, &root, &[]).unwrap_err();
        assert!(e.message.contains("--arg service=VALUE"), "{}", e.message);
        assert!(analysis_run(&set, &root, &[("service".into(), "x".into())]).is_ok());
    }

    #[test]
    fn times_values_and_thresholds() {
        let now: Timestamp = "2024-05-01T12:00:00Z".parse().unwrap();
        assert_eq!(
            parse_time("--from", "2h", now).unwrap(),
            "2024-05-01T10:00:00Z".parse::<Timestamp>().unwrap()
        );
        assert_eq!(
            parse_time("--from", "2024-05-01T09:30:00Z", now).unwrap(),
            "2024-05-01T09:30:00Z".parse::<Timestamp>().unwrap()
        );
        assert_eq!(
            parse_time("--to", "1714557600", now).unwrap().as_second(),
            1714557600
        );
        assert!(parse_time("--from", "yesterday", now).is_err());
        assert_eq!(parse_arg("a=b=c").unwrap(), ("a".into(), "b=c".into()));
        assert!(parse_arg("=x").is_err());
        assert_eq!(numbers("[0.5,NaN,2]"), vec![0.5, 2.0]);
        assert_eq!(numbers("0.25"), vec![0.25]);
        assert!(numbers("").is_empty());
        assert_eq!(
            thresholds("result[0] < 0.05 || isNaN(result[0])"),
            vec![0.05]
        );
        assert_eq!(
            thresholds("result >= 95 && result <= 1e3"),
            vec![95.0, 1000.0]
        );
    }

    #[test]
    fn report_and_chart() {
        let t0: Timestamp = "2024-05-01T10:00:00Z".parse().unwrap();
        let at = |s: i64| t0.checked_add(SignedDuration::from_secs(s)).unwrap();
        let b = Backtest {
            from: t0,
            to: at(600),
            phase: "Failed".into(),
            message: Some(
                "Metric \"m\" assessed Failed due to failed (1) > failureLimit (0)".into(),
            ),
            decided_at: Some(at(60)),
            metrics: vec![MetricSummary {
                name: "m".into(),
                success_condition: Some("result[0] < 0.05".into()),
                failure_condition: None,
                phase: "Failed".into(),
            }],
            measurements: vec![
                Step {
                    time: t0,
                    metric: "m".into(),
                    value: Some("[0.01]".into()),
                    phase: "Successful".into(),
                    message: None,
                },
                Step {
                    time: at(60),
                    metric: "m".into(),
                    value: Some("[0.2]".into()),
                    phase: "Failed".into(),
                    message: None,
                },
            ],
        };
        let text = render(&b);
        assert!(text.contains("2024-05-01T10:01:00Z  +1m0s"), "{text}");
        assert!(
            text.contains(
                "Verdict: Failed at 2024-05-01T10:01:00Z (+1m0s): Metric \"m\" assessed Failed"
            ),
            "{text}"
        );
        let chart = svg(&b);
        assert!(chart.starts_with("<svg") && chart.trim_end().ends_with("</svg>"));
        assert_eq!(chart.matches("<circle").count(), 2);
        assert!(chart.contains("result[0] &lt; 0.05"));
        assert!(b.failed());
    }
}
