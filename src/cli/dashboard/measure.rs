//! Analysis measurements as numbers, and the numeric thresholds of `successCondition` and
//! `failureCondition` (for the lines the chart draws them against). Pure.
//!
//! A condition is split on `&&` and `||`; each part of the form `RESULT OP NUMBER` (or
//! `NUMBER OP RESULT`), where RESULT is `result`, `result[0]`, `default(result, 0)` or
//! `asFloat(result)` and NUMBER a literal or `{{args.NAME}}` of an argument with a literal
//! value, gives a threshold. Other conditions are shown as text only. An argument taken from
//! a Secret (`valueFrom`) is never read: such a threshold is not drawn.

use crate::api::Argument;
use regex::Regex;
use serde::Serialize;
use std::sync::LazyLock;

/// A threshold line: the measurement compared with `value` by `op`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Threshold {
    /// `>=`, `>`, `<=`, `<`, `==` or `!=`, with the measurement on the left.
    pub op: String,
    pub value: f64,
}

/// The number of a measurement's value: a number, or the first number of a vector
/// (`[0.97]`, `[0.97 0.5]`, `[0.97, 0.5]`).
pub fn number(value: &str) -> Option<f64> {
    let v = value.trim();
    let inner = v
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(v);
    let first = inner
        .split(|c: char| c == ',' || c.is_whitespace())
        .find(|s| !s.is_empty())?;
    first.parse::<f64>().ok().filter(|n| n.is_finite())
}

static RESULT: &str =
    r"(?:result(?:\[0\])?|default\(\s*result\s*,\s*0\s*\)|asFloat\(\s*result(?:\[0\])?\s*\))";
static OPERAND: &str =
    r"(-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?|\{\{\s*args\.[A-Za-z0-9_.-]+\s*\}\})";

static LEFT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"^\(?\s*{RESULT}\s*(>=|<=|==|!=|>|<)\s*{OPERAND}\s*\)?$"
    ))
    .expect("a valid regex")
});
static RIGHT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"^\(?\s*{OPERAND}\s*(>=|<=|==|!=|>|<)\s*{RESULT}\s*\)?$"
    ))
    .expect("a valid regex")
});
static ARG: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\{\{\s*args\.([A-Za-z0-9_.-]+)\s*\}\}$").expect("a valid regex")
});

fn operand(text: &str, args: &[Argument]) -> Option<f64> {
    if let Some(c) = ARG.captures(text) {
        let name = &c[1];
        // Only a literal value: an argument from a Secret is never looked at.
        let arg = args.iter().find(|a| a.name.as_deref() == Some(name))?;
        if arg.value_from.is_some() {
            return None;
        }
        return number(arg.value.as_deref()?);
    }
    number(text)
}

fn flip(op: &str) -> &str {
    match op {
        ">=" => "<=",
        "<=" => ">=",
        ">" => "<",
        "<" => ">",
        other => other,
    }
}

/// The thresholds of a condition (empty when none can be read).
pub fn thresholds(condition: &str, args: &[Argument]) -> Vec<Threshold> {
    let mut out = Vec::new();
    for part in condition.split("&&").flat_map(|p| p.split("||")) {
        let part = part.trim();
        if let Some(c) = LEFT.captures(part) {
            if let Some(value) = operand(&c[2], args) {
                out.push(Threshold {
                    op: c[1].to_string(),
                    value,
                });
            }
        } else if let Some(c) = RIGHT.captures(part)
            && let Some(value) = operand(&c[1], args)
        {
            out.push(Threshold {
                op: flip(&c[2]).to_string(),
                value,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn args(v: serde_json::Value) -> Vec<Argument> {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn numbers_of_values() {
        assert_eq!(number("0.97"), Some(0.97));
        assert_eq!(number("[0.97]"), Some(0.97));
        assert_eq!(number("[0.5 0.7]"), Some(0.5));
        assert_eq!(number("[12, 3]"), Some(12.0));
        assert_eq!(number(" 3 "), Some(3.0));
        assert_eq!(number("[]"), None);
        assert_eq!(number("true"), None);
        assert_eq!(number(""), None);
        assert_eq!(number("NaN"), None);
    }

    #[test]
    fn thresholds_of_conditions() {
        let t = thresholds("result[0] >= 0.95", &[]);
        assert_eq!(
            t,
            vec![Threshold {
                op: ">=".into(),
                value: 0.95
            }]
        );
        let t = thresholds("len(result) > 0 && result[0] < 10", &[]);
        assert_eq!(
            t,
            vec![Threshold {
                op: "<".into(),
                value: 10.0
            }]
        );
        let t = thresholds("0.5 <= result", &[]);
        assert_eq!(t[0].op, ">=");
        assert_eq!(t[0].value, 0.5);
        assert_eq!(thresholds("default(result, 0) > 3", &[])[0].value, 3.0);
        assert!(thresholds("result.ok == true", &[]).is_empty());
        assert!(thresholds("", &[]).is_empty());
    }

    #[test]
    fn thresholds_from_literal_arguments_only() {
        let a = args(json!([
            {"name": "limit", "value": "0.9"},
            {"name": "secret-limit", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}
        ]));
        assert_eq!(thresholds("result[0] >= {{args.limit}}", &a)[0].value, 0.9);
        assert!(thresholds("result[0] >= {{ args.secret-limit }}", &a).is_empty());
        assert!(thresholds("result[0] >= {{args.missing}}", &a).is_empty());
    }
}
