//! AWS Load Balancer Controller Ingresses (`trafficRouting.alb`): the weights live in the
//! Ingress annotation `<prefix>/actions.<rootService or stableService>`, a forward action whose
//! target groups are the canary and stable Services on `servicePort`; the AWS controller turns
//! it into listener rules. The Ingress must have a rule whose backend is that Service (with
//! port `use-annotation`). The written keys are recorded per Rollout in
//! `rollouts.argoproj.io/managed-alb-actions`, as upstream does.
//!
//! The annotation is upstream's byte for byte (Go's field order), so a switch from Argo
//! Rollouts rewrites nothing. Not built: header routes (`setHeaderRoute` with ALB is
//! [`TrafficError::Unsupported`]) and the optional target-group verification against the AWS
//! API (upstream's `--aws-verify-target-group`, off by default): weights are not verified.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

use super::json::{get, get_str};
use super::nginx::ingress_key;
use super::{ObjectChange, ObjectKey, Objects, Router, TrafficError, TrafficIntent, patch_change};
use crate::api::{AlbTrafficRouting, Rollout, SetHeaderRoute};

/// Default `annotationPrefix` (the AWS controller's).
pub const DEFAULT_ANNOTATION_PREFIX: &str = "alb.ingress.kubernetes.io";
/// Annotation recording, per Rollout, the annotation keys it manages on the Ingress.
pub const MANAGED_ACTIONS_ANNOTATION: &str = "rollouts.argoproj.io/managed-alb-actions";

const FIELD: &str = "spec.strategy.canary.trafficRouting.alb";

/// Upstream's `ALBAction` (field order and names as Go marshals them).
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Action {
    #[serde(rename = "Type")]
    kind: String,
    #[serde(rename = "ForwardConfig")]
    forward: ForwardConfig,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct ForwardConfig {
    #[serde(rename = "TargetGroups")]
    target_groups: Vec<TargetGroup>,
    #[serde(
        rename = "TargetGroupStickinessConfig",
        skip_serializing_if = "Option::is_none",
        default
    )]
    stickiness: Option<Stickiness>,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct TargetGroup {
    #[serde(
        rename = "ServiceName",
        skip_serializing_if = "String::is_empty",
        default
    )]
    service_name: String,
    #[serde(
        rename = "ServicePort",
        skip_serializing_if = "String::is_empty",
        default
    )]
    service_port: String,
    #[serde(rename = "Weight", skip_serializing_if = "Option::is_none", default)]
    weight: Option<i64>,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Stickiness {
    #[serde(rename = "Enabled")]
    enabled: bool,
    #[serde(rename = "DurationSeconds")]
    duration_seconds: i64,
}

/// The ALB router of one Rollout.
#[derive(Clone, Debug)]
pub struct Alb<'a> {
    spec: &'a AlbTrafficRouting,
    namespace: String,
    rollout: String,
    ingresses: Vec<String>,
    port: i32,
}

impl<'a> Alb<'a> {
    /// Checks the `trafficRouting.alb` spec.
    pub fn new(spec: &'a AlbTrafficRouting, ro: &Rollout) -> Result<Self, TrafficError> {
        let ingresses: Vec<String> = match (&spec.ingresses, &spec.ingress) {
            (Some(list), _) if !list.is_empty() => list.clone(),
            (_, Some(one)) if !one.is_empty() => vec![one.clone()],
            _ => {
                return Err(TrafficError::invalid(
                    format!("{FIELD}.ingress"),
                    "ingress or ingresses is required",
                ));
            }
        };
        if let Some(i) = ingresses.iter().position(String::is_empty) {
            return Err(TrafficError::invalid(
                format!("{FIELD}.ingresses[{i}]"),
                "is empty",
            ));
        }
        let port = spec.service_port.unwrap_or(0);
        if port <= 0 {
            return Err(TrafficError::invalid(
                format!("{FIELD}.servicePort"),
                "is required",
            ));
        }
        if let Some(s) = &spec.stickiness_config
            && s.enabled == Some(true)
            && !(1..=604_800).contains(&s.duration_seconds.unwrap_or(0))
        {
            return Err(TrafficError::invalid(
                format!("{FIELD}.stickinessConfig.durationSeconds"),
                "TargetGroupStickinessConfig's duration must be between 1 and 604800 seconds (7 days)!",
            ));
        }
        Ok(Alb {
            spec,
            namespace: ro
                .metadata
                .namespace
                .clone()
                .unwrap_or_else(|| "default".into()),
            rollout: ro.metadata.name.clone().unwrap_or_default(),
            ingresses,
            port,
        })
    }

    fn prefix(&self) -> &str {
        self.spec
            .annotation_prefix
            .as_deref()
            .filter(|p| !p.is_empty())
            .unwrap_or(DEFAULT_ANNOTATION_PREFIX)
    }

    /// The Service the action is attached to: `rootService`, else the stable Service.
    fn action_service<'s>(&'s self, intent: &TrafficIntent<'s>) -> &'s str {
        self.spec
            .root_service
            .as_deref()
            .filter(|s| !s.is_empty())
            .unwrap_or(intent.stable_service)
    }

    fn action_key(&self, intent: &TrafficIntent<'_>) -> String {
        format!("{}/actions.{}", self.prefix(), self.action_service(intent))
    }

    /// Upstream's `getForwardActionString`: canary at `weight`, each weighted experiment
    /// template at its weight, stable at the rest.
    fn action(&self, intent: &TrafficIntent<'_>) -> String {
        let port = self.port.to_string();
        let group = |service: &str, weight: i32| TargetGroup {
            service_name: service.to_string(),
            service_port: port.clone(),
            weight: Some(i64::from(weight)),
        };
        let stickiness = self
            .spec
            .stickiness_config
            .as_ref()
            .filter(|s| s.enabled == Some(true))
            .map(|s| Stickiness {
                enabled: true,
                duration_seconds: s.duration_seconds.unwrap_or(0),
            });
        // Weighted experiment templates (upstream's `additionalDestinations`) between the
        // canary and the stable, which gets what is left.
        let mut target_groups = vec![group(intent.canary_service, intent.weight)];
        let mut stable = intent.max_weight - intent.weight;
        for d in &intent.additional {
            let weight = d.weight.unwrap_or(0);
            target_groups.push(group(d.service_name.as_deref().unwrap_or_default(), weight));
            stable -= weight;
        }
        target_groups.push(group(intent.stable_service, stable));
        let action = Action {
            kind: "forward".into(),
            forward: ForwardConfig {
                target_groups,
                stickiness,
            },
        };
        serde_json::to_string(&action).unwrap_or_default()
    }

    /// The managed-actions annotation with `key` recorded for this Rollout.
    fn managed(&self, current: Option<&str>, key: &str) -> Result<String, TrafficError> {
        let mut m: BTreeMap<String, Vec<String>> = match current.filter(|s| !s.is_empty()) {
            None => BTreeMap::new(),
            Some(s) => serde_json::from_str(s).map_err(|e| {
                TrafficError::invalid(
                    format!("annotation {MANAGED_ACTIONS_ANNOTATION}"),
                    format!("not a JSON map of lists: {e}"),
                )
            })?,
        };
        let keys = m.entry(self.rollout.clone()).or_default();
        if !keys.iter().any(|k| k == key) {
            keys.push(key.to_string());
        }
        Ok(serde_json::to_string(&m).unwrap_or_default())
    }
}

/// Whether an Ingress has a rule whose backend is the Service `name`.
fn has_rule_with_service(ingress: &Value, name: &str) -> bool {
    get(ingress, &["spec", "rules"])
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| get(r, &["http", "paths"]).and_then(Value::as_array))
        .flatten()
        .any(|p| get_str(p, &["backend", "service", "name"]) == Some(name))
}

impl Router for Alb<'_> {
    fn name(&self) -> &'static str {
        "alb"
    }

    fn referenced_objects(&self) -> Vec<ObjectKey> {
        self.ingresses
            .iter()
            .map(|i| ingress_key(&self.namespace, i))
            .collect()
    }

    /// Writes the forward action (and records its key) on each Ingress.
    fn set_weight(
        &self,
        intent: &TrafficIntent<'_>,
        objects: &Objects,
    ) -> Result<Vec<ObjectChange>, TrafficError> {
        super::require_services(intent, "ALB")?;
        let key = self.action_key(intent);
        let value = self.action(intent);
        let mut out = Vec::new();
        for name in &self.ingresses {
            let ing_key = ingress_key(&self.namespace, name);
            let cur = objects
                .get(&ing_key)
                .ok_or_else(|| TrafficError::MissingObject {
                    key: ing_key.clone(),
                })?;
            let service = self.action_service(intent);
            if !has_rule_with_service(cur, service) {
                return Err(TrafficError::invalid(
                    ing_key.to_string(),
                    format!("ingress does not have service `{service}` in rules"),
                ));
            }
            let managed = self.managed(
                get_str(
                    cur,
                    &["metadata", "annotations", MANAGED_ACTIONS_ANNOTATION],
                ),
                &key,
            )?;
            let mut new = cur.clone();
            let meta = new.as_object_mut().map(|m| {
                m.entry("metadata")
                    .or_insert_with(|| Value::Object(Default::default()))
            });
            if let Some(Value::Object(meta)) = meta {
                let ann = meta
                    .entry("annotations")
                    .or_insert_with(|| Value::Object(Default::default()));
                if !ann.is_object() {
                    *ann = Value::Object(Default::default());
                }
                if let Some(ann) = ann.as_object_mut() {
                    ann.insert(key.clone(), Value::String(value.clone()));
                    ann.insert(MANAGED_ACTIONS_ANNOTATION.into(), Value::String(managed));
                }
            }
            out.extend(patch_change(&ing_key, cur, &new));
        }
        Ok(out)
    }

    /// Header routes with ALB (annotation-based paths and conditions) are not built.
    fn set_header_route(
        &self,
        _intent: &TrafficIntent<'_>,
        route: &SetHeaderRoute,
        _objects: &Objects,
    ) -> Result<Vec<ObjectChange>, TrafficError> {
        if super::route_wanted(route) {
            return Err(TrafficError::Unsupported {
                router: "alb setHeaderRoute".into(),
            });
        }
        Ok(Vec::new())
    }

    /// The canary target group's weight in the action annotation, if every Ingress agrees.
    fn current_weight(&self, intent: &TrafficIntent<'_>, objects: &Objects) -> Option<i32> {
        let key = self.action_key(intent);
        let mut weight = None;
        for name in &self.ingresses {
            let obj = objects.get(&ingress_key(&self.namespace, name))?;
            let action: Action =
                serde_json::from_str(get_str(obj, &["metadata", "annotations", &key])?).ok()?;
            let w = action
                .forward
                .target_groups
                .iter()
                .find(|g| g.service_name == intent.canary_service)?
                .weight?;
            let w = i32::try_from(w).ok()?;
            if weight.is_some_and(|p| p != w) {
                return None;
            }
            weight = Some(w);
        }
        weight
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rollout(alb: Value) -> Rollout {
        serde_json::from_value(json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
            "metadata": {"name": "ro", "namespace": "ns", "uid": "u1"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "a"}},
                     "template": {"metadata": {"labels": {"app": "a"}},
                                  "spec": {"containers": [{"name": "a", "image": "a:1"}]}},
                     "strategy": {"canary": {"canaryService": "canary", "stableService": "stable",
                                             "trafficRouting": {"alb": alb},
                                             "steps": [{"setWeight": 10}]}}}
        }))
        .unwrap()
    }

    fn router(ro: &Rollout) -> Alb<'_> {
        let tr = ro.canary().unwrap().traffic_routing.as_ref().unwrap();
        Alb::new(tr.alb.as_ref().unwrap(), ro).unwrap()
    }

    fn ingress(service: &str, annotations: Value) -> Value {
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
               "metadata": {"name": "ing", "namespace": "ns", "resourceVersion": "9",
                            "annotations": annotations},
               "spec": {"rules": [{"http": {"paths": [{"path": "/*", "pathType": "ImplementationSpecific",
                   "backend": {"service": {"name": service, "port": {"name": "use-annotation"}}}}]}}]}})
    }

    fn objects(obj: Value) -> Objects {
        [(ingress_key("ns", "ing"), obj)].into_iter().collect()
    }

    #[test]
    fn the_forward_action_is_upstreams_annotation() {
        let ro = rollout(json!({"ingress": "ing", "servicePort": 80}));
        let alb = router(&ro);
        let mut intent = TrafficIntent::for_rollout(&ro);
        intent.weight = 10;
        let changes = alb
            .set_weight(&intent, &objects(ingress("stable", json!({"x": "y"}))))
            .unwrap();
        let [ObjectChange::Patch { patch, .. }] = changes.as_slice() else {
            panic!("one patch: {changes:?}");
        };
        assert_eq!(
            patch["metadata"]["annotations"]["alb.ingress.kubernetes.io/actions.stable"],
            r#"{"Type":"forward","ForwardConfig":{"TargetGroups":[{"ServiceName":"canary","ServicePort":"80","Weight":10},{"ServiceName":"stable","ServicePort":"80","Weight":90}]}}"#
        );
        assert_eq!(
            patch["metadata"]["annotations"][MANAGED_ACTIONS_ANNOTATION],
            r#"{"ro":["alb.ingress.kubernetes.io/actions.stable"]}"#
        );
        assert_eq!(patch["metadata"]["resourceVersion"], "9");
        // Written already: no change, and the weight reads back.
        let mut written = ingress("stable", json!({}));
        super::super::json::apply_merge_patch(&mut written, patch);
        assert!(
            alb.set_weight(&intent, &objects(written.clone()))
                .unwrap()
                .is_empty()
        );
        assert_eq!(alb.current_weight(&intent, &objects(written)), Some(10));
    }

    #[test]
    fn experiment_templates_get_their_own_target_group() {
        let ro = rollout(json!({"ingress": "ing", "servicePort": 80}));
        let alb = router(&ro);
        let mut intent = TrafficIntent::for_rollout(&ro);
        intent.weight = 10;
        intent.additional = vec![crate::api::WeightDestination {
            weight: Some(20),
            service_name: Some("exp-svc".into()),
            pod_template_hash: Some("abc".into()),
        }];
        let changes = alb
            .set_weight(&intent, &objects(ingress("stable", json!({}))))
            .unwrap();
        let [ObjectChange::Patch { patch, .. }] = changes.as_slice() else {
            panic!("one patch: {changes:?}");
        };
        assert_eq!(
            patch["metadata"]["annotations"]["alb.ingress.kubernetes.io/actions.stable"],
            r#"{"Type":"forward","ForwardConfig":{"TargetGroups":[{"ServiceName":"canary","ServicePort":"80","Weight":10},{"ServiceName":"exp-svc","ServicePort":"80","Weight":20},{"ServiceName":"stable","ServicePort":"80","Weight":70}]}}"#
        );
    }

    #[test]
    fn root_service_stickiness_prefix_and_errors() {
        let ro = rollout(
            json!({"ingress": "ing", "servicePort": 443, "rootService": "root",
                                "annotationPrefix": "custom.io",
                                "stickinessConfig": {"enabled": true, "durationSeconds": 300}}),
        );
        let alb = router(&ro);
        let mut intent = TrafficIntent::for_rollout(&ro);
        intent.weight = 100;
        let changes = alb
            .set_weight(&intent, &objects(ingress("root", json!({}))))
            .unwrap();
        let [ObjectChange::Patch { patch, .. }] = changes.as_slice() else {
            panic!("one patch: {changes:?}");
        };
        assert_eq!(
            patch["metadata"]["annotations"]["custom.io/actions.root"],
            r#"{"Type":"forward","ForwardConfig":{"TargetGroups":[{"ServiceName":"canary","ServicePort":"443","Weight":100},{"ServiceName":"stable","ServicePort":"443","Weight":0}],"TargetGroupStickinessConfig":{"Enabled":true,"DurationSeconds":300}}}"#
        );
        let err = alb
            .set_weight(&intent, &objects(ingress("other", json!({}))))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Ingress `ns/ing`: ingress does not have service `root` in rules"
        );
        assert!(matches!(
            alb.set_weight(&intent, &Objects::new()).unwrap_err(),
            TrafficError::MissingObject { .. }
        ));
        let no_port = rollout(json!({"ingress": "ing"}));
        let spec = no_port
            .canary()
            .unwrap()
            .traffic_routing
            .as_ref()
            .unwrap()
            .alb
            .as_ref()
            .unwrap();
        assert_eq!(
            Alb::new(spec, &no_port).unwrap_err().to_string(),
            "spec.strategy.canary.trafficRouting.alb.servicePort: is required"
        );
    }
}
