//! What the current canary step asks for, as pure functions of the [`View`]: the canary scale
//! (weight or replicas), the ReplicaSets' desired counts and whether they are reached, and the
//! traffic weights of an abort or a rollback with dynamic stable scaling. The arithmetic itself
//! is [`super::replicas`]; this module resolves the Rollout into its inputs.

use super::replicas::int_or_percent;
use super::replicas::{
    self, BasicCanaryInput, CanaryScale, CanaryScaleInput, ReplicaCounts, StableRs,
};
use super::replicasets::Rs;
use super::view::View;

/// The scale the current step asks of the canary (upstream's `GetCanaryReplicasOrWeight`).
pub fn canary_scale(v: &View<'_>) -> CanaryScale {
    scale_of(v, true)
}

/// [`canary_scale`], reading the steps' `setCanaryScale` or not (`use_set_canary_scale`).
fn scale_of(v: &View<'_>, use_set_canary_scale: bool) -> CanaryScale {
    let max_weight = v.max_weight();
    let (step, idx) = v.current_step();
    let (step_weight, set_canary_scale) = match (step, idx) {
        (Some(_), Some(i)) => {
            let i = i as usize;
            // The latest setCanaryScale at or before the current step.
            let scs = v.steps()[..=i]
                .iter()
                .rev()
                .find_map(|s| s.set_canary_scale.as_ref())
                .map(|s| replicas::SetCanaryScale {
                    replicas: s.replicas,
                    weight: s.weight,
                    match_traffic_weight: s.match_traffic_weight == Some(true),
                });
            (v.set_weight_up_to(i), scs.filter(|_| use_set_canary_scale))
        }
        _ => (max_weight, None),
    };
    let stable = v.old.stable_rs.as_deref().unwrap_or_default();
    replicas::canary_scale(&CanaryScaleInput {
        promote_full: v.old.promote_full == Some(true),
        stable_is_current: stable.is_empty() || v.old.stable_is_current(),
        aborted: v.old.abort == Some(true),
        traffic_routed: v.traffic_routed(),
        abort_scale_down_delay_seconds: v.canary.abort_scale_down_delay_seconds,
        set_canary_scale,
        step_weight,
        abort_weight: dynamic_abort_weight(v).unwrap_or(0),
        max_weight,
    })
}

/// The weight an aborted Rollout with `dynamicStableScale` has stepped back to (upstream's
/// `GetDesiredCanaryWeight`); `None` when that does not apply (not aborted, no dynamic stable
/// scale, or no canary or stable ReplicaSet).
pub fn dynamic_abort_weight(v: &View<'_>) -> Option<i32> {
    if v.old.abort != Some(true)
        || !v.traffic_routed()
        || v.canary.dynamic_stable_scale != Some(true)
    {
        return None;
    }
    let (new, stable) = (v.rs.new_rs()?, v.rs.stable_rs()?);
    let step_weights: Vec<i32> = v.steps().iter().filter_map(|s| s.set_weight).collect();
    Some(replicas::dynamic_abort_weight(
        &replicas::DynamicAbortInput {
            spec_replicas: v.replicas(),
            max_weight: v.max_weight(),
            stable_available: stable.available,
            canary_available: new.available,
            explicit_abort_delay: v
                .canary
                .abort_scale_down_delay_seconds
                .is_some_and(|d| d != 0),
            step_weights: &step_weights,
        },
    ))
}

/// The counts the canary and stable ReplicaSets should have now (upstream's
/// `CalculateReplicaCountsForBasicCanary` / `...ForTrafficRoutedCanary`).
pub fn desired_counts(v: &View<'_>) -> ReplicaCounts {
    if v.traffic_routed() {
        let mut counts =
            replicas::traffic_routed_canary_replica_counts(&replicas::TrafficRoutedCanaryInput {
                spec_replicas: v.replicas(),
                scale: canary_scale(v),
                max_weight: v.max_weight(),
                dynamic_stable_scale: v.canary.dynamic_stable_scale == Some(true),
                aborted: v.old.abort == Some(true),
                min_pods_per_replica_set: v.canary.min_pods_per_replica_set,
                // Unknown weights (the status of a new revision's first reconcile records none
                // until traffic is reconciled): all traffic may still be on the stable, so a
                // dynamically scaled stable keeps its pods until the status says otherwise.
                current_weights: v.current_weights().or(Some(replicas::TrafficWeights {
                    canary: 0,
                    stable: v.max_weight(),
                })),
            });
        counts.canary = counts.canary.max(routed_canary_pods(v));
        return counts;
    }
    let weight = match canary_scale(v) {
        CanaryScale::Weight(w) => w,
        CanaryScale::Replicas(r) => (r.saturating_mul(100) / v.replicas().max(1)).clamp(0, 100),
    };
    let stable = match (v.rs.stable_rs(), v.stable_idx() == v.new_idx()) {
        (None, _) => StableRs::Missing,
        (Some(_), true) => StableRs::SameAsCanary,
        (Some(s), false) => StableRs::Distinct(s.state()),
    };
    let others: Vec<replicas::RsState> = v.rs.others().map(|r| r.state()).collect();
    replicas::basic_canary_replica_counts(&BasicCanaryInput {
        spec_replicas: v.replicas(),
        weight,
        max_surge: int_or_percent(v.canary.max_surge.as_ref()),
        max_unavailable: int_or_percent(v.canary.max_unavailable.as_ref()),
        canary: v.rs.new_rs().map(Rs::state),
        stable,
        others: &others,
    })
}

/// The pods the canary's current traffic weight needs (as `status.canary.weights` records it
/// for the new ReplicaSet), when the canary's pods follow its weight (no `setCanaryScale` in
/// effect, which decouples them on purpose): the canary keeps them until the weight has moved
/// down. Upstream keeps them only on an abort with dynamic stable scaling; a step that lowers
/// the weight (`setWeight: 50`, then `setWeight: 0`) scales its canary down first there, and
/// the router keeps sending that share of the traffic to pods that are gone until the next
/// reconcile moves the weight.
fn routed_canary_pods(v: &View<'_>) -> i32 {
    let weight = recorded_new_rs_weight(v);
    if weight == 0 || !follows_traffic(v) {
        return 0;
    }
    replicas::traffic_weight_to_replicas(v.replicas(), weight, v.max_weight())
}

/// The traffic weight `status.canary.weights` records for the new ReplicaSet (0 when it
/// records none, or records it for another ReplicaSet).
pub fn recorded_new_rs_weight(v: &View<'_>) -> i32 {
    let Some(new) = v.rs.new_rs() else {
        return 0;
    };
    v.old
        .canary
        .as_ref()
        .and_then(|c| c.weights.as_ref())
        .and_then(|w| w.canary.as_ref())
        .filter(|d| d.pod_template_hash.as_deref() == Some(new.hash.as_str()))
        .and_then(|d| d.weight)
        .unwrap_or(0)
}

/// Whether the canary's pods follow its traffic weight now: an update in flight with no
/// `setCanaryScale` in effect.
pub fn follows_traffic(v: &View<'_>) -> bool {
    !v.fully_promoted() && scale_of(v, true) == scale_of(v, false)
}

/// Whether the ReplicaSets are at the step's counts (upstream's
/// `AtDesiredReplicaCountsForCanary`), with those counts.
pub fn at_desired_counts(v: &View<'_>) -> (bool, ReplicaCounts) {
    let counts = desired_counts(v);
    let others: Vec<replicas::RsState> = v.rs.others().map(|r| r.state()).collect();
    let done = replicas::at_desired_replica_counts(&replicas::DesiredCountsCheck {
        desired: counts,
        canary: v.rs.new_rs().map(Rs::state),
        stable: v.rs.stable_rs().map(Rs::state),
        stable_created: v.rs.stable_rs().map_or(0, |r| r.status_replicas),
        traffic_routed: v.traffic_routed(),
        dynamic_stable_scale: v.canary.dynamic_stable_scale == Some(true),
        progress_threshold: v.progress_threshold(),
        others: &others,
    });
    (done, counts)
}

/// Upstream's `GetDesiredCanaryWeight`: on an abort with dynamic stable scaling, the step weight
/// walked back to; otherwise the current `setWeight` (0 once aborted, the full weight once all
/// steps are done).
pub fn desired_canary_weight(v: &View<'_>) -> i32 {
    if let Some(w) = dynamic_abort_weight(v) {
        return w;
    }
    if v.old.abort == Some(true) {
        return 0;
    }
    match v.current_step() {
        (Some(_), Some(i)) => v.set_weight_up_to(i as usize),
        _ => v.max_weight(),
    }
}

/// Upstream's `calculateDesiredWeightOnAbortOrStableRollback`: 0 at once without dynamic
/// stable scaling; with it, the canary's weight goes down only as far as the stable's available
/// pods can take ([`replicas::abort_traffic_weight`]).
pub fn abort_weight(v: &View<'_>) -> i32 {
    let Some(stable) = v.rs.stable_rs().filter(|_| v.rs.new_rs().is_some()) else {
        return 0;
    };
    // As upstream, an unset `spec.replicas` counts as 0 here.
    if v.canary.dynamic_stable_scale != Some(true) || v.ro.spec.replicas.is_none_or(|r| r == 0) {
        return 0;
    }
    replicas::abort_traffic_weight(&replicas::AbortTrafficInput {
        spec_replicas: v.replicas(),
        max_weight: v.max_weight(),
        stable_available: stable.available,
        desired_canary_weight: desired_canary_weight(v),
        current_canary_weight: v.current_weights().map(|w| w.canary),
    })
}

/// Upstream's `IsDynamicallyRollingBackToStable`: with dynamic stable scaling, the template went
/// back to the stable's while traffic still went to another canary (the hash recorded in
/// `status.canary.weights`), and the stable is not back at full size: traffic returns as an
/// abort's would. Returns that previous canary's hash.
pub fn dynamically_rolling_back_to_stable(v: &View<'_>) -> Option<String> {
    if !v.fully_promoted() || v.canary.dynamic_stable_scale != Some(true) {
        return None;
    }
    let previous = v
        .old
        .canary
        .as_ref()?
        .weights
        .as_ref()?
        .canary
        .as_ref()?
        .pod_template_hash
        .clone()
        .unwrap_or_default();
    let desired = v.rs.new_rs()?;
    (previous != desired.hash && desired.available < v.replicas()).then_some(previous)
}

/// Upstream's `checkReplicasAvailable` for the stable ReplicaSet and its share `stable_weight`
/// of the traffic: it has the available pods that share needs (rounded down), or meets the
/// `replicaProgressThreshold` for them. Without a stable ReplicaSet (the first deploy) there is
/// nothing to protect, and the weights are recorded at once (upstream records none until the
/// first deploy completes).
pub fn stable_can_take(v: &View<'_>, stable_weight: i32) -> bool {
    let Some(stable) = v.rs.stable_rs() else {
        return true;
    };
    let needed = (i64::from(stable_weight.max(0)) * i64::from(v.replicas()))
        / i64::from(v.max_weight().max(1));
    let needed = i32::try_from(needed).unwrap_or(i32::MAX);
    stable.available >= needed
        || replicas::replica_progress_threshold_met(
            v.progress_threshold(),
            Some(stable.state()),
            needed,
        )
}
