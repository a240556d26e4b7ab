//! Gateway API router: backendRef weights of HTTPRoutes configured like the upstream plugin.

mod traffic_support;

use pretty_assertions::assert_eq;
use rollouts::api::{SetHeaderRoute, SetMirrorRoute};
use rollouts::traffic::gatewayapi::http_route_key;
use rollouts::traffic::{
    Router, TrafficError, current_canary_weight, plan_traffic, referenced_objects, routers,
};
use serde_json::{Value, json};
use traffic_support::*;

fn gw_rollout(config: Value) -> rollouts::api::Rollout {
    rollout(json!({"plugins": {"argoproj-labs/gatewayAPI": config}}))
}

fn backend(name: &str, weight: Option<i64>) -> Value {
    let mut b = json!({"group": "", "kind": "Service", "name": name, "port": 80});
    if let Some(w) = weight {
        b["weight"] = json!(w);
    }
    b
}

fn http_route_obj(ns: &str, name: &str, rules: Value) -> Value {
    json!({
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": name, "namespace": ns, "resourceVersion": "11"},
        "spec": {"parentRefs": [{"name": "gw"}], "rules": rules},
    })
}

fn rules(stable: Option<i64>, canary: Option<i64>) -> Value {
    json!([
        {
            "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
            "backendRefs": [backend("stable", stable), backend("canary", canary)],
        },
        {"backendRefs": [backend("other", None)]},
    ])
}

#[test]
fn backend_ref_weights_0_20_100() {
    let ro = gw_rollout(json!({"httpRoute": "web", "namespace": "gw-ns"}));
    let key = http_route_key("gw-ns", "web");
    assert_eq!(referenced_objects(&ro), vec![key.clone()]);
    let objs = objects(vec![http_route_obj("gw-ns", "web", rules(None, None))]);
    for weight in [0, 20, 100] {
        let changes = plan_traffic(&intent(&ro, weight), &objs).expect("plan");
        assert_eq!(
            only_patch(&changes, &key),
            json!({"metadata": {"resourceVersion": "11"}, "spec": {"rules": rules(Some(100 - i64::from(weight)), Some(i64::from(weight)))}}),
            "weight {weight}"
        );
        let after = apply(&objs, &changes);
        assert_eq!(plan_traffic(&intent(&ro, weight), &after), Ok(vec![]));
        assert_eq!(current_canary_weight(&ro, &after), Some(weight));
    }
    assert_eq!(current_canary_weight(&ro, &objs), None, "unset weights");
}

#[test]
fn http_routes_list_default_namespace_and_max_weight() {
    let ro = rollout(json!({
        "maxTrafficWeight": 1000,
        "plugins": {"argoproj-labs/gatewayAPI": {
            "httpRoutes": [{"name": "a", "useHeaderRoutes": true}, {"name": "b"}],
            "configMap": "ignored",
        }},
    }));
    let objs = objects(vec![
        http_route_obj(NS, "a", rules(Some(1000), Some(0))),
        http_route_obj(NS, "b", rules(Some(1000), Some(0))),
    ]);
    let changes = plan_traffic(&intent(&ro, 300), &objs).expect("plan");
    let keys: Vec<_> = changes.iter().map(|c| c.key().clone()).collect();
    assert_eq!(keys, vec![http_route_key(NS, "a"), http_route_key(NS, "b")]);
    let after = apply(&objs, &changes);
    assert_eq!(
        after[&http_route_key(NS, "b")]["spec"]["rules"],
        rules(Some(700), Some(300))
    );
    assert_eq!(current_canary_weight(&ro, &after), Some(300));
}

#[test]
fn set_weight_verb_and_route_verbs() {
    let ro = gw_rollout(json!({"httpRoute": "web"}));
    let objs = objects(vec![http_route_obj(NS, "web", rules(Some(90), Some(10)))]);
    let rs = routers(&ro).expect("routers");
    assert_eq!(rs[0].name(), "argoproj-labs/gatewayAPI");
    let i = intent(&ro, 10);
    assert_eq!(rs[0].set_weight(&i, &objs), Ok(vec![]));
    assert_eq!(rs[0].update_hash(&i, &objs), Ok(vec![]));
    assert_eq!(rs[0].remove_managed_routes(&i, &objs), Ok(vec![]));
    assert_eq!(rs[0].verify_weight(&i, &objs), None);

    let h: SetHeaderRoute = serde_json::from_value(
        json!({"name": "h", "match": [{"headerName": "a", "headerValue": {"exact": "b"}}]}),
    )
    .expect("h");
    assert_eq!(
        rs[0]
            .set_header_route(&i, &h, &objs)
            .unwrap_err()
            .to_string(),
        "traffic router `argoproj-labs/gatewayAPI setHeaderRoute` is not supported by this controller"
    );
    let removal: SetHeaderRoute = serde_json::from_value(json!({"name": "h"})).expect("h");
    assert_eq!(rs[0].set_header_route(&i, &removal, &objs), Ok(vec![]));
    let m: SetMirrorRoute =
        serde_json::from_value(json!({"name": "m", "match": [{"path": {"exact": "/"}}]}))
            .expect("m");
    assert!(matches!(
        rs[0].set_mirror_route(&i, &m, &objs),
        Err(TrafficError::Unsupported { .. })
    ));
}

#[test]
fn errors_name_the_route() {
    let ro = gw_rollout(json!({"httpRoute": "web"}));
    let err = plan_traffic(&intent(&ro, 10), &objects(vec![])).unwrap_err();
    assert_eq!(err.to_string(), "HTTPRoute `ns/web` not found");

    let no_canary = http_route_obj(
        NS,
        "web",
        json!([{"backendRefs": [backend("stable", Some(100))]}]),
    );
    let err = plan_traffic(&intent(&ro, 10), &objects(vec![no_canary])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "HTTPRoute `ns/web` spec.rules[].backendRefs: no backendRef names Service `canary`"
    );

    // A rule with only the canary would get all-zero weights at weight 0: refused.
    let canary_only = http_route_obj(
        NS,
        "web",
        json!([
            {"backendRefs": [backend("stable", Some(100))]},
            {"backendRefs": [backend("canary", Some(5))]},
        ]),
    );
    let err = plan_traffic(&intent(&ro, 0), &objects(vec![canary_only])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "HTTPRoute `ns/web` spec.rules[1].backendRefs: refusing to write a rule whose weights are all zero"
    );

    for bad in [
        json!(null),
        json!({"spec": {"rules": {}}}),
        json!({"spec": {"rules": [1, {"backendRefs": "x"}]}}),
    ] {
        let objs = [(http_route_key(NS, "web"), bad)].into_iter().collect();
        assert!(plan_traffic(&intent(&ro, 10), &objs).is_err());
    }
}

#[test]
fn unsupported_configurations_are_named() {
    for (config, router) in [
        (
            json!({"grpcRoute": "g"}),
            "argoproj-labs/gatewayAPI grpcRoute",
        ),
        (
            json!({"httpRoute": "a", "tcpRoutes": [{"name": "t"}]}),
            "argoproj-labs/gatewayAPI tcpRoutes",
        ),
        (
            json!({"httpRouteSelector": {"matchLabels": {"a": "b"}}}),
            "argoproj-labs/gatewayAPI httpRouteSelector",
        ),
    ] {
        let ro = gw_rollout(config);
        assert_eq!(
            plan_traffic(&intent(&ro, 0), &objects(vec![])),
            Err(TrafficError::Unsupported {
                router: router.into()
            })
        );
        assert_eq!(referenced_objects(&ro), vec![]);
    }
    let ro = gw_rollout(json!({"namespace": "x"}));
    assert_eq!(
        plan_traffic(&intent(&ro, 0), &objects(vec![]))
            .unwrap_err()
            .to_string(),
        "spec.strategy.canary.trafficRouting.plugins[argoproj-labs/gatewayAPI]: httpRoute or httpRoutes is required"
    );
    let ro = gw_rollout(json!({"httpRoutes": "nope"}));
    assert!(matches!(
        plan_traffic(&intent(&ro, 0), &objects(vec![])),
        Err(TrafficError::Invalid { .. })
    ));
    let other = rollout(json!({"plugins": {"example.com/other": {}}}));
    assert_eq!(
        plan_traffic(&intent(&other, 0), &objects(vec![]))
            .unwrap_err()
            .to_string(),
        "traffic router `plugin example.com/other` is not supported by this controller"
    );
}
