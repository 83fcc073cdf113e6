//! The body streamed into the provider's parser on a blocking thread, the records coming
//! back over a bounded channel.

use std::io::BufReader;
use std::sync::Arc;

use futures::Stream;
use tokio::sync::mpsc;
use tokio_util::bytes::Bytes;
use tokio_util::io::{StreamReader, SyncIoBridge};

use crate::provider::{FeedError, Limits, Listing, ParseSummary, Provider};
use eye_core::provider::Record;

/// Records parsed ahead of the publisher (back-pressure on the parser, and so on the body).
const RECORDS_IN_FLIGHT: usize = 1024;

/// Parses the streamed body on a blocking thread: quick-xml reads synchronously, bridged to
/// the async body by tokio-util; records come back over a bounded channel.
pub(super) fn spawn_parse(
    provider: Arc<dyn Provider>,
    listing: Listing,
    body: impl Stream<Item = std::io::Result<Bytes>> + Send + Unpin + 'static,
    limits: Limits,
) -> (
    mpsc::Receiver<Record>,
    tokio::task::JoinHandle<Result<ParseSummary, FeedError>>,
) {
    let (tx, rx) = mpsc::channel(RECORDS_IN_FLIGHT);
    let body = SyncIoBridge::new(StreamReader::new(body));
    let body = UntilAbandoned {
        inner: body,
        records: tx.clone(),
    };
    let parsing = tokio::task::spawn_blocking(move || {
        let mut body = BufReader::with_capacity(64 * 1024, body);
        // A send fails only once the cycle gave up (a failed publish, a shutdown); the body
        // then fails its next read, which ends the parse.
        provider.parse_page(&listing, &mut body, limits, &mut |record| {
            let _ = tx.blocking_send(record);
        })
    });
    (rx, parsing)
}

/// The body, readable only while someone still takes the records: a cycle that gave up stops
/// the download and the parse instead of reading the rest of a large document for nothing.
struct UntilAbandoned<R> {
    inner: R,
    records: mpsc::Sender<Record>,
}

impl<R: std::io::Read> std::io::Read for UntilAbandoned<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.records.is_closed() {
            return Err(std::io::Error::other("the fetch cycle was abandoned"));
        }
        self.inner.read(out)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    #[test]
    fn the_body_stops_once_nobody_takes_the_records() {
        let (tx, rx) = mpsc::channel(1);
        let mut body = UntilAbandoned {
            inner: &b"<planList>"[..],
            records: tx,
        };
        let mut first = [0u8; 4];
        assert_eq!(body.read(&mut first).expect("still wanted"), 4);
        drop(rx);
        assert!(body.read(&mut first).is_err());
    }
}
