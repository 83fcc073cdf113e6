//! The providers: external feeds parsed as a stream into provider-neutral records, which
//! the fetcher publishes through the same queue as application events.
//!
//! A provider is one module implementing [`Provider`]: how to parse its body into
//! [`Record`]s. Fetching (HTTP, limits, retries, circuit) is shared in [`crate::http`], and
//! the records and their mapping to queue events are the contract in `eye_core::provider`,
//! so the next provider (a JSON API, say) only writes its parser.

mod capped;
pub mod fever;

use std::io::BufRead;
use std::sync::Arc;

pub use eye_core::provider::{PlanRecord, Record, Rejected, ZoneRecord};

/// A document could not be read to its end. Records delivered before the error stand.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeedError {
    #[error("malformed document at byte {position}: {message}")]
    Malformed { position: u64, message: String },
    #[error("document is over the limit of {limit} bytes")]
    TooLarge { limit: usize },
    /// The body stopped arriving (connection reset, timeout): not the document's fault.
    #[error("the body could not be read: {0}")]
    Read(String),
    #[error("nesting deeper than {limit} elements at byte {position}")]
    TooDeep { limit: usize, position: u64 },
    #[error("a DOCTYPE at byte {position} is refused (no entity expansion)")]
    Doctype { position: u64 },
}

impl FeedError {
    /// Byte offset of the problem, where there is one.
    pub fn position(&self) -> Option<u64> {
        match self {
            Self::Malformed { position, .. }
            | Self::TooDeep { position, .. }
            | Self::Doctype { position } => Some(*position),
            Self::TooLarge { .. } | Self::Read(_) => None,
        }
    }
}

/// Bounds on what a document may cost to parse.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest body accepted, in bytes.
    pub max_bytes: usize,
    /// Deepest element nesting accepted (the feeds nest 5 deep).
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_bytes: 64 * 1024 * 1024,
            max_depth: 32,
        }
    }
}

/// What one parse produced, besides the records handed to the sink.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParseSummary {
    pub plans: usize,
    pub rejected: usize,
}

/// One external provider: its name (the `provider:<name>` source) and its parser.
pub trait Provider: Send + Sync + std::fmt::Debug {
    /// Short lowercase name, e.g. `fever`.
    fn name(&self) -> &str;

    /// Parses a body as it arrives, handing each record to `sink` as soon as it is complete
    /// (so memory stays flat on large documents; the fetcher calls it on a blocking thread
    /// reading the HTTP body). Bad records become [`Record::Rejected`] (built with
    /// [`Rejected::new`]), and every plan goes through [`PlanRecord::into_record`], so what
    /// is out of the storable bounds (`eye_core::provider::fields`) is refused here, never by
    /// the database.
    /// Only an unreadable document returns an error, after the records read before the
    /// problem were delivered.
    fn parse(
        &self,
        body: &mut dyn BufRead,
        limits: Limits,
        sink: &mut dyn FnMut(Record),
    ) -> Result<ParseSummary, FeedError>;
}

/// The providers this build knows, by name: the one place a new provider is registered.
pub fn builtin(name: &str) -> Option<Arc<dyn Provider>> {
    match name {
        "fever" => Some(Arc::new(fever::Fever)),
        _ => None,
    }
}
