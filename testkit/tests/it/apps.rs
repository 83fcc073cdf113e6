//! Applications in the registry: revocation and disabling reach every replica within 5 s,
//! the api fails closed, per-application rate limits, and no application acts as another.

use std::time::{Duration, Instant};

use eye_testkit::{StoredEvent, TestApi, TestEnv, seed_event, token_for};
use futures::future::join_all;
use serde_json::Value;
use uuid::Uuid;

/// The issue's bound: a revocation reaches every replica within this.
const PROPAGATION: Duration = Duration::from_secs(5);

/// Posts with `token` until the answer is 401 with `reason`; returns how long that took.
async fn until_refused(api: &TestApi, token: &str, reason: &str) -> Duration {
    let start = Instant::now();
    loop {
        let response = api.post_event_as(token, &seed_event()).await;
        if response.status() == 401 {
            let body: Value = response.json().await.expect("JSON error body");
            assert_eq!(body["error"]["reason"], reason, "{body}");
            return start.elapsed();
        }
        assert_eq!(response.status(), 202, "accepted until refused");
        assert!(start.elapsed() < Duration::from_secs(15), "never refused");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_revoked_token_is_refused_by_a_second_replica_within_5_s() {
    let env = TestEnv::new().await;
    let (one, two) = (env.spawn_api().await, env.spawn_api().await);
    let issued = env.issue_token("test-app", &["events:write"]).await;
    let other = env.issue_token("test-app", &["events:write"]).await;
    for api in [&one, &two] {
        let response = api.post_event_as(&issued.token, &seed_event()).await;
        assert_eq!(response.status(), 202);
    }
    env.revoke_token(issued.jti).await;
    let (a, b) = tokio::join!(
        until_refused(&one, &issued.token, "revoked"),
        until_refused(&two, &issued.token, "revoked")
    );
    assert!(a < PROPAGATION && b < PROPAGATION, "took {a:?} and {b:?}");
    // Only that token: the application's other token still works.
    let response = two.post_event_as(&other.token, &seed_event()).await;
    assert_eq!(response.status(), 202);
}

#[tokio::test]
async fn a_disabled_application_is_refused_within_5_s() {
    let env = TestEnv::new().await;
    env.register_app("shop").await;
    let (one, two) = (env.spawn_api().await, env.spawn_api().await);
    let token = token_for("shop", &["events:write"]);
    env.disable_app("shop").await;
    let (a, b) = tokio::join!(
        until_refused(&one, &token, "application_disabled"),
        until_refused(&two, &token, "application_disabled")
    );
    assert!(a < PROPAGATION && b < PROPAGATION, "took {a:?} and {b:?}");
    let response = one.post_event(&seed_event()).await;
    assert_eq!(response.status(), 202, "other applications unaffected");
}

#[tokio::test]
async fn without_revocation_state_the_api_refuses_with_503_never_202() {
    let env = TestEnv::new().await;
    let api = env
        .spawn_api_with(&[
            "--auth-max-staleness-ms",
            "1000",
            "--auth-refresh-ms",
            "200",
        ])
        .await;
    api.wait_ready(Duration::from_secs(15)).await;
    env.take_database_down().await;
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let response = api.post_event(&seed_event()).await;
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    let body: Value = response.json().await.expect("JSON error body");
    assert_eq!(body["error"]["code"], "unavailable");
    env.bring_database_back().await;
    let start = Instant::now();
    while api.post_event(&seed_event()).await.status() != 202 {
        assert!(start.elapsed() < Duration::from_secs(10), "never recovered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn over_its_limit_an_application_gets_429_with_rate_limit_headers() {
    let env = TestEnv::new().await;
    env.register_app("limited").await;
    env.set_rate_limit("limited", 1, 3).await;
    let api = env.spawn_api().await;
    let token = token_for("limited", &["events:write"]);
    for left in (0..3).rev() {
        let response = api.post_event_as(&token, &seed_event()).await;
        assert_eq!(response.status(), 202);
        assert_eq!(response.headers()["ratelimit-limit"], "3");
        assert_eq!(
            response.headers()["ratelimit-remaining"],
            left.to_string().as_str()
        );
    }
    let response = api.post_event_as(&token, &seed_event()).await;
    assert_eq!(response.status(), 429);
    let header = |name: &str| -> u64 {
        response.headers()[name]
            .to_str()
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} is a number"))
    };
    assert!((1..=2).contains(&header("retry-after")));
    assert_eq!(header("ratelimit-limit"), 3);
    assert_eq!(header("ratelimit-remaining"), 0);
    assert!((1..=2).contains(&header("ratelimit-reset")));
    let body: Value = response.json().await.expect("JSON error body");
    assert_eq!(body["error"]["code"], "rate_limited");
}

#[tokio::test]
async fn one_application_flooding_does_not_limit_or_slow_another() {
    let env = TestEnv::new().await;
    env.register_app("flood").await;
    env.set_rate_limit("flood", 5, 5).await;
    let api = env.spawn_api().await;
    let flood = token_for("flood", &["events:write"]);
    let body = seed_event();
    let flooding = join_all((0..200).map(|_| api.post_event_as(&flood, &body)));
    let calm = async {
        let start = Instant::now();
        let mut statuses = Vec::new();
        for _ in 0..20 {
            statuses.push(api.post_event(&body).await.status().as_u16());
        }
        (statuses, start.elapsed())
    };
    let (flooded, (calm_statuses, calm_took)) = tokio::join!(flooding, calm);
    let refused = flooded.iter().filter(|r| r.status() == 429).count();
    // 5 in the bucket plus 5/s while the 200 requests run: the rest are refused.
    assert!(
        refused >= 150,
        "the flood was limited: {refused} of 200 refused"
    );
    assert!(calm_statuses.iter().all(|s| *s == 202), "{calm_statuses:?}");
    assert!(
        calm_took < Duration::from_secs(5),
        "calm app slowed: {calm_took:?}"
    );
}

#[tokio::test]
async fn a_token_of_one_application_never_reads_or_writes_as_another() {
    let env = TestEnv::new().await;
    env.register_app("app-b").await;
    let api = env.spawn_api().await;
    let _worker = env.spawn_worker().await;
    let session = Uuid::new_v4();
    let theirs = env
        .store_event(StoredEvent {
            app_id: "app-b",
            session_id: session,
            category: "page interaction",
            name: "pageview",
            timestamp: "2024-01-01T10:00:00Z",
        })
        .await;
    // Reads: test-app sees nothing of app-b's, by id, by session or by listing.
    let (status, _) = api.get(&format!("/events/{theirs}")).await;
    assert_eq!(status, 404);
    let (status, page) = api.get(&format!("/sessions/{session}/events")).await;
    assert_eq!(status, 200);
    assert_eq!(page["data"].as_array().map(Vec::len), Some(0));
    let (_, page) = api.get("/events").await;
    assert!(!page.to_string().contains(&theirs.to_string()));
    // Writes: the event is stamped with the token's application, whatever the body says.
    let mut body = seed_event();
    body["app_id"] = "app-b".into();
    let response = api.post_event(&body).await;
    let accepted = response.status().as_u16();
    if accepted == 202 {
        let id: Value = response.json().await.expect("json");
        let id: Uuid = id["id"].as_str().and_then(|s| s.parse().ok()).expect("id");
        assert_eq!(env.wait_for_events(2, Duration::from_secs(15)).await, 2);
        let stored = env.event(id).await.expect("stored");
        assert_eq!(stored.app_id, "test-app");
    } else {
        assert_eq!(accepted, 422, "a body cannot name another application");
    }
}

/// Runs `eye-api ARGS` in-process against this env's database (what `DATABASE_URL` does).
async fn cli(env: &TestEnv, args: &[&str]) -> anyhow::Result<()> {
    use clap::Parser;
    // The database flag belongs to `apps` / `tokens` / `token`, before any subcommand.
    let mut argv = vec!["eye-api", args[0], "--database-url", &env.db_url];
    argv.extend_from_slice(&args[1..]);
    let command = eye_api::cli::Cli::try_parse_from(argv)?.command;
    eye_api::cli::run(command).await.map(|_| ())
}

#[tokio::test]
async fn the_command_line_creates_issues_revokes_and_disables() {
    let env = TestEnv::new().await;
    cli(&env, &["apps", "create", "shop", "--rate-per-sec", "7"])
        .await
        .expect("create");
    assert!(
        cli(&env, &["apps", "create", "shop"]).await.is_err(),
        "twice"
    );
    let secret = ["--jwt-secret", eye_testkit::TEST_JWT_SECRET];
    let mut issue = vec!["tokens", "issue", "--app", "shop", "--ttl-secs", "60"];
    issue.extend_from_slice(&secret);
    cli(&env, &issue).await.expect("issue");
    let tokens = eye_api::store::apps::list_tokens(&env.db, Some("shop"))
        .await
        .expect("list");
    assert_eq!(tokens.len(), 1);
    assert_eq!(tokens[0].scopes, "events:write events:read");
    assert!(tokens[0].expires_at.is_some() && tokens[0].revoked_at.is_none());
    let jti = tokens[0].jti.to_string();
    cli(&env, &["tokens", "revoke", &jti])
        .await
        .expect("revoke");
    assert!(
        cli(&env, &["tokens", "revoke", &jti]).await.is_err(),
        "twice"
    );
    cli(&env, &["apps", "disable", "shop"])
        .await
        .expect("disable");
    assert!(
        cli(&env, &issue).await.is_err(),
        "no token for a disabled app"
    );
    // `token` (what `make generatetoken` runs) registers a missing application.
    let mut token = vec!["token", "--app", "fresh"];
    token.extend_from_slice(&secret);
    cli(&env, &token).await.expect("token");
    let apps = eye_api::store::apps::list_apps(&env.db)
        .await
        .expect("apps");
    let shop = apps.iter().find(|a| a.id == "shop").expect("shop");
    assert_eq!(shop.rate_per_sec, Some(7));
    assert!(shop.disabled_at.is_some());
    assert!(apps.iter().any(|a| a.id == "fresh"));
}

/// No reload during the test: whatever the api knows of an application registered after
/// its start, it learned on the request path.
const NO_RELOAD: &[&str] = &[
    "--auth-refresh-ms",
    "60000",
    "--auth-max-staleness-ms",
    "120000",
];

#[tokio::test]
async fn a_token_issued_for_a_new_application_works_on_the_very_next_request() {
    let env = TestEnv::new().await;
    let api = env.spawn_api_with(NO_RELOAD).await;
    api.wait_ready(Duration::from_secs(15)).await;
    let _worker = env.spawn_worker().await;
    // What `make generatetoken app=fresh` does: register, issue, print; then at once ten
    // requests, concurrently, share one lookup.
    env.register_app("fresh").await;
    let issued = env.issue_token("fresh", &["events:write"]).await;
    let body = seed_event();
    let answers = join_all((0..10).map(|_| api.post_event_as(&issued.token, &body))).await;
    let statuses: Vec<u16> = answers.iter().map(|r| r.status().as_u16()).collect();
    assert!(statuses.iter().all(|s| *s == 202), "{statuses:?}");
    assert_eq!(api.auth.lookups_made(), 1, "one query for ten misses");
    assert_eq!(env.wait_for_events(10, Duration::from_secs(15)).await, 10);
    assert!(env.events().await.iter().all(|e| e.app_id == "fresh"));
    // Later requests find it in memory; it is still subject to revocation.
    assert_eq!(api.post_event_as(&issued.token, &body).await.status(), 202);
    assert_eq!(api.auth.lookups_made(), 1);
}

#[tokio::test]
async fn a_flood_of_tokens_for_an_unknown_application_costs_one_query() {
    let env = TestEnv::new().await;
    let api = env.spawn_api_with(NO_RELOAD).await;
    api.wait_ready(Duration::from_secs(15)).await;
    // Signed with the right key, for an application that was never registered.
    let ghost = token_for("ghost", &["events:write"]);
    let body = seed_event();
    let concurrent = join_all((0..300).map(|_| api.post_event_as(&ghost, &body))).await;
    let mut statuses: Vec<u16> = concurrent.iter().map(|r| r.status().as_u16()).collect();
    for _ in 0..100 {
        statuses.push(api.post_event_as(&ghost, &body).await.status().as_u16());
    }
    assert!(statuses.iter().all(|s| *s == 401), "all refused");
    let response = api.post_event_as(&ghost, &body).await;
    let error: Value = response.json().await.expect("JSON error body");
    assert_eq!(error["error"]["reason"], "unknown_application");
    assert_eq!(
        api.auth.lookups_made(),
        1,
        "401 requests, one query: the answer is remembered until the next reload"
    );
    // A real application is still looked up, on its own.
    env.register_app("real").await;
    let real = token_for("real", &["events:write"]);
    assert_eq!(api.post_event_as(&real, &body).await.status(), 202);
    assert_eq!(api.auth.lookups_made(), 2);
}
