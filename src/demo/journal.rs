//! The streamed school journal: slot `i` of `DemoSize::events` is a lesson, a grade, an
//! attendance mark, a correction of the previous slot, or a portfolio achievement (college and
//! university slots go to `higher`). Not the structural events, nor their merge (`merge`).

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
        let d = self.day0 + (i * 270 / self.size.events.max(1)) as i64;
        let at = instant(d, 6 * 60 + i64::from(h[9]));
        Slot { h, day: d, at, who }
    }

    pub(super) fn journal_event(&mut self, i: u64) -> Item {
        let Slot { h, day: d, at, who } = self.slot(i);
        let c = &self.cast;
        if who >= c.learners {
            return self.student_event(i, h, d, at, c.student(who));
        }
        // A correction of the previous slot's grade or attendance mark, an hour later.
        if i > 0 && h[14] < 8 {
            let Slot { h: ph, day: pd, at: pat, who: pwho } = self.slot(i - 1);
            if pwho < c.learners && ph[14] >= 8 {
                let p = c.pupil(pwho);
                let kind = self.kind_of(&ph, &p);
                if kind == SchoolKind::Grade || kind == SchoolKind::Attendance {
                    let (_, _, _, author) = self.school_record(&ph, pd, &p);
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
                    return self.item(i, &learner_stream(pwho), "journal.record_corrected", pat + 3600, author, data);
                }
            }
        }
        let p = c.pupil(who);
        let (stream, ty, data, author) = self.school_record(&h, d, &p);
        self.item(i, &stream, ty, at, author, data)
    }

    /// The school record of a slot (before corrections): stream, type, data, and its author.
    pub(super) fn school_record(&self, h: &[u8; 32], d: i64, p: &Pupil) -> (String, &'static str, Value, usize) {
        let c = &self.cast;
        let (inst, class, subject) = (sch(p.school), p.class(), SUBJECTS[(h[8] % SUBJECTS.len() as u8) as usize]);
        let lesson_date = date(d);
        let teacher = c.teacher_of(p.school, u64::from(h[13]));
        let stream = learner_stream(p.n);
        match self.kind_of(h, p) {
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
        }
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
