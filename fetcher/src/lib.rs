//! The Eye's fetcher: pulls each provider's feed on its interval ([`http`]: rate limit,
//! timeouts, retries, circuit, redirects), parses it as it streams in ([`provider`]: one
//! parser per provider), and publishes the plans whose content changed ([`hashes`],
//! [`publish`]) as provider records (`eye_core::provider`, the contract with the worker).

pub mod cycle;
pub mod hashes;
pub mod history;
pub mod http;
pub mod monitoring;
pub mod provider;
pub mod publish;
pub mod settings;

pub use cycle::{CycleError, CycleReport, Fetcher};
pub use settings::{FetcherSettings, ProviderConfig, parse_providers};
