//! A webhook receiver for tests: an axum server on an ephemeral port that records every
//! request (headers and body) and answers as told (status, delay, `Retry-After`), and that
//! can be taken down (its port closed: connections refused) and brought back on the same
//! port.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use tokio::task::JoinHandle;

/// One request as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub webhook_id: String,
    pub timestamp: String,
    pub signature: String,
    pub body: Vec<u8>,
    pub at: Instant,
}

impl Received {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// How the receiver answers.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub delay: Duration,
    pub retry_after: Option<String>,
}

impl Default for Answer {
    fn default() -> Self {
        Self {
            status: 200,
            delay: Duration::ZERO,
            retry_after: None,
        }
    }
}

#[derive(Debug, Default)]
struct Inner {
    received: Vec<Received>,
    answers: std::collections::VecDeque<Answer>,
    default: Answer,
}

/// The receiver.
pub struct Receiver {
    pub addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
    server: Option<JoinHandle<()>>,
}

impl Receiver {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind receiver");
        let addr = listener.local_addr().expect("receiver addr");
        let inner = Arc::new(Mutex::new(Inner::default()));
        let server = Some(serve(listener, Arc::clone(&inner)));
        Self {
            addr,
            inner,
            server,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Every later request gets `answer` (after the queued ones).
    pub fn answer(&self, answer: Answer) {
        self.lock().default = answer;
    }

    /// The next request gets `answer`, once.
    pub fn answer_once(&self, answer: Answer) {
        self.lock().answers.push_back(answer);
    }

    pub fn received(&self) -> Vec<Received> {
        self.lock().received.clone()
    }

    /// Waits until at least `n` requests arrived or `within` passed; returns them.
    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<Received> {
        let deadline = Instant::now() + within;
        loop {
            let got = self.received();
            if got.len() >= n || Instant::now() >= deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Closes the port: connections are refused until [`Self::up`].
    pub async fn down(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
            let _ = server.await;
        }
    }

    /// Listens again on the same port.
    pub async fn up(&mut self) {
        let listener = tokio::net::TcpListener::bind(self.addr)
            .await
            .expect("rebind receiver");
        self.server = Some(serve(listener, Arc::clone(&self.inner)));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

fn serve(listener: tokio::net::TcpListener, inner: Arc<Mutex<Inner>>) -> JoinHandle<()> {
    let app = Router::new()
        .route("/{*path}", post(receive))
        .with_state(inner);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    })
}

async fn receive(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let answer = {
        let mut inner = inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.received.push(Received {
            webhook_id: header("webhook-id"),
            timestamp: header("webhook-timestamp"),
            signature: header("webhook-signature"),
            body: body.to_vec(),
            at: Instant::now(),
        });
        let default = inner.default.clone();
        inner.answers.pop_front().unwrap_or(default)
    };
    if !answer.delay.is_zero() {
        tokio::time::sleep(answer.delay).await;
    }
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
    let mut response = (status, "ok from the test receiver").into_response();
    if let Some(retry_after) = answer.retry_after
        && let Ok(value) = retry_after.parse()
    {
        response.headers_mut().insert("retry-after", value);
    }
    response
}
