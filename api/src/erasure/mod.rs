//! Erasure requests: what a caller may ask to erase (checked here, each refusal naming the
//! field), the dry run, the confirmation and the reads. The handlers and `eye-api erase` call
//! these; the deleting is the worker's (`worker/src/erasure.rs`).

use chrono::{DateTime, Utc};
use eye_core::erasure::Filter;
use eye_core::event::MAX_LABEL_CHARS;
use eye_core::timestamp::parse_timestamp;
use sea_orm::DatabaseConnection;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::auth::SCOPE_ADMIN;
use crate::error::ApiError;
use crate::store::erasures::{self, ErasureOut};

pub mod cli;

/// Longest `reason` kept in the audit trail.
pub const MAX_REASON_CHARS: usize = 1000;
/// Erasures `GET /erasures` lists (the latest).
pub const LIST_LIMIT: u64 = 100;

/// What to erase, and why. At least a session or a time bound: erasing an application's
/// every event at once is refused.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ErasureRequest {
    /// The application whose data goes; only an `admin` token may name another than its own.
    #[serde(default)]
    pub app_id: Option<String>,
    /// Only this session's events (a confirmed session erasure also suppresses its late
    /// arrivals).
    #[serde(default)]
    pub session_id: Option<Uuid>,
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    /// Events whose timestamp is at or after this time (the ingestion formats).
    #[serde(default)]
    pub from: Option<String>,
    /// Events whose timestamp is before this time.
    #[serde(default)]
    pub to: Option<String>,
    /// Why (kept in the audit trail), 1 to 1000 characters.
    pub reason: String,
}

/// The latest erasures.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ErasureList {
    pub data: Vec<ErasureOut>,
}

impl ErasureRequest {
    /// The filter this request asks for, on behalf of `caller_app` (`admin`: may name any
    /// application), or the refusal naming the field.
    pub fn filter(&self, caller_app: &str, admin: bool) -> Result<Filter, ApiError> {
        let app_id = match &self.app_id {
            None => caller_app.to_owned(),
            Some(app) if app == caller_app || admin => app.clone(),
            Some(_) => return Err(ApiError::Forbidden(SCOPE_ADMIN)),
        };
        if app_id.is_empty() || app_id.contains('\0') {
            return Err(invalid("app_id", "must be a non-empty application id"));
        }
        let label = |field: &str, value: &Option<String>| -> Result<Option<String>, ApiError> {
            match value {
                Some(v)
                    if v.trim().is_empty()
                        || v.contains('\0')
                        || v.chars().count() > MAX_LABEL_CHARS as usize =>
                {
                    Err(invalid(
                        field,
                        format!("must be between 1 and {MAX_LABEL_CHARS} characters"),
                    ))
                }
                other => Ok(other.clone()),
            }
        };
        let time =
            |field: &str, value: &Option<String>| -> Result<Option<DateTime<Utc>>, ApiError> {
                value
                    .as_deref()
                    .map(|v| parse_timestamp(v).map_err(|e| invalid(field, e.to_string())))
                    .transpose()
            };
        let filter = Filter {
            app_id,
            session_id: self.session_id,
            category: label("category", &self.category)?,
            name: label("name", &self.name)?,
            from: time("from", &self.from)?,
            to: time("to", &self.to)?,
        };
        if let (Some(from), Some(to)) = (filter.from, filter.to)
            && from >= to
        {
            return Err(invalid("to", "must be after `from`"));
        }
        if filter.session_id.is_none() && filter.from.is_none() && filter.to.is_none() {
            return Err(invalid(
                "session_id",
                "give session_id or a time range (from, to): erasing all of an application's \
                 events at once is refused",
            ));
        }
        let reason = self.reason.trim();
        if reason.is_empty() || reason.contains('\0') || reason.chars().count() > MAX_REASON_CHARS {
            return Err(invalid(
                "reason",
                format!("must be between 1 and {MAX_REASON_CHARS} characters"),
            ));
        }
        Ok(filter)
    }
}

fn invalid(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::InvalidField {
        field: field.into(),
        message: message.into(),
    }
}

/// Checks the request and records it, pending, with its dry run.
pub async fn request(
    db: &DatabaseConnection,
    request: &ErasureRequest,
    caller_app: &str,
    admin: bool,
    requested_by: &str,
) -> Result<ErasureOut, ApiError> {
    let filter = request.filter(caller_app, admin)?;
    Ok(erasures::create(db, &filter, request.reason.trim(), requested_by).await?)
}

/// Confirms an erasure of `app` (None: any); 404 when there is none.
pub async fn confirm(
    db: &DatabaseConnection,
    id: Uuid,
    app: Option<&str>,
    confirmed_by: &str,
) -> Result<ErasureOut, ApiError> {
    erasures::confirm(db, id, app, confirmed_by)
        .await?
        .ok_or(ApiError::NotFound)
}

/// One erasure of `app` (None: any); 404 when there is none.
pub async fn get(
    db: &DatabaseConnection,
    id: Uuid,
    app: Option<&str>,
) -> Result<ErasureOut, ApiError> {
    erasures::get(db, id, app).await?.ok_or(ApiError::NotFound)
}

/// The latest erasures of `app` (None: every application's).
pub async fn list(db: &DatabaseConnection, app: Option<&str>) -> Result<ErasureList, ApiError> {
    Ok(ErasureList {
        data: erasures::list(db, app, LIST_LIMIT).await?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(request: &ErasureRequest) -> String {
        match request.filter("shop", false) {
            Err(ApiError::InvalidField { field, .. }) => field,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn each_refusal_names_its_field() {
        let reason = "user asked".to_owned();
        let base = ErasureRequest {
            session_id: Some(Uuid::new_v4()),
            reason: reason.clone(),
            ..ErasureRequest::default()
        };
        assert!(base.filter("shop", false).is_ok());
        let cases = [
            (
                ErasureRequest {
                    session_id: None,
                    ..base.clone()
                },
                "session_id",
            ),
            (
                ErasureRequest {
                    reason: " ".into(),
                    ..base.clone()
                },
                "reason",
            ),
            (
                ErasureRequest {
                    from: Some("yesterday".into()),
                    ..base.clone()
                },
                "from",
            ),
            (
                ErasureRequest {
                    from: Some("2021-01-02T00:00:00Z".into()),
                    to: Some("2021-01-01T00:00:00Z".into()),
                    ..base.clone()
                },
                "to",
            ),
            (
                ErasureRequest {
                    category: Some(String::new()),
                    ..base.clone()
                },
                "category",
            ),
        ];
        for (request, field) in cases {
            assert_eq!(field_of(&request), field);
        }
    }

    #[test]
    fn only_an_admin_names_another_application() {
        let request = ErasureRequest {
            app_id: Some("other".into()),
            from: Some("2021-01-01T00:00:00Z".into()),
            reason: "test data".into(),
            ..ErasureRequest::default()
        };
        assert!(matches!(
            request.filter("shop", false),
            Err(ApiError::Forbidden(SCOPE_ADMIN))
        ));
        assert_eq!(request.filter("ops", true).expect("admin").app_id, "other");
    }
}
