//! A `/search` answer longer than one page, streamed: the same JSON as the whole answer
//! (`{"data": {"events": [..]}, "error": null}`), written a page of plans at a time, each page
//! one keyset query on a pooled connection that is returned before the page is sent. Memory
//! stays bounded by a page whatever the range holds, and a slow client holds no connection.
//!
//! The pages are separate statements, not one snapshot: a plan whose start moves while the
//! answer is being sent can be missed or repeated (as between two pages of `/events`). If a
//! later page fails, the status is already sent: the body is cut off (the client sees an
//! incomplete chunked answer, never a well-formed short list) and the cause is logged.

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::{StreamExt, stream};
use sea_orm::DatabaseConnection;

use super::{PAGE, to_event};
use crate::store::StoreError;
use crate::store::plans::{self, After, Plan, Range};

const OPEN: &[u8] = br#"{"data":{"events":["#;
const CLOSE: &[u8] = br#"]},"error":null}"#;

/// What the stream does next.
enum Step {
    /// Write this page (the first one was read before the status was sent).
    Write(Vec<Plan>),
    /// Read the page after this plan, then write it.
    Read(After),
    Done,
}

/// A 200 whose body streams `first` and the pages after it.
pub(super) fn answer(db: DatabaseConnection, range: Range, first: Vec<Plan>) -> Response {
    let pages = stream::unfold(Step::Write(first), move |step| {
        let db = db.clone();
        async move {
            let page = match step {
                Step::Done => return None,
                Step::Write(page) => page,
                Step::Read(after) => {
                    match plans::ever_online_within(&db, range, Some(after), PAGE).await {
                        Ok(page) => page,
                        Err(e) => {
                            tracing::error!(error = %e, "search page failed mid-answer");
                            return Some((Err(e), Step::Done));
                        }
                    }
                }
            };
            let next = match page.last() {
                Some(last) if page.len() as u64 == PAGE => Step::Read(last.resume_point()),
                _ => Step::Done,
            };
            Some((Ok(events(page)), next))
        }
    });
    // Every page after the first is preceded by the comma that separates it.
    let pages = pages.enumerate().map(|(i, chunk)| {
        chunk.map(|mut bytes: Vec<u8>| {
            if i > 0 && !bytes.is_empty() {
                bytes.insert(0, b',');
            }
            Bytes::from(bytes)
        })
    });
    let body = stream::once(async { Ok::<_, StoreError>(Bytes::from_static(OPEN)) })
        .chain(pages)
        .chain(stream::once(async { Ok(Bytes::from_static(CLOSE)) }));
    let mut response = (StatusCode::OK, Body::from_stream(body)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// A page's events, comma-separated, as the whole answer writes them.
fn events(page: Vec<Plan>) -> Vec<u8> {
    let mut out = Vec::with_capacity(page.len() * 200);
    for (i, plan) in page.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        // Serializing plain strings, a uuid and raw numbers cannot fail.
        serde_json::to_writer(&mut out, &to_event(plan)).expect("an event serializes");
    }
    out
}
