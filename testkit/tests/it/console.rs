//! The admin console's guards over HTTP (the pages themselves run in Chromium:
//! `make browser-test`): no page without a session, the session cookie's attributes, CSRF on
//! every form, sign-in by admin token or password only, sign-out, and enabling an application
//! again.

use std::time::{Duration, Instant};

use eye_testkit::{TestApi, TestEnv, seed_event, token_for};
use reqwest::header::{CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use reqwest::redirect::Policy;
use sea_orm::{ConnectionTrait, Statement};

/// A browser without JavaScript: cookies kept by hand, redirects not followed.
pub(crate) struct Browser {
    client: reqwest::Client,
    base: String,
    cookies: Vec<(String, String)>,
}

impl Browser {
    pub(crate) fn new(api: &TestApi) -> Self {
        Self {
            client: reqwest::Client::builder()
                .redirect(Policy::none())
                .build()
                .expect("client"),
            base: api.url(""),
            cookies: Vec::new(),
        }
    }

    fn keep(&mut self, response: &reqwest::Response) -> Vec<String> {
        let set: Vec<String> = response
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect();
        for header in &set {
            let pair = header.split(';').next().unwrap_or_default();
            if let Some((name, value)) = pair.split_once('=') {
                self.cookies.retain(|(n, _)| n != name);
                if !value.is_empty() {
                    self.cookies.push((name.to_owned(), value.to_owned()));
                }
            }
        }
        set
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub(crate) async fn get(&mut self, path: &str) -> (u16, String, String) {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .header(COOKIE, self.cookie_header())
            .send()
            .await
            .expect("GET");
        self.keep(&response);
        let location = location(&response);
        (
            response.status().as_u16(),
            location,
            response.text().await.expect("body"),
        )
    }

    pub(crate) async fn post(
        &mut self,
        path: &str,
        form: &[(&str, &str)],
    ) -> (u16, String, Vec<String>) {
        self.post_with(path, form, None).await
    }

    async fn post_with(
        &mut self,
        path: &str,
        form: &[(&str, &str)],
        proto: Option<&str>,
    ) -> (u16, String, Vec<String>) {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let mut request = self
            .client
            .post(format!("{}{path}", self.base))
            .header(COOKIE, self.cookie_header())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body);
        if let Some(proto) = proto {
            request = request.header("x-forwarded-proto", proto);
        }
        let response = request.send().await.expect("POST");
        let set = self.keep(&response);
        (response.status().as_u16(), location(&response), set)
    }

    /// Posts a form; the status and the page answered.
    pub(crate) async fn post_page(&mut self, path: &str, form: &[(&str, &str)]) -> (u16, String) {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .header(COOKIE, self.cookie_header())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .expect("POST");
        self.keep(&response);
        (
            response.status().as_u16(),
            response.text().await.expect("body"),
        )
    }

    /// The sign-in form's CSRF token (and its cookie, kept).
    async fn login_csrf(&mut self) -> String {
        let (status, _, page) = self.get("/admin/login").await;
        assert_eq!(status, 200);
        csrf_of(&page)
    }

    /// Signs in with an admin token; the session's CSRF token.
    pub(crate) async fn sign_in(&mut self, token: &str) -> String {
        let csrf = self.login_csrf().await;
        let (status, location, _) = self
            .post("/admin/login", &[("csrf", &csrf), ("token", token)])
            .await;
        assert_eq!((status, location.as_str()), (303, "/admin"));
        let (status, _, page) = self.get("/admin/apps").await;
        assert_eq!(status, 200);
        csrf_of(&page)
    }
}

fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

fn csrf_of(page: &str) -> String {
    let start = page.find(r#"name="csrf" value=""#).expect("a csrf field") + 19;
    page[start..].split('"').next().expect("value").to_owned()
}

pub(crate) async fn scalar(env: &TestEnv, sql: &str) -> i64 {
    let row = env
        .db
        .query_one_raw(Statement::from_string(env.db.get_database_backend(), sql))
        .await
        .expect("query")
        .expect("a row");
    row.try_get_by_index::<i64>(0).expect("a number")
}

pub(crate) fn admin_token() -> String {
    token_for("ops", &["admin"])
}

#[tokio::test]
async fn pages_refuse_without_a_session_and_the_session_cookie_is_strict() {
    let env = TestEnv::new().await;
    let api = env.spawn_api().await;
    let mut browser = Browser::new(&api);
    for path in [
        "/admin",
        "/admin/events",
        "/admin/dead-letters",
        "/admin/apps",
        "/admin/plans",
        "/admin/records",
        "/admin/webhooks",
        "/admin/exports",
    ] {
        let (status, location, _) = browser.get(path).await;
        assert_eq!((status, location.as_str()), (303, "/admin/login"), "{path}");
    }
    let csrf = browser.login_csrf().await;
    let (status, _, set) = browser
        .post_with(
            "/admin/login",
            &[("csrf", &csrf), ("token", &admin_token())],
            Some("https"),
        )
        .await;
    assert_eq!(status, 303);
    let session = set
        .iter()
        .find(|c| c.starts_with("eye_session="))
        .expect("a session cookie");
    for attribute in [
        "HttpOnly",
        "SameSite=Strict",
        "Path=/admin",
        "Max-Age=28800",
        "Secure",
    ] {
        assert!(session.contains(attribute), "{session} lacks {attribute}");
    }
    // Stored as a hash, never as the cookie.
    let value = session
        .split(';')
        .next()
        .expect("pair")
        .trim_start_matches("eye_session=");
    assert_eq!(
        scalar(&env, "SELECT count(*) FROM console_sessions").await,
        1
    );
    let stored = format!("SELECT count(*) FROM console_sessions WHERE id = '{value}'");
    assert_eq!(scalar(&env, &stored).await, 0);
    let (status, _, page) = browser.get("/admin").await;
    assert_eq!(status, 200);
    assert!(
        page.contains("Events per minute") && page.contains("<svg"),
        "{page}"
    );
}

#[tokio::test]
async fn a_form_with_a_wrong_or_missing_csrf_token_is_refused_and_changes_nothing() {
    let env = TestEnv::new().await;
    let api = env.spawn_api().await;
    let mut browser = Browser::new(&api);
    // Sign-in itself: no login cookie, no sign-in.
    let (status, _, _) = browser
        .post("/admin/login", &[("csrf", "x"), ("token", &admin_token())])
        .await;
    assert_eq!(status, 403);
    let csrf = browser.sign_in(&admin_token()).await;
    for form in [
        vec![("id", "forged"), ("csrf", "wrong")],
        vec![("id", "forged")],
    ] {
        let (status, _, _) = browser.post("/admin/apps/create", &form).await;
        assert_eq!(status, 403);
    }
    let forged = "SELECT count(*) FROM applications WHERE id = 'forged'";
    assert_eq!(scalar(&env, forged).await, 0);
    let (status, location, _) = browser
        .post(
            "/admin/apps/create",
            &[("id", "forged"), ("csrf", &csrf), ("burst", "-1")],
        )
        .await;
    assert_eq!(
        (status, location.as_str()),
        (400, ""),
        "a bad field is named, not stored"
    );
    let (status, _, _) = browser
        .post("/admin/apps/create", &[("id", "forged"), ("csrf", &csrf)])
        .await;
    assert_eq!(status, 303);
    assert_eq!(scalar(&env, forged).await, 1);
}

#[tokio::test]
async fn only_admin_tokens_and_right_passwords_sign_in_and_sign_out_ends_the_session() {
    let env = TestEnv::new().await;
    let api = env.spawn_api().await;
    let hash = eye_api::admin::session::hash_password("correct horse battery").expect("hash");
    assert!(
        eye_api::store::console::insert_user(&env.db, "alice", &hash)
            .await
            .expect("insert")
    );
    let mut browser = Browser::new(&api);
    let write_only = token_for("ops", &["events:write", "events:read"]);
    for form in [
        vec![("token", write_only.as_str())],
        vec![("username", "alice"), ("password", "correct horse batterz")],
        vec![("username", "bob"), ("password", "correct horse battery")],
    ] {
        // Each answer is a fresh form, with a fresh CSRF token.
        let csrf = browser.login_csrf().await;
        let mut form = form.clone();
        form.push(("csrf", &csrf));
        let (status, _, _) = browser.post("/admin/login", &form).await;
        assert_eq!(status, 401, "{form:?}");
    }
    let csrf = browser.login_csrf().await;
    let (status, location, _) = browser
        .post(
            "/admin/login",
            &[
                ("csrf", &csrf),
                ("username", "alice"),
                ("password", "correct horse battery"),
            ],
        )
        .await;
    assert_eq!((status, location.as_str()), (303, "/admin"));
    let (status, _, page) = browser.get("/admin").await;
    assert_eq!(status, 200);
    assert!(page.contains("alice"));
    let csrf = csrf_of(&page);
    let (status, location, _) = browser.post("/admin/logout", &[("csrf", &csrf)]).await;
    assert_eq!((status, location.as_str()), (303, "/admin/login"));
    assert_eq!(
        scalar(&env, "SELECT count(*) FROM console_sessions").await,
        0
    );
    let (status, _, _) = browser.get("/admin").await;
    assert_eq!(status, 303);
}

#[tokio::test]
async fn a_disabled_application_is_enabled_again_from_the_console() {
    let env = TestEnv::new().await;
    let api = env.spawn_api().await;
    let mut browser = Browser::new(&api);
    let csrf = browser.sign_in(&admin_token()).await;
    let (status, _, _) = browser
        .post(
            "/admin/apps/disable",
            &[("csrf", &csrf), ("app", "test-app")],
        )
        .await;
    assert_eq!(status, 303);
    let disabled =
        "SELECT count(*) FROM applications WHERE id = 'test-app' AND disabled_at IS NOT NULL";
    assert_eq!(scalar(&env, disabled).await, 1);
    let until = |expected: u16| {
        let api = &api;
        async move {
            let start = Instant::now();
            loop {
                let status = api.post_event(&seed_event()).await.status().as_u16();
                if status == expected {
                    return;
                }
                assert!(start.elapsed() < Duration::from_secs(10), "still {status}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    until(401).await;
    let (status, _, _) = browser
        .post(
            "/admin/apps/enable",
            &[("csrf", &csrf), ("app", "test-app")],
        )
        .await;
    assert_eq!(status, 303);
    assert_eq!(scalar(&env, disabled).await, 0);
    until(202).await;
    let (status, _, _) = browser
        .post("/admin/apps/enable", &[("csrf", &csrf), ("app", "nobody")])
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn the_plans_page_shows_each_providers_fetch_history_and_circuit_and_json_records_are_listed()
{
    let env = TestEnv::new().await;
    let api = env.spawn_api().await;
    let _worker = env.spawn_worker().await;
    let sim = eye_testkit::JsonApiSim::start().await;
    let mut fetcher = env.json_fetcher(&sim.url(), &[]).await;
    fetcher.run_once().await.expect("a pass");
    sim.fail_next(vec![eye_testkit::Fault::Status(503); 6]);
    for _ in 0..2 {
        fetcher.run_once().await.expect_err("503");
    }
    env.wait_for_json_records(Duration::from_secs(20), |r| r.len() == 16)
        .await;

    let mut browser = Browser::new(&api);
    browser.sign_in(&admin_token()).await;
    let (status, _, page) = browser.get("/admin/plans").await;
    assert_eq!(status, 200);
    let history = &page[page
        .find(r#"id="fetch-history""#)
        .expect("the history section")..];
    assert!(
        history.contains("json") && history.contains("circuit open"),
        "{history}"
    );
    assert!(history.contains("2 failed in a row"), "{history}");
    assert_eq!(history.matches(r#"class="outcome-failed""#).count(), 2);
    assert_eq!(history.matches(r#"class="outcome-ok""#).count(), 1);
    assert!(history.contains("provider answered HTTP 503"), "{history}");

    let (status, _, page) = browser
        .get("/admin/records?provider=json&resource=comments")
        .await;
    assert_eq!(status, 200);
    assert!(
        page.contains("comments") && page.contains("comment 8"),
        "{page}"
    );
    assert_eq!(page.matches("<td>present</td>").count(), 8);
    let (status, _, _) = browser
        .get("/admin/records?provider=json&resource=posts&after=%21")
        .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn an_erasure_is_dry_run_then_confirmed_with_its_count_typed_back() {
    let env = TestEnv::new().await;
    let api = env.spawn_api().await;
    let _worker = env.spawn_worker_with(&["--erasure-poll-ms", "50"]).await;
    let session = uuid::Uuid::new_v4();
    for _ in 0..3 {
        let mut body = seed_event();
        body["session_id"] = serde_json::json!(session);
        assert_eq!(api.post_event(&body).await.status(), 202);
    }
    assert_eq!(env.wait_for_events(3, Duration::from_secs(30)).await, 3);
    let mut browser = Browser::new(&api);
    let csrf = browser.sign_in(&admin_token()).await;
    let session_text = session.to_string();
    let (status, _, _) = browser
        .post(
            "/admin/erasures/create",
            &[
                ("csrf", &csrf),
                ("app", "test-app"),
                ("session_id", &session_text),
                ("reason", "asked from the console"),
            ],
        )
        .await;
    assert_eq!(status, 200);
    let pending = "SELECT count(*) FROM erasures WHERE status = 'pending' \
                   AND dry_run_events = 3 AND requested_by LIKE 'console:%'";
    assert_eq!(scalar(&env, pending).await, 1);
    let id = {
        let row = env
            .db
            .query_one_raw(Statement::from_string(
                env.db.get_database_backend(),
                "SELECT id::text FROM erasures",
            ))
            .await
            .expect("query")
            .expect("a row");
        row.try_get_by_index::<String>(0).expect("id")
    };
    let (status, _, _) = browser
        .post(
            "/admin/erasures/confirm",
            &[("csrf", &csrf), ("id", &id), ("count", "2")],
        )
        .await;
    assert_ne!(status, 303, "a wrong count does not confirm");
    assert_eq!(scalar(&env, pending).await, 1);
    let (status, location, _) = browser
        .post(
            "/admin/erasures/confirm",
            &[("csrf", &csrf), ("id", &id), ("count", "3")],
        )
        .await;
    assert_eq!((status, location), (303, format!("/admin/erasures/{id}")));
    let start = Instant::now();
    loop {
        let (status, _, page) = browser.get(&format!("/admin/erasures/{id}")).await;
        assert_eq!(status, 200);
        if page.contains(r#"id="erasure-status">done<"#) {
            assert!(page.contains(r#"id="erasure-deleted">3 events"#), "{page}");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "not done: {page}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, _, page) = browser.get("/admin/erasures").await;
    assert_eq!(status, 200);
    assert!(page.contains("asked from the console"));
    assert_eq!(scalar(&env, "SELECT count(*) FROM events").await, 0);
}

#[tokio::test]
async fn accepted_events_are_counted_per_minute_off_the_request_path() {
    let env = TestEnv::new().await;
    let api = env.spawn_api().await;
    for _ in 0..3 {
        assert_eq!(api.post_event(&seed_event()).await.status(), 202);
    }
    let batch = serde_json::json!([seed_event(), seed_event()]);
    let response = api
        .client
        .post(api.url("/events/batch"))
        .bearer_auth(&api.token)
        .json(&batch)
        .send()
        .await
        .expect("batch");
    assert_eq!(response.status(), 200);
    let counted = "SELECT coalesce(sum(accepted), 0)::int8 FROM accepted_per_minute \
                   WHERE app_id = 'test-app'";
    let start = Instant::now();
    while scalar(&env, counted).await < 5 {
        assert!(start.elapsed() < Duration::from_secs(15), "not flushed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(scalar(&env, counted).await, 5, "counted once");
    let mut browser = Browser::new(&api);
    browser.sign_in(&admin_token()).await;
    let (status, _, page) = browser.get("/admin").await;
    assert_eq!(status, 200);
    assert!(page.contains(r#"id="accepted-hour">5<"#), "{page}");
}
