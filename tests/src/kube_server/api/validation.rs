//! The API machinery's name checks (`IsDNS1123Subdomain`, `IsDNS1123Label`,
//! `IsQualifiedName`) with the messages the real server prints, and object metadata
//! validation on create.

use serde_json::Value;

use crate::kube_server::errors::FieldError;
use crate::kube_server::meta;
use crate::kube_server::registry::{self, ResourceType};

const LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const SUBDOMAIN_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const QUALIFIED_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";

fn regex_error(message: &str, fmt: &str, examples: &[&str]) -> String {
    let examples: Vec<String> = examples.iter().map(|e| format!("'{e}', ")).collect();
    format!(
        "{message} (e.g. {}regex used for validation is '{fmt}')",
        examples.join("or ")
    )
}

fn is_label_chars(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// `IsDNS1123Label`.
pub fn dns1123_label(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 63 {
        errs.push("must be no more than 63 bytes".into());
    }
    if !is_label_chars(value) {
        if dns1123_subdomain(value).is_empty() {
            errs.push("must not contain dots".into());
        } else {
            errs.push(regex_error(
                "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
                LABEL_FMT,
                &["my-name", "123-abc"],
            ));
        }
    }
    errs
}

/// `IsDNS1123Subdomain`.
pub fn dns1123_subdomain(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 253 {
        errs.push("must be no more than 253 bytes".into());
    }
    if !value.split('.').all(is_label_chars) {
        errs.push(regex_error(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
            SUBDOMAIN_FMT,
            &["example.com"],
        ));
    }
    errs
}

fn is_qualified_part(s: &str) -> bool {
    let bytes = s.as_bytes();
    !bytes.is_empty()
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(b))
}

const QUALIFIED_MSG: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";

/// `IsQualifiedName` (a label key: optional DNS subdomain prefix, '/', name).
pub fn qualified_name(value: &str) -> Vec<String> {
    let parts: Vec<&str> = value.split('/').collect();
    let mut errs = Vec::new();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push("prefix part must be non-empty".into());
            } else {
                errs.extend(
                    dns1123_subdomain(prefix)
                        .into_iter()
                        .map(|m| format!("prefix part {m}")),
                );
            }
            *name
        }
        _ => {
            return vec![format!(
                "a valid label key {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(
                    QUALIFIED_MSG,
                    QUALIFIED_FMT,
                    &["MyName", "my.name", "123-abc"]
                )
            )];
        }
    };
    if name.is_empty() {
        errs.push("name part must be non-empty".into());
    } else if name.len() > 63 {
        errs.push("name part must be no more than 63 bytes".into());
    }
    if !is_qualified_part(name) {
        errs.push(format!(
            "name part {}",
            regex_error(
                QUALIFIED_MSG,
                QUALIFIED_FMT,
                &["MyName", "my.name", "123-abc"]
            )
        ));
    }
    errs
}

/// `ValidatePathSegmentName` (RBAC objects may use ':' and capitals).
fn path_segment(value: &str) -> Vec<String> {
    if value == "." || value == ".." {
        return vec![format!("may not be '{value}'")];
    }
    ["/", "%"]
        .iter()
        .filter(|bad| value.contains(*bad))
        .map(|bad| format!("may not contain '{bad}'"))
        .collect()
}

fn name_rule(rt: &ResourceType) -> fn(&str) -> Vec<String> {
    match rt.gr {
        registry::NAMESPACES => dns1123_label,
        gr if gr.group == "rbac.authorization.k8s.io" => path_segment,
        _ => dns1123_subdomain,
    }
}

/// `ValidateObjectMeta` on create: the name (or generateName) is present and valid,
/// labels and annotation keys are valid.
pub fn object_meta(rt: &ResourceType, object: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let name = meta::name(object);
    let generate = object
        .pointer("/metadata/generateName")
        .and_then(Value::as_str)
        .unwrap_or("");
    if name.is_empty() && generate.is_empty() {
        errs.push(FieldError {
            body: "Required value: name or generateName is required".into(),
            ..FieldError::required("metadata.name")
        });
    }
    if !name.is_empty() {
        for m in name_rule(rt)(name) {
            errs.push(FieldError::invalid("metadata.name", name, &m));
        }
    }
    if let Some(labels) = object
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
    {
        for (key, value) in labels {
            for m in qualified_name(key) {
                errs.push(FieldError::invalid("metadata.labels", key, &m));
            }
            let value = value.as_str().unwrap_or("");
            if value.len() > 63 || !(value.is_empty() || is_qualified_part(value)) {
                errs.push(FieldError::invalid(
                    "metadata.labels",
                    value,
                    &regex_error(
                        "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
                        "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?",
                        &["MyValue", "my_value", "12345"],
                    ),
                ));
            }
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_as_the_api_machinery_does() {
        assert!(dns1123_subdomain("product-service-7d4b9c8f6-abcde").is_empty());
        assert!(dns1123_subdomain("a.b").is_empty());
        assert_eq!(dns1123_subdomain("Bad_Name").len(), 1);
        assert_eq!(dns1123_label("a.b"), ["must not contain dots"]);
        assert!(qualified_name("chaos-tools/pod-killer").is_empty());
        assert!(qualified_name("a/b/c")[0].starts_with("a valid label key"));
        assert_eq!(qualified_name("/x"), ["prefix part must be non-empty"]);
        assert!(qualified_name("chaos tools")[0].starts_with("name part must consist"));
        assert!(path_segment("system:basic-user").is_empty());
        assert_eq!(path_segment("a/b"), ["may not contain '/'"]);
    }
}
