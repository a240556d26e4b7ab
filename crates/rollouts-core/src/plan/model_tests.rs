//! Model-based randomized tests of the planner (`proptest`): random valid Rollouts, random
//! sequences of what happens to them (pods becoming ready or failing, the user's commands, new
//! images in the middle of an update, analysis outcomes, clock jumps, a controller killed in
//! the middle of its writes), run in the simulated world ([`super::simulate`]) one round (one
//! plan applied) at a time, with the invariants below checked after every round.
//!
//! Invariants (each is checked where upstream Argo Rollouts guarantees it; where upstream does
//! not, by design, the exception is written next to the check):
//!
//! - **availability**: once the first version is up, a plan never takes the available pods
//!   below `replicas - maxUnavailable` (the world may: a test fails pods; then the plan must not
//!   make it worse);
//! - **surge**: a basic canary never asks for more than `replicas + maxSurge` pods;
//! - **traffic**: a Service carrying traffic is pointed at a ReplicaSet only when it is
//!   available, and a router weight rises only towards available pods;
//! - **stable kept**: the stable ReplicaSet is never scaled to 0 while it is stable;
//! - **unique templates**: never two ReplicaSets with one pod template;
//! - **traffic order**: no ReplicaSet is scaled below the pods its traffic weight needs at that
//!   point of the plan (after an abort: weights go back to the stable before the canary goes);
//! - **user commands**: the controller never undoes `abort`, `promoteFull` or `promote`;
//! - **determinism and fixpoint**: the same world plans the same; a settled world plans no
//!   effect and the same status; settling takes fewer than 100 rounds;
//! - **liveness**: once events stop (failed pods recover, analyses finish, time passes), every
//!   Rollout ends Healthy, Degraded or Paused (waiting for the user).
//!
//! `cargo test` runs a fixed number of cases (`PROPTEST_CASES`, default below) and prints how
//! many it explored; `cargo xtask fuzz --minutes N` runs batches for a time budget
//! (`ROLLOUTS_FUZZ_SECONDS`). A failing case is shrunk and its seed saved in
//! `crates/rollouts-core/proptest-regressions/plan/model_tests.txt` (replayed first on every
//! run; check it in with the fix); each bug found so far has an explicit regression test at
//! the end of this file, built from the shrunk case.

use super::simulate::{World, rollout};
use super::tests::{svc_hash, template, vs_weights, with_vs};
use super::*;
use crate::api::consts::{DEFAULT_ROLLOUT_UNIQUE_LABEL_KEY, REVISION_ANNOTATION};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube_core::ResourceExt;
use proptest::prelude::*;
use proptest::test_runner::{FileFailurePersistence, TestCaseError, TestError, TestRunner};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Cases `cargo test` explores when `PROPTEST_CASES` is unset.
const DEFAULT_CASES: u32 = 40;

// ---------------------------------------------------------------------------------------------
// The random Rollouts.

#[derive(Clone, Debug)]
enum CanaryScale {
    Replicas(i32),
    Weight(i32),
    MatchTrafficWeight,
}

#[derive(Clone, Debug)]
enum Step {
    SetWeight(i32),
    Pause(Option<i32>),
    Analysis,
    SetCanaryScale(CanaryScale),
}

#[derive(Clone, Debug)]
struct CanaryCfg {
    traffic: bool,
    steps: Option<Vec<Step>>,
    dynamic_stable_scale: bool,
    background_analysis: Option<i32>,
    abort_scale_down_delay: Option<i32>,
}

#[derive(Clone, Debug)]
struct BlueGreenCfg {
    auto_promotion: bool,
    auto_promotion_seconds: Option<i32>,
    preview_replica_count: Option<i32>,
    pre_analysis: bool,
    post_analysis: bool,
    scale_down_delay: Option<i32>,
    abort_scale_down_delay: Option<i32>,
}

#[derive(Clone, Debug)]
enum StrategyCfg {
    Canary(CanaryCfg),
    BlueGreen(BlueGreenCfg),
}

#[derive(Clone, Debug)]
struct Config {
    replicas: i32,
    max_surge: Option<IntOrString>,
    max_unavailable: Option<IntOrString>,
    progress_deadline_abort: bool,
    strategy: StrategyCfg,
}

fn analysis_ref() -> Value {
    json!({"templates": [{"templateName": "success-rate"}]})
}

impl Step {
    fn json(&self) -> Value {
        match self {
            Step::SetWeight(w) => json!({"setWeight": w}),
            Step::Pause(None) => json!({"pause": {}}),
            Step::Pause(Some(d)) => json!({"pause": {"duration": d}}),
            Step::Analysis => json!({"analysis": analysis_ref()}),
            Step::SetCanaryScale(CanaryScale::Replicas(r)) => {
                json!({"setCanaryScale": {"replicas": r}})
            }
            Step::SetCanaryScale(CanaryScale::Weight(w)) => {
                json!({"setCanaryScale": {"weight": w}})
            }
            Step::SetCanaryScale(CanaryScale::MatchTrafficWeight) => {
                json!({"setCanaryScale": {"matchTrafficWeight": true}})
            }
        }
    }
}

impl Config {
    fn rollout(&self) -> Rollout {
        let strategy = match &self.strategy {
            StrategyCfg::Canary(c) => {
                let mut s = json!({});
                if let Some(steps) = &c.steps {
                    s["steps"] = Value::Array(steps.iter().map(Step::json).collect());
                }
                if c.traffic {
                    s["canaryService"] = json!("canary");
                    s["stableService"] = json!("stable");
                    s["trafficRouting"] =
                        json!({"istio": {"virtualService": {"name": "vs", "routes": ["primary"]}}});
                }
                if c.dynamic_stable_scale {
                    s["dynamicStableScale"] = json!(true);
                }
                if let Some(start) = c.background_analysis {
                    let mut a = analysis_ref();
                    a["startingStep"] = json!(start);
                    s["analysis"] = a;
                }
                if let Some(d) = c.abort_scale_down_delay {
                    s["abortScaleDownDelaySeconds"] = json!(d);
                }
                if let Some(v) = &self.max_surge {
                    s["maxSurge"] = serde_json::to_value(v).unwrap_or_default();
                }
                if let Some(v) = &self.max_unavailable {
                    s["maxUnavailable"] = serde_json::to_value(v).unwrap_or_default();
                }
                json!({"canary": s})
            }
            StrategyCfg::BlueGreen(b) => {
                let mut s = json!({"activeService": "active", "previewService": "preview",
                                   "autoPromotionEnabled": b.auto_promotion});
                if let Some(v) = b.auto_promotion_seconds {
                    s["autoPromotionSeconds"] = json!(v);
                }
                if let Some(v) = b.preview_replica_count {
                    s["previewReplicaCount"] = json!(v);
                }
                if b.pre_analysis {
                    s["prePromotionAnalysis"] = analysis_ref();
                }
                if b.post_analysis {
                    s["postPromotionAnalysis"] = analysis_ref();
                }
                if let Some(v) = b.scale_down_delay {
                    s["scaleDownDelaySeconds"] = json!(v);
                }
                if let Some(v) = b.abort_scale_down_delay {
                    s["abortScaleDownDelaySeconds"] = json!(v);
                }
                json!({"blueGreen": s})
            }
        };
        let mut ro = rollout(self.replicas, json!(null));
        ro.spec.strategy = Some(serde_json::from_value(strategy).expect("a valid strategy"));
        ro.spec.progress_deadline_seconds = Some(60);
        ro.spec.progress_deadline_abort = Some(self.progress_deadline_abort);
        ro
    }

    fn canary(&self) -> Option<&CanaryCfg> {
        match &self.strategy {
            StrategyCfg::Canary(c) => Some(c),
            StrategyCfg::BlueGreen(_) => None,
        }
    }

    /// Some step has a `setCanaryScale` (the canary's pods do not follow its weight there).
    fn decoupled(&self) -> bool {
        self.canary().is_some_and(|c| {
            c.steps
                .iter()
                .flatten()
                .any(|s| matches!(s, Step::SetCanaryScale(_)))
        })
    }

    fn traffic(&self) -> bool {
        self.canary().is_some_and(|c| c.traffic)
    }

    fn surge_and_unavailable(
        &self,
    ) -> (
        Option<replicas::IntOrPercent>,
        Option<replicas::IntOrPercent>,
    ) {
        (
            replicas::int_or_percent(self.max_surge.as_ref()),
            replicas::int_or_percent(self.max_unavailable.as_ref()),
        )
    }
}

fn int_or_percent() -> impl Strategy<Value = Option<IntOrString>> {
    prop_oneof![
        Just(None),
        (0..=3i32).prop_map(|i| Some(IntOrString::Int(i))),
        prop::sample::select(vec![0, 10, 25, 50, 100])
            .prop_map(|p| Some(IntOrString::String(format!("{p}%")))),
    ]
}

fn step(traffic: bool) -> BoxedStrategy<Step> {
    let weight = prop_oneof![
        prop::sample::select(vec![0, 10, 20, 25, 50, 75, 100]),
        0..=100i32
    ];
    let basic = prop_oneof![
        3 => weight.prop_map(Step::SetWeight),
        2 => Just(Step::Pause(None)),
        2 => (0..=30i32).prop_map(|d| Step::Pause(Some(d))),
        1 => Just(Step::Analysis),
    ];
    if !traffic {
        return basic.boxed();
    }
    prop_oneof![
        4 => basic,
        1 => prop_oneof![
            (0..=6i32).prop_map(CanaryScale::Replicas),
            (0..=100i32).prop_map(CanaryScale::Weight),
            Just(CanaryScale::MatchTrafficWeight),
        ]
        .prop_map(Step::SetCanaryScale),
    ]
    .boxed()
}

fn canary_cfg() -> impl Strategy<Value = CanaryCfg> {
    any::<bool>().prop_flat_map(|traffic| {
        (
            prop::option::weighted(0.9, prop::collection::vec(step(traffic), 0..6)),
            any::<bool>(),
            prop::option::weighted(0.2, 0..3i32),
            prop::option::weighted(0.3, prop::sample::select(vec![0, 5, 30])),
        )
            .prop_map(move |(steps, dynamic, background, abort_delay)| CanaryCfg {
                traffic,
                steps,
                dynamic_stable_scale: traffic && dynamic,
                background_analysis: background,
                abort_scale_down_delay: abort_delay.filter(|_| traffic),
            })
    })
}

fn blue_green_cfg() -> impl Strategy<Value = BlueGreenCfg> {
    (
        any::<bool>(),
        prop::option::weighted(0.3, prop::sample::select(vec![5, 30])),
        prop::option::weighted(0.3, 1..=3i32),
        any::<bool>(),
        any::<bool>(),
        prop::option::weighted(0.3, prop::sample::select(vec![0, 5, 30])),
        prop::option::weighted(0.3, prop::sample::select(vec![0, 5, 30])),
    )
        .prop_map(
            |(auto, secs, preview, pre, post, delay, abort_delay)| BlueGreenCfg {
                auto_promotion: auto,
                auto_promotion_seconds: secs,
                preview_replica_count: preview,
                pre_analysis: pre,
                post_analysis: post,
                scale_down_delay: delay,
                abort_scale_down_delay: abort_delay,
            },
        )
}

fn config() -> impl Strategy<Value = Config> {
    (
        1..=6i32,
        int_or_percent(),
        int_or_percent(),
        any::<bool>(),
        prop_oneof![
            3 => canary_cfg().prop_map(StrategyCfg::Canary),
            2 => blue_green_cfg().prop_map(StrategyCfg::BlueGreen),
        ],
    )
        .prop_map(|(replicas, surge, unavailable, abort, strategy)| {
            let mut c = Config {
                replicas,
                max_surge: surge,
                max_unavailable: unavailable,
                progress_deadline_abort: abort,
                strategy,
            };
            if matches!(c.strategy, StrategyCfg::BlueGreen(_)) {
                // maxSurge is a canary field; blue-green's maxUnavailable is only read by
                // restarts, which these tests do not run.
                c.max_surge = None;
                c.max_unavailable = None;
            }
            // Both resolving to 0 is invalid (upstream's validation).
            let zero = |v: &Option<IntOrString>| match v {
                Some(IntOrString::Int(0)) => true,
                Some(IntOrString::String(s)) => s == "0%",
                _ => false,
            };
            if zero(&c.max_surge) && zero(&c.max_unavailable) {
                c.max_unavailable = Some(IntOrString::Int(1));
            }
            c
        })
}

// ---------------------------------------------------------------------------------------------
// The events.

#[derive(Clone, Debug)]
enum Ev {
    /// The controller runs this many rounds.
    Rounds(u8),
    /// The controller runs until nothing changes.
    Settle,
    /// `set image` (v1..v4: a new revision, or one seen before).
    Image(u8),
    /// `set image` to an image whose pods never become available.
    BadImage(u8),
    /// `undo`: the previous revision's template.
    Undo,
    Promote,
    PromoteFull,
    Abort,
    Retry,
    /// `pause` (`spec.paused`).
    Pause,
    /// The newest unfinished AnalysisRun gets this phase.
    Analysis(&'static str),
    /// The clock jumps.
    Clock(i64),
    /// Only this many pods of the canary (or stable) ReplicaSet stay available.
    FailPods {
        canary: bool,
        keep: i32,
    },
    /// The controller is killed after the first `n` writes of its next plan (modulo their
    /// number); the status write and the events are lost. The planner keeps no memory besides
    /// the API objects, so its "restart" is exactly this: the next plan sees only the objects.
    Crash(u8),
}

fn event() -> impl Strategy<Value = Ev> {
    use crate::api::analysis_phase as phase;
    prop_oneof![
        4 => (1..=3u8).prop_map(Ev::Rounds),
        4 => Just(Ev::Settle),
        3 => (1..=4u8).prop_map(Ev::Image),
        1 => (1..=2u8).prop_map(Ev::BadImage),
        1 => Just(Ev::Undo),
        3 => Just(Ev::Promote),
        1 => Just(Ev::PromoteFull),
        1 => Just(Ev::Abort),
        1 => Just(Ev::Retry),
        1 => Just(Ev::Pause),
        3 => prop::sample::select(vec![
            phase::RUNNING, phase::SUCCESSFUL, phase::SUCCESSFUL, phase::FAILED, phase::ERROR,
            phase::INCONCLUSIVE,
        ])
        .prop_map(Ev::Analysis),
        2 => prop::sample::select(vec![1i64, 5, 10, 31, 61, 600, 3600]).prop_map(Ev::Clock),
        1 => (any::<bool>(), 0..=3i32).prop_map(|(canary, keep)| Ev::FailPods { canary, keep }),
        2 => any::<u8>().prop_map(Ev::Crash),
    ]
}

// ---------------------------------------------------------------------------------------------
// The model.

/// What a round saw before the plan was applied.
struct Before {
    status: RolloutStatus,
    available: i32,
    /// (spec.replicas, available) by pod-template hash.
    rs: BTreeMap<String, (i32, i32)>,
    /// The hashes of the ReplicaSets whose `scale-down-deadline` has passed.
    deadline_passed: Vec<String>,
    /// (canary, stable) router weights (traffic-routed canaries).
    weights: Option<(i64, i64)>,
    /// Hash each Service selects.
    services: BTreeMap<String, Option<String>>,
}

struct Model {
    cfg: Config,
    w: World,
    /// The first version is up (the availability floor applies from then on).
    up: bool,
    /// The pause-condition reasons the user's last `promote` removed, with the step index and
    /// pod hash they were at (checked in the next round).
    promoted: Option<(Vec<String>, Option<i32>, Option<String>)>,
    /// The step index the user's last `promote` moved to (no pause condition was set).
    stepped: Option<(i32, Option<String>)>,
    rounds: u64,
    /// Print every round (a test replaying a case to look at it).
    trace: bool,
    /// User commands so far: a step may be judged again only after one (a retry, a promotion
    /// past an inconclusive run, a new image...).
    commands: u32,
    /// Every run seen: its name, what it judges (kind, step, pod hash) and `commands` when it
    /// appeared.
    judged: BTreeMap<String, (String, u32)>,
}

type Check = Result<(), TestCaseError>;

fn fail(msg: String) -> Check {
    Err(TestCaseError::fail(msg))
}

/// The effects in short (for failure messages).
fn short(effects: &[Effect]) -> Vec<String> {
    effects
        .iter()
        .map(|e| match e {
            Effect::CreateReplicaSet(rs) => format!(
                "create {} x{}",
                rs.name_any(),
                rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0)
            ),
            Effect::PatchReplicaSet { name, patch } => {
                format!("patch {name} {:?} {:?}", patch.replicas, patch.annotations)
            }
            Effect::Traffic(crate::traffic::ObjectChange::Patch { patch, .. }) => {
                format!("traffic {patch}")
            }
            other => format!("{other:?}").chars().take(120).collect(),
        })
        .collect()
}

fn hash_of(rs: &k8s_openapi::api::apps::v1::ReplicaSet) -> String {
    rs.labels()
        .get(DEFAULT_ROLLOUT_UNIQUE_LABEL_KEY)
        .cloned()
        .unwrap_or_default()
}

impl Model {
    fn new(cfg: Config) -> Model {
        let mut w = World::new(cfg.rollout());
        w.templates.push(template("success-rate"));
        if cfg.traffic() {
            with_vs(&mut w);
        }
        Model {
            cfg,
            w,
            up: false,
            promoted: None,
            stepped: None,
            rounds: 0,
            trace: false,
            commands: 0,
            judged: BTreeMap::new(),
        }
    }

    /// No step judged twice: a run that appears must not judge what a run that appeared
    /// since the user's last command judges (a controller that lost track of its own run, e.g.
    /// killed between creating it and recording it, and created another), unless that run
    /// ended Inconclusive.
    fn check_runs(&mut self) -> Check {
        for r in &self.w.runs {
            if self.judged.contains_key(&r.name_any()) {
                continue;
            }
            let labels = r.labels();
            let label = |k: &str| labels.get(k).cloned().unwrap_or_default();
            let what = format!(
                "{} {} {}",
                label("rollout-type"),
                label("step-index"),
                label(DEFAULT_ROLLOUT_UNIQUE_LABEL_KEY)
            );
            // An Inconclusive run is replaced without a command where upstream does so: a
            // background run while the Rollout is paused by the controller
            // (`needsNewAnalysisRun`).
            let inconclusive = |name: &str| {
                self.w.runs.iter().any(|o| {
                    o.name_any() == name
                        && o.status.as_ref().and_then(|s| s.phase.as_deref())
                            == Some(crate::api::analysis_phase::INCONCLUSIVE)
                })
            };
            let twice = self
                .judged
                .iter()
                .find(|(n, (w, at))| *w == what && *at == self.commands && !inconclusive(n));
            if let Some((other, _)) = twice {
                return fail(format!(
                    "{what} judged twice with no user command between: {other} and {} ({})",
                    r.name_any(),
                    self.summary()
                ));
            }
            self.judged.insert(r.name_any(), (what, self.commands));
        }
        Ok(())
    }

    /// The status and ReplicaSets in one line (for failure messages).
    fn summary(&self) -> String {
        let st = self.w.status();
        let pauses: Vec<_> = st
            .pause_conditions
            .iter()
            .flatten()
            .filter_map(|c| c.reason.clone())
            .collect();
        let rss: Vec<String> = self
            .w
            .rss
            .iter()
            .map(|rs| {
                let spec = rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
                let avail = rs.status.as_ref().and_then(|s| s.available_replicas);
                format!("{}={spec}/{}", hash_of(rs), avail.unwrap_or(0))
            })
            .collect();
        format!(
            "phase {:?} ({:?}), step {:?}, stable {:?}, current {:?}, abort {:?}, promoteFull {:?}, \
             pauses {pauses:?}, paused {:?}, weights {:?}, ReplicaSets (spec/available) {rss:?}, \
             runs {:?}",
            st.phase,
            st.message,
            st.current_step_index,
            st.stable_rs,
            st.current_pod_hash,
            st.abort,
            st.promote_full,
            self.w.ro.spec.paused,
            self.cfg.traffic().then(|| vs_weights(&self.w)),
            self.w
                .runs
                .iter()
                .map(|r| (
                    r.name_any(),
                    r.status.as_ref().and_then(|s| s.phase.clone())
                ))
                .collect::<Vec<_>>()
        )
    }

    fn before(&self) -> Before {
        let rs = self
            .w
            .rss
            .iter()
            .map(|rs| {
                let spec = rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
                let avail = rs
                    .status
                    .as_ref()
                    .and_then(|s| s.available_replicas)
                    .unwrap_or(0);
                (hash_of(rs), (spec, avail))
            })
            .collect();
        let services = self
            .w
            .services
            .iter()
            .map(|s| (s.name_any(), svc_hash(&self.w, &s.name_any())))
            .collect();
        let deadline_passed = self
            .w
            .rss
            .iter()
            .filter(|rs| {
                rs.annotations()
                    .get(crate::api::consts::DEFAULT_REPLICASET_SCALE_DOWN_DEADLINE_ANNOTATION_KEY)
                    .and_then(|d| d.parse::<Timestamp>().ok())
                    .is_some_and(|d| d <= self.w.now)
            })
            .map(hash_of)
            .collect();
        Before {
            deadline_passed,
            status: self.w.status(),
            available: self.w.available_pods(),
            rs,
            weights: self.cfg.traffic().then(|| vs_weights(&self.w)),
            services,
        }
    }

    /// The pods a basic canary at its current step wants on the stable to be 0 (a weight of
    /// 100, or no steps: a rolling update), or a dynamically scaled stable whose weight is 0.
    fn stable_may_be_zero(&self, st: &RolloutStatus) -> bool {
        let Some(c) = self.cfg.canary() else {
            return false;
        };
        if c.traffic {
            // dynamicStableScale: the stable's pods follow its weight (upstream, by design).
            return c.dynamic_stable_scale
                && st
                    .canary
                    .as_ref()
                    .and_then(|c| c.weights.as_ref())
                    .and_then(|w| w.stable.as_ref()?.weight)
                    == Some(0);
        }
        // A basic canary splits the pods by the step's weight: at 100% the stable has none.
        let steps = c.steps.clone().unwrap_or_default();
        let idx = st.current_step_index.unwrap_or(0).max(0) as usize;
        let weight = steps
            .iter()
            .take(idx + 1)
            .filter_map(|s| match s {
                Step::SetWeight(w) => Some(*w),
                _ => None,
            })
            .next_back();
        // The split is upstream's (`desired_canary_and_stable_replicas`): a single replica with
        // no surge puts its one pod on the canary for any weight above 0.
        let (surge, _) = self.cfg.surge_and_unavailable();
        let surge = replicas::max_surge(self.cfg.replicas, surge);
        let split = replicas::desired_canary_and_stable_replicas(
            self.cfg.replicas,
            weight.unwrap_or(0),
            surge,
        );
        steps.is_empty() || idx >= steps.len() || split.stable == 0 || st.promote_full == Some(true)
    }

    /// The checks on a plan before it is applied (against the world it was computed from).
    fn check_plan(&self, b: &Before, plan: &Plan) -> Check {
        // Traffic: a Service carrying traffic is switched only to available pods.
        let traffic_services: Vec<&str> = match &self.cfg.strategy {
            // Upstream's blue-green switches the active Service only to a fully available
            // ReplicaSet (`areTargetsVerified`, `IsReplicaSetAvailable`).
            StrategyCfg::BlueGreen(_) => vec!["active"],
            // Upstream's canary switches its Services to a ReplicaSet with at least one available
            // pod (`ensureSVCTargets(..., checkRsAvailability)`: `IsReplicaSetPartiallyAvailable`).
            StrategyCfg::Canary(_) => vec!["stable", "canary"],
        };
        for e in &plan.effects {
            let Effect::SetServiceSelector { service, hash } = e else {
                continue;
            };
            if !traffic_services.contains(&service.as_str()) {
                continue;
            }
            if b.services.get(service).cloned().flatten().as_deref() == Some(hash.as_str()) {
                continue;
            }
            let (spec, avail) = b.rs.get(hash).copied().unwrap_or((0, 0));
            let ok = match &self.cfg.strategy {
                StrategyCfg::BlueGreen(_) => {
                    avail >= self.cfg.replicas.min(spec.max(1)) && avail > 0
                }
                StrategyCfg::Canary(_) => avail > 0,
            };
            if !ok {
                return fail(format!(
                    "Service {service} switched to {hash} with {avail} of {spec} pods available"
                ));
            }
        }
        // The stable is never scaled to 0 (nor deleted) while it stays stable.
        if let Some(stable) = plan.status.stable_rs.as_deref()
            && b.status.stable_rs.as_deref() == Some(stable)
            && b.rs.get(stable).is_some_and(|r| r.0 > 0)
        {
            let suffix = format!("-{stable}");
            for e in &plan.effects {
                let to_zero = match e {
                    Effect::PatchReplicaSet { name, patch } => {
                        name.ends_with(&suffix) && patch.replicas == Some(0)
                    }
                    Effect::DeleteReplicaSet { name, .. } => name.ends_with(&suffix),
                    _ => false,
                };
                if to_zero && !self.stable_may_be_zero(&plan.status) {
                    return fail(format!(
                        "stable ReplicaSet {stable} scaled to 0 while stable: {:?}; {}",
                        short(&plan.effects),
                        self.summary()
                    ));
                }
            }
        }
        // Traffic order: the canary keeps the pods its weight needs at each point of the plan
        // (after an abort: weights go back to the stable before the canary is scaled down).
        // Not while a `setCanaryScale` step decouples the canary's pods from its weight: the
        // user asked for that count (upstream and here), except after an abort (then the
        // canary scale applies only with `abortScaleDownDelaySeconds: 0`, and the weight is
        // already 0).
        let aborted = plan.status.abort == Some(true);
        let decoupled = self.cfg.decoupled();
        // The same holds for the stable: a ReplicaSet is never scaled below the pods its
        // weight needs at that point of the plan (dynamicStableScale shrinks the stable only
        // once traffic has left it).
        if let Some((before_canary, before_stable)) = b.weights {
            // The hash each Service selects at this point of the plan.
            let mut hosts = [
                (
                    "canary",
                    b.services.get("canary").cloned().flatten(),
                    before_canary,
                ),
                (
                    "stable",
                    b.services.get("stable").cloned().flatten(),
                    before_stable,
                ),
            ];
            let mut traffic_seen = false;
            for e in &plan.effects {
                let (name, r) = match e {
                    Effect::Traffic(_) => {
                        traffic_seen = true;
                        continue;
                    }
                    Effect::SetServiceSelector { service, hash } => {
                        for (host, h, _) in &mut hosts {
                            if *host == service.as_str() {
                                *h = Some(hash.clone());
                            }
                        }
                        continue;
                    }
                    Effect::PatchReplicaSet { name, patch } => match patch.replicas {
                        Some(r) => (name, r),
                        None => continue,
                    },
                    _ => continue,
                };
                for (host, hash, before) in &hosts {
                    let Some(h) = hash else { continue };
                    if !name.ends_with(&format!("-{h}"))
                        || (*host == "canary" && decoupled && !aborted)
                    {
                        continue;
                    }
                    // Scaling down to the available pods (upstream's clean-up of unhealthy
                    // replicas) takes no serving pod away.
                    let (spec, avail) = b.rs.get(h).copied().unwrap_or((0, 0));
                    if r >= spec || r >= avail {
                        continue;
                    }
                    let weight = match (traffic_seen, self.after_weights(plan)) {
                        (true, Some((c, s))) => {
                            if *host == "canary" {
                                c
                            } else {
                                s
                            }
                        }
                        _ => *before,
                    };
                    let need =
                        replicas::traffic_weight_to_replicas(self.cfg.replicas, weight as i32, 100);
                    if r < need {
                        return fail(format!(
                            "{host} {h} scaled to {r} while its weight is {weight}% \
                             (needs {need} pods): {:?}",
                            short(&plan.effects)
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// The router weights after `plan` (`None`: no router).
    fn after_weights(&self, plan: &Plan) -> Option<(i64, i64)> {
        if !self.cfg.traffic() {
            return None;
        }
        let mut w = World::new(self.w.ro.clone());
        w.traffic = self.w.traffic.clone();
        w.apply(Plan {
            effects: plan
                .effects
                .iter()
                .filter(|e| matches!(e, Effect::Traffic(_)))
                .cloned()
                .collect(),
            ..Default::default()
        });
        Some(vs_weights(&w))
    }

    /// The checks on the world after a plan (or part of one) was applied.
    fn check_world(&self, b: &Before, plan: &Plan) -> Check {
        let st = self.w.status();
        let replicas = self.cfg.replicas;
        // Unique templates.
        let mut templates: Vec<(String, Value)> = Vec::new();
        for rs in &self.w.rss {
            let mut t = serde_json::to_value(rs.spec.as_ref().and_then(|s| s.template.clone()))
                .unwrap_or_default();
            if let Some(labels) = t
                .pointer_mut("/metadata/labels")
                .and_then(Value::as_object_mut)
            {
                labels.remove(DEFAULT_ROLLOUT_UNIQUE_LABEL_KEY);
            }
            let h = hash_of(rs);
            if let Some((other, _)) = templates.iter().find(|(o, ot)| *o == h || *ot == t) {
                return fail(format!(
                    "two ReplicaSets with one template: {other} and {h}"
                ));
            }
            templates.push((h, t));
        }
        let (surge, unavailable) = self.cfg.surge_and_unavailable();
        // Availability. With dynamicStableScale the stable's pods follow its weight too
        // (upstream, by design): the floor does not apply; the plan check (no ReplicaSet below
        // the pods its weight needs) does.
        let dynamic = self.cfg.canary().is_some_and(|c| c.dynamic_stable_scale);
        if self.up && !dynamic {
            let floor = match &self.cfg.strategy {
                StrategyCfg::Canary(_) => {
                    replicas - replicas::max_unavailable(replicas, surge, unavailable)
                }
                // Blue-green never scales a serving ReplicaSet down before another is fully
                // available (its maxUnavailable is for restarts only).
                StrategyCfg::BlueGreen(_) => replicas,
            };
            // Upstream's scale-down delays are timers, not health checks: once a
            // `scale-down-deadline` passes (the previous stable or active after a promotion,
            // the canary or preview after an abort), that ReplicaSet goes to 0 whatever the
            // availability of the serving one now is (it was fully available when traffic
            // moved to it; pods failing since then are the world's doing). Its pods are left
            // out of the floor.
            //
            // A traffic-routed canary sends traffic by weight, not by pods: upstream scales its
            // other ReplicaSets (the canary as its weight or `setCanaryScale` say, an
            // intermediate V2 once the canary Service left it) without the maxUnavailable
            // budget, since no traffic goes to those pods (`scaleDownOldReplicaSetsForCanary`).
            // Pods leaving a ReplicaSet that is not the stable are left out of the floor; the
            // traffic checks bound what serves (a weight rises only towards available pods, a
            // canary keeps the pods its weight needs, the stable those its weight needs).
            //
            // Blue-green: only the pods the active Service selects serve; a preview superseded by
            // a newer revision goes at once (upstream, by design), whatever its availability.
            let extra = self.cfg.traffic();
            let stable = st.stable_rs.clone().unwrap_or_default();
            let active = b.services.get("active").cloned().flatten();
            let blue_green = matches!(self.cfg.strategy, StrategyCfg::BlueGreen(_));
            let exempt: i32 =
                b.rs.keys()
                    .filter(|h| {
                        b.deadline_passed.contains(h)
                            || (extra && **h != stable)
                            || (blue_green && active.as_ref() != Some(*h))
                    })
                    .map(|h| {
                        let was = b.rs.get(h).map_or(0, |r| r.1);
                        let now = self
                            .w
                            .rss
                            .iter()
                            .find(|rs| hash_of(rs) == *h)
                            .and_then(|rs| rs.status.as_ref()?.available_replicas)
                            .unwrap_or(0);
                        (was - now).max(0)
                    })
                    .sum();
            let now = self.w.available_pods() + exempt;
            if now < floor.min(b.available) {
                return fail(format!(
                    "available pods fell from {} to {now} (floor {floor}); effects {:?}",
                    b.available,
                    short(&plan.effects)
                ));
            }
        }
        // A traffic-routed canary without dynamicStableScale never shrinks its stable.
        if self
            .cfg
            .canary()
            .is_some_and(|c| c.traffic && !c.dynamic_stable_scale)
            && let Some(stable) = st.stable_rs.as_deref()
            && b.status.stable_rs == st.stable_rs
            && b.rs.get(stable).is_some_and(|r| r.0 >= replicas)
            && self.w.spec_of(stable) < replicas
        {
            return fail(format!("stable {stable} shrunk: {}", self.summary()));
        }
        // Surge: upstream bounds the pods of a basic canary (no traffic routing, where the
        // canary's pods come on top of a full stable by design, nor blue-green, where two
        // full ReplicaSets run by design).
        if self.cfg.canary().is_some_and(|c| !c.traffic) {
            let most = replicas + replicas::max_surge(replicas, surge);
            let total = self.w.total_pods();
            if total > most {
                return fail(format!(
                    "{total} pods asked for, more than {replicas} + maxSurge = {most}"
                ));
            }
        }
        // The step index stays within the steps.
        let steps = self.w.ro.canary_steps().len() as i32;
        if steps > 0 && st.current_step_index.unwrap_or(0) > steps {
            return fail(format!("step index past the last step: {}", self.summary()));
        }
        // The stable ReplicaSet exists while it is stable.
        if let Some(stable) = st.stable_rs.as_deref()
            && self.w.spec_of(stable) < 0
        {
            return fail(format!(
                "stable ReplicaSet {stable} deleted: {}",
                self.summary()
            ));
        }
        // Router weights rise only towards available pods.
        if let (Some((c0, s0)), Some((c1, s1))) =
            (b.weights, self.cfg.traffic().then(|| vs_weights(&self.w)))
        {
            if c1 > c0 {
                // Upstream moves the weight once the canary is at its step's count and available
                // (`AtDesiredReplicaCountsForCanary`). The weight goes to the pods the canary
                // Service selects: the new ReplicaSet's, or while a dynamically scaled stable
                // is rolled back to, the previous canary's.
                let h = svc_hash(&self.w, "canary")
                    .or_else(|| st.current_pod_hash.clone())
                    .unwrap_or_default();
                let (_, avail) = b.rs.get(&h).copied().unwrap_or((0, 0));
                let spec = self.w.spec_of(&h);
                // A full promotion with dynamicStableScale moves the weight as the canary's pods
                // become available (upstream, by design): the weight is then bounded by the
                // share those pods can serve.
                let dynamic = self.cfg.canary().is_some_and(|c| c.dynamic_stable_scale);
                // Otherwise the canary has the available pods the weight needs (rounded up, as
                // upstream counts a step's canary pods), or, where a `setCanaryScale` step sets
                // its count on purpose, that count.
                let need = replicas::traffic_weight_to_replicas(replicas, c1 as i32, 100);
                let ok = if dynamic && b.status.promote_full == Some(true) {
                    c1 * i64::from(replicas) <= 100 * i64::from(avail)
                } else {
                    avail >= need || (self.cfg.decoupled() && avail >= spec && avail > 0)
                };
                if !ok {
                    return fail(format!(
                        "canary weight {c0} -> {c1} with {avail} of {spec} canary pods available"
                    ));
                }
            }
            if s1 > s0 && self.cfg.canary().is_some_and(|c| c.dynamic_stable_scale) {
                // With dynamicStableScale, traffic goes back to the stable only as its pods are
                // available (upstream's `checkReplicasAvailable`): the pods a weight needs are
                // rounded down, as upstream does (99% of 2 pods needs 1).
                let h = b.status.stable_rs.clone().unwrap_or_default();
                let (_, avail) = b.rs.get(&h).copied().unwrap_or((0, 0));
                let needs = s1 * i64::from(replicas) / 100;
                if needs > i64::from(avail) && Some(&h) == st.stable_rs.as_ref() {
                    return fail(format!(
                        "stable weight {s0} -> {s1} with {avail} of {replicas} stable pods available"
                    ));
                }
            }
        }
        self.check_user_commands(b, &st)
    }

    /// The controller never undoes a user's command.
    fn check_user_commands(&self, b: &Before, st: &RolloutStatus) -> Check {
        let old = &b.status;
        let new_revision = old.current_pod_hash != st.current_pod_hash;
        let completed = st.stable_rs.is_some() && st.stable_rs == st.current_pod_hash;
        if old.abort == Some(true) && st.abort != Some(true) {
            // Upstream clears an abort on a new revision, a full promotion asked for, or once
            // the Rollout is fully promoted (a rollback to the stable).
            if !(new_revision || completed || old.promote_full == Some(true)) {
                return fail(format!("abort undone: {}", self.summary()));
            }
        }
        if old.promote_full == Some(true)
            && st.promote_full != Some(true)
            && !(new_revision || completed)
        {
            return fail(format!("promoteFull undone: {}", self.summary()));
        }
        if let Some((reasons, idx, hash)) = &self.promoted
            && st.current_step_index == *idx
            && st.current_pod_hash == *hash
        {
            for c in st.pause_conditions.iter().flatten() {
                if c.reason.as_ref().is_some_and(|r| reasons.contains(r)) {
                    return fail(format!(
                        "promote undone: pause condition {:?} is back at step {idx:?}",
                        c.reason
                    ));
                }
            }
        }
        // (An index past the last step means "all done": the planner writes the step count.)
        let steps = self.w.ro.canary_steps().len() as i32;
        if let Some((idx, hash)) = &self.stepped
            && st.current_pod_hash == *hash
            && st.abort != Some(true)
            && st.current_step_index.unwrap_or(0) < (*idx).min(steps)
        {
            return fail(format!(
                "promote undone: step {idx} went back to {:?}",
                st.current_step_index
            ));
        }
        Ok(())
    }

    /// One round: plan, checks, apply, checks.
    fn round(&mut self) -> Result<bool, TestCaseError> {
        let b = self.before();
        let plan = self.w.plan();
        if plan != self.w.plan() {
            return Err(TestCaseError::fail("the same world planned differently"));
        }
        self.check_plan(&b, &plan)?;
        if self.trace {
            println!("  plan {:?}", short(&plan.effects));
        }
        let changed = self.w.apply(plan.clone());
        if self.trace {
            println!("  -> {}", self.summary());
        }
        self.rounds += 1;
        self.check_world(&b, &plan)?;
        self.check_runs()?;
        self.promoted = None;
        self.stepped = None;
        Ok(changed)
    }

    /// Rounds until nothing changes (a fixpoint), then checks the fixpoint.
    fn settle(&mut self) -> Check {
        for _ in 0..100 {
            if !self.round()? {
                let plan = self.w.plan();
                if !plan.effects.is_empty() || plan.status != self.w.status() {
                    return fail(format!(
                        "not a fixpoint: effects {:?}, {} -> {:?}",
                        short(&plan.effects),
                        self.summary(),
                        plan.status
                    ));
                }
                return Ok(());
            }
        }
        fail(format!("no fixpoint after 100 rounds: {}", self.summary()))
    }

    fn revision(rs: &k8s_openapi::api::apps::v1::ReplicaSet) -> i64 {
        rs.annotations()
            .get(REVISION_ANNOTATION)
            .and_then(|r| r.parse().ok())
            .unwrap_or(0)
    }

    fn image_of(rs: &k8s_openapi::api::apps::v1::ReplicaSet) -> Option<String> {
        crate::api::first_image(rs.spec.as_ref()?.template.as_ref()).map(str::to_string)
    }

    fn bump_generation(&mut self) {
        self.w.ro.metadata.generation = Some(self.w.ro.metadata.generation.unwrap_or(1) + 1);
    }

    /// The user's `promote`, as `kubectl-rollouts promote` writes it (`src/cli/actions.rs`).
    fn promote(&mut self) {
        let st = self.w.status();
        if st.pause_conditions.as_ref().is_some_and(|p| !p.is_empty()) {
            let reasons = st
                .pause_conditions
                .iter()
                .flatten()
                .filter_map(|c| c.reason.clone())
                .collect();
            self.promoted = Some((reasons, st.current_step_index, st.current_pod_hash.clone()));
            self.w.promote();
        } else if self.w.ro.canary().is_some() && !self.w.ro.canary_steps().is_empty() {
            let steps = self.w.ro.canary_steps().len() as i32;
            let mut idx = st.current_step_index.unwrap_or(0);
            if idx < steps {
                idx += 1;
            }
            if let Some(s) = self.w.ro.status.as_mut() {
                s.pause_conditions = None;
                s.current_step_index = Some(idx);
            }
            self.stepped = Some((idx, st.current_pod_hash.clone()));
        }
        if self.w.ro.spec.paused == Some(true) {
            self.w.ro.spec.paused = Some(false);
            self.bump_generation();
        }
    }

    fn event(&mut self, e: &Ev) -> Check {
        use crate::api::analysis_phase::is_completed;
        if self.trace {
            println!("{e:?}");
        }
        if matches!(
            e,
            Ev::Image(_)
                | Ev::BadImage(_)
                | Ev::Undo
                | Ev::Promote
                | Ev::PromoteFull
                | Ev::Abort
                | Ev::Retry
                | Ev::Pause
        ) {
            self.commands += 1;
        }
        match e {
            Ev::Rounds(n) => {
                for _ in 0..*n {
                    self.round()?;
                }
            }
            Ev::Settle => self.settle()?,
            Ev::Image(v) => self.w.set_image(&format!("demo:v{v}")),
            Ev::BadImage(v) => {
                let image = format!("demo:bad{v}");
                self.w.options.unavailable_images.insert(image.clone());
                self.w.set_image(&image);
            }
            Ev::Undo => {
                let current = self.w.status().current_pod_hash.unwrap_or_default();
                let Some(cur) = self.w.rss.iter().find(|r| hash_of(r) == current) else {
                    return Ok(());
                };
                let rev = Self::revision(cur);
                let previous = self
                    .w
                    .rss
                    .iter()
                    .filter(|r| Self::revision(r) < rev)
                    .max_by_key(|r| Self::revision(r))
                    .and_then(Self::image_of);
                if let Some(image) = previous {
                    self.w.set_image(&image);
                }
            }
            Ev::Promote => self.promote(),
            Ev::PromoteFull => {
                if let Some(s) = self.w.ro.status.as_mut()
                    && !s.is_fully_promoted()
                {
                    s.promote_full = Some(true);
                }
            }
            Ev::Abort => {
                if let Some(s) = self.w.ro.status.as_mut() {
                    s.abort = Some(true);
                }
            }
            Ev::Retry => {
                if let Some(s) = self.w.ro.status.as_mut() {
                    s.abort = Some(false);
                }
            }
            Ev::Pause => {
                self.w.ro.spec.paused = Some(true);
                self.bump_generation();
            }
            Ev::Analysis(phase) => {
                if let Some(r) = self.w.runs.iter_mut().rev().find(|r| {
                    !r.status
                        .as_ref()
                        .and_then(|s| s.phase.as_deref())
                        .is_some_and(is_completed)
                }) {
                    let st = r.status.get_or_insert_with(Default::default);
                    st.phase = Some(phase.to_string());
                    st.message = Some(format!("the test says {phase}"));
                }
            }
            Ev::Clock(secs) => self.w.advance(*secs),
            Ev::FailPods { canary, keep } => {
                let st = self.w.status();
                let hash = if *canary {
                    st.current_pod_hash
                } else {
                    st.stable_rs
                };
                if let Some(h) = hash {
                    self.w.cap_available(&h, *keep);
                }
            }
            Ev::Crash(n) => {
                let b = self.before();
                let plan = self.w.plan();
                let k = usize::from(*n) % (plan.effects.len() + 1);
                if self.trace {
                    println!("  crash after {k} of {:?}", short(&plan.effects));
                }
                let partial = Plan {
                    effects: plan.effects[..k].to_vec(),
                    status: self.w.status(),
                    ..Default::default()
                };
                self.w.apply(partial.clone());
                self.rounds += 1;
                self.check_world(&b, &partial)?;
                self.check_runs()?;
            }
        }
        Ok(())
    }

    /// Once events stop: failed pods recover (a ReplicaSet whose pods stay down keeps its
    /// Rollout Progressing, as upstream: that is the world's state, not the controller's),
    /// analyses finish, time passes; every Rollout must end Healthy, Degraded or Paused
    /// (waiting for the user), at a fixpoint. Images that never come up stay down: their
    /// Rollouts must end Degraded (progress deadline).
    fn liveness(&mut self) -> Check {
        self.w.lift_caps();
        for _ in 0..20 {
            self.settle()?;
            let phase = self.w.status().phase.unwrap_or_default();
            let plan = self.w.plan();
            let waiting_for_user = phase == "Paused" && plan.requeue_after.is_none();
            let mut finished = self.w.finish_pending_runs();
            // The AnalysisRun controller ends a terminated run (Successful, "Run Terminated",
            // as upstream's does when no measurement failed).
            for r in &mut self.w.runs {
                let st = r.status.get_or_insert_with(Default::default);
                let done = st
                    .phase
                    .as_deref()
                    .is_some_and(crate::api::analysis_phase::is_completed);
                if r.spec.terminate == Some(true) && !done {
                    st.phase = Some(crate::api::analysis_phase::SUCCESSFUL.into());
                    st.message = Some("Run Terminated".into());
                    finished = Some(0);
                }
            }
            if (phase == "Healthy" || phase == "Degraded" || waiting_for_user) && finished.is_none()
            {
                return Ok(());
            }
            let secs = plan
                .requeue_after
                .map_or(600, |d| d.as_secs().max(1) as i64);
            self.w.advance(secs);
        }
        fail(format!(
            "no terminal phase once events stopped: {}",
            self.summary()
        ))
    }
}

/// One case: the Rollout is deployed, the events happen, then liveness.
fn run_case(cfg: &Config, events: &[Ev]) -> Check {
    let ro = cfg.rollout();
    let errs = validate::validate_rollout(&ro);
    prop_assert!(
        errs.is_empty(),
        "the generator made an invalid Rollout: {errs:?}"
    );
    let mut m = Model::new(cfg.clone());
    m.settle()?;
    let phase = m.w.status().phase.unwrap_or_default();
    prop_assert_eq!(phase.as_str(), "Healthy", "first deploy: {}", m.summary());
    m.up = true;
    for e in events {
        m.event(e)?;
    }
    m.liveness()
}

fn case() -> impl Strategy<Value = (Config, Vec<Ev>)> {
    (config(), prop::collection::vec(event(), 0..16))
}

/// Runs `cases` cases (the failure persistence file first); returns (cases run, failure).
fn run_batch(cases: u32) -> (u32, Option<String>) {
    let config = ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::SourceParallel(
            "proptest-regressions",
        ))),
        source_file: Some(file!()),
        max_shrink_iters: 1000,
        ..ProptestConfig::default()
    };
    let mut runner = TestRunner::new(config);
    let result = runner.run(&case(), |(cfg, events)| run_case(&cfg, &events));
    match result {
        Ok(()) => (cases, None),
        Err(TestError::Fail(why, (cfg, events))) => (
            cases,
            Some(format!("{why}\nminimal case: {cfg:?}\nevents: {events:?}")),
        ),
        Err(TestError::Abort(why)) => (cases, Some(format!("aborted: {why}"))),
    }
}

/// The property test: `PROPTEST_CASES` cases (default [`DEFAULT_CASES`]), or batches for
/// `ROLLOUTS_FUZZ_SECONDS` seconds (`cargo xtask fuzz`).
#[test]
#[allow(clippy::disallowed_methods)] // the test's budget: the environment and the wall clock
fn planner_model_invariants() {
    let budget = std::env::var("ROLLOUTS_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok());
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_CASES);
    let start = std::time::Instant::now();
    let mut explored = 0u64;
    let mut failures = Vec::new();
    loop {
        let (n, failure) = run_batch(cases);
        explored += u64::from(n);
        failures.extend(failure);
        let more = budget.is_some_and(|b| start.elapsed().as_secs() < b);
        if !more || !failures.is_empty() {
            break;
        }
    }
    println!(
        "planner model: {explored} cases explored in {:.1}s, {} invariant violations",
        start.elapsed().as_secs_f64(),
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

// ---------------------------------------------------------------------------------------------
// Regression tests: the bugs the model found, shrunk, as explicit cases.

fn traffic_canary(replicas: i32, steps: Option<Vec<Step>>) -> Config {
    Config {
        replicas,
        max_surge: None,
        max_unavailable: None,
        progress_deadline_abort: false,
        strategy: StrategyCfg::Canary(CanaryCfg {
            traffic: true,
            steps,
            dynamic_stable_scale: false,
            background_analysis: None,
            abort_scale_down_delay: None,
        }),
    }
}

/// Found by the model: `abort` on a fully promoted traffic-routed canary. The new ReplicaSet is
/// the stable one; the abort scale-down delay annotated it (as a canary to scale down) and the
/// stable's clean-up removed the annotation again, forever (no fixpoint: a ReplicaSet write
/// every reconcile). Upstream's `removeScaleDownDeadlines` and `reconcileNewReplicaSet` do the
/// same; here an abort never delays the scale-down of a new ReplicaSet that is the stable.
#[test]
fn abort_of_a_fully_promoted_traffic_routed_canary_keeps_the_stable() {
    let mut m = Model::new(traffic_canary(1, None));
    m.settle().unwrap();
    m.up = true;
    m.event(&Ev::Abort).unwrap();
    m.settle().unwrap();
    let stable = m.w.status().stable_rs.unwrap();
    m.round().unwrap();
    m.w.advance(31);
    m.settle().unwrap();
    assert_eq!(m.w.spec_of(&stable), 1, "{}", m.summary());
    assert_eq!(m.w.status().phase.as_deref(), Some("Degraded"));
}
/// A traffic-routed canary with the model's checks on, deployed and up.
fn up(cfg: Config) -> Model {
    let mut m = Model::new(cfg);
    m.settle().unwrap();
    m.up = true;
    m
}

/// Applies `events` in order, then checks liveness.
fn replay(m: &mut Model, events: &[Ev]) {
    for e in events {
        m.event(e).unwrap();
    }
    m.liveness().unwrap();
}

/// Asserts the Rollout's phase.
fn assert_phase(m: &Model, phase: &str) {
    assert_eq!(
        m.w.status().phase.as_deref(),
        Some(phase),
        "{}",
        m.summary()
    );
}

fn dynamic(mut cfg: Config) -> Config {
    if let StrategyCfg::Canary(c) = &mut cfg.strategy {
        c.dynamic_stable_scale = true;
    }
    cfg
}

/// Found by the model: with dynamicStableScale, the first reconcile of a new revision recorded
/// no traffic weights (the routers are not touched then), and the next one, reading none,
/// scaled the stable to the pods of "100% to the canary", i.e. to 0, while the router still
/// sent it all the traffic. The weights are now carried over, and unknown weights keep a
/// dynamically scaled stable at full size.
#[test]
fn dynamic_stable_keeps_its_pods_on_a_new_revision() {
    let mut m = up(dynamic(traffic_canary(1, None)));
    let stable = m.w.status().stable_rs.unwrap();
    m.event(&Ev::Image(2)).unwrap();
    m.round().unwrap();
    assert!(m.w.status().canary.and_then(|c| c.weights).is_some());
    m.round().unwrap();
    assert_eq!(m.w.spec_of(&stable), 1, "{}", m.summary());
    m.settle().unwrap();
    assert_phase(&m, "Healthy");
}

/// Found by the model: a step that lowers the weight (50%, then 0%) scaled the canary down in
/// the same reconcile, while the router still sent it 50% of the traffic (upstream does the
/// same). The canary now keeps the pods its recorded weight needs until the weight has moved.
#[test]
fn lowering_the_weight_moves_traffic_before_the_canary_pods() {
    let steps = vec![
        Step::SetWeight(50),
        Step::Pause(None),
        Step::SetWeight(0),
        Step::Pause(None),
    ];
    for cfg in [
        traffic_canary(2, Some(steps.clone())),
        dynamic(traffic_canary(2, Some(steps))),
    ] {
        let mut m = up(cfg);
        m.event(&Ev::Image(2)).unwrap();
        m.settle().unwrap();
        assert_eq!(vs_weights(&m.w), (50, 50));
        let canary = m.w.status().current_pod_hash.unwrap();
        m.event(&Ev::Promote).unwrap();
        let b = m.before();
        let plan = m.w.plan();
        m.check_plan(&b, &plan).unwrap();
        assert!(
            m.w.spec_of(&canary) > 0,
            "scaled down with 50% of the traffic: {}",
            m.summary()
        );
        m.settle().unwrap();
        assert_eq!(vs_weights(&m.w), (0, 100), "{}", m.summary());
        assert_eq!(m.w.spec_of(&canary), 0, "{}", m.summary());
        assert_eq!(m.w.status().current_step_index, Some(3));
    }
}

/// Found by the model: a new revision (V3) in the middle of an update was created while the
/// canary Service still selected V2 (with 34% of the traffic); V2 was scaled down at once,
/// since the status' traffic weights and the Services were not looked at (upstream's
/// `isReplicaSetReferenced` looks at both).
#[test]
fn an_intermediate_revision_keeps_its_pods_while_the_canary_service_selects_it() {
    let mut cfg = traffic_canary(3, Some(vec![Step::SetWeight(34), Step::Pause(None)]));
    cfg.max_unavailable = Some(IntOrString::String("0%".into()));
    let mut m = up(cfg);
    m.event(&Ev::Image(2)).unwrap();
    m.settle().unwrap();
    let v2 = m.w.status().current_pod_hash.unwrap();
    assert_eq!(svc_hash(&m.w, "canary").as_deref(), Some(v2.as_str()));
    m.event(&Ev::Image(3)).unwrap();
    for _ in 0..3 {
        m.round().unwrap();
        if svc_hash(&m.w, "canary").as_deref() == Some(v2.as_str()) {
            assert_eq!(m.w.spec_of(&v2), 2, "{}", m.summary());
        }
    }
    m.settle().unwrap();
    assert_phase(&m, "Paused");
}

/// Found by the model: the progress deadline aborted a new revision whose pods never came up,
/// with dynamicStableScale and a stable whose pods had failed too. With no weights recorded
/// (see above), the abort computed "the stable can take 0%" and sent 100% of the traffic to
/// the canary, which had no available pod, and scaled it down in the same reconcile.
#[test]
fn an_abort_never_moves_traffic_to_the_canary() {
    let mut cfg = dynamic(traffic_canary(1, None));
    cfg.progress_deadline_abort = true;
    let mut m = up(cfg);
    m.event(&Ev::FailPods {
        canary: false,
        keep: 0,
    })
    .unwrap();
    m.event(&Ev::BadImage(1)).unwrap();
    m.settle().unwrap();
    m.event(&Ev::Clock(61)).unwrap();
    m.settle().unwrap();
    assert_eq!(m.w.status().abort, Some(true), "{}", m.summary());
    assert_eq!(vs_weights(&m.w), (0, 100), "{}", m.summary());
}
/// Found by the model: with dynamicStableScale, a canary left without pods (a `setCanaryScale`
/// of 0 replicas, then the end of the steps) had its weight moved back to the stable, and in
/// the same reconcile the stable was scaled to what the previously recorded weight (50%)
/// needed: all the traffic on half the pods. The counts now also cover the weights the plan
/// sets.
#[test]
fn dynamic_stable_keeps_the_pods_of_the_weight_the_plan_moves_to_it() {
    let steps = vec![
        Step::SetWeight(50),
        Step::SetCanaryScale(CanaryScale::Weight(51)),
        Step::SetWeight(0),
        Step::SetCanaryScale(CanaryScale::Replicas(0)),
    ];
    let mut m = up(dynamic(traffic_canary(6, Some(steps))));
    m.event(&Ev::Image(2)).unwrap();
    m.settle().unwrap();
    m.liveness().unwrap();
    let stable = m.w.status().stable_rs.unwrap();
    assert!(m.w.spec_of(&stable) == 6, "{}", m.summary());
}
/// Found by the model: an aborted canary keeps its `scale-down-deadline` annotation when it is
/// scaled to 0 (as upstream's); once a newer revision made it an older ReplicaSet, that stale
/// annotation counted as "waiting for a scale-down", and the newer revision, whose pods never
/// came up, never hit its progress deadline (Progressing forever instead of Degraded).
#[test]
fn a_stale_scale_down_deadline_does_not_stop_the_progress_deadline() {
    let mut cfg = traffic_canary(1, None);
    cfg.progress_deadline_abort = true;
    let mut m = up(cfg);
    replay(
        &mut m,
        &[
            Ev::BadImage(2),
            Ev::Abort,
            Ev::Rounds(1),
            Ev::Clock(600),
            Ev::Image(2),
            Ev::Rounds(2),
            Ev::Image(2),
            Ev::Crash(31),
            Ev::BadImage(1),
            Ev::Crash(122),
            Ev::Crash(173),
            Ev::Rounds(1),
            Ev::Crash(56),
        ],
    );
    assert_phase(&m, "Degraded");
}

/// Found by the model: moving on from a 51% step to a 0% step while the canary was not yet at
/// its count, a plan set the previous step's weight (51%) on the canary and, in the same
/// reconcile, scaled the canary to the 0% step's count (0 pods). The canary now also keeps
/// the pods of the weight the plan sets.
#[test]
fn a_canary_keeps_the_pods_of_the_weight_the_plan_sets() {
    let steps = vec![Step::SetWeight(51), Step::SetWeight(0)];
    let mut m = up(traffic_canary(2, Some(steps)));
    replay(
        &mut m,
        &[
            Ev::Image(2),
            Ev::Crash(89),
            Ev::Undo,
            Ev::Clock(600),
            Ev::Image(4),
            Ev::Rounds(3),
            Ev::Promote,
            Ev::Crash(26),
        ],
    );
    assert_phase(&m, "Healthy");
}
/// Found by the model: `promote --full` while a pause step had just been promoted moved the
/// index to the step count and then counted the pause step as completed once more: step 2 of
/// 1 in the status (and a "step 2/1 completed" event).
#[test]
fn a_full_promotion_never_moves_the_step_index_past_the_last_step() {
    let steps = vec![Step::Pause(None)];
    let mut cfg = traffic_canary(1, Some(steps));
    if let StrategyCfg::Canary(c) = &mut cfg.strategy {
        c.traffic = false;
    }
    let mut m = up(cfg);
    replay(
        &mut m,
        &[
            Ev::Image(2),
            Ev::Rounds(2),
            Ev::PromoteFull,
            Ev::Promote,
            Ev::Rounds(1),
            Ev::Promote,
        ],
    );
    assert!(
        !m.w.events.iter().any(|e| e.message.contains("2/1")),
        "{:?}",
        m.w.events
    );
}

/// Found by the model: a user's `promote` skipped a step (weights 10, 1, 51 on 2 replicas)
/// before its pods were up; the next step's canary not being at its count yet, the previous
/// step's weight (51 %) was set with 1 of the 2 pods it needs available (upstream does the
/// same). The weight is now capped by what the available canary pods can serve.
#[test]
fn a_skipped_step_never_routes_more_than_the_canary_pods_can_serve() {
    let steps = vec![Step::SetWeight(10), Step::SetWeight(1), Step::SetWeight(51)];
    let mut m = up(traffic_canary(2, Some(steps)));
    replay(
        &mut m,
        &[
            Ev::Image(2),
            Ev::Rounds(3),
            Ev::Rounds(2),
            Ev::Rounds(1),
            Ev::Promote,
        ],
    );
    assert_phase(&m, "Healthy");
}
/// Found by the chaos suite (a leader SIGKILLed), then here: a controller killed after
/// creating a step's AnalysisRun, before the status recorded it, left a run no status named.
/// Once that run had completed, the next plan could not tell it from a run of an attempt
/// before a `retry`, and created a second run for the step (`.1`): the step was judged twice.
/// Runs are now written ahead (recorded, then created), so a crash leaves a name, never an
/// unnamed run.
#[test]
fn a_crash_between_creating_and_recording_a_run_never_judges_the_step_twice() {
    for n in 0..4 {
        // Up to the analysis step, then a crash at every point of the next few plans.
        let mut m = analysis_step_canary_until(|m| m.w.status().current_step_index == Some(1));
        for _ in 0..3 {
            m.event(&Ev::Crash(n)).unwrap();
        }
        m.event(&Ev::Analysis(crate::api::analysis_phase::SUCCESSFUL))
            .unwrap();
        m.settle().unwrap();
        m.liveness().unwrap();
        assert_one_run(&m, n);
    }
}

/// A traffic-routed canary (50 %, a step analysis, 80 %) updated to a new image, planned
/// until `ready` holds.
fn analysis_step_canary_until(ready: impl Fn(&Model) -> bool) -> Model {
    let steps = vec![Step::SetWeight(50), Step::Analysis, Step::SetWeight(80)];
    let mut m = up(traffic_canary(2, Some(steps)));
    m.event(&Ev::Image(2)).unwrap();
    for _ in 0..40 {
        if ready(&m) {
            return m;
        }
        m.round().unwrap();
    }
    panic!("never ready: {}", m.summary());
}

/// One AnalysisRun in the world: the step was judged once (after a crash at `n`).
fn assert_one_run(m: &Model, n: u8) {
    let runs: Vec<String> = m.w.runs.iter().map(|r| r.name_any()).collect();
    assert_eq!(runs.len(), 1, "crash at {n}: {runs:?}: {}", m.summary());
}

/// Found by the chaos suite after the runs were written ahead: the leader that saw a step's
/// run Failed wrote the aborted canary's `scale-down-deadline` and was killed before the
/// status recorded the abort. The next plan took that deadline for a fast rollback (going
/// back to a ReplicaSet within its delay), cancelled the step's analysis instead of aborting,
/// and the step was judged again (`.1`, then `.2` after another kill). Only a ReplicaSet
/// older than the stable one can be rolled back to (upstream's `isRollback`). Then, with the
/// next controller taking over after that deadline had passed, the canary went to 0 in the
/// plan that aborted again, while the router still sent it the step's weight: an aborted
/// canary now goes to 0 only once the status records no weight on it.
#[test]
fn a_crash_after_a_failed_run_aborts_once() {
    for n in 0..6 {
        let mut m = analysis_step_canary_until(|m| m.w.runs.len() == 1);
        m.event(&Ev::Analysis(crate::api::analysis_phase::FAILED))
            .unwrap();
        m.event(&Ev::Crash(n)).unwrap();
        // The next controller takes over after the abort's scale-down delay has passed.
        m.event(&Ev::Clock(61)).unwrap();
        m.settle().unwrap();
        m.liveness().unwrap();
        assert_one_run(&m, n);
    }
}
