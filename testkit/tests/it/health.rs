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

#[tokio::test]
async fn metrics_are_exposed_for_prometheus_on_their_own_listener_only() {
    let env = TestEnv::new().await;
    let api = env.spawn_api().await;
    assert_eq!(
        api.post_event(&eye_testkit::seed_event()).await.status(),
        202
    );
    let response = api
        .client
        .get(format!("http://{}/metrics", api.metrics_addr))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 200);
    let text = response.text().await.expect("text");
    for metric in [
        "eye_events_accepted_total",
        "eye_publish_confirm_seconds",
        "eye_publish_batch_events",
        "eye_http_request_duration_seconds",
    ] {
        assert!(text.contains(metric), "{metric} missing from /metrics");
    }
    assert!(
        text.contains(r#"route="/events""#),
        "requests are labelled by route"
    );
    // Not on the public port.
    let public = api
        .client
        .get(api.url("/metrics"))
        .send()
        .await
        .expect("sent");
    assert_eq!(public.status(), 404);
}

#[tokio::test]
async fn the_openapi_document_and_swagger_ui_are_served_without_internet() {
    let env = TestEnv::new().await;
    let api = env.spawn_api_with(&[]).await;
    let doc: Value = api
        .client
        .get(api.url("/openapi.json"))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    for path in [
        "/events",
        "/events/{id}",
        "/sessions/{session_id}/events",
        "/readyz",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} documented");
    }
    let page = api.client.get(api.url("/docs")).send().await.expect("sent");
    let html = page.text().await.expect("html");
    assert!(html.contains("/docs/swagger-ui-bundle.js") && !html.contains("https://"));
    for (asset, kind) in [
        ("/docs/swagger-ui-bundle.js", "text/javascript"),
        ("/docs/swagger-ui.css", "text/css"),
    ] {
        let response = api.client.get(api.url(asset)).send().await.expect("sent");
        assert_eq!(response.status(), 200, "{asset}");
        assert_eq!(response.headers()["content-type"], kind);
        assert!(
            response.bytes().await.expect("body").len() > 100_000,
            "{asset} is the real asset"
        );
    }
}
