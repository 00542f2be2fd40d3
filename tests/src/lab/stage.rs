//! The programs containers run, where every user can reach them: the workspace's build
//! directory may sit under a directory that only root can enter (`/root/...`), and the
//! platform's containers run as uid 1001. The lab links (or, across filesystems, copies)
//! `lab-service` and the static tools of `dist/` into its state directory
//! (`/run/chaos-lab/<id>/bin`, mode 0755) and runs them from there (containers see /run
//! read-only; only the pods' directories are hidden from them).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{Context, Result};

use super::images::ImageDirs;

/// The programs the image table names.
const PROGRAMS: [&str; 2] = ["lab-service", "lab-init"];

fn place(from: &Path, to: &Path) -> Result<()> {
    let _ = std::fs::remove_file(to);
    if std::fs::hard_link(from, to).is_err() {
        std::fs::copy(from, to)
            .with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
        std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(())
}

fn open_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("mkdir {}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
        .with_context(|| format!("chmod {}", dir.display()))
}

/// Stages `dirs` under `to`; the staged directories. A missing `dist/` stays missing
/// (the chaos-tools image then says how to build it).
pub fn stage(dirs: &ImageDirs, to: &Path) -> Result<ImageDirs> {
    // Every directory from the state root down must be enterable by the container's user.
    for dir in to
        .ancestors()
        .take_while(|d| d.starts_with(super::plan::STATE_ROOT))
    {
        open_dir(dir)?;
    }
    for program in PROGRAMS {
        let from = dirs.bin_dir.join(program);
        if from.is_file() {
            place(&from, &to.join(program))?;
        }
    }
    let dist = to.join("dist");
    if dirs.dist_dir.is_dir() {
        open_dir(&dist)?;
        for entry in std::fs::read_dir(&dirs.dist_dir)
            .with_context(|| format!("cannot read {}", dirs.dist_dir.display()))?
            .flatten()
        {
            if entry.file_type().is_ok_and(|t| t.is_file()) {
                place(&entry.path(), &dist.join(entry.file_name()))?;
            }
        }
    }
    Ok(ImageDirs {
        bin_dir: to.to_path_buf(),
        dist_dir: if dirs.dist_dir.is_dir() {
            dist
        } else {
            dirs.dist_dir.clone()
        },
    })
}
