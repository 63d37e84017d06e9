//! zachetka-record: the learner record bundle of DESIGN 3.4 (the format is `record/FORMAT.md`),
//! the exporter's pure part (which entries, what is withheld, which registry entries make the
//! authority chain) and the offline verifier a university runs.
//! Not a store reader and not HTTP: the root crate finds the entries and proofs and calls
//! `export`; `verify` needs nothing but the bundle's bytes and the ledger's verifier key.
#![forbid(unsafe_code)]

pub mod bundle;
pub mod disclosure;
pub mod export;
pub mod receipt;
mod report;
mod verify;

pub use bundle::{Bundle, CompletenessMember, Item, BUNDLE_BYTES_MAX, ITEMS_MAX};
pub use disclosure::Disclosure;
pub use export::{
    authority_wanted, export, registration_of, run_entry_of, AuthorityWanted, CompletenessInput, Concerned,
    ExportError, ExportInput, LessonWanted, RunWanted, Wanted,
};
pub use receipt::{verify_receipt, ReceiptError, ReceiptReport};
pub use report::{Completeness, Cosignatures, Cosigned, Failure, RecordSummary, Report};
pub use verify::{verify, Options, OtherCheckpoint, MAX_UNCOVERED_DEFAULT};
