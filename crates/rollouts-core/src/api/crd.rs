//! CustomResourceDefinitions for the five kinds, generated from the Rust types.
//!
//! `kube`'s derive produces the CRDs; [`structural`] then rewrites each schema so that it is a
//! structural schema any Kubernetes from 1.20 on accepts: no `nullable`, no `default: null`, no
//! `anyOf`/`oneOf`/`allOf`, no `$ref`, only formats Kubernetes knows, a `type` on every node
//! (except int-or-string and preserve-unknown-fields nodes).

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, CustomResourceSubresources,
};
use kube_core::crd::v1::CustomResourceExt;
use serde_json::{Map, Value, json};

use super::{AnalysisRun, AnalysisTemplate, ClusterAnalysisTemplate, Experiment, Rollout};

/// Every CRD with the file name it is written to (`rollout-crd.yaml`, ...), in a fixed order.
pub fn all_crds() -> Vec<(String, CustomResourceDefinition)> {
    vec![
        (
            "rollout-crd.yaml".to_string(),
            finish(Rollout::crd(), Subresources::Keep),
        ),
        (
            "analysis-template-crd.yaml".to_string(),
            finish(AnalysisTemplate::crd(), Subresources::None),
        ),
        (
            "cluster-analysis-template-crd.yaml".to_string(),
            finish(ClusterAnalysisTemplate::crd(), Subresources::None),
        ),
        (
            "analysis-run-crd.yaml".to_string(),
            finish(AnalysisRun::crd(), Subresources::None),
        ),
        (
            "experiment-crd.yaml".to_string(),
            finish(Experiment::crd(), Subresources::None),
        ),
    ]
}

/// One CRD as a YAML document (no leading `---`).
pub fn render_yaml(crd: &CustomResourceDefinition) -> String {
    serde_yaml::to_string(crd).expect("a CustomResourceDefinition serialises to YAML")
}

/// Every CRD as one multi-document YAML stream.
pub fn render_all_yaml() -> String {
    all_crds()
        .iter()
        .map(|(_, crd)| format!("---\n{}", render_yaml(crd)))
        .collect()
}

enum Subresources {
    /// Keep what the derive produced (Rollout: status + scale).
    Keep,
    /// No subresources, written as `subresources: {}` like upstream (AnalysisRun and
    /// Experiment carry a status but upstream has no status subresource).
    None,
}

fn finish(
    mut crd: CustomResourceDefinition,
    subresources: Subresources,
) -> CustomResourceDefinition {
    crd.spec.names.list_kind = Some(format!("{}List", crd.spec.names.kind));
    for version in &mut crd.spec.versions {
        if let Subresources::None = subresources {
            version.subresources = Some(CustomResourceSubresources::default());
        }
        if let Some(schema) = version
            .schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.take())
        {
            let mut value = serde_json::to_value(&schema).expect("schema serialises");
            add_root_properties(&mut value);
            structural(&mut value);
            let schema =
                serde_json::from_value(value).expect("rewritten schema is a JSONSchemaProps");
            version
                .schema
                .as_mut()
                .expect("checked above")
                .open_api_v3_schema = Some(schema);
        }
    }
    crd
}

/// Upstream's root schema lists `apiVersion`, `kind` and `metadata`; the derive leaves them out.
fn add_root_properties(root: &mut Value) {
    let Some(props) = root.get_mut("properties").and_then(Value::as_object_mut) else {
        return;
    };
    props.insert(
        "apiVersion".into(),
        json!({
            "description": "APIVersion defines the versioned schema of this representation of an object.",
            "type": "string"
        }),
    );
    props.insert(
        "kind".into(),
        json!({
            "description": "Kind is a string value representing the REST resource this object represents.",
            "type": "string"
        }),
    );
    props.insert("metadata".into(), json!({ "type": "object" }));
}

/// Formats that Kubernetes validates (others are dropped rather than risk a rejection or a
/// warning).
const KNOWN_FORMATS: &[&str] = &[
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

/// Keywords a structural schema must not contain (or that have no meaning inside a CRD).
const DROPPED_KEYWORDS: &[&str] = &[
    "$schema",
    "$ref",
    "$defs",
    "definitions",
    "title",
    "nullable",
    "x-kubernetes-validations",
    "uniqueItems",
    "examples",
    "example",
    "readOnly",
    "writeOnly",
];

/// Rewrite a schema node (recursively) into the structural form described in the module docs.
pub fn structural(node: &mut Value) {
    let Some(obj) = node.as_object_mut() else {
        return;
    };

    // `anyOf: [X, {null}]` (an Option<T> without a type of its own): becomes X.
    for key in ["anyOf", "oneOf", "allOf"] {
        if let Some(Value::Array(variants)) = obj.remove(key) {
            let kept: Vec<Value> = variants
                .into_iter()
                .filter(|v| !is_null_schema(v))
                .collect();
            if key == "anyOf" && is_int_or_string_any_of(&kept) {
                obj.insert("x-kubernetes-int-or-string".into(), Value::Bool(true));
                continue;
            }
            for variant in kept {
                if let Value::Object(v) = variant {
                    merge_into(obj, v);
                }
            }
        }
    }

    for key in DROPPED_KEYWORDS {
        obj.remove(*key);
    }
    // Doc comments are hard-wrapped; keep paragraphs, join their lines.
    if let Some(Value::String(d)) = obj.get_mut("description") {
        *d = unwrap_lines(d);
    }
    if obj.get("default").is_some_and(Value::is_null) {
        obj.remove("default");
    }
    if let Some(Value::String(f)) = obj.get("format")
        && !KNOWN_FORMATS.contains(&f.as_str())
    {
        obj.remove("format");
    }
    // A list type given as `["string", "null"]` becomes the non-null type.
    if let Some(Value::Array(types)) = obj.get("type") {
        let non_null: Vec<Value> = types.iter().filter(|t| *t != "null").cloned().collect();
        if let [single] = non_null.as_slice() {
            obj.insert("type".into(), single.clone());
        }
    }
    if obj.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true)) {
        obj.remove("type");
    }
    // `additionalProperties: true|false` is not structural; `true` means free-form.
    match obj.get("additionalProperties") {
        Some(Value::Bool(true)) => {
            obj.remove("additionalProperties");
            obj.insert(
                "x-kubernetes-preserve-unknown-fields".into(),
                Value::Bool(true),
            );
        }
        Some(Value::Bool(false)) => {
            obj.remove("additionalProperties");
        }
        _ => {}
    }
    // An empty `required` list is noise.
    if obj
        .get("required")
        .and_then(Value::as_array)
        .is_some_and(Vec::is_empty)
    {
        obj.remove("required");
    }
    if !obj.contains_key("type")
        && !obj.contains_key("x-kubernetes-int-or-string")
        && (obj.contains_key("properties") || obj.contains_key("additionalProperties"))
    {
        obj.insert("type".into(), Value::String("object".into()));
    }
    if !obj.contains_key("type") && obj.contains_key("items") {
        obj.insert("type".into(), Value::String("array".into()));
    }

    if let Some(Value::Object(props)) = obj.get_mut("properties") {
        for (_, prop) in props.iter_mut() {
            structural(prop);
        }
    }
    if let Some(items) = obj.get_mut("items") {
        structural(items);
    }
    if let Some(additional @ Value::Object(_)) = obj.get_mut("additionalProperties") {
        structural(additional);
    }
}

fn unwrap_lines(text: &str) -> String {
    text.split("\n\n")
        .map(|para| para.lines().map(str::trim).collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n\n")
}

fn is_null_schema(v: &Value) -> bool {
    match v {
        Value::Object(o) => {
            o.get("type") == Some(&Value::String("null".into()))
                || o.get("enum") == Some(&json!([null]))
        }
        _ => false,
    }
}

/// `anyOf: [{type: integer}, {type: string}]` is how int-or-string is sometimes spelled.
fn is_int_or_string_any_of(variants: &[Value]) -> bool {
    let mut types: Vec<&str> = variants
        .iter()
        .filter_map(|v| v.get("type").and_then(Value::as_str))
        .collect();
    types.sort_unstable();
    variants.len() == 2 && types == ["integer", "string"]
}

/// Merge a subschema into its parent; the parent's own keys (e.g. `description`) win.
fn merge_into(parent: &mut Map<String, Value>, child: Map<String, Value>) {
    for (k, v) in child {
        match (parent.get_mut(&k), v) {
            (Some(Value::Object(p)), Value::Object(c)) if k == "properties" => {
                for (pk, pv) in c {
                    p.entry(pk).or_insert(pv);
                }
            }
            (Some(_), _) => {}
            (None, v) => {
                parent.insert(k, v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structural_rewrites_option_patterns() {
        let mut schema = json!({
            "type": "object",
            "properties": {
                "a": {"anyOf": [{"x-kubernetes-int-or-string": true}, {"enum": [null], "nullable": true}],
                      "description": "kept"},
                "b": {"type": "string", "nullable": true, "default": null, "format": "uint32"},
                "c": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
                "d": {"properties": {"e": {"type": ["string", "null"]}}},
                "f": {"type": "object", "additionalProperties": true}
            }
        });
        structural(&mut schema);
        assert_eq!(
            schema["properties"]["a"],
            json!({"x-kubernetes-int-or-string": true, "description": "kept"})
        );
        assert_eq!(schema["properties"]["b"], json!({"type": "string"}));
        assert_eq!(
            schema["properties"]["c"],
            json!({"x-kubernetes-int-or-string": true})
        );
        assert_eq!(schema["properties"]["d"]["type"], json!("object"));
        assert_eq!(
            schema["properties"]["d"]["properties"]["e"],
            json!({"type": "string"})
        );
        assert_eq!(
            schema["properties"]["f"],
            json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true})
        );
    }

    #[test]
    fn subresources_follow_upstream() {
        for (name, crd) in all_crds() {
            let sub = crd.spec.versions[0]
                .subresources
                .clone()
                .expect("subresources set");
            if name == "rollout-crd.yaml" {
                assert!(sub.status.is_some());
                let scale = sub.scale.expect("scale subresource");
                assert_eq!(scale.spec_replicas_path, ".spec.replicas");
                assert_eq!(scale.status_replicas_path, ".status.HPAReplicas");
                assert_eq!(
                    scale.label_selector_path.as_deref(),
                    Some(".status.selector")
                );
            } else {
                assert!(sub.status.is_none() && sub.scale.is_none(), "{name}");
            }
        }
    }

    #[test]
    fn render_all_is_one_stream_of_five_documents() {
        let all = render_all_yaml();
        assert_eq!(all.matches("---\n").count(), 5);
        assert_eq!(all.matches("kind: CustomResourceDefinition").count(), 5);
    }
}
