//! `eye-fetcher`: pulls the providers' feeds and publishes what changed (see the crate docs).

use clap::Parser;
use eye_fetcher::{Fetcher, FetcherSettings};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    dotenvy::dotenv().ok();
    let settings = FetcherSettings::parse();
    eye_core::telemetry::init(&settings.telemetry)?;
    eye_fetcher::monitoring::install(settings.metrics_addr)?;
    let shutdown = eye_core::shutdown::on_signal();
    let fetchers = Fetcher::build_all(settings).await?;
    Fetcher::run_all(fetchers, shutdown).await;
    Ok(())
}
