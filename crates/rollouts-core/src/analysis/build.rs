//! Building AnalysisRuns from templates: the API the Rollout side (planner) calls. Pure.
//!
//! The usual sequence for a canary analysis step, a background analysis or a blue-green
//! pre/post-promotion analysis:
//!
//! ```ignore
//! use rollouts::analysis::{self, BuildRequest};
//! // 1. The templates the step references, with the templates they include (recursively).
//! let (templates, cluster_templates) = analysis::resolve_templates(
//!     &step.templates,
//!     |name| ns_templates.get(name).map(|t| t.spec.clone()),
//!     |name| cluster_templates.get(name).map(|t| t.spec.clone()),
//! )?;
//! // 2. The Rollout's arguments, with podTemplateHashValue/fieldRef resolved.
//! let args = analysis::resolve_rollout_args(&step.args, &rollout, stable_hash, Some(new_hash))?;
//! // 3. The run.
//! let run = analysis::build_analysis_run(&BuildRequest {
//!     templates: &templates,
//!     cluster_templates: &cluster_templates,
//!     args: &args,
//!     name: format!("{}-{}-{}", rollout_name, new_hash, step_index),
//!     namespace: ns.clone(),
//!     owner: rollout_owner_reference,
//!     labels: analysis::build::step_labels(step_index, new_hash, instance_id),
//!     annotations: Default::default(),
//!     dry_run: step.dry_run.as_deref().unwrap_or_default(),
//!     measurement_retention: step.measurement_retention.as_deref().unwrap_or_default(),
//! })?;
//! ```
//!
//! Every error is a [`BuildError`] whose message is fit for the Rollout's status (upstream puts
//! them in the `InvalidSpec`/`AnalysisTemplateNotFound` condition messages).

use crate::api::consts;
use crate::api::{
    AnalysisRun, AnalysisRunArgument, AnalysisRunSpec, AnalysisTemplate, AnalysisTemplateRef,
    AnalysisTemplateSpec, Argument, ClusterAnalysisTemplate, DryRun, MeasurementRetention, Metric,
    Rollout, pod_template_hash_value,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use std::collections::{BTreeMap, BTreeSet};

/// An AnalysisTemplate or ClusterAnalysisTemplate the caller looked up.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ResolvedTemplate {
    /// The template's name.
    pub name: String,
    /// A ClusterAnalysisTemplate.
    pub cluster_scope: bool,
    /// Its spec.
    pub spec: AnalysisTemplateSpec,
}

impl From<&AnalysisTemplate> for ResolvedTemplate {
    fn from(t: &AnalysisTemplate) -> Self {
        ResolvedTemplate {
            name: t.metadata.name.clone().unwrap_or_default(),
            cluster_scope: false,
            spec: t.spec.clone(),
        }
    }
}

impl From<&ClusterAnalysisTemplate> for ResolvedTemplate {
    fn from(t: &ClusterAnalysisTemplate) -> Self {
        ResolvedTemplate {
            name: t.metadata.name.clone().unwrap_or_default(),
            cluster_scope: true,
            spec: t.spec.clone(),
        }
    }
}

/// Why a run cannot be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// A referenced template does not exist.
    #[error("{} '{name}' not found", if *cluster_scope { "ClusterAnalysisTemplate" } else { "AnalysisTemplate" })]
    TemplateNotFound { name: String, cluster_scope: bool },
    /// A template reference without `templateName`.
    #[error("analysis template reference has no templateName")]
    EmptyTemplateName,
    /// Templates include each other in a loop.
    #[error("analysis templates include each other in a cycle: {0}")]
    Cycle(String),
    /// The templates define no metric.
    #[error("analysis templates define no metrics")]
    NoMetrics,
    /// Two metrics of the combined templates share a name.
    #[error("two metrics have the same name '{0}'")]
    DuplicateMetric(String),
    /// Two templates give one argument different values.
    #[error(
        "Argument `{name}` specified multiple times with different values: '{first}', '{second}'"
    )]
    ConflictingArgument {
        name: String,
        first: String,
        second: String,
    },
    /// A template argument got no value (from the template or the caller).
    #[error("args.{0} was not resolved")]
    UnresolvedArgument(String),
    /// Two dry-run rules name the same metric.
    #[error("two Dry-Run metric rules have the same name '{0}'")]
    DuplicateDryRun(String),
    /// Two measurement-retention rules name the same metric.
    #[error("two Measurement Retention metric rules have the same name '{0}'")]
    DuplicateRetention(String),
    /// A `podTemplateHashValue` argument that cannot be resolved.
    #[error("argument {arg}: podTemplateHashValue {value}: {reason}")]
    PodTemplateHash {
        arg: String,
        value: String,
        reason: String,
    },
    /// A `fieldRef` argument that cannot be resolved.
    #[error("argument {arg}: fieldRef {path}: {source}")]
    FieldRef {
        arg: String,
        path: String,
        #[source]
        source: FieldPathError,
    },
}

/// A `fieldRef` path that does not lead to a value of the Rollout.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FieldPathError {
    /// A `metadata.*` path Kubernetes does not support.
    #[error("unsupported fieldPath: {0}")]
    Unsupported(String),
    /// A list index that is not a number.
    #[error("invalid index '{0}'")]
    Index(String),
    /// A list index past the end.
    #[error("index {0} out of range")]
    OutOfRange(usize),
    /// The path leads nowhere.
    #[error("invalid path {0} in rollout")]
    Invalid(String),
    /// The path leads to a list or an object.
    #[error("path {0} in rollout must terminate in a primitive value")]
    NotPrimitive(String),
}

/// Looks up `refs` and, recursively, the templates they include (`spec.templates`), in
/// upstream's order (each template, then its includes), without duplicates. Returns
/// (namespaced templates, cluster templates). `namespaced`/`cluster` look a template up by
/// name (typically in a reflector store).
pub fn resolve_templates(
    refs: &[AnalysisTemplateRef],
    namespaced: impl Fn(&str) -> Option<AnalysisTemplateSpec>,
    cluster: impl Fn(&str) -> Option<AnalysisTemplateSpec>,
) -> Result<(Vec<ResolvedTemplate>, Vec<ResolvedTemplate>), BuildError> {
    struct Walk<'a> {
        namespaced: &'a dyn Fn(&str) -> Option<AnalysisTemplateSpec>,
        cluster: &'a dyn Fn(&str) -> Option<AnalysisTemplateSpec>,
        seen: BTreeSet<(bool, String)>,
        path: Vec<(bool, String)>,
        out_ns: Vec<ResolvedTemplate>,
        out_cluster: Vec<ResolvedTemplate>,
    }
    impl Walk<'_> {
        fn visit(&mut self, refs: &[AnalysisTemplateRef]) -> Result<(), BuildError> {
            for r in refs {
                let name = r
                    .template_name
                    .clone()
                    .filter(|n| !n.is_empty())
                    .ok_or(BuildError::EmptyTemplateName)?;
                let scope = r.cluster_scope == Some(true);
                let key = (scope, name.clone());
                if self.path.contains(&key) {
                    let mut names: Vec<String> = self.path.iter().map(|(_, n)| n.clone()).collect();
                    names.push(name);
                    return Err(BuildError::Cycle(names.join(" -> ")));
                }
                let spec = if scope {
                    (self.cluster)(&name)
                } else {
                    (self.namespaced)(&name)
                }
                .ok_or_else(|| BuildError::TemplateNotFound {
                    name: name.clone(),
                    cluster_scope: scope,
                })?;
                if self.seen.insert(key.clone()) {
                    let t = ResolvedTemplate {
                        name: name.clone(),
                        cluster_scope: scope,
                        spec: spec.clone(),
                    };
                    if scope {
                        self.out_cluster.push(t);
                    } else {
                        self.out_ns.push(t);
                    }
                }
                if let Some(inner) = spec.templates.as_deref().filter(|t| !t.is_empty()) {
                    self.path.push(key);
                    self.visit(inner)?;
                    self.path.pop();
                }
            }
            Ok(())
        }
    }
    let mut w = Walk {
        namespaced: &namespaced,
        cluster: &cluster,
        seen: BTreeSet::new(),
        path: Vec::new(),
        out_ns: Vec::new(),
        out_cluster: Vec::new(),
    };
    w.visit(refs)?;
    Ok((w.out_ns, w.out_cluster))
}

/// What [`build_analysis_run`] needs.
#[derive(Clone, Debug)]
pub struct BuildRequest<'a> {
    /// AnalysisTemplates (from [`resolve_templates`]).
    pub templates: &'a [ResolvedTemplate],
    /// ClusterAnalysisTemplates (from [`resolve_templates`]).
    pub cluster_templates: &'a [ResolvedTemplate],
    /// The caller's arguments, already resolved (see [`resolve_rollout_args`]). Only arguments
    /// the templates declare are used; a declared argument without a value, a `valueFrom` or a
    /// template default is an error.
    pub args: &'a [Argument],
    /// The run's name.
    pub name: String,
    /// The run's namespace.
    pub namespace: String,
    /// The owner (the Rollout or Experiment), as a controller reference.
    pub owner: OwnerReference,
    /// Labels of the run (e.g. [`step_labels`]).
    pub labels: BTreeMap<String, String>,
    /// Annotations of the run.
    pub annotations: BTreeMap<String, String>,
    /// The caller's dry-run rules (merged with the templates').
    pub dry_run: &'a [DryRun],
    /// The caller's measurement-retention rules (merged with the templates').
    pub measurement_retention: &'a [MeasurementRetention],
}

fn all_templates<'a>(req: &'a BuildRequest<'_>) -> impl Iterator<Item = &'a ResolvedTemplate> {
    req.templates.iter().chain(req.cluster_templates.iter())
}

/// Upstream's `flattenArgs`: the union of the templates' arguments; two values for one name
/// are an error, a value wins over none.
fn flatten_args(req: &BuildRequest<'_>) -> Result<Vec<Argument>, BuildError> {
    let mut combined: Vec<Argument> = Vec::new();
    for arg in all_templates(req).flat_map(|t| t.spec.args.iter().flatten()) {
        match combined.iter_mut().find(|a| a.name == arg.name) {
            Some(prev) => {
                if let (Some(a), Some(b)) = (&prev.value, &arg.value)
                    && a != b
                {
                    return Err(BuildError::ConflictingArgument {
                        name: arg.name.clone().unwrap_or_default(),
                        first: a.clone(),
                        second: b.clone(),
                    });
                }
                if prev.value.is_none() {
                    *prev = arg.clone();
                }
            }
            None => combined.push(arg.clone()),
        }
    }
    Ok(combined)
}

/// Upstream's `MergeArgs`: the caller's values for the templates' arguments; every argument
/// must end with a value or a `valueFrom`.
pub fn merge_args(
    incoming: &[Argument],
    template_args: &[Argument],
) -> Result<Vec<Argument>, BuildError> {
    let mut out = template_args.to_vec();
    for arg in incoming {
        if let Some(t) = out.iter_mut().find(|a| a.name == arg.name) {
            if arg.value.is_some() {
                t.value = arg.value.clone();
            } else if arg.value_from.is_some() {
                t.value_from = arg.value_from.clone();
            }
        }
    }
    if let Some(a) = out
        .iter()
        .find(|a| a.value.is_none() && a.value_from.is_none())
    {
        return Err(BuildError::UnresolvedArgument(
            a.name.clone().unwrap_or_default(),
        ));
    }
    Ok(out)
}

/// Builds an AnalysisRun from templates, as upstream's `NewAnalysisRunFromTemplates`:
///
/// - metrics: the templates' metrics, namespaced templates first (duplicate names are an error);
/// - args: the templates' declared arguments, with the caller's values;
/// - dryRun / measurementRetention: the caller's rules then the templates' (a metric named by
///   two rules is an error);
/// - metadata: `name`, `namespace`, `owner` as the only owner reference, `labels`,
///   `annotations` plus [`crate::analysis::METRIC_TEMPLATES_ANNOTATION`] (which template each
///   metric came from, for the exported gauges).
///
/// The run is not otherwise validated: an invalid metric makes the run end in Error with the
/// reason in its status, as upstream.
pub fn build_analysis_run(req: &BuildRequest<'_>) -> Result<AnalysisRun, BuildError> {
    let mut metrics: Vec<Metric> = Vec::new();
    let mut origin: BTreeMap<String, String> = BTreeMap::new();
    for t in all_templates(req) {
        for m in t.spec.metrics.iter().flatten() {
            let name = m.name.clone().unwrap_or_default();
            if origin.insert(name.clone(), t.name.clone()).is_some() {
                return Err(BuildError::DuplicateMetric(name));
            }
            metrics.push(m.clone());
        }
    }
    if metrics.is_empty() {
        return Err(BuildError::NoMetrics);
    }
    let template_args = flatten_args(req)?;
    let args = merge_args(req.args, &template_args)?;

    let mut dry_run: Vec<DryRun> = req.dry_run.to_vec();
    dry_run.extend(all_templates(req).flat_map(|t| t.spec.dry_run.iter().flatten().cloned()));
    let mut names = BTreeSet::new();
    for d in &dry_run {
        let n = d.metric_name.clone().unwrap_or_default();
        if !names.insert(n.clone()) {
            return Err(BuildError::DuplicateDryRun(n));
        }
    }
    let mut retention: Vec<MeasurementRetention> = req.measurement_retention.to_vec();
    retention.extend(
        all_templates(req).flat_map(|t| t.spec.measurement_retention.iter().flatten().cloned()),
    );
    let mut names = BTreeSet::new();
    for r in &retention {
        let n = r.metric_name.clone().unwrap_or_default();
        if !names.insert(n.clone()) {
            return Err(BuildError::DuplicateRetention(n));
        }
    }

    let mut annotations = req.annotations.clone();
    if let Ok(json) = serde_json::to_string(&origin) {
        annotations.insert(crate::analysis::METRIC_TEMPLATES_ANNOTATION.into(), json);
    }
    Ok(AnalysisRun {
        metadata: ObjectMeta {
            name: Some(req.name.clone()),
            namespace: Some(req.namespace.clone()),
            owner_references: Some(vec![req.owner.clone()]),
            labels: (!req.labels.is_empty()).then(|| req.labels.clone()),
            annotations: Some(annotations),
            ..Default::default()
        },
        spec: AnalysisRunSpec {
            metrics: Some(metrics),
            args: (!args.is_empty()).then_some(args),
            dry_run: (!dry_run.is_empty()).then_some(dry_run),
            measurement_retention: (!retention.is_empty()).then_some(retention),
            ..Default::default()
        },
        status: None,
    })
}

fn labels_with(
    mut labels: BTreeMap<String, String>,
    instance_id: Option<&str>,
) -> BTreeMap<String, String> {
    if let Some(id) = instance_id.filter(|i| !i.is_empty()) {
        labels.insert(consts::LABEL_KEY_CONTROLLER_INSTANCE_ID.into(), id.into());
    }
    labels
}

/// Labels of a run created by a canary analysis step (upstream's `StepLabels`).
pub fn step_labels(
    index: i32,
    pod_hash: &str,
    instance_id: Option<&str>,
) -> BTreeMap<String, String> {
    labels_with(
        BTreeMap::from([
            (
                consts::DEFAULT_ROLLOUT_UNIQUE_LABEL_KEY.into(),
                pod_hash.into(),
            ),
            (
                consts::ROLLOUT_TYPE_LABEL.into(),
                consts::ROLLOUT_TYPE_STEP_LABEL.into(),
            ),
            (
                consts::ROLLOUT_CANARY_STEP_INDEX_LABEL.into(),
                index.to_string(),
            ),
        ]),
        instance_id,
    )
}

/// Labels of a background analysis run, or of a blue-green pre/post-promotion run with
/// `rollout_type` = `consts::ROLLOUT_TYPE_PRE_PROMOTION_LABEL` / `..._POST_PROMOTION_LABEL`.
pub fn run_labels(
    rollout_type: &str,
    pod_hash: &str,
    instance_id: Option<&str>,
) -> BTreeMap<String, String> {
    labels_with(
        BTreeMap::from([
            (
                consts::DEFAULT_ROLLOUT_UNIQUE_LABEL_KEY.into(),
                pod_hash.into(),
            ),
            (consts::ROLLOUT_TYPE_LABEL.into(), rollout_type.into()),
        ]),
        instance_id,
    )
}

/// Resolves a Rollout's analysis arguments (upstream's `BuildArgumentsForRolloutAnalysisRun`):
/// `value` as is; `valueFrom.podTemplateHashValue` `Stable`/`Latest` to the given hashes;
/// `valueFrom.fieldRef` to a field of the Rollout — `metadata.name`, `metadata.namespace`,
/// `metadata.uid`, `metadata.labels['k']`, `metadata.annotations['k']`, or any path into the
/// Rollout's JSON (`spec.template.spec.containers[0].image`) ending in a primitive.
pub fn resolve_rollout_args(
    args: &[AnalysisRunArgument],
    rollout: &Rollout,
    stable_hash: Option<&str>,
    latest_hash: Option<&str>,
) -> Result<Vec<Argument>, BuildError> {
    let mut json: Option<serde_json::Value> = None;
    let mut out = Vec::with_capacity(args.len());
    for a in args {
        let name = a.name.clone().unwrap_or_default();
        let mut value = a.value.clone();
        if let Some(vf) = &a.value_from {
            if let Some(h) = &vf.pod_template_hash_value {
                let hash = match h.as_str() {
                    pod_template_hash_value::LATEST => latest_hash,
                    pod_template_hash_value::STABLE => stable_hash,
                    _ => {
                        return Err(BuildError::PodTemplateHash {
                            arg: name,
                            value: h.clone(),
                            reason: "must be Stable or Latest".into(),
                        });
                    }
                };
                value = Some(
                    hash.ok_or_else(|| BuildError::PodTemplateHash {
                        arg: name.clone(),
                        value: h.clone(),
                        reason: "no such ReplicaSet yet".into(),
                    })?
                    .to_string(),
                );
            } else if let Some(fr) = &vf.field_ref {
                let path = fr.field_path.clone().unwrap_or_default();
                let v = if path.starts_with("metadata") {
                    metadata_field(rollout, &path)
                } else {
                    let j = match &json {
                        Some(j) => j,
                        None => json.insert(serde_json::to_value(rollout).unwrap_or_default()),
                    };
                    json_field(j, &path)
                };
                value = Some(v.map_err(|source| BuildError::FieldRef {
                    arg: name.clone(),
                    path: path.clone(),
                    source,
                })?);
            }
        }
        out.push(Argument {
            name: Some(name),
            value,
            value_from: None,
        });
    }
    Ok(out)
}

fn format_map(m: &BTreeMap<String, String>) -> String {
    m.iter()
        .map(|(k, v)| format!("{k}={}", serde_json::to_string(v).unwrap_or_default()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Kubernetes' `fieldpath.ExtractFieldPathAsString` for the metadata fields it supports.
fn metadata_field(ro: &Rollout, path: &str) -> Result<String, FieldPathError> {
    let md = &ro.metadata;
    let subscript = |prefix: &str| -> Option<String> {
        let rest = path
            .strip_prefix(prefix)?
            .strip_prefix('[')?
            .strip_suffix(']')?;
        let key = rest
            .strip_prefix('\'')
            .and_then(|r| r.strip_suffix('\''))
            .or_else(|| rest.strip_prefix('"').and_then(|r| r.strip_suffix('"')))?;
        Some(key.to_string())
    };
    let empty = BTreeMap::new();
    match path {
        "metadata.name" => Ok(md.name.clone().unwrap_or_default()),
        "metadata.namespace" => Ok(md.namespace.clone().unwrap_or_default()),
        "metadata.uid" => Ok(md.uid.clone().unwrap_or_default()),
        "metadata.labels" => Ok(format_map(md.labels.as_ref().unwrap_or(&empty))),
        "metadata.annotations" => Ok(format_map(md.annotations.as_ref().unwrap_or(&empty))),
        _ => {
            if let Some(k) = subscript("metadata.labels") {
                Ok(md
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(&k))
                    .cloned()
                    .unwrap_or_default())
            } else if let Some(k) = subscript("metadata.annotations") {
                Ok(md
                    .annotations
                    .as_ref()
                    .and_then(|l| l.get(&k))
                    .cloned()
                    .unwrap_or_default())
            } else {
                Err(FieldPathError::Unsupported(path.to_string()))
            }
        }
    }
}

/// Upstream's `extractValueFromRollout`: a `.`/`[]`-separated path into the Rollout's JSON.
fn json_field(root: &serde_json::Value, path: &str) -> Result<String, FieldPathError> {
    let invalid = || FieldPathError::Invalid(path.to_string());
    let mut cur = root;
    for section in path.split(['.', '[', ']']).filter(|s| !s.is_empty()) {
        cur = match cur {
            serde_json::Value::Array(a) => {
                let i: usize = section
                    .parse()
                    .map_err(|_| FieldPathError::Index(section.to_string()))?;
                a.get(i).ok_or(FieldPathError::OutOfRange(i))?
            }
            serde_json::Value::Object(o) => o.get(section).ok_or_else(invalid)?,
            _ => return Err(invalid()),
        };
    }
    match cur {
        serde_json::Value::Null => Err(invalid()),
        serde_json::Value::Array(_) | serde_json::Value::Object(_) => {
            Err(FieldPathError::NotPrimitive(path.to_string()))
        }
        serde_json::Value::String(s) => Ok(s.clone()),
        other => Ok(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(v: serde_json::Value) -> AnalysisTemplateSpec {
        serde_json::from_value(v).unwrap()
    }

    fn tmpl(name: &str, cluster: bool, v: serde_json::Value) -> ResolvedTemplate {
        ResolvedTemplate {
            name: name.into(),
            cluster_scope: cluster,
            spec: spec(v),
        }
    }

    fn args(v: serde_json::Value) -> Vec<Argument> {
        serde_json::from_value(v).unwrap()
    }

    fn owner() -> OwnerReference {
        OwnerReference {
            api_version: "argoproj.io/v1alpha1".into(),
            kind: "Rollout".into(),
            name: "ro".into(),
            uid: "uid-ro".into(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }
    }

    fn request<'a>(
        templates: &'a [ResolvedTemplate],
        cluster: &'a [ResolvedTemplate],
        args: &'a [Argument],
    ) -> BuildRequest<'a> {
        BuildRequest {
            templates,
            cluster_templates: cluster,
            args,
            name: "ro-abc-2".into(),
            namespace: "ns".into(),
            owner: owner(),
            labels: step_labels(2, "abc", Some("shard-1")),
            annotations: BTreeMap::new(),
            dry_run: &[],
            measurement_retention: &[],
        }
    }

    #[test]
    fn builds_a_run_from_templates_and_args() {
        let ts = [tmpl(
            "success-rate",
            false,
            json!({
            "args": [{"name": "service"}, {"name": "threshold", "value": "0.95"}],
            "dryRun": [{"metricName": "latency"}],
            "metrics": [
                {"name": "success-rate", "provider": {"prometheus": {"query": "{{args.service}}"}}},
                {"name": "latency", "provider": {"web": {"url": "http://x"}}}]}),
        )];
        let cs = [tmpl(
            "errors",
            true,
            json!({
            "args": [{"name": "service"}],
            "measurementRetention": [{"metricName": "errors", "limit": 20}],
            "metrics": [{"name": "errors", "provider": {"job": {}}}]}),
        )];
        let incoming = args(json!([
            {"name": "service", "value": "checkout"}, {"name": "unused", "value": "x"}]));
        let mut req = request(&ts, &cs, &incoming);
        let extra_dry = [DryRun {
            metric_name: Some("errors".into()),
        }];
        req.dry_run = &extra_dry;
        let run = build_analysis_run(&req).unwrap();
        assert_eq!(run.metadata.name.as_deref(), Some("ro-abc-2"));
        assert_eq!(run.metadata.namespace.as_deref(), Some("ns"));
        assert_eq!(run.metadata.owner_references, Some(vec![owner()]));
        let labels = run.metadata.labels.clone().unwrap();
        assert_eq!(labels["rollouts-pod-template-hash"], "abc");
        assert_eq!(labels["rollout-type"], "Step");
        assert_eq!(labels["step-index"], "2");
        assert_eq!(
            labels["argo-rollouts.argoproj.io/controller-instance-id"],
            "shard-1"
        );
        let names: Vec<_> = run
            .spec
            .metrics
            .iter()
            .flatten()
            .map(|m| m.name.clone().unwrap())
            .collect();
        assert_eq!(names, vec!["success-rate", "latency", "errors"]);
        assert_eq!(
            serde_json::to_value(&run.spec.args).unwrap(),
            json!([{"name": "service", "value": "checkout"}, {"name": "threshold", "value": "0.95"}])
        );
        let dry: Vec<_> = run
            .spec
            .dry_run
            .iter()
            .flatten()
            .map(|d| d.metric_name.clone().unwrap())
            .collect();
        assert_eq!(dry, vec!["errors", "latency"], "the caller's rules first");
        assert_eq!(
            run.spec.measurement_retention.as_ref().unwrap()[0].limit,
            Some(20)
        );
        let origin: BTreeMap<String, String> = serde_json::from_str(
            &run.metadata.annotations.as_ref().unwrap()
                [crate::analysis::METRIC_TEMPLATES_ANNOTATION],
        )
        .unwrap();
        assert_eq!(origin["errors"], "errors");
        assert_eq!(origin["latency"], "success-rate");
        // The run is valid for the core.
        assert!(crate::analysis::core::prepare(&run).is_ok());
    }

    #[test]
    fn build_errors() {
        let a = tmpl(
            "a",
            false,
            json!({"metrics": [{"name": "m", "provider": {"job": {}}}]}),
        );
        let b = tmpl(
            "b",
            false,
            json!({"metrics": [{"name": "m", "provider": {"job": {}}}]}),
        );
        let both = [a.clone(), b];
        assert_eq!(
            build_analysis_run(&request(&both, &[], &[])).unwrap_err(),
            BuildError::DuplicateMetric("m".into())
        );
        let needs = [tmpl(
            "a",
            false,
            json!({"args": [{"name": "svc"}],
            "metrics": [{"name": "m", "provider": {"job": {}}}]}),
        )];
        let e = build_analysis_run(&request(&needs, &[], &[])).unwrap_err();
        assert_eq!(e.to_string(), "args.svc was not resolved");
        let secret = args(
            json!([{"name": "svc", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]),
        );
        assert!(build_analysis_run(&request(&needs, &[], &secret)).is_ok());
        let conflicting = [
            tmpl(
                "a",
                false,
                json!({"args": [{"name": "x", "value": "1"}], "metrics": [{"name": "m1", "provider": {"job": {}}}]}),
            ),
            tmpl(
                "b",
                false,
                json!({"args": [{"name": "x", "value": "2"}], "metrics": [{"name": "m2", "provider": {"job": {}}}]}),
            ),
        ];
        assert_eq!(
            build_analysis_run(&request(&conflicting, &[], &[]))
                .unwrap_err()
                .to_string(),
            "Argument `x` specified multiple times with different values: '1', '2'"
        );
        let empty = [tmpl("e", false, json!({}))];
        assert_eq!(
            build_analysis_run(&request(&empty, &[], &[])).unwrap_err(),
            BuildError::NoMetrics
        );
        let dup_dry = [tmpl(
            "a",
            false,
            json!({"dryRun": [{"metricName": "m"}],
            "metrics": [{"name": "m", "provider": {"job": {}}}]}),
        )];
        let mut req = request(&dup_dry, &[], &[]);
        let dr = [DryRun {
            metric_name: Some("m".into()),
        }];
        req.dry_run = &dr;
        assert_eq!(
            build_analysis_run(&req).unwrap_err(),
            BuildError::DuplicateDryRun("m".into())
        );
    }

    #[test]
    fn resolves_included_templates() {
        let ns: BTreeMap<&str, AnalysisTemplateSpec> = BTreeMap::from([
            (
                "top",
                spec(
                    json!({"templates": [{"templateName": "inner"}, {"templateName": "shared", "clusterScope": true}],
                "metrics": [{"name": "a", "provider": {"job": {}}}]}),
                ),
            ),
            (
                "inner",
                spec(
                    json!({"templates": [{"templateName": "shared", "clusterScope": true}],
                "metrics": [{"name": "b", "provider": {"job": {}}}]}),
                ),
            ),
            (
                "loop1",
                spec(json!({"templates": [{"templateName": "loop2"}]})),
            ),
            (
                "loop2",
                spec(json!({"templates": [{"templateName": "loop1"}]})),
            ),
        ]);
        let cl: BTreeMap<&str, AnalysisTemplateSpec> = BTreeMap::from([(
            "shared",
            spec(json!({"metrics": [{"name": "c", "provider": {"job": {}}}]})),
        )]);
        let lookup_ns = |n: &str| ns.get(n).cloned();
        let lookup_cl = |n: &str| cl.get(n).cloned();
        let refs = |n: &str, cluster: bool| {
            vec![AnalysisTemplateRef {
                template_name: Some(n.into()),
                cluster_scope: Some(cluster),
            }]
        };
        let (t, c) = resolve_templates(&refs("top", false), lookup_ns, lookup_cl).unwrap();
        let names: Vec<_> = t.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, vec!["top", "inner"]);
        assert_eq!(c.len(), 1, "an included template is used once");
        let run = build_analysis_run(&request(&t, &c, &[])).unwrap();
        assert_eq!(run.spec.metrics.unwrap().len(), 3);
        let e = resolve_templates(&refs("loop1", false), lookup_ns, lookup_cl).unwrap_err();
        assert_eq!(e, BuildError::Cycle("loop1 -> loop2 -> loop1".into()));
        let e = resolve_templates(&refs("nope", true), lookup_ns, lookup_cl).unwrap_err();
        assert_eq!(e.to_string(), "ClusterAnalysisTemplate 'nope' not found");
    }

    #[test]
    fn resolves_rollout_arguments() {
        let ro: Rollout = serde_json::from_value(json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
            "metadata": {"name": "guestbook", "namespace": "prod", "uid": "u1",
                "labels": {"app": "guestbook"}, "annotations": {"team": "web"}},
            "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]}},
                "strategy": {"canary": {"canaryService": "gb-canary"}}}
        }))
        .unwrap();
        let input: Vec<AnalysisRunArgument> = serde_json::from_value(json!([
            {"name": "plain", "value": "v"},
            {"name": "stable", "valueFrom": {"podTemplateHashValue": "Stable"}},
            {"name": "latest", "valueFrom": {"podTemplateHashValue": "Latest"}},
            {"name": "name", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "app", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
            {"name": "team", "valueFrom": {"fieldRef": {"fieldPath": "metadata.annotations[\"team\"]"}}},
            {"name": "image", "valueFrom": {"fieldRef": {"fieldPath": "spec.template.spec.containers[0].image"}}},
            {"name": "svc", "valueFrom": {"fieldRef": {"fieldPath": "spec.strategy.canary.canaryService"}}}
        ]))
        .unwrap();
        let out = resolve_rollout_args(&input, &ro, Some("s1"), Some("l2")).unwrap();
        let got: Vec<(String, String)> = out
            .into_iter()
            .map(|a| (a.name.unwrap(), a.value.unwrap()))
            .collect();
        let want: Vec<(String, String)> = [
            ("plain", "v"),
            ("stable", "s1"),
            ("latest", "l2"),
            ("name", "guestbook"),
            ("app", "guestbook"),
            ("team", "web"),
            ("image", "nginx:1.27"),
            ("svc", "gb-canary"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        assert_eq!(got, want);
        let bad: Vec<AnalysisRunArgument> = serde_json::from_value(json!([
            {"name": "x", "valueFrom": {"fieldRef": {"fieldPath": "spec.template.spec"}}}]))
        .unwrap();
        assert!(matches!(
            resolve_rollout_args(&bad, &ro, None, None),
            Err(BuildError::FieldRef { .. })
        ));
        let no_stable: Vec<AnalysisRunArgument> = serde_json::from_value(json!([
            {"name": "x", "valueFrom": {"podTemplateHashValue": "Stable"}}]))
        .unwrap();
        assert!(matches!(
            resolve_rollout_args(&no_stable, &ro, None, Some("l")),
            Err(BuildError::PodTemplateHash { .. })
        ));
    }
}
