//! `guard`: one evaluation of the abort guard (see `crate::guard`). Prints one JSON
//! line; exit 6 once tripped (and on every later call), 0 otherwise.

use crate::cli::GuardArgs;
use crate::error::{Exit, Result};
use crate::guard::{GuardSettings, GuardState, Status};
use crate::time;

pub fn guard(args: &GuardArgs) -> Result<Exit> {
    let settings = GuardSettings {
        error_rate_percent: args.error_rate,
        window_seconds: args.window,
        min_samples: args.min_samples,
        breaches: args.breaches,
    };
    let mut state = GuardState::load(&args.state)?;
    for points in &args.points {
        state.ingest(points)?;
    }
    let evaluation = state.evaluate(time::now(), &settings);
    state.save(&args.state)?;
    let line = serde_json::to_string(&evaluation)
        .map_err(|e| crate::error::VerdictError::bad(e.to_string()))?;
    println!("{line}");
    Ok(if evaluation.guard == Status::Trip {
        Exit::Aborted
    } else {
        Exit::Pass
    })
}
