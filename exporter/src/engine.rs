//! Runs one export: chunk files first, each recorded once written, then the generation's
//! descriptor, then the feed's `latest.json` pointer. A consumer that starts from either
//! never sees a file that is missing or partial; a failed run is resumed after its last
//! recorded chunk whose object is still there with its recorded size.
//!
//! Keys: `{prefix}/{name}/{generation}/data-00001.json.gz`, `.../descriptor.json`, and
//! `{prefix}/{name}/latest.json`.

use std::time::Duration;

use futures::TryStreamExt as _;

use object_store::path::Path;
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use crate::chunk::{self, Descriptor, Latest};
use crate::records;
use crate::runs::{self, Run};
use crate::target::{S3Settings, Target};
use crate::{ExportError, Progress};

/// Chunk uploads in flight at once (each holds one encoded chunk in memory).
const PUTS_IN_FLIGHT: usize = 8;

/// Runs exports for one process (`owner` names it in the leases).
#[derive(Clone)]
pub struct Exporter {
    pub db: DatabaseConnection,
    pub s3: S3Settings,
    pub owner: String,
    /// How long a run stays ours without a chunk written; another process takes it over
    /// after that.
    pub lease: Duration,
}

impl Exporter {
    pub fn new(db: DatabaseConnection, s3: S3Settings) -> Self {
        Self {
            db,
            s3,
            owner: format!(
                "{}-{}",
                std::process::id(),
                &Uuid::new_v4().simple().to_string()[..8]
            ),
            lease: Duration::from_secs(60),
        }
    }

    /// Claims run `id` and runs it to its end (or resumes it); Ok(None) when another process
    /// holds it or it has already succeeded.
    pub async fn run_by_id(
        &self,
        id: Uuid,
        progress: &(dyn Fn(Progress) + Sync),
    ) -> Result<Option<Run>, ExportError> {
        match runs::claim(&self.db, id, &self.owner, self.lease).await? {
            Some(run) => self.run_claimed(run, progress).await.map(Some),
            None => Ok(None),
        }
    }

    /// Runs a claimed run; on failure it is marked failed with the error (and can be resumed).
    pub async fn run_claimed(
        &self,
        run: Run,
        progress: &(dyn Fn(Progress) + Sync),
    ) -> Result<Run, ExportError> {
        let id = run.id;
        match self.write(run, progress).await {
            Ok(done) => Ok(done),
            Err(e) => {
                if !matches!(e, ExportError::LeaseLost) {
                    let message = e.to_string();
                    tracing::warn!(export = %id, error = %message, "export failed");
                    if let Err(db) = runs::fail(&self.db, id, &self.owner, &message).await {
                        tracing::warn!(export = %id, error = %db, "cannot record the failure; the lease will expire");
                    }
                }
                Err(e)
            }
        }
    }

    async fn write(
        &self,
        run: Run,
        progress: &(dyn Fn(Progress) + Sync),
    ) -> Result<Run, ExportError> {
        let spec = run.spec()?;
        let target = Target::open(&spec.destination, &self.s3)?;
        let folder = format!("{}/{}", spec.name, run.generation);
        let key = |file: &str| target.key(&format!("{folder}/{file}"));

        // Resume: keep the recorded chunks whose objects are there with their size.
        let mut written = runs::files(&self.db, run.id).await?;
        let mut kept = 0;
        for file in &written {
            if target.size(&key(&file.file_name)).await? != u64::try_from(file.bytes).ok() {
                break;
            }
            kept += 1;
        }
        if kept < written.len() {
            written.truncate(kept);
            let seq = i32::try_from(kept + 1).unwrap_or(i32::MAX);
            runs::forget_files_from(&self.db, run.id, seq).await?;
        }
        let mut records: u64 = written
            .iter()
            .map(|f| u64::try_from(f.records).unwrap_or(0))
            .sum();
        let seq = u32::try_from(written.len()).unwrap_or(u32::MAX);
        runs::reset_counters(
            &self.db,
            run.id,
            i32::try_from(seq).unwrap_or(i32::MAX),
            i64::try_from(records).unwrap_or(i64::MAX),
        )
        .await?;
        let after: Option<Vec<String>> = match written.last() {
            Some(file) => Some(serde_json::from_value(file.last_key.clone()).map_err(|e| {
                ExportError::Destination(format!("stored resume key unreadable: {e}"))
            })?),
            None => None,
        };
        progress(Progress {
            files: seq,
            records,
        });

        // Pages are read one after the other (keyset), each encoded and put while the next
        // is read, up to PUTS_IN_FLIGHT at once, in a task of their own; this one records
        // them in order meanwhile, so a failure leaves a prefix of chunks recorded (an
        // unrecorded one is rewritten, identical).
        let (sender, mut written_chunks) = tokio::sync::mpsc::channel(PUTS_IN_FLIGHT);
        let producer = tokio::spawn(produce(
            self.db.clone(),
            spec.clone(),
            run.snapshot_at,
            target.clone(),
            folder.clone(),
            after,
            seq,
            sender,
        ));
        let mut failure = None;
        while let Some(item) = written_chunks.recv().await {
            let (seq, file, last_key) = match item {
                Ok(item) => item,
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            };
            if let Err(e) = runs::record_file(
                &self.db,
                run.id,
                &self.owner,
                self.lease,
                seq,
                &file,
                &last_key,
            )
            .await
            {
                failure = Some(e);
                break;
            }
            records += u64::from(file.records);
            progress(Progress {
                files: seq,
                records,
            });
        }
        producer.abort();
        if let Some(e) = failure {
            return Err(e);
        }

        // Every data file is in place: now the descriptor, then the pointer.
        let files: Vec<_> = runs::files(&self.db, run.id)
            .await?
            .iter()
            .map(runs::FileRow::data_file)
            .collect();
        let descriptor = Descriptor {
            generation_timestamp: run.snapshot_at.timestamp(),
            name: spec.shape.feed_name().to_owned(),
            data_file: files.iter().map(|f| f.file_name.clone()).collect(),
            records: files.iter().map(|f| u64::from(f.records)).sum(),
            files,
            generation: run.generation.clone(),
        };
        let descriptor_key = key("descriptor.json");
        target
            .put(&descriptor_key, descriptor.to_bytes(), false)
            .await?;
        self.publish_latest(&target, &spec.name, &run).await?;
        runs::succeed(&self.db, run.id, &self.owner, descriptor_key.as_ref()).await
    }

    /// Points `{name}/latest.json` at this generation unless a newer one is already there
    /// (a rerun of an old generation never moves the pointer back).
    async fn publish_latest(
        &self,
        target: &Target,
        name: &str,
        run: &Run,
    ) -> Result<(), ExportError> {
        let key: Path = target.key(&format!("{name}/latest.json"));
        if let Ok(current) = target.store.get(&key).await
            && let Ok(bytes) = current.bytes().await
            && let Ok(latest) = serde_json::from_slice::<Latest>(&bytes)
            && latest.generation > run.generation
        {
            return Ok(());
        }
        let latest = Latest {
            generation: run.generation.clone(),
            generation_timestamp: run.snapshot_at.timestamp(),
            descriptor: format!("{}/descriptor.json", run.generation),
        };
        let mut bytes = serde_json::to_vec_pretty(&latest).unwrap_or_default();
        bytes.push(b'\n');
        target.put(&key, bytes.into(), false).await
    }
}

/// A chunk put in place: its number, its entry, the key its next chunk starts after.
type Written = (u32, chunk::DataFile, Vec<String>);

/// Reads, encodes and puts the chunks after `after` (chunk `seq` being the last written),
/// sending each once its object is in place, in order; stops at the first error (sent).
#[allow(clippy::too_many_arguments)]
async fn produce(
    db: DatabaseConnection,
    spec: crate::spec::ExportSpec,
    snapshot_at: chrono::DateTime<chrono::Utc>,
    target: Target,
    folder: String,
    after: Option<Vec<String>>,
    seq: u32,
    sender: tokio::sync::mpsc::Sender<Result<Written, ExportError>>,
) {
    let spec = std::sync::Arc::new(spec);
    let folder: std::sync::Arc<str> = folder.into();
    let page_spec = spec.clone();
    let chunks = futures::stream::try_unfold((after, seq, false), move |(after, seq, done)| {
        let (db, spec) = (db.clone(), page_spec.clone());
        async move {
            if done {
                return Ok(None);
            }
            let page =
                records::read_page(&db, &spec, snapshot_at, after.as_deref(), spec.chunk_size)
                    .await?;
            let Some(last_key) = page.last_key else {
                return Ok(None);
            };
            let full = page.records.len() == spec.chunk_size as usize;
            let seq = seq + 1;
            let encoded = chunk::encode(&page.records)?;
            let file = chunk::DataFile {
                file_name: chunk::file_name(seq),
                records: encoded.records,
                bytes: encoded.bytes.len() as u64,
                sha256: encoded.sha256,
            };
            let item = (seq, file, encoded.bytes, last_key.clone());
            Ok::<_, ExportError>(Some((item, (Some(last_key), seq, !full))))
        }
    });
    let mut puts = std::pin::pin!(
        chunks
            .map_ok(move |(seq, file, bytes, last_key)| {
                let (target, folder) = (target.clone(), folder.clone());
                async move {
                    let key = target.key(&format!("{folder}/{}", file.file_name));
                    target
                        .put(&key, bytes, true)
                        .await
                        .map(|()| (seq, file, last_key))
                }
            })
            .try_buffered(PUTS_IN_FLIGHT)
    );
    loop {
        match puts.try_next().await {
            Ok(Some(item)) => {
                if sender.send(Ok(item)).await.is_err() {
                    return;
                }
            }
            Ok(None) => return,
            Err(e) => {
                let _ = sender.send(Err(e)).await;
                return;
            }
        }
    }
}
