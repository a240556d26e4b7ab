//! The Experiment controller against the real API server: Experiments are applied directly
//! (no Rollout involved), their ReplicaSets run by the control plane's ReplicaSet controller
//! and the pod simulator (an image tag containing `bad` never becomes Ready), their analyses
//! measured by the AnalysisRun controller with Jobs (an image tag containing `fail` fails).

use crate::common::*;
use k8s_openapi::api::apps::v1::ReplicaSet;
use kube::ResourceExt;
use kube::api::{ListParams, Patch, PatchParams};
use rollouts::api::Experiment;
use rollouts::controller::experiment as ectl;
use serde_json::json;
use std::time::{Duration, Instant};

/// The Experiment controller running in this test's runtime, scoped to the test namespace.
struct ExperimentCtl {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl ExperimentCtl {
    fn start(ns: &TestNs) -> ExperimentCtl {
        let config = ectl::Config {
            namespace: Some(ns.name.clone()),
            instance_id: None,
            concurrency: 4,
        };
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let client = ns.client.clone();
        let task = tokio::spawn(async move {
            ectl::run(client, config, async move {
                let _ = rx.await;
            })
            .await;
        });
        ExperimentCtl {
            stop: Some(tx),
            task,
        }
    }
}

impl Drop for ExperimentCtl {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        self.task.abort();
    }
}

async fn setup_experiment(test: &str) -> (TestNs, ExperimentCtl) {
    init_logging();
    crds_installed().await;
    let ns = TestNs::new(test).await;
    let ctl = ExperimentCtl::start(&ns);
    (ns, ctl)
}

/// An Experiment with a `baseline` (1 replica) and a `canary` (2 replicas) template; `spec`
/// is merged into its spec.
fn manifest(name: &str, canary_image: &str, spec: serde_json::Value) -> String {
    let template = |t: &str, replicas: i32, image: &str| {
        json!({"name": t, "replicas": replicas,
               "selector": {"matchLabels": {"app": name, "role": t}},
               "template": {"metadata": {"labels": {"app": name, "role": t}},
                            "spec": {"containers": [{"name": "app", "image": image}]}}})
    };
    let mut s = json!({"templates": [template("baseline", 1, "nginx:1.19"),
                                     template("canary", 2, canary_image)]});
    s.as_object_mut()
        .unwrap()
        .extend(spec.as_object().unwrap().clone());
    serde_json::to_string(&json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Experiment",
        "metadata": {"name": name}, "spec": s,
    }))
    .unwrap()
}

async fn get_experiment(ns: &TestNs, name: &str) -> Experiment {
    ns.api::<Experiment>()
        .get(name)
        .await
        .expect("reading the Experiment")
}

/// Waits until the Experiment's phase is `phase`.
async fn wait_phase(ns: &TestNs, name: &str, phase: &str, timeout: Duration) -> Experiment {
    ns.wait_for(&format!("Experiment {name} {phase}"), timeout, || async {
        let ex = ns.api::<Experiment>().get(name).await?;
        let p = ex.status.as_ref().and_then(|s| s.phase.clone());
        Ok((p.as_deref() == Some(phase)).then_some(ex))
    })
    .await
}

/// The ReplicaSets of the namespace, by name.
async fn replica_set(ns: &TestNs, name: &str) -> ReplicaSet {
    ns.api::<ReplicaSet>()
        .get(name)
        .await
        .unwrap_or_else(|e| panic!("reading ReplicaSet {name}: {e}"))
}

/// Waits until every ReplicaSet of the namespace wants 0 replicas.
async fn wait_scaled_down(ns: &TestNs, timeout: Duration) {
    ns.wait_for("the ReplicaSets scaled to 0", timeout, || async {
        let rss = ns.api::<ReplicaSet>().list(&ListParams::default()).await?;
        Ok(rss
            .items
            .iter()
            .all(|rs| spec_replicas(rs) == 0)
            .then_some(()))
    })
    .await
}

fn template_status<'a>(ex: &'a Experiment, name: &str) -> &'a rollouts::api::TemplateStatus {
    ex.status
        .as_ref()
        .and_then(|s| s.template_statuses.as_ref())
        .and_then(|l| l.iter().find(|t| t.name.as_deref() == Some(name)))
        .unwrap_or_else(|| panic!("no template status {name}: {:?}", ex.status))
}

fn progressing(ex: &Experiment) -> (String, String, String) {
    let c = ex
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|l| l.iter().find(|c| c.type_.as_deref() == Some("Progressing")))
        .unwrap_or_else(|| panic!("no Progressing condition: {:?}", ex.status));
    (
        c.status.clone().unwrap_or_default(),
        c.reason.clone().unwrap_or_default(),
        c.message.clone().unwrap_or_default(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn experiment_runs_for_its_duration_then_succeeds_and_scales_down() {
    let (ns, _ctl) = setup_experiment("exp-duration").await;
    ns.apply(&manifest(
        "ab",
        "nginx:1.20",
        json!({"duration": "6s", "scaleDownDelaySeconds": 2}),
    ))
    .await;
    let ex = wait_phase(&ns, "ab", "Running", Duration::from_secs(60)).await;
    let running_seen = Instant::now();
    let uid = ex.uid().unwrap();
    let status = ex.status.clone().unwrap();
    let available_at = status.available_at.clone().expect("availableAt set").0;
    for (t, replicas) in [("baseline", 1), ("canary", 2)] {
        let ts = template_status(&ex, t);
        assert_eq!(ts.status.as_deref(), Some("Running"), "{t}");
        assert_eq!(ts.available_replicas, Some(replicas), "{t}");
        let rs = replica_set(&ns, &format!("ab-{t}")).await;
        let owner = &rs.owner_references()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
            ("Experiment", uid.as_str(), Some(true))
        );
        assert_eq!(rs.annotations()["experiment.argoproj.io/name"], "ab");
        assert_eq!(rs.annotations()["experiment.argoproj.io/template-name"], t);
        assert_eq!(rs.labels()["role"], t);
        assert!(!hash_of(&rs).is_empty());
        assert_eq!(spec_replicas(&rs), replicas);
    }

    let ex = wait_phase(&ns, "ab", "Successful", Duration::from_secs(60)).await;
    // Not before `duration` has passed since availableAt (a whole-second stamp).
    let ended = k8s_openapi::jiff::Timestamp::now();
    assert!(
        ended.duration_since(available_at).as_secs() >= 6,
        "Successful at {ended}, availableAt {available_at}"
    );
    assert!(running_seen.elapsed() < Duration::from_secs(30));
    assert_eq!(
        progressing(&ex),
        (
            "False".into(),
            "ExperimentCompleted".into(),
            "Experiment \"ab\" has successfully ran and completed.".into()
        )
    );
    assert_eq!(
        template_status(&ex, "canary").status.as_deref(),
        Some("Successful")
    );
    wait_scaled_down(&ns, Duration::from_secs(30)).await;
    wait_events(
        &ns,
        "ab",
        &[
            "NewReplicaSetCreated",
            "ExperimentPending",
            "ExperimentRunning",
            "TemplateSuccessful",
            "ExperimentSuccessful",
            "ScalingReplicaSet",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_template_that_never_becomes_available_fails_at_the_progress_deadline() {
    let (ns, _ctl) = setup_experiment("exp-deadline").await;
    ns.apply(&manifest(
        "slow",
        "nginx:bad",
        json!({"progressDeadlineSeconds": 5, "scaleDownDelaySeconds": 0}),
    ))
    .await;
    let ex = wait_phase(&ns, "slow", "Failed", Duration::from_secs(60)).await;
    let msg = "Template 'canary' exceeded its progressDeadlineSeconds (5)";
    let status = ex.status.clone().unwrap();
    assert_eq!(status.message.as_deref(), Some(msg));
    assert_eq!(status.available_at, None);
    let ts = template_status(&ex, "canary");
    assert_eq!(
        (ts.status.as_deref(), ts.message.as_deref()),
        (Some("Failed"), Some(msg))
    );
    // A failed Experiment ends: both ReplicaSets scale down (no delay asked).
    wait_scaled_down(&ns, Duration::from_secs(30)).await;
    wait_events(&ns, "slow", &["TemplateFailed", "ExperimentFailed"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_controller_keeps_the_replica_sets_and_terminate_ends_the_experiment() {
    let (ns, ctl) = setup_experiment("exp-terminate").await;
    ns.apply(&manifest(
        "open",
        "nginx:1.20",
        json!({"scaleDownDelaySeconds": 0}),
    ))
    .await;
    let ex = wait_phase(&ns, "open", "Running", Duration::from_secs(60)).await;
    let available_at = ex.status.clone().unwrap().available_at;
    let uids = |rss: Vec<ReplicaSet>| {
        let mut v: Vec<String> = rss.iter().filter_map(|r| r.uid()).collect();
        v.sort();
        v
    };
    let list = || async {
        ns.api::<ReplicaSet>()
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
    };
    let before = uids(list().await);
    assert_eq!(before.len(), 2);
    // A new controller takes over mid-experiment: same ReplicaSets, same availableAt.
    drop(ctl);
    let _ctl = ExperimentCtl::start(&ns);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(uids(list().await), before);
    let ex = get_experiment(&ns, "open").await;
    let status = ex.status.clone().unwrap();
    assert_eq!(status.phase.as_deref(), Some("Running"));
    assert_eq!(status.available_at, available_at);
    assert_eq!(progressing(&ex).1, "NewReplicaSetAvailable");

    // No duration: it runs until terminated.
    ns.api::<Experiment>()
        .patch(
            "open",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"terminate": true}})),
        )
        .await
        .expect("terminating");
    let ex = wait_phase(&ns, "open", "Successful", Duration::from_secs(30)).await;
    assert_eq!(
        template_status(&ex, "baseline").status.as_deref(),
        Some("Successful")
    );
    wait_scaled_down(&ns, Duration::from_secs(30)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_spec_gets_upstreams_message_and_nothing_runs() {
    let (ns, _ctl) = setup_experiment("exp-invalid").await;
    let mut doc: serde_json::Value =
        serde_json::from_str(&manifest("twice", "nginx:1.20", json!({}))).unwrap();
    doc["spec"]["templates"][1]["name"] = json!("baseline");
    ns.apply(&doc.to_string()).await;
    let ex = ns
        .wait_for(
            "an InvalidSpec condition",
            Duration::from_secs(30),
            || async {
                let ex = ns.api::<Experiment>().get("twice").await?;
                let has = ex
                    .status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|c| c.iter().any(|c| c.type_.as_deref() == Some("InvalidSpec")));
                Ok(has.then_some(ex))
            },
        )
        .await;
    let c = ex.status.unwrap().conditions.unwrap();
    assert_eq!(
        c[0].message.as_deref(),
        Some("Experiment twice has repeated template name 'baseline' in templates")
    );
    let rss = ns
        .api::<ReplicaSet>()
        .list(&ListParams::default())
        .await
        .unwrap();
    assert!(rss.items.is_empty(), "nothing runs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_template_service_selects_its_pods_while_it_runs() {
    let (ns, _ctl) = setup_experiment("exp-service").await;
    let mut doc: serde_json::Value = serde_json::from_str(&manifest(
        "svc",
        "nginx:1.20",
        json!({"scaleDownDelaySeconds": 0}),
    ))
    .unwrap();
    doc["spec"]["templates"][1]["service"] = json!({});
    doc["spec"]["templates"][1]["template"]["spec"]["containers"][0]["ports"] =
        json!([{"name": "http", "containerPort": 8080}, {"name": "admin", "containerPort": 9090}]);
    ns.apply(&doc.to_string()).await;
    let ex = wait_phase(&ns, "svc", "Running", Duration::from_secs(60)).await;
    let svc = ns
        .wait_for("the template Service", Duration::from_secs(30), || async {
            Ok(ns
                .api::<k8s_openapi::api::core::v1::Service>()
                .get_opt("svc-canary")
                .await?)
        })
        .await;
    let rs = replica_set(&ns, "svc-canary").await;
    let spec = svc.spec.clone().unwrap();
    assert_eq!(spec.selector.as_ref(), Some(rs.labels()));
    let ports: Vec<(Option<String>, i32)> = spec
        .ports
        .unwrap()
        .into_iter()
        .map(|p| (p.name, p.port))
        .collect();
    assert_eq!(
        ports,
        [(Some("http".into()), 8080), (Some("admin".into()), 9090)]
    );
    assert_eq!(svc.owner_references()[0].uid, ex.uid().unwrap());
    let ex = ns
        .wait_for(
            "serviceName in the status",
            Duration::from_secs(30),
            || async {
                let ex = ns.api::<Experiment>().get("svc").await?;
                let named = template_status(&ex, "canary").service_name.is_some();
                Ok(named.then_some(ex))
            },
        )
        .await;
    let ts = template_status(&ex, "canary");
    assert_eq!(ts.service_name.as_deref(), Some("svc-canary"));
    assert_eq!(ts.pod_template_hash, Some(hash_of(&rs)));
    // The baseline asked for none.
    assert!(
        ns.api::<k8s_openapi::api::core::v1::Service>()
            .get_opt("svc-baseline")
            .await
            .unwrap()
            .is_none()
    );
    // Terminated: scaled down, then the Service goes.
    ns.api::<Experiment>()
        .patch(
            "svc",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"terminate": true}})),
        )
        .await
        .expect("terminating");
    wait_scaled_down(&ns, Duration::from_secs(30)).await;
    ns.wait_for("the Service deleted", Duration::from_secs(30), || async {
        let gone = ns
            .api::<k8s_openapi::api::core::v1::Service>()
            .get_opt("svc-canary")
            .await?
            .is_none();
        Ok(gone.then_some(()))
    })
    .await;
}

/// An AnalysisTemplate whose one metric is a Job: `image` containing `fail` fails it.
fn job_template(name: &str) -> String {
    format!(
        r#"apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata:
  name: {name}
spec:
  args:
  - name: canary-hash
  - name: image
  metrics:
  - name: smoke
    provider:
      job:
        spec:
          backoffLimit: 0
          template:
            spec:
              restartPolicy: Never
              containers:
              - name: test
                image: "{{{{args.image}}}}"
                command: [sh, -c, "echo {{{{args.canary-hash}}}}; exit 0"]
"#
    )
}

fn analyses(image: &str, required: bool) -> serde_json::Value {
    json!({"analyses": [{"name": "smoke", "templateName": "smoke",
        "requiredForCompletion": required,
        "args": [{"name": "canary-hash", "value": "{{templates.canary.podTemplateHash}}"},
                 {"name": "image", "value": image}]}],
        "scaleDownDelaySeconds": 0})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_required_analysis_completes_the_experiment_and_a_failed_one_fails_it() {
    let (ns, _ctl) = setup_experiment("exp-analysis").await;
    let _analysis = crate::analysis::start_analysis_controller(&ns);
    ns.apply(&job_template("smoke")).await;
    ns.apply(&manifest(
        "pass",
        "nginx:1.20",
        analyses("busybox:ok", true),
    ))
    .await;
    ns.apply(&manifest(
        "fail",
        "nginx:1.20",
        analyses("busybox:fail", false),
    ))
    .await;

    let ex = wait_phase(&ns, "pass", "Successful", Duration::from_secs(90)).await;
    let status = ex.status.clone().unwrap();
    assert!(status.available_at.is_some());
    assert_eq!(
        status.message.as_deref(),
        Some("Required AnalysisRuns completed")
    );
    let runs = status.analysis_runs.clone().unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(
        (runs[0].analysis_run.as_deref(), runs[0].phase.as_deref()),
        (Some("pass-smoke"), Some("Successful"))
    );
    // The run got the canary template's pod-template hash, and is owned by the Experiment.
    let run = ns
        .api::<rollouts::api::AnalysisRun>()
        .get("pass-smoke")
        .await
        .unwrap();
    let hash = hash_of(&replica_set(&ns, "pass-canary").await);
    let args = run.spec.args.clone().unwrap();
    assert!(
        args.iter().any(|a| a.name.as_deref() == Some("canary-hash")
            && a.value.as_deref() == Some(hash.as_str())),
        "{args:?}"
    );
    assert_eq!(run.owner_references()[0].uid, ex.uid().unwrap());

    let ex = wait_phase(&ns, "fail", "Failed", Duration::from_secs(90)).await;
    let runs = ex.status.clone().unwrap().analysis_runs.unwrap();
    assert_eq!(runs[0].phase.as_deref(), Some("Failed"));
    wait_scaled_down(&ns, Duration::from_secs(30)).await;
    wait_events(&ns, "fail", &["AnalysisRunFailed", "ExperimentFailed"]).await;
}

/// Upstream's functional manifests from the compatibility corpus (basic, same template twice,
/// with a Service, a multi-port Service, a named Service), unchanged but for a name where
/// they only have `generateName` (server-side apply needs one); skipped with a notice where
/// the corpus is absent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_experiment_manifests_run_to_their_expected_phase() {
    if compat_corpus().is_none() {
        return;
    }
    let (ns, _ctl) = setup_experiment("exp-corpus").await;
    let cases: [(&str, &[&str]); 5] = [
        ("experiment-basic", &["baseline", "canary"]),
        ("experiment-same-template", &["first", "second"]),
        ("experiment-with-service", &["test"]),
        ("experiment-with-multiport-service", &["test"]),
        ("experiment-with-service-name", &["test"]),
    ];
    for (name, _) in &cases {
        let text = compat_file(&format!("test/e2e/functional/{name}.yaml")).unwrap();
        let mut doc: serde_json::Value = serde_yaml::from_str(&text).expect("corpus YAML");
        let meta = doc["metadata"].as_object_mut().unwrap();
        meta.remove("generateName");
        meta.insert("name".into(), json!(name));
        ns.apply(&doc.to_string()).await;
    }
    for (name, templates) in &cases {
        let ex = wait_phase(&ns, name, "Running", Duration::from_secs(60)).await;
        for t in templates.iter() {
            assert_eq!(template_status(&ex, t).status.as_deref(), Some("Running"));
            let rs = replica_set(&ns, &format!("{name}-{t}")).await;
            assert_eq!(available(&rs), 1, "{name}-{t}");
        }
    }
    // The Services of the three service manifests, named and with ports as upstream's e2e
    // tests expect.
    for (svc, ports) in [
        ("experiment-with-service-test", 1),
        ("experiment-with-multiport-service-test", 3),
        ("test-service-name", 1),
    ] {
        let s = ns
            .wait_for(
                &format!("Service {svc}"),
                Duration::from_secs(30),
                || async {
                    Ok(ns
                        .api::<k8s_openapi::api::core::v1::Service>()
                        .get_opt(svc)
                        .await?)
                },
            )
            .await;
        assert_eq!(s.spec.unwrap().ports.unwrap().len(), ports, "{svc}");
    }
    // Each runs its `duration` (10s or 30s).
    for (name, _) in &cases {
        let ex = wait_phase(&ns, name, "Successful", Duration::from_secs(90)).await;
        assert_eq!(progressing(&ex).1, "ExperimentCompleted");
    }
}

// ------------------------------------------------------------------------------------------
// The CLI's experiment commands
// ------------------------------------------------------------------------------------------

/// An AnalysisTemplate whose one metric is a Job measured every 2s, 100 times: its run stays
/// Running until terminated.
const LOOP_TEMPLATE: &str = r#"apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata:
  name: loop
spec:
  metrics:
  - name: smoke
    interval: 2s
    count: 100
    provider:
      job:
        spec:
          backoffLimit: 0
          template:
            spec:
              restartPolicy: Never
              containers:
              - name: test
                image: busybox:ok
                command: [sh, -c, "exit 0"]
"#;

/// `get experiment` (tree, images, `--watch`), `list experiments` (upstream's columns),
/// `terminate analysisrun`, `terminate experiment`, `retry experiment` and their errors, with
/// the Experiment and AnalysisRun controllers running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_gets_lists_terminates_and_retries_experiments() {
    use crate::cli::cli;
    let (ns, _ctl) = setup_experiment("exp-cli").await;
    let _analysis = crate::analysis::start_analysis_controller(&ns);
    ns.apply(LOOP_TEMPLATE).await;
    ns.apply(&manifest(
        "cli",
        "nginx:1.20",
        json!({"duration": "1h", "scaleDownDelaySeconds": 0,
               "analyses": [{"name": "loop", "templateName": "loop"}]}),
    ))
    .await;
    ns.apply(&manifest(
        "again",
        "nginx:1.21",
        json!({"duration": "3s", "scaleDownDelaySeconds": 0}),
    ))
    .await;
    wait_phase(&ns, "cli", "Running", Duration::from_secs(60)).await;
    ns.wait_for("the run measuring", Duration::from_secs(60), || async {
        let run = ns
            .api::<rollouts::api::AnalysisRun>()
            .get_opt("cli-loop")
            .await?;
        let phase = run.and_then(|r| r.status).and_then(|s| s.phase);
        Ok((phase.as_deref() == Some("Running")).then_some(()))
    })
    .await;

    // get experiment: the summary and the tree of ReplicaSets, pods and the run.
    let pods_ready = || async {
        let out = cli(&ns, &["get", "experiment", "cli", "--no-color"]).await;
        assert_eq!(out.code, 0, "{out}");
        let ready = out.stdout.matches("ready:1/1").count();
        (ready == 3).then_some(out.stdout)
    };
    let text = ns
        .wait_for(
            "three pods in the tree",
            Duration::from_secs(30),
            || async { Ok(pods_ready().await) },
        )
        .await;
    for want in [
        "Name:            cli\n",
        &format!("Namespace:       {}\n", ns.name),
        "Status:          ◌ Running\n",
        "Images:          nginx:1.19 (Σ:baseline)\n",
        "                 nginx:1.20 (Σ:canary)\n",
        "NAME ",
        "Σ cli ",
        " Experiment ",
        "├──⧉ cli-baseline ",
        "├──⧉ cli-canary ",
        " ReplicaSet   ✔ Healthy ",
        "└──α cli-loop ",
        " AnalysisRun  ◌ Running ",
    ] {
        assert!(text.contains(want), "no {want:?} in:\n{text}");
    }
    // The aliases upstream has.
    let out = cli(&ns, &["get", "exp", "cli"]).await;
    assert_eq!(out.code, 0, "{out}");

    // list experiments: NAME STATUS DURATION REMAINING AGE.
    let out = cli(&ns, &["list", "experiments"]).await;
    assert_eq!(out.code, 0, "{out}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["NAME", "STATUS", "DURATION", "REMAINING", "AGE"],
        "{out}"
    );
    let row = |name: &str| {
        lines
            .iter()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|c| c[0] == name)
            .unwrap_or_else(|| panic!("no row {name}:\n{out}"))
    };
    let cli_row = row("cli");
    assert_eq!(&cli_row[1..3], ["Running", "60m"], "{out}");
    assert!(
        ["59m", "60m"].contains(&cli_row[3]),
        "remaining {:?}",
        cli_row[3]
    );
    let out = cli(&ns, &["list", "exp", "-A"]).await;
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stdout.starts_with("NAMESPACE "), "{out}");
    assert!(out.stdout.contains(&ns.name), "{out}");

    // terminate analysisrun: the run ends, the Experiment keeps running (not required).
    let out = cli(&ns, &["terminate", "analysisrun", "cli-loop"]).await;
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "analysisRun 'cli-loop' terminated\n"),
        "{out}"
    );
    let run = ns
        .wait_for("the run terminated", Duration::from_secs(30), || async {
            let run = ns
                .api::<rollouts::api::AnalysisRun>()
                .get("cli-loop")
                .await?;
            let phase = run.status.as_ref().and_then(|s| s.phase.clone());
            Ok((phase.as_deref() == Some("Successful")).then_some(run))
        })
        .await;
    assert_eq!(run.spec.terminate, Some(true));
    assert_eq!(
        get_experiment(&ns, "cli")
            .await
            .status
            .unwrap()
            .phase
            .as_deref(),
        Some("Running")
    );

    // terminate experiment: Successful, scaled down.
    let out = cli(&ns, &["terminate", "experiment", "cli"]).await;
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "experiment 'cli' terminated\n"),
        "{out}"
    );
    wait_phase(&ns, "cli", "Successful", Duration::from_secs(30)).await;
    let out = cli(&ns, &["get", "experiment", "cli", "--no-color"]).await;
    assert!(
        out.stdout.contains("Status:          ✔ Successful\n"),
        "{out}"
    );

    // retry experiment: the status is cleared and the Experiment runs again (a new
    // availableAt, its ReplicaSets scaled up again), to Successful again.
    let first = wait_phase(&ns, "again", "Successful", Duration::from_secs(60)).await;
    let first_available = first.status.unwrap().available_at.unwrap().0;
    ns.wait_for("again scaled down", Duration::from_secs(30), || async {
        let rs = ns.api::<ReplicaSet>().get("again-canary").await?;
        Ok((spec_replicas(&rs) == 0).then_some(()))
    })
    .await;
    let out = cli(&ns, &["retry", "experiment", "again"]).await;
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "experiment 'again' retried\n"),
        "{out}"
    );
    let rerun = ns
        .wait_for("a second run", Duration::from_secs(60), || async {
            let ex = ns.api::<Experiment>().get("again").await?;
            let st = ex.status.clone().unwrap_or_default();
            let later = st
                .available_at
                .as_ref()
                .is_some_and(|t| t.0 > first_available);
            Ok((later && st.phase.as_deref() == Some("Successful")).then_some(ex))
        })
        .await;
    assert_eq!(
        template_status(&rerun, "canary").status.as_deref(),
        Some("Successful")
    );

    // What is not there: one line, exit 3.
    for args in [
        &["get", "experiment", "nope"][..],
        &["terminate", "experiment", "nope"],
        &["retry", "experiment", "nope"],
        &["terminate", "analysisrun", "nope"],
    ] {
        let out = cli(&ns, args).await;
        assert_eq!(out.code, 3, "{args:?}: {out}");
        let kind = if args[1] == "analysisrun" {
            "analysisrun"
        } else {
            "experiment"
        };
        assert_eq!(
            out.stderr,
            format!(
                "error: {kind} \"nope\" not found in namespace \"{}\"\n",
                ns.name
            ),
            "{args:?}"
        );
    }
}

/// `get experiment --watch` redraws when the Experiment changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_experiment_watch_redraws_on_change() {
    let (ns, _ctl) = setup_experiment("exp-cli-watch").await;
    ns.apply(&manifest(
        "w",
        "nginx:1.20",
        json!({"scaleDownDelaySeconds": 0}),
    ))
    .await;
    wait_phase(&ns, "w", "Running", Duration::from_secs(60)).await;
    /// The watching CLI, killed when the test ends.
    struct Child(std::process::Child);
    impl Drop for Child {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut child = Child(
        std::process::Command::new(env!("CARGO_BIN_EXE_kubectl-rollouts"))
            .args(["-n", &ns.name, "get", "experiment", "w", "--watch"])
            .env("KUBECONFIG", &testkit::cluster().kubeconfig)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("starting get --watch"),
    );
    let mut stdout = child.0.stdout.take().unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let s = seen.clone();
    std::thread::spawn(move || {
        use std::io::Read;
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            s.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    let has = |want: &'static str| {
        let seen = seen.clone();
        move || {
            let seen = seen.clone();
            async move { Ok(seen.lock().unwrap().contains(want).then_some(())) }
        }
    };
    ns.wait_for("the first view", Duration::from_secs(20), has("◌ Running"))
        .await;
    ns.api::<Experiment>()
        .patch(
            "w",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"terminate": true}})),
        )
        .await
        .expect("terminating");
    ns.wait_for("the redraw", Duration::from_secs(30), has("✔ Successful"))
        .await;
    drop(child);
    let text = seen.lock().unwrap().clone();
    assert!(
        text.matches("Name:            w\n").count() >= 2,
        "one view only:\n{text}"
    );
}

/// `get rollout` shows the Experiments the Rollout owns in its tree, under their revision,
/// with their ReplicaSets and pods, and their images tagged `Σ:<template>`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_rollout_shows_the_rollouts_experiment() {
    use crate::cli::cli;
    let (ns, rctl) = setup("exp-cli-rollout").await;
    let _ectl = ExperimentCtl::start(&ns);
    ns.apply(
        r#"
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: "nginx:1.19"}]
  strategy:
    canary:
      steps: [{setWeight: 50}, {pause: {}}]
"#,
    )
    .await;
    let ro = ns
        .wait_for("the Rollout Healthy", Duration::from_secs(60), || async {
            let ro = ns.api::<rollouts::api::Rollout>().get("web").await?;
            let phase = ro.status.as_ref().and_then(|s| s.phase.clone());
            Ok((phase.as_deref() == Some("Healthy")).then_some(ro))
        })
        .await;
    // The Rollout controller is done; only the Experiment controller runs from here (this
    // test is about the view, not about what a Rollout does with its Experiments).
    drop(rctl);
    // An Experiment of the Rollout's revision 1, owned by it (as an experiment step makes one).
    let mut doc: serde_json::Value =
        serde_json::from_str(&manifest("web-1-0", "nginx:1.20", json!({}))).unwrap();
    doc["metadata"]["annotations"] = json!({"rollout.argoproj.io/revision": "1"});
    doc["metadata"]["ownerReferences"] = json!([{
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": "web",
        "uid": ro.uid().unwrap(), "controller": true, "blockOwnerDeletion": true}]);
    for t in doc["spec"]["templates"].as_array_mut().unwrap() {
        t["selector"]["matchLabels"]["app"] = json!("web");
        t["template"]["metadata"]["labels"]["app"] = json!("web");
    }
    ns.apply(&doc.to_string()).await;
    wait_phase(&ns, "web-1-0", "Running", Duration::from_secs(60)).await;
    let text = ns
        .wait_for(
            "the experiment in the tree",
            Duration::from_secs(30),
            || async {
                let out = cli(&ns, &["get", "rollout", "web", "--no-color"]).await;
                assert_eq!(out.code, 0, "{out}");
                let ok = out.stdout.matches(" Pod ").count() == 4;
                Ok(ok.then_some(out.stdout))
            },
        )
        .await;
    for want in [
        "nginx:1.19 (stable, Σ:baseline)",
        "nginx:1.20 (Σ:canary)",
        "└──# revision:1",
        "Σ web-1-0 ",
        " Experiment ",
        "⧉ web-1-0-baseline ",
        "⧉ web-1-0-canary ",
    ] {
        assert!(text.contains(want), "no {want:?} in:\n{text}");
    }
    // The experiment's ReplicaSets are under it, not beside the Rollout's.
    let exp_line = text.lines().position(|l| l.contains("Σ web-1-0")).unwrap();
    let canary_line = text
        .lines()
        .position(|l| l.contains("⧉ web-1-0-canary"))
        .unwrap();
    assert!(canary_line > exp_line, "{text}");
    assert!(
        text.lines().nth(canary_line).unwrap().starts_with("      "),
        "{text}"
    );
}

// ------------------------------------------------------------------------------------------
// Garbage collection, restarts, refusals
// ------------------------------------------------------------------------------------------

/// The controller owner reference every object of the Experiment carries (upstream's
/// `NewControllerRef`: controller and blockOwnerDeletion).
fn assert_controlled_by(
    what: &str,
    refs: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference],
    ex: &Experiment,
) {
    assert_eq!(refs.len(), 1, "{what}: {refs:?}");
    let o = &refs[0];
    assert_eq!(
        (
            o.api_version.as_str(),
            o.kind.as_str(),
            o.name.as_str(),
            Some(o.uid.clone()),
            o.controller,
            o.block_owner_deletion
        ),
        (
            "argoproj.io/v1alpha1",
            "Experiment",
            ex.name_any().as_str(),
            ex.uid(),
            Some(true),
            Some(true)
        ),
        "{what}"
    );
}

/// Deleting an Experiment: the control plane's garbage collector (kube-controller-manager)
/// deletes its ReplicaSets (and their pods), its Service and its AnalysisRun, through the
/// controller owner references.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_an_experiment_garbage_collects_what_it_owns() {
    use k8s_openapi::api::core::v1::{Pod, Service};
    use rollouts::api::AnalysisRun;
    let (ns, _ctl) = setup_experiment("exp-gc").await;
    let _analysis = crate::analysis::start_analysis_controller(&ns);
    ns.apply(LOOP_TEMPLATE).await;
    let mut doc: serde_json::Value = serde_json::from_str(&manifest(
        "gc",
        "nginx:1.20",
        json!({"analyses": [{"name": "loop", "templateName": "loop"}]}),
    ))
    .unwrap();
    doc["spec"]["templates"][1]["service"] = json!({});
    doc["spec"]["templates"][1]["template"]["spec"]["containers"][0]["ports"] =
        json!([{"name": "http", "containerPort": 8080}]);
    ns.apply(&doc.to_string()).await;
    let ex = wait_phase(&ns, "gc", "Running", Duration::from_secs(60)).await;
    let svc = ns
        .wait_for("the Service", Duration::from_secs(30), || async {
            Ok(ns.api::<Service>().get_opt("gc-canary").await?)
        })
        .await;
    let run = ns
        .wait_for("the AnalysisRun", Duration::from_secs(30), || async {
            Ok(ns.api::<AnalysisRun>().get_opt("gc-loop").await?)
        })
        .await;
    for t in ["baseline", "canary"] {
        let rs = replica_set(&ns, &format!("gc-{t}")).await;
        assert_controlled_by(&format!("ReplicaSet gc-{t}"), rs.owner_references(), &ex);
    }
    assert_controlled_by("Service gc-canary", svc.owner_references(), &ex);
    assert_controlled_by("AnalysisRun gc-loop", run.owner_references(), &ex);
    let pods = ns.api::<Pod>().list(&ListParams::default()).await.unwrap();
    assert!(pods.items.len() >= 3, "the template pods run");

    // A plain delete (background propagation, as `kubectl delete`).
    ns.api::<Experiment>()
        .delete("gc", &Default::default())
        .await
        .expect("deleting the Experiment");
    ns.wait_for(
        "the ReplicaSets, Service, AnalysisRun and template pods collected",
        Duration::from_secs(60),
        || async {
            let rss = ns.api::<ReplicaSet>().list(&ListParams::default()).await?;
            let svcs = ns.api::<Service>().list(&ListParams::default()).await?;
            let runs = ns.api::<AnalysisRun>().list(&ListParams::default()).await?;
            let pods = ns
                .api::<Pod>()
                .list(&ListParams::default().labels("app=gc"))
                .await?;
            Ok((rss.items.is_empty()
                && svcs.items.is_empty()
                && runs.items.is_empty()
                && pods.items.is_empty())
            .then_some(()))
        },
    )
    .await;
    assert!(
        ns.api::<Experiment>()
            .get_opt("gc")
            .await
            .unwrap()
            .is_none(),
        "the Experiment is gone"
    );
}

/// The controller is stopped for most of an Experiment's `duration` and a new one takes
/// over: the same ReplicaSets (uids), the same one AnalysisRun (no duplicate), the same
/// `availableAt`, and the Experiment ends once `duration` has passed since `availableAt`, not
/// since the restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_controller_resumes_with_the_same_objects_and_honours_the_duration() {
    use rollouts::api::AnalysisRun;
    let (ns, ctl) = setup_experiment("exp-restart").await;
    let _analysis = crate::analysis::start_analysis_controller(&ns);
    ns.apply(LOOP_TEMPLATE).await;
    let duration = 12;
    ns.apply(&manifest(
        "mid",
        "nginx:1.20",
        json!({"duration": format!("{duration}s"), "scaleDownDelaySeconds": 0,
               "analyses": [{"name": "loop", "templateName": "loop"}]}),
    ))
    .await;
    let ex = wait_phase(&ns, "mid", "Running", Duration::from_secs(60)).await;
    let available_at = ex.status.clone().unwrap().available_at.unwrap().0;
    let run = ns
        .wait_for("the AnalysisRun", Duration::from_secs(30), || async {
            Ok(ns.api::<AnalysisRun>().get_opt("mid-loop").await?)
        })
        .await;
    let uids_of_rss = || async {
        let mut v: Vec<String> = ns
            .api::<ReplicaSet>()
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .iter()
            .filter_map(|r| r.uid())
            .collect();
        v.sort();
        v
    };
    let runs = || async {
        ns.api::<AnalysisRun>()
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .iter()
            .map(|r| (r.name_any(), r.uid().unwrap_or_default()))
            .collect::<Vec<_>>()
    };
    let rss_before = uids_of_rss().await;
    assert_eq!(rss_before.len(), 2);

    // Down for 8 of the 12 seconds.
    drop(ctl);
    tokio::time::sleep(Duration::from_secs(8)).await;
    let restarted = k8s_openapi::jiff::Timestamp::now();
    let _ctl = ExperimentCtl::start(&ns);
    let ex = wait_phase(&ns, "mid", "Successful", Duration::from_secs(60)).await;
    let ended = k8s_openapi::jiff::Timestamp::now();
    let status = ex.status.clone().unwrap();
    assert_eq!(status.available_at.map(|t| t.0), Some(available_at));
    assert!(
        ended.duration_since(available_at).as_secs() >= duration,
        "Successful at {ended}, availableAt {available_at}"
    );
    // Counted from availableAt: well before a full duration after the restart.
    assert!(
        ended.duration_since(restarted).as_secs() < duration,
        "Successful at {ended}, {duration}s after the restart at {restarted}: the duration was counted again"
    );
    assert_eq!(uids_of_rss().await, rss_before, "the same ReplicaSets");
    assert_eq!(
        runs().await,
        [("mid-loop".to_string(), run.uid().unwrap())],
        "the same one AnalysisRun"
    );
    let recorded = status.analysis_runs.unwrap();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].analysis_run.as_deref(), Some("mid-loop"));
    wait_scaled_down(&ns, Duration::from_secs(30)).await;
}

/// A template the API server refuses (no pod spec: upstream's
/// `expectedfailures/experiment-invalid.yaml`, here project-owned) is a template Error with
/// the API server's reason, and the Experiment ends in Error; the valid template is scaled
/// down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_template_the_api_server_refuses_ends_the_experiment_in_error() {
    let (ns, _ctl) = setup_experiment("exp-refused").await;
    let mut doc: serde_json::Value = serde_json::from_str(&manifest(
        "refused",
        "nginx:1.20",
        json!({"scaleDownDelaySeconds": 0}),
    ))
    .unwrap();
    doc["spec"]["templates"][1]["template"]
        .as_object_mut()
        .unwrap()
        .remove("spec");
    ns.apply(&doc.to_string()).await;
    let ex = wait_phase(&ns, "refused", "Error", Duration::from_secs(60)).await;
    let ts = template_status(&ex, "canary");
    assert_eq!(ts.status.as_deref(), Some("Error"));
    let msg = ts.message.clone().unwrap_or_default();
    assert!(
        msg.starts_with("Failed to create ReplicaSet for template 'canary': ")
            && msg.contains("containers"),
        "{msg}"
    );
    assert!(
        ns.api::<ReplicaSet>()
            .get_opt("refused-canary")
            .await
            .unwrap()
            .is_none()
    );
    wait_scaled_down(&ns, Duration::from_secs(30)).await;
    wait_events(&ns, "refused", &["TemplateError"]).await;
}

// ------------------------------------------------------------------------------------------
// A/B with a Prometheus analysis
// ------------------------------------------------------------------------------------------

/// An A/B Experiment: a baseline and a canary template side by side, and a required
/// Prometheus analysis comparing the canary's error rate with the baseline's (by their
/// pod-template hashes, as a dashboard would label their requests). The first measurement
/// waits 5s (`initialDelay`), by when the test serves the counters of the templates' hashes.
fn ab_manifest(name: &str, prometheus: &str) -> String {
    format!(
        r#"apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {{name: error-rate-vs-baseline}}
spec:
  args:
  - name: baseline-hash
  - name: canary-hash
  metrics:
  - name: error-rate-difference
    interval: 1s
    count: 3
    initialDelay: 5s
    successCondition: result[0] < 0.05
    failureCondition: result[0] >= 0.05
    failureLimit: 0
    provider:
      prometheus:
        address: {prometheus}
        query: >-
          abs(
            sum(test_requests{{svc="{{{{args.canary-hash}}}}",code="5xx"}}) / sum(test_requests{{svc="{{{{args.canary-hash}}}}"}})
            - scalar(sum(test_requests{{svc="{{{{args.baseline-hash}}}}",code="5xx"}}) / sum(test_requests{{svc="{{{{args.baseline-hash}}}}"}}))
          )
---
apiVersion: argoproj.io/v1alpha1
kind: Experiment
metadata: {{name: {name}}}
spec:
  scaleDownDelaySeconds: 0
  templates:
  - name: baseline
    replicas: 1
    selector: {{matchLabels: {{app: {name}, role: baseline}}}}
    template:
      metadata: {{labels: {{app: {name}, role: baseline}}}}
      spec: {{containers: [{{name: app, image: "app:v1"}}]}}
  - name: canary
    replicas: 1
    selector: {{matchLabels: {{app: {name}, role: canary}}}}
    template:
      metadata: {{labels: {{app: {name}, role: canary}}}}
      spec: {{containers: [{{name: app, image: "app:v2"}}]}}
  analyses:
  - name: compare
    templateName: error-rate-vs-baseline
    requiredForCompletion: true
    args:
    - name: baseline-hash
      value: "{{{{templates.baseline.podTemplateHash}}}}"
    - name: canary-hash
      value: "{{{{templates.canary.podTemplateHash}}}}"
"#
    )
}

/// A/B against the real Prometheus of the tests: two Experiments with the same analysis.
/// In `same`, the canary fails 10% of its requests like the baseline: the analysis passes and
/// the Experiment is Successful. In `worse`, the canary fails 50%: the analysis fails and the
/// Experiment is Failed. The request counters are served per pod-template hash, read from
/// the template ReplicaSets the controller created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ab_prometheus_analysis_passes_when_error_rates_match_and_fails_when_not() {
    use crate::analysis::{Shared, request_metrics, serve};
    let (ns, _ctl) = setup_experiment("exp-ab").await;
    let _analysis = crate::analysis::start_analysis_controller(&ns);
    let state: Shared = Default::default();
    let port = serve(state.clone()).await;
    let prom = xtask::prometheus::Prometheus::start(&[format!("127.0.0.1:{port}")])
        .await
        .expect("a real Prometheus must start for the analysis tests");
    prom.wait_for("up", "1", Duration::from_secs(30))
        .await
        .expect("Prometheus scrapes the test endpoint");
    for name in ["same", "worse"] {
        ns.apply(&ab_manifest(name, &prom.url())).await;
    }
    // The hashes of the four templates, once their ReplicaSets exist.
    let hash = |name: String| {
        let ns = &ns;
        async move {
            let rs = ns
                .wait_for(
                    &format!("ReplicaSet {name}"),
                    Duration::from_secs(30),
                    || async { Ok(ns.api::<ReplicaSet>().get_opt(&name).await?) },
                )
                .await;
            hash_of(&rs)
        }
    };
    let same_baseline = hash("same-baseline".into()).await;
    let same_canary = hash("same-canary".into()).await;
    let worse_baseline = hash("worse-baseline".into()).await;
    let worse_canary = hash("worse-canary".into()).await;
    state.lock().unwrap().metrics = request_metrics(&[
        (&same_baseline, 900, 100),
        (&same_canary, 450, 50),
        (&worse_baseline, 900, 100),
        (&worse_canary, 500, 500),
    ]);
    prom.wait_for(
        &format!("test_requests{{svc=\"{worse_canary}\",code=\"5xx\"}}"),
        "500",
        Duration::from_secs(30),
    )
    .await
    .expect("Prometheus has the counters");

    let ex = wait_phase(&ns, "same", "Successful", Duration::from_secs(90)).await;
    let status = ex.status.clone().unwrap();
    assert_eq!(
        status.message.as_deref(),
        Some("Required AnalysisRuns completed")
    );
    let run = ns
        .api::<rollouts::api::AnalysisRun>()
        .get("same-compare")
        .await
        .unwrap();
    let args = run.spec.args.clone().unwrap();
    for (arg, want) in [
        ("baseline-hash", &same_baseline),
        ("canary-hash", &same_canary),
    ] {
        assert!(
            args.iter()
                .any(|a| a.name.as_deref() == Some(arg) && a.value.as_deref() == Some(want)),
            "{arg}: {args:?}"
        );
    }
    let results = run.status.clone().unwrap().metric_results.unwrap();
    assert_eq!(results[0].successful, Some(3), "{results:?}");

    let ex = wait_phase(&ns, "worse", "Failed", Duration::from_secs(90)).await;
    let runs = ex.status.clone().unwrap().analysis_runs.unwrap();
    assert_eq!(
        (runs[0].analysis_run.as_deref(), runs[0].phase.as_deref()),
        (Some("worse-compare"), Some("Failed"))
    );
    let run = ns
        .api::<rollouts::api::AnalysisRun>()
        .get("worse-compare")
        .await
        .unwrap();
    let m = &run.status.clone().unwrap().metric_results.unwrap()[0];
    let value = m.measurements.as_ref().unwrap()[0]
        .value
        .clone()
        .unwrap_or_default();
    assert!(value.contains("0.4"), "the difference measured: {value}");
    wait_scaled_down(&ns, Duration::from_secs(30)).await;
}

// ------------------------------------------------------------------------------------------
// Upstream's corpus: dry-run and measurement retention, expected failures
// ------------------------------------------------------------------------------------------

/// Upstream's `TestExperimentWithDryRunMetrics` and
/// `TestExperimentWithMeasurementRetentionMetrics` on their manifests, unchanged: both end
/// Successful after their 30s; the dry-run run counts its failed Job in `dryRunSummary`
/// (count 1, failed 1) without failing, the retained run keeps 2 measurements. Skipped with a
/// notice where the corpus is absent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_dry_run_and_measurement_retention_experiments() {
    let Some(_) = compat_corpus() else {
        return;
    };
    let (ns, _ctl) = setup_experiment("exp-corpus-analysis").await;
    let _analysis = crate::analysis::start_analysis_controller(&ns);
    for f in [
        "experiment-dry-run-analysis",
        "experiment-measurement-retention-analysis",
    ] {
        ns.apply(&compat_file(&format!("test/e2e/functional/{f}.yaml")).unwrap())
            .await;
    }
    let run_of = |ex: &Experiment| {
        ex.status.as_ref().unwrap().analysis_runs.as_ref().unwrap()[0]
            .analysis_run
            .clone()
            .unwrap()
    };
    let ex = wait_phase(
        &ns,
        "experiment-with-dry-run",
        "Successful",
        Duration::from_secs(90),
    )
    .await;
    let run = ns
        .api::<rollouts::api::AnalysisRun>()
        .get(&run_of(&ex))
        .await
        .unwrap();
    let summary = run.status.clone().unwrap().dry_run_summary.unwrap();
    assert_eq!(
        (
            summary.count.unwrap_or(0),
            summary.error.unwrap_or(0),
            summary.failed.unwrap_or(0)
        ),
        (1, 0, 1),
        "{summary:?}"
    );
    let ex = wait_phase(
        &ns,
        "experiment-with-mr",
        "Successful",
        Duration::from_secs(90),
    )
    .await;
    let run = ns
        .api::<rollouts::api::AnalysisRun>()
        .get(&run_of(&ex))
        .await
        .unwrap();
    let results = run.status.clone().unwrap().metric_results.unwrap();
    assert_eq!(results[0].measurements.as_ref().map(Vec::len), Some(2));
    assert!(results[0].count.unwrap_or(0) > 2, "{results:?}");
}

/// Upstream's `test/e2e/expectedfailures/experiment-*.yaml` (and `malformed-experiment.yaml`),
/// applied unchanged (a name given where they only have `generateName`), end as their names
/// say upstream expects: `degrade` (an image that never pulls, a 30s progress deadline)
/// Failed; `error-template-missing` (an analysis of a template that does not exist) Error;
/// `failed-analysis` (a Job that exits 1) Failed; `invalid` (a template without a pod spec)
/// and `malformed-experiment` (an invalid memory quantity) Error, as the API server refuses
/// their ReplicaSets. Skipped with a notice where the corpus is absent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_expected_failure_experiments_end_as_upstream_expects() {
    let Some(_) = compat_corpus() else {
        return;
    };
    let (ns, _ctl) = setup_experiment("exp-corpus-failures").await;
    let _analysis = crate::analysis::start_analysis_controller(&ns);
    let cases = [
        (
            "experiment-degrade",
            "Failed",
            "exceeded its progressDeadlineSeconds (30)",
        ),
        (
            "experiment-error-template-missing",
            "Error",
            "analysistemplate.argoproj.io \"does-not-exist\" not found",
        ),
        ("experiment-failed-analysis", "Failed", ""),
        (
            "experiment-invalid",
            "Error",
            "Failed to create ReplicaSet for template 'invalid-spec'",
        ),
        (
            "malformed-experiment",
            "Error",
            "Failed to create ReplicaSet for template 'canary'",
        ),
    ];
    for (file, _, _) in &cases {
        let text = compat_file(&format!("test/e2e/expectedfailures/{file}.yaml")).unwrap();
        for doc in text.split("\n---") {
            let mut doc: serde_json::Value = serde_yaml::from_str(doc).expect("corpus YAML");
            if doc["kind"] == "Experiment" {
                let meta = doc["metadata"].as_object_mut().unwrap();
                meta.remove("generateName");
                meta.insert("name".into(), json!(file));
            }
            ns.apply(&doc.to_string()).await;
        }
    }
    for (name, phase, message) in &cases {
        let ex = wait_phase(&ns, name, phase, Duration::from_secs(120)).await;
        let st = ex.status.clone().unwrap();
        let messages = format!(
            "{} {:?} {:?}",
            st.message.clone().unwrap_or_default(),
            st.template_statuses,
            st.analysis_runs
        );
        assert!(messages.contains(message), "{name}: {messages}");
    }
}
