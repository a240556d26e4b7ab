//! `charts/rollouts` rendered and linted with Helm's own engine (helm-python-sdk: Helm's Go
//! SDK as a shared library), without a cluster. The server-side dry-run of the rendered
//! manifests and the RBAC test (the controller running as the chart's ServiceAccount) are in
//! `tests/e2e/ops.rs`.

#[path = "helm/render.rs"]
mod render;

use clap::Parser;
use render::{lint, render, root, rules, schema_error};
use rollouts::ops::cli::{Cli, Command};
use serde_json::{Value, json};
use std::collections::BTreeSet;

fn assert_lint_clean(values: &Value) {
    let report = lint(values);
    let errors = report["errors"].as_array().cloned().unwrap_or_default();
    let serious: Vec<&Value> = report["messages"]
        .as_array()
        .into_iter()
        .flatten()
        // 1 = info (e.g. "icon is recommended"); 2 = warning, 3 = error.
        .filter(|m| m["severity"].as_i64().unwrap_or(3) >= 2)
        .collect();
    assert!(
        errors.is_empty() && serious.is_empty(),
        "helm lint --strict with {values}: {report:#}"
    );
    assert_eq!(report["total_charts_linted"], 1);
}

#[test]
fn chart_lints_clean_in_strict_mode() {
    assert_lint_clean(&json!({}));
    assert_lint_clean(&json!({
        "namespaced": true,
        "instanceId": "shard-a",
        "logFormat": "json",
        "logLevel": "debug",
        "metrics": {"serviceMonitor": {"enabled": true, "additionalLabels": {"release": "prom"}}},
        "prometheusAddress": "http://prometheus.monitoring:9090",
        "extraArgs": ["--rollout-concurrency=4"],
        "extraEnv": [{"name": "RUST_BACKTRACE", "value": "1"}],
    }));
    assert_lint_clean(&json!({
        "replicas": 1,
        "leaderElection": {"enabled": false},
        "podDisruptionBudget": {"enabled": false},
        "metrics": {"service": {"enabled": false}},
        "serviceAccount": {"create": false, "name": "existing"},
    }));
}

#[test]
fn values_schema_rejects_bad_values() {
    for bad in [
        json!({"replicas": 0}),
        json!({"replicas": "two"}),
        json!({"logFormat": "xml"}),
        json!({"namespaced": "yes"}),
        json!({"kubeApi": {"qps": 0}}),
        json!({"kubeApi": {"burst": 0}}),
        json!({"leaderElection": {"leaseDuration": "15 seconds"}}),
        json!({"instanceId": "-bad-"}),
        json!({"image": {"pullPolicy": "Sometimes"}}),
        json!({"unknownKey": true}),
        json!({"metrics": {"port": 70000}}),
        json!({"podDisruptionBudget": {"apiVersion": "policy/v2"}}),
    ] {
        assert!(
            schema_error(&bad).is_some(),
            "values.schema.json accepted {bad}"
        );
    }
    for good in [
        json!({}),
        json!({"replicas": 3, "logFormat": "json", "kubeApi": {"qps": 12.5, "burst": 20}}),
        json!({"leaderElection": {"leaseDuration": "1m30s", "retryPeriod": "500ms"}}),
        json!({"podDisruptionBudget": {"minAvailable": "50%", "apiVersion": "policy/v1beta1"}}),
    ] {
        assert_eq!(
            schema_error(&good),
            None,
            "values.schema.json rejected {good}"
        );
    }
}

#[test]
fn chart_crds_are_the_generated_ones() {
    let rendered = render("rollouts", "rollouts", &json!({}));
    let dir = root().join("crds");
    let mut generated: Vec<String> = std::fs::read_dir(&dir)
        .expect("reading crds/")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    generated.sort();
    let shipped: Vec<String> = rendered.crds.keys().cloned().collect();
    assert_eq!(
        shipped, generated,
        "charts/rollouts/crds/ must hold exactly crds/*.yaml (cp crds/*.yaml charts/rollouts/crds/)"
    );
    for (name, text) in &rendered.crds {
        let want = std::fs::read_to_string(dir.join(name)).expect("reading a CRD");
        assert!(
            text == &want,
            "charts/rollouts/crds/{name} differs from crds/{name}: cp crds/*.yaml charts/rollouts/crds/"
        );
    }
}

/// The container's args, parsed by the binary's own command line.
fn parsed_args(deployment: &Value, namespace: &str) -> rollouts::ops::Options {
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    let mut argv = vec!["rollouts-controller".to_string()];
    for a in container["args"].as_array().into_iter().flatten() {
        argv.push(
            a.as_str()
                .unwrap_or_default()
                .replace("$(POD_NAMESPACE)", namespace),
        );
    }
    let cli = Cli::try_parse_from(&argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
    let Command::Run(args) = cli.cmd else {
        panic!("the chart does not run `run`: {argv:?}")
    };
    args.options(namespace)
        .unwrap_or_else(|e| panic!("{argv:?}: {e}"))
}

#[test]
fn deployment_is_hardened_elected_and_flags_parse() {
    let r = render("rel", "ops", &json!({}));
    let d = r.one("Deployment");
    assert_eq!(d["metadata"]["namespace"], "ops");
    assert_eq!(d["spec"]["replicas"], 2);
    let pod = &d["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    assert_eq!(pod["serviceAccountName"], "rel-rollouts");
    let c = &pod["containers"][0];
    let sc = &c["securityContext"];
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["runAsNonRoot"], true);
    assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]));
    assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault");
    assert!(sc.get("privileged") != Some(&json!(true)));
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert!(c["resources"]["requests"]["memory"].is_string());
    assert_eq!(c["image"], "rollouts-controller:0.1.0");

    let o = parsed_args(&d, "ops");
    let le = o.leader_election.expect("leader election on by default");
    assert_eq!(le.namespace, "ops");
    assert_eq!(le.name, "rollouts-controller-lock");
    assert_eq!(o.namespace, None);
    assert_eq!((o.qps, o.burst), (40.0, 80));
    assert_eq!(o.metrics_addr.port(), 8090);
    assert_eq!(o.healthz_addr.port(), 8080);

    let r = render(
        "rel",
        "team-a",
        &json!({"namespaced": true, "instanceId": "a", "logFormat": "json",
                "kubeApi": {"qps": 5, "burst": 10}, "leaderElection": {"enabled": false},
                "replicas": 1}),
    );
    let d = r.one("Deployment");
    let o = parsed_args(&d, "team-a");
    assert_eq!(o.namespace.as_deref(), Some("team-a"));
    assert_eq!(o.instance_id.as_deref(), Some("a"));
    assert_eq!((o.qps, o.burst), (5.0, 10));
    assert!(o.leader_election.is_none());
    assert!(r.of_kind("Lease").is_empty());
}

type Rule = (&'static str, &'static str, &'static [&'static str]);

/// Exactly what the controllers call (see the comments in templates/_helpers.tpl).
const EXPECTED_RULES: &[Rule] = &[
    (
        "argoproj.io",
        "rollouts",
        &["get", "list", "watch", "patch"],
    ),
    ("argoproj.io", "rollouts/status", &["patch"]),
    ("argoproj.io", "rollouts/finalizers", &["update"]),
    ("argoproj.io", "analysisruns/finalizers", &["update"]),
    ("argoproj.io", "experiments/finalizers", &["update"]),
    (
        "argoproj.io",
        "experiments",
        &["list", "watch", "patch", "create", "delete"],
    ),
    (
        "argoproj.io",
        "analysisruns",
        &["list", "watch", "create", "patch", "delete"],
    ),
    (
        "argoproj.io",
        "analysistemplates",
        &["get", "list", "watch"],
    ),
    (
        "argoproj.io",
        "clusteranalysistemplates",
        &["get", "list", "watch"],
    ),
    (
        "apps",
        "replicasets",
        &["list", "watch", "create", "patch", "delete"],
    ),
    (
        "",
        "services",
        &["list", "watch", "create", "patch", "delete"],
    ),
    ("", "pods", &["list", "patch"]),
    ("", "pods/eviction", &["create"]),
    ("", "podtemplates", &["list", "watch", "create"]),
    ("apps", "deployments", &["list", "watch", "patch"]),
    ("", "secrets", &["get"]),
    (
        "batch",
        "jobs",
        &["get", "list", "watch", "create", "delete"],
    ),
    ("events.k8s.io", "events", &["create", "patch"]),
    (
        "networking.istio.io",
        "virtualservices",
        &["list", "watch", "patch"],
    ),
    (
        "networking.istio.io",
        "destinationrules",
        &["list", "watch", "patch"],
    ),
    (
        "networking.k8s.io",
        "ingresses",
        &["list", "watch", "create", "patch", "delete"],
    ),
    (
        "gateway.networking.k8s.io",
        "httproutes",
        &["list", "watch", "patch"],
    ),
    (
        "traefik.containo.us",
        "traefikservices",
        &["list", "watch", "patch"],
    ),
];

fn rule_set(role: &Value) -> BTreeSet<(String, String, Vec<String>)> {
    let rs = rules(role);
    for (g, res, verbs, names) in &rs {
        assert!(
            g != "*" && res != "*" && !verbs.iter().any(|v| v == "*"),
            "wildcard in {g}/{res} {verbs:?}"
        );
        assert!(
            names.is_empty(),
            "{res}: unexpected resourceNames {names:?}"
        );
    }
    rs.into_iter()
        .map(|(g, r, mut v, _)| {
            v.sort();
            (g, r, v)
        })
        .collect()
}

fn expected(skip: &[&str]) -> BTreeSet<(String, String, Vec<String>)> {
    EXPECTED_RULES
        .iter()
        .filter(|(_, r, _)| !skip.contains(r))
        .map(|(g, r, v)| {
            let mut v: Vec<String> = v.iter().map(|s| s.to_string()).collect();
            v.sort();
            (g.to_string(), r.to_string(), v)
        })
        .collect()
}

#[test]
fn rbac_is_exact_without_wildcards() {
    let r = render("rollouts", "rollouts", &json!({}));
    let cr = r.one("ClusterRole");
    assert_eq!(rule_set(&cr), expected(&[]));
    let crb = r.one("ClusterRoleBinding");
    assert_eq!(crb["roleRef"]["name"], cr["metadata"]["name"]);
    assert_eq!(
        crb["subjects"],
        json!([{"kind": "ServiceAccount", "name": "rollouts", "namespace": "rollouts"}])
    );
    // Secrets: read one by name, never listed or watched.
    assert!(
        rules(&cr)
            .iter()
            .filter(|(_, res, _, _)| res == "secrets")
            .all(|(_, _, v, _)| v == &["get"])
    );
    // Leader election: its own Role in the release namespace, on the one Lease.
    let le: Vec<Value> = r
        .of_kind("Role")
        .into_iter()
        .filter(|ro| {
            ro["metadata"]["name"]
                .as_str()
                .is_some_and(|n| n.ends_with("-leader-election"))
        })
        .collect();
    assert_eq!(le.len(), 1);
    assert_eq!(le[0]["metadata"]["namespace"], "rollouts");
    let lease_rules = rules(&le[0]);
    assert_eq!(
        lease_rules,
        vec![
            (
                "coordination.k8s.io".to_string(),
                "leases".to_string(),
                vec!["create".to_string()],
                vec![]
            ),
            (
                "coordination.k8s.io".to_string(),
                "leases".to_string(),
                vec!["get".to_string(), "update".to_string()],
                vec!["rollouts-controller-lock".to_string()]
            ),
        ]
    );

    // Namespaced mode: a Role (no cluster-scoped objects at all) without what a Role cannot
    // grant.
    let r = render("rollouts", "team-a", &json!({"namespaced": true}));
    assert!(r.of_kind("ClusterRole").is_empty());
    assert!(r.of_kind("ClusterRoleBinding").is_empty());
    let role = r
        .of_kind("Role")
        .into_iter()
        .find(|ro| ro["metadata"]["name"] == "rollouts")
        .expect("the controller's Role");
    assert_eq!(role["metadata"]["namespace"], "team-a");
    assert_eq!(rule_set(&role), expected(&["clusteranalysistemplates"]));
    for o in r.objects() {
        assert_eq!(
            o["metadata"]["namespace"], "team-a",
            "{} {} is not in the release namespace",
            o["kind"], o["metadata"]["name"]
        );
    }
}

#[test]
fn metrics_service_monitor_and_disruption_budget() {
    let r = render("rollouts", "rollouts", &json!({}));
    let svc = r.one("Service");
    assert_eq!(svc["spec"]["ports"][0]["name"], "metrics");
    assert_eq!(svc["spec"]["ports"][0]["port"], 8090);
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], "metrics");
    assert!(r.of_kind("ServiceMonitor").is_empty());
    let pdb = r.one("PodDisruptionBudget");
    assert_eq!(pdb["apiVersion"], "policy/v1");
    assert_eq!(pdb["spec"]["minAvailable"], 1);
    assert_eq!(
        pdb["spec"]["selector"]["matchLabels"],
        r.one("Deployment")["spec"]["selector"]["matchLabels"]
    );

    let r = render(
        "rollouts",
        "rollouts",
        &json!({"metrics": {"serviceMonitor": {"enabled": true, "interval": "15s"}},
                "podDisruptionBudget": {"apiVersion": "policy/v1beta1"}}),
    );
    let sm = r.one("ServiceMonitor");
    assert_eq!(sm["spec"]["endpoints"][0]["port"], "metrics");
    assert_eq!(sm["spec"]["endpoints"][0]["interval"], "15s");
    assert_eq!(
        sm["spec"]["selector"]["matchLabels"],
        svc["spec"]["selector"]
    );
    assert_eq!(r.one("PodDisruptionBudget")["apiVersion"], "policy/v1beta1");
}

const INSTALL_HEADER: &str = "\
# rollouts-controller without Helm: `helm template rollouts charts/rollouts -n rollouts`
# (default values), generated by tests/helm.rs (ROLLOUTS_UPDATE_INSTALL_MANIFEST=1 cargo test
# --test helm rewrites it). Install:
#   kubectl apply --server-side -f crds/
#   kubectl apply -f examples/install.yaml
# Set the image (built from the Dockerfile) first: it is `rollouts-controller:<version>`.
apiVersion: v1
kind: Namespace
metadata:
  name: rollouts
";

/// The install manifest (`examples/install.yaml`) as the chart renders it now.
fn install_manifest() -> String {
    let r = render("rollouts", "rollouts", &json!({}));
    format!("{INSTALL_HEADER}{}", r.text())
}

#[test]
fn install_manifest_is_the_rendered_chart() {
    let path = root().join("examples/install.yaml");
    let want = install_manifest();
    if std::env::var("ROLLOUTS_UPDATE_INSTALL_MANIFEST").as_deref() == Ok("1") {
        std::fs::write(&path, &want).expect("writing examples/install.yaml");
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "examples/install.yaml is not the rendered chart: \
         ROLLOUTS_UPDATE_INSTALL_MANIFEST=1 cargo test --test helm install_manifest"
    );
}

/// The dashboard's objects of a rendering (named `<fullname>-dashboard`).
fn dashboard_objects(r: &render::Rendered) -> Vec<Value> {
    r.objects()
        .into_iter()
        .filter(|o| {
            o["metadata"]["name"]
                .as_str()
                .is_some_and(|n| n.ends_with("-dashboard"))
        })
        .collect()
}

fn dashboard_one(r: &render::Rendered, kind: &str) -> Value {
    let all: Vec<Value> = dashboard_objects(r)
        .into_iter()
        .filter(|o| o["kind"] == kind)
        .collect();
    assert_eq!(all.len(), 1, "expected one dashboard {kind}");
    all.into_iter().next().unwrap_or_default()
}

/// The dashboard container's command line, parsed by `kubectl-rollouts` itself.
fn dashboard_cli(
    d: &Value,
    namespace: &str,
) -> (rollouts::cli::Cli, rollouts::cli::dashboard::Options) {
    let container = &d["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        container["command"],
        json!(["/usr/local/bin/kubectl-rollouts"])
    );
    let mut argv = vec!["kubectl-rollouts".to_string()];
    for a in container["args"].as_array().into_iter().flatten() {
        argv.push(
            a.as_str()
                .unwrap_or_default()
                .replace("$(POD_NAMESPACE)", namespace),
        );
    }
    let cli = <rollouts::cli::Cli as Parser>::try_parse_from(&argv)
        .unwrap_or_else(|e| panic!("{argv:?}: {e}"));
    let rollouts::cli::Command::Dashboard(opts) = &cli.command else {
        panic!("the dashboard does not run `dashboard`: {argv:?}")
    };
    let opts = opts.clone();
    (cli, opts)
}

#[test]
fn dashboard_is_off_by_default_then_read_only_behind_a_cluster_ip_service() {
    let r = render("rollouts", "rollouts", &json!({}));
    assert!(dashboard_objects(&r).is_empty(), "off by default");
    assert_lint_clean(&json!({"dashboard": {"enabled": true}}));
    assert_lint_clean(
        &json!({"dashboard": {"enabled": true, "readOnly": false}, "namespaced": true}),
    );

    let r = render(
        "rollouts",
        "rollouts",
        &json!({"dashboard": {"enabled": true}}),
    );
    let svc = dashboard_one(&r, "Service");
    assert_eq!(svc["spec"]["type"], "ClusterIP");
    assert_eq!(svc["spec"]["ports"][0]["port"], 80);
    let d = dashboard_one(&r, "Deployment");
    let (_, opts) = dashboard_cli(&d, "rollouts");
    assert!(opts.read_only, "read-only by default");
    assert!(opts.all_namespaces);
    assert_eq!(opts.port, 3100);
    assert_eq!(opts.root_path, "rollouts");
    assert_eq!(opts.address.to_string(), "0.0.0.0");
    let pod = &d["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "rollouts-dashboard");
    assert_eq!(
        pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"],
        true
    );
    assert_eq!(
        pod["containers"][0]["readinessProbe"]["httpGet"]["path"],
        "/rollouts/api/v1/info"
    );
    // Selects its own pods only, not the controller's.
    assert_eq!(
        svc["spec"]["selector"]["app.kubernetes.io/name"],
        "rollouts-dashboard"
    );
    // Read-only: reads only, no Secrets, nothing written.
    let cr = dashboard_one(&r, "ClusterRole");
    let rules = rule_set(&cr);
    let verbs = |res: &str| -> Vec<String> {
        rules
            .iter()
            .filter(|(_, r, _)| r == res)
            .flat_map(|(_, _, v)| v.clone())
            .collect()
    };
    assert_eq!(verbs("rollouts"), ["get", "list", "watch"]);
    assert_eq!(verbs("pods"), ["list", "watch"]);
    assert!(verbs("rollouts/status").is_empty());
    assert!(verbs("secrets").is_empty());
    for (_, _, v) in &rules {
        assert!(
            v.iter()
                .all(|v| ["get", "list", "watch"].contains(&v.as_str())),
            "a read-only dashboard writes nothing: {rules:?}"
        );
    }
    let crb = dashboard_one(&r, "ClusterRoleBinding");
    assert_eq!(
        crb["subjects"],
        json!([{"kind": "ServiceAccount", "name": "rollouts-dashboard", "namespace": "rollouts"}])
    );

    // Actions on, namespaced: a Role in the release namespace, and what the actions write.
    let r = render(
        "rel",
        "team",
        &json!({"namespaced": true, "dashboard": {"enabled": true, "readOnly": false, "rootPath": "/"}}),
    );
    let d = dashboard_one(&r, "Deployment");
    let (cli, opts) = dashboard_cli(&d, "team");
    assert!(!opts.read_only && !opts.all_namespaces);
    assert_eq!(cli.global.namespace.as_deref(), Some("team"));
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["path"],
        "/api/v1/info"
    );
    assert!(
        dashboard_objects(&r)
            .iter()
            .all(|o| o["kind"] != "ClusterRole")
    );
    let role = dashboard_one(&r, "Role");
    assert_eq!(role["metadata"]["namespace"], "team");
    let rules = rule_set(&role);
    assert!(rules.contains(&(
        "argoproj.io".into(),
        "rollouts/status".into(),
        vec!["patch".into()]
    )));
    assert!(rules.contains(&(
        "argoproj.io".into(),
        "rollouts".into(),
        vec![
            "get".into(),
            "list".into(),
            "patch".into(),
            "update".into(),
            "watch".into()
        ]
    )));

    for bad in [
        json!({"dashboard": {"port": 0}}),
        json!({"dashboard": {"readOnly": "yes"}}),
        json!({"dashboard": {"rootPath": "a b"}}),
        json!({"dashboard": {"service": {"type": "LoadBalancer"}}}),
    ] {
        assert!(
            schema_error(&bad).is_some(),
            "values.schema.json accepted {bad}"
        );
    }
}

/// `notifications.*` render upstream's ConfigMap and Secret, a Role reading only those two
/// objects, and with `selfService` the flag and the same rules cluster-wide.
#[test]
fn notifications_values_render_the_configmap_secret_and_rbac() {
    let values = json!({"notifications": {
        "secret": {"create": true, "items": {"slack-token": "xoxb-1"}},
        "notifiers": {"service.slack": "token: $slack-token\n"},
        "templates": {"template.done": "message: done {{.rollout.metadata.name}}\n"},
        "triggers": {"trigger.on-rollout-completed": "- send: [done]\n"},
        "extra": {"defaultTriggers": "- on-rollout-completed\n"},
    }});
    assert_lint_clean(&values);
    let r = render("rel", "ops", &values);
    let cm = r
        .of_kind("ConfigMap")
        .into_iter()
        .find(|c| c["metadata"]["name"] == "argo-rollouts-notification-configmap")
        .expect("the notification ConfigMap");
    let data: std::collections::BTreeMap<String, String> =
        serde_json::from_value(cm["data"].clone()).unwrap();
    let settings = rollouts::notify::config::Settings::parse(
        &data,
        &[("slack-token".to_string(), "xoxb-1".to_string())].into(),
    );
    assert_eq!(settings.errors, vec![]);
    assert_eq!(settings.services["slack"].options["token"], "xoxb-1");
    assert_eq!(settings.default_triggers, vec!["on-rollout-completed"]);
    assert!(settings.templates.contains_key("done"));
    let secret = r.one("Secret");
    assert_eq!(
        secret["metadata"]["name"],
        "argo-rollouts-notification-secret"
    );
    assert_eq!(secret["stringData"]["slack-token"], "xoxb-1");
    let role = r
        .of_kind("Role")
        .into_iter()
        .find(|ro| ro["metadata"]["name"] == "rel-rollouts-notifications")
        .expect("the notifications Role");
    assert_eq!(role["metadata"]["namespace"], "ops");
    let rs = rules(&role);
    assert_eq!(rs.len(), 2);
    for (g, res, verbs, names) in &rs {
        assert_eq!(g, "");
        assert_eq!(verbs, &["get", "list", "watch"]);
        let want = if res == "secrets" {
            "argo-rollouts-notification-secret"
        } else {
            "argo-rollouts-notification-configmap"
        };
        assert_eq!(names, &[want.to_string()], "{res}");
    }
    let opts = parsed_args(&r.one("Deployment"), "ops");
    assert_eq!(opts.notifications.namespace, "ops");
    assert!(!opts.notifications.self_service);

    // Defaults: an empty ConfigMap, no Secret.
    let r = render("rel", "ops", &json!({}));
    assert!(r.of_kind("Secret").is_empty());
    assert_eq!(r.of_kind("ConfigMap").len(), 1);

    // Self-service: the flag, and the rules in a ClusterRole.
    let r = render(
        "rel",
        "ops",
        &json!({"notifications": {"selfService": true}}),
    );
    assert!(
        parsed_args(&r.one("Deployment"), "ops")
            .notifications
            .self_service
    );
    let cr = r
        .of_kind("ClusterRole")
        .into_iter()
        .find(|c| c["metadata"]["name"] == "rel-rollouts-notifications")
        .expect("the notifications ClusterRole");
    assert_eq!(rules(&cr).len(), 2);
    for bad in [
        json!({"notifications": {"notifiers": {"slack": "token: x"}}}),
        json!({"notifications": {"selfService": "yes"}}),
    ] {
        assert!(schema_error(&bad).is_some(), "{bad} should be refused");
    }
}
