//! A value of loaded state that is decoded when it is first needed, not when its snapshot is
//! read: opening a ledger from a snapshot then costs what the entries after it touch, not every
//! learner's diary and profile in the region (issue [read]: an open that stays flat as the log
//! grows). The value keeps its canonical bytes until then, and writes them back unchanged, so a
//! snapshot of a value no entry touched is a copy of bytes, and the bytes two builds compare by
//! digest are the same whether a value was decoded or not.
//! A value is decoded at most once: on its first read (`get`, through a shared reference, as a
//! view or a rule check reads it) or its first change (`get_mut`), and kept decoded.
//!
//! Encoding: the value's postcard bytes as one serde byte string (postcard: a varint length, then
//! the bytes), so a reader can step over the value without decoding it.

use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use std::cell::RefCell;
use std::fmt;
use std::sync::{Arc, OnceLock};

/// A value held decoded or as its canonical postcard bytes. While it holds bytes the value is
/// unchanged since it was read: a read (`get`) decodes it once and keeps both; a change
/// (`get_mut`) drops the bytes.
#[derive(Clone)]
pub struct Lazy<V> {
    bytes: Bytes,
    value: OnceLock<V>,
}

/// Where a value's bytes are: nowhere (built here, or changed since it was read), a copy of its
/// own, or a range of the snapshot buffer it was loaded from (no copy: the buffer is shared by
/// every value of the load, and lives while one of them is still encoded).
#[derive(Clone)]
enum Bytes {
    None,
    Own(Box<[u8]>),
    Shared(Arc<Vec<u8>>, std::ops::Range<usize>),
}

impl Bytes {
    fn get(&self) -> Option<&[u8]> {
        match self {
            Bytes::None => None,
            Bytes::Own(b) => Some(b),
            Bytes::Shared(buf, range) => Some(&buf[range.clone()]),
        }
    }
}

thread_local! {
    /// The buffer that bytes being deserialized on this thread borrow from (`with_source`).
    static SOURCE: RefCell<Option<Arc<Vec<u8>>>> = const { RefCell::new(None) };
}

/// Runs `load` (a `postcard` decode of state borrowing from `source`) so that every `Lazy` it
/// reads keeps a range of `source` instead of a copy of its bytes. Without it (or for bytes that
/// are not in `source`) a `Lazy` copies its bytes.
pub fn with_source<R>(source: &Arc<Vec<u8>>, load: impl FnOnce() -> R) -> R {
    struct Reset(Option<Arc<Vec<u8>>>);
    impl Drop for Reset {
        fn drop(&mut self) {
            SOURCE.with(|s| *s.borrow_mut() = self.0.take());
        }
    }
    let _reset = Reset(SOURCE.with(|s| s.borrow_mut().replace(source.clone())));
    load()
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
        self.value.get_or_init(|| decode(self.bytes.get().expect("a lazy value without bytes is decoded")))
    }

    /// The value to change, decoded first if it was not.
    pub fn get_mut(&mut self) -> &mut V {
        if let Some(bytes) = self.bytes.get() {
            if self.value.get().is_none() {
                let _ = self.value.set(decode(bytes));
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

/// Decodes bytes that came from `postcard` of a `V`, in a snapshot section whose SHA-256 was
/// checked when the file was read and whose model or state version is this build's: bytes that
/// do not decode are a defect of the writer, not damage, and stop the process rather than answer
/// from state that is not the log's.
fn decode<V: DeserializeOwned>(bytes: &[u8]) -> V {
    match postcard::from_bytes(bytes) {
        Ok(v) => v,
        Err(e) => panic!(
            "a lazily loaded value of {} does not decode ({e}): its snapshot section verified, so its writer wrote it wrong",
            std::any::type_name::<V>()
        ),
    }
}

impl<V: Serialize> Serialize for Lazy<V> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match (self.bytes.get(), self.value.get()) {
            (Some(b), _) => s.serialize_bytes(b),
            (None, Some(v)) => s.serialize_bytes(&postcard::to_stdvec(v).map_err(serde::ser::Error::custom)?),
            (None, None) => unreachable!("a lazy value holds its bytes or its value"),
        }
    }
}

impl<'de, V> Deserialize<'de> for Lazy<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> Visitor<'de> for Visit {
            type Value = Bytes;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a value's encoded bytes")
            }

            fn visit_borrowed_bytes<E: de::Error>(self, v: &'de [u8]) -> Result<Bytes, E> {
                let shared = SOURCE.with(|s| {
                    let buf = s.borrow().clone()?;
                    // Where `v` lies in the buffer, if it does (addresses compared as numbers).
                    let start = (v.as_ptr() as usize).checked_sub(buf.as_ptr() as usize)?;
                    let end = start.checked_add(v.len()).filter(|end| *end <= buf.len())?;
                    Some(Bytes::Shared(buf, start..end))
                });
                Ok(shared.unwrap_or_else(|| Bytes::Own(v.into())))
            }

            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Bytes, E> {
                Ok(Bytes::Own(v.into()))
            }

            fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Bytes, E> {
                Ok(Bytes::Own(v.into_boxed_slice()))
            }
        }
        d.deserialize_bytes(Visit).map(|bytes| Lazy { bytes, value: OnceLock::new() })
    }
}

impl<V: DeserializeOwned + PartialEq> PartialEq for Lazy<V> {
    fn eq(&self, other: &Self) -> bool {
        match (self.bytes.get(), other.bytes.get()) {
            (Some(a), Some(b)) if a == b => true,
            _ => self.get() == other.get(),
        }
    }
}

impl<V: DeserializeOwned + Eq> Eq for Lazy<V> {}

impl<V: fmt::Debug> fmt::Debug for Lazy<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.value.get(), self.bytes.get()) {
            (Some(v), _) => v.fmt(f),
            (None, Some(b)) => write!(f, "Lazy({} bytes)", b.len()),
            (None, None) => f.write_str("Lazy(?)"),
        }
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
    fn a_value_loaded_under_its_source_keeps_a_range_of_it_not_a_copy() {
        let ready: Vec<Lazy<Row>> = vec![row("a").into(), row("b").into()];
        let source = Arc::new(postcard::to_stdvec(&ready).unwrap());
        let loaded: Vec<Lazy<Row>> = with_source(&source, || postcard::from_bytes(&source).unwrap());
        assert_eq!(Arc::strong_count(&source), 3, "each value shares the buffer");
        assert!(loaded.iter().all(|l| matches!(l.bytes, Bytes::Shared(..))));
        assert_eq!(loaded, ready);
        assert_eq!(postcard::to_stdvec(&loaded).unwrap(), *source);
        // Outside `with_source`, and for bytes of another buffer, a value copies its bytes.
        let copied: Vec<Lazy<Row>> = postcard::from_bytes(&source).unwrap();
        assert!(copied.iter().all(|l| matches!(l.bytes, Bytes::Own(_))));
        let other = source.to_vec();
        let copied: Vec<Lazy<Row>> = with_source(&source, || postcard::from_bytes(&other).unwrap());
        assert!(copied.iter().all(|l| matches!(l.bytes, Bytes::Own(_))));
        drop(loaded);
        assert_eq!(Arc::strong_count(&source), 1);
    }

    #[test]
    fn bytes_of_another_shape_fail_on_use_not_on_load() {
        let bytes = postcard::to_stdvec(&Lazy::from(7u8)).unwrap();
        let loaded: Lazy<Row> = postcard::from_bytes(&bytes).unwrap();
        let caught = std::panic::catch_unwind(|| loaded.get().id.clone());
        assert!(caught.is_err());
    }
}
