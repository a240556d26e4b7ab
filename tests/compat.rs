//! Compatibility with upstream Argo Rollouts' `argoproj.io/v1alpha1` API (no cluster needed):
//!
//! - drift: the committed `crds/` files are exactly what the types generate;
//! - round trip: every upstream example manifest of our five kinds deserialises into our types
//!   and serialises back to the same JSON;
//! - parity: every property path of upstream's CRD schemas exists in ours, with the same type;
//!   names, scope, printer columns and subresources match;
//! - structure: our CRD schemas are structural and small.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use rollouts::api::crd::{all_crds, render_yaml};
use rollouts::api::{AnalysisRun, AnalysisTemplate, ClusterAnalysisTemplate, Experiment, Rollout};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

const KINDS: [&str; 5] = [
    "Rollout",
    "AnalysisTemplate",
    "ClusterAnalysisTemplate",
    "AnalysisRun",
    "Experiment",
];

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The upstream corpus (see [`xtask::testkit::compat_corpus`]).
fn compat_corpus() -> Option<PathBuf> {
    xtask::testkit::compat_corpus()
}

// ---------------------------------------------------------------------------------------------
// a. drift
// ---------------------------------------------------------------------------------------------

#[test]
fn compat_crds_match_committed_files() {
    let dir = manifest_dir().join("crds");
    let mut stale = Vec::new();
    for (name, crd) in all_crds() {
        let want = render_yaml(&crd);
        match std::fs::read_to_string(dir.join(&name)) {
            Ok(have) if have == want => {}
            Ok(_) => stale.push(format!("{name}: differs from the generated CRD")),
            Err(e) => stale.push(format!("{name}: {e}")),
        }
    }
    assert!(
        stale.is_empty(),
        "crds/ is out of date:\n  {}\nrun `cargo run --bin rollouts-controller -- crds --out crds` to regenerate",
        stale.join("\n  ")
    );
}

// ---------------------------------------------------------------------------------------------
// b. round trip of upstream manifests
// ---------------------------------------------------------------------------------------------

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            yaml_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(path);
        }
    }
}

/// A parsed document: its index in the file, its YAML form and its JSON form (or why it has
/// none).
type Doc = (usize, serde_yaml::Value, Result<Value, String>);

/// Split a file into YAML documents converted to JSON.
fn yaml_documents(text: &str) -> Result<Vec<Doc>, String> {
    use serde::Deserialize as _;
    let mut docs = Vec::new();
    for (i, de) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let yaml = serde_yaml::Value::deserialize(de).map_err(|e| format!("document {i}: {e}"))?;
        if yaml.is_null() {
            continue;
        }
        let json = serde_json::to_value(&yaml).map_err(|e| e.to_string());
        docs.push((i, yaml, json));
    }
    Ok(docs)
}

/// Explicit `null` values in the input mean "absent".
fn strip_nulls(v: &mut Value) {
    match v {
        Value::Object(map) => {
            map.retain(|_, x| !x.is_null());
            map.values_mut().for_each(strip_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

fn strip_yaml_nulls(v: &mut serde_yaml::Value) {
    match v {
        serde_yaml::Value::Mapping(map) => {
            map.retain(|_, x| !x.is_null());
            map.values_mut().for_each(strip_yaml_nulls);
        }
        serde_yaml::Value::Sequence(items) => items.iter_mut().for_each(strip_yaml_nulls),
        _ => {}
    }
}

/// The first JSON path at which `want` and `got` differ (numbers compared by value).
fn first_diff(path: &str, want: &Value, got: &Value) -> Option<String> {
    match (want, got) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            keys.into_iter().find_map(|k| {
                let p = format!("{path}.{k}");
                match (a.get(k), b.get(k)) {
                    (Some(x), Some(y)) => first_diff(&p, x, y),
                    (Some(x), None) => Some(format!("{p}: dropped (was {})", short(x))),
                    (None, Some(y)) => Some(format!("{p}: added ({})", short(y))),
                    (None, None) => None,
                }
            })
        }
        (Value::Array(a), Value::Array(b)) => {
            if a.len() != b.len() {
                return Some(format!("{path}: {} items became {}", a.len(), b.len()));
            }
            a.iter()
                .zip(b)
                .enumerate()
                .find_map(|(i, (x, y))| first_diff(&format!("{path}[{i}]"), x, y))
        }
        (Value::Number(a), Value::Number(b)) => {
            let same = match (a.as_i64(), b.as_i64()) {
                (Some(x), Some(y)) => x == y,
                _ => a.as_f64() == b.as_f64(),
            };
            (!same).then(|| format!("{path}: {a} became {b}"))
        }
        (a, b) if a == b => None,
        (a, b) => Some(format!("{path}: {} became {}", short(a), short(b))),
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 80 {
        format!("{}...", s.chars().take(80).collect::<String>())
    } else {
        s
    }
}

/// JSON -> type -> JSON must be lossless, and reading the YAML directly must give the same
/// value as reading the JSON (as the API server would send it).
fn round_trip<T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug>(
    doc: &Value,
    yaml: Option<&serde_yaml::Value>,
) -> Result<(), String> {
    let typed: T = serde_json::from_value(doc.clone()).map_err(|e| format!("deserialise: {e}"))?;
    let back = serde_json::to_value(&typed).map_err(|e| format!("serialise: {e}"))?;
    if let Some(d) = first_diff("", doc, &back) {
        return Err(format!("first difference at {d}"));
    }
    if let Some(yaml) = yaml {
        let from_yaml: T = serde_yaml::from_value(yaml.clone())
            .map_err(|e| format!("deserialise from YAML: {e}"))?;
        if from_yaml != typed {
            return Err("reading the YAML directly gives a different value than via JSON".into());
        }
    }
    Ok(())
}

fn round_trip_kind(
    kind: &str,
    doc: &Value,
    yaml: Option<&serde_yaml::Value>,
) -> Result<(), String> {
    match kind {
        "Rollout" => round_trip::<Rollout>(doc, yaml),
        "AnalysisTemplate" => round_trip::<AnalysisTemplate>(doc, yaml),
        "ClusterAnalysisTemplate" => round_trip::<ClusterAnalysisTemplate>(doc, yaml),
        "AnalysisRun" => round_trip::<AnalysisRun>(doc, yaml),
        "Experiment" => round_trip::<Experiment>(doc, yaml),
        other => Err(format!("not one of our kinds: {other}")),
    }
}

fn kind_of(doc: &Value) -> Option<&str> {
    let api_version = doc.get("apiVersion")?.as_str()?;
    let kind = doc.get("kind")?.as_str()?;
    (api_version.starts_with("argoproj.io/") && KINDS.contains(&kind)).then_some(kind)
}

fn name_of(doc: &Value) -> &str {
    doc.pointer("/metadata/name")
        .or_else(|| doc.pointer("/metadata/generateName"))
        .and_then(Value::as_str)
        .unwrap_or("<unnamed>")
}

#[test]
fn compat_upstream_manifests_round_trip() {
    let Some(corpus) = compat_corpus() else {
        return;
    };
    let mut files = Vec::new();
    yaml_files(&corpus, &mut files);
    let mut failures = Vec::new();
    let mut per_kind: BTreeMap<String, usize> = BTreeMap::new();
    for file in files {
        let rel = file
            .strip_prefix(&corpus)
            .unwrap_or(&file)
            .display()
            .to_string();
        if rel.starts_with("test/e2e/expectedfailures/") {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("readable corpus file");
        let docs = match yaml_documents(&text) {
            Ok(docs) => docs,
            Err(e) if text.contains("{{") => {
                eprintln!("note: skipping template file {rel} (not valid YAML: {e})");
                continue;
            }
            Err(e) => {
                failures.push(format!("{rel}: not valid YAML: {e}"));
                continue;
            }
        };
        for (index, mut yaml, doc) in docs {
            let mut doc = match doc {
                Ok(doc) => doc,
                Err(e) if text.contains("{{") => {
                    eprintln!("note: skipping {rel} document {index} (template, not JSON: {e})");
                    continue;
                }
                Err(e) => {
                    failures.push(format!("{rel} #{index}: not convertible to JSON: {e}"));
                    continue;
                }
            };
            let Some(kind) = kind_of(&doc).map(str::to_owned) else {
                continue;
            };
            strip_nulls(&mut doc);
            strip_yaml_nulls(&mut yaml);
            let name = name_of(&doc).to_owned();
            if let Err(e) = round_trip_kind(&kind, &doc, Some(&yaml)) {
                failures.push(format!("{rel} #{index} {kind} {name}: {e}"));
            }
            *per_kind.entry(kind).or_default() += 1;
        }
    }
    let total: usize = per_kind.values().sum();
    eprintln!("round-tripped {total} documents: {per_kind:?}");
    assert!(
        failures.is_empty(),
        "{} of {total} documents do not round-trip:\n  {}",
        failures.len(),
        failures.join("\n  ")
    );
    for kind in KINDS {
        assert!(
            per_kind.get(kind).copied().unwrap_or(0) > 0,
            "no {kind} document found in the corpus"
        );
    }
}

/// What upstream's `test/e2e/expectedfailures/` documents must give here, file by file: the
/// outcome upstream's own tests expect of each, as far as it shows without a cluster.
///
/// - `malformed-rollout*.yaml` (upstream: `TestMalformedRollout*` never become Healthy, as
///   the API server refuses their ReplicaSets): our validation refuses them up front, naming
///   the invalid quantity, so the Rollout is InvalidSpec before any ReplicaSet is written;
/// - the other documents are well-formed objects whose failure comes at run time (a Job the
///   API server refuses, a Prometheus that does not answer, a missing template, an image that
///   never starts): they must decode and round-trip, so that the controller can report that
///   failure on them (`invalid_runs_end_in_error_with_the_cause`, the analysis e2e tests and,
///   for the Experiments, `experiment::upstream_expected_failure_experiments_end_as_upstream_expects`
///   prove the run-time side);
/// - `analysis-run-failfast.yaml` is not valid YAML (its second metric is mis-indented):
///   it must be refused as YAML, as `kubectl apply` refuses it.
///
/// A new file in the corpus fails the test until it is listed here.
const EXPECTED_FAILURES: &[(&str, &str)] = &[
    ("analysis-run-failfast.yaml", "not YAML"),
    (
        "analysis-run-prometheus-bad-server.yaml",
        "AnalysisRun: round-trips",
    ),
    ("experiment-degrade.yaml", "Experiment: round-trips"),
    (
        "experiment-error-template-missing.yaml",
        "Experiment: round-trips",
    ),
    (
        "experiment-failed-analysis.yaml",
        "AnalysisTemplate: round-trips; Experiment: round-trips",
    ),
    ("experiment-invalid.yaml", "Experiment: round-trips"),
    ("malformed-analysisrun.yaml", "AnalysisRun: round-trips"),
    (
        "malformed-analysistemplate.yaml",
        "AnalysisTemplate: round-trips",
    ),
    (
        "malformed-clusteranalysistemplate.yaml",
        "ClusterAnalysisTemplate: round-trips",
    ),
    ("malformed-experiment.yaml", "Experiment: round-trips"),
    (
        "malformed-rollout-ephemeral.yaml",
        "Rollout: round-trips, InvalidSpec: spec.template.spec.containers[0].resources.requests[memory]",
    ),
    (
        "malformed-rollout.yaml",
        "Rollout: round-trips, InvalidSpec: spec.template.spec.containers[0].resources.requests[memory]",
    ),
];

/// The outcome of one expected-failure file, in the words of [`EXPECTED_FAILURES`].
fn expected_failure_outcome(text: &str) -> String {
    let Ok(docs) = yaml_documents(text) else {
        return "not YAML".into();
    };
    let mut out = Vec::new();
    for (_, yaml, doc) in docs {
        let Ok(mut doc) = doc else {
            out.push("not JSON".to_string());
            continue;
        };
        let Some(kind) = kind_of(&doc).map(str::to_owned) else {
            continue;
        };
        strip_nulls(&mut doc);
        let mut outcome =
            match std::panic::catch_unwind(|| round_trip_kind(&kind, &doc, Some(&yaml))) {
                Ok(Ok(())) => format!("{kind}: round-trips"),
                Ok(Err(e)) => format!("{kind}: refused: {e}"),
                Err(_) => format!("{kind}: PANICKED"),
            };
        if kind == "Rollout"
            && let Ok(ro) = serde_json::from_value::<Rollout>(doc.clone())
        {
            let errs = rollouts::plan::validate::validate_rollout(&ro);
            if let Some(first) = errs.first() {
                let _ = write!(outcome, ", InvalidSpec: {}", first.path);
            }
        }
        out.push(outcome);
    }
    out.join("; ")
}

#[test]
fn compat_expected_failures_fail_as_upstream_expects() {
    let Some(corpus) = compat_corpus() else {
        return;
    };
    let dir = corpus.join("test/e2e/expectedfailures");
    let mut files = Vec::new();
    yaml_files(&dir, &mut files);
    assert!(
        !files.is_empty(),
        "no files under test/e2e/expectedfailures"
    );
    let actual: BTreeMap<String, String> = files
        .iter()
        .map(|f| {
            let rel = f.strip_prefix(&dir).unwrap_or(f).display().to_string();
            let text = std::fs::read_to_string(f).expect("readable corpus file");
            (rel, expected_failure_outcome(&text))
        })
        .collect();
    let expected: BTreeMap<String, String> = EXPECTED_FAILURES
        .iter()
        .map(|(f, o)| (f.to_string(), o.to_string()))
        .collect();
    pretty_assertions::assert_eq!(actual, expected);
}

// ---------------------------------------------------------------------------------------------
// c. parity with upstream's CRDs
// ---------------------------------------------------------------------------------------------

fn load_yaml(path: &Path) -> Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let yaml: serde_yaml::Value =
        serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()));
    serde_json::to_value(yaml).expect("CRD converts to JSON")
}

fn is_preserve_unknown(node: &Value) -> bool {
    node.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true))
}

fn is_int_or_string(node: &Value) -> bool {
    node.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true))
}

/// Children of a schema node, keyed by path segment (`name`, `[]` for items, `{}` for map
/// values).
fn children(node: &Value) -> Vec<(String, &Value)> {
    let mut out = Vec::new();
    if let Some(Value::Object(props)) = node.get("properties") {
        out.extend(props.iter().map(|(k, v)| (k.clone(), v)));
    }
    if let Some(items) = node.get("items") {
        out.push(("[]".into(), items));
    }
    if let Some(add @ Value::Object(_)) = node.get("additionalProperties") {
        out.push(("{}".into(), add));
    }
    out
}

fn child<'a>(node: &'a Value, segment: &str) -> Option<&'a Value> {
    match segment {
        "[]" => node.get("items"),
        "{}" => node.get("additionalProperties").filter(|v| v.is_object()),
        name => node.get("properties")?.get(name),
    }
}

#[derive(Default)]
struct ParityReport {
    paths: usize,
    covered_by_preserve_unknown: usize,
    problems: Vec<String>,
}

/// Walk upstream's schema; `ours` is the matching node of ours (None once covered by a
/// preserve-unknown-fields ancestor).
fn compare_schema(path: &str, upstream: &Value, ours: &Value, report: &mut ParityReport) {
    report.paths += 1;
    if is_preserve_unknown(ours) {
        report.covered_by_preserve_unknown += count_nodes(upstream) - 1;
        if !is_preserve_unknown(upstream) && !upstream.get("type").is_some_and(|t| t == "object") {
            report.problems.push(format!(
                "{path}: ours is a preserve-unknown object, upstream is {:?}",
                upstream.get("type")
            ));
        }
        return;
    }
    if is_preserve_unknown(upstream) {
        report.problems.push(format!(
            "{path}: upstream preserves unknown fields, ours does not"
        ));
    }
    if is_int_or_string(upstream) != is_int_or_string(ours) {
        report.problems.push(format!(
            "{path}: int-or-string upstream={} ours={}",
            is_int_or_string(upstream),
            is_int_or_string(ours)
        ));
    } else if let (Some(a), Some(b)) = (upstream.get("type"), ours.get("type"))
        && a != b
    {
        report
            .problems
            .push(format!("{path}: type upstream={a} ours={b}"));
    }
    let required = |n: &Value| -> BTreeSet<String> {
        n.get("required")
            .and_then(Value::as_array)
            .map(|r| {
                r.iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    if required(upstream) != required(ours) {
        report.problems.push(format!(
            "{path}: required upstream={:?} ours={:?}",
            required(upstream),
            required(ours)
        ));
    }
    for (segment, up_child) in children(upstream) {
        let p = format!("{path}.{segment}");
        match child(ours, &segment) {
            Some(our_child) => compare_schema(&p, up_child, our_child, report),
            None => report.problems.push(format!("{p}: missing in ours")),
        }
    }
}

fn count_nodes(node: &Value) -> usize {
    1 + children(node)
        .into_iter()
        .map(|(_, c)| count_nodes(c))
        .sum::<usize>()
}

#[test]
fn compat_crd_schemas_cover_upstream() {
    let Some(corpus) = compat_corpus() else {
        return;
    };
    let ours: BTreeMap<String, Value> = all_crds()
        .into_iter()
        .map(|(name, crd)| (name, serde_json::to_value(crd).expect("CRD serialises")))
        .collect();
    let mut report = ParityReport::default();
    for (name, our_crd) in &ours {
        let upstream = load_yaml(&corpus.join("manifests/crds").join(name));
        let file = name.as_str();
        for key in ["group", "names", "scope"] {
            if upstream["spec"][key] != our_crd["spec"][key] {
                report.problems.push(format!(
                    "{file}: spec.{key} upstream={} ours={}",
                    upstream["spec"][key], our_crd["spec"][key]
                ));
            }
        }
        if upstream["metadata"]["name"] != our_crd["metadata"]["name"] {
            report
                .problems
                .push(format!("{file}: metadata.name differs"));
        }
        let up_versions = upstream["spec"]["versions"].as_array().expect("versions");
        let our_versions = our_crd["spec"]["versions"].as_array().expect("versions");
        assert_eq!(
            up_versions.len(),
            our_versions.len(),
            "{file}: number of versions"
        );
        for (up, us) in up_versions.iter().zip(our_versions) {
            for key in [
                "name",
                "served",
                "storage",
                "additionalPrinterColumns",
                "subresources",
            ] {
                if up[key] != us[key] {
                    report.problems.push(format!(
                        "{file}: versions[].{key} upstream={} ours={}",
                        up[key], us[key]
                    ));
                }
            }
            compare_schema(
                file,
                &up["schema"]["openAPIV3Schema"],
                &us["schema"]["openAPIV3Schema"],
                &mut report,
            );
        }
    }
    eprintln!(
        "parity: {} upstream schema paths matched node for node, {} more covered by \
         preserve-unknown-fields subtrees",
        report.paths, report.covered_by_preserve_unknown
    );
    assert!(
        report.paths > 500,
        "suspiciously few paths checked: {}",
        report.paths
    );
    assert!(
        report.problems.is_empty(),
        "{} parity problems:\n  {}",
        report.problems.len(),
        report.problems.join("\n  ")
    );
}

// ---------------------------------------------------------------------------------------------
// d. structural-schema sanity
// ---------------------------------------------------------------------------------------------

const FORBIDDEN: &[&str] = &[
    "anyOf",
    "oneOf",
    "allOf",
    "not",
    "nullable",
    "$ref",
    "$schema",
    "definitions",
    "$defs",
    "x-kubernetes-validations",
    "uniqueItems",
];
const ALLOWED_FORMATS: &[&str] = &[
    "int32",
    "int64",
    "float",
    "double",
    "byte",
    "date",
    "date-time",
    "password",
    "duration",
];

fn check_structural(path: &str, node: &Value, problems: &mut Vec<String>) {
    let Some(obj) = node.as_object() else {
        problems.push(format!("{path}: schema is not an object"));
        return;
    };
    let pu = is_preserve_unknown(node);
    let ios = is_int_or_string(node);
    if !obj.contains_key("type") && !pu && !ios {
        problems.push(format!("{path}: no type"));
    }
    if ios && obj.contains_key("type") {
        problems.push(format!("{path}: int-or-string with a type"));
    }
    for key in FORBIDDEN {
        if obj.contains_key(*key) {
            problems.push(format!("{path}: forbidden keyword {key}"));
        }
    }
    if obj.get("default").is_some_and(Value::is_null) {
        problems.push(format!("{path}: default: null"));
    }
    if let Some(f) = obj.get("format")
        && !f.as_str().is_some_and(|f| ALLOWED_FORMATS.contains(&f))
    {
        problems.push(format!("{path}: format {f}"));
    }
    match obj.get("type").and_then(Value::as_str) {
        Some("array") if !obj.contains_key("items") => {
            problems.push(format!("{path}: array without items"))
        }
        Some("object" | "array" | "string" | "integer" | "number" | "boolean") | None => {}
        Some(other) => problems.push(format!("{path}: unknown type {other}")),
    }
    if obj.contains_key("properties") && obj.contains_key("additionalProperties") {
        problems.push(format!("{path}: both properties and additionalProperties"));
    }
    if let Some(add) = obj.get("additionalProperties")
        && !add.is_object()
    {
        problems.push(format!("{path}: additionalProperties is not a schema"));
    }
    for (segment, c) in children(node) {
        check_structural(&format!("{path}.{segment}"), c, problems);
    }
}

#[test]
fn compat_generated_crds_are_structural() {
    let mut problems = Vec::new();
    let crds = all_crds();
    assert_eq!(crds.len(), 5);
    for (name, crd) in &crds {
        let size = render_yaml(crd).len();
        if size >= 1_000_000 {
            problems.push(format!("{name}: {size} bytes"));
        }
        let value = serde_json::to_value(crd).expect("CRD serialises");
        assert_eq!(value["apiVersion"], "apiextensions.k8s.io/v1");
        for version in value["spec"]["versions"].as_array().expect("versions") {
            let schema = &version["schema"]["openAPIV3Schema"];
            assert!(schema.is_object(), "{name}: no schema");
            if schema["type"] != "object" {
                problems.push(format!("{name}: root type is not object"));
            }
            for (key, want) in [
                ("apiVersion", "string"),
                ("kind", "string"),
                ("metadata", "object"),
            ] {
                if schema["properties"][key]["type"] != want {
                    problems.push(format!("{name}: root property {key} is not a {want}"));
                }
            }
            if schema["properties"]["metadata"]
                .as_object()
                .is_some_and(|m| m.len() != 1)
            {
                problems.push(format!(
                    "{name}: metadata schema must be just `type: object`"
                ));
            }
            check_structural(name, schema, &mut problems);
        }
    }
    assert!(
        problems.is_empty(),
        "non-structural CRDs:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn compat_checker_flags_non_structural_schemas() {
    // The structural checker must catch what it claims to catch.
    let bad = serde_json::json!({
        "type": "object",
        "properties": {
            "untyped": { "description": "no type" },
            "nullable": { "type": "string", "nullable": true },
            "union": { "anyOf": [{ "type": "string" }, { "type": "integer" }], "type": "string" },
            "nulldefault": { "type": "string", "default": null },
            "uint": { "type": "integer", "format": "uint32" },
            "list": { "type": "array" }
        }
    });
    let mut problems = Vec::new();
    check_structural("bad", &bad, &mut problems);
    let mut report = String::new();
    for p in &problems {
        writeln!(report, "{p}").expect("write to string");
    }
    for needle in [
        "bad.untyped: no type",
        "bad.nullable: forbidden keyword nullable",
        "bad.union: forbidden keyword anyOf",
        "bad.nulldefault: default: null",
        "bad.uint: format",
        "bad.list: array without items",
    ] {
        assert!(
            report.contains(needle),
            "checker missed {needle:?}; it reported:\n{report}"
        );
    }
}
