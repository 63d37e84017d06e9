//! Snapshots bound to the ledger: where they live, when they are written, and how opening a
//! ledger picks one. A snapshot is derived data: it is used only when the log itself has the
//! snapshot's root at its tree size (so a snapshot of another or a rewritten log is refused with
//! a warning naming it), and anything that does not load is rebuilt from the log.
//! Not the file format (`zachetka-snapshots`).

use crate::merkle::{self, Hash};
use crate::rules::Rules;
use crate::store::{LedgerConfig, Store, StoreHashes};
use std::path::{Path, PathBuf};
pub use zachetka_snapshots::SnapshotPolicy;

/// The section holding the rule state.
pub use zachetka_snapshots::RULES_SECTION;
/// The version of the rule-state section's encoding (`Rules::encode_state`).
pub const RULES_SECTION_VERSION: u32 = zachetka_rules::STATE_FORMAT;

/// Where snapshots go and when.
#[derive(Debug, Clone)]
pub struct SnapshotOptions {
    pub dir: PathBuf,
    pub policy: SnapshotPolicy,
    /// Whether the runner writes snapshots by the policy (a server), or only loads them (a
    /// short command such as `append`).
    pub write: bool,
    /// What happens when damage is found in a loaded snapshot after the open (a chunk of its
    /// values that fails its checksum, met when a value in it is first needed): the file is
    /// always set aside (`<name>.damaged`), so no later open picks it again; then the process
    /// exits with [`EXIT_SNAPSHOT_DAMAGED`] (what the command line does: its supervisor starts it
    /// again, from an older snapshot or the log), or, when `false`, the thread that needed the
    /// value panics (an embedding that handles it itself).
    pub exit_on_damage: bool,
}

/// The exit status of a process that found a loaded snapshot damaged after its open
/// (`EX_TEMPFAIL`: started again, it opens without that snapshot).
pub const EXIT_SNAPSHOT_DAMAGED: i32 = 75;

impl SnapshotOptions {
    /// Snapshots in `<ledger dir>/snapshots`, written under `policy`.
    pub fn in_ledger_dir(dir: &Path, policy: SnapshotPolicy) -> Self {
        Self { dir: dir.join("snapshots"), policy, write: true, exit_on_damage: false }
    }

    /// Snapshots in `<ledger dir>/snapshots`, loaded and never written.
    pub fn load_only(dir: &Path) -> Self {
        Self { dir: dir.join("snapshots"), policy: SnapshotPolicy::default(), write: false, exit_on_damage: false }
    }

    /// These options with the process exiting on damage found after the open (the command line).
    pub fn exiting_on_damage(self) -> Self {
        Self { exit_on_damage: true, ..self }
    }
}

/// A section's state encoded for a snapshot: its bytes and, apart, the values they refer to
/// (`zachetka_projections::lazy::encode_apart`).
pub type Encoded = (Vec<u8>, Vec<u8>);

/// `encode` (a model's `encode` or the rules' `encode_state`) run with its lazily loaded values
/// written apart, as a snapshot section holds them.
pub fn encode_apart(encode: impl FnOnce() -> Vec<u8>) -> Encoded {
    zachetka_projections::lazy::encode_apart(encode)
}

/// Writes one snapshot (rule state and every model at `tree_size`, whose root is `root`) and
/// applies the retention of the policy.
pub fn write(
    opts: &SnapshotOptions,
    tree_size: u64,
    root: Hash,
    rules: Option<Encoded>,
    models: Vec<(String, u32, Encoded)>,
) -> Result<PathBuf, String> {
    let mut sections = Vec::with_capacity(models.len() + 1);
    if let Some((bytes, values)) = &rules {
        let (name, version) = (RULES_SECTION, RULES_SECTION_VERSION);
        sections.push(zachetka_snapshots::Section { name, version, bytes, values });
    }
    for (name, version, (bytes, values)) in &models {
        sections.push(zachetka_snapshots::Section { name, version: *version, bytes, values });
    }
    zachetka_snapshots::write(&opts.dir, tree_size, &root.0, &sections, opts.policy.keep).map_err(|e| e.to_string())
}

/// The newest snapshot in `dir` that the log vouches for (its tree size at most `head_size`, and
/// the log's root at that size equal to the snapshot's). Every snapshot passed over is a warning
/// (logged, and returned for status). Damage found in it after the open is handled as `opts`
/// say ([`SnapshotOptions::exit_on_damage`]).
pub fn load_newest(opts: &SnapshotOptions, store: &dyn Store, head_size: u64) -> (Option<super::Loaded>, Vec<String>) {
    let accept = |size: u64, root: &[u8; 32]| {
        size <= head_size && merkle::root(size, &StoreHashes(store)).is_ok_and(|r| &r.0 == root)
    };
    let (snap, warnings) = zachetka_snapshots::newest_usable(&opts.dir, accept);
    let mut warnings: Vec<String> = warnings.iter().map(|w| w.to_string()).collect();
    let Some(snap) = snap else { return (None, warnings) };
    let (path, exit) = (snap.path().to_owned(), opts.exit_on_damage);
    snap.on_damage(move |e| set_aside_damaged(&path, e, exit));
    let mut rules_current = false;
    if let Some(s) = snap.section(RULES_SECTION) {
        rules_current = s.version == RULES_SECTION_VERSION;
        if !rules_current {
            let (at, v) = (snap.tree_size(), s.version);
            warnings.push(format!("snapshot at {at}: rule state of format {v}; replaying the rules"));
        }
    }
    let loaded = super::Loaded {
        tree_size: snap.tree_size(),
        root: Hash(*snap.root_hash()),
        file: file_name(snap.path()),
        rules_current,
        snapshot: snap,
    };
    (Some(loaded), warnings)
}

/// Damage found in the loaded snapshot at `path` after the open: the file is set aside so that
/// no later open picks it, then the process exits (`exit`) or the caller's thread panics on.
/// The log is untouched and every acknowledged entry durable: an open without this snapshot
/// rebuilds the same state from it.
fn set_aside_damaged(path: &Path, e: &zachetka_snapshots::SnapshotError, exit: bool) {
    let name = file_name(path);
    // A read that failed (EIO, a file cut short) is not known to be damage, but nothing read
    // from the file can be trusted to be whole either: it goes aside the same way, said as it is.
    let what = match e {
        zachetka_snapshots::SnapshotError::Io { .. } => "cannot be read",
        _ => "is damaged",
    };
    let e_text = e.with_causes();
    match zachetka_snapshots::set_aside(path) {
        Ok(to) => tracing::error!(
            code = e.code(),
            "snapshot {name} {what} ({e_text}); set aside as {}; the next open uses an older snapshot or the log",
            file_name(&to)
        ),
        // Set aside already (met again before the exit), or the directory refuses: say so.
        Err(why) => {
            tracing::error!(code = e.code(), "snapshot {name} {what} ({e_text}); it could not be set aside: {why}")
        }
    }
    if exit {
        eprintln!("snapshot {name} {what} ({e_text}); exiting with status {EXIT_SNAPSHOT_DAMAGED} so that a restart opens without it");
        std::process::exit(EXIT_SNAPSHOT_DAMAGED);
    }
}

/// The rule state of a snapshot under this ledger's config (a state saved under another config
/// is refused by `Rules::load_state`). Its lazily loaded parts refer to `values` (the section's).
pub fn load_rules(
    config: &LedgerConfig,
    values: std::sync::Arc<dyn zachetka_projections::lazy::ValueSource>,
    bytes: &[u8],
) -> Result<Rules, String> {
    zachetka_projections::lazy::load_apart(values, || decode_rules(config, bytes))
}

fn decode_rules(config: &LedgerConfig, bytes: &[u8]) -> Result<Rules, String> {
    let Some(region) = &config.rules else { return Err("the ledger has no rules".into()) };
    let region: crate::rules::RegionConfig = serde_json::from_value(region.clone()).map_err(|e| e.to_string())?;
    let ledger = crate::rules::ledger_did(config)?;
    Rules::load_state(&config.origin, &config.authority, region, bytes)
        .map(|r| r.with_key_check(crate::rules::strict_key_check).with_ledger_key(&ledger))
        .map_err(|e| e.to_string())
}

/// A snapshot file's name, for messages.
pub fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| path.display().to_string())
}
