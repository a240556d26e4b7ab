//! The pure parts of the controller: `src/plan`, `src/traffic` and the analysis core
//! (`src/analysis/*.rs`, everything but `providers/`). No API client, no async runtime, no
//! clock, no I/O, no environment: they are given `now`, the observed objects and the
//! measurements. This test reads their sources and fails on any use of those.

use std::path::Path;

const FORBIDDEN: &[(&str, &str)] = &[
    ("kube::Api", "an API client"),
    ("kube::Client", "an API client"),
    ("kube::runtime", "the controller runtime"),
    ("tokio", "the async runtime"),
    ("async fn", "async code"),
    (".await", "async code"),
    ("Timestamp::now", "the clock"),
    ("Utc::now", "the clock"),
    ("SystemTime", "the clock"),
    ("Instant::now", "the clock"),
    ("std::thread", "threads"),
    ("std::fs", "file I/O"),
    ("std::net", "network I/O"),
    ("std::env", "the environment"),
    ("reqwest", "HTTP"),
    ("prometheus_http_query", "HTTP"),
];

/// The forbidden uses in the `.rs` files of `src/<dir>` (into its subfolders when `recurse`),
/// test modules and `tests.rs` files aside; and how many files were read.
fn violations(dir: &str, recurse: bool) -> (Vec<String>, usize) {
    fn scan(dir: &Path, recurse: bool, bad: &mut Vec<String>, files: &mut usize) {
        let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                if recurse {
                    scan(&p, recurse, bad, files);
                }
                continue;
            }
            if p.extension().is_none_or(|x| x != "rs")
                || p.file_name().is_some_and(|n| n == "tests.rs")
            {
                continue;
            }
            *files += 1;
            let text = std::fs::read_to_string(&p).expect("read");
            // Test modules may use whatever they like.
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            for (i, line) in code.lines().enumerate() {
                if line.trim_start().starts_with("//") {
                    continue;
                }
                for (pat, what) in FORBIDDEN {
                    if line.contains(pat) {
                        bad.push(format!(
                            "{}:{}: uses {what} (`{pat}`): {}",
                            p.display(),
                            i + 1,
                            line.trim()
                        ));
                    }
                }
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join(dir);
    let (mut bad, mut files) = (Vec::new(), 0);
    scan(&root, recurse, &mut bad, &mut files);
    (bad, files)
}

#[test]
fn plan_module_is_pure() {
    let (bad, _) = violations("plan", true);
    assert!(
        bad.is_empty(),
        "src/plan must stay pure:\n{}",
        bad.join("\n")
    );
}

#[test]
fn traffic_module_is_pure() {
    let (bad, files) = violations("traffic", true);
    assert!(files >= 5, "only {files} source files found");
    assert!(
        bad.is_empty(),
        "src/traffic must stay pure:\n{}",
        bad.join("\n")
    );
}

#[test]
fn analysis_core_is_pure() {
    // Providers (a subfolder) do I/O by design.
    let (bad, checked) = violations("analysis", false);
    assert!(checked >= 6, "expected the analysis core's files");
    assert!(
        bad.is_empty(),
        "src/analysis must stay pure:\n{}",
        bad.join("\n")
    );
}
