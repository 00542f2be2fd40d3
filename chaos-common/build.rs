//! Embeds the git commit and the build date for `--version` and the report's `version`
//! (`CHAOS_GIT_COMMIT`, `CHAOS_BUILD_DATE`). Outside a git checkout the commit is
//! `unknown`; `SOURCE_DATE_EPOCH` (reproducible builds) sets the date.

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

fn main() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let commit = Command::new("git")
        .arg("-C")
        .arg(&repo)
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .filter(|c| !c.is_empty() && c.bytes().all(|b| b.is_ascii_hexdigit()))
        .unwrap_or_else(|| "unknown".to_owned());
    let epoch = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
        });
    println!("cargo:rustc-env=CHAOS_GIT_COMMIT={commit}");
    println!(
        "cargo:rustc-env=CHAOS_BUILD_DATE={}",
        civil_date(epoch / 86_400)
    );
    // A new commit (HEAD moves, or the branch it names does) rebuilds the version. Only
    // paths that exist: cargo reruns a build script on every build for a missing one (a
    // worktree's `.git` is a file, its HEAD lives elsewhere).
    println!("cargo:rerun-if-changed=build.rs");
    let git_dir = |flag: &str| {
        Command::new("git")
            .arg("-C")
            .arg(&repo)
            .args(["rev-parse", "--path-format=absolute", flag])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| std::path::PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
    };
    let mut watched = Vec::new();
    if let Some(dir) = git_dir("--git-dir") {
        watched.push(dir.join("HEAD"));
    }
    if let Some(dir) = git_dir("--git-common-dir") {
        watched.push(dir.join("refs").join("heads"));
        watched.push(dir.join("packed-refs"));
    }
    for path in watched.iter().filter(|p| p.exists()) {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
}

/// YYYY-MM-DD of a day count since 1970-01-01 (proleptic Gregorian; H. Hinnant's
/// days-to-civil algorithm).
fn civil_date(days: u64) -> String {
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}
