//! [`AnalysisMetrics`]: the latest measurement of every analysis metric, as gauges.
//!
//! Labels are bounded: `namespace`, `rollout` (the run's owner), `template` (where the metric
//! came from, see [`crate::analysis::METRIC_TEMPLATES_ANNOTATION`]) and `metric` — never the
//! run's name, which changes with every revision. [`AnalysisMetrics::render`] gives the
//! Prometheus text exposition format; [`AnalysisMetrics::samples`] gives the raw samples to
//! feed another registry (e.g. `prometheus-client`).

use crate::api::{AnalysisRun, Measurement, analysis_phase};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// Identity of one exported series.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MetricKey {
    pub namespace: String,
    pub rollout: String,
    pub template: String,
    pub metric: String,
}

/// The latest measurement of one metric.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// The measured value (`NaN` when not a single number).
    pub value: f64,
    /// The measurement's phase.
    pub phase: String,
}

/// In-memory registry of the latest measurement per (namespace, rollout, template, metric).
#[derive(Debug, Default)]
pub struct AnalysisMetrics {
    samples: Mutex<BTreeMap<MetricKey, Sample>>,
}

const PHASES: [&str; 6] = [
    analysis_phase::PENDING,
    analysis_phase::RUNNING,
    analysis_phase::SUCCESSFUL,
    analysis_phase::FAILED,
    analysis_phase::ERROR,
    analysis_phase::INCONCLUSIVE,
];

/// A measurement's value as a number: a plain number, or a list holding exactly one.
pub fn numeric_value(value: Option<&str>) -> f64 {
    let Some(v) = value.map(str::trim) else {
        return f64::NAN;
    };
    let inner = v
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(v);
    if inner.contains(',') {
        return f64::NAN;
    }
    match inner.trim() {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        s => s.parse().unwrap_or(f64::NAN),
    }
}

/// The labels of a run's metric: its namespace, its owning Rollout (or Experiment), and the
/// template the metric came from.
pub fn key_for(run: &AnalysisRun, metric: &str) -> MetricKey {
    let md = &run.metadata;
    let owner = md
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
        .or_else(|| md.owner_references.iter().flatten().next())
        .map(|o| o.name.clone())
        .unwrap_or_default();
    let template = md
        .annotations
        .as_ref()
        .and_then(|a| a.get(crate::analysis::METRIC_TEMPLATES_ANNOTATION))
        .and_then(|j| serde_json::from_str::<BTreeMap<String, String>>(j).ok())
        .and_then(|m| m.get(metric).cloned())
        .unwrap_or_default();
    MetricKey {
        namespace: md.namespace.clone().unwrap_or_default(),
        rollout: owner,
        template,
        metric: metric.to_string(),
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

impl AnalysisMetrics {
    /// A new, empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a completed measurement of `metric` in `run`.
    pub fn record(&self, run: &AnalysisRun, metric: &str, m: &Measurement) {
        let key = key_for(run, metric);
        let sample = Sample {
            value: numeric_value(m.value.as_deref()),
            phase: m.phase.clone().unwrap_or_default(),
        };
        if let Ok(mut s) = self.samples.lock() {
            s.insert(key, sample);
        }
    }

    /// All samples.
    pub fn samples(&self) -> Vec<(MetricKey, Sample)> {
        self.samples
            .lock()
            .map(|s| s.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    }

    /// The Prometheus text exposition of the registry:
    /// `rollouts_analysis_measurement_value` (the value) and
    /// `rollouts_analysis_measurement_phase` (1 for the phase of the latest measurement, 0 for
    /// the others).
    pub fn render(&self) -> String {
        use std::fmt::Write;
        let samples = self.samples();
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP rollouts_analysis_measurement_value Value of the latest measurement of an analysis metric (NaN when not a single number).\n# TYPE rollouts_analysis_measurement_value gauge"
        );
        for (k, s) in &samples {
            let _ = writeln!(
                out,
                "rollouts_analysis_measurement_value{{namespace=\"{}\",rollout=\"{}\",template=\"{}\",metric=\"{}\"}} {}",
                escape(&k.namespace),
                escape(&k.rollout),
                escape(&k.template),
                escape(&k.metric),
                format_value(s.value)
            );
        }
        let _ = writeln!(
            out,
            "# HELP rollouts_analysis_measurement_phase Phase of the latest measurement of an analysis metric.\n# TYPE rollouts_analysis_measurement_phase gauge"
        );
        for (k, s) in &samples {
            for p in PHASES {
                let _ = writeln!(
                    out,
                    "rollouts_analysis_measurement_phase{{namespace=\"{}\",rollout=\"{}\",template=\"{}\",metric=\"{}\",phase=\"{p}\"}} {}",
                    escape(&k.namespace),
                    escape(&k.rollout),
                    escape(&k.template),
                    escape(&k.metric),
                    u8::from(s.phase == p)
                );
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numeric_values() {
        assert_eq!(numeric_value(Some("0.5")), 0.5);
        assert_eq!(numeric_value(Some("[0.25]")), 0.25);
        assert!(numeric_value(Some("[1,2]")).is_nan());
        assert!(numeric_value(Some("\"ok\"")).is_nan());
        assert!(numeric_value(None).is_nan());
        assert_eq!(numeric_value(Some("+Inf")), f64::INFINITY);
    }

    #[test]
    fn renders_bounded_labels() {
        let run: AnalysisRun = serde_json::from_value(json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisRun",
            "metadata": {"name": "ro-abc-1", "namespace": "ns",
                "annotations": {crate::analysis::METRIC_TEMPLATES_ANNOTATION: "{\"err\":\"error-rate\"}"},
                "ownerReferences": [{"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
                    "name": "ro", "uid": "u", "controller": true}]},
            "spec": {"metrics": []}
        }))
        .unwrap();
        let reg = AnalysisMetrics::new();
        let m = Measurement {
            phase: Some("Failed".into()),
            value: Some("[0.3]".into()),
            ..Default::default()
        };
        reg.record(&run, "err", &m);
        let text = reg.render();
        assert!(text.contains(
            "rollouts_analysis_measurement_value{namespace=\"ns\",rollout=\"ro\",template=\"error-rate\",metric=\"err\"} 0.3"
        ), "{text}");
        assert!(text.contains("metric=\"err\",phase=\"Failed\"} 1"));
        assert!(text.contains("metric=\"err\",phase=\"Successful\"} 0"));
        assert!(!text.contains("ro-abc-1"));
        // A second run of the same rollout replaces the series rather than adding one.
        let mut run2 = run.clone();
        run2.metadata.name = Some("ro-def-1".into());
        reg.record(&run2, "err", &m);
        assert_eq!(reg.samples().len(), 1);
    }
}
