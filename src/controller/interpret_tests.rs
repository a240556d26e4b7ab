//! The controller and the in-memory simulator interpret every [`Effect`] the same way.
//!
//! The simulator (`plan::simulate::World::apply`) applies effects to its objects directly; the
//! controller turns them into requests ([`actuate::requests`]). Here each effect goes both
//! ways from the same world: once through the simulator, once as the controller's requests
//! applied as the API server applies them (JSON merge patches, creates, deletes). The objects
//! must come out the same, status and server-set fields aside (the simulator plays the
//! ReplicaSet controller too). The match in [`samples`] has no wildcard: a new `Effect`
//! variant does not compile until it is covered here.

use super::actuate::{self, Kind, Request};
use crate::api::{AnalysisRun, Rollout};
use crate::plan::ephemeral::MetadataChange;
use crate::plan::simulate::World;
use crate::plan::{Effect, Plan, RsPatch};
use crate::traffic::{ObjectChange, ObjectKey};
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::ResourceExt;
use serde_json::{Value, json};

fn rollout() -> Rollout {
    serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": "demo", "namespace": "ns", "uid": "uid-1", "generation": 1},
        "spec": {
            "replicas": 4,
            "selector": {"matchLabels": {"app": "demo"}},
            "template": {"metadata": {"labels": {"app": "demo"}},
                         "spec": {"containers": [{"name": "demo", "image": "demo:v1"}]}},
            "strategy": {"canary": {
                "canaryService": "demo-canary", "stableService": "demo-stable",
                "steps": [{"setWeight": 25}, {"pause": {}}, {"setWeight": 50}, {"pause": {}}]}}
        }
    }))
    .unwrap()
}

fn router_key() -> ObjectKey {
    ObjectKey {
        api_version: "networking.istio.io/v1alpha3".into(),
        kind: "VirtualService".into(),
        plural: "virtualservices".into(),
        namespace: "ns".into(),
        name: "vs".into(),
    }
}

fn workload_key() -> ObjectKey {
    ObjectKey {
        api_version: "apps/v1".into(),
        kind: "Deployment".into(),
        plural: "deployments".into(),
        namespace: "ns".into(),
        name: "demo-deploy".into(),
    }
}

/// A world in the middle of an update: a stable and a canary ReplicaSet, both Services, an
/// AnalysisRun, an Experiment, a pod, a router object and a workload.
fn world() -> World {
    let mut w = World::new(rollout());
    w.try_settle().expect("the plan converges");
    w.set_image("demo:v2");
    for _ in 0..5 {
        if w.rss.len() == 2 {
            break;
        }
        w.apply(w.plan());
    }
    w.runs.push(
        serde_json::from_value(json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisRun",
            "metadata": {"name": "demo-run", "namespace": "ns"},
            "spec": {"metrics": []}
        }))
        .unwrap(),
    );
    w.experiments.push(
        serde_json::from_value(json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Experiment",
            "metadata": {"name": "demo-ex", "namespace": "ns"},
            "spec": {"templates": []}
        }))
        .unwrap(),
    );
    w.pods.push(
        serde_json::from_value(json!({
            "metadata": {"name": "demo-pod", "namespace": "ns", "labels": {"app": "demo", "old": "x"}}
        }))
        .unwrap(),
    );
    w.traffic.insert(
        router_key(),
        json!({"apiVersion": "networking.istio.io/v1alpha3", "kind": "VirtualService",
               "metadata": {"name": "vs", "namespace": "ns", "resourceVersion": "5"},
               "spec": {"http": [{"route": [{"destination": {"host": "demo-stable"}, "weight": 100}]}]}}),
    );
    w.workload = Some(json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "demo-deploy", "namespace": "ns", "resourceVersion": "3"},
        "spec": {"replicas": 4}}));
    assert_eq!(w.rss.len(), 2, "a stable and a canary");
    w
}

fn change(labels: &[(&str, Option<&str>)], annotations: &[(&str, Option<&str>)]) -> MetadataChange {
    let m = |kv: &[(&str, Option<&str>)]| {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
            .collect()
    };
    MetadataChange {
        labels: m(labels),
        annotations: m(annotations),
    }
}

/// One of each effect, for the world above.
fn samples(w: &World) -> Vec<Effect> {
    let stable = w.rss[0].name_any();
    let canary = w.rss[1].name_any();
    let mut new_rs = w.rss[1].clone();
    new_rs.metadata.name = Some("demo-new".into());
    new_rs.metadata.uid = None;
    new_rs.status = None;
    let run: AnalysisRun = serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisRun",
        "metadata": {"name": "demo-run-2", "namespace": "ns"}, "spec": {"metrics": []}
    }))
    .unwrap();
    let ex: crate::api::Experiment = serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Experiment",
        "metadata": {"name": "demo-ex-2", "namespace": "ns", "labels": {"a": "b"}},
        "spec": {"duration": "1m", "templates": [{"name": "t", "replicas": 1}]}
    }))
    .unwrap();
    let all = vec![
        Effect::CreateReplicaSet(Box::new(new_rs)),
        Effect::PatchReplicaSet {
            name: canary.clone(),
            patch: RsPatch {
                replicas: Some(3),
                min_ready_seconds: Some(7),
                annotations: [
                    ("a".to_string(), Some("1".to_string())),
                    ("rollout.argoproj.io/revision".to_string(), None),
                ]
                .into(),
                affinity: Some(json!({"podAntiAffinity": {}})),
            },
        },
        Effect::PatchReplicaSet {
            name: stable.clone(),
            patch: RsPatch {
                replicas: Some(1),
                ..Default::default()
            },
        },
        Effect::DeleteReplicaSet {
            name: stable.clone(),
            uid: w.rss[0].uid(),
        },
        Effect::SetServiceSelector {
            service: "demo-canary".into(),
            hash: "abc".into(),
        },
        Effect::SetRolloutRevision {
            revision: "7".into(),
        },
        Effect::SetWorkloadGeneration {
            generation: "4".into(),
        },
        Effect::Traffic(ObjectChange::Patch {
            key: router_key(),
            patch: json!({"metadata": {"resourceVersion": "5"},
                          "spec": {"http": [{"route": [{"destination": {"host": "demo-canary"}, "weight": 25}]}]}}),
        }),
        Effect::Traffic(ObjectChange::Delete { key: router_key() }),
        Effect::ScaleWorkload(ObjectChange::Patch {
            key: workload_key(),
            patch: json!({"metadata": {"resourceVersion": "3"}, "spec": {"replicas": 0}}),
        }),
        Effect::CreateAnalysisRun(Box::new(run)),
        Effect::TerminateAnalysisRun {
            name: "demo-run".into(),
        },
        Effect::DeleteAnalysisRun {
            name: "demo-run".into(),
        },
        Effect::EphemeralMetadata {
            replica_set: canary.clone(),
            template: change(&[("role", Some("canary")), ("old", None)], &[]),
            pods: vec![(
                "demo-pod".into(),
                change(
                    &[("role", Some("canary")), ("old", None)],
                    &[("n", Some("1"))],
                ),
            )],
            record: Some(Some("{\"labels\":{\"role\":\"canary\"}}".into())),
        },
        Effect::EphemeralMetadata {
            replica_set: canary,
            template: change(&[], &[("note", Some("x"))]),
            pods: vec![],
            record: Some(None),
        },
        Effect::EvictPod {
            name: "demo-pod".into(),
        },
        Effect::CreateExperiment(Box::new(ex)),
        Effect::TerminateExperiment {
            name: "demo-ex".into(),
        },
        Effect::DeleteExperiment {
            name: "demo-ex".into(),
        },
    ];
    // Every variant is here (no wildcard: a new variant must be added above).
    for e in &all {
        match e {
            Effect::CreateReplicaSet(_)
            | Effect::PatchReplicaSet { .. }
            | Effect::DeleteReplicaSet { .. }
            | Effect::SetServiceSelector { .. }
            | Effect::SetRolloutRevision { .. }
            | Effect::SetWorkloadGeneration { .. }
            | Effect::Traffic(_)
            | Effect::ScaleWorkload(_)
            | Effect::CreateAnalysisRun(_)
            | Effect::TerminateAnalysisRun { .. }
            | Effect::DeleteAnalysisRun { .. }
            | Effect::EphemeralMetadata { .. }
            | Effect::EvictPod { .. }
            | Effect::CreateExperiment(_)
            | Effect::TerminateExperiment { .. }
            | Effect::DeleteExperiment { .. } => {}
        }
    }
    all
}

fn merge(target: &mut Value, patch: &Value) {
    json_patch::merge(target, patch);
}

/// Applies `patch` to a typed object as the API server applies a JSON merge patch.
fn patched<K: serde::Serialize + serde::de::DeserializeOwned>(obj: &K, patch: &Value) -> K {
    let mut v = serde_json::to_value(obj).unwrap();
    merge(&mut v, patch);
    serde_json::from_value(v).unwrap()
}

/// Applies the controller's requests to the world's objects, as the API server would.
fn apply_requests(w: &mut World, effect: &Effect) {
    let rv = w.ro.resource_version().unwrap_or_default();
    for req in actuate::requests(effect, &w.ro.name_any(), &rv) {
        match req {
            Request::CreateReplicaSet(rs) => w.rss.push(*rs),
            Request::CreateAnalysisRun(run) => {
                if !w.runs.iter().any(|r| r.name_any() == run.name_any()) {
                    w.runs.push(*run);
                }
            }
            Request::CreateExperiment(ex) => {
                if !w.experiments.iter().any(|e| e.name_any() == ex.name_any()) {
                    w.experiments.push(*ex);
                }
            }
            Request::Patch { kind, name, body } => match kind {
                Kind::ReplicaSet => {
                    for rs in w.rss.iter_mut().filter(|r| r.name_any() == name) {
                        *rs = patched(rs, &body);
                    }
                }
                Kind::Service => {
                    for s in w.services.iter_mut().filter(|s| s.name_any() == name) {
                        *s = patched::<Service>(s, &body);
                    }
                }
                Kind::Pod => {
                    for p in w.pods.iter_mut().filter(|p| p.name_any() == name) {
                        *p = patched::<Pod>(p, &body);
                    }
                }
                Kind::AnalysisRun => {
                    for r in w.runs.iter_mut().filter(|r| r.name_any() == name) {
                        *r = patched(r, &body);
                    }
                }
                Kind::Experiment => {
                    for e in w.experiments.iter_mut().filter(|e| e.name_any() == name) {
                        *e = patched(e, &body);
                    }
                }
                Kind::Rollout => w.ro = patched(&w.ro, &body),
            },
            Request::Delete { kind, name, .. } => match kind {
                Kind::ReplicaSet => w.rss.retain(|r| r.name_any() != name),
                Kind::AnalysisRun => w.runs.retain(|r| r.name_any() != name),
                Kind::Experiment => w.experiments.retain(|e| e.name_any() != name),
                Kind::Service => w.services.retain(|s| s.name_any() != name),
                Kind::Pod => w.pods.retain(|p| p.name_any() != name),
                Kind::Rollout => panic!("the controller never deletes a Rollout"),
            },
            // An eviction's outcome belongs to the world (the pod goes, its ReplicaSet makes
            // another); the simulator keeps its pods as they are.
            Request::Evict { .. } => {}
            Request::Router(c) => match c {
                ObjectChange::Create { key, object } => {
                    w.traffic.insert(key, object);
                }
                ObjectChange::Patch { key, patch } => {
                    if let Some(o) = w.traffic.get_mut(&key) {
                        merge(o, &patch);
                    }
                }
                ObjectChange::Delete { key } => {
                    w.traffic.remove(&key);
                }
            },
            Request::Workload(c) => match c {
                ObjectChange::Patch { patch, .. } => {
                    if let Some(o) = w.workload.as_mut() {
                        merge(o, &patch);
                    }
                }
                ObjectChange::Create { object, .. } => w.workload = Some(object),
                ObjectChange::Delete { .. } => w.workload = None,
            },
        }
    }
}

/// The world's objects without what the API server or the ReplicaSet controller sets.
fn objects(w: &World) -> Value {
    fn strip(mut v: Value) -> Value {
        if let Some(o) = v.as_object_mut() {
            o.remove("status");
            if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
                for k in ["resourceVersion", "uid", "creationTimestamp", "generation"] {
                    m.remove(k);
                }
            }
        }
        v
    }
    fn values<T: serde::Serialize>(items: impl IntoIterator<Item = T>) -> Vec<Value> {
        items
            .into_iter()
            .map(|i| strip(serde_json::to_value(i).unwrap()))
            .collect()
    }
    json!({
        "rollout": strip(serde_json::to_value(&w.ro).unwrap()),
        "replicaSets": values(&w.rss),
        "services": values(&w.services),
        "runs": values(&w.runs),
        "experiments": values(&w.experiments),
        "pods": values(&w.pods),
        "traffic": values(w.traffic.values()),
        "workload": w.workload.clone().map(strip),
    })
}

fn check(effect: &Effect, build: impl Fn() -> World) {
    let mut by_simulator = build();
    let status = by_simulator.status();
    by_simulator.apply(Plan {
        effects: vec![effect.clone()],
        status,
        ..Default::default()
    });
    let mut by_requests = build();
    apply_requests(&mut by_requests, effect);
    pretty_assertions::assert_eq!(
        objects(&by_requests),
        objects(&by_simulator),
        "{effect:?}: the controller's requests (left) and the simulator (right) differ"
    );
}

#[test]
fn every_effect_means_the_same_to_the_controller_and_the_simulator() {
    let w = world();
    for effect in samples(&w) {
        check(&effect, world);
    }
}

/// The effects real plans produce along an update (abort, retry and promotion included)
/// also mean the same both ways, each from the world it was planned in.
#[test]
fn effects_of_a_whole_update_mean_the_same_both_ways() {
    let script: &[&dyn Fn(&mut World)] = &[
        &|w| w.set_image("demo:v2"),
        &|w| w.promote(),
        &|w| w.ro.status.as_mut().unwrap().abort = Some(true),
        &|w| w.ro.status.as_mut().unwrap().abort = None,
        &|w| w.promote(),
        &|w| w.promote(),
    ];
    let mut seen = 0;
    // Replays the script to step `upto`, then `rounds` plans, and returns the world.
    let replay = |upto: usize, rounds: usize| -> World {
        let mut w = World::new(rollout());
        w.try_settle().expect("the plan converges");
        for act in &script[..upto] {
            act(&mut w);
            w.try_settle().expect("the plan converges");
        }
        if upto < script.len() {
            script[upto](&mut w);
        }
        for _ in 0..rounds {
            w.apply(w.plan());
        }
        w
    };
    for step in 0..script.len() {
        for round in 0..20 {
            let w = replay(step, round);
            let plan = w.plan();
            if plan.effects.is_empty() && plan.status == w.status() {
                break;
            }
            for e in &plan.effects {
                seen += 1;
                check(e, || replay(step, round));
            }
        }
    }
    eprintln!("{seen} effects compared");
    assert!(
        seen >= 10,
        "the update produced effects to compare ({seen})"
    );
}

/// The effects of a canary `experiment` step (create, then terminate on an abort) mean the
/// same both ways, each from the world it was planned in.
#[test]
fn experiment_step_effects_mean_the_same_both_ways() {
    let with_step = || {
        let mut ro = rollout();
        ro.spec.strategy = serde_json::from_value(json!({"canary": {
            "canaryService": "demo-canary", "stableService": "demo-stable",
            "steps": [{"setWeight": 25},
                      {"experiment": {"duration": "1m", "templates": [
                          {"name": "c", "specRef": "canary", "service": {}}]}},
                      {"pause": {}}]}}))
        .unwrap();
        let mut w = World::new(ro);
        w.try_settle().expect("the plan converges");
        w.set_image("demo:v2");
        w
    };
    let script: &[&dyn Fn(&mut World)] = &[&|_| {}, &|w| {
        w.ro.status.as_mut().unwrap().abort = Some(true);
    }];
    let replay = |upto: usize, rounds: usize| -> World {
        let mut w = with_step();
        for act in &script[..upto] {
            act(&mut w);
            w.try_settle().expect("the plan converges");
        }
        if upto < script.len() {
            script[upto](&mut w);
        }
        for _ in 0..rounds {
            w.apply(w.plan());
        }
        w
    };
    let mut kinds = std::collections::BTreeSet::new();
    for step in 0..script.len() {
        for round in 0..20 {
            let w = replay(step, round);
            let plan = w.plan();
            for e in &plan.effects {
                match e {
                    Effect::CreateExperiment(_) => kinds.insert("create"),
                    Effect::TerminateExperiment { .. } => kinds.insert("terminate"),
                    _ => false,
                };
                check(e, || replay(step, round));
            }
        }
    }
    assert_eq!(
        kinds.into_iter().collect::<Vec<_>>(),
        vec!["create", "terminate"],
        "the step created its Experiment and the abort terminated it"
    );
}
