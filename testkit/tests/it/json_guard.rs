//! The JSON provider's removal guard: a remote answering `[]` where it had records marks
//! nothing removed and the pass is recorded as refused; a genuine removal still goes through.

use std::time::Duration;

use eye_testkit::{JsonApiSim, TestEnv};
use serde_json::json;

const WITHIN: Duration = Duration::from_secs(20);

#[tokio::test]
async fn an_empty_answer_removes_nothing_and_is_recorded_refused_a_single_removal_works() {
    let env = TestEnv::new().await;
    let _worker = env.spawn_worker().await;
    let sim = JsonApiSim::empty().await;
    let posts: Vec<_> = (1..=10)
        .map(|i| json!({"userId": 1, "id": i, "title": format!("post {i}")}))
        .collect();
    sim.set("posts", posts.clone());
    let mut fetcher = env
        .json_fetcher(&sim.url(), &["--resources", "posts"])
        .await;
    let first = fetcher.run_once().await.expect("first pass");
    assert_eq!((first.changed, first.removed), (10, 0));
    env.wait_for_json_records(WITHIN, |r| r.len() == 10).await;

    // The remote answers an empty array: the guard (50% by default) refuses the sweep.
    sim.set("posts", Vec::new());
    let second = fetcher
        .run_once()
        .await
        .expect("a refused sweep is no failed cycle");
    assert_eq!((second.plans, second.changed, second.removed), (0, 0, 0));
    let refusal = second.removals_refused.expect("the refusal");
    assert!(
        refusal.starts_with("posts: refused to mark 10 of 10 records removed"),
        "{refusal}"
    );
    // Once more: still refused (nothing recorded as gone in between).
    let third = fetcher.run_once().await.expect("third pass");
    assert_eq!(third.removed, 0);
    assert!(third.removals_refused.is_some());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rows = env.json_records().await;
    assert_eq!(rows.len(), 10);
    assert!(rows.iter().all(|r| !r.removed), "nothing marked removed");
    assert_eq!(env.event_count().await, 10, "no removal was published");

    let cycles: Vec<_> = env
        .fetch_cycles("json")
        .await
        .into_iter()
        .map(|c| (c.outcome, c.removed, c.error.unwrap_or_default()))
        .collect();
    assert_eq!(cycles.len(), 3);
    assert_eq!((cycles[0].0.as_str(), cycles[0].1), ("ok", 0));
    for cycle in &cycles[1..] {
        assert_eq!((cycle.0.as_str(), cycle.1), ("refused", 0), "{cycle:?}");
        assert!(cycle.2.contains("10 of 10 records"), "{cycle:?}");
    }

    // The remote comes back without one post: a genuine removal, under the guard.
    sim.set("posts", posts[..9].to_vec());
    let fourth = fetcher.run_once().await.expect("fourth pass");
    assert_eq!((fourth.changed, fourth.removed), (0, 1));
    assert_eq!(fourth.removals_refused, None);
    let rows = env
        .wait_for_json_records(WITHIN, |r| r.iter().any(|r| r.removed))
        .await;
    let removed: Vec<_> = rows
        .iter()
        .filter(|r| r.removed)
        .map(|r| r.remote_id.as_str())
        .collect();
    assert_eq!(removed, ["10"]);
    let last = env.fetch_cycles("json").await.pop().expect("a cycle");
    assert_eq!((last.outcome.as_str(), last.removed), ("ok", 1));
}

#[tokio::test]
async fn with_the_guard_off_an_empty_answer_removes_every_record() {
    let env = TestEnv::new().await;
    let _worker = env.spawn_worker().await;
    let sim = JsonApiSim::empty().await;
    sim.set("users", (1..=4).map(|i| json!({"id": i})).collect());
    let mut fetcher = env
        .json_fetcher(
            &sim.url(),
            &["--resources", "users", "--max-removed-percent", "100"],
        )
        .await;
    fetcher.run_once().await.expect("first pass");
    sim.set("users", Vec::new());
    let second = fetcher.run_once().await.expect("second pass");
    assert_eq!((second.removed, second.removals_refused), (4, None));
    let rows = env
        .wait_for_json_records(WITHIN, |r| r.len() == 4 && r.iter().all(|r| r.removed))
        .await;
    assert!(rows.iter().all(|r| r.removed));
}
