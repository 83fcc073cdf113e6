//! Registered applications and the tokens issued to them (tables `applications` and
//! `tokens`): what the registry commands change, and what the revocation state reloads.

use chrono::{DateTime, Utc};
use eye_core::entity::{application, token};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue, ColumnTrait, Condition, DatabaseConnection, EntityTrait, IntoActiveModel,
    QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use super::StoreError;

/// A rate-limit override as the table holds it (a value past `i32::MAX` is `i32::MAX`).
fn to_db(v: Option<u32>) -> Option<i32> {
    v.map(|v| i32::try_from(v).unwrap_or(i32::MAX))
}

/// Inserts application `id`, enabled, with these rate-limit overrides (None: the api's
/// defaults); Ok(false) if it existed (left as it was).
pub async fn insert_app(
    db: &DatabaseConnection,
    id: &str,
    name: &str,
    rate_per_sec: Option<u32>,
    rate_burst: Option<u32>,
) -> Result<bool, StoreError> {
    let model = application::ActiveModel {
        id: ActiveValue::Set(id.to_owned()),
        name: ActiveValue::Set(name.to_owned()),
        created_at: ActiveValue::Set(Utc::now()),
        disabled_at: ActiveValue::Set(None),
        rate_per_sec: ActiveValue::Set(to_db(rate_per_sec)),
        rate_burst: ActiveValue::Set(to_db(rate_burst)),
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
pub async fn list_apps(db: &DatabaseConnection) -> Result<Vec<application::Model>, StoreError> {
    Ok(application::Entity::find()
        .order_by_asc(application::Column::CreatedAt)
        .all(db)
        .await?)
}

/// Application `id`, if it is registered.
pub async fn find_app(
    db: &DatabaseConnection,
    id: &str,
) -> Result<Option<application::Model>, StoreError> {
    Ok(application::Entity::find_by_id(id.to_owned())
        .one(db)
        .await?)
}

/// Disables `id` (already disabled: left as it was); Ok(false) if there is no such
/// application.
pub async fn disable_app(db: &DatabaseConnection, id: &str) -> Result<bool, StoreError> {
    let updated = application::Entity::update_many()
        .col_expr(application::Column::DisabledAt, Utc::now().into())
        .filter(application::Column::Id.eq(id))
        .filter(application::Column::DisabledAt.is_null())
        .exec(db)
        .await?;
    Ok(updated.rows_affected > 0 || find_app(db, id).await?.is_some())
}

/// Enables `id` again (its tokens not revoked are accepted from the next reload on);
/// Ok(false) if there is no such application.
pub async fn enable_app(db: &DatabaseConnection, id: &str) -> Result<bool, StoreError> {
    let updated = application::Entity::update_many()
        .col_expr(
            application::Column::DisabledAt,
            Option::<DateTime<Utc>>::None.into(),
        )
        .filter(application::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(updated.rows_affected > 0)
}

/// Sets (or with None clears) `id`'s rate-limit overrides; Ok(false) if there is no such
/// application.
pub async fn set_limit(
    db: &DatabaseConnection,
    id: &str,
    rate_per_sec: Option<u32>,
    rate_burst: Option<u32>,
) -> Result<bool, StoreError> {
    let updated = application::Entity::update_many()
        .col_expr(application::Column::RatePerSec, to_db(rate_per_sec).into())
        .col_expr(application::Column::RateBurst, to_db(rate_burst).into())
        .filter(application::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(updated.rows_affected > 0)
}

/// Records an issued token (its id and metadata: the token itself is never stored).
pub async fn insert_token(db: &DatabaseConnection, issued: token::Model) -> Result<(), StoreError> {
    token::Entity::insert(issued.into_active_model())
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// Revokes the token `jti`; Ok(false) when no such token was issued or it was already
/// revoked.
pub async fn revoke_token(db: &DatabaseConnection, jti: Uuid) -> Result<bool, StoreError> {
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
) -> Result<Vec<token::Model>, StoreError> {
    let mut query = token::Entity::find().order_by_desc(token::Column::IssuedAt);
    if let Some(app) = app {
        query = query.filter(token::Column::AppId.eq(app));
    }
    Ok(query.all(db).await?)
}

/// The ids of the revoked tokens that expire after `expiring_after` or never: the ones a
/// verifier could still be shown.
pub async fn revoked_tokens(
    db: &DatabaseConnection,
    expiring_after: DateTime<Utc>,
) -> Result<Vec<Uuid>, StoreError> {
    Ok(token::Entity::find()
        .select_only()
        .column(token::Column::Jti)
        .filter(token::Column::RevokedAt.is_not_null())
        .filter(
            Condition::any()
                .add(token::Column::ExpiresAt.is_null())
                .add(token::Column::ExpiresAt.gt(expiring_after)),
        )
        .into_tuple()
        .all(db)
        .await?)
}
