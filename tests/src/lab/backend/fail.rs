//! The fail switch, for forcing an error spike mid-run without a rollout (the abort
//! guard's lab test, `tests/tests/runbook_guard.rs`): `POST /lab/fail?ms=N` makes every
//! API request of this process answer 500 for the next N ms (at most 600000), after which
//! it behaves as before by itself; `ms=0` ends it at once. `/health` stays 200 (a bug the
//! probes do not see) and `/metrics` keeps serving. One process only: a test flips every
//! pod of a Deployment at its pod IP. Test-lab code: no such endpoint exists on the
//! platform, and the api-gateway does not route `/lab/` (docs/lab.md).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use hyper::StatusCode;
use serde_json::json;

use super::http::{self, Reply, Req};
use super::{Service, error};

/// The longest failure one call can ask for.
pub const MAX_MS: u64 = 600_000;

/// Until when API requests fail, in ms since the process started serving (0: not failing).
#[derive(Debug, Default)]
pub struct FailSwitch(AtomicU64);

impl FailSwitch {
    /// Fail for `ms` from now (0 ends it).
    pub fn set(&self, started: Instant, ms: u64) {
        let until = if ms == 0 {
            0
        } else {
            elapsed_ms(started).saturating_add(ms)
        };
        self.0.store(until, Ordering::SeqCst);
    }

    pub fn failing(&self, started: Instant) -> bool {
        let until = self.0.load(Ordering::SeqCst);
        until != 0 && elapsed_ms(started) < until
    }
}

fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// `ms=N` (0..=MAX_MS) from a query string.
pub fn parse_ms(query: &str) -> Result<u64, String> {
    let value = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("ms="))
        .ok_or_else(|| {
            "POST /lab/fail?ms=N: ms (milliseconds, 0 ends the failure) is required".to_owned()
        })?;
    match value.parse::<u64>() {
        Ok(ms) if ms <= MAX_MS => Ok(ms),
        _ => Err(format!(
            "POST /lab/fail?ms=N: ms must be whole milliseconds from 0 to {MAX_MS}, not {value:?}"
        )),
    }
}

/// `POST /lab/fail?ms=N`.
pub fn handle(svc: &Service, req: &Req) -> Reply {
    match parse_ms(&req.query) {
        Err(why) => error(StatusCode::BAD_REQUEST, &why),
        Ok(ms) => {
            svc.fail.set(svc.started, ms);
            if ms == 0 {
                svc.log(
                    "info",
                    "fail switch off (POST /lab/fail?ms=0): serving again",
                );
            } else {
                svc.log(
                    "warn",
                    &format!(
                        "fail switch on (POST /lab/fail): every API request answers 500 for {ms} ms"
                    ),
                );
            }
            http::json(
                StatusCode::OK,
                &json!({"failingMs": ms, "pod": svc.cfg.pod}),
            )
        }
    }
}

/// The answer to an API request while the switch is on.
pub fn reply() -> Reply {
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "failing on request (POST /lab/fail): the lab's forced error spike",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn ms_is_required_and_bounded() {
        assert_eq!(parse_ms("ms=1500"), Ok(1500));
        assert_eq!(parse_ms("x=1&ms=0"), Ok(0));
        for bad in ["", "ms=", "ms=-1", "ms=1.5", "ms=600001", "x=2"] {
            let err = parse_ms(bad).unwrap_err();
            assert!(err.contains("ms"), "{bad}: {err}");
        }
    }

    #[test]
    fn the_switch_ends_by_itself_and_on_zero() {
        let started = Instant::now();
        let s = FailSwitch::default();
        assert!(!s.failing(started));
        s.set(started, 60_000);
        assert!(s.failing(started));
        s.set(started, 0);
        assert!(!s.failing(started));
        s.set(started, 1);
        std::thread::sleep(Duration::from_millis(5));
        assert!(!s.failing(started), "a failure of 1 ms is over after 5 ms");
    }
}
