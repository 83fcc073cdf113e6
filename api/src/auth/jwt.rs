//! Signing and verifying tokens with a key ring: every key has an id (`kid`, in the token's
//! header), several may verify at once, one signs. That is what lets a key be rotated
//! without downtime (README, "Key rotation").

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::AuthError;
use crate::settings::{JwtSettings, SettingsError};

/// The `kid` of the single key given by `EYE_JWT_SECRET`, and the key a token without a
/// `kid` (minted before key ids existed) is checked with.
pub const DEFAULT_KID: &str = "default";

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

/// The part of a token header looked at before the signature is: which key, which algorithm.
#[derive(Deserialize)]
struct RawHeader {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
}

/// Signs with one key and verifies with any key of the ring (HS256 only).
pub struct Jwt {
    signing_kid: String,
    encoding: EncodingKey,
    decoding: HashMap<String, DecodingKey>,
    validation: Validation,
    issuer: String,
    audience: String,
}

impl std::fmt::Debug for Jwt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jwt")
            .field("issuer", &self.issuer)
            .field("signing_kid", &self.signing_kid)
            .finish_non_exhaustive()
    }
}

impl Jwt {
    /// Builds the ring from the settings; refuses short secrets and an unknown signing kid.
    pub fn new(settings: &JwtSettings) -> Result<Self, SettingsError> {
        let ring = settings.key_ring()?;
        // Only HS256 is accepted: `alg: none` and every other algorithm (among them the
        // RS256/HS256 confusion) are refused before any key is used.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[&settings.issuer]);
        validation.set_audience(&[&settings.audience]);
        validation.set_required_spec_claims(&["sub", "iss", "aud"]);
        validation.validate_nbf = true;
        validation.leeway = 30;
        let encoding = ring
            .keys
            .iter()
            .find(|(kid, _)| *kid == ring.signing_kid)
            .map(|(_, secret)| EncodingKey::from_secret(secret.as_bytes()))
            .ok_or_else(|| SettingsError::new("EYE_JWT_SIGNING_KID names no key"))?;
        let decoding = ring
            .keys
            .iter()
            .map(|(kid, secret)| (kid.clone(), DecodingKey::from_secret(secret.as_bytes())))
            .collect();
        Ok(Self {
            signing_kid: ring.signing_kid,
            encoding,
            decoding,
            validation,
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
        })
    }

    /// The `kid` new tokens are signed with.
    pub fn signing_kid(&self) -> &str {
        &self.signing_kid
    }

    /// The claims of a new token for `app_id`, with a fresh `jti`.
    pub fn claims(&self, app_id: &str, scopes: &[&str], ttl: Option<Duration>) -> Claims {
        let now = chrono::Utc::now().timestamp();
        Claims {
            sub: app_id.to_owned(),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            iat: now,
            exp: ttl.map(|t| now.saturating_add(i64::try_from(t.as_secs()).unwrap_or(i64::MAX))),
            jti: Uuid::now_v7().to_string(),
            scope: scopes.join(" "),
        }
    }

    /// Signs `claims` with the signing key, naming it in the header.
    pub fn sign(&self, claims: &Claims) -> Result<String, jsonwebtoken::errors::Error> {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.signing_kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding)
    }

    /// Issues a token for `app_id` (not recorded anywhere: see `apps::issue_token`).
    pub fn issue(
        &self,
        app_id: &str,
        scopes: &[&str],
        ttl: Option<Duration>,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        self.sign(&self.claims(app_id, scopes, ttl))
    }

    /// Checks algorithm, key id, signature, issuer, audience and time claims.
    pub fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        let header = token
            .split('.')
            .next()
            .and_then(|h| URL_SAFE_NO_PAD.decode(h).ok())
            .and_then(|h| serde_json::from_slice::<RawHeader>(&h).ok())
            .ok_or(AuthError::Malformed)?;
        if header.alg != "HS256" {
            return Err(AuthError::AlgorithmNotAccepted);
        }
        let kid = header.kid.as_deref().unwrap_or(DEFAULT_KID);
        let key = self.decoding.get(kid).ok_or(AuthError::UnknownKey)?;
        let data =
            jsonwebtoken::decode::<Claims>(token, key, &self.validation).map_err(|e| {
                match e.kind() {
                    ErrorKind::ExpiredSignature => AuthError::Expired,
                    ErrorKind::ImmatureSignature => AuthError::NotYetValid,
                    ErrorKind::InvalidSignature => AuthError::BadSignature,
                    ErrorKind::InvalidAlgorithm => AuthError::AlgorithmNotAccepted,
                    ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
                    ErrorKind::InvalidAudience => AuthError::WrongAudience,
                    ErrorKind::MissingRequiredClaim(_) | ErrorKind::InvalidClaimFormat(_) => {
                        AuthError::BadClaims
                    }
                    _ => AuthError::Malformed,
                }
            })?;
        let sub = &data.claims.sub;
        if sub.is_empty()
            || sub.chars().count() > MAX_APP_ID_CHARS
            || sub.chars().any(char::is_control)
        {
            return Err(AuthError::BadClaims);
        }
        Ok(data.claims)
    }
}
