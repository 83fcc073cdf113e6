//! The `eye-api` command line: `serve`, and `token` to mint a token for an application.

use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::auth::{Jwt, SCOPE_EVENTS_READ, SCOPE_EVENTS_WRITE};
use crate::settings::{ApiSettings, JwtSettings};

#[derive(Debug, Parser)]
#[command(name = "eye-api", version, about = "The Eye's HTTP API")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API.
    Serve(Box<ApiSettings>),
    /// Print a bearer token for an application; the token is the last line.
    Token(TokenArgs),
    /// Print the OpenAPI document (what `make openapi` writes to api/openapi.json).
    Openapi,
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The application id the token speaks for (its `sub`).
    #[arg(long)]
    pub app: String,
    /// Scopes granted, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [SCOPE_EVENTS_WRITE.to_owned(), SCOPE_EVENTS_READ.to_owned()])]
    pub scopes: Vec<String>,
    /// Lifetime in seconds; without it the token does not expire.
    #[arg(long)]
    pub ttl_secs: Option<u64>,
    #[command(flatten)]
    pub jwt: JwtSettings,
}

/// Mints the token `eye-api token` prints.
pub fn token(args: &TokenArgs) -> anyhow::Result<String> {
    args.jwt.check()?;
    let app = args.app.trim();
    anyhow::ensure!(!app.is_empty(), "--app must not be empty");
    let scopes: Vec<&str> = args.scopes.iter().map(String::as_str).collect();
    let token = Jwt::new(&args.jwt).issue(app, &scopes, args.ttl_secs.map(Duration::from_secs))?;
    Ok(token)
}
