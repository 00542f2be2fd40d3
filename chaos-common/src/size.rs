//! Sizes as operators type them: `512`, `512MB`, `512MiB`, `512Mi`, `1GB`, `1.5GiB`,
//! `64KiB`. Units are binary and case-insensitive: **`MB` means MiB here** (1,048,576
//! bytes), as memory-leak's flags always meant, and as Kubernetes' `Mi` does; `K`, `M`,
//! `G`, `T` with or without `B`, `iB` or `i`. A bare number is the flag's own unit (MiB
//! for memory-leak's `--limit-mb`, bytes for latency-injector's `--buffer-limit`).

/// What a bare number means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BareSize {
    Bytes,
    Mib,
}

const MIB: u64 = 1 << 20;

fn scale(unit: &str) -> Option<u64> {
    let unit = unit.to_ascii_lowercase();
    let prefix = unit
        .strip_suffix("ib")
        .or_else(|| unit.strip_suffix('i'))
        .or_else(|| unit.strip_suffix('b'))
        .unwrap_or(&unit);
    Some(match prefix {
        "" if unit == "b" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        "t" => 1 << 40,
        _ => return None,
    })
}

/// Parses a size into bytes. Fractions are allowed when the result is a whole number of
/// bytes (`1.5GiB`); negative, empty and unknown units are errors that quote the input.
pub fn parse_size(text: &str, bare: BareSize) -> Result<u64, String> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let bare_name = match bare {
        BareSize::Bytes => "bytes",
        BareSize::Mib => "MiB",
    };
    let bad = |why: &str| {
        format!(
            "invalid size '{text}': {why} (e.g. 512, 512MB, 512MiB, 512Mi, 1GiB; MB means MiB, a bare number is {bare_name})"
        )
    };
    let value: f64 = number
        .parse()
        .map_err(|_| bad("expected a number with an optional unit"))?;
    let per = match unit.trim() {
        "" => match bare {
            BareSize::Bytes => 1,
            BareSize::Mib => MIB,
        },
        unit => scale(unit).ok_or_else(|| bad(&format!("unknown unit '{unit}'")))?,
    };
    let bytes = value * per as f64;
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(bad("too large"));
    }
    if bytes.fract() != 0.0 {
        return Err(bad("not a whole number of bytes"));
    }
    Ok(bytes as u64)
}

/// A size in whole MiB (memory-leak's `--limit-mb 512MB`).
pub fn parse_mib(text: &str) -> Result<u64, String> {
    let bytes = parse_size(text, BareSize::Mib)?;
    if bytes % MIB != 0 {
        return Err(format!(
            "invalid size '{text}': whole MiB only (e.g. 512, 512MiB, 1.5GiB)"
        ));
    }
    Ok(bytes / MIB)
}

/// A rate in MiB per second: `50`, `50MB`, `50MiB/s`, `1GiB/s`, `512KiB/s`.
pub fn parse_mib_rate(text: &str) -> Result<f64, String> {
    let trimmed = text.trim();
    let amount = trimmed
        .strip_suffix("/s")
        .or_else(|| trimmed.strip_suffix("/sec"))
        .unwrap_or(trimmed);
    if amount.trim().is_empty() {
        return Err(format!(
            "invalid rate '{text}': expected MiB per second (e.g. 50, 50MB/s, 1GiB/s)"
        ));
    }
    let split = amount
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(amount.len());
    let (number, unit) = amount.split_at(split);
    let value: f64 = number.parse().map_err(|_| {
        format!("invalid rate '{text}': expected MiB per second (e.g. 50, 50MB/s, 1GiB/s)")
    })?;
    let per = match unit.trim() {
        "" => MIB,
        unit => scale(unit).ok_or_else(|| {
            format!(
                "invalid rate '{text}': unknown unit '{unit}' (MB/s means MiB/s; e.g. 50, 50MB/s, 1GiB/s)"
            )
        })?,
    };
    Ok(value * per as f64 / MIB as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_every_spelling_of_a_binary_unit() {
        for (text, mib) in [
            ("512", 512),
            ("512MB", 512),
            ("512MiB", 512),
            ("512Mi", 512),
            ("512mb", 512),
            ("512M", 512),
            ("1GB", 1024),
            ("1GiB", 1024),
            ("1Gi", 1024),
            ("1.5GiB", 1536),
            (" 64 MiB ", 64),
        ] {
            assert_eq!(parse_mib(text), Ok(mib), "{text}");
        }
        assert_eq!(parse_size("4MiB", BareSize::Bytes), Ok(4 << 20));
        assert_eq!(parse_size("65536", BareSize::Bytes), Ok(65536));
        assert_eq!(parse_size("10 B", BareSize::Bytes), Ok(10));
    }

    #[test]
    fn bad_sizes_say_the_units() {
        for text in ["", "-1", "MiB", "512XB", "0.5", "1e3", "99999999999TiB"] {
            let e = parse_mib(text).expect_err(text);
            assert!(e.contains("MiB"), "{text}: {e}");
        }
    }

    #[test]
    fn rates_are_mib_per_second() {
        for (text, rate) in [
            ("50", 50.0),
            ("50MB/s", 50.0),
            ("50MiB/s", 50.0),
            ("0.5", 0.5),
            ("1GiB/s", 1024.0),
            ("512KiB/s", 0.5),
        ] {
            assert_eq!(parse_mib_rate(text), Ok(rate), "{text}");
        }
        assert!(parse_mib_rate("fast").is_err());
        assert!(parse_mib_rate("/s").is_err());
        assert!(parse_mib_rate("5XB/s").is_err());
    }
}
