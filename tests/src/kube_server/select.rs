//! Label and field selectors, as the API server parses them (the subset kubectl and
//! kube-rs send: `=`, `==`, `!=`, `in`, `notin`, existence, and `!key`).

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed label selector plus field selector; empty matches everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Selector {
    labels: Vec<Requirement>,
    fields: Vec<Requirement>,
}

impl Selector {
    pub fn parse(label: Option<&str>, field: Option<&str>) -> Result<Selector, String> {
        Ok(Selector {
            labels: parse_requirements(label.unwrap_or(""))?,
            fields: parse_requirements(field.unwrap_or(""))?,
        })
    }

    pub fn matches(&self, object: &Value) -> bool {
        let labels = object.pointer("/metadata/labels");
        let label = |key: &str| {
            labels
                .and_then(|l| l.get(key))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let field = |key: &str| field_value(object, key);
        self.labels.iter().all(|r| holds(r, &label)) && self.fields.iter().all(|r| holds(r, &field))
    }
}

/// A field path like `status.phase`; missing fields read as "" (as on the API server).
fn field_value(object: &Value, path: &str) -> Option<String> {
    let pointer = format!("/{}", path.replace('.', "/"));
    match object.pointer(&pointer) {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Null) | None => Some(String::new()),
        Some(other) => Some(other.to_string()),
    }
}

fn holds(req: &Requirement, value_of: &dyn Fn(&str) -> Option<String>) -> bool {
    match req {
        Requirement::Equals(k, v) => value_of(k).as_deref() == Some(v.as_str()),
        Requirement::NotEquals(k, v) => value_of(k).as_deref() != Some(v.as_str()),
        Requirement::In(k, vs) => value_of(k).is_some_and(|x| vs.contains(&x)),
        Requirement::NotIn(k, vs) => !value_of(k).is_some_and(|x| vs.contains(&x)),
        Requirement::Exists(k) => value_of(k).is_some(),
        Requirement::NotExists(k) => value_of(k).is_none(),
    }
}

/// Splits on commas that are not inside parentheses.
fn split_top_level(text: &str) -> Vec<&str> {
    let (mut parts, mut depth, mut start) = (Vec::new(), 0usize, 0usize);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

fn parse_requirements(text: &str) -> Result<Vec<Requirement>, String> {
    let mut out = Vec::new();
    for part in split_top_level(text) {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        out.push(parse_one(part)?);
    }
    Ok(out)
}

fn parse_one(part: &str) -> Result<Requirement, String> {
    let set = |rest: &str| -> Result<Vec<String>, String> {
        let inner = rest
            .trim()
            .strip_prefix('(')
            .and_then(|r| r.strip_suffix(')'))
            .ok_or_else(|| format!("unable to parse requirement: {part}"))?;
        Ok(inner.split(',').map(|s| s.trim().to_owned()).collect())
    };
    if let Some((k, v)) = part.split_once("!=") {
        return Ok(Requirement::NotEquals(k.trim().into(), v.trim().into()));
    }
    if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
        return Ok(Requirement::Equals(k.trim().into(), v.trim().into()));
    }
    if let Some((k, rest)) = part.split_once(" notin ") {
        return Ok(Requirement::NotIn(k.trim().into(), set(rest)?));
    }
    if let Some((k, rest)) = part.split_once(" in ") {
        return Ok(Requirement::In(k.trim().into(), set(rest)?));
    }
    if let Some(k) = part.strip_prefix('!') {
        return Ok(Requirement::NotExists(k.trim().into()));
    }
    if part
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
    {
        return Ok(Requirement::Exists(part.into()));
    }
    Err(format!("unable to parse requirement: {part}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn selectors_match_like_the_api_server() {
        let pod = json!({"metadata": {"name": "a-1", "labels": {"app": "a", "tier": "web"}},
                         "status": {"phase": "Running"}});
        let cases = [
            (Some("app=a"), None, true),
            (Some("app==a,tier=web"), None, true),
            (Some("app!=a"), None, false),
            (Some("app in (a,b)"), None, true),
            (Some("app notin (a,b)"), None, false),
            (Some("tier"), None, true),
            (Some("!tier"), None, false),
            (None, Some("status.phase=Running"), true),
            (None, Some("status.phase!=Running"), false),
            (Some("app=a"), Some("metadata.name=a-2"), false),
        ];
        for (label, field, expected) in cases {
            let selector = Selector::parse(label, field).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(selector.matches(&pod), expected, "{label:?} {field:?}");
        }
    }

    #[test]
    fn bad_selector_is_an_error() {
        assert!(Selector::parse(Some("app in a,b"), None).is_err());
    }
}
