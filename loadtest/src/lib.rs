//! The Eye's load test: posts events to a running API at a fixed rate with goose, records
//! every id answered 202, then checks PostgreSQL that each one was stored or refused
//! exactly once, under its own id. A run that lost, doubled or could not decode anything
//! fails. `make chaos` runs it with hostile events and retries while it breaks the system.

pub mod audit;
pub mod batches;
pub mod hostile;
pub mod ledger;
pub mod payload;
pub mod retry;
pub mod scenario;
pub mod settings;
pub mod summary;
pub mod token;

use std::sync::Arc;

use anyhow::Context;

use crate::audit::Audit;
use crate::ledger::{Ledger, Tally};
pub use crate::settings::Settings;

/// The whole run: load, drain, verdict. Prints the summary and the ledger line, and returns
/// the tally so `main` can choose the exit code.
pub async fn run(settings: Settings) -> anyhow::Result<Tally> {
    let app_id = token::subject(settings.token.expose())?;
    // Connect before the load, so a wrong DATABASE_URL fails in a second, not after it.
    let audit = Audit::connect(settings.database_url.expose(), app_id.clone()).await?;

    let ledger = Arc::new(Ledger::default());
    let outcome = scenario::run(&settings, Arc::clone(&ledger))
        .await
        .context("running the load")?;
    let requests = summary::summarize(&outcome.metrics);
    for request in &requests {
        println!("{request}");
    }
    if let Some(line) = outcome.batches.line() {
        println!("{line}");
    }
    let achieved = requests.iter().map(|r| r.rate).sum();
    if let Some(note) = summary::shortfall_note(achieved, settings.rate) {
        println!("{note}");
    }
    println!("reports: {}", outcome.reports.join(" "));

    let (refused_at_edge, gave_up) = ledger.not_accepted();
    if refused_at_edge + gave_up > 0 {
        println!(
            "not accepted: {refused_at_edge} refused by the API (4xx), {gave_up} still unanswered \
             or 503 after {}s of retries (neither is in the ledger)",
            settings.retry_secs
        );
    }
    let accepted = ledger.accepted();
    eprintln!(
        "load done: {} accepted for app {app_id:?}; waiting up to {}s for the worker",
        accepted.len(),
        settings.drain_timeout_secs
    );
    let tally = audit.drain(&accepted, settings.drain_timeout()).await?;
    if tally.misjudged > 0 {
        println!(
            "note: {} events landed in the other table than meant (validation surprise)",
            tally.misjudged
        );
    }
    println!("{tally}");
    Ok(tally)
}
