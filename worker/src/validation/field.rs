//! `field`: simple rules on one value without a full schema: it must be present, be one of
//! a list of allowed values, and (for strings) match a pattern or a format.
//!
//! The pointer points into `data`. Config: `{"pointer": "/data/method", "required": true, "one_of": ["GET", "POST"]}`,
//! `{"pointer": "/data/email", "format": "email"}`, `{"pointer": "/data/sku", "pattern": "^[A-Z]{3}-\\d+$"}`.
//! Formats: `uuid`, `email`, `uri`, `date-time` (RFC 3339).

use regex::Regex;
use serde::Deserialize;
use serde_json::Value;

use super::{Issue, Subject, Validator, ValidatorFactory};

/// Builds [`Field`] validators.
pub struct FieldFactory;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// JSON pointer into the event (`/data/...`, `/category`, ...).
    pointer: String,
    #[serde(default)]
    required: bool,
    #[serde(default)]
    one_of: Option<Vec<Value>>,
    #[serde(default)]
    pattern: Option<String>,
    #[serde(default)]
    format: Option<String>,
}

/// A string format this validator knows.
#[derive(Debug, Clone, Copy)]
enum Format {
    Uuid,
    Email,
    Uri,
    DateTime,
}

/// Checks one value of the event.
#[derive(Debug)]
pub struct Field {
    pointer: String,
    required: bool,
    one_of: Option<Vec<Value>>,
    pattern: Option<Regex>,
    format: Option<Format>,
}

impl ValidatorFactory for FieldFactory {
    fn kind(&self) -> &'static str {
        "field"
    }

    fn build(&self, config: &Value) -> Result<Box<dyn Validator>, String> {
        let config = Config::deserialize(config).map_err(|e| e.to_string())?;
        if !config.pointer.starts_with("/data/") {
            return Err(format!(
                "pointer {:?} must point into data (\"/data/...\")",
                config.pointer
            ));
        }
        let pattern = config
            .pattern
            .map(|p| Regex::new(&p).map_err(|e| format!("pattern: {e}")))
            .transpose()?;
        let format = config
            .format
            .map(|f| match f.as_str() {
                "uuid" => Ok(Format::Uuid),
                "email" => Ok(Format::Email),
                "uri" => Ok(Format::Uri),
                "date-time" => Ok(Format::DateTime),
                other => Err(format!(
                    "format {other:?}: known: uuid, email, uri, date-time"
                )),
            })
            .transpose()?;
        Ok(Box::new(Field {
            pointer: config.pointer,
            required: config.required,
            one_of: config.one_of,
            pattern,
            format,
        }))
    }
}

impl Validator for Field {
    fn validate(&self, subject: &Subject<'_>) -> Vec<Issue> {
        let value = lookup(&subject.event.data, &self.pointer);
        let Some(value) = value.filter(|v| !v.is_null()) else {
            return if self.required {
                vec![Issue::new(&self.pointer, "is required")]
            } else {
                Vec::new()
            };
        };
        let mut issues = Vec::new();
        if let Some(allowed) = &self.one_of
            && !allowed.contains(value)
        {
            issues.push(Issue::new(
                &self.pointer,
                format!("must be one of {}", Value::from(allowed.clone())),
            ));
        }
        if self.pattern.is_some() || self.format.is_some() {
            match value.as_str() {
                None => issues.push(Issue::new(&self.pointer, "must be a string")),
                Some(text) => {
                    if let Some(re) = &self.pattern
                        && !re.is_match(text)
                    {
                        issues.push(Issue::new(
                            &self.pointer,
                            format!("must match {}", re.as_str()),
                        ));
                    }
                    if let Some(format) = self.format
                        && !matches_format(format, text)
                    {
                        issues.push(Issue::new(
                            &self.pointer,
                            format!("is not a valid {format:?}").to_lowercase(),
                        ));
                    }
                }
            }
        }
        issues
    }
}

/// The value at a `/data/...` pointer, without copying `data` into a `Value` first.
fn lookup<'a>(data: &'a serde_json::Map<String, Value>, pointer: &str) -> Option<&'a Value> {
    let rest = pointer.strip_prefix("/data/")?;
    let (first, tail) = rest
        .split_once('/')
        .map_or((rest, None), |(f, t)| (f, Some(t)));
    let top = data.get(first)?;
    match tail {
        None => Some(top),
        Some(tail) => top.pointer(&format!("/{tail}")),
    }
}

fn matches_format(format: Format, text: &str) -> bool {
    match format {
        Format::Uuid => uuid::Uuid::parse_str(text).is_ok(),
        Format::Email => text.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !text.contains(char::is_whitespace)
        }),
        Format::Uri => text.split_once("://").is_some_and(|(scheme, rest)| {
            !scheme.is_empty()
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
                && !rest.is_empty()
                && !text.contains(char::is_whitespace)
        }),
        Format::DateTime => chrono::DateTime::parse_from_rfc3339(text).is_ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validation::test_support::{event, subject};
    use serde_json::json;

    fn fields(config: Value, data: Value) -> Vec<String> {
        let rule = FieldFactory.build(&config).expect("config");
        let e = event("c", "n", data, "2024-01-01T00:00:00Z");
        rule.validate(&subject(&e, "2024-01-01T00:00:00Z"))
            .into_iter()
            .map(|i| format!("{} {}", i.field, i.message))
            .collect()
    }

    #[test]
    fn table() {
        let method =
            json!({"pointer": "/data/method", "required": true, "one_of": ["GET", "POST"]});
        assert!(fields(method.clone(), json!({"method": "GET"})).is_empty());
        assert_eq!(
            fields(method.clone(), json!({"method": "PUT"})),
            ["/data/method must be one of [\"GET\",\"POST\"]"]
        );
        assert_eq!(fields(method, json!({})), ["/data/method is required"]);

        let nested = json!({"pointer": "/data/form/email", "format": "email"});
        assert!(fields(nested.clone(), json!({"form": {"email": "a@b.co"}})).is_empty());
        assert!(
            fields(nested.clone(), json!({})).is_empty(),
            "optional unless required"
        );
        assert_eq!(
            fields(nested, json!({"form": {"email": "nope"}})),
            ["/data/form/email is not a valid email"]
        );

        let sku = json!({"pointer": "/data/sku", "pattern": "^[A-Z]{3}-\\d+$"});
        assert!(fields(sku.clone(), json!({"sku": "ABC-12"})).is_empty());
        assert_eq!(
            fields(sku.clone(), json!({"sku": 12})),
            ["/data/sku must be a string"]
        );
        assert_eq!(fields(sku, json!({"sku": "abc"})).len(), 1);

        for (format, good, bad) in [
            ("uuid", "e2085be5-9137-4e4e-80b5-f1ffddc25423", "e2085be5"),
            ("uri", "https://example.com/x", "example.com"),
            ("date-time", "2024-01-01T00:00:00Z", "2024-01-01"),
        ] {
            let config = json!({"pointer": "/data/v", "format": format});
            assert!(
                fields(config.clone(), json!({"v": good})).is_empty(),
                "{format} {good}"
            );
            assert_eq!(fields(config, json!({"v": bad})).len(), 1, "{format} {bad}");
        }
    }

    #[test]
    fn bad_configuration_is_refused() {
        for config in [
            json!({"pointer": "data/x"}),
            json!({"pointer": "/data/x", "pattern": "("}),
            json!({"pointer": "/data/x", "format": "colour"}),
            json!({"pointer": "/data/x", "typo": 1}),
        ] {
            assert!(FieldFactory.build(&config).is_err(), "{config}");
        }
    }
}
