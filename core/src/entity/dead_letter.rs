//! A refused event, an undecodable message or a poisoned one (table `dead_letters`), one row
//! per event.

// The entity derives expand to code that names the prelude's items unqualified: the one
// place a sea-orm glob import is needed.
use sea_orm::entity::prelude::*;

/// `kind` of a dead letter whose event failed validation.
pub const KIND_INVALID: &str = "invalid";
/// `kind` of a stored event that broke a rule in `warn` mode.
pub const KIND_WARNING: &str = "warning";
/// `kind` of a dead letter whose message could not be decoded into an envelope.
pub const KIND_UNDECODABLE: &str = "undecodable";
/// `kind` of an event whose message the broker moved to the poison queue after too many
/// deliveries without an ack (workers killed mid-batch): never judged, held for replay.
pub const KIND_POISONED: &str = "poisoned";
/// Every `kind`, as the table's check constraint allows them.
pub const KINDS: &[&str] = &[KIND_INVALID, KIND_WARNING, KIND_UNDECODABLE, KIND_POISONED];
/// `validator` of a poisoned row: what replay and `/errors?validator=` select them by.
pub const DELIVERY_LIMIT_RULE: &str = "delivery_limit";

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "dead_letters")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub kind: String,
    pub app_id: Option<String>,
    pub event_id: Option<Uuid>,
    pub source: Option<String>,
    pub category: Option<String>,
    pub name: Option<String>,
    pub validator: Option<String>,
    pub field: Option<String>,
    pub message: String,
    #[sea_orm(column_type = "JsonBinary")]
    pub reasons: Json,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub payload: Option<Json>,
    pub raw: Option<Vec<u8>>,
    pub attempts: i32,
    pub first_seen: DateTimeUtc,
    pub last_seen: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
