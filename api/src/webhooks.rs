//! Webhook subscriptions (issue 15): what a caller may ask (each refusal naming the field)
//! and the operations the `/webhooks` handlers call. Sending is the dispatcher's
//! (`eye-dispatcher`), but for `POST /webhooks/{id}/test`, sent here, synchronously, through
//! the same [`eye_dispatcher::Sender`] (signing, address guard, caps).

use chrono::{DateTime, Utc};
use eye_core::event::MAX_LABEL_CHARS;
use eye_core::webhook::Filter;
use sea_orm::DatabaseConnection;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::ApiError;
use crate::store::webhooks::{self as store, Changes, NewWebhook, WebhookOut};

/// Longest URL and description accepted.
pub const MAX_URL_CHARS: usize = 2000;
pub const MAX_DESCRIPTION_CHARS: usize = 1000;
/// Filters per subscription at most.
pub const MAX_FILTERS: usize = 50;
/// Default and largest grace period of a rotated secret (seconds).
pub const DEFAULT_GRACE_SECS: u32 = 86_400;
pub const MAX_GRACE_SECS: u32 = 7 * 86_400;
/// Events one replay queues at most.
pub const REPLAY_CAP: u64 = 100_000;

/// A new subscription.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookIn {
    /// `https://...` (or `http://`); private and loopback addresses are refused when sending.
    #[schema(example = "https://example.com/eye-hook")]
    pub url: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Events matching any filter are sent; none: every event of the application.
    #[serde(default)]
    pub filters: Option<Vec<Filter>>,
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Strict order per endpoint.
    #[serde(default)]
    pub fifo: Option<bool>,
}

/// Changes to a subscription; absent fields keep their value. `enabled: true` re-enables
/// one the dispatcher disabled.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookPatch {
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub filters: Option<Vec<Filter>>,
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub fifo: Option<bool>,
}

/// A rotation: the old secret stays valid for `grace_secs` (default a day).
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateIn {
    #[serde(default)]
    #[schema(minimum = 0, maximum = 604800)]
    pub grace_secs: Option<u32>,
}

/// The subscriptions of the caller's application.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WebhookList {
    pub data: Vec<WebhookOut>,
}

/// What a test send gave.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TestOut {
    pub webhook_id: String,
    pub succeeded: bool,
    pub status: Option<u16>,
    pub latency_ms: u64,
    /// The start of the endpoint's answer.
    pub response: Option<String>,
    /// Why nothing was answered (refused address, timeout, connection).
    pub error: Option<String>,
}

/// How many deliveries a replay queued.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReplayOut {
    pub queued: u64,
    pub since: String,
}

fn invalid(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::InvalidField {
        field: field.into(),
        message: message.into(),
    }
}

fn check_url(url: &str) -> Result<(), ApiError> {
    if url.chars().count() > MAX_URL_CHARS || url.contains('\0') {
        return Err(invalid(
            "url",
            format!("at most {MAX_URL_CHARS} characters"),
        ));
    }
    let parsed = url::Url::parse(url).map_err(|e| invalid("url", format!("not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(invalid("url", "must be http:// or https://"));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(invalid("url", "must name a host"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(invalid("url", "must not hold credentials"));
    }
    Ok(())
}

fn check_description(description: &str) -> Result<(), ApiError> {
    if description.chars().count() > MAX_DESCRIPTION_CHARS || description.contains('\0') {
        return Err(invalid(
            "description",
            format!("at most {MAX_DESCRIPTION_CHARS} characters, no NUL"),
        ));
    }
    Ok(())
}

/// The filters as stored (JSON), each label checked like an event's.
fn check_filters(filters: &[Filter]) -> Result<String, ApiError> {
    if filters.len() > MAX_FILTERS {
        return Err(invalid("filters", format!("at most {MAX_FILTERS} filters")));
    }
    for (i, filter) in filters.iter().enumerate() {
        for (field, value) in [("category", &filter.category), ("name", &filter.name)] {
            if let Some(v) = value
                && (v.is_empty()
                    || v.contains('\0')
                    || v.chars().count() > MAX_LABEL_CHARS as usize)
            {
                return Err(invalid(
                    &format!("/filters/{i}/{field}"),
                    format!("must be 1 to {MAX_LABEL_CHARS} characters"),
                ));
            }
        }
    }
    serde_json::to_string(filters).map_err(|e| ApiError::Internal(e.into()))
}

pub async fn create(
    db: &DatabaseConnection,
    app_id: &str,
    request: &WebhookIn,
) -> Result<WebhookOut, ApiError> {
    check_url(&request.url)?;
    let description = request.description.clone().unwrap_or_default();
    check_description(&description)?;
    let filters = check_filters(request.filters.as_deref().unwrap_or_default())?;
    let secret = eye_client::webhooks::new_secret();
    Ok(store::create(
        db,
        NewWebhook {
            app_id,
            url: &request.url,
            description: &description,
            filters,
            enabled: request.enabled.unwrap_or(true),
            fifo: request.fifo.unwrap_or(false),
            secret: &secret,
        },
    )
    .await?)
}

pub async fn update(
    db: &DatabaseConnection,
    app: Option<&str>,
    id: Uuid,
    patch: &WebhookPatch,
) -> Result<WebhookOut, ApiError> {
    if let Some(url) = &patch.url {
        check_url(url)?;
    }
    if let Some(description) = &patch.description {
        check_description(description)?;
    }
    let filters = patch.filters.as_deref().map(check_filters).transpose()?;
    let changes = Changes {
        url: patch.url.clone(),
        description: patch.description.clone(),
        filters,
        enabled: patch.enabled,
        fifo: patch.fifo,
    };
    store::update(db, app, id, changes)
        .await?
        .ok_or(ApiError::NotFound)
}

pub async fn rotate(
    db: &DatabaseConnection,
    app: Option<&str>,
    id: Uuid,
    request: &RotateIn,
) -> Result<WebhookOut, ApiError> {
    let grace = request.grace_secs.unwrap_or(DEFAULT_GRACE_SECS);
    if grace > MAX_GRACE_SECS {
        return Err(invalid(
            "grace_secs",
            format!("at most {MAX_GRACE_SECS} seconds"),
        ));
    }
    let secret = eye_client::webhooks::new_secret();
    store::rotate(db, app, id, &secret, grace)
        .await?
        .ok_or(ApiError::NotFound)
}

/// Sends a `webhook.test` message now and records the attempt.
pub async fn test(
    db: &DatabaseConnection,
    sender: &eye_dispatcher::Sender,
    app: Option<&str>,
    id: Uuid,
) -> Result<TestOut, ApiError> {
    let signing = store::signing(db, app, id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let webhook_id = format!("msg_{}", Uuid::now_v7().simple());
    let body = eye_dispatcher::payload::test(id);
    let mut secrets = vec![signing.secret.as_str()];
    secrets.extend(signing.previous_secret.as_deref());
    let outcome = sender
        .send(&eye_dispatcher::sender::Message {
            url: &signing.url,
            webhook_id: &webhook_id,
            body: &body,
            secrets: &secrets,
        })
        .await;
    let latency_ms = u64::try_from(outcome.latency.as_millis()).unwrap_or(u64::MAX);
    store::record_test(
        db,
        id,
        &webhook_id,
        outcome.status,
        i32::try_from(latency_ms).unwrap_or(i32::MAX),
        outcome.response.as_deref(),
        outcome.error.as_deref(),
    )
    .await?;
    Ok(TestOut {
        webhook_id,
        succeeded: outcome.succeeded(),
        status: outcome.status,
        latency_ms,
        response: outcome.response,
        error: outcome.error,
    })
}

/// Queues the events stored since `since` again (same webhook-ids).
pub async fn replay(
    db: &DatabaseConnection,
    app: Option<&str>,
    id: Uuid,
    since: DateTime<Utc>,
) -> Result<ReplayOut, ApiError> {
    store::get(db, app, id).await?.ok_or(ApiError::NotFound)?;
    let queued = store::replay(db, id, since, REPLAY_CAP).await?;
    Ok(ReplayOut {
        queued,
        since: since.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
    })
}

/// The subscription must be the caller's (404 otherwise).
pub async fn owned(db: &DatabaseConnection, app: Option<&str>, id: Uuid) -> Result<(), ApiError> {
    store::get(db, app, id)
        .await?
        .map(|_| ())
        .ok_or(ApiError::NotFound)
}
