//! Planner scenarios for upstream's v1.9–v1.10 replica arithmetic, run step by step in the
//! simulated world ([`super::simulate`]): `maxTrafficWeight`, the `minPodsPerReplicaSet` cap,
//! the step-by-step abort of `dynamicStableScale`, and `replicaProgressThreshold`.

use super::simulate::{World, rollout};
use crate::api::Rollout;
use serde_json::{Value, json};

/// A canary Rollout with these strategy fields (`steps` included) over the seed template.
fn canary(replicas: i32, strategy: Value) -> Rollout {
    let mut ro = rollout(replicas, json!([]));
    ro.spec.strategy = serde_json::from_value(json!({ "canary": strategy })).unwrap();
    ro
}

fn with_vs(w: &mut World) {
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

fn with_stable_ingress(w: &mut World) {
    let key = crate::traffic::nginx::ingress_key("ns", "web");
    let ingress = json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": "web", "namespace": "ns", "resourceVersion": "1"},
        "spec": {"rules": [{"host": "demo.example.com", "http": {"paths": [{
            "path": "/", "pathType": "Prefix",
            "backend": {"service": {"name": "stable", "port": {"number": 80}}}
        }]}}]}
    });
    w.traffic.insert(key, ingress);
}

fn istio(steps: Value) -> Value {
    json!({
        "canaryService": "canary", "stableService": "stable",
        "trafficRouting": {"istio": {"virtualService": {"name": "vs", "routes": ["primary"]}}},
        "steps": steps,
    })
}

/// The recorded canary weight (`status.canary.weights.canary.weight`).
fn canary_weight(w: &World) -> Option<i32> {
    w.status().canary?.weights?.canary?.weight
}

/// Plans and applies one round at a time until nothing is written, returning the most pods
/// the ReplicaSets asked for at once (after each round).
fn settle_tracking_total(w: &mut World) -> i32 {
    let mut most = total(w);
    for _ in 0..100 {
        let plan = w.plan();
        if !w.apply(plan) {
            return most;
        }
        most = most.max(total(w));
    }
    panic!("no fixpoint after 100 rounds: {:#?}", w.status());
}

fn total(w: &World) -> i32 {
    w.rss
        .iter()
        .map(|rs| rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0))
        .sum()
}

#[test]
fn max_traffic_weight_sizes_the_canary_from_the_weight_out_of_the_maximum() {
    // NGINX, maxTrafficWeight 1000, 10 replicas, setWeight 500 (50% of the traffic): upstream
    // scales the canary to 5 pods, not 50.
    let mut w = World::new(canary(
        10,
        json!({
            "canaryService": "canary", "stableService": "stable",
            "trafficRouting": {"maxTrafficWeight": 1000, "nginx": {"stableIngress": "web"}},
            "steps": [{"setWeight": 500}, {"pause": {}}, {"setWeight": 900}, {"pause": {}}],
        }),
    ));
    with_stable_ingress(&mut w);
    w.settle();
    assert_eq!(w.status().phase.as_deref(), Some("Healthy"));
    w.set_image("demo:v2");
    w.settle();
    let st = w.status();
    assert_eq!(st.current_step_index, Some(1), "{st:#?}");
    assert_eq!(w.counts(), (5, 10), "500 of 1000 is 5 of 10 pods");
    assert_eq!(canary_weight(&w), Some(500));
    let weights = st.canary.unwrap().weights.unwrap();
    assert_eq!(weights.stable.unwrap().weight, Some(500), "1000 - 500");
    let canary_ingress = crate::traffic::nginx::ingress_key(
        "ns",
        &crate::traffic::nginx::canary_ingress_name("demo", "web"),
    );
    let annotations = &w.traffic[&canary_ingress]["metadata"]["annotations"];
    assert_eq!(
        annotations["nginx.ingress.kubernetes.io/canary-weight"], "500",
        "{annotations}"
    );
    assert_eq!(
        annotations["nginx.ingress.kubernetes.io/canary-weight-total"],
        "1000"
    );
    w.promote();
    w.settle();
    assert_eq!(w.status().current_step_index, Some(3));
    assert_eq!(w.counts(), (9, 10), "900 of 1000 is 9 of 10 pods");
    w.promote();
    w.settle();
    let st = w.status();
    assert_eq!(st.phase.as_deref(), Some("Healthy"), "{st:#?}");
    assert_eq!(w.counts(), (10, 0));
}

#[test]
fn min_pods_per_replica_set_is_capped_at_the_rollout_replicas() {
    // Upstream #4566: Istio, 1 replica, minPodsPerReplicaSet 2, setWeight 50, pause, promote.
    // Uncapped, the new ReplicaSet stays at 2 pods and never becomes stable.
    let mut strategy = istio(json!([{"setWeight": 50}, {"pause": {}}]));
    strategy["minPodsPerReplicaSet"] = json!(2);
    let mut w = World::new(canary(1, strategy));
    with_vs(&mut w);
    w.settle();
    w.set_image("demo:v2");
    w.settle();
    assert_eq!(w.status().current_step_index, Some(1));
    assert_eq!(w.counts(), (1, 1), "the minimum is capped at spec.replicas");
    w.promote();
    w.settle();
    let st = w.status();
    assert_eq!(st.phase.as_deref(), Some("Healthy"), "{st:#?}");
    assert_eq!(st.stable_rs, st.current_pod_hash);
    assert_eq!(w.counts(), (1, 0));
}

/// Istio with dynamicStableScale, 10 replicas, paused at 60%.
fn dynamic_at_60(abort_delay: Option<i32>) -> World {
    let mut strategy = istio(json!([
        {"setWeight": 20}, {"setWeight": 40}, {"setWeight": 60}, {"pause": {}}
    ]));
    strategy["dynamicStableScale"] = json!(true);
    if let Some(d) = abort_delay {
        strategy["abortScaleDownDelaySeconds"] = json!(d);
    }
    let mut w = World::new(canary(10, strategy));
    with_vs(&mut w);
    w.settle();
    w.set_image("demo:v2");
    w.settle();
    assert_eq!(w.status().current_step_index, Some(3));
    assert_eq!(w.counts(), (6, 4), "dynamic stable scale at 60%");
    assert_eq!(canary_weight(&w), Some(60));
    w
}

fn abort(w: &mut World) {
    let mut st = w.status();
    st.abort = Some(true);
    w.ro.status = Some(st);
}

#[test]
fn dynamic_stable_scale_abort_walks_back_the_steps() {
    // Upstream #4035 (v1.9): the weight steps back 60 → 40 → 20 → 0 as the stable grows, so
    // the pod total stays near 10 instead of 16 (the canary's 6 plus a full stable).
    for delay in [None, Some(0), Some(30)] {
        let mut w = dynamic_at_60(delay);
        abort(&mut w);
        let most = settle_tracking_total(&mut w);
        // An explicit positive delay keeps the canary at full size until its deadline, as the
        // user asked: then the stable's growth adds to it.
        let bound = if delay.is_some_and(|d| d > 0) { 16 } else { 12 };
        assert!(
            most <= bound,
            "abortScaleDownDelaySeconds {delay:?}: at most {bound} pods at once, saw {most}"
        );
        let st = w.status();
        assert_eq!(st.phase.as_deref(), Some("Degraded"), "{delay:?}: {st:#?}");
        assert_eq!(canary_weight(&w), Some(0), "{delay:?}");
        let (canary, stable) = w.counts();
        assert_eq!(stable, 10, "{delay:?}: the stable is back at full size");
        match delay {
            // Without an explicit delay (or with 0, which only keeps a setCanaryScale or a
            // delayed scale-down) the canary follows its weight down to 0, as upstream's does;
            // with a positive delay, it stays up until its deadline.
            None | Some(0) => assert_eq!(canary, 0, "{delay:?}"),
            Some(d) => {
                assert_eq!(canary, 6, "held up until its deadline");
                w.advance(i64::from(d) + 1);
                w.settle();
                assert_eq!(
                    w.counts(),
                    (0, 10),
                    "{delay:?}: scaled down at the deadline"
                );
            }
        }
    }
}

#[test]
fn dynamic_stable_scale_abort_weight_never_goes_back_up() {
    let mut w = dynamic_at_60(None);
    abort(&mut w);
    let mut last = canary_weight(&w).unwrap();
    for _ in 0..100 {
        let plan = w.plan();
        if !w.apply(plan) {
            break;
        }
        let now = canary_weight(&w).unwrap();
        assert!(now <= last, "weight went from {last} up to {now}");
        last = now;
    }
    assert_eq!(last, 0);
}

#[test]
fn replica_progress_threshold_completes_a_step_with_most_pods_available() {
    // 10 replicas, threshold 80%: a step wanting 10 canary pods completes with 8 available.
    let mut strategy = istio(json!([{"setWeight": 100}, {"pause": {}}]));
    strategy["replicaProgressThreshold"] = json!({"type": "Percent", "value": 80});
    let mut w = World::new(canary(10, strategy));
    with_vs(&mut w);
    w.settle();
    w.set_image("demo:v2");
    // The canary's pods come up, but two of its ten never become available.
    for _ in 0..100 {
        let plan = w.plan();
        let wrote = w.apply(plan);
        w.cap_available(&w.status().current_pod_hash.unwrap_or_default(), 8);
        if !wrote {
            break;
        }
    }
    let st = w.status();
    assert_eq!(st.current_step_index, Some(1), "80% suffices: {st:#?}");
    assert_eq!(canary_weight(&w), Some(100));

    // Without the threshold the same Rollout waits at step 0.
    let mut w = World::new(canary(
        10,
        istio(json!([{"setWeight": 100}, {"pause": {}}])),
    ));
    with_vs(&mut w);
    w.settle();
    w.set_image("demo:v2");
    for _ in 0..100 {
        let plan = w.plan();
        let wrote = w.apply(plan);
        w.cap_available(&w.status().current_pod_hash.unwrap_or_default(), 8);
        if !wrote {
            break;
        }
    }
    assert_eq!(w.status().current_step_index, Some(0));
}

#[test]
fn replica_progress_threshold_in_pods_promotes() {
    // No steps, 9 of 10 pods available: a threshold of 9 pods completes the update. (A `Pods`
    // threshold counts available pods whatever the step wants, as upstream's does: a step
    // wanting fewer pods than the threshold never completes.)
    let mut strategy = istio(json!([]));
    strategy["replicaProgressThreshold"] = json!({"type": "Pods", "value": 9});
    let mut w = World::new(canary(10, strategy));
    with_vs(&mut w);
    w.settle();
    w.set_image("demo:v2");
    for _ in 0..100 {
        let plan = w.plan();
        let wrote = w.apply(plan);
        w.cap_available(&w.status().current_pod_hash.unwrap_or_default(), 9);
        if !wrote {
            break;
        }
    }
    let st = w.status();
    assert_eq!(st.stable_rs, st.current_pod_hash, "promoted: {st:#?}");
}
