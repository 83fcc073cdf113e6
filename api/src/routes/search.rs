//! `GET /search?starts_at=..&ends_at=..`: the provider plans on sale in a time range, with the
//! Fever code challenge's own contract (not the api's error shape):
//! `200 {"data": {"events": [..]}, "error": null}` and
//! `400 {"error": {"code", "message"}, "data": null}` ([`SearchError`], chosen in
//! `crate::error` with the api's other error answers).
//!
//! The range: a plan is returned when it starts at or after `starts_at` and ends at or
//! before `ends_at` (both edges inclusive). Both are optional, as in the challenge's published
//! contract: an absent bound is an open end (no `starts_at`: from the beginning; no `ends_at`:
//! to the end). Times are the provider's local times, which carry no offset; a parameter with
//! an offset is converted to UTC first. Only plans that were ever `online` are served, with
//! their latest values. It reads only PostgreSQL, so it answers while the provider is down.
//!
//! An answer of up to [`PAGE`] plans is built whole; a longer one (an open range can hold
//! every plan) is streamed page by page ([`stream`]), so memory stays bounded by a page.

mod stream;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use eye_core::timestamp::within_years;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::error::{SearchError, SearchErrorBody};
use crate::state::AppState;
use crate::store::plans::{self, Plan, Range};

/// Plans per database query; an answer longer than one page is streamed.
const PAGE: u64 = 1000;

pub fn router() -> Router<AppState> {
    Router::new().route("/search", get(search))
}

/// Query parameters of `GET /search`. Both are optional (the challenge's published
/// contract): an absent one is an open end of the range (an empty one is not a date-time).
/// Other parameters are ignored, as the challenge's clients expect.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct SearchQuery {
    /// RFC 3339, `YYYY-MM-DDTHH:MM:SS` (UTC) or a date; absent: from the beginning
    #[param(required = false, value_type = String)]
    starts_at: Option<String>,
    /// Same formats, not before `starts_at`; absent: to the end
    #[param(required = false, value_type = String)]
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

/// Provider plans that were ever online, starting at or after `starts_at` and ending at or
/// before `ends_at` (both inclusive; an absent bound is an open end). Reads only the
/// database: answers while the provider is down. No token needed (the challenge's contract).
#[utoipa::path(
    get,
    path = "/search",
    tag = "providers",
    params(SearchQuery),
    responses(
        (status = 200, description = "The matching plans", body = Found),
        (status = 400, description = "A parameter that is not a date-time in years 1 to 9999, or a reversed range", body = SearchErrorBody),
        (status = 503, description = "The database is unavailable, or too many searches at once (Retry-After)", body = SearchErrorBody),
    )
)]
pub(crate) async fn search(
    State(state): State<AppState>,
    query: Result<Query<SearchQuery>, QueryRejection>,
) -> Result<Response, SearchError> {
    let Query(query) = query.map_err(|e| SearchError::BadParameter(e.body_text()))?;
    let range = Range {
        starts_at: parse_param("starts_at", query.starts_at.as_deref())?,
        ends_at: parse_param("ends_at", query.ends_at.as_deref())?,
    };
    if let (Some(starts_at), Some(ends_at)) = (range.starts_at, range.ends_at)
        && starts_at > ends_at
    {
        return Err(SearchError::BadParameter(
            "starts_at must not be after ends_at".into(),
        ));
    }
    // The first page before the status: a database failure is still a 503, not a cut body.
    let first = plans::ever_online_within(&state.reads, range, None, PAGE).await?;
    if (first.len() as u64) == PAGE {
        return Ok(stream::answer(state.reads.clone(), range, first));
    }
    let body = Found {
        data: Events {
            events: first.into_iter().map(to_event).collect(),
        },
        error: None,
    };
    // Serialized as typed values (not through `serde_json::Value`, which would turn the
    // exact prices into floats).
    Ok((StatusCode::OK, Json(body)).into_response())
}

fn to_event(plan: Plan) -> SearchEvent {
    SearchEvent {
        id: plan.id,
        title: plan.title,
        start_date: date(plan.starts_at),
        start_time: time(plan.starts_at),
        end_date: date(plan.ends_at),
        end_time: time(plan.ends_at),
        min_price: plan.min_price.and_then(number),
        max_price: plan.max_price.and_then(number),
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
/// PostgreSQL cannot compare against: refused here rather than failing the query). Absent:
/// `None`, an open end; present but blank is refused like any text that is not a date-time.
fn parse_param(name: &str, value: Option<&str>) -> Result<Option<NaiveDateTime>, SearchError> {
    let Some(value) = value.map(str::trim) else {
        return Ok(None);
    };
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
    within_years(parsed)
        .map(Some)
        .map_err(|e| SearchError::BadParameter(format!("{name}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_take_the_challenge_forms_and_refuse_the_rest() {
        let ok = |v: &str| {
            parse_param("starts_at", Some(v))
                .expect(v)
                .expect("a bound")
                .to_string()
        };
        assert_eq!(ok("2021-07-31T20:00:00"), "2021-07-31 20:00:00");
        assert_eq!(ok("2021-07-31T20:00:00Z"), "2021-07-31 20:00:00");
        assert_eq!(ok("2021-07-31T22:00:00+02:00"), "2021-07-31 20:00:00");
        assert_eq!(ok("2021-07-31"), "2021-07-31 00:00:00");
        assert_eq!(ok("0001-01-01"), "0001-01-01 00:00:00");
        assert_eq!(
            ok("9999-12-31T23:59:59.999999"),
            "9999-12-31 23:59:59.999999"
        );
        assert_eq!(parse_param("starts_at", None).expect("open"), None);
        for bad in [
            Some(""),
            Some("  "),
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
        let t = parse_param("starts_at", Some("2021-07-05T08:03:09.5"))
            .expect("valid")
            .expect("a bound");
        assert_eq!((date(t), time(t)), ("2021-07-05".into(), "08:03:09".into()));
    }

    #[test]
    fn prices_are_written_digit_for_digit() {
        let d: Decimal = "65.00".parse().expect("decimal");
        assert_eq!(number(d).expect("raw").get(), "65.00");
    }
}
