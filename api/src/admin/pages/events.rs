//! Events (`/admin/events`): filters, keyset pages ("next page", no counts), one event's
//! detail with its JSON pretty-printed (or, when it was not stored, why), a session's
//! timeline, and the status fragment the replay page polls. The events' indexes all lead
//! with the application, so a list is always one application's (the first one by default).

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Html;
use axum::routing::get;
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Deserialize;
use uuid::Uuid;

use super::page;
use crate::admin::session::Session;
use crate::admin::view::{AdminError, render};
use crate::state::AppState;
use crate::store::cursor::Cursor;
use crate::store::events::{self, EventFilter, EventOut};
use crate::store::{self};

/// Rows per page.
const PAGE: u64 = 50;
/// Events of a session timeline per page.
const TIMELINE_PAGE: u64 = 200;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/events", get(list))
        .route("/admin/events/status", get(statuses))
        .route("/admin/events/{app}/{id}", get(detail))
        .route("/admin/sessions/{app}/{session}", get(timeline))
}

/// The filters, as typed in the form (blank means no filter).
#[derive(Debug, Default, Deserialize, serde::Serialize)]
struct EventsQuery {
    #[serde(default)]
    app: Option<String>,
    #[serde(default)]
    session: Option<String>,
    #[serde(default)]
    category: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    cursor: Option<String>,
}

fn blank(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// RFC 3339, or a browser's `datetime-local` value (read as UTC).
pub(super) fn time(field: &str, v: &Option<String>) -> Result<Option<DateTime<Utc>>, AdminError> {
    blank(v)
        .map(|v| {
            DateTime::parse_from_rfc3339(v)
                .map(|t| t.with_timezone(&Utc))
                .or_else(|_| {
                    NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M")
                        .or_else(|_| NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M:%S"))
                        .map(|t| t.and_utc())
                })
                .map_err(|_| AdminError::bad(field, "a time: 2026-12-03T07:00 (UTC) or RFC 3339"))
        })
        .transpose()
}

fn uuid(field: &str, v: &str) -> Result<Uuid, AdminError> {
    v.parse().map_err(|_| AdminError::bad(field, "a UUID"))
}

/// An event row for a template, with its data pretty-printed.
fn shown(e: &EventOut) -> minijinja::Value {
    let pretty = serde_json::from_str::<serde_json::Value>(e.data.get())
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or_else(|_| e.data.get().to_owned());
    minijinja::context! {
        id => e.id.to_string(), app_id => e.app_id, session_id => e.session_id.to_string(),
        category => e.category, name => e.name, timestamp => e.timestamp,
        received_at => e.received_at, source => e.source, data => pretty,
    }
}

async fn list(
    State(state): State<AppState>,
    session: Session,
    Query(q): Query<EventsQuery>,
) -> Result<Html<String>, AdminError> {
    let apps = store::apps::list_apps(&state.reads).await?;
    let app = blank(&q.app)
        .map(str::to_owned)
        .or_else(|| apps.first().map(|a| a.id.clone()));
    let filter = EventFilter {
        app_id: app.clone(),
        session_id: blank(&q.session).map(|s| uuid("session", s)).transpose()?,
        category: blank(&q.category).map(str::to_owned),
        name: blank(&q.name).map(str::to_owned),
        from: time("from", &q.from)?,
        to: time("to", &q.to)?,
        limit: PAGE,
        after: blank(&q.cursor)
            .map(|c| {
                Cursor::decode(c)
                    .ok_or_else(|| AdminError::bad("cursor", "not a cursor this console wrote"))
            })
            .transpose()?,
    };
    let page_rows = match &app {
        Some(_) => Some(events::list(&state.reads, &state.partitions, &filter).await?),
        None => None,
    };
    let next = page_rows
        .as_ref()
        .and_then(|p| p.next_cursor.clone())
        .map(|cursor| {
            let next = EventsQuery {
                app: app.clone(),
                cursor: Some(cursor),
                ..q_clone(&q)
            };
            serde_urlencoded::to_string(&next).unwrap_or_default()
        });
    render(
        "events.html",
        page(
            &session,
            "events",
            minijinja::context! {
                apps => apps.iter().map(|a| a.id.clone()).collect::<Vec<_>>(),
                app => app,
                q => q,
                rows => page_rows.map(|p| p.data.iter().map(shown).collect::<Vec<_>>()),
                next => next,
            },
        ),
    )
}

fn q_clone(q: &EventsQuery) -> EventsQuery {
    EventsQuery {
        app: q.app.clone(),
        session: q.session.clone(),
        category: q.category.clone(),
        name: q.name.clone(),
        from: q.from.clone(),
        to: q.to.clone(),
        cursor: None,
    }
}

async fn detail(
    State(state): State<AppState>,
    session: Session,
    Path((app, id)): Path<(String, String)>,
) -> Result<Html<String>, AdminError> {
    let id = uuid("id", &id)?;
    let event = events::get(&state.reads, Some(&app), id).await?;
    let status = match &event {
        Some(_) => None,
        None => Some(events::status(&state.reads, Some(&app), id).await?),
    };
    let status = status.map(|s| {
        minijinja::context! { status => s.status, reasons => pretty(s.reasons.get()) }
    });
    render(
        "event.html",
        page(
            &session,
            "events",
            minijinja::context! { app => app, id => id.to_string(), event => event.as_ref().map(shown), status => status },
        ),
    )
}

fn pretty(json: &str) -> String {
    serde_json::from_str::<serde_json::Value>(json)
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or_else(|_| json.to_owned())
}

#[derive(Debug, Deserialize)]
struct TimelineQuery {
    #[serde(default)]
    cursor: Option<String>,
}

async fn timeline(
    State(state): State<AppState>,
    session: Session,
    Path((app, session_id)): Path<(String, String)>,
    Query(q): Query<TimelineQuery>,
) -> Result<Html<String>, AdminError> {
    let session_id = uuid("session", &session_id)?;
    let filter = EventFilter {
        app_id: Some(app.clone()),
        session_id: Some(session_id),
        limit: TIMELINE_PAGE,
        after: blank(&q.cursor)
            .map(|c| {
                Cursor::decode(c)
                    .ok_or_else(|| AdminError::bad("cursor", "not a cursor this console wrote"))
            })
            .transpose()?,
        ..EventFilter::default()
    };
    let rows = events::list(&state.reads, &state.partitions, &filter).await?;
    render(
        "timeline.html",
        page(
            &session,
            "events",
            minijinja::context! {
                app => app, session_id => session_id.to_string(),
                rows => rows.data.iter().map(shown).collect::<Vec<_>>(),
                next => rows.next_cursor,
            },
        ),
    )
}

#[derive(Debug, Deserialize)]
struct StatusQuery {
    #[serde(default)]
    ids: String,
}

/// The state of up to 100 events (comma-separated `app:id` items, an event's key): the
/// fragment the replay page polls. Once every one is stored the answer is 286, htmx's "stop
/// polling" (a replayed event still reads `rejected` until the worker has stored it).
async fn statuses(
    State(state): State<AppState>,
    _session: Session,
    Query(q): Query<StatusQuery>,
) -> Result<(StatusCode, Html<String>), AdminError> {
    let mut all_stored = true;
    let mut rows = Vec::new();
    for item in q.ids.split(',').filter(|s| !s.is_empty()).take(100) {
        let (app, id) = item
            .rsplit_once(':')
            .ok_or_else(|| AdminError::bad("ids", "items are app:event-id"))?;
        let status = events::status(&state.reads, Some(app), uuid("ids", id)?).await?;
        all_stored &= status.status == "stored";
        rows.push(minijinja::context! { app => app, id => id, status => status.status });
    }
    let page = render(
        "statuses.html",
        minijinja::context! { rows => rows, ids => q.ids },
    )?;
    let stop = StatusCode::from_u16(286).unwrap_or(StatusCode::OK);
    Ok((if all_stored { stop } else { StatusCode::OK }, page))
}
