//! Talking to the cluster: the client (kubeconfig, context and namespace as kubectl picks
//! them), reads, writes, and errors turned into one clear line with an exit code.

use super::actions::{PatchKind, PatchOp};
use super::error::{CliError, Result};
use super::info::{ExperimentModel, Model};
use crate::api::{AnalysisRun, Experiment, Rollout};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{ApiResource, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config, ResourceExt};
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

/// The field manager of the CLI's writes.
pub const FIELD_MANAGER: &str = "kubectl-rollouts";

/// Where to connect, as given on the command line.
#[derive(Clone, Debug, Default)]
pub struct Target {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    pub namespace: Option<String>,
}

/// A client and the namespace to work in.
#[derive(Clone)]
pub struct Conn {
    pub client: Client,
    pub namespace: String,
    /// The API server's URL (for messages).
    pub server: String,
}

fn kubeconfig_error(e: impl std::fmt::Display, target: &Target) -> CliError {
    let mut msg = e.to_string();
    if let Some(ctx) = &target.context
        && msg.contains("failed to load current context")
    {
        msg = format!("context {ctx:?} not found in the kubeconfig");
    }
    CliError::unreachable(format!("no usable Kubernetes configuration: {msg}"))
}

/// Builds the client as kubectl would: `--kubeconfig`, else `KUBECONFIG` (merged), else
/// `~/.kube/config`, else the in-cluster service account; `--context` picks the context and
/// `-n` the namespace (else the context's, else `default`).
pub async fn connect(target: &Target) -> Result<Conn> {
    let options = KubeConfigOptions {
        context: target.context.clone(),
        ..Default::default()
    };
    let kubeconfig = match &target.kubeconfig {
        Some(path) => Some(Kubeconfig::read_from(path).map_err(|e| {
            if !path.exists() {
                CliError::unreachable(format!("kubeconfig {:?} not found", path.display()))
            } else {
                kubeconfig_error(e, target)
            }
        })?),
        None => match Kubeconfig::from_env().map_err(|e| kubeconfig_error(e, target))? {
            Some(k) => Some(k),
            None => match std::env::var_os("HOME")
                .map(|h| PathBuf::from(h).join(".kube").join("config"))
                .filter(|p| p.exists())
            {
                Some(p) => Some(Kubeconfig::read_from(p).map_err(|e| kubeconfig_error(e, target))?),
                None => None,
            },
        },
    };
    let mut config = match kubeconfig {
        Some(k) => Config::from_custom_kubeconfig(k, &options)
            .await
            .map_err(|e| kubeconfig_error(e, target))?,
        None => Config::incluster().map_err(|_| {
            CliError::unreachable(
                "no Kubernetes configuration: pass --kubeconfig, set KUBECONFIG, or create ~/.kube/config",
            )
        })?,
    };
    config.connect_timeout = Some(Duration::from_secs(10));
    let server = config.cluster_url.to_string();
    let server = server.trim_end_matches('/').to_string();
    let namespace = target
        .namespace
        .clone()
        .unwrap_or_else(|| config.default_namespace.clone());
    let client = Client::try_from(config)
        .map_err(|e| CliError::unreachable(format!("cannot build a client for {server}: {e}")))?;
    Ok(Conn {
        client,
        namespace,
        server,
    })
}

/// The error and its causes, deduplicated, on one line.
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        let s = err.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        cur = err.source();
    }
    parts.join(": ")
}

fn is_missing_resource_type(s: &kube::core::Status) -> bool {
    s.code == 404 && s.message.contains("could not find the requested resource")
}

impl Conn {
    /// The error of a Degraded rollout (`status`).
    pub fn degraded(&self, name: &str, message: &str) -> CliError {
        CliError::failed(format!(
            "rollout {name:?} in namespace {:?} is Degraded: {message}",
            self.namespace
        ))
    }

    /// A kube error as one line: `doing` says what was attempted.
    pub fn error(&self, e: kube::Error, doing: &str) -> CliError {
        self.error_of::<Rollout>(e, doing)
    }

    /// [`Conn::error`] for a request about objects of kind `K` (named in the message when
    /// its CRD is missing).
    pub fn error_of<K: kube::Resource<DynamicType = ()>>(
        &self,
        e: kube::Error,
        doing: &str,
    ) -> CliError {
        let status = match &e {
            kube::Error::Api(s) => Some(s.code),
            _ => None,
        };
        let err = match &e {
            kube::Error::Api(s) if s.code == 401 || s.code == 403 => CliError::failed(format!(
                "{doing}: not allowed by the API server at {}: {}",
                self.server, s.message
            )),
            kube::Error::Api(s) if is_missing_resource_type(s) => CliError::not_found(format!(
                "{doing}: the {} CRD ({}.{}) is not installed in the cluster at {}",
                K::kind(&()),
                K::plural(&()),
                K::group(&()),
                self.server
            )),
            kube::Error::Api(s) if s.code == 404 => {
                CliError::not_found(format!("{doing}: {}", s.message))
            }
            kube::Error::Api(s) => CliError::failed(format!("{doing}: {}", s.message)),
            kube::Error::HyperError(_) | kube::Error::Service(_) => CliError::unreachable(format!(
                "{doing}: cannot reach the Kubernetes API server at {}: {}",
                self.server,
                chain(&e)
            )),
            _ => CliError::failed(format!("{doing}: {}", chain(&e))),
        };
        match status {
            Some(s) => err.with_status(s),
            None => err,
        }
    }

    pub fn rollouts(&self) -> Api<Rollout> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    fn check_name(&self, name: &str) -> Result<()> {
        let ok = !name.is_empty()
            && name.len() <= 253
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
        if ok {
            Ok(())
        } else {
            Err(CliError::not_found(format!(
                "rollout {name:?} not found in namespace {:?} (not a valid object name)",
                self.namespace
            )))
        }
    }

    /// The error for a Rollout that is not there: its namespace may be missing too.
    async fn rollout_not_found(&self, name: &str) -> CliError {
        self.not_found("rollout", name).await
    }

    /// The error for an object (`kind`: `rollout`, `experiment`, ...) that is not there: its
    /// namespace may be missing too.
    async fn not_found(&self, kind: &str, name: &str) -> CliError {
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        if let Err(kube::Error::Api(s)) = namespaces.get(&self.namespace).await
            && s.code == 404
        {
            return CliError::not_found(format!(
                "namespace {:?} not found (looking for {kind} {name:?} on {})",
                self.namespace, self.server
            ));
        }
        CliError::not_found(format!(
            "{kind} {name:?} not found in namespace {:?}",
            self.namespace
        ))
    }

    pub fn experiments(&self) -> Api<Experiment> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// Reads an Experiment.
    pub async fn get_experiment(&self, name: &str) -> Result<Experiment> {
        match self.experiments().get(name).await {
            Ok(ex) => Ok(ex),
            Err(kube::Error::Api(s)) if s.code == 404 && !is_missing_resource_type(&s) => {
                Err(self.not_found("experiment", name).await)
            }
            Err(e) => Err(self.error_of::<Experiment>(
                e,
                &format!(
                    "getting experiment {name:?} in namespace {:?}",
                    self.namespace
                ),
            )),
        }
    }

    /// Merge-patches the main resource of an object of kind `K` (`kind` names it in
    /// messages), as upstream's `terminate` and `retry experiment` do.
    pub async fn merge_patch<K>(&self, kind: &str, name: &str, body: &Value) -> Result<()>
    where
        K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
    {
        let api: Api<K> = Api::namespaced(self.client.clone(), &self.namespace);
        let pp = PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..Default::default()
        };
        match api.patch(name, &pp, &Patch::Merge(body)).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 && !is_missing_resource_type(&s) => {
                Err(self.not_found(kind, name).await)
            }
            Err(e) => Err(self.error_of::<K>(
                e,
                &format!("patching {kind} {name:?} in namespace {:?}", self.namespace),
            )),
        }
    }

    /// Lists the namespace's objects of kind `K` (`what` names them in messages).
    async fn list_all<K>(&self, what: &str, lp: &ListParams) -> Result<Vec<K>>
    where
        K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
    {
        let api: Api<K> = Api::namespaced(self.client.clone(), &self.namespace);
        api.list(lp).await.map(|l| l.items).map_err(|e| {
            self.error_of::<K>(
                e,
                &format!("listing {what} in namespace {:?}", self.namespace),
            )
        })
    }

    /// The namespace's objects of an optional kind (a CRD that may be missing, or not
    /// readable): none then.
    async fn list_optional<K>(&self, what: &str) -> Result<Vec<K>>
    where
        K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
    {
        match self.list_all(what, &ListParams::default()).await {
            Ok(items) => Ok(items),
            Err(e) if matches!(e.http_status, Some(404 | 403)) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// The Experiment and what it owns (the namespace's ReplicaSets, pods and AnalysisRuns).
    pub async fn experiment_model(&self, name: &str) -> Result<ExperimentModel> {
        let experiment = self.get_experiment(name).await?;
        let lp = ListParams::default();
        Ok(ExperimentModel {
            experiment,
            replica_sets: self.list_all("ReplicaSets", &lp).await?,
            pods: self.list_all("pods", &lp).await?,
            analysis_runs: self.list_optional("AnalysisRuns").await?,
        })
    }

    fn getting(&self, name: &str) -> String {
        format!("getting rollout {name:?} in namespace {:?}", self.namespace)
    }

    /// Reads a Rollout.
    pub async fn get_rollout(&self, name: &str) -> Result<Rollout> {
        self.check_name(name)?;
        match self.rollouts().get(name).await {
            Ok(ro) => Ok(ro),
            Err(kube::Error::Api(s)) if s.code == 404 && !is_missing_resource_type(&s) => {
                Err(self.rollout_not_found(name).await)
            }
            Err(e) => Err(self.error(e, &self.getting(name))),
        }
    }

    fn dynamic(&self) -> Api<DynamicObject> {
        let ar = ApiResource::erase::<Rollout>(&());
        Api::namespaced_with(self.client.clone(), &self.namespace, &ar)
    }

    /// Reads a Rollout as it is stored (every field, known to this build or not).
    pub async fn get_rollout_object(&self, name: &str) -> Result<DynamicObject> {
        self.check_name(name)?;
        match self.dynamic().get(name).await {
            Ok(o) => Ok(o),
            Err(kube::Error::Api(s)) if s.code == 404 && !is_missing_resource_type(&s) => {
                Err(self.rollout_not_found(name).await)
            }
            Err(e) => Err(self.error(e, &self.getting(name))),
        }
    }

    /// Replaces a Rollout (`set image`); `Ok(false)` on a conflict.
    pub async fn replace_rollout_object(&self, obj: &DynamicObject) -> Result<bool> {
        let pp = PostParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..Default::default()
        };
        match self.dynamic().replace(&obj.name_any(), &pp, obj).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(self.error(e, &format!("updating rollout {:?}", obj.name_any()))),
        }
    }

    /// The object a Rollout's `workloadRef` names, as stored.
    pub async fn get_workload(&self, key: &crate::traffic::ObjectKey) -> Result<DynamicObject> {
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), &self.namespace, &key.api_resource());
        match api.get(&key.name).await {
            Ok(o) => Ok(o),
            Err(kube::Error::Api(s)) if s.code == 404 => Err(CliError::not_found(format!(
                "{} {:?} (the rollout's workloadRef) not found in namespace {:?}",
                key.kind, key.name, self.namespace
            ))),
            Err(e) => Err(self.error(e, &format!("getting {} {:?}", key.kind, key.name))),
        }
    }

    /// Replaces the object a `workloadRef` names; `Ok(false)` on a conflict.
    pub async fn replace_workload(
        &self,
        key: &crate::traffic::ObjectKey,
        obj: &DynamicObject,
    ) -> Result<bool> {
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), &self.namespace, &key.api_resource());
        let pp = PostParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..Default::default()
        };
        match api.replace(&key.name, &pp, obj).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(self.error(e, &format!("updating {} {:?}", key.kind, key.name))),
        }
    }

    /// The namespace's ReplicaSets selected by the Rollout's selector.
    pub async fn replica_sets_of(&self, ro: &Rollout) -> Result<Vec<ReplicaSet>> {
        let api: Api<ReplicaSet> = Api::namespaced(self.client.clone(), &self.namespace);
        let lp = selector_params(ro);
        api.list(&lp).await.map(|l| l.items).map_err(|e| {
            self.error(
                e,
                &format!("listing ReplicaSets in namespace {:?}", self.namespace),
            )
        })
    }

    /// The Rollout and what it owns.
    pub async fn model(&self, name: &str) -> Result<Model> {
        let rollout = self.get_rollout(name).await?;
        let replica_sets = self.replica_sets_of(&rollout).await?;
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.namespace);
        let pods = pods
            .list(&selector_params(&rollout))
            .await
            .map(|l| l.items)
            .map_err(|e| {
                self.error(
                    e,
                    &format!("listing pods in namespace {:?}", self.namespace),
                )
            })?;
        let analysis_runs: Vec<AnalysisRun> = self.list_optional("AnalysisRuns").await?;
        let uid = rollout.uid().unwrap_or_default();
        let experiments: Vec<Experiment> = self
            .list_optional::<Experiment>("Experiments")
            .await?
            .into_iter()
            .filter(|e| e.owner_references().iter().any(|o| o.uid == uid))
            .collect();
        let (replica_sets, pods) = if experiments.is_empty() {
            (replica_sets, pods)
        } else {
            // An experiment's templates may select pods the Rollout's selector does not.
            let lp = ListParams::default();
            (
                self.list_all("ReplicaSets", &lp).await?,
                self.list_all("pods", &lp).await?,
            )
        };
        Ok(Model {
            rollout,
            replica_sets,
            pods,
            analysis_runs,
            experiments,
        })
    }

    /// Sends one patch (a status patch answered 404 goes to the main resource instead).
    pub async fn patch(&self, name: &str, op: &PatchOp) -> Result<()> {
        let doing = format!(
            "patching rollout {name:?} in namespace {:?}",
            self.namespace
        );
        let pp = PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..Default::default()
        };
        let api = self.rollouts();
        let res = match (op.kind, op.status) {
            (PatchKind::Merge, true) => api
                .patch_status(name, &pp, &Patch::Merge(&op.body))
                .await
                .map(drop),
            (PatchKind::Merge, false) => api
                .patch(name, &pp, &Patch::Merge(&op.body))
                .await
                .map(drop),
            (PatchKind::Json, status) => self.json_patch(name, status, &op.body).await,
        };
        match res {
            Ok(()) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 && op.status && op.fallback.is_some() => {
                let body = op.fallback.clone().unwrap_or_default();
                match api.patch(name, &pp, &Patch::Merge(&body)).await {
                    Ok(_) => Ok(()),
                    Err(kube::Error::Api(s)) if s.code == 404 && !is_missing_resource_type(&s) => {
                        Err(self.rollout_not_found(name).await)
                    }
                    Err(e) => Err(self.error(e, &doing)),
                }
            }
            Err(kube::Error::Api(s)) if s.code == 404 && !is_missing_resource_type(&s) => {
                Err(self.rollout_not_found(name).await)
            }
            Err(e) => Err(self.error(e, &doing)),
        }
    }

    async fn json_patch(&self, name: &str, status: bool, body: &Value) -> kube::Result<()> {
        let mut url = format!(
            "/apis/{}/namespaces/{}/rollouts/{name}",
            crate::api::API_VERSION,
            self.namespace
        );
        if status {
            url.push_str("/status");
        }
        url.push_str(&format!("?fieldManager={FIELD_MANAGER}"));
        let req = http::Request::patch(url)
            .header(http::header::CONTENT_TYPE, "application/json-patch+json")
            .header(http::header::ACCEPT, "application/json")
            .body(serde_json::to_vec(body).map_err(kube::Error::SerdeError)?)
            .map_err(kube::Error::HttpError)?;
        let _: Value = self.client.request(req).await?;
        Ok(())
    }
}

/// List parameters selecting what the Rollout's selector selects.
pub fn selector_params(ro: &Rollout) -> ListParams {
    match ro.spec.selector.as_ref() {
        Some(sel) => {
            let s = crate::plan::replicasets::format_selector(Some(sel));
            if s.is_empty() || s == "<none>" {
                ListParams::default()
            } else {
                ListParams::default().labels(&s)
            }
        }
        None => ListParams::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A missing CRD is named after the kind asked for.
    #[tokio::test]
    async fn a_missing_crd_is_named_after_the_kind() {
        let config = Config::new("http://127.0.0.1:9".parse().unwrap());
        let conn = Conn {
            client: Client::try_from(config).unwrap(),
            namespace: "ns".into(),
            server: "http://127.0.0.1:9".into(),
        };
        let missing = || {
            kube::Error::Api(Box::new(kube::core::Status {
                code: 404,
                message: "the server could not find the requested resource".into(),
                ..Default::default()
            }))
        };
        let e = conn.error_of::<Experiment>(missing(), "listing experiments");
        assert_eq!(e.code, super::super::error::exit::NOT_FOUND);
        assert_eq!(
            e.message,
            "listing experiments: the Experiment CRD (experiments.argoproj.io) is not installed in the cluster at http://127.0.0.1:9"
        );
        let e = conn.error(missing(), "getting rollout");
        assert!(
            e.message
                .contains("the Rollout CRD (rollouts.argoproj.io) is not installed"),
            "{}",
            e.message
        );
    }
}
