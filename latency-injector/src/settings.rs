//! Every flag, checked (by `cli.rs`): what `config.rs` turns into the fault and
//! `engine_config.rs` reads to know what each engine can do.

use std::time::Duration;

use crate::engine::EngineFlag;
use crate::matching::HttpRules;
use crate::model::LatencyModel;
use crate::target::Chosen;

/// Every flag, checked.
#[derive(Debug)]
pub struct Settings {
    pub model: LatencyModel,
    pub latency_ms: u64,
    pub jitter_ms: u64,
    /// Some: HTTP mode.
    pub rules: Option<HttpRules>,
    pub chosen: Chosen,
    pub engine: EngineFlag,
    pub duration: Duration,
    pub drain: Duration,
    pub header_timeout: Duration,
    pub buffer_limit: u64,
    pub reset_existing: bool,
    pub allow_source_rewrite: bool,
}
