//! A real S3-compatible server for the export tests: moto's server mode (`moto[server]` from
//! PyPI, installed by scripts/moto.sh into the project's venv), started on a free loopback
//! port and killed when the [`MotoServer`] is dropped. A missing moto is installed, and a
//! failed install fails the test: never skipped. [`S3Outage`] stands between the exporter
//! and moto and can take "the server" down (connections cut, new ones refused) and back,
//! with moto's objects kept, as an S3 that becomes unreachable mid-export.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use eye_exporter::{Destination, S3Settings, Target};
use object_store::path::Path;
use object_store::{Attribute, ObjectStore};

use crate::free_local_addr;

/// `moto_server`'s path, installing it on first use (scripts/moto.sh).
fn moto_binary() -> String {
    static BIN: OnceLock<String> = OnceLock::new();
    BIN.get_or_init(|| {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/moto.sh");
        let out = Command::new("bash")
            .arg(script)
            .stderr(Stdio::inherit())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {script}: {e}"));
        assert!(
            out.status.success(),
            "{script} failed: moto[server] could not be installed (the S3 tests need it)"
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    })
    .clone()
}

/// A moto S3 server on a loopback port of its own.
pub struct MotoServer {
    child: Child,
    pub addr: SocketAddr,
}

impl MotoServer {
    /// Starts moto and waits until it answers (panics after 60 s).
    pub async fn start() -> Self {
        let bin = moto_binary();
        let addr = free_local_addr();
        let child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &addr.port().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
        let server = Self { child, addr };
        let client = reqwest::Client::new();
        for _ in 0..600 {
            if client.get(server.endpoint()).send().await.is_ok() {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("moto_server did not answer on {addr}");
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Creates `bucket` (moto checks no signature).
    pub async fn create_bucket(&self, bucket: &str) {
        let response = reqwest::Client::new()
            .put(format!("{}/{bucket}", self.endpoint()))
            .send()
            .await
            .expect("create bucket");
        assert!(
            response.status().is_success(),
            "create bucket: {}",
            response.status()
        );
    }

    /// A client of this server for `bucket` (signed, as moto refuses anonymous reads).
    pub fn store(&self, bucket: &str) -> std::sync::Arc<dyn ObjectStore> {
        let settings = S3Settings {
            endpoint: Some(self.endpoint()),
            access_key_id: Some("test".into()),
            secret_access_key: Some("test".into()),
            max_retries: 0,
            timeout_secs: 5,
            ..S3Settings::default()
        };
        let destination = Destination::S3 {
            bucket: bucket.into(),
            prefix: String::new(),
        };
        Target::open(&destination, &settings)
            .expect("S3 client")
            .store
    }

    /// An object's `Content-Type`, `Content-Encoding`, ETag and raw (still compressed)
    /// bytes; None when absent.
    pub async fn object(&self, bucket: &str, key: &str) -> Option<StoredObject> {
        let got = match self.store(bucket).get(&Path::from(key)).await {
            Ok(got) => got,
            Err(object_store::Error::NotFound { .. }) => return None,
            Err(e) => panic!("get {key}: {e}"),
        };
        let attribute = |a: &Attribute| got.attributes.get(a).map(|v| v.as_ref().to_owned());
        let content_type = attribute(&Attribute::ContentType);
        let content_encoding = attribute(&Attribute::ContentEncoding);
        let etag = got.meta.e_tag.clone();
        let bytes = got.bytes().await.expect("object body").to_vec();
        Some(StoredObject {
            content_type,
            content_encoding,
            etag,
            bytes,
        })
    }
}

/// An object as read back from moto.
#[derive(Debug, Clone)]
pub struct StoredObject {
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    pub etag: Option<String>,
    pub bytes: Vec<u8>,
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP proxy in front of moto that a test can take down and bring back.
pub struct S3Outage {
    addr: SocketAddr,
    down: watch::Sender<bool>,
    accept: JoinHandle<()>,
}

impl S3Outage {
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let (down, _) = watch::channel(false);
        let state = down.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let mut cut = state.subscribe();
                if *cut.borrow() {
                    continue; // dropped: refused as a stopped server would
                }
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.wait_for(|down| *down) => {}
                    }
                });
            }
        });
        Self { addr, down, accept }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Cuts every connection and refuses new ones.
    pub fn go_down(&self) {
        self.down.send_replace(true);
    }

    pub fn come_back(&self) {
        self.down.send_replace(false);
    }
}

impl Drop for S3Outage {
    fn drop(&mut self) {
        self.accept.abort();
    }
}
