//! The tar stream exec delivery writes into `tar -x -f - -C DIR` (what `kubectl cp`
//! does): a POSIX ustar archive holding one directory `chaos-TOOL-RUNID/` (mode 0700) and
//! the executable `chaos-TOOL-RUNID/TOOL` (mode 0755). Names are built from the tool's
//! name and a validated run id, so they are short, relative and plain.

const BLOCK: usize = 512;

/// The 512-byte ustar header of one entry.
fn header(name: &str, mode: u32, size: u64, typeflag: u8, mtime: u64) -> [u8; BLOCK] {
    let mut h = [0u8; BLOCK];
    let name = name.as_bytes();
    h[..name.len().min(100)].copy_from_slice(&name[..name.len().min(100)]);
    let octal = |h: &mut [u8; BLOCK], at: usize, len: usize, value: u64| {
        let text = format!("{value:0width$o}\0", width = len - 1);
        h[at..at + len].copy_from_slice(&text.as_bytes()[..len]);
    };
    octal(&mut h, 100, 8, u64::from(mode));
    octal(&mut h, 108, 8, 0); // uid: the extracting user owns what it writes
    octal(&mut h, 116, 8, 0);
    octal(&mut h, 124, 12, size);
    octal(&mut h, 136, 12, mtime);
    h[156] = typeflag;
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    // The checksum is computed with its own field as spaces.
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
    let text = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(text.as_bytes());
    h
}

/// An archive with `dir/` and `dir/file` holding `content`, executable.
pub fn archive(dir: &str, file: &str, content: &[u8], mtime: u64) -> Vec<u8> {
    let size = content.len();
    let padded = size.div_ceil(BLOCK) * BLOCK;
    let mut out = Vec::with_capacity(3 * BLOCK + padded + 2 * BLOCK);
    out.extend_from_slice(&header(&format!("{dir}/"), 0o700, 0, b'5', mtime));
    out.extend_from_slice(&header(
        &format!("{dir}/{file}"),
        0o755,
        size as u64,
        b'0',
        mtime,
    ));
    out.extend_from_slice(content);
    out.resize(out.len() + (padded - size), 0);
    // Two zero blocks end the archive.
    out.resize(out.len() + 2 * BLOCK, 0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn headers_are_ustar_with_a_valid_checksum() {
        let a = archive("chaos-cpu-hog-r1", "cpu-hog", b"hello", 1_700_000_000);
        assert_eq!(a.len() % BLOCK, 0);
        assert_eq!(&a[257..262], b"ustar");
        assert_eq!(a[156], b'5');
        assert_eq!(a[BLOCK + 156], b'0');
        let mut copy = a[BLOCK..2 * BLOCK].to_vec();
        let stored = String::from_utf8_lossy(&copy[148..154]).into_owned();
        copy[148..156].copy_from_slice(b"        ");
        let sum: u32 = copy.iter().map(|b| u32::from(*b)).sum();
        assert_eq!(u32::from_str_radix(&stored, 8).ok(), Some(sum));
    }

    /// The judge: the system's own tar extracts it with the right names and modes.
    #[test]
    fn gnu_tar_extracts_it() -> std::result::Result<(), Box<dyn std::error::Error>> {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir()?;
        let content: Vec<u8> = (0..1500u32).map(|i| (i % 251) as u8).collect();
        let a = archive("chaos-cpu-hog-r1", "cpu-hog", &content, 1_700_000_000);
        let file = dir.path().join("a.tar");
        std::fs::write(&file, &a)?;
        let out = Command::new("tar")
            .arg("-x")
            .arg("-f")
            .arg(&file)
            .arg("-C")
            .arg(dir.path())
            .output()?;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let extracted = dir.path().join("chaos-cpu-hog-r1/cpu-hog");
        assert_eq!(std::fs::read(&extracted)?, content);
        assert_eq!(
            std::fs::metadata(&extracted)?.permissions().mode() & 0o777,
            0o755
        );
        let d = std::fs::metadata(dir.path().join("chaos-cpu-hog-r1"))?;
        assert_eq!(d.permissions().mode() & 0o777, 0o700);
        Ok(())
    }
}
