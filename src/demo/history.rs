//! The demo region's lifelong history: before the live year, keys of the `migration` role import
//! earlier years of a cohort of the region's own learners from the legacy systems (BARS, the
//! region's; СОЛО, another region's school a learner transferred from), so that a learner's
//! profile spans the kindergarten queue to college or university; and the keys replaced along
//! the live year (a teacher's key revoked and renewed, a registrar's key rotated) and an
//! achievement revoked. Not the live year's own events (the sibling modules, which continue the
//! same learners: `contingent` assigns the cohort its class of this year instead of admitting it).
//!
//! What a migration imports carries `data.migrated_from` (system and record id) and its old
//! `occurred_at`, written now: the types the vocabulary lets a migration import (the queue
//! application, the contingent: admissions, classes of each year, transfers, graduations; term
//! and year grades, final attestation, certificates, course results, achievements). The
//! kindergarten placement is not such a type (offers and enrolments are decisions of an
//! allocation run): the same keys re-enter it now, as an additional run naming the old order.

use super::day;
use super::instant;
use super::learner_stream;
use super::population::{Student, GRANTS_VALID_FROM, LETTERS, SUBJECTS, TERRITORIES};
use super::sch;
use super::year_month;
use super::DemoRegion;
use super::DemoSize;
use super::Script;
use super::Source;
use super::Swap;
use crate::time::format_rfc3339;
use serde_json::json;
use std::collections::BTreeMap;

/// The region's legacy system (schools, colleges, universities, the kindergarten queues).
pub(super) const LEGACY: &str = "BARS";
/// The legacy system of the region a learner transferred from, and its school (registered here
/// so that the imported years name it; its territory is the other region).
pub(super) const OTHER_REGION_LEGACY: &str = "СОЛО";
pub(super) const OTHER_REGION_SCHOOL: &str = "78-sch-0001";
const OTHER_REGION: &str = "ru-78";
/// The teacher (a key index, `demo_key(origin, "teacher/2")`) whose key is revoked mid-year;
/// later entries carry a new key.
pub const REVOKED_TEACHER: usize = 2;

/// The demo region's migration cutover (its config's `migration_closes_at`): the start of the
/// live year, 1 September 2026 at 00:00 in the region (UTC+3). The migration's imports are all
/// recorded from `migration_day` on, within a day or two (`Clock`), so before it; every import
/// recorded later, by any key, is refused (`migration_closed`).
pub const MIGRATION_CLOSES_AT: &str = "2026-09-01T00:00:00+03:00";

/// The day the migration starts (its imports follow one another a second apart).
fn migration_day() -> i64 {
    day(2026, 8, 10)
}

/// When the teacher's key is revoked (a renewed key is granted at the same time) and when the
/// first school's registrar rotates its key: entries after these instants carry the new keys.
fn teacher_revoked_at() -> i64 {
    instant(day(2026, 12, 1), 3 * 60 + 30)
}

fn registrar_rotated_at() -> i64 {
    instant(day(2027, 1, 11), 3 * 60 + 30)
}

/// The cohort is a bounded sample, so that a large region's history stays a small part of it:
/// school learners below this number, students (college, then university) below `STUDENTS_MAX`.
const SCHOOL_LEARNERS_MAX: u64 = 10_000;
const STUDENTS_MAX: u64 = 1_500;

/// Whether college or university student number `k` (of `Cast::student`) is in the cohort.
fn student_in_cohort(k: u64) -> bool {
    k.is_multiple_of(3) && k < STUDENTS_MAX
}

/// The learner number of the demo's lifelong sample in a region of `size`: the first student of
/// the cohort at a college past its 1st year (the 4th year when the region has one college:
/// their diploma follows in the live year), so that their record runs from the kindergarten
/// queue through school and final attestation to college.
pub(super) fn lifelong_learner(size: DemoSize) -> u64 {
    let (colleges, _, college_students, _) = super::population::higher_counts(size);
    let learners = size.learners.max(1);
    (0..college_students)
        .filter(|k| student_in_cohort(*k) && 1 + (k / colleges) % 4 >= 2)
        .map(|k| learners + k)
        .next()
        .unwrap_or(learners)
}

/// Where a learner was at school: one of the region's schools, or the other region's.
#[derive(Clone, Copy, PartialEq, Eq)]
enum School {
    Ours(u64),
    Other,
}

/// A stay at one school: its first and last school year (1 to 11).
#[derive(Clone, Copy)]
struct Stay {
    school: School,
    first: i64,
    last: i64,
}

/// The migration's time: a second per `per_second` written events from `migration_day`, 06:00
/// to 20:00 UTC (the region's date is then the same), going on into the next day when one is
/// full. Events written in one second keep their build order.
struct Clock {
    day: i64,
    at: i64,
    per_second: u64,
    written: u64,
}

impl Clock {
    /// A clock that writes about `events` within a day or two, well before the live year.
    fn for_about(events: u64) -> Self {
        let day = migration_day();
        Clock { day, at: instant(day, 6 * 60), per_second: events.div_ceil(40_000).max(1), written: 0 }
    }

    fn tick(&mut self) -> i64 {
        self.written += 1;
        if self.written.is_multiple_of(self.per_second) {
            self.at += 1;
        }
        if self.at >= instant(self.day, 20 * 60) {
            self.day += 1;
            self.at = instant(self.day, 6 * 60);
        }
        self.at
    }
}

/// A kindergarten application the migration imports (the child is now a school learner or a
/// student), and its placement.
struct LegacyApp {
    learner: u64,
    territory: u64,
    /// Birth year: the application is filed the spring after, for a place from 1 September 3
    /// years after birth.
    born: i64,
    kindergarten: String,
}

impl LegacyApp {
    fn id(&self) -> String {
        format!("{}-{}-{:06}", TERRITORIES[self.territory as usize], self.born + 3, self.learner)
    }
    fn number(&self) -> String {
        format!("47-{:02}-{}-{:06}", self.territory + 1, self.born + 3, self.learner)
    }
    /// When the family filed it in the legacy system (the queue keeps this time for an import).
    fn filed(&self) -> i64 {
        instant(day(self.born + 1, 3, 15) + (self.learner % 28) as i64, 7 * 60)
    }
}

impl DemoRegion {
    /// Whether school learner `n` is in the cohort whose earlier years the migration imports:
    /// every tenth learner from the 2nd school year on (among the first `SCHOOL_LEARNERS_MAX`).
    pub(super) fn in_school_cohort(&self, n: u64) -> bool {
        self.has_history()
            && n < self.cast.learners.min(SCHOOL_LEARNERS_MAX)
            && n % 10 == 4
            && self.cast.pupil(n).year >= 2
    }

    /// Whether student `n` (a population index) is in the cohort and was admitted to their college
    /// or university before this year (by the migration, so this year's admission is not written).
    pub(super) fn admitted_by_migration(&self, n: u64) -> bool {
        let c = &self.cast;
        self.has_history()
            && (c.learners..c.learners + c.college_students + c.uni_students).contains(&n)
            && student_in_cohort(n - c.learners)
            && c.student(n).year >= 2
    }

    /// The keys replaced along the live year.
    pub(super) fn key_swaps(&self) -> Vec<Swap> {
        let c = &self.cast;
        let mut swaps = Vec::new();
        if c.teachers > REVOKED_TEACHER {
            swaps.push(Swap { old: REVOKED_TEACHER, from: teacher_revoked_at() + 1, new: c.teacher_renewed });
        }
        swaps.push(Swap { old: c.school_registrar[0], from: registrar_rotated_at() + 1, new: c.registrar_rotated });
        swaps
    }

    /// The migration: the other region's school registered, the migration keys granted, the
    /// imports of the cohort's earlier years (kindergarten queue and placement, school years,
    /// final attestation and certificates, college and university years), the keys revoked.
    pub(super) fn migration(&self, s: &mut Script) {
        let c = &self.cast;
        let a = c.authority;
        let at = instant(day(2026, 8, 1), 0);
        let data = json!({"institution": OTHER_REGION_SCHOOL, "kind": "school", "territory": OTHER_REGION});
        s.push(at, "registry", "registry.institution_registered", a, data);
        let grant = |s: &mut Script, key: usize, holder: String, roles: &[&str], scope: serde_json::Value| {
            let data = json!({"key": self.dids[key], "holder": holder, "roles": roles, "scope": scope,
                "valid_from": GRANTS_VALID_FROM});
            s.push(at, "registry", "keys.granted", a, data);
        };
        let school_roles = ["migration", "registrar", "teacher", "achievement_issuer"];
        let higher_roles = ["migration", "registrar", "teacher"];
        let mut all = Vec::new();
        for (i, &key) in c.migration_school.iter().enumerate() {
            let id = sch(i as u64);
            grant(s, key, format!("p-migr-{id}"), &school_roles, json!({ "institution": id }));
            all.push(key);
        }
        let other = c.migration_other_school;
        grant(s, other, "p-migr-ru-78".into(), &higher_roles, json!({ "institution": OTHER_REGION_SCHOOL }));
        all.push(other);
        for (t, &key) in c.migration_queue.iter().enumerate() {
            let territory = TERRITORIES[t];
            let roles = ["migration", "queue_operator"];
            grant(s, key, format!("p-migr-queue-{territory}"), &roles, json!({ "territory": territory }));
            all.push(key);
        }
        for (prefix, keys) in [("col", &c.migration_college), ("uni", &c.migration_uni)] {
            for (i, &key) in keys.iter().enumerate() {
                let id = format!("{prefix}-{:03}", i + 1);
                grant(s, key, format!("p-migr-{id}"), &higher_roles, json!({ "institution": id }));
                all.push(key);
            }
        }

        let students = c.learners..c.learners + c.college_students + c.uni_students;
        let school_cohort = (0..c.learners).filter(|n| self.in_school_cohort(*n)).count() as u64;
        let student_cohort = students.clone().filter(|n| student_in_cohort(n - c.learners)).count() as u64;
        // At most ~100 records per school learner (10 years) and ~200 per student (school and
        // college years): an upper bound for the clock.
        let mut clock = Clock::for_about(100 * school_cohort + 200 * student_cohort);
        let mut apps = Vec::new();
        for n in (0..c.learners).filter(|n| self.in_school_cohort(*n)) {
            let p = c.pupil(n);
            let first = 2026 - (p.year as i64 - 1);
            apps.push(self.legacy_app(n, p.school, first));
        }
        for n in students.clone().filter(|n| student_in_cohort(n - c.learners)) {
            let st = c.student(n);
            apps.push(self.legacy_app(n, n % c.schools, self.student_first_grade(st)));
        }
        self.import_queues(s, &mut clock, &apps);
        for n in (0..c.learners).filter(|n| self.in_school_cohort(*n)) {
            let p = c.pupil(n);
            let (y, school) = (p.year as i64, p.school);
            let stays = match n / 10 % 6 {
                5 if y >= 4 => vec![
                    Stay { school: School::Other, first: 1, last: 2 },
                    Stay { school: School::Ours(school), first: 3, last: y - 1 },
                ],
                2 if y >= 4 && c.schools > 1 => vec![
                    Stay { school: School::Ours((school + 1) % c.schools), first: 1, last: 2 },
                    Stay { school: School::Ours(school), first: 3, last: y - 1 },
                ],
                _ => vec![Stay { school: School::Ours(school), first: 1, last: y - 1 }],
            };
            self.school_years(s, &mut clock, n, p.letter, 2026 - (y - 1), &stays);
        }
        for n in students.filter(|n| student_in_cohort(n - c.learners)) {
            self.student_years(s, &mut clock, n);
        }
        // The migration is over: its keys lose every right.
        for key in all {
            let data = json!({"key": self.dids[key], "reason": "миграция из унаследованной системы завершена"});
            s.push(clock.tick(), "registry", "keys.revoked", a, data);
        }
    }

    /// The 1st-grade year (its academic year) of a student: 9 school years before a college,
    /// 11 before a university, the last one right before their admission.
    fn student_first_grade(&self, st: Student) -> i64 {
        let admitted = 2027 - st.year as i64;
        admitted - if st.college { 9 } else { 11 }
    }

    fn legacy_app(&self, n: u64, school: u64, first_grade: i64) -> LegacyApp {
        let c = &self.cast;
        let territory = school % c.territories;
        let j = n % c.kgs_per_territory;
        LegacyApp {
            learner: n,
            territory,
            born: first_grade - 7,
            kindergarten: format!("kg-{:03}", territory + j * c.territories + 1),
        }
    }

    /// Each territory's imported applications, then their placement: per legacy allocation year,
    /// an additional run of that year declaring a place for each child entering then, offers in
    /// queue order (all in the general tier, so by the time of filing), acceptances and the
    /// kindergartens' enrolment orders.
    fn import_queues(&self, s: &mut Script, clock: &mut Clock, apps: &[LegacyApp]) {
        let c = &self.cast;
        let cfg = zachetka_rules::RegionConfig::default();
        for t in 0..c.territories {
            let terr = TERRITORIES[t as usize];
            let q = format!("queue/kg/{terr}");
            let key = c.migration_queue[t as usize];
            let mine: Vec<&LegacyApp> = apps.iter().filter(|a| a.territory == t).collect();
            if mine.is_empty() {
                continue;
            }
            // Places per legacy allocation year (the year each child entered), kindergarten and
            // age group on that year's 1 September.
            let mut places: BTreeMap<i64, BTreeMap<(String, String), i64>> = BTreeMap::new();
            for a in &mine {
                let birth = year_month(a.born * 12 + 1 + (a.learner % 6) as i64);
                let desired = format!("{}-09-01", a.born + 3);
                let group = zachetka_projections::queue_order::age_group_of(&cfg.queue, &birth, &desired)
                    .expect("a legacy child is 3 on 1 september");
                *places.entry(a.born + 3).or_default().entry((a.kindergarten.clone(), group)).or_default() += 1;
                let data = json!({"application_id": a.id(), "number": a.number(),
                    "learner": format!("47-{:06}", a.learner), "birth_month": birth, "desired_date": desired,
                    "preferred": [a.kindergarten], "group_type": "general"});
                let from = Source { system: LEGACY, record: format!("{terr}/zayavlenie/{:06}", a.learner) };
                s.import(clock.tick(), a.filed(), &q, "queue.application_submitted", key, data, from);
            }
            // One run per legacy allocation year, naming it (`academic_year`, allowed in the past
            // only to a migration key): its offers follow that year's order and age groups.
            for (year, rows) in places {
                let run = format!("{terr}-migration-{LEGACY}-{year}");
                let rows: Vec<serde_json::Value> = rows
                    .iter()
                    .map(|((kg, group), n)| json!({"kindergarten": kg, "age_group": group, "group_type": "general", "places": n}))
                    .collect();
                let data = json!({"run_id": run, "kind": "additional", "places": rows, "academic_year": year});
                // The legacy system's decisions, imported with their own dates (June to August of
                // that year) and record ids: the placement was made then, not by this ledger now.
                let src = |what: &str, id: &str| Source { system: LEGACY, record: format!("{terr}/{what}/{id}") };
                let ty = "queue.allocation_started";
                s.import(
                    clock.tick(),
                    instant(day(year, 6, 1), 9 * 60),
                    &q,
                    ty,
                    key,
                    data,
                    src("komplektovanie", &run),
                );
                let mut entering: Vec<&LegacyApp> = mine.iter().copied().filter(|a| a.born + 3 == year).collect();
                entering.sort_by_key(|a| (a.filed(), a.number()));
                for (i, a) in entering.into_iter().enumerate() {
                    let offer = format!("{}-o1", a.id());
                    let minute = 10 * 60 + i as i64;
                    let data = json!({"offer_id": offer, "application_id": a.id(), "kindergarten": a.kindergarten});
                    let (from, ty) = (src("napravlenie", &offer), "queue.place_offered");
                    s.import(clock.tick(), instant(day(year, 6, 1), minute), &q, ty, key, data, from);
                    let (from, ty) = (src("soglasie", &offer), "queue.offer_accepted");
                    s.import(
                        clock.tick(),
                        instant(day(year, 6, 15), minute),
                        &q,
                        ty,
                        key,
                        json!({ "offer_id": offer }),
                        from,
                    );
                    let order = format!("{}-{}-{:06}", a.kindergarten, a.born + 3, a.learner);
                    let data = json!({"application_id": a.id(), "kindergarten": a.kindergarten, "order_ref": order});
                    let (from, ty) = (src("prikaz", &order), "queue.enrolled");
                    s.import(clock.tick(), instant(day(year, 8, 25), minute), &q, ty, key, data, from);
                }
                let (from, ty) = (src("komplektovanie", &format!("{run}/end")), "queue.allocation_finished");
                s.import(clock.tick(), instant(day(year, 8, 31), 18 * 60), &q, ty, key, json!({ "run_id": run }), from);
            }
        }
    }

    /// The migration key, the legacy system and the id of a school.
    fn school_of(&self, school: School) -> (usize, &'static str, String) {
        match school {
            School::Ours(i) => (self.cast.migration_school[i as usize], LEGACY, sch(i)),
            School::Other => (self.cast.migration_other_school, OTHER_REGION_LEGACY, OTHER_REGION_SCHOOL.to_owned()),
        }
    }

    /// A learner's school years `stays` (1st grade in academic year `first_grade`, class letter
    /// `letter`): the admission, each year's class, transfers between the stays, and from the
    /// 2nd year on four term grades and the year grade in two subjects, imported.
    fn school_years(&self, s: &mut Script, clock: &mut Clock, n: u64, letter: usize, first_grade: i64, stays: &[Stay]) {
        let stream = learner_stream(n);
        let mut previous: Option<Stay> = None;
        for stay in stays {
            let (key, system, inst) = self.school_of(stay.school);
            let class = |y: i64| format!("{y}{}", LETTERS[letter]);
            let year_of = |y: i64| first_grade + y - 1;
            if let Some(before) = previous {
                let (from_key, from_system, from_inst) = self.school_of(before.school);
                let on = day(year_of(before.last) + 1, 6, 30);
                let data = json!({"from_institution": from_inst, "to_institution": inst,
                    "transferred_on": super::date(on)});
                let from = Source { system: from_system, record: format!("{from_inst}/{n:06}/transfer") };
                s.import(clock.tick(), instant(on, 9 * 60), &stream, "learner.transferred", from_key, data, from);
            }
            let a = year_of(stay.first);
            let data = json!({"institution": inst, "class": class(stay.first), "academic_year": a,
                "admitted_on": format!("{a}-09-01"), "order_ref": format!("{inst}-{a}-adm-{n:06}")});
            let from = Source { system, record: format!("{inst}/{n:06}/{a}/admission") };
            s.import(clock.tick(), instant(day(a, 9, 1), 9 * 60), &stream, "contingent.admitted", key, data, from);
            for y in stay.first..=stay.last {
                let a = year_of(y);
                if y > stay.first {
                    let data = json!({"institution": inst, "class": class(y), "academic_year": a,
                        "assigned_on": format!("{a}-09-01")});
                    let from = Source { system, record: format!("{inst}/{n:06}/{a}/class") };
                    let at = instant(day(a, 9, 1), 9 * 60);
                    s.import(clock.tick(), at, &stream, "contingent.class_assigned", key, data, from);
                }
                if y < 2 {
                    continue;
                }
                let terms = [day(a, 10, 28), day(a, 12, 26), day(a + 1, 3, 20), day(a + 1, 5, 25)];
                for k in 0..2u64 {
                    let subject = SUBJECTS[((n + y as u64 + 2 * k) % SUBJECTS.len() as u64) as usize];
                    let record = |what: &str| Source { system, record: format!("{inst}/{n:06}/{a}/{k}/{what}") };
                    for (term, d) in terms.iter().enumerate() {
                        let mark = 3 + ((n + y as u64 + k + term as u64) % 3) as i64;
                        let data = json!({"institution": inst, "class": class(y), "subject": subject,
                            "academic_year": a, "term": term as i64 + 1, "mark": mark, "scale": "five_point"});
                        let from = record(&format!("t{}", term + 1));
                        s.import(clock.tick(), instant(*d, 9 * 60), &stream, "journal.term_grade_set", key, data, from);
                    }
                    let data = json!({"institution": inst, "class": class(y), "subject": subject, "academic_year": a,
                        "mark": 3 + ((n + y as u64 + k) % 3) as i64, "scale": "five_point"});
                    let at = instant(day(a + 1, 5, 28), 9 * 60);
                    s.import(clock.tick(), at, &stream, "journal.year_grade_set", key, data, record("year"));
                }
            }
            previous = Some(*stay);
        }
    }

    /// A student of the cohort: kindergarten (imported with the others), 9 or 11 school years, an
    /// olympiad, final attestation (ОГЭ before a college, ЕГЭ before a university) and the
    /// certificate, leaving school; then, past their 1st year, the admission to their college or
    /// university and the course results of the years before this one.
    fn student_years(&self, s: &mut Script, clock: &mut Clock, n: u64) {
        let c = &self.cast;
        let st = c.student(n);
        let school = n % c.schools;
        let first = self.student_first_grade(st);
        let last = if st.college { 9 } else { 11 };
        let letter = (n % LETTERS.len() as u64) as usize;
        self.school_years(s, clock, n, letter, first, &[Stay { school: School::Ours(school), first: 1, last }]);
        let (key, system, inst) = self.school_of(School::Ours(school));
        let stream = learner_stream(n);
        // An olympiad in the 8th year.
        let d = day(first + 7, 11, 20);
        let data = json!({"achievement_id": format!("bars-olymp-{n:06}"), "kind": "olympiad", "level": "municipal",
            "date": super::date(d), "result": "призёр", "contest_ref": format!("vsosh-{}-municipal", first + 7)});
        let from = Source { system, record: format!("portfolio/{n:06}/1") };
        s.import(clock.tick(), instant(d, 9 * 60), &stream, "portfolio.achievement_attested", key, data, from);
        let finished = first + last; // the calendar year of the final exams
        let cfg = zachetka_rules::RegionConfig::default();
        let (exam, level) = if st.college { ("oge", "basic_general") } else { ("ege", "secondary_general") };
        let req = &cfg.certificate_requirements[level];
        for (j, subject) in req.required_subjects.iter().enumerate() {
            let sc = &req.subjects[subject];
            let score = sc.pass + ((n * 7 + j as u64 * 13) % (sc.max - sc.pass + 1) as u64) as i64;
            let data = json!({"institution": inst, "exam": exam, "subject": subject, "academic_year": finished - 1,
                "score": score});
            let from = Source { system, record: format!("gia/{finished}/{n:06}/{j}") };
            let at = instant(day(finished, 6, 1) + 3 * j as i64, 9 * 60);
            s.import(clock.tick(), at, &stream, "journal.final_attestation_recorded", key, data, from);
        }
        let issued = format!("{finished}-06-25");
        let data = json!({"institution": inst, "level": level, "number": format!("{inst}-{exam}-{n:06}"),
            "issued_on": issued});
        let from = Source { system, record: format!("attestat/{finished}/{n:06}") };
        s.import(
            clock.tick(),
            instant(day(finished, 6, 25), 9 * 60),
            &stream,
            "journal.certificate_issued",
            key,
            data,
            from,
        );
        let data = json!({"institution": inst, "graduated_on": format!("{finished}-06-28")});
        let from = Source { system, record: format!("{inst}/{n:06}/graduation") };
        let at = instant(day(finished, 6, 28), 9 * 60);
        s.import(clock.tick(), at, &stream, "contingent.graduated", key, data, from);
        if st.year < 2 {
            return; // admitted this year, live
        }
        let inst = st.institution_id();
        let key = if st.college { &c.migration_college } else { &c.migration_uni }[st.institution as usize];
        let programs = if st.college { super::population::COLLEGE_PROGRAMS } else { super::population::UNI_PROGRAMS };
        let data = json!({"institution": inst, "class": st.group(), "academic_year": finished,
            "admitted_on": format!("{finished}-09-01"), "order_ref": format!("{inst}-{finished}-adm-{n:07}"),
            "program_id": programs[st.program]});
        let from = Source { system: LEGACY, record: format!("{inst}/{n:07}/admission") };
        let at = instant(day(finished, 9, 1), 9 * 60);
        s.import(clock.tick(), at, &stream, "contingent.admitted", key, data, from);
        let courses = super::contingent::curriculum(st.college);
        for year in 1..st.year as i64 {
            for (half, d) in [(1, day(finished + year, 1, 20)), (2, day(finished + year, 6, 20))] {
                let term = 2 * year - 2 + half;
                for k in 0..2 {
                    let course = courses[(term as usize + k) % courses.len()];
                    let (mark, scale) = if st.college {
                        (json!(4 + (n + k as u64) as i64 % 2), "five_point")
                    } else {
                        (json!(["хорошо", "отлично"][(n as usize + k) % 2]), "four_level")
                    };
                    let data = json!({"institution": inst, "group": st.group(), "course": course, "term": term,
                        "mark": mark, "scale": scale});
                    let from = Source { system: LEGACY, record: format!("{inst}/{n:07}/{term}/{k}") };
                    s.import(
                        clock.tick(),
                        instant(d, 9 * 60),
                        &stream,
                        "college.course_result_recorded",
                        key,
                        data,
                        from,
                    );
                }
            }
        }
    }

    /// Along the live year: a teacher's key revoked mid-year (the school admin grants the teacher
    /// a new key first; later entries carry it), the first school's registrar rotating its key,
    /// and the lifelong sample's imported olympiad revoked by the school's issuer.
    pub(super) fn keys_along_the_way(&self, s: &mut Script) {
        let c = &self.cast;
        if c.teachers > REVOKED_TEACHER {
            let school = REVOKED_TEACHER as u64 % c.schools;
            let admin = c.school_admin[school as usize];
            let at = teacher_revoked_at();
            let data = json!({"key": self.dids[c.teacher_renewed], "holder": format!("t-{REVOKED_TEACHER:05}"),
                "roles": ["teacher"], "scope": {"institution": sch(school)}, "valid_from": format_rfc3339(at)});
            s.push(at, "registry", "keys.granted", admin, data);
            let data = json!({"key": self.dids[REVOKED_TEACHER], "reason": "носитель ключа утерян"});
            s.push(at, "registry", "keys.revoked", admin, data);
        }
        let registrar = c.school_registrar[0];
        let data = json!({"old_key": self.dids[registrar], "new_key": self.dids[c.registrar_rotated]});
        s.push(registrar_rotated_at(), "registry", "keys.rotated", registrar, data);
        let n = lifelong_learner(self.size);
        if student_in_cohort(n - c.learners) {
            let issuer = c.school_issuer[(n % c.schools) as usize];
            let data = json!({"achievement_id": format!("bars-olymp-{n:06}"),
                "reason": "результат олимпиады аннулирован организатором"});
            s.push(
                instant(day(2026, 10, 15), 5 * 60),
                &learner_stream(n),
                "portfolio.achievement_revoked",
                issuer,
                data,
            );
        }
    }
}
