//! `plan_traffic` as a whole: router selection, unsupported routers, ordering, route
//! accumulation over steps, and upstream's Istio/NGINX/header-routing/mirror-route manifests
//! (from the compat corpus) driven through their steps.

mod traffic_support;

use std::path::{Path, PathBuf};

use pretty_assertions::assert_eq;
use rollouts::api::Rollout;
use rollouts::traffic::{
    ObjectChange, Objects, TrafficError, TrafficIntent, current_canary_weight, istio,
    json as tjson, plan_traffic, referenced_objects, routes_at_step,
};
use serde_json::{Value, json};
use traffic_support::*;

#[test]
fn no_traffic_routing_means_nothing_to_do() {
    let ro: Rollout = serde_json::from_value(json!({
        "metadata": {"name": "ro", "namespace": NS},
        "spec": {"strategy": {"canary": {"steps": [{"setWeight": 10}]}}},
    }))
    .expect("rollout");
    assert_eq!(plan_traffic(&intent(&ro, 10), &objects(vec![])), Ok(vec![]));
    assert_eq!(referenced_objects(&ro), vec![]);
    assert_eq!(current_canary_weight(&ro, &objects(vec![])), None);
}

#[test]
fn unsupported_routers_are_named() {
    for (tr, router) in [
        (json!({"smi": {}}), "smi"),
        (json!({"ambassador": {"mappings": ["m"]}}), "ambassador"),
        (json!({"appMesh": {}}), "appMesh"),
        (json!({"apisix": {"route": {"name": "r"}}}), "apisix"),
        (json!({"nginx": {"stableIngress": "web"}, "smi": {}}), "smi"),
    ] {
        let ro = rollout(tr);
        let err = plan_traffic(&intent(&ro, 10), &objects(vec![])).unwrap_err();
        assert_eq!(
            err,
            TrafficError::Unsupported {
                router: router.into()
            }
        );
        assert_eq!(
            err.to_string(),
            format!("traffic router `{router}` is not supported by this controller")
        );
    }
}

#[test]
fn intent_defaults_follow_the_rollout() {
    let ro = rollout(json!({"maxTrafficWeight": 500, "nginx": {"stableIngress": "web"}}));
    let i = TrafficIntent::for_rollout(&ro);
    assert_eq!(
        (i.canary_service, i.stable_service, i.max_weight, i.weight),
        ("canary", "stable", 500, 0)
    );

    let mut pp: Rollout = serde_json::from_value(json!({
        "metadata": {"name": "ro", "namespace": NS},
        "spec": {"strategy": {"canary": {
            "pingPong": {"pingService": "ping", "pongService": "pong"},
            "trafficRouting": {"istio": {"virtualService": {"name": "vs"}}},
        }}},
    }))
    .expect("rollout");
    let i = TrafficIntent::for_rollout(&pp);
    assert_eq!((i.canary_service, i.stable_service), ("pong", "ping"));
    pp.status = Some(
        serde_json::from_value(json!({"canary": {"stablePingPong": "pong"}})).expect("status"),
    );
    let i = TrafficIntent::for_rollout(&pp);
    assert_eq!((i.canary_service, i.stable_service), ("ping", "pong"));
}

#[test]
fn routes_accumulate_over_steps() {
    let ro = rollout_with(
        json!({"managedRoutes": [{"name": "a"}, {"name": "b"}], "istio": {"virtualService": {"name": "vs"}}}),
        json!([
            {"setWeight": 10},
            {"setHeaderRoute": {"name": "a", "match": [{"headerName": "x", "headerValue": {"exact": "1"}}]}},
            {"setMirrorRoute": {"name": "b", "match": [{"path": {"prefix": "/"}}]}},
            {"setHeaderRoute": {"name": "a", "match": [{"headerName": "x", "headerValue": {"exact": "2"}}]}},
            {"setHeaderRoute": {"name": "a"}},
        ]),
    );
    let names = |i: usize| {
        let (h, m) = routes_at_step(&ro, i);
        let h: Vec<String> = h
            .iter()
            .map(|h| serde_json::to_string(h).expect("json"))
            .collect();
        let m: Vec<Option<String>> = m.iter().map(|m| m.name.clone()).collect();
        (h, m)
    };
    assert_eq!(names(0), (vec![], vec![]));
    assert_eq!(
        names(1),
        (
            vec![r#"{"name":"a","match":[{"headerName":"x","headerValue":{"exact":"1"}}]}"#.into()],
            vec![]
        )
    );
    assert_eq!(
        names(3).0,
        vec![
            r#"{"name":"a","match":[{"headerName":"x","headerValue":{"exact":"2"}}]}"#.to_string()
        ]
    );
    assert_eq!(names(3).1, vec![Some("b".to_string())]);
    assert_eq!(names(4).0, vec![r#"{"name":"a"}"#.to_string()]);
    assert_eq!(names(99).0, vec![r#"{"name":"a"}"#.to_string()]);
}

#[test]
fn each_object_is_written_once_per_plan() {
    // Header route, mirror route, hashes and weights in one plan: one patch per object.
    let ro = rollout(json!({
        "managedRoutes": [{"name": "h"}, {"name": "m"}],
        "istio": {
            "virtualService": {"name": "vs", "routes": ["primary"]},
            "destinationRule": {"name": "dr", "canarySubsetName": "canary", "stableSubsetName": "stable"},
        },
    }));
    let objs = objects(vec![
        virtual_service(
            "vs",
            json!({"http": [http_route("primary", vec![subset_dest("svc", "stable", 100), subset_dest("svc", "canary", 0)])]}),
        ),
        destination_rule(
            "dr",
            json!({"host": "svc", "subsets": [{"name": "stable"}, {"name": "canary"}]}),
        ),
    ]);
    let h = serde_json::from_value(
        json!({"name": "h", "match": [{"headerName": "a", "headerValue": {"prefix": "b"}}]}),
    )
    .expect("h");
    let m = serde_json::from_value(
        json!({"name": "m", "match": [{"path": {"prefix": "/"}}], "percentage": 10}),
    )
    .expect("m");
    let mut i = intent(&ro, 30);
    i.header_routes = vec![&h];
    i.mirror_routes = vec![&m];
    let changes = plan_traffic(&i, &objs).expect("plan");
    let keys: Vec<_> = changes.iter().map(|c| c.key().name.clone()).collect();
    assert_eq!(keys, vec!["dr", "vs"]);
    let after = apply(&objs, &changes);
    let http = &after[&istio::virtual_service_key(NS, "vs")]["spec"]["http"];
    let names: Vec<&str> = http
        .as_array()
        .expect("http")
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert_eq!(names, vec!["h", "m", "primary"]);
    assert_eq!(
        http[1]["route"], http[2]["route"],
        "mirror route follows the weights"
    );
    assert_eq!(http[2]["route"][1]["weight"], json!(30));
    assert_eq!(plan_traffic(&i, &after), Ok(vec![]));

    // Adding and removing a route in the same plan nets out to no write.
    let none = serde_json::from_value(json!({"name": "h"})).expect("h");
    let mut j = intent(&ro, 30);
    j.header_routes = vec![&h, &none];
    j.mirror_routes = vec![&m];
    let net = plan_traffic(&j, &after).expect("plan");
    let vs_patch = only_patch(&net, &istio::virtual_service_key(NS, "vs"));
    assert_eq!(vs_patch["spec"]["http"].as_array().map(Vec::len), Some(2));
}

// ---------------------------------------------------------------------------------------------
// Upstream manifests
// ---------------------------------------------------------------------------------------------

/// The YAML documents of a file (or of every YAML file of a directory).
fn documents(path: &Path, replace: &[(&str, &str)]) -> Vec<Value> {
    let mut files = vec![];
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .expect("dir")
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
            .collect();
        entries.sort();
        files.extend(entries);
    } else {
        files.push(path.to_path_buf());
    }
    let mut out = vec![];
    for f in files {
        let mut text = std::fs::read_to_string(&f).expect("read");
        for (a, b) in replace {
            text = text.replace(a, b);
        }
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let v: Value = serde::Deserialize::deserialize(doc).expect("yaml");
            if !v.is_null() {
                out.push(v);
            }
        }
    }
    out
}

/// Drives every Rollout of a manifest set through its steps and to the end, checking each plan
/// is accepted, stable, and leaves the objects carrying the step's weight.
fn drive(name: &str, docs: Vec<Value>) -> usize {
    let mut objs = Objects::new();
    let mut rollouts = vec![];
    for mut d in docs {
        let kind = d["kind"].as_str().unwrap_or_default().to_string();
        if d["metadata"]["namespace"].is_null() {
            d["metadata"]["namespace"] = json!(NS);
        }
        match kind.as_str() {
            "VirtualService" | "DestinationRule" | "Ingress" | "HTTPRoute" => {
                d["metadata"]["resourceVersion"] = json!("1");
                objs.insert(key_of(&d), d);
            }
            "Rollout" => {
                d["metadata"]["uid"] = json!("uid-1");
                rollouts.push(serde_json::from_value::<Rollout>(d).expect("rollout"));
            }
            _ => {}
        }
    }
    for ro in &rollouts {
        for k in referenced_objects(ro) {
            if k.kind != "Ingress" || !k.name.ends_with("-canary") {
                assert!(
                    objs.contains_key(&k),
                    "{name}: {k} referenced but not in the manifests"
                );
            }
        }
        let steps = ro.canary_steps();
        let mut weight = 0;
        for (idx, step) in steps.iter().enumerate() {
            if let Some(w) = step.set_weight {
                weight = w;
            }
            let (headers, mirrors) = routes_at_step(ro, idx);
            let mut i = TrafficIntent::for_rollout(ro);
            i.weight = weight;
            i.canary_hash = Some("canaryhash");
            i.stable_hash = Some("stablehash");
            i.header_routes = headers;
            i.mirror_routes = mirrors;
            let changes = plan_traffic(&i, &objs)
                .unwrap_or_else(|e| panic!("{name} step {idx} (weight {weight}): {e}"));
            objs = apply(&objs, &changes);
            assert_eq!(
                plan_traffic(&i, &objs),
                Ok(vec![]),
                "{name} step {idx}: not stable"
            );
            assert_eq!(
                current_canary_weight(ro, &objs),
                Some(weight),
                "{name} step {idx}"
            );
        }
        let mut end = TrafficIntent::for_rollout(ro);
        end.remove_managed_routes = true;
        end.canary_hash = Some("canaryhash");
        end.stable_hash = Some("canaryhash");
        let changes = plan_traffic(&end, &objs).unwrap_or_else(|e| panic!("{name} end: {e}"));
        objs = apply(&objs, &changes);
        assert_eq!(
            plan_traffic(&end, &objs),
            Ok(vec![]),
            "{name} end: not stable"
        );
        assert_eq!(current_canary_weight(ro, &objs), Some(0), "{name} end");
        let managed: Vec<String> = ro
            .canary()
            .and_then(|c| c.traffic_routing.as_ref())
            .and_then(|t| t.managed_routes.clone())
            .into_iter()
            .flatten()
            .filter_map(|m| m.name)
            .collect();
        for obj in objs.values() {
            for r in tjson::get(obj, &["spec", "http"])
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let n = r["name"].as_str().unwrap_or_default();
                assert!(
                    !managed.iter().any(|m| m == n),
                    "{name}: managed route {n} left"
                );
            }
        }
    }
    rollouts.len()
}

#[test]
fn upstream_manifests_drive_through_their_steps() {
    let Some(corpus) = compat_corpus() else {
        return;
    };
    let mut scenarios: Vec<(PathBuf, Vec<(&str, &str)>)> = vec![];
    for dir in [
        "test/e2e/istio",
        "test/e2e/header-routing",
        "test/e2e/mirror-route",
        "examples/istio",
    ] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(corpus.join(dir))
            .expect("dir")
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                let n = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
                n.ends_with(".yaml") && (dir != "test/e2e/header-routing" || n.starts_with("istio"))
            })
            .collect();
        files.sort();
        scenarios.extend(files.into_iter().map(|f| (f, vec![])));
    }
    scenarios.push((corpus.join("docs/getting-started/nginx"), vec![]));
    scenarios.push((
        corpus.join("test/e2e/functional/nginx-template.yaml"),
        vec![("REPLACEME", "nginx-demo")],
    ));
    let mut driven = 0;
    for (path, replace) in &scenarios {
        let name = path
            .strip_prefix(&corpus)
            .unwrap_or(path)
            .display()
            .to_string();
        driven += drive(&name, documents(path, replace));
    }
    assert!(driven >= 17, "only {driven} rollouts driven");

    // The tutorial's Istio Rollout uses two VirtualServices from a separate file.
    let istio = corpus.join("docs/getting-started/istio");
    let docs = [
        istio.join("rollout.yaml"),
        istio.join("multipleVirtualsvc.yaml"),
    ]
    .iter()
    .flat_map(|p| documents(p, &[]))
    .collect();
    assert_eq!(drive("docs/getting-started/istio", docs), 1);

    // The "mixed" tutorial adds SMI, which this controller does not implement.
    let mixed = documents(&corpus.join("docs/getting-started/mixed/rollout.yaml"), &[]);
    let ro: Rollout = serde_json::from_value(mixed[0].clone()).expect("rollout");
    assert_eq!(
        plan_traffic(&TrafficIntent::for_rollout(&ro), &Objects::new()),
        Err(TrafficError::Unsupported {
            router: "smi".into()
        })
    );
}

#[test]
fn header_routing_e2e_manifest_exact_route() {
    let Some(corpus) = compat_corpus() else {
        return;
    };
    let docs = documents(
        &corpus.join("test/e2e/header-routing/istio-hr-host.yaml"),
        &[],
    );
    let mut objs = Objects::new();
    let mut ro = None;
    for mut d in docs {
        d["metadata"]["namespace"] = json!(NS);
        match d["kind"].as_str() {
            Some("VirtualService") => {
                d["metadata"]["resourceVersion"] = json!("1");
                objs.insert(key_of(&d), d);
            }
            Some("Rollout") => ro = Some(serde_json::from_value::<Rollout>(d).expect("rollout")),
            _ => {}
        }
    }
    let ro = ro.expect("rollout");
    let (headers, _) = routes_at_step(&ro, 1);
    let mut i = TrafficIntent::for_rollout(&ro);
    i.weight = 20;
    i.header_routes = headers;
    let changes = plan_traffic(&i, &objs).expect("plan");
    let [ObjectChange::Patch { patch, .. }] = changes.as_slice() else {
        panic!("{changes:#?}")
    };
    assert_eq!(
        patch["spec"]["http"][0],
        json!({
            "name": "set-header-1",
            "match": [{"headers": {"agent": {"regex": "firefox(.*)"}}}],
            "route": [{"destination": {"host": "canary-service"}, "weight": 100}],
        })
    );
}
