//! `Experiment`: short-lived ReplicaSets (and analyses) run side by side for comparison.

use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, Time};
use kube_derive::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{AnalysisRunMetadata, Argument, DryRun, MeasurementRetention, TemplateService};

/// ExperimentSpec is the spec for an Experiment resource
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    crates(kube_core = "::kube_core"),
    group = "argoproj.io",
    version = "v1alpha1",
    kind = "Experiment",
    plural = "experiments",
    singular = "experiment",
    shortname = "exp",
    namespaced,
    status = "ExperimentStatus",
    derive = "PartialEq",
    derive = "Default",
    doc = "Experiment is a specification for an Experiment resource",
    printcolumn = r#"{"name": "Status", "type": "string", "jsonPath": ".status.phase", "description": "Experiment status"}"#,
    printcolumn = r#"{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp", "description": "Time since resource was created"}"#
)]
#[serde(default, rename_all = "camelCase")]
#[schemars(extend("required" = ["templates"]))]
pub struct ExperimentSpec {
    /// Templates are a list of PodSpecs that define the ReplicaSets that should be run during
    /// an experiment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub templates: Option<Vec<TemplateSpec>>,
    /// Duration the amount of time for the experiment to run as a duration string (e.g. 30s,
    /// 5m, 1h). If omitted, the experiment will run indefinitely, stopped either via
    /// termination, or a failed analysis run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    /// ProgressDeadlineSeconds The maximum time in seconds for a experiment to make progress
    /// before it is considered to be failed. Defaults to 600s.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress_deadline_seconds: Option<i32>,
    /// Terminate is used to prematurely stop the experiment
    #[serde(skip_serializing_if = "Option::is_none")]
    pub terminate: Option<bool>,
    /// Analyses references AnalysisTemplates to run during the experiment
    #[serde(skip_serializing_if = "Option::is_none")]
    pub analyses: Option<Vec<ExperimentAnalysisTemplateRef>>,
    /// ScaleDownDelaySeconds adds a delay before scaling down the Experiment. If omitted, the
    /// Experiment waits 30 seconds before scaling down.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scale_down_delay_seconds: Option<i32>,
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

/// TemplateSpec: one ReplicaSet of an experiment
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
#[schemars(extend("required" = ["name", "selector", "template"]))]
pub struct TemplateSpec {
    /// Name of the template used to identity replicaset running for this experiment
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Number of desired pods. Defaults to 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Minimum number of seconds for which a newly created pod should be ready without any of
    /// its container crashing, for it to be considered available. Defaults to 0
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_ready_seconds: Option<i32>,
    /// Label selector for pods; must match the template's labels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
    /// Template describes the pods that will be created.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::api::pod_template_schema")]
    pub template: Option<PodTemplateSpec>,
    /// TemplateService describes how a service should be generated for template
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<TemplateService>,
}

/// ExperimentAnalysisTemplateRef: an analysis run alongside an experiment
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
#[schemars(extend("required" = ["name", "templateName"]))]
pub struct ExperimentAnalysisTemplateRef {
    /// Name is the name of the analysis
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// TemplateName reference of the AnalysisTemplate name used by the Experiment to create
    /// the run
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template_name: Option<String>,
    /// Whether to look for the templateName at cluster scope or namespace scope
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_scope: Option<bool>,
    /// Args are the arguments that will be added to the AnalysisRuns
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<Argument>>,
    /// RequiredForCompletion indicates that experiment should complete after analysis
    /// finishes
    #[serde(skip_serializing_if = "Option::is_none")]
    pub required_for_completion: Option<bool>,
}

/// ExperimentStatus is the status for an Experiment resource
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
pub struct ExperimentStatus {
    /// Phase is the status of the experiment. Takes into consideration ReplicaSet
    /// degradations and AnalysisRun statuses (see [`crate::api::analysis_phase`])
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// Message is an explanation for the current status
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// TemplateStatuses holds the ReplicaSet related statuses for individual templates
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template_statuses: Option<Vec<TemplateStatus>>,
    /// AvailableAt the time when all the templates become healthy and the experiment should
    /// start tracking the time to run for the duration of specificed in the spec.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub available_at: Option<Time>,
    /// Conditions a list of conditions a experiment can have.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<ExperimentCondition>>,
    /// AnalysisRuns tracks the status of AnalysisRuns associated with this Experiment
    #[serde(skip_serializing_if = "Option::is_none")]
    pub analysis_runs: Option<Vec<ExperimentAnalysisRunStatus>>,
}

/// TemplateStatus is the status of a specific template of an Experiment
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
#[schemars(extend(
    "required" = ["availableReplicas", "name", "readyReplicas", "replicas", "updatedReplicas"]
))]
pub struct TemplateStatus {
    /// Name of the template used to identity which hash to compare to the hash
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Total number of non-terminated pods targeted by this experiment (their labels match
    /// the selector).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Total number of non-terminated pods targeted by this experiment that have the desired
    /// template spec.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_replicas: Option<i32>,
    /// Total number of ready pods targeted by this experiment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ready_replicas: Option<i32>,
    /// Total number of available pods (ready for at least minReadySeconds) targeted by this
    /// experiment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub available_replicas: Option<i32>,
    /// CollisionCount count of hash collisions for the Experiment. The Experiment controller
    /// uses this field as a collision avoidance mechanism when it needs to create the name
    /// for the newest ReplicaSet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub collision_count: Option<i32>,
    /// Phase is the status of the ReplicaSet associated with the template (see
    /// [`template_status_code`])
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Message is a message explaining the current status
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// LastTransitionTime is the last time the replicaset transitioned, which resets the
    /// countdown on the ProgressDeadlineSeconds check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<Time>,
    /// ServiceName is the name of the service which corresponds to this experiment
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
    /// PodTemplateHash is the value of the Replicas' PodTemplateHash
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_template_hash: Option<String>,
}

/// `status.templateStatuses[].status` values.
pub mod template_status_code {
    /// The ReplicaSet is being brought up.
    pub const PROGRESSING: &str = "Progressing";
    /// The ReplicaSet is available and running.
    pub const RUNNING: &str = "Running";
    /// The template ran to completion.
    pub const SUCCESSFUL: &str = "Successful";
    /// The template failed (e.g. progress deadline exceeded).
    pub const FAILED: &str = "Failed";
    /// The template errored.
    pub const ERROR: &str = "Error";
}

/// ExperimentCondition describes the state of an experiment at a certain point.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
#[schemars(extend(
    "required" = ["lastTransitionTime", "lastUpdateTime", "message", "reason", "status", "type"]
))]
pub struct ExperimentCondition {
    /// Type of the condition (see [`experiment_condition_type`]).
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    /// Phase of the condition, one of True, False, Unknown.
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

/// `status.conditions[].type` values of an Experiment.
pub mod experiment_condition_type {
    /// The experiment has an invalid spec.
    pub const INVALID_SPEC: &str = "InvalidSpec";
    /// The experiment is progressing.
    pub const PROGRESSING: &str = "Progressing";
}

/// ExperimentAnalysisRunStatus: the AnalysisRun created for one experiment analysis
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
#[schemars(extend("required" = ["analysisRun", "name", "phase"]))]
pub struct ExperimentAnalysisRunStatus {
    /// Name is the name of the analysis
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// AnalysisRun is the name of the AnalysisRun
    #[serde(skip_serializing_if = "Option::is_none")]
    pub analysis_run: Option<String>,
    /// Phase is the status of the AnalysisRun
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// Message is a message explaining the current status
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn experiment_round_trips_with_status() {
        let exp = json!({
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Experiment",
            "metadata": {"name": "e"},
            "spec": {
                "duration": "10m",
                "templates": [{"name": "baseline", "replicas": 1,
                    "selector": {"matchLabels": {"app": "x"}},
                    "template": {"metadata": {"labels": {"app": "x"}},
                        "spec": {"containers": [{"name": "c", "image": "i"}]}},
                    "service": {"name": "svc"}}],
                "analyses": [{"name": "a", "templateName": "t", "requiredForCompletion": true,
                    "args": [{"name": "x", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]}]
            },
            "status": {
                "phase": "Running",
                "availableAt": "2022-05-05T05:05:05Z",
                "templateStatuses": [{"name": "baseline", "replicas": 1, "updatedReplicas": 1,
                    "readyReplicas": 1, "availableReplicas": 1, "status": "Running"}],
                "analysisRuns": [{"name": "a", "analysisRun": "e-a", "phase": "Running"}],
                "conditions": [{"type": "Progressing", "status": "True", "reason": "r",
                    "message": "m", "lastUpdateTime": "2022-05-05T05:05:05Z",
                    "lastTransitionTime": "2022-05-05T05:05:05Z"}]
            }
        });
        let parsed: Experiment = serde_json::from_value(exp.clone()).unwrap();
        assert_eq!(
            parsed.status.as_ref().unwrap().phase.as_deref(),
            Some("Running")
        );
        assert_eq!(serde_json::to_value(&parsed).unwrap(), exp);
    }
}
