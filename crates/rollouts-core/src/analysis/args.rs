//! `{{args.name}}` substitution (upstream's `utils/template`) and argument helpers.

use crate::api::{Argument, Metric};
use std::collections::BTreeMap;

/// The stand-in value of a `secretKeyRef` argument while the spec is validated and scheduled
/// (upstream's), so that secrets are read only when a measurement is taken.
pub const SECRET_PLACEHOLDER: &str = "temp-for-secret";

/// A template that cannot be resolved.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ArgError {
    /// A `{{tag}}` names no argument with a value.
    #[error("failed to resolve {{{{{0}}}}}")]
    Unresolved(String),
    /// A `{{` without its `}}`.
    #[error("unterminated '{{{{' in {0:?}")]
    Unterminated(String),
    /// The metric could not be encoded or decoded around the substitution.
    #[error("encoding the metric: {0}")]
    Encoding(String),
}

/// Substitutes every `{{tag}}` of `text` with `values[tag.trim()]`. With `quoted`, values are
/// escaped as the inside of a JSON string (the text is a JSON document). Every tag must
/// resolve: the first that does not is the error (upstream's behaviour, so a typo in an
/// argument name is an error naming it, never a silently literal query).
pub fn substitute(
    text: &str,
    values: &BTreeMap<String, String>,
    quoted: bool,
) -> Result<String, ArgError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return Err(ArgError::Unterminated(
                rest[start..].chars().take(40).collect(),
            ));
        };
        let tag = &after[..end];
        let key = tag.trim();
        match values.get(key) {
            Some(v) if !key.is_empty() => {
                if quoted {
                    let q =
                        serde_json::to_string(v).map_err(|e| ArgError::Encoding(e.to_string()))?;
                    out.push_str(&q[1..q.len() - 1]);
                } else {
                    out.push_str(v);
                }
            }
            _ => return Err(ArgError::Unresolved(tag.to_string())),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The `args.<name>` → value map of a run's arguments. An argument with a `secretKeyRef` takes
/// its value from `secrets` (by argument name), or [`SECRET_PLACEHOLDER`] when absent; an
/// argument with neither a value nor a secret is left out (so using it is an error).
pub fn arg_values(
    args: &[Argument],
    secrets: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for a in args {
        let Some(name) = a.name.as_deref() else {
            continue;
        };
        let is_secret = a
            .value_from
            .as_ref()
            .is_some_and(|vf| vf.secret_key_ref.is_some());
        let value = if is_secret {
            Some(
                secrets
                    .get(name)
                    .cloned()
                    .unwrap_or_else(|| SECRET_PLACEHOLDER.to_string()),
            )
        } else {
            a.value.clone()
        };
        if let Some(v) = value {
            out.insert(format!("args.{name}"), v);
        }
    }
    out
}

/// Resolves the arguments of one metric (every string field of it, as upstream does on the
/// metric's JSON).
pub fn resolve_metric(
    metric: &Metric,
    args: &[Argument],
    secrets: &BTreeMap<String, String>,
) -> Result<Metric, ArgError> {
    let json = serde_json::to_string(metric).map_err(|e| ArgError::Encoding(e.to_string()))?;
    if !json.contains("{{") {
        return Ok(metric.clone());
    }
    let resolved = substitute(&json, &arg_values(args, secrets), true)?;
    serde_json::from_str(&resolved).map_err(|e| ArgError::Encoding(e.to_string()))
}

/// Resolves every metric (secrets replaced by [`SECRET_PLACEHOLDER`]).
pub fn resolve_metrics_without_secrets(
    metrics: &[Metric],
    args: &[Argument],
) -> Result<Vec<Metric>, ArgError> {
    let none = BTreeMap::new();
    metrics
        .iter()
        .map(|m| resolve_metric(m, args, &none))
        .collect()
}

/// Replaces every occurrence of a secret value in `text` by `*****`.
pub fn redact(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    for s in secrets {
        if !s.is_empty() {
            out = out.replace(s.as_str(), "*****");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vals(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn substitutes_and_trims_tags() {
        let v = vals(&[("args.a", "x"), ("args.b", "y\"z")]);
        assert_eq!(
            substitute("q{{args.a}}-{{ args.b }}", &v, false).unwrap(),
            "qx-y\"z"
        );
        assert_eq!(
            substitute("\"{{args.b}}\"", &v, true).unwrap(),
            "\"y\\\"z\""
        );
        assert_eq!(substitute("no tags", &v, false).unwrap(), "no tags");
    }

    #[test]
    fn unresolved_tags_are_errors_naming_them() {
        let v = vals(&[("args.a", "x")]);
        let e = substitute("{{args.a}} {{args.missing}}", &v, false).unwrap_err();
        assert_eq!(e.to_string(), "failed to resolve {{args.missing}}");
        assert!(matches!(
            substitute("{{args.a", &v, false),
            Err(ArgError::Unterminated(_))
        ));
        assert!(substitute("{{}}", &v, false).is_err());
    }

    #[test]
    fn secrets_use_the_placeholder_until_read() {
        let args: Vec<Argument> = serde_json::from_value(serde_json::json!([
            {"name": "plain", "value": "v"},
            {"name": "token", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
            {"name": "unset"}
        ]))
        .unwrap();
        let m = arg_values(&args, &BTreeMap::new());
        assert_eq!(m["args.token"], SECRET_PLACEHOLDER);
        assert!(!m.contains_key("args.unset"));
        let m = arg_values(&args, &vals(&[("token", "hunter2")]));
        assert_eq!(m["args.token"], "hunter2");
        assert_eq!(
            redact("Bearer hunter2 failed", &["hunter2".into()]),
            "Bearer ***** failed"
        );
    }

    #[test]
    fn resolves_a_metric_including_int_or_string_fields() {
        let metric: Metric = serde_json::from_value(serde_json::json!({
            "name": "m", "failureLimit": "{{args.limit}}",
            "successCondition": "result[0] < {{args.threshold}}",
            "provider": {"prometheus": {"query": "rate(x{job=\"{{args.job}}\"}[1m])"}}
        }))
        .unwrap();
        let args: Vec<Argument> = serde_json::from_value(serde_json::json!([
            {"name": "limit", "value": "3"}, {"name": "threshold", "value": "0.5"},
            {"name": "job", "value": "a\"b"}
        ]))
        .unwrap();
        let r = resolve_metric(&metric, &args, &BTreeMap::new()).unwrap();
        assert_eq!(r.success_condition.as_deref(), Some("result[0] < 0.5"));
        assert_eq!(
            r.provider.unwrap().prometheus.unwrap().query.as_deref(),
            Some(r#"rate(x{job="a"b"}[1m])"#)
        );
        let e = resolve_metric(&metric, &args[..1], &BTreeMap::new()).unwrap_err();
        assert_eq!(e.to_string(), "failed to resolve {{args.threshold}}");
    }
}
