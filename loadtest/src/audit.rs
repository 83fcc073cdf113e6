//! Reads back what the worker wrote for the accepted ids, and waits for the queue to drain
//! before the verdict: a 202 promises a row later, not at once.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
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
/// Refusals only: a `warning` row sits beside a stored event and is no second outcome.
const REFUSED_SQL: &str = "SELECT event_id AS id, count(*) AS n FROM dead_letters \
     WHERE app_id = $1 AND kind = 'invalid' AND event_id = ANY($2) GROUP BY event_id";
/// Messages the worker could not decode since the run began: they name no application, so
/// the ids are read out of the raw bodies (and `event_id`, where a worker set one).
const UNDECODABLE_SQL: &str = "SELECT event_id, raw FROM dead_letters \
     WHERE kind = 'undecodable' AND last_seen >= $1";

/// The rows of one application, read from the database the worker writes to.
pub struct Audit {
    db: DatabaseConnection,
    app_id: String,
    /// The database's clock when the audit began: older undecodable messages are not ours.
    since: DateTime<Utc>,
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
        let now = db
            .query_one_raw(Statement::from_string(
                DbBackend::Postgres,
                "SELECT now() AS now",
            ))
            .await
            .context("reading the database's clock")?
            .context("SELECT now() returned no row")?;
        let since = now
            .try_get("", "now")
            .context("reading the database's clock")?;
        Ok(Self { db, app_id, since })
    }

    /// Polls until every accepted id is accounted for and the counts held still for one
    /// more look (so a late second row would still be seen), or until `timeout`. Ids still
    /// missing once nothing moves are looked for in undecodable messages.
    pub async fn drain(
        &self,
        accepted: &[(Uuid, Expect)],
        timeout: Duration,
    ) -> anyhow::Result<Tally> {
        let deadline = Instant::now() + timeout;
        let mut previous: Option<Tally> = None;
        loop {
            let mut found = self.found(accepted).await?;
            let rows = Tally::count(accepted, &found);
            let timed_out = Instant::now() >= deadline;
            let mut tally = rows;
            if look_further(previous.as_ref(), &rows, timed_out) {
                found.undecodable = self.undecodable().await?;
                tally = Tally::count(accepted, &found);
            }
            if settled(previous.as_ref(), &rows, &tally) || timed_out {
                return Ok(tally);
            }
            if previous != Some(rows) {
                eprintln!("draining: {tally}");
            }
            previous = Some(rows);
            sleep(POLL).await;
        }
    }

    /// The rows of the accepted ids in `events` and as refusals in `dead_letters`.
    pub async fn found(&self, accepted: &[(Uuid, Expect)]) -> anyhow::Result<Found> {
        let mut found = Found::default();
        for chunk in accepted.chunks(CHUNK) {
            let ids: Vec<Uuid> = chunk.iter().map(|(id, _)| *id).collect();
            found.merge(Found {
                stored: self.count_rows(EVENTS_SQL, &ids).await?,
                refused: self.count_rows(REFUSED_SQL, &ids).await?,
                undecodable: HashSet::new(),
            });
        }
        Ok(found)
    }

    /// Every event id inside the messages dead-lettered as undecodable since the audit began.
    async fn undecodable(&self) -> anyhow::Result<HashSet<Uuid>> {
        let statement = Statement::from_sql_and_values(
            DbBackend::Postgres,
            UNDECODABLE_SQL,
            [self.since.into()],
        );
        let rows = self
            .db
            .query_all_raw(statement)
            .await
            .context("reading undecodable dead letters")?;
        let mut ids = HashSet::new();
        for row in rows {
            let event_id: Option<Uuid> = row.try_get("", "event_id")?;
            let raw: Option<Vec<u8>> = row.try_get("", "raw")?;
            ids.extend(event_id);
            ids.extend(uuids_in(raw.as_deref().unwrap_or_default()));
        }
        Ok(ids)
    }

    async fn count_rows(&self, sql: &str, ids: &[Uuid]) -> anyhow::Result<HashMap<Uuid, u64>> {
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

/// Ids are missing and the rows stopped moving (or time is up): time to look for them in
/// undecodable messages, a query not worth making while the worker is still catching up.
fn look_further(previous: Option<&Tally>, rows: &Tally, timed_out: bool) -> bool {
    !rows.all_accounted() && (timed_out || previous == Some(rows))
}

/// Done waiting: everything accepted has landed (`tally`, undecodable messages included),
/// and the rows did not move since the last look (`rows`).
fn settled(previous: Option<&Tally>, rows: &Tally, tally: &Tally) -> bool {
    tally.all_accounted() && previous == Some(rows)
}

/// The UUIDs written in a raw message body, in their hyphenated form (as the envelope
/// carries them), wherever they stand: the body did not decode, so no parser is trusted.
fn uuids_in(raw: &[u8]) -> impl Iterator<Item = Uuid> + '_ {
    raw.split(|b| !(b.is_ascii_hexdigit() || *b == b'-'))
        .filter(|word| word.len() == 36)
        .filter_map(|word| Uuid::try_parse_ascii(word).ok())
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
        assert!(!settled(Some(&tally(5, 5)), &tally(5, 5), &tally(5, 5)));
    }

    #[test]
    fn the_drain_takes_one_more_look_once_everything_landed() {
        let done = tally(10, 0);
        assert!(!settled(None, &done, &done));
        assert!(!settled(Some(&tally(9, 1)), &done, &done));
        assert!(settled(Some(&done), &done, &done));
    }

    #[test]
    fn undecodable_messages_are_searched_only_once_the_rows_stop_moving() {
        let (moving, stuck) = (tally(5, 5), tally(6, 4));
        assert!(!look_further(Some(&moving), &stuck, false));
        assert!(look_further(Some(&stuck), &stuck, false));
        assert!(look_further(Some(&moving), &stuck, true));
        assert!(!look_further(Some(&tally(10, 0)), &tally(10, 0), true));
        // Missing ids all found in undecodable messages: settled, they will not move.
        let found = Tally {
            lost: 0,
            undecodable: 4,
            ..stuck
        };
        assert!(settled(Some(&stuck), &stuck, &found));
    }

    #[test]
    fn the_ids_of_an_undecodable_body_are_read_out_of_its_bytes() {
        let (a, b) = (Uuid::now_v7(), Uuid::new_v4());
        let raw = format!(
            r#"{{"v":"1","envelopes":[{{"event":{{"id":"{a}","session_id":"{b}","data":{{"n":"12345678-1234"}}}}}},"#
        );
        let found: HashSet<Uuid> = uuids_in(raw.as_bytes()).collect();
        assert_eq!(found, HashSet::from([a, b]));
        assert_eq!(uuids_in(b"\xff\x00 not json").count(), 0);
    }
}
