use std::time::Duration;

use eye_testkit::{TestEnv, seed_event, token_for};
use serde_json::{Value, json};
use uuid::Uuid;

const WITHIN: Duration = Duration::from_secs(20);

async fn accepted(api: &eye_testkit::TestApi, body: &Value) -> Uuid {
    let response = api.post_event(body).await;
    assert_eq!(response.status(), 202);
    let body: Value = response.json().await.expect("json");
    body["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("id")
}

#[tokio::test]
async fn refused_events_are_listed_with_their_reasons_and_filters_for_their_application_only() {
    let env = TestEnv::new().await;
    env.register_app("someone-else").await;
    let api = env.spawn_api().await;
    let _worker = env.spawn_worker().await;
    let mut no_host = seed_event();
    no_host["data"] = json!({"path": "/"});
    let mut future = seed_event();
    future["timestamp"] = json!((chrono::Utc::now() + chrono::Duration::days(2)).to_rfc3339());
    let no_host_id = accepted(&api, &no_host).await;
    accepted(&api, &future).await;
    accepted(&api, &seed_event()).await;
    eye_testkit::publish_raw(&env.namespace, b"garbage").await;
    assert_eq!(env.wait_for_dead_letters(3, WITHIN).await, 3);
    assert_eq!(env.wait_for_events(1, WITHIN).await, 1);

    let (status, page) = api.get("/errors").await;
    assert_eq!(status, 200, "{page}");
    let listed: Vec<&str> = page["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|d| {
            d["event_id"]
                .as_str()
                .expect("own events only, no undecodable")
        })
        .collect();
    assert_eq!(listed.len(), 2);
    assert!(listed.contains(&no_host_id.to_string().as_str()));

    let (_, page) = api.get("/errors?validator=required_keys").await;
    let rows = page["data"].as_array().expect("data");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["field"], "/data/host");
    assert_eq!(rows[0]["reasons"][0]["message"], "data.host is required");
    assert_eq!(rows[0]["payload"]["event"]["id"], no_host_id.to_string());

    let (_, first) = api.get("/errors?limit=1").await;
    let cursor = first["next_cursor"].as_str().expect("a second page");
    let (_, second) = api.get(&format!("/errors?limit=1&cursor={cursor}")).await;
    assert_ne!(first["data"][0]["id"], second["data"][0]["id"]);
    assert!(second["next_cursor"].is_null());

    let stranger = token_for("someone-else", &["events:read"]);
    let (_, theirs) = api.get_as(&stranger, "/errors").await;
    assert_eq!(theirs["data"], json!([]));
    let admin = token_for("ops", &["admin"]);
    let (_, all) = api.get_as(&admin, "/errors").await;
    let kinds: Vec<&str> = all["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|d| d["kind"].as_str().expect("kind"))
        .collect();
    assert_eq!(kinds.len(), 3);
    assert!(kinds.contains(&"undecodable"));
}

#[tokio::test]
async fn a_client_can_learn_what_became_of_its_event() {
    let env = TestEnv::new().await;
    env.register_app("someone-else").await;
    let api = env.spawn_api().await;
    let _worker = env.spawn_worker().await;
    let mut bad = seed_event();
    bad["data"] = json!({"host": "h"});
    let bad_id = accepted(&api, &bad).await;
    let good_id = accepted(&api, &seed_event()).await;
    env.wait_for_events(1, WITHIN).await;
    env.wait_for_dead_letters(1, WITHIN).await;

    let (status, stored) = api.get(&format!("/events/{good_id}/status")).await;
    assert_eq!((status, stored["status"].as_str()), (200, Some("stored")));
    let (_, rejected) = api.get(&format!("/events/{bad_id}/status")).await;
    assert_eq!(rejected["status"], "rejected");
    assert_eq!(rejected["reasons"][0]["field"], "/data/path");
    let (_, unknown) = api.get(&format!("/events/{}/status", Uuid::new_v4())).await;
    assert_eq!(unknown["status"], "queued");

    // Another application learns nothing about this one's events.
    let stranger = token_for("someone-else", &["events:read"]);
    let (_, hidden) = api
        .get_as(&stranger, &format!("/events/{good_id}/status"))
        .await;
    assert_eq!(hidden["status"], "queued");
    let (status, body) = api.get("/events/nope/status").await;
    assert_eq!((status, body["error"]["field"].as_str()), (400, Some("id")));
}

#[tokio::test]
async fn a_rule_in_warn_mode_stores_the_event_and_records_the_violation() {
    let env = TestEnv::new().await;
    let api = env.spawn_api().await;
    let rules = std::env::temp_dir().join(format!("eye-rules-{}.toml", Uuid::new_v4()));
    std::fs::write(
        &rules,
        "[[rule]]\nid = \"host_dry_run\"\nvalidator = \"required_keys\"\nmode = \"warn\"\n\
         config = { keys = [\"host\"] }\n",
    )
    .expect("rules file");
    let _worker = env
        .spawn_worker_with(&["--rules-file", rules.to_str().expect("utf-8 path")])
        .await;
    let mut no_host = seed_event();
    no_host["data"] = json!({"path": "/"});
    let id = accepted(&api, &no_host).await;

    assert_eq!(
        env.wait_for_events(1, WITHIN).await,
        1,
        "stored despite the violation"
    );
    assert_eq!(env.wait_for_dead_letters(1, WITHIN).await, 1);
    let dead = env.dead_letters().await;
    assert_eq!(dead[0].kind, "warning");
    assert_eq!(dead[0].event_id, Some(id));
    assert_eq!(dead[0].validator.as_deref(), Some("host_dry_run"));
    let (_, status) = api.get(&format!("/events/{id}/status")).await;
    assert_eq!(status["status"], "stored");
    let _ = std::fs::remove_file(rules);
}

#[tokio::test]
async fn a_worker_refuses_to_start_on_a_bad_rules_file_naming_the_line() {
    let env = TestEnv::new().await;
    let rules = std::env::temp_dir().join(format!("eye-rules-{}.toml", Uuid::new_v4()));
    std::fs::write(
        &rules,
        "[[rule]]\nvalidator = \"timestamp_bounds\"\nconfig = {}\n",
    )
    .expect("write");
    let settings = env.worker_settings(&["--rules-file", rules.to_str().expect("utf-8 path")]);
    let err = eye_worker::Worker::build(settings)
        .await
        .err()
        .expect("refused");
    assert!(err.to_string().contains("at line 1"), "{err}");
    let _ = std::fs::remove_file(rules);
}

#[tokio::test]
async fn replaying_1000_dead_letters_after_a_rule_fix_stores_each_once() {
    let env = TestEnv::new().await;
    let api = std::sync::Arc::new(env.spawn_api().await);
    let strict = std::env::temp_dir().join(format!("eye-rules-{}.toml", Uuid::new_v4()));
    std::fs::write(
        &strict,
        "[[rule]]\nid = \"needs_referrer\"\nvalidator = \"required_keys\"\n\
         config = { keys = [\"referrer\"] }\n",
    )
    .expect("rules file");
    let worker = env
        .spawn_worker_with(&["--rules-file", strict.to_str().expect("utf-8 path")])
        .await;
    let mut posts = tokio::task::JoinSet::new();
    for lane in 0..50 {
        let api = api.clone();
        posts.spawn(async move {
            for _ in (lane..1000).step_by(50) {
                assert_eq!(api.post_event(&seed_event()).await.status(), 202);
            }
        });
    }
    while let Some(done) = posts.join_next().await {
        done.expect("lane");
    }
    assert_eq!(
        env.wait_for_dead_letters(1000, Duration::from_secs(60))
            .await,
        1000
    );
    assert_eq!(env.event_count().await, 0);
    worker.stop().await;

    // The rule is fixed (the built-in rules have no such requirement); replay what it refused.
    let _fixed = env.spawn_worker().await;
    let admin = token_for("ops", &["admin"]);
    let replay = |api: std::sync::Arc<eye_testkit::TestApi>, admin: String| async move {
        let response = api
            .client
            .post(api.url("/errors/replay"))
            .bearer_auth(&admin)
            .json(&json!({"validator": "needs_referrer"}))
            .send()
            .await
            .expect("sent");
        assert_eq!(response.status(), 200);
        response.json::<Value>().await.expect("json")
    };
    let report = replay(api.clone(), admin.clone()).await;
    assert_eq!(
        (report["replayed"].as_u64(), report["skipped"].as_u64()),
        (Some(1000), Some(0))
    );
    assert_eq!(
        env.wait_for_events(1000, Duration::from_secs(60)).await,
        1000
    );

    // A second replay (an impatient operator) doubles nothing.
    let again = replay(api.clone(), admin).await;
    assert_eq!(again["replayed"], 1000);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(env.event_count().await, 1000);
    let stored: std::collections::HashSet<Uuid> = env.events().await.iter().map(|e| e.id).collect();
    let refused: std::collections::HashSet<Uuid> = env
        .dead_letters()
        .await
        .iter()
        .filter_map(|d| d.event_id)
        .collect();
    assert_eq!(stored, refused, "exactly the refused events, each once");

    // Only admins replay.
    let writer = token_for("test-app", &["events:write", "events:read"]);
    let response = api
        .client
        .post(api.url("/errors/replay"))
        .bearer_auth(&writer)
        .json(&json!({"validator": "needs_referrer"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 403);
    let _ = std::fs::remove_file(strict);
}
