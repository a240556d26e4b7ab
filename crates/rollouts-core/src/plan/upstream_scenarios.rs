//! Upstream's mesh-free e2e scenarios (`test/e2e/functional_test.go`, `canary_test.go`,
//! `bluegreen_test.go` at 9f8d111) replayed against the planner in the simulated world
//! ([`super::simulate`]), with upstream's expected counts. The same scenarios run against the
//! real API server in `tests/e2e/upstream_*.rs`.
//!
//! The simulator's pods become available a round after they are created, except those of the
//! images [`world`] marks unavailable; where upstream reads counts while pods are still
//! starting, these tests use such an image to hold that moment (the counts upstream asserts
//! are those before the new pods become ready).

use super::simulate::World;
use super::*;
use crate::api::consts::{DEFAULT_ROLLOUT_UNIQUE_LABEL_KEY, REVISION_ANNOTATION};
use kube_core::ResourceExt;
use serde_json::{Value, json};

/// A Rollout `demo` with image `demo:v1` and the given spec fields (merged over the defaults).
fn rollout(spec: Value) -> Rollout {
    let mut base = json!({
        "selector": {"matchLabels": {"app": "demo"}},
        "template": {"metadata": {"labels": {"app": "demo"}},
                     "spec": {"containers": [{"name": "demo", "image": "demo:v1"}]}},
    });
    if let (Some(b), Some(s)) = (base.as_object_mut(), spec.as_object()) {
        for (k, v) in s {
            b.insert(k.clone(), v.clone());
        }
    }
    let mut ro: Rollout = serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": "demo", "namespace": "ns", "uid": "uid-1", "generation": 1},
        "spec": base,
    }))
    .unwrap();
    ro.status = None;
    ro
}

/// A simulated world where the pods of images `demo:bad` and `demo:bad2` never become
/// available (upstream's `command: [/bad-command]`).
fn world(ro: Rollout) -> World {
    let mut w = World::new(ro);
    for image in ["demo:bad", "demo:bad2"] {
        w.options.unavailable_images.insert(image.into());
    }
    w
}

/// `spec.replicas` of the ReplicaSet of `revision` (upstream's `ExpectRevisionPodCount`: the
/// simulated pods are those of the ReplicaSet's spec); -1 when there is none.
fn revision_pods(w: &World, revision: u32) -> i32 {
    w.rss
        .iter()
        .find(|rs| rs.annotations().get(REVISION_ANNOTATION) == Some(&revision.to_string()))
        .map_or(-1, |rs| {
            rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0)
        })
}

/// Upstream's `ExpectCanaryStablePodCount`: pods of `currentPodHash` and of `stableRS`.
fn canary_stable_pods(w: &World) -> (i32, i32) {
    let st = w.status();
    (
        w.spec_of(st.current_pod_hash.as_deref().unwrap_or_default()),
        w.spec_of(st.stable_rs.as_deref().unwrap_or_default()),
    )
}

/// Upstream's `ExpectReplicaCounts`: (desired, current, updated, ready, available).
fn replica_counts(w: &World) -> (i32, i32, i32, i32, i32) {
    let st = w.status();
    (
        w.ro.spec.replicas.unwrap_or(1),
        st.replicas.unwrap_or(0),
        st.updated_replicas.unwrap_or(0),
        st.ready_replicas.unwrap_or(0),
        st.available_replicas.unwrap_or(0),
    )
}

fn phase(w: &World) -> String {
    w.status().phase.unwrap_or_default()
}

/// Merges `patch` into the spec (as `kubectl patch --type merge` on `spec`) and bumps the
/// generation.
fn patch_spec(w: &mut World, patch: Value) {
    fn merge(t: &mut Value, p: &Value) {
        match (t, p) {
            (Value::Object(t), Value::Object(p)) => {
                for (k, v) in p {
                    if v.is_null() {
                        t.remove(k);
                    } else {
                        merge(t.entry(k.clone()).or_insert(Value::Null), v);
                    }
                }
            }
            (t, p) => *t = p.clone(),
        }
    }
    let mut spec = serde_json::to_value(&w.ro.spec).unwrap();
    merge(&mut spec, &patch);
    w.ro.spec = serde_json::from_value(spec).unwrap();
    w.ro.metadata.generation = Some(w.ro.metadata.generation.unwrap_or(1) + 1);
}

/// Upstream's `UpdateSpec()` with no argument: a new pod template annotation.
fn update_spec(w: &mut World, rev: &str) {
    patch_spec(
        w,
        json!({"template": {"metadata": {"annotations": {"rev": rev}}}}),
    );
}

fn set_abort(w: &mut World, abort: bool) {
    w.ro.status.get_or_insert_with(Default::default).abort = Some(abort);
}

fn svc_hash(w: &World, name: &str) -> Option<String> {
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

/// Upstream `TestRolloutAbortRetryPromote`.
#[test]
fn abort_retry_promote() {
    let mut w = world(rollout(json!({"strategy": {"canary": {"steps": [
        {"setWeight": 50}, {"pause": {"duration": "3s"}}]}}})));
    w.settle();
    assert_eq!(phase(&w), "Healthy");
    update_spec(&mut w, "2");
    w.settle();
    assert_eq!(phase(&w), "Paused");
    assert_eq!((revision_pods(&w, 1), revision_pods(&w, 2)), (1, 1));
    set_abort(&mut w, true);
    w.settle();
    assert_eq!(phase(&w), "Degraded");
    assert_eq!((revision_pods(&w, 1), revision_pods(&w, 2)), (1, 0));
    set_abort(&mut w, false);
    w.settle();
    assert_eq!(phase(&w), "Paused");
    assert_eq!((revision_pods(&w, 1), revision_pods(&w, 2)), (1, 1));
    w.advance(3);
    w.settle();
    assert_eq!(phase(&w), "Healthy");
    assert_eq!((revision_pods(&w, 1), revision_pods(&w, 2)), (0, 1));
    for reason in [
        "RolloutPaused",
        "RolloutAborted",
        "RolloutResumed",
        "RolloutCompleted",
    ] {
        assert!(w.has_event(reason), "{reason}: {:?}", w.events);
    }
}

fn rolling(replicas: i32) -> Value {
    json!({"replicas": replicas,
           "strategy": {"canary": {"maxSurge": 1, "maxUnavailable": 0}}})
}

/// Upstream `TestRolloutGoodToBadUpdate`.
#[test]
fn good_to_bad_update() {
    let mut w = world(rollout(rolling(4)));
    w.settle();
    assert_eq!(phase(&w), "Healthy");
    patch_spec(
        &mut w,
        json!({"progressDeadlineSeconds": 10,
               "template": {"spec": {"containers": [{"name": "demo", "image": "demo:bad"}]}}}),
    );
    w.settle();
    assert_eq!(phase(&w), "Progressing");
    w.advance(11);
    w.settle();
    assert_eq!(phase(&w), "Degraded");
    assert_eq!(canary_stable_pods(&w), (1, 4));
    patch_spec(
        &mut w,
        json!({"template": {"spec": {"containers": [{"name": "demo", "image": "demo:bad2"}]}}}),
    );
    w.settle();
    assert_eq!(phase(&w), "Progressing");
    w.advance(11);
    w.settle();
    assert_eq!(phase(&w), "Degraded");
    assert_eq!(
        (
            revision_pods(&w, 1),
            revision_pods(&w, 2),
            revision_pods(&w, 3)
        ),
        (4, 0, 1)
    );
}

fn bad_first(replicas: i32, steps: Value) -> World {
    let mut spec = rolling(replicas);
    spec["progressDeadlineSeconds"] = json!(10);
    spec["template"] = json!({"metadata": {"labels": {"app": "demo"}},
                              "spec": {"containers": [{"name": "demo", "image": "demo:bad"}]}});
    if !steps.is_null() {
        spec["strategy"]["canary"]["steps"] = steps;
    }
    let mut w = world(rollout(spec));
    w.settle();
    w.advance(11);
    w.settle();
    assert_eq!(phase(&w), "Degraded", "{:#?}", w.status());
    w
}

/// Upstream `TestRolloutBadToGoodUpdate`.
#[test]
fn bad_to_good_update() {
    let mut w = bad_first(4, Value::Null);
    patch_spec(
        &mut w,
        json!({"progressDeadlineSeconds": 60,
               "template": {"spec": {"containers": [{"name": "demo", "image": "demo:v1"}]}}}),
    );
    w.settle();
    assert_eq!(phase(&w), "Healthy", "{:#?}", w.status());
    assert_eq!((revision_pods(&w, 2), revision_pods(&w, 1)), (4, 0));
}

/// Upstream `TestRolloutBadToBadUpdate`: maxSurge/maxUnavailable still hold.
#[test]
fn bad_to_bad_update() {
    let mut w = bad_first(4, Value::Null);
    patch_spec(
        &mut w,
        json!({"template": {"spec": {"containers": [{"name": "demo", "image": "demo:bad2"}]}}}),
    );
    w.settle();
    assert_eq!(phase(&w), "Progressing");
    w.advance(11);
    w.settle();
    assert_eq!(phase(&w), "Degraded");
    assert_eq!((revision_pods(&w, 2), revision_pods(&w, 1)), (1, 4));
}

/// Upstream `TestRolloutBadToGoodSetWeightUpdate`.
#[test]
fn bad_to_good_set_weight_update() {
    let mut w = bad_first(4, json!([{"setWeight": 50}, {"pause": {"duration": "5s"}}]));
    patch_spec(
        &mut w,
        json!({"template": {"spec": {"containers": [{"name": "demo", "image": "demo:v1"}]}}}),
    );
    w.settle();
    w.advance(5);
    w.settle();
    assert_eq!(phase(&w), "Healthy", "{:#?}", w.status());
    assert_eq!((revision_pods(&w, 2), revision_pods(&w, 1)), (4, 0));
}

/// Upstream `TestRolloutScalingWhenPaused` (`rollout-basic.yaml`, one replica, 25 %).
#[test]
fn scaling_when_paused() {
    let mut w = world(rollout(json!({"strategy": {"canary": {"steps": [
        {"setWeight": 25}, {"pause": {}}]}}})));
    w.settle();
    update_spec(&mut w, "2");
    w.settle();
    assert_eq!(phase(&w), "Paused");
    assert_eq!(canary_stable_pods(&w), (1, 1));
    w.ro.spec.replicas = Some(8);
    w.settle();
    assert_eq!(canary_stable_pods(&w), (2, 6));
    w.ro.spec.replicas = Some(4);
    w.settle();
    assert_eq!(canary_stable_pods(&w), (1, 3));
}

/// Upstream `TestRolloutWithMaxSurgeScalingDuringUpdate`: maxSurge 100 %, scaled while the
/// new pods are not yet ready.
#[test]
fn max_surge_scaling_during_update() {
    let mut w = world(rollout(json!({"replicas": 4,
        "strategy": {"canary": {"maxSurge": "100%"}}})));
    w.settle();
    patch_spec(
        &mut w,
        json!({"template": {"spec": {"containers": [{"name": "demo", "image": "demo:bad"}]}}}),
    );
    w.settle();
    assert_eq!(w.status().replicas, Some(7));
    assert_eq!(canary_stable_pods(&w), (4, 3));
    w.ro.spec.replicas = Some(8);
    w.settle();
    assert_eq!(w.status().replicas, Some(11));
    assert_eq!(canary_stable_pods(&w), (8, 3));
    w.ro.spec.replicas = Some(4);
    w.settle();
    assert_eq!(w.status().replicas, Some(7));
    assert_eq!(canary_stable_pods(&w), (4, 3));
}

/// Upstream `TestRolloutScalingDuringUpdate`: maxSurge 2, maxUnavailable 0, a crashing canary.
#[test]
fn scaling_during_update() {
    let mut w = world(rollout(json!({"replicas": 4,
        "strategy": {"canary": {"maxSurge": 2, "maxUnavailable": 0}}})));
    w.settle();
    patch_spec(
        &mut w,
        json!({"template": {"spec": {"containers": [{"name": "demo", "image": "demo:bad"}]}}}),
    );
    w.settle();
    assert_eq!(w.status().replicas, Some(6));
    assert_eq!(canary_stable_pods(&w), (2, 4));
    w.ro.spec.replicas = Some(8);
    w.settle();
    assert_eq!(w.status().replicas, Some(10));
    assert_eq!(canary_stable_pods(&w), (6, 4));
    w.ro.spec.replicas = Some(4);
    w.settle();
    assert_eq!(w.status().replicas, Some(6));
    assert_eq!(canary_stable_pods(&w), (2, 4));
}

/// Upstream `TestCanaryWithPausedRollout`: an update while paused at 20 % replaces the paused
/// canary (revision 2 scaled to 0, revision 3 at 1 of 3).
#[test]
fn update_while_paused_replaces_the_canary() {
    let mut w = world(rollout(json!({"replicas": 3,
        "strategy": {"canary": {"steps": [{"setWeight": 20}, {"pause": {}}]}}})));
    w.settle();
    update_spec(&mut w, "2");
    w.settle();
    assert_eq!(phase(&w), "Paused");
    update_spec(&mut w, "3");
    w.settle();
    assert_eq!(phase(&w), "Paused");
    assert_eq!(
        (
            revision_pods(&w, 1),
            revision_pods(&w, 2),
            revision_pods(&w, 3)
        ),
        (3, 0, 1)
    );
}

fn blue_green(replicas: i32, strategy: Value) -> World {
    let mut w = world(rollout(
        json!({"replicas": replicas, "strategy": {"blueGreen": strategy}}),
    ));
    w.settle();
    assert_eq!(phase(&w), "Healthy");
    w
}

/// Upstream `TestBlueGreenUpdate` (`rollout-bluegreen.yaml`): the old ReplicaSet stays up for
/// the scale-down delay, so 6 pods run after the switch.
#[test]
fn blue_green_update() {
    let mut w = blue_green(
        3,
        json!({"activeService": "bluegreen", "scaleDownDelaySeconds": 10}),
    );
    assert_eq!(replica_counts(&w), (3, 3, 3, 3, 3));
    update_spec(&mut w, "2");
    w.settle();
    assert_eq!(phase(&w), "Healthy");
    let v2 = w.status().current_pod_hash.unwrap();
    assert_eq!(svc_hash(&w, "bluegreen"), Some(v2));
    assert_eq!(replica_counts(&w), (3, 6, 3, 3, 3));
    w.advance(11);
    w.settle();
    assert_eq!(replica_counts(&w), (3, 3, 3, 3, 3));
}

/// Upstream `TestBlueGreenToCanary`: switching strategy with a template change pauses at 50 %
/// of 2 with 1 updated pod; the active Service is no longer named by the spec (its release is
/// the controller's, proven in `tests/e2e/upstream_functional.rs`).
#[test]
fn blue_green_to_canary() {
    let mut w = blue_green(
        2,
        json!({"activeService": "bluegreen-to-canary", "scaleDownDelaySeconds": 5}),
    );
    patch_spec(
        &mut w,
        json!({"template": {"metadata": {"annotations": {"foo": "bar"}}},
               "strategy": {"blueGreen": null,
                            "canary": {"steps": [{"setWeight": 50}, {"pause": {}}]}}}),
    );
    w.settle();
    assert_eq!(phase(&w), "Paused", "{:#?}", w.status());
    assert_eq!(replica_counts(&w), (2, 2, 1, 2, 2));
    assert!(referenced_services(&w.ro).is_empty());
}

/// The reverse switch: a canary whose stable Service becomes the active Service of a
/// blue-green strategy, with a template change. As upstream, a blue-green update is only fast
/// tracked when the active Service selects no revision yet; here it selects the stable one, so
/// the new revision comes up behind the preview Service and waits for promotion.
#[test]
fn canary_to_blue_green() {
    let mut w = world(rollout(json!({"replicas": 2,
        "strategy": {"canary": {"stableService": "active", "canaryService": "canary",
                                "steps": [{"setWeight": 50}, {"pause": {}}]}}})));
    w.settle();
    let v1 = w.status().stable_rs.unwrap();
    assert_eq!(svc_hash(&w, "active"), Some(v1.clone()));
    patch_spec(
        &mut w,
        json!({"template": {"metadata": {"annotations": {"foo": "bar"}}},
               "strategy": {"canary": null,
                            "blueGreen": {"activeService": "active",
                                          "previewService": "preview",
                                          "autoPromotionEnabled": false}}}),
    );
    w.services.extend(
        World::new(w.ro.clone())
            .services
            .into_iter()
            .filter(|s| s.name_any() == "preview"),
    );
    w.settle();
    let st = w.status();
    let v2 = st.current_pod_hash.clone().unwrap();
    assert_eq!(st.phase.as_deref(), Some("Paused"), "{st:#?}");
    assert_eq!(st.message.as_deref(), Some("BlueGreenPause"));
    assert_eq!(svc_hash(&w, "active"), Some(v1.clone()));
    assert_eq!(svc_hash(&w, "preview"), Some(v2.clone()));
    assert_eq!((w.spec_of(&v1), w.spec_of(&v2)), (2, 2));
    assert_eq!(replica_counts(&w), (2, 4, 2, 2, 2));
    w.promote();
    w.settle();
    assert_eq!(phase(&w), "Healthy");
    assert_eq!(svc_hash(&w, "active"), Some(v2.clone()));
    assert_eq!(w.status().stable_rs, Some(v2));
}

/// Upstream `TestBlueGreenScaleDownDelay`: with a day's delay and a revision limit of 2, three
/// updates leave revisions 4, 3 and 2 up and 1 down; lowering the limit to 1 scales 2 down.
#[test]
fn blue_green_scale_down_delay_revision_limit() {
    let mut w = blue_green(
        1,
        json!({"activeService": "active", "scaleDownDelaySeconds": 86400,
               "scaleDownDelayRevisionLimit": 2}),
    );
    update_spec(&mut w, "2");
    w.settle();
    assert_eq!(phase(&w), "Healthy");
    assert_eq!((revision_pods(&w, 2), revision_pods(&w, 1)), (1, 1));
    assert_eq!(replica_counts(&w), (1, 2, 1, 1, 1));
    update_spec(&mut w, "3");
    w.settle();
    update_spec(&mut w, "4");
    w.settle();
    assert_eq!(phase(&w), "Healthy");
    assert_eq!(
        (1..=4).map(|r| revision_pods(&w, r)).collect::<Vec<_>>(),
        [0, 1, 1, 1]
    );
    assert_eq!(replica_counts(&w), (1, 3, 1, 1, 1));
    patch_spec(
        &mut w,
        json!({"strategy": {"blueGreen": {"scaleDownDelayRevisionLimit": 1}}}),
    );
    w.settle();
    assert_eq!(
        (1..=4).map(|r| revision_pods(&w, r)).collect::<Vec<_>>(),
        [0, 0, 1, 1]
    );
    assert_eq!(replica_counts(&w), (1, 2, 1, 1, 1));
}

/// Upstream `TestBlueGreenExceedProgressDeadlineAbort`: without `progressDeadlineAbort` the
/// new ReplicaSet stays up and `status.abort` stays false; with it, the Rollout aborts and the
/// new ReplicaSet goes to 0 after `abortScaleDownDelaySeconds`.
#[test]
fn blue_green_exceed_progress_deadline_abort() {
    let mut w = blue_green(
        1,
        json!({"activeService": "active", "abortScaleDownDelaySeconds": 2}),
    );
    patch_spec(
        &mut w,
        json!({"progressDeadlineAbort": false, "progressDeadlineSeconds": 1,
               "template": {"spec": {"containers": [{"name": "demo", "image": "demo:bad"}]}}}),
    );
    w.settle();
    w.advance(2);
    w.settle();
    assert_eq!(phase(&w), "Degraded");
    w.advance(3);
    w.settle();
    assert_eq!(revision_pods(&w, 2), 1);
    assert_ne!(w.status().abort, Some(true));
    patch_spec(&mut w, json!({"progressDeadlineAbort": true}));
    w.settle();
    w.advance(2);
    w.settle();
    assert_eq!(phase(&w), "Degraded");
    w.advance(3);
    w.settle();
    assert_eq!(revision_pods(&w, 2), 0);
    let st = w.status();
    assert_eq!(st.abort, Some(true));
    assert_eq!(st.conditions.unwrap_or_default().len(), 4);
}

/// Upstream `TestBlueGreenScaleDownOnAbort`: the preview (1 pod) goes to 0 after
/// `abortScaleDownDelaySeconds: 1`.
#[test]
fn blue_green_scale_down_on_abort() {
    let mut w = blue_green(
        2,
        json!({"activeService": "active", "previewService": "preview",
               "abortScaleDownDelaySeconds": 1, "previewReplicaCount": 1,
               "scaleDownDelaySeconds": 5, "autoPromotionEnabled": false}),
    );
    update_spec(&mut w, "2");
    w.settle();
    assert_eq!(phase(&w), "Paused");
    assert_eq!((revision_pods(&w, 2), revision_pods(&w, 1)), (1, 2));
    set_abort(&mut w, true);
    w.settle();
    assert_eq!(phase(&w), "Degraded");
    w.advance(2);
    w.settle();
    assert_eq!(revision_pods(&w, 2), 0);
}

/// Upstream `TestBlueGreenPreviewReplicaCount` and `...PromoteFull` (the latter with a 1 s
/// progress deadline that a pause must not turn into Degraded).
#[test]
fn blue_green_preview_replica_count() {
    for full in [false, true] {
        let mut w = blue_green(
            2,
            json!({"activeService": "active", "previewService": "preview",
                   "previewReplicaCount": 1, "scaleDownDelaySeconds": 5,
                   "autoPromotionEnabled": false}),
        );
        if full {
            patch_spec(&mut w, json!({"progressDeadlineSeconds": 1}));
            w.settle();
        }
        update_spec(&mut w, "2");
        w.settle();
        w.advance(2);
        w.settle();
        assert_eq!(phase(&w), "Paused");
        assert_eq!((revision_pods(&w, 2), revision_pods(&w, 1)), (1, 2));
        assert_eq!(replica_counts(&w), (2, 3, 1, 2, 2));
        if full {
            w.ro.status.as_mut().unwrap().promote_full = Some(true);
        } else {
            w.promote();
        }
        w.settle();
        assert_eq!(phase(&w), "Healthy");
        assert_eq!(replica_counts(&w), (2, 4, 2, 2, 2), "promote full: {full}");
    }
}

/// Upstream `TestBlueGreenProgressDeadlineExceededWithPause` / `...WithoutPause` with pods
/// that take longer than the deadline to start: Degraded while starting, then Paused (manual
/// promotion) or Healthy (automatic), and the new revision active.
#[test]
fn blue_green_progress_deadline_exceeded_then_recovers() {
    for auto in [false, true] {
        let mut w = world(rollout(json!({"replicas": 1, "progressDeadlineSeconds": 5,
            "strategy": {"blueGreen": {"activeService": "active",
                                        "autoPromotionEnabled": auto}}})));
        w.settle();
        update_spec(&mut w, "2");
        let v2_pending = |w: &mut World| {
            let p = w.plan();
            w.apply(p);
            let h = w.status().current_pod_hash.unwrap_or_default();
            w.cap_available(&h, 0);
        };
        for _ in 0..5 {
            v2_pending(&mut w);
        }
        w.advance(6);
        for _ in 0..5 {
            v2_pending(&mut w);
        }
        assert_eq!(phase(&w), "Degraded", "auto {auto}: {:#?}", w.status());
        // The pods become ready: the ReplicaSet's status catches up.
        let h = w.status().current_pod_hash.unwrap();
        for rs in &mut w.rss {
            if rs.labels().get(DEFAULT_ROLLOUT_UNIQUE_LABEL_KEY) == Some(&h) {
                let st = rs.status.as_mut().unwrap();
                st.available_replicas = Some(st.replicas);
                st.ready_replicas = Some(st.replicas);
            }
        }
        w.settle();
        if !auto {
            assert_eq!(phase(&w), "Paused", "{:#?}", w.status());
            w.promote();
            w.settle();
        }
        assert_eq!(phase(&w), "Healthy", "auto {auto}: {:#?}", w.status());
        assert_eq!(svc_hash(&w, "active"), Some(h));
    }
}

/// Upstream `TestSpecAndReplicaChangeSameTime`: a template change together with a scale, then
/// another while paused, ends Healthy at 4/4/4/4/4.
#[test]
fn spec_and_replica_change_same_time() {
    let mut w = world(rollout(json!({"replicas": 2,
        "strategy": {"canary": {"steps": [{"setWeight": 10}, {"pause": {"duration": "10s"}},
                                          {"setWeight": 20}, {"pause": {"duration": "5s"}}]}}})));
    w.settle();
    let env = |v: &str, r: i32| {
        json!({"replicas": r, "template": {"spec": {"containers": [
            {"name": "demo", "image": "demo:v1", "env": [{"name": "TEST", "value": v}]}]}}})
    };
    patch_spec(&mut w, env("test", 3));
    w.settle();
    assert_eq!(phase(&w), "Paused", "{:#?}", w.status());
    patch_spec(&mut w, env("test-new", 4));
    w.settle();
    for _ in 0..4 {
        w.advance(10);
        w.settle();
    }
    assert_eq!(phase(&w), "Healthy", "{:#?}", w.status());
    assert_eq!(replica_counts(&w), (4, 4, 4, 4, 4));
}

/// Upstream `TestFixInvalidSpec`: a Rollout naming an AnalysisTemplate that does not exist is
/// InvalidSpec from its first reconcile (nothing deployed), with upstream's field path and
/// message; once the template exists it deploys and is Healthy. Each analysis site has its
/// own path.
#[test]
fn missing_analysis_template_is_invalid_spec_until_it_exists() {
    let cases = [
        (
            json!({"canary": {"analysis": {"templates": [{"templateName": "later"}]}}}),
            "spec.strategy.canary.analysis.templates",
        ),
        (
            json!({"canary": {"steps": [{"setWeight": 50},
                                        {"analysis": {"templates": [{"templateName": "later"}]}}]}}),
            "spec.strategy.canary.steps[1].analysis.templates",
        ),
        (
            json!({"blueGreen": {"activeService": "active",
                                 "prePromotionAnalysis": {"templates": [{"templateName": "later"}]}}}),
            "spec.strategy.blueGreen.prePromotionAnalysis.templates",
        ),
        (
            json!({"blueGreen": {"activeService": "active",
                                 "postPromotionAnalysis": {"templates": [{"templateName": "later"}]}}}),
            "spec.strategy.blueGreen.postPromotionAnalysis.templates",
        ),
    ];
    for (strategy, path) in cases {
        let mut w = world(rollout(json!({"replicas": 0, "strategy": strategy})));
        w.settle();
        let st = w.status();
        assert_eq!(st.phase.as_deref(), Some("Degraded"), "{path}");
        assert_eq!(
            st.message.as_deref(),
            Some(
                format!(
                    "InvalidSpec: The Rollout \"demo\" is invalid: {path}: Invalid value: \"later\": AnalysisTemplate 'later' not found"
                )
                .as_str()
            )
        );
        assert!(w.rss.is_empty(), "nothing deployed");
        w.templates.push(
            serde_json::from_value(json!({
                "apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisTemplate",
                "metadata": {"name": "later", "namespace": "ns"},
                "spec": {"metrics": [{"name": "m", "provider": {"web": {"url": "http://x"}}}]}
            }))
            .unwrap(),
        );
        w.settle();
        assert_eq!(phase(&w), "Healthy", "{path}: {:#?}", w.status());
    }
}
