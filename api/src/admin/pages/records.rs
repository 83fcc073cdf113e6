//! JSON records (`/admin/records`): each JSON provider's resources with their record and
//! removed counts, and one resource's records by remote id, keyset-paged through the same
//! store function as `GET /providers/{provider}/records/{resource}`.

use axum::Router;
use axum::extract::{Query, State};
use axum::response::Html;
use axum::routing::get;
use serde::Deserialize;

use super::page;
use crate::admin::session::Session;
use crate::admin::view::{AdminError, render};
use crate::state::AppState;
use crate::store::fetch_history;
use crate::store::json_records::{self, RecordCursor, RecordFilter};

const PAGE: u64 = 50;

pub fn router() -> Router<AppState> {
    Router::new().route("/admin/records", get(records))
}

#[derive(Debug, Deserialize)]
struct RecordsQuery {
    #[serde(default)]
    provider: Option<String>,
    #[serde(default)]
    resource: Option<String>,
    /// `next_cursor` of the previous page.
    #[serde(default)]
    after: Option<String>,
    /// `on` to list removed records too.
    #[serde(default)]
    removed: Option<String>,
}

async fn records(
    State(state): State<AppState>,
    session: Session,
    Query(q): Query<RecordsQuery>,
) -> Result<Html<String>, AdminError> {
    let resources = fetch_history::resources(&state.reads).await?;
    let chosen = match (&q.provider, &q.resource) {
        (Some(p), Some(r)) if !p.is_empty() && !r.is_empty() => Some((p.clone(), r.clone())),
        _ => resources
            .first()
            .map(|r| (r.provider.clone(), r.resource.clone())),
    };
    let after = q
        .after
        .as_deref()
        .filter(|a| !a.is_empty())
        .map(|a| {
            RecordCursor::decode(a)
                .ok_or_else(|| AdminError::bad("after", "not a position this console wrote"))
        })
        .transpose()?;
    let include_removed = q.removed.as_deref() == Some("on");
    let listed = match &chosen {
        Some((provider, resource)) => Some(
            json_records::list(
                &state.reads,
                &RecordFilter {
                    provider: provider.clone(),
                    resource: resource.clone(),
                    parent_id: None,
                    include_removed,
                    limit: PAGE,
                    after,
                },
            )
            .await?,
        ),
        None => None,
    };
    let next = listed
        .as_ref()
        .and_then(|l| l.next_cursor.clone())
        .zip(chosen.clone())
        .map(|(cursor, (provider, resource))| {
            let mut pairs = vec![
                ("provider", provider),
                ("resource", resource),
                ("after", cursor),
            ];
            if include_removed {
                pairs.push(("removed", "on".into()));
            }
            serde_urlencoded::to_string(pairs).unwrap_or_default()
        });
    let excerpt = |text: &str| {
        let mut cut: String = text.chars().take(120).collect();
        if cut.len() < text.len() {
            cut.push('…');
        }
        cut
    };
    render(
        "records.html",
        page(
            &session,
            "records",
            minijinja::context! {
                resources => resources.iter().map(|r| minijinja::context! {
                    provider => r.provider, resource => r.resource, records => r.records,
                    removed => r.removed, updated_at => r.updated_at.to_rfc3339(),
                    link => serde_urlencoded::to_string([("provider", &r.provider), ("resource", &r.resource)]).unwrap_or_default(),
                }).collect::<Vec<_>>(),
                provider => chosen.as_ref().map(|c| c.0.clone()),
                resource => chosen.as_ref().map(|c| c.1.clone()),
                include_removed => include_removed,
                rows => listed.map(|l| l.data.iter().map(|r| minijinja::context! {
                    remote_id => r.remote_id, parent_id => r.parent_id, removed => r.removed,
                    versions => r.versions, updated_at => r.updated_at,
                    data => excerpt(r.data.get()),
                }).collect::<Vec<_>>()),
                next => next,
            },
        ),
    )
}
