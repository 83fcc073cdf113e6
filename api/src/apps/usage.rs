//! What the console shows of use, recorded off the request path: events accepted per
//! application and minute (added up in memory), and each token's last use (at most once a
//! minute per token and process). The auth refresher flushes both every refresh interval, in
//! two statements, on the ingestion pool; a failed flush keeps its counts for the next one.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, Statement, Value};
use uuid::Uuid;

/// A token's use is written at most this often (per process).
const TOKEN_EVERY: TimeDelta = TimeDelta::seconds(60);

#[derive(Debug, Default)]
struct Pending {
    /// (application, minute) → events accepted.
    accepted: HashMap<(String, DateTime<Utc>), i64>,
    /// Token id → last use not written yet.
    tokens: HashMap<Uuid, DateTime<Utc>>,
    /// Token id → when its use was last queued (the throttle).
    recorded: HashMap<Uuid, DateTime<Utc>>,
}

#[derive(Debug, Default)]
pub struct Usage {
    pending: Mutex<Pending>,
}

impl Usage {
    /// `n` events of `app` were accepted now.
    pub fn accepted(&self, app: &str, n: u64) {
        let minute = minute_of(Utc::now());
        if let Ok(mut p) = self.pending.lock() {
            *p.accepted.entry((app.to_owned(), minute)).or_default() += n as i64;
        }
    }

    /// The token `jti` was used now (not a UUID: a token the registry never issued).
    pub fn token_used(&self, jti: &str) {
        let Ok(jti) = jti.parse::<Uuid>() else { return };
        let now = Utc::now();
        let Ok(mut p) = self.pending.lock() else {
            return;
        };
        if p.recorded
            .get(&jti)
            .is_some_and(|at| now - *at < TOKEN_EVERY)
        {
            return;
        }
        p.recorded.insert(jti, now);
        p.tokens.insert(jti, now);
    }

    /// Writes what was recorded since the last flush.
    pub async fn flush(&self, db: &DatabaseConnection) -> Result<(), DbErr> {
        let (accepted, tokens) = match self.pending.lock() {
            Ok(mut p) => {
                let now = Utc::now();
                p.recorded.retain(|_, at| now - *at < TOKEN_EVERY);
                (
                    std::mem::take(&mut p.accepted),
                    std::mem::take(&mut p.tokens),
                )
            }
            Err(_) => return Ok(()),
        };
        let written = write(db, &accepted, &tokens).await;
        if written.is_err()
            && let Ok(mut p) = self.pending.lock()
        {
            for (key, n) in accepted {
                *p.accepted.entry(key).or_default() += n;
            }
            for (jti, at) in tokens {
                p.tokens.entry(jti).or_insert(at);
            }
        }
        written
    }
}

fn minute_of(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(TimeDelta::minutes(1)).unwrap_or(t)
}

async fn write(
    db: &DatabaseConnection,
    accepted: &HashMap<(String, DateTime<Utc>), i64>,
    tokens: &HashMap<Uuid, DateTime<Utc>>,
) -> Result<(), DbErr> {
    let backend = db.get_database_backend();
    // A few hundred rows at most per flush (applications × minutes, tokens used).
    for chunk in accepted.iter().collect::<Vec<_>>().chunks(5_000) {
        let mut values: Vec<Value> = Vec::new();
        let rows: Vec<String> = chunk
            .iter()
            .map(|((app, minute), n)| {
                values.extend([app.clone().into(), (*minute).into(), (*n).into()]);
                let i = values.len();
                format!("(${}, ${}, ${})", i - 2, i - 1, i)
            })
            .collect();
        db.execute_raw(Statement::from_sql_and_values(
            backend,
            format!(
                "INSERT INTO accepted_per_minute (app_id, minute, accepted) VALUES {} \
                 ON CONFLICT (minute, app_id) \
                 DO UPDATE SET accepted = accepted_per_minute.accepted + excluded.accepted",
                rows.join(", ")
            ),
            values,
        ))
        .await?;
    }
    for chunk in tokens.iter().collect::<Vec<_>>().chunks(10_000) {
        let mut values: Vec<Value> = Vec::new();
        let rows: Vec<String> = chunk
            .iter()
            .map(|(jti, at)| {
                values.extend([(**jti).into(), (**at).into()]);
                let i = values.len();
                format!("(${}::uuid, ${}::timestamptz)", i - 1, i)
            })
            .collect();
        db.execute_raw(Statement::from_sql_and_values(
            backend,
            format!(
                "UPDATE tokens SET last_used_at = v.at FROM (VALUES {}) AS v (jti, at) \
                 WHERE tokens.jti = v.jti AND (last_used_at IS NULL OR last_used_at < v.at)",
                rows.join(", ")
            ),
            values,
        ))
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_queued_once_a_minute_and_counts_add_up() {
        let usage = Usage::default();
        let jti = Uuid::new_v4().to_string();
        usage.token_used(&jti);
        usage.token_used(&jti);
        usage.token_used("not-a-uuid");
        usage.accepted("shop", 2);
        usage.accepted("shop", 3);
        let p = usage.pending.lock().expect("lock");
        assert_eq!(p.tokens.len(), 1);
        assert_eq!(p.accepted.values().sum::<i64>(), 5);
    }
}
