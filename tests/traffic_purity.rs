//! `src/traffic` is pure like `src/plan`: no API client, no async runtime, no clock, no I/O,
//! no environment. This test reads its sources and fails on any use of those.

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

fn check(dir: &Path, bad: &mut Vec<String>, files: &mut usize) {
    for e in std::fs::read_dir(dir).expect("src/traffic").flatten() {
        let p = e.path();
        if p.is_dir() {
            check(&p, bad, files);
            continue;
        }
        if p.extension().is_none_or(|x| x != "rs") {
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

#[test]
fn traffic_module_is_pure() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/traffic");
    let (mut bad, mut files) = (Vec::new(), 0);
    check(&dir, &mut bad, &mut files);
    assert!(files >= 5, "only {files} source files found");
    assert!(
        bad.is_empty(),
        "src/traffic must stay pure:\n{}",
        bad.join("\n")
    );
}
