//! How numbers read in the summaries: always with their unit, rounded the way a person
//! reads them, and colour only for a person at a terminal.
//!
//! - milliseconds: `0.31 ms`, `4.3 ms`, `17 ms` (two decimals under 1 ms, one under 10 ms);
//!   a second or more as seconds: `1.2 s`,
//!   `11.2 s`, `180 s`; [`secs`] for durations measured, [`configured`] for durations
//!   the operator gave (`60 s`, `2 min`).
//! - counts with thousands separators: `1,204`.
//! - percentages and MiB with one decimal: `50.0%`, `64.0 MiB`.

use std::io::IsTerminal;

/// Whether the summary may colour its words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Style {
    pub colour: bool,
}

impl Style {
    /// Colour when stdout is a terminal and `NO_COLOR` is not set (no-color.org: any
    /// non-empty value turns colour off).
    pub fn detect() -> Style {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Style {
            colour: !no_color && std::io::stdout().is_terminal(),
        }
    }

    pub fn plain() -> Style {
        Style { colour: false }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.colour {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    pub fn good(&self, text: &str) -> String {
        self.paint("32", text)
    }

    pub fn bad(&self, text: &str) -> String {
        self.paint("1;31", text)
    }

    pub fn warn(&self, text: &str) -> String {
        self.paint("33", text)
    }

    pub fn dim(&self, text: &str) -> String {
        self.paint("2", text)
    }

    /// `pass` in green or `FAIL` in red.
    pub fn verdict(&self, passed: bool) -> String {
        if passed {
            self.good("pass")
        } else {
            self.bad("FAIL")
        }
    }
}

/// A duration measured in milliseconds, in the unit a person reads it in.
pub fn ms(value: f64) -> String {
    let v = value.abs();
    if v >= 1000.0 {
        return secs(value / 1000.0);
    }
    if v >= 10.0 || v == 0.0 {
        format!("{value:.0} ms")
    } else if v >= 1.0 {
        format!("{value:.1} ms")
    } else {
        format!("{value:.2} ms")
    }
}

/// A duration measured in seconds: one decimal below 100 s, whole seconds above.
pub fn secs(value: f64) -> String {
    if value.abs() >= 100.0 {
        format!("{value:.0} s")
    } else {
        format!("{value:.1} s")
    }
}

/// A duration the operator configured, in seconds: whole units as typed (`60 s`,
/// `2 min`, `1 h`), fractions as measured ones.
pub fn configured(seconds: f64) -> String {
    let whole = seconds.fract() == 0.0;
    if whole && seconds >= 3600.0 && seconds % 3600.0 == 0.0 {
        format!("{:.0} h", seconds / 3600.0)
    } else if whole && seconds >= 120.0 && seconds % 60.0 == 0.0 {
        format!("{:.0} min", seconds / 60.0)
    } else if whole {
        format!("{seconds:.0} s")
    } else {
        secs(seconds)
    }
}

/// A count with thousands separators: `1,204`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `1 packet`, `2 packets`.
pub fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", count(n), if n == 1 { one } else { many })
}

/// A percentage with one decimal: `50.0%`.
pub fn percent(value: f64) -> String {
    format!("{value:.1}%")
}

/// A signed figure: `+0.003`, `-15.691` (as the report has it).
pub fn signed(value: f64) -> String {
    if value > 0.0 {
        format!("+{value}")
    } else {
        format!("{value}")
    }
}

/// MiB with one decimal: `64.0 MiB`.
pub fn mib(value: f64) -> String {
    format!("{value:.1} MiB")
}

/// `HH:MM:SS` of an RFC 3339 timestamp (`2026-11-28T10:04:05.123Z` -> `10:04:05`).
pub fn clock(timestamp: &str) -> Option<&str> {
    let time = timestamp.split('T').nth(1)?;
    time.get(..8)
}

/// Pads every string to the widest, right-aligned (numbers line up on their units).
pub fn right_aligned(cells: &[String]) -> Vec<String> {
    let width = cells.iter().map(|c| c.chars().count()).max().unwrap_or(0);
    cells
        .iter()
        .map(|c| format!("{c:>width$}", width = width))
        .collect()
}

/// `a`, `a and b`, `a, b and c`.
pub fn list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_in_their_unit() {
        assert_eq!(ms(0.31), "0.31 ms");
        assert_eq!(ms(4.34), "4.3 ms");
        assert_eq!(ms(17.2), "17 ms");
        assert_eq!(ms(0.0), "0 ms");
        assert_eq!(ms(11_200.0), "11.2 s");
        assert_eq!(ms(180_400.0), "180 s");
        assert_eq!(configured(60.0), "60 s");
        assert_eq!(configured(120.0), "2 min");
        assert_eq!(configured(3600.0), "1 h");
        assert_eq!(configured(2.5), "2.5 s");
    }

    #[test]
    fn counts_have_separators() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1204), "1,204");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(plural(1, "packet", "packets"), "1 packet");
        assert_eq!(plural(1204, "packet", "packets"), "1,204 packets");
    }

    #[test]
    fn small_helpers() {
        assert_eq!(clock("2026-11-28T10:04:05.123Z"), Some("10:04:05"));
        assert_eq!(clock("nonsense"), None);
        assert_eq!(
            right_aligned(&["9.8 s".into(), "11.2 s".into()]),
            [" 9.8 s", "11.2 s"]
        );
        assert_eq!(list(&["a".into(), "b".into(), "c".into()]), "a, b and c");
        assert_eq!(signed(0.003), "+0.003");
        assert_eq!(signed(-15.691), "-15.691");
        assert_eq!(Style::plain().verdict(false), "FAIL");
        assert_eq!(Style { colour: true }.good("ok"), "\x1b[32mok\x1b[0m");
    }
}
