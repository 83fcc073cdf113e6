//! What the client could not deliver, and why.

use serde::Deserialize;
use uuid::Uuid;

use crate::Event;

/// The api's reason for refusing an event (or a whole request): its error `code`, the
/// `field` at fault (a JSON pointer in a batch answer) and a `message`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Refusal {
    /// HTTP status of the answer that carried the refusal (200 for one event of a batch).
    #[serde(skip)]
    pub status: u16,
    pub code: String,
    #[serde(default)]
    pub field: Option<String>,
    pub message: String,
}

/// Why an event was not delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Reason {
    /// The api refused it: sending it again as it is would be refused again.
    #[error("refused ({}): {}{}", .0.code, .0.message, .0.field.as_deref().map(|f| format!(" at {f}")).unwrap_or_default())]
    Refused(Refusal),
    /// Every attempt failed (network, 429, 5xx) until the retry policy gave up. The event
    /// may have been stored: send it again with the same id, never with another.
    #[error("gave up after {attempts} attempts: {last}")]
    GaveUp { attempts: u32, last: String },
    /// The background batcher's buffer was full (or it was closed).
    #[error("the client's buffer is full")]
    Full,
}

/// An event that was not delivered, with its id (assigned if it had none) and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("event {id} not delivered: {reason}")]
pub struct Undelivered {
    pub id: Uuid,
    pub event: Event,
    pub reason: Reason,
}

/// A client that cannot be built (a bad URL or token).
#[derive(Debug, thiserror::Error)]
#[error("invalid client configuration: {0}")]
pub struct ConfigError(pub String);
