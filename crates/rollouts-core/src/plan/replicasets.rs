//! ReplicaSet bookkeeping shared by the strategies: which ReplicaSet is new, which is stable,
//! revisions, the new ReplicaSet's object, revision-history cleanup, and selector strings.

use crate::api::consts::{
    DEFAULT_REPLICASET_SCALE_DOWN_DEADLINE_ANNOTATION_KEY, DEFAULT_ROLLOUT_UNIQUE_LABEL_KEY,
    DESIRED_REPLICAS_ANNOTATION, EPHEMERAL_METADATA_ANNOTATION, REVISION_ANNOTATION,
    REVISION_HISTORY_ANNOTATION,
};
use crate::api::{PodTemplateMetadata, Rollout};
use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::jiff::Timestamp;
use kube_core::ResourceExt;
use std::collections::BTreeMap;

/// Our annotation recording the canonical template hash ([`super::hash::pod_template_hash`])
/// of a ReplicaSet's template. It lets us recognise ReplicaSets adopted from Argo Rollouts
/// (whose name and label carry upstream's hash) without comparing templates again.
pub const TEMPLATE_HASH_ANNOTATION: &str = "rollout.argoproj.io/canonical-template-hash";

/// A ReplicaSet as the planner sees it.
#[derive(Clone, Debug)]
pub struct Rs<'a> {
    /// The observed object; `None` for one this plan creates.
    pub obj: Option<&'a ReplicaSet>,
    pub name: String,
    pub uid: Option<String>,
    pub annotations: BTreeMap<String, String>,
    /// Its `rollouts-pod-template-hash` label.
    pub hash: String,
    pub spec_replicas: i32,
    pub status_replicas: i32,
    pub ready: i32,
    pub available: i32,
    pub revision: i64,
    pub created: Option<Timestamp>,
    pub deleting: bool,
    /// `metadata.generation <= status.observedGeneration`.
    pub observed: bool,
}

impl<'a> Rs<'a> {
    pub fn new(obj: &'a ReplicaSet) -> Rs<'a> {
        Rs {
            obj: Some(obj),
            ..Rs::detached(obj)
        }
    }

    /// A view of a ReplicaSet not borrowed from the observation (one being created).
    pub fn detached(obj: &ReplicaSet) -> Rs<'static> {
        let st = obj.status.clone().unwrap_or_default();
        Rs {
            obj: None,
            name: obj.name_any(),
            uid: obj.uid(),
            annotations: obj.annotations().clone(),
            observed: obj.metadata.generation.unwrap_or(0) <= st.observed_generation.unwrap_or(0),
            hash: obj
                .labels()
                .get(DEFAULT_ROLLOUT_UNIQUE_LABEL_KEY)
                .cloned()
                .unwrap_or_default(),
            spec_replicas: obj.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
            status_replicas: st.replicas,
            ready: st.ready_replicas.unwrap_or(0),
            available: st.available_replicas.unwrap_or(0),
            revision: revision_of(obj.annotations()),
            created: obj.metadata.creation_timestamp.as_ref().map(|t| t.0),
            deleting: obj.metadata.deletion_timestamp.is_some(),
        }
    }

    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.get(key).map(String::as_str)
    }

    /// The `scale-down-deadline` annotation, parsed.
    pub fn scale_down_deadline(&self) -> Option<Result<Timestamp, k8s_openapi::jiff::Error>> {
        self.annotation(DEFAULT_REPLICASET_SCALE_DOWN_DEADLINE_ANNOTATION_KEY)
            .map(|s| s.parse::<Timestamp>())
    }

    pub fn desired_replicas_annotation(&self) -> Option<i32> {
        self.annotation(DESIRED_REPLICAS_ANNOTATION)
            .and_then(|s| s.parse().ok())
    }

    pub fn state(&self) -> super::replicas::RsState {
        super::replicas::RsState {
            replicas: self.spec_replicas,
            available: self.available,
        }
    }
}

/// The `rollout.argoproj.io/revision` of an object's annotations (0 when absent or invalid).
pub fn revision_of(annotations: &BTreeMap<String, String>) -> i64 {
    annotations
        .get(REVISION_ANNOTATION)
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

/// The ReplicaSets of a Rollout, classified as upstream does.
#[derive(Clone, Debug)]
pub struct Classified<'a> {
    pub all: Vec<Rs<'a>>,
    /// Index into `all` of the ReplicaSet whose template is the Rollout's.
    pub new: Option<usize>,
    /// Index into `all` of the ReplicaSet whose hash is `status.stableRS`.
    pub stable: Option<usize>,
}

impl<'a> Classified<'a> {
    /// `desired_hash` is our hash of the Rollout's template; `adoptable` a ReplicaSet found
    /// equal by the controller.
    pub fn new(
        replica_sets: &[&'a ReplicaSet],
        desired_hash: &str,
        adoptable: Option<&str>,
        stable_hash: Option<&str>,
    ) -> Classified<'a> {
        let mut all: Vec<Rs<'a>> = replica_sets.iter().map(|rs| Rs::new(rs)).collect();
        // Oldest first, as upstream sorts by creation time.
        all.sort_by(|a, b| a.created.cmp(&b.created).then_with(|| a.name.cmp(&b.name)));
        let live = |rs: &Rs| !rs.deleting;
        let new = all
            .iter()
            .position(|rs| {
                live(rs) && rs.annotation(TEMPLATE_HASH_ANNOTATION) == Some(desired_hash)
            })
            .or_else(|| {
                all.iter()
                    .position(|rs| live(rs) && rs.hash == desired_hash)
            })
            .or_else(|| adoptable.and_then(|a| all.iter().position(|rs| live(rs) && rs.name == a)));
        let stable = stable_hash
            .filter(|h| !h.is_empty())
            .and_then(|h| all.iter().position(|rs| rs.hash == h));
        Classified { all, new, stable }
    }

    pub fn new_rs(&self) -> Option<&Rs<'a>> {
        self.new.map(|i| &self.all[i])
    }

    pub fn stable_rs(&self) -> Option<&Rs<'a>> {
        self.stable.map(|i| &self.all[i])
    }

    /// Every ReplicaSet but the new one.
    pub fn older(&self) -> impl Iterator<Item = &Rs<'a>> {
        self.all
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != self.new)
            .map(|(_, rs)| rs)
    }

    /// Every ReplicaSet but the new and the stable one.
    pub fn others(&self) -> impl Iterator<Item = &Rs<'a>> {
        self.all
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != self.new && Some(*i) != self.stable)
            .map(|(_, rs)| rs)
    }

    /// The highest revision among the older ReplicaSets.
    pub fn max_old_revision(&self) -> i64 {
        self.older().map(|rs| rs.revision).max().unwrap_or(0)
    }
}

/// Label selector in Kubernetes' string form (`metav1.FormatLabelSelector`): requirements
/// sorted by key, e.g. `app=demo,tier in (a,b)`.
pub fn format_selector(sel: Option<&LabelSelector>) -> String {
    let Some(sel) = sel else {
        return "<none>".into();
    };
    let mut reqs: Vec<(String, String)> = Vec::new();
    for (k, v) in sel.match_labels.iter().flatten() {
        reqs.push((k.clone(), format!("{k}={v}")));
    }
    for e in sel.match_expressions.iter().flatten() {
        let mut values = e.values.clone().unwrap_or_default();
        values.sort();
        let s = match e.operator.as_str() {
            "In" => format!("{} in ({})", e.key, values.join(",")),
            "NotIn" => format!("{} notin ({})", e.key, values.join(",")),
            "Exists" => e.key.clone(),
            "DoesNotExist" => format!("!{}", e.key),
            other => format!("{} {other} ({})", e.key, values.join(",")),
        };
        reqs.push((e.key.clone(), s));
    }
    if reqs.is_empty() {
        return String::new();
    }
    reqs.sort();
    reqs.into_iter()
        .map(|(_, s)| s)
        .collect::<Vec<_>>()
        .join(",")
}

/// The metadata of a ReplicaSet's pod template, created empty where missing.
pub fn template_metadata_mut(rs: &mut ReplicaSet) -> &mut ObjectMeta {
    rs.spec
        .get_or_insert_with(Default::default)
        .template
        .get_or_insert_with(Default::default)
        .metadata
        .get_or_insert_with(Default::default)
}

/// Applies ephemeral labels/annotations to a pod template and records them in the
/// ReplicaSet's `rollout.argoproj.io/ephemeral-metadata` annotation, as upstream does.
fn apply_ephemeral_metadata(rs: &mut ReplicaSet, md: Option<&PodTemplateMetadata>) {
    let Some(md) = md else { return };
    if md.labels.as_ref().is_none_or(|l| l.is_empty())
        && md.annotations.as_ref().is_none_or(|a| a.is_empty())
    {
        return;
    }
    let tpl_meta = template_metadata_mut(rs);
    for (k, v) in md.labels.iter().flatten() {
        tpl_meta
            .labels
            .get_or_insert_with(Default::default)
            .insert(k.clone(), v.clone());
    }
    for (k, v) in md.annotations.iter().flatten() {
        tpl_meta
            .annotations
            .get_or_insert_with(Default::default)
            .insert(k.clone(), v.clone());
    }
    if let Ok(json) = serde_json::to_string(md) {
        rs.metadata
            .annotations
            .get_or_insert_with(Default::default)
            .insert(EPHEMERAL_METADATA_ANNOTATION.into(), json);
    }
}

/// The controller owner reference to a Rollout.
pub fn owner_reference(ro: &Rollout) -> OwnerReference {
    OwnerReference {
        api_version: crate::api::API_VERSION.into(),
        kind: "Rollout".into(),
        name: ro.name_any(),
        uid: ro.uid().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// The new ReplicaSet for a Rollout's template, as upstream builds it: named
/// `<rollout>-<hash>`, hash label on it, its selector and its pod template, controller owner
/// reference, revision and desired-replicas annotations, `minReadySeconds`, and the
/// ephemeral metadata of the role it starts in.
pub fn new_replica_set(
    ro: &Rollout,
    template_hash: &str,
    revision: i64,
    replicas: i32,
    ephemeral: Option<&PodTemplateMetadata>,
) -> ReplicaSet {
    let mut template = ro.spec.template.clone().unwrap_or_default();
    let tmeta = template.metadata.get_or_insert_with(Default::default);
    tmeta.labels.get_or_insert_with(Default::default).insert(
        DEFAULT_ROLLOUT_UNIQUE_LABEL_KEY.into(),
        template_hash.into(),
    );
    let labels = tmeta.labels.clone();
    if let Some(affinity) = super::affinity::replica_set_affinity(ro, template_hash) {
        template.spec.get_or_insert_with(Default::default).affinity = affinity;
    }
    let mut selector = ro.spec.selector.clone().unwrap_or_default();
    selector
        .match_labels
        .get_or_insert_with(Default::default)
        .insert(
            DEFAULT_ROLLOUT_UNIQUE_LABEL_KEY.into(),
            template_hash.into(),
        );
    let mut annotations = BTreeMap::new();
    annotations.insert(REVISION_ANNOTATION.to_string(), revision.to_string());
    annotations.insert(
        DESIRED_REPLICAS_ANNOTATION.to_string(),
        ro.replicas_or_default().to_string(),
    );
    annotations.insert(
        TEMPLATE_HASH_ANNOTATION.to_string(),
        template_hash.to_string(),
    );
    let mut rs = ReplicaSet {
        metadata: ObjectMeta {
            name: Some(format!("{}-{}", ro.name_any(), template_hash)),
            namespace: ro.namespace(),
            labels,
            annotations: Some(annotations),
            owner_references: Some(vec![owner_reference(ro)]),
            ..Default::default()
        },
        spec: Some(ReplicaSetSpec {
            replicas: Some(replicas),
            min_ready_seconds: ro.spec.min_ready_seconds,
            selector,
            template: Some(template),
        }),
        status: None,
    };
    apply_ephemeral_metadata(&mut rs, ephemeral);
    rs
}

/// Upstream's `SetNewReplicaSetAnnotations` for an existing new ReplicaSet: raise its revision
/// to `new_revision` when lower (keeping the old one in `revision-history`, as a rollback
/// does). Returns the annotation changes.
pub fn revision_annotations(rs: &Rs<'_>, new_revision: i64) -> BTreeMap<String, Option<String>> {
    let mut out = BTreeMap::new();
    let old = rs.annotation(REVISION_ANNOTATION);
    let old_num = match old {
        None | Some("") => 0,
        Some(s) => match s.parse::<i64>() {
            Ok(n) => n,
            Err(_) => return out,
        },
    };
    if old_num < new_revision {
        out.insert(
            REVISION_ANNOTATION.to_string(),
            Some(new_revision.to_string()),
        );
        if let Some(old) = old.filter(|o| !o.is_empty()) {
            let history = match rs.annotation(REVISION_HISTORY_ANNOTATION) {
                Some(h) if !h.is_empty() => format!("{h},{old}"),
                _ => old.to_string(),
            };
            out.insert(REVISION_HISTORY_ANNOTATION.to_string(), Some(history));
        }
    }
    out
}

/// Old ReplicaSets to delete beyond `revisionHistoryLimit` (default 10), oldest first, only
/// those fully scaled down and observed (upstream's `reconcileRevisionHistoryLimit`).
pub fn history_cleanup<'a>(
    others: &[&Rs<'a>],
    limit: Option<i32>,
) -> Vec<(String, Option<String>)> {
    let limit = limit
        .unwrap_or(crate::api::defaults::REVISION_HISTORY_LIMIT)
        .max(0) as usize;
    let mut cleanable: Vec<&&Rs<'a>> = others.iter().filter(|rs| !rs.deleting).collect();
    if cleanable.len() <= limit {
        return Vec::new();
    }
    let diff = cleanable.len() - limit;
    cleanable.sort_by(|a, b| a.created.cmp(&b.created).then_with(|| a.name.cmp(&b.name)));
    cleanable
        .into_iter()
        .take(diff)
        .filter(|rs| rs.status_replicas == 0 && rs.spec_replicas == 0 && rs.observed)
        .map(|rs| (rs.name.clone(), rs.uid.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    #[test]
    fn selector_strings_match_kubernetes() {
        let sel = LabelSelector {
            match_labels: Some([("app".to_string(), "demo".to_string())].into()),
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "tier".into(),
                operator: "In".into(),
                values: Some(vec!["b".into(), "a".into()]),
            }]),
        };
        assert_eq!(format_selector(Some(&sel)), "app=demo,tier in (a,b)");
        assert_eq!(format_selector(None), "<none>");
    }
}
