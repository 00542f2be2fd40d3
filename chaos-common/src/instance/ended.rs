//! Runs that ended: how `--stop RUN_ID` tells "already ended" (nothing to stop, exit 0)
//! from "never ran here" (a mistyped run id: bad input, exit 2).
//!
//! When a registered run ends (its [`super::Registration`] is dropped), or a stale
//! instance file of a killed run is swept, the registry keeps a small record
//! `<tool>-<run id>.ended` in the same trusted directory, created like instance files
//! (exclusive, mode 0600, no symlinks followed) and read under the same trust rules.
//!
//! Retention is bounded so the directory never grows without limit: records older than
//! [`RETENTION`] are removed, and at most [`MAX_RECORDS`] are kept per directory (the
//! oldest go first). Both are checked each time a record is written. So "never ran" means
//! "never ran here in the last 7 days (and not among the last 512 runs)", and `--stop`
//! says exactly that.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::{Registry, StateDir, Unusable};

/// How long an ended run is remembered.
pub const RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);
/// How many ended runs a directory remembers at most (all tools together).
pub const MAX_RECORDS: usize = 512;

const SUFFIX: &str = ".ended";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Ended {
    pub tool: String,
    pub run_id: String,
    /// Seconds since the Unix epoch.
    pub ended_at: u64,
}

fn record_name(tool: &str, run_id: &str) -> String {
    format!("{tool}-{run_id}{SUFFIX}")
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn read_record(dir: &StateDir, name: &str) -> Option<Ended> {
    let ended: Ended = serde_json::from_slice(&dir.read(name)?).ok()?;
    (record_name(&ended.tool, &ended.run_id) == name).then_some(ended)
}

/// Records that `run_id` of `tool` ended now, then applies the retention. Best effort:
/// a record that cannot be written only makes a later `--stop` say "never ran".
pub(super) fn remember(dir: &StateDir, tool: &str, run_id: &str) {
    let name = record_name(tool, run_id);
    let record = Ended {
        tool: tool.into(),
        run_id: run_id.into(),
        ended_at: now_secs(),
    };
    if let Ok(body) = serde_json::to_vec(&record) {
        dir.remove(&name);
        let _ = dir.create(&name, &body);
    }
    prune(dir, now_secs());
}

/// Removes records past [`RETENTION`], then the oldest beyond [`MAX_RECORDS`].
pub(super) fn prune(dir: &StateDir, now: u64) {
    let mut records: Vec<(u64, String)> = dir
        .names()
        .into_iter()
        .filter(|n| n.ends_with(SUFFIX))
        .filter_map(|n| read_record(dir, &n).map(|r| (r.ended_at, n)))
        .collect();
    let oldest_kept = now.saturating_sub(RETENTION.as_secs());
    records.retain(|(at, name)| {
        let keep = *at >= oldest_kept;
        if !keep {
            dir.remove(name);
        }
        keep
    });
    if records.len() > MAX_RECORDS {
        records.sort();
        let excess = records.len() - MAX_RECORDS;
        for (_, name) in records.drain(..excess) {
            dir.remove(&name);
        }
    }
}

impl Registry {
    /// The record of `run_id` of `tool` having ended, if a trusted directory has one.
    pub fn ended(&self, tool: &str, run_id: &str) -> Option<Ended> {
        let name = record_name(tool, run_id);
        self.dirs
            .iter()
            .find_map(|path| match StateDir::open(path, false) {
                Ok(dir) => read_record(&dir, &name),
                Err(Unusable::Missing | Unusable::Refused(_)) => None,
            })
    }
}

/// See [`Registry::ended`].
pub fn ended(tool: &str, run_id: &str) -> Option<Ended> {
    Registry::from_env().ended(tool, run_id)
}
