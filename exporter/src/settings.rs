//! Settings of the `eye-exporter` daemon.

use clap::Parser;
use eye_core::settings::{DatabaseSettings, TelemetrySettings};

use crate::target::S3Settings;

#[derive(Debug, Parser)]
#[command(
    name = "eye-exporter",
    version,
    about = "The Eye's feed exporter: runs requested and scheduled exports"
)]
pub struct ExporterSettings {
    #[command(flatten)]
    pub database: DatabaseSettings,
    #[command(flatten)]
    pub s3: S3Settings,
    #[command(flatten)]
    pub telemetry: TelemetrySettings,
    /// Seconds between polls for pending runs and due schedules when idle.
    #[arg(long = "poll-secs", env = "EYE_EXPORT_POLL_SECS", default_value_t = 2)]
    pub poll_secs: u64,
    /// Seconds a run stays leased without progress before another process takes it over.
    #[arg(
        long = "lease-secs",
        env = "EYE_EXPORT_LEASE_SECS",
        default_value_t = 60
    )]
    pub lease_secs: u64,
    /// Without a command: run requested and scheduled exports until stopped.
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// The same commands as `eye-api export`.
    Export {
        #[command(subcommand)]
        command: crate::cli::ExportCommand,
    },
}
