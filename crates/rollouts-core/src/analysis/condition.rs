//! `successCondition` / `failureCondition`: expressions in the expr language
//! (<https://expr-lang.org>), evaluated by the `expr-lang` crate with the variable `result`
//! and upstream's helper functions:
//!
//! | function | meaning |
//! |---|---|
//! | `asInt(x)` | `x` (a number or a numeric string) as an integer; a float is truncated |
//! | `asFloat(x)` | `x` (a number or a numeric string) as a float |
//! | `isNaN(x)` | whether the number `x` is NaN |
//! | `isInf(x)` | whether the number `x` is ±infinity |
//! | `isNil(x)` | whether `x` is nil (no value) |
//! | `default(x, d)` | `x`, or `d` when `x` is nil |
//!
//! Everything else is the expr language itself: arithmetic, comparison, `and`/`or`/`not`
//! (`&&`, `||`, `!`), `in`, `len`, member and index access, closures (`all(result, {# > 0.9})`,
//! `any`, `filter`, `map`, ...), `??`, `?:`, string functions and `matches`.
//!
//! Differences from upstream worth knowing: upstream's `isNil` and `default` ignore their first
//! argument and look at `result`; here they look at their argument (identical for the documented
//! `isNil(result)` and `default(result, 0)`). A comparison of mismatched types (`1.1 == "1.1"`)
//! is `false` here where upstream rejects the expression.

use crate::api::analysis_phase;
use expr::{Context, Environment, Value};
use std::sync::LazyLock;

static ENV: LazyLock<Environment<'static>> = LazyLock::new(environment);

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Integer(i) => Some(*i as f64),
        Value::Float(f) => Some(*f),
        _ => None,
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Integer(_) => "int",
        Value::Float(_) => "float64",
        Value::Bool(_) => "bool",
        Value::Nil => "nil",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Map(_) | Value::KeyedMap(_) => "map",
        Value::Bytes(_) => "bytes",
        _ => "time",
    }
}

fn one_arg<'v>(name: &str, args: &'v [Value]) -> expr::Result<&'v Value> {
    match args {
        [v] => Ok(v),
        _ => Err(expr::Error::ExprError(format!(
            "{name}() takes exactly one argument, got {}",
            args.len()
        ))),
    }
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.add_function("asInt", |c| {
        let v = one_arg("asInt", &c.args)?;
        match v {
            Value::Integer(i) => Ok(Value::Integer(*i)),
            Value::Float(f) if f.is_finite() => Ok(Value::Integer(f.trunc() as i64)),
            Value::String(s) => s
                .trim()
                .parse::<i64>()
                .map(Value::Integer)
                .map_err(|e| expr::Error::ExprError(format!("asInt(): parsing {s:?}: {e}"))),
            other => Err(expr::Error::ExprError(format!(
                "asInt() not supported on {} {other:?}",
                type_name(other)
            ))),
        }
    });
    env.add_function("asFloat", |c| {
        let v = one_arg("asFloat", &c.args)?;
        match v {
            Value::Integer(i) => Ok(Value::Float(*i as f64)),
            Value::Float(f) => Ok(Value::Float(*f)),
            Value::String(s) => s
                .trim()
                .parse::<f64>()
                .map(Value::Float)
                .map_err(|e| expr::Error::ExprError(format!("asFloat(): parsing {s:?}: {e}"))),
            other => Err(expr::Error::ExprError(format!(
                "asFloat() not supported on {} {other:?}",
                type_name(other)
            ))),
        }
    });
    env.add_function("isNaN", |c| {
        let v = one_arg("isNaN", &c.args)?;
        number(v).map(|f| Value::Bool(f.is_nan())).ok_or_else(|| {
            expr::Error::ExprError(format!("isNaN() expects a number, got {}", type_name(v)))
        })
    });
    env.add_function("isInf", |c| {
        let v = one_arg("isInf", &c.args)?;
        number(v)
            .map(|f| Value::Bool(f.is_infinite()))
            .ok_or_else(|| {
                expr::Error::ExprError(format!("isInf() expects a number, got {}", type_name(v)))
            })
    });
    env.add_function("isNil", |c| {
        let v = one_arg("isNil", &c.args)?;
        Ok(Value::Bool(v.is_nil()))
    });
    env.add_function("default", |c| match c.args.as_slice() {
        [v, d] => Ok(if v.is_nil() { d.clone() } else { v.clone() }),
        _ => Err(expr::Error::ExprError(format!(
            "default() takes exactly two arguments, got {}",
            c.args.len()
        ))),
    });
    env
}

/// Converts a JSON value into an expr value. Numbers become floats, as in upstream (Go decodes
/// every JSON number as `float64`).
pub fn json_to_value(v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        serde_json::Value::String(s) => Value::String(s.clone()),
        serde_json::Value::Array(a) => Value::Array(a.iter().map(json_to_value).collect()),
        serde_json::Value::Object(o) => Value::Map(
            o.iter()
                .map(|(k, v)| (k.clone(), json_to_value(v)))
                .collect(),
        ),
    }
}

/// A condition that could not be evaluated.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConditionError {
    /// Not a valid expression.
    #[error("invalid expression {expr:?}: {message}")]
    Parse { expr: String, message: String },
    /// Evaluation failed (unknown name, type error, ...).
    #[error("{message}")]
    Eval { expr: String, message: String },
    /// The expression is not a boolean.
    #[error("expected bool, but got {got}")]
    NotBool { expr: String, got: String },
    /// The expression nests deeper than [`MAX_EXPRESSION_NESTING`] ([`nesting_bound`]).
    #[error(
        "expression too complex ({bound} nested brackets, operators and names; at most {limit})"
    )]
    TooComplex {
        expr: String,
        bound: usize,
        limit: usize,
    },
    /// A range (`a..b`) whose bounds are not integer literals, or that spans more than
    /// [`MAX_RANGE`] integers ([`check_ranges`]).
    #[error(
        "range {range:?}: a range's bounds must be integer literals at most {limit} integers apart"
    )]
    Range {
        expr: String,
        range: String,
        limit: usize,
    },
}

/// The most an expression may nest, as [`nesting_bound`] counts it. `expr-lang` parses and
/// evaluates recursively: a few hundred levels (`[[[…1…]]]` 200 deep, or `1 + 1 + …` with 200
/// terms, found by the input fuzzing) overflow a thread's stack, which aborts the whole
/// controller. Real conditions stay far below (`result[0] >= 0.95 && result[1] < 100`: 8).
pub const MAX_EXPRESSION_NESTING: usize = 100;

/// Which characters of `chars` are code, outside string literals (`"…"` and `'…'` with
/// backslash escapes, raw `` `…` ``); a literal's quotes count as inside it.
fn code_mask(chars: &[char]) -> Vec<bool> {
    let mut code = vec![true; chars.len()];
    let mut quote: Option<char> = None;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match quote {
            Some(q) => {
                code[i] = false;
                if c == '\\' && q != '`' && i + 1 < chars.len() {
                    code[i + 1] = false;
                    i += 1;
                } else if c == q {
                    quote = None;
                }
            }
            None if matches!(c, '"' | '\'' | '`') => {
                code[i] = false;
                quote = Some(c);
            }
            None => {}
        }
        i += 1;
    }
    code
}

/// An upper bound on how deep `expr-lang` recurses for `src`: the deepest bracket nesting plus
/// every operator character, name and member access (outside string literals). Each can add at
/// most one level to the syntax tree; siblings (list elements, arguments) add none.
pub fn nesting_bound(src: &str) -> usize {
    let chars: Vec<char> = src.chars().collect();
    let code = code_mask(&chars);
    let (mut depth, mut deepest, mut count) = (0usize, 0usize, 0usize);
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if !code[i] {
            i += 1;
            continue;
        }
        match c {
            '(' | '[' | '{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            '+' | '-' | '*' | '/' | '%' | '<' | '>' | '=' | '!' | '&' | '|' | '?' | ':' | '^'
            | '~' | '#' => count += 1,
            '.' => {
                let digit = |j: Option<usize>| {
                    j.and_then(|j| chars.get(j))
                        .is_some_and(|c: &char| c.is_ascii_digit())
                };
                if !(digit(i.checked_sub(1)) && digit(Some(i + 1))) {
                    count += 1;
                }
            }
            c if c.is_alphabetic() || c == '_' => {
                count += 1;
                while chars
                    .get(i + 1)
                    .is_some_and(|c| c.is_alphanumeric() || *c == '_')
                {
                    i += 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    deepest + count
}

/// The most integers a range (`a..b`) may hold: upstream's expr evaluates within a memory
/// budget of a million items. `expr-lang` builds a range's whole array: `0..9223372036854775807`
/// (found by the input fuzzing) overflowed its capacity and panicked, which aborts the whole
/// controller, and `0..100000000` would take gigabytes.
pub const MAX_RANGE: usize = 1_000_000;

/// [`ConditionError::Range`] when a range of `src` (`a..b`, outside string literals) has a bound
/// that is not an integer literal (the size of a computed range cannot be known before it is
/// built), or holds more than [`MAX_RANGE`] integers.
pub fn check_ranges(src: &str) -> Result<(), ConditionError> {
    let chars: Vec<char> = src.chars().collect();
    let code = code_mask(&chars);
    let mut i = 0;
    while i + 1 < chars.len() {
        if code[i] && chars[i] == '.' && chars[i + 1] == '.' {
            let (start, from) = literal_before(&chars, i);
            let (end, to) = literal_after(&chars, i + 2);
            let fits = match (start, end) {
                (Some(a), Some(b)) => b < a || (b - a) < MAX_RANGE as i128,
                _ => false,
            };
            if !fits {
                return Err(ConditionError::Range {
                    expr: src.to_string(),
                    range: chars[from..to]
                        .iter()
                        .collect::<String>()
                        .trim()
                        .to_string(),
                    limit: MAX_RANGE,
                });
            }
            i += 2;
            continue;
        }
        i += 1;
    }
    Ok(())
}

/// The integer literal that ends (before blanks) just before `chars[i]`, and where the operand
/// starts.
fn literal_before(chars: &[char], i: usize) -> (Option<i128>, usize) {
    let mut j = i;
    while j > 0 && chars[j - 1].is_whitespace() {
        j -= 1;
    }
    let end = j;
    while j > 0 && chars[j - 1].is_ascii_digit() {
        j -= 1;
    }
    if j > 0 && chars[j - 1] == '-' {
        j -= 1;
    }
    let token: String = chars[j..end].iter().collect();
    let name_before = j > 0 && (chars[j - 1].is_alphanumeric() || "_.)]}".contains(chars[j - 1]));
    let value = (!name_before).then(|| token.parse::<i128>().ok()).flatten();
    (value, j)
}

/// The integer literal that starts (after blanks) at `chars[i]`, and where the operand ends.
fn literal_after(chars: &[char], i: usize) -> (Option<i128>, usize) {
    let mut j = i;
    while j < chars.len() && chars[j].is_whitespace() {
        j += 1;
    }
    let start = j;
    if j < chars.len() && chars[j] == '-' {
        j += 1;
    }
    while j < chars.len() && chars[j].is_ascii_digit() {
        j += 1;
    }
    let token: String = chars[start..j].iter().collect();
    let name_after = chars
        .get(j)
        .is_some_and(|c| c.is_alphanumeric() || "_.([".contains(*c));
    let value = (!name_after).then(|| token.parse::<i128>().ok()).flatten();
    let mut to = j;
    if value.is_none() {
        // Show the operand as far as it goes.
        while to < chars.len() && !chars[to].is_whitespace() && !",)]}".contains(chars[to]) {
            to += 1;
        }
    }
    (value, to)
}

/// What every expression is checked for before `expr-lang` parses it: [`check_nesting`] and
/// [`check_ranges`].
pub fn check_limits(src: &str) -> Result<(), ConditionError> {
    check_nesting(src)?;
    check_ranges(src)
}

/// [`ConditionError::TooComplex`] when `src` nests deeper than [`MAX_EXPRESSION_NESTING`].
pub fn check_nesting(src: &str) -> Result<(), ConditionError> {
    let bound = nesting_bound(src);
    if bound > MAX_EXPRESSION_NESTING {
        return Err(ConditionError::TooComplex {
            expr: src.to_string(),
            bound,
            limit: MAX_EXPRESSION_NESTING,
        });
    }
    Ok(())
}

/// Folds pest's multi-line parse error (`--> 1:10`, a caret drawing, `= expected ...`) into one
/// line: `at 1:10: expected ...`.
fn one_line_parse_error(text: &str) -> String {
    let mut at = None;
    let mut what = None;
    for line in text.lines() {
        let l = line.trim();
        if let Some(p) = l.strip_prefix("-->") {
            at = Some(p.trim().to_string());
        } else if let Some(m) = l.strip_prefix("= ") {
            what = Some(m.trim().to_string());
        }
    }
    match (at, what) {
        (Some(at), Some(what)) => format!("at {at}: {what}"),
        (None, Some(what)) => what,
        _ => text.split_whitespace().collect::<Vec<_>>().join(" "),
    }
}

/// Expands the closure member shorthand of expr (`{asFloat(.value) > 1}` is
/// `{asFloat(#.value) > 1}`; upstream's SkyWalking documentation uses it), which the `expr-lang`
/// crate does not parse: a `.` followed by a name, outside string literals, and not after a
/// name, a number, `)`, `]`, `}`, `.`, `?` or `#`, becomes `#.`.
pub fn expand_member_shorthand(src: &str) -> std::borrow::Cow<'_, str> {
    if !src.contains('.') {
        return std::borrow::Cow::Borrowed(src);
    }
    let chars: Vec<char> = src.chars().collect();
    let code = code_mask(&chars);
    let mut out = String::with_capacity(src.len() + 4);
    let mut changed = false;
    for (i, &c) in chars.iter().enumerate() {
        if code[i] && c == '.' {
            let prev = if i == 0 { ' ' } else { chars[i - 1] };
            let next = chars.get(i + 1).copied().unwrap_or(' ');
            let after_operand =
                prev.is_alphanumeric() || matches!(prev, '_' | ')' | ']' | '}' | '.' | '?' | '#');
            if !after_operand && (next.is_alphabetic() || next == '_') {
                out.push('#');
                changed = true;
            }
        }
        out.push(c);
    }
    if changed {
        std::borrow::Cow::Owned(out)
    } else {
        std::borrow::Cow::Borrowed(src)
    }
}

/// Parses `condition` without evaluating it (for validation).
pub fn check_syntax(condition: &str) -> Result<(), ConditionError> {
    check_limits(condition)?;
    expr::compile(&expand_member_shorthand(condition))
        .map(|_| ())
        .map_err(|e| ConditionError::Parse {
            expr: condition.to_string(),
            message: one_line_parse_error(&e.to_string()),
        })
}

/// Evaluates one condition with `result` bound to `result`.
pub fn eval_condition(result: &Value, condition: &str) -> Result<bool, ConditionError> {
    check_limits(condition)?;
    let program = match expr::compile(&expand_member_shorthand(condition)) {
        Ok(p) => p,
        Err(e) => {
            return Err(ConditionError::Parse {
                expr: condition.to_string(),
                message: one_line_parse_error(&e.to_string()),
            });
        }
    };
    let mut ctx = Context::default();
    ctx.insert("result", result.clone());
    match ENV.run(&program, &ctx) {
        Ok(Value::Bool(b)) => Ok(b),
        Ok(other) => Err(ConditionError::NotBool {
            expr: condition.to_string(),
            got: type_name(&other).to_string(),
        }),
        Err(e) => Err(ConditionError::Eval {
            expr: condition.to_string(),
            message: e.to_string(),
        }),
    }
}

/// The phase of a measurement with value `result` (upstream's `EvaluateResult`):
///
/// - no conditions: Successful;
/// - only a success condition: Successful when it holds, else Failed;
/// - only a failure condition: Failed when it holds, else Successful;
/// - both: Failed when the failure condition holds, Successful when only the success condition
///   holds, Inconclusive when neither does.
///
/// An empty condition string counts as absent. An expression that cannot be evaluated is an
/// error (the measurement's phase is then Error).
pub fn evaluate_result(
    result: &Value,
    success: Option<&str>,
    failure: Option<&str>,
) -> Result<&'static str, ConditionError> {
    let success = success.filter(|s| !s.trim().is_empty());
    let failure = failure.filter(|s| !s.trim().is_empty());
    let s = success.map(|c| eval_condition(result, c)).transpose()?;
    let f = failure.map(|c| eval_condition(result, c)).transpose()?;
    let (succeeded, failed) = match (s, f) {
        (None, None) => return Ok(analysis_phase::SUCCESSFUL),
        (Some(s), None) => (s, !s),
        (None, Some(f)) => (!f, f),
        (Some(s), Some(f)) => (s, f),
    };
    Ok(if failed {
        analysis_phase::FAILED
    } else if succeeded {
        analysis_phase::SUCCESSFUL
    } else {
        analysis_phase::INCONCLUSIVE
    })
}

/// A condition's `result` and the text stored as the measurement's value.
#[derive(Clone, Debug, PartialEq)]
pub struct ValueWithText {
    pub value: Value,
    pub text: String,
}

/// A time expression that could not be evaluated.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TimeExprError {
    /// Too deeply nested, or not a valid expression.
    #[error(transparent)]
    Condition(#[from] ConditionError),
    /// `now` is not a time the expression language can hold.
    #[error("time out of range")]
    OutOfRange,
    /// The expression is not a time or a number.
    #[error("{expr:?} is a {got}, not a time")]
    NotTime { expr: String, got: &'static str },
    /// Evaluation failed.
    #[error("{expr:?}: {message}")]
    Eval { expr: String, message: String },
}

/// Evaluates a time expression (a range query's `start`/`end`, e.g. `now() - duration("5m")`)
/// with `now()` fixed at `now`. Returns Unix seconds (with their fraction).
pub fn eval_time(
    expression: &str,
    now: k8s_openapi::jiff::Timestamp,
) -> Result<f64, TimeExprError> {
    check_limits(expression)?;
    let program = expr::compile(expression).map_err(|e| ConditionError::Parse {
        expr: expression.to_string(),
        message: one_line_parse_error(&e.to_string()),
    })?;
    let fixed =
        chrono::DateTime::from_timestamp(now.as_second(), now.subsec_nanosecond().max(0) as u32)
            .ok_or(TimeExprError::OutOfRange)?
            .fixed_offset();
    let mut env = Environment::new();
    env.add_function("now", move |c| {
        if !c.args.is_empty() {
            return Err(expr::Error::ExprError("now() takes no arguments".into()));
        }
        Ok(Value::DateTime(expr::DateTimeValue::fixed(fixed)))
    });
    match env.run(&program, &Context::default()) {
        Ok(Value::DateTime(d)) => {
            Ok(d.timestamp() as f64 + f64::from(d.timestamp_subsec_nanos()) / 1e9)
        }
        Ok(Value::Integer(i)) => Ok(i as f64),
        Ok(Value::Float(f)) if f.is_finite() => Ok(f),
        Ok(other) => Err(TimeExprError::NotTime {
            expr: expression.to_string(),
            got: type_name(&other),
        }),
        Err(e) => Err(TimeExprError::Eval {
            expr: expression.to_string(),
            message: e.to_string(),
        }),
    }
}

/// Whether `v` is, or contains at its top level, a NaN.
pub fn contains_nan(v: &Value) -> bool {
    match v {
        Value::Float(f) => f.is_nan(),
        Value::Array(a) => a.iter().any(|x| matches!(x, Value::Float(f) if f.is_nan())),
        _ => false,
    }
}

/// Evaluates the conditions and explains results users trip over: an empty result (a query
/// matching no series, upstream's "index out of range") and NaN (`0/0`, e.g. a ratio over no
/// traffic). Returns the phase and a message for the measurement.
pub fn judge(
    result: &Value,
    success: Option<&str>,
    failure: Option<&str>,
) -> (&'static str, Option<String>) {
    let empty = matches!(result, Value::Array(a) if a.is_empty());
    match evaluate_result(result, success, failure) {
        Ok(phase) => {
            let note = if contains_nan(result) && phase != analysis_phase::SUCCESSFUL {
                Some(
                    "the result is NaN (e.g. 0/0: a ratio over no traffic); handle it in the \
                     condition, e.g. `isNaN(result[0]) || result[0] < 0.05`"
                        .to_string(),
                )
            } else {
                None
            };
            (phase, note)
        }
        Err(e @ ConditionError::Parse { .. }) => (analysis_phase::ERROR, Some(e.to_string())),
        Err(e) if empty => (
            analysis_phase::ERROR,
            Some(format!(
                "the query returned an empty result (no series matched), so the condition could \
                 not be evaluated ({e}); guard it, e.g. `len(result) == 0 || result[0] < 0.05`"
            )),
        ),
        Err(e) => (analysis_phase::ERROR, Some(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arr(v: &[f64]) -> Value {
        Value::Array(v.iter().map(|f| Value::Float(*f)).collect())
    }

    #[test]
    fn ranges_need_literal_bounds_within_the_budget() {
        let result = Value::Integer(3);
        // Found by the input fuzzing: expr-lang built the whole array and panicked.
        for huge in [
            "len(0..9223372036854775807) > 0",
            "0..100000000 == []",
            "-9223372036854775808..0 != []",
        ] {
            let err = eval_condition(&result, huge).unwrap_err();
            assert!(matches!(err, ConditionError::Range { .. }), "{huge}: {err}");
        }
        let err = eval_condition(&result, "len(0..result) == 4").unwrap_err();
        assert_eq!(
            err.to_string(),
            "range \"0..result\": a range's bounds must be integer literals at most 1000000 integers apart"
        );
        assert!(check_syntax("all(1..x, {# > 0})").is_err());
        // Small literal ranges, and dots that are not ranges, are fine.
        assert_eq!(eval_condition(&result, "result in 1..5"), Ok(true));
        assert_eq!(eval_condition(&result, "len(-2 .. 2) == 5"), Ok(true));
        assert_eq!(
            eval_condition(&result, "len(1..999999) == 999999"),
            Ok(true)
        );
        assert_eq!(eval_condition(&result, "len(5..1) == 0"), Ok(true));
        assert!(check_ranges("'0..9223372036854775807' != \"a..b\"").is_ok());
        assert!(check_ranges("result.x > 1.5").is_ok());
        assert!(check_ranges("0..1000000").is_err());
        assert!(check_ranges("0..999999").is_ok());
    }

    #[test]
    fn evaluate_result_table_from_upstream() {
        let t = Value::Bool(true);
        let cases = [
            (Some("true"), Some("false"), analysis_phase::SUCCESSFUL),
            (Some("true"), Some("true"), analysis_phase::FAILED),
            (Some("false"), Some("false"), analysis_phase::INCONCLUSIVE),
            (None, Some("false"), analysis_phase::SUCCESSFUL),
            (Some("false"), None, analysis_phase::FAILED),
            (None, None, analysis_phase::SUCCESSFUL),
            (Some(""), Some(""), analysis_phase::SUCCESSFUL),
        ];
        for (s, f, want) in cases {
            assert_eq!(evaluate_result(&t, s, f).unwrap(), want, "{s:?} {f:?}");
        }
        assert!(evaluate_result(&t, Some("a == true"), Some("true")).is_err());
        assert!(evaluate_result(&t, Some("true"), Some("a == true")).is_err());
    }

    #[test]
    fn conditions_from_upstream_tests() {
        let t = Value::Bool(true);
        assert!(eval_condition(&t, "result == true").unwrap());
        assert!(!eval_condition(&t, "result == false").unwrap());
        assert_eq!(
            eval_condition(&t, "1").unwrap_err().to_string(),
            "expected bool, but got int"
        );
        assert!(
            eval_condition(&t, "invalidVariable")
                .unwrap_err()
                .to_string()
                .contains("invalidVariable")
        );
        let nested = json_to_value(&serde_json::json!({
            "service_apdex": {"label": null, "values": {"values": [2, 2]}}
        }));
        assert!(
            eval_condition(&nested, "all(result.service_apdex.values.values, {# > 1})").unwrap()
        );
        assert!(eval_condition(&arr(&[2.0, 2.0]), "2 in result").unwrap());
        assert!(eval_condition(&Value::Float(5.0), "result > 1").unwrap());
        assert!(eval_condition(&t, "result.Name() == 'hi'").is_err());
        assert!(eval_condition(&Value::String("1.1".into()), "asInt(result) == 1.1").is_err());
        for (input, expr) in [
            (Value::String("1".into()), "asInt(result) == 1"),
            (Value::Integer(1), "asInt(result) == 1"),
            (Value::Float(1.123), "asInt(result) == 1"),
            (Value::String("1.1".into()), "asFloat(result) == 1.1"),
            (Value::String("1.1".into()), "asFloat(result) >= 1.1"),
            (Value::String("1.1".into()), "asFloat(result) <= 1.1"),
            (Value::Float(1.1), "asFloat(result) == 1.1"),
            (Value::Integer(1), "asFloat(result) == 1"),
            (Value::Integer(1), "asFloat(result) >= 1"),
        ] {
            assert!(eval_condition(&input, expr).unwrap(), "{expr} on {input:?}");
        }
        let e = eval_condition(&Value::String("NotANum".into()), "asFloat(result) == 1.1");
        assert!(e.unwrap_err().to_string().contains("NotANum"));
    }

    #[test]
    fn helpers_nan_inf_nil_default() {
        assert!(eval_condition(&arr(&[f64::NAN]), "isNaN(result[0])").unwrap());
        assert!(!eval_condition(&arr(&[1.0]), "isNaN(result[0])").unwrap());
        assert!(eval_condition(&Value::Float(f64::INFINITY), "isInf(result)").unwrap());
        assert!(!eval_condition(&Value::Float(0.0), "isInf(result)").unwrap());
        assert!(eval_condition(&Value::Nil, "isNil(result)").unwrap());
        assert!(!eval_condition(&arr(&[]), "isNil(result)").unwrap());
        assert!(eval_condition(&Value::Nil, "default(result, 0) == 0").unwrap());
        assert!(eval_condition(&Value::Float(1.0), "default(result, 0) == 1").unwrap());
        assert!(eval_condition(&arr(&[0.95, 0.99]), "all(result, {# > 0.9})").unwrap());
        assert!(!eval_condition(&arr(&[0.95, 0.5]), "all(result, {# > 0.9})").unwrap());
        assert!(eval_condition(&arr(&[0.5]), "any(result, # < 0.9) && len(result) == 1").unwrap());
        assert!(
            eval_condition(
                &arr(&[0.5]),
                "result[0] * 2 - 1 == 0 and not (result[0] > 1)"
            )
            .unwrap()
        );
    }

    #[test]
    fn closure_member_shorthand() {
        assert_eq!(
            expand_member_shorthand("all(result.a.values, {asFloat(.value) >= 9900})"),
            "all(result.a.values, {asFloat(#.value) >= 9900})"
        );
        for same in [
            "result.a > 0.5 && .5 < 1",
            "#.value > 1",
            "result?.a == 'x.y'",
            "1..3",
            "result[0].b",
            "f().b",
            "\".a\" == 'b .c'",
        ] {
            assert_eq!(expand_member_shorthand(same), same);
        }
        let v = json_to_value(&serde_json::json!({"xs": [{"value": "9950"}, {"value": 9990}]}));
        assert!(eval_condition(&v, "all(result.xs, {asFloat(.value) >= 9900})").unwrap());
        assert!(eval_condition(&v, "any(result.xs, { .value == '9950' })").unwrap());
    }

    #[test]
    fn parse_errors_are_one_line() {
        let e = eval_condition(&Value::Nil, "result ==").unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, ConditionError::Parse { .. }));
        assert!(!msg.contains('\n'), "{msg}");
        assert!(
            msg.starts_with("invalid expression \"result ==\": at 1:10"),
            "{msg}"
        );
        assert!(check_syntax("result[0] >= 0.9").is_ok());
        assert!(check_syntax("result[0] >=").is_err());
    }

    #[test]
    fn judge_explains_empty_and_nan() {
        let (p, m) = judge(&arr(&[]), Some("result[0] >= 0.95"), None);
        assert_eq!(p, analysis_phase::ERROR);
        assert!(m.unwrap().contains("empty result"));
        let (p, m) = judge(
            &arr(&[]),
            Some("len(result) == 0 || result[0] >= 0.95"),
            None,
        );
        assert_eq!((p, m), (analysis_phase::SUCCESSFUL, None));
        let (p, m) = judge(&arr(&[f64::NAN]), Some("result[0] < 0.05"), None);
        assert_eq!(p, analysis_phase::FAILED);
        assert!(m.unwrap().contains("NaN"));
        let (p, _) = judge(
            &arr(&[f64::NAN]),
            Some("result[0] < 0.05"),
            Some("result[0] > 0.5"),
        );
        assert_eq!(p, analysis_phase::INCONCLUSIVE);
    }
}
