//! The signed checkpoints: each verified under the ledger's key, its size and root against the
//! tree recomputed from the entries, and each consistent with the last good one before it.

use super::*;
use crate::checkpoint;

impl Auditor<'_> {
    /// Checks the checkpoints whose size the recomputed tree has now reached.
    pub(super) fn check_reached_checkpoints(&mut self) {
        // Taken out while they are checked (a check needs the rest of the auditor mutably).
        let checkpoints = std::mem::take(&mut self.checkpoints);
        while let Some((size, note)) = checkpoints.get(self.next_checkpoint).filter(|c| c.0 <= self.tree.size()) {
            self.check_checkpoint(*size, note);
            self.next_checkpoint += 1;
        }
        self.checkpoints = checkpoints;
    }

    /// After the last entry: checkpoints the log never reached are beyond it.
    pub(super) fn check_remaining_checkpoints(&mut self) {
        let checkpoints = std::mem::take(&mut self.checkpoints);
        for (size, note) in &checkpoints[self.next_checkpoint..] {
            let size = *size;
            if size <= self.tree.size() {
                self.check_checkpoint(size, note);
            } else {
                self.report.push(
                    Position::Checkpoint { tree_size: size },
                    "checkpoint_beyond_log",
                    format!("checkpoint for size {size}, the log has {}", self.tree.size()),
                );
            }
        }
        self.checkpoints = checkpoints;
        self.next_checkpoint = self.checkpoints.len();
    }

    /// One checkpoint: its signature, its size, its root (a root that agrees with the stored
    /// leaf hashes and differs only because an entry before it was altered is a consequence of
    /// that entry), and its consistency with the last good checkpoint.
    fn check_checkpoint(&mut self, size: u64, note: &[u8]) {
        let Auditor { report, config, tree, stored_tree, causes, missing, last_good, .. } = self;
        let explain = |signed: &Hash| {
            cause_before(causes, size)
                .filter(|_| *signed == stored_tree.root_at(size) || missing.first().is_some_and(|&m| m < size))
        };
        let signed = check_checkpoint(report, config, tree, size, note, last_good, &explain);
        // What the signed roots say of the altered entries before them: which trees they sign.
        if let Some(root) = signed.filter(|_| cause_before(causes, size).is_some()) {
            if root == tree.root_at(size) {
                self.signed_over.bytes.push(size);
            } else if root == stored_tree.root_at(size) {
                self.signed_over.stored.push(size);
            }
        }
    }
}

/// Tree sizes of the checkpoints after an altered entry whose signed root is that of the tree
/// of the entries' bytes, or that of the stored leaf hashes: which of the two the ledger signed,
/// so which was changed afterwards.
#[derive(Default)]
pub(super) struct SignedOver {
    pub(super) bytes: Vec<u64>,
    pub(super) stored: Vec<u64>,
}

impl SignedOver {
    /// What the checkpoints say about entry `seq` whose bytes do not hash to its stored leaf hash.
    pub(super) fn about(&self, seq: u64) -> Option<String> {
        if let Some(n) = self.bytes.iter().find(|&&n| n > seq) {
            return Some(format!(
                "the checkpoint at tree size {n} signs the root over its bytes as they are: its stored leaf hash \
                 was altered, not the entry"
            ));
        }
        self.stored.iter().find(|&&n| n > seq).map(|n| {
            format!(
                "the checkpoint at tree size {n} signs the root over its stored leaf hash: the entry's bytes were \
                 altered after it was written"
            )
        })
    }
}

fn check_checkpoint(
    report: &mut AuditReport,
    config: &LedgerConfig,
    tree: &MemoryTree,
    size: u64,
    note: &[u8],
    last_good: &mut Option<VerifiedCheckpoint>,
    explain: &dyn Fn(&Hash) -> Option<u64>,
) -> Option<Hash> {
    let at = Position::Checkpoint { tree_size: size };
    report.checkpoints_checked += 1;
    let v = match checkpoint::verify_checkpoint(note, &config.verifier_key, &config.origin) {
        Ok(v) => v,
        Err(e) => {
            report.push(at, "checkpoint_invalid", e.to_string());
            return None;
        }
    };
    if v.head.tree_size != size {
        report.push(
            at,
            "checkpoint_size_mismatch",
            format!("stored under size {size}, the note says {}", v.head.tree_size),
        );
        return None;
    }
    if v.head.root_hash != tree.root_at(size) {
        let message = "the signed root differs from the root recomputed from the entries";
        report.push_or_consequence(explain(&v.head.root_hash), at, "checkpoint_root_mismatch", message);
        return Some(v.head.root_hash);
    }
    if let Some(prev) = last_good.as_ref() {
        let (m, n) = (prev.head.tree_size, size);
        if m > 0 && m < n {
            let ok = merkle::prove_consistency(m, n, tree)
                .and_then(|p| merkle::verify_consistency(m, n, prev.head.root_hash, v.head.root_hash, &p));
            if let Err(e) = ok {
                report.push(at, "checkpoint_inconsistent", format!("not consistent with the checkpoint at {m}: {e}"));
                return Some(v.head.root_hash);
            }
            report.checkpoint_pairs_checked += 1;
        }
    }
    let root = v.head.root_hash;
    *last_good = Some(v);
    Some(root)
}
