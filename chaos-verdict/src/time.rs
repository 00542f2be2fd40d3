//! Timestamps: milliseconds since the Unix epoch (UTC) inside, RFC 3339 outside.
//!
//! k6 writes nanosecond timestamps in the machine's local offset
//! (`2026-11-28T07:00:22.27908832Z`, or `+01:00` under another TZ); the tools' reports and
//! the runbook write UTC with milliseconds. Everything is parsed into [`Millis`] and
//! written back as UTC with milliseconds (`2026-11-28T07:00:22.279Z`).

use chrono::{DateTime, SecondsFormat, Utc};

use crate::error::{Result, VerdictError};

/// Milliseconds since the Unix epoch, UTC.
pub type Millis = i64;

/// Parses an RFC 3339 timestamp with any offset and any fraction (truncated to ms).
pub fn parse(text: &str) -> Result<Millis> {
    DateTime::parse_from_rfc3339(text.trim())
        .map(|t| t.timestamp_millis())
        .map_err(|e| {
            VerdictError::bad(format!(
                "'{text}' is not an RFC 3339 timestamp ({e}); expected e.g. 2026-11-28T07:00:22.279Z"
            ))
        })
}

/// `2026-11-28T07:00:22.279Z`.
pub fn format(ms: Millis) -> String {
    match DateTime::<Utc>::from_timestamp_millis(ms) {
        Some(t) => t.to_rfc3339_opts(SecondsFormat::Millis, true),
        None => format!("(invalid time {ms} ms)"),
    }
}

/// `2026-11-28` (UTC).
pub fn date(ms: Millis) -> String {
    match DateTime::<Utc>::from_timestamp_millis(ms) {
        Some(t) => t.format("%Y-%m-%d").to_string(),
        None => "—".to_owned(),
    }
}

/// Now, from the system clock.
pub fn now() -> Millis {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    since.map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Seconds between two instants, for reports (`12.345`).
pub fn seconds_between(from: Millis, to: Millis) -> f64 {
    // Millisecond differences of any realistic run fit an f64 exactly.
    #[allow(clippy::cast_precision_loss)]
    let ms = (to - from) as f64;
    ms / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn k6_nanosecond_timestamps_are_truncated_to_milliseconds() {
        let ms = parse("2026-11-28T07:00:22.27908832Z").unwrap();
        assert_eq!(format(ms), "2026-11-28T07:00:22.279Z");
    }

    #[test]
    fn offsets_are_converted_to_utc() {
        let ms = parse("2026-11-28T08:00:22.5+01:00").unwrap();
        assert_eq!(format(ms), "2026-11-28T07:00:22.500Z");
        assert_eq!(date(ms), "2026-11-28");
    }

    #[test]
    fn garbage_is_bad_input_naming_the_value() {
        let err = parse("yesterday").unwrap_err().to_string();
        assert!(err.contains("'yesterday'"), "{err}");
    }

    #[test]
    fn seconds_between_keeps_milliseconds() {
        assert!((seconds_between(1_000, 13_345) - 12.345).abs() < 1e-9);
    }
}
