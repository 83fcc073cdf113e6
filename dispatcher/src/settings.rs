//! The dispatcher's settings: environment variables (or flags), checked at start.

use std::time::Duration;

use clap::Parser;
use eye_core::settings::{DatabaseSettings, TelemetrySettings};

use crate::sender::SendSettings;

/// `eye-dispatcher`: sends the outbox's deliveries to the webhook endpoints.
#[derive(Debug, Clone, Parser)]
#[command(name = "eye-dispatcher", version, about)]
pub struct DispatcherSettings {
    #[command(flatten)]
    pub database: DatabaseSettings,
    #[command(flatten)]
    pub telemetry: TelemetrySettings,
    #[command(flatten)]
    pub send: SendSettings,
    /// Address of the dispatcher's Prometheus `/metrics`.
    #[arg(
        long,
        env = "EYE_DISPATCHER_METRICS_ADDR",
        default_value = "127.0.0.1:9103"
    )]
    pub metrics_addr: std::net::SocketAddr,
    /// Delays before each attempt: the first before the first attempt, the last before the
    /// last; after it, the delivery has failed.
    #[arg(
        long = "webhook-schedule",
        env = "EYE_WEBHOOK_SCHEDULE",
        default_value = "0s,5s,5m,30m,2h,5h,10h,10h"
    )]
    pub schedule: String,
    /// Jitter, a fraction of each delay (0.2: ±20 %).
    #[arg(
        long = "webhook-jitter",
        env = "EYE_WEBHOOK_JITTER",
        default_value_t = 0.2
    )]
    pub jitter: f64,
    /// Attempts in flight per endpoint at most.
    #[arg(long = "webhook-concurrency", env = "EYE_WEBHOOK_CONCURRENCY", default_value_t = 8,
          value_parser = clap::value_parser!(u32).range(1..=256))]
    pub concurrency: u32,
    /// An endpoint failing without a success for this long is disabled (5 days).
    #[arg(
        long = "webhook-disable-after-secs",
        env = "EYE_WEBHOOK_DISABLE_AFTER_SECS",
        default_value_t = 432_000
    )]
    pub disable_after_secs: u64,
    /// Milliseconds between looks for due deliveries of an idle endpoint.
    #[arg(long = "webhook-poll-ms", env = "EYE_WEBHOOK_POLL_MS", default_value_t = 100,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub poll_ms: u64,
    /// Milliseconds between reloads of the subscriptions (new, changed, disabled).
    #[arg(long = "webhook-refresh-ms", env = "EYE_WEBHOOK_REFRESH_MS", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub refresh_ms: u64,
    /// Vacuum `webhook_deliveries` once this many dead row versions are counted (0: leave
    /// it to autovacuum alone). See `upkeep`.
    #[arg(
        long = "webhook-vacuum-dead-rows",
        env = "EYE_WEBHOOK_VACUUM_DEAD_ROWS",
        default_value_t = 20_000
    )]
    pub vacuum_dead_rows: u64,
    /// Milliseconds between looks at `webhook_deliveries`' dead row count.
    #[arg(long = "webhook-vacuum-check-ms", env = "EYE_WEBHOOK_VACUUM_CHECK_MS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub vacuum_check_ms: u64,
}

impl DispatcherSettings {
    /// The parsed schedule, or what is wrong with it.
    pub fn schedule(&self) -> anyhow::Result<Vec<Duration>> {
        crate::schedule::parse(&self.schedule)
            .map_err(|e| anyhow::anyhow!("EYE_WEBHOOK_SCHEDULE: {e}"))
    }

    /// How long a claim holds a delivery: two timeouts (a delivery claimed ahead waits at
    /// most for one round of attempts, then has its own) and a margin to record the attempt.
    /// A dispatcher killed mid-attempt leaves the delivery due again after it.
    pub fn lease(&self) -> Duration {
        2 * Duration::from_millis(self.send.timeout_ms) + Duration::from_secs(5)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parse() {
        let s = DispatcherSettings::parse_from(["eye-dispatcher"]);
        assert_eq!(s.schedule().expect("test value").len(), 8);
        assert_eq!(s.send.timeout_ms, 15_000);
        assert!(s.send.allowed().expect("test value").is_empty());
    }

    #[test]
    fn a_bad_allow_list_is_refused() {
        let s = DispatcherSettings::parse_from(["eye-dispatcher", "--webhook-allow-nets", "x"]);
        assert!(s.send.allowed().is_err());
        let s = DispatcherSettings::parse_from([
            "eye-dispatcher",
            "--webhook-allow-nets",
            "127.0.0.1/32,::1",
        ]);
        assert_eq!(s.send.allowed().expect("test value").len(), 2);
    }
}
