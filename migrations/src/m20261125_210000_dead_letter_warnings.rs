//! Dead letters may also record a warning: an event stored despite a rule in `warn` mode.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "ALTER TABLE dead_letters DROP CONSTRAINT dead_letters_kind_check; \
                 ALTER TABLE dead_letters ADD CONSTRAINT dead_letters_kind_check \
                 CHECK (kind IN ('invalid', 'undecodable', 'warning'))",
            )
            .await
            .map(|_| ())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "ALTER TABLE dead_letters DROP CONSTRAINT dead_letters_kind_check; \
                 ALTER TABLE dead_letters ADD CONSTRAINT dead_letters_kind_check \
                 CHECK (kind IN ('invalid', 'undecodable'))",
            )
            .await
            .map(|_| ())
    }
}
