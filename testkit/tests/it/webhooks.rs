//! Webhooks (issue 15): subscriptions scoped to their application, signed deliveries
//! (verified with the client crate's verifier) through filters, retries on a compressed
//! schedule, Retry-After, 410, auto-disable, FIFO, the test trigger, replay, address
//! refusals, the `event.erased` notification, and a chaos run with a ledger by webhook-id.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use eye_client::webhooks::Verifier;
use eye_testkit::{Answer, Received, Receiver, TestApi, TestEnv, seed_event, token_for};
use serde_json::{Value, json};
use uuid::Uuid;

const WITHIN: Duration = Duration::from_secs(30);
const WORKER_FLAGS: &[&str] = &["--webhook-refresh-ms", "50", "--erasure-poll-ms", "50"];
const API_FLAGS: &[&str] = &["--webhook-allow-nets", "127.0.0.1/32"];

fn token(app: &str) -> String {
    token_for(
        app,
        &[
            "events:write",
            "events:read",
            "events:erase",
            "webhooks:write",
            "webhooks:read",
        ],
    )
}

async fn call(
    api: &TestApi,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut request = api.client.request(method, api.url(path)).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request sent");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Subscribes `url` for test-app; returns (id, secret). Waits for the worker's cache.
async fn subscribe(api: &TestApi, body: Value) -> (String, String) {
    let (status, created) = call(api, &token("test-app"), "POST", "/webhooks", Some(body)).await;
    assert_eq!(status, 201, "{created}");
    let secret = created["secret"].as_str().expect("secret").to_owned();
    assert!(secret.starts_with("whsec_"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    (created["id"].as_str().expect("id").to_owned(), secret)
}

async fn send(api: &TestApi, category: &str, name: &str) -> Uuid {
    let mut body = seed_event();
    body["category"] = json!(category);
    body["name"] = json!(name);
    let response = api.post_event_as(&token("test-app"), &body).await;
    assert_eq!(response.status(), 202);
    let body: Value = response.json().await.expect("json");
    body["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("id")
}

fn event_id(received: &Received) -> Uuid {
    received.json()["data"]["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("data.id")
}

fn verify(secret: &str, r: &Received) -> bool {
    Verifier::new(secret)
        .expect("secret")
        .verify(&r.webhook_id, &r.timestamp, &r.signature, &r.body)
        .is_ok()
}

async fn stack(env: &TestEnv) -> (TestApi, eye_testkit::TestWorker) {
    let api = env.spawn_api_with(API_FLAGS).await;
    api.wait_ready(Duration::from_secs(15)).await;
    (api, env.spawn_worker_with(WORKER_FLAGS).await)
}

#[tokio::test]
async fn filtered_events_arrive_signed_once_and_subscriptions_are_private_and_checked() {
    let env = TestEnv::new().await;
    let (api, _worker) = stack(&env).await;
    let _dispatcher = env.spawn_dispatcher().await;
    let receiver = Receiver::start().await;
    let (id, secret) = subscribe(
        &api,
        json!({"url": receiver.url("/hook"), "description": "pages and submits",
               "filters": [{"category": "shop"}, {"category": "mail", "name": "open"}]}),
    )
    .await;

    // Another application sees nothing of it; bad fields are refused, naming them.
    let ops = token("ops");
    assert_eq!(
        call(&api, &ops, "GET", &format!("/webhooks/{id}"), None)
            .await
            .0,
        404
    );
    let (_, list) = call(&api, &ops, "GET", "/webhooks", None).await;
    assert_eq!(list["data"].as_array().map(Vec::len), Some(0));
    let read_only = token_for("test-app", &["webhooks:read"]);
    let (status, _) = call(
        &api,
        &read_only,
        "POST",
        "/webhooks",
        Some(json!({"url": "https://x.example"})),
    )
    .await;
    assert_eq!(status, 403);
    let (status, body) = call(
        &api,
        &token("test-app"),
        "POST",
        "/webhooks",
        Some(json!({"url": "ftp://x"})),
    )
    .await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (422, Some("url"))
    );
    let (status, body) = call(
        &api,
        &token("test-app"),
        "POST",
        "/webhooks",
        Some(json!({"url": "https://x.example", "filters": [{"name": ""}]})),
    )
    .await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (422, Some("/filters/0/name"))
    );

    let wanted = [
        send(&api, "shop", "view").await,
        send(&api, "mail", "open").await,
        send(&api, "shop", "buy").await,
    ];
    let unwanted = send(&api, "mail", "close").await;
    env.wait_for_events(4, WITHIN).await;
    let got = receiver.wait_for(3, WITHIN).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got_after = receiver.received();
    assert_eq!(got_after.len(), 3, "only the filtered events: {got:?}");
    let ids: HashSet<Uuid> = got_after.iter().map(event_id).collect();
    assert_eq!(ids, wanted.iter().copied().collect());
    assert!(!ids.contains(&unwanted));
    for r in &got_after {
        assert!(verify(&secret, r), "signature of {}", r.webhook_id);
        assert!(!verify("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", r));
        assert_eq!(r.json()["type"], "event.stored");
    }

    // Rotation: both secrets verify during the grace period.
    let (status, rotated) = call(
        &api,
        &token("test-app"),
        "POST",
        &format!("/webhooks/{id}/rotate"),
        Some(json!({"grace_secs": 3600})),
    )
    .await;
    assert_eq!(status, 200, "{rotated}");
    let new_secret = rotated["secret"].as_str().expect("secret").to_owned();
    assert_ne!(new_secret, secret);
    tokio::time::sleep(Duration::from_millis(300)).await;
    send(&api, "shop", "view").await;
    let got = receiver.wait_for(4, WITHIN).await;
    let last = &got[3];
    assert_eq!(last.signature.split(' ').count(), 2, "{}", last.signature);
    assert!(verify(&new_secret, last) && verify(&secret, last));

    let (status, attempts) = call(
        &api,
        &token("test-app"),
        "GET",
        &format!("/webhooks/{id}/attempts"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let attempts = attempts["data"].as_array().expect("attempts").clone();
    assert_eq!(attempts.len(), 4);
    assert!(
        attempts
            .iter()
            .all(|a| a["status_code"] == 200 && a["response"] == "ok from the test receiver")
    );
}

#[tokio::test]
async fn failures_are_retried_on_schedule_honouring_retry_after_and_410_disables() {
    let env = TestEnv::new().await;
    let (api, _worker) = stack(&env).await;
    let _dispatcher = env.spawn_dispatcher().await;
    let receiver = Receiver::start().await;
    let (id, _) = subscribe(&api, json!({"url": receiver.url("/hook")})).await;

    receiver.answer_once(Answer {
        status: 500,
        ..Answer::default()
    });
    receiver.answer_once(Answer {
        status: 503,
        retry_after: Some("2".into()),
        ..Answer::default()
    });
    let event = send(&api, "page interaction", "pageview").await;
    let got = receiver.wait_for(3, WITHIN).await;
    assert_eq!(got.len(), 3);
    assert!(
        got.iter()
            .all(|r| event_id(r) == event && r.webhook_id == got[0].webhook_id)
    );
    let gap = got[2].at - got[1].at;
    assert!(
        gap >= Duration::from_millis(1900),
        "Retry-After: 2 honoured, waited {gap:?}"
    );
    let (_, attempts) = call(
        &api,
        &token("test-app"),
        "GET",
        &format!("/webhooks/{id}/attempts"),
        None,
    )
    .await;
    let codes: Vec<i64> = attempts["data"]
        .as_array()
        .expect("a")
        .iter()
        .map(|a| a["status_code"].as_i64().unwrap_or(0))
        .collect();
    assert_eq!(codes, vec![200, 503, 500]);

    // 410: given up at once, the subscription disabled with the reason.
    receiver.answer(Answer {
        status: 410,
        ..Answer::default()
    });
    let gone = send(&api, "page interaction", "pageview").await;
    receiver.wait_for(4, WITHIN).await;
    let deadline = tokio::time::Instant::now() + WITHIN;
    let sub = loop {
        let (_, sub) = call(
            &api,
            &token("test-app"),
            "GET",
            &format!("/webhooks/{id}"),
            None,
        )
        .await;
        if sub["enabled"] == false || tokio::time::Instant::now() > deadline {
            break sub;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(sub["enabled"], false, "{sub}");
    assert_eq!(sub["disabled_reason"], "the endpoint answered 410 Gone");
    let (_, failed) = call(
        &api,
        &token("test-app"),
        "GET",
        &format!("/webhooks/{id}/deliveries?status=failed"),
        None,
    )
    .await;
    let failed = failed["data"].as_array().expect("deliveries").clone();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["event_id"], gone.to_string());
    assert_eq!(receiver.received().len(), 4, "no attempt after the 410");
}

#[tokio::test]
async fn an_endpoint_failing_longer_than_the_limit_is_disabled_with_the_reason() {
    let env = TestEnv::new().await;
    let (api, _worker) = stack(&env).await;
    let _dispatcher = env
        .spawn_dispatcher_with(&[
            "--webhook-disable-after-secs",
            "1",
            "--webhook-schedule",
            "0s,300ms,600ms,900ms,1s",
        ])
        .await;
    let receiver = Receiver::start().await;
    receiver.answer(Answer {
        status: 500,
        ..Answer::default()
    });
    let (id, _) = subscribe(&api, json!({"url": receiver.url("/hook")})).await;
    send(&api, "page interaction", "pageview").await;
    let deadline = tokio::time::Instant::now() + WITHIN;
    let sub = loop {
        let (_, sub) = call(
            &api,
            &token("test-app"),
            "GET",
            &format!("/webhooks/{id}"),
            None,
        )
        .await;
        if sub["enabled"] == false || tokio::time::Instant::now() > deadline {
            break sub;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(sub["enabled"], false, "{sub}");
    let reason = sub["disabled_reason"].as_str().unwrap_or_default();
    assert!(reason.starts_with("failing since"), "{reason}");
    assert!(sub["failing_since"].is_string());

    // Enabled again by hand: the reason and the failing time are cleared.
    let (status, sub) = call(
        &api,
        &token("test-app"),
        "PATCH",
        &format!("/webhooks/{id}"),
        Some(json!({"enabled": true})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        (
            sub["enabled"].clone(),
            sub["disabled_reason"].clone(),
            sub["failing_since"].clone()
        ),
        (json!(true), Value::Null, Value::Null)
    );
}

#[tokio::test]
async fn a_fifo_endpoint_gets_the_next_event_only_after_the_previous_succeeded() {
    let env = TestEnv::new().await;
    let (api, _worker) = stack(&env).await;
    let _dispatcher = env.spawn_dispatcher().await;
    let receiver = Receiver::start().await;
    subscribe(&api, json!({"url": receiver.url("/hook"), "fifo": true})).await;
    receiver.answer_once(Answer {
        status: 500,
        ..Answer::default()
    });
    receiver.answer_once(Answer {
        status: 500,
        ..Answer::default()
    });
    let mut sent = Vec::new();
    for _ in 0..3 {
        sent.push(send(&api, "page interaction", "pageview").await);
        env.wait_for_events(sent.len() as u64, WITHIN).await;
    }
    let got = receiver.wait_for(5, WITHIN).await;
    let order: Vec<Uuid> = got.iter().map(event_id).collect();
    assert_eq!(order, vec![sent[0], sent[0], sent[0], sent[1], sent[2]]);
}

#[tokio::test]
async fn the_test_trigger_answers_synchronously_and_private_addresses_are_refused() {
    let env = TestEnv::new().await;
    let (api, _worker) = stack(&env).await;
    let receiver = Receiver::start().await;
    let (id, secret) = subscribe(&api, json!({"url": receiver.url("/hook")})).await;
    let (status, test) = call(
        &api,
        &token("test-app"),
        "POST",
        &format!("/webhooks/{id}/test"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{test}");
    assert_eq!(
        (test["succeeded"].clone(), test["status"].clone()),
        (json!(true), json!(200))
    );
    assert_eq!(test["response"], "ok from the test receiver");
    assert!(test["latency_ms"].is_u64());
    let got = receiver.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].json()["type"], "webhook.test");
    assert!(verify(&secret, &got[0]));

    // Without the allow-list: loopback by address and by name, and link-local, are refused
    // before any connection, by the api's test and by the dispatcher.
    let strict = env.spawn_api().await;
    for url in [
        receiver.url("/hook"),
        format!("http://localhost:{}/hook", receiver.addr.port()),
        "http://169.254.169.254/latest".into(),
    ] {
        let (status, sub) = call(
            &strict,
            &token("test-app"),
            "POST",
            "/webhooks",
            Some(json!({"url": url})),
        )
        .await;
        assert_eq!(status, 201);
        let sub_id = sub["id"].as_str().expect("id");
        let (status, test) = call(
            &strict,
            &token("test-app"),
            "POST",
            &format!("/webhooks/{sub_id}/test"),
            None,
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(test["succeeded"], false);
        assert!(
            test["error"]
                .as_str()
                .unwrap_or_default()
                .contains("refused"),
            "{url}: {test}"
        );
        call(
            &strict,
            &token("test-app"),
            "DELETE",
            &format!("/webhooks/{sub_id}"),
            None,
        )
        .await;
    }
    assert_eq!(receiver.received().len(), 1, "nothing reached the receiver");
    let _dispatcher = env
        .spawn_dispatcher_with(&["--webhook-allow-nets", ""])
        .await;
    send(&api, "page interaction", "pageview").await;
    let deadline = tokio::time::Instant::now() + WITHIN;
    loop {
        let (_, attempts) = call(
            &api,
            &token("test-app"),
            "GET",
            &format!("/webhooks/{id}/attempts"),
            None,
        )
        .await;
        let refused = attempts["data"].as_array().expect("a").iter().any(|a| {
            a["trigger"] == "delivery"
                && a["error"].as_str().unwrap_or_default().contains("refused")
        });
        if refused {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no refused attempt: {attempts}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(receiver.received().len(), 1);
}

#[tokio::test]
async fn replay_resends_stored_events_with_the_same_webhook_ids() {
    let env = TestEnv::new().await;
    let (api, _worker) = stack(&env).await;
    let _dispatcher = env.spawn_dispatcher().await;
    let receiver = Receiver::start().await;
    let (id, _) = subscribe(
        &api,
        json!({"url": receiver.url("/hook"), "filters": [{"name": "pageview"}]}),
    )
    .await;
    let since = chrono::Utc::now() - chrono::Duration::minutes(1);
    for _ in 0..3 {
        send(&api, "page interaction", "pageview").await;
    }
    send(&api, "shop", "view").await;
    env.wait_for_events(4, WITHIN).await;
    let first = receiver.wait_for(3, WITHIN).await;
    let (status, replay) = call(
        &api,
        &token("test-app"),
        "POST",
        &format!(
            "/webhooks/{id}/replay?since={}",
            since
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                .replace('+', "%2B")
        ),
        None,
    )
    .await;
    assert_eq!(status, 202, "{replay}");
    assert_eq!(replay["queued"], 3);
    let all = receiver.wait_for(6, WITHIN).await;
    assert_eq!(all.len(), 6);
    let by_event = |set: &[Received]| -> HashMap<Uuid, String> {
        set.iter()
            .map(|r| (event_id(r), r.webhook_id.clone()))
            .collect()
    };
    assert_eq!(by_event(&first[..3]), by_event(&all[3..]));
    let (status, _) = call(
        &api,
        &token("test-app"),
        "POST",
        &format!("/webhooks/{id}/replay"),
        None,
    )
    .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn a_completed_erasure_is_notified_with_counts_and_never_the_data() {
    let env = TestEnv::new().await;
    let (api, _worker) = stack(&env).await;
    let _dispatcher = env.spawn_dispatcher().await;
    let receiver = Receiver::start().await;
    subscribe(
        &api,
        json!({"url": receiver.url("/hook"), "filters": [{"category": "nothing-matches"}]}),
    )
    .await;
    let session = Uuid::new_v4();
    let mut body = seed_event();
    body["session_id"] = json!(session);
    assert_eq!(
        api.post_event_as(&token("test-app"), &body).await.status(),
        202
    );
    env.wait_for_events(1, WITHIN).await;
    let (status, pending) = call(
        &api,
        &token("test-app"),
        "POST",
        "/erasures",
        Some(json!({"session_id": session, "reason": "asked"})),
    )
    .await;
    assert_eq!(status, 202, "{pending}");
    let erasure = pending["id"].as_str().expect("id").to_owned();
    let (status, _) = call(
        &api,
        &token("test-app"),
        "POST",
        &format!("/erasures/{erasure}/confirm"),
        None,
    )
    .await;
    assert_eq!(status, 202);
    let got = receiver.wait_for(1, WITHIN).await;
    assert_eq!(got.len(), 1);
    let message = got[0].json();
    assert_eq!(message["type"], "event.erased");
    assert_eq!(message["data"]["erasure_id"], erasure);
    assert_eq!(message["data"]["deleted_events"], 1);
    assert_eq!(message["data"]["filter"]["session_id"], session.to_string());
    assert!(
        !String::from_utf8_lossy(&got[0].body).contains("consumeraffairs"),
        "no erased data"
    );
}
