//! The digital profile: portfolio achievements attested by registered issuers and their
//! revocation, and learners' transfers between institutions and regions.
//! Not the lifelong profile read model: only what may be written.

use crate::authority::{Authority, Need};
use crate::vocabulary::Event;
use crate::{date_field, deny, refuse, Applied, Ctx, RuleRefusal};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

#[derive(Serialize, Deserialize)]
struct Achievement {
    stream: String,
    issuer_key: String,
    issuer_institution: Option<String>,
    revoked: bool,
}

#[derive(Default, Serialize, Deserialize)]
pub(crate) struct Portfolio {
    #[serde(with = "crate::state::sorted_map")]
    achievements: HashMap<String, Achievement>,
}

impl Portfolio {
    pub fn apply(&mut self, auth: &Authority, a: &Applied, ev: &Event) {
        match ev {
            Event::AchievementAttested(d) => {
                let issuer_institution = auth.grants.get(a.e.author).and_then(|g| g.institution.clone());
                self.achievements.entry(d.achievement_id.clone()).or_insert_with(|| Achievement {
                    stream: a.e.stream.to_owned(),
                    issuer_key: a.e.author.to_owned(),
                    issuer_institution,
                    revoked: false,
                });
            }
            Event::AchievementRevoked(d) => {
                if let Some(x) = self.achievements.get_mut(&d.achievement_id) {
                    x.revoked = true;
                }
            }
            _ => {}
        }
    }
}

pub(crate) fn check(ctx: &Ctx, ev: &Event) -> Result<(), RuleRefusal> {
    let (auth, cfg, who, at, ty) = (ctx.auth(), ctx.cfg(), ctx.e.author, ctx.at, ctx.e.event_type);
    let state = &ctx.rules.portfolio;
    match ev {
        Event::AchievementAttested(d) => {
            let g = auth.valid_grant(who, at)?;
            if !g.has_role("achievement_issuer") {
                return deny("issuer_not_registered", format!("key {who} is not a registered achievement issuer"));
            }
            if !cfg.achievement_kinds.contains(&d.kind) {
                return refuse(
                    "achievement_kind_unknown",
                    format!("achievement kind {} is not one of {}", d.kind, cfg.achievement_kinds.join(", ")),
                );
            }
            if !cfg.achievement_levels.contains(&d.level) {
                return refuse(
                    "achievement_level_unknown",
                    format!("level {} is not one of {}", d.level, cfg.achievement_levels.join(", ")),
                );
            }
            if date_field(&d.date, "date")? > ctx.date {
                return refuse(
                    "achievement_date_in_future",
                    format!("an achievement dated {} is attested before it happened", d.date),
                );
            }
            if state.achievements.contains_key(&d.achievement_id) {
                return refuse(
                    "achievement_duplicate",
                    format!("achievement {} was already attested", d.achievement_id),
                );
            }
            Ok(())
        }
        Event::AchievementRevoked(d) => {
            let g = auth.valid_grant(who, at)?;
            let Some(x) = state.achievements.get(&d.achievement_id).filter(|x| x.stream == ctx.e.stream) else {
                return refuse("achievement_unknown", format!("the learner has no achievement {}", d.achievement_id));
            };
            let same_issuer =
                x.issuer_key == who || (x.issuer_institution.is_some() && g.institution == x.issuer_institution);
            if !(g.has_role("achievement_issuer") && same_issuer) {
                return deny(
                    "not_authorized",
                    format!("only the issuer of achievement {} may revoke it", d.achievement_id),
                );
            }
            if x.revoked {
                return refuse(
                    "achievement_already_revoked",
                    format!("achievement {} is already revoked", d.achievement_id),
                );
            }
            Ok(())
        }
        Event::LearnerTransferred(d) => {
            auth.authorize(
                who,
                at,
                ty,
                &Need::in_institution(&["registrar", "institution_admin"], &d.from_institution),
            )?;
            auth.institution(&d.from_institution)?;
            if d.to_region.is_none() {
                auth.institution(&d.to_institution)?;
            }
            if d.from_institution == d.to_institution && d.to_region.is_none() {
                return refuse(
                    "transfer_to_same_institution",
                    format!("a transfer from {} to itself", d.from_institution),
                );
            }
            let on = date_field(&d.transferred_on, "transferred_on")?;
            crate::contingent::check_transfer(ctx, &d.from_institution, on)
        }
        _ => Ok(()),
    }
}
