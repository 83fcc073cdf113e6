//! The registry of validator factories and the rule set built from it.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::json;

use super::{
    ProviderRecordFactory, RequiredKeysFactory, Subject, TimestampBoundsFactory, Validator,
    ValidatorFactory, Violation,
};

/// One rule as configured: which kind of validator, for which events, with what settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Name recorded on dead letters; defaults to the validator kind.
    #[serde(default)]
    pub id: Option<String>,
    /// The factory kind, e.g. `required_keys`.
    pub validator: String,
    /// Category the rule applies to; every category when absent.
    #[serde(default)]
    pub category: Option<String>,
    /// Event name the rule applies to; every name when absent.
    #[serde(default)]
    pub name: Option<String>,
    /// The factory's own configuration.
    #[serde(default)]
    pub config: serde_json::Value,
}

/// A rule that could not be built; names the rule so the operator can find it.
#[derive(Debug, thiserror::Error)]
#[error("validation rule #{index} ({validator}): {message}")]
pub struct RuleError {
    /// Position of the rule in its list, from 1.
    pub index: usize,
    pub validator: String,
    pub message: String,
}

/// The validator factories known by kind.
pub struct Registry {
    factories: HashMap<&'static str, Box<dyn ValidatorFactory>>,
}

impl Registry {
    /// A registry with no factory, for tests and custom deployments.
    pub fn empty() -> Self {
        Self {
            factories: HashMap::new(),
        }
    }

    /// Every built-in factory. Register a new validator here: one line.
    pub fn builtin() -> Self {
        let mut registry = Self::empty();
        registry.register(TimestampBoundsFactory);
        registry.register(RequiredKeysFactory);
        registry.register(ProviderRecordFactory);
        registry
    }

    /// Adds a factory; a later registration of the same kind replaces the earlier one.
    pub fn register(&mut self, factory: impl ValidatorFactory + 'static) -> &mut Self {
        self.factories.insert(factory.kind(), Box::new(factory));
        self
    }

    /// Builds every rule, refusing the whole set if one rule is wrong.
    pub fn build(&self, rules: &[RuleConfig]) -> Result<ValidatorSet, RuleError> {
        let built = rules
            .iter()
            .enumerate()
            .map(|(i, rule)| {
                let error = |message: String| RuleError {
                    index: i + 1,
                    validator: rule.validator.clone(),
                    message,
                };
                let factory = self.factories.get(rule.validator.as_str()).ok_or_else(|| {
                    let mut known: Vec<_> = self.factories.keys().copied().collect();
                    known.sort_unstable();
                    error(format!("unknown validator; known: {}", known.join(", ")))
                })?;
                let validator = factory.build(&rule.config).map_err(error)?;
                Ok(BuiltRule {
                    id: rule.id.clone().unwrap_or_else(|| rule.validator.clone()),
                    category: rule.category.clone(),
                    name: rule.name.clone(),
                    validator,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(ValidatorSet { rules: built })
    }
}

#[derive(Debug)]
struct BuiltRule {
    id: String,
    category: Option<String>,
    name: Option<String>,
    validator: Box<dyn Validator>,
}

impl BuiltRule {
    fn applies_to(&self, subject: &Subject<'_>) -> bool {
        self.category
            .as_deref()
            .is_none_or(|c| c == subject.event.category)
            && self.name.as_deref().is_none_or(|n| n == subject.event.name)
    }
}

/// The rules in force; what the pipeline asks about each event.
#[derive(Debug)]
pub struct ValidatorSet {
    rules: Vec<BuiltRule>,
}

impl ValidatorSet {
    /// Every violation of every rule that applies; empty when the event is valid.
    pub fn validate(&self, subject: &Subject<'_>) -> Vec<Violation> {
        self.rules
            .iter()
            .filter(|rule| rule.applies_to(subject))
            .flat_map(|rule| {
                rule.validator
                    .validate(subject)
                    .into_iter()
                    .map(|issue| Violation {
                        validator: rule.id.clone(),
                        field: issue.field,
                        message: issue.message,
                    })
            })
            .collect()
    }
}

/// The rules a worker runs with by default: timestamps within the skew for every event,
/// and the keys the seed's event types always carry.
pub fn default_rules(max_future_skew_secs: u32) -> Vec<RuleConfig> {
    let required = |category: &str, name: &str, keys: &[&str]| RuleConfig {
        id: None,
        validator: "required_keys".into(),
        category: Some(category.into()),
        name: Some(name.into()),
        config: json!({ "keys": keys }),
    };
    vec![
        RuleConfig {
            id: None,
            validator: "timestamp_bounds".into(),
            category: None,
            name: None,
            config: json!({ "max_future_skew_secs": max_future_skew_secs }),
        },
        required("page interaction", "pageview", &["host", "path"]),
        required(
            "page interaction",
            "cta click",
            &["host", "path", "element"],
        ),
        required("form interaction", "submit", &["host", "path", "form"]),
        RuleConfig {
            id: None,
            validator: "provider_record".into(),
            category: Some(crate::provider::record::CATEGORY.into()),
            name: None,
            config: json!({}),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validation::test_support::{event, subject};

    #[test]
    fn default_rules_build_and_judge_the_seed_types() {
        let set = Registry::builtin()
            .build(&default_rules(300))
            .expect("rules");
        let ok = event(
            "page interaction",
            "cta click",
            json!({"host": "h", "path": "/", "element": "btn"}),
            "2024-01-01T00:00:00Z",
        );
        assert!(
            set.validate(&subject(&ok, "2024-01-01T00:00:00Z"))
                .is_empty()
        );

        let bad = event(
            "page interaction",
            "cta click",
            json!({"host": "h", "path": "/"}),
            "2024-01-02T00:00:00Z",
        );
        let violations = set.validate(&subject(&bad, "2024-01-01T00:00:00Z"));
        let found: Vec<_> = violations
            .iter()
            .map(|v| (v.validator.as_str(), v.field.as_str()))
            .collect();
        assert_eq!(
            found,
            [
                ("timestamp_bounds", "/timestamp"),
                ("required_keys", "/data/element")
            ]
        );
    }

    #[test]
    fn rules_apply_only_to_their_types() {
        let set = Registry::builtin()
            .build(&default_rules(300))
            .expect("rules");
        let other = event("custom", "thing", json!({}), "2024-01-01T00:00:00Z");
        assert!(
            set.validate(&subject(&other, "2024-01-01T00:00:00Z"))
                .is_empty()
        );
    }

    #[test]
    fn a_bad_rule_is_refused_with_its_position() {
        let mut rules = default_rules(300);
        rules.push(RuleConfig {
            id: None,
            validator: "no_such_kind".into(),
            category: None,
            name: None,
            config: json!(null),
        });
        let err = Registry::builtin().build(&rules).expect_err("unknown kind");
        assert_eq!(err.index, 6);
        assert!(
            err.to_string()
                .contains("known: provider_record, required_keys, timestamp_bounds")
        );

        rules.pop();
        rules[1].config = json!({"keys": "host"});
        let err = Registry::builtin().build(&rules).expect_err("bad config");
        assert_eq!((err.index, err.validator.as_str()), (2, "required_keys"));
    }
}
