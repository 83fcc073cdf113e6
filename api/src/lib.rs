//! The Eye's HTTP API: authenticates applications, checks events at the edge, publishes
//! them durably to RabbitMQ and answers 202 only after the broker's confirm.

pub mod admin;
pub mod apps;
pub mod auth;
pub mod batch;
pub mod cli;
pub mod erasure;
pub mod error;
pub mod extract;
pub mod imports;
pub mod ingest;
pub mod params;
pub mod publisher;
pub mod replay;
pub mod routes;
pub mod settings;
pub mod startup;
pub mod state;
pub mod store;
pub mod webhooks;

pub use settings::ApiSettings;
pub use startup::Application;
