//! Upstream's validation message constants, verbatim.

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
pub const INVALID_STRING_MATCH_MISSED_VALUE: &str =
    "StringMatch value missed, match value must have one of the following: exact, regex, prefix";
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
pub const SCALE_DOWN_LIMIT_LARGER_THAN_REVISION_LIMIT: &str =
    "This rollout's revision history limit can not be smaller than the rollout's scale down limit";
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
pub const MISSED_ALB_ROOT_SERVICE: &str =
    "Root service field is required for the configuration with ALB and ping-pong feature enabled";
pub const PING_PONG_WITH_ROUTER_ONLY: &str =
    "Ping-pong feature works with the ALB, Istio, and plugin-based traffic routers only";
pub const STEP_ROUTE_NOT_IN_MANAGED_ROUTES: &str =
    "Steps define a route that does not exist in spec.strategy.canary.trafficRouting.managedRoutes";
/// Kubernetes' `IsNegativeErrorMsg`.
pub const IS_NEGATIVE: &str = "must be greater than or equal to 0";
/// Kubernetes' Deployment message for an unparseable int-or-percent.
pub const INVALID_INT_OR_PERCENT: &str = "must be an integer or percentage (e.g '5%')";

/// `MissingFieldMessage` with the field filled in.
pub fn missing_field(field: &str) -> String {
    MISSING_FIELD.replace("%s", field)
}
