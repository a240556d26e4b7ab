//! Fuzzing the pure core's inputs without nightly (proptest, see `support/fuzzing.rs`): the
//! Rollout, AnalysisTemplate, AnalysisRun and Experiment decoders (arbitrary bytes as JSON and
//! YAML, arbitrary JSON trees, and the repository's valid manifests mutated), then validation
//! and the planners on whatever decodes; `expr` conditions; durations and int-or-percent
//! values. No input may panic; errors must be typed and say what is wrong.
//!
//! `cargo test` runs a few hundred cases per target; `cargo xtask fuzz --minutes N` runs them
//! for a time budget.

#[path = "support/fuzzing.rs"]
mod fuzzing;

use fuzzing::{fuzz, json_value, mutate, mutations, seeds};
use k8s_openapi::jiff::Timestamp;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use rollouts_core::analysis::condition;
use rollouts_core::api::{
    AnalysisRun, AnalysisTemplate, ClusterAnalysisTemplate, Experiment, Rollout,
};
use rollouts_core::plan::replicas::IntOrPercent;
use serde_json::{Value, json};

const CASES: u32 = 256;

fn now() -> Timestamp {
    Timestamp::from_second(1_800_000_000).unwrap()
}

/// Validates and plans a decoded Rollout (alone in its world): neither may panic, and an
/// invalid spec names a field.
fn exercise_rollout(ro: &Rollout) -> Result<(), TestCaseError> {
    for e in rollouts_core::plan::validate::validate_rollout(ro) {
        let text = e.to_string();
        prop_assert!(!text.trim().is_empty(), "an empty validation error: {e:?}");
    }
    let obs = rollouts_core::plan::Observed {
        rollout: ro,
        replica_sets: Vec::new(),
        services: Default::default(),
        adoptable: None,
        pods: None,
        traffic_objects: Default::default(),
        analysis_runs: Vec::new(),
        analysis_templates: Default::default(),
        cluster_analysis_templates: Default::default(),
        workload: None,
        experiments: Vec::new(),
    };
    let plan = rollouts_core::plan::plan(&obs, now());
    // The plan is a function of the observation.
    prop_assert_eq!(&plan, &rollouts_core::plan::plan(&obs, now()));
    Ok(())
}

/// Prepares and begins a decoded AnalysisRun.
fn exercise_run(run: &AnalysisRun) -> Result<(), TestCaseError> {
    if let Err(e) = rollouts_core::analysis::core::prepare(run) {
        prop_assert!(
            !e.to_string().trim().is_empty(),
            "an empty error preparing {run:?}"
        );
    }
    let _ = rollouts_core::analysis::core::begin(run, now());
    let _ = rollouts_core::analysis::core::ttl_deadline(run);
    Ok(())
}

/// Plans a decoded Experiment (alone in its world).
fn exercise_experiment(ex: &Experiment) -> Result<(), TestCaseError> {
    let obs = rollouts_core::experiment::Observed {
        experiment: ex,
        replica_sets: Vec::new(),
        taken_names: Default::default(),
        services: Vec::new(),
        taken_service_names: Default::default(),
        analysis_runs: Vec::new(),
        taken_run_names: Default::default(),
        analysis_templates: Default::default(),
        cluster_analysis_templates: Default::default(),
        refused_templates: Default::default(),
    };
    let _ = rollouts_core::experiment::plan(&obs, now());
    Ok(())
}

/// Decodes `v` as every kind, and exercises what decodes. A decode error is serde's (typed,
/// with a message).
fn exercise_value(v: &Value) -> Result<(), TestCaseError> {
    match serde_json::from_value::<Rollout>(v.clone()) {
        Ok(ro) => exercise_rollout(&ro)?,
        Err(e) => prop_assert!(!e.to_string().is_empty()),
    }
    if let Ok(t) = serde_json::from_value::<AnalysisTemplate>(v.clone()) {
        for m in t.spec.metrics.iter().flatten() {
            for c in [&m.success_condition, &m.failure_condition]
                .into_iter()
                .flatten()
            {
                let _ = condition::check_syntax(c);
            }
        }
    }
    let _ = serde_json::from_value::<ClusterAnalysisTemplate>(v.clone());
    if let Ok(run) = serde_json::from_value::<AnalysisRun>(v.clone()) {
        exercise_run(&run)?;
    }
    if let Ok(ex) = serde_json::from_value::<Experiment>(v.clone()) {
        exercise_experiment(&ex)?;
    }
    Ok(())
}

#[test]
fn fuzz_decoders_arbitrary_bytes() {
    fuzz(
        "decoders (arbitrary bytes, JSON and YAML)",
        file!(),
        CASES,
        prop::collection::vec(any::<u8>(), 0..400),
        |bytes| {
            if let Ok(v) = serde_json::from_slice::<Value>(&bytes) {
                exercise_value(&v)?;
            }
            if let Ok(ro) = serde_json::from_slice::<Rollout>(&bytes) {
                exercise_rollout(&ro)?;
            }
            if let Ok(v) = serde_yaml::from_slice::<Value>(&bytes) {
                exercise_value(&v)?;
            }
            let _ = serde_yaml::from_slice::<AnalysisRun>(&bytes);
            let _ = serde_yaml::from_slice::<Experiment>(&bytes);
            Ok(())
        },
    );
}

/// A YAML text made of manifest-like lines (structure-aware bytes).
fn yaml_text() -> impl Strategy<Value = String> {
    let line = prop_oneof![
        Just("apiVersion: argoproj.io/v1alpha1".to_string()),
        prop::sample::select(vec![
            "Rollout",
            "AnalysisRun",
            "AnalysisTemplate",
            "Experiment"
        ])
        .prop_map(|k| format!("kind: {k}")),
        Just("metadata: {name: x, namespace: ns}".to_string()),
        Just("spec:".to_string()),
        "[ ]{0,6}[a-zA-Z]{1,14}: ?[-a-zA-Z0-9%.:{}\\[\\]\"']{0,12}",
        "[ ]{0,6}- [a-zA-Z]{1,10}: ?[-a-zA-Z0-9%.]{0,8}",
        Just("&a [*a, *a]".to_string()),
        Just("<<: *a".to_string()),
    ];
    prop::collection::vec(line, 0..24).prop_map(|l| l.join("\n"))
}

#[test]
fn fuzz_decoders_yaml_lines() {
    fuzz(
        "decoders (manifest-like YAML)",
        file!(),
        CASES,
        yaml_text(),
        |text| {
            if let Ok(v) = serde_yaml::from_str::<Value>(&text) {
                exercise_value(&v)?;
            }
            Ok(())
        },
    );
}

#[test]
fn fuzz_decoders_json_trees() {
    let kinds = prop::sample::select(vec![
        "Rollout",
        "AnalysisTemplate",
        "ClusterAnalysisTemplate",
        "AnalysisRun",
        "Experiment",
    ]);
    fuzz(
        "decoders (arbitrary JSON specs)",
        file!(),
        CASES,
        (kinds, json_value(), json_value()),
        |(kind, spec, status)| {
            let v = json!({
                "apiVersion": "argoproj.io/v1alpha1", "kind": kind,
                "metadata": {"name": "x", "namespace": "ns", "uid": "u", "generation": 2},
                "spec": spec, "status": status,
            });
            exercise_value(&v)
        },
    );
}

#[test]
fn fuzz_decoders_mutated_manifests() {
    let mut seeds = seeds(&["Rollout", "AnalysisTemplate", "AnalysisRun", "Experiment"]);
    // An AnalysisRun and an Experiment (the repository's manifests have neither).
    seeds.push(json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisRun",
        "metadata": {"name": "run", "namespace": "ns"},
        "spec": {"args": [{"name": "svc", "value": "x"}],
                 "metrics": [{"name": "m", "interval": "10s", "count": 3, "failureLimit": 1,
                              "successCondition": "result[0] >= 0.9",
                              "provider": {"prometheus": {"address": "http://p", "query": "up"}}}]},
        "status": {"phase": "Running", "metricResults": [{"name": "m", "phase": "Running",
                   "count": 1, "measurements": [{"phase": "Successful", "value": "[1]",
                   "startedAt": "2027-01-15T08:00:00Z", "finishedAt": "2027-01-15T08:00:01Z"}]}]}
    }));
    seeds.push(json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Experiment",
        "metadata": {"name": "ex", "namespace": "ns", "uid": "u"},
        "spec": {"duration": "1m", "templates": [{"name": "baseline", "replicas": 1,
                 "selector": {"matchLabels": {"app": "x"}},
                 "template": {"metadata": {"labels": {"app": "x"}},
                              "spec": {"containers": [{"name": "c", "image": "i"}]}}}],
                 "analyses": [{"name": "a", "templateName": "t"}]}
    }));
    assert!(seeds.len() >= 6, "the manifests are there: {}", seeds.len());
    let n = seeds.len();
    fuzz(
        "decoders (mutated manifests)",
        file!(),
        CASES,
        (0..n, mutations(4)),
        move |(i, ms)| exercise_value(&mutate(seeds[i].clone(), &ms)),
    );
}

/// Condition-like expressions: tokens of the `expr` language, put together at random.
fn expression() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        prop::sample::select(vec![
            "result",
            "result[0]",
            "result.a",
            "len(result)",
            "all(result, {# > 1})",
            "any(result, # < 0)",
            "map(result, # * 2)",
            "filter(result, # > 0)",
            "isNaN(result)",
            "isInf(result)",
            "asInt(result)",
            "asFloat(result)",
            "default(result, 0)",
            "sum(result)",
            "max(result)",
            "min(result)",
            "count(result, # > 0)",
            "now()",
            "#",
            ">=",
            "<=",
            "==",
            "!=",
            "<",
            ">",
            "&&",
            "||",
            "!",
            "not",
            "and",
            "or",
            "in",
            "+",
            "-",
            "*",
            "/",
            "%",
            "**",
            "..",
            "?",
            ":",
            "??",
            "(",
            ")",
            "[",
            "]",
            "{",
            "}",
            ",",
            ".",
            "nil",
            "true",
            "false",
            "0",
            "1",
            "-1",
            "0.95",
            "1e308",
            "9223372036854775807",
            "'a'",
            "\"b\"",
            "matches",
            "contains",
            "startsWith",
            "let x = 1;",
            "x",
        ])
        .prop_map(String::from),
        "[0-9]{1,20}",
        "[a-z]{1,8}",
    ];
    prop_oneof![
        prop::collection::vec(token, 0..16).prop_map(|t| t.join(" ")),
        ".{0,60}",
        // Deep nesting.
        (1usize..200).prop_map(|n| format!("{}1{}", "(".repeat(n), ")".repeat(n))),
        (1usize..200).prop_map(|n| format!("{}1{}", "[".repeat(n), "]".repeat(n))),
        (1usize..200).prop_map(|n| format!("1{}", " + 1".repeat(n))),
        (1usize..100).prop_map(|n| "!".repeat(n) + "true"),
    ]
}

#[test]
fn fuzz_expr_conditions() {
    fuzz(
        "expr conditions (successCondition/failureCondition)",
        file!(),
        CASES * 2,
        (expression(), json_value(), expression()),
        |(cond, result, failure)| {
            let value = condition::json_to_value(&result);
            if let Err(e) = condition::check_syntax(&cond) {
                prop_assert!(!e.to_string().is_empty());
            }
            match condition::eval_condition(&value, &cond) {
                Ok(_) => {}
                Err(e) => {
                    prop_assert!(e.to_string().contains("condition") || !e.to_string().is_empty())
                }
            }
            let _ = condition::evaluate_result(&value, Some(&cond), Some(&failure));
            let _ = condition::contains_nan(&value);
            let _ = condition::eval_time(&cond, now());
            Ok(())
        },
    );
}

/// Duration-like and int-or-percent-like text.
fn quantity() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,16}",
        ("-?[0-9]{0,22}(\\.[0-9]{0,6})?", "(ns|us|µs|ms|s|m|h|d|%|)?").prop_map(|(n, u)| n + &u),
        prop::collection::vec(
            (
                "[0-9]{1,12}",
                prop::sample::select(vec!["h", "m", "s", "ms", "us", "ns"])
            ),
            1..6
        )
        .prop_map(|parts| parts.into_iter().map(|(n, u)| n + u).collect::<String>()),
    ]
}

#[test]
fn fuzz_durations_and_int_or_percent() {
    fuzz(
        "durations and int-or-percent",
        file!(),
        CASES * 2,
        (quantity(), any::<i32>(), any::<bool>()),
        |(text, total, round_up)| {
            let _ = rollouts_core::api::parse_go_duration(&text);
            if let Err(e) = rollouts_core::analysis::core::parse_duration(&text) {
                prop_assert!(!e.to_string().is_empty());
            }
            match text.parse::<IntOrPercent>() {
                Ok(v) => {
                    let scaled = v.scaled_value(total, round_up);
                    prop_assert!(scaled >= 0, "{v} of {total}: {scaled}");
                    let (surge, unavailable) =
                        rollouts_core::plan::replicas::resolve_fenceposts(v, v, total);
                    prop_assert!(surge >= 0 && unavailable >= 0);
                }
                Err(e) => prop_assert!(e.to_string().contains("int-or-percent")),
            }
            let ios = k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(text);
            let _ = rollouts_core::plan::replicas::int_or_percent(Some(&ios));
            Ok(())
        },
    );
}

/// Found by `fuzz_expr_conditions`: `expr-lang` recurses once per nesting level, and a
/// condition nested a few hundred deep overflowed the stack, aborting the process. Such
/// conditions are now refused with a typed error, before `expr-lang` sees them.
#[test]
fn deeply_nested_conditions_are_refused_not_a_crash() {
    let result = condition::json_to_value(&json!([1]));
    for cond in [
        format!("{}1{}", "[".repeat(5000), "]".repeat(5000)),
        format!("{}1{}", "(".repeat(5000), ")".repeat(5000)),
        format!("1{}", " + 1".repeat(5000)),
        format!("{}true", "!".repeat(5000)),
        format!("{}1", "-".repeat(5000)),
    ] {
        let err = condition::eval_condition(&result, &cond).unwrap_err();
        assert!(
            matches!(err, condition::ConditionError::TooComplex { .. }),
            "{err:?}"
        );
        assert!(condition::check_syntax(&cond).is_err());
        assert!(condition::eval_time(&cond, now()).is_err());
    }
    // Real conditions pass.
    for cond in [
        "result[0] >= 0.95 && result[1] < 100",
        "all(result, {asFloat(.value) > 1 && .status == \"ok\"})",
        "len(result) > 0 && result[0].value != nil ? result[0].value > 0.5 : false",
    ] {
        assert!(
            condition::nesting_bound(cond) <= condition::MAX_EXPRESSION_NESTING,
            "{cond}"
        );
        condition::check_syntax(cond).unwrap();
    }
}
