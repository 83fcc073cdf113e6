//! What the handlers reach: the key ring, the revocation state, the publisher, the read
//! pool and the readiness probe, behind one `Arc`.

use std::ops::Deref;
use std::sync::Arc;

use axum::extract::FromRef;
use sea_orm::DatabaseConnection;
use tokio_util::sync::CancellationToken;

use crate::apps::AuthCache;
use crate::auth::Jwt;
use crate::extract::BodyLimit;
use crate::publisher::Publisher;
use crate::store::health::Probe;

/// Shared application state. One `Arc`, because axum clones the state for every request:
/// a struct of handles would cost one reference-count update per field per request.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

/// The state's contents.
pub struct Shared {
    pub jwt: Arc<Jwt>,
    /// Registered applications, revoked tokens and rate limits, reloaded in the background
    /// on the ingestion pool it holds.
    pub auth: Arc<AuthCache>,
    pub publisher: Publisher,
    pub body_limit: BodyLimit,
    /// `POST /events/batch`'s limits.
    pub batch: crate::settings::BatchSettings,
    /// `POST /imports`'s upload limit, in bytes.
    pub import_max_bytes: u64,
    /// `Retry-After` seconds of a 503 when the broker is unavailable.
    pub retry_after_secs: u32,
    /// The read pool ([`crate::store::Pools::reads`]): reads, `/search` and replay (which
    /// also releases the poisoned rows it re-published), under the read statement timeout.
    /// The api never writes events; ingestion never waits on this pool.
    pub reads: DatabaseConnection,
    /// Which partitions of `events` a read can skip, learnt as reads go.
    pub partitions: crate::store::partitions::PartitionBounds,
    /// `POST /webhooks/{id}/test`'s sender (the dispatcher's: signing, address guard).
    pub webhook_sender: eye_dispatcher::Sender,
    /// `/readyz`'s database check, on the ingestion pool.
    pub probe: Probe,
    /// Cancelled when shutdown begins, so readiness turns 503 first.
    pub shutdown: CancellationToken,
}

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl FromRef<AppState> for Arc<Jwt> {
    fn from_ref(state: &AppState) -> Self {
        state.jwt.clone()
    }
}

impl FromRef<AppState> for BodyLimit {
    fn from_ref(state: &AppState) -> Self {
        state.body_limit
    }
}
