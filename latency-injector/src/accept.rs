//! The accept loop: one task per accepted connection; failed accepts (the open-files
//! limit, mostly) counted apart from upstream errors and logged at most once a second,
//! naming the limit; when stopping, what the kernel had already accepted is taken in.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::warn;

use crate::connection::{self, Context};
use crate::dial;
use crate::stats::Stats;

/// Pause after a failed accept (EMFILE keeps the listener readable: no busy loop).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(20);
/// At most one log line per this interval about failed accepts.
const ACCEPT_LOG_EVERY: Duration = Duration::from_secs(1);

fn open_files_limit() -> String {
    use nix::sys::resource::{Resource, getrlimit};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) => format!("soft {soft}, hard {hard}"),
        Err(_) => "unknown".to_owned(),
    }
}

/// Failed accepts: counted apart from upstream errors, logged at most once a second.
#[derive(Debug, Default)]
struct AcceptErrors {
    last_logged: Option<Instant>,
    suppressed: u64,
}

impl AcceptErrors {
    fn failed(&mut self, e: &io::Error, stats: &Stats) {
        let too_many = matches!(
            e.raw_os_error(),
            Some(nix::libc::EMFILE | nix::libc::ENFILE)
        );
        stats.accept_error(if too_many {
            "open-files limit"
        } else {
            dial::cause(e)
        });
        if self
            .last_logged
            .is_some_and(|at| at.elapsed() < ACCEPT_LOG_EVERY)
        {
            self.suppressed += 1;
            return;
        }
        let hint = if too_many {
            format!(
                ": the open-files limit is reached ({}; two descriptors per proxied connection): \
                 raise it (ulimit -n) or lower the load",
                open_files_limit()
            )
        } else {
            String::new()
        };
        warn!(
            "accept failed: {e}{hint} ({} more since the last message)",
            self.suppressed
        );
        self.last_logged = Some(Instant::now());
        self.suppressed = 0;
    }
}

pub async fn accept_loop(
    listener: TcpListener,
    ctx: Arc<Context>,
    mut stop: watch::Receiver<bool>,
) {
    let mut errors = AcceptErrors::default();
    loop {
        let stopping = *stop.borrow();
        let accepted = tokio::select! {
            biased;
            accepted = listener.accept() => accepted,
            changed = stop.changed(), if !stopping => {
                if changed.is_err() {
                    return;
                }
                continue;
            }
            // Stopping: whatever the kernel has already accepted is taken in first.
            () = std::future::ready(()), if stopping => return,
        };
        match accepted {
            Ok((client, peer)) => {
                tokio::spawn(connection::serve(client, peer, Arc::clone(&ctx)));
            }
            Err(e) => {
                errors.failed(&e, &ctx.stats);
                if stopping {
                    return;
                }
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
}
