use clap::Parser;
use eye_dispatcher::{Dispatcher, DispatcherSettings};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    dotenvy::dotenv().ok();
    let settings = DispatcherSettings::parse();
    eye_core::telemetry::init(&settings.telemetry)?;
    eye_core::telemetry::prometheus()
        .with_http_listener(settings.metrics_addr)
        .install()
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot serve metrics on EYE_DISPATCHER_METRICS_ADDR={} ({e})",
                settings.metrics_addr
            )
        })?;
    let shutdown = eye_core::shutdown::on_signal();
    Dispatcher::build(settings)
        .await?
        .run_until_stopped(shutdown)
        .await;
    Ok(())
}
