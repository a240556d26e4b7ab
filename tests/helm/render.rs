//! `charts/rollouts` through Helm's own engine (helm-python-sdk, via `tests/helm/chart.py`).
//! Shared by `tests/helm.rs` and `tests/e2e/ops.rs`.
#![allow(dead_code)]

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn chart_dir() -> PathBuf {
    root().join("charts/rollouts")
}

/// Runs `chart.py` with `args`; the JSON it printed. Panics (failing the test) when Python or
/// the Helm engine is missing: these tests never skip.
pub fn chart_py(args: &[&str]) -> Value {
    if let Err(e) = xtask::python::ensure_python_packages() {
        panic!("the Helm engine (pip package helm-python-sdk) is not available: {e:#}");
    }
    let script = root().join("tests/helm/chart.py");
    let out = Command::new(xtask::python::python())
        .arg(&script)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "chart.py {args:?} printed no JSON ({e}); stdout: {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    if !out.status.success() {
        panic!("chart.py {args:?} failed: {}", v["error"]);
    }
    v
}

/// The rendered chart.
pub struct Rendered {
    /// Template path → rendered text.
    pub manifests: BTreeMap<String, String>,
    /// `crds/` file name → text.
    pub crds: BTreeMap<String, String>,
    /// The Helm SDK version that rendered it.
    pub helm: String,
}

/// Renders the chart as `helm install NAME -n NAMESPACE --values VALUES` would.
pub fn render(name: &str, namespace: &str, values: &Value) -> Rendered {
    let v = chart_py(&[
        "render",
        chart_dir().to_str().unwrap_or_default(),
        name,
        namespace,
        &values.to_string(),
    ]);
    let manifests = v["manifests"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, t)| (k.clone(), t.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default();
    let crds = v["crds"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            let file = c["filename"]
                .as_str()
                .or(c["name"].as_str())
                .unwrap_or_default();
            let file = Path::new(file)
                .file_name()
                .map(|f| f.to_string_lossy().to_string())
                .unwrap_or_default();
            (file, c["data"].as_str().unwrap_or_default().to_string())
        })
        .collect();
    Rendered {
        manifests,
        crds,
        helm: v["helm"].as_str().unwrap_or_default().to_string(),
    }
}

/// Strict lint report (`errors`, `messages`).
pub fn lint(values: &Value) -> Value {
    chart_py(&[
        "lint",
        chart_dir().to_str().unwrap_or_default(),
        &values.to_string(),
    ])
}

/// The schema's complaint about `values`, if any.
pub fn schema_error(values: &Value) -> Option<String> {
    let v = chart_py(&[
        "schema",
        chart_dir().to_str().unwrap_or_default(),
        &values.to_string(),
    ]);
    v["error"].as_str().map(str::to_string)
}

/// Apply order of kinds (dependencies first).
fn kind_rank(kind: &str) -> usize {
    [
        "Namespace",
        "CustomResourceDefinition",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "Service",
        "Deployment",
        "PodDisruptionBudget",
        "ServiceMonitor",
    ]
    .iter()
    .position(|k| *k == kind)
    .unwrap_or(usize::MAX)
}

impl Rendered {
    /// Every object the templates rendered (not the CRDs), in apply order.
    pub fn objects(&self) -> Vec<Value> {
        let mut out = Vec::new();
        for (path, text) in &self.manifests {
            if !path.ends_with(".yaml") {
                continue;
            }
            for doc in serde_yaml::Deserializer::from_str(text) {
                use serde::Deserialize;
                let v = serde_yaml::Value::deserialize(doc)
                    .unwrap_or_else(|e| panic!("{path}: invalid YAML: {e}"));
                if v.is_null() {
                    continue;
                }
                out.push(
                    serde_json::to_value(v).unwrap_or_else(|e| panic!("{path}: not JSON: {e}")),
                );
            }
        }
        out.sort_by_key(|o| {
            (
                kind_rank(o["kind"].as_str().unwrap_or_default()),
                o["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        });
        out
    }

    /// The objects of one kind.
    pub fn of_kind(&self, kind: &str) -> Vec<Value> {
        self.objects()
            .into_iter()
            .filter(|o| o["kind"] == kind)
            .collect()
    }

    /// The one object of `kind`.
    pub fn one(&self, kind: &str) -> Value {
        let all = self.of_kind(kind);
        assert_eq!(all.len(), 1, "expected one {kind}, got {}", all.len());
        all.into_iter().next().unwrap_or_default()
    }

    /// The rendered templates verbatim (comments kept), as one multi-document YAML text in
    /// apply order: what `helm template` prints.
    pub fn text(&self) -> String {
        let order = [
            "serviceaccount.yaml",
            "rbac.yaml",
            "leader-election-rbac.yaml",
            "service.yaml",
            "deployment.yaml",
            "pdb.yaml",
            "servicemonitor.yaml",
        ];
        let mut files: Vec<(&String, &String)> = self
            .manifests
            .iter()
            .filter(|(p, t)| p.ends_with(".yaml") && !t.trim().is_empty())
            .collect();
        files.sort_by_key(|(p, _)| {
            order
                .iter()
                .position(|o| p.ends_with(&format!("/templates/{o}")))
                .unwrap_or(usize::MAX)
        });
        let mut out = String::new();
        for (path, text) in files {
            let file = path.split_once('/').map_or(path.as_str(), |(_, f)| f);
            out.push_str(&format!("---\n# Source: {file}\n"));
            out.push_str(text.trim_matches('\n'));
            out.push('\n');
        }
        out
    }

    /// The objects as one multi-document YAML text.
    pub fn yaml(&self) -> String {
        self.objects()
            .iter()
            .map(|o| serde_yaml::to_string(o).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("---\n")
    }
}

/// The RBAC rules of a (Cluster)Role as (apiGroup, resource, verbs) triples, with
/// resourceNames when set.
pub fn rules(role: &Value) -> Vec<(String, String, Vec<String>, Vec<String>)> {
    let mut out = Vec::new();
    for r in role["rules"].as_array().into_iter().flatten() {
        let strs = |k: &str| -> Vec<String> {
            r[k].as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        };
        for g in strs("apiGroups") {
            for res in strs("resources") {
                out.push((g.clone(), res, strs("verbs"), strs("resourceNames")));
            }
        }
    }
    out
}
