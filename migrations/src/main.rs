//! `eye-migrate`: creates the database when missing, then runs sea-orm-migration's command
//! line (`up`, `down`, `status`, `fresh`, ...) against `DATABASE_URL`.

use sea_orm_migration::cli;
use sea_orm_migration::sea_orm::Database;

/// The same default as the services' settings, so `make migrate` works with no `.env`.
const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/eye";

#[tokio::main]
async fn main() {
    dotenvy::dotenv().ok();
    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_owned());
    if let Err(e) = eye_migrations::ensure_database(&url).await {
        eprintln!("cannot create the database named in DATABASE_URL: {e}");
        std::process::exit(1);
    }
    cli::run_cli_with_custom_connection(eye_migrations::Migrator, async || {
        Database::connect(&url).await
    })
    .await;
}
