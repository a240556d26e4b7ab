//! Report: the status the plan wants, as the smallest merge patch with the resourceVersion as
//! a precondition; the plan's events; and why the Rollout waits, logged when it changes (in the
//! reconcile's span) and handed to the metrics observer.

use super::{Context, Error, FIELD_MANAGER, diff};
use crate::api::Rollout;
use crate::plan::{Plan, Wait};
use kube::api::{Patch, PatchParams};
use kube::runtime::reflector::ObjectRef;
use kube::{Api, Resource, ResourceExt};
use serde_json::{Value, json};
use std::sync::atomic::Ordering;
use tracing::{debug, info, warn};

/// The status merge patch that takes `observed` to `wanted`, carrying `resource_version` as a
/// precondition; `None` when nothing differs.
pub fn status_patch(
    observed: &Rollout,
    wanted: &crate::api::RolloutStatus,
    resource_version: &str,
) -> Result<Option<Value>, serde_json::Error> {
    let old = serde_json::to_value(observed.status.clone().unwrap_or_default())?;
    let mut new = serde_json::to_value(wanted)?;
    // Go's `omitempty`: an empty string is never written (and the 1.20 API server rejects one
    // in a CRD merge patch as `null`).
    diff::strip_empty_strings(&mut new);
    Ok(diff::merge_diff(&old, &new)
        .map(|d| json!({"metadata": {"resourceVersion": resource_version}, "status": d})))
}

/// What writing the status came to.
pub(crate) enum Reported {
    /// Written, or nothing to write.
    Done { wrote: bool },
    /// Someone changed the Rollout since it was read (a user command, or our own earlier
    /// write): plan again from the fresh object.
    Conflict,
}

/// Writes the plan's status (see [`status_patch`]).
pub(crate) async fn write_status(
    ctx: &Context,
    ro: &Rollout,
    plan: &Plan,
    resource_version: &str,
) -> Result<Reported, Error> {
    let Some(body) = status_patch(ro, &plan.status, resource_version)? else {
        return Ok(Reported::Done { wrote: false });
    };
    let name = ro.name_any();
    let api: Api<Rollout> =
        Api::namespaced(ctx.client.clone(), &ro.namespace().unwrap_or_default());
    let pp = PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    };
    ctx.writes.status.fetch_add(1, Ordering::Relaxed);
    match api.patch_status(&name, &pp, &Patch::Merge(&body)).await {
        Ok(_) => {
            debug!(patch = %body["status"], "status updated");
            Ok(Reported::Done { wrote: true })
        }
        Err(kube::Error::Api(e)) if e.code == 409 => {
            debug!("status conflict; replanning");
            Ok(Reported::Conflict)
        }
        Err(e) => {
            warn!(patch = %body["status"], "status update rejected: {e}");
            Err(e.into())
        }
    }
}

/// Logs why the Rollout waits when that changed since its last reconcile (a new wait, or none
/// any more), and hands it to the metrics observer.
pub(crate) fn wait_changed(ctx: &Context, ro: &Rollout, wait: Option<&Wait>) {
    let key = ObjectRef::from_obj(ro);
    let now = k8s_openapi::jiff::Timestamp::now();
    // The kind and the words without the moving part (a pause's remaining time).
    let summary = wait.map(|w| match w {
        Wait::PauseUntil(t) => format!("PauseUntil {t}"),
        w => format!("{} {}", w.kind(), w.describe(now)),
    });
    let changed = {
        let mut last = ctx.waits.lock().unwrap_or_else(|e| e.into_inner());
        if last.get(&key) == summary.as_ref() {
            false
        } else {
            match &summary {
                Some(s) => last.insert(key, s.clone()),
                None => last.remove(&key),
            };
            true
        }
    };
    if changed {
        match wait {
            Some(w) => info!(wait = w.kind(), "waiting: {}", w.describe(now)),
            None => info!("no longer waiting"),
        }
    }
}

/// Queues a plan's events on an object ([`crate::events`]: published off the reconcile path;
/// a failure is logged, as events are best effort).
pub(crate) async fn publish_events(
    recorder: &crate::events::Recorder,
    reference: &k8s_openapi::api::core::v1::ObjectReference,
    events: &[crate::plan::Event],
) {
    use kube::runtime::events::{Event as KEvent, EventType};
    for ev in events {
        let kev = KEvent {
            type_: if ev.warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: ev.reason.clone(),
            note: Some(ev.message.chars().take(1000).collect()),
            // The recorder folds events of the same reason and action into one series (a
            // count on the first event). Upstream's recorder folds only identical messages, so
            // "updated to revision 2" is an event of its own beside "... revision 1": the
            // action carries the message (the API allows 128 characters).
            action: if ev.message.is_empty() {
                ev.reason.clone()
            } else {
                ev.message.chars().take(128).collect()
            },
            secondary: None,
        };
        recorder.publish(kev, reference).await;
    }
}

/// The object reference events about `ro` are recorded on.
pub(crate) fn reference(ro: &Rollout) -> k8s_openapi::api::core::v1::ObjectReference {
    ro.object_ref(&())
}
