//! The Rollout rules: upstream's `ValidateRollout`, rule for rule and in the same order.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::api::{
    AnalysisRunArgument, AntiAffinity, BlueGreenStrategy, CanaryStep, CanaryStrategy, MangedRoutes,
    Rollout, RolloutPause, RolloutTrafficRouting, StringMatch, defaults, parse_go_duration,
};
use crate::plan::replicas::IntOrPercent;

use super::apimachinery::*;
use super::error::*;
use super::gofmt::*;
use super::messages as m;
use super::messages::missing_field;

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

pub(super) fn nonnegative(errs: &mut Vec<FieldError>, path: &str, value: i64) {
    if value < 0 {
        errs.push(FieldError::invalid(path, value, m::IS_NEGATIVE));
    }
}

pub(super) fn revision_history_limit(ro: &Rollout) -> i32 {
    ro.spec
        .revision_history_limit
        .unwrap_or(defaults::REVISION_HISTORY_LIMIT)
}

/// Upstream's `RolloutSpec.EmptyTemplate`: no template labels and no template annotations.
pub(super) fn empty_template(template: Option<&PodTemplateSpec>) -> bool {
    let meta = template.and_then(|t| t.metadata.as_ref());
    meta.and_then(|m| m.labels.as_ref())
        .is_none_or(BTreeMap::is_empty)
        && meta
            .and_then(|m| m.annotations.as_ref())
            .is_none_or(BTreeMap::is_empty)
}

/// Upstream calls the strategy functions with this base path (so `.canary`/`.blueGreen` never
/// appear in their errors' paths).
pub(super) const STRATEGY: &str = "spec.strategy";

pub(super) fn validate_strategy(ro: &Rollout, errs: &mut Vec<FieldError>) {
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

pub(super) fn validate_blue_green(
    ro: &Rollout,
    bg: &BlueGreenStrategy,
    errs: &mut Vec<FieldError>,
) {
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

pub(super) fn validate_anti_affinity(
    aa: Option<&AntiAffinity>,
    path: &str,
    errs: &mut Vec<FieldError>,
) {
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
pub(super) fn require_canary_stable_services(c: &CanaryStrategy) -> bool {
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

pub(super) fn has_plugins(tr: &RolloutTrafficRouting) -> bool {
    tr.plugins.as_ref().is_some_and(|p| !p.is_empty())
}

/// Upstream's `weightutil.MaxTrafficWeight`.
pub(super) fn max_traffic_weight(c: &CanaryStrategy) -> i32 {
    c.traffic_routing
        .as_ref()
        .and_then(|tr| tr.max_traffic_weight)
        .unwrap_or(100)
}

pub(super) fn validate_canary(c: &CanaryStrategy, errs: &mut Vec<FieldError>) {
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

pub(super) fn validate_step(
    c: &CanaryStrategy,
    i: usize,
    step: &CanaryStep,
    errs: &mut Vec<FieldError>,
) {
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

pub(super) fn route_in_managed_routes(
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
pub(super) fn alb_invalid_values(sm: Option<&StringMatch>, path: &str, errs: &mut Vec<FieldError>) {
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
pub(super) fn multiple_match_values(
    sm: Option<&StringMatch>,
    path: &str,
    errs: &mut Vec<FieldError>,
) {
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

pub(super) fn empty(s: &Option<String>) -> bool {
    s.as_deref().is_none_or(str::is_empty)
}

/// Upstream's `invalidMaxSurgeMaxUnavailable` (an unparseable string counts as 0, as upstream's
/// `IntValue` reads it).
pub(super) fn invalid_max_surge_max_unavailable(c: &CanaryStrategy, errs: &mut Vec<FieldError>) {
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
pub(super) fn go_int_or_percent_value(v: &IntOrString) -> i64 {
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
pub(super) fn go_atoi(s: &str) -> i64 {
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
pub(super) fn int_or_percent_parses(
    v: Option<&IntOrString>,
    path: &str,
    errs: &mut Vec<FieldError>,
) {
    if let Some(IntOrString::String(s)) = v
        && s.parse::<IntOrPercent>().is_err()
    {
        errs.push(FieldError::invalid(path, s, m::INVALID_INT_OR_PERCENT));
    }
}

/// Upstream's `RolloutPause.DurationSeconds`: no duration is 0; an integer string is seconds;
/// otherwise a Go duration (truncated to seconds); anything unparseable is -1.
pub(super) fn pause_duration_seconds(p: &RolloutPause) -> i64 {
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
pub(super) fn metadata_field_path_supported(fp: &str) -> bool {
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
pub(super) fn split_subscripted_path(fp: &str) -> Option<(&str, &str)> {
    let s = fp.strip_suffix("']")?;
    let (path, subscript) = s.split_once("['")?;
    (!path.is_empty()).then_some((path, subscript))
}

// ---------------------------------------------------------------------------------------------
