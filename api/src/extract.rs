//! The JSON body extractor: content type, size limit and shape, each refused with its own
//! status and the offending field named.

use axum::body::Bytes;
use axum::extract::{FromRef, FromRequest, Request};
use axum::http::header::CONTENT_TYPE;
use serde::de::DeserializeOwned;
use serde_json::error::Category;

use crate::error::ApiError;

/// The request id set at the edge (`x-request-id`), carried in the event's envelope.
#[derive(Debug, Clone)]
pub struct RequestId(pub Option<String>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for RequestId {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(RequestId(
            parts
                .headers
                .get(eye_core::queue::REQUEST_ID_HEADER)
                .and_then(|v| v.to_str().ok())
                .filter(|id| id.len() <= 128)
                .map(str::to_owned),
        ))
    }
}

/// The request body limit in force, for the 413 message.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub u32);

/// A JSON body deserialized into `T`.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    BodyLimit: FromRef<S>,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(&req) {
            return Err(ApiError::UnsupportedMediaType);
        }
        let limit = BodyLimit::from_ref(state).0;
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge { limit }
            } else {
                ApiError::MalformedJson(rejection.body_text())
            }
        })?;
        parse(&bytes).map(JsonBody)
    }
}

fn is_json(req: &Request) -> bool {
    let Some(value) = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Deserializes, naming the field at fault: syntax errors are 400, a well-formed body of the
/// wrong shape is 422.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first.is_some_and(|b| *b != b'{') {
        return Err(ApiError::MalformedJson(
            "the body must be a JSON object".into(),
        ));
    }
    // The plain parse is the hot path; only a refused body is parsed again, tracking the
    // path to name the field at fault (tracking allocates every key it passes).
    if let Ok(value) = serde_json::from_slice(bytes) {
        return Ok(value);
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            Category::Data => {
                let message = strip_position(&inner.to_string());
                let field = missing_field(&message)
                    .map(|missing| join(&path, missing))
                    .unwrap_or(path);
                if field == "." {
                    ApiError::MalformedJson(format!("the body must be a JSON object: {message}"))
                } else {
                    ApiError::InvalidField { field, message }
                }
            }
            Category::Syntax | Category::Eof | Category::Io => {
                ApiError::MalformedJson(inner.to_string())
            }
        }
    })?;
    de.end()
        .map_err(|e| ApiError::MalformedJson(e.to_string()))?;
    Ok(value)
}

/// serde says "missing field `x`" at the parent's path; the field itself is what is missing.
fn missing_field(message: &str) -> Option<&str> {
    message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next())
}

fn join(parent: &str, field: &str) -> String {
    if parent == "." {
        field.to_owned()
    } else {
        format!("{parent}.{field}")
    }
}

/// serde_json appends " at line L column C" to data errors; the field name says more.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eye_core::EventIn;

    fn field_of(body: &str) -> Option<String> {
        match parse::<EventIn>(body.as_bytes()) {
            Err(ApiError::InvalidField { field, .. }) => Some(field),
            _ => None,
        }
    }

    const OK: &str = r#"{"session_id":"e2085be5-9137-4e4e-80b5-f1ffddc25423","category":"c","name":"n","data":{},"timestamp":"2021-01-01 09:15:27"}"#;

    #[test]
    fn a_good_body_parses() {
        assert!(parse::<EventIn>(OK.as_bytes()).is_ok());
    }

    #[test]
    fn wrong_shapes_name_their_field() {
        let cases = [
            (
                OK.replace(
                    r#""session_id":"e2085be5-9137-4e4e-80b5-f1ffddc25423","#,
                    "",
                ),
                "session_id",
            ),
            (OK.replace("e2085be5-9137", "nope"), "session_id"),
            (OK.replace(r#""data":{}"#, r#""data":[1]"#), "data"),
            (
                OK.replace(r#""category":"c""#, r#""category":7"#),
                "category",
            ),
            (
                OK.replace(r#","id""#, "")
                    .replace(r#"{"session"#, r#"{"id":"x","session"#),
                "id",
            ),
        ];
        for (body, field) in cases {
            assert_eq!(field_of(&body).as_deref(), Some(field), "{body}");
        }
    }

    #[test]
    fn syntax_errors_and_non_objects_are_malformed() {
        let trailing = format!("{OK} trailing");
        for body in ["{", "", "[]", "null", trailing.as_str()] {
            assert!(
                matches!(
                    parse::<EventIn>(body.as_bytes()),
                    Err(ApiError::MalformedJson(_))
                ),
                "{body:?}"
            );
        }
    }
}
