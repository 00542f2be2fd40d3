//! A stand-in for API Priority and Fairness rejecting requests: when switched on, an
//! exact share of the requests of non-exempt users (everyone outside system:masters) is
//! answered 429 TooManyRequests with `Retry-After`, as APF does when a priority level's
//! queues are full, so that clients' back-off is exercised. Which requests is
//! deterministic (evenly spread), not random, so tests are repeatable. Tests can also
//! reject the next N requests of one verb on one resource ([`Throttle::reject_next`]),
//! to hit exactly the request whose handling they check.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use super::auth::UserInfo;
use super::errors::ApiError;

/// "The next `remaining` requests to `verb` `resource` (e.g. `create pods/eviction`)".
#[derive(Debug, Clone)]
struct Targeted {
    verb: String,
    resource: String,
    remaining: u32,
}

#[derive(Debug, Default)]
pub struct Throttle {
    percent: AtomicU32,
    retry_after: AtomicU32,
    seen: AtomicU64,
    rejected: AtomicU64,
    targeted: Mutex<Vec<Targeted>>,
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

    /// Answers the next `count` requests to `verb` on `resource` (`pods`,
    /// `pods/eviction`) 429, whoever sends them (system:masters excepted).
    pub fn reject_next(&self, count: u32, verb: &str, resource: &str) {
        self.targeted
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(Targeted {
                verb: verb.into(),
                resource: resource.into(),
                remaining: count,
            });
    }

    fn targeted(&self, verb: &str, resource: &str) -> bool {
        let mut rules = self
            .targeted
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let hit = rules
            .iter_mut()
            .find(|r| r.remaining > 0 && r.verb == verb && r.resource == resource);
        match hit {
            Some(rule) => {
                rule.remaining -= 1;
                true
            }
            None => false,
        }
    }

    fn rejection(&self) -> ApiError {
        self.rejected.fetch_add(1, Ordering::SeqCst);
        ApiError::too_many_requests(
            "Too many requests, please try again later.",
            self.retry_after.load(Ordering::SeqCst),
        )
    }

    /// The 429 for a request of `user` to `verb` `resource` (`pods/eviction` with a
    /// subresource), if it is one of those rejected.
    pub fn check(&self, user: &UserInfo, verb: &str, resource: &str) -> Option<ApiError> {
        if user.is_master() {
            return None;
        }
        if self.targeted(verb, resource) {
            return Some(self.rejection());
        }
        let percent = u64::from(self.percent.load(Ordering::SeqCst));
        if percent == 0 {
            return None;
        }
        let n = self.seen.fetch_add(1, Ordering::SeqCst);
        // Request n is rejected when the running count of rejections must step up.
        if (n + 1) * percent / 100 == n * percent / 100 {
            return None;
        }
        Some(self.rejection())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_share_is_exact_and_masters_are_exempt() {
        let t = Throttle::new(30, 1);
        let user = UserInfo::new("u", &[]);
        let rejected = (0..100)
            .filter(|_| t.check(&user, "list", "pods").is_some())
            .count();
        assert_eq!(rejected, 30);
        let admin = UserInfo::new("admin", &["system:masters"]);
        assert!((0..10).all(|_| t.check(&admin, "list", "pods").is_none()));
        let e = Throttle::new(100, 2)
            .check(&user, "list", "pods")
            .unwrap_or_else(|| panic!("not throttled"));
        assert_eq!((e.code, e.retry_after), (429, Some(2)));
        assert!(e.status()["details"].get("causes").is_none());
    }

    #[test]
    fn targeted_rejections_hit_only_their_verb_and_resource() {
        let t = Throttle::new(0, 1);
        let user = UserInfo::new("u", &[]);
        t.reject_next(2, "create", "pods/eviction");
        assert!(t.check(&user, "delete", "pods").is_none());
        assert!(t.check(&user, "create", "pods/eviction").is_some());
        assert!(t.check(&user, "create", "pods/eviction").is_some());
        assert!(t.check(&user, "create", "pods/eviction").is_none());
        assert_eq!(t.rejected(), 2);
    }
}
