//! Ports of Kubernetes' own checks (`k8s.io/apimachinery` and the pod template subset
//! described in the parent module's docs): label selectors, labels and annotations, names,
//! quantities, containers.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use k8s_openapi::api::core::v1::{PodTemplateSpec, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::error::*;
use super::gofmt::*;
use super::messages as m;

// Selector and pod template (Kubernetes' validation, the subset described in the module docs)
// ---------------------------------------------------------------------------------------------

/// A converted label selector (`metav1.LabelSelectorAsSelector`).
pub(super) enum Selector<'a> {
    /// A nil selector: selects nothing.
    Nothing,
    /// An empty selector: selects everything.
    Everything,
    Some(&'a LabelSelector),
}

impl<'a> Selector<'a> {
    /// `None` when the selector does not convert (invalid keys, values or operators).
    pub(super) fn new(sel: Option<&'a LabelSelector>) -> Option<Self> {
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
    pub(super) fn is_empty(&self) -> bool {
        matches!(self, Selector::Everything)
    }

    pub(super) fn matches(&self, labels: Option<&BTreeMap<String, String>>) -> bool {
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
pub(super) fn label_selector_errors(sel: &LabelSelector, path: &str) -> Vec<FieldError> {
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
pub(super) fn validate_labels(
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
pub(super) const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;

/// Kubernetes' `ValidateAnnotations`.
pub(super) fn validate_annotations(
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
pub(super) struct ContainerView<'a> {
    name: &'a str,
    image: Option<&'a str>,
    resources: Option<&'a ResourceRequirements>,
}

pub(super) fn validate_container_common(
    c: &ContainerView<'_>,
    path: &str,
    errs: &mut Vec<FieldError>,
) {
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
pub(super) fn validate_template_for_replica_set(
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
pub(super) const QUANTITY_FORMAT_WRONG: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

/// Parses a Kubernetes quantity as `resource.ParseQuantity` does: `Ok(true)` when it is
/// negative (and not zero), the error message otherwise.
pub(super) fn parse_quantity(s: &str) -> Result<bool, &'static str> {
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

pub(super) const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
pub(super) const QUALIFIED_NAME_ERR: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
pub(super) const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
pub(super) const LABEL_VALUE_ERR: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
pub(super) const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
pub(super) const DNS1123_LABEL_ERR: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character";
pub(super) const DNS1123_SUBDOMAIN_FMT: &str =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
pub(super) const DNS1123_SUBDOMAIN_ERR: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";

/// Kubernetes' `RegexError`.
pub(super) fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
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

pub(super) fn max_len_error(n: usize) -> String {
    format!("must be no more than {n} characters")
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`
pub(super) fn is_qualified_name_part(s: &str) -> bool {
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
pub(super) fn is_dns1123_label_str(s: &str) -> bool {
    let b = s.as_bytes();
    let alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    match (b.first(), b.last()) {
        (Some(f), Some(l)) => alnum(f) && alnum(l) && b.iter().all(|c| alnum(c) || *c == b'-'),
        _ => false,
    }
}

/// Kubernetes' `IsDNS1123Label`.
pub(super) fn is_dns1123_label(s: &str) -> Vec<String> {
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
pub(super) fn is_dns1123_subdomain(s: &str) -> Vec<String> {
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
pub(super) fn is_qualified_name(value: &str) -> Vec<String> {
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
pub(super) fn is_valid_label_value(value: &str) -> Vec<String> {
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
