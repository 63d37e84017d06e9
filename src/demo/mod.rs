//! The demo region: a synthetic, deterministic school year of a region that the default education
//! rules accept, covering every subsystem of DOMAIN.md. The authority establishes the ledger,
//! registers institutions of every kind and grants keys; institution admins grant their staff; a
//! migration imports a cohort's earlier years from legacy systems (`history`); then a dated year
//! follows, continuing the same learners: kindergarten queues with benefits and a main
//! allocation, 1st-grade windows and orders, clubs, teacher attestation before a commission,
//! term/year grades, debts, final exams, certificates and diplomas, merged in time order with a
//! streamed journal (lessons, grades, attendance, corrections, college and university results,
//! portfolio achievements). Events are generated sequentially and signed on every core. Not the
//! vocabulary (that is `zachetka-projections`).
//!
//! One module per subsystem: `population` (sizes, keys, set-up), `history` (the migration of
//! earlier years; keys replaced and an achievement revoked along the year), `contingent`
//! (admissions, curricula, classes of the next year, leaving), `clubs`, `kindergarten`,
//! `first_grade`, `school_year`, `attestation`, `higher` (college and university), `digital`
//! (staff records and what the digital-maturity indicators count), `journal` (the streamed
//! journal) and `merge` (the merge by time and the signing).

use crate::event::uuid_v7;
use crate::keys::KeyPair;
use crate::time::days_from_civil;
use crate::time::format_rfc3339;
use population::Cast;
use rayon::prelude::*;
use serde_json::json;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::{HashSet, VecDeque};
use zachetka_projections::vocabulary::MIGRATED_FROM;

mod attestation;
mod clubs;
mod contingent;
mod digital;
mod first_grade;
mod higher;
mod history;
mod journal;
mod kindergarten;
mod merge;
mod population;
mod school_year;

pub use history::{MIGRATION_CLOSES_AT, REVOKED_TEACHER};
pub use population::demo_key;

/// Sizes of a demo region. The structural events (set-up, queues, enrolment, clubs, attestation,
/// term grades, documents) scale with `learners` and `teachers`; `events` is the streamed journal.
#[derive(Debug, Clone, Copy)]
pub struct DemoSize {
    /// School learners (college and university students, kindergarten children and future
    /// 1st-graders are derived from it).
    pub learners: u64,
    pub teachers: u64,
    /// Streamed journal events (lessons, grades, attendance, corrections, college and university
    /// results, portfolio achievements), merged in time order with the structural ones.
    pub events: u64,
}

/// Counts a demo region reproduces exactly in the `indicators` read model
/// (`DemoRegion::with_targets`): the numerators of the digital-maturity shares, whose
/// denominators, of the academic year 2026/27 every record of such a region falls in, are its
/// school students (`DemoSize::learners`, all admitted from 1 September 2026; those who graduate
/// or are expelled in June 2027 still count in that year; such a region writes no 1st-grade
/// intake, for September 2027 and not counted in 2026/27 anyway), its teachers
/// (`DemoSize::teachers`) and `assignments`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndicatorTargets {
    pub students_with_profile: u64,
    pub students_recommended: u64,
    pub teachers_with_verified_content: u64,
    pub students_with_free_access: u64,
    pub assignments: u64,
    pub assignments_automatic: u64,
}

/// The Leningrad oblast in the 2021 monitoring (DOMAIN's table): 174,876 students, 14,269
/// teachers, 202,217 assignments, and the table's numerators. The table's recommendation share
/// has the denominator 174,873; the log has one set of students, so its denominator is 174,876
/// (11.75% either way, 11.8 rounded).
pub fn leningrad_2021(events: u64) -> (DemoSize, IndicatorTargets) {
    (
        DemoSize { learners: 174_876, teachers: 14_269, events },
        IndicatorTargets {
            students_with_profile: 173_171,
            students_recommended: 20_555,
            teachers_with_verified_content: 3_917,
            students_with_free_access: 41_007,
            assignments: 202_217,
            assignments_automatic: 202_217,
        },
    )
}

/// Ids of a demo region of some size that readers can look up (the demo prints them with its
/// tokens): a learner in the 5th grade of the first school (5th: 1st grade has no marks), its
/// class, and a subject taught there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoSample {
    /// The learner's id (their stream is `learner/<id>`).
    pub learner: String,
    pub school: String,
    pub class: String,
    pub subject: &'static str,
    /// A learner whose profile spans the kindergarten queue, school, final attestation and a
    /// college, most of it imported by the migration (in a region built by [`DemoRegion::new`];
    /// a region with indicator targets imports no history).
    pub lifelong: String,
}

/// The region config a demo ledger is initialized with: the default region's lists
/// (`crate::rules::default_region`) and the migration cutover `MIGRATION_CLOSES_AT`, after every
/// import of the demo's history and before its live year, so that no import follows it.
pub fn region_config() -> Value {
    let mut region = crate::rules::default_region();
    region["migration_closes_at"] = json!(MIGRATION_CLOSES_AT);
    region
}

/// The [`DemoSample`] of a region of `size`.
pub fn sample(size: DemoSize) -> DemoSample {
    let schools = population::schools(size);
    // Number 4 * schools is in the first school's 5А (`Pupil::of`), when there are that many.
    let p = population::Pupil::of((4 * schools).min(size.learners.max(1) - 1), schools);
    DemoSample {
        learner: learner_stream(p.n).trim_start_matches("learner/").to_owned(),
        school: sch(p.school),
        class: p.class(),
        subject: population::SUBJECTS[0],
        lifelong: learner_stream(history::lifelong_learner(size)).trim_start_matches("learner/").to_owned(),
    }
}

/// The streamed journal's slots fall on the school days of this many days from 1 September.
const JOURNAL_SPAN_DAYS: i64 = 270;

/// Scripted events' numbers (for their ids) start here; journal slot `i` is number `i`.
const SCRIPT_BASE: u64 = 1 << 40;

/// The id of event number `n`, occurring at `at` (unix seconds): a UUIDv7, as README recommends
/// to every client, so ids arrive nearly in time order and the id index grows at its end.
fn event_id(origin: &str, n: u64, at: i64) -> String {
    let h: [u8; 32] = Sha256::digest(format!("{origin}\nid\n{n}")).into();
    let ms = u64::try_from(at).expect("demo events occur after 1970") * 1000;
    uuid_v7(ms, h[..10].try_into().expect("10 bytes"))
}

/// A deterministic hash of (tag, a, b) within a region.
fn mix(origin: &str, tag: &str, a: u64, b: u64) -> [u8; 32] {
    let mut s = Sha256::new();
    s.update(origin.as_bytes());
    s.update([0]);
    s.update(tag.as_bytes());
    s.update(a.to_be_bytes());
    s.update(b.to_be_bytes());
    s.finalize().into()
}

fn day(y: i64, m: u32, d: u32) -> i64 {
    days_from_civil(y, m, d)
}

/// Unix seconds at `minutes` after 00:00 UTC of `day` (keep it under 21:00 UTC: the region's
/// date, UTC+3, is then the same day).
fn instant(day: i64, minutes: i64) -> i64 {
    day * 86_400 + minutes * 60
}

fn date(day: i64) -> String {
    crate::time::format_date(day)
}

fn year_month(months: i64) -> String {
    format!("{:04}-{:02}", months.div_euclid(12), months.rem_euclid(12) + 1)
}

fn learner_stream(n: u64) -> String {
    format!("learner/47-{n:06}")
}

fn sch(s: u64) -> String {
    format!("sch-{:03}", s + 1)
}

fn u64_of(h: &[u8; 32]) -> u64 {
    u64::from_be_bytes(h[0..8].try_into().expect("8 bytes"))
}

fn hex8(h: &[u8; 32]) -> String {
    h[16..24].iter().map(|b| format!("{b:02x}")).collect()
}

/// One event with the time it is written (the ledger records it then: its `occurred_at`, or for
/// an import the time of the import) and its signer (an index into the region's keys).
struct Item {
    at: i64,
    event: Value,
    signer: usize,
}

/// A key replaced along the way (revoked, or rotated): from `from` (unix seconds) on, what key
/// `old` would have signed is signed by `new`.
#[derive(Debug, Clone, Copy)]
struct Swap {
    old: usize,
    from: i64,
    new: usize,
}

/// The key that signs for `signer` at `at`, after the replacements in `swaps`.
fn signer_at(swaps: &[Swap], mut signer: usize, at: i64) -> usize {
    for s in swaps {
        if s.old == signer && at >= s.from {
            signer = s.new;
        }
    }
    signer
}

/// Where an imported record comes from (`data.migrated_from`): the legacy system and its record id.
struct Source<'a> {
    system: &'a str,
    record: String,
}

/// Builds the structural events; each gets the next number (for its id) in build order.
struct Script<'a> {
    origin: &'a str,
    dids: &'a [String],
    swaps: &'a [Swap],
    items: Vec<Item>,
    n: u64,
}

impl Script<'_> {
    fn push(&mut self, at: i64, stream: &str, ty: &str, signer: usize, data: Value) -> String {
        self.write(at, at, stream, ty, signer, data)
    }

    /// A migration's import, written at `at` (the ledger records it then; its id is minted then)
    /// of a record that occurred at `occurred` in the legacy system `from`.
    #[allow(clippy::too_many_arguments)]
    fn import(
        &mut self,
        at: i64,
        occurred: i64,
        stream: &str,
        ty: &str,
        signer: usize,
        mut data: Value,
        from: Source,
    ) -> String {
        let source = json!({"system": from.system, "record": from.record});
        data.as_object_mut().expect("event data is an object").insert(MIGRATED_FROM.into(), source);
        self.write(at, occurred, stream, ty, signer, data)
    }

    fn write(&mut self, at: i64, occurred: i64, stream: &str, ty: &str, signer: usize, mut data: Value) -> String {
        let v = zachetka_rules::schema_version(ty).expect("demo events are of the vocabulary");
        data.as_object_mut().expect("event data is an object").insert("v".into(), json!(v));
        self.n += 1;
        let id = event_id(self.origin, self.n, at);
        let signer = signer_at(self.swaps, signer, at);
        let event = json!({
            "ledger": self.origin, "stream": stream, "type": ty, "id": id,
            "occurred_at": format_rfc3339(occurred), "author": self.dids[signer], "data": data,
        });
        self.items.push(Item { at, event, signer });
        id
    }
}

/// Generates the demo region's signed events, in log order.
pub struct DemoRegion {
    origin: String,
    size: DemoSize,
    keys: Vec<KeyPair>,
    dids: Vec<String>,
    cast: Cast,
    /// Structural events in time order, not yet handed out.
    script: VecDeque<Item>,
    /// The next journal event, generated ahead to merge by time.
    pending: Option<Item>,
    next: u64,
    day0: i64,
    /// Indicator counts to reproduce exactly, if any.
    targets: Option<IndicatorTargets>,
    /// Keys replaced along the live year (none in a region with indicator targets).
    swaps: Vec<Swap>,
    /// The places the streamed journal gave a college or university result: (student, course,
    /// term, whether an exam or credit). The rules take one course result and one exam or credit
    /// per course and term (a change is a correction), so a slot whose place is taken holds a
    /// lesson instead.
    results_written: HashSet<(u64, &'static str, i64, bool)>,
    /// The school days of the streamed journal's span (the default region's calendar: no
    /// Sundays, no public holidays), on which its slots fall in order.
    school_days: Vec<i64>,
    /// The school lessons the streamed journal recorded last (`journal::LESSON_POOL`): a grade
    /// or an attendance mark is given at one of them.
    lessons: VecDeque<journal::Lesson>,
    /// The latest school record of the streamed journal (a correction names the one just before).
    last_school: Option<journal::LastRecord>,
}

impl DemoRegion {
    pub fn new(origin: &str, size: DemoSize) -> Self {
        Self::build(origin, size, None)
    }

    /// A region whose indicators equal `targets` (every numerator at most its denominator).
    pub fn with_targets(origin: &str, size: DemoSize, targets: IndicatorTargets) -> Self {
        let t = targets;
        assert!(
            t.students_with_profile.max(t.students_recommended).max(t.students_with_free_access)
                <= size.learners.max(1)
                && t.teachers_with_verified_content <= size.teachers.max(1)
                && t.assignments_automatic <= t.assignments,
            "indicator targets exceed their denominators: {t:?} for {size:?}"
        );
        Self::build(origin, size, Some(targets))
    }

    fn build(origin: &str, size: DemoSize, targets: Option<IndicatorTargets>) -> Self {
        let (cast, keys) = population::cast(origin, size);
        let dids: Vec<String> = keys.par_iter().map(KeyPair::did).collect();
        let mut region = Self {
            origin: origin.to_owned(),
            size,
            keys,
            dids,
            cast,
            script: VecDeque::new(),
            pending: None,
            next: 0,
            day0: day(2026, 9, 1),
            targets,
            swaps: Vec::new(),
            results_written: HashSet::new(),
            school_days: Vec::new(),
            lessons: VecDeque::new(),
            last_school: None,
        };
        let calendar = zachetka_rules::RegionConfig::default().calendar;
        region.school_days = calendar.school_days(region.day0, region.day0 + JOURNAL_SPAN_DAYS);
        if region.has_history() {
            region.swaps = region.key_swaps();
        }
        let mut script = Script { origin, dids: &region.dids, swaps: &region.swaps, items: Vec::new(), n: SCRIPT_BASE };
        region.setup(&mut script);
        if region.has_history() {
            region.migration(&mut script);
            region.keys_along_the_way(&mut script);
        }
        region.contingent(&mut script);
        region.additional(&mut script);
        region.queues(&mut script);
        region.attestation(&mut script);
        region.school_year(&mut script);
        if region.targets.is_none() {
            region.first_grade(&mut script);
        }
        region.graduation(&mut script);
        region.leaving(&mut script);
        region.staff_and_digital(&mut script);
        let mut items = script.items;
        // Stable: events at the same instant keep their build order (causes before effects).
        items.sort_by_key(|it| it.at);
        region.script = items.into();
        region
    }

    /// The authority key's did (the ledger must be initialized with it).
    pub fn authority_did(&self) -> String {
        self.dids[self.cast.authority].clone()
    }

    /// Whether the region has a lifelong history (imported earlier years, keys replaced along
    /// the way): every region but one with indicator targets, whose counts it would change.
    fn has_history(&self) -> bool {
        self.targets.is_none()
    }
}
