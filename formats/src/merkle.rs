//! The Merkle log (RFC 9162 section 2.1): leaf and node hashes, roots, inclusion and consistency
//! proofs and their verification, the proof JSON of DESIGN 3.5, and tiles (C2SP tlog-tiles).
//! The tree arithmetic is Cloudflare's `tlog_tiles` (a port of Go's sumdb/tlog, the reference
//! our checkpoints must match); this module adds the edge cases RFC 9162 and transparency-dev
//! decide, and the stored-hash layout both backends share. Not the place for storage.

use serde::{Deserialize, Serialize};
use tlog_tiles::{check_record, check_tree, prove_record, prove_tree, stored_hashes_for_record_hash, tree_hash};
pub use tlog_tiles::{Hash, HashReader, Tile};

/// Tile height of C2SP tlog-tiles (256 hashes a tile).
pub const TILE_HEIGHT: u8 = 8;
/// Entries or hashes in a full tile.
pub const TILE_WIDTH: u64 = 1 << TILE_HEIGHT;

/// Base64 for hashes (the one encoding our formats use).
pub trait HashB64: Sized {
    fn from_b64(s: &str) -> Option<Self>;
    fn to_b64(&self) -> String;
}

impl HashB64 for Hash {
    fn from_b64(s: &str) -> Option<Self> {
        // 32 bytes are 44 characters of padded base64: decoded in place (a bundle holds tens of
        // thousands of proof hashes), by the same strict engine as `keys::b64_decode`.
        let mut out = [0u8; 36];
        (s.len() == 44 && crate::keys::b64_decode_slice(s, &mut out) == Some(32))
            .then(|| Hash(out[..32].try_into().expect("32 bytes")))
    }
    fn to_b64(&self) -> String {
        crate::keys::b64(&self.0)
    }
}

/// SHA-256(0x00 || data).
pub fn leaf_hash(data: &[u8]) -> Hash {
    tlog_tiles::record_hash(data)
}

/// SHA-256(0x01 || left || right).
pub fn node_hash(left: Hash, right: Hash) -> Hash {
    tlog_tiles::node_hash(left, right)
}

/// The root of the empty tree, SHA-256("").
pub const EMPTY_ROOT: Hash = tlog_tiles::EMPTY_HASH;

/// Why a proof was not produced or does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("leaf_index {leaf_index} is not below tree_size {tree_size}")]
    LeafOutOfRange { leaf_index: u64, tree_size: u64 },
    #[error("tree sizes {first} and {second}: need 0 < first <= second")]
    SizesOutOfRange { first: u64, second: u64 },
    #[error("tree_size {tree_size} is beyond the log's size {log_size}")]
    BeyondLog { tree_size: u64, log_size: u64 },
    #[error("proof does not verify")]
    Invalid,
    #[error("hash {0:?} is not 32 bytes of standard base64")]
    MalformedHash(String),
    #[error("couldn't read stored hashes: {0}")]
    Storage(String),
}

fn storage(e: tlog_tiles::Error) -> ProofError {
    ProofError::Storage(e.to_string())
}

/// The stored hashes to write when leaf `n` with hash `leaf` joins the tree; reads at most
/// log2(n) earlier hashes from `r`. Stored at `stored_hash_index(0, n)` onwards.
pub fn stored_hashes_for(n: u64, leaf: Hash, r: &impl HashReader) -> Result<Vec<Hash>, ProofError> {
    stored_hashes_for_record_hash(n, leaf, r).map_err(storage)
}

/// Index of the first stored hash of leaf `n` (dense: leaf n's hashes follow leaf n-1's).
pub fn stored_hash_index_of_leaf(n: u64) -> u64 {
    tlog_tiles::stored_hash_index(0, n)
}

/// How many stored hashes a tree of `n` leaves has.
pub fn stored_hash_count(n: u64) -> u64 {
    tlog_tiles::stored_hash_count(n)
}

/// Root hash of the first `tree_size` leaves.
pub fn root(tree_size: u64, r: &impl HashReader) -> Result<Hash, ProofError> {
    tree_hash(tree_size, r).map_err(storage)
}

/// The inclusion proof of leaf `leaf_index` in the tree of `tree_size` leaves.
pub fn prove_inclusion(leaf_index: u64, tree_size: u64, r: &impl HashReader) -> Result<Vec<Hash>, ProofError> {
    if leaf_index >= tree_size {
        return Err(ProofError::LeafOutOfRange { leaf_index, tree_size });
    }
    prove_record(tree_size, leaf_index, r).map_err(storage)
}

/// Inclusion proofs of many leaves of one tree (a record bundle's), each exactly
/// [`prove_inclusion`]'s, with each stored hash read once per proof in one call and the
/// partial subtrees of the tree's right edge, which the proofs of every leaf left of them
/// share, hashed once.
pub struct Prover<'a, R: HashReader> {
    reader: &'a R,
    tree_size: u64,
    /// The hash of `[lo, hi)` for partial subtrees (`hi` the tree size).
    edge: std::cell::RefCell<std::collections::HashMap<(u64, u64), Hash>>,
}

impl<'a, R: HashReader> Prover<'a, R> {
    pub fn new(reader: &'a R, tree_size: u64) -> Self {
        Self { reader, tree_size, edge: Default::default() }
    }

    /// Reads, in one call, every stored hash the proofs of `leaves` need (a caching reader
    /// then answers the proofs without reading again).
    pub fn prefetch(&self, leaves: &[u64]) -> Result<(), ProofError> {
        let mut indexes = Vec::new();
        for &leaf in leaves.iter().filter(|l| **l < self.tree_size) {
            for (lo, hi) in self.siblings(leaf) {
                match complete(lo, hi) {
                    Some(index) => indexes.push(index),
                    None => indexes.extend(edge_parts(lo, hi)),
                }
            }
        }
        indexes.sort_unstable();
        indexes.dedup();
        self.reader.read_hashes(&indexes).map(drop).map_err(storage)
    }

    /// PATH(m, D[0:n]) of RFC 9162 2.1.3.1 as the subtrees `[lo, hi)` whose hashes it holds,
    /// bottom up.
    fn siblings(&self, leaf_index: u64) -> Vec<(u64, u64)> {
        // Top down: the subtree not taken at each split.
        let mut siblings: Vec<(u64, u64)> = Vec::with_capacity(64);
        let (mut lo, mut hi) = (0, self.tree_size);
        while hi - lo > 1 {
            let k = largest_power_of_two_below(hi - lo);
            if leaf_index < lo + k {
                siblings.push((lo + k, hi));
                hi = lo + k;
            } else {
                siblings.push((lo, lo + k));
                lo += k;
            }
        }
        siblings.reverse();
        siblings
    }

    /// The RFC 9162 inclusion proof (2.1.3.1) of `leaf_index`, bottom up.
    pub fn prove(&self, leaf_index: u64) -> Result<Vec<Hash>, ProofError> {
        let n = self.tree_size;
        if leaf_index >= n {
            return Err(ProofError::LeafOutOfRange { leaf_index, tree_size: n });
        }
        let siblings = self.siblings(leaf_index);
        // Complete subtrees are stored hashes; a partial one (the right edge) is hashed from
        // the complete subtrees it splits into, largest first.
        let mut indexes = Vec::with_capacity(siblings.len());
        let mut edge = self.edge.borrow_mut();
        for &(lo, hi) in &siblings {
            match complete(lo, hi) {
                Some(index) => indexes.push(index),
                None if edge.contains_key(&(lo, hi)) => {}
                None => {
                    let parts = edge_parts(lo, hi);
                    let hashes = self.reader.read_hashes(&parts).map_err(storage)?;
                    let (last, rest) = hashes.split_last().ok_or(ProofError::Storage("an empty subtree".into()))?;
                    let h = rest.iter().rev().fold(*last, |right, left| node_hash(*left, right));
                    edge.insert((lo, hi), h);
                }
            }
        }
        let mut stored = self.reader.read_hashes(&indexes).map_err(storage)?.into_iter();
        siblings
            .iter()
            .map(|&(lo, hi)| match complete(lo, hi) {
                Some(_) => stored.next().ok_or(ProofError::Storage("a stored hash is missing".into())),
                None => Ok(edge[&(lo, hi)]),
            })
            .collect()
    }
}

/// The largest power of two strictly below `n` (n >= 2).
fn largest_power_of_two_below(n: u64) -> u64 {
    1 << (63 - (n - 1).leading_zeros())
}

/// The stored hash index of `[lo, hi)` when it is a complete, aligned subtree.
fn complete(lo: u64, hi: u64) -> Option<u64> {
    let size = hi - lo;
    (size.is_power_of_two() && lo.is_multiple_of(size))
        .then(|| tlog_tiles::stored_hash_index(size.trailing_zeros() as u8, lo >> size.trailing_zeros()))
}

/// The stored hash indexes of the complete subtrees `[lo, hi)` splits into, largest first.
fn edge_parts(mut lo: u64, hi: u64) -> Vec<u64> {
    let mut out = Vec::new();
    while lo < hi {
        // The largest aligned power of two that fits.
        let mut k = 1u64 << (63 - (hi - lo).leading_zeros());
        while !lo.is_multiple_of(k) {
            k >>= 1;
        }
        out.push(tlog_tiles::stored_hash_index(k.trailing_zeros() as u8, lo / k));
        lo += k;
    }
    out
}

/// The consistency proof from `first` to `second` leaves (empty when they are equal).
pub fn prove_consistency(first: u64, second: u64, r: &impl HashReader) -> Result<Vec<Hash>, ProofError> {
    if first == 0 || first > second {
        return Err(ProofError::SizesOutOfRange { first, second });
    }
    if first == second {
        return Ok(vec![]);
    }
    prove_tree(second, first, r).map_err(storage)
}

/// Checks that `leaf` is leaf `leaf_index` of the tree of `tree_size` leaves with `root`.
pub fn verify_inclusion(
    leaf_index: u64,
    tree_size: u64,
    leaf: Hash,
    proof: &[Hash],
    root: Hash,
) -> Result<(), ProofError> {
    if leaf_index >= tree_size {
        return Err(ProofError::LeafOutOfRange { leaf_index, tree_size });
    }
    check_record(&proof.to_vec(), tree_size, root, leaf_index, leaf).map_err(|_| ProofError::Invalid)
}

/// Checks that the tree of `second` leaves with `second_root` extends the tree of `first`
/// leaves with `first_root`. A proof from the empty tree is refused as meaningless (RFC 9162
/// 2.1.4.2 starts from 0 < first), as transparency-dev does.
pub fn verify_consistency(
    first: u64,
    second: u64,
    first_root: Hash,
    second_root: Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if first == 0 || first > second {
        return Err(ProofError::SizesOutOfRange { first, second });
    }
    if first == second {
        return if proof.is_empty() && first_root == second_root { Ok(()) } else { Err(ProofError::Invalid) };
    }
    check_tree(&proof.to_vec(), second, second_root, first, first_root).map_err(|_| ProofError::Invalid)
}

/// `GET /v1/proofs/inclusion` (DESIGN 3.5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InclusionProof {
    pub leaf_index: u64,
    pub tree_size: u64,
    pub hashes: Vec<String>,
}

/// `GET /v1/proofs/consistency` (DESIGN 3.5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsistencyProof {
    pub first: u64,
    pub second: u64,
    pub hashes: Vec<String>,
}

/// Encodes proof hashes for JSON.
pub fn hashes_to_b64(hashes: &[Hash]) -> Vec<String> {
    hashes.iter().map(HashB64::to_b64).collect()
}

/// Decodes proof hashes from JSON.
pub fn hashes_from_b64(hashes: &[String]) -> Result<Vec<Hash>, ProofError> {
    hashes.iter().map(|s| Hash::from_b64(s).ok_or_else(|| ProofError::MalformedHash(s.clone()))).collect()
}

/// Stored hashes held in memory, dense by stored-hash index: the audit's independent
/// recomputation and the tests' reference tree.
#[derive(Default, Clone)]
pub struct MemoryTree {
    hashes: Vec<Hash>,
    size: u64,
}

impl HashReader for MemoryTree {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog_tiles::Error> {
        indexes
            .iter()
            .map(|i| self.hashes.get(*i as usize).copied().ok_or(tlog_tiles::Error::IndexesNotInTree))
            .collect()
    }
}

impl MemoryTree {
    /// Appends a leaf hash; returns the stored hashes it added.
    pub fn push(&mut self, leaf: Hash) -> &[Hash] {
        let new = stored_hashes_for_record_hash(self.size, leaf, self).expect("memory tree holds every earlier hash");
        let start = self.hashes.len();
        debug_assert_eq!(start as u64, stored_hash_index_of_leaf(self.size));
        self.hashes.extend(new);
        self.size += 1;
        &self.hashes[start..]
    }
    pub fn size(&self) -> u64 {
        self.size
    }
    pub fn root(&self) -> Hash {
        root(self.size, self).expect("memory tree holds every hash")
    }
    pub fn root_at(&self, tree_size: u64) -> Hash {
        assert!(tree_size <= self.size);
        root(tree_size, self).expect("memory tree holds every hash")
    }
}

/// Where a tile request points, parsed from `/tile/<L>/<N>[.p/<W>]` or
/// `/tile/entries/<N>[.p/<W>]` (the path after `/tile/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TileRequest {
    Hashes { level: u8, index: u64, width: u64 },
    Entries { index: u64, width: u64 },
}

/// Parses the part of a tile path after `tile/`, strictly per C2SP tlog-tiles: `N` in groups of
/// three digits with `x` prefixes, no leading `x000`, `.p/W` only with 1 <= W < 256.
pub fn parse_tile_path(rest: &str) -> Option<TileRequest> {
    let (kind, n_path) = rest.split_once('/')?;
    let (n_path, width) = match n_path.split_once(".p/") {
        Some((n, w)) => {
            if w.is_empty() || w.len() > 3 || !w.bytes().all(|c| c.is_ascii_digit()) || w.starts_with('0') {
                return None;
            }
            let w: u64 = w.parse().ok()?;
            if !(1..TILE_WIDTH).contains(&w) {
                return None;
            }
            (n, w)
        }
        None => (n_path, TILE_WIDTH),
    };
    let parts: Vec<&str> = n_path.split('/').collect();
    let mut index: u64 = 0;
    for (i, p) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        let digits = if last { *p } else { p.strip_prefix('x')? };
        if digits.len() != 3 || !digits.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        if i == 0 && !last && digits == "000" {
            return None;
        }
        index = index.checked_mul(1000)?.checked_add(digits.parse::<u64>().ok()?)?;
    }
    if kind == "entries" {
        return Some(TileRequest::Entries { index, width });
    }
    if kind.len() > 2 || !kind.bytes().all(|c| c.is_ascii_digit()) || (kind.len() > 1 && kind.starts_with('0')) {
        return None;
    }
    let level: u8 = kind.parse().ok()?;
    if level > 63 / TILE_HEIGHT {
        return None;
    }
    Some(TileRequest::Hashes { level, index, width })
}

/// The tile path of `N` (`x001/x234/067`) as C2SP tlog-tiles encodes it.
pub fn tile_index_path(mut n: u64) -> String {
    let mut s = format!("{:03}", n % 1000);
    while n >= 1000 {
        n /= 1000;
        s = format!("x{:03}/{s}", n % 1000);
    }
    s
}

/// The bytes of a hash tile of `tree_size`, or `None` when the tile is not (yet) in the tree at
/// that width.
pub fn read_hash_tile(
    level: u8,
    index: u64,
    width: u64,
    tree_size: u64,
    r: &impl HashReader,
) -> Result<Option<Vec<u8>>, ProofError> {
    let shift = u32::from(TILE_HEIGHT) * (u32::from(level) + 1);
    if shift >= 64 {
        return Ok(None);
    }
    // Hashes at this level of the tree cover 2^(8*level) leaves each; the tree has this many.
    let level_len = tree_size >> (u32::from(TILE_HEIGHT) * u32::from(level));
    // An index too large for any tree is a tile that does not exist, not an error.
    let Some(start) = index.checked_mul(TILE_WIDTH) else { return Ok(None) };
    if start.checked_add(width).is_none_or(|end| end > level_len) {
        return Ok(None);
    }
    let tile = Tile::new(TILE_HEIGHT, level, index, width as u32, false);
    tile.read_data(r).map(Some).map_err(storage)
}

#[cfg(test)]
mod tests {

    #[test]
    fn the_prover_gives_every_leaf_the_proof_prove_inclusion_gives() {
        let mut tree = MemoryTree::default();
        for n in 1..=70u64 {
            tree.push(leaf_hash(&n.to_be_bytes()));
            let prover = Prover::new(&tree, n);
            prover.prefetch(&(0..=n).collect::<Vec<_>>()).unwrap();
            for leaf in 0..n {
                assert_eq!(prover.prove(leaf).unwrap(), prove_inclusion(leaf, n, &tree).unwrap(), "leaf {leaf} of {n}");
            }
            assert!(prover.prove(n).is_err());
        }
        // A large tree, a few leaves.
        for n in 71..=1100u64 {
            tree.push(leaf_hash(&n.to_be_bytes()));
        }
        let n = tree.size();
        let prover = Prover::new(&tree, n);
        for leaf in [0, 1, 511, 512, 1000, 1023, 1024, 1099] {
            assert_eq!(prover.prove(leaf).unwrap(), prove_inclusion(leaf, n, &tree).unwrap(), "leaf {leaf} of {n}");
        }
    }

    #[test]
    fn a_hash_is_read_from_exactly_44_characters_of_strict_base64() {
        let h = Hash([0xa5; 32]);
        assert_eq!(Hash::from_b64(&h.to_b64()), Some(h));
        let text = h.to_b64();
        const ALPHABET: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let last = ALPHABET.find(&text[42..43]).unwrap();
        let trailing_bits_set = format!("{}{}=", &text[..42], &ALPHABET[(last | 1)..=(last | 1)]);
        // Other lengths, another alphabet, missing padding, non-zero trailing bits: refused, as
        // `keys::b64_decode` refuses them.
        for bad in [
            &text[..43],
            &format!("{text}A"),
            &text.replace('=', ""),
            &text.replace('p', "-"),
            &trailing_bits_set,
            &crate::keys::b64(&[1; 31]),
            &crate::keys::b64(&[1; 33]),
        ] {
            assert_eq!(Hash::from_b64(bad), None, "{bad}");
            assert!(crate::keys::b64_decode(bad).is_none_or(|b| b.len() != 32), "{bad}");
        }
    }
    use super::*;

    #[test]
    fn tile_paths_parse_strictly() {
        assert_eq!(parse_tile_path("0/000"), Some(TileRequest::Hashes { level: 0, index: 0, width: 256 }));
        assert_eq!(
            parse_tile_path("1/x001/x234/067.p/8"),
            Some(TileRequest::Hashes { level: 1, index: 1_234_067, width: 8 })
        );
        assert_eq!(parse_tile_path("entries/x001/002"), Some(TileRequest::Entries { index: 1002, width: 256 }));
        for bad in
            ["0/0", "0/x000/001", "0/001.p/0", "0/001.p/256", "0/001.p/08", "00/001", "x/001", "0/001/", "entries/1000"]
        {
            assert_eq!(parse_tile_path(bad), None, "{bad}");
        }
        for n in [0u64, 7, 999, 1000, 1_234_067, u64::MAX / 256] {
            let p = tile_index_path(n);
            assert_eq!(
                parse_tile_path(&format!("0/{p}")),
                Some(TileRequest::Hashes { level: 0, index: n, width: 256 }),
                "{p}"
            );
        }
    }
}
