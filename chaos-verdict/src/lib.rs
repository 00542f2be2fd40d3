//! chaos-verdict: the data work of the EXP runbooks (`scripts/runbooks/`).
//!
//! A runbook runs k6 for the whole experiment (`k6 run --out json=points.ndjson`), writes
//! a timeline of its phases and faults, and lists the seed's pass criteria as named
//! checks. This program turns those three files into an honest verdict:
//!
//! - windowed statistics from k6's points, streamed (request count, error rate, exact
//!   p50/p95/p99, status counts) for any phase or fault window;
//! - named checks, each with its window, threshold, observed value, sample count and
//!   status `pass`, `fail` or `manual`; "no data" and "not recovered" fail;
//! - every phase compared with the same run's baseline, and the time to recover into the
//!   baseline band;
//! - the result PASS / FAIL / PARTIAL / ABORTED (exit 0 / 1 / 5 / 6), `result.json`,
//!   `seconds.csv`, `summary.md`, `timeline.svg`;
//! - the abort guard, called once a second while faults are in place (exit 6 when it
//!   trips);
//! - the result log row, written atomically under a lock, and the comparison with the
//!   experiment's previous run.
//!
//! It needs no privileges and touches nothing but the files it is given. The file
//! formats, the band, the guard rule and the result are documented in docs/runbooks.md.
//!
//! # Layout
//! - `cli.rs`: the sub-commands and their flags; `cmd/`: what each sub-command does.
//! - `points.rs`: k6's NDJSON, streamed. `series.rs`: requests by time, windows, stats.
//! - `timeline.rs` (+ `tool_report.rs`): phases, fault windows, marks, the abort.
//! - `checks.rs`: the checks file. `evaluate.rs`: a check against a run.
//! - `recovery.rs`: the baseline band and the time to recover.
//! - `verdict.rs` (+ `faults.rs`): the result. `summary.rs`, `per_second.rs`, `chart.rs`: its outputs.
//! - `guard.rs`: the abort guard. `resultlog.rs` + `atomic.rs`: the result log.
//! - `time.rs`, `error.rs`: timestamps; errors and exit codes.

pub mod atomic;
pub mod chart;
pub mod checks;
pub mod cli;
pub mod cmd;
pub mod error;
pub mod evaluate;
pub mod faults;
pub mod guard;
pub mod per_second;
pub mod points;
pub mod recovery;
pub mod resultlog;
pub mod series;
pub mod summary;
pub mod time;
pub mod timeline;
pub mod tool_report;
pub mod verdict;
