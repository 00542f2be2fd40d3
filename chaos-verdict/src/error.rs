//! The error type of chaos-verdict and its exit codes.
//!
//! Exit codes follow the runbooks' (docs/runbooks.md): 0 PASS, 1 FAIL, 5 PARTIAL,
//! 6 ABORTED (and a tripped guard), 2 bad input, 3 refused by a safety rule. An error
//! that is neither bad input nor a refusal (a file that cannot be written) exits 1: the
//! runbook then records the run as FAIL, never as a pass.

use std::path::Path;
use std::process::ExitCode;

#[derive(Debug, thiserror::Error)]
pub enum VerdictError {
    /// Input that cannot be used: a flag, a file's contents. Nothing was written.
    #[error("{0}")]
    BadInput(String),
    /// A safety rule refused the experiment (the `safety` sub-command).
    #[error("refused by safety rule '{rule}': {message}")]
    Refused { rule: &'static str, message: String },
    /// Reading or writing a file failed.
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T> = std::result::Result<T, VerdictError>;

impl VerdictError {
    pub fn bad(message: impl Into<String>) -> VerdictError {
        VerdictError::BadInput(message.into())
    }

    /// An I/O error on `path`; `action` says what was being done ("cannot read").
    pub fn io(action: &'static str, path: &Path, source: std::io::Error) -> VerdictError {
        VerdictError::Io {
            action,
            path: path.display().to_string(),
            source,
        }
    }

    pub fn exit(&self) -> Exit {
        match self {
            VerdictError::BadInput(_) => Exit::BadInput,
            VerdictError::Refused { .. } => Exit::Refused,
            VerdictError::Io { .. } => Exit::Fail,
        }
    }
}

/// The process exit codes (the same as the runbooks').
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Pass = 0,
    Fail = 1,
    BadInput = 2,
    Refused = 3,
    Partial = 5,
    Aborted = 6,
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(exit as u8)
    }
}
