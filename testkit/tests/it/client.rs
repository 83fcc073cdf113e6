//! eye-client against the real api, broker and database: ids assigned by the client make
//! every retry safe (a ledger of stored rows by id), 429s wait for Retry-After, and what
//! could not be delivered is handed back.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use eye_client::{BatchConfig, Client, Event, Reason, RetryPolicy};
use eye_testkit::{BrokerProxy, TestApi, TestEnv, token_for};
use serde_json::json;
use uuid::Uuid;

const WITHIN: Duration = Duration::from_secs(30);

fn event(i: usize) -> Event {
    Event::new(Uuid::now_v7(), "page interaction", "pageview")
        .data(json!({"host": "www.consumeraffairs.com", "path": format!("/p/{i}")}))
}

fn client_for(api: &TestApi, token: &str, retry: RetryPolicy) -> Client {
    Client::builder(api.url("/"), token)
        .retry(retry)
        .build()
        .expect("client")
}

fn patient() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 60,
        min_delay: Duration::from_millis(100),
        max_delay: Duration::from_millis(500),
    }
}

async fn stored_ids(env: &TestEnv) -> HashSet<Uuid> {
    env.events().await.into_iter().map(|e| e.id).collect()
}

#[tokio::test]
async fn send_and_send_batch_deliver_and_hand_back_refusals_with_their_field() {
    let env = TestEnv::new().await;
    let api = env.spawn_api().await;
    let _worker = env.spawn_worker().await;
    let client = client_for(&api, &api.token, patient());

    let one = client.send(event(0)).await.expect("accepted");
    let mut blank = event(1);
    blank.category = " ".into();
    let refused = client.send(blank.clone()).await.expect_err("refused");
    match &refused.reason {
        Reason::Refused(r) => assert_eq!(
            (r.status, r.code.as_str(), r.field.as_deref()),
            (422, "invalid_field", Some("category"))
        ),
        other => panic!("{other:?}"),
    }

    let mut batch: Vec<Event> = (2..6).map(event).collect();
    batch.insert(2, blank);
    let report = client.send_batch(batch).await;
    assert_eq!(report.accepted.len(), 4);
    assert_eq!(report.undelivered.len(), 1);
    match &report.undelivered[0].reason {
        Reason::Refused(r) => assert_eq!(r.field.as_deref(), Some("/category")),
        other => panic!("{other:?}"),
    }

    let mut expected: HashSet<Uuid> = report.accepted.iter().copied().collect();
    expected.insert(one);
    assert_eq!(env.wait_for_events(5, WITHIN).await, 5);
    assert_eq!(stored_ids(&env).await, expected);
}

/// The broker stalls for two seconds: the api answers 503 (some events may have been
/// published), the client retries with the same ids, and the ledger of stored rows holds
/// every event exactly once.
#[tokio::test]
async fn retries_through_a_stalled_broker_store_every_event_exactly_once() {
    let env = TestEnv::new().await;
    let proxy = BrokerProxy::start().await;
    let url = proxy.amqp_url();
    let api = env
        .spawn_api_with(&["--amqp-url", url.as_str(), "--publish-timeout-ms", "400"])
        .await;
    api.wait_ready(Duration::from_secs(15)).await;
    let _worker = env.spawn_worker().await;
    let client = client_for(&api, &api.token, patient());

    proxy.freeze();
    let started = Instant::now();
    let batch = tokio::spawn({
        let client = client.clone();
        async move { client.send_batch((0..1200).map(event).collect()).await }
    });
    let singles = tokio::spawn({
        let client = client.clone();
        async move {
            let mut ids = Vec::new();
            for i in 0..5 {
                ids.push(client.send(event(10_000 + i)).await.expect("delivered"));
            }
            ids
        }
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    proxy.thaw();
    let report = batch.await.expect("batch task");
    let singles = singles.await.expect("singles task");
    assert!(started.elapsed() >= Duration::from_secs(2));
    assert!(
        report.undelivered.is_empty(),
        "{:?}",
        report.undelivered.first()
    );
    assert_eq!(report.accepted.len(), 1200);

    let mut ledger: HashSet<Uuid> = report.accepted.into_iter().collect();
    ledger.extend(singles);
    assert_eq!(ledger.len(), 1205);
    assert_eq!(env.wait_for_events(1205, WITHIN).await, 1205);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(env.event_count().await, 1205, "nothing stored twice");
    assert_eq!(stored_ids(&env).await, ledger);
}

#[tokio::test]
async fn a_429_is_retried_no_sooner_than_retry_after() {
    let env = TestEnv::new().await;
    env.register_app("paced").await;
    env.set_rate_limit("paced", 5, 10).await;
    let api = env.spawn_api().await;
    let client = client_for(&api, &token_for("paced", &["events:write"]), patient());

    let first = client.send_batch((0..10).map(event).collect()).await;
    assert_eq!(first.accepted.len(), 10);
    let started = Instant::now();
    let second = client.send_batch((0..5).map(event).collect()).await;
    assert_eq!(second.accepted.len(), 5, "{:?}", second.undelivered.first());
    // The bucket refills at 5/s, but the 429 says Retry-After: 1 (whole seconds).
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn the_batcher_sends_in_the_background_and_hands_back_what_it_could_not_deliver() {
    let env = TestEnv::new().await;
    let api = env.spawn_api().await;
    let _worker = env.spawn_worker().await;
    let client = client_for(&api, &api.token, patient());
    let batcher = client.batcher(BatchConfig {
        max_events: 150,
        linger: Duration::from_millis(20),
        ..BatchConfig::default()
    });
    let mut sent = HashSet::new();
    let mut invalid = HashSet::new();
    for i in 0..1000 {
        let mut e = event(i);
        if i % 250 == 7 {
            e.timestamp = "not a time".into();
            invalid.insert(batcher.send(e).expect("queued"));
        } else {
            sent.insert(batcher.send(e).expect("queued"));
        }
    }
    batcher.flush().await;
    assert_eq!(batcher.delivered(), 996);
    let report = batcher.close().await;
    let failed: HashSet<Uuid> = report.undelivered.iter().map(|u| u.id).collect();
    assert_eq!(failed, invalid);
    assert!(report.undelivered.iter().all(|u| matches!(
        &u.reason,
        Reason::Refused(r) if r.field.as_deref() == Some("/timestamp")
    )));
    assert_eq!(env.wait_for_events(996, WITHIN).await, 996);
    assert_eq!(stored_ids(&env).await, sent);
}

#[tokio::test]
async fn without_a_broker_events_come_back_undelivered_after_the_retries() {
    let env = TestEnv::new().await;
    let api = env
        .spawn_api_with(&["--amqp-url", "amqp://guest:guest@127.0.0.1:1/%2f"])
        .await;
    let client = client_for(
        &api,
        &api.token,
        RetryPolicy {
            max_attempts: 2,
            min_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(10),
        },
    );
    let failed = client.send(event(0)).await.expect_err("no broker");
    assert!(matches!(failed.reason, Reason::GaveUp { attempts: 2, .. }));
    let batcher = client.batcher(BatchConfig::default());
    let ids: HashSet<Uuid> = (0..10)
        .map(|i| batcher.send(event(i)).expect("queued"))
        .collect();
    let report = batcher.close().await;
    assert_eq!(report.delivered, 0);
    let back: HashSet<Uuid> = report.undelivered.iter().map(|u| u.id).collect();
    assert_eq!(back, ids);
    assert!(
        report
            .undelivered
            .iter()
            .all(|u| matches!(u.reason, Reason::GaveUp { .. }) && u.event.id == Some(u.id))
    );
}
