//! The netem engine's guard (see `guard.rs`): `latency-injector __netem-guard ROOT
//! RUN_FOR_MS DEV...` deletes `root handle ROOT:` on each DEV if the injector dies without
//! reverting or hangs past its run. The kernel deletes a root only when its handle is the
//! one named, so the guard can never remove a qdisc that is not the run's.

use std::ffi::OsString;
use std::process::ExitCode;
use std::time::Duration;

use chaos_common::Result;

use crate::guard::{self, Guard};
use crate::tc;

/// The hidden first argument of the netem guard.
pub const NETEM_GUARD_ARG: &str = "__netem-guard";

/// Starts the guard of root `root` on `devices`, before the first qdisc is added.
pub async fn start(root: u16, devices: &[String], run_for: Duration) -> Result<Guard> {
    let mut args = vec![format!("{root:x}"), run_for.as_millis().to_string()];
    args.extend(devices.iter().cloned());
    Guard::start(NETEM_GUARD_ARG, &args).await
}

/// An interface name the kernel could have given (1-15 bytes, no '/', ':' or spaces).
fn valid_device(name: &str) -> bool {
    (1..=15).contains(&name.len())
        && name != "."
        && name != ".."
        && !name
            .bytes()
            .any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace())
}

/// `ROOT RUN_FOR_MS DEV...`, only for a root in our range.
fn parse(args: &[OsString]) -> Option<(u16, Duration, Vec<String>)> {
    let [root, run_for, devices @ ..] = args else {
        return None;
    };
    let root = u16::from_str_radix(root.to_str()?, 16).ok()?;
    let run_for = Duration::from_millis(run_for.to_str()?.parse().ok()?);
    let devices: Vec<String> = devices
        .iter()
        .map(|d| d.to_str().filter(|d| valid_device(d)).map(str::to_owned))
        .collect::<Option<_>>()?;
    let ours = (tc::FIRST_ROOT..=tc::LAST_ROOT).contains(&root);
    (ours && !devices.is_empty()).then_some((root, run_for, devices))
}

/// Deletes the run's root on every device; already gone is fine.
pub fn remove(root: u16, devices: &[String]) -> Result<()> {
    let mut first_error = None;
    for dev in devices {
        if let Err(e) = tc::run_blocking(&tc::root_del(dev, root), tc::GONE) {
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// The guard process.
pub fn main(args: &[OsString]) -> ExitCode {
    let Some((root, run_for, devices)) = parse(args) else {
        guard::say(
            "netem",
            &format!(
                "refusing to guard {args:?}: expected a latency-injector root handle, a duration in ms and interfaces"
            ),
        );
        return ExitCode::from(2);
    };
    guard::serve("netem", run_for, &|| remove(root, &devices))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[test]
    fn guards_only_our_roots_on_real_interface_names() {
        let ok = parse(&args(&["4c01", "60000", "eth0", "vc12"])).unwrap();
        assert_eq!(
            ok,
            (
                0x4c01,
                Duration::from_secs(60),
                vec!["eth0".to_owned(), "vc12".to_owned()]
            )
        );
        for bad in [
            &["1", "60000", "eth0"][..],
            &["8001", "60000", "eth0"],
            &["4c01", "60000"],
            &["4c01", "x", "eth0"],
            &["4c01", "60000", "a/b"],
            &["4c01", "60000", "averyveryverylongname"],
            &["zz", "60000", "eth0"],
        ] {
            assert!(parse(&args(bad)).is_none(), "{bad:?}");
        }
    }
}
