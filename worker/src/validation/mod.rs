//! Event validation: the seam every business rule plugs into.
//!
//! A [`Validator`] judges one event. A [`ValidatorFactory`] builds validators of one kind
//! from configuration. The [`Registry`] knows the factories by kind and turns a list of
//! [`RuleConfig`]s into a [`ValidatorSet`], the thing the pipeline calls. Adding a validator
//! is one file with a factory plus one line in [`Registry::builtin`].

mod allow_list;
mod field;
mod json_schema;
mod provider_record;
mod registry;
mod required_keys;
#[cfg(test)]
mod shipped_rules;
mod timestamp_bounds;

use chrono::{DateTime, Utc};
use eye_core::{Event, Source};

pub use allow_list::AllowListFactory;
pub use field::FieldFactory;
pub use json_schema::JsonSchemaFactory;
pub use provider_record::ProviderRecordFactory;
pub use registry::{Judgement, Mode, Registry, RuleConfig, RuleError, ValidatorSet, default_rules};
pub use required_keys::RequiredKeysFactory;
pub use timestamp_bounds::TimestampBoundsFactory;

/// What a validator sees: the event and where and when it was accepted.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub app_id: &'a str,
    pub source: &'a Source,
    /// When the api (or fetcher) accepted the event: the reference for time rules, so a
    /// redelivery a day later is judged as it was on arrival.
    pub received_at: DateTime<Utc>,
    pub event: &'a Event,
}

/// One thing wrong with an event, as a validator reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// JSON pointer into the event, e.g. `/timestamp` or `/data/host`.
    pub field: String,
    pub message: String,
}

impl Issue {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// One reason an event was refused: the issue and the rule that found it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Violation {
    /// The rule's name (its configured name, or its kind).
    pub validator: String,
    pub field: String,
    pub message: String,
}

/// Judges events against one rule. Pure and cheap: it runs for every event.
pub trait Validator: Send + Sync + std::fmt::Debug {
    /// The issues found; empty when the event passes.
    fn validate(&self, subject: &Subject<'_>) -> Vec<Issue>;
}

/// Builds validators of one kind from their configuration (a JSON value, so rules can come
/// from code, TOML or YAML alike).
pub trait ValidatorFactory: Send + Sync {
    /// The name rules use to ask for this kind, e.g. `timestamp_bounds`.
    fn kind(&self) -> &'static str;
    /// Builds a validator, or says what is wrong with the configuration.
    fn build(&self, config: &serde_json::Value) -> Result<Box<dyn Validator>, String>;
}

pub use eye_core::storable::pointer_token;

#[cfg(test)]
pub(crate) mod test_support {
    use super::*;
    use serde_json::json;

    pub fn event(category: &str, name: &str, data: serde_json::Value, timestamp: &str) -> Event {
        serde_json::from_value(json!({
            "id": "0190a5a0-0000-7000-8000-000000000001",
            "session_id": "e2085be5-9137-4e4e-80b5-f1ffddc25423",
            "category": category,
            "name": name,
            "data": data,
            "timestamp": timestamp,
        }))
        .expect("test event")
    }

    pub fn subject<'a>(event: &'a Event, received_at: &str) -> Subject<'a> {
        Subject {
            app_id: "app",
            source: &Source::Http,
            received_at: DateTime::parse_from_rfc3339(received_at)
                .expect("received_at")
                .with_timezone(&Utc),
            event,
        }
    }
}
