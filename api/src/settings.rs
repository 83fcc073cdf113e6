//! The api's settings: environment variables (or flags), checked at start.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;
use eye_core::Secret;
use eye_core::settings::{AmqpSettings, DatabaseSettings, TelemetrySettings};

/// The development signing secret; the api warns at start when it is in use.
pub const DEV_JWT_SECRET: &str = "dev-only-secret-change-me-0123456789abcdef";

/// Settings of `eye-api serve`.
#[derive(Debug, Clone, Args)]
pub struct ApiSettings {
    /// Address the HTTP server listens on (port 0 picks a free port).
    #[arg(long, env = "EYE_HTTP_ADDR", default_value = "127.0.0.1:8000")]
    pub http_addr: SocketAddr,
    #[command(flatten)]
    pub jwt: JwtSettings,
    #[command(flatten)]
    pub publish: PublishSettings,
    /// Largest request body accepted, in bytes; larger bodies get 413.
    #[arg(long, env = "EYE_MAX_BODY_BYTES", default_value_t = 65_536,
          value_parser = clap::value_parser!(u32).range(1024..=16_777_216))]
    pub max_body_bytes: u32,
    /// Seconds after which any request is answered 503, whatever it waits on.
    #[arg(long, env = "EYE_REQUEST_TIMEOUT_SECS", default_value_t = 10)]
    pub request_timeout_secs: u64,
    /// PostgreSQL statement timeout of the api's reads, in milliseconds.
    #[arg(long, env = "EYE_READ_TIMEOUT_MS", default_value_t = 5000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub read_timeout_ms: u64,
    /// Mount `POST /bench/noop` (benchmarks only: the HTTP layer without the broker).
    #[arg(long, env = "EYE_BENCH_NOOP_ROUTE", default_value_t = false)]
    pub bench_noop_route: bool,
    #[command(flatten)]
    pub amqp: AmqpSettings,
    #[command(flatten)]
    pub database: DatabaseSettings,
    #[command(flatten)]
    pub telemetry: TelemetrySettings,
}

impl ApiSettings {
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }
}

/// How tokens are signed and checked.
#[derive(Debug, Clone, Args)]
pub struct JwtSettings {
    /// HS256 signing secret, at least 32 bytes.
    #[arg(long = "jwt-secret", env = "EYE_JWT_SECRET", default_value = DEV_JWT_SECRET)]
    pub secret: Secret<String>,
    /// `iss` put in and required of every token.
    #[arg(long = "jwt-issuer", env = "EYE_JWT_ISSUER", default_value = "the-eye")]
    pub issuer: String,
    /// `aud` put in and required of every token.
    #[arg(
        long = "jwt-audience",
        env = "EYE_JWT_AUDIENCE",
        default_value = "eye-api"
    )]
    pub audience: String,
}

/// Publishing to the broker.
#[derive(Debug, Clone, Args)]
pub struct PublishSettings {
    /// Channels in confirm mode; publishes pipeline on each, so a few suffice.
    #[arg(long = "publish-channels", env = "EYE_PUBLISH_CHANNELS", default_value_t = 4,
          value_parser = clap::value_parser!(u16).range(1..=64))]
    pub channels: u16,
    /// Milliseconds to wait for the broker's confirm before answering 503.
    #[arg(long = "publish-timeout-ms", env = "EYE_PUBLISH_TIMEOUT_MS", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout_ms: u64,
    /// Most events in one message. Larger messages amortise the broker's per-message cost;
    /// 256 keeps a message (at 64 KiB per event at worst) within the size cap below.
    #[arg(long = "publish-max-batch-events", env = "EYE_PUBLISH_MAX_BATCH_EVENTS", default_value_t = 256,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub max_batch_events: u16,
    /// Largest message body in bytes before a batch is closed.
    #[arg(
        long = "publish-max-batch-bytes",
        env = "EYE_PUBLISH_MAX_BATCH_BYTES",
        default_value_t = 1_048_576
    )]
    pub max_batch_bytes: u32,
    /// Messages awaiting their confirm at once. Few, so that events queue up and batch
    /// under load: measured on 2 cores, 2 gave 27k events/s at p99 10 ms where 8 gave
    /// 21k (5 events per message instead of 17: the quorum queue's cost is per message).
    #[arg(long = "publish-in-flight", env = "EYE_PUBLISH_IN_FLIGHT", default_value_t = 2,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub in_flight: u16,
    /// Events that may wait for a message before new ones get 503 (backpressure).
    #[arg(
        long = "publish-queue-capacity",
        env = "EYE_PUBLISH_QUEUE_CAPACITY",
        default_value_t = 16_384
    )]
    pub queue_capacity: usize,
    /// `Retry-After` seconds sent with a 503.
    #[arg(
        long = "retry-after-secs",
        env = "EYE_RETRY_AFTER_SECS",
        default_value_t = 2
    )]
    pub retry_after_secs: u32,
}

impl PublishSettings {
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
}

/// A value that cannot work.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SettingsError(String);

impl JwtSettings {
    /// Refuses a secret too short to resist brute force.
    pub fn check(&self) -> Result<(), SettingsError> {
        if self.secret.expose().len() < 32 {
            return Err(SettingsError(
                "EYE_JWT_SECRET must be at least 32 bytes long".into(),
            ));
        }
        Ok(())
    }
}
