//! Console sessions: signing in (an admin token pasted once, or a console user's password
//! checked against its argon2 hash), the session cookie (HttpOnly, SameSite=Strict, Secure
//! behind TLS, expiring), and the CSRF token every form carries. A page is protected by
//! taking a [`Session`]; a form handler by taking [`Posted`], which also checks the CSRF
//! token, so no form can skip it.

use argon2::password_hash::SaltString;
use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::HeaderMap;
use axum::http::header::COOKIE;
use axum::http::request::Parts;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use rand::Rng;
use sha2::{Digest, Sha256};

use super::view::{AdminError, FormData};
use crate::auth::SCOPE_ADMIN;
use crate::state::AppState;
use crate::store::{self, StoreError};

/// The session cookie.
pub const COOKIE_NAME: &str = "eye_session";
/// The sign-in form's CSRF cookie (double submit: there is no session yet).
pub const LOGIN_CSRF_COOKIE: &str = "eye_login_csrf";
/// How long a session lasts.
pub const SESSION_TTL: chrono::Duration = chrono::Duration::hours(8);

/// A signed-in operator.
#[derive(Debug, Clone)]
pub struct Session {
    /// A console user's name, or `token:<app>` for an admin token.
    pub who: String,
    /// The token every form of this session carries.
    pub csrf: String,
    /// The hash the session is stored under.
    id_hash: String,
}

impl Session {
    pub fn id_hash(&self) -> &str {
        &self.id_hash
    }
}

/// 32 random bytes, URL-safe base64.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn hash(value: &str) -> String {
    Sha256::digest(value.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Compares without stopping at the first difference.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

/// The value of cookie `name` in the request's headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Whether the request came over TLS (the api itself serves plain HTTP: a TLS proxy in
/// front says so with `X-Forwarded-Proto: https`).
pub fn over_tls(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

/// A `Set-Cookie` value scoped to the console.
pub fn set_cookie(name: &str, value: &str, max_age_secs: i64, secure: bool) -> String {
    format!(
        "{name}={value}; Path=/admin; HttpOnly; SameSite=Strict; Max-Age={max_age_secs}{}",
        if secure { "; Secure" } else { "" }
    )
}

impl FromRequestParts<AppState> for Session {
    type Rejection = AdminError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AdminError> {
        let cookie = cookie(&parts.headers, COOKIE_NAME).ok_or(AdminError::SignIn)?;
        let id_hash = hash(cookie);
        let row = store::console::find_session(&state.reads, &id_hash)
            .await?
            .ok_or(AdminError::SignIn)?;
        Ok(Session {
            who: row.who,
            csrf: row.csrf,
            id_hash,
        })
    }
}

/// A form posted within a session, its CSRF token checked (the `csrf` field, or the
/// `X-CSRF-Token` header htmx sends).
pub struct Posted {
    pub session: Session,
    pub form: FormData,
}

impl FromRequest<AppState> for Posted {
    type Rejection = AdminError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, AdminError> {
        let (mut parts, body) = req.into_parts();
        let session = Session::from_request_parts(&mut parts, state).await?;
        let header = parts
            .headers
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let form = FormData::from_request(Request::from_parts(parts, body), state).await?;
        let sent = form.get("csrf").map(str::to_owned).or(header);
        if !sent.is_some_and(|sent| same(&sent, &session.csrf)) {
            return Err(AdminError::Csrf);
        }
        Ok(Posted { session, form })
    }
}

/// Who signs in with what.
pub enum Credentials<'a> {
    /// An admin-scoped token of a registered, enabled application, not revoked.
    Token(&'a str),
    Password {
        username: &'a str,
        password: &'a str,
    },
}

/// Checks `credentials`; Ok(Some(who)) when they hold, Ok(None) when they do not.
pub async fn check(
    state: &AppState,
    credentials: Credentials<'_>,
) -> Result<Option<String>, AdminError> {
    match credentials {
        Credentials::Token(token) => {
            let Ok(claims) = state.jwt.verify(token) else {
                return Ok(None);
            };
            if !claims.scope.split_whitespace().any(|s| s == SCOPE_ADMIN) {
                return Ok(None);
            }
            Ok(state
                .auth
                .admit(&claims)
                .await
                .ok()
                .map(|_| format!("token:{}", claims.sub)))
        }
        Credentials::Password { username, password } => {
            let stored = store::console::user_hash(&state.reads, username).await?;
            let password = password.to_owned();
            // Hashing is slow on purpose: off the async threads. An unknown user costs a hash
            // all the same, so timing does not tell which names exist.
            let ok = tokio::task::spawn_blocking(move || match stored {
                Some(stored) => verify_password(&password, &stored),
                None => {
                    let _ = hash_password(&password);
                    false
                }
            })
            .await
            .unwrap_or(false);
            Ok(ok.then(|| username.to_owned()))
        }
    }
}

/// An argon2id PHC string of `password`, with a random salt.
pub fn hash_password(password: &str) -> Result<String, argon2::password_hash::Error> {
    let mut salt = [0u8; 16];
    rand::rng().fill(&mut salt);
    let salt = SaltString::encode_b64(&salt)?;
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

fn verify_password(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// Opens a session for `who`: the cookie value to set.
pub async fn open(state: &AppState, who: &str) -> Result<String, StoreError> {
    let cookie = random_token();
    store::console::insert_session(
        &state.reads,
        &hash(&cookie),
        who,
        &random_token(),
        Utc::now() + SESSION_TTL,
    )
    .await?;
    Ok(cookie)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_against_its_hash_only() {
        let stored = hash_password("correct horse").expect("hash");
        assert!(stored.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &stored));
        assert!(!verify_password("correct horsf", &stored));
        assert!(!verify_password("correct horse", "not a hash"));
    }

    #[test]
    fn cookies_are_found_by_exact_name() {
        let mut headers = HeaderMap::new();
        headers.insert(
            COOKIE,
            "a=1; eye_session_x=2; eye_session=3".parse().expect("h"),
        );
        assert_eq!(cookie(&headers, COOKIE_NAME), Some("3"));
        assert_eq!(cookie(&headers, "b"), None);
        assert!(same("abc", "abc") && !same("abc", "abd") && !same("abc", "ab"));
    }
}
