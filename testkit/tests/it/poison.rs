//! The poison queue: a message the broker moved there (past the delivery limit) is recorded
//! event by event as `poisoned` dead letters, shown by `/errors` and the status endpoint,
//! counted in the worker's metrics, and replayed into storage once.

use std::time::Duration;

use eye_core::Envelope;
use eye_core::queue::DELIVERY_LIMIT;
use eye_testkit::{StoredEvent, TestApi, TestEnv, poison_depth, queue_depth, token_for};
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};
use uuid::Uuid;

const WITHIN: Duration = Duration::from_secs(20);

fn envelope(app: &str, id: Uuid) -> Value {
    json!({
        "app_id": app,
        "source": "http",
        "received_at": "2024-01-01T00:00:00Z",
        "event": {
            "id": id,
            "session_id": Uuid::new_v4(),
            "category": "page interaction",
            "name": "pageview",
            "data": {"host": "h", "path": "/"},
            "timestamp": "2024-01-01T00:00:00Z"
        }
    })
}

async fn replay(api: &TestApi, request: Value) -> Value {
    let admin = token_for("ops", &["admin"]);
    let deadline = tokio::time::Instant::now() + WITHIN;
    loop {
        let response = api
            .client
            .post(api.url("/errors/replay"))
            .bearer_auth(&admin)
            .json(&request)
            .send()
            .await
            .expect("sent");
        let status = response.status().as_u16();
        let body: Value = response.json().await.expect("json");
        // 503 only while the api's view of the database recovers from an outage.
        if status == 200 || tokio::time::Instant::now() >= deadline {
            assert_eq!(status, 200, "{body}");
            return body;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn wait_until(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WITHIN;
    while !done().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not within {WITHIN:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn ids_of(page: &Value) -> Vec<Option<String>> {
    let mut ids: Vec<Option<String>> = page["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|d| d["event_id"].as_str().map(str::to_owned))
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn a_poisoned_message_is_recorded_per_event_listed_counted_and_replayed_once() {
    let env = TestEnv::new().await;
    let api = env.spawn_api().await;
    let stored = env
        .store_event(StoredEvent {
            app_id: "test-app",
            session_id: Uuid::new_v4(),
            category: "page interaction",
            name: "pageview",
            timestamp: "2024-01-01T00:00:00Z",
        })
        .await;
    let (mine, theirs, unreadable) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    // Refused already (only its ack was lost): its verdict stands.
    let judged = Uuid::now_v7();
    env.db
        .execute_unprepared(&format!(
            "INSERT INTO dead_letters (id, kind, app_id, event_id, validator, message) \
             VALUES ('{}', 'invalid', 'test-app', '{judged}', 'required_keys', 'no host')",
            Uuid::now_v7()
        ))
        .await
        .expect("an invalid dead letter");
    let mut bad = envelope("test-app", unreadable);
    bad["event"]["timestamp"] = json!("not a time");
    let body = json!({"v": "1", "envelopes": [
        envelope("test-app", mine),
        envelope("ops", theirs),
        bad,
        // Stored already (only its ack was lost): no poisoned row for it.
        envelope("test-app", stored),
        envelope("test-app", judged),
    ]});
    // Twice, as when a client's retry and its first try were both poisoned.
    for _ in 0..2 {
        eye_testkit::publish_poison(&env.namespace, body.to_string().as_bytes()).await;
    }
    eye_testkit::publish_poison(&env.namespace, b"garbage").await;
    assert_eq!(poison_depth(&env.namespace).await, 3);

    let port = free_port();
    let metrics_addr = format!("127.0.0.1:{port}");
    let _worker =
        env.spawn_worker_process_with(&[("EYE_WORKER_METRICS_ADDR", metrics_addr.as_str())]);
    let scrape = format!("http://{metrics_addr}/metrics");
    // 3 rows written, the same 3 seen again, and the garbage; then the gauge reads 0.
    wait_until("the worker's metrics show the poison", async || {
        let Ok(response) = reqwest::get(&scrape).await else {
            return false;
        };
        let text = response.text().await.unwrap_or_default();
        text.contains("eye_worker_poisoned_total 7") && text.contains("eye_poison_queue_depth 0")
    })
    .await;
    assert_eq!(poison_depth(&env.namespace).await, 0);
    let (poisoned, other): (Vec<_>, Vec<_>) = env
        .dead_letters()
        .await
        .into_iter()
        .partition(|d| d.kind == "poisoned");
    assert_eq!(poisoned.len(), 4, "{poisoned:?}");
    assert!(
        poisoned
            .iter()
            .all(|d| d.validator.as_deref() == Some("delivery_limit"))
    );
    let attempts: Vec<i32> = poisoned.iter().map(|d| d.attempts).collect();
    assert_eq!(
        attempts.iter().filter(|a| **a == 2).count(),
        3,
        "{attempts:?}"
    );
    assert_eq!(
        (
            other[0].event_id,
            other[0].kind.as_str(),
            other[0].message.as_str()
        ),
        (Some(judged), "invalid", "no host")
    );
    let dead = poisoned;
    let row = dead
        .iter()
        .find(|d| d.event_id == Some(theirs))
        .expect("a row for the other application's event");
    assert_eq!(row.app_id.as_deref(), Some("ops"));
    let payload: Envelope =
        serde_json::from_value(row.payload.clone().expect("payload")).expect("the envelope");
    assert_eq!(payload.event.id, theirs);
    assert!(dead.iter().all(|d| d.event_id != Some(stored)));
    let garbage = dead
        .iter()
        .find(|d| d.app_id.is_none())
        .expect("the garbage");
    assert_eq!(garbage.raw.as_deref(), Some(&b"garbage"[..]));

    // The application sees its own poisoned events; an admin sees every one.
    let (status, page) = api.get("/errors?kind=poisoned").await;
    assert_eq!(status, 200, "{page}");
    let expected = |ids: &[Uuid]| {
        let mut ids: Vec<Option<String>> = ids.iter().map(|i| Some(i.to_string())).collect();
        ids.sort();
        ids
    };
    assert_eq!(ids_of(&page), expected(&[mine, unreadable]));
    let admin = token_for("ops", &["admin"]);
    let (_, all) = api.get_as(&admin, "/errors?kind=poisoned").await;
    assert_eq!(all["data"].as_array().map(Vec::len), Some(4));
    let (_, invalid) = api.get("/errors?kind=invalid").await;
    assert_eq!(ids_of(&invalid), expected(&[judged]));
    let (status, refused) = api.get("/errors?kind=poison").await;
    assert_eq!(status, 400);
    assert_eq!(refused["error"]["field"], "kind");
    let (_, held) = api.get(&format!("/events/{mine}/status")).await;
    assert_eq!(held["status"], "rejected");
    assert_eq!(held["reasons"][0]["validator"], "delivery_limit");
    let (_, already) = api.get(&format!("/events/{stored}/status")).await;
    assert_eq!(already["status"], "stored");

    let report = replay(&api, json!({"validator": "delivery_limit"})).await;
    assert_eq!(report, json!({"replayed": 2, "skipped": 2}));
    assert_eq!(env.wait_for_events(3, WITHIN).await, 3);
    for id in [mine, theirs] {
        assert!(env.event(id).await.is_some(), "{id} stored");
    }
    let (_, now) = api.get(&format!("/events/{mine}/status")).await;
    assert_eq!(now["status"], "stored");
    // Released: what stays listed is what cannot be replayed.
    let (_, left) = api.get_as(&admin, "/errors?kind=poisoned").await;
    let left = ids_of(&left);
    assert_eq!(left, vec![None, Some(unreadable.to_string())]);

    let again = replay(&api, json!({"validator": "delivery_limit"})).await;
    assert_eq!(again, json!({"replayed": 0, "skipped": 2}));
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(env.event_count().await, 3, "each event stored once");
}

/// The broker's own poisoning, as in production: every worker that takes the message stops
/// before it can commit (here the database is down and the worker is stopped, which hands the
/// message back exactly as a killed worker's closed connection does), until the delivery
/// limit moves it to the poison queue.
#[tokio::test]
async fn a_message_no_worker_can_finish_is_poisoned_by_the_broker_then_recorded_and_replayed() {
    let env = TestEnv::new().await;
    let api = env.spawn_api().await;
    let response = api.post_event(&eye_testkit::seed_event()).await;
    assert_eq!(response.status(), 202);
    let accepted: Value = response.json().await.expect("json");
    let id: Uuid = accepted["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("id");

    env.take_database_down().await;
    let mut deliveries = 0;
    while poison_depth(&env.namespace).await == 0 {
        assert!(deliveries <= DELIVERY_LIMIT, "never poisoned");
        let worker = env.spawn_worker().await;
        wait_until("a worker takes the message", async || {
            queue_depth(&env.namespace).await == 0
        })
        .await;
        worker.stop().await;
        deliveries += 1;
        wait_until("the message is back or poisoned", async || {
            queue_depth(&env.namespace).await + poison_depth(&env.namespace).await == 1
        })
        .await;
    }
    assert_eq!(
        deliveries,
        DELIVERY_LIMIT + 1,
        "the limit counts redeliveries"
    );
    env.bring_database_back().await;

    let _worker = env.spawn_worker().await;
    assert_eq!(env.wait_for_dead_letters(1, WITHIN).await, 1);
    let dead = env.dead_letters().await;
    assert_eq!(
        (dead[0].kind.as_str(), dead[0].app_id.as_deref()),
        ("poisoned", Some("test-app"))
    );
    assert_eq!(dead[0].event_id, Some(id));
    assert!(
        dead[0].message.contains("reason delivery_limit"),
        "{}",
        dead[0].message
    );
    assert_eq!(env.event_count().await, 0);

    let report = replay(&api, json!({"event_ids": [id]})).await;
    assert_eq!(report, json!({"replayed": 1, "skipped": 0}));
    assert_eq!(env.wait_for_events(1, WITHIN).await, 1);
    let (_, status) = api.get(&format!("/events/{id}/status")).await;
    assert_eq!(status["status"], "stored");
    assert!(
        env.dead_letters().await.is_empty(),
        "released once back in the queue"
    );
}

#[tokio::test]
async fn a_poisoned_message_the_database_refuses_event_by_event_is_kept_whole() {
    let env = TestEnv::new().await;
    let _api = env.spawn_api().await;
    // Random text too long for the (app_id, event_id) index, even compressed: PostgreSQL
    // refuses that row whatever happens, so retrying it would stall the poison queue.
    let app: String = (0..300)
        .map(|_| Uuid::new_v4().simple().to_string())
        .collect();
    let body = json!({"v": "1", "envelopes": [envelope(&app, Uuid::now_v7())]}).to_string();
    eye_testkit::publish_poison(&env.namespace, body.as_bytes()).await;
    let _worker = env.spawn_worker().await;
    assert_eq!(env.wait_for_dead_letters(1, WITHIN).await, 1);
    wait_until("the poison queue drains", async || {
        poison_depth(&env.namespace).await == 0
    })
    .await;
    let dead = env.dead_letters().await;
    assert_eq!(
        (dead[0].kind.as_str(), dead[0].app_id.as_deref()),
        ("poisoned", None)
    );
    assert_eq!(dead[0].raw.as_deref(), Some(body.as_bytes()));
    assert!(
        dead[0].message.contains("could not be recorded one by one"),
        "{}",
        dead[0].message
    );
}
