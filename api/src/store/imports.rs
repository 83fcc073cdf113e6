//! The api's queries on imports: create the row, mark it staged or failed, read one, list an
//! application's, cancel, and page through the refused rows. (Staging the rows themselves is
//! a COPY, in `crate::imports::stage`.)

use chrono::{DateTime, Utc};
use eye_core::import::{ImportSpec, STATE_CANCELLED, STATE_FAILED, STATE_QUEUED, STATE_RUNNING};
use sea_orm::{ConnectionTrait, DatabaseConnection, FromQueryResult, Statement, Value};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::StoreError;

const COLUMNS: &str = "id, app_id, spec->>'format' AS format, state, staged_rows, rows_read, \
    accepted, refused, stored, duplicates, suppressed, version, error, created_by, created_at, \
    started_at, finished_at, updated_at";

/// An import as `GET /imports/{id}` shows it. `rows_read = accepted + refused` and
/// `accepted = stored + duplicates + suppressed` once each chunk is committed.
#[derive(Debug, Clone, Serialize, FromQueryResult, ToSchema)]
pub struct ImportOut {
    pub id: Uuid,
    pub app_id: String,
    /// `csv` or `ndjson`.
    pub format: Option<String>,
    /// `queued`, `running`, `done`, `failed` or `cancelled`.
    pub state: String,
    /// Rows of the file staged for the importer; null while the upload is under way.
    pub staged_rows: Option<i64>,
    pub rows_read: i64,
    pub accepted: i64,
    /// Rows refused by the mapping or a validator (`GET /imports/{id}/refused`).
    pub refused: i64,
    /// New events stored.
    pub stored: i64,
    /// Accepted rows whose event was already there (same id or natural key).
    pub duplicates: i64,
    /// Accepted rows of an erased session: not stored.
    pub suppressed: i64,
    /// Bumped by every change: the id of the progress events.
    pub version: i64,
    pub error: Option<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

impl ImportOut {
    /// Whether the import has ended (no more progress will come).
    pub fn finished(&self) -> bool {
        self.state != STATE_QUEUED && self.state != STATE_RUNNING
    }
}

/// A refused row.
#[derive(Debug, Clone, FromQueryResult)]
pub struct RefusedRow {
    pub row_no: i64,
    pub column: String,
    pub message: String,
    pub line: String,
}

fn stmt(db: &DatabaseConnection, sql: impl Into<String>, values: Vec<Value>) -> Statement {
    Statement::from_sql_and_values(db.get_database_backend(), sql.into(), values)
}

/// Records a queued import whose rows are being staged.
pub async fn create(
    db: &DatabaseConnection,
    id: Uuid,
    app_id: &str,
    spec: &ImportSpec,
    created_by: &str,
) -> Result<(), StoreError> {
    let spec = serde_json::to_value(spec)?;
    db.execute_raw(stmt(
        db,
        "INSERT INTO imports (id, app_id, spec, created_by) VALUES ($1, $2, $3, $4)",
        vec![id.into(), app_id.into(), spec.into(), created_by.into()],
    ))
    .await?;
    Ok(())
}

/// Every row is staged: a worker may take the import. False if it is no longer queued
/// (cancelled, or failed by the sweeper meanwhile).
pub async fn mark_staged(db: &DatabaseConnection, id: Uuid, rows: u64) -> Result<bool, StoreError> {
    let done = db
        .execute_raw(stmt(
            db,
            format!(
                "UPDATE imports SET staged_rows = $2, version = version + 1, updated_at = now() \
                 WHERE id = $1 AND state = '{STATE_QUEUED}' AND staged_rows IS NULL"
            ),
            vec![id.into(), (rows as i64).into()],
        ))
        .await?;
    Ok(done.rows_affected() == 1)
}

/// The upload is moving: its `updated_at` is now (the sweeper of abandoned uploads goes by
/// it). False if the import is no longer queued.
pub async fn touch_staging(db: &DatabaseConnection, id: Uuid) -> Result<bool, StoreError> {
    let done = db
        .execute_raw(stmt(
            db,
            format!(
                "UPDATE imports SET updated_at = now() \
                 WHERE id = $1 AND state = '{STATE_QUEUED}' AND staged_rows IS NULL"
            ),
            vec![id.into()],
        ))
        .await?;
    Ok(done.rows_affected() == 1)
}

/// The upload failed: the import is failed (unless cancelled meanwhile) and its staged rows
/// dropped, in one statement (whoever sees it failed sees no rows of it).
pub async fn fail(db: &DatabaseConnection, id: Uuid, error: &str) -> Result<(), StoreError> {
    db.execute_raw(stmt(
        db,
        format!(
            "WITH dropped AS (DELETE FROM import_rows WHERE import_id = $1) \
             UPDATE imports SET state = '{STATE_FAILED}', error = $2, finished_at = now(), \
                 version = version + 1, updated_at = now() \
             WHERE id = $1 AND state = '{STATE_QUEUED}' AND staged_rows IS NULL"
        ),
        vec![id.into(), error.replace('\0', "").into()],
    ))
    .await?;
    Ok(())
}

/// One import, if `app` (None: any) owns it.
pub async fn get(
    db: &DatabaseConnection,
    id: Uuid,
    app: Option<&str>,
) -> Result<Option<ImportOut>, StoreError> {
    Ok(ImportOut::find_by_statement(stmt(
        db,
        format!(
            "SELECT {COLUMNS} FROM imports WHERE id = $1 AND ($2::text IS NULL OR app_id = $2)"
        ),
        vec![id.into(), app.map(str::to_owned).into()],
    ))
    .one(db)
    .await?)
}

/// The newest imports of `app` (None: of every application).
pub async fn list(
    db: &DatabaseConnection,
    app: Option<&str>,
    limit: u64,
) -> Result<Vec<ImportOut>, StoreError> {
    Ok(ImportOut::find_by_statement(stmt(
        db,
        format!(
            "SELECT {COLUMNS} FROM imports WHERE ($1::text IS NULL OR app_id = $1) \
             ORDER BY created_at DESC, id DESC LIMIT $2"
        ),
        vec![app.map(str::to_owned).into(), (limit as i64).into()],
    ))
    .all(db)
    .await?)
}

/// Cancels a queued or running import (the importer's next chunk sees it and stops; a chunk
/// committing meanwhile holds the row's lock, so it is either wholly counted or not written).
/// A finished import is answered as it is.
pub async fn cancel(
    db: &DatabaseConnection,
    id: Uuid,
    app: Option<&str>,
) -> Result<Option<ImportOut>, StoreError> {
    db.execute_raw(stmt(
        db,
        format!(
            "UPDATE imports SET state = '{STATE_CANCELLED}', finished_at = now(), \
                 version = version + 1, updated_at = now(), lease_until = NULL \
             WHERE id = $1 AND ($2::text IS NULL OR app_id = $2) \
               AND state IN ('{STATE_QUEUED}', '{STATE_RUNNING}')"
        ),
        vec![id.into(), app.map(str::to_owned).into()],
    ))
    .await?;
    // A queued import no worker holds: its staged rows go now (a running one's importer drops
    // them when it stops).
    db.execute_raw(stmt(
        db,
        format!(
            "DELETE FROM import_rows WHERE import_id = $1 AND EXISTS (SELECT 1 FROM imports \
             WHERE id = $1 AND state = '{STATE_CANCELLED}' AND started_at IS NULL)"
        ),
        vec![id.into()],
    ))
    .await?;
    get(db, id, app).await
}

/// Up to `limit` refused rows of an import after row `after`, in file order.
pub async fn refused(
    db: &DatabaseConnection,
    id: Uuid,
    after: i64,
    limit: u64,
) -> Result<Vec<RefusedRow>, StoreError> {
    Ok(RefusedRow::find_by_statement(stmt(
        db,
        "SELECT row_no, \"column\", message, line FROM import_refused \
         WHERE import_id = $1 AND row_no > $2 ORDER BY row_no LIMIT $3",
        vec![id.into(), after.into(), (limit as i64).into()],
    ))
    .all(db)
    .await?)
}
