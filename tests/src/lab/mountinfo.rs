//! Parsing /proc/self/mountinfo (the parts the lab uses).

use std::path::PathBuf;

/// One line of /proc/self/mountinfo, the parts used here.
#[derive(Debug, Clone, PartialEq)]
pub struct MountInfo {
    pub mount_point: PathBuf,
    /// Per-mount options (`rw,nosuid,relatime`).
    pub options: String,
    pub fs_type: String,
    /// Superblock options (`rw,memory` for a cgroup v1 hierarchy).
    pub super_options: String,
}

pub fn parse_mountinfo(text: &str) -> Vec<MountInfo> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let left: Vec<&str> = left.split(' ').collect();
            let right: Vec<&str> = right.split(' ').collect();
            Some(MountInfo {
                mount_point: PathBuf::from(unescape(left.get(4)?)),
                options: (*left.get(5)?).to_owned(),
                fs_type: (*right.first()?).to_owned(),
                super_options: right.get(2).copied().unwrap_or_default().to_owned(),
            })
        })
        .collect()
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            let digits = &field[i + 1..i + 4];
            if let Ok(value) = u8::from_str_radix(digits, 8) {
                out.push(value);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard\n\
        32 31 0:29 / /sys/fs/cgroup/cpu rw,nosuid,relatime - cgroup cgroup rw,cpu\n\
        40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n\
        42 27 254:0 /a /with\\040space rw,relatime shared:1 - ext4 /dev/vda rw\n";

    #[test]
    fn mountinfo_lines_give_point_options_and_type() {
        let mounts = parse_mountinfo(SAMPLE);
        assert_eq!(mounts.len(), 4);
        assert_eq!(mounts[0].mount_point, PathBuf::from("/"));
        assert_eq!(mounts[1].options, "rw,nosuid,relatime");
        assert_eq!(mounts[1].fs_type, "cgroup");
        assert_eq!(mounts[1].super_options, "rw,cpu");
        assert_eq!(mounts[3].mount_point, PathBuf::from("/with space"));
    }
}
