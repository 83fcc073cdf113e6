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
        .install()
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot serve metrics on EYE_WORKER_METRICS_ADDR={} ({e}); a second worker on \
                 this host needs an address of its own",
                settings.metrics_addr
            )
        })?;
    let shutdown = eye_core::shutdown::on_signal();
    Worker::build(settings)
        .await?
        .run_until_stopped(shutdown)
        .await;
    Ok(())
}
