//! One entry's checks: its bytes against its stored hashes, its canonical form and seq, its
//! signature, the rules replayed over it, its stream chain and expected version, and what the
//! id and stream indexes hold for it. Altered bytes are reported once, at their own entry.

use super::*;

impl Auditor<'_> {
    /// The work that needs no order (run on every core): the leaf hash, the parse, the signature.
    pub(super) fn verify(&self, r: &crate::store::RawEntry) -> CheckedEntry {
        let leaf = merkle::leaf_hash(&r.bytes);
        let parsed = event::parse_entry(&r.bytes).map_err(|e| e.to_string());
        let signature = match &parsed {
            Ok(p) => {
                p.verify_event(&self.config.origin, &self.keys).map(|_| ()).map_err(|r| (r.code.as_str(), r.message))
            }
            Err(_) => Ok(()),
        };
        CheckedEntry { leaf, parsed, signature }
    }

    /// Entries from `from` (at or past the head the audit read first) that no head covers. An
    /// entry a server appended while the audit ran is committed with its head, so a head read
    /// after the entry covers it: those are skipped (the next audit's), the rest returned.
    pub(super) fn entries_beyond_head(&self, mut from: u64) -> Result<Vec<crate::store::RawEntry>, StoreError> {
        // Bounded: under a steady stream of appends, the probe gives up rather than chase them.
        for _ in 0..8 {
            let raw = self.store.raw_entries(from, super::CHUNK_LEN)?;
            let Some(first) = raw.first() else { return Ok(raw) };
            let now = self.store.head()?.map(|(h, _)| h.tree_size).unwrap_or(0);
            if now <= first.seq {
                return Ok(raw);
            }
            from = now;
        }
        Ok(Vec::new())
    }

    /// The checks in log order.
    pub(super) fn check_entry(&mut self, r: &crate::store::RawEntry, c: CheckedEntry) -> Result<(), StoreError> {
        let seq = r.seq;
        let at = Position::Entry { seq };
        if seq >= self.head_size {
            let message = format!("entry {seq} is beyond the head's tree size {}", self.head_size);
            self.report.push(at.clone(), "entry_beyond_head", message);
        }
        self.report_missing(seq);
        self.expected_seq = seq + 1;
        let stored_leaf = self.check_hashes(r, &c, &at);
        self.report.entries_checked += 1;
        let bytes_altered = r.damaged.is_some() || stored_leaf != c.leaf;
        if let (true, Ok(p)) = (bytes_altered, &c.parsed) {
            // Checked to tell whether the signed event changed (in `check_hashes`' message).
            self.report.signatures_checked += 1;
            // The rules do not accept it: a later entry naming its event is refused because of it.
            self.altered_ids.insert(p.id().to_owned(), seq);
        }
        match &c.parsed {
            Err(e) if !bytes_altered => self.report.push(at, "entry_malformed", e.clone()),
            // Altered bytes are reported once, above; their content is not evidence of anything
            // else (a flipped id would otherwise blame an innocent entry).
            _ if bytes_altered => {}
            Err(_) => unreachable!("handled above"),
            Ok(p) => self.check_parsed(seq, &at, p, &c, stored_leaf)?,
        }
        Ok(())
    }

    /// The entry's bytes against its stored leaf hash, and its stored interior hashes against
    /// both trees; returns the stored leaf hash.
    fn check_hashes(&mut self, r: &crate::store::RawEntry, c: &CheckedEntry, at: &Position) -> Hash {
        let true_hashes = self.tree.push(c.leaf).to_vec();
        let stored_leaf = r.hashes.first().copied().unwrap_or(c.leaf);
        let stored_view = self.stored_tree.push(stored_leaf).to_vec();
        let interior_ok = r.hashes.len() == true_hashes.len()
            && (r.hashes[1..] == true_hashes[1..] || r.hashes[1..] == stored_view[1..]);
        if r.damaged.is_some() || stored_leaf != c.leaf || c.parsed.is_err() {
            self.altered.insert(stored_leaf.0);
            self.altered.insert(c.leaf.0);
        }
        if r.damaged.is_some() || stored_leaf != c.leaf {
            self.causes.insert(r.seq);
        }
        if let Some(detail) = &r.damaged {
            let message = format!("{detail}; its bytes cannot be read, so its signature cannot be checked");
            self.push_altered(at, "record_malformed", message, SignedEvent::Unreadable);
        } else if stored_leaf != c.leaf {
            let what = "the entry's bytes do not hash to the leaf hash committed for it";
            let (signed, why) = match (&c.parsed, &c.signature) {
                (Err(e), _) => (
                    SignedEvent::Unreadable,
                    format!("they no longer read as an entry ({e}), so its signature cannot be checked"),
                ),
                (Ok(_), Ok(())) => (
                    SignedEvent::Intact,
                    "its signature still verifies: the signed event is as its author signed it, and what changed \
                     lies outside it (the entry's seq, recorded_at or stream position) or in the stored leaf hash"
                        .to_owned(),
                ),
                (Ok(_), Err((code, _))) => (
                    SignedEvent::Altered,
                    format!("its signature no longer verifies ({code}): the signed event itself was changed"),
                ),
            };
            if signed == SignedEvent::Intact {
                self.intact.insert(r.seq);
            }
            self.push_altered(at, "leaf_hash_mismatch", format!("{what}; {why}"), signed);
        } else if !interior_ok {
            let message = "the stored Merkle hashes of this entry differ from the recomputed ones";
            self.report.push(at.clone(), "stored_hash_mismatch", message);
        }
        stored_leaf
    }

    fn push_altered(&mut self, at: &Position, code: &'static str, message: String, signed: SignedEvent) {
        let v = Violation { position: at.clone(), code, message, signed_event: Some(signed) };
        self.report.violations.push(v);
    }

    /// A well-formed entry: seq, signature, rules, chain, expected version, indexes.
    fn check_parsed(
        &mut self,
        seq: u64,
        at: &Position,
        p: &event::ParsedEntry,
        c: &CheckedEntry,
        stored_leaf: Hash,
    ) -> Result<(), StoreError> {
        if p.meta.seq != seq {
            self.report.push(at.clone(), "seq_mismatch", format!("entry stored at {seq} says seq {}", p.meta.seq));
        }
        let recorded_at = p.meta.recorded_at_unix;
        match self.last_recorded_at {
            Some((before, latest)) if recorded_at < latest => {
                let message = format!(
                    "recorded_at {} is earlier than entry {before}'s {}: ledger time runs backwards",
                    crate::time::format_rfc3339(recorded_at),
                    crate::time::format_rfc3339(latest)
                );
                self.report.push(at.clone(), "recorded_at_backwards", message);
            }
            _ => self.last_recorded_at = Some((seq, recorded_at)),
        }
        self.report.signatures_checked += 1;
        if c.signature.is_ok() {
            self.count_import(seq, p);
            self.replay_rules(seq, at, p);
        }
        if let Err((code, msg)) = &c.signature {
            let kind = if *code == "signature_invalid" { "signature_invalid" } else { "event_invalid" };
            self.report.push(at.clone(), kind, format!("{code}: {msg}"));
        }
        self.check_chain(seq, at, p, c.leaf, stored_leaf)?;
        self.check_id(seq, at, p, c.leaf)
    }

    /// The rules, as the append path runs them: the same `check_and_apply`.
    fn replay_rules(&mut self, seq: u64, at: &Position, p: &event::ParsedEntry) {
        let Some(rules) = self.rules.as_mut() else { return };
        let Some(env) = crate::rules::envelope(seq, p.meta.recorded_at_unix, &p.event) else {
            self.report.push(at.clone(), "event_invalid", "the event lacks an envelope field");
            return;
        };
        match rules.check_and_apply(&env, &self.accepted) {
            Ok(()) => {
                self.accepted.0.insert(env.id.to_owned(), (env.stream.to_owned(), env.event_type.to_owned()));
                self.revocations.accepted(&env, rules, &mut self.report);
            }
            Err(crate::rules::RuleError::Refused(r)) => {
                let caused_by = names_altered(&self.altered_ids, &p.event["data"]);
                let message = format!("the rules refuse this entry: {}", r.message);
                self.report.push_or_consequence(caused_by, at.clone(), r.code, message)
            }
            Err(crate::rules::RuleError::Lookup(e)) => {
                unreachable!("the audit's lookup is in memory and always answers: {e}")
            }
        }
    }

    /// The stream's hash chain, its index record for this version, and the event's expected
    /// version.
    fn check_chain(
        &mut self,
        seq: u64,
        at: &Position,
        p: &event::ParsedEntry,
        leaf: Hash,
        stored_leaf: Hash,
    ) -> Result<(), StoreError> {
        let st = self.streams.entry(p.stream().to_owned()).or_insert(StreamState {
            len: 0,
            last_leaf: Hash([0; 32]),
            last_stored_leaf: Hash([0; 32]),
            last_seq: 0,
        });
        let want_prev = if st.len == 0 { None } else { Some(st.last_leaf) };
        let alt_prev = if st.len == 0 { None } else { Some(st.last_stored_leaf) };
        let chained =
            p.meta.stream_version == st.len && (p.meta.stream_prev == want_prev || p.meta.stream_prev == alt_prev);
        // A predecessor already reported as altered cannot be trusted to say which stream it was
        // in: resynchronise on it instead of blaming this entry too.
        let after_altered = p.meta.stream_prev.is_some_and(|h| self.altered.contains(&h.0));
        if after_altered && !chained {
            st.len = p.meta.stream_version;
        } else if !chained {
            let b64 = |h: Option<Hash>| h.map(|h| h.to_b64()).unwrap_or_else(|| "null".into());
            let message = format!(
                "stream {} expects version {} and prev {}; entry has version {} and prev {}",
                p.stream(),
                st.len,
                b64(want_prev),
                p.meta.stream_version,
                b64(p.meta.stream_prev)
            );
            self.report.push(at.clone(), "stream_chain_broken", message);
        }
        st.len += 1;
        st.last_leaf = leaf;
        st.last_stored_leaf = stored_leaf;
        st.last_seq = seq;
        match self.store.stream_seqs(p.stream(), p.meta.stream_version, 1)?.first() {
            Some(s) if *s == seq => {}
            other => self.report.push(
                at.clone(),
                "stream_index_mismatch",
                format!("stream index for version {} points to {other:?}", p.meta.stream_version),
            ),
        }
        // An entry the sequencer would have refused: its author expected another stream length
        // than the one it was written at.
        let expected = p.event.get("expected_version").and_then(serde_json::Value::as_u64);
        if expected.is_some_and(|e| e != p.meta.stream_version) {
            let message =
                format!("the event expected version {expected:?}, it was written at {}", p.meta.stream_version);
            self.report.push(at.clone(), "stream_version_conflict", message);
        }
        Ok(())
    }

    /// Event ids are unique, and the id index points at this entry.
    fn check_id(&mut self, seq: u64, at: &Position, p: &event::ParsedEntry, leaf: Hash) -> Result<(), StoreError> {
        let earlier = self.ids.insert(p.id().to_owned(), seq);
        if let Some(first) = earlier {
            self.report.push(at.clone(), "duplicate_event_id", format!("event id {} is also entry {first}", p.id()));
        }
        match self.store.id_record(p.id())? {
            Some(rec) if rec.seq == seq && rec.leaf_hash == leaf => {}
            // A duplicate's index points at the first occurrence; reported above.
            Some(rec) if earlier == Some(rec.seq) => {}
            other => self.report.push(
                at.clone(),
                "id_index_mismatch",
                format!("the id index holds {:?} for this entry", other.map(|r| r.seq)),
            ),
        }
        Ok(())
    }

    /// An entry imported from a legacy system (`data.migrated_from`), counted by its key.
    fn count_import(&mut self, seq: u64, p: &event::ParsedEntry) {
        if zachetka_projections::model::imported_of(&p.event).is_none() {
            return;
        }
        let key = p.event.get("author").and_then(serde_json::Value::as_str).unwrap_or_default();
        let at = p.meta.recorded_at_unix;
        self.report.imported.entries += 1;
        match self.imported.get_mut(key) {
            Some(run) => {
                run.entries += 1;
                run.last = (seq, at);
            }
            None => {
                self.imported.insert(key.to_owned(), ImportedRun { entries: 1, first: (seq, at), last: (seq, at) });
            }
        }
    }

    /// Reports entries from the next expected seq up to `end` as missing (seq must be dense). A
    /// missing leaf breaks the tree from there on; auditing goes on with placeholders so later
    /// positions stay aligned and every other fault is still found.
    pub(super) fn report_missing(&mut self, end: u64) {
        while self.expected_seq < end {
            let next = self.expected_seq;
            self.report.push(
                Position::Entry { seq: next },
                "entry_missing",
                format!("entry {next} is missing (seq must be dense)"),
            );
            self.causes.insert(next);
            self.missing.insert(next);
            self.tree.push(Hash([0u8; 32]));
            self.stored_tree.push(Hash([0u8; 32]));
            self.expected_seq += 1;
        }
    }
}

/// The altered entry (by seq) whose event id `data` names, if any: an entry that refers to an
/// event the audit could not accept is refused because of that entry, not on its own.
fn names_altered(altered: &HashMap<String, u64>, data: &serde_json::Value) -> Option<u64> {
    if altered.is_empty() {
        return None;
    }
    match data {
        serde_json::Value::String(s) => altered.get(s).copied(),
        serde_json::Value::Array(items) => items.iter().find_map(|v| names_altered(altered, v)),
        serde_json::Value::Object(fields) => fields.values().find_map(|v| names_altered(altered, v)),
        _ => None,
    }
}
