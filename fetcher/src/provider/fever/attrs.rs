//! Typed reading of one element's attributes, remembering the first problem met so the caller
//! can refuse the record with a precise reason.

use std::borrow::Cow;
use std::str::FromStr;
use std::sync::LazyLock;

use chrono::NaiveDateTime;
use chrono::format::{Item, Parsed, StrftimeItems};
use quick_xml::events::BytesStart;
use rust_decimal::Decimal;

use eye_core::provider::fields::printable;

/// The feed's date-time form: local time, no offset.
const DATETIME: &str = "%Y-%m-%dT%H:%M:%S";

/// Why an attribute is unusable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    Missing(&'static str),
    Invalid {
        name: &'static str,
        value: String,
        why: String,
    },
    /// The attribute list itself is broken (a bad escape, an unknown entity, no quotes).
    Malformed(String),
}

impl Problem {
    pub fn describe(self) -> String {
        match self {
            Self::Missing(name) => format!("missing attribute {name}"),
            // The value as the document had it, shortened: a reason is not a copy channel.
            Self::Invalid { name, value, why } => {
                format!("{name}={:?}: {why}", printable(&value, 64))
            }
            Self::Malformed(why) => format!("malformed attributes: {why}"),
        }
    }
}

/// The attributes of one element, unescaped (borrowed unless an escape forced a copy).
pub struct Attrs<'a> {
    values: Vec<(Cow<'a, [u8]>, Cow<'a, str>)>,
    problem: Option<Problem>,
}

impl<'a> Attrs<'a> {
    pub fn read(e: &'a BytesStart<'a>) -> Self {
        let mut values = Vec::with_capacity(8);
        let mut problem = None;
        for attr in e.attributes() {
            let read = attr
                .map_err(|e| e.to_string())
                .and_then(|a| match a.unescape_value() {
                    Ok(v) => Ok((a.key.into_inner(), v)),
                    Err(e) => Err(e.to_string()),
                });
            match read {
                Ok((key, value)) => values.push((Cow::Borrowed(key), value)),
                Err(why) => {
                    problem.get_or_insert(Problem::Malformed(why));
                }
            }
        }
        Self { values, problem }
    }

    /// The first problem met while reading, if any.
    pub fn problem(&mut self) -> Option<Problem> {
        self.problem.take()
    }

    fn note(&mut self, problem: Problem) {
        self.problem.get_or_insert(problem);
    }

    fn raw(&self, name: &str) -> Option<&str> {
        self.values
            .iter()
            .find(|(k, _)| k.as_ref() == name.as_bytes())
            .map(|(_, v)| v.as_ref())
    }

    /// An optional attribute.
    pub fn optional(&mut self, name: &'static str) -> Option<String> {
        self.raw(name).map(str::to_owned)
    }

    /// A required attribute.
    pub fn text(&mut self, name: &'static str) -> Option<String> {
        let value = self.optional(name);
        if value.is_none() {
            self.note(Problem::Missing(name));
        }
        value
    }

    /// A required attribute under its current name or its legacy one.
    pub fn text_either(&mut self, name: &'static str, legacy: &'static str) -> Option<String> {
        match self.optional(name).or_else(|| self.optional(legacy)) {
            Some(v) => Some(v),
            None => {
                self.note(Problem::Missing(name));
                None
            }
        }
    }

    fn parsed<T>(
        &mut self,
        name: &'static str,
        value: Option<String>,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let value = value?;
        match parse(value.trim()) {
            Ok(v) => Some(v),
            Err(why) => {
                self.note(Problem::Invalid { name, value, why });
                None
            }
        }
    }

    pub fn datetime(&mut self, name: &'static str) -> Option<NaiveDateTime> {
        let value = self.text(name);
        self.parsed(name, value, parse_datetime)
    }

    pub fn datetime_either(
        &mut self,
        name: &'static str,
        legacy: &'static str,
    ) -> Option<NaiveDateTime> {
        let value = self.text_either(name, legacy);
        self.parsed(name, value, parse_datetime)
    }

    pub fn boolean(&mut self, name: &'static str) -> Option<bool> {
        let value = self.text(name);
        self.parsed(name, value, |v| match v {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err("not true or false".into()),
        })
    }

    pub fn integer(&mut self, name: &'static str) -> Option<i64> {
        let value = self.text(name);
        self.parsed(name, value, |v| match v.parse::<i64>() {
            Ok(n) if n >= 0 => Ok(n),
            Ok(_) => Err("negative".into()),
            Err(e) => Err(e.to_string()),
        })
    }

    /// A non-negative exact decimal (prices are never floats).
    pub fn decimal(&mut self, name: &'static str) -> Option<Decimal> {
        let value = self.text(name);
        self.parsed(name, value, |v| match Decimal::from_str(v) {
            Ok(d) if d.is_sign_negative() => Err("negative".into()),
            Ok(d) => Ok(d),
            Err(e) => Err(format!("not a decimal number ({e})")),
        })
    }
}

/// [`DATETIME`] compiled once (re-reading the format string per value was a quarter of the
/// parser's time).
static DATETIME_ITEMS: LazyLock<Vec<Item<'static>>> = LazyLock::new(|| {
    StrftimeItems::new(DATETIME)
        .parse_to_owned()
        .expect("a valid format")
});

fn parse_datetime(value: &str) -> Result<NaiveDateTime, String> {
    let mut parsed = Parsed::new();
    chrono::format::parse(&mut parsed, value, DATETIME_ITEMS.iter())
        .and_then(|()| parsed.to_naive_datetime_with_offset(0))
        .map_err(|e| format!("not a valid date-time YYYY-MM-DDTHH:MM:SS ({e})"))
}
