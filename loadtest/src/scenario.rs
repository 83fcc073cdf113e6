//! The goose side: one scenario whose users post events as fast as the throttle lets them,
//! retrying as the API's contract says when asked to, and recording each id answered 202 in
//! the ledger; and the batch scenario of [`crate::batches`] beside it.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use clap::Parser;
use goose::config::GooseConfiguration;
use goose::prelude::{
    GooseAttack, GooseCoordinatedOmissionMitigation, GooseDefault, GooseDefaultType, GooseError,
    GooseMethod, GooseMetrics, GooseRequest, GooseUser, Scenario, Transaction, TransactionError,
    TransactionFunction, TransactionResult,
};
use serde_json::Value;
use tokio::time::{Instant, sleep};

use crate::batches::{self, BatchTally};
use crate::ledger::Ledger;
use crate::payload::EventMix;
use crate::retry::{self, Answer};
use crate::settings::Settings;

/// The endpoint under test.
pub const EVENTS_PATH: &str = "/events";

/// The status that means "the broker confirmed it": the only answer the ledger counts.
const ACCEPTED: u16 = 202;

/// What every user shares: the token, the event mix, the retry time and the ledger.
struct Poster {
    token: String,
    mix: EventMix,
    retry_for: Duration,
    ledger: Arc<Ledger>,
}

impl Poster {
    /// Posts one event, and again with the same id while the answer says to retry and
    /// the retry time lasts.
    async fn post_event(&self, user: &mut GooseUser) -> TransactionResult {
        let event = self.mix.generate(&mut rand::rng(), Utc::now());
        let give_up = Instant::now() + self.retry_for;
        let mut pauses = retry::pauses();
        loop {
            match self.send(user, &event.body).await? {
                Answer::Accepted => {
                    self.ledger.record(event.id, event.expect);
                    return Ok(());
                }
                Answer::Refused => {
                    self.ledger.refused_at_edge();
                    return Ok(());
                }
                Answer::Retry(_) if Instant::now() >= give_up => {
                    self.ledger.gave_up();
                    return Ok(());
                }
                Answer::Retry(after) => {
                    let pause = after.or_else(|| pauses.next()).unwrap_or(Duration::ZERO);
                    sleep(pause).await;
                }
            }
        }
    }

    async fn send(
        &self,
        user: &mut GooseUser,
        body: &Value,
    ) -> Result<Answer, Box<TransactionError>> {
        let builder = user
            .get_request_builder(&GooseMethod::Post, EVENTS_PATH)?
            .bearer_auth(&self.token)
            .json(body);
        let request = GooseRequest::builder()
            .method(GooseMethod::Post)
            .path(EVENTS_PATH)
            .expect_status_code(ACCEPTED)
            .set_request_builder(builder)
            .build();
        let goose = user.request(request).await?;
        Ok(match &goose.response {
            Ok(response) => Answer::of(
                Some(response.status().as_u16()),
                response
                    .headers()
                    .get("retry-after")
                    .and_then(|value| value.to_str().ok()),
            ),
            Err(_) => Answer::of(None, None),
        })
    }
}

/// What goose measured, and where it wrote its reports.
pub struct Outcome {
    pub metrics: GooseMetrics,
    pub reports: Vec<String>,
    /// What the batch users sent.
    pub batches: Arc<BatchTally>,
}

/// Runs the load as `settings` say; the ledger fills as it goes.
pub async fn run(settings: &Settings, ledger: Arc<Ledger>) -> anyhow::Result<Outcome> {
    anyhow::ensure!(
        settings.batch_users < settings.users,
        "--batch-users ({}) must leave some of --users ({}) posting single events",
        settings.batch_users,
        settings.users
    );
    let mix = EventMix::new(
        settings.sessions as usize,
        settings.invalid_share(),
        settings.hostile_share(),
    );
    let tally = Arc::new(BatchTally::default());
    let batch_scenario = batches::scenario(
        settings,
        mix.clone(),
        Arc::clone(&ledger),
        Arc::clone(&tally),
    )?;
    let poster = Arc::new(Poster {
        token: settings.token.expose().clone(),
        mix,
        retry_for: settings.retry_for(),
        ledger,
    });
    let post: TransactionFunction = Arc::new(move |user| {
        let poster = Arc::clone(&poster);
        Box::pin(async move { poster.post_event(user).await })
    });
    // No wait time: the throttle alone paces the users, which is what makes the rate fixed.
    // Weights are user counts: `users - batch_users` post single events, the rest batches.
    let scenario = Scenario::new("post events")
        .set_weight((settings.users - settings.batch_users) as usize)?
        .register_transaction(Transaction::new(post).set_name("post"));

    let config = goose_configuration(settings)?;
    let reports = config.report_file.clone();
    let mut attack = GooseAttack::initialize_with_config(config)?.register_scenario(scenario);
    if let Some(batches) = batch_scenario {
        attack = attack.register_scenario(batches);
    }
    let metrics = with_defaults(attack, settings)?.execute().await?;
    Ok(Outcome {
        metrics,
        reports,
        batches: tally,
    })
}

/// Goose's own options: whatever followed `--`, plus the report files when none were named.
fn goose_configuration(settings: &Settings) -> anyhow::Result<GooseConfiguration> {
    let args =
        std::iter::once("eye-loadtest").chain(settings.goose_args.iter().map(String::as_str));
    let mut config = GooseConfiguration::try_parse_from(args)?;
    if config.report_file.is_empty() {
        std::fs::create_dir_all(&settings.report_dir)
            .with_context(|| format!("creating {}", settings.report_dir.display()))?;
        config.report_file = ["report.html", "report.json"]
            .iter()
            .map(|name| report_path(&settings.report_dir, name))
            .collect();
    }
    Ok(config)
}

fn report_path(dir: &Path, name: &str) -> String {
    dir.join(name).to_string_lossy().into_owned()
}

/// One tick of tokio's timer: how far each of the throttle's sleeps overshoots, at most.
const TIMER_TICK_SECS: f64 = 0.001;

/// The throttle to ask goose for so that it releases `rate` requests per second.
///
/// Goose's throttle releases `k` requests every `k / throttle` seconds (at least 10 ms) and
/// sleeps that long with tokio's millisecond timer, whose overshoot it does not correct: each
/// period runs up to a tick long, which made 100 req/s asked come out as 89. So ask for the
/// throttle whose sleep is one tick shorter than the wanted period: `rate / (1 - rate * tick)`
/// below 100 req/s, and `rate / 0.9` from 100 up, where goose's period stays near 10 ms.
pub fn throttle_for(rate: u32) -> usize {
    let rate = f64::from(rate);
    let period = (1.0 / rate).max(0.010);
    (rate / (1.0 - TIMER_TICK_SECS / period)).round() as usize
}

/// Our settings as goose defaults, so an option given to goose itself still wins.
fn with_defaults(attack: GooseAttack, settings: &Settings) -> Result<GooseAttack, GooseError> {
    let users = settings.users as usize;
    let attack = attack
        .set_default(GooseDefault::Host, settings.host.as_str())?
        .set_default(GooseDefault::Users, users)?
        // All users within about a second: the rate should hold from the start, not ramp.
        .set_default(GooseDefault::IncreaseRate, users.to_string().as_str())?
        .set_default(GooseDefault::RunTime, settings.duration_secs as usize)?
        .set_default(GooseDefault::ThrottleRequests, throttle_for(settings.rate))?
        // A stalled server must not look fast because fewer requests were sent while it
        // stalled: goose backfills the requests each user would have sent at its cadence.
        .set_default(
            GooseDefault::CoordinatedOmissionMitigation,
            GooseCoordinatedOmissionMitigation::Average,
        )?
        // Nothing steers a run from outside, and a second run must not fight over the port.
        .set_default(GooseDefault::NoTelnet, true)?;
    Ok(*attack)
}

#[cfg(test)]
mod tests {
    use super::throttle_for;

    #[test]
    fn the_throttle_asked_makes_up_for_one_timer_tick_per_period() {
        // (rate wanted, throttle asked): the period shortened by one millisecond.
        let cases = [
            (1, 1),
            (10, 10),
            (50, 53),
            (100, 111),
            (1000, 1111),
            (5000, 5556),
        ];
        for (rate, throttle) in cases {
            assert_eq!(throttle_for(rate), throttle, "rate {rate}");
        }
    }
}
