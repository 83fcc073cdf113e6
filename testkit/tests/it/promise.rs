//! The promise under hostile input: an event answered 202 ends stored or refused under its own
//! id, never as an anonymous undecodable message, and never takes its neighbours with it.

use std::collections::HashSet;
use std::time::Duration;

use eye_testkit::{TestEnv, seed_event, token_for};
use proptest::prelude::{Just, Strategy, any, prop, prop_oneof};
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Value, json};
use uuid::Uuid;

const WITHIN: Duration = Duration::from_secs(30);

/// `data` nested `depth` levels deep (the object itself is level 1).
fn nested(depth: usize) -> Value {
    let mut v = json!(1);
    for _ in 1..depth {
        v = json!([v]);
    }
    json!({ "x": v })
}

#[tokio::test]
async fn values_the_database_cannot_hold_are_refused_at_the_edge_naming_the_field() {
    let env = TestEnv::new().await;
    let api = env.spawn_api().await;
    let cases = [
        (json!({"data": nested(65)}), "data"),
        (json!({"data": nested(126)}), "data"),
        (
            json!({"timestamp": "9999-12-31T23:59:59-00:01"}),
            "timestamp",
        ),
        (
            json!({"timestamp": "0000-01-01T00:00:00+00:01"}),
            "timestamp",
        ),
        (json!({"category": "page\u{0}interaction"}), "category"),
        (json!({"data": {"k": ["x", "\u{0}"]}}), "data"),
    ];
    for (overrides, field) in cases {
        let mut body = seed_event();
        for (k, v) in overrides.as_object().expect("object") {
            body[k] = v.clone();
        }
        let response = api.post_event(&body).await;
        let status = response.status();
        let answer: Value = response.json().await.expect("json");
        assert_eq!(status, 422, "{overrides}: {answer}");
        assert_eq!(answer["error"]["code"], "invalid_field", "{answer}");
        assert_eq!(answer["error"]["field"], field, "{answer}");
    }
    // At the limit itself, still accepted.
    let mut body = seed_event();
    body["data"] = nested(64);
    assert_eq!(api.post_event(&body).await.status(), 202);
}

/// An envelope as a producer other than the api (or an older version) could send it.
fn envelope(app: &str, id: Uuid, data: Value, timestamp: &str) -> Value {
    json!({
        "app_id": app,
        "source": "http",
        "received_at": "2026-01-01T00:00:00Z",
        "event": {
            "id": id, "session_id": Uuid::new_v4(), "category": "page interaction",
            "name": "pageview", "data": data, "timestamp": timestamp
        }
    })
}

#[tokio::test]
async fn a_bad_event_in_a_shared_message_is_dead_lettered_alone_under_its_id_and_application() {
    let env = TestEnv::new().await;
    let api = env.spawn_api().await;
    let _worker = env.spawn_worker().await;
    let page = json!({"host": "h", "path": "/"});
    let (good_a, good_b, deep, far) = (
        Uuid::now_v7(),
        Uuid::now_v7(),
        Uuid::now_v7(),
        Uuid::now_v7(),
    );
    // Past serde_json's recursion limit inside the envelope: this envelope cannot be decoded.
    let mut too_deep = envelope("ops", deep, page.clone(), "2021-01-01T00:00:00Z");
    too_deep["event"]["data"] = nested(130);
    let message = json!({"v": "1", "envelopes": [
        envelope("test-app", good_a, page.clone(), "2021-01-01T00:00:00Z"),
        too_deep,
        envelope("ops", far, page.clone(), "+10000-01-01T00:00:00Z"),
        envelope("ops", good_b, page, "2021-01-01T00:00:00Z"),
    ]});
    eye_testkit::publish_raw(&env.namespace, &serde_json::to_vec(&message).expect("json")).await;

    assert_eq!(env.wait_for_events(2, WITHIN).await, 2);
    assert_eq!(env.wait_for_dead_letters(2, WITHIN).await, 2);
    assert!(env.event(good_a).await.is_some() && env.event(good_b).await.is_some());
    let dead = env.dead_letters().await;
    for id in [deep, far] {
        let row = dead
            .iter()
            .find(|d| d.event_id == Some(id))
            .unwrap_or_else(|| panic!("no dead letter for {id}: {dead:?}"));
        assert_eq!(row.app_id.as_deref(), Some("ops"));
        let (_, status) = api
            .get_as(
                &token_for("ops", &["events:read"]),
                &format!("/events/{id}/status"),
            )
            .await;
        assert_eq!(status["status"], "rejected", "{status}");
    }
}

/// Bodies a hostile or careless client may send: deep or odd `data`, NUL characters, years at
/// and past the ends of the range with offsets, labels of any length.
fn hostile_body() -> impl Strategy<Value = Value> {
    let text = prop_oneof![
        8 => Just("page interaction".to_owned()),
        4 => "[a-z ]{1,12}",
        1 => any::<String>(),
        1 => "[a-z]{0,3}\u{0}[a-z]{0,3}",
        1 => "x{120,140}",
    ];
    let timestamp = prop_oneof![
        12 => Just("2021-01-01 09:15:27.243860".to_owned()),
        1 => Just("9999-12-31T23:59:59-00:01".to_owned()),
        1 => Just("0000-01-01T00:00:00+00:01".to_owned()),
        1 => Just("9999-12-31T23:59:59+00:01".to_owned()),
        1 => Just("0001-01-01T00:00:00-00:01".to_owned()),
        2 => (0u32..=9999, 1u32..=12, -23i32..=23).prop_map(|(y, m, h)| format!(
            "{y:04}-{m:02}-01T00:00:00{}{:02}:00",
            if h < 0 { '-' } else { '+' },
            h.abs()
        )),
        1 => any::<String>(),
    ];
    let leaf = prop_oneof![
        3 => Just(Value::Null),
        3 => any::<bool>().prop_map(Value::from),
        3 => any::<i64>().prop_map(Value::from),
        3 => any::<f64>().prop_map(|f| json!(f)),
        3 => any::<String>().prop_map(Value::from),
        1 => "[a-z]{0,2}\u{0}".prop_map(Value::from),
    ];
    let value = leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::hash_map("[a-z\u{0}/~]{0,3}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    });
    let depth = prop_oneof![6 => Just(1usize), 1 => 60usize..70, 1 => 120usize..130];
    (text.clone(), text, timestamp, value, depth, any::<bool>()).prop_map(
        |(category, name, timestamp, value, depth, with_id)| {
            let mut data = nested(depth);
            data["v"] = value;
            let mut body = json!({
                "session_id": Uuid::new_v4(), "category": category, "name": name,
                "data": data, "timestamp": timestamp
            });
            if with_id {
                body["id"] = json!(Uuid::now_v7());
            }
            body
        },
    )
}

#[tokio::test]
async fn every_accepted_hostile_event_ends_stored_or_rejected_under_its_own_id() {
    let env = TestEnv::new().await;
    let api = env.spawn_api().await;
    let _worker = env.spawn_worker().await;
    let mut runner = TestRunner::new(Config::default());
    let strategy = hostile_body();
    let mut accepted = HashSet::new();
    let mut refused = 0;
    for _ in 0..300 {
        let body = strategy
            .new_tree(&mut runner)
            .expect("a generated body")
            .current();
        let response = api.post_event(&body).await;
        match response.status().as_u16() {
            202 => {
                let answer: Value = response.json().await.expect("json");
                let id = answer["id"].as_str().and_then(|s| s.parse::<Uuid>().ok());
                accepted.insert(id.expect("id"));
            }
            400 | 413 | 422 => refused += 1,
            other => panic!("{other} for {body}"),
        }
    }
    assert!(
        accepted.len() > 50 && refused > 50,
        "the generator must exercise both sides: {} accepted, {refused} refused",
        accepted.len()
    );
    let deadline = tokio::time::Instant::now() + WITHIN;
    loop {
        let stored: HashSet<Uuid> = env.events().await.iter().map(|e| e.id).collect();
        let dead = env.dead_letters().await;
        assert!(
            dead.iter().all(|d| d.kind != "undecodable"),
            "an accepted event became undecodable: {:?}",
            dead.iter().find(|d| d.kind == "undecodable")
        );
        let rejected: HashSet<Uuid> = dead
            .iter()
            .filter(|d| d.kind == "invalid")
            .filter_map(|d| d.event_id)
            .collect();
        let missing: Vec<_> = accepted
            .iter()
            .filter(|id| !stored.contains(id) && !rejected.contains(id))
            .collect();
        assert!(stored.is_disjoint(&rejected));
        if missing.is_empty() {
            assert_eq!(stored.len() + rejected.len(), accepted.len());
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} accepted events neither stored nor rejected, e.g. {:?}",
            missing.len(),
            missing.first()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
