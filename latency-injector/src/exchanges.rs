//! What the two legs of one HTTP connection share: the kinds of the requests sent (the
//! response side frames by them), how many requests were sent and answered (the drain
//! closes a connection only when they are equal), and whether parsing stopped.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use crate::framing::Responses;
use crate::heads::{Passthrough, RequestKind};
use crate::stats::Stats;

/// What the two legs of one connection share: the requests sent, in order, and how many
/// have had their complete final response.
#[derive(Debug, Default)]
pub struct Exchanges {
    kinds: Mutex<VecDeque<RequestKind>>,
    sent: AtomicU64,
    pub answered: AtomicU64,
    /// Parsing stopped (counted once per connection, by the leg that stopped first).
    passed: AtomicBool,
}

impl Exchanges {
    pub fn sent(&self, kind: RequestKind) {
        self.kinds
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push_back(kind);
        self.sent.fetch_add(1, Ordering::Relaxed);
    }

    /// Moves the kinds of the requests sent since the last call into `to`.
    pub fn take_kinds(&self, to: &mut Responses) {
        let mut kinds = self.kinds.lock().unwrap_or_else(PoisonError::into_inner);
        for kind in kinds.drain(..) {
            to.expect(kind);
        }
    }

    /// Counts the connection as passing through for `reason`, once.
    pub fn pass(&self, reason: Passthrough, stats: &Stats) {
        if !self.passed.swap(true, Ordering::Relaxed) {
            stats.passthrough(reason.as_str());
        }
    }

    /// At least one exchange is complete and none is in progress.
    pub fn settled(&self) -> bool {
        let answered = self.answered.load(Ordering::Relaxed);
        answered > 0 && answered == self.sent.load(Ordering::Relaxed)
    }
}
