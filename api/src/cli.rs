//! The `eye-api` command line: `serve`, the registry commands (`apps`, `tokens`) and
//! `token`, the shortcut `make generatetoken` uses.

use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use eye_core::settings::DatabaseSettings;
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use crate::apps;
use crate::auth::{Jwt, Scope};
use crate::settings::{ApiSettings, JwtSettings};
use crate::store;

#[derive(Debug, Parser)]
#[command(name = "eye-api", version, about = "The Eye's HTTP API")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Threads of the api's async runtime. Default: half the cores, at least one.
    // Measured with `make bench` on 2 cores shared with the broker, the worker and PostgreSQL
    // (ARCHITECTURE.md, "The hot path"): one thread gave the same durable closed-loop rate
    // (7.6-7.9k against 7.5-7.6k req/s) for 10-25 % less api CPU per event at 500-2,500/s and
    // 40 % fewer context switches; the no-publish ceiling is lower with it (13k against 18-20k).
    #[arg(long, env = "EYE_API_THREADS", global = true,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub threads: Option<u16>,
}

impl Cli {
    /// The runtime's worker threads: `--threads`, else half the cores (at least one).
    pub fn runtime_threads(&self) -> usize {
        self.threads.map_or_else(
            || std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1)),
            usize::from,
        )
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API.
    Serve(Box<ApiSettings>),
    /// Register, list and disable applications.
    Apps {
        #[command(subcommand)]
        command: AppsCommand,
        #[command(flatten)]
        database: DatabaseSettings,
    },
    /// Issue, list and revoke tokens.
    Tokens {
        #[command(subcommand)]
        command: TokensCommand,
        #[command(flatten)]
        database: DatabaseSettings,
    },
    /// Issue a token for an application, registering it first if needed; the token is the
    /// last line (`make generatetoken app=NAME`).
    Token {
        #[command(flatten)]
        args: TokenArgs,
        #[command(flatten)]
        database: DatabaseSettings,
    },
    /// Console users (the admin console at /admin signs them in with a password).
    Users {
        #[command(subcommand)]
        command: UsersCommand,
        #[command(flatten)]
        database: DatabaseSettings,
    },
    /// Export stored records as gzip JSON chunks and a descriptor, to S3 or a folder.
    Export {
        #[command(subcommand)]
        command: eye_exporter::cli::ExportCommand,
        #[command(flatten)]
        database: DatabaseSettings,
        #[command(flatten)]
        s3: eye_exporter::S3Settings,
    },
    /// Print the OpenAPI document (what `make openapi` writes to api/openapi.json).
    Openapi,
    /// Re-submit refused events through the queue with their original ids (after fixing a
    /// rule); the same as `POST /errors/replay`.
    Replay {
        /// Event ids to replay.
        #[arg(long = "event-id")]
        event_ids: Vec<uuid::Uuid>,
        /// Replay what this rule refused.
        #[arg(long)]
        validator: Option<String>,
        /// Only this application's.
        #[arg(long)]
        app: Option<String>,
        #[command(flatten)]
        database: DatabaseSettings,
        #[command(flatten)]
        amqp: eye_core::settings::AmqpSettings,
        #[command(flatten)]
        publish: crate::settings::PublishSettings,
    },
    /// Erase an application's events (and their dead letters) by session and/or time range:
    /// prints the dry run, asks to type the event count back, then confirms; a worker deletes
    /// in the background. The same as `POST /erasures` then `POST /erasures/{id}/confirm`.
    Erase {
        #[command(flatten)]
        args: EraseArgs,
        #[command(flatten)]
        database: DatabaseSettings,
    },
    /// Import a CSV or NDJSON file (staged like `POST /imports`; a worker runs it) and follow
    /// its progress.
    Import {
        #[command(flatten)]
        args: crate::imports::cli::ImportArgs,
        #[command(flatten)]
        database: DatabaseSettings,
    },
}

/// What `eye-api erase` erases.
#[derive(Debug, Args)]
pub struct EraseArgs {
    /// The application whose data goes.
    #[arg(long)]
    pub app: String,
    /// Only this session's events (its late arrivals are suppressed once confirmed).
    #[arg(long)]
    pub session: Option<Uuid>,
    #[arg(long)]
    pub category: Option<String>,
    #[arg(long)]
    pub name: Option<String>,
    /// Events at or after this time.
    #[arg(long)]
    pub from: Option<String>,
    /// Events before this time.
    #[arg(long)]
    pub to: Option<String>,
    /// Why (kept in the audit trail).
    #[arg(long)]
    pub reason: String,
    /// The dry run's event count, for scripts: confirms without asking when it matches.
    #[arg(long)]
    pub confirm_count: Option<i64>,
    /// Wait until the deletion is done, printing progress.
    #[arg(long)]
    pub wait: bool,
}

#[derive(Debug, Subcommand)]
pub enum AppsCommand {
    /// Register an application (its id is the tokens' `sub` and the events' `app_id`).
    Create {
        id: String,
        /// Display name; the id when not given.
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        limit: LimitArgs,
    },
    /// List the applications.
    List,
    /// Disable an application: its tokens are refused on every replica within seconds.
    Disable { id: String },
    /// Set an application's rate limit (without flags: back to the api's defaults).
    Limit {
        id: String,
        #[command(flatten)]
        limit: LimitArgs,
    },
}

/// A per-application override of `EYE_RATE_LIMIT_PER_SEC` / `EYE_RATE_LIMIT_BURST`.
#[derive(Debug, Args)]
pub struct LimitArgs {
    /// Events per second, across all replicas.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_per_sec: Option<u32>,
    /// Bucket size.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub burst: Option<u32>,
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Add a console user; the password is read from `EYE_CONSOLE_PASSWORD` or, without
    /// it, from the first line of standard input (never from the command line).
    Create { username: String },
}

#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// Issue a token for a registered, enabled application; the token is the last line.
    Issue(TokenArgs),
    /// List issued tokens (ids and metadata; tokens themselves are never stored).
    List {
        #[arg(long)]
        app: Option<String>,
    },
    /// Revoke a token by its id (`jti`): refused on every replica within seconds.
    Revoke { jti: Uuid },
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The application id the token speaks for (its `sub`).
    #[arg(long)]
    pub app: String,
    /// Scopes granted, comma-separated; an unknown scope is refused, named.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Scope::EventsWrite, Scope::EventsRead])]
    pub scopes: Vec<Scope>,
    /// Lifetime in seconds; without it the token does not expire.
    #[arg(long)]
    pub ttl_secs: Option<u64>,
    #[command(flatten)]
    pub jwt: JwtSettings,
}

/// Runs a registry command, printing its result; None if `command` is not one.
pub async fn run(command: Command) -> anyhow::Result<Option<Command>> {
    match command {
        Command::Apps { command, database } => {
            apps_command(&database.connect().await?, command).await?
        }
        Command::Tokens { command, database } => {
            tokens_command(&database.connect().await?, command).await?;
        }
        Command::Users {
            command: UsersCommand::Create { username },
            database,
        } => create_user(&database.connect().await?, &username).await?,
        Command::Token { args, database } => {
            let db = database.connect().await?;
            apps::create_app(&db, &args.app, None, (None, None)).await?;
            issue(&db, &args).await?;
        }
        Command::Export {
            command,
            database,
            s3,
        } => eye_exporter::cli::run(database.connect().await?, s3, command).await?,
        Command::Replay {
            event_ids,
            validator,
            app,
            database,
            amqp,
            publish,
        } => {
            let db = database.connect().await?;
            let publisher = crate::publisher::Publisher::start(amqp, &publish);
            let request = crate::replay::ReplayRequest {
                event_ids,
                validator,
                app_id: app,
            };
            // The broker link connects in the background; give it a moment before the
            // first publish (which would otherwise fail fast as "not connected").
            for _ in 0..50 {
                if publisher.is_ready() {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            let report = crate::replay::replay(&db, &publisher, &request, 1)
                .await
                .map_err(|e| anyhow::anyhow!("replay failed: {e}"))?;
            publisher.close().await;
            println!("replayed={} skipped={}", report.replayed, report.skipped);
        }
        Command::Erase { args, database } => {
            crate::erasure::cli::run(&database.connect().await?, args).await?;
        }
        Command::Import { args, database } => {
            crate::imports::cli::run(&database.connect().await?, args).await?;
        }
        other => return Ok(Some(other)),
    }
    Ok(None)
}

async fn apps_command(db: &DatabaseConnection, command: AppsCommand) -> anyhow::Result<()> {
    match command {
        AppsCommand::Create { id, name, limit } => {
            let created =
                apps::create_app(db, &id, name.as_deref(), (limit.rate_per_sec, limit.burst))
                    .await?;
            anyhow::ensure!(created, "application `{id}` already exists");
            println!("created application {id}");
        }
        AppsCommand::List => {
            println!("id\tname\tcreated_at\tdisabled_at\trate_per_sec\tburst");
            let show = |v: Option<i32>| v.map_or_else(|| "default".to_owned(), |v| v.to_string());
            for app in store::apps::list_apps(db).await? {
                let disabled = app
                    .disabled_at
                    .map_or_else(|| "-".to_owned(), |t| t.to_rfc3339());
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    app.id,
                    app.name,
                    app.created_at.to_rfc3339(),
                    disabled,
                    show(app.rate_per_sec),
                    show(app.rate_burst)
                );
            }
        }
        AppsCommand::Disable { id } => {
            apps::disable_app(db, &id).await?;
            println!("disabled application {id}");
        }
        AppsCommand::Limit { id, limit } => {
            apps::set_limit(db, &id, limit.rate_per_sec, limit.burst).await?;
            println!("rate limit of {id} updated");
        }
    }
    Ok(())
}

async fn tokens_command(db: &DatabaseConnection, command: TokensCommand) -> anyhow::Result<()> {
    match command {
        TokensCommand::Issue(args) => issue(db, &args).await?,
        TokensCommand::List { app } => {
            println!("jti\tapp\tkid\tscopes\tissued_at\texpires_at\trevoked_at");
            let show = |t: Option<chrono::DateTime<chrono::Utc>>| {
                t.map_or_else(|| "-".to_owned(), |t| t.to_rfc3339())
            };
            for t in store::apps::list_tokens(db, app.as_deref()).await? {
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    t.jti,
                    t.app_id,
                    t.kid,
                    t.scopes,
                    t.issued_at.to_rfc3339(),
                    show(t.expires_at),
                    show(t.revoked_at)
                );
            }
        }
        TokensCommand::Revoke { jti } => {
            anyhow::ensure!(
                store::apps::revoke_token(db, jti).await?,
                "no unrevoked token {jti}"
            );
            println!("revoked {jti}");
        }
    }
    Ok(())
}

/// Adds console user `username` with a password from the environment or standard input.
async fn create_user(db: &DatabaseConnection, username: &str) -> anyhow::Result<()> {
    let username = username.trim();
    anyhow::ensure!(
        (1..=64).contains(&username.chars().count()) && !username.chars().any(char::is_control),
        "usernames are 1 to 64 characters, no control characters"
    );
    let password = match std::env::var("EYE_CONSOLE_PASSWORD") {
        Ok(p) => p,
        Err(_) => {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            line.trim_end_matches(['\r', '\n']).to_owned()
        }
    };
    anyhow::ensure!(
        password.chars().count() >= 12,
        "the password must have at least 12 characters"
    );
    let hash = crate::admin::session::hash_password(&password)
        .map_err(|e| anyhow::anyhow!("cannot hash the password: {e}"))?;
    anyhow::ensure!(
        store::console::insert_user(db, username, &hash).await?,
        "console user `{username}` already exists"
    );
    println!("created console user {username}");
    Ok(())
}

/// Issues and prints a token: the application and jti first, the token last.
async fn issue(db: &DatabaseConnection, args: &TokenArgs) -> anyhow::Result<()> {
    let jwt = Jwt::new(&args.jwt)?;
    let app = args.app.trim();
    anyhow::ensure!(!app.is_empty(), "--app must not be empty");
    let scopes: Vec<&str> = args.scopes.iter().map(|s| s.as_str()).collect();
    let issued = apps::issue_token(
        db,
        &jwt,
        app,
        &scopes,
        args.ttl_secs.map(Duration::from_secs),
    )
    .await?;
    println!("application: {app}");
    println!("jti: {}", issued.jti);
    println!("{}", issued.token);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scopes_of(args: &[&str]) -> Result<Vec<Scope>, clap::Error> {
        let mut argv = vec!["eye-api", "token", "--app", "shop"];
        argv.extend_from_slice(args);
        match Cli::try_parse_from(argv)?.command {
            Command::Token { args, .. } => Ok(args.scopes),
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn scopes_default_to_write_and_read_and_take_the_known_ones() {
        assert_eq!(
            scopes_of(&[]).expect("defaults"),
            [Scope::EventsWrite, Scope::EventsRead]
        );
        assert_eq!(
            scopes_of(&["--scopes", "admin,events:read"]).expect("known"),
            [Scope::Admin, Scope::EventsRead]
        );
    }

    #[test]
    fn an_unknown_scope_is_refused_by_name() {
        let error = scopes_of(&["--scopes", "events:write,events:delete"])
            .expect_err("unknown scope")
            .to_string();
        assert!(error.contains("events:delete"), "{error}");
        assert!(
            error.contains("events:write, events:read, events:erase, exports:write, webhooks:write, webhooks:read, admin"),
            "{error}"
        );
    }
}
