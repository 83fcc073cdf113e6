//! `eye-migrate` as a user runs it.

use std::process::Command;

use eye_testkit::{built_binary, postgres_server_url};
use sea_orm::{ConnectionTrait, Database};

#[tokio::test]
async fn eye_migrate_creates_and_migrates_the_database_named_by_its_url_flag() {
    let name = format!("eye_test_{}", uuid::Uuid::new_v4().simple());
    let url = format!("{}/{name}", postgres_server_url());
    let out = Command::new(built_binary("eye-migrate"))
        .args(["-u", &url, "up"])
        // The flag wins over the environment.
        .env(
            "DATABASE_URL",
            format!("{}/eye_test_not_this_one", postgres_server_url()),
        )
        .output()
        .expect("run eye-migrate");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let db = Database::connect(&url).await.expect("the database exists");
    let tables = db
        .query_all_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT tablename FROM pg_tables WHERE tablename IN ('events', 'dead_letters')",
        ))
        .await
        .expect("query");
    assert_eq!(tables.len(), 2, "migrated");
    let _ = db.close().await;
    let admin = Database::connect(format!("{}/postgres", postgres_server_url()))
        .await
        .expect("admin");
    let exists = admin
        .query_all_raw(sea_orm::Statement::from_string(
            admin.get_database_backend(),
            "SELECT 1 FROM pg_database WHERE datname = 'eye_test_not_this_one'",
        ))
        .await
        .expect("query");
    assert!(exists.is_empty(), "DATABASE_URL was not used");
    let _ = admin
        .execute_unprepared(&format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
        .await;
}
