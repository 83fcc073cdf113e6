//! Registered applications and the tokens issued to them: the registry (used by the
//! `eye-api apps|tokens` commands) and the api's in-memory view of it ([`AuthCache`]).

mod cache;
pub mod limits;

use std::time::Duration;

use chrono::{TimeZone, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue, ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder,
};
use uuid::Uuid;

pub use cache::{AppEntry, AuthCache};
use eye_core::entity::{application, token};

use crate::auth::Jwt;

/// What the registry's commands fail with.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("database: {0}")]
    Db(#[from] DbErr),
    #[error("no application `{0}`")]
    UnknownApp(String),
    #[error("application `{0}` is disabled")]
    Disabled(String),
    #[error("application ids are 1 to 128 characters, no control characters")]
    BadId,
    #[error("cannot sign: {0}")]
    Sign(#[from] jsonwebtoken::errors::Error),
}

/// Registers `id` (display name `name`, the id when None); Ok(false) if it existed.
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
    let to_db = |v: Option<u32>| v.map(|v| i32::try_from(v).unwrap_or(i32::MAX));
    let model = application::ActiveModel {
        id: ActiveValue::Set(id.to_owned()),
        name: ActiveValue::Set(name.unwrap_or(id).to_owned()),
        created_at: ActiveValue::Set(Utc::now()),
        disabled_at: ActiveValue::Set(None),
        rate_per_sec: ActiveValue::Set(to_db(limit.0)),
        rate_burst: ActiveValue::Set(to_db(limit.1)),
    };
    let inserted = application::Entity::insert(model)
        .on_conflict(
            OnConflict::column(application::Column::Id)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(inserted > 0)
}

/// Every application, oldest first.
pub async fn list_apps(db: &DatabaseConnection) -> Result<Vec<application::Model>, RegistryError> {
    Ok(application::Entity::find()
        .order_by_asc(application::Column::CreatedAt)
        .all(db)
        .await?)
}

/// Disables `id`: every token of it is refused from the next reload on.
pub async fn disable_app(db: &DatabaseConnection, id: &str) -> Result<(), RegistryError> {
    let updated = application::Entity::update_many()
        .col_expr(application::Column::DisabledAt, Utc::now().into())
        .filter(application::Column::Id.eq(id))
        .filter(application::Column::DisabledAt.is_null())
        .exec(db)
        .await?;
    if updated.rows_affected == 0 {
        let exists = application::Entity::find_by_id(id.to_owned())
            .one(db)
            .await?;
        if exists.is_none() {
            return Err(RegistryError::UnknownApp(id.to_owned()));
        }
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
    let to_db = |v: Option<u32>| v.map(|v| i32::try_from(v).unwrap_or(i32::MAX));
    let updated = application::Entity::update_many()
        .col_expr(application::Column::RatePerSec, to_db(per_sec).into())
        .col_expr(application::Column::RateBurst, to_db(burst).into())
        .filter(application::Column::Id.eq(id))
        .exec(db)
        .await?;
    if updated.rows_affected == 0 {
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
    let found = application::Entity::find_by_id(app.to_owned())
        .one(db)
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
    token::Entity::insert(token::ActiveModel {
        jti: ActiveValue::Set(jti),
        app_id: ActiveValue::Set(app.to_owned()),
        kid: ActiveValue::Set(jwt.signing_kid().to_owned()),
        scopes: ActiveValue::Set(claims.scope.clone()),
        issued_at: ActiveValue::Set(at(claims.iat).unwrap_or_else(Utc::now)),
        expires_at: ActiveValue::Set(claims.exp.and_then(at)),
        revoked_at: ActiveValue::Set(None),
    })
    .exec_without_returning(db)
    .await?;
    Ok(Issued {
        jti,
        token: jwt.sign(&claims)?,
    })
}

/// Revokes the token `jti`; Ok(false) when no such token was issued or it was already
/// revoked. Every replica refuses it from its next reload on.
pub async fn revoke_token(db: &DatabaseConnection, jti: Uuid) -> Result<bool, RegistryError> {
    let updated = token::Entity::update_many()
        .col_expr(token::Column::RevokedAt, Utc::now().into())
        .filter(token::Column::Jti.eq(jti))
        .filter(token::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(updated.rows_affected > 0)
}

/// The tokens issued to `app` (all when None), newest first.
pub async fn list_tokens(
    db: &DatabaseConnection,
    app: Option<&str>,
) -> Result<Vec<token::Model>, RegistryError> {
    let mut query = token::Entity::find().order_by_desc(token::Column::IssuedAt);
    if let Some(app) = app {
        query = query.filter(token::Column::AppId.eq(app));
    }
    Ok(query.all(db).await?)
}
