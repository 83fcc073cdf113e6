//! `eye-migrate`: creates the database when missing, then applies or inspects the migrations
//! (`up`, `down`, `status`, `fresh`, `refresh`, `reset`) against `-u/--database-url` or
//! `DATABASE_URL`.

use clap::Parser;
use sea_orm_cli::MigrateSubcommands;
use sea_orm_migration::cli::run_migrate;
use sea_orm_migration::sea_orm::Database;

/// The same default as the services' settings, so `make migrate` works with no `.env`.
const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/eye";

/// The Eye's schema migrations.
#[derive(Parser)]
#[command(name = "eye-migrate", version)]
struct Cli {
    /// Database to create if missing and migrate.
    #[arg(
        short = 'u',
        long,
        env = "DATABASE_URL",
        default_value = DEFAULT_DATABASE_URL,
        hide_env_values = true,
        global = true
    )]
    database_url: String,

    /// Show debug messages.
    #[arg(short, long, global = true)]
    verbose: bool,

    #[command(subcommand)]
    command: Option<MigrateSubcommands>,
}

#[tokio::main]
async fn main() {
    dotenvy::dotenv().ok();
    let cli = Cli::parse();
    if let Err(e) = eye_migrations::ensure_database(&cli.database_url).await {
        eprintln!("cannot create the database named by --database-url/DATABASE_URL: {e}");
        std::process::exit(1);
    }
    let db = match Database::connect(&cli.database_url).await {
        Ok(db) => db,
        Err(e) => {
            eprintln!("cannot connect to the database: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = run_migrate(eye_migrations::Migrator, &db, cli.command, cli.verbose).await {
        eprintln!("{e}");
        std::process::exit(1);
    }
}
