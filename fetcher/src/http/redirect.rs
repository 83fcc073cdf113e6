//! Which redirects a provider fetch follows: at most a configured number (0: none), each to
//! the host the fetch started at, keeping its scheme and port or upgrading `http` to
//! `https`. A feed URL is configuration an operator trusts; where its answers point is not,
//! so a provider (or whoever took over its domain) cannot send the fetcher to another host,
//! an internal address, or a downgraded scheme.

use reqwest::Url;
use reqwest::redirect::{Attempt, Policy};

/// The reqwest policy for at most `max` redirects under [`check`].
pub fn policy(max: usize) -> Policy {
    if max == 0 {
        // Not followed: the 3xx is answered as is, a failed attempt like any other status.
        return Policy::none();
    }
    Policy::custom(move |attempt: Attempt<'_>| {
        match check(attempt.previous(), attempt.url(), max) {
            Ok(()) => attempt.follow(),
            Err(why) => attempt.error(why),
        }
    })
}

/// Whether a redirect to `next` may be followed, after the URLs of `previous` (the first is
/// the configured one).
pub fn check(previous: &[Url], next: &Url, max: usize) -> Result<(), String> {
    let (Some(first), Some(last)) = (previous.first(), previous.last()) else {
        return Err("a redirect without an origin".into());
    };
    // `previous` holds the first URL and every redirect followed so far.
    if previous.len() > max {
        return Err(format!("more than {max} redirects"));
    }
    if next.host_str() != first.host_str() {
        return Err(format!(
            "redirect to another host refused: {} -> {}",
            first.host_str().unwrap_or("?"),
            next.host_str().unwrap_or("?")
        ));
    }
    let same_origin = next.scheme() == last.scheme()
        && next.port_or_known_default() == last.port_or_known_default();
    let upgrade = last.scheme() == "http" && next.scheme() == "https";
    if same_origin || upgrade {
        Ok(())
    } else {
        Err(format!(
            "redirect refused: {}://{} -> {}://{}",
            last.scheme(),
            authority(last),
            next.scheme(),
            authority(next)
        ))
    }
}

fn authority(url: &Url) -> String {
    match (url.host_str(), url.port_or_known_default()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.to_owned(),
        _ => "?".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).expect("url")
    }

    #[test]
    fn only_the_same_host_and_scheme_or_an_upgrade_is_followed() {
        let start = [url("http://feed.example/api/events")];
        let cases = [
            ("http://feed.example/v2/events", true),
            ("https://feed.example/api/events", true),
            ("http://FEED.example/v2", true),
            ("http://other.example/api/events", false),
            ("http://127.0.0.1/api/events", false),
            ("http://feed.example:8080/api/events", false),
            ("ftp://feed.example/events", false),
            ("file:///etc/passwd", false),
        ];
        for (next, followed) in cases {
            assert_eq!(check(&start, &url(next), 5).is_ok(), followed, "{next}");
        }
        // No downgrade back to http once on https.
        let upgraded = [
            url("http://feed.example/api/events"),
            url("https://feed.example/api/events"),
        ];
        assert!(check(&upgraded, &url("http://feed.example/x"), 5).is_err());
        assert!(check(&upgraded, &url("https://feed.example/x"), 5).is_ok());
    }

    #[test]
    fn the_count_is_bounded() {
        let chain: Vec<_> = (0..3)
            .map(|i| url(&format!("http://feed.example/{i}")))
            .collect();
        assert!(check(&chain[..2], &url("http://feed.example/next"), 2).is_ok());
        let err = check(&chain, &url("http://feed.example/next"), 2).expect_err("too many");
        assert!(err.contains("more than 2"), "{err}");
    }
}
