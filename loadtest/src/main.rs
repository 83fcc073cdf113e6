//! `eye-loadtest`: see the library for what a run does.

use std::process::ExitCode;

use clap::Parser;
use eye_loadtest::Settings;

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    // The same `.env` as the api and worker, so the ledger reads the database they write.
    dotenvy::dotenv().ok();
    let tally = eye_loadtest::run(Settings::parse()).await?;
    Ok(if tally.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
