//! rollouts: a Kubernetes progressive-delivery controller, drop-in compatible with Argo Rollouts.
pub mod analysis;
pub mod api;
pub mod cli;
pub mod controller;
pub mod ops;
pub mod plan;
pub mod traffic;
