//! auth-service: `POST /v1/auth/login` (`{"email", "password"}`; the lab's one password
//! is [`DEMO_PASSWORD`]) returns a bearer token signed with `JWT_SECRET` (HMAC-SHA256,
//! one hour) and records the session in Redis; `GET /v1/auth/verify` checks a token.
//! Redis failing: the well-behaved service logs a warning and still logs the user in
//! (the token does not need the session); `LAB_MODE=fragile` answers 500.

use std::time::{SystemTime, UNIX_EPOCH};

use hyper::{Method, StatusCode};
use ring::hmac;
use serde_json::json;

use super::http::{self, Reply, Req};
use super::{Service, error, not_found};

/// The password every lab user has.
pub const DEMO_PASSWORD: &str = "Password123!";
const TOKEN_SECONDS: u64 = 3600;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// `lw1.<hex email>.<expiry>.<hex HMAC-SHA256(secret, "hex email.expiry")>`.
pub fn issue(secret: &str, email: &str, expires: u64) -> String {
    let payload = format!("{}.{expires}", hex(email.as_bytes()));
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let tag = hmac::sign(&key, payload.as_bytes());
    format!("lw1.{payload}.{}", hex(tag.as_ref()))
}

/// The token's subject when it is valid and unexpired at `now`.
pub fn verify(secret: &str, token: &str, now: u64) -> Option<String> {
    let rest = token.strip_prefix("lw1.")?;
    let (payload, tag) = rest.rsplit_once('.')?;
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    hmac::verify(&key, payload.as_bytes(), &unhex(tag)?).ok()?;
    let (email, expires) = payload.split_once('.')?;
    if expires.parse::<u64>().ok()? <= now {
        return None;
    }
    String::from_utf8(unhex(email)?).ok()
}

pub fn bearer(req: &Req) -> Option<&str> {
    req.header("authorization")?.strip_prefix("Bearer ")
}

pub async fn handle(svc: &Service, req: Req) -> Reply {
    match (&req.method, req.path.as_str()) {
        (&Method::POST, "/v1/auth/login") => login(svc, &req).await,
        (&Method::GET, "/v1/auth/verify") => {
            match bearer(&req).and_then(|t| verify(&svc.cfg.jwt_secret, t, now_secs())) {
                Some(sub) => http::json(StatusCode::OK, &json!({"valid": true, "sub": sub})),
                None => error(StatusCode::UNAUTHORIZED, "invalid or expired token"),
            }
        }
        _ => not_found(&req),
    }
}

async fn login(svc: &Service, req: &Req) -> Reply {
    let body = req.json().unwrap_or_default();
    let email = body["email"].as_str().unwrap_or_default();
    let password = body["password"].as_str().unwrap_or_default();
    if !email.contains('@') {
        return error(StatusCode::BAD_REQUEST, "email is required");
    }
    if password != DEMO_PASSWORD {
        return error(StatusCode::UNAUTHORIZED, "invalid credentials");
    }
    let token = issue(&svc.cfg.jwt_secret, email, now_secs() + TOKEN_SECONDS);
    if !svc.redis.skipping() {
        let key = format!("session:{}", &token[token.len() - 16..]);
        if let Err(e) = svc.redis.setex(&key, TOKEN_SECONDS, email.as_bytes()).await {
            if svc.cfg.fragile {
                svc.log(
                    "error",
                    &format!("Unhandled error: cannot store the session: {e}"),
                );
                return error(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
            }
            svc.log(
                "warn",
                &format!("redis unavailable, session not cached: {e}"),
            );
            svc.redis.trip(svc.cfg.redis_breaker);
        }
    }
    http::json(
        StatusCode::OK,
        &json!({"accessToken": token, "tokenType": "Bearer", "expiresIn": TOKEN_SECONDS}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_until_they_expire_and_not_with_another_key() {
        let t = issue("k", "a@lomash-wood.test", 100);
        assert_eq!(verify("k", &t, 99).as_deref(), Some("a@lomash-wood.test"));
        assert_eq!(verify("k", &t, 100), None);
        assert_eq!(verify("other", &t, 99), None);
        let forged = t.replacen("lw1.61", "lw1.62", 1);
        assert_eq!(verify("k", &forged, 99), None);
        assert_eq!(verify("k", "garbage", 0), None);
    }
}
