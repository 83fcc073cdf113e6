//! When the next attempt is due: a schedule of delays (the first one before the first
//! attempt, normally zero), jittered, never sooner than the endpoint's `Retry-After`.

use std::time::Duration;

use rand::Rng;

/// Parses `0s,5s,5m,30m,2h,5h,10h,10h` (units `ms`, `s`, `m`, `h`, `d`).
pub fn parse(text: &str) -> Result<Vec<Duration>, String> {
    let delays: Result<Vec<Duration>, String> = text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(parse_one)
        .collect();
    let delays = delays?;
    if delays.is_empty() {
        return Err("the schedule needs at least one attempt".into());
    }
    Ok(delays)
}

fn parse_one(text: &str) -> Result<Duration, String> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("`{text}` has no unit (ms, s, m, h, d)"))?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a number with a unit"))?;
    let unit_ms = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(format!("`{text}`: unknown unit `{unit}`")),
    };
    Ok(Duration::from_millis(n.saturating_mul(unit_ms)))
}

/// The delay before the attempt after `done` attempts, or `None` when the schedule is over.
/// Jitter: up to ±`jitter` (a fraction) of the delay, so endpoints coming back are not hit
/// in step. `retry_after` is a floor.
pub fn next_delay(
    schedule: &[Duration],
    done: usize,
    jitter: f64,
    retry_after: Option<Duration>,
) -> Option<Duration> {
    let base = *schedule.get(done)?;
    let spread = base.as_secs_f64() * jitter.clamp(0.0, 1.0);
    let offset = if spread > 0.0 {
        rand::rng().random_range(-spread..=spread)
    } else {
        0.0
    };
    let delay = Duration::from_secs_f64((base.as_secs_f64() + offset).max(0.0));
    Some(delay.max(retry_after.unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_schedule_parses() {
        let s = parse("0s,5s,5m,30m,2h,5h,10h,10h").expect("test value");
        assert_eq!(s.len(), 8);
        assert_eq!(s[2], Duration::from_secs(300));
        assert_eq!(s[7], Duration::from_secs(36_000));
        assert!(parse("5").is_err());
        assert!(parse("5y").is_err());
        assert!(parse("").is_err());
    }

    #[test]
    fn delays_are_jittered_within_bounds_floored_by_retry_after_and_end() {
        let s = parse("0s,10s").expect("test value");
        for _ in 0..100 {
            let d = next_delay(&s, 1, 0.2, None).expect("test value");
            assert!(
                d >= Duration::from_secs(8) && d <= Duration::from_secs(12),
                "{d:?}"
            );
        }
        assert_eq!(next_delay(&s, 0, 0.2, None), Some(Duration::ZERO));
        assert_eq!(
            next_delay(&s, 1, 0.0, Some(Duration::from_secs(60))),
            Some(Duration::from_secs(60))
        );
        assert_eq!(next_delay(&s, 2, 0.2, None), None);
    }
}
