//! Every way a token is refused: 401, `error.reason` machine-readable, one test per case.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use eye_testkit::{TEST_JWT_SECRET, TestApi, TestEnv, seed_event, token_for};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

fn claims(overrides: Value) -> Value {
    let now = chrono::Utc::now().timestamp();
    let mut c = json!({
        "sub": "test-app", "iss": "the-eye", "aud": "eye-api",
        "iat": now, "jti": uuid::Uuid::now_v7(), "scope": "events:write events:read"
    });
    for (k, v) in overrides.as_object().expect("object") {
        c[k] = v.clone();
    }
    c
}

fn signed_with(header: Header, claims: &Value, secret: &str) -> String {
    jsonwebtoken::encode(
        &header,
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("sign")
}

fn signed(claims: &Value) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("default".into());
    signed_with(header, claims, TEST_JWT_SECRET)
}

/// Posts with `token` and asserts a 401 whose body names `reason`.
async fn assert_refused(api: &TestApi, token: &str, reason: &str) {
    let response = api.post_event_as(token, &seed_event()).await;
    assert_eq!(response.status(), 401, "expected 401 `{reason}`");
    assert!(response.headers().contains_key("www-authenticate"));
    let body: Value = response.json().await.expect("JSON error body");
    assert_eq!(body["error"]["code"], "unauthorized");
    assert_eq!(body["error"]["reason"], reason, "{body}");
}

async fn api() -> (TestEnv, TestApi) {
    let env = TestEnv::new().await;
    let api = env.spawn_api().await;
    (env, api)
}

#[tokio::test]
async fn a_valid_token_with_its_kid_is_accepted() {
    let (_env, api) = api().await;
    let response = api
        .post_event_as(&signed(&claims(json!({}))), &seed_event())
        .await;
    assert_eq!(response.status(), 202);
}

#[tokio::test]
async fn alg_none_is_refused() {
    let (_env, api) = api().await;
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims(json!({})).to_string());
    assert_refused(
        &api,
        &format!("{header}.{payload}."),
        "algorithm_not_accepted",
    )
    .await;
}

#[tokio::test]
async fn algorithm_confusion_is_refused() {
    let (_env, api) = api().await;
    // HS512 with the right secret, and an RS256 header over an HMAC signature (the classic
    // public-key-as-HMAC-secret confusion): both refused before any key is used.
    let hs512 = signed_with(
        Header::new(Algorithm::HS512),
        &claims(json!({})),
        TEST_JWT_SECRET,
    );
    assert_refused(&api, &hs512, "algorithm_not_accepted").await;
    let hs256 = signed(&claims(json!({})));
    let mut parts = hs256.split('.');
    let (_, payload, signature) = (parts.next(), parts.next(), parts.next());
    let rs_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT","kid":"default"}"#);
    let confused = format!(
        "{rs_header}.{}.{}",
        payload.expect("payload"),
        signature.expect("signature")
    );
    assert_refused(&api, &confused, "algorithm_not_accepted").await;
}

#[tokio::test]
async fn an_unknown_kid_is_refused() {
    let (_env, api) = api().await;
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("retired-2019".into());
    let token = signed_with(header, &claims(json!({})), TEST_JWT_SECRET);
    assert_refused(&api, &token, "unknown_kid").await;
}

#[tokio::test]
async fn a_wrong_issuer_is_refused() {
    let (_env, api) = api().await;
    assert_refused(
        &api,
        &signed(&claims(json!({"iss": "mallory"}))),
        "wrong_issuer",
    )
    .await;
}

#[tokio::test]
async fn a_wrong_audience_is_refused() {
    let (_env, api) = api().await;
    assert_refused(
        &api,
        &signed(&claims(json!({"aud": "other-api"}))),
        "wrong_audience",
    )
    .await;
}

#[tokio::test]
async fn an_expired_token_is_refused() {
    let (_env, api) = api().await;
    let past = chrono::Utc::now().timestamp() - 3600;
    assert_refused(&api, &signed(&claims(json!({"exp": past}))), "expired").await;
}

#[tokio::test]
async fn a_not_yet_valid_token_is_refused() {
    let (_env, api) = api().await;
    let later = chrono::Utc::now().timestamp() + 3600;
    assert_refused(
        &api,
        &signed(&claims(json!({"nbf": later}))),
        "not_yet_valid",
    )
    .await;
}

#[tokio::test]
async fn a_tampered_token_is_refused() {
    let (_env, api) = api().await;
    // test-app's token, its payload rewritten to claim `admin`, signature kept.
    let token = signed(&claims(json!({})));
    let mut parts = token.split('.');
    let (header, _, signature) = (parts.next(), parts.next(), parts.next());
    let forged = URL_SAFE_NO_PAD.encode(claims(json!({"scope": "admin"})).to_string());
    let tampered = format!(
        "{}.{forged}.{}",
        header.expect("header"),
        signature.expect("signature")
    );
    assert_refused(&api, &tampered, "bad_signature").await;
}

#[tokio::test]
async fn a_token_signed_with_another_secret_is_refused() {
    let (_env, api) = api().await;
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("default".into());
    let token = signed_with(
        header,
        &claims(json!({})),
        "another-secret-another-secret-1234",
    );
    assert_refused(&api, &token, "bad_signature").await;
}

#[tokio::test]
async fn a_token_of_an_unregistered_application_is_refused() {
    let (_env, api) = api().await;
    assert_refused(
        &api,
        &token_for("nobody", &["events:write"]),
        "unknown_application",
    )
    .await;
}

#[tokio::test]
async fn a_rotated_key_ring_accepts_old_and_new_keys() {
    let env = TestEnv::new().await;
    let new_secret = "rotated-secret-rotated-secret-rotated-0001";
    let ring = format!("default:{TEST_JWT_SECRET},k2:{new_secret}");
    let api = env
        .spawn_api_with(&["--jwt-keys", &ring, "--jwt-signing-kid", "k2"])
        .await;
    api.wait_ready(std::time::Duration::from_secs(15)).await;
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("k2".into());
    let new = signed_with(header, &claims(json!({})), new_secret);
    let old = token_for("test-app", &["events:write"]);
    for token in [new, old] {
        let response = api.post_event_as(&token, &seed_event()).await;
        assert_eq!(response.status(), 202);
    }
}
