//! `log`: the run's row into the result log, atomically under a lock; prints the row.

use crate::atomic;
use crate::cli::{LogArgs, ResultWord};
use crate::error::{Exit, Result, VerdictError};
use crate::resultlog::{self, Row};
use crate::time;

pub fn log(args: &LogArgs) -> Result<Exit> {
    let row = match &args.from {
        Some(path) => row_from_result(path)?,
        None => given_row(args)?,
    };
    atomic::update(&args.result_log, |text| {
        Ok((resultlog::with_row(text, &row), ()))
    })?;
    println!("{}", row.to_markdown());
    Ok(Exit::Pass)
}

fn row_from_result(path: &std::path::Path) -> Result<Row> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| VerdictError::bad(format!("cannot read {}: {e}", path.display())))?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| VerdictError::bad(format!("{} is not JSON: {e}", path.display())))?;
    let row = value.get("resultLogRow").cloned().ok_or_else(|| {
        VerdictError::bad(format!(
            "{} has no resultLogRow: is it a verdict's result.json?",
            path.display()
        ))
    })?;
    serde_json::from_value(row)
        .map_err(|e| VerdictError::bad(format!("{}: resultLogRow: {e}", path.display())))
}

fn given_row(args: &LogArgs) -> Result<Row> {
    let missing = || {
        VerdictError::bad(
            "give --from RESULT_JSON, or --experiment, --environment, --result and --notes",
        )
    };
    let env = args.environment.ok_or_else(missing)?.as_str();
    let result = match args.result.ok_or_else(missing)? {
        ResultWord::Pass => "PASS",
        ResultWord::Fail => "FAIL",
        ResultWord::Partial => "PARTIAL",
        ResultWord::Aborted => "ABORTED",
    };
    let mut chars = env.chars();
    let environment = chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default();
    Ok(Row {
        date: time::date(time::now()),
        experiment: args.experiment.clone().ok_or_else(missing)?,
        environment,
        result: result.to_owned(),
        notes: args.notes.clone().ok_or_else(missing)?,
    })
}
