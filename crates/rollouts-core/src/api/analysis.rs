//! `AnalysisTemplate`, `ClusterAnalysisTemplate` and `AnalysisRun`: metric queries that decide
//! whether a rollout proceeds.

use std::borrow::Cow;
use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::JobSpec;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube_core::crd::v1::CustomResourceExt;
use kube_core::object::HasSpec;
use kube_core::{ClusterResourceScope, Resource};
use kube_derive::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

// ---------------------------------------------------------------------------------------------
// Arguments, dry-run, retention (shared with Rollout and Experiment)
// ---------------------------------------------------------------------------------------------

/// AnalysisRunArgument: an argument passed by a Rollout to the AnalysisRuns it creates
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
#[schemars(extend("required" = ["name"]))]
pub struct AnalysisRunArgument {
    /// Name argument name
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Value a hardcoded value for the argument (one of value / valueFrom)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// ValueFrom a reference to where the value is stored (one of value / valueFrom)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_from: Option<ArgumentValueFrom>,
}

/// ArgumentValueFrom: where a Rollout takes an argument value from
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
pub struct ArgumentValueFrom {
    /// PodTemplateHashValue gets the value from one of the children ReplicaSet's Pod Template
    /// Hash: `Stable` or `Latest`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_template_hash_value: Option<String>,
    /// FieldRef: a field of the Rollout
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field_ref: Option<FieldRef>,
}

/// `podTemplateHashValue` values.
pub mod pod_template_hash_value {
    /// The stable ReplicaSet's hash.
    pub const STABLE: &str = "Stable";
    /// The latest ReplicaSet's hash.
    pub const LATEST: &str = "Latest";
}

/// FieldRef: a path of a field in the referencing object
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
#[schemars(extend("required" = ["fieldPath"]))]
pub struct FieldRef {
    /// Required: Path of the field to select in the specified API version
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field_path: Option<String>,
}

/// Argument: an argument of an AnalysisTemplate / AnalysisRun
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
#[schemars(extend("required" = ["name"]))]
pub struct Argument {
    /// Name is the name of the argument
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Value is the value of the argument
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// ValueFrom is a reference to where a secret or field is stored
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_from: Option<ValueFrom>,
}

/// ValueFrom: a secret key or a field reference
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
pub struct ValueFrom {
    /// Secret is a reference to where a secret is stored
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_key_ref: Option<SecretKeyRef>,
    /// FieldRef is a reference to a field of the owning object
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field_ref: Option<FieldRef>,
}

/// SecretKeyRef: a key of a Secret in the same namespace
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
#[schemars(extend("required" = ["key", "name"]))]
pub struct SecretKeyRef {
    /// Name is the name of the secret
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Key is the key of the secret to select from
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// DryRun runs the named metric(s) without letting them affect the outcome
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
#[schemars(extend("required" = ["metricName"]))]
pub struct DryRun {
    /// Name of the metric which needs to be evaluated in the Dry-Run mode. Wildcard '*' is
    /// supported and denotes all the available metrics.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metric_name: Option<String>,
}

/// MeasurementRetention: how many measurements of a metric to keep
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
#[schemars(extend("required" = ["limit", "metricName"]))]
pub struct MeasurementRetention {
    /// MetricName is the name of the metric on which this retention policy should be applied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metric_name: Option<String>,
    /// Limit is the maximum number of measurements to be retained for this given metric.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<i32>,
}

// ---------------------------------------------------------------------------------------------
// AnalysisTemplate / ClusterAnalysisTemplate
// ---------------------------------------------------------------------------------------------

/// AnalysisTemplateSpec is the specification for an AnalysisTemplate (and a
/// ClusterAnalysisTemplate)
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    crates(kube_core = "::kube_core"),
    group = "argoproj.io",
    version = "v1alpha1",
    kind = "AnalysisTemplate",
    plural = "analysistemplates",
    singular = "analysistemplate",
    shortname = "at",
    namespaced,
    derive = "PartialEq",
    derive = "Default",
    doc = "AnalysisTemplate holds the template for performing canary analysis",
    printcolumn = r#"{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp", "description": "Time since resource was created"}"#
)]
#[serde(default, rename_all = "camelCase")]
pub struct AnalysisTemplateSpec {
    /// Metrics contains the list of metrics to query as part of an analysis run
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics: Option<Vec<Metric>>,
    /// Args are the list of arguments to the template
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<Argument>>,
    /// DryRun object contains the settings for running the analysis in Dry-Run mode
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<Vec<DryRun>>,
    /// MeasurementRetention object contains the settings for retaining the number of
    /// measurements during the analysis
    #[serde(skip_serializing_if = "Option::is_none")]
    pub measurement_retention: Option<Vec<MeasurementRetention>>,
    /// Templates reference to a list of analysis templates to combine with the rest of the
    /// metrics for an AnalysisRun
    #[serde(skip_serializing_if = "Option::is_none")]
    pub templates: Option<Vec<crate::api::AnalysisTemplateRef>>,
}

/// ClusterAnalysisTemplate holds the template for performing canary analysis; cluster-scoped,
/// with the same spec as [`AnalysisTemplate`].
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterAnalysisTemplate {
    /// Standard object metadata
    pub metadata: ObjectMeta,
    /// The template
    pub spec: AnalysisTemplateSpec,
}

impl ClusterAnalysisTemplate {
    /// Spec based constructor
    pub fn new(name: &str, spec: AnalysisTemplateSpec) -> Self {
        Self {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                ..Default::default()
            },
            spec,
        }
    }
}

impl Serialize for ClusterAnalysisTemplate {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut obj = ser.serialize_struct("ClusterAnalysisTemplate", 4)?;
        obj.serialize_field("apiVersion", crate::api::API_VERSION)?;
        obj.serialize_field("kind", "ClusterAnalysisTemplate")?;
        obj.serialize_field("metadata", &self.metadata)?;
        obj.serialize_field("spec", &self.spec)?;
        obj.end()
    }
}

impl Resource for ClusterAnalysisTemplate {
    type DynamicType = ();
    type Scope = ClusterResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        "ClusterAnalysisTemplate".into()
    }
    fn group(_: &()) -> Cow<'_, str> {
        crate::api::GROUP.into()
    }
    fn version(_: &()) -> Cow<'_, str> {
        crate::api::VERSION.into()
    }
    fn api_version(_: &()) -> Cow<'_, str> {
        crate::api::API_VERSION.into()
    }
    fn plural(_: &()) -> Cow<'_, str> {
        "clusteranalysistemplates".into()
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

impl HasSpec for ClusterAnalysisTemplate {
    type Spec = AnalysisTemplateSpec;
    fn spec(&self) -> &AnalysisTemplateSpec {
        &self.spec
    }
    fn spec_mut(&mut self) -> &mut AnalysisTemplateSpec {
        &mut self.spec
    }
}

impl CustomResourceExt for ClusterAnalysisTemplate {
    /// The AnalysisTemplate CRD, renamed and made cluster-scoped.
    fn crd() -> CustomResourceDefinition {
        let mut crd = AnalysisTemplate::crd();
        crd.metadata.name = Some(Self::crd_name().to_string());
        crd.spec.scope = "Cluster".into();
        let names = &mut crd.spec.names;
        names.kind = "ClusterAnalysisTemplate".into();
        names.plural = "clusteranalysistemplates".into();
        names.singular = Some("clusteranalysistemplate".into());
        names.short_names = Some(vec!["cat".into()]);
        names.list_kind = Some("ClusterAnalysisTemplateList".into());
        for v in &mut crd.spec.versions {
            if let Some(root) = v
                .schema
                .as_mut()
                .and_then(|s| s.open_api_v3_schema.as_mut())
            {
                root.description = Some(
                    "ClusterAnalysisTemplate holds the template for performing canary analysis"
                        .into(),
                );
            }
        }
        crd
    }

    fn crd_name() -> &'static str {
        "clusteranalysistemplates.argoproj.io"
    }

    fn api_resource() -> kube_core::dynamic::ApiResource {
        kube_core::dynamic::ApiResource::erase::<Self>(&())
    }

    fn shortnames() -> &'static [&'static str] {
        &["cat"]
    }
}

// ---------------------------------------------------------------------------------------------
// Metrics
// ---------------------------------------------------------------------------------------------

/// Metric defines a metric in which to perform analysis
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
#[schemars(extend("required" = ["name", "provider"]))]
pub struct Metric {
    /// Name is the name of the metric
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Interval defines an interval string (e.g. 30s, 5m, 1h) between each measurement. If
    /// omitted, will perform a single measurement
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    /// InitialDelay how long the AnalysisRun should wait before starting this metric
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initial_delay: Option<String>,
    /// Count is the number of times to run the measurement. If both interval and count are
    /// omitted, the effective count is 1. If only interval is specified, metric runs
    /// indefinitely. If count > 1, interval must be specified.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<IntOrString>,
    /// SuccessCondition is an expression which determines if a measurement is considered
    /// successful
    #[serde(skip_serializing_if = "Option::is_none")]
    pub success_condition: Option<String>,
    /// FailureCondition is an expression which determines if a measurement is considered
    /// failed. If both success and failure conditions are specified, and the measurement
    /// does not fall into either condition, the measurement is considered Inconclusive
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_condition: Option<String>,
    /// FailureLimit is the maximum number of times the measurement is allowed to fail, before
    /// the entire metric is considered Failed (default: 0)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_limit: Option<IntOrString>,
    /// InconclusiveLimit is the maximum number of times the measurement is allowed to measure
    /// Inconclusive, before the entire metric is considered Inconclusive (default: 0)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inconclusive_limit: Option<IntOrString>,
    /// ConsecutiveErrorLimit is the maximum number of times the measurement is allowed to
    /// error in succession, before the metric is considered error (default: 4)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consecutive_error_limit: Option<IntOrString>,
    /// ConsecutiveSuccessLimit is the number of consecutive times the measurement must
    /// succeed for the entire metric to be considered Successful (default: 0, disabled)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consecutive_success_limit: Option<IntOrString>,
    /// Provider configuration to the external system to use to verify the analysis
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<MetricProvider>,
}

/// MetricProvider which external system to use to verify the analysis. Only one of the fields
/// should be set.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
pub struct MetricProvider {
    /// Prometheus specifies the prometheus metric to query
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<PrometheusMetric>,
    /// Kayenta specifies a Kayenta metric
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kayenta: Option<KayentaMetric>,
    /// Web specifies a generic HTTP web metric
    #[serde(skip_serializing_if = "Option::is_none")]
    pub web: Option<WebMetric>,
    /// Datadog specifies a datadog metric to query
    #[serde(skip_serializing_if = "Option::is_none")]
    pub datadog: Option<DatadogMetric>,
    /// Wavefront specifies the wavefront metric to query
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wavefront: Option<WavefrontMetric>,
    /// NewRelic specifies the newrelic metric to query
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_relic: Option<NewRelicMetric>,
    /// Job specifies the job metric run
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job: Option<JobMetric>,
    /// CloudWatch specifies the cloudWatch metric to query
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cloud_watch: Option<CloudWatchMetric>,
    /// Graphite specifies the Graphite metric to query
    #[serde(skip_serializing_if = "Option::is_none")]
    pub graphite: Option<GraphiteMetric>,
    /// Influxdb specifies the influxdb metric to query
    #[serde(skip_serializing_if = "Option::is_none")]
    pub influxdb: Option<InfluxdbMetric>,
    /// SkyWalking specifies the skywalking metric to query
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skywalking: Option<SkyWalkingMetric>,
    /// Plugin specifies the hashicorp go-plugin metric to query, keyed by plugin name
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::api::preserve_unknown")]
    pub plugin: Option<BTreeMap<String, serde_json::Value>>,
}

/// PrometheusMetric defines the prometheus query to perform canary analysis
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
pub struct PrometheusMetric {
    /// Address is the HTTP address and port of the prometheus server
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Query is a raw prometheus query to perform
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// Authentication details
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authentication: Option<Authentication>,
    /// Timeout represents the duration within which a prometheus query should complete. It is
    /// expressed in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i64>,
    /// Insecure skips host TLS verification
    #[serde(skip_serializing_if = "Option::is_none")]
    pub insecure: Option<bool>,
    /// Headers are optional HTTP headers to use in the request
    #[serde(skip_serializing_if = "Option::is_none")]
    pub headers: Option<Vec<WebMetricHeader>>,
    /// RangeQuery makes it possible to run a range query
    #[serde(skip_serializing_if = "Option::is_none")]
    pub range_query: Option<PrometheusRangeQueryArgs>,
}

/// PrometheusRangeQueryArgs: start/end expressions and step of a range query
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
pub struct PrometheusRangeQueryArgs {
    /// Start of the range, an expression evaluating to a time (e.g. `now() - duration("5m")`)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    /// End of the range, an expression evaluating to a time (e.g. `now()`)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
    /// Step of the query, a duration string (e.g. `1m`)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
}

/// Authentication method (SigV4, OAuth2 or basic)
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
pub struct Authentication {
    /// Sigv4 Config is the aws SigV4 configuration to use for SigV4 signing if using Amazon
    /// Managed Prometheus
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sigv4: Option<Sigv4Config>,
    /// OAuth2 config
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oauth2: Option<OAuth2Config>,
    /// BasicAuth config
    #[serde(skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<BasicAuth>,
}

/// Sigv4Config: AWS SigV4 signing settings
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
pub struct Sigv4Config {
    /// Region is the AWS Region to sign the SigV4 Request
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Profile is the Credential Profile used to sign the SigV4 Request
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// RoleARN is the IAM role used to sign the SIgV4 Request
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
}

/// OAuth2Config: OAuth2 client-credentials settings
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
pub struct OAuth2Config {
    /// OAuth2 provider token URL
    #[serde(rename = "tokenUrl", skip_serializing_if = "Option::is_none")]
    pub token_url: Option<String>,
    /// OAuth2 client ID
    #[serde(rename = "clientId", skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// OAuth2 client secret
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// OAuth2 scopes
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
}

/// BasicAuth: username and password
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
pub struct BasicAuth {
    /// Username
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Password
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// WebMetricHeader: one HTTP header
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
#[schemars(extend("required" = ["key", "value"]))]
pub struct WebMetricHeader {
    /// Header name
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Header value
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// WebMetric: a generic HTTP(S) request whose (JSON) response is evaluated
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
#[schemars(extend("required" = ["url"]))]
pub struct WebMetric {
    /// Method is the method of the web metric (empty defaults to GET)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// URL is the address of the web metric
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Headers are optional HTTP headers to use in the request
    #[serde(skip_serializing_if = "Option::is_none")]
    pub headers: Option<Vec<WebMetricHeader>>,
    /// Body is the body of the web metric (must be POST/PUT)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// TimeoutSeconds is the timeout for the request in seconds (default: 10)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<i64>,
    /// JSONPath is a JSON Path to use as the result variable (default: "{$}")
    #[serde(rename = "jsonPath", skip_serializing_if = "Option::is_none")]
    pub json_path: Option<String>,
    /// Insecure skips host TLS verification
    #[serde(skip_serializing_if = "Option::is_none")]
    pub insecure: Option<bool>,
    /// JSONBody is the body of the web metric in a json format (method must be POST/PUT)
    #[serde(rename = "jsonBody", skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::api::preserve_unknown")]
    pub json_body: Option<serde_json::Value>,
    /// Authentication details
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authentication: Option<Authentication>,
}

/// DatadogMetric: a Datadog query
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
pub struct DatadogMetric {
    /// Interval: the time window of the query (default 5m)
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "5m"))]
    pub interval: Option<String>,
    /// Query is a raw datadog query to perform (v1 API)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// Queries is a map of query_name_as_key: query. You can then use query_name_as_key
    /// inside Formula. Used for v2
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queries: Option<BTreeMap<String, String>>,
    /// Formula refers to the query names (keys of Queries) to combine them (v2)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub formula: Option<String>,
    /// ApiVersion refers to the Datadog API version being used (default: v1). v1 will
    /// eventually be deprecated.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "v1", "enum" = ["v1", "v2"]))]
    pub api_version: Option<String>,
    /// Aggregator is a type of aggregator used for metrics calculation (default: "") (v2)
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(extend(
        "enum" = ["avg", "min", "max", "sum", "last", "percentile", "mean", "l2norm", "area"]
    ))]
    pub aggregator: Option<String>,
    /// SecretRef refers to the secret holding the Datadog credentials
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretRef>,
    /// RequestTimeout: the per-request timeout (default 10s)
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "10s"))]
    pub request_timeout: Option<String>,
}

/// SecretRef: a Secret holding provider credentials
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
pub struct SecretRef {
    /// Name refers to the name of the secret that should be used to integrate with Datadog.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Namespaced indicates whether the secret is in the AnalysisRun's namespace (true) or
    /// the controller's namespace (false)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespaced: Option<bool>,
}

/// WavefrontMetric: a Wavefront query
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
pub struct WavefrontMetric {
    /// Address is the HTTP address and port of the wavefront server
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Query is a raw wavefront query to perform
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
}

/// NewRelicMetric: a New Relic NRQL query
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
#[schemars(extend("required" = ["query"]))]
pub struct NewRelicMetric {
    /// Profile is the name of the secret holding NR account configuration
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// Query is a raw newrelic NRQL query to perform
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// Timeout represents the duration within which a NRQL query should complete, in seconds
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i64>,
}

/// JobMetric: a Kubernetes Job whose success or failure is the measurement
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
#[schemars(extend("required" = ["spec"]))]
pub struct JobMetric {
    /// Metadata (labels, annotations) of the Job
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<crate::api::AnalysisRunMetadata>,
    /// Spec of the Job (stored as given; parsed as a `batch/v1` JobSpec)
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::api::preserve_unknown")]
    pub spec: Option<JobSpec>,
}

/// KayentaMetric: a Kayenta canary analysis
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
#[schemars(extend(
    "required" = [
        "address", "application", "canaryConfigName", "configurationAccountName",
        "metricsAccountName", "scopes", "storageAccountName", "threshold"
    ]
))]
pub struct KayentaMetric {
    /// Address of the Kayenta server
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Application name
    #[serde(skip_serializing_if = "Option::is_none")]
    pub application: Option<String>,
    /// Canary config name
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canary_config_name: Option<String>,
    /// Metrics account name
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_account_name: Option<String>,
    /// Configuration account name
    #[serde(skip_serializing_if = "Option::is_none")]
    pub configuration_account_name: Option<String>,
    /// Storage account name
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_account_name: Option<String>,
    /// Pass / marginal score thresholds
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold: Option<KayentaThreshold>,
    /// Scopes to compare
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<KayentaScope>>,
    /// Whether the analysis looks back over the whole interval
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lookback: Option<bool>,
}

/// KayentaThreshold: score thresholds
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
#[schemars(extend("required" = ["marginal", "pass"]))]
pub struct KayentaThreshold {
    /// Minimum score to pass
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pass: Option<i64>,
    /// Minimum score to be marginal (inconclusive)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub marginal: Option<i64>,
}

/// KayentaScope: a named pair of control and experiment scopes
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
#[schemars(extend("required" = ["controlScope", "experimentScope", "name"]))]
pub struct KayentaScope {
    /// Scope name
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The control (baseline) scope
    #[serde(skip_serializing_if = "Option::is_none")]
    pub control_scope: Option<ScopeDetail>,
    /// The experiment (canary) scope
    #[serde(skip_serializing_if = "Option::is_none")]
    pub experiment_scope: Option<ScopeDetail>,
}

/// ScopeDetail: one Kayenta scope
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
#[schemars(extend("required" = ["region", "scope", "step"]))]
pub struct ScopeDetail {
    /// Scope (query selector)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Region
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Step in seconds
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<i64>,
    /// Start time
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    /// End time
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
}

/// CloudWatchMetric: AWS CloudWatch GetMetricData queries
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
#[schemars(extend("required" = ["metricDataQueries"]))]
pub struct CloudWatchMetric {
    /// Interval: the time window of the queries (a duration string)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    /// The metric data queries
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metric_data_queries: Option<Vec<CloudWatchMetricDataQuery>>,
}

/// CloudWatchMetricDataQuery: one GetMetricData query
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
pub struct CloudWatchMetricDataQuery {
    /// Query id
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Metric math expression
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expression: Option<String>,
    /// Label
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The metric and statistic to retrieve
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metric_stat: Option<CloudWatchMetricStat>,
    /// Period in seconds
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period: Option<IntOrString>,
    /// Whether to return the data of this query
    #[serde(skip_serializing_if = "Option::is_none")]
    pub return_data: Option<bool>,
}

/// CloudWatchMetricStat: a metric, period and statistic
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
pub struct CloudWatchMetricStat {
    /// The metric
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metric: Option<CloudWatchMetricStatMetric>,
    /// Period in seconds
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period: Option<IntOrString>,
    /// Statistic (e.g. Average)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stat: Option<String>,
    /// Unit
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
}

/// CloudWatchMetricStatMetric: a metric name, namespace and dimensions
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
pub struct CloudWatchMetricStatMetric {
    /// Dimensions
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dimensions: Option<Vec<CloudWatchMetricStatMetricDimension>>,
    /// Metric name
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metric_name: Option<String>,
    /// Namespace
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// CloudWatchMetricStatMetricDimension: one dimension
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
pub struct CloudWatchMetricStatMetricDimension {
    /// Dimension name
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Dimension value
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// GraphiteMetric: a Graphite query
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
pub struct GraphiteMetric {
    /// Address is the HTTP address and port of the Graphite server
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Query is a raw Graphite query to perform
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
}

/// InfluxdbMetric: an InfluxDB (Flux) query
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
pub struct InfluxdbMetric {
    /// Profile is the name of the secret holding InfluxDB account configuration
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// Query is a raw InfluxDB flux query to perform
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
}

/// SkyWalkingMetric: an Apache SkyWalking GraphQL query
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
pub struct SkyWalkingMetric {
    /// Address of the SkyWalking OAP server
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// The GraphQL query
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// Interval (a duration string)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// AnalysisRun
// ---------------------------------------------------------------------------------------------

/// AnalysisRunSpec is the spec for an AnalysisRun resource
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    crates(kube_core = "::kube_core"),
    group = "argoproj.io",
    version = "v1alpha1",
    kind = "AnalysisRun",
    plural = "analysisruns",
    singular = "analysisrun",
    shortname = "ar",
    namespaced,
    status = "AnalysisRunStatus",
    derive = "PartialEq",
    derive = "Default",
    doc = "AnalysisRun is an instantiation of an AnalysisTemplate",
    printcolumn = r#"{"name": "Status", "type": "string", "jsonPath": ".status.phase", "description": "AnalysisRun status"}"#,
    printcolumn = r#"{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp", "description": "Time since resource was created"}"#
)]
#[serde(default, rename_all = "camelCase")]
#[schemars(extend("required" = ["metrics"]))]
pub struct AnalysisRunSpec {
    /// Metrics contains the list of metrics to query as part of an analysis run
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics: Option<Vec<Metric>>,
    /// Args are the list of arguments used in this analysis run
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<Argument>>,
    /// Terminate is used to prematurely stop the run (e.g. rollout completed and analysis is
    /// no longer desired)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub terminate: Option<bool>,
    /// DryRun object contains the settings for running the analysis in Dry-Run mode
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<Vec<DryRun>>,
    /// MeasurementRetention object contains the settings for retaining the number of
    /// measurements during the analysis
    #[serde(skip_serializing_if = "Option::is_none")]
    pub measurement_retention: Option<Vec<MeasurementRetention>>,
    /// TtlStrategy object contains the strategy for the time to live depending on if the
    /// analysis succeeded or failed
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl_strategy: Option<TtlStrategy>,
}

/// TtlStrategy defines the strategy for the time to live depending on if the analysis
/// succeeded or failed
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
pub struct TtlStrategy {
    /// SecondsAfterCompletion is the number of seconds to live after completion.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds_after_completion: Option<i32>,
    /// SecondsAfterFailure is the number of seconds to live after failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds_after_failure: Option<i32>,
    /// SecondsAfterSuccess is the number of seconds to live after success.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds_after_success: Option<i32>,
}

/// AnalysisRunStatus is the status for an AnalysisRun resource
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
#[schemars(extend("required" = ["phase"]))]
pub struct AnalysisRunStatus {
    /// Phase is the status of the analysis run (see [`analysis_phase`])
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// Message is a message explaining current status
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// MetricResults contains the metrics collected during the run
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metric_results: Option<Vec<MetricResult>>,
    /// StartedAt indicates when the analysisRun first started
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Time>,
    /// CompletedAt indicates when the analysisRun completed
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<Time>,
    /// RunSummary contains the final results from the metric executions
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_summary: Option<RunSummary>,
    /// DryRunSummary contains the final results from the metric executions in the dry-run
    /// mode
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dry_run_summary: Option<RunSummary>,
}

/// Phase values of AnalysisRuns, metric results and measurements (upstream `AnalysisPhase`).
pub mod analysis_phase {
    /// Not yet started.
    pub const PENDING: &str = "Pending";
    /// In progress.
    pub const RUNNING: &str = "Running";
    /// Completed successfully.
    pub const SUCCESSFUL: &str = "Successful";
    /// Completed with a failure.
    pub const FAILED: &str = "Failed";
    /// Completed with an error (the measurement could not be taken).
    pub const ERROR: &str = "Error";
    /// Completed without a clear success or failure.
    pub const INCONCLUSIVE: &str = "Inconclusive";

    /// Whether a phase is terminal (anything but Pending, Running or empty).
    pub fn is_completed(phase: &str) -> bool {
        matches!(phase, SUCCESSFUL | FAILED | ERROR | INCONCLUSIVE)
    }
}

/// RunSummary contains the final results from the metric executions
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
pub struct RunSummary {
    /// This is equal to the sum of Successful, Failed, Inconclusive
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<i32>,
    /// Successful is the number of times the metric was measured Successful
    #[serde(skip_serializing_if = "Option::is_none")]
    pub successful: Option<i32>,
    /// Failed is the number of times the metric was measured Failed
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed: Option<i32>,
    /// Inconclusive is the number of times the metric was measured Inconclusive
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inconclusive: Option<i32>,
    /// Error is the number of times an error was encountered during measurement
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<i32>,
}

/// MetricResult contain a list of the most recent measurements for a single metric along with
/// counters on how often the measurement
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
#[schemars(extend("required" = ["name", "phase"]))]
pub struct MetricResult {
    /// Name is the name of the metric
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Phase is the overall aggregate status of the metric
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// Measurements holds the most recent measurements collected for the metric
    #[serde(skip_serializing_if = "Option::is_none")]
    pub measurements: Option<Vec<Measurement>>,
    /// Message contains a message describing current condition (e.g. error messages)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Count is the number of times the metric was measured without Error
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<i32>,
    /// Successful is the number of times the metric was measured Successful
    #[serde(skip_serializing_if = "Option::is_none")]
    pub successful: Option<i32>,
    /// Failed is the number of times the metric was measured Failed
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed: Option<i32>,
    /// Inconclusive is the number of times the metric was measured Inconclusive
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inconclusive: Option<i32>,
    /// Error is the number of times an error was encountered during measurement
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<i32>,
    /// ConsecutiveError is the number of times an error was encountered during measurement
    /// in succession. Resets to zero when non-errors are encountered
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consecutive_error: Option<i32>,
    /// ConsecutiveSuccess is the number of times a measurement was Successful in succession.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consecutive_success: Option<i32>,
    /// DryRun indicates whether this metric is running in a dry-run mode or not
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<bool>,
    /// Metadata stores additional metadata about this metric. It is used by different
    /// providers to store the final state which gets used while taking measurements.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BTreeMap<String, String>>,
}

/// Measurement is a point in time result value of a single metric, and the time it was
/// measured
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
#[schemars(extend("required" = ["phase"]))]
pub struct Measurement {
    /// Phase is the status of this single measurement
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// Message contains a message describing current condition (e.g. error messages)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// StartedAt is the timestamp in which this measurement started to be measured
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Time>,
    /// FinishedAt is the timestamp in which this measurement completed and value was
    /// collected
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Time>,
    /// Value is the measured value of the metric
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Metadata stores additional metadata about this metric result, used by the different
    /// providers (e.g. kayenta run ID, job name)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BTreeMap<String, String>>,
    /// ResumeAt is the timestamp when the analysisRun should try to resume the measurement
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resume_at: Option<Time>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn metric_limits_are_int_or_string() {
        let m: Metric = serde_json::from_value(json!({
            "name": "m",
            "count": 5,
            "failureLimit": "{{args.limit}}",
            "inconclusiveLimit": 2,
            "consecutiveErrorLimit": "3",
            "consecutiveSuccessLimit": 0,
            "provider": {"prometheus": {"address": "http://p", "query": "up"}}
        }))
        .unwrap();
        assert_eq!(m.count, Some(IntOrString::Int(5)));
        assert_eq!(
            m.failure_limit,
            Some(IntOrString::String("{{args.limit}}".into()))
        );
        assert_eq!(
            m.consecutive_error_limit,
            Some(IntOrString::String("3".into()))
        );
        assert_eq!(m.consecutive_success_limit, Some(IntOrString::Int(0)));
        let back = serde_json::to_value(&m).unwrap();
        assert_eq!(back["count"], json!(5));
        assert_eq!(back["failureLimit"], json!("{{args.limit}}"));
    }

    #[test]
    fn providers_round_trip() {
        let provider = json!({
            "web": {"url": "http://x", "jsonBody": {"a": [1, {"b": true}]}, "timeoutSeconds": 20,
                "headers": [{"key": "k", "value": "v"}], "jsonPath": "{$.data}"},
            "datadog": {"apiVersion": "v2", "queries": {"a": "q"}, "formula": "a", "aggregator": "avg"},
            "job": {"metadata": {"labels": {"a": "b"}}, "spec": {"backoffLimit": 1, "template": {
                "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "i"}]}}}},
            "cloudWatch": {"metricDataQueries": [{"id": "q", "period": 300,
                "metricStat": {"period": "60", "stat": "Average"}}]},
            "plugin": {"argoproj-labs/sample": {"any": ["thing"]}},
            "newRelic": {"query": "q", "timeout": 30},
            "kayenta": {"threshold": {"pass": 90, "marginal": 75}, "scopes": [{"name": "s",
                "controlScope": {"scope": "a", "region": "r", "step": 60}}]}
        });
        let parsed: MetricProvider = serde_json::from_value(provider.clone()).unwrap();
        assert_eq!(
            parsed
                .job
                .as_ref()
                .unwrap()
                .spec
                .as_ref()
                .unwrap()
                .backoff_limit,
            Some(1)
        );
        assert_eq!(serde_json::to_value(&parsed).unwrap(), provider);
    }

    #[test]
    fn analysis_run_status_round_trips() {
        let status = json!({
            "phase": "Running",
            "startedAt": "2021-01-01T00:00:00Z",
            "metricResults": [{"name": "m", "phase": "Successful", "count": 1, "successful": 1,
                "consecutiveSuccess": 1, "dryRun": false,
                "measurements": [{"phase": "Successful", "value": "[0.99]",
                    "startedAt": "2021-01-01T00:00:00Z", "finishedAt": "2021-01-01T00:00:01Z",
                    "metadata": {"job-name": "j"}}]}],
            "runSummary": {"count": 1, "successful": 1},
            "dryRunSummary": {}
        });
        let parsed: AnalysisRunStatus = serde_json::from_value(status.clone()).unwrap();
        assert_eq!(serde_json::to_value(&parsed).unwrap(), status);
        assert!(!analysis_phase::is_completed(
            parsed.phase.as_deref().unwrap()
        ));
        assert!(analysis_phase::is_completed(analysis_phase::INCONCLUSIVE));
    }

    #[test]
    fn cluster_analysis_template_is_cluster_scoped_with_the_template_spec() {
        assert_eq!(
            ClusterAnalysisTemplate::kind(&()),
            "ClusterAnalysisTemplate"
        );
        assert_eq!(
            ClusterAnalysisTemplate::plural(&()),
            "clusteranalysistemplates"
        );
        assert_eq!(
            ClusterAnalysisTemplate::api_version(&()),
            "argoproj.io/v1alpha1"
        );
        let cat: ClusterAnalysisTemplate = serde_json::from_value(json!({
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "ClusterAnalysisTemplate",
            "metadata": {"name": "c"},
            "spec": {"metrics": [{"name": "m", "provider": {"wavefront": {"query": "q"}}}]}
        }))
        .unwrap();
        let back = serde_json::to_value(&cat).unwrap();
        assert_eq!(back["kind"], json!("ClusterAnalysisTemplate"));
        assert_eq!(back["apiVersion"], json!("argoproj.io/v1alpha1"));
        assert_eq!(
            back["spec"]["metrics"][0]["provider"]["wavefront"]["query"],
            json!("q")
        );
        let crd = ClusterAnalysisTemplate::crd();
        assert_eq!(crd.spec.scope, "Cluster");
        assert_eq!(crd.spec.names.short_names, Some(vec!["cat".to_string()]));
        assert_eq!(
            crd.metadata.name.as_deref(),
            Some("clusteranalysistemplates.argoproj.io")
        );
    }
}
