//! zachetka: a region's education records as a signed, append-only, verifiable log.
//!
//! Glossary (one meaning each): *event* (what an author signs), *entry* (an event as the log
//! stores it, one Merkle leaf), *checkpoint* (the signed tree head), *receipt* (what an
//! acknowledged append returns), *refusal* (a stable code and a message).
#![forbid(unsafe_code)]

// The formats live in `zachetka-formats` (what a verifier embeds); re-exported under their old
// paths, so `zachetka::event` and `crate::event` name the same modules.
pub use zachetka_formats::{checkpoint, cosignature, event, jcs, keys, merkle, refusal, time, vc};

pub mod access;
pub mod api;
pub mod audit;
pub mod cosigning;
pub mod demo;
pub mod import;
pub mod ledger;
pub mod personal;
pub mod read;
pub mod record;
pub mod rules;
pub mod store;
pub mod witness;
