//! The completeness commitment format (DESIGN 3.7, README "Completeness commitments"): a
//! learner's value (a count and a digest chaining the leaf hash of every entry that concerns
//! them, in log order), the Merkle map from learner ids to values (an RFC 9162 tree over leaves
//! sorted by the SHA-256 of the learner id), its proofs of a learner's value or absence, and the
//! verification a record verifier calls. Pure: no log, no store.
//! Not which entries concern a learner (`models::concerns`), not the fold that keeps the values
//! up to date (`models::completeness`), and not the ledger that writes commitments.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zachetka_formats::merkle::{self, Hash, HashB64, MemoryTree};

/// The event type of a commitment (stream [`STREAM`], author the ledger key as `did:key`).
pub const EVENT_TYPE: &str = "ledger.completeness_committed";
/// The one stream commitments are written to (so they chain among themselves).
pub const STREAM: &str = "completeness";
/// Domain separation of the per-learner chain.
pub const CHAIN_DOMAIN: &[u8] = b"zachetka/completeness/v1\n";
/// How far behind its own position a commitment may commit (`seq - up_to`): the rules refuse
/// more, so a fold needs to remember only this many entries' changes to recompute any
/// commitment still to come. Far above the ledger's own lag (its queue holds at most ~33,000
/// events), and the read side does not commit while it lags by a quarter of it.
pub const UP_TO_LAG_MAX: u64 = 1 << 18;
/// Most neighbours' or path hashes a map proof may carry (a map of 2^64 leaves needs 64).
pub const PROOF_HASHES_MAX: usize = 64;

/// One learner's value: how many entries concern them, and the chain of their leaf hashes.
/// `d_0` is 32 zero bytes; `d' = SHA-256("zachetka/completeness/v1\n" || d || leaf_hash)`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LearnerValue {
    pub count: u64,
    pub digest: [u8; 32],
}

impl LearnerValue {
    /// The value of a learner no entry concerns.
    pub const EMPTY: LearnerValue = LearnerValue { count: 0, digest: [0; 32] };

    /// The value after one more entry, with leaf hash `leaf_hash`, concerning the learner.
    pub fn chain(&self, leaf_hash: &[u8; 32]) -> LearnerValue {
        let mut h = Sha256::new();
        h.update(CHAIN_DOMAIN);
        h.update(self.digest);
        h.update(leaf_hash);
        LearnerValue { count: self.count + 1, digest: h.finalize().into() }
    }

    /// The value of a learner whose entries have these leaf hashes, in log order.
    pub fn of_leaves<'a>(leaves: impl IntoIterator<Item = &'a [u8; 32]>) -> LearnerValue {
        leaves.into_iter().fold(LearnerValue::EMPTY, |v, l| v.chain(l))
    }
}

/// A map key: SHA-256 of the learner id's UTF-8 bytes.
pub fn key_hash(learner: &str) -> [u8; 32] {
    Sha256::digest(learner.as_bytes()).into()
}

/// A map leaf hash: `SHA-256(0x00 || key_hash || count as 8 bytes big-endian || digest)`, the
/// RFC 9162 leaf hash of the 72-byte leaf `key_hash || count || digest`.
pub fn map_leaf_hash(key_hash: &[u8; 32], value: &LearnerValue) -> [u8; 32] {
    let mut data = [0u8; 72];
    data[..32].copy_from_slice(key_hash);
    data[32..40].copy_from_slice(&value.count.to_be_bytes());
    data[40..].copy_from_slice(&value.digest);
    merkle::leaf_hash(&data).0
}

/// The map at one position: every learner with at least one entry, sorted by key hash.
#[derive(Clone, Default)]
pub struct Map {
    /// (key hash, value), strictly ascending by key hash.
    leaves: Vec<([u8; 32], LearnerValue)>,
    tree: MemoryTree,
}

impl Map {
    /// The map of these learners' values (learners with count 0 are left out; a learner id
    /// given twice keeps its last value).
    pub fn from_values<'a>(values: impl IntoIterator<Item = (&'a str, LearnerValue)>) -> Map {
        let mut leaves: Vec<([u8; 32], LearnerValue)> =
            values.into_iter().filter(|(_, v)| v.count > 0).map(|(l, v)| (key_hash(l), v)).collect();
        leaves.sort_by_key(|l| l.0);
        leaves.dedup_by(|later, earlier| {
            let same = later.0 == earlier.0;
            if same {
                earlier.1 = later.1;
            }
            same
        });
        let mut tree = MemoryTree::default();
        for (k, v) in &leaves {
            tree.push(Hash(map_leaf_hash(k, v)));
        }
        Map { leaves, tree }
    }

    /// How many learners the map holds (`learners` of the commitment).
    pub fn len(&self) -> u64 {
        self.leaves.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.leaves.is_empty()
    }

    /// The RFC 9162 root over the leaves (SHA-256 of nothing for the empty map).
    pub fn root(&self) -> [u8; 32] {
        self.tree.root().0
    }

    /// A learner's value in the map (`LearnerValue::EMPTY` when absent).
    pub fn value(&self, learner: &str) -> LearnerValue {
        let k = key_hash(learner);
        match self.leaves.binary_search_by(|(lk, _)| lk.cmp(&k)) {
            Ok(i) => self.leaves[i].1,
            Err(_) => LearnerValue::EMPTY,
        }
    }

    fn path(&self, i: usize) -> Vec<String> {
        let proof = merkle::prove_inclusion(i as u64, self.len(), &self.tree).expect("the map holds every hash");
        merkle::hashes_to_b64(&proof)
    }

    fn neighbour(&self, i: usize) -> Neighbour {
        let (k, v) = self.leaves[i];
        Neighbour {
            leaf_index: i as u64,
            key_hash: merkle::Hash(k).to_b64(),
            value: ValueJson::from(v),
            hashes: self.path(i),
        }
    }

    /// The learner's value and the proof of it against [`Map::root`]: an inclusion proof when
    /// the map holds them, else the neighbours either side of where their key would sit.
    pub fn prove(&self, learner: &str) -> (LearnerValue, MapProof) {
        let k = key_hash(learner);
        let map_size = self.len();
        match self.leaves.binary_search_by(|(lk, _)| lk.cmp(&k)) {
            Ok(i) => (
                self.leaves[i].1,
                MapProof {
                    map_size,
                    present: Some(Inclusion { leaf_index: i as u64, hashes: self.path(i) }),
                    absent: None,
                },
            ),
            Err(i) => {
                let left = (i > 0).then(|| self.neighbour(i - 1));
                let right = (i < self.leaves.len()).then(|| self.neighbour(i));
                (LearnerValue::EMPTY, MapProof { map_size, present: None, absent: Some(Absence { left, right }) })
            }
        }
    }
}

/// A value as JSON: `{"count": n, "digest": "<base64>"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValueJson {
    pub count: u64,
    pub digest: String,
}

impl From<LearnerValue> for ValueJson {
    fn from(v: LearnerValue) -> Self {
        ValueJson { count: v.count, digest: merkle::Hash(v.digest).to_b64() }
    }
}

impl ValueJson {
    pub fn decode(&self) -> Result<LearnerValue, MapProofError> {
        Ok(LearnerValue { count: self.count, digest: hash32(&self.digest)? })
    }
}

/// A map proof (JSON): exactly one of `present` and `absent`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MapProof {
    /// How many leaves the map has (the commitment's `learners`).
    pub map_size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub present: Option<Inclusion>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub absent: Option<Absence>,
}

/// The learner's leaf is leaf `leaf_index`; `hashes` its RFC 9162 inclusion proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Inclusion {
    pub leaf_index: u64,
    pub hashes: Vec<String>,
}

/// The learner is in no leaf: the leaves either side of where their key hash would sit
/// (`left` null when it would be first, `right` null when last; both null for the empty map).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Absence {
    pub left: Option<Neighbour>,
    pub right: Option<Neighbour>,
}

/// Another learner's leaf, by key hash, with its inclusion proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Neighbour {
    pub leaf_index: u64,
    pub key_hash: String,
    pub value: ValueJson,
    pub hashes: Vec<String>,
}

/// Why a map proof does not verify. Codes are stable (`code()`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MapProofError {
    #[error("the proof must hold exactly one of present and absent")]
    Shape,
    #[error("a hash is not 32 bytes of standard base64: {0:?}")]
    MalformedHash(String),
    #[error("more than {PROOF_HASHES_MAX} hashes in one path")]
    TooLong,
    #[error("the inclusion proof of leaf {leaf_index} does not verify against the map root")]
    Inclusion { leaf_index: u64 },
    #[error("the neighbours do not enclose the learner's key (order or adjacency)")]
    NotAdjacent,
    #[error("an absent learner's value must be count 0 and a zero digest")]
    AbsentValueNotEmpty,
}

impl MapProofError {
    pub fn code(&self) -> &'static str {
        match self {
            MapProofError::Shape | MapProofError::MalformedHash(_) | MapProofError::TooLong => "map_proof_malformed",
            _ => "map_proof_invalid",
        }
    }
}

fn hash32(s: &str) -> Result<[u8; 32], MapProofError> {
    Hash::from_b64(s).map(|h| h.0).ok_or_else(|| MapProofError::MalformedHash(s.chars().take(60).collect()))
}

fn check_path(
    map_root: &[u8; 32],
    map_size: u64,
    leaf_index: u64,
    leaf: [u8; 32],
    hashes: &[String],
) -> Result<(), MapProofError> {
    if hashes.len() > PROOF_HASHES_MAX {
        return Err(MapProofError::TooLong);
    }
    let path = hashes.iter().map(|h| hash32(h).map(Hash)).collect::<Result<Vec<_>, _>>()?;
    merkle::verify_inclusion(leaf_index, map_size, Hash(leaf), &path, Hash(*map_root))
        .map_err(|_| MapProofError::Inclusion { leaf_index })
}

/// Checks that `value` is `learner`'s value in the map whose root is `map_root` (a
/// commitment's `map_root`). For a learner the map does not hold, `value` must be
/// `LearnerValue::EMPTY` and the proof's neighbours must be adjacent leaves whose key hashes
/// enclose the learner's (or the map's first or last leaf, or the map empty).
pub fn verify_map_proof(
    map_root: &[u8; 32],
    learner: &str,
    value: &LearnerValue,
    proof: &MapProof,
) -> Result<(), MapProofError> {
    let k = key_hash(learner);
    match (&proof.present, &proof.absent) {
        (Some(inc), None) => {
            check_path(map_root, proof.map_size, inc.leaf_index, map_leaf_hash(&k, value), &inc.hashes)
        }
        (None, Some(abs)) => {
            if *value != LearnerValue::EMPTY {
                return Err(MapProofError::AbsentValueNotEmpty);
            }
            let mut check = |n: &Neighbour| -> Result<([u8; 32], u64), MapProofError> {
                let nk = hash32(&n.key_hash)?;
                let nv = n.value.decode()?;
                check_path(map_root, proof.map_size, n.leaf_index, map_leaf_hash(&nk, &nv), &n.hashes)?;
                Ok((nk, n.leaf_index))
            };
            let left = abs.left.as_ref().map(&mut check).transpose()?;
            let right = abs.right.as_ref().map(&mut check).transpose()?;
            let ok = match (left, right) {
                (None, None) => proof.map_size == 0 && *map_root == merkle::EMPTY_ROOT.0,
                (Some((lk, li)), None) => lk < k && li + 1 == proof.map_size,
                (None, Some((rk, ri))) => k < rk && ri == 0,
                (Some((lk, li)), Some((rk, ri))) => lk < k && k < rk && li + 1 == ri,
            };
            if ok {
                Ok(())
            } else {
                Err(MapProofError::NotAdjacent)
            }
        }
        _ => Err(MapProofError::Shape),
    }
}

/// The data of a commitment event: `{"v":1,"up_to":P,"map_root":"<base64>","learners":n}`,
/// meaning "the map of every entry with seq < P".
pub fn event_data(up_to: u64, map_root: &[u8; 32], learners: u64) -> serde_json::Value {
    serde_json::json!({"v": 1, "up_to": up_to, "map_root": merkle::Hash(*map_root).to_b64(), "learners": learners})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(i: u8) -> [u8; 32] {
        merkle::leaf_hash(&[i]).0
    }

    #[test]
    fn every_learner_present_or_absent_proves_and_a_changed_value_does_not() {
        for n in [0usize, 1, 2, 3, 5, 8, 13] {
            let learners: Vec<String> = (0..n).map(|i| format!("47-{i}")).collect();
            let values: Vec<(&str, LearnerValue)> = learners
                .iter()
                .enumerate()
                .map(|(i, l)| (l.as_str(), LearnerValue::of_leaves((0..=i as u8).map(leaf).collect::<Vec<_>>().iter())))
                .collect();
            let map = Map::from_values(values.iter().copied());
            assert_eq!(map.len(), n as u64);
            let root = map.root();
            for (l, v) in &values {
                let (got, proof) = map.prove(l);
                assert_eq!(got, *v);
                verify_map_proof(&root, l, v, &proof).unwrap();
                let wrong = LearnerValue { count: v.count - 1, ..*v };
                assert!(verify_map_proof(&root, l, &wrong, &proof).is_err());
                // Claiming absence for a present learner cannot be proved: no two adjacent
                // leaves enclose its key.
                let dropped = v.chain(&leaf(99));
                assert!(verify_map_proof(&root, l, &dropped, &proof).is_err());
            }
            for absent in ["47-x", "nobody", "47-99"] {
                let (got, proof) = map.prove(absent);
                assert_eq!(got, LearnerValue::EMPTY);
                verify_map_proof(&root, absent, &got, &proof).unwrap();
                assert!(verify_map_proof(&root, absent, &LearnerValue::EMPTY.chain(&leaf(1)), &proof).is_err());
            }
            // A present learner's proof cannot pass for another learner.
            if n > 1 {
                let (v, proof) = map.prove(&learners[0]);
                assert!(verify_map_proof(&root, &learners[1], &v, &proof).is_err());
            }
        }
    }

    #[test]
    fn absence_with_non_adjacent_neighbours_is_refused() {
        let learners: Vec<String> = (0..6).map(|i| format!("47-{i}")).collect();
        let map = Map::from_values(learners.iter().map(|l| (l.as_str(), LearnerValue::EMPTY.chain(&leaf(1)))));
        let root = map.root();
        // Hide a present learner by citing the leaves two apart around it.
        let k = key_hash(&learners[2]);
        let i = map.leaves.iter().position(|(lk, _)| *lk == k).unwrap();
        let left = (i > 0).then(|| map.neighbour(i - 1));
        let right = (i + 1 < map.leaves.len()).then(|| map.neighbour(i + 1));
        let proof = MapProof { map_size: map.len(), present: None, absent: Some(Absence { left, right }) };
        assert!(verify_map_proof(&root, &learners[2], &LearnerValue::EMPTY, &proof).is_err());
    }
}
