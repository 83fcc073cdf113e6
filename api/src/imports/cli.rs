//! `eye-api import FILE --app NAME`: stages the file as `POST /imports` does (same function,
//! same rows), then follows the import's progress in PostgreSQL, the same row the api's
//! progress events read, with a progress bar, until it ends. Any worker runs it.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use eye_core::import::{Format, Keep};
use indicatif::{ProgressBar, ProgressStyle};
use sea_orm::DatabaseConnection;

use super::{ImportParams, stage};
use crate::store::imports;

/// What `eye-api import` imports.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The CSV (or, with `.ndjson`/`.jsonl`, NDJSON) file.
    pub file: PathBuf,
    /// The application the events belong to.
    #[arg(long)]
    pub app: String,
    /// `COLUMN=FIELD` (field: id, session_id, category, name, timestamp, data); repeatable.
    #[arg(long = "map", value_parser = parse_map)]
    pub map: Vec<(String, String)>,
    /// Natural key of rows without an id: columns, comma-separated.
    #[arg(long)]
    pub dedup_key: Option<String>,
    /// Compare the natural key ignoring case.
    #[arg(long)]
    pub case_insensitive: bool,
    /// Which of rows with one key wins.
    #[arg(long, value_enum, default_value_t = Keep::First)]
    pub keep: Keep,
    /// Stage and leave: do not wait for the import to end.
    #[arg(long)]
    pub no_wait: bool,
}

fn parse_map(text: &str) -> Result<(String, String), String> {
    let (column, field) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?}: expected COLUMN=FIELD"))?;
    match field {
        "id" | "session_id" | "category" | "name" | "timestamp" | "data" => {
            Ok((column.to_owned(), field.to_owned()))
        }
        other => Err(format!(
            "{other:?}: not an event field (id, session_id, category, name, timestamp, data)"
        )),
    }
}

impl ImportArgs {
    fn params(&self) -> ImportParams {
        let mut params = ImportParams {
            dedup_key: self.dedup_key.clone(),
            case_insensitive: self.case_insensitive,
            keep: Some(self.keep),
            ..ImportParams::default()
        };
        for (column, field) in &self.map {
            let slot = match field.as_str() {
                "id" => &mut params.id,
                "session_id" => &mut params.session_id,
                "category" => &mut params.category,
                "name" => &mut params.name,
                "timestamp" => &mut params.timestamp,
                _ => &mut params.data,
            };
            *slot = Some(column.clone());
        }
        params
    }

    fn format(&self) -> Format {
        match self.file.extension().and_then(|e| e.to_str()) {
            Some("ndjson" | "jsonl") => Format::Ndjson,
            _ => Format::Csv,
        }
    }
}

/// Stages the file, then shows the import's progress until it ends; fails if it did not end
/// `done`.
pub async fn run(db: &DatabaseConnection, args: ImportArgs) -> anyhow::Result<()> {
    let file = std::fs::File::open(&args.file)
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.file.display()))?;
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    let staged = stage(
        db,
        &args.app,
        &format!("cli:{user}"),
        args.params().spec(args.format()),
        file,
        // A local file: no upload limit.
        u64::MAX,
    )
    .await?;
    println!("import {} staged: {} rows", staged.id, staged.rows);
    if args.no_wait {
        return Ok(());
    }
    let bar = ProgressBar::new(staged.rows).with_style(ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} rows ({per_sec}) {msg}",
    )?);
    loop {
        let Some(import) = imports::get(db, staged.id, None).await? else {
            anyhow::bail!("import {} disappeared", staged.id);
        };
        bar.set_position(import.rows_read as u64);
        bar.set_message(format!(
            "{} stored, {} duplicates, {} refused",
            import.stored, import.duplicates, import.refused
        ));
        if import.finished() {
            bar.finish();
            println!(
                "import {}: {} (read {}, accepted {}, stored {}, duplicates {}, suppressed {}, refused {})",
                import.id,
                import.state,
                import.rows_read,
                import.accepted,
                import.stored,
                import.duplicates,
                import.suppressed,
                import.refused
            );
            if import.state != eye_core::import::STATE_DONE {
                anyhow::bail!(
                    "import {} ended {}: {}",
                    import.id,
                    import.state,
                    import.error.unwrap_or_default()
                );
            }
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
