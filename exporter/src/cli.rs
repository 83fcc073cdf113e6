//! `eye-api export ...` and `eye-exporter export ...` (the same commands): run an export now
//! in this process with a progress bar, resume a failed one, show one, or schedule one for
//! the `eye-exporter` daemons.

use std::time::Duration;

use crate::{Destination, EventFilter, ExportSpec, Exporter, Progress, S3Settings, Shape};
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use sea_orm::DatabaseConnection;
use uuid::Uuid;

#[derive(Debug, Subcommand)]
pub enum ExportCommand {
    /// Export now (a new generation), printing the descriptor's key at the end.
    Run(SpecArgs),
    /// Resume a failed (or abandoned) export after its last written chunk.
    Resume { id: Uuid },
    /// Show an export's state, files written, records and error.
    Show { id: Uuid },
    /// Run this export every EVERY seconds, by one `eye-exporter` at a time.
    Schedule {
        #[arg(long)]
        every_secs: u64,
        #[command(flatten)]
        spec: SpecArgs,
    },
}

#[derive(Debug, Args)]
pub struct SpecArgs {
    /// The feed's folder under the destination.
    #[arg(long)]
    pub name: String,
    #[arg(long, value_enum, default_value_t = Shape::Events)]
    pub shape: Shape,
    /// `s3://bucket/prefix`, `file:///path` or a folder path.
    #[arg(long = "to")]
    pub destination: String,
    /// Records per file.
    #[arg(long, default_value_t = crate::spec::DEFAULT_CHUNK_SIZE)]
    pub chunk_size: u32,
    /// Events of this application only.
    #[arg(long)]
    pub app: Option<String>,
    #[arg(long)]
    pub category: Option<String>,
    /// Events of this name only.
    #[arg(long = "event-name")]
    pub event_name: Option<String>,
    /// Events at or after this time (RFC 3339).
    #[arg(long)]
    pub from: Option<DateTime<Utc>>,
    /// Events before this time (RFC 3339).
    #[arg(long = "until")]
    pub until: Option<DateTime<Utc>>,
    /// Base of the entities' `url` (rwg-entities).
    #[arg(long)]
    pub url_base: Option<String>,
}

impl SpecArgs {
    fn spec(self) -> anyhow::Result<ExportSpec> {
        let spec = ExportSpec {
            name: self.name,
            shape: self.shape,
            filter: EventFilter {
                application: self.app,
                category: self.category,
                name: self.event_name,
                from: self.from,
                to: self.until,
            },
            chunk_size: self.chunk_size,
            destination: Destination::parse(&self.destination)?,
            url_base: self.url_base,
        };
        spec.validate()?;
        Ok(spec)
    }
}

pub async fn run(
    db: DatabaseConnection,
    s3: S3Settings,
    command: ExportCommand,
) -> anyhow::Result<()> {
    let exporter = Exporter::new(db, s3);
    match command {
        ExportCommand::Run(args) => {
            let spec = args.spec()?;
            let run = crate::runs::create(&exporter.db, &spec, None).await?;
            execute(&exporter, run.id).await
        }
        ExportCommand::Resume { id } => execute(&exporter, id).await,
        ExportCommand::Show { id } => {
            let run = crate::runs::get(&exporter.db, id)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no export {id}"))?;
            println!("{}", serde_json::to_string_pretty(&run)?);
            Ok(())
        }
        ExportCommand::Schedule { every_secs, spec } => {
            let spec = spec.spec()?;
            crate::schedule::upsert(&exporter.db, &spec, Duration::from_secs(every_secs)).await?;
            println!(
                "scheduled {} every {every_secs} s (run by eye-exporter)",
                spec.name
            );
            Ok(())
        }
    }
}

/// Runs export `id` here with a progress bar (on stderr), then prints its summary.
async fn execute(exporter: &Exporter, id: Uuid) -> anyhow::Result<()> {
    let run = crate::runs::get(&exporter.db, id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no export {id}"))?;
    let total = crate::records::count(&exporter.db, &run.spec()?, run.snapshot_at).await?;
    let bar = ProgressBar::new(total).with_style(ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} records ({per_sec}) {msg}",
    )?);
    let progress = |p: Progress| {
        bar.set_position(p.records);
        bar.set_message(format!("{} files", p.files));
    };
    let done = exporter.run_by_id(id, &progress).await?.ok_or_else(|| {
        anyhow::anyhow!("export {id} is running elsewhere or has already succeeded")
    })?;
    bar.finish();
    println!(
        "export {} {}: {} files, {} records, descriptor {}",
        done.id,
        done.state,
        done.files_written,
        done.records,
        done.descriptor_key.unwrap_or_default()
    );
    Ok(())
}
