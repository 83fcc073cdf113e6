//! The Eye's HTTP API: authenticates applications, checks events at the edge, publishes
//! them durably to RabbitMQ and answers 202 only after the broker's confirm.

pub mod apps;
pub mod auth;
pub mod cli;
pub mod error;
pub mod errors_read;
pub mod extract;
pub mod ingest;
pub mod publisher;
pub mod query;
pub mod reads;
pub mod replay;
pub mod routes;
pub mod settings;
pub mod startup;
pub mod state;

pub use settings::ApiSettings;
pub use startup::Application;
