//! A stand-in for API Priority and Fairness rejecting requests: when switched on, an
//! exact share of the requests of non-exempt users (everyone outside system:masters) is
//! answered 429 TooManyRequests with `Retry-After`, as APF does when a priority level's
//! queues are full, so that clients' back-off is exercised. Which requests is
//! deterministic (evenly spread), not random, so tests are repeatable.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use super::auth::UserInfo;
use super::errors::ApiError;

#[derive(Debug, Default)]
pub struct Throttle {
    percent: AtomicU32,
    retry_after: AtomicU32,
    seen: AtomicU64,
    rejected: AtomicU64,
}

impl Throttle {
    pub fn new(percent: u32, retry_after_seconds: u32) -> Throttle {
        let t = Throttle::default();
        t.set(percent, retry_after_seconds);
        t
    }

    /// Answers `percent` (0-100) of the requests 429 from now on.
    pub fn set(&self, percent: u32, retry_after_seconds: u32) {
        self.percent.store(percent.min(100), Ordering::SeqCst);
        self.retry_after
            .store(retry_after_seconds.max(1), Ordering::SeqCst);
    }

    /// How many requests were rejected so far.
    pub fn rejected(&self) -> u64 {
        self.rejected.load(Ordering::SeqCst)
    }

    /// The 429 for this request, if it is one of the share.
    pub fn check(&self, user: &UserInfo) -> Option<ApiError> {
        let percent = u64::from(self.percent.load(Ordering::SeqCst));
        if percent == 0 || user.is_master() {
            return None;
        }
        let n = self.seen.fetch_add(1, Ordering::SeqCst);
        // Request n is rejected when the running count of rejections must step up.
        if (n + 1) * percent / 100 == n * percent / 100 {
            return None;
        }
        self.rejected.fetch_add(1, Ordering::SeqCst);
        Some(ApiError::too_many_requests(
            "Too many requests, please try again later.",
            self.retry_after.load(Ordering::SeqCst),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_share_is_exact_and_masters_are_exempt() {
        let t = Throttle::new(30, 1);
        let user = UserInfo::new("u", &[]);
        let rejected = (0..100).filter(|_| t.check(&user).is_some()).count();
        assert_eq!(rejected, 30);
        let admin = UserInfo::new("admin", &["system:masters"]);
        assert!((0..10).all(|_| t.check(&admin).is_none()));
        let e = Throttle::new(100, 2)
            .check(&user)
            .unwrap_or_else(|| panic!("not throttled"));
        assert_eq!((e.code, e.retry_after), (429, Some(2)));
        assert!(e.status()["details"].get("causes").is_none());
    }
}
