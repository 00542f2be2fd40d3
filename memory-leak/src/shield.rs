//! The supervisor's own `oom_score_adj`, lowered to -1000 for a run in a cgroup with
//! `memory.oom.group = 1` (when it may: CAP_SYS_RESOURCE), so that the group OOM kill,
//! which spares only such processes, leaves it alive to report; restored on revert.

use std::fs;

use chaos_common::{ChaosError, Result};

const OWN: &str = "/proc/self/oom_score_adj";

fn read_own() -> Result<i32> {
    let text = fs::read_to_string(OWN).map_err(|e| ChaosError::io("read", OWN, e))?;
    text.trim()
        .parse()
        .map_err(|e| ChaosError::fault(format!("{OWN} holds {:?}: {e}", text.trim())))
}

fn write_own(value: i32) -> Result<()> {
    fs::write(OWN, format!("{value}\n")).map_err(|e| ChaosError::io("write", OWN, e))
}

/// Sets this process's `oom_score_adj` to `value`; returns the value it had.
pub fn lower_own_oom_score_adj(value: i32) -> Result<i32> {
    let before = read_own()?;
    write_own(value).map_err(|e| {
        ChaosError::fault(format!(
            "cannot shield this process from the group OOM kill ({e}); lowering oom_score_adj needs \
             CAP_SYS_RESOURCE"
        ))
    })?;
    Ok(before)
}

/// Puts back the value [`lower_own_oom_score_adj`] returned (raising needs no privilege).
pub fn restore_own_oom_score_adj(value: i32) -> Result<()> {
    write_own(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raising_and_restoring_needs_no_privilege() -> Result<()> {
        // Raising is always allowed, so the test runs without root; it is restored.
        let before = read_own()?;
        let raised = (before + 1).min(1000);
        assert_eq!(lower_own_oom_score_adj(raised)?, before);
        assert_eq!(read_own()?, raised);
        restore_own_oom_score_adj(before)?;
        assert_eq!(read_own()?, before);
        Ok(())
    }
}
