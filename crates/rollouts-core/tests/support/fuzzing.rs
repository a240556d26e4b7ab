//! The fuzzing harness shared by the input fuzz tests (`crates/rollouts-core/tests/fuzz_inputs.rs`
//! and `tests/fuzz_inputs.rs`): a proptest runner that explores `PROPTEST_CASES` cases (the
//! test's default when unset) or, with `ROLLOUTS_FUZZ_SECONDS`, batches of them until that many
//! seconds have passed (`cargo xtask fuzz`). A panic anywhere in the code under test fails the
//! case (proptest catches it and shrinks the input); so does a check the test makes on an error
//! (typed, naming what is wrong). Each target prints one line, which `cargo xtask fuzz` totals:
//!
//! ```text
//! FUZZ <target>: <cases> cases in <seconds>s, <failures> failures
//! ```
//!
//! A failing input's seed is saved beside the test file (`proptest-regressions/`, checked in)
//! and replayed first on every run; the crash itself also becomes an explicit regression test.

// A test harness, not the core's code: its budget comes from the environment and the wall
// clock, its seeds from the repository's manifests (the core's clippy.toml keeps those out of
// the crate itself).
#![allow(clippy::disallowed_methods)]

use proptest::strategy::Strategy;
use proptest::test_runner::{Config, FileFailurePersistence, TestCaseError, TestError, TestRunner};
use std::fmt::Debug;

/// Runs the target `name` (see the module docs). `source` is the caller's `file!()`.
pub fn fuzz<S>(
    name: &str,
    source: &'static str,
    default_cases: u32,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) where
    S: Strategy,
    S::Value: Debug,
{
    let budget = std::env::var("ROLLOUTS_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok());
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default_cases);
    let start = std::time::Instant::now();
    let mut explored = 0u64;
    let mut failure = None;
    loop {
        let mut runner = TestRunner::new(Config {
            cases,
            failure_persistence: Some(Box::new(FileFailurePersistence::SourceParallel(
                "proptest-regressions",
            ))),
            source_file: Some(source),
            max_shrink_iters: 2000,
            ..Config::default()
        });
        let result = runner.run(&strategy, &test);
        explored += u64::from(cases);
        match result {
            Ok(()) => {}
            Err(TestError::Fail(why, input)) => {
                failure = Some(format!("{why}\nminimal input: {input:?}"));
            }
            Err(TestError::Abort(why)) => failure = Some(format!("aborted: {why}")),
        }
        let more = budget.is_some_and(|b| start.elapsed().as_secs_f64() < b);
        if failure.is_some() || !more {
            break;
        }
    }
    println!(
        "FUZZ {name}: {explored} cases in {:.1}s, {} failures",
        start.elapsed().as_secs_f64(),
        usize::from(failure.is_some())
    );
    if let Some(f) = failure {
        panic!("fuzz target {name} failed: {f}");
    }
}

/// Arbitrary JSON: scalars of every kind (extremes included), nested arrays and objects.
pub fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use proptest::prelude::*;
    use serde_json::{Value, json};
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|i| json!(i)),
        any::<u64>().prop_map(|i| json!(i)),
        any::<f64>()
            .prop_filter("JSON has no NaN or infinities", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        prop::sample::select(vec![
            json!(0),
            json!(-1),
            json!(i32::MAX),
            json!(i32::MIN),
            json!(i64::MAX),
            json!(1e308),
            json!(""),
            json!("%"),
            json!("-1%"),
            json!("101%"),
            json!("1h"),
            json!("-5s"),
            json!("9999999999999999999h"),
            json!("0.5"),
            json!("{{"),
            json!("null"),
        ]),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z]{1,10}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Every JSON pointer into `v` (the root included).
pub fn pointers(v: &serde_json::Value) -> Vec<String> {
    fn walk(v: &serde_json::Value, at: String, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, x) in m {
                    let key = k.replace('~', "~0").replace('/', "~1");
                    walk(x, format!("{at}/{key}"), out);
                }
            }
            serde_json::Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    walk(x, format!("{at}/{i}"), out);
                }
            }
            _ => {}
        }
        out.push(at);
    }
    let mut out = Vec::new();
    walk(v, String::new(), &mut out);
    out
}

/// One change to a valid document.
#[derive(Clone, Debug)]
pub enum Mutation {
    /// Remove the value at the n-th pointer.
    Remove(usize),
    /// Replace the value at the n-th pointer.
    Replace(usize, serde_json::Value),
    /// Put a value under a new key of the n-th object (or at the end of the n-th array).
    Insert(usize, String, serde_json::Value),
}

/// Up to `n` mutations.
pub fn mutations(n: usize) -> impl Strategy<Value = Vec<Mutation>> {
    use proptest::prelude::*;
    let one = prop_oneof![
        any::<usize>().prop_map(Mutation::Remove),
        (any::<usize>(), json_value()).prop_map(|(i, v)| Mutation::Replace(i, v)),
        (any::<usize>(), "[a-zA-Z]{1,12}", json_value())
            .prop_map(|(i, k, v)| Mutation::Insert(i, k, v)),
    ];
    prop::collection::vec(one, 1..=n)
}

/// `doc` with `mutations` applied (each picks its pointer modulo the pointers there are then).
pub fn mutate(mut doc: serde_json::Value, mutations: &[Mutation]) -> serde_json::Value {
    for m in mutations {
        let ptrs = pointers(&doc);
        let pick = |i: usize| ptrs[i % ptrs.len()].clone();
        match m {
            Mutation::Remove(i) => {
                let p = pick(*i);
                let Some((parent, key)) = p.rsplit_once('/') else {
                    continue;
                };
                match doc.pointer_mut(parent) {
                    Some(serde_json::Value::Object(o)) => {
                        o.remove(&key.replace("~1", "/").replace("~0", "~"));
                    }
                    Some(serde_json::Value::Array(a)) => {
                        if let Ok(i) = key.parse::<usize>()
                            && i < a.len()
                        {
                            a.remove(i);
                        }
                    }
                    _ => {}
                }
            }
            Mutation::Replace(i, v) => {
                if let Some(slot) = doc.pointer_mut(&pick(*i)) {
                    *slot = v.clone();
                }
            }
            Mutation::Insert(i, k, v) => match doc.pointer_mut(&pick(*i)) {
                Some(serde_json::Value::Object(o)) => {
                    o.insert(k.clone(), v.clone());
                }
                Some(serde_json::Value::Array(a)) => a.push(v.clone()),
                _ => {}
            },
        }
    }
    doc
}

/// The YAML documents of the repository's manifests (examples and test fixtures) whose `kind`
/// is one of `kinds`, as JSON.
pub fn seeds(kinds: &[&str]) -> Vec<serde_json::Value> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = if root.join("examples").is_dir() {
        root.to_path_buf()
    } else {
        root.join("../..")
    };
    let mut files = Vec::new();
    let mut dirs = vec![root.join("examples"), root.join("tests/fixtures")];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "yaml" || x == "yml") {
                files.push(p);
            }
        }
    }
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap_or_default();
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let Ok(v) = <serde_json::Value as serde::Deserialize>::deserialize(doc) else {
                continue;
            };
            if v.get("kind")
                .and_then(|k| k.as_str())
                .is_some_and(|k| kinds.contains(&k))
            {
                out.push(v);
            }
        }
    }
    out
}
