//! Keyset reads of the records an export writes: pages in primary-key order, each starting
//! after the previous page's last key (never OFFSET), limited to what was stored at or before
//! the run's snapshot instant, so a resumed run reads exactly the records the first attempt
//! would have read.

use chrono::{DateTime, Utc};
use eye_core::entity::{event, provider_plan};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, Statement, Value};
use serde_json::{Value as Json, json};

use crate::spec::{ExportSpec, Shape};

/// One page: the records as written to the file, and the key after which the next one starts.
pub struct Page {
    pub records: Vec<Json>,
    /// The primary key of the last record (as text values), None on an empty page.
    pub last_key: Option<Vec<String>>,
}

/// Up to `limit` records after `after` (the key of the previous page's last record).
pub async fn read_page(
    db: &DatabaseConnection,
    spec: &ExportSpec,
    snapshot_at: DateTime<Utc>,
    after: Option<&[String]>,
    limit: u32,
) -> Result<Page, DbErr> {
    match spec.shape {
        Shape::Events => events_page(db, spec, snapshot_at, after, limit).await,
        Shape::Plans | Shape::RwgEntities => plans_page(db, spec, snapshot_at, after, limit).await,
    }
}

/// SQL text and its values, numbered as they are pushed.
struct Sql {
    text: String,
    values: Vec<Value>,
}

impl Sql {
    fn new(text: &str) -> Self {
        Self {
            text: text.to_owned(),
            values: Vec::new(),
        }
    }

    /// Appends `clause` with `?` replaced by the next placeholder, bound to `value`.
    fn and(&mut self, clause: &str, value: impl Into<Value>) {
        self.values.push(value.into());
        let n = self.values.len();
        self.text
            .push_str(&format!(" AND {}", clause.replace('?', &format!("${n}"))));
    }

    fn statement(self) -> Statement {
        Statement::from_sql_and_values(sea_orm::DbBackend::Postgres, self.text, self.values)
    }
}

/// The filters of an events export and its snapshot bound.
fn event_conditions(sql: &mut Sql, spec: &ExportSpec, snapshot_at: DateTime<Utc>) {
    sql.and("stored_at <= ?", snapshot_at);
    let f = &spec.filter;
    if let Some(app) = &f.application {
        sql.and("app_id = ?", app.clone());
    }
    if let Some(category) = &f.category {
        sql.and("category = ?", category.clone());
    }
    if let Some(name) = &f.name {
        sql.and("name = ?", name.clone());
    }
    if let Some(from) = f.from {
        sql.and("\"timestamp\" >= ?", from);
    }
    if let Some(to) = f.to {
        sql.and("\"timestamp\" < ?", to);
    }
}

/// How many records the export of `spec` at `snapshot_at` writes (for a progress bar).
pub async fn count(
    db: &DatabaseConnection,
    spec: &ExportSpec,
    snapshot_at: DateTime<Utc>,
) -> Result<u64, DbErr> {
    let sql = match spec.shape {
        Shape::Events => {
            let mut sql = Sql::new("SELECT count(*) AS n FROM events WHERE true");
            event_conditions(&mut sql, spec, snapshot_at);
            sql
        }
        Shape::Plans | Shape::RwgEntities => {
            let mut sql = Sql::new("SELECT count(*) AS n FROM provider_plans WHERE ever_online");
            sql.and("first_seen <= ?", snapshot_at);
            sql
        }
    };
    let row = db.query_one_raw(sql.statement()).await?;
    let n: i64 = match row {
        Some(row) => row.try_get("", "n")?,
        None => 0,
    };
    Ok(u64::try_from(n).unwrap_or(0))
}

async fn events_page(
    db: &DatabaseConnection,
    spec: &ExportSpec,
    snapshot_at: DateTime<Utc>,
    after: Option<&[String]>,
    limit: u32,
) -> Result<Page, DbErr> {
    let mut sql = Sql::new("SELECT * FROM events WHERE true");
    event_conditions(&mut sql, spec, snapshot_at);
    if let Some([app, id]) = after {
        let id =
            uuid::Uuid::parse_str(id).map_err(|e| DbErr::Custom(format!("resume key: {e}")))?;
        sql.values.push(app.clone().into());
        sql.and(&format!("(app_id, id) > (${}, ?)", sql.values.len()), id);
    }
    sql.text
        .push_str(&format!(" ORDER BY app_id, id LIMIT {limit}"));
    let rows = event::Entity::find()
        .from_raw_sql(sql.statement())
        .all(db)
        .await?;
    let last_key = rows
        .last()
        .map(|r| vec![r.app_id.clone(), r.id.to_string()]);
    let records = rows
        .into_iter()
        .map(|e| {
            json!({
                "app_id": e.app_id,
                "id": e.id,
                "session_id": e.session_id,
                "category": e.category,
                "name": e.name,
                "timestamp": e.timestamp,
                "source": e.source,
                "received_at": e.received_at,
                "data": e.data,
            })
        })
        .collect();
    Ok(Page { records, last_key })
}

async fn plans_page(
    db: &DatabaseConnection,
    spec: &ExportSpec,
    snapshot_at: DateTime<Utc>,
    after: Option<&[String]>,
    limit: u32,
) -> Result<Page, DbErr> {
    let mut sql = Sql::new("SELECT * FROM provider_plans WHERE ever_online");
    sql.and("first_seen <= ?", snapshot_at);
    if let Some([provider, base, plan]) = after {
        sql.values.push(provider.clone().into());
        sql.values.push(base.clone().into());
        let n = sql.values.len();
        sql.and(
            &format!("(provider, base_plan_id, plan_id) > (${}, ${n}, ?)", n - 1),
            plan.clone(),
        );
    }
    sql.text.push_str(&format!(
        " ORDER BY provider, base_plan_id, plan_id LIMIT {limit}"
    ));
    let rows = provider_plan::Entity::find()
        .from_raw_sql(sql.statement())
        .all(db)
        .await?;
    let last_key = rows.last().map(|r| {
        vec![
            r.provider.clone(),
            r.base_plan_id.clone(),
            r.plan_id.clone(),
        ]
    });
    let rwg = spec.shape == Shape::RwgEntities;
    let records = rows
        .into_iter()
        .map(|p| {
            if rwg {
                entity(&p, spec.url_base.as_deref())
            } else {
                plan(p)
            }
        })
        .collect();
    Ok(Page { records, last_key })
}

/// A plan as `/search` shows it, with its key and stored document.
fn plan(p: provider_plan::Model) -> Json {
    json!({
        "id": p.id,
        "provider": p.provider,
        "base_plan_id": p.base_plan_id,
        "plan_id": p.plan_id,
        "title": p.title,
        "starts_at": p.starts_at,
        "ends_at": p.ends_at,
        "min_price": p.min_price,
        "max_price": p.max_price,
        "sell_mode": p.sell_mode,
        "data": p.data,
    })
}

/// A plan as a Reserve with Google entity: what the provider feed gives (no address: the
/// location carries the provider and organizer; no phone, no geo).
fn entity(p: &provider_plan::Model, url_base: Option<&str>) -> Json {
    let url = url_base.map(|base| format!("{}/{}", base.trim_end_matches('/'), p.id));
    json!({
        "entity_id": p.id,
        "name": p.title,
        "url": url,
        "location": {
            "provider": p.provider,
            "organizer_company_id": p.data.get("organizer_company_id"),
        },
        "start_time": p.starts_at,
        "end_time": p.ends_at,
        "price_range": { "min_price": p.min_price, "max_price": p.max_price },
        "sell_mode": p.sell_mode,
    })
}
