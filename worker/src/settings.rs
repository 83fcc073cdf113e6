//! The worker's settings: environment variables (or flags), checked at start.

use std::time::Duration;

use backon::ExponentialBackoff;
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
    /// Unacknowledged messages the broker may send ahead, so the next batch is already here
    /// while one is being committed. A message holds 1 to 256 events.
    #[arg(long, env = "EYE_WORKER_PREFETCH", default_value_t = 1000,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub prefetch: u16,
    /// Rows per database transaction (a batch closes once it holds at least this many).
    /// 1000 amortises the commit; even 5000 plus one full message keeps a multi-row INSERT
    /// under PostgreSQL's 65,535 bind parameters.
    #[arg(long, env = "EYE_WORKER_BATCH_SIZE", default_value_t = 1000,
          value_parser = clap::value_parser!(u16).range(1..=5000))]
    pub batch_size: u16,
    /// Batches committing at once. PostgreSQL commits them in parallel; acks still go out in
    /// delivery order. 2 roughly doubles what one worker stores on two cores.
    #[arg(long, env = "EYE_WORKER_COMMITS_IN_FLIGHT", default_value_t = 2,
          value_parser = clap::value_parser!(u16).range(1..=16))]
    pub commits_in_flight: u16,
    /// Milliseconds a partial batch waits for more messages: the latency paid at low rates.
    #[arg(long, env = "EYE_WORKER_BATCH_LINGER_MS", default_value_t = 20)]
    pub batch_linger_ms: u64,
    /// Address of the Prometheus `/metrics` endpoint of the worker.
    #[arg(
        long,
        env = "EYE_WORKER_METRICS_ADDR",
        default_value = "127.0.0.1:9101"
    )]
    pub metrics_addr: std::net::SocketAddr,
    /// Longest pause between retries while the database is unavailable.
    #[arg(long, env = "EYE_WORKER_RETRY_MAX_SECS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub retry_max_secs: u64,
    /// TOML rules file (see rules.toml); without it, the built-in defaults
    /// (timestamp bounds and the seed types' required keys).
    #[arg(long, env = "EYE_RULES_FILE")]
    pub rules_file: Option<std::path::PathBuf>,
    /// How far past its arrival an event's timestamp may be before it is refused (the
    /// built-in rules; a rules file sets its own).
    #[arg(long, env = "EYE_MAX_FUTURE_SKEW_SECS", default_value_t = 300)]
    pub max_future_skew_secs: u32,
    /// Rows the erasure deleter removes per statement (one short transaction each).
    #[arg(long, env = "EYE_ERASURE_CHUNK", default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(1..=50_000))]
    pub erasure_chunk: u32,
    /// Milliseconds the deleter rests between chunks, leaving the database to ingestion.
    #[arg(long, env = "EYE_ERASURE_PAUSE_MS", default_value_t = 5)]
    pub erasure_pause_ms: u64,
    /// Milliseconds between looks for a confirmed erasure when there is none.
    #[arg(long, env = "EYE_ERASURE_POLL_MS", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub erasure_poll_ms: u64,
    /// Width of each new partition of `events`, in days (boundaries on multiples of it
    /// from a Monday, so 7 is Monday to Monday). Wider: fewer partitions for a read to merge;
    /// narrower: retention closer to its setting.
    #[arg(long, env = "EYE_PARTITION_DAYS", default_value_t = 7,
          value_parser = clap::value_parser!(u32).range(1..=366))]
    pub partition_days: u32,
    /// Partitions of `events` exist at least this many days ahead, so inserts never meet a
    /// missing one while a worker runs at least that often.
    #[arg(long, env = "EYE_PARTITION_AHEAD_DAYS", default_value_t = 14,
          value_parser = clap::value_parser!(u32).range(1..=3660))]
    pub partition_ahead_days: u32,
    /// Drop the partitions of `events` whose rows were all stored more than this many days
    /// ago (whole partitions: rows stay up to EYE_PARTITION_DAYS longer). Unset: keep all.
    #[arg(long, env = "EYE_RETENTION_DAYS",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub retention_days: Option<u32>,
    /// Seconds between partition maintenance runs (the first at start).
    #[arg(long, env = "EYE_PARTITION_MAINTENANCE_SECS", default_value_t = 3600,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub partition_maintenance_secs: u64,
    /// Milliseconds between reloads of the webhook subscriptions the worker writes
    /// deliveries for (a new subscription receives the events stored after its first reload).
    #[arg(long, env = "EYE_WEBHOOK_REFRESH_MS", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub webhook_refresh_ms: u64,
    /// Staged rows an import commits per transaction (rows, counters and checkpoint).
    #[arg(long, env = "EYE_IMPORT_CHUNK", default_value_t = 5000,
          value_parser = clap::value_parser!(u32).range(1..=20_000))]
    pub import_chunk: u32,
    /// Milliseconds between looks for a staged import when there is none.
    #[arg(long, env = "EYE_IMPORT_POLL_MS", default_value_t = 200,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub import_poll_ms: u64,
    /// Seconds an import is held without a committed chunk before another worker takes it
    /// over (a worker killed mid-file is replaced after this).
    #[arg(long, env = "EYE_IMPORT_LEASE_SECS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub import_lease_secs: u64,
    /// Seconds an upload may go without staging a chunk before its import is failed as
    /// abandoned (the api died mid-upload) and what it staged dropped.
    #[arg(long, env = "EYE_IMPORT_UPLOAD_STALE_SECS", default_value_t = 3600,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub import_upload_stale_secs: u64,
}

impl WorkerSettings {
    /// The partition layout and retention of `events`.
    pub fn partition_policy(&self) -> crate::storage::partitions::Policy {
        crate::storage::partitions::Policy {
            width_days: self.partition_days,
            ahead_days: self.partition_ahead_days,
            retention_days: self.retention_days,
        }
    }

    pub fn webhook_refresh(&self) -> Duration {
        Duration::from_millis(self.webhook_refresh_ms)
    }

    pub fn batch_linger(&self) -> Duration {
        Duration::from_millis(self.batch_linger_ms)
    }

    pub fn retry_max(&self) -> Duration {
        Duration::from_secs(self.retry_max_secs)
    }

    /// Pauses between retries while the broker or the database is away: from 100 ms,
    /// doubling up to [`Self::retry_max`], jittered so workers do not retry in step; endless.
    pub fn retry_backoff(&self) -> ExponentialBackoff {
        eye_core::backoff::forever(Duration::from_millis(100), self.retry_max())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parse() {
        let s = WorkerSettings::parse_from(["eye-worker"]);
        assert_eq!((s.prefetch, s.batch_size), (1000, 1000));
    }

    #[test]
    fn zero_batch_size_is_refused() {
        assert!(WorkerSettings::try_parse_from(["eye-worker", "--batch-size", "0"]).is_err());
    }
}
