//! The chaos suite's safety invariants, as pure functions of one consistent snapshot of a
//! namespace (every object read at one etcd revision): no client, no clock.
//!
//! Per Rollout, once it has been seen Healthy ("up"):
//! - **availability**: the pods available across its ReplicaSets are at least
//!   `replicas - maxUnavailable` (blue-green: `maxUnavailable` 0 when unset);
//! - **surge** (a canary without traffic routing, the one case upstream bounds): the
//!   ReplicaSets' `spec.replicas` add up to at most `replicas + maxSurge`;
//! - **traffic**: a VirtualService destination with weight `w > 0` goes to a ReplicaSet (the
//!   one its Service selects) with at least the pods that weight needs
//!   (`traffic_weight_to_replicas(replicas, w)`) available; a blue-green active Service selects
//!   a fully available ReplicaSet;
//! - **stable**: the ReplicaSet named by `status.stableRS` exists and is not scaled to 0,
//!   unless the current ReplicaSet already has every pod available (a basic canary's last
//!   step drains the stable just before promoting the new one, as upstream does; upstream's
//!   issue 2050 is a stable drained while the canary lacked pods);
//! - **abort**: while aborted, the canary is not scaled below what the traffic still sent to
//!   it needs (weights return to stable before the canary scales down).
//!
//! Always: no two ReplicaSets of one Rollout with one pod template; no two AnalysisRuns of one
//! step of one revision running at once.

use rollouts_core::api::{AnalysisRun, Rollout, analysis_phase};
use rollouts_core::plan::hash::canonical_template;
use rollouts_core::plan::replicas::{
    int_or_percent, max_surge, max_unavailable, traffic_weight_to_replicas,
};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// The label carrying a ReplicaSet's pod-template hash (on ReplicaSets, pods and selectors).
pub const HASH_LABEL: &str = "rollouts-pod-template-hash";

/// What a ReplicaSet contributes to the checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RsView {
    pub name: String,
    /// The `rollouts-pod-template-hash` label.
    pub hash: String,
    /// The uid of its controller owner.
    pub owner_uid: Option<String>,
    pub spec_replicas: i32,
    pub available: i32,
    /// The pod template without the hash label, canonically serialised
    /// ([`canonical_template`]).
    pub template: String,
}

impl RsView {
    /// From a ReplicaSet as read from the API.
    pub fn from_api(rs: &k8s_openapi::api::apps::v1::ReplicaSet) -> RsView {
        let template = serde_json::to_value(
            rs.spec
                .as_ref()
                .and_then(|s| s.template.clone())
                .unwrap_or_default(),
        )
        .unwrap_or_default();
        RsView {
            name: rs.metadata.name.clone().unwrap_or_default(),
            hash: rs
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(HASH_LABEL))
                .cloned()
                .unwrap_or_default(),
            owner_uid: rs
                .metadata
                .owner_references
                .as_ref()
                .and_then(|o| o.iter().find(|r| r.controller == Some(true)))
                .map(|r| r.uid.clone()),
            spec_replicas: rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
            available: rs
                .status
                .as_ref()
                .and_then(|s| s.available_replicas)
                .unwrap_or(0),
            template: canonical_template(&template),
        }
    }
}

/// One consistent snapshot of the namespace.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub rollouts: Vec<Rollout>,
    pub replica_sets: Vec<RsView>,
    /// Service name → the pod-template hash its selector pins (None: no hash in the selector).
    pub services: BTreeMap<String, Option<String>>,
    /// VirtualService name → its first HTTP route's destinations (host, weight).
    pub virtual_services: BTreeMap<String, Vec<(String, i64)>>,
    pub analysis_runs: Vec<AnalysisRun>,
}

/// Which invariant a violation breaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Invariant {
    Availability,
    Surge,
    Traffic,
    StableScaledToZero,
    DuplicateTemplate,
    AbortOrder,
    TwoWriters,
    FinalPhase,
    DuplicateAnalysisRun,
    StepJudgedTwice,
    OrphanedReplicaSet,
}

impl fmt::Display for Invariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Invariant::Availability => "available >= replicas - maxUnavailable",
            Invariant::Surge => "pods <= replicas + maxSurge",
            Invariant::Traffic => "traffic only to available pods",
            Invariant::StableScaledToZero => "stable ReplicaSet never scaled to 0",
            Invariant::DuplicateTemplate => "one ReplicaSet per template",
            Invariant::AbortOrder => "abort: weights back to stable before the canary scales down",
            Invariant::TwoWriters => "never two writers at once",
            Invariant::FinalPhase => "the scenario's final phase",
            Invariant::DuplicateAnalysisRun => "one AnalysisRun per step in flight",
            Invariant::StepJudgedTwice => "one AnalysisRun per step",
            Invariant::OrphanedReplicaSet => "no orphaned ReplicaSets",
        };
        f.write_str(s)
    }
}

/// A broken invariant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub invariant: Invariant,
    /// The object (usually the Rollout).
    pub object: String,
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] {}: {}", self.invariant, self.object, self.detail)
    }
}

fn violation(invariant: Invariant, object: &str, detail: String) -> Violation {
    Violation {
        invariant,
        object: object.to_string(),
        detail,
    }
}

/// What makes two AnalysisRuns duplicates: the Rollout that owns them, the pod-template hash,
/// the kind (`Step`, `Background`, `PrePromotion`, `PostPromotion`) and the step.
pub fn run_key(run: &AnalysisRun) -> String {
    let labels = run.metadata.labels.clone().unwrap_or_default();
    let owner = run
        .metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
        .map(|o| o.name.clone())
        .unwrap_or_default();
    let label = |k: &str| labels.get(k).cloned().unwrap_or_default();
    format!(
        "{owner}/{}/{}/{}",
        label(HASH_LABEL),
        label("rollout-type"),
        label("step-index")
    )
}

fn running(run: &AnalysisRun) -> bool {
    let phase = run
        .status
        .as_ref()
        .and_then(|s| s.phase.clone())
        .unwrap_or_default();
    !analysis_phase::is_completed(&phase)
}

/// Two AnalysisRuns for one step of one revision, both still running: two judgements racing.
pub fn runs_in_flight(runs: &[AnalysisRun]) -> Vec<Violation> {
    let mut by_key: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for run in runs.iter().filter(|r| running(r)) {
        by_key
            .entry(run_key(run))
            .or_default()
            .push(run.metadata.name.clone().unwrap_or_default());
    }
    by_key
        .into_iter()
        .filter(|(_, names)| names.len() > 1)
        .map(|(key, names)| {
            violation(
                Invariant::DuplicateAnalysisRun,
                &key,
                format!(
                    "{} AnalysisRuns running at once: {}",
                    names.len(),
                    names.join(", ")
                ),
            )
        })
        .collect()
}

/// Checks every invariant on `snap`; `up` names the Rollouts seen Healthy at least once.
pub fn check(snap: &Snapshot, up: &BTreeSet<String>) -> Vec<Violation> {
    let mut out = runs_in_flight(&snap.analysis_runs);
    for ro in &snap.rollouts {
        check_rollout(
            snap,
            ro,
            up.contains(&ro.metadata.name.clone().unwrap_or_default()),
            &mut out,
        );
    }
    out
}

fn check_rollout(snap: &Snapshot, ro: &Rollout, up: bool, out: &mut Vec<Violation>) {
    let name = ro.metadata.name.clone().unwrap_or_default();
    let uid = ro.metadata.uid.clone();
    let rss: Vec<&RsView> = snap
        .replica_sets
        .iter()
        .filter(|rs| uid.is_some() && rs.owner_uid == uid)
        .collect();
    // One ReplicaSet per template.
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    for rs in &rss {
        if let Some(other) = seen.insert(rs.template.as_str(), rs.name.as_str()) {
            out.push(violation(
                Invariant::DuplicateTemplate,
                &name,
                format!("ReplicaSets {other} and {} have one pod template", rs.name),
            ));
        }
    }
    if !up {
        return;
    }
    let replicas = ro.spec.replicas.unwrap_or(1);
    let status = ro.status.clone().unwrap_or_default();
    let strategy = ro.spec.strategy.clone().unwrap_or_default();
    let by_hash = |h: &str| rss.iter().copied().find(|rs| rs.hash == h);

    // A basic canary's last step drains the stable before promoting the new ReplicaSet (as
    // upstream does): allowed once the new one has every pod available.
    let taken_over = |st: &rollouts_core::api::RolloutStatus| {
        st.current_pod_hash
            .as_deref()
            .filter(|h| st.stable_rs.as_deref() != Some(*h))
            .and_then(by_hash)
            .is_some_and(|rs| rs.available >= replicas)
    };
    // The stable ReplicaSet is never scaled to 0.
    if let Some(stable) = status.stable_rs.as_deref()
        && replicas > 0
    {
        match by_hash(stable) {
            None => out.push(violation(
                Invariant::StableScaledToZero,
                &name,
                format!("the stable ReplicaSet (hash {stable}) does not exist"),
            )),
            Some(rs) if rs.spec_replicas == 0 && !taken_over(&status) => {
                out.push(violation(
                    Invariant::StableScaledToZero,
                    &name,
                    format!(
                        "the stable ReplicaSet {} is scaled to 0 while the current one ({}) has not all its pods available",
                        rs.name,
                        status.current_pod_hash.clone().unwrap_or_default()
                    ),
                ))
            }
            Some(_) => {}
        }
    }

    let available: i32 = rss.iter().map(|rs| rs.available).sum();
    let spec_total: i32 = rss.iter().map(|rs| rs.spec_replicas).sum();
    if let Some(bg) = &strategy.blue_green {
        let unavailable = int_or_percent(bg.max_unavailable.as_ref())
            .map(|u| u.scaled_value(replicas, false))
            .unwrap_or(0);
        if available < replicas - unavailable {
            out.push(violation(
                Invariant::Availability,
                &name,
                format!("{available} pods available, fewer than {replicas} - {unavailable}"),
            ));
        }
        if let Some(active) = bg.active_service.as_deref()
            && let Some(Some(hash)) = snap.services.get(active)
        {
            let avail = by_hash(hash).map_or(0, |rs| rs.available);
            if avail < replicas - unavailable {
                out.push(violation(
                    Invariant::Traffic,
                    &name,
                    format!(
                        "active Service {active} selects ReplicaSet {hash} with {avail} of {replicas} pods available"
                    ),
                ));
            }
        }
        return;
    }
    let Some(canary) = &strategy.canary else {
        return;
    };
    let surge_spec = int_or_percent(canary.max_surge.as_ref());
    let unavailable = max_unavailable(
        replicas,
        surge_spec,
        int_or_percent(canary.max_unavailable.as_ref()),
    );
    if available < replicas - unavailable {
        out.push(violation(
            Invariant::Availability,
            &name,
            format!("{available} pods available, fewer than {replicas} - {unavailable}"),
        ));
    }
    let Some(routing) = &canary.traffic_routing else {
        let surge = max_surge(replicas, surge_spec);
        if spec_total > replicas + surge {
            out.push(violation(
                Invariant::Surge,
                &name,
                format!("ReplicaSets ask for {spec_total} pods, more than {replicas} + {surge}"),
            ));
        }
        return;
    };
    let Some(vs) = routing
        .istio
        .as_ref()
        .and_then(|i| i.virtual_service.as_ref())
        .and_then(|v| v.name.clone())
    else {
        return;
    };
    let aborted = status.abort == Some(true);
    for (host, weight) in snap.virtual_services.get(&vs).into_iter().flatten() {
        if *weight <= 0 {
            continue;
        }
        let Some(Some(hash)) = snap.services.get(host) else {
            continue;
        };
        let need = traffic_weight_to_replicas(replicas, *weight as i32, 100);
        let rs = by_hash(hash);
        let avail = rs.map_or(0, |rs| rs.available);
        if avail < need {
            out.push(violation(
                Invariant::Traffic,
                &name,
                format!(
                    "weight {weight} to {host} (ReplicaSet {hash}) needs {need} available pods, it has {avail}"
                ),
            ));
        }
        let is_canary = canary.canary_service.as_deref() == Some(host.as_str())
            && status.stable_rs.as_deref() != Some(hash.as_str());
        let spec = rs.map_or(0, |rs| rs.spec_replicas);
        if aborted && is_canary && spec < need {
            out.push(violation(
                Invariant::AbortOrder,
                &name,
                format!(
                    "aborted: the canary ReplicaSet {hash} is scaled to {spec} while weight {weight} still goes to it"
                ),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rollout(name: &str, strategy: serde_json::Value, status: serde_json::Value) -> Rollout {
        serde_json::from_value(json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
            "metadata": {"name": name, "uid": format!("uid-{name}")},
            "spec": {"replicas": 4, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "a", "image": "a:1"}]}},
                     "strategy": strategy},
            "status": status,
        }))
        .unwrap()
    }

    fn rs(owner: &str, hash: &str, spec: i32, available: i32, template: &str) -> RsView {
        RsView {
            name: format!("{owner}-{hash}"),
            hash: hash.into(),
            owner_uid: Some(format!("uid-{owner}")),
            spec_replicas: spec,
            available,
            template: template.into(),
        }
    }

    fn up(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn kinds(v: &[Violation]) -> Vec<Invariant> {
        v.iter().map(|v| v.invariant).collect()
    }

    fn routed() -> serde_json::Value {
        json!({"canary": {"stableService": "s", "canaryService": "c",
            "trafficRouting": {"istio": {"virtualService": {"name": "vs", "routes": ["primary"]}}},
            "steps": [{"setWeight": 50}]}})
    }

    fn routed_snapshot(canary_spec: i32, canary_avail: i32, weight: i64, abort: bool) -> Snapshot {
        Snapshot {
            analysis_runs: vec![],
            rollouts: vec![rollout(
                "r",
                routed(),
                json!({"stableRS": "old", "currentPodHash": "new", "abort": abort}),
            )],
            replica_sets: vec![
                rs("r", "old", 4, 4, "v1"),
                rs("r", "new", canary_spec, canary_avail, "v2"),
            ],
            services: [
                ("s".to_string(), Some("old".to_string())),
                ("c".to_string(), Some("new".to_string())),
            ]
            .into_iter()
            .collect(),
            virtual_services: [(
                "vs".to_string(),
                vec![("s".to_string(), 100 - weight), ("c".to_string(), weight)],
            )]
            .into_iter()
            .collect(),
        }
    }

    #[test]
    fn a_healthy_canary_mid_update_breaks_nothing() {
        let snap = routed_snapshot(2, 2, 50, false);
        assert_eq!(check(&snap, &up(&["r"])), vec![]);
    }

    #[test]
    fn weight_to_a_canary_without_its_pods_is_a_traffic_violation() {
        let snap = routed_snapshot(2, 1, 50, false);
        assert_eq!(kinds(&check(&snap, &up(&["r"]))), vec![Invariant::Traffic]);
    }

    #[test]
    fn an_aborted_canary_scaled_down_before_the_weight_returns_breaks_the_abort_order() {
        let snap = routed_snapshot(0, 2, 50, true);
        assert_eq!(
            kinds(&check(&snap, &up(&["r"]))),
            vec![Invariant::AbortOrder]
        );
        // Weight back to stable first: nothing wrong.
        let snap = routed_snapshot(0, 0, 0, true);
        assert_eq!(check(&snap, &up(&["r"])), vec![]);
    }

    #[test]
    fn a_stable_scaled_to_zero_and_too_few_available_pods_are_reported() {
        let mut snap = routed_snapshot(4, 4, 0, false);
        snap.replica_sets[0].spec_replicas = 0;
        snap.replica_sets[0].available = 0;
        snap.replica_sets[1].available = 2;
        let v = kinds(&check(&snap, &up(&["r"])));
        assert!(v.contains(&Invariant::StableScaledToZero), "{v:?}");
        assert!(v.contains(&Invariant::Availability), "{v:?}");
        // Drained after the new ReplicaSet took every pod over: the end of a basic canary.
        let mut done = snap.clone();
        done.replica_sets[1].available = 4;
        assert_eq!(
            kinds(&check(&done, &up(&["r"]))),
            vec![Invariant::Traffic],
            "the stable Service still sends everything to the drained ReplicaSet"
        );
        done.services.insert("s".into(), Some("new".into()));
        assert_eq!(check(&done, &up(&["r"])), vec![]);
        // Not up yet: only the template check applies.
        assert_eq!(check(&snap, &up(&[])), vec![]);
    }

    #[test]
    fn two_replica_sets_with_one_template_are_reported_even_before_up() {
        let mut snap = routed_snapshot(2, 2, 0, false);
        snap.replica_sets[1].template = "v1".into();
        assert_eq!(
            kinds(&check(&snap, &up(&[]))),
            vec![Invariant::DuplicateTemplate]
        );
    }

    #[test]
    fn two_runs_of_one_step_running_at_once_are_reported_one_after_the_other_not() {
        let run = |name: &str, phase: &str| -> AnalysisRun {
            serde_json::from_value(json!({
                "apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisRun",
                "metadata": {"name": name, "labels": {HASH_LABEL: "h", "rollout-type": "Step", "step-index": "2"},
                    "ownerReferences": [{"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": "r", "uid": "u", "controller": true}]},
                "spec": {"metrics": []},
                "status": {"phase": phase},
            }))
            .unwrap()
        };
        let done_then_running = [run("r-h-2-2", "Failed"), run("r-h-2-2.1", "Running")];
        assert_eq!(runs_in_flight(&done_then_running), vec![]);
        let racing = [run("r-h-2-2", "Running"), run("r-h-2-2.1", "")];
        let v = runs_in_flight(&racing);
        assert_eq!(kinds(&v), vec![Invariant::DuplicateAnalysisRun]);
        assert_eq!(v[0].object, "r/h/Step/2");
    }

    #[test]
    fn a_basic_canary_above_max_surge_is_reported() {
        let strategy =
            json!({"canary": {"maxSurge": 1, "maxUnavailable": 0, "steps": [{"setWeight": 50}]}});
        let snap = Snapshot {
            rollouts: vec![rollout("b", strategy, json!({"stableRS": "old"}))],
            replica_sets: vec![rs("b", "old", 4, 4, "v1"), rs("b", "new", 1, 0, "v2")],
            ..Default::default()
        };
        assert_eq!(check(&snap, &up(&["b"])), vec![]);
        let mut over = snap.clone();
        over.replica_sets[1].spec_replicas = 2;
        assert_eq!(kinds(&check(&over, &up(&["b"]))), vec![Invariant::Surge]);
    }

    #[test]
    fn a_blue_green_active_service_on_an_unavailable_replica_set_is_reported() {
        let strategy = json!({"blueGreen": {"activeService": "act"}});
        let mut snap = Snapshot {
            rollouts: vec![rollout("g", strategy, json!({"stableRS": "old"}))],
            replica_sets: vec![rs("g", "old", 4, 4, "v1"), rs("g", "new", 4, 2, "v2")],
            services: [("act".to_string(), Some("old".to_string()))]
                .into_iter()
                .collect(),
            ..Default::default()
        };
        assert_eq!(check(&snap, &up(&["g"])), vec![]);
        snap.services.insert("act".into(), Some("new".into()));
        assert_eq!(kinds(&check(&snap, &up(&["g"]))), vec![Invariant::Traffic]);
    }
}
