//! Units of the flags and the report: every "MB" of this tool is a MiB, and figures are
//! rounded for the report (with `chaos_common::report::round`).

/// One mebibyte: every "MB" of this tool's flags is a MiB, every `*Mib` field too.
pub const MIB: u64 = 1 << 20;

/// Bytes as MiB, rounded to 0.1 for reports.
pub fn mib(bytes: u64) -> f64 {
    round(bytes as f64 / MIB as f64, 1)
}

/// The report's rounding, shared by every tool.
pub use chaos_common::report::round;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mib_and_rounding() {
        assert_eq!(mib(MIB), 1.0);
        assert_eq!(mib(MIB + MIB / 20 + 1), 1.1);
        assert_eq!(round(49.996, 2), 50.0);
        assert_eq!(round(-1.25, 1), -1.3);
        assert_eq!(round(1.23456, 3), 1.235);
    }
}
