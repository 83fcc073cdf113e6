//! A few lines on what the load achieved, from goose's metrics: the rate actually held and
//! the latencies, raw and with coordinated-omission backfill. Goose prints its full tables
//! itself; this is the part worth pasting into a README.

use std::fmt;

use goose::metrics::GooseRequestMetricTimingData;
use goose::prelude::GooseMetrics;

/// One request kind's outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestSummary {
    pub name: String,
    /// Requests actually sent (goose's backfilled ones are left out).
    pub requests: usize,
    /// Requests not answered 202. Goose counts the backfilled requests here too, each with
    /// the answer of the slow request that caused it.
    pub failed: usize,
    /// Requests per second over the measured time (after every user started).
    pub rate: f64,
    pub latency: Percentiles,
    /// The same percentiles with the requests a stall delayed backfilled; `None` when no
    /// stall was long enough to need it.
    pub latency_co: Option<Percentiles>,
}

/// Response times, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Percentiles {
    pub p50: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

impl Percentiles {
    fn of(data: &GooseRequestMetricTimingData) -> Self {
        let ms = |us: u64| us as f64 / 1000.0;
        Self {
            p50: ms(data.percentile_us(0.50)),
            p99: ms(data.percentile_us(0.99)),
            p999: ms(data.percentile_us(0.999)),
            max: ms(data.maximum_time_us),
        }
    }
}

/// One summary per request kind, by name.
pub fn summarize(metrics: &GooseMetrics) -> Vec<RequestSummary> {
    let seconds = metrics.duration.max(1) as f64;
    let mut summaries: Vec<RequestSummary> = metrics
        .requests
        .iter()
        .map(|(name, aggregate)| {
            let requests = aggregate.raw_data.counter;
            RequestSummary {
                name: name.clone(),
                requests,
                failed: aggregate.fail_count,
                rate: requests as f64 / seconds,
                latency: Percentiles::of(&aggregate.raw_data),
                latency_co: aggregate
                    .coordinated_omission_data
                    .as_ref()
                    .map(Percentiles::of),
            }
        })
        .collect();
    summaries.sort_by(|a, b| a.name.cmp(&b.name));
    summaries
}

/// Below this share of the asked rate, the summary says why.
const SHORTFALL: f64 = 0.95;

/// Explains a rate that fell short of the throttle (which [`crate::scenario::throttle_for`]
/// already corrects for goose's timer overshoot): the server or this machine could not keep
/// up.
pub fn shortfall_note(achieved: f64, asked: u32) -> Option<String> {
    let asked = f64::from(asked);
    (achieved < asked * SHORTFALL).then(|| {
        format!(
            "note: {achieved:.1} req/s of {asked:.0} asked: the server or this machine could \
             not keep up (raise USERS if every user was busy waiting for answers)"
        )
    })
}

impl fmt::Display for RequestSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} requests ({} failed), {:.1} req/s, p50 {:.2} ms, p99 {:.2} ms, p999 {:.2} ms, max {:.2} ms",
            self.name,
            self.requests,
            self.failed,
            self.rate,
            self.latency.p50,
            self.latency.p99,
            self.latency.p999,
            self.latency.max
        )?;
        if let Some(co) = self.latency_co {
            write!(
                f,
                "; with CO backfill p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
                co.p50, co.p99, co.max
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rate_near_the_asked_one_needs_no_note() {
        assert_eq!(shortfall_note(99.0, 100), None);
        assert!(shortfall_note(90.0, 100).is_some_and(|n| n.contains("90.0 req/s of 100")));
    }

    #[test]
    fn a_summary_reads_as_one_line() {
        let summary = RequestSummary {
            name: "POST /events".into(),
            requests: 6000,
            failed: 0,
            rate: 100.0,
            latency: Percentiles {
                p50: 1.5,
                p99: 7.25,
                p999: 9.5,
                max: 20.0,
            },
            latency_co: None,
        };
        assert_eq!(
            summary.to_string(),
            "POST /events: 6000 requests (0 failed), 100.0 req/s, p50 1.50 ms, p99 7.25 ms, p999 9.50 ms, max 20.00 ms"
        );
    }
}
