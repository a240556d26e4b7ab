//! Every field of the Rollout spec, and what the controller does with it (issue 14's audit).
//!
//! The fields are read from the generated CRD (`crds/rollout-crd.yaml`, kept equal to the API
//! types by the drift test), so a field added to the types appears here at once. Each one is
//! either acted on (the table names where), or refused: a Rollout that sets it gets an
//! InvalidSpec condition naming it, never a silent skip. The test fails for a field that is
//! neither, and checks every refusal through the planner.

use rollouts::api::Rollout;
use rollouts::plan::simulate::World;
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// Fields the controller acts on, with where (relative to `src/`).
const ACTED: &[(&str, &str)] = &[
    (
        "spec.template",
        "plan/replicasets.rs (the ReplicaSets' pod template)",
    ),
    (
        "spec.analysis.successfulRunHistoryLimit",
        "plan/analysis.rs (run history limits)",
    ),
    (
        "spec.analysis.unsuccessfulRunHistoryLimit",
        "plan/analysis.rs (run history limits)",
    ),
    (
        "spec.minReadySeconds",
        "plan/replicasets.rs (copied to ReplicaSets)",
    ),
    (
        "spec.paused",
        "plan/canary.rs, plan/bluegreen.rs (haltProgress)",
    ),
    (
        "spec.progressDeadlineAbort",
        "plan/canary.rs (progress deadline)",
    ),
    (
        "spec.progressDeadlineSeconds",
        "plan/conditions.rs (progress deadline)",
    ),
    ("spec.replicas", "plan/replicas.rs"),
    ("spec.restartAt", "plan/canary.rs (restart_pods)"),
    (
        "spec.revisionHistoryLimit",
        "plan/replicasets.rs (history_cleanup)",
    ),
    (
        "spec.rollbackWindow.revisions",
        "plan/canary.rs (rollback_within_window)",
    ),
    (
        "spec.selector.matchExpressions[].key",
        "plan/replicasets.rs (ReplicaSet selectors)",
    ),
    (
        "spec.selector.matchExpressions[].operator",
        "plan/replicasets.rs (ReplicaSet selectors)",
    ),
    (
        "spec.selector.matchExpressions[].values[]",
        "plan/replicasets.rs (ReplicaSet selectors)",
    ),
    (
        "spec.selector.matchLabels",
        "plan/replicasets.rs (ReplicaSet selectors)",
    ),
    (
        "spec.strategy.blueGreen.abortScaleDownDelaySeconds",
        "plan/bluegreen.rs",
    ),
    (
        "spec.strategy.blueGreen.activeMetadata.annotations",
        "plan/ephemeral.rs",
    ),
    (
        "spec.strategy.blueGreen.activeMetadata.labels",
        "plan/ephemeral.rs",
    ),
    ("spec.strategy.blueGreen.activeService", "plan/bluegreen.rs"),
    (
        "spec.strategy.blueGreen.antiAffinity.preferredDuringSchedulingIgnoredDuringExecution.weight",
        "plan/affinity.rs",
    ),
    (
        "spec.strategy.blueGreen.antiAffinity.requiredDuringSchedulingIgnoredDuringExecution",
        "plan/affinity.rs",
    ),
    (
        "spec.strategy.blueGreen.autoPromotionEnabled",
        "plan/bluegreen.rs",
    ),
    (
        "spec.strategy.blueGreen.autoPromotionSeconds",
        "plan/bluegreen.rs",
    ),
    (
        "spec.strategy.blueGreen.maxUnavailable",
        "plan/bluegreen.rs",
    ),
    (
        "spec.strategy.blueGreen.postPromotionAnalysis.analysisRunMetadata.annotations",
        "plan/analysis.rs, analysis/build.rs",
    ),
    (
        "spec.strategy.blueGreen.postPromotionAnalysis.analysisRunMetadata.labels",
        "plan/analysis.rs, analysis/build.rs",
    ),
    (
        "spec.strategy.blueGreen.postPromotionAnalysis.args[].name",
        "plan/analysis.rs, analysis/build.rs",
    ),
    (
        "spec.strategy.blueGreen.postPromotionAnalysis.args[].value",
        "plan/analysis.rs, analysis/build.rs",
    ),
    (
        "spec.strategy.blueGreen.postPromotionAnalysis.args[].valueFrom.fieldRef.fieldPath",
        "plan/analysis.rs, analysis/build.rs",
    ),
    (
        "spec.strategy.blueGreen.postPromotionAnalysis.args[].valueFrom.podTemplateHashValue",
        "plan/analysis.rs, analysis/build.rs",
    ),
    (
        "spec.strategy.blueGreen.postPromotionAnalysis.dryRun[].metricName",
        "plan/analysis.rs, analysis/build.rs",
    ),
    (
        "spec.strategy.blueGreen.postPromotionAnalysis.measurementRetention[].limit",
        "plan/analysis.rs, analysis/build.rs",
    ),
    (
        "spec.strategy.blueGreen.postPromotionAnalysis.measurementRetention[].metricName",
        "plan/analysis.rs, analysis/build.rs",
    ),
    (
        "spec.strategy.blueGreen.postPromotionAnalysis.templates[].clusterScope",
        "plan/analysis.rs, analysis/build.rs",
    ),
    (
        "spec.strategy.blueGreen.postPromotionAnalysis.templates[].templateName",
        "plan/analysis.rs, analysis/build.rs",
    ),
    (
        "spec.strategy.blueGreen.prePromotionAnalysis.analysisRunMetadata.annotations",
        "plan/analysis.rs, analysis/build.rs",
    ),
    (
        "spec.strategy.blueGreen.prePromotionAnalysis.analysisRunMetadata.labels",
        "plan/analysis.rs, analysis/build.rs",
    ),
    (
        "spec.strategy.blueGreen.prePromotionAnalysis.args[].name",
        "plan/analysis.rs, analysis/build.rs",
    ),
    (
        "spec.strategy.blueGreen.prePromotionAnalysis.args[].value",
        "plan/analysis.rs, analysis/build.rs",
    ),
    (
        "spec.strategy.blueGreen.prePromotionAnalysis.args[].valueFrom.fieldRef.fieldPath",
        "plan/analysis.rs, analysis/build.rs",
    ),
    (
        "spec.strategy.blueGreen.prePromotionAnalysis.args[].valueFrom.podTemplateHashValue",
        "plan/analysis.rs, analysis/build.rs",
    ),
    (
        "spec.strategy.blueGreen.prePromotionAnalysis.dryRun[].metricName",
        "plan/analysis.rs, analysis/build.rs",
    ),
    (
        "spec.strategy.blueGreen.prePromotionAnalysis.measurementRetention[].limit",
        "plan/analysis.rs, analysis/build.rs",
    ),
    (
        "spec.strategy.blueGreen.prePromotionAnalysis.measurementRetention[].metricName",
        "plan/analysis.rs, analysis/build.rs",
    ),
    (
        "spec.strategy.blueGreen.prePromotionAnalysis.templates[].clusterScope",
        "plan/analysis.rs, analysis/build.rs",
    ),
    (
        "spec.strategy.blueGreen.prePromotionAnalysis.templates[].templateName",
        "plan/analysis.rs, analysis/build.rs",
    ),
    (
        "spec.strategy.blueGreen.previewMetadata.annotations",
        "plan/ephemeral.rs",
    ),
    (
        "spec.strategy.blueGreen.previewMetadata.labels",
        "plan/ephemeral.rs",
    ),
    (
        "spec.strategy.blueGreen.previewReplicaCount",
        "plan/bluegreen.rs",
    ),
    (
        "spec.strategy.blueGreen.previewService",
        "plan/bluegreen.rs",
    ),
    (
        "spec.strategy.blueGreen.scaleDownDelayRevisionLimit",
        "plan/bluegreen.rs",
    ),
    (
        "spec.strategy.blueGreen.scaleDownDelaySeconds",
        "plan/bluegreen.rs",
    ),
    (
        "spec.strategy.canary.abortScaleDownDelaySeconds",
        "plan/canary.rs, plan/replicas.rs",
    ),
    (
        "spec.strategy.canary.analysis.analysisRunMetadata.annotations",
        "plan/analysis.rs, analysis/build.rs (background analysis)",
    ),
    (
        "spec.strategy.canary.analysis.analysisRunMetadata.labels",
        "plan/analysis.rs, analysis/build.rs (background analysis)",
    ),
    (
        "spec.strategy.canary.analysis.args[].name",
        "plan/analysis.rs, analysis/build.rs (background analysis)",
    ),
    (
        "spec.strategy.canary.analysis.args[].value",
        "plan/analysis.rs, analysis/build.rs (background analysis)",
    ),
    (
        "spec.strategy.canary.analysis.args[].valueFrom.fieldRef.fieldPath",
        "plan/analysis.rs, analysis/build.rs (background analysis)",
    ),
    (
        "spec.strategy.canary.analysis.args[].valueFrom.podTemplateHashValue",
        "plan/analysis.rs, analysis/build.rs (background analysis)",
    ),
    (
        "spec.strategy.canary.analysis.dryRun[].metricName",
        "plan/analysis.rs, analysis/build.rs (background analysis)",
    ),
    (
        "spec.strategy.canary.analysis.measurementRetention[].limit",
        "plan/analysis.rs, analysis/build.rs (background analysis)",
    ),
    (
        "spec.strategy.canary.analysis.measurementRetention[].metricName",
        "plan/analysis.rs, analysis/build.rs (background analysis)",
    ),
    (
        "spec.strategy.canary.analysis.startingStep",
        "plan/analysis.rs, analysis/build.rs (background analysis)",
    ),
    (
        "spec.strategy.canary.analysis.templates[].clusterScope",
        "plan/analysis.rs, analysis/build.rs (background analysis)",
    ),
    (
        "spec.strategy.canary.analysis.templates[].templateName",
        "plan/analysis.rs, analysis/build.rs (background analysis)",
    ),
    (
        "spec.strategy.canary.antiAffinity.preferredDuringSchedulingIgnoredDuringExecution.weight",
        "plan/affinity.rs",
    ),
    (
        "spec.strategy.canary.antiAffinity.requiredDuringSchedulingIgnoredDuringExecution",
        "plan/affinity.rs",
    ),
    (
        "spec.strategy.canary.canaryMetadata.annotations",
        "plan/ephemeral.rs",
    ),
    (
        "spec.strategy.canary.canaryMetadata.labels",
        "plan/ephemeral.rs",
    ),
    (
        "spec.strategy.canary.canaryService",
        "plan/canary.rs, plan/replicas.rs",
    ),
    (
        "spec.strategy.canary.dynamicStableScale",
        "plan/canary.rs, plan/replicas.rs",
    ),
    (
        "spec.strategy.canary.maxSurge",
        "plan/canary.rs, plan/replicas.rs",
    ),
    (
        "spec.strategy.canary.maxUnavailable",
        "plan/canary.rs, plan/replicas.rs",
    ),
    (
        "spec.strategy.canary.minPodsPerReplicaSet",
        "plan/canary.rs, plan/replicas.rs",
    ),
    (
        "spec.strategy.canary.replicaProgressThreshold.type",
        "plan/canary.rs, plan/replicas.rs",
    ),
    (
        "spec.strategy.canary.replicaProgressThreshold.value",
        "plan/canary.rs, plan/replicas.rs",
    ),
    (
        "spec.strategy.canary.scaleDownDelayRevisionLimit",
        "plan/canary.rs, plan/replicas.rs",
    ),
    (
        "spec.strategy.canary.scaleDownDelaySeconds",
        "plan/canary.rs, plan/replicas.rs",
    ),
    (
        "spec.strategy.canary.stableMetadata.annotations",
        "plan/ephemeral.rs",
    ),
    (
        "spec.strategy.canary.stableMetadata.labels",
        "plan/ephemeral.rs",
    ),
    (
        "spec.strategy.canary.stableService",
        "plan/canary.rs, plan/replicas.rs",
    ),
    (
        "spec.strategy.canary.steps[].analysis.analysisRunMetadata.annotations",
        "plan/analysis.rs, analysis/build.rs (step analysis)",
    ),
    (
        "spec.strategy.canary.steps[].analysis.analysisRunMetadata.labels",
        "plan/analysis.rs, analysis/build.rs (step analysis)",
    ),
    (
        "spec.strategy.canary.steps[].analysis.args[].name",
        "plan/analysis.rs, analysis/build.rs (step analysis)",
    ),
    (
        "spec.strategy.canary.steps[].analysis.args[].value",
        "plan/analysis.rs, analysis/build.rs (step analysis)",
    ),
    (
        "spec.strategy.canary.steps[].analysis.args[].valueFrom.fieldRef.fieldPath",
        "plan/analysis.rs, analysis/build.rs (step analysis)",
    ),
    (
        "spec.strategy.canary.steps[].analysis.args[].valueFrom.podTemplateHashValue",
        "plan/analysis.rs, analysis/build.rs (step analysis)",
    ),
    (
        "spec.strategy.canary.steps[].analysis.dryRun[].metricName",
        "plan/analysis.rs, analysis/build.rs (step analysis)",
    ),
    (
        "spec.strategy.canary.steps[].analysis.measurementRetention[].limit",
        "plan/analysis.rs, analysis/build.rs (step analysis)",
    ),
    (
        "spec.strategy.canary.steps[].analysis.measurementRetention[].metricName",
        "plan/analysis.rs, analysis/build.rs (step analysis)",
    ),
    (
        "spec.strategy.canary.steps[].analysis.templates[].clusterScope",
        "plan/analysis.rs, analysis/build.rs (step analysis)",
    ),
    (
        "spec.strategy.canary.steps[].analysis.templates[].templateName",
        "plan/analysis.rs, analysis/build.rs (step analysis)",
    ),
    (
        "spec.strategy.canary.steps[].experiment.analyses[].args[].name",
        "plan/experiments.rs (build: the Rollout's args, resolved)",
    ),
    (
        "spec.strategy.canary.steps[].experiment.analyses[].args[].value",
        "plan/experiments.rs (build: the Rollout's args, resolved)",
    ),
    (
        "spec.strategy.canary.steps[].experiment.analyses[].args[].valueFrom.fieldRef.fieldPath",
        "plan/experiments.rs (build: the Rollout's args, resolved)",
    ),
    (
        "spec.strategy.canary.steps[].experiment.analyses[].args[].valueFrom.podTemplateHashValue",
        "plan/experiments.rs (build: the Rollout's args, resolved)",
    ),
    (
        "spec.strategy.canary.steps[].experiment.analyses[].clusterScope",
        "plan/experiments.rs (build: copied into the step's Experiment, run by experiment/)",
    ),
    (
        "spec.strategy.canary.steps[].experiment.analyses[].name",
        "plan/experiments.rs (build: copied into the step's Experiment, run by experiment/)",
    ),
    (
        "spec.strategy.canary.steps[].experiment.analyses[].requiredForCompletion",
        "plan/experiments.rs (build: copied into the step's Experiment, run by experiment/)",
    ),
    (
        "spec.strategy.canary.steps[].experiment.analyses[].templateName",
        "plan/experiments.rs (build: copied into the step's Experiment, run by experiment/)",
    ),
    (
        "spec.strategy.canary.steps[].experiment.analysisRunMetadata.annotations",
        "plan/experiments.rs (build: copied into the step's Experiment, run by experiment/)",
    ),
    (
        "spec.strategy.canary.steps[].experiment.analysisRunMetadata.labels",
        "plan/experiments.rs (build: copied into the step's Experiment, run by experiment/)",
    ),
    (
        "spec.strategy.canary.steps[].experiment.dryRun[].metricName",
        "plan/experiments.rs (build: copied into the step's Experiment, run by experiment/)",
    ),
    (
        "spec.strategy.canary.steps[].experiment.duration",
        "plan/experiments.rs (build: copied into the step's Experiment, run by experiment/)",
    ),
    (
        "spec.strategy.canary.steps[].experiment.scaleDownDelaySeconds",
        "plan/experiments.rs (build: copied into the step's Experiment, run by experiment/)",
    ),
    (
        "spec.strategy.canary.steps[].experiment.templates[].metadata.annotations",
        "plan/experiments.rs (build: added to the template's pod metadata)",
    ),
    (
        "spec.strategy.canary.steps[].experiment.templates[].metadata.labels",
        "plan/experiments.rs (build: added to the template's pod labels and selector)",
    ),
    (
        "spec.strategy.canary.steps[].experiment.templates[].name",
        "plan/experiments.rs (build: copied into the step's Experiment, run by experiment/)",
    ),
    (
        "spec.strategy.canary.steps[].experiment.templates[].replicas",
        "plan/experiments.rs (build: copied into the step's Experiment, run by experiment/)",
    ),
    (
        "spec.strategy.canary.steps[].experiment.templates[].selector.matchExpressions[].key",
        "plan/experiments.rs (build: the template's selector)",
    ),
    (
        "spec.strategy.canary.steps[].experiment.templates[].selector.matchExpressions[].operator",
        "plan/experiments.rs (build: the template's selector)",
    ),
    (
        "spec.strategy.canary.steps[].experiment.templates[].selector.matchExpressions[].values[]",
        "plan/experiments.rs (build: the template's selector)",
    ),
    (
        "spec.strategy.canary.steps[].experiment.templates[].selector.matchLabels",
        "plan/experiments.rs (build: the template's selector)",
    ),
    (
        "spec.strategy.canary.steps[].experiment.templates[].service.name",
        "plan/experiments.rs (build: the template's Service)",
    ),
    (
        "spec.strategy.canary.steps[].experiment.templates[].specRef",
        "plan/experiments.rs (build: the stable or canary ReplicaSet's pod template)",
    ),
    (
        "spec.strategy.canary.steps[].experiment.templates[].weight",
        "plan/experiments.rs (weight_destinations), traffic/istio.rs, traffic/alb.rs (other routers refused)",
    ),
    (
        "spec.strategy.canary.steps[].pause.duration",
        "plan/canary.rs, plan/replicas.rs",
    ),
    (
        "spec.strategy.canary.steps[].setCanaryScale.matchTrafficWeight",
        "plan/canary.rs, plan/replicas.rs",
    ),
    (
        "spec.strategy.canary.steps[].setCanaryScale.replicas",
        "plan/canary.rs, plan/replicas.rs",
    ),
    (
        "spec.strategy.canary.steps[].setCanaryScale.weight",
        "plan/canary.rs, plan/replicas.rs",
    ),
    (
        "spec.strategy.canary.steps[].setHeaderRoute.match[].headerName",
        "traffic/istio.rs, traffic/gatewayapi.rs (ALB: refused)",
    ),
    (
        "spec.strategy.canary.steps[].setHeaderRoute.match[].headerValue.exact",
        "traffic/istio.rs, traffic/gatewayapi.rs (ALB: refused)",
    ),
    (
        "spec.strategy.canary.steps[].setHeaderRoute.match[].headerValue.prefix",
        "traffic/istio.rs, traffic/gatewayapi.rs (ALB: refused)",
    ),
    (
        "spec.strategy.canary.steps[].setHeaderRoute.match[].headerValue.regex",
        "traffic/istio.rs, traffic/gatewayapi.rs (ALB: refused)",
    ),
    (
        "spec.strategy.canary.steps[].setHeaderRoute.name",
        "traffic/istio.rs, traffic/gatewayapi.rs (ALB: refused)",
    ),
    (
        "spec.strategy.canary.steps[].setMirrorRoute.match[].headers",
        "traffic/istio.rs, traffic/gatewayapi.rs",
    ),
    (
        "spec.strategy.canary.steps[].setMirrorRoute.match[].method.exact",
        "traffic/istio.rs, traffic/gatewayapi.rs",
    ),
    (
        "spec.strategy.canary.steps[].setMirrorRoute.match[].method.prefix",
        "traffic/istio.rs, traffic/gatewayapi.rs",
    ),
    (
        "spec.strategy.canary.steps[].setMirrorRoute.match[].method.regex",
        "traffic/istio.rs, traffic/gatewayapi.rs",
    ),
    (
        "spec.strategy.canary.steps[].setMirrorRoute.match[].path.exact",
        "traffic/istio.rs, traffic/gatewayapi.rs",
    ),
    (
        "spec.strategy.canary.steps[].setMirrorRoute.match[].path.prefix",
        "traffic/istio.rs, traffic/gatewayapi.rs",
    ),
    (
        "spec.strategy.canary.steps[].setMirrorRoute.match[].path.regex",
        "traffic/istio.rs, traffic/gatewayapi.rs",
    ),
    (
        "spec.strategy.canary.steps[].setMirrorRoute.name",
        "traffic/istio.rs, traffic/gatewayapi.rs",
    ),
    (
        "spec.strategy.canary.steps[].setMirrorRoute.percentage",
        "traffic/istio.rs, traffic/gatewayapi.rs",
    ),
    (
        "spec.strategy.canary.steps[].setWeight",
        "plan/canary.rs, plan/replicas.rs",
    ),
    (
        "spec.strategy.canary.trafficRouting.alb.annotationPrefix",
        "traffic/alb.rs",
    ),
    (
        "spec.strategy.canary.trafficRouting.alb.ingress",
        "traffic/alb.rs",
    ),
    (
        "spec.strategy.canary.trafficRouting.alb.ingresses[]",
        "traffic/alb.rs",
    ),
    (
        "spec.strategy.canary.trafficRouting.alb.rootService",
        "traffic/alb.rs",
    ),
    (
        "spec.strategy.canary.trafficRouting.alb.servicePort",
        "traffic/alb.rs",
    ),
    (
        "spec.strategy.canary.trafficRouting.alb.stickinessConfig.durationSeconds",
        "traffic/alb.rs",
    ),
    (
        "spec.strategy.canary.trafficRouting.alb.stickinessConfig.enabled",
        "traffic/alb.rs",
    ),
    (
        "spec.strategy.canary.trafficRouting.istio.destinationRule.additionalSubsetNames[]",
        "traffic/istio.rs",
    ),
    (
        "spec.strategy.canary.trafficRouting.istio.destinationRule.canarySubsetName",
        "traffic/istio.rs",
    ),
    (
        "spec.strategy.canary.trafficRouting.istio.destinationRule.name",
        "traffic/istio.rs",
    ),
    (
        "spec.strategy.canary.trafficRouting.istio.destinationRule.stableSubsetName",
        "traffic/istio.rs",
    ),
    (
        "spec.strategy.canary.trafficRouting.istio.virtualService.name",
        "traffic/istio.rs",
    ),
    (
        "spec.strategy.canary.trafficRouting.istio.virtualService.routes[]",
        "traffic/istio.rs",
    ),
    (
        "spec.strategy.canary.trafficRouting.istio.virtualService.tcpRoutes[].port",
        "traffic/istio.rs",
    ),
    (
        "spec.strategy.canary.trafficRouting.istio.virtualService.tlsRoutes[].port",
        "traffic/istio.rs",
    ),
    (
        "spec.strategy.canary.trafficRouting.istio.virtualService.tlsRoutes[].sniHosts[]",
        "traffic/istio.rs",
    ),
    (
        "spec.strategy.canary.trafficRouting.istio.virtualServices[].name",
        "traffic/istio.rs",
    ),
    (
        "spec.strategy.canary.trafficRouting.istio.virtualServices[].routes[]",
        "traffic/istio.rs",
    ),
    (
        "spec.strategy.canary.trafficRouting.istio.virtualServices[].tcpRoutes[].port",
        "traffic/istio.rs",
    ),
    (
        "spec.strategy.canary.trafficRouting.istio.virtualServices[].tlsRoutes[].port",
        "traffic/istio.rs",
    ),
    (
        "spec.strategy.canary.trafficRouting.istio.virtualServices[].tlsRoutes[].sniHosts[]",
        "traffic/istio.rs",
    ),
    (
        "spec.strategy.canary.trafficRouting.managedRoutes[].name",
        "traffic/mod.rs (managed_route_names)",
    ),
    (
        "spec.strategy.canary.trafficRouting.maxTrafficWeight",
        "plan/replicas.rs, traffic/nginx.rs",
    ),
    (
        "spec.strategy.canary.trafficRouting.nginx.additionalIngressAnnotations",
        "traffic/nginx.rs",
    ),
    (
        "spec.strategy.canary.trafficRouting.nginx.annotationPrefix",
        "traffic/nginx.rs",
    ),
    (
        "spec.strategy.canary.trafficRouting.nginx.canaryIngressAnnotations",
        "traffic/nginx.rs",
    ),
    (
        "spec.strategy.canary.trafficRouting.nginx.stableIngress",
        "traffic/nginx.rs",
    ),
    (
        "spec.strategy.canary.trafficRouting.nginx.stableIngresses[]",
        "traffic/nginx.rs",
    ),
    (
        "spec.strategy.canary.trafficRouting.plugins",
        "traffic/gatewayapi.rs (argoproj-labs/gatewayAPI; other plugins refused)",
    ),
    (
        "spec.strategy.canary.trafficRouting.traefik.weightedTraefikServiceName",
        "traffic/traefik.rs",
    ),
    ("spec.workloadRef.apiVersion", "plan/workload.rs"),
    ("spec.workloadRef.kind", "plan/workload.rs"),
    ("spec.workloadRef.name", "plan/workload.rs"),
    ("spec.workloadRef.scaleDown", "plan/workload.rs"),
];

/// Subtrees the controller refuses (InvalidSpec naming the field), with a strategy or step
/// that sets them and the text the condition must contain.
fn refused() -> Vec<(&'static str, Value, &'static str)> {
    vec![
        (
            "spec.strategy.canary.steps[].plugin",
            json!({"canary": {"steps": [{"plugin": {"name": "x/y"}}]}}),
            "spec.strategy.canary.steps[0].plugin",
        ),
        (
            "spec.strategy.canary.pingPong",
            json!({"canary": {
                "pingPong": {"pingService": "ping", "pongService": "pong"},
                "trafficRouting": {"alb": {"ingress": "i", "rootService": "root", "servicePort": 80}},
                "steps": [{"setWeight": 10}]}}),
            "spec.strategy.canary.pingPong",
        ),
        (
            "spec.strategy.canary.trafficRouting.smi",
            json!({"canary": {"canaryService": "c", "stableService": "s",
                "trafficRouting": {"smi": {}}, "steps": [{"setWeight": 10}]}}),
            "`smi`",
        ),
        (
            "spec.strategy.canary.trafficRouting.ambassador",
            json!({"canary": {"canaryService": "c", "stableService": "s",
                "trafficRouting": {"ambassador": {"mappings": ["m"]}}, "steps": [{"setWeight": 10}]}}),
            "`ambassador`",
        ),
        (
            "spec.strategy.canary.trafficRouting.apisix",
            json!({"canary": {"canaryService": "c", "stableService": "s",
                "trafficRouting": {"apisix": {"route": {"name": "r"}}}, "steps": [{"setWeight": 10}]}}),
            "`apisix`",
        ),
        (
            "spec.strategy.canary.trafficRouting.appMesh",
            json!({"canary": {"canaryService": "c", "stableService": "s",
                "trafficRouting": {"appMesh": {"virtualService": {"name": "vs"}}}, "steps": [{"setWeight": 10}]}}),
            "`appMesh`",
        ),
    ]
}

/// Refusals inside fields that are otherwise acted on.
fn refused_values() -> Vec<(&'static str, Value, &'static str)> {
    vec![
        (
            "a traffic router plugin other than argoproj-labs/gatewayAPI",
            json!({"canary": {"canaryService": "c", "stableService": "s",
                "trafficRouting": {"plugins": {"acme/mesh": {}}}, "steps": [{"setWeight": 10}]}}),
            "acme/mesh",
        ),
        (
            "experiment template weights with the Gateway API plugin router",
            json!({"canary": {"canaryService": "c", "stableService": "s",
                "trafficRouting": {"plugins": {"argoproj-labs/gatewayAPI": {"httpRoute": "r", "namespace": "ns"}}},
                "steps": [{"setWeight": 10},
                    {"experiment": {"templates": [{"name": "a", "specRef": "canary", "weight": 5}]}}]}}),
            "spec.strategy.canary.steps[1].experiment.templates[0].weight",
        ),
        (
            "setHeaderRoute with ALB",
            json!({"canary": {"canaryService": "c", "stableService": "s",
                "trafficRouting": {"managedRoutes": [{"name": "h"}],
                                   "alb": {"ingress": "i", "servicePort": 80}},
                "steps": [{"setHeaderRoute": {"name": "h", "match": [
                    {"headerName": "x", "headerValue": {"exact": "1"}}]}}]}}),
            "setHeaderRoute",
        ),
    ]
}

/// The leaf field paths of the Rollout spec in the CRD (arrays as `[]`).
fn spec_fields() -> Vec<String> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/crds/rollout-crd.yaml"
    ))
    .expect("reading crds/rollout-crd.yaml");
    let crd: Value = serde_yaml::from_str(&text).expect("the CRD parses");
    let spec = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
    let mut out = Vec::new();
    fn walk(s: &Value, path: String, out: &mut Vec<String>) {
        if path == "spec.template" {
            out.push(path);
            return;
        }
        if let Some(props) = s["properties"].as_object() {
            for (k, v) in props {
                walk(v, format!("{path}.{k}"), out);
            }
        } else if s["type"] == "array" && s["items"].is_object() {
            walk(&s["items"], format!("{path}[]"), out);
        } else {
            out.push(path);
        }
    }
    walk(spec, "spec".into(), &mut out);
    out
}

fn under(path: &str, prefix: &str) -> bool {
    path == prefix
        || path
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
}

#[test]
fn every_spec_field_is_acted_on_or_refused() {
    let fields = spec_fields();
    assert!(fields.len() > 150, "the CRD lists {} fields", fields.len());
    let acted: BTreeSet<&str> = ACTED.iter().map(|(f, _)| *f).collect();
    let refused = refused();
    let mut neither = Vec::new();
    for f in &fields {
        let is_acted = acted.contains(f.as_str());
        let is_refused = refused.iter().any(|(prefix, _, _)| under(f, prefix));
        assert!(
            !(is_acted && is_refused),
            "{f} is listed both as acted on and as refused"
        );
        if !is_acted && !is_refused {
            neither.push(f.clone());
        }
    }
    assert!(
        neither.is_empty(),
        "spec fields the controller neither acts on nor refuses (implement them, or refuse \
         them with InvalidSpec in plan::entry::unsupported, and list them in \
         tests/field_audit.rs):\n{}",
        neither.join("\n")
    );
    // No stale rows: every listed field still exists.
    let known: BTreeSet<&str> = fields.iter().map(String::as_str).collect();
    let stale: Vec<&str> = acted
        .iter()
        .copied()
        .filter(|f| !known.contains(f))
        .collect();
    assert!(
        stale.is_empty(),
        "listed fields no longer in the CRD: {stale:?}"
    );
}

fn rollout(strategy: Value) -> Rollout {
    serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": "audit", "namespace": "ns", "uid": "uid-1", "generation": 1},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "audit"}},
            "template": {"metadata": {"labels": {"app": "audit"}},
                         "spec": {"containers": [{"name": "app", "image": "app:v1"}]}},
            "strategy": strategy
        }
    }))
    .expect("the audit Rollout decodes")
}

/// The InvalidSpec message the planner sets for this strategy.
fn invalid_spec_message(strategy: Value) -> Option<String> {
    let w = World::new(rollout(strategy));
    let plan = w.plan();
    plan.status
        .conditions
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.type_.as_deref() == Some("InvalidSpec") && c.status.as_deref() == Some("True"))
        .and_then(|c| c.message)
}

#[test]
fn every_refusal_is_an_invalid_spec_naming_the_field() {
    for (field, strategy, named) in refused().into_iter().chain(refused_values()) {
        let msg = invalid_spec_message(strategy)
            .unwrap_or_else(|| panic!("{field}: planned without an InvalidSpec condition"));
        assert!(
            msg.contains(named),
            "{field}: the condition does not name it: {msg}"
        );
    }
}
