//! rollouts: a Kubernetes progressive-delivery controller, drop-in compatible with Argo Rollouts.
pub mod api;
pub mod controller;
pub mod plan;
