//! The user commands that change a Rollout, as one async function each: read what the
//! command needs, compute the writes with [`super::actions`] (pure), send them. The CLI
//! (`commands`) prints the returned line; the dashboard (`dashboard`) shows it. Both go
//! through these functions, so a button does exactly what the command does.

use super::actions::{self, Undo};
use super::cluster::Conn;
use super::error::{CliError, Result};
use crate::api::{AnalysisRun, Experiment, Rollout};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::DynamicObject;
use serde_json::Value;
use std::time::Duration;

/// How many times a read-modify-write is tried again after a conflict.
const CONFLICT_ATTEMPTS: usize = 5;

/// `promote [--full]`.
pub async fn promote(conn: &Conn, name: &str, full: bool) -> Result<String> {
    let ro = conn.get_rollout(name).await?;
    for op in actions::promote(&ro, full) {
        conn.patch(name, &op).await?;
    }
    Ok(if full {
        format!("rollout '{name}' fully promoted")
    } else {
        format!("rollout '{name}' promoted")
    })
}

/// `abort`.
pub async fn abort(conn: &Conn, name: &str) -> Result<String> {
    conn.patch(name, &actions::abort()).await?;
    Ok(format!("rollout '{name}' aborted"))
}

/// `retry rollout`.
pub async fn retry(conn: &Conn, name: &str) -> Result<String> {
    conn.patch(name, &actions::retry()).await?;
    Ok(format!("rollout '{name}' retried"))
}

/// `terminate experiment`.
pub async fn terminate_experiment(conn: &Conn, name: &str) -> Result<String> {
    conn.merge_patch::<Experiment>("experiment", name, &actions::terminate())
        .await?;
    Ok(format!("experiment '{name}' terminated"))
}

/// `terminate analysisrun`.
pub async fn terminate_analysis_run(conn: &Conn, name: &str) -> Result<String> {
    conn.merge_patch::<AnalysisRun>("analysisrun", name, &actions::terminate())
        .await?;
    Ok(format!("analysisRun '{name}' terminated"))
}

/// `retry experiment`.
pub async fn retry_experiment(conn: &Conn, name: &str) -> Result<String> {
    conn.merge_patch::<Experiment>("experiment", name, &actions::retry_experiment())
        .await?;
    Ok(format!("experiment '{name}' retried"))
}

/// `pause`.
pub async fn pause(conn: &Conn, name: &str) -> Result<String> {
    conn.patch(name, &actions::pause()).await?;
    Ok(format!("rollout '{name}' paused"))
}

/// `restart [--in D]`: `in_text` is D as the user wrote it (for the message).
pub async fn restart(conn: &Conn, name: &str, delay: Duration, in_text: &str) -> Result<String> {
    conn.get_rollout(name).await?;
    let at = Timestamp::now()
        .checked_add(SignedDuration::try_from(delay).unwrap_or_default())
        .unwrap_or_else(|_| Timestamp::now());
    conn.patch(name, &actions::restart(at)).await?;
    Ok(format!("rollout '{name}' restarts in {in_text}"))
}

/// `undo [--to-revision N]` (0: the previous revision).
pub async fn undo(conn: &Conn, name: &str, to_revision: i64) -> Result<String> {
    let ro = conn.get_rollout(name).await?;
    let rss = conn.replica_sets_of(&ro).await?;
    if let Some((key, pointer)) = workload_of(&ro)? {
        // The template lives in the workload: it gets the revision's back.
        for _ in 0..CONFLICT_ATTEMPTS {
            let obj = conn.get_workload(&key).await?;
            let value = to_value(&obj, &key.name)?;
            match actions::undo_workload(&ro, &rss, to_revision, &value, pointer)? {
                (revision, None) => {
                    return Ok(format!(
                        "skipped rollback (current template already matches revision {revision})"
                    ));
                }
                (_, Some(updated)) => {
                    if conn
                        .replace_workload(&key, &from_value(updated, &key.name)?)
                        .await?
                    {
                        return Ok(format!(
                            "rollout '{name}' undo ({} {:?} updated)",
                            key.kind, key.name
                        ));
                    }
                }
            }
        }
        return Err(CliError::failed(format!(
            "{} {:?} kept changing: undo gave up after {CONFLICT_ATTEMPTS} conflicts",
            key.kind, key.name
        ))
        .with_status(409));
    }
    match actions::undo(&ro, &rss, to_revision)? {
        Undo::Skip { revision } => Ok(format!(
            "skipped rollback (current template already matches revision {revision})"
        )),
        Undo::Patch { op, .. } => {
            conn.patch(name, &op).await?;
            Ok(format!("rollout '{name}' undo"))
        }
    }
}

/// `set image NAME CONTAINER=IMAGE` (`*`: every container).
pub async fn set_image(conn: &Conn, name: &str, container: &str, image: &str) -> Result<String> {
    let stored = to_value(&conn.get_rollout_object(name).await?, name)?;
    if let Some((key, pointer)) = workload_of_value(&stored)? {
        // The template lives in the workload: its image is the one to set.
        for _ in 0..CONFLICT_ATTEMPTS {
            let obj = conn.get_workload(&key).await?;
            let mut value = to_value(&obj, &key.name)?;
            let what = key.kind.to_lowercase();
            actions::set_image_at(&mut value, pointer, &what, container, image)?;
            if conn
                .replace_workload(&key, &from_value(value, &key.name)?)
                .await?
            {
                return Ok(format!(
                    "rollout \"{name}\" image updated ({} {:?})",
                    key.kind, key.name
                ));
            }
        }
        return Err(CliError::failed(format!(
            "{} {:?} kept changing: set image gave up after {CONFLICT_ATTEMPTS} conflicts",
            key.kind, key.name
        ))
        .with_status(409));
    }
    let mut value = stored;
    for attempt in 0..CONFLICT_ATTEMPTS {
        if attempt > 0 {
            value = to_value(&conn.get_rollout_object(name).await?, name)?;
        }
        actions::set_image(&mut value, container, image)?;
        let obj = from_value(value.clone(), name)?;
        if conn.replace_rollout_object(&obj).await? {
            return Ok(format!("rollout \"{name}\" image updated"));
        }
    }
    Err(CliError::failed(format!(
        "updating rollout {name:?} in namespace {:?}: it kept changing under us ({CONFLICT_ATTEMPTS} conflicts)",
        conn.namespace
    ))
    .with_status(409))
}

/// The object a Rollout's `workloadRef` names and where its pod template is, if it has one.
fn workload_of(ro: &Rollout) -> Result<Option<(crate::traffic::ObjectKey, &'static str)>> {
    let Some(key) = crate::plan::workload::key(ro) else {
        return Ok(None);
    };
    let key = key.map_err(|e| {
        CliError::failed(format!(
            "rollout {:?}: {e}",
            ro.metadata.name.as_deref().unwrap_or_default()
        ))
    })?;
    let pointer = crate::plan::workload::template_pointer(ro).unwrap_or("/spec/template");
    Ok(Some((key, pointer)))
}

/// [`workload_of`] on a Rollout as stored (only its name, namespace and `workloadRef` read).
fn workload_of_value(ro: &Value) -> Result<Option<(crate::traffic::ObjectKey, &'static str)>> {
    let Some(workload_ref) = ro.pointer("/spec/workloadRef").filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let minimal = serde_json::json!({
        "metadata": {"name": ro.pointer("/metadata/name"),
                     "namespace": ro.pointer("/metadata/namespace")},
        "spec": {"workloadRef": workload_ref},
    });
    let ro: Rollout = serde_json::from_value(minimal)
        .map_err(|e| CliError::failed(format!("reading the rollout's workloadRef: {e}")))?;
    workload_of(&ro)
}

fn to_value(obj: &DynamicObject, name: &str) -> Result<Value> {
    serde_json::to_value(obj).map_err(|e| CliError::failed(format!("reading {name:?}: {e}")))
}

fn from_value(value: Value, name: &str) -> Result<DynamicObject> {
    serde_json::from_value(value).map_err(|e| CliError::failed(format!("updating {name:?}: {e}")))
}
