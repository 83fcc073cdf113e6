//! How a console page answers: templates (minijinja, loaded once from
//! `api/src/admin/templates`, autoescaped), posted forms, and [`AdminError`], the one error
//! of the console's routes, turned into an HTML page (or a redirect to sign in) here.

use std::sync::OnceLock;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use minijinja::Environment;

use crate::apps::RegistryError;
use crate::error::ApiError;
use crate::store::StoreError;

/// Every template, by name. A new page adds its file here.
const TEMPLATES: &[(&str, &str)] = &[
    ("layout.html", include_str!("templates/layout.html")),
    ("error.html", include_str!("templates/error.html")),
    ("login.html", include_str!("templates/login.html")),
    ("overview.html", include_str!("templates/overview.html")),
    ("events.html", include_str!("templates/events.html")),
    ("event.html", include_str!("templates/event.html")),
    ("timeline.html", include_str!("templates/timeline.html")),
    (
        "dead_letters.html",
        include_str!("templates/dead_letters.html"),
    ),
    (
        "dead_letter_list.html",
        include_str!("templates/dead_letter_list.html"),
    ),
    ("replayed.html", include_str!("templates/replayed.html")),
    ("statuses.html", include_str!("templates/statuses.html")),
    ("apps.html", include_str!("templates/apps.html")),
    ("plans.html", include_str!("templates/plans.html")),
    ("records.html", include_str!("templates/records.html")),
    ("erasures.html", include_str!("templates/erasures.html")),
    ("erasure.html", include_str!("templates/erasure.html")),
    ("imports.html", include_str!("templates/imports.html")),
    ("import.html", include_str!("templates/import.html")),
    (
        "import_progress.html",
        include_str!("templates/import_progress.html"),
    ),
    ("webhooks.html", include_str!("templates/webhooks.html")),
    ("webhook.html", include_str!("templates/webhook.html")),
    ("exports.html", include_str!("templates/exports.html")),
    ("export.html", include_str!("templates/export.html")),
];

fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        for (name, source) in TEMPLATES {
            // The templates are compiled in; a syntax error fails every console test.
            if let Err(e) = env.add_template(name, source) {
                tracing::error!(template = name, error = %e, "console template does not parse");
            }
        }
        env
    })
}

/// Renders template `name` with `ctx`.
pub fn render(name: &str, ctx: minijinja::Value) -> Result<Html<String>, AdminError> {
    Ok(Html(env().get_template(name)?.render(ctx)?))
}

/// What a console route fails with.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// No (or an expired) session: sign in first.
    #[error("sign in first")]
    SignIn,
    #[error("the form's CSRF token is missing or wrong: reload the page and try again")]
    Csrf,
    #[error("{field}: {message}")]
    BadInput { field: String, message: String },
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("template: {0}")]
    Template(#[from] minijinja::Error),
}

impl AdminError {
    pub fn bad(field: &str, message: impl Into<String>) -> Self {
        Self::BadInput {
            field: field.to_owned(),
            message: message.into(),
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            AdminError::SignIn => StatusCode::UNAUTHORIZED,
            AdminError::Csrf => StatusCode::FORBIDDEN,
            AdminError::BadInput { .. } => StatusCode::BAD_REQUEST,
            AdminError::NotFound(_) => StatusCode::NOT_FOUND,
            AdminError::Registry(RegistryError::UnknownApp(_)) => StatusCode::NOT_FOUND,
            AdminError::Registry(RegistryError::Disabled(_) | RegistryError::BadId) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            AdminError::Api(e) => e.status_and_code().0,
            AdminError::Store(_) | AdminError::Registry(_) => StatusCode::SERVICE_UNAVAILABLE,
            AdminError::Template(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        if matches!(self, AdminError::SignIn) {
            return (
                [("HX-Redirect", "/admin/login")],
                Redirect::to("/admin/login"),
            )
                .into_response();
        }
        let status = self.status();
        if status.is_server_error() {
            tracing::warn!(error = %self, "console request failed");
        }
        let field = match &self {
            AdminError::BadInput { field, .. } => Some(field.clone()),
            AdminError::Api(ApiError::InvalidField { field, .. }) => Some(field.clone()),
            AdminError::Api(ApiError::BadParameter { param, .. }) => Some(param.clone()),
            _ => None,
        };
        let page = env().get_template("error.html").and_then(|t| {
            t.render(minijinja::context! {
                status => status.as_u16(), message => self.to_string(), field => field,
            })
        });
        match page {
            Ok(page) => (status, Html(page)).into_response(),
            Err(_) => (status, self.to_string()).into_response(),
        }
    }
}

/// A posted `application/x-www-form-urlencoded` body, every field in order (a field may
/// repeat: the selected rows of a list).
#[derive(Debug, Default)]
pub struct FormData(pub Vec<(String, String)>);

impl FormData {
    pub fn parse(body: &[u8]) -> Self {
        Self(form_urlencoded::parse(body).into_owned().collect())
    }

    /// The first value of `name`, trimmed; None when absent or blank.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// Every value of `name`.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// `name` as a positive integer, or None when blank.
    pub fn positive(&self, name: &str) -> Result<Option<u32>, AdminError> {
        self.get(name)
            .map(|v| {
                v.parse::<u32>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| AdminError::bad(name, "a whole number from 1 up"))
            })
            .transpose()
    }
}

impl<S: Send + Sync> FromRequest<S> for FormData {
    type Rejection = AdminError;

    async fn from_request(req: Request, state: &S) -> Result<Self, AdminError> {
        let form = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        if !form {
            return Err(AdminError::bad(
                "Content-Type",
                "send application/x-www-form-urlencoded",
            ));
        }
        let body = Bytes::from_request(req, state)
            .await
            .map_err(|e| AdminError::bad("body", e.body_text()))?;
        Ok(Self::parse(&body))
    }
}
