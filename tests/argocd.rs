//! Argo CD's own Lua for Argo Rollouts objects (health checks of Rollout, AnalysisRun and
//! Experiment; the Rollout and AnalysisRun actions and their discovery) run with Argo CD's own
//! test cases (`health_test.yaml`, `actions/action_test.yaml`) through this project's runner
//! (`tests/argocd_lua`). The cases are read from the shared corpus; where it is absent they are
//! skipped with a notice (`ROLLOUTS_REQUIRE_COMPAT=1` makes absence a failure). The runner's
//! own tests below need no corpus. The e2e suite runs the same scripts on the controller's
//! real status (`tests/e2e/argocd.rs`).

#[path = "argocd_lua/mod.rs"]
mod argocd_lua;

use argocd_lua::*;
use serde_json::{Value, json};

/// Argo CD's `TestLuaHealthScript` for one kind: every case's status and message.
fn health_cases(kind: &str) -> usize {
    let Some(root) = corpus() else {
        return 0;
    };
    let dir = root.join(kind);
    let script = read(&dir, "health.lua");
    let cases = read_yaml(&dir, "health_test.yaml");
    let cases = cases["tests"].as_array().expect("tests");
    assert!(!cases.is_empty());
    for case in cases {
        let input = case["inputPath"].as_str().unwrap();
        let obj = read_yaml(&dir, input);
        let want: Health = serde_json::from_value(case["healthStatus"].clone()).unwrap();
        let got = health(&script, &obj).unwrap_or_else(|e| panic!("{kind} {input}: {e}"));
        assert_eq!(got, want, "{kind} {input}");
    }
    cases.len()
}

#[test]
fn argo_cd_rollout_health_cases() {
    let n = health_cases("Rollout");
    if n > 0 {
        assert!(n >= 20, "{n} cases");
    }
}

#[test]
fn argo_cd_analysis_run_health_cases() {
    health_cases("AnalysisRun");
}

#[test]
fn argo_cd_experiment_health_cases() {
    health_cases("Experiment");
}

/// Argo CD's normaliser for action tests: `spec.restartAt` is a timestamp of the run.
fn normalize(mut obj: Value) -> Value {
    if obj["kind"] == "Rollout"
        && let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut)
    {
        spec.remove("restartAt");
    }
    obj
}

/// Argo CD's `TestLuaResourceActionsScript` for one kind: discovery offers exactly the
/// expected actions (enabled or not), and each action's result holds the expected object.
fn action_cases(kind: &str) -> (usize, usize) {
    let Some(root) = corpus() else {
        return (0, 0);
    };
    let dir = root.join(kind).join("actions");
    let cases = read_yaml(&dir, "action_test.yaml");
    let discovery_lua = read(&dir, "discovery.lua");
    let discoveries = cases["discoveryTests"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for case in &discoveries {
        let input = case["inputPath"].as_str().unwrap();
        let obj = read_yaml(&dir, input);
        let got = discovery(&discovery_lua, &obj).unwrap_or_else(|e| panic!("{input}: {e}"));
        let mut want: Vec<ResourceAction> = serde_json::from_value(case["result"].clone()).unwrap();
        want.sort_by(|a, b| a.name.cmp(&b.name));
        assert_eq!(got, want, "discovery of {input}");
    }
    let actions = cases["actionTests"].as_array().cloned().unwrap_or_default();
    for case in &actions {
        let name = case["action"].as_str().unwrap();
        let input = case["inputPath"].as_str().unwrap();
        let script = read(&dir, &format!("{name}/action.lua"));
        let obj = read_yaml(&dir, input);
        let got = action(&script, &obj).unwrap_or_else(|e| panic!("{name} on {input}: {e}"));
        if name == "restart" {
            let at = got["spec"]["restartAt"].as_str().unwrap_or_default();
            assert!(
                at.parse::<jiff::Timestamp>().is_ok() && at.ends_with('Z'),
                "restartAt {at:?}"
            );
        }
        let want = read_yaml(&dir, case["expectedOutputPath"].as_str().unwrap());
        if let Err(diff) = contained(&normalize(want), &normalize(got.clone()), "") {
            panic!("{name} on {input}: {diff}\n{got:#}");
        }
    }
    (discoveries.len(), actions.len())
}

#[test]
fn argo_cd_rollout_action_cases() {
    let (d, a) = action_cases("Rollout");
    if d + a > 0 {
        assert!(d >= 9 && a >= 8, "{d} discovery and {a} action cases");
    }
}

#[test]
fn argo_cd_analysis_run_action_cases() {
    action_cases("AnalysisRun");
}

#[test]
fn merge_patch_of_a_status_change() {
    let live = json!({"spec": {"a": 1}, "status": {"abort": true, "x": [1, 2]}});
    let new = json!({"spec": {"a": 1}, "status": {"x": [1, 2, 3]}});
    let p = create_merge_patch(&live, &new);
    assert_eq!(p, json!({"status": {"abort": null, "x": [1, 2, 3]}}));
    assert_eq!(
        split_status_patch(&p),
        (
            None,
            Some(json!({"status": {"abort": null, "x": [1, 2, 3]}}))
        )
    );
    let p = create_merge_patch(&live, &json!({"spec": {"a": 2}, "status": live["status"]}));
    assert_eq!(
        split_status_patch(&p),
        (Some(json!({"spec": {"a": 2}})), None)
    );
}

#[test]
fn lua_sees_nulls_as_nil_and_round_trips_objects() {
    let obj = json!({"spec": {"paused": null, "replicas": 3, "m": {}},
                         "status": {"pauseConditions": [{"reason": "x"}]}});
    let h = health(
        "local hs = {}\n\
             if obj.spec.paused == nil and table.getn(obj.status.pauseConditions) == 1 then\n\
               hs.status = 'Suspended'; hs.message = tostring(obj.spec.replicas + 1)\n\
             end\n\
             return hs",
        &obj,
    )
    .unwrap();
    assert_eq!(h.status, "Suspended");
    assert_eq!(h.message, "4");
    let out = action(
        "obj.spec.replicas = obj.spec.replicas + 1\nreturn obj",
        &obj,
    )
    .unwrap();
    assert_eq!(out["spec"]["replicas"], json!(4));
    assert_eq!(out["spec"]["m"], json!({}), "empty map kept a map");
    assert!(out["spec"].get("paused").is_none());
}

#[test]
fn containment_is_argo_cds_comparison() {
    assert!(contained(&json!({"a": 1}), &json!({"a": 1.0, "b": 2}), "").is_ok());
    assert!(contained(&json!({"a": [1]}), &json!({"a": [1, 2]}), "").is_err());
    assert!(contained(&json!({"a": {"b": 1}}), &json!({"a": {}}), "").is_err());
}
