//! An api served in-process on a free port, with a typed client.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use eye_api::apps::AuthCache;
use eye_api::auth::Jwt;
use eye_api::settings::JwtSettings;
use eye_core::Secret;
use serde_json::Value;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{TEST_JWT_SECRET, TestEnv};

/// A running api and a client for it.
pub struct TestApi {
    pub addr: SocketAddr,
    /// The `/metrics` listener.
    pub metrics_addr: SocketAddr,
    /// The api's revocation state (its lookup counter).
    pub auth: Arc<AuthCache>,
    pub client: reqwest::Client,
    /// A valid token for application `test-app` with every scope.
    pub token: String,
    stop: CancellationToken,
    handle: Option<JoinHandle<std::io::Result<()>>>,
}

/// The issuer the tests sign with.
pub fn jwt() -> Jwt {
    Jwt::new(&JwtSettings {
        secret: Secret::new(TEST_JWT_SECRET.into()),
        keys: None,
        signing_kid: None,
        issuer: "the-eye".into(),
        audience: "eye-api".into(),
    })
    .expect("test key ring")
}

/// A token for `app` with the given scopes, not recorded in the registry (the api accepts
/// it while `app` is registered and enabled; [`TestEnv::new`] registers [`crate::TEST_APPS`]).
pub fn token_for(app: &str, scopes: &[&str]) -> String {
    jwt().issue(app, scopes, None).expect("issue token")
}

impl TestEnv {
    /// Starts an api for this env; `extra` flags override the defaults.
    pub async fn spawn_api_with(&self, extra: &[&str]) -> TestApi {
        let app = eye_api::Application::build(self.api_settings(extra))
            .await
            .expect("build api");
        let addr = app.local_addr().expect("bound");
        let metrics_addr = app.metrics_addr().expect("bound");
        let auth = app.auth();
        let stop = CancellationToken::new();
        let handle = tokio::spawn(app.run_until_stopped(stop.clone()));
        TestApi {
            addr,
            metrics_addr,
            auth,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("http client"),
            token: token_for("test-app", &["events:write", "events:read"]),
            stop,
            handle: Some(handle),
        }
    }

    /// Starts an api and waits until it is connected to the broker.
    pub async fn spawn_api(&self) -> TestApi {
        let api = self.spawn_api_with(&[]).await;
        api.wait_ready(Duration::from_secs(15)).await;
        api
    }
}

impl TestApi {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `POST /events` with this api's token.
    pub async fn post_event(&self, body: &Value) -> reqwest::Response {
        self.post_event_as(&self.token, body).await
    }

    /// `POST /events` with another token.
    pub async fn post_event_as(&self, token: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url("/events"))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    /// `POST /events/batch` with this api's token: `body` as is, with `content_type` and
    /// `encoding` (`Content-Encoding`) when given; returns the status, the headers and the
    /// JSON body.
    pub async fn post_batch_raw(
        &self,
        body: Vec<u8>,
        content_type: &str,
        encoding: Option<&str>,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let mut request = self
            .client
            .post(self.url("/events/batch"))
            .bearer_auth(&self.token)
            .header("content-type", content_type)
            .body(body);
        if let Some(encoding) = encoding {
            request = request.header("content-encoding", encoding);
        }
        let response = request.send().await.expect("request sent");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        (
            status,
            headers,
            response.json().await.unwrap_or(Value::Null),
        )
    }

    /// `POST /events/batch` of `events` as a JSON array; returns the status and the body.
    pub async fn post_batch(&self, events: &[Value]) -> (u16, Value) {
        let body = serde_json::to_vec(events).expect("serialize batch");
        let (status, _, body) = self.post_batch_raw(body, "application/json", None).await;
        (status, body)
    }

    /// `GET path` with `token`; returns the status and the JSON body.
    pub async fn get_as(&self, token: &str, path: &str) -> (u16, Value) {
        let response = self
            .client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request sent");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// `GET path` with this api's token.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.get_as(&self.token, path).await
    }

    /// Polls `/readyz` until it answers 200.
    pub async fn wait_ready(&self, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let ready = self
                .client
                .get(self.url("/readyz"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "api not ready within {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Asks the api to stop and waits for it.
    pub async fn stop(mut self) {
        self.stop.cancel();
        if let Some(handle) = self.handle.take() {
            let _ = handle.await;
        }
    }
}

impl Drop for TestApi {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// A valid seed-shaped event body with a random session.
pub fn seed_event() -> Value {
    serde_json::json!({
        "session_id": uuid::Uuid::new_v4(),
        "category": "page interaction",
        "name": "pageview",
        "data": {"host": "www.consumeraffairs.com", "path": "/"},
        "timestamp": "2021-01-01 09:15:27.243860"
    })
}
