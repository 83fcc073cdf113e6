//! Provider helpers for tests: a simulated provider (a raw HTTP server on 127.0.0.1:0 that
//! answers a script of replies in order: fixtures, 503s, slow answers, truncated bodies,
//! malformed XML, redirects, bodies sent in slow pieces), generated feeds, and a fetcher
//! pointed at it.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use eye_core::entity::{json_record, provider_plan, provider_plan_hash};
use sea_orm::{EntityTrait, QueryOrder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::worker::spawn_process;
use crate::{TestEnv, WorkerProcess, with_overrides};

/// Where the provider fixtures live: beside the Fever parser's own tests, in the repository.
pub const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../fetcher/tests/fixtures/provider"
);

/// An address on 127.0.0.1 that was free a moment ago, for a child process to listen on.
pub fn free_local_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free local port")
}

/// A fixture's bytes.
pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{FIXTURES}/{name}")).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// One recorded fetch cycle (`fetch_cycles`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchCycle {
    pub outcome: String,
    pub records: i64,
    pub changed: i64,
    pub removed: i64,
    pub rejected: i64,
    pub error: Option<String>,
    pub circuit_open: bool,
}

/// One answer of the simulated provider.
#[derive(Debug, Clone)]
pub enum Reply {
    /// 200 with this body.
    Body(Vec<u8>),
    /// This status with an empty body.
    Status(u16),
    /// Waits, then answers 200 with the body.
    Slow(Duration, Vec<u8>),
    /// Announces the whole body's length but sends only its first half, then hangs up.
    Truncated(Vec<u8>),
    /// Sends the first half of the body without announcing a length, then hangs up (the
    /// client cannot tell the transfer broke; only the document can).
    Cut(Vec<u8>),
    /// 302 to this location (absolute, or a path on the same server).
    Redirect(String),
    /// 200 with the body's length announced, sent `piece` bytes at a time, `pause` apart.
    Trickle {
        body: Vec<u8>,
        piece: usize,
        pause: Duration,
    },
}

/// The simulated provider. The last reply of the script repeats once the others are used.
pub struct ProviderSim {
    pub addr: SocketAddr,
    script: Arc<Mutex<VecDeque<Reply>>>,
    requests: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl ProviderSim {
    pub async fn start(script: Vec<Reply>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let script = Arc::new(Mutex::new(VecDeque::from(script)));
        let requests = Arc::new(AtomicUsize::new(0));
        let (s, r) = (script.clone(), requests.clone());
        let task = tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let reply = {
                    let mut script = s.lock().expect("script");
                    if script.len() > 1 {
                        script.pop_front()
                    } else {
                        script.front().cloned()
                    }
                };
                r.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 8192];
                    let _ = socket.read(&mut buf).await;
                    let _ = answer(&mut socket, reply.unwrap_or(Reply::Status(500))).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        Self {
            addr,
            script,
            requests,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/api/events", self.addr)
    }

    /// Replaces the rest of the script.
    pub fn then(&self, script: Vec<Reply>) {
        *self.script.lock().expect("script") = VecDeque::from(script);
    }

    /// Requests answered so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for ProviderSim {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(socket: &mut tokio::net::TcpStream, reply: Reply) -> std::io::Result<()> {
    let head = |status: u16, len: usize| {
        format!(
            "HTTP/1.1 {status} X\r\ncontent-type: application/xml\r\ncontent-length: {len}\r\nconnection: close\r\n\r\n"
        )
    };
    match reply {
        Reply::Body(body) => {
            socket.write_all(head(200, body.len()).as_bytes()).await?;
            socket.write_all(&body).await
        }
        Reply::Status(status) => socket.write_all(head(status, 0).as_bytes()).await,
        Reply::Slow(pause, body) => {
            tokio::time::sleep(pause).await;
            socket.write_all(head(200, body.len()).as_bytes()).await?;
            socket.write_all(&body).await
        }
        Reply::Truncated(body) => {
            socket.write_all(head(200, body.len()).as_bytes()).await?;
            socket.write_all(&body[..body.len() / 2]).await
        }
        Reply::Cut(body) => {
            let head =
                "HTTP/1.1 200 X\r\ncontent-type: application/xml\r\nconnection: close\r\n\r\n";
            socket.write_all(head.as_bytes()).await?;
            socket.write_all(&body[..body.len() / 2]).await
        }
        Reply::Redirect(location) => {
            let head = format!(
                "HTTP/1.1 302 X\r\nlocation: {location}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
            socket.write_all(head.as_bytes()).await
        }
        Reply::Trickle { body, piece, pause } => {
            socket.write_all(head(200, body.len()).as_bytes()).await?;
            for part in body.chunks(piece.max(1)) {
                socket.write_all(part).await?;
                socket.flush().await?;
                tokio::time::sleep(pause).await;
            }
            Ok(())
        }
    }
}

/// One plan of a generated feed, in its own base plan, with one zone; `attrs` replaces
/// attributes by name (`("plan_start_date", "-5000-01-01T00:00:00")`).
pub fn plan_xml(id: &str, attrs: &[(&str, &str)]) -> String {
    let value = |name: &str, default: &str| {
        attrs
            .iter()
            .find(|(n, _)| *n == name)
            .map_or_else(|| default.to_owned(), |(_, v)| (*v).to_owned())
    };
    format!(
        r#"<base_plan base_plan_id="{}" sell_mode="online" title="{}"><plan plan_start_date="{}" plan_end_date="{}" plan_id="{}" sell_from="2021-01-01T00:00:00" sell_to="2021-06-01T00:00:00" sold_out="false"><zone zone_id="1" capacity="10" price="{}" name="{}" numbered="true"/></plan></base_plan>
"#,
        value("base_plan_id", id),
        value("title", &format!("Plan {id}")),
        value("plan_start_date", "2021-06-30T21:00:00"),
        value("plan_end_date", "2021-06-30T22:00:00"),
        value("plan_id", id),
        value("price", "20.00"),
        value("name", "Platea"),
    )
}

/// A Fever document of these plans (see [`plan_xml`]).
pub fn feed(plans: &[String]) -> Vec<u8> {
    let mut body = b"<planList><output>\n".to_vec();
    for plan in plans {
        body.extend_from_slice(plan.as_bytes());
    }
    body.extend_from_slice(b"</output></planList>\n");
    body
}

/// A Fever document of `n` valid plans, ids `0..n`.
pub fn generated_feed(n: usize) -> Vec<u8> {
    let plans: Vec<String> = (0..n).map(|i| plan_xml(&i.to_string(), &[])).collect();
    feed(&plans)
}

/// The tests' fetcher settings (short timeouts, fast retries, no rate limit, a circuit that
/// opens soon and stays open), as (flag, environment variable, value).
const TEST_FETCHER: [(&str, &str, &str); 7] = [
    ("--timeout-ms", "EYE_FETCH_TIMEOUT_MS", "1000"),
    ("--read-timeout-ms", "EYE_FETCH_READ_TIMEOUT_MS", "1000"),
    ("--retries", "EYE_FETCH_RETRIES", "2"),
    ("--backoff-ms", "EYE_FETCH_BACKOFF_MS", "10"),
    ("--min-gap-ms", "EYE_FETCH_MIN_GAP_MS", "0"),
    ("--breaker-failures", "EYE_FETCH_BREAKER_FAILURES", "2"),
    (
        "--breaker-cooldown-secs",
        "EYE_FETCH_BREAKER_COOLDOWN_SECS",
        "3600",
    ),
];

impl TestEnv {
    /// Fetcher settings for this env pointed at `url`, with fast retries; `extra` wins.
    pub fn fetcher_settings(&self, url: &str, extra: &[&str]) -> eye_fetcher::FetcherSettings {
        use clap::Parser;
        let mut args = vec!["eye-fetcher".to_owned()];
        args.extend(self.common_args());
        args.extend(["--url".to_owned(), url.to_owned()]);
        for (flag, _, value) in TEST_FETCHER {
            args.extend([flag.to_owned(), value.to_owned()]);
        }
        eye_fetcher::FetcherSettings::parse_from(with_overrides(args, extra))
    }

    /// Starts the real `eye-fetcher` binary against this env, pointed at `url`, with the
    /// settings of [`Self::fetcher_settings`]; `extra` environment variables win. Its
    /// metrics listen on a free port unless `extra` names `EYE_FETCH_METRICS_ADDR`.
    pub fn spawn_fetcher_process(&self, url: &str, extra: &[(&str, &str)]) -> WorkerProcess {
        let mut env: Vec<_> = self.worker_env();
        env.retain(|(name, _)| *name != "EYE_WORKER_METRICS_ADDR");
        env.push(("EYE_FETCH_URL", url.to_owned()));
        env.push(("EYE_FETCH_METRICS_ADDR", "127.0.0.1:0".to_owned()));
        env.extend(TEST_FETCHER.map(|(_, name, value)| (name, value.to_owned())));
        spawn_process("eye-fetcher", env, extra)
    }

    /// A fetcher for this env pointed at `url`.
    pub async fn fetcher(&self, url: &str, extra: &[&str]) -> eye_fetcher::Fetcher {
        eye_fetcher::Fetcher::build(self.fetcher_settings(url, extra))
            .await
            .expect("build fetcher")
    }

    /// A fetcher of the `json` adapter for this env, pointed at `url` (the API's base).
    pub async fn json_fetcher(&self, url: &str, extra: &[&str]) -> eye_fetcher::Fetcher {
        let mut args = vec!["--provider", "json"];
        args.extend_from_slice(extra);
        self.fetcher(url, &args).await
    }

    /// The JSON provider records' read model: (resource, remote id, model), sorted.
    pub async fn json_records(&self) -> Vec<json_record::Model> {
        let mut rows = json_record::Entity::find()
            .all(&self.db)
            .await
            .expect("read json records");
        rows.sort_by(|a, b| (&a.resource, &a.remote_id).cmp(&(&b.resource, &b.remote_id)));
        rows
    }

    /// Polls the JSON records until `ready` holds or `within` passes; returns the last read.
    pub async fn wait_for_json_records(
        &self,
        within: Duration,
        ready: impl Fn(&[json_record::Model]) -> bool,
    ) -> Vec<json_record::Model> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let rows = self.json_records().await;
            if ready(&rows) || tokio::time::Instant::now() > deadline {
                return rows;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The fetcher's recorded cycles of `provider`, oldest first: (outcome, records,
    /// changed, removed, rejected, error, circuit open).
    pub async fn fetch_cycles(&self, provider: &str) -> Vec<FetchCycle> {
        use sea_orm::{ConnectionTrait, DbBackend, Statement};
        let rows = self
            .db
            .query_all_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT outcome, records, changed, removed, rejected, error, circuit_open \
                 FROM fetch_cycles WHERE provider = $1 ORDER BY id",
                [provider.into()],
            ))
            .await
            .expect("read fetch cycles");
        rows.iter()
            .map(|r| FetchCycle {
                outcome: r.try_get("", "outcome").expect("outcome"),
                records: r.try_get("", "records").expect("records"),
                changed: r.try_get("", "changed").expect("changed"),
                removed: r.try_get("", "removed").expect("removed"),
                rejected: r.try_get("", "rejected").expect("rejected"),
                error: r.try_get("", "error").expect("error"),
                circuit_open: r.try_get("", "circuit_open").expect("circuit_open"),
            })
            .collect()
    }

    /// The plan read model, by start time.
    pub async fn provider_plans(&self) -> Vec<provider_plan::Model> {
        provider_plan::Entity::find()
            .order_by_asc(provider_plan::Column::StartsAt)
            .all(&self.db)
            .await
            .expect("read provider plans")
    }

    /// The fetcher's stored hashes: (base plan id, plan id) of every row, sorted.
    pub async fn provider_hashes(&self) -> Vec<(String, String)> {
        let mut keys: Vec<_> = provider_plan_hash::Entity::find()
            .all(&self.db)
            .await
            .expect("read provider plan hashes")
            .into_iter()
            .map(|h| (h.base_plan_id, h.plan_id))
            .collect();
        keys.sort();
        keys
    }

    /// Polls the read model until `ready` holds or `within` passes; returns the last read.
    pub async fn wait_for_plans(
        &self,
        within: Duration,
        ready: impl Fn(&[provider_plan::Model]) -> bool,
    ) -> Vec<provider_plan::Model> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let plans = self.provider_plans().await;
            if ready(&plans) || tokio::time::Instant::now() > deadline {
                return plans;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
