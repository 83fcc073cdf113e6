//! The Eye's shared core: the event and its parsing, the queue contract (envelope, names,
//! headers), the provider record (fetcher to worker), settings pieces, telemetry and
//! shutdown. No sockets here: api and worker own their connections.

#[cfg(feature = "amqp")]
pub mod amqp;
pub mod backoff;
pub mod entity;
pub mod envelope;
pub mod event;
#[cfg(feature = "amqp")]
pub mod link;
#[cfg(feature = "provider")]
pub mod provider;
pub mod queue;
pub mod secret;
pub mod settings;
pub mod shutdown;
pub mod storable;
pub mod telemetry;
pub mod timestamp;

pub use envelope::{BadEnvelope, DecodeError, Envelope, Message, Source};
pub use event::{Event, EventError, EventIn};
pub use queue::Topology;
pub use secret::Secret;
