//! One signed HTTP attempt: Standard Webhooks headers, no redirects followed, no proxy, the
//! destination checked by [`Guard`], a total timeout, and the answer's body read up to a
//! small cap. Used by the dispatcher and by the api's `POST /webhooks/{id}/test`.

use std::time::{Duration, Instant};

use chrono::Utc;
use clap::Args;
use ipnet::IpNet;
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};

use crate::guard::Guard;

/// Bytes of an answer's body kept (and read at all).
pub const RESPONSE_CAP: usize = 1024;

/// How attempts are made (shared by the dispatcher and the api).
#[derive(Debug, Clone, Args)]
pub struct SendSettings {
    /// Milliseconds an endpoint has to answer (a 2xx within it is success).
    #[arg(id = "webhook_timeout_ms", long = "webhook-timeout-ms", env = "EYE_WEBHOOK_TIMEOUT_MS", default_value_t = 15_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout_ms: u64,
    /// Networks webhooks may reach although they are not public, comma-separated CIDRs
    /// (e.g. `127.0.0.1/32` for a receiver on this host). Empty: public addresses only.
    #[arg(
        id = "webhook_allow_nets",
        long = "webhook-allow-nets",
        env = "EYE_WEBHOOK_ALLOW_NETS",
        value_delimiter = ',',
        default_value = ""
    )]
    pub allow_nets: Vec<String>,
}

impl SendSettings {
    /// The allow-list, or the entry that is not a CIDR.
    pub fn allowed(&self) -> anyhow::Result<Vec<IpNet>> {
        self.allow_nets
            .iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<IpNet>()
                    .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
                    .map_err(|_| anyhow::anyhow!("EYE_WEBHOOK_ALLOW_NETS: `{s}` is not a CIDR"))
            })
            .collect()
    }
}

/// What one attempt gave.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub status: Option<u16>,
    pub latency: Duration,
    /// The start of the answer's body (lossy UTF-8).
    pub response: Option<String>,
    /// Why it failed without an answer (refused destination, timeout, connection).
    pub error: Option<String>,
    /// The answer's `Retry-After`, in seconds.
    pub retry_after: Option<Duration>,
}

impl Outcome {
    pub fn succeeded(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }

    pub fn gone(&self) -> bool {
        self.status == Some(410)
    }
}

/// A signed message ready to send.
#[derive(Debug, Clone)]
pub struct Message<'a> {
    pub url: &'a str,
    pub webhook_id: &'a str,
    pub body: &'a [u8],
    /// Current secret first, then one still within its grace period.
    pub secrets: &'a [&'a str],
}

/// The HTTP client webhooks go out through.
#[derive(Debug, Clone)]
pub struct Sender {
    client: reqwest::Client,
    guard: Guard,
}

impl Sender {
    pub fn new(settings: &SendSettings) -> anyhow::Result<Self> {
        let guard = Guard::new(settings.allowed()?);
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(settings.timeout_ms))
            .connect_timeout(Duration::from_millis(settings.timeout_ms.min(10_000)))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(std::sync::Arc::new(guard.clone()))
            .user_agent(concat!("the-eye-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { client, guard })
    }

    /// Signs and sends `message` once.
    pub async fn send(&self, message: &Message<'_>) -> Outcome {
        let started = Instant::now();
        let failed = |error: String| Outcome {
            status: None,
            latency: started.elapsed(),
            response: None,
            error: Some(error),
            retry_after: None,
        };
        let url = match url::Url::parse(message.url) {
            Ok(url) => url,
            Err(e) => return failed(format!("bad url: {e}")),
        };
        if let Err(refused) = self.guard.check_literal(&url) {
            return failed(refused.to_string());
        }
        let timestamp = Utc::now().timestamp();
        let mut signatures = Vec::with_capacity(message.secrets.len());
        for secret in message.secrets {
            match eye_client::webhooks::sign(secret, message.webhook_id, timestamp, message.body) {
                Ok(signature) => signatures.push(signature),
                Err(e) => return failed(format!("secret: {e}")),
            }
        }
        let request = self
            .client
            .post(url)
            .header(CONTENT_TYPE, "application/json")
            .header("webhook-id", message.webhook_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signatures.join(" "))
            .body(message.body.to_vec());
        let mut response = match request.send().await {
            Ok(response) => response,
            Err(e) => return failed(describe(&e)),
        };
        let latency = started.elapsed();
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let mut excerpt = Vec::new();
        while excerpt.len() < RESPONSE_CAP {
            match response.chunk().await {
                Ok(Some(chunk)) => excerpt.extend_from_slice(&chunk),
                Ok(None) | Err(_) => break,
            }
        }
        excerpt.truncate(RESPONSE_CAP);
        Outcome {
            status: Some(status),
            latency,
            response: Some(String::from_utf8_lossy(&excerpt).replace('\0', "")),
            error: None,
            retry_after,
        }
    }
}

/// The error's chain in one line (reqwest hides the resolver's refusal in its source).
fn describe(e: &reqwest::Error) -> String {
    let mut text = if e.is_timeout() {
        "timed out".to_owned()
    } else {
        e.to_string()
    };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// `Retry-After` as seconds or an HTTP date, capped at a day.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let secs = match value.trim().parse::<u64>() {
        Ok(secs) => secs,
        Err(_) => {
            let at = chrono::DateTime::parse_from_rfc2822(value.trim()).ok()?;
            u64::try_from((at.with_timezone(&Utc) - Utc::now()).num_seconds()).unwrap_or(0)
        }
    };
    Some(Duration::from_secs(secs.min(86_400)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("99999999"),
            Some(Duration::from_secs(86_400))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }
}
