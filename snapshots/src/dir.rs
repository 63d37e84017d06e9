//! The snapshot directory: file names, the atomic and durable write, retention, listing, and
//! choosing the newest snapshot the caller accepts. Not the file layout (`file.rs`) and not the
//! decision whether a root belongs to the log (the caller's `accept` answers that from the log).

use crate::error::SnapshotError;
use crate::file::{self, Section, Snapshot, SECTIONS_MAX};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

const SUFFIX: &str = ".snap";
const TMP_SUFFIX: &str = ".tmp";

/// The file name of the snapshot at `tree_size`: 15 digits at least, so names sort by size.
pub fn file_name(tree_size: u64) -> String {
    format!("{tree_size:015}{SUFFIX}")
}

/// The tree size a snapshot's file name says, if `name` is one `file_name` would write.
fn tree_size_of(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SUFFIX)?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = digits.parse().ok()?;
    (file_name(n) == name).then_some(n)
}

fn io(path: &Path, op: &'static str) -> impl FnOnce(std::io::Error) -> SnapshotError {
    let path = path.to_owned();
    move |source| SnapshotError::Io { path, op, source }
}

/// The snapshots in `dir` as (tree size, path), newest (largest tree size) first. Leftover `.tmp`
/// files and other names are ignored; a missing directory has none.
pub fn list(dir: &Path) -> Result<Vec<(u64, PathBuf)>, SnapshotError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(dir, "list")(e)),
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io(dir, "list"))?;
        let name = entry.file_name();
        if let Some(n) = name.to_str().and_then(tree_size_of) {
            found.push((n, entry.path()));
        }
    }
    found.sort_unstable_by_key(|(n, _)| std::cmp::Reverse(*n));
    Ok(found)
}

/// Writes the snapshot of `tree_size` with root `root_hash` into `dir` (created if missing),
/// atomically and durably, then removes older snapshots so that `keep` remain. Returns its path.
///
/// Crash states: before the rename only `<name>.tmp` exists (ignored by `list`, removed by the
/// next `write`) and the snapshots already there are untouched; after the rename and the
/// directory fsync the new snapshot is durable; a crash during retention leaves extra old
/// snapshots, which the next write removes.
///
/// Retention keeps the snapshot just written and the `keep - 1` newest below its tree size.
/// Snapshots above it are left alone: they were written for a longer history of the log than
/// the one being snapshotted now (a log restored from an older backup, say), and the caller's
/// `accept` will skip them; an operator may want to look at them.
pub fn write(
    dir: &Path,
    tree_size: u64,
    root_hash: &[u8; 32],
    sections: &[Section],
    keep: usize,
) -> Result<PathBuf, SnapshotError> {
    let path = dir.join(file_name(tree_size));
    if keep == 0 {
        return Err(SnapshotError::KeepZero { keep });
    }
    check_sections(&path, sections)?;
    if !dir.exists() {
        // Private: a snapshot holds every read model (learners' marks by learner id), which the
        // server shows only to tokens that may read them.
        std::os::unix::fs::DirBuilderExt::mode(fs::DirBuilder::new().recursive(true), 0o700)
            .create(dir)
            .map_err(io(dir, "create"))?;
        if let Some(parent) = dir.parent() {
            sync_dir(parent)?;
        }
    }
    remove_leftovers(dir)?;
    let header = file::header(tree_size, root_hash, sections);
    let tmp = dir.join(format!("{}{TMP_SUFFIX}", file_name(tree_size)));
    {
        // 0600 whatever the umask, as the log's files and the keys are.
        let mut f = std::os::unix::fs::OpenOptionsExt::mode(
            fs::OpenOptions::new().write(true).create(true).truncate(true),
            0o600,
        )
        .open(&tmp)
        .map_err(io(&tmp, "create"))?;
        let mut w = std::io::BufWriter::with_capacity(1 << 20, &mut f);
        w.write_all(&header).map_err(io(&tmp, "write"))?;
        for s in sections {
            w.write_all(s.bytes).map_err(io(&tmp, "write"))?;
        }
        for s in sections {
            w.write_all(s.values).map_err(io(&tmp, "write"))?;
        }
        w.flush().map_err(io(&tmp, "write"))?;
        drop(w);
        f.sync_all().map_err(io(&tmp, "sync"))?;
    }
    // The temp file is durable but not yet the snapshot: a crash here leaves a `.tmp` only.
    fs::rename(&tmp, &path).map_err(io(&path, "rename"))?;
    sync_dir(dir)?;
    // The snapshot is durable. Retention follows; a crash during it loses nothing.
    for (_, old) in list(dir)?.into_iter().filter(|(n, _)| *n < tree_size).skip(keep - 1) {
        fs::remove_file(&old).map_err(io(&old, "remove"))?;
    }
    sync_dir(dir)?;
    Ok(path)
}

fn check_sections(path: &Path, sections: &[Section]) -> Result<(), SnapshotError> {
    let invalid = |name: &str, reason: String| SnapshotError::SectionInvalid {
        path: path.to_owned(),
        name: name.to_owned(),
        reason,
    };
    if sections.len() > SECTIONS_MAX {
        return Err(invalid("", format!("{} sections, at most {SECTIONS_MAX}", sections.len())));
    }
    for (i, s) in sections.iter().enumerate() {
        if let Some(problem) = file::name_problem(s.name) {
            return Err(invalid(s.name, problem));
        }
        if sections[..i].iter().any(|o| o.name == s.name) {
            return Err(invalid(s.name, "the name appears twice".into()));
        }
    }
    Ok(())
}

/// Removes `.tmp` files a crashed write left (only `write` makes them, one writer at a time).
fn remove_leftovers(dir: &Path) -> Result<(), SnapshotError> {
    for entry in fs::read_dir(dir).map_err(io(dir, "list"))? {
        let entry = entry.map_err(io(dir, "list"))?;
        let is_leftover = entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.strip_suffix(TMP_SUFFIX).is_some_and(|snap| tree_size_of(snap).is_some()));
        if is_leftover {
            fs::remove_file(entry.path()).map_err(io(&entry.path(), "remove"))?;
        }
    }
    Ok(())
}

/// Makes the directory's entries (a rename, a removal) durable.
fn sync_dir(dir: &Path) -> Result<(), SnapshotError> {
    #[cfg(unix)]
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir, "sync"))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Why `newest_usable` skipped a snapshot.
#[derive(Debug, thiserror::Error)]
pub enum SkipReason {
    /// It failed to read or verify.
    #[error(transparent)]
    Unreadable(#[from] SnapshotError),
    /// Its file name and its header disagree on the tree size.
    #[error("its name says tree size {named} but its header says {tree_size}")]
    NameMismatch { named: u64, tree_size: u64 },
    /// The caller's log does not have this root at this size (another or rewritten log, or a
    /// size beyond the log's head).
    #[error("the log does not have root {root_hash} at tree size {tree_size}")]
    NotAccepted { tree_size: u64, root_hash: String },
    /// The directory could not be listed.
    #[error("couldn't list the snapshot directory")]
    Unlisted(#[source] SnapshotError),
}

impl SkipReason {
    /// A stable snake_case code per reason.
    pub fn code(&self) -> &'static str {
        match self {
            SkipReason::Unreadable(e) => e.code(),
            SkipReason::NameMismatch { .. } => "snapshot_name_mismatch",
            SkipReason::NotAccepted { .. } => "snapshot_not_accepted",
            SkipReason::Unlisted(_) => "snapshot_dir_unlisted",
        }
    }
}

/// A snapshot `newest_usable` skipped: the file and why (the caller logs it).
#[derive(Debug, thiserror::Error)]
#[error("skipped snapshot {}: {reason}", path.display())]
pub struct SnapshotWarning {
    pub path: PathBuf,
    #[source]
    pub reason: SkipReason,
}

/// The newest snapshot in `dir` that reads, verifies and that `accept(tree_size, root_hash)`
/// accepts (the caller answers from the log: does it have this root at this size?), trying
/// newest first; every one skipped on the way is a warning. Deletes nothing. `None` when no
/// snapshot is usable: the caller replays from zero.
pub fn newest_usable(dir: &Path, accept: impl Fn(u64, &[u8; 32]) -> bool) -> (Option<Snapshot>, Vec<SnapshotWarning>) {
    let mut warnings = Vec::new();
    let candidates = match list(dir) {
        Ok(c) => c,
        Err(e) => {
            warnings.push(SnapshotWarning { path: dir.to_owned(), reason: SkipReason::Unlisted(e) });
            return (None, warnings);
        }
    };
    for (named, path) in candidates {
        let reason = match file::read(&path) {
            Err(e) => SkipReason::Unreadable(e),
            Ok(s) if s.tree_size() != named => SkipReason::NameMismatch { named, tree_size: s.tree_size() },
            Ok(s) if !accept(s.tree_size(), s.root_hash()) => {
                SkipReason::NotAccepted { tree_size: s.tree_size(), root_hash: STANDARD.encode(s.root_hash()) }
            }
            Ok(s) => return (Some(s), warnings),
        };
        warnings.push(SnapshotWarning { path, reason });
    }
    (None, warnings)
}

/// The name a snapshot set aside by [`set_aside`] gets.
pub const DAMAGED_SUFFIX: &str = ".damaged";

/// Takes the snapshot at `path` out of use once damage was found in it after it was read (a
/// chunk of its values area that fails its checksum): renames it to `<name>.damaged`, which
/// listing never returns, so the next open picks an older snapshot or replays the log instead of
/// meeting the same damage again. Kept for inspection, never deleted. Returns the new path.
pub fn set_aside(path: &Path) -> Result<PathBuf, SnapshotError> {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(DAMAGED_SUFFIX);
    let to = path.with_file_name(name);
    fs::rename(path, &to).map_err(io(path, "rename"))?;
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    Ok(to)
}
