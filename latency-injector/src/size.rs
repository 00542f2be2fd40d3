//! Byte sizes as operators type them: `4MiB`, `4MB` (a MiB too), `512KiB`, `1GiB`,
//! `65536` (bytes), through chaos-common's size parser.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(u64);

impl ByteSize {
    pub fn bytes(self) -> u64 {
        self.0
    }
}

const UNITS: [(&str, u64); 4] = [
    ("GiB", 1 << 30),
    ("MiB", 1 << 20),
    ("KiB", 1 << 10),
    ("B", 1),
];

impl FromStr for ByteSize {
    type Err = String;

    /// chaos-common's size parser, a bare number being bytes (`MB` means MiB).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        chaos_common::size::parse_size(text, chaos_common::size::BareSize::Bytes).map(ByteSize)
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (name, scale) = UNITS
            .iter()
            .find(|(_, scale)| self.0 >= *scale && self.0 % scale == 0)
            .copied()
            .unwrap_or(("B", 1));
        write!(f, "{}{name}", self.0 / scale)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_units() {
        let table = [
            ("65536", 65536),
            ("4MiB", 4 << 20),
            ("512kib", 512 << 10),
            ("1GiB", 1 << 30),
            ("10 B", 10),
            ("4MB", 4 << 20),
            ("1.5MiB", 3 << 19),
        ];
        for (text, bytes) in table {
            assert_eq!(
                text.parse::<ByteSize>().map(ByteSize::bytes),
                Ok(bytes),
                "{text}"
            );
        }
        for bad in ["", "4XB", "-1", "0.5", "99999999999GiB", "MiB"] {
            assert!(bad.parse::<ByteSize>().is_err(), "{bad}");
        }
        assert_eq!(ByteSize(4 << 20).to_string(), "4MiB");
        assert_eq!(ByteSize(1000).to_string(), "1000B");
    }
}
