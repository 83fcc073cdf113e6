//! The publisher when the broker stalls (its confirms stop coming): a 503 says whether the
//! event may have been stored, and an event whose request gave up is never published later.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use eye_testkit::{BrokerProxy, TestApi, TestEnv, seed_event};
use futures::future::join_all;
use serde_json::Value;
use uuid::Uuid;

/// One answer to `POST /events`: status, body and how long it took.
struct Answer {
    id: Uuid,
    status: u16,
    body: Value,
    took: Duration,
}

/// Posts `count` seed events with client ids, all at once.
async fn post_at_once(api: &TestApi, count: usize) -> Vec<Answer> {
    join_all((0..count).map(|_| async {
        let id = Uuid::new_v4();
        let mut event = seed_event();
        event["id"] = id.to_string().into();
        let started = Instant::now();
        let response = api.post_event(&event).await;
        let status = response.status().as_u16();
        let body = response.json().await.unwrap_or(Value::Null);
        Answer {
            id,
            status,
            body,
            took: started.elapsed(),
        }
    }))
    .await
}

/// An api publishing through `proxy`, one event per message and one message at a time, so
/// that while the proxy is frozen events wait in the publisher's queue.
async fn api_through(env: &TestEnv, proxy: &BrokerProxy, extra: &[&str]) -> TestApi {
    let url = proxy.amqp_url();
    let mut args = vec![
        "--amqp-url",
        url.as_str(),
        "--publish-in-flight",
        "1",
        "--publish-max-batch-events",
        "1",
    ];
    args.extend(extra);
    let api = env.spawn_api_with(&args).await;
    api.wait_ready(Duration::from_secs(15)).await;
    api
}

/// With one message at a time and a stalled broker, the first events are taken into messages
/// that stay unconfirmed, and the rest time out in the queue. The first kind may be stored
/// (the 503 names the id to retry with); the second must never be: before the fix the
/// batcher published them once the broker came back, so each of those 503s was stored.
#[tokio::test]
async fn an_event_answered_503_before_it_left_the_queue_is_never_stored() {
    let env = TestEnv::new().await;
    let proxy = BrokerProxy::start().await;
    let api = api_through(&env, &proxy, &["--publish-timeout-ms", "500"]).await;
    proxy.freeze();
    let answers = post_at_once(&api, 20).await;
    proxy.thaw();
    let _worker = env.spawn_worker().await;

    let (mut may_be_stored, mut not_stored) = (HashSet::new(), HashSet::new());
    for a in &answers {
        assert_eq!(a.status, 503, "nothing can be confirmed: {}", a.body);
        let message = a.body["error"]["message"].as_str().unwrap_or_default();
        if a.body["error"]["id"].is_null() {
            assert!(message.contains("was not stored"), "{message}");
            not_stored.insert(a.id);
        } else {
            assert_eq!(a.body["error"]["id"], a.id.to_string());
            assert!(
                message.contains("may have been stored: retry with the same id"),
                "{message}"
            );
            may_be_stored.insert(a.id);
        }
    }
    assert!(
        !not_stored.is_empty(),
        "some events must time out in the queue"
    );
    // Once the broker flows again the held messages are confirmed and stored; leave time
    // for anything else the publisher would (wrongly) still send.
    env.wait_for_events(may_be_stored.len() as u64, Duration::from_secs(20))
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let stored: HashSet<Uuid> = env.events().await.into_iter().map(|e| e.id).collect();
    let published_after_503: Vec<_> = stored.intersection(&not_stored).collect();
    assert!(
        published_after_503.is_empty(),
        "answered 'not stored', stored anyway: {published_after_503:?}"
    );
    assert!(stored.is_subset(&may_be_stored));
}

/// The queue is bounded in bytes too: once the waiting events fill `EYE_PUBLISH_QUEUE_BYTES`,
/// a new event gets 503 at once instead of waiting for the publish timeout.
#[tokio::test]
async fn a_queue_full_in_bytes_answers_503_at_once() {
    let env = TestEnv::new().await;
    let proxy = BrokerProxy::start().await;
    let timeout = Duration::from_secs(3);
    let api = api_through(
        &env,
        &proxy,
        &[
            "--publish-timeout-ms",
            "3000",
            "--max-body-bytes",
            "1024",
            // A seed event's envelope is about 400 bytes: a handful fit, far below the count.
            "--publish-queue-bytes",
            "2048",
            "--publish-queue-capacity",
            "1000",
        ],
    )
    .await;
    proxy.freeze();
    let answers = post_at_once(&api, 16).await;
    proxy.thaw();

    let refused: Vec<&Answer> = answers
        .iter()
        .filter(|a| {
            a.body["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("too many events are waiting"))
        })
        .collect();
    assert!(
        (5..16).contains(&refused.len()),
        "some wait, the rest are refused: {} refused",
        refused.len()
    );
    for a in &refused {
        assert_eq!(a.status, 503);
        assert!(a.body["error"]["id"].is_null(), "refused: not stored");
        assert!(a.took < timeout / 3, "refused after {:?}", a.took);
    }
    // The ones that waited did so until the publish timeout.
    let waited = answers.iter().filter(|a| a.took >= timeout).count();
    assert_eq!(waited, answers.len() - refused.len());
}
