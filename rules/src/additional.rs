//! Additional education (clubs, sections): funding certificates, programs with a capacity,
//! enrolments into programs and leaving them. Not rosters or waitlists (read models).

use crate::authority::Need;
use crate::vocabulary::Event;
use crate::{refuse, Applied, Ctx, RuleRefusal};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};

const REGISTRARS: &[&str] = &["registrar", "institution_admin"];

#[derive(Serialize, Deserialize)]
struct Program {
    capacity: i64,
    #[serde(with = "crate::state::sorted_set")]
    learners: HashSet<String>,
}

#[derive(Default, Serialize, Deserialize)]
pub(crate) struct Additional {
    /// Certificate id -> learner stream.
    #[serde(with = "crate::state::sorted_map")]
    certificates: HashMap<String, String>,
    /// (institution, program id) -> program.
    #[serde(with = "crate::state::sorted_map")]
    programs: HashMap<(String, String), Program>,
}

impl Additional {
    pub fn apply(&mut self, a: &Applied, ev: &Event) {
        match ev {
            Event::AdditionalCertificateIssued(d) => {
                self.certificates.entry(d.certificate_id.clone()).or_insert_with(|| a.e.stream.to_owned());
            }
            Event::ProgramRegistered(d) => {
                let p = Program { capacity: d.capacity, learners: HashSet::new() };
                self.programs.entry((a.sid.to_owned(), d.program_id.clone())).or_insert(p);
            }
            Event::ProgramEnrolled(d) => {
                if let Some(p) = self.programs.get_mut(&(d.institution.clone(), d.program_id.clone())) {
                    p.learners.insert(a.e.stream.to_owned());
                }
            }
            Event::ProgramLeft(d) => {
                if let Some(p) = self.programs.get_mut(&(d.institution.clone(), d.program_id.clone())) {
                    p.learners.remove(a.e.stream);
                }
            }
            _ => {}
        }
    }
}

pub(crate) fn check(ctx: &Ctx, ev: &Event) -> Result<(), RuleRefusal> {
    let (auth, who, at, ty) = (ctx.auth(), ctx.e.author, ctx.at, ctx.e.event_type);
    let state = &ctx.rules.additional;
    let program = |inst: &str, id: &str| {
        state
            .programs
            .get(&(inst.to_owned(), id.to_owned()))
            .ok_or_else(|| RuleRefusal::new("program_unknown", format!("{inst} has no program {id}")))
    };
    match ev {
        Event::AdditionalCertificateIssued(d) => {
            auth.authorize(who, at, ty, &Need::in_institution(REGISTRARS, &d.institution))?;
            auth.institution(&d.institution)?;
            if state.certificates.contains_key(&d.certificate_id) {
                return refuse("certificate_duplicate", format!("certificate {} was already issued", d.certificate_id));
            }
            Ok(())
        }
        Event::ProgramRegistered(d) => {
            auth.authorize(who, at, ty, &Need::in_institution(REGISTRARS, ctx.sid))?;
            auth.institution_of_kind(ctx.sid, &["additional_education", "school"], "an additional-education program")?;
            if !(1..=crate::queue::PLACES_MAX).contains(&d.capacity) {
                return refuse(
                    "capacity_invalid",
                    format!("capacity {} is not a positive number of places", d.capacity),
                );
            }
            if state.programs.contains_key(&(ctx.sid.to_owned(), d.program_id.clone())) {
                return refuse(
                    "program_already_registered",
                    format!("{} already has program {}", ctx.sid, d.program_id),
                );
            }
            Ok(())
        }
        Event::ProgramEnrolled(d) => {
            auth.authorize(who, at, ty, &Need::in_institution(REGISTRARS, &d.institution))?;
            let p = program(&d.institution, &d.program_id)?;
            if p.learners.contains(ctx.e.stream) {
                return refuse(
                    "already_enrolled_in_program",
                    format!("the learner is already enrolled in {}", d.program_id),
                );
            }
            if p.learners.len() as i64 >= p.capacity {
                return refuse("program_full", format!("program {} has all {} places taken", d.program_id, p.capacity));
            }
            if let Some(c) = &d.certificate_id {
                if state.certificates.get(c).map(String::as_str) != Some(ctx.e.stream) {
                    return refuse("certificate_unknown", format!("certificate {c} was not issued to this learner"));
                }
            }
            Ok(())
        }
        Event::ProgramLeft(d) => {
            auth.authorize(who, at, ty, &Need::in_institution(REGISTRARS, &d.institution))?;
            if !program(&d.institution, &d.program_id)?.learners.contains(ctx.e.stream) {
                return refuse("not_enrolled_in_program", format!("the learner is not enrolled in {}", d.program_id));
            }
            Ok(())
        }
        _ => Ok(()),
    }
}
