//! What a request asks for, as the API server's `RequestInfoFactory` reads a path:
//! `/api/v1/namespaces/NS/pods/NAME/eviction`, `/apis/apps/v1/statefulsets`, the legacy
//! `/api/v1/watch/...`, or a non-resource path (`/version`, `/apis`).

use std::collections::HashMap;

use hyper::Method;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestInfo {
    pub path: String,
    pub resource_request: bool,
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`;
    /// for non-resource requests the lowercase method.
    pub verb: String,
    pub group: String,
    pub version: String,
    pub namespace: String,
    pub resource: String,
    pub subresource: String,
    pub name: String,
}

fn is_watch(query: &HashMap<String, String>) -> bool {
    query.get("watch").is_some_and(|w| w == "true" || w == "1")
}

/// Parses `path` of a `method` request with `query`.
pub fn parse(method: &Method, path: &str, query: &HashMap<String, String>) -> RequestInfo {
    let mut info = RequestInfo {
        path: path.to_owned(),
        verb: method.as_str().to_ascii_lowercase(),
        ..Default::default()
    };
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let rest = match parts.as_slice() {
        ["api", version, rest @ ..] if !rest.is_empty() => {
            info.version = (*version).into();
            rest
        }
        ["apis", group, version, rest @ ..] if !rest.is_empty() => {
            info.group = (*group).into();
            info.version = (*version).into();
            rest
        }
        _ => return info,
    };
    info.resource_request = true;
    let mut rest: Vec<&str> = rest.to_vec();
    let mut legacy_watch = false;
    if rest.first() == Some(&"watch") {
        legacy_watch = true;
        rest.remove(0);
    }
    if rest.first() == Some(&"namespaces") && rest.len() >= 2 {
        info.namespace = rest[1].into();
        if rest.len() >= 3 {
            rest.drain(..2);
        } else {
            // `/api/v1/namespaces/NAME`: the namespace object itself.
            info.resource = "namespaces".into();
            info.name = rest[1].into();
            rest.clear();
        }
    }
    if let Some(resource) = rest.first() {
        info.resource = (*resource).into();
    }
    if let Some(name) = rest.get(1) {
        info.name = (*name).into();
    }
    if let Some(sub) = rest.get(2) {
        info.subresource = (*sub).into();
    }
    if info.resource == "namespaces" && info.name.is_empty() {
        // `/api/v1/namespaces` lists namespaces: no namespace scope.
        info.namespace.clear();
    }
    if info.resource == "namespaces" && !info.name.is_empty() {
        info.namespace.clear();
    }
    info.verb = match (method, info.name.is_empty()) {
        _ if legacy_watch || (*method == Method::GET && is_watch(query)) => "watch",
        (&Method::GET, true) => "list",
        (&Method::GET, false) => "get",
        (&Method::POST, _) => "create",
        (&Method::PUT, _) => "update",
        (&Method::PATCH, _) => "patch",
        (&Method::DELETE, true) => "deletecollection",
        (&Method::DELETE, false) => "delete",
        _ => info.verb.as_str(),
    }
    .to_owned();
    info
}

/// The query string, percent-decoded (`+` is a space).
pub fn query(raw: Option<&str>) -> HashMap<String, String> {
    raw.unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
        .filter(|(k, _)| !k.is_empty())
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(method: Method, path: &str, q: &str) -> RequestInfo {
        parse(&method, path, &query(Some(q)))
    }

    #[test]
    fn paths_parse_as_the_request_info_factory_does() {
        let i = info(Method::POST, "/api/v1/namespaces/ns/pods/p/eviction", "");
        assert_eq!(
            (
                i.verb.as_str(),
                i.namespace.as_str(),
                i.resource.as_str(),
                i.name.as_str(),
                i.subresource.as_str()
            ),
            ("create", "ns", "pods", "p", "eviction")
        );
        let i = info(
            Method::GET,
            "/apis/apps/v1/namespaces/ns/statefulsets",
            "watch=1",
        );
        assert_eq!((i.verb.as_str(), i.group.as_str()), ("watch", "apps"));
        let i = info(Method::GET, "/api/v1/namespaces/ns", "");
        assert_eq!(
            (i.resource.as_str(), i.name.as_str(), i.namespace.as_str()),
            ("namespaces", "ns", "")
        );
        let i = info(Method::GET, "/api/v1/watch/namespaces/ns/pods", "");
        assert_eq!((i.verb.as_str(), i.resource.as_str()), ("watch", "pods"));
        let i = info(Method::DELETE, "/api/v1/namespaces/ns/pods", "");
        assert_eq!(i.verb, "deletecollection");
        assert!(!info(Method::GET, "/apis", "").resource_request);
        assert_eq!(
            query(Some("labelSelector=app%3Dx+y"))["labelSelector"],
            "app=x y"
        );
    }
}
