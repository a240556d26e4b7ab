//! Istio router: every verb, with the exact objects expected.

mod traffic_support;

use pretty_assertions::assert_eq;
use rollouts::api::{SetHeaderRoute, SetMirrorRoute};
use rollouts::traffic::{
    ObjectChange, Router, TrafficError, current_canary_weight, istio, plan_traffic,
    referenced_objects, routers,
};
use serde_json::{Value, json};
use traffic_support::*;

const HASH: &str = "rollouts-pod-template-hash";
const MANAGED_BY: &str = "argo-rollouts.argoproj.io/managed-by-rollouts";

fn vs_key(name: &str) -> rollouts::traffic::ObjectKey {
    istio::virtual_service_key(NS, name)
}

fn dr_key() -> rollouts::traffic::ObjectKey {
    istio::destination_rule_key(NS, "dr")
}

fn host_rollout() -> rollouts::api::Rollout {
    rollout(json!({"istio": {"virtualService": {"name": "vs", "routes": ["primary"]}}}))
}

fn primary(stable: i64, canary: i64) -> Value {
    http_route(
        "primary",
        vec![dest("stable", stable), dest("canary", canary)],
    )
}

fn header_route(name: &str, matches: Value) -> SetHeaderRoute {
    serde_json::from_value(json!({"name": name, "match": matches})).expect("header route")
}

fn mirror_route(spec: Value) -> SetMirrorRoute {
    serde_json::from_value(spec).expect("mirror route")
}

/// Plans, checks the result is stable (planning again after applying it changes nothing) and
/// returns the changes with the objects after them.
fn plan_stable(
    intent: &rollouts::traffic::TrafficIntent<'_>,
    objs: &rollouts::traffic::Objects,
) -> (Vec<ObjectChange>, rollouts::traffic::Objects) {
    let changes = plan_traffic(intent, objs).expect("plan");
    let after = apply(objs, &changes);
    assert_eq!(
        plan_traffic(intent, &after).expect("replan"),
        vec![],
        "second plan must be empty"
    );
    (changes, after)
}

#[test]
fn host_split_weights_0_20_100() {
    let ro = host_rollout();
    let objs = objects(vec![virtual_service(
        "vs",
        json!({"hosts": ["h"], "http": [primary(100, 0)]}),
    )]);
    let cases: [(i32, Option<Value>); 3] = [
        (0, None),
        (20, Some(json!([primary(80, 20)]))),
        (100, Some(json!([primary(0, 100)]))),
    ];
    for (weight, want) in cases {
        let (changes, after) = plan_stable(&intent(&ro, weight), &objs);
        match want {
            None => assert_eq!(changes, vec![], "weight {weight}"),
            Some(http) => assert_eq!(
                only_patch(&changes, &vs_key("vs")),
                json!({"metadata": {"resourceVersion": "7"}, "spec": {"http": http}}),
                "weight {weight}"
            ),
        }
        assert_eq!(current_canary_weight(&ro, &after), Some(weight));
    }
}

#[test]
fn set_weight_verb_alone() {
    let ro = host_rollout();
    let objs = objects(vec![virtual_service(
        "vs",
        json!({"http": [primary(100, 0)]}),
    )]);
    let rs = routers(&ro).expect("routers");
    assert_eq!(rs.len(), 1);
    assert_eq!(rs[0].name(), "istio");
    let changes = rs[0]
        .set_weight(&intent(&ro, 30), &objs)
        .expect("set weight");
    assert_eq!(
        only_patch(&changes, &vs_key("vs")),
        json!({"metadata": {"resourceVersion": "7"}, "spec": {"http": [primary(70, 30)]}})
    );
    assert_eq!(rs[0].verify_weight(&intent(&ro, 30), &objs), None);
    assert_eq!(rs[0].update_hash(&intent(&ro, 30), &objs), Ok(vec![]));
}

#[test]
fn already_at_weight_means_no_changes() {
    let ro = host_rollout();
    let objs = objects(vec![virtual_service(
        "vs",
        json!({"http": [primary(60, 40)]}),
    )]);
    assert_eq!(plan_traffic(&intent(&ro, 40), &objs), Ok(vec![]));
}

#[test]
fn weights_are_rescaled_from_max_traffic_weight() {
    let ro = rollout(json!({
        "maxTrafficWeight": 1000,
        "istio": {"virtualService": {"name": "vs", "routes": ["primary"]}},
    }));
    let objs = objects(vec![virtual_service(
        "vs",
        json!({"http": [primary(100, 0)]}),
    )]);
    let mut i = intent(&ro, 250);
    assert_eq!(i.max_weight, 1000);
    i.weight = 250;
    let (changes, after) = plan_stable(&i, &objs);
    assert_eq!(
        only_patch(&changes, &vs_key("vs"))["spec"]["http"],
        json!([primary(75, 25)])
    );
    assert_eq!(current_canary_weight(&ro, &after), Some(250));
}

fn subset_rollout(extra: Value) -> rollouts::api::Rollout {
    let mut dr = json!({"name": "dr", "canarySubsetName": "canary", "stableSubsetName": "stable"});
    if let (Some(d), Some(e)) = (dr.as_object_mut(), extra.as_object()) {
        d.extend(e.clone());
    }
    rollout(json!({"istio": {
        "virtualService": {"name": "vs", "routes": ["primary"]},
        "destinationRule": dr,
    }}))
}

fn subset_primary(stable: i64, canary: i64) -> Value {
    http_route(
        "primary",
        vec![
            subset_dest("svc", "stable", stable),
            subset_dest("svc", "canary", canary),
        ],
    )
}

fn dr_object(canary_labels: Value, stable_labels: Value) -> Value {
    destination_rule(
        "dr",
        json!({"host": "svc", "subsets": [
            {"name": "stable", "labels": stable_labels},
            {"name": "canary", "labels": canary_labels, "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}}},
            {"name": "other", "labels": {"version": "v0"}},
        ]}),
    )
}

#[test]
fn subset_split_weights_0_20_100() {
    let ro = subset_rollout(json!({}));
    let objs = objects(vec![
        virtual_service("vs", json!({"http": [subset_primary(100, 0)]})),
        dr_object(json!({"app": "a"}), json!({"app": "a"})),
    ]);
    let dr_patch = json!({
        "metadata": {"resourceVersion": "5", "annotations": {MANAGED_BY: "ro"}},
        "spec": {"subsets": [
            {"name": "stable", "labels": {"app": "a", HASH: "s1"}},
            {"name": "canary", "labels": {"app": "a", HASH: "c1"}, "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}}},
            {"name": "other", "labels": {"version": "v0"}},
        ]},
    });
    for (weight, http) in [
        (0, None),
        (20, Some(json!([subset_primary(80, 20)]))),
        (100, Some(json!([subset_primary(0, 100)]))),
    ] {
        let (changes, after) = plan_stable(&intent(&ro, weight), &objs);
        let mut want = vec![ObjectChange::Patch {
            key: dr_key(),
            patch: dr_patch.clone(),
        }];
        if let Some(http) = http {
            want.push(ObjectChange::Patch {
                key: vs_key("vs"),
                patch: json!({"metadata": {"resourceVersion": "7"}, "spec": {"http": http}}),
            });
        }
        // The DestinationRule's hashes go first: weights move only to labelled subsets.
        assert_eq!(changes, want, "weight {weight}");
        assert_eq!(current_canary_weight(&ro, &after), Some(weight));
    }
}

#[test]
fn update_hash_sets_and_removes_labels() {
    let ro = subset_rollout(json!({}));
    let objs = objects(vec![
        virtual_service("vs", json!({"http": [subset_primary(100, 0)]})),
        dr_object(
            json!({"app": "a", HASH: "old"}),
            json!({"app": "a", HASH: "s1"}),
        ),
    ]);
    let rs = routers(&ro).expect("routers");
    let mut i = intent(&ro, 0);
    i.canary_hash = None;
    let changes = rs[0].update_hash(&i, &objs).expect("update hash");
    let patch = only_patch(&changes, &dr_key());
    assert_eq!(
        patch["spec"]["subsets"][1]["labels"],
        json!({"app": "a"}),
        "canary hash label removed"
    );
    assert_eq!(
        patch["spec"]["subsets"][0]["labels"],
        json!({"app": "a", HASH: "s1"})
    );
    assert_eq!(patch["metadata"]["annotations"], json!({MANAGED_BY: "ro"}));
}

#[test]
fn destination_rule_problems_are_reported() {
    let ro = subset_rollout(json!({}));
    let vs = virtual_service("vs", json!({"http": [subset_primary(100, 0)]}));
    let missing = plan_traffic(&intent(&ro, 10), &objects(vec![vs.clone()])).unwrap_err();
    assert_eq!(missing, TrafficError::MissingObject { key: dr_key() });
    assert_eq!(missing.to_string(), "DestinationRule `ns/dr` not found");
    assert_eq!(missing.reason(), "DestinationRuleNotFound");

    let no_canary = destination_rule(
        "dr",
        json!({"host": "svc", "subsets": [{"name": "stable"}]}),
    );
    let err = plan_traffic(&intent(&ro, 10), &objects(vec![vs, no_canary])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "DestinationRule `ns/dr` spec.subsets: no subset named `canary`"
    );
}

#[test]
fn additional_subsets_keep_their_weight() {
    let ro = subset_rollout(json!({"additionalSubsetNames": ["exp"]}));
    let objs = objects(vec![
        virtual_service(
            "vs",
            json!({"http": [http_route("primary", vec![
                subset_dest("svc", "stable", 70),
                subset_dest("svc", "canary", 0),
                subset_dest("svc", "exp", 30),
            ])]}),
        ),
        dr_object(json!({}), json!({})),
    ]);
    let (changes, _) = plan_stable(&intent(&ro, 20), &objs);
    let ObjectChange::Patch { patch, .. } = &changes[1] else {
        panic!("{changes:#?}")
    };
    assert_eq!(
        patch["spec"]["http"][0]["route"],
        json!([
            subset_dest("svc", "stable", 50),
            subset_dest("svc", "canary", 20),
            subset_dest("svc", "exp", 30),
        ])
    );
    let err = plan_traffic(&intent(&ro, 80), &objs).unwrap_err();
    assert!(
        err.to_string().contains("additional subsets take 30%"),
        "{err}"
    );
}

#[test]
fn multiple_routes_are_all_weighted_and_others_kept() {
    let ro = rollout(
        json!({"istio": {"virtualService": {"name": "vs", "routes": ["primary", "secondary"]}}}),
    );
    let other = http_route("other", vec![dest("legacy", 100)]);
    let objs = objects(vec![virtual_service(
        "vs",
        json!({"http": [
            primary(100, 0),
            http_route("secondary", vec![dest("canary.ns.svc.cluster.local", 0), dest("stable.ns.svc.cluster.local", 100)]),
            other.clone(),
        ]}),
    )]);
    let (changes, _) = plan_stable(&intent(&ro, 20), &objs);
    assert_eq!(
        only_patch(&changes, &vs_key("vs"))["spec"]["http"],
        json!([
            primary(80, 20),
            http_route(
                "secondary",
                vec![
                    dest("canary.ns.svc.cluster.local", 20),
                    dest("stable.ns.svc.cluster.local", 80)
                ]
            ),
            other,
        ])
    );
}

#[test]
fn other_destinations_of_a_weighted_route_are_removed() {
    let ro = host_rollout();
    let objs = objects(vec![virtual_service(
        "vs",
        json!({"http": [http_route("primary", vec![dest("stable", 90), dest("canary", 0), dest("old-experiment", 10)])]}),
    )]);
    let (changes, _) = plan_stable(&intent(&ro, 20), &objs);
    assert_eq!(
        only_patch(&changes, &vs_key("vs"))["spec"]["http"],
        json!([primary(80, 20)])
    );
}

#[test]
fn virtual_services_plural_with_namespaced_reference() {
    let ro = rollout(json!({"istio": {"virtualServices": [
        {"name": "vs1", "routes": ["primary"]},
        {"name": "vs2.other", "routes": ["secondary"]},
    ]}}));
    let objs = objects(vec![
        virtual_service("vs1", json!({"http": [primary(100, 0)]})),
        virtual_service_in(
            "other",
            "vs2",
            json!({"http": [http_route("secondary", vec![dest("stable", 100), dest("canary", 0)])]}),
        ),
    ]);
    assert_eq!(
        referenced_objects(&ro),
        vec![vs_key("vs1"), istio::virtual_service_key("other", "vs2")]
    );
    let (changes, after) = plan_stable(&intent(&ro, 50), &objs);
    let keys: Vec<_> = changes.iter().map(|c| c.key().clone()).collect();
    assert_eq!(
        keys,
        vec![vs_key("vs1"), istio::virtual_service_key("other", "vs2")]
    );
    assert_eq!(current_canary_weight(&ro, &after), Some(50));

    // Disagreeing VirtualServices: the weight is not determinable.
    let mut skewed = after.clone();
    skewed.insert(
        vs_key("vs1"),
        virtual_service("vs1", json!({"http": [primary(90, 10)]})),
    );
    assert_eq!(current_canary_weight(&ro, &skewed), None);
}

#[test]
fn single_unnamed_route_when_routes_are_omitted() {
    let ro = rollout(json!({"istio": {"virtualService": {"name": "vs"}}}));
    let unnamed = json!({"route": [dest("stable", 100), dest("canary", 0)]});
    let objs = objects(vec![virtual_service("vs", json!({"http": [unnamed]}))]);
    let (changes, _) = plan_stable(&intent(&ro, 10), &objs);
    assert_eq!(
        only_patch(&changes, &vs_key("vs"))["spec"]["http"],
        json!([{"route": [dest("stable", 90), dest("canary", 10)]}])
    );

    let two = objects(vec![virtual_service(
        "vs",
        json!({"http": [primary(100, 0), http_route("b", vec![dest("stable", 100), dest("canary", 0)])]}),
    )]);
    let err = plan_traffic(&intent(&ro, 10), &two).unwrap_err();
    assert_eq!(
        err.to_string(),
        "VirtualService `ns/vs` spec.http: must have exactly one route when trafficRouting.istio.virtualService.routes is omitted"
    );
}

#[test]
fn tls_routes_by_port_and_sni_hosts() {
    let ro = rollout(json!({"istio": {"virtualService": {
        "name": "vs",
        "tlsRoutes": [{"port": 3000, "sniHosts": ["a.com", "b.com"]}],
    }}}));
    let tls = |port: i64, canary: i64| {
        json!({
            "match": [{"port": port, "sniHosts": ["b.com"]}, {"port": port, "sniHosts": ["a.com"]}],
            "route": [dest("stable", 100 - canary), dest("canary", canary)],
        })
    };
    let objs = objects(vec![virtual_service(
        "vs",
        json!({"tls": [tls(3000, 0), tls(3001, 0)]}),
    )]);
    let (changes, after) = plan_stable(&intent(&ro, 20), &objs);
    assert_eq!(
        only_patch(&changes, &vs_key("vs")),
        json!({"metadata": {"resourceVersion": "7"}, "spec": {"tls": [tls(3000, 20), tls(3001, 0)]}})
    );
    assert_eq!(current_canary_weight(&ro, &after), Some(20));

    let wrong = objects(vec![virtual_service("vs", json!({"tls": [tls(3001, 0)]}))]);
    let err = plan_traffic(&intent(&ro, 20), &wrong).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"route `tls port=3000 sniHosts=["a.com", "b.com"]` not found in VirtualService `ns/vs`"#
    );
}

#[test]
fn tcp_routes_by_port_and_single_tls_route_by_default() {
    let ro = rollout(json!({"istio": {"virtualService": {
        "name": "vs",
        "routes": ["primary"],
        "tcpRoutes": [{"port": 8080}],
    }}}));
    let tcp = |port: i64, canary: i64| json!({"match": [{"port": port}], "route": [dest("stable", 100 - canary), dest("canary", canary)]});
    let tls = |canary: i64| json!({"match": [{"port": 443, "sniHosts": ["x"]}], "route": [dest("stable", 100 - canary), dest("canary", canary)]});
    let objs = objects(vec![virtual_service(
        "vs",
        json!({"http": [primary(100, 0)], "tls": [tls(0)], "tcp": [tcp(8080, 0), tcp(9090, 0)]}),
    )]);
    let (changes, _) = plan_stable(&intent(&ro, 40), &objs);
    assert_eq!(
        only_patch(&changes, &vs_key("vs")),
        json!({"metadata": {"resourceVersion": "7"}, "spec": {
            "http": [primary(60, 40)],
            "tls": [tls(40)],
            "tcp": [tcp(8080, 40), tcp(9090, 0)],
        }})
    );
}

#[test]
fn missing_virtual_service_or_route_changes_nothing() {
    let ro = host_rollout();
    let err = plan_traffic(&intent(&ro, 20), &objects(vec![])).unwrap_err();
    assert_eq!(err, TrafficError::MissingObject { key: vs_key("vs") });
    assert_eq!(err.to_string(), "VirtualService `ns/vs` not found");
    assert_eq!(err.reason(), "VirtualServiceNotFound");

    let objs = objects(vec![virtual_service(
        "vs",
        json!({"http": [http_route("other", vec![dest("stable", 100), dest("canary", 0)])]}),
    )]);
    let err = plan_traffic(&intent(&ro, 20), &objs).unwrap_err();
    assert_eq!(
        err,
        TrafficError::MissingRoute {
            object: vs_key("vs"),
            route: "primary".into()
        }
    );
    assert_eq!(
        err.to_string(),
        "route `primary` not found in VirtualService `ns/vs`"
    );

    let objs = objects(vec![virtual_service(
        "vs",
        json!({"http": [http_route("primary", vec![dest("stable", 100)])]}),
    )]);
    let err = plan_traffic(&intent(&ro, 20), &objs).unwrap_err();
    assert_eq!(
        err.to_string(),
        "VirtualService `ns/vs` spec.http[0]: canary Service `canary` not found in route"
    );
}

#[test]
fn malformed_objects_are_errors_not_panics() {
    let ro = host_rollout();
    let bad_specs = [
        json!(null),
        json!("spec"),
        json!({"http": "x"}),
        json!({"http": [1, 2]}),
        json!({"http": [{"name": "primary", "route": "x"}]}),
        json!({"http": [{"name": "primary", "route": [1, "a", null]}]}),
        json!({"http": [{"name": "primary", "route": [{"destination": "x", "weight": "y"}]}]}),
        json!({"http": [{"name": "primary"}]}),
        json!({"tls": {"a": 1}}),
        json!({"tcp": 7}),
    ];
    let header = header_route(
        "h",
        json!([{"headerName": "a", "headerValue": {"exact": "b"}}]),
    );
    let ro_h = rollout(json!({
        "managedRoutes": [{"name": "h"}],
        "istio": {"virtualService": {"name": "vs", "routes": ["primary"]}},
    }));
    for spec in bad_specs {
        for obj in [
            virtual_service("vs", spec.clone()),
            json!(spec.clone()),
            json!([spec.clone()]),
        ] {
            let objs = [(vs_key("vs"), obj)].into_iter().collect();
            assert!(plan_traffic(&intent(&ro, 20), &objs).is_err(), "{spec}");
            let mut i = intent(&ro_h, 20);
            i.header_routes = vec![&header];
            assert!(plan_traffic(&i, &objs).is_err(), "{spec}");
            i.remove_managed_routes = true;
            assert!(plan_traffic(&i, &objs).is_err(), "removing routes: {spec}");
            // No weight is made up from a malformed object: none is read, or 0 where the
            // route has no readable canary destination (nothing goes to the canary).
            let current = current_canary_weight(&ro, &objs);
            assert!(matches!(current, None | Some(0)), "{spec}: {current:?}");
        }
    }
}

#[test]
fn weight_out_of_range_is_refused() {
    let ro = host_rollout();
    let objs = objects(vec![virtual_service(
        "vs",
        json!({"http": [primary(100, 0)]}),
    )]);
    for w in [-1, 101] {
        let err = plan_traffic(&intent(&ro, w), &objs).unwrap_err();
        assert!(matches!(err, TrafficError::Invalid { .. }), "{err}");
    }
}

fn managed_rollout(names: &[&str]) -> rollouts::api::Rollout {
    let managed: Vec<Value> = names.iter().map(|n| json!({"name": n})).collect();
    rollout(json!({
        "managedRoutes": managed,
        "istio": {"virtualService": {"name": "vs", "routes": ["primary"]}},
    }))
}

#[test]
fn header_route_inserted_at_top_then_removed() {
    let ro = managed_rollout(&["set-header-1"]);
    let ported = |host: &str, w: i64| json!({"destination": {"host": host, "port": {"number": 8080}}, "weight": w});
    let primary = http_route("primary", vec![ported("stable", 80), ported("canary", 20)]);
    let objs = objects(vec![virtual_service(
        "vs",
        json!({"http": [primary.clone()]}),
    )]);
    let set = header_route(
        "set-header-1",
        json!([{"headerName": "agent", "headerValue": {"regex": "firefox(.*)"}}]),
    );
    let mut i = intent(&ro, 20);
    i.header_routes = vec![&set];
    let (changes, after) = plan_stable(&i, &objs);
    assert_eq!(
        only_patch(&changes, &vs_key("vs")),
        json!({"metadata": {"resourceVersion": "7"}, "spec": {"http": [
            {
                "name": "set-header-1",
                "match": [{"headers": {"agent": {"regex": "firefox(.*)"}}}],
                "route": [{"destination": {"host": "canary", "port": {"number": 8080}}, "weight": 100}],
            },
            primary.clone(),
        ]}})
    );

    // The verb alone gives the same route.
    let rs = routers(&ro).expect("routers");
    assert_eq!(
        rs[0].set_header_route(&i, &set, &objs).expect("verb"),
        changes
    );

    let remove = header_route("set-header-1", json!([]));
    i.header_routes = vec![&remove];
    let (changes, _) = plan_stable(&i, &after);
    assert_eq!(
        only_patch(&changes, &vs_key("vs")),
        json!({"metadata": {"resourceVersion": "8"}, "spec": {"http": [primary]}})
    );
}

#[test]
fn header_route_to_destination_rule_subset() {
    let ro = rollout(json!({
        "managedRoutes": [{"name": "hdr"}],
        "istio": {
            "virtualService": {"name": "vs", "routes": ["primary"]},
            "destinationRule": {"name": "dr", "canarySubsetName": "canary", "stableSubsetName": "stable"},
        },
    }));
    let objs = objects(vec![
        virtual_service("vs", json!({"http": [subset_primary(100, 0)]})),
        dr_object(json!({}), json!({})),
    ]);
    let set = header_route(
        "hdr",
        json!([{"headerName": "x-canary", "headerValue": {"exact": "yes"}}]),
    );
    let mut i = intent(&ro, 0);
    i.header_routes = vec![&set];
    let (changes, _) = plan_stable(&i, &objs);
    let ObjectChange::Patch { patch, .. } = changes.last().expect("vs patch") else {
        panic!()
    };
    assert_eq!(
        patch["spec"]["http"][0],
        json!({
            "name": "hdr",
            "match": [{"headers": {"x-canary": {"exact": "yes"}}}],
            "route": [{"destination": {"host": "svc", "subset": "canary"}, "weight": 100}],
        })
    );
}

#[test]
fn header_route_must_be_managed_and_well_formed() {
    let ro = managed_rollout(&["a"]);
    let objs = objects(vec![virtual_service(
        "vs",
        json!({"http": [primary(100, 0)]}),
    )]);
    let unlisted = header_route(
        "b",
        json!([{"headerName": "h", "headerValue": {"exact": "v"}}]),
    );
    let mut i = intent(&ro, 0);
    i.header_routes = vec![&unlisted];
    let err = plan_traffic(&i, &objs).unwrap_err();
    assert_eq!(
        err.to_string(),
        "spec.strategy.canary.steps[].setHeaderRoute.name: route `b` is not listed in trafficRouting.managedRoutes"
    );
    let no_value = header_route("a", json!([{"headerName": "h", "headerValue": {}}]));
    i.header_routes = vec![&no_value];
    assert!(plan_traffic(&i, &objs).is_err());

    let both = rollout(json!({
        "managedRoutes": [{"name": "primary"}],
        "istio": {"virtualService": {"name": "vs", "routes": ["primary"]}},
    }));
    let err = plan_traffic(&intent(&both, 0), &objs).unwrap_err();
    assert!(
        err.to_string().contains("also listed in managedRoutes"),
        "{err}"
    );
}

#[test]
fn mirror_routes_with_percentage_in_managed_order() {
    let ro = managed_rollout(&["mirror-route-1", "mirror-route-2"]);
    let objs = objects(vec![virtual_service(
        "vs",
        json!({"http": [primary(80, 20)]}),
    )]);
    let m2 = mirror_route(json!({
        "name": "mirror-route-2",
        "percentage": 80,
        "match": [{"path": {"prefix": "/"}, "method": {"exact": "GET"}}],
    }));
    let m1 = mirror_route(
        json!({"name": "mirror-route-1", "match": [{"path": {"prefix": "/"}, "headers": {"x": {"regex": "y.*"}}}]}),
    );
    let mut i = intent(&ro, 20);
    i.mirror_routes = vec![&m2, &m1];
    let (changes, after) = plan_stable(&i, &objs);
    let route1 = |s: i64, c: i64| {
        json!({
            "name": "mirror-route-1",
            "match": [{"uri": {"prefix": "/"}, "headers": {"x": {"regex": "y.*"}}}],
            "route": [dest("stable", s), dest("canary", c)],
            "mirror": {"host": "canary"},
            "mirrorPercentage": {"value": 100},
        })
    };
    let route2 = |s: i64, c: i64| {
        json!({
            "name": "mirror-route-2",
            "match": [{"method": {"exact": "GET"}, "uri": {"prefix": "/"}}],
            "route": [dest("stable", s), dest("canary", c)],
            "mirror": {"host": "canary"},
            "mirrorPercentage": {"value": 80},
        })
    };
    assert_eq!(
        only_patch(&changes, &vs_key("vs"))["spec"]["http"],
        json!([route1(80, 20), route2(80, 20), primary(80, 20)])
    );

    // A later weight moves the mirror routes' destinations too.
    i.weight = 40;
    let (changes, after40) = plan_stable(&i, &after);
    assert_eq!(
        only_patch(&changes, &vs_key("vs"))["spec"]["http"],
        json!([route1(60, 40), route2(60, 40), primary(60, 40)])
    );

    // End of the update: every managed route goes.
    let mut end = intent(&ro, 0);
    end.remove_managed_routes = true;
    end.mirror_routes = vec![&m1];
    let (changes, _) = plan_stable(&end, &after40);
    assert_eq!(
        only_patch(&changes, &vs_key("vs"))["spec"]["http"],
        json!([primary(100, 0)])
    );
    let rs = routers(&ro).expect("routers");
    let removed = rs[0].remove_managed_routes(&end, &after40).expect("verb");
    assert_eq!(
        only_patch(&removed, &vs_key("vs"))["spec"]["http"],
        json!([primary(60, 40)])
    );
}

#[test]
fn mirror_route_percentage_out_of_range() {
    let ro = managed_rollout(&["m"]);
    let objs = objects(vec![virtual_service(
        "vs",
        json!({"http": [primary(100, 0)]}),
    )]);
    let m =
        mirror_route(json!({"name": "m", "percentage": 150, "match": [{"path": {"exact": "/"}}]}));
    let mut i = intent(&ro, 0);
    i.mirror_routes = vec![&m];
    assert!(matches!(
        plan_traffic(&i, &objs),
        Err(TrafficError::Invalid { .. })
    ));
}

#[test]
fn referenced_objects_lists_virtual_services_and_destination_rule() {
    let ro = subset_rollout(json!({}));
    assert_eq!(referenced_objects(&ro), vec![vs_key("vs"), dr_key()]);
    let k = vs_key("vs");
    assert_eq!(
        (k.api_version.as_str(), k.kind.as_str(), k.plural.as_str()),
        (
            "networking.istio.io/v1alpha3",
            "VirtualService",
            "virtualservices"
        )
    );
}

#[test]
fn extreme_weights_do_not_overflow() {
    let ro = subset_rollout(json!({"additionalSubsetNames": ["a", "b"]}));
    for w in [
        i64::MAX,
        i64::MIN,
        9_000_000_000_000_000,
        -9_000_000_000_000_000,
    ] {
        let objs = objects(vec![
            virtual_service(
                "vs",
                json!({"http": [http_route("primary", vec![
                    subset_dest("svc", "stable", w),
                    subset_dest("svc", "canary", w),
                    subset_dest("svc", "a", w),
                    subset_dest("svc", "b", w),
                ])]}),
            ),
            dr_object(json!({}), json!({})),
        ]);
        // Weights no VirtualService can hold (Istio's are 0..=100): refused with the route
        // named, never wrapped around or written back; no current weight is read from them.
        let err = plan_traffic(&intent(&ro, 20), &objs).expect_err(&format!("weight {w}"));
        assert!(
            err.to_string()
                .starts_with("VirtualService `ns/vs` spec.http[0]"),
            "weight {w}: {err}"
        );
        assert_eq!(current_canary_weight(&ro, &objs), None, "weight {w}");
    }
}
