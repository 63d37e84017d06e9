//! The bundle's JSON shape (FORMAT.md sections 1 and 2) with its limits applied while parsing,
//! and the per-item decoding both the verifier and the tests use. Not the checks themselves
//! (`verify`) and not which entries go in (`export`).

use serde::de::{Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use zachetka_formats::keys;
use zachetka_formats::merkle::{Hash, HashB64};

/// `format` of every bundle.
pub const FORMAT: &str = "zachetka-record";
/// The one version this crate writes and reads.
pub const VERSION: u64 = 1;
/// The largest bundle file (FORMAT.md section 1): about 40,000 fully disclosed entries.
pub const BUNDLE_BYTES_MAX: usize = 64 << 20;
/// Most items in `entries` plus `authority`.
pub const ITEMS_MAX: usize = 200_000;
/// Most hashes in one inclusion proof (a tree of 2^64 leaves needs 64).
pub const PROOF_HASHES_MAX: usize = 64;
/// The largest checkpoint note (the body and a few dozen witness cosignatures).
pub const NOTE_BYTES_MAX: usize = 16 << 10;

/// What the exporter was asked to disclose: informative, never trusted by a verifier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DisclosureNote {
    pub only: Option<Vec<String>>,
}

/// A learner record bundle (FORMAT.md section 1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bundle {
    pub format: String,
    pub version: u64,
    pub origin: String,
    pub verifier_key: String,
    pub learner: String,
    /// The signed checkpoint note, byte for byte.
    pub checkpoint: String,
    pub disclosure: DisclosureNote,
    #[serde(deserialize_with = "bounded_items")]
    pub entries: Vec<Item>,
    #[serde(deserialize_with = "bounded_items")]
    pub authority: Vec<Item>,
    /// The learner's value in a completeness commitment (DESIGN 3.7; FORMAT.md section 6);
    /// `null` or absent when the ledger had committed nothing below the checkpoint.
    #[serde(default)]
    pub completeness: Option<CompletenessMember>,
}

/// The `completeness` member (FORMAT.md section 6): the latest completeness commitment below
/// the checkpoint, as a disclosed item with its inclusion proof in the bundle's checkpoint, the
/// position it covers, the learner's value and the map proof of that value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompletenessMember {
    /// The commitment entry (`ledger.completeness_committed` on stream `completeness`), disclosed.
    pub commitment: Item,
    /// `P`: the commitment covers every entry with seq < `P` (its `data.up_to`).
    pub up_to: u64,
    /// The learner's value at `P`: `{"count", "digest"}`.
    pub value: zachetka_projections::completeness::ValueJson,
    /// The map proof of `value` against the commitment's `map_root`. Kept as JSON here and
    /// read by the verifier, so that a malformed proof is `map_proof_malformed`, not a bundle
    /// that cannot be read at all.
    pub map_proof: serde_json::Value,
}

/// One entry of the bundle: disclosed (`entry`) or withheld (`leaf_hash`), with its inclusion
/// proof in the bundle's checkpoint (FORMAT.md section 2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Item {
    pub seq: u64,
    /// Base64 of the canonical entry bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry: Option<String>,
    /// Base64 of the leaf hash of a withheld entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leaf_hash: Option<String>,
    #[serde(deserialize_with = "bounded_proof")]
    pub proof: Vec<String>,
}

/// The marker of a count limit in a serde error, so `parse` can name it `bundle_too_many_entries`.
const TOO_MANY: &str = "too many items:";

/// A JSON array of at most `max` elements, refused at element `max + 1` (nothing beyond it is
/// parsed or allocated).
struct Bounded<T> {
    max: usize,
    what: &'static str,
    _t: std::marker::PhantomData<T>,
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for Bounded<T> {
    type Value = Vec<T>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "an array of at most {} {}", self.max, self.what)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(x) = seq.next_element()? {
            if out.len() == self.max {
                return Err(serde::de::Error::custom(format!("{TOO_MANY} more than {} {}", self.max, self.what)));
            }
            out.push(x);
        }
        Ok(out)
    }
}

fn bounded_items<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Item>, D::Error> {
    d.deserialize_seq(Bounded { max: ITEMS_MAX, what: "items", _t: std::marker::PhantomData })
}

fn bounded_proof<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    d.deserialize_seq(Bounded { max: PROOF_HASHES_MAX, what: "proof hashes", _t: std::marker::PhantomData })
}

/// Why bytes are not a bundle this version reads: the code, and what is wrong with them (a
/// limit, or where the JSON is not a bundle's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub code: &'static str,
    pub message: String,
}

impl Bundle {
    /// Parses a bundle file, applying the size limit before parsing and the count limits while
    /// parsing. Checks the shape only (not `format`, hashes or proofs).
    pub fn parse(bytes: &[u8]) -> Result<Bundle, ParseError> {
        if bytes.len() > BUNDLE_BYTES_MAX {
            return Err(ParseError {
                code: "bundle_too_large",
                message: format!("the bundle is {} bytes, the limit is {BUNDLE_BYTES_MAX}", bytes.len()),
            });
        }
        let b: Bundle = serde_json::from_slice(bytes).map_err(|e| {
            let message = e.to_string();
            let code = if message.contains(TOO_MANY) && !message.contains("proof hashes") {
                "bundle_too_many_entries"
            } else {
                "bundle_malformed"
            };
            ParseError { code, message }
        })?;
        if b.entries.len() + b.authority.len() > ITEMS_MAX {
            return Err(ParseError {
                code: "bundle_too_many_entries",
                message: format!(
                    "the bundle holds {} items, the limit is {ITEMS_MAX}",
                    b.entries.len() + b.authority.len()
                ),
            });
        }
        Ok(b)
    }

    /// The bundle as JSON bytes (the exporter's output).
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a bundle serializes")
    }

    /// The C2SP `tlog-proof@v1` text of the item at `seq` (FORMAT.md section 2), for generic
    /// tlog tools; `None` if the bundle holds no such item.
    pub fn tlog_proof(&self, seq: u64) -> Option<String> {
        let item = self.entries.iter().chain(&self.authority).find(|i| i.seq == seq)?;
        let mut out = format!("c2sp.org/tlog-proof@v1\nindex {seq}\n");
        for h in &item.proof {
            out.push_str(h);
            out.push('\n');
        }
        out.push('\n');
        out.push_str(&self.checkpoint);
        Some(out)
    }
}

/// An item's content, decoded.
#[derive(Debug, Clone)]
pub enum Content {
    Disclosed(Vec<u8>),
    Withheld,
}

/// An item decoded: its leaf hash (computed for a disclosed one) and proof hashes.
#[derive(Debug, Clone)]
pub struct Decoded {
    pub seq: u64,
    pub content: Content,
    pub leaf: Hash,
    pub proof: Vec<Hash>,
}

impl Item {
    /// Decodes base64, checks lengths and computes the leaf hash of a disclosed entry;
    /// `Err` is a `bundle_malformed` message.
    pub fn decode(&self) -> Result<Decoded, String> {
        let proof = self
            .proof
            .iter()
            .map(|h| Hash::from_b64(h).ok_or_else(|| format!("proof hash {h:?} is not base64 of 32 bytes")))
            .collect::<Result<Vec<_>, _>>()?;
        let (content, leaf) = match (&self.entry, &self.leaf_hash) {
            (Some(e), None) => {
                let bytes = keys::b64_decode(e).ok_or("entry is not standard padded base64")?;
                if bytes.len() > zachetka_formats::event::ENTRY_BYTES_MAX {
                    return Err(format!(
                        "entry is {} bytes, the limit is {}",
                        bytes.len(),
                        zachetka_formats::event::ENTRY_BYTES_MAX
                    ));
                }
                let leaf = zachetka_formats::event::leaf_hash(&bytes);
                (Content::Disclosed(bytes), leaf)
            }
            (None, Some(h)) => (Content::Withheld, Hash::from_b64(h).ok_or("leaf_hash is not base64 of 32 bytes")?),
            _ => return Err("an item has exactly one of entry and leaf_hash".into()),
        };
        Ok(Decoded { seq: self.seq, content, leaf, proof })
    }

    /// A disclosed item.
    pub fn disclosed(seq: u64, entry: &[u8], proof: &[Hash]) -> Item {
        Item { seq, entry: Some(keys::b64(entry)), leaf_hash: None, proof: proof.iter().map(HashB64::to_b64).collect() }
    }

    /// A withheld item.
    pub fn withheld(seq: u64, leaf: &Hash, proof: &[Hash]) -> Item {
        Item { seq, entry: None, leaf_hash: Some(leaf.to_b64()), proof: proof.iter().map(HashB64::to_b64).collect() }
    }
}
