//! Staff records on a teacher's stream (`teacher/<id>`): professional development courses
//! completed and results of professional competitions («Конкурсы профессионального
//! мастерства»), each attested by its issuer: a key the authority granted the
//! `staff_record_issuer` role (a course provider such as the region's institute of education
//! development, or a competition's organiser). Attestation commissions read them.
//! Not teacher attestation (`attestation`) and not the teachers read model.

use crate::authority::Need;
use crate::vocabulary::Event;
use crate::{date_field, refuse, Applied, Ctx, RuleRefusal};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

const ISSUERS: &[&str] = &["staff_record_issuer"];
/// The longest course a record may claim, in academic hours.
const COURSE_HOURS_MAX: i64 = 10_000;

#[derive(Default, Serialize, Deserialize)]
pub(crate) struct Staff {
    /// `<teacher>/<record id>` of every record accepted.
    #[serde(with = "crate::state::sorted_set")]
    records: HashSet<String>,
}

impl Staff {
    pub fn apply(&mut self, a: &Applied, ev: &Event) {
        let id = match ev {
            Event::StaffCourseCompleted(d) => &d.record_id,
            Event::StaffCompetitionResult(d) => &d.record_id,
            _ => return,
        };
        self.records.insert(format!("{}/{id}", a.sid));
    }
}

pub(crate) fn check(ctx: &Ctx, ev: &Event) -> Result<(), RuleRefusal> {
    let (auth, cfg) = (ctx.auth(), ctx.cfg());
    auth.authorize(ctx.e.author, ctx.at, ctx.e.event_type, &Need::roles(ISSUERS))?;
    let (record_id, institution, date, field) = match ev {
        Event::StaffCourseCompleted(d) => (&d.record_id, &d.institution, &d.completed_on, "completed_on"),
        Event::StaffCompetitionResult(d) => (&d.record_id, &d.institution, &d.date, "date"),
        _ => return Ok(()),
    };
    auth.institution(institution)?;
    if date_field(date, field)? > ctx.date {
        return refuse("record_date_in_future", format!("a staff record dated {date} is attested before it happened"));
    }
    match ev {
        Event::StaffCourseCompleted(d) if !(1..=COURSE_HOURS_MAX).contains(&d.hours) => {
            return refuse(
                "course_hours_invalid",
                format!("a course of {} hours is not 1 to {COURSE_HOURS_MAX}", d.hours),
            )
        }
        Event::StaffCompetitionResult(d) if !cfg.achievement_levels.contains(&d.level) => {
            return refuse(
                "competition_level_unknown",
                format!("level {} is not one of {}", d.level, cfg.achievement_levels.join(", ")),
            )
        }
        Event::StaffCompetitionResult(d) if !cfg.competition_results.contains(&d.result) => {
            return refuse(
                "competition_result_unknown",
                format!("result {} is not one of {}", d.result, cfg.competition_results.join(", ")),
            )
        }
        _ => {}
    }
    if ctx.rules.staff.records.contains(&format!("{}/{record_id}", ctx.sid)) {
        return refuse("staff_record_duplicate", format!("teacher {} already has record {record_id}", ctx.sid));
    }
    Ok(())
}
