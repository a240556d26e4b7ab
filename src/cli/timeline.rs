//! `plan -f FILE`: the timeline the controller follows for an update of a Rollout, computed
//! without a cluster by running the controller's own planner ([`crate::plan::plan`]) in the
//! in-memory world of [`crate::plan::simulate`]: deploy the manifest, change the image, then
//! settle; at an indefinite pause promote, at a timed pause move the clock by its duration;
//! until the Rollout is Healthy (or invalid, or stuck).
//!
//! Pods in that world become available at once, so the timeline is the *minimum*: real pods
//! add their start-up time to every scaling step.

use super::error::{CliError, Result};
use super::info::current_set_weight;
use crate::api::consts::DEFAULT_ROLLOUT_UNIQUE_LABEL_KEY;
use crate::api::rollout_condition_type as ctype;
use crate::api::{Rollout, rollout_phase};
use crate::plan::replicas::{self, IntOrPercent, int_or_percent};
use crate::plan::simulate::World;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;
use serde::Deserialize as _;
use serde::Serialize;
use std::fmt::Write as _;

/// What a step waits for once its pods are in place.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Wait {
    /// Nothing: the next step follows at once.
    None,
    /// An indefinite pause: waits for `promote`.
    Promote,
    /// A timed pause (or another timed wait) of this many seconds.
    Seconds(i64),
}

/// One step of the timeline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepRow {
    /// `status.currentStepIndex` while this row holds (`None`: no steps).
    pub index: Option<i32>,
    /// The step as upstream prints it (`setWeight: 20`, `pause: 10s`, ...), or the stage of
    /// a blue-green update.
    pub step: String,
    /// The traffic weight set for the canary, in percent of `maxTrafficWeight` (basic canary:
    /// the share of pods it aims at).
    pub weight: i32,
    /// Available pods of the new version (canary, or blue-green preview) while it is not
    /// stable yet, once the step's scaling is done.
    pub canary: i32,
    /// Available stable pods once the step's scaling is done.
    pub stable: i32,
    /// Available pods of the new version (the update's target), whatever their role: the
    /// canary's while it is one, then the stable's once it is promoted.
    pub new_pods: i32,
    /// Available pods of the other (old) versions.
    pub old_pods: i32,
    /// Most pods that exist at once during the step (the surge).
    pub peak_pods: i32,
    /// Fewest available pods during the step.
    pub min_available: i32,
    /// Seconds since the update started, when the step began.
    pub at: i64,
    pub wait: Wait,
}

/// A point of the chart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Sample {
    pub at: i64,
    pub weight: i32,
    pub canary: i32,
    pub stable: i32,
    /// Available pods of the new version and of the old ones (see [`StepRow`]).
    pub new_pods: i32,
    pub old_pods: i32,
}

/// How the simulation ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Outcome {
    /// The update completed: the new ReplicaSet is stable.
    Healthy,
    /// The controller refuses the Rollout (InvalidSpec): its message.
    Invalid(String),
    /// The update stops making progress: why.
    Stuck(String),
}

/// The timeline of an update.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Timeline {
    pub name: String,
    /// `Canary` or `BlueGreen`.
    pub strategy: String,
    pub replicas: i32,
    /// `maxSurge` as written (or the default) and in pods (canary only).
    pub max_surge: Option<(String, i32)>,
    /// `maxUnavailable` as written (or the default) and in pods.
    pub max_unavailable: (String, i32),
    pub from_image: String,
    pub to_image: String,
    pub rows: Vec<StepRow>,
    pub samples: Vec<Sample>,
    /// Seconds from the image change to Healthy, with instant pods and instant promotions.
    pub total_seconds: i64,
    /// Manual promotions the update waits for.
    pub promotions: usize,
    pub outcome: Outcome,
}

/// The first Rollout of a (multi-document) YAML or JSON manifest.
pub fn rollout_from_manifest(text: &str, file: &str) -> Result<Rollout> {
    for (i, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let value = serde_yaml::Value::deserialize(doc).map_err(|e| {
            CliError::failed(format!("{file}: document {}: not valid YAML: {e}", i + 1))
        })?;
        let json: serde_json::Value = serde_json::to_value(&value).map_err(|e| {
            CliError::failed(format!(
                "{file}: document {}: not JSON-compatible: {e}",
                i + 1
            ))
        })?;
        if json.get("kind").and_then(|k| k.as_str()) == Some("Rollout") {
            return serde_json::from_value(json).map_err(|e| {
                CliError::failed(format!(
                    "{file}: document {}: not a valid Rollout: {e}",
                    i + 1
                ))
            });
        }
    }
    Err(CliError::not_found(format!(
        "no Rollout (kind: Rollout) found in {file}"
    )))
}

fn first_image(ro: &Rollout) -> Option<String> {
    crate::api::first_image(ro.spec.template.as_ref())
        .filter(|i| !i.is_empty())
        .map(str::to_string)
}

/// `secs` as a Go duration prints (`0s`, `45s`, `1m30s`, `2h0m5s`).
pub fn duration_text(secs: i64) -> String {
    if secs <= 0 {
        return "0s".into();
    }
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m{s}s"),
        _ => format!("{h}h{m}m{s}s"),
    }
}

/// Available pods of the world now, by role and by version.
struct Observed {
    canary: i32,
    stable: i32,
    new_pods: i32,
    old_pods: i32,
    pods: i32,
    available: i32,
}

/// What [`Observed`] counts.
fn observe(w: &World) -> Observed {
    let st = w.status();
    let hash = |rs: &k8s_openapi::api::apps::v1::ReplicaSet| {
        rs.labels()
            .get(DEFAULT_ROLLOUT_UNIQUE_LABEL_KEY)
            .cloned()
            .unwrap_or_default()
    };
    let avail = |rs: &k8s_openapi::api::apps::v1::ReplicaSet| {
        rs.status
            .as_ref()
            .and_then(|s| s.available_replicas)
            .unwrap_or(0)
    };
    let current = st.current_pod_hash.clone().unwrap_or_default();
    let stable = st.stable_rs.clone().unwrap_or_default();
    let mut o = Observed {
        canary: 0,
        stable: 0,
        new_pods: 0,
        old_pods: 0,
        pods: 0,
        available: 0,
    };
    for rs in &w.rss {
        let h = hash(rs);
        if h == stable {
            o.stable += avail(rs);
        } else if h == current {
            o.canary += avail(rs);
        }
        if h == current {
            o.new_pods += avail(rs);
        } else {
            o.old_pods += avail(rs);
        }
        o.pods += rs.status.as_ref().map_or(0, |s| s.replicas);
        o.available += avail(rs);
    }
    o
}

fn invalid_message(w: &World) -> Option<String> {
    let st = w.status();
    crate::plan::conditions::get(&st, ctype::INVALID_SPEC)
        .map(|c| c.message.clone().unwrap_or_default())
}

fn is_healthy(w: &World) -> bool {
    let st = w.status();
    st.phase.as_deref() == Some(rollout_phase::HEALTHY) && st.stable_is_current()
}

/// A step as upstream prints it; an `experiment` step also names its templates (with
/// their `specRef` and `weight`) and analyses.
fn step_label(step: &crate::api::CanaryStep) -> String {
    let Some(ex) = &step.experiment else {
        return crate::plan::step_string(step);
    };
    let templates: Vec<String> = ex
        .templates
        .iter()
        .flatten()
        .map(|t| {
            let mut s = format!(
                "{} ({})",
                t.name.as_deref().unwrap_or_default(),
                t.spec_ref.as_deref().unwrap_or_default()
            );
            if let Some(w) = t.weight {
                s.push_str(&format!(" {w}%"));
            }
            s
        })
        .collect();
    let mut label = format!("experiment: {}", templates.join(", "));
    let analyses: Vec<&str> = ex
        .analyses
        .iter()
        .flatten()
        .filter_map(|a| a.name.as_deref())
        .collect();
    if !analyses.is_empty() {
        label.push_str(&format!("; analyses {}", analyses.join(", ")));
    }
    label
}

/// The step index, the row's label and the traffic weight of the new version now (percent).
fn stage(w: &World) -> (Option<i32>, String, i32) {
    let st = w.status();
    if w.ro.blue_green().is_some() {
        let current = st.current_pod_hash.clone().unwrap_or_default();
        let active = st
            .blue_green
            .as_ref()
            .and_then(|b| b.active_selector.clone())
            .unwrap_or_default();
        let stable = st.stable_rs.clone().unwrap_or_default();
        let paused = st.pause_conditions.as_ref().is_some_and(|p| !p.is_empty());
        let label = if active == current && stable == current {
            "done: new version active and stable"
        } else if active == current {
            "active service switched to the new version"
        } else if paused {
            "preview ready, paused before promotion"
        } else {
            "preview: new version scaling up"
        };
        let weight = if active == current { 100 } else { 0 };
        return (None, label.to_string(), weight);
    }
    let idx = st.current_step_index;
    let label = match idx {
        None => "rolling update (no steps)".to_string(),
        Some(i) => match w.ro.canary_steps().get(i.max(0) as usize) {
            Some(s) => step_label(s),
            None => "done: new version is stable".to_string(),
        },
    };
    // As a percentage: with `maxTrafficWeight: 1000`, `setWeight: 500` is 50%.
    let max_weight = i64::from(crate::traffic::max_weight(&w.ro).max(1));
    let percent = i64::from(current_set_weight(&w.ro)) * 100 / max_weight;
    (idx, label, i32::try_from(percent).unwrap_or(100))
}

struct Recorder {
    t0: i64,
    rows: Vec<StepRow>,
    samples: Vec<Sample>,
}

impl Recorder {
    fn record(&mut self, w: &World) {
        let at = w.now.as_second() - self.t0;
        let (idx, step, weight) = stage(w);
        let o = observe(w);
        let new_row = self
            .rows
            .last()
            .is_none_or(|r| r.index != idx || r.step != step);
        if new_row {
            self.rows.push(StepRow {
                index: idx,
                step,
                weight,
                canary: o.canary,
                stable: o.stable,
                new_pods: o.new_pods,
                old_pods: o.old_pods,
                peak_pods: o.pods,
                min_available: o.available,
                at,
                wait: Wait::None,
            });
        }
        if let Some(row) = self.rows.last_mut() {
            row.weight = weight;
            row.canary = o.canary;
            row.stable = o.stable;
            row.new_pods = o.new_pods;
            row.old_pods = o.old_pods;
            row.peak_pods = row.peak_pods.max(o.pods);
            row.min_available = row.min_available.min(o.available);
        }
        let sample = Sample {
            at,
            weight,
            canary: o.canary,
            stable: o.stable,
            new_pods: o.new_pods,
            old_pods: o.old_pods,
        };
        if self.samples.last() != Some(&sample) {
            self.samples.push(sample);
        }
    }
}

impl Recorder {
    /// A row for a manual pause (`spec.paused`), waiting for `promote`.
    fn paused_row(&mut self, w: &World) {
        let at = w.now.as_second() - self.t0;
        let (idx, _, weight) = stage(w);
        let o = observe(w);
        self.rows.push(StepRow {
            index: idx,
            step: "manually paused (spec.paused)".into(),
            weight,
            canary: o.canary,
            stable: o.stable,
            new_pods: o.new_pods,
            old_pods: o.old_pods,
            peak_pods: o.pods,
            min_available: o.available,
            at,
            wait: Wait::Promote,
        });
    }
}

/// Plans and applies until nothing changes, recording every intermediate state.
fn settle(w: &mut World, rec: Option<&mut Recorder>) -> Result<()> {
    let mut rec = rec;
    for _ in 0..200 {
        let plan = w.plan();
        if !w.apply(plan) {
            return Ok(());
        }
        if let Some(r) = rec.as_deref_mut() {
            r.record(w);
        }
    }
    Err(CliError::failed(
        "the planner did not settle within 200 rounds (a controller bug: please report it with this manifest)",
    ))
}

/// Simulates the update of `ro` to a new image (`from_image` is what the stable runs; without
/// it the manifest's image is the stable one and the update is to `<image>-next`).
pub fn simulate(ro: &Rollout, from_image: Option<&str>) -> Result<Timeline> {
    let mut ro = ro.clone();
    let name = ro.name_any();
    ro.metadata
        .namespace
        .get_or_insert_with(|| "default".into());
    ro.metadata.uid.get_or_insert_with(|| "plan-uid".into());
    ro.metadata.generation = Some(1);
    ro.metadata.resource_version = None;
    ro.status = None;
    let image = first_image(&ro);
    let (from, to) = match (from_image, &image) {
        (Some(f), Some(i)) => (f.to_string(), i.clone()),
        (None, Some(i)) => (i.clone(), format!("{i}-next")),
        (_, None) => (String::new(), String::new()),
    };
    let replicas = ro.replicas_or_default();
    let blue_green = ro.blue_green().cloned();
    let canary = ro.canary().cloned().unwrap_or_default();
    let surge = int_or_percent(canary.max_surge.as_ref());
    let unavailable_written = match &blue_green {
        Some(bg) => bg.max_unavailable.clone(),
        None => canary.max_unavailable.clone(),
    };
    let unavailable = int_or_percent(unavailable_written.as_ref());
    let written = |v: Option<&IntOrString>, default: IntOrPercent| match v {
        Some(IntOrString::Int(i)) => i.to_string(),
        Some(IntOrString::String(s)) => s.clone(),
        None => format!("{default} (default)"),
    };
    let mut timeline = Timeline {
        name: name.clone(),
        strategy: if blue_green.is_some() {
            "BlueGreen"
        } else {
            "Canary"
        }
        .into(),
        replicas,
        max_surge: blue_green.is_none().then(|| {
            (
                written(canary.max_surge.as_ref(), IntOrPercent::DEFAULT_MAX_SURGE),
                replicas::max_surge(replicas, surge),
            )
        }),
        max_unavailable: (
            written(
                unavailable_written.as_ref(),
                IntOrPercent::DEFAULT_MAX_UNAVAILABLE,
            ),
            match &blue_green {
                Some(_) => unavailable
                    .unwrap_or(IntOrPercent::DEFAULT_MAX_UNAVAILABLE)
                    .scaled_value(replicas, false)
                    .min(replicas),
                None => replicas::max_unavailable(replicas, surge, unavailable),
            },
        ),
        from_image: from.clone(),
        to_image: to.clone(),
        rows: Vec::new(),
        samples: Vec::new(),
        total_seconds: 0,
        promotions: 0,
        outcome: Outcome::Healthy,
    };

    let mut w = World::new(ro);
    // Offline, analyses are assumed to pass (after the time their metrics take).
    w.assume_templates();
    if image.is_none() {
        // Nothing to update: a workloadRef (its Deployment is not known offline) is reported.
        settle(&mut w, None)?;
        return match invalid_message(&w) {
            Some(msg) => {
                timeline.outcome = Outcome::Invalid(msg);
                Ok(timeline)
            }
            None => Err(CliError::failed(format!(
                "rollout {name:?} has no image to update (spec.template.spec.containers[0].image is empty)"
            ))),
        };
    }
    if from_image.is_some() {
        w.set_image(&from);
        w.ro.metadata.generation = Some(1);
    }
    settle(&mut w, None)?;
    if let Some(msg) = invalid_message(&w) {
        timeline.outcome = Outcome::Invalid(msg);
        return Ok(timeline);
    }
    let manifest_paused = w.ro.spec.paused == Some(true);
    if manifest_paused {
        // Unpause the initial deploy as `promote` would; the update starts paused again.
        w.ro.spec.paused = Some(false);
        settle(&mut w, None)?;
    }
    if !is_healthy(&w) {
        let st = w.status();
        timeline.outcome = Outcome::Stuck(format!(
            "the initial deploy of {from} does not become Healthy ({}: {})",
            st.phase.unwrap_or_default(),
            st.message.unwrap_or_default()
        ));
        return Ok(timeline);
    }

    let mut rec = Recorder {
        t0: w.now.as_second(),
        rows: Vec::new(),
        samples: Vec::new(),
    };
    rec.record(&w);
    rec.rows.clear();
    w.ro.spec.paused = manifest_paused.then_some(true);
    w.set_image(&to);
    for _ in 0..1000 {
        settle(&mut w, Some(&mut rec))?;
        if let Some(msg) = invalid_message(&w) {
            timeline.outcome = Outcome::Invalid(msg);
            break;
        }
        if is_healthy(&w) {
            break;
        }
        // Offline, experiments are assumed to succeed after their duration, like analyses.
        let pending = match (w.finish_pending_runs(), w.finish_pending_experiments()) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        if let Some(secs) = pending {
            if let Some(row) = rec.rows.last_mut() {
                row.wait = match row.wait {
                    Wait::Seconds(s) => Wait::Seconds(s + secs),
                    _ => Wait::Seconds(secs),
                };
            }
            w.advance(secs);
            rec.record(&w);
            continue;
        }
        let st = w.status();
        let paused_by_step = st.pause_conditions.as_ref().is_some_and(|p| !p.is_empty());
        let step = st
            .current_step_index
            .and_then(|i| w.ro.canary_steps().get(i.max(0) as usize).cloned());
        if w.ro.spec.paused == Some(true) {
            rec.paused_row(&w);
            timeline.promotions += 1;
            w.ro.spec.paused = Some(false);
            continue;
        }
        let timed = match w.ro.blue_green() {
            // Blue-green: a pause before promotion ends by itself only with
            // autoPromotionSeconds (and auto-promotion enabled).
            Some(bg) => bg
                .auto_promotion_seconds
                .filter(|_| bg.auto_promotion_enabled != Some(false))
                .map(|s| Ok(i64::from(s))),
            None => step
                .as_ref()
                .and_then(|s| s.pause.as_ref())
                .and_then(|p| p.duration_seconds()),
        };
        match (paused_by_step, timed) {
            (true, None) => {
                if let Some(row) = rec.rows.last_mut() {
                    row.wait = Wait::Promote;
                }
                timeline.promotions += 1;
                w.promote();
                continue;
            }
            (true, Some(Ok(_))) | (false, _) => {
                let Some(after) = w.plan().requeue_after.filter(|d| !d.is_zero()) else {
                    timeline.outcome = Outcome::Stuck(format!(
                        "the update makes no progress at step {}: {} ({})",
                        st.current_step_index
                            .map_or("-".to_string(), |i| i.to_string()),
                        st.phase.clone().unwrap_or_default(),
                        st.message.clone().unwrap_or_default()
                    ));
                    break;
                };
                let secs = after.as_secs() as i64 + i64::from(after.subsec_nanos() > 0);
                if let Some(row) = rec.rows.last_mut() {
                    row.wait = match row.wait {
                        Wait::Seconds(s) => Wait::Seconds(s + secs),
                        _ => Wait::Seconds(secs),
                    };
                }
                w.advance(secs);
                rec.record(&w);
            }
            (true, Some(Err(e))) => {
                timeline.outcome = Outcome::Stuck(format!("a pause has an invalid duration: {e}"));
                break;
            }
        }
    }
    if timeline.outcome == Outcome::Healthy && !is_healthy(&w) {
        timeline.outcome = Outcome::Stuck("the update did not finish within 1000 rounds".into());
    }
    timeline.total_seconds = w.now.as_second() - rec.t0;
    timeline.rows = rec.rows;
    timeline.samples = rec.samples;
    Ok(timeline)
}

/// The timeline as text.
pub fn render(t: &Timeline) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Rollout:          {}", t.name);
    if !t.to_image.is_empty() {
        let _ = writeln!(out, "Update:           {} -> {}", t.from_image, t.to_image);
    }
    let _ = writeln!(out, "Strategy:         {}", t.strategy);
    let _ = writeln!(out, "Replicas:         {}", t.replicas);
    if let Some((written, pods)) = &t.max_surge {
        let _ = writeln!(out, "maxSurge:         {written} = {pods} pod(s)");
    }
    let _ = writeln!(
        out,
        "maxUnavailable:   {} = {} pod(s)",
        t.max_unavailable.0, t.max_unavailable.1
    );
    if let Outcome::Invalid(msg) = &t.outcome {
        let _ = writeln!(out);
        let _ = writeln!(out, "The controller refuses this Rollout (InvalidSpec):");
        let _ = writeln!(out, "  {msg}");
        return out;
    }
    let _ = writeln!(out);
    let new = if t.strategy == "BlueGreen" {
        "PREVIEW"
    } else {
        "CANARY"
    };
    let mut lines = vec![format!(
        "AT\tSTEP\tACTION\tWEIGHT\t{new}\tSTABLE\tPODS (PEAK)\tAVAILABLE (MIN)\tTHEN"
    )];
    for r in &t.rows {
        let wait = match r.wait {
            Wait::None => String::new(),
            Wait::Promote => "waits for promote".into(),
            Wait::Seconds(s) => format!("waits {}", duration_text(s)),
        };
        lines.push(format!(
            "{}\t{}\t{}\t{}%\t{}\t{}\t{}\t{}\t{}",
            duration_text(r.at),
            r.index.map_or("-".to_string(), |i| i.to_string()),
            r.step,
            r.weight,
            r.canary,
            r.stable,
            r.peak_pods,
            r.min_available,
            wait
        ));
    }
    out.push_str(&super::render::tabulate(&lines));
    let _ = writeln!(out);
    match &t.outcome {
        Outcome::Healthy => {
            let promotions = match t.promotions {
                0 => String::new(),
                1 => ", plus 1 manual promotion".into(),
                n => format!(", plus {n} manual promotions"),
            };
            let _ = writeln!(
                out,
                "Minimum duration: {}{promotions} (pods assumed ready at once)",
                duration_text(t.total_seconds)
            );
        }
        Outcome::Stuck(why) => {
            let _ = writeln!(out, "The update does not complete: {why}");
        }
        Outcome::Invalid(_) => {}
    }
    out
}

/// The timeline as an SVG chart: the weight (%) and the available pods of each version (old,
/// new) over time. The new version's pods stay up when it becomes the stable one. Steps that
/// take no time get a minimum width so that each is visible; an indefinite pause gets a wider,
/// hatched band marked "waits for promote" (its real length is the person's).
pub fn svg(t: &Timeline) -> String {
    const W: f64 = 800.0;
    const H: f64 = 440.0;
    const LEFT: f64 = 60.0;
    const RIGHT: f64 = 70.0;
    const TOP: f64 = 40.0;
    const BOTTOM: f64 = 150.0;
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let max_pods = t
        .rows
        .iter()
        .map(|r| r.peak_pods.max(r.new_pods + r.old_pods))
        .max()
        .unwrap_or(t.replicas)
        .max(1);
    let widths = segment_widths(t, plot_w);
    let y_weight = |w: i32| TOP + plot_h - plot_h * f64::from(w.clamp(0, 100)) / 100.0;
    let y_pods = |p: i32| TOP + plot_h - plot_h * f64::from(p.max(0)) / f64::from(max_pods);
    let mut weight_path = String::new();
    let mut new_path = String::new();
    let mut old_path = String::new();
    let mut bands = String::new();
    let mut ticks = String::new();
    let mut x = LEFT;
    for (i, r) in t.rows.iter().enumerate() {
        let x2 = x + widths[i];
        let cmd = if i == 0 { "M" } else { "L" };
        for (path, y) in [
            (&mut weight_path, y_weight(r.weight)),
            (&mut new_path, y_pods(r.new_pods)),
            (&mut old_path, y_pods(r.old_pods)),
        ] {
            let _ = write!(path, "{cmd}{x:.1},{y:.1} L{x2:.1},{y:.1} ");
        }
        let _ = write!(
            ticks,
            "<line x1=\"{x:.1}\" y1=\"{TOP}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"#ddd\"/>",
            TOP + plot_h
        );
        let (lx, ly) = (x + widths[i] / 2.0, TOP + plot_h + 26.0);
        let _ = write!(
            ticks,
            "<text x=\"{lx:.1}\" y=\"{ly:.1}\" font-size=\"10\" text-anchor=\"end\" transform=\"rotate(-35 {lx:.1} {ly:.1})\">{}</text>",
            xml_escape(&r.step)
        );
        if i == 0 || t.rows[i - 1].at != r.at {
            let _ = write!(
                ticks,
                "<text x=\"{x:.1}\" y=\"{:.1}\" font-size=\"9\" text-anchor=\"middle\" fill=\"#666\">{}</text>",
                TOP + plot_h + 12.0,
                duration_text(r.at)
            );
        }
        if r.wait == Wait::Promote {
            let _ = write!(
                bands,
                "<g class=\"waits-for-promote\"><rect x=\"{x:.1}\" y=\"{TOP}\" width=\"{:.1}\" height=\"{plot_h}\" fill=\"url(#plan-hatch)\"/>\
                 <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"middle\" fill=\"#8a4b00\">waits for promote</text></g>",
                widths[i],
                x + widths[i] / 2.0,
                TOP - 6.0
            );
        }
        x = x2;
    }
    let mut out = String::new();
    let _ = write!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" font-family=\"sans-serif\">\n\
         <title>{} update timeline</title>\n\
         <defs><pattern id=\"plan-hatch\" width=\"8\" height=\"8\" patternUnits=\"userSpaceOnUse\" patternTransform=\"rotate(45)\">\
         <rect width=\"8\" height=\"8\" fill=\"#fff4e5\"/><line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"8\" stroke=\"#f0c58a\" stroke-width=\"3\"/></pattern></defs>\n\
         <rect width=\"{W}\" height=\"{H}\" fill=\"white\"/>\n\
         <text x=\"{LEFT}\" y=\"20\" font-size=\"14\">{}: {} -&gt; {} (minimum {})</text>\n",
        xml_escape(&t.name),
        xml_escape(&t.name),
        xml_escape(&t.from_image),
        xml_escape(&t.to_image),
        duration_text(t.total_seconds)
    );
    let _ = writeln!(out, "{bands}");
    let _ = writeln!(out, "{ticks}");
    let _ = writeln!(
        out,
        "<rect x=\"{LEFT}\" y=\"{TOP}\" width=\"{plot_w}\" height=\"{plot_h}\" fill=\"none\" stroke=\"#333\"/>"
    );
    for pct in [0, 50, 100] {
        let _ = writeln!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"end\" fill=\"#1f5fbf\">{pct}%</text>",
            LEFT - 6.0,
            y_weight(pct) + 3.0
        );
    }
    for pods in [0, max_pods] {
        let _ = writeln!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" fill=\"#333\">{pods} pods</text>",
            LEFT + plot_w + 6.0,
            y_pods(pods) + 3.0
        );
    }
    let _ = writeln!(
        out,
        "<path class=\"weight\" d=\"{}\" fill=\"none\" stroke=\"#1f5fbf\" stroke-width=\"5\" stroke-opacity=\"0.35\"/>",
        weight_path.trim_end()
    );
    let _ = writeln!(
        out,
        "<path class=\"old-pods\" d=\"{}\" fill=\"none\" stroke=\"#2a9d2a\" stroke-width=\"2\" stroke-dasharray=\"2 3\"/>",
        old_path.trim_end()
    );
    let _ = writeln!(
        out,
        "<path class=\"new-pods\" d=\"{}\" fill=\"none\" stroke=\"#e69500\" stroke-width=\"2\" stroke-dasharray=\"6 3\"/>",
        new_path.trim_end()
    );
    let ly = H - 12.0;
    let _ = writeln!(
        out,
        "<g font-size=\"11\"><line x1=\"{LEFT}\" y1=\"{ly}\" x2=\"{}\" y2=\"{ly}\" stroke=\"#1f5fbf\" stroke-width=\"5\" stroke-opacity=\"0.35\"/>\
         <text x=\"{}\" y=\"{}\">weight %</text>\
         <line x1=\"{}\" y1=\"{ly}\" x2=\"{}\" y2=\"{ly}\" stroke=\"#e69500\" stroke-width=\"2\" stroke-dasharray=\"6 3\"/>\
         <text x=\"{}\" y=\"{}\">new version pods</text>\
         <line x1=\"{}\" y1=\"{ly}\" x2=\"{}\" y2=\"{ly}\" stroke=\"#2a9d2a\" stroke-width=\"2\" stroke-dasharray=\"2 3\"/>\
         <text x=\"{}\" y=\"{}\">old version pods</text></g>",
        LEFT + 24.0,
        LEFT + 28.0,
        ly + 4.0,
        LEFT + 110.0,
        LEFT + 134.0,
        LEFT + 138.0,
        ly + 4.0,
        LEFT + 250.0,
        LEFT + 274.0,
        LEFT + 278.0,
        ly + 4.0
    );
    out.push_str("</svg>\n");
    out
}

/// The width of each row's segment on the chart: an indefinite pause a fixed, visible share;
/// the others a minimum plus a share of the rest in proportion to their real duration.
fn segment_widths(t: &Timeline, plot_w: f64) -> Vec<f64> {
    let real: Vec<i64> = t
        .rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let next = t.rows.get(i + 1).map_or(t.total_seconds, |n| n.at);
            (next - r.at).max(0)
        })
        .collect();
    let n = t.rows.len().max(1) as f64;
    let promotes = t.rows.iter().filter(|r| r.wait == Wait::Promote).count() as f64;
    let min_w = plot_w * 0.4 / n;
    // A pause for a person: a sixth of the chart (less when there are many).
    let promote_w = (plot_w / 6.0)
        .min(plot_w * 0.5 / promotes.max(1.0))
        .max(min_w);
    let fixed = promote_w * promotes + min_w * (n - promotes);
    let flexible = (plot_w - fixed).max(0.0);
    let timed: Vec<bool> = t.rows.iter().map(|r| r.wait != Wait::Promote).collect();
    let total_real: i64 = real
        .iter()
        .zip(&timed)
        .filter(|(_, t)| **t)
        .map(|(r, _)| *r)
        .sum();
    let others = (n - promotes).max(1.0);
    real.iter()
        .zip(&timed)
        .map(|(r, timed)| match (*timed, total_real > 0) {
            (false, _) => promote_w,
            (true, true) => min_w + flexible * (*r as f64) / (total_real as f64),
            (true, false) => min_w + flexible / others,
        })
        .collect()
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rollout(replicas: i32, canary: serde_json::Value) -> Rollout {
        serde_json::from_value(json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
            "metadata": {"name": "demo"},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": "demo"}},
                "template": {"metadata": {"labels": {"app": "demo"}},
                             "spec": {"containers": [{"name": "demo", "image": "demo:v1"}]}},
                "strategy": {"canary": canary}
            }
        }))
        .unwrap()
    }

    #[test]
    fn seeds_scenario_timeline() {
        let ro = rollout(
            5,
            json!({"steps": [
                {"setWeight": 20}, {"pause": {}}, {"setWeight": 40}, {"pause": {"duration": "10s"}},
                {"setWeight": 60}, {"pause": {"duration": 10}}, {"setWeight": 80},
                {"pause": {"duration": "10s"}}
            ]}),
        );
        let t = simulate(&ro, None).unwrap();
        assert_eq!(t.outcome, Outcome::Healthy);
        assert_eq!(t.to_image, "demo:v1-next");
        assert_eq!(t.total_seconds, 30);
        assert_eq!(t.promotions, 1);
        let got: Vec<(Option<i32>, i32, i32, i32, i64)> = t
            .rows
            .iter()
            .map(|r| (r.index, r.weight, r.canary, r.stable, r.at))
            .collect();
        assert_eq!(
            got,
            vec![
                (Some(0), 20, 1, 4, 0),
                (Some(1), 20, 1, 4, 0),
                (Some(2), 40, 2, 3, 0),
                (Some(3), 40, 2, 3, 0),
                (Some(4), 60, 3, 2, 10),
                (Some(5), 60, 3, 2, 10),
                (Some(6), 80, 4, 1, 20),
                (Some(7), 80, 4, 1, 20),
                (Some(8), 100, 0, 5, 30),
            ]
        );
        assert_eq!(t.rows[1].wait, Wait::Promote);
        assert_eq!(t.rows[3].wait, Wait::Seconds(10));
        // 25% surge of 5 = 2 pods: never more than 7 pods.
        assert!(t.rows.iter().all(|r| r.peak_pods <= 7));
        assert_eq!(t.max_surge, Some(("25% (default)".into(), 2)));
        assert_eq!(t.max_unavailable, ("25% (default)".into(), 1));
        let text = render(&t);
        assert!(
            text.contains("Minimum duration: 30s, plus 1 manual promotion"),
            "{text}"
        );
        // By version: the new version's 5 pods stay up once they are the stable ones.
        let last = t.rows.last().unwrap();
        assert_eq!((last.new_pods, last.old_pods), (5, 0));
        assert_eq!((t.rows[0].new_pods, t.rows[0].old_pods), (1, 4));
        let svg = svg(&t);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("waits for promote").count(), 1, "{svg}");
        assert!(svg.contains("old version pods"), "{svg}");
        // The indefinite pause gets a sixth of the plot (670 px wide); instant steps less.
        let widths = segment_widths(&t, 670.0);
        assert!((widths[1] - 670.0 / 6.0).abs() < 0.01, "{widths:?}");
        assert!(widths[0] < widths[1] && widths[2] < widths[1], "{widths:?}");
        assert!(
            (widths.iter().sum::<f64>() - 670.0).abs() < 0.01,
            "{widths:?}"
        );
        // The new version's pod line ends at the top (5 pods), not at 0.
        let new_path = svg
            .lines()
            .find(|l| l.contains("class=\"new-pods\""))
            .unwrap();
        let d = new_path
            .split("d=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        let end_y: f64 = d.rsplit(',').next().unwrap().parse().unwrap();
        assert!((end_y - 40.0).abs() < 0.01, "{new_path}");
    }

    #[test]
    fn analysis_steps_are_assumed_to_pass() {
        let ro = rollout(
            2,
            json!({"steps": [{"setWeight": 50}, {"analysis": {"templates": [{"templateName": "t"}]}}]}),
        );
        let t = simulate(&ro, Some("demo:v0")).unwrap();
        assert_eq!(t.outcome, Outcome::Healthy, "{:?}", t.outcome);
        assert!(render(&t).contains("analysis"), "{}", render(&t));
    }

    #[test]
    fn experiment_steps_are_assumed_to_succeed_after_their_duration() {
        let ro = rollout(
            2,
            json!({"steps": [{"setWeight": 50},
                             {"experiment": {"duration": "2m", "templates": [{"name": "x", "specRef": "canary"}]}}]}),
        );
        let t = simulate(&ro, Some("demo:v0")).unwrap();
        assert_eq!(t.outcome, Outcome::Healthy, "{:?}", t.outcome);
        let out = render(&t);
        assert!(out.contains("experiment"), "{out}");
        assert!(
            t.total_seconds >= 120,
            "the experiment's duration counts: {out}"
        );
    }

    #[test]
    fn rolling_update_without_steps() {
        let ro = rollout(4, json!({"maxSurge": 1, "maxUnavailable": 0}));
        let t = simulate(&ro, Some("demo:v0")).unwrap();
        assert_eq!(t.outcome, Outcome::Healthy);
        assert_eq!(t.from_image, "demo:v0");
        assert_eq!(t.to_image, "demo:v1");
        assert_eq!(t.total_seconds, 0);
        assert!(t.rows.iter().all(|r| r.peak_pods <= 5), "{:?}", t.rows);
        assert!(t.rows.iter().all(|r| r.min_available >= 4), "{:?}", t.rows);
    }

    #[test]
    fn manifest_parsing() {
        let text = "apiVersion: v1\nkind: Service\nmetadata: {name: s}\n---\napiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata: {name: r}\nspec: {}\n";
        assert_eq!(
            rollout_from_manifest(text, "f.yaml").unwrap().name_any(),
            "r"
        );
        let err = rollout_from_manifest("kind: Service\n", "f.yaml").unwrap_err();
        assert_eq!(err.message, "no Rollout (kind: Rollout) found in f.yaml");
    }

    #[test]
    fn durations() {
        assert_eq!(duration_text(0), "0s");
        assert_eq!(duration_text(90), "1m30s");
        assert_eq!(duration_text(3605), "1h0m5s");
    }
}
