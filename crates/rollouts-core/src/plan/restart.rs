//! `spec.restartAt` (upstream's `RolloutPodRestarter`): pods created before it are evicted,
//! never more at once than keeps the Rollout within `maxUnavailable`; `status.restartedAt`
//! records a restart once every pod is newer.

use super::view::View;
use super::writes::Writes;
use super::{Effect, Observed};
use crate::api::{Rollout, RolloutStatus};
use k8s_openapi::jiff::Timestamp;
use kube_core::ResourceExt;
use std::time::Duration;

/// Upstream's `RolloutPodRestarter`: with `spec.restartAt` in the past and not yet
/// recorded in `status.restartedAt`, evict pods created before it — stable first, then
/// new, then older ReplicaSets — never more at once than keeps
/// `max(replicas, total) - max(maxUnavailable, 1)` pods available. When every pod is newer,
/// record `status.restartedAt`.
pub fn restart_pods(v: &View<'_>, w: &mut Writes, obs: &Observed<'_>, status: &mut RolloutStatus) {
    let Some(restart_at) = v.ro.spec.restart_at.clone() else {
        return;
    };
    if v.old.restarted_at.as_ref() == Some(&restart_at) {
        return;
    }
    if v.now < restart_at.0 {
        w.requeue_at(v.now, restart_at.0);
        return;
    }
    let Some(pods) = obs.pods.as_ref() else {
        // The controller lists pods only when a restart is due (see `needs_restart`).
        return;
    };
    let stable = v.rs.stable_rs().and_then(|r| r.uid.clone());
    let new = v.rs.new_rs().and_then(|r| r.uid.clone());
    let rs_uids: Vec<(Option<String>, Option<Timestamp>)> =
        v.rs.all
            .iter()
            .map(|r| (r.uid.clone(), r.created))
            .collect();
    let priority = |uid: &Option<String>| -> (u8, Option<Timestamp>) {
        if uid.is_some() && *uid == stable {
            (0, None)
        } else if uid.is_some() && *uid == new {
            (1, None)
        } else {
            (
                2,
                rs_uids.iter().find(|(u, _)| u == uid).and_then(|(_, c)| *c),
            )
        }
    };
    let owner_uid = |p: &k8s_openapi::api::core::v1::Pod| {
        p.owner_references()
            .iter()
            .find(|o| {
                rs_uids
                    .iter()
                    .any(|(u, _)| u.as_deref() == Some(o.uid.as_str()))
            })
            .map(|o| o.uid.clone())
    };
    let mut ours: Vec<&k8s_openapi::api::core::v1::Pod> = pods
        .iter()
        .copied()
        .filter(|p| owner_uid(p).is_some())
        .collect();
    ours.sort_by_key(|p| {
        (
            priority(&owner_uid(p)),
            p.metadata.creation_timestamp.as_ref().map(|t| t.0),
        )
    });
    let min_ready = i64::from(v.ro.spec.min_ready_seconds.unwrap_or(0));
    let available = ours
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none() && pod_available(p, min_ready, v.now))
        .count() as i32;
    let total: i32 = v.rs.all.iter().map(|r| r.spec_replicas).sum();
    let concurrent = v.max_unavailable().max(1);
    let mut can_restart = available - (v.replicas().max(total) - concurrent);
    let (mut needs, mut restarted) = (0, 0);
    for pod in ours {
        let created = pod.metadata.creation_timestamp.as_ref().map(|t| t.0);
        if created.is_some_and(|c| c >= restart_at.0) {
            continue;
        }
        needs += 1;
        if can_restart <= 0 || pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        w.effects.push(Effect::EvictPod {
            name: pod.name_any(),
        });
        can_restart -= 1;
        restarted += 1;
    }
    if needs - restarted != 0 {
        // Pod churn does not always change a ReplicaSet's availability: look again.
        w.requeue_in(Duration::from_secs(30));
    } else {
        status.restarted_at = Some(restart_at);
    }
}

/// Kubernetes' `IsPodAvailable`: Ready, for at least `min_ready` seconds.
fn pod_available(pod: &k8s_openapi::api::core::v1::Pod, min_ready: i64, now: Timestamp) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
        .is_some_and(|c| {
            c.status == "True"
                && (min_ready == 0
                    || c.last_transition_time
                        .as_ref()
                        .is_some_and(|t| t.0.as_second() + min_ready <= now.as_second()))
        })
}

/// Whether `spec.restartAt` asks for a restart now (the controller then lists the pods).
pub fn needs_restart(ro: &Rollout, now: Timestamp) -> bool {
    let Some(at) = ro.spec.restart_at.as_ref() else {
        return false;
    };
    let done = ro.status.as_ref().and_then(|s| s.restarted_at.as_ref()) == Some(at);
    !done && now >= at.0
}
