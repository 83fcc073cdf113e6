//! Retries: exponential backoff with jitter (backon's schedule) on network errors, 408, 429
//! and 5xx, never sooner than the api's `Retry-After`; refusals are final.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use reqwest::StatusCode;
use reqwest::header::RETRY_AFTER;
use serde::Deserialize;

use crate::error::{Reason, Refusal};

/// How failed attempts are retried.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// First backoff delay; it doubles (with jitter) up to `max_delay`. A `Retry-After`
    /// from the api is waited in full when longer.
    pub min_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 10,
            min_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(10),
        }
    }
}

/// The outcome of one attempt.
pub(crate) enum Attempt<T> {
    Done(T),
    /// Worth another attempt, not before `retry_after` if the api said so.
    Retry {
        error: String,
        retry_after: Option<Duration>,
    },
    /// Final: the api refused the request.
    Refused(Refusal),
}

#[derive(Deserialize)]
struct ErrorBody {
    error: Refusal,
}

/// Runs `attempt` until it is done or refused, or the policy gives up.
pub(crate) async fn with_retries<T, F, Fut>(
    policy: RetryPolicy,
    mut attempt: F,
) -> Result<T, Reason>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Attempt<T>>,
{
    let mut delays = ExponentialBuilder::default()
        .with_min_delay(policy.min_delay)
        .with_max_delay(policy.max_delay)
        .with_jitter()
        .without_max_times()
        .build();
    let mut attempts = 0;
    loop {
        attempts += 1;
        match attempt().await {
            Attempt::Done(value) => return Ok(value),
            Attempt::Refused(refusal) => return Err(Reason::Refused(refusal)),
            Attempt::Retry { error, retry_after } => {
                if attempts >= policy.max_attempts {
                    return Err(Reason::GaveUp {
                        attempts,
                        last: error,
                    });
                }
                let backoff = delays.next().unwrap_or(policy.max_delay);
                let wait = retry_after.map_or(backoff, |after| after.max(backoff));
                tracing::debug!(%error, ?wait, attempts, "retrying");
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// Sorts an answer: success, worth retrying (network, 408, 429, 5xx), or refused.
pub(crate) async fn answer(sent: reqwest::Result<reqwest::Response>) -> Attempt<reqwest::Response> {
    let response = match sent {
        Ok(response) => response,
        Err(e) => {
            return Attempt::Retry {
                error: e.to_string(),
                retry_after: None,
            };
        }
    };
    let status = response.status();
    if status.is_success() {
        return Attempt::Done(response);
    }
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let text = response.text().await.unwrap_or_default();
    let refusal = serde_json::from_str::<ErrorBody>(&text).map_or_else(
        |_| Refusal {
            status: status.as_u16(),
            code: status.as_str().to_owned(),
            field: None,
            message: text.chars().take(200).collect(),
        },
        |body| Refusal {
            status: status.as_u16(),
            ..body.error
        },
    );
    if status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
        || status.is_server_error()
    {
        Attempt::Retry {
            error: format!("{status}: {}", refusal.message),
            retry_after,
        }
    } else {
        Attempt::Refused(refusal)
    }
}
