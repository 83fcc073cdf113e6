//! One file per console page; each gives its routes.

mod apps;
mod dead_letters;
mod erasures;
mod events;
mod exports;
mod imports;
mod login;
mod overview;
mod plans;
mod records;
mod webhooks;

use axum::Router;
use minijinja::Value;

use super::NAV;
use super::session::Session;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(login::router())
        .merge(overview::router())
        .merge(events::router())
        .merge(dead_letters::router())
        .merge(apps::router())
        .merge(plans::router())
        .merge(records::router())
        .merge(erasures::router())
        .merge(imports::router())
        .merge(webhooks::router())
        .merge(exports::router())
}

/// What `layout.html` needs, merged with a page's own context.
pub fn page(session: &Session, current: &str, ctx: Value) -> Value {
    minijinja::context! {
        who => session.who,
        csrf => session.csrf,
        nav => NAV,
        current => current,
        ..ctx
    }
}
