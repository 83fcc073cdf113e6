//! The JSON provider records' read model (`json_records`, what `GET /providers/.../records`
//! serves), a [`Projection`] of stored `record` and `record_removed` events written in the
//! same transaction as them: the latest version of each (provider, resource, remote id),
//! marked removed (its last content kept) when the remote no longer has it.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use eye_core::entity::json_record;
use eye_core::provider::{CATEGORY, ITEM_NAME, ItemRecord, REMOVED_NAME};
use eye_core::{Envelope, Source};
use futures::future::BoxFuture;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ActiveValue, ConnectionTrait, DatabaseTransaction, DbErr, EntityTrait};

use super::{Projection, chunks, rows_per_statement};

/// Records, by (provider, resource, remote id).
#[derive(Debug)]
pub struct JsonRecordProjection;

impl Projection for JsonRecordProjection {
    fn follows(&self, envelope: &Envelope) -> bool {
        matches!(envelope.source, Source::Provider(_))
            && envelope.event.category == CATEGORY
            && (envelope.event.name == ITEM_NAME || envelope.event.name == REMOVED_NAME)
    }

    fn write<'a>(
        &'a self,
        txn: &'a DatabaseTransaction,
        stored: Vec<&'a Envelope>,
    ) -> BoxFuture<'a, Result<(), DbErr>> {
        Box::pin(async move {
            let rows = latest(stored.into_iter().filter_map(record_row).collect());
            for chunk in chunks(rows, rows_per_statement::<json_record::Column>()) {
                upsert(txn, chunk).await?;
            }
            Ok(())
        })
    }
}

type Key = (String, String, String);

/// The read-model row of a record event, with its key and fetch time.
fn record_row(envelope: &Envelope) -> Option<(Key, DateTime<Utc>, json_record::ActiveModel)> {
    let Source::Provider(provider) = &envelope.source else {
        return None;
    };
    let item = ItemRecord::from_data(&envelope.event.data).ok()?;
    let at = envelope.received_at;
    let key = (
        provider.clone(),
        item.resource.clone(),
        item.remote_id.clone(),
    );
    let row = json_record::ActiveModel {
        provider: ActiveValue::Set(provider.clone()),
        resource: ActiveValue::Set(item.resource.clone()),
        remote_id: ActiveValue::Set(item.remote_id.clone()),
        id: ActiveValue::Set(item.stable_id(provider)),
        parent_id: ActiveValue::Set(item.parent_id.clone()),
        content_hash: ActiveValue::Set(item.content_hash()),
        // A removal carries no content: an empty object for a row the removal creates.
        data: ActiveValue::Set(if item.removed {
            serde_json::Value::Object(serde_json::Map::new())
        } else {
            item.record.clone()
        }),
        removed: ActiveValue::Set(item.removed),
        removed_at: ActiveValue::Set(item.removed.then_some(at)),
        versions: ActiveValue::Set(1),
        first_seen: ActiveValue::Set(at),
        updated_at: ActiveValue::Set(at),
    };
    Some((key, at, row))
}

/// PostgreSQL refuses an upsert touching one row twice: each record's latest event.
fn latest(
    rows: Vec<(Key, DateTime<Utc>, json_record::ActiveModel)>,
) -> Vec<json_record::ActiveModel> {
    let mut latest: HashMap<Key, (DateTime<Utc>, json_record::ActiveModel)> = HashMap::new();
    for (key, at, row) in rows {
        if latest.get(&key).is_none_or(|(old, _)| *old <= at) {
            latest.insert(key, (at, row));
        }
    }
    latest.into_values().map(|(_, row)| row).collect()
}

/// Upserts records: the latest by fetch time wins (a late older event changes nothing); a
/// removal keeps the last content; `versions` counts each new content, removal and return
/// (a redelivery adds none); `first_seen` stays.
async fn upsert<C: ConnectionTrait>(
    db: &C,
    rows: Vec<json_record::ActiveModel>,
) -> Result<(), DbErr> {
    if rows.is_empty() {
        return Ok(());
    }
    use json_record::Column as J;
    let kept = |column: &str| {
        Expr::cust(format!(
            "CASE WHEN excluded.removed THEN json_records.{column} ELSE excluded.{column} END"
        ))
    };
    let on_conflict = OnConflict::columns([J::Provider, J::Resource, J::RemoteId])
        .update_columns([J::Removed, J::UpdatedAt])
        .value(J::Data, kept("data"))
        .value(J::ParentId, kept("parent_id"))
        .value(J::ContentHash, kept("content_hash"))
        .value(
            J::RemovedAt,
            Expr::cust(
                "CASE WHEN NOT excluded.removed THEN NULL \
                 WHEN json_records.removed THEN json_records.removed_at \
                 ELSE excluded.removed_at END",
            ),
        )
        .value(
            J::Versions,
            Expr::cust(
                "json_records.versions + CASE \
                 WHEN excluded.removed THEN (NOT json_records.removed)::int \
                 WHEN json_records.removed OR json_records.content_hash <> excluded.content_hash \
                 THEN 1 ELSE 0 END",
            ),
        )
        .action_and_where(Expr::cust("json_records.updated_at <= excluded.updated_at"))
        .to_owned();
    json_record::Entity::insert_many(rows)
        .on_conflict(on_conflict)
        .exec_without_returning(db)
        .await?;
    Ok(())
}
