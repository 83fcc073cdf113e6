//! What the api, the worker and the dispatcher agree on about webhooks: a subscription's
//! filters, the stable `webhook-id` of a (subscription, event), and the message types.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Message type of a stored event.
pub const KIND_STORED: &str = "event.stored";
/// Message type of a completed erasure (a summary and counts, never the erased data).
pub const KIND_ERASED: &str = "event.erased";
/// Message type of `POST /webhooks/{id}/test`.
pub const KIND_TEST: &str = "webhook.test";

/// One filter of a subscription: an event matches when each given field is equal. A
/// subscription with no filter receives every event of its application; with several, the
/// events matching any of them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
// `deny_unknown_fields` only tells the OpenAPI schema; `FilterObject` enforces it.
#[serde(try_from = "FilterObject", deny_unknown_fields)]
pub struct Filter {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// A filter as it may arrive: a JSON object only (serde's derive would also take an array of
/// the fields in order, which the documented schema does not allow), with known keys only.
type FilterObject = std::collections::BTreeMap<String, Option<String>>;

impl TryFrom<FilterObject> for Filter {
    type Error = String;

    fn try_from(mut object: FilterObject) -> Result<Self, Self::Error> {
        let filter = Filter {
            category: object.remove("category").flatten(),
            name: object.remove("name").flatten(),
        };
        match object.keys().next() {
            Some(key) => Err(format!(
                "unknown field `{key}`, expected `category` or `name`"
            )),
            None => Ok(filter),
        }
    }
}

impl Filter {
    pub fn matches(&self, category: &str, name: &str) -> bool {
        self.category.as_deref().is_none_or(|c| c == category)
            && self.name.as_deref().is_none_or(|n| n == name)
    }
}

/// Whether an event passes a subscription's filters.
pub fn passes(filters: &[Filter], category: &str, name: &str) -> bool {
    filters.is_empty() || filters.iter().any(|f| f.matches(category, name))
}

/// The `webhook-id` of `event` sent to `subscription`: the same on every attempt, retry and
/// replay, so a receiver deduplicates by it.
pub fn webhook_id(subscription: Uuid, event: Uuid) -> String {
    format!(
        "msg_{}",
        Uuid::new_v5(&subscription, event.as_bytes()).simple()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filter_is_an_object_with_known_keys_only() {
        let filter: Filter =
            serde_json::from_str(r#"{"category": "page", "name": null}"#).expect("an object");
        assert_eq!(filter.category.as_deref(), Some("page"));
        assert_eq!(filter.name, None);
        for bad in [
            r#"[null, null]"#,
            r#"["page", "view"]"#,
            r#"{"kind": "x"}"#,
            r#"{"name": 1}"#,
        ] {
            assert!(serde_json::from_str::<Filter>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn filters_match_on_the_fields_they_name() {
        let by_category = Filter {
            category: Some("page interaction".into()),
            name: None,
        };
        let by_both = Filter {
            category: Some("form interaction".into()),
            name: Some("submit".into()),
        };
        let filters = [by_category, by_both];
        assert!(passes(&filters, "page interaction", "pageview"));
        assert!(passes(&filters, "form interaction", "submit"));
        assert!(!passes(&filters, "form interaction", "cta click"));
        assert!(passes(&[], "anything", "at all"));
    }

    #[test]
    fn webhook_ids_are_stable_per_subscription_and_event() {
        let (s, e) = (Uuid::now_v7(), Uuid::now_v7());
        assert_eq!(webhook_id(s, e), webhook_id(s, e));
        assert_ne!(webhook_id(s, e), webhook_id(Uuid::now_v7(), e));
        assert!(webhook_id(s, e).starts_with("msg_"));
    }
}
