//! Updating a shared file safely: under an exclusive `flock` on a sidecar lock file,
//! read, change, write a temporary file beside it, `fsync`, `rename` over the original.
//!
//! Readers never see half a file (rename is atomic), two runbooks finishing at the same
//! moment do not lose each other's row (the lock serialises read-change-write), and a
//! crash mid-write leaves the old file whole. The lock is taken on `.<name>.lock` in the
//! same directory, not on the file itself: the file is replaced by each write, so a lock
//! on it would guard an inode nobody reads any more. Both helper files are opened without
//! following symbolic links, so a link planted at their names is refused, not followed.
//! A log path that is itself a symbolic link is resolved first, so the link stays and its
//! target is updated.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use crate::error::{Result, VerdictError};

const DEFAULT_MODE: u32 = 0o644;

/// Runs `change(current text)` under the lock and writes its result atomically.
/// A missing file reads as empty. Returns what `change` returned besides the text.
pub fn update<T>(path: &Path, change: impl FnOnce(&str) -> Result<(String, T)>) -> Result<T> {
    let path = resolve(path)?;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| VerdictError::bad(format!("{} is not a file path", path.display())))?
        .to_string_lossy()
        .into_owned();
    let lock_path = dir.join(format!(".{name}.lock"));
    let lock_file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o644)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(&lock_path)
        .map_err(|e| VerdictError::io("cannot open the lock file", &lock_path, e))?;
    let _lock = Flock::lock(lock_file, FlockArg::LockExclusive)
        .map_err(|(_, errno)| VerdictError::io("cannot lock", &lock_path, errno.into()))?;

    let (current, mode) = match std::fs::read_to_string(&path) {
        Ok(text) => {
            let mode =
                std::fs::metadata(&path).map_or(DEFAULT_MODE, |m| m.permissions().mode() & 0o7777);
            (text, mode)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (String::new(), DEFAULT_MODE),
        Err(e) => return Err(VerdictError::io("cannot read", &path, e)),
    };
    let (text, out) = change(&current)?;
    let tmp = write_temp(dir, &name, &text, mode)?;
    if let Err(e) = std::fs::rename(&tmp, &path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(VerdictError::io("cannot replace", &path, e));
    }
    // The rename is durable once the directory is synced; failing that is not worth
    // failing the run over (the row is written).
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(out)
}

/// The path itself, or a symbolic link's target (so the link stays a link).
fn resolve(path: &Path) -> Result<PathBuf> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => std::fs::canonicalize(path)
            .map_err(|e| VerdictError::io("cannot follow the link", path, e)),
        Ok(m) if !m.is_file() => Err(VerdictError::bad(format!(
            "{} is not a regular file",
            path.display()
        ))),
        _ => Ok(path.to_owned()),
    }
}

fn write_temp(dir: &Path, name: &str, text: &str, mode: u32) -> Result<PathBuf> {
    for attempt in 0..100u32 {
        let tmp = dir.join(format!(".{name}.tmp.{}.{attempt}", std::process::id()));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(&tmp);
        let mut file = match file {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(VerdictError::io("cannot create", &tmp, e)),
        };
        let written = file
            .write_all(text.as_bytes())
            .and_then(|()| file.set_permissions(std::fs::Permissions::from_mode(mode)))
            .and_then(|()| file.sync_all());
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(VerdictError::io("cannot write", &tmp, e));
        }
        return Ok(tmp);
    }
    Err(VerdictError::bad(format!(
        "cannot create a temporary file beside {name} in {}: 100 names taken",
        dir.display()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn append(path: &Path, line: &str) {
        update(path, |cur| Ok((format!("{cur}{line}\n"), ()))).unwrap();
    }

    #[test]
    fn a_missing_file_is_created_and_keeps_its_mode_later() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log.md");
        append(&log, "a");
        std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o600)).unwrap();
        append(&log, "b");
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "a\nb\n");
        assert_eq!(
            std::fs::metadata(&log).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn concurrent_writers_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let log = Arc::new(dir.path().join("log.md"));
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let log = Arc::clone(&log);
                std::thread::spawn(move || {
                    for i in 0..10 {
                        append(&log, &format!("{t}-{i}"));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(std::fs::read_to_string(&*log).unwrap().lines().count(), 80);
    }

    #[test]
    fn a_symlinked_log_stays_a_link_and_its_target_changes() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("real.md");
        std::fs::write(&target, "x\n").unwrap();
        let link = dir.path().join("log.md");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        append(&link, "y");
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "x\ny\n");
    }

    #[test]
    fn a_planted_lock_link_is_refused_and_nothing_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "keep").unwrap();
        std::os::unix::fs::symlink(&victim, dir.path().join(".log.md.lock")).unwrap();
        let err = update(&dir.path().join("log.md"), |_| Ok(("x".into(), ()))).unwrap_err();
        assert!(err.to_string().contains(".log.md.lock"), "{err}");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
        assert!(!dir.path().join("log.md").exists());
    }

    #[test]
    fn a_planted_temp_name_is_skipped_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "keep").unwrap();
        let planted = dir
            .path()
            .join(format!(".log.md.tmp.{}.0", std::process::id()));
        std::os::unix::fs::symlink(&victim, &planted).unwrap();
        append(&dir.path().join("log.md"), "row");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("log.md")).unwrap(),
            "row\n"
        );
    }

    #[test]
    fn a_failing_change_leaves_the_file_alone() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log.md");
        append(&log, "a");
        let err = update::<()>(&log, |_| Err(VerdictError::bad("no"))).unwrap_err();
        assert_eq!(err.to_string(), "no");
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "a\n");
    }
}
