//! A tiny in-memory cluster for the planner: effects are applied to ReplicaSets whose new
//! pods become available a round later (a round is one plan applied; pods scaled up in one
//! round are still unavailable after the next round's writes), the status is stored
//! back, and the clock only moves when asked. The planner's tests and `kubectl-rollouts plan`
//! (the offline timeline) both run the real planner against it. What differs from that
//! default (an image whose pods never become available) is a [`SimOptions`] field that only
//! tests set: the simulator never guesses from names.

use super::*;
use crate::api::consts::DEFAULT_ROLLOUT_UNIQUE_LABEL_KEY;
use crate::api::{Rollout, RolloutStatus};
use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetStatus};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube_core::ResourceExt;

/// Applies `Some` sets and `None` removals to a string map.
fn apply_changes(
    map: &mut Option<std::collections::BTreeMap<String, String>>,
    changes: &std::collections::BTreeMap<String, Option<String>>,
) {
    if changes.is_empty() {
        return;
    }
    let m = map.get_or_insert_with(Default::default);
    for (k, v) in changes {
        match v {
            Some(v) => m.insert(k.clone(), v.clone()),
            None => m.remove(k),
        };
    }
}

/// How the simulated pods behave beyond the default (every pod available a round after it
/// was scaled up, see [`World::apply`]). `kubectl-rollouts plan` uses the default.
#[derive(Clone, Debug, Default)]
pub struct SimOptions {
    /// Images (exactly as in the pod template) whose pods never become available, as a
    /// release that crash-loops.
    pub unavailable_images: std::collections::BTreeSet<String>,
}

/// The simulated world of one Rollout.
pub struct World {
    pub ro: Rollout,
    pub rss: Vec<ReplicaSet>,
    pub services: Vec<Service>,
    pub now: Timestamp,
    pub events: Vec<Event>,
    pub writes: usize,
    /// Traffic router objects (empty unless a test adds them); the planner's changes to them
    /// are applied here (merge patches, creates, deletes).
    pub traffic: crate::traffic::Objects,
    /// AnalysisRuns the planner created (their phase is set by the test or by `plan` users).
    pub runs: Vec<crate::api::AnalysisRun>,
    /// AnalysisTemplates of the namespace.
    pub templates: Vec<crate::api::AnalysisTemplate>,
    /// Experiments the planner created (their phase is set by the test or by `plan` users).
    pub experiments: Vec<crate::api::Experiment>,
    /// Pods a test adds (none by default). Shown to the planner only when the controller
    /// would list them ([`super::canary::needs_pods`]); ephemeral metadata changes apply.
    pub pods: Vec<k8s_openapi::api::core::v1::Pod>,
    /// The object a `workloadRef` names (none by default).
    pub workload: Option<serde_json::Value>,
    /// How pods behave (see [`SimOptions`]).
    pub options: SimOptions,
    /// Caps on available pods by pod-template hash ([`World::cap_available`]).
    caps: std::collections::BTreeMap<String, i32>,
    /// Each ReplicaSet's `spec.replicas` when the last round ended, and when the round
    /// before it ended (those pods become available in the next round).
    last_round: std::collections::BTreeMap<String, i32>,
    settled: std::collections::BTreeMap<String, i32>,
    created: i64,
}

/// A test Rollout `demo` with `replicas` and canary `steps` (JSON).
#[cfg(test)]
pub fn rollout(replicas: i32, steps: serde_json::Value) -> Rollout {
    let mut ro: Rollout = serde_json::from_value(serde_json::json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": "demo", "namespace": "ns", "uid": "uid-1", "generation": 1},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "demo"}},
            "template": {"metadata": {"labels": {"app": "demo"}},
                         "spec": {"containers": [{"name": "demo", "image": "demo:v1"}]}},
            "strategy": {"canary": {"steps": steps}}
        }
    }))
    .unwrap();
    ro.status = None;
    ro
}

impl World {
    /// A world holding `ro` and the Services its spec names, at a fixed time, with the
    /// default pod behaviour.
    pub fn new(ro: Rollout) -> World {
        World::with_options(ro, SimOptions::default())
    }

    /// [`World::new`] with pods behaving as `options` says.
    pub fn with_options(ro: Rollout, options: SimOptions) -> World {
        let services = super::service_names(&ro)
            .into_iter()
            .map(|name| Service {
                metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                    name: Some(name),
                    ..Default::default()
                },
                ..Default::default()
            })
            .collect();
        World {
            ro,
            rss: Vec::new(),
            services,
            now: Timestamp::from_second(1_800_000_000).unwrap_or(Timestamp::UNIX_EPOCH),
            events: Vec::new(),
            writes: 0,
            traffic: Default::default(),
            runs: Vec::new(),
            templates: Vec::new(),
            experiments: Vec::new(),
            pods: Vec::new(),
            workload: None,
            options,
            caps: Default::default(),
            last_round: Default::default(),
            settled: Default::default(),
            created: 0,
        }
    }

    /// What the planner would do now.
    pub fn plan(&self) -> Plan {
        let replica_sets: Vec<&ReplicaSet> = self.rss.iter().collect();
        let list_pods = super::needs_pods(&self.ro, &replica_sets, None, self.now);
        let obs = Observed {
            rollout: &self.ro,
            replica_sets,
            services: self.services.iter().map(|s| (s.name_any(), s)).collect(),
            adoptable: None,
            pods: list_pods.then(|| self.pods.iter().collect()),
            traffic_objects: self.traffic.clone(),
            analysis_runs: self.runs.iter().collect(),
            analysis_templates: self.templates.iter().map(|t| (t.name_any(), t)).collect(),
            cluster_analysis_templates: Default::default(),
            workload: self.workload.clone(),
            experiments: self.experiments.iter().collect(),
        };
        plan(&obs, self.now)
    }

    /// Whether the pods of `rs` can become available (their image is not one of
    /// [`SimOptions::unavailable_images`]).
    fn can_become_available(&self, rs: &ReplicaSet) -> bool {
        let image = rs
            .spec
            .as_ref()
            .and_then(|s| s.template.as_ref())
            .and_then(|t| t.spec.as_ref())
            .and_then(|s| s.containers.first()?.image.as_deref())
            .unwrap_or_default();
        !self.options.unavailable_images.contains(image)
    }

    /// The cap on the available pods of `rs` ([`World::cap_available`]; none by default).
    fn cap_of(&self, rs: &ReplicaSet) -> i32 {
        rs.labels()
            .get(DEFAULT_ROLLOUT_UNIQUE_LABEL_KEY)
            .and_then(|h| self.caps.get(h))
            .copied()
            .unwrap_or(i32::MAX)
    }

    /// The pods that existed when the round before last ended become available (up to the
    /// caps, unless their image never does); returns whether any did.
    fn mature_pods(&mut self) -> bool {
        let mut changed = false;
        for i in 0..self.rss.len() {
            let rs = &self.rss[i];
            if !self.can_become_available(rs) {
                continue;
            }
            let old = self.settled.get(&rs.name_any()).copied().unwrap_or(0);
            let spec = rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
            let target = spec.min(old).min(self.cap_of(rs));
            let st = self.rss[i].status.get_or_insert_with(Default::default);
            let was = st.available_replicas.unwrap_or(0);
            if target > was {
                changed = true;
                st.available_replicas = Some(target);
                st.ready_replicas = Some(target);
            }
        }
        changed
    }

    /// Whether some pods are still on their way to becoming available.
    fn pods_pending(&self) -> bool {
        self.rss.iter().any(|rs| {
            let spec = rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
            let available = rs
                .status
                .as_ref()
                .and_then(|s| s.available_replicas)
                .unwrap_or(0);
            self.can_become_available(rs) && available < spec.min(self.cap_of(rs))
        })
    }

    /// One round: the plan (computed from the world as the previous round left it) is
    /// applied, and the pods that existed before the previous round's writes become
    /// available. So pods scaled up in round N are unavailable to the plan of round N+1 and
    /// still after its writes (a plan that counts on them before they are available shows in
    /// the world), and available from round N+2. Returns whether anything changed or pods are
    /// still to become available.
    pub fn apply(&mut self, plan: Plan) -> bool {
        let mut wrote = self.mature_pods();
        for e in plan.effects {
            wrote = true;
            self.writes += 1;
            match e {
                Effect::CreateReplicaSet(rs) => {
                    let mut rs = *rs;
                    self.created += 1;
                    rs.metadata.creation_timestamp =
                        Timestamp::from_second(1_700_000_000 + self.created)
                            .ok()
                            .map(Time);
                    rs.metadata.uid = Some(format!("rs-uid-{}", self.created));
                    rs.metadata.generation = Some(1);
                    // Its pods start unavailable.
                    rs.status = Some(ReplicaSetStatus {
                        replicas: rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0),
                        ready_replicas: Some(0),
                        available_replicas: Some(0),
                        observed_generation: rs.metadata.generation,
                        ..Default::default()
                    });
                    self.rss.push(rs);
                }
                Effect::PatchReplicaSet { name, patch } => {
                    let Some(rs) = self.rss.iter_mut().find(|r| r.name_any() == name) else {
                        continue;
                    };
                    let was = rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
                    let was_avail = rs
                        .status
                        .as_ref()
                        .and_then(|s| s.available_replicas)
                        .unwrap_or(0);
                    if let Some(r) = patch.replicas {
                        rs.spec.get_or_insert_with(Default::default).replicas = Some(r);
                    }
                    if let Some(m) = patch.min_ready_seconds {
                        rs.spec
                            .get_or_insert_with(Default::default)
                            .min_ready_seconds = Some(m);
                    }
                    if let Some(a) = &patch.affinity {
                        let spec = rs.spec.get_or_insert_with(Default::default);
                        let pod = spec
                            .template
                            .get_or_insert_with(Default::default)
                            .spec
                            .get_or_insert_with(Default::default);
                        pod.affinity = serde_json::from_value(a.clone()).ok();
                    }
                    let ann = rs.metadata.annotations.get_or_insert_with(Default::default);
                    for (k, v) in patch.annotations {
                        match v {
                            Some(v) => ann.insert(k, v),
                            None => ann.remove(&k),
                        };
                    }
                    let now = rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
                    // Available pods stay available (unavailable ones go first on a scale
                    // down); new ones become available next round.
                    let good = if now <= was {
                        now.min(was_avail)
                    } else {
                        was_avail
                    };
                    rs.status = Some(ReplicaSetStatus {
                        replicas: now,
                        ready_replicas: Some(good),
                        available_replicas: Some(good),
                        observed_generation: rs.metadata.generation,
                        ..Default::default()
                    });
                }
                Effect::DeleteReplicaSet { name, .. } => self.rss.retain(|r| r.name_any() != name),
                Effect::SetServiceSelector { service, hash } => {
                    let Some(svc) = self.services.iter_mut().find(|s| s.name_any() == service)
                    else {
                        continue;
                    };
                    svc.spec
                        .get_or_insert_with(Default::default)
                        .selector
                        .get_or_insert_with(Default::default)
                        .insert(DEFAULT_ROLLOUT_UNIQUE_LABEL_KEY.into(), hash);
                    svc.metadata
                        .annotations
                        .get_or_insert_with(Default::default)
                        .insert(
                            crate::api::consts::MANAGED_BY_ROLLOUTS_KEY.into(),
                            self.ro.name_any(),
                        );
                }
                Effect::EvictPod { .. } => {}
                Effect::SetWorkloadGeneration { generation } => {
                    self.ro
                        .metadata
                        .annotations
                        .get_or_insert_with(Default::default)
                        .insert(
                            crate::api::consts::WORKLOAD_GENERATION_ANNOTATION.into(),
                            generation,
                        );
                }
                Effect::ScaleWorkload(crate::traffic::ObjectChange::Patch { patch, .. }) => {
                    if let (Some(w), Some(r)) =
                        (self.workload.as_mut(), patch.pointer("/spec/replicas"))
                    {
                        w["spec"]["replicas"] = r.clone();
                    }
                }
                Effect::ScaleWorkload(_) => {}
                Effect::EphemeralMetadata {
                    replica_set,
                    template,
                    pods,
                    record,
                } => {
                    for (name, change) in pods {
                        if let Some(p) = self.pods.iter_mut().find(|p| p.name_any() == name) {
                            apply_changes(&mut p.metadata.labels, &change.labels);
                            apply_changes(&mut p.metadata.annotations, &change.annotations);
                        }
                    }
                    let Some(rs) = self.rss.iter_mut().find(|r| r.name_any() == replica_set) else {
                        continue;
                    };
                    let meta = super::replicasets::template_metadata_mut(rs);
                    apply_changes(&mut meta.labels, &template.labels);
                    apply_changes(&mut meta.annotations, &template.annotations);
                    if let Some(rec) = record {
                        let key = crate::api::consts::EPHEMERAL_METADATA_ANNOTATION.to_string();
                        apply_changes(&mut rs.metadata.annotations, &[(key, rec)].into());
                    }
                }
                Effect::Traffic(change) => apply_traffic(&mut self.traffic, change),
                Effect::CreateAnalysisRun(run) => {
                    let mut run = *run;
                    self.created += 1;
                    run.metadata.creation_timestamp =
                        Timestamp::from_second(1_700_000_000 + self.created)
                            .ok()
                            .map(Time);
                    if !self.runs.iter().any(|r| r.name_any() == run.name_any()) {
                        self.runs.push(run);
                    }
                }
                Effect::TerminateAnalysisRun { name } => {
                    if let Some(r) = self.runs.iter_mut().find(|r| r.name_any() == name) {
                        r.spec.terminate = Some(true);
                    }
                }
                Effect::DeleteAnalysisRun { name } => self.runs.retain(|r| r.name_any() != name),
                Effect::CreateExperiment(ex) => {
                    let mut ex = *ex;
                    self.created += 1;
                    ex.metadata.creation_timestamp =
                        Timestamp::from_second(1_700_000_000 + self.created)
                            .ok()
                            .map(Time);
                    if !self
                        .experiments
                        .iter()
                        .any(|e| e.name_any() == ex.name_any())
                    {
                        self.experiments.push(ex);
                    }
                }
                Effect::TerminateExperiment { name } => {
                    if let Some(e) = self.experiments.iter_mut().find(|e| e.name_any() == name) {
                        e.spec.terminate = Some(true);
                    }
                }
                Effect::DeleteExperiment { name } => {
                    self.experiments.retain(|e| e.name_any() != name)
                }
                Effect::SetRolloutRevision { revision } => {
                    self.ro
                        .metadata
                        .annotations
                        .get_or_insert_with(Default::default)
                        .insert(crate::api::consts::REVISION_ANNOTATION.into(), revision);
                }
            }
        }
        if self.ro.status.clone().unwrap_or_default() != plan.status {
            wrote = true;
            self.writes += 1;
            self.ro.status = Some(plan.status);
        }
        self.events.extend(plan.events);
        self.settled = std::mem::replace(
            &mut self.last_round,
            self.rss
                .iter()
                .map(|rs| {
                    let spec = rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
                    (rs.name_any(), spec)
                })
                .collect(),
        );
        wrote || self.pods_pending()
    }

    /// Plans and applies until nothing is written; returns the number of rounds, or `None`
    /// when there is no fixpoint within 100 rounds (a planner bug: plans must converge).
    pub fn try_settle(&mut self) -> Option<usize> {
        for round in 0..100 {
            let plan = self.plan();
            if !self.apply(plan) {
                return Some(round);
            }
        }
        None
    }

    /// [`World::try_settle`] for tests: panics without a fixpoint.
    #[cfg(test)]
    pub fn settle(&mut self) -> usize {
        self.try_settle()
            .unwrap_or_else(|| panic!("no fixpoint after 100 rounds: status {:#?}", self.ro.status))
    }

    /// Caps the available pods of the ReplicaSet with pod-template hash `hash` at `most` (some
    /// of its pods never become available), now and in later rounds.
    pub fn cap_available(&mut self, hash: &str, most: i32) {
        self.caps.insert(hash.to_string(), most);
        for rs in &mut self.rss {
            let is = rs
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(DEFAULT_ROLLOUT_UNIQUE_LABEL_KEY))
                .is_some_and(|h| h == hash);
            if let (true, Some(st)) = (is, rs.status.as_mut()) {
                for n in [&mut st.available_replicas, &mut st.ready_replicas] {
                    *n = Some(n.unwrap_or(0).min(most));
                }
            }
        }
    }

    /// Lifts every [`World::cap_available`]: the pods that were failing recover (become
    /// available in the next rounds).
    pub fn lift_caps(&mut self) {
        self.caps.clear();
    }

    /// The Rollout's status (default when unset).
    pub fn status(&self) -> RolloutStatus {
        self.ro.status.clone().unwrap_or_default()
    }

    /// Changes the first container's image (a new revision), as `set image` does.
    pub fn set_image(&mut self, image: &str) {
        let containers = &mut self
            .ro
            .spec
            .template
            .get_or_insert_with(Default::default)
            .spec
            .get_or_insert_with(Default::default)
            .containers;
        if containers.is_empty() {
            containers.push(Default::default());
        }
        containers[0].image = Some(image.into());
        self.ro.metadata.generation = Some(self.ro.metadata.generation.unwrap_or(1) + 1);
    }

    /// The available pods of all ReplicaSets.
    pub fn available_pods(&self) -> i32 {
        self.rss
            .iter()
            .map(|r| {
                r.status
                    .as_ref()
                    .and_then(|s| s.available_replicas)
                    .unwrap_or(0)
            })
            .sum()
    }

    /// The pods all ReplicaSets ask for (`spec.replicas`, summed).
    pub fn total_pods(&self) -> i32 {
        self.rss
            .iter()
            .map(|r| r.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0))
            .sum()
    }

    /// (canary available, stable available) by the status' hashes.
    pub fn counts(&self) -> (i32, i32) {
        let st = self.status();
        let of = |h: Option<&str>| {
            self.rss
                .iter()
                .find(|rs| {
                    rs.labels()
                        .get(DEFAULT_ROLLOUT_UNIQUE_LABEL_KEY)
                        .map(String::as_str)
                        == h
                })
                .and_then(|rs| rs.status.as_ref()?.available_replicas)
                .unwrap_or(0)
        };
        let current = st.current_pod_hash.as_deref();
        let stable = st.stable_rs.as_deref();
        (of(current), if current == stable { 0 } else { of(stable) })
    }

    /// `spec.replicas` of the ReplicaSet with this hash (-1 when there is none).
    pub fn spec_of(&self, hash: &str) -> i32 {
        self.rss
            .iter()
            .find(|rs| {
                rs.labels()
                    .get(DEFAULT_ROLLOUT_UNIQUE_LABEL_KEY)
                    .map(String::as_str)
                    == Some(hash)
            })
            .and_then(|rs| rs.spec.as_ref()?.replicas)
            .unwrap_or(-1)
    }

    /// `promote`: clears the pause conditions.
    pub fn promote(&mut self) {
        if let Some(st) = self.ro.status.as_mut() {
            st.pause_conditions = None;
        }
    }

    /// Moves the clock forward.
    pub fn advance(&mut self, secs: i64) {
        self.now =
            Timestamp::from_second(self.now.as_second().saturating_add(secs)).unwrap_or(self.now);
    }

    /// Whether an event with this reason was recorded.
    pub fn has_event(&self, reason: &str) -> bool {
        self.events.iter().any(|e| e.reason == reason)
    }

    /// (status, reason) of a condition; empty strings when absent.
    pub fn condition(&self, kind: &str) -> (String, String) {
        let st = self.status();
        conditions::get(&st, kind)
            .map(|c| {
                (
                    c.status.clone().unwrap_or_default(),
                    c.reason.clone().unwrap_or_default(),
                )
            })
            .unwrap_or_default()
    }
}

/// Applies a router object change to the simulated objects (RFC 7386 merge patches).
fn apply_traffic(objects: &mut crate::traffic::Objects, change: crate::traffic::ObjectChange) {
    use crate::traffic::ObjectChange;
    fn merge(target: &mut serde_json::Value, patch: &serde_json::Value) {
        match (target, patch) {
            (serde_json::Value::Object(t), serde_json::Value::Object(p)) => {
                for (k, v) in p {
                    if v.is_null() {
                        t.remove(k);
                    } else if v.is_object() {
                        let slot = t.entry(k.clone()).or_insert_with(|| serde_json::json!({}));
                        if !slot.is_object() {
                            *slot = serde_json::json!({});
                        }
                        merge(slot, v);
                    } else {
                        t.insert(k.clone(), v.clone());
                    }
                }
            }
            (t, p) => *t = p.clone(),
        }
    }
    match change {
        ObjectChange::Create { key, object } => {
            objects.insert(key, object);
        }
        ObjectChange::Patch { key, patch } => {
            if let Some(obj) = objects.get_mut(&key) {
                merge(obj, &patch);
            }
        }
        ObjectChange::Delete { key } => {
            objects.remove(&key);
        }
    }
}

impl World {
    /// Sets the phase (and message) of the AnalysisRun whose name starts with `prefix`, as the
    /// AnalysisRun controller would. Returns whether one was found.
    pub fn set_run_phase(&mut self, prefix: &str, phase: &str, message: &str) -> bool {
        let Some(r) = self
            .runs
            .iter_mut()
            .rev()
            .find(|r| r.name_any().starts_with(prefix))
        else {
            return false;
        };
        let st = r.status.get_or_insert_with(Default::default);
        st.phase = Some(phase.to_string());
        st.message = (!message.is_empty()).then(|| message.to_string());
        true
    }
}

impl World {
    /// Sets the phase (and message) of the newest Experiment whose name starts with `prefix`,
    /// as the Experiment controller would. Returns whether one was found.
    pub fn set_experiment_phase(&mut self, prefix: &str, phase: &str, message: &str) -> bool {
        let Some(e) = self
            .experiments
            .iter_mut()
            .rev()
            .find(|e| e.name_any().starts_with(prefix))
        else {
            return false;
        };
        let st = e.status.get_or_insert_with(Default::default);
        st.phase = Some(phase.to_string());
        st.message = (!message.is_empty()).then(|| message.to_string());
        true
    }

    /// Completes every unfinished, unterminated Experiment as Successful (the offline `plan`
    /// assumes experiments pass) and returns how long the longest would take (its
    /// `duration`; 0 without one). `None` when there was nothing to complete.
    pub fn finish_pending_experiments(&mut self) -> Option<i64> {
        let mut longest: Option<i64> = None;
        for e in &mut self.experiments {
            let done = e
                .status
                .as_ref()
                .and_then(|s| s.phase.as_deref())
                .is_some_and(crate::api::analysis_phase::is_completed);
            if done || e.spec.terminate == Some(true) {
                continue;
            }
            let took = e
                .spec
                .duration
                .as_deref()
                .and_then(crate::api::parse_go_duration)
                .map_or(0, |ns| (ns / 1_000_000_000) as i64);
            e.status.get_or_insert_with(Default::default).phase =
                Some(crate::api::analysis_phase::SUCCESSFUL.to_string());
            longest = Some(longest.map_or(took, |l| l.max(took)));
        }
        longest
    }
}

impl World {
    /// Adds a stand-in AnalysisTemplate for every template the Rollout references that the
    /// world does not have (the offline `plan` assumes analyses pass).
    pub fn assume_templates(&mut self) {
        let mut refs: Vec<String> = Vec::new();
        let mut collect = |a: Option<&crate::api::RolloutAnalysis>| {
            for t in a.and_then(|a| a.templates.as_ref()).into_iter().flatten() {
                if t.cluster_scope != Some(true) {
                    refs.extend(t.template_name.clone());
                }
            }
        };
        for s in self.ro.canary_steps() {
            collect(s.analysis.as_ref());
        }
        if let Some(c) = self.ro.canary() {
            collect(c.analysis.as_ref().map(|b| &b.analysis));
        }
        if let Some(b) = self.ro.blue_green() {
            collect(b.pre_promotion_analysis.as_ref());
            collect(b.post_promotion_analysis.as_ref());
        }
        for name in refs {
            if self.templates.iter().any(|t| t.name_any() == name) {
                continue;
            }
            let t: Result<crate::api::AnalysisTemplate, _> = serde_json::from_value(
                serde_json::json!({
                    "apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisTemplate",
                    "metadata": {"name": name, "namespace": self.ro.namespace().unwrap_or_default()},
                    "spec": {"metrics": [{"name": "assumed", "provider": {"web": {"url": "http://assumed"}}}]}
                }),
            );
            if let Ok(t) = t {
                self.templates.push(t);
            }
        }
    }

    /// Completes every unfinished, bounded AnalysisRun as Successful (background runs keep
    /// going) and returns how long the longest would take: per metric `initialDelay` plus
    /// `interval × (count - 1)`. `None` when there was nothing to complete.
    pub fn finish_pending_runs(&mut self) -> Option<i64> {
        let mut longest: Option<i64> = None;
        for r in &mut self.runs {
            let done = r
                .status
                .as_ref()
                .and_then(|s| s.phase.as_deref())
                .is_some_and(crate::api::analysis_phase::is_completed);
            let background = r
                .labels()
                .get(crate::api::consts::ROLLOUT_TYPE_LABEL)
                .map(String::as_str)
                == Some(crate::api::consts::ROLLOUT_TYPE_BACKGROUND_RUN_LABEL);
            if done || background || r.spec.terminate == Some(true) {
                continue;
            }
            let secs = |d: Option<&String>| {
                d.and_then(|d| crate::api::parse_go_duration(d))
                    .map_or(0, |ns| (ns / 1_000_000_000) as i64)
            };
            let took = r
                .spec
                .metrics
                .iter()
                .flatten()
                .map(|m| {
                    let count = match &m.count {
                        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(c)) => {
                            i64::from(*c)
                        }
                        _ => 1,
                    };
                    secs(m.initial_delay.as_ref()) + secs(m.interval.as_ref()) * (count - 1).max(0)
                })
                .max()
                .unwrap_or(0);
            r.status.get_or_insert_with(Default::default).phase =
                Some(crate::api::analysis_phase::SUCCESSFUL.to_string());
            longest = Some(longest.map_or(took, |l| l.max(took)));
        }
        longest
    }
}
