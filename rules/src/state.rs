//! Saving and loading the rule state: the canonical bytes of everything `check_and_apply` has
//! recorded (authority chain and domain state), so that opening a ledger loads them from a
//! snapshot and replays only the tail, and an audit compares a state digest from zero against
//! snapshot plus tail.
//! Not the snapshot file (that is `zachetka-snapshots`, which carries these bytes as its `rules`
//! section and checksums them) and not the region config or the key check: the caller supplies
//! both at load, and a state saved under another config is refused.
//!
//! Layout: postcard of `(STATE_FORMAT, Saved)`, fields in declaration order. The state keeps
//! `HashMap`s and `HashSet`s for the hot path; they are written as sequences sorted by key
//! (`sorted_map`, `sorted_set`), and a load refuses keys that are not strictly increasing, so
//! one rule state has exactly one encoding.

use crate::config::RegionConfig;
use crate::time::Days;
use crate::{
    additional, attestation, authority, contingent, digital, enrolment, journal, migration, portfolio, queue, staff,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zachetka_formats::jcs;

/// The version of the saved-state layout. Bump it when any saved type changes shape; a state of
/// another version is refused (`state_format_unsupported`) and the caller replays from the log.
/// 2: grants keep the ledger time of their revocation; queue applications their time of filing,
/// sibling kindergartens, consents and refused offers; territories their enrolments.
/// 3: the contingent (enrolments, classes, leave), staff records, digital records, curricula.
/// 4: a learner's term and year grades and course results and exams by place, with the event
/// that recorded each (and the corrections of course results and exams), instead of the passed
/// courses alone.
/// 5: queue applications keep the birth month and target year instead of one age group (the
/// group is computed per allocation year), an open run its allocation year, an offer its group.
/// 6: the lessons held, by institution and class, day and subject (a mark is given at a lesson).
/// 7: the legacy records imported (a 16-byte digest of system and record id, and the entry that
/// imported it), after the digital records.
/// 8: a learner's results and enrolment history, an institution's lessons and a stream's digital
/// records each as their own byte string, decoded when first needed (`lazy::Lazy`): an open from
/// a snapshot decodes what the entries after it touch.
pub const STATE_FORMAT: u32 = 8;

/// Why saved rule state was not loaded. The caller falls back to a replay from zero: saved state
/// is derived data and never decides what the log holds.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("rule state has format {found}, this build reads format {supported}")]
    FormatUnsupported { found: u32, supported: u32 },
    #[error("rule state was saved for ledger {saved:?}, not {expected:?}")]
    OriginMismatch { saved: String, expected: String },
    #[error("rule state was saved for genesis authority {saved}, not {expected}")]
    AuthorityMismatch { saved: String, expected: String },
    #[error("rule state was saved under another region config (config sha-256 {saved}, this one {expected})")]
    ConfigMismatch { saved: String, expected: String },
    #[error("rule state is malformed")]
    Malformed(#[source] postcard::Error),
    #[error("rule state has {count} bytes after its end")]
    TrailingBytes { count: usize },
}

impl StateError {
    /// A stable snake_case code per reason.
    pub fn code(&self) -> &'static str {
        match self {
            StateError::FormatUnsupported { .. } => "state_format_unsupported",
            StateError::OriginMismatch { .. } => "state_origin_mismatch",
            StateError::AuthorityMismatch { .. } => "state_authority_mismatch",
            StateError::ConfigMismatch { .. } => "state_config_mismatch",
            StateError::Malformed(_) => "state_malformed",
            StateError::TrailingBytes { .. } => "state_trailing_bytes",
        }
    }
}

/// The saved state, borrowed from a live `Rules` for writing.
#[derive(Serialize)]
pub(crate) struct SavedRef<'a> {
    pub config_sha256: [u8; 32],
    pub auth: &'a authority::Authority,
    pub queue: &'a queue::Queues,
    pub first_grade: &'a enrolment::FirstGrade,
    pub journal: &'a journal::Journal,
    pub additional: &'a additional::Additional,
    pub attestation: &'a attestation::Attestations,
    pub portfolio: &'a portfolio::Portfolio,
    pub contingent: &'a contingent::Contingent,
    pub staff: &'a staff::Staff,
    pub digital: &'a digital::Digital,
    pub imports: &'a migration::Imports,
    pub today: Days,
}

/// The saved state as read back; the same fields in the same order as `SavedRef`.
#[derive(Deserialize)]
pub(crate) struct Saved {
    pub config_sha256: [u8; 32],
    pub auth: authority::Authority,
    pub queue: queue::Queues,
    pub first_grade: enrolment::FirstGrade,
    pub journal: journal::Journal,
    pub additional: additional::Additional,
    pub attestation: attestation::Attestations,
    pub portfolio: portfolio::Portfolio,
    pub contingent: contingent::Contingent,
    pub staff: staff::Staff,
    pub digital: digital::Digital,
    pub imports: migration::Imports,
    pub today: Days,
}

/// The canonical bytes of a saved state.
pub(crate) fn encode(saved: &SavedRef) -> Vec<u8> {
    postcard::to_allocvec(&(STATE_FORMAT, saved)).expect("postcard writes rule state to a Vec without error")
}

/// Reads saved state and checks it belongs to this ledger (origin, genesis authority) and config.
pub(crate) fn decode(
    origin: &str,
    authority_did: &str,
    config: &RegionConfig,
    bytes: &[u8],
) -> Result<Saved, StateError> {
    let (format, rest) = postcard::take_from_bytes::<u32>(bytes).map_err(StateError::Malformed)?;
    if format != STATE_FORMAT {
        return Err(StateError::FormatUnsupported { found: format, supported: STATE_FORMAT });
    }
    let (saved, rest) = postcard::take_from_bytes::<Saved>(rest).map_err(StateError::Malformed)?;
    if !rest.is_empty() {
        return Err(StateError::TrailingBytes { count: rest.len() });
    }
    if saved.auth.origin != origin {
        return Err(StateError::OriginMismatch { saved: saved.auth.origin, expected: origin.to_owned() });
    }
    if saved.auth.genesis != authority_did {
        return Err(StateError::AuthorityMismatch { saved: saved.auth.genesis, expected: authority_did.to_owned() });
    }
    let expected = config_digest(config);
    if saved.config_sha256 != expected {
        return Err(StateError::ConfigMismatch { saved: hex(&saved.config_sha256), expected: hex(&expected) });
    }
    Ok(saved)
}

/// SHA-256 of the region config's RFC 8785 canonical JSON, under a domain tag. `validate` does not
/// bound integers, so a config JCS cannot write (an integer beyond ±(2^53-1)) is hashed from its
/// serde_json bytes under another tag instead: both are deterministic (struct fields in
/// declaration order, `BTreeMap`s sorted), and the tags keep the two from ever colliding.
pub(crate) fn config_digest(config: &RegionConfig) -> [u8; 32] {
    let value = serde_json::to_value(config).expect("a region config is plain JSON");
    let mut h = Sha256::new();
    match jcs::to_canonical(&value, jcs::Profile::Entry) {
        Ok(bytes) => {
            h.update(b"zachetka/region-config/jcs\n");
            h.update(&bytes);
        }
        Err(_) => {
            h.update(b"zachetka/region-config/serde-json\n");
            h.update(serde_json::to_vec(config).expect("a region config is plain JSON"));
        }
    }
    h.finalize().into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `#[serde(with = "crate::state::sorted_map")]` for a `HashMap`: written as a sequence of
/// (key, value) sorted by key; read back refusing keys that are not strictly increasing.
pub(crate) mod sorted_map {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::collections::HashMap;
    use std::hash::Hash;

    pub fn serialize<K, V, S>(map: &HashMap<K, V>, s: S) -> Result<S::Ok, S::Error>
    where
        K: Ord + Serialize,
        V: Serialize,
        S: Serializer,
    {
        let mut items: Vec<(&K, &V)> = map.iter().collect();
        items.sort_unstable_by(|a, b| a.0.cmp(b.0));
        s.collect_seq(items)
    }

    pub fn deserialize<'de, K, V, D>(d: D) -> Result<HashMap<K, V>, D::Error>
    where
        K: Ord + Hash + Deserialize<'de>,
        V: Deserialize<'de>,
        D: Deserializer<'de>,
    {
        let items: Vec<(K, V)> = Vec::deserialize(d)?;
        if items.windows(2).any(|w| w[0].0 >= w[1].0) {
            return Err(D::Error::custom("map keys are not in strictly increasing order"));
        }
        Ok(items.into_iter().collect())
    }
}

/// `#[serde(with = "crate::state::sorted_set")]` for a `HashSet`: written as a sorted sequence;
/// read back refusing items that are not strictly increasing.
pub(crate) mod sorted_set {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::collections::HashSet;
    use std::hash::Hash;

    pub fn serialize<T, S>(set: &HashSet<T>, s: S) -> Result<S::Ok, S::Error>
    where
        T: Ord + Serialize,
        S: Serializer,
    {
        let mut items: Vec<&T> = set.iter().collect();
        items.sort_unstable();
        s.collect_seq(items)
    }

    pub fn deserialize<'de, T, D>(d: D) -> Result<HashSet<T>, D::Error>
    where
        T: Ord + Hash + Deserialize<'de>,
        D: Deserializer<'de>,
    {
        let items: Vec<T> = Vec::deserialize(d)?;
        if items.windows(2).any(|w| w[0] >= w[1]) {
            return Err(D::Error::custom("set items are not in strictly increasing order"));
        }
        Ok(items.into_iter().collect())
    }
}
