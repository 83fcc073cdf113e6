//! `POST /events/batch` with `Content-Encoding: zstd`: stored once by id like any batch, a
//! zstd bomb refused 413 by the ratio guard without inflating it, other encodings 415.

use std::collections::HashSet;
use std::io::Write;
use std::time::{Duration, Instant};

use eye_testkit::{TestEnv, seed_event};
use serde_json::Value;
use uuid::Uuid;

const WITHIN: Duration = Duration::from_secs(20);

fn zstd(bytes: &[u8]) -> Vec<u8> {
    zstd::encode_all(bytes, 3).expect("zstd")
}

fn with_ids(n: usize) -> Vec<Value> {
    (0..n)
        .map(|_| {
            let mut event = seed_event();
            event["id"] = Uuid::now_v7().to_string().into();
            event
        })
        .collect()
}

fn ids(events: &[Value]) -> HashSet<Uuid> {
    events
        .iter()
        .filter_map(|e| e["id"].as_str().and_then(|id| id.parse().ok()))
        .collect()
}

#[tokio::test]
async fn zstd_batches_as_an_array_and_as_ndjson_are_stored_once() {
    let env = TestEnv::new().await;
    let api = env.spawn_api().await;
    let _worker = env.spawn_worker().await;
    let array = with_ids(300);
    let lines = with_ids(200);
    let mut ndjson = Vec::new();
    for event in &lines {
        serde_json::to_writer(&mut ndjson, event).expect("json");
        ndjson.push(b'\n');
    }
    ndjson.extend_from_slice(b"{not json\n");
    let array_body = zstd(&serde_json::to_vec(&array).expect("json"));
    for _ in 0..2 {
        let (status, _, answer) = api
            .post_batch_raw(array_body.clone(), "application/json", Some("zstd"))
            .await;
        assert_eq!((status, &answer["accepted"]), (200, &Value::from(300)));
        let (status, _, answer) = api
            .post_batch_raw(zstd(&ndjson), "application/x-ndjson", Some("ZSTD"))
            .await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["accepted"], 200);
        assert_eq!(answer["results"][200]["code"], "malformed_json");
    }
    assert_eq!(env.wait_for_events(500, WITHIN).await, 500);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stored: HashSet<Uuid> = env.events().await.into_iter().map(|e| e.id).collect();
    let sent: HashSet<Uuid> = ids(&array).union(&ids(&lines)).copied().collect();
    assert_eq!(
        stored, sent,
        "every event once, the second posts added nothing"
    );
}

#[tokio::test]
async fn a_zstd_bomb_is_refused_413_and_unknown_encodings_415() {
    // 1 GiB of spaces streams into about 40 kB of zstd (run-length blocks): inflated whole it
    // would fill the memory; the ratio guard stops it at 100 times its size.
    let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), 1).expect("encoder");
    let mib = vec![b' '; 1 << 20];
    for _ in 0..1024 {
        encoder.write_all(&mib).expect("compress");
    }
    let bomb = encoder.finish().expect("finish");
    assert!(bomb.len() < 1 << 20, "{} bytes", bomb.len());
    let env = TestEnv::new().await;
    let api = env.spawn_api().await;

    let started = Instant::now();
    let (status, _, body) = api
        .post_batch_raw(bomb, "application/json", Some("zstd"))
        .await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"]["code"], "payload_too_large");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("inflates more than 100 times"), "{body}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    // Over the byte limit (5 MiB) within the ratio: the message names the limit.
    let noise: Vec<u8> = (0..1_500_000u32)
        .flat_map(|i| i.wrapping_mul(2_654_435_761).to_le_bytes())
        .collect();
    let (status, _, body) = api
        .post_batch_raw(zstd(&noise), "application/json", Some("zstd"))
        .await;
    assert_eq!(status, 413, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("5242880-byte limit"), "{body}");

    let (status, _, body) = api
        .post_batch_raw(b"[1,2]".to_vec(), "application/json", Some("zstd"))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("malformed_json")),
        "not zstd at all: {body}"
    );
    let plain = serde_json::to_vec(&[seed_event()]).expect("json");
    for encoding in ["br", "compress", "gzip, zstd"] {
        let (status, _, body) = api
            .post_batch_raw(zstd(&plain), "application/json", Some(encoding))
            .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (415, Some("unsupported_media_type")),
            "{encoding}: {body}"
        );
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("gzip, zstd or absent"), "{body}");
    }
    // The api is unharmed: a small zstd batch still goes through.
    let (status, _, body) = api
        .post_batch_raw(zstd(&plain), "application/json", Some("zstd"))
        .await;
    assert_eq!(
        (status, &body["accepted"]),
        (200, &Value::from(1)),
        "{body}"
    );
}

#[tokio::test]
async fn the_client_sends_zstd_batches_and_each_event_is_stored_once() {
    let env = TestEnv::new().await;
    let api = env.spawn_api().await;
    let _worker = env.spawn_worker().await;
    let client = eye_client::Client::builder(api.url("/"), &api.token)
        .compression(eye_client::Compression::Zstd)
        .max_batch_events(250)
        .build()
        .expect("client");
    let events: Vec<eye_client::Event> = (0..600)
        .map(|i| {
            eye_client::Event::new(Uuid::now_v7(), "page interaction", "pageview").data(
                serde_json::json!({"host": "www.consumeraffairs.com", "path": format!("/p/{i}")}),
            )
        })
        .collect();
    let report = client.send_batch(events).await;
    let reasons: Vec<String> = report
        .undelivered
        .iter()
        .take(3)
        .map(|u| u.reason.to_string())
        .collect();
    assert_eq!(
        (report.accepted.len(), report.undelivered.len()),
        (600, 0),
        "{reasons:?}"
    );
    assert_eq!(env.wait_for_events(600, WITHIN).await, 600);
    let stored: HashSet<Uuid> = env.events().await.into_iter().map(|e| e.id).collect();
    assert_eq!(stored, report.accepted.iter().copied().collect());
}
