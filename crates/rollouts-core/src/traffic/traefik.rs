//! Traefik (`trafficRouting.traefik`): the weights of the canary and stable Services in the
//! `spec.weighted.services` of a TraefikService (`traefik.containo.us/v1alpha1`, upstream's
//! default group). Both Services must be listed there; the controller sets only their
//! `weight`s. Like upstream, Traefik has no subsets, header or mirror routes here.

use serde_json::Value;

use super::json::{get, get_str};
use super::{ObjectChange, ObjectKey, Objects, Router, TrafficError, TrafficIntent, patch_change};
use crate::api::{Rollout, TraefikTrafficRouting};

/// `apiVersion` of TraefikServices.
pub const API_VERSION: &str = "traefik.containo.us/v1alpha1";

/// Key of a TraefikService.
pub fn traefik_service_key(namespace: &str, name: &str) -> ObjectKey {
    ObjectKey::new(
        API_VERSION,
        "TraefikService",
        "traefikservices",
        namespace,
        name,
    )
}

/// The Traefik router of one Rollout.
#[derive(Clone, Debug)]
pub struct Traefik {
    key: ObjectKey,
}

impl Traefik {
    /// Checks the `trafficRouting.traefik` spec.
    pub fn new(spec: &TraefikTrafficRouting, ro: &Rollout) -> Result<Self, TrafficError> {
        let name = spec
            .weighted_traefik_service_name
            .as_deref()
            .filter(|n| !n.is_empty())
            .ok_or_else(|| {
                TrafficError::invalid(
                    "spec.strategy.canary.trafficRouting.traefik.weightedTraefikServiceName",
                    "is required",
                )
            })?;
        let namespace = ro.metadata.namespace.as_deref().unwrap_or("default");
        Ok(Traefik {
            key: traefik_service_key(namespace, name),
        })
    }

    fn services<'o>(&self, obj: &'o Value) -> Result<&'o Vec<Value>, TrafficError> {
        get(obj, &["spec", "weighted", "services"])
            .and_then(Value::as_array)
            .ok_or_else(|| {
                TrafficError::invalid(
                    self.key.to_string(),
                    "spec.weighted.services was not found in traefik service manifest",
                )
            })
    }
}

impl Router for Traefik {
    fn name(&self) -> &'static str {
        "traefik"
    }

    fn referenced_objects(&self) -> Vec<ObjectKey> {
        vec![self.key.clone()]
    }

    /// The canary Service's weight to the canary weight, the stable one's to the rest.
    fn set_weight(
        &self,
        intent: &TrafficIntent<'_>,
        objects: &Objects,
    ) -> Result<Vec<ObjectChange>, TrafficError> {
        super::require_services(intent, "Traefik")?;
        let cur = objects
            .get(&self.key)
            .ok_or_else(|| TrafficError::MissingObject {
                key: self.key.clone(),
            })?;
        let mut services = self.services(cur)?.clone();
        for (service, weight, what) in [
            (intent.canary_service, intent.weight, "canary"),
            (
                intent.stable_service,
                intent.max_weight - intent.weight,
                "stable",
            ),
        ] {
            let entry = services
                .iter_mut()
                .find(|s| get_str(s, &["name"]) == Some(service))
                .ok_or_else(|| {
                    TrafficError::invalid(
                        self.key.to_string(),
                        format!("traefik {what} service `{service}` was not found"),
                    )
                })?;
            entry["weight"] = Value::from(weight);
        }
        let mut new = cur.clone();
        new["spec"]["weighted"]["services"] = Value::Array(services);
        Ok(patch_change(&self.key, cur, &new))
    }

    fn current_weight(&self, intent: &TrafficIntent<'_>, objects: &Objects) -> Option<i32> {
        let obj = objects.get(&self.key)?;
        let services = self.services(obj).ok()?;
        let canary = services
            .iter()
            .find(|s| get_str(s, &["name"]) == Some(intent.canary_service))?;
        i32::try_from(canary.get("weight")?.as_i64()?).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rollout() -> Rollout {
        serde_json::from_value(json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
            "metadata": {"name": "ro", "namespace": "ns"},
            "spec": {"strategy": {"canary": {"canaryService": "canary", "stableService": "stable",
                "trafficRouting": {"traefik": {"weightedTraefikServiceName": "ts"}},
                "steps": [{"setWeight": 20}]}}}
        }))
        .unwrap()
    }

    fn traefik_service(services: Value) -> Objects {
        let obj = json!({"apiVersion": API_VERSION, "kind": "TraefikService",
                         "metadata": {"name": "ts", "namespace": "ns", "resourceVersion": "3"},
                         "spec": {"weighted": {"services": services}}});
        [(traefik_service_key("ns", "ts"), obj)]
            .into_iter()
            .collect()
    }

    #[test]
    fn weights_of_the_two_services_only() {
        let ro = rollout();
        let tr = ro.canary().unwrap().traffic_routing.as_ref().unwrap();
        let router = Traefik::new(tr.traefik.as_ref().unwrap(), &ro).unwrap();
        let mut intent = TrafficIntent::for_rollout(&ro);
        intent.weight = 20;
        let objects = traefik_service(json!([
            {"name": "stable", "port": 80, "weight": 100},
            {"name": "canary", "port": 80, "weight": 0},
            {"name": "other", "port": 80, "weight": 7}]));
        let changes = router.set_weight(&intent, &objects).unwrap();
        let [ObjectChange::Patch { patch, .. }] = changes.as_slice() else {
            panic!("one patch: {changes:?}");
        };
        assert_eq!(
            patch["spec"]["weighted"]["services"],
            json!([{"name": "stable", "port": 80, "weight": 80},
                   {"name": "canary", "port": 80, "weight": 20},
                   {"name": "other", "port": 80, "weight": 7}])
        );
        assert_eq!(patch["metadata"]["resourceVersion"], "3");
        assert_eq!(router.current_weight(&intent, &objects), Some(0));
        let missing = traefik_service(json!([{"name": "stable", "weight": 100}]));
        assert_eq!(
            router
                .set_weight(&intent, &missing)
                .unwrap_err()
                .to_string(),
            "TraefikService `ns/ts`: traefik canary service `canary` was not found"
        );
        assert!(matches!(
            router.set_weight(&intent, &Objects::new()).unwrap_err(),
            TrafficError::MissingObject { .. }
        ));
    }
}
