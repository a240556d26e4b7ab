//! Integration tests against a real API server: one local control plane per test run (started
//! on first use by `xtask::testkit`), one namespace and one in-process controller per test.
mod analysis;
mod bluegreen;
mod canary;
mod cli;
mod cluster;
mod common;
mod ops;
mod rollout_analysis;
mod traffic;
