//! The Eye's worker: consumes the events queue (`consumer`, the only lapin user), judges each
//! event into a verdict (`pipeline`, through the validator registry in `validation`), stores
//! the batch idempotently in one transaction (`storage`: events, dead letters, read models),
//! and acks only after the commit. It also records what reaches the poison queue.

pub mod consumer;
pub mod erasure;
pub mod importer;
pub mod partitions;
pub mod pipeline;
pub mod settings;
pub mod startup;
pub mod storage;
pub mod validation;

pub use settings::WorkerSettings;
pub use startup::Worker;
