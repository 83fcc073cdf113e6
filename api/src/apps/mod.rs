//! Registered applications and the tokens issued to them: the registry's rules (used by
//! the `eye-api apps|tokens` commands; the rows are [`crate::store::apps`]'s) and the api's
//! in-memory view of it ([`AuthCache`]).

mod cache;
pub mod limits;
pub mod usage;

use std::time::Duration;

use chrono::{TimeZone, Utc};
use eye_core::entity::token;
use sea_orm::DatabaseConnection;
use uuid::Uuid;

pub use cache::{AppEntry, AuthCache};

use crate::auth::Jwt;
use crate::store::{self, StoreError};

/// What the registry's commands fail with.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no application `{0}`")]
    UnknownApp(String),
    #[error("application `{0}` is disabled")]
    Disabled(String),
    #[error("application ids are 1 to 128 characters, no control characters")]
    BadId,
    #[error("cannot sign: {0}")]
    Sign(#[from] jsonwebtoken::errors::Error),
}

/// Registers `id` (display name `name`, the id when None) with optional rate-limit
/// overrides (per second, burst); Ok(false) if it existed.
pub async fn create_app(
    db: &DatabaseConnection,
    id: &str,
    name: Option<&str>,
    limit: (Option<u32>, Option<u32>),
) -> Result<bool, RegistryError> {
    let id = id.trim();
    if id.is_empty() || id.chars().count() > 128 || id.chars().any(char::is_control) {
        return Err(RegistryError::BadId);
    }
    Ok(store::apps::insert_app(db, id, name.unwrap_or(id), limit.0, limit.1).await?)
}

/// Disables `id`: every token of it is refused from the next reload on.
pub async fn disable_app(db: &DatabaseConnection, id: &str) -> Result<(), RegistryError> {
    if !store::apps::disable_app(db, id).await? {
        return Err(RegistryError::UnknownApp(id.to_owned()));
    }
    Ok(())
}

/// Enables `id` again: its tokens not revoked are accepted from the next reload on.
pub async fn enable_app(db: &DatabaseConnection, id: &str) -> Result<(), RegistryError> {
    if !store::apps::enable_app(db, id).await? {
        return Err(RegistryError::UnknownApp(id.to_owned()));
    }
    Ok(())
}

/// Sets (or with None clears) `id`'s rate-limit override.
pub async fn set_limit(
    db: &DatabaseConnection,
    id: &str,
    per_sec: Option<u32>,
    burst: Option<u32>,
) -> Result<(), RegistryError> {
    if !store::apps::set_limit(db, id, per_sec, burst).await? {
        return Err(RegistryError::UnknownApp(id.to_owned()));
    }
    Ok(())
}

/// A token just issued: the token (shown once, never stored) and its id.
#[derive(Debug)]
pub struct Issued {
    pub jti: Uuid,
    pub token: String,
}

/// Issues a token for the enabled application `app` and records its `jti`, key id, scopes
/// and lifetime (never the token).
pub async fn issue_token(
    db: &DatabaseConnection,
    jwt: &Jwt,
    app: &str,
    scopes: &[&str],
    ttl: Option<Duration>,
) -> Result<Issued, RegistryError> {
    let found = store::apps::find_app(db, app)
        .await?
        .ok_or_else(|| RegistryError::UnknownApp(app.to_owned()))?;
    if found.disabled_at.is_some() {
        return Err(RegistryError::Disabled(app.to_owned()));
    }
    let jti = Uuid::now_v7();
    let claims = crate::auth::Claims {
        jti: jti.to_string(),
        ..jwt.claims(app, scopes, ttl)
    };
    let at = |secs: i64| Utc.timestamp_opt(secs, 0).single();
    let record = token::Model {
        jti,
        app_id: app.to_owned(),
        kid: jwt.signing_kid().to_owned(),
        scopes: claims.scope.clone(),
        issued_at: at(claims.iat).unwrap_or_else(Utc::now),
        expires_at: claims.exp.and_then(at),
        revoked_at: None,
        last_used_at: None,
    };
    store::apps::insert_token(db, record).await?;
    Ok(Issued {
        jti,
        token: jwt.sign(&claims)?,
    })
}
