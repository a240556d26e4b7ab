//! `Rollout`: a Deployment replacement with canary and blue-green strategies.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube_derive::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{AnalysisRunArgument, DryRun, MeasurementRetention};

/// RolloutSpec is the spec for a Rollout resource
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    crates(kube_core = "::kube_core"),
    group = "argoproj.io",
    version = "v1alpha1",
    kind = "Rollout",
    plural = "rollouts",
    singular = "rollout",
    shortname = "ro",
    namespaced,
    status = "RolloutStatus",
    derive = "PartialEq",
    derive = "Default",
    doc = "Rollout is a specification for a Rollout resource",
    scale(
        spec_replicas_path = ".spec.replicas",
        status_replicas_path = ".status.HPAReplicas",
        label_selector_path = ".status.selector"
    ),
    printcolumn = r#"{"name": "Desired", "type": "integer", "jsonPath": ".spec.replicas", "description": "Number of desired pods"}"#,
    printcolumn = r#"{"name": "Current", "type": "integer", "jsonPath": ".status.replicas", "description": "Total number of non-terminated pods targeted by this rollout"}"#,
    printcolumn = r#"{"name": "Up-to-date", "type": "integer", "jsonPath": ".status.updatedReplicas", "description": "Total number of non-terminated pods targeted by this rollout that have the desired template spec"}"#,
    printcolumn = r#"{"name": "Available", "type": "integer", "jsonPath": ".status.availableReplicas", "description": "Total number of available pods (ready for at least minReadySeconds) targeted by this rollout"}"#,
    printcolumn = r#"{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp", "description": "Time since resource was created"}"#
)]
#[serde(default, rename_all = "camelCase")]
pub struct RolloutSpec {
    /// Number of desired pods. Defaults to 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Label selector for pods; must match the pod template's labels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
    /// Template describes the pods that will be created (absent when `workloadRef` is used).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::api::pod_template_schema")]
    pub template: Option<PodTemplateSpec>,
    /// WorkloadRef holds a reference to a workload that provides the pod template
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workload_ref: Option<ObjectRef>,
    /// Minimum number of seconds for which a newly created pod should be ready without any of
    /// its containers crashing, for it to be considered available. Defaults to 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_ready_seconds: Option<i32>,
    /// The window in which a rollback will be fast tracked (fully promoted)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollback_window: Option<RollbackWindowSpec>,
    /// The deployment strategy to use to replace existing pods with new ones.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strategy: Option<RolloutStrategy>,
    /// The number of old ReplicaSets to retain. Defaults to 10.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision_history_limit: Option<i32>,
    /// Paused pauses the rollout at its current step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paused: Option<bool>,
    /// The maximum time in seconds for a rollout to make progress before it is considered
    /// to be failed. Defaults to 600s.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress_deadline_seconds: Option<i32>,
    /// ProgressDeadlineAbort is whether to abort the update when ProgressDeadlineSeconds is
    /// exceeded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress_deadline_abort: Option<bool>,
    /// RestartAt indicates when all the pods of a Rollout should be restarted
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restart_at: Option<Time>,
    /// Analysis configuration for the analysis runs to retain
    #[serde(skip_serializing_if = "Option::is_none")]
    pub analysis: Option<AnalysisRunStrategy>,
}

impl Rollout {
    /// The canary strategy, if this Rollout uses one.
    pub fn canary(&self) -> Option<&CanaryStrategy> {
        self.spec.strategy.as_ref()?.canary.as_ref()
    }

    /// The blue-green strategy, if this Rollout uses one.
    pub fn blue_green(&self) -> Option<&BlueGreenStrategy> {
        self.spec.strategy.as_ref()?.blue_green.as_ref()
    }

    /// The canary steps (empty when there are none or the strategy is not canary).
    pub fn canary_steps(&self) -> &[CanaryStep] {
        self.canary()
            .and_then(|c| c.steps.as_deref())
            .unwrap_or_default()
    }

    /// `spec.replicas`, or upstream's default of 1.
    pub fn replicas_or_default(&self) -> i32 {
        self.spec.replicas.unwrap_or(super::defaults::REPLICAS)
    }
}

/// ObjectRef holds a reference to a Kubernetes object
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
pub struct ObjectRef {
    /// API Version of the referent
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Kind of the referent
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Name of the referent
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Automatically scale down deployment: `never`, `onsuccess` or `progressively`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scale_down: Option<String>,
}

/// RollbackWindowSpec: how many revisions back a rollback is fast tracked
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
pub struct RollbackWindowSpec {
    /// Number of revisions
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revisions: Option<i32>,
}

/// AnalysisRunStrategy configuration for the analysis runs and experiments to retain
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
pub struct AnalysisRunStrategy {
    /// SuccessfulRunHistoryLimit limits the number of old successful analysis runs and
    /// experiments to be retained in a history
    #[serde(skip_serializing_if = "Option::is_none")]
    pub successful_run_history_limit: Option<i32>,
    /// UnsuccessfulRunHistoryLimit limits the number of old unsuccessful (Error, Failed,
    /// Inconclusive) analysis runs and experiments to be retained in a history.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unsuccessful_run_history_limit: Option<i32>,
}

/// RolloutStrategy defines strategy to apply during next rollout
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
pub struct RolloutStrategy {
    /// Blue-green strategy
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blue_green: Option<BlueGreenStrategy>,
    /// Canary strategy
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canary: Option<CanaryStrategy>,
}

/// BlueGreenStrategy defines parameters for Blue Green deployment
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
#[schemars(extend("required" = ["activeService"]))]
pub struct BlueGreenStrategy {
    /// Name of the service that the rollout modifies as the active service.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active_service: Option<String>,
    /// Name of the service that the rollout modifies as the preview service.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preview_service: Option<String>,
    /// PreviewReplicaCount is the number of replicas to run for the preview stack before the
    /// switchover.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preview_replica_count: Option<i32>,
    /// AutoPromotionEnabled indicates if the rollout should automatically promote the new
    /// ReplicaSet to the active service or enter a paused state. Defaults to true.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auto_promotion_enabled: Option<bool>,
    /// AutoPromotionSeconds is a duration in seconds in which to delay auto-promotion
    /// (default: 0), counted from the preview ReplicaSet becoming fully available.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auto_promotion_seconds: Option<i32>,
    /// MaxUnavailable The maximum number of pods that can be unavailable during a restart
    /// operation. Defaults to 25% of total replicas.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_unavailable: Option<IntOrString>,
    /// ScaleDownDelaySeconds adds a delay before scaling down the previous replicaset.
    /// Defaults to 30 seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scale_down_delay_seconds: Option<i32>,
    /// ScaleDownDelayRevisionLimit limits the number of old RS that can run at one time
    /// before getting scaled down
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scale_down_delay_revision_limit: Option<i32>,
    /// PrePromotionAnalysis configuration to run analysis before a selector switch
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pre_promotion_analysis: Option<RolloutAnalysis>,
    /// AntiAffinity enables anti-affinity rules for Blue Green deployment
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anti_affinity: Option<AntiAffinity>,
    /// PostPromotionAnalysis configuration to run analysis after a selector switch
    #[serde(skip_serializing_if = "Option::is_none")]
    pub post_promotion_analysis: Option<RolloutAnalysis>,
    /// PreviewMetadata specify labels and annotations which will be attached to the preview
    /// pods for the duration which they act as a preview pod
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preview_metadata: Option<PodTemplateMetadata>,
    /// ActiveMetadata specify labels and annotations which will be attached to the active
    /// pods for the duration which they act as an active pod
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active_metadata: Option<PodTemplateMetadata>,
    /// AbortScaleDownDelaySeconds adds a delay in second before scaling down the preview
    /// replicaset if update is aborted. 0 means not to scale down. Default is 30 second
    #[serde(skip_serializing_if = "Option::is_none")]
    pub abort_scale_down_delay_seconds: Option<i32>,
}

/// AntiAffinity defines which inter-pod scheduling rule to use for anti-affinity injection
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
pub struct AntiAffinity {
    /// Inject a preferred anti-affinity rule with the given weight
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preferred_during_scheduling_ignored_during_execution:
        Option<PreferredDuringSchedulingIgnoredDuringExecution>,
    /// Inject a required anti-affinity rule
    #[serde(skip_serializing_if = "Option::is_none")]
    pub required_during_scheduling_ignored_during_execution:
        Option<RequiredDuringSchedulingIgnoredDuringExecution>,
}

/// PreferredDuringSchedulingIgnoredDuringExecution defines the weight of the anti-affinity
/// injection
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
#[schemars(extend("required" = ["weight"]))]
pub struct PreferredDuringSchedulingIgnoredDuringExecution {
    /// Weight associated with matching the corresponding podAffinityTerm, in the range 1-100.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight: Option<i32>,
}

/// RequiredDuringSchedulingIgnoredDuringExecution: inject a required anti-affinity rule (no
/// fields)
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
pub struct RequiredDuringSchedulingIgnoredDuringExecution {}

/// CanaryStrategy defines parameters for a Replica Based Canary
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
pub struct CanaryStrategy {
    /// CanaryService holds the name of a service which selects pods with canary version and
    /// doesn't select any pods with stable version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canary_service: Option<String>,
    /// StableService holds the name of a service which selects pods with stable version and
    /// doesn't select any pods with canary version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stable_service: Option<String>,
    /// Steps define the order of phases to execute the canary deployment
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steps: Option<Vec<CanaryStep>>,
    /// TrafficRouting hosts all the supported service meshes supported to enable more
    /// fine-grained traffic routing
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traffic_routing: Option<RolloutTrafficRouting>,
    /// MaxUnavailable The maximum number of pods that can be unavailable during the update:
    /// an absolute number or a percentage (rounded down). Defaults to 25%.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_unavailable: Option<IntOrString>,
    /// MaxSurge The maximum number of pods that can be scheduled above the original number of
    /// pods: an absolute number or a percentage (rounded up). Defaults to 25%.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_surge: Option<IntOrString>,
    /// Analysis runs a separate analysisRun while all the steps execute. This is intended to
    /// be a continuous validation of the new ReplicaSet
    #[serde(skip_serializing_if = "Option::is_none")]
    pub analysis: Option<RolloutAnalysisBackground>,
    /// AntiAffinity enables anti-affinity rules for Canary deployment
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anti_affinity: Option<AntiAffinity>,
    /// CanaryMetadata specify labels and annotations which will be attached to the canary
    /// pods for the duration which they act as a canary
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canary_metadata: Option<PodTemplateMetadata>,
    /// StableMetadata specify labels and annotations which will be attached to the stable
    /// pods for the duration which they act as stable
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stable_metadata: Option<PodTemplateMetadata>,
    /// ScaleDownDelaySeconds adds a delay before scaling down the previous ReplicaSet when
    /// the canary strategy is used with traffic routing (default 30 seconds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scale_down_delay_seconds: Option<i32>,
    /// ScaleDownDelayRevisionLimit limits the number of old RS that can run at one time
    /// before getting scaled down
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scale_down_delay_revision_limit: Option<i32>,
    /// AbortScaleDownDelaySeconds adds a delay in second before scaling down the canary pods
    /// when update is aborted with traffic routing. 0 means canary pods are not scaled down.
    /// Default is 30 seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub abort_scale_down_delay_seconds: Option<i32>,
    /// DynamicStableScale is a traffic routing feature which dynamically scales the stable
    /// ReplicaSet to minimize total pods which are running during an update.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dynamic_stable_scale: Option<bool>,
    /// PingPongSpec holds the ping and pong services
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ping_pong: Option<PingPongSpec>,
    /// Assuming the desired number of pods in a stable or canary ReplicaSet is not zero, then
    /// make sure it is at least MinPodsPerReplicaSet for High Availability. Only applicable
    /// for TrafficRoutedCanary
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_pods_per_replica_set: Option<i32>,
    /// ReplicaProgressThreshold is the threshold number or percentage of pods that need to be
    /// available before a rollout promotion. Defaults to 100% of total replicas.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replica_progress_threshold: Option<ReplicaProgressThreshold>,
}

/// ReplicaProgressThreshold: how many pods must be available before promotion
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
#[schemars(extend("required" = ["type", "value"]))]
pub struct ReplicaProgressThreshold {
    /// Type is used to specify whether the replica progress threshold is a percentage
    /// (`Percent`) or a number (`Pods`).
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    /// Value contains the user-specified value for when Argo Rollouts can promote a canary to
    /// the next step. Must be greater than 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<i32>,
}

/// `replicaProgressThreshold.type` values.
pub mod replica_progress_threshold_type {
    /// Value is a percentage of the desired replicas.
    pub const PERCENT: &str = "Percent";
    /// Value is a pod count (upstream's constant; its docs say `Pod`, and upstream reads any
    /// type other than `Percent` as a pod count).
    pub const PODS: &str = "Pods";
}

/// PingPongSpec holds the ping and pong service names.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
#[schemars(extend("required" = ["pingService", "pongService"]))]
pub struct PingPongSpec {
    /// name of the ping service
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ping_service: Option<String>,
    /// name of the pong service
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pong_service: Option<String>,
}

/// CanaryStep defines a step of a canary deployment. Exactly one field should be set (checked
/// by validation, not by deserialisation).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
pub struct CanaryStep {
    /// SetWeight sets what percentage of the newRS should receive
    #[serde(skip_serializing_if = "Option::is_none")]
    pub set_weight: Option<i32>,
    /// Pause freezes the rollout by setting spec.Paused to true. A Rollout will resume when
    /// spec.Paused is reset to false.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pause: Option<RolloutPause>,
    /// Experiment defines the experiment object that should be created
    #[serde(skip_serializing_if = "Option::is_none")]
    pub experiment: Option<RolloutExperimentStep>,
    /// Analysis defines the AnalysisRun that will run for a step
    #[serde(skip_serializing_if = "Option::is_none")]
    pub analysis: Option<RolloutAnalysis>,
    /// SetCanaryScale defines how to scale the newRS without changing traffic weight
    #[serde(skip_serializing_if = "Option::is_none")]
    pub set_canary_scale: Option<SetCanaryScale>,
    /// SetHeaderRoute defines the route with specified header name to send 100% of traffic to
    /// the canary service
    #[serde(skip_serializing_if = "Option::is_none")]
    pub set_header_route: Option<SetHeaderRoute>,
    /// SetMirrorRoute Mirrors traffic that matches rules to a particular destination
    #[serde(skip_serializing_if = "Option::is_none")]
    pub set_mirror_route: Option<SetMirrorRoute>,
    /// Plugin defines a plugin to execute for a step
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plugin: Option<PluginStep>,
}

/// PluginStep runs a step plugin
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
#[schemars(extend("required" = ["name"]))]
pub struct PluginStep {
    /// Name of the step plugin
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Config is the configuration object for the specified plugin
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::api::preserve_unknown")]
    pub config: Option<serde_json::Value>,
}

/// RolloutPause defines a pause stage for a rollout
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
pub struct RolloutPause {
    /// Duration the amount of time to wait before moving to the next step: integer seconds,
    /// or a string with a unit (`30s`, `5m`, `1h`). Absent means pause indefinitely.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<IntOrString>,
}

impl RolloutPause {
    /// The pause duration in seconds: `None` when no duration is set (an indefinite pause),
    /// `Some(Err(..))` when the duration cannot be parsed.
    pub fn duration_seconds(&self) -> Option<Result<i64, PauseDurationError>> {
        self.duration.as_ref().map(duration_seconds)
    }
}

/// A pause duration that is neither a number of seconds nor a Go duration.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {0:?}")]
pub struct PauseDurationError(pub String);

/// Parse an int-or-string duration in seconds, as upstream does: an integer is seconds; a
/// string is either a bare integer (seconds) or a Go-style duration (`1h30m`, `30s`, `500ms`).
/// Fractions of a second are truncated.
pub fn duration_seconds(d: &IntOrString) -> Result<i64, PauseDurationError> {
    match d {
        IntOrString::Int(i) => Ok(i64::from(*i)),
        IntOrString::String(s) => {
            if let Ok(i) = s.trim().parse::<i64>() {
                return Ok(i);
            }
            parse_go_duration(s)
                .map(|ns| (ns / 1_000_000_000) as i64)
                .ok_or_else(|| PauseDurationError(s.clone()))
        }
    }
}

/// Parse a Go `time.ParseDuration` string into nanoseconds (e.g. `1h2m3.5s`, `-5m`, `300ms`).
pub fn parse_go_duration(s: &str) -> Option<i128> {
    let s = s.trim();
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_end == 0 {
            return None;
        }
        let value: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_end];
        rest = &rest[unit_end..];
        let ns_per_unit = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += value * ns_per_unit;
    }
    let ns = total.round() as i128;
    Some(if neg { -ns } else { ns })
}

/// `status.pauseConditions[].reason` values.
pub mod pause_reason {
    /// Paused because an analysis run was inconclusive.
    pub const INCONCLUSIVE_ANALYSIS: &str = "InconclusiveAnalysisRun";
    /// Paused because an experiment was inconclusive.
    pub const INCONCLUSIVE_EXPERIMENT: &str = "InconclusiveExperiment";
    /// Paused by a canary pause step.
    pub const CANARY_PAUSE_STEP: &str = "CanaryPauseStep";
    /// Paused before promoting a blue-green rollout.
    pub const BLUE_GREEN_PAUSE: &str = "BlueGreenPause";
}

/// SetCanaryScale defines how to scale the newRS without changing traffic weight
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
pub struct SetCanaryScale {
    /// Weight sets the percentage of replicas the newRS should have
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight: Option<i32>,
    /// Replicas sets the number of replicas the newRS should have
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// MatchTrafficWeight cancels out previously set Replicas or Weight, effectively
    /// activating SetWeight
    #[serde(skip_serializing_if = "Option::is_none")]
    pub match_traffic_weight: Option<bool>,
}

/// SetHeaderRoute defines the route with specified header name to send 100% of traffic to the
/// canary service
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
pub struct SetHeaderRoute {
    /// Name of the route; must be listed in `trafficRouting.managedRoutes`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Header matches (an empty list removes the route)
    #[serde(rename = "match", skip_serializing_if = "Option::is_none")]
    pub match_: Option<Vec<HeaderRoutingMatch>>,
}

/// HeaderRoutingMatch matches one request header
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
#[schemars(extend("required" = ["headerName", "headerValue"]))]
pub struct HeaderRoutingMatch {
    /// HeaderName the name of the request header
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header_name: Option<String>,
    /// HeaderValue the value of the header
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header_value: Option<StringMatch>,
}

/// SetMirrorRoute mirrors traffic that matches rules to a particular destination
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
#[schemars(extend("required" = ["name"]))]
pub struct SetMirrorRoute {
    /// Name of the route; must be listed in `trafficRouting.managedRoutes`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Match contains a list of rules that, if matched, mirror the traffic to the services
    #[serde(rename = "match", skip_serializing_if = "Option::is_none")]
    pub match_: Option<Vec<RouteMatch>>,
    /// Percentage of the matched traffic to mirror
    #[serde(skip_serializing_if = "Option::is_none")]
    pub percentage: Option<i32>,
}

/// RouteMatch: request matching rules for a mirror route
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
pub struct RouteMatch {
    /// Method What http methods should be mirrored
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<StringMatch>,
    /// Path What url paths should be mirrored
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<StringMatch>,
    /// Headers What request with matching headers should be mirrored
    #[serde(skip_serializing_if = "Option::is_none")]
    pub headers: Option<BTreeMap<String, StringMatch>>,
}

/// StringMatch: exact, prefix or regular expression matching
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
pub struct StringMatch {
    /// Exact The string must match exactly
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exact: Option<String>,
    /// Prefix The string will be prefixed matched
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// Regex The string will be regular expression matched
    #[serde(skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
}

/// RolloutAnalysis defines a template that is used to create an AnalysisRun
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
pub struct RolloutAnalysis {
    /// Templates reference to a list of analysis templates to combine for an AnalysisRun
    #[serde(skip_serializing_if = "Option::is_none")]
    pub templates: Option<Vec<AnalysisTemplateRef>>,
    /// Args the arguments that will be added to the AnalysisRuns
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<AnalysisRunArgument>>,
    /// DryRun object contains the settings for running the analysis in Dry-Run mode
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<Vec<DryRun>>,
    /// MeasurementRetention object contains the settings for retaining the number of
    /// measurements during the analysis
    #[serde(skip_serializing_if = "Option::is_none")]
    pub measurement_retention: Option<Vec<MeasurementRetention>>,
    /// AnalysisRunMetadata labels and annotations that will be added to the AnalysisRuns
    #[serde(skip_serializing_if = "Option::is_none")]
    pub analysis_run_metadata: Option<AnalysisRunMetadata>,
}

/// RolloutAnalysisBackground defines a template that is used to create a background
/// AnalysisRun
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
pub struct RolloutAnalysisBackground {
    /// The analysis (fields inline, as upstream)
    #[serde(flatten)]
    pub analysis: RolloutAnalysis,
    /// StartingStep indicates which step the background analysis should start on. Defaults
    /// to 0
    #[serde(skip_serializing_if = "Option::is_none")]
    pub starting_step: Option<i32>,
}

/// A reference to an AnalysisTemplate (or ClusterAnalysisTemplate)
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
pub struct AnalysisTemplateRef {
    /// TemplateName name of template to use in AnalysisRun
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template_name: Option<String>,
    /// Whether to look for the templateName at cluster scope or namespace scope
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_scope: Option<bool>,
}

/// Upstream's name for [`AnalysisTemplateRef`] in rollouts.
pub type RolloutAnalysisTemplate = AnalysisTemplateRef;

/// PodTemplateMetadata extra labels and annotations to add to pods
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
pub struct PodTemplateMetadata {
    /// Labels to add
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    /// Annotations to add
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// AnalysisRunMetadata extra labels and annotations to add to the AnalysisRun
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
pub struct AnalysisRunMetadata {
    /// Labels to add to the AnalysisRun
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    /// Annotations to add to the AnalysisRun
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// RolloutExperimentStep defines a template that is used to create an experiment for a step
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
#[schemars(extend("required" = ["templates"]))]
pub struct RolloutExperimentStep {
    /// Templates what templates should be added to the experiment
    #[serde(skip_serializing_if = "Option::is_none")]
    pub templates: Option<Vec<RolloutExperimentTemplate>>,
    /// Duration is a duration string (e.g. 30s, 5m, 1h) that the experiment should run for
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    /// Analyses reference which analysis templates to run with the experiment
    #[serde(skip_serializing_if = "Option::is_none")]
    pub analyses: Option<Vec<RolloutExperimentStepAnalysisTemplateRef>>,
    /// DryRun object contains the settings for running the analysis in Dry-Run mode
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<Vec<DryRun>>,
    /// AnalysisRunMetadata labels and annotations that will be added to the AnalysisRuns
    #[serde(skip_serializing_if = "Option::is_none")]
    pub analysis_run_metadata: Option<AnalysisRunMetadata>,
    /// ScaleDownDelaySeconds: how long to wait before scaling down the experiment's
    /// ReplicaSets
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scale_down_delay_seconds: Option<i32>,
}

/// An analysis to run within a rollout experiment step
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
#[schemars(extend("required" = ["name", "templateName"]))]
pub struct RolloutExperimentStepAnalysisTemplateRef {
    /// Name is a name for this analysis template invocation
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// TemplateName reference of the AnalysisTemplate name used by the Experiment to create
    /// the run
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template_name: Option<String>,
    /// Whether to look for the templateName at cluster scope or namespace scope
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_scope: Option<bool>,
    /// Args the arguments that will be added to the AnalysisRuns
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<AnalysisRunArgument>>,
    /// RequiredForCompletion blocks the Experiment from completing until the analysis has
    /// completed
    #[serde(skip_serializing_if = "Option::is_none")]
    pub required_for_completion: Option<bool>,
}

/// RolloutExperimentTemplate defines the template used to create experiments for the
/// Rollout's experiment canary step
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
#[schemars(extend("required" = ["name", "specRef"]))]
pub struct RolloutExperimentTemplate {
    /// Name description of template that passed to the template
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// SpecRef indicates where the rollout should get the RS template from: `canary` or
    /// `stable`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spec_ref: Option<String>,
    /// Replicas replica count for the template
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Metadata sets labels and annotations to use for the RS created from the template
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<PodTemplateMetadata>,
    /// Selector overrides the selector to be used for the template's ReplicaSet
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
    /// Weight sets the percentage of traffic the template's replicas should receive
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight: Option<i32>,
    /// Service controls the optionally generated service
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<TemplateService>,
}

/// `specRef` values.
pub mod spec_ref {
    /// Take the template from the canary (new) ReplicaSet.
    pub const CANARY: &str = "canary";
    /// Take the template from the stable ReplicaSet.
    pub const STABLE: &str = "stable";
}

/// TemplateService: the Service generated for an experiment template
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
pub struct TemplateService {
    /// Name of the Service generated for the experiment
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// RolloutTrafficRouting hosts the configuration of every supported traffic router
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
pub struct RolloutTrafficRouting {
    /// Istio holds Istio specific configuration to route traffic
    #[serde(skip_serializing_if = "Option::is_none")]
    pub istio: Option<IstioTrafficRouting>,
    /// Nginx holds Nginx Ingress specific configuration to route traffic
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nginx: Option<NginxTrafficRouting>,
    /// ALB holds ALB Ingress specific configuration to route traffic
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alb: Option<AlbTrafficRouting>,
    /// SMI holds TrafficSplit specific configuration to route traffic
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smi: Option<SmiTrafficRouting>,
    /// Ambassador holds specific configuration to use Ambassador to route traffic
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ambassador: Option<AmbassadorTrafficRouting>,
    /// AppMesh holds specific configuration to use AppMesh to route traffic
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_mesh: Option<AppMeshTrafficRouting>,
    /// Traefik holds specific configuration to use Traefik to route traffic
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traefik: Option<TraefikTrafficRouting>,
    /// ManagedRoutes A list of HTTP routes that Argo Rollouts manages, the order of this
    /// array also becomes the precedence in the upstream traffic router.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub managed_routes: Option<Vec<MangedRoutes>>,
    /// Apisix holds specific configuration to use Apisix to route traffic
    #[serde(skip_serializing_if = "Option::is_none")]
    pub apisix: Option<ApisixTrafficRouting>,
    /// Plugins holds specific configuration that traffic router plugins can use for routing
    /// traffic, keyed by plugin name
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::api::preserve_unknown")]
    pub plugins: Option<BTreeMap<String, serde_json::Value>>,
    /// MaxTrafficWeight: the total weight traffic is split over (default 100)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_traffic_weight: Option<i32>,
}

/// A route managed by the rollout (upstream's spelling of the type name)
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
#[schemars(extend("required" = ["name"]))]
pub struct MangedRoutes {
    /// Name of the route
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// TraefikTrafficRouting defines the configuration required to use Traefik as traffic router
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
#[schemars(extend("required" = ["weightedTraefikServiceName"]))]
pub struct TraefikTrafficRouting {
    /// Name of the weighted Traefik service used to route traffic to the service
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weighted_traefik_service_name: Option<String>,
}

/// ApisixTrafficRouting defines the configuration required to use APISIX as traffic router
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
pub struct ApisixTrafficRouting {
    /// Route references an Apisix Route to modify to shape traffic
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<ApisixRoute>,
}

/// ApisixRoute holds information on the APISIX Route the rollout needs to modify
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
#[schemars(extend("required" = ["name"]))]
pub struct ApisixRoute {
    /// Name of the APISIX Route
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Rules: the APISIX Route HTTP rules used to route traffic to the service
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rules: Option<Vec<String>>,
}

/// AmbassadorTrafficRouting defines the configuration required to use Ambassador as traffic
/// router
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
#[schemars(extend("required" = ["mappings"]))]
pub struct AmbassadorTrafficRouting {
    /// Mappings refer to the name of the Ambassador Mappings used to route traffic to the
    /// service
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mappings: Option<Vec<String>>,
}

/// SmiTrafficRouting configuration for TrafficSplit Custom Resource to control traffic routing
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
pub struct SmiTrafficRouting {
    /// RootService holds the name of that clients use to communicate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root_service: Option<String>,
    /// TrafficSplitName holds the name of the TrafficSplit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traffic_split_name: Option<String>,
}

/// NginxTrafficRouting configuration for Nginx ingress controller to control traffic routing
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
pub struct NginxTrafficRouting {
    /// AnnotationPrefix has to match the configured annotation prefix on the nginx ingress
    /// controller
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotation_prefix: Option<String>,
    /// StableIngress refers to the name of an `Ingress` resource in the same namespace as the
    /// `Rollout`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stable_ingress: Option<String>,
    /// StableIngresses refers to the names of `Ingress` resources in the same namespace as
    /// the `Rollout` in a multi ingress scenario
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stable_ingresses: Option<Vec<String>>,
    /// Annotations added to the generated canary ingress
    #[serde(skip_serializing_if = "Option::is_none")]
    pub additional_ingress_annotations: Option<BTreeMap<String, String>>,
    /// Canary ingress annotations (without the annotation prefix)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canary_ingress_annotations: Option<BTreeMap<String, String>>,
}

/// AlbTrafficRouting configuration for ALB ingress controller to control traffic routing
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
#[schemars(extend("required" = ["servicePort"]))]
pub struct AlbTrafficRouting {
    /// Ingress refers to the name of an `Ingress` resource in the same namespace as the
    /// `Rollout`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ingress: Option<String>,
    /// Ingresses refers to the name of `Ingress` resources in the same namespace as the
    /// `Rollout` in a multi ingress scenario
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ingresses: Option<Vec<String>>,
    /// ServicePort refers to the port that the Ingress action should route traffic to
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_port: Option<i32>,
    /// RootService references the service in the ingress to the controller should add the
    /// action to
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root_service: Option<String>,
    /// AnnotationPrefix has to match the configured annotation prefix on the alb ingress
    /// controller
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotation_prefix: Option<String>,
    /// StickinessConfig refers to the duration-based stickiness of the target groups
    /// associated with an `Ingress`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stickiness_config: Option<StickinessConfig>,
}

/// StickinessConfig: duration-based target group stickiness
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
#[schemars(extend("required" = ["durationSeconds", "enabled"]))]
pub struct StickinessConfig {
    /// Whether stickiness is enabled
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Stickiness duration in seconds
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<i64>,
}

/// IstioTrafficRouting configuration for Istio service mesh to enable fine grain configuration
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
pub struct IstioTrafficRouting {
    /// VirtualService references an Istio VirtualService to modify to shape traffic
    #[serde(skip_serializing_if = "Option::is_none")]
    pub virtual_service: Option<IstioVirtualService>,
    /// DestinationRule references an Istio DestinationRule to modify to shape traffic
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination_rule: Option<IstioDestinationRule>,
    /// VirtualServices references a list of Istio VirtualService to modify to shape traffic
    #[serde(skip_serializing_if = "Option::is_none")]
    pub virtual_services: Option<Vec<IstioVirtualService>>,
}

/// IstioVirtualService holds information on the virtual service the rollout needs to modify
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
#[schemars(extend("required" = ["name"]))]
pub struct IstioVirtualService {
    /// Name holds the name of the VirtualService
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A list of HTTP routes within VirtualService to edit. If omitted, VirtualService must
    /// have a single route of this type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub routes: Option<Vec<String>>,
    /// A list of TLS/HTTPS routes within VirtualService to edit. If omitted, VirtualService
    /// must have a single route of this type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_routes: Option<Vec<TlsRoute>>,
    /// A list of TCP routes within VirtualService to edit. If omitted, VirtualService must
    /// have a single route of this type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp_routes: Option<Vec<TcpRoute>>,
}

/// TlsRoute identifies a virtual service TLS/HTTPS route whose weights are changed
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
pub struct TlsRoute {
    /// Port number of the TLS Route desired to be matched
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<i64>,
    /// SNI hosts of the TLS Route desired to be matched
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sni_hosts: Option<Vec<String>>,
}

/// TcpRoute identifies a virtual service TCP route whose weights are changed
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
pub struct TcpRoute {
    /// Port number of the TCP Route desired to be matched
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<i64>,
}

/// IstioDestinationRule is a reference to an Istio DestinationRule to modify and shape traffic
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
#[schemars(extend("required" = ["canarySubsetName", "name", "stableSubsetName"]))]
pub struct IstioDestinationRule {
    /// Name holds the name of the DestinationRule
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// CanarySubsetName is the subset name to modify labels with canary ReplicaSet pod
    /// template hash value
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canary_subset_name: Option<String>,
    /// StableSubsetName is the subset name to modify labels with stable ReplicaSet pod
    /// template hash value
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stable_subset_name: Option<String>,
    /// Additional subsets whose labels are left untouched
    #[serde(skip_serializing_if = "Option::is_none")]
    pub additional_subset_names: Option<Vec<String>>,
}

/// AppMeshTrafficRouting configuration for AWS AppMesh service mesh
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
pub struct AppMeshTrafficRouting {
    /// VirtualService references an AppMesh VirtualService and VirtualRouter to modify to
    /// shape traffic
    #[serde(skip_serializing_if = "Option::is_none")]
    pub virtual_service: Option<AppMeshVirtualService>,
    /// VirtualNodeGroup references an AppMesh Route targets that are formed by a set of
    /// VirtualNodes that are used to shape traffic
    #[serde(skip_serializing_if = "Option::is_none")]
    pub virtual_node_group: Option<AppMeshVirtualNodeGroup>,
}

/// AppMeshVirtualService holds information on the virtual service the rollout needs to modify
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
#[schemars(extend("required" = ["name"]))]
pub struct AppMeshVirtualService {
    /// Name is the name of virtual service
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Routes is list of HTTP routes within virtual router associated with virtual service to
    /// edit. If omitted, virtual service must have a single route of this type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub routes: Option<Vec<String>>,
}

/// AppMeshVirtualNodeGroup holds information about targets used for routing traffic to a
/// virtual service
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
#[schemars(extend("required" = ["canaryVirtualNodeRef", "stableVirtualNodeRef"]))]
pub struct AppMeshVirtualNodeGroup {
    /// CanaryVirtualNodeRef is the virtual node ref to modify labels with canary ReplicaSet
    /// pod template hash value
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canary_virtual_node_ref: Option<AppMeshVirtualNodeReference>,
    /// StableVirtualNodeRef is the virtual node name to modify labels with stable ReplicaSet
    /// pod template hash value
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stable_virtual_node_ref: Option<AppMeshVirtualNodeReference>,
}

/// AppMeshVirtualNodeReference holds a reference to VirtualNode.appmesh.k8s.aws
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
#[schemars(extend("required" = ["name"]))]
pub struct AppMeshVirtualNodeReference {
    /// Name is the name of VirtualNode CR
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Status
// ---------------------------------------------------------------------------------------------

/// RolloutStatus is the status for a Rollout resource
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
pub struct RolloutStatus {
    /// Abort cancel the current rollout progression
    #[serde(skip_serializing_if = "Option::is_none")]
    pub abort: Option<bool>,
    /// PauseConditions is a list of reasons why rollout became automatically paused (e.g.
    /// CanaryPauseStep, BlueGreenPause, InconclusiveAnalysis). Populated by the controller,
    /// cleared by the user to unpause.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pause_conditions: Option<Vec<PauseCondition>>,
    /// ControllerPause indicates the controller has paused the rollout. It is set to true
    /// when the controller adds a pause condition.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub controller_pause: Option<bool>,
    /// AbortedAt indicates the controller reconciled an aborted rollout.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aborted_at: Option<Time>,
    /// CurrentPodHash the hash of the current pod template
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_pod_hash: Option<String>,
    /// CurrentStepHash the hash of the current list of steps for the current strategy. This
    /// is used to detect when the list of current steps change
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_step_hash: Option<String>,
    /// Total number of non-terminated pods targeted by this rollout (their labels match the
    /// selector).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Total number of non-terminated pods targeted by this rollout that have the desired
    /// template spec.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_replicas: Option<i32>,
    /// Total number of ready pods targeted by this rollout.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ready_replicas: Option<i32>,
    /// Total number of available pods (ready for at least minReadySeconds) targeted by this
    /// rollout.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub available_replicas: Option<i32>,
    /// CurrentStepIndex defines the current step of the rollout is on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_step_index: Option<i32>,
    /// Count of hash collisions for the Rollout, used as a collision avoidance mechanism
    /// when naming the newest ReplicaSet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub collision_count: Option<i32>,
    /// The generation observed by the rollout controller from metadata.generation (a string)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<String>,
    /// Conditions a list of conditions a rollout can have.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<RolloutCondition>>,
    /// Canary describes the state of the canary rollout
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canary: Option<CanaryStatus>,
    /// BlueGreen describes the state of the bluegreen rollout
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blue_green: Option<BlueGreenStatus>,
    /// HPAReplicas the number of non-terminated replicas that are receiving active traffic
    #[serde(rename = "HPAReplicas", skip_serializing_if = "Option::is_none")]
    pub hpa_replicas: Option<i32>,
    /// Selector that identifies the pods that are receiving active traffic
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// StableRS indicates the replicaset that has successfully rolled out
    #[serde(rename = "stableRS", skip_serializing_if = "Option::is_none")]
    pub stable_rs: Option<String>,
    /// RestartedAt indicates last time a Rollout was restarted
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restarted_at: Option<Time>,
    /// PromoteFull indicates if the rollout should perform a full promotion, skipping
    /// analysis and pauses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub promote_full: Option<bool>,
    /// Phase is the rollout phase. Clients should only rely on the value if
    /// status.observedGeneration equals metadata.generation
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// Message provides details on why the rollout is in its current phase
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The generation of referenced workload observed by the rollout controller (a string)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workload_observed_generation: Option<String>,
    /// ALB keeps information regarding the ALB and TargetGroups
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alb: Option<AlbStatus>,
    /// ALBs keeps information regarding multiple ALBs and TargetGroups in a multi ingress
    /// scenario
    #[serde(skip_serializing_if = "Option::is_none")]
    pub albs: Option<Vec<AlbStatus>>,
    /// Duration tracks timing information for the current rollout attempt
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<RolloutDuration>,
}

impl RolloutStatus {
    /// Upstream's `IsFullyPromoted`: `stableRS` is `currentPodHash` (two unset fields count as
    /// equal, as Go's empty strings do).
    pub fn is_fully_promoted(&self) -> bool {
        self.stable_rs == self.current_pod_hash
    }

    /// A stable ReplicaSet is recorded and it is the current pod template's: the stricter form
    /// of [`RolloutStatus::is_fully_promoted`] for code that must not treat "nothing yet" as
    /// "done".
    pub fn stable_is_current(&self) -> bool {
        self.stable_rs.as_deref().is_some_and(|s| !s.is_empty())
            && self.stable_rs == self.current_pod_hash
    }

    /// An update is in flight: a current pod hash that is not the stable one.
    pub fn updating(&self) -> bool {
        self.current_pod_hash.is_some() && !self.is_fully_promoted()
    }
}

/// The weight of the last `setWeight` step among `steps[..=index]`, or 0.
pub fn last_set_weight(steps: &[CanaryStep], index: usize) -> i32 {
    steps[..(index + 1).min(steps.len())]
        .iter()
        .rev()
        .find_map(|s| s.set_weight)
        .unwrap_or(0)
}

/// `status.phase` values of a Rollout.
pub mod rollout_phase {
    /// The rollout is healthy.
    pub const HEALTHY: &str = "Healthy";
    /// The rollout is degraded (e.g. pod unavailability, misconfiguration).
    pub const DEGRADED: &str = "Degraded";
    /// The rollout is not yet healthy but still making progress towards a healthy state.
    pub const PROGRESSING: &str = "Progressing";
    /// The rollout is not yet healthy and will not make progress until unpaused.
    pub const PAUSED: &str = "Paused";
}

/// `status.conditions[].type` values of a Rollout.
pub mod rollout_condition_type {
    /// The rollout has an invalid spec and will not progress until the spec is fixed.
    pub const INVALID_SPEC: &str = "InvalidSpec";
    /// The active/stable ReplicaSet has the required replicas available.
    pub const AVAILABLE: &str = "Available";
    /// The rollout is progressing.
    pub const PROGRESSING: &str = "Progressing";
    /// Pods failed to be created or deleted.
    pub const REPLICA_FAILURE: &str = "ReplicaFailure";
    /// The rollout is paused.
    pub const PAUSED: &str = "Paused";
    /// The rollout completed its update to the desired revision.
    pub const COMPLETED: &str = "Completed";
    /// The rollout is completed and all pods are healthy.
    pub const HEALTHY: &str = "Healthy";
}

/// PauseCondition the reason for a pause and when it started
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
#[schemars(extend("required" = ["reason", "startTime"]))]
pub struct PauseCondition {
    /// Reason for the pause (see [`pause_reason`])
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When the pause started
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,
}

/// RolloutCondition describes the state of a rollout at a certain point.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
#[schemars(extend(
    "required" = ["lastTransitionTime", "lastUpdateTime", "message", "reason", "status", "type"]
))]
pub struct RolloutCondition {
    /// Type of the condition (see [`rollout_condition_type`]).
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    /// Status of the condition, one of True, False, Unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// The last time this condition was updated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_update_time: Option<Time>,
    /// Last time the condition transitioned from one status to another.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<Time>,
    /// The reason for the condition's last transition.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// A human readable message indicating details about the transition.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// BlueGreenStatus status fields that only pertain to the blueGreen rollout
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
pub struct BlueGreenStatus {
    /// PreviewSelector indicates which replicas set the preview service is serving traffic to
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preview_selector: Option<String>,
    /// ActiveSelector indicates which replicas set the active service is serving traffic to
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active_selector: Option<String>,
    /// ScaleUpPreviewCheckPoint indicates that the Replicaset receiving traffic from the
    /// preview service is ready to be scaled up after the rollout is unpaused
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scale_up_preview_check_point: Option<bool>,
    /// PrePromotionAnalysisRunStatus indicates the status of the current prepromotion
    /// analysis run
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pre_promotion_analysis_run_status: Option<RolloutAnalysisRunStatus>,
    /// PostPromotionAnalysisRunStatus indicates the status of the current post promotion
    /// analysis run
    #[serde(skip_serializing_if = "Option::is_none")]
    pub post_promotion_analysis_run_status: Option<RolloutAnalysisRunStatus>,
}

/// CanaryStatus status fields that only pertain to the canary rollout
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
pub struct CanaryStatus {
    /// CurrentStepAnalysisRunStatus indicates the status of the current step analysis run
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_step_analysis_run_status: Option<RolloutAnalysisRunStatus>,
    /// CurrentBackgroundAnalysisRunStatus indicates the status of the current background
    /// analysis run
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_background_analysis_run_status: Option<RolloutAnalysisRunStatus>,
    /// CurrentExperiment indicates the running experiment
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_experiment: Option<String>,
    /// Weights records the weights which have been set on traffic provider. Only valid when
    /// using traffic routing
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weights: Option<TrafficWeights>,
    /// StablePingPong For the ping-pong feature holds the current stable service, ping or
    /// pong
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stable_ping_pong: Option<String>,
    /// StepPluginStatuses holds the status of the step plugins executed
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step_plugin_statuses: Option<Vec<StepPluginStatus>>,
}

/// `status.canary.stablePingPong` values.
pub mod ping_pong_type {
    /// The ping service is stable.
    pub const PING: &str = "ping";
    /// The pong service is stable.
    pub const PONG: &str = "pong";
}

/// StepPluginStatus: the outcome of one step plugin operation
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
#[schemars(extend("required" = ["index", "name", "operation"]))]
pub struct StepPluginStatus {
    /// Index is the matching step index of the executed plugin
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<i32>,
    /// Name is the matching step name of the executed plugin
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// StartedAt indicates when the plugin was first called for the operation
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Time>,
    /// UpdatedAt indicates when the plugin was last called for the operation
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Time>,
    /// FinishedAt indicates when the operation was completed
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Time>,
    /// Backoff is a duration to wait before trying to execute the operation again if it was
    /// not completed
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backoff: Option<String>,
    /// Phase is the resulting phase of the operation
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// Message provides details on why the plugin is in its current phase
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Operation is the name of the operation that produced this status
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// Executions is the number of time the operation was executed
    #[serde(skip_serializing_if = "Option::is_none")]
    pub executions: Option<i32>,
    /// Disabled indicates if the plugin is globally disabled
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
    /// Status holds the internal status of the plugin for this operation
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::api::preserve_unknown")]
    pub status: Option<serde_json::Value>,
}

/// TrafficWeights describes the current status of how traffic has been split
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
#[schemars(extend("required" = ["canary", "stable"]))]
pub struct TrafficWeights {
    /// Canary is the current traffic weight split to canary ReplicaSet
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canary: Option<WeightDestination>,
    /// Stable is the current traffic weight split to stable ReplicaSet
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stable: Option<WeightDestination>,
    /// Additional holds the weights split to additional ReplicaSets such as experiment
    /// ReplicaSets
    #[serde(skip_serializing_if = "Option::is_none")]
    pub additional: Option<Vec<WeightDestination>>,
    /// Verified is an optional indicator that the weight has been verified to have taken
    /// effect. This is currently only applicable to ALB traffic router
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified: Option<bool>,
}

/// WeightDestination: the weight sent to one destination
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
#[schemars(extend("required" = ["weight"]))]
pub struct WeightDestination {
    /// Weight is an percentage of traffic being sent to this destination
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight: Option<i32>,
    /// ServiceName is the Kubernetes service name traffic is being sent to
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
    /// PodTemplateHash is the pod template hash label for this destination
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_template_hash: Option<String>,
}

/// RolloutAnalysisRunStatus: name and status of an AnalysisRun owned by the rollout
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
#[schemars(extend("required" = ["name", "status"]))]
pub struct RolloutAnalysisRunStatus {
    /// Name of the AnalysisRun
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Status: the AnalysisRun's phase (see [`crate::api::analysis_phase`])
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Message from the AnalysisRun
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// AlbStatus keeps information regarding an ALB and its TargetGroups
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
pub struct AlbStatus {
    /// The load balancer
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load_balancer: Option<AwsResourceRef>,
    /// The canary target group
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canary_target_group: Option<AwsResourceRef>,
    /// The stable target group
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stable_target_group: Option<AwsResourceRef>,
    /// The ingress
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ingress: Option<String>,
}

/// AwsResourceRef: a reference to an AWS resource
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
#[schemars(extend("required" = ["arn", "name"]))]
pub struct AwsResourceRef {
    /// Name of the resource
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// ARN of the resource
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    /// FullName is the full name of the resource
    #[serde(skip_serializing_if = "Option::is_none")]
    pub full_name: Option<String>,
}

/// RolloutDuration tracks timing information for the current rollout attempt
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
pub struct RolloutDuration {
    /// RolloutStartedAt is when the current rollout attempt started (StableRS diverged from
    /// CurrentPodHash)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollout_started_at: Option<Time>,
    /// FinishedAt is when this rollout attempt reached its terminal state (promoted and
    /// stable, aborted, or superseded). Absent while the attempt is in progress.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Time>,
    /// CompletionStatus is the outcome of this rollout attempt, set as soon as it is known
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completion_status: Option<String>,
    /// ManualPauseStartedAt is when the current manual pause began (absent if not in manual
    /// pause)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manual_pause_started_at: Option<Time>,
    /// TotalManualPauseDurationSeconds is the accumulated time spent in manual pauses, in
    /// seconds
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_manual_pause_duration_seconds: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rollout(v: serde_json::Value) -> Rollout {
        serde_json::from_value(v).expect("valid rollout")
    }

    #[test]
    fn status_generation_fields_are_strings_and_hpa_replicas_is_capitalised() {
        let status: RolloutStatus = serde_json::from_value(json!({
            "observedGeneration": "7",
            "workloadObservedGeneration": "3",
            "HPAReplicas": 4,
            "stableRS": "abc123",
            "currentStepIndex": 2
        }))
        .unwrap();
        assert_eq!(status.observed_generation.as_deref(), Some("7"));
        assert_eq!(status.workload_observed_generation.as_deref(), Some("3"));
        assert_eq!(status.hpa_replicas, Some(4));
        assert_eq!(status.stable_rs.as_deref(), Some("abc123"));
        let back = serde_json::to_value(&status).unwrap();
        assert_eq!(back["observedGeneration"], json!("7"));
        assert_eq!(back["HPAReplicas"], json!(4));
        assert!(back.get("hpaReplicas").is_none());
        // upstream's type is a string: a number is not accepted
        assert!(serde_json::from_value::<RolloutStatus>(json!({"observedGeneration": 7})).is_err());
    }

    #[test]
    fn int_or_string_fields_take_both_forms() {
        let c: CanaryStrategy =
            serde_json::from_value(json!({"maxSurge": "25%", "maxUnavailable": 1})).unwrap();
        assert_eq!(c.max_surge, Some(IntOrString::String("25%".into())));
        assert_eq!(c.max_unavailable, Some(IntOrString::Int(1)));
        assert_eq!(
            serde_json::to_value(&c).unwrap(),
            json!({"maxSurge": "25%", "maxUnavailable": 1})
        );
        let bg: BlueGreenStrategy =
            serde_json::from_value(json!({"activeService": "a", "maxUnavailable": "10%"})).unwrap();
        assert_eq!(bg.max_unavailable, Some(IntOrString::String("10%".into())));
    }

    #[test]
    fn pause_duration_takes_both_forms() {
        let steps: Vec<CanaryStep> = serde_json::from_value(json!([
            {"pause": {}},
            {"pause": {"duration": 30}},
            {"pause": {"duration": "30s"}},
            {"pause": {"duration": "5m"}},
            {"pause": {"duration": "1h"}},
            {"pause": {"duration": "45"}},
            {"pause": {"duration": "1h30m"}},
            {"pause": {"duration": "soon"}}
        ]))
        .unwrap();
        let secs: Vec<Option<Result<i64, PauseDurationError>>> = steps
            .iter()
            .map(|s| s.pause.as_ref().unwrap().duration_seconds())
            .collect();
        assert_eq!(secs[0], None);
        assert_eq!(secs[1], Some(Ok(30)));
        assert_eq!(secs[2], Some(Ok(30)));
        assert_eq!(secs[3], Some(Ok(300)));
        assert_eq!(secs[4], Some(Ok(3600)));
        assert_eq!(secs[5], Some(Ok(45)));
        assert_eq!(secs[6], Some(Ok(5400)));
        assert!(matches!(secs[7], Some(Err(_))));
        // round trip keeps the form the user wrote
        let back = serde_json::to_value(&steps).unwrap();
        assert_eq!(back[1], json!({"pause": {"duration": 30}}));
        assert_eq!(back[3], json!({"pause": {"duration": "5m"}}));
        assert_eq!(back[0], json!({"pause": {}}));
    }

    #[test]
    fn go_durations_parse() {
        assert_eq!(parse_go_duration("0"), Some(0));
        assert_eq!(parse_go_duration("1.5s"), Some(1_500_000_000));
        assert_eq!(parse_go_duration("300ms"), Some(300_000_000));
        assert_eq!(parse_go_duration("-2m"), Some(-120_000_000_000));
        assert_eq!(
            parse_go_duration("2h45m"),
            Some((2 * 3600 + 45 * 60) * 1_000_000_000)
        );
        assert_eq!(parse_go_duration(""), None);
        assert_eq!(parse_go_duration("10"), None);
        assert_eq!(parse_go_duration("5x"), None);
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let r = rollout(json!({
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Rollout",
            "metadata": {"name": "r"},
            "spec": {
                "replicas": 2,
                "someFutureField": {"x": 1},
                "strategy": {"canary": {"steps": [{"setWeight": 10, "newStepKind": {}}]}}
            },
            "status": {"futureStatus": true}
        }));
        assert_eq!(r.spec.replicas, Some(2));
        assert_eq!(r.canary_steps()[0].set_weight, Some(10));
        let back = serde_json::to_value(&r).unwrap();
        assert!(back["spec"].get("someFutureField").is_none());
        assert_eq!(back["status"], json!({}));
    }

    #[test]
    fn canary_step_keeps_every_field_and_free_form_plugin_config() {
        let step = json!({
            "setWeight": 20,
            "setCanaryScale": {"replicas": 3},
            "setHeaderRoute": {"name": "h", "match": [{"headerName": "x", "headerValue": {"exact": "y"}}]},
            "setMirrorRoute": {"name": "m", "percentage": 50, "match": [{"method": {"exact": "GET"},
                "headers": {"a": {"prefix": "b"}}}]},
            "plugin": {"name": "p", "config": {"nested": [1, "two", {"three": null}]}},
            "experiment": {"duration": "5m", "templates": [{"name": "c", "specRef": "canary", "weight": 5}]},
            "analysis": {"templates": [{"templateName": "t", "clusterScope": true}],
                "args": [{"name": "h", "valueFrom": {"podTemplateHashValue": "Latest"}}]}
        });
        let parsed: CanaryStep = serde_json::from_value(step.clone()).unwrap();
        assert_eq!(
            parsed.plugin.as_ref().unwrap().config.as_ref().unwrap()["nested"][2],
            json!({"three": null})
        );
        assert_eq!(serde_json::to_value(&parsed).unwrap(), step);
    }

    #[test]
    fn times_round_trip_as_rfc3339() {
        let status: RolloutStatus = serde_json::from_value(json!({
            "abortedAt": "2019-10-10T10:10:10Z",
            "pauseConditions": [{"reason": "CanaryPauseStep", "startTime": "2024-02-29T23:59:59Z"}]
        }))
        .unwrap();
        let back = serde_json::to_value(&status).unwrap();
        assert_eq!(back["abortedAt"], json!("2019-10-10T10:10:10Z"));
        assert_eq!(
            back["pauseConditions"][0]["startTime"],
            json!("2024-02-29T23:59:59Z")
        );
    }

    #[test]
    fn background_analysis_is_inline() {
        let v = json!({"templates": [{"templateName": "t"}], "startingStep": 2,
            "args": [{"name": "a", "value": "b"}]});
        let bg: RolloutAnalysisBackground = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(bg.starting_step, Some(2));
        assert_eq!(bg.analysis.templates.as_ref().unwrap().len(), 1);
        assert_eq!(serde_json::to_value(&bg).unwrap(), v);
    }

    #[test]
    fn strategy_accessors() {
        let r = rollout(json!({
            "metadata": {"name": "r"},
            "spec": {"strategy": {"blueGreen": {"activeService": "active"}}}
        }));
        assert!(r.canary().is_none());
        assert_eq!(
            r.blue_green().unwrap().active_service.as_deref(),
            Some("active")
        );
        assert!(r.canary_steps().is_empty());
        assert_eq!(r.replicas_or_default(), 1);
        let back = serde_json::to_value(&r).unwrap();
        assert_eq!(back["apiVersion"], json!("argoproj.io/v1alpha1"));
        assert_eq!(back["kind"], json!("Rollout"));
        assert!(back.get("status").is_none());
    }

    #[test]
    fn traffic_routing_plugins_are_free_form() {
        let tr = json!({
            "plugins": {"argoproj-labs/gatewayAPI": {"httpRoute": "r", "namespace": "ns"}},
            "managedRoutes": [{"name": "a"}],
            "maxTrafficWeight": 1000,
            "istio": {"virtualServices": [{"name": "vs", "tlsRoutes": [{"port": 443, "sniHosts": ["a"]}]}]}
        });
        let parsed: RolloutTrafficRouting = serde_json::from_value(tr.clone()).unwrap();
        assert_eq!(parsed.max_traffic_weight, Some(1000));
        assert_eq!(serde_json::to_value(&parsed).unwrap(), tr);
    }
}
