//! `GET /search?starts_at=..&ends_at=..`: the provider plans on sale in a time range, with the
//! Fever code challenge's own contract (not the api's error shape):
//! `200 {"data": {"events": [..]}, "error": null}` and
//! `400 {"error": {"code", "message"}, "data": null}`.
//!
//! The range: a plan is returned when it starts at or after `starts_at` and ends at or
//! before `ends_at` (both edges inclusive). Times are the provider's local times, which carry
//! no offset; a parameter with an offset is converted to UTC first. Only plans that were ever
//! `online` are served, with their latest values. It reads only PostgreSQL, so it answers
//! while the provider is down.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use eye_core::entity::provider_plan;
use eye_core::timestamp::within_years;
use rust_decimal::Decimal;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/search", get(search))
}

#[derive(Debug, Deserialize)]
pub(crate) struct Params {
    starts_at: Option<String>,
    ends_at: Option<String>,
}

/// The 200 body: `{"data": {"events": [..]}, "error": null}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = SearchFound)]
pub(crate) struct Found {
    data: Events,
    /// Always null in a 200.
    #[schema(value_type = Option<String>)]
    error: Option<()>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = SearchEvents)]
pub(crate) struct Events {
    events: Vec<SearchEvent>,
}

/// One plan, as the challenge names its fields. Prices are JSON numbers written from the
/// exact decimal (`65.00`), never through a float.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct SearchEvent {
    /// Stable for the plan.
    id: Uuid,
    title: String,
    /// `YYYY-MM-DD`
    start_date: String,
    /// `HH:MM:SS`
    start_time: String,
    end_date: String,
    end_time: String,
    #[schema(value_type = Option<f64>)]
    min_price: Option<Box<RawValue>>,
    #[schema(value_type = Option<f64>)]
    max_price: Option<Box<RawValue>>,
}

/// The challenge's error shape: `{"error": {"code", "message"}, "data": null}`
/// (documentation of what [`SearchError`] writes).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub(crate) struct SearchErrorBody {
    error: SearchErrorDetail,
    /// Always null in an error.
    data: Option<String>,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub(crate) struct SearchErrorDetail {
    #[schema(example = "bad_request")]
    code: String,
    message: String,
}

/// The errors of this endpoint, in the challenge's shape: the only place its statuses are
/// chosen.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SearchError {
    #[error("{0}")]
    BadParameter(String),
    #[error("the search is unavailable")]
    Unavailable,
}

impl IntoResponse for SearchError {
    fn into_response(self) -> Response {
        let (status, code) = match &self {
            Self::BadParameter(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            Self::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        };
        let body = serde_json::json!({
            "error": {"code": code, "message": self.to_string()},
            "data": null,
        });
        (status, Json(body)).into_response()
    }
}

/// Provider plans that were ever online, starting at or after `starts_at` and ending at or
/// before `ends_at` (both inclusive). Reads only the database: answers while the provider is
/// down. No token needed (the challenge's contract).
#[utoipa::path(
    get,
    path = "/search",
    tag = "providers",
    params(
        ("starts_at" = String, Query, description = "RFC 3339, `YYYY-MM-DDTHH:MM:SS` (UTC) or a date"),
        ("ends_at" = String, Query, description = "Same formats; not before `starts_at`"),
    ),
    responses(
        (status = 200, description = "The matching plans", body = Found),
        (status = 400, description = "A missing or bad parameter", body = SearchErrorBody),
        (status = 503, description = "The database is unavailable", body = SearchErrorBody),
    )
)]
pub(crate) async fn search(
    State(state): State<AppState>,
    params: Result<Query<Params>, QueryRejection>,
) -> Result<Response, SearchError> {
    let Query(params) = params.map_err(|e| SearchError::BadParameter(e.body_text()))?;
    let starts_at = parse_param("starts_at", params.starts_at.as_deref())?;
    let ends_at = parse_param("ends_at", params.ends_at.as_deref())?;
    if starts_at > ends_at {
        return Err(SearchError::BadParameter(
            "starts_at must not be after ends_at".into(),
        ));
    }
    use provider_plan::Column as C;
    let plans: Vec<PlanRow> = provider_plan::Entity::find()
        // Only what the answer shows (not the plan's stored document).
        .select_only()
        .columns([
            C::Id,
            C::Title,
            C::StartsAt,
            C::EndsAt,
            C::MinPrice,
            C::MaxPrice,
        ])
        .filter(provider_plan::Column::EverOnline.eq(true))
        .filter(provider_plan::Column::StartsAt.gte(starts_at))
        .filter(provider_plan::Column::EndsAt.lte(ends_at))
        // Implied (a plan never ends before it starts; the parser refuses those), and it
        // bounds the index scan on starts_at from both sides.
        .filter(provider_plan::Column::StartsAt.lte(ends_at))
        .order_by_asc(provider_plan::Column::StartsAt)
        .order_by_asc(provider_plan::Column::Id)
        .into_tuple()
        .all(&state.db)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "search query failed");
            SearchError::Unavailable
        })?;
    let body = Found {
        data: Events {
            events: plans.into_iter().map(to_event).collect(),
        },
        error: None,
    };
    // Serialized as typed values (not through `serde_json::Value`, which would turn the
    // exact prices into floats).
    Ok((StatusCode::OK, Json(body)).into_response())
}

/// id, title, starts_at, ends_at, min_price, max_price.
type PlanRow = (
    Uuid,
    String,
    NaiveDateTime,
    NaiveDateTime,
    Option<Decimal>,
    Option<Decimal>,
);

fn to_event((id, title, starts_at, ends_at, min_price, max_price): PlanRow) -> SearchEvent {
    SearchEvent {
        id,
        title,
        start_date: date(starts_at),
        start_time: time(starts_at),
        end_date: date(ends_at),
        end_time: time(ends_at),
        min_price: min_price.and_then(number),
        max_price: max_price.and_then(number),
    }
}

/// `YYYY-MM-DD` (written directly: chrono's format strings were the answer's largest cost).
fn date(t: NaiveDateTime) -> String {
    format!("{:04}-{:02}-{:02}", t.year(), t.month(), t.day())
}

/// `HH:MM:SS`.
fn time(t: NaiveDateTime) -> String {
    format!("{:02}:{:02}:{:02}", t.hour(), t.minute(), t.second())
}

/// A decimal as a JSON number literal, digit for digit.
fn number(d: Decimal) -> Option<Box<RawValue>> {
    RawValue::from_string(d.to_string()).ok()
}

/// `2021-07-31T20:00:00`, with optional fraction, `Z` or offset (converted to UTC), or a
/// bare date (midnight); within the years the Eye keeps (chrono reads `-5000-01-01`, which
/// PostgreSQL cannot compare against: refused here rather than failing the query).
fn parse_param(name: &str, value: Option<&str>) -> Result<NaiveDateTime, SearchError> {
    let value = value
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| SearchError::BadParameter(format!("{name} is required")))?;
    let parsed = DateTime::parse_from_rfc3339(value)
        .map(|t| t.naive_utc())
        .or_else(|_| NaiveDateTime::parse_from_str(value, "%Y-%m-%dT%H:%M:%S%.f"))
        .or_else(|_| {
            NaiveDate::parse_from_str(value, "%Y-%m-%d").map(|d| d.and_time(NaiveTime::MIN))
        })
        .map_err(|_| {
            SearchError::BadParameter(format!(
                "{name} must be a date-time like 2021-07-31T20:00:00 (got {value:?})"
            ))
        })?;
    within_years(parsed).map_err(|e| SearchError::BadParameter(format!("{name}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_take_the_challenge_forms_and_refuse_the_rest() {
        let ok = |v: &str| parse_param("starts_at", Some(v)).expect(v).to_string();
        assert_eq!(ok("2021-07-31T20:00:00"), "2021-07-31 20:00:00");
        assert_eq!(ok("2021-07-31T20:00:00Z"), "2021-07-31 20:00:00");
        assert_eq!(ok("2021-07-31T22:00:00+02:00"), "2021-07-31 20:00:00");
        assert_eq!(ok("2021-07-31"), "2021-07-31 00:00:00");
        assert_eq!(ok("0001-01-01"), "0001-01-01 00:00:00");
        assert_eq!(
            ok("9999-12-31T23:59:59.999999"),
            "9999-12-31 23:59:59.999999"
        );
        for bad in [
            None,
            Some(""),
            Some("tomorrow"),
            Some("2021-09-31T20:00:00"),
            Some("-5000-01-01"),
            Some("+10000-01-01T00:00:00"),
            Some("0000-12-31"),
            Some("0001-01-01T00:00:00+00:01"),
            Some("9999-12-31T23:59:59-00:01"),
        ] {
            assert!(parse_param("starts_at", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn dates_and_times_are_written_with_their_leading_zeros() {
        let t = parse_param("starts_at", Some("2021-07-05T08:03:09.5")).expect("valid");
        assert_eq!((date(t), time(t)), ("2021-07-05".into(), "08:03:09".into()));
    }

    #[test]
    fn prices_are_written_digit_for_digit() {
        let d: Decimal = "65.00".parse().expect("decimal");
        assert_eq!(number(d).expect("raw").get(), "65.00");
    }
}
