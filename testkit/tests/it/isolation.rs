//! Ingestion's database needs (the revocation reload, lookups of new applications, the
//! readiness probe) have their own pool: reads and `/search` holding every connection of
//! theirs cannot turn `POST /events` into 503s. Reads past their bound get a quick 503.

use std::time::{Duration, Instant};

use eye_testkit::{TestApi, TestEnv, seed_event, token_for};
use futures::future::join_all;
use sea_orm::{ConnectionTrait, TransactionTrait};
use tokio_util::sync::CancellationToken;

/// One flooding client: GETs `path` until `stop`; returns (status, seconds) of each answer.
async fn flood(api: &TestApi, path: &str, stop: CancellationToken) -> Vec<(u16, f64)> {
    let mut answers = Vec::new();
    while !stop.is_cancelled() {
        let start = Instant::now();
        let status = api
            .client
            .get(api.url(path))
            .bearer_auth(&api.token)
            .send()
            .await
            .map_or(0, |r| r.status().as_u16());
        answers.push((status, start.elapsed().as_secs_f64()));
        if status == 503 {
            // Frugal on a shared machine: the point is holding the pool, not spinning.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    answers
}

#[tokio::test]
async fn reads_and_searches_holding_every_connection_leave_ingestion_answering_202() {
    let env = TestEnv::new().await;
    // A short staleness bound: were ingestion to share the readers' pool, it would turn
    // to 503 within 2 s of the flood.
    let api = env
        .spawn_api_with(&[
            "--auth-refresh-ms",
            "200",
            "--auth-max-staleness-ms",
            "2000",
        ])
        .await;
    api.wait_ready(Duration::from_secs(15)).await;
    // Every read blocks on these locks until its statement timeout (5 s), holding its
    // connection: the slowest reads there can be.
    let locks = env.db.begin().await.expect("begin");
    locks
        .execute_unprepared(
            "LOCK TABLE events, dead_letters, provider_plans IN ACCESS EXCLUSIVE MODE",
        )
        .await
        .expect("lock");
    let stop = CancellationToken::new();
    let paths = [
        "/events",
        "/errors",
        "/search?starts_at=2021-01-01&ends_at=2021-12-31",
    ];
    let flooding = join_all((0..24).map(|i| flood(&api, paths[i % 3], stop.clone())));
    let posting = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut statuses = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(6);
        while Instant::now() < deadline {
            statuses.push(api.post_event(&seed_event()).await.status().as_u16());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Readiness probes the database on the ingestion pool: still ready.
        let ready = api.client.get(api.url("/readyz")).send().await;
        let ready = ready.map_or(0, |r| r.status().as_u16());
        // An application registered mid-flood is looked up on the ingestion pool too.
        env.register_app("late").await;
        let late = token_for("late", &["events:write"]);
        statuses.push(
            api.post_event_as(&late, &seed_event())
                .await
                .status()
                .as_u16(),
        );
        stop.cancel();
        (statuses, ready)
    };
    let (floods, (statuses, ready)) = tokio::join!(flooding, posting);
    locks.rollback().await.expect("unlock");
    assert!(statuses.len() > 20, "{} posts", statuses.len());
    assert!(statuses.iter().all(|s| *s == 202), "{statuses:?}");
    assert_eq!(ready, 200, "ready while reads are saturated");
    let answers: Vec<(u16, f64)> = floods.into_iter().flatten().collect();
    let shed: Vec<f64> = answers
        .iter()
        .filter(|(s, _)| *s == 503)
        .map(|(_, t)| *t)
        .collect();
    assert!(
        shed.len() > 100,
        "the flood past the bounds is shed: {}",
        shed.len()
    );
    let slowest = shed.iter().copied().fold(0.0, f64::max);
    // Shed at once, or cancelled by the statement timeout (5 s) for those let through.
    let quick = shed.iter().filter(|t| **t < 0.5).count();
    assert!(
        quick * 10 >= shed.len() * 9,
        "{quick} of {} quick, slowest {slowest}",
        shed.len()
    );
    // Once the locks are gone, reads answer again.
    let (status, _) = api.get("/events").await;
    assert_eq!(status, 200);
}
