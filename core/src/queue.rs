//! The queue contract: exchange, queue and dead-letter names, and the message headers.
//! Defined once here; the producers (the api's publisher and the fetcher, through
//! `link`) and the worker's consumers are the only users.

/// Routing key of event messages on the events exchange.
pub const EVENT_ROUTING_KEY: &str = "event";
/// HTTP header of the request id; each envelope carries it into the worker's logs.
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// Content type of every envelope.
pub const CONTENT_TYPE: &str = "application/json";
/// Deliveries of one message before RabbitMQ moves it to the poison queue: a message that
/// crashes every worker that takes it must not block the queue forever.
pub const DELIVERY_LIMIT: i64 = 20;

/// The names of the broker objects of one deployment. A namespace keeps deployments (and
/// tests, each of which takes a random one) apart on one broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    /// Durable direct exchange the producers publish to.
    pub exchange: String,
    /// Durable quorum queue the workers consume.
    pub queue: String,
    /// Fanout exchange receiving messages dead-lettered by the broker (delivery limit).
    pub poison_exchange: String,
    /// Durable quorum queue keeping those messages for an operator.
    pub poison_queue: String,
    /// Replicas of each quorum queue when first declared; None: one on every cluster node.
    pub quorum_size: Option<u16>,
}

impl Topology {
    pub fn new(namespace: &str) -> Self {
        Self {
            exchange: format!("{namespace}.events"),
            queue: format!("{namespace}.events.ingest"),
            poison_exchange: format!("{namespace}.events.poison"),
            poison_queue: format!("{namespace}.events.poison"),
            quorum_size: None,
        }
    }

    /// The same names, with quorum queues declared on `size` nodes.
    pub fn with_quorum_size(self, size: Option<u16>) -> Self {
        Self {
            quorum_size: size,
            ..self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_derived_from_the_namespace() {
        let t = Topology::new("eye");
        assert_eq!(t.exchange, "eye.events");
        assert_eq!(t.queue, "eye.events.ingest");
        assert_ne!(Topology::new("a").queue, Topology::new("b").queue);
    }
}
