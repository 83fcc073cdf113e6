//! Provider pulls end to end: a simulated Fever provider, the real fetcher, broker, worker,
//! database and `/search`.

mod hostile;
mod metrics;
mod open_range;

use std::time::Duration;

use eye_fetcher::CycleError;
use eye_fetcher::http::FetchError;
use eye_testkit::{ProviderSim, Reply, TestApi, TestEnv, fixture};
use serde_json::Value;

const WITHIN: Duration = Duration::from_secs(20);
const WHOLE_RANGE: &str = "/search?starts_at=2000-01-01T00:00:00&ends_at=2100-01-01T00:00:00";

async fn search(api: &TestApi, query: &str) -> (u16, Value) {
    let (status, text) = search_text(api, query).await;
    (status, serde_json::from_str(&text).expect("json"))
}

async fn search_text(api: &TestApi, query: &str) -> (u16, String) {
    let response = api.client.get(api.url(query)).send().await.expect("search");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

/// (title, start, end, min, max) of each event found, by start.
fn summary(body: &Value) -> Vec<(String, String, String, String, String)> {
    body["data"]["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| {
            (
                e["title"].as_str().unwrap_or_default().to_owned(),
                format!(
                    "{} {}",
                    e["start_date"].as_str().unwrap_or_default(),
                    e["start_time"].as_str().unwrap_or_default()
                ),
                format!(
                    "{} {}",
                    e["end_date"].as_str().unwrap_or_default(),
                    e["end_time"].as_str().unwrap_or_default()
                ),
                e["min_price"].to_string(),
                e["max_price"].to_string(),
            )
        })
        .collect()
}

/// Cancels a running fetcher task and checks it ends within 5 s, without panicking.
async fn stop_promptly(
    stop: tokio_util::sync::CancellationToken,
    running: tokio::task::JoinHandle<()>,
) {
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(5), running)
        .await
        .expect("stops promptly")
        .expect("no panic");
}

#[tokio::test]
async fn replaying_the_fixtures_serves_every_plan_ever_online_with_its_latest_values() {
    let env = TestEnv::new().await;
    let api = env.spawn_api().await;
    let _worker = env.spawn_worker().await;
    let sim = ProviderSim::start(vec![
        Reply::Body(fixture("planlist_response_1.xml")),
        Reply::Body(fixture("eventlist_response_2.xml")),
    ])
    .await;
    let mut fetcher = env.fetcher(&sim.url(), &[]).await;

    let first = fetcher.run_once().await.expect("first fetch");
    assert_eq!((first.plans, first.changed, first.rejected), (4, 4, 0));
    let plans = env.wait_for_plans(WITHIN, |p| p.len() == 4).await;
    assert_eq!(plans.len(), 4);
    let (status, body) = search(&api, WHOLE_RANGE).await;
    assert_eq!(status, 200);
    assert_eq!(body["error"], Value::Null);
    let ids_before: Vec<Value> = body["data"]["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["id"].clone())
        .collect();

    let second = fetcher.run_once().await.expect("second fetch");
    // 291 and 1591 changed; 444 (offline, invalid date) is rejected.
    assert_eq!((second.plans, second.changed, second.rejected), (2, 2, 1));
    env.wait_for_plans(WITHIN, |p| {
        p.iter()
            .any(|p| p.base_plan_id == "1591" && p.ends_at.to_string() == "2021-07-31 21:20:00")
    })
    .await;
    env.wait_for_dead_letters(1, WITHIN).await;

    let (status, body) = search(&api, WHOLE_RANGE).await;
    assert_eq!(status, 200);
    assert_eq!(
        summary(&body),
        [
            (
                "Pantomima Full".into(),
                "2021-02-10 20:00:00".into(),
                "2021-02-10 21:30:00".into(),
                "55.0".into(),
                "55.0".into()
            ),
            (
                "Pantomima Full".into(),
                "2021-02-11 20:00:00".into(),
                "2021-02-11 21:30:00".into(),
                "55.0".into(),
                "55.0".into()
            ),
            (
                "Camela en concierto".into(),
                "2021-06-30 21:00:00".into(),
                "2021-06-30 22:00:00".into(),
                "15.0".into(),
                "30.0".into()
            ),
            (
                "Los Morancos".into(),
                "2021-07-31 20:00:00".into(),
                "2021-07-31 21:20:00".into(),
                "65.0".into(),
                "75.0".into()
            ),
        ]
    );
    // Ids are stable per plan across versions; the offline plan is never served.
    let mut ids_after: Vec<Value> = body["data"]["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["id"].clone())
        .collect();
    let mut ids_before = ids_before;
    ids_before.sort_by_key(ToString::to_string);
    ids_after.sort_by_key(ToString::to_string);
    assert_eq!(ids_before, ids_after);
    assert!(!body.to_string().contains("Juanito"));
    // Prices are written from the exact decimal, digit for digit.
    let (_, text) = search_text(&api, WHOLE_RANGE).await;
    assert!(
        text.contains(r#""min_price":65.00,"max_price":75.00"#),
        "{text}"
    );
    let plans = env.provider_plans().await;
    let camela = plans.iter().find(|p| p.base_plan_id == "291").expect("291");
    assert_eq!(camela.data["zones"][0]["capacity"], 240);
    assert!(camela.last_seen > camela.first_seen);

    let dead = env.dead_letters().await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].source.as_deref(), Some("provider:fever"));
    assert!(
        dead[0].message.contains("2021-09-31"),
        "{}",
        dead[0].message
    );
}

#[tokio::test]
async fn the_search_range_is_inclusive_at_both_edges_and_refuses_bad_parameters() {
    let env = TestEnv::new().await;
    let api = env.spawn_api().await;
    let _worker = env.spawn_worker().await;
    let sim = ProviderSim::start(vec![Reply::Body(fixture("planlist_response_1.xml"))]).await;
    env.fetcher(&sim.url(), &[])
        .await
        .run_once()
        .await
        .expect("fetch");
    env.wait_for_plans(WITHIN, |p| p.len() == 4).await;

    // Plan 291: 2021-06-30T21:00:00 .. 22:00:00.
    let cases = [
        ("2021-06-30T21:00:00", "2021-06-30T22:00:00", 1),
        ("2021-06-30T21:00:01", "2021-06-30T22:00:00", 0),
        ("2021-06-30T21:00:00", "2021-06-30T21:59:59", 0),
        ("2021-06-30T21:00:00Z", "2021-06-30T22:00:00Z", 1),
        ("2021-02-10", "2021-02-12", 2),
        ("2021-01-01T00:00:00", "2021-12-31T00:00:00", 4),
        ("2022-01-01T00:00:00", "2022-01-01T00:00:00", 0),
        ("0001-01-01", "9999-12-31T23:59:59.999999", 4),
    ];
    for (starts, ends, n) in cases {
        let (status, body) =
            search(&api, &format!("/search?starts_at={starts}&ends_at={ends}")).await;
        assert_eq!(status, 200, "{starts}..{ends}");
        assert_eq!(
            body["data"]["events"].as_array().map(Vec::len),
            Some(n),
            "{starts}..{ends}"
        );
    }
    for query in [
        "/search?starts_at=yesterday&ends_at=2021-01-01T00:00:00",
        "/search?starts_at=2021-09-31T00:00:00&ends_at=2021-10-01T00:00:00",
        "/search?starts_at=2021-02-01T00:00:00&ends_at=2021-01-01T00:00:00",
        // Years PostgreSQL cannot compare against (the first was a 503).
        "/search?starts_at=-5000-01-01&ends_at=2020-01-01",
        "/search?starts_at=2020-01-01&ends_at=%2B10000-01-01T00:00:00",
        "/search?starts_at=0001-01-01T00:00:00%2B00:01&ends_at=2020-01-01",
    ] {
        let (status, body) = search(&api, query).await;
        assert_eq!(status, 400, "{query}");
        assert_eq!(body["data"], Value::Null, "{query}");
        assert!(
            body["error"]["code"].is_string() && body["error"]["message"].is_string(),
            "{query}"
        );
    }
}

#[tokio::test]
async fn a_restarted_fetcher_republishes_nothing_unchanged() {
    let env = TestEnv::new().await;
    let _worker = env.spawn_worker().await;
    let sim = ProviderSim::start(vec![Reply::Body(fixture("planlist_response_1.xml"))]).await;
    let first = env
        .fetcher(&sim.url(), &[])
        .await
        .run_once()
        .await
        .expect("fetch");
    assert_eq!(first.changed, 4);
    env.wait_for_events(4, WITHIN).await;

    let before = env.wait_for_plans(WITHIN, |p| p.len() == 4).await;

    let mut restarted = env.fetcher(&sim.url(), &[]).await;
    let again = restarted.run_once().await.expect("fetch again");
    assert_eq!((again.plans, again.changed), (4, 0));
    assert_eq!(sim.requests(), 2);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(env.event_count().await, 4);
    // Not republished, but seen: the read model's last_seen moves, first_seen stays.
    let after = env.provider_plans().await;
    for (b, a) in before.iter().zip(&after) {
        assert_eq!((&a.plan_id, a.first_seen), (&b.plan_id, b.first_seen));
        assert!(a.last_seen > b.last_seen, "{} not touched", a.plan_id);
    }

    // A rejected record is published once too, not on every fetch.
    sim.then(vec![Reply::Body(fixture("eventlist_response_2.xml"))]);
    let changed = restarted.run_once().await.expect("legacy sample");
    assert_eq!((changed.changed, changed.rejected), (2, 1));
    let mut restarted = env.fetcher(&sim.url(), &[]).await;
    let again = restarted.run_once().await.expect("legacy sample again");
    assert_eq!((again.changed, again.rejected), (0, 1));
    env.wait_for_dead_letters(1, WITHIN).await;
    env.wait_for_events(6, WITHIN).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let dead = env.dead_letters().await;
    assert_eq!((dead.len(), dead[0].attempts), (1, 1));
    assert_eq!(env.event_count().await, 6);
}

#[tokio::test]
async fn provider_down_opens_the_circuit_and_search_still_answers() {
    let env = TestEnv::new().await;
    let api = env.spawn_api().await;
    let _worker = env.spawn_worker().await;
    let sim = ProviderSim::start(vec![Reply::Body(fixture("planlist_response_1.xml"))]).await;
    let mut fetcher = env.fetcher(&sim.url(), &[]).await;
    fetcher.run_once().await.expect("fetch");
    env.wait_for_plans(WITHIN, |p| p.len() == 4).await;

    sim.then(vec![Reply::Status(503)]);
    let before = sim.requests();
    for _ in 0..2 {
        let err = fetcher.run_once().await.expect_err("provider down");
        assert!(
            matches!(err, CycleError::Fetch(FetchError::Status(503))),
            "{err}"
        );
    }
    // Two fetches of three attempts each (two retries), then the circuit holds further calls.
    assert_eq!(sim.requests() - before, 6);
    let err = fetcher.run_once().await.expect_err("circuit open");
    assert!(
        matches!(err, CycleError::Fetch(FetchError::CircuitOpen { .. })),
        "{err}"
    );
    assert_eq!(sim.requests() - before, 6);

    let (status, body) = search(&api, WHOLE_RANGE).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["events"].as_array().map(Vec::len), Some(4));
}

#[tokio::test]
async fn transient_failures_are_retried_and_bad_documents_are_dead_lettered() {
    let env = TestEnv::new().await;
    let _worker = env.spawn_worker().await;
    let sim = ProviderSim::start(vec![
        Reply::Status(503),
        Reply::Slow(Duration::from_secs(3), fixture("planlist_response_1.xml")),
        Reply::Truncated(fixture("planlist_response_1.xml")),
        Reply::Body(fixture("planlist_response_1.xml")),
        Reply::Cut(fixture("planlist_response_1.xml")),
        Reply::Body(fixture("malformed_response.xml")),
    ])
    .await;
    let mut fetcher = env.fetcher(&sim.url(), &["--retries", "3"]).await;
    // 503 and too slow (timeout 1 s) are retried; the third answer's body breaks off: the
    // cycle fails, what arrived before the break is published, and the next fetch
    // completes the rest, each plan stored once.
    let err = fetcher.run_once().await.expect_err("the body broke off");
    assert!(
        matches!(err, CycleError::Fetch(FetchError::Body(_))),
        "{err}"
    );
    assert_eq!(sim.requests(), 3);
    let report = fetcher.run_once().await.expect("the next fetch");
    assert_eq!(report.plans, 4);
    assert_eq!(sim.requests(), 4);
    env.wait_for_plans(WITHIN, |p| p.len() == 4).await;
    env.wait_for_events(4, WITHIN).await;

    // Cut without a length: the transfer looks complete, the document does not; what it held
    // stands (unchanged, so nothing is republished) and the cut is a dead letter.
    let report = fetcher
        .run_once()
        .await
        .expect("a cut document is not a failed fetch");
    assert_eq!(report.changed, 0);
    let cut = report.document_error.expect("the cut is seen");
    assert!(cut.starts_with("malformed document at byte"), "{cut}");
    env.wait_for_dead_letters(1, WITHIN).await;

    // Malformed XML: the document's error becomes a dead letter with its position.
    let report = fetcher
        .run_once()
        .await
        .expect("a malformed document is not a failed fetch");
    assert!(report.document_error.is_some());
    env.wait_for_dead_letters(2, WITHIN).await;
    let dead = env.dead_letters().await;
    assert!(
        dead.iter()
            .any(|d| d.message.contains("malformed document at byte")),
        "{dead:?}"
    );
    assert_eq!(env.event_count().await, 4);
    assert_eq!(env.provider_plans().await.len(), 4);
}

#[tokio::test]
async fn the_fetcher_role_fetches_on_its_interval_and_stops_when_told() {
    let env = TestEnv::new().await;
    let _worker = env.spawn_worker().await;
    let sim = ProviderSim::start(vec![
        Reply::Body(fixture("planlist_response_1.xml")),
        Reply::Status(503),
        Reply::Body(fixture("eventlist_response_2.xml")),
    ])
    .await;
    let fetcher = env.fetcher(&sim.url(), &["--interval-secs", "1"]).await;
    let stop = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn(fetcher.run_until_stopped(stop.clone()));
    let plans = env
        .wait_for_plans(WITHIN, |p| {
            p.iter()
                .any(|p| p.base_plan_id == "1591" && p.ends_at.to_string() == "2021-07-31 21:20:00")
        })
        .await;
    assert_eq!(plans.len(), 4);
    stop_promptly(stop, running).await;
}

#[tokio::test]
async fn one_fetcher_pulls_every_provider_of_its_providers_file() {
    let env = TestEnv::new().await;
    let api = env.spawn_api().await;
    let _worker = env.spawn_worker().await;
    let first = ProviderSim::start(vec![Reply::Body(fixture("planlist_response_1.xml"))]).await;
    let second = ProviderSim::start(vec![Reply::Body(fixture("planlist_response_1.xml"))]).await;
    let file = std::env::temp_dir().join(format!("eye-providers-{}.toml", uuid::Uuid::new_v4()));
    let text = format!(
        "[[provider]]\nname = \"fever\"\nurl = \"{}\"\ninterval_secs = 1\n\n\
         [[provider]]\nname = \"fever-b\"\nadapter = \"fever\"\nurl = \"{}\"\n",
        first.url(),
        second.url()
    );
    std::fs::write(&file, text).expect("providers file");
    let path = file.to_string_lossy().into_owned();
    let settings = env.fetcher_settings(&first.url(), &["--providers-file", &path]);
    let fetchers = eye_fetcher::Fetcher::build_all(settings)
        .await
        .expect("build");
    std::fs::remove_file(&file).expect("remove providers file");
    assert_eq!(fetchers.len(), 2);
    let stop = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn(eye_fetcher::Fetcher::run_all(fetchers, stop.clone()));

    // The same feed under two names: two sets of plans, each under its own source and ids.
    let plans = env.wait_for_plans(WITHIN, |p| p.len() == 8).await;
    let providers: std::collections::BTreeSet<_> = plans.iter().map(|p| &p.provider).collect();
    assert_eq!(
        providers.into_iter().collect::<Vec<_>>(),
        ["fever", "fever-b"]
    );
    let (status, body) = search(&api, WHOLE_RANGE).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["events"].as_array().map(Vec::len), Some(8));
    stop_promptly(stop, running).await;
}

#[tokio::test]
async fn a_document_over_the_size_limit_is_refused_without_reading_it_all() {
    let env = TestEnv::new().await;
    let _worker = env.spawn_worker().await;
    let sim = ProviderSim::start(vec![
        Reply::Body(fixture("planlist_response_1.xml")),
        Reply::Cut([fixture("planlist_response_1.xml"), vec![b' '; 4096]].concat()),
    ])
    .await;
    let mut fetcher = env.fetcher(&sim.url(), &["--max-bytes", "1000"]).await;
    // Announced too large: refused before the body is read, not retried.
    let err = fetcher.run_once().await.expect_err("too large");
    assert!(
        matches!(err, CycleError::Fetch(FetchError::TooLarge(1000))),
        "{err}"
    );
    assert_eq!(sim.requests(), 1);
    // Unannounced: the parser stops at the cap; the plans before it stand, the rest is a
    // dead letter naming the limit.
    let report = fetcher.run_once().await.expect("capped document");
    let error = report.document_error.expect("the cap is reported");
    assert!(error.contains("over the limit of 1000 bytes"), "{error}");
    assert!(report.plans < 4);
    env.wait_for_dead_letters(1, WITHIN).await;
    assert!(
        env.dead_letters().await[0]
            .message
            .contains("over the limit")
    );
}

#[tokio::test]
async fn bodies_that_keep_breaking_off_open_the_circuit() {
    let env = TestEnv::new().await;
    let sim = ProviderSim::start(vec![Reply::Truncated(fixture("planlist_response_1.xml"))]).await;
    let mut fetcher = env.fetcher(&sim.url(), &["--retries", "0"]).await;
    // The answers start well (200 and headers) but never finish: each is a failed fetch.
    for _ in 0..2 {
        let err = fetcher.run_once().await.expect_err("broken body");
        assert!(
            matches!(err, CycleError::Fetch(FetchError::Body(_))),
            "{err}"
        );
    }
    let err = fetcher.run_once().await.expect_err("circuit open");
    assert!(
        matches!(err, CycleError::Fetch(FetchError::CircuitOpen { .. })),
        "{err}"
    );
    assert_eq!(sim.requests(), 2);
}
