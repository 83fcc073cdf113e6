//! Webhook subscriptions, their deliveries and attempts: every query `/webhooks` runs.
//! `app` is the caller's application (None: an admin, every application).

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, FromQueryResult, Statement, Value};
use serde::Serialize;
use serde_json::value::RawValue;
use uuid::Uuid;

use super::{StoreError, raw_json, rfc3339};

fn stmt(sql: &str, values: Vec<Value>) -> Statement {
    Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
}

/// The columns of a subscription, as read.
const COLUMNS: &str = "id, app_id, url, description, filters::text AS filters, enabled, \
    disabled_reason, fifo, failing_since, previous_expires_at, created_at, updated_at";

#[derive(Debug, FromQueryResult)]
struct Row {
    id: Uuid,
    app_id: String,
    url: String,
    description: String,
    filters: String,
    enabled: bool,
    disabled_reason: Option<String>,
    fifo: bool,
    failing_since: Option<DateTime<Utc>>,
    previous_expires_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// A subscription as the api shows it (never its secret, but on creation and rotation).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WebhookOut {
    pub id: Uuid,
    pub app_id: String,
    pub url: String,
    pub description: String,
    /// `[{"category"?, "name"?}]`; empty: every event of the application.
    #[schema(value_type = Vec<Object>)]
    pub filters: Box<RawValue>,
    pub enabled: bool,
    /// Why the dispatcher disabled it (410 Gone, failing too long).
    pub disabled_reason: Option<String>,
    /// Strict order: each delivery waits until the previous one succeeded or gave up.
    pub fifo: bool,
    /// Failing without a success since then.
    pub failing_since: Option<String>,
    /// The previous secret is still signed with until then (after a rotation).
    pub previous_secret_expires_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// The signing secret: only in the answers to creation and rotation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl TryFrom<Row> for WebhookOut {
    type Error = StoreError;
    fn try_from(r: Row) -> Result<Self, StoreError> {
        Ok(Self {
            id: r.id,
            app_id: r.app_id,
            url: r.url,
            description: r.description,
            filters: raw_json(r.filters)?,
            enabled: r.enabled,
            disabled_reason: r.disabled_reason,
            fifo: r.fifo,
            failing_since: r.failing_since.map(rfc3339),
            previous_secret_expires_at: r.previous_expires_at.map(rfc3339),
            created_at: rfc3339(r.created_at),
            updated_at: rfc3339(r.updated_at),
            secret: None,
        })
    }
}

/// A new subscription's fields.
#[derive(Debug, Clone)]
pub struct NewWebhook<'a> {
    pub app_id: &'a str,
    pub url: &'a str,
    pub description: &'a str,
    pub filters: String,
    pub enabled: bool,
    pub fifo: bool,
    pub secret: &'a str,
}

pub async fn create(
    db: &DatabaseConnection,
    new: NewWebhook<'_>,
) -> Result<WebhookOut, StoreError> {
    let row = Row::find_by_statement(stmt(
        &format!(
            "INSERT INTO webhook_subscriptions (id, app_id, url, description, filters, enabled, fifo, secret) \
             VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8) RETURNING {COLUMNS}"
        ),
        vec![
            Uuid::now_v7().into(),
            new.app_id.into(),
            new.url.into(),
            new.description.into(),
            new.filters.into(),
            new.enabled.into(),
            new.fifo.into(),
            new.secret.into(),
        ],
    ))
    .one(db)
    .await?
    .ok_or_else(|| StoreError::Db(sea_orm::DbErr::RecordNotInserted))?;
    let mut out = WebhookOut::try_from(row)?;
    out.secret = Some(new.secret.to_owned());
    Ok(out)
}

/// `AND app_id = $n` when scoped.
fn scope(app: Option<&str>, n: usize, values: &mut Vec<Value>) -> String {
    match app {
        Some(app) => {
            values.push(app.into());
            format!(" AND app_id = ${n}")
        }
        None => String::new(),
    }
}

pub async fn list(
    db: &DatabaseConnection,
    app: Option<&str>,
) -> Result<Vec<WebhookOut>, StoreError> {
    let mut values = Vec::new();
    let filter = scope(app, 1, &mut values);
    let rows = Row::find_by_statement(stmt(
        &format!(
            "SELECT {COLUMNS} FROM webhook_subscriptions WHERE true{filter} \
             ORDER BY created_at DESC, id LIMIT 1000"
        ),
        values,
    ))
    .all(db)
    .await?;
    rows.into_iter().map(WebhookOut::try_from).collect()
}

pub async fn get(
    db: &DatabaseConnection,
    app: Option<&str>,
    id: Uuid,
) -> Result<Option<WebhookOut>, StoreError> {
    let mut values = vec![id.into()];
    let filter = scope(app, 2, &mut values);
    Row::find_by_statement(stmt(
        &format!("SELECT {COLUMNS} FROM webhook_subscriptions WHERE id = $1{filter}"),
        values,
    ))
    .one(db)
    .await?
    .map(WebhookOut::try_from)
    .transpose()
}

/// The secrets of a subscription (current, previous while valid) and its URL, for a test.
#[derive(Debug, FromQueryResult)]
pub struct Signing {
    pub url: String,
    pub secret: String,
    pub previous_secret: Option<String>,
}

pub async fn signing(
    db: &DatabaseConnection,
    app: Option<&str>,
    id: Uuid,
) -> Result<Option<Signing>, StoreError> {
    let mut values = vec![id.into()];
    let filter = scope(app, 2, &mut values);
    Ok(Signing::find_by_statement(stmt(
        &format!(
            "SELECT url, secret, \
             CASE WHEN previous_expires_at > now() THEN previous_secret END AS previous_secret \
             FROM webhook_subscriptions WHERE id = $1{filter}"
        ),
        values,
    ))
    .one(db)
    .await?)
}

/// Changes to a subscription: `None` keeps the field.
#[derive(Debug, Clone, Default)]
pub struct Changes {
    pub url: Option<String>,
    pub description: Option<String>,
    pub filters: Option<String>,
    pub enabled: Option<bool>,
    pub fifo: Option<bool>,
}

/// Applies `changes`; enabling clears the reason it was disabled and its failing time.
pub async fn update(
    db: &DatabaseConnection,
    app: Option<&str>,
    id: Uuid,
    changes: Changes,
) -> Result<Option<WebhookOut>, StoreError> {
    let mut values: Vec<Value> = vec![
        id.into(),
        changes.url.into(),
        changes.description.into(),
        changes.filters.into(),
        changes.enabled.into(),
        changes.fifo.into(),
    ];
    let filter = scope(app, 7, &mut values);
    Row::find_by_statement(stmt(
        &format!(
            "UPDATE webhook_subscriptions SET url = COALESCE($2, url), \
               description = COALESCE($3, description), \
               filters = COALESCE($4::jsonb, filters), \
               enabled = COALESCE($5, enabled), fifo = COALESCE($6, fifo), \
               disabled_reason = CASE WHEN $5 THEN NULL ELSE disabled_reason END, \
               failing_since = CASE WHEN $5 AND NOT enabled THEN NULL ELSE failing_since END, \
               updated_at = now() \
             WHERE id = $1{filter} RETURNING {COLUMNS}"
        ),
        values,
    ))
    .one(db)
    .await?
    .map(WebhookOut::try_from)
    .transpose()
}

/// Replaces the secret; the old one stays valid (signed with too) for `grace_secs`.
pub async fn rotate(
    db: &DatabaseConnection,
    app: Option<&str>,
    id: Uuid,
    secret: &str,
    grace_secs: u32,
) -> Result<Option<WebhookOut>, StoreError> {
    let mut values: Vec<Value> = vec![id.into(), secret.into(), f64::from(grace_secs).into()];
    let filter = scope(app, 4, &mut values);
    let row = Row::find_by_statement(stmt(
        &format!(
            "UPDATE webhook_subscriptions SET previous_secret = secret, secret = $2, \
               previous_expires_at = now() + make_interval(secs => $3), updated_at = now() \
             WHERE id = $1{filter} RETURNING {COLUMNS}"
        ),
        values,
    ))
    .one(db)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let mut out = WebhookOut::try_from(row)?;
    out.secret = Some(secret.to_owned());
    Ok(Some(out))
}

pub async fn delete(
    db: &DatabaseConnection,
    app: Option<&str>,
    id: Uuid,
) -> Result<bool, StoreError> {
    let mut values = vec![id.into()];
    let filter = scope(app, 2, &mut values);
    let done = db
        .execute_raw(stmt(
            &format!("DELETE FROM webhook_subscriptions WHERE id = $1{filter}"),
            values,
        ))
        .await?;
    Ok(done.rows_affected() > 0)
}

/// One recorded attempt.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, FromQueryResult)]
pub struct AttemptOut {
    pub id: i64,
    pub event_id: Option<Uuid>,
    pub webhook_id: String,
    /// `delivery` or `test`.
    pub trigger: String,
    #[serde(serialize_with = "time")]
    #[schema(value_type = String)]
    pub attempted_at: DateTime<Utc>,
    pub status_code: Option<i32>,
    pub latency_ms: i32,
    /// The start of the answer's body.
    pub response: Option<String>,
    pub error: Option<String>,
}

fn time<S: serde::Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339(*t))
}

pub async fn attempts(
    db: &DatabaseConnection,
    id: Uuid,
    limit: u64,
) -> Result<Vec<AttemptOut>, StoreError> {
    Ok(AttemptOut::find_by_statement(stmt(
        "SELECT id, event_id, webhook_id, trigger, attempted_at, status_code, latency_ms, \
         response, error FROM webhook_attempts WHERE subscription_id = $1 ORDER BY id DESC LIMIT $2",
        vec![id.into(), i64::try_from(limit).unwrap_or(i64::MAX).into()],
    ))
    .all(db)
    .await?)
}

/// One delivery (a stored event or a notification for one subscription).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, FromQueryResult)]
pub struct DeliveryOut {
    pub event_id: Uuid,
    /// `event.stored` or `event.erased`.
    pub kind: String,
    /// `pending`, `succeeded`, `failed` (gave up) or `skipped` (erased before delivery).
    pub status: String,
    pub attempts: i32,
    #[serde(serialize_with = "time")]
    #[schema(value_type = String)]
    pub next_attempt_at: DateTime<Utc>,
    #[serde(serialize_with = "time")]
    #[schema(value_type = String)]
    pub created_at: DateTime<Utc>,
    pub last_error: Option<String>,
}

pub async fn deliveries(
    db: &DatabaseConnection,
    id: Uuid,
    status: Option<&str>,
    limit: u64,
) -> Result<Vec<DeliveryOut>, StoreError> {
    Ok(DeliveryOut::find_by_statement(stmt(
        // Two statements rather than `($2 IS NULL OR status = $2)`: each gets its own index
        // ((subscription_id, status, seq) or (subscription_id, seq)) under a generic plan.
        if status.is_some() {
            "SELECT event_id, kind, status, attempts, next_attempt_at, created_at, last_error \
             FROM webhook_deliveries WHERE subscription_id = $1 AND status = $2 \
             ORDER BY seq DESC LIMIT $3"
        } else {
            "SELECT event_id, kind, status, attempts, next_attempt_at, created_at, last_error \
             FROM webhook_deliveries WHERE subscription_id = $1 AND $2::text IS NULL \
             ORDER BY seq DESC LIMIT $3"
        },
        vec![
            id.into(),
            status.map(str::to_owned).into(),
            i64::try_from(limit).unwrap_or(i64::MAX).into(),
        ],
    ))
    .all(db)
    .await?)
}

/// Queues again every stored event of the subscription's application since `since` that
/// its filters pass (at most `cap`): existing deliveries go back to pending (same key, so
/// the same webhook-id), missing ones are added. How many were queued.
pub async fn replay(
    db: &DatabaseConnection,
    id: Uuid,
    since: DateTime<Utc>,
    cap: u64,
) -> Result<u64, StoreError> {
    let done = db
        .execute_raw(stmt(
            "INSERT INTO webhook_deliveries (subscription_id, event_id, app_id) \
             SELECT s.id, e.id, e.app_id FROM webhook_subscriptions s \
             JOIN events e ON e.app_id = s.app_id AND e.stored_at >= $2 \
             WHERE s.id = $1 AND (jsonb_array_length(s.filters) = 0 OR EXISTS ( \
               SELECT 1 FROM jsonb_array_elements(s.filters) f \
               WHERE (f->>'category' IS NULL OR f->>'category' = e.category) \
                 AND (f->>'name' IS NULL OR f->>'name' = e.name))) \
             ORDER BY e.stored_at, e.id LIMIT $3 \
             ON CONFLICT (subscription_id, event_id) DO UPDATE SET status = 'pending', \
               attempts = 0, next_attempt_at = now(), last_error = NULL",
            vec![
                id.into(),
                since.into(),
                i64::try_from(cap).unwrap_or(i64::MAX).into(),
            ],
        ))
        .await?;
    Ok(done.rows_affected())
}

/// Records a test attempt.
pub async fn record_test(
    db: &DatabaseConnection,
    id: Uuid,
    webhook_id: &str,
    status: Option<u16>,
    latency_ms: i32,
    response: Option<&str>,
    error: Option<&str>,
) -> Result<(), StoreError> {
    db.execute_raw(stmt(
        "INSERT INTO webhook_attempts (subscription_id, webhook_id, trigger, status_code, \
         latency_ms, response, error) VALUES ($1, $2, 'test', $3, $4, $5, $6)",
        vec![
            id.into(),
            webhook_id.into(),
            status.map(i32::from).into(),
            latency_ms.into(),
            response.map(str::to_owned).into(),
            error.map(str::to_owned).into(),
        ],
    ))
    .await?;
    Ok(())
}

/// Pending and failed deliveries of one subscription, each counted up to a cap.
#[derive(Debug, Clone, Serialize, FromQueryResult)]
pub struct Backlog {
    pub id: Uuid,
    pub pending: i64,
    pub failed: i64,
}

/// [`Backlog`] of each of `ids`, each count stopping at `cap` (an index range per
/// subscription and status, never a scan of the whole table): cheap enough for a list page.
pub async fn backlog(
    db: &DatabaseConnection,
    ids: &[Uuid],
    cap: u64,
) -> Result<Vec<Backlog>, StoreError> {
    let count = |status: &str| {
        format!(
            "(SELECT count(*) FROM (SELECT 1 FROM webhook_deliveries d \
              WHERE d.subscription_id = s.id AND d.status = '{status}' LIMIT $2) c)"
        )
    };
    Ok(Backlog::find_by_statement(stmt(
        &format!(
            "SELECT s.id, {} AS pending, {} AS failed FROM unnest($1::uuid[]) AS s(id)",
            count("pending"),
            count("failed")
        ),
        vec![
            ids.to_vec().into(),
            i64::try_from(cap).unwrap_or(i64::MAX).into(),
        ],
    ))
    .all(db)
    .await?)
}
