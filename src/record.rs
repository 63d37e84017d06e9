//! The learner record bundle bound to the ledger (DESIGN 3.4, `record/FORMAT.md`): finds the
//! entries that concern a learner and hands them, the registry, the institutions' registrations
//! they name (curricula, club programmes) and the checkpoint to `zachetka_record::export`. Not the format or the verifier (crate `zachetka-record`, which a
//! university embeds) and not HTTP (`api/record.rs`).
//!
//! Finding the entries fast: the learner's own stream comes from the store's stream index
//! (seqs, then one read per run of consecutive seqs); the entries of other streams that concern
//! them (queue and 1st-grade entries, which `Concerns` places only after folding the whole log)
//! come from the `profiles` read model, which folds `Concerns` already and links each such item
//! to its seq. Both are taken at the tree size the read model has applied, and every proof is
//! against the checkpoint signed at exactly that size. The completeness member is the read
//! side's answer for the latest commitment below that size (`completeness_for`), its entry and
//! proof read from the log like the others.

use crate::ledger::Ledger;
use crate::merkle::{self, Hash, HashReader};
use crate::read::ReadError;
use crate::store::{StoreError, StoreHashes};
use serde_json::Value;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasherDefault;
use zachetka_projections::ViewError;
pub use zachetka_record::{verify, Bundle, Disclosure, Options, OtherCheckpoint, Report};

/// Most entries of one learner a bundle carries (the format's item limit).
const LEARNER_ENTRIES_MAX: u64 = zachetka_record::ITEMS_MAX as u64;

/// Why a bundle could not be exported.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("no record of learner {0} in this ledger")]
    UnknownLearner(String),
    /// The id is not one a learner can have (empty): the caller's error, nothing to retry.
    #[error("not a learner id: {0}")]
    BadLearner(String),
    #[error("learner {learner} has more than {LEARNER_ENTRIES_MAX} entries, more than one bundle carries")]
    TooManyEntries { learner: String },
    #[error("no checkpoint was signed at tree size {0}, where the read models stand")]
    NoCheckpoint(u64),
    #[error("couldn't read the ledger")]
    Store(#[from] StoreError),
    /// The store could not be read while the read models answered or the tree was proven.
    #[error("the read models cannot answer: {0}")]
    Read(String),
    /// The read side has no profiles model (a build without it): no bundle can be made here.
    #[error("no read model {0}")]
    NoModel(String),
    #[error("the registry has more than {LEARNER_ENTRIES_MAX} entries, more than one bundle carries")]
    RegistryTooLong,
    #[error("couldn't build the bundle")]
    Export(#[from] zachetka_record::ExportError),
    #[error("couldn't prove the learner's completeness value")]
    Completeness(#[from] crate::read::completeness::CompletenessError),
    /// A bundle at a cosigned checkpoint was asked of a ledger that asks no witness.
    #[error("no witnesses are configured here, so no checkpoint is cosigned")]
    NoWitnesses,
    /// A bundle at a cosigned checkpoint was asked before any witness cosigned one.
    #[error("no checkpoint has been cosigned by a witness yet")]
    NotYetCosigned,
}

/// Which checkpoint a bundle is proved in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum BundleAt {
    /// The tree size the read models have applied (the freshest), with the cosignatures held
    /// for exactly that size, if any.
    #[default]
    Applied,
    /// The newest tree size the witnesses cosigned: on a ledger written all the time the head
    /// moves on before the witnesses answer, so this is how a verifier demanding cosignatures
    /// gets a bundle it accepts (entries after that size are not in it).
    Cosigned,
}

/// Every seq `view` links to an entry of a stream other than the learner's own (items with a
/// `stream`), wherever the profile keeps them.
fn other_stream_seqs(view: &Value, out: &mut Vec<u64>) {
    match view {
        Value::Object(o) => {
            if let (Some(seq), Some(Value::String(_))) = (o.get("seq").and_then(Value::as_u64), o.get("stream")) {
                out.push(seq);
            }
            o.values().for_each(|v| other_stream_seqs(v, out));
        }
        Value::Array(a) => a.iter().for_each(|v| other_stream_seqs(v, out)),
        _ => {}
    }
}

/// The entries at `seqs` (ascending), each checked against its stored leaf hash
/// ([`crate::store::Store::entries_at`]).
fn read_entries(ledger: &Ledger, seqs: &[u64]) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
    ledger.store().entries_at(seqs)
}

/// The seqs of `stream` below `tree_size`, at most `LEARNER_ENTRIES_MAX`.
fn stream_seqs_below(ledger: &Ledger, stream: &str, tree_size: u64) -> Result<Option<Vec<u64>>, StoreError> {
    let mut seqs = ledger.store().stream_seqs(stream, 0, LEARNER_ENTRIES_MAX + 1)?;
    if seqs.len() as u64 > LEARNER_ENTRIES_MAX {
        return Ok(None);
    }
    seqs.retain(|s| *s < tree_size);
    Ok(Some(seqs))
}

/// Entries of an institution's stream read at once while looking for a registration.
const REGISTRATION_READ: u64 = 64;

/// The registrations (college curricula, club programmes) the learner's entries name
/// (`zachetka_record::authority_wanted`), found on each institution's stream by reading it
/// from its start up to the first entry naming them, a few entries at a time, until each is
/// found: institutions register their programmes before admitting to them, so the search stops
/// early. One the stream does not hold (a record written around the rules) is left out; the
/// verifier then judges the entry by the grant only.
fn find_registrations(
    ledger: &Ledger,
    mut wanted: Vec<zachetka_record::Wanted>,
) -> Result<Vec<(u64, Vec<u8>)>, RecordError> {
    let mut found = Vec::new();
    while let Some(stream) = wanted.first().map(|w| w.stream.clone()) {
        let (mut here, rest): (Vec<_>, Vec<_>) = wanted.into_iter().partition(|w| w.stream == stream);
        wanted = rest;
        let mut version = 0;
        while !here.is_empty() {
            let mut seqs = ledger.store().stream_seqs(&stream, version, REGISTRATION_READ)?;
            let read = seqs.len() as u64;
            let before = here.iter().map(|w| w.before).max().unwrap_or(0);
            seqs.retain(|s| *s < before);
            for (seq, bytes) in read_entries(ledger, &seqs)? {
                let Some((_, ty, program)) = zachetka_record::registration_of(&bytes) else { continue };
                let left = here.len();
                here.retain(|w| !(w.ty == ty && w.program == program && seq < w.before));
                if here.len() < left {
                    found.push((seq, bytes));
                }
            }
            if read < REGISTRATION_READ || (seqs.len() as u64) < read {
                break; // the stream's end, or past every entry naming what is left
            }
            version += read;
        }
    }
    found.sort_unstable_by_key(|(seq, _)| *seq);
    Ok(found)
}

/// The lessons the learner's marks and attendance marks were given at
/// (`zachetka_record::authority_wanted`), found in the class journals (the `journals` view of
/// each class, subject and academic year's lessons, with their dates and seqs), below `tree_size`:
/// for each, the first lesson of that date. One the journals do not show (attendance marked for
/// the day without a subject, a journal not caught up, a mark written around the rules) is left
/// out; the verifier then judges the mark by the grant only.
fn find_lessons(
    ledger: &Ledger,
    wanted: Vec<zachetka_record::LessonWanted>,
    tree_size: u64,
) -> Result<Vec<(u64, Vec<u8>)>, RecordError> {
    use zachetka_projections::models::common::academic_year_of_date;
    let mut journals: BTreeMap<(String, String, String, i64), Vec<String>> = BTreeMap::new();
    for w in wanted {
        let (Some(subject), Some(year)) = (w.subject, academic_year_of_date(&w.date)) else { continue };
        journals.entry((w.institution, w.class, subject, year)).or_default().push(w.date);
    }
    let mut seqs = Vec::new();
    for ((institution, class, subject, year), dates) in journals {
        let year = year.to_string();
        let journal = match ledger.read_side().view("journals", &[&institution, &class, &subject, &year, "lessons"]) {
            Ok(answer) => answer.view.body,
            Err(ReadError::View(_)) => continue,
            Err(ReadError::Store(m)) => return Err(RecordError::Read(m)),
            Err(ReadError::UnknownModel(m)) => return Err(RecordError::NoModel(m)),
        };
        let mut first: HashMap<&str, u64> = HashMap::default();
        for lesson in journal["lessons"].as_array().into_iter().flatten() {
            if let (Some(date), Some(seq)) = (lesson["date"].as_str(), lesson["seq"].as_u64()) {
                let at = first.entry(date).or_insert(seq);
                *at = (*at).min(seq);
            }
        }
        seqs.extend(dates.iter().filter_map(|d| first.get(d.as_str()).copied()).filter(|s| *s < tree_size));
    }
    seqs.sort_unstable();
    seqs.dedup();
    Ok(read_entries(ledger, &seqs)?)
}

/// Entries of a queue stream read at once while looking for an allocation run's start or finish.
const RUN_READ: usize = 64;
/// At most this many entries of a queue stream are read on each side of a decision for its run
/// (a run's offers are a territory's places of one allocation: hundreds, not thousands).
const RUN_SEARCH_MAX: usize = 8192;

/// The allocation runs the learner's offers and transfers were made in
/// (`zachetka_record::authority_wanted`): on the decision's queue stream, the last
/// `queue.allocation_started` below it, and that run's `queue.allocation_finished` after it (if
/// below `tree_size`), read a few entries at a time outward from the decision. A decision made
/// outside any run (a transfer between runs), or a run not found within `RUN_SEARCH_MAX` entries,
/// adds nothing; the verifier then judges it by the grant only.
fn find_runs(
    ledger: &Ledger,
    wanted: Vec<zachetka_record::RunWanted>,
    tree_size: u64,
) -> Result<Vec<(u64, Vec<u8>)>, RecordError> {
    let mut found: Vec<(u64, Vec<u8>)> = Vec::new();
    let mut streams: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for w in wanted {
        streams.entry(w.stream).or_default().push(w.decision);
    }
    for (stream, decisions) in streams {
        let seqs: Vec<u64> =
            ledger.store().stream_seqs(&stream, 0, u64::MAX)?.into_iter().filter(|s| *s < tree_size).collect();
        for decision in decisions {
            let at = seqs.partition_point(|s| *s < decision);
            // Backwards from the decision to the run's start.
            let mut run = None;
            let mut end = at;
            while run.is_none() && end > 0 && at - end < RUN_SEARCH_MAX {
                let start = end.saturating_sub(RUN_READ);
                for (seq, bytes) in read_entries(ledger, &seqs[start..end])?.into_iter().rev() {
                    match zachetka_record::run_entry_of(&bytes) {
                        Some((_, "queue.allocation_started", id)) => {
                            run = Some(id);
                            found.push((seq, bytes));
                            break;
                        }
                        // The last run before the decision had finished: none was open.
                        Some((_, _, _)) => {
                            end = 0;
                            break;
                        }
                        None => {}
                    }
                }
                end = if end == 0 { 0 } else { start };
            }
            let Some(run) = run else { continue };
            // Forwards from the decision to that run's finish.
            let mut from = at + 1;
            while from < seqs.len() && from - at < RUN_SEARCH_MAX {
                let to = (from + RUN_READ).min(seqs.len());
                let finish = read_entries(ledger, &seqs[from..to])?.into_iter().find(|(_, bytes)| {
                    matches!(zachetka_record::run_entry_of(bytes), Some((_, "queue.allocation_finished", id)) if id == run)
                });
                if let Some(f) = finish {
                    found.push(f);
                    break;
                }
                from = to;
            }
        }
    }
    found.sort_unstable_by_key(|(seq, _)| *seq);
    found.dedup_by_key(|(seq, _)| *seq);
    Ok(found)
}

/// Exports the record bundle of `learner` at the tree size the read models have applied.
pub fn export_learner(ledger: &Ledger, learner: &str, disclosure: &Disclosure) -> Result<Bundle, RecordError> {
    export_learner_with(ledger, learner, disclosure, None, BundleAt::Applied)
}

/// [`export_learner`], its checkpoint carrying the witnesses' cosignatures `cosigning` holds for
/// that tree size (checked against the witnesses' keys), so that a verifier demanding them
/// passes; `at` says which checkpoint.
pub fn export_learner_with(
    ledger: &Ledger,
    learner: &str,
    disclosure: &Disclosure,
    cosigning: Option<&crate::cosigning::Cosigning>,
    at: BundleAt,
) -> Result<Bundle, RecordError> {
    let cosigned = match (at, cosigning) {
        (BundleAt::Applied, _) => None,
        (BundleAt::Cosigned, None) => return Err(RecordError::NoWitnesses),
        (BundleAt::Cosigned, Some(c)) => Some(c.newest_cosigned().ok_or(RecordError::NotYetCosigned)?),
    };
    if let Some(size) = cosigned {
        // The read models answer at or beyond the cosigned size; entries after it are left out.
        ledger.read_side().wait_applied_blocking(size);
    }
    let answer = match ledger.read_side().view("profiles", &[learner]) {
        Ok(a) => a,
        Err(ReadError::View(ViewError::NotFound(_))) => return Err(RecordError::UnknownLearner(learner.to_owned())),
        Err(ReadError::View(ViewError::BadPath(m))) => return Err(RecordError::BadLearner(m)),
        Err(ReadError::Store(m)) => return Err(RecordError::Read(m)),
        Err(ReadError::UnknownModel(m)) => return Err(RecordError::NoModel(m)),
    };
    let tree_size = cosigned.unwrap_or(answer.tree_size);
    let note = ledger.checkpoint_at(tree_size)?.ok_or(RecordError::NoCheckpoint(tree_size))?;
    let note = match cosigning {
        Some(c) => c.cosigned(tree_size, &note),
        None => note,
    };
    let too_many = || RecordError::TooManyEntries { learner: learner.to_owned() };
    let mut seqs = stream_seqs_below(ledger, &format!("learner/{learner}"), tree_size)?.ok_or_else(too_many)?;
    other_stream_seqs(&answer.view.body, &mut seqs);
    seqs.retain(|s| *s < tree_size);
    seqs.sort_unstable();
    seqs.dedup();
    if seqs.len() as u64 > LEARNER_ENTRIES_MAX {
        return Err(too_many());
    }
    let concerned = read_entries(ledger, &seqs)?;
    let registry_seqs = stream_seqs_below(ledger, "registry", tree_size)?.ok_or(RecordError::RegistryTooLong)?;
    let registry = read_entries(ledger, &registry_seqs)?;
    let parsed = zachetka_record::Concerned::parse(&concerned)?;
    let wanted = zachetka_record::authority_wanted(&parsed);
    let mut registrations = find_registrations(ledger, wanted.registrations)?;
    registrations.extend(find_lessons(ledger, wanted.lessons, tree_size)?);
    registrations.extend(find_runs(ledger, wanted.runs, tree_size)?);
    registrations.sort_unstable_by_key(|(seq, _)| *seq);
    registrations.dedup_by_key(|(seq, _)| *seq);
    // Every commitment below `tree_size` is known to the completeness model once it has applied
    // that far (models move together; after a snapshot one may trail briefly).
    let read = ledger.read_side();
    if read.status(tree_size).models.iter().any(|m| m.name == "completeness" && m.cursor < tree_size) {
        read.wait_applied_blocking(tree_size);
    }
    let completeness = read.completeness_for(learner, tree_size)?;
    let commitment_entry = match &completeness {
        Some(c) => read_entries(ledger, &[c.commitment_seq])?.pop().map(|(_, bytes)| bytes),
        None => None,
    };
    let config = ledger.config();
    let input = zachetka_record::ExportInput {
        origin: &config.origin,
        verifier_key: &config.verifier_key,
        learner,
        checkpoint: &note,
        concerned: &parsed,
        registry: &registry,
        registrations: &registrations,
        disclosure,
        completeness: completeness.as_ref().zip(commitment_entry.as_deref()).map(|(c, entry)| {
            zachetka_record::CompletenessInput {
                commitment_seq: c.commitment_seq,
                commitment_entry: entry,
                up_to: c.up_to,
                value: c.value,
                map_proof: &c.map_proof,
            }
        }),
    };
    let hashes = CachedHashes { inner: StoreHashes(&**ledger.store()), cache: RefCell::new(HashMap::default()) };
    let prover = merkle::Prover::new(&hashes, tree_size);
    // Every stored hash the learner's proofs need, in one read per run (the registry's few are
    // read as they come).
    let mut wanted: Vec<u64> = concerned.iter().map(|(seq, _)| *seq).collect();
    wanted.extend(completeness.as_ref().map(|c| c.commitment_seq));
    prover.prefetch(&wanted).map_err(|e| RecordError::Read(format!("couldn't read the tree: {e}")))?;
    let prove = |seq: u64, n: u64| {
        if n == tree_size { prover.prove(seq) } else { merkle::prove_inclusion(seq, n, &hashes) }
            .map_err(|e| e.to_string())
    };
    Ok(zachetka_record::export(&input, prove)?)
}

/// The store's stored hashes, each read once per export: the proofs of a learner's entries
/// share their upper levels (5,000 proofs in a log of 20,000 read about 20,000 hashes instead
/// of 75,000).
struct CachedHashes<'a> {
    inner: StoreHashes<'a>,
    cache: RefCell<HashMap<u64, Hash, BuildHasherDefault<IndexHasher>>>,
}

/// A hasher for stored-hash indexes (small integers, no adversary): one multiplication.
#[derive(Default)]
struct IndexHasher(u64);

impl std::hash::Hasher for IndexHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (n ^ (n >> 32)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

impl HashReader for CachedHashes<'_> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog_tiles::Error> {
        let mut cache = self.cache.borrow_mut();
        let missing: Vec<u64> = indexes.iter().copied().filter(|i| !cache.contains_key(i)).collect();
        if !missing.is_empty() {
            for (i, h) in missing.iter().zip(self.inner.read_hashes(&missing)?) {
                cache.insert(*i, h);
            }
        }
        Ok(indexes.iter().map(|i| cache[i]).collect())
    }
}
