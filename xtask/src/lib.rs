//! Developer tooling for rollouts: the local control plane ([`cluster`]), the kubelet stand-in
//! ([`podsim`]) and the integration-test harness ([`testkit`]).
pub mod cluster;
pub mod demo;
pub mod podsim;
pub mod prometheus;
pub mod python;
pub mod testkit;
