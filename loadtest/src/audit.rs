//! Reads back what the worker wrote for the accepted ids, and waits for the queue to drain
//! before the verdict: a 202 promises a row later, not at once.

use std::time::Duration;

use anyhow::Context;
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement,
};
use tokio::time::{Instant, sleep};
use uuid::Uuid;

use crate::ledger::{Found, Tally};
use crate::payload::Expect;

/// Ids per query: large enough for few round trips, small enough for one bind array.
const CHUNK: usize = 5_000;

/// How often the drain looks again.
const POLL: Duration = Duration::from_millis(500);

const EVENTS_SQL: &str = "SELECT id, count(*) AS n FROM events \
     WHERE app_id = $1 AND id = ANY($2) GROUP BY id";
const DEAD_LETTERS_SQL: &str = "SELECT event_id AS id, count(*) AS n FROM dead_letters \
     WHERE app_id = $1 AND event_id = ANY($2) GROUP BY event_id";

/// The rows of one application, read from the database the worker writes to.
pub struct Audit {
    db: DatabaseConnection,
    app_id: String,
}

impl Audit {
    pub async fn connect(database_url: &str, app_id: String) -> anyhow::Result<Self> {
        let mut options = ConnectOptions::new(database_url);
        options
            .max_connections(2)
            .connect_timeout(Duration::from_secs(5))
            .sqlx_logging(false);
        let db = Database::connect(options)
            .await
            .context("connecting to the database (DATABASE_URL)")?;
        Ok(Self { db, app_id })
    }

    /// Polls until every accepted id is accounted for and the counts held still for one
    /// more look (so a late second row would still be seen), or until `timeout`.
    pub async fn drain(
        &self,
        accepted: &[(Uuid, Expect)],
        timeout: Duration,
    ) -> anyhow::Result<Tally> {
        let deadline = Instant::now() + timeout;
        let mut previous: Option<Tally> = None;
        loop {
            let tally = Tally::count(accepted, &self.found(accepted).await?);
            if settled(previous.as_ref(), &tally) || Instant::now() >= deadline {
                return Ok(tally);
            }
            if previous != Some(tally) {
                eprintln!("draining: {tally}");
            }
            previous = Some(tally);
            sleep(POLL).await;
        }
    }

    /// The rows of the accepted ids in both tables.
    pub async fn found(&self, accepted: &[(Uuid, Expect)]) -> anyhow::Result<Found> {
        let mut found = Found::default();
        for chunk in accepted.chunks(CHUNK) {
            let ids: Vec<Uuid> = chunk.iter().map(|(id, _)| *id).collect();
            found.merge(Found {
                stored: self.count_rows(EVENTS_SQL, &ids).await?,
                dead_lettered: self.count_rows(DEAD_LETTERS_SQL, &ids).await?,
            });
        }
        Ok(found)
    }

    async fn count_rows(
        &self,
        sql: &str,
        ids: &[Uuid],
    ) -> anyhow::Result<std::collections::HashMap<Uuid, u64>> {
        let statement = Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            [self.app_id.clone().into(), ids.to_vec().into()],
        );
        let rows = self
            .db
            .query_all_raw(statement)
            .await
            .with_context(|| format!("querying: {sql}"))?;
        rows.iter()
            .map(|row| {
                let id: Uuid = row.try_get("", "id")?;
                let n: i64 = row.try_get("", "n")?;
                Ok((id, u64::try_from(n).unwrap_or(0)))
            })
            .collect::<Result<_, sea_orm::DbErr>>()
            .context("reading the counts")
    }
}

/// Done waiting: everything accepted has landed, and nothing moved since the last look.
fn settled(previous: Option<&Tally>, now: &Tally) -> bool {
    now.all_accounted() && previous == Some(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally(stored: u64, lost: u64) -> Tally {
        Tally {
            accepted: stored + lost,
            stored,
            lost,
            ..Tally::default()
        }
    }

    #[test]
    fn the_drain_waits_while_ids_are_missing() {
        assert!(!settled(Some(&tally(5, 5)), &tally(5, 5)));
    }

    #[test]
    fn the_drain_takes_one_more_look_once_everything_landed() {
        assert!(!settled(None, &tally(10, 0)));
        assert!(!settled(Some(&tally(9, 1)), &tally(10, 0)));
        assert!(settled(Some(&tally(10, 0)), &tally(10, 0)));
    }
}
