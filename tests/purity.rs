//! `src/plan` is pure: no API client, no async runtime, no clock, no I/O. This test reads its
//! sources and fails on any use of those (the planner gets `now` as an argument).

use std::path::Path;

const FORBIDDEN: &[(&str, &str)] = &[
    ("kube::Api", "an API client"),
    ("kube::Client", "an API client"),
    ("kube::runtime", "the controller runtime"),
    ("tokio", "the async runtime"),
    ("async fn", "async code"),
    (".await", "async code"),
    ("Timestamp::now", "the clock"),
    ("SystemTime", "the clock"),
    ("Instant::now", "the clock"),
    ("std::thread", "threads"),
    ("std::fs", "file I/O"),
    ("std::net", "network I/O"),
    ("std::env", "the environment"),
    ("reqwest", "HTTP"),
    ("prometheus_http_query", "HTTP"),
];

fn check(dir: &Path, bad: &mut Vec<String>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            check(&p, bad);
            continue;
        }
        if p.extension().is_none_or(|x| x != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&p).unwrap();
        // Test modules may use whatever they like.
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        let is_test_file = p.file_name().is_some_and(|n| n == "tests.rs");
        if is_test_file {
            continue;
        }
        for (i, line) in code.lines().enumerate() {
            let l = line.trim_start();
            if l.starts_with("//") {
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

#[test]
fn plan_module_is_pure() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/plan");
    let mut bad = Vec::new();
    check(&dir, &mut bad);
    assert!(
        bad.is_empty(),
        "src/plan must stay pure:\n{}",
        bad.join("\n")
    );
}
