//! JSON merge-patch diffs (RFC 7386): the smallest patch turning `old` into `new`.

use serde_json::{Map, Value};

/// The merge patch from `old` to `new`, or `None` when they are equal. Keys missing from `new`
/// become `null` (removal); nested objects are diffed recursively; anything else that differs
/// (including arrays) is replaced whole.
pub fn merge_diff(old: &Value, new: &Value) -> Option<Value> {
    match (old, new) {
        (Value::Object(o), Value::Object(n)) => {
            let mut patch = Map::new();
            for (k, nv) in n {
                match o.get(k) {
                    Some(ov) if ov == nv => {}
                    Some(ov @ Value::Object(_)) if nv.is_object() => {
                        if let Some(d) = merge_diff(ov, nv) {
                            patch.insert(k.clone(), d);
                        }
                    }
                    _ => {
                        patch.insert(k.clone(), nv.clone());
                    }
                }
            }
            for k in o.keys() {
                if !n.contains_key(k) {
                    patch.insert(k.clone(), Value::Null);
                }
            }
            (!patch.is_empty()).then_some(Value::Object(patch))
        }
        _ if old == new => None,
        _ => Some(new.clone()),
    }
}

/// Removes object members whose value is an empty string, recursively (as Go's `omitempty`
/// leaves them out).
pub fn strip_empty_strings(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, v| v.as_str() != Some(""));
            m.values_mut().for_each(strip_empty_strings);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_empty_strings),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn diffs() {
        assert_eq!(merge_diff(&json!({"a": 1}), &json!({"a": 1})), None);
        assert_eq!(
            merge_diff(&json!({"a": 1, "b": 2}), &json!({"a": 2})),
            Some(json!({"a": 2, "b": null}))
        );
        assert_eq!(
            merge_diff(
                &json!({"c": {"x": 1, "y": 2}}),
                &json!({"c": {"x": 1, "y": 3}})
            ),
            Some(json!({"c": {"y": 3}}))
        );
        assert_eq!(
            merge_diff(&json!({"l": [1, 2]}), &json!({"l": [1]})),
            Some(json!({"l": [1]}))
        );
        assert_eq!(
            merge_diff(&json!({}), &json!({"a": {"b": 1}})),
            Some(json!({"a": {"b": 1}}))
        );
    }

    #[test]
    fn empty_strings_are_omitted() {
        let mut v = json!({"a": "", "b": {"c": "", "d": "x"}, "l": [{"e": ""}]});
        strip_empty_strings(&mut v);
        assert_eq!(v, json!({"b": {"d": "x"}, "l": [{}]}));
    }

    /// Applying the diff to `old` gives `new` (RFC 7386 semantics).
    #[test]
    fn diff_applies() {
        fn apply(target: &mut Value, patch: &Value) {
            if let (Value::Object(t), Value::Object(p)) = (&mut *target, patch) {
                for (k, v) in p {
                    if v.is_null() {
                        t.remove(k);
                    } else if v.is_object() {
                        let slot = t.entry(k.clone()).or_insert_with(|| json!({}));
                        if !slot.is_object() {
                            *slot = json!({});
                        }
                        apply(slot, v);
                    } else {
                        t.insert(k.clone(), v.clone());
                    }
                }
            } else {
                *target = patch.clone();
            }
        }
        let old = json!({"a": 1, "b": {"c": [1], "d": "x"}, "e": true});
        let new = json!({"a": 2, "b": {"c": [1, 2]}, "f": {"g": null}});
        let mut t = old.clone();
        apply(&mut t, &merge_diff(&old, &new).unwrap());
        assert_eq!(t, json!({"a": 2, "b": {"c": [1, 2]}, "f": {}}));
    }
}
