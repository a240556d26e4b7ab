//! Traffic routers, as pure code: given a Rollout's `trafficRouting` spec, what the planner wants
//! ([`TrafficIntent`]) and the router objects as they are (JSON, keyed by [`ObjectKey`]),
//! [`plan_traffic`] returns the writes ([`ObjectChange`]) that bring the objects to the intent.
//!
//! Like the planner, nothing here talks to the API server, reads a clock or the
//! environment, or spawns a task (the crate's dependencies cannot; `tests/purity.rs` checks
//! its dependency tree). The controller keeps the objects that
//! [`referenced_objects`] names in reflector stores, calls [`plan_traffic`] and carries out the
//! changes in order.
//!
//! Routers are a closed set ([`AnyRouter`]): Istio (VirtualService / DestinationRule), NGINX
//! (canary Ingress), the Gateway API (HTTPRoute, configured under the upstream plugin key
//! `argoproj-labs/gatewayAPI`), AWS ALB (the Ingress action annotation) and Traefik
//! (TraefikService weights). Every other router is reported as
//! [`TrafficError::Unsupported`]. Each implements [`Router`], upstream's verbs as pure
//! functions; [`plan_traffic`] threads the objects through them in upstream's order (managed
//! routes, hashes, weights) and folds the results into at most one change per object, which is
//! the minimal JSON merge patch from the object as observed (with `metadata.resourceVersion`
//! for optimistic concurrency). When the objects already match the intent there are no changes.

// `TrafficError` names the object it is about (an `ObjectKey`); errors are rare and small next
// to the objects they describe, so they are not boxed.
#![allow(clippy::result_large_err)]

pub mod alb;
pub mod gatewayapi;
pub mod istio;
pub mod json;
pub mod nginx;
pub mod traefik;

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;

use crate::api::{Rollout, RolloutTrafficRouting, SetHeaderRoute, SetMirrorRoute};

pub use gatewayapi::GatewayApi;
pub use istio::Istio;
pub use nginx::Nginx;

/// Identifies a router object the planner needs to see (the controller watches these).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey {
    /// `group/version` (or `version` for the core group).
    pub api_version: String,
    /// Kind, e.g. `VirtualService`.
    pub kind: String,
    /// The resource's plural, e.g. `virtualservices` (for dynamic API clients).
    pub plural: String,
    pub namespace: String,
    pub name: String,
}

impl ObjectKey {
    /// The API resource (group, version, kind, plural) of the object, for dynamic clients.
    pub fn api_resource(&self) -> kube_core::dynamic::ApiResource {
        let (group, version) = match self.api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", self.api_version.as_str()),
        };
        kube_core::dynamic::ApiResource::from_gvk_with_plural(
            &kube_core::GroupVersionKind::gvk(group, version, &self.kind),
            &self.plural,
        )
    }

    pub fn new(api_version: &str, kind: &str, plural: &str, namespace: &str, name: &str) -> Self {
        ObjectKey {
            api_version: api_version.to_string(),
            kind: kind.to_string(),
            plural: plural.to_string(),
            namespace: namespace.to_string(),
            name: name.to_string(),
        }
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} `{}/{}`", self.kind, self.namespace, self.name)
    }
}

/// A write to a router object, carried out by the controller.
#[derive(Clone, Debug, PartialEq)]
pub enum ObjectChange {
    /// Create this object (complete, with `apiVersion`, `kind` and `metadata`).
    Create {
        key: ObjectKey,
        object: Value,
    },
    /// JSON merge patch with `metadata.resourceVersion` included (optimistic concurrency).
    Patch {
        key: ObjectKey,
        patch: Value,
    },
    Delete {
        key: ObjectKey,
    },
}

impl ObjectChange {
    /// The object this change writes.
    pub fn key(&self) -> &ObjectKey {
        match self {
            ObjectChange::Create { key, .. }
            | ObjectChange::Patch { key, .. }
            | ObjectChange::Delete { key } => key,
        }
    }
}

/// What the planner wants of the traffic layer this reconcile.
#[derive(Clone, Debug)]
pub struct TrafficIntent<'a> {
    /// name/namespace/uid for ownership, `spec.strategy.canary.trafficRouting`.
    pub rollout: &'a Rollout,
    pub canary_service: &'a str,
    pub stable_service: &'a str,
    /// Pod-template hash of the canary (new) ReplicaSet; `None` removes the subset's hash label.
    pub canary_hash: Option<&'a str>,
    /// Pod-template hash of the stable ReplicaSet; `None` removes the subset's hash label.
    pub stable_hash: Option<&'a str>,
    /// Desired canary weight, `0..=max_weight`.
    pub weight: i32,
    /// `trafficRouting.maxTrafficWeight` or 100.
    pub max_weight: i32,
    /// The header routes that should exist now, e.g. [`routes_at_step`]: each named route is
    /// (re)written; one with an empty `match` is removed. Managed routes not listed here are
    /// left as they are.
    pub header_routes: Vec<&'a SetHeaderRoute>,
    /// The mirror routes that should exist now (same rules as `header_routes`).
    pub mirror_routes: Vec<&'a SetMirrorRoute>,
    /// End of update / abort: remove every route named in `managedRoutes` (then header and
    /// mirror routes are ignored). With `weight == 0` NGINX also deletes its canary Ingress.
    pub remove_managed_routes: bool,
    /// Upstream's `additionalDestinations`: the weighted templates of a running `experiment`
    /// step, each a Service with its weight (out of `max_weight`), taken from the stable's
    /// share. Only ALB and the Istio router with a host-level split route them (the planner
    /// refuses the others, InvalidSpec).
    pub additional: Vec<crate::api::WeightDestination>,
    /// Services of weighted experiment templates routed before (`status.canary.weights`)
    /// and not any more: their destinations are removed (a subset-level split cannot tell
    /// them from other hosts otherwise).
    pub retired: Vec<String>,
}

impl<'a> TrafficIntent<'a> {
    /// An intent at weight 0 with the Rollout's own services (the ping-pong pair when
    /// `pingPong` is set, after `status.canary.stablePingPong`), its `maxTrafficWeight`, no
    /// hashes and no routes. The planner fills in the rest.
    pub fn for_rollout(rollout: &'a Rollout) -> Self {
        let (canary_service, stable_service) = services(rollout);
        TrafficIntent {
            rollout,
            canary_service,
            stable_service,
            canary_hash: None,
            stable_hash: None,
            weight: 0,
            max_weight: max_weight(rollout),
            header_routes: Vec::new(),
            mirror_routes: Vec::new(),
            remove_managed_routes: false,
            additional: Vec::new(),
            retired: Vec::new(),
        }
    }

    fn rollout_name(&self) -> &'a str {
        self.rollout.metadata.name.as_deref().unwrap_or_default()
    }
}

/// Why the routers cannot (safely) reach the intent. Nothing is written when one is returned.
/// These become an `InvalidSpec` condition / a Warning event; `Display` is one line naming the
/// object or field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TrafficError {
    #[error("{key} not found")]
    MissingObject { key: ObjectKey },
    #[error("route `{route}` not found in {object}")]
    MissingRoute { object: ObjectKey, route: String },
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("traffic router `{router}` is not supported by this controller")]
    Unsupported { router: String },
}

impl TrafficError {
    pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        TrafficError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The event reason upstream uses for this error (`VirtualServiceNotFound`,
    /// `DestinationRuleNotFound`, `IngressNotFound`, ... or `TrafficRoutingError`).
    pub fn reason(&self) -> String {
        match self {
            TrafficError::MissingObject { key } => format!("{}NotFound", key.kind),
            _ => "TrafficRoutingError".to_string(),
        }
    }
}

/// Whether a `setHeaderRoute` asks for a route (an empty `match` removes it).
pub fn route_wanted(route: &SetHeaderRoute) -> bool {
    route.match_.as_ref().is_some_and(|m| !m.is_empty())
}

/// Both Services must be named for a router that splits between them (`router` names it in
/// the error).
pub(crate) fn require_services(
    intent: &TrafficIntent<'_>,
    router: &str,
) -> Result<(), TrafficError> {
    for (svc, what) in [
        (intent.stable_service, "stableService"),
        (intent.canary_service, "canaryService"),
    ] {
        if svc.is_empty() {
            return Err(TrafficError::invalid(
                format!("spec.strategy.canary.{what}"),
                format!("is required for {router} traffic routing"),
            ));
        }
    }
    Ok(())
}

/// The current router objects, by key; a missing key means the object does not exist.
pub type Objects = BTreeMap<ObjectKey, Value>;

/// Upstream's traffic-router verbs, as pure functions of the intent and the objects. Each
/// returns the changes it wants (at most one per object); [`plan_traffic`] applies them in
/// turn to a working copy and folds them together.
pub trait Router {
    /// The router's name, as in `trafficRouting` (`istio`, `nginx`, `argoproj-labs/gatewayAPI`).
    fn name(&self) -> &'static str;
    /// The objects this router reads or writes.
    fn referenced_objects(&self) -> Vec<ObjectKey>;
    /// Points subsets (or the like) at the canary and stable pod-template hashes. By default
    /// a router has no subsets: no changes.
    fn update_hash(
        &self,
        _intent: &TrafficIntent<'_>,
        _objects: &Objects,
    ) -> Result<Vec<ObjectChange>, TrafficError> {
        Ok(Vec::new())
    }
    /// Sets the canary weight (and the stable one to the rest).
    fn set_weight(
        &self,
        intent: &TrafficIntent<'_>,
        objects: &Objects,
    ) -> Result<Vec<ObjectChange>, TrafficError>;
    /// Writes (or, with an empty match, removes) one header route. By default a router has no
    /// header routes (upstream's NGINX): no changes.
    fn set_header_route(
        &self,
        _intent: &TrafficIntent<'_>,
        _route: &SetHeaderRoute,
        _objects: &Objects,
    ) -> Result<Vec<ObjectChange>, TrafficError> {
        Ok(Vec::new())
    }
    /// Writes (or, with an empty match, removes) one mirror route. By default a router has no
    /// mirror routes: no changes.
    fn set_mirror_route(
        &self,
        _intent: &TrafficIntent<'_>,
        _route: &SetMirrorRoute,
        _objects: &Objects,
    ) -> Result<Vec<ObjectChange>, TrafficError> {
        Ok(Vec::new())
    }
    /// Removes every route named in `managedRoutes`; by default a router adds none.
    fn remove_managed_routes(
        &self,
        _intent: &TrafficIntent<'_>,
        _objects: &Objects,
    ) -> Result<Vec<ObjectChange>, TrafficError> {
        Ok(Vec::new())
    }
    /// Whether the weight has taken effect, `None` when the router cannot tell (upstream:
    /// only ALB can; none of ours).
    fn verify_weight(&self, _intent: &TrafficIntent<'_>, _objects: &Objects) -> Option<bool> {
        None
    }
    /// The canary weight the objects carry now (on the `max_weight` scale), `None` if unknown.
    fn current_weight(&self, intent: &TrafficIntent<'_>, objects: &Objects) -> Option<i32>;
}

/// The routers this controller implements.
#[derive(Clone, Debug)]
pub enum AnyRouter<'a> {
    Alb(alb::Alb<'a>),
    Istio(Istio<'a>),
    Nginx(Nginx<'a>),
    GatewayApi(GatewayApi),
    Traefik(traefik::Traefik),
}

macro_rules! dispatch {
    ($self:ident, $r:ident => $e:expr) => {
        match $self {
            AnyRouter::Alb($r) => $e,
            AnyRouter::Istio($r) => $e,
            AnyRouter::Nginx($r) => $e,
            AnyRouter::GatewayApi($r) => $e,
            AnyRouter::Traefik($r) => $e,
        }
    };
}

impl Router for AnyRouter<'_> {
    fn name(&self) -> &'static str {
        dispatch!(self, r => r.name())
    }
    fn referenced_objects(&self) -> Vec<ObjectKey> {
        dispatch!(self, r => r.referenced_objects())
    }
    fn update_hash(
        &self,
        i: &TrafficIntent<'_>,
        o: &Objects,
    ) -> Result<Vec<ObjectChange>, TrafficError> {
        dispatch!(self, r => r.update_hash(i, o))
    }
    fn set_weight(
        &self,
        i: &TrafficIntent<'_>,
        o: &Objects,
    ) -> Result<Vec<ObjectChange>, TrafficError> {
        dispatch!(self, r => r.set_weight(i, o))
    }
    fn set_header_route(
        &self,
        i: &TrafficIntent<'_>,
        h: &SetHeaderRoute,
        o: &Objects,
    ) -> Result<Vec<ObjectChange>, TrafficError> {
        dispatch!(self, r => r.set_header_route(i, h, o))
    }
    fn set_mirror_route(
        &self,
        i: &TrafficIntent<'_>,
        m: &SetMirrorRoute,
        o: &Objects,
    ) -> Result<Vec<ObjectChange>, TrafficError> {
        dispatch!(self, r => r.set_mirror_route(i, m, o))
    }
    fn remove_managed_routes(
        &self,
        i: &TrafficIntent<'_>,
        o: &Objects,
    ) -> Result<Vec<ObjectChange>, TrafficError> {
        dispatch!(self, r => r.remove_managed_routes(i, o))
    }
    fn verify_weight(&self, i: &TrafficIntent<'_>, o: &Objects) -> Option<bool> {
        dispatch!(self, r => r.verify_weight(i, o))
    }
    fn current_weight(&self, i: &TrafficIntent<'_>, o: &Objects) -> Option<i32> {
        dispatch!(self, r => r.current_weight(i, o))
    }
}

fn traffic_routing(ro: &Rollout) -> Option<&RolloutTrafficRouting> {
    ro.canary()?.traffic_routing.as_ref()
}

/// The routers a Rollout's `trafficRouting` configures (empty without traffic routing).
/// Routers this controller does not implement are [`TrafficError::Unsupported`].
pub fn routers(ro: &Rollout) -> Result<Vec<AnyRouter<'_>>, TrafficError> {
    let Some(tr) = traffic_routing(ro) else {
        return Ok(Vec::new());
    };
    let unsupported = [
        ("smi", tr.smi.is_some()),
        ("ambassador", tr.ambassador.is_some()),
        ("appMesh", tr.app_mesh.is_some()),
        ("apisix", tr.apisix.is_some()),
    ];
    if let Some((name, _)) = unsupported.iter().find(|(_, set)| *set) {
        return Err(TrafficError::Unsupported {
            router: (*name).to_string(),
        });
    }
    let namespace = ro.metadata.namespace.as_deref().unwrap_or("default");
    let mut out = Vec::new();
    if let Some(istio) = &tr.istio {
        out.push(AnyRouter::Istio(Istio::new(istio, tr, namespace)?));
    }
    if let Some(nginx) = &tr.nginx {
        out.push(AnyRouter::Nginx(Nginx::new(nginx, tr, ro)?));
    }
    if let Some(alb) = &tr.alb {
        out.push(AnyRouter::Alb(alb::Alb::new(alb, ro)?));
    }
    if let Some(t) = &tr.traefik {
        out.push(AnyRouter::Traefik(traefik::Traefik::new(t, ro)?));
    }
    for (name, config) in tr.plugins.iter().flatten() {
        if name == gatewayapi::PLUGIN_NAME {
            out.push(AnyRouter::GatewayApi(GatewayApi::from_config(
                config, namespace,
            )?));
        } else {
            return Err(TrafficError::Unsupported {
                router: format!("plugin {name}"),
            });
        }
    }
    Ok(out)
}

/// The objects to observe for a Rollout (so the controller can keep them in reflector stores).
/// Parts of the spec that are invalid or unsupported are skipped ([`plan_traffic`] reports them).
pub fn referenced_objects(ro: &Rollout) -> Vec<ObjectKey> {
    let Some(tr) = traffic_routing(ro) else {
        return Vec::new();
    };
    let namespace = ro.metadata.namespace.as_deref().unwrap_or("default");
    let mut out = Vec::new();
    if let Some(istio) = &tr.istio
        && let Ok(r) = Istio::new(istio, tr, namespace)
    {
        out.extend(r.referenced_objects());
    }
    if let Some(nginx) = &tr.nginx
        && let Ok(r) = Nginx::new(nginx, tr, ro)
    {
        out.extend(r.referenced_objects());
    }
    if let Some(alb) = &tr.alb
        && let Ok(r) = alb::Alb::new(alb, ro)
    {
        out.extend(r.referenced_objects());
    }
    if let Some(t) = &tr.traefik
        && let Ok(r) = traefik::Traefik::new(t, ro)
    {
        out.extend(r.referenced_objects());
    }
    if let Some(config) = tr
        .plugins
        .as_ref()
        .and_then(|p| p.get(gatewayapi::PLUGIN_NAME))
        && let Ok(r) = GatewayApi::from_config(config, namespace)
    {
        out.extend(r.referenced_objects());
    }
    let mut seen = std::collections::BTreeSet::new();
    out.retain(|k| seen.insert(k.clone()));
    out
}

/// Everything the routers want changed, given the current objects (keyed by [`ObjectKey`]; a
/// missing key means the object does not exist). At most one change per object, in the order
/// they should be carried out: hash updates (a DestinationRule's subsets) before any route
/// change (a VirtualService), otherwise in the order of their last write. No changes when the objects already match the intent; none either when any
/// router reports an error.
pub fn plan_traffic(
    intent: &TrafficIntent<'_>,
    objects: &Objects,
) -> Result<Vec<ObjectChange>, TrafficError> {
    if intent.max_weight <= 0 {
        return Err(TrafficError::invalid(
            "spec.strategy.canary.trafficRouting.maxTrafficWeight",
            format!("must be positive, is {}", intent.max_weight),
        ));
    }
    if !(0..=intent.max_weight).contains(&intent.weight) {
        return Err(TrafficError::invalid(
            "canary weight",
            format!("{} is outside 0..={}", intent.weight, intent.max_weight),
        ));
    }
    let routers = routers(intent.rollout)?;
    let mut ws = Workspace::new(objects);
    for r in &routers {
        if intent.remove_managed_routes {
            ws.apply(r.remove_managed_routes(intent, &ws.current)?);
        } else {
            for h in &intent.header_routes {
                ws.apply(r.set_header_route(intent, h, &ws.current)?);
            }
            for m in &intent.mirror_routes {
                ws.apply(r.set_mirror_route(intent, m, &ws.current)?);
            }
        }
        let hashes = r.update_hash(intent, &ws.current)?;
        ws.first.extend(hashes.iter().map(|c| c.key().clone()));
        ws.apply(hashes);
        ws.apply(r.set_weight(intent, &ws.current)?);
    }
    Ok(ws.finish())
}

/// The canary weight the router objects currently carry (on the `maxTrafficWeight` scale), for
/// `status.canary.weights` and `verified`; `None` if not determinable or if the objects
/// disagree.
pub fn current_canary_weight(ro: &Rollout, objects: &Objects) -> Option<i32> {
    let routers = routers(ro).ok()?;
    let intent = TrafficIntent::for_rollout(ro);
    let mut weight = None;
    for r in &routers {
        let w = r.current_weight(&intent, objects)?;
        if weight.is_some_and(|prev| prev != w) {
            return None;
        }
        weight = Some(w);
    }
    weight
}

/// The header and mirror routes in force at canary step `index`: for each route name, the last
/// `setHeaderRoute` / `setMirrorRoute` among steps `0..=index` (a route set by an earlier step
/// stays until a later step of the same name changes or removes it). Feed them to
/// [`TrafficIntent::header_routes`] / [`TrafficIntent::mirror_routes`].
pub fn routes_at_step(ro: &Rollout, index: usize) -> (Vec<&SetHeaderRoute>, Vec<&SetMirrorRoute>) {
    let steps = ro.canary_steps();
    let upto = &steps[..steps.len().min(index.saturating_add(1))];
    let mut headers: Vec<&SetHeaderRoute> = Vec::new();
    let mut mirrors: Vec<&SetMirrorRoute> = Vec::new();
    for step in upto {
        if let Some(h) = &step.set_header_route {
            headers.retain(|x| x.name != h.name);
            headers.push(h);
        }
        if let Some(m) = &step.set_mirror_route {
            mirrors.retain(|x| x.name != m.name);
            mirrors.push(m);
        }
    }
    (headers, mirrors)
}

/// The canary and stable Service names of a Rollout (ping-pong aware).
fn services(ro: &Rollout) -> (&str, &str) {
    let Some(c) = ro.canary() else {
        return ("", "");
    };
    if let Some(pp) = &c.ping_pong {
        let ping = pp.ping_service.as_deref().unwrap_or_default();
        let pong = pp.pong_service.as_deref().unwrap_or_default();
        let stable_is_pong = ro
            .status
            .as_ref()
            .and_then(|s| s.canary.as_ref())
            .and_then(|c| c.stable_ping_pong.as_deref())
            == Some(crate::api::ping_pong_type::PONG);
        return if stable_is_pong {
            (ping, pong)
        } else {
            (pong, ping)
        };
    }
    (
        c.canary_service.as_deref().unwrap_or_default(),
        c.stable_service.as_deref().unwrap_or_default(),
    )
}

/// `trafficRouting.maxTrafficWeight` or 100.
pub fn max_weight(ro: &Rollout) -> i32 {
    traffic_routing(ro)
        .and_then(|t| t.max_traffic_weight)
        .unwrap_or(100)
}

/// The names in `trafficRouting.managedRoutes`.
pub(crate) fn managed_route_names(tr: &RolloutTrafficRouting) -> Vec<String> {
    tr.managed_routes
        .iter()
        .flatten()
        .filter_map(|r| r.name.clone())
        .collect()
}

/// The change that turns `old` into `new`: a merge patch carrying `old`'s resourceVersion, or
/// nothing when they are equal.
pub(crate) fn patch_change(key: &ObjectKey, old: &Value, new: &Value) -> Vec<ObjectChange> {
    let Some(mut patch) = json::diff_merge_patch(old, new) else {
        return Vec::new();
    };
    if let Some(rv) = json::resource_version(old)
        && let Some(meta) = json::object_at(&mut patch, &["metadata"])
    {
        meta.insert("resourceVersion".into(), Value::String(rv.to_string()));
    }
    vec![ObjectChange::Patch {
        key: key.clone(),
        patch,
    }]
}

/// A working copy of the objects that the verbs' changes are applied to in turn.
struct Workspace<'o> {
    original: &'o Objects,
    current: Objects,
    /// Keys written, in the order of their last write.
    order: Vec<ObjectKey>,
    /// Keys written by [`Router::update_hash`]: they go first, so that no route sends traffic
    /// to a subset before it selects the right pods.
    first: std::collections::BTreeSet<ObjectKey>,
}

impl<'o> Workspace<'o> {
    fn new(original: &'o Objects) -> Self {
        Workspace {
            original,
            current: original.clone(),
            order: Vec::new(),
            first: std::collections::BTreeSet::new(),
        }
    }

    fn apply(&mut self, changes: Vec<ObjectChange>) {
        for c in changes {
            let key = c.key().clone();
            match c {
                ObjectChange::Create { object, .. } => {
                    self.current.insert(key.clone(), object);
                }
                ObjectChange::Patch { patch, .. } => {
                    if let Some(obj) = self.current.get_mut(&key) {
                        json::apply_merge_patch(obj, &patch);
                    }
                }
                ObjectChange::Delete { .. } => {
                    self.current.remove(&key);
                }
            }
            self.order.retain(|k| k != &key);
            self.order.push(key);
        }
    }

    /// One change per written object: from the object as observed to its final state.
    fn finish(mut self) -> Vec<ObjectChange> {
        let first = std::mem::take(&mut self.first);
        self.order.sort_by_key(|k| !first.contains(k));
        let mut out = Vec::new();
        for key in self.order {
            match (self.original.get(&key), self.current.get(&key)) {
                (None, None) => {}
                (None, Some(obj)) => out.push(ObjectChange::Create {
                    key,
                    object: obj.clone(),
                }),
                (Some(_), None) => out.push(ObjectChange::Delete { key }),
                (Some(old), Some(new)) => out.extend(patch_change(&key, old, new)),
            }
        }
        out
    }
}
