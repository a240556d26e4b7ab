//! Planner scenarios run to a fixpoint in the simulated world ([`super::simulate`]): the step,
//! the pod counts and the status upstream would show.

use super::simulate::{World, rollout};
use super::*;
use crate::api::consts::DEFAULT_ROLLOUT_UNIQUE_LABEL_KEY;
use kube_core::ResourceExt;
use serde_json::json;

fn seeds() -> serde_json::Value {
    json!([
        {"setWeight": 20}, {"pause": {}},
        {"setWeight": 40}, {"pause": {"duration": "10s"}},
        {"setWeight": 60}, {"pause": {"duration": 10}},
        {"setWeight": 80}, {"pause": {"duration": "10s"}}
    ])
}

#[test]
fn initial_deploy_skips_steps_and_is_healthy() {
    let mut w = World::new(rollout(5, seeds()));
    w.settle();
    let st = w.status();
    assert_eq!(w.rss.len(), 1);
    assert_eq!(st.current_step_index, Some(8));
    assert_eq!(st.stable_rs, st.current_pod_hash);
    assert_eq!(st.phase.as_deref(), Some("Healthy"), "{st:#?}");
    assert_eq!(st.available_replicas, Some(5));
    assert_eq!(st.hpa_replicas, Some(5));
    assert_eq!(st.selector.as_deref(), Some("app=demo"));
    assert_eq!(st.observed_generation.as_deref(), Some("1"));
    assert_eq!(
        w.condition("Healthy"),
        ("True".into(), "RolloutHealthy".into())
    );
    assert_eq!(
        w.condition("Completed"),
        ("True".into(), "RolloutCompleted".into())
    );
    assert_eq!(
        w.condition("Available"),
        ("True".into(), "AvailableReason".into())
    );
    assert_eq!(
        w.condition("Progressing"),
        ("True".into(), "NewReplicaSetAvailable".into())
    );
    assert!(w.has_event("NewReplicaSetCreated") && w.has_event("RolloutCompleted"));
    // The RS as upstream names and labels it.
    let rs = &w.rss[0];
    let hash = st.current_pod_hash.clone().unwrap();
    assert_eq!(rs.name_any(), format!("demo-{hash}"));
    assert_eq!(
        rs.annotations()
            .get("rollout.argoproj.io/revision")
            .map(String::as_str),
        Some("1")
    );
    assert_eq!(
        rs.annotations()
            .get("rollout.argoproj.io/desired-replicas")
            .map(String::as_str),
        Some("5")
    );
    assert_eq!(rs.owner_references()[0].controller, Some(true));
    assert_eq!(
        rs.spec
            .as_ref()
            .unwrap()
            .selector
            .match_labels
            .as_ref()
            .unwrap()
            .get(DEFAULT_ROLLOUT_UNIQUE_LABEL_KEY),
        Some(&hash)
    );
    // At the fixpoint, a plan writes nothing.
    let before = w.writes;
    let p = w.plan();
    assert!(p.effects.is_empty(), "{:?}", p.effects);
    assert!(!w.apply(p));
    assert_eq!(w.writes, before);
}

#[test]
fn seeds_scenario_step_by_step() {
    let mut w = World::new(rollout(5, seeds()));
    w.settle();
    let v1 = w.status().stable_rs.unwrap();
    w.set_image("demo:v2");
    w.settle();
    let st = w.status();
    assert_eq!(st.current_step_index, Some(1));
    assert_eq!(st.phase.as_deref(), Some("Paused"));
    assert_eq!(st.message.as_deref(), Some("CanaryPauseStep"));
    assert_eq!(st.controller_pause, Some(true));
    assert_eq!(w.counts(), (1, 4), "20% of 5");
    assert_eq!(
        w.condition("Paused"),
        ("True".into(), "RolloutPaused".into())
    );
    assert_eq!(
        w.condition("Progressing"),
        ("Unknown".into(), "RolloutPaused".into())
    );
    assert_eq!(w.condition("Completed").0, "False");
    assert!(w.has_event("RolloutPaused") && w.has_event("RolloutStepCompleted"));
    // Time passing does not end an indefinite pause.
    w.advance(3600);
    assert_eq!(w.settle(), 0);
    w.promote();
    w.settle();
    let st = w.status();
    assert_eq!(st.current_step_index, Some(3), "paused for 10s at step 3");
    assert_eq!(w.counts(), (2, 3), "40% of 5");
    let plan = w.plan();
    assert_eq!(
        plan.requeue_after,
        Some(Duration::from_secs(10)),
        "requeue at the exact deadline"
    );
    w.advance(9);
    w.settle();
    assert_eq!(w.status().current_step_index, Some(3), "not yet");
    w.advance(1);
    w.settle();
    assert_eq!(w.status().current_step_index, Some(5));
    assert_eq!(w.counts(), (3, 2), "60% of 5");
    w.advance(10);
    w.settle();
    assert_eq!(w.status().current_step_index, Some(7));
    assert_eq!(w.counts(), (4, 1), "80% of 5");
    w.advance(10);
    w.settle();
    let st = w.status();
    assert_eq!(st.current_step_index, Some(8));
    assert_eq!(st.phase.as_deref(), Some("Healthy"), "{st:#?}");
    assert_ne!(st.stable_rs.as_deref(), Some(v1.as_str()));
    assert_eq!(w.spec_of(&v1), 0, "old RS scaled to 0");
    assert_eq!(w.counts(), (5, 0));
    assert!(w.has_event("RolloutResumed"));
    assert_eq!(
        w.ro.annotations()
            .get("rollout.argoproj.io/revision")
            .map(String::as_str),
        Some("2")
    );
}

#[test]
fn abort_scales_back_and_retry_restarts_steps() {
    let mut w = World::new(rollout(5, seeds()));
    w.settle();
    w.set_image("demo:v2");
    w.settle();
    assert_eq!(w.counts(), (1, 4));
    w.ro.status.as_mut().unwrap().abort = Some(true);
    w.settle();
    let st = w.status();
    assert_eq!(st.phase.as_deref(), Some("Degraded"));
    assert_eq!(
        st.message.as_deref(),
        Some("RolloutAborted: Rollout aborted update to revision 2")
    );
    assert_eq!(st.current_step_index, Some(0));
    assert!(st.pause_conditions.is_none() && st.aborted_at.is_some());
    assert_eq!(w.counts(), (0, 5));
    assert_eq!(
        w.condition("Progressing"),
        ("False".into(), "RolloutAborted".into())
    );
    assert!(
        w.events
            .iter()
            .any(|e| e.reason == "RolloutAborted" && e.warning)
    );
    // retry
    w.ro.status.as_mut().unwrap().abort = Some(false);
    w.settle();
    let st = w.status();
    assert_eq!(st.abort, None);
    assert_eq!(st.current_step_index, Some(1));
    assert_eq!(st.phase.as_deref(), Some("Paused"));
    assert_eq!(w.counts(), (1, 4));
    assert!(w.has_event("RolloutRetry"));
}

#[test]
fn promote_full_skips_remaining_steps() {
    let mut w = World::new(rollout(5, seeds()));
    w.settle();
    w.set_image("demo:v2");
    w.settle();
    w.ro.status.as_mut().unwrap().promote_full = Some(true);
    w.settle();
    let st = w.status();
    assert_eq!(st.phase.as_deref(), Some("Healthy"), "{st:#?}");
    assert_eq!(st.current_step_index, Some(8));
    assert_eq!(st.promote_full, None);
    assert_eq!(w.counts(), (5, 0));
}

#[test]
fn reverting_to_stable_is_a_fast_rollback() {
    let mut w = World::new(rollout(5, seeds()));
    w.settle();
    w.set_image("demo:v2");
    w.settle();
    assert_eq!(w.status().current_step_index, Some(1));
    w.set_image("demo:v1");
    w.settle();
    let st = w.status();
    assert_eq!(st.phase.as_deref(), Some("Healthy"), "{st:#?}");
    assert_eq!(st.current_step_index, Some(8));
    assert!(w.has_event("SkipSteps"));
    assert_eq!(w.counts(), (5, 0));
    assert_eq!(w.rss.len(), 2, "no third ReplicaSet");
}

#[test]
fn canary_without_steps_is_a_rolling_update() {
    let mut w = World::new(rollout(4, json!(null)));
    w.settle();
    w.set_image("demo:v2");
    w.settle();
    let st = w.status();
    assert_eq!(st.phase.as_deref(), Some("Healthy"), "{st:#?}");
    assert_eq!(st.current_step_index, None);
    assert_eq!(w.counts(), (4, 0));
}

#[test]
fn a_template_change_resets_the_status_and_creates_the_replica_set_in_one_plan() {
    let mut w = World::new(rollout(4, seeds()));
    w.settle();
    let stable = w.status().stable_rs.clone();
    w.set_image("demo:v2");
    let plan = w.plan();
    let created: Vec<&str> = plan
        .effects
        .iter()
        .filter_map(|e| match e {
            Effect::CreateReplicaSet(rs) => rs.metadata.name.as_deref(),
            _ => None,
        })
        .collect();
    assert_eq!(created.len(), 1, "{:#?}", plan.effects);
    let hash = plan.status.current_pod_hash.clone().unwrap();
    assert!(created[0].ends_with(&hash), "{created:?} vs {hash}");
    assert_ne!(Some(hash), stable);
    assert_eq!(plan.status.current_step_index, Some(0));
    // The reset's events and the creation's, once each.
    let reasons: Vec<&str> = plan.events.iter().map(|e| e.reason.as_str()).collect();
    assert!(reasons.contains(&"NewReplicaSetCreated"), "{reasons:?}");
    let mut unique = reasons.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), reasons.len(), "{reasons:?}");
    // Back to the stable template mid-update: its ReplicaSet exists, and upstream's two
    // reconciles (sync its revision, then the rest) are kept.
    w.apply(plan);
    w.settle();
    w.set_image("demo:v1");
    let plan = w.plan();
    assert!(
        plan.effects
            .iter()
            .all(|e| !matches!(e, Effect::CreateReplicaSet(_))),
        "{:#?}",
        plan.effects
    );
    w.settle();
    assert_eq!(w.status().phase.as_deref(), Some("Healthy"));
    assert_eq!(w.rss.len(), 2, "no third ReplicaSet");
}

#[test]
fn availability_never_drops_below_max_unavailable() {
    // maxSurge 0, maxUnavailable 1: every intermediate state keeps >= 4 of 5 available.
    let mut ro = rollout(5, json!([{"setWeight": 60}, {"pause": {}}]));
    ro.spec
        .strategy
        .as_mut()
        .unwrap()
        .canary
        .as_mut()
        .unwrap()
        .max_surge = Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(0));
    ro.spec
        .strategy
        .as_mut()
        .unwrap()
        .canary
        .as_mut()
        .unwrap()
        .max_unavailable = Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(1));
    let mut w = World::new(ro);
    w.settle();
    w.set_image("demo:v2");
    for _ in 0..50 {
        let p = w.plan();
        if !w.apply(p) {
            break;
        }
        let (available, total) = (w.available_pods(), w.total_pods());
        assert!(available >= 4, "availability fell to {available}");
        assert!(total <= 5, "surged to {total} pods");
    }
    assert_eq!(w.counts(), (3, 2));
    assert_eq!(w.status().phase.as_deref(), Some("Paused"));
}

#[test]
fn bad_canary_times_out_then_aborts() {
    let mut ro = rollout(4, json!([{"setWeight": 50}, {"pause": {}}]));
    ro.spec.progress_deadline_seconds = Some(30);
    ro.spec.progress_deadline_abort = Some(true);
    let mut w = World::new(ro);
    w.settle();
    w.options.unavailable_images.insert("demo:v2-bad".into());
    w.set_image("demo:v2-bad");
    w.settle();
    assert_eq!(w.status().phase.as_deref(), Some("Progressing"));
    let p = w.plan();
    assert!(
        p.requeue_after
            .is_some_and(|d| d <= Duration::from_secs(31)),
        "{:?}",
        p.requeue_after
    );
    w.advance(31);
    w.settle();
    let st = w.status();
    assert_eq!(st.abort, Some(true), "{st:#?}");
    assert_eq!(st.phase.as_deref(), Some("Degraded"));
    assert_eq!(w.counts().1, 4, "stable back to full");
}

#[test]
fn paused_rollout_does_not_time_out() {
    let mut ro = rollout(4, json!([{"setWeight": 50}, {"pause": {}}]));
    ro.spec.progress_deadline_seconds = Some(30);
    let mut w = World::new(ro);
    w.settle();
    w.set_image("demo:v2");
    w.settle();
    assert_eq!(w.status().phase.as_deref(), Some("Paused"));
    w.advance(3600);
    w.settle();
    assert_eq!(w.status().phase.as_deref(), Some("Paused"));
}

#[test]
fn spec_paused_holds_the_step() {
    let mut w = World::new(rollout(4, json!([{"setWeight": 50}, {"setWeight": 75}])));
    w.settle();
    w.ro.spec.paused = Some(true);
    w.set_image("demo:v2");
    w.settle();
    let st = w.status();
    assert_eq!(st.phase.as_deref(), Some("Paused"));
    assert_eq!(st.message.as_deref(), Some("manually paused"));
    assert_eq!(st.current_step_index, Some(0));
    w.ro.spec.paused = None;
    w.settle();
    assert_eq!(w.status().phase.as_deref(), Some("Healthy"));
}

#[test]
fn invalid_spec_writes_only_the_condition() {
    let mut w = World::new(rollout(4, json!([{"setWeight": 150}])));
    w.settle();
    assert!(w.rss.is_empty());
    let st = w.status();
    assert_eq!(st.phase.as_deref(), Some("Degraded"));
    let msg = st.message.unwrap();
    assert!(
        msg.starts_with(
            "InvalidSpec: The Rollout \"demo\" is invalid: spec.strategy.steps[0].setWeight"
        ),
        "{msg}"
    );
    assert!(
        w.events
            .iter()
            .any(|e| e.warning && e.reason == "InvalidSpec")
    );
    let p = w.plan();
    assert_eq!(p.requeue_after, Some(status::INVALID_SPEC_REQUEUE));
}

#[test]
fn revision_history_limit_deletes_oldest_scaled_down() {
    let mut ro = rollout(2, json!(null));
    ro.spec.revision_history_limit = Some(1);
    let mut w = World::new(ro);
    w.settle();
    for v in 2..=4 {
        w.set_image(&format!("demo:v{v}"));
        w.settle();
    }
    // current + 1 old kept
    assert_eq!(
        w.rss.len(),
        2,
        "{:?}",
        w.rss.iter().map(|r| r.name_any()).collect::<Vec<_>>()
    );
}

#[test]
fn scaling_event_resizes_without_moving_steps() {
    let mut w = World::new(rollout(4, json!([{"setWeight": 50}, {"pause": {}}])));
    w.settle();
    w.set_image("demo:v2");
    w.settle();
    assert_eq!(w.counts(), (2, 2));
    w.ro.spec.replicas = Some(8);
    w.settle();
    assert_eq!(w.counts(), (4, 4));
    assert_eq!(w.status().current_step_index, Some(1));
    assert_eq!(w.status().hpa_replicas, Some(8));
}

#[test]
fn step_hash_matches_and_steps_change_resets() {
    let mut w = World::new(rollout(4, json!([{"setWeight": 50}, {"pause": {}}])));
    w.settle();
    w.set_image("demo:v2");
    w.settle();
    assert_eq!(w.status().current_step_index, Some(1));
    // Editing the steps mid-update restarts them.
    w.ro.spec
        .strategy
        .as_mut()
        .unwrap()
        .canary
        .as_mut()
        .unwrap()
        .steps = serde_json::from_value(json!([{"setWeight": 25}, {"pause": {}}])).unwrap();
    w.settle();
    assert_eq!(w.status().current_step_index, Some(1));
    assert_eq!(w.counts(), (1, 3));
}

fn blue_green(replicas: i32, extra: serde_json::Value) -> Rollout {
    let mut strategy = json!({"activeService": "active", "previewService": "preview"});
    if let (Some(s), Some(e)) = (strategy.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            s.insert(k.clone(), v.clone());
        }
    }
    let mut ro = rollout(replicas, json!(null));
    ro.spec.strategy = serde_json::from_value(json!({"blueGreen": strategy})).unwrap();
    ro
}

fn selectors(w: &World) -> (Option<String>, Option<String>) {
    let b = w.status().blue_green.unwrap_or_default();
    (b.active_selector, b.preview_selector)
}

pub(super) fn svc_hash(w: &World, name: &str) -> Option<String> {
    w.services
        .iter()
        .find(|s| s.name_any() == name)
        .and_then(|s| {
            s.spec
                .as_ref()?
                .selector
                .as_ref()?
                .get(DEFAULT_ROLLOUT_UNIQUE_LABEL_KEY)
                .cloned()
        })
}

#[test]
fn blue_green_initial_deploy_points_both_services_at_it() {
    let mut w = World::new(blue_green(3, json!({"autoPromotionEnabled": false})));
    w.settle();
    let st = w.status();
    let h = st.current_pod_hash.clone().unwrap();
    assert_eq!(st.stable_rs.as_deref(), Some(h.as_str()));
    assert_eq!(selectors(&w), (Some(h.clone()), Some(h.clone())));
    assert_eq!(svc_hash(&w, "active").as_deref(), Some(h.as_str()));
    assert_eq!(st.phase.as_deref(), Some("Healthy"), "{st:#?}");
    assert_eq!(st.current_step_hash, None);
    assert_eq!(st.hpa_replicas, Some(3));
}

#[test]
fn blue_green_manual_promotion_and_scale_down_delay() {
    let mut w = World::new(blue_green(3, json!({"autoPromotionEnabled": false})));
    w.settle();
    let v1 = w.status().stable_rs.unwrap();
    w.set_image("demo:v2");
    w.settle();
    let st = w.status();
    let v2 = st.current_pod_hash.clone().unwrap();
    assert_ne!(v1, v2);
    assert_eq!(st.phase.as_deref(), Some("Paused"), "{st:#?}");
    assert_eq!(st.message.as_deref(), Some("BlueGreenPause"));
    assert_eq!(
        selectors(&w),
        (Some(v1.clone()), Some(v2.clone())),
        "preview on new, active on stable"
    );
    assert_eq!((w.spec_of(&v1), w.spec_of(&v2)), (3, 3));
    // Waiting changes nothing.
    w.advance(600);
    assert_eq!(w.settle(), 0);
    assert_eq!(svc_hash(&w, "active").as_deref(), Some(v1.as_str()));
    w.promote();
    w.settle();
    let st = w.status();
    assert_eq!(svc_hash(&w, "active").as_deref(), Some(v2.as_str()));
    assert_eq!(st.stable_rs.as_deref(), Some(v2.as_str()));
    assert_eq!(st.phase.as_deref(), Some("Healthy"), "{st:#?}");
    assert!(w.has_event("RolloutCompleted") && w.has_event("SwitchService"));
    // The previous active stays up for scaleDownDelaySeconds (30 s by default).
    assert_eq!(w.spec_of(&v1), 3);
    w.advance(29);
    w.settle();
    assert_eq!(w.spec_of(&v1), 3);
    w.advance(2);
    w.settle();
    assert_eq!(w.spec_of(&v1), 0, "scaled down after the delay");
}

#[test]
fn blue_green_auto_promotion_seconds() {
    let mut w = World::new(blue_green(2, json!({"autoPromotionSeconds": 10})));
    w.settle();
    w.set_image("demo:v2");
    w.settle();
    let v2 = w.status().current_pod_hash.unwrap();
    assert_eq!(w.status().phase.as_deref(), Some("Paused"));
    assert_eq!(w.plan().requeue_after, Some(Duration::from_secs(10)));
    w.advance(10);
    w.settle();
    assert_eq!(svc_hash(&w, "active").as_deref(), Some(v2.as_str()));
    assert_eq!(w.status().stable_rs.as_deref(), Some(v2.as_str()));
}

#[test]
fn blue_green_auto_promotion_by_default() {
    let mut w = World::new(blue_green(2, json!({})));
    w.settle();
    w.set_image("demo:v2");
    w.settle();
    let st = w.status();
    assert_eq!(st.phase.as_deref(), Some("Healthy"), "{st:#?}");
    assert_eq!(svc_hash(&w, "active"), st.current_pod_hash);
}

#[test]
fn blue_green_preview_replica_count_scales_up_before_switching() {
    let mut w = World::new(blue_green(
        4,
        json!({"autoPromotionEnabled": false, "previewReplicaCount": 1}),
    ));
    w.settle();
    let v1 = w.status().stable_rs.unwrap();
    w.set_image("demo:v2");
    w.settle();
    let v2 = w.status().current_pod_hash.unwrap();
    assert_eq!(w.spec_of(&v2), 1, "preview runs with previewReplicaCount");
    assert_eq!(w.status().phase.as_deref(), Some("Paused"));
    w.promote();
    w.settle();
    assert_eq!(w.spec_of(&v2), 4, "scaled to full before the switch");
    assert_eq!(svc_hash(&w, "active").as_deref(), Some(v2.as_str()));
    assert_eq!(w.status().stable_rs.as_deref(), Some(v2.as_str()));
    assert_eq!(w.spec_of(&v1), 4, "old kept during the scale-down delay");
}

#[test]
fn blue_green_abort_keeps_active_on_stable_and_scales_preview_down_after_delay() {
    let mut w = World::new(blue_green(
        2,
        json!({"autoPromotionEnabled": false, "abortScaleDownDelaySeconds": 5}),
    ));
    w.settle();
    let v1 = w.status().stable_rs.unwrap();
    w.set_image("demo:v2");
    w.settle();
    let v2 = w.status().current_pod_hash.unwrap();
    w.ro.status.as_mut().unwrap().abort = Some(true);
    w.settle();
    let st = w.status();
    assert_eq!(st.phase.as_deref(), Some("Degraded"), "{st:#?}");
    assert_eq!(svc_hash(&w, "active").as_deref(), Some(v1.as_str()));
    assert_eq!(
        w.spec_of(&v2),
        2,
        "preview kept for abortScaleDownDelaySeconds"
    );
    w.advance(6);
    w.settle();
    assert_eq!(w.spec_of(&v2), 0);
    assert_eq!(svc_hash(&w, "active").as_deref(), Some(v1.as_str()));
}

#[test]
fn blue_green_never_switches_active_to_unavailable_pods() {
    let mut w = World::new(blue_green(2, json!({})));
    w.settle();
    let v1 = w.status().stable_rs.unwrap();
    w.options.unavailable_images.insert("demo:v2-bad".into());
    w.set_image("demo:v2-bad");
    w.settle();
    w.advance(3600);
    w.settle();
    assert_eq!(svc_hash(&w, "active").as_deref(), Some(v1.as_str()));
    let st = w.status();
    assert_eq!(
        st.phase.as_deref(),
        Some("Degraded"),
        "progress deadline: {st:#?}"
    );
}

fn istio_rollout(replicas: i32, steps: serde_json::Value) -> Rollout {
    let mut ro = rollout(replicas, steps.clone());
    ro.spec.strategy = serde_json::from_value(json!({"canary": {
        "canaryService": "canary", "stableService": "stable",
        "trafficRouting": {"istio": {"virtualService": {"name": "vs", "routes": ["primary"]}}},
        "steps": steps
    }}))
    .unwrap();
    ro
}

pub(super) fn with_vs(w: &mut World) {
    let key = crate::traffic::istio::virtual_service_key("ns", "vs");
    let vs = json!({
        "apiVersion": "networking.istio.io/v1alpha3", "kind": "VirtualService",
        "metadata": {"name": "vs", "namespace": "ns", "resourceVersion": "1"},
        "spec": {"hosts": ["demo"], "http": [{"name": "primary", "route": [
            {"destination": {"host": "stable"}, "weight": 100},
            {"destination": {"host": "canary"}, "weight": 0}
        ]}]}
    });
    w.traffic.insert(key, vs);
}

pub(super) fn vs_weights(w: &World) -> (i64, i64) {
    let key = crate::traffic::istio::virtual_service_key("ns", "vs");
    let routes = &w.traffic[&key]["spec"]["http"][0]["route"];
    let weight_of = |host: &str| {
        routes
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["destination"]["host"] == host)
            .and_then(|r| r["weight"].as_i64())
            .unwrap_or(0)
    };
    (weight_of("canary"), weight_of("stable"))
}

fn status_weights(w: &World) -> Option<(i32, i32)> {
    let weights = w.status().canary?.weights?;
    Some((weights.canary?.weight?, weights.stable?.weight?))
}

#[test]
fn istio_canary_moves_weights_step_by_step() {
    let mut w = World::new(istio_rollout(
        5,
        json!([{"setWeight": 20}, {"pause": {}}, {"setWeight": 50}, {"pause": {"duration": 5}}]),
    ));
    with_vs(&mut w);
    w.settle();
    assert_eq!(w.status().phase.as_deref(), Some("Healthy"));
    assert_eq!(vs_weights(&w), (0, 100));
    assert_eq!(status_weights(&w), Some((0, 100)));
    w.set_image("demo:v2");
    w.settle();
    let st = w.status();
    assert_eq!(st.phase.as_deref(), Some("Paused"), "{st:#?}");
    assert_eq!(vs_weights(&w), (20, 80));
    assert_eq!(status_weights(&w), Some((20, 80)));
    // Pods and traffic are decoupled: 1 canary pod (20% of 5, rounded up), stable stays at 5.
    let canary = st.current_pod_hash.clone().unwrap();
    let stable = st.stable_rs.clone().unwrap();
    assert_eq!((w.spec_of(&canary), w.spec_of(&stable)), (1, 5));
    w.promote();
    w.settle();
    assert_eq!(vs_weights(&w), (50, 50));
    assert_eq!(w.spec_of(&canary), 3);
    w.advance(5);
    w.settle();
    let st = w.status();
    assert_eq!(st.phase.as_deref(), Some("Healthy"), "{st:#?}");
    assert_eq!(
        vs_weights(&w),
        (0, 100),
        "all traffic on the stable Service (now the new version)"
    );
    assert_eq!(st.stable_rs.as_deref(), Some(canary.as_str()));
    // The previous stable stays up for scaleDownDelaySeconds (30 s).
    assert_eq!(w.spec_of(&stable), 5);
    w.advance(31);
    w.settle();
    assert_eq!(w.spec_of(&stable), 0);
    assert!(w.has_event("TrafficWeightUpdated"));
    // Steady state: no writes.
    let p = w.plan();
    assert!(p.effects.is_empty(), "{:?}", p.effects);
}

#[test]
fn istio_abort_sets_weight_zero_before_any_scale_down() {
    let mut w = World::new(istio_rollout(4, json!([{"setWeight": 50}, {"pause": {}}])));
    with_vs(&mut w);
    w.settle();
    w.set_image("demo:v2");
    w.settle();
    assert_eq!(vs_weights(&w), (50, 50));
    let canary = w.status().current_pod_hash.unwrap();
    w.ro.status.as_mut().unwrap().abort = Some(true);
    let plan = w.plan();
    let first_traffic = plan
        .effects
        .iter()
        .position(|e| matches!(e, Effect::Traffic(_)));
    let first_scale_down = plan.effects.iter().position(
        |e| matches!(e, Effect::PatchReplicaSet { patch, .. } if patch.replicas == Some(0)),
    );
    assert!(first_traffic.is_some(), "{:?}", plan.effects);
    if let Some(d) = first_scale_down {
        assert!(
            first_traffic < Some(d),
            "scaled down before moving traffic: {:?}",
            plan.effects
        );
    }
    w.apply(plan);
    w.settle();
    assert_eq!(vs_weights(&w), (0, 100));
    assert_eq!(w.status().phase.as_deref(), Some("Degraded"));
    // The canary stays up for abortScaleDownDelaySeconds (30 s), then goes.
    assert_eq!(w.spec_of(&canary), 2);
    w.advance(31);
    w.settle();
    assert_eq!(w.spec_of(&canary), 0);
}

#[test]
fn istio_missing_virtual_service_is_invalid_spec_and_changes_nothing() {
    let mut w = World::new(istio_rollout(2, json!([{"setWeight": 50}])));
    w.settle();
    let st = w.status();
    assert_eq!(st.phase.as_deref(), Some("Degraded"), "{st:#?}");
    assert!(
        st.message.unwrap().contains("VirtualService"),
        "names the object"
    );
    assert!(
        w.rss.is_empty(),
        "nothing created while traffic cannot be controlled"
    );
    assert!(
        w.events
            .iter()
            .any(|e| e.warning && e.reason == "VirtualServiceNotFound")
    );
    // Creating it unblocks the Rollout.
    with_vs(&mut w);
    w.settle();
    assert_eq!(w.status().phase.as_deref(), Some("Healthy"));
}

#[test]
fn istio_weight_waits_for_canary_pods() {
    let mut w = World::new(istio_rollout(4, json!([{"setWeight": 50}, {"pause": {}}])));
    with_vs(&mut w);
    w.settle();
    w.options.unavailable_images.insert("demo:v2-bad".into());
    w.set_image("demo:v2-bad");
    w.settle();
    // The canary never becomes available: no traffic goes to it.
    assert_eq!(vs_weights(&w), (0, 100));
    assert_eq!(status_weights(&w), Some((0, 100)));
}

pub(super) fn template(name: &str) -> crate::api::AnalysisTemplate {
    serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisTemplate",
        "metadata": {"name": name, "namespace": "ns"},
        "spec": {"metrics": [{"name": "success-rate", "interval": "10s",
                              "successCondition": "result[0] >= 0.95",
                              "provider": {"prometheus": {"address": "http://prom", "query": "up"}}}]}
    }))
    .unwrap()
}

fn analysis_rollout(steps: serde_json::Value) -> World {
    let mut w = World::new(rollout(4, steps));
    w.templates.push(template("success-rate"));
    w
}

fn step_run_name(w: &World) -> String {
    w.status()
        .canary
        .and_then(|c| c.current_step_analysis_run_status)
        .and_then(|s| s.name)
        .unwrap_or_default()
}

#[test]
fn analysis_step_successful_completes() {
    let mut w = analysis_rollout(
        json!([{"setWeight": 50}, {"analysis": {"templates": [{"templateName": "success-rate"}]}}]),
    );
    w.settle();
    assert!(w.runs.is_empty(), "no runs on initial deploy");
    w.set_image("demo:v2");
    w.settle();
    let st = w.status();
    let hash = st.current_pod_hash.clone().unwrap();
    assert_eq!(st.current_step_index, Some(1));
    assert_eq!(step_run_name(&w), format!("demo-{hash}-2-1"));
    let run = &w.runs[0];
    assert_eq!(
        run.labels().get("rollout-type").map(String::as_str),
        Some("Step")
    );
    assert_eq!(
        run.labels().get("step-index").map(String::as_str),
        Some("1")
    );
    assert_eq!(run.owner_references()[0].kind, "Rollout");
    assert_eq!(run.spec.metrics.as_ref().unwrap().len(), 1);
    assert_eq!(
        st.phase.as_deref(),
        Some("Progressing"),
        "waiting on the analysis"
    );
    assert!(w.set_run_phase("demo-", "Running", ""));
    w.settle();
    assert_eq!(w.status().current_step_index, Some(1));
    assert!(w.set_run_phase("demo-", "Successful", ""));
    w.settle();
    let st = w.status();
    assert_eq!(st.phase.as_deref(), Some("Healthy"), "{st:#?}");
    assert!(w.has_event("AnalysisRunSuccessful"));
}

#[test]
fn analysis_step_failure_aborts_with_the_runs_message() {
    let mut w = analysis_rollout(
        json!([{"setWeight": 50}, {"analysis": {"templates": [{"templateName": "success-rate"}]}}]),
    );
    w.settle();
    w.set_image("demo:v2");
    w.settle();
    w.set_run_phase(
        "demo-",
        "Failed",
        "Metric \"success-rate\" assessed Failed due to failed (1) > failureLimit (0)",
    );
    w.settle();
    let st = w.status();
    assert_eq!(st.abort, Some(true));
    assert_eq!(st.phase.as_deref(), Some("Degraded"));
    let msg = st.message.unwrap();
    assert!(
        msg.contains(
            "Rollout aborted update to revision 2: Metric \"success-rate\" assessed Failed"
        ),
        "{msg}"
    );
    assert_eq!(w.counts(), (0, 4), "stable back to full");
    assert!(
        w.events
            .iter()
            .any(|e| e.warning && e.reason == "AnalysisRunFailed")
    );
}

#[test]
fn analysis_inconclusive_pauses_and_promote_runs_it_again() {
    let mut w = analysis_rollout(
        json!([{"setWeight": 50}, {"analysis": {"templates": [{"templateName": "success-rate"}]}}]),
    );
    w.settle();
    w.set_image("demo:v2");
    w.settle();
    let first = step_run_name(&w);
    w.set_run_phase("demo-", "Inconclusive", "");
    w.settle();
    let st = w.status();
    assert_eq!(st.phase.as_deref(), Some("Paused"));
    assert_eq!(st.message.as_deref(), Some("InconclusiveAnalysisRun"));
    w.promote();
    w.settle();
    let second = step_run_name(&w);
    assert_eq!(second, format!("{first}.1"), "a new run for the step");
    w.set_run_phase(&second, "Successful", "");
    w.settle();
    assert_eq!(w.status().phase.as_deref(), Some("Healthy"));
}

#[test]
fn missing_analysis_template_is_invalid_spec() {
    let mut w = World::new(rollout(
        2,
        json!([{"setWeight": 50}, {"analysis": {"templates": [{"templateName": "nope"}]}}]),
    ));
    w.settle();
    w.set_image("demo:v2");
    w.settle();
    let st = w.status();
    assert_eq!(st.phase.as_deref(), Some("Degraded"), "{st:#?}");
    assert!(
        st.message
            .unwrap()
            .contains("AnalysisTemplate 'nope' not found")
    );
    assert!(w.runs.is_empty());
}

#[test]
fn background_analysis_runs_from_starting_step_and_is_terminated_on_promotion() {
    let mut w = analysis_rollout(
        json!([{"setWeight": 25}, {"pause": {}}, {"setWeight": 50}, {"pause": {}}]),
    );
    w.ro.spec
        .strategy
        .as_mut()
        .unwrap()
        .canary
        .as_mut()
        .unwrap()
        .analysis = serde_json::from_value(
        json!({"templates": [{"templateName": "success-rate"}], "startingStep": 2}),
    )
    .unwrap();
    w.settle();
    w.set_image("demo:v2");
    w.settle();
    assert!(w.runs.is_empty(), "before the starting step");
    w.promote();
    w.settle();
    assert_eq!(w.runs.len(), 1);
    let run = w.runs[0].name_any();
    assert_eq!(
        w.runs[0].labels().get("rollout-type").map(String::as_str),
        Some("Background")
    );
    w.set_run_phase(&run, "Running", "");
    w.promote();
    w.settle();
    assert_eq!(w.status().phase.as_deref(), Some("Healthy"));
    assert_eq!(
        w.runs[0].spec.terminate,
        Some(true),
        "terminated on full promotion"
    );
}

#[test]
fn background_analysis_failure_aborts_between_steps() {
    let mut w = analysis_rollout(
        json!([{"setWeight": 25}, {"pause": {}}, {"setWeight": 50}, {"pause": {}}]),
    );
    w.ro.spec
        .strategy
        .as_mut()
        .unwrap()
        .canary
        .as_mut()
        .unwrap()
        .analysis =
        serde_json::from_value(json!({"templates": [{"templateName": "success-rate"}]})).unwrap();
    w.settle();
    w.set_image("demo:v2");
    w.settle();
    assert_eq!(w.runs.len(), 1);
    w.set_run_phase("demo-", "Error", "Metric \"success-rate\" assessed Error due to consecutiveErrors (5) > consecutiveErrorLimit (4)");
    w.settle();
    assert_eq!(w.status().phase.as_deref(), Some("Degraded"));
    assert_eq!(w.counts(), (0, 4));
}

#[test]
fn blue_green_pre_promotion_analysis_gates_the_switch() {
    let mut ro = blue_green(
        2,
        json!({"prePromotionAnalysis": {"templates": [{"templateName": "success-rate"}]}}),
    );
    ro.spec.replicas = Some(2);
    let mut w = World::new(ro);
    w.templates.push(template("success-rate"));
    w.settle();
    let v1 = w.status().stable_rs.unwrap();
    w.set_image("demo:v2");
    w.settle();
    let st = w.status();
    let pre = st
        .blue_green
        .clone()
        .unwrap()
        .pre_promotion_analysis_run_status
        .unwrap()
        .name
        .unwrap();
    assert!(pre.ends_with("-pre"), "{pre}");
    assert_eq!(
        svc_hash(&w, "active").as_deref(),
        Some(v1.as_str()),
        "no switch before the analysis"
    );
    w.set_run_phase(&pre, "Failed", "bad");
    w.settle();
    assert_eq!(w.status().phase.as_deref(), Some("Degraded"));
    assert_eq!(
        svc_hash(&w, "active").as_deref(),
        Some(v1.as_str()),
        "active untouched"
    );
    // Retry, and this time it passes.
    w.ro.status.as_mut().unwrap().abort = Some(false);
    w.settle();
    let pre2 = w
        .status()
        .blue_green
        .unwrap()
        .pre_promotion_analysis_run_status
        .unwrap()
        .name
        .unwrap();
    assert_ne!(pre, pre2);
    w.set_run_phase(&pre2, "Successful", "");
    w.settle();
    let st = w.status();
    assert_eq!(svc_hash(&w, "active"), st.current_pod_hash, "{st:#?}");
    assert_eq!(st.phase.as_deref(), Some("Healthy"));
}

#[test]
fn blue_green_post_promotion_failure_rolls_back_to_stable() {
    let mut w = World::new(blue_green(
        2,
        json!({"postPromotionAnalysis": {"templates": [{"templateName": "success-rate"}]}}),
    ));
    w.templates.push(template("success-rate"));
    w.settle();
    let v1 = w.status().stable_rs.unwrap();
    w.set_image("demo:v2");
    w.settle();
    let st = w.status();
    let v2 = st.current_pod_hash.clone().unwrap();
    assert_eq!(
        svc_hash(&w, "active").as_deref(),
        Some(v2.as_str()),
        "switched, then analysed"
    );
    assert_eq!(
        st.stable_rs.as_deref(),
        Some(v1.as_str()),
        "not stable until the analysis passes"
    );
    assert_eq!(
        st.message.as_deref(),
        Some("waiting for analysis to complete")
    );
    assert_eq!(w.spec_of(&v1), 2, "the previous version stays up");
    let post = st
        .blue_green
        .unwrap()
        .post_promotion_analysis_run_status
        .unwrap()
        .name
        .unwrap();
    w.set_run_phase(&post, "Failed", "error rate too high");
    w.settle();
    assert_eq!(w.status().phase.as_deref(), Some("Degraded"));
    assert_eq!(
        svc_hash(&w, "active").as_deref(),
        Some(v1.as_str()),
        "rolled back"
    );
}

/// A running pod of `rs`, labelled from its template.
fn pod_of(
    rs: &k8s_openapi::api::apps::v1::ReplicaSet,
    name: &str,
) -> k8s_openapi::api::core::v1::Pod {
    let meta = rs
        .spec
        .as_ref()
        .unwrap()
        .template
        .as_ref()
        .unwrap()
        .metadata
        .clone()
        .unwrap();
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "ns", "labels": meta.labels,
                     "annotations": meta.annotations,
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                          "name": rs.name_any(), "uid": rs.uid().unwrap(),
                                          "controller": true}]}
    }))
    .unwrap()
}

fn template_labels(
    rs: &k8s_openapi::api::apps::v1::ReplicaSet,
) -> std::collections::BTreeMap<String, String> {
    let t = rs.spec.as_ref().unwrap().template.as_ref().unwrap();
    t.metadata
        .as_ref()
        .unwrap()
        .labels
        .clone()
        .unwrap_or_default()
}

/// The ReplicaSet created after the first one (the update's).
fn second_rs(w: &World) -> k8s_openapi::api::apps::v1::ReplicaSet {
    let first = w.rss[0].name_any();
    w.rss
        .iter()
        .find(|r| r.name_any() != first)
        .unwrap()
        .clone()
}

/// The `role` label of a ReplicaSet's pod template.
fn role_of(rs: &k8s_openapi::api::apps::v1::ReplicaSet) -> Option<&str> {
    let labels = rs
        .spec
        .as_ref()?
        .template
        .as_ref()?
        .metadata
        .as_ref()?
        .labels
        .as_ref()?;
    labels.get("role").map(String::as_str)
}

fn record_of(rs: &k8s_openapi::api::apps::v1::ReplicaSet) -> Option<String> {
    rs.annotations()
        .get("rollout.argoproj.io/ephemeral-metadata")
        .cloned()
}

fn labelled(w: &World, pod: &str, key: &str) -> Option<String> {
    let p = w.pods.iter().find(|p| p.name_any() == pod).unwrap();
    p.labels().get(key).cloned()
}

fn metadata_rollout() -> Rollout {
    let mut ro = rollout(2, json!([{"setWeight": 50}, {"pause": {}}]));
    let canary = ro.spec.strategy.as_mut().unwrap().canary.as_mut().unwrap();
    canary.canary_metadata = serde_json::from_value(
        json!({"labels": {"role": "canary"}, "annotations": {"note": "under test"}}),
    )
    .unwrap();
    canary.stable_metadata = serde_json::from_value(json!({"labels": {"role": "stable"}})).unwrap();
    ro
}

#[test]
fn ephemeral_metadata_follows_the_role_onto_running_pods() {
    let mut w = World::new(metadata_rollout());
    w.settle();
    assert_eq!(
        template_labels(&w.rss[0]).get("role").map(String::as_str),
        Some("stable")
    );
    assert_eq!(
        record_of(&w.rss[0]).as_deref(),
        Some(r#"{"labels":{"role":"stable"}}"#)
    );
    let (v1a, v1b) = (pod_of(&w.rss[0], "v1-a"), pod_of(&w.rss[0], "v1-b"));
    w.pods.extend([v1a, v1b]);
    // Steady state: nothing to write, and pods need not be listed.
    assert!(w.plan().effects.is_empty(), "{:?}", w.plan().effects);
    assert!(!needs_pods(
        &w.ro,
        &w.rss.iter().collect::<Vec<_>>(),
        None,
        w.now
    ));

    w.set_image("demo:v2");
    w.settle();
    assert_eq!(w.status().phase.as_deref(), Some("Paused"));
    let canary_rs = second_rs(&w);
    assert_eq!(role_of(&canary_rs), Some("canary"));
    w.pods.push(pod_of(&canary_rs, "v2-a"));
    assert_eq!(labelled(&w, "v2-a", "role").as_deref(), Some("canary"));

    // Promoted: the canary's template and its running pod become stable in place.
    w.ro.status.as_mut().unwrap().promote_full = Some(true);
    w.settle();
    assert_eq!(w.status().stable_rs, w.status().current_pod_hash);
    let now_stable = w
        .rss
        .iter()
        .find(|r| r.name_any() == canary_rs.name_any())
        .unwrap();
    assert_eq!(
        template_labels(now_stable).get("role").map(String::as_str),
        Some("stable")
    );
    let tmeta = now_stable
        .spec
        .as_ref()
        .unwrap()
        .template
        .as_ref()
        .unwrap()
        .metadata
        .as_ref()
        .unwrap();
    assert!(
        tmeta
            .annotations
            .as_ref()
            .is_none_or(|a| !a.contains_key("note"))
    );
    assert_eq!(
        record_of(now_stable).as_deref(),
        Some(r#"{"labels":{"role":"stable"}}"#)
    );
    assert_eq!(labelled(&w, "v2-a", "role").as_deref(), Some("stable"));
    let v2a = w.pods.iter().find(|p| p.name_any() == "v2-a").unwrap();
    assert!(!v2a.annotations().contains_key("note"));
    assert_eq!(labelled(&w, "v2-a", "app").as_deref(), Some("demo"));
    // The old ReplicaSet loses its injected metadata (its template only, as upstream).
    let old = w
        .rss
        .iter()
        .find(|r| r.name_any() != canary_rs.name_any())
        .unwrap();
    assert_eq!(template_labels(old).get("role"), None);
    assert_eq!(record_of(old), None);
    assert!(w.plan().effects.is_empty(), "{:?}", w.plan().effects);
}

#[test]
fn ephemeral_metadata_interrupted_after_the_template_resumes_with_the_pods() {
    let mut w = World::new(metadata_rollout());
    w.settle();
    w.set_image("demo:v2");
    w.settle();
    let canary_rs = second_rs(&w);
    w.pods.push(pod_of(&canary_rs, "v2-a"));
    w.ro.status.as_mut().unwrap().promote_full = Some(true);
    // Run until the plan moves the canary's metadata, then apply only the template patch
    // (the controller stopped before the pods and the record).
    let sync = loop {
        let plan = w.plan();
        let found = plan.effects.iter().find_map(|e| match e {
            Effect::EphemeralMetadata { replica_set, .. }
                if *replica_set == canary_rs.name_any() =>
            {
                Some(e.clone())
            }
            _ => None,
        });
        if let Some(e) = found {
            break e;
        }
        assert!(w.apply(plan), "no metadata sync planned");
    };
    let Effect::EphemeralMetadata {
        replica_set,
        template,
        pods,
        record,
    } = sync
    else {
        unreachable!()
    };
    assert_eq!(pods.len(), 1);
    assert!(record.is_some());
    w.apply(Plan {
        effects: vec![Effect::EphemeralMetadata {
            replica_set,
            template,
            pods: vec![],
            record: None,
        }],
        status: w.status(),
        ..Plan::default()
    });
    // Looking again finds the record old: the pod is updated and the record written.
    w.settle();
    assert_eq!(labelled(&w, "v2-a", "role").as_deref(), Some("stable"));
    let rs = w
        .rss
        .iter()
        .find(|r| r.name_any() == canary_rs.name_any())
        .unwrap();
    assert_eq!(
        record_of(rs).as_deref(),
        Some(r#"{"labels":{"role":"stable"}}"#)
    );
}

#[test]
fn blue_green_preview_metadata_becomes_active_metadata_on_promotion() {
    let mut w = World::new(blue_green(
        2,
        json!({"autoPromotionEnabled": false,
               "previewMetadata": {"labels": {"role": "preview"}},
               "activeMetadata": {"labels": {"role": "active"}}}),
    ));
    w.settle();
    assert_eq!(
        template_labels(&w.rss[0]).get("role").map(String::as_str),
        Some("active")
    );
    w.set_image("demo:v2");
    w.settle();
    let preview = second_rs(&w);
    assert_eq!(role_of(&preview), Some("preview"));
    w.pods.push(pod_of(&preview, "v2-a"));
    w.ro.status.as_mut().unwrap().pause_conditions = None;
    w.settle();
    assert_eq!(w.status().stable_rs, w.status().current_pod_hash);
    assert_eq!(labelled(&w, "v2-a", "role").as_deref(), Some("active"));
}

fn workload_world(scale_down: &str) -> World {
    let mut ro = rollout(4, json!([{"setWeight": 50}, {"pause": {}}]));
    ro.spec.template = None;
    ro.spec.selector = None;
    ro.spec.workload_ref = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "scaleDown": scale_down}))
    .unwrap();
    let mut w = World::new(ro);
    w.workload = Some(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "ns", "generation": 3, "resourceVersion": "7"},
        "spec": {"replicas": 4, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "web", "image": "web:v1"}]}}}}));
    w
}

fn image_of(rs: &k8s_openapi::api::apps::v1::ReplicaSet) -> String {
    let t = rs.spec.as_ref().unwrap().template.as_ref().unwrap();
    t.spec.as_ref().unwrap().containers[0]
        .image
        .clone()
        .unwrap()
}

#[test]
fn workload_ref_takes_the_deployments_template_and_scales_it_down_on_success() {
    let mut w = workload_world("onsuccess");
    w.settle();
    let st = w.status();
    assert_eq!(st.phase.as_deref(), Some("Healthy"), "{st:#?}");
    assert_eq!(w.rss.len(), 1);
    assert_eq!(image_of(&w.rss[0]), "web:v1");
    assert_eq!(st.selector.as_deref(), Some("app=web"));
    assert_eq!(st.workload_observed_generation.as_deref(), Some("3"));
    assert_eq!(
        w.ro.annotations()
            .get("rollout.argoproj.io/workload-generation")
            .map(String::as_str),
        Some("3")
    );
    assert_eq!(w.workload.as_ref().unwrap()["spec"]["replicas"], json!(0));
    assert!(w.has_event("ScalingDeployment"));
    // An update arrives through the Deployment's template: a canary step, as usual.
    let dep = w.workload.as_mut().unwrap();
    dep["spec"]["template"]["spec"]["containers"][0]["image"] = json!("web:v2");
    dep["metadata"]["generation"] = json!(4);
    w.settle();
    let st = w.status();
    assert_eq!(st.phase.as_deref(), Some("Paused"), "{st:#?}");
    assert_eq!(st.workload_observed_generation.as_deref(), Some("4"));
    assert_eq!(w.counts(), (2, 2));
    assert_eq!(w.workload.as_ref().unwrap()["spec"]["replicas"], json!(0));
}

#[test]
fn workload_ref_progressively_hands_replicas_over() {
    let mut w = workload_world("progressively");
    let mut seen = Vec::new();
    for _ in 0..50 {
        let plan = w.plan();
        if !w.apply(plan) {
            break;
        }
        seen.push(
            w.workload.as_ref().unwrap()["spec"]["replicas"]
                .as_i64()
                .unwrap(),
        );
    }
    assert_eq!(w.status().phase.as_deref(), Some("Healthy"));
    assert_eq!(seen.last(), Some(&0), "{seen:?}");
    assert!(
        seen.windows(2).all(|p| p[1] <= p[0]),
        "never scaled back up: {seen:?}"
    );
}

#[test]
fn workload_ref_to_a_missing_deployment_is_invalid_spec_and_touches_nothing() {
    let mut w = workload_world("onsuccess");
    w.workload = None;
    w.settle();
    assert!(w.rss.is_empty());
    let st = w.status();
    assert_eq!(st.phase.as_deref(), Some("Degraded"));
    assert_eq!(w.condition("InvalidSpec").1, "InvalidSpec");
    assert!(
        st.message
            .as_deref()
            .unwrap_or_default()
            .contains("Deployment \"web\" not found"),
        "{st:#?}"
    );
}

fn injected_target(rs: &k8s_openapi::api::apps::v1::ReplicaSet) -> Option<String> {
    let spec = rs.spec.as_ref()?.template.as_ref()?.spec.as_ref()?;
    let terms = spec
        .affinity
        .as_ref()?
        .pod_anti_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?;
    let req = &terms
        .first()?
        .label_selector
        .as_ref()?
        .match_expressions
        .as_ref()?[0];
    req.values.as_ref()?.first().cloned()
}

#[test]
fn anti_affinity_is_injected_against_the_stable_and_refreshed_on_reuse() {
    let mut ro = rollout(2, json!([{"setWeight": 50}, {"pause": {}}]));
    let c = ro.spec.strategy.as_mut().unwrap().canary.as_mut().unwrap();
    c.anti_affinity =
        serde_json::from_value(json!({"requiredDuringSchedulingIgnoredDuringExecution": {}}))
            .unwrap();
    let mut w = World::new(ro);
    w.settle();
    let v1 = w.status().stable_rs.unwrap();
    assert_eq!(injected_target(&w.rss[0]), None, "no stable yet: no term");
    let promote_to = |w: &mut World, image: &str| {
        w.set_image(image);
        w.settle();
        w.ro.status.as_mut().unwrap().promote_full = Some(true);
        w.settle();
        w.status().stable_rs.unwrap()
    };
    let v2 = promote_to(&mut w, "demo:v2");
    let rs_of = |w: &World, h: &str| {
        w.rss
            .iter()
            .find(|r| {
                r.labels()
                    .get(DEFAULT_ROLLOUT_UNIQUE_LABEL_KEY)
                    .map(String::as_str)
                    == Some(h)
            })
            .cloned()
            .unwrap()
    };
    assert_eq!(
        injected_target(&rs_of(&w, &v2)).as_deref(),
        Some(v1.as_str())
    );
    let v3 = promote_to(&mut w, "demo:v3");
    assert_eq!(
        injected_target(&rs_of(&w, &v3)).as_deref(),
        Some(v2.as_str())
    );
    // Back to v2's template: its ReplicaSet is reused, its term now against v3.
    w.set_image("demo:v2");
    w.settle();
    assert_eq!(w.status().current_pod_hash.as_deref(), Some(v2.as_str()));
    assert_eq!(
        injected_target(&rs_of(&w, &v2)).as_deref(),
        Some(v3.as_str())
    );
    assert!(w.plan().effects.is_empty(), "{:?}", w.plan().effects);
}

/// Upstream `TestCanaryScaleDownDelayWithProgressDeadline`: an older ReplicaSet waiting for its
/// scale-down deadline (the traffic-routed canary's 30 s delay) longer than the progress
/// deadline is not a lack of progress: the Rollout stays Healthy.
#[test]
fn pending_scale_down_is_not_a_progress_deadline() {
    let mut ro = istio_rollout(2, json!(null));
    ro.spec.progress_deadline_seconds = Some(5);
    let mut w = World::new(ro);
    with_vs(&mut w);
    w.settle();
    let v1 = w.status().stable_rs.unwrap();
    w.set_image("demo:v2");
    w.settle();
    assert_eq!(w.status().phase.as_deref(), Some("Healthy"));
    assert_eq!(w.spec_of(&v1), 2, "kept for the scale-down delay");
    w.advance(10);
    w.settle();
    let st = w.status();
    assert_eq!(st.phase.as_deref(), Some("Healthy"), "{st:#?}");
    assert_ne!(w.condition("Progressing").1, "ProgressDeadlineExceeded");
    w.advance(30);
    w.settle();
    assert_eq!(w.spec_of(&v1), 0);
    assert_eq!(w.status().phase.as_deref(), Some("Healthy"));
}
