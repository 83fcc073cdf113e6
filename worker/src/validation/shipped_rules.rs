//! The rules file the repository ships (`rules.toml`), loaded as a worker loads it, judged on
//! the events the seed's clients send.

use chrono::{Duration, Utc};
use eye_core::{Event, EventIn, Source};
use serde_json::{Value, json};

use super::{Registry, Subject, ValidatorSet};

fn shipped() -> ValidatorSet {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules.toml");
    Registry::builtin()
        .load(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// An event as a client posts it, parsed as the api parses it.
fn posted(category: &str, name: &str, data: Value, timestamp: &str) -> Event {
    serde_json::from_value::<EventIn>(json!({
        "session_id": "e2085be5-9137-4e4e-80b5-f1ffddc25423",
        "category": category,
        "name": name,
        "data": data,
        "timestamp": timestamp,
    }))
    .expect("wire event")
    .into_event()
    .expect("valid at the edge")
}

/// Judged as if it arrived over HTTP now.
fn judge(set: &ValidatorSet, event: &Event) -> super::Judgement {
    set.judge(&Subject {
        app_id: "demo",
        source: &Source::Http,
        received_at: Utc::now(),
        event,
    })
}

/// The seed's examples (the README's, dated 2021; the load-test client's three types) are
/// stored, with no warning: the shipped rules refuse only what the challenge flags.
#[test]
fn the_shipped_rules_store_the_seeds_examples() {
    let set = shipped();
    let examples = [
        posted(
            "page interaction",
            "pageview",
            json!({"host": "www.consumeraffairs.com", "path": "/"}),
            "2021-01-01 09:15:27.243860",
        ),
        posted(
            "page interaction",
            "cta click",
            json!({"host": "www.consumeraffairs.com", "path": "/", "element": "chat bubble"}),
            "2021-01-01 09:15:27.243860",
        ),
        posted(
            "form interaction",
            "submit",
            json!({"host": "www.consumeraffairs.com", "path": "/",
                   "form": {"first_name": "John", "last_name": "Doe"}}),
            "2023-03-01 12:00:00.000001",
        ),
    ];
    for event in &examples {
        let found = judge(&set, event);
        assert!(
            found.refusals.is_empty(),
            "{}: {:?}",
            event.name,
            found.refusals
        );
        assert!(
            found.warnings.is_empty(),
            "{}: {:?}",
            event.name,
            found.warnings
        );
    }
}

#[test]
fn the_shipped_rules_refuse_a_timestamp_in_the_future() {
    let set = shipped();
    let tomorrow = (Utc::now() + Duration::days(1)).format("%Y-%m-%d %H:%M:%S%.6f");
    let event = posted(
        "page interaction",
        "pageview",
        json!({"host": "www.consumeraffairs.com", "path": "/"}),
        &tomorrow.to_string(),
    );
    let found = judge(&set, &event);
    let refused: Vec<_> = found
        .refusals
        .iter()
        .map(|v| (v.validator.as_str(), v.field.as_str()))
        .collect();
    assert_eq!(refused, [("timestamp_bounds", "/timestamp")]);
}

#[test]
fn the_shipped_rules_judge_schemas_unknown_types_and_provider_records() {
    let set = shipped();
    let bad_path = posted(
        "page interaction",
        "pageview",
        json!({"host": "h", "path": "x"}),
        "2024-01-01T00:00:00Z",
    );
    let found = judge(&set, &bad_path);
    assert_eq!(found.refusals[0].validator, "pageview_schema");
    assert_eq!(found.refusals[0].field, "/data/path");

    let unknown = posted("custom", "thing", json!({}), "2024-01-01T00:00:00Z");
    let found = judge(&set, &unknown);
    assert!(found.refusals.is_empty(), "unknown types are only flagged");
    assert_eq!(found.warnings[0].validator, "allow_list");

    // A provider event posted by an application (not a fetcher) is refused, as by default.
    let spoofed = posted("provider", "plan", json!({}), "2024-01-01T00:00:00Z");
    let found = judge(&set, &spoofed);
    assert_eq!(found.refusals[0].validator, "provider_record");
}
