//! AnalysisRun judgement, pure: measurements are taken by the providers of the `rollouts`
//! crate, everything else is here.
//!
//! - [`core`]: the AnalysisRun state machine, a port of upstream's `analysis/analysis.go`.
//!   [`core::begin`] decides what to measure now (or that the run is done), the controller
//!   takes the measurements, [`core::finish`] folds them into the status: metric and run
//!   phases, `runSummary`/`dryRunSummary`, measurement retention, events and the exact
//!   instant of the next reconcile.
//! - [`condition`]: `successCondition`/`failureCondition` in the expr language (the
//!   `expr-lang` crate, plus upstream's helpers `asInt`, `asFloat`, `isNaN`, `isInf`, `isNil`,
//!   `default`).
//! - [`args`]: `{{args.name}}` substitution and argument merging.
//! - [`build`]: the public API the Rollout side uses to create AnalysisRuns from templates
//!   ([`build::build_analysis_run`], [`build::resolve_templates`],
//!   [`build::resolve_rollout_args`]).

pub mod args;
pub mod build;
pub mod condition;
pub mod core;

pub use build::{
    BuildError, BuildRequest, ResolvedTemplate, build_analysis_run, resolve_rollout_args,
    resolve_templates,
};

/// Annotation [`build::build_analysis_run`] puts on a run: a JSON object mapping each metric
/// name to the template it came from. Used only to label exported gauges.
pub const METRIC_TEMPLATES_ANNOTATION: &str = "analysis.rollouts.io/metric-templates";

/// Job label holding the owning AnalysisRun's uid (upstream's key).
pub const JOB_RUN_UID_LABEL: &str = "analysisrun.argoproj.io/uid";
/// Job annotation holding the owning AnalysisRun's name (upstream's key).
pub const JOB_RUN_NAME_ANNOTATION: &str = "analysisrun.argoproj.io/name";
/// Job annotation holding the metric name (upstream's key).
pub const JOB_METRIC_NAME_ANNOTATION: &str = "analysisrun.argoproj.io/metric-name";
/// Measurement metadata key holding the Job name (upstream's key).
pub const JOB_NAME_KEY: &str = "job-name";

#[cfg(test)]
mod tests;
