//! Every gate's [`Wait`], through whole plans in the simulated world: what `kubectl-rollouts
//! get` prints and the controller logs.

use super::Wait;
use super::simulate::{World, rollout};
use crate::api::Rollout;
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

fn canary(replicas: i32, strategy: Value) -> Rollout {
    let mut ro = rollout(replicas, json!([]));
    ro.spec.strategy = serde_json::from_value(json!({ "canary": strategy })).unwrap();
    ro
}

fn blue_green(replicas: i32, extra: Value) -> Rollout {
    let mut strategy = json!({"activeService": "active", "previewService": "preview"});
    if let (Some(s), Some(e)) = (strategy.as_object_mut(), extra.as_object()) {
        s.extend(e.clone());
    }
    let mut ro = rollout(replicas, json!(null));
    ro.spec.strategy = serde_json::from_value(json!({"blueGreen": strategy})).unwrap();
    ro
}

fn template(name: &str) -> crate::api::AnalysisTemplate {
    serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisTemplate",
        "metadata": {"name": name, "namespace": "ns"},
        "spec": {"metrics": [{"name": "m", "interval": "10s", "successCondition": "true",
                              "provider": {"prometheus": {"address": "http://prom", "query": "up"}}}]}
    }))
    .unwrap()
}

/// Settles the world with the new version's pods capped at `most` available.
fn settle_capped(w: &mut World, most: i32) {
    for _ in 0..100 {
        let plan = w.plan();
        let wrote = w.apply(plan);
        w.cap_available(&w.status().current_pod_hash.unwrap_or_default(), most);
        if !wrote {
            return;
        }
    }
    panic!("no fixpoint: {:#?}", w.status());
}

/// The new version's pods all become available.
fn uncap(w: &mut World) {
    let hash = w.status().current_pod_hash.unwrap_or_default();
    w.cap_available(&hash, i32::MAX);
    for rs in &mut w.rss {
        let is_new = rs
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("rollouts-pod-template-hash"))
            == Some(&hash);
        let spec = rs.spec.as_ref().and_then(|s| s.replicas);
        if let (true, Some(st)) = (is_new, rs.status.as_mut()) {
            st.available_replicas = spec;
            st.ready_replicas = spec;
        }
    }
}

fn wait(w: &World) -> Option<Wait> {
    w.plan().wait
}

#[test]
fn a_healthy_rollout_waits_for_nothing() {
    let mut w = World::new(rollout(3, json!([{"setWeight": 50}, {"pause": {}}])));
    w.settle();
    assert_eq!(w.status().phase.as_deref(), Some("Healthy"));
    assert_eq!(wait(&w), None);
}

#[test]
fn canary_gates() {
    let steps = json!([{"setWeight": 50}, {"pause": {}}, {"pause": {"duration": 30}}]);
    let mut w = World::new(rollout(4, steps));
    w.settle();
    w.set_image("demo:v2");
    // setWeight 50 of 4 wants 2 canary pods; none comes up.
    settle_capped(&mut w, 0);
    assert_eq!(w.status().current_step_index, Some(0));
    assert_eq!(
        wait(&w),
        // The stable stays at 3 (maxUnavailable 1) until the canary's pods are available.
        Some(Wait::Replicas {
            canary: (0, 2),
            stable: (3, 3)
        })
    );
    assert_eq!(wait(&w).unwrap().to_string(), "canary 0/2 available");
    // The pods come up: the indefinite pause.
    uncap(&mut w);
    w.settle();
    assert_eq!(w.status().current_step_index, Some(1));
    assert_eq!(wait(&w), Some(Wait::Indefinite));
    assert_eq!(wait(&w).unwrap().to_string(), "paused, waits for promote");
    // Promoted: a timed pause until its deadline.
    w.promote();
    w.settle();
    assert_eq!(w.status().current_step_index, Some(2));
    let until = Timestamp::from_second(w.now.as_second() + 30).unwrap();
    assert_eq!(wait(&w), Some(Wait::PauseUntil(until)));
    assert_eq!(
        wait(&w).unwrap().describe(w.now),
        format!("paused for 30s more (until {until})")
    );
    // The user's pause wins over the step.
    w.ro.spec.paused = Some(true);
    assert_eq!(wait(&w), Some(Wait::UserPaused));
    w.ro.spec.paused = None;
    // An abort.
    let mut st = w.status();
    st.abort = Some(true);
    w.ro.status = Some(st);
    w.settle();
    assert_eq!(wait(&w), Some(Wait::Aborted));
}

#[test]
fn a_canary_past_its_steps_waits_for_all_its_pods() {
    let mut w = World::new(rollout(4, json!([{"setWeight": 50}])));
    w.settle();
    w.set_image("demo:v2");
    settle_capped(&mut w, 3);
    assert_eq!(w.status().current_step_index, Some(1));
    let Some(Wait::Replicas { canary, .. }) = wait(&w) else {
        panic!("{:?}", wait(&w));
    };
    assert_eq!(canary, (3, 4));
}

#[test]
fn analysis_gate_names_the_run_and_its_phase() {
    let mut w = World::new(rollout(
        4,
        json!([{"setWeight": 50}, {"analysis": {"templates": [{"templateName": "t"}]}}]),
    ));
    w.templates.push(template("t"));
    w.settle();
    w.set_image("demo:v2");
    w.settle();
    let run = w
        .status()
        .canary
        .and_then(|c| c.current_step_analysis_run_status)
        .and_then(|s| s.name)
        .unwrap();
    assert_eq!(
        wait(&w),
        Some(Wait::Analysis {
            run: run.clone(),
            phase: String::new()
        })
    );
    assert!(w.set_run_phase("demo-", "Running", ""));
    w.settle();
    assert_eq!(
        wait(&w),
        Some(Wait::Analysis {
            run: run.clone(),
            phase: "Running".into()
        })
    );
    assert_eq!(
        wait(&w).unwrap().to_string(),
        format!("analysis run {run} is Running")
    );
    // Inconclusive pauses, naming the run.
    assert!(w.set_run_phase("demo-", "Inconclusive", ""));
    w.settle();
    assert_eq!(
        wait(&w),
        Some(Wait::Analysis {
            run,
            phase: "Inconclusive".into()
        })
    );
}

#[test]
fn blocked_and_invalid_rollouts_say_so() {
    // A VirtualService that does not exist blocks the update.
    let mut w = World::new(canary(
        2,
        json!({"canaryService": "canary", "stableService": "stable",
               "trafficRouting": {"istio": {"virtualService": {"name": "vs", "routes": ["primary"]}}},
               "steps": [{"setWeight": 50}]}),
    ));
    w.settle();
    let Some(Wait::TrafficBlocked(msg)) = wait(&w) else {
        panic!("{:?}", wait(&w));
    };
    assert!(msg.contains("vs"), "{msg}");
    // An invalid spec.
    let w = World::new(canary(2, json!({"steps": [{"setWeight": 150}]})));
    let Some(Wait::InvalidSpec(msg)) = wait(&w) else {
        panic!("{:?}", wait(&w));
    };
    assert!(msg.contains("setWeight"), "{msg}");
    // A missing AnalysisTemplate.
    let mut w = World::new(rollout(
        2,
        json!([{"setWeight": 50}, {"analysis": {"templates": [{"templateName": "nope"}]}}]),
    ));
    w.settle();
    w.set_image("demo:v2");
    w.settle();
    let Some(Wait::InvalidSpec(msg)) = wait(&w) else {
        panic!("{:?}", wait(&w));
    };
    assert!(msg.contains("nope"), "{msg}");
}

#[test]
fn blue_green_gates() {
    let mut w = World::new(blue_green(
        3,
        json!({"autoPromotionEnabled": false,
               "prePromotionAnalysis": {"templates": [{"templateName": "t"}]}}),
    ));
    w.templates.push(template("t"));
    w.settle();
    w.set_image("demo:v2");
    // The preview's pods do not come up.
    settle_capped(&mut w, 1);
    assert_eq!(
        wait(&w),
        Some(Wait::Replicas {
            canary: (1, 3),
            stable: (3, 3)
        })
    );
    // They do: the pre-promotion analysis runs first.
    uncap(&mut w);
    w.settle();
    assert!(
        matches!(wait(&w), Some(Wait::Analysis { .. })),
        "{:?}",
        wait(&w)
    );
    assert!(w.set_run_phase("demo-", "Successful", ""));
    w.settle();
    // Then the manual pause.
    assert_eq!(wait(&w), Some(Wait::Indefinite));
    w.promote();
    w.settle();
    assert_eq!(w.status().phase.as_deref(), Some("Healthy"));
    assert_eq!(wait(&w), None);
}

#[test]
fn blue_green_auto_promotion_waits_until_its_deadline() {
    let mut w = World::new(blue_green(2, json!({"autoPromotionSeconds": 20})));
    w.settle();
    w.set_image("demo:v2");
    w.settle();
    let Some(Wait::PauseUntil(until)) = wait(&w) else {
        panic!("{:?}", wait(&w));
    };
    assert_eq!(until.as_second(), w.now.as_second() + 20);
    w.advance(21);
    w.settle();
    assert_eq!(wait(&w), None);
}
