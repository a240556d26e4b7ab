//! Adopting ReplicaSets created by another controller (Argo Rollouts) under its own hash.
//!
//! Upstream names ReplicaSets with a hash that differs from ours, and a template can come back
//! in another form (`undo` copies a ReplicaSet's defaulted template into the Rollout). When a
//! Rollout's template has no ReplicaSet under our hash but the Rollout owns others, we ask
//! the API server to default the Rollout's template (a dry-run create of a `PodTemplate`, so the
//! defaulting is exactly the server's) and compare it with each candidate's template, ignoring
//! the hash label and ephemeral metadata. A match is adopted as the new ReplicaSet (the planner
//! then tags it with our hash, so this runs at most once per template change).

use super::{Error, FIELD_MANAGER};
use crate::api::Rollout;
use crate::api::consts::{DEFAULT_ROLLOUT_UNIQUE_LABEL_KEY, EPHEMERAL_METADATA_ANNOTATION};
use crate::plan::hash::{canonical_template, pod_template_hash};
use crate::plan::replicasets::TEMPLATE_HASH_ANNOTATION;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::PodTemplate;
use kube::api::PostParams;
use kube::{Api, Client, ResourceExt};
use serde_json::Value;

/// Removes the labels and annotations a ReplicaSet's ephemeral metadata added.
fn strip_ephemeral(template: &mut Value, rs: &ReplicaSet) {
    let Some(md) = rs.annotations().get(EPHEMERAL_METADATA_ANNOTATION) else {
        return;
    };
    let Ok(md) = serde_json::from_str::<Value>(md) else {
        return;
    };
    for field in ["labels", "annotations"] {
        if let (Some(keys), Some(target)) = (
            md.get(field).and_then(Value::as_object),
            template
                .pointer_mut(&format!("/metadata/{field}"))
                .and_then(Value::as_object_mut),
        ) {
            for k in keys.keys() {
                target.remove(k);
            }
        }
    }
}

/// The (name, image) of every container and init container of a template, in order.
fn containers(t: &k8s_openapi::api::core::v1::PodTemplateSpec) -> Vec<(&str, Option<&str>)> {
    let Some(spec) = t.spec.as_ref() else {
        return Vec::new();
    };
    spec.init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter())
        .map(|c| (c.name.as_str(), c.image.as_deref()))
        .collect()
}

/// The name of an owned, untagged ReplicaSet whose template equals the Rollout's, if any.
pub async fn find_adoptable(
    client: &Client,
    ro: &Rollout,
    owned: &[&ReplicaSet],
) -> Result<Option<String>, Error> {
    let Some(template) = ro.spec.template.as_ref() else {
        return Ok(None);
    };
    let template_json = serde_json::to_value(template)?;
    let collision = ro.status.as_ref().and_then(|s| s.collision_count);
    let hash = pod_template_hash(&template_json, collision);
    let known = owned.iter().any(|rs| {
        rs.annotations().get(TEMPLATE_HASH_ANNOTATION) == Some(&hash)
            || rs.labels().get(DEFAULT_ROLLOUT_UNIQUE_LABEL_KEY) == Some(&hash)
    });
    // Every live ReplicaSet is a candidate: ones created by Argo Rollouts, and ours whose
    // template the Rollout got back in another form (e.g. `undo` copies a ReplicaSet's
    // API-server-defaulted template into the Rollout, which hashes differently).
    let candidates: Vec<&&ReplicaSet> = owned
        .iter()
        .filter(|rs| rs.metadata.deletion_timestamp.is_none())
        .collect();
    if known || candidates.is_empty() {
        return Ok(None);
    }
    // The server's defaulting never changes a container's name or image: a candidate whose
    // containers differ there cannot match, and when none is left (an image update, the usual
    // case) no dry run is needed.
    let images = containers(template);
    let candidates: Vec<&&ReplicaSet> = candidates
        .into_iter()
        .filter(|rs| {
            rs.spec
                .as_ref()
                .and_then(|s| s.template.as_ref())
                .is_some_and(|t| containers(t) == images)
        })
        .collect();
    if candidates.is_empty() {
        return Ok(None);
    }
    let ns = ro.namespace().unwrap_or_default();
    let api: Api<PodTemplate> = Api::namespaced(client.clone(), &ns);
    let probe = PodTemplate {
        metadata: kube::api::ObjectMeta {
            name: Some(format!(
                "{}-adoption-check",
                ro.name_any().chars().take(200).collect::<String>()
            )),
            ..Default::default()
        },
        template: Some(template.clone()),
    };
    let pp = PostParams {
        dry_run: true,
        field_manager: Some(FIELD_MANAGER.into()),
    };
    let defaulted = match api.create(&pp, &probe).await {
        Ok(pt) => pt.template.unwrap_or_default(),
        // The template is not acceptable as a pod template: nothing can equal it.
        Err(kube::Error::Api(e))
            if (400..500).contains(&e.code) && e.code != 403 && e.code != 429 =>
        {
            return Ok(None);
        }
        Err(e) => return Err(e.into()),
    };
    let want = canonical_template(&serde_json::to_value(&defaulted)?);
    for rs in candidates {
        let Some(t) = rs.spec.as_ref().and_then(|s| s.template.as_ref()) else {
            continue;
        };
        let mut have = serde_json::to_value(t)?;
        strip_ephemeral(&mut have, rs);
        crate::plan::affinity::strip_injected(ro, &mut have);
        if canonical_template(&have) == want {
            return Ok(Some(rs.name_any()));
        }
    }
    Ok(None)
}
