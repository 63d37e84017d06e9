//! An old receipt checked offline ([record]: old receipts stay checkable): the receipt an append
//! answered (`{"seq","leaf_hash","stream_version","tree_size"}`), the signed checkpoint of its
//! `tree_size` (`GET /v1/checkpoints/<N>`, served however far the head has moved) and the
//! inclusion proof of its `seq` in that size (`GET /v1/proofs/inclusion`), and optionally the
//! entry's bytes. Not a bundle's verification (`verify`): a receipt says an entry is in the log,
//! not what a learner's record holds.

use serde::Deserialize;
use zachetka_formats::checkpoint;
use zachetka_formats::merkle::{self, Hash, HashB64, InclusionProof};

/// What a receipt's check established.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReceiptReport {
    pub origin: String,
    pub seq: u64,
    pub tree_size: u64,
    /// Base64, as in the receipt.
    pub leaf_hash: String,
    /// The checkpoint's root hash, base64.
    pub root_hash: String,
    /// Whether the entry's bytes were given and hash to the receipt's leaf hash.
    pub entry_checked: bool,
}

/// Why a receipt does not check. [`ReceiptError::code`] is stable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptError {
    #[error("the receipt is not a receipt: {0}")]
    ReceiptMalformed(String),
    #[error("the verifier key names no origin: {0}")]
    VerifierKeyMalformed(String),
    #[error("the checkpoint does not verify under the verifier key: {0}")]
    CheckpointInvalid(String),
    #[error(
        "the checkpoint is of tree size {checkpoint}, the receipt's is {receipt}: fetch /v1/checkpoints/{receipt}"
    )]
    CheckpointSizeMismatch { checkpoint: u64, receipt: u64 },
    #[error("the proof is not an inclusion proof: {0}")]
    ProofMalformed(String),
    #[error(
        "the proof is for leaf {leaf_index} in {tree_size} entries, the receipt's entry is {seq} in {receipt_size}"
    )]
    ProofMismatch { leaf_index: u64, tree_size: u64, seq: u64, receipt_size: u64 },
    #[error(
        "the receipt's leaf hash is not entry {seq} of the checkpoint's tree (the proof does not lead to its root)"
    )]
    InclusionInvalid { seq: u64 },
    #[error("the entry's bytes hash to {got}, the receipt says {want}")]
    EntryHashMismatch { got: String, want: String },
}

impl ReceiptError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::ReceiptMalformed(_) => "receipt_malformed",
            Self::VerifierKeyMalformed(_) => "verifier_key_malformed",
            Self::CheckpointInvalid(_) => "checkpoint_invalid",
            Self::CheckpointSizeMismatch { .. } => "checkpoint_size_mismatch",
            Self::ProofMalformed(_) => "proof_malformed",
            Self::ProofMismatch { .. } => "proof_mismatch",
            Self::InclusionInvalid { .. } => "inclusion_invalid",
            Self::EntryHashMismatch { .. } => "entry_hash_mismatch",
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Receipt {
    seq: u64,
    leaf_hash: String,
    /// Required (a receipt is whole) but not checked: the stream is not in the proof.
    #[allow(dead_code)]
    stream_version: u64,
    tree_size: u64,
}

/// Checks `receipt` (its JSON) against `checkpoint_note` (the signed note of the receipt's
/// `tree_size`) under `vkey`, with `proof` (the inclusion proof's JSON) and, if given, the
/// entry's bytes.
pub fn verify_receipt(
    receipt: &[u8],
    checkpoint_note: &[u8],
    proof: &[u8],
    entry: Option<&[u8]>,
    vkey: &str,
) -> Result<ReceiptReport, ReceiptError> {
    let r: Receipt = serde_json::from_slice(receipt).map_err(|e| ReceiptError::ReceiptMalformed(e.to_string()))?;
    let leaf = Hash::from_b64(&r.leaf_hash)
        .ok_or_else(|| ReceiptError::ReceiptMalformed(format!("leaf_hash {:?} is not a base64 hash", r.leaf_hash)))?;
    if r.seq >= r.tree_size {
        return Err(ReceiptError::ReceiptMalformed(format!(
            "seq {} is not below tree_size {} (a receipt's tree holds its entry)",
            r.seq, r.tree_size
        )));
    }
    let origin = vkey
        .split_once('+')
        .map(|(name, _)| name)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ReceiptError::VerifierKeyMalformed(vkey.to_owned()))?;
    let cp = checkpoint::verify_checkpoint(checkpoint_note, vkey, origin)
        .map_err(|e| ReceiptError::CheckpointInvalid(e.to_string()))?;
    if cp.head.tree_size != r.tree_size {
        return Err(ReceiptError::CheckpointSizeMismatch { checkpoint: cp.head.tree_size, receipt: r.tree_size });
    }
    let p: InclusionProof = serde_json::from_slice(proof).map_err(|e| ReceiptError::ProofMalformed(e.to_string()))?;
    if (p.leaf_index, p.tree_size) != (r.seq, r.tree_size) {
        return Err(ReceiptError::ProofMismatch {
            leaf_index: p.leaf_index,
            tree_size: p.tree_size,
            seq: r.seq,
            receipt_size: r.tree_size,
        });
    }
    if p.hashes.len() > 64 {
        return Err(ReceiptError::ProofMalformed(format!("{} hashes (at most 64)", p.hashes.len())));
    }
    let hashes = merkle::hashes_from_b64(&p.hashes).map_err(|e| ReceiptError::ProofMalformed(e.to_string()))?;
    merkle::verify_inclusion(r.seq, r.tree_size, leaf, &hashes, cp.head.root_hash)
        .map_err(|_| ReceiptError::InclusionInvalid { seq: r.seq })?;
    if let Some(bytes) = entry {
        let got = merkle::leaf_hash(bytes);
        if got != leaf {
            return Err(ReceiptError::EntryHashMismatch { got: got.to_b64(), want: r.leaf_hash });
        }
    }
    Ok(ReceiptReport {
        origin: cp.origin,
        seq: r.seq,
        tree_size: r.tree_size,
        leaf_hash: r.leaf_hash,
        root_hash: cp.head.root_hash.to_b64(),
        entry_checked: entry.is_some(),
    })
}
