//! The read models, one file each, and the helpers they share (`common`, `concerns`).
//! Not the contract they implement (`crate::model`) nor the runner that feeds them.

pub mod common;
pub mod concerns;
pub mod diaries;
pub mod journals;
pub mod profiles;
pub mod record_books;
#[cfg(test)]
pub(crate) mod testkit;
