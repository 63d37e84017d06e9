//! A value of loaded state that is decoded when it is first needed, not when its snapshot is
//! read: opening a ledger from a snapshot then costs what the entries after it touch, not every
//! learner's diary and profile in the region (issue [read]: an open that stays flat as the log
//! grows). The value keeps its canonical bytes until then, and writes them back unchanged, so a
//! snapshot of a value no entry touched is a copy of bytes, and the bytes two builds compare by
//! digest are the same whether a value was decoded or not.
//! A value is decoded at most once: on its first read (`get`, through a shared reference, as a
//! view or a rule check reads it) or its first change (`get_mut`), and kept decoded.
//!
//! Two encodings, chosen by the caller of the encode or decode around it:
//! - **inline** (the default, and what digests hash): the value's postcard bytes as one serde
//!   byte string (a varint length, then the bytes);
//! - **apart** (`encode_apart` / `load_apart`, what a snapshot file uses): the value's bytes go to
//!   a separate values area, and the state holds only where they are (two varints: offset and
//!   length in that area). An open then reads the state without reading the values at all; a
//!   value's bytes are read, and checked, by its [`ValueSource`] when it is first needed.
//!
//! Both are canonical: the same state gives the same bytes, whichever values were decoded.

use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use std::cell::RefCell;
use std::fmt;
use std::ops::{Deref, Range};
use std::sync::{Arc, OnceLock};

/// Where the values of state loaded apart are: it reads the bytes at a place in its values area
/// and checks them before handing them out (a snapshot file checks each chunk's SHA-256).
pub trait ValueSource: Send + Sync {
    /// The length of the values area.
    fn len(&self) -> u64;

    /// Whether the values area is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `len` bytes at `at` (within `0..self.len()`), checked; or why they cannot be had,
    /// naming the file and the position (damage, or a failed read).
    fn read(&self, at: u64, len: u64) -> Result<Held, String>;
}

/// Bytes a [`ValueSource`] handed out: a range of a buffer it shares (a chunk it checked and
/// keeps), or a copy (a value that spans chunks).
pub enum Held {
    Shared(Arc<[u8]>, Range<usize>),
    Own(Vec<u8>),
}

impl Deref for Held {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Held::Shared(buf, range) => &buf[range.clone()],
            Held::Own(v) => v,
        }
    }
}

/// A value held decoded or as its canonical postcard bytes. While it holds bytes the value is
/// unchanged since it was read: a read (`get`) decodes it once and keeps both; a change
/// (`get_mut`) drops the bytes.
#[derive(Clone)]
pub struct Lazy<V> {
    bytes: Bytes,
    value: OnceLock<V>,
}

/// Where a value's bytes are: nowhere (built here, or changed since it was read), a copy of its
/// own (loaded inline), or a place in the values area it was loaded apart from.
#[derive(Clone)]
enum Bytes {
    None,
    Own(Box<[u8]>),
    Apart(Arc<dyn ValueSource>, u64, u64),
}

/// A value's bytes as read: borrowed from the value, or held from its source.
enum Raw<'a> {
    Borrowed(&'a [u8]),
    Held(Held),
}

impl Deref for Raw<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Raw::Borrowed(b) => b,
            Raw::Held(h) => h,
        }
    }
}

impl Bytes {
    /// The bytes, if held. A source that cannot give them back stops the process: the state
    /// would otherwise answer from a value it cannot read. (The source has already told its
    /// owner, which takes the snapshot out of use: `zachetka-snapshots`.)
    fn get(&self) -> Option<Raw<'_>> {
        match self {
            Bytes::None => None,
            Bytes::Own(b) => Some(Raw::Borrowed(b)),
            Bytes::Apart(source, at, len) => match source.read(*at, *len) {
                Ok(held) => Some(Raw::Held(held)),
                Err(why) => panic!("a lazily loaded value cannot be read: {why}"),
            },
        }
    }

    fn is_some(&self) -> bool {
        !matches!(self, Bytes::None)
    }
}

thread_local! {
    /// The values area state being decoded on this thread refers to (`load_apart`).
    static SOURCE: RefCell<Option<Arc<dyn ValueSource>>> = const { RefCell::new(None) };
    /// The values area state being encoded on this thread writes to (`encode_apart`).
    static SINK: RefCell<Option<Vec<u8>>> = const { RefCell::new(None) };
}

/// Runs `f` with the thread-local `cell` set to `value`; returns what `f` returned and what the
/// cell held at its end. The cell holds what it held before again afterwards, even if `f` panics.
fn scoped<T: 'static, R>(
    cell: &'static std::thread::LocalKey<RefCell<Option<T>>>,
    value: Option<T>,
    f: impl FnOnce() -> R,
) -> (R, Option<T>) {
    struct Reset<T: 'static> {
        cell: &'static std::thread::LocalKey<RefCell<Option<T>>>,
        before: Option<Option<T>>,
    }
    impl<T: 'static> Drop for Reset<T> {
        fn drop(&mut self) {
            if let Some(before) = self.before.take() {
                self.cell.with(|c| c.replace(before));
            }
        }
    }
    let mut reset = Reset { cell, before: Some(cell.with(|c| c.replace(value))) };
    let r = f();
    let before = reset.before.take().expect("put back once");
    (r, cell.with(|c| c.replace(before)))
}

/// Runs `load` (a `postcard` decode of state encoded by `encode_apart`) so that every `Lazy` it
/// reads refers to its bytes in `source` (the values area `encode_apart` returned beside).
pub fn load_apart<R>(source: Arc<dyn ValueSource>, load: impl FnOnce() -> R) -> R {
    scoped(&SOURCE, Some(source), load).0
}

/// Runs `encode` (a `postcard` encode of state) so that every `Lazy` in it writes its bytes to a
/// values area instead of inline; returns what `encode` returned and the values area.
pub fn encode_apart<R>(encode: impl FnOnce() -> R) -> (R, Vec<u8>) {
    let (r, sink) = scoped(&SINK, Some(Vec::new()), encode);
    (r, sink.expect("the sink is put back"))
}

/// Runs `f` with neither a source nor a sink: a value's own bytes are always inline.
fn inline<R>(f: impl FnOnce() -> R) -> R {
    scoped(&SOURCE, None, || scoped(&SINK, None, f).0).0
}

impl<V: Default> Default for Lazy<V> {
    fn default() -> Self {
        V::default().into()
    }
}

impl<V> From<V> for Lazy<V> {
    fn from(value: V) -> Self {
        Lazy { bytes: Bytes::None, value: OnceLock::from(value) }
    }
}

impl<V: DeserializeOwned> Lazy<V> {
    /// The value, decoded from its bytes on the first call.
    pub fn get(&self) -> &V {
        self.value.get_or_init(|| decode(&self.bytes.get().expect("a lazy value without bytes is decoded")))
    }

    /// The value to change, decoded first if it was not.
    pub fn get_mut(&mut self) -> &mut V {
        if self.bytes.is_some() {
            if self.value.get().is_none() {
                let value = decode(&self.bytes.get().expect("held"));
                let _ = self.value.set(value);
            }
            self.bytes = Bytes::None;
        }
        self.value.get_mut().expect("decoded above or built decoded")
    }

    /// Whether the value is still held as bytes only (for tests of what an open decodes).
    pub fn is_encoded(&self) -> bool {
        self.value.get().is_none()
    }
}

/// Decodes bytes that came from `postcard` of a `V`, in a snapshot whose checksums were checked
/// and whose model or state version is this build's: bytes that do not decode are a defect of
/// the writer, not damage, and stop the process rather than answer from state that is not the
/// log's.
fn decode<V: DeserializeOwned>(bytes: &[u8]) -> V {
    match inline(|| postcard::from_bytes(bytes)) {
        Ok(v) => v,
        Err(e) => panic!(
            "a lazily loaded value of {} does not decode ({e}): its snapshot verified, so its writer wrote it wrong",
            std::any::type_name::<V>()
        ),
    }
}

impl<V: Serialize> Serialize for Lazy<V> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let encoded;
        let raw = self.bytes.get();
        let bytes: &[u8] = match (&raw, self.value.get()) {
            (Some(b), _) => b,
            (None, Some(v)) => {
                encoded = inline(|| postcard::to_stdvec(v)).map_err(serde::ser::Error::custom)?;
                &encoded
            }
            (None, None) => unreachable!("a lazy value holds its bytes or its value"),
        };
        let place = SINK.with(|sink| {
            let mut sink = sink.borrow_mut();
            let sink = sink.as_mut()?;
            let at = sink.len() as u64;
            sink.extend_from_slice(bytes);
            Some((at, bytes.len() as u64))
        });
        match place {
            Some(place) => place.serialize(s),
            None => s.serialize_bytes(bytes),
        }
    }
}

impl<'de, V> Deserialize<'de> for Lazy<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if let Some(source) = SOURCE.with(|s| s.borrow().clone()) {
            let (at, len) = <(u64, u64)>::deserialize(d)?;
            if at.checked_add(len).is_none_or(|end| end > source.len()) {
                return Err(de::Error::custom(format!(
                    "a value at {at} of {len} bytes lies beyond the {} bytes of values",
                    source.len()
                )));
            }
            return Ok(Lazy { bytes: Bytes::Apart(source, at, len), value: OnceLock::new() });
        }
        struct Visit;
        impl<'de> Visitor<'de> for Visit {
            type Value = Box<[u8]>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a value's encoded bytes")
            }

            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Box<[u8]>, E> {
                Ok(v.into())
            }

            fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Box<[u8]>, E> {
                Ok(v.into_boxed_slice())
            }
        }
        d.deserialize_bytes(Visit).map(|b| Lazy { bytes: Bytes::Own(b), value: OnceLock::new() })
    }
}

impl<V: DeserializeOwned + PartialEq> PartialEq for Lazy<V> {
    fn eq(&self, other: &Self) -> bool {
        if let (Bytes::Apart(a, at_a, len_a), Bytes::Apart(b, at_b, len_b)) = (&self.bytes, &other.bytes) {
            if Arc::ptr_eq(a, b) && (at_a, len_a) == (at_b, len_b) {
                return true;
            }
        }
        match (self.bytes.get(), other.bytes.get()) {
            (Some(a), Some(b)) if *a == *b => true,
            _ => self.get() == other.get(),
        }
    }
}

impl<V: DeserializeOwned + Eq> Eq for Lazy<V> {}

impl<V: fmt::Debug> fmt::Debug for Lazy<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.value.get(), &self.bytes) {
            (Some(v), _) => v.fmt(f),
            (None, Bytes::Own(b)) => write!(f, "Lazy({} bytes)", b.len()),
            (None, Bytes::Apart(_, at, len)) => write!(f, "Lazy({len} bytes at {at})"),
            (None, Bytes::None) => f.write_str("Lazy(?)"),
        }
    }
}

/// A values area in memory (tests, and state moved between threads without a file).
impl ValueSource for Vec<u8> {
    fn len(&self) -> u64 {
        self.as_slice().len() as u64
    }

    fn read(&self, at: u64, len: u64) -> Result<Held, String> {
        let (at, len) = (at as usize, len as usize);
        self.get(at..at + len)
            .map(|b| Held::Own(b.to_vec()))
            .ok_or_else(|| format!("{len} bytes at {at}: beyond the values"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    struct Row {
        id: String,
        marks: Vec<u8>,
    }

    fn row(id: &str) -> Row {
        Row { id: id.into(), marks: vec![5, 4, 3] }
    }

    #[test]
    fn a_loaded_value_stays_bytes_until_changed_and_encodes_the_same_either_way() {
        let ready: Vec<Lazy<Row>> = vec![row("a").into(), row("b").into()];
        let bytes = postcard::to_stdvec(&ready).unwrap();
        let mut loaded: Vec<Lazy<Row>> = postcard::from_bytes(&bytes).unwrap();
        assert!(loaded.iter().all(Lazy::is_encoded));
        assert_eq!(*loaded[1].get(), row("b"));
        assert!(!loaded[1].is_encoded(), "a read decodes it once");
        assert_eq!(postcard::to_stdvec(&loaded).unwrap(), bytes, "bytes written back unchanged");
        assert_eq!(loaded, ready);
        loaded[0].get_mut().marks.push(2);
        assert!(!loaded[0].is_encoded());
        assert_ne!(loaded, ready);
        loaded[0].get_mut().marks.pop();
        assert_eq!(postcard::to_stdvec(&loaded).unwrap(), bytes, "decoded and unchanged: the same bytes");
    }

    #[test]
    fn state_encoded_apart_holds_places_and_loads_back_without_reading_the_values() {
        let ready: Vec<Lazy<Row>> = vec![row("a").into(), row("bb").into()];
        let inline_bytes = postcard::to_stdvec(&ready).unwrap();
        let (state, values) = encode_apart(|| postcard::to_stdvec(&ready).unwrap());
        assert_eq!(
            values,
            [postcard::to_stdvec(&row("a")).unwrap(), postcard::to_stdvec(&row("bb")).unwrap()].concat()
        );
        assert!(state.len() < inline_bytes.len(), "the state holds two varints a value");
        // A source that counts its reads: the load reads none, a `get` reads its own value only.
        struct Counted(Vec<u8>, std::sync::atomic::AtomicUsize);
        impl ValueSource for Counted {
            fn len(&self) -> u64 {
                self.0.len() as u64
            }
            fn read(&self, at: u64, len: u64) -> Result<Held, String> {
                self.1.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                self.0.read(at, len)
            }
        }
        let source = Arc::new(Counted(values.clone(), 0.into()));
        let reads = || source.1.load(std::sync::atomic::Ordering::Relaxed);
        let loaded: Vec<Lazy<Row>> = load_apart(source.clone(), || postcard::from_bytes(&state).unwrap());
        assert_eq!(reads(), 0);
        assert_eq!(*loaded[1].get(), row("bb"));
        assert_eq!(reads(), 1);
        assert!(loaded[0].is_encoded());
        // Written apart again: the same state and values; written inline: the inline bytes.
        assert_eq!(encode_apart(|| postcard::to_stdvec(&loaded).unwrap()), (state.clone(), values));
        assert_eq!(postcard::to_stdvec(&loaded).unwrap(), inline_bytes);
        assert_eq!(loaded, ready);
        // Places beyond the values are refused when loaded, not when used.
        let short: Arc<dyn ValueSource> = Arc::new(vec![0u8; 3]);
        assert!(load_apart(short, || postcard::from_bytes::<Vec<Lazy<Row>>>(&state)).is_err());
        // Outside `load_apart` the same bytes are read inline again.
        assert!(postcard::from_bytes::<Vec<Lazy<Row>>>(&inline_bytes).is_ok());
    }

    #[test]
    fn a_value_that_cannot_be_read_or_decoded_fails_on_use_not_on_load() {
        let bytes = postcard::to_stdvec(&Lazy::from(7u8)).unwrap();
        let loaded: Lazy<Row> = postcard::from_bytes(&bytes).unwrap();
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| loaded.get().id.clone()));
        assert!(caught.is_err());
        struct Damaged;
        impl ValueSource for Damaged {
            fn len(&self) -> u64 {
                100
            }
            fn read(&self, at: u64, _: u64) -> Result<Held, String> {
                Err(format!("chunk at {at} damaged"))
            }
        }
        let (state, _) = encode_apart(|| postcard::to_stdvec(&Lazy::from(row("a"))).unwrap());
        let loaded: Lazy<Row> = load_apart(Arc::new(Damaged), || postcard::from_bytes(&state).unwrap());
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| loaded.get().id.clone()));
        let why = caught.unwrap_err();
        assert!(why.downcast_ref::<String>().unwrap().contains("chunk at 0 damaged"));
    }
}
