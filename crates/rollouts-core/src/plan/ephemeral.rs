//! Ephemeral metadata (upstream's `reconcileEphemeralMetadata`): the labels and annotations
//! of `canaryMetadata`/`stableMetadata` (blue-green: `previewMetadata`/`activeMetadata`)
//! follow a ReplicaSet's role. When a canary becomes stable, its pod template and its running
//! pods are switched in place to the stable metadata, without restarting them.
//!
//! The ReplicaSet's `rollout.argoproj.io/ephemeral-metadata` annotation records the metadata
//! its pods carry. It is rewritten last, after the template and the pods: a controller that
//! stops half-way finds the record still old and does the (idempotent) work again. So the
//! pods are listed only while a record is out of date, never in steady state.

use super::replicasets::{Classified, Rs};
use super::view::View;
use super::writes::Writes;
use crate::api::consts::EPHEMERAL_METADATA_ANNOTATION;
use crate::api::{PodTemplateMetadata, Rollout};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use kube_core::ResourceExt;
use std::collections::BTreeMap;

/// Changes to an object's labels and annotations: `Some(v)` sets, `None` removes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MetadataChange {
    pub labels: BTreeMap<String, Option<String>>,
    pub annotations: BTreeMap<String, Option<String>>,
}

impl MetadataChange {
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty() && self.annotations.is_empty()
    }

    /// The merge-patch body for a `metadata` object.
    pub fn to_json(&self) -> serde_json::Value {
        let mut out = serde_json::Map::new();
        if !self.labels.is_empty() {
            out.insert("labels".into(), serde_json::json!(self.labels));
        }
        if !self.annotations.is_empty() {
            out.insert("annotations".into(), serde_json::json!(self.annotations));
        }
        serde_json::Value::Object(out)
    }
}

/// `None` for metadata without a label or an annotation (`{}` adds nothing).
fn normalized(md: Option<&PodTemplateMetadata>) -> Option<&PodTemplateMetadata> {
    md.filter(|m| {
        m.labels.as_ref().is_some_and(|l| !l.is_empty())
            || m.annotations.as_ref().is_some_and(|a| !a.is_empty())
    })
}

/// The metadata a ReplicaSet's record says its pods carry.
pub fn recorded(rs: &ReplicaSet) -> Option<PodTemplateMetadata> {
    let json = rs.annotations().get(EPHEMERAL_METADATA_ANNOTATION)?;
    serde_json::from_str(json).ok()
}

/// The value of the record for `desired` (`None`: no record).
pub fn record(desired: Option<&PodTemplateMetadata>) -> Option<String> {
    normalized(desired).and_then(|m| serde_json::to_string(m).ok())
}

/// Upstream's `SyncEphemeralPodMetadata` as a change: add or update the desired labels and
/// annotations, remove the previously injected ones no longer desired. Keys in `protected`
/// (the ReplicaSet's selector) are never touched: changing them would orphan the pods.
fn sync_map(
    current: Option<&BTreeMap<String, String>>,
    existing: Option<&BTreeMap<String, String>>,
    desired: Option<&BTreeMap<String, String>>,
    protected: &BTreeMap<String, String>,
) -> BTreeMap<String, Option<String>> {
    let mut out = BTreeMap::new();
    let has = |k: &str| current.is_some_and(|c| c.contains_key(k));
    for (k, v) in desired.into_iter().flatten() {
        if !protected.contains_key(k) && current.and_then(|c| c.get(k)) != Some(v) {
            out.insert(k.clone(), Some(v.clone()));
        }
    }
    for k in existing.into_iter().flatten().map(|(k, _)| k) {
        let still = desired.is_some_and(|d| d.contains_key(k));
        if !still && !protected.contains_key(k) && has(k) {
            out.insert(k.clone(), None);
        }
    }
    out
}

/// The change bringing an object's labels and annotations from `existing` ephemeral
/// metadata to `desired`.
pub fn sync(
    labels: Option<&BTreeMap<String, String>>,
    annotations: Option<&BTreeMap<String, String>>,
    existing: Option<&PodTemplateMetadata>,
    desired: Option<&PodTemplateMetadata>,
    protected: &BTreeMap<String, String>,
) -> MetadataChange {
    MetadataChange {
        labels: sync_map(
            labels,
            existing.and_then(|m| m.labels.as_ref()),
            desired.and_then(|m| m.labels.as_ref()),
            protected,
        ),
        annotations: sync_map(
            annotations,
            existing.and_then(|m| m.annotations.as_ref()),
            desired.and_then(|m| m.annotations.as_ref()),
            &BTreeMap::new(),
        ),
    }
}

/// One ReplicaSet's role for ephemeral metadata.
pub struct Target<'r> {
    /// Index into [`Classified::all`].
    pub idx: usize,
    pub desired: Option<&'r PodTemplateMetadata>,
    /// Whether its pods are updated too (the new and the stable ReplicaSets), or only its
    /// template (the others, whose pods upstream leaves alone).
    pub pods: bool,
}

/// Whether the strategy configures ephemeral metadata at all (most Rollouts do not).
pub fn configured(ro: &Rollout) -> bool {
    metadata(ro).is_some()
}

/// The `(new, stable)` metadata the strategy asks for, when it asks for any.
fn metadata(ro: &Rollout) -> Option<(Option<&PodTemplateMetadata>, Option<&PodTemplateMetadata>)> {
    let (new, stable) = match (ro.canary(), ro.blue_green()) {
        (Some(c), _) => (c.canary_metadata.as_ref(), c.stable_metadata.as_ref()),
        (None, Some(b)) => (b.preview_metadata.as_ref(), b.active_metadata.as_ref()),
        (None, None) => return None,
    };
    (new.is_some() || stable.is_some()).then_some((new, stable))
}

/// The role of each observed ReplicaSet, as upstream assigns it: while an update is in
/// flight (`status.stableRS` set and not the new ReplicaSet's hash) the new one carries the
/// canary (preview) metadata and the stable one the stable (active) metadata; once fully
/// rolled out the new one is the stable. The rest carry none. Nothing at all when the
/// strategy configures no ephemeral metadata (as upstream).
pub fn targets<'r>(ro: &'r Rollout, rs: &Classified<'_>) -> Vec<Target<'r>> {
    let Some((new_md, stable_md)) = metadata(ro) else {
        return Vec::new();
    };
    let stable_hash = ro
        .status
        .as_ref()
        .and_then(|s| s.stable_rs.as_deref())
        .unwrap_or_default();
    let fully_rolled_out =
        stable_hash.is_empty() || rs.new_rs().is_some_and(|n| n.hash == stable_hash);
    rs.all
        .iter()
        .enumerate()
        .filter(|(_, r)| r.obj.is_some() && !r.deleting)
        .map(|(idx, _)| {
            let (desired, pods) = if Some(idx) == rs.new {
                (if fully_rolled_out { stable_md } else { new_md }, true)
            } else if Some(idx) == rs.stable && !fully_rolled_out {
                (stable_md, true)
            } else {
                (None, false)
            };
            Target { idx, desired, pods }
        })
        .collect()
}

/// Whether the record of this target's ReplicaSet is out of date with pods to update.
pub fn pods_pending(t: &Target<'_>, rs: &Rs<'_>) -> bool {
    let Some(obj) = rs.obj else { return false };
    t.pods && rs.spec_replicas > 0 && !in_record(obj, t.desired)
}

/// Whether a ReplicaSet's record says its pods carry `desired`.
pub fn in_record(rs: &ReplicaSet, desired: Option<&PodTemplateMetadata>) -> bool {
    let rec = recorded(rs);
    normalized(rec.as_ref()) == normalized(desired)
}

/// The pods of a ReplicaSet (controller owner reference to its uid) not being deleted.
pub fn owned_pods<'p>(pods: &[&'p Pod], rs: &ReplicaSet) -> Vec<&'p Pod> {
    let Some(uid) = rs.uid() else {
        return Vec::new();
    };
    pods.iter()
        .copied()
        .filter(|p| {
            p.metadata.deletion_timestamp.is_none()
                && p.owner_references()
                    .iter()
                    .any(|o| o.controller == Some(true) && o.uid == uid)
        })
        .collect()
}

/// Upstream's `reconcileEphemeralMetadata`, as effects. A ReplicaSet whose pods need
/// updating but whose pods were not listed gets its template only; its record stays old,
/// so the pods are handled once they are listed ([`super::needs_pods`]).
pub fn sync_ephemeral_metadata(v: &View<'_>, w: &mut Writes, obs: &super::Observed<'_>) {
    let mut effects = Vec::new();
    for t in targets(v.ro, &v.rs) {
        let rs = &v.rs.all[t.idx];
        let Some(obj) = rs.obj else { continue };
        let existing = recorded(obj);
        let protected = obj
            .spec
            .as_ref()
            .and_then(|s| s.selector.match_labels.clone())
            .unwrap_or_default();
        let tmeta = obj
            .spec
            .as_ref()
            .and_then(|s| s.template.as_ref())
            .and_then(|t| t.metadata.as_ref());
        let template = sync(
            tmeta.and_then(|m| m.labels.as_ref()),
            tmeta.and_then(|m| m.annotations.as_ref()),
            existing.as_ref(),
            t.desired,
            &protected,
        );
        let up_to_date = in_record(obj, t.desired);
        let mut pods = Vec::new();
        let mut record = (!up_to_date).then(|| record(t.desired));
        if pods_pending(&t, rs) {
            match obs.pods.as_deref() {
                Some(listed) => {
                    for pod in owned_pods(listed, obj) {
                        let change = sync(
                            pod.metadata.labels.as_ref(),
                            pod.metadata.annotations.as_ref(),
                            existing.as_ref(),
                            t.desired,
                            &protected,
                        );
                        if !change.is_empty() {
                            pods.push((pod.name_any(), change));
                        }
                    }
                }
                None => record = None,
            }
        }
        if !template.is_empty() || !pods.is_empty() || record.is_some() {
            effects.push(super::Effect::EphemeralMetadata {
                replica_set: rs.name.clone(),
                template,
                pods,
                record,
            });
        }
    }
    w.effects.extend(effects);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn md(labels: &[(&str, &str)]) -> PodTemplateMetadata {
        PodTemplateMetadata {
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            annotations: None,
        }
    }

    fn map(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn sync_table() {
        let protected = map(&[("app", "demo"), ("rollouts-pod-template-hash", "abc")]);
        let set = |k: &str, v: &str| (k.to_string(), Some(v.to_string()));
        let del = |k: &str| (k.to_string(), None);
        #[allow(clippy::type_complexity)]
        let cases: Vec<(
            &str,
            BTreeMap<String, String>,
            Option<PodTemplateMetadata>,
            Option<PodTemplateMetadata>,
            Vec<(String, Option<String>)>,
        )> = vec![
            (
                "canary becomes stable",
                map(&[("app", "demo"), ("role", "canary")]),
                Some(md(&[("role", "canary")])),
                Some(md(&[("role", "stable")])),
                vec![set("role", "stable")],
            ),
            (
                "already in sync",
                map(&[("app", "demo"), ("role", "stable")]),
                Some(md(&[("role", "stable")])),
                Some(md(&[("role", "stable")])),
                vec![],
            ),
            (
                "metadata no longer wanted",
                map(&[("app", "demo"), ("role", "canary"), ("x", "1")]),
                Some(md(&[("role", "canary"), ("x", "1")])),
                None,
                vec![del("role"), del("x")],
            ),
            (
                "a key dropped, another kept",
                map(&[("role", "canary"), ("x", "1")]),
                Some(md(&[("role", "canary"), ("x", "1")])),
                Some(md(&[("role", "stable")])),
                vec![set("role", "stable"), del("x")],
            ),
            (
                "removal of an absent key is no change",
                map(&[("app", "demo")]),
                Some(md(&[("role", "canary")])),
                None,
                vec![],
            ),
            (
                "selector labels are never touched",
                map(&[("app", "demo")]),
                Some(md(&[("app", "demo")])),
                Some(md(&[("app", "other"), ("role", "stable")])),
                vec![set("role", "stable")],
            ),
            (
                "first injection",
                map(&[("app", "demo")]),
                None,
                Some(md(&[("role", "stable")])),
                vec![set("role", "stable")],
            ),
        ];
        for (name, current, existing, desired, want) in cases {
            let got = sync(
                Some(&current),
                None,
                existing.as_ref(),
                desired.as_ref(),
                &protected,
            );
            assert_eq!(got.labels, want.into_iter().collect(), "{name}");
            assert!(got.annotations.is_empty(), "{name}");
        }
    }

    #[test]
    fn annotations_are_synced_and_empty_metadata_is_no_record() {
        let existing = PodTemplateMetadata {
            labels: None,
            annotations: Some(map(&[("team", "a")])),
        };
        let got = sync(
            None,
            Some(&map(&[("team", "a"), ("other", "kept")])),
            Some(&existing),
            None,
            &BTreeMap::new(),
        );
        assert_eq!(got.annotations, [("team".to_string(), None)].into());
        assert_eq!(
            got.to_json(),
            serde_json::json!({"annotations": {"team": null}})
        );
        assert_eq!(record(Some(&PodTemplateMetadata::default())), None);
        assert_eq!(
            record(Some(&md(&[("role", "stable")]))).as_deref(),
            Some(r#"{"labels":{"role":"stable"}}"#)
        );
    }
}
