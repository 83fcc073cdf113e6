use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use eye_testkit::{TestEnv, seed_event};
use serde_json::{Value, json};
use uuid::Uuid;

const WITHIN: Duration = Duration::from_secs(20);

async fn accepted_id(response: reqwest::Response) -> Uuid {
    let status = response.status();
    let body: Value = response.json().await.expect("json body");
    assert_eq!(status, 202, "{body}");
    body["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("id in body")
}

/// Posts `total` seed events over `lanes` concurrent connections; every answer must be 202.
/// Returns the accepted ids.
async fn post_in_lanes(api: eye_testkit::TestApi, total: usize, lanes: usize) -> HashSet<Uuid> {
    let api = std::sync::Arc::new(api);
    let mut tasks = tokio::task::JoinSet::new();
    for lane in 0..lanes {
        let api = api.clone();
        tasks.spawn(async move {
            let mut ids = Vec::new();
            for _ in (lane..total).step_by(lanes) {
                ids.push(accepted_id(api.post_event(&seed_event()).await).await);
            }
            ids
        });
    }
    let mut accepted = HashSet::new();
    while let Some(ids) = tasks.join_next().await {
        accepted.extend(ids.expect("lane finished"));
    }
    accepted
}

#[tokio::test]
async fn an_accepted_event_is_stored_once_with_every_field_as_sent() {
    let env = TestEnv::new().await;
    let api = env.spawn_api().await;
    let _worker = env.spawn_worker().await;
    let session = Uuid::new_v4();
    let body = json!({
        "session_id": session,
        "category": "form interaction",
        "name": "submit",
        "data": {"host": "www.consumeraffairs.com", "path": "/", "form": {"first_name": "John", "last_name": "Doe"}},
        "timestamp": "2021-01-01T09:15:27.243860Z"
    });

    let id = accepted_id(api.post_event(&body).await).await;
    assert_eq!(id.get_version_num(), 7, "server-assigned ids are UUIDv7");
    assert_eq!(env.wait_for_events(1, WITHIN).await, 1);

    let stored = env.event(id).await.expect("stored");
    assert_eq!(stored.app_id, "test-app");
    assert_eq!(stored.session_id, session);
    assert_eq!(stored.category, "form interaction");
    assert_eq!(stored.name, "submit");
    assert_eq!(stored.data, body["data"]);
    assert_eq!(
        stored.timestamp.to_rfc3339(),
        "2021-01-01T09:15:27.243860+00:00"
    );
    assert_eq!(stored.source, "http");
    assert!(stored.received_at <= stored.stored_at);
    assert!(env.dead_letters().await.is_empty());
}

#[tokio::test]
async fn the_seed_clients_timestamp_forms_and_trailing_slash_are_accepted() {
    let env = TestEnv::new().await;
    let api = env.spawn_api().await;
    let _worker = env.spawn_worker().await;
    let cases = [
        ("2021-01-01 09:15:27.243860", "2021-01-01T09:15:27.243860Z"),
        ("2023-01-01 09:15:27.243860Z", "2023-01-01T09:15:27.243860Z"),
        ("2021-01-01 11:15:27+02:00", "2021-01-01T09:15:27Z"),
        ("2021-01-01T09:15:27.5-01:00", "2021-01-01T10:15:27.500Z"),
        ("2021-01-01 09:15:27", "2021-01-01T09:15:27Z"),
    ];
    let mut expected = Vec::new();
    for (i, (sent, utc)) in cases.iter().enumerate() {
        let mut body = seed_event();
        body["timestamp"] = json!(sent);
        // Existing clients post to `/events/`; half the cases use it.
        let path = if i % 2 == 0 { "/events/" } else { "/events" };
        let response = api
            .client
            .post(api.url(path))
            .bearer_auth(&api.token)
            .json(&body)
            .send()
            .await
            .expect("sent");
        let id = accepted_id(response).await;
        expected.push((id, utc.parse::<DateTime<Utc>>().expect("expected instant")));
    }
    assert_eq!(
        env.wait_for_events(cases.len() as u64, WITHIN).await,
        cases.len() as u64
    );
    for (id, at) in expected {
        assert_eq!(env.event(id).await.expect("stored").timestamp, at);
    }
}

#[tokio::test]
async fn a_client_id_retried_three_times_makes_one_row() {
    let env = TestEnv::new().await;
    let api = env.spawn_api().await;
    let _worker = env.spawn_worker().await;
    let id = Uuid::new_v4();
    let mut body = seed_event();
    body["id"] = json!(id);
    for _ in 0..3 {
        assert_eq!(accepted_id(api.post_event(&body).await).await, id);
    }
    // A marker sent after the retries: once it is stored, the retries have been handled.
    let marker = accepted_id(api.post_event(&seed_event()).await).await;
    env.wait_for_events(2, WITHIN).await;
    assert!(env.event(marker).await.is_some());
    let rows = env.events().await;
    assert_eq!(
        rows.len(),
        2,
        "one row for the retried id, one for the marker"
    );
    assert_eq!(rows.iter().filter(|r| r.id == id).count(), 1);
}

#[tokio::test]
async fn a_redelivered_message_makes_no_second_row() {
    let env = TestEnv::new().await;
    let api = env.spawn_api().await;
    let worker = env.spawn_worker().await;
    let id = accepted_id(api.post_event(&seed_event()).await).await;
    assert_eq!(env.wait_for_events(1, WITHIN).await, 1);
    let stored = env.event(id).await.expect("stored");
    worker.stop().await;

    // The same message again, as the broker redelivers it after a lost ack.
    let envelope = json!({"v": "1", "envelopes": [{
        "app_id": stored.app_id,
        "source": "http",
        "received_at": stored.received_at,
        "event": {
            "id": id,
            "session_id": stored.session_id,
            "category": stored.category,
            "name": stored.name,
            "data": stored.data,
            "timestamp": stored.timestamp,
        }
    }]});
    let bytes = serde_json::to_vec(&envelope).expect("json");
    eye_testkit::publish_raw(&env.namespace, &bytes).await;
    eye_testkit::publish_raw(&env.namespace, &bytes).await;
    assert_eq!(eye_testkit::queue_depth(&env.namespace).await, 2);

    let _worker = env.spawn_worker().await;
    let deadline = tokio::time::Instant::now() + WITHIN;
    while eye_testkit::queue_depth(&env.namespace).await > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "queue did not drain"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Drained from the ready list; give the in-flight batch its commit.
    let marker = accepted_id(api.post_event(&seed_event()).await).await;
    env.wait_for_events(2, WITHIN).await;
    assert!(env.event(marker).await.is_some());
    assert_eq!(env.event_count().await, 2);
    assert!(env.dead_letters().await.is_empty());
}

#[tokio::test]
async fn a_burst_of_ten_thousand_concurrent_posts_ends_with_ten_thousand_rows() {
    let env = TestEnv::new().await;
    let api = env.spawn_api().await;
    let _worker = env.spawn_worker().await;
    const TOTAL: usize = 10_000;
    let accepted = post_in_lanes(api, TOTAL, 200).await;
    assert_eq!(accepted.len(), TOTAL, "every id is distinct");
    assert_eq!(
        env.wait_for_events(TOTAL as u64, Duration::from_secs(60))
            .await,
        TOTAL as u64
    );
    let stored: HashSet<Uuid> = env.events().await.into_iter().map(|e| e.id).collect();
    assert_eq!(stored, accepted);
}

#[tokio::test]
async fn the_benchmark_route_is_off_by_default_and_publishes_nothing_when_on() {
    let env = TestEnv::new().await;
    let api = env.spawn_api().await;
    let noop = |api: &eye_testkit::TestApi| {
        api.client
            .post(api.url("/bench/noop"))
            .bearer_auth(&api.token)
            .json(&seed_event())
            .send()
    };
    assert_eq!(noop(&api).await.expect("sent").status(), 404);

    let bench = env.spawn_api_with(&["--bench-noop-route"]).await;
    bench.wait_ready(WITHIN).await;
    assert_eq!(noop(&bench).await.expect("sent").status(), 202);
    let unauthenticated = bench
        .client
        .post(bench.url("/bench/noop"))
        .json(&seed_event())
        .send();
    assert_eq!(
        unauthenticated.await.expect("sent").status(),
        401,
        "same checks as /events"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        eye_testkit::queue_depth(&env.namespace).await,
        0,
        "nothing published"
    );
}

/// While one message is in flight, the next is held until its confirm comes back (or enough
/// events wait). With the count and time valves set out of reach, only the confirm can release
/// a held message: every request must still get its 202 well within the publish timeout.
#[tokio::test]
async fn a_held_message_leaves_when_the_one_in_flight_is_confirmed() {
    let env = TestEnv::new().await;
    let api = env
        .spawn_api_with(&[
            "--publish-spill-events",
            "60000",
            "--publish-spill-after-us",
            "60000000",
            "--publish-timeout-ms",
            "5000",
        ])
        .await;
    api.wait_ready(Duration::from_secs(15)).await;
    let _worker = env.spawn_worker().await;
    const TOTAL: usize = 2_000;
    let started = std::time::Instant::now();
    assert_eq!(post_in_lanes(api, TOTAL, 50).await.len(), TOTAL);
    // Held messages waiting for the 60 s valve would have timed out (503) instead.
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(
        env.wait_for_events(TOTAL as u64, Duration::from_secs(60))
            .await,
        TOTAL as u64
    );
}
