use std::time::{Duration, Instant};

use eye_testkit::{TEST_JWT_SECRET, TestApi, TestEnv, seed_event, token_for};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

struct Refusal {
    status: u16,
    code: String,
    message: String,
    field: Option<String>,
    headers: reqwest::header::HeaderMap,
}

async fn refusal(response: reqwest::Response) -> Refusal {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body: Value = response.json().await.expect("error bodies are JSON");
    let error = &body["error"];
    Refusal {
        status,
        code: error["code"].as_str().expect("code").to_owned(),
        message: error["message"].as_str().expect("message").to_owned(),
        field: error["field"].as_str().map(str::to_owned),
        headers,
    }
}

async fn post_raw(
    api: &TestApi,
    content_type: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> Refusal {
    let mut request = api
        .client
        .post(api.url("/events"))
        .bearer_auth(&api.token)
        .body(body);
    if let Some(ct) = content_type {
        request = request.header("content-type", ct);
    }
    refusal(request.send().await.expect("sent")).await
}

fn signed(claims: &Value, secret: &str) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("sign")
}

fn claims(overrides: Value) -> Value {
    let now = chrono::Utc::now().timestamp();
    let mut c = json!({
        "sub": "test-app", "iss": "the-eye", "aud": "eye-api",
        "iat": now, "jti": "t", "scope": "events:write"
    });
    for (k, v) in overrides.as_object().expect("object") {
        c[k] = v.clone();
    }
    c
}

#[tokio::test]
async fn a_request_without_a_token_gets_401_with_a_challenge() {
    let env = TestEnv::new().await;
    let api = env.spawn_api_with(&[]).await;
    let response = api
        .client
        .post(api.url("/events"))
        .json(&seed_event())
        .send()
        .await
        .expect("sent");
    let r = refusal(response).await;
    assert_eq!((r.status, r.code.as_str()), (401, "unauthorized"));
    assert_eq!(r.headers["www-authenticate"], r#"Bearer realm="the-eye""#);
}

#[tokio::test]
async fn bad_tokens_get_401_with_the_reason() {
    let env = TestEnv::new().await;
    let api = env.spawn_api_with(&[]).await;
    let past = chrono::Utc::now().timestamp() - 3600;
    let cases = [
        ("garbage", "not.a.token".to_owned(), "not a valid JWT"),
        (
            "foreign key",
            signed(&claims(json!({})), "another-secret-another-secret-1234"),
            "bad signature",
        ),
        (
            "expired",
            signed(&claims(json!({"exp": past})), TEST_JWT_SECRET),
            "expired",
        ),
        (
            "wrong issuer",
            signed(&claims(json!({"iss": "mallory"})), TEST_JWT_SECRET),
            "wrong issuer",
        ),
        (
            "wrong audience",
            signed(&claims(json!({"aud": "other"})), TEST_JWT_SECRET),
            "wrong audience",
        ),
    ];
    for (case, token, reason) in cases {
        let r = refusal(api.post_event_as(&token, &seed_event()).await).await;
        assert_eq!(r.status, 401, "{case}");
        assert!(r.message.contains(reason), "{case}: {}", r.message);
        let challenge = r.headers["www-authenticate"].to_str().expect("ascii");
        assert!(
            challenge.contains(r#"error="invalid_token""#),
            "{case}: {challenge}"
        );
    }
}

#[tokio::test]
async fn a_token_without_the_write_scope_gets_403_naming_it() {
    let env = TestEnv::new().await;
    let api = env.spawn_api_with(&[]).await;
    let reader = token_for("test-app", &["events:read"]);
    let r = refusal(api.post_event_as(&reader, &seed_event()).await).await;
    assert_eq!((r.status, r.code.as_str()), (403, "insufficient_scope"));
    assert!(r.message.contains("events:write"), "{}", r.message);
}

#[tokio::test]
async fn a_wrong_content_type_gets_415() {
    let env = TestEnv::new().await;
    let api = env.spawn_api_with(&[]).await;
    let body = serde_json::to_vec(&seed_event()).expect("json");
    for ct in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        let r = post_raw(&api, ct, body.clone()).await;
        assert_eq!(
            (r.status, r.code.as_str()),
            (415, "unsupported_media_type"),
            "{ct:?}"
        );
    }
}

#[tokio::test]
async fn a_body_over_the_limit_gets_413_stating_the_limit() {
    let env = TestEnv::new().await;
    let api = env.spawn_api_with(&["--max-body-bytes", "2048"]).await;
    let mut body = seed_event();
    body["data"]["blob"] = json!("x".repeat(4096));
    let r = post_raw(
        &api,
        Some("application/json"),
        serde_json::to_vec(&body).expect("json"),
    )
    .await;
    assert_eq!((r.status, r.code.as_str()), (413, "payload_too_large"));
    assert!(r.message.contains("2048"), "{}", r.message);
}

#[tokio::test]
async fn malformed_json_gets_400() {
    let env = TestEnv::new().await;
    let api = env.spawn_api_with(&[]).await;
    for body in ["{", "{\"session_id\": }", "[1, 2]", ""] {
        let r = post_raw(&api, Some("application/json"), body).await;
        assert_eq!(
            (r.status, r.code.as_str()),
            (400, "malformed_json"),
            "{body:?}"
        );
    }
}

#[tokio::test]
async fn each_bad_field_gets_422_naming_it() {
    let env = TestEnv::new().await;
    let api = env.spawn_api_with(&[]).await;
    let cases: [(&str, Value); 9] = [
        ("session_id", json!("not-a-uuid")),
        ("session_id", Value::Null),
        ("category", json!("")),
        ("category", json!("x".repeat(129))),
        ("name", json!(42)),
        ("data", json!("a string")),
        ("timestamp", json!("yesterday")),
        ("timestamp", json!("2021-02-30 10:00:00")),
        ("id", json!("12345")),
    ];
    for (field, value) in cases {
        let mut body = seed_event();
        body[field] = value.clone();
        let r = refusal(api.post_event(&body).await).await;
        assert_eq!(r.status, 422, "{field}={value}");
        assert_eq!(r.code, "invalid_field");
        assert_eq!(
            r.field.as_deref(),
            Some(field),
            "{field}={value}: {}",
            r.message
        );
    }
    let mut missing = seed_event();
    missing.as_object_mut().expect("object").remove("category");
    let r = refusal(api.post_event(&missing).await).await;
    assert_eq!((r.status, r.field.as_deref()), (422, Some("category")));
}

#[tokio::test]
async fn unknown_routes_and_methods_get_json_errors() {
    let env = TestEnv::new().await;
    let api = env.spawn_api_with(&[]).await;
    let r = refusal(api.client.get(api.url("/nope")).send().await.expect("sent")).await;
    assert_eq!((r.status, r.code.as_str()), (404, "not_found"));
    let r = refusal(
        api.client
            .delete(api.url("/events"))
            .send()
            .await
            .expect("sent"),
    )
    .await;
    assert_eq!((r.status, r.code.as_str()), (405, "method_not_allowed"));
}

#[tokio::test]
async fn an_unreachable_broker_gets_a_quick_503_with_retry_after_never_a_202() {
    let env = TestEnv::new().await;
    // Port 1: nothing listens there, so every connection attempt fails.
    let api = env
        .spawn_api_with(&[
            "--amqp-url",
            "amqp://guest:guest@127.0.0.1:1/%2f",
            "--retry-after-secs",
            "3",
        ])
        .await;
    for _ in 0..3 {
        let started = Instant::now();
        let r = refusal(api.post_event(&seed_event()).await).await;
        let took = started.elapsed();
        assert_eq!((r.status, r.code.as_str()), (503, "unavailable"));
        assert_eq!(r.headers["retry-after"], "3");
        // "Quick" is functional here, not a benchmark: far below any client timeout.
        assert!(took < Duration::from_secs(2), "503 took {took:?}");
    }
    let ready = api
        .client
        .get(api.url("/readyz"))
        .send()
        .await
        .expect("sent");
    assert_eq!(ready.status(), 503);
    let report: Value = ready.json().await.expect("json");
    assert_eq!(report["broker"], "down");
}
