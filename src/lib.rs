//! rollouts: a Kubernetes progressive-delivery controller, drop-in compatible with Argo Rollouts.
//!
//! The pure core (API types, validation, the planner, traffic builders, analysis judgement)
//! is the `rollouts-core` crate, re-exported here under the same paths ([`api`], [`plan`],
//! [`traffic`], and the judgement inside [`analysis`]). This crate adds what talks to the
//! world: the controller, the CLI, the metric providers and operations.
pub mod analysis;
pub mod cli;
pub mod controller;
pub mod events;
pub mod notify;
pub mod ops;

pub use rollouts_core::{api, experiment, plan, traffic};
