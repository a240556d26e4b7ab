//! The Experiment planner, step by step in a small in-memory world: the plan's effects are
//! applied to the ReplicaSets, whose pods become available when the test says so.

use super::*;
use crate::api::template_status_code as code;
use crate::api::{AnalysisRun, AnalysisTemplate, ExperimentCondition, TemplateStatus};
use k8s_openapi::api::apps::v1::ReplicaSetStatus;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::SignedDuration;
use kube_core::ResourceExt;
use pretty_assertions::assert_eq;
use serde_json::json;

fn experiment(spec: serde_json::Value) -> Experiment {
    serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Experiment",
        "metadata": {"name": "ex", "namespace": "ns", "uid": "uid-1"},
        "spec": spec,
    }))
    .unwrap()
}

fn template(name: &str, replicas: i32) -> serde_json::Value {
    json!({"name": name, "replicas": replicas,
           "selector": {"matchLabels": {"app": name}},
           "template": {"metadata": {"labels": {"app": name}},
                        "spec": {"containers": [{"name": "c", "image": "nginx"}]}}})
}

fn two_templates(extra: serde_json::Value) -> Experiment {
    let mut spec = json!({"templates": [template("baseline", 1), template("canary", 2)]});
    spec.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    experiment(spec)
}

fn t0() -> Timestamp {
    "2026-01-01T00:00:00Z".parse().unwrap()
}

fn at(secs: i64) -> Timestamp {
    t0().checked_add(SignedDuration::from_secs(secs)).unwrap()
}

/// An Experiment and its ReplicaSets; effects are applied as the API server would.
struct World {
    ex: Experiment,
    rss: Vec<ReplicaSet>,
    taken: BTreeSet<String>,
    refused: BTreeMap<String, String>,
    runs: Vec<AnalysisRun>,
    templates: Vec<AnalysisTemplate>,
    services: Vec<k8s_openapi::api::core::v1::Service>,
}

impl World {
    fn new(ex: Experiment) -> World {
        World {
            ex,
            rss: vec![],
            taken: BTreeSet::new(),
            refused: BTreeMap::new(),
            runs: vec![],
            templates: vec![],
            services: vec![],
        }
    }

    fn plan(&self, now: Timestamp) -> Plan {
        plan(
            &Observed {
                experiment: &self.ex,
                replica_sets: self.rss.iter().collect(),
                taken_names: self.taken.clone(),
                services: self.services.iter().collect(),
                taken_service_names: BTreeSet::new(),
                analysis_runs: self.runs.iter().collect(),
                taken_run_names: BTreeSet::new(),
                refused_templates: self.refused.clone(),
                analysis_templates: self.templates.iter().map(|t| (t.name_any(), t)).collect(),
                cluster_analysis_templates: BTreeMap::new(),
            },
            now,
        )
    }

    /// Plans at `now`, applies the effects and the status; returns the plan.
    fn step(&mut self, now: Timestamp) -> Plan {
        let p = self.plan(now);
        for e in &p.effects {
            match e {
                Effect::CreateReplicaSet(rs) => self.rss.push((**rs).clone()),
                Effect::CreateAnalysisRun(run) => self.runs.push((**run).clone()),
                Effect::CreateService(svc) => self.services.push((**svc).clone()),
                Effect::DeleteService { name } => self.services.retain(|s| s.name_any() != *name),
                Effect::TerminateAnalysisRun { name } => {
                    let run = self
                        .runs
                        .iter_mut()
                        .find(|r| r.name_any() == *name)
                        .unwrap();
                    run.spec.terminate = Some(true);
                }
                Effect::PatchReplicaSet {
                    name,
                    replicas,
                    scale_down_deadline,
                } => {
                    let rs = self.rss.iter_mut().find(|r| r.name_any() == *name).unwrap();
                    if let Some(n) = replicas {
                        rs.spec.as_mut().unwrap().replicas = Some(*n);
                    }
                    if let Some(d) = scale_down_deadline {
                        let a = rs.metadata.annotations.get_or_insert_with(Default::default);
                        match d {
                            Some(v) => a.insert("scale-down-deadline".into(), v.clone()),
                            None => a.remove("scale-down-deadline"),
                        };
                    }
                }
            }
        }
        self.ex.status = Some(p.status.clone());
        p
    }

    /// Every ReplicaSet's pods: `available` of its spec replicas are available.
    fn pods(&mut self, available: impl Fn(&str, i32) -> i32) {
        for rs in &mut self.rss {
            let want = rs.spec.as_ref().unwrap().replicas.unwrap();
            let name = rs.name_any();
            rs.status = Some(ReplicaSetStatus {
                replicas: want,
                ready_replicas: Some(available(&name, want)),
                available_replicas: Some(available(&name, want)),
                ..Default::default()
            });
        }
    }

    fn all_available(&mut self) {
        self.pods(|_, n| n);
    }

    fn rs(&self, name: &str) -> &ReplicaSet {
        self.rss.iter().find(|r| r.name_any() == name).unwrap()
    }

    fn replicas(&self, name: &str) -> i32 {
        self.rs(name).spec.as_ref().unwrap().replicas.unwrap()
    }

    fn status(&self) -> ExperimentStatus {
        self.ex.status.clone().unwrap_or_default()
    }

    fn phase(&self) -> String {
        self.status().phase.unwrap_or_default()
    }

    fn template(&self, name: &str) -> TemplateStatus {
        template_status(&self.status(), name).cloned().unwrap()
    }

    fn progressing(&self) -> ExperimentCondition {
        status::condition(&self.status(), "Progressing")
            .cloned()
            .unwrap()
    }
}

fn reasons(p: &Plan) -> Vec<String> {
    p.events.iter().map(|e| e.reason.clone()).collect()
}

#[test]
fn creates_one_replica_set_per_template_as_upstream_names_them() {
    let mut w = World::new(two_templates(json!({})));
    let p = w.step(t0());
    assert_eq!(p.effects.len(), 2);
    let rs = w.rs("ex-canary");
    let labels = rs.metadata.labels.clone().unwrap();
    let hash = labels["rollouts-pod-template-hash"].clone();
    assert_eq!(labels["app"], "canary");
    let ann = rs.metadata.annotations.clone().unwrap();
    assert_eq!(ann["experiment.argoproj.io/name"], "ex");
    assert_eq!(ann["experiment.argoproj.io/template-name"], "canary");
    let owner = &rs.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str(), owner.uid.as_str()),
        ("Experiment", "ex", "uid-1")
    );
    assert_eq!(owner.controller, Some(true));
    let spec = rs.spec.as_ref().unwrap();
    assert_eq!(spec.replicas, Some(2));
    assert_eq!(
        spec.selector.match_labels.as_ref().unwrap()["rollouts-pod-template-hash"],
        hash
    );
    let tlabels = spec.template.as_ref().unwrap().metadata.as_ref().unwrap();
    assert_eq!(
        tlabels.labels.as_ref().unwrap()["rollouts-pod-template-hash"],
        hash
    );
    assert_eq!(w.replicas("ex-baseline"), 1);
    // First reconcile: Pending, templates Progressing since now, a look at the deadline.
    assert_eq!(w.phase(), "Pending");
    let ts = w.template("canary");
    assert_eq!(ts.status.as_deref(), Some(code::PROGRESSING));
    assert_eq!(ts.last_transition_time.map(|t| t.0), Some(t0()));
    assert_eq!(
        (
            ts.replicas,
            ts.updated_replicas,
            ts.ready_replicas,
            ts.available_replicas
        ),
        (Some(0), Some(0), Some(0), Some(0))
    );
    assert_eq!(p.requeue_after, Some(Duration::from_millis(600_100)));
    assert_eq!(
        reasons(&p),
        [
            "NewReplicaSetCreated",
            "TemplateProgressing",
            "NewReplicaSetCreated",
            "TemplateProgressing",
            "ExperimentPending"
        ]
    );
    assert_eq!(
        p.events[0].message,
        "Created new replica set \"ex-baseline\" with size 1"
    );
    assert_eq!(
        p.events[1].message,
        "Template 'baseline' transitioned from  -> Progressing"
    );
    let c = w.progressing();
    assert_eq!(
        (
            c.status.as_deref(),
            c.reason.as_deref(),
            c.message.as_deref()
        ),
        (
            Some("True"),
            Some("ReplicaSetUpdated"),
            Some("Experiment \"ex\" is progressing.")
        )
    );
}

#[test]
fn runs_for_its_duration_from_available_at_then_succeeds_and_scales_down_after_the_delay() {
    let mut w = World::new(two_templates(json!({"duration": "60s"})));
    w.step(t0());
    // Still Pending while pods come up.
    w.pods(|_, _| 0);
    let p = w.step(at(5));
    assert_eq!(w.phase(), "Pending");
    assert!(p.effects.is_empty(), "{:?}", p.effects);
    w.all_available();
    let p = w.step(at(10));
    assert_eq!(w.phase(), "Running");
    assert_eq!(w.status().available_at.map(|t| t.0), Some(at(10)));
    assert_eq!(
        w.template("baseline").status.as_deref(),
        Some(code::RUNNING)
    );
    assert_eq!(w.template("canary").available_replicas, Some(2));
    assert_eq!(p.requeue_after, Some(Duration::from_millis(60_100)));
    assert!(reasons(&p).contains(&"ExperimentRunning".to_string()));
    // Once nothing moves, the Progressing condition says it runs; then nothing changes.
    w.step(at(20));
    let before = w.status();
    let p = w.step(at(30));
    assert!(p.effects.is_empty());
    assert_eq!(p.status, before);
    let c = w.progressing();
    assert_eq!(c.reason.as_deref(), Some("NewReplicaSetAvailable"));
    assert_eq!(c.message.as_deref(), Some("Experiment \"ex\" is running."));
    // The duration has passed: templates and the Experiment are Successful.
    let p = w.step(at(71));
    assert_eq!(
        w.template("canary").status.as_deref(),
        Some(code::SUCCESSFUL)
    );
    assert_eq!(w.phase(), "Successful");
    assert!(reasons(&p).contains(&"ExperimentSuccessful".to_string()));
    let c = w.progressing();
    assert_eq!(
        (
            c.status.as_deref(),
            c.reason.as_deref(),
            c.message.as_deref()
        ),
        (
            Some("False"),
            Some("ExperimentCompleted"),
            Some("Experiment \"ex\" has successfully ran and completed.")
        )
    );
    // Scale-down waits scaleDownDelaySeconds (default 30) behind the deadline annotation.
    let p = w.step(at(72));
    assert_eq!(w.replicas("ex-canary"), 2);
    assert_eq!(
        w.rs("ex-canary").metadata.annotations.as_ref().unwrap()["scale-down-deadline"],
        "2026-01-01T00:01:42Z"
    );
    assert_eq!(p.requeue_after, Some(Duration::from_secs(30)));
    let p = w.step(at(90));
    assert!(p.effects.is_empty(), "{:?}", p.effects);
    let p = w.step(at(103));
    assert_eq!((w.replicas("ex-canary"), w.replicas("ex-baseline")), (0, 0));
    assert!(reasons(&p).contains(&"ScalingReplicaSet".to_string()));
    assert_eq!(
        p.events[0].message,
        "Scaled down ReplicaSet ex-baseline from 1 to 0"
    );
    w.pods(|_, _| 0);
    w.step(at(104));
    assert_eq!(w.phase(), "Successful");
    assert_eq!(
        w.template("canary").status.as_deref(),
        Some(code::SUCCESSFUL)
    );
    assert_eq!(w.template("canary").available_replicas, Some(0));
    let p = w.step(at(200));
    assert!(p.effects.is_empty());
    assert_eq!(p.requeue_after, None);
}

#[test]
fn progress_deadline_fails_a_template_and_the_experiment() {
    let mut w = World::new(two_templates(json!({"progressDeadlineSeconds": 30})));
    w.step(t0());
    w.pods(|name, n| if name == "ex-canary" { 0 } else { n });
    let p = w.step(at(10));
    assert_eq!(w.phase(), "Pending");
    assert_eq!(
        w.template("baseline").status.as_deref(),
        Some(code::RUNNING)
    );
    // Still within the deadline of canary (its counts changed at 10s: replicas 2).
    assert_eq!(p.requeue_after, Some(Duration::from_millis(30_100)));
    let p = w.step(at(41));
    let ts = w.template("canary");
    assert_eq!(ts.status.as_deref(), Some(code::FAILED));
    let msg = "Template 'canary' exceeded its progressDeadlineSeconds (30)";
    assert_eq!(ts.message.as_deref(), Some(msg));
    assert_eq!(w.phase(), "Failed");
    assert_eq!(w.status().message.as_deref(), Some(msg));
    let warned: Vec<_> = p.events.iter().filter(|e| e.warning).collect();
    assert_eq!(warned.len(), 2, "{:?}", p.events);
    assert_eq!(warned[0].reason, "TemplateFailed");
    assert_eq!(
        warned[0].message,
        format!("Template 'canary' transitioned from Progressing -> Failed: {msg}")
    );
    assert_eq!(warned[1].reason, "ExperimentFailed");
    // A failed Experiment is terminating: the good template is Successful, all scale down.
    w.step(at(42));
    assert_eq!(
        w.template("baseline").status.as_deref(),
        Some(code::SUCCESSFUL)
    );
    w.step(at(73));
    assert_eq!((w.replicas("ex-canary"), w.replicas("ex-baseline")), (0, 0));
    assert_eq!(w.phase(), "Failed");
}

#[test]
fn terminate_ends_a_running_experiment_and_scale_down_delay_zero_scales_at_once() {
    let mut w = World::new(two_templates(json!({"scaleDownDelaySeconds": 0})));
    w.step(t0());
    w.all_available();
    w.step(at(5));
    assert_eq!(w.phase(), "Running");
    // No duration: it runs until terminated.
    let p = w.step(at(1000));
    assert_eq!(p.requeue_after, None);
    assert_eq!(w.phase(), "Running");
    w.ex.spec.terminate = Some(true);
    let p = w.step(at(1001));
    assert_eq!(
        w.template("canary").status.as_deref(),
        Some(code::SUCCESSFUL)
    );
    assert_eq!(w.phase(), "Successful");
    assert_eq!((w.replicas("ex-canary"), w.replicas("ex-baseline")), (0, 0));
    assert!(
        p.effects.iter().all(|e| matches!(
            e,
            Effect::PatchReplicaSet {
                replicas: Some(0),
                scale_down_deadline: None,
                ..
            }
        )),
        "{:?}",
        p.effects
    );
}

#[test]
fn terminate_while_pending_succeeds_without_waiting_for_pods() {
    let mut w = World::new(two_templates(json!({})));
    w.step(t0());
    w.ex.spec.terminate = Some(true);
    w.step(at(1));
    assert_eq!(w.phase(), "Successful");
    assert_eq!(w.status().available_at, None);
}

#[test]
fn invalid_specs_get_upstream_messages_and_nothing_is_created() {
    let cases = [
        (
            json!({"templates": [template("a", 1), template("a", 1)]}),
            "Experiment ex has repeated template name 'a' in templates",
        ),
        (
            json!({"templates": [{"name": "a", "template": {}}]}),
            "Rollout has missing field '.Spec.Templates[0].Selector'",
        ),
        (
            json!({"templates": [{"name": "a", "selector": {}, "template": {}}]}),
            "This experiment is selecting all pods at index 0. A non-empty selector is required.",
        ),
        (
            json!({"templates": [{"selector": {"matchLabels": {"a": "b"}}}]}),
            "Experiment ex has empty template name at index 0",
        ),
        (
            json!({"progressDeadlineSeconds": 10, "templates": [
                {"name": "a", "minReadySeconds": 11, "selector": {"matchLabels": {"a": "b"}}}]}),
            "MinReadySeconds cannot be longer than ProgressDeadlineSeconds. Check template index 0",
        ),
        (
            json!({"duration": "ten minutes", "templates": [template("a", 1)]}),
            "spec.duration: Invalid value: \"ten minutes\": not a duration (e.g. 30s, 5m, 1h)",
        ),
    ];
    for (spec, message) in cases {
        let mut w = World::new(experiment(spec));
        let p = w.step(t0());
        assert!(p.effects.is_empty(), "{message}");
        let st = w.status();
        assert_eq!(st.phase, None, "{message}");
        let c = status::condition(&st, "InvalidSpec").cloned().unwrap();
        assert_eq!(c.message.as_deref(), Some(message));
        assert_eq!(
            (c.status.as_deref(), c.reason.as_deref()),
            (Some("True"), Some("InvalidSpec"))
        );
        assert_eq!(reasons(&p), ["InvalidSpec"]);
        // Planned again: nothing new (no write, no second event).
        let p = w.step(at(5));
        assert_eq!(p.status, st);
        assert!(p.events.is_empty());
    }
}

#[test]
fn a_fixed_spec_clears_invalid_spec_and_starts() {
    let mut w = World::new(experiment(
        json!({"templates": [template("a", 1), template("a", 1)]}),
    ));
    w.step(t0());
    w.ex.spec.templates.as_mut().unwrap()[1] = serde_json::from_value(template("b", 1)).unwrap();
    let p = w.step(at(1));
    assert_eq!(p.effects.len(), 2);
    assert!(status::condition(&w.status(), "InvalidSpec").is_none());
    assert_eq!(w.phase(), "Pending");
}

#[test]
fn a_name_taken_by_a_foreign_replica_set_is_a_template_error() {
    let mut w = World::new(two_templates(json!({})));
    w.taken.insert("ex-canary".into());
    let p = w.step(t0());
    assert_eq!(p.effects.len(), 1);
    let ts = w.template("canary");
    assert_eq!(ts.status.as_deref(), Some(code::ERROR));
    assert_eq!(
        ts.message.as_deref(),
        Some(
            "Failed to create ReplicaSet for template 'canary': replicasets.apps \"ex-canary\" already exists"
        )
    );
    w.step(at(1));
    assert_eq!(w.phase(), "Error");
}

/// Regression: a template whose ReplicaSet the API server refuses (upstream's
/// `expectedfailures/experiment-invalid.yaml`: a template without a pod spec) used to be
/// retried forever with the Experiment stuck in Pending; it is a template Error, as upstream,
/// and the Experiment ends in Error without trying again.
#[test]
fn a_replica_set_the_api_server_refuses_is_a_template_error_and_is_not_retried() {
    let mut w = World::new(two_templates(json!({})));
    w.refused.insert(
        "canary".into(),
        "ReplicaSet.apps \"ex-canary\" is invalid: spec.template.spec.containers: Required value"
            .into(),
    );
    let p = w.step(t0());
    // The baseline is created; the canary is not (its creation was refused).
    assert_eq!(p.effects.len(), 1);
    let ts = w.template("canary");
    assert_eq!(ts.status.as_deref(), Some(code::ERROR));
    assert_eq!(
        ts.message.as_deref(),
        Some(
            "Failed to create ReplicaSet for template 'canary': ReplicaSet.apps \"ex-canary\" is invalid: spec.template.spec.containers: Required value"
        )
    );
    // The next reconciles (no refusal observed any more) do not create it again.
    w.refused.clear();
    let p = w.step(at(1));
    assert!(
        !p.effects
            .iter()
            .any(|e| matches!(e, Effect::CreateReplicaSet(_))),
        "{:?}",
        p.effects
    );
    assert_eq!(w.phase(), "Error");
    assert_eq!(w.template("canary").status.as_deref(), Some(code::ERROR));
}

#[test]
fn replica_sets_of_another_experiment_or_no_template_are_not_claimed() {
    let mut w = World::new(two_templates(json!({})));
    w.step(t0());
    for rs in &mut w.rss {
        rs.metadata
            .annotations
            .as_mut()
            .unwrap()
            .insert("experiment.argoproj.io/name".into(), "other".into());
    }
    let p = w.plan(at(1));
    assert_eq!(
        p.effects
            .iter()
            .filter(|e| matches!(e, Effect::CreateReplicaSet(_)))
            .count(),
        2
    );
}

#[test]
fn a_deleted_experiment_is_left_alone() {
    let mut ex = two_templates(json!({}));
    ex.metadata.deletion_timestamp = Some(crate::plan::stamp(t0()));
    let p = World::new(ex).plan(t0());
    assert_eq!(p, Plan::default());
}

// ------------------------------------------------------------------------------------------
// Analyses
// ------------------------------------------------------------------------------------------

fn analysis_template(name: &str) -> AnalysisTemplate {
    serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisTemplate",
        "metadata": {"name": name, "namespace": "ns"},
        "spec": {"args": [{"name": "hash"}],
                 "metrics": [{"name": "m", "provider": {"web": {"url": "http://x/{{args.hash}}"}}}]}
    }))
    .unwrap()
}

fn with_analysis(required: bool, extra: serde_json::Value) -> World {
    let mut spec = json!({"analyses": [{
        "name": "cmp", "templateName": "tmpl", "requiredForCompletion": required,
        "args": [{"name": "hash", "value": "{{templates.canary.podTemplateHash}}"}]}]});
    spec.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let mut w = World::new(two_templates(spec));
    w.templates.push(analysis_template("tmpl"));
    w
}

impl World {
    fn run_phase(&mut self, name: &str, phase: &str, message: &str) {
        let run = self.runs.iter_mut().find(|r| r.name_any() == name).unwrap();
        let st = run.status.get_or_insert_with(Default::default);
        st.phase = Some(phase.into());
        st.message = Some(message.into()).filter(|m: &String| !m.is_empty());
    }

    fn analysis(&self, name: &str) -> crate::api::ExperimentAnalysisRunStatus {
        self.status()
            .analysis_runs
            .unwrap()
            .into_iter()
            .find(|r| r.name.as_deref() == Some(name))
            .unwrap()
    }

    /// Created, all pods available, Running.
    fn running(&mut self) {
        self.step(t0());
        self.all_available();
        self.step(at(1));
        assert_eq!(self.phase(), "Running");
    }
}

/// Regression: between the run's creation and the AnalysisRun controller's first status, the
/// run has no phase; the Experiment's entry for it used to lose its phase then, and the API
/// server refused every status write (`status.analysisRuns.phase: Required value`), so the
/// Experiment stalled. The entry stays Pending.
#[test]
fn a_run_without_a_phase_yet_keeps_its_entry_pending() {
    let mut w = with_analysis(false, json!({}));
    w.running();
    w.step(at(2));
    assert_eq!(w.runs.len(), 1);
    assert_eq!(w.runs[0].status, None);
    w.step(at(3));
    let entry = w.analysis("cmp");
    assert_eq!(
        (entry.analysis_run.as_deref(), entry.phase.as_deref()),
        (Some("ex-cmp"), Some("Pending"))
    );
    // An empty phase is no phase either.
    w.run_phase("ex-cmp", "", "");
    w.step(at(4));
    assert_eq!(w.analysis("cmp").phase.as_deref(), Some("Pending"));
    w.run_phase("ex-cmp", "Running", "");
    w.step(at(5));
    assert_eq!(w.analysis("cmp").phase.as_deref(), Some("Running"));
}

#[test]
fn the_analysis_run_starts_once_the_experiment_is_available() {
    let mut w = with_analysis(
        false,
        json!({"duration": "60s",
        "analysisRunMetadata": {"labels": {"team": "a"}},
        "dryRun": [{"metricName": "m"}]}),
    );
    w.step(t0());
    assert!(w.runs.is_empty(), "not before availableAt");
    assert_eq!(w.status().analysis_runs, None, "no entry before its run");
    w.all_available();
    w.step(at(1));
    assert!(w.runs.is_empty(), "availableAt is set by this reconcile");
    let p = w.step(at(2));
    assert_eq!(w.runs.len(), 1);
    let run = &w.runs[0];
    assert_eq!(run.name_any(), "ex-cmp");
    let owner = &run.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str()),
        ("Experiment", "uid-1")
    );
    let hash =
        w.rs("ex-canary").metadata.labels.as_ref().unwrap()["rollouts-pod-template-hash"].clone();
    let args = run.spec.args.clone().unwrap();
    assert_eq!(args[0].value.as_deref(), Some(hash.as_str()));
    assert_eq!(run.metadata.labels.as_ref().unwrap()["team"], "a");
    assert_eq!(
        run.spec.dry_run.as_ref().unwrap()[0].metric_name.as_deref(),
        Some("m")
    );
    let a = w.analysis("cmp");
    assert_eq!(
        (a.phase.as_deref(), a.analysis_run.as_deref()),
        (Some("Pending"), Some("ex-cmp"))
    );
    assert!(reasons(&p).contains(&"AnalysisRunPending".to_string()));
    // The run's phase is followed; a Successful run that is not required waits for duration.
    w.run_phase("ex-cmp", "Running", "");
    w.step(at(3));
    assert_eq!(w.analysis("cmp").phase.as_deref(), Some("Running"));
    w.run_phase("ex-cmp", "Successful", "");
    w.step(at(4));
    assert_eq!(w.analysis("cmp").phase.as_deref(), Some("Successful"));
    assert_eq!(w.phase(), "Running");
    assert!(w.plan(at(5)).effects.is_empty());
    w.step(at(62));
    assert_eq!(w.phase(), "Successful");
    assert_eq!(w.runs.len(), 1, "no second run");
}

#[test]
fn a_failed_analysis_fails_the_experiment_and_it_ends() {
    let mut w = with_analysis(false, json!({"scaleDownDelaySeconds": 0}));
    w.running();
    w.step(at(2));
    w.run_phase("ex-cmp", "Failed", "Metric \"m\" assessed Failed");
    let p = w.step(at(3));
    assert_eq!(w.phase(), "Failed");
    assert_eq!(
        w.status().message.as_deref(),
        Some("Metric \"m\" assessed Failed")
    );
    let warned: Vec<_> = p
        .events
        .iter()
        .filter(|e| e.warning)
        .map(|e| e.reason.as_str())
        .collect();
    assert_eq!(warned, ["AnalysisRunFailed", "ExperimentFailed"]);
    w.step(at(4));
    assert_eq!((w.replicas("ex-canary"), w.replicas("ex-baseline")), (0, 0));
    assert_eq!(
        w.template("canary").status.as_deref(),
        Some(code::SUCCESSFUL)
    );
    assert_eq!(w.phase(), "Failed");
}

#[test]
fn error_and_inconclusive_analyses_end_the_experiment_with_their_phase() {
    for phase in ["Error", "Inconclusive"] {
        let mut w = with_analysis(false, json!({}));
        w.running();
        w.step(at(2));
        w.run_phase("ex-cmp", phase, "");
        w.step(at(3));
        assert_eq!(w.phase(), phase);
    }
}

#[test]
fn a_required_analysis_completes_the_experiment_when_successful() {
    let mut w = with_analysis(true, json!({}));
    w.running();
    w.step(at(2));
    w.run_phase("ex-cmp", "Successful", "");
    w.step(at(3));
    assert_eq!(w.phase(), "Successful");
    assert_eq!(
        w.status().message.as_deref(),
        Some("Required AnalysisRuns completed")
    );
}

#[test]
fn terminating_terminates_a_running_analysis_run_once() {
    let mut w = with_analysis(false, json!({}));
    w.running();
    w.step(at(2));
    w.run_phase("ex-cmp", "Running", "");
    w.step(at(3));
    w.ex.spec.terminate = Some(true);
    let p = w.step(at(4));
    assert!(p.effects.contains(&Effect::TerminateAnalysisRun {
        name: "ex-cmp".into()
    }));
    assert!(reasons(&p).contains(&"AnalysisRunTerminating".to_string()));
    let p = w.step(at(5));
    assert!(
        !p.effects
            .iter()
            .any(|e| matches!(e, Effect::TerminateAnalysisRun { .. }))
    );
}

#[test]
fn a_missing_template_is_an_error_before_anything_runs_long() {
    let mut w = with_analysis(false, json!({}));
    w.templates.clear();
    w.ex.metadata.creation_timestamp = Some(crate::plan::stamp(t0()));
    // Within the grace after creation, the template may still be on its way to the caches.
    let p = w.step(t0());
    assert!(p.events.iter().all(|e| e.reason != "AnalysisRunError"));
    assert_eq!(p.requeue_after, Some(Duration::from_secs(10)));
    assert_eq!(w.phase(), "Pending");
    let p = w.step(at(10));
    let msg = "AnalysisTemplate verification failed for analysis 'cmp': analysistemplate.argoproj.io \"tmpl\" not found";
    assert_eq!(
        p.events
            .iter()
            .find(|e| e.reason == "AnalysisRunError")
            .map(|e| e.message.clone()),
        Some(format!(
            "AnalysisRun 'cmp' transitioned from  -> Error: {msg}"
        ))
    );
    assert_eq!(w.phase(), "Error");
    assert_eq!(w.status().message.as_deref(), Some(msg));
    assert_eq!(w.status().analysis_runs, None, "no entry without a run");
    assert!(reasons(&p).contains(&"ExperimentError".to_string()));
    // Ended: no more verification, no repeated events, nothing to write.
    let p = w.step(at(12));
    assert!(
        !reasons(&p).iter().any(|r| r.starts_with("AnalysisRun")),
        "{:?}",
        p.events
    );
    let p = w.step(at(13));
    assert_eq!(p.status, w.status());
    assert!(p.events.is_empty(), "{:?}", p.events);
}

#[test]
fn a_run_of_ours_already_there_is_taken_not_duplicated() {
    let mut w = with_analysis(false, json!({}));
    w.running();
    w.step(at(2));
    // The status write that recorded the run was lost.
    let mut st = w.status();
    st.analysis_runs = None;
    w.ex.status = Some(st);
    let p = w.step(at(3));
    assert!(
        !p.effects
            .iter()
            .any(|e| matches!(e, Effect::CreateAnalysisRun(_)))
    );
    assert_eq!(w.analysis("cmp").analysis_run.as_deref(), Some("ex-cmp"));
}

// ------------------------------------------------------------------------------------------
// Template Services
// ------------------------------------------------------------------------------------------

#[test]
fn a_template_service_selects_its_replica_set_and_goes_when_it_is_scaled_down() {
    let mut spec = json!({"scaleDownDelaySeconds": 0, "templates": [template("baseline", 1), template("canary", 2)]});
    spec["templates"][1]["service"] = json!({});
    spec["templates"][1]["template"]["spec"]["containers"][0]["ports"] = json!([{"name": "http", "containerPort": 8080, "protocol": "TCP"}, {"containerPort": 9090}]);
    spec["templates"][0]["service"] = json!({"name": "base-svc"});
    let mut w = World::new(experiment(spec));
    w.step(t0());
    assert!(w.services.is_empty(), "after the ReplicaSet exists");
    w.all_available();
    w.step(at(1));
    // The baseline has no container port: no Service (as upstream).
    assert_eq!(w.services.len(), 1);
    let svc = &w.services[0];
    assert_eq!(svc.name_any(), "ex-canary");
    let spec = svc.spec.clone().unwrap();
    let rs = w.rs("ex-canary");
    assert_eq!(spec.selector, rs.metadata.labels.clone());
    let ports = spec.ports.unwrap();
    assert_eq!(
        ports
            .iter()
            .map(|p| (p.name.clone(), p.port, p.target_port.clone()))
            .collect::<Vec<_>>(),
        [
            (Some("http".into()), 8080, Some(IntOrString::Int(8080))),
            (None, 9090, Some(IntOrString::Int(9090)))
        ]
    );
    assert_eq!(
        svc.metadata.owner_references.as_ref().unwrap()[0].kind,
        "Experiment"
    );
    let ts = w.template("canary");
    let hash = rs.metadata.labels.as_ref().unwrap()["rollouts-pod-template-hash"].clone();
    assert_eq!(
        (ts.service_name.as_deref(), ts.pod_template_hash.as_deref()),
        (Some("ex-canary"), Some(hash.as_str()))
    );
    assert!(w.plan(at(2)).effects.is_empty(), "created once");
    // Terminated: scaled down at once; the Service goes once no pod is available.
    w.ex.spec.terminate = Some(true);
    w.step(at(3));
    assert_eq!(w.services.len(), 1, "pods still available");
    w.pods(|_, _| 0);
    w.step(at(4));
    assert!(w.services.is_empty());
    let ts = w.template("canary");
    assert_eq!((ts.service_name, ts.pod_template_hash), (None, None));
}

#[test]
fn a_service_name_taken_by_someone_else_is_a_template_error() {
    let mut spec = json!({"templates": [template("baseline", 1)]});
    spec["templates"][0]["service"] = json!({"name": "mine"});
    spec["templates"][0]["template"]["spec"]["containers"][0]["ports"] =
        json!([{"containerPort": 80}]);
    let mut w = World::new(experiment(spec));
    w.step(t0());
    w.all_available();
    let p = {
        let mut taken = BTreeSet::new();
        taken.insert("mine".to_string());
        plan(
            &Observed {
                experiment: &w.ex,
                replica_sets: w.rss.iter().collect(),
                taken_names: BTreeSet::new(),
                services: vec![],
                taken_service_names: taken,
                analysis_runs: vec![],
                taken_run_names: BTreeSet::new(),
                refused_templates: BTreeMap::new(),
                analysis_templates: BTreeMap::new(),
                cluster_analysis_templates: BTreeMap::new(),
            },
            at(1),
        )
    };
    let ts = template_status(&p.status, "baseline").unwrap();
    assert_eq!(ts.status.as_deref(), Some(code::ERROR));
    assert_eq!(
        ts.message.as_deref(),
        Some(
            "Failed to create Service mine for template 'baseline': service mine already exists and is not owned by experiment template baseline"
        )
    );
    assert!(p.effects.is_empty());
}
