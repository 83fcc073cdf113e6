//! The fetcher's metrics, scraped from the real `eye-fetcher` process: what a cycle changed,
//! why cycles failed, and whether the circuit is open, per provider.

use std::net::SocketAddr;
use std::time::Duration;

use eye_testkit::{ProviderSim, Reply, TestEnv, fixture, free_local_addr};

const WITHIN: Duration = Duration::from_secs(20);

/// The value of the sample `name` carrying every label of `labels`, if exported.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines().find_map(|line| {
        let (series, value) = line.rsplit_once(' ')?;
        let rest = series.strip_prefix(name)?;
        let all = labels
            .iter()
            .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")));
        (rest.starts_with('{') && all)
            .then(|| value.parse().ok())
            .flatten()
    })
}

/// Scrapes `addr` until `ready` holds of the exposition or `within` passes; the last text.
async fn scrape_until(addr: SocketAddr, within: Duration, ready: impl Fn(&str) -> bool) -> String {
    let client = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let text = match client.get(format!("http://{addr}/metrics")).send().await {
            Ok(response) => response.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if ready(&text) || tokio::time::Instant::now() > deadline {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn the_fetcher_exports_changed_plans_failures_by_reason_and_the_circuit_state() {
    let env = TestEnv::new().await;
    // One good document, then the provider answers 503 for good: the second cycle fails
    // (no retry) and opens the circuit, which then refuses every cycle after it.
    let sim = ProviderSim::start(vec![
        Reply::Body(fixture("planlist_response_1.xml")),
        Reply::Status(503),
    ])
    .await;
    let addr = free_local_addr().to_string();
    let mut fetcher = env.spawn_fetcher_process(
        &sim.url(),
        &[
            ("EYE_FETCH_METRICS_ADDR", &addr),
            ("EYE_FETCH_INTERVAL_SECS", "1"),
            ("EYE_FETCH_RETRIES", "0"),
            ("EYE_FETCH_BREAKER_FAILURES", "1"),
        ],
    );
    let fever = [("provider", "fever")];
    let text = scrape_until(addr.parse().expect("addr"), WITHIN, |text| {
        sample(
            text,
            "eye_fetch_failures_total",
            &[("reason", "circuit_open")],
        )
        .is_some()
    })
    .await;

    assert_eq!(
        sample(&text, "eye_fetch_plans_changed_total", &fever),
        Some(4.0),
        "{text}"
    );
    let failures = |reason| {
        sample(
            &text,
            "eye_fetch_failures_total",
            &[("provider", "fever"), ("reason", reason)],
        )
    };
    assert_eq!(failures("status"), Some(1.0), "{text}");
    assert!(failures("circuit_open") >= Some(1.0), "{text}");
    assert_eq!(
        sample(&text, "eye_fetch_circuit_open", &fever),
        Some(1.0),
        "{text}"
    );
    // The first cycle did its work: the fixture's four plans are recorded.
    assert_eq!(env.provider_hashes().await.len(), 4);
    assert!(
        fetcher.terminate(Duration::from_secs(10)).await,
        "clean exit"
    );
}
