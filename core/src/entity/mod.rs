//! sea-orm entities of the tables the migrations create. Storage types only: the HTTP bodies
//! and the queue envelope are their own types.

pub mod application;
pub mod dead_letter;
pub mod event;
pub mod json_record;
pub mod provider_plan;
pub mod provider_plan_hash;
pub mod token;
