//! Bearer tokens: checking them (the [`Caller`] extractor: a handler is protected by taking
//! a `Caller`) against the key ring ([`Jwt`]) and the in-memory revocation state
//! ([`crate::apps::AuthCache`]), with no I/O per request.

mod jwt;

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

pub use jwt::{Claims, DEFAULT_KID, Jwt};

use crate::apps::AppEntry;
use crate::apps::limits::Quota;
use crate::error::ApiError;
use crate::state::AppState;

/// Scope needed to send events.
pub const SCOPE_EVENTS_WRITE: &str = "events:write";
/// Scope needed to read an application's events.
pub const SCOPE_EVENTS_READ: &str = "events:read";
/// Scope needed to erase an application's data (`/erasures`).
pub const SCOPE_EVENTS_ERASE: &str = "events:erase";
/// Scope needed to request and follow exports of the application's events.
pub const SCOPE_EXPORTS_WRITE: &str = "exports:write";
/// Scope needed to manage the application's webhook subscriptions (and test, replay).
pub const SCOPE_WEBHOOKS_WRITE: &str = "webhooks:write";
/// Scope needed to read the application's webhook subscriptions, deliveries and attempts.
pub const SCOPE_WEBHOOKS_READ: &str = "webhooks:read";
/// Scope that reads (and later manages) every application.
pub const SCOPE_ADMIN: &str = "admin";

/// A scope a token can be issued with: the command line accepts only these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scope {
    /// `POST /events`.
    #[value(name = "events:write")]
    EventsWrite,
    /// Reads of the token's own application.
    #[value(name = "events:read")]
    EventsRead,
    /// Erasures of the token's own application's data (`/erasures`).
    #[value(name = "events:erase")]
    EventsErase,
    /// `POST /exports` and `GET /exports/{id}` for the token's own application's events.
    #[value(name = "exports:write")]
    ExportsWrite,
    /// `/webhooks`: subscribe, change, delete, rotate, test, replay.
    #[value(name = "webhooks:write")]
    WebhooksWrite,
    /// `/webhooks` reads: subscriptions, deliveries, attempts.
    #[value(name = "webhooks:read")]
    WebhooksRead,
    /// Every scope, over every application.
    #[value(name = "admin")]
    Admin,
}

impl Scope {
    /// The scope as written in the token's `scope` claim.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::EventsWrite => SCOPE_EVENTS_WRITE,
            Scope::EventsRead => SCOPE_EVENTS_READ,
            Scope::EventsErase => SCOPE_EVENTS_ERASE,
            Scope::ExportsWrite => SCOPE_EXPORTS_WRITE,
            Scope::WebhooksWrite => SCOPE_WEBHOOKS_WRITE,
            Scope::WebhooksRead => SCOPE_WEBHOOKS_READ,
            Scope::Admin => SCOPE_ADMIN,
        }
    }
}

/// Why a request was not authenticated. [`AuthError::reason`] is the machine-readable
/// `reason` of the 401 body.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing bearer token: send `Authorization: Bearer <token>`")]
    Missing,
    #[error("invalid token: not a valid JWT")]
    Malformed,
    #[error("invalid token: algorithm not accepted (HS256 only)")]
    AlgorithmNotAccepted,
    #[error("invalid token: unknown key id (kid)")]
    UnknownKey,
    #[error("invalid token: bad signature")]
    BadSignature,
    #[error("invalid token: wrong issuer")]
    WrongIssuer,
    #[error("invalid token: wrong audience")]
    WrongAudience,
    #[error("invalid token: missing or malformed claims")]
    BadClaims,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token has been revoked")]
    Revoked,
    #[error("the token's application is not registered")]
    UnknownApp,
    #[error("the token's application is disabled")]
    AppDisabled,
}

impl AuthError {
    /// A stable code for machines, sent as `error.reason`.
    pub fn reason(&self) -> &'static str {
        match self {
            AuthError::Missing => "missing_token",
            AuthError::Malformed => "malformed",
            AuthError::AlgorithmNotAccepted => "algorithm_not_accepted",
            AuthError::UnknownKey => "unknown_kid",
            AuthError::BadSignature => "bad_signature",
            AuthError::WrongIssuer => "wrong_issuer",
            AuthError::WrongAudience => "wrong_audience",
            AuthError::BadClaims => "invalid_claims",
            AuthError::Expired => "expired",
            AuthError::NotYetValid => "not_yet_valid",
            AuthError::Revoked => "revoked",
            AuthError::UnknownApp => "unknown_application",
            AuthError::AppDisabled => "application_disabled",
        }
    }

    /// The `WWW-Authenticate` challenge (RFC 6750): a missing token gets no error code.
    pub fn www_authenticate(&self) -> String {
        match self {
            AuthError::Missing => r#"Bearer realm="the-eye""#.to_owned(),
            other => format!(
                r#"Bearer realm="the-eye", error="invalid_token", error_description="{}""#,
                other.to_string().replace('"', "'")
            ),
        }
    }
}

/// The authenticated application behind a request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub app_id: String,
    /// The token's id (`jti`), recorded in audit trails.
    pub token_id: String,
    scopes: Vec<String>,
    /// The application's cached registry entry (its rate limiter).
    app: Arc<AppEntry>,
}

impl Caller {
    fn has(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// The application reads are limited to: the caller's own, or None (all) for admins.
    pub fn scope_app(&self) -> Option<&str> {
        (!self.has(SCOPE_ADMIN)).then_some(self.app_id.as_str())
    }

    /// Refuses (403) a caller whose token lacks `scope`; `admin` holds every scope.
    pub fn require(&self, scope: &'static str) -> Result<(), ApiError> {
        if self.has(scope) || self.has(SCOPE_ADMIN) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(scope))
        }
    }

    /// Takes one event from the application's token bucket, or refuses (429).
    pub fn charge_event(&self) -> Result<Quota, ApiError> {
        self.app.limiter.check()
    }

    /// Takes `n` events at once (a batch), or refuses (429, or 413 past the bucket's size).
    pub fn charge_events(&self, n: u32) -> Result<Quota, ApiError> {
        match std::num::NonZeroU32::new(n) {
            Some(n) => self.app.limiter.check_n(n),
            None => self.app.limiter.check(),
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or(AuthError::Missing)?;
        let token = header
            .split_once(' ')
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .filter(|token| !token.is_empty())
            .ok_or(AuthError::Missing)?;
        let claims = state.jwt.verify(token)?;
        let app = state.auth.admit(&claims).await?;
        Ok(Caller {
            app_id: claims.sub,
            token_id: claims.jti,
            scopes: claims.scope.split_whitespace().map(str::to_owned).collect(),
            app,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::JwtSettings;
    use eye_core::Secret;

    fn jwt_with(keys: Option<&str>, signing: Option<&str>, issuer: &str) -> Jwt {
        Jwt::new(&JwtSettings {
            secret: Secret::new(SECRET.into()),
            keys: keys.map(|k| Secret::new(k.into())),
            signing_kid: signing.map(str::to_owned),
            issuer: issuer.into(),
            audience: "eye-api".into(),
        })
        .expect("valid settings")
    }

    fn jwt(issuer: &str) -> Jwt {
        jwt_with(None, None, issuer)
    }

    const SECRET: &str = "0123456789abcdef0123456789abcdef";
    const OTHER: &str = "another-secret-another-secret-xx";

    #[test]
    fn an_issued_token_verifies_with_its_app_and_scopes() {
        let j = jwt("the-eye");
        let token = j.issue("shop", &[SCOPE_EVENTS_WRITE], None).expect("issue");
        let claims = j.verify(&token).expect("verify");
        assert_eq!(
            (claims.sub.as_str(), claims.scope.as_str()),
            ("shop", "events:write")
        );
        assert!(claims.exp.is_none());
    }

    #[test]
    fn foreign_tampered_and_expired_tokens_are_refused() {
        let j = jwt("the-eye");
        let other_key = jwt_with(Some(&format!("default:{OTHER}")), None, "the-eye");
        let token = other_key.issue("shop", &[], None).expect("issue");
        assert!(matches!(j.verify(&token), Err(AuthError::BadSignature)));
        let token = jwt("someone-else").issue("shop", &[], None).expect("issue");
        assert!(matches!(j.verify(&token), Err(AuthError::WrongIssuer)));
        let mut token = j.issue("shop", &[], None).expect("issue");
        token.insert(token.len() - 3, 'x');
        assert!(j.verify(&token).is_err());
        assert!(matches!(j.verify("not.a.jwt"), Err(AuthError::Malformed)));
    }

    #[test]
    fn alg_none_is_refused() {
        let j = jwt("the-eye");
        let token = j.issue("shop", &[], None).expect("issue");
        let payload = token.split('.').nth(1).expect("payload");
        // {"alg":"none","typ":"JWT"}
        let unsigned = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.");
        assert!(matches!(
            j.verify(&unsigned),
            Err(AuthError::AlgorithmNotAccepted)
        ));
    }

    #[test]
    fn a_rotated_ring_verifies_old_and_new_keys_and_refuses_unknown_kids() {
        let old = jwt_with(Some(&format!("k1:{SECRET}")), None, "the-eye");
        let ring = format!("k1:{SECRET},k2:{OTHER}");
        let both = jwt_with(Some(&ring), Some("k2"), "the-eye");
        let new_only = jwt_with(Some(&format!("k2:{OTHER}")), None, "the-eye");
        let old_token = old.issue("shop", &[], None).expect("issue");
        let new_token = both.issue("shop", &[], None).expect("issue");
        assert_eq!(both.signing_kid(), "k2");
        assert!(both.verify(&old_token).is_ok());
        assert!(new_only.verify(&new_token).is_ok());
        assert!(matches!(
            new_only.verify(&old_token),
            Err(AuthError::UnknownKey)
        ));
    }
}
