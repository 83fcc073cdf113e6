//! The Eye's schema, versioned with sea-orm-migration. One file per change; a migration that
//! has landed is history and is never edited.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, Database, DbErr, Statement};

mod m20261125_000001_events;
mod m20261125_000002_dead_letters;
mod m20261125_000003_provider_plans;
mod m20261125_000004_applications;
mod m20261125_200000_dead_letters_by_app_time;
mod m20261125_210000_dead_letter_warnings;
mod m20261126_000001_search_covering_index;
mod m20261127_100000_dead_letters_poisoned;
mod m20261203_160000_console;
mod m20261203_170000_exports;
mod m20261203_190000_erasures;
mod m20261203_210000_imports;
mod m20261203_220000_webhooks;
mod m20261203_230000_json_records;
mod m20261203_233000_partitioned_events;
mod m20261203_235000_erasure_console;
mod m20261204_050000_webhook_deliveries_seq;
mod m20261204_060000_webhook_leases;

/// Applies the migrations in order.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261125_000001_events::Migration),
            Box::new(m20261125_000002_dead_letters::Migration),
            Box::new(m20261125_000003_provider_plans::Migration),
            Box::new(m20261125_000004_applications::Migration),
            Box::new(m20261125_200000_dead_letters_by_app_time::Migration),
            Box::new(m20261125_210000_dead_letter_warnings::Migration),
            Box::new(m20261126_000001_search_covering_index::Migration),
            Box::new(m20261127_100000_dead_letters_poisoned::Migration),
            Box::new(m20261203_160000_console::Migration),
            Box::new(m20261203_170000_exports::Migration),
            Box::new(m20261203_190000_erasures::Migration),
            Box::new(m20261203_210000_imports::Migration),
            Box::new(m20261203_220000_webhooks::Migration),
            Box::new(m20261203_230000_json_records::Migration),
            Box::new(m20261203_233000_partitioned_events::Migration),
            Box::new(m20261203_235000_erasure_console::Migration),
            Box::new(m20261204_050000_webhook_deliveries_seq::Migration),
            Box::new(m20261204_060000_webhook_leases::Migration),
        ]
    }
}

/// Creates the database named in `database_url` when it does not exist yet (connecting to
/// the server's `postgres` database to do so), so a fresh machine needs no manual step.
pub async fn ensure_database(database_url: &str) -> Result<(), DbErr> {
    let mut admin_url =
        url::Url::parse(database_url).map_err(|e| DbErr::Custom(format!("DATABASE_URL: {e}")))?;
    let name = admin_url.path().trim_start_matches('/').to_owned();
    if name.is_empty() {
        return Err(DbErr::Custom("DATABASE_URL names no database".into()));
    }
    admin_url.set_path("/postgres");
    let admin = Database::connect(admin_url.as_str()).await?;
    let backend = admin.get_database_backend();
    let exists = admin
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            "SELECT 1 FROM pg_database WHERE datname = $1",
            [name.clone().into()],
        ))
        .await?
        .is_some();
    if !exists {
        let quoted = name.replace('"', "\"\"");
        admin
            .execute_unprepared(&format!("CREATE DATABASE \"{quoted}\""))
            .await?;
    }
    admin.close().await
}

/// Creates the database if needed and applies every pending migration.
pub async fn prepare(database_url: &str) -> Result<(), DbErr> {
    ensure_database(database_url).await?;
    let db = Database::connect(database_url).await?;
    Migrator::up(&db, None).await?;
    db.close().await
}
