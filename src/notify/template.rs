//! Templates: Go `text/template` semantics, by the `gtmpl` crate, plus the sprig-style helpers
//! upstream's catalog and documentation use (`add`, `sub`, `toJson`, `upper`, ...).
//!
//! A notification template (`template.<name>` in the ConfigMap) is a YAML document: `message`
//! and one section per service (`slack`, `email`, `webhook`, `teams`, ...). Every string in it
//! is a Go template, rendered with the variables `.rollout` (the Rollout as JSON), `.recipient`,
//! `.analysisRuns` (the Rollout's AnalysisRuns) and `.time` is not provided (see the README).

use gtmpl::{Context, Func, FuncError, Value};
use serde_json::Value as Json;
use std::collections::HashMap;

/// A template that could not be parsed or rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("template {name:?}: parsing {field}: {message}")]
    Parse {
        name: String,
        field: String,
        message: String,
    },
    #[error("template {name:?}: rendering {field}: {message}")]
    Render {
        name: String,
        field: String,
        message: String,
    },
    #[error("template {0:?} is not defined in the notification ConfigMap")]
    Unknown(String),
}

/// Converts JSON into a template value (objects are maps: a missing key is `<no value>`,
/// false in `if`, as for Go's `map[string]interface{}`).
pub fn to_value(v: &Json) -> Value {
    match v {
        Json::Null => Value::Nil,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => Value::from(i),
            (None, Some(u), _) => Value::from(u),
            (_, _, Some(f)) => Value::from(f),
            _ => Value::Nil,
        },
        Json::String(s) => Value::String(s.clone()),
        Json::Array(a) => Value::Array(a.iter().map(to_value).collect()),
        Json::Object(o) => Value::Map(o.iter().map(|(k, v)| (k.clone(), to_value(v))).collect()),
    }
}

fn to_json(v: &Value) -> Json {
    match v {
        Value::NoValue | Value::Nil | Value::Function(_) => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::String(s) => Json::String(s.clone()),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Json::from(i)
            } else if let Some(u) = n.as_u64() {
                Json::from(u)
            } else {
                n.as_f64().map(Json::from).unwrap_or(Json::Null)
            }
        }
        Value::Array(a) => Json::Array(a.iter().map(to_json).collect()),
        Value::Object(m) | Value::Map(m) => {
            Json::Object(m.iter().map(|(k, v)| (k.clone(), to_json(v))).collect())
        }
    }
}

/// A number argument as i64 or f64.
enum Num {
    I(i64),
    F(f64),
}

fn num(name: &str, v: &Value) -> Result<Num, FuncError> {
    match v {
        Value::Number(n) => match n.as_i64() {
            Some(i) => Ok(Num::I(i)),
            None => n
                .as_f64()
                .map(Num::F)
                .ok_or_else(|| FuncError::Generic(format!("{name}: not a number"))),
        },
        Value::String(s) => s
            .trim()
            .parse::<i64>()
            .map(Num::I)
            .or_else(|_| s.trim().parse::<f64>().map(Num::F))
            .map_err(|_| FuncError::Generic(format!("{name}: {s:?} is not a number"))),
        Value::Bool(b) => Ok(Num::I(i64::from(*b))),
        Value::Nil | Value::NoValue => Ok(Num::I(0)),
        _ => Err(FuncError::Generic(format!("{name}: not a number"))),
    }
}

fn arith(
    name: &str,
    args: &[Value],
    i: fn(i64, i64) -> Option<i64>,
    f: fn(f64, f64) -> f64,
) -> Result<Value, FuncError> {
    if args.len() < 2 {
        return Err(FuncError::AtLeastXArgs(name.into(), 2));
    }
    let mut acc = num(name, &args[0])?;
    for a in &args[1..] {
        acc = match (acc, num(name, a)?) {
            (Num::I(x), Num::I(y)) => match i(x, y) {
                Some(r) => Num::I(r),
                None => {
                    return Err(FuncError::Generic(format!(
                        "{name}: overflow or division by zero"
                    )));
                }
            },
            (Num::I(x), Num::F(y)) => Num::F(f(x as f64, y)),
            (Num::F(x), Num::I(y)) => Num::F(f(x, y as f64)),
            (Num::F(x), Num::F(y)) => Num::F(f(x, y)),
        };
    }
    Ok(match acc {
        Num::I(x) => Value::from(x),
        Num::F(x) => Value::from(x),
    })
}

fn add(args: &[Value]) -> Result<Value, FuncError> {
    arith("add", args, i64::checked_add, |a, b| a + b)
}
fn sub(args: &[Value]) -> Result<Value, FuncError> {
    arith("sub", args, i64::checked_sub, |a, b| a - b)
}
fn mul(args: &[Value]) -> Result<Value, FuncError> {
    arith("mul", args, i64::checked_mul, |a, b| a * b)
}
fn div(args: &[Value]) -> Result<Value, FuncError> {
    arith("div", args, i64::checked_div, |a, b| a / b)
}

fn string_arg(name: &str, args: &[Value], i: usize) -> Result<String, FuncError> {
    match args.get(i) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::NoValue) | Some(Value::Nil) => Ok(String::new()),
        Some(v) => Ok(v.to_string()),
        None => Err(FuncError::AtLeastXArgs(name.into(), i + 1)),
    }
}

fn upper(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::from(string_arg("upper", args, 0)?.to_uppercase()))
}
fn lower(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::from(string_arg("lower", args, 0)?.to_lowercase()))
}
fn trim(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::from(string_arg("trim", args, 0)?.trim().to_string()))
}
fn quote(args: &[Value]) -> Result<Value, FuncError> {
    let s = string_arg("quote", args, 0)?;
    Ok(Value::from(Json::String(s).to_string()))
}
/// `toJson v`: v as compact JSON.
fn to_json_fn(args: &[Value]) -> Result<Value, FuncError> {
    let v = args
        .first()
        .ok_or_else(|| FuncError::ExactlyXArgs("toJson".into(), 1))?;
    Ok(Value::from(to_json(v).to_string()))
}
/// sprig's `default d v`: v unless empty, else d.
fn default(args: &[Value]) -> Result<Value, FuncError> {
    let [d, rest @ ..] = args else {
        return Err(FuncError::AtLeastXArgs("default".into(), 1));
    };
    let v = rest.first().cloned().unwrap_or(Value::NoValue);
    let empty = match &v {
        Value::NoValue | Value::Nil => true,
        Value::Bool(b) => !b,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Map(m) | Value::Object(m) => m.is_empty(),
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::Function(_) => false,
    };
    Ok(if empty { d.clone() } else { v })
}
/// sprig's `join sep list`.
fn join(args: &[Value]) -> Result<Value, FuncError> {
    let sep = string_arg("join", args, 0)?;
    let items = match args.get(1) {
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| match v {
                Value::String(s) => s.clone(),
                v => v.to_string(),
            })
            .collect::<Vec<_>>(),
        Some(v) => vec![v.to_string()],
        None => return Err(FuncError::ExactlyXArgs("join".into(), 2)),
    };
    Ok(Value::from(items.join(&sep)))
}
/// sprig's `replace old new s`.
fn replace(args: &[Value]) -> Result<Value, FuncError> {
    let old = string_arg("replace", args, 0)?;
    let new = string_arg("replace", args, 1)?;
    let s = string_arg("replace", args, 2)?;
    Ok(Value::from(s.replace(&old, &new)))
}
/// sprig's `contains sub s`.
fn contains(args: &[Value]) -> Result<Value, FuncError> {
    let sub = string_arg("contains", args, 0)?;
    let s = string_arg("contains", args, 1)?;
    Ok(Value::from(s.contains(&sub)))
}
fn has_prefix(args: &[Value]) -> Result<Value, FuncError> {
    let p = string_arg("hasPrefix", args, 0)?;
    let s = string_arg("hasPrefix", args, 1)?;
    Ok(Value::from(s.starts_with(&p)))
}
fn has_suffix(args: &[Value]) -> Result<Value, FuncError> {
    let p = string_arg("hasSuffix", args, 0)?;
    let s = string_arg("hasSuffix", args, 1)?;
    Ok(Value::from(s.ends_with(&p)))
}
/// sprig's `trunc n s` (a negative n keeps the end).
fn trunc(args: &[Value]) -> Result<Value, FuncError> {
    let n = match num("trunc", args.first().unwrap_or(&Value::NoValue))? {
        Num::I(i) => i,
        Num::F(f) => f as i64,
    };
    let s: Vec<char> = string_arg("trunc", args, 1)?.chars().collect();
    let len = s.len() as i64;
    let out: String = if n >= 0 {
        s.iter().take(n as usize).collect()
    } else {
        s.iter().skip((len + n).max(0) as usize).collect()
    };
    Ok(Value::from(out))
}

/// The functions added to Go's built-ins.
pub static FUNCS: &[(&str, Func)] = &[
    ("add", add as Func),
    ("sub", sub as Func),
    ("mul", mul as Func),
    ("div", div as Func),
    ("upper", upper as Func),
    ("toUpper", upper as Func),
    ("lower", lower as Func),
    ("toLower", lower as Func),
    ("trim", trim as Func),
    ("quote", quote as Func),
    ("toJson", to_json_fn as Func),
    ("toJSON", to_json_fn as Func),
    ("default", default as Func),
    ("join", join as Func),
    ("replace", replace as Func),
    ("contains", contains as Func),
    ("hasPrefix", has_prefix as Func),
    ("hasSuffix", has_suffix as Func),
    ("trunc", trunc as Func),
];

/// Whether the text ends inside an action (`{{` with no `}}` after it, outside the action's
/// string literals and comments). `gtmpl`'s lexer never returns on some of them (`{{ .`,
/// `{{ .a.`, `{{ "}}" .` at the end of the text, found by `tests/fuzz_inputs.rs`): such a
/// template would spin a notifier thread forever, so it is refused before `gtmpl` sees it.
fn unclosed_action(text: &str) -> bool {
    let b = text.as_bytes();
    let mut i = 0;
    loop {
        // Outside an action: find the next "{{".
        let Some(open) = text[i..].find("{{") else {
            return false;
        };
        i += open + 2;
        // Inside: literals and comments may contain "}}".
        loop {
            match b.get(i) {
                None => return true,
                Some(b'}') if b.get(i + 1) == Some(&b'}') => {
                    i += 2;
                    break;
                }
                Some(&q @ (b'"' | b'`' | b'\'')) => {
                    i += 1;
                    while let Some(&c) = b.get(i) {
                        i += 1;
                        if c == b'\\' && q != b'`' {
                            i += 1;
                        } else if c == q {
                            break;
                        }
                    }
                }
                Some(b'/') if b.get(i + 1) == Some(&b'*') => match text[i + 2..].find("*/") {
                    Some(end) => i += 2 + end + 2,
                    None => return true,
                },
                Some(_) => i += 1,
            }
        }
    }
}

/// Renders one Go template string with `vars`.
pub fn render_str(
    name: &str,
    field: &str,
    text: &str,
    vars: &Value,
) -> Result<String, TemplateError> {
    if !text.contains("{{") {
        return Ok(text.to_string());
    }
    if unclosed_action(text) {
        return Err(TemplateError::Parse {
            name: name.into(),
            field: field.into(),
            message: "unclosed action (a \"{{\" without its \"}}\")".into(),
        });
    }
    let mut t = gtmpl::Template::default();
    t.add_funcs(FUNCS);
    t.parse(text).map_err(|e| TemplateError::Parse {
        name: name.into(),
        field: field.into(),
        message: e.to_string(),
    })?;
    t.render(&Context::from(vars.clone()))
        .map_err(|e| TemplateError::Render {
            name: name.into(),
            field: field.into(),
            message: e.to_string(),
        })
}

/// Renders every string of a template document (as JSON), keeping its shape.
pub fn render_doc(name: &str, doc: &Json, vars: &Value) -> Result<Json, TemplateError> {
    fn walk(name: &str, path: &str, v: &Json, vars: &Value) -> Result<Json, TemplateError> {
        Ok(match v {
            Json::String(s) => Json::String(render_str(name, path, s, vars)?),
            Json::Array(a) => Json::Array(
                a.iter()
                    .enumerate()
                    .map(|(i, x)| walk(name, &format!("{path}[{i}]"), x, vars))
                    .collect::<Result<_, _>>()?,
            ),
            Json::Object(o) => Json::Object(
                o.iter()
                    .map(|(k, x)| {
                        let p = if path.is_empty() {
                            k.clone()
                        } else {
                            format!("{path}.{k}")
                        };
                        Ok((k.clone(), walk(name, &p, x, vars)?))
                    })
                    .collect::<Result<_, TemplateError>>()?,
            ),
            other => other.clone(),
        })
    }
    walk(name, "", doc, vars)
}

/// The variables a template sees.
pub fn vars(rollout: &Json, recipient: &str, analysis_runs: &[Json]) -> Value {
    let mut m: HashMap<String, Value> = HashMap::new();
    m.insert("rollout".into(), to_value(rollout));
    m.insert("recipient".into(), Value::from(recipient));
    m.insert(
        "analysisRuns".into(),
        Value::Array(analysis_runs.iter().map(to_value).collect()),
    );
    Value::Map(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ro() -> Json {
        json!({"metadata": {"name": "web"},
               "spec": {"replicas": 5, "strategy": {"canary": {"steps": [{"setWeight": 20}, {"pause": {}}]}},
                        "template": {"spec": {"containers": [
                            {"name": "app", "image": "app:2"}, {"name": "side", "image": "side:1"}]}}},
               "status": {"currentStepIndex": 1}})
    }

    #[test]
    fn renders_fields_arithmetic_len_and_missing_keys() {
        let v = vars(&ro(), "#chan", &[]);
        let out = render_str(
            "t",
            "message",
            "{{.rollout.metadata.name}} step {{add .rollout.status.currentStepIndex 1}}/{{len .rollout.spec.strategy.canary.steps}} \
             {{if .rollout.spec.strategy.blueGreen}}BlueGreen{{end}}{{if .rollout.spec.strategy.canary}}Canary{{end}} to {{.recipient}}",
            &v,
        )
        .unwrap();
        assert_eq!(out, "web step 2/2 Canary to #chan");
    }

    #[test]
    fn range_with_index_as_the_catalog_writes_it() {
        let v = vars(&ro(), "", &[]);
        let out = render_str(
            "t",
            "x",
            "{{range $index, $c := .rollout.spec.template.spec.containers}}{{if not $index}}[{{end}}{{if $index}},{{end}}{{$c.name}}={{$c.image}}{{end}}]",
            &v,
        )
        .unwrap();
        assert_eq!(out, "[app=app:2,side=side:1]");
    }

    #[test]
    fn helpers() {
        let v = vars(&ro(), "", &[]);
        let r = |t: &str| render_str("t", "x", t, &v).unwrap();
        assert_eq!(r("{{sub 5 2}} {{mul 2 3}} {{div 7 2}}"), "3 6 3");
        assert_eq!(r("{{upper .rollout.metadata.name}}"), "WEB");
        assert_eq!(r("{{default \"none\" .rollout.spec.nothing}}"), "none");
        assert_eq!(r("{{toJson .rollout.metadata}}"), r#"{"name":"web"}"#);
        assert_eq!(r("{{trunc 2 \"hello\"}}"), "he");
    }

    #[test]
    fn errors_name_the_template_and_field() {
        let v = vars(&ro(), "", &[]);
        let e = render_str("bad", "slack.attachments", "{{if}", &v).unwrap_err();
        assert!(
            matches!(e, TemplateError::Parse { ref name, ref field, .. } if name == "bad" && field == "slack.attachments"),
            "{e}"
        );
        let e = render_str("bad", "message", "{{nosuchfunc 1}}", &v).unwrap_err();
        assert!(e.to_string().contains("bad"), "{e}");
    }

    #[test]
    fn render_doc_keeps_the_shape() {
        let v = vars(&ro(), "", &[]);
        let doc = json!({"message": "{{.rollout.metadata.name}}", "email": {"subject": "S {{.rollout.spec.replicas}}"}, "n": 3});
        assert_eq!(
            render_doc("t", &doc, &v).unwrap(),
            json!({"message": "web", "email": {"subject": "S 5"}, "n": 3})
        );
    }
}
