//! `stats`, `get`, `manifest`, `validate`: small jobs the runbooks would otherwise do
//! with jq (which an operator's machine may not have).

use serde_json::{Map, Value, json};

use crate::cli::{FindArgs, GetArgs, ManifestArgs, StatsArgs, ValidateArgs};
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
    let value = read_json(&args.file)?;
    check_pointer(&args.pointer)?;
    match value.pointer(&args.pointer) {
        Some(v) => print_value(v),
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

/// `find`: the first element of an array matching every `--contains`; exit 1 when none
/// does (an answer, not an error: "no such event yet").
pub fn find(args: &FindArgs) -> Result<Exit> {
    let value = read_json(&args.file)?;
    check_pointer(&args.array)?;
    let mut conditions = Vec::new();
    for c in &args.contains {
        let (pointer, text) = c
            .split_once('=')
            .ok_or_else(|| VerdictError::bad(format!("--contains '{c}' is not POINTER=TEXT")))?;
        check_pointer(pointer)?;
        conditions.push((pointer, text.to_lowercase()));
    }
    if let Some(p) = &args.get {
        check_pointer(p)?;
    }
    let items = match value.pointer(&args.array) {
        Some(Value::Array(items)) => items,
        Some(_) => {
            return Err(VerdictError::bad(format!(
                "{}: {} is not an array",
                args.file.display(),
                args.array
            )));
        }
        None => {
            return Err(VerdictError::bad(format!(
                "{} has nothing at {}",
                args.file.display(),
                args.array
            )));
        }
    };
    let found = items.iter().find(|item| {
        conditions
            .iter()
            .all(|(pointer, text)| item.pointer(pointer).is_some_and(|v| holds_text(v, text)))
    });
    let Some(item) = found else {
        return Ok(Exit::Fail);
    };
    match &args.get {
        Some(p) => match item.pointer(p) {
            Some(v) => print_value(v),
            None => return Ok(Exit::Fail),
        },
        None => print_value(item),
    }
    Ok(Exit::Pass)
}

/// A string containing `text` (already lowercase), or an array holding one.
fn holds_text(value: &Value, text: &str) -> bool {
    match value {
        Value::String(s) => s.to_lowercase().contains(text),
        Value::Array(items) => items.iter().any(|v| holds_text(v, text)),
        _ => false,
    }
}

fn read_json(file: &std::path::Path) -> Result<Value> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| VerdictError::bad(format!("cannot read {}: {e}", file.display())))?;
    serde_json::from_str(&text)
        .map_err(|e| VerdictError::bad(format!("{} is not JSON: {e}", file.display())))
}

fn check_pointer(pointer: &str) -> Result<()> {
    if pointer.is_empty() || pointer.starts_with('/') {
        Ok(())
    } else {
        Err(VerdictError::bad(format!(
            "'{pointer}' is not a JSON pointer (it starts with '/')"
        )))
    }
}

fn print_value(v: &Value) {
    match v {
        Value::String(s) => println!("{s}"),
        v => println!("{v}"),
    }
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
