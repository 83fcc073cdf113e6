//! What the fetcher recorded of its cycles (`fetch_cycles`, written by `eye-fetcher` after
//! each cycle) and the JSON records' counts per resource: the console's reads for the
//! "Provider plans" and "JSON records" pages.

use chrono::{DateTime, Utc};
use sea_orm::{DatabaseConnection, DbBackend, FromQueryResult, Statement};

use super::StoreError;

/// One recorded cycle.
#[derive(Debug, Clone, FromQueryResult)]
pub struct CycleRow {
    pub provider: String,
    pub started_at: DateTime<Utc>,
    pub took_ms: i64,
    /// `ok`, `document` (read, with a document error) or `failed`.
    pub outcome: String,
    pub records: i64,
    pub changed: i64,
    pub removed: i64,
    pub rejected: i64,
    pub error: Option<String>,
    /// The circuit after the cycle.
    pub circuit_open: bool,
    pub failures: i32,
}

/// The last `per_provider` cycles of every provider, newest first within each (the table
/// keeps a bounded number per provider, so the window function reads little).
pub async fn recent_cycles(
    db: &DatabaseConnection,
    per_provider: i64,
) -> Result<Vec<CycleRow>, StoreError> {
    Ok(CycleRow::find_by_statement(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT provider, started_at, took_ms, outcome, records, changed, removed, rejected, \
                error, circuit_open, failures \
         FROM (SELECT *, row_number() OVER (PARTITION BY provider ORDER BY id DESC) AS n \
               FROM fetch_cycles) c \
         WHERE n <= $1 ORDER BY provider, n",
        [per_provider.into()],
    ))
    .all(db)
    .await?)
}

/// One resource of a JSON provider: its records and how many are removed.
#[derive(Debug, Clone, FromQueryResult)]
pub struct ResourceRow {
    pub provider: String,
    pub resource: String,
    pub records: i64,
    pub removed: i64,
    pub updated_at: DateTime<Utc>,
}

/// Every (provider, resource) of `json_records` with its counts.
pub async fn resources(db: &DatabaseConnection) -> Result<Vec<ResourceRow>, StoreError> {
    Ok(
        ResourceRow::find_by_statement(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT provider, resource, count(*)::int8 AS records, \
                count(*) FILTER (WHERE removed)::int8 AS removed, max(updated_at) AS updated_at \
         FROM json_records GROUP BY provider, resource ORDER BY provider, resource",
            [],
        ))
        .all(db)
        .await?,
    )
}
