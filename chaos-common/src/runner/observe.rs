//! The observe phase: sample until the duration ends, a signal arrives or the fault says
//! it is done or broken; an end that comes far too late is an overrun.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures_util::FutureExt;
use tracing::error;

use crate::fault::{Fault, Progress};
use crate::report::{ReportError, RunResult};

use super::{OVERRUN_GRACE, RunRecord, panic_error};

pub(super) async fn observe_until_stop<F: Fault>(
    fault: &mut F,
    handle: &mut F::Handle,
    duration: Duration,
    shutdown: &mut std::pin::Pin<&mut impl Future<Output = String>>,
    run: &mut RunRecord,
) -> (String, RunResult) {
    let deadline = tokio::time::Instant::now() + duration;
    let mut ticker = tokio::time::interval(fault.observe_interval());
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let observed = async {
            ticker.tick().await;
            AssertUnwindSafe(fault.observe(handle)).catch_unwind().await
        };
        tokio::select! {
            biased;
            reason = shutdown.as_mut() => return (reason, RunResult::Aborted),
            () = tokio::time::sleep_until(deadline) => return end_of_duration(deadline, duration, run),
            progress = observed => match progress {
                Ok(Ok(Progress::Running)) => {}
                Ok(Ok(Progress::Finished(reason))) => return (reason, RunResult::Ok),
                Ok(Ok(Progress::Failed(reason))) => {
                    run.errors.push(ReportError { kind: "fault".into(), message: reason.clone() });
                    return (format!("failed: {reason}"), RunResult::Failed);
                }
                Ok(Err(e)) => {
                    run.errors.push(ReportError::from(&e));
                    return (format!("failed: {e}"), RunResult::Failed);
                }
                Err(panic) => {
                    run.errors.push(panic_error("observe", &panic));
                    return ("failed: observe panicked".into(), RunResult::Failed);
                }
            },
        }
    }
}

/// The normal end, unless the end came so late that the fault overstayed: the process
/// was suspended (SIGSTOP) or starved past the deadline plus [`OVERRUN_GRACE`].
fn end_of_duration(
    deadline: tokio::time::Instant,
    duration: Duration,
    run: &mut RunRecord,
) -> (String, RunResult) {
    let late = tokio::time::Instant::now().saturating_duration_since(deadline);
    if late <= OVERRUN_GRACE {
        return ("duration".into(), RunResult::Ok);
    }
    let message = format!(
        "the fault stayed {:.1} s past its {:.1} s duration (this process was suspended or \
         starved); a network tool's watchdog may already have removed its rules",
        late.as_secs_f64(),
        duration.as_secs_f64()
    );
    error!("{message}");
    run.errors.push(ReportError {
        kind: "overran".into(),
        message: message.clone(),
    });
    (format!("overran: {message}"), RunResult::Failed)
}
