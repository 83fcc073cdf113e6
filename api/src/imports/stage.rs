//! Staging an uploaded file: a blocking thread reads it as a stream (the `csv` crate, or
//! lines) and hands chunks of rows, already in COPY's text form, over a bounded channel to
//! the async side, which COPYs each chunk into `import_rows` (its own short statement). So
//! memory is a few chunks whatever the file's size, and back-pressure reaches the reader.
//!
//! An upload that breaks off (the client went away, the body errors) or passes the byte limit
//! fails the import and drops its staged rows; [`stage_detached`] runs the staging as its own
//! task so that a client going away cannot cancel it half-way (the handler's future is
//! dropped then, the staging sees the body's error and cleans up). What a crash of the api
//! leaves behind (an import `queued` with no `staged_rows`) is failed by the workers'
//! sweeper once it has not moved for `EYE_IMPORT_UPLOAD_STALE_SECS`; each COPY moves it.

use std::io::{BufRead, BufReader, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use eye_core::import::{Format, ImportSpec};
use sea_orm::DatabaseConnection;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::error::ApiError;
use crate::store::{StoreError, imports};

/// Rows per COPY statement.
const ROWS_PER_COPY: usize = 10_000;
/// Chunks waiting between the reader and the COPY (memory bound: this many chunks).
const CHUNKS_IN_FLIGHT: usize = 2;

/// Why a file could not be staged.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The spec does not fit the file (a mapped column missing from the header).
    #[error("{message}")]
    Spec { field: String, message: String },
    /// The file itself could not be read (not CSV, the upload broke off).
    #[error("the file could not be read: {0}")]
    Unreadable(String),
    /// The upload passed the byte limit.
    #[error("the upload is larger than the {limit}-byte limit")]
    TooLarge { limit: u64 },
    /// The import was cancelled (or failed as abandoned) while its file was being staged.
    #[error("the import was cancelled or abandoned during its upload")]
    Gone,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<ImportError> for ApiError {
    fn from(e: ImportError) -> Self {
        match e {
            ImportError::Spec { field, message } => ApiError::InvalidField { field, message },
            ImportError::Unreadable(message) => ApiError::InvalidField {
                field: "body".into(),
                message: format!("the file could not be read: {message}"),
            },
            ImportError::TooLarge { limit } => ApiError::UploadTooLarge { limit },
            ImportError::Gone => ApiError::InvalidField {
                field: "body".into(),
                message: e.to_string(),
            },
            ImportError::Store(e) => e.into(),
        }
    }
}

/// A staged import.
#[derive(Debug, Clone, Copy)]
pub struct Staged {
    pub id: Uuid,
    pub rows: u64,
}

enum Piece {
    Header(Vec<String>),
    Rows { copy: Vec<u8>, count: usize },
    Failed(String),
}

/// [`stage`] as a task of its own, awaited: dropping the returned future (a client that went
/// away) does not cancel the staging, which then sees the body's error and fails the import.
pub async fn stage_detached<R: Read + Send + 'static>(
    db: DatabaseConnection,
    app_id: String,
    created_by: String,
    spec: ImportSpec,
    reader: R,
    max_bytes: u64,
) -> Result<Staged, ImportError> {
    tokio::spawn(async move { stage(&db, &app_id, &created_by, spec, reader, max_bytes).await })
        .await
        .map_err(|e| ImportError::Unreadable(format!("the staging task failed: {e}")))?
}

/// Stages `reader`'s rows (at most `max_bytes` of it) as a new import of `app_id` with `spec`,
/// and marks it staged; its id. On any failure the import is failed and its rows dropped.
pub async fn stage<R: Read + Send + 'static>(
    db: &DatabaseConnection,
    app_id: &str,
    created_by: &str,
    mut spec: ImportSpec,
    reader: R,
    max_bytes: u64,
) -> Result<Staged, ImportError> {
    let id = Uuid::now_v7();
    let over = Arc::new(AtomicBool::new(false));
    let reader = Limited {
        inner: reader,
        left: max_bytes,
        over: over.clone(),
    };
    let too_large = |e: ImportError| {
        if over.load(Ordering::Acquire) {
            ImportError::TooLarge { limit: max_bytes }
        } else {
            e
        }
    };
    let (tx, mut rx) = mpsc::channel(CHUNKS_IN_FLIGHT);
    let format = spec.format;
    let reading = tokio::task::spawn_blocking(move || read(format, reader, id, &tx));
    if format == Format::Csv {
        match rx.recv().await {
            Some(Piece::Header(columns)) => spec.columns = columns,
            Some(Piece::Failed(message)) => {
                return Err(too_large(ImportError::Unreadable(message)));
            }
            _ => return Err(ImportError::Unreadable("no header line".into())),
        }
    }
    spec.layout().map_err(|e| ImportError::Spec {
        field: e.field,
        message: e.message,
    })?;
    imports::create(db, id, app_id, &spec, created_by).await?;
    let mut rows = 0u64;
    let outcome = async {
        while let Some(piece) = rx.recv().await {
            match piece {
                Piece::Rows { copy, count } => {
                    copy_rows(db, &copy).await?;
                    rows += count as u64;
                    // Moves `updated_at` (the sweeper's clock); false once cancelled.
                    if !imports::touch_staging(db, id).await? {
                        return Err(ImportError::Gone);
                    }
                }
                Piece::Failed(message) => return Err(ImportError::Unreadable(message)),
                Piece::Header(_) => {}
            }
        }
        Ok(())
    }
    .await;
    drop(rx);
    let _ = reading.await;
    let outcome = match outcome {
        Ok(()) if imports::mark_staged(db, id, rows).await? => return Ok(Staged { id, rows }),
        Ok(()) => ImportError::Gone,
        Err(e) => too_large(e),
    };
    if let Err(e) = imports::fail(db, id, &outcome.to_string()).await {
        tracing::warn!(import = %id, error = %e, "a failed upload's rows were not dropped; the sweeper will");
    }
    Err(outcome)
}

/// The upload's reader, refusing past `left` bytes (and saying so in `over`).
struct Limited<R> {
    inner: R,
    left: u64,
    over: Arc<AtomicBool>,
}

impl<R: Read> Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        match self.left.checked_sub(n as u64) {
            Some(left) => {
                self.left = left;
                Ok(n)
            }
            None => {
                self.over.store(true, Ordering::Release);
                Err(std::io::Error::other("the upload is over the byte limit"))
            }
        }
    }
}

async fn copy_rows(db: &DatabaseConnection, copy: &[u8]) -> Result<(), StoreError> {
    let pool = db.get_postgres_connection_pool();
    let sqlx = |e: sea_orm::sqlx::Error| StoreError::Db(sea_orm::DbErr::Custom(e.to_string()));
    let mut conn = pool.acquire().await.map_err(sqlx)?;
    let mut sink = conn
        .copy_in_raw("COPY import_rows (import_id, row_no, line) FROM STDIN")
        .await
        .map_err(sqlx)?;
    sink.send(copy).await.map_err(sqlx)?;
    sink.finish().await.map_err(sqlx)?;
    Ok(())
}

/// Reads the file on a blocking thread; stops early if the receiver is gone.
fn read<R: Read>(format: Format, reader: R, id: Uuid, tx: &mpsc::Sender<Piece>) {
    let result = match format {
        Format::Csv => read_csv(reader, id, tx),
        Format::Ndjson => read_lines(reader, id, tx),
    };
    if let Err(message) = result {
        let _ = tx.blocking_send(Piece::Failed(message));
    }
}

struct Batch<'a> {
    id: String,
    copy: Vec<u8>,
    count: usize,
    tx: &'a mpsc::Sender<Piece>,
}

impl Batch<'_> {
    /// Adds one row in COPY's text form; false once the receiver is gone.
    fn push(&mut self, row_no: u64, line: &str) -> bool {
        self.copy.extend_from_slice(self.id.as_bytes());
        self.copy.push(b'\t');
        self.copy.extend_from_slice(row_no.to_string().as_bytes());
        self.copy.push(b'\t');
        for b in line.bytes() {
            match b {
                b'\\' => self.copy.extend_from_slice(b"\\\\"),
                b'\n' => self.copy.extend_from_slice(b"\\n"),
                b'\r' => self.copy.extend_from_slice(b"\\r"),
                b'\t' => self.copy.extend_from_slice(b"\\t"),
                // Text columns hold no NUL: kept visible, the row is refused by the worker.
                0 => self.copy.extend_from_slice(b"\\\\u0000"),
                b => self.copy.push(b),
            }
        }
        self.copy.push(b'\n');
        self.count += 1;
        if self.count >= ROWS_PER_COPY {
            return self.flush();
        }
        true
    }

    fn flush(&mut self) -> bool {
        if self.count == 0 {
            return true;
        }
        let copy = std::mem::replace(&mut self.copy, Vec::with_capacity(1 << 20));
        let count = std::mem::take(&mut self.count);
        self.tx.blocking_send(Piece::Rows { copy, count }).is_ok()
    }
}

fn batch(id: Uuid, tx: &mpsc::Sender<Piece>) -> Batch<'_> {
    Batch {
        id: id.to_string(),
        copy: Vec::with_capacity(1 << 20),
        count: 0,
        tx,
    }
}

fn read_csv<R: Read>(reader: R, id: Uuid, tx: &mpsc::Sender<Piece>) -> Result<(), String> {
    let mut csv = csv::ReaderBuilder::new().flexible(true).from_reader(reader);
    let header = csv.byte_headers().map_err(|e| e.to_string())?;
    let columns: Vec<String> = header
        .iter()
        .map(|c| String::from_utf8_lossy(c).trim().to_owned())
        .collect();
    if tx.blocking_send(Piece::Header(columns)).is_err() {
        return Ok(());
    }
    let mut out = batch(id, tx);
    let mut record = csv::ByteRecord::new();
    let mut row_no = 0u64;
    loop {
        match csv.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(format!("after row {row_no}: {e}")),
        }
        row_no += 1;
        let fields: Vec<std::borrow::Cow<'_, str>> =
            record.iter().map(String::from_utf8_lossy).collect();
        let line = serde_json::to_string(&fields).map_err(|e| e.to_string())?;
        if !out.push(row_no, &line) {
            return Ok(());
        }
    }
    out.flush();
    Ok(())
}

fn read_lines<R: Read>(reader: R, id: Uuid, tx: &mpsc::Sender<Piece>) -> Result<(), String> {
    let mut lines = BufReader::with_capacity(1 << 16, reader);
    let mut out = batch(id, tx);
    let mut buf = Vec::new();
    let mut row_no = 0u64;
    loop {
        buf.clear();
        let n = lines
            .read_until(b'\n', &mut buf)
            .map_err(|e| format!("after line {row_no}: {e}"))?;
        if n == 0 {
            break;
        }
        row_no += 1;
        let line = String::from_utf8_lossy(&buf);
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if !out.push(row_no, line) {
            return Ok(());
        }
    }
    out.flush();
    Ok(())
}
