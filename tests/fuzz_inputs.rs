//! Fuzzing the controller's inputs without nightly (proptest; the harness is
//! `crates/rollouts-core/tests/support/fuzzing.rs`): the Rollout decoder of the untyped watch,
//! Prometheus and web metric responses, the web metric's JSONPath, notification templates and
//! their `when`/`oncePer` expressions, and the notification ConfigMap. Arbitrary bytes and
//! structure-aware inputs; no input may panic, and errors must say what is wrong.
//!
//! `cargo test` runs a few hundred cases per target; `cargo xtask fuzz --minutes N` runs them
//! for a time budget.

#[path = "../crates/rollouts-core/tests/support/fuzzing.rs"]
mod fuzzing;

use fuzzing::{fuzz, json_value, mutate, mutations, seeds};
use proptest::prelude::*;
use rollouts::analysis::providers::{prometheus, web};
use rollouts::notify::{config, template, trigger};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};

const CASES: u32 = 256;

#[test]
fn fuzz_rollout_decoder_of_the_watch() {
    let seeds = seeds(&["Rollout"]);
    assert!(seeds.len() >= 4, "the manifests are there: {}", seeds.len());
    let n = seeds.len();
    let input = prop_oneof![
        (0..n, mutations(4)).prop_map(move |(i, ms)| mutate(seeds[i].clone(), &ms)),
        (json_value(), json_value()).prop_map(|(spec, status)| json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
            "metadata": {"name": "x", "namespace": "ns"}, "spec": spec, "status": status,
        })),
    ];
    fuzz(
        "Rollout decoder (untyped watch)",
        file!(),
        CASES,
        input,
        |v| {
            let Ok(obj) = serde_json::from_value::<kube::api::DynamicObject>(v) else {
                return Ok(());
            };
            if let Err(e) = rollouts::controller::decode::decode(&obj) {
                prop_assert!(!e.to_string().trim().is_empty(), "an empty decode error");
            }
            Ok(())
        },
    );
}

/// Prometheus API bodies: the shapes its API answers with, filled at random.
fn prometheus_body() -> impl Strategy<Value = String> {
    let sample = (
        any::<i64>(),
        prop_oneof![
            Just("NaN".to_string()),
            Just("+Inf".to_string()),
            Just("-Inf".to_string()),
            "-?[0-9]{1,20}(\\.[0-9]{1,8})?(e-?[0-9]{1,3})?",
            ".{0,8}",
        ],
    )
        .prop_map(|(t, v)| json!([t as f64 / 1000.0, v]));
    let series = (
        json_value(),
        prop::collection::vec(sample.clone(), 0..4),
        sample.clone(),
    )
        .prop_map(
            |(metric, values, value)| json!({"metric": metric, "values": values, "value": value}),
        )
        .boxed();
    let data = prop_oneof![
        prop::collection::vec(series.clone(), 0..4)
            .prop_map(|r| json!({"resultType": "vector", "result": r})),
        prop::collection::vec(series, 0..4)
            .prop_map(|r| json!({"resultType": "matrix", "result": r})),
        sample
            .clone()
            .prop_map(|s| json!({"resultType": "scalar", "result": s})),
        sample.prop_map(|s| json!({"resultType": "string", "result": s})),
        json_value(),
    ];
    let body = (
        prop::sample::select(vec!["success", "error", ""]),
        data,
        prop::option::of(".{0,12}"),
        prop::option::of(prop::collection::vec(".{0,8}", 0..3)),
    )
        .prop_map(|(status, data, error, warnings)| {
            json!({"status": status, "data": data, "errorType": "bad_data", "error": error,
                   "warnings": warnings})
            .to_string()
        });
    prop_oneof![
        4 => body,
        1 => prop::collection::vec(any::<u8>(), 0..200)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ]
}

#[test]
fn fuzz_prometheus_responses() {
    fuzz(
        "Prometheus responses",
        file!(),
        CASES,
        (any::<u16>(), prometheus_body()),
        |(status, body)| {
            match prometheus::parse_response(status, &body) {
                Ok((data, _warnings)) => {
                    let _ = prometheus::data_to_result(data);
                }
                Err(e) => prop_assert!(e.to_string().to_lowercase().contains("prometheus"), "{e}"),
            }
            Ok(())
        },
    );
}

/// JSONPath-like templates.
fn json_path() -> impl Strategy<Value = String> {
    let part = prop_oneof![
        "\\.[a-zA-Z]{1,6}",
        "\\[[0-9]{1,3}\\]",
        Just("[*]".to_string()),
        Just("..".to_string()),
        Just("[-1]".to_string()),
        Just("[0:2]".to_string()),
        Just("[?(@.a > 1)]".to_string()),
        Just("[?(@.a == 'x')]".to_string()),
        Just("['a','b']".to_string()),
        ".{0,3}",
    ];
    prop_oneof![
        4 => (prop::sample::select(vec!["{$", "{", "$", "", "{{", "{."]),
              prop::collection::vec(part, 0..6),
              prop::sample::select(vec!["}", "", "}}"]))
            .prop_map(|(a, parts, b)| format!("{a}{}{b}", parts.concat())),
        1 => ".{0,20}",
    ]
}

#[test]
fn fuzz_web_metric_json_path() {
    fuzz(
        "web metric responses and JSONPath",
        file!(),
        CASES,
        (json_path(), json_value()),
        |(template, body)| {
            match web::json_path_expr(&template) {
                Ok(path) => {
                    if let Err(e) = web::select(&body, &path) {
                        prop_assert!(!e.to_string().is_empty());
                    }
                }
                Err(e) => prop_assert!(e.to_string().contains("jsonPath"), "{e}"),
            }
            Ok(())
        },
    );
}

/// Go template text: literal text and actions built from the template language's pieces.
fn go_template() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        prop::sample::select(vec![
            "{{",
            "}}",
            "{{-",
            "-}}",
            ".rollout",
            ".rollout.metadata.name",
            ".rollout.status.phase",
            ".recipient",
            ".analysisRuns",
            "$",
            "$x := 1",
            "$x",
            "if",
            "else",
            "end",
            "range",
            "with",
            "define \"a\"",
            "template \"a\"",
            "template \"a\" .",
            "block \"b\" .",
            "index",
            "len",
            "print",
            "printf",
            "println",
            "html",
            "js",
            "urlquery",
            "and",
            "or",
            "not",
            "eq",
            "ne",
            "lt",
            "le",
            "gt",
            "ge",
            "call",
            "toJson",
            "toJSON",
            "default",
            "join",
            "replace",
            "contains",
            "hasPrefix",
            "hasSuffix",
            "trunc",
            "|",
            "(",
            ")",
            "\"s\"",
            "`r`",
            "1",
            "-1",
            "1.5",
            "nil",
            "true",
            "'c'",
            " ",
            "\n",
            "/*",
            "*/",
            ",",
            "=",
        ])
        .prop_map(String::from),
        "[a-zA-Z .]{0,8}",
    ];
    prop_oneof![
        6 => prop::collection::vec(piece, 0..24).prop_map(|p| p.concat()),
        1 => ".{0,40}",
    ]
}

fn rollout_json() -> Value {
    seeds(&["Rollout"])
        .into_iter()
        .next()
        .unwrap_or_else(|| json!({"metadata": {"name": "x"}}))
}

#[test]
fn fuzz_notification_templates() {
    let ro = rollout_json();
    let vars = template::vars(&ro, "#channel", &[json!({"metadata": {"name": "run"}})]);
    fuzz(
        "notification templates",
        file!(),
        CASES,
        (go_template(), json_value()),
        move |(text, doc)| {
            if let Err(e) = template::render_str("t", "message", &text, &vars) {
                prop_assert!(e.to_string().contains("template \"t\""), "{e}");
            }
            let doc = json!({"message": text, "slack": {"attachments": doc}});
            let _ = template::render_doc("t", &doc, &vars);
            Ok(())
        },
    );
}

/// `when`/`oncePer`-like expressions over the Rollout.
fn rollout_expression() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        prop::sample::select(vec![
            "rollout",
            "rollout.status",
            "rollout.status.phase",
            "rollout.metadata.name",
            "rollout.spec.replicas",
            "rollout.status.currentStepIndex",
            "rollout.nope.deeper",
            "'Healthy'",
            "\"Degraded\"",
            "==",
            "!=",
            "in",
            "&&",
            "||",
            "!",
            "(",
            ")",
            "[",
            "]",
            "0",
            "1",
            "nil",
            "true",
            "len(",
            "all(",
            "any(",
            "map(",
            "#",
            ",",
            ".",
            "?",
            ":",
            "+",
            "-",
            "*",
            "/",
            "**",
            "matches",
            "'a.*'",
        ])
        .prop_map(String::from),
        "[a-z]{1,6}",
    ];
    prop_oneof![
        4 => prop::collection::vec(token, 0..14).prop_map(|t| t.join(" ")),
        1 => ".{0,30}",
    ]
}

#[test]
fn fuzz_notification_triggers() {
    let ro = rollout_json();
    fuzz(
        "notification triggers (when, oncePer)",
        file!(),
        CASES,
        (
            rollout_expression(),
            rollout_expression(),
            ".{0,10}",
            ".{0,10}",
        ),
        move |(when, once_per, reason, message)| {
            let conditions = vec![config::Condition {
                when,
                send: vec!["t".into()],
                once_per,
                description: String::new(),
            }];
            if let Err(e) = trigger::evaluate("on-x", &conditions, &ro, &reason, &message) {
                prop_assert!(e.to_string().contains("on-x"), "{e}");
            }
            Ok(())
        },
    );
}

/// ConfigMap data: keys the notification settings read, with YAML-ish or arbitrary values.
fn config_data() -> impl Strategy<Value = BTreeMap<String, String>> {
    let key = prop_oneof![
        prop::sample::select(vec![
            "trigger.on-rollout-completed",
            "template.rollout-completed",
            "service.slack",
            "service.webhook.x",
            "service.email",
            "subscriptions",
            "defaultTriggers",
            "context",
        ])
        .prop_map(String::from),
        "[a-z.-]{1,20}",
    ];
    let value = prop_oneof![
        json_value().prop_map(|v| serde_yaml::to_string(&v).unwrap_or_default()),
        Just("- when: rollout.status.phase == 'Healthy'\n  send: [x]".to_string()),
        Just("message: '{{.rollout.metadata.name}}'".to_string()),
        Just("token: $slack-token".to_string()),
        ".{0,40}",
    ];
    prop::collection::btree_map(key, value, 0..6)
}

#[test]
fn fuzz_notification_config() {
    fuzz(
        "notification ConfigMap",
        file!(),
        CASES,
        (
            config_data(),
            prop::collection::hash_map("[a-z-]{1,8}", ".{0,8}", 0..3),
        ),
        |(data, secret)| {
            let secret: HashMap<String, String> = secret;
            let _ = config::Settings::parse(&data, &secret);
            Ok(())
        },
    );
}

/// Found by `fuzz_notification_templates`: `gtmpl`'s lexer never returned on a text ending
/// inside an action (`{{ .`), which spun the notifier's thread forever. Such templates are now
/// a parse error naming the template and field, at once.
#[test]
fn unclosed_template_actions_are_errors_not_a_hang() {
    let vars = template::vars(&json!({"metadata": {"name": "x"}}), "r", &[]);
    let texts = [
        "{{ .",
        "{{.",
        "{{ .a.",
        "{{ 1.",
        "{{ $x.",
        "{{ (.",
        "x {{ . }} {{.",
        "{{/* . */}}{{.",
        "{{ \"}}\" .",
        "{{ `}}` .",
        "{{- .",
        "{{ . ",
        "{{ .rollout.metadata.name",
    ];
    let (tx, rx) = std::sync::mpsc::channel();
    let v = vars.clone();
    std::thread::spawn(move || {
        for t in texts {
            let r = template::render_str("t", "message", t, &v);
            let _ = tx.send((t, r));
        }
    });
    for _ in texts {
        let (t, r) = rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("a template that never finishes rendering");
        let e = r.expect_err(t);
        assert!(
            e.to_string().starts_with("template \"t\": parsing message"),
            "{t:?}: {e}"
        );
    }
    // Closed actions, with "}}" in a literal or a comment, still render.
    for (t, want) in [
        ("{{ .rollout.metadata.name }}", "x"),
        ("{{ \"}}\" }}", "}}"),
        ("{{/* }} */}}ok", "ok"),
        ("a {{ `{{` }} b", "a {{ b"),
    ] {
        assert_eq!(
            template::render_str("t", "m", t, &vars).unwrap(),
            want,
            "{t:?}"
        );
    }
}
