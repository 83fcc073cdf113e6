//! The Eye's shared core: the event and its parsing, the one definition of a storable event,
//! the queue contract (envelope, names, headers), the provider record (fetcher to worker),
//! entities, settings pieces, telemetry, backoff and shutdown. No sockets here, except behind
//! the `amqp` feature: declaring the topology and `link`, the confirmed, self-healing broker
//! link the api and the fetcher publish through.

#[cfg(feature = "amqp")]
pub mod amqp;
pub mod backoff;
pub mod entity;
pub mod envelope;
pub mod erasure;
pub mod event;
pub mod import;
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
pub mod webhook;

pub use envelope::{BadEnvelope, DecodeError, Envelope, Message, Source};
pub use event::{Event, EventError, EventIn};
pub use queue::Topology;
pub use secret::Secret;
