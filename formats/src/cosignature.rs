//! Witness cosignatures of checkpoints (C2SP `tlog-cosignature`, the Ed25519 type 0x04; DESIGN
//! 3.6): a witness's verifier key, finding and checking a note's cosignature lines by the one
//! strict Ed25519 rule, and adding a witness's own line to a note. The ledger's signature is
//! `checkpoint`'s; which witnesses a verifier demands, and how many, is the caller's policy.

use crate::keys::{self, KeyPair};
use sha2::{Digest, Sha256};
use signed_note::{Note, Signature as NoteSignature};

/// The signature type byte of an Ed25519 cosignature (C2SP `tlog-cosignature`).
pub const ED25519_COSIGNATURE: u8 = 0x04;

/// The first line of every signed message, for domain separation.
const HEADER: &str = "cosignature/v1\n";

/// Why a witness verifier key is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WitnessKeyError {
    #[error("a witness key is <name>+<hex key id>+<base64 key>, this one has {0} part(s)")]
    Shape(usize),
    #[error("the witness name {0:?} is empty or holds a space or a +")]
    Name(String),
    #[error("the key id {0:?} is not 8 hex digits")]
    KeyIdSyntax(String),
    #[error("the key is not standard padded base64")]
    Base64,
    #[error("the key is of signature type 0x{0:02x}, an ed25519 cosignature key is of type 0x04")]
    Type(u8),
    #[error("the key is {0} bytes after its type byte, an ed25519 key is 32")]
    Length(usize),
    #[error("the key is no usable ed25519 public key")]
    Point,
    #[error("the key id {given:08x} is not the key's, which is {computed:08x}")]
    KeyId { given: u32, computed: u32 },
}

/// Why a note cannot be read or cosigned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CosignError {
    #[error("malformed signed note: {0}")]
    MalformedNote(String),
    #[error("the witness name {0:?} is not a valid note key name")]
    Name(String),
    #[error("the timestamp {0} exceeds 2^63-1")]
    Timestamp(u64),
}

/// `SHA-256(name || "\n" || 0x04 || public key)[:4]`, big-endian.
pub fn key_id(name: &str, public: &[u8; 32]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([ED25519_COSIGNATURE]);
    h.update(public);
    let d = h.finalize();
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

/// What a witness signs: `"cosignature/v1\ntime <timestamp>\n" || body` (the note's text, with
/// its final newline, without signature lines).
pub fn signed_message(body: &[u8], timestamp: u64) -> Vec<u8> {
    let mut m = format!("{HEADER}time {timestamp}\n").into_bytes();
    m.extend_from_slice(body);
    m
}

/// A witness as a verifier knows it: `<name>+<hex key id>+<base64(0x04 || key)>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WitnessKey {
    pub name: String,
    pub key_id: u32,
    pub public: [u8; 32],
}

impl WitnessKey {
    /// Parses and checks a witness verifier key: three parts, a valid name, 8 hex digits, a
    /// base64 key of type 0x04 and 32 bytes that is a point, and the key id the key's.
    pub fn parse(vkey: &str) -> Result<Self, WitnessKeyError> {
        // The name and the hex id hold no `+`; the base64 key may.
        let parts: Vec<&str> = vkey.splitn(3, '+').collect();
        let [name, id, key] = parts[..] else { return Err(WitnessKeyError::Shape(parts.len())) };
        if !signed_note::is_key_name_valid(name) {
            return Err(WitnessKeyError::Name(name.to_owned()));
        }
        if id.len() != 8 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(WitnessKeyError::KeyIdSyntax(id.to_owned()));
        }
        let given = u32::from_str_radix(id, 16).map_err(|_| WitnessKeyError::KeyIdSyntax(id.to_owned()))?;
        let bytes = keys::b64_decode(key).ok_or(WitnessKeyError::Base64)?;
        let (&ty, pk) = bytes.split_first().ok_or(WitnessKeyError::Length(0))?;
        if ty != ED25519_COSIGNATURE {
            return Err(WitnessKeyError::Type(ty));
        }
        let public: [u8; 32] = pk.try_into().map_err(|_| WitnessKeyError::Length(pk.len()))?;
        keys::verifying_key(&public).map_err(|_| WitnessKeyError::Point)?;
        let computed = key_id(name, &public);
        if computed != given {
            return Err(WitnessKeyError::KeyId { given, computed });
        }
        Ok(Self { name: name.to_owned(), key_id: computed, public })
    }

    /// The verifier key string (the inverse of [`WitnessKey::parse`]).
    pub fn encode(&self) -> String {
        let mut k = vec![ED25519_COSIGNATURE];
        k.extend_from_slice(&self.public);
        format!("{}+{:08x}+{}", self.name, self.key_id, keys::b64(&k))
    }
}

/// One signature line of a note that names a witness (its name and key id), and its verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CosignatureLine {
    /// Index of the witness in the list given.
    pub witness: usize,
    /// The line's timestamp, when it has one (8 bytes at least).
    pub timestamp: Option<u64>,
    /// `Ok` when the cosignature verifies; else why not.
    pub verdict: Result<(), String>,
}

/// Every signature line of `note` that names one of `witnesses` (same name and key id; other
/// lines are ignored, as the spec says), each checked by the strict rule over the note's body.
/// Lines in the order of the note.
pub fn check_cosignatures(note: &[u8], witnesses: &[WitnessKey]) -> Result<Vec<CosignatureLine>, CosignError> {
    let (body, sigs) = note_parts(note)?;
    let mut out = Vec::new();
    for sig in &sigs {
        for (i, w) in witnesses.iter().enumerate() {
            if sig.name() != w.name || sig.id() != w.key_id {
                continue;
            }
            let raw = sig.signature();
            let timestamp = raw.get(..8).map(|t| u64::from_be_bytes(t.try_into().expect("8 bytes")));
            let verdict = check_one(body, w, raw);
            out.push(CosignatureLine { witness: i, timestamp, verdict });
        }
    }
    Ok(out)
}

fn check_one(body: &[u8], w: &WitnessKey, raw: &[u8]) -> Result<(), String> {
    if raw.len() != 8 + 64 {
        return Err(format!(
            "the cosignature is {} bytes after its key id, a timestamp and a signature are 72",
            raw.len()
        ));
    }
    let timestamp = u64::from_be_bytes(raw[..8].try_into().expect("8 bytes"));
    if timestamp > i64::MAX as u64 {
        return Err(format!("its timestamp {timestamp} exceeds 2^63-1"));
    }
    let sig = keys::Signature::from_bytes(&raw[8..].try_into().expect("64 bytes"));
    let key = keys::verifying_key(&w.public).map_err(|e| e.to_string())?;
    keys::verify_strict(&key, &signed_message(body, timestamp), &sig)
        .map_err(|_| format!("the signature over the checkpoint at time {timestamp} does not verify"))
}

/// The signature lines of `note` that are valid cosignatures by one of `witnesses`, the first
/// valid one of each witness, as (index in `witnesses`, the line with its newline), in the order
/// of `witnesses`: what a log keeps of a witness's answer, and what it serves again.
pub fn valid_cosignature_lines(note: &[u8], witnesses: &[WitnessKey]) -> Result<Vec<(usize, String)>, CosignError> {
    let (body, sigs) = note_parts(note)?;
    let mut out: Vec<(usize, String)> = Vec::new();
    for sig in &sigs {
        for (i, w) in witnesses.iter().enumerate() {
            let ours = sig.name() == w.name && sig.id() == w.key_id;
            if ours && !out.iter().any(|(j, _)| *j == i) && check_one(body, w, sig.signature()).is_ok() {
                out.push((i, String::from_utf8(sig.to_bytes()).expect("a note line is UTF-8")));
            }
        }
    }
    out.sort_unstable_by_key(|(i, _)| *i);
    Ok(out)
}

/// The body of a signed note: its text with the final newline, without signature lines (what
/// a cosignature signs).
pub fn note_body(note: &[u8]) -> Result<&[u8], CosignError> {
    Ok(note_parts(note)?.0)
}

/// The note's body (text with its final newline) and its signature lines, parsed as a signed
/// note (the same limits and syntax `checkpoint` applies).
fn note_parts(note: &[u8]) -> Result<(&[u8], Vec<NoteSignature>), CosignError> {
    let parsed = Note::from_bytes(note).map_err(|e| CosignError::MalformedNote(e.to_string()))?;
    let body_len = parsed.text().len();
    // A parsed note is its text, an empty line, then lines `— <name> <base64>\n`.
    let sigs = note[body_len + 1..]
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(NoteSignature::from_bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CosignError::MalformedNote(e.to_string()))?;
    Ok((&note[..body_len], sigs))
}

/// A witness that cosigns: its name and key.
pub struct Witness {
    name: String,
    key: KeyPair,
    id: u32,
}

impl Witness {
    pub fn new(name: &str, key: KeyPair) -> Result<Self, CosignError> {
        if !signed_note::is_key_name_valid(name) {
            return Err(CosignError::Name(name.to_owned()));
        }
        let id = key_id(name, &key.public());
        Ok(Self { name: name.to_owned(), key, id })
    }

    /// What a verifier is given to trust this witness.
    pub fn verifier_key(&self) -> WitnessKey {
        WitnessKey { name: self.name.clone(), key_id: self.id, public: self.key.public() }
    }

    /// The signature line this witness adds to a note of `body` at `timestamp`
    /// (`— <name> base64(key id || timestamp || signature)\n`).
    pub fn cosignature_line(&self, body: &[u8], timestamp: u64) -> Result<String, CosignError> {
        let raw = self.timestamped(body, timestamp)?;
        let line =
            NoteSignature::new(self.name.clone(), self.id, raw).map_err(|_| CosignError::Name(self.name.clone()))?;
        Ok(String::from_utf8(line.to_bytes()).expect("a note line is UTF-8"))
    }

    fn timestamped(&self, body: &[u8], timestamp: u64) -> Result<Vec<u8>, CosignError> {
        if timestamp > i64::MAX as u64 {
            return Err(CosignError::Timestamp(timestamp));
        }
        let mut raw = timestamp.to_be_bytes().to_vec();
        raw.extend_from_slice(&self.key.sign(&signed_message(body, timestamp)).to_bytes());
        Ok(raw)
    }

    /// `note` with this witness's cosignature at `timestamp` appended (a line of this witness
    /// already there is replaced). The body and every other line are kept byte for byte, so
    /// whatever verified the note before still does.
    pub fn cosign(&self, note: &[u8], timestamp: u64) -> Result<Vec<u8>, CosignError> {
        let (body, sigs) = note_parts(note)?;
        let line = self.cosignature_line(body, timestamp)?;
        let mut out = body.to_vec();
        out.push(b'\n');
        for s in sigs.iter().filter(|s| (s.name(), s.id()) != (self.name.as_str(), self.id)) {
            out.extend_from_slice(&s.to_bytes());
        }
        out.extend_from_slice(line.as_bytes());
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::{verify_checkpoint, LedgerSigner, TreeHead};
    use crate::merkle::Hash;
    use signed_note::Signer;

    /// `signed_note`'s signer interface: a witness signing through a `Note` makes the same line.
    struct TimestampedSigner<'a> {
        witness: &'a Witness,
        timestamp: u64,
    }

    impl Signer for TimestampedSigner<'_> {
        fn name(&self) -> &str {
            &self.witness.name
        }
        fn key_id(&self) -> u32 {
            self.witness.id
        }
        fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, signature::Error> {
            self.witness.timestamped(msg, self.timestamp).map_err(|_| signature::Error::new())
        }
    }

    const ORIGIN: &str = "ru-47.edu.example";

    fn ledger_note() -> (Vec<u8>, String) {
        let signer = LedgerSigner::new(ORIGIN, KeyPair::from_seed(&[7; 32]));
        let note = signer.sign(&TreeHead { tree_size: 10370, root_hash: Hash([0xab; 32]) });
        (note, signer.verifier_key())
    }

    fn witness(n: u8) -> Witness {
        Witness::new(&format!("witness{n}.example/w"), KeyPair::from_seed(&[n; 32])).unwrap()
    }

    #[test]
    fn a_witness_key_round_trips_and_every_defect_has_its_error() {
        let w = witness(1).verifier_key();
        let vkey = w.encode();
        assert_eq!(WitnessKey::parse(&vkey), Ok(w.clone()));
        let (name, rest) = vkey.split_once('+').unwrap();
        let (id, key) = rest.split_once('+').unwrap();
        assert_eq!(WitnessKey::parse("a+b"), Err(WitnessKeyError::Shape(2)));
        assert_eq!(WitnessKey::parse(&format!("+{id}+{key}")), Err(WitnessKeyError::Name(String::new())));
        assert_eq!(WitnessKey::parse(&format!("{name}+123+{key}")), Err(WitnessKeyError::KeyIdSyntax("123".into())));
        assert_eq!(WitnessKey::parse(&format!("{name}+{id}+not base64!")), Err(WitnessKeyError::Base64));
        // The ledger's own key (type 0x01) is no witness key.
        let mut k1 = vec![0x01];
        k1.extend_from_slice(&w.public);
        assert_eq!(WitnessKey::parse(&format!("{name}+{id}+{}", keys::b64(&k1))), Err(WitnessKeyError::Type(0x01)));
        assert_eq!(
            WitnessKey::parse(&format!("{name}+{id}+{}", keys::b64(&[4, 1, 2]))),
            Err(WitnessKeyError::Length(2))
        );
        let wrong = format!("{:08x}", w.key_id ^ 1);
        assert_eq!(
            WitnessKey::parse(&format!("{name}+{wrong}+{key}")),
            Err(WitnessKeyError::KeyId { given: w.key_id ^ 1, computed: w.key_id })
        );
        // Another name changes the key id.
        assert!(matches!(WitnessKey::parse(&format!("other.example+{id}+{key}")), Err(WitnessKeyError::KeyId { .. })));
    }

    /// Computed by hand from the spec, independently of `key_id` and `signed_message`.
    #[test]
    fn the_key_id_and_the_signed_message_are_the_specs() {
        let w = witness(2);
        let pk = w.key.public();
        let mut pre = b"witness2.example/w\n\x04".to_vec();
        pre.extend_from_slice(&pk);
        let d = Sha256::digest(&pre);
        assert_eq!(w.verifier_key().key_id.to_be_bytes(), [d[0], d[1], d[2], d[3]]);
        let (note, _) = ledger_note();
        let body = checkpoint_body_of(&note);
        let line = w.cosignature_line(body, 1_679_315_147).unwrap();
        let b64 = line.trim_end().rsplit(' ').next().unwrap();
        let raw = keys::b64_decode(b64).unwrap();
        assert_eq!(raw.len(), 4 + 8 + 64);
        assert_eq!(raw[..4], d[..4]);
        assert_eq!(raw[4..12], 1_679_315_147u64.to_be_bytes());
        let mut msg = b"cosignature/v1\ntime 1679315147\n".to_vec();
        msg.extend_from_slice(b"ru-47.edu.example\n10370\n");
        msg.extend_from_slice(format!("{}\n", keys::b64(&[0xab; 32])).as_bytes());
        let sig = keys::Signature::from_bytes(&raw[12..].try_into().unwrap());
        assert!(w.key.verifying_key().verify_strict(&msg, &sig).is_ok());
    }

    fn checkpoint_body_of(note: &[u8]) -> &[u8] {
        let at = note.windows(2).position(|w| w == b"\n\n").unwrap();
        &note[..=at]
    }

    #[test]
    fn cosigned_notes_keep_the_ledgers_signature_and_each_line_is_judged() {
        let (note, vkey) = ledger_note();
        let (w1, w2, w3) = (witness(1), witness(2), witness(3));
        let keys3 = [w1.verifier_key(), w2.verifier_key(), w3.verifier_key()];
        let cosigned = w2.cosign(&w1.cosign(&note, 100).unwrap(), 200).unwrap();
        assert!(cosigned.starts_with(&note), "the ledger's note is kept byte for byte");
        assert_eq!(verify_checkpoint(&cosigned, &vkey, ORIGIN).unwrap().head.tree_size, 10370);
        let lines = check_cosignatures(&cosigned, &keys3).unwrap();
        assert_eq!(
            lines,
            vec![
                CosignatureLine { witness: 0, timestamp: Some(100), verdict: Ok(()) },
                CosignatureLine { witness: 1, timestamp: Some(200), verdict: Ok(()) },
            ]
        );
        // Cosigning again replaces the witness's line.
        let again = w1.cosign(&cosigned, 300).unwrap();
        let lines = check_cosignatures(&again, &keys3).unwrap();
        assert_eq!(
            lines.iter().map(|l| (l.witness, l.timestamp)).collect::<Vec<_>>(),
            [(1, Some(200)), (0, Some(300))]
        );
        // The signature of one body does not verify over another, nor under another timestamp.
        let other = LedgerSigner::new(ORIGIN, KeyPair::from_seed(&[7; 32]))
            .sign(&TreeHead { tree_size: 10371, root_hash: Hash([0xab; 32]) });
        let line = w3.cosignature_line(checkpoint_body_of(&note), 5).unwrap();
        let mut moved = other.clone();
        moved.extend_from_slice(line.as_bytes());
        let lines = check_cosignatures(&moved, &keys3).unwrap();
        assert_eq!(lines.len(), 1);
        assert!(lines[0].verdict.is_err());
        let mut raw = keys::b64_decode(line.trim_end().rsplit(' ').next().unwrap()).unwrap();
        raw[11] ^= 1; // the timestamp's last byte
        let mut retimed = note.clone();
        retimed.extend_from_slice(format!("— {} {}\n", w3.name, keys::b64(&raw)).as_bytes());
        let lines = check_cosignatures(&retimed, &keys3).unwrap();
        assert_eq!((lines[0].timestamp, lines[0].verdict.is_err()), (Some(4), true));
        // A line too short to hold a timestamp and a signature is judged, not skipped.
        let mut short = note.clone();
        short.extend_from_slice(format!("— {} {}\n", w3.name, keys::b64(&raw[..40])).as_bytes());
        assert!(check_cosignatures(&short, &keys3).unwrap()[0].verdict.as_ref().unwrap_err().contains("36 bytes"));
        // Lines of unknown witnesses, and the ledger's own, are ignored.
        assert_eq!(check_cosignatures(&cosigned, &[w3.verifier_key()]).unwrap(), vec![]);
    }

    #[test]
    fn only_valid_lines_of_given_witnesses_are_kept_one_per_witness_in_their_order() {
        let (note, _) = ledger_note();
        let (w1, w2, w3) = (witness(1), witness(2), witness(3));
        let body = checkpoint_body_of(&note);
        let line = |w: &Witness, t| w.cosignature_line(body, t).unwrap();
        let mut forged = keys::b64_decode(line(&w3, 7).trim_end().rsplit(' ').next().unwrap()).unwrap();
        forged[20] ^= 1;
        let mut all = note.clone();
        for l in [line(&w2, 1), format!("— {} {}\n", w3.name, keys::b64(&forged)), line(&w1, 2), line(&w2, 3)] {
            all.extend_from_slice(l.as_bytes());
        }
        let keys3 = [w1.verifier_key(), w2.verifier_key(), w3.verifier_key()];
        assert_eq!(valid_cosignature_lines(&all, &keys3).unwrap(), vec![(0, line(&w1, 2)), (1, line(&w2, 1))]);
        assert_eq!(note_body(&all).unwrap(), body);
        assert!(valid_cosignature_lines(b"no note", &keys3).is_err());
    }

    #[test]
    fn a_timestamp_beyond_two_to_the_63_is_refused() {
        let (note, _) = ledger_note();
        assert_eq!(witness(1).cosign(&note, 1 << 63), Err(CosignError::Timestamp(1 << 63)));
        let mut raw = vec![0xff; 72];
        raw[..8].copy_from_slice(&(1u64 << 63).to_be_bytes());
        let mut bad = note.clone();
        let w = witness(1);
        let mut line = w.id.to_be_bytes().to_vec();
        line.extend_from_slice(&raw);
        bad.extend_from_slice(format!("— {} {}\n", w.name, keys::b64(&line)).as_bytes());
        let lines = check_cosignatures(&bad, &[w.verifier_key()]).unwrap();
        assert!(lines[0].verdict.as_ref().unwrap_err().contains("2^63-1"), "{lines:?}");
    }

    #[test]
    fn the_signer_interface_signs_the_same_line() {
        let (note, _) = ledger_note();
        let w = witness(4);
        let mut parsed = Note::from_bytes(&note).unwrap();
        parsed.add_sigs(&[&TimestampedSigner { witness: &w, timestamp: 42 }]).unwrap();
        assert_eq!(parsed.to_bytes(), w.cosign(&note, 42).unwrap());
    }

    /// Made in Python from the specs alone (`tests/vectors/zachetka/make-cosigned-checkpoint.py`).
    #[test]
    fn a_note_cosigned_by_an_independent_implementation_verifies() {
        let note = include_bytes!("../../tests/vectors/zachetka/cosigned-checkpoint.note");
        let keys = include_str!("../../tests/vectors/zachetka/cosigned-checkpoint.keys");
        let mut lines = keys.lines();
        let (ledger, witness, time) = (lines.next().unwrap(), lines.next().unwrap(), lines.next().unwrap());
        let checkpoint = verify_checkpoint(note, ledger, "example.org/python-log").unwrap();
        assert_eq!(checkpoint.head.tree_size, 4242);
        let w = WitnessKey::parse(witness).unwrap();
        assert_eq!(w.encode(), witness);
        let time: u64 = time.parse().unwrap();
        assert_eq!(
            check_cosignatures(note, std::slice::from_ref(&w)).unwrap(),
            vec![CosignatureLine { witness: 0, timestamp: Some(time), verdict: Ok(()) }]
        );
        // One bit of the body changed: the cosignature no longer verifies.
        let mut forged = note.to_vec();
        forged[25] ^= 1;
        assert!(check_cosignatures(&forged, &[w]).unwrap()[0].verdict.is_err());
    }
}
