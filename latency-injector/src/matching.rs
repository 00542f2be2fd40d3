//! Which HTTP requests are delayed: a method and a path prefix, compared on the
//! normalised path so that spellings a server routes to the same handler match alike.
//!
//! Normalisation (of the request's path and of each `--endpoint`), in this order:
//! 1. the path is taken from the target: the query and fragment are dropped, and an
//!    absolute-form target (`http://host/p`) gives its path;
//! 2. percent-encoded *unreserved* characters are decoded (`%6F` → `o`, RFC 3986 2.3);
//!    other escapes keep their meaning and are only upper-cased (`%2f` → `%2F`: an
//!    encoded slash is not a segment separator), and raw bytes outside printable ASCII
//!    are percent-encoded;
//! 3. repeated slashes collapse (`//slow` → `/slow`);
//! 4. dot-segments are resolved (`/./slow`, `/fast/../slow` → `/slow`; `..` never climbs
//!    above the root).
//!
//! So `--endpoint /slow` matches `/sl%6Fw`, `//slow`, `/./slow` and `/fast/../slow`, as
//! nginx routes them. It does not match `/sl%2Fow` (nginx decodes `%2F` too; Express
//! and most application routers do not, and the tool sits in front of applications).

use serde::Serialize;

/// Which requests are delayed: path prefixes (whole segments) and optional methods.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRules {
    /// Normalised; empty: every path matches.
    pub endpoints: Vec<String>,
    /// Empty: every method matches. Upper case.
    pub methods: Vec<String>,
}

impl HttpRules {
    /// `target` is the request target as sent (`/a/b?c`).
    pub fn matches(&self, method: &str, target: &[u8]) -> bool {
        let method_ok = self.methods.is_empty() || self.methods.iter().any(|m| m == method);
        if !method_ok {
            return false;
        }
        if self.endpoints.is_empty() {
            return true;
        }
        let path = normalise(path_of(target));
        self.endpoints.iter().any(|p| prefix_matches(p, &path))
    }

    /// Which requests are delayed, in words (for the plan).
    pub fn describe(&self) -> String {
        let methods = if self.methods.is_empty() {
            "any method".to_owned()
        } else {
            self.methods.join("|")
        };
        let paths = if self.endpoints.is_empty() {
            "any path".to_owned()
        } else {
            self.endpoints.join(", ")
        };
        format!("{methods} on {paths}")
    }
}

/// `/v1/webhooks` matches `/v1/webhooks` and `/v1/webhooks/stripe`, not `/v1/webhooksX`;
/// a prefix ending in `/` matches anything below it. Both sides are normalised paths.
pub fn prefix_matches(prefix: &str, path: &str) -> bool {
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || prefix.ends_with('/') || rest.starts_with('/'),
        None => false,
    }
}

/// The path of a request target: without query or fragment; the path of an
/// absolute-form target; `*` and authority-form targets as they are.
pub fn path_of(target: &[u8]) -> &[u8] {
    let end = target
        .iter()
        .position(|b| *b == b'?' || *b == b'#')
        .unwrap_or(target.len());
    let target = &target[..end];
    if target.starts_with(b"/") {
        return target;
    }
    // scheme://authority/path
    match target.windows(3).position(|w| w == b"://") {
        Some(at) => {
            let after = &target[at + 3..];
            after
                .iter()
                .position(|b| *b == b'/')
                .map_or(b"/".as_slice(), |slash| &after[slash..])
        }
        None => target,
    }
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn hex(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// Step 2: decode unreserved escapes, upper-case the others, encode raw bytes.
fn decode_unreserved(path: &[u8]) -> String {
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < path.len() {
        let b = path[i];
        let escaped = (b == b'%')
            .then(|| Some(hex(*path.get(i + 1)?)? * 16 + hex(*path.get(i + 2)?)?))
            .flatten();
        match escaped {
            Some(c) if is_unreserved(c) => {
                out.push(char::from(c));
                i += 3;
            }
            Some(c) => {
                out.push_str(&format!("%{c:02X}"));
                i += 3;
            }
            None if b.is_ascii_graphic() => {
                out.push(char::from(b));
                i += 1;
            }
            None => {
                out.push_str(&format!("%{b:02X}"));
                i += 1;
            }
        }
    }
    out
}

/// The normalised form of a path (see the module documentation).
pub fn normalise(path: &[u8]) -> String {
    let decoded = decode_unreserved(path);
    if !decoded.starts_with('/') {
        return decoded;
    }
    let mut segments: Vec<&str> = Vec::new();
    let parts: Vec<&str> = decoded[1..].split('/').collect();
    let last = parts.len() - 1;
    let mut trailing_slash = false;
    for (n, part) in parts.iter().enumerate() {
        match *part {
            "" | "." => trailing_slash = n == last || trailing_slash && part.is_empty(),
            ".." => {
                segments.pop();
                trailing_slash = n == last;
            }
            segment => {
                segments.push(segment);
                trailing_slash = false;
            }
        }
    }
    let mut out = format!("/{}", segments.join("/"));
    if trailing_slash && !segments.is_empty() {
        out.push('/');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_nginx_routes_alike_are_normalised_alike() {
        let table: [(&str, &str); 14] = [
            ("/slow", "/slow"),
            ("/sl%6Fw", "/slow"),
            ("/sl%6fw", "/slow"),
            ("//slow", "/slow"),
            ("/./slow", "/slow"),
            ("/fast/../slow", "/slow"),
            ("/../../slow", "/slow"),
            ("/a//b///c", "/a/b/c"),
            ("/a/b/", "/a/b/"),
            ("/a/b/.", "/a/b/"),
            ("/a/b/..", "/a/"),
            ("/sl%2fow", "/sl%2Fow"),
            ("/caf\u{e9}", "/caf%C3%A9"),
            ("/", "/"),
        ];
        for (raw, expected) in table {
            assert_eq!(normalise(raw.as_bytes()), expected, "{raw}");
        }
    }

    #[test]
    fn the_path_is_taken_from_every_target_form() {
        let table: [(&str, &str); 6] = [
            ("/a?b=/slow", "/a"),
            ("/a#frag", "/a"),
            ("http://host:8080/v1/x?y", "/v1/x"),
            ("http://host", "/"),
            ("*", "*"),
            ("host:443", "host:443"),
        ];
        for (target, path) in table {
            assert_eq!(path_of(target.as_bytes()), path.as_bytes(), "{target}");
        }
    }

    #[test]
    fn prefixes_match_whole_segments() {
        let table = [
            ("/v1/webhooks/stripe", "/v1/webhooks/stripe", true),
            ("/v1/webhooks/stripe", "/v1/webhooks/stripe/events", true),
            ("/v1/webhooks/stripe", "/v1/webhooks/stripex", false),
            ("/v1/webhooks/", "/v1/webhooks/paypal", true),
            ("/v1/webhooks/stripe", "/health", false),
            ("/", "/anything", true),
        ];
        for (prefix, path, expected) in table {
            assert_eq!(prefix_matches(prefix, path), expected, "{prefix} vs {path}");
        }
    }

    #[test]
    fn requests_match_on_method_and_normalised_path() {
        let rules = HttpRules {
            endpoints: vec![normalise(b"/slow")],
            methods: vec!["POST".into()],
        };
        for target in [
            "/slow",
            "/sl%6Fw",
            "//slow",
            "/./slow",
            "/fast/../slow",
            "/slow?x=1",
        ] {
            assert!(rules.matches("POST", target.as_bytes()), "{target}");
        }
        assert!(!rules.matches("GET", b"/slow"));
        assert!(!rules.matches("POST", b"/slower"));
        assert!(!rules.matches("POST", b"/fast?next=/slow"));
        let any = HttpRules {
            endpoints: vec![],
            methods: vec![],
        };
        assert!(any.matches("DELETE", b"/x"));
    }
}
