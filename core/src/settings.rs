//! Settings shared by the services, read from the environment (or flags) with defaults that
//! work on a development machine. Each service flattens these into its own settings struct,
//! so a bad value stops the service at start with the variable named.

use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::queue::Topology;
use crate::secret::Secret;

/// RabbitMQ connection and naming.
#[derive(Debug, Clone, Args)]
pub struct AmqpSettings {
    /// AMQP URL of RabbitMQ, or several separated by commas (the nodes of a cluster): a
    /// connection goes to the first that answers, the next one after a failure (holds the
    /// password, so it is never logged).
    #[arg(
        id = "amqp_url",
        long = "amqp-url",
        env = "AMQP_URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f",
        // `--help` must not print the password it holds.
        hide_env_values = true
    )]
    pub url: Secret<String>,
    /// Prefix of exchange and queue names; deployments sharing a broker use different ones.
    #[arg(
        id = "amqp_namespace",
        long = "amqp-namespace",
        env = "EYE_AMQP_NAMESPACE",
        default_value = "eye"
    )]
    pub namespace: String,
    /// Seconds allowed for connecting to the broker before trying again.
    #[arg(
        id = "amqp_connect_timeout",
        long = "amqp-connect-timeout",
        env = "EYE_AMQP_CONNECT_TIMEOUT_SECS",
        default_value_t = 5
    )]
    pub connect_timeout_secs: u64,
    /// Replicas of a new quorum queue (`x-quorum-initial-group-size`); unset, RabbitMQ puts
    /// one on every node of the cluster. Only a queue's first declaration uses it.
    #[arg(
        id = "amqp_quorum_size",
        long = "amqp-quorum-size",
        env = "EYE_AMQP_QUORUM_SIZE"
    )]
    pub quorum_size: Option<u16>,
}

impl AmqpSettings {
    pub fn topology(&self) -> Topology {
        Topology::new(&self.namespace).with_quorum_size(self.quorum_size)
    }

    /// The broker URLs, in the order given (at least one: an empty setting gives `""`, which
    /// fails at connect with the broker's own error).
    pub fn urls(&self) -> Vec<&str> {
        let urls: Vec<&str> = self
            .url
            .expose()
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .collect();
        if urls.is_empty() { vec![""] } else { urls }
    }

    pub fn connect_timeout(&self) -> Duration {
        Duration::from_secs(self.connect_timeout_secs)
    }
}

/// PostgreSQL connection.
#[derive(Debug, Clone, Args)]
pub struct DatabaseSettings {
    /// PostgreSQL URL (may hold a password, so it is never logged).
    #[arg(
        id = "database_url",
        long = "database-url",
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/eye",
        hide_env_values = true
    )]
    pub url: Secret<String>,
    /// Connections in the pool; a worker needs one per batch in flight, the api few.
    #[arg(
        id = "database_max_connections",
        long = "database-max-connections",
        env = "EYE_DATABASE_MAX_CONNECTIONS",
        default_value_t = 8
    )]
    pub max_connections: u32,
    /// Seconds to wait for a pooled connection before failing the operation.
    #[arg(
        id = "database_acquire_timeout",
        long = "database-acquire-timeout",
        env = "EYE_DATABASE_ACQUIRE_TIMEOUT_SECS",
        default_value_t = 5
    )]
    pub acquire_timeout_secs: u64,
}

impl DatabaseSettings {
    /// The pool every service uses: sized and bounded by these settings, and lazy, so a
    /// service starts (and reports itself not ready) while the database is down.
    pub fn connect_options(&self) -> sea_orm::ConnectOptions {
        let mut options = sea_orm::ConnectOptions::new(self.url.expose().clone());
        options
            .max_connections(self.max_connections)
            .acquire_timeout(Duration::from_secs(self.acquire_timeout_secs))
            .connect_lazy(true)
            .sqlx_logging(false);
        options
    }

    /// [`Self::connect_options`] for a pool of its own: `connections` connections whose
    /// statements PostgreSQL cancels after `statement_timeout` (so one slow query cannot hold
    /// a connection that others wait for).
    pub fn pool_options(
        &self,
        connections: u32,
        statement_timeout: Duration,
    ) -> sea_orm::ConnectOptions {
        let millis = statement_timeout.as_millis();
        let mut options = self.connect_options();
        options
            .max_connections(connections)
            .map_sqlx_postgres_opts(move |opts| {
                opts.options([("statement_timeout", format!("{millis}ms"))])
            });
        options
    }

    /// Opens the pool of [`Self::connect_options`]: lazily, so it fails only on a malformed
    /// URL; an unreachable database shows on the first query.
    pub async fn connect(&self) -> Result<sea_orm::DatabaseConnection, sea_orm::DbErr> {
        sea_orm::Database::connect(self.connect_options()).await
    }
}

/// How logs are written.
#[derive(Debug, Clone, Args)]
pub struct TelemetrySettings {
    /// `pretty` for people, `json` for log collectors.
    #[arg(id = "log_format", long = "log-format", env = "EYE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Pretty)]
    pub log_format: LogFormat,
    /// tracing-subscriber filter, e.g. `info` or `eye_worker=debug,info`.
    #[arg(id = "log", long = "log", env = "EYE_LOG", default_value = "info")]
    pub filter: String,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Pretty,
    Json,
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        amqp: AmqpSettings,
    }

    fn amqp(args: &[&str]) -> AmqpSettings {
        Wrapper::parse_from(std::iter::once("t").chain(args.iter().copied())).amqp
    }

    #[test]
    fn one_url_is_one_broker() {
        let a = amqp(&["--amqp-url", "amqp://u:p@h:5672/%2f"]);
        assert_eq!(a.urls(), ["amqp://u:p@h:5672/%2f"]);
    }

    #[test]
    fn commas_separate_the_nodes_of_a_cluster() {
        let a = amqp(&[
            "--amqp-url",
            "amqp://a:5701/%2f, amqp://a:5702/%2f,,amqp://a:5703/%2f",
        ]);
        assert_eq!(
            a.urls(),
            [
                "amqp://a:5701/%2f",
                "amqp://a:5702/%2f",
                "amqp://a:5703/%2f"
            ]
        );
    }

    #[test]
    fn the_quorum_size_reaches_the_topology_only_when_set() {
        assert_eq!(amqp(&[]).topology().quorum_size, None);
        let a = amqp(&["--amqp-quorum-size", "3"]);
        assert_eq!(a.topology().quorum_size, Some(3));
    }
}
