//! Several broker addresses (the nodes of a cluster): when the node in use dies, the api's
//! publisher and the worker's consumer move to another address, publishing stays confirmed,
//! and every event answered 202 is stored once. Each "node" is a proxy to the tests' broker
//! that the test takes down (connections cut, new ones refused).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use eye_testkit::{BrokerProxy, TestApi, TestEnv, seed_event};
use uuid::Uuid;

/// Posts one event under `id` until it is answered 202 (a 503 is retried with the same id,
/// as the api asks), within `within`; how many 503s it took.
async fn post_until_accepted(api: &TestApi, id: Uuid, within: Duration) -> u32 {
    let deadline = Instant::now() + within;
    let mut event = seed_event();
    event["id"] = id.to_string().into();
    let mut refused = 0;
    loop {
        let status = api.post_event(&event).await.status().as_u16();
        if status == 202 {
            return refused;
        }
        assert_eq!(
            status, 503,
            "only a 503 may refuse an event while a node is down"
        );
        refused += 1;
        assert!(
            Instant::now() < deadline,
            "{id} not accepted within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn publisher_and_worker_fail_over_between_broker_addresses() {
    let env = TestEnv::new().await;
    let nodes = [BrokerProxy::start().await, BrokerProxy::start().await];
    let urls = format!("{},{}", nodes[0].amqp_url(), nodes[1].amqp_url());
    let api = env
        .spawn_api_with(&["--amqp-url", urls.as_str(), "--publish-timeout-ms", "2000"])
        .await;
    api.wait_ready(Duration::from_secs(15)).await;
    let _worker = env.spawn_worker_with(&["--amqp-url", urls.as_str()]).await;

    let mut accepted = HashSet::new();
    let mut blips = 0;
    // Each node dies in turn (the other one back), with events before and after.
    for (round, down) in [0usize, 1, 0].into_iter().enumerate() {
        for _ in 0..10 {
            let id = Uuid::now_v7();
            blips += post_until_accepted(&api, id, Duration::from_secs(20)).await;
            accepted.insert(id);
        }
        nodes[1 - down].restore();
        nodes[down].cut();
        for _ in 0..10 {
            let id = Uuid::now_v7();
            blips += post_until_accepted(&api, id, Duration::from_secs(20)).await;
            accepted.insert(id);
        }
        assert!(
            env.wait_for_events(accepted.len() as u64, Duration::from_secs(20))
                .await
                >= accepted.len() as u64,
            "round {round}: the worker must store through the node still up"
        );
    }
    let stored: Vec<Uuid> = env.events().await.into_iter().map(|e| e.id).collect();
    let unique: HashSet<Uuid> = stored.iter().copied().collect();
    assert_eq!(unique.len(), stored.len(), "an event stored twice");
    assert_eq!(unique, accepted, "every 202 stored, nothing else");
    // A node dying costs a short blip at most, not an outage: most posts pass at once.
    assert!(blips < 200, "{blips} 503s over three node failures");
}
