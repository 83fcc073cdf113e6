//! Fetching a provider's document over HTTP, politely: a minimum gap between requests (the
//! rate limit), a timeout for the answer's head and one for each wait on its body, a size
//! limit, redirects only within the feed's host ([`redirect`]), retries with
//! exponential backoff and jitter on failures worth retrying, and a circuit breaker that
//! stops calling a provider that keeps failing until a cool-down has passed.
//!
//! There is no whole-request timeout: the body is read as the fetcher publishes what it
//! parsed, so a deadline over the transfer would also count the broker's and the
//! database's time and fail any large feed. The cycle as a whole has its own cap (the
//! fetcher's `cycle_timeout`).

pub mod redirect;

use std::time::Duration;

use futures::{Stream, StreamExt};
use tokio::time::Instant;
use tokio_util::bytes::Bytes;

/// How to call one provider.
#[derive(Debug, Clone)]
pub struct FetchPolicy {
    pub url: String,
    /// Connect and first byte: from sending a request to its answer's status and headers.
    pub timeout: Duration,
    /// Longest wait for the next piece of the body, counted only while the fetcher waits
    /// on the provider (not while it publishes what it parsed).
    pub read_timeout: Duration,
    /// Redirects followed within the feed's host (0: none).
    pub max_redirects: usize,
    /// Largest body accepted (a larger content-length is refused before reading; the
    /// parser caps what it reads of a body without one).
    pub max_bytes: usize,
    /// Retries after the first attempt of a fetch.
    pub retries: usize,
    /// First backoff pause; doubles per retry, with jitter.
    pub backoff_min: Duration,
    /// Minimum time between two requests to the provider, retries included.
    pub min_gap: Duration,
    /// Consecutive failed fetches that open the circuit.
    pub breaker_failures: u32,
    /// How long an open circuit refuses to call the provider.
    pub breaker_cooldown: Duration,
}

/// A fetch that produced no document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error(
        "circuit open: the provider failed {failures} fetches in a row; next try in {retry_in:?}"
    )]
    CircuitOpen { failures: u32, retry_in: Duration },
    #[error("provider answered HTTP {0}")]
    Status(u16),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// A redirect the policy refuses (another host, a downgrade, too many).
    #[error("redirect: {0}")]
    Redirect(String),
    #[error("body over the limit of {0} bytes")]
    TooLarge(usize),
    #[error("transport: {0}")]
    Transport(String),
    /// The answer started but its body broke off (reset, timeout, short read).
    #[error("the body broke off: {0}")]
    Body(String),
}

impl FetchError {
    /// A short, fixed name of the failure (the `reason` label of the failure counter).
    pub fn reason(&self) -> &'static str {
        match self {
            Self::CircuitOpen { .. } => "circuit_open",
            Self::Status(_) => "status",
            Self::Timeout(_) => "timeout",
            Self::Redirect(_) => "redirect",
            Self::TooLarge(_) => "too_large",
            Self::Transport(_) => "transport",
            Self::Body(_) => "body",
        }
    }

    /// Server errors, throttling, timeouts and broken transfers may pass; the rest will not.
    fn retryable(&self) -> bool {
        match self {
            Self::Status(s) => *s >= 500 || *s == 429 || *s == 408,
            Self::Timeout(_) | Self::Transport(_) | Self::Body(_) => true,
            Self::TooLarge(_) | Self::Redirect(_) | Self::CircuitOpen { .. } => false,
        }
    }
}

/// The HTTP side of one provider, with its rate limit and circuit state.
#[derive(Debug)]
pub struct HttpFetcher {
    client: reqwest::Client,
    policy: FetchPolicy,
    last_request: Option<Instant>,
    failures: u32,
    open_until: Option<Instant>,
}

impl HttpFetcher {
    pub fn new(policy: FetchPolicy) -> Result<Self, FetchError> {
        let client = reqwest::Client::builder()
            .connect_timeout(policy.timeout)
            .redirect(redirect::policy(policy.max_redirects))
            .user_agent(concat!("eye-fetcher/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| FetchError::Transport(e.to_string()))?;
        Ok(Self {
            client,
            policy,
            last_request: None,
            failures: 0,
            open_until: None,
        })
    }

    /// How this provider is called.
    pub fn policy(&self) -> &FetchPolicy {
        &self.policy
    }

    /// Whether the circuit is open: the next fetch is refused until the cool-down passes,
    /// then is the one attempt that closes or reopens it.
    pub fn circuit_open(&self) -> bool {
        self.open_until.is_some()
    }

    /// Failed fetches in a row (0 after a success).
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Asks for the document, retrying what may pass, unless the circuit is open: Ok is a
    /// successful answer whose body the caller streams, then reports with [`Self::settle`].
    pub async fn fetch(&mut self) -> Result<reqwest::Response, FetchError> {
        let url = self.policy.url.clone();
        self.fetch_from(&url).await
    }

    /// [`Self::fetch`] of another document of the provider (a JSON resource's page), under
    /// the same rate limit, retries and circuit.
    pub async fn fetch_from(&mut self, url: &str) -> Result<reqwest::Response, FetchError> {
        let now = Instant::now();
        if let Some(until) = self.open_until {
            if now < until {
                return Err(FetchError::CircuitOpen {
                    failures: self.failures,
                    retry_in: until - now,
                });
            }
            // Half-open: one attempt decides.
            self.open_until = None;
        }
        let result = self.fetch_with_retries(url).await;
        // A success is booked only once the caller read the body (`settle`): a provider whose
        // bodies keep breaking off must still open the circuit.
        if let Err(e) = &result {
            self.settle(Some(e));
        }
        result
    }

    /// Books the outcome of a fetch for the circuit: a success closes it, a failure (of the
    /// request or, later, of the body) counts towards opening it.
    pub fn settle(&mut self, failure: Option<&FetchError>) {
        match failure {
            None => self.failures = 0,
            Some(e) => {
                self.failures += 1;
                if self.failures >= self.policy.breaker_failures {
                    tracing::warn!(error = %e, failures = self.failures, "opening the circuit");
                    self.open_until = Some(Instant::now() + self.policy.breaker_cooldown);
                }
            }
        }
    }

    async fn fetch_with_retries(&mut self, url: &str) -> Result<reqwest::Response, FetchError> {
        // A half-open circuit gets one attempt, not a burst of retries.
        let retries = if self.failures >= self.policy.breaker_failures {
            0
        } else {
            self.policy.retries
        };
        let mut backoff = eye_core::backoff::at_most(
            self.policy.backoff_min,
            self.policy.backoff_min * 32,
            retries,
        );
        loop {
            self.pace().await;
            match self.attempt(url).await {
                Ok(body) => return Ok(body),
                Err(e) if e.retryable() => match backoff.next() {
                    Some(pause) => {
                        tracing::info!(error = %e, ?pause, "provider fetch failed; retrying");
                        tokio::time::sleep(pause).await;
                    }
                    None => return Err(e),
                },
                Err(e) => return Err(e),
            }
        }
    }

    /// The rate limit: waits until `min_gap` has passed since the last request.
    async fn pace(&mut self) {
        if let Some(last) = self.last_request {
            tokio::time::sleep_until(last + self.policy.min_gap).await;
        }
        self.last_request = Some(Instant::now());
    }

    /// One request, up to a successful status line and headers (within the timeout, which
    /// covers any redirects); the body is left to stream.
    async fn attempt(&self, url: &str) -> Result<reqwest::Response, FetchError> {
        let timeout = self.policy.timeout;
        let transport = |e: reqwest::Error| {
            if e.is_timeout() {
                FetchError::Timeout(timeout)
            } else if e.is_redirect() {
                FetchError::Redirect(causes(&e))
            } else {
                FetchError::Transport(causes(&e))
            }
        };
        let response = tokio::time::timeout(timeout, self.client.get(url).send())
            .await
            .map_err(|_| FetchError::Timeout(timeout))?
            .map_err(transport)?;
        let status = response.status();
        if !status.is_success() {
            return Err(FetchError::Status(status.as_u16()));
        }
        let limit = self.policy.max_bytes;
        if response.content_length().is_some_and(|n| n > limit as u64) {
            return Err(FetchError::TooLarge(limit));
        }
        Ok(response)
    }
}

/// The response's body as a stream in which every wait for the next piece is bounded by
/// `idle`. The clock runs only while the consumer waits on the provider: the time the
/// fetcher spends publishing between two reads does not count (reqwest's own read timeout
/// keeps running between reads, so it would).
pub fn body_with_idle_timeout(
    response: reqwest::Response,
    idle: Duration,
) -> impl Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    futures::stream::unfold(Some(response.bytes_stream()), move |body| async move {
        let mut body = body?;
        match tokio::time::timeout(idle, body.next()).await {
            Ok(Some(Ok(piece))) => Some((Ok(piece), Some(body))),
            Ok(Some(Err(e))) => Some((Err(std::io::Error::other(causes(&e))), None)),
            Ok(None) => None,
            Err(_) => Some((
                Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no data from the provider for {idle:?}"),
                )),
                None,
            )),
        }
    })
}

/// An error with its causes, `a: b: c` (reqwest's own message hides the reason).
fn causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
