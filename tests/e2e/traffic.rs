//! Traffic routing against the real API server, with the minimal Istio CRDs of `tests/crds`:
//! the exact weights written at each step, the Services' hashes, abort restoring 0/100 before
//! anything is scaled down, and promotion ending at 0/100 on the new stable.

use crate::common::*;
use kube::api::{ApiResource, DynamicObject};
use kube::core::GroupVersionKind;
use serde_json::Value;
use std::path::Path;
use std::time::Duration;
use tokio::sync::OnceCell;

static ISTIO_CRDS: OnceCell<()> = OnceCell::const_new();

async fn istio_crds() {
    ISTIO_CRDS
        .get_or_init(|| async {
            let client = testkit::client().await;
            let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/crds");
            testkit::install_crds(&client, &dir)
                .await
                .expect("installing tests/crds");
        })
        .await;
}

async fn vs(ns: &TestNs, name: &str) -> Value {
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("networking.istio.io", "v1alpha3", "VirtualService"),
        "virtualservices",
    );
    let api: kube::Api<DynamicObject> =
        kube::Api::namespaced_with(ns.client.clone(), &ns.name, &ar);
    serde_json::to_value(api.get(name).await.expect("reading the VirtualService")).unwrap()
}

/// (canary, stable) weights of the named route, by destination host.
async fn weights(
    ns: &TestNs,
    vs_name: &str,
    route: &str,
    canary: &str,
    stable: &str,
) -> (i64, i64) {
    let v = vs(ns, vs_name).await;
    let http = v["spec"]["http"].as_array().cloned().unwrap_or_default();
    let r = http
        .iter()
        .find(|r| r["name"] == route)
        .cloned()
        .unwrap_or_default();
    let of = |host: &str| {
        r["route"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|d| d["destination"]["host"] == host)
            .and_then(|d| d["weight"].as_i64())
            .unwrap_or(0)
    };
    (of(canary), of(stable))
}

async fn svc_hash(ns: &TestNs, name: &str) -> String {
    ns.api::<k8s_openapi::api::core::v1::Service>()
        .get(name)
        .await
        .unwrap()
        .spec
        .and_then(|s| s.selector)
        .and_then(|s| s.get("rollouts-pod-template-hash").cloned())
        .unwrap_or_default()
}

const SEEDS_ISTIO: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: demo-stable}
spec:
  selector: {app: demo}
  ports: [{name: http, port: 80, targetPort: 8080, protocol: TCP}]
---
apiVersion: v1
kind: Service
metadata: {name: demo-canary}
spec:
  selector: {app: demo}
  ports: [{name: http, port: 80, targetPort: 8080, protocol: TCP}]
---
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata: {name: demo}
spec:
  hosts: [demo]
  http:
  - name: primary
    route:
    - destination: {host: demo-stable}
      weight: 100
    - destination: {host: demo-canary}
      weight: 0
---
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: demo}
spec:
  replicas: 5
  selector: {matchLabels: {app: demo}}
  template:
    metadata: {labels: {app: demo}}
    spec:
      containers: [{name: demo, image: "demo:v1", ports: [{containerPort: 8080, protocol: TCP}]}]
  strategy:
    canary:
      stableService: demo-stable
      canaryService: demo-canary
      abortScaleDownDelaySeconds: 3
      scaleDownDelaySeconds: 3
      trafficRouting:
        istio:
          virtualService: {name: demo, routes: [primary]}
      steps:
      - setWeight: 5
      - pause: {}
      - setWeight: 50
      - pause: {duration: 2}
"#;

/// The seeds' Istio layout (two Services and one VirtualService route): 1% precision and
/// pods decoupled from traffic, weights at each step, promotion to 0/100 on the new stable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn istio_host_split_weights_per_step() {
    istio_crds().await;
    let (ns, ctl) = setup("istio-steps").await;
    ns.apply(SEEDS_ISTIO).await;
    let ro = wait_rollout(&ns, "demo", "Healthy", Duration::from_secs(60), is_healthy).await;
    let v1 = ro.status.clone().unwrap().stable_rs.unwrap();
    assert_eq!(
        weights(&ns, "demo", "primary", "demo-canary", "demo-stable").await,
        (0, 100)
    );
    assert_eq!(svc_hash(&ns, "demo-stable").await, v1);

    set_image(&ns, "demo", "demo:v2").await;
    let ro = wait_rollout(
        &ns,
        "demo",
        "paused at 5%",
        Duration::from_secs(60),
        |ro, _| phase(ro).0 == "Paused",
    )
    .await;
    let v2 = ro.status.clone().unwrap().current_pod_hash.unwrap();
    assert_eq!(
        weights(&ns, "demo", "primary", "demo-canary", "demo-stable").await,
        (5, 95)
    );
    assert_eq!(svc_hash(&ns, "demo-canary").await, v2);
    assert_eq!(svc_hash(&ns, "demo-stable").await, v1);
    let rss = replica_sets(&ns, &ro).await;
    let by = |h: &str| {
        rss.iter()
            .find(|rs| hash_of(rs) == h)
            .map_or(-1, spec_replicas)
    };
    assert_eq!(
        (by(&v2), by(&v1)),
        (1, 5),
        "5% → 1 canary pod; stable untouched"
    );
    let w = ro
        .status
        .as_ref()
        .unwrap()
        .canary
        .as_ref()
        .unwrap()
        .weights
        .clone()
        .unwrap();
    assert_eq!(w.canary.unwrap().weight, Some(5));

    promote(&ns, "demo").await;
    wait_rollout(&ns, "demo", "50% step", Duration::from_secs(60), |ro, _| {
        phase(ro).2 == Some(3)
    })
    .await;
    assert_eq!(
        weights(&ns, "demo", "primary", "demo-canary", "demo-stable").await,
        (50, 50)
    );
    let ro = wait_rollout(&ns, "demo", "promoted", Duration::from_secs(60), |ro, _| {
        ro.status.as_ref().and_then(|s| s.stable_rs.as_deref()) == Some(v2.as_str())
    })
    .await;
    ns.wait_for(
        "0/100 on the new stable",
        Duration::from_secs(30),
        || async {
            let ok = weights(&ns, "demo", "primary", "demo-canary", "demo-stable").await
                == (0, 100)
                && svc_hash(&ns, "demo-stable").await == v2;
            Ok(ok.then_some(()))
        },
    )
    .await;
    wait_rollout(
        &ns,
        "demo",
        "old stable scaled down after the delay, its pods gone, the status caught up",
        Duration::from_secs(60),
        |ro, rss| {
            rss.iter().find(|rs| hash_of(rs) == v1).is_some_and(|rs| {
                spec_replicas(rs) == 0 && rs.status.as_ref().is_some_and(|s| s.replicas == 0)
            }) && ro.status.as_ref().and_then(|s| s.replicas) == ro.spec.replicas
        },
    )
    .await;
    let _ = ro;
    // Steady state: nothing written.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = ctl.writes.total();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(ctl.writes.total(), before);
}

/// Abort puts all traffic back on stable before anything scales down; the canary Service
/// points back at stable; the canary pods go after abortScaleDownDelaySeconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn istio_abort_restores_stable_before_scale_down() {
    istio_crds().await;
    let (ns, _ctl) = setup("istio-abort").await;
    ns.apply(SEEDS_ISTIO).await;
    let ro = wait_rollout(&ns, "demo", "Healthy", Duration::from_secs(60), is_healthy).await;
    let v1 = ro.status.clone().unwrap().stable_rs.unwrap();
    set_image(&ns, "demo", "demo:v2").await;
    let ro = wait_rollout(&ns, "demo", "paused", Duration::from_secs(60), |ro, _| {
        phase(ro).0 == "Paused"
    })
    .await;
    let v2 = ro.status.clone().unwrap().current_pod_hash.unwrap();
    abort(&ns, "demo").await;
    // Right after the abort the weight is back at 0 while the canary pod still runs.
    ns.wait_for(
        "0/100 with the canary still up",
        Duration::from_secs(30),
        || async {
            let w = weights(&ns, "demo", "primary", "demo-canary", "demo-stable").await;
            let ro = get_rollout(&ns, "demo").await;
            let rss = replica_sets(&ns, &ro).await;
            let canary_up = rss
                .iter()
                .find(|rs| hash_of(rs) == v2)
                .is_some_and(|rs| spec_replicas(rs) == 1);
            Ok((w == (0, 100) && canary_up).then_some(()))
        },
    )
    .await;
    wait_rollout(
        &ns,
        "demo",
        "canary scaled down after the abort delay",
        Duration::from_secs(60),
        |ro, rss| {
            phase(ro).0 == "Degraded"
                && rss
                    .iter()
                    .find(|rs| hash_of(rs) == v2)
                    .is_some_and(|rs| spec_replicas(rs) == 0)
        },
    )
    .await;
    assert_eq!(
        svc_hash(&ns, "demo-canary").await,
        v1,
        "canary Service back on stable"
    );
    assert_eq!(
        weights(&ns, "demo", "primary", "demo-canary", "demo-stable").await,
        (0, 100)
    );
}

/// A missing VirtualService is InvalidSpec naming it, and nothing is created until it exists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn istio_missing_virtual_service_blocks_and_recovers() {
    istio_crds().await;
    let (ns, _ctl) = setup("istio-missing").await;
    let without_vs: String = SEEDS_ISTIO
        .split("\n---\n")
        .filter(|d| !d.contains("kind: VirtualService"))
        .collect::<Vec<_>>()
        .join("\n---\n");
    ns.apply(&without_vs).await;
    let ro = wait_rollout(
        &ns,
        "demo",
        "InvalidSpec",
        Duration::from_secs(30),
        |ro, _| phase(ro).0 == "Degraded" && phase(ro).1.contains("VirtualService"),
    )
    .await;
    assert!(replica_sets(&ns, &ro).await.is_empty());
    ns.apply(SEEDS_ISTIO).await;
    wait_rollout(
        &ns,
        "demo",
        "Healthy once the VirtualService exists",
        Duration::from_secs(60),
        is_healthy,
    )
    .await;
}

/// Upstream's e2e manifest `test/e2e/istio/istio-host-split.yaml` runs through an update.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_istio_host_split_example() {
    let Some(manifest) = compat_file("test/e2e/istio/istio-host-split.yaml") else {
        return;
    };
    istio_crds().await;
    let (ns, _ctl) = setup("istio-upstream").await;
    ns.apply(&manifest).await;
    wait_rollout(
        &ns,
        "istio-host-split",
        "Healthy",
        Duration::from_secs(60),
        is_healthy,
    )
    .await;
    set_image(&ns, "istio-host-split", "nginx:1.20-alpine").await;
    wait_rollout(
        &ns,
        "istio-host-split",
        "paused at 10%",
        Duration::from_secs(60),
        |ro, _| phase(ro).0 == "Paused",
    )
    .await;
    assert_eq!(
        weights(
            &ns,
            "istio-host-split-vsvc",
            "primary",
            "istio-host-split-canary",
            "istio-host-split-stable"
        )
        .await,
        (10, 90)
    );
    promote(&ns, "istio-host-split").await;
    wait_rollout(
        &ns,
        "istio-host-split",
        "Healthy on the new version",
        Duration::from_secs(60),
        |ro, rss| {
            is_healthy(ro, rss)
                || (phase(ro).0 == "Healthy"
                    && ro.status.as_ref().unwrap().stable_rs
                        == ro.status.as_ref().unwrap().current_pod_hash)
        },
    )
    .await;
    // The weights go back to the stable Service on the reconcile that sees the promotion
    // complete (as upstream), which may follow the Healthy status write.
    ns.wait_for(
        "VirtualService back to 0/100",
        Duration::from_secs(20),
        || async {
            let w = weights(
                &ns,
                "istio-host-split-vsvc",
                "primary",
                "istio-host-split-canary",
                "istio-host-split-stable",
            )
            .await;
            Ok((w == (0, 100)).then_some(()))
        },
    )
    .await;
}

const NGINX: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: web-stable}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080, protocol: TCP}]
---
apiVersion: v1
kind: Service
metadata: {name: web-canary}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080, protocol: TCP}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: web
  annotations: {kubernetes.io/ingress.class: nginx}
spec:
  rules:
  - host: web.example
    http:
      paths:
      - path: /
        pathType: Prefix
        backend: {service: {name: web-stable, port: {name: http}}}
---
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: "web:v1", ports: [{containerPort: 8080, protocol: TCP}]}]
  strategy:
    canary:
      stableService: web-stable
      canaryService: web-canary
      scaleDownDelaySeconds: 2
      trafficRouting:
        nginx: {stableIngress: web}
      steps:
      - setWeight: 30
      - pause: {}
"#;

/// NGINX: a canary Ingress cloned from the stable one carries the weight, and goes away at
/// the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_canary_ingress_weight_and_cleanup() {
    use k8s_openapi::api::networking::v1::Ingress;
    let (ns, _ctl) = setup("nginx").await;
    ns.apply(NGINX).await;
    wait_rollout(&ns, "web", "Healthy", Duration::from_secs(60), is_healthy).await;
    set_image(&ns, "web", "web:v2").await;
    wait_rollout(
        &ns,
        "web",
        "paused at 30%",
        Duration::from_secs(60),
        |ro, _| phase(ro).0 == "Paused",
    )
    .await;
    let canary = ns
        .wait_for(
            "the canary Ingress at weight 30",
            Duration::from_secs(30),
            || async {
                let ing = ns.api::<Ingress>().get_opt("web-web-canary").await?;
                Ok(ing.filter(|i| {
                    let a = i.metadata.annotations.clone().unwrap_or_default();
                    a.get("nginx.ingress.kubernetes.io/canary")
                        .map(String::as_str)
                        == Some("true")
                        && a.get("nginx.ingress.kubernetes.io/canary-weight")
                            .map(String::as_str)
                            == Some("30")
                }))
            },
        )
        .await;
    let backend = serde_json::to_value(&canary.spec).unwrap();
    assert_eq!(
        backend["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"],
        "web-canary"
    );
    promote(&ns, "web").await;
    wait_rollout(
        &ns,
        "web",
        "Healthy on v2",
        Duration::from_secs(60),
        |ro, _| {
            phase(ro).0 == "Healthy"
                && ro.status.as_ref().unwrap().stable_rs
                    == ro.status.as_ref().unwrap().current_pod_hash
        },
    )
    .await;
    ns.wait_for(
        "the canary Ingress removed",
        Duration::from_secs(30),
        || async {
            Ok(ns
                .api::<Ingress>()
                .get_opt("web-web-canary")
                .await?
                .is_none()
                .then_some(()))
        },
    )
    .await;
}

/// NGINX with `maxTrafficWeight: 1000` (upstream v1.9 arithmetic): `setWeight: 500` is half the
/// traffic, so 10 replicas put 5 pods on the canary (not 50), the canary Ingress carries 500 out
/// of a total of 1000, and the recorded weights add up to 1000.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_max_traffic_weight_sizes_the_canary() {
    use k8s_openapi::api::networking::v1::Ingress;
    let manifest = NGINX
        .replace("replicas: 2", "replicas: 10")
        .replace(
            "        nginx: {stableIngress: web}",
            "        maxTrafficWeight: 1000\n        nginx: {stableIngress: web}",
        )
        .replace("      - setWeight: 30", "      - setWeight: 500");
    assert!(manifest.contains("maxTrafficWeight: 1000") && manifest.contains("setWeight: 500"));
    let (ns, _ctl) = setup("nginx-max").await;
    ns.apply(&manifest).await;
    wait_rollout(&ns, "web", "Healthy", Duration::from_secs(90), is_healthy).await;
    set_image(&ns, "web", "web:v2").await;
    let ro = wait_rollout(
        &ns,
        "web",
        "paused at 500 of 1000 with 5 canary pods",
        Duration::from_secs(90),
        |ro, rss| {
            let new = ro.status.as_ref().and_then(|s| s.current_pod_hash.clone());
            phase(ro).0 == "Paused"
                && rss
                    .iter()
                    .find(|rs| Some(hash_of(rs)) == new)
                    .is_some_and(|rs| spec_replicas(rs) == 5 && available(rs) == 5)
        },
    )
    .await;
    let rss = replica_sets(&ns, &ro).await;
    let counts: Vec<i32> = rss.iter().map(spec_replicas).collect();
    assert_eq!(
        counts,
        vec![10, 5],
        "stable stays at 10, canary 500/1000 of 10"
    );
    let weights = ro.status.clone().unwrap().canary.unwrap().weights.unwrap();
    assert_eq!(weights.canary.unwrap().weight, Some(500));
    assert_eq!(weights.stable.unwrap().weight, Some(500));
    let canary = ns
        .wait_for(
            "the canary Ingress at 500 of 1000",
            Duration::from_secs(30),
            || async {
                let ing = ns.api::<Ingress>().get_opt("web-web-canary").await?;
                Ok(ing.filter(|i| {
                    let a = i.metadata.annotations.clone().unwrap_or_default();
                    let get = |k: &str| a.get(k).map(String::as_str);
                    get("nginx.ingress.kubernetes.io/canary-weight") == Some("500")
                        && get("nginx.ingress.kubernetes.io/canary-weight-total") == Some("1000")
                }))
            },
        )
        .await;
    assert!(canary.metadata.annotations.is_some());
    promote(&ns, "web").await;
    wait_rollout(
        &ns,
        "web",
        "Healthy on v2",
        Duration::from_secs(90),
        is_healthy,
    )
    .await;
}

const GATEWAY: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: gw-stable}
spec:
  selector: {app: gw}
  ports: [{name: http, port: 80, protocol: TCP}]
---
apiVersion: v1
kind: Service
metadata: {name: gw-canary}
spec:
  selector: {app: gw}
  ports: [{name: http, port: 80, protocol: TCP}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: gw}
spec:
  parentRefs: [{name: gateway}]
  rules:
  - backendRefs:
    - {name: gw-stable, port: 80, weight: 100}
    - {name: gw-canary, port: 80, weight: 0}
---
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: gw}
spec:
  replicas: 2
  selector: {matchLabels: {app: gw}}
  template:
    metadata: {labels: {app: gw}}
    spec:
      containers: [{name: gw, image: "gw:v1"}]
  strategy:
    canary:
      stableService: gw-stable
      canaryService: gw-canary
      trafficRouting:
        plugins:
          argoproj-labs/gatewayAPI: {httpRoute: gw}
      steps:
      - setWeight: 40
      - pause: {}
"#;

/// Gateway API through the upstream plugin's configuration: the HTTPRoute's backendRefs weights.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_api_http_route_weights() {
    istio_crds().await;
    let (ns, _ctl) = setup("gateway").await;
    ns.apply(GATEWAY).await;
    wait_rollout(&ns, "gw", "Healthy", Duration::from_secs(60), is_healthy).await;
    set_image(&ns, "gw", "gw:v2").await;
    wait_rollout(
        &ns,
        "gw",
        "paused at 40%",
        Duration::from_secs(60),
        |ro, _| phase(ro).0 == "Paused",
    )
    .await;
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", "HTTPRoute"),
        "httproutes",
    );
    let api: kube::Api<DynamicObject> =
        kube::Api::namespaced_with(ns.client.clone(), &ns.name, &ar);
    let weights = |o: &DynamicObject| {
        let refs = o.data["spec"]["rules"][0]["backendRefs"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let w = |n: &str| {
            refs.iter()
                .find(|r| r["name"] == n)
                .and_then(|r| r["weight"].as_i64())
                .unwrap_or(-1)
        };
        (w("gw-canary"), w("gw-stable"))
    };
    ns.wait_for("HTTPRoute at 40/60", Duration::from_secs(30), || async {
        Ok((weights(&api.get("gw").await?) == (40, 60)).then_some(()))
    })
    .await;
    promote(&ns, "gw").await;
    ns.wait_for(
        "HTTPRoute back at 0/100",
        Duration::from_secs(60),
        || async {
            let ro = get_rollout(&ns, "gw").await;
            let done = ro
                .status
                .as_ref()
                .is_some_and(|s| s.stable_rs == s.current_pod_hash);
            Ok((done && weights(&api.get("gw").await?) == (0, 100)).then_some(()))
        },
    )
    .await;
}

/// One of upstream's Istio e2e manifests, less its Istio Gateway (not among the test CRDs, and
/// not used by the controller); `None` where the corpus is absent.
fn istio_manifest_without_gateway(relative: &str) -> Option<String> {
    let text = compat_file(relative)?;
    Some(
        text.split("\n---\n")
            .filter(|d| !d.contains("kind: Gateway"))
            .collect::<Vec<_>>()
            .join("\n---\n"),
    )
}

/// The objects of an Istio host-split manifest with managed routes.
struct Routed {
    rollout: &'static str,
    vs: &'static str,
    canary: &'static str,
    stable: &'static str,
}

const UPSTREAM_ROUTED: Routed = Routed {
    rollout: "rollouts-demo",
    vs: "rollouts-demo-vsvc",
    canary: "canary-service",
    stable: "stable-service",
};

const OWN_ROUTED: Routed = Routed {
    rollout: "routed",
    vs: "routed",
    canary: "routed-canary",
    stable: "routed-stable",
};

/// The project's own host-split manifest with managed routes: two Services, a VirtualService
/// whose `primary` route the Rollout weights, and `STEPS` (the `managedRoutes` and steps).
const ROUTED: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: routed-canary}
spec:
  selector: {app: routed}
  ports: [{name: http, port: 80, targetPort: 8080, protocol: TCP}]
---
apiVersion: v1
kind: Service
metadata: {name: routed-stable}
spec:
  selector: {app: routed}
  ports: [{name: http, port: 80, targetPort: 8080, protocol: TCP}]
---
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata: {name: routed}
spec:
  hosts: [routed.example]
  http:
  - name: primary
    route:
    - destination: {host: routed-stable}
      weight: 100
    - destination: {host: routed-canary}
      weight: 0
---
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: routed}
spec:
  replicas: 3
  selector: {matchLabels: {app: routed}}
  template:
    metadata: {labels: {app: routed}}
    spec:
      containers: [{name: app, image: "routed:v1", ports: [{name: http, containerPort: 8080, protocol: TCP}]}]
  strategy:
    canary:
      canaryService: routed-canary
      stableService: routed-stable
      trafficRouting:
        istio:
          virtualService: {name: routed, routes: [primary]}
STEPS
"#;

/// The project's own header-routing manifest: the same sequence as upstream's e2e test (a
/// header route added, changed by a later step, removed by a step without `match`).
const OWN_HEADER_STEPS: &str = r#"        managedRoutes: [{name: by-agent}]
      steps:
      - setWeight: 20
      - setHeaderRoute:
          name: by-agent
          match: [{headerName: agent, headerValue: {regex: "firefox(.*)"}}]
      - pause: {}
      - setHeaderRoute:
          name: by-agent
          match: [{headerName: agent, headerValue: {regex: "chrome(.*)"}}]
      - pause: {}
      - setWeight: 40
      - setHeaderRoute: {name: by-agent}
      - pause: {}"#;

/// Header routes on the project's own manifest (runs on a clean clone).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn istio_header_route_added_changed_removed() {
    let manifest = ROUTED.replace("STEPS", OWN_HEADER_STEPS);
    header_route_added_changed_removed("istio-header", &manifest, &OWN_ROUTED, "by-agent").await;
}

/// Header routes on upstream's header-routing e2e manifest (the compatibility corpus; skipped
/// with a notice where it is absent).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_istio_header_route_example() {
    let Some(manifest) =
        istio_manifest_without_gateway("test/e2e/header-routing/istio-hr-host.yaml")
    else {
        return;
    };
    header_route_added_changed_removed(
        "istio-header-up",
        &manifest,
        &UPSTREAM_ROUTED,
        "set-header-1",
    )
    .await;
}

/// A managed header route `route` is added at the top of the VirtualService, changed by a later
/// step, removed by a step without `match`, and all managed routes are gone at the end.
async fn header_route_added_changed_removed(test: &str, manifest: &str, n: &Routed, route: &str) {
    istio_crds().await;
    let (ns, _ctl) = setup(test).await;
    ns.apply(manifest).await;
    let name = n.rollout;
    wait_rollout(&ns, name, "Healthy", Duration::from_secs(60), is_healthy).await;
    let first_route = |v: &Value| v["spec"]["http"][0].clone();
    set_image(&ns, name, "nginx:1.20-alpine").await;
    wait_rollout(
        &ns,
        name,
        "paused at step 2",
        Duration::from_secs(60),
        |ro, _| phase(ro).0 == "Paused" && phase(ro).2 == Some(2),
    )
    .await;
    let v = vs(&ns, n.vs).await;
    let r = first_route(&v);
    assert_eq!(r["name"], route, "{v:#}");
    assert_eq!(
        r["match"][0]["headers"]["agent"]["regex"], "firefox(.*)",
        "{v:#}"
    );
    assert_eq!(r["route"][0]["destination"]["host"], n.canary);
    assert_eq!(
        weights(&ns, n.vs, "primary", n.canary, n.stable).await,
        (20, 80)
    );

    promote(&ns, name).await;
    wait_rollout(
        &ns,
        name,
        "paused at step 4",
        Duration::from_secs(60),
        |ro, _| phase(ro).0 == "Paused" && phase(ro).2 == Some(4),
    )
    .await;
    let v = vs(&ns, n.vs).await;
    assert_eq!(first_route(&v)["name"], route, "{v:#}");
    assert_eq!(
        first_route(&v)["match"][0]["headers"]["agent"]["regex"],
        "chrome(.*)",
        "{v:#}"
    );

    promote(&ns, name).await;
    wait_rollout(
        &ns,
        name,
        "paused at step 7",
        Duration::from_secs(60),
        |ro, _| phase(ro).0 == "Paused" && phase(ro).2 == Some(7),
    )
    .await;
    let v = vs(&ns, n.vs).await;
    assert!(
        v["spec"]["http"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["name"] != route),
        "route not removed: {v:#}"
    );
    assert_eq!(
        weights(&ns, n.vs, "primary", n.canary, n.stable).await,
        (40, 60)
    );

    promote(&ns, name).await;
    wait_rollout(&ns, name, "promoted", Duration::from_secs(60), |ro, _| {
        let st = ro.status.clone().unwrap_or_default();
        st.stable_rs.is_some() && st.stable_rs == st.current_pod_hash
    })
    .await;
    ns.wait_for("0/100 and one route", Duration::from_secs(30), || async {
        let v = vs(&ns, n.vs).await;
        let count = v["spec"]["http"].as_array().map_or(0, Vec::len);
        let w = weights(&ns, n.vs, "primary", n.canary, n.stable).await;
        Ok((count == 1 && w == (0, 100)).then_some(()))
    })
    .await;
}

/// The project's own mirror-route manifest: two managed mirror routes (the second only for
/// GETs, at 80%), the first changed then removed, as in upstream's e2e test.
const OWN_MIRROR_STEPS: &str = r#"        managedRoutes: [{name: mirror-all}, {name: mirror-gets}]
      steps:
      - setWeight: 20
      - setMirrorRoute:
          name: mirror-all
          percentage: 100
          match: [{path: {prefix: /}}]
      - setMirrorRoute:
          name: mirror-gets
          percentage: 80
          match: [{path: {prefix: /}, method: {exact: GET}}]
      - pause: {}
      - setMirrorRoute:
          name: mirror-all
          percentage: 100
          match: [{path: {prefix: /rewrite}}]
      - pause: {}
      - setWeight: 40
      - setMirrorRoute: {name: mirror-all}
      - pause: {}"#;

/// Mirror routes on the project's own manifest (runs on a clean clone).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn istio_mirror_routes_added_changed_removed() {
    let manifest = ROUTED.replace("STEPS", OWN_MIRROR_STEPS);
    mirror_routes_added_changed_removed(
        "istio-mirror",
        &manifest,
        &OWN_ROUTED,
        ["mirror-all", "mirror-gets"],
    )
    .await;
}

/// Mirror routes on upstream's mirror-route e2e manifest (the compatibility corpus; skipped
/// with a notice where it is absent).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_istio_mirror_route_example() {
    let Some(manifest) =
        istio_manifest_without_gateway("test/e2e/mirror-route/istio-mirror-host.yaml")
    else {
        return;
    };
    mirror_routes_added_changed_removed(
        "istio-mirror-up",
        &manifest,
        &UPSTREAM_ROUTED,
        ["mirror-route-1", "mirror-route-2"],
    )
    .await;
}

/// Two managed mirror routes in `managedRoutes` order at the top, the first changed then
/// removed, all gone at the end.
async fn mirror_routes_added_changed_removed(
    test: &str,
    manifest: &str,
    n: &Routed,
    [first, second]: [&str; 2],
) {
    istio_crds().await;
    let (ns, _ctl) = setup(test).await;
    ns.apply(manifest).await;
    let name = n.rollout;
    let route_names = |v: &Value| -> Vec<String> {
        v["spec"]["http"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    wait_rollout(&ns, name, "Healthy", Duration::from_secs(60), is_healthy).await;
    set_image(&ns, name, "nginx:1.20-alpine").await;
    wait_rollout(
        &ns,
        name,
        "paused at step 3",
        Duration::from_secs(60),
        |ro, _| phase(ro).0 == "Paused" && phase(ro).2 == Some(3),
    )
    .await;
    let v = vs(&ns, n.vs).await;
    assert_eq!(route_names(&v), [first, second, "primary"], "{v:#}");
    assert_eq!(v["spec"]["http"][0]["mirror"]["host"], n.canary, "{v:#}");
    assert_eq!(
        v["spec"]["http"][1]["mirrorPercentage"]["value"], 80.0,
        "{v:#}"
    );
    assert_eq!(
        v["spec"]["http"][1]["match"][0]["method"]["exact"], "GET",
        "{v:#}"
    );
    promote(&ns, name).await;
    wait_rollout(
        &ns,
        name,
        "paused at step 5",
        Duration::from_secs(60),
        |ro, _| phase(ro).0 == "Paused" && phase(ro).2 == Some(5),
    )
    .await;
    let v = vs(&ns, n.vs).await;
    assert_eq!(v["spec"]["http"][0]["name"], first, "{v:#}");
    assert_eq!(
        v["spec"]["http"][0]["match"][0]["uri"]["prefix"], "/rewrite",
        "{v:#}"
    );
    promote(&ns, name).await;
    wait_rollout(
        &ns,
        name,
        "paused at step 8",
        Duration::from_secs(60),
        |ro, _| phase(ro).0 == "Paused" && phase(ro).2 == Some(8),
    )
    .await;
    let v = vs(&ns, n.vs).await;
    assert_eq!(route_names(&v), [second, "primary"], "{v:#}");
    promote(&ns, name).await;
    ns.wait_for(
        "managed routes removed at the end",
        Duration::from_secs(60),
        || async {
            let v = vs(&ns, n.vs).await;
            Ok((route_names(&v) == ["primary"]).then_some(()))
        },
    )
    .await;
}

/// The objects of an Istio subset-split manifest.
struct Subsets {
    rollout: &'static str,
    vs: &'static str,
    dr: &'static str,
    /// The weight of the first `setWeight` step (a `pause: {}` follows it).
    weight: i64,
}

/// The project's own subset-split manifest: one Service, a VirtualService weighting its
/// `stable` and `canary` subsets, a DestinationRule defining them.
const OWN_SUBSETS: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: subsets}
spec:
  selector: {app: subsets}
  ports: [{name: http, port: 80, targetPort: 8080, protocol: TCP}]
---
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata: {name: subsets}
spec:
  hosts: [subsets]
  http:
  - name: primary
    route:
    - destination: {host: subsets, subset: stable}
      weight: 100
    - destination: {host: subsets, subset: canary}
      weight: 0
---
apiVersion: networking.istio.io/v1alpha3
kind: DestinationRule
metadata: {name: subsets}
spec:
  host: subsets
  subsets:
  - name: stable
    labels: {app: subsets}
  - name: canary
    labels: {app: subsets}
---
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: subsets}
spec:
  replicas: 4
  selector: {matchLabels: {app: subsets}}
  template:
    metadata: {labels: {app: subsets}}
    spec:
      containers: [{name: app, image: "subsets:v1", ports: [{name: http, containerPort: 8080, protocol: TCP}]}]
  strategy:
    canary:
      trafficRouting:
        istio:
          virtualService: {name: subsets, routes: [primary]}
          destinationRule: {name: subsets, canarySubsetName: canary, stableSubsetName: stable}
      steps:
      - setWeight: 25
      - pause: {}
"#;

/// Subset split on the project's own manifest (runs on a clean clone), through promotion.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn istio_subset_split_destination_rule_hashes() {
    subset_split(
        "istio-subset",
        OWN_SUBSETS,
        &Subsets {
            rollout: "subsets",
            vs: "subsets",
            dr: "subsets",
            weight: 25,
        },
    )
    .await;
}

/// Subset split on upstream's e2e manifest (the compatibility corpus; skipped with a notice
/// where it is absent).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_istio_subset_split_example() {
    let Some(manifest) = compat_file("test/e2e/istio/istio-subset-split.yaml") else {
        return;
    };
    subset_split(
        "istio-subset-up",
        &manifest,
        &Subsets {
            rollout: "istio-subset-split",
            vs: "istio-subset-split-vsvc",
            dr: "istio-subset-split-destrule",
            weight: 10,
        },
    )
    .await;
}

/// The DestinationRule's canary and stable subsets carry the pod-template hashes, the
/// VirtualService weights the subsets; after promotion both subsets select the new version and
/// the stable subset takes all traffic.
async fn subset_split(test: &str, manifest: &str, n: &Subsets) {
    istio_crds().await;
    let (ns, _ctl) = setup(test).await;
    ns.apply(manifest).await;
    let name = n.rollout;
    let ro = wait_rollout(&ns, name, "Healthy", Duration::from_secs(60), is_healthy).await;
    let v1 = ro.status.unwrap().stable_rs.unwrap();
    set_image(&ns, name, "nginx:1.20-alpine").await;
    let ro = wait_rollout(
        &ns,
        name,
        "paused at the first step",
        Duration::from_secs(60),
        |ro, _| phase(ro).0 == "Paused",
    )
    .await;
    let v2 = ro.status.unwrap().current_pod_hash.unwrap();
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("networking.istio.io", "v1alpha3", "DestinationRule"),
        "destinationrules",
    );
    let api: kube::Api<DynamicObject> =
        kube::Api::namespaced_with(ns.client.clone(), &ns.name, &ar);
    let subset_hashes = || async {
        let dr = serde_json::to_value(api.get(n.dr).await.unwrap()).unwrap();
        let of = |s: &str| {
            dr["spec"]["subsets"]
                .as_array()
                .unwrap()
                .iter()
                .find(|x| x["name"] == s)
                .and_then(|x| x["labels"]["rollouts-pod-template-hash"].as_str())
                .unwrap_or_default()
                .to_string()
        };
        (of("canary"), of("stable"), dr)
    };
    let subset_weights = || async {
        let v = vs(&ns, n.vs).await;
        let w = |subset: &str| {
            v["spec"]["http"][0]["route"]
                .as_array()
                .unwrap()
                .iter()
                .find(|d| d["destination"]["subset"] == subset)
                .and_then(|d| d["weight"].as_i64())
        };
        (w("canary"), w("stable"), v)
    };
    let (canary, stable, dr) = subset_hashes().await;
    assert_eq!((canary, stable), (v2.clone(), v1.clone()), "{dr:#}");
    let (c, s, v) = subset_weights().await;
    assert_eq!((c, s), (Some(n.weight), Some(100 - n.weight)), "{v:#}");

    promote(&ns, name).await;
    wait_rollout(
        &ns,
        name,
        "Healthy on v2",
        Duration::from_secs(60),
        |ro, rss| {
            is_healthy(ro, rss)
                && ro.status.as_ref().and_then(|s| s.stable_rs.as_deref()) == Some(&v2)
        },
    )
    .await;
    ns.wait_for(
        "both subsets on v2, all traffic to stable",
        Duration::from_secs(30),
        || async {
            let (canary, stable, _) = subset_hashes().await;
            let (c, s, _) = subset_weights().await;
            Ok((canary == v2 && stable == v2 && (c, s) == (Some(0), Some(100))).then_some(()))
        },
    )
    .await;
}

const ALB: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: alb-stable}
spec:
  selector: {app: alb}
  ports: [{name: http, port: 80, protocol: TCP}]
---
apiVersion: v1
kind: Service
metadata: {name: alb-canary}
spec:
  selector: {app: alb}
  ports: [{name: http, port: 80, protocol: TCP}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: alb
  annotations: {alb.ingress.kubernetes.io/scheme: internet-facing}
spec:
  ingressClassName: alb
  rules:
  - http:
      paths:
      - path: /
        pathType: Prefix
        backend: {service: {name: alb-stable, port: {name: use-annotation}}}
---
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: alb}
spec:
  replicas: 2
  selector: {matchLabels: {app: alb}}
  template:
    metadata: {labels: {app: alb}}
    spec: {containers: [{name: app, image: "alb:v1"}]}
  strategy:
    canary:
      canaryService: alb-canary
      stableService: alb-stable
      trafficRouting:
        alb: {ingress: alb, servicePort: 80}
      steps: [{setWeight: 30}, {pause: {}}]
"#;

/// The canary weight of the ALB forward action on the `alb` Ingress.
async fn alb_weights(ns: &TestNs) -> Option<(i64, i64)> {
    alb_weights_of(ns, "alb").await
}

/// The (canary, stable) weights of the ALB forward action on an Ingress.
async fn alb_weights_of(ns: &TestNs, ingress: &str) -> Option<(i64, i64)> {
    use k8s_openapi::api::networking::v1::Ingress;
    let ing = ns.api::<Ingress>().get(ingress).await.ok()?;
    let a = ing.metadata.annotations?;
    let action: serde_json::Value =
        serde_json::from_str(a.get("alb.ingress.kubernetes.io/actions.alb-stable")?).ok()?;
    let groups = action["ForwardConfig"]["TargetGroups"].as_array()?.clone();
    let weight = |svc: &str| {
        groups
            .iter()
            .find(|g| g["ServiceName"] == svc)
            .and_then(|g| g["Weight"].as_i64())
    };
    Some((weight("alb-canary")?, weight("alb-stable")?))
}

/// ALB: the forward-action annotation carries the step's weights, and the Ingress's own
/// annotations and rules are kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alb_forward_action_weights_per_step() {
    use k8s_openapi::api::networking::v1::Ingress;
    let (ns, _ctl) = setup("alb").await;
    ns.apply(ALB).await;
    wait_rollout(&ns, "alb", "Healthy", Duration::from_secs(60), is_healthy).await;
    ns.wait_for("the action at 0/100", Duration::from_secs(20), || async {
        Ok((alb_weights(&ns).await == Some((0, 100))).then_some(()))
    })
    .await;
    set_image(&ns, "alb", "alb:v2").await;
    wait_rollout(
        &ns,
        "alb",
        "paused at 30%",
        Duration::from_secs(60),
        |ro, _| phase(ro).0 == "Paused",
    )
    .await;
    assert_eq!(alb_weights(&ns).await, Some((30, 70)));
    let ing = ns.api::<Ingress>().get("alb").await.unwrap();
    let a = ing.metadata.annotations.clone().unwrap();
    assert_eq!(
        a.get("alb.ingress.kubernetes.io/scheme")
            .map(String::as_str),
        Some("internet-facing")
    );
    assert_eq!(
        a.get("rollouts.argoproj.io/managed-alb-actions")
            .map(String::as_str),
        Some(r#"{"alb":["alb.ingress.kubernetes.io/actions.alb-stable"]}"#)
    );
    promote(&ns, "alb").await;
    wait_rollout(
        &ns,
        "alb",
        "Healthy on v2",
        Duration::from_secs(60),
        |ro, _| {
            phase(ro).0 == "Healthy"
                && ro.status.as_ref().unwrap().stable_rs
                    == ro.status.as_ref().unwrap().current_pod_hash
        },
    )
    .await;
    ns.wait_for(
        "the action back at 0/100",
        Duration::from_secs(20),
        || async { Ok((alb_weights(&ns).await == Some((0, 100))).then_some(())) },
    )
    .await;
}

/// ALB with several Ingresses (`ingresses`): each one's forward action carries the step's
/// weights, and each goes back to 0/100 on promotion.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alb_several_ingresses_all_carry_the_weights() {
    let second = r#"
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: alb-internal}
spec:
  ingressClassName: alb
  rules:
  - host: internal.example
    http:
      paths:
      - path: /
        pathType: Prefix
        backend: {service: {name: alb-stable, port: {name: use-annotation}}}
"#;
    let manifest = ALB.replace(
        "alb: {ingress: alb, servicePort: 80}",
        "alb: {ingresses: [alb, alb-internal], servicePort: 80}",
    ) + second;
    let (ns, _ctl) = setup("alb-several").await;
    ns.apply(&manifest).await;
    wait_rollout(&ns, "alb", "Healthy", Duration::from_secs(60), is_healthy).await;
    set_image(&ns, "alb", "alb:v2").await;
    wait_rollout(
        &ns,
        "alb",
        "paused at 30%",
        Duration::from_secs(60),
        |ro, _| phase(ro).0 == "Paused",
    )
    .await;
    for ing in ["alb", "alb-internal"] {
        assert_eq!(alb_weights_of(&ns, ing).await, Some((30, 70)), "{ing}");
    }
    promote(&ns, "alb").await;
    ns.wait_for(
        "both actions back at 0/100",
        Duration::from_secs(60),
        || async {
            let a = alb_weights_of(&ns, "alb").await;
            let b = alb_weights_of(&ns, "alb-internal").await;
            Ok((a == Some((0, 100)) && b == Some((0, 100))).then_some(()))
        },
    )
    .await;
}

const TRAEFIK: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: tr-stable}
spec:
  selector: {app: tr}
  ports: [{name: http, port: 80, protocol: TCP}]
---
apiVersion: v1
kind: Service
metadata: {name: tr-canary}
spec:
  selector: {app: tr}
  ports: [{name: http, port: 80, protocol: TCP}]
---
apiVersion: traefik.containo.us/v1alpha1
kind: TraefikService
metadata: {name: tr}
spec:
  weighted:
    services:
    - {name: tr-stable, port: 80, weight: 100}
    - {name: tr-canary, port: 80, weight: 0}
---
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: tr}
spec:
  replicas: 2
  selector: {matchLabels: {app: tr}}
  template:
    metadata: {labels: {app: tr}}
    spec: {containers: [{name: app, image: "tr:v1"}]}
  strategy:
    canary:
      canaryService: tr-canary
      stableService: tr-stable
      trafficRouting:
        traefik: {weightedTraefikServiceName: tr}
      steps: [{setWeight: 25}, {pause: {}}, {setWeight: 60}, {pause: {}}]
"#;

/// (canary, stable) weights in the TraefikService.
async fn traefik_weights(ns: &TestNs) -> Option<(i64, i64)> {
    let ar = kube::api::ApiResource::from_gvk_with_plural(
        &kube::core::GroupVersionKind::gvk("traefik.containo.us", "v1alpha1", "TraefikService"),
        "traefikservices",
    );
    let api: kube::Api<kube::api::DynamicObject> =
        kube::Api::namespaced_with(ns.client.clone(), &ns.name, &ar);
    let obj = api.get("tr").await.ok()?;
    let services = obj.data["spec"]["weighted"]["services"].as_array()?.clone();
    let weight = |name: &str| {
        services
            .iter()
            .find(|s| s["name"] == name)
            .and_then(|s| s["weight"].as_i64())
    };
    Some((weight("tr-canary")?, weight("tr-stable")?))
}

/// Traefik: the weights of the two Services in the TraefikService follow each step.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traefik_weighted_service_per_step() {
    istio_crds().await;
    let (ns, _ctl) = setup("traefik").await;
    ns.apply(TRAEFIK).await;
    wait_rollout(&ns, "tr", "Healthy", Duration::from_secs(60), is_healthy).await;
    assert_eq!(traefik_weights(&ns).await, Some((0, 100)));
    set_image(&ns, "tr", "tr:v2").await;
    for (step, weights) in [(1, (25, 75)), (3, (60, 40))] {
        wait_rollout(
            &ns,
            "tr",
            &format!("paused at step {step}"),
            Duration::from_secs(60),
            |ro, _| phase(ro).0 == "Paused" && phase(ro).2 == Some(step),
        )
        .await;
        assert_eq!(traefik_weights(&ns).await, Some(weights), "step {step}");
        promote(&ns, "tr").await;
    }
    wait_rollout(
        &ns,
        "tr",
        "Healthy on v2",
        Duration::from_secs(60),
        |ro, _| {
            phase(ro).0 == "Healthy"
                && ro.status.as_ref().unwrap().stable_rs
                    == ro.status.as_ref().unwrap().current_pod_hash
        },
    )
    .await;
    ns.wait_for(
        "the weights back at 0/100",
        Duration::from_secs(20),
        || async { Ok((traefik_weights(&ns).await == Some((0, 100))).then_some(())) },
    )
    .await;
}

/// Traefik's newer `traefik.io` group is not built: a Rollout whose TraefikService exists
/// only there is blocked with a Warning naming the `traefik.containo.us` TraefikService it
/// did not find, and the `traefik.io` object is left as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traefik_io_service_is_not_found_and_left_alone() {
    istio_crds().await;
    // A TraefikService CRD in the traefik.io group (the tests' CRD, regrouped).
    let crd = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/crds/traefik-traefikservice-crd.yaml"),
    )
    .unwrap()
    .replace("traefik.containo.us", "traefik.io");
    let dir = std::env::temp_dir().join(format!("rollouts-traefik-io-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("crd.yaml"), crd).unwrap();
    testkit::install_crds(&testkit::client().await, &dir)
        .await
        .expect("installing the traefik.io CRD");
    let _ = std::fs::remove_dir_all(&dir);

    let (ns, _ctl) = setup("traefik-io").await;
    let manifest = TRAEFIK.replace(
        "apiVersion: traefik.containo.us/v1alpha1",
        "apiVersion: traefik.io/v1alpha1",
    );
    ns.apply(&manifest).await;
    let ro = wait_rollout(
        &ns,
        "tr",
        "blocked on the missing TraefikService",
        Duration::from_secs(30),
        |ro, _| phase(ro).1.contains("TraefikService"),
    )
    .await;
    wait_events(&ns, "tr", &["TraefikServiceNotFound"]).await;
    assert!(
        phase(&ro).1.contains("not found"),
        "status message: {:?}",
        phase(&ro).1
    );
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("traefik.io", "v1alpha1", "TraefikService"),
        "traefikservices",
    );
    let api: kube::Api<DynamicObject> =
        kube::Api::namespaced_with(ns.client.clone(), &ns.name, &ar);
    let obj = api.get("tr").await.expect("the traefik.io TraefikService");
    assert_eq!(
        obj.data["spec"]["weighted"]["services"],
        serde_json::json!([
            {"name": "tr-stable", "port": 80, "weight": 100},
            {"name": "tr-canary", "port": 80, "weight": 0}
        ]),
        "the traefik.io object was changed"
    );
}
