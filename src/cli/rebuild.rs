//! `zachetka rebuild`'s derived state: every read model and the rule state rebuilt from the log
//! alone, with a progress bar, written as a fresh snapshot in `<dir>/snapshots`. Not the index
//! rebuild (the store's own) and not the fold (`zachetka::read`).

use anyhow::{anyhow, Result};
use std::path::Path;
use zachetka::read::{SnapshotOptions, SnapshotPolicy};
use zachetka::store::Store;

pub(super) fn rebuild_read_models(store: &dyn Store, dir: &Path) -> Result<()> {
    let config = store.config()?.ok_or_else(|| anyhow!("{} holds no ledger", dir.display()))?;
    let size = store.head()?.map(|(h, _)| h.tree_size).unwrap_or(0);
    let bar = indicatif::ProgressBar::new(size);
    bar.set_style(
        indicatif::ProgressStyle::with_template("rebuild {bar:40} {pos}/{len} entries {per_sec} eta {eta}")
            .expect("valid template"),
    );
    let started = std::time::Instant::now();
    let opts = SnapshotOptions::in_ledger_dir(dir, SnapshotPolicy::default());
    let (path, digests) = zachetka::read::rebuild_snapshot(store, &config, &opts, |done| bar.set_position(done))
        .map_err(|e| anyhow!(e))?;
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "rebuilt {} read models and the rule state from {size} entries in {secs:.1} s ({:.0} entries/s); snapshot {}",
        digests.len(),
        size as f64 / secs.max(1e-9),
        path.display()
    );
    for d in digests {
        eprintln!("  {} v{} at {}: {}", d.name, d.version, d.tree_size, d.digest);
    }
    Ok(())
}
