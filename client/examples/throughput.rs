//! Throughput of the ingestion path through eye-client (`bench/batch.sh` runs it):
//! `throughput URL TOKEN single|batch EVENTS CONCURRENCY [BATCH_SIZE]`. The events are made
//! before the clock starts; prints one JSON line with the events accepted per second.

use std::time::Instant;

use eye_client::{Client, Event, RetryPolicy};
use serde_json::json;
use uuid::Uuid;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, token, mode, events, concurrency, rest @ ..] = args.as_slice() else {
        return Err(
            "usage: throughput URL TOKEN single|batch EVENTS CONCURRENCY [BATCH_SIZE]".into(),
        );
    };
    let events: usize = events.parse()?;
    let concurrency: usize = concurrency.parse()?;
    let batch_size: usize = rest.first().map_or(Ok(500), |b| b.parse())?;
    let client = Client::builder(url.as_str(), token.as_str())
        .gzip(false)
        .max_batch_events(batch_size)
        .retry(RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        })
        .build()?;
    let sessions: Vec<Uuid> = (0..1000).map(|_| Uuid::now_v7()).collect();
    let all: Vec<Event> = (0..events)
        .map(|i| {
            Event::new(sessions[i % sessions.len()], "page interaction", "pageview")
                .data(json!({"host": "www.consumeraffairs.com", "path": format!("/p/{i}")}))
                .with_id(Uuid::now_v7())
        })
        .collect();
    let unit = if mode == "batch" { batch_size } else { 1 };
    let mut lanes: Vec<Vec<Vec<Event>>> = (0..concurrency).map(|_| Vec::new()).collect();
    for (i, chunk) in all.chunks(unit).enumerate() {
        lanes[i % concurrency].push(chunk.to_vec());
    }
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for lane in lanes {
        let client = client.clone();
        let batch = mode == "batch";
        tasks.spawn(async move {
            let mut accepted = 0usize;
            for mut chunk in lane {
                if batch {
                    accepted += client.send_batch(chunk).await.accepted.len();
                } else if let Some(event) = chunk.pop() {
                    accepted += usize::from(client.send(event).await.is_ok());
                }
            }
            accepted
        });
    }
    let mut accepted = 0;
    while let Some(lane) = tasks.join_next().await {
        accepted += lane?;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{}",
        json!({"mode": mode, "events": events, "accepted": accepted, "secs": secs,
               "accepted_per_sec": (accepted as f64 / secs).round()})
    );
    Ok(())
}
