//! Why a snapshot could not be written or read: one variant per reason, each naming the file, with
//! a stable snake_case code. Not a refusal of any event: a snapshot that fails to read is skipped
//! and the log is replayed instead.

use std::path::PathBuf;

/// Why a snapshot was not written or not read.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("couldn't {op} {}", path.display())]
    Io {
        path: PathBuf,
        /// What was being done: "read", "create", "write", "sync", "rename", "list", "remove".
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("snapshot {}: bad magic (not a zachetka snapshot)", path.display())]
    BadMagic { path: PathBuf },
    #[error("snapshot {}: format {found} is not supported (this build reads {supported})", path.display())]
    UnsupportedFormat { path: PathBuf, found: u32, supported: u32 },
    #[error("snapshot {}: truncated ({len} bytes, {needed} needed)", path.display())]
    Truncated { path: PathBuf, len: u64, needed: u64 },
    #[error("snapshot {}: {extra} trailing bytes after the header digest", path.display())]
    TrailingBytes { path: PathBuf, extra: u64 },
    #[error("snapshot {}: malformed section table at byte {offset}: {reason}", path.display())]
    MalformedTable { path: PathBuf, offset: u64, reason: String },
    #[error("snapshot {}: header checksum mismatch", path.display())]
    HeaderChecksumMismatch { path: PathBuf },
    #[error("snapshot {}: checksum mismatch in section {section} (bytes {offset}..{end})", path.display())]
    SectionChecksumMismatch { path: PathBuf, section: String, offset: u64, end: u64 },
    #[error("snapshot {}: checksum mismatch in the values area (bytes {offset}..{end})", path.display())]
    ValuesChecksumMismatch { path: PathBuf, offset: u64, end: u64 },
    /// A caller's section that cannot be written (bad or duplicate name, too many sections).
    #[error("snapshot {}: section {name:?} cannot be written: {reason}", path.display())]
    SectionInvalid { path: PathBuf, name: String, reason: String },
    #[error("snapshot retention must keep at least one snapshot, not {keep}")]
    KeepZero { keep: usize },
}

impl SnapshotError {
    /// A stable snake_case code per reason.
    pub fn code(&self) -> &'static str {
        match self {
            SnapshotError::Io { .. } => "snapshot_io",
            SnapshotError::BadMagic { .. } => "snapshot_bad_magic",
            SnapshotError::UnsupportedFormat { .. } => "snapshot_format_unsupported",
            SnapshotError::Truncated { .. } => "snapshot_truncated",
            SnapshotError::TrailingBytes { .. } => "snapshot_trailing_bytes",
            SnapshotError::MalformedTable { .. } => "snapshot_table_malformed",
            SnapshotError::HeaderChecksumMismatch { .. } => "snapshot_header_checksum_mismatch",
            SnapshotError::SectionChecksumMismatch { .. } => "snapshot_section_checksum_mismatch",
            SnapshotError::ValuesChecksumMismatch { .. } => "snapshot_values_checksum_mismatch",
            SnapshotError::SectionInvalid { .. } => "snapshot_section_invalid",
            SnapshotError::KeepZero { .. } => "snapshot_keep_zero",
        }
    }

    /// The message with its causes, `outer: inner` (an I/O error's own reason included), for
    /// messages that leave the process.
    pub fn with_causes(&self) -> String {
        let mut out = self.to_string();
        let mut cause = std::error::Error::source(self);
        while let Some(c) = cause {
            out.push_str(": ");
            out.push_str(&c.to_string());
            cause = c.source();
        }
        out
    }
}
