use std::sync::Arc;
use std::time::Duration;

use eye_testkit::{TestApi, TestEnv, seed_event};
use serde_json::{Value, json};
use uuid::Uuid;

const WITHIN: Duration = Duration::from_secs(30);

/// Posts `total` events from `lanes` concurrent clients; returns the accepted ids.
fn post_stream(
    api: Arc<TestApi>,
    total: usize,
    lanes: usize,
) -> tokio::task::JoinHandle<Vec<Uuid>> {
    tokio::spawn(async move {
        let mut set = tokio::task::JoinSet::new();
        for lane in 0..lanes {
            let api = api.clone();
            set.spawn(async move {
                let mut ids: Vec<Uuid> = Vec::new();
                for _ in (lane..total).step_by(lanes) {
                    let response = api.post_event(&seed_event()).await;
                    assert_eq!(response.status(), 202);
                    let body: Value = response.json().await.expect("json");
                    ids.push(
                        body["id"]
                            .as_str()
                            .and_then(|s| s.parse().ok())
                            .expect("id"),
                    );
                }
                ids
            });
        }
        let mut ids = Vec::new();
        while let Some(lane) = set.join_next().await {
            ids.extend(lane.expect("lane"));
        }
        ids
    })
}

async fn assert_exactly(env: &TestEnv, ids: &[Uuid]) {
    let expected = ids.len() as u64;
    assert_eq!(
        env.wait_for_events(expected, Duration::from_secs(60)).await,
        expected
    );
    // Settle: nothing more may arrive (a duplicate would show up as an extra row).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stored: std::collections::HashSet<Uuid> = env.events().await.iter().map(|e| e.id).collect();
    assert_eq!(env.event_count().await, expected, "no duplicates");
    assert_eq!(
        stored,
        ids.iter().copied().collect(),
        "every accepted event, no other"
    );
}

#[tokio::test]
async fn a_worker_killed_mid_stream_and_restarted_stores_exactly_5000() {
    let env = TestEnv::new().await;
    let api = Arc::new(env.spawn_api().await);
    let mut first = env.spawn_worker_process();
    let posting = post_stream(api.clone(), 5000, 50);

    let seen = env.wait_for_events(1000, WITHIN).await;
    assert!(seen >= 1000, "the first worker stored {seen}");
    first.kill();
    let at_kill = env.event_count().await;

    let _second = env.spawn_worker_process();
    let ids = posting.await.expect("posting finished");
    assert_eq!(ids.len(), 5000);
    assert_exactly(&env, &ids).await;
    assert!(
        at_kill < 5000,
        "the kill happened mid-stream ({at_kill} stored then)"
    );
}

#[tokio::test]
async fn sigterm_finishes_the_batch_in_hand_and_loses_nothing() {
    let env = TestEnv::new().await;
    let api = Arc::new(env.spawn_api().await);
    let mut first = env.spawn_worker_process();
    let posting = post_stream(api.clone(), 3000, 30);
    assert!(env.wait_for_events(500, WITHIN).await >= 500);
    assert!(
        first.terminate(Duration::from_secs(15)).await,
        "clean exit on SIGTERM"
    );

    let _second = env.spawn_worker_process();
    let ids = posting.await.expect("posting finished");
    assert_exactly(&env, &ids).await;
}

#[tokio::test]
async fn sigterm_as_the_database_returns_acks_nothing_that_was_not_committed() {
    let env = TestEnv::new().await;
    let api = Arc::new(env.spawn_api().await);
    let settings = [
        ("EYE_WORKER_RETRY_MAX_SECS", "1"),
        ("EYE_WORKER_BATCH_LINGER_MS", "5"),
        ("EYE_WORKER_BATCH_SIZE", "50"),
    ];
    let mut first = env.spawn_worker_process_with(&settings);
    let mut ids = post_stream(api.clone(), 200, 10).await.expect("posted");
    assert_eq!(env.wait_for_events(200, WITHIN).await, 200);

    env.take_database_down().await;
    let during = post_stream(api.clone(), 1000, 20);
    // Batches pile up, each commit failing and retrying.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // Back, then stop at once: some commits give up, some later ones may succeed.
    env.bring_database_back().await;
    assert!(
        first.terminate(Duration::from_secs(15)).await,
        "clean exit on SIGTERM"
    );
    ids.extend(during.await.expect("posted"));

    let _second = env.spawn_worker_process_with(&settings);
    assert_exactly(&env, &ids).await;
}

#[tokio::test]
async fn an_undecodable_message_is_dead_lettered_and_the_queue_keeps_flowing() {
    let env = TestEnv::new().await;
    let api = env.spawn_api().await;
    let _worker = env.spawn_worker().await;
    let garbage: &[u8] = b"\x00\xffnot json at all";
    let wrong_shape = br#"{"v": "9", "hello": "world"}"#;
    eye_testkit::publish_raw(&env.namespace, garbage).await;
    eye_testkit::publish_raw(&env.namespace, wrong_shape).await;
    let after = api.post_event(&seed_event()).await;
    assert_eq!(after.status(), 202);

    assert_eq!(env.wait_for_events(1, WITHIN).await, 1);
    assert_eq!(env.wait_for_dead_letters(2, WITHIN).await, 2);
    let dead = env.dead_letters().await;
    assert!(
        dead.iter()
            .all(|d| d.kind == "undecodable" && d.event_id.is_none())
    );
    let raws: Vec<&[u8]> = dead.iter().filter_map(|d| d.raw.as_deref()).collect();
    assert!(raws.contains(&garbage));
    let shaped = dead
        .iter()
        .find(|d| d.raw.as_deref() == Some(&wrong_shape[..]))
        .expect("row");
    assert_eq!(shaped.payload, Some(json!({"v": "9", "hello": "world"})));
    assert!(
        shaped.message.starts_with("cannot decode"),
        "{}",
        shaped.message
    );
    // Acked, not requeued forever.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(eye_testkit::queue_depth(&env.namespace).await, 0);
    assert_eq!(env.dead_letters().await.len(), 2);
}

#[tokio::test]
async fn invalid_events_are_dead_lettered_with_validator_field_and_reason() {
    let env = TestEnv::new().await;
    let api = env.spawn_api().await;
    let _worker = env.spawn_worker().await;

    let mut future = seed_event();
    future["timestamp"] = json!((chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339());
    let mut no_host = seed_event();
    no_host["data"] = json!({"path": "/"});
    let mut ids = Vec::new();
    for body in [&future, &no_host] {
        let response = api.post_event(body).await;
        assert_eq!(response.status(), 202, "validation is the worker's job");
        let body: Value = response.json().await.expect("json");
        ids.push(
            body["id"]
                .as_str()
                .and_then(|s| s.parse::<Uuid>().ok())
                .expect("id"),
        );
    }
    // The api refuses what the database cannot hold (422); another producer may still send it.
    let nul_id = Uuid::now_v7();
    let mut nul = seed_event();
    nul["id"] = json!(nul_id);
    nul["data"]["path"] = json!("/a\u{0}b");
    nul["timestamp"] = json!("2021-01-01T09:15:27Z");
    let envelope = json!({"app_id": "test-app", "source": "http",
        "received_at": chrono::Utc::now(), "event": nul});
    let message = json!({"v": "1", "envelopes": [envelope]});
    eye_testkit::publish_raw(&env.namespace, &serde_json::to_vec(&message).expect("json")).await;
    ids.push(nul_id);
    let valid = api.post_event(&seed_event()).await;
    assert_eq!(valid.status(), 202);

    assert_eq!(env.wait_for_dead_letters(3, WITHIN).await, 3);
    assert_eq!(env.wait_for_events(1, WITHIN).await, 1);
    let dead = env.dead_letters().await;
    let find = |id: Uuid| {
        dead.iter()
            .find(|d| d.event_id == Some(id))
            .expect("dead letter")
    };

    let d = find(ids[0]);
    assert_eq!(
        (d.kind.as_str(), d.validator.as_deref(), d.field.as_deref()),
        ("invalid", Some("timestamp_bounds"), Some("/timestamp"))
    );
    assert_eq!(d.app_id.as_deref(), Some("test-app"));
    assert!(
        d.payload.is_some(),
        "the original envelope is kept for replay"
    );

    let d = find(ids[1]);
    assert_eq!(
        (d.validator.as_deref(), d.field.as_deref()),
        (Some("required_keys"), Some("/data/host"))
    );
    assert_eq!(d.reasons[0]["message"], "data.host is required");

    let d = find(ids[2]);
    assert_eq!(
        (d.validator.as_deref(), d.field.as_deref()),
        (Some("storable"), Some("/data/path"))
    );
    assert!(d.raw.is_some() && d.payload.is_none(), "kept byte for byte");
}

#[tokio::test]
async fn a_refused_event_seen_again_bumps_attempts_instead_of_adding_a_row() {
    let env = TestEnv::new().await;
    let api = env.spawn_api().await;
    let _worker = env.spawn_worker().await;
    let mut body = seed_event();
    body["id"] = json!(Uuid::new_v4());
    body["data"] = json!({});
    for _ in 0..2 {
        assert_eq!(api.post_event(&body).await.status(), 202);
    }
    let marker = seed_event();
    assert_eq!(api.post_event(&marker).await.status(), 202);
    env.wait_for_events(1, WITHIN).await;
    let dead = env.dead_letters().await;
    assert_eq!(dead.len(), 1, "one row per refused event");
    assert_eq!(dead[0].attempts, 2);
    assert!(dead[0].last_seen >= dead[0].first_seen);
}

#[tokio::test]
async fn a_database_outage_pauses_the_worker_and_loses_nothing() {
    let env = TestEnv::new().await;
    let api = Arc::new(env.spawn_api().await);
    let _worker = env.spawn_worker_with(&["--retry-max-secs", "1"]).await;
    let before = post_stream(api.clone(), 200, 10).await.expect("posted");
    assert_eq!(env.wait_for_events(200, WITHIN).await, 200);

    env.take_database_down().await;
    let during = post_stream(api.clone(), 300, 10)
        .await
        .expect("posted while the database is down");
    // Nothing can be committed, so nothing is acked: the messages wait in the broker.
    tokio::time::sleep(Duration::from_secs(2)).await;
    env.bring_database_back().await;

    let mut ids = before;
    ids.extend(during);
    assert_exactly(&env, &ids).await;
    assert!(
        env.dead_letters().await.is_empty(),
        "an outage is not a dead letter"
    );
}
