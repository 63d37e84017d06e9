//! Staff records and what the digital-maturity indicators count, in proportion to the region
//! (per learner or teacher, never per mark): teachers' professional development courses and
//! competition results, teachers' access to verified digital content, learners' access to
//! content for self-study, recommendations and individual trajectories from the portfolio,
//! and electronic assignments with their checking method. Not the indicators (a read model).

use super::date;
use super::day;
use super::instant;
use super::learner_stream;
use super::population::SUBJECTS;
use super::sch;
use super::DemoRegion;
use super::Script;
use serde_json::json;

/// Services of the default region's lists (`digital_services`).
const TEACHER_SERVICES: [&str; 3] = ["moya-shkola", "resh", "biblioteka-mesh"];
const LEARNER_SERVICES: [&str; 3] = ["moya-shkola", "resh", "sferum-library"];

impl DemoRegion {
    pub(super) fn staff_and_digital(&self, s: &mut Script) {
        let c = &self.cast;
        for i in 0..c.teachers {
            let school = i as u64 % c.schools;
            let teacher = format!("teacher/t-{i:05}");
            let minute = 6 * 60 + (i % 600) as i64;
            if i % 3 == 0 {
                let data = json!({"record_id": format!("kpk-{i:05}-2026"), "institution": sch(school),
                    "course": "Реализация требований обновлённых ФГОС", "provider": "loiro", "hours": 36 + 36 * (i % 2) as i64,
                    "completed_on": date(day(2026, 10, 1) + (i % 150) as i64)});
                s.push(
                    instant(day(2026, 10, 1) + (i % 150) as i64, minute),
                    &teacher,
                    "staff.course_completed",
                    c.staff_issuer,
                    data,
                );
            }
            if i % 25 == 7 {
                let result = ["winner", "prize_winner", "laureate", "participant"][i / 25 % 4];
                let data = json!({"record_id": format!("konkurs-{i:05}-2027"), "institution": sch(school),
                    "competition": "Учитель года Ленинградской области", "level": "regional", "result": result,
                    "date": "2027-02-15"});
                s.push(
                    instant(day(2027, 2, 20), minute),
                    &teacher,
                    "staff.competition_result_recorded",
                    c.staff_issuer,
                    data,
                );
            }
            let verified = match self.targets {
                Some(t) => (i as u64) < t.teachers_with_verified_content,
                None => i % 4 != 3,
            };
            if verified {
                let data = json!({"access_id": format!("tca-{i:05}"), "institution": sch(school),
                    "service": TEACHER_SERVICES[i % 3], "granted_on": "2026-09-07"});
                s.push(
                    instant(day(2026, 9, 7), minute),
                    &teacher,
                    "digital.teacher_content_access_granted",
                    c.school_admin[school as usize],
                    data,
                );
            }
        }
        for n in 0..c.learners {
            let p = c.pupil(n);
            let (inst, stream) = (sch(p.school), learner_stream(n));
            let minute = 6 * 60 + (n % 600) as i64;
            let (access, recommended, profile) = match self.targets {
                Some(t) => (n < t.students_with_free_access, n < t.students_recommended, n < t.students_with_profile),
                None => (n % 4 == 1, n % 8 == 2 && p.year >= 5, false),
            };
            if profile {
                // The digital profile of the targets' learners: one achievement each.
                let d = day(2026, 10, 1) + (n % 200) as i64;
                let data = json!({"achievement_id": format!("{inst}-profile-{n:06}"), "kind": "creative",
                    "level": "school", "date": date(d), "result": "участник"});
                s.push(
                    instant(d, minute),
                    &stream,
                    "portfolio.achievement_attested",
                    c.school_issuer[p.school as usize],
                    data,
                );
            }
            if access {
                let data = json!({"access_id": format!("lca-{n:06}"), "institution": inst,
                    "service": LEARNER_SERVICES[(n / 4 % 3) as usize], "granted_on": "2026-09-14"});
                s.push(
                    instant(day(2026, 9, 14), minute),
                    &stream,
                    "digital.learner_content_access_granted",
                    c.school_admin[p.school as usize],
                    data,
                );
            }
            if recommended {
                let d = day(2026, 11, 2) + (n % 120) as i64;
                let kind = if n % 3 == 0 { "individual_trajectory" } else { "recommendation" };
                let data = json!({"recommendation_id": format!("rec-{n:06}"), "institution": inst, "kind": kind,
                    "offered_on": date(d)});
                s.push(instant(d, minute), &stream, "digital.recommendation_offered", c.teacher_of(p.school, n), data);
            }
        }
        // About 1.2 electronic assignments per learner (the 2021 monitoring: 202,217 for 174,876),
        // most checked automatically; by subject teachers of the class's school.
        let assignments = self.targets.map_or(c.learners * 6 / 5, |t| t.assignments);
        for k in 0..assignments {
            let manual = match self.targets {
                Some(t) => k >= t.assignments_automatic,
                None => k % 10 == 9,
            };
            let p = c.pupil(k % c.learners);
            let d = day(2026, 9, 8) + (k % 250) as i64;
            let data = json!({"assignment_id": format!("{}-as-{k:07}", sch(p.school)), "class": p.class(),
                "subject": SUBJECTS[(k % SUBJECTS.len() as u64) as usize],
                "checking": if manual { "manual" } else { "automatic" }, "assigned_on": date(d)});
            let at = instant(d, 6 * 60 + (k % 700) as i64);
            s.push(
                at,
                &format!("institution/{}", sch(p.school)),
                "digital.assignment_recorded",
                c.teacher_of(p.school, k),
                data,
            );
        }
    }
}
