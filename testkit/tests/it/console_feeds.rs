//! The console's Webhooks and Exports pages over HTTP (a browser without JavaScript, as in
//! `console`): a subscription created through the form with its CSRF token, its secret
//! shown once, a test send answered with the receiver's status and recorded as an attempt,
//! the address guard still in force, an edit, a replay and the deliveries by status; an
//! export queued from the form, run by the exporter, its run and files listed.

use std::time::Duration;

use eye_testkit::{Receiver, TestEnv};
use sea_orm::{ConnectionTrait, Statement};

use crate::console::{Browser, admin_token, scalar};

/// A page's text with minijinja's escapes undone (it escapes `/` too), for comparisons.
fn unescaped(page: &str) -> String {
    page.replace("&#x2f;", "/")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

async fn get(browser: &mut Browser, path: &str) -> (u16, String) {
    let (status, _, page) = browser.get(path).await;
    (status, unescaped(&page))
}

async fn post_page(browser: &mut Browser, path: &str, form: &[(&str, &str)]) -> (u16, String) {
    let (status, page) = browser.post_page(path, form).await;
    (status, unescaped(&page))
}

async fn text(env: &TestEnv, sql: &str) -> String {
    let row = env
        .db
        .query_one_raw(Statement::from_string(env.db.get_database_backend(), sql))
        .await
        .expect("query")
        .expect("a row");
    row.try_get_by_index::<String>(0).expect("text")
}

/// `n` stored events of test-app in `category`.
async fn seed(env: &TestEnv, n: u32, category: &str) {
    env.db
        .execute_unprepared(&format!(
            "INSERT INTO events (app_id, id, session_id, category, name, data, \"timestamp\", source, received_at) \
             SELECT 'test-app', gen_random_uuid(), gen_random_uuid(), '{category}', 'pageview', \
                    jsonb_build_object('i', i), now() - i * interval '1 second', 'http', now() \
             FROM generate_series(1, {n}) AS i"
        ))
        .await
        .expect("seed events");
}

#[tokio::test]
async fn a_webhook_created_in_the_console_is_tested_edited_and_replayed() {
    let env = TestEnv::new().await;
    let api = env
        .spawn_api_with(&["--webhook-allow-nets", "127.0.0.1/32"])
        .await;
    api.wait_ready(Duration::from_secs(15)).await;
    let receiver = Receiver::start().await;
    let url = receiver.url("/hook");
    let mut browser = Browser::new(&api);
    let csrf = browser.sign_in(&admin_token()).await;
    let form = [
        ("app", "test-app"),
        ("url", url.as_str()),
        ("description", "from the console"),
        ("filters", r#"[{"category": "page interaction"}]"#),
        ("enabled", "1"),
    ];

    // No CSRF token, a wrong one: refused, nothing stored.
    let (status, _, _) = browser.post("/admin/webhooks/create", &form).await;
    assert_eq!(status, 403);
    let mut forged = form.to_vec();
    forged.push(("csrf", "forged"));
    assert_eq!(browser.post("/admin/webhooks/create", &forged).await.0, 403);
    let count = "SELECT count(*) FROM webhook_subscriptions";
    assert_eq!(scalar(&env, count).await, 0);
    // Bad fields are named, as /webhooks names them.
    let mut bad = form.to_vec();
    bad.push(("csrf", &csrf));
    bad[3] = ("filters", r#"{"category": 1}"#);
    let (status, page) = post_page(&mut browser, "/admin/webhooks/create", &bad).await;
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("filters"), "{page}");
    bad[3] = ("filters", "");
    bad[1] = ("url", "ftp://example.com/x");
    let (status, page) = post_page(&mut browser, "/admin/webhooks/create", &bad).await;
    assert_eq!(status, 422, "{page}");
    assert!(page.contains(r#"class="field">url<"#), "{page}");
    assert_eq!(scalar(&env, count).await, 0);

    // Created: the secret is in this answer, and only here.
    let mut good = form.to_vec();
    good.push(("csrf", &csrf));
    let (status, page) = post_page(&mut browser, "/admin/webhooks/create", &good).await;
    assert_eq!(status, 200, "{page}");
    let secret = text(&env, "SELECT secret FROM webhook_subscriptions").await;
    assert!(secret.starts_with("whsec_"));
    assert!(page.contains(&secret), "the new secret is shown once");
    let row = text(
        &env,
        "SELECT concat_ws('|', app_id, url, description, filters::text, enabled, fifo) \
         FROM webhook_subscriptions",
    )
    .await;
    assert_eq!(
        row,
        format!("test-app|{url}|from the console|[{{\"category\": \"page interaction\"}}]|t|f")
    );
    let id = text(&env, "SELECT id::text FROM webhook_subscriptions").await;
    let (status, list) = get(&mut browser, "/admin/webhooks?app=test-app").await;
    assert_eq!(status, 200);
    assert!(list.contains(&url) && list.contains("page interaction / any name"));
    assert!(!list.contains(&secret), "never shown again");
    let (_, other) = get(&mut browser, "/admin/webhooks?app=ops").await;
    assert!(!other.contains(&url), "filtered by application");
    let (status, detail) = get(&mut browser, &format!("/admin/webhooks/{id}")).await;
    assert_eq!(status, 200);
    assert!(!detail.contains(&secret), "never shown again");

    // Send test: the receiver's status, latency and answer, recorded as an attempt.
    let (status, page) = post_page(
        &mut browser,
        &format!("/admin/webhooks/{id}/test"),
        &[("csrf", csrf.as_str())],
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains(r#"id="tested-status">200<"#), "{page}");
    assert!(page.contains("ok from the test receiver"), "{page}");
    let got = receiver.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].json()["type"], "webhook.test");
    let attempts = &page[page.find(r#"id="attempts""#).expect("attempts")..];
    assert_eq!(
        attempts
            .matches(r#"<td class="attempt-status">200</td>"#)
            .count(),
        1
    );
    assert_eq!(
        scalar(
            &env,
            "SELECT count(*) FROM webhook_attempts WHERE trigger = 'test' AND status_code = 200"
        )
        .await,
        1
    );

    // The address guard stays in force: an api without the allow-list refuses loopback.
    let strict = env.spawn_api().await;
    strict.wait_ready(Duration::from_secs(15)).await;
    let mut other_browser = Browser::new(&strict);
    let strict_csrf = other_browser.sign_in(&admin_token()).await;
    let (status, page) = post_page(
        &mut other_browser,
        &format!("/admin/webhooks/{id}/test"),
        &[("csrf", strict_csrf.as_str())],
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("refused destination"), "{page}");
    assert_eq!(receiver.received().len(), 1, "nothing sent");

    // Edit: FIFO on, disabled (an unchecked box), new description.
    let (status, location, _) = browser
        .post(
            &format!("/admin/webhooks/{id}/update"),
            &[
                ("csrf", csrf.as_str()),
                ("url", url.as_str()),
                ("description", "edited"),
                ("filters", r#"[{"category": "page interaction"}]"#),
                ("fifo", "1"),
            ],
        )
        .await;
    assert_eq!(status, 303);
    assert!(location.starts_with(&format!("/admin/webhooks/{id}?done=")));
    assert_eq!(
        text(
            &env,
            "SELECT concat_ws('|', description, enabled, fifo) FROM webhook_subscriptions"
        )
        .await,
        "edited|f|t"
    );

    // Replay since an hour ago: the filter's 3 stored events are queued, and listed.
    seed(&env, 3, "page interaction").await;
    seed(&env, 2, "misc").await;
    let since = (chrono::Utc::now() - chrono::Duration::hours(1))
        .format("%Y-%m-%dT%H:%M")
        .to_string();
    let (status, location, _) = browser
        .post(
            &format!("/admin/webhooks/{id}/replay"),
            &[("csrf", csrf.as_str()), ("since", since.as_str())],
        )
        .await;
    assert_eq!(status, 303);
    assert!(location.contains("3+deliveries+queued"), "{location}");
    let (status, page) = get(
        &mut browser,
        &format!("/admin/webhooks/{id}?status=pending"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(page.matches(r#"<td class="state-pending">"#).count(), 3);
    let (_, page) = get(&mut browser, &format!("/admin/webhooks/{id}?status=failed")).await;
    assert!(page.contains("No deliveries failed"), "{page}");
    let (_, list) = get(&mut browser, "/admin/webhooks").await;
    assert!(
        list.contains(r#"<td class="num">3</td><td class="num">0</td>"#),
        "{list}"
    );
    let (status, _) = get(&mut browser, &format!("/admin/webhooks/{id}?status=bogus")).await;
    assert_eq!(status, 400);

    // Rotation: a new secret, shown in that answer only.
    let (status, page) = post_page(
        &mut browser,
        &format!("/admin/webhooks/{id}/rotate"),
        &[("csrf", csrf.as_str())],
    )
    .await;
    assert_eq!(status, 200);
    let rotated = text(&env, "SELECT secret FROM webhook_subscriptions").await;
    assert_ne!(rotated, secret);
    assert!(page.contains(&rotated) && !page.contains(&secret));
}

#[tokio::test]
async fn the_exports_page_queues_an_export_and_lists_its_run_and_files() {
    let env = TestEnv::new().await;
    seed(&env, 250, "page interaction").await;
    let api = env.spawn_api().await;
    let mut browser = Browser::new(&api);
    let csrf = browser.sign_in(&admin_token()).await;
    let dir = std::env::temp_dir().join(format!("eye-console-export-{}", uuid::Uuid::new_v4()));
    let destination = dir.to_string_lossy().into_owned();
    let fields = |name: &str, chunk: &str, dest: &str| -> Vec<(String, String)> {
        [
            ("csrf", csrf.as_str()),
            ("name", name),
            ("shape", "events"),
            ("destination", dest),
            ("chunk_size", chunk),
            ("application", "test-app"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
    };
    fn refs(v: &[(String, String)]) -> Vec<(&str, &str)> {
        v.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
    }
    // Bad fields are named; nothing queued.
    let bad = fields("feed", "100", "ftp://x");
    let (status, page) = post_page(&mut browser, "/admin/exports/create", &refs(&bad)).await;
    assert_eq!(status, 422, "{page}");
    assert!(page.contains(r#"class="field">destination<"#), "{page}");
    let bad = fields("feed", "0", &destination);
    let (status, page) = post_page(&mut browser, "/admin/exports/create", &refs(&bad)).await;
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("chunk_size"), "{page}");
    assert_eq!(scalar(&env, "SELECT count(*) FROM exports").await, 0);

    let good = fields("feed", "100", &destination);
    let good = refs(&good);
    let (status, location, _) = browser.post("/admin/exports/create", &good).await;
    assert_eq!(status, 303);
    let id = text(&env, "SELECT id::text FROM exports").await;
    assert!(location.starts_with(&format!("/admin/exports/{id}?done=")));
    let (status, page) = get(&mut browser, &format!("/admin/exports/{id}")).await;
    assert_eq!(status, 200);
    assert!(page.contains(r#"id="export-state">pending<"#), "{page}");

    // An eye-exporter round runs it.
    let exporter = eye_exporter::Exporter::new(
        env.db.clone(),
        eye_exporter::S3Settings {
            endpoint: None,
            access_key_id: None,
            secret_access_key: None,
            region: "us-east-1".into(),
            max_retries: 0,
            timeout_secs: 5,
        },
    );
    assert!(exporter.poll_once().await.expect("an export round"));
    let generation = text(&env, "SELECT generation FROM exports").await;

    let (status, list) = get(&mut browser, "/admin/exports").await;
    assert_eq!(status, 200);
    let row = &list[list.find(&format!(r#"id="export-{id}""#)).expect("the run")..];
    let row = &row[..row.find("</tr>").expect("row end")];
    assert!(
        row.contains(r#"<td class="state-succeeded">succeeded</td>"#),
        "{row}"
    );
    assert!(
        row.contains(r#"<td class="num">3</td><td class="num">250</td>"#),
        "{row}"
    );

    let (status, page) = get(&mut browser, &format!("/admin/exports/{id}")).await;
    assert_eq!(status, 200);
    assert!(page.contains(r#"id="export-state">succeeded<"#), "{page}");
    for (i, records) in [(1, 100), (2, 100), (3, 50)] {
        let key = format!("{destination}/feed/{generation}/data-0000{i}.json.gz");
        let bytes = std::fs::metadata(&key).expect("the file").len();
        let shown = format!(
            r#"<code>{key}</code></td><td class="num file-records">{records}</td><td class="num">{bytes}</td>"#
        );
        assert!(page.contains(&shown), "{shown} in {page}");
    }
    assert!(page.contains(&format!("feed/{generation}/descriptor.json")));

    // Run again: a second run of the same spec, pending.
    let (status, location, _) = browser
        .post(
            &format!("/admin/exports/{id}/again"),
            &[("csrf", csrf.as_str())],
        )
        .await;
    assert_eq!(status, 303);
    assert!(!location.contains(&id), "{location}");
    assert_eq!(
        scalar(
            &env,
            "SELECT count(*) FROM exports WHERE state = 'pending' AND spec->>'name' = 'feed'"
        )
        .await,
        1
    );
    let _ = std::fs::remove_dir_all(dir);
}
