//! The registry of validator factories and the rule set built from it.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::json;

use super::{
    AllowListFactory, FieldFactory, JsonSchemaFactory, ProviderRecordFactory, RequiredKeysFactory,
    Subject, TimestampBoundsFactory, Validator, ValidatorFactory, Violation,
};

/// What a rule does with the events it finds wrong: `enforce` refuses them (dead letter),
/// `warn` stores them and records the violation (to dry-run a new rule), `off` skips the
/// rule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Enforce,
    Warn,
    Off,
}

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
    #[serde(default)]
    pub mode: Mode,
}

/// A rule that could not be built; names the rule (and its line in a rules file) so the
/// operator can find it.
#[derive(Debug, thiserror::Error)]
#[error("validation rule #{index} ({validator}){}: {message}", line.map(|l| format!(" at line {l}")).unwrap_or_default())]
pub struct RuleError {
    /// Position of the rule in its list, from 1.
    pub index: usize,
    pub validator: String,
    pub message: String,
    /// Line of the rule in its file, when it came from one.
    pub line: Option<usize>,
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
        registry.register(JsonSchemaFactory);
        registry.register(AllowListFactory);
        registry.register(FieldFactory);
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
            .filter(|(_, rule)| rule.mode != Mode::Off)
            .map(|(i, rule)| {
                let error = |message: String| RuleError {
                    index: i + 1,
                    validator: rule.validator.clone(),
                    message,
                    line: None,
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
                    mode: rule.mode,
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
    mode: Mode,
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
    /// Every violation of every rule that applies, split by the rule's mode.
    pub fn judge(&self, subject: &Subject<'_>) -> Judgement {
        let mut judgement = Judgement::default();
        for rule in self.rules.iter().filter(|rule| rule.applies_to(subject)) {
            let found = rule
                .validator
                .validate(subject)
                .into_iter()
                .map(|issue| Violation {
                    validator: rule.id.clone(),
                    field: issue.field,
                    message: issue.message,
                });
            match rule.mode {
                Mode::Enforce => judgement.refusals.extend(found),
                Mode::Warn => judgement.warnings.extend(found),
                Mode::Off => {}
            }
        }
        judgement
    }

    /// The violations of enforced rules only; empty when the event is to be stored.
    pub fn validate(&self, subject: &Subject<'_>) -> Vec<Violation> {
        self.judge(subject).refusals
    }
}

/// What the rules found in one event.
#[derive(Debug, Default)]
pub struct Judgement {
    /// From `enforce` rules: the event is refused.
    pub refusals: Vec<Violation>,
    /// From `warn` rules: the event is stored and these are recorded.
    pub warnings: Vec<Violation>,
}

/// The top level of a rules file: `[[rule]]` tables.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    #[serde(default)]
    rule: Vec<toml::Spanned<RuleConfig>>,
}

impl Registry {
    /// Reads and builds a TOML rules file; any error names the line.
    pub fn load(&self, path: &std::path::Path) -> Result<ValidatorSet, RuleError> {
        let text = std::fs::read_to_string(path).map_err(|e| RuleError {
            index: 0,
            validator: "-".into(),
            message: format!("cannot read {}: {e}", path.display()),
            line: None,
        })?;
        self.parse(&text)
    }

    /// Builds the rules of a TOML document.
    pub fn parse(&self, text: &str) -> Result<ValidatorSet, RuleError> {
        let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
        let file: RulesFile = toml::from_str(text).map_err(|e| RuleError {
            index: 0,
            validator: "-".into(),
            message: e.message().to_owned(),
            line: e.span().map(|s| line_of(s.start)),
        })?;
        let lines: Vec<usize> = file.rule.iter().map(|r| line_of(r.span().start)).collect();
        let rules: Vec<RuleConfig> = file
            .rule
            .into_iter()
            .map(toml::Spanned::into_inner)
            .collect();
        self.build(&rules).map_err(|mut e| {
            e.line = lines.get(e.index - 1).copied();
            e
        })
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
        mode: Mode::Enforce,
    };
    vec![
        RuleConfig {
            id: None,
            validator: "timestamp_bounds".into(),
            category: None,
            name: None,
            config: json!({ "max_future_skew_secs": max_future_skew_secs }),
            mode: Mode::Enforce,
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
            category: Some(eye_core::provider::CATEGORY.into()),
            name: None,
            config: json!({}),
            mode: Mode::Enforce,
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
            mode: Mode::Enforce,
        });
        let err = Registry::builtin().build(&rules).expect_err("unknown kind");
        assert_eq!(err.index, 6);
        assert!(err.to_string().contains(
            "known: allow_list, field, json_schema, provider_record, required_keys, timestamp_bounds"
        ));

        rules.pop();
        rules[1].config = json!({"keys": "host"});
        let err = Registry::builtin().build(&rules).expect_err("bad config");
        assert_eq!((err.index, err.validator.as_str()), (2, "required_keys"));
    }

    #[test]
    fn a_rules_file_error_names_its_line() {
        let unknown_kind = "[[rule]]\nvalidator = \"timestamp_bounds\"\nconfig = { max_future_skew_secs = 1 }\n\n[[rule]]\nvalidator = \"nope\"\n";
        let err = Registry::builtin()
            .parse(unknown_kind)
            .expect_err("unknown kind");
        assert_eq!((err.index, err.line), (2, Some(5)), "{err}");
        assert!(err.to_string().contains("at line 5"), "{err}");

        let bad_config = "[[rule]]\nvalidator = \"required_keys\"\nconfig = { keys = [] }\n";
        let err = Registry::builtin()
            .parse(bad_config)
            .expect_err("bad config");
        assert_eq!(err.line, Some(1));

        let bad_syntax = "[[rule]]\nvalidator = \"required_keys\"\nconfig = { keys = [\n";
        let err = Registry::builtin().parse(bad_syntax).expect_err("syntax");
        assert!(err.line.is_some(), "{err}");

        let bad_mode = "[[rule]]\nvalidator = \"required_keys\"\nmode = \"sometimes\"\n";
        assert!(Registry::builtin().parse(bad_mode).is_err());
    }

    #[test]
    fn off_rules_are_not_even_built_and_warn_rules_do_not_refuse() {
        let text = "[[rule]]\nvalidator = \"required_keys\"\nmode = \"warn\"\nconfig = { keys = [\"host\"] }\n\n[[rule]]\nvalidator = \"no_such_kind\"\nmode = \"off\"\n";
        let set = Registry::builtin().parse(text).expect("off rule skipped");
        let e = event("c", "n", json!({}), "2024-01-01T00:00:00Z");
        let found = set.judge(&subject(&e, "2024-01-01T00:00:00Z"));
        assert!(found.refusals.is_empty());
        assert_eq!(found.warnings.len(), 1);
    }
}
