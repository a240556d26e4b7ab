//! NGINX router: the canary Ingress created, updated and deleted, with exact objects.

mod traffic_support;

use pretty_assertions::assert_eq;
use rollouts::api::SetHeaderRoute;
use rollouts::traffic::nginx::{canary_ingress_name, ingress_key};
use rollouts::traffic::{
    ObjectChange, Router, TrafficError, current_canary_weight, plan_traffic, referenced_objects,
    routers,
};
use serde_json::{Value, json};
use traffic_support::*;

fn stable_ingress(name: &str) -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {
            "name": name, "namespace": NS, "resourceVersion": "3",
            "annotations": {"kubernetes.io/ingress.class": "nginx", "unrelated": "x"},
        },
        "spec": {
            "ingressClassName": "nginx",
            "tls": [{"hosts": ["a.com"], "secretName": "cert"}],
            "rules": [
                {"host": "a.com", "http": {"paths": [
                    {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "stable", "port": {"number": 80}}}},
                    {"path": "/other", "pathType": "Exact", "backend": {"service": {"name": "unrelated", "port": {"name": "http"}}}},
                ]}},
                {"host": "b.com", "http": {"paths": [
                    {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "unrelated", "port": {"number": 80}}}},
                ]}},
                {"host": "c.com"},
            ],
        },
    })
}

fn nginx_rollout(extra: Value) -> rollouts::api::Rollout {
    let mut nginx = json!({"stableIngress": "web"});
    if let (Some(n), Some(e)) = (nginx.as_object_mut(), extra.as_object()) {
        n.extend(e.clone());
    }
    rollout(json!({"nginx": nginx}))
}

fn canary_rules() -> Value {
    json!([{"host": "a.com", "http": {"paths": [
        {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "canary", "port": {"number": 80}}}},
        {"path": "/other", "pathType": "Exact", "backend": {"service": {"name": "unrelated", "port": {"name": "http"}}}},
    ]}}])
}

fn owner() -> Value {
    json!([{
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": "ro", "uid": "uid-1",
        "controller": true, "blockOwnerDeletion": true,
    }])
}

#[test]
fn canary_ingress_created_with_prefix_and_extra_annotations() {
    let ro = nginx_rollout(json!({
        "annotationPrefix": "my.prefix",
        "additionalIngressAnnotations": {"canary-by-header": "X-Canary", "my.prefix/already": "v"},
        "canaryIngressAnnotations": {"example.com/custom": "c"},
    }));
    let objs = objects(vec![stable_ingress("web")]);
    let key = ingress_key(NS, "ro-web-canary");
    assert_eq!(
        referenced_objects(&ro),
        vec![ingress_key(NS, "web"), key.clone()]
    );
    let changes = plan_traffic(&intent(&ro, 20), &objs).expect("plan");
    assert_eq!(
        changes,
        vec![ObjectChange::Create {
            key: key.clone(),
            object: json!({
                "apiVersion": "networking.k8s.io/v1",
                "kind": "Ingress",
                "metadata": {
                    "name": "ro-web-canary",
                    "namespace": NS,
                    "annotations": {
                        "kubernetes.io/ingress.class": "nginx",
                        "my.prefix/canary": "true",
                        "my.prefix/canary-weight": "20",
                        "my.prefix/canary-by-header": "X-Canary",
                        "my.prefix/already": "v",
                        "example.com/custom": "c",
                    },
                    "ownerReferences": owner(),
                },
                "spec": {
                    "ingressClassName": "nginx",
                    "tls": [{"hosts": ["a.com"], "secretName": "cert"}],
                    "rules": canary_rules(),
                },
            }),
        }]
    );
    let after = apply(&objs, &changes);
    assert_eq!(plan_traffic(&intent(&ro, 20), &after), Ok(vec![]));
    assert_eq!(current_canary_weight(&ro, &objs), Some(0));
    assert_eq!(current_canary_weight(&ro, &after), Some(20));
}

#[test]
fn canary_ingress_weight_updated_with_minimal_patch() {
    let ro = nginx_rollout(json!({}));
    let objs = objects(vec![stable_ingress("web")]);
    let created = apply(
        &objs,
        &plan_traffic(&intent(&ro, 10), &objs).expect("create"),
    );
    let key = ingress_key(NS, "ro-web-canary");
    for (weight, want) in [
        (10, None),
        (50, Some("50")),
        (100, Some("100")),
        (0, Some("0")),
    ] {
        let changes = plan_traffic(&intent(&ro, weight), &created).expect("plan");
        match want {
            None => assert_eq!(changes, vec![]),
            Some(w) => assert_eq!(
                only_patch(&changes, &key),
                json!({"metadata": {
                    "resourceVersion": "1",
                    "annotations": {"nginx.ingress.kubernetes.io/canary-weight": w},
                }})
            ),
        }
        let after = apply(&created, &changes);
        assert_eq!(plan_traffic(&intent(&ro, weight), &after), Ok(vec![]));
    }

    // Stable Ingress edits (rules, TLS) reach the canary; foreign annotations are dropped.
    let mut edited = created.clone();
    let stable = edited.get_mut(&ingress_key(NS, "web")).expect("stable");
    stable["spec"]["tls"] = json!(null);
    let canary = edited.get_mut(&key).expect("canary");
    canary["metadata"]["annotations"]["someone/else"] = json!("x");
    canary["metadata"]["labels"] = json!({"kept": "yes"});
    let changes = plan_traffic(&intent(&ro, 10), &edited).expect("plan");
    assert_eq!(
        only_patch(&changes, &key),
        json!({
            "metadata": {"resourceVersion": "1", "annotations": {"someone/else": null}},
            "spec": {"tls": null},
        })
    );
}

#[test]
fn canary_ingress_deleted_at_the_end() {
    let ro = nginx_rollout(json!({}));
    let objs = objects(vec![stable_ingress("web")]);
    let created = apply(
        &objs,
        &plan_traffic(&intent(&ro, 30), &objs).expect("create"),
    );
    let key = ingress_key(NS, "ro-web-canary");

    let mut end = intent(&ro, 0);
    end.remove_managed_routes = true;
    let changes = plan_traffic(&end, &created).expect("end");
    assert_eq!(changes, vec![ObjectChange::Delete { key: key.clone() }]);
    let after = apply(&created, &changes);
    assert_eq!(plan_traffic(&end, &after), Ok(vec![]));
    assert_eq!(current_canary_weight(&ro, &after), Some(0));

    // Promote-full keeps the canary Ingress at its weight while managed routes go.
    let mut full = intent(&ro, 30);
    full.remove_managed_routes = true;
    assert_eq!(plan_traffic(&full, &created), Ok(vec![]));

    // Not ours: never deleted.
    let mut foreign = created.clone();
    foreign.get_mut(&key).expect("canary")["metadata"]["ownerReferences"][0]["uid"] =
        json!("other");
    assert_eq!(plan_traffic(&end, &foreign), Ok(vec![]));
    let err = plan_traffic(&intent(&ro, 40), &foreign).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Ingress `ns/ro-web-canary`: is controlled by another object; refusing to change it"
    );
}

#[test]
fn stable_ingresses_plural_and_weight_total() {
    let ro = rollout(json!({
        "maxTrafficWeight": 1000,
        "nginx": {"stableIngresses": ["web", "api"]},
    }));
    let objs = objects(vec![stable_ingress("web"), stable_ingress("api")]);
    let mut i = intent(&ro, 250);
    i.max_weight = 1000;
    let changes = plan_traffic(&i, &objs).expect("plan");
    let created: Vec<(String, Value)> = changes
        .iter()
        .map(|c| match c {
            ObjectChange::Create { key, object } => {
                (key.name.clone(), object["metadata"]["annotations"].clone())
            }
            other => panic!("{other:?}"),
        })
        .collect();
    let annotations = json!({
        "kubernetes.io/ingress.class": "nginx",
        "nginx.ingress.kubernetes.io/canary": "true",
        "nginx.ingress.kubernetes.io/canary-weight": "250",
        "nginx.ingress.kubernetes.io/canary-weight-total": "1000",
    });
    assert_eq!(
        created,
        vec![
            ("ro-web-canary".to_string(), annotations.clone()),
            ("ro-api-canary".to_string(), annotations),
        ]
    );
    let after = apply(&objs, &changes);
    assert_eq!(current_canary_weight(&ro, &after), Some(250));
}

#[test]
fn errors_name_the_ingress() {
    let ro = nginx_rollout(json!({}));
    let err = plan_traffic(&intent(&ro, 10), &objects(vec![])).unwrap_err();
    assert_eq!(
        err,
        TrafficError::MissingObject {
            key: ingress_key(NS, "web")
        }
    );
    assert_eq!(err.to_string(), "Ingress `ns/web` not found");
    assert_eq!(err.reason(), "IngressNotFound");

    let mut no_rules = stable_ingress("web");
    no_rules["spec"]["rules"] = json!([{"host": "x", "http": {"paths": [
        {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "nope", "port": {"number": 1}}}},
    ]}}]);
    let err = plan_traffic(&intent(&ro, 10), &objects(vec![no_rules])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Ingress `ns/web`: has no rules using Service `stable` as backend"
    );

    for bad in [
        json!("x"),
        json!({"spec": {"rules": "x"}}),
        json!({"spec": 3}),
    ] {
        let objs = [(ingress_key(NS, "web"), bad)].into_iter().collect();
        assert!(plan_traffic(&intent(&ro, 10), &objs).is_err());
    }

    let unnamed = rollout(json!({"nginx": {}}));
    assert!(matches!(
        plan_traffic(&intent(&unnamed, 0), &objects(vec![])),
        Err(TrafficError::Invalid { .. })
    ));
}

#[test]
fn header_and_mirror_routes_are_no_ops() {
    let ro = nginx_rollout(json!({}));
    let objs = objects(vec![stable_ingress("web")]);
    let rs = routers(&ro).expect("routers");
    let h: SetHeaderRoute = serde_json::from_value(
        json!({"name": "h", "match": [{"headerName": "a", "headerValue": {"exact": "b"}}]}),
    )
    .expect("h");
    let i = intent(&ro, 10);
    assert_eq!(rs[0].set_header_route(&i, &h, &objs), Ok(vec![]));
    assert_eq!(rs[0].remove_managed_routes(&i, &objs), Ok(vec![]));
    assert_eq!(rs[0].update_hash(&i, &objs), Ok(vec![]));
    assert_eq!(rs[0].verify_weight(&i, &objs), None);
}

#[test]
fn canary_ingress_name_is_truncated() {
    assert_eq!(canary_ingress_name("ro", "web"), "ro-web-canary");
    let long = canary_ingress_name(&"r".repeat(200), &"s".repeat(100));
    assert_eq!(long.len(), 253);
    assert!(long.ends_with("s-canary"));
    assert_eq!(long[..201], format!("{}-", "r".repeat(200)));
}
