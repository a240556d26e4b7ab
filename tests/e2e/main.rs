//! Integration tests against a real API server: one local control plane per test run (started
//! on first use by `xtask::testkit`), one namespace and one in-process controller per test.
mod analysis;
mod argocd;
#[path = "../argocd_lua/mod.rs"]
mod argocd_lua;
mod backtest;
mod bluegreen;
mod browser;
mod canary;
mod cli;
mod cluster;
mod common;
mod dashboard;
mod experiment;
mod experiment_step;
#[path = "../fake_http/mod.rs"]
mod fake_http;
mod notify;
mod ops;
mod provider_analysis;
mod rollout_analysis;
mod traffic;
mod upstream_bluegreen;
mod upstream_canary;
mod upstream_fixtures;
mod upstream_functional;
