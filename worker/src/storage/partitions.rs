//! The partitions of `events` (by range of `stored_at`): created ahead of time, and, with a
//! retention, old ones dropped whole. Every statement here leaves inserts and reads running:
//! a new partition is created as a plain table and then ATTACHed (SHARE UPDATE EXCLUSIVE on
//! `events`, which neither inserts nor reads wait for; `CREATE TABLE ... PARTITION OF` would
//! take ACCESS EXCLUSIVE), and an old one is detached with `DETACH PARTITION ...
//! CONCURRENTLY` (which waits for the transactions that might still use it instead of
//! making them wait) before it is dropped. ARCHITECTURE.md, "Schema".

use chrono::{DateTime, Duration, TimeZone, Utc};
use sea_orm::{ConnectionTrait, DbErr, FromQueryResult, Statement, TransactionTrait};
use serde::Serialize;

use super::Store;

/// `event_ids` rows forgotten per statement after a drop (short transactions).
const FORGET_CHUNK: u32 = 10_000;

/// How partitions are laid out and kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Width of a new partition, in days; boundaries are multiples of it from Monday
    /// 1970-01-05 (7: Monday to Monday).
    pub width_days: u32,
    /// Partitions exist at least this far past now.
    pub ahead_days: u32,
    /// Partitions whose every row was stored more than this many days ago are dropped;
    /// `None` keeps everything.
    pub retention_days: Option<u32>,
}

/// What one maintenance run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub created: Vec<String>,
    pub dropped: Vec<String>,
    /// `event_ids` rows of dropped partitions deleted: those ids may be stored again.
    pub ids_forgotten: u64,
}

/// One partition of `events` (the `event_partitions` view).
#[derive(Debug, Clone, FromQueryResult)]
pub struct Partition {
    pub name: String,
    /// `None`: from MINVALUE (`events_initial`).
    pub from_at: Option<DateTime<Utc>>,
    /// `None`: to MAXVALUE (none is made here).
    pub to_at: Option<DateTime<Utc>>,
    pub detach_pending: bool,
}

impl Policy {
    /// The first partition boundary strictly after `t`.
    pub fn next_boundary(&self, t: DateTime<Utc>) -> DateTime<Utc> {
        self.boundary_at_or_before(t) + self.width()
    }

    /// The last partition boundary at or before `t`.
    pub fn boundary_at_or_before(&self, t: DateTime<Utc>) -> DateTime<Utc> {
        let anchor = Utc.with_ymd_and_hms(1970, 1, 5, 0, 0, 0).single();
        let anchor = anchor.unwrap_or(DateTime::UNIX_EPOCH);
        let width = self.width().num_seconds();
        let periods = (t - anchor).num_seconds().div_euclid(width);
        anchor + Duration::seconds(periods * width)
    }

    fn width(&self) -> Duration {
        Duration::days(i64::from(self.width_days.max(1)))
    }
}

/// The partition's name: `events_p` and the UTC day it starts.
pub fn partition_name(from: DateTime<Utc>) -> String {
    format!("events_p{}", from.format("%Y%m%d"))
}

impl Store {
    /// The partitions of `events`, oldest first.
    pub async fn partitions(&self) -> Result<Vec<Partition>, DbErr> {
        Partition::find_by_statement(Statement::from_string(
            self.db.get_database_backend(),
            "SELECT name, from_at, to_at, detach_pending FROM event_partitions \
             ORDER BY from_at NULLS FIRST",
        ))
        .all(&self.db)
        .await
    }

    /// One maintenance run as of `now`: finishes interrupted detaches, creates the
    /// partitions up to `now + ahead`, and drops those past retention, then forgets their
    /// ids. `None` when another worker holds the maintenance lease.
    pub async fn maintain_partitions(
        &self,
        policy: Policy,
        now: DateTime<Utc>,
    ) -> Result<Option<Report>, DbErr> {
        let backend = self.db.get_database_backend();
        let leased = self
            .db
            .execute_raw(Statement::from_string(
                backend,
                "UPDATE partition_maintenance SET lease_until = now() + interval '10 minutes' \
                 WHERE lease_until < now()",
            ))
            .await?
            .rows_affected();
        if leased == 0 {
            return Ok(None);
        }
        let outcome = self.maintain(policy, now).await;
        let report = outcome
            .as_ref()
            .ok()
            .and_then(|r| serde_json::to_value(r).ok());
        self.db
            .execute_raw(Statement::from_sql_and_values(
                backend,
                "UPDATE partition_maintenance SET lease_until = '-infinity', \
                 last_run_at = now(), last_report = $1",
                [report.into()],
            ))
            .await?;
        outcome.map(Some)
    }

    async fn maintain(&self, policy: Policy, now: DateTime<Utc>) -> Result<Report, DbErr> {
        let mut report = Report::default();
        let partitions = self.partitions().await?;
        for pending in partitions.iter().filter(|p| p.detach_pending) {
            // A DETACH CONCURRENTLY interrupted between its two transactions.
            self.run(&format!(
                "ALTER TABLE events DETACH PARTITION \"{}\" FINALIZE",
                pending.name
            ))
            .await?;
            self.run(&format!("DROP TABLE \"{}\"", pending.name))
                .await?;
            report.dropped.push(pending.name.clone());
        }
        let horizon = now + Duration::days(i64::from(policy.ahead_days));
        let mut from = partitions
            .iter()
            .filter_map(|p| p.to_at)
            .max()
            .unwrap_or_else(|| policy.boundary_at_or_before(now));
        let first_new = from;
        while from < horizon {
            let to = policy.next_boundary(from);
            let name = partition_name(from);
            self.create_partition(&name, from, to).await?;
            report.created.push(name);
            from = to;
        }
        if let Some(days) = policy.retention_days {
            let cutoff = now - Duration::days(i64::from(days));
            let live = partitions.iter().filter(|p| !p.detach_pending);
            let past = |p: &&Partition| p.to_at.is_some_and(|to| to <= cutoff);
            for old in live.clone().filter(past) {
                self.run(&format!(
                    "ALTER TABLE events DETACH PARTITION \"{}\" CONCURRENTLY",
                    old.name
                ))
                .await?;
                self.run(&format!("DROP TABLE \"{}\"", old.name)).await?;
                report.dropped.push(old.name.clone());
            }
            // Every id stored before the oldest partition kept belonged to a dropped one.
            // (A partition kept from MINVALUE holds every id older than itself: none to forget.)
            let kept: Vec<&Partition> = live.filter(|p| !past(p)).collect();
            let kept_from = match kept.iter().map(|p| p.from_at).min() {
                Some(from) => from,
                None => Some(first_new),
            };
            if let Some(kept_from) = kept_from {
                report.ids_forgotten = self.forget_ids_before(kept_from).await?;
            }
        }
        Ok(report)
    }

    /// Creates `name` for `[from, to)`: a plain table, then ATTACHed (see the module's doc),
    /// in one transaction, so a failure leaves nothing behind.
    async fn create_partition(
        &self,
        name: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<(), DbErr> {
        let txn = self.db.begin().await?;
        txn.execute_unprepared(&format!(
            "SET LOCAL lock_timeout = '10s'; \
             CREATE TABLE \"{name}\" (LIKE events INCLUDING DEFAULTS); \
             ALTER TABLE events ATTACH PARTITION \"{name}\" FOR VALUES FROM ('{}') TO ('{}')",
            from.to_rfc3339(),
            to.to_rfc3339()
        ))
        .await?;
        txn.commit().await
    }

    /// Deletes the `event_ids` rows stored before `before` (their partitions are gone), a
    /// chunk per statement; how many.
    async fn forget_ids_before(&self, before: DateTime<Utc>) -> Result<u64, DbErr> {
        let mut forgotten = 0;
        loop {
            let n = self
                .db
                .execute_raw(Statement::from_sql_and_values(
                    self.db.get_database_backend(),
                    "DELETE FROM event_ids WHERE ctid = ANY (ARRAY( \
                         SELECT ctid FROM event_ids WHERE stored_at < $1 LIMIT $2))",
                    [before.into(), i64::from(FORGET_CHUNK).into()],
                ))
                .await?
                .rows_affected();
            forgotten += n;
            if n < u64::from(FORGET_CHUNK) {
                return Ok(forgotten);
            }
        }
    }

    async fn run(&self, sql: &str) -> Result<(), DbErr> {
        self.db.execute_unprepared(sql).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().expect("time")
    }

    #[test]
    fn weekly_boundaries_fall_on_mondays() {
        let weekly = Policy {
            width_days: 7,
            ahead_days: 14,
            retention_days: None,
        };
        // 2026-12-03 is a Thursday.
        assert_eq!(
            weekly.boundary_at_or_before(at("2026-12-03T10:00:00Z")),
            at("2026-11-30T00:00:00Z")
        );
        assert_eq!(
            weekly.next_boundary(at("2026-11-30T00:00:00Z")),
            at("2026-12-07T00:00:00Z")
        );
        // From a daily boundary that is not a Monday: up to the next Monday.
        assert_eq!(
            weekly.next_boundary(at("2026-12-05T00:00:00Z")),
            at("2026-12-07T00:00:00Z")
        );
    }

    #[test]
    fn daily_boundaries_are_midnights_utc() {
        let daily = Policy {
            width_days: 1,
            ahead_days: 2,
            retention_days: Some(30),
        };
        assert_eq!(
            daily.next_boundary(at("2026-12-03T23:59:59Z")),
            at("2026-12-04T00:00:00Z")
        );
        assert_eq!(
            partition_name(at("2026-12-04T00:00:00Z")),
            "events_p20261204"
        );
    }
}
