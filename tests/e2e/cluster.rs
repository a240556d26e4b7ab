//! The local control plane itself: pods run (simulated), Services get endpoints, bad images
//! never become Ready, Jobs finish, and `crds/` accepts every upstream manifest.

use crate::common::*;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Endpoints, Node, Pod};
use kube::Api;
use kube::api::ListParams;
use std::path::Path;
use std::time::Duration;

const WEB: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: "nginx:IMAGE", ports: [{containerPort: 80, protocol: TCP}]}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, protocol: TCP}]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_node_is_ready() {
    let client = testkit::client().await;
    let node = Api::<Node>::all(client)
        .get(xtask::podsim::NODE_NAME)
        .await
        .expect("the simulated node");
    let ready = node
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default()
        .iter()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    assert!(ready, "node not Ready");
    // kubectl sees it too.
    let out = testkit::kubectl(&["get", "nodes", "--no-headers"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(xtask::podsim::NODE_NAME) && text.contains("Ready"),
        "kubectl get nodes: {text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployment_becomes_available_with_endpoints() {
    let ns = TestNs::new("deploy").await;
    ns.apply(&WEB.replace("IMAGE", "1.19")).await;
    ns.wait_for(
        "Deployment web Available with 3 endpoints",
        Duration::from_secs(60),
        || async {
            let d = ns.api::<Deployment>().get("web").await?;
            let available = d.status.and_then(|s| s.available_replicas).unwrap_or(0);
            let ep = ns.api::<Endpoints>().get("web").await?;
            let addrs: usize = ep
                .subsets
                .unwrap_or_default()
                .iter()
                .map(|s| s.addresses.as_ref().map_or(0, Vec::len))
                .sum();
            Ok((available == 3 && addrs == 3).then_some(()))
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_image_never_becomes_ready() {
    let ns = TestNs::new("bad").await;
    ns.apply(&WEB.replace("IMAGE", "1.19-bad")).await;
    // The pods run but crash-loop: restart counts rise, Ready stays False.
    ns.wait_for(
        "crash-looping pods with restarts",
        Duration::from_secs(60),
        || async {
            let pods = ns.api::<Pod>().list(&ListParams::default()).await?.items;
            let crashing = pods
                .iter()
                .filter(|p| {
                    p.status
                        .as_ref()
                        .and_then(|s| s.container_statuses.as_ref())
                        .is_some_and(|cs| {
                            cs.iter().any(|c| {
                                c.restart_count >= 1
                                    && c.state
                                        .as_ref()
                                        .and_then(|s| s.waiting.as_ref())
                                        .and_then(|w| w.reason.as_deref())
                                        == Some("CrashLoopBackOff")
                            })
                        })
                })
                .count();
            Ok((crashing == 3).then_some(()))
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let d = ns.api::<Deployment>().get("web").await.unwrap();
    assert_eq!(
        d.status.and_then(|s| s.ready_replicas).unwrap_or(0),
        0,
        "a bad pod became Ready"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_succeed_or_fail_by_image_tag() {
    let ns = TestNs::new("jobs").await;
    let job = |name: &str, tag: &str| {
        format!(
            "apiVersion: batch/v1\nkind: Job\nmetadata: {{name: {name}}}\nspec:\n  backoffLimit: 0\n  template:\n    spec:\n      restartPolicy: Never\n      containers: [{{name: j, image: \"busybox:{tag}\"}}]\n"
        )
    };
    ns.apply(&job("ok", "1")).await;
    ns.apply(&job("broken", "fail")).await;
    ns.wait_for(
        "job ok succeeded, job broken failed",
        Duration::from_secs(60),
        || async {
            let ok = ns.api::<Job>().get("ok").await?.status.unwrap_or_default();
            let broken = ns
                .api::<Job>()
                .get("broken")
                .await?
                .status
                .unwrap_or_default();
            Ok((ok.succeeded == Some(1) && broken.failed == Some(1)).then_some(()))
        },
    )
    .await;
}

fn yaml_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            yaml_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "yaml" || x == "yml") {
            out.push(p);
        }
    }
}

/// Every upstream manifest of the five kinds (outside expectedfailures/) passes a server-side
/// dry-run against our CRDs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_manifests_pass_server_side_dry_run() {
    let Some(root) = compat_corpus() else { return };
    crds_installed().await;
    let ns = TestNs::new("compat-dryrun").await;
    let kinds = [
        "Rollout",
        "AnalysisTemplate",
        "ClusterAnalysisTemplate",
        "AnalysisRun",
        "Experiment",
    ];
    let mut files = Vec::new();
    for sub in ["examples", "docs", "test"] {
        yaml_files(&root.join(sub), &mut files);
    }
    files.sort();
    let (mut ok, mut failures) = (0, Vec::new());
    for f in files {
        if f.to_string_lossy().contains("expectedfailures")
            || f.to_string_lossy().contains("/crds/")
        {
            continue;
        }
        // Placeholders upstream's e2e harness fills in before applying.
        let text = std::fs::read_to_string(&f)
            .unwrap()
            .replace("ROLLOUT_NAME", "rollout-name")
            .replace("REPLACEME", "replaceme")
            .replace("$$name$$", "name");
        let Ok(docs) = testkit::yaml_documents(&text) else {
            continue;
        };
        for doc in docs {
            let kind = doc.get("kind").and_then(|k| k.as_str()).unwrap_or_default();
            if !kinds.contains(&kind) {
                continue;
            }
            match testkit::apply_value(&ns.client, Some(&ns.name), doc.clone(), true).await {
                Ok(_) => ok += 1,
                Err(e) => failures.push(format!("{}: {kind}: {e:#}", f.display())),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} accepted, rejected:\n{}",
        ok,
        failures.join("\n")
    );
    assert!(ok > 100, "only {ok} documents checked");
    eprintln!("{ok} upstream documents accepted by a server-side dry-run");
}
