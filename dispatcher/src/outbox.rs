//! Every query the dispatcher runs: the enabled subscriptions, claiming due deliveries of
//! one subscription (`FOR UPDATE SKIP LOCKED`, the claim a lease: `leased_until` set past the
//! attempt's timeout, so a dispatcher killed mid-attempt leaves a row that is due again once
//! the lease ends), the events they carry, and giving back claims not attempted. Attempts
//! are recorded by [`crate::recorder`], which ends the lease.
//!
//! The lease has a column of its own, in no index, so that a claim is a heap-only update: it
//! adds no index entry, and its old row version is pruned from the page without a vacuum.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, DbErr, FromQueryResult, Statement, Value,
};
use uuid::Uuid;

/// An enabled subscription, as the dispatcher sends to it.
#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult)]
pub struct Subscription {
    pub id: Uuid,
    pub app_id: String,
    pub url: String,
    pub fifo: bool,
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_expires_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

impl Subscription {
    /// The secrets to sign with now: the current one, and the previous one during its grace.
    pub fn secrets(&self) -> Vec<&str> {
        let mut secrets = vec![self.secret.as_str()];
        if let (Some(previous), Some(until)) = (&self.previous_secret, self.previous_expires_at)
            && until > Utc::now()
        {
            secrets.push(previous);
        }
        secrets
    }
}

/// A delivery claimed for one attempt.
#[derive(Debug, Clone, FromQueryResult)]
pub struct Claimed {
    pub event_id: Uuid,
    pub app_id: String,
    pub kind: String,
    /// The message body's `data` for notifications (`event.erased`); NULL for events.
    pub payload: Option<String>,
    pub attempts: i32,
    pub created_at: DateTime<Utc>,
}

/// A stored event, its `data` as JSON text.
#[derive(Debug, Clone, FromQueryResult)]
pub struct EventRow {
    pub app_id: String,
    pub id: Uuid,
    pub session_id: Uuid,
    pub category: String,
    pub name: String,
    pub data: String,
    pub timestamp: DateTime<Utc>,
    pub source: String,
    pub received_at: DateTime<Utc>,
    pub stored_at: DateTime<Utc>,
}

fn stmt(sql: &str, values: Vec<Value>) -> Statement {
    Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
}

pub async fn subscriptions(db: &DatabaseConnection) -> Result<Vec<Subscription>, DbErr> {
    Subscription::find_by_statement(stmt(
        "SELECT id, app_id, url, fifo, secret, previous_secret, previous_expires_at, updated_at \
         FROM webhook_subscriptions WHERE enabled ORDER BY id",
        vec![],
    ))
    .all(db)
    .await
}

/// Claims up to `limit` due deliveries of `subscription` for `lease`. FIFO: only the oldest
/// pending one, when it is due (waiting, not skipping, for another dispatcher's claim of it).
pub async fn claim(
    db: &DatabaseConnection,
    subscription: Uuid,
    limit: u32,
    fifo: bool,
    lease: Duration,
) -> Result<Vec<Claimed>, DbErr> {
    let pick = if fifo {
        "SELECT subscription_id, event_id FROM ( \
           SELECT subscription_id, event_id, next_attempt_at, leased_until \
           FROM webhook_deliveries \
           WHERE subscription_id = $1 AND status = 'pending' ORDER BY seq LIMIT 1 FOR UPDATE \
         ) head WHERE next_attempt_at <= now() \
           AND (leased_until IS NULL OR leased_until <= now()) AND $2 > 0"
    } else {
        "SELECT subscription_id, event_id FROM webhook_deliveries \
         WHERE subscription_id = $1 AND status = 'pending' AND next_attempt_at <= now() \
           AND (leased_until IS NULL OR leased_until <= now()) \
         ORDER BY next_attempt_at, seq LIMIT $2 FOR UPDATE SKIP LOCKED"
    };
    let sql = format!(
        "WITH c AS ({pick}) \
         UPDATE webhook_deliveries d \
            SET leased_until = now() + make_interval(secs => $3) \
           FROM c WHERE d.subscription_id = c.subscription_id AND d.event_id = c.event_id \
         RETURNING d.event_id, d.app_id, d.kind, d.payload::text AS payload, d.attempts, \
                   d.created_at"
    );
    Claimed::find_by_statement(stmt(
        &sql,
        vec![
            subscription.into(),
            i64::from(limit).into(),
            lease.as_secs_f64().into(),
        ],
    ))
    .all(db)
    .await
}

/// The stored events among `ids` of `app`.
pub async fn events(
    db: &DatabaseConnection,
    app: &str,
    ids: Vec<Uuid>,
) -> Result<Vec<EventRow>, DbErr> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let placeholders: Vec<String> = (0..ids.len()).map(|i| format!("${}", i + 2)).collect();
    let mut values: Vec<Value> = vec![app.into()];
    values.extend(ids.into_iter().map(Value::from));
    EventRow::find_by_statement(stmt(
        &format!(
            "SELECT app_id, id, session_id, category, name, data::text AS data, \"timestamp\", \
             source, received_at, stored_at FROM events WHERE app_id = $1 AND id IN ({})",
            placeholders.join(", ")
        ),
        values,
    ))
    .all(db)
    .await
}

/// Gives back claimed deliveries that were not attempted (the dispatcher is stopping): due
/// at once again, rather than when their leases end.
pub async fn release(
    db: &DatabaseConnection,
    subscription: Uuid,
    events: Vec<Uuid>,
) -> Result<(), DbErr> {
    if events.is_empty() {
        return Ok(());
    }
    db.execute_raw(stmt(
        "UPDATE webhook_deliveries SET leased_until = NULL \
         WHERE subscription_id = $1 AND event_id = ANY($2) AND status = 'pending'",
        vec![subscription.into(), events.into()],
    ))
    .await
    .map(|_| ())
}
