//! The api's settings: environment variables (or flags), checked at start.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;
use eye_core::Secret;
use eye_core::settings::{AmqpSettings, DatabaseSettings, TelemetrySettings};

/// The development signing secret. It is public (it is in this file), so the api refuses
/// to start with it unless it listens on a loopback address only.
pub const DEV_JWT_SECRET: &str = "dev-only-secret-change-me-0123456789abcdef";

/// Settings of `eye-api serve`.
#[derive(Debug, Clone, Args)]
pub struct ApiSettings {
    /// Address the HTTP server listens on (port 0 picks a free port).
    #[arg(long, env = "EYE_HTTP_ADDR", default_value = "127.0.0.1:8000")]
    pub http_addr: SocketAddr,
    /// Address of the Prometheus `/metrics` listener: its own port, loopback by default,
    /// so that the public port does not expose the api's internals.
    #[arg(long, env = "EYE_METRICS_ADDR", default_value = "127.0.0.1:9100")]
    pub metrics_addr: SocketAddr,
    #[command(flatten)]
    pub jwt: JwtSettings,
    #[command(flatten)]
    pub access: AccessSettings,
    #[command(flatten)]
    pub publish: PublishSettings,
    #[command(flatten)]
    pub batch: BatchSettings,
    /// How `POST /webhooks/{id}/test` sends (timeout, allowed private networks).
    #[command(flatten)]
    pub webhooks: eye_dispatcher::SendSettings,
    /// Largest request body accepted, in bytes; larger bodies get 413.
    #[arg(long, env = "EYE_MAX_BODY_BYTES", default_value_t = 65_536,
          value_parser = clap::value_parser!(u32).range(1024..=16_777_216))]
    pub max_body_bytes: u32,
    /// Largest file `POST /imports` takes, in bytes (1 GiB by default); a larger upload is
    /// refused 413 and what was staged of it dropped.
    #[arg(long, env = "EYE_IMPORT_MAX_BYTES", default_value_t = 1 << 30,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub import_max_bytes: u64,
    /// Seconds after which any request is answered 503, whatever it waits on.
    #[arg(long, env = "EYE_REQUEST_TIMEOUT_SECS", default_value_t = 10)]
    pub request_timeout_secs: u64,
    /// PostgreSQL statement timeout of the api's reads, in milliseconds.
    #[arg(long, env = "EYE_READ_TIMEOUT_MS", default_value_t = 5000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub read_timeout_ms: u64,
    /// Authenticated reads (`/events`, `/sessions`, `/errors`) running at once; more get an
    /// immediate 503 `busy` with `Retry-After` instead of queueing for a connection.
    #[arg(long, env = "EYE_READ_CONCURRENCY", default_value_t = 6,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub read_concurrency: u32,
    /// `GET /search` requests (unauthenticated) running at once; more get an immediate 503.
    /// Reads and searches together must fit in `EYE_DATABASE_MAX_CONNECTIONS`.
    #[arg(long, env = "EYE_SEARCH_CONCURRENCY", default_value_t = 2,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub search_concurrency: u32,
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
    /// Refuses settings that cannot work or are unsafe: a bad key ring, the public
    /// development secret on a non-loopback address, read limits past the read pool.
    pub fn check(&self) -> Result<(), SettingsError> {
        self.jwt.check()?;
        if self.jwt.uses_dev_secret() && !self.http_addr.ip().is_loopback() {
            return Err(SettingsError(format!(
                "EYE_JWT_SECRET is the public development secret, and anyone who can reach \
                 EYE_HTTP_ADDR={} could mint tokens with it: set EYE_JWT_SECRET (or \
                 EYE_JWT_KEYS) to a secret of your own, or listen on a loopback address",
                self.http_addr
            )));
        }
        let readers = u64::from(self.read_concurrency) + u64::from(self.search_concurrency);
        if readers > u64::from(self.database.max_connections) {
            return Err(SettingsError(format!(
                "EYE_READ_CONCURRENCY ({}) + EYE_SEARCH_CONCURRENCY ({}) exceed \
                 EYE_DATABASE_MAX_CONNECTIONS ({}): reads would queue for connections",
                self.read_concurrency, self.search_concurrency, self.database.max_connections
            )));
        }
        Ok(())
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }
}

/// How tokens are signed and checked.
#[derive(Debug, Clone, Args)]
pub struct JwtSettings {
    /// HS256 secret of the single key `default`, at least 32 bytes. Ignored when
    /// `EYE_JWT_KEYS` is set.
    #[arg(long = "jwt-secret", env = "EYE_JWT_SECRET", default_value = DEV_JWT_SECRET,
          hide_env_values = true)]
    pub secret: Secret<String>,
    /// The key ring, `kid:secret,kid:secret` (secrets of at least 32 bytes): every key
    /// verifies, so a key can be rotated without downtime. Replaces `EYE_JWT_SECRET`.
    #[arg(long = "jwt-keys", env = "EYE_JWT_KEYS", hide_env_values = true)]
    pub keys: Option<Secret<String>>,
    /// The key new tokens are signed with; defaults to the ring's first key.
    #[arg(long = "jwt-signing-kid", env = "EYE_JWT_SIGNING_KID")]
    pub signing_kid: Option<String>,
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

/// The verification keys and the one that signs, parsed from [`JwtSettings`].
pub struct KeyRing {
    pub keys: Vec<(String, String)>,
    pub signing_kid: String,
}

/// How often the revocation state is reloaded, how stale it may get, and the rate limits.
#[derive(Debug, Clone, Args)]
pub struct AccessSettings {
    /// Milliseconds between reloads of revoked tokens and disabled applications.
    #[arg(long = "auth-refresh-ms", env = "EYE_AUTH_REFRESH_MS", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(100..=60_000))]
    pub refresh_ms: u64,
    /// Past this many milliseconds without a successful reload, authenticated requests get
    /// 503: the api never accepts a token it cannot know to be unrevoked (fail closed).
    #[arg(long = "auth-max-staleness-ms", env = "EYE_AUTH_MAX_STALENESS_MS", default_value_t = 5000,
          value_parser = clap::value_parser!(u64).range(500..))]
    pub max_staleness_ms: u64,
    /// Events per second an application may send, across all replicas, unless its
    /// registry entry overrides it.
    #[arg(long = "rate-limit-per-sec", env = "EYE_RATE_LIMIT_PER_SEC", default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_per_sec: u32,
    /// Events an application may send at once beyond its rate (the bucket's size).
    #[arg(long = "rate-limit-burst", env = "EYE_RATE_LIMIT_BURST", default_value_t = 2000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_burst: u32,
    /// Api replicas behind the load balancer: each enforces its share of every limit.
    #[arg(long = "api-replicas", env = "EYE_API_REPLICAS", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub replicas: u32,
    /// Connections of the ingestion pool (the revocation reload, lookups of applications
    /// registered since it, the readiness probe), apart from the read pool so that reads
    /// and `/search` can never starve ingestion. Two are kept for the reload and the probe.
    #[arg(long = "auth-database-connections", env = "EYE_AUTH_DATABASE_CONNECTIONS", default_value_t = 4,
          value_parser = clap::value_parser!(u32).range(3..=64))]
    pub database_connections: u32,
}

impl AccessSettings {
    pub fn refresh_every(&self) -> Duration {
        Duration::from_millis(self.refresh_ms)
    }

    pub fn max_staleness(&self) -> Duration {
        Duration::from_millis(self.max_staleness_ms)
    }
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
    /// under load (the quorum queue's cost is per message).
    // Measured on 2 cores (ARCHITECTURE.md): 2 gave 27k events/s at p99 10 ms where 8 gave
    // 21k (5 events per message instead of 17).
    #[arg(long = "publish-in-flight", env = "EYE_PUBLISH_IN_FLIGHT", default_value_t = 2,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub in_flight: u16,
    /// While a message is already in flight, a further one leaves only once this many events
    /// wait, that message is confirmed, or `spill-after-us` passed: at moderate rates one
    /// message at a time carries everything and the broker, whose cost is mostly per
    /// message, does less work; under load the extra slots still open. 1 sends whenever a
    /// slot is free.
    // Measured (ARCHITECTURE.md): 14-20 % less broker work from 2.5k to 15k events/s, p99 no
    // worse.
    #[arg(long = "publish-spill-events", env = "EYE_PUBLISH_SPILL_EVENTS", default_value_t = 32,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub spill_events: u16,
    /// Longest a held message waits for the one in flight, in microseconds (about one
    /// confirm's time): a slow confirm holds nobody long.
    #[arg(
        long = "publish-spill-after-us",
        env = "EYE_PUBLISH_SPILL_AFTER_US",
        default_value_t = 2000
    )]
    pub spill_after_us: u64,
    /// Events that may wait for a message before new ones get 503 (backpressure).
    #[arg(
        long = "publish-queue-capacity",
        env = "EYE_PUBLISH_QUEUE_CAPACITY",
        default_value_t = 16_384
    )]
    pub queue_capacity: usize,
    /// Bytes of serialized events that may wait for a message before new ones get 503: the
    /// count alone would let 16k large events hold a gigabyte while the broker is slow.
    /// At least twice the body limit, so that any one event fits.
    #[arg(
        long = "publish-queue-bytes",
        env = "EYE_PUBLISH_QUEUE_BYTES",
        default_value_t = 64 * 1_048_576
    )]
    pub queue_bytes: usize,
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

impl ApiSettings {
    /// Refuses publishing settings that contradict the rest: a queue too small in bytes for
    /// the largest event (which would then get 503 forever), and a publish timeout that the
    /// request timeout would cut short with a bare 503 (which cannot say whether the event
    /// may be stored).
    pub fn check_publish(&self) -> Result<(), SettingsError> {
        let largest = 2 * self.max_body_bytes as usize;
        if self.publish.queue_bytes < largest {
            return Err(SettingsError(format!(
                "EYE_PUBLISH_QUEUE_BYTES must be at least twice EYE_MAX_BODY_BYTES ({largest})"
            )));
        }
        if (self.publish.queue_capacity as u64) < u64::from(self.batch.max_events) {
            return Err(SettingsError::new(
                "EYE_PUBLISH_QUEUE_CAPACITY must be at least EYE_BATCH_MAX_EVENTS: a full batch \
                 could never be queued",
            ));
        }
        if self.publish.timeout() >= self.request_timeout() {
            return Err(SettingsError::new(
                "EYE_PUBLISH_TIMEOUT_MS must be below EYE_REQUEST_TIMEOUT_SECS",
            ));
        }
        Ok(())
    }
}

/// `POST /events/batch`'s limits. Each event of a batch is also held to
/// `EYE_MAX_BODY_BYTES`, the single event's limit.
#[derive(Debug, Clone, Copy, Args)]
pub struct BatchSettings {
    /// Most events in one batch; more get 413 `too_many_events`.
    #[arg(long = "batch-max-events", env = "EYE_BATCH_MAX_EVENTS", default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub max_events: u32,
    /// Largest batch body once decompressed, in bytes (the compressed body is held to it
    /// too); larger gets 413 `payload_too_large`.
    #[arg(long = "batch-max-bytes", env = "EYE_BATCH_MAX_BYTES", default_value_t = 5 * 1_048_576,
          value_parser = clap::value_parser!(u32).range(1024..=268_435_456))]
    pub max_bytes: u32,
    /// Largest decompressed/compressed ratio of a compressed batch: past it (a decompression
    /// bomb) the body is refused with 413 before it is inflated further. Real batches of
    /// events compress 5-30 times; zeros compress about 1,000 times.
    #[arg(long = "batch-max-ratio", env = "EYE_BATCH_MAX_RATIO", default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(2..))]
    pub max_ratio: u32,
}

/// A value that cannot work.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SettingsError(String);

impl SettingsError {
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

/// Shortest secret accepted: HS256 keys shorter than the hash resist brute force less.
const MIN_SECRET_BYTES: usize = 32;

impl JwtSettings {
    /// Refuses short secrets, malformed or duplicate key ids and an unknown signing kid.
    pub fn check(&self) -> Result<(), SettingsError> {
        self.key_ring().map(|_| ())
    }

    /// Whether any key of the ring is the public [`DEV_JWT_SECRET`].
    pub fn uses_dev_secret(&self) -> bool {
        self.key_ring()
            .is_ok_and(|ring| ring.keys.iter().any(|(_, secret)| secret == DEV_JWT_SECRET))
    }

    /// The ring: `EYE_JWT_KEYS` when set, else `EYE_JWT_SECRET` as the key `default`.
    pub fn key_ring(&self) -> Result<KeyRing, SettingsError> {
        let keys: Vec<(String, String)> = match &self.keys {
            None => vec![(
                crate::auth::DEFAULT_KID.to_owned(),
                self.secret.expose().clone(),
            )],
            Some(ring) => ring
                .expose()
                .split(',')
                .map(str::trim)
                .filter(|entry| !entry.is_empty())
                .map(|entry| {
                    entry
                        .split_once(':')
                        .filter(|(kid, _)| !kid.trim().is_empty())
                        .map(|(kid, secret)| (kid.trim().to_owned(), secret.to_owned()))
                        .ok_or_else(|| SettingsError::new("EYE_JWT_KEYS: each entry is kid:secret"))
                })
                .collect::<Result<_, _>>()?,
        };
        if keys.is_empty() {
            return Err(SettingsError::new("EYE_JWT_KEYS holds no key"));
        }
        let variable = if self.keys.is_some() {
            "EYE_JWT_KEYS"
        } else {
            "EYE_JWT_SECRET"
        };
        for (i, (kid, secret)) in keys.iter().enumerate() {
            if secret.len() < MIN_SECRET_BYTES {
                return Err(SettingsError(format!(
                    "{variable}: the secret of key `{kid}` must be at least {MIN_SECRET_BYTES} bytes long"
                )));
            }
            if keys[..i].iter().any(|(other, _)| other == kid) {
                return Err(SettingsError(format!(
                    "EYE_JWT_KEYS: key `{kid}` given twice"
                )));
            }
        }
        let signing_kid = match &self.signing_kid {
            Some(kid) if keys.iter().any(|(k, _)| k == kid) => kid.clone(),
            Some(kid) => {
                return Err(SettingsError(format!(
                    "EYE_JWT_SIGNING_KID: no key `{kid}` in the ring"
                )));
            }
            None => keys[0].0.clone(),
        };
        Ok(KeyRing { keys, signing_kid })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        settings: ApiSettings,
    }

    /// Settings from flags alone (every flag given wins over the environment).
    fn settings(args: &[&str]) -> ApiSettings {
        let mut argv = vec!["eye-api"];
        argv.extend_from_slice(args);
        Wrapper::try_parse_from(argv).expect("valid flags").settings
    }

    const OWN: &str = "my-own-secret-of-more-than-32-bytes!!";

    #[test]
    fn the_development_secret_is_refused_off_loopback_naming_the_setting() {
        for addr in ["0.0.0.0:8000", "192.168.1.10:8000", "[::]:8000"] {
            let s = settings(&["--http-addr", addr, "--jwt-secret", DEV_JWT_SECRET]);
            let error = s.check().expect_err(addr).to_string();
            assert!(error.contains("EYE_JWT_SECRET"), "{error}");
            assert!(error.contains("EYE_HTTP_ADDR"), "{error}");
        }
        // In a key ring too.
        let ring = format!("old:{DEV_JWT_SECRET},new:{OWN}");
        let s = settings(&["--http-addr", "0.0.0.0:8000", "--jwt-keys", &ring]);
        assert!(s.check().is_err());
    }

    #[test]
    fn the_development_secret_is_allowed_on_loopback_and_an_own_secret_anywhere() {
        for addr in ["127.0.0.1:8000", "[::1]:8000"] {
            let s = settings(&["--http-addr", addr, "--jwt-secret", DEV_JWT_SECRET]);
            assert!(s.check().is_ok(), "{addr}");
        }
        let s = settings(&["--http-addr", "0.0.0.0:8000", "--jwt-secret", OWN]);
        assert!(s.check().is_ok());
    }

    #[test]
    fn read_bounds_past_the_read_pool_are_refused() {
        let s = settings(&[
            "--jwt-secret",
            OWN,
            "--database-max-connections",
            "4",
            "--read-concurrency",
            "3",
            "--search-concurrency",
            "2",
        ]);
        let error = s.check().expect_err("5 > 4").to_string();
        assert!(error.contains("EYE_READ_CONCURRENCY"), "{error}");
    }

    #[test]
    fn a_publish_queue_smaller_in_bytes_than_two_bodies_is_refused() {
        let ok = [
            "--max-body-bytes",
            "65536",
            "--publish-queue-bytes",
            "131072",
        ];
        assert!(settings(&ok).check_publish().is_ok());
        let small = [
            "--max-body-bytes",
            "65536",
            "--publish-queue-bytes",
            "131071",
        ];
        let refused = settings(&small).check_publish().map_err(|e| e.to_string());
        assert!(refused.is_err_and(|e| e.contains("EYE_PUBLISH_QUEUE_BYTES")));
    }

    #[test]
    fn a_publish_timeout_the_request_timeout_would_cut_short_is_refused() {
        let cut = [
            "--publish-timeout-ms",
            "10000",
            "--request-timeout-secs",
            "10",
        ];
        let refused = settings(&cut).check_publish().map_err(|e| e.to_string());
        assert!(refused.is_err_and(|e| e.contains("EYE_PUBLISH_TIMEOUT_MS")));
    }
}
