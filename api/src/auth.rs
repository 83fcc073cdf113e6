//! Bearer tokens: issuing them (`eye-api token`) and checking them (the [`Caller`]
//! extractor: a handler is protected by taking a `Caller`).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::ApiError;
use crate::settings::JwtSettings;

/// Scope needed to send events.
pub const SCOPE_EVENTS_WRITE: &str = "events:write";
/// Scope needed to read an application's events.
pub const SCOPE_EVENTS_READ: &str = "events:read";

/// Scope that reads (and later manages) every application.
pub const SCOPE_ADMIN: &str = "admin";

/// Longest application id accepted in `sub`.
const MAX_APP_ID_CHARS: usize = 128;

/// What a token says.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The application id.
    pub sub: String,
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    pub jti: String,
    /// Space-separated scopes, as in OAuth 2.
    pub scope: String,
}

/// Why a request was not authenticated.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing bearer token: send `Authorization: Bearer <token>`")]
    Missing,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("invalid token: {0}")]
    Invalid(&'static str),
}

impl AuthError {
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

/// Signs and verifies tokens with one HS256 key.
pub struct Jwt {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    audience: String,
}

impl std::fmt::Debug for Jwt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jwt")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl Jwt {
    pub fn new(settings: &JwtSettings) -> Self {
        let secret = settings.secret.expose().as_bytes();
        // Only HS256 is accepted: `alg: none` and any other algorithm are refused.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[&settings.issuer]);
        validation.set_audience(&[&settings.audience]);
        validation.set_required_spec_claims(&["sub", "iss", "aud"]);
        validation.validate_nbf = true;
        validation.leeway = 30;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
        }
    }

    /// Issues a token for `app_id` with the given scopes, valid for `ttl` (or forever).
    pub fn issue(
        &self,
        app_id: &str,
        scopes: &[&str],
        ttl: Option<Duration>,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: app_id.to_owned(),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            iat: now,
            exp: ttl.map(|t| now.saturating_add(i64::try_from(t.as_secs()).unwrap_or(i64::MAX))),
            jti: Uuid::now_v7().to_string(),
            scope: scopes.join(" "),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
    }

    /// Checks signature, algorithm, issuer, audience and time claims.
    pub fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => AuthError::Expired,
                ErrorKind::ImmatureSignature => AuthError::NotYetValid,
                ErrorKind::InvalidSignature => AuthError::Invalid("bad signature"),
                ErrorKind::InvalidAlgorithm => AuthError::Invalid("algorithm not accepted"),
                ErrorKind::InvalidIssuer => AuthError::Invalid("wrong issuer"),
                ErrorKind::InvalidAudience => AuthError::Invalid("wrong audience"),
                ErrorKind::MissingRequiredClaim(_) | ErrorKind::InvalidClaimFormat(_) => {
                    AuthError::Invalid("missing or malformed claims")
                }
                _ => AuthError::Invalid("not a valid JWT"),
            })?;
        let sub = &data.claims.sub;
        if sub.is_empty()
            || sub.chars().count() > MAX_APP_ID_CHARS
            || sub.chars().any(char::is_control)
        {
            return Err(AuthError::Invalid("bad subject"));
        }
        Ok(data.claims)
    }
}

/// The authenticated application behind a request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub app_id: String,
    scopes: Vec<String>,
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
}

impl<S> FromRequestParts<S> for Caller
where
    S: Send + Sync,
    Arc<Jwt>: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
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
        let claims = Arc::<Jwt>::from_ref(state).verify(token)?;
        Ok(Caller {
            app_id: claims.sub,
            scopes: claims.scope.split_whitespace().map(str::to_owned).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eye_core::Secret;

    fn jwt(secret: &str, issuer: &str) -> Jwt {
        Jwt::new(&JwtSettings {
            secret: Secret::new(secret.into()),
            issuer: issuer.into(),
            audience: "eye-api".into(),
        })
    }

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn an_issued_token_verifies_with_its_app_and_scopes() {
        let j = jwt(SECRET, "the-eye");
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
        let j = jwt(SECRET, "the-eye");
        let other_key = jwt("another-secret-another-secret-xx", "the-eye");
        let other_issuer = jwt(SECRET, "someone-else");
        let token = other_key.issue("shop", &[], None).expect("issue");
        assert!(matches!(
            j.verify(&token),
            Err(AuthError::Invalid("bad signature"))
        ));
        let token = other_issuer.issue("shop", &[], None).expect("issue");
        assert!(matches!(
            j.verify(&token),
            Err(AuthError::Invalid("wrong issuer"))
        ));
        let mut token = j.issue("shop", &[], None).expect("issue");
        token.insert(token.len() - 3, 'x');
        assert!(j.verify(&token).is_err());
        assert!(matches!(j.verify("not.a.jwt"), Err(AuthError::Invalid(_))));
    }

    #[test]
    fn alg_none_is_refused() {
        let j = jwt(SECRET, "the-eye");
        let token = j.issue("shop", &[], None).expect("issue");
        let payload = token.split('.').nth(1).expect("payload");
        // {"alg":"none","typ":"JWT"}
        let unsigned = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.");
        assert!(j.verify(&unsigned).is_err());
    }
}
