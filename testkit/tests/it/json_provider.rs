//! The JSON API provider end to end: a JSONPlaceholder-shaped API served by an in-test axum
//! server (fixtures in `testkit/tests/fixtures/jsonplaceholder/`), the real fetcher, broker,
//! worker, database, and the records' read endpoint.

use std::time::Duration;

use eye_core::provider::item::item_uuid;
use eye_fetcher::CycleError;
use eye_fetcher::http::FetchError;
use eye_testkit::{Fault, JsonApiSim, TestEnv, token_for};
use serde_json::{Value, json};

const WITHIN: Duration = Duration::from_secs(20);
/// 5 posts, 8 comments, 3 users.
const FIXTURE_RECORDS: usize = 16;

/// The remote ids of a page's records.
fn ids(body: &Value) -> Vec<String> {
    body["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|r| r["remote_id"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn a_json_api_is_imported_once_and_an_unchanged_pass_publishes_nothing() {
    let env = TestEnv::new().await;
    let api = env.spawn_api().await;
    let _worker = env.spawn_worker().await;
    let sim = JsonApiSim::start().await;
    let mut fetcher = env.json_fetcher(&sim.url(), &[]).await;

    let first = fetcher.run_once().await.expect("first pass");
    assert_eq!(
        (
            first.plans,
            first.changed,
            first.removed,
            first.rejected,
            first.documents
        ),
        (FIXTURE_RECORDS, FIXTURE_RECORDS, 0, 0, 3)
    );
    let rows = env
        .wait_for_json_records(WITHIN, |r| r.len() == FIXTURE_RECORDS)
        .await;
    assert_eq!(rows.len(), FIXTURE_RECORDS);
    assert!(rows.iter().all(|r| !r.removed && r.versions == 1));
    assert_eq!(
        env.wait_for_events(FIXTURE_RECORDS as u64, WITHIN).await,
        16
    );
    let comment = rows
        .iter()
        .find(|r| r.resource == "comments" && r.remote_id == "3")
        .expect("comment 3");
    assert_eq!(comment.parent_id.as_deref(), Some("2"));
    assert_eq!(comment.id, item_uuid("json", "comments", "3"));
    // Every record is an event of the provider, through the same queue and store.
    let events = env.events().await;
    assert!(events.iter().all(|e| e.app_id == "json"
        && e.source == "provider:json"
        && e.category == "provider"
        && e.name == "record"));

    // The second pass finds nothing changed: nothing published, nothing stored.
    let second = fetcher.run_once().await.expect("second pass");
    assert_eq!(
        (
            second.plans,
            second.changed,
            second.removed,
            second.rejected
        ),
        (FIXTURE_RECORDS, 0, 0, 0)
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(env.event_count().await, FIXTURE_RECORDS as u64);
    let cycles = env.fetch_cycles("json").await;
    let summary: Vec<_> = cycles
        .iter()
        .map(|c| {
            (
                c.outcome.as_str(),
                c.records,
                c.changed,
                c.removed,
                c.circuit_open,
            )
        })
        .collect();
    assert_eq!(summary, [("ok", 16, 16, 0, false), ("ok", 16, 0, 0, false)]);

    // The read endpoint: one record, a resource page by page, the comments of a post.
    for app in ["json", "other", "ops"] {
        env.register_app(app).await;
    }
    let reader = token_for("json", &["events:read"]);
    let (status, post) = api.get_as(&reader, "/providers/json/records/posts/1").await;
    assert_eq!(status, 200, "{post}");
    assert_eq!(post["data"]["title"], "post 1 title");
    assert_eq!(
        (post["removed"].clone(), post["versions"].clone()),
        (json!(false), json!(1))
    );
    let mut seen = Vec::new();
    let mut path = "/providers/json/records/posts?limit=2".to_owned();
    loop {
        let (status, page) = api.get_as(&reader, &path).await;
        assert_eq!(status, 200, "{page}");
        seen.extend(ids(&page));
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/providers/json/records/posts?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, ["1", "2", "3", "4", "5"]);
    let (status, comments) = api
        .get_as(&reader, "/providers/json/records/posts/2/comments")
        .await;
    assert_eq!(status, 200);
    assert_eq!(ids(&comments), ["3", "4"]);
    let (_, by_parent) = api
        .get_as(&reader, "/providers/json/records/comments?parent=1")
        .await;
    assert_eq!(ids(&by_parent), ["1", "2"]);

    // Scoped like events: another application sees nothing, an admin everything.
    let other = token_for("other", &["events:read"]);
    let (status, _) = api.get_as(&other, "/providers/json/records/posts/1").await;
    assert_eq!(status, 404);
    let (status, _) = api
        .get_as(
            &token_for("json", &["events:write"]),
            "/providers/json/records/posts",
        )
        .await;
    assert_eq!(status, 403);
    let (status, _) = api
        .get_as(
            &token_for("ops", &["admin"]),
            "/providers/json/records/users/3",
        )
        .await;
    assert_eq!(status, 200);
    let (status, body) = api
        .get_as(&reader, "/providers/json/records/posts?cursor=%21%21")
        .await;
    assert_eq!(
        (status, body["error"]["field"].clone()),
        (400, json!("cursor"))
    );
    let (status, _) = api
        .get_as(&reader, "/providers/json/records/posts/99")
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_changed_record_is_a_new_version_and_a_removed_one_is_marked_not_deleted() {
    let env = TestEnv::new().await;
    let api = env.spawn_api().await;
    let _worker = env.spawn_worker().await;
    let sim = JsonApiSim::start().await;
    // Paged: 3 records a page, so posts take 2 pages, comments 3, and users 2 (the second
    // one empty: a full page says there may be more).
    let mut fetcher = env.json_fetcher(&sim.url(), &["--page-size", "3"]).await;
    let first = fetcher.run_once().await.expect("first pass");
    assert_eq!(
        (first.changed, first.documents),
        (FIXTURE_RECORDS, 2 + 3 + 2)
    );
    env.wait_for_json_records(WITHIN, |r| r.len() == FIXTURE_RECORDS)
        .await;

    sim.edit("posts", |posts| posts[1]["title"] = json!("post 2, edited"));
    sim.edit("comments", |comments| {
        comments.pop();
    });
    let second = fetcher.run_once().await.expect("second pass");
    assert_eq!((second.changed, second.removed), (1, 1));
    let rows = env
        .wait_for_json_records(WITHIN, |r| r.iter().any(|r| r.removed))
        .await;
    let post = rows
        .iter()
        .find(|r| r.resource == "posts" && r.remote_id == "2")
        .expect("post 2");
    assert_eq!(
        (post.data["title"].clone(), post.versions),
        (json!("post 2, edited"), 2)
    );
    let gone = rows
        .iter()
        .find(|r| r.resource == "comments" && r.remote_id == "8")
        .expect("comment 8 is kept");
    assert!(gone.removed && gone.removed_at.is_some());
    assert_eq!(
        (gone.data["name"].clone(), gone.versions),
        (json!("comment 8"), 2)
    );
    assert_eq!(rows.iter().filter(|r| r.removed).count(), 1);
    // Both versions of post 2 are events of its session; the removal is one too.
    let events = env.events().await;
    let of_post = events
        .iter()
        .filter(|e| e.session_id == item_uuid("json", "posts", "2"))
        .count();
    assert_eq!(of_post, 2);
    assert_eq!(
        events.iter().filter(|e| e.name == "record_removed").count(),
        1
    );

    // A removed record is listed only when asked for, and still found by id.
    env.register_app("json").await;
    let reader = token_for("json", &["events:read"]);
    let (_, listed) = api
        .get_as(&reader, "/providers/json/records/comments")
        .await;
    assert!(!ids(&listed).contains(&"8".to_owned()));
    let (_, all) = api
        .get_as(
            &reader,
            "/providers/json/records/comments?include_removed=true",
        )
        .await;
    assert!(ids(&all).contains(&"8".to_owned()));
    let (status, one) = api
        .get_as(&reader, "/providers/json/records/comments/8")
        .await;
    assert_eq!((status, one["removed"].clone()), (200, json!(true)));

    // Unchanged again: nothing; then the comment returns: a new version, not removed.
    let third = fetcher.run_once().await.expect("third pass");
    assert_eq!((third.changed, third.removed), (0, 0));
    sim.set("comments", eye_testkit::json_fixture("comments"));
    let fourth = fetcher.run_once().await.expect("fourth pass");
    assert_eq!((fourth.changed, fourth.removed), (1, 0));
    let rows = env
        .wait_for_json_records(WITHIN, |r| r.iter().all(|r| !r.removed))
        .await;
    let back = rows
        .iter()
        .find(|r| r.resource == "comments" && r.remote_id == "8")
        .expect("comment 8");
    assert_eq!((back.removed, back.versions), (false, 3));
    assert_eq!(
        env.wait_for_events(FIXTURE_RECORDS as u64 + 3, WITHIN)
            .await,
        19
    );
}

#[tokio::test]
async fn a_503_or_malformed_json_loses_nothing_and_the_circuit_opens_then_refuses() {
    let env = TestEnv::new().await;
    let _worker = env.spawn_worker().await;
    let sim = JsonApiSim::start().await;
    let mut fetcher = env.json_fetcher(&sim.url(), &[]).await;
    fetcher.run_once().await.expect("first pass");
    env.wait_for_json_records(WITHIN, |r| r.len() == FIXTURE_RECORDS)
        .await;

    // Malformed JSON on /posts: a document error, not a crash; the posts are not swept
    // (the page was not read to its end), the other resources are read as usual.
    sim.fail_next(vec![Fault::Body(r#"[{"userId": 1, "id": 1, "title""#)]);
    let report = fetcher
        .run_once()
        .await
        .expect("a document error is no failed cycle");
    let error = report.document_error.clone().expect("the document's error");
    assert!(error.contains("/posts") && error.contains("EOF"), "{error}");
    assert_eq!((report.changed, report.removed, report.rejected), (0, 0, 1));
    assert_eq!(env.wait_for_dead_letters(1, WITHIN).await, 1);
    let dead = env.dead_letters().await;
    assert!(dead[0].message.contains("/posts"), "{}", dead[0].message);

    // 503s past the retries: the cycle fails, twice, which opens the circuit; the next
    // cycle is refused without a request.
    sim.fail_next(vec![Fault::Status(503); 6]);
    for _ in 0..2 {
        let failed = fetcher.run_once().await.expect_err("503");
        assert!(
            matches!(failed, CycleError::Fetch(FetchError::Status(503))),
            "{failed:?}"
        );
    }
    let before = sim.requests();
    let refused = fetcher.run_once().await.expect_err("circuit open");
    assert!(
        matches!(refused, CycleError::Fetch(FetchError::CircuitOpen { .. })),
        "{refused:?}"
    );
    assert_eq!(sim.requests(), before);

    // Nothing was lost nor marked removed.
    let rows = env.json_records().await;
    assert_eq!(rows.len(), FIXTURE_RECORDS);
    assert!(rows.iter().all(|r| !r.removed && r.versions == 1));
    let outcomes: Vec<_> = env
        .fetch_cycles("json")
        .await
        .into_iter()
        .map(|c| (c.outcome, c.circuit_open, c.error.is_some()))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("ok".to_owned(), false, false),
            ("document".to_owned(), false, true),
            ("failed".to_owned(), false, true),
            ("failed".to_owned(), true, true),
            ("failed".to_owned(), true, true),
        ]
    );
    let last = env.fetch_cycles("json").await.pop().expect("a cycle");
    assert!(last.error.expect("error").starts_with("circuit_open"));
}

/// The bench figure of the README: one pass over 10,000 generated posts (all new), then an
/// unchanged pass, timed at the fetcher (fetch, parse, hash probe, confirmed publish, hash
/// upsert). `cargo test -p eye-testkit --test it json_pass_bench -- --ignored --nocapture`
#[tokio::test]
#[ignore = "a measurement; run it by hand"]
async fn json_pass_bench() {
    let n: usize = std::env::var("BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let env = TestEnv::new().await;
    let _worker = env.spawn_worker().await;
    let sim = JsonApiSim::empty().await;
    let posts = (1..=n)
        .map(|i| json!({"userId": i % 10 + 1, "id": i, "title": format!("post {i}"), "body": "lorem ipsum dolor sit amet ".repeat(8)}))
        .collect();
    sim.set("posts", posts);
    let mut fetcher = env
        .json_fetcher(&sim.url(), &["--resources", "posts"])
        .await;
    let started = std::time::Instant::now();
    let first = fetcher.run_once().await.expect("first pass");
    let first_took = started.elapsed();
    assert_eq!(first.changed, n);
    let stored = env
        .wait_for_events(n as u64, Duration::from_secs(300))
        .await;
    let stored_took = started.elapsed();
    let started = std::time::Instant::now();
    let second = fetcher.run_once().await.expect("unchanged pass");
    let second_took = started.elapsed();
    assert_eq!((second.changed, second.removed), (0, 0));
    println!(
        "json pass over {n} records: first (all new) {first_took:?} = {:.0} records/s published; \
         all {stored} stored after {stored_took:?}; unchanged pass {second_took:?} = {:.0} records/s",
        n as f64 / first_took.as_secs_f64(),
        n as f64 / second_took.as_secs_f64()
    );
}
