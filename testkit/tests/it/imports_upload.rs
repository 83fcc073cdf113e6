//! Import uploads that do not complete: over the byte limit (413, nothing staged kept), a
//! client that goes away mid-upload (the import failed, its rows dropped, nothing imported),
//! and an upload abandoned by a dead api (failed by the workers' sweeper).

use std::time::{Duration, Instant};

use eye_testkit::{TestApi, TestEnv};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use uuid::Uuid;

const WITHIN: Duration = Duration::from_secs(30);
const SID: &str = "e2085be5-9137-4e4e-80b5-f1ffddc25423";
const QUERY: &str = "session_id=sid&timestamp=ts";

/// `rows` CSV rows (about 60 bytes each) after the header.
fn csv(rows: usize) -> String {
    let mut csv = String::from("sid,category,name,ts,n\n");
    for n in 0..rows {
        csv.push_str(&format!("{SID},shop,sku,2024-01-01 10:00:00,{n:08}\n"));
    }
    csv
}

async fn scalar(env: &TestEnv, sql: &str) -> i64 {
    let row = env
        .db
        .query_one_raw(Statement::from_string(DbBackend::Postgres, sql))
        .await
        .expect("query")
        .expect("a row");
    row.try_get_by_index(0).expect("an integer")
}

/// Every import as (state, staged_rows, error).
async fn imports(env: &TestEnv) -> Vec<(String, Option<i64>, Option<String>)> {
    env.db
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT state, staged_rows, error FROM imports ORDER BY updated_at, id",
        ))
        .await
        .expect("imports")
        .iter()
        .map(|row| {
            (
                row.try_get("", "state").expect("state"),
                row.try_get("", "staged_rows").expect("staged_rows"),
                row.try_get("", "error").expect("error"),
            )
        })
        .collect()
}

async fn staged_rows(env: &TestEnv) -> i64 {
    scalar(env, "SELECT count(*) FROM import_rows").await
}

/// Polls until `ready` holds for the imports, or fails after `WITHIN`.
async fn wait_imports(
    env: &TestEnv,
    ready: impl Fn(&[(String, Option<i64>, Option<String>)]) -> bool,
) -> Vec<(String, Option<i64>, Option<String>)> {
    let deadline = Instant::now() + WITHIN;
    loop {
        let all = imports(env).await;
        if ready(&all) {
            return all;
        }
        assert!(Instant::now() < deadline, "imports: {all:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn an_upload_over_the_limit_is_413_and_leaves_no_staged_rows() {
    let env = TestEnv::new().await;
    let api = env.spawn_api_with(&["--import-max-bytes", "1000000"]).await;
    api.wait_ready(Duration::from_secs(15)).await;
    let _worker = env.spawn_worker_with(&["--import-poll-ms", "50"]).await;
    let url = api.url(&format!("/imports?{QUERY}"));

    // Declared too large: refused before anything is read or recorded.
    let response = api
        .client
        .post(&url)
        .bearer_auth(&api.token)
        .header("content-type", "text/csv")
        .body(csv(20_000))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 413);
    let body: Value = response.json().await.expect("a JSON body");
    assert_eq!(body["error"]["code"], "payload_too_large");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("1000000-byte limit"), "{body}");
    assert!(imports(&env).await.is_empty());

    // Streamed without a length (chunked): refused once past the limit, after a first COPY
    // of 10,000 rows was staged; the import is failed and its rows dropped.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = csv(30_000)
        .into_bytes()
        .chunks(64 * 1024)
        .map(|c| Ok(c.to_vec()))
        .collect();
    let sent = api
        .client
        .post(&url)
        .bearer_auth(&api.token)
        .header("content-type", "text/csv")
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await;
    // The api may close the connection while the client still sends: then no answer is read.
    if let Ok(response) = sent {
        assert_eq!(response.status(), 413);
        let body: Value = response.json().await.expect("a JSON body");
        assert_eq!(body["error"]["code"], "payload_too_large", "{body}");
    }
    let all = wait_imports(&env, |all| all.len() == 1 && all[0].0 == "failed").await;
    let (_, staged, error) = &all[0];
    assert_eq!(*staged, None);
    let error = error.as_deref().unwrap_or_default();
    assert!(error.contains("1000000-byte limit"), "{error}");
    assert_eq!(staged_rows(&env).await, 0);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(env.event_count().await, 0);

    // Under the limit, the same api imports as usual.
    let response = api
        .client
        .post(&url)
        .bearer_auth(&api.token)
        .header("content-type", "text/csv")
        .body(csv(100))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 202);
    assert_eq!(env.wait_for_events(100, WITHIN).await, 100);
}

/// Sends the headers and `rows` of a CSV upload over a raw connection, waits until the api
/// staged some, then drops the connection mid-body.
async fn upload_and_go_away(api: &TestApi, env: &TestEnv, chunked: bool) {
    let mut conn = tokio::net::TcpStream::connect(api.addr)
        .await
        .expect("connect");
    let framing = if chunked {
        "Transfer-Encoding: chunked".to_owned()
    } else {
        "Content-Length: 100000000".to_owned()
    };
    let head = format!(
        "POST /imports?{QUERY} HTTP/1.1\r\nHost: eye\r\nAuthorization: Bearer {}\r\n\
         Content-Type: text/csv\r\n{framing}\r\n\r\n",
        api.token
    );
    conn.write_all(head.as_bytes()).await.expect("headers");
    let body = csv(25_000);
    if chunked {
        for piece in body.as_bytes().chunks(32 * 1024) {
            conn.write_all(format!("{:x}\r\n", piece.len()).as_bytes())
                .await
                .expect("chunk size");
            conn.write_all(piece).await.expect("chunk");
            conn.write_all(b"\r\n").await.expect("chunk end");
        }
    } else {
        conn.write_all(body.as_bytes()).await.expect("body");
    }
    conn.flush().await.expect("flush");
    // The upload is under way: rows are staged, the import queued without staged_rows.
    let deadline = Instant::now() + WITHIN;
    while staged_rows(env).await < 10_000 {
        assert!(Instant::now() < deadline, "nothing staged");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let open = imports(env).await;
    assert_eq!(
        (
            open.last().expect("an import").0.as_str(),
            open.last().expect("an import").1
        ),
        ("queued", None)
    );
    drop(conn);
}

#[tokio::test]
async fn a_client_going_away_mid_upload_fails_the_import_and_stores_none_of_it() {
    let env = TestEnv::new().await;
    let api = env.spawn_api().await;
    let _worker = env.spawn_worker_with(&["--import-poll-ms", "50"]).await;
    for (n, chunked) in [(1, false), (2, true)] {
        upload_and_go_away(&api, &env, chunked).await;
        let all = wait_imports(&env, |all| {
            all.len() == n && all.iter().all(|i| i.0 == "failed")
        })
        .await;
        let (_, staged, error) = &all[n - 1];
        assert_eq!(*staged, None, "never marked staged");
        let error = error.as_deref().unwrap_or_default();
        assert!(error.contains("could not be read"), "{error}");
        assert_eq!(staged_rows(&env).await, 0, "its staged rows are dropped");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(env.event_count().await, 0, "nothing of it was imported");
}

#[tokio::test]
async fn an_upload_left_queued_by_a_dead_api_is_failed_by_the_sweeper() {
    let env = TestEnv::new().await;
    // What an api killed mid-upload leaves: a queued import without staged_rows, some rows.
    let id = Uuid::now_v7();
    let fresh = Uuid::now_v7();
    env.db
        .execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "INSERT INTO imports (id, app_id, spec, created_by, updated_at) VALUES \
             ($1, 'test-app', '{}', 'test', now() - interval '1 hour'), \
             ($2, 'test-app', '{}', 'test', now() + interval '1 hour')",
            [id.into(), fresh.into()],
        ))
        .await
        .expect("insert imports");
    env.db
        .execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "INSERT INTO import_rows (import_id, row_no, line) \
             SELECT $1, n, '[\"x\"]' FROM generate_series(1, 500) AS n",
            [id.into()],
        ))
        .await
        .expect("insert rows");
    let _worker = env
        .spawn_worker_with(&["--import-poll-ms", "50", "--import-upload-stale-secs", "60"])
        .await;
    let all = wait_imports(&env, |all| all.iter().any(|i| i.0 == "failed")).await;
    let states: Vec<_> = all.iter().map(|i| (i.0.as_str(), i.1)).collect();
    assert_eq!(
        states,
        [("failed", None), ("queued", None)],
        "the fresh one stays"
    );
    let error = all[0].2.as_deref().unwrap_or_default();
    assert!(error.contains("upload never completed"), "{error}");
    assert_eq!(staged_rows(&env).await, 0);
    assert_eq!(env.event_count().await, 0);
}
