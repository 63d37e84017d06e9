//! The rules' test binary: for every rule an accepted case and each refused case with its code,
//! grouped by subsystem, plus the region profile, the vocabulary, a randomized history test, saved rule state
//! and the read models over the randomized histories.
//! Not the root crate's pipeline tests (they live in /tests of the root package).

mod harness;

mod attestation;
mod authority;
mod contingent;
mod enrolment;
mod journal;
mod ledger_time;
mod migration;
mod portfolio;
mod queue;
mod randomized;
mod read_models;
mod state;
mod vocabulary;
