//! What a load test run is told: the target, the load, the token and where to check the
//! ledger. Flags or environment variables, so `make loadtest RATE=500` works as well as
//! `eye-loadtest --rate 500`.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use eye_core::Secret;

/// One run of the load test.
#[derive(Debug, Parser)]
#[command(
    name = "eye-loadtest",
    about = "Post events to a running Eye API at a fixed rate, then prove every accepted event \
             was stored or dead-lettered exactly once",
    after_help = "Any goose option can follow `--` (e.g. `-- --running-metrics 10`); it wins over \
                  the options above."
)]
pub struct Settings {
    /// Base URL of the API under test.
    #[arg(long, env = "HOST", default_value = "http://127.0.0.1:8000", value_parser = parse_base_url)]
    pub host: String,

    /// Requests per second for all users together (goose's fixed-rate throttle).
    #[arg(long, env = "RATE", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub rate: u32,

    /// Seconds to hold the rate once every user has started.
    #[arg(long = "duration", env = "DURATION", default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..))]
    pub duration_secs: u32,

    /// Concurrent users. More than the rate needs, so one slow answer does not hold the
    /// others back; coordinated-omission mitigation accounts for the requests it delays.
    #[arg(long, env = "USERS", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub users: u32,

    /// Bearer token (`eye-api token --app loadtest`); its `sub` is the application whose
    /// rows the ledger checks.
    #[arg(long, env = "EYE_TOKEN", hide_env_values = true)]
    pub token: Secret<String>,

    /// The database the worker writes to.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/eye",
        hide_env_values = true
    )]
    pub database_url: Secret<String>,

    /// Of `--users`, how many send batches through the client library (`eye_client`
    /// `send_batch`, `POST /events/batch`) instead of single events; 0: none. Their events
    /// come on top of `--rate` and go into the same ledger.
    #[arg(long, env = "BATCH_USERS", default_value_t = 1)]
    pub batch_users: u32,

    /// Events per batch of a batch user.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub batch_size: u32,

    /// Milliseconds a batch user waits after each batch.
    #[arg(long, default_value_t = 1000)]
    pub batch_every_ms: u64,

    /// Distinct session ids the events are spread over.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    pub sessions: u32,

    /// Percent of events made invalid on purpose (a required key left out), so the
    /// dead-letter path carries load too.
    #[arg(long, default_value_t = 2.0, value_parser = parse_percent)]
    pub invalid_percent: f64,

    /// Percent of hostile events the API accepts but the worker must judge on their own:
    /// far-future and edge-of-time timestamps, `data` nested past the worker's limit, NUL
    /// characters, unknown types (`make chaos` uses 1).
    #[arg(long, default_value_t = 0.0, value_parser = parse_percent)]
    pub hostile_percent: f64,

    /// Seconds each event is retried, with the same id, while the answer is 503, 429, another
    /// 5xx or none at all (the API's contract); 0 sends each event once.
    #[arg(long = "retry-secs", default_value_t = 0)]
    pub retry_secs: u64,

    /// Longest wait, after the load stops, for the worker to account for every accepted id.
    #[arg(long = "drain-timeout", default_value_t = 60)]
    pub drain_timeout_secs: u64,

    /// Where goose writes its HTML and JSON reports.
    #[arg(long, default_value = "target/loadtest")]
    pub report_dir: PathBuf,

    /// Options passed to goose as they are.
    #[arg(last = true, value_name = "GOOSE_OPTIONS")]
    pub goose_args: Vec<String>,
}

impl Settings {
    pub fn drain_timeout(&self) -> Duration {
        Duration::from_secs(self.drain_timeout_secs)
    }

    /// The share of invalid events, 0.0 to 1.0.
    pub fn invalid_share(&self) -> f64 {
        self.invalid_percent / 100.0
    }

    /// The share of hostile events, 0.0 to 1.0.
    pub fn hostile_share(&self) -> f64 {
        self.hostile_percent / 100.0
    }

    pub fn retry_for(&self) -> Duration {
        Duration::from_secs(self.retry_secs)
    }
}

/// Goose joins request paths to this, so it must be an absolute http(s) URL; refusing
/// anything else also catches a shell whose `HOST` holds the machine's name.
fn parse_base_url(value: &str) -> Result<String, String> {
    let rest = value
        .strip_prefix("http://")
        .or_else(|| value.strip_prefix("https://"))
        .ok_or_else(|| format!("{value:?} is not an http:// or https:// URL"))?;
    if rest.trim_end_matches('/').is_empty() {
        return Err(format!("{value:?} names no host"));
    }
    Ok(value.trim_end_matches('/').to_owned())
}

fn parse_percent(value: &str) -> Result<f64, String> {
    let percent: f64 = value
        .parse()
        .map_err(|_| format!("{value:?} is not a number"))?;
    if !(0.0..=100.0).contains(&percent) {
        return Err(format!("{percent} is not between 0 and 100"));
    }
    Ok(percent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_base_url_must_be_http_and_loses_its_trailing_slash() {
        assert_eq!(
            parse_base_url("http://127.0.0.1:8000/").as_deref(),
            Ok("http://127.0.0.1:8000")
        );
        assert!(parse_base_url("https://eye.example").is_ok());
        assert!(parse_base_url("my-laptop").is_err());
        assert!(parse_base_url("http://").is_err());
    }

    #[test]
    fn a_percent_is_between_0_and_100() {
        assert_eq!(parse_percent("2"), Ok(2.0));
        assert!(parse_percent("-1").is_err());
        assert!(parse_percent("101").is_err());
        assert!(parse_percent("many").is_err());
    }

    #[test]
    fn goose_options_follow_a_double_dash() {
        let settings = Settings::try_parse_from([
            "eye-loadtest",
            "--token",
            "t",
            "--",
            "--running-metrics",
            "5",
        ]);
        let settings = settings.map_err(|e| e.to_string());
        assert_eq!(
            settings.map(|s| s.goose_args),
            Ok(vec!["--running-metrics".to_owned(), "5".to_owned()])
        );
    }
}
