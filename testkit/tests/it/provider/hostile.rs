//! Feeds a hostile or unlucky provider serves: values PostgreSQL refuses, redirects
//! elsewhere, and bodies that take longer than one timeout to arrive. Each is refused on its
//! own (a dead letter with the reason) or read to its end; no cycle is stuck on it.

use std::time::Duration;

use eye_fetcher::CycleError;
use eye_fetcher::http::FetchError;
use eye_testkit::{ProviderSim, Reply, TestEnv, feed, fixture, generated_feed, plan_xml};
use sea_orm::{ConnectionTrait, TransactionTrait};

const WITHIN: Duration = Duration::from_secs(20);

fn keys(plans: &[eye_core::entity::provider_plan::Model]) -> Vec<String> {
    let mut keys: Vec<_> = plans.iter().map(|p| p.plan_id.clone()).collect();
    keys.sort();
    keys
}

#[tokio::test]
async fn a_nul_in_a_provider_id_is_dead_lettered_and_every_cycle_still_completes() {
    let env = TestEnv::new().await;
    let _worker = env.spawn_worker().await;
    let body = feed(&[
        plan_xml("1", &[]),
        plan_xml("2", &[("plan_id", "2\0x")]),
        plan_xml("3", &[]),
    ]);
    let sim = ProviderSim::start(vec![Reply::Body(body)]).await;
    let mut fetcher = env.fetcher(&sim.url(), &[]).await;
    // Before: PostgreSQL refused the NUL in the hash lookup, failing this cycle and each after.
    for cycle in 0..2 {
        let report = fetcher.run_once().await.expect("the cycle completes");
        assert_eq!((report.plans, report.rejected), (2, 1), "cycle {cycle}");
    }
    let plans = env.wait_for_plans(WITHIN, |p| p.len() == 2).await;
    assert_eq!(keys(&plans), ["1", "3"]);
    env.wait_for_dead_letters(1, WITHIN).await;
    let dead = env.dead_letters().await;
    assert_eq!((dead.len(), dead[0].attempts), (1, 1));
    assert!(dead[0].message.contains("NUL"), "{}", dead[0].message);
    // The rejection is kept under its escaped id, so it is not published again.
    let hashes = env.provider_hashes().await;
    assert_eq!(hashes.len(), 3, "{hashes:?}");
    assert!(
        hashes.iter().any(|(_, p)| p == "rejected:2\\u{0}x:"),
        "{hashes:?}"
    );
}

#[tokio::test]
async fn plans_postgresql_would_refuse_are_dead_lettered_and_their_neighbours_stored() {
    let env = TestEnv::new().await;
    let _worker = env.spawn_worker().await;
    // Incompressible, as PostgreSQL compresses wide index entries before the size check.
    let random = |n: usize| -> String {
        let hex: String = (0..n / 32 + 1)
            .map(|_| uuid::Uuid::new_v4().simple().to_string())
            .collect();
        hex[..n].to_owned()
    };
    let (long_title, long_id, long_name) = (random(2800), random(3000), random(3000));
    let body = feed(&[
        plan_xml("1", &[]),
        plan_xml("2", &[("plan_start_date", "-5000-01-01T00:00:00")]),
        plan_xml("3", &[("title", &long_title)]),
        plan_xml("4", &[("plan_id", &long_id)]),
        plan_xml("5", &[("name", &long_name)]),
        plan_xml("6", &[]),
    ]);
    let sim = ProviderSim::start(vec![Reply::Body(body)]).await;
    let report = env
        .fetcher(&sim.url(), &[])
        .await
        .run_once()
        .await
        .expect("the cycle completes");
    assert_eq!((report.plans, report.changed, report.rejected), (2, 2, 4));

    let plans = env.wait_for_plans(WITHIN, |p| p.len() == 2).await;
    assert_eq!(keys(&plans), ["1", "6"]);
    env.wait_for_dead_letters(4, WITHIN).await;
    let mut reasons: Vec<_> = env
        .dead_letters()
        .await
        .into_iter()
        .map(|d| d.message)
        .collect();
    reasons.sort();
    let expected = [
        "title of 2800 bytes is over the limit of 1024",
        "plan_id of 3000 bytes is over the limit of 128",
        "zone name of 3000 bytes is over the limit of 256",
        "starts_at -5000-01-01 00:00:00 is outside the years 1..=9999",
    ];
    for needle in expected {
        assert!(
            reasons.iter().any(|r| r.contains(needle)),
            "{needle}: {reasons:?}"
        );
    }
    assert!(reasons.iter().all(|r| r.len() < 1200), "{reasons:?}");
    assert_eq!(env.event_count().await, 2);
}

#[tokio::test]
async fn a_plan_out_of_bounds_from_another_publisher_is_dead_lettered_not_retried() {
    use eye_core::provider::to_envelope;
    use eye_fetcher::publish::ProviderPublisher;
    let env = TestEnv::new().await;
    let _worker = env.spawn_worker().await;
    // As an older fetcher (or any other publisher) would send it, past the parser's checks.
    let mut records = Vec::new();
    let body = feed(&[plan_xml("1", &[]), plan_xml("2", &[])]);
    eye_fetcher::provider::fever::parse(body.as_slice(), Default::default(), &mut |r| {
        records.push(r)
    })
    .expect("parses");
    let mut envelopes: Vec<_> = records
        .iter()
        .map(|r| to_envelope("fever", r, chrono::Utc::now()))
        .collect();
    let data = &mut envelopes[1].event.data;
    data.insert("starts_at".into(), "-5000-01-01T00:00:00".into());
    let amqp = env.fetcher_settings("http://127.0.0.1:1/", &[]).amqp;
    let publisher = ProviderPublisher::start(amqp, WITHIN);
    publisher.publish(&envelopes).await.expect("published");
    publisher.close().await;

    env.wait_for_dead_letters(1, WITHIN).await;
    let plans = env.wait_for_plans(WITHIN, |p| !p.is_empty()).await;
    assert_eq!(keys(&plans), ["1"]);
    let dead = env.dead_letters().await;
    assert!(
        dead[0].message.contains("outside the years"),
        "{}",
        dead[0].message
    );
}

#[tokio::test]
async fn redirects_are_followed_only_within_the_feeds_host() {
    let env = TestEnv::new().await;
    let elsewhere = ProviderSim::start(vec![Reply::Body(fixture("planlist_response_1.xml"))]).await;
    let to_elsewhere = format!("http://localhost:{}/api/events", elsewhere.addr.port());
    let sim = ProviderSim::start(vec![
        Reply::Redirect("/v2/events".into()),
        Reply::Body(fixture("planlist_response_1.xml")),
        Reply::Redirect(to_elsewhere),
        Reply::Redirect("/again".into()),
    ])
    .await;
    let mut fetcher = env.fetcher(&sim.url(), &["--retries", "0"]).await;
    // Same host, same scheme: followed.
    let report = fetcher.run_once().await.expect("followed");
    assert_eq!(report.plans, 4);
    assert_eq!(sim.requests(), 2);
    // Another host: refused, never called, not retried.
    let err = fetcher.run_once().await.expect_err("another host");
    assert!(
        matches!(&err, CycleError::Fetch(FetchError::Redirect(why)) if why.contains("another host")),
        "{err}"
    );
    assert_eq!((sim.requests(), elsewhere.requests()), (3, 0));
    // A loop on the same host: bounded (3 redirects by default).
    let mut fetcher = env.fetcher(&sim.url(), &["--retries", "0"]).await;
    let err = fetcher.run_once().await.expect_err("a redirect loop");
    assert!(
        matches!(&err, CycleError::Fetch(FetchError::Redirect(why)) if why.contains("more than 3")),
        "{err}"
    );
    assert_eq!(sim.requests(), 3 + 4);
    assert_eq!(env.provider_hashes().await.len(), 4);
}

#[tokio::test]
async fn time_spent_storing_between_chunks_does_not_count_against_the_read_timeout() {
    let env = TestEnv::new().await;
    // 10,000 plans: five chunks, most of the body still to read while the first is stored.
    let sim = ProviderSim::start(vec![Reply::Body(generated_feed(10_000))]).await;
    let mut fetcher = env.fetcher(&sim.url(), &[]).await;
    // The first chunk's hashes wait 2.5 s for a lock: 2.5 times the 1 s timeouts.
    let lock = env.db.begin().await.expect("begin");
    lock.execute_unprepared("LOCK TABLE provider_plan_hashes IN SHARE MODE")
        .await
        .expect("lock");
    let release = async {
        tokio::time::sleep(Duration::from_millis(2500)).await;
        lock.commit().await.expect("release");
    };
    let (report, ()) = tokio::join!(fetcher.run_once(), release);
    let report = report.expect("the whole feed is read");
    assert_eq!((report.plans, report.changed), (10_000, 10_000));
    assert_eq!(env.provider_hashes().await.len(), 10_000);
}

#[tokio::test]
async fn a_slow_body_completes_and_a_stalled_or_endless_one_is_cut() {
    let env = TestEnv::new().await;
    let slow = |pause| Reply::Trickle {
        body: fixture("planlist_response_1.xml"),
        piece: 200,
        pause,
    };
    // Ten pieces 300 ms apart: 3 s in all, each wait well under the 1 s read timeout.
    let sim = ProviderSim::start(vec![slow(Duration::from_millis(300))]).await;
    let report = env
        .fetcher(&sim.url(), &[])
        .await
        .run_once()
        .await
        .expect("a slow but steady body is read to its end");
    assert_eq!(report.plans, 4);

    // A pause longer than the read timeout breaks the body off.
    sim.then(vec![slow(Duration::from_millis(1500))]);
    let err = env
        .fetcher(&sim.url(), &["--retries", "0"])
        .await
        .run_once()
        .await
        .expect_err("stalled");
    assert!(
        matches!(&err, CycleError::Fetch(FetchError::Body(why)) if why.contains("no data")),
        "{err}"
    );

    // Steady but too long for the cycle's cap.
    sim.then(vec![slow(Duration::from_millis(300))]);
    let mut capped = env
        .fetcher(&sim.url(), &["--cycle-timeout-secs", "1"])
        .await;
    let started = std::time::Instant::now();
    let err = capped.run_once().await.expect_err("over the cycle's cap");
    assert!(matches!(err, CycleError::Timeout(_)), "{err}");
    assert!(started.elapsed() < Duration::from_secs(2));
}
