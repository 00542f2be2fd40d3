//! A state directory of the registry, trusted or refused (see the module above for the
//! rules), and the no-follow file operations inside it.

use std::fs;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, open, openat};
use nix::sys::stat::{FileStat, Mode, SFlag, fstat};
use nix::unistd::{Uid, UnlinkatFlags, unlinkat};
use tracing::warn;

/// An instance file is a few dozen bytes; anything larger is not ours.
const MAX_FILE_BYTES: u64 = 4096;

/// A state directory that passed the trust checks, held open by descriptor so that a
/// rename or symlink swap of its path after the check changes nothing.
#[derive(Debug)]
pub(super) struct StateDir {
    pub(super) path: PathBuf,
    fd: OwnedFd,
}

/// Why a directory is not used.
#[derive(Debug)]
pub(super) enum Unusable {
    /// It does not exist (normal; not worth a warning when reading).
    Missing,
    /// It exists but must not be trusted, or cannot be opened: the reason.
    Refused(String),
}

/// True when `stat` is owned by the effective user or root and nobody else can write it.
fn trusted_owner_and_mode(stat: &FileStat) -> std::result::Result<(), String> {
    let me = Uid::effective().as_raw();
    if stat.st_uid != me && stat.st_uid != 0 {
        return Err(format!(
            "owned by uid {} (only uid {me} or root are trusted)",
            stat.st_uid
        ));
    }
    if stat.st_mode & 0o022 != 0 {
        return Err(format!(
            "writable by group or others (mode {:o})",
            stat.st_mode & 0o7777
        ));
    }
    Ok(())
}

fn is_kind(stat: &FileStat, kind: SFlag) -> bool {
    SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT == kind
}

impl StateDir {
    /// Opens `path` if it is a trusted directory; with `create`, makes it (mode 0700) when
    /// it is missing.
    pub(super) fn open(path: &Path, create: bool) -> std::result::Result<StateDir, Unusable> {
        if create {
            if let Some(parent) = path.parent() {
                let _ = fs::create_dir_all(parent);
            }
            match nix::unistd::mkdir(path, Mode::from_bits_truncate(0o700)) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(Unusable::Refused(format!("cannot create it: {e}"))),
            }
        }
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = match open(path, flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => return Err(Unusable::Missing),
            Err(Errno::ELOOP | Errno::ENOTDIR) => {
                return Err(Unusable::Refused(
                    "not a directory (a symlink or a file)".into(),
                ));
            }
            Err(e) => return Err(Unusable::Refused(format!("cannot open it: {e}"))),
        };
        let stat = fstat(&fd).map_err(|e| Unusable::Refused(format!("cannot stat it: {e}")))?;
        trusted_owner_and_mode(&stat).map_err(Unusable::Refused)?;
        Ok(StateDir {
            path: path.to_path_buf(),
            fd,
        })
    }

    /// The names in the directory.
    pub(super) fn names(&self) -> Vec<String> {
        let Ok(dup) = self.fd.try_clone() else {
            return Vec::new();
        };
        let Ok(mut dir) = nix::dir::Dir::from_fd(dup) else {
            return Vec::new();
        };
        dir.iter()
            .flatten()
            .filter_map(|entry| entry.file_name().to_str().ok().map(str::to_owned))
            .filter(|name| name != "." && name != "..")
            .collect()
    }

    /// The content of a trusted regular file in the directory; None for anything else.
    pub(super) fn read(&self, name: &str) -> Option<Vec<u8>> {
        let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
        let fd = openat(self.fd.as_fd(), name, flags, Mode::empty()).ok()?;
        let stat = fstat(&fd).ok()?;
        if !is_kind(&stat, SFlag::S_IFREG) {
            return None;
        }
        if let Err(why) = trusted_owner_and_mode(&stat) {
            warn!("ignoring {}: {why}", self.path.join(name).display());
            return None;
        }
        if u64::try_from(stat.st_size).unwrap_or(u64::MAX) > MAX_FILE_BYTES {
            return None;
        }
        let mut body = Vec::new();
        fs::File::from(fd)
            .take(MAX_FILE_BYTES)
            .read_to_end(&mut body)
            .ok()?;
        Some(body)
    }

    /// Creates `name` (mode 0600) with `body`; fails if anything of that name exists.
    pub(super) fn create(&self, name: &str, body: &[u8]) -> std::io::Result<()> {
        let flags =
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = openat(
            self.fd.as_fd(),
            name,
            flags,
            Mode::from_bits_truncate(0o600),
        )?;
        let mut file = fs::File::from(fd);
        let written = file.write_all(body).and_then(|()| file.sync_data());
        if written.is_err() {
            self.remove(name);
        }
        written
    }

    pub(super) fn remove(&self, name: &str) {
        let _ = unlinkat(self.fd.as_fd(), name, UnlinkatFlags::NoRemoveDir);
    }
}
