//! Feed exports: stored records (events, provider plans, or plans as Reserve with Google
//! entities) written as gzip JSON chunk files plus a descriptor, to S3 or a local folder,
//! complete or invisible, deterministic per generation and resumable. See ARCHITECTURE.md
//! ("Exports") for the write order and where it runs.

pub mod chunk;
pub mod cli;
mod engine;
pub mod records;
pub mod runs;
pub mod schedule;
pub mod settings;
pub mod spec;
pub mod target;

pub use chunk::{DataFile, Descriptor, Latest};
pub use engine::Exporter;
pub use runs::Run;
pub use settings::ExporterSettings;
pub use spec::{Destination, EventFilter, ExportSpec, Shape};
pub use target::{S3Settings, Target};

/// Progress of a run, after each chunk: files and records written so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub files: u32,
    pub records: u64,
}

/// Why an export could not be created or run.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("invalid `{field}`: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("destination: {0}")]
    Destination(String),
    #[error("database: {0}")]
    Database(#[from] sea_orm::DbErr),
    #[error("encoding: {0}")]
    Io(#[from] std::io::Error),
    #[error("another process took this export over (its lease expired)")]
    LeaseLost,
    #[error("no such export")]
    NotFound,
}
