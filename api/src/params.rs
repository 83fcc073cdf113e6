//! Query-string parameters, declared once per endpoint: a struct deriving `Deserialize`
//! (how each parameter is read, with the readers below) and `utoipa::IntoParams` (how it is
//! documented, and so which names the endpoint knows). [`Query`] reads it, refusing unknown
//! and repeated parameters; every refusal names the parameter (400 `invalid_parameter`).
//! (`GET /search` keeps the provider challenge's contract instead: `crate::routes::search`.)

use std::borrow::Cow;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use chrono::{DateTime, Utc};
use eye_core::timestamp::{parse_timestamp, within_years};
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer};
use utoipa::IntoParams;
use utoipa::openapi::path::ParameterIn;
use uuid::Uuid;

use crate::error::ApiError;
use crate::store::cursor::Cursor;

/// Default and largest page sizes.
pub const DEFAULT_LIMIT: u64 = 100;
pub const MAX_LIMIT: u64 = 1000;

/// The request's query string read into `T` (see the module's documentation).
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<S, T> FromRequestParts<S> for Query<T>
where
    S: Send + Sync,
    T: DeserializeOwned + IntoParams,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parse(parts.uri.query().unwrap_or_default()).map(Query)
    }
}

/// `query` read into `T`. A name `T` does not declare, or one given twice, is refused
/// before any value is read (a typo would otherwise be ignored); then a value its reader
/// refuses, named by serde's path.
pub fn parse<T: DeserializeOwned + IntoParams>(query: &str) -> Result<T, ApiError> {
    let pairs = || form_urlencoded::parse(query.as_bytes());
    let mut known: Option<Vec<String>> = None;
    let mut seen: Vec<Cow<'_, str>> = Vec::new();
    for (name, _) in pairs() {
        if seen.contains(&name) {
            return Err(bad(&name, "given more than once"));
        }
        let known = known.get_or_insert_with(|| {
            T::into_params(|| Some(ParameterIn::Query))
                .into_iter()
                .map(|p| p.name)
                .collect()
        });
        if !known.iter().any(|k| *k == name) {
            return Err(bad(
                &name,
                format!("unknown parameter; known: {}", known.join(", ")),
            ));
        }
        seen.push(name);
    }
    serde_path_to_error::deserialize(serde_urlencoded::Deserializer::new(pairs()))
        .map_err(|e| bad(&e.path().to_string(), e.into_inner().to_string()))
}

/// A UUID from a path parameter, refused (400) naming the parameter.
pub fn uuid_param(name: &str, text: &str) -> Result<Uuid, ApiError> {
    parse_uuid(text).map_err(|message| bad(name, message))
}

fn parse_uuid(text: &str) -> Result<Uuid, String> {
    text.parse().map_err(|_| format!("not a UUID: {text:?}"))
}

fn bad(param: &str, message: impl Into<String>) -> ApiError {
    ApiError::BadParameter {
        param: param.to_owned(),
        message: message.into(),
    }
}

// The readers, for `#[serde(deserialize_with = ..)]` (with `#[serde(default)]`: an absent
// parameter is its field's default): each reads the parameter's text and, when it refuses
// it, says what it accepts.

/// Non-empty text without NUL (PostgreSQL refuses NUL in text).
pub fn text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let v = String::deserialize(d)?;
    if v.is_empty() {
        return Err(D::Error::custom("must not be empty"));
    }
    if v.contains('\0') {
        return Err(D::Error::custom("must not contain NUL"));
    }
    Ok(Some(v))
}

/// A UUID.
pub fn uuid<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Uuid>, D::Error> {
    parse_uuid(&String::deserialize(d)?)
        .map(Some)
        .map_err(D::Error::custom)
}

/// A time in a form [`parse_timestamp`] reads, within the years the database is asked about
/// ([`eye_core::timestamp::YEARS`]).
pub fn time<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    let v = String::deserialize(d)?;
    let t = parse_timestamp(&v).map_err(D::Error::custom)?;
    within_years(t).map(Some).map_err(D::Error::custom)
}

/// A page size, 1..=[`MAX_LIMIT`] ([`DEFAULT_LIMIT`] when absent: [`default_limit`]).
pub fn limit<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let v = String::deserialize(d)?;
    match v.parse::<u64>() {
        Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        _ => Err(D::Error::custom(format!(
            "must be an integer from 1 to {MAX_LIMIT}"
        ))),
    }
}

/// `limit` when absent.
pub fn default_limit() -> u64 {
    DEFAULT_LIMIT
}

/// A `next_cursor` this api issued.
pub fn cursor<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Cursor>, D::Error> {
    let v = String::deserialize(d)?;
    Cursor::decode(&v)
        .map(Some)
        .ok_or_else(|| D::Error::custom("not a cursor this api issued"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize, IntoParams)]
    #[into_params(parameter_in = Query)]
    struct Sample {
        #[serde(default, deserialize_with = "text")]
        name: Option<String>,
        #[serde(default, deserialize_with = "time")]
        #[param(value_type = Option<String>)]
        from: Option<DateTime<Utc>>,
        #[serde(default = "default_limit", deserialize_with = "limit")]
        #[param(value_type = Option<u64>)]
        limit: u64,
    }

    fn refused(query: &str) -> (String, String) {
        match parse::<Sample>(query) {
            Err(ApiError::BadParameter { param, message }) => (param, message),
            other => panic!("{query}: expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn absent_parameters_are_their_defaults() {
        let sample = parse::<Sample>("").expect("empty");
        assert_eq!((sample.name, sample.from, sample.limit), (None, None, 100));
    }

    #[test]
    fn values_are_decoded_and_typed() {
        let sample = parse::<Sample>("name=a%20b&from=2024-01-01%2010:00:00&limit=7").expect("ok");
        assert_eq!(sample.name.as_deref(), Some("a b"));
        assert_eq!(
            sample.from.map(|t| t.to_rfc3339()),
            Some("2024-01-01T10:00:00+00:00".into())
        );
        assert_eq!(sample.limit, 7);
    }

    #[test]
    fn unknown_and_repeated_names_are_refused_by_name_before_any_value() {
        for query in ["limit=0&colour=blue", "colour=blue&limit=0"] {
            assert_eq!(
                refused(query),
                (
                    "colour".into(),
                    "unknown parameter; known: name, from, limit".into()
                ),
                "{query}"
            );
        }
        assert_eq!(refused("limit=1&limit=2").0, "limit");
        assert_eq!(refused("limit=1&limit=2").1, "given more than once");
    }

    #[test]
    fn each_bad_value_names_its_parameter() {
        for (query, param) in [
            ("name=", "name"),
            ("name=a%00b", "name"),
            ("from=yesterday", "from"),
            ("from=0000-06-01T00:00:00Z", "from"),
            ("limit=1001", "limit"),
            ("limit=ten", "limit"),
        ] {
            assert_eq!(refused(query).0, param, "{query}");
        }
    }
}
