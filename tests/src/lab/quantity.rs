//! Kubernetes resource quantities (`100m`, `0.5`, `256Mi`, `1G`, `129e6`) as numbers.

use anyhow::{Result, bail};

/// CPU in millicores: `100m` -> 100, `0.5` -> 500, `2` -> 2000 (rounded up, as the kubelet).
pub fn cpu_millis(text: &str) -> Result<u64> {
    let text = text.trim();
    if let Some(m) = text.strip_suffix('m') {
        return m
            .parse::<u64>()
            .map_err(|_| anyhow::anyhow!("bad CPU quantity {text:?}"));
    }
    let cores: f64 = text
        .parse()
        .map_err(|_| anyhow::anyhow!("bad CPU quantity {text:?}"))?;
    if !cores.is_finite() || cores < 0.0 {
        bail!("bad CPU quantity {text:?}");
    }
    Ok((cores * 1000.0).ceil() as u64)
}

/// Bytes: binary (`Ki Mi Gi Ti`), decimal (`k M G T`) suffixes, exponents, plain numbers.
pub fn bytes(text: &str) -> Result<u64> {
    let text = text.trim();
    let suffixes: [(&str, f64); 8] = [
        ("Ki", 1024.0),
        ("Mi", 1024.0 * 1024.0),
        ("Gi", 1024.0 * 1024.0 * 1024.0),
        ("Ti", 1024.0 * 1024.0 * 1024.0 * 1024.0),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
    ];
    let (number, factor) = suffixes
        .iter()
        .find_map(|(s, f)| text.strip_suffix(s).map(|n| (n, *f)))
        .unwrap_or((text, 1.0));
    let value: f64 = number
        .parse()
        .map_err(|_| anyhow::anyhow!("bad memory quantity {text:?}"))?;
    if !value.is_finite() || value < 0.0 {
        bail!("bad memory quantity {text:?}");
    }
    Ok((value * factor).ceil() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_quantities() {
        assert_eq!(cpu_millis("100m").unwrap(), 100);
        assert_eq!(cpu_millis("0.5").unwrap(), 500);
        assert_eq!(cpu_millis("2").unwrap(), 2000);
        assert_eq!(cpu_millis("0.0001").unwrap(), 1);
        assert!(cpu_millis("fast").is_err());
        assert!(cpu_millis("-1").is_err());
    }

    #[test]
    fn memory_quantities() {
        assert_eq!(bytes("256Mi").unwrap(), 268_435_456);
        assert_eq!(bytes("1G").unwrap(), 1_000_000_000);
        assert_eq!(bytes("129e6").unwrap(), 129_000_000);
        assert_eq!(bytes("4096").unwrap(), 4096);
        assert_eq!(bytes("1.5Ki").unwrap(), 1536);
        assert!(bytes("lots").is_err());
    }
}
