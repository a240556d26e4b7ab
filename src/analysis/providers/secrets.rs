//! Reading Secrets: for `secretKeyRef` arguments and for provider credentials (`datadog`,
//! `newrelic`, `influxdb`, `wavefront-api-tokens`).
//!
//! The controller reads a Secret by GET only when a measurement needs it (its RBAC grants
//! `get` on Secrets, nothing more), through a [`KubeSecrets`] made for one reconcile: a
//! Secret used by several arguments or metrics of the run is read once, and a rotated Secret
//! is seen by the next reconcile.

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// A Secret's data: key → bytes (`data`, with `stringData` for objects not yet stored).
pub type SecretData = BTreeMap<String, Vec<u8>>;

/// A Secret that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The Secret does not exist.
    #[error("secrets \"{name}\" not found in namespace \"{namespace}\"")]
    NotFound { namespace: String, name: String },
    /// Reading it is not allowed.
    #[error("reading secret \"{name}\" in namespace \"{namespace}\": {message}")]
    Forbidden {
        namespace: String,
        name: String,
        message: String,
    },
    /// The API server could not be reached (worth retrying).
    #[error("reading secret \"{name}\" in namespace \"{namespace}\": {source}")]
    Unreachable {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
}

/// Where Secrets come from.
pub trait SecretSource: Send + Sync {
    /// The data of Secret `name` in `namespace`.
    fn get<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Arc<SecretData>, SecretError>>;
}

/// The data of a Secret object.
pub fn secret_data(s: &Secret) -> SecretData {
    let mut out: SecretData = s
        .string_data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.clone().into_bytes()))
        .collect();
    for (k, v) in s.data.iter().flatten() {
        out.insert(k.clone(), v.0.clone());
    }
    out
}

/// Secrets read from the API server by GET, each at most once (a cache for one reconcile).
pub struct KubeSecrets {
    client: kube::Client,
    cache: Mutex<HashMap<(String, String), Arc<SecretData>>>,
}

impl KubeSecrets {
    /// An empty cache over `client`.
    pub fn new(client: kube::Client) -> Self {
        KubeSecrets {
            client,
            cache: Mutex::new(HashMap::new()),
        }
    }
}

impl SecretSource for KubeSecrets {
    fn get<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Arc<SecretData>, SecretError>> {
        Box::pin(async move {
            let key = (namespace.to_string(), name.to_string());
            if let Some(d) = self
                .cache
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&key)
            {
                return Ok(d.clone());
            }
            let api: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
            let data = match api.get(name).await {
                Ok(s) => Arc::new(secret_data(&s)),
                Err(kube::Error::Api(e)) if e.code == 404 => {
                    return Err(SecretError::NotFound {
                        namespace: namespace.into(),
                        name: name.into(),
                    });
                }
                Err(kube::Error::Api(e)) if e.code == 403 || e.code == 401 => {
                    return Err(SecretError::Forbidden {
                        namespace: namespace.into(),
                        name: name.into(),
                        message: e.message,
                    });
                }
                Err(source) => {
                    return Err(SecretError::Unreachable {
                        namespace: namespace.into(),
                        name: name.into(),
                        source,
                    });
                }
            };
            self.cache
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(key, data.clone());
            Ok(data)
        })
    }
}

/// Secrets held in memory: `(namespace, name)` → data. For programs that embed the
/// providers without a cluster (the backtest), and for tests.
#[derive(Default)]
pub struct StaticSecrets(pub BTreeMap<(String, String), SecretData>);

impl StaticSecrets {
    /// Adds Secret `name` in `namespace` with string values.
    pub fn with(mut self, namespace: &str, name: &str, data: &[(&str, &str)]) -> Self {
        self.0.insert(
            (namespace.into(), name.into()),
            data.iter()
                .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
                .collect(),
        );
        self
    }
}

impl SecretSource for StaticSecrets {
    fn get<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Arc<SecretData>, SecretError>> {
        Box::pin(async move {
            self.0
                .get(&(namespace.to_string(), name.to_string()))
                .map(|d| Arc::new(d.clone()))
                .ok_or_else(|| SecretError::NotFound {
                    namespace: namespace.into(),
                    name: name.into(),
                })
        })
    }
}

/// The value of `key` as text, when present.
pub fn text(data: &SecretData, key: &str) -> Option<String> {
    data.get(key)
        .map(|b| String::from_utf8_lossy(b).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;

    #[test]
    fn data_wins_over_string_data() {
        let s = Secret {
            data: Some(BTreeMap::from([("a".into(), ByteString(b"1".to_vec()))])),
            string_data: Some(BTreeMap::from([
                ("a".into(), "2".into()),
                ("b".into(), "3".into()),
            ])),
            ..Default::default()
        };
        let d = secret_data(&s);
        assert_eq!(text(&d, "a").as_deref(), Some("1"));
        assert_eq!(text(&d, "b").as_deref(), Some("3"));
        assert_eq!(text(&d, "c"), None);
    }
}
