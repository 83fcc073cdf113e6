//! The client's side of the API's contract: an event answered 503 (or 429, another 5xx, or
//! not answered at all) is sent again with the same `id`, after `Retry-After` when the API
//! gave one, so it is stored once however many times it was sent.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};

/// The longest `Retry-After` honoured: a client under test should not sleep out the run.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);

/// What an answer tells the client to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// 202: the broker confirmed it; the id goes into the ledger.
    Accepted,
    /// Another final answer (a 4xx but 429): sending it again cannot change it.
    Refused,
    /// Send it again with the same id, after this long if the API said.
    Retry(Option<Duration>),
}

impl Answer {
    /// Reads an answer: its status (`None` when the request got no answer: connection
    /// refused or reset, timeout) and its `Retry-After` header.
    pub fn of(status: Option<u16>, retry_after: Option<&str>) -> Self {
        let after = retry_after
            .and_then(|value| value.trim().parse::<u64>().ok())
            .map(|secs| Duration::from_secs(secs).min(MAX_RETRY_AFTER));
        match status {
            Some(202) => Answer::Accepted,
            Some(429) | Some(500..=599) | None => Answer::Retry(after),
            Some(_) => Answer::Refused,
        }
    }
}

/// The pauses between tries when the API named none: exponential with jitter, from 100 ms
/// up to 2 s, so clients waiting out an outage do not all come back at once.
pub fn pauses() -> ExponentialBackoff {
    ExponentialBuilder::new()
        .with_min_delay(Duration::from_millis(100))
        .with_max_delay(Duration::from_secs(2))
        .with_jitter()
        .without_max_times()
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_202_is_accepted_and_only_4xx_but_429_is_final() {
        assert_eq!(Answer::of(Some(202), None), Answer::Accepted);
        for status in [400, 401, 403, 413, 415, 422] {
            assert_eq!(Answer::of(Some(status), None), Answer::Refused, "{status}");
        }
        for status in [Some(429), Some(500), Some(502), Some(503), None] {
            assert_eq!(Answer::of(status, None), Answer::Retry(None), "{status:?}");
        }
    }

    #[test]
    fn retry_after_is_honoured_up_to_a_cap() {
        let secs = |n| Some(Duration::from_secs(n));
        assert_eq!(Answer::of(Some(503), Some("2")), Answer::Retry(secs(2)));
        assert_eq!(Answer::of(Some(503), Some("3600")), Answer::Retry(secs(10)));
        // An HTTP date or garbage: fall back to the client's own pauses.
        assert_eq!(Answer::of(Some(503), Some("soon")), Answer::Retry(None));
    }

    #[test]
    fn pauses_grow_and_never_run_out() {
        let pauses: Vec<Duration> = pauses().take(50).collect();
        assert_eq!(pauses.len(), 50);
        assert!(pauses.iter().all(|p| *p <= Duration::from_secs(4)));
        assert!(pauses[20] >= Duration::from_secs(2));
    }
}
