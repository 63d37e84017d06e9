//! zachetka-projections: the education event vocabulary (the 60 education event types and the
//! ledger's completeness commitment, their streams,
//! schema versions and record parsers, DOMAIN.md), and later the read models (journals,
//! diaries, queues, record books, profiles, indicators) as pure folds over entries.
//! Not the rules that decide whether an event may enter the ledger (those are `zachetka-rules`,
//! which depends on this crate, never the other way), and no I/O: no store, no clock, no HTTP.
#![forbid(unsafe_code)]

/// The one calendar and RFC 3339 grammar, shared with the formats (events, entries, checkpoints).
pub use zachetka_formats::time;
pub mod completeness;
pub mod lazy;
pub mod model;
pub mod models;
pub mod queue_order;
pub mod region;
pub mod strict;
pub mod vocabulary;

pub use model::{Fact, ReadModel, Scope, View, ViewError};
pub use vocabulary::{event_types, schema_version, StreamKind};
