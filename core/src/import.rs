//! Bulk imports (issue 14): what an import asks for (format, CSV column mapping, deduplication
//! rule), and how one staged row becomes an event. Shared by the api (which checks the spec
//! and stages the file) and the worker (which maps, judges and stores the rows), so both read
//! a row the same way.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::event::{Event, EventIn};

pub const STATE_QUEUED: &str = "queued";
pub const STATE_RUNNING: &str = "running";
pub const STATE_DONE: &str = "done";
pub const STATE_FAILED: &str = "failed";
pub const STATE_CANCELLED: &str = "cancelled";

/// The namespace of the UUIDv5 ids derived from an application and a natural key: the same
/// row of the same file gets the same id in every import, so a second import adds nothing.
pub const ID_NAMESPACE: Uuid = Uuid::from_u128(0x6f1c_2d3e_8a4b_5c6d_9e0f_a1b2_c3d4_e5f6);

/// The file's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// A header line, then one record per row (RFC 4180 quoting).
    Csv,
    /// One event object per line (the `POST /events` shape; `id` optional).
    Ndjson,
}

/// Which row of a set of duplicates is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Keep {
    /// The first row read wins; later ones are counted as duplicates.
    #[default]
    First,
    /// The last row read wins: it replaces what an earlier one stored.
    Last,
}

/// Which CSV column holds each event field. A field left out is read from the column of its
/// own name (`id` only when such a column exists).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mapping {
    pub id: Option<String>,
    pub session_id: Option<String>,
    pub category: Option<String>,
    pub name: Option<String>,
    pub timestamp: Option<String>,
    /// A column holding the `data` object as JSON; without it, every unmapped column becomes
    /// a string member of `data`.
    pub data: Option<String>,
}

/// How rows without an `id` are told apart.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dedup {
    /// The natural key: CSV columns, or NDJSON fields (top level, else a member of `data`).
    /// Empty: the whole event (session, category, name, timestamp, data) is the key.
    pub key: Vec<String>,
    /// Compare the key's values ignoring case (`SKU-1` and `sku-1` are one row).
    pub case_insensitive: bool,
    pub keep: Keep,
}

/// What an import asks for; stored on the import's row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportSpec {
    pub format: Format,
    /// The CSV header, as read from the file.
    #[serde(default)]
    pub columns: Vec<String>,
    #[serde(default)]
    pub mapping: Mapping,
    #[serde(default)]
    pub dedup: Dedup,
}

/// A spec that cannot be applied to the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct SpecError {
    pub field: String,
    pub message: String,
}

/// Why a row was refused: the column (CSV) or field (NDJSON) to blame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{column}: {message}")]
pub struct RowError {
    pub column: String,
    pub message: String,
}

impl RowError {
    fn new(column: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            column: column.into(),
            message: message.into(),
        }
    }
}

/// The column indexes a CSV spec resolves to, computed once per import.
#[derive(Debug, Clone)]
pub struct Layout {
    spec: ImportSpec,
    id: Option<usize>,
    session_id: usize,
    category: usize,
    name: usize,
    timestamp: usize,
    data: Option<usize>,
    key: Vec<usize>,
}

impl ImportSpec {
    /// Checks the spec against the file's header (CSV) and resolves the columns.
    pub fn layout(&self) -> Result<Layout, SpecError> {
        let find = |field: &str, column: &str| {
            self.columns
                .iter()
                .position(|c| c == column)
                .ok_or_else(|| SpecError {
                    field: field.into(),
                    message: format!("no column {column:?} in the file's header"),
                })
        };
        let csv = self.format == Format::Csv;
        let required = |field: &str, mapped: &Option<String>| {
            if csv {
                find(field, mapped.as_deref().unwrap_or(field))
            } else {
                Ok(0)
            }
        };
        let m = &self.mapping;
        let id = match (&m.id, csv) {
            (Some(col), true) => Some(find("id", col)?),
            (None, true) => self.columns.iter().position(|c| c == "id"),
            _ => None,
        };
        let data = match (&m.data, csv) {
            (Some(col), true) => Some(find("data", col)?),
            _ => None,
        };
        let key = if csv {
            self.dedup
                .key
                .iter()
                .map(|k| find("dedup_key", k))
                .collect::<Result<_, _>>()?
        } else {
            Vec::new()
        };
        Ok(Layout {
            id,
            session_id: required("session_id", &m.session_id)?,
            category: required("category", &m.category)?,
            name: required("name", &m.name)?,
            timestamp: required("timestamp", &m.timestamp)?,
            data,
            key,
            spec: self.clone(),
        })
    }
}

impl Layout {
    pub fn spec(&self) -> &ImportSpec {
        &self.spec
    }

    /// One staged row (CSV: a JSON array of its fields; NDJSON: the line) as an event whose
    /// id is the row's `id`, or else derived from the application and the natural key.
    pub fn event(&self, app_id: &str, line: &str) -> Result<Event, RowError> {
        match self.spec.format {
            Format::Csv => self.csv_event(app_id, line),
            Format::Ndjson => self.ndjson_event(app_id, line),
        }
    }

    fn column(&self, i: usize) -> &str {
        self.spec.columns.get(i).map_or("", String::as_str)
    }

    fn csv_event(&self, app_id: &str, line: &str) -> Result<Event, RowError> {
        let fields: Vec<String> = serde_json::from_str(line)
            .map_err(|e| RowError::new("", format!("unreadable record: {e}")))?;
        if fields.len() != self.spec.columns.len() {
            return Err(RowError::new(
                "",
                format!(
                    "{} fields where the header has {}",
                    fields.len(),
                    self.spec.columns.len()
                ),
            ));
        }
        let get = |i: usize| fields[i].as_str();
        let session_id = get(self.session_id)
            .trim()
            .parse::<Uuid>()
            .map_err(|e| RowError::new(self.column(self.session_id), format!("not a UUID: {e}")))?;
        let id = match self.id.map(get).map(str::trim).filter(|s| !s.is_empty()) {
            None => None,
            Some(text) => Some(text.parse::<Uuid>().map_err(|e| {
                RowError::new(
                    self.column(self.id.unwrap_or(0)),
                    format!("not a UUID: {e}"),
                )
            })?),
        };
        let data = match self.data {
            Some(i) => match serde_json::from_str::<Value>(get(i)) {
                Ok(Value::Object(map)) => map,
                Ok(_) => return Err(RowError::new(self.column(i), "not a JSON object")),
                Err(e) => return Err(RowError::new(self.column(i), format!("not JSON: {e}"))),
            },
            None => {
                let mapped = [
                    self.id,
                    Some(self.session_id),
                    Some(self.category),
                    Some(self.name),
                    Some(self.timestamp),
                ];
                let mut data = Map::new();
                for (i, value) in fields.iter().enumerate() {
                    if !mapped.contains(&Some(i)) {
                        data.insert(self.spec.columns[i].clone(), Value::String(value.clone()));
                    }
                }
                data
            }
        };
        let key: Vec<&str> = self.key.iter().map(|&i| get(i)).collect();
        let wire = EventIn {
            id,
            session_id,
            category: get(self.category).to_owned(),
            name: get(self.name).to_owned(),
            data,
            timestamp: get(self.timestamp).to_owned(),
        };
        self.finish(app_id, wire, &key)
    }

    fn ndjson_event(&self, app_id: &str, line: &str) -> Result<Event, RowError> {
        let value: Value =
            serde_json::from_str(line).map_err(|e| RowError::new("", format!("not JSON: {e}")))?;
        let mut key = Vec::with_capacity(self.spec.dedup.key.len());
        for k in &self.spec.dedup.key {
            let found = value
                .get(k)
                .or_else(|| value.get("data").and_then(|d| d.get(k)));
            key.push(match found {
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
                None => return Err(RowError::new(k, "the deduplication key is missing")),
            });
        }
        let wire: EventIn = serde_json::from_value(value)
            .map_err(|e| RowError::new("", format!("not an event: {e}")))?;
        let key: Vec<&str> = key.iter().map(String::as_str).collect();
        self.finish(app_id, wire, &key)
    }

    fn finish(&self, app_id: &str, mut wire: EventIn, key: &[&str]) -> Result<Event, RowError> {
        if wire.id.is_none() {
            wire.id = Some(if key.is_empty() {
                // No natural key named: the whole event is the key.
                let data = Value::Object(wire.data.clone()).to_string();
                let whole = [
                    wire.session_id.to_string(),
                    wire.category.clone(),
                    wire.name.clone(),
                    wire.timestamp.clone(),
                    data,
                ];
                let parts: Vec<&str> = whole.iter().map(String::as_str).collect();
                derive_id(app_id, &parts, self.spec.dedup.case_insensitive)
            } else {
                derive_id(app_id, key, self.spec.dedup.case_insensitive)
            });
        }
        wire.into_event().map_err(|e| {
            let column = if self.spec.format == Format::Csv {
                self.column_of(&e.field)
            } else {
                e.pointer.clone()
            };
            RowError::new(column, e.message)
        })
    }

    /// The CSV column an event field was read from.
    fn column_of(&self, field: &str) -> String {
        let i = match field {
            "session_id" => Some(self.session_id),
            "category" => Some(self.category),
            "name" => Some(self.name),
            "timestamp" => Some(self.timestamp),
            "id" => self.id,
            "data" => self.data,
            _ => None,
        };
        i.map_or_else(|| field.to_owned(), |i| self.column(i).to_owned())
    }
}

/// The id of the row whose natural key is `parts` in `app_id`'s import: UUIDv5, so it is the
/// same in every import of the file.
pub fn derive_id(app_id: &str, parts: &[&str], case_insensitive: bool) -> Uuid {
    let mut name = String::with_capacity(64);
    name.push_str(app_id);
    for part in parts {
        name.push('\u{1f}');
        if case_insensitive {
            name.push_str(&part.to_lowercase());
        } else {
            name.push_str(part);
        }
    }
    Uuid::new_v5(&ID_NAMESPACE, name.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(key: &[&str], ci: bool) -> ImportSpec {
        ImportSpec {
            format: Format::Csv,
            columns: ["sid", "category", "name", "ts", "sku", "price"]
                .map(String::from)
                .to_vec(),
            mapping: Mapping {
                session_id: Some("sid".into()),
                timestamp: Some("ts".into()),
                ..Mapping::default()
            },
            dedup: Dedup {
                key: key.iter().map(|k| (*k).to_owned()).collect(),
                case_insensitive: ci,
                keep: Keep::First,
            },
        }
    }

    const SID: &str = "e2085be5-9137-4e4e-80b5-f1ffddc25423";

    fn row(sku: &str, ts: &str) -> String {
        serde_json::json!([SID, "shop", "sku", ts, sku, "9.99"]).to_string()
    }

    #[test]
    fn unmapped_columns_go_into_data_and_the_key_ignores_case_when_asked() {
        let layout = spec(&["sku"], true).layout().expect("layout");
        let a = layout
            .event("app", &row("SKU-1", "2024-01-01 00:00:00"))
            .expect("a");
        let b = layout
            .event("app", &row("sku-1", "2024-02-01 00:00:00"))
            .expect("b");
        assert_eq!(a.id, b.id);
        assert_eq!(a.data["sku"], "SKU-1");
        assert_eq!(a.data["price"], "9.99");
        assert_eq!(a.data.len(), 2);
        let strict = spec(&["sku"], false).layout().expect("layout");
        let c = strict
            .event("app", &row("SKU-1", "2024-01-01 00:00:00"))
            .expect("c");
        let d = strict
            .event("app", &row("sku-1", "2024-01-01 00:00:00"))
            .expect("d");
        assert_ne!(c.id, d.id);
        assert_ne!(
            layout
                .event("other", &row("SKU-1", "2024-01-01 00:00:00"))
                .expect("e")
                .id,
            a.id
        );
    }

    #[test]
    fn a_bad_field_names_its_column() {
        let layout = spec(&[], false).layout().expect("layout");
        let err = layout
            .event("app", &row("x", "yesterday"))
            .expect_err("bad ts");
        assert_eq!(err.column, "ts");
        let short = serde_json::json!([SID, "shop"]).to_string();
        assert!(layout.event("app", &short).is_err());
    }

    #[test]
    fn a_missing_mapped_column_is_a_spec_error() {
        let mut s = spec(&["nope"], false);
        assert_eq!(s.layout().expect_err("key").field, "dedup_key");
        s.dedup.key.clear();
        s.mapping.timestamp = Some("when".into());
        assert_eq!(s.layout().expect_err("ts").field, "timestamp");
    }
}
