//! The readiness probe's database check.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sea_orm::DatabaseConnection;
use tokio::sync::Semaphore;

/// Whether the database answers, on the ingestion pool (saturated reads must not make the
/// api look unready). One probe at a time: a caller arriving meanwhile gets the last
/// result, so a flood of `/readyz` holds at most one connection.
pub struct Probe {
    db: DatabaseConnection,
    running: Semaphore,
    last: AtomicBool,
}

impl Probe {
    /// A probe on `db`, the ingestion pool.
    pub fn new(db: DatabaseConnection) -> Self {
        Self {
            db,
            running: Semaphore::new(1),
            last: AtomicBool::new(false),
        }
    }

    /// Whether the database answered a ping within `within`.
    pub async fn database_answers(&self, within: Duration) -> bool {
        let Ok(_permit) = self.running.try_acquire() else {
            return self.last.load(Ordering::Relaxed);
        };
        let up = matches!(
            tokio::time::timeout(within, self.db.ping()).await,
            Ok(Ok(()))
        );
        self.last.store(up, Ordering::Relaxed);
        up
    }
}
