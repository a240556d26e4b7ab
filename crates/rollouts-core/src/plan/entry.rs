//! The entry of a plan: a Rollout being deleted is left alone; one with a `workloadRef` is
//! planned as if the template of the object it names were inline ([`super::workload`]); then
//! the validation gate (InvalidSpec: upstream's rules, features not built, Services that do not
//! exist), the strategy on a [`View`] of the observation, and the status.

use super::status::{self, invalid_spec};
use super::validate::{self, FieldError};
use super::view::{View, classify};
use super::writes::Writes;
use super::{Effect, Event, Observed, Plan, bluegreen, canary};
use crate::api::Rollout;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::jiff::Timestamp;
use kube_core::ResourceExt;

/// Plans one reconcile of a Rollout.
pub fn plan(obs: &Observed<'_>, now: Timestamp) -> Plan {
    let ro = obs.rollout;
    if ro.metadata.deletion_timestamp.is_some() {
        return Plan {
            status: ro.status.clone().unwrap_or_default(),
            ..Plan::default()
        };
    }
    if ro.spec.workload_ref.is_none() {
        return admitted(obs, now, false);
    }
    // As written (a workloadRef Rollout carries no template of its own), then as resolved.
    if let Some(err) = validate::validate_rollout_spec(ro, false).first() {
        return invalid_spec(ro, err, now);
    }
    match super::workload::resolve(ro, obs.workload.as_ref()) {
        Err(err) => invalid_spec(ro, &err, now),
        Ok((resolved, generation)) => {
            let inner = Observed {
                rollout: &resolved,
                workload: None,
                ..obs.clone()
            };
            let mut plan = admitted(&inner, now, true);
            workload_effects(
                &resolved,
                &inner,
                obs.workload.as_ref(),
                generation,
                &mut plan,
            );
            plan
        }
    }
}

/// The validation gate, then the strategy. `resolved`: the template was taken from the
/// `workloadRef` (validated like an inline one).
fn admitted(obs: &Observed<'_>, now: Timestamp, resolved: bool) -> Plan {
    let ro = obs.rollout;
    let errors = validate::validate_rollout_spec(ro, resolved);
    if let Some(err) = errors
        .first()
        .cloned()
        .or_else(|| unsupported(ro))
        .or_else(|| missing_services(obs))
        .or_else(|| missing_templates(obs))
    {
        return invalid_spec(ro, &err, now);
    }
    let (first, reset) = strategy(obs, now);
    if !reset || !first.effects.is_empty() {
        return first;
    }
    // A canary whose pod template (or steps) changed: upstream resets the status in a reconcile
    // of its own and creates the new ReplicaSet in the next, one status write and one watch
    // round trip later. Here the next reconcile is planned at once, from the reset status as
    // it will be written: one status write instead of two, and the new ReplicaSet a round trip
    // sooner. A crash after the ReplicaSet's creation, before the status write, is the same as
    // a lost status write: the next reconcile resets again and finds the ReplicaSet. Only when
    // the reset itself writes nothing else (a rollback to an existing ReplicaSet syncs its
    // revision first, as upstream).
    let mut reset_ro = ro.clone();
    reset_ro.status = Some(first.status);
    let (next, _) = strategy(
        &Observed {
            rollout: &reset_ro,
            ..obs.clone()
        },
        now,
    );
    let mut events = first.events;
    events.extend(next.events);
    Plan { events, ..next }
}

/// The strategy on a [`View`] of an admitted observation, and whether it reset the status for
/// a changed pod template or steps.
fn strategy(obs: &Observed<'_>, now: Timestamp) -> (Plan, bool) {
    let Some(mut v) = View::new(obs, now) else {
        // Validation guarantees a strategy.
        let status = obs.rollout.status.clone().unwrap_or_default();
        return (
            Plan {
                status,
                ..Plan::default()
            },
            false,
        );
    };
    let mut w = Writes::new(&v);
    let st = if v.bg.is_some() {
        bluegreen::reconcile(&mut v, &mut w, obs)
    } else {
        canary::reconcile(&mut v, &mut w, obs)
    };
    let reset = w.reset;
    (status::finish(&v, w, st), reset)
}

/// What a Rollout with a `workloadRef` writes besides its own plan: the generation it was
/// planned from (status and annotation), and the Deployment's scale-down.
fn workload_effects(
    resolved: &Rollout,
    obs: &Observed<'_>,
    workload: Option<&serde_json::Value>,
    generation: i64,
    plan: &mut Plan,
) {
    let generation = generation.to_string();
    plan.status.workload_observed_generation = Some(generation.clone());
    let annotated = resolved
        .annotations()
        .get(crate::api::consts::WORKLOAD_GENERATION_ANNOTATION);
    if annotated != Some(&generation) {
        plan.effects
            .insert(0, Effect::SetWorkloadGeneration { generation });
    }
    let (_, rs) = classify(resolved, &obs.replica_sets, obs.adoptable.as_deref());
    let revision = rs.new_rs().map(|r| r.revision);
    let (Some(target), Some(obj), Some(Ok(key))) = (
        super::workload::scale_down_target(resolved, revision),
        workload,
        super::workload::key(resolved),
    ) else {
        return;
    };
    let current = obj
        .pointer("/spec/replicas")
        .and_then(serde_json::Value::as_i64)
        .unwrap_or(1);
    if current != i64::from(target) {
        let rv = obj.pointer("/metadata/resourceVersion").cloned();
        plan.effects
            .push(Effect::ScaleWorkload(crate::traffic::ObjectChange::Patch {
                key,
                patch: serde_json::json!({"metadata": {"resourceVersion": rv},
                                          "spec": {"replicas": target}}),
            }));
        plan.events.push(Event::normal(
            "ScalingDeployment",
            format!(
                "Scaled Deployment {} from {current} to {target}",
                obj.pointer("/metadata/name")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or_default()
            ),
        ));
    }
}

/// Features this controller does not carry out yet: refusing them (InvalidSpec) is safer than
/// silently skipping them (e.g. promoting without the analysis a user asked for). The list of
/// every spec field and what the controller does with it is `tests/field_audit.rs`.
fn unsupported(ro: &Rollout) -> Option<FieldError> {
    if ro.canary().is_some_and(|c| c.ping_pong.is_some()) {
        // Ping-pong swaps the roles of two Services at each promotion instead of moving the
        // stable Service's selector; not built.
        return Some(FieldError::forbidden(
            "spec.strategy.canary.pingPong",
            "ping-pong Services are not supported by this controller yet",
        ));
    }
    let alb = ro
        .canary()
        .and_then(|c| c.traffic_routing.as_ref())
        .is_some_and(|tr| tr.alb.is_some());
    for (i, step) in ro.canary_steps().iter().enumerate() {
        if alb
            && step
                .set_header_route
                .as_ref()
                .is_some_and(crate::traffic::route_wanted)
        {
            // Refused up front rather than when the update reaches the step.
            return Some(FieldError::forbidden(
                format!("spec.strategy.canary.steps[{i}].setHeaderRoute"),
                "header routes with ALB are not supported by this controller yet",
            ));
        }
        if step.plugin.is_some() {
            return Some(FieldError::forbidden(
                format!("spec.strategy.canary.steps[{i}].plugin"),
                "plugin steps are not supported by this controller yet",
            ));
        }
        if let Some(err) = unsupported_experiment_weight(ro, i, step) {
            return Some(err);
        }
    }
    None
}

/// Experiment template weights are routed by the Istio router (a destination per template
/// Service, and with a subset-level split a DestinationRule subset) and the ALB router (a
/// target group per template Service); the other routers (SMI, plugins) are not built.
fn unsupported_experiment_weight(
    ro: &Rollout,
    i: usize,
    step: &crate::api::CanaryStep,
) -> Option<FieldError> {
    let tr = ro.canary().and_then(|c| c.traffic_routing.as_ref());
    let ex = step.experiment.as_ref()?;
    let k = ex
        .templates
        .iter()
        .flatten()
        .position(|t| t.weight.is_some())?;
    let istio = tr.is_some_and(|t| t.istio.is_some());
    let alb = tr.is_some_and(|t| t.alb.is_some());
    let single = tr.is_some_and(|t| {
        [
            t.istio.is_some(),
            t.nginx.is_some(),
            t.alb.is_some(),
            t.smi.is_some(),
            t.ambassador.is_some(),
            t.apisix.is_some(),
            t.traefik.is_some(),
            t.plugins.is_some(),
            t.app_mesh.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count()
            == 1
    });
    if (istio || alb) && single {
        return None;
    }
    Some(FieldError::forbidden(
        format!("spec.strategy.canary.steps[{i}].experiment.templates[{k}].weight"),
        "experiment template weights are supported by this controller only with Istio or ALB traffic routing yet",
    ))
}

/// Services the spec names that do not exist (upstream reports them as InvalidSpec too).
fn missing_services(obs: &Observed<'_>) -> Option<FieldError> {
    let ro = obs.rollout;
    let mut named: Vec<(&str, &Option<String>)> = Vec::new();
    if let Some(c) = ro.canary() {
        named.push(("canary.canaryService", &c.canary_service));
        named.push(("canary.stableService", &c.stable_service));
    }
    if let Some(b) = ro.blue_green() {
        named.push(("blueGreen.activeService", &b.active_service));
        named.push(("blueGreen.previewService", &b.preview_service));
    }
    for (field, name) in named {
        if let Some(name) = name.as_deref().filter(|n| !n.is_empty())
            && !obs.services.contains_key(name)
        {
            return Some(FieldError::invalid(
                format!("spec.strategy.{field}"),
                format!("\"{name}\""),
                format!("service \"{name}\" not found"),
            ));
        }
    }
    None
}

/// Upstream's `getReferencedRolloutAnalyses`: every AnalysisTemplate the strategy names (and
/// those they include) must exist, checked at every reconcile, so that a Rollout naming a
/// missing template is InvalidSpec before anything is deployed, not only when its analysis is
/// due. ClusterAnalysisTemplates are checked when the analysis runs (a namespaced controller
/// does not watch them).
fn missing_templates(obs: &Observed<'_>) -> Option<FieldError> {
    let ro = obs.rollout;
    let mut sites: Vec<(String, &crate::api::RolloutAnalysis)> = Vec::new();
    if let Some(b) = ro.blue_green() {
        if let Some(a) = &b.pre_promotion_analysis {
            sites.push((
                "spec.strategy.blueGreen.prePromotionAnalysis.templates".into(),
                a,
            ));
        }
        if let Some(a) = &b.post_promotion_analysis {
            sites.push((
                "spec.strategy.blueGreen.postPromotionAnalysis.templates".into(),
                a,
            ));
        }
    }
    if ro.canary().is_some() {
        for (i, step) in ro.canary_steps().iter().enumerate() {
            if let Some(a) = &step.analysis {
                sites.push((
                    format!("spec.strategy.canary.steps[{i}].analysis.templates"),
                    a,
                ));
            }
        }
        if let Some(a) = ro.canary().and_then(|c| c.analysis.as_ref()) {
            sites.push((
                "spec.strategy.canary.analysis.templates".into(),
                &a.analysis,
            ));
        }
    }
    for (path, analysis) in sites {
        let mut pending: Vec<(String, String)> = analysis
            .templates
            .iter()
            .flatten()
            .filter(|t| t.cluster_scope != Some(true))
            .filter_map(|t| t.template_name.clone())
            .map(|n| (path.clone(), n))
            .collect();
        let mut seen = std::collections::BTreeSet::new();
        while let Some((path, name)) = pending.pop() {
            if !seen.insert(name.clone()) {
                continue;
            }
            let Some(t) = obs.analysis_templates.get(&name) else {
                return Some(FieldError::invalid(
                    path,
                    format!("\"{name}\""),
                    format!("AnalysisTemplate '{name}' not found"),
                ));
            };
            for inner in t.spec.templates.iter().flatten() {
                if inner.cluster_scope != Some(true)
                    && let Some(n) = inner.template_name.clone()
                {
                    pending.push(("spec.templates".into(), n));
                }
            }
        }
    }
    None
}

/// Whether the controller must list the Rollout's pods for this reconcile: a restart is due,
/// or a ReplicaSet's pods must be moved to the ephemeral metadata of a new role. Steady
/// state lists nothing.
pub fn needs_pods(
    ro: &Rollout,
    replica_sets: &[&ReplicaSet],
    adoptable: Option<&str>,
    now: Timestamp,
) -> bool {
    if super::restart::needs_restart(ro, now) {
        return true;
    }
    if !super::ephemeral::configured(ro) {
        return false;
    }
    let (_, rs) = classify(ro, replica_sets, adoptable);
    super::ephemeral::targets(ro, &rs)
        .iter()
        .any(|t| super::ephemeral::pods_pending(t, &rs.all[t.idx]))
}
