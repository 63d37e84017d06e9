//! Clubs (additional education): programs with capacities, funding certificates, enrolments,
//! some leaving in December, and a school's own club. Not the rules that check them.

use super::day;
use super::instant;
use super::learner_stream;
use super::population::Pupil;
use super::sch;
use super::DemoRegion;
use super::Script;
use serde_json::json;
use std::collections::BTreeMap;

pub(super) const PROGRAMS: [(&str, &str); 6] = [
    ("robotics", "technical"),
    ("chess", "intellectual"),
    ("dance", "art"),
    ("football", "sport"),
    ("painting", "art"),
    ("ecology", "natural_science"),
];

impl DemoRegion {
    /// Clubs: programs with capacities, funding certificates, enrolments, some leaving in December.
    pub(super) fn additional(&self, s: &mut Script) {
        let c = &self.cast;
        // Every 10th learner takes a certificate and a program at an additional-education centre.
        let takers: Vec<Pupil> = (0..c.learners).filter(|n| n % 10 == 3).map(|n| c.pupil(n)).collect();
        let program_of = |p: &Pupil| ((p.n / 10) % c.ados, (p.n / 10 / c.ados) as usize % PROGRAMS.len());
        let mut demand: BTreeMap<(u64, usize), i64> = BTreeMap::new();
        for p in &takers {
            *demand.entry(program_of(p)).or_default() += 1;
        }
        let registered = instant(day(2026, 8, 20), 6 * 60);
        for a in 0..c.ados {
            for (k, (program, focus)) in PROGRAMS.iter().enumerate() {
                let capacity = demand.get(&(a, k)).copied().unwrap_or(0) + 5;
                let data = json!({"program_id": program, "capacity": capacity, "focus": focus});
                let stream = format!("institution/ado-{:03}", a + 1);
                s.push(registered, &stream, "additional.program_registered", c.ado_registrar[a as usize], data);
            }
        }
        for p in &takers {
            let (a, k) = program_of(p);
            let ado = format!("ado-{:03}", a + 1);
            let registrar = c.ado_registrar[a as usize];
            let at = instant(day(2026, 9, 1) + (p.n / 10 % 25) as i64, 5 * 60 + (p.n % 600) as i64);
            let stream = learner_stream(p.n);
            let cert = format!("pfdo-47-{:06}", p.n);
            let data = json!({"certificate_id": cert, "institution": ado, "year": 2026});
            s.push(at, &stream, "additional.certificate_issued", registrar, data);
            let data = json!({"institution": ado, "program_id": PROGRAMS[k].0, "certificate_id": cert});
            s.push(at + 60, &stream, "additional.enrolled", registrar, data);
            if p.n / 10 % 7 == 0 {
                let data = json!({"institution": ado, "program_id": PROGRAMS[k].0, "reason": "смена кружка"});
                s.push(
                    instant(day(2026, 12, 21), 6 * 60 + (p.n % 600) as i64),
                    &stream,
                    "additional.left",
                    registrar,
                    data,
                );
            }
        }
        // A school's own chess club (schools may run additional programs too), without certificates.
        for school in 0..c.schools.min(2) {
            let members: Vec<u64> = (0..c.learners).filter(|n| n % 10 == 7 && n % c.schools == school).collect();
            let registrar = c.school_registrar[school as usize];
            let data =
                json!({"program_id": "chess-club", "capacity": members.len() as i64 + 2, "focus": "intellectual"});
            s.push(
                registered,
                &format!("institution/{}", sch(school)),
                "additional.program_registered",
                registrar,
                data,
            );
            for n in members {
                let at = instant(day(2026, 9, 7) + (n % 5) as i64, 6 * 60 + (n % 500) as i64);
                let data = json!({"institution": sch(school), "program_id": "chess-club"});
                s.push(at, &learner_stream(n), "additional.enrolled", registrar, data);
            }
        }
    }
}
