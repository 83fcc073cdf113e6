//! Erasure (issue 19): a session erased while its events are still in flight stays erased,
//! dry runs count what is deleted, an erased event's dead letter is not replayed, and one
//! application cannot erase another's data.

use std::collections::HashSet;
use std::time::Duration;

use eye_core::entity::event;
use eye_testkit::{TestApi, TestEnv, seed_event, token_for};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QuerySelect};
use serde_json::{Value, json};
use uuid::Uuid;

const WITHIN: Duration = Duration::from_secs(30);
/// The worker looks for confirmed erasures this often in these tests.
const WORKER_FLAGS: &[&str] = &["--erasure-poll-ms", "50"];

async fn post(api: &TestApi, token: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
    let mut request = api.client.post(api.url(path)).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.expect("request sent");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Posts an event of `session` (a fresh id) and returns its id.
async fn send(api: &TestApi, session: Uuid) -> Uuid {
    let mut body = seed_event();
    body["session_id"] = json!(session);
    let response = api.post_event(&body).await;
    assert_eq!(response.status(), 202);
    let body: Value = response.json().await.expect("json");
    body["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("id")
}

async fn session_rows(env: &TestEnv, session: Uuid) -> u64 {
    event::Entity::find()
        .filter(event::Column::SessionId.eq(session))
        .count(&env.db)
        .await
        .expect("count")
}

async fn stored_ids(env: &TestEnv) -> HashSet<Uuid> {
    event::Entity::find()
        .select_only()
        .column(event::Column::Id)
        .into_tuple::<Uuid>()
        .all(&env.db)
        .await
        .expect("ids")
        .into_iter()
        .collect()
}

/// Requests and confirms an erasure of `session`, then waits until the worker is done.
async fn erase(api: &TestApi, token: &str, session: Uuid) -> (Value, Value) {
    let (status, pending) = post(
        api,
        token,
        "/erasures",
        Some(&json!({"session_id": session, "reason": "the user asked"})),
    )
    .await;
    assert_eq!(status, 202, "{pending}");
    assert_eq!(pending["status"], "pending");
    let id = pending["id"].as_str().expect("id").to_owned();
    let (status, confirmed) = post(api, token, &format!("/erasures/{id}/confirm"), None).await;
    assert_eq!(status, 202, "{confirmed}");
    (pending, confirmed)
}

async fn wait_done(api: &TestApi, token: &str, id: &str) -> Value {
    let deadline = tokio::time::Instant::now() + WITHIN;
    loop {
        let (status, erasure) = api.get_as(token, &format!("/erasures/{id}")).await;
        assert_eq!(status, 200, "{erasure}");
        if erasure["status"] == "done" {
            return erasure;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not done: {erasure}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_session_erased_while_its_events_are_in_the_queue_stays_erased() {
    let env = TestEnv::new().await;
    let api = env.spawn_api().await;
    let eraser = token_for("test-app", &["events:erase"]);
    let worker = env.spawn_worker_with(WORKER_FLAGS).await;
    let erased = Uuid::new_v4();
    let others: Vec<Uuid> = (0..4).map(|_| Uuid::new_v4()).collect();
    let mut ledger = Vec::new();
    for _ in 0..30 {
        send(&api, erased).await;
    }
    for other in &others {
        for _ in 0..10 {
            ledger.push(send(&api, *other).await);
        }
    }
    assert_eq!(env.wait_for_events(70, WITHIN).await, 70);
    // The worker stops: what is published now waits in the queue, in flight.
    worker.stop().await;
    let late = 40;
    for _ in 0..late {
        send(&api, erased).await;
    }
    for other in &others {
        for _ in 0..5 {
            ledger.push(send(&api, *other).await);
        }
    }
    let (pending, confirmed) = erase(&api, &eraser, erased).await;
    assert_eq!(pending["dry_run"]["events"], 30, "{pending}");
    assert_eq!(pending["dry_run"]["estimated"], false);
    assert_eq!(confirmed["status"], "confirmed");
    assert!(
        confirmed["confirmed_by"]
            .as_str()
            .expect("by")
            .starts_with("app:test-app token:")
    );

    // The queue drains into a worker that knows the tombstone.
    let _worker = env.spawn_worker_with(WORKER_FLAGS).await;
    let id = pending["id"].as_str().expect("id");
    wait_done(&api, &eraser, id).await;
    assert_eq!(
        env.wait_for_events(ledger.len() as u64, WITHIN).await,
        ledger.len() as u64
    );
    let deadline = tokio::time::Instant::now() + WITHIN;
    let done = loop {
        let (_, now) = api.get_as(&eraser, &format!("/erasures/{id}")).await;
        if now["suppressed"] == late || tokio::time::Instant::now() > deadline {
            break now;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(session_rows(&env, erased).await, 0);
    assert_eq!(done["suppressed"], late, "{done}");
    assert_eq!(done["deleted"]["events"], pending["dry_run"]["events"]);
    assert!(done["completed_at"].is_string());
    let stored = stored_ids(&env).await;
    let missing = ledger.iter().filter(|id| !stored.contains(id)).count();
    assert_eq!(
        (missing, stored.len()),
        (0, ledger.len()),
        "other sessions untouched"
    );
}

#[tokio::test]
async fn events_racing_the_confirmation_are_deleted_or_suppressed_never_kept() {
    let env = TestEnv::new().await;
    let api = std::sync::Arc::new(env.spawn_api().await);
    let eraser = token_for("test-app", &["events:erase"]);
    let _worker = env.spawn_worker_with(WORKER_FLAGS).await;
    let erased = Uuid::new_v4();
    let other = Uuid::new_v4();
    // Two senders keep posting the session's events (and another session's) while it is
    // erased; every 202 of the erased session must end deleted or suppressed.
    let stop = tokio_util::sync::CancellationToken::new();
    let sender = |session: Uuid| {
        let api = api.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut ids = Vec::new();
            while !stop.is_cancelled() {
                ids.push(send(&api, session).await);
            }
            ids
        })
    };
    let (erased_sender, other_sender) = (sender(erased), sender(other));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (pending, _) = erase(&api, &eraser, erased).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.cancel();
    let accepted = erased_sender.await.expect("sender").len() as u64;
    let others = other_sender.await.expect("sender");
    let id = pending["id"].as_str().expect("id");
    wait_done(&api, &eraser, id).await;
    assert_eq!(
        env.wait_for_events(others.len() as u64, WITHIN).await,
        others.len() as u64
    );
    let deadline = tokio::time::Instant::now() + WITHIN;
    let done = loop {
        let (_, now) = api.get_as(&eraser, &format!("/erasures/{id}")).await;
        let accounted = now["deleted"]["events"].as_u64().unwrap_or(0)
            + now["suppressed"].as_u64().unwrap_or(0);
        if accounted >= accepted || tokio::time::Instant::now() > deadline {
            break now;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(session_rows(&env, erased).await, 0);
    let deleted = done["deleted"]["events"].as_u64().expect("deleted");
    let suppressed = done["suppressed"].as_u64().expect("suppressed");
    assert!(deleted > 0 && suppressed > 0, "{done}");
    assert_eq!(deleted + suppressed, accepted, "{done}");
    assert_eq!(session_rows(&env, other).await, others.len() as u64);
}

#[tokio::test]
async fn dead_letters_are_counted_and_erased_and_their_replay_stores_nothing() {
    let env = TestEnv::new().await;
    let api = env.spawn_api().await;
    let eraser = token_for("test-app", &["events:erase"]);
    let admin = token_for("ops", &["admin"]);
    let _worker = env.spawn_worker_with(WORKER_FLAGS).await;
    let session = Uuid::new_v4();
    let mut refused = Vec::new();
    for i in 0..6 {
        let mut body = seed_event();
        body["session_id"] = json!(session);
        if i % 2 == 0 {
            body["data"] = json!({"path": "/"});
        }
        let response = api.post_event(&body).await;
        assert_eq!(response.status(), 202);
        let id: Value = response.json().await.expect("json");
        if i % 2 == 0 {
            refused.push(id["id"].as_str().expect("id").to_owned());
        }
    }
    assert_eq!(env.wait_for_events(3, WITHIN).await, 3);
    assert_eq!(env.wait_for_dead_letters(3, WITHIN).await, 3);
    let kept = env.dead_letters().await[0]
        .payload
        .clone()
        .expect("an envelope");

    let (pending, _) = erase(&api, &eraser, session).await;
    assert_eq!(pending["dry_run"]["events"], 3);
    assert_eq!(pending["dry_run"]["dead_letters"], 3);
    let done = wait_done(&api, &eraser, pending["id"].as_str().expect("id")).await;
    assert_eq!(done["deleted"]["events"], pending["dry_run"]["events"]);
    assert_eq!(
        done["deleted"]["dead_letters"],
        pending["dry_run"]["dead_letters"]
    );
    assert!(env.dead_letters().await.is_empty());

    // A replay finds nothing to replay.
    let (status, report) = post(
        &api,
        &admin,
        "/errors/replay",
        Some(&json!({"event_ids": refused})),
    )
    .await;
    assert_eq!(
        (status, report["replayed"].as_u64()),
        (200, Some(0)),
        "{report}"
    );
    // A replay (or import, or the poison queue) already under way delivers the envelope
    // again: nothing is stored, it is counted.
    let message = json!({"v": "1", "envelopes": [kept]}).to_string();
    eye_testkit::publish_raw(&env.namespace, message.as_bytes()).await;
    eye_testkit::publish_poison(&env.namespace, message.as_bytes()).await;
    let id = pending["id"].as_str().expect("id");
    let deadline = tokio::time::Instant::now() + WITHIN;
    loop {
        let (_, now) = api.get_as(&eraser, &format!("/erasures/{id}")).await;
        if now["suppressed"] == 2 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{now}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(session_rows(&env, session).await, 0);
    assert!(env.dead_letters().await.is_empty());
}

#[tokio::test]
async fn an_application_cannot_erase_or_see_another_applications_data() {
    let env = TestEnv::new().await;
    env.register_app("someone-else").await;
    let api = env.spawn_api().await;
    let mine = token_for("test-app", &["events:erase"]);
    let theirs = token_for("someone-else", &["events:erase"]);
    let body = json!({"session_id": Uuid::new_v4(), "reason": "r"});

    let mut other_app = body.clone();
    other_app["app_id"] = json!("someone-else");
    let (status, refused) = post(&api, &mine, "/erasures", Some(&other_app)).await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (403, Some("insufficient_scope"))
    );
    let (status, _) = post(&api, &api.token, "/erasures", Some(&body)).await;
    assert_eq!(
        status, 403,
        "events:write + events:read is not events:erase"
    );

    let (status, their_erasure) = post(&api, &theirs, "/erasures", Some(&body)).await;
    assert_eq!(status, 202);
    let id = their_erasure["id"].as_str().expect("id");
    let (status, _) = api.get_as(&mine, &format!("/erasures/{id}")).await;
    assert_eq!(status, 404);
    let (status, _) = post(&api, &mine, &format!("/erasures/{id}/confirm"), None).await;
    assert_eq!(status, 404);
    let (_, list) = api.get_as(&mine, "/erasures").await;
    assert_eq!(list["data"], json!([]));
    let (_, still) = api.get_as(&theirs, &format!("/erasures/{id}")).await;
    assert_eq!(still["status"], "pending");

    let admin = token_for("ops", &["admin"]);
    let (status, by_admin) = post(&api, &admin, "/erasures", Some(&other_app)).await;
    assert_eq!(
        (status, by_admin["app_id"].as_str()),
        (202, Some("someone-else"))
    );
    let (_, all) = api.get_as(&admin, "/erasures").await;
    assert_eq!(all["data"].as_array().expect("data").len(), 2);
}

#[tokio::test]
async fn a_bad_erasure_request_names_the_field() {
    let env = TestEnv::new().await;
    let api = env.spawn_api().await;
    let token = token_for("test-app", &["events:erase"]);
    let session = Uuid::new_v4();
    for (body, field) in [
        (json!({"reason": "everything"}), "session_id"),
        (json!({"session_id": "nope", "reason": "r"}), "session_id"),
        (json!({"session_id": session}), "reason"),
        (json!({"session_id": session, "reason": ""}), "reason"),
        (json!({"from": "last week", "reason": "r"}), "from"),
        (
            json!({"from": "2021-01-02T00:00:00Z", "to": "2021-01-01T00:00:00Z", "reason": "r"}),
            "to",
        ),
    ] {
        let (status, refused) = post(&api, &token, "/erasures", Some(&body)).await;
        assert_eq!(status, 422, "{body} -> {refused}");
        assert_eq!(refused["error"]["field"], field, "{body} -> {refused}");
    }
    let (status, refused) = api.get_as(&token, "/erasures/nope").await;
    assert_eq!(
        (status, refused["error"]["field"].as_str()),
        (400, Some("id"))
    );
}

#[tokio::test]
async fn a_time_range_erasure_deletes_that_range_only() {
    let env = TestEnv::new().await;
    let api = env.spawn_api().await;
    let _worker = env.spawn_worker_with(WORKER_FLAGS).await;
    let admin = token_for("ops", &["admin"]);
    let mut kept = Vec::new();
    for (app, day, name) in [
        ("test-app", "2021-01-01", "pageview"),
        ("test-app", "2021-01-02", "pageview"),
        ("test-app", "2021-01-02", "cta click"),
        ("test-app", "2021-01-02", "pageview"),
        ("test-app", "2021-01-03", "pageview"),
        ("ops", "2021-01-02", "pageview"),
    ] {
        let id = env
            .store_event(eye_testkit::StoredEvent {
                app_id: app,
                session_id: Uuid::new_v4(),
                category: "page interaction",
                name,
                timestamp: &format!("{day}T12:00:00Z"),
            })
            .await;
        if !(app == "test-app" && day == "2021-01-02" && name == "pageview") {
            kept.push(id);
        }
    }
    let (status, pending) = post(
        &api,
        &admin,
        "/erasures",
        Some(&json!({
            "app_id": "test-app", "from": "2021-01-02 00:00:00", "to": "2021-01-03T00:00:00Z",
            "name": "pageview", "reason": "a load test sent to production"
        })),
    )
    .await;
    assert_eq!(status, 202, "{pending}");
    assert_eq!(pending["dry_run"]["events"], 2);
    let id = pending["id"].as_str().expect("id");
    let (status, _) = post(&api, &admin, &format!("/erasures/{id}/confirm"), None).await;
    assert_eq!(status, 202);
    let done = wait_done(&api, &admin, id).await;
    assert_eq!(done["deleted"]["events"], 2);
    assert_eq!(
        done["requested_by"]
            .as_str()
            .map(|s| s.starts_with("app:ops ")),
        Some(true)
    );
    let mut kept: HashSet<Uuid> = kept.into_iter().collect();
    assert_eq!(stored_ids(&env).await, kept);

    // Late arrivals of the erased range (any session) are suppressed; the same application's
    // events outside the filter, and the same filter's in another application, are stored.
    let user = token_for("test-app", &["events:write"]);
    let late = |name: &str, timestamp: &str| {
        let mut body = seed_event();
        body["name"] = json!(name);
        body["timestamp"] = json!(timestamp);
        body
    };
    let mut suppressed = 0;
    for (name, timestamp, erased) in [
        ("pageview", "2021-01-02 08:00:00", true),
        ("pageview", "2021-01-02T23:59:59Z", true),
        ("pageview", "2021-01-02 00:00:00", true),
        ("form submit", "2021-01-02 08:00:00", false),
        ("pageview", "2021-01-03 00:00:00", false),
    ] {
        let (status, answer) = post(&api, &user, "/events", Some(&late(name, timestamp))).await;
        assert_eq!(status, 202, "{answer}");
        let id: Uuid = answer["id"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .expect("id");
        if erased {
            suppressed += 1;
        } else {
            kept.insert(id);
        }
    }
    let other = token_for("ops", &["events:write"]);
    let (status, answer) = post(
        &api,
        &other,
        "/events",
        Some(&late("pageview", "2021-01-02 08:00:00")),
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    kept.insert(
        answer["id"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .expect("id"),
    );
    let deadline = tokio::time::Instant::now() + WITHIN;
    let after = loop {
        let (_, now) = api.get_as(&admin, &format!("/erasures/{id}")).await;
        if now["suppressed"] == suppressed || tokio::time::Instant::now() > deadline {
            break now;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(after["suppressed"], suppressed, "{after}");
    assert_eq!(
        env.wait_for_events(kept.len() as u64, WITHIN).await,
        kept.len() as u64
    );
    assert_eq!(stored_ids(&env).await, kept);
}

#[tokio::test]
async fn a_session_erasure_takes_the_dead_letters_kept_as_bytes_that_name_the_session() {
    use sea_orm::ConnectionTrait;
    let env = TestEnv::new().await;
    let api = env.spawn_api().await;
    let _worker = env.spawn_worker_with(WORKER_FLAGS).await;
    let eraser = token_for("test-app", &["events:erase"]);
    let erased = Uuid::new_v4();
    let other = Uuid::new_v4();
    // Undecodable messages (kept as bytes, no envelope): two naming the session (one in upper
    // case), one naming another session, one of another application naming it.
    let mut keep = HashSet::new();
    for (app, bytes, kept) in [
        (
            "test-app",
            format!("{{\"session_id\": \"{erased}\", \"data\": \u{1}"),
            false,
        ),
        (
            "test-app",
            format!("garbage {} garbage", erased.to_string().to_uppercase()),
            false,
        ),
        ("test-app", format!("{{\"session_id\": \"{other}\""), true),
        ("ops", format!("{{\"session_id\": \"{erased}\""), true),
    ] {
        let id = Uuid::new_v4();
        env.db
            .execute_raw(sea_orm::Statement::from_sql_and_values(
                sea_orm::DbBackend::Postgres,
                "INSERT INTO dead_letters (id, kind, app_id, message, reasons, raw, attempts, \
                 first_seen, last_seen) \
                 VALUES ($1, 'undecodable', $2, 'not json', '[]', $3, 1, now(), now())",
                [id.into(), app.into(), bytes.into_bytes().into()],
            ))
            .await
            .expect("dead letter");
        if kept {
            keep.insert(id);
        }
    }
    let (pending, _) = erase(&api, &eraser, erased).await;
    assert_eq!(pending["dry_run"]["dead_letters"], 2, "{pending}");
    let done = wait_done(&api, &eraser, pending["id"].as_str().expect("id")).await;
    assert_eq!(done["deleted"]["dead_letters"], 2, "{done}");
    let left: HashSet<Uuid> = eye_core::entity::dead_letter::Entity::find()
        .select_only()
        .column(eye_core::entity::dead_letter::Column::Id)
        .into_tuple::<Uuid>()
        .all(&env.db)
        .await
        .expect("ids")
        .into_iter()
        .collect();
    assert_eq!(left, keep);
}
