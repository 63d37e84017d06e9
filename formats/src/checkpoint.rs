//! Checkpoints: C2SP tlog-checkpoint bodies signed as C2SP signed notes with the ledger's
//! Ed25519 key, byte-compatible with Go's sumdb/note (DESIGN 3.3). Signing and verifying notes
//! is Cloudflare's `signed_note`; this module binds it to our origin and key. Cosignatures of
//! witnesses (C2SP tlog-cosignature) are kept in the note untouched here and checked by
//! `cosignature`. Not the place for trees.

use crate::keys::KeyPair;
use crate::merkle::{Hash, HashB64};
use signed_note::{Note, Signer, StandardVerifier, VerifierList};

/// A checkpoint body: what the ledger signs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TreeHead {
    pub tree_size: u64,
    pub root_hash: Hash,
}

/// A checkpoint that verified under a verifier key.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedCheckpoint {
    pub origin: String,
    pub head: TreeHead,
    /// The note as it was given (with every signature, cosignatures included).
    pub note: Vec<u8>,
}

/// Why a checkpoint note is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    #[error("malformed signed note: {0}")]
    MalformedNote(String),
    #[error("no valid signature by {0}")]
    Unverified(String),
    #[error("malformed checkpoint body")]
    MalformedBody,
    #[error("checkpoint origin {got:?} is not the ledger's {want:?}")]
    WrongOrigin { got: String, want: String },
    #[error("malformed verifier key: {0}")]
    MalformedVerifierKey(String),
}

/// The Ed25519 public key inside a verifier key `<name>+<hex key id>+<base64(0x01 || key)>`
/// (the key id is not checked here: `verify_checkpoint` does that), e.g. to name the ledger key
/// as a `did:key` (`keys::did_from_public`).
pub fn public_key_of_verifier_key(vkey: &str) -> Option<[u8; 32]> {
    // The name and the hex id hold no `+`; the base64 key may.
    let key = vkey.splitn(3, '+').nth(2)?;
    let bytes = crate::keys::b64_decode(key)?;
    match bytes.split_first() {
        Some((0x01, pk)) => pk.try_into().ok(),
        _ => None,
    }
}

/// The ledger's note signer: key name = the ledger's origin.
pub struct LedgerSigner {
    name: String,
    key: KeyPair,
    id: u32,
}

impl LedgerSigner {
    pub fn new(origin: &str, key: KeyPair) -> Self {
        let mut pk = vec![0x01];
        pk.extend_from_slice(&key.public());
        let id = signed_note::key_id(origin, &pk);
        Self { name: origin.to_owned(), key, id }
    }

    /// `<name>+<hex key id>+<base64(0x01 || public key)>`.
    pub fn verifier_key(&self) -> String {
        signed_note::new_ed25519_verifier_key(&self.name, &self.key.verifying_key())
    }

    /// Signs the checkpoint of `head`; returns the whole note.
    pub fn sign(&self, head: &TreeHead) -> Vec<u8> {
        let body = checkpoint_body(&self.name, head);
        let mut note = Note::new(body.as_bytes(), &[]).expect("checkpoint body is a valid note text");
        note.add_sigs(&[self]).expect("ledger key name is a valid note key name");
        note.to_bytes()
    }
}

impl Signer for LedgerSigner {
    fn name(&self) -> &str {
        &self.name
    }
    fn key_id(&self) -> u32 {
        self.id
    }
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, signature::Error> {
        Ok(self.key.sign(msg).to_bytes().to_vec())
    }
}

/// `<origin>\n<tree size>\n<base64 root hash>\n`.
pub fn checkpoint_body(origin: &str, head: &TreeHead) -> String {
    format!("{origin}\n{}\n{}\n", head.tree_size, head.root_hash.to_b64())
}

/// A note verifier for an Ed25519 verifier key that applies our one acceptance rule
/// (`verify_strict`), where `signed_note`'s standard verifier uses the permissive one.
struct StrictNoteVerifier {
    name: String,
    id: u32,
    key: ed25519_dalek::VerifyingKey,
}

impl StrictNoteVerifier {
    fn new(vkey: &str) -> Result<Self, CheckpointError> {
        let bad = |e: String| CheckpointError::MalformedVerifierKey(e);
        // The standard parser checks the syntax and the key id; we keep its name and id.
        let standard = StandardVerifier::new(vkey).map_err(|e| bad(e.to_string()))?;
        let (name, id) = (signed_note::Verifier::name(&standard).to_owned(), signed_note::Verifier::key_id(&standard));
        // <name>+<id>+<base64 key>: names hold no '+', base64 may.
        let key64 = vkey.splitn(3, '+').nth(2).ok_or_else(|| bad("no key".into()))?;
        let key = crate::keys::b64_decode(key64).ok_or_else(|| bad("key is not base64".into()))?;
        let public: [u8; 32] =
            key.get(1..).and_then(|k| k.try_into().ok()).ok_or_else(|| bad("not an Ed25519 key".into()))?;
        let key = crate::keys::verifying_key(&public).map_err(|e| bad(e.to_string()))?;
        Ok(Self { name, id, key })
    }
}

impl signed_note::Verifier for StrictNoteVerifier {
    fn name(&self) -> &str {
        &self.name
    }
    fn key_id(&self) -> u32 {
        self.id
    }
    fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        let Ok(sig) = <[u8; 64]>::try_from(sig) else { return false };
        crate::keys::verify_strict(&self.key, msg, &ed25519_dalek::Signature::from_bytes(&sig)).is_ok()
    }
}

/// Verifies a checkpoint note with `vkey` (strict Ed25519) and checks its origin. Signatures by
/// other keys (witness cosignatures) are left in the note and ignored here
/// (`cosignature::check_cosignatures` judges those a caller asks for).
pub fn verify_checkpoint(note: &[u8], vkey: &str, origin: &str) -> Result<VerifiedCheckpoint, CheckpointError> {
    let verifier = StrictNoteVerifier::new(vkey)?;
    let name = verifier.name.clone();
    let parsed = Note::from_bytes(note).map_err(|e| CheckpointError::MalformedNote(e.to_string()))?;
    let list = VerifierList::new(vec![Box::new(verifier)]);
    parsed.verify(&list).map_err(|_| CheckpointError::Unverified(name))?;
    let body = tlog_tiles::Checkpoint::from_bytes(parsed.text()).map_err(|_| CheckpointError::MalformedBody)?;
    if body.origin() != origin {
        return Err(CheckpointError::WrongOrigin { got: body.origin().to_owned(), want: origin.to_owned() });
    }
    Ok(VerifiedCheckpoint {
        origin: body.origin().to_owned(),
        head: TreeHead { tree_size: body.size(), root_hash: *body.hash() },
        note: note.to_vec(),
    })
}

/// Reads origin and tree head from a note without verifying it (for reports on bad notes).
pub fn parse_unverified(note: &[u8]) -> Option<(String, TreeHead)> {
    let parsed = Note::from_bytes(note).ok()?;
    let body = tlog_tiles::Checkpoint::from_bytes(parsed.text()).ok()?;
    Some((body.origin().to_owned(), TreeHead { tree_size: body.size(), root_hash: *body.hash() }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_public_key_is_read_back_from_any_verifier_key() {
        // Many seeds, so base64 keys with `+` and `/` in them are among them.
        let mut plus = 0;
        for i in 0..64u8 {
            let key = KeyPair::from_seed(&[i; 32]);
            let vkey = LedgerSigner::new("ru-47.edu.example", key.clone()).verifier_key();
            plus += usize::from(vkey.matches('+').count() > 2);
            assert_eq!(public_key_of_verifier_key(&vkey), Some(key.public()), "{vkey}");
        }
        assert!(plus > 0, "some key's base64 holds a +");
        assert_eq!(public_key_of_verifier_key("name+01020304"), None);
        assert_eq!(public_key_of_verifier_key("name+01020304+AgAA"), None);
    }
}
