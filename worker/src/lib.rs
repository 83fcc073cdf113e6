//! The Eye's worker: consumes the events queue, validates each event through the validator
//! registry, stores valid ones in batches and dead-letters the rest, acking after commit.

pub mod consumer;
pub mod pipeline;
pub mod settings;
pub mod startup;
pub mod storage;
pub mod validation;

pub use settings::WorkerSettings;
pub use startup::Worker;
