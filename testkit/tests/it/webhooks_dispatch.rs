//! The dispatcher's own mechanics (issue 15): claims made one round ahead of the attempts in
//! flight are leases that a stopping dispatcher gives back, and attempts recorded in batches
//! by the recorder each leave exactly one attempt row and one final state per delivery. A
//! claim's lease is a heap-only update (no index entry, no row version left for a vacuum).

use std::collections::HashSet;
use std::time::Duration;

use eye_testkit::{Answer, Receiver, TestEnv, seed_event, token_for};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::{Value, json};

const WITHIN: Duration = Duration::from_secs(30);

fn token() -> String {
    token_for("test-app", &["events:write", "webhooks:write"])
}

async fn count(env: &TestEnv, sql: &str) -> i64 {
    let row = env
        .db
        .query_one_raw(Statement::from_string(DbBackend::Postgres, sql))
        .await
        .expect("query")
        .expect("row");
    row.try_get_by_index::<i64>(0).expect("count")
}

#[tokio::test]
async fn claims_ahead_are_given_back_on_stop_and_batched_records_stay_exact() {
    let env = TestEnv::new().await;
    let api = env
        .spawn_api_with(&["--webhook-allow-nets", "127.0.0.1/32"])
        .await;
    api.wait_ready(Duration::from_secs(15)).await;
    let _worker = env.spawn_worker_with(&["--webhook-refresh-ms", "50"]).await;
    let receiver = Receiver::start().await;
    receiver.answer(Answer {
        delay: Duration::from_millis(1500),
        ..Answer::default()
    });
    let response = api
        .client
        .post(api.url("/webhooks"))
        .bearer_auth(token())
        .json(&json!({"url": receiver.url("/hook")}))
        .send()
        .await
        .expect("subscribe");
    assert_eq!(response.status(), 201);
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..6 {
        let response = api.post_event_as(&token(), &seed_event()).await;
        assert_eq!(response.status(), 202);
    }
    env.wait_for_events(6, WITHIN).await;

    // Two in flight (the receiver holds them), two more claimed ahead, two left due.
    let dispatcher = env
        .spawn_dispatcher_with(&["--webhook-concurrency", "2"])
        .await;
    assert_eq!(receiver.wait_for(2, WITHIN).await.len(), 2);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let leased = "SELECT count(*) FROM webhook_deliveries \
                  WHERE status = 'pending' AND leased_until > now() + interval '3 seconds'";
    assert_eq!(
        count(&env, leased).await,
        4,
        "2 in flight + 2 claimed ahead"
    );
    assert_eq!(
        count(
            &env,
            "SELECT count(*) FROM webhook_deliveries WHERE first_attempt_at IS NOT NULL"
        )
        .await,
        0,
        "first_attempt_at is written with the attempt's record, not at the claim"
    );

    // A graceful stop lets the two in flight finish and gives the two ahead back at once.
    dispatcher.stop().await;
    assert_eq!(
        receiver.received().len(),
        2,
        "nothing new started while stopping"
    );
    assert_eq!(
        count(
            &env,
            "SELECT count(*) FROM webhook_deliveries WHERE status = 'succeeded'"
        )
        .await,
        2
    );
    assert_eq!(
        count(&env, leased).await,
        0,
        "no claim left held by a lease"
    );
    assert_eq!(
        count(&env, "SELECT count(*) FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= now() AND leased_until IS NULL").await,
        4
    );
    // The 4 claims and the 2 give-backs only moved the lease: heap-only updates. (The stopped
    // dispatcher's connections have flushed their statistics as they closed.)
    let hot = "SELECT n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = 'webhook_deliveries'";
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while count(&env, hot).await < 6 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        count(&env, hot).await >= 6,
        "claims and give-backs are heap-only updates"
    );

    // A fresh dispatcher with a fast receiver delivers the rest; many attempts end at once, so
    // the recorder writes them in batches: still one row and one state per attempt.
    receiver.answer(Answer::default());
    let dispatcher = env.spawn_dispatcher().await;
    let got = receiver.wait_for(6, WITHIN).await;
    let deadline = tokio::time::Instant::now() + WITHIN;
    while count(
        &env,
        "SELECT count(*) FROM webhook_deliveries WHERE status = 'succeeded'",
    )
    .await
        < 6
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    dispatcher.stop().await;
    let ids: HashSet<&str> = got.iter().map(|r| r.webhook_id.as_str()).collect();
    assert_eq!((got.len(), ids.len()), (6, 6), "each delivery sent once");
    assert_eq!(
        count(&env, "SELECT count(*) FROM webhook_deliveries WHERE status = 'succeeded' AND attempts = 1 AND first_attempt_at IS NOT NULL").await,
        6
    );
    assert_eq!(
        count(
            &env,
            "SELECT count(*) FROM webhook_attempts WHERE status_code = 200"
        )
        .await,
        6
    );
    let body: Value = got[0].json();
    assert_eq!(body["type"], "event.stored");
}

/// `webhook_deliveries` churns like a work queue: the dispatcher plans each statement for its
/// parameters (no generic plan cached while the table was small) and vacuums the table once
/// the statistics count `--webhook-vacuum-dead-rows` dead versions (autovacuum may be off, as
/// it is on the project's VM); the deliveries are untouched by it.
#[tokio::test]
async fn the_dispatcher_vacuums_its_queue_table_past_the_dead_row_count() {
    let env = TestEnv::new().await;
    let pool = eye_dispatcher::database(&env.dispatcher_settings(&[]))
        .await
        .expect("pool");
    let mode = pool
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT current_setting('plan_cache_mode')",
        ))
        .await
        .expect("query")
        .expect("row")
        .try_get_by_index::<String>(0)
        .expect("setting");
    assert_eq!(mode, "force_custom_plan");

    let api = env
        .spawn_api_with(&["--webhook-allow-nets", "127.0.0.1/32"])
        .await;
    api.wait_ready(Duration::from_secs(15)).await;
    let _worker = env.spawn_worker_with(&["--webhook-refresh-ms", "50"]).await;
    let receiver = Receiver::start().await;
    let response = api
        .client
        .post(api.url("/webhooks"))
        .bearer_auth(token())
        .json(&json!({"url": receiver.url("/hook")}))
        .send()
        .await
        .expect("subscribe");
    assert_eq!(response.status(), 201);
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..5 {
        let response = api.post_event_as(&token(), &seed_event()).await;
        assert_eq!(response.status(), 202);
    }
    env.wait_for_events(5, WITHIN).await;
    let vacuums =
        "SELECT vacuum_count FROM pg_stat_user_tables WHERE relname = 'webhook_deliveries'";
    assert_eq!(count(&env, vacuums).await, 0, "nothing vacuumed it yet");

    let dispatcher = env
        .spawn_dispatcher_with(&[
            "--webhook-vacuum-dead-rows",
            "5",
            "--webhook-vacuum-check-ms",
            "200",
        ])
        .await;
    assert_eq!(receiver.wait_for(5, WITHIN).await.len(), 5);
    let deadline = tokio::time::Instant::now() + WITHIN;
    while count(&env, vacuums).await == 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    dispatcher.stop().await;
    assert!(
        count(&env, vacuums).await >= 1,
        "vacuumed once 5 dead versions were counted"
    );
    assert_eq!(
        count(
            &env,
            "SELECT count(*) FROM webhook_deliveries WHERE status = 'succeeded' AND attempts = 1"
        )
        .await,
        5
    );
}
