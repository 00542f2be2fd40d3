//! PATCH bodies: JSON merge patch (RFC 7386), JSON patch (RFC 6902) and strategic merge
//! patch, what `kubectl apply`, `kubectl patch`, `kubectl scale` and kube-rs send.
//!
//! Strategic merge is approximated by field name: lists of objects named below merge by
//! their key (`containers` by `name`, `conditions` by `type`, ...), `finalizers` merges as
//! a set, every other list is replaced; the directives kubectl sends (`$patch`,
//! `$setElementOrder/...`, `$retainKeys`, `$deleteFromPrimitiveList/...`) are honoured.

use serde_json::{Map, Value};

use crate::kube_server::errors::{ApiError, ApiResult};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    Merge,
    Strategic,
    Json,
}

impl PatchType {
    /// From the request's Content-Type; None for types the server does not take.
    pub fn from_content_type(content_type: &str) -> Option<PatchType> {
        match content_type.split(';').next().unwrap_or("").trim() {
            "application/merge-patch+json" => Some(PatchType::Merge),
            "application/strategic-merge-patch+json" => Some(PatchType::Strategic),
            "application/json-patch+json" => Some(PatchType::Json),
            _ => None,
        }
    }
}

pub fn apply(kind: PatchType, target: &Value, patch: &Value) -> ApiResult<Value> {
    match kind {
        PatchType::Merge => Ok(merge(target, patch, false)),
        PatchType::Strategic => Ok(merge(target, patch, true)),
        PatchType::Json => json_patch(target, patch),
    }
}

/// The key a list of objects merges by, under a strategic merge patch.
fn merge_key(field: &str, items: &[Value]) -> Option<&'static str> {
    Some(match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets" => "name",
        "ports" if items.iter().any(|i| i.get("containerPort").is_some()) => "containerPort",
        "ports" => "port",
        "volumeMounts" => "mountPath",
        "conditions" => "type",
        "ownerReferences" => "uid",
        "hostAliases" => "ip",
        "containerStatuses" | "initContainerStatuses" | "ephemeralContainerStatuses" => "name",
        _ => return None,
    })
}

/// RFC 7386 merge, with strategic-merge list handling when `strategic`.
fn merge(target: &Value, patch: &Value, strategic: bool) -> Value {
    let Some(patch_map) = patch.as_object() else {
        return patch.clone();
    };
    if strategic && patch_map.get("$patch").and_then(Value::as_str) == Some("replace") {
        let mut replaced = patch_map.clone();
        replaced.remove("$patch");
        return Value::Object(replaced);
    }
    let mut out: Map<String, Value> = target.as_object().cloned().unwrap_or_default();
    for (key, value) in patch_map {
        if strategic && key.starts_with('$') {
            if let Some(field) = key.strip_prefix("$deleteFromPrimitiveList/") {
                delete_from_list(&mut out, field, value);
            }
            continue;
        }
        if value.is_null() {
            out.remove(key);
            continue;
        }
        let merged = match (out.get(key), value) {
            (Some(current), Value::Object(_)) if current.is_object() => {
                merge(current, value, strategic)
            }
            (Some(Value::Array(current)), Value::Array(items)) if strategic => {
                merge_list(key, current, items)
            }
            (_, Value::Object(_)) => merge(&Value::Null, value, strategic),
            _ => value.clone(),
        };
        out.insert(key.clone(), merged);
    }
    Value::Object(out)
}

fn delete_from_list(out: &mut Map<String, Value>, field: &str, values: &Value) {
    let Some(remove) = values.as_array() else {
        return;
    };
    if let Some(Value::Array(list)) = out.get_mut(field) {
        list.retain(|v| !remove.contains(v));
    }
}

fn merge_list(field: &str, current: &[Value], patch: &[Value]) -> Value {
    if field == "finalizers" {
        let mut out = current.to_vec();
        for item in patch {
            if !out.contains(item) {
                out.push(item.clone());
            }
        }
        return Value::Array(out);
    }
    let Some(key) = merge_key(field, patch) else {
        return Value::Array(patch.to_vec());
    };
    let mut out = current.to_vec();
    for item in patch {
        let id = item.get(key);
        let position = out.iter().position(|c| id.is_some() && c.get(key) == id);
        let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
        match (position, delete) {
            (Some(i), true) => {
                out.remove(i);
            }
            (Some(i), false) => out[i] = merge(&out[i], item, true),
            (None, false) => out.push(merge(&Value::Null, item, true)),
            (None, true) => {}
        }
    }
    Value::Array(out)
}

fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

fn split_pointer(path: &str) -> ApiResult<(String, String)> {
    let (parent, last) = path
        .rsplit_once('/')
        .ok_or_else(|| ApiError::bad_request(format!("invalid JSON pointer {path:?}")))?;
    Ok((parent.to_owned(), unescape(last)))
}

fn add_at(doc: &mut Value, path: &str, value: Value) -> ApiResult<()> {
    let (parent, last) = split_pointer(path)?;
    match doc.pointer_mut(&parent) {
        Some(Value::Object(map)) => {
            map.insert(last, value);
            Ok(())
        }
        Some(Value::Array(list)) if last == "-" => {
            list.push(value);
            Ok(())
        }
        Some(Value::Array(list)) => {
            let i: usize = last
                .parse()
                .map_err(|_| ApiError::bad_request(format!("invalid index in {path}")))?;
            if i > list.len() {
                return Err(ApiError::bad_request(format!(
                    "index out of range in {path}"
                )));
            }
            list.insert(i, value);
            Ok(())
        }
        _ => Err(ApiError::bad_request(format!(
            "the server rejected our request due to an error in our request: doc is missing path: \"{path}\""
        ))),
    }
}

fn remove_at(doc: &mut Value, path: &str) -> ApiResult<Value> {
    let (parent, last) = split_pointer(path)?;
    let removed = match doc.pointer_mut(&parent) {
        Some(Value::Object(map)) => map.remove(&last),
        Some(Value::Array(list)) => last
            .parse::<usize>()
            .ok()
            .filter(|i| *i < list.len())
            .map(|i| list.remove(i)),
        _ => None,
    };
    removed.ok_or_else(|| {
        ApiError::bad_request(format!(
            "the server rejected our request due to an error in our request: doc is missing path: \"{path}\""
        ))
    })
}

/// RFC 6902.
fn json_patch(target: &Value, patch: &Value) -> ApiResult<Value> {
    let ops = patch
        .as_array()
        .ok_or_else(|| ApiError::bad_request("a JSON patch must be a list of operations"))?;
    let mut doc = target.clone();
    for op in ops {
        let path = op.get("path").and_then(Value::as_str).unwrap_or("");
        let value = op.get("value").cloned().unwrap_or(Value::Null);
        match op.get("op").and_then(Value::as_str).unwrap_or("") {
            "add" => add_at(&mut doc, path, value)?,
            "remove" => {
                remove_at(&mut doc, path)?;
            }
            "replace" => {
                remove_at(&mut doc, path)?;
                add_at(&mut doc, path, value)?;
            }
            "test" if doc.pointer(path) != Some(&value) => {
                return Err(ApiError::new(
                    422,
                    "Invalid",
                    format!(
                        "the server rejected our request due to an error in our request: testing value {path} failed"
                    ),
                ));
            }
            "test" => {}
            "move" | "copy" => {
                let from = op.get("from").and_then(Value::as_str).unwrap_or("");
                let moved = if op["op"] == "move" {
                    remove_at(&mut doc, from)?
                } else {
                    doc.pointer(from).cloned().ok_or_else(|| {
                        ApiError::bad_request(format!("doc is missing path: \"{from}\""))
                    })?
                };
                add_at(&mut doc, path, moved)?;
            }
            other => {
                return Err(ApiError::bad_request(format!("Unexpected kind: {other}")));
            }
        }
    }
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strategic_merge_merges_containers_by_name_and_replaces_other_lists() {
        let target = json!({"metadata": {"finalizers": ["a"], "labels": {"x": "1", "y": "2"}},
            "spec": {"containers": [{"name": "app", "image": "a:1"}, {"name": "side", "image": "s:1"}],
                     "args": ["1"]}});
        let patch = json!({"metadata": {"finalizers": ["b"], "labels": {"y": null}},
            "spec": {"containers": [{"name": "app", "image": "a:2"}], "args": ["2"],
                     "$setElementOrder/containers": [{"name": "app"}, {"name": "side"}]}});
        let out = apply(PatchType::Strategic, &target, &patch).unwrap_or_default();
        assert_eq!(out["metadata"]["finalizers"], json!(["a", "b"]));
        assert_eq!(out["metadata"]["labels"], json!({"x": "1"}));
        assert_eq!(out["spec"]["containers"][0]["image"], "a:2");
        assert_eq!(out["spec"]["containers"][1]["image"], "s:1");
        assert_eq!(out["spec"]["args"], json!(["2"]));
        let merged = apply(PatchType::Merge, &target, &patch).unwrap_or_default();
        assert_eq!(
            merged["spec"]["containers"].as_array().map(Vec::len),
            Some(1)
        );
    }

    #[test]
    fn json_patch_adds_removes_and_tests() {
        let target = json!({"metadata": {"finalizers": ["a", "b"]}});
        let patch = json!([{"op": "test", "path": "/metadata/finalizers/0", "value": "a"},
                           {"op": "remove", "path": "/metadata/finalizers/0"},
                           {"op": "add", "path": "/metadata/labels", "value": {"k": "v"}}]);
        let out = apply(PatchType::Json, &target, &patch).unwrap_or_default();
        assert_eq!(
            out,
            json!({"metadata": {"finalizers": ["b"], "labels": {"k": "v"}}})
        );
        let bad = json!([{"op": "test", "path": "/metadata/finalizers/0", "value": "z"}]);
        assert_eq!(
            apply(PatchType::Json, &target, &bad).map_err(|e| e.code),
            Err(422)
        );
    }
}
