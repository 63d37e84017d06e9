//! The streamed school journal: slot `i` of `DemoSize::events` is a lesson, a grade, an
//! attendance mark, a correction of the previous slot, or a portfolio achievement (college and
//! university slots go to `higher`). Slots fall on the school days of the region's calendar, and
//! a grade or an attendance mark is given at a lesson of the class the journal recorded in the
//! days before (a slot whose class had none records that lesson instead), so the event count is
//! `DemoSize::events` whatever the mix. Not the structural events, nor their merge (`merge`).

use super::date;
use super::event_id;
use super::hex8;
use super::instant;
use super::learner_stream;
use super::population::Pupil;
use super::population::SUBJECTS;
use super::sch;
use super::u64_of;
use super::DemoRegion;
use super::Item;
use crate::time::format_rfc3339;
use serde_json::json;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Grade kinds and their weights, as in the default region config.
pub(super) const KINDS: [(&str, i64); 3] = [("test", 5), ("classwork", 3), ("homework", 1)];
pub(super) const ATTENDANCE: [&str; 4] = ["Н", "Б", "УП", "ОП"];

/// A grade or an attendance mark is given at a lesson of its class held at most this many days
/// before it (marks are entered on the day, or a few days later).
pub(super) const LESSON_WINDOW_DAYS: i64 = 3;

/// Grades and attendance marks are given at one of the school lessons the streamed journal
/// recorded last, at most this many.
pub(super) const LESSON_POOL: usize = 32;

/// A school lesson the streamed journal recorded: the class (school, year, letter), its day and
/// subject, the time it was written and its teacher (a key index).
#[derive(Debug, Clone, Copy)]
pub(super) struct Lesson {
    school: u64,
    year: u64,
    letter: usize,
    day: i64,
    subject: &'static str,
    at: i64,
    teacher: usize,
}

/// What a school slot writes: stream, type, data, author (a key index), what it records and
/// for which learner (a population index).
pub(super) struct SchoolRecord {
    stream: String,
    ty: &'static str,
    data: Value,
    author: usize,
    kind: SchoolKind,
    pupil: u64,
}

/// The latest school record of the streamed journal: its slot, what it records, for which
/// learner, and its author (a correction names the record of the slot just before it).
#[derive(Debug, Clone, Copy)]
pub(super) struct LastRecord {
    slot: u64,
    kind: SchoolKind,
    pupil: u64,
    author: usize,
}

/// A journal slot: its hash, day, time, and whose record it is (a population index).
pub(super) struct Slot {
    pub(super) h: [u8; 32],
    pub(super) day: i64,
    pub(super) at: i64,
    pub(super) who: u64,
}

impl DemoRegion {
    /// Journal slot `i`: its hash, day and time, and whose record it is.
    pub(super) fn slot(&self, i: u64) -> Slot {
        let h: [u8; 32] = Sha256::digest(format!("{}\n{i}", self.origin)).into();
        let c = &self.cast;
        let population = c.learners + c.college_students + c.uni_students;
        let who = u64_of(&h) % population;
        // The i-th slot of the span's school days (the span holds at least one).
        let days = self.school_days.len() as u64;
        let d = self.school_days[(i * days / self.size.events.max(1)).min(days - 1) as usize];
        let at = instant(d, 6 * 60 + i64::from(h[9]));
        Slot { h, day: d, at, who }
    }

    pub(super) fn journal_event(&mut self, i: u64) -> Item {
        let Slot { h, day: d, at, who } = self.slot(i);
        let c = &self.cast;
        if who >= c.learners {
            return self.student_event(i, h, d, at, c.student(who));
        }
        // A correction of the previous slot's grade or attendance mark, an hour later, by its
        // author, authorised by the class teacher.
        let last = self.last_school.filter(|r| r.slot + 1 == i);
        if let Some(LastRecord { kind: kind @ (SchoolKind::Grade | SchoolKind::Attendance), pupil, author, .. }) =
            last.filter(|_| h[14] < 8)
        {
            let Slot { h: ph, at: pat, .. } = self.slot(i - 1);
            let p = c.pupil(pupil);
            let mut data = json!({"v": 1, "institution": sch(p.school), "class": p.class(),
                "corrected_event_id": event_id(&self.origin, i - 1, pat),
                "authorised_by": self.dids[c.class_authority(&p)]});
            if kind == SchoolKind::Grade {
                let old = 2 + i64::from(ph[12] % 4);
                data["mark"] = json!(if old == 5 { 4 } else { old + 1 });
                data["scale"] = json!("five_point");
                data["reason"] = json!("ошибка при вводе отметки");
            } else {
                data["code"] = json!("УП");
                data["reason"] = json!("представлена справка");
            }
            return self.item(i, &learner_stream(pupil), "journal.record_corrected", pat + 3600, author, data);
        }
        let r = self.school_record(&h, d, at, c.pupil(who));
        self.last_school = Some(LastRecord { slot: i, kind: r.kind, pupil: r.pupil, author: r.author });
        self.item(i, &r.stream, r.ty, at, r.author, r.data)
    }

    /// The lesson a grade or an attendance mark written at `at` on day `d` is given at: one of
    /// the latest school lessons the journal recorded (`LESSON_POOL`), held from
    /// `LESSON_WINDOW_DAYS` before up to then, chosen by `pick`.
    fn recent_lesson(&mut self, d: i64, at: i64, pick: u8) -> Option<Lesson> {
        self.lessons.retain(|l| l.day >= d - LESSON_WINDOW_DAYS);
        let held: Vec<Lesson> = self.lessons.iter().filter(|l| l.at <= at).copied().collect();
        (!held.is_empty()).then(|| held[usize::from(pick) % held.len()])
    }

    /// The school record of a slot (before corrections): stream, type, data, its author, and
    /// what it records, for whom. A grade or an attendance mark is given at a recent lesson, to
    /// a learner of that lesson's class (the slot's hash picks them: a lesson gathers the marks
    /// of several of its learners); with no lesson recorded in the days before, the slot records
    /// a lesson of the slot's learner's class instead.
    fn school_record(&mut self, h: &[u8; 32], d: i64, at: i64, slot_pupil: Pupil) -> SchoolRecord {
        let mut p = slot_pupil;
        let mut subject = SUBJECTS[(h[8] % SUBJECTS.len() as u8) as usize];
        let mut lesson_date = date(d);
        let mut kind = self.kind_of(h, &p);
        let mut teacher = self.cast.teacher_of(p.school, u64::from(h[13]));
        if kind == SchoolKind::Grade || kind == SchoolKind::Attendance {
            match self.recent_lesson(d, at, h[15]) {
                Some(lesson) => {
                    p = self.cast.pupil(self.cast.member_of(lesson.school, lesson.year, lesson.letter, u64_of(h) >> 8));
                    (subject, lesson_date, teacher) = (lesson.subject, date(lesson.day), lesson.teacher);
                    // No marks in the 1st grade: attendance there.
                    if p.year == 1 {
                        kind = SchoolKind::Attendance;
                    }
                }
                None => kind = SchoolKind::Lesson,
            }
        }
        if kind == SchoolKind::Lesson {
            if self.lessons.len() == LESSON_POOL {
                self.lessons.pop_front();
            }
            let (school, year, letter) = (p.school, p.year, p.letter);
            self.lessons.push_back(Lesson { school, year, letter, day: d, subject, at, teacher });
        }
        let (inst, class) = (sch(p.school), p.class());
        let c = &self.cast;
        let stream = learner_stream(p.n);
        let (stream, ty, data, author) = match kind {
            SchoolKind::Olympiad => {
                let level = if h[11].is_multiple_of(4) { "regional" } else { "municipal" };
                let data = json!({"v": 1, "achievement_id": format!("olymp-{}", hex8(h)), "kind": "olympiad",
                    "level": level, "date": lesson_date, "result": if h[12].is_multiple_of(3) { "победитель" } else { "призёр" },
                    "contest_ref": format!("vsosh-2026-{}", h[8] % 6)});
                (stream, "portfolio.achievement_attested", data, c.olympiad_issuer)
            }
            SchoolKind::SchoolAchievement => {
                let kinds = ["gto", "volunteering", "sport", "creative", "competition"];
                let data = json!({"v": 1, "achievement_id": format!("{inst}-{}", hex8(h)),
                    "kind": kinds[usize::from(h[11]) % kinds.len()], "level": "school", "date": lesson_date,
                    "result": "участник"});
                (stream, "portfolio.achievement_attested", data, c.school_issuer[p.school as usize])
            }
            SchoolKind::Lesson => {
                let data = json!({"v": 1, "lesson_id": format!("{inst}-{}", hex8(h)), "class": class,
                    "subject": subject, "lesson_date": lesson_date, "topic": format!("Тема {}", 1 + h[12] % 40)});
                (format!("institution/{inst}"), "journal.lesson_held", data, teacher)
            }
            SchoolKind::Attendance => {
                let data = json!({"v": 1, "institution": inst, "class": class, "subject": subject,
                    "lesson_date": lesson_date, "code": ATTENDANCE[usize::from(h[11]) % ATTENDANCE.len()]});
                (stream, "journal.attendance_marked", data, teacher)
            }
            SchoolKind::Grade => {
                let (kind, weight) = KINDS[(h[11] % 3) as usize];
                let data = json!({"v": 1, "institution": inst, "class": class, "subject": subject,
                    "mark": 2 + i64::from(h[12] % 4), "scale": "five_point", "weight": weight, "kind": kind,
                    "lesson_date": lesson_date});
                (stream, "journal.grade_recorded", data, teacher)
            }
        };
        SchoolRecord { stream, ty, data, author, kind, pupil: p.n }
    }

    /// What a school learner's slot records: `school_kind`, except that a region with indicator
    /// targets gives achievements only to the learners its profile share counts (a lesson else).
    fn kind_of(&self, h: &[u8; 32], p: &Pupil) -> SchoolKind {
        match (school_kind(h, p), self.targets) {
            (SchoolKind::Olympiad | SchoolKind::SchoolAchievement, Some(t)) if p.n >= t.students_with_profile => {
                SchoolKind::Lesson
            }
            (kind, _) => kind,
        }
    }

    pub(super) fn item(&self, n: u64, stream: &str, ty: &str, at: i64, signer: usize, data: Value) -> Item {
        let signer = super::signer_at(&self.swaps, signer, at);
        let event = json!({
            "ledger": self.origin, "stream": stream, "type": ty, "id": event_id(&self.origin, n, at),
            "occurred_at": format_rfc3339(at), "author": self.dids[signer], "data": data,
        });
        Item { at, event, signer }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SchoolKind {
    Olympiad,
    SchoolAchievement,
    Lesson,
    Attendance,
    Grade,
}

/// What a school learner's journal slot records (no marks in 1st grade: attendance there).
pub(super) fn school_kind(h: &[u8; 32], p: &Pupil) -> SchoolKind {
    match h[10] {
        0 => SchoolKind::Olympiad,
        1 => SchoolKind::SchoolAchievement,
        2..=21 => SchoolKind::Lesson,
        x if p.year == 1 || x.is_multiple_of(5) => SchoolKind::Attendance,
        _ => SchoolKind::Grade,
    }
}
