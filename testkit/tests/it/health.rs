use eye_testkit::TestEnv;
use serde_json::Value;

#[tokio::test]
async fn liveness_and_readiness_report_each_dependency() {
    let env = TestEnv::new().await;
    let api = env.spawn_api().await;
    let live = api
        .client
        .get(api.url("/healthz"))
        .send()
        .await
        .expect("sent");
    assert_eq!(live.status(), 200);
    let ready = api
        .client
        .get(api.url("/readyz"))
        .send()
        .await
        .expect("sent");
    assert_eq!(ready.status(), 200);
    let report: Value = ready.json().await.expect("json");
    assert_eq!(report["broker"], "up");
    assert_eq!(report["database"], "up");
    assert_eq!(report["shutting_down"], false);
}

#[tokio::test]
async fn readiness_turns_503_when_the_database_is_down() {
    let env = TestEnv::new().await;
    let api = env.spawn_api().await;
    env.take_database_down().await;
    let ready = api
        .client
        .get(api.url("/readyz"))
        .send()
        .await
        .expect("sent");
    assert_eq!(ready.status(), 503);
    let report: Value = ready.json().await.expect("json");
    assert_eq!(report["database"], "down");
    assert_eq!(report["broker"], "up");
    env.bring_database_back().await;
}
