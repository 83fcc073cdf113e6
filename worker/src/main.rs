use clap::Parser;
use eye_worker::{Worker, WorkerSettings};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    dotenvy::dotenv().ok();
    let settings = WorkerSettings::parse();
    eye_core::telemetry::init(&settings.telemetry)?;
    eye_core::telemetry::prometheus()
        .with_http_listener(settings.metrics_addr)
        .install()?;
    let shutdown = eye_core::shutdown::on_signal();
    Worker::build(settings)
        .await?
        .run_until_stopped(shutdown)
        .await;
    Ok(())
}
