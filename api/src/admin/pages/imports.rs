//! Imports (`/admin/imports`): every application's newest imports, and one import's live
//! progress (htmx's SSE extension on `/admin/imports/{id}/events`, the same progress stream
//! as the api's `GET /imports/{id}/events`, rendered as HTML) with its first refused rows.

use std::convert::Infallible;

use axum::Router;
use axum::extract::{Path, State};
use axum::response::Html;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use futures::{Stream, StreamExt};

use super::page;
use crate::admin::session::Session;
use crate::admin::view::{AdminError, render};
use crate::params::uuid_param;
use crate::routes::imports::progress;
use crate::state::AppState;
use crate::store::imports::{self, ImportOut};

/// Refused rows shown on an import's page (the rest: `GET /imports/{id}/refused`).
const REFUSED_SHOWN: u64 = 100;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/imports", get(list))
        .route("/admin/imports/{id}", get(show))
        .route("/admin/imports/{id}/events", get(events))
}

fn row(i: &ImportOut) -> minijinja::Value {
    minijinja::context! {
        id => i.id.to_string(), app_id => i.app_id, format => i.format, state => i.state,
        staged_rows => i.staged_rows, rows_read => i.rows_read, accepted => i.accepted,
        refused => i.refused, stored => i.stored, duplicates => i.duplicates,
        suppressed => i.suppressed, error => i.error, created_by => i.created_by,
        created_at => i.created_at.to_rfc3339(), finished => i.finished(),
        percent => match i.staged_rows {
            Some(n) if n > 0 => i.rows_read * 100 / n,
            _ => 0,
        },
    }
}

async fn list(State(state): State<AppState>, session: Session) -> Result<Html<String>, AdminError> {
    let rows = imports::list(&state.reads, None, 100).await?;
    render(
        "imports.html",
        page(
            &session,
            "imports",
            minijinja::context! { imports => rows.iter().map(row).collect::<Vec<_>>() },
        ),
    )
}

async fn found(state: &AppState, id: &str) -> Result<ImportOut, AdminError> {
    let id = uuid_param("id", id)?;
    imports::get(&state.reads, id, None)
        .await?
        .ok_or(AdminError::NotFound("import"))
}

async fn show(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
) -> Result<Html<String>, AdminError> {
    let import = found(&state, &id).await?;
    let refused = imports::refused(&state.reads, import.id, 0, REFUSED_SHOWN).await?;
    render(
        "import.html",
        page(
            &session,
            "imports",
            minijinja::context! {
                import => row(&import),
                refused => refused.iter().map(|r| minijinja::context! {
                    row_no => r.row_no, column => r.column, message => r.message, line => r.line,
                }).collect::<Vec<_>>(),
            },
        ),
    )
}

async fn events(
    State(state): State<AppState>,
    _session: Session,
    Path(id): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, AdminError> {
    let import = found(&state, &id).await?;
    let stream = progress(state.reads.clone(), import, None).map(|(kind, import)| {
        let html = render(
            "import_progress.html",
            minijinja::context! { import => row(&import) },
        )
        .map_or_else(|e| e.to_string(), |h| h.0);
        Ok(Event::default()
            .event(kind)
            .id(import.version.to_string())
            .data(html))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
