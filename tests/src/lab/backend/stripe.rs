//! Stripe's webhook conventions, as far as the lab needs them: the `Stripe-Signature`
//! header (`t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "t.payload")>`, checked within a
//! 300 s tolerance as Stripe's libraries do) and the sender's retry schedule.
//!
//! Stripe retries a delivery that timed out or got a non-2xx answer with exponential
//! back-off (for up to three days in live mode). The lab's sender keeps the shape and
//! shortens the clock: attempt `n` (from 1) waits `base × 2^(n-1)` before the next one,
//! capped at `max`, for at most `attempts` attempts.

use std::time::Duration;

use ring::hmac;

/// Stripe's default signature tolerance.
pub const TOLERANCE_SECS: u64 = 300;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The `Stripe-Signature` header for `payload` sent at `t`.
pub fn signature_header(secret: &str, t: u64, payload: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let mut signed = format!("{t}.").into_bytes();
    signed.extend_from_slice(payload);
    format!("t={t},v1={}", hex(hmac::sign(&key, &signed).as_ref()))
}

/// Whether `header` signs `payload` with `secret` within the tolerance of `now`.
pub fn verify(secret: &str, header: &str, payload: &[u8], now: u64) -> bool {
    let mut t = None;
    let mut sigs = Vec::new();
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", v)) => t = v.parse::<u64>().ok(),
            Some(("v1", v)) => sigs.push(v),
            _ => {}
        }
    }
    let Some(t) = t else { return false };
    if now.abs_diff(t) > TOLERANCE_SECS {
        return false;
    }
    let expected = signature_header(secret, t, payload);
    let expected = expected
        .rsplit_once("v1=")
        .map(|(_, s)| s)
        .unwrap_or_default();
    sigs.contains(&expected)
}

/// The wait after failed attempt `attempt` (1-based).
pub fn retry_delay(attempt: u32, base: Duration, max: Duration) -> Duration {
    let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
    base.saturating_mul(factor).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_and_expire() {
        let h = signature_header("whsec_x", 1000, b"{}");
        assert!(verify("whsec_x", &h, b"{}", 1000));
        assert!(verify("whsec_x", &h, b"{}", 1299));
        assert!(!verify("whsec_x", &h, b"{}", 1301));
        assert!(!verify("whsec_y", &h, b"{}", 1000));
        assert!(!verify("whsec_x", &h, b"{ }", 1000));
        assert!(!verify("whsec_x", "v1=00", b"{}", 1000));
    }

    #[test]
    fn back_off_doubles_up_to_the_cap() {
        let s = Duration::from_secs(1);
        let max = Duration::from_secs(5);
        let d: Vec<u64> = (1..=5).map(|n| retry_delay(n, s, max).as_secs()).collect();
        assert_eq!(d, vec![1, 2, 4, 5, 5]);
    }
}
