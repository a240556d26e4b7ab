//! Validation table tests.

use super::apimachinery::*;
use super::error::*;
use super::gofmt::*;
use super::rollout::*;
use crate::api::{Rollout, RolloutPause, RouteMatch, StringMatch};
use serde_json::{Value, json};
use std::collections::BTreeMap;

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
    let map: BTreeMap<String, String> = [("b".into(), "2".into()), ("a".into(), "1".into())].into();
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
        "0", "1", "100m", "0.5", ".5", "1.", "1Gi", "1Ki", "5E", "1e3", "1E-3", "+1", "-0", "0.000",
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
