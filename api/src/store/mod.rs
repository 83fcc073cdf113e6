//! Everything the api asks PostgreSQL, one file per area.

pub mod dead_letters;
pub mod events;
