//! The minimal third-party CRDs shipped for tests (`tests/crds/`): valid YAML, apiextensions.k8s.io/v1
//! CustomResourceDefinitions with structural schemas, matching the keys the routers use.

use std::path::PathBuf;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps,
};
use rollouts::traffic::{ObjectKey, gatewayapi, istio};

fn crd(file: &str) -> CustomResourceDefinition {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/crds")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let value: serde_yaml::Value = serde_yaml::from_str(&text).expect("valid YAML");
    assert_eq!(
        value["apiVersion"].as_str(),
        Some("apiextensions.k8s.io/v1"),
        "{file}"
    );
    assert_eq!(
        value["kind"].as_str(),
        Some("CustomResourceDefinition"),
        "{file}"
    );
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{file}: not a CRD: {e}"))
}

/// Structural (as the API server requires of apiextensions.k8s.io/v1): every node has a type
/// unless it preserves unknown fields, and the root is an object.
fn check_structural(s: &JSONSchemaProps, path: &str) {
    let preserve = s.x_kubernetes_preserve_unknown_fields == Some(true);
    assert!(s.type_.is_some() || preserve, "{path}: no type");
    for (name, p) in s.properties.iter().flatten() {
        check_structural(p, &format!("{path}.{name}"));
    }
}

fn check(file: &str, key: &ObjectKey, served: &[&str]) {
    let crd = crd(file);
    let (group, version) = key.api_version.split_once('/').expect("group/version");
    assert_eq!(crd.spec.group, group, "{file}");
    assert_eq!(crd.spec.names.kind, key.kind, "{file}");
    assert_eq!(crd.spec.names.plural, key.plural, "{file}");
    assert_eq!(
        crd.metadata.name.as_deref(),
        Some(format!("{}.{group}", key.plural).as_str())
    );
    assert_eq!(crd.spec.scope, "Namespaced", "{file}");
    let names: Vec<&str> = crd.spec.versions.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, served, "{file}");
    assert!(names.contains(&version), "{file}: {version} not served");
    assert_eq!(
        crd.spec.versions.iter().filter(|v| v.storage).count(),
        1,
        "{file}: one storage version"
    );
    for v in &crd.spec.versions {
        assert!(v.served, "{file} {}", v.name);
        let schema = v
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref())
            .unwrap_or_else(|| panic!("{file} {}: no schema", v.name));
        assert_eq!(schema.type_.as_deref(), Some("object"), "{file} {}", v.name);
        check_structural(schema, &format!("{file} {}", v.name));
        let spec = &schema.properties.as_ref().expect("properties")["spec"];
        assert_eq!(
            spec.x_kubernetes_preserve_unknown_fields,
            Some(true),
            "{file}"
        );
    }
}

#[test]
fn virtual_service_crd() {
    check(
        "istio-virtualservice-crd.yaml",
        &istio::virtual_service_key("ns", "x"),
        &["v1alpha3", "v1beta1", "v1"],
    );
}

#[test]
fn destination_rule_crd() {
    check(
        "istio-destinationrule-crd.yaml",
        &istio::destination_rule_key("ns", "x"),
        &["v1alpha3", "v1beta1", "v1"],
    );
}

#[test]
fn http_route_crd() {
    check(
        "gateway-httproute-crd.yaml",
        &gatewayapi::http_route_key("ns", "x"),
        &["v1", "v1beta1"],
    );
}
