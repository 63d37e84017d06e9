//! What is checked once every entry has been read: the stored head against the recomputed tree
//! and the stored checkpoints, and each stream's indexed head against its recomputed chain.

use super::*;

impl Auditor<'_> {
    pub(super) fn check_head(&mut self, head: Option<&(crate::checkpoint::TreeHead, Vec<u8>)>) {
        let Some((h, note)) = head else { return };
        if h.tree_size != self.tree.size() {
            let message = format!("head says {} entries, the log has {}", h.tree_size, self.tree.size());
            self.report.push(Position::Head, "head_size_mismatch", message);
        } else if h.root_hash != self.tree.root() {
            let size = h.tree_size;
            let caused_by = cause_before(&self.causes, size)
                .filter(|_| h.root_hash == self.stored_tree.root() || self.missing.first().is_some_and(|&m| m < size));
            let message = "the head's root differs from the recomputed root";
            self.report.push_or_consequence(caused_by, Position::Head, "head_root_mismatch", message);
        }
        if self.checkpoints.iter().all(|(s, n)| *s != h.tree_size || n != note) {
            let message = "the head's checkpoint is not among the stored checkpoints";
            self.report.push(Position::Head, "head_checkpoint_missing", message);
        }
    }

    pub(super) fn check_stream_heads(&mut self) -> Result<(), StoreError> {
        let mut names: Vec<&String> = self.streams.keys().collect();
        names.sort();
        for name in names {
            let st = &self.streams[name];
            self.report.streams_checked += 1;
            match self.store.stream_head(name)? {
                // Moved on by an entry a server appended while the audit ran (after its head).
                Some(h) if h.last_seq >= self.head_size && self.report.log_grew_to.is_some_and(|g| h.last_seq < g) => {}
                Some(h)
                    if h.len == st.len
                        && (h.last_leaf_hash == st.last_leaf || h.last_leaf_hash == st.last_stored_leaf)
                        && h.last_seq == st.last_seq => {}
                other => self.report.push(
                    Position::Stream { stream: name.clone() },
                    "stream_head_mismatch",
                    format!(
                        "indexed head {:?} differs from the chain (len {}, last seq {})",
                        other.map(|h| (h.len, h.last_seq)),
                        st.len,
                        st.last_seq
                    ),
                ),
            }
        }
        Ok(())
    }
}
