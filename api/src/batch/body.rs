//! Reading a batch body: its content type (a JSON array or NDJSON), its encoding (gzip, zstd
//! or none), the size limit checked on the decompressed bytes and the ratio guard, then the
//! split into one raw JSON text per event. Nothing here judges an event.

use std::io::Read;

use axum::body::Body;
use axum::extract::{FromRequest, Request};
use axum::http::HeaderMap;
use axum::http::header::{CONTENT_ENCODING, CONTENT_TYPE};
use futures::StreamExt;
use serde_json::value::RawValue;

use crate::error::ApiError;
use crate::settings::BatchSettings;
use crate::state::AppState;

/// A batch body, read and decompressed (not yet split into events).
#[derive(Debug)]
pub struct BatchBody {
    pub format: Format,
    pub bytes: Vec<u8>,
}

impl FromRequest<AppState> for BatchBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        let format = format_of(&parts.headers)?;
        let bytes = read(&parts.headers, body, &state.batch).await?;
        Ok(Self { format, bytes })
    }
}

/// How the events of a batch are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `application/json`: one JSON array of events.
    Array,
    /// `application/x-ndjson`: one event per line (blank lines skipped).
    Ndjson,
}

/// How the body is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Identity,
    Gzip,
    Zstd,
}

/// The format and encoding the headers announce, or 415 naming what is accepted.
fn format_of(headers: &HeaderMap) -> Result<Format, ApiError> {
    let content_type = header_essence(headers, CONTENT_TYPE);
    let format = match content_type.as_deref() {
        Some("application/json") => Format::Array,
        Some("application/x-ndjson" | "application/jsonl" | "application/json-seq") => {
            Format::Ndjson
        }
        Some(t) if t.starts_with("application/") && t.ends_with("+json") => Format::Array,
        _ => {
            return Err(ApiError::Unsupported(
                "Content-Type must be application/json (a JSON array of events) or \
                 application/x-ndjson (one event per line)"
                    .into(),
            ));
        }
    };
    encoding_of(headers)?;
    Ok(format)
}

fn encoding_of(headers: &HeaderMap) -> Result<Encoding, ApiError> {
    match header_essence(headers, CONTENT_ENCODING).as_deref() {
        None | Some("" | "identity") => Ok(Encoding::Identity),
        Some("gzip" | "x-gzip") => Ok(Encoding::Gzip),
        Some("zstd") => Ok(Encoding::Zstd),
        Some(_) => Err(ApiError::Unsupported(
            "Content-Encoding must be gzip, zstd or absent".into(),
        )),
    }
}

fn header_essence(headers: &HeaderMap, name: axum::http::HeaderName) -> Option<String> {
    let value = headers.get(name)?.to_str().unwrap_or("\u{0}");
    Some(
        value
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase(),
    )
}

/// The body, read up to the batch limit (413 past it) and decompressed under the limit and
/// the ratio guard: memory never holds more than the limit, whatever the body inflates to.
async fn read(
    headers: &HeaderMap,
    body: Body,
    limits: &BatchSettings,
) -> Result<Vec<u8>, ApiError> {
    let limit = limits.max_bytes as usize;
    let encoding = encoding_of(headers)?;
    let mut raw = Vec::new();
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk
            .map_err(|e| ApiError::MalformedJson(format!("the body could not be read: {e}")))?;
        if raw.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge {
                limit: limits.max_bytes,
            });
        }
        raw.extend_from_slice(&chunk);
    }
    match encoding {
        Encoding::Identity => Ok(raw),
        Encoding::Gzip => inflate(&raw, limits),
        Encoding::Zstd => unzstd(&raw, limits),
    }
}

/// Gunzips `compressed` under the limits (see [`decompress`]).
fn inflate(compressed: &[u8], limits: &BatchSettings) -> Result<Vec<u8>, ApiError> {
    let decoder = flate2::read::MultiGzDecoder::new(compressed);
    decompress(decoder, "gzip", compressed.len(), limits)
}

/// Decompresses a zstd body (one or more frames) under the limits (see [`decompress`]). The
/// decoder's window is capped too (zstd's default, 8 MiB), so a frame asking for a huge
/// window is refused before it is allocated.
fn unzstd(compressed: &[u8], limits: &BatchSettings) -> Result<Vec<u8>, ApiError> {
    let corrupt =
        |e: std::io::Error| ApiError::MalformedJson(format!("the zstd body is corrupt: {e}"));
    let mut decoder = zstd::stream::read::Decoder::with_buffer(compressed).map_err(corrupt)?;
    decoder.window_log_max(23).map_err(corrupt)?;
    decompress(decoder, "zstd", compressed.len(), limits)
}

/// Reads `decoder` to its end, stopping as soon as the output passes the byte limit or
/// `max_ratio` times the `compressed` size (a decompression bomb): memory never holds more.
fn decompress(
    decoder: impl Read,
    name: &str,
    compressed: usize,
    limits: &BatchSettings,
) -> Result<Vec<u8>, ApiError> {
    let by_ratio = compressed.saturating_mul(limits.max_ratio as usize);
    let limit = limits.max_bytes as usize;
    let cap = by_ratio.min(limit);
    let mut out = Vec::with_capacity(cap.min(4 * compressed));
    decoder
        .take(cap as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| ApiError::MalformedJson(format!("the {name} body is corrupt: {e}")))?;
    if out.len() <= cap {
        Ok(out)
    } else if cap == limit {
        Err(ApiError::PayloadTooLarge {
            limit: limits.max_bytes,
        })
    } else {
        Err(ApiError::CompressionRatio {
            ratio: limits.max_ratio,
        })
    }
}

/// One raw JSON text per event, in input order; 400 if the layout itself is broken (an
/// array that does not parse), 413 past the event count, 400 for an empty batch.
pub fn split<'a>(
    bytes: &'a [u8],
    format: Format,
    limits: &BatchSettings,
) -> Result<Vec<&'a [u8]>, ApiError> {
    let items: Vec<&[u8]> = match format {
        Format::Array => {
            let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
            if first != Some(&b'[') {
                return Err(ApiError::MalformedJson(
                    "the body must be a JSON array of events (or NDJSON, with Content-Type \
                     application/x-ndjson)"
                        .into(),
                ));
            }
            let raw: Vec<&RawValue> = serde_json::from_slice(bytes)
                .map_err(|e| ApiError::MalformedJson(e.to_string()))?;
            raw.into_iter().map(|v| v.get().as_bytes()).collect()
        }
        Format::Ndjson => bytes
            .split(|b| *b == b'\n')
            .map(<[u8]>::trim_ascii)
            .filter(|line| !line.is_empty())
            .collect(),
    };
    if items.is_empty() {
        return Err(ApiError::EmptyBatch);
    }
    if items.len() > limits.max_events as usize {
        return Err(ApiError::TooManyEvents {
            limit: limits.max_events,
        });
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    const LIMITS: BatchSettings = BatchSettings {
        max_events: 3,
        max_bytes: 10_000,
        max_ratio: 50,
    };

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(bytes).expect("gzip");
        encoder.finish().expect("gzip")
    }

    #[test]
    fn zstd_decompresses_within_the_limit_and_refuses_bombs_and_oversize() {
        let zstd = |bytes: &[u8]| zstd::encode_all(bytes, 19).expect("zstd");
        let body = br#"[{"a":"hello"},{"a":"world"}]"#;
        assert_eq!(unzstd(&zstd(body), &LIMITS).expect("unzstd"), body);
        // Two frames back to back are one body, as with gzip members.
        let two = [zstd(b"[1,"), zstd(b"2]")].concat();
        assert_eq!(unzstd(&two, &LIMITS).expect("two frames"), b"[1,2]");
        let limits = BatchSettings {
            max_bytes: 5_000_000,
            ..LIMITS
        };
        // 4 MB of spaces compress to a few hundred bytes.
        assert!(matches!(
            unzstd(&zstd(&vec![b' '; 4_000_000]), &limits),
            Err(ApiError::CompressionRatio { ratio: 50 })
        ));
        let big: Vec<u8> = (0..20_000u32).flat_map(|i| i.to_le_bytes()).collect();
        assert!(matches!(
            unzstd(&zstd(&big), &LIMITS),
            Err(ApiError::PayloadTooLarge { limit: 10_000 })
        ));
        assert!(matches!(
            unzstd(b"not zstd", &LIMITS),
            Err(ApiError::MalformedJson(_))
        ));
    }

    #[test]
    fn arrays_and_ndjson_split_into_their_events_in_order() {
        let array = split(br#" [{"a":1}, 2, {"b":[3]}] "#, Format::Array, &LIMITS);
        assert_eq!(
            array.expect("array"),
            [&b"{\"a\":1}"[..], b"2", b"{\"b\":[3]}"]
        );
        let lines = split(b"{\"a\":1}\r\n\n  \n{oops\n", Format::Ndjson, &LIMITS);
        assert_eq!(lines.expect("ndjson"), [&b"{\"a\":1}"[..], b"{oops"]);
    }

    #[test]
    fn broken_empty_and_overfull_batches_are_refused_whole() {
        let cases: [(&[u8], Format); 5] = [
            (b"{\"a\":1}", Format::Array),
            (b"[{\"a\":1}", Format::Array),
            (b"[]", Format::Array),
            (b"\n\n", Format::Ndjson),
            (b"[1,2,3,4]", Format::Array),
        ];
        let got: Vec<_> = cases
            .iter()
            .map(|(body, format)| match split(body, *format, &LIMITS) {
                Err(ApiError::MalformedJson(_)) => "malformed",
                Err(ApiError::EmptyBatch) => "empty",
                Err(ApiError::TooManyEvents { limit: 3 }) => "too many",
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            got,
            ["malformed", "malformed", "empty", "empty", "too many"]
        );
    }

    #[test]
    fn gzip_inflates_within_the_limit_and_refuses_bombs_and_oversize() {
        let body = br#"[{"a":"hello"},{"a":"world"}]"#;
        assert_eq!(inflate(&gzip(body), &LIMITS).expect("inflate"), body);
        // 1 MB of zeros compresses about 1,000 times: the ratio guard stops it early.
        let bomb = gzip(&vec![b' '; 1_000_000]);
        let limits = BatchSettings {
            max_bytes: 5_000_000,
            ..LIMITS
        };
        assert!(matches!(
            inflate(&bomb, &limits),
            Err(ApiError::CompressionRatio { ratio: 50 })
        ));
        // Under the ratio but over the byte limit.
        let big: Vec<u8> = (0..20_000u32).flat_map(|i| i.to_le_bytes()).collect();
        assert!(matches!(
            inflate(&gzip(&big), &LIMITS),
            Err(ApiError::PayloadTooLarge { limit: 10_000 })
        ));
        assert!(matches!(
            inflate(b"not gzip", &LIMITS),
            Err(ApiError::MalformedJson(_))
        ));
    }
}
