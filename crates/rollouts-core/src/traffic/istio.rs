//! Istio: weights of the canary/stable destinations in a VirtualService's HTTP, TLS and TCP
//! routes (host-level split: two Services; subset-level split: two DestinationRule subsets whose
//! `rollouts-pod-template-hash` labels the controller sets), plus header and mirror routes named
//! in `managedRoutes`, kept at the top of `spec.http` and removed at the end.
//!
//! VirtualServices and DestinationRules are read and written as `networking.istio.io/v1alpha3`
//! (what upstream uses; Istio serves v1alpha3, v1beta1 and v1 from one schema, so objects
//! applied as v1beta1 or v1 are the same objects).
//!
//! Weighted experiment templates (upstream's `additionalDestinations`) get a destination per
//! template Service at their weight, taken from the stable's share, and with a subset-level
//! split also a DestinationRule subset named after the Service selecting its pod-template hash,
//! as upstream adds them; both go when the step ends.
//!
//! Differences from upstream, all on the safe side: a DestinationRule's other subsets are left
//! alone unless they select a pod-template hash (a finished experiment's; upstream drops every
//! subset that is neither canary, stable nor a running experiment's); with a subset-level split
//! a destination of another host is left alone unless it is a finished experiment's Service
//! (as `status.canary.weights.additional` recorded it; the planner records one before it
//! routes it); `additionalSubsetNames` destinations
//! keep their weight (the stable one gets the rest); with `routes` omitted the one non-managed
//! HTTP route is used even if it has a name (upstream then silently changes nothing); a route listed both in `routes` and in
//! `managedRoutes` is refused (removing managed routes would delete it); a VirtualService with
//! no route to weight is an error.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use super::json::{as_int, get, get_str, object_at};
use super::{
    ObjectChange, ObjectKey, Objects, Router, TrafficError, TrafficIntent, managed_route_names,
    patch_change,
};
use crate::api::consts::{DEFAULT_ROLLOUT_UNIQUE_LABEL_KEY, MANAGED_BY_ROLLOUTS_KEY};
use crate::api::{
    IstioDestinationRule, IstioTrafficRouting, IstioVirtualService, RolloutTrafficRouting,
    SetHeaderRoute, SetMirrorRoute, StringMatch, TcpRoute, TlsRoute,
};

/// `apiVersion` of the Istio objects the controller reads and writes.
pub const API_VERSION: &str = "networking.istio.io/v1alpha3";

/// Key of a VirtualService.
pub fn virtual_service_key(namespace: &str, name: &str) -> ObjectKey {
    ObjectKey::new(
        API_VERSION,
        "VirtualService",
        "virtualservices",
        namespace,
        name,
    )
}

/// Key of a DestinationRule.
pub fn destination_rule_key(namespace: &str, name: &str) -> ObjectKey {
    ObjectKey::new(
        API_VERSION,
        "DestinationRule",
        "destinationrules",
        namespace,
        name,
    )
}

/// Splits a `virtualService.name` of the form `name` or `name.namespace`.
pub fn split_vs_name<'n>(name: &'n str, default_ns: &'n str) -> (&'n str, &'n str) {
    match name.find('.') {
        Some(i) if i > 0 => (&name[..i], &name[i + 1..]),
        _ => (name, default_ns),
    }
}

/// The Istio router of one Rollout.
#[derive(Clone, Debug)]
pub struct Istio<'a> {
    virtual_services: Vec<(ObjectKey, &'a IstioVirtualService)>,
    destination_rule: Option<(ObjectKey, &'a IstioDestinationRule)>,
    managed: Vec<String>,
}

/// Which routes of a VirtualService carry the canary/stable weights.
#[derive(Debug, Default)]
struct Selection {
    http: Vec<usize>,
    tls: Vec<usize>,
    tcp: Vec<usize>,
}

/// How a route destination takes part in the split.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Role {
    Canary,
    Stable,
    /// An `additionalSubsetNames` subset: weight kept.
    Additional,
    /// Not ours (another host of a subset-level split, or no host): left as it is.
    Foreign,
    /// The Service of a weighted experiment template: its weight (percent).
    Experiment(i64),
    /// Neither canary nor stable: removed (upstream removes e.g. finished experiment services).
    Remove,
}

/// What a route's destinations are matched against.
struct Split<'s> {
    canary_svc: &'s str,
    stable_svc: &'s str,
    canary_subset: Option<&'s str>,
    stable_subset: Option<&'s str>,
    additional_subsets: &'s [String],
    /// Weighted experiment templates: (Service, weight in percent).
    experiments: Vec<(&'s str, i64)>,
    /// Services of experiment templates no longer routed.
    retired: &'s [String],
    /// Short name (before the first dot) of the DestinationRule's `spec.host`.
    dr_host: Option<&'s str>,
}

fn short_host(host: &str) -> &str {
    match host.find('.') {
        Some(0) => "",
        Some(i) => &host[..i],
        None => host,
    }
}

impl Split<'_> {
    fn role(&self, dest: &Value) -> Role {
        let host = short_host(get_str(dest, &["destination", "host"]).unwrap_or_default());
        if host.is_empty() {
            return Role::Foreign;
        }
        let subset = get_str(dest, &["destination", "subset"]).filter(|s| !s.is_empty());
        if let Some(subset) = subset {
            if Some(subset) == self.canary_subset {
                return Role::Canary;
            }
            if Some(subset) == self.stable_subset {
                return Role::Stable;
            }
            if self.additional_subsets.iter().any(|s| s == subset) {
                return Role::Additional;
            }
        }
        if !self.canary_svc.is_empty() && host == self.canary_svc {
            return Role::Canary;
        }
        if !self.stable_svc.is_empty() && host == self.stable_svc {
            return Role::Stable;
        }
        if let Some((_, w)) = self.experiments.iter().find(|(s, _)| *s == host) {
            return Role::Experiment(*w);
        }
        if subset.is_none() && self.retired.iter().any(|r| r == host) {
            return Role::Remove;
        }
        match (self.canary_subset, self.dr_host) {
            (Some(_), Some(dr)) if short_host(dr) != host => Role::Foreign,
            _ => Role::Remove,
        }
    }
}

/// The canary weight as a percentage (Istio's weights add up to 100).
fn percent(weight: i32, max: i32) -> i64 {
    let (w, m) = (i64::from(weight), i64::from(max.max(1)));
    (w * 100 + m / 2) / m
}

fn list<'v>(
    obj: &'v Value,
    key: &ObjectKey,
    field: &str,
) -> Result<Option<&'v Vec<Value>>, TrafficError> {
    match get(obj, &["spec", field]) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(a)) => Ok(Some(a)),
        Some(_) => Err(TrafficError::invalid(
            format!("{key} spec.{field}"),
            "must be a list",
        )),
    }
}

fn list_mut<'v>(obj: &'v mut Value, field: &str) -> Option<&'v mut Vec<Value>> {
    obj.get_mut("spec")?.get_mut(field)?.as_array_mut()
}

fn route_name(route: &Value) -> Option<&str> {
    route.get("name").and_then(Value::as_str)
}

/// `port`s and `sniHosts` of a TLS/TCP route's `match` list: (single port or `None` when they
/// differ, SNI hosts).
fn match_ports_hosts(route: &Value) -> (Option<i64>, BTreeSet<String>) {
    let mut ports = BTreeSet::new();
    let mut hosts = BTreeSet::new();
    for m in route
        .get("match")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        ports.insert(m.get("port").and_then(as_int).unwrap_or(0));
        for h in m
            .get("sniHosts")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(h) = h.as_str() {
                hosts.insert(h.to_string());
            }
        }
    }
    let port = match ports.len() {
        0 => Some(0),
        1 => ports.into_iter().next(),
        _ => None,
    };
    (port, hosts)
}

fn describe_tls(t: &TlsRoute) -> String {
    format!(
        "tls port={} sniHosts={:?}",
        t.port.unwrap_or(0),
        t.sni_hosts.as_deref().unwrap_or_default()
    )
}

fn describe_tcp(t: &TcpRoute) -> String {
    format!("tcp port={}", t.port.unwrap_or(0))
}

/// The indexes of the TLS or TCP routes (`field`) the Rollout's `refs` (`ref_field`) name: every
/// route each reference matches; without references, the only route (more than one is ambiguous).
fn select_by_port<T>(
    key: &ObjectKey,
    routes: Option<&Vec<Value>>,
    refs: &[T],
    field: &str,
    ref_field: &str,
    matches: impl Fn(&Value, &T) -> bool,
    describe: impl Fn(&T) -> String,
) -> Result<Vec<usize>, TrafficError> {
    let mut out = Vec::new();
    match routes {
        Some(routes) if !refs.is_empty() => {
            for t in refs {
                if !routes.iter().any(|r| matches(r, t)) {
                    return Err(TrafficError::MissingRoute {
                        object: key.clone(),
                        route: describe(t),
                    });
                }
                for (i, r) in routes.iter().enumerate() {
                    if matches(r, t) && !out.contains(&i) {
                        out.push(i);
                    }
                }
            }
        }
        Some(routes) => {
            if routes.len() > 1 {
                return Err(TrafficError::invalid(
                    format!("{key} spec.{field}"),
                    format!(
                        "must have exactly one route when trafficRouting.istio.virtualService.{ref_field} is omitted"
                    ),
                ));
            }
            out.extend(0..routes.len());
        }
        None => {
            if let Some(t) = refs.first() {
                return Err(TrafficError::MissingRoute {
                    object: key.clone(),
                    route: describe(t),
                });
            }
        }
    }
    Ok(out)
}

fn string_match(m: &StringMatch) -> Value {
    let mut out = Map::new();
    for (k, v) in [
        ("exact", &m.exact),
        ("prefix", &m.prefix),
        ("regex", &m.regex),
    ] {
        if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
            out.insert(k.into(), Value::String(v.into()));
        }
    }
    Value::Object(out)
}

/// Puts the managed routes on top, in `managedRoutes` order, then the others as they were.
fn order_routes(http: Vec<Value>, managed: &[String]) -> Vec<Value> {
    if managed.is_empty() {
        return http;
    }
    let is_managed = |r: &Value| route_name(r).is_some_and(|n| managed.iter().any(|m| m == n));
    let mut out = Vec::with_capacity(http.len());
    for m in managed {
        out.extend(http.iter().filter(|r| route_name(r) == Some(m)).cloned());
    }
    out.extend(http.into_iter().filter(|r| !is_managed(r)));
    out
}

impl<'a> Istio<'a> {
    /// Checks the `trafficRouting.istio` spec; `namespace` is the Rollout's.
    pub fn new(
        spec: &'a IstioTrafficRouting,
        tr: &'a RolloutTrafficRouting,
        namespace: &str,
    ) -> Result<Self, TrafficError> {
        const FIELD: &str = "spec.strategy.canary.trafficRouting.istio";
        let refs: Vec<&IstioVirtualService> = match (&spec.virtual_service, &spec.virtual_services)
        {
            (Some(_), Some(_)) => {
                return Err(TrafficError::invalid(
                    FIELD,
                    "set either virtualService or virtualServices, not both",
                ));
            }
            (Some(vs), None) => vec![vs],
            (None, Some(list)) if !list.is_empty() => list.iter().collect(),
            _ => {
                return Err(TrafficError::invalid(
                    FIELD,
                    "virtualService or virtualServices is required",
                ));
            }
        };
        let managed = managed_route_names(tr);
        let mut virtual_services = Vec::new();
        for vs in refs {
            let full = vs.name.as_deref().unwrap_or_default();
            let (name, ns) = split_vs_name(full, namespace);
            if name.is_empty() || ns.is_empty() {
                return Err(TrafficError::invalid(
                    format!("{FIELD}.virtualService.name"),
                    format!("`{full}` is not a VirtualService name"),
                ));
            }
            if let Some(r) = vs.routes.iter().flatten().find(|r| managed.contains(r)) {
                return Err(TrafficError::invalid(
                    format!("{FIELD}.virtualService.routes"),
                    format!("route `{r}` is also listed in managedRoutes"),
                ));
            }
            virtual_services.push((virtual_service_key(ns, name), vs));
        }
        let destination_rule = match &spec.destination_rule {
            None => None,
            Some(dr) => {
                let f = |s: &Option<String>, what: &str| {
                    if s.as_deref().unwrap_or_default().is_empty() {
                        Err(TrafficError::invalid(
                            format!("{FIELD}.destinationRule.{what}"),
                            "is required",
                        ))
                    } else {
                        Ok(())
                    }
                };
                f(&dr.name, "name")?;
                f(&dr.canary_subset_name, "canarySubsetName")?;
                f(&dr.stable_subset_name, "stableSubsetName")?;
                let name = dr.name.as_deref().unwrap_or_default();
                Some((destination_rule_key(namespace, name), dr))
            }
        };
        Ok(Istio {
            virtual_services,
            destination_rule,
            managed,
        })
    }

    /// The DestinationRule's `spec.host`, when one is configured (it must exist).
    fn dr_host<'o>(&self, objects: &'o Objects) -> Result<Option<&'o str>, TrafficError> {
        let Some((key, _)) = &self.destination_rule else {
            return Ok(None);
        };
        let obj = objects
            .get(key)
            .ok_or_else(|| TrafficError::MissingObject { key: key.clone() })?;
        Ok(get_str(obj, &["spec", "host"]))
    }

    fn split<'s>(&'s self, intent: &'s TrafficIntent<'_>, dr_host: Option<&'s str>) -> Split<'s> {
        let dr = self.destination_rule.as_ref().map(|(_, dr)| *dr);
        Split {
            canary_svc: intent.canary_service,
            stable_svc: intent.stable_service,
            canary_subset: dr.and_then(|d| d.canary_subset_name.as_deref()),
            stable_subset: dr.and_then(|d| d.stable_subset_name.as_deref()),
            additional_subsets: dr
                .and_then(|d| d.additional_subset_names.as_deref())
                .unwrap_or_default(),
            experiments: intent
                .additional
                .iter()
                .filter_map(|d| {
                    let svc = d.service_name.as_deref().filter(|s| !s.is_empty())?;
                    Some((svc, percent(d.weight.unwrap_or(0), intent.max_weight)))
                })
                .collect(),
            retired: &intent.retired,
            dr_host,
        }
    }

    fn vs<'o>(&self, key: &ObjectKey, objects: &'o Objects) -> Result<&'o Value, TrafficError> {
        objects
            .get(key)
            .ok_or_else(|| TrafficError::MissingObject { key: key.clone() })
    }

    /// The routes whose weights the rollout sets.
    fn select(
        &self,
        key: &ObjectKey,
        spec: &IstioVirtualService,
        obj: &Value,
    ) -> Result<Selection, TrafficError> {
        let http = list(obj, key, "http")?;
        let tls = list(obj, key, "tls")?;
        let tcp = list(obj, key, "tcp")?;
        let mut sel = Selection::default();

        let tls_refs = spec.tls_routes.as_deref().unwrap_or_default();
        sel.tls = select_by_port(
            key,
            tls,
            tls_refs,
            "tls",
            "tlsRoutes",
            |r, t| {
                let want_hosts: BTreeSet<String> = t.sni_hosts.iter().flatten().cloned().collect();
                let (port, hosts) = match_ports_hosts(r);
                port == Some(t.port.unwrap_or(0)) && hosts == want_hosts
            },
            describe_tls,
        )?;
        let tcp_refs = spec.tcp_routes.as_deref().unwrap_or_default();
        sel.tcp = select_by_port(
            key,
            tcp,
            tcp_refs,
            "tcp",
            "tcpRoutes",
            |r, t| match_ports_hosts(r).0 == Some(t.port.unwrap_or(0)),
            describe_tcp,
        )?;

        let names = spec.routes.as_deref().unwrap_or_default();
        match http {
            Some(routes) if !names.is_empty() => {
                for n in names {
                    let i = routes
                        .iter()
                        .position(|r| route_name(r) == Some(n.as_str()))
                        .ok_or_else(|| TrafficError::MissingRoute {
                            object: key.clone(),
                            route: n.clone(),
                        })?;
                    if !sel.http.contains(&i) {
                        sel.http.push(i);
                    }
                }
            }
            Some(routes) => {
                let unmanaged: Vec<usize> = routes
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| {
                        !route_name(r).is_some_and(|n| self.managed.iter().any(|m| m == n))
                    })
                    .map(|(i, _)| i)
                    .collect();
                if unmanaged.len() > 1 {
                    return Err(TrafficError::invalid(
                        format!("{key} spec.http"),
                        "must have exactly one route when trafficRouting.istio.virtualService.routes is omitted",
                    ));
                }
                sel.http = unmanaged;
            }
            None => {
                // Upstream skips named HTTP routes of a VirtualService without `spec.http` when
                // it has TLS/TCP routes (its e2e "istio-host-only-tls-split" relies on it).
                if let Some(n) = names.first()
                    && sel.tls.is_empty()
                    && sel.tcp.is_empty()
                {
                    return Err(TrafficError::MissingRoute {
                        object: key.clone(),
                        route: n.clone(),
                    });
                }
            }
        }
        if sel.http.is_empty() && sel.tls.is_empty() && sel.tcp.is_empty() {
            return Err(TrafficError::invalid(
                key.to_string(),
                "has no HTTP, TLS or TCP route to set weights on",
            ));
        }
        Ok(sel)
    }

    /// Sets the weights of one route's destinations. With `validate`, the route must have both
    /// a canary and a stable destination.
    fn reweight(
        split: &Split<'_>,
        route: &mut Value,
        canary_pct: i64,
        label: &str,
        validate: bool,
    ) -> Result<(), TrafficError> {
        let Some(dests) = route.get_mut("route").and_then(Value::as_array_mut) else {
            return Err(TrafficError::invalid(
                format!("{label}.route"),
                "must be a list of destinations",
            ));
        };
        let roles: Vec<Role> = dests.iter().map(|d| split.role(d)).collect();
        if validate {
            if !roles.contains(&Role::Canary) {
                return Err(TrafficError::invalid(
                    label,
                    match split.canary_subset {
                        Some(s) => {
                            format!("canary DestinationRule subset `{s}` not found in route")
                        }
                        None => format!("canary Service `{}` not found in route", split.canary_svc),
                    },
                ));
            }
            if !roles.contains(&Role::Stable) {
                return Err(TrafficError::invalid(
                    label,
                    match split.stable_subset {
                        Some(s) => {
                            format!("stable DestinationRule subset `{s}` not found in route")
                        }
                        None => format!("stable Service `{}` not found in route", split.stable_svc),
                    },
                ));
            }
        }
        // The weights kept as they are must be weights Istio accepts (0 to 100); anything
        // else would be carried into the sums below.
        for (i, (d, _)) in dests
            .iter()
            .zip(&roles)
            .enumerate()
            .filter(|(_, (_, r))| **r == Role::Additional)
        {
            let w = d.get("weight").and_then(as_int).unwrap_or(0);
            if !(0..=100).contains(&w) {
                return Err(TrafficError::invalid(
                    format!("{label}.route[{i}].weight"),
                    format!("{w} is not a weight from 0 to 100"),
                ));
            }
        }
        let additional: i64 = dests
            .iter()
            .zip(&roles)
            .filter(|(_, r)| **r == Role::Additional)
            .map(|(d, _)| d.get("weight").and_then(as_int).unwrap_or(0))
            .fold(0i64, i64::saturating_add);
        let experiments: i64 = split.experiments.iter().map(|(_, w)| *w).sum();
        let stable_pct = 100i64
            .saturating_sub(canary_pct)
            .saturating_sub(additional)
            .saturating_sub(experiments);
        if stable_pct < 0 {
            return Err(TrafficError::invalid(
                label,
                format!(
                    "additional subsets take {additional}% and experiments {experiments}%, leaving no room for a canary weight of {canary_pct}%"
                ),
            ));
        }
        // Experiment Services without a destination yet get one at the end, in name order
        // (upstream's order).
        let mut missing: Vec<(&str, i64)> = split
            .experiments
            .iter()
            .filter(|(svc, _)| {
                !dests.iter().zip(&roles).any(|(d, r)| {
                    matches!(r, Role::Experiment(_))
                        && short_host(get_str(d, &["destination", "host"]).unwrap_or_default())
                            == *svc
                })
            })
            .copied()
            .collect();
        missing.sort();
        let mut out = Vec::with_capacity(dests.len() + missing.len());
        for (mut d, role) in std::mem::take(dests).into_iter().zip(roles) {
            let w = match role {
                Role::Canary => canary_pct,
                Role::Stable => stable_pct,
                Role::Experiment(w) => w,
                Role::Additional | Role::Foreign => {
                    out.push(d);
                    continue;
                }
                Role::Remove => continue,
            };
            match d.as_object_mut() {
                Some(m) => {
                    m.insert("weight".into(), json!(w));
                }
                None => {
                    return Err(TrafficError::invalid(label, "destination is not an object"));
                }
            }
            out.push(d);
        }
        for (svc, w) in missing {
            out.push(json!({"destination": {"host": svc}, "weight": w}));
        }
        let total: i64 = out
            .iter()
            .map(|d| d.get("weight").and_then(as_int).unwrap_or(0))
            .fold(0i64, i64::saturating_add);
        if total <= 0 {
            return Err(TrafficError::invalid(
                label,
                "refusing to write a route whose weights are all zero",
            ));
        }
        *dests = out;
        Ok(())
    }

    fn check_managed(&self, name: Option<&str>, what: &str) -> Result<String, TrafficError> {
        let name = name.unwrap_or_default();
        if name.is_empty() {
            return Err(TrafficError::invalid(
                format!("spec.strategy.canary.steps[].{what}.name"),
                "is required",
            ));
        }
        if !self.managed.iter().any(|m| m == name) {
            return Err(TrafficError::invalid(
                format!("spec.strategy.canary.steps[].{what}.name"),
                format!("route `{name}` is not listed in trafficRouting.managedRoutes"),
            ));
        }
        Ok(name.to_string())
    }

    /// Where header and mirror routes send traffic: (host, subset).
    fn canary_target<'s>(
        &'s self,
        intent: &'s TrafficIntent<'_>,
        dr_host: Option<&'s str>,
    ) -> Result<(&'s str, Option<&'s str>), TrafficError> {
        let subset = self
            .destination_rule
            .as_ref()
            .and_then(|(_, d)| d.canary_subset_name.as_deref());
        let host = match (subset, dr_host) {
            (Some(_), Some(h)) if !h.is_empty() => h,
            _ => intent.canary_service,
        };
        if host.is_empty() {
            return Err(TrafficError::invalid(
                "spec.strategy.canary.canaryService",
                "is required for header and mirror routes",
            ));
        }
        Ok((host, subset))
    }

    /// Replaces the managed route `name` of every VirtualService by what `build` returns for it
    /// (`None` removes it), keeping managed routes on top.
    fn put_route(
        &self,
        objects: &Objects,
        name: &str,
        build: impl Fn(&ObjectKey, &IstioVirtualService, &Value) -> Result<Option<Value>, TrafficError>,
    ) -> Result<Vec<ObjectChange>, TrafficError> {
        let mut out = Vec::new();
        for (key, spec) in &self.virtual_services {
            let obj = self.vs(key, objects)?;
            let route = build(key, spec, obj)?;
            let Some(http) = list(obj, key, "http")? else {
                if route.is_some() {
                    return Err(TrafficError::invalid(
                        format!("{key} spec.http"),
                        "not found: header and mirror routes need HTTP routes",
                    ));
                }
                continue;
            };
            let mut routes: Vec<Value> = http
                .iter()
                .filter(|r| route_name(r) != Some(name))
                .cloned()
                .collect();
            routes.extend(route);
            let routes = order_routes(routes, &self.managed);
            let mut new = obj.clone();
            if let Some(spec) = object_at(&mut new, &["spec"]) {
                spec.insert("http".into(), Value::Array(routes));
            }
            out.extend(patch_change(key, obj, &new));
        }
        Ok(out)
    }

    /// The first weighted HTTP route's destinations (for mirror routes and their port).
    fn weight_route<'o>(
        &self,
        key: &ObjectKey,
        spec: &IstioVirtualService,
        obj: &'o Value,
    ) -> Result<Option<&'o Vec<Value>>, TrafficError> {
        let sel = self.select(key, spec, obj)?;
        let http = list(obj, key, "http")?;
        Ok(sel
            .http
            .first()
            .and_then(|i| http?.get(*i))
            .and_then(|r| r.get("route"))
            .and_then(Value::as_array))
    }

    fn canary_port(&self, key: &ObjectKey, spec: &IstioVirtualService, obj: &Value) -> Option<i64> {
        let dests = self.weight_route(key, spec, obj).ok()??;
        get(dests.first()?, &["destination", "port", "number"]).and_then(as_int)
    }
}

impl Router for Istio<'_> {
    fn name(&self) -> &'static str {
        "istio"
    }

    fn referenced_objects(&self) -> Vec<ObjectKey> {
        let mut out: Vec<ObjectKey> = self
            .virtual_services
            .iter()
            .map(|(k, _)| k.clone())
            .collect();
        out.extend(self.destination_rule.iter().map(|(k, _)| k.clone()));
        out
    }

    /// Sets `rollouts-pod-template-hash` on the canary and stable subsets of the
    /// DestinationRule (removes it for a `None` hash) and marks the rule managed by the
    /// Rollout; adds or updates a subset per weighted experiment template (named after its
    /// Service) and removes a finished experiment's. Other subsets are left alone.
    fn update_hash(
        &self,
        intent: &TrafficIntent<'_>,
        objects: &Objects,
    ) -> Result<Vec<ObjectChange>, TrafficError> {
        let Some((key, dr)) = &self.destination_rule else {
            return Ok(Vec::new());
        };
        let obj = objects
            .get(key)
            .ok_or_else(|| TrafficError::MissingObject { key: key.clone() })?;
        let canary = dr.canary_subset_name.as_deref().unwrap_or_default();
        let stable = dr.stable_subset_name.as_deref().unwrap_or_default();
        let mut new = obj.clone();
        let subsets = list_mut(&mut new, "subsets").ok_or_else(|| {
            TrafficError::invalid(format!("{key} spec.subsets"), "must be a list of subsets")
        })?;
        // Weighted experiment templates: a subset per template Service, named after it,
        // selecting its pod-template hash (upstream's `UpdateHash`).
        let experiments: Vec<(&str, Option<&str>)> = intent
            .additional
            .iter()
            .filter_map(|d| {
                let svc = d.service_name.as_deref().filter(|s| !s.is_empty())?;
                Some((
                    svc,
                    d.pod_template_hash.as_deref().filter(|h| !h.is_empty()),
                ))
            })
            .collect();
        let additional = dr.additional_subset_names.as_deref().unwrap_or_default();
        // A subset that is none of canary, stable, a running experiment's or an
        // `additionalSubsetNames` one but selects a pod-template hash is a finished
        // experiment's: removed, as upstream removes every extraneous subset (other subsets
        // are left alone).
        subsets.retain(|s| {
            let name = s.get("name").and_then(Value::as_str).unwrap_or_default();
            let ours = name == canary
                || name == stable
                || experiments.iter().any(|(svc, _)| *svc == name)
                || additional.iter().any(|a| a == name);
            ours || get(s, &["labels", DEFAULT_ROLLOUT_UNIQUE_LABEL_KEY]).is_none()
        });
        let mut missing = experiments.clone();
        let mut seen = (false, false);
        for s in subsets.iter_mut() {
            let hash = match s.get("name").and_then(Value::as_str) {
                Some(n) if n == canary => {
                    seen.0 = true;
                    intent.canary_hash
                }
                Some(n) if n == stable => {
                    seen.1 = true;
                    intent.stable_hash
                }
                Some(n) if experiments.iter().any(|(svc, _)| *svc == n) => {
                    let found = experiments.iter().find(|(svc, _)| *svc == n);
                    missing.retain(|(svc, _)| *svc != n);
                    found.and_then(|(_, h)| *h)
                }
                _ => continue,
            };
            let labels = object_at(s, &["labels"]).ok_or_else(|| {
                TrafficError::invalid(format!("{key} spec.subsets[].labels"), "must be a map")
            })?;
            match hash {
                Some(h) => {
                    labels.insert(DEFAULT_ROLLOUT_UNIQUE_LABEL_KEY.into(), json!(h));
                }
                None => {
                    labels.remove(DEFAULT_ROLLOUT_UNIQUE_LABEL_KEY);
                }
            }
        }
        for (svc, hash) in missing {
            let mut labels = Map::new();
            if let Some(h) = hash {
                labels.insert(DEFAULT_ROLLOUT_UNIQUE_LABEL_KEY.into(), json!(h));
            }
            subsets.push(json!({"name": svc, "labels": labels}));
        }
        for (found, name) in [(seen.0, canary), (seen.1, stable)] {
            if !found {
                return Err(TrafficError::invalid(
                    format!("{key} spec.subsets"),
                    format!("no subset named `{name}`"),
                ));
            }
        }
        let annotations = object_at(&mut new, &["metadata", "annotations"]).ok_or_else(|| {
            TrafficError::invalid(format!("{key} metadata.annotations"), "must be a map")
        })?;
        annotations.insert(MANAGED_BY_ROLLOUTS_KEY.into(), json!(intent.rollout_name()));
        Ok(patch_change(key, obj, &new))
    }

    /// Sets the canary destinations of the weighted routes (named HTTP routes, or the single
    /// one; TLS/TCP routes by port and SNI hosts; managed mirror routes) to the canary weight
    /// and the stable ones to the rest. Other destinations are removed, as upstream does.
    fn set_weight(
        &self,
        intent: &TrafficIntent<'_>,
        objects: &Objects,
    ) -> Result<Vec<ObjectChange>, TrafficError> {
        let dr_host = self.dr_host(objects)?;
        let split = self.split(intent, dr_host);
        let pct = percent(intent.weight, intent.max_weight);
        let mut out = Vec::new();
        for (key, spec) in &self.virtual_services {
            let obj = self.vs(key, objects)?;
            let sel = self.select(key, spec, obj)?;
            let mirrors: Vec<usize> = list(obj, key, "http")?
                .into_iter()
                .flatten()
                .enumerate()
                .filter(|(i, r)| {
                    !sel.http.contains(i)
                        && r.get("mirror").is_some()
                        && route_name(r).is_some_and(|n| self.managed.iter().any(|m| m == n))
                })
                .map(|(i, _)| i)
                .collect();
            let mut new = obj.clone();
            for (field, idxs, validate) in [
                ("http", &sel.http, true),
                ("http", &mirrors, false),
                ("tls", &sel.tls, true),
                ("tcp", &sel.tcp, true),
            ] {
                for &i in idxs {
                    let label = format!("{key} spec.{field}[{i}]");
                    let route = list_mut(&mut new, field)
                        .and_then(|l| l.get_mut(i))
                        .ok_or_else(|| TrafficError::invalid(&label, "not found"))?;
                    Self::reweight(&split, route, pct, &label, validate)?;
                }
            }
            out.extend(patch_change(key, obj, &new));
        }
        Ok(out)
    }

    /// Writes the header route `name` (matches on the given headers, 100% to the canary) at the
    /// top of `spec.http`; an empty `match` removes it.
    fn set_header_route(
        &self,
        intent: &TrafficIntent<'_>,
        route: &SetHeaderRoute,
        objects: &Objects,
    ) -> Result<Vec<ObjectChange>, TrafficError> {
        let name = self.check_managed(route.name.as_deref(), "setHeaderRoute")?;
        let matches = route.match_.as_deref().unwrap_or_default();
        let mut match_values = Vec::new();
        for m in matches {
            let header = m.header_name.as_deref().unwrap_or_default();
            let value = m.header_value.as_ref().map(string_match);
            let Some(value) = value.filter(|v| v.as_object().is_some_and(|o| !o.is_empty())) else {
                return Err(TrafficError::invalid(
                    "spec.strategy.canary.steps[].setHeaderRoute.match[].headerValue",
                    format!("route `{name}`: set exact, prefix or regex"),
                ));
            };
            if header.is_empty() {
                return Err(TrafficError::invalid(
                    "spec.strategy.canary.steps[].setHeaderRoute.match[].headerName",
                    format!("route `{name}`: is required"),
                ));
            }
            match_values.push(json!({ "headers": { header: value } }));
        }
        let target = if matches.is_empty() {
            None
        } else {
            Some(self.canary_target(intent, self.dr_host(objects)?)?)
        };
        self.put_route(objects, &name, |key, spec, obj| {
            let Some((host, subset)) = target else {
                return Ok(None);
            };
            let mut dest = json!({ "host": host });
            if let Some(p) = self.canary_port(key, spec, obj) {
                dest["port"] = json!({ "number": p });
            }
            if let Some(s) = subset {
                dest["subset"] = json!(s);
            }
            Ok(Some(json!({
                "name": name,
                "match": match_values,
                "route": [{ "destination": dest, "weight": 100 }],
            })))
        })
    }

    /// Writes the mirror route `name` at the top of `spec.http`: requests matching `match`
    /// keep going to the weighted destinations and `percentage`% (default 100) are mirrored to
    /// the canary. An empty `match` removes it.
    fn set_mirror_route(
        &self,
        intent: &TrafficIntent<'_>,
        route: &SetMirrorRoute,
        objects: &Objects,
    ) -> Result<Vec<ObjectChange>, TrafficError> {
        let name = self.check_managed(route.name.as_deref(), "setMirrorRoute")?;
        let matches = route.match_.as_deref().unwrap_or_default();
        let percentage = route.percentage.unwrap_or(100);
        if !(0..=100).contains(&percentage) {
            return Err(TrafficError::invalid(
                "spec.strategy.canary.steps[].setMirrorRoute.percentage",
                format!("route `{name}`: {percentage} is outside 0..=100"),
            ));
        }
        let match_values: Vec<Value> = matches
            .iter()
            .map(|m| {
                let mut o = Map::new();
                if let Some(v) = &m.method {
                    o.insert("method".into(), string_match(v));
                }
                if let Some(v) = &m.path {
                    o.insert("uri".into(), string_match(v));
                }
                if let Some(h) = &m.headers {
                    let h: Map<String, Value> = h
                        .iter()
                        .map(|(k, v)| (k.clone(), string_match(v)))
                        .collect();
                    o.insert("headers".into(), Value::Object(h));
                }
                Value::Object(o)
            })
            .collect();
        let target = if matches.is_empty() {
            None
        } else {
            Some(self.canary_target(intent, self.dr_host(objects)?)?)
        };
        self.put_route(objects, &name, |key, spec, obj| {
            let Some((host, subset)) = target else {
                return Ok(None);
            };
            let dests = self.weight_route(key, spec, obj)?.ok_or_else(|| {
                TrafficError::invalid(
                    format!("{key} spec.http"),
                    "a mirror route needs a weighted HTTP route to copy",
                )
            })?;
            let mut mirror = json!({ "host": host });
            if let Some(s) = subset {
                mirror["subset"] = json!(s);
            }
            if let Some(p) = dests
                .first()
                .and_then(|d| get(d, &["destination", "port", "number"]))
                .and_then(as_int)
            {
                mirror["port"] = json!({ "number": p });
            }
            Ok(Some(json!({
                "name": name,
                "match": match_values,
                "route": dests,
                "mirror": mirror,
                "mirrorPercentage": { "value": percentage },
            })))
        })
    }

    /// Removes every HTTP route named in `managedRoutes` from every VirtualService.
    fn remove_managed_routes(
        &self,
        _intent: &TrafficIntent<'_>,
        objects: &Objects,
    ) -> Result<Vec<ObjectChange>, TrafficError> {
        let mut out = Vec::new();
        if self.managed.is_empty() {
            return Ok(out);
        }
        for (key, _) in &self.virtual_services {
            let obj = self.vs(key, objects)?;
            let Some(http) = list(obj, key, "http")? else {
                continue;
            };
            let kept: Vec<Value> = http
                .iter()
                .filter(|r| !route_name(r).is_some_and(|n| self.managed.iter().any(|m| m == n)))
                .cloned()
                .collect();
            let mut new = obj.clone();
            if let Some(spec) = object_at(&mut new, &["spec"]) {
                spec.insert("http".into(), Value::Array(kept));
            }
            out.extend(patch_change(key, obj, &new));
        }
        Ok(out)
    }

    /// The canary weight of the first weighted route of each VirtualService, if they agree.
    fn current_weight(&self, intent: &TrafficIntent<'_>, objects: &Objects) -> Option<i32> {
        let dr_host = self.dr_host(objects).ok()?;
        let split = self.split(intent, dr_host);
        let mut weight = None;
        for (key, spec) in &self.virtual_services {
            let obj = objects.get(key)?;
            let sel = self.select(key, spec, obj).ok()?;
            let (field, i) = [("http", &sel.http), ("tls", &sel.tls), ("tcp", &sel.tcp)]
                .into_iter()
                .find_map(|(f, idx)| idx.first().map(|i| (f, *i)))?;
            let dests = get(obj, &["spec", field])?
                .get(i)?
                .get("route")?
                .as_array()?;
            let pct: i64 = dests
                .iter()
                .filter(|d| split.role(d) == Role::Canary)
                .map(|d| d.get("weight").and_then(as_int).unwrap_or(0))
                .fold(0i64, i64::saturating_add);
            let max = i64::from(intent.max_weight.max(1));
            let w = i32::try_from(pct.saturating_mul(max).saturating_add(50) / 100).ok()?;
            if weight.is_some_and(|prev| prev != w) {
                return None;
            }
            weight = Some(w);
        }
        weight
    }
}
