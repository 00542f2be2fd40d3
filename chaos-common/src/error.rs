//! The error type of chaos-common and the exit codes shared by every tool.
//!
//! Each variant is something an operator can act on; its message names what was being
//! done, to which target, and what to do about it.

use std::path::PathBuf;
use std::process::ExitCode;

/// Exit codes, identical in every tool (see `docs/report.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Exit {
    /// The fault ran and was reverted, and every pass criterion held.
    Ok = 0,
    /// A pass criterion failed, or the fault could not be applied.
    Failed = 1,
    /// Bad input: nothing was touched.
    BadInput = 2,
    /// Refused by a safety rule: nothing was touched.
    Refused = 3,
    /// Revert failed: the fault may still be in place; the report says how to remove it.
    RevertFailed = 4,
}

impl Exit {
    pub fn code(self) -> u8 {
        self as u8
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(exit.code())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ChaosError {
    /// Input that fails validation; the message names the flag.
    #[error("{0}")]
    BadInput(String),

    /// A safety rule refused the run before anything was touched.
    #[error("refused by safety rule '{rule}': {message}")]
    Refused { rule: &'static str, message: String },

    /// Something the tool needs is missing: root, a capability, a cgroup controller.
    #[error("precondition not met: {0}")]
    Precondition(String),

    /// A file (usually under /proc or /sys) could not be read or written.
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// An external program failed; argv and its stderr are kept verbatim.
    #[error("command {argv:?} failed ({status}): {stderr}")]
    Command {
        argv: Vec<String>,
        status: String,
        stderr: String,
    },

    /// The fault itself failed while applying, observing or reverting.
    #[error("{0}")]
    Fault(String),
}

impl ChaosError {
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ChaosError::Io {
            action,
            path: path.into(),
            source,
        }
    }

    pub fn bad_input(message: impl Into<String>) -> Self {
        ChaosError::BadInput(message.into())
    }

    pub fn fault(message: impl Into<String>) -> Self {
        ChaosError::Fault(message.into())
    }

    /// The exit code this error leads to when it ends a run.
    pub fn exit(&self) -> Exit {
        match self {
            ChaosError::BadInput(_) => Exit::BadInput,
            ChaosError::Refused { .. } => Exit::Refused,
            _ => Exit::Failed,
        }
    }

    /// A short machine-readable kind for the report's `errors[].kind`.
    pub fn kind(&self) -> &'static str {
        match self {
            ChaosError::BadInput(_) => "bad-input",
            ChaosError::Refused { .. } => "refused",
            ChaosError::Precondition(_) => "precondition",
            ChaosError::Io { .. } => "io",
            ChaosError::Command { .. } => "command",
            ChaosError::Fault(_) => "fault",
        }
    }
}

pub type Result<T, E = ChaosError> = std::result::Result<T, E>;
