//! Python packages the tests use: `helm-python-sdk` (Helm's Go SDK as a shared library, with
//! `Chart.load(...).render(...)` and `lint(...)`), which the chart tests (`tests/helm.rs`,
//! `tests/e2e/ops.rs`, through `tests/helm/chart.py`) render and lint `charts/rollouts` with.
//!
//! [`ensure_python_packages`] installs what is missing with `python -m pip` (once per process;
//! a no-op when everything imports). The interpreter is `ROLLOUTS_PYTHON`, else `python3`.

use anyhow::{Context, Result, bail};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// (module to import, pip requirement).
pub const PACKAGES: &[(&str, &str)] = &[("helm_python", "helm-python-sdk>=0.2.2,<0.3")];

/// The Python interpreter the tests run.
pub fn python() -> String {
    std::env::var("ROLLOUTS_PYTHON")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "python3".into())
}

fn run(cmd: &mut Command) -> Result<Output> {
    cmd.output()
        .with_context(|| format!("running {cmd:?} (is Python 3 installed?)"))
}

fn imports(py: &str, module: &str) -> bool {
    Command::new(py)
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn pip_install(py: &str, requirement: &str) -> Result<()> {
    let base = [
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        requirement,
    ];
    let out = run(Command::new(py).args(base))?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Debian's system Python refuses pip installs unless told (PEP 668).
    if stderr.contains("externally-managed-environment") {
        let out = run(Command::new(py).args(base).arg("--break-system-packages"))?;
        if out.status.success() {
            return Ok(());
        }
        bail!(
            "pip install {requirement} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // No pip at all: Debian's python3-pip, when we may install packages.
    if stderr.contains("No module named pip") && which("apt-get") {
        let _ = run(Command::new("apt-get").args(["update", "-qq"]));
        let apt = run(Command::new("apt-get").args(["install", "-y", "-qq", "python3-pip"]))?;
        if !apt.status.success() {
            bail!(
                "installing python3-pip failed:\n{}",
                String::from_utf8_lossy(&apt.stderr)
            );
        }
        return pip_install_after_apt(py, &base, requirement);
    }
    bail!("pip install {requirement} failed:\n{stderr}")
}

fn pip_install_after_apt(py: &str, base: &[&str], requirement: &str) -> Result<()> {
    let out = run(Command::new(py).args(base).arg("--break-system-packages"))?;
    if out.status.success() {
        return Ok(());
    }
    bail!(
        "pip install {requirement} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    )
}

fn which(bin: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|p| p.join(bin).is_file()))
}

static ENSURED: OnceLock<Result<(), String>> = OnceLock::new();

/// Installs the Python packages the tests need (see [`PACKAGES`]) unless they already import.
pub fn ensure_python_packages() -> Result<()> {
    let res = ENSURED.get_or_init(|| {
        let py = python();
        for (module, requirement) in PACKAGES {
            if imports(&py, module) {
                continue;
            }
            eprintln!("installing the Python package {requirement} for {py}");
            pip_install(&py, requirement).map_err(|e| format!("{e:#}"))?;
            if !imports(&py, module) {
                return Err(format!(
                    "{requirement} was installed but `import {module}` still fails with {py}"
                ));
            }
        }
        Ok(())
    });
    res.clone().map_err(anyhow::Error::msg)
}
