//! What an operator installs: `scripts/install.sh` puts the static tools, their man pages
//! and shell completions under a prefix (and `--uninstall` removes exactly those), `man`
//! finds the pages, bash completes the flags; `--version` names the commit and build date,
//! and the report's `version` the commit.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

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

fn ok(cmd: &mut Command) -> String {
    let out = common::run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn install(prefix: &Path, extra: &[&str]) -> String {
    ok(Command::new(repo().join("scripts/install.sh"))
        .arg(prefix)
        .args(extra)
        .arg("--from")
        .arg(repo().join("dist")))
}

#[test]
fn install_puts_binaries_man_pages_and_completions_where_tools_look_and_uninstall_removes_only_them()
 {
    let tmp = tempfile::tempdir().unwrap();
    let prefix = tmp.path().join("prefix");
    std::fs::create_dir_all(prefix.join("bin")).unwrap();
    std::fs::write(prefix.join("bin/someone-elses-tool"), "keep me").unwrap();
    let said = install(&prefix, &[]);
    for tool in TOOLS {
        for file in [
            format!("bin/{tool}"),
            format!("share/man/man1/{tool}.1"),
            format!("share/bash-completion/completions/{tool}"),
            format!("share/zsh/site-functions/_{tool}"),
            format!("share/fish/vendor_completions.d/{tool}.fish"),
        ] {
            let path = prefix.join(&file);
            assert!(path.is_file(), "{file} not installed");
            assert!(
                said.contains(&path.display().to_string()),
                "not said: {file}\n{said}"
            );
        }
    }

    // `man TOOL` finds the page through MANPATH, as it would under /usr/local.
    let page = ok(Command::new("man")
        .env("MANPATH", prefix.join("share/man"))
        .env("MANWIDTH", "100")
        .args(["-P", "cat", "cpu-hog"]));
    assert!(page.contains("NAME") && page.contains("cpu-hog"), "{page}");
    assert!(page.contains("--cpu-percent"), "{page}");

    // bash completion: sourcing the script registers a completion for the tool.
    let script = "source <(\"$1\" completions bash) && complete -p cpu-hog";
    let complete = ok(Command::new("bash")
        .args(["-c", script, "bash"])
        .arg(prefix.join("bin/cpu-hog")));
    assert!(complete.contains("cpu-hog"), "{complete}");
    let words = ok(Command::new("bash")
        .args([
            "-c",
            "source \"$1\" && f=$(complete -p cpu-hog | sed -E 's/.*-F ([^ ]+).*/\\1/') && COMP_WORDS=(cpu-hog --cpu) && COMP_CWORD=1 && \"$f\" cpu-hog --cpu cpu-hog && printf '%s\\n' \"${COMPREPLY[@]}\"",
            "bash",
        ])
        .arg(prefix.join("share/bash-completion/completions/cpu-hog")));
    assert!(words.contains("--cpu-percent"), "{words}");

    ok(Command::new(repo().join("scripts/install.sh"))
        .arg(&prefix)
        .arg("--uninstall"));
    for tool in TOOLS {
        assert!(!prefix.join("bin").join(tool).exists());
        assert!(!prefix.join(format!("share/man/man1/{tool}.1")).exists());
    }
    assert_eq!(
        std::fs::read_to_string(prefix.join("bin/someone-elses-tool")).unwrap(),
        "keep me"
    );
    // Twice is harmless.
    ok(Command::new(repo().join("scripts/install.sh"))
        .arg(&prefix)
        .arg("--uninstall"));
}

#[test]
fn version_names_the_commit_and_build_date_and_the_report_the_commit() {
    let commit =
        ok(Command::new("git")
            .arg("-C")
            .arg(repo())
            .args(["rev-parse", "--short=12", "HEAD"]))
        .trim()
        .to_owned();
    for tool in TOOLS {
        let out = ok(Command::new(common::bin(tool)).arg("--version"));
        assert!(out.starts_with(&format!("{tool} 0.")), "{tool}: {out}");
        assert!(out.contains(&format!("commit {commit}")), "{tool}: {out}");
        assert!(out.contains("built 20"), "{tool}: {out}");
    }
    let (_, report, _) = common::run_json("cpu-hog", &["--dry-run", "--output", "json"]);
    assert!(
        report["version"]
            .as_str()
            .unwrap()
            .ends_with(&format!("+{commit}")),
        "{report:#}"
    );
}

#[test]
fn completions_for_an_unknown_shell_are_bad_input() {
    let out = common::run(Command::new(common::bin("cpu-hog")).args(["completions", "cmd.exe"]));
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&out.stderr).lines().count(), 1);
}
