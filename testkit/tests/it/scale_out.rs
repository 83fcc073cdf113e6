//! Two api replicas and two workers as one system (the shape behind `make run-cluster`'s
//! load balancer, which sends each request to either replica): an event id sent to both is
//! stored once, and the replicas together hold an application's limit, not twice it.

use std::time::Duration;

use eye_testkit::{TestEnv, seed_event, token_for};
use uuid::Uuid;

#[tokio::test]
async fn an_event_sent_to_both_replicas_is_stored_once() {
    let env = TestEnv::new().await;
    let replicas = [env.spawn_api().await, env.spawn_api().await];
    let _workers = [env.spawn_worker().await, env.spawn_worker().await];
    let ids: Vec<Uuid> = (0..20).map(|_| Uuid::now_v7()).collect();
    // Each id twice through each replica, as a client retrying behind a load balancer would.
    for id in &ids {
        let mut event = seed_event();
        event["id"] = id.to_string().into();
        for api in replicas.iter().chain(replicas.iter()) {
            let response = api.post_event(&event).await;
            assert_eq!(response.status(), 202);
        }
    }
    env.wait_for_events(ids.len() as u64, Duration::from_secs(20))
        .await;
    // Leave time for any second copy to land.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let stored: Vec<Uuid> = env.events().await.into_iter().map(|e| e.id).collect();
    assert_eq!(
        stored.len(),
        ids.len(),
        "one row per id, whatever replica took it"
    );
    for id in &ids {
        assert!(stored.contains(id), "{id} stored");
    }
}

#[tokio::test]
async fn two_replicas_together_hold_the_applications_limit() {
    let env = TestEnv::new().await;
    env.register_app("shared").await;
    env.set_rate_limit("shared", 1, 10).await;
    let replicas = [
        env.spawn_api_with(&["--api-replicas", "2"]).await,
        env.spawn_api_with(&["--api-replicas", "2"]).await,
    ];
    let token = token_for("shared", &["events:write"]);
    let mut accepted = 0;
    let mut limited = 0;
    // Round robin, as HAProxy balances: 20 requests against a burst of 10 across both.
    for i in 0..20 {
        match replicas[i % 2]
            .post_event_as(&token, &seed_event())
            .await
            .status()
            .as_u16()
        {
            202 => accepted += 1,
            429 => limited += 1,
            other => panic!("unexpected status {other}"),
        }
    }
    // 10 in the two halves of the bucket, plus at most what 1/s refills meanwhile.
    assert!(
        (10..=12).contains(&accepted),
        "{accepted} accepted: the limit is the application's, not each replica's"
    );
    assert_eq!(accepted + limited, 20);
}
