//! The one retry schedule of the services: exponential with full jitter, from `min` up to
//! `max`, so replicas that failed together do not retry together.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};

/// Delays for retrying until told to stop (reconnecting, re-committing).
pub fn forever(min: Duration, max: Duration) -> ExponentialBackoff {
    ExponentialBuilder::default()
        .with_min_delay(min)
        .with_max_delay(max)
        .with_jitter()
        .without_max_times()
        .build()
}

/// Delays for at most `times` retries.
pub fn at_most(min: Duration, max: Duration, times: usize) -> ExponentialBackoff {
    ExponentialBuilder::default()
        .with_min_delay(min)
        .with_max_delay(max)
        .with_jitter()
        .with_max_times(times)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_stay_within_the_bounds_and_a_limited_schedule_ends() {
        let max = Duration::from_millis(400);
        // Jitter adds up to one more delay on top.
        assert!(
            forever(Duration::from_millis(10), max)
                .take(50)
                .all(|d| d <= max * 2)
        );
        assert_eq!(at_most(Duration::from_millis(1), max, 3).count(), 3);
    }
}
