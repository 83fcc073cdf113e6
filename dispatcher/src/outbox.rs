//! Every query the dispatcher runs: the enabled subscriptions, claiming due deliveries of
//! one subscription (`FOR UPDATE SKIP LOCKED`, the claim a lease: `next_attempt_at` moved
//! past the attempt's timeout, so a dispatcher killed mid-attempt leaves a row that is due
//! again once the lease ends), the events they carry, and recording each attempt.

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

/// How a delivery ends its attempt.
#[derive(Debug, Clone)]
pub enum Next {
    Succeeded,
    /// Try again at this time.
    Retry(DateTime<Utc>),
    /// No attempt left, or the endpoint is gone.
    Failed,
    /// Nothing to send (the event was erased before its delivery).
    Skipped,
}

/// One attempt, as recorded.
#[derive(Debug, Clone)]
pub struct Attempt<'a> {
    pub subscription: Uuid,
    pub event: Option<Uuid>,
    pub webhook_id: &'a str,
    pub trigger: &'a str,
    pub status: Option<u16>,
    pub latency: Duration,
    pub response: Option<&'a str>,
    pub error: Option<&'a str>,
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
           SELECT subscription_id, event_id, next_attempt_at FROM webhook_deliveries \
           WHERE subscription_id = $1 AND status = 'pending' ORDER BY seq LIMIT 1 FOR UPDATE \
         ) head WHERE next_attempt_at <= now() AND $2 > 0"
    } else {
        "SELECT subscription_id, event_id FROM webhook_deliveries \
         WHERE subscription_id = $1 AND status = 'pending' AND next_attempt_at <= now() \
         ORDER BY next_attempt_at, seq LIMIT $2 FOR UPDATE SKIP LOCKED"
    };
    let sql = format!(
        "WITH c AS ({pick}) \
         UPDATE webhook_deliveries d \
            SET next_attempt_at = now() + make_interval(secs => $3), \
                first_attempt_at = COALESCE(d.first_attempt_at, now()) \
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

/// Records one attempt and its consequences in one statement: the attempt row, the
/// delivery's state, and the subscription's health (a success clears `failing_since`; a
/// failure sets it, and disables the subscription when `gone` (410) or when it has been
/// failing for longer than `disable_after`, with the reason).
pub async fn record(
    db: &impl ConnectionTrait,
    attempt: &Attempt<'_>,
    next: &Next,
    gone: bool,
    disable_after: Duration,
) -> Result<(), DbErr> {
    let (status, next_at): (&str, Option<DateTime<Utc>>) = match next {
        Next::Succeeded => ("succeeded", None),
        Next::Retry(at) => ("pending", Some(*at)),
        Next::Failed => ("failed", None),
        Next::Skipped => ("skipped", None),
    };
    let succeeded = matches!(next, Next::Succeeded);
    let health = if matches!(next, Next::Skipped) {
        "SELECT 1"
    } else if succeeded {
        "UPDATE webhook_subscriptions SET failing_since = NULL \
         WHERE id = $1 AND failing_since IS NOT NULL RETURNING 1"
    } else {
        "UPDATE webhook_subscriptions SET \
           failing_since = COALESCE(failing_since, now()), \
           enabled = enabled AND NOT ($9 OR COALESCE(failing_since < now() - make_interval(secs => $10), false)), \
           disabled_reason = CASE \
             WHEN NOT enabled THEN disabled_reason \
             WHEN $9 THEN 'the endpoint answered 410 Gone' \
             WHEN COALESCE(failing_since < now() - make_interval(secs => $10), false) THEN \
               'failing since ' || to_char(failing_since AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') \
               || ', longer than ' || $10::text || ' s' \
             ELSE disabled_reason END, \
           updated_at = CASE WHEN enabled AND ($9 OR COALESCE(failing_since < now() - make_interval(secs => $10), false)) \
                        THEN now() ELSE updated_at END \
         WHERE id = $1 RETURNING 1"
    };
    let delivery = match attempt.event {
        Some(_) => {
            "UPDATE webhook_deliveries SET status = $11, attempts = attempts + 1, \
               next_attempt_at = COALESCE($12, next_attempt_at), last_error = $8 \
             WHERE subscription_id = $1 AND event_id = $2 RETURNING 1"
        }
        None => "SELECT 1",
    };
    let sql = format!(
        "WITH a AS (INSERT INTO webhook_attempts \
           (subscription_id, event_id, webhook_id, trigger, status_code, latency_ms, response, error) \
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING 1), \
         h AS ({health}), \
         d AS ({delivery}) \
         SELECT (SELECT count(*) FROM a) + (SELECT count(*) FROM h) + (SELECT count(*) FROM d) AS n"
    );
    let error = attempt.error.map(|e| e.replace('\0', ""));
    db.execute_raw(stmt(
        &sql,
        vec![
            attempt.subscription.into(),
            attempt.event.into(),
            attempt.webhook_id.into(),
            attempt.trigger.into(),
            attempt.status.map(i32::from).into(),
            i32::try_from(attempt.latency.as_millis())
                .unwrap_or(i32::MAX)
                .into(),
            attempt.response.map(str::to_owned).into(),
            error.into(),
            gone.into(),
            disable_after.as_secs_f64().into(),
            status.into(),
            next_at.into(),
        ],
    ))
    .await
    .map(|_| ())
}
