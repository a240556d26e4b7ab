//! `kubectl-rollouts dashboard`: a live web UI of the Rollouts, served from the binary.
//!
//! - [`view`] and [`why`] (pure) say what the pages show: the list rows, the Rollout view
//!   (summary, steps, revisions with their ReplicaSets and pods, AnalysisRuns with their
//!   measurements and conditions, containers, why it waits, the planned timeline of a pending
//!   update); [`measure`] reads numbers and thresholds for the analysis charts.
//! - [`hub`] keeps kube watches (reflectors) per namespace and publishes what changed.
//! - [`server`] serves the embedded page (`assets/`: hand-written HTML, CSS and JS, no build
//!   step), the JSON API, server-sent event streams, and the actions, which call the same
//!   functions as the CLI's commands ([`crate::cli::verbs`]).
//!
//! # Safety model
//!
//! Every read and every action uses the kubeconfig identity of the person who started it,
//! so Kubernetes RBAC applies as for the CLI; a refusal (403) or a conflict (409) is shown
//! in words. Beyond upstream's dashboard, which has no authentication at all:
//!
//! - It listens on 127.0.0.1 unless `--address` says otherwise. On a loopback address, a
//!   request whose `Host` is not that address is refused (no DNS rebinding).
//! - Actions need a random token made at each start (32 bytes from the OS), printed in the
//!   URL's fragment (`#token=...`, never sent to a server by the browser); the page sends it
//!   in the `X-Rollouts-Token` header. Reads do not need it.
//! - `--read-only`: no action buttons, and every action is refused (403).
//! - State changes are POST only, with a JSON body, from this dashboard's own origin
//!   (`Origin` must be the page's; `Sec-Fetch-Site`, when sent, `same-origin`).
//! - Every response carries a strict Content-Security-Policy (own script and style only, no
//!   inline script, no framing), `nosniff`, `no-referrer`, `X-Frame-Options: DENY`; API
//!   responses are `no-store`.
//! - Secrets are never read, and the pages get no environment, analysis argument, metric
//!   provider credential or header ([`view`]).

pub mod hub;
pub mod measure;
pub mod server;
pub mod view;
pub mod why;

use super::cluster::Conn;
use super::error::{CliError, Result};
use base64::Engine as _;
use clap::Args;
use kube::Client;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// `dashboard`'s flags.
#[derive(Debug, Clone, Args)]
pub struct Options {
    /// Port to listen on (0: any free port).
    #[arg(short = 'p', long, default_value_t = 3100)]
    pub port: u16,
    /// Address to listen on. Any other than a loopback address lets others on the network
    /// reach the dashboard, which reads (and, without --read-only, acts) as you.
    #[arg(long, default_value = "127.0.0.1", value_name = "IP")]
    pub address: IpAddr,
    /// The path the dashboard is served under (`http://ADDRESS:PORT/ROOT-PATH/`).
    #[arg(long, default_value = "rollouts", value_name = "PATH")]
    pub root_path: String,
    /// Show the Rollouts of every namespace.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Show only: no action buttons, and every action is refused.
    #[arg(long)]
    pub read_only: bool,
}

/// What a dashboard serves.
#[derive(Clone, Debug)]
pub struct Config {
    /// The namespace shown first (and the only one watched at start).
    pub namespace: String,
    /// Watch every namespace at once (`-A`).
    pub all_namespaces: bool,
    pub read_only: bool,
    /// `rollouts`, `/rollouts/`, or empty (served at `/`).
    pub root_path: String,
    /// The API server's URL (for messages).
    pub server: String,
}

/// A dashboard serving on a listener.
pub struct Running {
    pub addr: SocketAddr,
    /// The page's URL (without the token).
    pub url: String,
    /// The action token of this start.
    pub token: String,
    pub read_only: bool,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    /// The URL to open: with the token (unless read-only).
    pub fn url_with_token(&self) -> String {
        if self.read_only {
            self.url.clone()
        } else {
            format!("{}#token={}", self.url, self.token)
        }
    }

    /// Stops serving: the event streams end, then the connections close (after 5 s at
    /// most).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let mut task = self.task;
        if tokio::time::timeout(std::time::Duration::from_secs(5), &mut task)
            .await
            .is_err()
        {
            task.abort();
        }
    }

    /// Serves until the process is stopped.
    pub async fn wait(self) {
        let _ = self.task.await;
    }
}

/// A random token: 32 bytes from the operating system, base64url.
fn new_token() -> Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| CliError::failed(format!("no randomness for the dashboard's token: {e}")))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

fn prefix(root_path: &str) -> Result<String> {
    let p = root_path.trim_matches('/');
    let ok = p
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
        && !p.contains("//")
        && !p.split('/').any(|s| s == "." || s == "..");
    if !ok {
        return Err(CliError::usage(format!(
            "invalid --root-path {root_path:?}: letters, digits, '-', '_', '.' and '/' only"
        )));
    }
    Ok(if p.is_empty() {
        String::new()
    } else {
        format!("/{p}")
    })
}

/// Checks the flags that clap does not (before connecting to the cluster).
pub fn check(opts: &Options) -> Result<()> {
    prefix(&opts.root_path).map(drop)
}

/// The `Host` values a loopback listener accepts.
fn allowed_hosts(addr: SocketAddr) -> Option<Vec<String>> {
    if !addr.ip().is_loopback() {
        return None;
    }
    let port = addr.port();
    Some(vec![
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
    ])
}

/// Serves a dashboard on `listener`, reading and acting with `client`.
pub fn start(client: Client, config: Config, listener: tokio::net::TcpListener) -> Result<Running> {
    let addr = listener
        .local_addr()
        .map_err(|e| CliError::failed(format!("the dashboard's listener: {e}")))?;
    let prefix = prefix(&config.root_path)?;
    let token = new_token()?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut shutdown = stopped.clone();
    let app = Arc::new(server::App {
        hub: hub::Hub::new(client.clone(), config.all_namespaces),
        client,
        server: config.server.clone(),
        namespace: config.namespace.clone(),
        token: token.clone(),
        read_only: config.read_only,
        prefix: prefix.clone(),
        allowed_hosts: allowed_hosts(addr),
        stop: stopped,
    });
    // Start watching the first namespace now: the first page is shown sooner.
    let _ = app.hub.set_for(&config.namespace);
    let router = server::router(app.clone());
    let task = tokio::spawn(async move {
        let serve = axum::serve(listener, router).with_graceful_shutdown(async move {
            let _ = shutdown.wait_for(|s| *s).await;
        });
        if let Err(e) = serve.await {
            eprintln!("error: the dashboard stopped serving: {e}");
        }
        drop(app);
    });
    let host = if addr.ip().is_unspecified() {
        SocketAddr::new(IpAddr::from([127, 0, 0, 1]), addr.port())
    } else {
        addr
    };
    Ok(Running {
        addr,
        url: format!("http://{host}{prefix}/"),
        token,
        read_only: config.read_only,
        stop,
        task,
    })
}

/// `kubectl-rollouts dashboard`: serves until interrupted.
pub async fn run(conn: Conn, opts: Options) -> Result<()> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ROLLOUTS_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("rollouts=info")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let bind = SocketAddr::new(opts.address, opts.port);
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .map_err(|e| CliError::failed(format!("cannot listen on {bind}: {e}")))?;
    let config = Config {
        namespace: conn.namespace.clone(),
        all_namespaces: opts.all_namespaces,
        read_only: opts.read_only,
        root_path: opts.root_path.clone(),
        server: conn.server.clone(),
    };
    let running = start(conn.client.clone(), config, listener)?;
    let mut text = format!("Rollouts dashboard: {}\n", running.url_with_token());
    if opts.read_only {
        text.push_str("Read-only: no actions.\n");
    } else {
        text.push_str(
            "Whoever has this URL (its #token) can act on rollouts as your Kubernetes user: keep it to yourself.\n",
        );
    }
    if !opts.address.is_loopback() {
        text.push_str(&format!(
            "Listening on {bind}: reachable from the network, reading as your Kubernetes user.\n"
        ));
    }
    super::out(&text);
    tokio::select! {
        _ = running.task => Err(CliError::failed("the dashboard stopped serving")),
        _ = tokio::signal::ctrl_c() => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_paths() {
        assert_eq!(prefix("rollouts").unwrap(), "/rollouts");
        assert_eq!(prefix("/a/b/").unwrap(), "/a/b");
        assert_eq!(prefix("").unwrap(), "");
        assert_eq!(prefix("/").unwrap(), "");
        assert!(prefix("a/../b").is_err());
        assert!(prefix("a b").is_err());
        assert!(prefix("<x>").is_err());
    }

    #[test]
    fn tokens_are_random_and_long() {
        let a = new_token().unwrap();
        let b = new_token().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
    }

    #[test]
    fn loopback_listeners_check_the_host() {
        let hosts = allowed_hosts("127.0.0.1:3100".parse().unwrap()).unwrap();
        assert!(hosts.contains(&"localhost:3100".to_string()));
        assert_eq!(allowed_hosts("0.0.0.0:3100".parse().unwrap()), None);
    }
}
