//! Bulk imports: what `POST /imports` and `eye-api import` ask for ([`ImportParams`]), and
//! staging the file ([`stage`]): read as a stream on a blocking thread (CSV records or NDJSON
//! lines, never the whole file), copied into `import_rows` in chunks with PostgreSQL's COPY,
//! then the import is marked staged and any worker may run it. See ARCHITECTURE.md, "Imports".

pub mod cli;
mod stage;

use eye_core::import::{Dedup, Format, ImportSpec, Keep, Mapping};
use serde::Deserialize;
use utoipa::IntoParams;

pub use stage::{ImportError, Staged, stage, stage_detached};

/// How to read the file: the CSV columns of the event fields (a field left out is read from the
/// column of its own name) and the deduplication rule.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportParams {
    /// Admin tokens: the application to import into (others import into their own).
    pub app: Option<String>,
    /// Column holding the event's id (a row with one is deduplicated by it).
    pub id: Option<String>,
    pub session_id: Option<String>,
    pub category: Option<String>,
    pub name: Option<String>,
    pub timestamp: Option<String>,
    /// A column holding `data` as a JSON object; without it the unmapped columns become
    /// `data`'s members (strings).
    pub data: Option<String>,
    /// The natural key of rows without an id: columns (CSV) or fields (NDJSON), comma-separated.
    /// Without it, the whole event is the key.
    pub dedup_key: Option<String>,
    /// Compare the natural key ignoring case.
    #[serde(default)]
    pub case_insensitive: bool,
    /// `first` (default) or `last`: which of rows with one key wins.
    #[param(value_type = Option<String>)]
    pub keep: Option<Keep>,
}

impl ImportParams {
    /// The spec of an import of a file in `format` (its CSV header is read from the file).
    pub fn spec(&self, format: Format) -> ImportSpec {
        ImportSpec {
            format,
            columns: Vec::new(),
            mapping: Mapping {
                id: self.id.clone(),
                session_id: self.session_id.clone(),
                category: self.category.clone(),
                name: self.name.clone(),
                timestamp: self.timestamp.clone(),
                data: self.data.clone(),
            },
            dedup: Dedup {
                key: self
                    .dedup_key
                    .as_deref()
                    .unwrap_or("")
                    .split(',')
                    .map(str::trim)
                    .filter(|k| !k.is_empty())
                    .map(str::to_owned)
                    .collect(),
                case_insensitive: self.case_insensitive,
                keep: self.keep.unwrap_or_default(),
            },
        }
    }
}
