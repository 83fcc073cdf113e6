//! Integration-test harness: every test gets its own freshly migrated PostgreSQL database
//! and its own broker namespace (exchange and queues), so tests run in parallel and in any
//! order against the real services. Resources are removed when the [`TestEnv`] is dropped,
//! even when the test panics.

mod api;
mod apps;
mod broker;
mod dispatcher;
mod json_api;
mod provider;
mod proxy;
mod receiver;
mod s3;
mod worker;

use std::time::Duration;

use clap::Parser;
use eye_core::entity::{dead_letter, event};
use eye_core::settings::DatabaseSettings;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder,
};
use uuid::Uuid;

pub use api::{TestApi, jwt, seed_event, token_for};
pub use dispatcher::{DISPATCHER_TEST_FLAGS, TestDispatcher};
pub use json_api::{Fault, JsonApiSim, json_fixture};
pub use provider::{
    FIXTURES, FetchCycle, ProviderSim, Reply, feed, fixture, free_local_addr, generated_feed,
    plan_xml,
};
pub use proxy::BrokerProxy;
pub use receiver::{Answer, Received, Receiver};
pub use s3::{MotoServer, S3Outage, StoredObject};
pub use worker::{TestWorker, WorkerProcess, built_binary};

/// PostgreSQL server the tests use (database name is replaced per test).
pub fn postgres_server_url() -> String {
    std::env::var("EYE_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// RabbitMQ the tests use.
pub fn amqp_url() -> String {
    std::env::var("EYE_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// A pool on `url`, opened the way the services open theirs
/// ([`DatabaseSettings::connect`]; the other settings from the environment or defaults).
pub async fn connect(url: &str) -> Result<DatabaseConnection, sea_orm::DbErr> {
    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        database: DatabaseSettings,
    }
    Wrapper::parse_from(["eye-testkit", "--database-url", url])
        .database
        .connect()
        .await
}

/// Signing secret of the tests' tokens.
pub const TEST_JWT_SECRET: &str = "test-secret-test-secret-test-secret-0123";

/// Applications every [`TestEnv`] registers, so that [`token_for`] tokens for them pass.
pub const TEST_APPS: &[&str] = &["test-app", "ops"];

/// One test's isolated world: a database and a broker namespace.
pub struct TestEnv {
    pub db_name: String,
    pub db_url: String,
    pub namespace: String,
    pub db: DatabaseConnection,
}

impl TestEnv {
    /// Creates and migrates a new database and picks a new namespace.
    pub async fn new() -> Self {
        let id = Uuid::new_v4().simple().to_string();
        let db_name = format!("eye_test_{id}");
        let db_url = format!("{}/{db_name}", postgres_server_url());
        eye_migrations::prepare(&db_url)
            .await
            .unwrap_or_else(|e| panic!("cannot create test database {db_name}: {e}"));
        let db = connect(&db_url).await.expect("connect to test database");
        for app in TEST_APPS {
            eye_api::apps::create_app(&db, app, None, (None, None))
                .await
                .expect("register test application");
        }
        Self {
            db_name,
            db_url,
            namespace: format!("test-{id}"),
            db,
        }
    }

    /// Common flags of both services.
    fn common_args(&self) -> Vec<String> {
        vec![
            "--amqp-url".into(),
            amqp_url(),
            "--amqp-namespace".into(),
            self.namespace.clone(),
            "--database-url".into(),
            self.db_url.clone(),
            "--log".into(),
            std::env::var("EYE_TEST_LOG").unwrap_or_else(|_| "warn".into()),
        ]
    }

    /// Api settings for this env, with `extra` flags appended (they win).
    pub fn api_settings(&self, extra: &[&str]) -> eye_api::ApiSettings {
        #[derive(Parser)]
        struct Wrapper {
            #[command(flatten)]
            settings: eye_api::ApiSettings,
        }
        let mut args = vec![
            "eye-api".to_owned(),
            "--http-addr".into(),
            "127.0.0.1:0".into(),
            // Apis of tests running side by side must not race for the metrics port.
            "--metrics-addr".into(),
            "127.0.0.1:0".into(),
        ];
        args.extend(self.common_args());
        args.extend(["--jwt-secret".into(), TEST_JWT_SECRET.into()]);
        // Load tests post thousands of events at once: limits are tested with per-app
        // overrides (`TestEnv::set_rate_limit`) or these flags.
        args.extend(["--rate-limit-per-sec".into(), "1000000".into()]);
        args.extend(["--rate-limit-burst".into(), "1000000".into()]);
        Wrapper::parse_from(with_overrides(args, extra)).settings
    }

    /// Worker settings for this env, with `extra` flags appended (they win).
    pub fn worker_settings(&self, extra: &[&str]) -> eye_worker::WorkerSettings {
        let mut args = vec!["eye-worker".to_owned()];
        args.extend(self.common_args());
        eye_worker::WorkerSettings::parse_from(with_overrides(args, extra))
    }

    /// Environment variables that point an `eye-worker` process at this env.
    pub fn worker_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AMQP_URL", amqp_url()),
            ("EYE_AMQP_NAMESPACE", self.namespace.clone()),
            ("DATABASE_URL", self.db_url.clone()),
            // Worker processes of tests running side by side must not race for the default
            // metrics port (the loser exits): each gets a free one.
            ("EYE_WORKER_METRICS_ADDR", "127.0.0.1:0".into()),
            (
                "EYE_LOG",
                std::env::var("EYE_TEST_LOG").unwrap_or_else(|_| "warn".into()),
            ),
        ]
    }

    pub async fn event_count(&self) -> u64 {
        event::Entity::find()
            .count(&self.db)
            .await
            .expect("count events")
    }

    pub async fn events(&self) -> Vec<event::Model> {
        event::Entity::find()
            .order_by_asc(event::Column::Timestamp)
            .all(&self.db)
            .await
            .expect("read events")
    }

    pub async fn event(&self, id: Uuid) -> Option<event::Model> {
        event::Entity::find()
            .filter(event::Column::Id.eq(id))
            .one(&self.db)
            .await
            .expect("read event")
    }

    pub async fn dead_letters(&self) -> Vec<dead_letter::Model> {
        dead_letter::Entity::find()
            .order_by_asc(dead_letter::Column::FirstSeen)
            .all(&self.db)
            .await
            .expect("read dead letters")
    }

    /// Polls until `count` reaches `expected` or `within` passes; returns the last count.
    pub async fn wait_for_events(&self, expected: u64, within: Duration) -> u64 {
        wait_for(expected, within, || self.event_count()).await
    }

    /// Polls until there are `expected` dead letters or `within` passes.
    pub async fn wait_for_dead_letters(&self, expected: u64, within: Duration) -> u64 {
        wait_for(expected, within, || async {
            dead_letter::Entity::find()
                .count(&self.db)
                .await
                .expect("count dead letters")
        })
        .await
    }

    /// Writes an event row directly (as a worker would), for read-side tests.
    pub async fn store_event(&self, row: StoredEvent<'_>) -> Uuid {
        let id = Uuid::now_v7();
        let at = row
            .timestamp
            .parse::<chrono::DateTime<chrono::Utc>>()
            .expect("timestamp");
        let model = event::ActiveModel {
            app_id: sea_orm::ActiveValue::Set(row.app_id.to_owned()),
            id: sea_orm::ActiveValue::Set(id),
            session_id: sea_orm::ActiveValue::Set(row.session_id),
            category: sea_orm::ActiveValue::Set(row.category.to_owned()),
            name: sea_orm::ActiveValue::Set(row.name.to_owned()),
            data: sea_orm::ActiveValue::Set(serde_json::json!({"host": "h", "path": "/"})),
            timestamp: sea_orm::ActiveValue::Set(at),
            source: sea_orm::ActiveValue::Set("http".into()),
            received_at: sea_orm::ActiveValue::Set(chrono::Utc::now()),
            stored_at: sea_orm::ActiveValue::NotSet,
        };
        event::Entity::insert(model)
            .exec_without_returning(&self.db)
            .await
            .expect("insert event");
        id
    }

    /// Refuses new connections to this test's database and cuts the open ones: a database
    /// outage for this test alone.
    pub async fn take_database_down(&self) {
        self.admin(&format!(
            "ALTER DATABASE \"{0}\" WITH ALLOW_CONNECTIONS false; \
             SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = '{0}' AND pid <> pg_backend_pid();",
            self.db_name
        ))
        .await;
    }

    pub async fn bring_database_back(&self) {
        self.admin(&format!(
            "ALTER DATABASE \"{}\" WITH ALLOW_CONNECTIONS true",
            self.db_name
        ))
        .await;
    }

    async fn admin(&self, sql: &str) {
        let admin = connect(&format!("{}/postgres", postgres_server_url()))
            .await
            .expect("connect as admin");
        admin
            .execute_unprepared(sql)
            .await
            .expect("admin statement");
        let _ = admin.close().await;
    }
}

/// `args` (flag/value pairs after the program name) with the flags of `extra` replaced by
/// the values given there.
pub(crate) fn with_overrides(args: Vec<String>, extra: &[&str]) -> Vec<String> {
    let mut out = vec![args[0].clone()];
    for pair in args[1..].chunks(2) {
        if !extra.contains(&pair[0].as_str()) {
            out.extend_from_slice(pair);
        }
    }
    out.extend(extra.iter().map(|s| (*s).to_owned()));
    out
}

/// An event row for [`TestEnv::store_event`].
#[derive(Debug, Clone, Copy)]
pub struct StoredEvent<'a> {
    pub app_id: &'a str,
    pub session_id: Uuid,
    pub category: &'a str,
    pub name: &'a str,
    /// RFC 3339.
    pub timestamp: &'a str,
}

async fn wait_for<F, Fut>(expected: u64, within: Duration, mut count: F) -> u64
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = u64>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let n = count().await;
        if n >= expected || tokio::time::Instant::now() >= deadline {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl Drop for TestEnv {
    /// Drops the database and the broker objects on a thread of its own, so it works from
    /// a panicking test too.
    fn drop(&mut self) {
        let db_name = self.db_name.clone();
        let namespace = self.namespace.clone();
        let cleanup = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                broker::delete_namespace(&namespace).await;
                if let Ok(admin) = connect(&format!("{}/postgres", postgres_server_url())).await {
                    let _ = admin
                        .execute_unprepared(&format!(
                            "DROP DATABASE IF EXISTS \"{db_name}\" WITH (FORCE)"
                        ))
                        .await;
                    let _ = admin.close().await;
                }
            });
        });
        let _ = cleanup.join();
    }
}

pub use broker::{poison_depth, publish_poison, publish_raw, queue_depth};
