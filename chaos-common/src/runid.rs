//! Run ids: the name every run gives to what it creates (`chaos-<tool>-<run id>`).
//!
//! They must be valid in an nftables table name, a Kubernetes object name and a file
//! name, so they are limited to lowercase letters, digits and '-'.

use std::hash::{BuildHasher, Hasher};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{ChaosError, Result};

pub const MAX_LEN: usize = 40;

/// A fresh run id: UTC date and time, then 6 random hex digits (`20261126-224747-3fa9c1`).
pub fn generate() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    // RandomState is seeded from the OS per process; mixing in time and pid keeps two ids
    // generated in one process distinct.
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(now.as_nanos());
    hasher.write_u32(std::process::id());
    let random = hasher.finish() & 0xff_ffff;
    let stamp = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    // 2026-11-26T22:47:47Z -> 20261126-224747
    let digits: String = stamp.chars().filter(char::is_ascii_digit).collect();
    let (date, time) = digits.split_at(digits.len().min(8));
    format!("{date}-{time}-{random:06x}")
}

pub fn validate(id: &str) -> Result<()> {
    let ok_chars = id
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if id.is_empty() || id.len() > MAX_LEN || !ok_chars || id.starts_with('-') || id.ends_with('-')
    {
        return Err(ChaosError::bad_input(format!(
            "--run-id '{id}' is invalid: use 1-{MAX_LEN} lowercase letters, digits and '-', not starting or ending with '-'"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_valid_and_distinct() {
        let a = generate();
        let b = generate();
        assert!(validate(&a).is_ok(), "{a}");
        assert_ne!(a, b);
        assert_eq!(a.len(), "20261126-224747-3fa9c1".len(), "{a}");
    }

    #[test]
    fn rejects_names_that_cannot_name_a_table() {
        for bad in [
            "",
            "Upper",
            "has space",
            "semi;colon",
            "-lead",
            "trail-",
            &"x".repeat(41),
        ] {
            assert!(validate(bad).is_err(), "{bad}");
        }
        assert!(validate("exp-001-a").is_ok());
    }
}
