//! `kindergarten-queues`: each territory's kindergarten queue (`queue/kg/<territory>` streams) per
//! allocation year and age group in allocation order, each application's position and why (its
//! tier and the confirmed benefit or sibling link behind it, who stands ahead in each tier, which
//! events since it was filed moved it), and allocation runs with their places, offers and outcomes.
//!
//! A list is one allocation year's age group (DOMAIN: the age group is computed as of 1 September
//! of the target year): the list of territory T, year Y, group G holds the waiting applications
//! whose desired date falls in academic year Y or an earlier one and whose child is of group G on
//! 1 September Y. A child still waiting after its desired year so competes in each later year's
//! allocation in the group of its age then, and a later year's applicant never stands behind an
//! earlier year's child who will be older by then. An application out of the queue (offered,
//! enrolled, withdrawn) is shown, without a position, in the list of the year it left in. The
//! allocation year now is the open run's (`academic_year`, or its date's), else that of "today"
//! (`queue_order::allocation_year_on`: from 1 April the coming 1 September's, before it the current
//! academic year's); `<territory>/<age_group>` answers that year's list, `<territory>/<year>/
//! <age_group>` any year from it on, `<territory>` lists the years and groups with waiting
//! applications, and an application answers its position in its next allocation: its target year
//! until that comes, then the current one (out of the queue, the year it left in, with the runs of
//! its years between its filing and its leaving). The rules judge offers in the same lists. Every
//! entry shown names its date: the ledger's `recorded_at`, or an import's own `occurred_at` (a
//! legacy placement is appended years after it was made, so log order is not its time).
//! Not the rules that admit queue events (`zachetka-rules`), though the order itself is theirs:
//! age group, tier and sort key come from `queue_order`, the one definition both sides call.
//!
//! `apply` only records (a few map lookups per entry); the order, positions and moves are computed
//! in `view`, because a tier depends on "today" (a benefit lapses on its re-check date without any
//! event), so no index kept in `apply` could stay sorted. An application's moves come from its age
//! group's history replayed once for all the group's applications and carried forward by the
//! entries that arrive after it (`GroupReplay`, kept beside the state, not in it), so an answer
//! costs the group's new entries, not its whole history; the per-application replay it replaced
//! is its test oracle. The kept replays are bounded: past `REPLAYS_BUDGET` (256 MiB, estimated)
//! the least recently answered groups are dropped and replayed from zero when next asked (the
//! default demo's 8 groups keep 332 applications and 41,295 moves, ~1.07 MB, its largest,
//! tikhvin/3-4, 231 applications and 40,279 moves; a demo of 1.5 million entries 418,305 moves
//! in ~12.1 MB). "Today" is, as in the rules, the latest
//! local date of any entry's `occurred_at`, and the application time is its time of filing
//! (`queue_order::filed_at`: the ledger's `recorded_at`, an import's original `occurred_at`), as
//! the rules order it. A family's consent to a kindergarten it did not choose is shown with what
//! stands before it there: every waiting application that prefers that kindergarten.

use crate::model::{self, expect_len, segment, DecodeError, Fact, ReadModel, Scope, View, ViewError};
use crate::models::shared::{local_date, EntryRef};
use crate::queue_order::{self, ClaimRef, ClaimState, OrderKey, QueueRules, TierReason};
use crate::region::RegionProfile;
use crate::time::{self, Days, Nanos};
use crate::vocabulary::{Event, PlacesRow};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;

const NAME: &str = "kindergarten-queues";
const SHAPES: &str = "<territory>, <territory>/<age_group>, <territory>/<year>/<age_group>, \
                      <territory>/applications/<application_id>, \
                      <territory>/applications/<application_id>/moves or <territory>/runs/<run_id>";

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Claim {
    claim_id: String,
    category: String,
    recheck_on: Days,
    state: ClaimState,
    claimed: EntryRef,
    /// The confirmation or rejection.
    decided: Option<EntryRef>,
    rejection_reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Sibling {
    kindergarten: String,
    sibling: String,
    linked: EntryRef,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum Status {
    Waiting,
    Offered { offer: String, kindergarten: String },
    Accepted { offer: String, kindergarten: String },
    Enrolled { offer: Option<String>, kindergarten: String },
    Withdrawn { reason: String },
}

/// What one entry did to an application (indices point into its claims and siblings).
#[derive(Debug, Clone, Serialize, Deserialize)]
enum What {
    Submitted,
    BenefitClaimed { claim: usize },
    BenefitConfirmed { claim: usize },
    BenefitRejected { claim: usize },
    SiblingLinked { sibling: usize },
    Consented { kindergarten: String },
    Withdrawn,
    Offered { offer: String },
    OfferAccepted { offer: String },
    OfferRefused { offer: String },
    AdmissionRefused { kindergarten: String, reason: String },
    Enrolled { kindergarten: String, order_ref: String },
    Transferred { from: String, to: String },
}

impl What {
    fn event_type(&self) -> &'static str {
        match self {
            What::Submitted => "queue.application_submitted",
            What::BenefitClaimed { .. } => "queue.benefit_claimed",
            What::BenefitConfirmed { .. } => "queue.benefit_confirmed",
            What::BenefitRejected { .. } => "queue.benefit_rejected",
            What::SiblingLinked { .. } => "queue.sibling_linked",
            What::Consented { .. } => "queue.other_kindergarten_consented",
            What::Withdrawn => "queue.application_withdrawn",
            What::Offered { .. } => "queue.place_offered",
            What::OfferAccepted { .. } => "queue.offer_accepted",
            What::OfferRefused { .. } => "queue.offer_refused",
            What::AdmissionRefused { .. } => "queue.admission_refused",
            What::Enrolled { .. } => "queue.enrolled",
            What::Transferred { .. } => "queue.transferred",
        }
    }
}

/// An entry with its dates: the ledger's `recorded_at` and, for a record imported from a legacy
/// system, the `occurred_at` it keeps from there (when the legacy system made it: the ledger only
/// recorded it later).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Dated {
    seq: u64,
    event: String,
    /// The ledger's `recorded_at`, unix seconds.
    recorded_at: i64,
    /// An imported record's own `occurred_at`, as signed (`None` for a record made here).
    imported_occurred_at: Option<String>,
    /// When it happened in the queue's history, what runs and applications are placed by: an
    /// import's `occurred_at`, else the ledger's `recorded_at` (the order's rule for a filing,
    /// `queue_order::filed_at`).
    time: Nanos,
}

impl Dated {
    fn of(fact: &Fact<'_>) -> Self {
        let recorded = Nanos::from(fact.recorded_at) * 1_000_000_000;
        let imported = fact.imported.is_some();
        let occurred = time::parse_instant(fact.occurred_at).unwrap_or(recorded);
        Dated {
            seq: fact.seq,
            event: fact.id.to_owned(),
            recorded_at: fact.recorded_at,
            imported_occurred_at: imported.then(|| fact.occurred_at.to_owned()),
            time: queue_order::filed_at(recorded, occurred, imported),
        }
    }

    fn entry(&self) -> EntryRef {
        EntryRef { seq: self.seq, event: self.event.clone() }
    }

    /// Writes the entry and its dates into `v` (an object): `event`, `seq`, `recorded_at`,
    /// `occurred_at` (an import's own, only for an import), and `date`, the one of them it happened at,
    /// with `date_from` naming which.
    fn put(&self, v: &mut Value) {
        let recorded = time::format_rfc3339(self.recorded_at);
        let (date, from) = match &self.imported_occurred_at {
            Some(o) => (o.clone(), "occurred_at (imported: the legacy record's own date)"),
            None => (recorded.clone(), "recorded_at"),
        };
        v["event"] = json!(self.event);
        v["seq"] = json!(self.seq);
        v["date"] = json!(date);
        v["date_from"] = json!(from);
        v["recorded_at"] = json!(recorded);
        if let Some(o) = &self.imported_occurred_at {
            v["occurred_at"] = json!(o);
        }
    }

    fn json(&self) -> Value {
        let mut v = json!({});
        self.put(&mut v);
        v
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Change {
    at: Dated,
    /// The model's "today" once this entry was applied.
    today: Days,
    what: What,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct App {
    number: String,
    learner: String,
    desired_date: String,
    /// The birth month (year, month): the age group is computed per allocation year from it.
    birth: (i64, u32),
    /// The academic year of the desired date: the first allocation the application competes in.
    target_year: i64,
    /// The allocation year in which it last left the queue (an offer, a withdrawal), while it
    /// is out of it: the one list it is shown in without a position.
    left_year: Option<i64>,
    /// When it left the queue (the entry's `Dated::time`), while it is out of it.
    left_at: Option<Nanos>,
    group_type: String,
    preferred: Vec<String>,
    /// The time of filing the order uses (`queue_order::filed_at`): the ledger's `recorded_at`,
    /// or for an imported application its original `occurred_at`.
    applied_at: Nanos,
    /// `occurred_at` as signed.
    applied_text: String,
    /// `applied_at` as shown: an import's `occurred_at` as signed, else the ledger's `recorded_at`
    /// (RFC 3339).
    filed_text: String,
    /// The ledger's `recorded_at` of the application, RFC 3339.
    recorded_text: String,
    /// The legacy record an imported application comes from: (system, record).
    imported: Option<(String, String)>,
    submitted: EntryRef,
    claims: Vec<Claim>,
    siblings: Vec<Sibling>,
    /// Kindergartens the family consented to beside its preferred ones, with the consent's entry.
    consented: Vec<(String, EntryRef)>,
    status: Status,
    changes: Vec<Change>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
enum Step {
    Accepted,
    Refused { reason: String },
    Withdrawn { reason: String },
    Enrolled { order_ref: String },
    Transferred { from: String, to: String },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Offer {
    application: String,
    kindergarten: String,
    /// The allocation run open when the place was offered.
    run: Option<String>,
    offered: Dated,
    steps: Vec<(Step, Dated)>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct PlacesDeclared {
    kindergarten: String,
    age_group: String,
    group_type: String,
    places: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct AdmissionRefusal {
    application: String,
    kindergarten: String,
    reason: String,
    at: Dated,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Run {
    kind: String,
    /// The allocation year its places are for (`academic_year`, or its date's).
    year: i64,
    started: Dated,
    finished: Option<Dated>,
    places: Vec<PlacesDeclared>,
    offers: Vec<String>,
    admission_refusals: Vec<AdmissionRefusal>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Territory {
    apps: BTreeMap<String, App>,
    offers: BTreeMap<String, Offer>,
    runs: BTreeMap<String, Run>,
    open_run: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct State {
    /// The latest local date of any entry (the rules' "today"), `None` before the first.
    today: Option<Days>,
    territories: BTreeMap<String, Territory>,
}

/// The `kindergarten-queues` read model (region profile: `RegionProfile::region_default()`).
pub struct KindergartenQueues {
    profile: RegionProfile,
    state: State,
    /// Answers of application views already computed (an application's view replays its whole
    /// list's history, milliseconds in a large territory, and a family reads it again and
    /// again), each valid while no entry touched an application of its list (an entry about an
    /// application bumps every list it competes in) or its territory's allocation runs, while
    /// the application's list is the same (the allocation year moves on with "today" or a run),
    /// and until "today" passes the next benefit re-check date in its list (the only other way
    /// "today" changes an answer, besides the date it shows). Not state: never encoded, emptied
    /// on load.
    answers: std::sync::Mutex<AnswerCache>,
    /// Each list's (allocation year and age group) history replayed for all its applications at once, as far as it has
    /// been read ([`GroupReplay`]): an application's `moves` without replaying the group per
    /// answer, kept within a budget of bytes ([`Replays`]). Not state: never encoded, emptied
    /// on load.
    replays: std::sync::Mutex<Replays>,
}

/// The bytes the kept group replays may hold together (an estimate: [`ReplaySize`]). A group's
/// kept moves grow as its applications times its changes (every change moves the applications
/// behind it): measured (`cargo bench --bench read -- --dir D --phases replays`), the default
/// demo keeps 41,295 moves in ~1.07 MB (8 groups) and the demo of 1,507,133 entries 418,305 in
/// ~12.1 MB (68 groups, 7,393 applications; the largest, 205 applications, 14,232 moves in
/// 384 KB), but a region's real queues (~126 groups of hundreds of applications, each moved by
/// hundreds of changes a year) would keep ten million moves and more, at 16 bytes each (up
/// to twice that with the vectors' spare room), for the process's life. 256 MiB holds all of
/// a demo's and 8 to 16 million moves. Past it the least recently answered groups are dropped;
/// a dropped group is replayed again from its first change on its next answer (on the
/// 1,507,133-entry demo, debug build: 14.5 ms an answer with every group replayed from zero,
/// 1.2 ms with every replay kept).
pub const REPLAYS_BUDGET: usize = 256 << 20;

/// The bytes of one move kept in a group replay (`MoveRef`).
pub const MOVE_BYTES: usize = std::mem::size_of::<MoveRef>();

/// The kept group replays, keyed by (territory, age group), with their sizes as last counted
/// and the order they were answered from (an answer the answer cache gives touches no replay;
/// finding the least recent scans the groups, a few hundred in a region, and only when the
/// budget is passed). After every answer the kept total is at most the
/// budget: the least recently answered are dropped until it is (the one just answered too, if
/// it alone is over the budget: it is then replayed from zero on every answer). A view answering
/// from a replay holds its `Arc`, so a replay dropped meanwhile lives on until that answer is
/// done (and is not kept after it); a replay is never changed by being dropped, only forgotten,
/// and a group replayed again from zero gives the same moves (the test oracle's).
struct Replays {
    groups: std::collections::HashMap<(String, String), Kept>,
    /// The sum of the kept replays' sizes.
    total: ReplaySize,
    budget: usize,
    /// Bumped by every answer: the order of use (the least recently answered go first).
    clock: u64,
    /// Replays dropped over the budget, and answers that found their group's replay kept.
    dropped: u64,
    hits: u64,
}

/// A kept group replay, its size when it was last carried forward, and when it last answered.
struct Kept {
    replay: std::sync::Arc<std::sync::Mutex<GroupReplay>>,
    size: ReplaySize,
    used: u64,
}

/// The size of kept group replays: applications (tracks) and moves held, and an estimate of
/// their bytes (each structure's own size, the capacity of its vectors and strings, and a
/// hash-map slot per application; the allocator's rounding is not counted).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplaySize {
    pub tracks: usize,
    pub moves: usize,
    pub bytes: usize,
}

impl ReplaySize {
    fn add(&mut self, o: ReplaySize) {
        self.tracks += o.tracks;
        self.moves += o.moves;
        self.bytes += o.bytes;
    }

    fn sub(&mut self, o: ReplaySize) {
        self.tracks -= o.tracks;
        self.moves -= o.moves;
        self.bytes -= o.bytes;
    }
}

/// What the kept group replays hold: see [`KindergartenQueues::replays_kept`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplaysKept {
    /// Groups kept, and their total.
    pub groups: usize,
    pub total: ReplaySize,
    pub budget: usize,
    /// The largest kept group by bytes: (territory, age group) and its size.
    pub largest: Option<((String, String), ReplaySize)>,
    /// Replays dropped over the budget since the model was made or loaded.
    pub dropped: u64,
    /// Answers whose group's replay was kept (the others replayed it from zero).
    pub hits: u64,
}

impl Replays {
    fn new(budget: usize) -> Self {
        Replays { groups: Default::default(), total: ReplaySize::default(), budget, clock: 0, dropped: 0, hits: 0 }
    }

    fn clear(&mut self) {
        *self = Replays::new(self.budget);
    }

    /// The group's replay (a new, empty one if none is kept), marked as the latest answered.
    fn take(&mut self, key: (String, String)) -> std::sync::Arc<std::sync::Mutex<GroupReplay>> {
        self.clock += 1;
        let used = self.clock;
        if let Some(k) = self.groups.get_mut(&key) {
            self.hits += 1;
            k.used = used;
            return k.replay.clone();
        }
        let replay = std::sync::Arc::<std::sync::Mutex<GroupReplay>>::default();
        self.groups.insert(key, Kept { replay: replay.clone(), size: ReplaySize::default(), used });
        replay
    }

    /// Records the size of `replay` (the group's, just carried forward) if it is still the one
    /// kept, then drops the least recently answered replays while the total is over the budget.
    /// Returns the replays dropped (let go by the caller after this map's lock).
    fn resize(
        &mut self,
        key: &(String, String),
        replay: &std::sync::Arc<std::sync::Mutex<GroupReplay>>,
        size: ReplaySize,
    ) -> Vec<std::sync::Arc<std::sync::Mutex<GroupReplay>>> {
        if let Some(k) = self.groups.get_mut(key).filter(|k| std::sync::Arc::ptr_eq(&k.replay, replay)) {
            self.total.sub(k.size);
            k.size = size;
            self.total.add(size);
        }
        let mut dropped = Vec::new();
        while self.total.bytes > self.budget {
            let Some(lru) = self.groups.iter().min_by_key(|(_, k)| k.used).map(|(g, _)| g.clone()) else { break };
            let k = self.groups.remove(&lru).expect("the group just found");
            self.total.sub(k.size);
            self.dropped += 1;
            dropped.push(k.replay);
        }
        dropped
    }
}

/// See [`KindergartenQueues::answers`].
#[derive(Default)]
struct AnswerCache {
    /// Per territory, a counter bumped by every entry of its queue not about one application
    /// (allocation runs, and anything not understood).
    territories: std::collections::HashMap<String, u64>,
    /// Per (territory, list: `list_key`), a counter bumped by every entry about one of the
    /// applications competing in it.
    groups: std::collections::HashMap<(String, String), u64>,
    /// (territory, application) → the answer and what it was computed under.
    bodies: std::collections::HashMap<(String, String), Answer>,
}

/// A computed application answer: the generations it saw, and the days of "today" it holds for.
struct Answer {
    territory: u64,
    group: u64,
    /// The list (`list_key`) the application's position was computed in.
    list: String,
    /// Whether that list's year was past (the answer then names no list to read).
    past: bool,
    /// "Today" when computed, and the last day it stays the same answer: the first re-check date
    /// of a claim in the age group on or after it (a claim is in force while its date is not past).
    from: Days,
    until: Days,
    /// Shared, so a hit copies it after the cache's lock is let go (a large territory's answer
    /// is a large tree: copied under the lock, every other answer would wait for it).
    body: std::sync::Arc<Value>,
}

impl AnswerCache {
    fn bump(map: &mut std::collections::HashMap<(String, String), u64>, key: (&str, &str)) {
        match map.get_mut(&(key.0.to_owned(), key.1.to_owned())) {
            Some(g) => *g += 1,
            None => {
                map.insert((key.0.to_owned(), key.1.to_owned()), 1);
            }
        }
    }

    fn generations(&self, territory: &str, group: &str) -> (u64, u64) {
        let t = self.territories.get(territory).copied().unwrap_or(0);
        let g = self.groups.get(&(territory.to_owned(), group.to_owned())).copied().unwrap_or(0);
        (t, g)
    }
}

/// The application an entry of a queue is about (`None`: an allocation run, or the whole queue).
fn application_of<'e>(terr: &'e Territory, event: &'e Event) -> Option<&'e str> {
    Some(match event {
        Event::QueueApplicationSubmitted(d) => &d.application_id,
        Event::BenefitClaimed(d) => &d.application_id,
        Event::BenefitConfirmed(d) => &d.application_id,
        Event::BenefitRejected(d) => &d.application_id,
        Event::SiblingLinked(d) => &d.application_id,
        Event::OtherKindergartenConsented(d) => &d.application_id,
        Event::QueueApplicationWithdrawn(d) => &d.application_id,
        Event::PlaceOffered(d) => &d.application_id,
        Event::AdmissionRefused(d) => &d.application_id,
        Event::KindergartenEnrolled(d) => &d.application_id,
        Event::KindergartenTransferred(d) => &d.application_id,
        Event::OfferAccepted(d) => &terr.offers.get(&d.offer_id)?.application,
        Event::OfferRefused(d) => &terr.offers.get(&d.offer_id)?.application,
        _ => return None,
    })
}

/// Most application answers kept; past it the cache starts over.
const ANSWERS_MAX: usize = 20_000;

impl Default for KindergartenQueues {
    fn default() -> Self {
        Self {
            profile: RegionProfile::region_default(),
            state: State::default(),
            answers: Default::default(),
            replays: std::sync::Mutex::new(Replays::new(REPLAYS_BUDGET)),
        }
    }
}

impl Territory {
    fn change(&mut self, app: &str, at: Dated, today: Days, what: What) -> Option<&mut App> {
        let a = self.apps.get_mut(app)?;
        a.changes.push(Change { at, today, what });
        Some(a)
    }

    fn offer_step(&mut self, offer: &str, step: Step, at: Dated) {
        if let Some(o) = self.offers.get_mut(offer) {
            o.steps.push((step, at));
        }
    }

    /// The territory's allocation year now: the open run's, else that of "today"
    /// (`queue_order::allocation_year_on`; before any entry, none: `i64::MIN`).
    fn year(&self, today: Option<Days>) -> i64 {
        match self.open_run.as_ref().and_then(|r| self.runs.get(r)) {
            Some(run) => run.year,
            None => today.map_or(i64::MIN, queue_order::allocation_year_on),
        }
    }
}

/// The scope of an application's answers: the applicant's data, read by the applicant and by the
/// territory whose queue it is on (review s12, M3: its queue operator was refused them).
fn application_scope(territory: &str, app: &App) -> Scope {
    Scope::Application { learner: app.learner.clone(), territory: territory.to_owned() }
}

/// The key of one list, an allocation year's age group: what cached generations and kept
/// replays are kept under beside the territory.
fn list_key(year: i64, group: &str) -> String {
    format!("{year}/{group}")
}

impl App {
    /// The age group it competes with in allocation `year`, whatever its status
    /// (`queue_order::competes_in`): none before its target year or past the oldest group.
    fn group_in<'r>(&self, rules: &'r QueueRules, year: i64) -> Option<&'r str> {
        queue_order::competes_in(rules, self.birth, self.target_year, year)
    }

    /// Every list it competes in: from its target year, each year's age group, until the child
    /// is past the oldest group (at most a group's span of years).
    fn lists<'a>(&'a self, rules: &'a QueueRules) -> impl Iterator<Item = (i64, &'a str)> + 'a {
        (self.target_year..).map_while(move |y| self.group_in(rules, y).map(|g| (y, g)))
    }

    /// Whether the list of (`year`, `group`) shows it: while it waits, every list it competes
    /// in (with a position); out of the queue, only the list of the year it left in.
    fn shown_in(&self, rules: &QueueRules, year: i64, group: &str) -> bool {
        self.left_year.is_none_or(|y| y == year) && self.group_in(rules, year) == Some(group)
    }
}

impl ReadModel for KindergartenQueues {
    fn name(&self) -> &'static str {
        NAME
    }

    fn version(&self) -> u32 {
        // 2: the order is by the ledger's time of filing, and the sibling tier is per kindergarten.
        // 3: consents to kindergartens not preferred.
        // 4: lists per allocation year (applications keep birth month and target year, runs their year).
        // 5: entries keep their dates (an import's own `occurred_at`), applications when they left.
        5
    }

    fn apply(&mut self, fact: &Fact<'_>) {
        if let Some(d) = local_date(fact, self.profile.utc_offset_minutes) {
            self.state.today = Some(self.state.today.map_or(d, |t| t.max(d)));
        }
        if !fact.stream.starts_with("queue/kg/") {
            return;
        }
        let today = self.state.today.unwrap_or(Days::MIN);
        let at = EntryRef::of(fact);
        let dated = Dated::of(fact);
        let sid = fact.stream_id();
        if !self.state.territories.contains_key(sid) {
            self.state.territories.insert(sid.to_owned(), Territory::default());
        }
        let Some(terr) = self.state.territories.get_mut(sid) else { return };
        {
            // Which cached answers this entry may change: its application's age group, or the
            // whole territory (a new application's group once it is filed, below).
            let answers = self.answers.get_mut().expect("answer cache lock");
            match application_of(terr, fact.event) {
                Some(app) => {
                    if let Some(a) = terr.apps.get(app) {
                        for (year, group) in a.lists(&self.profile.queue) {
                            AnswerCache::bump(&mut answers.groups, (sid, &list_key(year, group)));
                        }
                    }
                }
                None => match answers.territories.get_mut(sid) {
                    Some(g) => *g += 1,
                    None => {
                        answers.territories.insert(sid.to_owned(), 1);
                    }
                },
            }
        }
        match fact.event {
            Event::QueueApplicationSubmitted(d) => {
                let (Ok(_), Some(birth), Some(target_year), Some(occurred)) = (
                    queue_order::age_group_of(&self.profile.queue, &d.birth_month, &d.desired_date),
                    time::parse_year_month(&d.birth_month),
                    queue_order::target_year(&d.desired_date),
                    time::parse_instant(fact.occurred_at),
                ) else {
                    return;
                };
                let recorded = Nanos::from(fact.recorded_at) * 1_000_000_000;
                let imported = fact.imported.is_some();
                let applied_at = queue_order::filed_at(recorded, occurred, imported);
                if terr.apps.contains_key(&d.application_id) {
                    return;
                }
                let app = App {
                    number: d.number.clone(),
                    learner: d.learner.clone(),
                    desired_date: d.desired_date.clone(),
                    birth,
                    target_year,
                    left_year: None,
                    left_at: None,
                    group_type: d.group_type.clone(),
                    preferred: d.preferred.clone(),
                    applied_at,
                    applied_text: fact.occurred_at.to_owned(),
                    filed_text: if imported {
                        fact.occurred_at.to_owned()
                    } else {
                        time::format_rfc3339(fact.recorded_at)
                    },
                    recorded_text: time::format_rfc3339(fact.recorded_at),
                    imported: fact.imported.map(|m| (m.system.clone(), m.record.clone())),
                    submitted: at,
                    claims: Vec::new(),
                    siblings: Vec::new(),
                    consented: Vec::new(),
                    status: Status::Waiting,
                    changes: vec![Change { at: dated, today, what: What::Submitted }],
                };
                let answers = self.answers.get_mut().expect("answer cache lock");
                for (year, group) in app.lists(&self.profile.queue) {
                    AnswerCache::bump(&mut answers.groups, (sid, &list_key(year, group)));
                }
                terr.apps.insert(d.application_id.clone(), app);
            }
            Event::BenefitClaimed(d) => {
                let Some(recheck_on) = time::parse_date(&d.recheck_on) else { return };
                let Some(app) = terr.apps.get_mut(&d.application_id) else { return };
                app.changes.push(Change { at: dated, today, what: What::BenefitClaimed { claim: app.claims.len() } });
                app.claims.push(Claim {
                    claim_id: d.claim_id.clone(),
                    category: d.category.clone(),
                    recheck_on,
                    state: ClaimState::Claimed,
                    claimed: at,
                    decided: None,
                    rejection_reason: None,
                });
            }
            Event::BenefitConfirmed(d) => decide(terr, &d.application_id, &d.claim_id, None, dated, today),
            Event::BenefitRejected(d) => {
                decide(terr, &d.application_id, &d.claim_id, Some(d.reason.clone()), dated, today)
            }
            Event::SiblingLinked(d) => {
                let Some(app) = terr.apps.get_mut(&d.application_id) else { return };
                app.changes.push(Change {
                    at: dated,
                    today,
                    what: What::SiblingLinked { sibling: app.siblings.len() },
                });
                app.siblings.push(Sibling {
                    kindergarten: d.kindergarten.clone(),
                    sibling: d.sibling.clone(),
                    linked: at,
                });
            }
            Event::QueueApplicationWithdrawn(d) => {
                let year = terr.year(Some(today));
                let Some(app) = terr.change(&d.application_id, dated.clone(), today, What::Withdrawn) else { return };
                if app.left_year.is_none() {
                    app.left_year = Some(queue_order::next_allocation_year(app.target_year, year));
                    app.left_at = Some(dated.time);
                }
                let old = std::mem::replace(&mut app.status, Status::Withdrawn { reason: d.reason.clone() });
                if let Status::Offered { offer, .. } = old {
                    terr.offer_step(&offer, Step::Withdrawn { reason: d.reason.clone() }, dated);
                }
            }
            Event::AllocationStarted(d) => {
                let places = d.places.iter().map(places_declared).collect();
                let date = local_date(fact, self.profile.utc_offset_minutes).unwrap_or(today);
                let run = Run {
                    kind: d.kind.clone(),
                    year: d.academic_year.unwrap_or_else(|| queue_order::allocation_year_on(date)),
                    started: dated,
                    finished: None,
                    places,
                    offers: Vec::new(),
                    admission_refusals: Vec::new(),
                };
                terr.runs.entry(d.run_id.clone()).or_insert(run);
                terr.open_run = Some(d.run_id.clone());
            }
            Event::AllocationFinished(d) => {
                if let Some(run) = terr.runs.get_mut(&d.run_id) {
                    run.finished = Some(dated);
                }
                if terr.open_run.as_deref() == Some(d.run_id.as_str()) {
                    terr.open_run = None;
                }
            }
            Event::OtherKindergartenConsented(d) => {
                let what = What::Consented { kindergarten: d.kindergarten.clone() };
                let Some(app) = terr.change(&d.application_id, dated, today, what) else { return };
                app.consented.push((d.kindergarten.clone(), at));
            }
            Event::PlaceOffered(d) => {
                let what = What::Offered { offer: d.offer_id.clone() };
                let year = terr.year(Some(today));
                let Some(app) = terr.change(&d.application_id, dated.clone(), today, what) else { return };
                app.left_year = Some(queue_order::next_allocation_year(app.target_year, year));
                app.left_at = Some(dated.time);
                app.status = Status::Offered { offer: d.offer_id.clone(), kindergarten: d.kindergarten.clone() };
                let run = terr.open_run.clone();
                if let Some(r) = run.as_ref().and_then(|r| terr.runs.get_mut(r)) {
                    r.offers.push(d.offer_id.clone());
                }
                let offer = Offer {
                    application: d.application_id.clone(),
                    kindergarten: d.kindergarten.clone(),
                    run,
                    offered: dated,
                    steps: Vec::new(),
                };
                terr.offers.insert(d.offer_id.clone(), offer);
            }
            Event::OfferAccepted(d) => {
                let Some(app_id) = terr.offers.get(&d.offer_id).map(|o| o.application.clone()) else { return };
                let what = What::OfferAccepted { offer: d.offer_id.clone() };
                let Some(app) = terr.change(&app_id, dated.clone(), today, what) else { return };
                if let Status::Offered { offer, kindergarten } = &app.status {
                    app.status = Status::Accepted { offer: offer.clone(), kindergarten: kindergarten.clone() };
                }
                terr.offer_step(&d.offer_id, Step::Accepted, dated);
            }
            Event::OfferRefused(d) => {
                let Some(app_id) = terr.offers.get(&d.offer_id).map(|o| o.application.clone()) else { return };
                let what = What::OfferRefused { offer: d.offer_id.clone() };
                let Some(app) = terr.change(&app_id, dated.clone(), today, what) else { return };
                if matches!(app.status, Status::Offered { .. }) {
                    app.status = Status::Waiting;
                    app.left_year = None;
                    app.left_at = None;
                }
                terr.offer_step(&d.offer_id, Step::Refused { reason: d.reason.clone() }, dated);
            }
            Event::AdmissionRefused(d) => {
                let what = What::AdmissionRefused { kindergarten: d.kindergarten.clone(), reason: d.reason.clone() };
                if terr.change(&d.application_id, dated.clone(), today, what).is_none() {
                    return;
                }
                if let Some(r) = terr.open_run.clone().and_then(|r| terr.runs.get_mut(&r)) {
                    r.admission_refusals.push(AdmissionRefusal {
                        application: d.application_id.clone(),
                        kindergarten: d.kindergarten.clone(),
                        reason: d.reason.clone(),
                        at: dated,
                    });
                }
            }
            Event::KindergartenEnrolled(d) => {
                let what = What::Enrolled { kindergarten: d.kindergarten.clone(), order_ref: d.order_ref.clone() };
                let Some(app) = terr.change(&d.application_id, dated.clone(), today, what) else { return };
                let offer = match &app.status {
                    Status::Accepted { offer, .. } => Some(offer.clone()),
                    _ => None,
                };
                app.status = Status::Enrolled { offer: offer.clone(), kindergarten: d.kindergarten.clone() };
                if let Some(o) = offer {
                    terr.offer_step(&o, Step::Enrolled { order_ref: d.order_ref.clone() }, dated);
                }
            }
            Event::KindergartenTransferred(d) => {
                let what = What::Transferred { from: d.from_kindergarten.clone(), to: d.to_kindergarten.clone() };
                let Some(app) = terr.change(&d.application_id, dated.clone(), today, what) else { return };
                let offer = match &app.status {
                    Status::Enrolled { offer, .. } => offer.clone(),
                    _ => None,
                };
                app.status = Status::Enrolled { offer: offer.clone(), kindergarten: d.to_kindergarten.clone() };
                if let Some(o) = offer {
                    let step = Step::Transferred { from: d.from_kindergarten.clone(), to: d.to_kindergarten.clone() };
                    terr.offer_step(&o, step, dated);
                }
            }
            _ => {}
        }
    }

    fn encode(&self) -> Vec<u8> {
        model::encode_state(&self.state)
    }

    fn load(&mut self, bytes: &[u8]) -> Result<(), DecodeError> {
        self.state = model::decode_state(NAME, bytes)?;
        *self.answers.get_mut().expect("answer cache lock") = AnswerCache::default();
        self.replays.get_mut().expect("replays lock").clear();
        Ok(())
    }

    /// One application's answer (its position, why, the latest moves) when the cache holds it:
    /// computing one takes its age group's replay, which another view may be carrying forward.
    /// Not a whole age group's queue, nor an application's every move.
    /// An application's scope: its learner and territory, both fixed when it is filed.
    fn scope_of(&self, path: &[&str]) -> Option<Scope> {
        let shape = path.len() == 3 || (path.len() == 4 && path[3] == "moves");
        if !shape || path[1] != "applications" {
            return None;
        }
        let app = self.state.territories.get(path[0])?.apps.get(path[2])?;
        Some(application_scope(path[0], app))
    }

    fn view_now(&self, path: &[&str]) -> Option<Result<View, ViewError>> {
        if path.len() != 3 || path[1] != "applications" {
            return None;
        }
        match self.application(path) {
            Err(e) => Some(Err(e)),
            Ok((territory, id, app)) => self.cached_answer(territory, id, app).1.map(Ok),
        }
    }

    fn view(&self, path: &[&str]) -> Result<View, ViewError> {
        let territory = segment(path, 0, "a territory")?;
        let terr = || {
            self.state
                .territories
                .get(territory)
                .ok_or_else(|| ViewError::NotFound(format!("territory {territory} has no kindergarten queue")))
        };
        let scope = Scope::Territory(territory.to_owned());
        match path.get(1).copied() {
            Some("applications") if path.len() == 3 => {
                let (_, id, app) = self.application(path)?;
                let t = terr()?;
                let (generations, hit) = self.cached_answer(territory, id, app);
                if let Some(view) = hit {
                    return Ok(view);
                }
                let key = (territory.to_owned(), id.to_owned());
                let today = self.today();
                let body = self.application_body(t, territory, id, app, generations.1);
                // The answer holds until "today" passes the first re-check date on or after it
                // in the list (a claim is in force while its date is not past), and while the
                // application's list stays the same (`list`, checked on a hit).
                let (year, group) = self.list_of(t, app);
                let until = (t.apps.values())
                    .filter(|a| group.is_some() && a.group_in(&self.profile.queue, year) == group)
                    .flat_map(|a| a.claims.iter().map(|c| c.recheck_on))
                    .filter(|r| *r >= today)
                    .min()
                    .unwrap_or(Days::MAX);
                let answer = Answer {
                    territory: generations.0,
                    group: generations.1,
                    list: list_key(year, group.unwrap_or("")),
                    past: year < t.year(self.state.today),
                    from: today,
                    until,
                    body: std::sync::Arc::new(body.clone()),
                };
                let mut answers = self.answers.lock().expect("answer cache lock");
                if answers.bodies.len() >= ANSWERS_MAX {
                    answers.bodies.clear();
                }
                answers.bodies.insert(key, answer);
                Ok(View { scope: application_scope(territory, app), body })
            }
            Some("runs") if path.len() == 3 => {
                let id = segment(path, 2, "a run id")?;
                let t = terr()?;
                let run = t.runs.get(id).ok_or_else(|| {
                    ViewError::NotFound(format!("the queue of {territory} has no allocation run {id}"))
                })?;
                Ok(View { scope, body: run_body(&self.profile.queue, t, territory, id, run) })
            }
            Some("applications") if path.len() == 4 && path[3] == "moves" => {
                let id = segment(path, 2, "an application id")?;
                let t = terr()?;
                let app = t
                    .apps
                    .get(id)
                    .ok_or_else(|| ViewError::NotFound(format!("the queue of {territory} has no application {id}")))?;
                let (year, group) = self.list_of(t, app);
                let list = list_key(year, group.unwrap_or(""));
                let generation = self.answers.lock().expect("answer cache lock").generations(territory, &list);
                let body = self.moves_body(t, territory, id, app, generation.1);
                Ok(View { scope: application_scope(territory, app), body })
            }
            Some("applications" | "runs") => Err(ViewError::BadPath(format!("expected {SHAPES}"))),
            None => Ok(View { scope, body: self.lists_body(terr()?, territory) }),
            Some(_) if path.len() == 3 => {
                let year = segment(path, 1, "an allocation year")?;
                let group = self.age_group_segment(path, 2)?;
                let t = terr()?;
                let year = parse_year(year)?;
                let current = t.year(self.state.today);
                if year < current {
                    return Err(ViewError::NotFound(format!(
                        "the allocation of {year} is past: the queue of {territory} allocates the places of \
                         {current} now"
                    )));
                }
                Ok(View { scope, body: self.group_body(t, territory, year, group) })
            }
            _ => {
                expect_len(path, 2, SHAPES)?;
                if path[1].len() == 4 && path[1].bytes().all(|b| b.is_ascii_digit()) {
                    return Err(ViewError::BadPath(format!(
                        "{} is an allocation year: a year's list needs an age group, \
                         <territory>/<year>/<age_group>; expected {SHAPES}",
                        path[1]
                    )));
                }
                let group = self.age_group_segment(path, 1)?;
                let t = terr()?;
                Ok(View { scope, body: self.group_body(t, territory, t.year(self.state.today), group) })
            }
        }
    }
}

/// An allocation year as a path segment: four digits.
fn parse_year(s: &str) -> Result<i64, ViewError> {
    match s.parse::<i64>() {
        Ok(y) if s.len() == 4 && s.bytes().all(|b| b.is_ascii_digit()) => Ok(y),
        _ => Err(ViewError::BadPath(format!("{s} is not an allocation year (four digits); expected {SHAPES}"))),
    }
}

fn places_declared(r: &PlacesRow) -> PlacesDeclared {
    PlacesDeclared {
        kindergarten: r.kindergarten.clone(),
        age_group: r.age_group.clone(),
        group_type: r.group_type.clone(),
        places: r.places,
    }
}

fn decide(terr: &mut Territory, app: &str, claim_id: &str, rejection: Option<String>, at: Dated, today: Days) {
    let Some(a) = terr.apps.get_mut(app) else { return };
    let Some(claim) = a.claims.iter().position(|c| c.claim_id == claim_id) else { return };
    let c = &mut a.claims[claim];
    c.state = if rejection.is_some() { ClaimState::Rejected } else { ClaimState::Confirmed };
    c.decided = Some(at.entry());
    let what = if rejection.is_some() { What::BenefitRejected { claim } } else { What::BenefitConfirmed { claim } };
    c.rejection_reason = rejection;
    a.changes.push(Change { at, today, what });
}

fn status_json(s: &Status) -> Value {
    match s {
        Status::Waiting => json!({"state": "waiting"}),
        Status::Offered { offer, kindergarten } => {
            json!({"state": "offered", "offer": offer, "kindergarten": kindergarten})
        }
        Status::Accepted { offer, kindergarten } => {
            json!({"state": "accepted", "offer": offer, "kindergarten": kindergarten})
        }
        Status::Enrolled { offer, kindergarten } => {
            json!({"state": "enrolled", "offer": offer, "kindergarten": kindergarten})
        }
        Status::Withdrawn { reason } => json!({"state": "withdrawn", "reason": reason}),
    }
}

fn status_name(s: &Status) -> &'static str {
    match s {
        Status::Waiting => "waiting",
        Status::Offered { .. } => "offered",
        Status::Accepted { .. } => "accepted",
        Status::Enrolled { .. } => "enrolled",
        Status::Withdrawn { .. } => "withdrawn",
    }
}

/// An application as the order sees it at some point of its history: how many of its claims and
/// sibling links exist then, the claims' states then, and whether it is waiting then.
#[derive(Clone)]
#[cfg_attr(not(test), allow(dead_code))] // `id` and `present`: the oracle's (`moves`)
struct Sim<'a> {
    id: &'a str,
    app: &'a App,
    present: bool,
    waiting: bool,
    claims: Vec<ClaimState>,
    siblings: usize,
}

impl<'a> Sim<'a> {
    fn now(id: &'a str, app: &'a App) -> Self {
        Sim {
            id,
            app,
            present: true,
            waiting: app.status == Status::Waiting,
            claims: app.claims.iter().map(|c| c.state).collect(),
            siblings: app.siblings.len(),
        }
    }

    #[cfg(test)]
    fn empty(id: &'a str, app: &'a App) -> Self {
        Sim { id, app, present: false, waiting: false, claims: Vec::new(), siblings: 0 }
    }

    /// The tier in the territory-wide order (`kindergarten: None`, no sibling right) or in one
    /// kindergarten's order.
    fn tier_in(&self, rules: &QueueRules, kindergarten: Option<&str>, today: Days) -> (usize, Vec<TierReason>) {
        let claims: Vec<ClaimRef> = (self.app.claims.iter().zip(&self.claims))
            .map(|(c, s)| ClaimRef { category: &c.category, recheck_on: c.recheck_on, state: *s })
            .collect();
        let siblings: Vec<&str> = self.app.siblings[..self.siblings].iter().map(|s| s.kindergarten.as_str()).collect();
        queue_order::tier_of(rules, &claims, &siblings, &self.app.preferred, kindergarten, today)
    }

    fn tier_why(&self, rules: &QueueRules, today: Days) -> (usize, Vec<TierReason>) {
        self.tier_in(rules, None, today)
    }

    /// The tier index alone (what [`Sim::tier_in`] says, without its reasons or allocations).
    fn rank(&self, rules: &QueueRules, kindergarten: Option<&str>, today: Days) -> usize {
        let claims = (self.app.claims.iter().zip(&self.claims)).map(|(c, s)| ClaimRef {
            category: &c.category,
            recheck_on: c.recheck_on,
            state: *s,
        });
        let siblings = self.app.siblings[..self.siblings].iter().map(|s| s.kindergarten.as_str());
        queue_order::tier_rank(rules, claims, siblings, &self.app.preferred, kindergarten, today)
    }

    fn key(&self, rules: &QueueRules, today: Days) -> OrderKey<'a> {
        queue_order::order_key(self.rank(rules, None, today), self.app.applied_at, &self.app.number)
    }

    fn key_in(&self, rules: &QueueRules, kindergarten: &str, today: Days) -> OrderKey<'a> {
        queue_order::order_key(self.rank(rules, Some(kindergarten), today), self.app.applied_at, &self.app.number)
    }

    #[cfg(test)]
    fn apply(&mut self, what: &What) {
        match what {
            What::Submitted => (self.present, self.waiting) = (true, true),
            What::BenefitClaimed { .. } => self.claims.push(ClaimState::Claimed),
            What::BenefitConfirmed { claim } => set(&mut self.claims, *claim, ClaimState::Confirmed),
            What::BenefitRejected { claim } => set(&mut self.claims, *claim, ClaimState::Rejected),
            What::SiblingLinked { sibling } => self.siblings = sibling + 1,
            What::Withdrawn | What::Offered { .. } => self.waiting = false,
            What::OfferRefused { .. } => self.waiting = true,
            // A consent changes no order the position counts (the territory's, the preferred
            // kindergartens'); it is shown on its own (`consented`).
            What::Consented { .. }
            | What::OfferAccepted { .. }
            | What::AdmissionRefused { .. }
            | What::Enrolled { .. }
            | What::Transferred { .. } => {}
        }
    }

    /// The confirmed claims that are in force on `from` and lapsed on `to`.
    #[cfg(test)]
    fn lapsing(&self, from: Days, to: Days) -> Option<usize> {
        (self.app.claims.iter().zip(&self.claims))
            .position(|(c, s)| *s == ClaimState::Confirmed && c.recheck_on >= from && c.recheck_on < to)
    }
}

#[cfg(test)]
fn set(claims: &mut [ClaimState], i: usize, s: ClaimState) {
    if let Some(c) = claims.get_mut(i) {
        *c = s;
    }
}

#[cfg(test)]
fn is_ahead(rules: &QueueRules, b: &Sim, a: &Sim, today: Days) -> bool {
    b.present && b.waiting && a.present && b.key(rules, today) < a.key(rules, today)
}

/// How many of `sims` stand ahead of `sims[me]` on `today` ([`is_ahead`] for each, with `me`'s
/// key computed once).
#[cfg(test)]
fn count_ahead(rules: &QueueRules, sims: &[Sim], me: usize, today: Days) -> i64 {
    if !sims[me].present {
        return 0;
    }
    let mine = sims[me].key(rules, today);
    (sims.iter().enumerate()).filter(|(i, b)| *i != me && b.present && b.waiting && b.key(rules, today) < mine).count()
        as i64
}

/// An application's order key as it stands now (what `Sim::now(..).key_in(..)` gives, without
/// copying its claims).
fn key_now<'a>(rules: &QueueRules, app: &'a App, kindergarten: Option<&str>, today: Days) -> OrderKey<'a> {
    let claims =
        app.claims.iter().map(|c| ClaimRef { category: &c.category, recheck_on: c.recheck_on, state: c.state });
    let siblings = app.siblings.iter().map(|s| s.kindergarten.as_str());
    let rank = queue_order::tier_rank(rules, claims, siblings, &app.preferred, kindergarten, today);
    queue_order::order_key(rank, app.applied_at, &app.number)
}

impl KindergartenQueues {
    /// A model whose kept group replays hold at most `budget` bytes together (the default:
    /// [`REPLAYS_BUDGET`]); 0 keeps none (every answer replays its group from zero).
    pub fn with_replay_budget(budget: usize) -> Self {
        KindergartenQueues { replays: std::sync::Mutex::new(Replays::new(budget)), ..Default::default() }
    }

    /// What the kept group replays hold now: how many, their total size against the budget,
    /// the largest, and how many were dropped over the budget.
    pub fn replays_kept(&self) -> ReplaysKept {
        let r = self.replays.lock().expect("replays lock");
        let largest = r.groups.iter().max_by_key(|(g, k)| (k.size.bytes, std::cmp::Reverse(*g)));
        ReplaysKept {
            groups: r.groups.len(),
            total: r.total,
            budget: r.budget,
            largest: largest.map(|(g, k)| (g.clone(), k.size)),
            dropped: r.dropped,
            hits: r.hits,
        }
    }

    fn today(&self) -> Days {
        self.state.today.unwrap_or(Days::MIN)
    }

    /// The list an application's position is counted in: its next allocation year (its target
    /// year until that comes, then the territory's current one) and its age group then (`None`:
    /// the child is past the oldest group); out of the queue, the list of the year it left in
    /// (the one list that shows it).
    fn list_of<'a>(&'a self, t: &Territory, app: &App) -> (i64, Option<&'a str>) {
        let year = app
            .left_year
            .unwrap_or_else(|| queue_order::next_allocation_year(app.target_year, t.year(self.state.today)));
        (year, app.group_in(&self.profile.queue, year))
    }

    /// The age group named by the path's segment `i`, one of the region's.
    fn age_group_segment<'p>(&self, path: &[&'p str], i: usize) -> Result<&'p str, ViewError> {
        let group = segment(path, i, "an age group")?;
        if !self.profile.queue.age_groups.iter().any(|g| g.code == group) {
            let codes: Vec<&str> = self.profile.queue.age_groups.iter().map(|g| g.code.as_str()).collect();
            return Err(ViewError::NotFound(format!(
                "{group} is not an age group of this region ({})",
                codes.join(", ")
            )));
        }
        Ok(group)
    }

    /// `<territory>`: the territory's allocation year now and every list with a waiting
    /// application from it on (each waiting application counts in every later year it competes
    /// in), with how many wait in each.
    fn lists_body(&self, t: &Territory, territory: &str) -> Value {
        let rules = &self.profile.queue;
        let current = t.year(self.state.today);
        let mut waiting: BTreeMap<(i64, usize), u64> = BTreeMap::new();
        let last = t.apps.values().filter(|a| a.status == Status::Waiting).map(|a| a.target_year).max();
        for a in t.apps.values().filter(|a| a.status == Status::Waiting) {
            for year in current.max(a.target_year)..=last.unwrap_or(current).max(current) {
                let Some(g) = a.group_in(rules, year) else { break };
                let index = rules.age_groups.iter().position(|x| x.code == g).unwrap_or(usize::MAX);
                *waiting.entry((year, index)).or_default() += 1;
            }
        }
        let lists: Vec<Value> = waiting
            .iter()
            .map(|((year, index), n)| {
                let group = &rules.age_groups[*index].code;
                json!({"year": year, "age_group": group, "waiting": n, "path": format!("{territory}/{year}/{group}")})
            })
            .collect();
        json!({
            "territory": territory,
            "today": self.state.today.map(time::format_date),
            "allocation_year": current,
            "allocation_year_rule": YEAR_NOTE,
            "lists": lists,
        })
    }

    fn group_body(&self, t: &Territory, territory: &str, year: i64, group: &str) -> Value {
        let (rules, today) = (&self.profile.queue, self.today());
        let mut rows: Vec<(Option<OrderKey>, &str, &App)> = t
            .apps
            .iter()
            .filter(|(_, a)| a.shown_in(rules, year, group))
            .map(|(id, a)| {
                let key = (a.status == Status::Waiting).then(|| Sim::now(id, a).key(rules, today));
                (key, id.as_str(), a)
            })
            .collect();
        // Waiting applications in allocation order, then the others by application time.
        rows.sort_by(|x, y| match (&x.0, &y.0) {
            (Some(a), Some(b)) => a.cmp(b),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => (x.2.applied_at, &x.2.number).cmp(&(y.2.applied_at, &y.2.number)),
        });
        let mut position = 0u64;
        let applications: Vec<Value> = rows
            .iter()
            .map(|(key, id, a)| {
                let tier = key.map_or_else(|| Sim::now(id, a).tier_why(rules, today).0, |k| k.0);
                let pos = key.map(|_| {
                    position += 1;
                    position
                });
                json!({
                    "application": id,
                    "number": a.number,
                    "tier": rules.tier_name(tier),
                    "position": pos,
                    "status": status_name(&a.status),
                    "group_type": a.group_type,
                    "applied_at": a.applied_text,
                    "filed_at": a.filed_text,
                    "recorded_at": a.recorded_text,
                    "imported": imported_json(&a.imported),
                    "event": a.submitted.event,
                    "seq": a.submitted.seq,
                })
            })
            .collect();
        json!({
            "territory": territory,
            "allocation_year": year,
            "age_group": group,
            "today": self.state.today.map(time::format_date),
            "frozen_by_run": t.open_run.as_ref().filter(|r| t.runs.get(*r).is_some_and(|r| r.kind == "main")),
            "order": ORDER_NOTE,
            "waiting": position,
            "applications": applications,
        })
    }

    fn reason_json(&self, app: &App, r: &TierReason) -> Value {
        let claim = |i: usize, rule: &str, tier: Option<&str>| {
            let c = &app.claims[i];
            json!({
                "rule": rule,
                "claim": c.claim_id,
                "category": c.category,
                "tier": tier,
                "recheck_on": time::format_date(c.recheck_on),
                "claimed": c.claimed.json(),
                "decided": c.decided.as_ref().map(EntryRef::json),
                "rejection_reason": c.rejection_reason,
            })
        };
        match r {
            TierReason::BenefitConfirmed { claim: i, tier } => claim(*i, "benefit_confirmed", Some(tier)),
            TierReason::BenefitLapsed { claim: i } => claim(*i, "benefit_recheck_passed_counts_as_general", None),
            TierReason::BenefitUnconfirmed { claim: i } => claim(*i, "benefit_unconfirmed_counts_as_general", None),
            TierReason::BenefitRejected { claim: i } => claim(*i, "benefit_rejected", None),
            TierReason::SiblingAttends { sibling, tier } => {
                let s = &app.siblings[*sibling];
                json!({
                    "rule": "sibling_attends_this_kindergarten",
                    "kindergarten": s.kindergarten,
                    "sibling": s.sibling,
                    "tier": tier,
                    "event": s.linked.event,
                    "seq": s.linked.seq,
                })
            }
        }
    }

    fn application_body(&self, t: &Territory, territory: &str, id: &str, app: &App, generation: u64) -> Value {
        let (rules, today) = (&self.profile.queue, self.today());
        let (year, age_group) = self.list_of(t, app);
        let group: Vec<(&str, &App)> = match age_group {
            Some(g) => t
                .apps
                .iter()
                .filter(|(_, a)| a.group_in(rules, year) == Some(g))
                .map(|(i, a)| (i.as_str(), a))
                .collect(),
            None => Vec::new(),
        };
        let me_sim = Sim::now(id, app);
        let (tier, why) = me_sim.tier_why(rules, today);
        // A child past the oldest group competes in no list: no position.
        let waiting = app.status == Status::Waiting && age_group.is_some();
        let (position, ahead) = if waiting {
            let mut by_tier: BTreeMap<usize, u64> = (0..rules.tiers.len()).map(|i| (i, 0)).collect();
            let my_key = me_sim.key(rules, today);
            for (oid, other) in &group {
                if *oid != id && other.status == Status::Waiting {
                    let k = key_now(rules, other, None, today);
                    if k < my_key {
                        *by_tier.entry(k.0).or_default() += 1;
                    }
                }
            }
            let total: u64 = by_tier.values().sum();
            let per_tier: Vec<Value> =
                by_tier.iter().map(|(i, n)| json!({"tier": rules.tier_name(*i), "ahead": n})).collect();
            (Some(total + 1), json!({"total": total, "by_tier": per_tier}))
        } else {
            (None, Value::Null)
        };
        // A sibling link to a kindergarten the application does not prefer gives no right: said
        // too, so a family sees why a recorded link did not move it.
        let idle_siblings = app.siblings.iter().filter(|s| !app.preferred.contains(&s.kindergarten)).map(|s| {
            json!({"rule": "sibling_attends_kindergarten_not_preferred", "kindergarten": s.kindergarten,
                   "sibling": s.sibling, "tier": null, "event": s.linked.event, "seq": s.linked.seq})
        });
        let history: Vec<Value> = app.changes.iter().map(|c| self.change_json(t, app, c)).collect();
        let moves = self.replayed_moves(t, territory, id, app, generation, Render::Latest(MOVES_SHOWN));
        let by_kindergarten: Vec<Value> =
            app.preferred.iter().map(|kg| self.kindergarten_position(t, &group, id, app, kg)).collect();
        let consented: Vec<Value> =
            app.consented.iter().map(|(kg, at)| consent_json(t, &group, id, app, kg, at)).collect();
        let mut runs: Vec<(&String, &Run)> = t.runs.iter().filter(|(_, r)| runs_while_queued(app, r)).collect();
        runs.sort_by(|(x, a), (y, b)| (a.started.time, x).cmp(&(b.started.time, y)));
        let runs: Vec<Value> = runs
            .into_iter()
            .map(|(rid, r)| {
                let group = app.group_in(rules, r.year);
                let places: i64 = r
                    .places
                    .iter()
                    .filter(|p| Some(p.age_group.as_str()) == group && p.group_type == app.group_type)
                    .filter(|p| app.preferred.contains(&p.kindergarten))
                    .map(|p| p.places)
                    .sum();
                let mut v = json!({"run": rid, "kind": r.kind, "allocation_year": r.year, "age_group": group,
                                   "places_in_preferred_kindergartens": places,
                                   "finished": r.finished.as_ref().map(Dated::json)});
                r.started.put(&mut v);
                v
            })
            .collect();
        json!({
            "territory": territory,
            "application": id,
            "number": app.number,
            "learner": app.learner,
            "allocation_year": year,
            "age_group": age_group,
            // A list of a past allocation year is not answered (`<territory>/<year>/..` is from the
            // current year on): an application that left the queue then names none.
            "list": age_group.filter(|_| year >= t.year(self.state.today)).map(|g| format!("{territory}/{year}/{g}")),
            "target_year": app.target_year,
            "age_groups_by_year": app.lists(rules).skip_while(|(y, _)| *y < year)
                .map(|(y, g)| json!({"year": y, "age_group": g})).collect::<Vec<_>>(),
            "group_type": app.group_type,
            "preferred": app.preferred,
            "desired_date": app.desired_date,
            "applied_at": app.applied_text,
            "filed_at": app.filed_text,
            "recorded_at": app.recorded_text,
            "imported": imported_json(&app.imported),
            "event": app.submitted.event,
            "seq": app.submitted.seq,
            "today": self.state.today.map(time::format_date),
            "order": ORDER_NOTE,
            "status": status_json(&app.status),
            "position": position,
            "tier": {"code": rules.tier_name(tier), "rank": tier + 1, "of": rules.tiers.len()},
            "why": why.iter().map(|r| self.reason_json(app, r)).chain(idle_siblings).collect::<Vec<_>>(),
            "ahead": ahead,
            "by_kindergarten": by_kindergarten,
            "consented": consented,
            "moves": {
                "total": moves.total,
                "ahead_change": moves.ahead_change,
                "by_reason": moves.by_reason,
                "latest": moves.rendered,
                "all": format!("{territory}/applications/{id}/moves"),
            },
            "allocation_runs_since_applied": runs,
            "history": history,
        })
    }

    fn change_json(&self, t: &Territory, app: &App, c: &Change) -> Value {
        let mut v = json!({"type": c.what.event_type()});
        c.at.put(&mut v);
        let o = v.as_object_mut().expect("an object");
        let mut put = |k: &str, x: Value| {
            o.insert(k.to_owned(), x);
        };
        match &c.what {
            What::Submitted | What::Withdrawn => {}
            What::BenefitClaimed { claim } | What::BenefitConfirmed { claim } | What::BenefitRejected { claim } => {
                put("claim", json!(app.claims[*claim].claim_id));
                put("category", json!(app.claims[*claim].category));
            }
            What::SiblingLinked { sibling } => put("kindergarten", json!(app.siblings[*sibling].kindergarten)),
            What::Consented { kindergarten } => put("kindergarten", json!(kindergarten)),
            What::Offered { offer } | What::OfferAccepted { offer } | What::OfferRefused { offer } => {
                put("offer", json!(offer));
                if let Some(off) = t.offers.get(offer) {
                    put("kindergarten", json!(off.kindergarten));
                    put("run", json!(off.run));
                }
            }
            What::AdmissionRefused { kindergarten, reason } => {
                put("kindergarten", json!(kindergarten));
                put("reason", json!(reason));
            }
            What::Enrolled { kindergarten, order_ref } => {
                put("kindergarten", json!(kindergarten));
                put("order_ref", json!(order_ref));
            }
            What::Transferred { from, to } => {
                put("from_kindergarten", json!(from));
                put("to_kindergarten", json!(to));
            }
        }
        v
    }

    /// The entries since `me` was filed that changed how many applications stand ahead of it
    /// while it waited: the age group's history replayed in log order, each entry's effect on
    /// `me` measured before and after it (and a benefit's re-check date passing, measured when
    /// "today" moves past it). `ahead_change` +1 means one more application ahead. The test
    /// oracle of [`GroupReplay`], which gives the same moves from one replay kept between answers.
    #[cfg(test)]
    fn moves(&self, t: &Territory, group: &[(&str, &App)], me_id: &str) -> Vec<Value> {
        let rules = &self.profile.queue;
        let mut sims: Vec<Sim> = group.iter().map(|(i, a)| Sim::empty(i, a)).collect();
        let me = group.iter().position(|(i, _)| *i == me_id).expect("the application is in its group");
        let mut changes: Vec<(usize, &Change)> =
            group.iter().enumerate().flat_map(|(i, (_, a))| a.changes.iter().map(move |c| (i, c))).collect();
        changes.sort_by_key(|(_, c)| c.at.seq);
        let mut moves = Vec::new();
        let mut today = Days::MIN;
        // Every claim's re-check date with its application, by date: only those in a window can
        // lapse in it, so a step of "today" looks at them, not at the whole group.
        let mut rechecks: Vec<(Days, usize)> = (group.iter().enumerate())
            .flat_map(|(i, (_, a))| a.claims.iter().map(move |c| (c.recheck_on, i)))
            .collect();
        rechecks.sort_unstable();
        let mut candidates: Vec<usize> = Vec::new();
        let mut lapses = |sims: &[Sim], from: Days, to: Days, moves: &mut Vec<Value>| {
            if !(sims[me].present && sims[me].waiting) || to <= from {
                return;
            }
            if let Some(c) = sims[me].lapsing(from, to) {
                let delta = count_ahead(rules, sims, me, to) - count_ahead(rules, sims, me, from);
                if delta != 0 {
                    moves.push(lapse_json(sims[me].app, me_id, c, delta, true));
                }
                return;
            }
            // The applications with a re-check date in [from, to), in group order.
            let lo = rechecks.partition_point(|(d, _)| *d < from);
            let hi = rechecks.partition_point(|(d, _)| *d < to);
            candidates.clear();
            candidates.extend(rechecks[lo..hi].iter().map(|(_, i)| *i));
            candidates.sort_unstable();
            candidates.dedup();
            for &i in &candidates {
                let b = &sims[i];
                let Some(c) = (i != me).then(|| b.lapsing(from, to)).flatten() else { continue };
                let delta =
                    i64::from(is_ahead(rules, b, &sims[me], to)) - i64::from(is_ahead(rules, b, &sims[me], from));
                if delta != 0 {
                    moves.push(lapse_json(b.app, b.id, c, delta, false));
                }
            }
        };
        for (i, c) in changes {
            if c.today > today {
                lapses(&sims, today, c.today, &mut moves);
                today = c.today;
            }
            let was_waiting = sims[me].present && sims[me].waiting;
            let before = if i == me {
                count_ahead(rules, &sims, me, today)
            } else {
                i64::from(is_ahead(rules, &sims[i], &sims[me], today))
            };
            sims[i].apply(&c.what);
            let after = if i == me {
                count_ahead(rules, &sims, me, today)
            } else {
                i64::from(is_ahead(rules, &sims[i], &sims[me], today))
            };
            let waiting_now = sims[me].present && sims[me].waiting;
            if was_waiting && waiting_now && after != before {
                let mut m = self.change_json(t, sims[i].app, c);
                let o = m.as_object_mut().expect("an object");
                o.insert("application".into(), json!(sims[i].id));
                o.insert("ahead_change".into(), json!(after - before));
                o.insert("reason".into(), json!(move_reason(&c.what, i == me)));
                if i != me {
                    withhold_others_benefit(o);
                }
                moves.push(m);
            }
        }
        lapses(&sims, today, self.today(), &mut moves);
        moves
    }
}

/// What a view says about the order it shows.
const YEAR_NOTE: &str = "a list is one allocation year's (named by its 1 september) age group: the waiting \
applications whose desired date falls in that academic year or an earlier one, each in the age group of its age on \
that 1 september (a child still waiting after its desired year competes in the next year's allocation in its new \
group); the allocation year now is the open allocation run's, else, from 1 april, the coming 1 september's and, \
before it, the current academic year's";

const ORDER_NOTE: &str = "by tier, then the time of filing (filed_at: the ledger's recorded_at; an imported \
application keeps its original time, its occurred_at, and recorded_at is when the ledger imported it), then number; the territory-wide position counts no sibling right: the preferential right of a \
sibling (преимущественное) counts only in the order of the kindergarten the sibling attends (by_kindergarten)";

/// Whether the family refused an offer of `kg` (it no longer stands ahead in `kg`'s order, as the
/// rules have it).
fn refused_offer_of(t: &Territory, app: &App, kg: &str) -> bool {
    app.changes.iter().any(|c| match &c.what {
        What::OfferRefused { offer } => t.offers.get(offer).is_some_and(|o| o.kindergarten == kg),
        _ => false,
    })
}

/// A kindergarten the family consented to (not preferred): it may be offered there only when no
/// application that prefers it waits, so what stands before it is every waiting application of
/// its age group and group type that prefers it (and has not refused its offer), as the rules
/// judge an offer (`offer_out_of_order`).
fn consent_json(t: &Territory, group: &[(&str, &App)], id: &str, app: &App, kg: &str, at: &EntryRef) -> Value {
    // Only in a list it competes in (`group` holds it then).
    let competes = group.iter().any(|(oid, _)| *oid == id);
    let waiting = competes && app.status == Status::Waiting && !refused_offer_of(t, app, kg);
    let preferring_ahead = waiting.then(|| {
        group
            .iter()
            .filter(|(oid, o)| *oid != id && o.group_type == app.group_type && o.preferred.iter().any(|p| p == kg))
            .filter(|(_, o)| o.status == Status::Waiting && !refused_offer_of(t, o, kg))
            .count()
    });
    json!({
        "kindergarten": kg,
        "event": at.event,
        "seq": at.seq,
        "preferring_ahead": preferring_ahead,
        "refused_offer": refused_offer_of(t, app, kg),
        "rule": "offered_only_when_no_application_preferring_it_waits",
    })
}

/// Whether `run` fell while the application was in the queue: a run of an allocation year it
/// competes in (from its target year to the year it left in), started after its filing and, if
/// it left the queue, not after it left (by the entries' dates, `Dated::time`, not log positions:
/// an import is appended long after it happened).
fn runs_while_queued(app: &App, run: &Run) -> bool {
    run.year >= app.target_year
        && app.left_year.is_none_or(|y| run.year <= y)
        && run.started.time >= app.applied_at
        && app.left_at.is_none_or(|l| run.started.time <= l)
}

fn imported_json(imported: &Option<(String, String)>) -> Value {
    imported.as_ref().map_or(Value::Null, |(system, record)| json!({"system": system, "record": record}))
}

impl KindergartenQueues {
    /// The application's place in one preferred kindergarten's order: among the waiting
    /// applications of its age group and group type that prefer that kindergarten and have not
    /// refused an offer of it (the ones an offer of a place there must follow), by the tier
    /// there (a sibling attending it counts).
    fn kindergarten_position(&self, t: &Territory, group: &[(&str, &App)], id: &str, app: &App, kg: &str) -> Value {
        let (rules, today) = (&self.profile.queue, self.today());
        let me = Sim::now(id, app);
        let (tier, why) = me.tier_in(rules, Some(kg), today);
        let refused = refused_offer_of(t, app, kg);
        let competes = group.iter().any(|(oid, _)| *oid == id);
        let position = (competes && me.waiting && !refused).then(|| {
            let my_key = me.key_in(rules, kg, today);
            let ahead = group
                .iter()
                .filter(|(oid, o)| *oid != id && o.group_type == app.group_type && o.preferred.iter().any(|p| p == kg))
                .filter(|(_, o)| o.status == Status::Waiting && !refused_offer_of(t, o, kg))
                .filter(|(_, o)| key_now(rules, o, Some(kg), today) < my_key)
                .count() as u64;
            ahead + 1
        });
        json!({
            "kindergarten": kg,
            "tier": rules.tier_name(tier),
            "position": position,
            "refused_offer": refused,
            "why": why.iter().map(|r| self.reason_json(app, r)).collect::<Vec<_>>(),
        })
    }
}

fn move_reason(what: &What, own: bool) -> &'static str {
    match (what, own) {
        (What::BenefitConfirmed { .. }, true) => "own_benefit_confirmed",
        (What::SiblingLinked { .. }, true) => "own_sibling_linked",
        (What::BenefitConfirmed { .. }, false) => "benefit_confirmed_moved_ahead",
        (What::SiblingLinked { .. }, false) => "sibling_linked_moved_ahead",
        (What::Withdrawn, _) => "withdrawn_ahead",
        (What::Offered { .. }, _) => "offered_a_place_ahead",
        (What::OfferRefused { .. }, _) => "refused_offer_back_ahead",
        (What::Submitted, _) => "applied_earlier_ahead",
        _ => "other",
    }
}

/// A move caused by another family's application shows that a benefit of theirs was claimed,
/// confirmed, rejected or lapsed (its reason and event), never which benefit or claim: a
/// category names a child's or a parent's disability, or a parent's profession (DOMAIN
/// "Privacy": special categories of personal data), and the answer is read by every family
/// the change moved.
fn withhold_others_benefit(o: &mut serde_json::Map<String, Value>) {
    o.remove("category");
    o.remove("claim");
}

/// A lapse of a confirmed benefit that moved the application: its own (`own`), shown whole, or
/// another's, without its category and claim ([`withhold_others_benefit`]).
fn lapse_json(app: &App, id: &str, claim: usize, delta: i64, own: bool) -> Value {
    let c = &app.claims[claim];
    let decided = c.decided.as_ref().unwrap_or(&c.claimed);
    let mut v = json!({
        "type": "queue.benefit_confirmed",
        "event": decided.event,
        "seq": decided.seq,
        "application": id,
        "claim": c.claim_id,
        "category": c.category,
        "recheck_on": time::format_date(c.recheck_on),
        "ahead_change": delta,
        "reason": LAPSE_REASON,
    });
    if !own {
        withhold_others_benefit(v.as_object_mut().expect("an object"));
    }
    v
}

/// One age group's history replayed for every application of the group at once, kept between
/// answers and carried forward by the entries that arrive after it (the group's changes only
/// grow, in log order): what `KindergartenQueues::moves` replays for one application per
/// answer, done once for all of them. Each application's moves are kept as references into the
/// state (rendered per answer, as the replay renders them); the lapses between the replay's
/// last day and "today" are computed per answer (they depend on "today", not on an entry).
#[derive(Default)]
struct GroupReplay {
    /// The group's generation ([`AnswerCache::groups`]) the replay has seen every change of.
    generation: Option<u64>,
    /// The territory's applications when the group's members were last looked for.
    territory_apps: usize,
    /// Application ids in the order they joined the replay, and back.
    ids: Vec<String>,
    index: std::collections::HashMap<String, usize>,
    tracks: Vec<Track>,
    /// The day of the last change replayed.
    today: Option<Days>,
    /// The ids' indices in id order (the group's order, in which lapses are listed).
    by_id: Vec<usize>,
}

/// One application in a [`GroupReplay`]: where it stands after the changes replayed (what
/// [`Sim`] holds), its order key's parts, and its moves so far.
struct Track {
    present: bool,
    waiting: bool,
    /// Its claims as replayed: (category, re-check date, state).
    claims: Vec<(String, Days, ClaimState)>,
    applied_at: Nanos,
    number: String,
    /// Its changes replayed.
    consumed: usize,
    /// The tier index in the territory-wide order on the replay's day.
    rank: usize,
    moves: Vec<MoveRef>,
}

/// A move kept by reference: a change (the application it is of, the change's index) or a
/// lapse (the application, the claim's index), and how many more stand ahead after it.
#[derive(Clone, Copy)]
enum MoveRef {
    Change { app: u32, change: u32, delta: i32 },
    Lapse { app: u32, claim: u32, delta: i32 },
}

impl Track {
    fn of(app: &App) -> Self {
        Track {
            present: false,
            waiting: false,
            claims: Vec::new(),
            applied_at: app.applied_at,
            number: app.number.clone(),
            consumed: 0,
            rank: usize::MAX,
            moves: Vec::new(),
        }
    }

    fn rank_on(&self, rules: &QueueRules, day: Days) -> usize {
        let claims = self.claims.iter().map(|(category, recheck_on, state)| ClaimRef {
            category,
            recheck_on: *recheck_on,
            state: *state,
        });
        queue_order::tier_rank(rules, claims, std::iter::empty(), &[], None, day)
    }

    fn key(&self, rank: usize) -> OrderKey<'_> {
        queue_order::order_key(rank, self.applied_at, &self.number)
    }

    fn standing(&self) -> bool {
        self.present && self.waiting
    }

    /// The first confirmed claim in force on `from` and lapsed on `to` (as `Sim::lapsing`).
    fn lapsing(&self, from: Days, to: Days) -> Option<usize> {
        self.claims.iter().position(|(_, r, s)| *s == ClaimState::Confirmed && *r >= from && *r < to)
    }

    fn apply(&mut self, app: &App, what: &What) {
        match what {
            What::Submitted => (self.present, self.waiting) = (true, true),
            What::BenefitClaimed { claim } => {
                if let Some(c) = app.claims.get(*claim) {
                    self.claims.push((c.category.clone(), c.recheck_on, ClaimState::Claimed));
                }
            }
            What::BenefitConfirmed { claim } => {
                if let Some(c) = self.claims.get_mut(*claim) {
                    c.2 = ClaimState::Confirmed;
                }
            }
            What::BenefitRejected { claim } => {
                if let Some(c) = self.claims.get_mut(*claim) {
                    c.2 = ClaimState::Rejected;
                }
            }
            What::Withdrawn | What::Offered { .. } => self.waiting = false,
            What::OfferRefused { .. } => self.waiting = true,
            // No order the position counts changes (see `Sim::apply`).
            What::SiblingLinked { .. }
            | What::Consented { .. }
            | What::OfferAccepted { .. }
            | What::AdmissionRefused { .. }
            | What::Enrolled { .. }
            | What::Transferred { .. } => {}
        }
    }
}

/// Whether `b` stands ahead of `a` under the given ranks (as `is_ahead`).
fn track_ahead(b: &Track, b_rank: usize, a: &Track, a_rank: usize) -> bool {
    b.standing() && a.present && b.key(b_rank) < a.key(a_rank)
}

/// The applications with a claim lapsing in some days, in id order, each with the claim's
/// index; and every application's rank on the last of those days.
type Lapsing = (Vec<(usize, usize)>, Vec<usize>);

impl GroupReplay {
    /// What the replay holds ([`ReplaySize`]): its applications, their moves, and the bytes of
    /// both (each id is held twice: in `ids` and as a key of `index`).
    fn size(&self) -> ReplaySize {
        use std::mem::size_of;
        let mut bytes = size_of::<GroupReplay>()
            + self.ids.capacity() * size_of::<String>()
            + self.index.capacity() * (size_of::<(String, usize)>() + 1)
            + self.tracks.capacity() * size_of::<Track>()
            + self.by_id.capacity() * size_of::<usize>();
        let mut moves = 0;
        for (id, t) in self.ids.iter().zip(&self.tracks) {
            bytes += 2 * id.capacity() + t.number.capacity() + t.moves.capacity() * size_of::<MoveRef>();
            bytes += t.claims.capacity() * size_of::<(String, Days, ClaimState)>();
            bytes += t.claims.iter().map(|c| c.0.capacity()).sum::<usize>();
            moves += t.moves.len();
        }
        ReplaySize { tracks: self.tracks.len(), moves, bytes }
    }

    /// How many stand ahead of `me` under `ranks`, or the ranks on the replay's day (as
    /// `count_ahead`).
    fn count_ahead(&self, me: usize, ranks: Option<&[usize]>) -> i64 {
        let rank = |i: usize| ranks.map_or(self.tracks[i].rank, |r| r[i]);
        let m = &self.tracks[me];
        if !m.present {
            return 0;
        }
        let mine = m.key(rank(me));
        (self.tracks.iter().enumerate()).filter(|(i, b)| *i != me && b.standing() && b.key(rank(*i)) < mine).count()
            as i64
    }

    fn ranks(&self) -> Vec<usize> {
        self.tracks.iter().map(|t| t.rank).collect()
    }

    /// The lapses of the days `from..to` for `me` (as the oracle's `lapses`), given the
    /// applications with a lapsing claim in id order and the ranks on both days.
    fn lapses_for(&self, me: usize, lapsing: &[(usize, usize)], ranks: (&[usize], &[usize])) -> Vec<MoveRef> {
        let m = &self.tracks[me];
        if !m.standing() {
            return Vec::new();
        }
        if let Some(&(_, claim)) = lapsing.iter().find(|(i, _)| *i == me) {
            let delta = self.count_ahead(me, Some(ranks.1)) - self.count_ahead(me, Some(ranks.0));
            let lapse = MoveRef::Lapse { app: me as u32, claim: claim as u32, delta: delta as i32 };
            return if delta != 0 { vec![lapse] } else { Vec::new() };
        }
        let mut out = Vec::new();
        for &(i, claim) in lapsing {
            let b = &self.tracks[i];
            let delta = i64::from(track_ahead(b, ranks.1[i], m, ranks.1[me]))
                - i64::from(track_ahead(b, ranks.0[i], m, ranks.0[me]));
            if delta != 0 {
                out.push(MoveRef::Lapse { app: i as u32, claim: claim as u32, delta: delta as i32 });
            }
        }
        out
    }

    /// The applications with a claim lapsing in `from..to`, in id order, with the claim, and
    /// the ranks on `to` (`None`: none lapses, every rank stays).
    fn lapsing(&self, rules: &QueueRules, from: Days, to: Days) -> Option<Lapsing> {
        if to <= from {
            return None;
        }
        let lapsing: Vec<(usize, usize)> =
            self.by_id.iter().filter_map(|&i| self.tracks[i].lapsing(from, to).map(|c| (i, c))).collect();
        if lapsing.is_empty() {
            return None;
        }
        let mut to_ranks = self.ranks();
        for &(i, _) in &lapsing {
            to_ranks[i] = self.tracks[i].rank_on(rules, to);
        }
        Some((lapsing, to_ranks))
    }

    /// Replays the group's changes not replayed yet (every application's since the last call),
    /// in log order, keeping each application's moves.
    fn advance(&mut self, rules: &QueueRules, t: &Territory, (year, group): (i64, &str), generation: u64) {
        if self.generation == Some(generation) && self.territory_apps == t.apps.len() {
            return;
        }
        if self.territory_apps != t.apps.len() {
            for (id, a) in t.apps.iter().filter(|(_, a)| a.group_in(rules, year) == Some(group)) {
                if !self.index.contains_key(id) {
                    self.index.insert(id.clone(), self.ids.len());
                    self.ids.push(id.clone());
                    self.tracks.push(Track::of(a));
                }
            }
            let mut by_id: Vec<usize> = (0..self.ids.len()).collect();
            by_id.sort_by(|a, b| self.ids[*a].cmp(&self.ids[*b]));
            self.by_id = by_id;
            self.territory_apps = t.apps.len();
        }
        let apps: Vec<&App> = self.ids.iter().map(|id| &t.apps[id]).collect();
        let mut pending: Vec<(u64, usize, usize)> = (self.tracks.iter().enumerate())
            .flat_map(|(i, tr)| (tr.consumed..apps[i].changes.len()).map(move |c| (i, c)))
            .map(|(i, c)| (apps[i].changes[c].at.seq, i, c))
            .collect();
        pending.sort_unstable();
        for (_, i, ci) in pending {
            let c = &apps[i].changes[ci];
            let today = self.today.unwrap_or(Days::MIN);
            if self.today.is_none() || c.today > today {
                if let Some((lapsing, to_ranks)) = self.today.and_then(|from| self.lapsing(rules, from, c.today)) {
                    let from_ranks = self.ranks();
                    for me in 0..self.tracks.len() {
                        let moves = self.lapses_for(me, &lapsing, (&from_ranks, &to_ranks));
                        self.tracks[me].moves.extend(moves);
                    }
                    for (tr, r) in self.tracks.iter_mut().zip(to_ranks) {
                        tr.rank = r;
                    }
                }
                self.today = Some(c.today);
            }
            let today = c.today.max(today);
            let before = (self.tracks[i].standing(), self.tracks[i].rank);
            let own_before = self.count_ahead(i, None);
            self.tracks[i].apply(apps[i], &c.what);
            self.tracks[i].consumed = ci + 1;
            self.tracks[i].rank = self.tracks[i].rank_on(rules, today);
            let own_after = self.count_ahead(i, None);
            let change = ci as u32;
            if before.0 && self.tracks[i].standing() && own_after != own_before {
                let delta = (own_after - own_before) as i32;
                self.tracks[i].moves.push(MoveRef::Change { app: i as u32, change, delta });
            }
            // Every other application standing: whether this one stood ahead of it before and after.
            let b = &self.tracks[i];
            let (b_before, b_after) = (before.0, b.standing());
            let (key_before, key_after) = (b.key(before.1), b.key(b.rank));
            let mut found: Vec<(usize, i32)> = Vec::new();
            for (j, a) in self.tracks.iter().enumerate() {
                if j == i || !a.standing() {
                    continue;
                }
                let mine = a.key(a.rank);
                let delta = i32::from(b_after && key_after < mine) - i32::from(b_before && key_before < mine);
                if delta != 0 {
                    found.push((j, delta));
                }
            }
            for (j, delta) in found {
                self.tracks[j].moves.push(MoveRef::Change { app: i as u32, change, delta });
            }
        }
        self.generation = Some(generation);
    }
}

impl KindergartenQueues {
    /// The territory, id and application of `<territory>/applications/<id>`.
    fn application<'p>(&self, path: &[&'p str]) -> Result<(&'p str, &'p str, &App), ViewError> {
        let territory = segment(path, 0, "a territory")?;
        let id = segment(path, 2, "an application id")?;
        let t = (self.state.territories.get(territory))
            .ok_or_else(|| ViewError::NotFound(format!("territory {territory} has no kindergarten queue")))?;
        let app = (t.apps.get(id))
            .ok_or_else(|| ViewError::NotFound(format!("the queue of {territory} has no application {id}")))?;
        Ok((territory, id, app))
    }

    /// The generations of the application's territory and age group, and its cached answer if
    /// one computed under them still holds "today" (the tree is copied after the cache's lock
    /// is let go).
    fn cached_answer(&self, territory: &str, id: &str, app: &App) -> ((u64, u64), Option<View>) {
        let today = self.today();
        let (list, past) = match self.state.territories.get(territory) {
            Some(t) => {
                let (year, group) = self.list_of(t, app);
                (list_key(year, group.unwrap_or("")), year < t.year(self.state.today))
            }
            None => (String::new(), false),
        };
        let (generations, hit) = {
            let answers = self.answers.lock().expect("answer cache lock");
            let generations = answers.generations(territory, &list);
            let hit = (answers.bodies.get(&(territory.to_owned(), id.to_owned())))
                .filter(|a| (a.territory, a.group) == generations && (a.from..=a.until).contains(&today))
                .filter(|a| a.list == list && a.past == past);
            (generations, hit.map(|a| (a.from, a.body.clone())))
        };
        let view = hit.map(|(from, shared)| {
            let mut body = Value::clone(&shared);
            if from != today {
                body["today"] = json!(self.state.today.map(time::format_date));
            }
            View { scope: application_scope(territory, app), body }
        });
        (generations, view)
    }

    /// An application's moves from its age group's [`GroupReplay`] (carried forward to the
    /// group's `generation` first), then the lapses up to "today": what `Self::moves` gives.
    /// `render` picks which of them are written out (all, or the latest few); each move's
    /// reason is counted for every move.
    fn replayed_moves(
        &self,
        t: &Territory,
        territory: &str,
        id: &str,
        app: &App,
        generation: u64,
        render: Render,
    ) -> Moves {
        let rules = &self.profile.queue;
        let (year, Some(group)) = self.list_of(t, app) else { return Moves::default() };
        let key = (territory.to_owned(), list_key(year, group));
        let replay = self.replays.lock().expect("replays lock").take(key.clone());
        let mut r = replay.lock().expect("group replay lock");
        r.advance(rules, t, (year, group), generation);
        // Counted and bounded while this replay is held (so no later size is overwritten by an
        // earlier one); the other replays are not locked, only let go of.
        let dropped = self.replays.lock().expect("replays lock").resize(&key, &replay, r.size());
        drop(dropped);
        let mut moves = Moves::default();
        let Some(&me) = r.index.get(id) else { return moves };
        let mut refs = r.tracks[me].moves.clone();
        if let Some(from) = r.today {
            if let Some((lapsing, to_ranks)) = r.lapsing(rules, from, self.today()) {
                refs.extend(r.lapses_for(me, &lapsing, (&r.ranks(), &to_ranks)));
            }
        }
        let app_of = |i: u32| (&r.ids[i as usize], &t.apps[&r.ids[i as usize]]);
        for m in &refs {
            let (reason, delta) = match *m {
                MoveRef::Change { app: i, change, delta } => {
                    (move_reason(&app_of(i).1.changes[change as usize].what, i as usize == me), delta)
                }
                MoveRef::Lapse { delta, .. } => (LAPSE_REASON, delta),
            };
            *moves.by_reason.entry(reason).or_default() += 1;
            moves.ahead_change += i64::from(delta);
        }
        moves.total = refs.len();
        let shown = match render {
            Render::All => &refs[..],
            Render::Latest(n) => &refs[refs.len().saturating_sub(n)..],
        };
        moves.rendered = shown
            .iter()
            .map(|m| match *m {
                MoveRef::Change { app: i, change, delta } => {
                    let (oid, other) = app_of(i);
                    let c = &other.changes[change as usize];
                    let mut v = self.change_json(t, other, c);
                    let o = v.as_object_mut().expect("an object");
                    o.insert("application".into(), json!(oid));
                    o.insert("ahead_change".into(), json!(i64::from(delta)));
                    o.insert("reason".into(), json!(move_reason(&c.what, i as usize == me)));
                    if i as usize != me {
                        withhold_others_benefit(o);
                    }
                    v
                }
                MoveRef::Lapse { app: i, claim, delta } => {
                    let (oid, other) = app_of(i);
                    lapse_json(other, oid, claim as usize, i64::from(delta), i as usize == me)
                }
            })
            .collect();
        moves
    }

    /// `<territory>/applications/<id>/moves`: every move of an application since it was filed,
    /// in log order (its answer shows the count, the net change and the latest few).
    fn moves_body(&self, t: &Territory, territory: &str, id: &str, app: &App, generation: u64) -> Value {
        let moves = self.replayed_moves(t, territory, id, app, generation, Render::All);
        json!({
            "territory": territory,
            "application": id,
            "today": self.state.today.map(time::format_date),
            "total": moves.total,
            "ahead_change": moves.ahead_change,
            "moves": moves.rendered,
        })
    }
}

/// Which of an application's moves are written out.
#[derive(Clone, Copy)]
enum Render {
    All,
    Latest(usize),
}

/// An application's moves: how many, their net change of the applications ahead, how many of
/// each reason, and the ones written out.
#[derive(Default)]
struct Moves {
    total: usize,
    ahead_change: i64,
    by_reason: BTreeMap<&'static str, usize>,
    rendered: Vec<Value>,
}

/// How many of an application's latest moves its answer shows (the rest are one path away:
/// a family waiting for years has thousands, and the answer of its position stays small).
const MOVES_SHOWN: usize = 10;

/// The reason of a move made by a benefit's re-check date passing.
const LAPSE_REASON: &str = "benefit_recheck_date_passed";

fn run_body(rules: &QueueRules, t: &Territory, territory: &str, id: &str, run: &Run) -> Value {
    let offers: Vec<Value> = run
        .offers
        .iter()
        .filter_map(|o| t.offers.get(o).map(|x| (o, x)))
        .map(|(oid, o)| {
            let outcome = o.steps.last().map_or("pending", |(s, _)| match s {
                Step::Accepted => "accepted",
                Step::Refused { .. } => "refused",
                Step::Withdrawn { .. } => "withdrawn",
                Step::Enrolled { .. } => "enrolled",
                Step::Transferred { .. } => "transferred",
            });
            let steps: Vec<Value> = o
                .steps
                .iter()
                .map(|(s, at)| {
                    let mut v = match s {
                        Step::Accepted => json!({"step": "accepted"}),
                        Step::Refused { reason } => json!({"step": "refused", "reason": reason}),
                        Step::Withdrawn { reason } => json!({"step": "withdrawn", "reason": reason}),
                        Step::Enrolled { order_ref } => json!({"step": "enrolled", "order_ref": order_ref}),
                        Step::Transferred { from, to } => {
                            json!({"step": "transferred", "from_kindergarten": from, "to_kindergarten": to})
                        }
                    };
                    at.put(&mut v);
                    v
                })
                .collect();
            let number = t.apps.get(&o.application).map(|a| a.number.as_str());
            let mut v = json!({"offer": oid, "application": o.application, "number": number,
                               "kindergarten": o.kindergarten, "outcome": outcome, "steps": steps});
            o.offered.put(&mut v);
            v
        })
        .collect();
    let places: Vec<Value> = run
        .places
        .iter()
        .map(|p| {
            let offered = run
                .offers
                .iter()
                .filter_map(|o| t.offers.get(o))
                .filter(|o| o.kindergarten == p.kindergarten)
                .filter_map(|o| t.apps.get(&o.application))
                .filter(|a| a.group_in(rules, run.year) == Some(p.age_group.as_str()) && a.group_type == p.group_type)
                .count();
            json!({"kindergarten": p.kindergarten, "age_group": p.age_group, "group_type": p.group_type,
                   "places": p.places, "offered": offered})
        })
        .collect();
    let refusals: Vec<Value> = run
        .admission_refusals
        .iter()
        .map(|r| {
            let mut v = json!({"application": r.application, "kindergarten": r.kindergarten, "reason": r.reason});
            r.at.put(&mut v);
            v
        })
        .collect();
    json!({
        "territory": territory,
        "run": id,
        "kind": run.kind,
        "allocation_year": run.year,
        "started": run.started.json(),
        "finished": run.finished.as_ref().map(Dated::json),
        "places": places,
        "offers": offers,
        "admission_refusals": refusals,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::shared::testing::*;

    const L: &str = "queue/kg/luga";
    const TK: &str = "queue/kg/tikhvin";

    fn submit(seq: u64, stream: &str, app: &str, number: &str, day: &str, preferred: &[&str]) -> Row {
        let data = json!({"application_id": app, "number": number, "learner": format!("47-{app}"), "birth_month": "2023-01",
                          "desired_date": "2026-09-01", "preferred": preferred, "group_type": "general"});
        row(seq, stream, "queue.application_submitted", &format!("{day}T09:00:00Z"), data)
    }

    fn ev(seq: u64, stream: &str, ty: &str, day: &str, data: Value) -> Row {
        row(seq, stream, ty, &format!("{day}T10:00:00Z"), data)
    }

    fn places(rows: &[(&str, i64)]) -> Value {
        rows.iter()
            .map(|(kg, n)| json!({"kindergarten": kg, "age_group": "3-4", "group_type": "general", "places": n}))
            .collect()
    }

    /// Luga: five applications, a confirmed and a rejected benefit, siblings (one for a preferred
    /// kindergarten, one not), a withdrawal, a main run (offers accepted and refused), an
    /// additional run (an offer, an admission refusal), an enrolment and a transfer.
    /// Tikhvin: a benefit whose re-check date passes.
    fn history() -> Vec<Row> {
        vec![
            submit(0, L, "a1", "N-001", "2026-02-01", &["kg-1"]),
            submit(1, L, "a2", "N-002", "2026-02-02", &["kg-1"]),
            submit(2, L, "a3", "N-003", "2026-02-03", &["kg-1", "kg-2"]),
            submit(3, L, "a4", "N-004", "2026-02-04", &["kg-2"]),
            submit(4, L, "a5", "N-005", "2026-02-05", &["kg-1"]),
            ev(
                5,
                L,
                "queue.benefit_claimed",
                "2026-02-06",
                json!({"application_id": "a3", "claim_id": "c3", "category": "police", "evidence_ref": "doc-3", "recheck_on": "2027-03-01"}),
            ),
            ev(6, L, "queue.benefit_confirmed", "2026-02-07", json!({"application_id": "a3", "claim_id": "c3"})),
            ev(
                7,
                L,
                "queue.benefit_claimed",
                "2026-02-08",
                json!({"application_id": "a5", "claim_id": "c5", "category": "judge", "evidence_ref": "doc-5", "recheck_on": "2027-03-01"}),
            ),
            ev(
                8,
                L,
                "queue.benefit_rejected",
                "2026-02-09",
                json!({"application_id": "a5", "claim_id": "c5", "reason": "evidence_invalid"}),
            ),
            ev(
                9,
                L,
                "queue.sibling_linked",
                "2026-02-10",
                json!({"application_id": "a4", "kindergarten": "kg-2", "sibling": "47-s4", "sibling_enrolment": "e-47-s4"}),
            ),
            ev(10, L, "queue.application_withdrawn", "2026-02-11", json!({"application_id": "a2", "reason": "moved"})),
            ev(
                11,
                L,
                "queue.sibling_linked",
                "2026-02-12",
                json!({"application_id": "a1", "kindergarten": "kg-2", "sibling": "47-s1", "sibling_enrolment": "e-47-s1"}),
            ),
            ev(
                12,
                L,
                "queue.allocation_started",
                "2026-05-01",
                json!({"run_id": "r1", "kind": "main", "places": places(&[("kg-1", 1), ("kg-2", 1)])}),
            ),
            ev(
                13,
                L,
                "queue.place_offered",
                "2026-05-01",
                json!({"offer_id": "o1", "application_id": "a3", "kindergarten": "kg-1"}),
            ),
            ev(
                14,
                L,
                "queue.place_offered",
                "2026-05-01",
                json!({"offer_id": "o2", "application_id": "a4", "kindergarten": "kg-2"}),
            ),
            ev(15, L, "queue.allocation_finished", "2026-05-01", json!({"run_id": "r1"})),
            ev(16, L, "queue.offer_accepted", "2026-05-02", json!({"offer_id": "o1"})),
            ev(17, L, "queue.offer_refused", "2026-05-03", json!({"offer_id": "o2", "reason": "too_far"})),
            ev(
                18,
                L,
                "queue.enrolled",
                "2026-05-04",
                json!({"application_id": "a3", "kindergarten": "kg-1", "order_ref": "p-1"}),
            ),
            ev(
                19,
                L,
                "queue.allocation_started",
                "2026-06-01",
                json!({"run_id": "r2", "kind": "additional", "places": places(&[("kg-1", 1)])}),
            ),
            ev(
                20,
                L,
                "queue.place_offered",
                "2026-06-01",
                json!({"offer_id": "o3", "application_id": "a1", "kindergarten": "kg-1"}),
            ),
            ev(
                21,
                L,
                "queue.admission_refused",
                "2026-06-01",
                json!({"application_id": "a5", "kindergarten": "kg-1", "reason": "no_free_places"}),
            ),
            ev(22, L, "queue.allocation_finished", "2026-06-01", json!({"run_id": "r2"})),
            ev(23, L, "queue.offer_accepted", "2026-06-01", json!({"offer_id": "o3"})),
            ev(
                24,
                L,
                "queue.transferred",
                "2026-06-01",
                json!({"application_id": "a3", "from_kindergarten": "kg-1", "to_kindergarten": "kg-2"}),
            ),
            submit(25, TK, "b1", "T-001", "2026-06-02", &["kg-t1"]),
            submit(26, TK, "b2", "T-002", "2026-06-03", &["kg-t1"]),
            ev(
                27,
                TK,
                "queue.benefit_claimed",
                "2026-06-04",
                json!({"application_id": "b2", "claim_id": "cb2", "category": "large_family", "evidence_ref": "doc-b2", "recheck_on": "2026-06-10"}),
            ),
            ev(28, TK, "queue.benefit_confirmed", "2026-06-05", json!({"application_id": "b2", "claim_id": "cb2"})),
            ev(
                29,
                TK,
                "queue.sibling_linked",
                "2026-06-15",
                json!({"application_id": "b1", "kindergarten": "kg-t2", "sibling": "47-s9", "sibling_enrolment": "e-47-s9"}),
            ),
        ]
    }

    /// (application, tier, position, status) expected in a group view.
    type Expected<'a> = (&'a str, &'a str, Value, &'a str);

    fn body(m: &KindergartenQueues, path: &[&str]) -> Value {
        m.view(path).unwrap().body
    }

    /// `v` with the entry `e<seq>` of a hand-built history and its dates: recorded when it
    /// occurred, at 10:00 UTC of `day` (`ev`).
    fn dated(mut v: Value, seq: u64, day: &str) -> Value {
        let at = format!("{day}T10:00:00Z");
        v["event"] = json!(format!("e{seq}"));
        v["seq"] = json!(seq);
        v["date"] = json!(at);
        v["date_from"] = json!("recorded_at");
        v["recorded_at"] = json!(at);
        v
    }

    /// (application, tier, position, status) of a group view.
    fn order(m: &KindergartenQueues, territory: &str) -> Vec<(String, String, Value, String)> {
        let b = body(m, &[territory, "2026", "3-4"]);
        let s = |v: &Value| v.as_str().unwrap().to_owned();
        b["applications"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| (s(&a["application"]), s(&a["tier"]), a["position"].clone(), s(&a["status"])))
            .collect()
    }

    fn owned(rows: &[Expected]) -> Vec<(String, String, Value, String)> {
        rows.iter().map(|(a, t, p, s)| (a.to_string(), t.to_string(), p.clone(), s.to_string())).collect()
    }

    #[test]
    fn the_order_by_tier_time_and_number_at_each_step() {
        // (entries applied, expected order of luga 3-4)
        let table: &[(usize, &[Expected])] = &[
            (
                5,
                &[
                    ("a1", "general", json!(1), "waiting"),
                    ("a2", "general", json!(2), "waiting"),
                    ("a3", "general", json!(3), "waiting"),
                    ("a4", "general", json!(4), "waiting"),
                    ("a5", "general", json!(5), "waiting"),
                ],
            ),
            // a3's claim alone changes nothing; confirmed, police puts it first (first_priority).
            (
                6,
                &[
                    ("a1", "general", json!(1), "waiting"),
                    ("a2", "general", json!(2), "waiting"),
                    ("a3", "general", json!(3), "waiting"),
                    ("a4", "general", json!(4), "waiting"),
                    ("a5", "general", json!(5), "waiting"),
                ],
            ),
            (
                7,
                &[
                    ("a3", "first_priority", json!(1), "waiting"),
                    ("a1", "general", json!(2), "waiting"),
                    ("a2", "general", json!(3), "waiting"),
                    ("a4", "general", json!(4), "waiting"),
                    ("a5", "general", json!(5), "waiting"),
                ],
            ),
            // a5's judge claim is rejected: still general. a4's sibling attends preferred kg-2: the
            // advantage tier in kg-2's order only, not in this territory-wide one.
            (
                10,
                &[
                    ("a3", "first_priority", json!(1), "waiting"),
                    ("a1", "general", json!(2), "waiting"),
                    ("a2", "general", json!(3), "waiting"),
                    ("a4", "general", json!(4), "waiting"),
                    ("a5", "general", json!(5), "waiting"),
                ],
            ),
            // a2 withdraws; a1's sibling attends kg-2, which a1 did not choose: still general.
            (
                12,
                &[
                    ("a3", "first_priority", json!(1), "waiting"),
                    ("a1", "general", json!(2), "waiting"),
                    ("a4", "general", json!(3), "waiting"),
                    ("a5", "general", json!(4), "waiting"),
                    ("a2", "general", Value::Null, "withdrawn"),
                ],
            ),
            // main run: a3 and a4 offered.
            (
                15,
                &[
                    ("a1", "general", json!(1), "waiting"),
                    ("a5", "general", json!(2), "waiting"),
                    ("a2", "general", Value::Null, "withdrawn"),
                    ("a3", "first_priority", Value::Null, "offered"),
                    ("a4", "general", Value::Null, "offered"),
                ],
            ),
            // a4 refuses and waits again, by its time of filing.
            (
                18,
                &[
                    ("a1", "general", json!(1), "waiting"),
                    ("a4", "general", json!(2), "waiting"),
                    ("a5", "general", json!(3), "waiting"),
                    ("a2", "general", Value::Null, "withdrawn"),
                    ("a3", "first_priority", Value::Null, "accepted"),
                ],
            ),
            (
                25,
                &[
                    ("a4", "general", json!(1), "waiting"),
                    ("a5", "general", json!(2), "waiting"),
                    ("a1", "general", Value::Null, "accepted"),
                    ("a2", "general", Value::Null, "withdrawn"),
                    ("a3", "first_priority", Value::Null, "enrolled"),
                ],
            ),
        ];
        let rows = history();
        for (n, expected) in table {
            let m: KindergartenQueues = build(&rows[..*n]);
            assert_eq!(order(&m, "luga"), owned(expected), "after {n} entries");
        }
        let m: KindergartenQueues = build(&rows);
        let b = body(&m, &["luga", "3-4"]);
        assert_eq!(b["waiting"], json!(2));
        assert_eq!(b["frozen_by_run"], Value::Null);
        assert_eq!(b["applications"][0]["event"], json!("e3"));
        // A main run freezes the queue while it is open.
        let open: KindergartenQueues = build(&rows[..13]);
        assert_eq!(body(&open, &["luga", "3-4"])["frozen_by_run"], json!("r1"));
        // Tikhvin: b2's large-family benefit lapsed on its re-check date 2026-06-10 (today 2026-06-15).
        assert_eq!(
            order(&m, "tikhvin"),
            owned(&[("b1", "general", json!(1), "waiting"), ("b2", "general", json!(2), "waiting")])
        );
        let before_lapse: KindergartenQueues = build(&rows[..29]);
        assert_eq!(
            order(&before_lapse, "tikhvin"),
            owned(&[("b2", "first_priority", json!(1), "waiting"), ("b1", "general", json!(2), "waiting")])
        );
    }

    #[test]
    fn an_application_shows_its_position_and_why() {
        let m: KindergartenQueues = build(&history());
        let v = m.view(&["luga", "applications", "a5"]).unwrap();
        assert_eq!(v.scope, Scope::Application { learner: "47-a5".into(), territory: "luga".into() });
        let b = v.body;
        assert_eq!(b["position"], json!(2));
        assert_eq!(b["status"], json!({"state": "waiting"}));
        assert_eq!(b["tier"], json!({"code": "general", "rank": 4, "of": 4}));
        assert_eq!(
            b["why"],
            json!([{"rule": "benefit_rejected", "claim": "c5", "category": "judge", "tier": null, "recheck_on": "2027-03-01",
                    "claimed": {"event": "e7", "seq": 7}, "decided": {"event": "e8", "seq": 8}, "rejection_reason": "evidence_invalid"}])
        );
        assert_eq!(
            b["ahead"],
            json!({"total": 1, "by_tier": [
                {"tier": "extraordinary", "ahead": 0}, {"tier": "first_priority", "ahead": 0},
                {"tier": "advantage", "ahead": 0}, {"tier": "general", "ahead": 1}]})
        );
        // Filed with 4 ahead: a2 withdrew, a3 and a4 were offered places, a4 refused and came
        // back, a1 was offered a place: 1 ahead. a3's benefit and a4's sibling did not move a5
        // (both stood ahead already), nor did its own rejected claim.
        let all = body(&m, &["luga", "applications", "a5", "moves"]);
        assert_eq!(
            all["moves"],
            json!([
                dated(
                    json!({"type": "queue.application_withdrawn", "application": "a2", "ahead_change": -1, "reason": "withdrawn_ahead"}),
                    10,
                    "2026-02-11"
                ),
                dated(
                    json!({"type": "queue.place_offered", "offer": "o1", "kindergarten": "kg-1", "run": "r1", "application": "a3", "ahead_change": -1, "reason": "offered_a_place_ahead"}),
                    13,
                    "2026-05-01"
                ),
                dated(
                    json!({"type": "queue.place_offered", "offer": "o2", "kindergarten": "kg-2", "run": "r1", "application": "a4", "ahead_change": -1, "reason": "offered_a_place_ahead"}),
                    14,
                    "2026-05-01"
                ),
                dated(
                    json!({"type": "queue.offer_refused", "offer": "o2", "kindergarten": "kg-2", "run": "r1", "application": "a4", "ahead_change": 1, "reason": "refused_offer_back_ahead"}),
                    17,
                    "2026-05-03"
                ),
                dated(
                    json!({"type": "queue.place_offered", "offer": "o3", "kindergarten": "kg-1", "run": "r2", "application": "a1", "ahead_change": -1, "reason": "offered_a_place_ahead"}),
                    20,
                    "2026-06-01"
                ),
            ])
        );
        assert_eq!((all["total"].clone(), all["ahead_change"].clone()), (json!(5), json!(-3)));
        assert_eq!(all["application"], json!("a5"));
        // The answer counts every move and shows the latest (here all five, fewer than shown).
        assert_eq!(b["moves"]["total"], json!(5));
        assert_eq!(b["moves"]["ahead_change"], json!(-3));
        assert_eq!(
            b["moves"]["by_reason"],
            json!({"offered_a_place_ahead": 3, "refused_offer_back_ahead": 1, "withdrawn_ahead": 1})
        );
        assert_eq!(b["moves"]["latest"], all["moves"]);
        assert_eq!(b["moves"]["all"], json!("luga/applications/a5/moves"));
        assert_eq!(
            b["allocation_runs_since_applied"],
            json!([
                dated(
                    json!({"run": "r1", "kind": "main", "allocation_year": 2026, "age_group": "3-4",
                             "places_in_preferred_kindergartens": 1, "finished": dated(json!({}), 15, "2026-05-01")}),
                    12,
                    "2026-05-01"
                ),
                dated(
                    json!({"run": "r2", "kind": "additional", "allocation_year": 2026, "age_group": "3-4",
                             "places_in_preferred_kindergartens": 1, "finished": dated(json!({}), 22, "2026-06-01")}),
                    19,
                    "2026-06-01"
                ),
            ])
        );
        let types: Vec<&str> = b["history"].as_array().unwrap().iter().map(|h| h["type"].as_str().unwrap()).collect();
        assert_eq!(
            types,
            [
                "queue.application_submitted",
                "queue.benefit_claimed",
                "queue.benefit_rejected",
                "queue.admission_refused"
            ]
        );

        // a4: the sibling link to a preferred kindergarten puts it in the advantage tier of that
        // kindergarten's order, not of the territory's.
        let b = body(&m, &["luga", "applications", "a4"]);
        assert_eq!(b["position"], json!(1));
        assert_eq!(b["why"], json!([]));
        assert_eq!(
            b["by_kindergarten"],
            // a4 refused kg-2's offer (seq 17): it no longer stands in kg-2's order.
            json!([{"kindergarten": "kg-2", "tier": "advantage", "position": null, "refused_offer": true, "why": [
                {"rule": "sibling_attends_this_kindergarten", "kindergarten": "kg-2", "sibling": "47-s4",
                 "tier": "advantage", "event": "e9", "seq": 9}]}])
        );
        assert_eq!(b["ahead"]["total"], json!(0));
        // Before the main run: third in the territory's order (a3, a1 ahead); in kg-2's order (its
        // sibling's, advantage tier) only a3, with a confirmed benefit, stands ahead.
        let before: KindergartenQueues = build(&history()[..12]);
        let b12 = body(&before, &["luga", "applications", "a4"]);
        assert_eq!((b12["position"].clone(), b12["tier"]["code"].clone()), (json!(3), json!("general")));
        assert_eq!(b12["by_kindergarten"][0]["position"], json!(2));
        assert_eq!(b12["by_kindergarten"][0]["tier"], json!("advantage"));
        // a3 (first_priority) prefers kg-1 and kg-2: first in both.
        let b3 = body(&before, &["luga", "applications", "a3"]);
        assert_eq!(b3["by_kindergarten"][1]["kindergarten"], json!("kg-2"));
        assert_eq!(b3["by_kindergarten"][1]["position"], json!(1));
        assert_eq!(b["filed_at"], json!("2026-02-04T09:00:00Z"));
        assert!(b["order"].as_str().unwrap().contains("recorded_at"));

        // a1: overtaken by a3's confirmed benefit (a4's sibling right counts in kg-2 only); its own
        // sibling link (kg-2, not preferred) changed nothing; moves stop once it is offered a place.
        let b = body(&m, &["luga", "applications", "a1"]);
        assert_eq!(b["position"], Value::Null);
        assert_eq!(b["status"], json!({"state": "accepted", "offer": "o3", "kindergarten": "kg-1"}));
        assert_eq!(
            b["why"],
            json!([{"rule": "sibling_attends_kindergarten_not_preferred", "kindergarten": "kg-2", "sibling": "47-s1",
                    "tier": null, "event": "e11", "seq": 11}])
        );
        let b = body(&m, &["luga", "applications", "a1", "moves"]);
        let moves: Vec<(u64, i64, &str)> = b["moves"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| (x["seq"].as_u64().unwrap(), x["ahead_change"].as_i64().unwrap(), x["reason"].as_str().unwrap()))
            .collect();
        assert_eq!(moves, [(6, 1, "benefit_confirmed_moved_ahead"), (13, -1, "offered_a_place_ahead"),]);
        // a3's benefit moved a1 back: a1's family sees that a benefit was confirmed, not which.
        assert_eq!(b["moves"][0]["application"], json!("a3"));
        let shown = b["moves"][0].as_object().unwrap();
        assert!(!shown.contains_key("claim") && !shown.contains_key("category"), "{shown:?}");

        // a3: first_priority by its confirmed police benefit, until re-check on 2027-03-01.
        let b = body(&m, &["luga", "applications", "a3"]);
        assert_eq!(b["tier"]["code"], json!("first_priority"));
        assert_eq!(b["why"][0]["rule"], json!("benefit_confirmed"));
        assert_eq!(b["why"][0]["decided"], json!({"event": "e6", "seq": 6}));
        assert_eq!(b["status"], json!({"state": "enrolled", "offer": "o1", "kindergarten": "kg-2"}));
    }

    /// A family that waited long was moved many times: its answer counts them all and shows the
    /// latest few; the whole list is one path away, in log order.
    #[test]
    fn an_answer_shows_the_latest_moves_and_counts_them_all() {
        let n = MOVES_SHOWN + 4;
        let mut rows: Vec<Row> = (0..n)
            .map(|i| submit(i as u64, L, &format!("w{i:02}"), &format!("N-{i:03}"), "2026-02-01", &["kg-1"]))
            .collect();
        rows.push(submit(n as u64, L, "late", "N-999", "2026-02-02", &["kg-1"]));
        for i in 0..n {
            let data = json!({"application_id": format!("w{i:02}"), "reason": "moved"});
            rows.push(ev((n + 1 + i) as u64, L, "queue.application_withdrawn", "2026-02-03", data));
        }
        let m: KindergartenQueues = build(&rows);
        let b = body(&m, &["luga", "applications", "late"]);
        assert_eq!(b["position"], json!(1));
        assert_eq!(b["moves"]["total"], json!(n));
        assert_eq!(b["moves"]["ahead_change"], json!(-(n as i64)));
        assert_eq!(b["moves"]["by_reason"], json!({"withdrawn_ahead": n}));
        let seqs =
            |v: &Value| -> Vec<u64> { v.as_array().unwrap().iter().map(|m| m["seq"].as_u64().unwrap()).collect() };
        let all = body(&m, &["luga", "applications", "late", "moves"]);
        assert_eq!(seqs(&all["moves"]), ((n + 1)..(2 * n + 1)).map(|s| s as u64).collect::<Vec<_>>());
        assert_eq!(seqs(&b["moves"]["latest"]), seqs(&all["moves"])[n - MOVES_SHOWN..]);
        assert_eq!(all["total"], json!(n));
        // A path past the moves, or of an unknown application, is refused.
        assert!(matches!(m.view(&["luga", "applications", "late", "history"]), Err(ViewError::BadPath(_))));
        assert!(matches!(m.view(&["luga", "applications", "nobody", "moves"]), Err(ViewError::NotFound(_))));
    }

    /// An application's answer is given at once only from the cache, and only while it holds:
    /// an entry of its age group sends it back to `view`.
    #[test]
    fn an_answer_is_given_at_once_only_from_the_cache() {
        let rows = history();
        let mut m: KindergartenQueues = build(&rows[..5]);
        let path = ["luga", "applications", "a5"];
        assert!(m.view_now(&path).is_none(), "not computed yet");
        let computed = body(&m, &path);
        assert_eq!(m.view_now(&path).unwrap().unwrap().body, computed);
        m.apply(&fact(&rows[5]));
        assert!(m.view_now(&path).is_none(), "an entry of its group came");
        assert_eq!(m.view_now(&["luga", "3-4"]), None, "a group's queue is never answered at once");
        assert!(matches!(m.view_now(&["luga", "applications", "zz"]), Some(Err(ViewError::NotFound(_)))));
    }

    #[test]
    fn a_lapsed_benefit_moves_the_queue_and_says_why() {
        let m: KindergartenQueues = build(&history());
        let b = body(&m, &["tikhvin", "applications", "b1"]);
        assert_eq!(b["position"], json!(1));
        assert_eq!(
            b["moves"]["by_reason"],
            json!({"benefit_confirmed_moved_ahead": 1, "benefit_recheck_date_passed": 1})
        );
        assert_eq!(b["moves"]["ahead_change"], json!(0));
        let b = body(&m, &["tikhvin", "applications", "b1", "moves"]);
        assert_eq!(
            b["moves"],
            json!([
                // Another family's benefit: that it was confirmed and lapsed, not which (category, claim).
                dated(json!({"type": "queue.benefit_confirmed",
                             "application": "b2", "ahead_change": 1, "reason": "benefit_confirmed_moved_ahead"}),
                      28, "2026-06-05"),
                {"type": "queue.benefit_confirmed", "event": "e28", "seq": 28, "application": "b2",
                 "recheck_on": "2026-06-10", "ahead_change": -1, "reason": "benefit_recheck_date_passed"},
            ])
        );
        let b = body(&m, &["tikhvin", "applications", "b2"]);
        assert_eq!(b["position"], json!(2));
        assert_eq!(b["why"][0]["rule"], json!("benefit_recheck_passed_counts_as_general"));
        assert_eq!(b["why"][0]["recheck_on"], json!("2026-06-10"));
        let b = body(&m, &["tikhvin", "applications", "b2", "moves"]);
        let moves: Vec<(u64, i64, &str)> = b["moves"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| (x["seq"].as_u64().unwrap(), x["ahead_change"].as_i64().unwrap(), x["reason"].as_str().unwrap()))
            .collect();
        assert_eq!(moves, [(28, -1, "own_benefit_confirmed"), (28, 1, "benefit_recheck_date_passed")]);
    }

    #[test]
    fn runs_show_places_offers_and_outcomes() {
        let m: KindergartenQueues = build(&history());
        let v = m.view(&["luga", "runs", "r1"]).unwrap();
        assert_eq!(v.scope, Scope::Territory("luga".into()));
        assert_eq!(
            v.body,
            json!({
                "territory": "luga", "run": "r1", "kind": "main", "allocation_year": 2026,
                "started": dated(json!({}), 12, "2026-05-01"), "finished": dated(json!({}), 15, "2026-05-01"),
                "places": [
                    {"kindergarten": "kg-1", "age_group": "3-4", "group_type": "general", "places": 1, "offered": 1},
                    {"kindergarten": "kg-2", "age_group": "3-4", "group_type": "general", "places": 1, "offered": 1},
                ],
                "offers": [
                    dated(json!({"offer": "o1", "application": "a3", "number": "N-003", "kindergarten": "kg-1",
                     "outcome": "transferred", "steps": [
                        dated(json!({"step": "accepted"}), 16, "2026-05-02"),
                        dated(json!({"step": "enrolled", "order_ref": "p-1"}), 18, "2026-05-04"),
                        dated(json!({"step": "transferred", "from_kindergarten": "kg-1", "to_kindergarten": "kg-2"}), 24, "2026-06-01"),
                     ]}), 13, "2026-05-01"),
                    dated(json!({"offer": "o2", "application": "a4", "number": "N-004", "kindergarten": "kg-2",
                     "outcome": "refused", "steps": [dated(json!({"step": "refused", "reason": "too_far"}), 17, "2026-05-03")]}),
                      14, "2026-05-01"),
                ],
                "admission_refusals": [],
            })
        );
        let r2 = body(&m, &["luga", "runs", "r2"]);
        assert_eq!(r2["offers"][0]["outcome"], json!("accepted"));
        assert_eq!(
            r2["admission_refusals"],
            json!([dated(
                json!({"application": "a5", "kindergarten": "kg-1", "reason": "no_free_places"}),
                21,
                "2026-06-01"
            )])
        );
    }

    /// When the ledger recorded the imports of [`legacy`]: long after they happened.
    const IMPORTED_AT: &str = "2026-08-10T12:00:00Z";

    /// `row` imported from the legacy system: `migrated_from` in its data, its own `occurred_at`.
    fn import(seq: u64, ty: &str, occurred_at: &str, mut data: Value) -> Row {
        data["migrated_from"] = json!({"system": "BARS", "record": format!("luga/{seq}")});
        row(seq, L, ty, occurred_at, data)
    }

    /// A legacy application filed in 2017 for 2019, placed by the 2019 run, imported in 2026 with
    /// the runs of 2018 (before its year) and a later one of 2019 (after its offer), appended out
    /// of their order in time; then a live application of 2026 and a live run.
    fn legacy() -> Vec<Row> {
        let run = |seq, id: &str, year: i64, at: &str| {
            let data =
                json!({"run_id": id, "kind": "additional", "places": places(&[("kg-1", 1)]), "academic_year": year});
            import(seq, "queue.allocation_started", at, data)
        };
        let data = json!({"application_id": "old1", "number": "N-OLD", "learner": "47-old1", "birth_month": "2016-03",
                          "desired_date": "2019-09-01", "preferred": ["kg-1"], "group_type": "general"});
        vec![
            // The run of 2019 is appended before the application it placed.
            run(0, "m2019", 2019, "2019-06-01T09:00:00Z"),
            import(1, "queue.application_submitted", "2017-03-01T09:00:00Z", data),
            import(
                2,
                "queue.place_offered",
                "2019-06-01T10:00:00Z",
                json!({"offer_id": "old1-o1", "application_id": "old1", "kindergarten": "kg-1"}),
            ),
            import(3, "queue.offer_accepted", "2019-06-15T10:00:00Z", json!({"offer_id": "old1-o1"})),
            import(
                4,
                "queue.enrolled",
                "2019-08-25T10:00:00Z",
                json!({"application_id": "old1", "kindergarten": "kg-1", "order_ref": "p-old1"}),
            ),
            import(5, "queue.allocation_finished", "2019-08-31T18:00:00Z", json!({"run_id": "m2019"})),
            run(6, "m2018", 2018, "2018-06-01T09:00:00Z"),
            import(7, "queue.allocation_finished", "2018-08-31T18:00:00Z", json!({"run_id": "m2018"})),
            run(8, "m2019b", 2019, "2019-09-10T09:00:00Z"),
            import(9, "queue.allocation_finished", "2019-09-20T18:00:00Z", json!({"run_id": "m2019b"})),
            submit(10, L, "a1", "N-001", "2026-02-01", &["kg-1"]),
            ev(
                11,
                L,
                "queue.allocation_started",
                "2026-05-01",
                json!({"run_id": "r1", "kind": "main", "places": places(&[("kg-1", 1)])}),
            ),
        ]
    }

    /// The model of `rows`, each import recorded by the ledger at [`IMPORTED_AT`].
    fn build_imported(rows: &[Row]) -> KindergartenQueues {
        let mut m = KindergartenQueues::default();
        let imported_at = time::parse_rfc3339(IMPORTED_AT).unwrap();
        for r in rows {
            let mut f = fact(r);
            if r.imported.is_some() {
                f.recorded_at = imported_at;
            }
            m.apply(&f);
        }
        m
    }

    /// An imported application answers the year it left the queue in and the runs of its own
    /// years between its filing and its offer, by date; `filed_at` is the time the order uses.
    #[test]
    fn a_legacy_application_answers_its_own_year_and_runs() {
        let m = build_imported(&legacy());
        let b = body(&m, &["luga", "applications", "old1"]);
        assert_eq!(b["allocation_year"], json!(2019), "{b:#}");
        // 2019's list is past: none named, none answered.
        assert_eq!(b["list"], Value::Null);
        assert!(matches!(m.view(&["luga", "2019", b["age_group"].as_str().unwrap()]), Err(ViewError::NotFound(_))));
        let runs: Vec<&str> =
            b["allocation_runs_since_applied"].as_array().unwrap().iter().map(|r| r["run"].as_str().unwrap()).collect();
        assert_eq!(runs, ["m2019"], "{b:#}");
        assert_eq!(b["allocation_runs_since_applied"][0]["date"], json!("2019-06-01T09:00:00Z"));
        assert_eq!(b["filed_at"], json!("2017-03-01T09:00:00Z"));
        assert_eq!(b["applied_at"], json!("2017-03-01T09:00:00Z"));
        assert_eq!(b["recorded_at"], json!(IMPORTED_AT));
        // Its moves are its year's list's (the live 2026 application is in none of them).
        assert_eq!(body(&m, &["luga", "applications", "old1", "moves"])["total"], json!(0));
        // A live application: its filing is the ledger's, the live run after it listed.
        let a1 = body(&m, &["luga", "applications", "a1"]);
        assert_eq!(
            (a1["allocation_year"].clone(), a1["filed_at"].clone()),
            (json!(2026), json!("2026-02-01T09:00:00Z"))
        );
        let runs: Vec<&str> = a1["allocation_runs_since_applied"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["run"].as_str().unwrap())
            .collect();
        assert_eq!(runs, ["r1"], "{a1:#}");
    }

    /// Several runs of one application's years: listed by their dates, not by id or log position.
    #[test]
    fn an_application_lists_its_runs_in_date_order() {
        let mut rows = legacy();
        // old1 filed for 2018: the runs of 2018 and 2019 up to its offer, 2018's appended later.
        let Event::QueueApplicationSubmitted(d) = &mut rows[1].event else { panic!("a submission") };
        d.desired_date = "2018-09-01".into();
        d.birth_month = "2015-03".into();
        let m = build_imported(&rows);
        let b = body(&m, &["luga", "applications", "old1"]);
        let runs: Vec<(&str, &str)> = (b["allocation_runs_since_applied"].as_array().unwrap().iter())
            .map(|r| (r["run"].as_str().unwrap(), r["date"].as_str().unwrap()))
            .collect();
        assert_eq!(runs, [("m2018", "2018-06-01T09:00:00Z"), ("m2019", "2019-06-01T09:00:00Z")], "{b:#}");
    }

    /// An imported run, offer and step name the legacy record's own date and the ledger's
    /// recording, and say which is which; so does an application's history.
    #[test]
    fn legacy_runs_offers_and_history_carry_their_dates() {
        let m = build_imported(&legacy());
        let legacy_at = |seq: u64, at: &str| {
            json!({"event": format!("e{seq}"), "seq": seq, "date": at, "occurred_at": at, "recorded_at": IMPORTED_AT,
                   "date_from": "occurred_at (imported: the legacy record's own date)"})
        };
        let run = body(&m, &["luga", "runs", "m2019"]);
        assert_eq!(run["started"], legacy_at(0, "2019-06-01T09:00:00Z"));
        assert_eq!(run["finished"], legacy_at(5, "2019-08-31T18:00:00Z"));
        let offer = &run["offers"][0];
        assert_eq!(
            (offer["date"].clone(), offer["recorded_at"].clone()),
            (json!("2019-06-01T10:00:00Z"), json!(IMPORTED_AT))
        );
        let steps: Vec<&str> = offer["steps"].as_array().unwrap().iter().map(|s| s["date"].as_str().unwrap()).collect();
        assert_eq!(steps, ["2019-06-15T10:00:00Z", "2019-08-25T10:00:00Z"]);
        let b = body(&m, &["luga", "applications", "old1"]);
        let history: Vec<(&str, &str, &str)> = (b["history"].as_array().unwrap().iter())
            .map(|h| (h["type"].as_str().unwrap(), h["date"].as_str().unwrap(), h["recorded_at"].as_str().unwrap()))
            .collect();
        assert_eq!(
            history,
            [
                ("queue.application_submitted", "2017-03-01T09:00:00Z", IMPORTED_AT),
                ("queue.place_offered", "2019-06-01T10:00:00Z", IMPORTED_AT),
                ("queue.offer_accepted", "2019-06-15T10:00:00Z", IMPORTED_AT),
                ("queue.enrolled", "2019-08-25T10:00:00Z", IMPORTED_AT),
            ]
        );
        // A live entry: its date is the ledger's, no occurred_at of its own.
        let live = body(&m, &["luga", "runs", "r1"]);
        assert_eq!(live["started"], dated(json!({}), 11, "2026-05-01"));
    }

    /// A year with no age group is a bad path that says what a year's list needs.
    #[test]
    fn a_year_without_an_age_group_is_a_bad_path() {
        let m = build_imported(&legacy());
        match m.view(&["luga", "2027"]) {
            Err(ViewError::BadPath(msg)) => {
                assert!(msg.contains("2027 is an allocation year") && msg.contains("age group"), "{msg}")
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(m.view(&["luga", "5-6x"]), Err(ViewError::NotFound(_))));
        assert!(m.view(&["luga", "3-4"]).is_ok());
    }

    /// A consent to a kindergarten not preferred: shown with every waiting application that
    /// prefers that kindergarten (they go first there), in the history, and gone from the count
    /// as they leave the queue.
    #[test]
    fn a_consent_shows_who_goes_first_in_that_kindergarten() {
        let mut rows = vec![
            submit(0, L, "a1", "N-001", "2026-02-01", &["kg-1"]),
            submit(1, L, "a2", "N-002", "2026-02-02", &["kg-2"]),
            submit(2, L, "a3", "N-003", "2026-02-03", &["kg-1", "kg-2"]),
            ev(
                3,
                L,
                "queue.other_kindergarten_consented",
                "2026-02-04",
                json!({"application_id": "a1", "kindergarten": "kg-2"}),
            ),
        ];
        let b = body(&build::<KindergartenQueues>(&rows), &["luga", "applications", "a1"]);
        assert_eq!(
            b["consented"],
            json!([{"kindergarten": "kg-2", "event": "e3", "seq": 3, "preferring_ahead": 2, "refused_offer": false,
                    "rule": "offered_only_when_no_application_preferring_it_waits"}])
        );
        let last = &b["history"].as_array().unwrap()[1];
        assert_eq!(
            last,
            &dated(json!({"type": "queue.other_kindergarten_consented", "kindergarten": "kg-2"}), 3, "2026-02-04")
        );
        // Its own preferred kindergarten's order is unchanged by the consent.
        assert_eq!(b["by_kindergarten"][0]["kindergarten"], json!("kg-1"));
        assert_eq!(b["by_kindergarten"].as_array().unwrap().len(), 1);
        rows.push(ev(
            4,
            L,
            "queue.application_withdrawn",
            "2026-02-05",
            json!({"application_id": "a2", "reason": "moved"}),
        ));
        let b = body(&build::<KindergartenQueues>(&rows), &["luga", "applications", "a1"]);
        assert_eq!(b["consented"][0]["preferring_ahead"], json!(1));
        rows.push(ev(
            5,
            L,
            "queue.application_withdrawn",
            "2026-02-06",
            json!({"application_id": "a1", "reason": "moved"}),
        ));
        let b = body(&build::<KindergartenQueues>(&rows), &["luga", "applications", "a1"]);
        assert_eq!(b["consented"][0]["preferring_ahead"], json!(null), "no longer waiting");
    }

    #[test]
    fn cached_application_answers_follow_every_change() {
        // One model read after every entry (its answers cached) answers as a fresh build of the
        // same prefix, for every application of every territory.
        let rows = history();
        let mut followed = KindergartenQueues::default();
        let apps: Vec<(String, String)> = rows
            .iter()
            .filter(|r| r.event_type == "queue.application_submitted")
            .map(|r| match &r.event {
                Event::QueueApplicationSubmitted(d) => {
                    (r.stream.trim_start_matches("queue/kg/").to_owned(), d.application_id.clone())
                }
                _ => unreachable!(),
            })
            .collect();
        for k in 0..rows.len() {
            followed.apply(&fact(&rows[k]));
            let fresh: KindergartenQueues = build(&rows[..=k]);
            for (t, a) in &apps {
                let path = [t.as_str(), "applications", a.as_str()];
                let got = followed.view(&path).map(|v| v.body);
                assert_eq!(got, fresh.view(&path).map(|v| v.body), "{t}/{a} after entry {k}");
                // Asked twice: the second answer comes from the cache.
                assert_eq!(followed.view(&path).map(|v| v.body), got);
            }
        }
    }

    /// A cached answer outlives entries of other age groups and territories and days that pass no
    /// re-check date, but not a day past one: then a benefit lapses with no entry of its queue.
    #[test]
    fn a_cached_answer_expires_when_a_benefit_lapses_with_no_entry_of_its_queue() {
        let rows = [
            submit(0, L, "a1", "N-001", "2026-02-01", &["kg-1"]),
            submit(1, L, "a2", "N-002", "2026-02-02", &["kg-1"]),
            ev(
                2,
                L,
                "queue.benefit_claimed",
                "2026-02-03",
                json!({"application_id": "a2", "claim_id": "c2", "category": "police", "evidence_ref": "d", "recheck_on": "2026-03-01"}),
            ),
            ev(3, L, "queue.benefit_confirmed", "2026-02-04", json!({"application_id": "a2", "claim_id": "c2"})),
            // Another territory's entries, on the re-check date and the day after it.
            submit(4, "queue/kg/tikhvin", "b1", "T-001", "2026-03-01", &["kg-t1"]),
            submit(5, "queue/kg/tikhvin", "b2", "T-002", "2026-03-02", &["kg-t1"]),
        ];
        let mut followed = KindergartenQueues::default();
        let path = ["luga", "applications", "a1"];
        let mut positions = Vec::new();
        for k in 0..rows.len() {
            followed.apply(&fact(&rows[k]));
            let got = followed.view(&path).unwrap().body;
            assert_eq!(got, build::<KindergartenQueues>(&rows[..=k]).view(&path).unwrap().body, "after entry {k}");
            positions.push((got["position"].as_u64().unwrap(), got["today"].as_str().unwrap().to_owned()));
        }
        let p = |n: u64, d: &str| (n, d.to_owned());
        assert_eq!(
            positions,
            [
                p(1, "2026-02-01"),
                p(1, "2026-02-02"),
                p(1, "2026-02-03"),
                p(2, "2026-02-04"),
                p(2, "2026-03-01"),
                p(1, "2026-03-02")
            ]
        );
        // An answer first computed on the re-check date itself holds for that day only.
        let mut late: KindergartenQueues = build(&rows[..5]);
        assert_eq!(late.view(&path).unwrap().body["position"], json!(2));
        late.apply(&fact(&rows[5]));
        assert_eq!(late.view(&path).unwrap().body["position"], json!(1));
    }

    /// DOMAIN "Age group is computed as of 1 September of the target year": a list is one
    /// allocation year's age group; a later year's applicant is not behind this year's, and a
    /// child still waiting after its year competes in the next in its new group.
    #[test]
    fn lists_are_per_allocation_year_and_a_waiting_child_ages() {
        let app = |seq: u64, id: &str, day: &str, birth: &str, desired: &str| {
            let data = json!({"application_id": id, "number": format!("N-{seq:03}"), "learner": format!("47-{id}"),
                "birth_month": birth, "desired_date": desired, "preferred": ["kg-1"], "group_type": "general"});
            row(seq, L, "queue.application_submitted", &format!("{day}T09:00:00Z"), data)
        };
        let rows = vec![
            // 3-4 on 1 September 2027, 4-5 on 1 September 2028.
            app(0, "y27", "2026-10-01", "2024-08", "2027-09-01"),
            // Wants 2028: 3-4 then.
            app(1, "y28", "2026-11-01", "2025-02", "2028-09-01"),
            // Wants 2028: 4-5 then, filed after y27.
            app(2, "o28", "2026-12-01", "2024-03", "2028-09-01"),
            // The 2027 main run (its date's allocation year) offers y27 nothing.
            ev(
                3,
                L,
                "queue.allocation_started",
                "2027-05-15",
                json!({"run_id": "r27", "kind": "main", "places": places(&[("kg-2", 1)])}),
            ),
            ev(4, L, "queue.allocation_finished", "2027-05-16", json!({"run_id": "r27"})),
            // April 2028: the allocation year is 2028's.
            app(5, "z28", "2028-04-10", "2026-01", "2028-09-01"),
        ];
        let mut m = KindergartenQueues::default();
        for r in &rows[..5] {
            m.apply(&fact(r));
        }
        let ids = |b: Value| -> Vec<(String, Value)> {
            let apps = b["applications"].as_array().unwrap().clone();
            apps.iter().map(|a| (a["application"].as_str().unwrap().to_owned(), a["position"].clone())).collect()
        };
        let own = |id: &str| vec![(id.to_owned(), json!(1))];
        // May 2027: the default list is 2027's; the 2028 applicant is not behind the 2027 child.
        assert_eq!(body(&m, &["luga", "runs", "r27"])["allocation_year"], json!(2027));
        assert_eq!(body(&m, &["luga", "3-4"])["allocation_year"], json!(2027));
        assert_eq!(ids(body(&m, &["luga", "3-4"])), own("y27"));
        assert_eq!(ids(body(&m, &["luga", "2028", "3-4"])), own("y28"));
        // Should y27 still wait in 2028, it competes then as 4-5, ahead of o28.
        assert_eq!(ids(body(&m, &["luga", "2028", "4-5"])), [("y27".into(), json!(1)), ("o28".into(), json!(2))]);
        let lists = body(&m, &["luga"]);
        assert_eq!(lists["allocation_year"], json!(2027));
        assert_eq!(
            lists["lists"],
            json!([
                {"year": 2027, "age_group": "3-4", "waiting": 1, "path": "luga/2027/3-4"},
                {"year": 2028, "age_group": "3-4", "waiting": 1, "path": "luga/2028/3-4"},
                {"year": 2028, "age_group": "4-5", "waiting": 2, "path": "luga/2028/4-5"},
            ])
        );
        let y27 = body(&m, &["luga", "applications", "y27"]);
        assert_eq!(
            (y27["allocation_year"].clone(), y27["age_group"].clone(), y27["position"].clone()),
            (json!(2027), json!("3-4"), json!(1))
        );
        assert_eq!(y27["list"], json!("luga/2027/3-4"));
        assert_eq!(y27["age_groups_by_year"][1], json!({"year": 2028, "age_group": "4-5"}));
        let y28 = body(&m, &["luga", "applications", "y28"]);
        assert_eq!(
            (y28["allocation_year"].clone(), y28["age_group"].clone(), y28["position"].clone()),
            (json!(2028), json!("3-4"), json!(1))
        );
        assert_eq!(body(&m, &["luga", "applications", "o28"])["position"], json!(2));
        // April 2028 (an entry of another group brings "today"): y27, still waiting, is 4-5 in
        // the current list, no longer in 3-4; its cached answer of 2027 is not given.
        m.apply(&fact(&rows[5]));
        assert_eq!(ids(body(&m, &["luga", "3-4"])), own("y28"));
        assert_eq!(ids(body(&m, &["luga", "4-5"])), [("y27".into(), json!(1)), ("o28".into(), json!(2))]);
        assert_eq!(m.view_now(&["luga", "applications", "y27"]), None);
        let y27 = body(&m, &["luga", "applications", "y27"]);
        assert_eq!(
            (y27["allocation_year"].clone(), y27["age_group"].clone(), y27["position"].clone()),
            (json!(2028), json!("4-5"), json!(1))
        );
        assert!(matches!(m.view(&["luga", "2027", "3-4"]), Err(ViewError::NotFound(_))));
        let fresh: KindergartenQueues = build(&rows);
        assert_eq!(body(&fresh, &["luga", "applications", "y27"]), y27);
    }

    #[test]
    fn refusals_name_what_is_wrong() {
        let m: KindergartenQueues = build(&history());
        assert!(matches!(m.view(&["luga", "9-10"]), Err(ViewError::NotFound(_))));
        assert!(matches!(m.view(&["vyborg", "3-4"]), Err(ViewError::NotFound(_))));
        assert!(matches!(m.view(&["luga", "applications", "zz"]), Err(ViewError::NotFound(_))));
        assert!(matches!(m.view(&["luga", "runs", "r9"]), Err(ViewError::NotFound(_))));
        assert!(matches!(m.view(&["luga", "applications"]), Err(ViewError::BadPath(_))));
        assert!(matches!(m.view(&["luga", "3-4", "x", "y"]), Err(ViewError::BadPath(_))));
        // A year is four digits, and not a past allocation's (today 2026-06-15: 2026's).
        for year in ["26", "02026", "x026", "+026"] {
            assert!(matches!(m.view(&["luga", year, "3-4"]), Err(ViewError::BadPath(_))), "{year}");
        }
        let past = m.view(&["luga", "2025", "3-4"]);
        assert!(
            matches!(&past, Err(ViewError::NotFound(e)) if e.contains("allocates the places of 2026 now")),
            "{past:?}"
        );
        assert!(matches!(m.view(&["luga", "2027", "9-10"]), Err(ViewError::NotFound(_))));
        // A known group with no applications is an empty list, not an error.
        assert_eq!(body(&m, &["luga", "0-1"])["applications"], json!([]));
    }

    /// A small deterministic generator (splitmix64) for the randomized histories below.
    struct Draw(u64);

    impl Draw {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }

        fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
            (!items.is_empty()).then(|| &items[self.below(items.len())])
        }
    }

    /// A random queue history: two territories, two age groups, applications filed on random
    /// days, benefits claimed, confirmed, rejected and lapsing (re-check dates near the days
    /// lived), siblings, consents, withdrawals, runs with offers accepted and refused, admission
    /// refusals, enrolments and transfers; some entries refer to nothing (as a fold meets them).
    fn random_history(seed: u64, len: usize) -> Vec<Row> {
        let mut d = Draw(seed);
        let kgs = ["kg-1", "kg-2", "kg-3"];
        let categories = ["police", "judge", "large_family", "unknown_category"];
        let mut rows = Vec::new();
        // From December 2026, across 1 April 2027 (the allocation year passes from 2026 to 2027).
        let mut day = time::parse_date("2026-12-01").unwrap();
        // (stream, application id), claims (stream, application, claim), offers (stream, offer).
        let mut apps: Vec<(&str, String)> = Vec::new();
        let mut claims: Vec<(&str, String, String)> = Vec::new();
        let mut offers: Vec<(&str, String)> = Vec::new();
        let mut runs = 0;
        for seq in 0..len as u64 {
            day += [0, 0, 0, 1, 1, 3, 9][d.below(7)];
            let on = time::format_date(day);
            let stream = if d.below(4) == 0 { TK } else { L };
            let app = d.pick(&apps).filter(|(s, _)| *s == stream).map(|(_, a)| a.clone());
            let app = app.unwrap_or_else(|| "a-none".to_owned());
            let kg = kgs[d.below(kgs.len())];
            let row = match d.below(14) {
                0..=3 => {
                    let id = format!("a{seq}");
                    let number = format!("N-{:03}", d.below(1000));
                    // Children of one age group in one year and of two in another, waiting for
                    // the current allocation year or the next (so some age into a new group).
                    let birth = ["2023-01", "2022-01", "2023-06", "2022-11"][d.below(4)];
                    let desired = ["2026-09-01", "2027-09-01", "2027-02-15"][d.below(3)];
                    let preferred: Vec<&str> = kgs.iter().copied().filter(|_| d.below(2) == 0).collect();
                    let preferred = if preferred.is_empty() { vec![kg] } else { preferred };
                    apps.push((stream, id.clone()));
                    let data = json!({"application_id": id, "number": number, "learner": format!("47-{seq}"),
                        "birth_month": birth, "desired_date": desired, "preferred": preferred,
                        "group_type": "general"});
                    row(seq, stream, "queue.application_submitted", &format!("{on}T09:00:00Z"), data)
                }
                4 | 5 => {
                    let claim = format!("c{seq}");
                    claims.push((stream, app.clone(), claim.clone()));
                    let recheck = time::format_date(day + d.below(30) as i64);
                    let category = categories[d.below(categories.len())];
                    ev(
                        seq,
                        stream,
                        "queue.benefit_claimed",
                        &on,
                        json!({"application_id": app, "claim_id": claim,
                        "category": category, "evidence_ref": "doc", "recheck_on": recheck}),
                    )
                }
                6 => {
                    let (s, a, c) = d.pick(&claims).cloned().unwrap_or((stream, app.clone(), "c-none".into()));
                    if d.below(3) == 0 {
                        ev(
                            seq,
                            s,
                            "queue.benefit_rejected",
                            &on,
                            json!({"application_id": a, "claim_id": c, "reason": "evidence_invalid"}),
                        )
                    } else {
                        ev(seq, s, "queue.benefit_confirmed", &on, json!({"application_id": a, "claim_id": c}))
                    }
                }
                7 => ev(
                    seq,
                    stream,
                    "queue.sibling_linked",
                    &on,
                    json!({"application_id": app, "kindergarten": kg,
                    "sibling": "47-s", "sibling_enrolment": "e-s"}),
                ),
                8 => ev(
                    seq,
                    stream,
                    "queue.other_kindergarten_consented",
                    &on,
                    json!({"application_id": app, "kindergarten": kg}),
                ),
                9 => ev(
                    seq,
                    stream,
                    "queue.application_withdrawn",
                    &on,
                    json!({"application_id": app, "reason": "moved"}),
                ),
                10 => {
                    runs += 1;
                    if d.below(2) == 0 {
                        let places =
                            json!([{"kindergarten": kg, "age_group": "3-4", "group_type": "general", "places": 2}]);
                        let mut data = json!({"run_id": format!("r{runs}"),
                            "kind": (["main", "additional"][d.below(2)]), "places": places});
                        // A run names its allocation year, or takes its date's.
                        if let Some(year) = [None, Some(2026), Some(2027)][d.below(3)] {
                            data["academic_year"] = json!(year);
                        }
                        ev(seq, stream, "queue.allocation_started", &on, data)
                    } else {
                        ev(seq, stream, "queue.allocation_finished", &on, json!({"run_id": format!("r{}", runs - 1)}))
                    }
                }
                11 => {
                    let offer = format!("o{seq}");
                    offers.push((stream, offer.clone()));
                    ev(
                        seq,
                        stream,
                        "queue.place_offered",
                        &on,
                        json!({"offer_id": offer, "application_id": app, "kindergarten": kg}),
                    )
                }
                12 => {
                    let (s, o) = d.pick(&offers).cloned().unwrap_or((stream, "o-none".into()));
                    if d.below(2) == 0 {
                        ev(seq, s, "queue.offer_accepted", &on, json!({"offer_id": o}))
                    } else {
                        ev(seq, s, "queue.offer_refused", &on, json!({"offer_id": o, "reason": "too_far"}))
                    }
                }
                _ => match d.below(3) {
                    0 => ev(
                        seq,
                        stream,
                        "queue.admission_refused",
                        &on,
                        json!({"application_id": app, "kindergarten": kg,
                        "reason": "no_free_places"}),
                    ),
                    1 => ev(
                        seq,
                        stream,
                        "queue.enrolled",
                        &on,
                        json!({"application_id": app, "kindergarten": kg, "order_ref": "p"}),
                    ),
                    _ => ev(
                        seq,
                        stream,
                        "queue.transferred",
                        &on,
                        json!({"application_id": app, "from_kindergarten": kg,
                        "to_kindergarten": kgs[d.below(kgs.len())]}),
                    ),
                },
            };
            rows.push(row);
        }
        rows
    }

    /// After every entry of random histories, every application's answer (from the group
    /// replay carried forward entry by entry, and through the answer cache) has exactly the
    /// moves of the oracle (`moves`, the group replayed whole for that application), and the
    /// same bytes as a model built from zero answers with; a day passing with no entry (the
    /// re-check dates of the tail) is checked too. The kept replays are within `budget` after
    /// every answer. Returns, over all the histories, the replays dropped over the budget and
    /// the answers that found their group's replay kept.
    fn answers_equal_the_oracle(budget: usize) -> (u64, u64) {
        // Moves seen, by reason (the histories must move applications every way the oracle can).
        let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
        // The longest list of moves seen (some must be longer than an answer shows).
        let mut longest = 0;
        let (mut dropped, mut hits) = (0, 0);
        for seed in 0..24u64 {
            let rows = random_history(seed, 90);
            let mut m = KindergartenQueues::with_replay_budget(budget);
            for (n, r) in rows.iter().enumerate() {
                m.apply(&fact(r));
                // Only some steps view (the replay must also carry many entries at once).
                if seed % 3 == 0 && n % 7 != 6 && n + 1 != rows.len() {
                    continue;
                }
                let fresh: KindergartenQueues = build(&rows[..=n]);
                for (territory, terr) in &m.state.territories {
                    // Each application's list: its next allocation year's age group, or the
                    // year it left the queue in (the oracle takes it from the rules' own
                    // functions, not from the model's `list_of`).
                    let current = terr.year(m.state.today);
                    let list_of: BTreeMap<&str, (i64, Option<&str>)> = (terr.apps.iter())
                        .map(|(id, a)| {
                            let year = a.left_year.unwrap_or(a.target_year.max(current));
                            let group = queue_order::age_group_in(&m.profile.queue, a.birth, year);
                            (id.as_str(), (year, group))
                        })
                        .collect();
                    for (id, (year, group)) in list_of {
                        let path = [territory.as_str(), "applications", id];
                        let got = body(&m, &path);
                        let at = format!("seed {seed}, entry {n}, {territory}/{id}");
                        assert_eq!(
                            (got["allocation_year"].clone(), got["age_group"].clone()),
                            (json!(year), json!(group)),
                            "{at}"
                        );
                        let Some(group) = group else {
                            assert_eq!(got["position"], Value::Null, "{at}");
                            continue;
                        };
                        let group: Vec<(&str, &App)> = (terr.apps.iter())
                            .filter(|(_, a)| a.target_year <= year)
                            .filter(|(_, a)| queue_order::age_group_in(&m.profile.queue, a.birth, year) == Some(group))
                            .map(|(i, a)| (i.as_str(), a))
                            .collect();
                        let oracle = Value::Array(m.moves(terr, &group, id));
                        let all = body(&m, &[territory.as_str(), "applications", id, "moves"]);
                        assert_eq!(all["moves"].to_string(), oracle.to_string(), "{at}");
                        // The answer's summary agrees with the list: its count, net change,
                        // reasons, and the latest moves in order.
                        let list = oracle.as_array().unwrap();
                        assert_eq!(got["moves"]["total"], json!(list.len()), "{at}");
                        let net: i64 = list.iter().map(|m| m["ahead_change"].as_i64().unwrap()).sum();
                        assert_eq!(got["moves"]["ahead_change"], json!(net), "{at}");
                        let mut by_reason: BTreeMap<&str, usize> = BTreeMap::new();
                        for m in list {
                            *by_reason.entry(m["reason"].as_str().unwrap()).or_default() += 1;
                        }
                        assert_eq!(got["moves"]["by_reason"], json!(by_reason), "{at}");
                        let latest = &list[list.len().saturating_sub(MOVES_SHOWN)..];
                        longest = longest.max(list.len());
                        assert_eq!(got["moves"]["latest"], json!(latest), "{at}");
                        for mv in oracle.as_array().unwrap() {
                            *reasons.entry(mv["reason"].as_str().unwrap().to_owned()).or_default() += 1;
                        }
                        assert_eq!(got.to_string(), body(&fresh, &path).to_string(), "{at}: fresh model");
                        assert_eq!(got.to_string(), body(&m, &path).to_string(), "{at}: asked again");
                        assert!(m.replays_kept().total.bytes <= budget, "{at}: {:?}", m.replays_kept());
                    }
                }
            }
            let kept = m.replays_kept();
            (dropped, hits) = (dropped + kept.dropped, hits + kept.hits);
        }
        for reason in [
            "benefit_recheck_date_passed",
            "own_benefit_confirmed",
            "benefit_confirmed_moved_ahead",
            "withdrawn_ahead",
            "offered_a_place_ahead",
            "refused_offer_back_ahead",
            "applied_earlier_ahead",
        ] {
            assert!(reasons.get(reason).is_some_and(|n| *n > 0), "no move {reason} in {reasons:?}");
        }
        assert!(longest > 0, "no application moved at all");
        (dropped, hits)
    }

    #[test]
    fn group_replay_answers_equal_the_oracle_after_every_entry() {
        let (dropped, hits) = answers_equal_the_oracle(REPLAYS_BUDGET);
        assert_eq!(dropped, 0, "the default budget holds these small queues");
        assert!(hits > 0);
    }

    /// With no replay kept, every answer replays its group from zero: the same answers.
    #[test]
    fn answers_replayed_from_zero_equal_the_oracle() {
        let (dropped, hits) = answers_equal_the_oracle(0);
        assert!(dropped > 0);
        assert_eq!(hits, 0, "nothing is kept under a budget of 0");
    }

    /// With room for about one group's replay, answers alternate between groups kept, dropped
    /// and replayed again: the same answers.
    #[test]
    fn answers_from_replays_dropped_and_rebuilt_equal_the_oracle() {
        let (dropped, hits) = answers_equal_the_oracle(ONE_GROUP_OR_SO);
        assert!(dropped > 0 && hits > 0, "dropped {dropped}, kept {hits}: the budget must do both");
    }

    /// A budget a little over the size of one group's replay in `random_history`.
    const ONE_GROUP_OR_SO: usize = 3_000;

    /// One territory's queue (`stream`, from `seq`): four applications of one age group, a
    /// benefit confirmed for the third (it moves ahead of the first two) and the first withdrawn
    /// (the others move up): every application has moves.
    fn small_queue(stream: &str, seq: u64) -> Vec<Row> {
        vec![
            submit(seq, stream, "a1", "N-001", "2026-02-01", &["kg-1"]),
            submit(seq + 1, stream, "a2", "N-002", "2026-02-02", &["kg-1"]),
            submit(seq + 2, stream, "a3", "N-003", "2026-02-03", &["kg-1"]),
            submit(seq + 3, stream, "a4", "N-004", "2026-02-04", &["kg-1"]),
            ev(
                seq + 4,
                stream,
                "queue.benefit_claimed",
                "2026-02-05",
                json!({"application_id": "a3", "claim_id": "c3", "category": "police", "evidence_ref": "d", "recheck_on": "2027-03-01"}),
            ),
            ev(
                seq + 5,
                stream,
                "queue.benefit_confirmed",
                "2026-02-06",
                json!({"application_id": "a3", "claim_id": "c3"}),
            ),
            ev(
                seq + 6,
                stream,
                "queue.application_withdrawn",
                "2026-02-07",
                json!({"application_id": "a1", "reason": "moved"}),
            ),
        ]
    }

    /// Five territories with the same queue (so their group replays are the same size), one
    /// after another in the log.
    fn five_queues() -> Vec<Row> {
        (0..5u64).flat_map(|k| small_queue(&format!("queue/kg/t{k}"), k * 10)).collect()
    }

    /// The (territory, age group) replays kept, by territory.
    fn kept_territories(m: &KindergartenQueues) -> Vec<String> {
        let r = m.replays.lock().unwrap();
        let mut kept: Vec<String> = r.groups.keys().map(|(t, _)| t.clone()).collect();
        kept.sort();
        kept
    }

    /// Under a budget of three groups' replays, answering a fourth and a fifth group drops the
    /// least recently answered (not the first kept: one answered again since stays), the kept
    /// total never passes the budget, and a dropped group's next answer (replayed from zero) is
    /// the one a model keeping everything gives. A group over the budget alone is not kept.
    #[test]
    fn kept_replays_stay_within_the_budget_dropping_the_least_recently_answered() {
        let rows = five_queues();
        let all: KindergartenQueues = build(&rows);
        let moves = |m: &KindergartenQueues, t: &str, a: &str| body(m, &[t, "applications", a, "moves"]);
        for k in 0..5 {
            moves(&all, &format!("t{k}"), "a2");
        }
        let kept = all.replays_kept();
        let ((_, group), one) = kept.largest.clone().unwrap();
        assert_eq!((kept.groups, kept.dropped, group.as_str()), (5, 0, "2026/3-4"), "{kept:?}");
        assert_eq!(kept.total.bytes, 5 * one.bytes, "the five replays are alike: {kept:?}");
        assert_eq!((one.tracks, kept.total.moves), (4, 5 * one.moves));
        assert!(one.moves >= 4 && one.bytes > one.moves * std::mem::size_of::<MoveRef>(), "{one:?}");

        let mut m = KindergartenQueues::with_replay_budget(3 * one.bytes);
        rows.iter().for_each(|r| m.apply(&fact(r)));
        let ask = |m: &KindergartenQueues, t: &str, a: &str| {
            assert_eq!(moves(m, t, a), moves(&all, t, a), "{t}/{a}");
            let kept = m.replays_kept();
            assert!(kept.total.bytes <= kept.budget, "{kept:?}");
            kept
        };
        for t in ["t0", "t1", "t2"] {
            ask(&m, t, "a2");
        }
        assert_eq!(kept_territories(&m), ["t0", "t1", "t2"]);
        assert_eq!(m.replays_kept().total.bytes, 3 * one.bytes);
        // t0 answered again (another application of its group): t1 is now the least recent.
        ask(&m, "t0", "a4");
        let kept = ask(&m, "t3", "a2");
        assert_eq!(kept_territories(&m), ["t0", "t2", "t3"]);
        assert_eq!((kept.dropped, kept.hits), (1, 1));
        ask(&m, "t4", "a3");
        assert_eq!(kept_territories(&m), ["t0", "t3", "t4"]);
        // t1 again: replayed from zero, the same moves; t0 goes now.
        let kept = ask(&m, "t1", "a3");
        assert_eq!(kept_territories(&m), ["t1", "t3", "t4"]);
        assert_eq!((kept.groups, kept.total.bytes, kept.dropped, kept.hits), (3, 3 * one.bytes, 3, 1));

        // A budget under one group's replay keeps none, and answers the same.
        let mut none = KindergartenQueues::with_replay_budget(one.bytes - 1);
        rows.iter().for_each(|r| none.apply(&fact(r)));
        for a in ["a2", "a3", "a2"] {
            let kept = ask(&none, "t2", a);
            assert_eq!((kept.groups, kept.total), (0, ReplaySize::default()), "{kept:?}");
        }
        assert_eq!(none.replays_kept().dropped, 3);
        // Loading the state forgets the replays and their count, not the budget.
        none.load(&all.encode()).unwrap();
        assert_eq!(none.replays_kept(), ReplaysKept { budget: one.bytes - 1, ..Default::default() });
    }

    /// Views on several threads at once under a budget of two groups: replays are dropped while
    /// other views answer from them, and every answer is still the one a model keeping
    /// everything gives.
    #[test]
    fn concurrent_answers_under_a_small_budget_equal_a_model_keeping_everything() {
        let rows = five_queues();
        let all: KindergartenQueues = build(&rows);
        let paths: Vec<[String; 4]> = (0..5)
            .flat_map(|k| {
                ["a1", "a2", "a3", "a4"].map(|a| [format!("t{k}"), "applications".into(), a.into(), "moves".into()])
            })
            .collect();
        let expected: Vec<Value> =
            paths.iter().map(|p| body(&all, &p.iter().map(String::as_str).collect::<Vec<_>>())).collect();
        let one = all.replays_kept().largest.unwrap().1;
        let mut m = KindergartenQueues::with_replay_budget(2 * one.bytes);
        rows.iter().for_each(|r| m.apply(&fact(r)));
        std::thread::scope(|s| {
            for thread in 0..4usize {
                let (m, paths, expected) = (&m, &paths, &expected);
                s.spawn(move || {
                    for round in 0..10 {
                        for i in 0..paths.len() {
                            // Each thread walks the paths from its own start, in its own stride.
                            let j = (thread * 7 + i * (2 * thread + 1) + round) % paths.len();
                            let p: Vec<&str> = paths[j].iter().map(String::as_str).collect();
                            assert_eq!(body(m, &p), expected[j], "{p:?}");
                        }
                    }
                });
            }
        });
        let kept = m.replays_kept();
        assert!(kept.total.bytes <= kept.budget && kept.groups <= 2 && kept.dropped > 0, "{kept:?}");
    }

    #[test]
    fn deterministic() {
        check_determinism::<KindergartenQueues>(&history());
    }
}
