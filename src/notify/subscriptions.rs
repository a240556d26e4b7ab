//! Who is subscribed to what: the Rollout's annotations and the ConfigMap's `subscriptions`.
//!
//! - `notifications.argoproj.io/subscribe.<trigger>.<service>: a;b` (recipients separated by
//!   `;`; an empty value is one destination with no recipient, as webhooks use);
//! - `notifications.argoproj.io/subscribe.<service>: a;b` (the default triggers);
//! - `notifications.argoproj.io/subscriptions`: a YAML list of `trigger` (a name or a list)
//!   and `destinations` (`service`, `recipients`).

use super::config::{Settings, selector_matches};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};

pub const SUBSCRIBE_PREFIX: &str = "notifications.argoproj.io/subscribe.";
pub const SUBSCRIPTIONS: &str = "notifications.argoproj.io/subscriptions";

/// Where a notification goes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Destination {
    pub service: String,
    pub recipient: String,
}

/// An annotation that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnnotationError {
    #[error("annotation {0:?}: expected subscribe.<trigger>.<service> or subscribe.<service>")]
    Key(String),
    #[error("annotation {key:?}: {message}")]
    Yaml { key: String, message: String },
}

#[derive(Deserialize)]
struct YamlSubscription {
    #[serde(default)]
    trigger: OneOrMany,
    #[serde(default)]
    destinations: Vec<YamlDestination>,
}

#[derive(Deserialize, Default)]
#[serde(untagged)]
enum OneOrMany {
    #[default]
    None,
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
struct YamlDestination {
    service: String,
    #[serde(default)]
    recipients: Vec<String>,
}

fn recipients(value: &str) -> Vec<String> {
    let r: Vec<String> = value
        .split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    if r.is_empty() { vec![String::new()] } else { r }
}

/// Trigger → destinations, and the annotations that could not be read.
pub type Destinations = BTreeMap<String, BTreeSet<Destination>>;

fn default_triggers(settings: &Settings, service: &str) -> Vec<String> {
    settings
        .service_default_triggers
        .get(service)
        .cloned()
        .unwrap_or_else(|| settings.default_triggers.clone())
}

/// The destinations of a Rollout with these labels and annotations.
pub fn destinations(
    settings: &Settings,
    labels: &BTreeMap<String, String>,
    annotations: &BTreeMap<String, String>,
) -> (Destinations, Vec<AnnotationError>) {
    let mut out = Destinations::new();
    let mut errors = Vec::new();
    let mut add = |trigger: &str, service: &str, recipient: &str| {
        out.entry(trigger.to_string())
            .or_default()
            .insert(Destination {
                service: service.to_string(),
                recipient: recipient.to_string(),
            });
    };
    for sub in &settings.subscriptions {
        if !selector_matches(&sub.selector, labels) {
            continue;
        }
        for r in &sub.recipients {
            let (service, recipient) = r.split_once(':').unwrap_or((r.as_str(), ""));
            let triggers = if sub.triggers.is_empty() {
                default_triggers(settings, service)
            } else {
                sub.triggers.clone()
            };
            for t in &triggers {
                add(t, service.trim(), recipient.trim());
            }
        }
    }
    for (key, value) in annotations {
        if let Some(rest) = key.strip_prefix(SUBSCRIBE_PREFIX) {
            let parts: Vec<&str> = rest.split('.').collect();
            match parts.as_slice() {
                [service] if !service.is_empty() => {
                    for t in default_triggers(settings, service) {
                        for r in recipients(value) {
                            add(&t, service, &r);
                        }
                    }
                }
                [trigger, service] if !trigger.is_empty() && !service.is_empty() => {
                    for r in recipients(value) {
                        add(trigger, service, &r);
                    }
                }
                _ => errors.push(AnnotationError::Key(key.clone())),
            }
        } else if key == SUBSCRIPTIONS {
            match serde_yaml::from_str::<Vec<YamlSubscription>>(value) {
                Ok(subs) => {
                    for sub in subs {
                        for d in &sub.destinations {
                            let triggers = match &sub.trigger {
                                OneOrMany::None => default_triggers(settings, &d.service),
                                OneOrMany::One(t) => vec![t.clone()],
                                OneOrMany::Many(ts) => ts.clone(),
                            };
                            let rs = if d.recipients.is_empty() {
                                vec![String::new()]
                            } else {
                                d.recipients.clone()
                            };
                            for t in &triggers {
                                for r in &rs {
                                    add(t, &d.service, r);
                                }
                            }
                        }
                    }
                }
                Err(e) => errors.push(AnnotationError::Yaml {
                    key: key.clone(),
                    message: e.to_string(),
                }),
            }
        }
    }
    (out, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn dest(s: &str, r: &str) -> Destination {
        Destination {
            service: s.into(),
            recipient: r.into(),
        }
    }

    #[test]
    fn subscribe_annotations() {
        let settings = Settings {
            default_triggers: vec!["on-rollout-completed".into()],
            ..Default::default()
        };
        let (d, errs) = destinations(
            &settings,
            &BTreeMap::new(),
            &map(&[
                (
                    "notifications.argoproj.io/subscribe.on-rollout-paused.slack",
                    "a; b;",
                ),
                (
                    "notifications.argoproj.io/subscribe.on-rollout-paused.github",
                    "",
                ),
                ("notifications.argoproj.io/subscribe.teams", "ops"),
                ("notifications.argoproj.io/subscribe.a.b.c", "x"),
                ("other", "x"),
            ]),
        );
        assert_eq!(
            errs,
            vec![AnnotationError::Key(
                "notifications.argoproj.io/subscribe.a.b.c".into()
            )]
        );
        assert_eq!(
            d["on-rollout-paused"],
            [dest("github", ""), dest("slack", "a"), dest("slack", "b")].into()
        );
        assert_eq!(d["on-rollout-completed"], [dest("teams", "ops")].into());
    }

    #[test]
    fn subscriptions_yaml_and_global() {
        let settings = Settings {
            subscriptions: vec![super::super::config::GlobalSubscription {
                recipients: vec!["slack:all".into()],
                triggers: vec!["on-rollout-aborted".into()],
                selector: "team=a".into(),
            }],
            ..Default::default()
        };
        let yaml = "- trigger: [on-rollout-updated, on-rollout-aborted]\n  destinations:\n  - service: slack\n    recipients: [c1, c2]\n- trigger: on-rollout-paused\n  destinations:\n  - service: email\n    recipients: [a@b.c]\n";
        let (d, errs) = destinations(
            &settings,
            &map(&[("team", "a")]),
            &map(&[(SUBSCRIPTIONS, yaml)]),
        );
        assert!(errs.is_empty());
        assert_eq!(
            d["on-rollout-aborted"],
            [
                dest("slack", "all"),
                dest("slack", "c1"),
                dest("slack", "c2")
            ]
            .into()
        );
        assert_eq!(d["on-rollout-paused"], [dest("email", "a@b.c")].into());
        let (d, _) = destinations(&settings, &BTreeMap::new(), &BTreeMap::new());
        assert!(d.is_empty(), "the selector does not match");
    }

    #[test]
    fn bad_subscriptions_yaml_is_an_error() {
        let (d, errs) = destinations(
            &Settings::default(),
            &BTreeMap::new(),
            &map(&[(SUBSCRIPTIONS, "{not: a list")]),
        );
        assert!(d.is_empty());
        assert!(matches!(errs.as_slice(), [AnnotationError::Yaml { .. }]));
    }
}
