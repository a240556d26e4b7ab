//! A real Prometheus for integration tests.
//!
//! [`Prometheus::start`] runs Debian's `prometheus` (`/usr/bin/prometheus`; installed with
//! `apt-get install prometheus` when missing and running as root, else an error: tests that
//! need it fail, never skip) on a free loopback port, with its own data directory, scraping the
//! given targets every second. The process dies with the handle (and with the test process).
//! [`Prometheus::stop`] kills it early, e.g. to test an unreachable Prometheus.

use anyhow::{Context, Result, anyhow, bail};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

static INSTALL: Mutex<()> = Mutex::new(());

fn find_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("ROLLOUTS_TEST_PROMETHEUS").map(PathBuf::from)
        && p.is_file()
    {
        return Some(p);
    }
    let default = Path::new("/usr/bin/prometheus");
    if default.is_file() {
        return Some(default.to_path_buf());
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("prometheus"))
            .find(|p| p.is_file())
    })
}

fn apt_get(args: &[&str]) -> Result<()> {
    let out = Command::new("apt-get")
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdin(Stdio::null())
        .output()
        .context("running apt-get")?;
    if !out.status.success() {
        bail!(
            "apt-get {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// The Prometheus binary, installing Debian's package when it is missing and we are root.
pub fn binary() -> Result<PathBuf> {
    let _guard = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = find_binary() {
        return Ok(p);
    }
    if unsafe { libc::geteuid() } != 0 {
        bail!("prometheus is not installed (apt-get install prometheus) and we are not root");
    }
    let install = || {
        apt_get(&[
            "install",
            "-y",
            "-qq",
            "--no-install-recommends",
            "prometheus",
        ])
    };
    install()
        .or_else(|_| {
            apt_get(&["update", "-qq"])?;
            install()
        })
        .context("installing Debian's prometheus package")?;
    find_binary().ok_or_else(|| anyhow!("prometheus still missing after apt-get install"))
}

/// A running Prometheus.
pub struct Prometheus {
    child: Option<Child>,
    /// Its loopback port.
    pub port: u16,
    dir: PathBuf,
    bin: PathBuf,
}

fn spawn(bin: &Path, dir: &Path, port: u16) -> Result<Child> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("prometheus.log"))?;
    let mut cmd = Command::new(bin);
    cmd.arg(format!(
        "--config.file={}",
        dir.join("prometheus.yml").display()
    ))
    .arg(format!(
        "--storage.tsdb.path={}",
        dir.join("data").display()
    ))
    .arg(format!("--web.listen-address=127.0.0.1:{port}"))
    .arg("--log.level=warn")
    .stdin(Stdio::null())
    .stdout(log.try_clone()?)
    .stderr(log);
    crate::cluster::die_with_parent(&mut cmd);
    cmd.spawn()
        .with_context(|| format!("starting {}", bin.display()))
}

fn config(targets: &[String]) -> String {
    let list = targets
        .iter()
        .map(|t| format!("'{t}'"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
         scrape_configs:\n  - job_name: test\n    static_configs:\n      - targets: [{list}]\n"
    )
}

/// Percent-encodes a query parameter.
pub fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A plain HTTP/1.0 GET on loopback: (status code, body).
pub async fn http_get(port: u16, path: &str) -> Result<(u16, String)> {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let req = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await?;
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf))
        .await
        .map_err(|_| anyhow!("no answer from 127.0.0.1:{port}{path} within 10s"))??;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| {
            anyhow!(
                "not an HTTP response: {:?}",
                text.chars().take(80).collect::<String>()
            )
        })?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((code, body))
}

impl Prometheus {
    /// Starts Prometheus scraping `targets` (`host:port`, path `/metrics`) every second and
    /// waits until it is ready.
    pub async fn start(targets: &[String]) -> Result<Prometheus> {
        let bin = binary()?;
        let port = crate::cluster::free_port()?;
        let base = if Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let dir = base.join(format!("rollouts-prometheus-{}-{port}", std::process::id()));
        std::fs::create_dir_all(dir.join("data"))?;
        std::fs::write(dir.join("prometheus.yml"), config(targets))?;
        let child = spawn(&bin, &dir, port)?;
        let mut p = Prometheus {
            child: Some(child),
            port,
            dir,
            bin,
        };
        p.wait_ready().await?;
        Ok(p)
    }

    /// Starts a stopped Prometheus again on the same port (the same URL) and data directory,
    /// and waits until it is ready.
    pub async fn restart(&mut self) -> Result<()> {
        self.stop();
        self.child = Some(spawn(&self.bin, &self.dir, self.port)?);
        self.wait_ready().await
    }

    async fn wait_ready(&mut self) -> Result<()> {
        let p = self;
        let port = p.port;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok((200, _)) = http_get(port, "/-/ready").await {
                return Ok(());
            }
            if let Some(c) = p.child.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                bail!("prometheus exited ({status}): {}", p.log_tail());
            }
            if Instant::now() > deadline {
                let tail = p.log_tail();
                p.stop();
                bail!("prometheus not ready within 60s: {tail}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Its base URL (`http://127.0.0.1:<port>`).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The end of its log.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Runs an instant query: the raw JSON answer.
    pub async fn query(&self, q: &str) -> Result<String> {
        let (code, body) =
            http_get(self.port, &format!("/api/v1/query?query={}", encode(q))).await?;
        if code != 200 {
            bail!("query {q:?}: HTTP {code}: {body}");
        }
        Ok(body)
    }

    /// Waits until `q` returns a non-empty result whose body contains `needle`.
    pub async fn wait_for(&self, q: &str, needle: &str, timeout: Duration) -> Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let last = self.query(q).await;
            if let Ok(body) = &last
                && !body.contains("\"result\":[]")
                && body.contains(needle)
            {
                return Ok(body.clone());
            }
            if Instant::now() > deadline {
                bail!("{q:?} never returned {needle:?} within {timeout:?} (last: {last:?})");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Kills Prometheus (its port then refuses connections).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
