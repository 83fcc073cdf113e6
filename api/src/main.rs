use clap::Parser;
use eye_api::Application;
use eye_api::cli::{Cli, Command};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    dotenvy::dotenv().ok();
    let cli = Cli::parse();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cli.runtime_threads())
        .enable_all()
        .build()?
        .block_on(run(cli))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match eye_api::cli::run(cli.command).await? {
        Some(Command::Serve(settings)) => {
            eye_core::telemetry::init(&settings.telemetry)?;
            let shutdown = eye_core::shutdown::on_signal();
            Application::build(*settings)
                .await?
                .run_until_stopped(shutdown)
                .await?;
        }
        Some(Command::Openapi) => println!("{}", eye_api::routes::docs::openapi_json()),
        // The registry commands ran in `cli::run`.
        _ => {}
    }
    Ok(())
}
