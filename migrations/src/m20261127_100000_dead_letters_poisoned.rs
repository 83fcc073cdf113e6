//! Dead letters may also hold a poisoned event: its message went past the broker's delivery
//! limit (workers killed mid-batch again and again) and was moved to the poison queue, where a
//! worker records it for an operator to see and replay.

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
                 CHECK (kind IN ('invalid', 'undecodable', 'warning', 'poisoned'))",
            )
            .await
            .map(|_| ())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "DELETE FROM dead_letters WHERE kind = 'poisoned'; \
                 ALTER TABLE dead_letters DROP CONSTRAINT dead_letters_kind_check; \
                 ALTER TABLE dead_letters ADD CONSTRAINT dead_letters_kind_check \
                 CHECK (kind IN ('invalid', 'undecodable', 'warning'))",
            )
            .await
            .map(|_| ())
    }
}
