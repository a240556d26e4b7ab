//! A template's Service (`templates[].service`), as upstream's `createTemplateService` and
//! `deleteTemplateService`: created once the template's ReplicaSet exists, named
//! `service.name` or after the ReplicaSet, selecting the ReplicaSet's labels (so its
//! pod-template hash), one port per container port; deleted once the template is scaled down
//! with no pod available.

use super::{Effect, Observed, Plan};
use crate::api::consts::{
    DEFAULT_ROLLOUT_UNIQUE_LABEL_KEY, EXPERIMENT_NAME_ANNOTATION_KEY,
    EXPERIMENT_TEMPLATE_NAME_ANNOTATION_KEY,
};
use crate::api::template_status_code as code;
use crate::api::{Experiment, TemplateSpec, TemplateStatus};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube_core::ResourceExt;
use std::collections::BTreeMap;

/// The name of a template's Service: `service.name`, else its ReplicaSet's name.
pub fn service_name(ex: &Experiment, t: &TemplateSpec) -> Option<String> {
    let svc = t.service.as_ref()?;
    Some(
        svc.name
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| super::replica_set_name(ex, t.name.as_deref().unwrap_or_default())),
    )
}

/// The Service of the template named `template` among the observed ones (by annotations).
fn existing<'a>(obs: &Observed<'a>, template: &str) -> Option<&'a Service> {
    let ex = obs.experiment.name_any();
    obs.services.iter().copied().find(|s| {
        let a = s.annotations();
        a.get(EXPERIMENT_NAME_ANNOTATION_KEY) == Some(&ex)
            && a.get(EXPERIMENT_TEMPLATE_NAME_ANNOTATION_KEY)
                .map(String::as_str)
                == Some(template)
    })
}

/// The ports of a ReplicaSet's containers, as upstream derives them.
fn ports(rs: &ReplicaSet) -> Vec<ServicePort> {
    let containers = rs
        .spec
        .as_ref()
        .and_then(|s| s.template.as_ref())
        .and_then(|t| t.spec.as_ref())
        .map(|s| s.containers.clone())
        .unwrap_or_default();
    containers
        .iter()
        .flat_map(|c| c.ports.iter().flatten())
        .map(|p| ServicePort {
            name: p.name.clone().filter(|n| !n.is_empty()),
            protocol: p.protocol.clone(),
            port: p.container_port,
            target_port: Some(IntOrString::Int(p.container_port)),
            ..Default::default()
        })
        .collect()
}

/// Brings the template's Service in line with its ReplicaSet `rs` and `desired` count.
pub fn reconcile(
    obs: &Observed<'_>,
    t: &TemplateSpec,
    rs: &ReplicaSet,
    desired: i32,
    ts: &mut TemplateStatus,
    plan: &mut Plan,
) {
    let ex = obs.experiment;
    let template = t.name.clone().unwrap_or_default();
    let current = existing(obs, &template);
    let Some(name) = service_name(ex, t) else {
        // No `service` (any more): a Service left over goes.
        if let Some(svc) = current {
            delete(svc, ts, plan);
        }
        return;
    };
    if desired == 0 {
        let available = rs
            .status
            .as_ref()
            .and_then(|s| s.available_replicas)
            .unwrap_or(0);
        if available == 0
            && let Some(svc) = current
        {
            delete(svc, ts, plan);
        }
        return;
    }
    if current.is_some() {
        return;
    }
    let ports = ports(rs);
    if ports.is_empty() {
        return;
    }
    if obs.taken_service_names.contains(&name) {
        ts.status = Some(code::ERROR.into());
        ts.message = Some(format!(
            "Failed to create Service {name} for template '{template}': service {name} already exists and is not owned by experiment template {template}"
        ));
        return;
    }
    let hash = rs
        .labels()
        .get(DEFAULT_ROLLOUT_UNIQUE_LABEL_KEY)
        .cloned()
        .unwrap_or_default();
    let svc = Service {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: ex.namespace(),
            owner_references: Some(vec![super::owner_reference(ex)]),
            annotations: Some(BTreeMap::from([
                (EXPERIMENT_NAME_ANNOTATION_KEY.to_string(), ex.name_any()),
                (
                    EXPERIMENT_TEMPLATE_NAME_ANNOTATION_KEY.to_string(),
                    template,
                ),
            ])),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            selector: Some(rs.labels().clone()),
            ports: Some(ports),
            ..Default::default()
        }),
        status: None,
    };
    plan.effects.push(Effect::CreateService(Box::new(svc)));
    ts.service_name = Some(name);
    ts.pod_template_hash = Some(hash).filter(|h| !h.is_empty());
}

fn delete(svc: &Service, ts: &mut TemplateStatus, plan: &mut Plan) {
    plan.effects.push(Effect::DeleteService {
        name: svc.name_any(),
    });
    ts.service_name = None;
    ts.pod_template_hash = None;
}
