//! What an export reads and where it writes: stored with the run (as JSON) so a resumed or
//! scheduled run does exactly the same thing. Credentials are never part of it: S3 keys come
//! from the environment of the process that runs the export.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ExportError;

/// Default records per chunk file (as the seed's feed).
pub const DEFAULT_CHUNK_SIZE: u32 = 100;
/// Largest chunk accepted: a chunk is held in memory while it is compressed.
pub const MAX_CHUNK_SIZE: u32 = 10_000;

/// The records an export writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Shape {
    /// Stored events, as the read endpoints show them.
    Events,
    /// Provider plans, the `/search` read model (ever online), with their stored document.
    Plans,
    /// Provider plans as Reserve with Google entities (one entity per plan).
    RwgEntities,
}

impl Shape {
    /// The `name` of the descriptor.
    pub fn feed_name(self) -> &'static str {
        match self {
            Shape::Events => "eye.events",
            Shape::Plans => "eye.plans",
            Shape::RwgEntities => "reservewithgoogle.entity",
        }
    }
}

/// Filters of an events export (all optional, combined with AND).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventFilter {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Event time at or after.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<DateTime<Utc>>,
    /// Event time before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<DateTime<Utc>>,
}

/// Where the files go: `s3://bucket/prefix` or a local folder (`file:///path` or a path).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Destination {
    S3 { bucket: String, prefix: String },
    Folder { path: String },
}

impl Destination {
    /// Parses `s3://bucket[/prefix]`, `file:///abs/path` or a plain path.
    pub fn parse(text: &str) -> Result<Self, ExportError> {
        let bad = |why: &str| ExportError::Invalid {
            field: "destination",
            reason: format!("{why}: `{text}`"),
        };
        if let Some(rest) = text.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(bad(
                    "an S3 destination names its bucket (s3://bucket/prefix)",
                ));
            }
            return Ok(Destination::S3 {
                bucket: bucket.to_owned(),
                prefix: prefix.trim_matches('/').to_owned(),
            });
        }
        let path = text.strip_prefix("file://").unwrap_or(text);
        if path.is_empty() || text.contains("://") && !text.starts_with("file://") {
            return Err(bad(
                "expected s3://bucket/prefix, file:///path or a folder path",
            ));
        }
        Ok(Destination::Folder {
            path: path.to_owned(),
        })
    }
}

/// One export: what, how many per file, where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportSpec {
    /// The feed's folder under the destination (letters, digits, `-`, `_`, `.`).
    pub name: String,
    pub shape: Shape,
    #[serde(default)]
    pub filter: EventFilter,
    #[serde(default = "default_chunk_size")]
    pub chunk_size: u32,
    pub destination: Destination,
    /// Base of the entities' `url` (Reserve with Google shape): `{base}/{plan id}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_base: Option<String>,
}

fn default_chunk_size() -> u32 {
    DEFAULT_CHUNK_SIZE
}

impl ExportSpec {
    /// Refuses a spec that cannot run, naming the field.
    pub fn validate(&self) -> Result<(), ExportError> {
        let invalid = |field: &'static str, reason: &str| {
            Err(ExportError::Invalid {
                field,
                reason: reason.to_owned(),
            })
        };
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 100
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && !self.name.starts_with('.');
        if !name_ok {
            return invalid(
                "name",
                "1 to 100 letters, digits, `-`, `_` or `.`, not starting with `.`",
            );
        }
        if self.chunk_size == 0 || self.chunk_size > MAX_CHUNK_SIZE {
            return invalid("chunk_size", "between 1 and 10000");
        }
        if self.shape != Shape::Events && self.filter != EventFilter::default() {
            return invalid("filter", "filters apply to events exports only");
        }
        if let (Some(from), Some(to)) = (self.filter.from, self.filter.to)
            && from >= to
        {
            return invalid("filter.to", "must be after filter.from");
        }
        if let Destination::S3 { bucket, .. } = &self.destination
            && bucket.is_empty()
        {
            return invalid("destination", "an S3 destination names its bucket");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_parse() {
        assert_eq!(
            Destination::parse("s3://feeds/eye/prod/").ok(),
            Some(Destination::S3 {
                bucket: "feeds".into(),
                prefix: "eye/prod".into()
            })
        );
        assert_eq!(
            Destination::parse("file:///tmp/x").ok(),
            Some(Destination::Folder {
                path: "/tmp/x".into()
            })
        );
        assert!(Destination::parse("s3://").is_err());
        assert!(Destination::parse("http://x").is_err());
    }
}
