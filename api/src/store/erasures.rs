//! Erasures: the request with its dry run, the confirmation (which writes the tombstone under
//! the erasure lock), and reading one or a list. The worker's deleter does the deleting.

use chrono::{DateTime, Utc};
use eye_core::erasure::{ERASURE_LOCK, Filter, STATUS_CONFIRMED, STATUS_PENDING, Table};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, FromQueryResult, Statement, TransactionTrait, Value,
};
use serde::Serialize;
use uuid::Uuid;

use super::{StoreError, rfc3339};

/// A dry run counts matching rows exactly up to this many; past it, the planner's estimate.
pub const EXACT_COUNT_CAP: i64 = 100_000;

/// The columns every answer reads.
const COLUMNS: &str = "id, app_id, session_id, category, name, time_from, time_to, reason, \
    requested_by, requested_at, status, dry_run_events, dry_run_dead_letters, \
    dry_run_estimated, confirmed_by, confirmed_at, started_at, completed_at, deleted_events, \
    deleted_dead_letters, suppressed";

/// An erasure and its audit trail, as the api shows it (never the erased data).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ErasureOut {
    pub id: Uuid,
    pub app_id: String,
    pub session_id: Option<Uuid>,
    pub category: Option<String>,
    pub name: Option<String>,
    /// Events at or after this time.
    pub from: Option<String>,
    /// Events before this time.
    pub to: Option<String>,
    pub reason: String,
    /// `pending` (dry run only, waiting for the confirmation), `confirmed`, `running` or
    /// `done`.
    pub status: String,
    /// `app:<id> token:<jti>`, or `cli:<user>`.
    pub requested_by: String,
    pub requested_at: String,
    pub dry_run: DryRun,
    pub confirmed_by: Option<String>,
    pub confirmed_at: Option<String>,
    pub started_at: Option<String>,
    pub completed_at: Option<String>,
    pub deleted: Deleted,
    /// Events of the erased session that arrived after the confirmation: not stored.
    pub suppressed: i64,
}

/// What matched when the erasure was requested.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DryRun {
    pub events: i64,
    pub dead_letters: i64,
    /// True when a count passed 100,000 and is the planner's estimate.
    pub estimated: bool,
}

/// The deleter's progress.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Deleted {
    pub events: i64,
    pub dead_letters: i64,
}

#[derive(Debug, FromQueryResult)]
struct ErasureRow {
    id: Uuid,
    app_id: String,
    session_id: Option<Uuid>,
    category: Option<String>,
    name: Option<String>,
    time_from: Option<DateTime<Utc>>,
    time_to: Option<DateTime<Utc>>,
    reason: String,
    requested_by: String,
    requested_at: DateTime<Utc>,
    status: String,
    dry_run_events: i64,
    dry_run_dead_letters: i64,
    dry_run_estimated: bool,
    confirmed_by: Option<String>,
    confirmed_at: Option<DateTime<Utc>>,
    started_at: Option<DateTime<Utc>>,
    completed_at: Option<DateTime<Utc>>,
    deleted_events: i64,
    deleted_dead_letters: i64,
    suppressed: i64,
}

impl From<ErasureRow> for ErasureOut {
    fn from(r: ErasureRow) -> Self {
        Self {
            id: r.id,
            app_id: r.app_id,
            session_id: r.session_id,
            category: r.category,
            name: r.name,
            from: r.time_from.map(rfc3339),
            to: r.time_to.map(rfc3339),
            reason: r.reason,
            status: r.status,
            requested_by: r.requested_by,
            requested_at: rfc3339(r.requested_at),
            dry_run: DryRun {
                events: r.dry_run_events,
                dead_letters: r.dry_run_dead_letters,
                estimated: r.dry_run_estimated,
            },
            confirmed_by: r.confirmed_by,
            confirmed_at: r.confirmed_at.map(rfc3339),
            started_at: r.started_at.map(rfc3339),
            completed_at: r.completed_at.map(rfc3339),
            deleted: Deleted {
                events: r.deleted_events,
                dead_letters: r.deleted_dead_letters,
            },
            suppressed: r.suppressed,
        }
    }
}

/// Records a pending erasure with its dry run (the rows `filter` matches now).
pub async fn create(
    db: &DatabaseConnection,
    filter: &Filter,
    reason: &str,
    requested_by: &str,
) -> Result<ErasureOut, StoreError> {
    let (events, events_estimated) = count(db, filter, Table::Events).await?;
    let (dead_letters, dead_estimated) = count(db, filter, Table::DeadLetters).await?;
    let values: Vec<Value> = vec![
        Uuid::now_v7().into(),
        filter.app_id.clone().into(),
        filter.session_id.into(),
        filter.category.clone().into(),
        filter.name.clone().into(),
        filter.from.into(),
        filter.to.into(),
        reason.into(),
        requested_by.into(),
        events.into(),
        dead_letters.into(),
        (events_estimated || dead_estimated).into(),
    ];
    let sql = format!(
        "INSERT INTO erasures (id, app_id, session_id, category, name, time_from, time_to, \
             reason, requested_by, dry_run_events, dry_run_dead_letters, dry_run_estimated) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING {COLUMNS}"
    );
    let row = ErasureRow::find_by_statement(Statement::from_sql_and_values(
        db.get_database_backend(),
        sql,
        values,
    ))
    .one(db)
    .await?
    .ok_or_else(|| StoreError::Db(sea_orm::DbErr::RecordNotInserted))?;
    Ok(row.into())
}

/// Rows of `table` matching `filter`: exact up to [`EXACT_COUNT_CAP`], else the planner's
/// estimate (and true).
async fn count(
    db: &DatabaseConnection,
    filter: &Filter,
    table: Table,
) -> Result<(i64, bool), StoreError> {
    let name = match table {
        Table::Events => "events",
        Table::DeadLetters => "dead_letters",
    };
    let (condition, values) = filter.condition(table, 1);
    let backend = db.get_database_backend();
    let exact = format!(
        "SELECT count(*) AS n FROM (SELECT 1 FROM {name} WHERE {condition} LIMIT {}) s",
        EXACT_COUNT_CAP + 1
    );
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            exact,
            values.clone(),
        ))
        .await?;
    let n: i64 = match row {
        Some(row) => row.try_get("", "n")?,
        None => 0,
    };
    if n <= EXACT_COUNT_CAP {
        return Ok((n, false));
    }
    let explain = format!("EXPLAIN (FORMAT JSON) SELECT 1 FROM {name} WHERE {condition}");
    let plan: Option<serde_json::Value> = db
        .query_one_raw(Statement::from_sql_and_values(backend, explain, values))
        .await?
        .map(|row| row.try_get("", "QUERY PLAN"))
        .transpose()?;
    let estimate = plan
        .as_ref()
        .and_then(|p| p[0]["Plan"]["Plan Rows"].as_f64())
        .map_or(n, |rows| (rows as i64).max(n));
    Ok((estimate, true))
}

/// Confirms a pending erasure (`app` None: any application's) and, for a session, writes
/// its tombstone, under the erasure lock held exclusively: the worker commits in flight
/// finish first (so the deleter sees their rows), the next ones read the tombstone. An erasure
/// confirmed already is returned as it is; None when there is no such erasure (for `app`).
pub async fn confirm(
    db: &DatabaseConnection,
    id: Uuid,
    app: Option<&str>,
    confirmed_by: &str,
) -> Result<Option<ErasureOut>, StoreError> {
    let backend = db.get_database_backend();
    let txn = db.begin().await?;
    txn.execute_raw(Statement::from_sql_and_values(
        backend,
        "SELECT pg_advisory_xact_lock($1)",
        [ERASURE_LOCK.into()],
    ))
    .await?;
    let sql = format!(
        "UPDATE erasures SET status = '{STATUS_CONFIRMED}', confirmed_at = now(), \
             confirmed_by = $2 \
         WHERE id = $1 AND status = '{STATUS_PENDING}' AND ($3::text IS NULL OR app_id = $3) \
         RETURNING {COLUMNS}"
    );
    let confirmed = ErasureRow::find_by_statement(Statement::from_sql_and_values(
        backend,
        sql,
        [
            id.into(),
            confirmed_by.into(),
            app.map(str::to_owned).into(),
        ],
    ))
    .one(&txn)
    .await?;
    if confirmed.is_some() {
        // The workers reload their tombstones (every confirmed erasure) when this moves.
        txn.execute_unprepared("UPDATE erasure_generation SET generation = generation + 1")
            .await?;
        txn.execute_raw(Statement::from_sql_and_values(
            backend,
            "INSERT INTO erasure_tombstones \
                 (app_id, session_id, erasure_id, category, name, time_from, time_to) \
             SELECT app_id, session_id, id, category, name, time_from, time_to \
             FROM erasures WHERE id = $1 AND session_id IS NOT NULL",
            [id.into()],
        ))
        .await?;
    }
    txn.commit().await?;
    match confirmed {
        Some(row) => Ok(Some(row.into())),
        None => get(db, id, app).await,
    }
}

/// One erasure (`app` None: any application's).
pub async fn get(
    db: &DatabaseConnection,
    id: Uuid,
    app: Option<&str>,
) -> Result<Option<ErasureOut>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM erasures WHERE id = $1 AND ($2::text IS NULL OR app_id = $2)"
    );
    let row = ErasureRow::find_by_statement(Statement::from_sql_and_values(
        db.get_database_backend(),
        sql,
        [id.into(), app.map(str::to_owned).into()],
    ))
    .one(db)
    .await?;
    Ok(row.map(ErasureOut::from))
}

/// The latest `limit` erasures, newest first (`app` None: every application's).
pub async fn list(
    db: &DatabaseConnection,
    app: Option<&str>,
    limit: u64,
) -> Result<Vec<ErasureOut>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM erasures WHERE ($1::text IS NULL OR app_id = $1) \
         ORDER BY requested_at DESC, id DESC LIMIT $2"
    );
    let rows = ErasureRow::find_by_statement(Statement::from_sql_and_values(
        db.get_database_backend(),
        sql,
        [app.map(str::to_owned).into(), (limit as i64).into()],
    ))
    .all(db)
    .await?;
    Ok(rows.into_iter().map(ErasureOut::from).collect())
}
