//! Running the external programs the lab needs (`ip`, `nft`) with argument vectors,
//! keeping the argv and the program's stderr in the error.

use std::io::Write;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

/// Runs `argv` (with `stdin` fed when given); returns stdout, or an error with the argv
/// and stderr.
pub fn run(argv: &[&str], stdin: Option<&str>) -> Result<String> {
    let Some((program, args)) = argv.split_first() else {
        bail!("empty command");
    };
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot run {program} (is it installed?)"))?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())
            .with_context(|| format!("cannot write to {program}"))?;
    }
    let out = child
        .wait_with_output()
        .with_context(|| format!("waiting for {program}"))?;
    if !out.status.success() {
        bail!(
            "{} failed ({}): {}",
            argv.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `ip ARGS` in network namespace `ns` (`ip -n NS ARGS`).
pub fn ip_in(ns: &str, args: &[&str]) -> Result<String> {
    let mut argv = vec!["ip", "-n", ns];
    argv.extend_from_slice(args);
    run(&argv, None)
}

/// `ip netns exec NS ARGV...`.
pub fn in_ns(ns: &str, argv: &[&str], stdin: Option<&str>) -> Result<String> {
    let mut all = vec!["ip", "netns", "exec", ns];
    all.extend_from_slice(argv);
    run(&all, stdin)
}
