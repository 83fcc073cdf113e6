//! The fetcher's broker side: publishes provider envelopes as queue [`Message`]s, persistent,
//! mandatory and confirmed, so the fetcher records a plan as published only once the broker
//! holds it. One connection, opened on first use and replaced after a failure.
//!
//! This is the fetcher's own small publisher rather than the api's group-commit link: the
//! fetcher publishes a few messages per fetch, in one task, and waits for all their confirms.

use eye_core::amqp::{self, AmqpSetupError};
use eye_core::queue::{CONTENT_TYPE, EVENT_ROUTING_KEY};
use eye_core::settings::AmqpSettings;
use eye_core::{Envelope, Message};
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::{BasicProperties, Channel, Confirmation, Connection};
use uuid::Uuid;

/// AMQP delivery mode of messages that survive a broker restart.
const PERSISTENT: u8 = 2;
/// Envelopes per message: plans are small, and fewer messages mean fewer broker writes.
const ENVELOPES_PER_MESSAGE: usize = 100;

/// A publish that the broker did not confirm.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("broker: {0}")]
    Setup(#[from] AmqpSetupError),
    #[error("broker: {0}")]
    Amqp(#[from] lapin::Error),
    #[error("the broker refused a message ({0})")]
    Refused(&'static str),
    #[error("no confirm within {0:?}")]
    Timeout(std::time::Duration),
}

/// See the module documentation.
pub struct ProviderPublisher {
    amqp: AmqpSettings,
    link: Option<(Connection, Channel)>,
    timeout: std::time::Duration,
}

impl ProviderPublisher {
    pub fn new(amqp: AmqpSettings, timeout: std::time::Duration) -> Self {
        Self {
            amqp,
            link: None,
            timeout,
        }
    }

    /// Publishes every envelope; Ok only when the broker confirmed all of them.
    pub async fn publish(&mut self, envelopes: &[Envelope]) -> Result<usize, PublishError> {
        if envelopes.is_empty() {
            return Ok(0);
        }
        let result = tokio::time::timeout(self.timeout, self.publish_all(envelopes)).await;
        let result = result.unwrap_or(Err(PublishError::Timeout(self.timeout)));
        if result.is_err() {
            // Start afresh next time: the channel may be closed or in an unknown state.
            if let Some((connection, _)) = self.link.take() {
                let _ = connection.close(200, "republishing".into()).await;
            }
        }
        result
    }

    async fn publish_all(&mut self, envelopes: &[Envelope]) -> Result<usize, PublishError> {
        let exchange = self.amqp.topology().exchange;
        let channel = self.channel().await?;
        let mut pending = Vec::new();
        for chunk in envelopes.chunks(ENVELOPES_PER_MESSAGE) {
            let body = Message::encode(chunk);
            let properties = BasicProperties::default()
                .with_delivery_mode(PERSISTENT)
                .with_content_type(CONTENT_TYPE.into())
                .with_message_id(Uuid::now_v7().to_string().into())
                .with_app_id(chunk[0].app_id.as_str().into());
            let options = BasicPublishOptions {
                mandatory: true,
                ..BasicPublishOptions::default()
            };
            pending.push(
                channel
                    .basic_publish(
                        exchange.as_str().into(),
                        EVENT_ROUTING_KEY.into(),
                        options,
                        &body,
                        properties,
                    )
                    .await?,
            );
        }
        for confirm in pending {
            match confirm.await? {
                Confirmation::Ack(None) => {}
                Confirmation::Ack(Some(_)) => return Err(PublishError::Refused("unroutable")),
                Confirmation::Nack(_) => return Err(PublishError::Refused("nack")),
                Confirmation::NotRequested => return Err(PublishError::Refused("no confirm")),
            }
        }
        Ok(envelopes.len())
    }

    async fn channel(&mut self) -> Result<Channel, PublishError> {
        if let Some((connection, channel)) = &self.link
            && connection.status().connected()
            && channel.status().connected()
        {
            return Ok(channel.clone());
        }
        let connection = amqp::connect(&self.amqp, "eye-fetcher").await?;
        let channel = connection.create_channel().await?;
        amqp::declare(&channel, &self.amqp.topology()).await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        self.link = Some((connection, channel.clone()));
        Ok(channel)
    }

    /// Closes the connection.
    pub async fn close(&mut self) {
        if let Some((connection, _)) = self.link.take() {
            let _ = connection.close(200, "fetcher stopping".into()).await;
        }
    }
}
