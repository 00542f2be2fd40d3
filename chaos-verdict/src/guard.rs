//! The abort guard (seed safety rule: stop the experiment if the error rate exceeds 10%).
//!
//! The runbook calls `chaos-verdict guard` once a second while faults are in place. Each
//! call reads what k6 appended to its points file since the last call (the byte offset
//! is kept in a small state file), adds it to per-second counts, and evaluates the window
//! of the last `window` complete seconds (the current second is still being written):
//!
//! - **insufficient**: fewer than `min_samples` requests in the window; never a breach
//!   (a handful of requests cannot say 10%);
//! - **breach**: the window's error rate is above the threshold, *and it still is without
//!   the window's worst second* (the second with the most failures). One bad second
//!   therefore never breaches by itself, however many fast failures it holds: a service
//!   that fails fast can fit hundreds of errors into a second in which it would have
//!   answered ten requests, and that second alone would swamp a request-weighted rate;
//! - **trip**: `breaches` consecutive evaluations in breach (one per wall-clock second;
//!   calling twice within a second does not count twice). A tripped guard stays tripped.
//!
//! With the defaults (10%, 10 s, 20 requests, 3 breaches) a full outage trips 3 to 4 s
//! after it starts, and the breach that starts the tripping streak is recorded, so the
//! runbook can show "breach to all faults removed" against the seed's 5 s goal.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Result, VerdictError};
use crate::points;
use crate::series::percent;
use crate::time::{self, Millis};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GuardSettings {
    pub error_rate_percent: f64,
    pub window_seconds: i64,
    pub min_samples: u64,
    pub breaches: u32,
}

/// What the guard remembers between calls (the state file, JSON).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GuardState {
    /// Per points file: its identity (device, inode) and how far it was read.
    pub files: BTreeMap<String, Tracked>,
    /// Per second (Unix seconds): [requests, failures].
    pub seconds: BTreeMap<i64, [u64; 2]>,
    pub streak: u32,
    pub breach_started_at: Option<Millis>,
    pub last_evaluated_second: Option<i64>,
    pub tripped_at: Option<Millis>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Insufficient,
    Ok,
    Breach,
    Trip,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tracked {
    pub device: u64,
    pub inode: u64,
    pub offset: u64,
}

/// One evaluation: printed as one JSON line.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Evaluation {
    pub guard: Status,
    pub at: String,
    pub window_start: String,
    pub window_seconds: i64,
    pub requests: u64,
    pub errors: u64,
    pub error_rate_percent: Option<f64>,
    pub error_rate_without_worst_second_percent: Option<f64>,
    pub threshold_percent: f64,
    pub streak: u32,
    pub breach_started_at: Option<String>,
    pub reason: String,
}

impl GuardState {
    pub fn load(path: &Path) -> Result<GuardState> {
        match std::fs::read_to_string(path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| {
                VerdictError::bad(format!(
                    "{} is not a guard state file ({e}); remove it to start afresh",
                    path.display()
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(GuardState::default()),
            Err(e) => Err(VerdictError::io("cannot read", path, e)),
        }
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string(self).map_err(|e| VerdictError::bad(e.to_string()))?;
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text).map_err(|e| VerdictError::io("cannot write", &tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| VerdictError::io("cannot replace", path, e))
    }

    /// Reads what was appended to `points` since the last call.
    pub fn ingest(&mut self, points_path: &Path) -> Result<()> {
        let meta = std::fs::metadata(points_path).map_err(|e| {
            VerdictError::bad(format!(
                "cannot read the k6 points file {}: {e}",
                points_path.display()
            ))
        })?;
        let key = points_path.display().to_string();
        let tracked = self.files.entry(key).or_insert_with(|| Tracked {
            device: meta.dev(),
            inode: meta.ino(),
            offset: 0,
        });
        if (tracked.device, tracked.inode) != (meta.dev(), meta.ino())
            || meta.len() < tracked.offset
        {
            return Err(VerdictError::bad(format!(
                "{} was replaced or truncated since the guard last read it; the guard follows one k6 run",
                points_path.display()
            )));
        }
        let seconds = &mut self.seconds;
        let summary = points::read_file(points_path, tracked.offset, |p| {
            let cell = seconds.entry(p.at.div_euclid(1000)).or_insert([0, 0]);
            cell[0] += 1;
            cell[1] += u64::from(p.failed);
        })?;
        tracked.offset = summary.offset;
        Ok(())
    }

    /// Evaluates the window ending with the last complete second before `now`.
    pub fn evaluate(&mut self, now: Millis, s: &GuardSettings) -> Evaluation {
        let last = now.div_euclid(1000) - 1;
        let first = last - s.window_seconds + 1;
        let window: Vec<[u64; 2]> = self.seconds.range(first..=last).map(|(_, c)| *c).collect();
        let requests: u64 = window.iter().map(|c| c[0]).sum();
        let errors: u64 = window.iter().map(|c| c[1]).sum();
        let worst = window
            .iter()
            .copied()
            .max_by_key(|c| (c[1], c[0]))
            .unwrap_or([0, 0]);
        let rate = (requests > 0).then(|| percent(errors, requests));
        let rest = requests - worst[0];
        let robust = (rest > 0).then(|| percent(errors - worst[1], rest));
        let enough = requests >= s.min_samples;
        let over = |r: Option<f64>| r.is_some_and(|r| r > s.error_rate_percent);
        let breach = enough && over(rate) && over(robust);

        let new_second = self.last_evaluated_second != Some(last);
        if self.tripped_at.is_none() && new_second {
            self.last_evaluated_second = Some(last);
            if breach {
                self.streak += 1;
                self.breach_started_at.get_or_insert(now);
            } else {
                self.streak = 0;
                self.breach_started_at = None;
            }
            if self.streak >= s.breaches {
                self.tripped_at = Some(now);
            }
        }
        self.seconds.retain(|sec, _| *sec >= first - 60);
        let status = match (self.tripped_at.is_some(), breach, enough) {
            (true, _, _) => Status::Trip,
            (_, true, _) => Status::Breach,
            (_, _, true) => Status::Ok,
            _ => Status::Insufficient,
        };
        let reason = describe(status, rate, robust, requests, s, self.streak);
        Evaluation {
            guard: status,
            at: time::format(now),
            window_start: time::format(first * 1000),
            window_seconds: s.window_seconds,
            requests,
            errors,
            error_rate_percent: rate,
            error_rate_without_worst_second_percent: robust,
            threshold_percent: s.error_rate_percent,
            streak: self.streak,
            breach_started_at: self.breach_started_at.map(time::format),
            reason,
        }
    }
}

fn describe(
    status: Status,
    rate: Option<f64>,
    robust: Option<f64>,
    requests: u64,
    s: &GuardSettings,
    streak: u32,
) -> String {
    let show = |r: Option<f64>| r.map_or_else(|| "n/a".to_owned(), |r| format!("{r}%"));
    match status {
        Status::Insufficient => format!(
            "{requests} requests in the last {} s, fewer than {}: not judged",
            s.window_seconds, s.min_samples
        ),
        Status::Ok => format!(
            "error rate {} over {} s ({requests} requests), {} without the worst second: within {}%",
            show(rate),
            s.window_seconds,
            show(robust),
            s.error_rate_percent
        ),
        Status::Breach | Status::Trip => format!(
            "error rate {} over {} s ({requests} requests; {} without the worst second) above {}%, {streak} consecutive breach(es) of {}",
            show(rate),
            s.window_seconds,
            show(robust),
            s.error_rate_percent,
            s.breaches
        ),
    }
}

#[cfg(test)]
#[path = "guard_tests.rs"]
mod tests;
