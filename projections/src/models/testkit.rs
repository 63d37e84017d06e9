//! Hand-built histories for the read models' tests: owned entries (seq, stream, type, id, typed
//! event) that lend out `Fact`s, and the checks every model must pass (round trip, two halves
//! with a reload equal the whole).
//! Not a generator of realistic workloads (the benches do that).

use crate::model::{self, Fact, ReadModel};
use crate::vocabulary::{self, Event};
use serde_json::Value;

pub struct Entry {
    pub seq: u64,
    pub stream: String,
    pub event_type: String,
    pub id: String,
    pub event: Event,
    /// `data.migrated_from`, for an import.
    pub imported: Option<vocabulary::MigratedFrom>,
    /// Stands in for the entry's leaf hash: the RFC 9162 leaf hash of the entry's id.
    pub leaf_hash: [u8; 32],
    /// The signer (`did:key:z6MkTeacher` unless pushed with `push_by`) and its `occurred_at`.
    pub author: String,
    pub occurred_at: String,
}

impl Entry {
    pub fn fact(&self) -> Fact<'_> {
        Fact {
            seq: self.seq,
            recorded_at: 1_790_000_000 + self.seq as i64,
            stream: &self.stream,
            event_type: &self.event_type,
            id: &self.id,
            occurred_at: &self.occurred_at,
            occurred_secs: model::occurred_secs(&self.occurred_at),
            author: &self.author,
            event: &self.event,
            imported: self.imported.as_ref(),
            leaf_hash: &self.leaf_hash,
        }
    }
}

/// Entries appended in order, seq dense from 0.
#[derive(Default)]
pub struct History {
    pub entries: Vec<Entry>,
}

impl History {
    /// Appends an event (data as JSON, parsed by the vocabulary) and returns its id, a UUID
    /// made from its seq.
    pub fn push(&mut self, stream: &str, event_type: &str, data: Value) -> String {
        self.push_by("did:key:z6MkTeacher", "2026-11-22T09:10:00Z", stream, event_type, data)
    }

    /// `push`, signed by `author` with `occurred_at`.
    pub fn push_by(&mut self, author: &str, occurred_at: &str, stream: &str, event_type: &str, data: Value) -> String {
        let seq = self.entries.len() as u64;
        let id = format!("00000000-0000-7000-8000-{seq:012x}");
        let event = vocabulary::parse(event_type, data.as_object().expect("data is an object"))
            .expect("a vocabulary type")
            .unwrap_or_else(|e| panic!("{event_type}: {e}"));
        let imported = vocabulary::migrated_from(event_type, data.as_object().expect("data is an object"))
            .unwrap_or_else(|e| panic!("{event_type}: {e}"));
        let leaf_hash = zachetka_formats::merkle::leaf_hash(id.as_bytes()).0;
        self.entries.push(Entry {
            seq,
            stream: stream.into(),
            event_type: event_type.into(),
            id: id.clone(),
            event,
            imported,
            leaf_hash,
            author: author.into(),
            occurred_at: occurred_at.into(),
        });
        id
    }

    pub fn fold(&self, model: &mut dyn ReadModel) {
        for e in &self.entries {
            model.apply(&e.fact());
        }
    }
}

/// A model built from the whole history has the same digest as one built from the first half,
/// encoded, loaded into a fresh model and fed the second half; and `load(encode())` keeps it.
/// `model`'s state loaded into a fresh model as an open from a snapshot loads it: encoded with
/// its lazily loaded values apart, and loaded referring to them (`lazy::load_apart`). Returns
/// the loaded model and the encoded state (bytes, values).
pub fn load_shared<M: ReadModel + Default>(model: &M) -> (M, (Vec<u8>, Vec<u8>)) {
    let (bytes, values) = crate::lazy::encode_apart(|| model.encode());
    let mut loaded = M::default();
    let source: std::sync::Arc<dyn crate::lazy::ValueSource> = std::sync::Arc::new(values.clone());
    crate::lazy::load_apart(source, || loaded.load(&bytes)).expect("a model loads its own bytes");
    (loaded, (bytes, values))
}

pub fn check_reload(history: &History, fresh: impl Fn() -> Box<dyn ReadModel>) {
    let mut whole = fresh();
    history.fold(whole.as_mut());
    for cut in [0, history.entries.len() / 2, history.entries.len()] {
        let mut first = fresh();
        for e in &history.entries[..cut] {
            first.apply(&e.fact());
        }
        let mut second = fresh();
        second.load(&first.encode()).expect("a model loads its own bytes");
        for e in &history.entries[cut..] {
            second.apply(&e.fact());
        }
        assert_eq!(model::digest(second.as_ref()), model::digest(whole.as_ref()), "cut at {cut}");
    }
    let mut again = fresh();
    again.load(&whole.encode()).unwrap();
    assert_eq!(again.encode(), whole.encode());
    let mut trailing = whole.encode();
    trailing.push(0);
    assert!(fresh().load(&trailing).is_err(), "trailing bytes are refused");
}
