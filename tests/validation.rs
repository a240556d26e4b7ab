//! Validation against upstream Argo Rollouts' own manifests (`shared/compat/argo-rollouts`
//! beside the repository):
//!
//! a. every Rollout under `examples/`, `docs/` and `test/e2e/` (but `test/e2e/expectedfailures/`)
//!    validates without errors, except the documents listed in [`EXCEPTIONS`];
//! b. every Rollout in `test/e2e/expectedfailures/malformed-rollout*.yaml` gives at least one.
//!
//! Without the corpus the test prints a notice and passes, unless `ROLLOUTS_REQUIRE_COMPAT=1`.

use std::path::{Path, PathBuf};

use rollouts::api::Rollout;
use rollouts::plan::validate::validate_rollout;
use serde::Deserialize as _;

/// Documents that are not valid as written: `(file, placeholder, reason)`. Each must fail
/// as is, and validate once every `placeholder` is replaced by a valid name (as upstream's
/// end-to-end harness does before applying them).
///
/// No document relying on objects only the controller looks up (Services, Ingresses,
/// AnalysisTemplates, workloadRef targets) needs an exception: those references are checked
/// when reconciling, not by this function.
const EXCEPTIONS: &[(&str, &str, &str)] = &[
    (
        "test/e2e/functional/bluegreen-duration-template.yaml",
        "ROLLOUT_NAME",
        "upper-case placeholder as the container name (not an RFC 1123 label)",
    ),
    (
        "test/e2e/functional/canary-duration-template.yaml",
        "ROLLOUT_NAME",
        "upper-case placeholder as the container name (not an RFC 1123 label)",
    ),
    (
        "test/e2e/functional/nginx-template.yaml",
        "REPLACEME",
        "upper-case placeholder as the container name (not an RFC 1123 label)",
    ),
    (
        "test/e2e/step-plugin/template-rollout.yaml",
        "$$name$$",
        "`$$` placeholder inside a selector label value",
    ),
];

/// What a placeholder is replaced with.
const PLACEHOLDER_VALUE: &str = "placeholder";

fn corpus() -> Option<PathBuf> {
    xtask::testkit::compat_corpus()
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            yaml_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(path);
        }
    }
}

/// The Rollouts of a file, by name. Documents that are not YAML or not Rollouts are skipped
/// only if the file is a template (`{{`); otherwise they are errors.
fn rollouts(path: &Path, placeholder: Option<&str>) -> Result<Vec<(String, Rollout)>, String> {
    let mut text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    if let Some(p) = placeholder {
        text = text.replace(p, PLACEHOLDER_VALUE);
    }
    let templated = text.contains("{{");
    let mut out = Vec::new();
    for (i, de) in serde_yaml::Deserializer::from_str(&text).enumerate() {
        let doc = match serde_yaml::Value::deserialize(de) {
            Ok(doc) => doc,
            Err(_) if templated => break,
            Err(e) => return Err(format!("document {i}: {e}")),
        };
        if doc.get("kind").and_then(serde_yaml::Value::as_str) != Some("Rollout") {
            continue;
        }
        match serde_yaml::from_value::<Rollout>(doc) {
            Ok(ro) => out.push((ro.metadata.name.clone().unwrap_or_default(), ro)),
            Err(_) if templated => {}
            Err(e) => return Err(format!("document {i}: not a Rollout: {e}")),
        }
    }
    Ok(out)
}

#[test]
fn corpus_rollouts_validate_as_upstream_expects() {
    let Some(dir) = corpus() else { return };
    let mut files = Vec::new();
    for sub in ["examples", "docs", "test/e2e"] {
        yaml_files(&dir.join(sub), &mut files);
    }
    let mut problems = Vec::new();
    let (mut valid, mut malformed) = (0, 0);
    for path in &files {
        let rel = path
            .strip_prefix(&dir)
            .unwrap_or(path)
            .to_string_lossy()
            .replace('\\', "/");
        let expected_failure = rel.starts_with("test/e2e/expectedfailures/");
        let must_fail = expected_failure
            && path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("malformed-rollout"));
        if expected_failure && !must_fail {
            continue;
        }
        let exception = EXCEPTIONS.iter().find(|(f, _, _)| *f == rel);
        if let Some((_, placeholder, reason)) = exception {
            match rollouts(path, Some(placeholder)) {
                Ok(docs) if !docs.is_empty() => {
                    for (name, ro) in docs {
                        let errs = validate_rollout(&ro);
                        if let Some(first) = errs.first() {
                            problems.push(format!(
                                "{rel} ({name}) with {placeholder} replaced: {first}"
                            ));
                        }
                    }
                }
                Ok(_) => problems.push(format!("{rel}: listed in EXCEPTIONS but holds no Rollout")),
                Err(e) => problems.push(format!("{rel} with {placeholder} replaced: {e}")),
            }
            println!("exception {rel}: {reason}");
        }
        let docs = match rollouts(path, None) {
            Ok(docs) => docs,
            Err(e) => {
                problems.push(format!("{rel}: {e}"));
                continue;
            }
        };
        for (name, ro) in docs {
            let errs = validate_rollout(&ro);
            let excepted = exception.is_some();
            if must_fail {
                malformed += 1;
                match errs.first() {
                    Some(first) => {
                        println!("{rel} ({name}): {} error(s), first: {first}", errs.len())
                    }
                    None => problems.push(format!(
                        "{rel} ({name}): expected validation errors, got none"
                    )),
                }
            } else if excepted {
                if errs.is_empty() {
                    problems.push(format!(
                        "{rel} ({name}): listed in EXCEPTIONS but validates"
                    ));
                }
            } else if errs.is_empty() {
                valid += 1;
            } else {
                let list: Vec<String> = errs.iter().map(ToString::to_string).collect();
                problems.push(format!("{rel} ({name}):\n    {}", list.join("\n    ")));
            }
        }
    }
    println!("{valid} corpus Rollouts valid, {malformed} malformed Rollouts rejected");
    assert!(valid > 0 && malformed > 0, "the corpus holds no Rollouts");
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}
