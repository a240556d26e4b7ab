//! What the dashboard's pages show, computed from the objects alone (pure, like
//! [`crate::cli::info`], which it builds on): a list row per Rollout, and the Rollout view
//! (summary, steps, revisions, AnalysisRuns with their measurements, containers, why it
//! waits, the planned timeline of a pending update).
//!
//! Only what a page shows is sent: names, images, counts, phases, messages, times, analysis
//! measurements and conditions. Never a pod's environment, an analysis argument's value, a
//! metric provider's headers, URL or credentials: no Secret value can reach the page.

use super::measure;
use super::why::{self, Waiting};
use crate::api::consts::REVISION_ANNOTATION;
use crate::api::{AnalysisRun, CanaryStep, Rollout};
use crate::cli::info::{ImageInfo, Model, ReplicaSetInfo, RolloutInfo};
use crate::cli::timeline;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use serde::Serialize;

/// Where a canary is in its steps, counted from 1 for people: `current` of `count` (the step
/// being carried out), or `done` once every step has been (`count` of `count`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepPosition {
    pub current: usize,
    pub count: usize,
    pub done: bool,
}

impl StepPosition {
    /// From `status.currentStepIndex` (0-based; the step count once all are done).
    pub fn of(ro: &Rollout) -> Option<StepPosition> {
        let count = ro.canary_steps().len();
        if ro.canary().is_none() || count == 0 {
            return None;
        }
        let index = ro
            .status
            .as_ref()
            .and_then(|s| s.current_step_index)
            .unwrap_or(0)
            .max(0) as usize;
        Some(if index >= count {
            StepPosition {
                current: count,
                count,
                done: true,
            }
        } else {
            StepPosition {
                current: index + 1,
                count,
                done: false,
            }
        })
    }
}

/// A ReplicaSet in a list row: its counts and roles (the pods are not listed there).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaSetSummary {
    pub name: String,
    pub revision: i64,
    pub status: String,
    pub replicas: i32,
    pub available: i32,
    pub roles: Vec<String>,
}

/// One Rollout in the list.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListRow {
    pub namespace: String,
    pub name: String,
    pub status: String,
    pub message: String,
    pub strategy: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<StepPosition>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub set_weight: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actual_weight: Option<String>,
    pub images: Vec<ImageInfo>,
    pub revision: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<Timestamp>,
    pub desired: i32,
    pub ready: i32,
    pub available: i32,
    pub updated: i32,
    /// ReplicaSets with pods (or the newest), newest first.
    pub replica_sets: Vec<ReplicaSetSummary>,
}

fn roles(rs: &ReplicaSetInfo) -> Vec<String> {
    [
        (rs.stable, "stable"),
        (rs.canary, "canary"),
        (rs.active, "active"),
        (rs.preview, "preview"),
    ]
    .into_iter()
    .filter(|(on, _)| *on)
    .map(|(_, r)| r.to_string())
    .collect()
}

/// The Rollout's revision (its `rollout.argoproj.io/revision` annotation; 0 without one).
pub fn rollout_revision(ro: &Rollout) -> i64 {
    ro.annotations()
        .get(REVISION_ANNOTATION)
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

/// The list row of `ro`; `replica_sets` are (at least) those it owns.
pub fn list_row(ro: &Rollout, replica_sets: &[ReplicaSet]) -> ListRow {
    let info = RolloutInfo::new(&Model {
        rollout: ro.clone(),
        replica_sets: replica_sets.to_vec(),
        ..Default::default()
    });
    let replica_sets = info
        .replica_sets
        .iter()
        .enumerate()
        .filter(|(i, rs)| *i == 0 || rs.replicas > 0)
        .map(|(_, rs)| ReplicaSetSummary {
            name: rs.name.clone(),
            revision: rs.revision,
            status: rs.status.clone(),
            replicas: rs.replicas,
            available: rs.available,
            roles: roles(rs),
        })
        .collect();
    ListRow {
        namespace: info.namespace,
        name: info.name,
        status: info.status,
        message: info.message,
        strategy: info.strategy,
        step: StepPosition::of(ro),
        set_weight: info.set_weight,
        actual_weight: info.actual_weight,
        images: info.images,
        revision: rollout_revision(ro),
        created: info.creation_timestamp,
        desired: info.desired,
        ready: info.ready,
        available: info.available,
        updated: info.updated,
        replica_sets,
    }
}

/// A step of the vertical timeline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepView {
    /// From 1.
    pub number: usize,
    /// `setWeight`, `pause`, `analysis`, `setCanaryScale`, `setHeaderRoute`,
    /// `setMirrorRoute`, `experiment`, `plugin`, or (blue-green) `stage`.
    pub kind: String,
    /// For people: "Set weight 20%", "Pause: waits for promote".
    pub title: String,
    /// As upstream's CLI prints it (`setWeight: 20`, `pause: 10s`).
    pub code: String,
    /// `done`, `current`, `pending`, or `aborted` (the step an abort stopped at).
    pub state: String,
}

fn step_kind(s: &CanaryStep) -> &'static str {
    if s.set_weight.is_some() {
        "setWeight"
    } else if s.pause.is_some() {
        "pause"
    } else if s.analysis.is_some() {
        "analysis"
    } else if s.set_canary_scale.is_some() {
        "setCanaryScale"
    } else if s.set_header_route.is_some() {
        "setHeaderRoute"
    } else if s.set_mirror_route.is_some() {
        "setMirrorRoute"
    } else if s.experiment.is_some() {
        "experiment"
    } else if s.plugin.is_some() {
        "plugin"
    } else {
        "unknown"
    }
}

fn step_title(s: &CanaryStep) -> String {
    if let Some(w) = s.set_weight {
        return format!("Set weight {w}%");
    }
    if let Some(p) = &s.pause {
        return match p.duration_seconds() {
            None => "Pause: waits for promote".into(),
            Some(Ok(secs)) => format!("Pause {}", timeline::duration_text(secs)),
            Some(Err(_)) => "Pause (invalid duration)".into(),
        };
    }
    if let Some(a) = &s.analysis {
        let names: Vec<String> = a
            .templates
            .iter()
            .flatten()
            .filter_map(|t| t.template_name.clone())
            .collect();
        return if names.is_empty() {
            "Analysis".into()
        } else {
            format!("Analysis: {}", names.join(", "))
        };
    }
    if let Some(p) = &s.plugin {
        return format!("Plugin {}", p.name.clone().unwrap_or_default());
    }
    match step_kind(s) {
        "setCanaryScale" => format!("Canary scale: {}", crate::plan::step_string(s)),
        "setHeaderRoute" => "Header route".into(),
        "setMirrorRoute" => "Mirror route".into(),
        "experiment" => "Experiment".into(),
        _ => crate::plan::step_string(s),
    }
}

/// The canary's steps with their state.
pub fn steps(ro: &Rollout) -> Vec<StepView> {
    let Some(pos) = StepPosition::of(ro) else {
        return Vec::new();
    };
    let aborted = ro.status.as_ref().and_then(|s| s.abort) == Some(true);
    ro.canary_steps()
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let number = i + 1;
            let state = if pos.done || number < pos.current {
                "done"
            } else if number == pos.current {
                if aborted { "aborted" } else { "current" }
            } else {
                "pending"
            };
            StepView {
                number,
                kind: step_kind(s).into(),
                title: step_title(s),
                code: crate::plan::step_string(s),
                state: state.into(),
            }
        })
        .collect()
}

/// The stages of a blue-green update, as steps.
pub fn blue_green_stages(ro: &Rollout) -> Vec<StepView> {
    let Some(bg) = ro.blue_green() else {
        return Vec::new();
    };
    let st = ro.status.clone().unwrap_or_default();
    let current = st.current_pod_hash.clone().unwrap_or_default();
    let stable = st.stable_rs.clone().unwrap_or_default();
    let bgs = st.blue_green.clone().unwrap_or_default();
    let updating = !current.is_empty() && current != stable;
    let switched = !current.is_empty() && bgs.active_selector.as_deref() == Some(&current);
    let paused =
        st.pause_conditions.as_ref().is_some_and(|p| !p.is_empty()) || ro.spec.paused == Some(true);
    let auto = bg
        .auto_promotion_seconds
        .filter(|_| bg.auto_promotion_enabled != Some(false));
    let mut stages: Vec<(&str, String)> = vec![(
        "preview",
        "New version scaled up behind the preview Service".into(),
    )];
    if bg.pre_promotion_analysis.is_some() {
        stages.push(("prePromotionAnalysis", "Pre-promotion analysis".into()));
    }
    stages.push((
        "promotion",
        match auto {
            Some(s) => format!(
                "Promotion (automatic after {})",
                timeline::duration_text(s.into())
            ),
            None => "Promotion: waits for promote".into(),
        },
    ));
    stages.push((
        "switch",
        "Active Service switched to the new version".into(),
    ));
    if bg.post_promotion_analysis.is_some() {
        stages.push(("postPromotionAnalysis", "Post-promotion analysis".into()));
    }
    stages.push((
        "stable",
        "New version stable, the old one scaled down".into(),
    ));
    let index_of = |code: &str| stages.iter().position(|(c, _)| *c == code);
    let pre_done = bgs
        .pre_promotion_analysis_run_status
        .as_ref()
        .and_then(|r| r.status.as_deref())
        == Some("Successful");
    let at = if !updating {
        if current.is_empty() { 0 } else { stages.len() }
    } else if switched {
        index_of("postPromotionAnalysis")
            .or(index_of("stable"))
            .unwrap_or(stages.len())
    } else if bgs.pre_promotion_analysis_run_status.is_some() && !pre_done {
        index_of("prePromotionAnalysis").unwrap_or(0)
    } else if paused || pre_done {
        index_of("promotion").unwrap_or(0)
    } else {
        0
    };
    let aborted = st.abort == Some(true);
    stages
        .into_iter()
        .enumerate()
        .map(|(i, (code, title))| StepView {
            number: i + 1,
            kind: "stage".into(),
            title,
            code: code.into(),
            state: if i < at {
                "done"
            } else if i == at && aborted {
                "aborted"
            } else if i == at {
                "current"
            } else {
                "pending"
            }
            .into(),
        })
        .collect()
}

/// A revision with its ReplicaSets and AnalysisRuns.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RevisionView {
    pub revision: i64,
    /// The revision the Rollout's template is (the one `rollback` cannot go to).
    pub current: bool,
    pub replica_sets: Vec<ReplicaSetView>,
    pub analysis_runs: Vec<String>,
}

/// A ReplicaSet with its roles and pods.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaSetView {
    #[serde(flatten)]
    pub info: ReplicaSetInfo,
    pub roles: Vec<String>,
}

/// One measurement of a metric.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MeasurementView {
    pub phase: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Timestamp>,
    /// As the provider returned it.
    pub value: String,
    /// The value as a number, when it is one (the first of a vector).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub number: Option<f64>,
    pub message: String,
}

/// A metric of an AnalysisRun: its conditions and measurements.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricView {
    pub name: String,
    /// `prometheus`, `web`, `job`, ...
    pub provider: String,
    /// The Prometheus query as written in the template (arguments not substituted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    pub phase: String,
    pub message: String,
    pub dry_run: bool,
    pub success_condition: String,
    pub failure_condition: String,
    /// Numeric thresholds read from the conditions (for the chart's lines).
    pub success_thresholds: Vec<measure::Threshold>,
    pub failure_thresholds: Vec<measure::Threshold>,
    pub successful: i32,
    pub failed: i32,
    pub inconclusive: i32,
    pub error: i32,
    pub measurements: Vec<MeasurementView>,
}

/// An AnalysisRun.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisRunView {
    pub name: String,
    pub revision: i64,
    pub status: String,
    pub message: String,
    /// `Step`, `Background`, `PrePromotion`, `PostPromotion` (the `rollout-type` label).
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<Timestamp>,
    pub metrics: Vec<MetricView>,
}

/// A container of the pod template.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerView {
    pub name: String,
    pub image: String,
    pub init: bool,
}

/// Which actions make sense now (buttons of the others are disabled; the server accepts
/// every action, as the CLI does).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Enabled {
    pub promote: bool,
    pub promote_full: bool,
    pub abort: bool,
    pub retry: bool,
    pub pause: bool,
    pub restart: bool,
}

/// The planned timeline of a pending update.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanView {
    pub from_image: String,
    pub to_image: String,
    /// `plan`'s chart (the same SVG as `kubectl-rollouts plan --svg`).
    pub svg: String,
    /// `plan`'s table as text.
    pub text: String,
}

/// The Rollout view.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RolloutView {
    #[serde(flatten)]
    pub row: ListRow,
    pub aborted: bool,
    pub paused: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting: Option<Waiting>,
    pub steps: Vec<StepView>,
    pub revisions: Vec<RevisionView>,
    pub analysis_runs: Vec<AnalysisRunView>,
    pub containers: Vec<ContainerView>,
    pub enabled: Enabled,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<PlanView>,
    pub conditions: Vec<ConditionView>,
}

/// A status condition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConditionView {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: String,
    pub reason: String,
    pub message: String,
}

fn provider_name(m: &crate::api::Metric) -> String {
    let Some(p) = &m.provider else {
        return String::new();
    };
    let v = serde_json::to_value(p).unwrap_or_default();
    v.as_object()
        .and_then(|o| o.keys().next().cloned())
        .unwrap_or_default()
}

fn analysis_run_view(ar: &AnalysisRun) -> AnalysisRunView {
    let st = ar.status.clone().unwrap_or_default();
    let spec_metrics = ar.spec.metrics.clone().unwrap_or_default();
    let args = ar.spec.args.clone().unwrap_or_default();
    let results = st.metric_results.clone().unwrap_or_default();
    let mut names: Vec<String> = spec_metrics.iter().filter_map(|m| m.name.clone()).collect();
    for r in &results {
        if let Some(n) = &r.name
            && !names.contains(n)
        {
            names.push(n.clone());
        }
    }
    let metrics = names
        .into_iter()
        .map(|name| {
            let spec = spec_metrics
                .iter()
                .find(|m| m.name.as_deref() == Some(&name));
            let result = results.iter().find(|r| r.name.as_deref() == Some(&name));
            let success = spec
                .and_then(|m| m.success_condition.clone())
                .unwrap_or_default();
            let failure = spec
                .and_then(|m| m.failure_condition.clone())
                .unwrap_or_default();
            let measurements = result
                .and_then(|r| r.measurements.clone())
                .unwrap_or_default()
                .into_iter()
                .map(|m| {
                    let value = m.value.clone().unwrap_or_default();
                    MeasurementView {
                        phase: m.phase.clone().unwrap_or_default(),
                        started_at: m.started_at.as_ref().map(|t| t.0),
                        finished_at: m.finished_at.as_ref().map(|t| t.0),
                        number: measure::number(&value),
                        value,
                        message: m.message.clone().unwrap_or_default(),
                    }
                })
                .collect();
            MetricView {
                provider: spec.map(provider_name).unwrap_or_default(),
                query: spec
                    .and_then(|m| m.provider.as_ref())
                    .and_then(|p| p.prometheus.as_ref())
                    .and_then(|p| p.query.clone()),
                phase: result.and_then(|r| r.phase.clone()).unwrap_or_default(),
                message: result.and_then(|r| r.message.clone()).unwrap_or_default(),
                dry_run: result.and_then(|r| r.dry_run) == Some(true),
                success_thresholds: measure::thresholds(&success, &args),
                failure_thresholds: measure::thresholds(&failure, &args),
                success_condition: success,
                failure_condition: failure,
                successful: result.and_then(|r| r.successful).unwrap_or(0),
                failed: result.and_then(|r| r.failed).unwrap_or(0),
                inconclusive: result.and_then(|r| r.inconclusive).unwrap_or(0),
                error: result.and_then(|r| r.error).unwrap_or(0),
                measurements,
                name,
            }
        })
        .collect();
    AnalysisRunView {
        name: ar.name_any(),
        revision: ar
            .annotations()
            .get(REVISION_ANNOTATION)
            .and_then(|r| r.parse().ok())
            .unwrap_or(0),
        status: st.phase.clone().unwrap_or_default(),
        message: st.message.clone().unwrap_or_default(),
        kind: ar
            .labels()
            .get(crate::api::consts::ROLLOUT_TYPE_LABEL)
            .cloned()
            .unwrap_or_default(),
        created: ar.metadata.creation_timestamp.as_ref().map(|t| t.0),
        metrics,
    }
}

fn containers(model: &Model) -> Vec<ContainerView> {
    let from_spec = model
        .rollout
        .spec
        .template
        .as_ref()
        .and_then(|t| t.spec.clone());
    // A workloadRef rollout: the newest ReplicaSet's template shows what runs.
    let spec = from_spec.or_else(|| {
        let uid = model.rollout.uid().unwrap_or_default();
        model
            .replica_sets
            .iter()
            .filter(|rs| rs.owner_references().iter().any(|o| o.uid == uid))
            .max_by_key(|rs| {
                rs.annotations()
                    .get(REVISION_ANNOTATION)
                    .and_then(|r| r.parse::<i64>().ok())
                    .unwrap_or(0)
            })
            .and_then(|rs| rs.spec.as_ref()?.template.as_ref()?.spec.clone())
    });
    let Some(spec) = spec else {
        return Vec::new();
    };
    let init = spec.init_containers.iter().flatten().map(|c| (c, true));
    let main = spec.containers.iter().map(|c| (c, false));
    init.chain(main)
        .map(|(c, init)| ContainerView {
            name: c.name.clone(),
            image: c.image.clone().unwrap_or_default(),
            init,
        })
        .collect()
}

fn enabled(ro: &Rollout, row: &ListRow) -> Enabled {
    let st = ro.status.clone().unwrap_or_default();
    let aborted = st.abort == Some(true);
    let updating = st.updating();
    let paused =
        st.pause_conditions.as_ref().is_some_and(|p| !p.is_empty()) || ro.spec.paused == Some(true);
    Enabled {
        promote: !aborted && (paused || (updating && ro.canary().is_some())),
        promote_full: !aborted && updating,
        abort: !aborted && (updating || row.status == "Paused" || row.status == "Progressing"),
        retry: aborted,
        pause: ro.spec.paused != Some(true) && row.status != "Healthy",
        restart: true,
    }
}

/// The planned timeline of the update in flight, from the stable image to the template's:
/// `plan` run on the Rollout as it is now. `None` when no update is pending (or the template
/// lives in a workload, which `plan` cannot see).
pub fn pending_plan(model: &Model) -> Option<PlanView> {
    let ro = &model.rollout;
    let st = ro.status.clone().unwrap_or_default();
    let stable = st.stable_rs.clone()?;
    let pending = !st.is_fully_promoted()
        || ro
            .metadata
            .generation
            .zip(st.observed_generation.as_deref()?.parse::<i64>().ok())
            .is_some_and(|(g, o)| o < g);
    if !pending || st.abort == Some(true) || ro.spec.template.is_none() {
        return None;
    }
    // A template without a container has nothing to plan; one without an image shows "".
    let template = ro.spec.template.as_ref()?;
    template.spec.as_ref()?.containers.first()?;
    let to = crate::api::first_image(Some(template))
        .unwrap_or_default()
        .to_string();
    let stable_image = model
        .replica_sets
        .iter()
        .find(|rs| {
            rs.labels()
                .get(crate::api::consts::DEFAULT_ROLLOUT_UNIQUE_LABEL_KEY)
                == Some(&stable)
        })
        .and_then(|rs| rs.spec.as_ref()?.template.as_ref()?.spec.as_ref())
        .and_then(|s| s.containers.first()?.image.clone());
    // A change other than the first image: the planner still needs two versions to plan.
    let from = match stable_image {
        Some(i) if i != to => i,
        _ => "(the stable template)".to_string(),
    };
    let t = timeline::simulate(ro, Some(&from)).ok()?;
    if t.rows.is_empty() || matches!(t.outcome, timeline::Outcome::Invalid(_)) {
        return None;
    }
    Some(PlanView {
        from_image: t.from_image.clone(),
        to_image: t.to_image.clone(),
        svg: timeline::svg(&t),
        text: timeline::render(&t),
    })
}

/// The Rollout view from the Rollout and the objects of its namespace.
pub fn rollout_view(model: &Model) -> RolloutView {
    let ro = &model.rollout;
    let uid = ro.uid().unwrap_or_default();
    let owned_rss: Vec<ReplicaSet> = model
        .replica_sets
        .iter()
        .filter(|rs| rs.owner_references().iter().any(|o| o.uid == uid))
        .cloned()
        .collect();
    let row = list_row(ro, &owned_rss);
    let info = RolloutInfo::new(model);
    let st = ro.status.clone().unwrap_or_default();
    let current_revision = row.revision;
    let mut revisions: Vec<RevisionView> = Vec::new();
    for r in info.revisions() {
        revisions.push(RevisionView {
            revision: r,
            current: r == current_revision,
            replica_sets: info
                .replica_sets
                .iter()
                .filter(|rs| rs.revision == r)
                .map(|rs| ReplicaSetView {
                    roles: roles(rs),
                    info: rs.clone(),
                })
                .collect(),
            analysis_runs: info
                .analysis_runs
                .iter()
                .filter(|a| a.revision == r)
                .map(|a| a.name.clone())
                .collect(),
        });
    }
    let mut analysis_runs: Vec<AnalysisRunView> = model
        .analysis_runs
        .iter()
        .filter(|ar| ar.owner_references().iter().any(|o| o.uid == uid))
        .map(analysis_run_view)
        .collect();
    analysis_runs.sort_by(|a, b| {
        b.revision
            .cmp(&a.revision)
            .then(b.created.cmp(&a.created))
            .then(a.name.cmp(&b.name))
    });
    let steps = if ro.canary().is_some() {
        steps(ro)
    } else {
        blue_green_stages(ro)
    };
    let conditions = st
        .conditions
        .iter()
        .flatten()
        .map(|c| ConditionView {
            type_: c.type_.clone().unwrap_or_default(),
            status: c.status.clone().unwrap_or_default(),
            reason: c.reason.clone().unwrap_or_default(),
            message: c.message.clone().unwrap_or_default(),
        })
        .collect();
    RolloutView {
        aborted: st.abort == Some(true),
        paused: st.pause_conditions.as_ref().is_some_and(|p| !p.is_empty())
            || ro.spec.paused == Some(true),
        waiting: why::waiting(ro, &info),
        steps,
        revisions,
        analysis_runs,
        containers: containers(model),
        enabled: enabled(ro, &row),
        plan: pending_plan(model),
        conditions,
        row,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn seed(status: serde_json::Value) -> Rollout {
        serde_json::from_value(json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
            "metadata": {"name": "canary-demo", "namespace": "ns", "uid": "u1", "generation": 2,
                         "annotations": {"rollout.argoproj.io/revision": "2"}},
            "spec": {"replicas": 5,
                     "selector": {"matchLabels": {"app": "canary-demo"}},
                     "template": {"metadata": {"labels": {"app": "canary-demo"}},
                                  "spec": {"containers": [{"name": "canary-demo",
                                           "image": "argoproj/rollouts-demo:yellow",
                                           "env": [{"name": "PASSWORD", "value": "hunter2"}]}]}},
                     "strategy": {"canary": {"steps": [
                {"setWeight": 20}, {"pause": {}}, {"setWeight": 40}, {"pause": {"duration": "10s"}},
                {"setWeight": 60}, {"pause": {"duration": 10}}, {"setWeight": 80},
                {"pause": {"duration": "10s"}}]}}},
            "status": status
        }))
        .unwrap()
    }

    fn rs(hash: &str, rev: &str, image: &str, replicas: i32) -> ReplicaSet {
        serde_json::from_value(json!({
            "metadata": {"name": format!("canary-demo-{hash}"), "namespace": "ns", "uid": format!("rs-{hash}"),
                         "labels": {"app": "canary-demo", "rollouts-pod-template-hash": hash},
                         "annotations": {"rollout.argoproj.io/revision": rev},
                         "ownerReferences": [{"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
                                              "name": "canary-demo", "uid": "u1", "controller": true}]},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "canary-demo"}},
                     "template": {"metadata": {"labels": {"app": "canary-demo"}},
                                  "spec": {"containers": [{"name": "canary-demo", "image": image}]}}},
            "status": {"replicas": replicas, "availableReplicas": replicas, "readyReplicas": replicas}
        }))
        .unwrap()
    }

    fn paused_model() -> Model {
        let ro = seed(json!({
            "currentStepIndex": 1, "currentPodHash": "new", "stableRS": "old",
            "observedGeneration": "2", "phase": "Paused", "message": "CanaryPauseStep",
            "pauseConditions": [{"reason": "CanaryPauseStep", "startTime": "2024-01-01T00:00:00Z"}],
            "replicas": 5, "availableReplicas": 5, "readyReplicas": 5, "updatedReplicas": 1}));
        Model {
            rollout: ro,
            replica_sets: vec![
                rs("old", "1", "argoproj/rollouts-demo:blue", 4),
                rs("new", "2", "argoproj/rollouts-demo:yellow", 1),
            ],
            ..Default::default()
        }
    }

    #[test]
    fn the_seed_canary_paused_at_its_second_step() {
        let model = paused_model();
        let row = list_row(&model.rollout, &model.replica_sets);
        assert_eq!(
            row.step,
            Some(StepPosition {
                current: 2,
                count: 8,
                done: false
            })
        );
        assert_eq!(row.status, "Paused");
        assert_eq!(row.set_weight.as_deref(), Some("20"));
        assert_eq!(row.actual_weight.as_deref(), Some("20"));
        assert_eq!(row.revision, 2);
        assert_eq!(row.replica_sets.len(), 2);
        assert_eq!(row.replica_sets[0].roles, vec!["canary"]);
        assert_eq!(row.replica_sets[1].roles, vec!["stable"]);

        let view = rollout_view(&model);
        let states: Vec<&str> = view.steps.iter().map(|s| s.state.as_str()).collect();
        assert_eq!(
            states,
            [
                "done", "current", "pending", "pending", "pending", "pending", "pending", "pending"
            ]
        );
        assert_eq!(view.steps[1].title, "Pause: waits for promote");
        assert_eq!(view.steps[3].title, "Pause 10s");
        assert!(view.enabled.promote && view.enabled.abort && !view.enabled.retry);
        assert_eq!(
            view.revisions
                .iter()
                .map(|r| r.revision)
                .collect::<Vec<_>>(),
            [2, 1]
        );
        assert!(view.revisions[0].current);
        assert_eq!(view.containers.len(), 1);
        let waiting = view.waiting.as_ref().expect("a paused rollout waits");
        assert!(waiting.text.contains("promote"), "{}", waiting.text);
        let plan = view.plan.as_ref().expect("an update in flight has a plan");
        assert_eq!(plan.from_image, "argoproj/rollouts-demo:blue");
        assert_eq!(plan.to_image, "argoproj/rollouts-demo:yellow");
        assert!(plan.svg.contains("waits for promote"), "{}", plan.svg);
    }

    #[test]
    fn no_secret_value_is_in_the_view() {
        let mut model = paused_model();
        let ar: AnalysisRun = serde_json::from_value(json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisRun",
            "metadata": {"name": "canary-demo-2-1", "namespace": "ns",
                         "annotations": {"rollout.argoproj.io/revision": "2"},
                         "ownerReferences": [{"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
                                              "name": "canary-demo", "uid": "u1", "controller": true}]},
            "spec": {"args": [{"name": "api-token", "value": "s3cr3t-token"},
                              {"name": "threshold", "value": "0.9"}],
                     "metrics": [{"name": "success-rate", "successCondition": "result[0] >= {{args.threshold}}",
                                  "provider": {"web": {"url": "http://x/?token={{args.api-token}}",
                                               "headers": [{"key": "Authorization", "value": "Bearer s3cr3t-header"}]}}}]},
            "status": {"phase": "Running", "metricResults": [{"name": "success-rate", "phase": "Running",
                        "measurements": [{"phase": "Successful", "value": "0.97",
                                          "startedAt": "2024-01-01T00:00:00Z", "finishedAt": "2024-01-01T00:00:01Z"}]}]}
        }))
        .unwrap();
        model.analysis_runs.push(ar);
        let view = rollout_view(&model);
        let text = serde_json::to_string(&view).unwrap();
        for secret in [
            "hunter2",
            "s3cr3t-token",
            "s3cr3t-header",
            "PASSWORD",
            "http://x/",
        ] {
            assert!(!text.contains(secret), "{secret} sent to the page: {text}");
        }
        let m = &view.analysis_runs[0].metrics[0];
        assert_eq!(m.provider, "web");
        assert_eq!(m.measurements[0].number, Some(0.97));
        assert_eq!(m.success_thresholds.len(), 1);
        assert_eq!(m.success_thresholds[0].value, 0.9);
    }

    #[test]
    fn steps_of_an_aborted_and_a_finished_canary() {
        let ro = seed(json!({"currentStepIndex": 2, "abort": true}));
        let s = steps(&ro);
        assert_eq!(s[2].state, "aborted");
        assert_eq!(s[1].state, "done");
        let ro = seed(json!({"currentStepIndex": 8}));
        assert!(steps(&ro).iter().all(|s| s.state == "done"));
        assert_eq!(
            StepPosition::of(&ro),
            Some(StepPosition {
                current: 8,
                count: 8,
                done: true
            })
        );
    }

    #[test]
    fn no_plan_when_nothing_is_pending() {
        let mut model = paused_model();
        let st = model.rollout.status.as_mut().unwrap();
        st.current_pod_hash = Some("old".into());
        assert_eq!(pending_plan(&model), None);
    }
}
