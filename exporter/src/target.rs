//! The destination as an `object_store`: S3-compatible (endpoint and credentials from the
//! environment: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, or the flags of
//! [`S3Settings`]) or a local folder. Puts are whole-object (a single PUT on S3; a temporary
//! file renamed into place on a folder), so an object is either absent or complete.

use std::sync::Arc;
use std::time::Duration;

use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{Attribute, Attributes, ObjectStore, PutOptions, PutPayload, RetryConfig};

use crate::ExportError;
use crate::spec::Destination;

/// How to reach S3 (the bucket and prefix are the export's). Its `Debug` hides the keys.
#[derive(Clone, clap::Args)]
pub struct S3Settings {
    /// S3-compatible endpoint (e.g. http://127.0.0.1:5000); AWS when unset.
    #[arg(long = "s3-endpoint", env = "EYE_S3_ENDPOINT")]
    pub endpoint: Option<String>,
    /// Access key (read from the environment by default, never stored with an export).
    #[arg(
        long = "s3-access-key-id",
        env = "AWS_ACCESS_KEY_ID",
        hide_env_values = true
    )]
    pub access_key_id: Option<String>,
    /// Secret key (from the environment; never logged nor stored).
    #[arg(
        long = "s3-secret-access-key",
        env = "AWS_SECRET_ACCESS_KEY",
        hide_env_values = true
    )]
    pub secret_access_key: Option<String>,
    /// Region.
    #[arg(long = "s3-region", env = "AWS_REGION", default_value = "us-east-1")]
    pub region: String,
    /// Retries of a failed request before the export fails (and can be resumed).
    #[arg(
        long = "s3-max-retries",
        env = "EYE_S3_MAX_RETRIES",
        default_value_t = 3
    )]
    pub max_retries: usize,
    /// Seconds one request may take.
    #[arg(long = "s3-timeout", env = "EYE_S3_TIMEOUT_SECS", default_value_t = 30)]
    pub timeout_secs: u64,
}

impl std::fmt::Debug for S3Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Settings")
            .field("endpoint", &self.endpoint)
            .field("access_key_id", &self.access_key_id.as_ref().map(|_| "***"))
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "***"),
            )
            .field("region", &self.region)
            .field("max_retries", &self.max_retries)
            .field("timeout_secs", &self.timeout_secs)
            .finish()
    }
}

impl Default for S3Settings {
    fn default() -> Self {
        Self {
            endpoint: None,
            access_key_id: None,
            secret_access_key: None,
            region: "us-east-1".into(),
            max_retries: 3,
            timeout_secs: 30,
        }
    }
}

/// An opened destination: the store, the key prefix inside it, and whether it takes HTTP
/// attributes (a folder has no headers to keep them in).
#[derive(Clone)]
pub struct Target {
    pub store: Arc<dyn ObjectStore>,
    pub prefix: String,
    attributes: bool,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Target({}, prefix {:?})", self.store, self.prefix)
    }
}

impl Target {
    pub fn open(destination: &Destination, s3: &S3Settings) -> Result<Self, ExportError> {
        match destination {
            Destination::Folder { path } => {
                std::fs::create_dir_all(path).map_err(|e| {
                    ExportError::Destination(format!("cannot create folder {path}: {e}"))
                })?;
                let store = LocalFileSystem::new_with_prefix(path)
                    .map_err(|e| ExportError::Destination(e.to_string()))?;
                Ok(Self {
                    store: Arc::new(store),
                    prefix: String::new(),
                    attributes: false,
                })
            }
            Destination::S3 { bucket, prefix } => {
                let mut builder = AmazonS3Builder::from_env()
                    .with_bucket_name(bucket)
                    .with_region(&s3.region)
                    .with_retry(RetryConfig {
                        max_retries: s3.max_retries,
                        retry_timeout: Duration::from_secs(s3.timeout_secs),
                        ..RetryConfig::default()
                    })
                    .with_client_options(
                        object_store::ClientOptions::new()
                            .with_timeout(Duration::from_secs(s3.timeout_secs))
                            .with_allow_http(true),
                    );
                if let Some(key) = &s3.access_key_id {
                    builder = builder.with_access_key_id(key);
                }
                if let Some(secret) = &s3.secret_access_key {
                    builder = builder.with_secret_access_key(secret);
                }
                if let Some(endpoint) = &s3.endpoint {
                    builder = builder
                        .with_endpoint(endpoint)
                        .with_allow_http(endpoint.starts_with("http://"));
                }
                let store = builder
                    .build()
                    .map_err(|e| ExportError::Destination(e.to_string()))?;
                Ok(Self {
                    store: Arc::new(store),
                    prefix: prefix.clone(),
                    attributes: true,
                })
            }
        }
    }

    /// The key of `rest` under the prefix.
    pub fn key(&self, rest: &str) -> Path {
        if self.prefix.is_empty() {
            Path::from(rest)
        } else {
            Path::from(format!("{}/{rest}", self.prefix))
        }
    }

    /// Writes one whole object (`gzip`: the chunk files, served with `Content-Encoding: gzip`).
    pub async fn put(
        &self,
        key: &Path,
        bytes: bytes::Bytes,
        gzip: bool,
    ) -> Result<(), ExportError> {
        let mut attributes = Attributes::new();
        if self.attributes {
            attributes.insert(Attribute::ContentType, "application/json".into());
            if gzip {
                attributes.insert(Attribute::ContentEncoding, "gzip".into());
            }
        }
        let opts = PutOptions {
            attributes,
            ..PutOptions::default()
        };
        self.store
            .put_opts(key, PutPayload::from_bytes(bytes), opts)
            .await
            .map_err(|e| ExportError::Destination(format!("put {key}: {e}")))?;
        Ok(())
    }

    /// The size of the object at `key`, None when absent.
    pub async fn size(&self, key: &Path) -> Result<Option<u64>, ExportError> {
        match self.store.head(key).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(ExportError::Destination(format!("head {key}: {e}"))),
        }
    }
}
