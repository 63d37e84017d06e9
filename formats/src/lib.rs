//! zachetka's formats, the contracts of DESIGN 3 that other parties depend on: RFC 8785
//! canonical JSON for our profile, `did:key` and the one strict Ed25519 acceptance rule, events
//! (what an author signs) and entries (what the log stores, one Merkle leaf), RFC 9162 hashing
//! and proofs, C2SP checkpoints as signed notes and their witnesses' cosignatures, ledger time, the stable refusal codes, and W3C credentials
//! (Data Integrity, `eddsa-jcs-2022`) issued by the ledger key.
//!
//! Not the place for I/O, stores, HTTP or an async runtime: this is the dependency tree a
//! verifier (a university's, a read service's, a browser's) embeds.
#![forbid(unsafe_code)]

pub mod checkpoint;
pub mod cosignature;
pub mod event;
pub mod jcs;
pub mod keys;
pub mod merkle;
pub mod refusal;
pub mod time;
pub mod vc;
