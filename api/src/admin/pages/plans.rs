//! Provider plans (`/admin/plans`): the `/search` read model, each provider's plan count and
//! latest sighting, each provider's fetch history (its last cycles) and circuit state, as the
//! fetcher recorded them in `fetch_cycles`, and the plans in (start, id) order, keyset-paged.

use axum::Router;
use axum::extract::{Query, State};
use axum::response::Html;
use axum::routing::get;
use chrono::NaiveDateTime;
use serde::Deserialize;
use uuid::Uuid;

use super::page;
use crate::admin::session::Session;
use crate::admin::view::{AdminError, render};
use crate::state::AppState;
use crate::store::{console, fetch_history};

const PAGE: i64 = 50;

/// Cycles shown per provider.
const CYCLES: i64 = 10;

/// Each provider's circuit (from its latest cycle) and its last cycles.
fn history(cycles: &[fetch_history::CycleRow]) -> Vec<minijinja::Value> {
    let mut out: Vec<(String, Vec<&fetch_history::CycleRow>)> = Vec::new();
    for c in cycles {
        match out.last_mut() {
            Some((provider, rows)) if *provider == c.provider => rows.push(c),
            _ => out.push((c.provider.clone(), vec![c])),
        }
    }
    out.into_iter()
        .map(|(provider, rows)| {
            let latest = rows[0];
            minijinja::context! {
                provider => provider,
                circuit => if latest.circuit_open { "open" } else { "closed" },
                failures => latest.failures,
                cycles => rows.iter().map(|c| minijinja::context! {
                    started_at => c.started_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                    took_ms => c.took_ms, outcome => c.outcome, records => c.records,
                    changed => c.changed, removed => c.removed, rejected => c.rejected,
                    error => c.error, circuit_open => c.circuit_open,
                }).collect::<Vec<_>>(),
            }
        })
        .collect()
}

pub fn router() -> Router<AppState> {
    Router::new().route("/admin/plans", get(plans))
}

#[derive(Debug, Deserialize)]
struct PlansQuery {
    /// `starts_at|id` of the last plan of the previous page.
    #[serde(default)]
    after: Option<String>,
}

async fn plans(
    State(state): State<AppState>,
    session: Session,
    Query(q): Query<PlansQuery>,
) -> Result<Html<String>, AdminError> {
    let after = q
        .after
        .as_deref()
        .filter(|a| !a.is_empty())
        .map(|a| {
            a.split_once('|')
                .and_then(|(t, id)| {
                    Some((
                        NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S").ok()?,
                        id.parse::<Uuid>().ok()?,
                    ))
                })
                .ok_or_else(|| AdminError::bad("after", "not a position this console wrote"))
        })
        .transpose()?;
    let providers = console::providers(&state.reads).await?;
    let cycles = fetch_history::recent_cycles(&state.reads, CYCLES).await?;
    let history = history(&cycles);
    let mut rows = console::plans_page(&state.reads, after, PAGE).await?;
    let more = rows.len() as i64 > PAGE;
    rows.truncate(PAGE as usize);
    let next = more
        .then(|| rows.last())
        .flatten()
        .map(|p| format!("{}|{}", p.starts_at.format("%Y-%m-%dT%H:%M:%S"), p.id));
    let price =
        |p: Option<rust_decimal::Decimal>| p.map_or_else(|| "–".to_owned(), |p| p.to_string());
    render(
        "plans.html",
        page(
            &session,
            "plans",
            minijinja::context! {
                history => history,
                providers => providers.iter().map(|p| minijinja::context! {
                    provider => p.provider, plans => p.plans, last_seen => p.last_seen.to_rfc3339(),
                }).collect::<Vec<_>>(),
                plans => rows.iter().map(|p| minijinja::context! {
                    id => p.id.to_string(), provider => p.provider, title => p.title,
                    starts_at => p.starts_at.to_string(), ends_at => p.ends_at.to_string(),
                    min_price => price(p.min_price), max_price => price(p.max_price),
                    sell_mode => p.sell_mode, ever_online => p.ever_online,
                    last_seen => p.last_seen.to_rfc3339(),
                }).collect::<Vec<_>>(),
                next => next.map(|n| serde_urlencoded::to_string([("after", n)]).unwrap_or_default()),
            },
        ),
    )
}
