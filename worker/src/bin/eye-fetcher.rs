//! `eye-fetcher`: the provider fetcher role of the worker crate.

use clap::Parser;
use eye_worker::fetcher::{Fetcher, FetcherSettings};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    dotenvy::dotenv().ok();
    let settings = FetcherSettings::parse();
    eye_core::telemetry::init(&settings.telemetry)?;
    let shutdown = eye_core::shutdown::on_signal();
    Fetcher::build(settings)
        .await?
        .run_until_stopped(shutdown)
        .await;
    Ok(())
}
