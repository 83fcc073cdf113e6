//! Everything the api asks PostgreSQL, one file per area: [`events`], [`dead_letters`],
//! [`plans`] (what `/search` serves), [`apps`] (applications and tokens) and [`health`]
//! (the readiness probe); the [`Pools`] they run on; and [`StoreError`], the one error they
//! return, turned into an HTTP answer in one place (`crate::error`). Nothing outside this
//! module builds a query.

pub mod apps;
pub mod console;
pub mod cursor;
pub mod dead_letters;
pub mod erasures;
pub mod events;
pub mod fetch_history;
pub mod health;
pub mod imports;
pub mod json_records;
pub mod partitions;
pub mod plans;
pub mod webhooks;

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use sea_orm::{Database, DatabaseConnection, DbErr};
use serde_json::value::RawValue;

use crate::settings::ApiSettings;

/// Statement timeout of the ingestion pool: its queries are index lookups and two small
/// table reads, and a stuck one must not hold one of its few connections.
const INGESTION_STATEMENT_TIMEOUT: Duration = Duration::from_secs(1);

/// What a store function fails with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// PostgreSQL cancelled the statement: the pool's statement timeout.
    #[error("the database did not answer in time")]
    Timeout,
    /// No connection could be had.
    #[error("the database is unreachable: {0}")]
    Unavailable(#[source] DbErr),
    /// A stored JSON value could not be passed on (PostgreSQL only returns valid JSON).
    #[error("a stored value is unreadable: {0}")]
    Unreadable(#[from] serde_json::Error),
    #[error("database: {0}")]
    Db(#[source] DbErr),
}

impl From<DbErr> for StoreError {
    fn from(e: DbErr) -> Self {
        // A cancelled statement comes back as a plain database error: its text or its
        // SQLSTATE (57014, query_canceled) is the only sign.
        let text = e.to_string();
        if text.contains("statement timeout") || text.contains("57014") {
            return Self::Timeout;
        }
        match e {
            DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => Self::Unavailable(e),
            other => Self::Db(other),
        }
    }
}

/// The api's two pools, opened with the builder every service uses
/// ([`eye_core::settings::DatabaseSettings::pool_options`]).
pub struct Pools {
    /// Reads, `/search` and replay, under `EYE_READ_TIMEOUT_MS`: one heavy read must not
    /// stall the api (PostgreSQL cancels it: 503 `timeout`).
    pub reads: DatabaseConnection,
    /// Ingestion's own, which reads never touch: the revocation state's reloads and
    /// lookups, and the readiness probe.
    pub ingestion: DatabaseConnection,
}

impl Pools {
    /// Both pools, lazily connected: the api starts (not ready) while the database is down.
    pub async fn open(settings: &ApiSettings) -> Result<Self, StoreError> {
        let database = &settings.database;
        let reads = database.pool_options(
            database.max_connections,
            Duration::from_millis(settings.read_timeout_ms),
        );
        let ingestion = database.pool_options(
            settings.access.database_connections,
            INGESTION_STATEMENT_TIMEOUT,
        );
        Ok(Self {
            reads: Database::connect(reads).await?,
            ingestion: Database::connect(ingestion).await?,
        })
    }
}

/// Times as the read API writes them: RFC 3339, UTC, microseconds.
fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// JSON text from a jsonb column (read as `::text`) as a raw value, passed on unparsed:
/// jsonb keeps numbers exactly, so one can hold more than an f64 parses back (found by
/// schemathesis: 1.7976931348623157e308 came back as a 309-digit integer serde_json refused).
fn raw_json(text: String) -> Result<Box<RawValue>, StoreError> {
    Ok(RawValue::from_string(text)?)
}
