//! `eye-api erase`: the dry run, the count typed back, the confirmation, and (`--wait`) the
//! progress until done. Straight on the database, like the other registry commands.

use std::io::{BufRead, Write};
use std::time::Duration;

use eye_core::erasure::STATUS_DONE;
use sea_orm::DatabaseConnection;

use super::ErasureRequest;
use crate::cli::EraseArgs;
use crate::store::erasures::ErasureOut;

/// Runs the command; an unconfirmed erasure stays pending (and harmless).
pub async fn run(db: &DatabaseConnection, args: EraseArgs) -> anyhow::Result<()> {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into());
    let by = format!("cli:{user}");
    let request = ErasureRequest {
        app_id: Some(args.app.clone()),
        session_id: args.session,
        category: args.category,
        name: args.name,
        from: args.from,
        to: args.to,
        reason: args.reason,
    };
    let pending = super::request(db, &request, &args.app, true, &by)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let about = if pending.dry_run.estimated {
        "about "
    } else {
        ""
    };
    println!(
        "erasure {}: {about}{} events and {} dead letters of {} match",
        pending.id, pending.dry_run.events, pending.dry_run.dead_letters, pending.app_id
    );
    let expected = pending.dry_run.events;
    let typed = match args.confirm_count {
        Some(n) => n.to_string(),
        None => {
            print!("type the number of events ({expected}) to erase them: ");
            std::io::stdout().flush()?;
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line)?;
            line.trim().to_owned()
        }
    };
    anyhow::ensure!(
        typed == expected.to_string(),
        "not confirmed ({typed:?} is not {expected}); erasure {} stays pending",
        pending.id
    );
    let confirmed = super::confirm(db, pending.id, None, &by)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!("erasure {}: {}", confirmed.id, confirmed.status);
    if args.wait {
        wait(db, confirmed).await?;
    }
    Ok(())
}

async fn wait(db: &DatabaseConnection, mut erasure: ErasureOut) -> anyhow::Result<()> {
    while erasure.status != STATUS_DONE {
        tokio::time::sleep(Duration::from_millis(500)).await;
        erasure = super::get(db, erasure.id, None)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        println!(
            "{}: deleted {} events, {} dead letters; suppressed {}",
            erasure.status,
            erasure.deleted.events,
            erasure.deleted.dead_letters,
            erasure.suppressed
        );
    }
    Ok(())
}
