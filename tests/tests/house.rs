//! The house rules of docs/design.md that code review alone would let slip:
//! - no import circles: no module uses a module that (directly or through others) uses it
//!   back, in any crate of the workspace. A module and its own submodules may use each
//!   other (the parent declares the child and re-exports from it; the child may use what
//!   the parent defines): those edges are the module tree itself, not imports between
//!   rooms, and are left out;
//! - every tool keeps its fault in `src/fault.rs`.
//!
//! Modules are read from the source files: paths starting with `crate::`, `super::`,
//! `self::` (with `{...}` groups) and a child module's name are resolved to the longest
//! module they name. Test-only files (`tests.rs`, `*_tests.rs`) are not part of the graph.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Module = Vec<String>;

const CRATES: [&str; 8] = [
    "chaos-common/src",
    "cpu-hog/src",
    "memory-leak/src",
    "net-partition/src",
    "latency-injector/src",
    "pod-killer/src",
    "chaos-verdict/src",
    "tests/src",
];

const TOOLS: [&str; 5] = [
    "cpu-hog",
    "memory-leak",
    "net-partition",
    "latency-injector",
    "pod-killer",
];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Module path of a source file (`a/b.rs` and `a/b/mod.rs` are `a::b`; lib.rs, main.rs
/// and binaries are the crate root).
fn module_of(src: &Path, file: &Path) -> Option<Module> {
    let rel = file.strip_prefix(src).ok()?.with_extension("");
    let mut parts: Module = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.first().is_some_and(|p| p == "bin") {
        return None;
    }
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    if parts == ["lib"] || parts == ["main"] {
        parts.clear();
    }
    Some(parts)
}

fn is_test_file(file: &Path) -> bool {
    let name = file.file_name().unwrap().to_string_lossy();
    name == "tests.rs" || name.ends_with("_tests.rs")
}

/// The source without comments and string literals (their text is not code).
fn code_only(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let line = line.split("//").next().unwrap_or("");
        let mut in_string = false;
        let mut prev = ' ';
        for c in line.chars() {
            if c == '"' && prev != '\\' {
                in_string = !in_string;
            } else if !in_string {
                out.push(c);
            }
            prev = c;
        }
        out.push('\n');
    }
    out
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Every path expression in `code`: its segments, with `{a, b::c}` groups expanded to one
/// path per member (first segment of the member only).
fn paths(code: &str) -> Vec<Vec<String>> {
    let chars: Vec<char> = code.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let starts_word =
            is_ident(chars[i]) && (i == 0 || !(is_ident(chars[i - 1]) || chars[i - 1] == ':'));
        if !starts_word {
            i += 1;
            continue;
        }
        let mut segments = Vec::new();
        let mut j = i;
        loop {
            let start = j;
            while j < chars.len() && is_ident(chars[j]) {
                j += 1;
            }
            segments.push(chars[start..j].iter().collect::<String>());
            if j + 2 < chars.len() && chars[j] == ':' && chars[j + 1] == ':' {
                j += 2;
                if chars[j] == '{' {
                    let close = chars[j..]
                        .iter()
                        .position(|&c| c == '}')
                        .map_or(chars.len(), |p| j + p);
                    let inner: String = chars[j + 1..close].iter().collect();
                    for member in inner.split(',') {
                        let first = member.trim().split("::").next().unwrap_or("").trim();
                        if !first.is_empty() {
                            let mut path = segments.clone();
                            path.push(first.to_owned());
                            out.push(path);
                        }
                    }
                    j = close;
                    segments.clear();
                    break;
                }
                if j < chars.len() && is_ident(chars[j]) {
                    continue;
                }
            }
            break;
        }
        if segments.len() > 1
            || (segments.len() == 1 && ["crate", "super", "self"].contains(&segments[0].as_str()))
        {
            out.push(segments);
        }
        i = j.max(i + 1);
    }
    out
}

/// The module a path names, resolved from module `me`.
fn target(path: &[String], me: &Module, modules: &BTreeSet<Module>) -> Option<Module> {
    let absolute: Module = match path.first().map(String::as_str) {
        Some("crate") => path[1..].to_vec(),
        Some("self") => me.iter().chain(&path[1..]).cloned().collect(),
        Some("super") => {
            let mut base = me.clone();
            let mut rest = path;
            while rest.first().is_some_and(|s| s == "super") {
                base.pop();
                rest = &rest[1..];
            }
            base.into_iter().chain(rest.iter().cloned()).collect()
        }
        Some(first) => {
            // A child module used by its bare name.
            let child: Module = me.iter().cloned().chain([first.to_owned()]).collect();
            if !modules.contains(&child) {
                return None;
            }
            me.iter().chain(path).cloned().collect()
        }
        None => return None,
    };
    (0..=absolute.len())
        .rev()
        .map(|k| absolute[..k].to_vec())
        .find(|m| modules.contains(m))
}

fn related(a: &Module, b: &Module) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

/// Strongly connected components of more than one module.
fn circles(graph: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<Vec<Module>> {
    // Kosaraju: order by finish time, then walk the reversed graph.
    fn visit(
        v: &Module,
        g: &BTreeMap<Module, BTreeSet<Module>>,
        seen: &mut BTreeSet<Module>,
        out: &mut Vec<Module>,
    ) {
        if !seen.insert(v.clone()) {
            return;
        }
        for w in g.get(v).into_iter().flatten() {
            visit(w, g, seen, out);
        }
        out.push(v.clone());
    }
    let mut order = Vec::new();
    let mut seen = BTreeSet::new();
    for v in graph.keys() {
        visit(v, graph, &mut seen, &mut order);
    }
    let mut reversed: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    for (v, ws) in graph {
        for w in ws {
            reversed.entry(w.clone()).or_default().insert(v.clone());
        }
    }
    let mut seen = BTreeSet::new();
    let mut found = Vec::new();
    for v in order.iter().rev() {
        let mut component = Vec::new();
        visit(v, &reversed, &mut seen, &mut component);
        if component.len() > 1 {
            found.push(component);
        }
    }
    found
}

#[test]
fn no_module_imports_a_module_that_imports_it_back() {
    let mut report = Vec::new();
    for krate in CRATES {
        let src = repo().join(krate);
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        let located: Vec<(Module, PathBuf)> = files
            .iter()
            .filter_map(|f| module_of(&src, f).map(|m| (m, f.clone())))
            .collect();
        let modules: BTreeSet<Module> = located.iter().map(|(m, _)| m.clone()).collect();
        let mut graph: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
        for (me, file) in &located {
            let edges = graph.entry(me.clone()).or_default();
            if is_test_file(file) {
                continue;
            }
            let code = code_only(&std::fs::read_to_string(file).unwrap());
            for path in paths(&code) {
                if let Some(to) = target(&path, me, &modules)
                    && !related(me, &to)
                {
                    edges.insert(to);
                }
            }
        }
        for circle in circles(&graph) {
            let names: Vec<String> = circle.iter().map(|m| m.join("::")).collect();
            report.push(format!("{krate}: {}", names.join(" <-> ")));
        }
    }
    assert!(report.is_empty(), "import circles:\n{}", report.join("\n"));
}

#[test]
fn the_checker_sees_a_circle() {
    let a: Module = vec!["a".into()];
    let b: Module = vec!["b".into()];
    let modules: BTreeSet<Module> = [a.clone(), b.clone(), vec![]].into_iter().collect();
    let from_a = paths(&code_only(
        "use crate::b::{Thing, other};\nfn f() { super::b::g(); }",
    ));
    let from_b = paths(&code_only(
        "use crate::{a, c};\n// crate::nothing\nlet s = \"crate::x\";",
    ));
    let mut graph: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    for p in &from_a {
        if let Some(t) = target(p, &a, &modules) {
            graph.entry(a.clone()).or_default().insert(t);
        }
    }
    for p in &from_b {
        if let Some(t) = target(p, &b, &modules) {
            graph.entry(b.clone()).or_default().insert(t);
        }
    }
    graph.entry(a.clone()).or_default().remove(&vec![]);
    graph.entry(b.clone()).or_default().remove(&vec![]);
    assert_eq!(circles(&graph).len(), 1, "{graph:?}");
}

#[test]
fn every_tool_keeps_its_fault_in_fault_rs() {
    for tool in TOOLS {
        let file = repo().join(tool).join("src/fault.rs");
        let text =
            std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        assert!(
            text.contains("impl Fault for"),
            "{} has no `impl Fault for`",
            file.display()
        );
    }
}
