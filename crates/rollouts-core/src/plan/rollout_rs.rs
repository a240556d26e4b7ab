//! ReplicaSet writes both strategies make: creating the new ReplicaSet, keeping its revision
//! and settings in sync, holding the new ReplicaSet up after an abort for
//! `abortScaleDownDelaySeconds`, and keeping a previous ReplicaSet up for
//! `scaleDownDelaySeconds` (upstream's `replicaset.go`).

use super::conditions::{self as cond, reason};
use super::replicasets::{self as rsets, Rs};
use super::targets;
use super::view::View;
use super::writes::Writes;
use super::{Effect, Event, RsPatch};
use crate::api::RolloutStatus;
use crate::api::consts::DEFAULT_REPLICASET_SCALE_DOWN_DEADLINE_ANNOTATION_KEY;
use crate::api::rollout_condition_type as ctype;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube_core::ResourceExt;
use std::time::Duration;

/// Creates the new ReplicaSet (upstream's `createDesiredReplicaSet`), with 0 replicas: the
/// scaling further down sets its size (folded into the create by the effect compaction).
/// Returns the view in which it is the new ReplicaSet.
pub fn create_new_rs<'a>(v: &View<'a>, w: &mut Writes, status: &mut RolloutStatus) -> View<'a> {
    let revision = v.rs.max_old_revision() + 1;
    let ephemeral = match (v.rs.stable_rs(), v.bg) {
        (Some(_), Some(bg)) => bg.preview_metadata.as_ref(),
        (None, Some(bg)) => bg.active_metadata.as_ref(),
        (Some(_), None) => v.canary.canary_metadata.as_ref(),
        (None, None) => v.canary.stable_metadata.as_ref(),
    };
    let obj = rsets::new_replica_set(v.ro, &v.desired_hash, revision, 0, ephemeral);
    let name = obj.name_any();
    let mut created = Rs::detached(&obj);
    created.revision = revision;
    w.effects.push(Effect::CreateReplicaSet(Box::new(obj)));
    w.set_rollout_revision(v, revision);
    w.events.push(Event::normal(
        reason::NEW_REPLICA_SET,
        format!("Created ReplicaSet {name} (revision {revision})"),
    ));
    cond::set(
        status,
        cond::new_condition(
            ctype::PROGRESSING,
            "True",
            reason::NEW_REPLICA_SET,
            format!("Created new replica set \"{name}\""),
            &v.stamp,
        ),
    );
    v.with_created(created)
}

/// Upstream's `syncReplicaSetRevision` for an existing new ReplicaSet: its revision (and
/// revision history), our template hash, `minReadySeconds` and the injected anti-affinity
/// follow the Rollout.
pub fn sync_revision(v: &View<'_>, w: &mut Writes, status: &mut RolloutStatus) {
    let Some(rs) = v.rs.new_rs() else { return };
    let new_revision = v.rs.max_old_revision() + 1;
    let mut patch = RsPatch {
        annotations: rsets::revision_annotations(rs, new_revision),
        ..Default::default()
    };
    if rs.annotation(rsets::TEMPLATE_HASH_ANNOTATION) != Some(v.desired_hash.as_str()) {
        // Adopted (or created before we recorded our hash): remember it.
        patch.annotations.insert(
            rsets::TEMPLATE_HASH_ANNOTATION.into(),
            Some(v.desired_hash.clone()),
        );
    }
    let min_ready = v.ro.spec.min_ready_seconds.unwrap_or(0);
    let rs_min_ready = rs
        .obj
        .and_then(|o| o.spec.as_ref())
        .and_then(|s| s.min_ready_seconds)
        .unwrap_or(0);
    if rs_min_ready != min_ready {
        patch.min_ready_seconds = Some(min_ready);
    }
    let rs_affinity = rs
        .obj
        .and_then(|o| o.spec.as_ref())
        .and_then(|s| s.template.as_ref())
        .and_then(|t| t.spec.as_ref())
        .and_then(|s| s.affinity.as_ref());
    if super::affinity::needs_update(v.ro, rs_affinity, &rs.hash)
        && let Some(affinity) = super::affinity::replica_set_affinity(v.ro, &rs.hash)
    {
        patch.affinity = Some(serde_json::to_value(affinity).unwrap_or_default());
    }
    let revision_changed = patch
        .annotations
        .contains_key(crate::api::consts::REVISION_ANNOTATION);
    let effective_revision = if revision_changed {
        new_revision
    } else {
        rs.revision
    };
    if patch != RsPatch::default() {
        w.push_patch(&rs.name, patch);
    }
    if !revision_changed {
        w.set_rollout_revision(v, effective_revision);
    }
    if cond::get(status, ctype::PROGRESSING).is_none() {
        cond::set(
            status,
            cond::new_condition(
                ctype::PROGRESSING,
                "True",
                reason::FOUND_NEW_RS,
                format!("Found new replica set \"{}\"", rs.name),
                &v.stamp,
            ),
        );
    }
}

/// The deadline annotation value for `delay` seconds after `v.stamp`.
fn deadline_patch(at: Timestamp) -> RsPatch {
    let mut patch = RsPatch::default();
    patch.annotations.insert(
        DEFAULT_REPLICASET_SCALE_DOWN_DEADLINE_ANNOTATION_KEY.into(),
        Some(at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()),
    );
    patch
}

/// Scales the new ReplicaSet `n` to `want`, except after an abort with a scale-down delay: then
/// it stays up until its `scale-down-deadline` (annotated once the stable is back at full
/// size), then goes to 0 (upstream's `reconcileNewReplicaSet`), once the status records no
/// traffic weight on a canary: a deadline can pass before the router has moved the traffic
/// back (a slow router, or a controller killed after annotating and before recording the
/// abort), and upstream would then scale away pods that still take traffic. Returns whether
/// it scaled.
pub fn scale_new_rs(v: &View<'_>, w: &mut Writes, n: usize, mut want: i32) -> bool {
    if w.delay_scale_down_on_abort(v) {
        match v.rs.all[n].scale_down_deadline() {
            Some(Ok(deadline)) if deadline > v.now => {
                w.requeue_at(v.now, deadline);
                return false;
            }
            // The traffic goes back first; recording it triggers the next reconcile.
            Some(Ok(_)) if v.bg.is_none() && targets::recorded_new_rs_weight(v) > 0 => {
                return false;
            }
            Some(Ok(_)) => want = 0,
            Some(Err(_)) => return false,
            None => {
                let stable_full =
                    v.rs.stable_rs()
                        .is_some_and(|s| s.available == v.replicas());
                if stable_full {
                    let delay = v.abort_scale_down_delay();
                    let deadline = v.stamp.0 + SignedDuration::from_secs(delay);
                    w.push_patch(&v.rs.all[n].name, deadline_patch(deadline));
                    w.requeue_in(Duration::from_secs(delay.max(0) as u64));
                }
                // Leave it up until annotated.
                return false;
            }
        }
    }
    w.scale(v, n, want)
}

/// Upstream's `scaleDownDelayHelper` for one old ReplicaSet `idx`: the size to keep it at. It
/// stays (at full size) until its `scale-down-deadline`, annotated when missing, for at most
/// `scaleDownDelayRevisionLimit` ReplicaSets (`annotated` counts them); then 0.
pub fn scale_down_delay_helper(
    v: &View<'_>,
    w: &mut Writes,
    idx: usize,
    annotated: &mut i32,
) -> i32 {
    let limit = v.scale_down_revision_limit();
    let rs = &v.rs.all[idx];
    match rs.scale_down_deadline() {
        None if rs.spec_replicas > 0 && *annotated < limit => {
            *annotated += 1;
            let delay = v.scale_down_delay();
            if delay <= 0 {
                return 0;
            }
            let deadline = Timestamp::from_second(v.stamp.0.as_second() + delay).unwrap_or(v.now);
            w.push_patch(&rs.name, deadline_patch(deadline));
            w.requeue_in(Duration::from_secs(delay as u64));
            rs.spec_replicas
        }
        None => 0,
        Some(Err(_)) => 0,
        Some(Ok(deadline)) => {
            *annotated += 1;
            if *annotated > limit {
                return 0;
            }
            if deadline > v.now {
                w.requeue_at(v.now, deadline);
                v.replicas()
            } else {
                0
            }
        }
    }
}
