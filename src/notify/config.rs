//! The notification settings, read exactly as upstream's: ConfigMap
//! `argo-rollouts-notification-configmap` and Secret `argo-rollouts-notification-secret`.
//!
//! ConfigMap keys: `service.<type>` or `service.<type>.<name>` (YAML; `$key` names a key of the
//! Secret), `template.<name>` (YAML), `trigger.<name>` (a YAML list of conditions `when`,
//! `send`, `oncePer`), `defaultTriggers` (YAML list; `defaultTriggers.<service>` per service),
//! `subscriptions` (YAML list of `recipients`, `triggers`, `selector`). Each key is parsed on
//! its own: a bad key is reported and left out, the others still work.

use serde::Deserialize;
use serde_json::Value as Json;
use std::collections::{BTreeMap, HashMap};

pub const CONFIG_MAP: &str = "argo-rollouts-notification-configmap";
pub const SECRET: &str = "argo-rollouts-notification-secret";

/// A problem with one key of the settings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{CONFIG_MAP} key {key:?}: {message}")]
    Yaml { key: String, message: String },
    #[error("{CONFIG_MAP} key {key:?}: secret key {secret_key:?} is not in {SECRET}")]
    MissingSecretKey { key: String, secret_key: String },
    #[error(
        "{CONFIG_MAP} key {key:?}: unknown service type {kind:?} (supported: slack, webhook, teams, email, mattermost, googlechat)"
    )]
    UnknownServiceType { key: String, kind: String },
}

/// One condition of a trigger.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// An expr-lang condition on `rollout`; empty: always.
    #[serde(default)]
    pub when: String,
    /// Template names.
    #[serde(default)]
    pub send: Vec<String>,
    /// An expression; the condition sends once per distinct value.
    #[serde(default)]
    pub once_per: String,
    #[serde(default)]
    pub description: String,
}

/// A subscription in the ConfigMap's `subscriptions` key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct GlobalSubscription {
    /// `service:recipient` (or `service` alone).
    #[serde(default)]
    pub recipients: Vec<String>,
    /// Empty: the default triggers.
    #[serde(default)]
    pub triggers: Vec<String>,
    /// A label selector (`a=b,c!=d,e`), matched against the Rollout's labels.
    #[serde(default)]
    pub selector: String,
}

/// A configured service.
#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    /// One of [`SERVICE_TYPES`].
    pub kind: String,
    /// The service's options with `$key` references resolved.
    pub options: Json,
}

/// Supported service types.
pub const SERVICE_TYPES: &[&str] = &[
    "slack",
    "webhook",
    "teams",
    "email",
    "mattermost",
    "googlechat",
];

/// Everything the ConfigMap and Secret say.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Settings {
    /// Service name → service (`service.slack` is named `slack`; `service.webhook.github`,
    /// `github`).
    pub services: BTreeMap<String, Service>,
    /// Template name → the template document (JSON).
    pub templates: BTreeMap<String, Json>,
    pub triggers: BTreeMap<String, Vec<Condition>>,
    pub default_triggers: Vec<String>,
    pub service_default_triggers: BTreeMap<String, Vec<String>>,
    pub subscriptions: Vec<GlobalSubscription>,
    /// Keys that could not be used.
    pub errors: Vec<ConfigError>,
}

/// `$name` references: `$` then letters, digits, `_`, `-`, `.`.
fn resolve_secrets(
    key: &str,
    v: &mut Json,
    secret: &HashMap<String, String>,
) -> Result<(), ConfigError> {
    match v {
        Json::String(s) => {
            let re = regex::Regex::new(r"\$[A-Za-z0-9_.\-]+").expect("a valid pattern");
            let mut missing = None;
            let out = re.replace_all(s, |c: &regex::Captures<'_>| {
                let name = &c[0][1..];
                match secret.get(name) {
                    Some(val) => val.clone(),
                    None => {
                        missing.get_or_insert_with(|| name.to_string());
                        c[0].to_string()
                    }
                }
            });
            if let Some(secret_key) = missing {
                return Err(ConfigError::MissingSecretKey {
                    key: key.into(),
                    secret_key,
                });
            }
            *s = out.into_owned();
        }
        Json::Array(a) => {
            for x in a {
                resolve_secrets(key, x, secret)?;
            }
        }
        Json::Object(o) => {
            for x in o.values_mut() {
                resolve_secrets(key, x, secret)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn yaml<T: serde::de::DeserializeOwned>(key: &str, text: &str) -> Result<T, ConfigError> {
    serde_yaml::from_str(text).map_err(|e| ConfigError::Yaml {
        key: key.into(),
        message: e.to_string(),
    })
}

impl Settings {
    /// Parses ConfigMap data and Secret data (already decoded to UTF-8 strings).
    pub fn parse(config: &BTreeMap<String, String>, secret: &HashMap<String, String>) -> Settings {
        let mut s = Settings::default();
        for (key, text) in config {
            let res: Result<(), ConfigError> = (|| {
                if let Some(rest) = key.strip_prefix("service.") {
                    let (kind, name) = match rest.split_once('.') {
                        Some((k, n)) => (k, n),
                        None => (rest, rest),
                    };
                    if !SERVICE_TYPES.contains(&kind) {
                        return Err(ConfigError::UnknownServiceType {
                            key: key.clone(),
                            kind: kind.into(),
                        });
                    }
                    let mut options: Json = if text.trim().is_empty() {
                        Json::Object(Default::default())
                    } else {
                        yaml(key, text)?
                    };
                    resolve_secrets(key, &mut options, secret)?;
                    s.services.insert(
                        name.to_string(),
                        Service {
                            kind: kind.to_string(),
                            options,
                        },
                    );
                } else if let Some(name) = key.strip_prefix("template.") {
                    let doc: Json = yaml(key, text)?;
                    if !doc.is_object() {
                        return Err(ConfigError::Yaml {
                            key: key.clone(),
                            message: "a template is a YAML map (message, slack, email, ...)".into(),
                        });
                    }
                    s.templates.insert(name.to_string(), doc);
                } else if let Some(name) = key.strip_prefix("trigger.") {
                    s.triggers.insert(name.to_string(), yaml(key, text)?);
                } else if key == "defaultTriggers" {
                    s.default_triggers = yaml(key, text)?;
                } else if let Some(service) = key.strip_prefix("defaultTriggers.") {
                    s.service_default_triggers
                        .insert(service.to_string(), yaml(key, text)?);
                } else if key == "subscriptions" {
                    s.subscriptions = yaml(key, text)?;
                }
                Ok(())
            })();
            if let Err(e) = res {
                s.errors.push(e);
            }
        }
        s
    }

    /// Merges `other` (the Rollout's own namespace, self-service) over `self`: a key defined
    /// in both takes `other`'s.
    pub fn merged(&self, other: &Settings) -> Settings {
        let mut s = self.clone();
        s.services.extend(other.services.clone());
        s.templates.extend(other.templates.clone());
        s.triggers.extend(other.triggers.clone());
        if !other.default_triggers.is_empty() {
            s.default_triggers = other.default_triggers.clone();
        }
        s.service_default_triggers
            .extend(other.service_default_triggers.clone());
        s.subscriptions.extend(other.subscriptions.clone());
        s.errors.extend(other.errors.clone());
        s
    }
}

/// Matches a simple label selector (`a=b`, `a==b`, `a!=b`, `a`, `!a`, comma-separated).
pub fn selector_matches(selector: &str, labels: &BTreeMap<String, String>) -> bool {
    selector
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .all(|term| {
            if let Some((k, v)) = term.split_once("!=") {
                labels.get(k.trim()).map(String::as_str) != Some(v.trim())
            } else if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
                labels.get(k.trim()).map(String::as_str) == Some(v.trim())
            } else if let Some(k) = term.strip_prefix('!') {
                !labels.contains_key(k.trim())
            } else {
                labels.contains_key(term)
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cm(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn services_templates_triggers_and_secrets() {
        let secret: HashMap<String, String> =
            [("slack-token".to_string(), "xoxb-1".to_string())].into();
        let s = Settings::parse(
            &cm(&[
                ("service.slack", "token: $slack-token\nusername: bot\n"),
                ("service.webhook.github", "url: https://example.invalid/x\n"),
                ("template.t", "message: hi {{.rollout.metadata.name}}\n"),
                (
                    "trigger.on-x",
                    "- send: [t]\n  when: rollout.spec.replicas > 1\n  oncePer: rollout.metadata.generation\n",
                ),
                ("defaultTriggers", "- on-x\n"),
                (
                    "subscriptions",
                    "- recipients: [slack:ops]\n  selector: team=a\n",
                ),
            ]),
            &secret,
        );
        assert_eq!(s.errors, vec![]);
        assert_eq!(s.services["slack"].options["token"], "xoxb-1");
        assert_eq!(s.services["github"].kind, "webhook");
        assert_eq!(
            s.triggers["on-x"][0].once_per,
            "rollout.metadata.generation"
        );
        assert_eq!(s.default_triggers, vec!["on-x"]);
        assert_eq!(s.subscriptions[0].recipients, vec!["slack:ops"]);
        assert!(s.templates.contains_key("t"));
    }

    #[test]
    fn bad_keys_are_reported_and_left_out() {
        let s = Settings::parse(
            &cm(&[
                ("service.slack", "token: $nope\n"),
                ("service.pager.x", "a: b\n"),
                ("template.bad", "- a list\n"),
                ("trigger.on-y", "send: notalist"),
                ("template.good", "message: ok\n"),
            ]),
            &HashMap::new(),
        );
        assert!(s.services.is_empty());
        assert_eq!(s.templates.len(), 1);
        assert!(s.triggers.is_empty());
        assert_eq!(s.errors.len(), 4, "{:?}", s.errors);
        assert!(s.errors.contains(&ConfigError::MissingSecretKey {
            key: "service.slack".into(),
            secret_key: "nope".into()
        }));
        assert!(
            s.errors.iter().any(
                |e| matches!(e, ConfigError::UnknownServiceType { kind, .. } if kind == "pager")
            )
        );
    }

    #[test]
    fn selectors() {
        let labels: BTreeMap<String, String> = [("team".to_string(), "a".to_string())].into();
        assert!(selector_matches("team=a", &labels));
        assert!(selector_matches("", &labels));
        assert!(!selector_matches("team!=a", &labels));
        assert!(selector_matches("team,!env", &labels));
        assert!(!selector_matches("env", &labels));
    }
}
