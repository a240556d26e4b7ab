//! `--watch`: kube watchers (reflectors) over the objects a view needs; the view is rebuilt
//! from the caches and redrawn when it changes (in place on a terminal).

use super::cluster::{Conn, selector_params};
use super::error::{CliError, Result};
use super::info::{ExperimentInfo, ExperimentModel, ListLine, Model, RolloutInfo, rollout_phase};
use super::render::{self, Style};
use super::{Output, out};
use crate::api::{AnalysisRun, Rollout};
use futures::stream::{BoxStream, SelectAll};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// Something happened on watch `index` (`init`: its initial list is complete).
enum Tick {
    Event { index: usize, init: bool },
    Error,
}

fn reflect<K>(
    api: Api<K>,
    config: watcher::Config,
    index: usize,
) -> (Store<K>, BoxStream<'static, Tick>)
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let (store, writer) = reflector::store();
    let stream = watcher(api, config)
        .default_backoff()
        .reflect(writer)
        .map(move |ev| match ev {
            Ok(watcher::Event::InitDone) => Tick::Event { index, init: true },
            Ok(_) => Tick::Event { index, init: false },
            Err(_) => Tick::Error,
        })
        .boxed();
    (store, stream)
}

fn owned<K>(store: &Store<K>) -> Vec<K>
where
    K: kube::Resource<DynamicType = ()> + Clone,
{
    store.state().iter().map(|k| (**k).clone()).collect()
}

const CLEAR: &str = "\x1b[H\x1b[2J";

/// `get rollout --watch`.
pub async fn get(
    conn: &Conn,
    name: &str,
    first: Model,
    style: Style,
    output: Option<Output>,
) -> Result<()> {
    let tty = std::io::stdout().is_terminal() && output.is_none();
    let by_name = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let selected = watcher::Config::default();
    let selected = match selector_params(&first.rollout).label_selector {
        Some(s) => selected.labels(&s),
        None => selected,
    };
    let ns = conn.namespace.clone();
    let (ro_store, s0) = reflect(conn.rollouts(), by_name, 0);
    let (rs_store, s1) = reflect(
        Api::<ReplicaSet>::namespaced(conn.client.clone(), &ns),
        selected.clone(),
        1,
    );
    let (pod_store, s2) = reflect(
        Api::<Pod>::namespaced(conn.client.clone(), &ns),
        selected,
        2,
    );
    let mut streams: SelectAll<BoxStream<'static, Tick>> =
        futures::stream::select_all(vec![s0, s1, s2]);
    let mut ready = vec![false, false, false];
    let ar_store = if Api::<AnalysisRun>::namespaced(conn.client.clone(), &ns)
        .list(&kube::api::ListParams::default().limit(1))
        .await
        .is_ok()
    {
        let (store, s3) = reflect(
            Api::<AnalysisRun>::namespaced(conn.client.clone(), &ns),
            watcher::Config::default(),
            3,
        );
        streams.push(s3);
        ready.push(false);
        Some(store)
    } else {
        None
    };
    let ex_store = if conn
        .experiments()
        .list(&kube::api::ListParams::default().limit(1))
        .await
        .is_ok()
    {
        let index = ready.len();
        let (store, s) = reflect(conn.experiments(), watcher::Config::default(), index);
        streams.push(s);
        ready.push(false);
        Some(store)
    } else {
        None
    };

    let draw = |info: &RolloutInfo| {
        if tty {
            out(CLEAR);
            out(&render::rollout(info, Timestamp::now(), style));
        } else if output.is_some() {
            super::print_info(info, style, output);
            if output == Some(Output::Yaml) {
                out("---\n");
            }
        } else {
            out(&render::rollout(info, Timestamp::now(), style));
            out("\n");
        }
    };
    let mut last = RolloutInfo::new(&first);
    let now = Timestamp::now();
    last.waiting = super::waiting::waiting(conn, &first, now)
        .await
        .map(|w| w.describe(now));
    draw(&last);
    let mut last_draw = Instant::now();
    let mut dirty = false;
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            ev = streams.next() => match ev {
                Some(Tick::Event { index, init }) => {
                    if init {
                        ready[index] = true;
                    }
                    dirty = true;
                }
                Some(Tick::Error) => {}
                None => return Ok(()),
            },
            _ = tick.tick() => {
                if !ready.iter().all(|r| *r) {
                    continue;
                }
                let refresh = tty && last_draw.elapsed() >= Duration::from_secs(1);
                if !dirty && !refresh {
                    continue;
                }
                dirty = false;
                let Some(rollout) = owned(&ro_store).into_iter().next() else {
                    return Err(CliError::not_found(format!(
                        "rollout {name:?} in namespace {ns:?} was deleted"
                    )));
                };
                let model = Model {
                    rollout,
                    replica_sets: owned(&rs_store),
                    pods: owned(&pod_store),
                    analysis_runs: ar_store.as_ref().map(owned).unwrap_or_default(),
                    experiments: ex_store.as_ref().map(owned).unwrap_or_default(),
                };
                let mut info = RolloutInfo::new(&model);
                let now = Timestamp::now();
                info.waiting = super::waiting::waiting(conn, &model, now)
                    .await
                    .map(|w| w.describe(now));
                if info != last || refresh {
                    draw(&info);
                    last = info;
                    last_draw = Instant::now();
                }
            }
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}

/// `get experiment --watch`: redrawn on every change (in place on a terminal) until Ctrl-C.
pub async fn get_experiment(
    conn: &Conn,
    name: &str,
    first: ExperimentModel,
    style: Style,
) -> Result<()> {
    let tty = std::io::stdout().is_terminal();
    let ns = conn.namespace.clone();
    let by_name = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let (ex_store, s0) = reflect(conn.experiments(), by_name, 0);
    let (rs_store, s1) = reflect(
        Api::<ReplicaSet>::namespaced(conn.client.clone(), &ns),
        watcher::Config::default(),
        1,
    );
    let (pod_store, s2) = reflect(
        Api::<Pod>::namespaced(conn.client.clone(), &ns),
        watcher::Config::default(),
        2,
    );
    let (ar_store, s3) = reflect(
        Api::<AnalysisRun>::namespaced(conn.client.clone(), &ns),
        watcher::Config::default(),
        3,
    );
    let mut streams = futures::stream::select_all(vec![s0, s1, s2, s3]);
    let mut ready = [false; 4];
    let draw = |info: &ExperimentInfo| {
        if tty {
            out(CLEAR);
        }
        out(&render::experiment(info, Timestamp::now(), style));
        if !tty {
            out("\n");
        }
    };
    let mut last = ExperimentInfo::new(&first);
    draw(&last);
    let mut last_draw = Instant::now();
    let mut dirty = false;
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            ev = streams.next() => match ev {
                Some(Tick::Event { index, init }) => {
                    if init {
                        ready[index] = true;
                    }
                    dirty = true;
                }
                Some(Tick::Error) => {}
                None => return Ok(()),
            },
            _ = tick.tick() => {
                if !ready.iter().all(|r| *r) {
                    continue;
                }
                let refresh = tty && last_draw.elapsed() >= Duration::from_secs(1);
                if !dirty && !refresh {
                    continue;
                }
                dirty = false;
                let Some(experiment) = owned(&ex_store).into_iter().next() else {
                    return Err(CliError::not_found(format!(
                        "experiment {name:?} in namespace {ns:?} was deleted"
                    )));
                };
                let info = ExperimentInfo::new(&ExperimentModel {
                    experiment,
                    replica_sets: owned(&rs_store),
                    pods: owned(&pod_store),
                    analysis_runs: owned(&ar_store),
                });
                if info != last || refresh {
                    draw(&info);
                    last = info;
                    last_draw = Instant::now();
                }
            }
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}

fn status_line(ro: &Rollout) -> (String, String, String) {
    let (phase, message) = rollout_phase(ro);
    let line = if message.is_empty() {
        phase.clone()
    } else {
        format!("{phase} - {message}")
    };
    (phase, message, line)
}

/// `status --watch`: prints each change until Healthy (Ok), Degraded (exit 1) or the
/// timeout (exit 4).
pub async fn status(
    conn: &Conn,
    name: &str,
    first: Rollout,
    timeout: Option<Duration>,
) -> Result<()> {
    let ns = conn.namespace.clone();
    let (phase, message, line) = status_line(&first);
    out(&format!("{line}\n"));
    match phase.as_str() {
        "Healthy" => return Ok(()),
        "Degraded" => return Err(conn.degraded(name, &message)),
        _ => {}
    }
    let mut last_line = line;
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut stream = watcher(conn.rollouts(), config)
        .default_backoff()
        .applied_objects()
        .boxed();
    let watch = async {
        loop {
            match stream.try_next().await {
                Ok(Some(ro)) => {
                    let (phase, message, line) = status_line(&ro);
                    if line != last_line {
                        out(&format!("{line}\n"));
                        last_line = line.clone();
                    }
                    match phase.as_str() {
                        "Healthy" => return Ok(()),
                        "Degraded" => return Err(conn.degraded(name, &message)),
                        _ => {}
                    }
                }
                Ok(None) => {
                    return Err(CliError::failed(format!(
                        "watching rollout {name:?} in namespace {ns:?}: the watch ended"
                    )));
                }
                // The watcher retries with backoff; keep waiting.
                Err(_) => {}
            }
        }
    };
    match timeout {
        None => watch.await,
        Some(t) => match tokio::time::timeout(t, watch).await {
            Ok(res) => res,
            Err(_) => Err(CliError::timeout(format!(
                "rollout {name:?} in namespace {ns:?} did not become Healthy within {} (rollout status watch exceeded timeout; last status: {last_line})",
                humantime(t)
            ))),
        },
    }
}

fn humantime(d: Duration) -> String {
    super::timeline::duration_text(d.as_secs() as i64)
}

/// `list rollouts --watch`: after the table, prints a line whenever a rollout's line changes.
pub async fn list(
    conn: &Conn,
    all_namespaces: bool,
    name: Option<&str>,
    first: Vec<ListLine>,
) -> Result<()> {
    let (ros, rss): (Api<Rollout>, Api<ReplicaSet>) = if all_namespaces {
        (Api::all(conn.client.clone()), Api::all(conn.client.clone()))
    } else {
        (
            conn.rollouts(),
            Api::namespaced(conn.client.clone(), &conn.namespace),
        )
    };
    let mut config = watcher::Config::default();
    if let Some(n) = name {
        config = config.fields(&format!("metadata.name={n}"));
    }
    let (ro_store, s0) = reflect(ros, config, 0);
    let (rs_store, s1) = reflect(rss, watcher::Config::default(), 1);
    let mut streams = futures::stream::select_all(vec![s0, s1]);
    let mut ready = [false, false];
    let mut prev: BTreeMap<(String, String), ListLine> = first
        .into_iter()
        .map(|l| ((l.namespace.clone(), l.name.clone()), l))
        .collect();
    let mut dirty = false;
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            ev = streams.next() => match ev {
                Some(Tick::Event { index, init }) => {
                    if init {
                        ready[index] = true;
                    }
                    dirty = true;
                }
                Some(Tick::Error) => {}
                None => return Ok(()),
            },
            _ = tick.tick() => {
                if !dirty || !ready.iter().all(|r| *r) {
                    continue;
                }
                dirty = false;
                let lines = ListLine::for_rollouts(&owned(&ro_store), &owned(&rs_store));
                let mut changed = Vec::new();
                for l in lines {
                    let key = (l.namespace.clone(), l.name.clone());
                    if prev.get(&key) != Some(&l) {
                        changed.push(render::list_line(&l, all_namespaces));
                        prev.insert(key, l);
                    }
                }
                if !changed.is_empty() {
                    out(&render::tabulate(&changed));
                }
            }
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}
