//! Rollout validation: the InvalidSpec messages, with upstream's field paths and wording
//! (`pkg/apis/rollouts/validation`). Pure; the first error becomes the InvalidSpec condition.
//!
//! # What is ported
//!
//! [`validate_rollout`] follows upstream's `ValidateRollout` rule for rule and in the same
//! order: `ValidateRolloutSpec`, `ValidateRolloutStrategy`, `ValidateRolloutStrategyBlueGreen`,
//! `ValidateRolloutStrategyCanary` (with `requireCanaryStableServices`,
//! `invalidMaxSurgeMaxUnavailable`, `hasMultipleStepsType`, `hasALBInvalidValues`,
//! `hasMultipleMatchValues`, `ValidateStepRouteFoundInManagedRoute`) and
//! `ValidateRolloutStrategyAntiAffinity`.
//!
//! Field paths are upstream's, quirks included: the strategy functions receive `spec.strategy`
//! as their base path, so canary and blue-green fields print as `spec.strategy.steps[0]...`,
//! `spec.strategy.activeService`, and a missing strategy as `spec.strategy.strategy`.
//!
//! Values print as Kubernetes' `field.Error` prints them: Go `%q` for strings, plain numbers
//! and booleans, `null` for nil pointers, the gogo-protobuf `String()` of API structs
//! (`&StringMatch{Exact:a,Prefix:,Regex:,}`), `%#v` for maps and slices.
//!
//! # Pod template
//!
//! Upstream hands the template to Kubernetes' `ValidatePodTemplateSpecForReplicaSet`. A subset
//! of it is ported here: the selector must select the template's labels, label and annotation
//! keys/values, containers present with a valid unique name and an image, resource quantities
//! parseable (an unparseable quantity makes upstream fail to decode the Rollout at all) and
//! non-negative, restart policy, `activeDeadlineSeconds`, no ephemeral containers. The rest of
//! Kubernetes' pod validation (volumes, probes, ports, security contexts, requests <= limits,
//! ...) is left to the API server, which checks it when the ReplicaSet is created.
//!
//! # Differences from upstream
//!
//! - An int-or-string `maxSurge`/`maxUnavailable` that does not parse (e.g. `"abc"`, `"-1"`)
//!   is an Invalid value here, with Kubernetes' Deployment wording. Upstream silently reads it
//!   as 0 and fails later, while reconciling.
//! - The "canary strategy requires at least one step" rule of the newest upstream revision
//!   seen is not ported: a canary without steps is a documented rolling update, and upstream's
//!   own manifests rely on it (`examples/rollout-rolling-update.yaml`,
//!   `test/e2e/functional/canary-scaledowndelay.yaml`).
//! - Like upstream, nothing here checks experiment template names, non-empty analysis
//!   templates or that referenced objects exist: upstream does that when reconciling
//!   (`validation_references.go`) or leaves it to the CRD schema (e.g. `activeService`
//!   required, which the duplicate-services rule also catches when both are empty).
//! - Where Go would print a pointer address inside a `%#v` value (analysis arguments), the
//!   pointee is printed instead.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Write as _};

use k8s_openapi::api::core::v1::{PodTemplateSpec, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::api::{
    AnalysisRunArgument, AntiAffinity, BlueGreenStrategy, CanaryStep, CanaryStrategy,
    HeaderRoutingMatch, MangedRoutes, Rollout, RolloutPause, RolloutTrafficRouting, RouteMatch,
    SetHeaderRoute, SetMirrorRoute, StringMatch, defaults, parse_go_duration,
};
use crate::plan::replicas::IntOrPercent;

// ---------------------------------------------------------------------------------------------
// Messages (upstream's constants)
// ---------------------------------------------------------------------------------------------

/// Upstream's message constants, verbatim.
pub mod messages {
    /// `MissingFieldMessage` (a format: `%s` is the field).
    pub const MISSING_FIELD: &str = "Rollout has missing field '%s'";
    /// `InvalidSetWeightMessage` (a format: `%d` is the max traffic weight).
    pub const INVALID_SET_WEIGHT: &str = "SetWeight needs to be between 0 and %d";
    pub const INVALID_MAX_TRAFFIC_WEIGHT: &str = "MaxTrafficWeight needs to be greater than 0";
    pub const INVALID_EXPERIMENT_WEIGHT_WITHOUT_TRAFFIC_ROUTING: &str =
        "Experiment template weight cannot be set unless TrafficRouting is enabled";
    pub const INVALID_EXPERIMENT_WEIGHT_ROUTER: &str = "Experiment template weight is only available for TrafficRouting with SMI, ALB, Istio and Plugins at this time";
    pub const INVALID_SET_CANARY_SCALE_TRAFFIC_POLICY: &str =
        "SetCanaryScale requires TrafficRouting to be set";
    pub const INVALID_SET_HEADER_ROUTE_TRAFFIC_POLICY: &str =
        "SetHeaderRoute requires TrafficRouting, supports Istio and ALB and Apisix";
    pub const INVALID_SET_MIRROR_ROUTE_TRAFFIC_POLICY: &str =
        "SetMirrorRoute requires TrafficRouting, supports Istio and Plugins";
    pub const INVALID_STRING_MATCH_MULTIPLE_VALUE: &str =
        "StringMatch match value must have exactly one of the following: exact, regex, prefix";
    pub const INVALID_STRING_MATCH_MISSED_VALUE: &str = "StringMatch value missed, match value must have one of the following: exact, regex, prefix";
    pub const INVALID_SET_HEADER_ROUTE_ALB_VALUE: &str =
        "SetHeaderRoute match value invalid. ALB supports 'exact' value only";
    pub const INVALID_DURATION: &str = "Duration needs to be greater than 0";
    pub const INVALID_MAX_SURGE_MAX_UNAVAILABLE: &str =
        "MaxSurge and MaxUnavailable both can not be zero";
    pub const INVALID_STEP: &str = "Step must have one of the following set: experiment, setWeight, setCanaryScale, plugin or pause";
    pub const INVALID_STRATEGY: &str = "Multiple Strategies can not be listed";
    pub const DUPLICATED_SERVICES_BLUE_GREEN: &str = "This rollout uses the same service for the active and preview services, but two different services are required.";
    pub const DUPLICATED_SERVICES_CANARY: &str = "This rollout uses the same service for the stable and canary services, but two different services are required.";
    pub const INVALID_ANTI_AFFINITY_STRATEGY: &str =
        "AntiAffinity must have exactly one strategy listed";
    pub const INVALID_ANTI_AFFINITY_WEIGHT: &str = "AntiAffinity weight must be between 1-100";
    pub const SCALE_DOWN_LIMIT_LARGER_THAN_REVISION_LIMIT: &str = "This rollout's revision history limit can not be smaller than the rollout's scale down limit";
    pub const INVALID_TRAFFIC_ROUTING: &str =
        "Canary service and Stable service must to be set to use Traffic Routing";
    pub const INVALID_ANALYSIS_ARGS: &str =
        "Analyses arguments must refer to valid object metadata supported by downwardAPI";
    pub const INVALID_CANARY_SCALE_DOWN_DELAY: &str =
        "Canary scaleDownDelaySeconds can only be used with traffic routing";
    pub const INVALID_CANARY_DYNAMIC_STABLE_SCALE: &str =
        "Canary dynamicStableScale can only be used with traffic routing";
    pub const INVALID_CANARY_DYNAMIC_STABLE_SCALE_WITH_SCALE_DOWN_DELAY: &str =
        "Canary dynamicStableScale cannot be used with scaleDownDelaySeconds";
    pub const INVALID_CANARY_MAX_WEIGHT_ONLY_NGINX_AND_PLUGINS: &str =
        "Canary maxTrafficWeight in traffic routing only supported in Nginx and Plugins";
    pub const INVALID_PING_PONG_PROVIDED: &str =
        "Ping service and Pong service must to be set to use Ping-Pong feature";
    pub const DUPLICATED_PING_PONG_SERVICES: &str = "This rollout uses the same service for the ping and pong services, but two different services are required.";
    pub const MISSED_ALB_ROOT_SERVICE: &str = "Root service field is required for the configuration with ALB and ping-pong feature enabled";
    pub const PING_PONG_WITH_ROUTER_ONLY: &str =
        "Ping-pong feature works with the ALB, Istio, and plugin-based traffic routers only";
    pub const STEP_ROUTE_NOT_IN_MANAGED_ROUTES: &str = "Steps define a route that does not exist in spec.strategy.canary.trafficRouting.managedRoutes";
    /// Kubernetes' `IsNegativeErrorMsg`.
    pub const IS_NEGATIVE: &str = "must be greater than or equal to 0";
    /// Kubernetes' Deployment message for an unparseable int-or-percent.
    pub const INVALID_INT_OR_PERCENT: &str = "must be an integer or percentage (e.g '5%')";
}

use messages as m;

fn missing_field(field: &str) -> String {
    m::MISSING_FIELD.replace("%s", field)
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// Kinds of field errors, printed as Kubernetes' `field.Error` prints them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// `Required value`
    Required,
    /// `Invalid value: <value>`
    Invalid(String),
    /// `Forbidden`
    Forbidden,
    /// `Unsupported value: <value>`
    NotSupported(String),
    /// `Duplicate value: <value>`
    Duplicate(String),
    /// `Too long`
    TooLong,
    /// `Internal error`
    Internal,
}

/// One problem with a field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// The field path, e.g. `spec.strategy.steps[0].setWeight`.
    pub path: String,
    pub kind: ErrorKind,
    pub detail: String,
}

impl FieldError {
    pub fn required(path: impl Into<String>, detail: impl Into<String>) -> Self {
        FieldError {
            path: path.into(),
            kind: ErrorKind::Required,
            detail: detail.into(),
        }
    }
    /// An invalid value; `value` is printed as given (use [`go_quote`] for strings).
    pub fn invalid(
        path: impl Into<String>,
        value: impl fmt::Display,
        detail: impl Into<String>,
    ) -> Self {
        FieldError {
            path: path.into(),
            kind: ErrorKind::Invalid(value.to_string()),
            detail: detail.into(),
        }
    }
    pub fn forbidden(path: impl Into<String>, detail: impl Into<String>) -> Self {
        FieldError {
            path: path.into(),
            kind: ErrorKind::Forbidden,
            detail: detail.into(),
        }
    }
    /// An unsupported value (`value` printed as given); the detail lists the supported values
    /// as Kubernetes does.
    pub fn not_supported(
        path: impl Into<String>,
        value: impl fmt::Display,
        supported: &[&str],
    ) -> Self {
        let detail = if supported.is_empty() {
            String::new()
        } else {
            let quoted: Vec<String> = supported.iter().map(|s| go_quote(s)).collect();
            format!("supported values: {}", quoted.join(", "))
        };
        FieldError {
            path: path.into(),
            kind: ErrorKind::NotSupported(value.to_string()),
            detail,
        }
    }
    /// A duplicate value (`value` printed as given).
    pub fn duplicate(path: impl Into<String>, value: impl fmt::Display) -> Self {
        FieldError {
            path: path.into(),
            kind: ErrorKind::Duplicate(value.to_string()),
            detail: String::new(),
        }
    }
    pub fn internal(path: impl Into<String>, detail: impl Into<String>) -> Self {
        FieldError {
            path: path.into(),
            kind: ErrorKind::Internal,
            detail: detail.into(),
        }
    }
    pub fn too_long(path: impl Into<String>, max_bytes: usize) -> Self {
        FieldError {
            path: path.into(),
            kind: ErrorKind::TooLong,
            detail: format!("must have at most {max_bytes} bytes"),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ErrorKind::Required => write!(f, "{}: Required value", self.path)?,
            ErrorKind::Invalid(v) => write!(f, "{}: Invalid value: {v}", self.path)?,
            ErrorKind::Forbidden => write!(f, "{}: Forbidden", self.path)?,
            ErrorKind::NotSupported(v) => write!(f, "{}: Unsupported value: {v}", self.path)?,
            ErrorKind::Duplicate(v) => write!(f, "{}: Duplicate value: {v}", self.path)?,
            ErrorKind::TooLong => write!(f, "{}: Too long", self.path)?,
            ErrorKind::Internal => write!(f, "{}: Internal error", self.path)?,
        }
        if !self.detail.is_empty() {
            write!(f, ": {}", self.detail)?;
        }
        Ok(())
    }
}

impl std::error::Error for FieldError {}

// ---------------------------------------------------------------------------------------------
// Entry points
// ---------------------------------------------------------------------------------------------

/// Every validation error of a Rollout's spec, in upstream's order.
///
/// A Rollout with a `workloadRef` must not carry its own template (upstream's lint rule); see
/// [`validate_rollout_spec`] to validate one whose template was resolved from the reference.
pub fn validate_rollout(ro: &Rollout) -> Vec<FieldError> {
    validate_rollout_spec(ro, false)
}

/// [`validate_rollout`], with upstream's `TemplateResolvedFromRef`: when true, `spec.template`
/// was filled from `spec.workloadRef` by the controller and is validated like an inline one.
pub fn validate_rollout_spec(ro: &Rollout, template_resolved_from_ref: bool) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let spec = &ro.spec;

    let replicas = spec.replicas.unwrap_or(defaults::REPLICAS);
    nonnegative(&mut errs, "spec.replicas", i64::from(replicas));

    if spec.workload_ref.is_none() {
        match &spec.selector {
            None => errs.push(FieldError::required(
                "spec.selector",
                missing_field(".spec.selector"),
            )),
            Some(sel) => {
                errs.extend(label_selector_errors(sel, "spec.selector"));
                let terms = sel.match_labels.as_ref().map_or(0, BTreeMap::len)
                    + sel.match_expressions.as_ref().map_or(0, Vec::len);
                if terms == 0 {
                    errs.push(FieldError::invalid(
                        "spec.selector",
                        label_selector_string(sel),
                        "empty selector is invalid for deployment",
                    ));
                }
            }
        }
    }

    if !template_resolved_from_ref
        && spec.workload_ref.is_some()
        && !empty_template(spec.template.as_ref())
    {
        errs.push(FieldError::internal(
            "spec.template",
            "template must be empty for workload reference rollout",
        ));
    }

    match Selector::new(spec.selector.as_ref()) {
        None => {
            let value = spec
                .selector
                .as_ref()
                .map_or_else(|| "null".to_owned(), label_selector_string);
            errs.push(FieldError::invalid(
                "spec.selector",
                value,
                "invalid label selector",
            ));
        }
        Some(selector) => {
            if template_resolved_from_ref || spec.workload_ref.is_none() {
                validate_template_for_replica_set(spec.template.as_ref(), &selector, &mut errs);
            }
        }
    }

    let min_ready_seconds = spec.min_ready_seconds.unwrap_or(0);
    nonnegative(
        &mut errs,
        "spec.minReadySeconds",
        i64::from(min_ready_seconds),
    );

    let revision_history_limit = revision_history_limit(ro);
    nonnegative(
        &mut errs,
        "spec.revisionHistoryLimit",
        i64::from(revision_history_limit),
    );

    let progress_deadline_seconds = spec
        .progress_deadline_seconds
        .unwrap_or(defaults::PROGRESS_DEADLINE_SECONDS);
    nonnegative(
        &mut errs,
        "spec.progressDeadlineSeconds",
        i64::from(progress_deadline_seconds),
    );
    if progress_deadline_seconds <= min_ready_seconds {
        errs.push(FieldError::invalid(
            "spec.progressDeadlineSeconds",
            progress_deadline_seconds,
            "must be greater than minReadySeconds",
        ));
    }

    validate_strategy(ro, &mut errs);
    errs
}

fn nonnegative(errs: &mut Vec<FieldError>, path: &str, value: i64) {
    if value < 0 {
        errs.push(FieldError::invalid(path, value, m::IS_NEGATIVE));
    }
}

fn revision_history_limit(ro: &Rollout) -> i32 {
    ro.spec
        .revision_history_limit
        .unwrap_or(defaults::REVISION_HISTORY_LIMIT)
}

/// Upstream's `RolloutSpec.EmptyTemplate`: no template labels and no template annotations.
fn empty_template(template: Option<&PodTemplateSpec>) -> bool {
    let meta = template.and_then(|t| t.metadata.as_ref());
    meta.and_then(|m| m.labels.as_ref())
        .is_none_or(BTreeMap::is_empty)
        && meta
            .and_then(|m| m.annotations.as_ref())
            .is_none_or(BTreeMap::is_empty)
}

// ---------------------------------------------------------------------------------------------
// Strategy
// ---------------------------------------------------------------------------------------------

/// Upstream calls the strategy functions with this base path (so `.canary`/`.blueGreen` never
/// appear in their errors' paths).
const STRATEGY: &str = "spec.strategy";

fn validate_strategy(ro: &Rollout, errs: &mut Vec<FieldError>) {
    let strategy = ro.spec.strategy.as_ref();
    let canary = strategy.and_then(|s| s.canary.as_ref());
    let blue_green = strategy.and_then(|s| s.blue_green.as_ref());
    match (canary, blue_green) {
        (None, None) => errs.push(FieldError::required(
            format!("{STRATEGY}.strategy"),
            missing_field(".spec.strategy.canary or .spec.strategy.blueGreen"),
        )),
        (Some(_), Some(_)) => errs.push(FieldError::invalid(
            format!("{STRATEGY}.strategy"),
            go_quote("blueGreen: true canary: true"),
            m::INVALID_STRATEGY,
        )),
        (None, Some(bg)) => validate_blue_green(ro, bg, errs),
        (Some(c), None) => validate_canary(c, errs),
    }
}

fn validate_blue_green(ro: &Rollout, bg: &BlueGreenStrategy, errs: &mut Vec<FieldError>) {
    let active = bg.active_service.as_deref().unwrap_or_default();
    let preview = bg.preview_service.as_deref().unwrap_or_default();
    if active == preview {
        errs.push(FieldError::invalid(
            format!("{STRATEGY}.activeService"),
            go_quote(active),
            m::DUPLICATED_SERVICES_BLUE_GREEN,
        ));
    }
    if let Some(limit) = bg.scale_down_delay_revision_limit
        && revision_history_limit(ro) < limit
    {
        errs.push(FieldError::invalid(
            format!("{STRATEGY}.scaleDownDelayRevisionLimit"),
            limit,
            m::SCALE_DOWN_LIMIT_LARGER_THAN_REVISION_LIMIT,
        ));
    }
    int_or_percent_parses(
        bg.max_unavailable.as_ref(),
        &format!("{STRATEGY}.maxUnavailable"),
        errs,
    );
    validate_anti_affinity(
        bg.anti_affinity.as_ref(),
        &format!("{STRATEGY}.antiAffinity"),
        errs,
    );
}

fn validate_anti_affinity(aa: Option<&AntiAffinity>, path: &str, errs: &mut Vec<FieldError>) {
    let Some(aa) = aa else { return };
    let preferred = aa
        .preferred_during_scheduling_ignored_during_execution
        .as_ref();
    let required = aa
        .required_during_scheduling_ignored_during_execution
        .as_ref();
    if preferred.is_some() == required.is_some() {
        let value = format!(
            "antiAffinity.PreferredDuringSchedulingIgnoredDuringExecution: {} antiAffinity.RequiredDuringSchedulingIgnoredDuringExecution: {}",
            preferred.is_some(),
            required.is_some()
        );
        errs.push(FieldError::invalid(
            path,
            go_quote(&value),
            m::INVALID_ANTI_AFFINITY_STRATEGY,
        ));
    }
    if let Some(p) = preferred {
        let weight = p.weight.unwrap_or(0);
        if !(1..=100).contains(&weight) {
            errs.push(FieldError::invalid(
                format!("{path}.weight"),
                weight,
                m::INVALID_ANTI_AFFINITY_WEIGHT,
            ));
        }
    }
}

/// Upstream's `requireCanaryStableServices`.
fn require_canary_stable_services(c: &CanaryStrategy) -> bool {
    let Some(tr) = &c.traffic_routing else {
        return false;
    };
    let no_ping_pong = c.ping_pong.is_none();
    (tr.alb.is_some() && no_ping_pong)
        || tr
            .istio
            .as_ref()
            .is_some_and(|i| i.destination_rule.is_none() && no_ping_pong)
        || tr.smi.is_some()
        || tr.apisix.is_some()
        || tr.ambassador.is_some()
        || tr.nginx.is_some()
        || tr.app_mesh.is_some()
        || tr.traefik.is_some()
}

fn has_plugins(tr: &RolloutTrafficRouting) -> bool {
    tr.plugins.as_ref().is_some_and(|p| !p.is_empty())
}

/// Upstream's `weightutil.MaxTrafficWeight`.
fn max_traffic_weight(c: &CanaryStrategy) -> i32 {
    c.traffic_routing
        .as_ref()
        .and_then(|tr| tr.max_traffic_weight)
        .unwrap_or(100)
}

fn validate_canary(c: &CanaryStrategy, errs: &mut Vec<FieldError>) {
    invalid_max_surge_max_unavailable(c, errs);
    int_or_percent_parses(c.max_surge.as_ref(), &format!("{STRATEGY}.maxSurge"), errs);
    int_or_percent_parses(
        c.max_unavailable.as_ref(),
        &format!("{STRATEGY}.maxUnavailable"),
        errs,
    );

    let canary_service = c.canary_service.as_deref().unwrap_or_default();
    let stable_service = c.stable_service.as_deref().unwrap_or_default();
    if !canary_service.is_empty() && !stable_service.is_empty() && canary_service == stable_service
    {
        errs.push(FieldError::invalid(
            format!("{STRATEGY}.stableService"),
            go_quote(stable_service),
            m::DUPLICATED_SERVICES_CANARY,
        ));
    }
    let tr = c.traffic_routing.as_ref();
    if let Some(pp) = &c.ping_pong {
        if let Some(tr) = tr
            && tr.alb.is_none()
            && tr.istio.is_none()
            && !has_plugins(tr)
        {
            // upstream prints the (nil) ALB configuration
            errs.push(FieldError::invalid(
                format!("{STRATEGY}.trafficRouting.alb"),
                "null",
                m::PING_PONG_WITH_ROUTER_ONLY,
            ));
        }
        let ping = pp.ping_service.as_deref().unwrap_or_default();
        let pong = pp.pong_service.as_deref().unwrap_or_default();
        if ping.is_empty() {
            errs.push(FieldError::invalid(
                format!("{STRATEGY}.pingPong.pingService"),
                go_quote(ping),
                m::INVALID_PING_PONG_PROVIDED,
            ));
        }
        if pong.is_empty() {
            errs.push(FieldError::invalid(
                format!("{STRATEGY}.pingPong.pongService"),
                go_quote(pong),
                m::INVALID_PING_PONG_PROVIDED,
            ));
        }
        if ping == pong {
            errs.push(FieldError::invalid(
                format!("{STRATEGY}.pingPong.pingService"),
                go_quote(ping),
                m::DUPLICATED_PING_PONG_SERVICES,
            ));
        }
        if let Some(alb) = tr.and_then(|tr| tr.alb.as_ref()) {
            let root = alb.root_service.as_deref().unwrap_or_default();
            if root.is_empty() {
                errs.push(FieldError::invalid(
                    format!("{STRATEGY}.trafficRouting.alb.rootService"),
                    go_quote(root),
                    m::MISSED_ALB_ROOT_SERVICE,
                ));
            }
        }
    }
    if require_canary_stable_services(c) {
        if stable_service.is_empty() {
            errs.push(FieldError::invalid(
                format!("{STRATEGY}.stableService"),
                go_quote(stable_service),
                m::INVALID_TRAFFIC_ROUTING,
            ));
        }
        if canary_service.is_empty() {
            errs.push(FieldError::invalid(
                format!("{STRATEGY}.canaryService"),
                go_quote(canary_service),
                m::INVALID_TRAFFIC_ROUTING,
            ));
        }
    }

    let dynamic_stable_scale = c.dynamic_stable_scale.unwrap_or(false);
    match tr {
        None => {
            if let Some(delay) = c.scale_down_delay_seconds {
                errs.push(FieldError::invalid(
                    format!("{STRATEGY}.scaleDownDelaySeconds"),
                    delay,
                    m::INVALID_CANARY_SCALE_DOWN_DELAY,
                ));
            }
            if dynamic_stable_scale {
                errs.push(FieldError::invalid(
                    format!("{STRATEGY}.dynamicStableScale"),
                    true,
                    m::INVALID_CANARY_DYNAMIC_STABLE_SCALE,
                ));
            }
        }
        Some(tr) => {
            if c.scale_down_delay_seconds.is_some() && dynamic_stable_scale {
                errs.push(FieldError::invalid(
                    format!("{STRATEGY}.dynamicStableScale"),
                    true,
                    m::INVALID_CANARY_DYNAMIC_STABLE_SCALE_WITH_SCALE_DOWN_DELAY,
                ));
            }
            if let Some(max) = tr.max_traffic_weight {
                if tr.nginx.is_none() && !has_plugins(tr) {
                    errs.push(FieldError::invalid(
                        format!("{STRATEGY}.trafficRouting.maxTrafficWeight"),
                        max,
                        m::INVALID_CANARY_MAX_WEIGHT_ONLY_NGINX_AND_PLUGINS,
                    ));
                }
                if max < 1 {
                    errs.push(FieldError::invalid(
                        format!("{STRATEGY}.trafficRouting.maxTrafficWeight"),
                        max,
                        m::INVALID_MAX_TRAFFIC_WEIGHT,
                    ));
                }
            }
        }
    }

    for (i, step) in c.steps.iter().flatten().enumerate() {
        validate_step(c, i, step, errs);
    }
    validate_anti_affinity(
        c.anti_affinity.as_ref(),
        &format!("{STRATEGY}.antiAffinity"),
        errs,
    );
}

fn validate_step(c: &CanaryStrategy, i: usize, step: &CanaryStep, errs: &mut Vec<FieldError>) {
    let step_path = format!("{STRATEGY}.steps[{i}]");
    let tr = c.traffic_routing.as_ref();

    // hasMultipleStepsType: only these four are exclusive upstream
    let exclusive = [
        step.set_weight.is_some(),
        step.pause.is_some(),
        step.experiment.is_some(),
        step.analysis.is_some(),
    ];
    if exclusive.iter().filter(|set| **set).count() > 1 {
        let value = format!(
            "step.Experiment: {} step.Pause: {} step.SetWeight: {} step.Analysis: {}",
            step.experiment.is_some(),
            step.pause.is_some(),
            step.set_weight.is_some(),
            step.analysis.is_some()
        );
        errs.push(FieldError::invalid(
            &step_path,
            go_quote(&value),
            m::INVALID_STEP,
        ));
    }
    if step.experiment.is_none()
        && step.pause.is_none()
        && step.set_weight.is_none()
        && step.analysis.is_none()
        && step.set_canary_scale.is_none()
        && step.set_header_route.is_none()
        && step.set_mirror_route.is_none()
        && step.plugin.is_none()
    {
        // upstream prints `== nil`, so every flag is true here
        let value = "step.Experiment: true step.Pause: true step.SetWeight: true step.Analysis: true step.SetCanaryScale: true step.SetHeaderRoute: true step.SetMirrorRoute: true step.Plugin: true";
        errs.push(FieldError::invalid(
            &step_path,
            go_quote(value),
            m::INVALID_STEP,
        ));
    }

    let max_weight = max_traffic_weight(c);
    if let Some(w) = step.set_weight
        && (w < 0 || w > max_weight)
    {
        errs.push(FieldError::invalid(
            format!("{step_path}.setWeight"),
            w,
            m::INVALID_SET_WEIGHT.replace("%d", &max_weight.to_string()),
        ));
    }
    if let Some(pause) = &step.pause {
        let secs = pause_duration_seconds(pause);
        if secs < 0 {
            errs.push(FieldError::invalid(
                format!("{step_path}.pause.duration"),
                secs,
                m::INVALID_DURATION,
            ));
        }
    }
    if step.set_canary_scale.is_some() && tr.is_none() {
        errs.push(FieldError::required(
            format!("{STRATEGY}.trafficRouting"),
            m::INVALID_SET_CANARY_SCALE_TRAFFIC_POLICY,
        ));
    }

    if let Some(hr) = &step.set_header_route {
        let supported = tr.filter(|tr| {
            tr.istio.is_some() || tr.alb.is_some() || tr.apisix.is_some() || has_plugins(tr)
        });
        match supported {
            None => errs.push(FieldError::invalid(
                format!("{step_path}.setHeaderRoute"),
                set_header_route_string(hr),
                m::INVALID_SET_HEADER_ROUTE_TRAFFIC_POLICY,
            )),
            Some(tr) => {
                for (j, mt) in hr.match_.iter().flatten().enumerate() {
                    let path = format!("{step_path}.setHeaderRoute.match[{j}]");
                    if tr.alb.is_some() {
                        alb_invalid_values(mt.header_value.as_ref(), &path, errs);
                    } else {
                        multiple_match_values(mt.header_value.as_ref(), &path, errs);
                    }
                }
            }
        }
    }

    if let Some(mr) = &step.set_mirror_route {
        if !tr.is_some_and(|tr| tr.istio.is_some() || has_plugins(tr)) {
            errs.push(FieldError::invalid(
                format!("{step_path}.setMirrorRoute"),
                set_mirror_route_string(mr),
                m::INVALID_SET_MIRROR_ROUTE_TRAFFIC_POLICY,
            ));
        }
        for (j, mt) in mr.match_.iter().flatten().enumerate() {
            let path = format!("{step_path}.setMirrorRoute.match[{j}]");
            // upstream checks the method twice and never the headers
            if let Some(method) = &mt.method {
                multiple_match_values(Some(method), &path, errs);
            }
            if let Some(p) = &mt.path {
                multiple_match_values(Some(p), &path, errs);
            }
            if let Some(method) = &mt.method {
                multiple_match_values(Some(method), &path, errs);
            }
        }
    }

    if let Some(tr) = tr {
        let routed = step.set_header_route.is_some() || step.set_mirror_route.is_some();
        match &tr.managed_routes {
            None if routed => errs.push(FieldError::required(
                format!("{STRATEGY}.trafficRouting.managedRoutes"),
                missing_field("spec.strategy.canary.trafficRouting.managedRoutes"),
            )),
            None => {}
            Some(managed) => {
                if let Some(hr) = &step.set_header_route {
                    route_in_managed_routes(
                        &format!("{step_path}.setHeaderRoute"),
                        hr.name.as_deref(),
                        managed,
                        errs,
                    );
                }
                if let Some(mr) = &step.set_mirror_route {
                    route_in_managed_routes(
                        &format!("{step_path}.setMirrorRoute"),
                        mr.name.as_deref(),
                        managed,
                        errs,
                    );
                }
            }
        }
    }

    let mut args: Vec<&AnalysisRunArgument> = Vec::new();
    if let Some(exp) = &step.experiment {
        for (k, template) in exp.templates.iter().flatten().enumerate() {
            let Some(weight) = template.weight else {
                continue;
            };
            let path = format!("{step_path}.experiment.templates[{k}].weight");
            match tr {
                None => errs.push(FieldError::invalid(
                    path,
                    weight,
                    m::INVALID_EXPERIMENT_WEIGHT_WITHOUT_TRAFFIC_ROUTING,
                )),
                Some(tr)
                    if tr.alb.is_none()
                        && tr.smi.is_none()
                        && tr.istio.is_none()
                        && !has_plugins(tr) =>
                {
                    errs.push(FieldError::invalid(
                        path,
                        weight,
                        m::INVALID_EXPERIMENT_WEIGHT_ROUTER,
                    ))
                }
                Some(_) => {}
            }
        }
        for analysis in exp.analyses.iter().flatten() {
            args.extend(analysis.args.iter().flatten());
        }
    }
    if let Some(analysis) = &step.analysis {
        args.extend(analysis.args.iter().flatten());
    }
    for arg in &args {
        let field_path = arg
            .value_from
            .as_ref()
            .and_then(|v| v.field_ref.as_ref())
            .map(|f| f.field_path.as_deref().unwrap_or_default());
        if let Some(fp) = field_path
            && fp.starts_with("metadata")
            && !metadata_field_path_supported(fp)
        {
            errs.push(FieldError::invalid(
                format!("{step_path}.analyses"),
                analysis_args_string(&args),
                m::INVALID_ANALYSIS_ARGS,
            ));
        }
    }
}

fn route_in_managed_routes(
    path: &str,
    name: Option<&str>,
    managed: &[MangedRoutes],
    errs: &mut Vec<FieldError>,
) {
    let name = name.unwrap_or_default();
    if !managed
        .iter()
        .any(|r| r.name.as_deref().unwrap_or_default() == name)
    {
        errs.push(FieldError::invalid(
            path,
            go_quote(name),
            m::STEP_ROUTE_NOT_IN_MANAGED_ROUTES,
        ));
    }
}

/// Upstream's `hasALBInvalidValues`.
fn alb_invalid_values(sm: Option<&StringMatch>, path: &str, errs: &mut Vec<FieldError>) {
    let Some(sm) = sm else {
        errs.push(FieldError::invalid(
            path,
            "null",
            m::INVALID_STRING_MATCH_MISSED_VALUE,
        ));
        return;
    };
    if empty(&sm.exact) || !empty(&sm.regex) || !empty(&sm.prefix) {
        errs.push(FieldError::invalid(
            path,
            string_match_string(sm),
            m::INVALID_SET_HEADER_ROUTE_ALB_VALUE,
        ));
    }
}

/// Upstream's `hasMultipleMatchValues`.
fn multiple_match_values(sm: Option<&StringMatch>, path: &str, errs: &mut Vec<FieldError>) {
    let Some(sm) = sm else {
        errs.push(FieldError::invalid(
            path,
            "null",
            m::INVALID_STRING_MATCH_MISSED_VALUE,
        ));
        return;
    };
    let set = [&sm.exact, &sm.regex, &sm.prefix]
        .iter()
        .filter(|v| !empty(v))
        .count();
    if set > 1 {
        errs.push(FieldError::invalid(
            path,
            string_match_string(sm),
            m::INVALID_STRING_MATCH_MULTIPLE_VALUE,
        ));
    }
    if set == 0 {
        errs.push(FieldError::invalid(
            path,
            string_match_string(sm),
            m::INVALID_STRING_MATCH_MISSED_VALUE,
        ));
    }
}

fn empty(s: &Option<String>) -> bool {
    s.as_deref().is_none_or(str::is_empty)
}

/// Upstream's `invalidMaxSurgeMaxUnavailable` (an unparseable string counts as 0, as upstream's
/// `IntValue` reads it).
fn invalid_max_surge_max_unavailable(c: &CanaryStrategy, errs: &mut Vec<FieldError>) {
    let surge = c.max_surge.as_ref().map_or(25, go_int_or_percent_value);
    let unavailable = c
        .max_unavailable
        .as_ref()
        .map_or(25, go_int_or_percent_value);
    if surge == 0 && unavailable == 0 {
        // both explicitly zero: maxSurge is set
        let value = c
            .max_surge
            .as_ref()
            .map(int_or_string_string)
            .unwrap_or_default();
        errs.push(FieldError::invalid(
            format!("{STRATEGY}.maxSurge"),
            value,
            m::INVALID_MAX_SURGE_MAX_UNAVAILABLE,
        ));
    }
}

/// Upstream's `getIntOrPercentValue`: `"N%"` is N, an integer is itself, any other string is
/// `strconv.Atoi` of it (0 on error).
fn go_int_or_percent_value(v: &IntOrString) -> i64 {
    match v {
        IntOrString::Int(i) => i64::from(*i),
        IntOrString::String(s) => {
            if let Some(digits) = s.strip_suffix('%')
                && !digits.is_empty()
                && digits.bytes().all(|b| b.is_ascii_digit())
            {
                return digits.parse().unwrap_or(i64::MAX);
            }
            go_atoi(s)
        }
    }
}

/// Go's `strconv.Atoi` (an optional sign and decimal digits, within 64 bits), 0 on error.
fn go_atoi(s: &str) -> i64 {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return 0;
    }
    // out of range: Go returns the value clamped to 64 bits (with an error it ignores here)
    s.parse().unwrap_or(if s.starts_with('-') {
        i64::MIN
    } else {
        i64::MAX
    })
}

/// Not upstream: an int-or-string the controller cannot use (see the module docs).
fn int_or_percent_parses(v: Option<&IntOrString>, path: &str, errs: &mut Vec<FieldError>) {
    if let Some(IntOrString::String(s)) = v
        && s.parse::<IntOrPercent>().is_err()
    {
        errs.push(FieldError::invalid(path, s, m::INVALID_INT_OR_PERCENT));
    }
}

/// Upstream's `RolloutPause.DurationSeconds`: no duration is 0; an integer string is seconds;
/// otherwise a Go duration (truncated to seconds); anything unparseable is -1.
fn pause_duration_seconds(p: &RolloutPause) -> i64 {
    match &p.duration {
        None => 0,
        Some(IntOrString::Int(i)) => i64::from(*i),
        Some(IntOrString::String(s)) => {
            if let Ok(i) = s.parse::<i32>() {
                return i64::from(i);
            }
            if s.trim() != s || s.is_empty() {
                return -1;
            }
            match parse_go_duration(s) {
                // int32(d.Seconds())
                Some(ns) => i64::try_from(ns / 1_000_000_000).unwrap_or(-1),
                None => -1,
            }
        }
    }
}

/// Kubernetes' `fieldpath.ExtractFieldPathAsString` for `metadata...` paths: does it succeed?
fn metadata_field_path_supported(fp: &str) -> bool {
    if let Some((path, subscript)) = split_subscripted_path(fp) {
        return match path {
            "metadata.annotations" => is_qualified_name(&subscript.to_lowercase()).is_empty(),
            "metadata.labels" => is_qualified_name(subscript).is_empty(),
            _ => false,
        };
    }
    matches!(
        fp,
        "metadata.annotations"
            | "metadata.labels"
            | "metadata.name"
            | "metadata.namespace"
            | "metadata.uid"
    )
}

/// Kubernetes' `fieldpath.SplitMaybeSubscriptedPath`.
fn split_subscripted_path(fp: &str) -> Option<(&str, &str)> {
    let s = fp.strip_suffix("']")?;
    let (path, subscript) = s.split_once("['")?;
    (!path.is_empty()).then_some((path, subscript))
}

// ---------------------------------------------------------------------------------------------
// Selector and pod template (Kubernetes' validation, the subset described in the module docs)
// ---------------------------------------------------------------------------------------------

/// A converted label selector (`metav1.LabelSelectorAsSelector`).
enum Selector<'a> {
    /// A nil selector: selects nothing.
    Nothing,
    /// An empty selector: selects everything.
    Everything,
    Some(&'a LabelSelector),
}

impl<'a> Selector<'a> {
    /// `None` when the selector does not convert (invalid keys, values or operators).
    fn new(sel: Option<&'a LabelSelector>) -> Option<Self> {
        let Some(sel) = sel else {
            return Some(Selector::Nothing);
        };
        if !label_selector_errors(sel, "").is_empty() {
            return None;
        }
        let terms = sel.match_labels.as_ref().map_or(0, BTreeMap::len)
            + sel.match_expressions.as_ref().map_or(0, Vec::len);
        Some(if terms == 0 {
            Selector::Everything
        } else {
            Selector::Some(sel)
        })
    }

    /// `labels.Selector.Empty()`.
    fn is_empty(&self) -> bool {
        matches!(self, Selector::Everything)
    }

    fn matches(&self, labels: Option<&BTreeMap<String, String>>) -> bool {
        let sel = match self {
            Selector::Nothing => return false,
            Selector::Everything => return true,
            Selector::Some(sel) => sel,
        };
        let get = |k: &str| labels.and_then(|l| l.get(k));
        let labels_ok = sel
            .match_labels
            .iter()
            .flatten()
            .all(|(k, v)| get(k) == Some(v));
        let exprs_ok = sel.match_expressions.iter().flatten().all(|r| {
            let values = r.values.as_deref().unwrap_or_default();
            let value = get(&r.key);
            match r.operator.as_str() {
                "In" => value.is_some_and(|v| values.contains(v)),
                "NotIn" => value.is_none_or(|v| !values.contains(v)),
                "Exists" => value.is_some(),
                "DoesNotExist" => value.is_none(),
                _ => false,
            }
        });
        labels_ok && exprs_ok
    }
}

/// Kubernetes' `ValidateLabelSelector` (default options).
fn label_selector_errors(sel: &LabelSelector, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    validate_labels(
        sel.match_labels.as_ref(),
        &format!("{path}.matchLabels"),
        &mut errs,
    );
    for (i, r) in sel.match_expressions.iter().flatten().enumerate() {
        let rpath = format!("{path}.matchExpressions[{i}]");
        let values = r.values.as_deref().unwrap_or_default();
        match r.operator.as_str() {
            "In" | "NotIn" => {
                if values.is_empty() {
                    errs.push(FieldError::required(
                        format!("{rpath}.values"),
                        "must be specified when `operator` is 'In' or 'NotIn'",
                    ));
                }
            }
            "Exists" | "DoesNotExist" => {
                if !values.is_empty() {
                    errs.push(FieldError::forbidden(
                        format!("{rpath}.values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    ));
                }
            }
            other => errs.push(FieldError::invalid(
                format!("{rpath}.operator"),
                go_quote(other),
                "not a valid selector operator",
            )),
        }
        for msg in is_qualified_name(&r.key) {
            errs.push(FieldError::invalid(
                format!("{rpath}.key"),
                go_quote(&r.key),
                msg,
            ));
        }
        for (j, v) in values.iter().enumerate() {
            for msg in is_valid_label_value(v) {
                errs.push(FieldError::invalid(
                    format!("{rpath}.values[{j}]"),
                    go_quote(v),
                    msg,
                ));
            }
        }
    }
    errs
}

/// Kubernetes' `ValidateLabels` (keys in sorted order; Go's are in map order).
fn validate_labels(
    labels: Option<&BTreeMap<String, String>>,
    path: &str,
    errs: &mut Vec<FieldError>,
) {
    for (k, v) in labels.into_iter().flatten() {
        for msg in is_qualified_name(k) {
            errs.push(FieldError::invalid(path, go_quote(k), msg));
        }
        for msg in is_valid_label_value(v) {
            errs.push(FieldError::invalid(path, go_quote(v), msg));
        }
    }
}

/// Kubernetes' `TotalAnnotationSizeLimitB`.
const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;

/// Kubernetes' `ValidateAnnotations`.
fn validate_annotations(
    annotations: Option<&BTreeMap<String, String>>,
    path: &str,
    errs: &mut Vec<FieldError>,
) {
    let Some(annotations) = annotations else {
        return;
    };
    for k in annotations.keys() {
        for msg in is_qualified_name(&k.to_lowercase()) {
            errs.push(FieldError::invalid(path, go_quote(k), msg));
        }
    }
    let size: usize = annotations.iter().map(|(k, v)| k.len() + v.len()).sum();
    if size > TOTAL_ANNOTATION_SIZE_LIMIT {
        errs.push(FieldError::too_long(path, TOTAL_ANNOTATION_SIZE_LIMIT));
    }
}

/// The container fields Kubernetes' `validateContainerCommon` checks here.
struct ContainerView<'a> {
    name: &'a str,
    image: Option<&'a str>,
    resources: Option<&'a ResourceRequirements>,
}

fn validate_container_common(c: &ContainerView<'_>, path: &str, errs: &mut Vec<FieldError>) {
    if c.name.is_empty() {
        errs.push(FieldError::required(format!("{path}.name"), ""));
    } else {
        for msg in is_dns1123_label(c.name) {
            errs.push(FieldError::invalid(
                format!("{path}.name"),
                go_quote(c.name),
                msg,
            ));
        }
    }
    if c.image.is_none_or(str::is_empty) {
        errs.push(FieldError::required(format!("{path}.image"), ""));
    }
    if let Some(res) = c.resources {
        for (field, list) in [("limits", &res.limits), ("requests", &res.requests)] {
            for (name, q) in list.iter().flatten() {
                let qpath = format!("{path}.resources.{field}[{name}]");
                match parse_quantity(&q.0) {
                    Err(msg) => errs.push(FieldError::invalid(qpath, go_quote(&q.0), msg)),
                    Ok(negative) if negative => {
                        errs.push(FieldError::invalid(qpath, go_quote(&q.0), m::IS_NEGATIVE))
                    }
                    Ok(_) => {}
                }
            }
        }
    }
}

/// Kubernetes' `ValidatePodTemplateSpecForReplicaSet` (the subset in the module docs).
fn validate_template_for_replica_set(
    template: Option<&PodTemplateSpec>,
    selector: &Selector<'_>,
    errs: &mut Vec<FieldError>,
) {
    let meta = template.and_then(|t| t.metadata.as_ref());
    let labels = meta.and_then(|m| m.labels.as_ref());
    if !selector.is_empty() && !selector.matches(labels) {
        errs.push(FieldError::invalid(
            "spec.template.metadata.labels",
            go_string_map(labels),
            "`selector` does not match template `labels`",
        ));
    }

    // ValidatePodTemplateSpec
    validate_labels(labels, "spec.template.labels", errs);
    validate_annotations(
        meta.and_then(|m| m.annotations.as_ref()),
        "spec.template.annotations",
        errs,
    );
    let pod = template.and_then(|t| t.spec.as_ref());

    // ValidatePodSpec: containers, init containers, ephemeral containers
    let containers = pod.map(|p| p.containers.as_slice()).unwrap_or_default();
    let init_containers = pod
        .and_then(|p| p.init_containers.as_deref())
        .unwrap_or_default();
    let ephemeral = pod
        .and_then(|p| p.ephemeral_containers.as_deref())
        .unwrap_or_default();
    if containers.is_empty() {
        errs.push(FieldError::required("spec.template.spec.containers", ""));
    } else {
        let mut names = BTreeSet::new();
        for (i, c) in containers.iter().enumerate() {
            let path = format!("spec.template.spec.containers[{i}]");
            let view = ContainerView {
                name: &c.name,
                image: c.image.as_deref(),
                resources: c.resources.as_ref(),
            };
            validate_container_common(&view, &path, errs);
            if !names.insert(c.name.as_str()) {
                errs.push(FieldError::duplicate(
                    format!("{path}.name"),
                    go_quote(&c.name),
                ));
            }
        }
    }
    let mut names: BTreeSet<&str> = containers.iter().map(|c| c.name.as_str()).collect();
    for (i, c) in init_containers.iter().enumerate() {
        let path = format!("spec.template.spec.initContainers[{i}]");
        let view = ContainerView {
            name: &c.name,
            image: c.image.as_deref(),
            resources: c.resources.as_ref(),
        };
        validate_container_common(&view, &path, errs);
        if names.contains(c.name.as_str()) {
            errs.push(FieldError::duplicate(
                format!("{path}.name"),
                go_quote(&c.name),
            ));
        } else if !c.name.is_empty() {
            names.insert(&c.name);
        }
    }
    for (i, c) in ephemeral.iter().enumerate() {
        let path = format!("spec.template.spec.ephemeralContainers[{i}]");
        let view = ContainerView {
            name: &c.name,
            image: c.image.as_deref(),
            resources: c.resources.as_ref(),
        };
        validate_container_common(&view, &path, errs);
        if !names.insert(&c.name) {
            errs.push(FieldError::duplicate(
                format!("{path}.name"),
                go_quote(&c.name),
            ));
        }
        let has_resources = c.resources.as_ref().is_some_and(|r| {
            r.limits.as_ref().is_some_and(|l| !l.is_empty())
                || r.requests.as_ref().is_some_and(|l| !l.is_empty())
                || r.claims.as_ref().is_some_and(|l| !l.is_empty())
        });
        if has_resources {
            errs.push(FieldError::forbidden(
                format!("{path}.resources"),
                "cannot be set for an Ephemeral Container",
            ));
        }
    }

    // restart policy, after defaulting (unset is Always)
    let restart_policy = pod
        .and_then(|p| p.restart_policy.as_deref())
        .filter(|p| !p.is_empty())
        .unwrap_or("Always");
    if !matches!(restart_policy, "Always" | "OnFailure" | "Never") {
        errs.push(FieldError::not_supported(
            "spec.template.spec.restartPolicy",
            go_quote(restart_policy),
            &["Always", "OnFailure", "Never"],
        ));
    }
    if !ephemeral.is_empty() {
        errs.push(FieldError::forbidden(
            "spec.template.spec.ephemeralContainers",
            "ephemeral containers not allowed in pod template",
        ));
    }

    // the ReplicaSet rules
    if restart_policy != "Always" {
        errs.push(FieldError::not_supported(
            "spec.template.spec.restartPolicy",
            go_quote(restart_policy),
            &["Always"],
        ));
    }
    if let Some(ads) = pod.and_then(|p| p.active_deadline_seconds) {
        errs.push(FieldError::invalid(
            "spec.template.spec.activeDeadlineSeconds",
            ads,
            "activeDeadlineSeconds in ReplicaSet is not Supported",
        ));
    }
}

/// Kubernetes' `resource.ErrFormatWrong`.
const QUANTITY_FORMAT_WRONG: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

/// Parses a Kubernetes quantity as `resource.ParseQuantity` does: `Ok(true)` when it is
/// negative (and not zero), the error message otherwise.
fn parse_quantity(s: &str) -> Result<bool, &'static str> {
    if s.is_empty() {
        return Err(QUANTITY_FORMAT_WRONG);
    }
    if s == "0" {
        return Ok(false);
    }
    let b = s.as_bytes();
    let mut pos = 0;
    let mut negative = false;
    match b.first() {
        Some(b'-') => {
            negative = true;
            pos += 1;
        }
        Some(b'+') => pos += 1,
        _ => {}
    }
    let num_start = pos;
    while pos < b.len() && b[pos].is_ascii_digit() {
        pos += 1;
    }
    let mut digits = &s[num_start..pos];
    let mut fraction = "";
    if pos < b.len() && b[pos] == b'.' {
        pos += 1;
        let start = pos;
        while pos < b.len() && b[pos].is_ascii_digit() {
            pos += 1;
        }
        fraction = &s[start..pos];
    }
    let suffix_start = pos;
    while pos < b.len() && b"eEinumkKMGTP".contains(&b[pos]) {
        pos += 1;
    }
    if pos < b.len() && (b[pos] == b'-' || b[pos] == b'+') {
        pos += 1;
    }
    while pos < b.len() && b[pos].is_ascii_digit() {
        pos += 1;
    }
    if pos != b.len() {
        return Err(QUANTITY_FORMAT_WRONG);
    }
    let suffix = &s[suffix_start..];
    let suffix_ok = matches!(
        suffix,
        "" | "Ki"
            | "Mi"
            | "Gi"
            | "Ti"
            | "Pi"
            | "Ei"
            | "n"
            | "u"
            | "m"
            | "k"
            | "M"
            | "G"
            | "T"
            | "P"
            | "E"
    ) || (suffix.len() > 1
        && suffix.starts_with(['e', 'E'])
        && suffix[1..].parse::<i64>().is_ok());
    if !suffix_ok {
        return Err("unable to parse quantity's suffix");
    }
    if digits.is_empty() && fraction.is_empty() {
        return Err("unable to parse numeric part of quantity");
    }
    digits = digits.trim_start_matches('0');
    let zero = digits.is_empty() && fraction.bytes().all(|c| c == b'0');
    Ok(negative && !zero)
}

// ---------------------------------------------------------------------------------------------
// Kubernetes' name and label rules (k8s.io/apimachinery/pkg/util/validation)
// ---------------------------------------------------------------------------------------------

const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const QUALIFIED_NAME_ERR: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const LABEL_VALUE_ERR: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_LABEL_ERR: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_FMT: &str =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1123_SUBDOMAIN_ERR: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";

/// Kubernetes' `RegexError`.
fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
    if examples.is_empty() {
        return format!("{msg} (regex used for validation is '{fmt}')");
    }
    let mut out = format!("{msg} (e.g. ");
    for (i, e) in examples.iter().enumerate() {
        if i > 0 {
            out.push_str(" or ");
        }
        let _ = write!(out, "'{e}', ");
    }
    let _ = write!(out, "regex used for validation is '{fmt}')");
    out
}

fn max_len_error(n: usize) -> String {
    format!("must be no more than {n} characters")
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`
fn is_qualified_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(f), Some(l)) => {
            f.is_ascii_alphanumeric()
                && l.is_ascii_alphanumeric()
                && b.iter()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`
fn is_dns1123_label_str(s: &str) -> bool {
    let b = s.as_bytes();
    let alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    match (b.first(), b.last()) {
        (Some(f), Some(l)) => alnum(f) && alnum(l) && b.iter().all(|c| alnum(c) || *c == b'-'),
        _ => false,
    }
}

/// Kubernetes' `IsDNS1123Label`.
fn is_dns1123_label(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 63 {
        errs.push(max_len_error(63));
    }
    if !is_dns1123_label_str(s) {
        errs.push(regex_error(
            DNS1123_LABEL_ERR,
            DNS1123_LABEL_FMT,
            &["my-name", "123-abc"],
        ));
    }
    errs
}

/// Kubernetes' `IsDNS1123Subdomain`.
fn is_dns1123_subdomain(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 253 {
        errs.push(max_len_error(253));
    }
    if !s.split('.').all(is_dns1123_label_str) {
        errs.push(regex_error(
            DNS1123_SUBDOMAIN_ERR,
            DNS1123_SUBDOMAIN_FMT,
            &["example.com"],
        ));
    }
    errs
}

/// Kubernetes' `IsQualifiedName`.
fn is_qualified_name(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push("prefix part must be non-empty".to_owned());
            } else {
                errs.extend(
                    is_dns1123_subdomain(prefix)
                        .into_iter()
                        .map(|e| format!("prefix part {e}")),
                );
            }
            *name
        }
        _ => {
            errs.push(format!(
                "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(QUALIFIED_NAME_ERR, QUALIFIED_NAME_FMT, &["MyName", "my.name", "123-abc"])
            ));
            return errs;
        }
    };
    if name.is_empty() {
        errs.push("name part must be non-empty".to_owned());
    } else if name.len() > 63 {
        errs.push(format!("name part {}", max_len_error(63)));
    }
    if !is_qualified_name_part(name) {
        errs.push(format!(
            "name part {}",
            regex_error(
                QUALIFIED_NAME_ERR,
                QUALIFIED_NAME_FMT,
                &["MyName", "my.name", "123-abc"]
            )
        ));
    }
    errs
}

/// Kubernetes' `IsValidLabelValue`.
fn is_valid_label_value(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 63 {
        errs.push(max_len_error(63));
    }
    if !value.is_empty() && !is_qualified_name_part(value) {
        errs.push(regex_error(
            LABEL_VALUE_ERR,
            LABEL_VALUE_FMT,
            &["MyValue", "my_value", "12345"],
        ));
    }
    errs
}

// ---------------------------------------------------------------------------------------------
// Printing values as Go does
// ---------------------------------------------------------------------------------------------

/// A string as Go's `%q` prints it.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if c.is_control() || (c.is_whitespace() && c != ' ') || c == '\u{feff}' => {
                if (c as u32) <= 0xffff {
                    let _ = write!(out, "\\u{:04x}", c as u32);
                } else {
                    let _ = write!(out, "\\U{:08x}", c as u32);
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A `map[string]string` as Go's `%#v` prints it.
fn go_string_map(map: Option<&BTreeMap<String, String>>) -> String {
    let Some(map) = map else {
        return "map[string]string(nil)".to_owned();
    };
    let entries: Vec<String> = map
        .iter()
        .map(|(k, v)| format!("{}:{}", go_quote(k), go_quote(v)))
        .collect();
    format!("map[string]string{{{}}}", entries.join(", "))
}

/// An `intstr.IntOrString` as its `String()` prints it.
fn int_or_string_string(v: &IntOrString) -> String {
    match v {
        IntOrString::Int(i) => i.to_string(),
        IntOrString::String(s) => s.clone(),
    }
}

/// `metav1.LabelSelector.String()` (gogo-protobuf).
fn label_selector_string(sel: &LabelSelector) -> String {
    let mut s = String::from("&LabelSelector{MatchLabels:map[string]string{");
    for (k, v) in sel.match_labels.iter().flatten() {
        let _ = write!(s, "{k}: {v},");
    }
    s.push_str("},MatchExpressions:[]LabelSelectorRequirement{");
    for r in sel.match_expressions.iter().flatten() {
        let values = r.values.as_deref().unwrap_or_default().join(" ");
        let _ = write!(
            s,
            "LabelSelectorRequirement{{Key:{},Operator:{},Values:[{values}],}},",
            r.key, r.operator
        );
    }
    s.push_str("},}");
    s
}

fn opt(s: &Option<String>) -> &str {
    s.as_deref().unwrap_or_default()
}

/// `v1alpha1.StringMatch.String()`.
fn string_match_string(sm: &StringMatch) -> String {
    format!(
        "&StringMatch{{Exact:{},Prefix:{},Regex:{},}}",
        opt(&sm.exact),
        opt(&sm.prefix),
        opt(&sm.regex)
    )
}

fn opt_string_match_string(sm: Option<&StringMatch>) -> String {
    sm.map_or_else(|| "nil".to_owned(), string_match_string)
}

/// `v1alpha1.HeaderRoutingMatch.String()`.
fn header_routing_match_string(hm: &HeaderRoutingMatch) -> String {
    format!(
        "&HeaderRoutingMatch{{HeaderName:{},HeaderValue:{},}}",
        opt(&hm.header_name),
        opt_string_match_string(hm.header_value.as_ref())
    )
}

/// `v1alpha1.SetHeaderRoute.String()`.
fn set_header_route_string(hr: &SetHeaderRoute) -> String {
    let mut matches = String::from("[]HeaderRoutingMatch{");
    for hm in hr.match_.iter().flatten() {
        matches.push_str(&header_routing_match_string(hm).replacen('&', "", 1));
        matches.push(',');
    }
    matches.push('}');
    format!("&SetHeaderRoute{{Name:{},Match:{matches},}}", opt(&hr.name))
}

/// `v1alpha1.RouteMatch.String()` (header values print as Go's `%v` of a struct).
fn route_match_string(rm: &RouteMatch) -> String {
    let mut headers = String::from("map[string]StringMatch{");
    for (k, v) in rm.headers.iter().flatten() {
        let _ = write!(
            headers,
            "{k}: {{{} {} {}}},",
            opt(&v.exact),
            opt(&v.prefix),
            opt(&v.regex)
        );
    }
    headers.push('}');
    format!(
        "&RouteMatch{{Method:{},Path:{},Headers:{headers},}}",
        opt_string_match_string(rm.method.as_ref()),
        opt_string_match_string(rm.path.as_ref())
    )
}

/// `v1alpha1.SetMirrorRoute.String()`.
fn set_mirror_route_string(mr: &SetMirrorRoute) -> String {
    let mut matches = String::from("[]RouteMatch{");
    for rm in mr.match_.iter().flatten() {
        matches.push_str(&route_match_string(rm).replacen('&', "", 1));
        matches.push(',');
    }
    matches.push('}');
    let percentage = mr
        .percentage
        .map_or_else(|| "nil".to_owned(), |p| format!("*{p}"));
    format!(
        "&SetMirrorRoute{{Name:{},Match:{matches},Percentage:{percentage},}}",
        opt(&mr.name)
    )
}

/// `[]v1alpha1.AnalysisRunArgument` as Go's `%#v` prints it (pointees instead of addresses).
fn analysis_args_string(args: &[&AnalysisRunArgument]) -> String {
    let items: Vec<String> = args
        .iter()
        .map(|a| {
            let value_from = match &a.value_from {
                None => "(*v1alpha1.ArgumentValueFrom)(nil)".to_owned(),
                Some(vf) => {
                    let hash = vf.pod_template_hash_value.as_deref().map_or_else(
                        || "(*v1alpha1.ValueFromPodTemplateHash)(nil)".to_owned(),
                        |h| format!("&{}", go_quote(h)),
                    );
                    let field_ref = vf.field_ref.as_ref().map_or_else(
                        || "(*v1alpha1.FieldRef)(nil)".to_owned(),
                        |f| format!("&v1alpha1.FieldRef{{FieldPath:{}}}", go_quote(opt(&f.field_path))),
                    );
                    format!("&v1alpha1.ArgumentValueFrom{{PodTemplateHashValue:{hash}, FieldRef:{field_ref}}}")
                }
            };
            format!(
                "v1alpha1.AnalysisRunArgument{{Name:{}, Value:{}, ValueFrom:{value_from}}}",
                go_quote(opt(&a.name)),
                go_quote(opt(&a.value))
            )
        })
        .collect();
    format!("[]v1alpha1.AnalysisRunArgument{{{}}}", items.join(", "))
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    /// A valid canary Rollout.
    fn base() -> Value {
        json!({
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Rollout",
            "metadata": {"name": "r", "namespace": "ns"},
            "spec": {
                "selector": {"matchLabels": {"app": "r"}},
                "template": {
                    "metadata": {"labels": {"app": "r"}},
                    "spec": {"containers": [{"name": "c", "image": "nginx"}]}
                },
                "strategy": {"canary": {"steps": [{"setWeight": 10}]}}
            }
        })
    }

    /// RFC 7386 merge patch: `null` removes.
    fn merge(target: &mut Value, patch: &Value) {
        match (target, patch) {
            (Value::Object(t), Value::Object(p)) => {
                for (k, v) in p {
                    if v.is_null() {
                        t.remove(k);
                    } else {
                        merge(t.entry(k.clone()).or_insert(Value::Null), v);
                    }
                }
            }
            (t, p) => *t = p.clone(),
        }
    }

    fn rollout(patch: Value) -> Rollout {
        let mut v = base();
        merge(&mut v, &patch);
        serde_json::from_value(v).expect("test rollout deserialises")
    }

    fn errors(patch: Value) -> Vec<String> {
        validate_rollout(&rollout(patch))
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    /// `{"spec": {"strategy": {"canary": c}}}`
    fn canary(c: Value) -> Value {
        json!({"spec": {"strategy": {"canary": c}}})
    }

    /// A canary patch with one step and a traffic routing configuration.
    fn canary_tr(tr: Value, steps: Value) -> Value {
        canary(
            json!({"canaryService": "canary", "stableService": "stable", "trafficRouting": tr, "steps": steps}),
        )
    }

    const QNAME_ERR: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";

    /// One case per rule: the patch to the valid base and every error it must give, in order.
    fn cases() -> Vec<(&'static str, Value, Vec<String>)> {
        let s = |x: &str| x.to_owned();
        let step0_empty = s(
            "spec.strategy.steps[0]: Invalid value: \"step.Experiment: true step.Pause: true step.SetWeight: true step.Analysis: true step.SetCanaryScale: true step.SetHeaderRoute: true step.SetMirrorRoute: true step.Plugin: true\": Step must have one of the following set: experiment, setWeight, setCanaryScale, plugin or pause",
        );
        let header = |sm: Value| json!([{"setHeaderRoute": {"name": "h", "match": [{"headerName": "agent", "headerValue": sm}]}}]);
        vec![
            ("valid canary", json!({}), vec![]),
            (
                "valid blue-green",
                json!({"spec": {"strategy": {"canary": null, "blueGreen": {"activeService": "a", "previewService": "p"}}}}),
                vec![],
            ),
            (
                "replicas negative",
                json!({"spec": {"replicas": -1}}),
                vec![s(
                    "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
                )],
            ),
            (
                "missing selector",
                json!({"spec": {"selector": null}}),
                vec![
                    s("spec.selector: Required value: Rollout has missing field '.spec.selector'"),
                    s(
                        "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"r\"}: `selector` does not match template `labels`",
                    ),
                ],
            ),
            (
                "empty selector",
                json!({"spec": {"selector": {"matchLabels": null}}}),
                vec![s(
                    "spec.selector: Invalid value: &LabelSelector{MatchLabels:map[string]string{},MatchExpressions:[]LabelSelectorRequirement{},}: empty selector is invalid for deployment",
                )],
            ),
            (
                "selector does not match the template",
                json!({"spec": {"selector": {"matchLabels": {"app": "other"}}}}),
                vec![s(
                    "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"r\"}: `selector` does not match template `labels`",
                )],
            ),
            (
                "selector expressions match",
                json!({"spec": {"selector": {"matchLabels": null, "matchExpressions": [
                {"key": "app", "operator": "In", "values": ["r", "s"]}, {"key": "tier", "operator": "DoesNotExist"}]}}}),
                vec![],
            ),
            (
                "selector operator",
                json!({"spec": {"selector": {"matchExpressions": [{"key": "app", "operator": "Foo"}]}}}),
                vec![
                    s(
                        "spec.selector.matchExpressions[0].operator: Invalid value: \"Foo\": not a valid selector operator",
                    ),
                    s(
                        "spec.selector: Invalid value: &LabelSelector{MatchLabels:map[string]string{app: r,},MatchExpressions:[]LabelSelectorRequirement{LabelSelectorRequirement{Key:app,Operator:Foo,Values:[],},},}: invalid label selector",
                    ),
                ],
            ),
            (
                "selector In without values",
                json!({"spec": {"selector": {"matchLabels": null, "matchExpressions": [{"key": "app", "operator": "In"}]}}}),
                vec![
                    s(
                        "spec.selector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'",
                    ),
                    s(
                        "spec.selector: Invalid value: &LabelSelector{MatchLabels:map[string]string{},MatchExpressions:[]LabelSelectorRequirement{LabelSelectorRequirement{Key:app,Operator:In,Values:[],},},}: invalid label selector",
                    ),
                ],
            ),
            (
                "selector label key",
                json!({"spec": {"selector": {"matchLabels": {"-bad": "x"}}}}),
                vec![
                    format!("spec.selector.matchLabels: Invalid value: \"-bad\": {QNAME_ERR}"),
                    s(
                        "spec.selector: Invalid value: &LabelSelector{MatchLabels:map[string]string{-bad: x,app: r,},MatchExpressions:[]LabelSelectorRequirement{},}: invalid label selector",
                    ),
                ],
            ),
            (
                "template absent without workloadRef",
                json!({"spec": {"template": null}}),
                vec![
                    s(
                        "spec.template.metadata.labels: Invalid value: map[string]string(nil): `selector` does not match template `labels`",
                    ),
                    s("spec.template.spec.containers: Required value"),
                ],
            ),
            (
                "workloadRef with a template",
                json!({"spec": {"workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "d"}}}),
                vec![s(
                    "spec.template: Internal error: template must be empty for workload reference rollout",
                )],
            ),
            (
                "workloadRef without selector or template",
                json!({"spec": {"selector": null, "template": null,
                "workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "d"}}}),
                vec![],
            ),
            (
                "template label value",
                json!({"spec": {"selector": {"matchLabels": {"app": "r"}}, "template": {"metadata": {"labels": {"x": "a b"}}}}}),
                vec![s(
                    "spec.template.labels: Invalid value: \"a b\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
                )],
            ),
            (
                "container image",
                json!({"spec": {"template": {"spec": {"containers": [{"name": "c"}]}}}}),
                vec![s("spec.template.spec.containers[0].image: Required value")],
            ),
            (
                "container name",
                json!({"spec": {"template": {"spec": {"containers": [{"name": "C_1", "image": "i"}]}}}}),
                vec![s(
                    "spec.template.spec.containers[0].name: Invalid value: \"C_1\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
                )],
            ),
            (
                "duplicate container names",
                json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "i"}, {"name": "c", "image": "i"}],
                "initContainers": [{"name": "c", "image": "i"}]}}}}),
                vec![
                    s("spec.template.spec.containers[1].name: Duplicate value: \"c\""),
                    s("spec.template.spec.initContainers[0].name: Duplicate value: \"c\""),
                ],
            ),
            (
                "resource quantity",
                json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "i",
                "resources": {"requests": {"memory": "invalid", "cpu": "-1", "x/y": "5x"}, "limits": {"cpu": "100m", "memory": "1Gi", "e": "1e3"}}}]}}}}),
                vec![
                    s(
                        "spec.template.spec.containers[0].resources.requests[cpu]: Invalid value: \"-1\": must be greater than or equal to 0",
                    ),
                    s(
                        "spec.template.spec.containers[0].resources.requests[memory]: Invalid value: \"invalid\": quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
                    ),
                    s(
                        "spec.template.spec.containers[0].resources.requests[x/y]: Invalid value: \"5x\": quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
                    ),
                ],
            ),
            (
                "restart policy",
                json!({"spec": {"template": {"spec": {"restartPolicy": "OnFailure"}}}}),
                vec![s(
                    "spec.template.spec.restartPolicy: Unsupported value: \"OnFailure\": supported values: \"Always\"",
                )],
            ),
            (
                "active deadline",
                json!({"spec": {"template": {"spec": {"activeDeadlineSeconds": 10}}}}),
                vec![s(
                    "spec.template.spec.activeDeadlineSeconds: Invalid value: 10: activeDeadlineSeconds in ReplicaSet is not Supported",
                )],
            ),
            (
                "privileged container",
                json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "i",
                "securityContext": {"privileged": true}}]}}}}),
                vec![],
            ),
            (
                "minReadySeconds negative",
                json!({"spec": {"minReadySeconds": -1}}),
                vec![s(
                    "spec.minReadySeconds: Invalid value: -1: must be greater than or equal to 0",
                )],
            ),
            (
                "revisionHistoryLimit negative",
                json!({"spec": {"revisionHistoryLimit": -1}}),
                vec![s(
                    "spec.revisionHistoryLimit: Invalid value: -1: must be greater than or equal to 0",
                )],
            ),
            (
                "progressDeadlineSeconds <= minReadySeconds",
                json!({"spec": {"minReadySeconds": 601}}),
                vec![s(
                    "spec.progressDeadlineSeconds: Invalid value: 600: must be greater than minReadySeconds",
                )],
            ),
            (
                "progressDeadlineSeconds negative",
                json!({"spec": {"progressDeadlineSeconds": -1}}),
                vec![
                    s(
                        "spec.progressDeadlineSeconds: Invalid value: -1: must be greater than or equal to 0",
                    ),
                    s(
                        "spec.progressDeadlineSeconds: Invalid value: -1: must be greater than minReadySeconds",
                    ),
                ],
            ),
            (
                "no strategy",
                json!({"spec": {"strategy": null}}),
                vec![s(
                    "spec.strategy.strategy: Required value: Rollout has missing field '.spec.strategy.canary or .spec.strategy.blueGreen'",
                )],
            ),
            (
                "two strategies",
                json!({"spec": {"strategy": {"blueGreen": {"activeService": "a"}}}}),
                vec![s(
                    "spec.strategy.strategy: Invalid value: \"blueGreen: true canary: true\": Multiple Strategies can not be listed",
                )],
            ),
            (
                "blue-green same services",
                json!({"spec": {"strategy": {"canary": null, "blueGreen": {"activeService": "svc", "previewService": "svc"}}}}),
                vec![s(
                    "spec.strategy.activeService: Invalid value: \"svc\": This rollout uses the same service for the active and preview services, but two different services are required.",
                )],
            ),
            (
                "blue-green scaleDownDelayRevisionLimit",
                json!({"spec": {"strategy": {"canary": null, "blueGreen": {"activeService": "a", "scaleDownDelayRevisionLimit": 11}}}}),
                vec![s(
                    "spec.strategy.scaleDownDelayRevisionLimit: Invalid value: 11: This rollout's revision history limit can not be smaller than the rollout's scale down limit",
                )],
            ),
            (
                "blue-green maxUnavailable unparseable",
                json!({"spec": {"strategy": {"canary": null, "blueGreen": {"activeService": "a", "maxUnavailable": "ten"}}}}),
                vec![s(
                    "spec.strategy.maxUnavailable: Invalid value: ten: must be an integer or percentage (e.g '5%')",
                )],
            ),
            (
                "anti-affinity without a mode",
                json!({"spec": {"strategy": {"canary": {"antiAffinity": {}}}}}),
                vec![s(
                    "spec.strategy.antiAffinity: Invalid value: \"antiAffinity.PreferredDuringSchedulingIgnoredDuringExecution: false antiAffinity.RequiredDuringSchedulingIgnoredDuringExecution: false\": AntiAffinity must have exactly one strategy listed",
                )],
            ),
            (
                "anti-affinity with both modes",
                json!({"spec": {"strategy": {"canary": null, "blueGreen": {"activeService": "a", "antiAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": {"weight": 10}, "requiredDuringSchedulingIgnoredDuringExecution": {}}}}}}),
                vec![s(
                    "spec.strategy.antiAffinity: Invalid value: \"antiAffinity.PreferredDuringSchedulingIgnoredDuringExecution: true antiAffinity.RequiredDuringSchedulingIgnoredDuringExecution: true\": AntiAffinity must have exactly one strategy listed",
                )],
            ),
            (
                "anti-affinity weight",
                json!({"spec": {"strategy": {"canary": {"antiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": {"weight": 101}}}}}}),
                vec![s(
                    "spec.strategy.antiAffinity.weight: Invalid value: 101: AntiAffinity weight must be between 1-100",
                )],
            ),
            (
                "maxSurge and maxUnavailable zero",
                canary(json!({"maxSurge": 0, "maxUnavailable": "0%"})),
                vec![s(
                    "spec.strategy.maxSurge: Invalid value: 0: MaxSurge and MaxUnavailable both can not be zero",
                )],
            ),
            (
                "maxSurge and maxUnavailable zero strings",
                canary(json!({"maxSurge": "0%", "maxUnavailable": "0"})),
                vec![s(
                    "spec.strategy.maxSurge: Invalid value: 0%: MaxSurge and MaxUnavailable both can not be zero",
                )],
            ),
            (
                "maxSurge unparseable",
                canary(json!({"maxSurge": "abc", "maxUnavailable": "1.5%"})),
                vec![
                    s(
                        "spec.strategy.maxSurge: Invalid value: abc: MaxSurge and MaxUnavailable both can not be zero",
                    ),
                    s(
                        "spec.strategy.maxSurge: Invalid value: abc: must be an integer or percentage (e.g '5%')",
                    ),
                    s(
                        "spec.strategy.maxUnavailable: Invalid value: 1.5%: must be an integer or percentage (e.g '5%')",
                    ),
                ],
            ),
            (
                "canary same services",
                canary(json!({"canaryService": "svc", "stableService": "svc"})),
                vec![s(
                    "spec.strategy.stableService: Invalid value: \"svc\": This rollout uses the same service for the stable and canary services, but two different services are required.",
                )],
            ),
            (
                "traffic routing without services",
                canary(json!({"trafficRouting": {"nginx": {"stableIngress": "i"}}})),
                vec![
                    s(
                        "spec.strategy.stableService: Invalid value: \"\": Canary service and Stable service must to be set to use Traffic Routing",
                    ),
                    s(
                        "spec.strategy.canaryService: Invalid value: \"\": Canary service and Stable service must to be set to use Traffic Routing",
                    ),
                ],
            ),
            (
                "plugin traffic routing without services",
                canary(json!({"trafficRouting": {"plugins": {"p": {}}}})),
                vec![],
            ),
            (
                "istio subset routing without services",
                canary(
                    json!({"trafficRouting": {"istio": {"destinationRule": {"name": "d", "canarySubsetName": "c", "stableSubsetName": "s"}}}}),
                ),
                vec![],
            ),
            (
                "ping-pong without services",
                canary(
                    json!({"pingPong": {"pingService": "ping", "pongService": "pong"},
                "trafficRouting": {"alb": {"ingress": "i", "servicePort": 80, "rootService": "root"}}}),
                ),
                vec![],
            ),
            (
                "ping-pong with nginx",
                canary(
                    json!({"pingPong": {"pingService": "ping", "pongService": "pong"}, "canaryService": "c", "stableService": "s",
                "trafficRouting": {"nginx": {"stableIngress": "i"}}}),
                ),
                vec![s(
                    "spec.strategy.trafficRouting.alb: Invalid value: null: Ping-pong feature works with the ALB, Istio, and plugin-based traffic routers only",
                )],
            ),
            (
                "ping-pong missing pong",
                canary(json!({"pingPong": {"pingService": "ping"}})),
                vec![s(
                    "spec.strategy.pingPong.pongService: Invalid value: \"\": Ping service and Pong service must to be set to use Ping-Pong feature",
                )],
            ),
            (
                "ping-pong same services",
                canary(json!({"pingPong": {"pingService": "ping", "pongService": "ping"}})),
                vec![s(
                    "spec.strategy.pingPong.pingService: Invalid value: \"ping\": This rollout uses the same service for the ping and pong services, but two different services are required.",
                )],
            ),
            (
                "ping-pong ALB without rootService",
                canary(
                    json!({"pingPong": {"pingService": "ping", "pongService": "pong"},
                "trafficRouting": {"alb": {"ingress": "i", "servicePort": 80}}}),
                ),
                vec![s(
                    "spec.strategy.trafficRouting.alb.rootService: Invalid value: \"\": Root service field is required for the configuration with ALB and ping-pong feature enabled",
                )],
            ),
            (
                "scaleDownDelaySeconds without traffic routing",
                canary(json!({"scaleDownDelaySeconds": 60})),
                vec![s(
                    "spec.strategy.scaleDownDelaySeconds: Invalid value: 60: Canary scaleDownDelaySeconds can only be used with traffic routing",
                )],
            ),
            (
                "dynamicStableScale without traffic routing",
                canary(json!({"dynamicStableScale": true})),
                vec![s(
                    "spec.strategy.dynamicStableScale: Invalid value: true: Canary dynamicStableScale can only be used with traffic routing",
                )],
            ),
            (
                "dynamicStableScale with scaleDownDelaySeconds",
                canary(
                    json!({"dynamicStableScale": true, "scaleDownDelaySeconds": 60,
                "canaryService": "c", "stableService": "s", "trafficRouting": {"smi": {}}}),
                ),
                vec![s(
                    "spec.strategy.dynamicStableScale: Invalid value: true: Canary dynamicStableScale cannot be used with scaleDownDelaySeconds",
                )],
            ),
            (
                "abortScaleDownDelaySeconds alone is fine",
                canary(json!({"abortScaleDownDelaySeconds": 0})),
                vec![],
            ),
            (
                "maxTrafficWeight with ALB",
                canary_tr(
                    json!({"alb": {"ingress": "i", "servicePort": 80}, "maxTrafficWeight": 1000}),
                    json!([{"setWeight": 10}]),
                ),
                vec![s(
                    "spec.strategy.trafficRouting.maxTrafficWeight: Invalid value: 1000: Canary maxTrafficWeight in traffic routing only supported in Nginx and Plugins",
                )],
            ),
            (
                "maxTrafficWeight zero",
                canary_tr(
                    json!({"nginx": {"stableIngress": "i"}, "maxTrafficWeight": 0}),
                    json!([{"setWeight": 10}]),
                ),
                vec![
                    s(
                        "spec.strategy.trafficRouting.maxTrafficWeight: Invalid value: 0: MaxTrafficWeight needs to be greater than 0",
                    ),
                    s(
                        "spec.strategy.steps[0].setWeight: Invalid value: 10: SetWeight needs to be between 0 and 0",
                    ),
                ],
            ),
            (
                "setWeight above 100",
                canary(json!({"steps": [{"pause": {}}, {"setWeight": 110}]})),
                vec![s(
                    "spec.strategy.steps[1].setWeight: Invalid value: 110: SetWeight needs to be between 0 and 100",
                )],
            ),
            (
                "setWeight negative",
                canary(json!({"steps": [{"setWeight": -1}]})),
                vec![s(
                    "spec.strategy.steps[0].setWeight: Invalid value: -1: SetWeight needs to be between 0 and 100",
                )],
            ),
            (
                "setWeight within maxTrafficWeight",
                canary_tr(
                    json!({"nginx": {"stableIngress": "i"}, "maxTrafficWeight": 1000}),
                    json!([{"setWeight": 500}, {"setWeight": 1001}]),
                ),
                vec![s(
                    "spec.strategy.steps[1].setWeight: Invalid value: 1001: SetWeight needs to be between 0 and 1000",
                )],
            ),
            (
                "empty step",
                canary(json!({"steps": [{}]})),
                vec![step0_empty.clone()],
            ),
            (
                "step with two actions",
                canary(json!({"steps": [{"setWeight": 10, "pause": {}}]})),
                vec![s(
                    "spec.strategy.steps[0]: Invalid value: \"step.Experiment: false step.Pause: true step.SetWeight: true step.Analysis: false\": Step must have one of the following set: experiment, setWeight, setCanaryScale, plugin or pause",
                )],
            ),
            (
                "plugin step",
                canary(json!({"steps": [{"plugin": {"name": "p", "config": {}}}]})),
                vec![],
            ),
            (
                "pause unparseable",
                canary(json!({"steps": [{"pause": {"duration": "soon"}}]})),
                vec![s(
                    "spec.strategy.steps[0].pause.duration: Invalid value: -1: Duration needs to be greater than 0",
                )],
            ),
            (
                "pause negative",
                canary(
                    json!({"steps": [{"pause": {"duration": -5}}, {"pause": {"duration": "-2m"}}, {"pause": {"duration": "1h"}}, {"pause": {"duration": "0"}}]}),
                ),
                vec![
                    s(
                        "spec.strategy.steps[0].pause.duration: Invalid value: -5: Duration needs to be greater than 0",
                    ),
                    s(
                        "spec.strategy.steps[1].pause.duration: Invalid value: -120: Duration needs to be greater than 0",
                    ),
                ],
            ),
            (
                "setCanaryScale without traffic routing",
                canary(json!({"steps": [{"setCanaryScale": {"replicas": 1}}]})),
                vec![s(
                    "spec.strategy.trafficRouting: Required value: SetCanaryScale requires TrafficRouting to be set",
                )],
            ),
            (
                "setHeaderRoute without traffic routing",
                canary(json!({"steps": header(json!({"exact": "chrome"}))})),
                vec![s(
                    "spec.strategy.steps[0].setHeaderRoute: Invalid value: &SetHeaderRoute{Name:h,Match:[]HeaderRoutingMatch{HeaderRoutingMatch{HeaderName:agent,HeaderValue:&StringMatch{Exact:chrome,Prefix:,Regex:,},},},}: SetHeaderRoute requires TrafficRouting, supports Istio and ALB and Apisix",
                )],
            ),
            (
                "setHeaderRoute without managedRoutes",
                canary_tr(
                    json!({"istio": {"virtualService": {"name": "vs"}}}),
                    header(json!({"exact": "chrome"})),
                ),
                vec![s(
                    "spec.strategy.trafficRouting.managedRoutes: Required value: Rollout has missing field 'spec.strategy.canary.trafficRouting.managedRoutes'",
                )],
            ),
            (
                "setHeaderRoute not in managedRoutes",
                canary_tr(
                    json!({"istio": {"virtualService": {"name": "vs"}}, "managedRoutes": [{"name": "other"}]}),
                    header(json!({"exact": "chrome"})),
                ),
                vec![s(
                    "spec.strategy.steps[0].setHeaderRoute: Invalid value: \"h\": Steps define a route that does not exist in spec.strategy.canary.trafficRouting.managedRoutes",
                )],
            ),
            (
                "setHeaderRoute in managedRoutes",
                canary_tr(
                    json!({"istio": {"virtualService": {"name": "vs"}}, "managedRoutes": [{"name": "h"}]}),
                    header(json!({"exact": "chrome"})),
                ),
                vec![],
            ),
            (
                "setHeaderRoute two match values",
                canary_tr(
                    json!({"istio": {"virtualService": {"name": "vs"}}, "managedRoutes": [{"name": "h"}]}),
                    header(json!({"exact": "chrome", "regex": "chrome(.*)"})),
                ),
                vec![s(
                    "spec.strategy.steps[0].setHeaderRoute.match[0]: Invalid value: &StringMatch{Exact:chrome,Prefix:,Regex:chrome(.*),}: StringMatch match value must have exactly one of the following: exact, regex, prefix",
                )],
            ),
            (
                "setHeaderRoute missing value",
                canary_tr(
                    json!({"istio": {"virtualService": {"name": "vs"}}, "managedRoutes": [{"name": "h"}]}),
                    header(Value::Null),
                ),
                vec![s(
                    "spec.strategy.steps[0].setHeaderRoute.match[0]: Invalid value: null: StringMatch value missed, match value must have one of the following: exact, regex, prefix",
                )],
            ),
            (
                "setHeaderRoute ALB prefix",
                canary_tr(
                    json!({"alb": {"ingress": "i", "servicePort": 80}, "managedRoutes": [{"name": "h"}]}),
                    header(json!({"prefix": "chrome"})),
                ),
                vec![s(
                    "spec.strategy.steps[0].setHeaderRoute.match[0]: Invalid value: &StringMatch{Exact:,Prefix:chrome,Regex:,}: SetHeaderRoute match value invalid. ALB supports 'exact' value only",
                )],
            ),
            (
                "setMirrorRoute with nginx",
                canary_tr(
                    json!({"nginx": {"stableIngress": "i"}, "managedRoutes": [{"name": "m"}]}),
                    json!([{"setMirrorRoute": {"name": "m", "percentage": 50}}]),
                ),
                vec![s(
                    "spec.strategy.steps[0].setMirrorRoute: Invalid value: &SetMirrorRoute{Name:m,Match:[]RouteMatch{},Percentage:*50,}: SetMirrorRoute requires TrafficRouting, supports Istio and Plugins",
                )],
            ),
            (
                "setMirrorRoute two method values",
                canary_tr(
                    json!({"istio": {"virtualService": {"name": "vs"}}, "managedRoutes": [{"name": "m"}]}),
                    json!([{"setMirrorRoute": {"name": "m", "match": [{"method": {"exact": "test", "prefix": "test"}}]}}]),
                ),
                vec![
                    s(
                        "spec.strategy.steps[0].setMirrorRoute.match[0]: Invalid value: &StringMatch{Exact:test,Prefix:test,Regex:,}: StringMatch match value must have exactly one of the following: exact, regex, prefix",
                    ),
                    s(
                        "spec.strategy.steps[0].setMirrorRoute.match[0]: Invalid value: &StringMatch{Exact:test,Prefix:test,Regex:,}: StringMatch match value must have exactly one of the following: exact, regex, prefix",
                    ),
                ],
            ),
            (
                "setMirrorRoute with plugins",
                canary_tr(
                    json!({"plugins": {"p": {}}, "managedRoutes": [{"name": "m"}]}),
                    json!([{"setMirrorRoute": {"name": "m", "match": [{"method": {"exact": "GET"}, "path": {"prefix": "/api"}}]}}]),
                ),
                vec![],
            ),
            (
                "experiment weight without traffic routing",
                canary(
                    json!({"steps": [{"experiment": {"templates": [{"name": "t", "specRef": "canary", "weight": 20}]}}]}),
                ),
                vec![s(
                    "spec.strategy.steps[0].experiment.templates[0].weight: Invalid value: 20: Experiment template weight cannot be set unless TrafficRouting is enabled",
                )],
            ),
            (
                "experiment weight with nginx",
                canary_tr(
                    json!({"nginx": {"stableIngress": "i"}}),
                    json!([{"experiment": {"templates": [{"name": "t", "specRef": "canary", "weight": 20}]}}]),
                ),
                vec![s(
                    "spec.strategy.steps[0].experiment.templates[0].weight: Invalid value: 20: Experiment template weight is only available for TrafficRouting with SMI, ALB, Istio and Plugins at this time",
                )],
            ),
            (
                "experiment weight with SMI",
                canary_tr(
                    json!({"smi": {}}),
                    json!([{"experiment": {"templates": [{"name": "t", "specRef": "canary", "weight": 20}]}}]),
                ),
                vec![],
            ),
            (
                "analysis argument field path",
                canary(
                    json!({"steps": [{"analysis": {"templates": [{"templateName": "t"}], "args": [
                {"name": "a", "valueFrom": {"fieldRef": {"fieldPath": "metadata.label['app']"}}}, {"name": "b", "value": "v"}]}}]}),
                ),
                vec![s(
                    "spec.strategy.steps[0].analyses: Invalid value: []v1alpha1.AnalysisRunArgument{v1alpha1.AnalysisRunArgument{Name:\"a\", Value:\"\", ValueFrom:&v1alpha1.ArgumentValueFrom{PodTemplateHashValue:(*v1alpha1.ValueFromPodTemplateHash)(nil), FieldRef:&v1alpha1.FieldRef{FieldPath:\"metadata.label['app']\"}}}, v1alpha1.AnalysisRunArgument{Name:\"b\", Value:\"v\", ValueFrom:(*v1alpha1.ArgumentValueFrom)(nil)}}: Analyses arguments must refer to valid object metadata supported by downwardAPI",
                )],
            ),
            (
                "analysis argument field paths supported",
                canary(
                    json!({"steps": [{"experiment": {"templates": [{"name": "t", "specRef": "canary"}], "analyses": [
                {"name": "a", "templateName": "t", "args": [{"name": "a", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
                    {"name": "b", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                    {"name": "c", "valueFrom": {"fieldRef": {"fieldPath": "spec.replicas"}}},
                    {"name": "d", "valueFrom": {"podTemplateHashValue": "Latest"}}]}]}}]}),
                ),
                vec![],
            ),
            (
                "ephemeral containers",
                json!({"spec": {"template": {"spec": {"ephemeralContainers": [{"name": "c", "image": "i"}]}}}}),
                vec![
                    s("spec.template.spec.ephemeralContainers[0].name: Duplicate value: \"c\""),
                    s(
                        "spec.template.spec.ephemeralContainers: Forbidden: ephemeral containers not allowed in pod template",
                    ),
                ],
            ),
        ]
    }

    #[test]
    fn every_rule_gives_upstreams_message() {
        let mut failures = Vec::new();
        let all = cases();
        for (name, patch, want) in &all {
            let got = errors(patch.clone());
            if &got != want {
                failures.push(format!("{name}:\n  want {want:#?}\n  got  {got:#?}"));
            }
        }
        assert!(
            failures.is_empty(),
            "{} of {} cases failed:\n{}",
            failures.len(),
            all.len(),
            failures.join("\n")
        );
    }

    #[test]
    fn routers_that_need_canary_and_stable_services() {
        let need = [
            json!({"alb": {"ingress": "i", "servicePort": 80, "rootService": "root"}}),
            json!({"istio": {"virtualService": {"name": "vs"}}}),
            json!({"smi": {}}),
            json!({"apisix": {"route": {"name": "r"}}}),
            json!({"ambassador": {"mappings": ["m"]}}),
            json!({"nginx": {"stableIngress": "i"}}),
            json!({"appMesh": {}}),
            json!({"traefik": {"weightedTraefikServiceName": "t"}}),
            json!({"traefik": {"weightedTraefikServiceName": "t"}, "istio": {"destinationRule": {"name": "d"}}}),
            json!({"appMesh": {}, "plugins": {"p": {}}}),
            json!({"istio": {}, "plugins": {"p": {}}}),
        ];
        for tr in need {
            let got = errors(canary(
                json!({"canaryService": "c", "trafficRouting": tr.clone()}),
            ));
            assert_eq!(
                got,
                vec![
                    "spec.strategy.stableService: Invalid value: \"\": Canary service and Stable service must to be set to use Traffic Routing"
                ],
                "{tr}"
            );
        }
        for tr in [
            json!({"plugins": {"p": {}}}),
            json!({"istio": {"destinationRule": {"name": "d"}}, "plugins": {"p": {}}}),
        ] {
            assert_eq!(
                errors(canary(json!({"trafficRouting": tr.clone()}))),
                Vec::<String>::new(),
                "{tr}"
            );
        }
    }

    #[test]
    fn first_error_follows_upstreams_order() {
        let errs = errors(json!({"spec": {"replicas": -2, "minReadySeconds": 700,
            "strategy": {"canary": {"steps": [{"setWeight": 200}], "maxSurge": 0, "maxUnavailable": 0}}}}));
        assert_eq!(
            errs,
            vec![
                "spec.replicas: Invalid value: -2: must be greater than or equal to 0",
                "spec.progressDeadlineSeconds: Invalid value: 600: must be greater than minReadySeconds",
                "spec.strategy.maxSurge: Invalid value: 0: MaxSurge and MaxUnavailable both can not be zero",
                "spec.strategy.steps[0].setWeight: Invalid value: 200: SetWeight needs to be between 0 and 100",
            ]
        );
    }

    #[test]
    fn values_print_as_go_prints_them() {
        assert_eq!(go_quote("foo"), "\"foo\"");
        assert_eq!(
            go_quote("a\"b\\c\nd\te\u{1}\u{7f}é"),
            "\"a\\\"b\\\\c\\nd\\te\\x01\\x7fé\""
        );
        assert_eq!(go_quote("\u{a0}\u{2028}"), "\"\\u00a0\\u2028\"");
        assert_eq!(go_string_map(None), "map[string]string(nil)");
        let map: BTreeMap<String, String> =
            [("b".into(), "2".into()), ("a".into(), "1".into())].into();
        assert_eq!(
            go_string_map(Some(&map)),
            "map[string]string{\"a\":\"1\", \"b\":\"2\"}"
        );
        assert_eq!(
            FieldError::duplicate("p", go_quote("x")).to_string(),
            "p: Duplicate value: \"x\""
        );
        assert_eq!(
            FieldError::too_long("p", 5).to_string(),
            "p: Too long: must have at most 5 bytes"
        );
        assert_eq!(
            FieldError::required("p", "").to_string(),
            "p: Required value"
        );
        let rm = RouteMatch {
            method: Some(StringMatch {
                exact: Some("GET".into()),
                ..Default::default()
            }),
            path: None,
            headers: Some(
                [(
                    "h".into(),
                    StringMatch {
                        prefix: Some("p".into()),
                        ..Default::default()
                    },
                )]
                .into(),
            ),
        };
        assert_eq!(
            route_match_string(&rm),
            "&RouteMatch{Method:&StringMatch{Exact:GET,Prefix:,Regex:,},Path:nil,Headers:map[string]StringMatch{h: { p },},}"
        );
    }

    #[test]
    fn quantities_parse_as_kubernetes_parses_them() {
        for ok in [
            "0", "1", "100m", "0.5", ".5", "1.", "1Gi", "1Ki", "5E", "1e3", "1E-3", "+1", "-0",
            "0.000",
        ] {
            assert_eq!(parse_quantity(ok), Ok(false), "{ok}");
        }
        for neg in ["-1", "-100m", "-0.5Gi"] {
            assert_eq!(parse_quantity(neg), Ok(true), "{neg}");
        }
        assert_eq!(parse_quantity("invalid"), Err(QUANTITY_FORMAT_WRONG));
        assert_eq!(parse_quantity(""), Err(QUANTITY_FORMAT_WRONG));
        assert_eq!(parse_quantity("1 Gi"), Err(QUANTITY_FORMAT_WRONG));
        assert_eq!(parse_quantity("1Gb"), Err(QUANTITY_FORMAT_WRONG));
        assert_eq!(
            parse_quantity("1kk"),
            Err("unable to parse quantity's suffix")
        );
        assert_eq!(
            parse_quantity("Mi"),
            Err("unable to parse numeric part of quantity")
        );
    }

    #[test]
    fn names_follow_kubernetes_rules() {
        assert!(is_qualified_name("app").is_empty());
        assert!(is_qualified_name("example.com/My_Name-1").is_empty());
        assert_eq!(
            is_qualified_name("/x"),
            vec!["prefix part must be non-empty".to_owned()]
        );
        assert_eq!(is_qualified_name("a/b/c").len(), 1);
        assert_eq!(
            is_qualified_name(&"a".repeat(64)),
            vec![format!("name part {}", max_len_error(63))]
        );
        assert!(is_valid_label_value("").is_empty());
        assert!(is_dns1123_label("my-name").is_empty());
        assert!(!is_dns1123_label("-x").is_empty());
        assert!(metadata_field_path_supported(
            "metadata.annotations['Example.com/Key']"
        ));
        assert!(!metadata_field_path_supported("metadata.labels['a b']"));
        assert!(!metadata_field_path_supported("metadata.generation"));
    }

    #[test]
    fn pause_durations_follow_upstream() {
        let p = |d: Value| -> RolloutPause {
            serde_json::from_value(json!({ "duration": d })).expect("pause")
        };
        assert_eq!(pause_duration_seconds(&RolloutPause::default()), 0);
        assert_eq!(pause_duration_seconds(&p(json!(30))), 30);
        assert_eq!(pause_duration_seconds(&p(json!("45"))), 45);
        assert_eq!(pause_duration_seconds(&p(json!("1h30m"))), 5400);
        assert_eq!(pause_duration_seconds(&p(json!("1.5s"))), 1);
        assert_eq!(pause_duration_seconds(&p(json!(" 30"))), -1);
        assert_eq!(pause_duration_seconds(&p(json!("3000000000"))), -1);
        assert_eq!(pause_duration_seconds(&p(json!(""))), -1);
    }

    #[test]
    fn template_resolved_from_a_reference_is_validated() {
        let mut ro = rollout(
            json!({"spec": {"workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "d"}}}),
        );
        assert!(validate_rollout_spec(&ro, true).is_empty());
        if let Some(t) = ro.spec.template.as_mut() {
            t.spec = None;
        }
        let errs: Vec<String> = validate_rollout_spec(&ro, true)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(errs, vec!["spec.template.spec.containers: Required value"]);
    }

    #[test]
    fn odd_inputs_do_not_panic() {
        let odd = [
            json!({}),
            json!({"spec": {}}),
            json!({"spec": {"strategy": {"canary": {"steps": [{}, {"experiment": {}}, {"setHeaderRoute": {}}, {"setMirrorRoute": {"match": [{}]}},
                {"pause": {"duration": "9999999999999999999h"}}, {"pause": {"duration": "-"}}, {"analysis": {"args": [{"valueFrom": {"fieldRef": {}}}]}}],
                "trafficRouting": {"maxTrafficWeight": -2147483648, "managedRoutes": []}, "pingPong": {}, "antiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": {}},
                "maxSurge": "99999999999999999999%", "maxUnavailable": "%"}}}}),
            json!({"spec": {"replicas": -2147483648, "minReadySeconds": 2147483647, "progressDeadlineSeconds": -2147483648,
                "selector": {"matchExpressions": [{"key": "", "operator": ""}]},
                "template": {"metadata": {"labels": {"": ""}, "annotations": {"/": "x"}},
                    "spec": {"containers": [{"name": "", "resources": {"limits": {"cpu": "1e99999999999999999999"}}}],
                    "ephemeralContainers": [{"name": "", "resources": {"requests": {"": "."}}}], "restartPolicy": ""}},
                "strategy": {"blueGreen": {"scaleDownDelayRevisionLimit": 2147483647, "antiAffinity": {}}}}}),
        ];
        for v in odd {
            let mut ro = base();
            if let Some(spec) = ro.get_mut("spec") {
                *spec = json!({});
            }
            merge(&mut ro, &v);
            let ro: Rollout = serde_json::from_value(ro).expect("deserialises");
            assert!(!validate_rollout(&ro).is_empty());
        }
    }
}
