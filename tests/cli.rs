//! `kubectl-rollouts` without a cluster: snapshots of `get rollout` and `list rollouts` built
//! from fixtures (`tests/fixtures/cli/*.yaml`, ages from a fixed `now`), `get rollout` and `get
//! experiment` of upstream's experiment testdata compared with upstream's expected text, snapshots of `plan`
//! for several strategies, and the binary's offline behaviour (lint, plan, usage errors, an
//! unreachable API server, help, completion).
//!
//! Snapshots live in `tests/fixtures/cli/snapshots`; review changes with `cargo insta review`
//! (or `INSTA_UPDATE=always` and a diff).

use k8s_openapi::jiff::Timestamp;
use rollouts::cli::info::{ExperimentInfo, ExperimentModel, ListLine, Model, RolloutInfo};
use rollouts::cli::render::{self, Style};
use rollouts::cli::timeline;
use serde::Deserialize as _;
use std::path::{Path, PathBuf};
use std::process::Command;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cli")
}

fn now() -> Timestamp {
    "2024-06-01T12:00:00Z".parse().unwrap()
}

/// Every object of a fixture file, by kind.
#[derive(Default)]
struct Objects {
    rollouts: Vec<rollouts::api::Rollout>,
    model_rest: Model,
}

fn load(file: &str) -> Objects {
    let text = std::fs::read_to_string(fixtures().join(file)).unwrap();
    let mut out = Objects::default();
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let v = serde_yaml::Value::deserialize(doc).unwrap();
        let v: serde_json::Value = serde_json::to_value(v).unwrap();
        match v["kind"].as_str().unwrap_or_default() {
            "Rollout" => out.rollouts.push(serde_json::from_value(v).unwrap()),
            "ReplicaSet" => out
                .model_rest
                .replica_sets
                .push(serde_json::from_value(v).unwrap()),
            "Pod" => out.model_rest.pods.push(serde_json::from_value(v).unwrap()),
            "AnalysisRun" => out
                .model_rest
                .analysis_runs
                .push(serde_json::from_value(v).unwrap()),
            "Experiment" => out
                .model_rest
                .experiments
                .push(serde_json::from_value(v).unwrap()),
            // Not read by the views (an analysis' Job is shown from its run's measurements).
            "Job" => {}
            other => panic!("{file}: unexpected kind {other:?}"),
        }
    }
    out
}

fn model(file: &str) -> Model {
    let mut o = load(file);
    Model {
        rollout: o.rollouts.remove(0),
        ..o.model_rest
    }
}

fn snapshot(name: &str, text: &str) {
    insta::with_settings!({
        snapshot_path => "fixtures/cli/snapshots",
        prepend_module_to_snapshot => false,
        omit_expression => true,
    }, {
        insta::assert_snapshot!(name, text);
    });
}

#[test]
fn get_rollout_paused_canary() {
    let info = RolloutInfo::new(&model("canary-paused.yaml"));
    let text = render::rollout(&info, now(), Style::PLAIN);
    assert!(!text.contains('\x1b'));
    snapshot("get_rollout_paused_canary", &text);
}

#[test]
fn get_rollout_paused_canary_in_colour() {
    let info = RolloutInfo::new(&model("canary-paused.yaml"));
    let text = render::rollout(&info, now(), Style::COLOR);
    assert!(text.contains("\x1b[33mcanary\x1b[0m"));
    // Columns still line up: the same text without escapes is the plain rendering.
    let stripped = strip_ansi(&text);
    assert_eq!(stripped, render::rollout(&info, now(), Style::PLAIN));
    snapshot("get_rollout_paused_canary_colour", &text);
}

#[test]
fn get_rollout_degraded_canary() {
    let info = RolloutInfo::new(&model("canary-degraded.yaml"));
    snapshot(
        "get_rollout_degraded_canary",
        &render::rollout(&info, now(), Style::PLAIN),
    );
}

#[test]
fn get_rollout_blue_green() {
    let info = RolloutInfo::new(&model("bluegreen-paused.yaml"));
    snapshot(
        "get_rollout_blue_green",
        &render::rollout(&info, now(), Style::PLAIN),
    );
}

/// Upstream's `TestExperimentRollout` (`cmd/get/get_test.go`): the same objects
/// (`experiment-analysis.yaml`, from upstream's testdata), the same text.
#[test]
fn get_rollout_with_an_experiment_as_upstream_prints_it() {
    let info = RolloutInfo::new(&model("experiment-analysis.yaml"));
    let want = "\
Name:            rollout-experiment-analysis
Namespace:       jesse-test
Status:          ✖ Degraded
Message:         ProgressDeadlineExceeded: ReplicaSet \"rollout-experiment-analysis-6f646bf7b7\" has timed out progressing.
Strategy:        Canary
  Step:          1/2
  SetWeight:     25
  ActualWeight:  25
Images:          argoproj/rollouts-demo:blue (stable)
                 argoproj/rollouts-demo:yellow (canary)
Replicas:
  Desired:       4
  Current:       4
  Updated:       1
  Ready:         4
  Available:     4

NAME                                                                           KIND         STATUS          AGE  INFO
⟳ rollout-experiment-analysis                                                  Rollout      ✖ Degraded      7d
├──# revision:2
│  ├──⧉ rollout-experiment-analysis-6f646bf7b7                                 ReplicaSet   ✔ Healthy       7d   canary
│  │  └──□ rollout-experiment-analysis-6f646bf7b7-wn5w8                        Pod          ✔ Running       7d   ready:1/1
│  ├──Σ rollout-experiment-analysis-6f646bf7b7-1-vcv27                         Experiment   ◌ Running       7d
│  │  ├──⧉ rollout-experiment-analysis-6f646bf7b7-1-vcv27-baseline-7d768b8b5f  ReplicaSet   ✔ Healthy       7d
│  │  │  └──□ rollout-experiment-analysis-6f646bf7b7-1-vcv27-baseline-7dczdst  Pod          ✔ Running       7d   ready:1/1
│  │  └──⧉ rollout-experiment-analysis-6f646bf7b7-1-vcv27-canary-7699dcf5d     ReplicaSet   ✔ Healthy       7d
│  │     └──□ rollout-experiment-analysis-6f646bf7b7-1-vcv27-canary-7699vgr24  Pod          ✔ Running       7d   ready:1/1
│  └──α rollout-experiment-analysis-random-fail-6f646bf7b7-skqcr               AnalysisRun  ? Inconclusive  7d   ✔ 4,✖ 4,? 1,⚠ 1
│     ├──⊞ rollout-experiment-analysis-random-fail-6f646bf7b7-skqcr-rzl6lt     Job          ✖ Failed        7d
│     ├──⊞ rollout-experiment-analysis-random-fail-6f646bf7b7-skqcr-r8lqpd     Job          ✔ Successful    7d
│     ├──⊞ rollout-experiment-analysis-random-fail-6f646bf7b7-skqcr-rjjsgg     Job          ✔ Successful    7d
│     ├──⊞ rollout-experiment-analysis-random-fail-6f646bf7b7-skqcr-rrnfj5     Job          ✖ Failed        7d
│     ├──⊞ rollout-experiment-analysis-random-fail-6f646bf7b7-skqcr-rx5kqk     Job          ✖ Failed        7d
│     ├──⊞ rollout-experiment-analysis-random-fail-6f646bf7b7-skqcr-rp894b     Job          ✔ Successful    7d
│     ├──⊞ rollout-experiment-analysis-random-fail-6f646bf7b7-skqcr-rmngtj     Job          ✖ Failed        7d
│     └──⊞ rollout-experiment-analysis-random-fail-6f646bf7b7-skqcr-rsxm69     Job          ✔ Successful    7d
└──# revision:1
   └──⧉ rollout-experiment-analysis-f6db98dff                                  ReplicaSet   ✔ Healthy       7d   stable
      ├──□ rollout-experiment-analysis-f6db98dff-8dmnz                         Pod          ✔ Running       7d   ready:1/1
      ├──□ rollout-experiment-analysis-f6db98dff-bb6v6                         Pod          ✔ Running       7d   ready:1/1
      └──□ rollout-experiment-analysis-f6db98dff-bq55x                         Pod          ✔ Running       7d   ready:1/1
";
    pretty_assertions::assert_eq!(render::rollout(&info, now(), Style::PLAIN), want);
}

/// Upstream's `TestGetExperiment`: the Experiment of the same objects.
#[test]
fn get_experiment_as_upstream_prints_it() {
    let m = model("experiment-analysis.yaml");
    let info = ExperimentInfo::new(&ExperimentModel {
        experiment: m.experiments[0].clone(),
        replica_sets: m.replica_sets,
        pods: m.pods,
        analysis_runs: m.analysis_runs,
    });
    let want = "\
Name:            rollout-experiment-analysis-6f646bf7b7-1-vcv27
Namespace:       jesse-test
Status:          ◌ Running
Images:          argoproj/rollouts-demo:blue
                 argoproj/rollouts-demo:yellow

NAME                                                                     KIND        STATUS     AGE  INFO
Σ rollout-experiment-analysis-6f646bf7b7-1-vcv27                         Experiment  ◌ Running  7d
├──⧉ rollout-experiment-analysis-6f646bf7b7-1-vcv27-baseline-7d768b8b5f  ReplicaSet  ✔ Healthy  7d
│  └──□ rollout-experiment-analysis-6f646bf7b7-1-vcv27-baseline-7dczdst  Pod         ✔ Running  7d   ready:1/1
└──⧉ rollout-experiment-analysis-6f646bf7b7-1-vcv27-canary-7699dcf5d     ReplicaSet  ✔ Healthy  7d
   └──□ rollout-experiment-analysis-6f646bf7b7-1-vcv27-canary-7699vgr24  Pod         ✔ Running  7d   ready:1/1
";
    pretty_assertions::assert_eq!(render::experiment(&info, now(), Style::PLAIN), want);
}

/// Upstream's `TestGetRolloutWithExperimentJob`: an experiment step's Experiment with a Job
/// analysis, its template's image tagged `Σ:canary-preview`.
#[test]
fn get_rollout_with_an_experiment_job_as_upstream_prints_it() {
    let info = RolloutInfo::new(&model("experiment-step.yaml"));
    let want = "\
Name:            canary-demo
Namespace:       jesse-test
Status:          ◌ Progressing
Message:         more replicas need to be updated
Strategy:        Canary
  Step:          0/1
  SetWeight:     0
  ActualWeight:  0
Images:          argoproj/rollouts-demo:blue (Σ:canary-preview)
                 argoproj/rollouts-demo:green (stable)
Replicas:
  Desired:       5
  Current:       5
  Updated:       0
  Ready:         5
  Available:     5

NAME                                                           KIND         STATUS         AGE  INFO
⟳ canary-demo                                                  Rollout      ◌ Progressing  7d
├──# revision:2
│  ├──⧉ canary-demo-645d5dbc4c                                 ReplicaSet   • ScaledDown   7d   canary
│  └──Σ canary-demo-645d5dbc4c-2-0                             Experiment   ◌ Running      7d
│     ├──⧉ canary-demo-645d5dbc4c-2-0-canary-preview           ReplicaSet   ✔ Healthy      7d
│     │  └──□ canary-demo-645d5dbc4c-2-0-canary-preview-zmmvz  Pod          ✔ Running      7d   ready:1/1
│     └──α canary-demo-645d5dbc4c-2-0-stress-test              AnalysisRun  ◌ Running      7d
│        └──⊞ 4e2d824d-01af-11ea-b38c-42010aa80083.stress.1    Job          ◌ Running      7d
└──# revision:1
   └──⧉ canary-demo-877894d5b                                  ReplicaSet   ✔ Healthy      7d   stable
      ├──□ canary-demo-877894d5b-n6xqz                         Pod          ✔ Running      7d   ready:1/1
      ├──□ canary-demo-877894d5b-nlmj9                         Pod          ✔ Running      7d   ready:1/1
      ├──□ canary-demo-877894d5b-txgs5                         Pod          ✔ Running      7d   ready:1/1
      ├──□ canary-demo-877894d5b-wfqqr                         Pod          ✔ Running      7d   ready:1/1
      └──□ canary-demo-877894d5b-zhh6x                         Pod          ✔ Running      7d   ready:1/1
";
    pretty_assertions::assert_eq!(render::rollout(&info, now(), Style::PLAIN), want);
}

#[test]
fn get_rollout_as_json() {
    let info = RolloutInfo::new(&model("canary-paused.yaml"));
    let v = serde_json::to_value(&info).unwrap();
    assert_eq!(v["status"], "Paused");
    assert_eq!(v["step"], "1/8");
    assert_eq!(v["setWeight"], "20");
    assert_eq!(v["actualWeight"], "20");
    assert_eq!(v["replicaSets"][0]["canary"], true);
    assert_eq!(v["replicaSets"][0]["pods"].as_array().unwrap().len(), 1);
    assert_eq!(v["analysisRuns"][1]["failed"], 2);
    snapshot(
        "get_rollout_paused_canary_yaml",
        &serde_yaml::to_string(&info).unwrap(),
    );
}

fn all_list_lines(namespace: Option<&str>) -> Vec<ListLine> {
    let mut rollouts = Vec::new();
    let mut rss = Vec::new();
    for f in [
        "canary-paused.yaml",
        "canary-degraded.yaml",
        "bluegreen-paused.yaml",
        "list-extra.yaml",
    ] {
        let o = load(f);
        rollouts.extend(o.rollouts);
        rss.extend(o.model_rest.replica_sets);
    }
    let mut lines: Vec<ListLine> = rollouts
        .iter()
        .filter(|r| namespace.is_none_or(|ns| r.metadata.namespace.as_deref() == Some(ns)))
        .map(|r| {
            let own: Vec<_> = rss
                .iter()
                .filter(|rs| rs.metadata.namespace == r.metadata.namespace)
                .cloned()
                .collect();
            ListLine::new(r, &own)
        })
        .collect();
    lines.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    lines
}

#[test]
fn list_rollouts_of_a_namespace() {
    snapshot(
        "list_rollouts_namespace",
        &render::list(&all_list_lines(Some("demo")), false),
    );
}

#[test]
fn list_rollouts_of_all_namespaces() {
    let lines = all_list_lines(None);
    let paused = lines.iter().find(|l| l.name == "canary-demo").unwrap();
    assert_eq!(
        (
            paused.step.as_str(),
            paused.set_weight.as_str(),
            paused.actual_weight.as_str()
        ),
        ("1/8", "20", "20")
    );
    let rolling = lines.iter().find(|l| l.name == "rolling").unwrap();
    assert_eq!(rolling.status, "Progressing", "generation not observed yet");
    snapshot("list_rollouts_all_namespaces", &render::list(&lines, true));
}

fn plan_text(file: &Path, from_image: Option<&str>) -> String {
    let text = std::fs::read_to_string(file).unwrap();
    let ro = timeline::rollout_from_manifest(&text, &file.display().to_string()).unwrap();
    let t = timeline::simulate(&ro, from_image).unwrap();
    timeline::render(&t)
}

#[test]
fn plan_of_the_seeds_canary() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/canary-demo.yaml");
    let text = plan_text(&file, Some("argoproj/rollouts-demo:green"));
    assert!(text.contains("Minimum duration: 30s, plus 1 manual promotion"));
    snapshot("plan_canary_demo", &text);
}

#[test]
fn plan_without_surge() {
    let text = plan_text(&fixtures().join("plan/no-surge.yaml"), None);
    snapshot("plan_no_surge", &text);
}

#[test]
fn plan_with_odd_weights_a_large_surge_and_a_paused_spec() {
    snapshot(
        "plan_odd_weights",
        &plan_text(&fixtures().join("plan/odd-weights.yaml"), None),
    );
}

#[test]
fn plan_of_a_rolling_update() {
    snapshot(
        "plan_rolling",
        &plan_text(&fixtures().join("plan/rolling.yaml"), None),
    );
}

#[test]
fn plan_with_an_analysis_step_assumes_it_passes() {
    snapshot(
        "plan_analysis",
        &plan_text(&fixtures().join("plan/analysis.yaml"), None),
    );
}

#[test]
fn plan_with_an_experiment_step_assumes_it_succeeds_after_its_duration() {
    let text = plan_text(&fixtures().join("plan/experiment.yaml"), None);
    assert!(text.contains("experiment"), "{text}");
    assert!(text.contains("waits 1m0s"), "{text}");
    snapshot("plan_experiment", &text);
}

/// Blue-green is being added to the planner: whatever it does, the timeline names the
/// blue-green stages (or the InvalidSpec), never canary steps. Not a snapshot, so that the
/// planner's blue-green work does not have to touch this file.
#[test]
fn plan_of_a_blue_green() {
    let text = plan_text(&fixtures().join("plan/bluegreen.yaml"), None);
    assert!(text.contains("Strategy:         BlueGreen"), "{text}");
    assert!(!text.contains("maxSurge"), "{text}");
    // The timeline itself: the preview scales up beside the active version (2 + 2 pods,
    // the 2 old ones still serving), then the update is promoted and done.
    let rows: Vec<Vec<&str>> = text
        .lines()
        .skip_while(|l| !l.starts_with("AT "))
        .skip(1)
        .take_while(|l| !l.is_empty())
        .map(|l| {
            l.split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect()
        })
        .collect();
    assert_eq!(
        rows,
        [
            vec![
                "0s",
                "-",
                "preview: new version scaling up",
                "0%",
                "2",
                "2",
                "4",
                "2"
            ],
            vec![
                "0s",
                "-",
                "done: new version active and stable",
                "100%",
                "0",
                "2",
                "4",
                "4"
            ],
        ],
        "{text}"
    );
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The binary, offline.
// ---------------------------------------------------------------------------------------------

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_kubectl-rollouts"))
        .args(args)
        .env_remove("KUBECONFIG")
        .env(
            "HOME",
            std::env::temp_dir().join("kubectl-rollouts-test-home"),
        )
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
    }
}

#[test]
fn lint_reports_field_paths_and_fails() {
    let file = fixtures().join("invalid.yaml");
    let r = run(&["lint", "-f", file.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    snapshot("lint_invalid", &r.stdout);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(r.stderr.starts_with("error: "), "{}", r.stderr);
    assert!(
        r.stderr.contains("error(s) in rollout \"invalid\""),
        "{}",
        r.stderr
    );
}

#[test]
fn lint_accepts_the_example() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/canary-demo.yaml");
    let r = run(&["lint", "-f", file.to_str().unwrap()]);
    assert_eq!((r.code, r.stdout.as_str(), r.stderr.as_str()), (0, "", ""));
}

#[test]
fn lint_of_a_missing_file_is_not_found() {
    let r = run(&["lint", "-f", "/nonexistent/rollout.yaml"]);
    assert_eq!(r.code, 3);
    assert_eq!(
        r.stderr,
        "error: file \"/nonexistent/rollout.yaml\" not found\n"
    );
}

#[test]
fn plan_writes_an_svg_chart() {
    let svg =
        std::env::temp_dir().join(format!("kubectl-rollouts-plan-{}.svg", std::process::id()));
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/canary-demo.yaml");
    let r = run(&[
        "plan",
        "-f",
        file.to_str().unwrap(),
        "--svg",
        svg.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let chart = std::fs::read_to_string(&svg).unwrap();
    let _ = std::fs::remove_file(&svg);
    assert!(chart.starts_with("<svg"));
    assert!(chart.contains("setWeight: 20") && chart.contains("weight %"));
    // Pods by version, and the indefinite pause drawn as a band of its own.
    assert!(chart.contains("new version pods") && chart.contains("old version pods"));
    assert!(chart.contains("waits for promote"), "{chart}");
    let r = run(&["plan", "-f", file.to_str().unwrap(), "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["totalSeconds"], 30);
    assert_eq!(v["outcome"], "healthy");
}

#[test]
fn plan_of_an_unsupported_rollout_fails_with_the_reason() {
    let file = fixtures().join("plan/plugin.yaml");
    let r = run(&["plan", "-f", file.to_str().unwrap()]);
    assert_eq!(r.code, 1);
    assert!(
        r.stdout
            .contains("plugin steps are not supported by this controller yet"),
        "{}",
        r.stdout
    );
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
}

#[test]
fn an_unreachable_api_server_is_exit_5_with_one_line() {
    let dir = std::env::temp_dir().join(format!("kubectl-rollouts-kc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kc = dir.join("config");
    std::fs::write(
        &kc,
        "apiVersion: v1\nkind: Config\ncurrent-context: dead\nclusters:\n- name: dead\n  cluster: {server: \"https://127.0.0.1:1\", insecure-skip-tls-verify: true}\nusers:\n- name: u\n  user: {token: t}\ncontexts:\n- name: dead\n  context: {cluster: dead, user: u, namespace: team}\n",
    )
    .unwrap();
    let r = run(&[
        "get",
        "rollout",
        "demo",
        "--kubeconfig",
        kc.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 5, "{}", r.stderr);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("cannot reach the Kubernetes API server at https://127.0.0.1:1"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("rollout \"demo\""), "{}", r.stderr);
    assert!(r.stderr.contains("namespace \"team\""), "{}", r.stderr);
    // KUBECONFIG is honoured the same way; --context picks a context.
    let out = Command::new(env!("CARGO_BIN_EXE_kubectl-rollouts"))
        .args(["status", "demo", "--context", "nope"])
        .env("KUBECONFIG", &kc)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("context \"nope\" not found"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn no_kubeconfig_is_exit_5() {
    let r = run(&["list", "rollouts"]);
    assert_eq!(r.code, 5, "{}", r.stderr);
    assert!(
        r.stderr.contains("no Kubernetes configuration"),
        "{}",
        r.stderr
    );
}

#[test]
fn usage_errors_are_exit_2() {
    assert_eq!(run(&["promote"]).code, 2);
    assert_eq!(run(&["get", "rollout"]).code, 2);
    assert_eq!(run(&["frobnicate"]).code, 2);
    assert_eq!(run(&["status", "x", "--timeout", "soon"]).code, 2);
    let r = run(&["set", "image", "demo", "no-equals-sign"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("expected CONTAINER=IMAGE"),
        "{}",
        r.stderr
    );
}

#[test]
fn dashboard_flags() {
    let r = run(&["dashboard", "--help"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    for s in [
        "--port",
        "-p",
        "[default: 3100]",
        "--address",
        "[default: 127.0.0.1]",
        "--root-path",
        "[default: rollouts]",
        "--read-only",
        "--all-namespaces",
        "-A",
    ] {
        assert!(
            r.stdout.contains(s),
            "dashboard --help lacks {s}: {}",
            r.stdout
        );
    }
    // Bad flags are usage errors, before any connection is tried.
    let r = run(&["dashboard", "--root-path", "../etc"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("--root-path"), "{}", r.stderr);
    let r = run(&["dashboard", "--address", "localhost"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
}

#[test]
fn help_version_and_completion() {
    let r = run(&["--help"]);
    assert_eq!(r.code, 0);
    for s in [
        "Exit codes:",
        "promote",
        "abort",
        "retry",
        "undo",
        "plan",
        "--kubeconfig",
        "--context",
        "--namespace",
    ] {
        assert!(r.stdout.contains(s), "help lacks {s}: {}", r.stdout);
    }
    let r = run(&["version"]);
    assert_eq!(r.code, 0);
    assert!(r.stdout.starts_with("kubectl-rollouts: v"));
    for shell in ["bash", "zsh", "fish"] {
        let r = run(&["completion", shell]);
        assert_eq!(r.code, 0);
        assert!(r.stdout.contains("kubectl-rollouts"), "{shell}");
    }
}
