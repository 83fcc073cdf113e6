//! The worker's settings: environment variables (or flags), checked at start.

use std::time::Duration;

use clap::Parser;
use eye_core::settings::{AmqpSettings, DatabaseSettings, TelemetrySettings};

/// `eye-worker`: consumes the events queue, validates, stores, dead-letters.
#[derive(Debug, Clone, Parser)]
#[command(name = "eye-worker", version, about)]
pub struct WorkerSettings {
    #[command(flatten)]
    pub amqp: AmqpSettings,
    #[command(flatten)]
    pub database: DatabaseSettings,
    #[command(flatten)]
    pub telemetry: TelemetrySettings,
    /// Unacknowledged messages the broker may send ahead. Twice the batch size, so the next
    /// batch is already here while one is being committed.
    #[arg(long, env = "EYE_WORKER_PREFETCH", default_value_t = 1000,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub prefetch: u16,
    /// Events per database transaction. 500 rows keeps one multi-row INSERT well under
    /// PostgreSQL's 65,535 bind parameters and amortises the commit.
    #[arg(long, env = "EYE_WORKER_BATCH_SIZE", default_value_t = 500,
          value_parser = clap::value_parser!(u16).range(1..=5000))]
    pub batch_size: u16,
    /// Milliseconds a partial batch waits for more messages: the latency paid at low rates.
    #[arg(long, env = "EYE_WORKER_BATCH_LINGER_MS", default_value_t = 20)]
    pub batch_linger_ms: u64,
    /// Longest pause between retries while the database is unavailable.
    #[arg(long, env = "EYE_WORKER_RETRY_MAX_SECS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub retry_max_secs: u64,
    /// How far past its arrival an event's timestamp may be before it is refused.
    #[arg(long, env = "EYE_MAX_FUTURE_SKEW_SECS", default_value_t = 300)]
    pub max_future_skew_secs: u32,
}

/// A combination of settings that cannot work.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SettingsError(String);

impl WorkerSettings {
    /// Refuses combinations of values that are each valid alone.
    pub fn check(&self) -> Result<(), SettingsError> {
        if self.prefetch < self.batch_size {
            return Err(SettingsError(format!(
                "EYE_WORKER_PREFETCH ({}) must be at least EYE_WORKER_BATCH_SIZE ({}): \
                 a batch can never be larger than what the broker sends ahead",
                self.prefetch, self.batch_size
            )));
        }
        Ok(())
    }

    pub fn batch_linger(&self) -> Duration {
        Duration::from_millis(self.batch_linger_ms)
    }

    pub fn retry_max(&self) -> Duration {
        Duration::from_secs(self.retry_max_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_consistent() {
        let s = WorkerSettings::parse_from(["eye-worker"]);
        s.check().expect("defaults");
        assert_eq!((s.prefetch, s.batch_size), (1000, 500));
    }

    #[test]
    fn prefetch_below_batch_size_is_refused_by_name() {
        let s =
            WorkerSettings::parse_from(["eye-worker", "--prefetch", "10", "--batch-size", "20"]);
        let err = s.check().expect_err("inconsistent");
        assert!(err.to_string().contains("EYE_WORKER_PREFETCH"));
    }

    #[test]
    fn zero_batch_size_is_refused() {
        assert!(WorkerSettings::try_parse_from(["eye-worker", "--batch-size", "0"]).is_err());
    }
}
