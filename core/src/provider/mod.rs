//! The contract between the fetcher and the worker: provider-neutral records, their mapping
//! to queue events (category, names, stable ids, content hash) and, in [`fields`], the
//! storable bounds of a plan that the fetcher's parsers and the worker's `provider_record`
//! validator both check. The fetcher produces these records; the worker judges them and
//! keeps plans in its read model.

pub mod fields;
pub mod item;

use chrono::{DateTime, NaiveDateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::{Envelope, Event, Source};
use fields::{MAX_ID_BYTES, MAX_REASON_BYTES, printable};
pub use item::{ITEM_NAME, ItemRecord, REMOVED_HASH, REMOVED_NAME};

/// Category of every provider event.
pub const CATEGORY: &str = "provider";
/// Event name of a plan (a sellable session of a provider's event).
pub const PLAN_NAME: &str = "plan";
/// Event name of a record the parser refused; the worker dead-letters it with its reason.
pub const REJECTED_NAME: &str = "rejected";

/// Namespace of the provider UUIDv5s (plan ids and event ids).
pub(crate) const NAMESPACE: Uuid = Uuid::from_u128(0x6a1c_3f0e_2b7d_4c55_9e8a_0d4f_5b6c_7e21);

/// One parsed item of a feed.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    Plan(PlanRecord),
    /// A record of a JSON API provider (or its removal).
    Item(ItemRecord),
    Rejected(Rejected),
}

/// A plan: one dated session of a base plan, with its zones. Keyed by (base plan, plan),
/// since plan ids repeat across base plans.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanRecord {
    pub base_plan_id: String,
    pub plan_id: String,
    pub title: String,
    /// `online` or `offline`; only plans ever online are served.
    pub sell_mode: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organizer_company_id: Option<String>,
    /// Local times as the provider gives them (no offset in the feed).
    pub starts_at: NaiveDateTime,
    pub ends_at: NaiveDateTime,
    pub sell_from: NaiveDateTime,
    pub sell_to: NaiveDateTime,
    pub sold_out: bool,
    pub zones: Vec<ZoneRecord>,
}

/// One priced zone of a plan. Prices are exact decimals, serialized as strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoneRecord {
    pub zone_id: String,
    pub capacity: i64,
    pub price: Decimal,
    pub name: String,
    pub numbered: bool,
}

/// A record the parser refused, with why and where. Build it with [`Rejected::new`], which
/// makes the document's values storable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejected {
    pub base_plan_id: Option<String>,
    pub plan_id: Option<String>,
    pub zone_id: Option<String>,
    /// Byte offset in the document.
    pub position: u64,
    pub reason: String,
}

impl PlanRecord {
    /// Reads a plan back from an event's data (extra keys such as prices are ignored).
    pub fn from_data(
        data: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Self, serde_json::Error> {
        Self::deserialize(serde_json::Value::Object(data.clone()))
    }

    pub fn min_price(&self) -> Option<Decimal> {
        self.zones.iter().map(|z| z.price).min()
    }

    pub fn max_price(&self) -> Option<Decimal> {
        self.zones.iter().map(|z| z.price).max()
    }

    /// SHA-256 (hex) of the plan's canonical JSON: what "changed since the last fetch" means.
    pub fn content_hash(&self) -> String {
        let bytes = serde_json::to_vec(self).unwrap_or_default();
        hex(&Sha256::digest(&bytes))
    }

    /// The plan's stable id (UUIDv5 of provider, base plan and plan): the `/search` id.
    pub fn stable_id(&self, provider: &str) -> Uuid {
        plan_uuid(provider, &self.base_plan_id, &self.plan_id)
    }

    /// The plan as a record: itself, or, when a field is out of the storable bounds
    /// ([`PlanRecord::problem`]), a rejected record saying which. Parsers hand every plan
    /// through here, so nothing out of bounds reaches the hash table or the queue.
    pub fn into_record(self, position: u64) -> Record {
        match self.problem() {
            None => Record::Plan(self),
            Some(reason) => Record::Rejected(Rejected::new(
                Some(&self.base_plan_id),
                Some(&self.plan_id),
                None,
                position,
                &reason,
            )),
        }
    }
}

impl Rejected {
    /// A rejection whose ids and reason are made storable whatever the document held:
    /// control characters (NUL) escaped, lengths cut to [`MAX_ID_BYTES`] and
    /// [`MAX_REASON_BYTES`] (see [`printable`]).
    pub fn new(
        base_plan_id: Option<&str>,
        plan_id: Option<&str>,
        zone_id: Option<&str>,
        position: u64,
        reason: &str,
    ) -> Self {
        let id = |v: Option<&str>| v.map(|v| printable(v, MAX_ID_BYTES));
        Self {
            base_plan_id: id(base_plan_id),
            plan_id: id(plan_id),
            zone_id: id(zone_id),
            position,
            reason: printable(reason, MAX_REASON_BYTES),
        }
    }

    /// The key the fetcher's hash table keeps a rejection under, apart from plans' keys.
    pub fn hash_key(&self) -> (String, String) {
        (
            self.base_plan_id.clone().unwrap_or_default(),
            format!(
                "rejected:{}:{}",
                self.plan_id.as_deref().unwrap_or(""),
                self.zone_id.as_deref().unwrap_or("")
            ),
        )
    }

    /// SHA-256 (hex) of the rejection: the same refusal is published once.
    pub fn digest(&self) -> String {
        hex(&Sha256::digest(
            serde_json::to_vec(self).unwrap_or_default(),
        ))
    }
}

/// UUIDv5 of provider + base plan + plan.
pub fn plan_uuid(provider: &str, base_plan_id: &str, plan_id: &str) -> Uuid {
    Uuid::new_v5(
        &NAMESPACE,
        format!("{provider}\u{1f}{base_plan_id}\u{1f}{plan_id}").as_bytes(),
    )
}

/// UUIDv5 of provider + base plan + plan + content hash: republishing the same content gives
/// the same event id, which the idempotent store turns into a no-op.
pub fn event_uuid(provider: &str, base_plan_id: &str, plan_id: &str, hash: &str) -> Uuid {
    Uuid::new_v5(
        &NAMESPACE,
        format!("{provider}\u{1f}{base_plan_id}\u{1f}{plan_id}\u{1f}{hash}").as_bytes(),
    )
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Maps a record to a queue envelope. The application is the provider's name; the session is
/// the plan's stable id, so a plan's versions read as one session.
pub fn to_envelope(provider: &str, record: &Record, fetched_at: DateTime<Utc>) -> Envelope {
    let (id, session_id, name, data) = match record {
        Record::Plan(plan) => {
            let hash = plan.content_hash();
            let mut data = to_map(plan);
            if let Some(p) = plan.min_price() {
                data.insert("min_price".into(), p.to_string().into());
            }
            if let Some(p) = plan.max_price() {
                data.insert("max_price".into(), p.to_string().into());
            }
            data.insert("content_hash".into(), hash.clone().into());
            let id = event_uuid(provider, &plan.base_plan_id, &plan.plan_id, &hash);
            (id, plan.stable_id(provider), PLAN_NAME, data)
        }
        Record::Item(item) => {
            let mut data = to_map(item);
            data.insert("content_hash".into(), item.content_hash().into());
            let name = if item.removed {
                REMOVED_NAME
            } else {
                ITEM_NAME
            };
            (
                item.event_id(provider),
                item.stable_id(provider),
                name,
                data,
            )
        }
        Record::Rejected(rejected) => {
            let data = to_map(rejected);
            let base = rejected.base_plan_id.as_deref().unwrap_or("");
            let plan = rejected.plan_id.as_deref().unwrap_or("");
            let id = event_uuid(provider, base, plan, &rejected.digest());
            (id, plan_uuid(provider, base, plan), REJECTED_NAME, data)
        }
    };
    Envelope {
        app_id: provider.to_owned(),
        source: Source::Provider(provider.to_owned()),
        received_at: fetched_at,
        request_id: None,
        event: Event {
            id,
            session_id,
            category: CATEGORY.into(),
            name: name.into(),
            data,
            timestamp: fetched_at,
        },
    }
}

fn to_map<T: Serialize>(value: &T) -> serde_json::Map<String, serde_json::Value> {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    }
}
