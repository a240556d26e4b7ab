//! Argo CD, proven with Argo CD's own Lua against the controller's real objects.
//!
//! - Health: at each stage of a canary and of a blue-green update, Argo CD's `health.lua` on
//!   the Rollout as the API server returns it gives what upstream users see (Healthy,
//!   Progressing, Suspended at a pause with upstream's message, Degraded after an abort). At
//!   every poll, the script's verdict is also compared with the status it surfaces.
//! - Actions: each Rollout action (restart, skip-current-step, resume, abort, retry, pause,
//!   promote-full) is offered by Argo CD's `discovery.lua` where it is used, its `action.lua`
//!   runs on the live object, and the result is applied as Argo CD applies it: a JSON merge
//!   patch from the live object, its `status` part on the status subresource, the rest on the
//!   object. Each has upstream's effect on the rollout.
//!
//! The scripts come from the shared corpus. Without it (a clean clone) the same stages are
//! checked on the status alone and the actions are applied as the patches Argo CD's scripts
//! produce (written out here, and compared with the scripts' when the corpus is present); only
//! the Lua part is skipped, with a notice.

use crate::argocd_lua::{self, Health};
use crate::common::*;
use crate::upstream_fixtures::*;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ApiResource, DynamicObject, ListParams, Patch, PatchParams};
use kube::{Api, ResourceExt as _};
use rollouts::api::Rollout;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::Duration;

/// The Rollout as the API server returns it (what Argo CD's `GetResource` reads).
async fn live(ns: &TestNs, name: &str) -> Value {
    let api: Api<DynamicObject> = Api::namespaced_with(
        ns.client.clone(),
        &ns.name,
        &ApiResource::erase::<Rollout>(&()),
    );
    serde_json::to_value(api.get(name).await.expect("reading the Rollout")).unwrap()
}

/// What `health.lua` surfaces from a status that records a phase (Argo Rollouts ≥ 1.0): the
/// phase (`Paused` shown as `Suspended`) and message, once the generation is observed.
fn surfaced(obj: &Value) -> Health {
    let st = &obj["status"];
    let observed = st["observedGeneration"]
        .as_str()
        .and_then(|g| g.parse::<i64>().ok());
    if observed != obj["metadata"]["generation"].as_i64() {
        return Health {
            status: "Progressing".into(),
            message: "Waiting for rollout spec update to be observed".into(),
        };
    }
    let phase = st["phase"].as_str().unwrap_or_default();
    Health {
        status: if phase == "Paused" {
            "Suspended".into()
        } else {
            phase.into()
        },
        message: st["message"].as_str().unwrap_or_default().into(),
    }
}

/// Argo CD's health of the live Rollout: by its `health.lua` where the corpus is present
/// (checked against what the status surfaces), else what the status surfaces.
async fn argo_cd_health(ns: &TestNs, name: &str, script: Option<&str>) -> Health {
    let obj = live(ns, name).await;
    let from_status = surfaced(&obj);
    let Some(script) = script else {
        return from_status;
    };
    let h = argocd_lua::health(script, &obj).expect("running health.lua");
    assert_eq!(h, from_status, "health.lua vs the status it surfaces");
    h
}

/// Waits until Argo CD shows `status` with a message starting with `message`; returns every
/// distinct health seen on the way.
async fn wait_health(
    ns: &TestNs,
    name: &str,
    script: Option<&str>,
    status: &str,
    message: &str,
) -> Vec<Health> {
    let seen = std::sync::Mutex::new(Vec::<Health>::new());
    let seen_ref = &seen;
    ns.wait_for(
        &format!("Argo CD health {status} {message:?}"),
        WAIT,
        || async move {
            let h = argo_cd_health(ns, name, script).await;
            let done = h.status == status && h.message.starts_with(message);
            let mut s = seen_ref.lock().unwrap();
            if s.last() != Some(&h) {
                s.push(h);
            }
            Ok(done.then_some(()))
        },
    )
    .await;
    seen.into_inner().unwrap()
}

fn health_script(kind: &str) -> Option<String> {
    argocd_lua::corpus().map(|d| argocd_lua::read(&d.join(kind), "health.lua"))
}

fn statuses(seen: &[Health]) -> Vec<&str> {
    seen.iter().map(|h| h.status.as_str()).collect()
}

/// The seed canary shape: Healthy; an update is Progressing while the canary's pods start,
/// then Suspended at `pause: {}` with upstream's `CanaryPauseStep`; promoted, Progressing
/// again through the remaining steps, then Healthy; a further update aborted is Degraded
/// with upstream's `RolloutAborted: Rollout aborted update to revision 3`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn argo_cd_health_through_a_canary() {
    let name = "argocd-canary";
    let (ns, _ctl) = setup("argocd-health-canary").await;
    let script = health_script("Rollout");
    let script = script.as_deref();
    ns.apply(&format!(
        r#"
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {{name: {name}}}
spec:
  replicas: 4
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata:
      labels: {{app: {name}}}
      annotations: {{sim.rollouts.io/ready-delay: 2s}}
    spec:
      containers: [{{name: app, image: "app:v1"}}]
  strategy:
    canary:
      steps:
      - setWeight: 25
      - pause: {{}}
      - setWeight: 75
      - pause: {{duration: 1}}
"#
    ))
    .await;
    let seen = wait_health(&ns, name, script, "Healthy", "").await;
    assert!(statuses(&seen).contains(&"Progressing"), "{seen:?}");
    set_image(&ns, name, "app:v2").await;
    let seen = wait_health(&ns, name, script, "Suspended", "CanaryPauseStep").await;
    assert!(
        statuses(&seen).contains(&"Progressing"),
        "Progressing while the canary starts: {seen:?}"
    );
    promote(&ns, name).await;
    let seen = wait_health(&ns, name, script, "Healthy", "").await;
    assert!(statuses(&seen).contains(&"Progressing"), "{seen:?}");
    set_image(&ns, name, "app:v3").await;
    wait_health(&ns, name, script, "Suspended", "CanaryPauseStep").await;
    abort(&ns, name).await;
    wait_health(
        &ns,
        name,
        script,
        "Degraded",
        "RolloutAborted: Rollout aborted update to revision 3",
    )
    .await;
}

/// A blue-green update: Healthy; Progressing while the preview's pods start; Suspended with
/// upstream's `BlueGreenPause`; Healthy once promoted; a further update aborted is Degraded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn argo_cd_health_through_a_blue_green_update() {
    let name = "argocd-bg";
    let (ns, _ctl) = setup("argocd-health-bg").await;
    let script = health_script("Rollout");
    let script = script.as_deref();
    let manifest = service("argocd-bg-active", name)
        + &service("argocd-bg-preview", name)
        + &format!(
            r#"
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {{name: {name}}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata:
      labels: {{app: {name}}}
      annotations: {{sim.rollouts.io/ready-delay: 2s}}
    spec:
      containers: [{{name: app, image: "app:v1"}}]
  strategy:
    blueGreen:
      activeService: argocd-bg-active
      previewService: argocd-bg-preview
      autoPromotionEnabled: false
      scaleDownDelaySeconds: 2
"#
        );
    ns.apply(&manifest).await;
    wait_health(&ns, name, script, "Healthy", "").await;
    set_image(&ns, name, "app:v2").await;
    let seen = wait_health(&ns, name, script, "Suspended", "BlueGreenPause").await;
    assert!(statuses(&seen).contains(&"Progressing"), "{seen:?}");
    promote(&ns, name).await;
    wait_health(&ns, name, script, "Healthy", "").await;
    set_image(&ns, name, "app:v3").await;
    wait_health(&ns, name, script, "Suspended", "BlueGreenPause").await;
    abort(&ns, name).await;
    wait_health(
        &ns,
        name,
        script,
        "Degraded",
        "RolloutAborted: Rollout aborted update to revision 3",
    )
    .await;
}

/// The patch Argo CD's scripts produce for `action` on `live` (restart's time aside), as
/// Argo CD's merge patch from the live object would have it.
fn expected_patch(action: &str, live: &Value) -> Value {
    let st = &live["status"];
    match action {
        "abort" => json!({"status": {"abort": true}}),
        "retry" => json!({"status": {"abort": null}}),
        "pause" => json!({"spec": {"paused": true}}),
        "promote-full" => json!({"status": {"promoteFull": true}}),
        "resume" => {
            let mut p = json!({});
            if st["pauseConditions"]
                .as_array()
                .is_some_and(|a| !a.is_empty())
            {
                p["status"] = json!({"pauseConditions": null});
            }
            if live["spec"]["paused"] == json!(true) {
                p["spec"] = json!({"paused": false});
            }
            p
        }
        "skip-current-step" => {
            let mut s = json!({"currentStepIndex": st["currentStepIndex"].as_i64().unwrap() + 1});
            if st["pauseConditions"]
                .as_array()
                .is_some_and(|a| !a.is_empty())
            {
                s["pauseConditions"] = Value::Null;
            }
            json!({ "status": s })
        }
        "restart" => json!({"spec": {"restartAt": "<now>"}}),
        other => panic!("no such action {other}"),
    }
}

/// Runs Argo CD action `action` on Rollout `name` as Argo CD's server does: discovery must
/// offer it enabled; the script's result becomes a merge patch from the live object, whose
/// status part goes to the status subresource and the rest to the object. Without the
/// corpus, the patch is the one the scripts produce ([`expected_patch`]).
async fn run_action(ns: &TestNs, name: &str, corpus: Option<&PathBuf>, action: &str) {
    let obj = live(ns, name).await;
    let mut want = expected_patch(action, &obj);
    let patch = match corpus {
        Some(dir) => {
            let dir = dir.join("Rollout/actions");
            let offered =
                argocd_lua::discovery(&argocd_lua::read(&dir, "discovery.lua"), &obj).unwrap();
            assert!(
                offered.iter().any(|a| a.name == action && !a.disabled),
                "{action} not offered: {offered:?}"
            );
            let script = argocd_lua::read(&dir, &format!("{action}/action.lua"));
            let new = argocd_lua::action(&script, &obj).expect("running the action");
            let patch = argocd_lua::create_merge_patch(&obj, &new);
            if action == "restart" {
                want["spec"]["restartAt"] = patch["spec"]["restartAt"].clone();
            }
            assert_eq!(patch, want, "{action}: Argo CD's patch");
            patch
        }
        None => {
            if action == "restart" {
                let now = jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ");
                want["spec"]["restartAt"] = json!(now.to_string());
            }
            want
        }
    };
    let api: Api<DynamicObject> = Api::namespaced_with(
        ns.client.clone(),
        &ns.name,
        &ApiResource::erase::<Rollout>(&()),
    );
    let (rest, status) = argocd_lua::split_status_patch(&patch);
    if let Some(status) = status {
        api.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
            .await
            .unwrap_or_else(|e| panic!("{action}: status patch: {e}"));
    }
    if let Some(rest) = rest {
        api.patch(name, &PatchParams::default(), &Patch::Merge(&rest))
            .await
            .unwrap_or_else(|e| panic!("{action}: patch: {e}"));
    }
}

async fn wait_step(ns: &TestNs, name: &str, what: &str, index: i32, phase_: &str) -> Rollout {
    wait_rollout(ns, name, what, WAIT, |ro, _| {
        let (ph, _, idx) = phase(ro);
        ph == phase_
            && idx == Some(index)
            && ro
                .status
                .as_ref()
                .and_then(|s| s.observed_generation.clone())
                == ro.metadata.generation.map(|g| g.to_string())
    })
    .await
}

/// Every Rollout action of Argo CD on one canary, each with upstream's effect: restart
/// replaces the pods and records `status.restartedAt`; pause holds a step that is under way
/// ("manually paused") and resume lets it go on; skip-current-step moves past the
/// `pause: {}` to the next one (step 3, 2 + 2 pods); resume goes on to the last pause (step
/// 5, 3 + 1); abort scales the canary to 0 (Degraded); retry starts the steps again (step 1,
/// 1 + 3); promote-full ends the update at once (Healthy, 4 pods of the new revision).
///
/// Not exercised: pause then resume at a `pause: {}` step. Argo CD's resume then writes two
/// patches (status, then spec); a reconcile between them sees the pause condition gone while
/// `spec.paused` is still true, which, upstream and here alike, forgets the step's promotion,
/// so the Rollout pauses at that step again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn argo_cd_rollout_actions_have_upstreams_effect() {
    let name = "argocd-actions";
    let (ns, _ctl) = setup("argocd-actions").await;
    let corpus = argocd_lua::corpus();
    let corpus = corpus.as_ref();
    ns.apply(&format!(
        r#"
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {{name: {name}}}
spec:
  replicas: 4
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers: [{{name: app, image: "app:v1"}}]
  strategy:
    canary:
      maxSurge: 1
      maxUnavailable: 1
      steps:
      - setWeight: 25
      - pause: {{}}
      - setWeight: 50
      - pause: {{}}
      - setWeight: 75
      - pause: {{}}
"#
    ))
    .await;
    wait_status(&ns, name, "Healthy").await;

    // restart
    tokio::time::sleep(Duration::from_secs(1)).await;
    run_action(&ns, name, corpus, "restart").await;
    let ro = get_rollout(&ns, name).await;
    let at = ro.spec.restart_at.clone().expect("spec.restartAt set");
    wait_rollout(&ns, name, "restartedAt recorded", WAIT, |ro, _| {
        ro.status.as_ref().and_then(|s| s.restarted_at.as_ref()) == Some(&at)
    })
    .await;
    let at: jiff::Timestamp = at.0;
    ns.wait_for("every pod newer than restartAt", WAIT, || async {
        let pods = ns.api::<Pod>().list(&ListParams::default()).await?.items;
        let live: Vec<&Pod> = pods
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .collect();
        Ok((live.len() == 4
            && live
                .iter()
                .all(|p| p.creation_timestamp().is_some_and(|t| t.0 >= at)))
        .then_some(()))
    })
    .await;
    wait_status(&ns, name, "Healthy").await;

    // An update whose pods take 4 s to become ready: paused by the user while the first
    // setWeight is still under way, the step is held even once the pods are ready; resumed
    // (no pause condition to clear: the resume patch is the spec alone), it goes on to the
    // `pause: {}` at step 1.
    patch_spec(
        &ns,
        name,
        json!({"template": {"metadata": {"annotations": {"sim.rollouts.io/ready-delay": "4s"}},
                            "spec": {"containers": [{"name": "app", "image": "app:v2"}]}}}),
    )
    .await;
    wait_rollout(
        &ns,
        name,
        "step 0 under way: the canary's pod created, not ready",
        WAIT,
        |ro, rss| {
            let (ph, _, idx) = phase(ro);
            let by_rev = |r: i64| rss.iter().find(|rs| revision(rs) == r).map(spec_replicas);
            ph == "Progressing" && idx == Some(0) && by_rev(2) == Some(1) && by_rev(1) == Some(3)
        },
    )
    .await;
    run_action(&ns, name, corpus, "pause").await;
    let ro = wait_rollout(&ns, name, "manually paused", WAIT, |ro, _| {
        phase(ro).1 == "manually paused"
    })
    .await;
    assert_eq!(ro.spec.paused, Some(true));
    tokio::time::sleep(Duration::from_secs(6)).await;
    let (ph, msg, idx) = phase(&get_rollout(&ns, name).await);
    assert_eq!(
        (ph.as_str(), msg.as_str(), idx),
        ("Paused", "manually paused", Some(0)),
        "held at step 0 with the canary's pod ready"
    );
    expect_canary_stable_pods(&ns, name, 1, 3).await;
    run_action(&ns, name, corpus, "resume").await;
    let ro = wait_step(&ns, name, "resumed to the pause at step 1", 1, "Paused").await;
    assert_eq!(phase(&ro).1, "CanaryPauseStep");
    assert_eq!(ro.spec.paused, Some(false));

    run_action(&ns, name, corpus, "skip-current-step").await;
    wait_step(&ns, name, "skipped to the pause at step 3", 3, "Paused").await;
    expect_canary_stable_pods(&ns, name, 2, 2).await;

    run_action(&ns, name, corpus, "resume").await;
    wait_step(&ns, name, "resumed to the pause at step 5", 5, "Paused").await;
    expect_canary_stable_pods(&ns, name, 3, 1).await;

    run_action(&ns, name, corpus, "abort").await;
    wait_status(&ns, name, "Degraded").await;
    expect_canary_stable_pods(&ns, name, 0, 4).await;

    run_action(&ns, name, corpus, "retry").await;
    wait_step(&ns, name, "retried: paused at step 1", 1, "Paused").await;
    expect_canary_stable_pods(&ns, name, 1, 3).await;

    run_action(&ns, name, corpus, "promote-full").await;
    let ro = wait_status(&ns, name, "Healthy").await;
    let st = ro.status.clone().unwrap();
    assert_eq!(st.stable_rs, st.current_pod_hash);
    expect_revision_pods(&ns, name, &[(2, 4), (1, 0)]).await;
    assert_eq!(st.promote_full, None, "promoteFull consumed");
}
