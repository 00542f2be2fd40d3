//! Durations as operators type them: `90` (the flag's bare unit), `90s`, `2m`, `1h`,
//! `500ms`, and compounds such as `1m30s` or `1h30m` (as kubectl and Go write them).
//!
//! Every time flag takes units. A bare number keeps the unit the flag has always had:
//! seconds for most ([`HumanDuration`], [`parse_duration`]), milliseconds for
//! latency-injector's `--latency`/`--jitter` ([`parse_millis`]); whole seconds where
//! Kubernetes wants them ([`parse_whole_seconds`], pod-killer's `--grace-period`).
//! Errors quote what was given and name the units.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// What a bare number means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bare {
    Seconds,
    Milliseconds,
}

impl Bare {
    fn seconds(self) -> f64 {
        match self {
            Bare::Seconds => 1.0,
            Bare::Milliseconds => 0.001,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Bare::Seconds => "seconds",
            Bare::Milliseconds => "milliseconds",
        }
    }
}

/// The longest duration any flag takes (a year; the runs' own cap is `--max-duration`).
const LONGEST_SECONDS: f64 = 366.0 * 86400.0;

/// A duration parsed from the command line. A bare number is seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct HumanDuration(pub Duration);

impl HumanDuration {
    pub fn as_duration(self) -> Duration {
        self.0
    }
}

impl FromStr for HumanDuration {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        parse_duration(text).map(HumanDuration)
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if ms % 3_600_000 == 0 && ms > 0 {
            write!(f, "{}h", ms / 3_600_000)
        } else if ms % 60_000 == 0 && ms > 0 {
            write!(f, "{}m", ms / 60_000)
        } else if ms % 1000 == 0 {
            write!(f, "{}s", ms / 1000)
        } else {
            write!(f, "{ms}ms")
        }
    }
}

/// Parses a duration whose bare number is seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    parse_with(text, Bare::Seconds)
}

/// A duration whose bare number is milliseconds, as whole milliseconds (latency-injector's
/// `--latency 200`, `--latency 5s`).
pub fn parse_millis(text: &str) -> Result<u64, String> {
    let d = parse_with(text, Bare::Milliseconds)?;
    if d.subsec_nanos() % 1_000_000 != 0 {
        return Err(format!(
            "invalid duration '{text}': whole milliseconds only (e.g. 200, 200ms, 1.5s)"
        ));
    }
    u64::try_from(d.as_millis()).map_err(|_| format!("invalid duration '{text}': too large"))
}

/// A duration in whole seconds (Kubernetes' grace periods): `5`, `5s`, `1m`.
pub fn parse_whole_seconds(text: &str) -> Result<u32, String> {
    let d = parse_with(text, Bare::Seconds)?;
    if d.subsec_nanos() != 0 {
        return Err(format!(
            "invalid duration '{text}': whole seconds only (e.g. 0, 5, 5s, 1m)"
        ));
    }
    u32::try_from(d.as_secs()).map_err(|_| format!("invalid duration '{text}': too large"))
}

fn unit_seconds(unit: &str) -> Option<f64> {
    Some(match unit {
        "ms" => 0.001,
        "s" | "sec" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => return None,
    })
}

/// Parses `N` (in `bare` units), `N.F`, `N<unit>` and compounds `1h30m`, `1m30s500ms`
/// with the units `ms`, `s`/`sec`, `m`/`min`, `h`, each at most once, largest first.
///
/// Rejects negative, empty, non-finite, unknown-unit and out-of-order values with a
/// message that quotes what was given.
pub fn parse_with(text: &str, bare: Bare) -> Result<Duration, String> {
    let trimmed = text.trim();
    let units = "ms, s, m or h";
    let example = match bare {
        Bare::Seconds => "90, 90s, 1m30s, 2m, 1h, 500ms",
        Bare::Milliseconds => "200, 200ms, 1.5s, 5s",
    };
    if trimmed.is_empty() {
        return Err(format!(
            "invalid duration '{text}': expected a number with an optional unit ({example})"
        ));
    }
    let mut rest = trimmed;
    let mut seconds = 0.0;
    let mut last_unit = f64::INFINITY;
    while !rest.is_empty() {
        let split = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(split);
        if number.is_empty() {
            return Err(format!(
                "invalid duration '{text}': expected a number with an optional unit ({example})"
            ));
        }
        let value: f64 = number
            .parse()
            .map_err(|_| format!("invalid duration '{text}': '{number}' is not a number"))?;
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        let per = if unit.is_empty() {
            if rest.len() != trimmed.len() {
                return Err(format!(
                    "invalid duration '{text}': '{number}' needs a unit ({units})"
                ));
            }
            bare.seconds()
        } else {
            unit_seconds(unit).ok_or_else(|| {
                format!(
                    "invalid duration '{text}': unknown unit '{unit}' (use {units}; a bare number is {})",
                    bare.name()
                )
            })?
        };
        if !unit.is_empty() && per >= last_unit {
            return Err(format!(
                "invalid duration '{text}': units must go from the largest to the smallest, each once (e.g. 1h30m, 1m30s)"
            ));
        }
        last_unit = per;
        seconds += value * per;
        rest = next;
    }
    if !seconds.is_finite() || seconds > LONGEST_SECONDS {
        return Err(format!(
            "invalid duration '{text}': too large (at most 366 days)"
        ));
    }
    Ok(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_documented_forms() {
        let cases = [
            ("90", 90_000),
            ("90s", 90_000),
            ("2m", 120_000),
            ("1h", 3_600_000),
            ("500ms", 500),
            ("1.5", 1500),
            (" 10s ", 10_000),
            ("1m30s", 90_000),
            ("1h30m", 5_400_000),
            ("2m0.5s", 120_500),
            ("1s500ms", 1500),
            ("5min", 300_000),
        ];
        for (text, ms) in cases {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_millis(ms)),
                "{text}"
            );
        }
    }

    #[test]
    fn rejects_unknown_units_and_garbage() {
        for text in [
            "", "s", "10x", "10 days", "-5", "1e9", "abc", "30s1m", "1m1m", "1m30", "1..5s",
        ] {
            assert!(parse_duration(text).is_err(), "{text} should be rejected");
        }
        let e = parse_duration("10days").unwrap_err();
        assert!(
            e.contains("unknown unit 'days'") && e.contains("seconds"),
            "{e}"
        );
    }

    #[test]
    fn milliseconds_flags_keep_their_bare_unit() {
        assert_eq!(parse_millis("200"), Ok(200));
        assert_eq!(parse_millis("5s"), Ok(5000));
        assert_eq!(parse_millis("1.5s"), Ok(1500));
        assert_eq!(parse_millis("250ms"), Ok(250));
        assert!(parse_millis("0.5").is_err(), "half a millisecond");
        assert!(parse_millis("-1").is_err());
        let e = parse_millis("5 sec").unwrap_err();
        assert!(e.contains("milliseconds"), "{e}");
    }

    #[test]
    fn whole_seconds_flags_refuse_fractions() {
        assert_eq!(parse_whole_seconds("0"), Ok(0));
        assert_eq!(parse_whole_seconds("5s"), Ok(5));
        assert_eq!(parse_whole_seconds("1m"), Ok(60));
        let e = parse_whole_seconds("1500ms").unwrap_err();
        assert!(e.contains("whole seconds"), "{e}");
    }

    #[test]
    fn displays_in_the_largest_whole_unit() {
        assert_eq!(HumanDuration(Duration::from_secs(3600)).to_string(), "1h");
        assert_eq!(HumanDuration(Duration::from_secs(120)).to_string(), "2m");
        assert_eq!(HumanDuration(Duration::from_secs(90)).to_string(), "90s");
        assert_eq!(
            HumanDuration(Duration::from_millis(1500)).to_string(),
            "1500ms"
        );
    }
}
