//! Per-application token buckets (governor's GCRA). Each replica enforces its share of the
//! configured rate (`rate / EYE_API_REPLICAS`): approximate across replicas (exact only when
//! the load balancer spreads an application evenly) but free of any I/O per request.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::RateLimiter;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::{InMemoryState, NotKeyed};

use crate::error::ApiError;

type Bucket = RateLimiter<NotKeyed, InMemoryState, DefaultClock, StateInformationMiddleware>;

/// An application's limit as configured (whole system), before the replica split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub per_sec: u32,
    pub burst: u32,
}

/// What an accepted event leaves in the bucket (`RateLimit-Limit` / `RateLimit-Remaining`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub limit: u32,
    pub remaining: u32,
}

/// One application's bucket on this replica.
pub struct Limiter {
    limit: Limit,
    burst_here: u32,
    bucket: Bucket,
    clock: DefaultClock,
}

impl std::fmt::Debug for Limiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limiter")
            .field("limit", &self.limit)
            .field("burst_here", &self.burst_here)
            .finish_non_exhaustive()
    }
}

impl Limiter {
    /// A full bucket for `limit`, this replica's share of it when there are `replicas`.
    pub fn new(limit: Limit, replicas: u32) -> Self {
        let replicas = replicas.max(1);
        // One event every `replicas / per_sec` seconds here: the rate split across replicas.
        let period = Duration::from_secs_f64(f64::from(replicas) / f64::from(limit.per_sec.max(1)));
        let burst_here = (limit.burst / replicas).max(1);
        let burst = NonZeroU32::new(burst_here).unwrap_or(NonZeroU32::MIN);
        let quota = governor::Quota::with_period(period)
            .unwrap_or_else(|| governor::Quota::per_second(NonZeroU32::MAX))
            .allow_burst(burst);
        let clock = DefaultClock::default();
        Self {
            limit,
            burst_here,
            bucket: RateLimiter::direct_with_clock(quota, clock.clone())
                .with_middleware::<StateInformationMiddleware>(),
            clock,
        }
    }

    /// The limit this bucket was made for (a changed override gets a new bucket).
    pub fn limit(&self) -> Limit {
        self.limit
    }

    /// Takes one event, or refuses with when to retry.
    pub fn check(&self) -> Result<Quota, ApiError> {
        match self.bucket.check() {
            Ok(state) => Ok(Quota {
                limit: self.burst_here,
                remaining: state.remaining_burst_capacity(),
            }),
            Err(not_until) => Err(ApiError::RateLimited {
                limit: self.burst_here,
                retry_after: not_until.wait_time_from(self.clock.now()),
            }),
        }
    }
}

impl Limiter {
    /// Takes `n` events at once (a batch costs its valid events), or refuses: 429 with when
    /// to retry, or 413 when `n` is more than the bucket ever holds.
    pub fn check_n(&self, n: NonZeroU32) -> Result<Quota, ApiError> {
        match self.bucket.check_n(n) {
            Ok(Ok(state)) => Ok(Quota {
                limit: self.burst_here,
                remaining: state.remaining_burst_capacity(),
            }),
            Ok(Err(not_until)) => Err(ApiError::RateLimited {
                limit: self.burst_here,
                retry_after: not_until.wait_time_from(self.clock.now()),
            }),
            Err(_insufficient) => Err(ApiError::OverBurst {
                events: n.get(),
                burst: self.burst_here,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_refuses_with_a_wait() {
        let limiter = Limiter::new(
            Limit {
                per_sec: 1,
                burst: 3,
            },
            1,
        );
        for _ in 0..3 {
            assert!(limiter.check().is_ok());
        }
        match limiter.check() {
            Err(ApiError::RateLimited { limit, retry_after }) => {
                assert_eq!(limit, 3);
                assert!(retry_after > Duration::from_millis(500));
            }
            other => panic!("expected 429, got {other:?}"),
        }
    }

    #[test]
    fn a_batch_costs_its_events_and_one_past_the_burst_is_never_allowed() {
        let limiter = Limiter::new(
            Limit {
                per_sec: 1,
                burst: 10,
            },
            1,
        );
        let n = |n| NonZeroU32::new(n).expect("non-zero");
        assert_eq!(limiter.check_n(n(7)).map(|q| q.remaining).ok(), Some(3));
        assert!(matches!(
            limiter.check_n(n(4)),
            Err(ApiError::RateLimited { .. })
        ));
        assert!(matches!(
            limiter.check_n(n(11)),
            Err(ApiError::OverBurst {
                events: 11,
                burst: 10
            })
        ));
    }

    #[test]
    fn replicas_split_the_burst() {
        let limiter = Limiter::new(
            Limit {
                per_sec: 10,
                burst: 10,
            },
            2,
        );
        let allowed = (0..10).filter(|_| limiter.check().is_ok()).count();
        assert_eq!(allowed, 5);
    }
}
