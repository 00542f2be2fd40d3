//! `stats`, `get`, `manifest`, `validate`: small jobs the runbooks would otherwise do
//! with jq (which an operator's machine may not have).

use serde_json::{Map, Value, json};

use crate::cli::{GetArgs, ManifestArgs, StatsArgs, ValidateArgs};
use crate::error::{Exit, Result, VerdictError};
use crate::series::{Series, Window};
use crate::time;

pub fn stats(args: &StatsArgs) -> Result<Exit> {
    let (series, summary) = Series::from_files(&args.points)?;
    let from = match &args.from {
        Some(t) => time::parse(t)?,
        None => series.first_at().unwrap_or(0),
    };
    let to = match &args.to {
        Some(t) => time::parse(t)?,
        None => series.last_at().map_or(0, |t| t + 1),
    };
    if to < from {
        return Err(VerdictError::bad("--to is before --from"));
    }
    let stats = series.stats(Window { from, to }, args.request.as_deref());
    let out = json!({
        "from": time::format(from), "to": time::format(to), "request": args.request,
        "stats": stats, "linesRead": summary.lines,
    });
    println!("{out}");
    Ok(Exit::Pass)
}

pub fn get(args: &GetArgs) -> Result<Exit> {
    let text = std::fs::read_to_string(&args.file)
        .map_err(|e| VerdictError::bad(format!("cannot read {}: {e}", args.file.display())))?;
    let value: Value = serde_json::from_str(&text)
        .map_err(|e| VerdictError::bad(format!("{} is not JSON: {e}", args.file.display())))?;
    if !(args.pointer.is_empty() || args.pointer.starts_with('/')) {
        return Err(VerdictError::bad(format!(
            "'{}' is not a JSON pointer (it starts with '/')",
            args.pointer
        )));
    }
    match value.pointer(&args.pointer) {
        Some(Value::String(s)) => println!("{s}"),
        Some(v) => println!("{v}"),
        None => {
            return Err(VerdictError::bad(format!(
                "{} has nothing at {}",
                args.file.display(),
                args.pointer
            )));
        }
    }
    Ok(Exit::Pass)
}

pub fn manifest(args: &ManifestArgs) -> Result<Exit> {
    let mut object = Map::new();
    for field in &args.fields {
        let (key, value) = field
            .split_once('=')
            .ok_or_else(|| VerdictError::bad(format!("'{field}' is not KEY=VALUE")))?;
        if let Some(list) = key.strip_suffix("[]") {
            let entry = object
                .entry(check_key(list)?)
                .or_insert_with(|| Value::Array(Vec::new()));
            match entry {
                Value::Array(items) => items.push(Value::String(value.to_owned())),
                _ => {
                    return Err(VerdictError::bad(format!(
                        "'{list}' is both a list and a value"
                    )));
                }
            }
        } else if let Some(k) = key.strip_suffix(":json") {
            let parsed = serde_json::from_str(value)
                .map_err(|e| VerdictError::bad(format!("{k}: not JSON ({e})")))?;
            object.insert(check_key(k)?, parsed);
        } else {
            object.insert(check_key(key)?, Value::String(value.to_owned()));
        }
    }
    let text = serde_json::to_string_pretty(&Value::Object(object))
        .map_err(|e| VerdictError::bad(e.to_string()))?;
    super::write(&args.out, &(text + "\n"))?;
    Ok(Exit::Pass)
}

fn check_key(key: &str) -> Result<String> {
    if !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
    {
        Ok(key.to_owned())
    } else {
        Err(VerdictError::bad(format!(
            "'{key}' is not a manifest key (letters, digits, '_', '-', '.')"
        )))
    }
}

pub fn validate(args: &ValidateArgs) -> Result<Exit> {
    if args.checks.is_none() && args.timeline.is_none() {
        return Err(VerdictError::bad(
            "give --checks FILE and/or --timeline FILE",
        ));
    }
    if let Some(path) = &args.checks {
        let specs = crate::checks::read(path)?;
        println!("{}: {} checks", path.display(), specs.len());
    }
    if let Some(path) = &args.timeline {
        let text = std::fs::read_to_string(path)
            .map_err(|e| VerdictError::bad(format!("cannot read {}: {e}", path.display())))?;
        let t = crate::timeline::Timeline::parse(&text)
            .map_err(|e| VerdictError::bad(format!("{}: {e}", path.display())))?;
        println!(
            "{}: {} phases, {} faults",
            path.display(),
            t.phases.len(),
            t.faults.len()
        );
    }
    Ok(Exit::Pass)
}
