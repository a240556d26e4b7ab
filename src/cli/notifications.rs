//! `kubectl-rollouts notifications`: upstream's `template get|notify` and `trigger get|run`,
//! on the notification ConfigMap and Secret of the namespace (or files given with
//! `--config-map` and `--secret`), with the controller's own parsing, rendering and senders.

use super::cluster::{Conn, Target, connect};
use super::error::CliError;
use crate::api::Rollout;
use crate::notify::config::{CONFIG_MAP, SECRET, Settings};
use crate::notify::subscriptions::Destination;
use crate::notify::{self, trigger};
use clap::{Args, Subcommand, ValueEnum};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;
use serde_json::{Value as Json, json};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

type Result<T> = std::result::Result<T, CliError>;

/// Flags of `notifications`.
#[derive(Debug, Args)]
pub struct NotificationsArgs {
    /// argo-rollouts-notification-configmap.yaml file path (default: the namespace's).
    #[arg(long, global = true, value_name = "FILE")]
    pub config_map: Option<PathBuf>,
    /// argo-rollouts-notification-secret.yaml file path; `:empty` for none (default: the
    /// namespace's).
    #[arg(long, global = true, value_name = "FILE")]
    pub secret: Option<String>,
    #[command(subcommand)]
    pub what: NotificationsWhat,
}

#[derive(Debug, Subcommand)]
pub enum NotificationsWhat {
    /// Notification templates related commands.
    Template {
        #[command(subcommand)]
        what: TemplateWhat,
    },
    /// Notification triggers related commands.
    Trigger {
        #[command(subcommand)]
        what: TriggerWhat,
    },
}

/// Output formats of `get`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GetOutput {
    Wide,
    Json,
    Yaml,
    Name,
}

#[derive(Debug, Subcommand)]
pub enum TemplateWhat {
    /// Prints information about configured templates.
    Get {
        /// One template.
        name: Option<String>,
        #[arg(short = 'o', long, value_enum, default_value_t = GetOutput::Wide)]
        output: GetOutput,
    },
    /// Generates the notification of a template for a rollout and sends it to the recipients
    /// (`console:stdout` prints it).
    Notify {
        /// The template.
        name: String,
        /// The rollout.
        rollout: String,
        /// `service:recipient` (repeatable).
        #[arg(long = "recipient", default_value = "console:stdout")]
        recipients: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum TriggerWhat {
    /// Prints information about configured triggers.
    Get {
        /// One trigger.
        name: Option<String>,
        #[arg(short = 'o', long, value_enum, default_value_t = GetOutput::Wide)]
        output: GetOutput,
    },
    /// Evaluates the conditions of a trigger against a rollout.
    Run {
        /// The trigger.
        trigger: String,
        /// The rollout.
        rollout: String,
    },
}

fn read_file(path: &std::path::Path) -> Result<String> {
    std::fs::read_to_string(path)
        .map_err(|e| CliError::usage(format!("reading {}: {e}", path.display())))
}

fn secret_map(secret: &Secret) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for (k, v) in secret.data.iter().flatten() {
        out.insert(k.clone(), String::from_utf8_lossy(&v.0).into_owned());
    }
    for (k, v) in secret.string_data.iter().flatten() {
        out.insert(k.clone(), v.clone());
    }
    out
}

/// The settings from the files or the namespace.
async fn settings(args: &NotificationsArgs, conn: Option<&Conn>) -> Result<Settings> {
    let data: BTreeMap<String, String> = match (&args.config_map, conn) {
        (Some(path), _) => {
            let cm: ConfigMap = serde_yaml::from_str(&read_file(path)?).map_err(|e| {
                CliError::usage(format!("{}: not a ConfigMap: {e}", path.display()))
            })?;
            cm.data.unwrap_or_default()
        }
        (None, Some(conn)) => {
            let api: Api<ConfigMap> = Api::namespaced(conn.client.clone(), &conn.namespace);
            match api.get_opt(CONFIG_MAP).await {
                Ok(Some(cm)) => cm.data.unwrap_or_default(),
                Ok(None) => {
                    return Err(CliError::not_found(format!(
                        "configmap {CONFIG_MAP:?} not found in namespace {:?}",
                        conn.namespace
                    )));
                }
                Err(e) => return Err(conn.error(e, "reading the notification ConfigMap")),
            }
        }
        (None, None) => BTreeMap::new(),
    };
    let secret = match (args.secret.as_deref(), conn) {
        (Some(":empty"), _) => HashMap::new(),
        (Some(path), _) => {
            let s: Secret = serde_yaml::from_str(&read_file(std::path::Path::new(path))?)
                .map_err(|e| CliError::usage(format!("{path}: not a Secret: {e}")))?;
            secret_map(&s)
        }
        (None, Some(conn)) => {
            let api: Api<Secret> = Api::namespaced(conn.client.clone(), &conn.namespace);
            match api.get_opt(SECRET).await {
                Ok(s) => s.as_ref().map(secret_map).unwrap_or_default(),
                Err(e) => return Err(conn.error(e, "reading the notification Secret")),
            }
        }
        (None, None) => HashMap::new(),
    };
    Ok(Settings::parse(&data, &secret))
}

fn print_get(
    items: BTreeMap<String, Json>,
    output: GetOutput,
    wide: impl Fn(&str, &Json) -> Vec<String>,
    headers: &[&str],
) -> Result<String> {
    Ok(match output {
        GetOutput::Name => items.keys().map(|k| format!("{k}\n")).collect(),
        GetOutput::Json => {
            let v = Json::Object(items.into_iter().collect());
            format!("{}\n", serde_json::to_string_pretty(&v).unwrap_or_default())
        }
        GetOutput::Yaml => serde_yaml::to_string(&Json::Object(items.into_iter().collect()))
            .map_err(|e| CliError::failed(format!("encoding YAML: {e}")))?,
        GetOutput::Wide => {
            let mut rows: Vec<Vec<String>> = vec![headers.iter().map(|h| h.to_string()).collect()];
            for (k, v) in &items {
                rows.push(wide(k, v));
            }
            table(&rows)
        }
    })
}

fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .map(|r| r.get(c).map_or(0, |s| s.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, s)| {
                if i + 1 == r.len() {
                    s.clone()
                } else {
                    format!("{s:<w$}", w = widths[i])
                }
            })
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

fn one_line(s: &str, max: usize) -> String {
    let flat = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > max {
        format!("{}...", flat.chars().take(max).collect::<String>())
    } else {
        flat
    }
}

fn select<T: Clone>(
    all: &BTreeMap<String, T>,
    name: &Option<String>,
    what: &str,
) -> Result<BTreeMap<String, T>> {
    match name {
        None => Ok(all.clone()),
        Some(n) => all
            .get(n)
            .map(|v| [(n.clone(), v.clone())].into())
            .ok_or_else(|| {
                CliError::not_found(format!("{what} {n:?} is not defined in {CONFIG_MAP}"))
            }),
    }
}

/// Runs a `notifications` command, printing with `out`.
pub async fn run(target: Target, args: NotificationsArgs, out: impl Fn(&str)) -> Result<()> {
    // Only what needs the cluster connects to it.
    let needs_cluster = args.config_map.is_none()
        || args.secret.is_none()
        || matches!(
            args.what,
            NotificationsWhat::Template {
                what: TemplateWhat::Notify { .. }
            } | NotificationsWhat::Trigger {
                what: TriggerWhat::Run { .. }
            }
        );
    let conn = if needs_cluster {
        Some(connect(&target).await?)
    } else {
        None
    };
    let settings = settings(&args, conn.as_ref()).await?;
    for e in &settings.errors {
        eprintln!("warning: {e}");
    }
    let get_rollout = |name: String| {
        let conn = conn.as_ref();
        async move {
            let conn = conn.ok_or_else(|| CliError::usage("this command needs the cluster"))?;
            let ro: Rollout = conn.get_rollout(&name).await?;
            Ok::<_, CliError>(ro)
        }
    };
    match args.what {
        NotificationsWhat::Template {
            what: TemplateWhat::Get { name, output },
        } => {
            let items = select(&settings.templates, &name, "template")?;
            out(&print_get(
                items,
                output,
                |k, v| {
                    vec![
                        k.to_string(),
                        one_line(v["message"].as_str().unwrap_or(""), 60),
                    ]
                },
                &["NAME", "PREVIEW"],
            )?);
        }
        NotificationsWhat::Trigger {
            what: TriggerWhat::Get { name, output },
        } => {
            let items: BTreeMap<String, Json> = select(&settings.triggers, &name, "trigger")?
                .into_iter()
                .map(|(k, conds)| {
                    let v = Json::Array(
                        conds
                            .iter()
                            .map(|c| {
                                let mut o = json!({"send": c.send});
                                if !c.when.is_empty() {
                                    o["when"] = json!(c.when);
                                }
                                if !c.once_per.is_empty() {
                                    o["oncePer"] = json!(c.once_per);
                                }
                                o
                            })
                            .collect(),
                    );
                    (k, v)
                })
                .collect();
            out(&print_get(
                items,
                output,
                |k, v| {
                    let c = &v[0];
                    let templates: Vec<&str> = c["send"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Json::as_str)
                        .collect();
                    vec![
                        k.to_string(),
                        templates.join(", "),
                        c["when"].as_str().unwrap_or("").to_string(),
                    ]
                },
                &["NAME", "TEMPLATE", "CONDITION"],
            )?);
        }
        NotificationsWhat::Trigger {
            what:
                TriggerWhat::Run {
                    trigger: name,
                    rollout,
                },
        } => {
            let conditions = settings.triggers.get(&name).ok_or_else(|| {
                CliError::not_found(format!("trigger {name:?} is not defined in {CONFIG_MAP}"))
            })?;
            let ro = get_rollout(rollout).await?;
            let obj = serde_json::to_value(&ro).map_err(|e| CliError::failed(e.to_string()))?;
            let mut rows = vec![vec!["CONDITION".to_string(), "RESULT".to_string()]];
            for c in conditions {
                let fired = trigger::evaluate(&name, std::slice::from_ref(c), &obj, "", "")
                    .map_err(|e| CliError::failed(e.to_string()))?;
                let cond = if c.when.is_empty() {
                    "(always)".to_string()
                } else {
                    c.when.clone()
                };
                rows.push(vec![cond, (!fired.is_empty()).to_string()]);
            }
            out(&table(&rows));
        }
        NotificationsWhat::Template {
            what:
                TemplateWhat::Notify {
                    name,
                    rollout,
                    recipients,
                },
        } => {
            let ro = get_rollout(rollout).await?;
            let obj = serde_json::to_value(&ro).map_err(|e| CliError::failed(e.to_string()))?;
            let http = notify::services::http_client();
            let threads = notify::services::slack::Threads::default();
            for r in recipients {
                let (service, recipient) = r.split_once(':').unwrap_or((r.as_str(), ""));
                let rendered =
                    notify::render(&settings, std::slice::from_ref(&name), &obj, recipient, &[])
                        .map_err(|e| CliError::failed(e.to_string()))?;
                if service == "console" {
                    out(&serde_yaml::to_string(&rendered)
                        .map_err(|e| CliError::failed(e.to_string()))?);
                    continue;
                }
                let dest = Destination {
                    service: service.to_string(),
                    recipient: recipient.to_string(),
                };
                match notify::deliver(&http, &threads, &settings, &dest, &rendered).await {
                    Ok(true) => out(&format!("notification sent to {service}:{recipient}\n")),
                    Ok(false) => out(&format!("template {name:?} has nothing for {service}\n")),
                    Err(e) => {
                        return Err(CliError::failed(format!(
                            "sending to {service}:{recipient}: {e}"
                        )));
                    }
                }
            }
        }
    }
    Ok(())
}
