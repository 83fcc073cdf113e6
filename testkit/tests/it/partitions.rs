//! `events` partitioned by `stored_at` (issue 18, part 3): one row per (application, id)
//! across partitions, partitions made ahead, retention that drops whole partitions without
//! holding inserts or reads, and the migration of a table that already holds rows.

use std::time::Duration;

use chrono::{DateTime, Utc};
use eye_migrations::Migrator;
use eye_testkit::{TestEnv, postgres_server_url};
use eye_worker::storage::Store;
use eye_worker::storage::partitions::Policy;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement, TransactionTrait};
use sea_orm_migration::MigratorTrait;
use serde_json::{Value, json};
use uuid::Uuid;

const WITHIN: Duration = Duration::from_secs(30);

fn envelope(id: Uuid) -> Value {
    json!({
        "app_id": "test-app", "source": "http", "received_at": Utc::now(),
        "event": {"id": id, "session_id": Uuid::new_v4(), "category": "page",
                  "name": "pageview", "data": {"host": "h", "path": "/"},
                  "timestamp": "2021-01-01T09:15:27Z"}
    })
}

async fn publish(env: &TestEnv, envelopes: Vec<Value>) {
    let message = json!({"v": "1", "envelopes": envelopes});
    eye_testkit::publish_raw(&env.namespace, &serde_json::to_vec(&message).expect("json")).await;
}

async fn exec(db: &DatabaseConnection, sql: &str) {
    db.execute_unprepared(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

async fn scalar(db: &DatabaseConnection, sql: &str) -> String {
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .expect("a row");
    row.try_get_by_index::<String>(0).expect("text")
}

/// The partitions of `events` holding event `id`, by name.
async fn home_of(db: &DatabaseConnection, id: Uuid) -> String {
    scalar(
        db,
        &format!("SELECT coalesce(string_agg(tableoid::regclass::text, ','), '') FROM events WHERE id = '{id}'"),
    )
    .await
}

#[tokio::test]
async fn an_id_sent_again_a_month_later_in_another_partition_is_stored_once() {
    let env = TestEnv::new().await;
    let _api = env.spawn_api().await;
    let _worker = env.spawn_worker().await;
    let id = Uuid::new_v4();
    publish(&env, vec![envelope(id)]).await;
    assert_eq!(env.wait_for_events(1, WITHIN).await, 1);
    let today = home_of(&env.db, id).await;
    assert!(
        today.starts_with("events_p"),
        "stored in today's partition: {today}"
    );

    // A month passes: the row (and its id) now date from 31 days ago, in an older partition.
    exec(
        &env.db,
        &format!(
            "UPDATE events SET stored_at = stored_at - interval '31 days' WHERE id = '{id}'; \
             UPDATE event_ids SET stored_at = stored_at - interval '31 days' WHERE id = '{id}'"
        ),
    )
    .await;
    assert_eq!(home_of(&env.db, id).await, "events_initial");

    // The same id again (a client retry, a replay), with a new event beside it.
    let other = Uuid::new_v4();
    publish(&env, vec![envelope(id), envelope(other)]).await;
    assert_eq!(env.wait_for_events(2, WITHIN).await, 2);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(env.event_count().await, 2, "one row per id");
    assert_eq!(
        home_of(&env.db, id).await,
        "events_initial",
        "the first one kept"
    );
    assert_eq!(home_of(&env.db, other).await, today);
    assert_eq!(eye_testkit::queue_depth(&env.namespace).await, 0);

    // What event_ids prevented: the primary key (app_id, id, stored_at) alone would have
    // taken the second copy into today's partition.
    exec(
        &env.db,
        &format!(
            "INSERT INTO events SELECT app_id, id, session_id, category, name, data, \
             \"timestamp\", source, received_at, now() FROM events WHERE id = '{id}'"
        ),
    )
    .await;
    assert_eq!(
        home_of(&env.db, id).await,
        format!("events_initial,{today}")
    );
}

/// Inserts an event and its id as the worker would, stored at `at`.
async fn insert_at(db: &DatabaseConnection, id: Uuid, at: DateTime<Utc>) {
    exec(
        db,
        &format!(
            "INSERT INTO event_ids (app_id, id, stored_at) VALUES ('test-app', '{id}', '{at}'); \
             INSERT INTO events (app_id, id, session_id, category, name, data, \"timestamp\", \
             source, received_at, stored_at) VALUES ('test-app', '{id}', gen_random_uuid(), \
             'page', 'pageview', '{{}}', now(), 'http', now(), '{at}')",
            at = at.to_rfc3339()
        ),
    )
    .await;
}

async fn count(db: &DatabaseConnection, sql: &str) -> i64 {
    scalar(db, &format!("SELECT ({sql})::text"))
        .await
        .parse()
        .expect("a count")
}

#[tokio::test]
async fn retention_drops_whole_old_partitions_without_holding_inserts_or_reads() {
    let env = TestEnv::new().await;
    let store = Store::new(env.db.clone(), Vec::new());
    let now = Utc::now();
    let keep_all = Policy {
        width_days: 7,
        ahead_days: 70,
        retention_days: None,
    };
    let made = store
        .maintain_partitions(keep_all, now)
        .await
        .expect("maintenance")
        .expect("the lease");
    assert!(
        made.created.len() >= 10,
        "weekly partitions ahead: {made:?}"
    );
    let partitions = store.partitions().await.expect("partitions");
    for pair in partitions.windows(2) {
        assert_eq!(pair[0].to_at, pair[1].from_at, "contiguous: {partitions:?}");
    }
    let last = partitions.last().and_then(|p| p.to_at).expect("bounded");
    assert!(last >= now + chrono::Duration::days(70));
    // Run again: nothing left to make.
    let again = store.maintain_partitions(keep_all, now).await.expect("run");
    assert_eq!(again.map(|r| r.created.len()), Some(0));

    let old = Uuid::new_v4();
    let recent = Uuid::new_v4();
    insert_at(&env.db, old, now).await;
    insert_at(&env.db, recent, now + chrono::Duration::days(40)).await;

    // A reader in the middle of a transaction that has read `events`.
    let reader = env.db.begin().await.expect("begin");
    reader
        .execute_unprepared("SELECT count(*) FROM events")
        .await
        .expect("read");

    // 35 days from now with 30 days of retention: everything stored before about
    // now + 5 days goes, the partition of `recent` stays.
    let later = now + chrono::Duration::days(35);
    let retention = Policy {
        retention_days: Some(30),
        ..keep_all
    };
    let maintaining = {
        let store = store.clone();
        tokio::spawn(async move { store.maintain_partitions(retention, later).await })
    };
    // DETACH ... CONCURRENTLY waits for the reader; inserts and reads do not wait for it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !maintaining.is_finished(),
        "the detach waits for the open reader"
    );
    let meanwhile = Uuid::new_v4();
    tokio::time::timeout(
        Duration::from_secs(3),
        insert_at(&env.db, meanwhile, now + chrono::Duration::days(41)),
    )
    .await
    .expect("an insert is not held by the detach");
    let seen = tokio::time::timeout(
        Duration::from_secs(3),
        count(
            &env.db,
            "SELECT count(*) FROM events WHERE app_id = 'test-app'",
        ),
    )
    .await
    .expect("a read is not held by the detach");
    assert!(seen >= 2);
    reader.commit().await.expect("the reader ends");

    let report = tokio::time::timeout(WITHIN, maintaining)
        .await
        .expect("the maintenance ends")
        .expect("join")
        .expect("maintenance")
        .expect("the lease");
    assert!(
        report.dropped.contains(&"events_initial".to_owned()),
        "{report:?}"
    );
    assert!(report.ids_forgotten >= 1, "{report:?}");
    // Gone with its partition, and its id forgotten: the same id could be stored again.
    assert_eq!(home_of(&env.db, old).await, "");
    assert_eq!(
        count(
            &env.db,
            &format!("SELECT count(*) FROM event_ids WHERE id = '{old}'")
        )
        .await,
        0
    );
    // Kept, with their ids.
    assert!(home_of(&env.db, recent).await.starts_with("events_p"));
    assert!(home_of(&env.db, meanwhile).await.starts_with("events_p"));
    assert_eq!(
        count(&env.db, "SELECT count(*) FROM event_ids").await,
        2,
        "the ids of kept events stay"
    );
    // No partition left ends at or before the cutoff, and none was left detached halfway.
    let cutoff = later - chrono::Duration::days(30);
    for p in store.partitions().await.expect("partitions") {
        assert!(p.to_at.is_some_and(|to| to > cutoff), "{p:?}");
        assert!(!p.detach_pending);
    }
    assert_eq!(
        count(
            &env.db,
            "SELECT count(*) FROM pg_tables WHERE tablename = 'events_initial'"
        )
        .await,
        0,
        "dropped, not only detached"
    );
}

#[tokio::test]
async fn a_second_worker_skips_maintenance_while_one_holds_the_lease() {
    let env = TestEnv::new().await;
    let store = Store::new(env.db.clone(), Vec::new());
    exec(
        &env.db,
        "UPDATE partition_maintenance SET lease_until = now() + interval '1 minute'",
    )
    .await;
    let policy = Policy {
        width_days: 1,
        ahead_days: 30,
        retention_days: Some(1),
    };
    let run = store.maintain_partitions(policy, Utc::now()).await;
    assert_eq!(run.expect("no error"), None);
}

#[tokio::test]
async fn the_migration_turns_a_table_with_rows_into_its_first_partition() {
    let name = format!("eye_test_{}", Uuid::new_v4().simple());
    let url = format!("{}/{name}", postgres_server_url());
    eye_migrations::ensure_database(&url).await.expect("create");
    let db = Database::connect(&url).await.expect("connect");
    let before = Migrator::migrations()
        .iter()
        .position(|m| m.name() == "m20261203_233000_partitioned_events")
        .expect("the partitioning migration") as u32;
    Migrator::up(&db, Some(before))
        .await
        .expect("the schema before");
    exec(
        &db,
        "INSERT INTO events (app_id, id, session_id, category, name, data, \"timestamp\", \
         source, received_at, stored_at) \
         SELECT 'a' || (i % 3), gen_random_uuid(), gen_random_uuid(), 'page', 'view', '{}', \
                now() - i * interval '1 minute', 'http', now(), now() - i * interval '1 hour' \
         FROM generate_series(1, 2000) AS i",
    )
    .await;
    let ids_before = scalar(
        &db,
        "SELECT md5(string_agg(app_id || id::text, ',' ORDER BY app_id, id)) FROM events",
    )
    .await;
    Migrator::up(&db, None).await.expect("the partitioning");

    assert_eq!(
        scalar(&db, "SELECT pg_get_partkeydef('events'::regclass)").await,
        "RANGE (stored_at)"
    );
    let after = |table: &str| {
        format!("SELECT md5(string_agg(app_id || id::text, ',' ORDER BY app_id, id)) FROM {table}")
    };
    assert_eq!(scalar(&db, &after("events")).await, ids_before, "every row");
    assert_eq!(
        scalar(&db, &after("event_ids")).await,
        ids_before,
        "every id"
    );
    assert_eq!(
        count(&db, "SELECT count(*) FROM events_initial").await,
        2000,
        "the old table is the first partition"
    );
    // Its read indexes were adopted, not built again beside themselves.
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM pg_indexes WHERE tablename = 'events_initial'"
        )
        .await,
        5,
        "the primary key, three read indexes and the BRIN"
    );
    let _ = db.close().await;
    let admin = Database::connect(format!("{}/postgres", postgres_server_url()))
        .await
        .expect("admin");
    let _ = admin
        .execute_unprepared(&format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
        .await;
}
