//! The `completeness` read model (DESIGN 3.7): every learner's completeness value (a count and
//! the chain of the leaf hashes of the entries that concern them, by `Concerns`, in log order),
//! the maps at past positions a commitment needs, and every commitment the log holds with its
//! root recomputed from the log (what the audit reports when they differ).
//! Not the format (`crate::completeness`: values, map, proofs) and not the policy that decides
//! when the ledger commits (the read side's runner).

use super::common::Keyed;
use super::concerns::Concerns;
use crate::completeness::{LearnerValue, Map, UP_TO_LAG_MAX};
use crate::model::{self, DecodeError, Fact, ReadModel, Scope, View, ViewError};
use crate::vocabulary::Event;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use zachetka_formats::merkle::{Hash, HashB64};

/// A commitment as the log holds it, and the map recomputed at its `up_to` from the entries
/// before it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitmentSeen {
    /// The commitment entry's own position.
    pub seq: u64,
    /// Its author (`did:key`): only the ledger key's count (the rules refuse others; on a log
    /// without rules the reader filters).
    pub author: String,
    /// What it says: the map over entries with seq < `up_to`.
    pub up_to: u64,
    /// `data.map_root` decoded (`None`: not 32 bytes of base64).
    pub map_root: Option<[u8; 32]>,
    pub learners: u64,
    /// (root, learners) of the map recomputed from the log at `up_to`, or why it could not be.
    pub recomputed: Result<([u8; 32], u64), String>,
}

impl CommitmentSeen {
    /// Whether the commitment says what the log says.
    pub fn matches(&self) -> bool {
        matches!((&self.recomputed, self.map_root), (Ok((root, n)), Some(claimed)) if *root == claimed && *n == self.learners)
    }
}

/// One change of a learner's value since `journal_from`: (seq, the learner's position in
/// `values`, value before; `LearnerValue::EMPTY` before their first entry).
type Change = (u64, u32, LearnerValue);

/// State: canonical (vectors in log order, integers).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Completeness {
    concerns: Concerns,
    /// Learner id -> value, in order of the learner's first entry (the map sorts its leaves by
    /// key hash, so the order only has to be canonical).
    values: Keyed<LearnerValue>,
    /// Every change of a value made by an entry at or after `journal_from` (the last
    /// commitment's `up_to`, or `UP_TO_LAG_MAX` behind the newest entry when that is later),
    /// so the map at any position from there on can be rebuilt: a commitment lands after the
    /// position it commits to, at most `UP_TO_LAG_MAX` after it. A ring (encoded as the list):
    /// forgetting its oldest changes does not move the 2^18 it keeps.
    journal: VecDeque<Change>,
    journal_from: u64,
    /// Every commitment seen, in log order.
    commitments: Vec<CommitmentSeen>,
    /// One past the last entry applied.
    next_seq: u64,
    /// The number of commitment entries at or after the last commitment's `up_to` (so a
    /// policy can tell whether anything but commitments came since).
    commitments_since: u64,
}

impl Completeness {
    /// The learner's value now (at the model's cursor).
    pub fn value(&self, learner: &str) -> LearnerValue {
        self.values.get(learner).copied().unwrap_or(LearnerValue::EMPTY)
    }

    /// Every learner with their value now, in order of their first entry.
    pub fn values(&self) -> impl Iterator<Item = (&str, LearnerValue)> {
        self.values.iter().map(|(l, v)| (l, *v))
    }

    /// The map over every entry applied so far.
    pub fn map(&self) -> Map {
        Map::from_values(self.values())
    }

    /// The map over entries with seq < `up_to`, or `None` when `up_to` is before the last
    /// commitment's `up_to` (the journal starts there; fold the log again for older maps). An
    /// `up_to` beyond what was applied gives the map now.
    pub fn map_at(&self, up_to: u64) -> Option<Map> {
        if up_to < self.journal_from {
            return None;
        }
        let mut values = self.values.values().to_vec();
        for (seq, learner, before) in self.journal.iter().rev() {
            if *seq < up_to {
                break;
            }
            values[*learner as usize] = *before;
        }
        // A learner whose first entry is at or after `up_to` is back to no entries, which the
        // map leaves out.
        Some(Map::from_values(self.values.iter().map(|(l, _)| l).zip(values)))
    }

    /// Every commitment seen, in log order, with its recomputation.
    pub fn commitments(&self) -> &[CommitmentSeen] {
        &self.commitments
    }

    /// The position the last commitment covers (0 before any).
    pub fn last_up_to(&self) -> u64 {
        self.commitments.last().map_or(0, |c| c.up_to)
    }

    /// Entries applied at or after the last commitment's `up_to` that are not commitments
    /// themselves, counted up to `cursor` (what a policy waits for).
    pub fn uncommitted(&self, cursor: u64) -> u64 {
        cursor.saturating_sub(self.last_up_to()).saturating_sub(self.commitments_since)
    }

    /// Reads a state from `encode`'s bytes (the audit reads the commitments of a rebuilt
    /// model this way).
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut state: Self = model::decode_state("completeness", bytes)?;
        let refused = |reason: String| DecodeError { model: "completeness", reason };
        state.values.reindex().map_err(refused)?;
        let n = state.values.len();
        if state.journal.iter().any(|(_, at, _)| *at as usize >= n) {
            return Err(refused(format!("the journal names a learner beyond the {n} held")));
        }
        Ok(state)
    }

    fn commit(&mut self, f: &Fact<'_>, up_to: i64, map_root: &str, learners: i64) {
        let up_to = u64::try_from(up_to).unwrap_or(u64::MAX);
        let recomputed = if up_to > f.seq {
            Err(format!("up_to {up_to} is beyond the commitment's own position {}", f.seq))
        } else {
            match self.map_at(up_to) {
                Some(m) => Ok((m.root(), m.len())),
                None => Err(format!(
                    "up_to {up_to} is before the previous commitment's up_to {}: commitments never go back",
                    self.journal_from
                )),
            }
        };
        let ok = recomputed.is_ok();
        self.commitments.push(CommitmentSeen {
            seq: f.seq,
            author: f.author.to_owned(),
            up_to,
            map_root: Hash::from_b64(map_root).map(|h| h.0),
            learners: u64::try_from(learners).unwrap_or(u64::MAX),
            recomputed,
        });
        if ok {
            // The journal now starts at this commitment's position; the commitments counted
            // are those from there on (this one included).
            self.journal_from = up_to;
            self.journal.retain(|(seq, _, _)| *seq >= up_to);
            let earlier_since = self.commitments.iter().filter(|c| c.seq >= up_to).count() as u64;
            self.commitments_since = earlier_since;
        } else {
            self.commitments_since += 1;
        }
    }
}

impl ReadModel for Completeness {
    fn name(&self) -> &'static str {
        "completeness"
    }

    fn version(&self) -> u32 {
        // 2: values in order of first entry, found by hash; the journal names learners by
        // position.
        2
    }

    fn apply(&mut self, f: &Fact<'_>) {
        self.concerns.apply(f);
        let Completeness { concerns, values, journal, .. } = self;
        for learner in concerns.concerned(f) {
            let (at, value) = values.slot_at(learner);
            let before = *value;
            *value = before.chain(f.leaf_hash);
            journal.push_back((f.seq, at, before));
        }
        // Forget what no commitment to come may need, once per 4,096 positions (a function of
        // the seqs alone, so every build of the state trims alike).
        if f.seq >> 12 > self.next_seq.saturating_sub(1) >> 12 {
            let cutoff = f.seq.saturating_sub(UP_TO_LAG_MAX);
            if cutoff > self.journal_from {
                self.journal_from = cutoff;
                let keep_from = self.journal.partition_point(|(seq, _, _)| *seq < cutoff);
                self.journal.drain(..keep_from);
            }
        }
        self.next_seq = f.seq + 1;
        if let Event::CompletenessCommitted(d) = f.event {
            self.commit(f, d.up_to, &d.map_root, d.learners);
        }
    }

    fn encode(&self) -> Vec<u8> {
        model::encode_state(self)
    }

    fn load(&mut self, bytes: &[u8]) -> Result<(), DecodeError> {
        *self = Self::decode(bytes)?;
        Ok(())
    }

    /// `completeness/<learner>`: the learner's value now (`{"learner","count","digest"}`);
    /// `completeness/commitments`: every commitment and whether it matches the log (region).
    fn view(&self, path: &[&str]) -> Result<View, ViewError> {
        model::expect_len(path, 1, "completeness/<learner> or completeness/commitments")?;
        let id = model::segment(path, 0, "a learner id")?;
        if id == "commitments" {
            let list: Vec<serde_json::Value> = self
                .commitments
                .iter()
                .map(|c| {
                    serde_json::json!({
                        "seq": c.seq, "up_to": c.up_to, "learners": c.learners,
                        "map_root": c.map_root.map(|r| Hash(r).to_b64()),
                        "matches_log": c.matches(),
                    })
                })
                .collect();
            return Ok(View { scope: Scope::Region, body: serde_json::json!({ "commitments": list }) });
        }
        let Some(v) = self.values.get(id) else { return Err(ViewError::NotFound(format!("learner {id}"))) };
        Ok(View {
            scope: Scope::Learner(id.to_owned()),
            body: serde_json::json!({"learner": id, "count": v.count, "digest": Hash(v.digest).to_b64()}),
        })
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::completeness::{self, verify_map_proof, MapProof, ValueJson};
    use crate::models::testkit::{check_reload, History};
    use serde_json::{json, Value};
    use sha2::{Digest, Sha256};
    use std::collections::BTreeMap;

    /// A small region: a kindergarten queue (application, benefit, offer, answer, enrolment),
    /// a 1st-grade intake (applications, an order listing them), learners' own streams, and
    /// entries that concern nobody.
    fn region() -> History {
        let mut h = History::default();
        let q = "queue/kg/terr-1";
        let s = "institution/sch-1";
        h.push(
            q,
            "queue.application_submitted",
            json!({"application_id": "a-1", "number": "N-1", "learner": "47-1",
            "birth_month": "2023-02", "desired_date": "2026-09-01", "preferred": ["kg-1"], "group_type": "general"}),
        );
        h.push("learner/47-2", "portfolio.achievement_revoked", json!({"achievement_id": "x", "reason": "y"}));
        h.push(
            q,
            "queue.benefit_claimed",
            json!({"application_id": "a-1", "claim_id": "c-1", "category": "police",
            "evidence_ref": "ev-1", "recheck_on": "2027-01-01"}),
        );
        h.push(q, "queue.allocation_started", json!({"run_id": "r-1", "kind": "main", "places": []}));
        h.push(q, "queue.place_offered", json!({"offer_id": "o-1", "application_id": "a-1", "kindergarten": "kg-1"}));
        h.push(q, "queue.offer_accepted", json!({"offer_id": "o-1"}));
        h.push(
            s,
            "enrolment.application_submitted",
            json!({"application_id": "fa-1", "learner": "47-1",
            "target_year": 2030, "window": 1, "basis": "territory", "birth_month": "2023-02"}),
        );
        h.push(
            s,
            "enrolment.application_submitted",
            json!({"application_id": "fa-2", "learner": "47-3",
            "target_year": 2030, "window": 1, "basis": "sibling", "birth_month": "2023-03"}),
        );
        h.push(
            s,
            "enrolment.order_issued",
            json!({"order_id": "ord-1", "target_year": 2030, "applications": ["fa-2", "fa-1"], "order_date": "2030-07-02"}),
        );
        h.push(
            s,
            "journal.lesson_held",
            json!({"lesson_id": "l", "class": "1А", "subject": "m", "lesson_date": "2030-09-01"}),
        );
        h.push("learner/47-2", "portfolio.achievement_revoked", json!({"achievement_id": "z", "reason": "y"}));
        h.push("learner/47-1", "portfolio.achievement_revoked", json!({"achievement_id": "w", "reason": "y"}));
        h
    }

    fn vectors_path() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors/zachetka/completeness.json")
    }

    fn b64(bytes: &[u8]) -> String {
        zachetka_formats::keys::b64(bytes)
    }

    /// The vectors as this implementation computes them.
    fn generate() -> Value {
        let h = region();
        let mut m = Completeness::default();
        let mut concerns = Concerns::default();
        let mut entries = Vec::new();
        for e in &h.entries {
            let f = e.fact();
            concerns.apply(&f);
            let learners: Vec<&str> = concerns.learners_concerned(&f);
            entries.push(json!({"seq": e.seq, "stream": e.stream, "type": e.event_type,
                "leaf_hash": b64(&e.leaf_hash), "learners": learners}));
            m.apply(&f);
        }
        let map = m.map();
        let mut leaves: Vec<([u8; 32], &str, LearnerValue)> =
            m.values().map(|(l, v)| (completeness::key_hash(l), l, v)).collect();
        leaves.sort_by_key(|l| l.0);
        let values: BTreeMap<&str, ValueJson> = m.values().map(|(l, v)| (l, ValueJson::from(v))).collect();
        let proofs: Vec<Value> = ["47-1", "47-2", "47-3", "47-404"]
            .iter()
            .map(|l| {
                let (v, p) = map.prove(l);
                json!({"learner": l, "value": ValueJson::from(v), "map_proof": p})
            })
            .collect();
        let up_to = h.entries.len() as u64;
        json!({
            "description": "Completeness commitments (README, Formats): per-learner values, the map and its proofs over a small region's entries. `learners` is what Concerns decides for each entry; leaf hashes stand in for real entries (the RFC 9162 leaf hash of the event id). Generated by projections/src/models/completeness.rs; checked there by an independent computation.",
            "chain_domain": String::from_utf8_lossy(completeness::CHAIN_DOMAIN),
            "entries": entries,
            "values": values,
            "map_leaves": leaves.iter().map(|(k, l, v)| json!({"learner": l, "key_hash": b64(k),
                "leaf_hash": b64(&completeness::map_leaf_hash(k, v))})).collect::<Vec<_>>(),
            "map_root": b64(&map.root()),
            "commitment": {"stream": completeness::STREAM, "type": completeness::EVENT_TYPE,
                "data": completeness::event_data(up_to, &map.root(), map.len())},
            "proofs": proofs,
        })
    }

    fn sha(parts: &[&[u8]]) -> [u8; 32] {
        let mut h = Sha256::new();
        for p in parts {
            h.update(p);
        }
        h.finalize().into()
    }

    /// RFC 9162 2.1.1, straight from the text.
    fn mth(leaves: &[[u8; 32]]) -> [u8; 32] {
        match leaves.len() {
            0 => sha(&[]),
            1 => leaves[0],
            n => {
                let k = 1usize << (usize::BITS - 1 - (n - 1).leading_zeros());
                sha(&[&[1], &mth(&leaves[..k]), &mth(&leaves[k..])])
            }
        }
    }

    /// RFC 9162 2.1.3.2, straight from the text.
    fn rfc_verify(index: u64, size: u64, leaf: [u8; 32], path: &[[u8; 32]], root: [u8; 32]) -> bool {
        if index >= size {
            return false;
        }
        let (mut f, mut s, mut r) = (index, size - 1, leaf);
        for p in path {
            if s == 0 {
                return false;
            }
            if f & 1 == 1 || f == s {
                r = sha(&[&[1], p, &r]);
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            } else {
                r = sha(&[&[1], &r, p]);
            }
            f >>= 1;
            s >>= 1;
        }
        s == 0 && r == root
    }

    fn d32(v: &Value) -> [u8; 32] {
        zachetka_formats::keys::b64_decode(v.as_str().unwrap()).unwrap().try_into().unwrap()
    }

    #[test]
    fn the_vectors_are_what_this_build_computes_and_what_the_readme_says() {
        let path = vectors_path();
        let generated = generate();
        if std::env::var_os("ZACHETKA_WRITE_VECTORS").is_some() {
            std::fs::write(&path, serde_json::to_string_pretty(&generated).unwrap() + "\n").unwrap();
        }
        let stored: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(
            stored,
            generated,
            "{} differs from this build (ZACHETKA_WRITE_VECTORS=1 rewrites it)",
            path.display()
        );

        // The independent computation, from the file and the README's text alone.
        let mut values: BTreeMap<String, (u64, [u8; 32])> = BTreeMap::new();
        for e in stored["entries"].as_array().unwrap() {
            let leaf = d32(&e["leaf_hash"]);
            for l in e["learners"].as_array().unwrap() {
                let v = values.entry(l.as_str().unwrap().to_owned()).or_insert((0, [0; 32]));
                *v = (v.0 + 1, sha(&[b"zachetka/completeness/v1\n", &v.1, &leaf]));
            }
        }
        assert_eq!(values.len(), 3, "the region's three learners");
        assert_eq!(
            values["47-1"].0, 7,
            "47-1: queue application, benefit, offer, answer, 1st-grade application, order, own entry"
        );
        for (l, (count, digest)) in &values {
            assert_eq!(stored["values"][l]["count"], json!(count));
            assert_eq!(d32(&stored["values"][l]["digest"]), *digest);
        }
        let mut leaves: Vec<([u8; 32], [u8; 32])> = values
            .iter()
            .map(|(l, (count, digest))| {
                let k: [u8; 32] = Sha256::digest(l.as_bytes()).into();
                (k, sha(&[&[0], &k, &count.to_be_bytes(), digest]))
            })
            .collect();
        leaves.sort();
        let root = mth(&leaves.iter().map(|(_, h)| *h).collect::<Vec<_>>());
        assert_eq!(d32(&stored["map_root"]), root);
        assert_eq!(d32(&stored["commitment"]["data"]["map_root"]), root);
        assert_eq!(stored["commitment"]["data"]["learners"], json!(3));
        for p in stored["proofs"].as_array().unwrap() {
            let l = p["learner"].as_str().unwrap();
            let proof: MapProof = serde_json::from_value(p["map_proof"].clone()).unwrap();
            let value = ValueJson::decode(&serde_json::from_value(p["value"].clone()).unwrap()).unwrap();
            verify_map_proof(&root, l, &value, &proof).unwrap();
            let k: [u8; 32] = Sha256::digest(l.as_bytes()).into();
            let path = |hs: &[String]| hs.iter().map(|h| d32(&json!(h))).collect::<Vec<_>>();
            match (&proof.present, &proof.absent) {
                (Some(inc), None) => {
                    let (count, digest) = values[l];
                    let leaf = sha(&[&[0], &k, &count.to_be_bytes(), &digest]);
                    assert!(rfc_verify(inc.leaf_index, 3, leaf, &path(&inc.hashes), root), "{l}");
                }
                (None, Some(abs)) => {
                    assert!(!values.contains_key(l));
                    let mut around = Vec::new();
                    for n in [&abs.left, &abs.right].into_iter().flatten() {
                        let nk = d32(&json!(n.key_hash));
                        let leaf = sha(&[&[0], &nk, &n.value.count.to_be_bytes(), &d32(&json!(n.value.digest))]);
                        assert!(rfc_verify(n.leaf_index, 3, leaf, &path(&n.hashes), root), "{l}");
                        around.push((n.leaf_index, nk));
                    }
                    let (lo, hi) =
                        (leaves.partition_point(|(lk, _)| *lk < k), leaves.partition_point(|(lk, _)| *lk <= k));
                    assert_eq!(lo, hi, "{l} is absent");
                    let expected: Vec<(u64, [u8; 32])> =
                        (lo.saturating_sub(1)..(lo + 1).min(leaves.len())).map(|i| (i as u64, leaves[i].0)).collect();
                    assert_eq!(around, expected, "{l}: the neighbours either side of its key");
                }
                _ => panic!("{l}: one of present and absent"),
            }
        }
    }

    #[test]
    fn a_learner_value_recomputed_from_their_entries_matches_and_one_dropped_entry_does_not() {
        let h = region();
        let mut m = Completeness::default();
        h.fold(&mut m);
        let map = m.map();
        let root = map.root();
        // 47-1's entries, found the way a bundle verifier would hold them: by leaf hash.
        let mut concerns = Concerns::default();
        let mut mine = Vec::new();
        for e in &h.entries {
            let f = e.fact();
            concerns.apply(&f);
            if concerns.learners_concerned(&f).contains(&"47-1") {
                mine.push(e.leaf_hash);
            }
        }
        let (value, proof) = map.prove("47-1");
        assert_eq!(LearnerValue::of_leaves(mine.iter()), value);
        verify_map_proof(&root, "47-1", &LearnerValue::of_leaves(mine.iter()), &proof).unwrap();
        for hidden in 0..mine.len() {
            let mut withheld = mine.clone();
            withheld.remove(hidden);
            let v = LearnerValue::of_leaves(withheld.iter());
            assert!(verify_map_proof(&root, "47-1", &v, &proof).is_err(), "entry {hidden} hidden");
            // Even with the count claimed right, the digest differs.
            let v = LearnerValue { count: value.count, ..v };
            assert!(verify_map_proof(&root, "47-1", &v, &proof).is_err(), "entry {hidden} hidden");
        }
        // An old state exported (the last entry, a revocation, left out) fails too.
        let old = LearnerValue::of_leaves(mine[..mine.len() - 1].iter());
        assert!(verify_map_proof(&root, "47-1", &old, &proof).is_err());
    }

    fn commit(h: &mut History, up_to: u64, root: &[u8; 32], learners: u64) {
        h.push(completeness::STREAM, completeness::EVENT_TYPE, completeness::event_data(up_to, root, learners));
    }

    #[test]
    fn commitments_are_recomputed_at_their_position_even_when_they_land_later() {
        let mut h = region();
        let mut m = Completeness::default();
        h.fold(&mut m);
        let at = h.entries.len() as u64;
        let map = m.map();
        assert_eq!(m.uncommitted(at), at);
        // Entries land between the position and the commitment.
        h.push("learner/47-1", "portfolio.achievement_revoked", json!({"achievement_id": "v", "reason": "y"}));
        h.push("learner/47-9", "portfolio.achievement_revoked", json!({"achievement_id": "u", "reason": "y"}));
        commit(&mut h, at, &map.root(), map.len());
        // A wrong one: the root of the map with 47-1's last entry left out.
        let mut wrong = Completeness::default();
        for e in &h.entries[..11] {
            wrong.apply(&e.fact());
        }
        let wrong_root = wrong.map().root();
        let wrong_at = h.entries.len() as u64;
        commit(&mut h, wrong_at, &wrong_root, 3);
        // One going back before the previous position cannot be recomputed: reported.
        commit(&mut h, 1, &map.root(), map.len());
        // One naming its own future.
        commit(&mut h, 1000, &map.root(), map.len());
        let mut m = Completeness::default();
        h.fold(&mut m);
        let verdicts: Vec<bool> = m.commitments().iter().map(CommitmentSeen::matches).collect();
        assert_eq!(verdicts, vec![true, false, false, false]);
        assert_eq!(m.commitments()[0].recomputed, Ok((map.root(), 3)));
        assert!(m.commitments()[2].recomputed.is_err() && m.commitments()[3].recomputed.is_err());
        // The map at the second commitment's position is still known; the first's is not.
        assert_eq!(m.map_at(wrong_at).unwrap().root(), m.commitments()[1].recomputed.as_ref().unwrap().0);
        assert!(m.map_at(at).is_none() || at >= wrong_at);
        // Only commitments came since the last good one's position.
        assert_eq!(m.uncommitted(h.entries.len() as u64), 0);
        check_reload(&h, || Box::<Completeness>::default());
    }

    #[test]
    fn the_journal_keeps_only_what_a_commitment_to_come_may_need() {
        let mut h = History::default();
        let n = UP_TO_LAG_MAX + 10_000;
        for i in 0..n {
            h.push(
                &format!("learner/47-{}", i % 50),
                "portfolio.achievement_revoked",
                json!({"achievement_id": "a", "reason": "r"}),
            );
        }
        let mut m = Completeness::default();
        h.fold(&mut m);
        assert!(m.journal.len() as u64 <= UP_TO_LAG_MAX + 4096, "{}", m.journal.len());
        assert!(m.map_at(5_000).is_none(), "beyond the lag a commitment is refused by the rules");
        let recent = n - UP_TO_LAG_MAX + 1;
        let mut upto = Completeness::default();
        for e in &h.entries[..recent as usize] {
            upto.apply(&e.fact());
        }
        assert_eq!(m.map_at(recent).unwrap().root(), upto.map().root());
    }
}
