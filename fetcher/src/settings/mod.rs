//! The fetcher's settings: environment variables (or flags), checked at start.

use std::time::Duration;

use clap::Parser;
use eye_core::settings::{AmqpSettings, DatabaseSettings, TelemetrySettings};

mod providers_file;

pub use providers_file::{ProviderConfig, parse_providers};

use crate::http::FetchPolicy;
use crate::provider::{AdapterOptions, Limits};

/// `eye-fetcher`: pulls each provider's feed on its interval and publishes what changed.
#[derive(Debug, Clone, Parser)]
#[command(name = "eye-fetcher", version, about)]
pub struct FetcherSettings {
    #[command(flatten)]
    pub amqp: AmqpSettings,
    #[command(flatten)]
    pub database: DatabaseSettings,
    #[command(flatten)]
    pub telemetry: TelemetrySettings,
    /// A TOML file of `[[provider]]` tables (name, adapter, url and any setting below), to
    /// fetch several providers; without it, the one provider these settings describe.
    #[arg(long, env = "EYE_FETCH_PROVIDERS_FILE")]
    pub providers_file: Option<std::path::PathBuf>,
    /// Which provider adapter reads the feed (`fever`, the XML feed; `json`, a JSON REST
    /// API such as JSONPlaceholder); also the provider's name.
    #[arg(long, env = "EYE_FETCH_PROVIDER", default_value = "fever")]
    pub provider: String,
    /// The feed's URL.
    #[arg(
        long,
        env = "EYE_FETCH_URL",
        default_value = "https://provider.code-challenge.feverup.com/api/events"
    )]
    pub url: String,
    /// The `json` adapter's resources, each read at `<url>/<resource>` (comma-separated).
    #[arg(
        long,
        env = "EYE_FETCH_RESOURCES",
        value_delimiter = ',',
        default_value = "posts,comments,users"
    )]
    pub resources: Vec<String>,
    /// The `json` adapter's page size (`?_page=N&_limit=M`); 0 reads each resource whole.
    #[arg(long, env = "EYE_FETCH_PAGE_SIZE", default_value_t = 0)]
    pub page_size: usize,
    /// The `json` adapter's parent keys by resource, over JSONPlaceholder's (providers file
    /// only: `parents = { comments = "postId" }`).
    #[arg(skip)]
    pub parents: std::collections::BTreeMap<String, String>,
    /// The `json` adapter's guard against a remote that answers an empty or short resource:
    /// a pass that would mark more than this percentage of a resource's records removed is
    /// refused (nothing marked removed, the cycle recorded as `refused`); 100 turns it off.
    #[arg(long, env = "EYE_FETCH_MAX_REMOVED_PERCENT", default_value_t = 50,
          value_parser = clap::value_parser!(u8).range(0..=100))]
    pub max_removed_percent: u8,
    /// Seconds between two fetches (from the start of one to the start of the next).
    #[arg(long, env = "EYE_FETCH_INTERVAL_SECS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub interval_secs: u64,
    /// Milliseconds one HTTP attempt has to connect and answer its status and headers (the
    /// provider answers in 0.2-4 s).
    #[arg(long, env = "EYE_FETCH_TIMEOUT_MS", default_value_t = 8000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout_ms: u64,
    /// Longest wait for the next piece of a body, in milliseconds. Only time waiting on the
    /// provider counts, not the publishing done between two reads, so a large feed is not
    /// cut short by its own processing.
    #[arg(long, env = "EYE_FETCH_READ_TIMEOUT_MS", default_value_t = 8000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub read_timeout_ms: u64,
    /// Seconds one fetch cycle may take in all (fetch, retries, parse, publish, hashes):
    /// the cap on a provider that sends slowly but never stops.
    #[arg(long, env = "EYE_FETCH_CYCLE_TIMEOUT_SECS", default_value_t = 900,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub cycle_timeout_secs: u64,
    /// Redirects followed, each only to the feed's host with the same scheme and port or
    /// from http to https (0: none).
    #[arg(long, env = "EYE_FETCH_MAX_REDIRECTS", default_value_t = 3)]
    pub max_redirects: usize,
    /// Retries of a failed attempt within one fetch (about a third of calls answer 503).
    #[arg(long, env = "EYE_FETCH_RETRIES", default_value_t = 4)]
    pub retries: usize,
    /// First backoff pause in milliseconds; doubles per retry, with jitter.
    #[arg(long, env = "EYE_FETCH_BACKOFF_MS", default_value_t = 250)]
    pub backoff_ms: u64,
    /// Minimum milliseconds between two requests to the provider (the rate limit).
    #[arg(long, env = "EYE_FETCH_MIN_GAP_MS", default_value_t = 200)]
    pub min_gap_ms: u64,
    /// Consecutive failed fetches that open the circuit.
    #[arg(long, env = "EYE_FETCH_BREAKER_FAILURES", default_value_t = 3,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub breaker_failures: u32,
    /// Seconds an open circuit stops calling the provider.
    #[arg(long, env = "EYE_FETCH_BREAKER_COOLDOWN_SECS", default_value_t = 300)]
    pub breaker_cooldown_secs: u64,
    /// Largest document accepted, in bytes.
    #[arg(long, env = "EYE_FETCH_MAX_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub max_bytes: usize,
    /// Deepest element nesting accepted.
    #[arg(long, env = "EYE_FETCH_MAX_DEPTH", default_value_t = 32)]
    pub max_depth: usize,
    /// Milliseconds the broker has to confirm a fetch's messages.
    #[arg(long, env = "EYE_FETCH_PUBLISH_TIMEOUT_MS", default_value_t = 10_000)]
    pub publish_timeout_ms: u64,
    /// Address of the Prometheus `/metrics` endpoint of the fetcher.
    #[arg(long, env = "EYE_FETCH_METRICS_ADDR", default_value = "127.0.0.1:9102")]
    pub metrics_addr: std::net::SocketAddr,
}

impl FetcherSettings {
    pub fn interval(&self) -> Duration {
        Duration::from_secs(self.interval_secs)
    }

    pub fn cycle_timeout(&self) -> Duration {
        Duration::from_secs(self.cycle_timeout_secs)
    }

    pub fn publish_timeout(&self) -> Duration {
        Duration::from_millis(self.publish_timeout_ms)
    }

    pub fn adapter_options(&self) -> AdapterOptions {
        AdapterOptions {
            resources: self.resources.clone(),
            page_size: self.page_size,
            parents: self.parents.clone(),
        }
    }

    pub fn limits(&self) -> Limits {
        Limits {
            max_bytes: self.max_bytes,
            max_depth: self.max_depth,
        }
    }

    pub fn policy(&self) -> FetchPolicy {
        FetchPolicy {
            url: self.url.clone(),
            timeout: Duration::from_millis(self.timeout_ms),
            read_timeout: Duration::from_millis(self.read_timeout_ms),
            max_redirects: self.max_redirects,
            max_bytes: self.max_bytes,
            retries: self.retries,
            backoff_min: Duration::from_millis(self.backoff_ms),
            min_gap: Duration::from_millis(self.min_gap_ms),
            breaker_failures: self.breaker_failures,
            breaker_cooldown: Duration::from_secs(self.breaker_cooldown_secs),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parse_and_a_zero_interval_is_refused() {
        let s = FetcherSettings::parse_from(["eye-fetcher"]);
        assert_eq!((s.provider.as_str(), s.interval_secs), ("fever", 60));
        assert_eq!(s.metrics_addr.to_string(), "127.0.0.1:9102");
        assert!(FetcherSettings::try_parse_from(["eye-fetcher", "--interval-secs", "0"]).is_err());
    }
}
