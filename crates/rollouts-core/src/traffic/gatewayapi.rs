//! Gateway API, natively (upstream needs the `argoproj-labs/gatewayAPI` plugin): the weights
//! of the canary and stable `backendRefs` of named HTTPRoutes (`gateway.networking.k8s.io/v1`).
//!
//! Configured as for the upstream plugin, so existing manifests work:
//! `trafficRouting.plugins["argoproj-labs/gatewayAPI"]` with `httpRoute` (one name) and/or
//! `httpRoutes` (`[{name, useHeaderRoutes}]`) and an optional `namespace` (default: the
//! Rollout's). The plugin's GRPC/TCP/TLS routes and route selectors are
//! [`TrafficError::Unsupported`]; `configMap` and the in-progress label settings are ignored.
//! Header and mirror routes (which the plugin keeps track of in a ConfigMap) are not
//! implemented: asking for one is [`TrafficError::Unsupported`]; removing one is a no-op.
//!
//! Weights are on the `maxTrafficWeight` scale (Gateway API weights are relative, so no
//! rescaling is needed); like the plugin, every backendRef of any rule naming the canary or
//! stable Service is set.

use serde::Deserialize;
use serde_json::{Value, json};

use super::json::{as_int, get};
use super::{ObjectChange, ObjectKey, Objects, Router, TrafficError, TrafficIntent, patch_change};
use crate::api::{SetHeaderRoute, SetMirrorRoute};

/// Key of the upstream plugin's configuration in `trafficRouting.plugins`.
pub const PLUGIN_NAME: &str = "argoproj-labs/gatewayAPI";
/// `apiVersion` of HTTPRoutes.
pub const API_VERSION: &str = "gateway.networking.k8s.io/v1";

/// Key of an HTTPRoute.
pub fn http_route_key(namespace: &str, name: &str) -> ObjectKey {
    ObjectKey::new(API_VERSION, "HTTPRoute", "httproutes", namespace, name)
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Config {
    http_route: Option<String>,
    http_routes: Option<Vec<HttpRouteRef>>,
    namespace: Option<String>,
    grpc_route: Option<Value>,
    grpc_routes: Option<Value>,
    tcp_route: Option<Value>,
    tcp_routes: Option<Value>,
    tls_route: Option<Value>,
    tls_routes: Option<Value>,
    http_route_selector: Option<Value>,
    grpc_route_selector: Option<Value>,
    tcp_route_selector: Option<Value>,
    tls_route_selector: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct HttpRouteRef {
    name: String,
    #[serde(default)]
    use_header_routes: bool,
}

/// The Gateway API router of one Rollout.
#[derive(Clone, Debug)]
pub struct GatewayApi {
    /// (HTTPRoute, whether header routes go to it).
    routes: Vec<(ObjectKey, bool)>,
}

fn field() -> String {
    format!("spec.strategy.canary.trafficRouting.plugins[{PLUGIN_NAME}]")
}

fn is_set(v: &Option<Value>) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(_) => true,
    }
}

impl GatewayApi {
    /// Reads the plugin configuration; `namespace` is the Rollout's.
    pub fn from_config(config: &Value, namespace: &str) -> Result<Self, TrafficError> {
        let c: Config = serde_json::from_value(config.clone())
            .map_err(|e| TrafficError::invalid(field(), e.to_string()))?;
        for (name, v) in [
            ("grpcRoute", &c.grpc_route),
            ("grpcRoutes", &c.grpc_routes),
            ("tcpRoute", &c.tcp_route),
            ("tcpRoutes", &c.tcp_routes),
            ("tlsRoute", &c.tls_route),
            ("tlsRoutes", &c.tls_routes),
            ("httpRouteSelector", &c.http_route_selector),
            ("grpcRouteSelector", &c.grpc_route_selector),
            ("tcpRouteSelector", &c.tcp_route_selector),
            ("tlsRouteSelector", &c.tls_route_selector),
        ] {
            if is_set(v) {
                return Err(TrafficError::Unsupported {
                    router: format!("{PLUGIN_NAME} {name}"),
                });
            }
        }
        let ns = c
            .namespace
            .as_deref()
            .filter(|n| !n.is_empty())
            .unwrap_or(namespace);
        let mut routes = Vec::new();
        for r in c.http_routes.into_iter().flatten() {
            routes.push((r.name, r.use_header_routes));
        }
        // The plugin appends the single `httpRoute` with header routes on.
        if let Some(r) = c.http_route.filter(|r| !r.is_empty()) {
            routes.push((r, true));
        }
        if routes.is_empty() {
            return Err(TrafficError::invalid(
                field(),
                "httpRoute or httpRoutes is required",
            ));
        }
        if routes.iter().any(|(n, _)| n.is_empty()) {
            return Err(TrafficError::invalid(
                format!("{}.httpRoutes[].name", field()),
                "is required",
            ));
        }
        let mut out: Vec<(ObjectKey, bool)> = Vec::new();
        for (name, headers) in routes {
            let key = http_route_key(ns, &name);
            match out.iter_mut().find(|(k, _)| *k == key) {
                Some(existing) => existing.1 |= headers,
                None => out.push((key, headers)),
            }
        }
        Ok(GatewayApi { routes: out })
    }

    fn unsupported_route(&self, what: &str) -> TrafficError {
        TrafficError::Unsupported {
            router: format!("{PLUGIN_NAME} {what}"),
        }
    }
}

fn backend_refs(rule: &Value) -> impl Iterator<Item = &Value> {
    rule.get("backendRefs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

impl Router for GatewayApi {
    fn name(&self) -> &'static str {
        PLUGIN_NAME
    }

    fn referenced_objects(&self) -> Vec<ObjectKey> {
        self.routes.iter().map(|(k, _)| k.clone()).collect()
    }

    /// Sets `weight` of every backendRef naming the canary Service to the canary weight and of
    /// every one naming the stable Service to the rest.
    fn set_weight(
        &self,
        intent: &TrafficIntent<'_>,
        objects: &Objects,
    ) -> Result<Vec<ObjectChange>, TrafficError> {
        let canary = intent.canary_service;
        let stable = intent.stable_service;
        for (svc, what) in [(stable, "stableService"), (canary, "canaryService")] {
            if svc.is_empty() {
                return Err(TrafficError::invalid(
                    format!("spec.strategy.canary.{what}"),
                    "is required for Gateway API traffic routing",
                ));
            }
        }
        let canary_w = i64::from(intent.weight);
        let stable_w = i64::from(intent.max_weight) - canary_w;
        let mut out = Vec::new();
        for (key, _) in &self.routes {
            let obj = objects
                .get(key)
                .ok_or_else(|| TrafficError::MissingObject { key: key.clone() })?;
            let mut new = obj.clone();
            let Some(rules) = new
                .get_mut("spec")
                .and_then(|s| s.get_mut("rules"))
                .and_then(Value::as_array_mut)
            else {
                return Err(TrafficError::invalid(
                    format!("{key} spec.rules"),
                    "must be a list of rules",
                ));
            };
            let (mut found_canary, mut found_stable) = (false, false);
            for (i, rule) in rules.iter_mut().enumerate() {
                let mut touched = false;
                let refs = rule.get_mut("backendRefs").and_then(Value::as_array_mut);
                for r in refs.into_iter().flatten() {
                    let w = match r.get("name").and_then(Value::as_str) {
                        Some(n) if n == canary => {
                            found_canary = true;
                            canary_w
                        }
                        Some(n) if n == stable => {
                            found_stable = true;
                            stable_w
                        }
                        _ => continue,
                    };
                    let Some(m) = r.as_object_mut() else { continue };
                    m.insert("weight".into(), json!(w));
                    touched = true;
                }
                // Gateway API: an unset weight is 1; all zero means every request fails.
                let total: i64 = backend_refs(rule)
                    .map(|r| r.get("weight").and_then(as_int).unwrap_or(1))
                    .fold(0i64, i64::saturating_add);
                if touched && total <= 0 {
                    return Err(TrafficError::invalid(
                        format!("{key} spec.rules[{i}].backendRefs"),
                        "refusing to write a rule whose weights are all zero",
                    ));
                }
            }
            for (found, svc) in [(found_canary, canary), (found_stable, stable)] {
                if !found {
                    return Err(TrafficError::invalid(
                        format!("{key} spec.rules[].backendRefs"),
                        format!("no backendRef names Service `{svc}`"),
                    ));
                }
            }
            out.extend(patch_change(key, obj, &new));
        }
        Ok(out)
    }

    fn set_header_route(
        &self,
        _intent: &TrafficIntent<'_>,
        route: &SetHeaderRoute,
        _objects: &Objects,
    ) -> Result<Vec<ObjectChange>, TrafficError> {
        let wanted = super::route_wanted(route);
        if wanted && self.routes.iter().any(|(_, h)| *h) {
            return Err(self.unsupported_route("setHeaderRoute"));
        }
        Ok(Vec::new())
    }

    fn set_mirror_route(
        &self,
        _intent: &TrafficIntent<'_>,
        route: &SetMirrorRoute,
        _objects: &Objects,
    ) -> Result<Vec<ObjectChange>, TrafficError> {
        if route.match_.as_ref().is_some_and(|m| !m.is_empty()) {
            return Err(self.unsupported_route("setMirrorRoute"));
        }
        Ok(Vec::new())
    }

    /// The weight of the first canary backendRef of each HTTPRoute, if they agree.
    fn current_weight(&self, intent: &TrafficIntent<'_>, objects: &Objects) -> Option<i32> {
        let mut weight = None;
        for (key, _) in &self.routes {
            let rules = get(objects.get(key)?, &["spec", "rules"])?.as_array()?;
            let w = rules
                .iter()
                .flat_map(backend_refs)
                .find(|r| r.get("name").and_then(Value::as_str) == Some(intent.canary_service))?
                .get("weight")
                .and_then(as_int)
                .and_then(|w| i32::try_from(w).ok())?;
            if weight.is_some_and(|p| p != w) {
                return None;
            }
            weight = Some(w);
        }
        weight
    }
}
