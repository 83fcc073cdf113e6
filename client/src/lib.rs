//! A client for The Eye: sends events so that none is lost or doubled.
//!
//! - Every event gets its id (UUIDv7) before the first attempt, so a retry never makes a
//!   second row: the api stores one row per id.
//! - [`Client::send`] posts one event; [`Client::send_batch`] posts many (`POST
//!   /events/batch`, gzipped, or zstd with [`ClientBuilder::compression`]); [`Client::batcher`] batches in the background, bounded in
//!   size and linger.
//! - Network errors, 429 and 5xx are retried with exponential backoff and jitter, never
//!   sooner than the api's `Retry-After`; refusals (an invalid field, a bad token) are not.
//! - What could not be delivered is handed back with its id and the reason
//!   ([`Undelivered`]): nothing is dropped silently.
//!
//! ```no_run
//! use eye_client::{BatchConfig, Client, Event};
//! use serde_json::json;
//! use uuid::Uuid;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::new("http://127.0.0.1:8000", std::env::var("EYE_TOKEN")?)?;
//! let session = Uuid::now_v7();
//! let pageview = |path: &str| {
//!     Event::new(session, "page interaction", "pageview")
//!         .data(json!({"host": "www.consumeraffairs.com", "path": path}))
//! };
//!
//! // One event: Ok(id) once the api's broker confirmed it.
//! let id = client.send(pageview("/")).await?;
//!
//! // Many: one answer per event.
//! let report = client.send_batch(vec![pageview("/a"), pageview("/b")]).await;
//! assert_eq!(report.accepted.len() + report.undelivered.len(), 2);
//!
//! // In the background: send() returns at once; close() waits and reports.
//! let batcher = client.batcher(BatchConfig::default());
//! for i in 0..10_000 {
//!     batcher.send(pageview(&format!("/p/{i}")))?;
//! }
//! let report = batcher.close().await;
//! for failed in &report.undelivered {
//!     eprintln!("{}: {}", failed.id, failed.reason);
//! }
//! # let _ = id;
//! # Ok(())
//! # }
//! ```

mod batcher;
mod client;
mod error;
mod event;
mod retry;
pub mod webhooks;

pub use batcher::{BatchConfig, Batcher, Report};
pub use client::{BatchReport, Client, ClientBuilder, Compression};
pub use error::{ConfigError, Reason, Refusal, Undelivered};
pub use event::Event;
pub use retry::RetryPolicy;
