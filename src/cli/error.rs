//! The CLI's errors and exit codes.
//!
//! Every error is one line naming what was looked for and where, and carries the exit code
//! documented in `kubectl-rollouts --help`.

use std::fmt;

/// Exit codes (documented in `--help`).
pub mod exit {
    /// Success (and `status`: the Rollout is Healthy).
    pub const OK: u8 = 0;
    /// The command failed, or (`status`) the Rollout is Degraded, or (`lint`, `plan`) the
    /// manifest is invalid.
    pub const FAILED: u8 = 1;
    /// Usage error: unknown flag, missing argument, malformed value.
    pub const USAGE: u8 = 2;
    /// What was asked for does not exist (Rollout, namespace, revision, container, file).
    pub const NOT_FOUND: u8 = 3;
    /// `status --timeout` ran out before the Rollout became Healthy or Degraded.
    pub const TIMEOUT: u8 = 4;
    /// No cluster: no usable kubeconfig, or the API server cannot be reached.
    pub const UNREACHABLE: u8 = 5;
}

/// The text of `--help`'s exit-code section.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  success; `status`: the rollout is Healthy
  1  the command failed; `status`: the rollout is Degraded; `lint`/`plan`: invalid manifest
  2  usage error (unknown flag, missing or malformed argument)
  3  not found (rollout, namespace, revision, container, file)
  4  `status --timeout` expired before the rollout became Healthy or Degraded
  5  cluster unreachable (no usable kubeconfig, API server not reachable)";

/// A failed command: a one-line message and an exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError {
    pub code: u8,
    pub message: String,
    /// The API server's HTTP status when it refused the request (403, 404, 409...): the
    /// dashboard answers with it.
    pub http_status: Option<u16>,
}

impl CliError {
    pub fn new(code: u8, message: impl Into<String>) -> CliError {
        CliError {
            code,
            message: message.into(),
            http_status: None,
        }
    }
    /// The same error, marked with the API server's HTTP status.
    pub fn with_status(mut self, status: u16) -> CliError {
        self.http_status = Some(status);
        self
    }
    pub fn failed(message: impl Into<String>) -> CliError {
        CliError::new(exit::FAILED, message)
    }
    pub fn usage(message: impl Into<String>) -> CliError {
        CliError::new(exit::USAGE, message)
    }
    pub fn not_found(message: impl Into<String>) -> CliError {
        CliError::new(exit::NOT_FOUND, message)
    }
    pub fn timeout(message: impl Into<String>) -> CliError {
        CliError::new(exit::TIMEOUT, message)
    }
    pub fn unreachable(message: impl Into<String>) -> CliError {
        CliError::new(exit::UNREACHABLE, message)
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // One line, whatever the source said.
        let one_line = self.message.replace(['\n', '\r'], " ");
        f.write_str(one_line.trim())
    }
}

impl std::error::Error for CliError {}

pub type Result<T, E = CliError> = std::result::Result<T, E>;
