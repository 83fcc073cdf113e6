//! Where error answers are chosen: every status and body of a refused or failed request is
//! picked here, by [`ApiError`] (`{"error": {"code", "message", "field"?}}`, every route but
//! one) or by [`SearchError`] (`GET /search`, which keeps the provider challenge's own
//! shape). The store's errors become both here too. The only other error answer is the
//! request-timeout layer's empty 503 (`crate::startup`); `/readyz`'s 503 is a report, not an
//! error.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::auth::AuthError;
use crate::store::StoreError;

/// `Retry-After` seconds of a 503 when the database is unreachable.
const DATABASE_RETRY_AFTER: u32 = 2;

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Unauthorized(#[from] AuthError),
    #[error("this token lacks the `{0}` scope")]
    Forbidden(&'static str),
    #[error("Content-Type must be application/json")]
    UnsupportedMediaType,
    /// A content type or encoding other than those of the route.
    #[error("{0}")]
    Unsupported(String),
    #[error("request body is larger than the {limit}-byte limit")]
    PayloadTooLarge { limit: u32 },
    /// A compressed body that inflates more than `ratio` times (a decompression bomb).
    #[error("the compressed body inflates more than {ratio} times its size; refused")]
    CompressionRatio { ratio: u32 },
    /// An import's upload past `EYE_IMPORT_MAX_BYTES`.
    #[error("the upload is larger than the {limit}-byte limit (EYE_IMPORT_MAX_BYTES)")]
    UploadTooLarge { limit: u64 },
    #[error("the batch holds more than {limit} events; send smaller batches")]
    TooManyEvents { limit: u32 },
    /// More valid events in one batch than the application's bucket holds at all.
    #[error(
        "the batch's {events} valid events exceed this application's burst of {burst}; send smaller batches"
    )]
    OverBurst { events: u32, burst: u32 },
    #[error("the batch holds no events")]
    EmptyBatch,
    #[error("malformed JSON: {0}")]
    MalformedJson(String),
    #[error("{message}")]
    InvalidField { field: String, message: String },
    #[error("{message}")]
    BadParameter { param: String, message: String },
    #[error("the database did not answer in time")]
    Timeout,
    /// The broker or the database is unavailable: `reason` says which (and, for an event,
    /// that it was not stored); `Retry-After: retry_after` seconds.
    #[error("{reason}")]
    Unavailable { reason: String, retry_after: u32 },
    /// The event's message reached the broker but was not confirmed: it may be stored.
    #[error(
        "the event queue is unavailable: {reason}; the event may have been stored: retry with the same id ({id}), never without it"
    )]
    MayBeStored {
        reason: String,
        id: uuid::Uuid,
        retry_after: u32,
    },
    /// Some messages of a batch may have reached the broker: `ids` (input order, null for
    /// refused events) are the ids to retry with.
    #[error(
        "the event queue is unavailable: {reason}; some events of the batch may have been stored: retry the batch with the ids in `ids`, never without them"
    )]
    BatchMayBeStored {
        reason: String,
        ids: Vec<Option<uuid::Uuid>>,
        retry_after: u32,
    },
    #[error("too many events for this application: retry after the Retry-After delay")]
    RateLimited {
        /// This replica's bucket size (`RateLimit-Limit`).
        limit: u32,
        retry_after: std::time::Duration,
    },
    #[error("token revocation state is not current; retry shortly")]
    AuthStateStale,
    #[error("too many reads at once: retry after the Retry-After delay")]
    Busy,
    #[error("no such resource")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

/// Every error answer: `{"error": {"code", "message", "field"?}}`.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Error)]
pub struct Body<'a> {
    pub error: Detail<'a>,
}

/// What went wrong, for machines (`code`) and people (`message`).
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = ErrorDetail)]
pub struct Detail<'a> {
    #[schema(example = "invalid_field")]
    pub code: &'a str,
    pub message: String,
    /// The request field or query parameter at fault, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub field: Option<&'a str>,
    /// Why a token was refused (401 only), e.g. `expired`, `revoked`, `unknown_kid`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, example = "expired")]
    pub reason: Option<&'a str>,
    /// The event's id when a 503 cannot tell whether the event was stored: retry with this
    /// `id` (the store keeps one row per id). Absent from a 503, nothing was stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub id: Option<uuid::Uuid>,
    /// A batch's ids, in input order (null for a refused event), when a 503 cannot tell
    /// whether its events were stored: retry the batch with these ids.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub ids: Option<&'a [Option<uuid::Uuid>]>,
}

impl ApiError {
    pub(crate) fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "insufficient_scope"),
            ApiError::UnsupportedMediaType => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            ApiError::Unsupported(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            ApiError::PayloadTooLarge { .. }
            | ApiError::CompressionRatio { .. }
            | ApiError::UploadTooLarge { .. } => {
                (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
            }
            ApiError::TooManyEvents { .. } | ApiError::OverBurst { .. } => {
                (StatusCode::PAYLOAD_TOO_LARGE, "too_many_events")
            }
            ApiError::EmptyBatch => (StatusCode::BAD_REQUEST, "empty_batch"),
            ApiError::MalformedJson(_) => (StatusCode::BAD_REQUEST, "malformed_json"),
            ApiError::InvalidField { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_field"),
            ApiError::BadParameter { .. } => (StatusCode::BAD_REQUEST, "invalid_parameter"),
            ApiError::Timeout => (StatusCode::SERVICE_UNAVAILABLE, "timeout"),
            ApiError::Unavailable { .. }
            | ApiError::MayBeStored { .. }
            | ApiError::BatchMayBeStored { .. } => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            ApiError::AuthStateStale => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::Busy => (StatusCode::SERVICE_UNAVAILABLE, "busy"),
            ApiError::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        match &self {
            ApiError::Internal(e) => tracing::error!(error = ?e, "request failed"),
            ApiError::Unavailable { reason, .. } => tracing::warn!(%reason, "answering 503"),
            ApiError::MayBeStored { reason, id, .. } => {
                tracing::warn!(%reason, %id, "answering 503, the event may be stored");
            }
            ApiError::BatchMayBeStored { reason, .. } => {
                tracing::warn!(%reason, "answering 503, events of the batch may be stored");
            }
            ApiError::AuthStateStale => tracing::warn!("answering 503: revocation state stale"),
            _ => tracing::debug!(error = %self, "request refused"),
        }
        let field = match &self {
            ApiError::InvalidField { field, .. } => Some(field.as_str()),
            ApiError::BadParameter { param, .. } => Some(param.as_str()),
            _ => None,
        };
        let body = Body {
            error: Detail {
                code,
                message: self.to_string(),
                field,
                reason: match &self {
                    ApiError::Unauthorized(auth) => Some(auth.reason()),
                    _ => None,
                },
                id: match &self {
                    ApiError::MayBeStored { id, .. } => Some(*id),
                    _ => None,
                },
                ids: match &self {
                    ApiError::BatchMayBeStored { ids, .. } => Some(ids.as_slice()),
                    _ => None,
                },
            },
        };
        let mut response = (status, Json(body)).into_response();
        let headers = response.headers_mut();
        match &self {
            ApiError::Unauthorized(auth) => {
                if let Ok(value) = HeaderValue::from_str(&auth.www_authenticate()) {
                    headers.insert(header::WWW_AUTHENTICATE, value);
                }
            }
            ApiError::Unavailable { retry_after, .. }
            | ApiError::MayBeStored { retry_after, .. }
            | ApiError::BatchMayBeStored { retry_after, .. } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
            }
            ApiError::Timeout | ApiError::AuthStateStale | ApiError::Busy => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(1u32));
            }
            ApiError::RateLimited { limit, retry_after } => {
                // Whole seconds, rounded up: a client waiting that long finds a token.
                let wait = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
                let wait = wait.max(1);
                headers.insert(header::RETRY_AFTER, HeaderValue::from(wait));
                headers.insert("ratelimit-limit", HeaderValue::from(*limit));
                headers.insert("ratelimit-remaining", HeaderValue::from(0u32));
                headers.insert("ratelimit-reset", HeaderValue::from(wait));
            }
            _ => {}
        }
        response
    }
}

/// A statement timeout is 503 `timeout`; an unreachable database 503 `unavailable`;
/// anything else an internal error (logged, never shown).
impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Timeout => ApiError::Timeout,
            StoreError::Unavailable(_) => ApiError::Unavailable {
                reason: "the database is unreachable".into(),
                retry_after: DATABASE_RETRY_AFTER,
            },
            other => ApiError::Internal(other.into()),
        }
    }
}

/// The errors of `GET /search`, in the challenge's shape: `{"error": {"code", "message"},
/// "data": null}`.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error("{0}")]
    BadParameter(String),
    #[error("the search is unavailable")]
    Unavailable,
}

/// The challenge's error shape: `{"error": {"code", "message"}, "data": null}`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SearchErrorBody {
    pub error: SearchErrorDetail,
    /// Always null in an error.
    #[schema(value_type = Option<String>)]
    pub data: Option<()>,
}

/// What went wrong.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SearchErrorDetail {
    #[schema(example = "bad_request")]
    pub code: &'static str,
    pub message: String,
}

/// Whatever failed in the store, `/search` answers 503 (the cause is logged).
impl From<StoreError> for SearchError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "search query failed");
        SearchError::Unavailable
    }
}

impl IntoResponse for SearchError {
    fn into_response(self) -> Response {
        let (status, code) = match &self {
            Self::BadParameter(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            Self::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        };
        let body = SearchErrorBody {
            error: SearchErrorDetail {
                code,
                message: self.to_string(),
            },
            data: None,
        };
        (status, Json(body)).into_response()
    }
}
