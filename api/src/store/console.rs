//! The admin console's own rows (`console_users`, `console_sessions`) and the few reads only
//! its pages make: the Overview's per-minute counts and lag, dead letters grouped by rule and
//! reason, and provider plans page by page. Everything else the console shows comes from the
//! other store modules, as the JSON api shows it.

use chrono::{DateTime, NaiveDateTime, Utc};
use rust_decimal::Decimal;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, FromQueryResult, Statement, Value};
use uuid::Uuid;

use super::StoreError;

fn stmt(sql: &str, values: impl IntoIterator<Item = Value>) -> Statement {
    Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
}

/// Adds console user `username` with this argon2 PHC hash; Ok(false) if the name is taken.
pub async fn insert_user(
    db: &DatabaseConnection,
    username: &str,
    password_hash: &str,
) -> Result<bool, StoreError> {
    let done = db
        .execute_raw(stmt(
            "INSERT INTO console_users (username, password_hash) VALUES ($1, $2) \
             ON CONFLICT (username) DO NOTHING",
            [username.into(), password_hash.into()],
        ))
        .await?;
    Ok(done.rows_affected() > 0)
}

/// The stored hash of `username`, if there is such a user.
pub async fn user_hash(
    db: &DatabaseConnection,
    username: &str,
) -> Result<Option<String>, StoreError> {
    let row = db
        .query_one_raw(stmt(
            "SELECT password_hash FROM console_users WHERE username = $1",
            [username.into()],
        ))
        .await?;
    Ok(row
        .map(|r| r.try_get::<String>("", "password_hash"))
        .transpose()?)
}

/// A signed-in console session.
#[derive(Debug, Clone, FromQueryResult)]
pub struct SessionRow {
    pub who: String,
    pub csrf: String,
    pub expires_at: DateTime<Utc>,
}

/// Records a session under the hash of its cookie (expired ones are swept on the way).
pub async fn insert_session(
    db: &DatabaseConnection,
    id_hash: &str,
    who: &str,
    csrf: &str,
    expires_at: DateTime<Utc>,
) -> Result<(), StoreError> {
    db.execute_raw(stmt(
        "DELETE FROM console_sessions WHERE expires_at < now()",
        [],
    ))
    .await?;
    db.execute_raw(stmt(
        "INSERT INTO console_sessions (id, who, csrf, expires_at) VALUES ($1, $2, $3, $4)",
        [id_hash.into(), who.into(), csrf.into(), expires_at.into()],
    ))
    .await?;
    Ok(())
}

/// The unexpired session whose cookie hashes to `id_hash`.
pub async fn find_session(
    db: &DatabaseConnection,
    id_hash: &str,
) -> Result<Option<SessionRow>, StoreError> {
    Ok(SessionRow::find_by_statement(stmt(
        "SELECT who, csrf, expires_at FROM console_sessions \
         WHERE id = $1 AND expires_at > now()",
        [id_hash.into()],
    ))
    .one(db)
    .await?)
}

/// Ends a session (sign out).
pub async fn delete_session(db: &DatabaseConnection, id_hash: &str) -> Result<(), StoreError> {
    db.execute_raw(stmt(
        "DELETE FROM console_sessions WHERE id = $1",
        [id_hash.into()],
    ))
    .await?;
    Ok(())
}

/// Accepted, stored and refused events of one minute.
#[derive(Debug, Clone, FromQueryResult)]
pub struct Minute {
    pub minute: DateTime<Utc>,
    /// Answered 202 by the api (`accepted_per_minute`, flushed every refresh interval).
    pub accepted: i64,
    pub stored: i64,
    pub refused: i64,
}

/// Events accepted (the api's own per-minute counts), stored (by `stored_at`, on its BRIN index) and refused (dead letters of kind
/// `invalid` by `last_seen`, on its index) per minute over the last `minutes` minutes,
/// oldest first, zeros included.
pub async fn per_minute(db: &DatabaseConnection, minutes: i32) -> Result<Vec<Minute>, StoreError> {
    Ok(Minute::find_by_statement(stmt(
        r#"
WITH m AS (
    SELECT generate_series(date_trunc('minute', now()) - make_interval(mins => $1 - 1),
                           date_trunc('minute', now()), interval '1 minute') AS minute
),
s AS (
    SELECT date_trunc('minute', stored_at) AS minute, count(*) AS n FROM events
    WHERE stored_at >= date_trunc('minute', now()) - make_interval(mins => $1 - 1)
    GROUP BY 1
),
r AS (
    SELECT date_trunc('minute', last_seen) AS minute, count(*) AS n FROM dead_letters
    WHERE kind = 'invalid'
      AND last_seen >= date_trunc('minute', now()) - make_interval(mins => $1 - 1)
    GROUP BY 1
),
a AS (
    SELECT minute, sum(accepted) AS n FROM accepted_per_minute
    WHERE minute >= date_trunc('minute', now()) - make_interval(mins => $1 - 1)
    GROUP BY 1
)
SELECT m.minute, coalesce(a.n, 0)::int8 AS accepted, coalesce(s.n, 0)::int8 AS stored,
       coalesce(r.n, 0)::int8 AS refused
FROM m LEFT JOIN a USING (minute) LEFT JOIN s USING (minute) LEFT JOIN r USING (minute)
ORDER BY m.minute"#,
        [minutes.into()],
    ))
    .all(db)
    .await?)
}

/// Received-to-stored lag of the events stored in the last five minutes, in milliseconds.
#[derive(Debug, Clone, Default, FromQueryResult)]
pub struct Lag {
    pub events: i64,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub max_ms: Option<f64>,
}

/// The lag of the last five minutes' stored events.
pub async fn recent_lag(db: &DatabaseConnection) -> Result<Lag, StoreError> {
    Ok(Lag::find_by_statement(stmt(
        r#"
WITH l AS (
    SELECT extract(epoch FROM stored_at - received_at) * 1000 AS ms FROM events
    WHERE stored_at >= now() - interval '5 minutes'
)
SELECT count(*)::int8 AS events,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::float8 AS p50_ms,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY ms)::float8 AS p95_ms,
       max(ms)::float8 AS max_ms
FROM l"#,
        [],
    ))
    .one(db)
    .await?
    .unwrap_or_default())
}

/// The planner's estimate of a table's rows (`pg_class.reltuples`): no `COUNT(*)` scans. A
/// partitioned table (`events`) has no estimate of its own: its partitions' are summed (a
/// plain table is its own single leaf).
pub async fn estimated_rows(db: &DatabaseConnection, table: &str) -> Result<i64, StoreError> {
    let row = db
        .query_one_raw(stmt(
            "SELECT coalesce(sum(greatest(c.reltuples, 0)), 0)::int8 AS n \
             FROM pg_partition_tree($1::regclass) t JOIN pg_class c ON c.oid = t.relid \
             WHERE t.isleaf",
            [table.into()],
        ))
        .await?;
    Ok(row
        .map(|r| r.try_get::<i64>("", "n"))
        .transpose()?
        .unwrap_or(0))
}

/// Which of these (application, event id) pairs are stored events: one index lookup each, in
/// one query (the Dead letters list shows what became of each refused event).
pub async fn stored_among(
    db: &DatabaseConnection,
    keys: &[(String, Uuid)],
) -> Result<Vec<(String, Uuid)>, StoreError> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let apps: Vec<String> = keys.iter().map(|(a, _)| a.clone()).collect();
    let ids: Vec<Uuid> = keys.iter().map(|(_, id)| *id).collect();
    let rows = db
        .query_all_raw(stmt(
            "SELECT e.app_id, e.id FROM unnest($1::text[], $2::uuid[]) AS k(app_id, id) \
             JOIN events e ON e.app_id = k.app_id AND e.id = k.id",
            [apps.into(), ids.into()],
        ))
        .await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get::<String>("", "app_id")?,
                r.try_get::<Uuid>("", "id")?,
            ))
        })
        .collect()
}

/// Dead letters sharing a kind, a rule and a reason.
#[derive(Debug, Clone, FromQueryResult)]
pub struct DeadLetterGroup {
    pub kind: String,
    pub validator: Option<String>,
    pub message: String,
    pub count: i64,
    pub last_seen: DateTime<Utc>,
}

/// The dead letters grouped by kind, rule and reason, most recent first (at most `limit`
/// groups). Dead letters are the exception, not the stream: a grouped scan of them stays
/// small, and the read pool's statement timeout bounds it all the same.
pub async fn dead_letter_groups(
    db: &DatabaseConnection,
    limit: i64,
) -> Result<Vec<DeadLetterGroup>, StoreError> {
    Ok(DeadLetterGroup::find_by_statement(stmt(
        "SELECT kind, validator, message, count(*)::int8 AS count, max(last_seen) AS last_seen \
         FROM dead_letters GROUP BY kind, validator, message \
         ORDER BY max(last_seen) DESC LIMIT $1",
        [limit.into()],
    ))
    .all(db)
    .await?)
}

/// A provider plan as the console lists it.
#[derive(Debug, Clone, FromQueryResult)]
pub struct PlanRow {
    pub id: Uuid,
    pub provider: String,
    pub title: String,
    pub starts_at: NaiveDateTime,
    pub ends_at: NaiveDateTime,
    pub min_price: Option<Decimal>,
    pub max_price: Option<Decimal>,
    pub sell_mode: String,
    pub ever_online: bool,
    pub last_seen: DateTime<Utc>,
}

/// Plans by (starts_at, id) after `after`, `limit` + 1 of them (the extra one says there is
/// more), on the covering index `/search` uses.
pub async fn plans_page(
    db: &DatabaseConnection,
    after: Option<(NaiveDateTime, Uuid)>,
    limit: i64,
) -> Result<Vec<PlanRow>, StoreError> {
    let (sql, values): (&str, Vec<Value>) = match after {
        Some((starts, id)) => (
            "SELECT id, provider, title, starts_at, ends_at, min_price, max_price, sell_mode, \
             ever_online, last_seen FROM provider_plans WHERE (starts_at, id) > ($1, $2) \
             ORDER BY starts_at, id LIMIT $3",
            vec![starts.into(), id.into(), (limit + 1).into()],
        ),
        None => (
            "SELECT id, provider, title, starts_at, ends_at, min_price, max_price, sell_mode, \
             ever_online, last_seen FROM provider_plans ORDER BY starts_at, id LIMIT $1",
            vec![(limit + 1).into()],
        ),
    };
    Ok(PlanRow::find_by_statement(stmt(sql, values))
        .all(db)
        .await?)
}

/// One provider's plans: how many, and when its feed last showed one.
#[derive(Debug, Clone, FromQueryResult)]
pub struct ProviderRow {
    pub provider: String,
    pub plans: i64,
    pub last_seen: DateTime<Utc>,
}

/// Every provider with its plan count and latest sighting.
pub async fn providers(db: &DatabaseConnection) -> Result<Vec<ProviderRow>, StoreError> {
    Ok(ProviderRow::find_by_statement(stmt(
        "SELECT provider, count(*)::int8 AS plans, max(last_seen) AS last_seen \
         FROM provider_plans GROUP BY provider ORDER BY provider",
        [],
    ))
    .all(db)
    .await?)
}
