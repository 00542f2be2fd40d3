//! The docs match the code (issue 14): every command example of the five tools in
//! README.md and docs/*.md (in fenced or indented code blocks; `\` continues a line,
//! `# ...` is a comment) is run the way a person would, with `--dry-run`, in the setting
//! it is written for (`common::examples`), and must plan without error. `--stop RUN_ID`
//! is answered as a run id that never ran; `--version` and `TOOL summary FILE` print.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure

mod common;

use std::path::{Path, PathBuf};

use common::examples::{Setting, commands_in};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// README.md and every docs/*.md.
fn doc_files() -> Vec<PathBuf> {
    let mut files = vec![repo().join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(repo().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

/// The lines of a Markdown text's code blocks (fenced, or indented by four spaces
/// outside a fence), each block ending with an empty line.
fn code_lines(markdown: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut fenced = false;
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            lines.push("");
        } else if fenced || line.starts_with("    ") {
            lines.push(line);
        } else {
            lines.push("");
        }
    }
    lines
}

/// `tool`'s command examples in the docs, as (where, arguments without the name).
fn doc_examples(tool: &str) -> Vec<(String, Vec<String>)> {
    let mut all = Vec::new();
    for file in doc_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        let name = file
            .strip_prefix(repo())
            .unwrap_or(Path::new("?"))
            .display()
            .to_string();
        let commands =
            commands_in(tool, &code_lines(&text), false).unwrap_or_else(|e| panic!("{name}: {e}"));
        for command in commands {
            let args = command
                .split_whitespace()
                .skip(1)
                .map(str::to_owned)
                .collect();
            all.push((format!("{name}: {command}"), args));
        }
    }
    all
}

fn run_doc_examples(tool: &'static str) -> usize {
    let examples = doc_examples(tool);
    let setting = Setting::for_tool(tool);
    for (source, args) in &examples {
        setting.check(source, args);
    }
    examples.len()
}

#[test]
fn root_cpu_hog_examples_in_the_docs_plan() {
    common::require_root("a cpu cgroup with a quota, as a container's CPU limit");
    assert!(run_doc_examples("cpu-hog") >= 10);
}

#[test]
fn root_memory_leak_examples_in_the_docs_plan() {
    common::require_root("memory cgroups with limits, as a container's and EXP-006's");
    assert!(run_doc_examples("memory-leak") >= 5);
}

#[test]
fn root_net_partition_examples_in_the_docs_plan() {
    common::require_root("a network namespace with its own /etc/hosts; nft for --cleanup");
    assert!(run_doc_examples("net-partition") >= 4);
}

#[test]
fn root_latency_injector_examples_in_the_docs_plan() {
    common::require_root("a network namespace with its own /etc/hosts");
    assert!(run_doc_examples("latency-injector") >= 5);
}

#[test]
fn pod_killer_examples_in_the_docs_plan() {
    assert!(run_doc_examples("pod-killer") >= 4);
}

#[test]
fn code_blocks_are_read_with_continuations_and_comments() {
    let text = "Run:\n\n```bash\npod-killer -n x --delay 0 \\\n  --count 1   # one kill\nkubectl get pods\n```\n\n    pod-killer --evict\n\npod-killer in prose\n";
    let commands = commands_in("pod-killer", &code_lines(text), false).unwrap();
    assert_eq!(
        commands,
        ["pod-killer -n x --delay 0 --count 1", "pod-killer --evict"]
    );
}
