//! Integration tests against the real PostgreSQL and RabbitMQ. One binary (one link); each
//! test makes its own database and broker namespace through `TestEnv`.

mod apps;
mod auth;
mod dead_letters;
mod errors;
mod health;
mod ingest;
mod isolation;
mod provider;
mod read;
mod worker;
