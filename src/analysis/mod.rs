//! The analysis engine: AnalysisRuns measured by metric providers, judged by expressions.
//!
//! The judgement is pure and lives in the core crate (`rollouts_core::analysis`, re-exported
//! here: [`core`], [`condition`], [`args`], [`build`]). This crate adds what does I/O or keeps
//! state:
//!
//! - [`metrics`]: [`metrics::AnalysisMetrics`], the latest measurement of every metric as a
//!   gauge (bounded labels: namespace, rollout, template, metric).
//! - [`providers`]: Prometheus, Web, Job, Datadog, New Relic, CloudWatch, Graphite, InfluxDB,
//!   Wavefront, Kayenta and SkyWalking behind the [`providers::Provider`] trait (I/O).
//!
//! The controller is `controller::analysis`; `kubectl-rollouts analysis backtest` runs the
//! same core over past Prometheus data.

pub use rollouts_core::analysis::*;

pub mod metrics;
pub mod providers;

pub use metrics::AnalysisMetrics;
