//! One template of an Experiment: its ReplicaSet (created, scaled, scaled down after the
//! delay) and its `status.templateStatuses[]` entry, as upstream's `reconcileTemplate`.

use super::{Effect, Observed, Plan, owner_reference, replica_set_name};
use crate::api::consts::{
    DEFAULT_REPLICASET_SCALE_DOWN_DEADLINE_ANNOTATION_KEY, DEFAULT_ROLLOUT_UNIQUE_LABEL_KEY,
    EXPERIMENT_NAME_ANNOTATION_KEY, EXPERIMENT_TEMPLATE_NAME_ANNOTATION_KEY,
};
use crate::api::template_status_code as code;
use crate::api::{Experiment, TemplateSpec, TemplateStatus};
use crate::plan::{Event, stamp};
use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube_core::ResourceExt;
use std::collections::BTreeMap;
use std::time::Duration;

/// Whether a template status is final (upstream's `TemplateStatusCode.Completed`).
pub fn status_completed(s: &str) -> bool {
    matches!(s, code::SUCCESSFUL | code::FAILED | code::ERROR)
}

/// The template this ReplicaSet runs, by its annotations (upstream's
/// `getReplicaSetsForExperiment`: the experiment name annotation must name `ex`).
pub fn template_of<'a>(ex: &Experiment, rs: &'a ReplicaSet) -> Option<&'a str> {
    let a = rs.metadata.annotations.as_ref()?;
    if a.get(EXPERIMENT_NAME_ANNOTATION_KEY).map(String::as_str) != Some(ex.name_any().as_str()) {
        return None;
    }
    a.get(EXPERIMENT_TEMPLATE_NAME_ANNOTATION_KEY)
        .map(String::as_str)
        .filter(|t| !t.is_empty())
}

/// A template's ReplicaSet, as upstream's `newReplicaSetFromTemplate` builds it, with
/// `replicas` replicas.
pub fn new_replica_set(
    ex: &Experiment,
    t: &TemplateSpec,
    collision_count: Option<i32>,
    replicas: i32,
) -> ReplicaSet {
    let name = t.name.clone().unwrap_or_default();
    let mut template = t.template.clone().unwrap_or_default();
    let meta = template.metadata.get_or_insert_with(Default::default);
    if let Some(labels) = meta.labels.as_mut() {
        labels.remove(DEFAULT_ROLLOUT_UNIQUE_LABEL_KEY);
    }
    let template_json = serde_json::to_value(&template).unwrap_or_default();
    let hash = crate::plan::hash::pod_template_hash(&template_json, collision_count);
    let meta = template.metadata.get_or_insert_with(Default::default);
    meta.labels
        .get_or_insert_with(Default::default)
        .insert(DEFAULT_ROLLOUT_UNIQUE_LABEL_KEY.into(), hash.clone());
    let labels = meta.labels.clone();
    let mut selector = t.selector.clone().unwrap_or_default();
    selector
        .match_labels
        .get_or_insert_with(Default::default)
        .insert(DEFAULT_ROLLOUT_UNIQUE_LABEL_KEY.into(), hash);
    let annotations = BTreeMap::from([
        (EXPERIMENT_NAME_ANNOTATION_KEY.to_string(), ex.name_any()),
        (
            EXPERIMENT_TEMPLATE_NAME_ANNOTATION_KEY.to_string(),
            name.clone(),
        ),
    ]);
    ReplicaSet {
        metadata: ObjectMeta {
            name: Some(replica_set_name(ex, &name)),
            namespace: ex.namespace(),
            labels,
            annotations: Some(annotations),
            owner_references: Some(vec![owner_reference(ex)]),
            ..Default::default()
        },
        spec: Some(ReplicaSetSpec {
            replicas: Some(replicas),
            min_ready_seconds: t.min_ready_seconds,
            selector,
            template: Some(template),
        }),
        status: None,
    }
}

fn deadline_of(rs: &ReplicaSet) -> Option<&str> {
    rs.metadata
        .annotations
        .as_ref()?
        .get(DEFAULT_REPLICASET_SCALE_DOWN_DEADLINE_ANNOTATION_KEY)
        .map(String::as_str)
        .filter(|s| !s.is_empty())
}

/// Adds `d` to the plan's requeue (the earliest wins).
pub(super) fn requeue(plan: &mut Plan, d: Duration) {
    plan.requeue_after = Some(plan.requeue_after.map_or(d, |r| r.min(d)));
}

/// Reconciles one template: its ReplicaSet's effects, its status entry and events.
pub fn reconcile(
    obs: &Observed<'_>,
    t: &TemplateSpec,
    terminating: bool,
    now: Timestamp,
    plan: &mut Plan,
) {
    let ex = obs.experiment;
    let old = ex.status.clone().unwrap_or_default();
    let name = t.name.clone().unwrap_or_default();
    let mut ts = super::template_status(&old, &name)
        .cloned()
        .unwrap_or_else(|| TemplateStatus {
            name: Some(name.clone()),
            ..Default::default()
        });
    let prev = ts.clone();
    let desired = super::desired_replicas(ex, &old, t);
    let stamp_now = stamp(now);
    let rs = obs
        .replica_sets
        .iter()
        .copied()
        .find(|rs| template_of(ex, rs) == Some(name.as_str()));
    let rs_name = replica_set_name(ex, &name);

    match rs {
        None if obs.taken_names.contains(&rs_name) => {
            // Upstream would try, fail with AlreadyExists and bump a collision count that does
            // not change the name; we say why instead.
            ts.status = Some(code::ERROR.into());
            ts.message = Some(format!(
                "Failed to create ReplicaSet for template '{name}': replicasets.apps \"{rs_name}\" already exists"
            ));
        }
        None if obs.refused_templates.contains_key(&name) => {
            ts.status = Some(code::ERROR.into());
            ts.message = Some(format!(
                "Failed to create ReplicaSet for template '{name}': {}",
                obs.refused_templates[&name]
            ));
        }
        // A finished template (e.g. one whose ReplicaSet was refused) gets none.
        None if ts.status.as_deref().is_some_and(status_completed) => {}
        None => {
            let new = new_replica_set(ex, t, ts.collision_count, desired);
            if desired > 0 {
                plan.events.push(Event::normal(
                    "NewReplicaSetCreated",
                    format!("Created new replica set \"{rs_name}\" with size {desired}"),
                ));
            }
            plan.effects.push(Effect::CreateReplicaSet(Box::new(new)));
            ts.last_transition_time = Some(stamp_now.clone());
        }
        Some(rs) => {
            super::services::reconcile(obs, t, rs, desired, &mut ts, plan);
            scale(ex, t, rs, desired, now, &mut ts, plan);
        }
    }

    let st = rs.and_then(|r| r.status.as_ref());
    ts.replicas = Some(st.map_or(0, |s| s.replicas));
    ts.updated_replicas = ts.replicas;
    ts.ready_replicas = Some(st.and_then(|s| s.ready_replicas).unwrap_or(0));
    ts.available_replicas = Some(st.and_then(|s| s.available_replicas).unwrap_or(0));
    let counts = |s: &TemplateStatus| {
        (
            s.replicas.unwrap_or(0),
            s.updated_replicas.unwrap_or(0),
            s.ready_replicas.unwrap_or(0),
            s.available_replicas.unwrap_or(0),
        )
    };
    if counts(&prev) != counts(&ts) {
        ts.last_transition_time = Some(stamp_now.clone());
    }

    // A completed template status is final.
    if !ts.status.as_deref().is_some_and(status_completed) {
        if desired == ts.available_replicas.unwrap_or(0) {
            let (passed, _) = super::passed_duration(ex, &old, now);
            let s = if passed || terminating {
                code::SUCCESSFUL
            } else {
                code::RUNNING
            };
            ts.status = Some(s.into());
        } else {
            let pds = super::progress_deadline_seconds(ex);
            let from = ts
                .last_transition_time
                .as_ref()
                .map_or(now, |t| t.0)
                .checked_add(SignedDuration::from_secs(i64::from(pds)))
                .unwrap_or(now);
            if now > from {
                ts.status = Some(code::FAILED.into());
                ts.message = Some(format!(
                    "Template '{name}' exceeded its progressDeadlineSeconds ({pds})"
                ));
            } else if terminating {
                ts.status = Some(code::SUCCESSFUL.into());
            } else {
                ts.status = Some(code::PROGRESSING.into());
            }
        }
    }

    if prev.status != ts.status {
        let new_status = ts.status.clone().unwrap_or_default();
        let mut msg = format!(
            "Template '{name}' transitioned from {} -> {new_status}",
            prev.status.as_deref().unwrap_or_default()
        );
        if let Some(m) = ts.message.as_deref().filter(|m| !m.is_empty()) {
            msg = format!("{msg}: {m}");
        }
        let reason = format!("Template{new_status}");
        plan.events.push(
            if matches!(new_status.as_str(), code::FAILED | code::ERROR) {
                Event::warning(&reason, msg)
            } else {
                Event::normal(&reason, msg)
            },
        );
    }
    set_template_status(&mut plan.status, ts);
}

/// Scales an existing template ReplicaSet to `desired`; to 0 only once its
/// `scale-down-deadline` (now + `scaleDownDelaySeconds`, set when it is first due) has passed.
fn scale(
    ex: &Experiment,
    t: &TemplateSpec,
    rs: &ReplicaSet,
    desired: i32,
    now: Timestamp,
    ts: &mut TemplateStatus,
    plan: &mut Plan,
) {
    let current = rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let mut deadline = deadline_of(rs).map(str::to_string);
    let mut annotation: Option<Option<String>> = None;
    if desired == 0 {
        let delay = super::scale_down_delay_seconds(ex);
        if delay <= 0 {
            if deadline.is_some() {
                annotation = Some(None);
                deadline = None;
            }
        } else if deadline.is_none() && current != 0 {
            let at = now
                .checked_add(SignedDuration::from_secs(i64::from(delay)))
                .unwrap_or(now);
            let at = at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
            annotation = Some(Some(at.clone()));
            deadline = Some(at);
        }
    }
    if current != desired {
        // As upstream: any reconcile that finds the ReplicaSet off its count (including while
        // a scale-down waits for its deadline) restarts the template's progress clock.
        ts.last_transition_time = Some(stamp(now));
    }
    let mut target = desired;
    if desired == 0 && current != 0 {
        // Upstream's `GetTimeRemainingBeforeScaleDownDeadline`: an unreadable deadline does
        // not hold the scale-down.
        if let Some(at) = deadline
            .as_deref()
            .and_then(|d| d.parse::<Timestamp>().ok())
            && at > now
        {
            let left = Duration::try_from(at.duration_since(now)).unwrap_or_default();
            requeue(plan, left);
            target = t.replicas.unwrap_or(crate::api::defaults::REPLICAS);
        }
    }
    let replicas = (current != target).then_some(target);
    if let Some(n) = replicas {
        let (op, rs_name) = (if current < n { "up" } else { "down" }, rs.name_any());
        plan.events.push(Event::normal(
            "ScalingReplicaSet",
            format!("Scaled {op} ReplicaSet {rs_name} from {current} to {n}"),
        ));
    }
    if replicas.is_some() || annotation.is_some() {
        plan.effects.push(Effect::PatchReplicaSet {
            name: rs.name_any(),
            replicas,
            scale_down_deadline: annotation,
        });
    }
}

/// Upstream's `SetTemplateStatus`: replaces the entry of the same name, or appends.
pub fn set_template_status(status: &mut crate::api::ExperimentStatus, ts: TemplateStatus) {
    let list = status.template_statuses.get_or_insert_with(Vec::new);
    match list.iter_mut().find(|t| t.name == ts.name) {
        Some(slot) => *slot = ts,
        None => list.push(ts),
    }
}
