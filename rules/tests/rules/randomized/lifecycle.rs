//! The randomized generator's later-life events: learners who move between classes and schools,
//! leave or graduate (then a mark for them is refused `learner_not_enrolled`), academic leave at
//! the college, final attestation and school certificates, the digital-maturity records, key
//! rotations, and a migration's imports of legacy history; each with the mutations the rules
//! refuse and their codes.
//! Not the World itself, the setup or the queue rounds (`randomized.rs`); no realistic workload.
use super::{learner_of, student, Step, World, CLASSES, COLLEGE, COL_REGISTRAR_KEY, COL_TEACHER_KEY, SCHOOLS};
use serde_json::{json, Value};

/// Learners who move: admitted, moved, transferred, expelled and graduated by `contingent_step`
/// only, so the other steps never write for them.
pub(super) const MOVERS: usize = 6;
/// The migration keys: a school's (sch-0's teacher, registrar and achievement issuer), the
/// college's (teacher and registrar) and the queue territory's (operator).
pub(super) const MIGRATOR: &str = "did:key:z6MkMigratorSch0";
pub(super) const COL_MIGRATOR: &str = "did:key:z6MkMigratorCol";
pub(super) const QUEUE_MIGRATOR: &str = "did:key:z6MkMigratorQueue";

/// The stream of the `k`-th moving learner.
pub(super) fn mover(k: usize) -> String {
    format!("learner/47-m{k:05}")
}

/// The stream of the `k`-th learner imported from a legacy system.
fn legacy(k: usize) -> String {
    format!("learner/47-h{k:05}")
}

fn admin(i: usize) -> String {
    format!("did:key:z6MkAdmin{i}")
}

fn school(i: usize) -> String {
    format!("sch-{i}")
}

/// Where a moving learner is: (school, class index) while enrolled, and whether a stay of theirs
/// has ended.
#[derive(Clone, Copy, Default)]
pub(super) struct Mover {
    pub place: Option<(usize, usize)>,
    pub left: bool,
}

/// A subject's (highest, passing) score in an exam.
type Scores = (i64, i64);

/// Final-exam subjects with their scores in the ОГЭ and the ЕГЭ, as the default region profile
/// has them.
const SUBJECTS: [(&str, Scores, Scores); 3] =
    [("Математика", (31, 8), (100, 27)), ("Русский язык", (33, 15), (100, 24)), ("Физика", (45, 11), (100, 36))];
/// What a certificate of each level needs: the exam whose passing results in the first two
/// subjects it requires.
const LEVELS: [(&str, &str); 2] = [("basic_general", "oge"), ("secondary_general", "ege")];

impl World {
    /// Today's date of the history (the date of the next event).
    pub(super) fn today(&self) -> String {
        self.at()[..10].to_owned()
    }

    /// The date `days` after the history's first day.
    fn date(days: i64) -> String {
        zachetka_rules::time::format_date(zachetka_rules::time::parse_date("2026-09-01").unwrap() + days)
    }

    /// A valid teacher key of the class, if one is left.
    fn teacher_of(&self, i: usize, j: usize) -> Option<String> {
        let inst = school(i);
        self.teachers.iter().find(|t| t.1 == inst && t.2 == CLASSES[j]).map(|t| t.0.clone())
    }

    /// A mark for `stream` in class `j` of school `i` dated today by the class's teacher (none if
    /// the class has no teacher left).
    /// Marks are given at a lesson: the teacher records today's lesson of the class first. On a
    /// day that is not a school day (a Sunday, a holiday) neither is accepted.
    fn mark_today(&mut self, i: usize, j: usize, stream: &str, expect: Option<&'static str>) -> Vec<Step> {
        let Some(key) = self.teacher_of(i, j) else { return vec![] };
        let today = self.today();
        let mut data = Self::grade(&school(i), CLASSES[j], 2 + self.rng.below(4) as i64);
        data["lesson_date"] = json!(today);
        if !super::school_day(&today) {
            return vec![self.step(&key, stream, "journal.grade_recorded", data, Some("not_a_school_day"))];
        }
        let lesson =
            json!({"lesson_id": format!("l-{}", self.n), "class": CLASSES[j], "subject": "math", "lesson_date": today});
        vec![
            self.step(&key, &format!("institution/{}", school(i)), "journal.lesson_held", lesson, None),
            self.step(&key, stream, "journal.grade_recorded", data, expect),
        ]
    }

    fn admission(&self, i: usize, j: usize, on: &str) -> Value {
        json!({"institution": school(i), "class": CLASSES[j], "academic_year": 2026, "admitted_on": on,
            "order_ref": format!("ord-m-{}", self.n)})
    }

    /// A moving learner: admitted into class `j` of school `i` when enrolled nowhere (refused when
    /// dated before their last stay ended), else moved to another class (refused to the same
    /// one), transferred to another school and admitted there or out of the region (refused to
    /// the same school, or from a school they are not in), expelled or graduated (refused when
    /// dated before the stay began), admitted while enrolled (refused), or marked. A mark in the
    /// class left is refused `learner_not_enrolled`; one in the new class is accepted.
    pub(super) fn contingent_step(&mut self, i: usize, j: usize) -> Vec<Step> {
        let k = self.rng.below(MOVERS);
        let stream = mover(k);
        let today = self.today();
        let mut s = Vec::new();
        let Some((si, sj)) = self.movers[k].place else {
            if self.movers[k].left && self.rng.below(4) == 0 {
                let data = self.admission(i, j, "2026-08-31");
                s.push(self.step(
                    &admin(i),
                    &stream,
                    "contingent.admitted",
                    data,
                    Some("contingent_date_out_of_order"),
                ));
            }
            let data = self.admission(i, j, &today);
            s.push(self.step(&admin(i), &stream, "contingent.admitted", data, None));
            self.movers[k].place = Some((i, j));
            s.extend(self.mark_today(i, j, &stream, None));
            return s;
        };
        let (inst, registrar) = (school(si), admin(si));
        match self.rng.below(8) {
            0 | 1 => {
                if self.rng.below(3) == 0 {
                    let data =
                        json!({"institution": inst, "class": CLASSES[sj], "academic_year": 2026, "assigned_on": today});
                    s.push(self.step(&registrar, &stream, "contingent.class_assigned", data, Some("class_unchanged")));
                }
                let to = (sj + 1 + self.rng.below(CLASSES.len() - 1)) % CLASSES.len();
                let data =
                    json!({"institution": inst, "class": CLASSES[to], "academic_year": 2026, "assigned_on": today});
                s.push(self.step(&registrar, &stream, "contingent.class_assigned", data, None));
                self.movers[k].place = Some((si, to));
                s.extend(self.mark_today(si, sj, &stream, Some("learner_not_enrolled")));
                s.extend(self.mark_today(si, to, &stream, None));
            }
            2 | 3 => {
                let to = (si + 1 + self.rng.below(SCHOOLS - 1)) % SCHOOLS;
                let transfer = |from: &str, to: &str| json!({"from_institution": from, "to_institution": to, "transferred_on": today});
                if self.rng.below(3) == 0 {
                    let data = transfer(&inst, &inst);
                    let expect = Some("transfer_to_same_institution");
                    s.push(self.step(&registrar, &stream, "learner.transferred", data, expect));
                }
                match self.rng.below(5) {
                    0 => {
                        // From a school the learner is not in, by that school's registrar.
                        let data = transfer(&school(to), &inst);
                        let expect = Some("learner_not_enrolled");
                        s.push(self.step(&admin(to), &stream, "learner.transferred", data, expect));
                        return s;
                    }
                    1 => {
                        let mut data = transfer(&inst, "spb-0423");
                        data["to_region"] = json!("78");
                        s.push(self.step(&registrar, &stream, "learner.transferred", data, None));
                        self.movers[k] = Mover { place: None, left: true };
                    }
                    _ => {
                        s.push(self.step(
                            &registrar,
                            &stream,
                            "learner.transferred",
                            transfer(&inst, &school(to)),
                            None,
                        ));
                        let j2 = self.rng.below(CLASSES.len());
                        let data = self.admission(to, j2, &today);
                        s.push(self.step(&admin(to), &stream, "contingent.admitted", data, None));
                        self.movers[k] = Mover { place: Some((to, j2)), left: true };
                        s.extend(self.mark_today(to, j2, &stream, None));
                    }
                }
                s.extend(self.mark_today(si, sj, &stream, Some("learner_not_enrolled")));
            }
            4 | 5 => {
                let (ty, field) = if self.rng.below(2) == 0 {
                    ("contingent.expelled", "expelled_on")
                } else {
                    ("contingent.graduated", "graduated_on")
                };
                let mut data = json!({"institution": inst, field: today});
                if ty == "contingent.expelled" {
                    data["reason"] = json!("by_request");
                }
                if self.rng.below(4) == 0 {
                    // Dated before the stay began (every mover's stay begins in September).
                    data[field] = json!("2026-08-01");
                    s.push(self.step(&registrar, &stream, ty, data, Some("contingent_date_out_of_order")));
                    return s;
                }
                s.push(self.step(&registrar, &stream, ty, data, None));
                self.movers[k] = Mover { place: None, left: true };
                s.extend(self.mark_today(si, sj, &stream, Some("learner_not_enrolled")));
            }
            6 => {
                let to = (si + 1) % SCHOOLS;
                let data = self.admission(to, sj, &today);
                s.push(self.step(&admin(to), &stream, "contingent.admitted", data, Some("learner_already_enrolled")));
            }
            _ => s.extend(self.mark_today(si, sj, &stream, None)),
        }
        s
    }

    /// Whether college student `m` is on academic leave today.
    pub(super) fn on_leave(&self, m: usize) -> bool {
        self.leaves.iter().any(|(x, from, to)| *x == m && *from <= self.day && self.day < *to)
    }

    /// Academic leave for a college student from today for 1 to 3 days (refused when it ends
    /// before it starts, or at a school), then a course result for them refused
    /// `learner_on_academic_leave`.
    pub(super) fn leave_step(&mut self) -> Vec<Step> {
        let m = self.rng.below(super::STUDENTS);
        let (from, to) = (self.day, self.day + 1 + self.rng.below(3) as i64);
        let mut data = json!({"institution": COLLEGE, "starts_on": Self::date(from), "ends_on": Self::date(to),
            "reason": "health"});
        match self.rng.below(5) {
            0 => {
                data["ends_on"] = json!(Self::date(from));
                vec![self.step(
                    COL_REGISTRAR_KEY,
                    &student(m),
                    "contingent.academic_leave_granted",
                    data,
                    Some("leave_dates_invalid"),
                )]
            }
            1 => {
                data["institution"] = json!(school(0));
                let expect = Some("institution_kind_mismatch");
                vec![self.step(&admin(0), &student(m), "contingent.academic_leave_granted", data, expect)]
            }
            _ => {
                let mut s =
                    vec![self.step(COL_REGISTRAR_KEY, &student(m), "contingent.academic_leave_granted", data, None)];
                self.leaves.push((m, from, to));
                let result = json!({"institution": COLLEGE, "group": "ИС-1", "course": "db", "term": 1,
                    "mark": "отлично", "scale": "four_level"});
                let expect = Some("learner_on_academic_leave");
                s.push(self.step(COL_TEACHER_KEY, &student(m), "college.course_result_recorded", result, expect));
                s
            }
        }
    }

    /// Final attestation results of a learner of class `j` at school `i` in the two subjects a
    /// certificate requires (mostly passing; refused off the subject's scale or for an unknown
    /// exam), or a school certificate for a learner with results: refused with an open debt, a
    /// number the school already issued, or without passing results in both subjects.
    pub(super) fn certificate_step(&mut self, i: usize, j: usize) -> Vec<Step> {
        let (inst, registrar) = (school(i), admin(i));
        let mut s = Vec::new();
        if self.rng.below(2) == 0 {
            let stream = learner_of(i, j, self.rng.below(super::PER_CLASS));
            let (exam, ege) = if self.rng.below(2) == 0 { ("oge", false) } else { ("ege", true) };
            let subjects = 2 + self.rng.below(2);
            for (subject, oge_scores, ege_scores) in SUBJECTS.iter().take(subjects) {
                let (max, pass) = if ege { *ege_scores } else { *oge_scores };
                let mut data = json!({"institution": inst, "exam": exam, "subject": subject, "academic_year": 2026});
                let (score, expect) = match self.rng.below(10) {
                    0 => (max + 1, Some("score_out_of_range")),
                    1 => {
                        data["exam"] = json!("vpr");
                        (pass, Some("exam_kind_unknown"))
                    }
                    2 | 3 => (self.rng.below(pass as usize) as i64, None),
                    _ => (pass + self.rng.below((max - pass + 1) as usize) as i64, None),
                };
                data["score"] = json!(score);
                if expect.is_none() && score >= pass {
                    self.exam_passes.push((stream.clone(), inst.clone(), exam, *subject));
                }
                s.push(self.step(&registrar, &stream, "journal.final_attestation_recorded", data, expect));
            }
            return s;
        }
        // A learner with results at this school, one with an open debt, or any of the class.
        let with_results: Vec<String> = self.exam_passes.iter().filter(|p| p.1 == inst).map(|p| p.0.clone()).collect();
        let in_debt: Vec<String> =
            self.debts.iter().filter(|d| d.inst == inst && !d.closed).map(|d| d.stream.clone()).collect();
        let stream = match self.rng.below(8) {
            0 | 1 if !in_debt.is_empty() => in_debt[self.rng.below(in_debt.len())].clone(),
            2..=6 if !with_results.is_empty() => with_results[self.rng.below(with_results.len())].clone(),
            _ => learner_of(i, j, self.rng.below(super::PER_CLASS)),
        };
        let (level, exam) = LEVELS[self.rng.below(LEVELS.len())];
        let issued: Vec<String> = self.documents.iter().filter(|d| d.0 == inst).map(|d| d.1.clone()).collect();
        let duplicate = !issued.is_empty() && self.rng.below(3) == 0;
        let number = if duplicate { issued[self.rng.below(issued.len())].clone() } else { format!("A-{}", self.n) };
        let open_debt = self.debts.iter().any(|d| d.stream == stream && !d.closed);
        let passed = |subject: &str| self.exam_passes.iter().any(|p| p.0 == stream && p.2 == exam && p.3 == subject);
        let expect = if open_debt {
            Some("open_debt_blocks_certificate")
        } else if duplicate {
            Some("document_number_duplicate")
        } else if !(passed(SUBJECTS[0].0) && passed(SUBJECTS[1].0)) {
            Some("certificate_requirements_unmet")
        } else {
            None
        };
        if expect.is_none() {
            self.documents.push((inst.clone(), number.clone()));
        }
        let data = json!({"institution": inst, "level": level, "number": number, "issued_on": self.today()});
        s.push(self.step(&registrar, &stream, "journal.certificate_issued", data, expect));
        s
    }

    /// A school certificate asked for a learner of `inst` whose debt was just opened: refused
    /// whatever else the learner has.
    pub(super) fn certificate_in_debt(&mut self, inst: &str, stream: &str) -> Step {
        let (level, _) = LEVELS[self.rng.below(LEVELS.len())];
        let data =
            json!({"institution": inst, "level": level, "number": format!("A-{}", self.n), "issued_on": self.today()});
        self.step(
            &format!("did:key:z6MkAdmin{}", &inst[4..]),
            stream,
            "journal.certificate_issued",
            data,
            Some("open_debt_blocks_certificate"),
        )
    }

    /// A digital-maturity record at school `i`: a recommendation to a learner of class `j`
    /// (refused of an unknown kind, or by another school the learner is not in), a teacher's or a
    /// learner's access to digital content (refused for a service not on the region's list), an
    /// electronic assignment by the class's teacher `key` (refused with an unknown checking
    /// method or for another class); a record id used twice in a stream is refused.
    pub(super) fn digital_step(&mut self, i: usize, j: usize, key: &str, learner: &str) -> Vec<Step> {
        let (inst, registrar, today) = (school(i), admin(i), self.today());
        let id = format!("dg-{}", self.n);
        let (mut author, stream, ty, id_field, mut data) = match self.rng.below(4) {
            0 => {
                let kind = ["recommendation", "individual_trajectory"][self.rng.below(2)];
                let data = json!({"recommendation_id": id, "institution": inst, "kind": kind, "offered_on": today});
                (registrar, learner.to_owned(), "digital.recommendation_offered", "recommendation_id", data)
            }
            1 => {
                let service = ["moya-shkola", "resh", "biblioteka-mesh"][self.rng.below(3)];
                let data = json!({"access_id": id, "institution": inst, "service": service, "granted_on": today});
                (registrar, format!("teacher/t-{i}-{j}"), "digital.teacher_content_access_granted", "access_id", data)
            }
            2 => {
                let service = ["moya-shkola", "resh", "sferum-library"][self.rng.below(3)];
                let data = json!({"access_id": id, "institution": inst, "service": service, "granted_on": today});
                (registrar, learner.to_owned(), "digital.learner_content_access_granted", "access_id", data)
            }
            _ => {
                let checking = ["automatic", "manual"][self.rng.below(2)];
                let data = json!({"assignment_id": id, "class": CLASSES[j], "subject": "math", "checking": checking,
                    "assigned_on": today});
                (key.to_owned(), format!("institution/{inst}"), "digital.assignment_recorded", "assignment_id", data)
            }
        };
        let mut expect = None;
        match (self.rng.below(6), ty) {
            (0, "digital.recommendation_offered") => {
                data["kind"] = json!("advice");
                expect = Some("recommendation_kind_unknown");
            }
            (1, "digital.recommendation_offered") => {
                let other = (i + 1) % SCHOOLS;
                author = admin(other);
                data["institution"] = json!(school(other));
                expect = Some("learner_not_enrolled");
            }
            (0, "digital.teacher_content_access_granted") => {
                data["service"] = json!("sferum-library");
                expect = Some("digital_service_not_verified");
            }
            (0, "digital.learner_content_access_granted") => {
                data["service"] = json!("biblioteka-mesh");
                expect = Some("digital_service_not_verified");
            }
            (0, "digital.assignment_recorded") => {
                data["checking"] = json!("peer");
                expect = Some("checking_method_unknown");
            }
            (1, "digital.assignment_recorded") => {
                data["class"] = json!(CLASSES[(j + 1) % CLASSES.len()]);
                expect = Some("not_authorized");
            }
            (2, _) => {
                if let Some(used) = self.digital.iter().find(|r| r.0 == stream).map(|r| r.1.clone()) {
                    data[id_field] = json!(used);
                    expect = Some("digital_record_duplicate");
                }
            }
            _ => {}
        }
        if expect.is_none() {
            self.digital.push((stream.clone(), id));
        }
        vec![self.step(&author, &stream, ty, data, expect)]
    }

    /// A teacher's key `t` rotated by the school's admin or by itself, then a mark by the new key
    /// accepted and one by the old refused `key_revoked`; or a rotation refused: to a key already
    /// granted, of a revoked key, by another school's admin, of a key never granted.
    pub(super) fn rotation_step(&mut self, t: usize, learner: &str) -> Vec<Step> {
        let (old, inst, class) = self.teachers[t].clone();
        let i: usize = inst[4..].parse().unwrap();
        let j = CLASSES.iter().position(|c| *c == class).unwrap();
        let new = format!("did:key:z6MkT{i}x{j}r{}", self.n);
        let rotate = |old: &str, new: &str| json!({"old_key": old, "new_key": new});
        match self.rng.below(8) {
            0 if self.teachers.len() > 1 => {
                let taken = self.teachers[(t + 1) % self.teachers.len()].0.clone();
                vec![self.step(
                    &admin(i),
                    "registry",
                    "keys.rotated",
                    rotate(&old, &taken),
                    Some("key_already_granted"),
                )]
            }
            1 if !self.revoked.is_empty() => {
                let gone = self.revoked[self.rng.below(self.revoked.len())].clone();
                let expect = Some("key_already_revoked");
                vec![self.step(crate::harness::AUTH, "registry", "keys.rotated", rotate(&gone, &new), expect)]
            }
            2 => {
                let other = admin((i + 1) % SCHOOLS);
                vec![self.step(&other, "registry", "keys.rotated", rotate(&old, &new), Some("not_authorized"))]
            }
            3 => {
                let data = rotate("did:key:z6MkNeverGranted", &new);
                vec![self.step(crate::harness::AUTH, "registry", "keys.rotated", data, Some("rotated_key_unknown"))]
            }
            _ => {
                let author = if self.rng.below(3) == 0 { old.clone() } else { admin(i) };
                let mut s = vec![self.step(&author, "registry", "keys.rotated", rotate(&old, &new), None)];
                self.teachers[t].0 = new.clone();
                self.revoked.push(old.clone());
                let grade = |w: &mut World| Self::grade(&inst, &class, 2 + w.rng.below(4) as i64);
                let data = grade(self);
                s.push(self.step(&new, learner, "journal.grade_recorded", data, None));
                let data = grade(self);
                s.push(self.step(&old, learner, "journal.grade_recorded", data, Some("key_revoked")));
                s
            }
        }
    }

    /// `step` dated `occurred_at` in the past (a legacy record's time); the ledger's time stays
    /// the history's clock.
    fn step_dated(
        &mut self,
        author: &str,
        stream: &str,
        ty: &'static str,
        data: Value,
        occurred_at: &str,
        expect: Option<&'static str>,
    ) -> Step {
        let mut s = self.step(author, stream, ty, data, expect);
        s.recorded = Some(std::mem::replace(&mut s.at, occurred_at.to_owned()));
        s
    }

    /// An import by `author` of a legacy record dated `occurred_at` (a day, at 07:00 UTC): `data`
    /// with `data.migrated_from` naming its source, accepted.
    fn import(&mut self, author: &str, stream: &str, ty: &'static str, data: Value, occurred_on: &str) -> Step {
        let mut data = data;
        data["migrated_from"] = json!({"system": "BARS", "record": format!("bars-{}", self.n)});
        self.step_dated(author, stream, ty, data, &format!("{occurred_on}T07:00:00Z"), None)
    }

    /// A migration imports a legacy learner's history (`data.migrated_from`, dated in the past),
    /// one of: a queue application (of another age group than the rounds', so it changes no
    /// offer), sometimes with a placement the legacy queue made in 2012; a college student's admission, academic leave, course result, credit and diploma;
    /// or a school learner admitted to sch-0 in 2022 with a lesson, a mark, attendance, term and
    /// year grades and an achievement in 8А, moved to 9В in 2023, then final attestation, a
    /// certificate and graduation, or a transfer, an expulsion, or still there (then marked
    /// today). Then one mutation: the same mark by a key without the migration role
    /// (`not_authorized`), a type a migration does not import carrying a source
    /// (`event_malformed`), the legacy mark without a source (`occurred_at_backdated`), the
    /// admission's record imported again (`import_record_repeated`), a term grade naming another
    /// academic year than its date's (`academic_year_mismatch`).
    /// A placement the legacy queue made in 2012, imported whole: the application, an additional
    /// run naming its allocation year, the offer (its child is the only one competing in 2012:
    /// every other legacy child of that year was placed by its own run), the acceptance, the
    /// enrolment and the run's end, each dated then.
    fn legacy_placement(&mut self, k: usize) -> Vec<Step> {
        let (app, run, offer) = (format!("ql-{k}"), format!("rl-{k}"), format!("ol-{k}"));
        let kg = super::KGS[0];
        let data = json!({"application_id": app, "number": format!("nl-{k}"), "learner": format!("47-ql{k}"),
            "birth_month": "2009-03", "desired_date": "2012-09-01", "preferred": [kg], "group_type": "general"});
        let mut s = vec![self.import(QUEUE_MIGRATOR, super::Q, "queue.application_submitted", data, "2010-04-05")];
        let places = json!([{"kindergarten": kg, "age_group": "3-4", "group_type": "general", "places": 1}]);
        let data = json!({"run_id": run, "kind": "additional", "places": places, "academic_year": 2012});
        s.push(self.import(QUEUE_MIGRATOR, super::Q, "queue.allocation_started", data, "2012-06-01"));
        let data = json!({"offer_id": offer, "application_id": app, "kindergarten": kg});
        s.push(self.import(QUEUE_MIGRATOR, super::Q, "queue.place_offered", data, "2012-06-01"));
        s.push(self.import(
            QUEUE_MIGRATOR,
            super::Q,
            "queue.offer_accepted",
            json!({ "offer_id": offer }),
            "2012-06-15",
        ));
        let data = json!({"application_id": app, "kindergarten": kg, "order_ref": format!("kg-ord-l{k}")});
        s.push(self.import(QUEUE_MIGRATOR, super::Q, "queue.enrolled", data, "2012-08-25"));
        s.push(self.import(
            QUEUE_MIGRATOR,
            super::Q,
            "queue.allocation_finished",
            json!({ "run_id": run }),
            "2012-08-31",
        ));
        s
    }

    pub(super) fn migration_step(&mut self) -> Vec<Step> {
        let k = self.legacy;
        self.legacy += 1;
        let stream = legacy(k);
        let mut s = Vec::new();
        match self.rng.below(6) {
            0 => {
                let data = json!({"application_id": format!("qm-{k}"), "number": format!("nm-{k}"), "learner": format!("47-qm{k}"),
                    "birth_month": "2022-03", "desired_date": "2026-09-01", "preferred": ["kg-a"], "group_type": "general"});
                s.push(self.import(QUEUE_MIGRATOR, super::Q, "queue.application_submitted", data, "2025-02-03"));
                if self.rng.below(2) == 0 {
                    s.extend(self.legacy_placement(k));
                }
                return s;
            }
            1 => {
                let c = COLLEGE;
                let data = json!({"institution": c, "class": "ИС-1", "academic_year": 2024, "admitted_on": "2024-09-01",
                    "order_ref": format!("ord-h-{k}"), "program_id": "ИС"});
                s.push(self.import(COL_MIGRATOR, &stream, "contingent.admitted", data, "2024-09-01"));
                let data =
                    json!({"institution": c, "starts_on": "2024-10-01", "ends_on": "2024-11-01", "reason": "health"});
                s.push(self.import(COL_MIGRATOR, &stream, "contingent.academic_leave_granted", data, "2024-09-20"));
                let data = json!({"institution": c, "group": "ИС-1", "course": "db", "term": 1, "mark": "хорошо", "scale": "four_level"});
                s.push(self.import(COL_MIGRATOR, &stream, "college.course_result_recorded", data, "2024-12-20"));
                let data = json!({"institution": c, "group": "ИС-1", "course": "os", "term": 1, "form": "credit", "mark": "зачтено", "scale": "pass_fail"});
                s.push(self.import(COL_MIGRATOR, &stream, "college.exam_recorded", data, "2025-01-15"));
                let data = json!({"institution": c, "level": "secondary_vocational", "number": format!("LD-{k}"), "issued_on": "2025-01-30"});
                s.push(self.import(COL_MIGRATOR, &stream, "college.diploma_issued", data, "2025-01-30"));
                return s;
            }
            _ => {}
        }
        let inst = school(0);
        let data = json!({"institution": inst, "class": "8А", "academic_year": 2022, "admitted_on": "2022-09-01",
            "order_ref": format!("ord-h-{k}")});
        s.push(self.import(MIGRATOR, &stream, "contingent.admitted", data, "2022-09-01"));
        let data =
            json!({"lesson_id": format!("lh-{k}"), "class": "8А", "subject": "math", "lesson_date": "2022-10-03"});
        s.push(self.import(MIGRATOR, &format!("institution/{inst}"), "journal.lesson_held", data, "2022-10-03"));
        let mut mark = Self::grade(&inst, "8А", 4);
        mark["lesson_date"] = json!("2022-10-03");
        let legacy_mark = mark.clone();
        s.push(self.import(MIGRATOR, &stream, "journal.grade_recorded", mark, "2022-10-03"));
        let imported_mark = s.last().map(|m| m.data.clone()).unwrap_or_default();
        let data = json!({"institution": inst, "class": "8А", "lesson_date": "2022-10-04", "code": "Н"});
        s.push(self.import(MIGRATOR, &stream, "journal.attendance_marked", data, "2022-10-04"));
        let year = json!({"institution": inst, "class": "8А", "subject": "math", "academic_year": 2022, "mark": 4, "scale": "five_point"});
        let mut term = year.clone();
        term["term"] = json!(1);
        s.push(self.import(MIGRATOR, &stream, "journal.term_grade_set", term, "2022-12-20"));
        s.push(self.import(MIGRATOR, &stream, "journal.year_grade_set", year, "2023-05-25"));
        let data = json!({"achievement_id": format!("ach-h-{k}"), "kind": "olympiad", "level": "regional", "date": "2023-04-10",
            "result": "prize_winner"});
        s.push(self.import(MIGRATOR, &stream, "portfolio.achievement_attested", data, "2023-04-12"));
        let data = json!({"institution": inst, "class": "9В", "academic_year": 2023, "assigned_on": "2023-09-01"});
        s.push(self.import(MIGRATOR, &stream, "contingent.class_assigned", data, "2023-09-01"));
        match self.rng.below(4) {
            0 => {
                for (subject, score) in [("Математика", 20), ("Русский язык", 25)] {
                    let data = json!({"institution": inst, "exam": "oge", "subject": subject, "academic_year": 2023, "score": score});
                    s.push(self.import(MIGRATOR, &stream, "journal.final_attestation_recorded", data, "2024-06-10"));
                }
                let data = json!({"institution": inst, "level": "basic_general", "number": format!("L-{k}"), "issued_on": "2024-06-25"});
                s.push(self.import(MIGRATOR, &stream, "journal.certificate_issued", data, "2024-06-25"));
                self.documents.push((inst.clone(), format!("L-{k}")));
                let data = json!({"institution": inst, "graduated_on": "2024-06-30"});
                s.push(self.import(MIGRATOR, &stream, "contingent.graduated", data, "2024-06-30"));
            }
            1 => {
                let data =
                    json!({"from_institution": inst, "to_institution": school(1), "transferred_on": "2024-03-01"});
                s.push(self.import(MIGRATOR, &stream, "learner.transferred", data, "2024-03-01"));
            }
            2 => {
                let data = json!({"institution": inst, "expelled_on": "2024-02-01", "reason": "moved_abroad"});
                s.push(self.import(MIGRATOR, &stream, "contingent.expelled", data, "2024-02-01"));
            }
            _ => s.extend(self.mark_today(0, 3, &stream, None)),
        }
        let ty = "journal.grade_recorded";
        match self.rng.below(5) {
            3 => {
                // The legacy admission imported again (another tool, another run): the record
                // names one entry.
                let again = s[0].data.clone();
                let expect = Some("import_record_repeated");
                s.push(self.step_dated(
                    MIGRATOR,
                    &stream,
                    "contingent.admitted",
                    again,
                    "2022-09-01T07:00:00Z",
                    expect,
                ));
            }
            4 => {
                // A term grade of December 2022 (academic year 2022) claiming 2017.
                let mut data = json!({"institution": inst, "class": "8А", "subject": "math", "academic_year": 2017, "term": 2, "mark": 4, "scale": "five_point"});
                data["migrated_from"] = json!({"system": "BARS", "record": format!("wrong-year-{k}")});
                let expect = Some("academic_year_mismatch");
                s.push(self.step_dated(
                    MIGRATOR,
                    &stream,
                    "journal.term_grade_set",
                    data,
                    "2022-12-21T07:00:00Z",
                    expect,
                ));
            }
            0 => {
                let expect = Some("not_authorized");
                s.push(self.step_dated(&admin(0), &stream, ty, imported_mark, "2022-10-05T08:00:00Z", expect));
            }
            1 => {
                let mut data = json!({"institution": inst, "from_class": "8А", "to_class": "9В", "academic_year": 2022, "basis": "full"});
                data["migrated_from"] = json!({"system": "BARS", "record": format!("promo-{k}")});
                let expect = Some("event_malformed");
                s.push(self.step_dated(MIGRATOR, &stream, "journal.promoted", data, "2023-06-01T07:00:00Z", expect));
            }
            _ => {
                let expect = Some("occurred_at_backdated");
                s.push(self.step_dated(MIGRATOR, &stream, ty, legacy_mark, "2022-10-05T08:00:00Z", expect));
            }
        }
        s
    }
}
