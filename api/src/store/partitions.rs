//! Which partitions of `events` a read by client timestamp must look at (issue 18, part 3).
//! `events` is partitioned by `stored_at`, reads go by `timestamp`: without help every page
//! descends the index of every partition and merges them. A partition whose time is over
//! (`to_at` in the past, beyond any running transaction, see [`LIST`]) takes no more rows
//! (the worker stores at the database's `now()`; erasures only remove), so the smallest and
//! largest `timestamp` of one application in it, two index descents, stay true bounds for
//! good: this cache keeps them per (partition, application) in memory, and [`plan`] turns
//! them into `stored_at` ranges PostgreSQL prunes on. A partition not yet over, or not known
//! to the cache, is always read: the cache only ever leaves out what it knows cannot match.
//!
//! A page (ORDER BY timestamp, id LIMIT n) is read in at most two steps: first the rows up
//! to the end of the earliest partition that can match (and every partition reaching back
//! before that end), then, only if the page is not full, the rest. Rows of the first step all
//! come before those of the second, so the page is exactly the one a read of every partition
//! returns (`plan_reads_the_same_page_as_a_full_scan` below checks it on random layouts).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sea_orm::{DatabaseConnection, DbErr, FromQueryResult, Statement};

type Time = DateTime<Utc>;

/// How long the list of partitions is trusted before it is read again: a partition attached
/// since is not known (so it is read), one dropped since is left out of nothing.
const RELIST_EVERY: Duration = Duration::from_secs(5);

/// The partitions, and which are over: `to_at` at least 10 minutes ago and before the start
/// of every transaction still running (one that began before `to_at` may still insert with
/// a `stored_at` before it).
const LIST: &str = r#"
SELECT to_regclass(quote_ident(p.name))::oid::int8 AS oid, p.name, p.from_at, p.to_at,
       coalesce(p.to_at <= least(now() - interval '10 minutes',
                                 (SELECT min(xact_start) FROM pg_stat_activity
                                  WHERE datname = current_database())), false) AS closed
FROM event_partitions p
WHERE NOT p.detach_pending
"#;

/// What one application has in a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Span {
    /// Not over (or not known): may hold anything.
    Open,
    /// Over, and holds no row of the application.
    Empty,
    /// Over; every row of the application has a timestamp within these (inclusive).
    Within(Time, Time),
}

/// A partition as a read sees it: its `stored_at` range (None: MINVALUE / MAXVALUE).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartView {
    pub from: Option<Time>,
    pub to: Option<Time>,
    pub span: Span,
}

/// `stored_at` ranges, `[from, to)`, None unbounded.
pub type Ranges = Vec<(Option<Time>, Option<Time>)>;

/// One query of a page: where (`stored_at` ranges, None: everywhere; empty: nothing to read)
/// and the time horizon it stops at or starts after.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Step {
    pub stored_in: Option<Ranges>,
    /// Only timestamps <= this.
    pub until: Option<Time>,
    /// Only timestamps > this.
    pub after: Option<Time>,
}

/// The partitions' bounds per application, learnt as reads ask for them.
#[derive(Default)]
pub struct PartitionBounds {
    cache: Mutex<Cache>,
}

#[derive(Default)]
struct Cache {
    listed_at: Option<Instant>,
    partitions: Vec<Listed>,
    /// (partition oid, application) → min and max timestamp (None: no row).
    spans: HashMap<(i64, String), Option<(Time, Time)>>,
}

#[derive(Debug, Clone, FromQueryResult)]
struct Listed {
    oid: i64,
    name: String,
    from_at: Option<Time>,
    to_at: Option<Time>,
    closed: bool,
}

#[derive(Debug, FromQueryResult)]
struct Bounds {
    i: i64,
    lo: Option<Time>,
    hi: Option<Time>,
}

impl PartitionBounds {
    /// The steps reading a page of `app` within `[lo, hi)`; one unrestricted step when the
    /// partitions cannot be learnt (the read itself then says what is wrong).
    pub async fn plan(
        &self,
        db: &DatabaseConnection,
        app: &str,
        lo: Option<Time>,
        hi: Option<Time>,
    ) -> Vec<Step> {
        match self.views(db, app).await {
            Ok(parts) => plan(&parts, lo, hi),
            Err(e) => {
                tracing::debug!(error = %e, "partition bounds unknown; reading every partition");
                self.lock().listed_at = None;
                vec![Step::default()]
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn views(&self, db: &DatabaseConnection, app: &str) -> Result<Vec<PartView>, DbErr> {
        let stale = self
            .lock()
            .listed_at
            .is_none_or(|at| at.elapsed() >= RELIST_EVERY);
        if stale {
            let listed =
                Listed::find_by_statement(Statement::from_string(db.get_database_backend(), LIST))
                    .all(db)
                    .await?;
            let mut cache = self.lock();
            cache
                .spans
                .retain(|(oid, _), _| listed.iter().any(|p| p.oid == *oid));
            cache.partitions = listed;
            cache.listed_at = Some(Instant::now());
        }
        let missing: Vec<Listed> = {
            let cache = self.lock();
            let known = |p: &&Listed| cache.spans.contains_key(&(p.oid, app.to_owned()));
            let closed = cache.partitions.iter().filter(|p| p.closed);
            closed.filter(|p| !known(p)).cloned().collect()
        };
        if !missing.is_empty() {
            let learnt = learn(db, app, &missing).await?;
            let mut cache = self.lock();
            for (p, span) in missing.iter().zip(learnt) {
                cache.spans.insert((p.oid, app.to_owned()), span);
            }
        }
        let cache = self.lock();
        Ok(cache
            .partitions
            .iter()
            .map(|p| PartView {
                from: p.from_at,
                to: p.to_at,
                span: match cache.spans.get(&(p.oid, app.to_owned())) {
                    Some(None) => Span::Empty,
                    Some(Some((lo, hi))) => Span::Within(*lo, *hi),
                    None => Span::Open,
                },
            })
            .collect())
    }
}

/// The first and last timestamp of `app` in each partition: two descents of its
/// (app_id, timestamp, id) index each, in one statement.
async fn learn(
    db: &DatabaseConnection,
    app: &str,
    partitions: &[Listed],
) -> Result<Vec<Option<(Time, Time)>>, DbErr> {
    let sql = partitions
        .iter()
        .enumerate()
        .map(|(i, p)| {
            format!(
                r#"SELECT {i}::int8 AS i, min("timestamp") AS lo, max("timestamp") AS hi FROM "{}" WHERE app_id = $1"#,
                p.name.replace('"', "\"\"")
            )
        })
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    let rows = Bounds::find_by_statement(Statement::from_sql_and_values(
        db.get_database_backend(),
        sql,
        [app.into()],
    ))
    .all(db)
    .await?;
    let mut spans = vec![None; partitions.len()];
    for row in rows {
        if let (Ok(i), Some(lo), Some(hi)) = (usize::try_from(row.i), row.lo, row.hi)
            && let Some(span) = spans.get_mut(i)
        {
            *span = Some((lo, hi));
        }
    }
    Ok(spans)
}

/// The steps of a page within `[lo, hi)` (`lo` inclusive: a cursor's rows are at or after
/// its time): one when at most one partition over can match, else two (module doc).
pub fn plan(parts: &[PartView], lo: Option<Time>, hi: Option<Time>) -> Vec<Step> {
    let overlaps =
        |min: Time, max: Time| lo.is_none_or(|lo| max >= lo) && hi.is_none_or(|hi| min < hi);
    let mut candidates: Vec<(Time, Time)> = parts
        .iter()
        .filter_map(|p| match p.span {
            Span::Within(min, max) if overlaps(min, max) => Some((min, max)),
            _ => None,
        })
        .collect();
    candidates.sort();
    // Reads the open partitions and the over ones `keep` accepts.
    let step = |keep: &dyn Fn(Time, Time) -> bool| {
        let excluded: Ranges = parts
            .iter()
            .filter(|p| match p.span {
                Span::Open => false,
                Span::Empty => true,
                Span::Within(min, max) => !(overlaps(min, max) && keep(min, max)),
            })
            .map(|p| (p.from, p.to))
            .collect();
        (!excluded.is_empty()).then(|| complement(excluded))
    };
    let Some(&(_, horizon)) = candidates.first() else {
        return vec![Step {
            stored_in: step(&|_, _| true),
            ..Step::default()
        }];
    };
    if candidates.iter().all(|&(min, _)| min <= horizon) {
        return vec![Step {
            stored_in: step(&|_, _| true),
            ..Step::default()
        }];
    }
    vec![
        Step {
            stored_in: step(&|min, _| min <= horizon),
            until: Some(horizon),
            after: None,
        },
        Step {
            stored_in: step(&|_, max| max > horizon),
            until: None,
            after: Some(horizon),
        },
    ]
}

/// Everything but `excluded` (`[from, to)` ranges), as ranges in order.
fn complement(mut excluded: Ranges) -> Ranges {
    excluded.sort();
    let mut out = Vec::new();
    // Where the next included range starts: Some(None) from the beginning; None: nothing left.
    let mut start: Option<Option<Time>> = Some(None);
    for (from, to) in excluded {
        let Some(at) = start else { break };
        if let Some(from) = from
            && at.is_none_or(|at| at < from)
        {
            out.push((at, Some(from)));
        }
        // An excluded range to MAXVALUE leaves nothing after it.
        start = to.map(|to| Some(at.map_or(to, |at| at.max(to))));
    }
    if let Some(at) = start {
        out.push((at, None));
    }
    out
}

#[cfg(test)]
mod tests;
