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
}

impl SnapshotOptions {
    /// Snapshots in `<ledger dir>/snapshots`, written under `policy`.
    pub fn in_ledger_dir(dir: &Path, policy: SnapshotPolicy) -> Self {
        Self { dir: dir.join("snapshots"), policy, write: true }
    }

    /// Snapshots in `<ledger dir>/snapshots`, loaded and never written.
    pub fn load_only(dir: &Path) -> Self {
        Self { dir: dir.join("snapshots"), policy: SnapshotPolicy::default(), write: false }
    }
}

/// Writes one snapshot (rule state and every model at `tree_size`, whose root is `root`) and
/// applies the retention of the policy.
pub fn write(
    opts: &SnapshotOptions,
    tree_size: u64,
    root: Hash,
    rules: Option<Vec<u8>>,
    models: Vec<(String, u32, Vec<u8>)>,
) -> Result<PathBuf, String> {
    let mut sections = Vec::with_capacity(models.len() + 1);
    if let Some(bytes) = &rules {
        sections.push(zachetka_snapshots::Section { name: RULES_SECTION, version: RULES_SECTION_VERSION, bytes });
    }
    for (name, version, bytes) in &models {
        sections.push(zachetka_snapshots::Section { name, version: *version, bytes });
    }
    zachetka_snapshots::write(&opts.dir, tree_size, &root.0, &sections, opts.policy.keep).map_err(|e| e.to_string())
}

/// The newest snapshot in `dir` that the log vouches for (its tree size at most `head_size`, and
/// the log's root at that size equal to the snapshot's). Every snapshot passed over is a warning
/// (logged, and returned for status).
pub fn load_newest(dir: &Path, store: &dyn Store, head_size: u64) -> (Option<super::Loaded>, Vec<String>) {
    let accept = |size: u64, root: &[u8; 32]| {
        size <= head_size && merkle::root(size, &StoreHashes(store)).is_ok_and(|r| &r.0 == root)
    };
    let (snap, warnings) = zachetka_snapshots::newest_usable(dir, accept);
    let mut warnings: Vec<String> = warnings.iter().map(|w| w.to_string()).collect();
    let Some(snap) = snap else { return (None, warnings) };
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

/// The rule state of a snapshot under this ledger's config (a state saved under another config
/// is refused by `Rules::load_state`). `bytes` lie in `buffer` (the snapshot file's), which the
/// parts of the state kept encoded until needed share.
pub fn load_rules(config: &LedgerConfig, buffer: &std::sync::Arc<Vec<u8>>, bytes: &[u8]) -> Result<Rules, String> {
    zachetka_projections::lazy::with_source(buffer, || decode_rules(config, bytes))
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
