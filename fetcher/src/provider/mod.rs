//! The providers: external feeds parsed as a stream into provider-neutral records, which
//! the fetcher publishes through the same queue as application events.
//!
//! A provider is one module implementing [`Provider`]: how to parse its body into
//! [`Record`]s. Fetching (HTTP, limits, retries, circuit) is shared in [`crate::http`], and
//! the records and their mapping to queue events are the contract in `eye_core::provider`,
//! so the next provider (a JSON API, say) only writes its parser.

mod capped;
pub mod fever;
pub mod json;

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
    /// Plans, or a JSON provider's records.
    pub plans: usize,
    pub rejected: usize,
}

/// The documents of one resource that a cycle reads: one, or page after page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    /// The resource (a JSON provider's `posts`); None for a provider's one document. Records
    /// of a resource read to its end and gone from it are marked removed.
    pub resource: Option<String>,
    pub url: String,
    /// Records per page (`?_page=N&_limit=M`, pages from 1, until one comes back short);
    /// 0: one document.
    pub page_size: usize,
}

impl Listing {
    /// The URL of page `page` (from 1).
    pub fn page_url(&self, page: usize) -> String {
        if self.page_size == 0 {
            return self.url.clone();
        }
        let sep = if self.url.contains('?') { '&' } else { '?' };
        format!("{}{sep}_page={page}&_limit={}", self.url, self.page_size)
    }
}

/// How a JSON API adapter is configured (the providers file's `resources`, `page_size` and
/// `parents`; the XML adapter takes none).
#[derive(Debug, Clone, Default)]
pub struct AdapterOptions {
    pub resources: Vec<String>,
    pub page_size: usize,
    /// Resource -> parent key, over JSONPlaceholder's defaults.
    pub parents: std::collections::BTreeMap<String, String>,
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

    /// What one cycle reads, from the configured URL: by default that one document.
    fn listings(&self, url: &str) -> Vec<Listing> {
        vec![Listing {
            resource: None,
            url: url.to_owned(),
            page_size: 0,
        }]
    }

    /// Parses one page of a listing (by default, [`Provider::parse`]).
    fn parse_page(
        &self,
        listing: &Listing,
        body: &mut dyn BufRead,
        limits: Limits,
        sink: &mut dyn FnMut(Record),
    ) -> Result<ParseSummary, FeedError> {
        let _ = listing;
        self.parse(body, limits, sink)
    }
}

/// The providers this build knows, by name: the one place a new provider is registered.
pub fn builtin(name: &str) -> Option<Arc<dyn Provider>> {
    build(name, &AdapterOptions::default())
}

/// The adapter `name`, configured by `options` where it takes any.
pub fn build(name: &str, options: &AdapterOptions) -> Option<Arc<dyn Provider>> {
    match name {
        "fever" => Some(Arc::new(fever::Fever)),
        "json" => {
            let mut json = json::JsonApi::default();
            if !options.resources.is_empty() {
                json.resources = options.resources.clone();
            }
            json.page_size = options.page_size;
            json.parents.extend(options.parents.clone());
            Some(Arc::new(json))
        }
        _ => None,
    }
}
