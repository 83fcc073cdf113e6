//! `provider_record`: judges events a provider fetcher published. A plan must carry a
//! complete plan record within the storable bounds (`eye_core::provider::fields`); a record
//! the parser refused is refused here with the parser's reason, so it lands in the dead
//! letters like any invalid event. A JSON provider's `record` and `record_removed` must carry
//! a complete item (resource, id) within the bounds of `eye_core::provider::item`.

use serde_json::Value;

use super::{Issue, Subject, Validator, ValidatorFactory};
use eye_core::provider::{
    ITEM_NAME, ItemRecord, PLAN_NAME, PlanRecord, REJECTED_NAME, REMOVED_NAME,
};

/// Builds [`ProviderRecord`] validators; takes no configuration.
pub struct ProviderRecordFactory;

impl ValidatorFactory for ProviderRecordFactory {
    fn kind(&self) -> &'static str {
        "provider_record"
    }

    fn build(&self, _config: &Value) -> Result<Box<dyn Validator>, String> {
        Ok(Box::new(ProviderRecord))
    }
}

/// See the module documentation.
#[derive(Debug)]
pub struct ProviderRecord;

impl Validator for ProviderRecord {
    fn validate(&self, subject: &Subject<'_>) -> Vec<Issue> {
        let event = subject.event;
        if !matches!(subject.source, eye_core::Source::Provider(_)) {
            return vec![Issue::new(
                "/category",
                "provider events come from a provider",
            )];
        }
        match event.name.as_str() {
            // The fetcher refuses plans out of the storable bounds before publishing; this
            // holds the line for any other publisher, so no such plan reaches a statement.
            PLAN_NAME => match PlanRecord::from_data(&event.data).map(|plan| plan.problem()) {
                Ok(None) => Vec::new(),
                Ok(Some(problem)) => vec![Issue::new("/data", problem)],
                Err(e) => vec![Issue::new("/data", format!("not a plan record: {e}"))],
            },
            // A JSON provider's record (or its removal): a complete item within the bounds.
            ITEM_NAME | REMOVED_NAME => match ItemRecord::from_data(&event.data) {
                Ok(item) if item.removed != (event.name == REMOVED_NAME) => vec![Issue::new(
                    "/data/removed",
                    "`removed` does not match the event name",
                )],
                Ok(item) => item
                    .problem()
                    .map(|p| vec![Issue::new("/data", p)])
                    .unwrap_or_default(),
                Err(e) => vec![Issue::new("/data", format!("not a provider record: {e}"))],
            },
            REJECTED_NAME => {
                let reason = event
                    .data
                    .get("reason")
                    .and_then(Value::as_str)
                    .unwrap_or("refused by the provider parser");
                vec![Issue::new("/data", reason)]
            }
            other => vec![Issue::new(
                "/name",
                format!("unknown provider record {other:?}"),
            )],
        }
    }
}
