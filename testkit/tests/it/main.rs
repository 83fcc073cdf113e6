//! Integration tests against the real PostgreSQL and RabbitMQ. One binary (one link); each
//! test makes its own database and broker namespace through `TestEnv`.

mod apps;
mod auth;
mod batch;
mod batch_zstd;
mod client;
mod console;
mod console_feeds;
mod dead_letters;
mod erasure;
mod errors;
mod export;
mod failover;
mod health;
mod imports;
mod imports_upload;
mod ingest;
mod isolation;
mod json_guard;
mod json_provider;
mod migrate;
mod partition_reads;
mod partitions;
mod poison;
mod promise;
mod provider;
mod publish;
mod read;
mod scale_out;
mod storage_faults;
mod webhooks;
mod webhooks_chaos;
mod webhooks_dispatch;
mod worker;
