//! zachetka: a region's education records as a signed, append-only, verifiable log.
//!
//! Glossary (one meaning each): *event* (what an author signs), *entry* (an event as the log
//! stores it, one Merkle leaf), *checkpoint* (the signed tree head), *receipt* (what an
//! acknowledged append returns), *refusal* (a stable code and a message).
#![forbid(unsafe_code)]

pub mod audit;
pub mod checkpoint;
pub mod demo;
pub mod event;
pub mod http;
pub mod jcs;
pub mod keys;
pub mod ledger;
pub mod merkle;
pub mod personal;
pub mod refusal;
pub mod rules;
pub mod server;
pub mod store;
pub mod time;
