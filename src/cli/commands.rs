//! The commands: read, call the pure parts, write, print.

use super::actions;
use super::backtest::{self as bt, TemplateSet};
use super::cluster::{Conn, Target, connect};
use super::error::{CliError, Result};
use super::info::{ExperimentInfo, ExperimentListLine, ListLine, RolloutInfo, rollout_phase};
use super::render::{self, Style};
use super::timeline::{self, Outcome};
use super::verbs;
use super::{
    AnalysisWhat, Cli, Command, GetWhat, ListWhat, PlanOutput, RetryWhat, SetWhat, TerminateWhat,
    out, parse_duration,
};
use crate::api::{Experiment, Rollout};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::jiff::Timestamp;
use kube::api::ListParams;
use kube::{Api, ResourceExt};
use std::io::{IsTerminal, Read};
use std::path::Path;

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    let target = Target {
        kubeconfig: cli.global.kubeconfig.clone(),
        context: cli.global.context.clone(),
        namespace: cli.global.namespace.clone(),
    };
    match cli.command {
        // Offline commands.
        Command::Lint { file } => lint(&file),
        Command::Plan {
            file,
            from_image,
            svg,
            output,
        } => plan(&file, from_image.as_deref(), svg.as_deref(), output),
        Command::Analysis {
            what:
                AnalysisWhat::Backtest {
                    file,
                    template,
                    cluster_template,
                    args,
                    from,
                    to,
                    prometheus_address,
                    svg,
                    output,
                },
        } => {
            let req = BacktestArgs {
                file,
                template,
                cluster_template,
                args,
                from,
                to,
                prometheus_address,
                svg,
                output,
            };
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .map_err(|e| CliError::failed(format!("starting the async runtime: {e}")))?;
            rt.block_on(backtest(target, req))
        }
        Command::Notifications(args) => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .map_err(|e| CliError::failed(format!("starting the async runtime: {e}")))?;
            rt.block_on(super::notifications::run(target, args, out))
        }
        Command::Version { short } => {
            let v = env!("CARGO_PKG_VERSION");
            if short {
                out(&format!("v{v}\n"));
            } else {
                out(&format!(
                    "kubectl-rollouts: v{v}\n  Platform: {}/{}\n",
                    std::env::consts::OS,
                    std::env::consts::ARCH
                ));
            }
            Ok(())
        }
        Command::Completion { shell } => {
            let mut cmd = super::command();
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut cmd, "kubectl-rollouts", &mut buf);
            out(&String::from_utf8_lossy(&buf));
            Ok(())
        }
        // Cluster commands.
        command => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .map_err(|e| CliError::failed(format!("starting the async runtime: {e}")))?;
            rt.block_on(cluster_command(target, command))
        }
    }
}

fn use_color(no_color: bool) -> Style {
    let color = !no_color
        && std::io::stdout().is_terminal()
        && std::env::var_os("NO_COLOR").is_none()
        && std::env::var("TERM").map_or(true, |t| t != "dumb");
    Style { color }
}

fn read_input(file: &Path) -> Result<(String, String)> {
    let name = file.display().to_string();
    if name == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| CliError::failed(format!("reading standard input: {e}")))?;
        return Ok((s, "<stdin>".into()));
    }
    match std::fs::read_to_string(file) {
        Ok(s) => Ok((s, name)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(CliError::not_found(format!("file {name:?} not found")))
        }
        Err(e) => Err(CliError::failed(format!("reading {name:?}: {e}"))),
    }
}

fn lint(file: &Path) -> Result<()> {
    let (text, name) = read_input(file)?;
    let results = super::lint::lint(&text, &name)?;
    let several = results.len() > 1;
    let mut failed = Vec::new();
    let mut count = 0;
    for r in &results {
        for e in &r.errors {
            if several {
                out(&format!("rollout {:?}: {e}\n", r.name));
            } else {
                out(&format!("{e}\n"));
            }
        }
        if !r.errors.is_empty() {
            count += r.errors.len();
            failed.push(format!("{:?}", r.name));
        }
    }
    if failed.is_empty() {
        return Ok(());
    }
    Err(CliError::failed(format!(
        "{name}: {count} error(s) in rollout {}",
        failed.join(", ")
    )))
}

fn plan(
    file: &Path,
    from_image: Option<&str>,
    svg: Option<&Path>,
    output: PlanOutput,
) -> Result<()> {
    let (text, name) = read_input(file)?;
    let ro = timeline::rollout_from_manifest(&text, &name)?;
    let t = timeline::simulate(&ro, from_image)?;
    match output {
        PlanOutput::Text => out(&timeline::render(&t)),
        PlanOutput::Json => out(&format!(
            "{}\n",
            serde_json::to_string_pretty(&t).unwrap_or_default()
        )),
    }
    if let Some(path) = svg
        && !matches!(t.outcome, Outcome::Invalid(_))
    {
        std::fs::write(path, timeline::svg(&t)).map_err(|e| {
            CliError::failed(format!("writing the chart to {:?}: {e}", path.display()))
        })?;
    }
    match t.outcome {
        Outcome::Healthy => Ok(()),
        Outcome::Invalid(_) => Err(CliError::failed(format!(
            "the controller refuses rollout {:?} in {name} (InvalidSpec)",
            t.name
        ))),
        Outcome::Stuck(why) => Err(CliError::failed(format!(
            "the update of rollout {:?} does not complete: {why}",
            t.name
        ))),
    }
}

/// `analysis backtest`'s flags.
struct BacktestArgs {
    file: Option<std::path::PathBuf>,
    template: Option<String>,
    cluster_template: Option<String>,
    args: Vec<String>,
    from: String,
    to: Option<String>,
    prometheus_address: Option<String>,
    svg: Option<std::path::PathBuf>,
    output: PlanOutput,
}

/// The templates of the cluster: the namespace's AnalysisTemplates and, when readable, the
/// ClusterAnalysisTemplates.
async fn cluster_templates(target: &Target) -> Result<TemplateSet> {
    use crate::api::{AnalysisTemplate, ClusterAnalysisTemplate};
    let conn = connect(target).await?;
    let ns: Api<AnalysisTemplate> = Api::namespaced(conn.client.clone(), &conn.namespace);
    let mut set = TemplateSet::default();
    let list = ns.list(&ListParams::default()).await.map_err(|e| {
        CliError::unreachable(format!(
            "listing AnalysisTemplates in namespace {:?}: {e}",
            conn.namespace
        ))
    })?;
    for t in list.items {
        set.namespaced.insert(t.name_any(), t.spec);
    }
    let cluster: Api<ClusterAnalysisTemplate> = Api::all(conn.client.clone());
    if let Ok(list) = cluster.list(&ListParams::default()).await {
        for t in list.items {
            set.cluster
                .insert(t.metadata.name.clone().unwrap_or_default(), t.spec);
        }
    }
    Ok(set)
}

async fn backtest(target: Target, a: BacktestArgs) -> Result<()> {
    let now = Timestamp::now();
    let from = bt::parse_time("--from", &a.from, now)?;
    let to = match &a.to {
        Some(t) => bt::parse_time("--to", t, now)?,
        None => now,
    };
    let args = a
        .args
        .iter()
        .map(|s| bt::parse_arg(s))
        .collect::<Result<Vec<_>>>()?;
    let set = match &a.file {
        Some(f) => {
            let (text, name) = read_input(f)?;
            TemplateSet::from_manifest(&text, &name)?
        }
        None => {
            if a.template.is_none() && a.cluster_template.is_none() {
                return Err(CliError::usage(
                    "give the template: -f FILE, --template NAME or --cluster-template NAME",
                ));
            }
            cluster_templates(&target).await?
        }
    };
    let root = match (&a.template, &a.cluster_template) {
        (_, Some(c)) => set.root(Some(c), true)?,
        (t, None) => set.root(t.as_deref(), false)?,
    };
    let mut run = bt::analysis_run(&set, &root, &args)?;
    if let Some(addr) = &a.prometheus_address {
        bt::override_address(&mut run, addr);
    }
    let default_address = std::env::var(crate::analysis::providers::prometheus::ADDRESS_ENV)
        .ok()
        .filter(|s| !s.is_empty());
    let result = bt::backtest(&run, from, to, default_address.as_deref()).await?;
    match a.output {
        PlanOutput::Text => out(&bt::render(&result)),
        PlanOutput::Json => out(&format!(
            "{}\n",
            serde_json::to_string_pretty(&result).unwrap_or_default()
        )),
    }
    if let Some(path) = &a.svg {
        std::fs::write(path, bt::svg(&result)).map_err(|e| {
            CliError::failed(format!("writing the chart to {:?}: {e}", path.display()))
        })?;
    }
    if result.failed() {
        return Err(CliError::failed(format!(
            "the analysis would have ended {}",
            result.phase
        )));
    }
    Ok(())
}

/// Checks the arguments a cluster command parses itself, before connecting (usage errors win
/// over connection errors).
fn check_arguments(command: &Command) -> Result<()> {
    match command {
        Command::Status { timeout, .. } => parse_duration("--timeout", timeout).map(drop),
        Command::Restart { in_: Some(d), .. } => parse_duration("--in", d).map(drop),
        Command::Set {
            what: SetWhat::Image {
                container_image, ..
            },
        } => actions::parse_container_image(container_image).map(drop),
        Command::Dashboard(opts) => super::dashboard::check(opts),
        _ => Ok(()),
    }
}

async fn cluster_command(target: Target, command: Command) -> Result<()> {
    check_arguments(&command)?;
    let conn = connect(&target).await?;
    match command {
        Command::Get {
            what:
                GetWhat::Rollout {
                    name,
                    watch,
                    no_color,
                    output,
                },
        } => {
            let style = use_color(no_color || output.is_some());
            let model = conn.model(&name).await?;
            if watch {
                return super::watch::get(&conn, &name, model, style, output).await;
            }
            let mut info = RolloutInfo::new(&model);
            let now = k8s_openapi::jiff::Timestamp::now();
            info.waiting = super::waiting::waiting(&conn, &model, now)
                .await
                .map(|w| w.describe(now));
            super::print_info(&info, style, output);
            Ok(())
        }
        Command::Get {
            what:
                GetWhat::Experiment {
                    name,
                    watch,
                    no_color,
                },
        } => {
            let style = use_color(no_color);
            let model = conn.experiment_model(&name).await?;
            if watch {
                return super::watch::get_experiment(&conn, &name, model, style).await;
            }
            out(&render::experiment(
                &ExperimentInfo::new(&model),
                Timestamp::now(),
                style,
            ));
            Ok(())
        }
        Command::List {
            what: ListWhat::Experiments { all_namespaces },
        } => list_experiments(&conn, all_namespaces).await,
        Command::Terminate {
            what: TerminateWhat::Experiment { names },
        } => {
            for name in names {
                out(&format!(
                    "{}\n",
                    verbs::terminate_experiment(&conn, &name).await?
                ));
            }
            Ok(())
        }
        Command::Terminate {
            what: TerminateWhat::Analysisrun { names },
        } => {
            for name in names {
                out(&format!(
                    "{}\n",
                    verbs::terminate_analysis_run(&conn, &name).await?
                ));
            }
            Ok(())
        }
        Command::Retry {
            what: RetryWhat::Experiment { names },
        } => {
            for name in names {
                out(&format!(
                    "{}\n",
                    verbs::retry_experiment(&conn, &name).await?
                ));
            }
            Ok(())
        }
        Command::List {
            what:
                ListWhat::Rollouts {
                    all_namespaces,
                    watch,
                    name,
                },
        } => list(&conn, all_namespaces, watch, name.as_deref()).await,
        Command::Status {
            name,
            watch,
            timeout,
        } => {
            let timeout = parse_duration("--timeout", &timeout)?;
            let ro = conn.get_rollout(&name).await?;
            if watch {
                let timeout = (!timeout.is_zero()).then_some(timeout);
                return super::watch::status(&conn, &name, ro, timeout).await;
            }
            let (phase, message) = rollout_phase(&ro);
            if phase == "Healthy" || phase == "Degraded" {
                out(&format!("{phase}\n"));
            } else {
                out(&format!("{phase} - {message}\n"));
            }
            if phase == "Degraded" {
                return Err(conn.degraded(&name, &message));
            }
            Ok(())
        }
        Command::Promote { name, full } => {
            out(&format!("{}\n", verbs::promote(&conn, &name, full).await?));
            Ok(())
        }
        Command::Abort { names } => {
            for name in names {
                out(&format!("{}\n", verbs::abort(&conn, &name).await?));
            }
            Ok(())
        }
        Command::Retry {
            what: RetryWhat::Rollout { names },
        } => {
            for name in names {
                out(&format!("{}\n", verbs::retry(&conn, &name).await?));
            }
            Ok(())
        }
        Command::Pause { names } => {
            for name in names {
                out(&format!("{}\n", verbs::pause(&conn, &name).await?));
            }
            Ok(())
        }
        Command::Restart { name, in_ } => {
            let delay = match &in_ {
                Some(d) => parse_duration("--in", d)?,
                None => std::time::Duration::ZERO,
            };
            let in_text = in_.as_deref().unwrap_or("0s");
            out(&format!(
                "{}\n",
                verbs::restart(&conn, &name, delay, in_text).await?
            ));
            Ok(())
        }
        Command::Undo { name, to_revision } => {
            out(&format!(
                "{}\n",
                verbs::undo(&conn, &name, to_revision).await?
            ));
            Ok(())
        }
        Command::Set {
            what:
                SetWhat::Image {
                    name,
                    container_image,
                },
        } => {
            let (container, image) = actions::parse_container_image(&container_image)?;
            out(&format!(
                "{}\n",
                verbs::set_image(&conn, &name, &container, &image).await?
            ));
            Ok(())
        }
        Command::Dashboard(opts) => super::dashboard::run(conn, opts).await,
        Command::Lint { .. }
        | Command::Plan { .. }
        | Command::Analysis { .. }
        | Command::Notifications(_)
        | Command::Version { .. }
        | Command::Completion { .. } => Ok(()),
    }
}

/// The Rollouts and ReplicaSets of the namespace (or all).
pub async fn list_objects(
    conn: &Conn,
    all_namespaces: bool,
    name: Option<&str>,
) -> Result<(Vec<Rollout>, Vec<ReplicaSet>)> {
    let (ros, rss): (Api<Rollout>, Api<ReplicaSet>) = if all_namespaces {
        (Api::all(conn.client.clone()), Api::all(conn.client.clone()))
    } else {
        (
            conn.rollouts(),
            Api::namespaced(conn.client.clone(), &conn.namespace),
        )
    };
    let where_ = if all_namespaces {
        "in all namespaces".to_string()
    } else {
        format!("in namespace {:?}", conn.namespace)
    };
    let mut lp = ListParams::default();
    if let Some(n) = name {
        lp = lp.fields(&format!("metadata.name={n}"));
    }
    let ros = ros
        .list(&lp)
        .await
        .map_err(|e| conn.error(e, &format!("listing rollouts {where_}")))?
        .items;
    let mut all_rss = Vec::new();
    if !ros.is_empty() {
        all_rss = rss
            .list(&ListParams::default())
            .await
            .map_err(|e| conn.error(e, &format!("listing ReplicaSets {where_}")))?
            .items;
    }
    Ok((ros, all_rss))
}

/// `list experiments [-A]`.
async fn list_experiments(conn: &Conn, all_namespaces: bool) -> Result<()> {
    let (api, where_): (Api<Experiment>, String) = if all_namespaces {
        (
            Api::all(conn.client.clone()),
            "in all namespaces".to_string(),
        )
    } else {
        (
            conn.experiments(),
            format!("in namespace {:?}", conn.namespace),
        )
    };
    let exs = api
        .list(&ListParams::default())
        .await
        .map_err(|e| conn.error_of::<Experiment>(e, &format!("listing experiments {where_}")))?
        .items;
    if exs.is_empty() {
        if !all_namespaces {
            let namespaces: Api<Namespace> = Api::all(conn.client.clone());
            if let Err(kube::Error::Api(s)) = namespaces.get(&conn.namespace).await
                && s.code == 404
            {
                return Err(CliError::not_found(format!(
                    "namespace {:?} not found on {}",
                    conn.namespace, conn.server
                )));
            }
        }
        eprintln!("No resources found.");
        return Ok(());
    }
    let now = Timestamp::now();
    let lines = ExperimentListLine::for_experiments(&exs, now);
    out(&render::list_experiments(&lines, all_namespaces, now));
    Ok(())
}

async fn list(conn: &Conn, all_namespaces: bool, watch: bool, name: Option<&str>) -> Result<()> {
    let (ros, rss) = list_objects(conn, all_namespaces, name).await?;
    let lines = ListLine::for_rollouts(&ros, &rss);
    if lines.is_empty() && !watch {
        if !all_namespaces {
            let namespaces: Api<Namespace> = Api::all(conn.client.clone());
            if let Err(kube::Error::Api(s)) = namespaces.get(&conn.namespace).await
                && s.code == 404
            {
                return Err(CliError::not_found(format!(
                    "namespace {:?} not found on {}",
                    conn.namespace, conn.server
                )));
            }
            eprintln!("No rollouts found in namespace {:?}.", conn.namespace);
        } else {
            eprintln!("No rollouts found.");
        }
        return Ok(());
    }
    out(&render::list(&lines, all_namespaces));
    if watch {
        return super::watch::list(conn, all_namespaces, name, lines).await;
    }
    Ok(())
}
