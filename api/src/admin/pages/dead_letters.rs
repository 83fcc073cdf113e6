//! Dead letters (`/admin/dead-letters`): grouped by kind, rule and reason with counts; a
//! group's rows (keyset pages) with payload and reasons; replay of one, a selection, or a
//! whole rule's group in one action (the api's own [`crate::replay`]), then the replayed
//! events' state, polled until each is stored or refused again.

use axum::Router;
use axum::extract::{Query, State};
use axum::response::Html;
use axum::routing::{get, post};
use serde::Deserialize;
use uuid::Uuid;

use super::page;
use crate::admin::session::{Posted, Session};
use crate::admin::view::{AdminError, render};
use crate::replay::{self, ReplayRequest};
use crate::state::AppState;
use crate::store::console;
use crate::store::cursor::Cursor;
use crate::store::dead_letters::{self, DeadLetterFilter};

/// Groups shown.
const GROUPS: i64 = 200;
/// Rows per page.
const PAGE: u64 = 50;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/dead-letters", get(groups))
        .route("/admin/dead-letters/list", get(list))
        .route("/admin/dead-letters/replay", post(replay_selected))
}

async fn groups(
    State(state): State<AppState>,
    session: Session,
) -> Result<Html<String>, AdminError> {
    let groups = console::dead_letter_groups(&state.reads, GROUPS).await?;
    let groups: Vec<_> = groups
        .iter()
        .map(|g| {
            minijinja::context! {
                kind => g.kind, validator => g.validator, message => g.message,
                count => g.count, last_seen => g.last_seen.to_rfc3339(),
                replayable => g.kind == "invalid" || g.kind == "poisoned",
                query => serde_urlencoded::to_string([("kind", Some(g.kind.as_str())), ("validator", g.validator.as_deref())]).unwrap_or_default(),
            }
        })
        .collect();
    render(
        "dead_letters.html",
        page(
            &session,
            "dead_letters",
            minijinja::context! { groups => groups },
        ),
    )
}

#[derive(Debug, Default, Deserialize, serde::Serialize)]
struct ListQuery {
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    validator: Option<String>,
    #[serde(default)]
    app: Option<String>,
    #[serde(default)]
    cursor: Option<String>,
}

fn blank(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

fn pretty(json: &str) -> String {
    serde_json::from_str::<serde_json::Value>(json)
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or_else(|_| json.to_owned())
}

async fn list(
    State(state): State<AppState>,
    session: Session,
    Query(q): Query<ListQuery>,
) -> Result<Html<String>, AdminError> {
    let kind = blank(&q.kind);
    if let Some(k) = &kind
        && !eye_core::entity::dead_letter::KINDS.contains(&k.as_str())
    {
        return Err(AdminError::bad(
            "kind",
            "invalid, warning, undecodable or poisoned",
        ));
    }
    let filter = DeadLetterFilter {
        app_id: blank(&q.app),
        kind,
        validator: blank(&q.validator),
        limit: PAGE,
        after: blank(&q.cursor)
            .map(|c| {
                Cursor::decode(&c)
                    .ok_or_else(|| AdminError::bad("cursor", "not a cursor this console wrote"))
            })
            .transpose()?,
        ..DeadLetterFilter::default()
    };
    let rows = dead_letters::list(&state.reads, &filter).await?;
    let keys: Vec<(String, Uuid)> = rows
        .data
        .iter()
        .filter_map(|d| Some((d.app_id.clone()?, d.event_id?)))
        .collect();
    let stored = console::stored_among(&state.reads, &keys).await?;
    let is_stored = |app: &Option<String>, id: &Option<Uuid>| match (app, id) {
        (Some(app), Some(id)) => stored.iter().any(|(a, i)| a == app && i == id),
        _ => false,
    };
    let next = rows.next_cursor.clone().map(|cursor| {
        serde_urlencoded::to_string(ListQuery {
            kind: filter.kind.clone(),
            validator: filter.validator.clone(),
            app: filter.app_id.clone(),
            cursor: Some(cursor),
        })
        .unwrap_or_default()
    });
    let shown: Vec<_> = rows
        .data
        .iter()
        .map(|d| {
            minijinja::context! {
                id => d.id.to_string(), kind => d.kind, app_id => d.app_id,
                event_id => d.event_id.map(|e| e.to_string()),
                category => d.category, name => d.name, validator => d.validator,
                field => d.field, message => d.message, attempts => d.attempts,
                first_seen => d.first_seen, last_seen => d.last_seen,
                reasons => pretty(d.reasons.get()),
                payload => d.payload.as_ref().map(|p| pretty(p.get())),
                replayable => d.kind == "invalid" || d.kind == "poisoned",
                now_stored => is_stored(&d.app_id, &d.event_id),
            }
        })
        .collect();
    render(
        "dead_letter_list.html",
        page(
            &session,
            "dead_letters",
            minijinja::context! { rows => shown, q => q, next => next },
        ),
    )
}

/// Replays the selected rows (`event` fields, each `app:event-id`) or a whole rule's group
/// (`validator`), then shows what became of each selected event.
async fn replay_selected(
    State(state): State<AppState>,
    posted: Posted,
) -> Result<Html<String>, AdminError> {
    let form = &posted.form;
    let mut keys: Vec<(String, Uuid)> = Vec::new();
    for item in form.all("event") {
        let (app, id) = item
            .rsplit_once(':')
            .ok_or_else(|| AdminError::bad("event", "items are app:event-id"))?;
        let id = id
            .parse()
            .map_err(|_| AdminError::bad("event", "not an event id"))?;
        keys.push((app.to_owned(), id));
    }
    let validator = form.get("validator").map(str::to_owned);
    if keys.is_empty() && validator.is_none() {
        return Err(AdminError::bad(
            "event",
            "select at least one dead letter, or replay a group",
        ));
    }
    let request = ReplayRequest {
        event_ids: keys.iter().map(|(_, id)| *id).collect(),
        validator,
        app_id: form.get("app").map(str::to_owned),
    };
    let report = replay::replay(
        &state.reads,
        &state.publisher,
        &request,
        state.retry_after_secs,
    )
    .await?;
    let ids = keys
        .iter()
        .map(|(app, id)| format!("{app}:{id}"))
        .collect::<Vec<_>>()
        .join(",");
    render(
        "replayed.html",
        page(
            &posted.session,
            "dead_letters",
            minijinja::context! {
                replayed => report.replayed, skipped => report.skipped,
                validator => request.validator, ids => ids,
                status_query => serde_urlencoded::to_string([("ids", ids.as_str())]).unwrap_or_default(),
            },
        ),
    )
}
