//! A JSONPlaceholder-shaped API for the JSON provider's tests: an axum server on 127.0.0.1:0
//! serving resources (JSON arrays, from `testkit/tests/fixtures/jsonplaceholder/` or set by
//! the test) at `/<resource>`, plain or paged (`?_page=N&_limit=M`, json-server's convention),
//! with faults queued for the next requests (a status, a malformed body).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::Value;

/// Where the JSON fixtures live.
pub const JSON_FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/jsonplaceholder"
);

/// A JSON fixture's records.
pub fn json_fixture(resource: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(format!("{JSON_FIXTURES}/{resource}.json"))
        .unwrap_or_else(|e| panic!("{resource}: {e}"));
    serde_json::from_str(&text).expect("a fixture is a JSON array")
}

/// What the next request gets instead of its resource.
#[derive(Debug, Clone)]
pub enum Fault {
    /// This status, empty body.
    Status(u16),
    /// 200 with this body (malformed JSON, an object, HTML...).
    Body(&'static str),
}

#[derive(Default)]
struct Inner {
    resources: HashMap<String, Vec<Value>>,
    faults: VecDeque<Fault>,
}

/// The simulated JSON API; stops when dropped.
pub struct JsonApiSim {
    pub addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
    requests: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl JsonApiSim {
    /// Serves posts, comments and users from the fixtures.
    pub async fn start() -> Self {
        let sim = Self::empty().await;
        for resource in ["posts", "comments", "users"] {
            sim.set(resource, json_fixture(resource));
        }
        sim
    }

    /// Serves no resource until [`Self::set`].
    pub async fn empty() -> Self {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let requests = Arc::new(AtomicUsize::new(0));
        let app = axum::Router::new()
            .route("/{resource}", get(serve))
            .with_state((inner.clone(), requests.clone()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            addr,
            inner,
            requests,
            task,
        }
    }

    /// The base URL (the providers file's `url`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Replaces a resource's records.
    pub fn set(&self, resource: &str, records: Vec<Value>) {
        self.inner
            .lock()
            .expect("sim")
            .resources
            .insert(resource.to_owned(), records);
    }

    /// Changes the records of `resource` in place.
    pub fn edit(&self, resource: &str, change: impl FnOnce(&mut Vec<Value>)) {
        let mut inner = self.inner.lock().expect("sim");
        change(inner.resources.entry(resource.to_owned()).or_default());
    }

    /// Queues faults for the next requests, in order.
    pub fn fail_next(&self, faults: Vec<Fault>) {
        self.inner.lock().expect("sim").faults.extend(faults);
    }

    /// Requests answered so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for JsonApiSim {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type SimState = (Arc<Mutex<Inner>>, Arc<AtomicUsize>);

async fn serve(
    State((inner, requests)): State<SimState>,
    Path(resource): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    requests.fetch_add(1, Ordering::SeqCst);
    let mut inner = inner.lock().expect("sim");
    let json = |body: String| ([(header::CONTENT_TYPE, "application/json")], body).into_response();
    match inner.faults.pop_front() {
        Some(Fault::Status(status)) => {
            return StatusCode::from_u16(status)
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
                .into_response();
        }
        Some(Fault::Body(body)) => return json(body.to_owned()),
        None => {}
    }
    let Some(records) = inner.resources.get(&resource) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let page = query.get("_page").and_then(|p| p.parse::<usize>().ok());
    let limit = query.get("_limit").and_then(|l| l.parse::<usize>().ok());
    let slice: Vec<&Value> = match (page, limit) {
        (Some(page), Some(limit)) => records
            .iter()
            .skip(page.saturating_sub(1) * limit)
            .take(limit)
            .collect(),
        _ => records.iter().collect(),
    };
    json(serde_json::to_string(&slice).expect("json"))
}
