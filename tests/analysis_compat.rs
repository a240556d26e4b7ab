//! Compatibility of the analysis engine with upstream Argo Rollouts (no cluster needed):
//!
//! - every `successCondition`/`failureCondition` in the upstream corpus
//!   (`shared/compat/argo-rollouts`) parses with the `expr-lang` crate and evaluates to a
//!   boolean on a result of the shape its provider returns;
//! - the expressions upstream documents evaluate to what upstream's evaluator gives;
//! - every upstream AnalysisTemplate/ClusterAnalysisTemplate builds into an AnalysisRun (with
//!   `build_analysis_run`, includes resolved) whose spec the core accepts.
//!
//! The corpus is read from `$CARGO_MANIFEST_DIR/../shared/compat/argo-rollouts`; when absent
//! the corpus tests are skipped with a notice, unless `ROLLOUTS_REQUIRE_COMPAT=1`.

use expr::Value as X;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use rollouts::analysis::condition::{check_syntax, eval_condition, json_to_value};
use rollouts::analysis::{
    BuildRequest, ResolvedTemplate, build_analysis_run, core, resolve_templates,
};
use rollouts::api::{AnalysisTemplateSpec, Argument};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn corpus() -> Option<PathBuf> {
    xtask::testkit::compat_corpus()
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            yaml_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "yaml" || x == "yml") {
            out.push(p);
        }
    }
}

/// Every YAML document of the corpus, with its file.
fn documents(dir: &Path) -> Vec<(PathBuf, Value)> {
    use serde::Deserialize;
    let mut files = Vec::new();
    yaml_files(dir, &mut files);
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let Ok(text) = std::fs::read_to_string(&f) else {
            continue;
        };
        for doc in serde_yaml::Deserializer::from_str(&text) {
            // A document that does not parse ends the file (the iterator would not move on).
            let Ok(v) = Value::deserialize(doc) else {
                break;
            };
            if !v.is_null() {
                out.push((f.clone(), v));
            }
        }
    }
    out
}

/// (condition, the metric it belongs to) for every condition in `v`.
fn conditions(v: &Value, out: &mut Vec<(String, Value)>) {
    match v {
        Value::Object(o) => {
            for key in ["successCondition", "failureCondition"] {
                if let Some(Value::String(c)) = o.get(key) {
                    out.push((c.clone(), v.clone()));
                }
            }
            o.values().for_each(|x| conditions(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| conditions(x, out)),
        _ => {}
    }
}

/// `{{args.x}}` → a value of the right shape for the place it is used in.
fn fill_args(c: &str) -> String {
    let mut out = String::new();
    let mut rest = c;
    while let Some(i) = rest.find("{{") {
        out.push_str(&rest[..i]);
        let Some(j) = rest[i..].find("}}") else {
            break;
        };
        out.push('1');
        rest = &rest[i + j + 2..];
    }
    out.push_str(rest);
    out
}

/// Results of the shapes providers return: a Prometheus vector and scalar, web JSON objects
/// and strings, a job-less boolean.
fn candidate_results() -> Vec<X> {
    vec![
        X::Array(vec![X::Float(0.995)]),
        X::Float(0.995),
        json_to_value(&json!({"major": "1", "minor": "30", "Status": 999, "data": {"ok": true}})),
        X::String("It worked!".into()),
        X::Bool(true),
    ]
}

#[test]
fn corpus_conditions_parse_and_evaluate() {
    let Some(dir) = corpus() else {
        return;
    };
    let mut found = Vec::new();
    for (file, doc) in documents(&dir) {
        let mut cs = Vec::new();
        conditions(&doc, &mut cs);
        found.extend(cs.into_iter().map(|(c, m)| (file.clone(), c, m)));
    }
    assert!(
        found.len() >= 5,
        "expected upstream's conditions in the corpus, found {}",
        found.len()
    );
    let mut failures = Vec::new();
    for (file, cond, metric) in &found {
        let filled = fill_args(cond);
        if let Err(e) = check_syntax(&filled) {
            failures.push(format!("{}: {cond:?}: {e}", file.display()));
            continue;
        }
        let evaluations: Vec<_> = candidate_results()
            .iter()
            .map(|r| eval_condition(r, &filled))
            .collect();
        if !evaluations.iter().any(|e| e.is_ok()) {
            failures.push(format!(
                "{}: {cond:?} (metric {}) evaluates on no result shape: {:?}",
                file.display(),
                metric.get("name").cloned().unwrap_or_default(),
                evaluations
            ));
        }
    }
    eprintln!("checked {} upstream conditions", found.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn upstream_documented_expressions() {
    let vector = |v: &[f64]| X::Array(v.iter().map(|f| X::Float(*f)).collect());
    let cases: Vec<(&str, X, bool)> = vec![
        ("result[0] >= 0.95", vector(&[0.97]), true),
        ("result[0] >= 0.95", vector(&[0.5]), false),
        ("result[0] <= 0.01", vector(&[0.001]), true),
        ("len(result) == 0 || result[0] >= 0.95", vector(&[]), true),
        (
            "len(result) == 0 || result[0] >= 0.95",
            vector(&[0.9]),
            false,
        ),
        (
            "isNaN(result[0]) || result[0] >= 0.95",
            vector(&[f64::NAN]),
            true,
        ),
        (
            "!isNaN(result[0]) && result[0] < 0.05",
            vector(&[f64::NAN]),
            false,
        ),
        ("isInf(result[0])", vector(&[f64::INFINITY]), true),
        ("all(result, {# > 0.9})", vector(&[0.91, 0.99]), true),
        ("all(result, # > 0.9)", vector(&[0.91, 0.5]), false),
        ("any(result, {# > 5})", vector(&[1.0, 6.0]), true),
        ("none(result, {# > 5})", vector(&[1.0, 2.0]), true),
        (
            "len(filter(result, {# > 0.5})) < 2",
            vector(&[0.6, 0.1]),
            true,
        ),
        ("result < 0.05 && result >= 0", X::Float(0.01), true),
        ("result >= 0.95 and result <= 1", X::Float(0.99), true),
        ("not (result > 1) or result == 5", X::Float(5.0), true),
        ("result * 100 > 95 - 1", X::Float(0.99), true),
        ("result % 2 == 1", X::Integer(3), true),
        ("default(result, 0) < 0.05", X::Nil, true),
        ("isNil(result) || result >= 0.95", X::Nil, true),
        ("asInt(result) == 3", X::String("3".into()), true),
        ("asFloat(result) >= 0.99", X::String("0.995".into()), true),
        (
            "result == 'It worked!'",
            X::String("It worked!".into()),
            true,
        ),
        (
            "result.successful == true",
            json_to_value(&json!({"successful": true})),
            true,
        ),
        (
            "result.data.ok && result.data.ratio < 0.05",
            json_to_value(&json!({"data": {"ok": true, "ratio": 0.01}})),
            true,
        ),
        (
            "result.major == '1' && int(result.minor) >= 20",
            json_to_value(&json!({"major": "1", "minor": "30"})),
            true,
        ),
        (
            "'canary' in result.tags",
            json_to_value(&json!({"tags": ["canary"]})),
            true,
        ),
        (
            "result.Status == 999",
            json_to_value(&json!({"Status": 999})),
            true,
        ),
        (
            "result.items[0].value > 1",
            json_to_value(&json!({"items": [{"value": 2}]})),
            true,
        ),
        ("result ?? false", X::Nil, false),
        ("result > 1 ? true : false", X::Float(2.0), true),
        ("result matches '^v1\\\\.'", X::String("v1.2".into()), true),
        ("lower(result) contains 'ok'", X::String("OK!".into()), true),
        ("result in [200, 201]", X::Integer(201), true),
    ];
    for (expr, input, want) in cases {
        assert_eq!(
            eval_condition(&input, expr).unwrap_or_else(|e| panic!("{expr}: {e}")),
            want,
            "{expr} on {input:?}"
        );
    }
}

fn owner() -> OwnerReference {
    OwnerReference {
        api_version: "argoproj.io/v1alpha1".into(),
        kind: "Rollout".into(),
        name: "r".into(),
        uid: "u".into(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

#[test]
fn corpus_templates_build_into_valid_runs() {
    let Some(dir) = corpus() else {
        return;
    };
    let mut namespaced: BTreeMap<String, AnalysisTemplateSpec> = BTreeMap::new();
    let mut cluster: BTreeMap<String, AnalysisTemplateSpec> = BTreeMap::new();
    for (_, doc) in documents(&dir) {
        let kind = doc.get("kind").and_then(Value::as_str).unwrap_or_default();
        let name = doc
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let Some(spec) = doc.get("spec") else {
            continue;
        };
        let Ok(spec) = serde_json::from_value::<AnalysisTemplateSpec>(spec.clone()) else {
            continue;
        };
        match kind {
            "AnalysisTemplate" => {
                namespaced.insert(name, spec);
            }
            "ClusterAnalysisTemplate" => {
                cluster.insert(name, spec);
            }
            _ => {}
        }
    }
    assert!(
        namespaced.len() + cluster.len() >= 5,
        "expected upstream templates"
    );
    let mut failures = Vec::new();
    let all: Vec<(String, bool)> = namespaced
        .keys()
        .map(|k| (k.clone(), false))
        .chain(cluster.keys().map(|k| (k.clone(), true)))
        .collect();
    for (name, scope) in all {
        let refs = vec![rollouts::api::AnalysisTemplateRef {
            template_name: Some(name.clone()),
            cluster_scope: Some(scope),
        }];
        let (t, c): (Vec<ResolvedTemplate>, Vec<ResolvedTemplate>) = match resolve_templates(
            &refs,
            |n| namespaced.get(n).cloned(),
            |n| cluster.get(n).cloned(),
        ) {
            Ok(x) => x,
            Err(e) => {
                failures.push(format!("{name}: {e}"));
                continue;
            }
        };
        // The caller supplies the arguments the templates leave without a value (as a
        // Rollout would).
        let args: Vec<Argument> = t
            .iter()
            .chain(c.iter())
            .flat_map(|t| t.spec.args.iter().flatten())
            .filter(|a| a.value.is_none() && a.value_from.is_none())
            .map(|a| Argument {
                name: a.name.clone(),
                value: Some("1".into()),
                value_from: None,
            })
            .collect();
        let run = match build_analysis_run(&BuildRequest {
            templates: &t,
            cluster_templates: &c,
            args: &args,
            name: format!("{name}-run"),
            namespace: "ns".into(),
            owner: owner(),
            labels: Default::default(),
            annotations: Default::default(),
            dry_run: &[],
            measurement_retention: &[],
        }) {
            Ok(r) => r,
            Err(e) => {
                failures.push(format!("{name}: build: {e}"));
                continue;
            }
        };
        if let Err(e) = core::prepare(&run) {
            failures.push(format!("{name}: {e}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
