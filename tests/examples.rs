//! The manifests of `examples/`, offline: each is valid YAML of Kubernetes objects, its
//! Rollouts and AnalysisTemplates decode into this controller's types and pass its
//! validation, and each is applied by an integration test against the API server
//! (`tests/e2e`; `examples/install.yaml` is checked against the chart by `tests/helm.rs`).

use rollouts::api::{AnalysisTemplate, Rollout};
use serde::Deserialize;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn examples() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(root().join("examples"))
        .expect("reading examples/")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    out.sort();
    out
}

fn documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).expect("reading an example");
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| {
            let v = serde_yaml::Value::deserialize(d)
                .unwrap_or_else(|e| panic!("{}: invalid YAML: {e}", path.display()));
            serde_json::to_value(v).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        })
        .filter(|v| !v.is_null())
        .collect()
}

#[test]
fn examples_are_valid_objects_and_rollouts() {
    let files = examples();
    assert!(files.len() >= 6, "{files:?}");
    for path in files {
        let docs = documents(&path);
        assert!(!docs.is_empty(), "{}: empty", path.display());
        for doc in docs {
            let what = format!(
                "{}: {} {}",
                path.display(),
                doc["kind"],
                doc["metadata"]["name"]
            );
            assert!(
                doc["apiVersion"].is_string()
                    && doc["kind"].is_string()
                    && doc["metadata"]["name"].is_string(),
                "{what}: not a Kubernetes object"
            );
            match doc["kind"].as_str() {
                Some("Rollout") => {
                    let ro: Rollout = serde_json::from_value(doc.clone())
                        .unwrap_or_else(|e| panic!("{what}: {e}"));
                    let errors = rollouts::plan::validate::validate_rollout(&ro);
                    assert!(errors.is_empty(), "{what}: {errors:?}");
                    // Decodes into exactly what was written: no field is silently ignored.
                    let back = serde_json::to_value(&ro).unwrap_or_default();
                    assert_eq!(back["spec"]["strategy"], doc["spec"]["strategy"], "{what}");
                }
                Some("AnalysisTemplate") => {
                    let t: AnalysisTemplate = serde_json::from_value(doc.clone())
                        .unwrap_or_else(|e| panic!("{what}: {e}"));
                    assert!(!t.spec.metrics.unwrap_or_default().is_empty(), "{what}");
                }
                _ => {}
            }
        }
    }
}

#[test]
fn every_example_is_applied_by_an_integration_test() {
    let mut tests = String::new();
    for dir in ["tests/e2e", "tests"] {
        for e in std::fs::read_dir(root().join(dir))
            .expect("reading tests")
            .flatten()
        {
            if e.path().extension().is_some_and(|x| x == "rs") {
                tests.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
            }
        }
    }
    for path in examples() {
        let name = path
            .file_name()
            .map(|f| f.to_string_lossy().to_string())
            .unwrap_or_default();
        let rel = format!("\"examples/{name}\"");
        assert!(
            tests.contains(&rel),
            "examples/{name} is not applied by any test under tests/"
        );
    }
}
