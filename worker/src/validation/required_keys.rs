//! `required_keys`: keys that must be present (and not null) in `data`.
//!
//! Config: `{"keys": ["host", "path"]}`.

use serde::Deserialize;

use super::{Issue, Subject, Validator, ValidatorFactory, pointer_token};

/// Builds [`RequiredKeys`] validators.
pub struct RequiredKeysFactory;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    keys: Vec<String>,
}

/// Refuses events whose `data` lacks one of the keys.
#[derive(Debug)]
pub struct RequiredKeys {
    keys: Vec<String>,
}

impl ValidatorFactory for RequiredKeysFactory {
    fn kind(&self) -> &'static str {
        "required_keys"
    }

    fn build(&self, config: &serde_json::Value) -> Result<Box<dyn Validator>, String> {
        let config = Config::deserialize(config).map_err(|e| e.to_string())?;
        if config.keys.is_empty() {
            return Err("keys: give at least one key".into());
        }
        Ok(Box::new(RequiredKeys { keys: config.keys }))
    }
}

impl Validator for RequiredKeys {
    fn validate(&self, subject: &Subject<'_>) -> Vec<Issue> {
        self.keys
            .iter()
            .filter(|key| subject.event.data.get(*key).is_none_or(|v| v.is_null()))
            .map(|key| {
                Issue::new(
                    format!("/data/{}", pointer_token(key)),
                    format!("data.{key} is required"),
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validation::test_support::{event, subject};
    use serde_json::json;

    #[test]
    fn names_each_missing_key() {
        let validator = RequiredKeysFactory
            .build(&json!({"keys": ["host", "path", "a/b"]}))
            .expect("config");
        let cases = [
            (json!({"host": "h", "path": "/", "a/b": 1}), vec![]),
            (json!({"host": "h", "a/b": 1}), vec!["/data/path"]),
            (
                json!({"host": null, "path": "/", "a/b": 1}),
                vec!["/data/host"],
            ),
            (json!({}), vec!["/data/host", "/data/path", "/data/a~1b"]),
        ];
        for (data, fields) in cases {
            let e = event("c", "n", data.clone(), "2024-01-01T00:00:00Z");
            let got: Vec<_> = validator
                .validate(&subject(&e, "2024-01-01T00:00:00Z"))
                .into_iter()
                .map(|i| i.field)
                .collect();
            assert_eq!(got, fields, "{data}");
        }
    }

    #[test]
    fn an_empty_key_list_is_refused() {
        assert!(RequiredKeysFactory.build(&json!({"keys": []})).is_err());
    }
}
