//! `timestamp_bounds`: an event may not claim to happen later than its arrival plus a clock
//! skew, nor (optionally) earlier than a maximum age.
//!
//! Config: `{"max_future_skew_secs": 300, "max_age_secs": 31536000}` (`max_age_secs` optional).

use chrono::Duration;
use serde::Deserialize;

use super::{Issue, Subject, Validator, ValidatorFactory};

/// Builds [`TimestampBounds`] validators.
pub struct TimestampBoundsFactory;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    max_future_skew_secs: u32,
    #[serde(default)]
    max_age_secs: Option<u32>,
}

/// Refuses timestamps too far in the future (or, when set, too old) relative to arrival.
#[derive(Debug)]
pub struct TimestampBounds {
    max_future_skew: Duration,
    max_age: Option<Duration>,
}

impl ValidatorFactory for TimestampBoundsFactory {
    fn kind(&self) -> &'static str {
        "timestamp_bounds"
    }

    fn build(&self, config: &serde_json::Value) -> Result<Box<dyn Validator>, String> {
        let config = Config::deserialize(config).map_err(|e| e.to_string())?;
        Ok(Box::new(TimestampBounds {
            max_future_skew: Duration::seconds(config.max_future_skew_secs.into()),
            max_age: config.max_age_secs.map(|s| Duration::seconds(s.into())),
        }))
    }
}

impl Validator for TimestampBounds {
    fn validate(&self, subject: &Subject<'_>) -> Vec<Issue> {
        let at = subject.event.timestamp;
        let mut issues = Vec::new();
        if at > subject.received_at + self.max_future_skew {
            issues.push(Issue::new(
                "/timestamp",
                format!(
                    "{} is more than {}s after the event was received ({})",
                    at.to_rfc3339(),
                    self.max_future_skew.num_seconds(),
                    subject.received_at.to_rfc3339()
                ),
            ));
        }
        if let Some(max_age) = self.max_age
            && at < subject.received_at - max_age
        {
            issues.push(Issue::new(
                "/timestamp",
                format!(
                    "{} is older than the {}s allowed",
                    at.to_rfc3339(),
                    max_age.num_seconds()
                ),
            ));
        }
        issues
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validation::test_support::{event, subject};
    use serde_json::json;

    #[test]
    fn judges_timestamps_against_arrival() {
        let validator = TimestampBoundsFactory
            .build(&json!({"max_future_skew_secs": 60, "max_age_secs": 3600}))
            .expect("config");
        let received = "2024-01-01T12:00:00Z";
        let cases = [
            ("2024-01-01T12:00:00Z", true, "same instant"),
            ("2024-01-01T12:01:00Z", true, "exactly the skew"),
            ("2024-01-01T12:01:01Z", false, "just past the skew"),
            ("2024-01-01T11:00:00Z", true, "exactly the max age"),
            ("2024-01-01T10:59:59Z", false, "just older than the max age"),
        ];
        for (timestamp, valid, why) in cases {
            let e = event("c", "n", json!({}), timestamp);
            let issues = validator.validate(&subject(&e, received));
            assert_eq!(issues.is_empty(), valid, "{why}: {issues:?}");
            if !valid {
                assert_eq!(issues[0].field, "/timestamp");
            }
        }
    }

    #[test]
    fn age_is_unbounded_unless_configured() {
        let validator = TimestampBoundsFactory
            .build(&json!({"max_future_skew_secs": 60}))
            .expect("config");
        let e = event("c", "n", json!({}), "1999-01-01T00:00:00Z");
        assert!(
            validator
                .validate(&subject(&e, "2024-01-01T12:00:00Z"))
                .is_empty()
        );
    }

    #[test]
    fn bad_configuration_is_refused() {
        for config in [
            json!({}),
            json!({"max_future_skew_secs": -1}),
            json!({"max_future_skew_secs": 1, "typo": 2}),
        ] {
            assert!(TimestampBoundsFactory.build(&config).is_err(), "{config}");
        }
    }
}
