//! Developer tooling for rollouts: the local control plane ([`cluster`]), the kubelet stand-in
//! ([`podsim`]), the integration-test harness ([`testkit`]) and the scale benchmark ([`bench`]).
pub mod bench;
pub mod cluster;
pub mod demo;
pub mod podsim;
pub mod prometheus;
pub mod python;
pub mod testkit;
