//! Developer tooling for rollouts: the local control plane ([`cluster`]), the kubelet stand-in
//! ([`podsim`]), the integration-test harness ([`testkit`]), the scale benchmark ([`bench`]) and the
//! chaos suite ([`chaos`]).
pub mod bench;
pub mod chaos;
pub mod cluster;
pub mod demo;
pub mod podsim;
pub mod prometheus;
pub mod python;
pub mod testkit;
