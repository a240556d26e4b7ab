//! Values printed as Go prints them in `field.Error`: `%q` for strings, `%#v` for maps and
//! slices, the gogo-protobuf `String()` of API structs.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::api::{
    AnalysisRunArgument, HeaderRoutingMatch, RouteMatch, SetHeaderRoute, SetMirrorRoute,
    StringMatch,
};

// Printing values as Go does
// ---------------------------------------------------------------------------------------------

/// A string as Go's `%q` prints it.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if c.is_control() || (c.is_whitespace() && c != ' ') || c == '\u{feff}' => {
                if (c as u32) <= 0xffff {
                    let _ = write!(out, "\\u{:04x}", c as u32);
                } else {
                    let _ = write!(out, "\\U{:08x}", c as u32);
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A `map[string]string` as Go's `%#v` prints it.
pub(super) fn go_string_map(map: Option<&BTreeMap<String, String>>) -> String {
    let Some(map) = map else {
        return "map[string]string(nil)".to_owned();
    };
    let entries: Vec<String> = map
        .iter()
        .map(|(k, v)| format!("{}:{}", go_quote(k), go_quote(v)))
        .collect();
    format!("map[string]string{{{}}}", entries.join(", "))
}

/// An `intstr.IntOrString` as its `String()` prints it.
pub(super) fn int_or_string_string(v: &IntOrString) -> String {
    match v {
        IntOrString::Int(i) => i.to_string(),
        IntOrString::String(s) => s.clone(),
    }
}

/// `metav1.LabelSelector.String()` (gogo-protobuf).
pub(super) fn label_selector_string(sel: &LabelSelector) -> String {
    let mut s = String::from("&LabelSelector{MatchLabels:map[string]string{");
    for (k, v) in sel.match_labels.iter().flatten() {
        let _ = write!(s, "{k}: {v},");
    }
    s.push_str("},MatchExpressions:[]LabelSelectorRequirement{");
    for r in sel.match_expressions.iter().flatten() {
        let values = r.values.as_deref().unwrap_or_default().join(" ");
        let _ = write!(
            s,
            "LabelSelectorRequirement{{Key:{},Operator:{},Values:[{values}],}},",
            r.key, r.operator
        );
    }
    s.push_str("},}");
    s
}

pub(super) fn opt(s: &Option<String>) -> &str {
    s.as_deref().unwrap_or_default()
}

/// `v1alpha1.StringMatch.String()`.
pub(super) fn string_match_string(sm: &StringMatch) -> String {
    format!(
        "&StringMatch{{Exact:{},Prefix:{},Regex:{},}}",
        opt(&sm.exact),
        opt(&sm.prefix),
        opt(&sm.regex)
    )
}

pub(super) fn opt_string_match_string(sm: Option<&StringMatch>) -> String {
    sm.map_or_else(|| "nil".to_owned(), string_match_string)
}

/// `v1alpha1.HeaderRoutingMatch.String()`.
pub(super) fn header_routing_match_string(hm: &HeaderRoutingMatch) -> String {
    format!(
        "&HeaderRoutingMatch{{HeaderName:{},HeaderValue:{},}}",
        opt(&hm.header_name),
        opt_string_match_string(hm.header_value.as_ref())
    )
}

/// `v1alpha1.SetHeaderRoute.String()`.
pub(super) fn set_header_route_string(hr: &SetHeaderRoute) -> String {
    let mut matches = String::from("[]HeaderRoutingMatch{");
    for hm in hr.match_.iter().flatten() {
        matches.push_str(&header_routing_match_string(hm).replacen('&', "", 1));
        matches.push(',');
    }
    matches.push('}');
    format!("&SetHeaderRoute{{Name:{},Match:{matches},}}", opt(&hr.name))
}

/// `v1alpha1.RouteMatch.String()` (header values print as Go's `%v` of a struct).
pub(super) fn route_match_string(rm: &RouteMatch) -> String {
    let mut headers = String::from("map[string]StringMatch{");
    for (k, v) in rm.headers.iter().flatten() {
        let _ = write!(
            headers,
            "{k}: {{{} {} {}}},",
            opt(&v.exact),
            opt(&v.prefix),
            opt(&v.regex)
        );
    }
    headers.push('}');
    format!(
        "&RouteMatch{{Method:{},Path:{},Headers:{headers},}}",
        opt_string_match_string(rm.method.as_ref()),
        opt_string_match_string(rm.path.as_ref())
    )
}

/// `v1alpha1.SetMirrorRoute.String()`.
pub(super) fn set_mirror_route_string(mr: &SetMirrorRoute) -> String {
    let mut matches = String::from("[]RouteMatch{");
    for rm in mr.match_.iter().flatten() {
        matches.push_str(&route_match_string(rm).replacen('&', "", 1));
        matches.push(',');
    }
    matches.push('}');
    let percentage = mr
        .percentage
        .map_or_else(|| "nil".to_owned(), |p| format!("*{p}"));
    format!(
        "&SetMirrorRoute{{Name:{},Match:{matches},Percentage:{percentage},}}",
        opt(&mr.name)
    )
}

/// `[]v1alpha1.AnalysisRunArgument` as Go's `%#v` prints it (pointees instead of addresses).
pub(super) fn analysis_args_string(args: &[&AnalysisRunArgument]) -> String {
    let items: Vec<String> = args
        .iter()
        .map(|a| {
            let value_from = match &a.value_from {
                None => "(*v1alpha1.ArgumentValueFrom)(nil)".to_owned(),
                Some(vf) => {
                    let hash = vf.pod_template_hash_value.as_deref().map_or_else(
                        || "(*v1alpha1.ValueFromPodTemplateHash)(nil)".to_owned(),
                        |h| format!("&{}", go_quote(h)),
                    );
                    let field_ref = vf.field_ref.as_ref().map_or_else(
                        || "(*v1alpha1.FieldRef)(nil)".to_owned(),
                        |f| format!("&v1alpha1.FieldRef{{FieldPath:{}}}", go_quote(opt(&f.field_path))),
                    );
                    format!("&v1alpha1.ArgumentValueFrom{{PodTemplateHashValue:{hash}, FieldRef:{field_ref}}}")
                }
            };
            format!(
                "v1alpha1.AnalysisRunArgument{{Name:{}, Value:{}, ValueFrom:{value_from}}}",
                go_quote(opt(&a.name)),
                go_quote(opt(&a.value))
            )
        })
        .collect();
    format!("[]v1alpha1.AnalysisRunArgument{{{}}}", items.join(", "))
}

// ---------------------------------------------------------------------------------------------
