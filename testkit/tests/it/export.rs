//! Feed exports (issue 17) against the real PostgreSQL, a local folder and a moto S3 server
//! started on loopback by the harness: chunk counts and sizes, gzip content equal to the
//! rows, descriptor checksums, HTTP attributes, nothing published when S3 goes away
//! mid-export, a resume that writes identical objects, two schedulers racing for one slot,
//! and filters.

use std::io::Read;
use std::time::Duration;

use eye_core::entity::event;
use eye_exporter::{
    Descriptor, Destination, EventFilter, ExportSpec, Exporter, Latest, Progress, S3Settings,
    Shape, runs, schedule,
};
use eye_testkit::{MotoServer, S3Outage, TestEnv};
use sea_orm::{ConnectionTrait, EntityTrait, QueryOrder};
use sha2::{Digest, Sha256};

/// `n` events over two applications, three categories and five names, one minute apart
/// from 2026-01-01.
async fn seed_events(env: &TestEnv, n: u32) {
    env.db
        .execute_unprepared(&format!(
            "INSERT INTO events (app_id, id, session_id, category, name, data, \"timestamp\", source, received_at) \
             SELECT CASE WHEN i % 2 = 0 THEN 'test-app' ELSE 'ops' END, gen_random_uuid(), gen_random_uuid(), \
                    (ARRAY['page', 'click', 'buy'])[i % 3 + 1], 'n' || (i % 5), jsonb_build_object('i', i, 'text', repeat('x', i % 40)), \
                    '2026-01-01T00:00:00Z'::timestamptz + i * interval '1 minute', 'http', now() \
             FROM generate_series(1, {n}) AS i"
        ))
        .await
        .expect("seed events");
}

fn spec(name: &str, shape: Shape, chunk_size: u32, destination: Destination) -> ExportSpec {
    ExportSpec {
        name: name.into(),
        shape,
        filter: EventFilter::default(),
        chunk_size,
        destination,
        url_base: None,
    }
}

fn s3_settings(endpoint: &str) -> S3Settings {
    // moto checks no signature; object_store needs some credentials to sign with.
    S3Settings {
        endpoint: Some(endpoint.into()),
        access_key_id: Some("test".into()),
        secret_access_key: Some("test".into()),
        region: "us-east-1".into(),
        max_retries: 0,
        timeout_secs: 5,
    }
}

fn exporter(env: &TestEnv, s3: S3Settings) -> Exporter {
    Exporter::new(env.db.clone(), s3)
}

/// Creates a run of `spec` and runs it; the run as stored afterwards.
async fn export(exporter: &Exporter, spec: &ExportSpec) -> runs::Run {
    let run = runs::create(&exporter.db, spec, None)
        .await
        .expect("create export");
    exporter
        .run_by_id(run.id, &|_| {})
        .await
        .expect("export runs")
        .expect("export claimed")
}

fn gunzip(bytes: &[u8]) -> serde_json::Value {
    let mut text = String::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_string(&mut text)
        .expect("gzip");
    serde_json::from_str(&text).expect("json")
}

fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn tempdir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "eye-export-{tag}-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

#[tokio::test]
async fn folder_export_writes_chunks_equal_to_rows_then_the_descriptor() {
    let env = TestEnv::new().await;
    seed_events(&env, 250).await;
    let dir = tempdir("folder");
    let destination = Destination::Folder {
        path: dir.display().to_string(),
    };
    let run = export(
        &exporter(&env, S3Settings::default()),
        &spec("events", Shape::Events, 100, destination),
    )
    .await;

    assert_eq!(run.state, "succeeded");
    assert_eq!((run.files_written, run.records), (3, 250));
    let folder = dir.join("events").join(&run.generation);
    let descriptor: Descriptor =
        serde_json::from_slice(&std::fs::read(folder.join("descriptor.json")).expect("descriptor"))
            .expect("descriptor json");
    assert_eq!(descriptor.name, "eye.events");
    assert_eq!(
        descriptor.data_file,
        [
            "data-00001.json.gz",
            "data-00002.json.gz",
            "data-00003.json.gz"
        ]
    );
    assert_eq!(descriptor.records, 250);
    assert_eq!(descriptor.generation_timestamp, run.snapshot_at.timestamp());
    let counts: Vec<u32> = descriptor.files.iter().map(|f| f.records).collect();
    assert_eq!(counts, [100, 100, 50]);

    let rows = event::Entity::find()
        .order_by_asc(event::Column::AppId)
        .order_by_asc(event::Column::Id)
        .all(&env.db)
        .await
        .expect("rows");
    let mut exported = Vec::new();
    for file in &descriptor.files {
        let bytes = std::fs::read(folder.join(&file.file_name)).expect("data file");
        assert_eq!(bytes.len() as u64, file.bytes, "{}", file.file_name);
        assert_eq!(sha(&bytes), file.sha256, "{}", file.file_name);
        let body = gunzip(&bytes);
        let data = body["data"].as_array().expect("data array");
        assert_eq!(data.len() as u32, file.records);
        exported.extend(data.iter().cloned());
    }
    assert_eq!(exported.len(), rows.len());
    for (record, row) in exported.iter().zip(&rows) {
        assert_eq!(record["app_id"], row.app_id.as_str());
        assert_eq!(record["id"], row.id.to_string());
        assert_eq!(record["session_id"], row.session_id.to_string());
        assert_eq!(record["category"], row.category.as_str());
        assert_eq!(record["name"], row.name.as_str());
        assert_eq!(record["data"], row.data);
        let at: chrono::DateTime<chrono::Utc> = record["timestamp"]
            .as_str()
            .expect("timestamp")
            .parse()
            .expect("rfc3339");
        assert_eq!(at, row.timestamp);
    }
    let latest: Latest =
        serde_json::from_slice(&std::fs::read(dir.join("events/latest.json")).expect("latest"))
            .expect("latest json");
    assert_eq!(
        latest.descriptor,
        format!("{}/descriptor.json", run.generation)
    );
    let files = runs::files(&env.db, run.id).await.expect("file rows");
    assert_eq!(files.len(), 3);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn s3_export_sets_attributes_and_applies_filters() {
    let env = TestEnv::new().await;
    seed_events(&env, 600).await;
    let moto = MotoServer::start().await;
    moto.create_bucket("feeds").await;
    let mut spec = spec(
        "clicks",
        Shape::Events,
        40,
        Destination::S3 {
            bucket: "feeds".into(),
            prefix: "eye/prod".into(),
        },
    );
    spec.filter = EventFilter {
        application: Some("test-app".into()),
        category: Some("click".into()),
        name: None,
        from: Some("2026-01-01T01:00:00Z".parse().expect("time")),
        to: Some("2026-01-01T08:00:00Z".parse().expect("time")),
    };
    let run = export(&exporter(&env, s3_settings(&moto.endpoint())), &spec).await;
    assert_eq!(run.state, "succeeded", "{:?}", run.error);

    let expected: Vec<(String, String)> = event::Entity::find()
        .order_by_asc(event::Column::AppId)
        .order_by_asc(event::Column::Id)
        .all(&env.db)
        .await
        .expect("rows")
        .into_iter()
        .filter(|e| {
            e.app_id == "test-app"
                && e.category == "click"
                && e.timestamp
                    >= "2026-01-01T01:00:00Z"
                        .parse::<chrono::DateTime<chrono::Utc>>()
                        .expect("t")
                && e.timestamp
                    < "2026-01-01T08:00:00Z"
                        .parse::<chrono::DateTime<chrono::Utc>>()
                        .expect("t")
        })
        .map(|e| (e.app_id, e.id.to_string()))
        .collect();
    assert!(!expected.is_empty());
    let base = format!("eye/prod/clicks/{}", run.generation);
    let descriptor = moto
        .object("feeds", &format!("{base}/descriptor.json"))
        .await
        .expect("descriptor")
        .bytes;
    let descriptor: Descriptor = serde_json::from_slice(&descriptor).expect("descriptor json");
    assert_eq!(descriptor.records as usize, expected.len());
    assert_eq!(descriptor.files.len(), expected.len().div_ceil(40));
    let mut got = Vec::new();
    for file in &descriptor.files {
        let object = moto
            .object("feeds", &format!("{base}/{}", file.file_name))
            .await
            .expect("chunk");
        assert_eq!(object.content_type.as_deref(), Some("application/json"));
        assert_eq!(object.content_encoding.as_deref(), Some("gzip"));
        let bytes = object.bytes;
        assert_eq!(sha(&bytes), file.sha256);
        assert_eq!(bytes.len() as u64, file.bytes);
        for record in gunzip(&bytes)["data"].as_array().expect("data") {
            got.push((
                record["app_id"].as_str().expect("app").to_owned(),
                record["id"].as_str().expect("id").to_owned(),
            ));
        }
    }
    assert_eq!(got, expected);
    let latest = moto
        .object("feeds", "eye/prod/clicks/latest.json")
        .await
        .expect("latest")
        .bytes;
    let latest: Latest = serde_json::from_slice(&latest).expect("latest json");
    assert_eq!(latest.generation, run.generation);
}

#[tokio::test]
async fn s3_gone_midway_publishes_nothing_and_the_resume_writes_identical_objects() {
    let env = TestEnv::new().await;
    // 20 chunks: with 8 puts in flight when the outage starts after the 4th, at most 12 can be
    // recorded, so the run cannot finish before S3 is gone (10 chunks could, now and then).
    seed_events(&env, 2000).await;
    let moto = MotoServer::start().await;
    moto.create_bucket("feeds").await;
    let outage = S3Outage::start(moto.addr).await;
    let through_outage = exporter(&env, s3_settings(&outage.endpoint()));
    let s3 = Destination::S3 {
        bucket: "feeds".into(),
        prefix: "out".into(),
    };
    let spec = spec("events", Shape::Events, 100, s3);

    // S3 goes away once 4 chunks are written.
    let run = runs::create(&env.db, &spec, None).await.expect("create");
    let cut = |p: Progress| {
        if p.files == 4 {
            outage.go_down();
        }
    };
    let failed = through_outage.run_by_id(run.id, &cut).await;
    assert!(failed.is_err(), "the export must fail while S3 is down");
    let stored = runs::get(&env.db, run.id).await.expect("get").expect("row");
    assert_eq!(stored.state, "failed");
    assert!(
        stored.error.as_deref().unwrap_or("").contains("put"),
        "{:?}",
        stored.error
    );
    // Chunks are put 8 at a time and recorded in order: at least the 4 before the outage.
    let kept = stored.files_written;
    assert!((4..=12).contains(&kept), "{kept} chunks recorded");
    assert_eq!(stored.records, i64::from(kept) * 100);
    let base = format!("out/events/{}", run.generation);
    assert!(
        moto.object("feeds", &format!("{base}/descriptor.json"))
            .await
            .is_none(),
        "no descriptor"
    );
    assert!(
        moto.object("feeds", "out/events/latest.json")
            .await
            .is_none(),
        "no pointer"
    );
    for seq in 1..=kept {
        assert!(
            moto.object("feeds", &format!("{base}/data-{seq:05}.json.gz"))
                .await
                .is_some(),
            "recorded chunk {seq} is there"
        );
    }

    // Back: the resume keeps the recorded chunks (there, with their size) and goes on.
    outage.come_back();
    let first = std::sync::Mutex::new(None);
    let resumed = through_outage
        .run_by_id(run.id, &|p: Progress| {
            first.lock().expect("lock").get_or_insert(p);
        })
        .await
        .expect("resume")
        .expect("claimed");
    assert_eq!(resumed.state, "succeeded");
    assert_eq!((resumed.files_written, resumed.records), (20, 2000));
    assert_eq!(
        first.lock().expect("lock").map(|p| p.files),
        u32::try_from(kept).ok(),
        "the resume starts after the kept chunks"
    );
    assert_eq!(resumed.attempts, 2);

    // A second, uninterrupted generation of the same records: identical objects.
    let again = export(&exporter(&env, s3_settings(&moto.endpoint())), &spec).await;
    assert_ne!(again.generation, run.generation);
    let one = moto
        .object("feeds", &format!("{base}/descriptor.json"))
        .await
        .expect("descriptor")
        .bytes;
    let one: Descriptor = serde_json::from_slice(&one).expect("json");
    let other = format!("out/events/{}", again.generation);
    let two = moto
        .object("feeds", &format!("{other}/descriptor.json"))
        .await
        .expect("descriptor")
        .bytes;
    let two: Descriptor = serde_json::from_slice(&two).expect("json");
    assert_eq!(
        one.files, two.files,
        "same names, counts, sizes and SHA-256"
    );
    for file in &one.files {
        let one = moto
            .object("feeds", &format!("{base}/{}", file.file_name))
            .await
            .expect("chunk");
        let two = moto
            .object("feeds", &format!("{other}/{}", file.file_name))
            .await
            .expect("chunk");
        assert_eq!(one.bytes, two.bytes, "{}", file.file_name);
        assert!(one.etag.is_some());
        assert_eq!(one.etag, two.etag, "{}", file.file_name);
    }
    // Nothing was written twice: exactly 20 data files in the resumed generation.
    let rows = runs::files(&env.db, run.id).await.expect("files");
    assert_eq!(
        rows.iter().map(|f| f.seq).collect::<Vec<_>>(),
        (1..=20).collect::<Vec<_>>()
    );
    let latest = moto
        .object("feeds", "out/events/latest.json")
        .await
        .expect("latest")
        .bytes;
    let latest: Latest = serde_json::from_slice(&latest).expect("json");
    assert_eq!(
        latest.generation, again.generation,
        "the pointer names the newest generation"
    );
}

#[tokio::test]
async fn a_resume_rewrites_a_chunk_that_went_missing() {
    let env = TestEnv::new().await;
    seed_events(&env, 300).await;
    let dir = tempdir("missing");
    let spec = spec(
        "ev",
        Shape::Events,
        100,
        Destination::Folder {
            path: dir.display().to_string(),
        },
    );
    let exporter = exporter(&env, S3Settings::default());
    let run = export(&exporter, &spec).await;
    let folder = dir.join("ev").join(&run.generation);
    let before: Vec<Vec<u8>> = (1..=3)
        .map(|i| std::fs::read(folder.join(format!("data-0000{i}.json.gz"))).expect("chunk"))
        .collect();
    // As if the run had failed after its second chunk was lost.
    std::fs::remove_file(folder.join("data-00002.json.gz")).expect("rm");
    std::fs::remove_file(folder.join("descriptor.json")).expect("rm");
    env.db
        .execute_unprepared(&format!(
            "UPDATE exports SET state = 'failed', finished_at = now() WHERE id = '{}'",
            run.id
        ))
        .await
        .expect("mark failed");
    // A daemon leaves a run that failed just now alone, then takes it again after its pause.
    assert!(!exporter.poll_once().await.expect("round"), "not due yet");
    env.db
        .execute_unprepared("UPDATE exports SET finished_at = now() - interval '1 hour'")
        .await
        .expect("age the failure");
    assert!(
        exporter.poll_once().await.expect("round"),
        "the daemon resumes it"
    );
    let again = runs::get(&env.db, run.id).await.expect("get").expect("row");
    assert_eq!(
        (again.state.as_str(), again.files_written, again.records),
        ("succeeded", 3, 300)
    );
    for (i, bytes) in before.iter().enumerate() {
        let now = std::fs::read(folder.join(format!("data-0000{}.json.gz", i + 1))).expect("chunk");
        assert_eq!(&now, bytes, "chunk {}", i + 1);
    }
    assert!(folder.join("descriptor.json").exists());
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn two_schedulers_racing_take_each_slot_once() {
    let env = TestEnv::new().await;
    seed_events(&env, 10).await;
    let dir = tempdir("sched");
    let spec = spec(
        "hourly",
        Shape::Events,
        100,
        Destination::Folder {
            path: dir.display().to_string(),
        },
    );
    schedule::upsert(&env.db, &spec, Duration::from_secs(3600))
        .await
        .expect("schedule");
    let a = exporter(&env, S3Settings::default());
    let b = exporter(&env, S3Settings::default());
    assert_ne!(a.owner, b.owner);
    for round in 0..10 {
        let (x, y) = tokio::join!(
            schedule::take_due(&a.db, &a.owner, a.lease),
            schedule::take_due(&b.db, &b.owner, b.lease)
        );
        let taken = [x.expect("a"), y.expect("b")].into_iter().flatten().count();
        assert_eq!(
            taken, 1,
            "round {round}: exactly one scheduler takes the slot"
        );
        // Not due again until the next hour, nor while leased.
        assert!(
            schedule::take_due(&a.db, &a.owner, a.lease)
                .await
                .expect("again")
                .is_none()
        );
        env.db
            .execute_unprepared(
                "UPDATE export_schedules SET next_run_at = now(), lease_until = NULL",
            )
            .await
            .expect("make due");
    }
    let count = env
        .db
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT count(*) AS n FROM exports WHERE schedule_name = 'hourly'",
        ))
        .await
        .expect("count")
        .expect("row")
        .try_get::<i64>("", "n")
        .expect("n");
    assert_eq!(count, 10);

    // Whole daemon rounds: one export per due slot, run to its end by one of the two.
    env.db
        .execute_unprepared("DELETE FROM exports")
        .await
        .expect("clear");
    let (x, y) = tokio::join!(a.poll_once(), b.poll_once());
    assert!(x.expect("a") ^ y.expect("b") || count_succeeded(&env).await == 1);
    assert_eq!(count_succeeded(&env).await, 1);
    let _ = std::fs::remove_dir_all(dir);
}

async fn count_succeeded(env: &TestEnv) -> i64 {
    env.db
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT count(*) AS n FROM exports WHERE state = 'succeeded'",
        ))
        .await
        .expect("count")
        .expect("row")
        .try_get::<i64>("", "n")
        .expect("n")
}

#[tokio::test]
async fn plans_export_as_reserve_with_google_entities() {
    let env = TestEnv::new().await;
    env.db
        .execute_unprepared(
            "INSERT INTO provider_plans (provider, base_plan_id, plan_id, id, title, starts_at, ends_at, \
                 min_price, max_price, sell_mode, ever_online, content_hash, data, first_seen, last_seen) \
             SELECT 'p', 'b' || (i % 3), 'plan' || i, gen_random_uuid(), 'Show ' || i, \
                    '2026-06-01 20:00', '2026-06-01 22:00', 10.5, 20, 'online', i % 4 <> 0, 'h', \
                    jsonb_build_object('organizer_company_id', 'org' || i), now(), now() \
             FROM generate_series(1, 20) AS i",
        )
        .await
        .expect("seed plans");
    let dir = tempdir("rwg");
    let mut spec = spec(
        "entities",
        Shape::RwgEntities,
        4,
        Destination::Folder {
            path: dir.display().to_string(),
        },
    );
    spec.url_base = Some("https://tickets.example/plans".into());
    let run = export(&exporter(&env, S3Settings::default()), &spec).await;
    // 15 of 20 were ever online: 4 files of 4, 4, 4, 3.
    assert_eq!((run.files_written, run.records), (4, 15));
    let folder = dir.join("entities").join(&run.generation);
    let descriptor: Descriptor =
        serde_json::from_slice(&std::fs::read(folder.join("descriptor.json")).expect("d"))
            .expect("json");
    assert_eq!(descriptor.name, "reservewithgoogle.entity");
    let body = gunzip(&std::fs::read(folder.join("data-00001.json.gz")).expect("chunk"));
    let entity = &body["data"][0];
    let id = entity["entity_id"].as_str().expect("entity_id");
    assert_eq!(entity["url"], format!("https://tickets.example/plans/{id}"));
    assert!(entity["name"].as_str().expect("name").starts_with("Show "));
    assert_eq!(entity["location"]["provider"], "p");
    assert_eq!(entity["price_range"]["min_price"], "10.5");

    // A filter on a plans export is refused, naming the field.
    let mut bad = spec.clone();
    bad.filter.application = Some("x".into());
    let err = runs::create(&env.db, &bad, None)
        .await
        .expect_err("refused");
    assert!(err.to_string().contains("`filter`"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

async fn post_export(
    api: &eye_testkit::TestApi,
    token: &str,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    let response = api
        .client
        .post(api.url("/exports"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("post /exports");
    let status = response.status().as_u16();
    (
        status,
        response.json().await.unwrap_or(serde_json::Value::Null),
    )
}

#[tokio::test]
async fn post_exports_queues_a_run_the_exporter_runs_scoped_to_the_caller() {
    let env = TestEnv::new().await;
    seed_events(&env, 120).await;
    let moto = MotoServer::start().await;
    moto.create_bucket("feeds").await;
    let api = env.spawn_api().await;
    let writer = eye_testkit::token_for("test-app", &["exports:write"]);
    let reader = eye_testkit::token_for("test-app", &["events:read"]);
    let admin = eye_testkit::token_for("ops", &["admin"]);
    let body = serde_json::json!({
        "name": "mine", "shape": "events", "chunk_size": 25,
        "destination": "s3://feeds/api", "filter": {"category": "page"}
    });

    // Scopes: no exports:write, another application, a folder, plans: refused.
    assert_eq!(post_export(&api, &reader, body.clone()).await.0, 403);
    let mut other = body.clone();
    other["filter"]["application"] = "ops".into();
    assert_eq!(post_export(&api, &writer, other).await.0, 403);
    let mut folder = body.clone();
    folder["destination"] = "/tmp/anywhere".into();
    assert_eq!(post_export(&api, &writer, folder).await.0, 403);
    let mut plans = body.clone();
    plans["shape"] = "plans".into();
    plans["filter"] = serde_json::Value::Null;
    assert_eq!(post_export(&api, &writer, plans).await.0, 403);
    // Bad fields: named.
    let mut bad = body.clone();
    bad["chunk_size"] = 0.into();
    let (status, answer) = post_export(&api, &writer, bad).await;
    assert_eq!(status, 422, "{answer}");
    assert!(answer.to_string().contains("chunk_size"), "{answer}");
    let mut bad = body.clone();
    bad["destination"] = "ftp://x".into();
    let (status, answer) = post_export(&api, &writer, bad).await;
    assert_eq!(status, 422, "{answer}");
    assert!(answer.to_string().contains("destination"), "{answer}");

    let (status, queued) = post_export(&api, &writer, body.clone()).await;
    assert_eq!(status, 202, "{queued}");
    assert_eq!(queued["state"], "pending");
    let id = queued["id"].as_str().expect("id").to_owned();

    // An eye-exporter round runs it.
    let daemon = exporter(&env, s3_settings(&moto.endpoint()));
    assert!(daemon.poll_once().await.expect("round"));
    let (status, shown) = api.get_as(&writer, &format!("/exports/{id}")).await;
    assert_eq!(status, 200, "{shown}");
    assert_eq!(shown["state"], "succeeded", "{shown}");
    // Its own application's pages only (the filter was pinned to test-app).
    let expected = event::Entity::find()
        .all(&env.db)
        .await
        .expect("rows")
        .into_iter()
        .filter(|e| e.app_id == "test-app" && e.category == "page")
        .count();
    assert_eq!(shown["records"], expected as i64);
    assert_eq!(shown["files_written"], expected.div_ceil(25) as i64);
    let descriptor_key = shown["descriptor_key"].as_str().expect("descriptor key");
    let descriptor = moto
        .object("feeds", descriptor_key)
        .await
        .expect("descriptor")
        .bytes;
    let descriptor: Descriptor = serde_json::from_slice(&descriptor).expect("json");
    assert_eq!(descriptor.records as usize, expected);

    // Another application's token does not see it; an admin does.
    let stranger = eye_testkit::token_for("ops", &["exports:write"]);
    assert_eq!(
        api.get_as(&stranger, &format!("/exports/{id}")).await.0,
        404
    );
    assert_eq!(api.get_as(&admin, &format!("/exports/{id}")).await.0, 200);
    assert_eq!(api.get_as(&admin, "/exports/not-a-uuid").await.0, 400);
}
