//! Sign in (`/admin/login`) and sign out (`/admin/logout`).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Router, http::HeaderValue};

use crate::admin::session::{
    self, COOKIE_NAME, Credentials, LOGIN_CSRF_COOKIE, Posted, SESSION_TTL,
};
use crate::admin::view::{AdminError, FormData, render};
use crate::state::AppState;
use crate::store;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/login", get(form).post(sign_in))
        .route("/admin/logout", post(sign_out))
}

/// The sign-in form, with a fresh CSRF token in a cookie and in the form.
async fn form(headers: HeaderMap) -> Result<Response, AdminError> {
    login_page(&headers, StatusCode::OK, None)
}

fn login_page(
    headers: &HeaderMap,
    status: StatusCode,
    error: Option<&str>,
) -> Result<Response, AdminError> {
    let csrf = session::random_token();
    let page = render(
        "login.html",
        minijinja::context! { csrf => csrf, error => error },
    )?;
    let cookie = session::set_cookie(LOGIN_CSRF_COOKIE, &csrf, 3600, session::over_tls(headers));
    Ok((status, [(header::SET_COOKIE, cookie)], page).into_response())
}

async fn sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: FormData,
) -> Result<Response, AdminError> {
    let expected = session::cookie(&headers, LOGIN_CSRF_COOKIE);
    let sent = form.get("csrf");
    if !matches!((expected, sent), (Some(e), Some(s)) if session::same(e, s)) {
        return Err(AdminError::Csrf);
    }
    let credentials = match (form.get("token"), form.get("username")) {
        (Some(token), _) => Credentials::Token(token),
        (None, Some(username)) => Credentials::Password {
            username,
            password: form
                .0
                .iter()
                .find(|(k, _)| k == "password")
                .map_or("", |(_, v)| v),
        },
        (None, None) => {
            return Err(AdminError::bad(
                "token",
                "paste an admin token, or give a username and password",
            ));
        }
    };
    let Some(who) = session::check(&state, credentials).await? else {
        return login_page(
            &headers,
            StatusCode::UNAUTHORIZED,
            Some(
                "Not signed in: the token is not a valid admin token, or the username or password is wrong.",
            ),
        );
    };
    let cookie = session::open(&state, &who).await?;
    let secure = session::over_tls(&headers);
    let mut response = Redirect::to("/admin").into_response();
    let headers = response.headers_mut();
    for value in [
        session::set_cookie(COOKIE_NAME, &cookie, SESSION_TTL.num_seconds(), secure),
        session::set_cookie(LOGIN_CSRF_COOKIE, "", 0, secure),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.append(header::SET_COOKIE, value);
        }
    }
    Ok(response)
}

async fn sign_out(
    State(state): State<AppState>,
    headers: HeaderMap,
    posted: Posted,
) -> Result<Response, AdminError> {
    store::console::delete_session(&state.reads, posted.session.id_hash()).await?;
    let cookie = session::set_cookie(COOKIE_NAME, "", 0, session::over_tls(&headers));
    Ok(([(header::SET_COOKIE, cookie)], Redirect::to("/admin/login")).into_response())
}
