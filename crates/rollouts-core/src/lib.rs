//! The pure core of rollouts: the `argoproj.io/v1alpha1` API types ([`api`]), validation and
//! the planner ([`plan`]: `plan(&Observed, now) -> Plan`), the traffic routers' "build the
//! desired object" halves ([`traffic`]), the AnalysisRun judgement ([`analysis`]) and the Experiment planner ([`experiment`]).
//!
//! Nothing here talks to the API server, reads a clock, spawns a task or does I/O: the crate's
//! dependencies are data-only (k8s-openapi, kube-core, serde, expr-lang...), so the compiler
//! enforces it. The `rollouts` crate (controller, CLI, operations) re-exports these modules
//! under the same paths.

pub mod analysis;
pub mod api;
pub mod experiment;
pub mod plan;
pub mod traffic;
