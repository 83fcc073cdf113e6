//! A TCP proxy in front of RabbitMQ that a test can freeze: bytes stop flowing both ways
//! while the connections stay open, as with a broker that stalls (its confirms do not come),
//! then flow again; or that a test can take down: its connections cut and new ones refused,
//! as with a broker node that died, until it is restored. Only what the test points at the
//! proxy is affected: the shared broker itself is never touched.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::amqp_url;

/// A running proxy to the tests' broker.
pub struct BrokerProxy {
    addr: SocketAddr,
    frozen: watch::Sender<bool>,
    down: watch::Sender<bool>,
    accept: JoinHandle<()>,
}

impl BrokerProxy {
    /// Listens on a free local port and forwards every connection to the tests' broker.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let upstream = authority(&amqp_url()).to_owned();
        let (frozen, _) = watch::channel(false);
        let (down, _) = watch::channel(false);
        let flow = frozen.clone();
        let alive = down.clone();
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if *alive.borrow() {
                    continue; // dropped: the connection is refused
                }
                let Ok(broker) = TcpStream::connect(&upstream).await else {
                    continue;
                };
                let (client_read, client_write) = client.into_split();
                let (broker_read, broker_write) = broker.into_split();
                tokio::spawn(pump(
                    client_read,
                    broker_write,
                    flow.subscribe(),
                    alive.subscribe(),
                ));
                tokio::spawn(pump(
                    broker_read,
                    client_write,
                    flow.subscribe(),
                    alive.subscribe(),
                ));
            }
        });
        Self {
            addr,
            frozen,
            down,
            accept,
        }
    }

    /// The tests' broker URL, through this proxy.
    pub fn amqp_url(&self) -> String {
        let url = amqp_url();
        url.replacen(authority(&url), &self.addr.to_string(), 1)
    }

    /// Stops forwarding: what is sent meanwhile is held, not lost.
    pub fn freeze(&self) {
        self.frozen.send_replace(true);
    }

    /// Forwards again, what was held first.
    pub fn thaw(&self) {
        self.frozen.send_replace(false);
    }

    /// Takes the "node" down: every connection through the proxy is cut and new ones are
    /// closed at once, until [`Self::restore`].
    pub fn cut(&self) {
        self.down.send_replace(true);
    }

    /// Accepts connections again.
    pub fn restore(&self) {
        self.down.send_replace(false);
    }
}

impl Drop for BrokerProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// `host:port` of an AMQP URL (after the credentials, before the virtual host).
fn authority(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, rest)| rest);
    rest.split('/').next().unwrap_or(rest)
}

/// Copies `from` to `to`, holding each chunk while the proxy is frozen. Ends with either side,
/// when the proxy is cut (both halves dropped: the connection closes) or dropped.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut frozen: watch::Receiver<bool>,
    mut down: watch::Receiver<bool>,
) {
    let mut chunk = vec![0; 16 * 1024];
    loop {
        let n = tokio::select! {
            _ = down.wait_for(|down| *down) => return,
            read = from.read(&mut chunk) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            },
        };
        if frozen.wait_for(|frozen| !frozen).await.is_err()
            || to.write_all(&chunk[..n]).await.is_err()
        {
            return;
        }
    }
}
