//! Standard Webhooks signatures (<https://www.standardwebhooks.com>): what The Eye's
//! dispatcher signs with, and what a receiver verifies with.
//!
//! The signed content is `"{webhook-id}.{webhook-timestamp}.{body}"`, the key the bytes of
//! the base64 part of a `whsec_...` secret, and `webhook-signature` a space-separated list
//! of `v1,<base64 HMAC-SHA256>` (two while a rotated secret's grace period runs).
//!
//! ```
//! use eye_client::webhooks::{Verifier, sign};
//! let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
//! let signature = sign(secret, "msg_1", 1_700_000_000, b"{}").unwrap();
//! let verifier = Verifier::new(secret).unwrap();
//! verifier.verify_at("msg_1", "1700000000", &signature, b"{}", 1_700_000_000).unwrap();
//! ```

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How far a `webhook-timestamp` may be from the receiver's clock (replay protection).
pub const TOLERANCE_SECS: i64 = 5 * 60;
/// The prefix of a secret.
pub const SECRET_PREFIX: &str = "whsec_";

/// Why a signature or a secret was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error("the secret is not `whsec_` followed by base64")]
    BadSecret,
    #[error("webhook-timestamp is not a number of seconds")]
    BadTimestamp,
    #[error("webhook-timestamp is too far from now")]
    TimestampOutOfTolerance,
    #[error("no signature matches")]
    NoMatch,
}

/// The key bytes of a `whsec_...` secret (the prefix is optional, as in the reference
/// libraries).
pub fn secret_key(secret: &str) -> Result<Vec<u8>, WebhookError> {
    let encoded = secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret);
    STANDARD
        .decode(encoded)
        .ok()
        .filter(|key| !key.is_empty())
        .ok_or(WebhookError::BadSecret)
}

/// A new random secret: `whsec_` and the base64 of 24 random bytes.
pub fn new_secret() -> String {
    let mut key = [0u8; 24];
    key[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    key[16..].copy_from_slice(&uuid::Uuid::new_v4().as_bytes()[..8]);
    format!("{SECRET_PREFIX}{}", STANDARD.encode(key))
}

fn mac(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    // HMAC accepts keys of any length: `new_from_slice` cannot fail for it.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// `v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Result<String, WebhookError> {
    let key = secret_key(secret)?;
    let tag = mac(&key, id, timestamp, body).finalize().into_bytes();
    Ok(format!("v1,{}", STANDARD.encode(tag)))
}

/// Checks the three headers of a delivery against one secret.
#[derive(Clone)]
pub struct Verifier {
    key: Vec<u8>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Verifier { key: <redacted> }")
    }
}

impl Verifier {
    pub fn new(secret: &str) -> Result<Self, WebhookError> {
        Ok(Self {
            key: secret_key(secret)?,
        })
    }

    /// Verifies against the system clock.
    pub fn verify(
        &self,
        id: &str,
        timestamp: &str,
        signatures: &str,
        body: &[u8],
    ) -> Result<(), WebhookError> {
        self.verify_at(
            id,
            timestamp,
            signatures,
            body,
            chrono::Utc::now().timestamp(),
        )
    }

    /// Verifies as if the clock read `now` (seconds): the timestamp within
    /// [`TOLERANCE_SECS`] of it, and one `v1` signature of the list matching, compared in
    /// constant time.
    pub fn verify_at(
        &self,
        id: &str,
        timestamp: &str,
        signatures: &str,
        body: &[u8],
        now: i64,
    ) -> Result<(), WebhookError> {
        let ts: i64 = timestamp
            .trim()
            .parse()
            .map_err(|_| WebhookError::BadTimestamp)?;
        if (now - ts).abs() > TOLERANCE_SECS {
            return Err(WebhookError::TimestampOutOfTolerance);
        }
        let matched = signatures
            .split(' ')
            .filter_map(|s| s.strip_prefix("v1,"))
            .filter_map(|b64| STANDARD.decode(b64).ok())
            .any(|tag| mac(&self.key, id, ts, body).verify_slice(&tag).is_ok());
        if matched {
            Ok(())
        } else {
            Err(WebhookError::NoMatch)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The vector of the Standard Webhooks reference libraries' tests
    // (standard-webhooks/standard-webhooks, libraries/rust/src/lib.rs, `test_sign`).
    const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    const ID: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
    const TS: i64 = 1_649_367_553;
    const BODY: &[u8] = br#"{"email":"test@example.com","username":"test_user"}"#;
    const EXPECTED: &str = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";

    #[test]
    fn signs_the_specifications_vector() {
        assert_eq!(sign(SECRET, ID, TS, BODY).expect("test value"), EXPECTED);
    }

    #[test]
    fn verifies_the_vector_and_refuses_the_published_wrong_signature() {
        let v = Verifier::new(SECRET).expect("test value");
        let ts = TS.to_string();
        assert_eq!(v.verify_at(ID, &ts, EXPECTED, BODY, TS), Ok(()));
        let wrong = "v1,R3PTzyfHASBKHH98a7yexTwaJ4yNIcGhFQc1yuN+BPU=";
        assert_eq!(
            v.verify_at(ID, &ts, wrong, BODY, TS),
            Err(WebhookError::NoMatch)
        );
    }

    #[test]
    fn signs_the_example_of_the_specifications_documentation() {
        let signed = sign(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(
            signed.expect("test value"),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn one_match_among_several_signatures_is_enough() {
        let v = Verifier::new(SECRET).expect("test value");
        let others = "v1,tFtCZ5RDCPxzWQRWXWPgrCgE2frDBe9gjpbWQxnVfsQ= v1,Mm7xgUVICxZfQ3bgf0h0Dof65L/IFx+PnZvnDWPCX6Q=";
        let list = format!("{others} {EXPECTED} v1,9DfC1c3eeOrXB6w/5dIDydLNQaEyww5KalE5jLBZucE=");
        assert_eq!(v.verify_at(ID, &TS.to_string(), &list, BODY, TS), Ok(()));
        assert_eq!(
            v.verify_at(ID, &TS.to_string(), others, BODY, TS),
            Err(WebhookError::NoMatch)
        );
    }

    #[test]
    fn a_timestamp_out_of_tolerance_or_a_changed_body_is_refused() {
        let v = Verifier::new(SECRET).expect("test value");
        let ts = TS.to_string();
        for now in [TS + TOLERANCE_SECS + 1, TS - TOLERANCE_SECS - 1] {
            assert_eq!(
                v.verify_at(ID, &ts, EXPECTED, BODY, now),
                Err(WebhookError::TimestampOutOfTolerance)
            );
        }
        assert_eq!(
            v.verify_at(ID, &ts, EXPECTED, b"{}", TS),
            Err(WebhookError::NoMatch)
        );
        assert_eq!(
            v.verify_at(ID, "soon", EXPECTED, BODY, TS),
            Err(WebhookError::BadTimestamp)
        );
    }

    #[test]
    fn new_secrets_are_valid_and_distinct() {
        let (a, b) = (new_secret(), new_secret());
        assert_ne!(a, b);
        assert_eq!(secret_key(&a).expect("test value").len(), 24);
        assert_eq!(secret_key("whsec_!!"), Err(WebhookError::BadSecret));
    }
}
