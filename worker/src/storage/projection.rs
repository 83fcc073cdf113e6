//! The hook through which read models follow stored events: each projection picks the events
//! it follows and writes its rows in the same transaction as them, so the generic path knows
//! nothing of any one read model.

use eye_core::Envelope;
use futures::future::BoxFuture;
use sea_orm::{DatabaseTransaction, DbErr};

/// A read model kept from stored events (the provider plans `/search` serves, for one).
pub trait Projection: Send + Sync + std::fmt::Debug {
    /// Whether this stored event feeds the projection. Runs for every stored event: cheap.
    fn follows(&self, envelope: &Envelope) -> bool;

    /// Writes the projection of `stored` (only events it follows, in delivery order) within
    /// the batch's transaction.
    fn write<'a>(
        &'a self,
        txn: &'a DatabaseTransaction,
        stored: Vec<&'a Envelope>,
    ) -> BoxFuture<'a, Result<(), DbErr>>;
}
