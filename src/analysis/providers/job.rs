//! The Job provider (upstream's `metricproviders/job`): a `batch/v1` Job per measurement,
//! Successful when it completes, Failed when it fails. The measurement stays in flight (no
//! `finishedAt`) while the Job runs; the Job's watch events trigger the reconcile that resumes
//! it. Jobs are owned by the run (controller reference) and labelled with its uid; the
//! controller deletes them when the run ends.

use super::Provider;
use crate::analysis::{
    JOB_METRIC_NAME_ANNOTATION, JOB_NAME_KEY, JOB_RUN_NAME_ANNOTATION, JOB_RUN_UID_LABEL,
};
use crate::api::{AnalysisRun, Measurement, Metric, analysis_phase};
use crate::plan::stamp;
use futures::future::BoxFuture;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, PostParams, PropagationPolicy};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, Resource, ResourceExt};
use std::collections::BTreeMap;
use std::time::Duration;

/// Why a measurement Job could not be made, created, found or deleted.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("not a job metric")]
    NotJobMetric,
    #[error("job metric has no spec")]
    NoSpec,
    #[error("the AnalysisRun has no uid")]
    NoRunUid,
    #[error("job create (verify) {name} failed: {}", kube_msg(.source))]
    Verify {
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("job {0} already exists and is not owned by this run")]
    NotOwned(String),
    #[error("job create {name} failed: {}", kube_msg(.source))]
    Create {
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("job {name}: {}", kube_msg(.source))]
    Get {
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("job metadata reference missing")]
    NoJobReference,
    #[error("deleting job {name}: {}", kube_msg(.source))]
    Delete {
        name: String,
        #[source]
        source: kube::Error,
    },
}

/// Creates and watches measurement Jobs.
pub struct JobProvider {
    client: Client,
    jobs: Store<Job>,
}

/// The Job name of the next measurement of `metric` in `run` (upstream's:
/// `<run uid>.<metric>.<measurements so far + 1>`, so a retried create finds its own Job).
pub fn job_name(run: &AnalysisRun, metric: &str) -> String {
    let n = run
        .status
        .as_ref()
        .and_then(|s| s.metric_results.as_ref())
        .and_then(|rs| rs.iter().find(|r| r.name.as_deref() == Some(metric)))
        .map(|r| r.count.unwrap_or(0) + r.error.unwrap_or(0) + 1)
        .unwrap_or(1);
    format!(
        "{}.{metric}.{n}",
        run.metadata.uid.clone().unwrap_or_default()
    )
}

/// The Job for a measurement of `metric` (resolved) in `run`.
pub fn new_metric_job(run: &AnalysisRun, metric: &Metric) -> Result<Job, JobError> {
    let name = metric.name.clone().unwrap_or_default();
    let jm = metric
        .provider
        .as_ref()
        .and_then(|p| p.job.as_ref())
        .ok_or(JobError::NotJobMetric)?;
    let spec = jm.spec.clone().ok_or(JobError::NoSpec)?;
    let uid = run.metadata.uid.clone().ok_or(JobError::NoRunUid)?;
    let md = jm.metadata.clone().unwrap_or_default();
    let mut labels = md.labels.unwrap_or_default();
    labels.insert(JOB_RUN_UID_LABEL.into(), uid.clone());
    let mut annotations = md.annotations.unwrap_or_default();
    annotations.insert(JOB_RUN_NAME_ANNOTATION.into(), run.name_any());
    annotations.insert(JOB_METRIC_NAME_ANNOTATION.into(), name.clone());
    Ok(Job {
        metadata: ObjectMeta {
            name: Some(job_name(run, &name)),
            namespace: run.namespace(),
            labels: Some(labels),
            annotations: Some(annotations),
            owner_references: Some(vec![OwnerReference {
                api_version: AnalysisRun::api_version(&()).into(),
                kind: AnalysisRun::kind(&()).into(),
                name: run.name_any(),
                uid,
                controller: Some(true),
                block_owner_deletion: Some(true),
            }]),
            ..Default::default()
        },
        spec: Some(spec),
        status: None,
    })
}

/// The measurement phase a Job's conditions give (`None` while it runs), with a message.
pub fn job_outcome(job: &Job) -> Option<(&'static str, Option<String>)> {
    let conds = job.status.as_ref()?.conditions.as_ref()?;
    for c in conds.iter().filter(|c| c.status == "True") {
        match c.type_.as_str() {
            "Complete" => return Some((analysis_phase::SUCCESSFUL, None)),
            "Failed" => {
                let msg = [c.reason.as_deref(), c.message.as_deref()]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(": ");
                return Some((analysis_phase::FAILED, (!msg.is_empty()).then_some(msg)));
            }
            _ => {}
        }
    }
    None
}

fn kube_msg(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => s.message.clone(),
        other => other.to_string(),
    }
}

impl JobProvider {
    /// A provider using `client` to create and delete Jobs and `jobs` to watch them.
    pub fn new(client: Client, jobs: Store<Job>) -> Self {
        JobProvider { client, jobs }
    }

    fn api(&self, run: &AnalysisRun) -> Api<Job> {
        Api::namespaced(self.client.clone(), &run.namespace().unwrap_or_default())
    }

    async fn create(&self, run: &AnalysisRun, metric: &Metric) -> Result<String, JobError> {
        let job = new_metric_job(run, metric)?;
        let name = job.name_any();
        let api = self.api(run);
        let pp = PostParams {
            field_manager: Some(crate::controller::FIELD_MANAGER.into()),
            ..Default::default()
        };
        match api.create(&pp, &job).await {
            Ok(j) => Ok(j.name_any()),
            Err(kube::Error::Api(e)) if e.code == 409 => {
                let existing = api.get(&name).await.map_err(|source| JobError::Verify {
                    name: name.clone(),
                    source,
                })?;
                let ours = crate::api::is_controlled_by(&existing, run);
                if ours {
                    Ok(name)
                } else {
                    Err(JobError::NotOwned(name))
                }
            }
            Err(source) => Err(JobError::Create { name, source }),
        }
    }

    async fn get(&self, run: &AnalysisRun, name: &str) -> Result<Job, JobError> {
        let ns = run.namespace().unwrap_or_default();
        if let Some(j) = self.jobs.get(&ObjectRef::new(name).within(&ns)) {
            return Ok((*j).clone());
        }
        self.api(run)
            .get(name)
            .await
            .map_err(|source| JobError::Get {
                name: name.to_string(),
                source,
            })
    }
}

fn job_name_of(m: &Measurement) -> Result<String, JobError> {
    m.metadata
        .as_ref()
        .and_then(|md| md.get(JOB_NAME_KEY))
        .filter(|n| !n.is_empty())
        .cloned()
        .ok_or(JobError::NoJobReference)
}

impl Provider for JobProvider {
    fn kind(&self) -> &'static str {
        "Job"
    }

    fn deadline(&self) -> Duration {
        Duration::from_secs(30)
    }

    fn run<'a>(&'a self, run: &'a AnalysisRun, metric: &'a Metric) -> BoxFuture<'a, Measurement> {
        Box::pin(async move {
            let m = Measurement {
                started_at: Some(stamp(Timestamp::now())),
                phase: Some(analysis_phase::RUNNING.into()),
                ..Default::default()
            };
            match self.create(run, metric).await {
                Ok(name) => Measurement {
                    metadata: Some(BTreeMap::from([(JOB_NAME_KEY.to_string(), name)])),
                    ..m
                },
                Err(e) => {
                    crate::analysis::core::error_measurement(m, e.to_string(), Timestamp::now())
                }
            }
        })
    }

    fn resume<'a>(
        &'a self,
        run: &'a AnalysisRun,
        _metric: &'a Metric,
        m: Measurement,
    ) -> BoxFuture<'a, Measurement> {
        Box::pin(async move {
            let name = match job_name_of(&m) {
                Ok(n) => n,
                Err(e) => {
                    return crate::analysis::core::error_measurement(
                        m,
                        e.to_string(),
                        Timestamp::now(),
                    );
                }
            };
            let job = match self.get(run, &name).await {
                Ok(j) => j,
                Err(e) => {
                    return crate::analysis::core::error_measurement(
                        m,
                        e.to_string(),
                        Timestamp::now(),
                    );
                }
            };
            match job_outcome(&job) {
                Some((p, msg)) => Measurement {
                    phase: Some(p.into()),
                    message: msg,
                    finished_at: Some(stamp(Timestamp::now())),
                    ..m
                },
                None => m,
            }
        })
    }

    fn terminate<'a>(
        &'a self,
        run: &'a AnalysisRun,
        _metric: &'a Metric,
        m: Measurement,
    ) -> BoxFuture<'a, Measurement> {
        Box::pin(async move {
            let name = match job_name_of(&m) {
                Ok(n) => n,
                Err(e) => {
                    return crate::analysis::core::error_measurement(
                        m,
                        e.to_string(),
                        Timestamp::now(),
                    );
                }
            };
            let dp = DeleteParams {
                propagation_policy: Some(PropagationPolicy::Foreground),
                ..Default::default()
            };
            match self.api(run).delete(&name, &dp).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(source) => {
                    return crate::analysis::core::error_measurement(
                        m,
                        JobError::Delete { name, source }.to_string(),
                        Timestamp::now(),
                    );
                }
            }
            Measurement {
                phase: Some(analysis_phase::SUCCESSFUL.into()),
                finished_at: Some(stamp(Timestamp::now())),
                ..m
            }
        })
    }
}
