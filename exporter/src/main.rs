use std::time::Duration;

use clap::Parser;
use eye_exporter::settings::Command;
use eye_exporter::{Exporter, ExporterSettings};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    dotenvy::dotenv().ok();
    let settings = ExporterSettings::parse();
    eye_core::telemetry::init(&settings.telemetry)?;
    let db = settings.database.connect().await?;
    if let Some(Command::Export { command }) = settings.command {
        return eye_exporter::cli::run(db, settings.s3, command).await;
    }
    let mut exporter = Exporter::new(db, settings.s3);
    exporter.lease = Duration::from_secs(settings.lease_secs.max(1));
    tracing::info!(owner = %exporter.owner, "exporter started");
    let stop = eye_core::shutdown::on_signal();
    exporter
        .serve(Duration::from_secs(settings.poll_secs.max(1)), stop)
        .await;
    Ok(())
}
