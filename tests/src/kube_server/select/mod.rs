//! Label and field selectors as the API server parses them (apimachinery's `labels.Parse`
//! grammar: `=`, `==`, `!=`, `in`, `notin`, `>`, `<`, existence and `!key`; field
//! selectors with `=`, `==`, `!=` on the fields each resource supports), and LabelSelector
//! objects (`matchLabels`, `matchExpressions`).

use serde_json::Value;

use super::registry::{CORE_EVENTS, EVENTS, GroupResource, PODS};

mod labels;

use labels::parse_labels;

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
