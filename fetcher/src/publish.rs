//! The fetcher's broker side: publishes provider envelopes as queue [`Message`]s through the
//! shared confirmed link ([`LinkSlot`], the api's too): persistent, mandatory, and Ok only
//! once the broker confirmed every message, so the fetcher records a plan as published only
//! when the broker holds it.

use std::sync::Arc;
use std::time::Duration;

use eye_core::link::{LinkSlot, PublishError};
use eye_core::settings::AmqpSettings;
use eye_core::{Envelope, Message};

/// Envelopes per message: plans are small, and fewer messages mean fewer broker writes.
const ENVELOPES_PER_MESSAGE: usize = 100;

/// See the module documentation.
pub struct ProviderPublisher {
    link: Arc<LinkSlot>,
    timeout: Duration,
}

impl ProviderPublisher {
    /// Starts the link's supervisor, which connects (and reconnects) in the background.
    pub fn start(amqp: AmqpSettings, timeout: Duration) -> Self {
        Self {
            link: LinkSlot::start(amqp, 1, "eye-fetcher"),
            timeout,
        }
    }

    /// Publishes every envelope, the messages pipelined on the link; Ok only when the broker
    /// confirmed all of them.
    pub async fn publish(&self, envelopes: &[Envelope]) -> Result<usize, PublishError> {
        if envelopes.is_empty() {
            return Ok(0);
        }
        // A fetch runs seldom: wait for the link rather than fail the whole cycle at once.
        if !self.link.wait_up(self.timeout).await {
            return Err(PublishError::NotConnected);
        }
        let bodies: Vec<Vec<u8>> = envelopes
            .chunks(ENVELOPES_PER_MESSAGE)
            .map(Message::encode)
            .collect();
        let confirms = bodies
            .iter()
            .map(|body| self.link.publish(body, self.timeout));
        futures::future::try_join_all(confirms).await?;
        Ok(envelopes.len())
    }

    /// Stops the link and closes the connection.
    pub async fn close(&self) {
        self.link.close().await;
    }
}

impl Drop for ProviderPublisher {
    fn drop(&mut self) {
        self.link.stop();
    }
}
