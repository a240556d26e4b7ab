//! The `argoproj.io/v1alpha1` API: Rollout, AnalysisTemplate, ClusterAnalysisTemplate,
//! AnalysisRun and Experiment, field for field with upstream Argo Rollouts.
//!
//! Conventions (keep them; the compatibility tests depend on them):
//! - every field is `Option<_>` (lists are `Option<Vec<_>>`), skipped when `None`, so a manifest
//!   round-trips exactly: what the user wrote is what we write back;
//! - JSON names are upstream's (`#[serde(rename_all = "camelCase")]`, explicit renames where
//!   upstream is irregular, e.g. `HPAReplicas`);
//! - unknown fields are ignored on input (no `deny_unknown_fields`);
//! - free-form JSON (`json.RawMessage` upstream) is `serde_json::Value` with a
//!   preserve-unknown-fields schema ([`preserve_unknown`]).

pub mod analysis;
pub mod crd;
pub mod experiment;
pub mod rollout;

pub use analysis::*;
pub use experiment::*;
pub use rollout::*;

/// The image of a pod template's first container (what `set image` changes and the CLI and
/// dashboard show), when set.
pub fn first_image(template: Option<&k8s_openapi::api::core::v1::PodTemplateSpec>) -> Option<&str> {
    template?
        .spec
        .as_ref()?
        .containers
        .first()?
        .image
        .as_deref()
}

/// Whether `owner` controls `obj`: a controller owner reference to the owner's uid.
pub fn is_controlled_by(obj: &impl kube_core::Resource, owner: &impl kube_core::Resource) -> bool {
    let uid = owner.meta().uid.as_ref();
    obj.meta()
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.controller == Some(true) && Some(&o.uid) == uid)
}

use schemars::{Schema, SchemaGenerator, json_schema};

/// Schema for a free-form JSON object: `type: object` + `x-kubernetes-preserve-unknown-fields`.
pub fn preserve_unknown(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true
    })
}

/// Schema for a free-form JSON value of any type (object, list, string, number).
pub fn preserve_unknown_any(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "x-kubernetes-preserve-unknown-fields": true
    })
}

/// Schema for an embedded pod template: kept as an object whose contents the API server stores
/// as given (upstream trims the same subtree to keep the CRD small); our types still parse it
/// into `k8s_openapi` structs.
pub fn pod_template_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true
    })
}

/// API group of every kind in this module.
pub const GROUP: &str = "argoproj.io";
/// API version of every kind in this module.
pub const VERSION: &str = "v1alpha1";
/// `apiVersion` value of every kind in this module.
pub const API_VERSION: &str = "argoproj.io/v1alpha1";

/// Well-known label and annotation keys and values, as upstream spells them.
pub mod consts {
    /// Label added to ReplicaSets, their pod templates and selectors so that ReplicaSets of
    /// one Rollout never select each other's pods.
    pub const DEFAULT_ROLLOUT_UNIQUE_LABEL_KEY: &str = "rollouts-pod-template-hash";
    /// Annotation on ReplicaSets recording the rollout revision they serve.
    pub const REVISION_ANNOTATION: &str = "rollout.argoproj.io/revision";
    /// Annotation on ReplicaSets keeping the revisions they served before a rollback.
    pub const REVISION_HISTORY_ANNOTATION: &str = "rollout.argoproj.io/revision-history";
    /// Annotation on ReplicaSets an Experiment created, naming it (they are not revisions).
    pub const EXPERIMENT_NAME_ANNOTATION_KEY: &str = "experiment.argoproj.io/name";
    /// Annotation on ReplicaSets an Experiment created, naming the template they run.
    pub const EXPERIMENT_TEMPLATE_NAME_ANNOTATION_KEY: &str =
        "experiment.argoproj.io/template-name";
    /// Annotation on ReplicaSets recording the Rollout's desired replica count.
    pub const DESIRED_REPLICAS_ANNOTATION: &str = "rollout.argoproj.io/desired-replicas";
    /// Annotation on ReplicaSets recording the generation of a referenced workload.
    pub const WORKLOAD_GENERATION_ANNOTATION: &str = "rollout.argoproj.io/workload-generation";
    /// Annotation on ReplicaSets carrying ephemeral (canary/stable/active/preview) metadata.
    pub const EPHEMERAL_METADATA_ANNOTATION: &str = "rollout.argoproj.io/ephemeral-metadata";
    /// Annotation on an old ReplicaSet: the time after which it may be scaled down.
    pub const DEFAULT_REPLICASET_SCALE_DOWN_DEADLINE_ANNOTATION_KEY: &str = "scale-down-deadline";
    /// Annotation naming the rollout(s) that manage (without owning) an object such as a Service.
    pub const MANAGED_BY_ROLLOUTS_KEY: &str = "argo-rollouts.argoproj.io/managed-by-rollouts";
    /// Annotation on a ReplicaSet restarted by `spec.restartAt`: the restart time.
    pub const DEFAULT_REPLICASET_RESTART_ANNOTATION_KEY: &str =
        "argo-rollouts.argoproj.io/restarted-after";
    /// Label segregating objects between controller instances.
    pub const LABEL_KEY_CONTROLLER_INSTANCE_ID: &str =
        "argo-rollouts.argoproj.io/controller-instance-id";

    /// Label on AnalysisRuns/Experiments telling why a Rollout created them.
    pub const ROLLOUT_TYPE_LABEL: &str = "rollout-type";
    /// `rollout-type` value: created by a canary step.
    pub const ROLLOUT_TYPE_STEP_LABEL: &str = "Step";
    /// `rollout-type` value: background analysis.
    pub const ROLLOUT_TYPE_BACKGROUND_RUN_LABEL: &str = "Background";
    /// `rollout-type` value: blue-green pre-promotion analysis.
    pub const ROLLOUT_TYPE_PRE_PROMOTION_LABEL: &str = "PrePromotion";
    /// `rollout-type` value: blue-green post-promotion analysis.
    pub const ROLLOUT_TYPE_POST_PROMOTION_LABEL: &str = "PostPromotion";
    /// Label on AnalysisRuns/Experiments created by a canary step: the step index.
    pub const ROLLOUT_CANARY_STEP_INDEX_LABEL: &str = "step-index";

    /// `workloadRef.scaleDown` values.
    pub const SCALE_DOWN_NEVER: &str = "never";
    /// `workloadRef.scaleDown`: scale the referenced workload down once the rollout is healthy.
    pub const SCALE_DOWN_ON_SUCCESS: &str = "onsuccess";
    /// `workloadRef.scaleDown`: scale the referenced workload down as the rollout scales up.
    pub const SCALE_DOWN_PROGRESSIVELY: &str = "progressively";
}

/// The label selector of the objects a controller instance owns (upstream's sharding): those
/// labelled with its instance id, or, without one, those that lack the label.
pub fn instance_selector(instance_id: Option<&str>) -> String {
    let key = consts::LABEL_KEY_CONTROLLER_INSTANCE_ID;
    match instance_id {
        Some(id) => format!("{key}={id}"),
        None => format!("!{key}"),
    }
}

#[cfg(test)]
mod instance_selector_tests {
    #[test]
    fn selects_the_instance_or_unlabelled_objects() {
        assert_eq!(
            super::instance_selector(Some("a")),
            "argo-rollouts.argoproj.io/controller-instance-id=a"
        );
        assert_eq!(
            super::instance_selector(None),
            "!argo-rollouts.argoproj.io/controller-instance-id"
        );
    }
}

/// Upstream's defaults for unset fields (applied by the controller, not by the API server).
pub mod defaults {
    /// `spec.replicas`.
    pub const REPLICAS: i32 = 1;
    /// `spec.revisionHistoryLimit`.
    pub const REVISION_HISTORY_LIMIT: i32 = 10;
    /// `spec.analysis.successfulRunHistoryLimit`.
    pub const ANALYSIS_RUN_SUCCESSFUL_HISTORY_LIMIT: i32 = 5;
    /// `spec.analysis.unsuccessfulRunHistoryLimit`.
    pub const ANALYSIS_RUN_UNSUCCESSFUL_HISTORY_LIMIT: i32 = 5;
    /// `maxSurge` (a percentage).
    pub const MAX_SURGE: &str = "25%";
    /// `maxUnavailable` (a percentage).
    pub const MAX_UNAVAILABLE: &str = "25%";
    /// `spec.progressDeadlineSeconds`.
    pub const PROGRESS_DEADLINE_SECONDS: i32 = 600;
    /// `scaleDownDelaySeconds`.
    pub const SCALE_DOWN_DELAY_SECONDS: i32 = 30;
    /// `abortScaleDownDelaySeconds`.
    pub const ABORT_SCALE_DOWN_DELAY_SECONDS: i32 = 30;
    /// `blueGreen.autoPromotionEnabled`.
    pub const AUTO_PROMOTION_ENABLED: bool = true;
    /// `metrics[].consecutiveErrorLimit`.
    pub const CONSECUTIVE_ERROR_LIMIT: i32 = 4;
}
