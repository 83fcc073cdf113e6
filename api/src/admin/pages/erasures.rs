//! Erasures (`/admin/erasures`): the latest requests with their progress and audit trail, a
//! request form answered with its dry run, the confirmation (the event count typed back, as
//! `eye-api erase` asks), and one erasure's page, refreshed while the worker deletes. It calls
//! the same functions as `POST /erasures` ([`crate::erasure`]), on behalf of any application
//! (the console is admin), recorded as `console:<who>`.

use axum::Router;
use axum::extract::{Path, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use uuid::Uuid;

use super::page;
use crate::admin::session::{Posted, Session};
use crate::admin::view::{AdminError, render};
use crate::erasure::{self, ErasureRequest};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::erasures::ErasureOut;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/erasures", get(list))
        .route("/admin/erasures/create", post(create))
        .route("/admin/erasures/confirm", post(confirm))
        .route("/admin/erasures/{id}", get(show))
}

fn refused(e: ApiError) -> AdminError {
    match e {
        ApiError::InvalidField { field, message } => AdminError::bad(&field, message),
        ApiError::NotFound => AdminError::NotFound("erasure"),
        other => AdminError::bad("erasure", other.to_string()),
    }
}

fn view(e: &ErasureOut) -> minijinja::Value {
    minijinja::Value::from_serialize(e)
}

async fn list(State(state): State<AppState>, session: Session) -> Result<Html<String>, AdminError> {
    render_list(&state, &session, None).await
}

async fn render_list(
    state: &AppState,
    session: &Session,
    pending: Option<&ErasureOut>,
) -> Result<Html<String>, AdminError> {
    let erasures = erasure::list(&state.reads, None).await.map_err(refused)?;
    render(
        "erasures.html",
        page(
            session,
            "erasures",
            minijinja::context! {
                erasures => erasures.data.iter().map(view).collect::<Vec<_>>(),
                pending => pending.map(view),
            },
        ),
    )
}

/// Records the request and answers with its dry run and the confirmation form.
async fn create(State(state): State<AppState>, posted: Posted) -> Result<Html<String>, AdminError> {
    let form = &posted.form;
    let text = |name: &str| form.get(name).map(str::to_owned);
    let app = form
        .get("app")
        .ok_or_else(|| AdminError::bad("app", "which application"))?;
    let session_id = form
        .get("session_id")
        .map(|s| {
            s.parse::<Uuid>()
                .map_err(|_| AdminError::bad("session_id", "not a UUID"))
        })
        .transpose()?;
    let request = ErasureRequest {
        app_id: Some(app.to_owned()),
        session_id,
        category: text("category"),
        name: text("name"),
        from: text("from"),
        to: text("to"),
        reason: text("reason").unwrap_or_default(),
    };
    let by = format!("console:{}", posted.session.who);
    let pending = erasure::request(&state.reads, &request, app, true, &by)
        .await
        .map_err(refused)?;
    render_list(&state, &posted.session, Some(&pending)).await
}

/// Confirms, when the count typed back is the dry run's event count.
async fn confirm(State(state): State<AppState>, posted: Posted) -> Result<Response, AdminError> {
    let id: Uuid = posted
        .form
        .get("id")
        .and_then(|i| i.parse().ok())
        .ok_or_else(|| AdminError::bad("id", "an erasure id"))?;
    let pending = erasure::get(&state.reads, id, None)
        .await
        .map_err(refused)?;
    let typed = posted.form.get("count").unwrap_or_default().trim();
    if typed != pending.dry_run.events.to_string() {
        return Err(AdminError::bad(
            "count",
            format!(
                "type the dry run's event count ({}) to confirm",
                pending.dry_run.events
            ),
        ));
    }
    let by = format!("console:{}", posted.session.who);
    erasure::confirm(&state.reads, id, None, &by)
        .await
        .map_err(refused)?;
    Ok(Redirect::to(&format!("/admin/erasures/{id}")).into_response())
}

async fn show(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<Uuid>,
) -> Result<Html<String>, AdminError> {
    let erasure = erasure::get(&state.reads, id, None)
        .await
        .map_err(refused)?;
    render(
        "erasure.html",
        page(
            &session,
            "erasures",
            minijinja::context! { e => view(&erasure) },
        ),
    )
}
