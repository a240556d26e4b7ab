//! NGINX Ingress: for each stable Ingress, a canary Ingress `<rollout>-<stableIngress>-canary`
//! (owned by the Rollout) with the stable Ingress's rules that use the stable Service, pointed at
//! the canary Service, and the annotations `<prefix>/canary: "true"` and
//! `<prefix>/canary-weight: "<weight>"` (`<prefix>/canary-weight-total` with
//! `maxTrafficWeight`), plus `additionalIngressAnnotations` (prefixed unless they already are)
//! and `canaryIngressAnnotations` (as given). Ingresses are `networking.k8s.io/v1`.
//!
//! Like upstream, NGINX has no header or mirror routes (they are no-ops here) and a canary
//! Ingress that another object controls is never touched (an error when it must be written).
//! Unlike upstream (which leaves it at weight 0), the canary Ingress is deleted at the end of
//! an update (`remove_managed_routes` with weight 0) and created again by the next one.

use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::{Ingress, IngressSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use serde_json::Value;

use super::json::{get, get_str};
use super::{ObjectChange, ObjectKey, Objects, Router, TrafficError, TrafficIntent, patch_change};
use crate::api::{NginxTrafficRouting, Rollout, RolloutTrafficRouting};

/// `apiVersion` of Ingresses.
pub const API_VERSION: &str = "networking.k8s.io/v1";
/// Default `annotationPrefix`.
pub const DEFAULT_ANNOTATION_PREFIX: &str = "nginx.ingress.kubernetes.io";
/// Suffix of canary Ingress names.
pub const CANARY_INGRESS_SUFFIX: &str = "-canary";
/// Longest object name.
const MAX_NAME: usize = 253;

/// Key of an Ingress.
pub fn ingress_key(namespace: &str, name: &str) -> ObjectKey {
    ObjectKey::new(API_VERSION, "Ingress", "ingresses", namespace, name)
}

/// `<rollout>-<stableIngress>-canary`, the prefix cut so the name stays within 253 characters.
pub fn canary_ingress_name(rollout: &str, stable_ingress: &str) -> String {
    let mut prefix = format!("{rollout}-{stable_ingress}");
    let max = MAX_NAME - CANARY_INGRESS_SUFFIX.len();
    if prefix.len() > max {
        let mut cut = max;
        while !prefix.is_char_boundary(cut) {
            cut -= 1;
        }
        prefix.truncate(cut);
    }
    prefix + CANARY_INGRESS_SUFFIX
}

/// The NGINX router of one Rollout.
#[derive(Clone, Debug)]
pub struct Nginx<'a> {
    spec: &'a NginxTrafficRouting,
    tr: &'a RolloutTrafficRouting,
    namespace: String,
    /// (stable Ingress name, canary Ingress name).
    ingresses: Vec<(String, String)>,
}

impl<'a> Nginx<'a> {
    /// Checks the `trafficRouting.nginx` spec.
    pub fn new(
        spec: &'a NginxTrafficRouting,
        tr: &'a RolloutTrafficRouting,
        ro: &Rollout,
    ) -> Result<Self, TrafficError> {
        let names: Vec<String> = match (&spec.stable_ingresses, &spec.stable_ingress) {
            (Some(list), _) if !list.is_empty() => list.clone(),
            (_, Some(one)) if !one.is_empty() => vec![one.clone()],
            _ => {
                return Err(TrafficError::invalid(
                    "spec.strategy.canary.trafficRouting.nginx.stableIngress",
                    "stableIngress or stableIngresses is required",
                ));
            }
        };
        if let Some(empty) = names.iter().position(String::is_empty) {
            return Err(TrafficError::invalid(
                format!("spec.strategy.canary.trafficRouting.nginx.stableIngresses[{empty}]"),
                "is empty",
            ));
        }
        let rollout = ro.metadata.name.as_deref().unwrap_or_default();
        Ok(Nginx {
            spec,
            tr,
            namespace: ro
                .metadata
                .namespace
                .clone()
                .unwrap_or_else(|| "default".into()),
            ingresses: names
                .into_iter()
                .map(|s| {
                    let c = canary_ingress_name(rollout, &s);
                    (s, c)
                })
                .collect(),
        })
    }

    fn prefix(&self) -> &str {
        self.spec
            .annotation_prefix
            .as_deref()
            .filter(|p| !p.is_empty())
            .unwrap_or(DEFAULT_ANNOTATION_PREFIX)
    }

    /// The canary Ingress for one stable Ingress.
    fn desired(
        &self,
        intent: &TrafficIntent<'_>,
        stable_key: &ObjectKey,
        stable: &Value,
        canary_name: &str,
    ) -> Result<Ingress, TrafficError> {
        let stable_svc = intent.stable_service;
        let canary_svc = intent.canary_service;
        super::require_services(intent, "NGINX")?;
        // Typed from here on; apiVersion/kind are the key's (the typed decoder checks them).
        let mut stable = stable.clone();
        if let Some(m) = stable.as_object_mut() {
            m.remove("apiVersion");
            m.remove("kind");
        }
        let stable: Ingress = serde_json::from_value(stable).map_err(|e| {
            TrafficError::invalid(stable_key.to_string(), format!("not an Ingress: {e}"))
        })?;
        let uid = intent.rollout.metadata.uid.as_deref().unwrap_or_default();
        if uid.is_empty() {
            return Err(TrafficError::invalid(
                "metadata.uid",
                "the Rollout has no uid to own its canary Ingress",
            ));
        }
        let stable_spec = stable.spec.unwrap_or_default();
        let mut rules = Vec::new();
        for rule in stable_spec.rules.into_iter().flatten() {
            let mut rule = rule;
            let mut uses_stable = false;
            for path in rule.http.iter_mut().flat_map(|h| h.paths.iter_mut()) {
                if let Some(svc) = path.backend.service.as_mut()
                    && svc.name == stable_svc
                {
                    svc.name = canary_svc.to_string();
                    uses_stable = true;
                }
            }
            if uses_stable {
                rules.push(rule);
            }
        }
        if rules.is_empty() {
            return Err(TrafficError::invalid(
                stable_key.to_string(),
                format!("has no rules using Service `{stable_svc}` as backend"),
            ));
        }
        let prefix = self.prefix();
        let mut annotations = BTreeMap::new();
        if let Some(class) = stable
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("kubernetes.io/ingress.class"))
        {
            annotations.insert("kubernetes.io/ingress.class".to_string(), class.clone());
        }
        for (k, v) in self.spec.additional_ingress_annotations.iter().flatten() {
            let k = if k.starts_with(prefix) {
                k.clone()
            } else {
                format!("{prefix}/{k}")
            };
            annotations.insert(k, v.clone());
        }
        for (k, v) in self.spec.canary_ingress_annotations.iter().flatten() {
            annotations.insert(k.clone(), v.clone());
        }
        annotations.insert(format!("{prefix}/canary"), "true".into());
        annotations.insert(format!("{prefix}/canary-weight"), intent.weight.to_string());
        if self.tr.max_traffic_weight.is_some() {
            annotations.insert(
                format!("{prefix}/canary-weight-total"),
                intent.max_weight.to_string(),
            );
        }
        Ok(Ingress {
            metadata: ObjectMeta {
                name: Some(canary_name.to_string()),
                namespace: Some(self.namespace.clone()),
                annotations: Some(annotations),
                owner_references: Some(vec![OwnerReference {
                    api_version: crate::api::API_VERSION.into(),
                    kind: "Rollout".into(),
                    name: intent.rollout_name().into(),
                    uid: uid.into(),
                    controller: Some(true),
                    block_owner_deletion: Some(true),
                }]),
                ..Default::default()
            },
            spec: Some(IngressSpec {
                ingress_class_name: stable_spec.ingress_class_name,
                tls: stable_spec.tls,
                rules: Some(rules),
                default_backend: None,
            }),
            status: None,
        })
    }

    /// Whether the Rollout is the controller owner of this object.
    fn controlled_by(obj: &Value, intent: &TrafficIntent<'_>) -> bool {
        let uid = intent.rollout.metadata.uid.as_deref().unwrap_or_default();
        get(obj, &["metadata", "ownerReferences"])
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .any(|r| {
                r.get("controller").and_then(Value::as_bool) == Some(true)
                    && !uid.is_empty()
                    && r.get("uid").and_then(Value::as_str) == Some(uid)
            })
    }
}

fn to_value(ing: &Ingress, key: &ObjectKey) -> Result<Value, TrafficError> {
    serde_json::to_value(ing)
        .map_err(|e| TrafficError::invalid(key.to_string(), format!("cannot serialise: {e}")))
}

impl Router for Nginx<'_> {
    fn name(&self) -> &'static str {
        "nginx"
    }

    fn referenced_objects(&self) -> Vec<ObjectKey> {
        self.ingresses
            .iter()
            .flat_map(|(s, c)| {
                [
                    ingress_key(&self.namespace, s),
                    ingress_key(&self.namespace, c),
                ]
            })
            .collect()
    }

    /// Creates or updates each canary Ingress (annotations and spec as desired; labels and
    /// other metadata left alone); at the end (`remove_managed_routes` at weight 0) deletes it.
    fn set_weight(
        &self,
        intent: &TrafficIntent<'_>,
        objects: &Objects,
    ) -> Result<Vec<ObjectChange>, TrafficError> {
        let mut out = Vec::new();
        let remove = intent.remove_managed_routes && intent.weight == 0;
        for (stable_name, canary_name) in &self.ingresses {
            let stable_key = ingress_key(&self.namespace, stable_name);
            let canary_key = ingress_key(&self.namespace, canary_name);
            let current = objects.get(&canary_key);
            if remove {
                if let Some(cur) = current
                    && Self::controlled_by(cur, intent)
                {
                    out.push(ObjectChange::Delete { key: canary_key });
                }
                continue;
            }
            let stable = objects
                .get(&stable_key)
                .ok_or_else(|| TrafficError::MissingObject {
                    key: stable_key.clone(),
                })?;
            let desired = self.desired(intent, &stable_key, stable, canary_name)?;
            let Some(cur) = current else {
                let mut object = to_value(&desired, &canary_key)?;
                if let Some(m) = object.as_object_mut() {
                    m.insert("apiVersion".into(), API_VERSION.into());
                    m.insert("kind".into(), "Ingress".into());
                }
                out.push(ObjectChange::Create {
                    key: canary_key,
                    object,
                });
                continue;
            };
            if !Self::controlled_by(cur, intent) {
                return Err(TrafficError::invalid(
                    canary_key.to_string(),
                    "is controlled by another object; refusing to change it",
                ));
            }
            let mut new = cur.clone();
            let annotations =
                serde_json::to_value(&desired.metadata.annotations).unwrap_or(Value::Null);
            let spec = to_value(&desired, &canary_key)?
                .get("spec")
                .cloned()
                .unwrap_or(Value::Null);
            // Compare the current spec after a round trip through the typed Ingress, so that
            // empty lists and the like do not count as differences.
            let cur_spec = get(cur, &["spec"])
                .cloned()
                .and_then(|s| serde_json::from_value::<IngressSpec>(s).ok())
                .and_then(|s| serde_json::to_value(s).ok());
            if let Some(m) = new.as_object_mut() {
                if cur_spec.as_ref() != Some(&spec) {
                    m.insert("spec".into(), spec);
                }
                if let Some(meta) = m.get_mut("metadata").and_then(Value::as_object_mut) {
                    meta.insert("annotations".into(), annotations);
                }
            }
            out.extend(patch_change(&canary_key, cur, &new));
        }
        Ok(out)
    }

    /// The `canary-weight` of the canary Ingresses (0 for a missing one), if they agree.
    fn current_weight(&self, _intent: &TrafficIntent<'_>, objects: &Objects) -> Option<i32> {
        let key = format!("{}/canary-weight", self.prefix());
        let mut weight = None;
        for (_, canary) in &self.ingresses {
            let w = match objects.get(&ingress_key(&self.namespace, canary)) {
                None => 0,
                Some(obj) => get_str(obj, &["metadata", "annotations", &key])?
                    .trim()
                    .parse()
                    .ok()?,
            };
            if weight.is_some_and(|p| p != w) {
                return None;
            }
            weight = Some(w);
        }
        weight
    }
}
