//! Export runs in PostgreSQL: created pending (with the snapshot instant that fixes which
//! records they export), claimed under a lease renewed at every chunk, one row per chunk
//! written (what a resumed run skips), then succeeded or failed.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, DbErr, FromQueryResult, Statement, Value,
};
use serde::Serialize;
use uuid::Uuid;

use crate::ExportError;
use crate::chunk::DataFile;
use crate::spec::ExportSpec;

/// An export run as stored.
#[derive(Debug, Clone, FromQueryResult, Serialize)]
pub struct Run {
    pub id: Uuid,
    pub name: String,
    pub spec: serde_json::Value,
    pub state: String,
    pub snapshot_at: DateTime<Utc>,
    pub generation: String,
    pub files_written: i32,
    pub records: i64,
    pub error: Option<String>,
    pub descriptor_key: Option<String>,
    pub attempts: i32,
    pub schedule_name: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl Run {
    pub fn spec(&self) -> Result<ExportSpec, ExportError> {
        serde_json::from_value(self.spec.clone())
            .map_err(|e| ExportError::Destination(format!("stored spec unreadable: {e}")))
    }
}

/// A chunk file a run wrote, with the key its next chunk starts after.
#[derive(Debug, Clone, FromQueryResult)]
pub struct FileRow {
    pub seq: i32,
    pub file_name: String,
    pub records: i32,
    pub bytes: i64,
    pub sha256: String,
    pub last_key: serde_json::Value,
}

impl FileRow {
    pub fn data_file(&self) -> DataFile {
        DataFile {
            file_name: self.file_name.clone(),
            records: u32::try_from(self.records).unwrap_or(0),
            bytes: u64::try_from(self.bytes).unwrap_or(0),
            sha256: self.sha256.clone(),
        }
    }
}

const RUN_COLUMNS: &str = "id, name, spec, state, snapshot_at, generation, files_written, \
    records, error, descriptor_key, attempts, schedule_name, created_at, started_at, finished_at";

fn stmt(sql: &str, values: Vec<Value>) -> Statement {
    Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
}

async fn one_run(db: &impl ConnectionTrait, s: Statement) -> Result<Option<Run>, DbErr> {
    match db.query_one_raw(s).await? {
        Some(row) => Ok(Some(Run::from_query_result(&row, "")?)),
        None => Ok(None),
    }
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// A new pending run of `spec`: its snapshot is now, its generation the snapshot's UTC time.
pub async fn create(
    db: &impl ConnectionTrait,
    spec: &ExportSpec,
    schedule: Option<&str>,
) -> Result<Run, ExportError> {
    spec.validate()?;
    let spec_json =
        serde_json::to_value(spec).map_err(|e| ExportError::Destination(e.to_string()))?;
    let sql = format!(
        "INSERT INTO exports (id, name, spec, state, snapshot_at, generation, schedule_name) \
         VALUES ($1, $2, $3, 'pending', clock_timestamp(), \
                 to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYYMMDD\"T\"HH24MISS.US\"Z\"'), $4) \
         RETURNING {RUN_COLUMNS}"
    );
    let values = vec![
        Uuid::now_v7().into(),
        spec.name.clone().into(),
        spec_json.into(),
        schedule.map(str::to_owned).into(),
    ];
    one_run(db, stmt(&sql, values))
        .await?
        .ok_or(ExportError::NotFound)
}

pub async fn get(db: &DatabaseConnection, id: Uuid) -> Result<Option<Run>, DbErr> {
    let sql = format!("SELECT {RUN_COLUMNS} FROM exports WHERE id = $1");
    one_run(db, stmt(&sql, vec![id.into()])).await
}

/// The newest `limit` runs, newest first (the console's Exports page).
pub async fn list(db: &DatabaseConnection, limit: u64) -> Result<Vec<Run>, DbErr> {
    let sql = format!("SELECT {RUN_COLUMNS} FROM exports ORDER BY created_at DESC, id LIMIT $1");
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = db.query_all_raw(stmt(&sql, vec![limit.into()])).await?;
    rows.iter()
        .map(|row| Run::from_query_result(row, ""))
        .collect()
}

/// Takes run `id` for `owner`: a pending or failed one, or a running one whose lease expired
/// (its process died). None when another process holds it or it has succeeded.
pub async fn claim(
    db: &DatabaseConnection,
    id: Uuid,
    owner: &str,
    lease: Duration,
) -> Result<Option<Run>, DbErr> {
    let sql = format!(
        "UPDATE exports SET state = 'running', lease_owner = $2, \
             lease_until = now() + make_interval(secs => $3), attempts = attempts + 1, \
             started_at = coalesce(started_at, now()), error = NULL, finished_at = NULL \
         WHERE id = $1 AND (state IN ('pending', 'failed') \
             OR (state = 'running' AND lease_until < now())) \
         RETURNING {RUN_COLUMNS}"
    );
    one_run(
        db,
        stmt(&sql, vec![id.into(), owner.into(), secs(lease).into()]),
    )
    .await
}

/// Failed runs are taken again automatically up to this many attempts in all.
pub const MAX_ATTEMPTS: i32 = 5;

/// Takes the oldest pending run, a running one whose lease expired, or a failed one due for
/// another attempt (30 s times its attempts after it failed, [`MAX_ATTEMPTS`] at most),
/// for `owner`.
pub async fn claim_next(
    db: &DatabaseConnection,
    owner: &str,
    lease: Duration,
) -> Result<Option<Run>, DbErr> {
    let sql = format!(
        "UPDATE exports SET state = 'running', lease_owner = $1, \
             lease_until = now() + make_interval(secs => $2), attempts = attempts + 1, \
             started_at = coalesce(started_at, now()), error = NULL, finished_at = NULL \
         WHERE id = (SELECT id FROM exports \
             WHERE state = 'pending' OR (state = 'running' AND lease_until < now()) \
                OR (state = 'failed' AND attempts < $3 \
                    AND finished_at < now() - make_interval(secs => 30 * attempts)) \
             ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED) \
         RETURNING {RUN_COLUMNS}"
    );
    one_run(
        db,
        stmt(
            &sql,
            vec![owner.into(), secs(lease).into(), MAX_ATTEMPTS.into()],
        ),
    )
    .await
}

/// The chunk files run `id` has written, in order.
pub async fn files(db: &DatabaseConnection, id: Uuid) -> Result<Vec<FileRow>, DbErr> {
    let rows = db
        .query_all_raw(stmt(
            "SELECT seq, file_name, records, bytes, sha256, last_key FROM export_files \
             WHERE export_id = $1 ORDER BY seq",
            vec![id.into()],
        ))
        .await?;
    rows.iter()
        .map(|row| FileRow::from_query_result(row, ""))
        .collect()
}

/// Forgets the files of run `id` from `seq` on (their objects were missing or different):
/// they are written again.
pub async fn forget_files_from(db: &DatabaseConnection, id: Uuid, seq: i32) -> Result<(), DbErr> {
    db.execute_raw(stmt(
        "DELETE FROM export_files WHERE export_id = $1 AND seq >= $2",
        vec![id.into(), seq.into()],
    ))
    .await?;
    Ok(())
}

/// Records chunk `seq` as written, updates the counters and renews the lease, in one
/// statement; fails with [`ExportError::LeaseLost`] when `owner` no longer holds the run.
pub async fn record_file(
    db: &DatabaseConnection,
    id: Uuid,
    owner: &str,
    lease: Duration,
    seq: u32,
    file: &DataFile,
    last_key: &[String],
) -> Result<(), ExportError> {
    let sql = "WITH held AS ( \
             UPDATE exports SET files_written = $2, records = records + $4, \
                 lease_until = now() + make_interval(secs => $8) \
             WHERE id = $1 AND lease_owner = $9 AND state = 'running' RETURNING id) \
         INSERT INTO export_files (export_id, seq, file_name, records, bytes, sha256, last_key) \
         SELECT id, $2, $3, $4, $5, $6, $7 FROM held";
    let values: Vec<Value> = vec![
        id.into(),
        i32::try_from(seq).unwrap_or(i32::MAX).into(),
        file.file_name.clone().into(),
        i32::try_from(file.records).unwrap_or(i32::MAX).into(),
        i64::try_from(file.bytes).unwrap_or(i64::MAX).into(),
        file.sha256.clone().into(),
        serde_json::json!(last_key).into(),
        secs(lease).into(),
        owner.into(),
    ];
    let done = db.execute_raw(stmt(sql, values)).await?;
    if done.rows_affected() == 0 {
        return Err(ExportError::LeaseLost);
    }
    Ok(())
}

/// Sets the counters to what the kept files say (after a resume forgot some).
pub async fn reset_counters(
    db: &DatabaseConnection,
    id: Uuid,
    files: i32,
    records: i64,
) -> Result<(), DbErr> {
    db.execute_raw(stmt(
        "UPDATE exports SET files_written = $2, records = $3 WHERE id = $1",
        vec![id.into(), files.into(), records.into()],
    ))
    .await?;
    Ok(())
}

pub async fn succeed(
    db: &DatabaseConnection,
    id: Uuid,
    owner: &str,
    descriptor_key: &str,
) -> Result<Run, ExportError> {
    let sql = format!(
        "UPDATE exports SET state = 'succeeded', descriptor_key = $3, finished_at = now(), \
             lease_owner = NULL, lease_until = NULL \
         WHERE id = $1 AND lease_owner = $2 RETURNING {RUN_COLUMNS}"
    );
    one_run(
        db,
        stmt(&sql, vec![id.into(), owner.into(), descriptor_key.into()]),
    )
    .await?
    .ok_or(ExportError::LeaseLost)
}

pub async fn fail(
    db: &DatabaseConnection,
    id: Uuid,
    owner: &str,
    error: &str,
) -> Result<(), DbErr> {
    db.execute_raw(stmt(
        "UPDATE exports SET state = 'failed', error = $3, finished_at = now(), \
             lease_owner = NULL, lease_until = NULL \
         WHERE id = $1 AND lease_owner = $2",
        vec![id.into(), owner.into(), error.into()],
    ))
    .await?;
    Ok(())
}
