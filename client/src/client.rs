//! Sending: `POST /events` and `POST /events/batch`, with ids assigned before the first
//! attempt, gzip or zstd, and retries with exponential backoff (and jitter) on network errors, 429
//! and 5xx, never sooner than the api's `Retry-After`.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{CONTENT_ENCODING, CONTENT_TYPE};
use serde::Deserialize;
use uuid::Uuid;

use crate::error::{ConfigError, Reason, Refusal, Undelivered};
use crate::retry::{Attempt, RetryPolicy, answer, with_retries};
use crate::{BatchConfig, Batcher, Event};

/// Bodies at least this large are compressed (smaller ones gain nothing).
const COMPRESS_FROM_BYTES: usize = 1024;

/// How batch bodies are compressed (`Content-Encoding`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Compression {
    None,
    /// gzip, fast level (the default).
    #[default]
    Gzip,
    /// zstd, level 3: about gzip's ratio for a fraction of its CPU on both sides.
    Zstd,
}

impl Compression {
    fn encoding(self) -> Option<&'static str> {
        match self {
            Self::None => None,
            Self::Gzip => Some("gzip"),
            Self::Zstd => Some("zstd"),
        }
    }

    fn compress(self, bytes: Vec<u8>) -> Vec<u8> {
        match self {
            Self::None => bytes,
            Self::Gzip => gzip(&bytes),
            Self::Zstd => zstd::encode_all(bytes.as_slice(), 3).unwrap_or_default(),
        }
    }
}

/// A client of one api, for one application's token. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    events_url: String,
    batch_url: String,
    token: String,
    retry: RetryPolicy,
    compression: Compression,
    max_batch_events: usize,
}

/// Options of a [`Client`].
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    url: String,
    token: String,
    retry: RetryPolicy,
    timeout: Duration,
    compression: Compression,
    max_batch_events: usize,
}

impl ClientBuilder {
    #[must_use]
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Longest wait for one answer (default 30 s).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Whether batch bodies are gzipped (default true); `false` sends them uncompressed.
    #[must_use]
    pub fn gzip(mut self, gzip: bool) -> Self {
        self.compression = if gzip {
            Compression::Gzip
        } else {
            Compression::None
        };
        self
    }

    /// How batch bodies are compressed (default [`Compression::Gzip`]).
    #[must_use]
    pub fn compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }

    /// Most events per request of [`Client::send_batch`] (default 500; the api's own limit
    /// is `EYE_BATCH_MAX_EVENTS`, 1,000 by default). Larger batches are split.
    #[must_use]
    pub fn max_batch_events(mut self, n: usize) -> Self {
        self.max_batch_events = n.max(1);
        self
    }

    pub fn build(self) -> Result<Client, ConfigError> {
        let base = reqwest::Url::parse(&self.url)
            .map_err(|e| ConfigError(format!("url {:?}: {e}", self.url)))?;
        let join = |path: &str| {
            base.join(path)
                .map(String::from)
                .map_err(|e| ConfigError(format!("url {:?}: {e}", self.url)))
        };
        if self.token.trim().is_empty() {
            return Err(ConfigError("the token is empty".into()));
        }
        let http = reqwest::Client::builder()
            .timeout(self.timeout)
            .build()
            .map_err(|e| ConfigError(e.to_string()))?;
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                events_url: join("events")?,
                batch_url: join("events/batch")?,
                token: self.token,
                retry: self.retry,
                compression: self.compression,
                max_batch_events: self.max_batch_events,
            }),
        })
    }
}

/// What became of the events of [`Client::send_batch`].
#[derive(Debug, Default, Clone)]
pub struct BatchReport {
    /// Ids of the events the api accepted (confirmed by its broker), in input order.
    pub accepted: Vec<Uuid>,
    /// The others, with why.
    pub undelivered: Vec<Undelivered>,
}

#[derive(Deserialize)]
struct AcceptedBody {
    id: Uuid,
}

#[derive(Deserialize)]
struct BatchAnswer {
    results: Vec<ItemResult>,
}

#[derive(Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
enum ItemResult {
    Accepted { id: Uuid },
    Refused(Refusal),
}

impl Client {
    /// A client of the api at `url` (e.g. `http://127.0.0.1:8000`) sending with `token`
    /// (a JWT with `events:write`), with the default options.
    pub fn new(url: impl Into<String>, token: impl Into<String>) -> Result<Self, ConfigError> {
        Self::builder(url, token).build()
    }

    pub fn builder(url: impl Into<String>, token: impl Into<String>) -> ClientBuilder {
        let mut url = url.into();
        if !url.ends_with('/') {
            url.push('/');
        }
        ClientBuilder {
            url,
            token: token.into(),
            retry: RetryPolicy::default(),
            timeout: Duration::from_secs(30),
            compression: Compression::Gzip,
            max_batch_events: 500,
        }
    }

    /// A background batcher sending through this client (see [`Batcher`]).
    pub fn batcher(&self, config: BatchConfig) -> Batcher {
        Batcher::start(self.clone(), config)
    }

    /// Sends one event (`POST /events`), retrying until the api accepts or refuses it.
    pub async fn send(&self, mut event: Event) -> Result<Uuid, Undelivered> {
        let id = event.assign_id();
        let body = serde_json::to_vec(&event).map_err(|e| undelivered(&event, gave_up(1, &e)))?;
        let result = with_retries(self.inner.retry, || async {
            let request = self
                .inner
                .http
                .post(&self.inner.events_url)
                .bearer_auth(&self.inner.token)
                .header(CONTENT_TYPE, "application/json")
                .body(body.clone());
            match answer(request.send().await).await {
                Attempt::Done(response) => match response.json::<AcceptedBody>().await {
                    Ok(accepted) => Attempt::Done(accepted.id),
                    Err(e) => Attempt::Retry {
                        error: format!("unreadable answer: {e}"),
                        retry_after: None,
                    },
                },
                Attempt::Retry { error, retry_after } => Attempt::Retry { error, retry_after },
                Attempt::Refused(refusal) => Attempt::Refused(refusal),
            }
        })
        .await;
        match result {
            Ok(accepted) => {
                debug_assert_eq!(accepted, id);
                Ok(accepted)
            }
            Err(reason) => Err(undelivered(&event, reason)),
        }
    }

    /// Sends events in batches (`POST /events/batch`, gzipped), each retried until the api
    /// answers it; a batch the api finds too large is split in two. Never fails as a whole:
    /// the report says which events were accepted and which not, and why.
    pub async fn send_batch(&self, mut events: Vec<Event>) -> BatchReport {
        for event in &mut events {
            event.assign_id();
        }
        let mut report = BatchReport::default();
        let mut chunks: Vec<Vec<Event>> = Vec::new();
        let mut rest = events;
        while !rest.is_empty() {
            let tail = rest.split_off(rest.len().min(self.inner.max_batch_events));
            chunks.push(rest);
            rest = tail;
        }
        // A stack, so that the halves of a split batch go next, in order.
        chunks.reverse();
        while let Some(chunk) = chunks.pop() {
            match self.send_chunk(&chunk).await {
                Ok(results) => {
                    for (event, result) in chunk.into_iter().zip(results) {
                        match result {
                            ItemResult::Accepted { id } => report.accepted.push(id),
                            ItemResult::Refused(mut refusal) => {
                                refusal.status = 200;
                                report
                                    .undelivered
                                    .push(undelivered(&event, Reason::Refused(refusal)));
                            }
                        }
                    }
                }
                Err(Reason::Refused(refusal)) if refusal.status == 413 && chunk.len() > 1 => {
                    let mut first = chunk;
                    let second = first.split_off(first.len() / 2);
                    chunks.push(second);
                    chunks.push(first);
                }
                Err(reason) => report
                    .undelivered
                    .extend(chunk.iter().map(|e| undelivered(e, reason.clone()))),
            }
        }
        report
    }

    /// One batch request, retried; one result per event.
    async fn send_chunk(&self, chunk: &[Event]) -> Result<Vec<ItemResult>, Reason> {
        let json = serde_json::to_vec(chunk).map_err(|e| gave_up(1, &e))?;
        let compression = if json.len() >= COMPRESS_FROM_BYTES {
            self.inner.compression
        } else {
            Compression::None
        };
        let body = compression.compress(json);
        with_retries(self.inner.retry, || async {
            let mut request = self
                .inner
                .http
                .post(&self.inner.batch_url)
                .bearer_auth(&self.inner.token)
                .header(CONTENT_TYPE, "application/json")
                .body(body.clone());
            if let Some(encoding) = compression.encoding() {
                request = request.header(CONTENT_ENCODING, encoding);
            }
            match answer(request.send().await).await {
                Attempt::Done(response) => match response.json::<BatchAnswer>().await {
                    Ok(answer) if answer.results.len() == chunk.len() => {
                        Attempt::Done(answer.results)
                    }
                    Ok(answer) => Attempt::Retry {
                        error: format!(
                            "{} results for {} events",
                            answer.results.len(),
                            chunk.len()
                        ),
                        retry_after: None,
                    },
                    Err(e) => Attempt::Retry {
                        error: format!("unreadable answer: {e}"),
                        retry_after: None,
                    },
                },
                Attempt::Retry { error, retry_after } => Attempt::Retry { error, retry_after },
                Attempt::Refused(refusal) => Attempt::Refused(refusal),
            }
        })
        .await
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(bytes.len() / 4),
        flate2::Compression::fast(),
    );
    // Writing to a Vec cannot fail.
    let _ = encoder.write_all(bytes);
    encoder.finish().unwrap_or_default()
}

fn gave_up(attempts: u32, e: &dyn std::fmt::Display) -> Reason {
    Reason::GaveUp {
        attempts,
        last: e.to_string(),
    }
}

pub(crate) fn undelivered(event: &Event, reason: Reason) -> Undelivered {
    Undelivered {
        id: event.id.unwrap_or_default(),
        event: event.clone(),
        reason,
    }
}
