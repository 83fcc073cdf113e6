//! The receiver's view of "exactly once" (issue 15): while events flow, the receiver goes
//! down for a while and the dispatcher is killed with SIGKILL once; afterwards every stored
//! event that the filter passes has arrived, and every copy of an event carries the same
//! webhook-id (and no two events share one).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use eye_core::entity::event;
use eye_testkit::{Receiver, TestEnv, seed_event, token_for};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};
use serde_json::{Value, json};
use uuid::Uuid;

const SCHEDULE: (&str, &str) = ("EYE_WEBHOOK_SCHEDULE", "0s,500ms,1s,2s,3s,5s,5s,10s");

#[tokio::test]
async fn every_matching_event_arrives_despite_receiver_outage_and_dispatcher_kill() {
    let env = TestEnv::new().await;
    let api = env.spawn_api().await;
    let _worker = env.spawn_worker_with(&["--webhook-refresh-ms", "50"]).await;
    let mut receiver = Receiver::start().await;
    let token = token_for("test-app", &["events:write", "webhooks:write"]);
    let created: Value = api
        .client
        .post(api.url("/webhooks"))
        .bearer_auth(&token)
        .json(&json!({"url": receiver.url("/hook"), "filters": [{"category": "page interaction"}]}))
        .send()
        .await
        .expect("subscribe")
        .json()
        .await
        .expect("json");
    assert!(created["id"].is_string(), "{created}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut dispatcher = env.spawn_dispatcher_process(&[SCHEDULE]);

    let sender = {
        let (client, url, token) = (api.client.clone(), api.url("/events"), token.clone());
        tokio::spawn(async move {
            for i in 0..300 {
                let mut body = seed_event();
                if i % 3 == 2 {
                    body["category"] = json!("shop");
                }
                let status = client
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&body)
                    .send()
                    .await
                    .map(|r| r.status().as_u16());
                assert_eq!(status.ok(), Some(202));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    receiver.down().await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    dispatcher.kill();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _dispatcher = env.spawn_dispatcher_process(&[SCHEDULE]);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    receiver.up().await;
    sender.await.expect("sender");
    env.wait_for_events(300, Duration::from_secs(30)).await;

    let matching: HashSet<Uuid> = event::Entity::find()
        .filter(event::Column::Category.eq("page interaction"))
        .select_only()
        .column(event::Column::Id)
        .into_tuple::<Uuid>()
        .all(&env.db)
        .await
        .expect("ids")
        .into_iter()
        .collect();
    assert_eq!(matching.len(), 200);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    let (arrived, received) = loop {
        let received = receiver.received();
        let arrived: HashSet<Uuid> = received
            .iter()
            .filter_map(|r| r.json()["data"]["id"].as_str().and_then(|s| s.parse().ok()))
            .collect();
        if arrived.is_superset(&matching) || tokio::time::Instant::now() > deadline {
            break (arrived, received);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let missing: Vec<&Uuid> = matching.difference(&arrived).collect();
    assert!(
        missing.is_empty(),
        "{} stored events never arrived: {missing:?}",
        missing.len()
    );
    assert!(
        arrived.is_subset(&matching),
        "only events the filter passes"
    );
    let mut id_of: HashMap<Uuid, String> = HashMap::new();
    let mut event_of: HashMap<String, Uuid> = HashMap::new();
    for r in &received {
        let Some(event) = r.json()["data"]["id"].as_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        let known = id_of.entry(event).or_insert_with(|| r.webhook_id.clone());
        assert_eq!(
            *known, r.webhook_id,
            "a duplicate of {event} carries another webhook-id"
        );
        let owner = event_of.entry(r.webhook_id.clone()).or_insert(event);
        assert_eq!(
            *owner, event,
            "two events share webhook-id {}",
            r.webhook_id
        );
    }
    eprintln!(
        "chaos: {} stored matching events, {} requests received ({} duplicates)",
        matching.len(),
        received.len(),
        received.len() - arrived.len()
    );
}
