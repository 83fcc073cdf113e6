//! `allow_list`: the known (category, name) types. What happens to an unknown type is the
//! rule's mode: `enforce` rejects it, `warn` accepts it and flags it, `off` accepts it.
//!
//! Config: `{"types": [{"category": "page interaction", "name": "pageview"}, ...]}`.

use serde::Deserialize;

use super::{Issue, Subject, Validator, ValidatorFactory};

/// Builds [`AllowList`] validators.
pub struct AllowListFactory;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    types: Vec<Type>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Type {
    category: String,
    name: String,
}

/// Flags event types that are not on the list.
#[derive(Debug)]
pub struct AllowList {
    /// A short list, scanned: no allocation per event.
    known: Vec<(String, String)>,
}

impl ValidatorFactory for AllowListFactory {
    fn kind(&self) -> &'static str {
        "allow_list"
    }

    fn build(&self, config: &serde_json::Value) -> Result<Box<dyn Validator>, String> {
        let config = Config::deserialize(config).map_err(|e| e.to_string())?;
        if config.types.is_empty() {
            return Err("types: list at least one (category, name)".into());
        }
        Ok(Box::new(AllowList {
            known: config
                .types
                .into_iter()
                .map(|t| (t.category, t.name))
                .collect(),
        }))
    }
}

impl Validator for AllowList {
    fn validate(&self, subject: &Subject<'_>) -> Vec<Issue> {
        let e = subject.event;
        if self
            .known
            .iter()
            .any(|(c, n)| *c == e.category && *n == e.name)
        {
            return Vec::new();
        }
        vec![Issue::new(
            "/name",
            format!("unknown event type ({:?}, {:?})", e.category, e.name),
        )]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validation::test_support::{event, subject};
    use serde_json::json;

    #[test]
    fn known_types_pass_and_unknown_ones_are_named() {
        let rule = AllowListFactory
            .build(&json!({"types": [{"category": "page interaction", "name": "pageview"}]}))
            .expect("config");
        let known = event(
            "page interaction",
            "pageview",
            json!({}),
            "2024-01-01T00:00:00Z",
        );
        assert!(
            rule.validate(&subject(&known, "2024-01-01T00:00:00Z"))
                .is_empty()
        );
        let unknown = event(
            "page interaction",
            "scroll",
            json!({}),
            "2024-01-01T00:00:00Z",
        );
        let issues = rule.validate(&subject(&unknown, "2024-01-01T00:00:00Z"));
        assert_eq!(issues[0].field, "/name");
        assert!(issues[0].message.contains("scroll"));
        assert!(AllowListFactory.build(&json!({"types": []})).is_err());
    }
}
