//! Label and field selectors as the API server parses them (apimachinery's `labels.Parse`
//! grammar: `=`, `==`, `!=`, `in`, `notin`, `>`, `<`, existence and `!key`; field
//! selectors with `=`, `==`, `!=` on the fields each resource supports), and LabelSelector
//! objects (`matchLabels`, `matchExpressions`).

use serde_json::Value;

use super::api::validation::qualified_name;
use super::registry::{CORE_EVENTS, EVENTS, GroupResource, PODS};

#[derive(Debug, Clone, PartialEq)]
enum Op {
    Equals,
    NotEquals,
    In,
    NotIn,
    Exists,
    NotExists,
    Greater,
    Less,
}

#[derive(Debug, Clone, PartialEq)]
struct Requirement {
    key: String,
    op: Op,
    values: Vec<String>,
}

/// A parsed label selector plus field selector; empty matches everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Selector {
    labels: Vec<Requirement>,
    fields: Vec<Requirement>,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Op(&'static str),
    End,
}

fn lex(text: &str) -> Vec<Token> {
    const OPS: [&str; 9] = ["==", "!=", "=", "!", "(", ")", ",", ">", "<"];
    let mut tokens = Vec::new();
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        if let Some(op) = OPS.iter().find(|op| rest.starts_with(**op)) {
            tokens.push(Token::Op(op));
            rest = rest[op.len()..].trim_start();
            continue;
        }
        let end = rest
            .find(|c: char| c.is_whitespace() || "=!(),><".contains(c))
            .unwrap_or(rest.len());
        let word = &rest[..end];
        tokens.push(match word {
            "in" => Token::Op("in"),
            "notin" => Token::Op("notin"),
            _ => Token::Ident(word.to_owned()),
        });
        rest = rest[end..].trim_start();
    }
    tokens.push(Token::End);
    tokens
}

fn shown(token: &Token) -> String {
    match token {
        Token::Ident(s) => s.clone(),
        Token::Op(o) => (*o).to_owned(),
        Token::End => String::new(),
    }
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> &Token {
        self.tokens.get(self.at).unwrap_or(&Token::End)
    }

    fn next(&mut self) -> Token {
        let t = self.peek().clone();
        self.at += 1;
        t
    }

    fn requirement(&mut self) -> Result<Requirement, String> {
        let negated = self.peek() == &Token::Op("!");
        if negated {
            self.next();
        }
        let key = match self.next() {
            Token::Ident(key) => key,
            other => return Err(format!("found '{}', expected: identifier", shown(&other))),
        };
        if let Some(e) = qualified_name(&key).first() {
            return Err(format!("key: Invalid value: \"{key}\": {e}"));
        }
        if matches!(self.peek(), Token::End | Token::Op(",")) {
            let op = if negated { Op::NotExists } else { Op::Exists };
            return Ok(Requirement {
                key,
                op,
                values: Vec::new(),
            });
        }
        if negated {
            return Err(format!(
                "found '{}', expected: ',' or 'end of string'",
                shown(self.peek())
            ));
        }
        let op = match self.next() {
            Token::Op("=" | "==") => Op::Equals,
            Token::Op("!=") => Op::NotEquals,
            Token::Op("in") => Op::In,
            Token::Op("notin") => Op::NotIn,
            Token::Op(">") => Op::Greater,
            Token::Op("<") => Op::Less,
            other => {
                return Err(format!(
                    "found '{}', expected: in, notin, =, ==, !=, gt, lt",
                    shown(&other)
                ));
            }
        };
        let values = if matches!(op, Op::In | Op::NotIn) {
            self.value_set()?
        } else {
            match self.peek().clone() {
                Token::Ident(v) => {
                    self.next();
                    vec![v]
                }
                Token::End | Token::Op(",") => vec![String::new()],
                other => return Err(format!("found '{}', expected: identifier", shown(&other))),
            }
        };
        check_values(&key, &op, &values)?;
        Ok(Requirement { key, op, values })
    }

    fn value_set(&mut self) -> Result<Vec<String>, String> {
        if self.next() != Token::Op("(") {
            return Err(format!(
                "found '{}', expected: '('",
                shown(&self.tokens[self.at - 1])
            ));
        }
        let mut values = Vec::new();
        loop {
            match self.next() {
                Token::Op(")") => return Ok(values),
                Token::Ident(v) => {
                    values.push(v);
                    match self.next() {
                        Token::Op(",") => {}
                        Token::Op(")") => return Ok(values),
                        other => {
                            return Err(format!("found '{}', expected: ',' or ')'", shown(&other)));
                        }
                    }
                }
                other => {
                    return Err(format!(
                        "found '{}', expected: ',', ')' or identifier",
                        shown(&other)
                    ));
                }
            }
        }
    }
}

fn check_values(key: &str, op: &Op, values: &[String]) -> Result<(), String> {
    match op {
        Op::In | Op::NotIn if values.is_empty() => {
            return Err(
                "values: Invalid value: []: for 'in', 'notin' operators, values set can't be empty"
                    .into(),
            );
        }
        Op::Greater | Op::Less if values[0].parse::<i64>().is_err() => {
            return Err(format!(
                "values[0]: Invalid value: \"{}\": for 'Gt', 'Lt' operators, the value must be an integer",
                values[0]
            ));
        }
        _ => {}
    }
    for (i, v) in values.iter().enumerate() {
        let ok = v.len() <= 63
            && (v.is_empty()
                || (v.starts_with(|c: char| c.is_ascii_alphanumeric())
                    && v.ends_with(|c: char| c.is_ascii_alphanumeric())
                    && v.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))));
        if !ok {
            return Err(format!(
                "values[{i}][{key}]: Invalid value: \"{v}\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
            ));
        }
    }
    Ok(())
}

fn parse_labels(text: &str) -> Result<Vec<Requirement>, String> {
    let mut p = Parser {
        tokens: lex(text),
        at: 0,
    };
    let mut out = Vec::new();
    loop {
        match p.peek() {
            Token::End => return Ok(out),
            Token::Ident(_) | Token::Op("!") => {
                let r = p
                    .requirement()
                    .map_err(|e| format!("unable to parse requirement: {e}"))?;
                out.push(r);
                match p.next() {
                    Token::End => return Ok(out),
                    Token::Op(",") if matches!(p.peek(), Token::Ident(_) | Token::Op("!")) => {}
                    Token::Op(",") => {
                        return Err(format!(
                            "found '{}', expected: identifier after ','",
                            shown(p.peek())
                        ));
                    }
                    other => {
                        return Err(format!(
                            "found '{}', expected: ',' or 'end of string'",
                            shown(&other)
                        ));
                    }
                }
            }
            other => {
                return Err(format!(
                    "found '{}', expected: !, identifier, or 'end of string'",
                    shown(other)
                ));
            }
        }
    }
}

/// The fields each resource can be selected by (besides metadata.name/namespace).
fn supported_fields(gr: GroupResource) -> &'static [&'static str] {
    match gr {
        PODS => &[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ],
        CORE_EVENTS | EVENTS => &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ],
        _ => &[],
    }
}

fn parse_fields(text: &str, gr: GroupResource) -> Result<Vec<Requirement>, String> {
    let mut out = Vec::new();
    for term in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        let (key, op, value) = if let Some((k, v)) = term.split_once("!=") {
            (k, Op::NotEquals, v)
        } else if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
            (k, Op::Equals, v)
        } else {
            return Err(format!(
                "invalid selector: '{text}'; can't understand '{term}'"
            ));
        };
        let key = key.trim();
        if !["metadata.name", "metadata.namespace"].contains(&key)
            && !supported_fields(gr).contains(&key)
        {
            return Err(format!("field label not supported: {key}"));
        }
        out.push(Requirement {
            key: key.into(),
            op,
            values: vec![value.trim().into()],
        });
    }
    Ok(out)
}

impl Selector {
    /// Parses the `labelSelector` and `fieldSelector` of a request on `gr`.
    pub fn parse(
        label: Option<&str>,
        field: Option<&str>,
        gr: GroupResource,
    ) -> Result<Selector, String> {
        Ok(Selector {
            labels: parse_labels(label.unwrap_or(""))?,
            fields: parse_fields(field.unwrap_or(""), gr)?,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty() && self.fields.is_empty()
    }

    pub fn matches(&self, object: &Value) -> bool {
        let label = |key: &str| {
            object
                .pointer("/metadata/labels")
                .and_then(|l| l.get(key))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let field = |key: &str| Some(field_value(object, key));
        self.labels.iter().all(|r| holds(r, &label)) && self.fields.iter().all(|r| holds(r, &field))
    }
}

/// A field path like `status.phase`; a missing field reads as "".
fn field_value(object: &Value, path: &str) -> String {
    let pointer = format!("/{}", path.replace('.', "/"));
    match object.pointer(&pointer) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

fn holds(req: &Requirement, value_of: &dyn Fn(&str) -> Option<String>) -> bool {
    let value = value_of(&req.key);
    let number = |v: &Option<String>| v.as_deref().and_then(|v| v.parse::<i64>().ok());
    let bound = req.values.first().and_then(|v| v.parse::<i64>().ok());
    match req.op {
        Op::Equals => value.as_deref() == req.values.first().map(String::as_str),
        Op::NotEquals => value.as_deref() != req.values.first().map(String::as_str),
        Op::In => value.is_some_and(|x| req.values.contains(&x)),
        Op::NotIn => !value.is_some_and(|x| req.values.contains(&x)),
        Op::Exists => value.is_some(),
        Op::NotExists => value.is_none(),
        Op::Greater => number(&value).zip(bound).is_some_and(|(v, b)| v > b),
        Op::Less => number(&value).zip(bound).is_some_and(|(v, b)| v < b),
    }
}

/// Whether a LabelSelector object (`matchLabels`, `matchExpressions`) selects `object`.
/// An empty or missing selector selects nothing, as a PodDisruptionBudget's does.
pub fn label_selector_matches(selector: &Value, object: &Value) -> bool {
    let labels = object.pointer("/metadata/labels");
    let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
    let match_labels = selector.get("matchLabels").and_then(Value::as_object);
    let expressions = selector.get("matchExpressions").and_then(Value::as_array);
    if match_labels.is_none_or(|m| m.is_empty()) && expressions.is_none_or(|e| e.is_empty()) {
        return false;
    }
    let labels_ok = match_labels.is_none_or(|m| m.iter().all(|(k, v)| get(k) == v.as_str()));
    let expressions_ok = expressions.is_none_or(|exprs| {
        exprs.iter().all(|e| {
            let key = e.get("key").and_then(Value::as_str).unwrap_or("");
            let values: Vec<&str> = e
                .get("values")
                .and_then(Value::as_array)
                .map(|v| v.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            match e.get("operator").and_then(Value::as_str).unwrap_or("") {
                "In" => get(key).is_some_and(|v| values.contains(&v)),
                "NotIn" => !get(key).is_some_and(|v| values.contains(&v)),
                "Exists" => get(key).is_some(),
                "DoesNotExist" => get(key).is_none(),
                _ => false,
            }
        })
    });
    labels_ok && expressions_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn selectors_match_like_the_api_server() {
        let pod = json!({"metadata": {"name": "a-1", "labels": {"app": "a", "tier": "web", "n": "5"}},
                         "status": {"phase": "Running"}});
        let cases = [
            (Some("app=a"), None, true),
            (Some("app==a,tier=web"), None, true),
            (Some("app!=a"), None, false),
            (Some("app in (a,b)"), None, true),
            (Some("app notin (a, b)"), None, false),
            (Some("tier"), None, true),
            (Some("!tier"), None, false),
            (Some("n>4,n<6"), None, true),
            (None, Some("status.phase=Running"), true),
            (None, Some("status.phase!=Running"), false),
            (Some("app=a"), Some("metadata.name=a-2"), false),
        ];
        for (label, field, expected) in cases {
            let selector = Selector::parse(label, field, PODS).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(selector.matches(&pod), expected, "{label:?} {field:?}");
        }
    }

    #[test]
    fn malformed_selectors_are_errors_with_the_parsers_messages() {
        for bad in [
            "app in a,b",
            "app=(x)",
            "app=a,",
            "=a",
            "app in ()",
            "a b",
            "app=a b",
            "n>x",
            "bad key=x",
        ] {
            assert!(
                Selector::parse(Some(bad), None, PODS).is_err(),
                "{bad} accepted"
            );
        }
        assert_eq!(
            Selector::parse(None, Some("spec.image=x"), PODS)
                .err()
                .as_deref(),
            Some("field label not supported: spec.image")
        );
    }

    #[test]
    fn label_selector_objects_need_something_to_match() {
        let pod = json!({"metadata": {"labels": {"app": "a"}}});
        assert!(label_selector_matches(
            &json!({"matchLabels": {"app": "a"}}),
            &pod
        ));
        assert!(label_selector_matches(
            &json!({"matchExpressions": [{"key": "app", "operator": "In", "values": ["a"]}]}),
            &pod
        ));
        assert!(!label_selector_matches(&json!({}), &pod));
    }
}
