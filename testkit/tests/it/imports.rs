//! Bulk imports (issue 14): deduplication by id and by a natural key (case-insensitive, first
//! or last wins), a second import adds nothing, refused rows as CSV, cancel, progress events
//! with Last-Event-ID, scoping, and a worker killed mid-file resuming with exact counts.

use std::time::{Duration, Instant};

use eye_core::entity::event;
use eye_testkit::{TestApi, TestEnv, token_for};
use futures::StreamExt;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::Value;
use uuid::Uuid;

const WITHIN: Duration = Duration::from_secs(60);
const WORKER_FLAGS: &[&str] = &["--import-poll-ms", "50"];
const SID: &str = "e2085be5-9137-4e4e-80b5-f1ffddc25423";

async fn upload(api: &TestApi, token: &str, query: &str, body: String) -> (u16, Value) {
    let response = api
        .client
        .post(api.url(&format!("/imports?{query}")))
        .bearer_auth(token)
        .header("content-type", "text/csv")
        .body(body)
        .send()
        .await
        .expect("request sent");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn wait_finished(api: &TestApi, id: &str) -> Value {
    let deadline = Instant::now() + WITHIN;
    loop {
        let (status, import) = api.get(&format!("/imports/{id}")).await;
        assert_eq!(status, 200, "{import}");
        let state = import["state"].as_str().unwrap_or_default().to_owned();
        if !["queued", "running"].contains(&state.as_str()) {
            return import;
        }
        assert!(Instant::now() < deadline, "import still {state}: {import}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn counts(import: &Value) -> [i64; 6] {
    [
        "rows_read",
        "accepted",
        "refused",
        "stored",
        "duplicates",
        "suppressed",
    ]
    .map(|k| import[k].as_i64().unwrap_or(-1))
}

/// A shop's file: SKU-1 twice (differing in case, different prices), SKU-2, a bad timestamp.
fn shop_csv() -> String {
    let mut csv = String::from("sid,category,name,ts,sku,price\n");
    csv.push_str(&format!("{SID},shop,sku,2024-01-01 10:00:00,SKU-1,1.00\n"));
    csv.push_str(&format!("{SID},shop,sku,2024-01-01 10:00:00,SKU-2,2.00\n"));
    csv.push_str(&format!("{SID},shop,sku,yesterday,SKU-3,3.00\n"));
    csv.push_str(&format!("{SID},shop,sku,2024-01-02 10:00:00,sku-1,9.00\n"));
    csv
}

const SHOP_QUERY: &str = "session_id=sid&timestamp=ts&dedup_key=sku&case_insensitive=true";

async fn price_of_sku1(env: &TestEnv) -> String {
    let id = eye_core::import::derive_id("test-app", &["SKU-1"], true);
    let row = env.event(id).await.expect("SKU-1 stored");
    row.data["price"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn a_natural_key_ignoring_case_keeps_the_first_row_and_a_second_import_adds_nothing() {
    let env = TestEnv::new().await;
    let api = env.spawn_api().await;
    let _worker = env.spawn_worker_with(WORKER_FLAGS).await;
    let (status, import) = upload(&api, &api.token, SHOP_QUERY, shop_csv()).await;
    assert_eq!(status, 202, "{import}");
    assert_eq!(import["staged_rows"], 4);
    let id = import["id"].as_str().expect("id").to_owned();
    let done = wait_finished(&api, &id).await;
    assert_eq!(done["state"], "done", "{done}");
    assert_eq!(counts(&done), [4, 3, 1, 2, 1, 0], "{done}");
    assert_eq!(env.event_count().await, 2);
    assert_eq!(price_of_sku1(&env).await, "1.00");

    // The refused row, as CSV: row number, the column to blame, the record as read.
    let refused = api
        .client
        .get(api.url(&format!("/imports/{id}/refused")))
        .bearer_auth(&api.token)
        .send()
        .await
        .expect("sent");
    assert_eq!(refused.status(), 200);
    let text = refused.text().await.expect("text");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "row,column,message,record");
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[1].starts_with("3,ts,"), "{text}");
    assert!(
        lines[1].contains("yesterday") && lines[1].contains("SKU-3"),
        "{text}"
    );

    let (status, again) = upload(&api, &api.token, SHOP_QUERY, shop_csv()).await;
    assert_eq!(status, 202);
    let again = wait_finished(&api, again["id"].as_str().expect("id")).await;
    assert_eq!(counts(&again), [4, 3, 1, 0, 3, 0], "{again}");
    assert_eq!(env.event_count().await, 2);
}

#[tokio::test]
async fn with_keep_last_the_last_row_of_a_key_wins_across_imports_too() {
    let env = TestEnv::new().await;
    let api = env.spawn_api().await;
    let _worker = env.spawn_worker_with(WORKER_FLAGS).await;
    let query = format!("{SHOP_QUERY}&keep=last");
    let (_, import) = upload(&api, &api.token, &query, shop_csv()).await;
    let done = wait_finished(&api, import["id"].as_str().expect("id")).await;
    assert_eq!(counts(&done), [4, 3, 1, 2, 1, 0], "{done}");
    assert_eq!(price_of_sku1(&env).await, "9.00");
    // A later file's row replaces the stored one; no row is added.
    let later =
        format!("sid,category,name,ts,sku,price\n{SID},shop,sku,2024-03-01 10:00:00,Sku-1,5.00\n");
    let (_, import) = upload(&api, &api.token, &query, later).await;
    let done = wait_finished(&api, import["id"].as_str().expect("id")).await;
    assert_eq!(counts(&done), [1, 1, 0, 0, 1, 0], "{done}");
    assert_eq!(price_of_sku1(&env).await, "5.00");
    assert_eq!(env.event_count().await, 2);
}

#[tokio::test]
async fn rows_with_an_id_are_deduplicated_by_it_and_ndjson_works_the_same() {
    let env = TestEnv::new().await;
    let api = env.spawn_api().await;
    let _worker = env.spawn_worker_with(WORKER_FLAGS).await;
    let a = Uuid::now_v7();
    let b = Uuid::now_v7();
    let csv = format!(
        "id,session_id,category,name,timestamp,payload\n\
         {a},{SID},c,n,2024-01-01T00:00:00Z,\"{{\"\"k\"\": 1}}\"\n\
         {b},{SID},c,n,2024-01-01T00:00:00Z,\"{{\"\"k\"\": 2}}\"\n\
         {a},{SID},c,other,2024-01-01T00:00:00Z,\"{{\"\"k\"\": 3}}\"\n\
         {b},{SID},c,n,2024-01-01T00:00:00Z,not json\n"
    );
    let (status, import) = upload(&api, &api.token, "data=payload", csv).await;
    assert_eq!(status, 202, "{import}");
    let done = wait_finished(&api, import["id"].as_str().expect("id")).await;
    assert_eq!(counts(&done), [4, 3, 1, 2, 1, 0], "{done}");
    let first = env.event(a).await.expect("a");
    assert_eq!(
        (first.name.as_str(), &first.data["k"]),
        ("n", &Value::from(1))
    );

    let ndjson = format!(
        "{{\"session_id\":\"{SID}\",\"category\":\"c\",\"name\":\"n\",\"data\":{{\"sku\":\"X\"}},\"timestamp\":\"2024-01-01T00:00:00Z\"}}\n\
         \n\
         {{\"session_id\":\"{SID}\",\"category\":\"c\",\"name\":\"n\",\"data\":{{\"sku\":\"x\"}},\"timestamp\":\"2024-01-01T00:00:00Z\"}}\n\
         {{\"session_id\":\"nope\"}}\n"
    );
    let response = api
        .client
        .post(api.url("/imports?dedup_key=sku&case_insensitive=true"))
        .bearer_auth(&api.token)
        .header("content-type", "application/x-ndjson")
        .body(ndjson)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 202);
    let import: Value = response.json().await.expect("json");
    let done = wait_finished(&api, import["id"].as_str().expect("id")).await;
    assert_eq!(counts(&done), [3, 2, 1, 1, 1, 0], "{done}");
    assert_eq!(env.event_count().await, 3);
}

#[tokio::test]
async fn a_mapping_naming_a_missing_column_is_refused_and_imports_are_scoped_to_their_application()
{
    let env = TestEnv::new().await;
    let api = env.spawn_api().await;
    let (status, body) = upload(
        &api,
        &api.token,
        "session_id=sid&timestamp=when",
        shop_csv(),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["field"], "timestamp");
    let (status, import) = upload(&api, &api.token, SHOP_QUERY, shop_csv()).await;
    assert_eq!(status, 202);
    let id = import["id"].as_str().expect("id");
    let ops = token_for("ops", &["events:write"]);
    let (status, _) = api.get_as(&ops, &format!("/imports/{id}")).await;
    assert_eq!(status, 404);
    let (status, list) = api.get_as(&ops, "/imports").await;
    assert_eq!((status, list.as_array().map(Vec::len)), (200, Some(0)));
    let gone = api
        .client
        .delete(api.url(&format!("/imports/{id}")))
        .bearer_auth(&ops)
        .send()
        .await
        .expect("sent");
    assert_eq!(gone.status(), 404);
    let (status, list) = api.get("/imports").await;
    assert_eq!((status, list.as_array().map(Vec::len)), (200, Some(1)));
    let reader = token_for("test-app", &["events:read"]);
    assert_eq!(api.get_as(&reader, "/imports").await.0, 403);
}

#[tokio::test]
async fn a_cancelled_import_stores_nothing_more() {
    let env = TestEnv::new().await;
    let api = env.spawn_api().await;
    let (_, import) = upload(&api, &api.token, SHOP_QUERY, shop_csv()).await;
    let id = import["id"].as_str().expect("id").to_owned();
    let cancelled = api
        .client
        .delete(api.url(&format!("/imports/{id}")))
        .bearer_auth(&api.token)
        .send()
        .await
        .expect("sent");
    assert_eq!(cancelled.status(), 200);
    let body: Value = cancelled.json().await.expect("json");
    assert_eq!(body["state"], "cancelled");
    let _worker = env.spawn_worker_with(WORKER_FLAGS).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, after) = api.get(&format!("/imports/{id}")).await;
    assert_eq!(after["state"], "cancelled");
    assert_eq!(after["rows_read"], 0);
    assert_eq!(env.event_count().await, 0);
}

/// Reads server-sent events until `stop` says so: (event, id, data) each, with arrival times.
async fn read_events(
    api: &TestApi,
    id: &str,
    last_event_id: Option<&str>,
    mut stop: impl FnMut(&str) -> bool,
) -> Vec<(String, String, Value, Instant)> {
    let mut request = api
        .client
        .get(api.url(&format!("/imports/{id}/events")))
        .bearer_auth(&api.token);
    if let Some(last) = last_event_id {
        request = request.header("last-event-id", last);
    }
    let response = request.send().await.expect("sent");
    assert_eq!(response.status(), 200);
    let mut stream = response.bytes_stream();
    let mut buffer = String::new();
    let mut out = Vec::new();
    let deadline = Instant::now() + WITHIN;
    while let Ok(Some(Ok(bytes))) = tokio::time::timeout_at(deadline.into(), stream.next()).await {
        buffer.push_str(&String::from_utf8_lossy(&bytes));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let (mut kind, mut eid, mut data) = (String::new(), String::new(), Value::Null);
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    kind = v.trim().to_owned();
                } else if let Some(v) = line.strip_prefix("id:") {
                    eid = v.trim().to_owned();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data = serde_json::from_str(v.trim()).unwrap_or(Value::Null);
                }
            }
            if kind.is_empty() {
                continue;
            }
            let done = stop(&kind);
            out.push((kind, eid, data, Instant::now()));
            if done {
                return out;
            }
        }
    }
    out
}

#[tokio::test]
async fn progress_events_come_every_half_second_and_last_event_id_resumes() {
    let env = TestEnv::new().await;
    let api = env.spawn_api().await;
    let (_, import) = upload(&api, &api.token, SHOP_QUERY, shop_csv()).await;
    let id = import["id"].as_str().expect("id").to_owned();
    // No worker yet: the import waits queued, and its stream still speaks.
    let mut n = 0;
    let queued = read_events(&api, &id, None, |_| {
        n += 1;
        n >= 4
    })
    .await;
    assert_eq!(queued.len(), 4);
    assert!(
        queued
            .iter()
            .all(|(kind, _, data, _)| kind == "progress" && data["state"] == "queued")
    );
    for pair in queued.windows(2) {
        let gap = pair[1].3 - pair[0].3;
        assert!(gap <= Duration::from_millis(600), "gap {gap:?}");
    }
    let seen = queued[0].1.clone();
    let _worker = env.spawn_worker_with(WORKER_FLAGS).await;
    let rest = read_events(&api, &id, Some(&seen), |kind| kind == "end").await;
    let (kind, last_id, data, _) = rest.last().expect("events");
    assert_eq!(kind, "end");
    assert_eq!(data["state"], "done");
    assert_eq!(data["stored"], 2);
    let versions: Vec<i64> = rest
        .iter()
        .map(|e| e.1.parse().expect("numeric id"))
        .collect();
    let seen: i64 = seen.parse().expect("numeric");
    assert!(
        versions.iter().all(|v| *v > seen),
        "{versions:?} after {seen}"
    );
    // Resuming after the end: only the end again, nothing replayed before it.
    let after = read_events(&api, &id, Some(last_id), |kind| kind == "end").await;
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].0, "end");
}

#[tokio::test]
async fn a_worker_killed_mid_file_is_replaced_and_the_counts_are_exact() {
    let env = TestEnv::new().await;
    let api = env.spawn_api().await;
    // The ledger: 30,000 rows, every 10th a case-variant duplicate of the row before, every
    // 50th an invalid timestamp.
    let rows = 30_000;
    let mut csv = String::from("sid,category,name,ts,sku\n");
    let (mut unique, mut refused, mut duplicates) = (0i64, 0i64, 0i64);
    for i in 0..rows {
        let (sku, ts) = if i % 50 == 49 {
            refused += 1;
            (format!("SKU-{i}"), "never".to_owned())
        } else if i % 10 == 9 {
            duplicates += 1;
            (format!("sku-{}", i - 1), "2024-01-01 00:00:00".to_owned())
        } else {
            unique += 1;
            (format!("SKU-{i}"), "2024-01-01 00:00:00".to_owned())
        };
        csv.push_str(&format!("{SID},shop,sku,{ts},{sku}\n"));
    }
    // i % 50 == 49 is also i % 10 == 9: those are refused, not duplicates (counted once above).
    let (status, import) = upload(&api, &api.token, SHOP_QUERY, csv).await;
    assert_eq!(status, 202, "{import}");
    let id = import["id"].as_str().expect("id").to_owned();
    let flags = [
        ("EYE_IMPORT_CHUNK", "500"),
        ("EYE_IMPORT_LEASE_SECS", "2"),
        ("EYE_IMPORT_POLL_MS", "50"),
    ];
    let mut first = env.spawn_worker_process_with(&flags);
    let deadline = Instant::now() + WITHIN;
    loop {
        let (_, now) = api.get(&format!("/imports/{id}")).await;
        let read = now["rows_read"].as_i64().unwrap_or(0);
        if read >= 2_000 {
            assert!(read < rows, "finished before the kill: {now}");
            break;
        }
        assert!(Instant::now() < deadline, "no progress: {now}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.kill();
    let (_, at_kill) = api.get(&format!("/imports/{id}")).await;
    let _second = env.spawn_worker_process_with(&flags);
    let done = wait_finished(&api, &id).await;
    assert_eq!(done["state"], "done", "{done}");
    assert!(at_kill["rows_read"].as_i64() < Some(rows), "{at_kill}");
    assert_eq!(
        counts(&done),
        [rows, rows - refused, refused, unique, duplicates, 0],
        "{done}"
    );
    let stored = event::Entity::find()
        .filter(event::Column::AppId.eq("test-app"))
        .count(&env.db)
        .await
        .expect("count");
    assert_eq!(stored as i64, unique);
    let text = api
        .client
        .get(api.url(&format!("/imports/{id}/refused")))
        .bearer_auth(&api.token)
        .send()
        .await
        .expect("sent")
        .text()
        .await
        .expect("text");
    assert_eq!(text.lines().count() as i64, refused + 1);
}
