//! The canary's ReplicaSets scaled toward the current step's counts (upstream's
//! `reconcileCanaryReplicaSets` and `scaleDownOldReplicaSetsForCanary`).

use super::super::rollout_rs;
use super::super::targets;
use super::super::view::View;
use super::super::writes::Writes;
use crate::api::consts::DEFAULT_REPLICASET_SCALE_DOWN_DEADLINE_ANNOTATION_KEY;
use std::collections::BTreeMap;

/// Upstream's `reconcileCanaryReplicaSets`: returns true when something was scaled (the step
/// then cannot complete in this reconcile).
pub fn reconcile_replica_sets(v: &View<'_>, w: &mut Writes) -> bool {
    // haltProgress: a manual pause or an inconclusive analysis freezes the ReplicaSets.
    if v.halted() {
        return false;
    }
    // Drop stale scale-down deadlines from the new (unless an abort delays its scale-down) and
    // stable ReplicaSets: we moved back to them.
    let keep_new = w.delay_scale_down_on_abort(v);
    for idx in [v.new_idx().filter(|_| !keep_new), v.stable_idx()]
        .into_iter()
        .flatten()
    {
        w.drop_scale_down_deadline(&v.rs.all[idx]);
    }
    let mut counts = targets::desired_counts(v);
    // The counts follow the weights the status recorded; this plan may move them first (to the
    // stable once a canary has no pods, or to the previous step's weight): a dynamically scaled
    // stable, and a canary whose pods follow its weight, also keep what the new weights need
    // (upstream counts from the weights it has just set).
    if let Some(weights) = w.weights {
        let routed = |weight| {
            super::super::replicas::traffic_weight_to_replicas(v.replicas(), weight, v.max_weight())
        };
        if v.canary.dynamic_stable_scale == Some(true) {
            counts.stable = counts.stable.max(routed(weights.stable));
        }
        if targets::follows_traffic(v) {
            counts.canary = counts.canary.max(routed(weights.canary));
        }
    }
    if let (Some(s), Some(n)) = (v.stable_idx(), v.new_idx())
        && s != n
        && w.scale(v, s, counts.stable)
    {
        return true;
    }
    if let Some(n) = v.new_idx()
        && rollout_rs::scale_new_rs(v, w, n, counts.canary)
    {
        return true;
    }
    scale_down_old(v, w)
}

/// Upstream's `scaleDownOldReplicaSetsForCanary`: older ReplicaSets go (first their unavailable
/// pods, then as far as `maxUnavailable` allows); with traffic routing the previous stable stays
/// for `scaleDownDelaySeconds`.
fn scale_down_old(v: &View<'_>, w: &mut Writes) -> bool {
    let all = &v.rs.all;
    let mut others: Vec<usize> = (0..all.len())
        .filter(|i| Some(*i) != v.new_idx() && Some(*i) != v.stable_idx())
        .filter(|i| all[*i].spec_replicas > 0)
        .collect();
    if others.is_empty() {
        return false;
    }
    // First clean up unhealthy replicas (oldest first).
    let mut planned: BTreeMap<usize, i32> = BTreeMap::new();
    let mut scaled_any = false;
    others.sort_by(|a, b| all[*a].created.cmp(&all[*b].created));
    for &i in &others {
        let rs = &all[i];
        if rs.spec_replicas != rs.available && rs.available < rs.spec_replicas {
            let to = rs.available;
            scaled_any |= w.scale(v, i, to);
            planned.insert(i, to);
        }
    }
    let available: i32 = all.iter().map(|r| r.available).sum();
    let min_available = v.replicas() - v.max_unavailable();
    let mut max_scale_down = available - min_available;
    if max_scale_down <= 0 {
        return scaled_any;
    }
    others.sort_by(|a, b| all[*b].revision.cmp(&all[*a].revision));
    let current = v.old.current_pod_hash.clone().unwrap_or_default();
    let stable = v.old.stable_rs.clone().unwrap_or_default();
    let mut annotated = 0;
    for i in others {
        let rs = &all[i];
        if rs.hash == current || rs.hash == stable {
            continue;
        }
        if v.traffic_routed() && v.referenced(rs) {
            continue;
        }
        if max_scale_down <= 0 {
            break;
        }
        let spec = planned.get(&i).copied().unwrap_or(rs.spec_replicas);
        if spec == 0 {
            continue;
        }
        let desired = if !v.traffic_routed() {
            // Pods split the traffic: every other ReplicaSet goes.
            if spec > max_scale_down {
                spec - max_scale_down
            } else {
                0
            }
        } else if v.fully_promoted()
            || rs
                .annotation(DEFAULT_REPLICASET_SCALE_DOWN_DEADLINE_ANNOTATION_KEY)
                .is_some()
        {
            // Likely the previous stable: keep it for scaleDownDelaySeconds (not with dynamic
            // stable scaling, where traffic already left it).
            if v.canary.dynamic_stable_scale == Some(true) {
                0
            } else {
                rollout_rs::scale_down_delay_helper(v, w, i, &mut annotated).min(spec)
            }
        } else {
            // An intermediate ReplicaSet (V1 → V2 → V3): no traffic goes to it.
            0
        };
        if spec == desired {
            continue;
        }
        scaled_any |= w.scale(v, i, desired);
        max_scale_down -= spec - desired;
    }
    scaled_any
}
