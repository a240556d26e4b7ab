//! JSON helpers for router objects: RFC 7386 merge patches (apply and diff) and tolerant
//! accessors. Everything here is total: no input makes it panic.

use serde_json::{Map, Value};

/// Applies a JSON merge patch (RFC 7386) to `target`.
pub fn apply_merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(map) = target {
        for (k, v) in patch {
            if v.is_null() {
                map.remove(k);
            } else {
                apply_merge_patch(map.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

/// The merge patch that turns `from` into `to`, `None` when they are equal. Objects are diffed
/// key by key (removed keys become `null`); anything else, arrays included, is replaced whole.
pub fn diff_merge_patch(from: &Value, to: &Value) -> Option<Value> {
    if from == to {
        return None;
    }
    match (from, to) {
        (Value::Object(a), Value::Object(b)) => {
            let mut out = Map::new();
            for k in a.keys() {
                if !b.contains_key(k) {
                    out.insert(k.clone(), Value::Null);
                }
            }
            for (k, vb) in b {
                match a.get(k) {
                    Some(va) => {
                        if let Some(d) = diff_merge_patch(va, vb) {
                            out.insert(k.clone(), d);
                        }
                    }
                    None => {
                        out.insert(k.clone(), vb.clone());
                    }
                }
            }
            (!out.is_empty()).then_some(Value::Object(out))
        }
        _ => Some(to.clone()),
    }
}

/// The value at `path` (object keys), if every step exists.
pub fn get<'v>(v: &'v Value, path: &[&str]) -> Option<&'v Value> {
    path.iter().try_fold(v, |cur, k| cur.get(*k))
}

/// The string at `path`, if it is one.
pub fn get_str<'v>(v: &'v Value, path: &[&str]) -> Option<&'v str> {
    get(v, path).and_then(Value::as_str)
}

/// A number as an integer (floats are rounded; out-of-range values are `None`).
pub fn as_int(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| {
        v.as_f64()
            .filter(|f| f.is_finite() && f.abs() < 9.0e15)
            .map(|f| f.round() as i64)
    })
}

/// `metadata.resourceVersion` of an object.
pub fn resource_version(obj: &Value) -> Option<&str> {
    get_str(obj, &["metadata", "resourceVersion"])
}

/// A mutable object map at `path` inside `v`, creating empty objects on the way. `None` when
/// something on the way exists but is not an object.
pub fn object_at<'v>(v: &'v mut Value, path: &[&str]) -> Option<&'v mut Map<String, Value>> {
    let mut cur = v;
    for k in path {
        let map = cur.as_object_mut()?;
        cur = map
            .entry((*k).to_string())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    cur.as_object_mut()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn diff_then_apply_round_trips() {
        let cases = [
            (
                json!({"a": 1, "b": {"c": [1, 2]}}),
                json!({"a": 1, "b": {"c": [2]}}),
            ),
            (json!({"a": 1, "b": 2}), json!({"a": 1})),
            (json!({"a": {"x": 1}}), json!({"a": 3})),
            (json!({"a": 3}), json!({"a": {"x": 1}})),
            (json!({}), json!({"m": {"n": "o"}})),
        ];
        for (from, to) in cases {
            let patch = diff_merge_patch(&from, &to).expect("differs");
            let mut got = from.clone();
            apply_merge_patch(&mut got, &patch);
            assert_eq!(got, to, "patch {patch}");
        }
        assert_eq!(
            diff_merge_patch(&json!({"a": [1]}), &json!({"a": [1]})),
            None
        );
    }

    #[test]
    fn diff_is_minimal() {
        let from = json!({"metadata": {"name": "x", "resourceVersion": "1"}, "spec": {"http": [1], "hosts": ["h"]}});
        let to = json!({"metadata": {"name": "x", "resourceVersion": "1"}, "spec": {"http": [2], "hosts": ["h"]}});
        assert_eq!(
            diff_merge_patch(&from, &to),
            Some(json!({"spec": {"http": [2]}}))
        );
    }

    #[test]
    fn accessors_tolerate_anything() {
        let v = json!({"a": {"b": "c", "n": 2.6}});
        assert_eq!(get_str(&v, &["a", "b"]), Some("c"));
        assert_eq!(get_str(&v, &["a", "b", "c"]), None);
        assert_eq!(as_int(&v["a"]["n"]), Some(3));
        assert_eq!(as_int(&json!(1e300)), None);
        let mut s = json!("str");
        assert!(object_at(&mut s, &["x"]).is_none());
        let mut o = json!({});
        object_at(&mut o, &["m", "a"])
            .expect("created")
            .insert("k".into(), json!(1));
        assert_eq!(o, json!({"m": {"a": {"k": 1}}}));
    }
}
