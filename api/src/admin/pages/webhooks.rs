//! Webhooks (`/admin/webhooks`): every application's subscriptions (filterable by
//! application) with their state and backlog; create and edit; rotate the secret (the new
//! one shown in that answer only); send a test (status, latency, the answer's start); replay
//! since a time; a subscription's attempts and its deliveries by status. Everything goes
//! through [`crate::webhooks`] and [`crate::store::webhooks`], as `/webhooks` does (so the
//! checks, the signing and the address guard, with its allow-list, are the same).

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use eye_core::webhook::Filter;
use serde::Deserialize;
use uuid::Uuid;

use super::events::time;
use super::page;
use crate::admin::session::{Posted, Session};
use crate::admin::view::{AdminError, FormData, render};
use crate::params::uuid_param;
use crate::state::AppState;
use crate::store;
use crate::store::webhooks::{self as hooks, WebhookOut};
use crate::webhooks::{self, RotateIn, TestOut, WebhookIn, WebhookPatch};

/// Pending and failed deliveries are counted up to this many per subscription.
const BACKLOG_CAP: u64 = 1000;
/// Attempts and deliveries shown on a subscription's page.
const SHOWN: u64 = 50;
const STATUSES: &[&str] = &["pending", "succeeded", "failed", "skipped"];

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/webhooks", get(list))
        .route("/admin/webhooks/create", post(create))
        .route("/admin/webhooks/{id}", get(show))
        .route("/admin/webhooks/{id}/update", post(update))
        .route("/admin/webhooks/{id}/rotate", post(rotate))
        .route("/admin/webhooks/{id}/test", post(test))
        .route("/admin/webhooks/{id}/replay", post(replay))
        .route("/admin/webhooks/{id}/delete", post(delete))
}

#[derive(Debug, Default, Deserialize)]
struct ListQuery {
    #[serde(default)]
    app: Option<String>,
    #[serde(default)]
    done: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct ShowQuery {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    done: Option<String>,
}

fn stamp(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S%.3f UTC").to_string()
}

/// A subscription for a template: its filters as text too.
fn view(w: &WebhookOut, pending: i64, failed: i64) -> minijinja::Value {
    let filters: Vec<Filter> = serde_json::from_str(w.filters.get()).unwrap_or_default();
    let shown: Vec<String> = filters
        .iter()
        .map(|f| match (&f.category, &f.name) {
            (Some(c), Some(n)) => format!("{c} / {n}"),
            (Some(c), None) => format!("{c} / any name"),
            (None, Some(n)) => format!("any category / {n}"),
            (None, None) => "everything".to_owned(),
        })
        .collect();
    minijinja::context! {
        id => w.id.to_string(), app_id => w.app_id, url => w.url, description => w.description,
        filters => shown, filters_json => w.filters.get(), enabled => w.enabled,
        disabled_reason => w.disabled_reason, fifo => w.fifo, failing_since => w.failing_since,
        previous_secret_expires_at => w.previous_secret_expires_at,
        created_at => w.created_at, updated_at => w.updated_at,
        pending => pending, failed => failed, cap => BACKLOG_CAP,
    }
}

async fn list(
    State(state): State<AppState>,
    session: Session,
    Query(q): Query<ListQuery>,
) -> Result<Html<String>, AdminError> {
    let app = q.app.as_deref().map(str::trim).filter(|a| !a.is_empty());
    let subscriptions = hooks::list(&state.reads, app).await?;
    let ids: Vec<Uuid> = subscriptions.iter().map(|w| w.id).collect();
    let backlog = hooks::backlog(&state.reads, &ids, BACKLOG_CAP).await?;
    let rows: Vec<_> = subscriptions
        .iter()
        .map(|w| {
            let b = backlog.iter().find(|b| b.id == w.id);
            view(w, b.map_or(0, |b| b.pending), b.map_or(0, |b| b.failed))
        })
        .collect();
    let apps: Vec<String> = store::apps::list_apps(&state.reads)
        .await?
        .into_iter()
        .map(|a| a.id)
        .collect();
    render(
        "webhooks.html",
        page(
            &session,
            "webhooks",
            minijinja::context! { webhooks => rows, apps => apps, app => app, done => q.done },
        ),
    )
}

/// The `filters` field: a JSON array as `/webhooks` takes it; blank: none (every event).
fn filters(form: &FormData) -> Result<Vec<Filter>, AdminError> {
    match form.get("filters") {
        None => Ok(Vec::new()),
        Some(text) => serde_json::from_str(text).map_err(|e| {
            AdminError::bad(
                "filters",
                format!("a JSON array like [{{\"category\": \"page interaction\"}}]: {e}"),
            )
        }),
    }
}

fn checked(form: &FormData, name: &str) -> bool {
    form.get(name).is_some()
}

async fn create(State(state): State<AppState>, posted: Posted) -> Result<Html<String>, AdminError> {
    let form = &posted.form;
    let app = form
        .get("app")
        .ok_or_else(|| AdminError::bad("app", "which application"))?;
    if !store::apps::list_apps(&state.reads)
        .await?
        .iter()
        .any(|a| a.id == app)
    {
        return Err(AdminError::NotFound("application"));
    }
    let request = WebhookIn {
        url: form.get("url").unwrap_or_default().to_owned(),
        description: form.get("description").map(str::to_owned),
        filters: Some(filters(form)?),
        enabled: Some(checked(form, "enabled")),
        fifo: Some(checked(form, "fifo")),
    };
    let created = webhooks::create(&state.reads, app, &request).await?;
    let done = format!("Subscription created for {app}.");
    let secret = created.secret.clone();
    render_one(
        &state,
        &posted.session,
        &created,
        None,
        Some(done),
        secret,
        None,
    )
    .await
}

async fn found(state: &AppState, id: &str) -> Result<WebhookOut, AdminError> {
    let id = uuid_param("id", id)?;
    hooks::get(&state.reads, None, id)
        .await?
        .ok_or(AdminError::NotFound("subscription"))
}

async fn show(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    Query(q): Query<ShowQuery>,
) -> Result<Html<String>, AdminError> {
    let webhook = found(&state, &id).await?;
    let status = q.status.as_deref().filter(|s| !s.is_empty());
    if let Some(s) = status
        && !STATUSES.contains(&s)
    {
        return Err(AdminError::bad(
            "status",
            "pending, succeeded, failed or skipped",
        ));
    }
    render_one(&state, &session, &webhook, status, q.done, None, None).await
}

/// A subscription's page; `secret` (after creation or rotation) and `tested` (after a test)
/// are shown in this answer only.
async fn render_one(
    state: &AppState,
    session: &Session,
    w: &WebhookOut,
    status: Option<&str>,
    done: Option<String>,
    secret: Option<String>,
    tested: Option<TestOut>,
) -> Result<Html<String>, AdminError> {
    let backlog = hooks::backlog(&state.reads, &[w.id], BACKLOG_CAP).await?;
    let b = backlog.first();
    let attempts = hooks::attempts(&state.reads, w.id, SHOWN).await?;
    let deliveries = hooks::deliveries(&state.reads, w.id, status, SHOWN).await?;
    let attempts: Vec<_> = attempts
        .iter()
        .map(|a| {
            minijinja::context! {
                at => stamp(a.attempted_at), trigger => a.trigger, webhook_id => a.webhook_id,
                event_id => a.event_id.map(|e| e.to_string()), status => a.status_code,
                latency_ms => a.latency_ms, response => a.response, error => a.error,
            }
        })
        .collect();
    let deliveries: Vec<_> = deliveries
        .iter()
        .map(|d| {
            minijinja::context! {
                event_id => d.event_id.to_string(), kind => d.kind, status => d.status,
                attempts => d.attempts, next_attempt_at => stamp(d.next_attempt_at),
                created_at => stamp(d.created_at), last_error => d.last_error,
            }
        })
        .collect();
    let tested = tested.map(|t| {
        minijinja::context! {
            succeeded => t.succeeded, status => t.status, latency_ms => t.latency_ms,
            response => t.response, error => t.error, webhook_id => t.webhook_id,
        }
    });
    render(
        "webhook.html",
        page(
            session,
            "webhooks",
            minijinja::context! {
                w => view(w, b.map_or(0, |b| b.pending), b.map_or(0, |b| b.failed)),
                attempts => attempts, deliveries => deliveries, status => status,
                statuses => STATUSES, done => done, secret => secret, tested => tested,
            },
        ),
    )
}

fn back(id: Uuid, done: &str) -> Response {
    let query = serde_urlencoded::to_string([("done", done)]).unwrap_or_default();
    Redirect::to(&format!("/admin/webhooks/{id}?{query}")).into_response()
}

async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    posted: Posted,
) -> Result<Response, AdminError> {
    let id = found(&state, &id).await?.id;
    let form = &posted.form;
    let patch = WebhookPatch {
        url: Some(form.get("url").unwrap_or_default().to_owned()),
        description: Some(form.get("description").unwrap_or_default().to_owned()),
        filters: Some(filters(form)?),
        enabled: Some(checked(form, "enabled")),
        fifo: Some(checked(form, "fifo")),
    };
    webhooks::update(&state.reads, None, id, &patch).await?;
    Ok(back(id, "Subscription saved."))
}

async fn rotate(
    State(state): State<AppState>,
    Path(id): Path<String>,
    posted: Posted,
) -> Result<Html<String>, AdminError> {
    let id = found(&state, &id).await?.id;
    let request = RotateIn {
        grace_secs: posted.form.positive("grace_secs")?,
    };
    let rotated = webhooks::rotate(&state.reads, None, id, &request).await?;
    let secret = rotated.secret.clone();
    let done = Some("Secret rotated; the old one is still signed with until it expires.".into());
    render_one(&state, &posted.session, &rotated, None, done, secret, None).await
}

async fn test(
    State(state): State<AppState>,
    Path(id): Path<String>,
    posted: Posted,
) -> Result<Html<String>, AdminError> {
    let id = found(&state, &id).await?.id;
    let tested = webhooks::test(&state.reads, &state.webhook_sender, None, id).await?;
    let webhook = found(&state, &id.to_string()).await?;
    render_one(
        &state,
        &posted.session,
        &webhook,
        None,
        None,
        None,
        Some(tested),
    )
    .await
}

async fn replay(
    State(state): State<AppState>,
    Path(id): Path<String>,
    posted: Posted,
) -> Result<Response, AdminError> {
    let id = found(&state, &id).await?.id;
    let since = time("since", &posted.form.get("since").map(str::to_owned))?
        .ok_or_else(|| AdminError::bad("since", "required: from when to send again"))?;
    let out = webhooks::replay(&state.reads, None, id, since).await?;
    Ok(back(
        id,
        &format!(
            "{} deliveries queued again (stored since {}).",
            out.queued, out.since
        ),
    ))
}

async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    _posted: Posted,
) -> Result<Response, AdminError> {
    let webhook = found(&state, &id).await?;
    hooks::delete(&state.reads, None, webhook.id).await?;
    let query = serde_urlencoded::to_string([(
        "done",
        format!("Subscription to {} deleted.", webhook.url),
    )])
    .unwrap_or_default();
    Ok(Redirect::to(&format!("/admin/webhooks?{query}")).into_response())
}
