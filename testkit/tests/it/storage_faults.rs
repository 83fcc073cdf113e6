//! Rows the database refuses never stall the worker: they are isolated, dead-lettered with
//! the database's message, and everything else in their batch is stored.

use std::time::Duration;

use chrono::{NaiveDate, Utc};
use eye_core::Envelope;
use eye_core::provider::{PlanRecord, Record, to_envelope};
use eye_testkit::TestEnv;
use serde_json::{Value, json};
use uuid::Uuid;

const WITHIN: Duration = Duration::from_secs(30);

/// Text PostgreSQL cannot compress below an index row's limit (~2.7 KB).
fn incompressible(bytes: usize) -> String {
    let mut out = String::with_capacity(bytes);
    while out.len() < bytes {
        out.push_str(&Uuid::new_v4().simple().to_string());
    }
    out
}

fn event_envelope(id: Uuid, category: &str, timestamp: &str) -> Value {
    json!({
        "app_id": "test-app", "source": "http", "received_at": Utc::now(),
        "event": {"id": id, "session_id": Uuid::new_v4(), "category": category,
                  "name": "pageview", "data": {"host": "h", "path": "/"}, "timestamp": timestamp}
    })
}

fn plan(plan_id: &str, title: &str, year: i32) -> PlanRecord {
    let at = NaiveDate::from_ymd_opt(year, 1, 1)
        .and_then(|d| d.and_hms_opt(20, 0, 0))
        .expect("date");
    PlanRecord {
        base_plan_id: "base".into(),
        plan_id: plan_id.into(),
        title: title.into(),
        sell_mode: "online".into(),
        organizer_company_id: None,
        starts_at: at,
        ends_at: at,
        sell_from: at,
        sell_to: at,
        sold_out: false,
        zones: Vec::new(),
    }
}

fn plan_envelope(plan: PlanRecord) -> Value {
    let envelope: Envelope = to_envelope("fever", &Record::Plan(plan), Utc::now());
    serde_json::to_value(envelope).expect("json")
}

async fn publish(env: &TestEnv, envelopes: Vec<Value>) {
    let message = json!({"v": "1", "envelopes": envelopes});
    eye_testkit::publish_raw(&env.namespace, &serde_json::to_vec(&message).expect("json")).await;
}

#[tokio::test]
async fn rows_the_database_refuses_are_dead_lettered_alone_and_their_neighbours_stored() {
    let env = TestEnv::new().await;
    // A ready api has declared the topology the raw publishes need.
    let _api = env.spawn_api().await;
    let _worker = env.spawn_worker().await;
    let good: Vec<Uuid> = (0..6).map(|_| Uuid::now_v7()).collect();
    let ok = |i: usize| event_envelope(good[i], "page interaction", "2021-01-01T00:00:00Z");
    // Too long for the (app, category, name, timestamp, id) index: the api caps labels, but
    // another producer may not.
    let long_label = Uuid::now_v7();
    let far_plan = plan_envelope(plan("far", "Far", -5000));
    let long_title = plan_envelope(plan("title", &incompressible(8_000), 2021));
    let long_id = plan_envelope(plan(&incompressible(8_000), "Long id", 2021));
    let refused: Vec<Uuid> = [&far_plan, &long_title, &long_id]
        .iter()
        .map(|e| {
            e["event"]["id"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .expect("id")
        })
        .chain([long_label])
        .collect();
    let fine_plan = plan_envelope(plan("fine", "Fine", 2021));
    let fine_plan_id: Uuid = fine_plan["event"]["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("id");
    publish(
        &env,
        vec![
            ok(0),
            event_envelope(long_label, &incompressible(8_000), "2021-01-01T00:00:00Z"),
            ok(1),
            far_plan,
            ok(2),
            long_title,
            fine_plan,
            long_id,
            ok(3),
        ],
    )
    .await;
    publish(&env, vec![ok(4), ok(5)]).await;

    assert_eq!(
        env.wait_for_events(7, WITHIN).await,
        7,
        "the rest is stored"
    );
    for id in good.iter().chain([&fine_plan_id]) {
        assert!(env.event(*id).await.is_some(), "{id} stored");
    }
    assert_eq!(env.wait_for_dead_letters(4, WITHIN).await, 4);
    let dead = env.dead_letters().await;
    for id in refused.iter().copied() {
        let row = dead
            .iter()
            .find(|d| d.event_id == Some(id))
            .unwrap_or_else(|| panic!("no dead letter for {id}: {dead:?}"));
        assert_eq!(row.kind, "invalid", "{row:?}");
        assert!(env.event(id).await.is_none());
        if id == long_label {
            // No validator knows this limit: the database's own refusal, with its message.
            assert_eq!(row.validator.as_deref(), Some("database"));
            assert!(row.message.contains("SQLSTATE 54000"), "{}", row.message);
        }
    }
    // The worker did not stall: nothing is left in the queue.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(eye_testkit::queue_depth(&env.namespace).await, 0);
}

#[tokio::test]
async fn a_batch_of_5000_refused_events_is_stored_past_the_bind_parameter_limit() {
    let env = TestEnv::new().await;
    let _api = env.spawn_api().await;
    let _worker = env
        .spawn_worker_with(&["--batch-size", "5000", "--batch-linger-ms", "2000"])
        .await;
    // 5,000 dead letters of 16 columns need 80,000 bind parameters: more than one statement
    // may hold (65,535).
    let future = (Utc::now() + chrono::Duration::days(2)).to_rfc3339();
    let ids: Vec<Uuid> = (0..5_000).map(|_| Uuid::now_v7()).collect();
    let envelopes = ids
        .iter()
        .map(|id| event_envelope(*id, "page interaction", &future))
        .collect();
    publish(&env, envelopes).await;
    assert_eq!(env.wait_for_dead_letters(5_000, WITHIN).await, 5_000);
    let dead = env.dead_letters().await;
    assert!(
        dead.iter()
            .all(|d| d.validator.as_deref() == Some("timestamp_bounds"))
    );
}
