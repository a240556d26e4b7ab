//! The pure core (`crates/rollouts-core`: API types, validation, the planner, traffic builders,
//! analysis judgement) has no API client, no async runtime and no HTTP: the compiler enforces
//! it, because none is among the crate's dependencies. This test keeps it so, by reading the
//! crate's normal dependency tree (`cargo tree -p rollouts-core -e normal`). The standard
//! library's clock, environment, files, network and threads are kept out by clippy
//! (`crates/rollouts-core/clippy.toml`, `disallowed-methods`).

use std::process::Command;

/// Crates that would let the core reach the world, and why each is refused.
const FORBIDDEN: &[(&str, &str)] = &[
    (
        "kube",
        "the kube client (kube-core and kube-derive are data-only)",
    ),
    ("kube-client", "an API client"),
    ("kube-runtime", "the controller runtime"),
    ("tokio", "an async runtime"),
    ("async-std", "an async runtime"),
    ("futures", "async code"),
    ("mio", "network I/O"),
    ("hyper", "HTTP"),
    ("reqwest", "HTTP"),
    ("tower", "services and I/O"),
    ("prometheus-http-query", "HTTP"),
    ("rustls", "TLS"),
];

fn core_dependencies() -> Vec<String> {
    let out = Command::new(env!("CARGO"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "tree",
            "-p",
            "rollouts-core",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--format",
            "{p}",
        ])
        .output()
        .expect("running cargo tree");
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

#[test]
fn the_core_crate_depends_on_data_only() {
    let deps = core_dependencies();
    assert!(
        deps.iter().any(|d| d == "rollouts-core") && deps.iter().any(|d| d == "k8s-openapi"),
        "unexpected cargo tree output: {deps:?}"
    );
    let bad: Vec<String> = deps
        .iter()
        .filter_map(|d| {
            FORBIDDEN
                .iter()
                .find(|(name, _)| d == name)
                .map(|(name, why)| format!("{name}: {why}"))
        })
        .collect();
    assert!(
        bad.is_empty(),
        "rollouts-core must stay pure; its dependency tree has:\n{}",
        bad.join("\n")
    );
}
