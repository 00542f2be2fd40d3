//! Request bodies in the Kubernetes protobuf encoding, which kubectl's typed clients send
//! (`kubectl create token` posts a TokenRequest, `kubectl auth can-i` a
//! SelfSubjectAccessReview, eviction and delete options likewise): the `k8s\0` envelope
//! around a `runtime.Unknown`, and the few messages decoded into their JSON form by field
//! number. Responses stay JSON, which those clients accept too.

use serde_json::{Map, Value, json};

use crate::kube_server::errors::{ApiError, ApiResult};

#[derive(Clone, Copy)]
enum Kind {
    Str,
    Int,
    Bool,
    RepeatedStr,
    StrMap,
    Msg(&'static [Field]),
}

#[derive(Clone, Copy)]
struct Field {
    num: u64,
    name: &'static str,
    kind: Kind,
}

const fn f(num: u64, name: &'static str, kind: Kind) -> Field {
    Field { num, name, kind }
}

const OBJECT_META: &[Field] = &[
    f(1, "name", Kind::Str),
    f(2, "generateName", Kind::Str),
    f(3, "namespace", Kind::Str),
    f(5, "uid", Kind::Str),
    f(6, "resourceVersion", Kind::Str),
    f(11, "labels", Kind::StrMap),
    f(12, "annotations", Kind::StrMap),
    f(14, "finalizers", Kind::RepeatedStr),
];
const PRECONDITIONS: &[Field] = &[f(1, "uid", Kind::Str), f(2, "resourceVersion", Kind::Str)];
const DELETE_OPTIONS: &[Field] = &[
    f(1, "gracePeriodSeconds", Kind::Int),
    f(2, "preconditions", Kind::Msg(PRECONDITIONS)),
    f(3, "orphanDependents", Kind::Bool),
    f(4, "propagationPolicy", Kind::Str),
    f(5, "dryRun", Kind::RepeatedStr),
];
const EVICTION: &[Field] = &[
    f(1, "metadata", Kind::Msg(OBJECT_META)),
    f(2, "deleteOptions", Kind::Msg(DELETE_OPTIONS)),
];
const BOUND_OBJECT: &[Field] = &[
    f(1, "kind", Kind::Str),
    f(2, "apiVersion", Kind::Str),
    f(3, "name", Kind::Str),
    f(4, "uid", Kind::Str),
];
const TOKEN_SPEC: &[Field] = &[
    f(1, "audiences", Kind::RepeatedStr),
    f(3, "boundObjectRef", Kind::Msg(BOUND_OBJECT)),
    f(4, "expirationSeconds", Kind::Int),
];
const TOKEN_REQUEST: &[Field] = &[
    f(1, "metadata", Kind::Msg(OBJECT_META)),
    f(2, "spec", Kind::Msg(TOKEN_SPEC)),
];
const RESOURCE_ATTRIBUTES: &[Field] = &[
    f(1, "namespace", Kind::Str),
    f(2, "verb", Kind::Str),
    f(3, "group", Kind::Str),
    f(4, "version", Kind::Str),
    f(5, "resource", Kind::Str),
    f(6, "subresource", Kind::Str),
    f(7, "name", Kind::Str),
];
const NON_RESOURCE_ATTRIBUTES: &[Field] = &[f(1, "path", Kind::Str), f(2, "verb", Kind::Str)];
const SSAR_SPEC: &[Field] = &[
    f(1, "resourceAttributes", Kind::Msg(RESOURCE_ATTRIBUTES)),
    f(
        2,
        "nonResourceAttributes",
        Kind::Msg(NON_RESOURCE_ATTRIBUTES),
    ),
];
const SSAR: &[Field] = &[
    f(1, "metadata", Kind::Msg(OBJECT_META)),
    f(2, "spec", Kind::Msg(SSAR_SPEC)),
];

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

/// (field number, value): varint as number, length-delimited as bytes.
enum Wire<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Skip,
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.bytes.get(self.at)?;
            self.at += 1;
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }

    fn next(&mut self) -> Option<(u64, Wire<'a>)> {
        if self.at >= self.bytes.len() {
            return None;
        }
        let tag = self.varint()?;
        let wire = match tag & 7 {
            0 => Wire::Varint(self.varint()?),
            1 => {
                self.at += 8;
                Wire::Skip
            }
            2 => {
                let len = usize::try_from(self.varint()?).ok()?;
                let bytes = self.bytes.get(self.at..self.at.checked_add(len)?)?;
                self.at += len;
                Wire::Bytes(bytes)
            }
            5 => {
                self.at += 4;
                Wire::Skip
            }
            _ => return None,
        };
        Some((tag >> 3, wire))
    }
}

fn text(bytes: &[u8]) -> Value {
    Value::String(String::from_utf8_lossy(bytes).into_owned())
}

fn decode(bytes: &[u8], schema: &[Field]) -> Option<Value> {
    let mut out = Map::new();
    let mut reader = Reader { bytes, at: 0 };
    while let Some((num, wire)) = reader.next() {
        let Some(field) = schema.iter().find(|f| f.num == num) else {
            continue;
        };
        let name = field.name.to_owned();
        match (field.kind, wire) {
            (Kind::Str, Wire::Bytes(b)) => {
                out.insert(name, text(b));
            }
            (Kind::Int, Wire::Varint(v)) => {
                out.insert(name, json!(v as i64));
            }
            (Kind::Bool, Wire::Varint(v)) => {
                out.insert(name, json!(v != 0));
            }
            (Kind::RepeatedStr, Wire::Bytes(b)) => {
                let list = out.entry(name).or_insert_with(|| json!([]));
                if let Some(list) = list.as_array_mut() {
                    list.push(text(b));
                }
            }
            (Kind::StrMap, Wire::Bytes(b)) => {
                let entry = decode(b, &[f(1, "key", Kind::Str), f(2, "value", Kind::Str)])?;
                let key = entry
                    .get("key")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned();
                let map = out.entry(name).or_insert_with(|| json!({}));
                map[key] = entry.get("value").cloned().unwrap_or_else(|| json!(""));
            }
            (Kind::Msg(inner), Wire::Bytes(b)) => {
                out.insert(name, decode(b, inner)?);
            }
            _ => return None,
        }
    }
    Some(Value::Object(out))
}

/// Whether `body` is in the protobuf envelope.
pub fn is_protobuf(body: &[u8]) -> bool {
    body.starts_with(b"k8s\0")
}

/// The JSON form of a protobuf request body.
pub fn to_json(body: &[u8]) -> ApiResult<Value> {
    let bad = || ApiError::bad_request("the protobuf body of the request is malformed");
    let mut reader = Reader {
        bytes: &body[4..],
        at: 0,
    };
    let (mut api_version, mut kind, mut raw) = (String::new(), String::new(), &[][..]);
    while let Some((num, wire)) = reader.next() {
        match (num, wire) {
            (1, Wire::Bytes(b)) => {
                let meta = decode(b, &[f(1, "apiVersion", Kind::Str), f(2, "kind", Kind::Str)])
                    .ok_or_else(bad)?;
                api_version = meta
                    .get("apiVersion")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned();
                kind = meta
                    .get("kind")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned();
            }
            (2, Wire::Bytes(b)) => raw = b,
            _ => {}
        }
    }
    let schema = match kind.as_str() {
        "TokenRequest" => TOKEN_REQUEST,
        "SelfSubjectAccessReview" => SSAR,
        "DeleteOptions" => DELETE_OPTIONS,
        "Eviction" => EVICTION,
        other => {
            return Err(ApiError::new(
                415,
                "UnsupportedMediaType",
                format!(
                    "kube-test-server decodes protobuf bodies of TokenRequest, SelfSubjectAccessReview, DeleteOptions and Eviction only, not {other}; send JSON"
                ),
            ));
        }
    };
    let mut object = decode(raw, schema).ok_or_else(bad)?;
    object["apiVersion"] = api_version.into();
    object["kind"] = kind.into();
    Ok(object)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(num: u64, bytes: &[u8]) -> Vec<u8> {
        let mut out = vec![
            u8::try_from(num << 3 | 2).unwrap_or(0),
            u8::try_from(bytes.len()).unwrap_or(0),
        ];
        out.extend_from_slice(bytes);
        out
    }

    #[test]
    fn a_token_request_decodes_into_its_json_form() {
        let spec = [field(1, b"api"), vec![4 << 3, 0x90, 0x1c]].concat(); // expirationSeconds 3600
        let object = field(2, &spec);
        let type_meta = [
            field(1, b"authentication.k8s.io/v1"),
            field(2, b"TokenRequest"),
        ]
        .concat();
        let body = [b"k8s\0".to_vec(), field(1, &type_meta), field(2, &object)].concat();
        let json = to_json(&body).unwrap_or_default();
        assert_eq!(json["kind"], "TokenRequest");
        assert_eq!(json["spec"]["audiences"], json!(["api"]));
        assert_eq!(json["spec"]["expirationSeconds"], 3600);
    }
}
