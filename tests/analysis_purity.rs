//! The analysis core (`src/analysis/*.rs`, everything but `providers/`) is pure: no API client,
//! no async runtime, no clock, no I/O. The controller gives it `now` and the measurements.

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

#[test]
fn analysis_core_is_pure() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/analysis");
    let mut bad = Vec::new();
    let mut checked = 0;
    for e in std::fs::read_dir(&dir).unwrap().flatten() {
        let p = e.path();
        // Providers do I/O by design; the unit tests may use anything.
        if p.is_dir() || p.extension().is_none_or(|x| x != "rs") {
            continue;
        }
        if p.file_name().is_some_and(|n| n == "tests.rs") {
            continue;
        }
        checked += 1;
        let text = std::fs::read_to_string(&p).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
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
                        l
                    ));
                }
            }
        }
    }
    assert!(
        checked >= 6,
        "expected the core's files in {}",
        dir.display()
    );
    assert!(
        bad.is_empty(),
        "src/analysis must stay pure:\n{}",
        bad.join("\n")
    );
}
