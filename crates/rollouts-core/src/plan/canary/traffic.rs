//! Where a canary's traffic goes: the stable and canary Services' selectors, and the traffic
//! routers' weights, hashes and routes (upstream's `reconcileStableAndCanaryService` and
//! `reconcileTrafficRouting`).

use super::super::targets;
use super::super::view::View;
use super::super::writes::Writes;
use super::super::{Effect, Event, Observed};
use crate::api::RolloutStatus;
use crate::api::consts::{DEFAULT_ROLLOUT_UNIQUE_LABEL_KEY, MANAGED_BY_ROLLOUTS_KEY};
use kube_core::ResourceExt;

/// Upstream's `reconcileStableAndCanaryService`, and the canary Service's return to the stable
/// on an abort (`reconcileTrafficRouting`): at once, except with dynamic stable scaling, where
/// the canary Service keeps the canary until its traffic weight is back at 0. While rolling back
/// to the stable with dynamic stable scaling, the canary Service is left alone until the stable
/// is at full size.
pub fn reconcile_services(v: &View<'_>, w: &mut Writes, obs: &Observed<'_>) {
    let (stable, new) = (v.stable_idx(), v.new_idx());
    ensure_service(v, w, obs, v.canary.stable_service.as_deref(), stable);
    let dynamic = v.traffic_routed() && v.canary.dynamic_stable_scale == Some(true);
    if w.aborted(v) {
        let target = if dynamic && targets::abort_weight(v) > 0 {
            new
        } else {
            stable
        };
        ensure_service(v, w, obs, v.canary.canary_service.as_deref(), target);
        return;
    }
    if v.traffic_routed() && targets::dynamically_rolling_back_to_stable(v).is_some() {
        return;
    }
    ensure_service(v, w, obs, v.canary.canary_service.as_deref(), new);
}

/// Upstream's `ensureSVCTargets`: points a Service at the ReplicaSet `rs`, adopting a Service
/// not yet managed only once that ReplicaSet is fully available, and never pointing one at a
/// ReplicaSet without available pods.
fn ensure_service(
    v: &View<'_>,
    w: &mut Writes,
    obs: &Observed<'_>,
    svc: Option<&str>,
    rs: Option<usize>,
) {
    let (Some(svc_name), Some(idx)) = (svc.filter(|s| !s.is_empty()), rs) else {
        return;
    };
    let Some(svc) = obs.services.get(svc_name) else {
        return;
    };
    let rs = &v.rs.all[idx];
    let current = svc
        .spec
        .as_ref()
        .and_then(|s| s.selector.as_ref())
        .and_then(|s| s.get(DEFAULT_ROLLOUT_UNIQUE_LABEL_KEY))
        .cloned()
        .unwrap_or_default();
    if current == rs.hash {
        return;
    }
    let adopting = !svc.annotations().contains_key(MANAGED_BY_ROLLOUTS_KEY);
    if adopting && rs.available < rs.spec_replicas.max(1) {
        // Adopting a Service: wait until the ReplicaSet is fully available.
        return;
    }
    if rs.available == 0 {
        // Never point a Service at nothing.
        return;
    }
    w.set_selector(svc_name, &current, &rs.hash);
}

/// Upstream's desired canary weight (`reconcileTrafficRouting`): 0 when fully promoted, or
/// aborted (with dynamic stable scaling: stepping back as the stable can take the traffic,
/// [`targets::abort_weight`]); the previous step's weight until the canary pods for this step
/// are available, then the step's weight, and `maxTrafficWeight` once all steps are done. On a
/// full promotion the weight stays where it is (with dynamic stable scaling: follows the
/// canary's available pods).
fn desired_weight(v: &View<'_>, w: &Writes) -> i32 {
    let max = v.max_weight();
    let (_, idx) = v.current_step();
    let new = v.rs.new_rs();
    let dynamic = v.canary.dynamic_stable_scale == Some(true);
    let weight = if targets::dynamically_rolling_back_to_stable(v).is_some() {
        targets::abort_weight(v)
    } else if v.fully_promoted() {
        0
    } else if w.aborted(v) {
        targets::abort_weight(v)
    } else if new.is_none_or(|r| r.available == 0) {
        0
    } else if v.old.promote_full == Some(true) {
        if dynamic {
            let available = new.map_or(0, |r| r.available);
            ((i64::from(max) * i64::from(available)) / i64::from(v.replicas().max(1))) as i32
        } else {
            v.current_weights().map_or(0, |w| w.canary)
        }
    } else if let Some(i) = idx {
        let i = i.max(0) as usize;
        if !targets::at_desired_counts(v).0 {
            // The previous step's weight until this step's pods are there. Unlike upstream,
            // not more than the canary's available pods can serve, unless it already has it: a
            // user's `promote` may have skipped the previous step before its pods came up
            // (found by the planner's model).
            let prev = match i.checked_sub(1) {
                Some(prev) => v.set_weight_up_to(prev),
                None => 0,
            };
            let available = i64::from(new.map_or(0, |r| r.available));
            let servable = (i64::from(max) * available / i64::from(v.replicas().max(1))) as i32;
            let current = v.current_weights().map_or(0, |w| w.canary);
            prev.min(servable.max(current))
        } else if i < v.steps().len() {
            v.set_weight_up_to(i)
        } else {
            max
        }
    } else {
        0
    };
    weight.clamp(0, max)
}

/// Drives the traffic routers toward the desired weight, hashes and routes, and records
/// `status.canary.weights`. `Err` when a router cannot be driven (a missing object...).
pub fn reconcile_traffic(
    v: &View<'_>,
    w: &mut Writes,
    obs: &Observed<'_>,
    status: &mut RolloutStatus,
) -> Result<(), Box<crate::traffic::TrafficError>> {
    let weight = desired_weight(v, w);
    // Rolling back to the stable with dynamic stable scaling: the previous canary keeps its
    // share of the traffic while the stable scales back up (upstream issue 3020).
    let rolling_back = targets::dynamically_rolling_back_to_stable(v);
    let new_hash = rolling_back
        .clone()
        .or_else(|| v.rs.new_rs().map(|r| r.hash.clone()));
    let stable_hash = v.rs.stable_rs().map(|r| r.hash.clone());
    let fully_promoted = v.fully_promoted() && rolling_back.is_none();
    if !targets::stable_can_take(v, v.max_weight() - weight) {
        // Upstream's `checkReplicasAvailable`: the stable cannot carry its share of the new
        // weight yet; leave the routers and the recorded weights as they are.
        let old_weights = v.old.canary.as_ref().and_then(|c| c.weights.clone());
        status.canary.get_or_insert_with(Default::default).weights = old_weights;
        return Ok(());
    }
    let mut intent = crate::traffic::TrafficIntent::for_rollout(v.ro);
    intent.canary_hash = new_hash.as_deref();
    intent.stable_hash = stable_hash.as_deref();
    intent.weight = weight;
    // Managed routes go when the update ends (promoted, aborted, promoted fully) or when the
    // canary has no available pod (a V2 given up for a V3 must not keep its routes).
    intent.remove_managed_routes = fully_promoted
        || (rolling_back.is_none()
            && (w.aborted(v)
                || v.rs.new_rs().is_none_or(|r| r.available == 0)
                || v.old.promote_full == Some(true)));
    // The weighted templates of a running `experiment` step (upstream adds them while the
    // update goes through its steps, not when it ends, aborts or is promoted fully).
    let additional = if rolling_back.is_none()
        && !fully_promoted
        && !w.aborted(v)
        && v.old.promote_full != Some(true)
    {
        super::super::experiments::weight_destinations(v)
    } else {
        Vec::new()
    };
    let old_additional = v
        .old
        .canary
        .as_ref()
        .and_then(|c| c.weights.as_ref())
        .and_then(|w| w.additional.clone())
        .unwrap_or_default();
    // Only a destination the status already records is routed: with a subset-level split a
    // finished experiment's Service is told from another host by that record alone, so one
    // routed before its record was written would stay routed after a lost status write (a
    // conflict with a user's command, a crash). A new one is recorded by this plan and routed
    // by the next, one status write later.
    let recorded = |d: &crate::api::WeightDestination| {
        old_additional
            .iter()
            .any(|o| o.service_name == d.service_name)
    };
    intent.additional = additional.iter().filter(|d| recorded(d)).cloned().collect();
    intent.retired = old_additional
        .iter()
        .filter_map(|d| d.service_name.clone())
        .filter(|svc| {
            !additional
                .iter()
                .any(|d| d.service_name.as_deref() == Some(svc))
        })
        .collect();
    if let (false, (_, Some(i))) = (intent.remove_managed_routes, v.current_step()) {
        let (headers, mirrors) = crate::traffic::routes_at_step(v.ro, i.max(0) as usize);
        intent.header_routes = headers;
        intent.mirror_routes = mirrors;
    }
    let changes = crate::traffic::plan_traffic(&intent, &obs.traffic_objects).map_err(Box::new)?;
    let max = intent.max_weight;
    let (canary_svc, stable_svc) = (
        intent.canary_service.to_string(),
        intent.stable_service.to_string(),
    );
    let current = v.current_weights().map(|w| w.canary);
    w.effects.extend(changes.into_iter().map(Effect::Traffic));
    // Upstream's `trafficWeightUpdatedMessage`: the canary weight's change, and the
    // experiment destinations when they change (as Go prints them: `[{weight service hash}]`).
    let mut details = Vec::new();
    if current != Some(weight) {
        details.push(format!("from {} to {weight}", current.unwrap_or(0)));
    }
    if old_additional != additional {
        let each: Vec<String> = additional
            .iter()
            .map(|d| {
                format!(
                    "{{{} {} {}}}",
                    d.weight.unwrap_or(0),
                    d.service_name.as_deref().unwrap_or_default(),
                    d.pod_template_hash.as_deref().unwrap_or_default()
                )
            })
            .collect();
        details.push(format!("additional: [{}]", each.join(" ")));
    }
    if !details.is_empty() {
        w.events.push(Event::normal(
            "TrafficWeightUpdated",
            format!("Traffic weight updated {}", details.join(", ")),
        ));
    }
    let weights = crate::api::TrafficWeights {
        canary: Some(crate::api::WeightDestination {
            weight: Some(weight),
            service_name: Some(canary_svc),
            pod_template_hash: new_hash,
        }),
        stable: Some(crate::api::WeightDestination {
            weight: Some(max - weight - additional.iter().filter_map(|d| d.weight).sum::<i32>()),
            service_name: Some(stable_svc),
            pod_template_hash: stable_hash,
        }),
        additional: (!additional.is_empty()).then_some(additional),
        verified: None,
    };
    status.canary.get_or_insert_with(Default::default).weights = Some(weights);
    w.weights = Some(super::super::replicas::TrafficWeights {
        canary: weight,
        stable: max - weight,
    });
    Ok(())
}
