//! A real local control plane: etcd, kube-apiserver and kube-controller-manager on loopback.
//!
//! Two modes share one start-up path:
//! - **attached** (tests): the processes die with the thread that started them
//!   (`PR_SET_PDEATHSIG`), and [`ControlPlane`]'s `Drop` stops them;
//! - **detached** (`cargo xtask cluster up`): the processes get their own session and a pid file
//!   each; `cluster down` stops exactly those pids (never processes found by name).

use anyhow::{Context, Result, anyhow, bail};
use std::fs;
use std::io::Read;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where the binaries of the control plane live.
#[derive(Clone, Debug)]
pub struct Binaries {
    pub etcd: PathBuf,
    pub apiserver: PathBuf,
    pub controller_manager: PathBuf,
    /// kubectl built from the same source as the server (1.20), or one found on PATH.
    pub kubectl: Option<PathBuf>,
}

/// `$XDG_CACHE_HOME/rollouts` (or `~/.cache/rollouts`).
pub fn cache_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    base.join("rollouts")
}

/// The directory the build script caches the Kubernetes binaries in (`-2`: built against
/// reflect2 1.0.2, see the script).
pub fn k8s_cache_dir() -> PathBuf {
    cache_dir().join("k8s-1.20.2-2")
}

fn find_in(dir: &Path, name: &str) -> Option<PathBuf> {
    let p = dir.join(name);
    p.is_file().then_some(p)
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).find_map(|d| find_in(&d, name))
}

impl Binaries {
    /// Looks in `$KUBEBUILDER_ASSETS`, then the build cache, then `PATH`.
    pub fn locate() -> Option<Binaries> {
        let mut dirs: Vec<PathBuf> = Vec::new();
        if let Some(a) = std::env::var_os("KUBEBUILDER_ASSETS") {
            dirs.push(PathBuf::from(a));
        }
        dirs.push(k8s_cache_dir());
        let find = |name: &str| {
            dirs.iter()
                .find_map(|d| find_in(d, name))
                .or_else(|| find_on_path(name))
        };
        Some(Binaries {
            etcd: find("etcd")?,
            apiserver: find("kube-apiserver")?,
            controller_manager: find("kube-controller-manager")?,
            kubectl: find("kubectl"),
        })
    }

    /// Locates the binaries, building them with `scripts/build-control-plane.sh` when missing
    /// (as root on Debian; otherwise the script says what to install).
    pub fn ensure() -> Result<Binaries> {
        if let Some(b) = Self::locate()
            && b.kubectl.is_some()
        {
            return Ok(b);
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/build-control-plane.sh");
        eprintln!(
            "control plane binaries not found: running {}",
            script.display()
        );
        let status = Command::new("bash")
            .arg(&script)
            .arg(k8s_cache_dir())
            .status()
            .with_context(|| format!("running {}", script.display()))?;
        if !status.success() {
            bail!(
                "{} failed ({status}): the control plane cannot start",
                script.display()
            );
        }
        Self::locate().ok_or_else(|| {
            anyhow!("etcd, kube-apiserver or kube-controller-manager still missing after the build")
        })
    }
}

/// A free TCP port on loopback (the kernel picks it; the tiny race with other processes is
/// acceptable for a developer cluster).
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn random_hex(bytes: usize) -> Result<String> {
    let mut buf = vec![0u8; bytes];
    fs::File::open("/dev/urandom")?.read_exact(&mut buf)?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

fn run_openssl(dir: &Path, args: &[&str]) -> Result<()> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .context("running openssl (install Debian's `openssl` package)")?;
    if !out.status.success() {
        bail!(
            "openssl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// Generates the CA, the API server's serving certificate, the service-account key pair and an
/// admin token in `dir`, unless they exist already.
fn ensure_credentials(dir: &Path) -> Result<String> {
    let token_file = dir.join("admin.token");
    if !dir.join("apiserver.crt").exists() {
        run_openssl(
            dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.crt",
                "-days",
                "3650",
                "-subj",
                "/CN=rollouts-local-ca",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
            ],
        )?;
        run_openssl(
            dir,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "apiserver.key",
                "-out",
                "apiserver.csr",
                "-subj",
                "/CN=kube-apiserver",
            ],
        )?;
        fs::write(
            dir.join("apiserver.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default.svc\n\
             basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n\
             extendedKeyUsage=serverAuth\n",
        )?;
        run_openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                "apiserver.csr",
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "apiserver.crt",
                "-days",
                "3650",
                "-extfile",
                "apiserver.ext",
            ],
        )?;
        run_openssl(dir, &["genrsa", "-out", "sa.key", "2048"])?;
        run_openssl(dir, &["rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub"])?;
    }
    if !token_file.exists() {
        let token = random_hex(24)?;
        fs::write(
            dir.join("tokens.csv"),
            format!("{token},admin,admin,\"system:masters\"\n"),
        )?;
        fs::write(&token_file, &token)?;
    }
    Ok(fs::read_to_string(token_file)?.trim().to_string())
}

fn kubeconfig_yaml(server: &str, ca: &Path, token: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: rollouts-local\n  cluster:\n    \
         server: {server}\n    certificate-authority: {}\nusers:\n- name: admin\n  user:\n    \
         token: {token}\ncontexts:\n- name: rollouts-local\n  context:\n    cluster: \
         rollouts-local\n    user: admin\n    namespace: default\ncurrent-context: rollouts-local\n",
        ca.display()
    )
}

/// How the processes are tied to their starter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Children die with the starting thread (tests).
    Attached,
    /// Children run on in their own session with pid files (`cluster up`).
    Detached,
}

/// What [`ControlPlane::start_with_extras`] adds to the default set-up.
#[derive(Clone, Debug, Default)]
pub struct Extras {
    /// More users (members of `system:masters`), each with its own token and a kubeconfig
    /// `kubeconfig-<user>` in the state directory, so the API server's audit log tells their
    /// requests apart.
    pub users: Vec<String>,
    /// An audit policy (YAML): the API server then writes JSON audit events to `audit.log`
    /// in the state directory.
    pub audit_policy: Option<String>,
}

/// One started process and how to start it again.
struct Proc {
    name: String,
    bin: PathBuf,
    args: Vec<String>,
    child: Child,
}

/// A running control plane.
pub struct ControlPlane {
    pub dir: PathBuf,
    pub kubeconfig: PathBuf,
    pub server: String,
    pub token: String,
    pub binaries: Binaries,
    mode: Mode,
    children: Vec<Proc>,
}

const COMPONENTS: [&str; 3] = ["etcd", "kube-apiserver", "kube-controller-manager"];

impl ControlPlane {
    /// Starts etcd, kube-apiserver and kube-controller-manager with state in `dir` and waits
    /// until the API server answers and the controller manager is working.
    pub async fn start(binaries: Binaries, dir: &Path, mode: Mode) -> Result<ControlPlane> {
        Self::start_with(binaries, dir, mode, &[]).await
    }

    /// [`ControlPlane::start`] with extra kube-apiserver flags (the benchmark's audit log).
    pub async fn start_with(
        binaries: Binaries,
        dir: &Path,
        mode: Mode,
        apiserver_flags: &[String],
    ) -> Result<ControlPlane> {
        Self::start_with_users(binaries, dir, mode, &[], apiserver_flags).await
    }

    /// [`ControlPlane::start_with_users`] with the users and the audit policy of `extras`.
    pub async fn start_with_extras(
        binaries: Binaries,
        dir: &Path,
        mode: Mode,
        extras: &Extras,
    ) -> Result<ControlPlane> {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut flags = Vec::new();
        if let Some(policy) = &extras.audit_policy {
            let file = dir.join("audit-policy.yaml");
            fs::write(&file, policy)?;
            flags = vec![
                format!("--audit-policy-file={}", file.display()),
                format!("--audit-log-path={}", dir.join("audit.log").display()),
                "--audit-log-format=json".into(),
                "--audit-log-maxsize=0".into(),
            ];
        }
        Self::start_with_users(binaries, dir, mode, &extras.users, &flags).await
    }

    /// [`ControlPlane::start_with`] and more users (members of `system:masters`), each with
    /// its own token and a kubeconfig `kubeconfig-<user>` in `dir`, so the API server's audit
    /// log tells their requests apart (the chaos suite's controller replicas).
    pub async fn start_with_users(
        binaries: Binaries,
        dir: &Path,
        mode: Mode,
        users: &[String],
        apiserver_flags: &[String],
    ) -> Result<ControlPlane> {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let dir = dir.canonicalize()?;
        let token = ensure_credentials(&dir)?;
        let etcd_port = free_port()?;
        let peer_port = free_port()?;
        let api_port = free_port()?;
        let server = format!("https://127.0.0.1:{api_port}");
        let kubeconfig = dir.join("kubeconfig");
        fs::write(
            &kubeconfig,
            kubeconfig_yaml(&server, &dir.join("ca.crt"), &token),
        )?;
        if !users.is_empty() {
            let mut tokens = format!("{token},admin,admin,\"system:masters\"\n");
            for user in users {
                let t = random_hex(24)?;
                tokens.push_str(&format!("{t},{user},{user},\"system:masters\"\n"));
                fs::write(
                    dir.join(format!("kubeconfig-{user}")),
                    kubeconfig_yaml(&server, &dir.join("ca.crt"), &t),
                )?;
            }
            fs::write(dir.join("tokens.csv"), tokens)?;
        }
        let mut cp = ControlPlane {
            dir: dir.clone(),
            kubeconfig: kubeconfig.clone(),
            server,
            token,
            binaries: binaries.clone(),
            mode,
            children: Vec::new(),
        };
        let d = |name: &str| dir.join(name).display().to_string();

        let etcd_data = dir.join("etcd-data");
        let _ = fs::remove_dir_all(&etcd_data);
        cp.spawn(
            mode,
            "etcd",
            &binaries.etcd,
            &[
                "--name=default".into(),
                format!("--data-dir={}", etcd_data.display()),
                format!("--listen-client-urls=http://127.0.0.1:{etcd_port}"),
                format!("--advertise-client-urls=http://127.0.0.1:{etcd_port}"),
                format!("--listen-peer-urls=http://127.0.0.1:{peer_port}"),
                format!("--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}"),
                format!("--initial-cluster=default=http://127.0.0.1:{peer_port}"),
                "--log-level=warn".into(),
            ],
        )?;
        wait_tcp(
            etcd_port,
            Duration::from_secs(30),
            "etcd",
            &dir.join("etcd.log"),
        )
        .await?;

        let mut flags: Vec<String> = vec![
            format!("--etcd-servers=http://127.0.0.1:{etcd_port}"),
            "--bind-address=127.0.0.1".into(),
            "--advertise-address=127.0.0.1".into(),
            format!("--secure-port={api_port}"),
            "--insecure-port=0".into(),
            format!("--cert-dir={}", d("certs")),
            format!("--tls-cert-file={}", d("apiserver.crt")),
            format!("--tls-private-key-file={}", d("apiserver.key")),
            format!("--client-ca-file={}", d("ca.crt")),
            format!("--token-auth-file={}", d("tokens.csv")),
            "--authorization-mode=RBAC".into(),
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local".into(),
            format!("--service-account-key-file={}", d("sa.pub")),
            format!("--service-account-signing-key-file={}", d("sa.key")),
            "--disable-admission-plugins=ServiceAccount".into(),
            "--service-cluster-ip-range=10.96.0.0/16".into(),
            "--allow-privileged=true".into(),
            "--profiling=false".into(),
            "--v=0".into(),
        ];
        flags.extend_from_slice(apiserver_flags);
        cp.spawn(mode, "kube-apiserver", &binaries.apiserver, &flags)?;
        let client = cp.client().await?;
        wait_ready(
            &client,
            Duration::from_secs(90),
            &dir.join("kube-apiserver.log"),
        )
        .await?;

        let kcm_kubeconfig = dir.join("kcm.kubeconfig");
        fs::copy(&kubeconfig, &kcm_kubeconfig)?;
        cp.spawn(
            mode,
            "kube-controller-manager",
            &binaries.controller_manager,
            &[
                format!("--kubeconfig={}", kcm_kubeconfig.display()),
                "--controllers=*,-serviceaccount-token,-nodelifecycle,-csrsigning".into(),
                "--port=0".into(),
                "--secure-port=0".into(),
                "--leader-elect=false".into(),
                "--use-service-account-credentials=false".into(),
                "--service-cluster-ip-range=10.96.0.0/16".into(),
                "--concurrent-replicaset-syncs=10".into(),
                "--concurrent-deployment-syncs=10".into(),
                "--concurrent-endpoint-syncs=10".into(),
                "--concurrent-gc-syncs=20".into(),
                "--v=0".into(),
            ],
        )?;
        wait_controller_manager(
            &client,
            Duration::from_secs(60),
            &dir.join("kube-controller-manager.log"),
        )
        .await?;
        Ok(cp)
    }

    fn spawn(&mut self, mode: Mode, name: &str, bin: &Path, args: &[String]) -> Result<()> {
        let child = self.spawn_process(mode, name, bin, args, false)?;
        self.children.push(Proc {
            name: name.to_string(),
            bin: bin.to_path_buf(),
            args: args.to_vec(),
            child,
        });
        Ok(())
    }

    fn spawn_process(
        &self,
        mode: Mode,
        name: &str,
        bin: &Path,
        args: &[String],
        append_log: bool,
    ) -> Result<Child> {
        let log = fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(append_log)
            .truncate(!append_log)
            .open(self.dir.join(format!("{name}.log")))?;
        let mut cmd = Command::new(bin);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        match mode {
            Mode::Attached => die_with_parent(&mut cmd),
            Mode::Detached => unsafe {
                cmd.pre_exec(|| {
                    if libc::setsid() < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            },
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        fs::write(self.dir.join(format!("{name}.pid")), child.id().to_string())?;
        Ok(child)
    }

    /// The pid of a started component (`etcd`, `kube-apiserver`, `kube-controller-manager`).
    pub fn pid(&self, name: &str) -> Option<i32> {
        self.children
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.child.id() as i32)
    }

    /// Stops a component (SIGTERM, then SIGKILL after 5 s) and starts it again with the same
    /// arguments (so on the same ports), its log appended. For the API server, waits until it
    /// is ready again: every watch open on it is gone and clients must start new ones.
    pub async fn restart(&mut self, name: &str) -> Result<()> {
        let i = self
            .children
            .iter()
            .position(|p| p.name == name)
            .ok_or_else(|| anyhow!("no component {name} was started"))?;
        let pid = self.children[i].child.id() as i32;
        tokio::task::block_in_place(|| terminate(pid));
        let _ = self.children[i].child.wait();
        let (bin, args) = (self.children[i].bin.clone(), self.children[i].args.clone());
        let child = self.spawn_process(self.mode, name, &bin, &args, true)?;
        self.children[i].child = child;
        if name == "kube-apiserver" {
            let client = self.client().await?;
            wait_ready(
                &client,
                Duration::from_secs(90),
                &self.dir.join("kube-apiserver.log"),
            )
            .await?;
        }
        Ok(())
    }

    /// A client for this control plane (admin token).
    pub async fn client(&self) -> Result<kube::Client> {
        client_for(&self.kubeconfig).await
    }

    /// In detached mode the processes outlive this value: forget them.
    pub fn detach(mut self) {
        self.children.clear();
    }

    /// Stops the attached children (SIGTERM, then SIGKILL after 5 s).
    pub fn stop(&mut self) {
        for p in self.children.iter_mut().rev() {
            terminate(p.child.id() as i32);
            let _ = p.child.wait();
        }
        self.children.clear();
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        self.stop();
    }
}

fn terminate(pid: i32) {
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline && pid_alive(pid) {
        std::thread::sleep(Duration::from_millis(50));
    }
    if pid_alive(pid) {
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
    }
}

fn pid_alive(pid: i32) -> bool {
    // A zombie child counts as dead.
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.trim_start().starts_with('Z'))
            .unwrap_or(false),
        Err(_) => false,
    }
}

/// A kube client from a kubeconfig file.
pub async fn client_for(kubeconfig: &Path) -> Result<kube::Client> {
    client_with_agent(
        kubeconfig,
        concat!("rollouts-xtask/", env!("CARGO_PKG_VERSION")),
    )
    .await
}

/// A kube client from a kubeconfig file that names itself `agent` (the `User-Agent` the API
/// server's audit log records: the benchmark counts each client's writes by it).
pub async fn client_with_agent(kubeconfig: &Path, agent: &str) -> Result<kube::Client> {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig)
        .with_context(|| format!("reading {}", kubeconfig.display()))?;
    let mut config =
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await?;
    config.headers.push((
        http::header::USER_AGENT,
        http::HeaderValue::from_str(agent)?,
    ));
    Ok(kube::Client::try_from(config)?)
}

fn log_tail(log: &Path) -> String {
    let text = fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

async fn wait_tcp(port: u16, timeout: Duration, what: &str, log: &Path) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "{what} did not listen on 127.0.0.1:{port} within {timeout:?}; log:\n{}",
                log_tail(log)
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_ready(client: &kube::Client, timeout: Duration, log: &Path) -> Result<()> {
    use k8s_openapi::api::core::v1::Namespace;
    let deadline = Instant::now() + timeout;
    let ns: kube::Api<Namespace> = kube::Api::all(client.clone());
    loop {
        let last;
        let req = http::Request::get("/readyz").body(Vec::new())?;
        match client.request_text(req).await {
            Ok(body) if body.trim() == "ok" => {
                if ns.get_opt("default").await.ok().flatten().is_some() {
                    return Ok(());
                }
                last = "namespace default not created yet".into();
            }
            Ok(body) => last = body,
            Err(e) => last = e.to_string(),
        }
        if Instant::now() > deadline {
            bail!(
                "kube-apiserver not ready within {timeout:?} ({last}); log:\n{}",
                log_tail(log)
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The controller manager is working once its service-account controller has created the
/// `default` ServiceAccount in `default`.
async fn wait_controller_manager(
    client: &kube::Client,
    timeout: Duration,
    log: &Path,
) -> Result<()> {
    use k8s_openapi::api::core::v1::ServiceAccount;
    let sa: kube::Api<ServiceAccount> = kube::Api::namespaced(client.clone(), "default");
    let deadline = Instant::now() + timeout;
    loop {
        if sa.get_opt("default").await.ok().flatten().is_some() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "kube-controller-manager not working within {timeout:?}; log:\n{}",
                log_tail(log)
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The processes a detached cluster in `dir` started, from their pid files, with liveness.
/// A pid counts only if `/proc/<pid>/cmdline` still names the component and mentions `dir`
/// (so a recycled pid is never signalled).
pub fn detached_processes(dir: &Path) -> Vec<(String, i32, bool)> {
    let mut out = Vec::new();
    for name in COMPONENTS.iter().copied().chain(["podsim"]) {
        let Ok(text) = fs::read_to_string(dir.join(format!("{name}.pid"))) else {
            continue;
        };
        let Ok(pid) = text.trim().parse::<i32>() else {
            continue;
        };
        let ours = fs::read(format!("/proc/{pid}/cmdline"))
            .map(|c| {
                let c = String::from_utf8_lossy(&c).replace('\0', " ");
                let bin = if name == "podsim" { "xtask" } else { name };
                c.contains(bin) && c.contains(&*dir.to_string_lossy())
            })
            .unwrap_or(false);
        out.push((name.to_string(), pid, ours && pid_alive(pid)));
    }
    out
}

/// Stops the processes of a detached cluster in `dir` (pod simulator first, etcd last).
pub fn stop_detached(dir: &Path) -> Vec<String> {
    let mut stopped = Vec::new();
    let mut procs = detached_processes(dir);
    procs.reverse();
    for (name, pid, alive) in procs {
        if alive {
            terminate(pid);
            stopped.push(format!("{name} (pid {pid})"));
        }
        let _ = fs::remove_file(dir.join(format!("{name}.pid")));
    }
    stopped
}

/// Makes the process `cmd` starts die (SIGKILL) with the thread that started it
/// (`PR_SET_PDEATHSIG`), so a crashed test run, benchmark or chaos run leaves nothing behind.
pub fn die_with_parent(cmd: &mut Command) {
    // SAFETY: the closure only calls `prctl`, which is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}
