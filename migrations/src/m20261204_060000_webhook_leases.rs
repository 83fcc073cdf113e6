//! A claim's lease in a column of its own, outside every index. Before, a claim moved
//! `next_attempt_at` (indexed by `webhook_deliveries_due_idx`) to the lease's end, so each
//! claim wrote a new index entry and a dead row version that only a vacuum removes; the due
//! scans then walked more dead entries every second (`make bench-webhooks` over 60 s: p99 of
//! stored-to-first-attempt growing from 0.3 s to 4 s, 117,000 dead versions beside 60,000
//! live). Now a claim sets `leased_until` only, a heap-only (HOT) update that needs room on
//! its page: hence the fill factor. The table is a work queue (each delivery is updated twice
//! within a second), so it is vacuumed on a count of dead rows, not a fraction of the table,
//! and without the cost-based pauses (the dispatcher also vacuums it past a count of dead
//! rows, where autovacuum is off or slower than the churn: `EYE_WEBHOOK_VACUUM_DEAD_ROWS`).
//!
//! The due index gains `seq`, the claim's tie-break, so a claim reads the first due rows in
//! index order and stops at its limit. Before, PostgreSQL read and sorted every due row of
//! the endpoint on each claim: once a backlog formed, each claim took longer, and the
//! backlog grew faster (the same 60 s bench at 180 s: p99 0.5 s, then 25 s).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "ALTER TABLE webhook_deliveries ADD COLUMN leased_until timestamptz; \
                 CREATE INDEX webhook_deliveries_due_seq_idx \
                   ON webhook_deliveries (subscription_id, next_attempt_at, seq) \
                   WHERE status = 'pending'; \
                 DROP INDEX webhook_deliveries_due_idx; \
                 ALTER TABLE webhook_deliveries SET (fillfactor = 70, \
                   autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 5000, \
                   autovacuum_vacuum_cost_delay = 0);",
            )
            .await
            .map(|_| ())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "ALTER TABLE webhook_deliveries RESET (fillfactor, \
                   autovacuum_vacuum_scale_factor, autovacuum_vacuum_threshold, \
                   autovacuum_vacuum_cost_delay); \
                 CREATE INDEX webhook_deliveries_due_idx \
                   ON webhook_deliveries (subscription_id, next_attempt_at) \
                   WHERE status = 'pending'; \
                 DROP INDEX webhook_deliveries_due_seq_idx; \
                 ALTER TABLE webhook_deliveries DROP COLUMN leased_until;",
            )
            .await
            .map(|_| ())
    }
}
