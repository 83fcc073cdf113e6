//! `POST /events/batch`: each event judged on its own with its answer in input order, the
//! accepted ones stored once by their ids, the limits (bytes, events, per event, the gzip
//! ratio), the quota, and a broker that stalls.

use std::collections::HashSet;
use std::io::Write;
use std::time::{Duration, Instant};

use eye_testkit::{BrokerProxy, TestEnv, seed_event, token_for};
use serde_json::{Value, json};
use uuid::Uuid;

const WITHIN: Duration = Duration::from_secs(20);

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip")
}

fn ndjson(events: &[Value]) -> Vec<u8> {
    events
        .iter()
        .flat_map(|e| {
            let mut line = serde_json::to_vec(e).expect("serialize");
            line.push(b'\n');
            line
        })
        .collect()
}

/// The accepted ids of a batch answer, in order (None where refused).
fn ids_of(answer: &Value) -> Vec<Option<Uuid>> {
    answer["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["id"].as_str().and_then(|id| id.parse().ok()))
        .collect()
}

async fn stored_ids(env: &TestEnv) -> HashSet<Uuid> {
    env.events().await.into_iter().map(|e| e.id).collect()
}

#[tokio::test]
async fn valid_events_are_stored_and_each_invalid_one_is_refused_naming_its_field() {
    let env = TestEnv::new().await;
    let api = env.spawn_api().await;
    let _worker = env.spawn_worker().await;
    let own_id = Uuid::new_v4();
    let mut with_id = seed_event();
    with_id["id"] = own_id.to_string().into();
    let mut bad_time = seed_event();
    bad_time["timestamp"] = "yesterday".into();
    let mut nul = seed_event();
    nul["data"] = json!({"tags": ["ok", "a\u{0}b"]});
    let mut no_session = seed_event();
    no_session.as_object_mut().map(|o| o.remove("session_id"));
    let batch = [
        with_id,
        bad_time,
        seed_event(),
        json!(42),
        nul,
        no_session,
        seed_event(),
    ];

    let (status, answer) = api.post_batch(&batch).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        (answer["accepted"].as_u64(), answer["refused"].as_u64()),
        (Some(3), Some(4))
    );
    let results = answer["results"].as_array().expect("results");
    let statuses: Vec<&str> = results
        .iter()
        .filter_map(|r| r["status"].as_str())
        .collect();
    assert_eq!(
        statuses,
        [
            "accepted", "refused", "accepted", "refused", "refused", "refused", "accepted"
        ]
    );
    assert_eq!(
        results[0]["id"],
        own_id.to_string(),
        "the client's id is kept"
    );
    let refusals: Vec<(&str, Option<&str>)> = [1, 3, 4, 5]
        .iter()
        .map(|&i| {
            (
                results[i]["code"].as_str().unwrap_or(""),
                results[i]["field"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        refusals,
        [
            ("invalid_field", Some("/timestamp")),
            ("malformed_json", None),
            ("invalid_field", Some("/data/tags/1")),
            ("invalid_field", Some("/session_id")),
        ]
    );
    assert!(
        results[1]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );

    let accepted: HashSet<Uuid> = ids_of(&answer).into_iter().flatten().collect();
    assert_eq!(env.wait_for_events(3, WITHIN).await, 3);
    assert_eq!(stored_ids(&env).await, accepted);
    // Refused at the edge: never published, so not dead-lettered either.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(env.event_count().await, 3);
    assert!(env.dead_letters().await.is_empty());
}

#[tokio::test]
async fn a_gzipped_ndjson_batch_is_stored_once_even_when_posted_twice() {
    let env = TestEnv::new().await;
    let api = env.spawn_api().await;
    let _worker = env.spawn_worker().await;
    let events: Vec<Value> = (0..500)
        .map(|_| {
            let mut event = seed_event();
            event["id"] = Uuid::now_v7().to_string().into();
            event
        })
        .collect();
    let mut body = ndjson(&events);
    body.extend_from_slice(b"\n{not json\n\n");

    let mut answers = Vec::new();
    for _ in 0..2 {
        let (status, headers, answer) = api
            .post_batch_raw(gzip(&body), "application/x-ndjson", Some("gzip"))
            .await;
        assert_eq!(status, 200, "{answer}");
        assert!(headers.contains_key("ratelimit-remaining"));
        assert_eq!(answer["accepted"], 500);
        assert_eq!(answer["results"][500]["code"], "malformed_json");
        answers.push(ids_of(&answer));
    }
    assert_eq!(answers[0], answers[1], "the same ids both times");
    let sent: HashSet<Uuid> = events
        .iter()
        .filter_map(|e| e["id"].as_str().and_then(|id| id.parse().ok()))
        .collect();
    assert_eq!(env.wait_for_events(500, WITHIN).await, 500);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(env.event_count().await, 500, "the second post added no row");
    assert_eq!(stored_ids(&env).await, sent);
}

#[tokio::test]
async fn batches_over_a_limit_are_refused_whole_with_a_json_body() {
    let env = TestEnv::new().await;
    let api = env
        .spawn_api_with(&[
            "--batch-max-events",
            "5",
            "--batch-max-bytes",
            "4096",
            "--max-body-bytes",
            "1024",
        ])
        .await;
    api.wait_ready(Duration::from_secs(15)).await;
    let six: Vec<Value> = (0..6).map(|_| seed_event()).collect();
    let (status, body) = api.post_batch(&six).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (413, Some("too_many_events"))
    );

    let mut fat = seed_event();
    fat["data"] = json!({"blob": "x".repeat(5000)});
    let (status, body) = api.post_batch(&[fat.clone()]).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (413, Some("payload_too_large"))
    );
    // The limit holds on the decompressed size, whatever the compressed one.
    let compressed = gzip(&serde_json::to_vec(&[fat]).expect("json"));
    assert!(compressed.len() < 1024);
    let (status, _, body) = api
        .post_batch_raw(compressed, "application/json", Some("gzip"))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (413, Some("payload_too_large"))
    );

    // One event over the single-event limit is refused alone.
    let mut big = seed_event();
    big["data"] = json!({"blob": "y".repeat(1500)});
    let (status, body) = api.post_batch(&[seed_event(), big]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["results"][0]["status"], "accepted");
    assert_eq!(body["results"][1]["code"], "payload_too_large");

    // (body, Content-Type, Content-Encoding, status, code)
    type Case<'a> = (&'a [u8], &'a str, Option<&'a str>, u16, &'a str);
    let cases: [Case; 5] = [
        (b"[]", "application/json", None, 400, "empty_batch"),
        (
            b"{\"a\":1}",
            "application/json",
            None,
            400,
            "malformed_json",
        ),
        (b"[{", "application/json", None, 400, "malformed_json"),
        (b"[]", "text/plain", None, 415, "unsupported_media_type"),
        (
            b"[]",
            "application/json",
            Some("br"),
            415,
            "unsupported_media_type",
        ),
    ];
    for (body, content_type, encoding, status, code) in cases {
        let (got, _, answer) = api
            .post_batch_raw(body.to_vec(), content_type, encoding)
            .await;
        assert_eq!(
            (got, answer["error"]["code"].as_str()),
            (status, Some(code)),
            "{answer}"
        );
    }
}

#[tokio::test]
async fn a_gzip_bomb_is_refused_with_413_without_inflating_it() {
    // 1 GB of spaces as 1,024 gzip members of 1 MiB each (a gzip stream may hold several):
    // about 1 MB on the wire, inflated whole it would fill the memory.
    let member = gzip(&vec![b' '; 1 << 20]);
    let bomb = member.repeat(1024);
    assert!(bomb.len() < 2 << 20, "{} bytes", bomb.len());
    let env = TestEnv::new().await;
    let api = env.spawn_api().await;

    // The 1 GB bomb reaches the 5 MiB limit before the ratio guard (its ~1 MB may inflate
    // 100 times); 40 members (40 MB in ~40 kB) hit the ratio guard first.
    let small_bomb = member.repeat(40);
    for (bomb, says) in [(bomb, "limit"), (small_bomb, "inflates")] {
        let started = Instant::now();
        let (status, _, body) = api
            .post_batch_raw(bomb, "application/json", Some("gzip"))
            .await;
        assert_eq!(status, 413, "{body}");
        assert_eq!(body["error"]["code"], "payload_too_large");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{body}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }
    // A plain batch still goes through afterwards.
    let (status, _) = api.post_batch(&[seed_event()]).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_batch_costs_its_valid_events_of_the_quota() {
    let env = TestEnv::new().await;
    env.register_app("metered").await;
    env.set_rate_limit("metered", 1, 10).await;
    let api = env.spawn_api().await;
    let token = token_for("metered", &["events:write"]);
    let post = |events: Vec<Value>| {
        let request = api
            .client
            .post(api.url("/events/batch"))
            .bearer_auth(&token)
            .json(&events);
        async move {
            let response = request.send().await.expect("sent");
            let status = response.status().as_u16();
            let remaining = response
                .headers()
                .get("ratelimit-remaining")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            (
                status,
                remaining,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let eleven: Vec<Value> = (0..11).map(|_| seed_event()).collect();
    let (status, _, body) = post(eleven).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (413, Some("too_many_events"))
    );

    // Six valid and two invalid events cost six.
    let mut six = vec![json!(1), json!({})];
    six.extend((0..6).map(|_| seed_event()));
    let (status, remaining, body) = post(six).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(remaining.as_deref(), Some("4"));
    let five: Vec<Value> = (0..5).map(|_| seed_event()).collect();
    let (status, _, body) = post(five).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (429, Some("rate_limited"))
    );

    let read_only = token_for("metered", &["events:read"]);
    let response = api
        .client
        .post(api.url("/events/batch"))
        .bearer_auth(&read_only)
        .json(&[seed_event()])
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 403);
}

/// The broker stalls mid-batch: the whole batch is 503 and names the ids to retry with;
/// once it flows again, a retry with those ids is answered 200 and every event is stored
/// exactly once.
#[tokio::test]
async fn a_stalled_broker_fails_the_whole_batch_and_a_retry_with_its_ids_stores_each_once() {
    let env = TestEnv::new().await;
    let proxy = BrokerProxy::start().await;
    let url = proxy.amqp_url();
    let api = env
        .spawn_api_with(&["--amqp-url", url.as_str(), "--publish-timeout-ms", "700"])
        .await;
    api.wait_ready(Duration::from_secs(15)).await;
    let events: Vec<Value> = (0..300).map(|_| seed_event()).collect();

    proxy.freeze();
    let (status, answer) = api.post_batch(&events).await;
    assert_eq!(status, 503, "{answer}");
    assert_eq!(answer["error"]["code"], "unavailable");
    let ids: Vec<Uuid> = answer["error"]["ids"]
        .as_array()
        .expect("ids: some events may have been stored")
        .iter()
        .filter_map(|id| id.as_str().and_then(|id| id.parse().ok()))
        .collect();
    assert_eq!(ids.len(), 300);
    proxy.thaw();
    let _worker = env.spawn_worker().await;

    let retry: Vec<Value> = events
        .iter()
        .zip(&ids)
        .map(|(event, id)| {
            let mut event = event.clone();
            event["id"] = id.to_string().into();
            event
        })
        .collect();
    let (status, answer) = api.post_batch(&retry).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        ids_of(&answer),
        ids.iter().copied().map(Some).collect::<Vec<_>>()
    );
    assert_eq!(env.wait_for_events(300, WITHIN).await, 300);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(env.event_count().await, 300, "no event stored twice");
    assert_eq!(stored_ids(&env).await, ids.into_iter().collect());
}

/// No broker at all: nothing can have been published, and the 503 says so (no `ids`).
#[tokio::test]
async fn without_a_broker_a_batch_is_503_and_nothing_was_stored() {
    let env = TestEnv::new().await;
    let api = env
        .spawn_api_with(&["--amqp-url", "amqp://guest:guest@127.0.0.1:1/%2f"])
        .await;
    let (status, answer) = api.post_batch(&[seed_event(), seed_event()]).await;
    assert_eq!(status, 503, "{answer}");
    assert!(answer["error"]["ids"].is_null(), "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("no event of the batch was stored")),
        "{answer}"
    );
}
