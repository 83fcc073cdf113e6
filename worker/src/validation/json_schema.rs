//! `json_schema`: `data` must match a JSON Schema (any draft the jsonschema crate knows).
//!
//! Config: `{"schema": {...}}`. Remote `$ref`s are not resolved: a rule is self-contained.

use serde::Deserialize;

use super::{Issue, Subject, Validator, ValidatorFactory};

/// Builds [`JsonSchema`] validators.
pub struct JsonSchemaFactory;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    schema: serde_json::Value,
}

/// Checks `data` against a compiled schema; one issue per error, at its JSON pointer.
pub struct JsonSchema {
    compiled: jsonschema::Validator,
}

impl std::fmt::Debug for JsonSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JsonSchema")
    }
}

impl ValidatorFactory for JsonSchemaFactory {
    fn kind(&self) -> &'static str {
        "json_schema"
    }

    fn build(&self, config: &serde_json::Value) -> Result<Box<dyn Validator>, String> {
        let config = Config::deserialize(config).map_err(|e| e.to_string())?;
        let compiled =
            jsonschema::validator_for(&config.schema).map_err(|e| format!("schema: {e}"))?;
        Ok(Box::new(JsonSchema { compiled }))
    }
}

impl Validator for JsonSchema {
    fn validate(&self, subject: &Subject<'_>) -> Vec<Issue> {
        // The schema judges `data`; its pointers are made relative to the event.
        let data = serde_json::Value::Object(subject.event.data.clone());
        self.compiled
            .iter_errors(&data)
            .map(|e| Issue::new(format!("/data{}", e.instance_path()), e.to_string()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validation::test_support::{event, subject};
    use serde_json::json;

    fn form_rule() -> Box<dyn Validator> {
        JsonSchemaFactory
            .build(&json!({"schema": {
                "type": "object",
                "required": ["host", "path", "form"],
                "properties": {
                    "host": {"type": "string", "minLength": 1},
                    "path": {"type": "string", "pattern": "^/"},
                    "form": {"type": "object", "required": ["first_name"]}
                }
            }}))
            .expect("schema compiles")
    }

    #[test]
    fn reports_each_error_at_its_pointer() {
        let rule = form_rule();
        let cases = [
            (
                json!({"host": "h", "path": "/", "form": {"first_name": "J"}}),
                vec![],
            ),
            (
                json!({"host": "h", "path": "nope", "form": {"first_name": "J"}}),
                vec!["/data/path"],
            ),
            (
                json!({"host": "h", "path": "/", "form": {}}),
                vec!["/data/form"],
            ),
            (
                json!({"host": 7, "path": "/", "form": {"first_name": "J"}}),
                vec!["/data/host"],
            ),
        ];
        for (data, fields) in cases {
            let e = event(
                "form interaction",
                "submit",
                data.clone(),
                "2024-01-01T00:00:00Z",
            );
            let got: Vec<_> = rule
                .validate(&subject(&e, "2024-01-01T00:00:00Z"))
                .into_iter()
                .map(|i| i.field)
                .collect();
            assert_eq!(got, fields, "{data}");
        }
    }

    #[test]
    fn an_invalid_schema_is_refused() {
        let err = JsonSchemaFactory
            .build(&json!({"schema": {"type": "no-such-type"}}))
            .expect_err("bad schema");
        assert!(err.starts_with("schema:"), "{err}");
        assert!(JsonSchemaFactory.build(&json!({})).is_err());
    }
}
