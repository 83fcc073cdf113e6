//! Reads by client timestamp on the partitioned `events` (issue 18, part 3): the api reads
//! only the partitions that can hold a page (eye_api::store::partitions), and every page is
//! exactly what a read of the whole table returns, whatever the layout: timestamps that
//! overlap across partitions, an outlier years back, a partition without the application's
//! rows, and rows in a partition still open.

use chrono::{DateTime, Duration, Utc};
use eye_api::store::partitions::{PartitionBounds, Step};
use eye_testkit::{TestApi, TestEnv};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use serde_json::Value;
use uuid::Uuid;

async fn exec(db: &DatabaseConnection, sql: &str) {
    db.execute_unprepared(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// Ids as the database orders them, for `test-app` and `condition`.
async fn expected(db: &DatabaseConnection, condition: &str) -> Vec<Uuid> {
    let sql = format!(
        "SELECT id FROM events WHERE app_id = 'test-app' AND {condition} ORDER BY \"timestamp\", id"
    );
    db.query_all_raw(Statement::from_string(db.get_database_backend(), &sql))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .iter()
        .map(|row| row.try_get_by_index::<Uuid>(0).expect("id"))
        .collect()
}

/// Every page of `path`, following the cursors; checks each page's size.
async fn all_pages(api: &TestApi, path: &str, limit: usize) -> Vec<Uuid> {
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let join = if path.contains('?') { '&' } else { '?' };
        let url = match &cursor {
            Some(c) => format!("{path}{join}limit={limit}&cursor={c}"),
            None => format!("{path}{join}limit={limit}"),
        };
        let (status, page) = api.get(&url).await;
        assert_eq!(status, 200, "{url}: {page}");
        let data = page["data"].as_array().expect("data");
        ids.extend(data.iter().map(|e| {
            e["id"]
                .as_str()
                .and_then(|s| s.parse::<Uuid>().ok())
                .expect("id")
        }));
        match &page["next_cursor"] {
            Value::String(next) => {
                assert_eq!(data.len(), limit, "{url}: a page before the last is full");
                cursor = Some(next.clone());
            }
            _ => return ids,
        }
    }
}

/// `events_initial` up to 29 days ago, four weekly partitions up to yesterday (all over),
/// then the migration's open ones from today. Week 0 to 2 hold a week of `test-app` each (week 1
/// also late arrivals from week 0's days and one event from 2001), week 3 only another
/// application's; today's partition some of `test-app` dated in week 0's days and in 2030.
async fn lay_out(db: &DatabaseConnection) -> DateTime<Utc> {
    let today = Utc::now()
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .expect("midnight")
        .and_utc();
    let day = |n: i64| (today - Duration::days(n)).to_rfc3339();
    let mut sql = format!(
        "DROP TABLE events_initial; \
         CREATE TABLE events_initial PARTITION OF events FOR VALUES FROM (MINVALUE) TO ('{}');",
        day(29)
    );
    for w in 0..4 {
        sql += &format!(
            "CREATE TABLE events_w{w} PARTITION OF events FOR VALUES FROM ('{}') TO ('{}');",
            day(29 - 7 * w),
            day(22 - 7 * w)
        );
    }
    let insert = |app: &str, times: &str, stored: String| {
        format!(
            "INSERT INTO events (app_id, id, session_id, category, name, data, \"timestamp\", \
             source, received_at, stored_at) \
             SELECT '{app}', gen_random_uuid(), \
                    ('00000000-0000-4000-8000-00000000000' || (i % 3))::uuid, \
                    'c' || (i % 2), 'n' || (i % 3), '{{}}', {times}, 'http', now(), {stored} \
             FROM generate_series(0, 299) AS i;"
        )
    };
    for w in 0..3 {
        let times = format!(
            "timestamptz '2024-01-01' + interval '{} days' + i * interval '30 minutes'",
            7 * w
        );
        let stored = format!("timestamptz '{}' + interval '1 hour'", day(29 - 7 * w));
        sql += &insert("test-app", &times, stored);
    }
    sql += &insert(
        "other-app",
        "timestamptz '2024-01-20' + i * interval '1 minute'",
        format!("timestamptz '{}'", day(8)),
    );
    sql += "UPDATE events_w1 SET \"timestamp\" = \
             timestamptz '2024-01-06' + interval '1 minute' * (random() * 1000)::int \
         WHERE name = 'n2' AND category = 'c0'; \
         UPDATE events_w1 SET \"timestamp\" = '2001-01-01T00:00:00Z' \
         WHERE ctid = (SELECT ctid FROM events_w1 LIMIT 1); \
         INSERT INTO events (app_id, id, session_id, category, name, data, \"timestamp\", source, received_at) \
         SELECT 'test-app', gen_random_uuid(), '00000000-0000-4000-8000-000000000009', 'c1', 'n1', '{}', \
                t, 'http', now() \
         FROM unnest(ARRAY[timestamptz '2024-01-02T12:00:00Z', '2024-01-03T00:00:00Z', '2030-01-01T00:00:00Z']) AS t; \
         ANALYZE events;";
    exec(db, &sql).await;
    today
}

#[tokio::test]
async fn pages_read_over_pruned_partitions_are_exactly_the_whole_tables() {
    let env = TestEnv::new().await;
    let today = lay_out(&env.db).await;
    let api = env.spawn_api().await;
    let session = |n: u8| format!("00000000-0000-4000-8000-00000000000{n}");
    let cases = [
        ("/events".to_owned(), "true".to_owned(), 50),
        (
            format!("/sessions/{}/events", session(0)),
            format!("session_id = '{}'", session(0)),
            7,
        ),
        (
            format!("/sessions/{}/events", session(9)),
            format!("session_id = '{}'", session(9)),
            1,
        ),
        (
            "/events?category=c1&name=n1&from=2024-01-05T00:00:00Z".to_owned(),
            "category = 'c1' AND name = 'n1' AND \"timestamp\" >= '2024-01-05T00:00:00Z'"
                .to_owned(),
            7,
        ),
        (
            "/events?from=2024-01-06T00:00:00Z&to=2024-01-09T00:00:00Z".to_owned(),
            "\"timestamp\" >= '2024-01-06T00:00:00Z' AND \"timestamp\" < '2024-01-09T00:00:00Z'"
                .to_owned(),
            11,
        ),
        (
            "/events?from=2025-01-01T00:00:00Z".to_owned(),
            "\"timestamp\" >= '2025-01-01T00:00:00Z'".to_owned(),
            2,
        ),
    ];
    for (path, condition, limit) in cases {
        let want = expected(&env.db, &condition).await;
        assert!(!want.is_empty(), "{path}: the layout has rows for it");
        // Twice: the first read learns the partitions' bounds, the second uses them.
        for round in 0..2 {
            assert_eq!(
                all_pages(&api, &path, limit).await,
                want,
                "{path}, round {round}"
            );
        }
    }

    // What the api planned for a first page: week 0 and 1 (which reaches back to 2001), the
    // open ones; not events_initial nor week 3 (no row of test-app), nor week 2 (later).
    let steps = PartitionBounds::default()
        .plan(&env.db, "test-app", None, None)
        .await;
    let day = |n: i64| Some(today - Duration::days(n));
    assert_eq!(steps.len(), 2, "{steps:?}");
    assert_eq!(
        steps[0].stored_in,
        Some(vec![(day(29), day(15)), (day(1), None)]),
        "{steps:?}"
    );
    assert!(steps[0].until.is_some() && steps[1].after == steps[0].until);
    assert_eq!(
        steps[1],
        Step {
            stored_in: Some(vec![(day(15), day(8)), (day(1), None)]),
            until: None,
            after: steps[0].until,
        }
    );
}
