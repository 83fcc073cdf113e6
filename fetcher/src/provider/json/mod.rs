//! A JSON REST API shaped after JSONPlaceholder (`/posts`, `/comments`, `/users`): each
//! configured resource is a JSON array of records with an `id`, read at `<url>/<resource>`,
//! plain or a page at a time (`?_page=N&_limit=M`, json-server's convention, until a page
//! comes back short). A record may belong to another (a comment's `postId`): its parent key,
//! per resource, is configurable, with JSONPlaceholder's as defaults.
//!
//! The array is read element by element straight from the body (serde_json's streaming
//! deserializer over the capped reader): each record is handed to the sink as soon as it is
//! complete, so memory holds one record, not the page. An element that is no object, has no
//! usable `id`, or is out of the storable bounds becomes a [`Rejected`] record (resource,
//! id, position: its index on the page); a document that is not a JSON array, or breaks off,
//! ends the page with an error carrying its byte position.

#[cfg(test)]
mod tests;

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fmt;
use std::io::{BufRead, Read};

use serde::de::{DeserializeSeed, SeqAccess, Visitor};
use serde_json::Value;

use super::capped::Capped;
use super::{FeedError, Limits, Listing, ParseSummary, Provider, Record, Rejected};
use eye_core::provider::ItemRecord;
use eye_core::provider::item::id_text;

/// JSONPlaceholder's resources, read when none are configured.
pub const DEFAULT_RESOURCES: [&str; 3] = ["posts", "comments", "users"];

/// JSONPlaceholder's parent keys: the record each resource's records belong to.
pub fn default_parents() -> BTreeMap<String, String> {
    [
        ("comments", "postId"),
        ("posts", "userId"),
        ("albums", "userId"),
        ("todos", "userId"),
        ("photos", "albumId"),
    ]
    .into_iter()
    .map(|(r, k)| (r.to_owned(), k.to_owned()))
    .collect()
}

/// The JSON API provider, with its resources.
#[derive(Debug, Clone)]
pub struct JsonApi {
    pub resources: Vec<String>,
    /// Records per page; 0 reads each resource whole, in one request.
    pub page_size: usize,
    /// Resource -> the key of its records naming their parent.
    pub parents: BTreeMap<String, String>,
}

impl Default for JsonApi {
    fn default() -> Self {
        Self {
            resources: DEFAULT_RESOURCES.map(str::to_owned).to_vec(),
            page_size: 0,
            parents: default_parents(),
        }
    }
}

impl Provider for JsonApi {
    fn name(&self) -> &str {
        "json"
    }

    fn listings(&self, url: &str) -> Vec<Listing> {
        let base = url.trim_end_matches('/');
        self.resources
            .iter()
            .map(|resource| Listing {
                resource: Some(resource.clone()),
                url: format!("{base}/{resource}"),
                page_size: self.page_size,
            })
            .collect()
    }

    fn parse(
        &self,
        body: &mut dyn BufRead,
        limits: Limits,
        sink: &mut dyn FnMut(Record),
    ) -> Result<ParseSummary, FeedError> {
        let resource = self.resources.first().map_or("records", String::as_str);
        self.parse_resource(resource, body, limits, sink)
    }

    fn parse_page(
        &self,
        listing: &Listing,
        body: &mut dyn BufRead,
        limits: Limits,
        sink: &mut dyn FnMut(Record),
    ) -> Result<ParseSummary, FeedError> {
        let resource = listing.resource.as_deref().unwrap_or("records");
        self.parse_resource(resource, body, limits, sink)
    }
}

impl JsonApi {
    /// Reads one page of `resource`.
    pub fn parse_resource(
        &self,
        resource: &str,
        body: &mut dyn BufRead,
        limits: Limits,
        sink: &mut dyn FnMut(Record),
    ) -> Result<ParseSummary, FeedError> {
        let read = Cell::new(0u64);
        let mut capped = Capped::new(body, limits.max_bytes);
        let counting = Counting {
            inner: &mut capped,
            read: &read,
        };
        let mut de = serde_json::Deserializer::from_reader(counting);
        let mut summary = ParseSummary::default();
        let items = Items {
            resource,
            parent_key: self.parents.get(resource).map(String::as_str),
            sink,
            summary: &mut summary,
        };
        let outcome = items.deserialize(&mut de).and_then(|()| de.end());
        match outcome {
            Ok(()) => Ok(summary),
            Err(_) if capped.exceeded() => Err(FeedError::TooLarge {
                limit: limits.max_bytes,
            }),
            Err(e) if e.is_io() => Err(FeedError::Read(e.to_string())),
            Err(e) => Err(FeedError::Malformed {
                position: read.get(),
                message: e.to_string(),
            }),
        }
    }
}

/// A reader that counts the bytes taken from it (serde_json reads a byte at a time through
/// its own iterator, so the count is the position of the parse).
struct Counting<'a, R> {
    inner: R,
    read: &'a Cell<u64>,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(out)?;
        self.read.set(self.read.get() + n as u64);
        Ok(n)
    }
}

/// The top-level array, each element handed to the sink as it is read.
struct Items<'s, 'k> {
    resource: &'k str,
    parent_key: Option<&'k str>,
    sink: &'s mut dyn FnMut(Record),
    summary: &'s mut ParseSummary,
}

impl<'de> DeserializeSeed<'de> for Items<'_, '_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, de: D) -> Result<(), D::Error> {
        de.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Items<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON array of records")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0u64;
        while let Some(value) = seq.next_element::<Value>()? {
            let record = self.record(value, index);
            match &record {
                Record::Rejected(_) => self.summary.rejected += 1,
                _ => self.summary.plans += 1,
            }
            (self.sink)(record);
            index += 1;
        }
        Ok(())
    }
}

impl Items<'_, '_> {
    /// One element: a record, or why it is not one.
    fn record(&self, value: Value, index: u64) -> Record {
        let reject = |id: Option<&str>, reason: &str| {
            Record::Rejected(Rejected::new(
                Some(self.resource),
                id,
                None,
                index,
                &format!("{} #{index}: {reason}", self.resource),
            ))
        };
        let Value::Object(fields) = &value else {
            return reject(None, "not a JSON object");
        };
        let Some(id) = fields.get("id").and_then(id_text) else {
            return reject(None, "no `id` (a string or an integer)");
        };
        let parent = self
            .parent_key
            .and_then(|key| fields.get(key))
            .and_then(id_text);
        let item = ItemRecord::version(self.resource, id, parent, value);
        match item.problem() {
            None => Record::Item(item),
            Some(problem) => reject(Some(&item.remote_id), &problem),
        }
    }
}
