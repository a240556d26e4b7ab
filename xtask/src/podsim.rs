//! The pod simulator: a kubelet stand-in for the local control plane.
//!
//! It registers one Ready Node, binds Pending pods to it, and reports their status the way a
//! kubelet would, reacting to watch events (a kube-runtime `Controller` over pods) with scheduled
//! requeues for delays:
//! - a pod becomes Running and Ready with a unique pod IP after the ready delay (default
//!   [`SimOptions::ready_delay`], per pod: annotation [`READY_DELAY_ANNOTATION`], e.g. `"3s"`);
//! - a container image whose tag contains `bad` (or `does-not-exist`) never becomes Ready: the container waits in
//!   CrashLoopBackOff with a rising restart count;
//! - annotation [`UNHEALTHY_ANNOTATION`]`: "true"` on a running pod makes it NotReady (tests flip
//!   pods unhealthy this way), removing it makes it Ready again;
//! - pods owned by a Job finish Succeeded after the delay, or Failed when an image tag contains
//!   `fail` or a container's command line ends with a non-zero `exit N` (upstream's test
//!   manifests fail their Jobs with `command: [exit, "1"]`);
//! - terminating pods are deleted at once (there is no container to stop).

use anyhow::Result;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Per-pod ready delay, e.g. `"2s"`, `"500ms"`.
pub const READY_DELAY_ANNOTATION: &str = "sim.rollouts.io/ready-delay";
/// `"true"`: the pod's containers report NotReady.
pub const UNHEALTHY_ANNOTATION: &str = "sim.rollouts.io/unhealthy";
/// The simulated node's name.
pub const NODE_NAME: &str = "rollouts-sim-node";

/// Simulator settings.
#[derive(Clone, Debug)]
pub struct SimOptions {
    /// Time from binding to Ready (or to a Job pod's completion).
    pub ready_delay: Duration,
    /// How often a `bad` pod's restart count rises.
    pub crash_interval: Duration,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            ready_delay: Duration::from_millis(500),
            crash_interval: Duration::from_secs(5),
        }
    }
}

/// What the simulator did, for the benchmark's "does the simulator keep up" figures.
#[derive(Debug, Default)]
pub struct SimStats {
    /// Per pod made Ready: how late its Ready status was written, after its ready delay.
    ready_lag: Mutex<Vec<Duration>>,
    /// Pods bound.
    bound: AtomicU32,
}

impl SimStats {
    /// Pods bound so far.
    pub fn bound(&self) -> u32 {
        self.bound.load(Ordering::Relaxed)
    }

    /// The ready lags recorded since the last call (sorted), emptying the record.
    pub fn take_ready_lags(&self) -> Vec<Duration> {
        let mut v = std::mem::take(&mut *self.ready_lag.lock().unwrap());
        v.sort();
        v
    }
}

struct Ctx {
    client: Client,
    opts: SimOptions,
    stats: Arc<SimStats>,
    next_ip: AtomicU32,
    /// When we bound each pod (by uid): the ready delay counts from here.
    bound_at: Mutex<HashMap<String, Instant>>,
}

#[derive(Debug)]
enum SimError {
    Kube(kube::Error),
}

impl std::fmt::Display for SimError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SimError::Kube(e) => write!(f, "{e}"),
        }
    }
}
impl std::error::Error for SimError {}
impl From<kube::Error> for SimError {
    fn from(e: kube::Error) -> Self {
        SimError::Kube(e)
    }
}

/// Parses `"500ms"`, `"2s"`, `"1m"` or a bare number of seconds.
pub fn parse_delay(s: &str) -> Option<Duration> {
    let s = s.trim();
    if let Some(ms) = s.strip_suffix("ms") {
        return ms.trim().parse::<u64>().ok().map(Duration::from_millis);
    }
    if let Some(sec) = s.strip_suffix('s') {
        return sec
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|v| *v >= 0.0)
            .map(Duration::from_secs_f64);
    }
    if let Some(min) = s.strip_suffix('m') {
        return min
            .trim()
            .parse::<u64>()
            .ok()
            .map(|m| Duration::from_secs(m * 60));
    }
    s.parse::<f64>()
        .ok()
        .filter(|v| *v >= 0.0)
        .map(Duration::from_secs_f64)
}

/// The tag of an image reference (`repo:tag`, `host:5000/repo:tag`, `repo@sha256:...`).
pub fn image_tag(image: &str) -> &str {
    let without_digest = image.split('@').next().unwrap_or(image);
    match without_digest.rsplit_once(':') {
        Some((_, tag)) if !tag.contains('/') => tag,
        _ => "latest",
    }
}

fn images(pod: &Pod) -> Vec<(String, String)> {
    pod.spec
        .as_ref()
        .map(|s| {
            s.containers
                .iter()
                .map(|c| (c.name.clone(), c.image.clone().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default()
}

/// The exit code a container's command line asks for: its last `exit N` (command and args
/// taken as one shell line), if any.
pub fn exit_code(command: &[String]) -> Option<i32> {
    let line = command.join(" ");
    let words: Vec<&str> = line
        .split(|c: char| c.is_whitespace() || c == ';' || c == '&' || c == '|')
        .filter(|w| !w.is_empty())
        .collect();
    words
        .windows(2)
        .rev()
        .find(|w| w[0] == "exit")
        .and_then(|w| w[1].trim_matches(['"', '\'']).parse().ok())
}

/// Whether a container of this image never becomes Ready: its tag contains `bad`, or
/// `does-not-exist` (upstream's test manifests use `rollouts-demo:does-not-exist` for an image
/// that cannot be pulled).
fn never_ready(image: &str) -> bool {
    let tag = image_tag(image);
    tag.contains("bad") || tag.contains("does-not-exist")
}

/// Whether a Job pod fails: an image tag with `fail`, or a non-zero `exit N`.
fn job_fails(pod: &Pod) -> bool {
    pod.spec.iter().flat_map(|s| &s.containers).any(|c| {
        let line: Vec<String> = c
            .command
            .iter()
            .flatten()
            .chain(c.args.iter().flatten())
            .cloned()
            .collect();
        image_tag(c.image.as_deref().unwrap_or_default()).contains("fail")
            || exit_code(&line).is_some_and(|code| code != 0)
    })
}

fn owned_by_job(pod: &Pod) -> bool {
    pod.owner_references().iter().any(|o| o.kind == "Job")
}

fn ip_of(n: u32) -> String {
    format!("10.244.{}.{}", (n / 250) % 250, n % 250 + 1)
}

fn ip_index(ip: &str) -> Option<u32> {
    let parts: Vec<u32> = ip.split('.').filter_map(|p| p.parse().ok()).collect();
    match parts.as_slice() {
        [10, 244, a, b] if *b >= 1 => Some(a * 250 + (b - 1)),
        _ => None,
    }
}

/// The simulated node: Ready, with plenty of room.
fn node_object() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": NODE_NAME,
            "labels": {
                "kubernetes.io/hostname": NODE_NAME,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "node-role.kubernetes.io/simulated": ""
            }
        },
        "spec": {}
    })
}

fn node_status(now: &str) -> Value {
    json!({
        "status": {
            "capacity": {"cpu": "64", "memory": "256Gi", "pods": "1000"},
            "allocatable": {"cpu": "64", "memory": "256Gi", "pods": "1000"},
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"},
                          {"type": "Hostname", "address": NODE_NAME}],
            "conditions": [{
                "type": "Ready", "status": "True", "reason": "KubeletReady",
                "message": "simulated by rollouts' pod simulator",
                "lastHeartbeatTime": now, "lastTransitionTime": now
            }],
            "nodeInfo": {
                "machineID": "sim", "systemUUID": "sim", "bootID": "sim",
                "kernelVersion": "sim", "osImage": "sim", "containerRuntimeVersion": "sim://1",
                "kubeletVersion": "v1.20.2", "kubeProxyVersion": "v1.20.2",
                "operatingSystem": "linux", "architecture": "amd64"
            }
        }
    })
}

fn now_rfc3339() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Registers the simulated node (idempotent) and marks it Ready.
pub async fn ensure_node(client: &Client) -> Result<()> {
    let nodes: Api<Node> = Api::all(client.clone());
    let pp = PatchParams::apply("rollouts-podsim").force();
    nodes
        .patch(NODE_NAME, &pp, &Patch::Apply(node_object()))
        .await?;
    nodes
        .patch_status(
            NODE_NAME,
            &PatchParams::default(),
            &Patch::Merge(node_status(&now_rfc3339())),
        )
        .await?;
    Ok(())
}

/// What the simulator wants a bound pod's status to be, and when to look again.
struct Target {
    status: Value,
    requeue: Option<Duration>,
    /// Set when the status makes the pod Ready: how long after its ready delay.
    ready_lag: Option<Duration>,
}

fn container_statuses(pod: &Pod, f: impl Fn(&str, &str) -> Value) -> Vec<Value> {
    images(pod)
        .iter()
        .map(|(name, image)| f(name, image))
        .collect()
}

fn condition(kind: &str, ok: bool, now: &str, reason: Option<&str>) -> Value {
    let mut c = json!({"type": kind, "status": if ok { "True" } else { "False" },
                       "lastProbeTime": null, "lastTransitionTime": now});
    if let Some(r) = reason {
        c["reason"] = json!(r);
    }
    c
}

/// Keeps a condition's lastTransitionTime when its status did not change.
fn keep_transition_times(pod: &Pod, status: &mut Value) {
    let old: HashMap<String, (String, Option<Time>)> = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .map(|cs| {
            cs.iter()
                .map(|c| {
                    (
                        c.type_.clone(),
                        (c.status.clone(), c.last_transition_time.clone()),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    if let Some(conds) = status.get_mut("conditions").and_then(Value::as_array_mut) {
        for c in conds {
            let kind = c["type"].as_str().unwrap_or_default().to_string();
            if let Some((st, Some(t))) = old.get(&kind)
                && c["status"].as_str() == Some(st.as_str())
            {
                c["lastTransitionTime"] = json!(t.0.to_string());
            }
        }
    }
}

fn target_status(
    pod: &Pod,
    ip: &str,
    started: &str,
    elapsed: Duration,
    opts: &SimOptions,
) -> Target {
    let now = now_rfc3339();
    let delay = pod
        .annotations()
        .get(READY_DELAY_ANNOTATION)
        .and_then(|d| parse_delay(d))
        .unwrap_or(opts.ready_delay);
    let base = |phase: &str| {
        json!({
            "phase": phase, "hostIP": "127.0.0.1", "podIP": ip, "podIPs": [{"ip": ip}],
            "startTime": started, "qosClass": "BestEffort"
        })
    };
    if elapsed < delay {
        let mut s = base("Pending");
        s["conditions"] = json!([
            condition("PodScheduled", true, &now, None),
            condition("Initialized", true, &now, None),
            condition("ContainersReady", false, &now, Some("ContainersNotReady")),
            condition("Ready", false, &now, Some("ContainersNotReady")),
        ]);
        s["containerStatuses"] = json!(container_statuses(pod, |name, image| json!({
            "name": name, "image": image, "imageID": "", "ready": false, "started": false,
            "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}
        })));
        return Target {
            status: s,
            requeue: Some(delay - elapsed),
            ready_lag: None,
        };
    }
    let imgs = images(pod);
    if owned_by_job(pod) {
        let failed = job_fails(pod);
        let (phase, code, reason) = if failed {
            ("Failed", 1, "Error")
        } else {
            ("Succeeded", 0, "Completed")
        };
        let mut s = base(phase);
        s["conditions"] = json!([
            condition("PodScheduled", true, &now, None),
            condition("Initialized", true, &now, None),
            condition("ContainersReady", false, &now, Some("PodCompleted")),
            condition("Ready", false, &now, Some("PodCompleted")),
        ]);
        s["containerStatuses"] = json!(container_statuses(pod, |name, image| json!({
            "name": name, "image": image, "imageID": format!("sim://{image}"),
            "containerID": format!("sim://{name}"), "ready": false, "started": false,
            "restartCount": 0,
            "state": {"terminated": {"exitCode": code, "reason": reason,
                                      "startedAt": started, "finishedAt": now}}
        })));
        return Target {
            status: s,
            requeue: None,
            ready_lag: None,
        };
    }
    let bad = imgs.iter().any(|(_, i)| never_ready(i));
    if bad {
        let restarts = 1 + (elapsed - delay).as_secs() / opts.crash_interval.as_secs().max(1);
        let mut s = base("Running");
        s["conditions"] = json!([
            condition("PodScheduled", true, &now, None),
            condition("Initialized", true, &now, None),
            condition("ContainersReady", false, &now, Some("ContainersNotReady")),
            condition("Ready", false, &now, Some("ContainersNotReady")),
        ]);
        s["containerStatuses"] = json!(container_statuses(pod, |name, image| {
            let crashing = never_ready(image);
            if crashing {
                json!({
                    "name": name, "image": image, "imageID": format!("sim://{image}"),
                    "containerID": format!("sim://{name}"), "ready": false, "started": false,
                    "restartCount": restarts,
                    "state": {"waiting": {"reason": "CrashLoopBackOff",
                        "message": format!("back-off restarting failed container {name}")}},
                    "lastState": {"terminated": {"exitCode": 1, "reason": "Error",
                        "startedAt": started, "finishedAt": now}}
                })
            } else {
                json!({
                    "name": name, "image": image, "imageID": format!("sim://{image}"),
                    "containerID": format!("sim://{name}"), "ready": true, "started": true,
                    "restartCount": 0, "state": {"running": {"startedAt": started}}
                })
            }
        }));
        return Target {
            status: s,
            requeue: Some(opts.crash_interval),
            ready_lag: None,
        };
    }
    let unhealthy = pod
        .annotations()
        .get(UNHEALTHY_ANNOTATION)
        .map(String::as_str)
        == Some("true");
    let mut s = base("Running");
    s["conditions"] = json!([
        condition("PodScheduled", true, &now, None),
        condition("Initialized", true, &now, None),
        condition(
            "ContainersReady",
            !unhealthy,
            &now,
            unhealthy.then_some("ContainersNotReady")
        ),
        condition(
            "Ready",
            !unhealthy,
            &now,
            unhealthy.then_some("ContainersNotReady")
        ),
    ]);
    s["containerStatuses"] = json!(container_statuses(pod, |name, image| json!({
        "name": name, "image": image, "imageID": format!("sim://{image}"),
        "containerID": format!("sim://{name}"), "ready": !unhealthy, "started": true,
        "restartCount": 0, "state": {"running": {"startedAt": started}}
    })));
    Target {
        status: s,
        requeue: None,
        ready_lag: (!unhealthy).then(|| elapsed - delay),
    }
}

/// Whether the pod's current status already says what `target` says (ignoring timestamps).
fn status_matches(pod: &Pod, target: &Value) -> bool {
    let Some(current) = pod
        .status
        .as_ref()
        .and_then(|s| serde_json::to_value(s).ok())
    else {
        return false;
    };
    fn strip(v: &Value) -> Value {
        match v {
            Value::Object(m) => Value::Object(
                m.iter()
                    .filter(|(k, v)| {
                        !matches!(
                            k.as_str(),
                            "lastTransitionTime" | "lastProbeTime" | "finishedAt" | "message"
                        ) && !v.is_null()
                    })
                    .map(|(k, v)| (k.clone(), strip(v)))
                    .collect(),
            ),
            Value::Array(a) => Value::Array(a.iter().map(strip).collect()),
            other => other.clone(),
        }
    }
    let want = strip(target);
    let have = strip(&current);
    want.as_object()
        .map(|w| w.iter().all(|(k, v)| have.get(k) == Some(v)))
        .unwrap_or(false)
}

async fn reconcile(pod: Arc<Pod>, ctx: Arc<Ctx>) -> Result<Action, SimError> {
    let ns = pod.namespace().unwrap_or_default();
    let name = pod.name_any();
    let uid = pod.uid().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    if pod.metadata.deletion_timestamp.is_some() {
        ctx.bound_at.lock().unwrap().remove(&uid);
        let dp = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(kube::api::Preconditions {
                uid: Some(uid),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match api.delete(&name, &dp).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {}
            Err(e) => return Err(e.into()),
        }
        return Ok(Action::await_change());
    }
    let spec = pod.spec.clone().unwrap_or_default();
    let phase = pod
        .status
        .as_ref()
        .and_then(|s| s.phase.clone())
        .unwrap_or_default();
    if phase == "Succeeded" || phase == "Failed" {
        return Ok(Action::await_change());
    }
    match spec.node_name.as_deref() {
        None | Some("") => {
            let binding = json!({
                "apiVersion": "v1", "kind": "Binding",
                "metadata": {"name": name, "namespace": ns},
                "target": {"apiVersion": "v1", "kind": "Node", "name": NODE_NAME}
            });
            let res: Result<Value, _> = api
                .create_subresource("binding", &name, &PostParams::default(), &binding)
                .await;
            match res {
                Ok(_) => {}
                // Already bound (a stale event) or gone.
                Err(kube::Error::Api(e)) if e.code == 409 || e.code == 404 => {
                    return Ok(Action::await_change());
                }
                Err(e) => return Err(e.into()),
            }
            ctx.bound_at.lock().unwrap().insert(uid, Instant::now());
            ctx.stats.bound.fetch_add(1, Ordering::Relaxed);
            // The bind shows up as a watch event; the status follows from there.
            return Ok(Action::await_change());
        }
        Some(n) if n != NODE_NAME => return Ok(Action::await_change()),
        Some(_) => {}
    }
    let existing_ip = pod.status.as_ref().and_then(|s| s.pod_ip.clone());
    let ip = existing_ip.unwrap_or_else(|| ip_of(ctx.next_ip.fetch_add(1, Ordering::SeqCst)));
    let started = pod
        .status
        .as_ref()
        .and_then(|s| s.start_time.as_ref())
        .map(|t| t.0.to_string())
        .unwrap_or_else(now_rfc3339);
    let elapsed = {
        let mut bound = ctx.bound_at.lock().unwrap();
        let at = *bound.entry(uid).or_insert_with(|| {
            // Bound before this simulator started: count from the recorded start time.
            let since_start = pod
                .status
                .as_ref()
                .and_then(|s| s.start_time.as_ref())
                .map(|t| {
                    let secs =
                        t.0.duration_until(k8s_openapi::jiff::Timestamp::now())
                            .as_secs()
                            .max(0);
                    Duration::from_secs(secs as u64)
                })
                .unwrap_or_default();
            Instant::now()
                .checked_sub(since_start)
                .unwrap_or_else(Instant::now)
        });
        at.elapsed()
    };
    let mut target = target_status(&pod, &ip, &started, elapsed, &ctx.opts);
    if !status_matches(&pod, &target.status) {
        keep_transition_times(&pod, &mut target.status);
        let patch = json!({"status": target.status});
        match api
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => return Ok(Action::await_change()),
            Err(e) => return Err(e.into()),
        }
        if let Some(lag) = target.ready_lag {
            ctx.stats.ready_lag.lock().unwrap().push(lag);
        }
    }
    Ok(match target.requeue {
        Some(d) => Action::requeue(d),
        None => Action::await_change(),
    })
}

fn error_policy(_pod: Arc<Pod>, err: &SimError, _ctx: Arc<Ctx>) -> Action {
    eprintln!("podsim: {err}");
    Action::requeue(Duration::from_millis(500))
}

/// Runs the simulator until the future is dropped.
pub async fn run(client: Client, opts: SimOptions) -> Result<()> {
    run_with_stats(client, opts, Arc::default()).await
}

/// [`run`], recording what it does in `stats`.
pub async fn run_with_stats(client: Client, opts: SimOptions, stats: Arc<SimStats>) -> Result<()> {
    ensure_node(&client).await?;
    let pods: Api<Pod> = Api::all(client.clone());
    // Seed the IP counter past every IP already handed out, so IPs stay unique across restarts.
    let existing = pods.list(&Default::default()).await?;
    let next = existing
        .items
        .iter()
        .filter_map(|p| p.status.as_ref()?.pod_ip.as_deref().and_then(ip_index))
        .max()
        .map(|m| m + 1)
        .unwrap_or(0);
    let ctx = Arc::new(Ctx {
        client: client.clone(),
        opts,
        stats,
        next_ip: AtomicU32::new(next),
        bound_at: Mutex::new(HashMap::new()),
    });
    Controller::new(pods, watcher::Config::default())
        .run(reconcile, error_policy, ctx)
        .for_each(|_| futures::future::ready(()))
        .await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags() {
        assert_eq!(image_tag("nginx:1.19-bad"), "1.19-bad");
        let line = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(exit_code(&line(&["exit", "1"])), Some(1));
        assert_eq!(exit_code(&line(&["sh", "-c", "exit 0"])), Some(0));
        assert_eq!(exit_code(&line(&["sh", "-c", "echo x; exit 3"])), Some(3));
        assert_eq!(exit_code(&line(&["sleep", "5"])), None);
        assert_eq!(image_tag("localhost:5000/app"), "latest");
        assert_eq!(image_tag("localhost:5000/app:v2"), "v2");
        assert_eq!(image_tag("argoproj/rollouts-demo:blue"), "blue");
        assert_eq!(image_tag("app@sha256:abc"), "latest");
    }

    #[test]
    fn delays() {
        assert_eq!(parse_delay("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_delay("2s"), Some(Duration::from_secs(2)));
        assert_eq!(parse_delay("1m"), Some(Duration::from_secs(60)));
        assert_eq!(parse_delay("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_delay("soon"), None);
        assert_eq!(parse_delay("-1s"), None);
    }

    #[test]
    fn ips_round_trip() {
        for n in [0, 1, 249, 250, 1000] {
            assert_eq!(ip_index(&ip_of(n)), Some(n));
        }
        assert_eq!(ip_index("192.168.0.1"), None);
    }
}
