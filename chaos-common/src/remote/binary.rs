//! Which binary exec delivery copies into the pod: this process's own executable when it
//! is statically linked (an installed release), else the static set in `dist/`
//! (`scripts/build-static.sh`; `$CHAOS_DIST` names another directory). A dynamically
//! linked binary would need a libc the container may not have, so it is refused with the
//! command that builds the static set. The ELF header also gives the architecture, which
//! must match the pod's `uname -m`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{ChaosError, Result};

/// `PT_INTERP`: the program header of a dynamically linked executable.
const PT_INTERP: u32 = 3;

/// What the ELF header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ElfInfo {
    /// `e_machine`.
    pub machine: u16,
    /// True when the file asks for a program interpreter (dynamic linking).
    pub dynamic: bool,
}

impl ElfInfo {
    /// The architecture as `uname -m` prints it.
    pub fn arch(&self) -> String {
        match self.machine {
            62 => "x86_64".into(),
            183 => "aarch64".into(),
            40 => "arm".into(),
            other => format!("ELF machine {other}"),
        }
    }
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        b.get(at..at.checked_add(2)?)?.try_into().ok()?,
    ))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        b.get(at..at.checked_add(8)?)?.try_into().ok()?,
    ))
}

/// Reads a 64-bit little-endian ELF executable's header and program headers.
pub fn inspect(bytes: &[u8]) -> std::result::Result<ElfInfo, String> {
    if bytes.get(..4) != Some(b"\x7fELF") {
        return Err("not an ELF file".into());
    }
    if bytes.get(4) != Some(&2) || bytes.get(5) != Some(&1) {
        return Err("not a 64-bit little-endian ELF file".into());
    }
    let bad = || "truncated ELF header".to_owned();
    let machine = u16_at(bytes, 18).ok_or_else(bad)?;
    let phoff = usize::try_from(u64_at(bytes, 32).ok_or_else(bad)?).map_err(|_| bad())?;
    let phentsize = usize::from(u16_at(bytes, 54).ok_or_else(bad)?);
    let phnum = usize::from(u16_at(bytes, 56).ok_or_else(bad)?);
    let mut dynamic = false;
    for i in 0..phnum {
        let at = phoff
            .checked_add(i.checked_mul(phentsize).ok_or_else(bad)?)
            .ok_or_else(bad)?;
        if u32_at(bytes, at).ok_or_else(bad)? == PT_INTERP {
            dynamic = true;
        }
    }
    Ok(ElfInfo { machine, dynamic })
}

/// The binary chosen for delivery, read whole (it goes into the tar stream).
#[derive(Clone)]
pub struct Binary {
    pub path: PathBuf,
    pub bytes: Vec<u8>,
    pub elf: ElfInfo,
    /// Set when the binary was built from another commit than this process.
    pub warning: Option<String>,
}

impl std::fmt::Debug for Binary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Binary")
            .field("path", &self.path)
            .field("len", &self.bytes.len())
            .field("elf", &self.elf)
            .finish()
    }
}

/// The ELF header and program headers of `path` (its first 64 KiB hold them: a debug
/// build is hundreds of megabytes and only the chosen file is read whole).
fn header(path: &Path) -> Result<ElfInfo> {
    use std::io::Read;
    let mut head = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(64 * 1024).read_to_end(&mut head))
        .map_err(|e| ChaosError::io("cannot read", path, e))?;
    inspect(&head).map_err(|e| {
        ChaosError::Precondition(format!(
            "{}: {e}; cannot copy it into a pod",
            path.display()
        ))
    })
}

fn read(path: &Path) -> Result<(Vec<u8>, ElfInfo)> {
    let elf = header(path)?;
    let bytes = std::fs::read(path).map_err(|e| ChaosError::io("cannot read", path, e))?;
    Ok((bytes, elf))
}

/// The directory of the static set: `$CHAOS_DIST`, else this workspace's `dist/`.
pub fn dist_dir() -> PathBuf {
    match std::env::var_os("CHAOS_DIST").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../dist"),
    }
}

/// The commit a tool binary says it was built from (`TOOL 0.1.0 (commit X, built D)`).
fn commit_of(path: &Path) -> Option<String> {
    let out = Command::new(path).arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let rest = text.split("(commit ").nth(1)?;
    Some(rest.split([',', ')']).next()?.trim().to_owned())
}

/// The static binary of `tool` to copy: this executable when static, else `dist/`.
pub fn locate(tool: &str) -> Result<Binary> {
    let own = Path::new("/proc/self/exe");
    if !header(own)?.dynamic {
        let (bytes, elf) = read(own)?;
        return Ok(Binary {
            path: std::fs::read_link(own).unwrap_or_else(|_| own.to_path_buf()),
            bytes,
            elf,
            warning: None,
        });
    }
    let path = dist_dir().join(tool);
    let path = std::fs::canonicalize(&path).unwrap_or(path);
    let build =
        "scripts/build-static.sh (or set CHAOS_DIST to a directory holding the static tools)";
    if !path.is_file() {
        return Err(ChaosError::Precondition(format!(
            "this {tool} is dynamically linked and {} does not exist: remote mode copies a \
             statically linked {tool} into the pod; build the static set with {build}",
            path.display()
        )));
    }
    let (bytes, elf) = read(&path)?;
    if elf.dynamic {
        return Err(ChaosError::Precondition(format!(
            "{} is dynamically linked: remote mode copies a statically linked {tool} into the \
             pod; build the static set with {build}",
            path.display()
        )));
    }
    let ours = env!("CHAOS_GIT_COMMIT");
    let warning = match commit_of(&path) {
        Some(theirs) if theirs != ours => Some(format!(
            "{} was built from commit {theirs}, this {tool} from {ours}: rebuild it with \
             scripts/build-static.sh if the flags differ",
            path.display()
        )),
        _ => None,
    };
    Ok(Binary {
        path,
        bytes,
        elf,
        warning,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ELF64 header with one program header of type `ptype`.
    fn elf(machine: u16, ptype: u32) -> Vec<u8> {
        let mut b = vec![0u8; 64 + 56];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = 2;
        b[5] = 1;
        b[18..20].copy_from_slice(&machine.to_le_bytes());
        b[32..40].copy_from_slice(&64u64.to_le_bytes());
        b[54..56].copy_from_slice(&56u16.to_le_bytes());
        b[56..58].copy_from_slice(&1u16.to_le_bytes());
        b[64..68].copy_from_slice(&ptype.to_le_bytes());
        b
    }

    #[test]
    fn static_and_dynamic_executables_are_told_apart() {
        assert_eq!(
            inspect(&elf(62, 1)),
            Ok(ElfInfo {
                machine: 62,
                dynamic: false
            })
        );
        let dynamic = inspect(&elf(183, PT_INTERP)).unwrap_or_else(|e| panic!("{e}"));
        assert!(dynamic.dynamic);
        assert_eq!(dynamic.arch(), "aarch64");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(inspect(b"#!/bin/sh\n").is_err());
        assert!(inspect(&elf(62, 1)[..40]).is_err());
        let mut huge = elf(62, 1);
        huge[32..40].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(inspect(&huge).is_err());
        let mut elf32 = elf(62, 1);
        elf32[4] = 1;
        assert!(inspect(&elf32).is_err());
    }

    #[test]
    fn this_test_binary_is_read() -> Result<()> {
        let (_, elf) = read(Path::new("/proc/self/exe"))?;
        assert_eq!(elf.arch(), std::env::consts::ARCH);
        Ok(())
    }
}
