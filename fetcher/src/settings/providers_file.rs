//! Several providers in one fetcher: a TOML file of `[[provider]]` tables, each overriding
//! the `EYE_FETCH_*` settings it names. Without the file, the fetcher pulls the one provider
//! those settings describe.
//!
//! ```toml
//! [[provider]]
//! name = "fever"              # the events' source is provider:<name>; names are unique
//! url = "https://provider.code-challenge.feverup.com/api/events"
//! interval_secs = 60
//!
//! [[provider]]
//! name = "fever-staging"
//! adapter = "fever"           # the parser; defaults to the name
//! url = "https://staging.example.com/api/events"
//! timeout_ms = 3000
//!
//! [[provider]]
//! name = "jsonplaceholder"
//! adapter = "json"            # a JSON REST API: <url>/<resource>, each a JSON array
//! url = "https://jsonplaceholder.typicode.com"
//! resources = ["posts", "comments", "users"]
//! page_size = 50              # ?_page=N&_limit=50 until a short page; 0: one request
//! parents = { comments = "postId" }
//! max_removed_percent = 50   # refuse a pass that would remove more of a resource
//! ```

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::FetcherSettings;
use crate::http::FetchPolicy;
use crate::provider::{self, Limits, Provider};

/// One provider to fetch: its name, its parser, how to call it and how often.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    /// Source name (`provider:<name>`), hash-table key and id namespace.
    pub name: String,
    pub adapter: Arc<dyn Provider>,
    pub interval: Duration,
    /// Cap on one whole fetch cycle.
    pub cycle_timeout: Duration,
    /// A pass removing more than this percentage of a resource's records is refused.
    pub max_removed_percent: u8,
    pub policy: FetchPolicy,
    pub limits: Limits,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    provider: Vec<Entry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    name: String,
    adapter: Option<String>,
    url: Option<String>,
    interval_secs: Option<u64>,
    timeout_ms: Option<u64>,
    read_timeout_ms: Option<u64>,
    cycle_timeout_secs: Option<u64>,
    max_redirects: Option<usize>,
    retries: Option<usize>,
    backoff_ms: Option<u64>,
    min_gap_ms: Option<u64>,
    breaker_failures: Option<u32>,
    breaker_cooldown_secs: Option<u64>,
    max_bytes: Option<usize>,
    max_depth: Option<usize>,
    resources: Option<Vec<String>>,
    page_size: Option<usize>,
    parents: Option<std::collections::BTreeMap<String, String>>,
    max_removed_percent: Option<u8>,
}

impl FetcherSettings {
    /// The providers to fetch: those of the file, or the one of the settings.
    pub fn providers(&self) -> anyhow::Result<Vec<ProviderConfig>> {
        match &self.providers_file {
            None => Ok(vec![self.provider_config(&self.provider)?]),
            Some(path) => self.providers_from(path),
        }
    }

    fn providers_from(&self, path: &Path) -> anyhow::Result<Vec<ProviderConfig>> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("EYE_FETCH_PROVIDERS_FILE {}: {e}", path.display()))?;
        parse_providers(self, &text)
            .map_err(|e| anyhow::anyhow!("EYE_FETCH_PROVIDERS_FILE {}: {e}", path.display()))
    }

    /// This provider under `name`, as the settings describe it, checked.
    fn provider_config(&self, name: &str) -> anyhow::Result<ProviderConfig> {
        let adapter = provider::build(&self.provider, &self.adapter_options())
            .ok_or_else(|| anyhow::anyhow!("unknown provider adapter {:?}", self.provider))?;
        for resource in &self.resources {
            let valid = !resource.is_empty()
                && resource.bytes().all(|b| {
                    b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'/' || b == b'.'
                })
                && !resource.starts_with('/')
                && !resource.contains("..")
                && resource.len() <= 128;
            anyhow::ensure!(
                valid,
                "{name}: resource {resource:?}: use a-z, A-Z, 0-9, -, _, . and / (a path under the url)"
            );
        }
        let valid_name = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        anyhow::ensure!(valid_name, "provider name {name:?}: use a-z, 0-9, - and _");
        reqwest::Url::parse(&self.url).map_err(|e| anyhow::anyhow!("url {:?}: {e}", self.url))?;
        anyhow::ensure!(
            self.interval_secs > 0,
            "{name}: interval_secs must be positive"
        );
        anyhow::ensure!(self.timeout_ms > 0, "{name}: timeout_ms must be positive");
        anyhow::ensure!(
            self.read_timeout_ms > 0,
            "{name}: read_timeout_ms must be positive"
        );
        anyhow::ensure!(
            self.cycle_timeout_secs > 0,
            "{name}: cycle_timeout_secs must be positive"
        );
        anyhow::ensure!(
            self.max_removed_percent <= 100,
            "{name}: max_removed_percent must be 0 to 100"
        );
        anyhow::ensure!(
            self.breaker_failures > 0,
            "{name}: breaker_failures must be positive"
        );
        Ok(ProviderConfig {
            name: name.to_owned(),
            adapter,
            interval: self.interval(),
            cycle_timeout: self.cycle_timeout(),
            max_removed_percent: self.max_removed_percent,
            policy: self.policy(),
            limits: self.limits(),
        })
    }
}

/// Reads a providers file over `defaults`.
pub fn parse_providers(
    defaults: &FetcherSettings,
    text: &str,
) -> anyhow::Result<Vec<ProviderConfig>> {
    let file: File = toml::from_str(text)?;
    anyhow::ensure!(!file.provider.is_empty(), "no [[provider]] listed");
    let mut names = HashSet::new();
    file.provider
        .into_iter()
        .map(|entry| {
            anyhow::ensure!(
                names.insert(entry.name.clone()),
                "provider {:?} is listed twice",
                entry.name
            );
            let mut s = defaults.clone();
            s.provider = entry.adapter.unwrap_or_else(|| entry.name.clone());
            macro_rules! overlay {
                ($($field:ident),*) => {$(
                    if let Some(value) = entry.$field {
                        s.$field = value;
                    }
                )*};
            }
            overlay!(
                url,
                interval_secs,
                timeout_ms,
                read_timeout_ms,
                cycle_timeout_secs,
                max_redirects,
                retries,
                backoff_ms,
                min_gap_ms,
                breaker_failures,
                breaker_cooldown_secs,
                max_bytes,
                max_depth,
                resources,
                page_size,
                parents,
                max_removed_percent
            );
            s.provider_config(&entry.name)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn defaults() -> FetcherSettings {
        FetcherSettings::parse_from(["eye-fetcher", "--timeout-ms", "5000"])
    }

    #[test]
    fn entries_override_the_settings_they_name() {
        let text = r#"
[[provider]]
name = "fever"
url = "http://a.example/api/events"
interval_secs = 10

[[provider]]
name = "fever-b"
adapter = "fever"
url = "http://b.example/api/events"
timeout_ms = 300
"#;
        let providers = parse_providers(&defaults(), text).expect("valid");
        let summary: Vec<_> = providers
            .iter()
            .map(|p| {
                (
                    p.name.as_str(),
                    p.adapter.name(),
                    p.policy.url.as_str(),
                    p.interval.as_secs(),
                    p.policy.timeout.as_millis(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("fever", "fever", "http://a.example/api/events", 10, 5000),
                ("fever-b", "fever", "http://b.example/api/events", 60, 300),
            ]
        );
    }

    #[test]
    fn a_json_provider_reads_its_resources_page_by_page() {
        let text = r#"
[[provider]]
name = "placeholder"
adapter = "json"
url = "http://127.0.0.1:3000/"
resources = ["posts", "comments"]
page_size = 20
parents = { posts = "authorId" }
"#;
        let providers = parse_providers(&defaults(), text).expect("valid");
        let urls: Vec<_> = providers[0]
            .adapter
            .listings(&providers[0].policy.url)
            .iter()
            .map(|l| (l.resource.clone(), l.page_url(2)))
            .collect();
        assert_eq!(
            urls,
            [
                (
                    Some("posts".into()),
                    "http://127.0.0.1:3000/posts?_page=2&_limit=20".into()
                ),
                (
                    Some("comments".into()),
                    "http://127.0.0.1:3000/comments?_page=2&_limit=20".into()
                ),
            ]
        );
    }

    #[test]
    fn mistakes_are_refused_with_their_reason() {
        let cases = [
            ("provider = []", "no [[provider]]"),
            ("[[provider]]\nname = \"xml\"", "unknown provider adapter"),
            (
                "[[provider]]\nname = \"j\"\nadapter = \"json\"\nresources = [\"../x\"]",
                "resource",
            ),
            (
                "[[provider]]\nname = \"Fever\"\nadapter = \"fever\"",
                "use a-z",
            ),
            ("[[provider]]\nname = \"fever\"\nurl = \"nope\"", "url"),
            (
                "[[provider]]\nname = \"fever\"\ninterval_secs = 0",
                "interval_secs",
            ),
            (
                "[[provider]]\nname = \"fever\"\nread_timeout_ms = 0",
                "read_timeout_ms",
            ),
            (
                "[[provider]]\nname = \"fever\"\ncolour = 1",
                "unknown field",
            ),
            (
                "[[provider]]\nname = \"fever\"\n[[provider]]\nname = \"fever\"",
                "listed twice",
            ),
        ];
        for (text, expected) in cases {
            let err = parse_providers(&defaults(), text)
                .map(|_| ())
                .expect_err(text)
                .to_string();
            assert!(err.contains(expected), "{text:?}: {err}");
        }
    }
}
