//! zachetka-snapshots: snapshot files that bind derived state (the rule state and each read
//! model's state, as opaque named, versioned byte sections) to a log position (`tree_size` and
//! the checkpoint root hash at that size), so that opening a ledger loads them and replays only
//! the tail of the log.
//! Not a source of truth: a snapshot is derived data. It never decides what the log holds; the
//! caller accepts one only if the log has that root at that size, and falls back to an older one
//! or to a replay from zero otherwise. Not the encoding of the sections either (the rules and the
//! read models own theirs), and no knowledge of the ledger's directory layout beyond the one
//! directory it is given.
//!
//! # File format (version 2)
//!
//! One file per snapshot, named by its tree size zero-padded to 15 digits so names sort:
//! `000000001000000.snap`. All integers little-endian.
//!
//! ```text
//! magic          8 bytes   "ZACHSNAP"
//! format         u32       2
//! tree_size      u64       entries the state reflects (leaves 0..tree_size)
//! root_hash      32 bytes  RFC 9162 root of the log at tree_size
//! section_count  u32       at most SECTIONS_MAX
//! section table, section_count times:
//!   name_len     u8        1..=NAME_LEN_MAX
//!   name         name_len bytes of [a-z0-9_.-], unique in the file ("rules", a read model's name)
//!   version      u32       the section's own layout version (a read model's `version()`)
//!   length       u64       bytes of the section
//!   sha256       32 bytes  SHA-256 of the section's bytes
//!   values       u64       bytes of the section's values
//! chunk_len      u32       CHUNK_LEN (64 KiB) when written; a reader takes 4 KiB to 16 MiB
//! chunk table    32 bytes each: SHA-256 of each chunk_len bytes of the values area (the last
//!                chunk may be shorter), ceil(sum of values / chunk_len) of them
//! header_sha256  32 bytes  SHA-256 of every byte from magic to the end of the chunk table
//! sections       the sections' bytes, in table order, back to back
//! values area    the sections' values, in table order, back to back
//! ```
//!
//! A section holds a state's structure (keys, counts, small values); its values are the
//! encoded values the state keeps apart, which are decoded only when first needed
//! (`zachetka_projections::lazy`: the state holds each one's offset and length in its section's
//! values). Reading a snapshot reads and checks the header and the sections, not the values:
//! an open from a snapshot costs what the state's structure costs, not every learner's records.
//! Each chunk of the values area is read and checked against the chunk table when a value in it
//! is needed, and the most recently used are kept (up to [`VALUES_CACHE_BYTES`]; one dropped is
//! read and checked again when next needed); a chunk that fails is damage found after the open, named with its
//! bytes in the file ([`Snapshot::on_damage`] lets the caller take the file out of use).
//!
//! The header digest covers the table, which holds each section's SHA-256 and each chunk's:
//! together they commit to every byte of the file, and a reader names the section or the chunk
//! that does not match. The file's length must be exactly what the table says: shorter is
//! `truncated`, longer is `trailing_bytes`.
//!
//! # Writing and reading
//!
//! `write` writes `<name>.tmp` in the same directory, fsyncs it, renames it over `<name>` and
//! fsyncs the directory: a crash leaves either the old set of snapshots or the new one, plus at
//! most a `.tmp` that listing ignores and the next `write` removes. Reading never deletes or
//! changes anything (a corrupt or unaccepted snapshot is kept for inspection); `write` applies
//! retention. `read` verifies the header and every section and keeps the sections in one buffer
//! (sections are slices of it); the values stay in the file until needed.
#![forbid(unsafe_code)]

mod dir;
mod error;
mod file;
mod policy;

pub use dir::{file_name, list, newest_usable, set_aside, write, SkipReason, SnapshotWarning, DAMAGED_SUFFIX};
pub use error::SnapshotError;
pub use file::{
    read, Section, SectionRef, SectionValues, Snapshot, CHUNK_LEN, FORMAT, MAGIC, NAME_LEN_MAX, SECTIONS_MAX,
    VALUES_CACHE_BYTES,
};
pub use policy::SnapshotPolicy;

/// The section that carries the rule state (`zachetka_rules::Rules::encode_state`).
pub const RULES_SECTION: &str = "rules";
