//! Applications and tokens (`/admin/apps`): create, set limits, disable and enable, issue a
//! token (shown once, in the answer to the form that issued it, never stored or shown
//! again), revoke. Everything goes through the registry ([`crate::apps`]) the `eye-api apps`
//! and `tokens` commands use; the api's revocation state picks changes up at its next reload.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use uuid::Uuid;

use super::page;
use crate::admin::session::{Posted, Session};
use crate::admin::view::{AdminError, render};
use crate::apps;
use crate::auth::{SCOPE_ADMIN, SCOPE_EVENTS_READ, SCOPE_EVENTS_WRITE};
use crate::state::AppState;
use crate::store;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/apps", get(show))
        .route("/admin/apps/create", post(create))
        .route("/admin/apps/limit", post(limit))
        .route("/admin/apps/disable", post(disable))
        .route("/admin/apps/enable", post(enable))
        .route("/admin/tokens/issue", post(issue))
        .route("/admin/tokens/revoke", post(revoke))
}

#[derive(Debug, Deserialize)]
struct Flash {
    #[serde(default)]
    done: Option<String>,
}

async fn show(
    State(state): State<AppState>,
    session: Session,
    Query(flash): Query<Flash>,
) -> Result<Html<String>, AdminError> {
    render_page(&state, &session, flash.done, None).await
}

async fn render_page(
    state: &AppState,
    session: &Session,
    done: Option<String>,
    issued: Option<minijinja::Value>,
) -> Result<Html<String>, AdminError> {
    let apps = store::apps::list_apps(&state.reads).await?;
    let mut tokens: BTreeMap<String, Vec<minijinja::Value>> = BTreeMap::new();
    let time = |t: Option<chrono::DateTime<chrono::Utc>>| {
        t.map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
    };
    for t in store::apps::list_tokens(&state.reads, None).await? {
        tokens
            .entry(t.app_id.clone())
            .or_default()
            .push(minijinja::context! {
                jti => t.jti.to_string(), scopes => t.scopes, kid => t.kid,
                issued_at => time(Some(t.issued_at)), expires_at => time(t.expires_at),
                revoked_at => time(t.revoked_at), last_used_at => time(t.last_used_at),
            });
    }
    let apps: Vec<_> = apps
        .iter()
        .map(|a| {
            minijinja::context! {
                id => a.id, name => a.name, created_at => time(Some(a.created_at)),
                disabled_at => time(a.disabled_at), rate_per_sec => a.rate_per_sec,
                rate_burst => a.rate_burst, tokens => tokens.get(&a.id).cloned().unwrap_or_default(),
            }
        })
        .collect();
    render(
        "apps.html",
        page(
            session,
            "apps",
            minijinja::context! { apps => apps, done => done, issued => issued },
        ),
    )
}

fn back(done: &str) -> Response {
    let query = serde_urlencoded::to_string([("done", done)]).unwrap_or_default();
    Redirect::to(&format!("/admin/apps?{query}")).into_response()
}

fn app_field(posted: &Posted) -> Result<&str, AdminError> {
    posted
        .form
        .get("app")
        .ok_or_else(|| AdminError::bad("app", "which application"))
}

async fn create(State(state): State<AppState>, posted: Posted) -> Result<Response, AdminError> {
    let form = &posted.form;
    let id = form
        .get("id")
        .ok_or_else(|| AdminError::bad("id", "give the application an id"))?;
    let limits = (form.positive("rate_per_sec")?, form.positive("burst")?);
    if !apps::create_app(&state.reads, id, form.get("name"), limits).await? {
        return Err(AdminError::bad(
            "id",
            format!("application `{id}` already exists"),
        ));
    }
    Ok(back(&format!("Application {id} created.")))
}

async fn limit(State(state): State<AppState>, posted: Posted) -> Result<Response, AdminError> {
    let app = app_field(&posted)?;
    let (per_sec, burst) = (
        posted.form.positive("rate_per_sec")?,
        posted.form.positive("burst")?,
    );
    apps::set_limit(&state.reads, app, per_sec, burst).await?;
    Ok(back(&format!("Rate limit of {app} updated.")))
}

async fn disable(State(state): State<AppState>, posted: Posted) -> Result<Response, AdminError> {
    let app = app_field(&posted)?;
    apps::disable_app(&state.reads, app).await?;
    Ok(back(&format!("Application {app} disabled.")))
}

async fn enable(State(state): State<AppState>, posted: Posted) -> Result<Response, AdminError> {
    let app = app_field(&posted)?;
    apps::enable_app(&state.reads, app).await?;
    Ok(back(&format!("Application {app} enabled.")))
}

/// Issues a token and shows it in this answer only.
async fn issue(State(state): State<AppState>, posted: Posted) -> Result<Html<String>, AdminError> {
    let app = app_field(&posted)?;
    let mut scopes = Vec::new();
    for scope in posted.form.all("scope") {
        match scope {
            SCOPE_EVENTS_WRITE | SCOPE_EVENTS_READ | SCOPE_ADMIN => scopes.push(scope),
            other => return Err(AdminError::bad("scope", format!("unknown scope {other:?}"))),
        }
    }
    if scopes.is_empty() {
        return Err(AdminError::bad("scope", "choose at least one scope"));
    }
    let ttl = posted
        .form
        .positive("ttl_secs")?
        .map(|s| Duration::from_secs(s.into()));
    let issued = apps::issue_token(&state.reads, &state.jwt, app, &scopes, ttl).await?;
    let shown =
        minijinja::context! { app => app, jti => issued.jti.to_string(), token => issued.token };
    render_page(&state, &posted.session, None, Some(shown)).await
}

async fn revoke(State(state): State<AppState>, posted: Posted) -> Result<Response, AdminError> {
    let jti: Uuid = posted
        .form
        .get("jti")
        .and_then(|j| j.parse().ok())
        .ok_or_else(|| AdminError::bad("jti", "a token id"))?;
    if !store::apps::revoke_token(&state.reads, jti).await? {
        return Err(AdminError::bad("jti", "no such unrevoked token"));
    }
    Ok(back(&format!("Token {jti} revoked.")))
}
