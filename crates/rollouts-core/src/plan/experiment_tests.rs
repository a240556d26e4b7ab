//! Canary `experiment` steps in the simulated world: the Experiment as upstream builds it, the
//! step's gate, abort and pause on its phase, termination, `currentExperiment`, and the
//! weighted templates' Istio destinations.

use super::simulate::{World, rollout};
use super::*;
use crate::api::consts::DEFAULT_ROLLOUT_UNIQUE_LABEL_KEY;
use kube_core::ResourceExt;
use serde_json::json;

fn experiment_step() -> serde_json::Value {
    json!({"experiment": {
        "duration": "5m",
        "scaleDownDelaySeconds": 5,
        "templates": [
            {"name": "baseline", "specRef": "stable", "replicas": 2,
             "metadata": {"labels": {"role": "baseline"}, "annotations": {"note": "b"}}},
            {"name": "canary", "specRef": "canary",
             "selector": {"matchLabels": {"app": "demo", "exp": "c"}},
             "service": {"name": "exp-canary"}}
        ],
        "analyses": [{"name": "compare", "templateName": "compare",
                      "requiredForCompletion": true,
                      "args": [{"name": "hash", "valueFrom": {"podTemplateHashValue": "Latest"}},
                               {"name": "stable", "valueFrom": {"podTemplateHashValue": "Stable"}},
                               {"name": "plain", "value": "x"}]}]
    }})
}

/// A Rollout with an `experiment` step (step 1), deployed and just updated to revision 2
/// (nothing planned since).
fn updated_to_experiment_step() -> World {
    let mut ro = rollout(
        4,
        json!([{"setWeight": 25}, experiment_step(), {"setWeight": 50}]),
    );
    ro.metadata.labels = Some([("team".to_string(), "a".to_string())].into());
    let mut w = World::new(ro);
    w.settle();
    w.set_image("demo:v2");
    w
}

/// A Rollout at revision 2 waiting on its `experiment` step (step 1).
fn at_experiment_step() -> World {
    let mut w = updated_to_experiment_step();
    w.settle();
    w
}

fn current_experiment(w: &World) -> Option<String> {
    w.status().canary?.current_experiment
}

fn hash_of(w: &World, rs: usize) -> String {
    w.rss[rs].labels()[DEFAULT_ROLLOUT_UNIQUE_LABEL_KEY].clone()
}

#[test]
fn experiment_step_creates_the_experiment_as_upstream_and_waits() {
    let w = at_experiment_step();
    let st = w.status();
    assert_eq!(st.current_step_index, Some(1));
    assert_eq!(w.experiments.len(), 1, "one Experiment");
    let ex = &w.experiments[0];
    let hash = st.current_pod_hash.clone().unwrap();
    let stable = st.stable_rs.clone().unwrap();
    assert_eq!(ex.name_any(), format!("demo-{hash}-2-1"));
    assert_eq!(current_experiment(&w), Some(ex.name_any()));
    assert_eq!(ex.namespace().as_deref(), Some("ns"));
    assert_eq!(ex.labels()["team"], "a", "the Rollout's labels");
    assert_eq!(ex.labels()[DEFAULT_ROLLOUT_UNIQUE_LABEL_KEY], hash);
    assert_eq!(ex.annotations()["rollout.argoproj.io/revision"], "2");
    let owner = &ex.owner_references()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str(), owner.controller),
        ("Rollout", "demo", Some(true))
    );
    assert_eq!(ex.spec.duration.as_deref(), Some("5m"));
    assert_eq!(ex.spec.scale_down_delay_seconds, Some(5));
    let t = ex.spec.templates.clone().unwrap();
    assert_eq!(t.len(), 2);
    // baseline: the stable ReplicaSet's pod template and selector, plus the step's metadata.
    let labels = t[0].template.as_ref().unwrap().metadata.as_ref().unwrap();
    assert_eq!(labels.labels.as_ref().unwrap()["role"], "baseline");
    assert_eq!(
        labels.labels.as_ref().unwrap()[DEFAULT_ROLLOUT_UNIQUE_LABEL_KEY],
        stable
    );
    assert_eq!(labels.annotations.as_ref().unwrap()["note"], "b");
    let sel = t[0]
        .selector
        .as_ref()
        .unwrap()
        .match_labels
        .clone()
        .unwrap();
    assert_eq!(sel["role"], "baseline");
    assert_eq!(sel[DEFAULT_ROLLOUT_UNIQUE_LABEL_KEY], stable);
    assert_eq!(t[0].replicas, Some(2));
    assert!(t[0].service.is_none());
    // canary: the new ReplicaSet's template and image, the step's selector, its Service.
    let tpl = t[1].template.as_ref().unwrap();
    assert_eq!(
        tpl.spec.as_ref().unwrap().containers[0].image.as_deref(),
        Some("demo:v2")
    );
    let sel = t[1]
        .selector
        .as_ref()
        .unwrap()
        .match_labels
        .clone()
        .unwrap();
    assert_eq!(sel.len(), 2);
    assert_eq!(sel["exp"], "c");
    assert_eq!(
        t[1].service.as_ref().unwrap().name.as_deref(),
        Some("exp-canary")
    );
    // analyses with the Rollout's args resolved
    let a = &ex.spec.analyses.as_ref().unwrap()[0];
    assert_eq!(a.required_for_completion, Some(true));
    let args: Vec<(String, String)> = a
        .args
        .iter()
        .flatten()
        .map(|a| (a.name.clone().unwrap(), a.value.clone().unwrap()))
        .collect();
    assert_eq!(
        args,
        vec![
            ("hash".into(), hash.clone()),
            ("stable".into(), stable),
            ("plain".into(), "x".into())
        ]
    );
    assert!(w.has_event("ExperimentCreated"));
    let plan = w.plan();
    assert!(plan.effects.is_empty(), "settled: {:?}", plan.effects);
    assert_eq!(
        plan.wait,
        Some(Wait::Experiment {
            name: ex.name_any(),
            phase: String::new()
        })
    );
    assert_eq!(st.phase.as_deref(), Some("Progressing"));
}

#[test]
fn successful_experiment_completes_the_step_and_clears_current_experiment() {
    let mut w = at_experiment_step();
    let name = w.experiments[0].name_any();
    assert!(w.set_experiment_phase(&name, "Running", ""));
    w.settle();
    assert_eq!(
        w.status().current_step_index,
        Some(1),
        "Running: still waiting"
    );
    assert_eq!(current_experiment(&w), Some(name.clone()));
    assert!(w.set_experiment_phase(&name, "Successful", ""));
    w.settle();
    let st = w.status();
    assert_eq!(st.phase.as_deref(), Some("Healthy"), "{st:#?}");
    assert_eq!(current_experiment(&w), None);
    assert_eq!(w.experiments.len(), 1, "kept within the history limit");
    assert_ne!(w.experiments[0].spec.terminate, Some(true));
    assert!(
        w.events
            .iter()
            .any(|e| e.message == "Rollout step 2/3 completed (experiment)")
    );
}

#[test]
fn failed_experiment_aborts_the_rollout_with_its_message() {
    let mut w = at_experiment_step();
    let name = w.experiments[0].name_any();
    assert!(w.set_experiment_phase(&name, "Failed", "analysis compare failed"));
    w.settle();
    let st = w.status();
    assert_eq!(st.abort, Some(true));
    assert_eq!(st.phase.as_deref(), Some("Degraded"));
    let msg = st.message.clone().unwrap();
    assert!(
        msg.contains("Experiment analysis phase is error/failed: analysis compare failed"),
        "{msg}"
    );
    assert_eq!(current_experiment(&w), None);
    assert_eq!(w.counts(), (0, 4), "stable back to full");
    assert_ne!(
        w.experiments[0].spec.terminate,
        Some(true),
        "an ended Experiment is not terminated"
    );
}

#[test]
fn error_experiment_aborts_too() {
    let mut w = at_experiment_step();
    let name = w.experiments[0].name_any();
    w.set_experiment_phase(&name, "Error", "");
    w.settle();
    let st = w.status();
    assert_eq!(st.abort, Some(true));
    assert!(
        st.message
            .unwrap()
            .contains("Experiment analysis phase is error/failed")
    );
}

#[test]
fn inconclusive_experiment_pauses() {
    let mut w = at_experiment_step();
    let name = w.experiments[0].name_any();
    w.set_experiment_phase(&name, "Inconclusive", "");
    w.settle();
    let st = w.status();
    assert_eq!(st.phase.as_deref(), Some("Paused"), "{st:#?}");
    assert_eq!(st.message.as_deref(), Some("InconclusiveExperiment"));
    assert_eq!(st.current_step_index, Some(1));
    // As upstream: the inconclusive one is no longer current, so the step starts another
    // (the Rollout stays paused until promoted).
    assert_eq!(current_experiment(&w), Some(format!("{name}-1")));
    assert_eq!(w.experiments.len(), 2);
    w.promote();
    w.set_experiment_phase(&format!("{name}-1"), "Successful", "");
    w.settle();
    assert_eq!(w.status().current_step_index, Some(3));
    assert_eq!(w.status().phase.as_deref(), Some("Healthy"));
}

#[test]
fn abort_during_the_step_terminates_the_experiment() {
    let mut w = at_experiment_step();
    let name = w.experiments[0].name_any();
    w.set_experiment_phase(&name, "Running", "");
    w.settle();
    w.ro.status.as_mut().unwrap().abort = Some(true);
    let plan = w.plan();
    assert!(
        plan.effects
            .contains(&Effect::TerminateExperiment { name: name.clone() }),
        "{:?}",
        plan.effects
    );
    w.settle();
    assert_eq!(w.experiments[0].spec.terminate, Some(true));
    assert_eq!(current_experiment(&w), None);
    assert_eq!(w.status().phase.as_deref(), Some("Degraded"));
}

#[test]
fn a_new_update_during_the_step_terminates_the_experiment() {
    let mut w = at_experiment_step();
    let name = w.experiments[0].name_any();
    w.set_experiment_phase(&name, "Running", "");
    w.settle();
    w.set_image("demo:v3");
    w.settle();
    let old = w.experiments.iter().find(|e| e.name_any() == name).unwrap();
    assert_eq!(old.spec.terminate, Some(true));
    // The v3 update reached its own experiment step with a new Experiment.
    let st = w.status();
    assert_eq!(st.current_step_index, Some(1));
    let current = current_experiment(&w).unwrap();
    assert_ne!(current, name);
    assert!(current.contains(st.current_pod_hash.as_deref().unwrap()));
}

#[test]
fn retry_after_a_failed_experiment_creates_the_next_name() {
    let mut w = at_experiment_step();
    let name = w.experiments[0].name_any();
    w.set_experiment_phase(&name, "Failed", "");
    w.settle();
    // retry: clear the abort as `kubectl rollouts retry` does
    let st = w.ro.status.as_mut().unwrap();
    st.abort = None;
    st.aborted_at = None;
    w.settle();
    assert_eq!(current_experiment(&w), Some(format!("{name}-1")));
}

#[test]
fn experiment_weights_get_their_own_istio_destination_while_running() {
    let mut ro = rollout(
        4,
        json!([{"setWeight": 10},
               {"experiment": {"templates": [{"name": "exp", "specRef": "canary", "weight": 20}]}}]),
    );
    ro.spec.strategy = serde_json::from_value(json!({"canary": {
        "canaryService": "canary", "stableService": "stable",
        "trafficRouting": {"istio": {"virtualService": {"name": "vs", "routes": ["primary"]}}},
        "steps": ro.canary_steps()
    }}))
    .unwrap();
    let mut w = World::new(ro);
    let key = crate::traffic::istio::virtual_service_key("ns", "vs");
    w.traffic.insert(
        key.clone(),
        json!({
            "apiVersion": "networking.istio.io/v1alpha3", "kind": "VirtualService",
            "metadata": {"name": "vs", "namespace": "ns", "resourceVersion": "1"},
            "spec": {"hosts": ["demo"], "http": [{"name": "primary", "route": [
                {"destination": {"host": "stable"}, "weight": 100},
                {"destination": {"host": "canary"}, "weight": 0}
            ]}]}
        }),
    );
    w.settle();
    w.set_image("demo:v2");
    w.settle();
    let name = current_experiment(&w).unwrap();
    let t = &w.experiments[0].spec.templates.as_ref().unwrap()[0];
    assert!(t.service.is_some(), "a weight asks for a Service");
    let routes = |w: &World| -> Vec<(String, i64)> {
        w.traffic[&key]["spec"]["http"][0]["route"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["destination"]["host"].as_str().unwrap().to_string(),
                    r["weight"].as_i64().unwrap(),
                )
            })
            .collect()
    };
    assert_eq!(
        routes(&w),
        vec![("stable".into(), 90), ("canary".into(), 10)],
        "no destination before the Experiment runs"
    );
    // The Experiment controller runs it: its template Service and hash are in its status.
    let canary_hash = hash_of(&w, 1);
    let e = w
        .experiments
        .iter_mut()
        .find(|e| e.name_any() == name)
        .unwrap();
    e.status = serde_json::from_value(json!({"phase": "Running", "templateStatuses": [
        {"name": "exp", "status": "Running", "replicas": 1, "updatedReplicas": 1,
         "readyReplicas": 1, "availableReplicas": 1,
         "serviceName": "demo-exp-svc", "podTemplateHash": canary_hash}
    ]}))
    .unwrap();
    w.settle();
    assert_eq!(
        routes(&w),
        vec![
            ("stable".into(), 70),
            ("canary".into(), 10),
            ("demo-exp-svc".into(), 20)
        ]
    );
    assert!(
        w.events.iter().any(|e| e.reason == "TrafficWeightUpdated"
            && e.message
                == format!(
                    "Traffic weight updated additional: [{{20 demo-exp-svc {canary_hash}}}]"
                )),
        "{:?}",
        w.events
    );
    let weights = w.status().canary.unwrap().weights.unwrap();
    assert_eq!(weights.stable.unwrap().weight, Some(70));
    assert_eq!(weights.canary.unwrap().weight, Some(10));
    let add = weights.additional.unwrap();
    assert_eq!(add.len(), 1);
    assert_eq!(add[0].service_name.as_deref(), Some("demo-exp-svc"));
    assert_eq!(add[0].weight, Some(20));
    w.set_experiment_phase(&name, "Successful", "");
    w.settle();
    assert_eq!(
        routes(&w),
        vec![("stable".into(), 100), ("canary".into(), 0)],
        "the experiment's destination goes when the step ends"
    );
    assert_eq!(w.status().phase.as_deref(), Some("Healthy"));
    assert!(
        w.status()
            .canary
            .unwrap()
            .weights
            .unwrap()
            .additional
            .is_none()
    );
}

/// A Rollout with a weighted `experiment` step (step 1) and an Istio subset-level split (a
/// VirtualService `vs` and a DestinationRule `dr` with a subset of its own, `other`), updated
/// to revision 2, its Experiment just reported Running with its template Service
/// `demo-exp-svc`; the world has not planned since. Returns the Experiment's name.
fn subset_split_at_running_experiment() -> (World, String) {
    let mut ro = rollout(
        4,
        json!([{"setWeight": 10},
               {"experiment": {"templates": [{"name": "exp", "specRef": "canary", "weight": 20}]}}]),
    );
    ro.spec.strategy = serde_json::from_value(json!({"canary": {
        "trafficRouting": {"istio": {
            "virtualService": {"name": "vs", "routes": ["primary"]},
            "destinationRule": {"name": "dr", "canarySubsetName": "canary", "stableSubsetName": "stable"}}},
        "steps": ro.canary_steps()
    }}))
    .unwrap();
    let mut w = World::new(ro);
    let (vs_key, dr_key) = subset_split_keys();
    w.traffic.insert(
        vs_key.clone(),
        json!({
            "apiVersion": "networking.istio.io/v1alpha3", "kind": "VirtualService",
            "metadata": {"name": "vs", "namespace": "ns", "resourceVersion": "1"},
            "spec": {"hosts": ["demo"], "http": [{"name": "primary", "route": [
                {"destination": {"host": "demo", "subset": "stable"}, "weight": 100},
                {"destination": {"host": "demo", "subset": "canary"}, "weight": 0}
            ]}]}
        }),
    );
    w.traffic.insert(
        dr_key.clone(),
        json!({
            "apiVersion": "networking.istio.io/v1alpha3", "kind": "DestinationRule",
            "metadata": {"name": "dr", "namespace": "ns", "resourceVersion": "1"},
            "spec": {"host": "demo", "subsets": [
                {"name": "stable", "labels": {"app": "demo"}},
                {"name": "canary", "labels": {"app": "demo"}},
                {"name": "other", "labels": {"version": "x"}}
            ]}
        }),
    );
    w.settle();
    w.set_image("demo:v2");
    w.settle();
    let name = current_experiment(&w).unwrap();
    let e = w
        .experiments
        .iter_mut()
        .find(|e| e.name_any() == name)
        .unwrap();
    e.status = serde_json::from_value(json!({"phase": "Running", "templateStatuses": [
        {"name": "exp", "status": "Running", "replicas": 1, "updatedReplicas": 1,
         "readyReplicas": 1, "availableReplicas": 1,
         "serviceName": "demo-exp-svc", "podTemplateHash": "exphash"}
    ]}))
    .unwrap();
    (w, name)
}

fn subset_split_keys() -> (crate::traffic::ObjectKey, crate::traffic::ObjectKey) {
    (
        crate::traffic::istio::virtual_service_key("ns", "vs"),
        crate::traffic::istio::destination_rule_key("ns", "dr"),
    )
}

/// (host, subset, weight) of the destinations of `vs`'s first HTTP route.
fn subset_split_routes(w: &World) -> Vec<(String, String, i64)> {
    w.traffic[&subset_split_keys().0]["spec"]["http"][0]["route"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["destination"]["host"].as_str().unwrap().to_string(),
                r["destination"]["subset"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
                r["weight"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// (name, pod-template hash) of `dr`'s subsets.
fn subset_split_subsets(w: &World) -> Vec<(String, String)> {
    w.traffic[&subset_split_keys().1]["spec"]["subsets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["labels"][DEFAULT_ROLLOUT_UNIQUE_LABEL_KEY]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
            )
        })
        .collect()
}

#[test]
fn experiment_weights_with_a_subset_split_get_a_destination_and_a_subset() {
    let (mut w, name) = subset_split_at_running_experiment();
    w.settle();
    assert_eq!(
        subset_split_routes(&w),
        vec![
            ("demo".into(), "stable".into(), 70),
            ("demo".into(), "canary".into(), 10),
            ("demo-exp-svc".into(), "".into(), 20)
        ]
    );
    let (stable, canary) = (hash_of(&w, 0), hash_of(&w, 1));
    assert_eq!(
        subset_split_subsets(&w),
        vec![
            ("stable".into(), stable),
            ("canary".into(), canary.clone()),
            ("other".into(), "".into()),
            ("demo-exp-svc".into(), "exphash".into())
        ]
    );
    w.set_experiment_phase(&name, "Successful", "");
    w.settle();
    assert_eq!(w.status().phase.as_deref(), Some("Healthy"));
    assert_eq!(
        subset_split_routes(&w),
        vec![
            ("demo".into(), "stable".into(), 100),
            ("demo".into(), "canary".into(), 0)
        ],
        "the experiment's destination goes when the step ends"
    );
    assert_eq!(
        subset_split_subsets(&w),
        vec![
            ("stable".into(), canary.clone()),
            ("canary".into(), canary),
            ("other".into(), "".into())
        ],
        "its subset too; other subsets stay"
    );
}

#[test]
fn an_experiment_destination_is_recorded_before_it_is_routed_so_a_lost_status_write_leaks_nothing()
{
    // With a subset-level split, a destination of another host is the experiment's only by
    // `status.canary.weights.additional`. Had the plan that first sees the Experiment running
    // routed it and lost its status write (a user's command conflicting, a crash), the
    // destination would have stayed after the step.
    let (mut w, name) = subset_split_at_running_experiment();
    let recorded = w.status();
    let mut first = w.plan();
    let additional = first
        .status
        .canary
        .as_ref()
        .and_then(|c| c.weights.as_ref());
    let additional = additional
        .and_then(|w| w.additional.clone())
        .unwrap_or_default();
    assert_eq!(
        additional
            .iter()
            .map(|d| d.service_name.as_deref())
            .collect::<Vec<_>>(),
        vec![Some("demo-exp-svc")],
        "recorded by the first plan"
    );
    first.status = recorded;
    w.apply(first);
    assert!(
        !subset_split_routes(&w)
            .iter()
            .any(|(host, _, _)| host == "demo-exp-svc"),
        "routed before its record was written: {:?}",
        subset_split_routes(&w)
    );
    // The Experiment ends before the next plan (the user skipped the step, say).
    w.set_experiment_phase(&name, "Successful", "");
    w.settle();
    assert_eq!(
        subset_split_routes(&w),
        vec![
            ("demo".into(), "stable".into(), 100),
            ("demo".into(), "canary".into(), 0)
        ],
        "nothing left of the experiment"
    );
}

#[test]
fn experiment_weights_with_another_router_are_refused_naming_the_field() {
    let mut ro = rollout(
        2,
        json!([{"experiment": {"templates": [{"name": "exp", "specRef": "canary", "weight": 20}]}}]),
    );
    ro.spec.strategy = serde_json::from_value(json!({"canary": {
        "canaryService": "canary", "stableService": "stable",
        "trafficRouting": {"plugins": {"argoproj-labs/gatewayAPI": {"httpRoute": "route", "namespace": "ns"}}},
        "steps": ro.canary_steps()
    }}))
    .unwrap();
    let mut w = World::new(ro);
    w.settle();
    let (status, reason) = w.condition("InvalidSpec");
    assert_eq!((status.as_str(), reason.as_str()), ("True", "InvalidSpec"));
    let msg = w.status().message.unwrap_or_default();
    assert!(
        msg.contains("spec.strategy.canary.steps[0].experiment.templates[0].weight"),
        "{msg}"
    );
    assert!(w.rss.is_empty());
}

#[test]
fn experiment_without_weights_needs_no_traffic_routing() {
    // The corpus' basic experiment step: no traffic routing, Successful after its duration.
    let mut w = at_experiment_step();
    let plan = w.plan();
    assert_eq!(
        plan.status
            .conditions
            .iter()
            .flatten()
            .filter(|c| c.type_.as_deref() == Some("InvalidSpec"))
            .count(),
        0
    );
    let name = w.experiments[0].name_any();
    w.set_experiment_phase(&name, "Successful", "");
    w.settle();
    assert_eq!(w.status().current_step_index, Some(3));
}

#[test]
fn the_experiment_wait_reads_for_people() {
    let w = |name: &str, phase: &str| {
        Wait::Experiment {
            name: name.into(),
            phase: phase.into(),
        }
        .to_string()
    };
    assert_eq!(w("", ""), "experiment not created yet");
    assert_eq!(w("demo-1", ""), "experiment demo-1 has not started");
    assert_eq!(w("demo-1", "Running"), "experiment demo-1 is Running");
    assert_eq!(
        Wait::Experiment {
            name: "x".into(),
            phase: String::new()
        }
        .kind(),
        "Experiment"
    );
}

/// A controller killed between creating the step's Experiment and recording it left an
/// Experiment no status named; once it had ended, the next controller created `-1` and the
/// step ran twice. The name is now recorded first and the Experiment created by a later plan.
#[test]
fn experiment_is_recorded_before_it_is_created_so_a_crash_never_runs_the_step_twice() {
    let mut w = updated_to_experiment_step();
    let creates = |p: &Plan| {
        p.effects
            .iter()
            .filter(|e| matches!(e, Effect::CreateExperiment(_)))
            .count()
    };
    // Plans until the one that records the Experiment: it creates nothing yet.
    let mut recorded = None;
    for _ in 0..40 {
        let plan = w.plan();
        let name = plan
            .status
            .canary
            .as_ref()
            .and_then(|c| c.current_experiment.clone());
        if let Some(name) = name {
            assert_eq!(creates(&plan), 0, "recorded before it is created");
            recorded = Some(name);
            w.apply(plan);
            break;
        }
        w.apply(plan);
    }
    let name = recorded.expect("the step records its Experiment");
    // The next plan creates it under that name; the controller dies before anything else.
    let plan = w.plan();
    assert_eq!(creates(&plan), 1);
    let crashed = Plan {
        effects: plan.effects.clone(),
        status: w.status(),
        ..Default::default()
    };
    w.apply(crashed);
    assert_eq!(w.experiments.len(), 1);
    assert_eq!(w.experiments[0].name_any(), name);
    // It runs to its end before the next controller looks.
    assert!(w.set_experiment_phase(&name, "Successful", ""));
    w.settle();
    assert_eq!(w.experiments.len(), 1, "the step ran once");
    assert_eq!(w.status().phase.as_deref(), Some("Healthy"));
}
