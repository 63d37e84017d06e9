//! The kindergarten queue of a territory (Электронный детский сад): applications, benefit claims
//! and their tiers, sibling links, allocation runs that freeze the queue and declare free places,
//! offers, acceptances, refusals, enrolments and transfers; and a child's position with reasons.
//! Not the allocation algorithm itself: operators' runs decide offers, these rules check them.

use crate::authority::Need;
use crate::config::RegionConfig;
use crate::time::{self, Days, Nanos};
use crate::vocabulary::Event;
use crate::{date_field, format_instant, refuse, Applied, Ctx, RuleError, RuleRefusal};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use zachetka_projections::queue_order::{self, AgeGroupError, ClaimRef, ClaimState, TierReason};

/// The most places one declaration may state (bounds every counter far from overflow).
pub(crate) const PLACES_MAX: i64 = 100_000;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Claim {
    id: String,
    category: String,
    recheck_on: Days,
    state: ClaimState,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum Status {
    Waiting,
    /// `age_group`: the group whose place the offer took (the child's in allocation `year`).
    Offered {
        offer: String,
        kindergarten: String,
        age_group: String,
        year: i64,
    },
    Accepted {
        kindergarten: String,
    },
    Enrolled {
        kindergarten: String,
    },
    Withdrawn,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct App {
    number: String,
    /// The time of filing the order uses (`queue_order::filed_at`): the ledger's `recorded_at`,
    /// or an imported application's original `occurred_at`.
    submitted_at: Nanos,
    submitted_text: String,
    /// The birth month (year, month): the age group is computed per allocation year from it.
    birth: (i64, u32),
    /// The academic year of the desired date: the first allocation the application competes in.
    target_year: i64,
    group_type: String,
    preferred: Vec<String>,
    claims: Vec<Claim>,
    /// Kindergartens a sibling attends (each raises the tier in that kindergarten's order only).
    siblings: Vec<String>,
    /// Kindergartens not preferred that the family agreed to be offered.
    consents: Vec<String>,
    /// Kindergartens whose offer the family refused: the application no longer stands ahead in
    /// their order.
    refused_offers: Vec<String>,
    status: Status,
}

/// If `app` holds an offer, gives its place back to the free places (when they are still its
/// allocation year's); says whether it held one.
fn release_offered_place(free: &mut HashMap<(String, String, String), i64>, free_year: Option<i64>, app: &App) -> bool {
    let Status::Offered { kindergarten, age_group, year, .. } = &app.status else { return false };
    if free_year == Some(*year) {
        *free.entry((kindergarten.clone(), age_group.clone(), app.group_type.clone())).or_default() += 1;
    }
    true
}

/// An open allocation run.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct OpenRun {
    id: String,
    /// Whether it is the main one (it freezes the queue).
    main: bool,
    /// The allocation year whose order and age groups its offers follow.
    year: i64,
}

#[derive(Default, Serialize, Deserialize)]
struct Territory {
    #[serde(with = "crate::state::sorted_map")]
    apps: HashMap<String, App>,
    /// The open allocation run.
    run: Option<OpenRun>,
    /// Free places per (kindergarten, age group, group type), of allocation year `free_year`
    /// (the last run's): a place of one year's age group is no place of another year's.
    #[serde(with = "crate::state::sorted_map")]
    free: HashMap<(String, String, String), i64>,
    free_year: Option<i64>,
    /// Offer id -> application id.
    #[serde(with = "crate::state::sorted_map")]
    offers: HashMap<String, String>,
    /// `queue.enrolled` event id -> application id (a sibling link names one).
    #[serde(with = "crate::state::sorted_map")]
    enrolments: HashMap<String, String>,
}

#[derive(Default, Serialize, Deserialize)]
pub(crate) struct Queues {
    #[serde(with = "crate::state::sorted_map")]
    territories: HashMap<String, Territory>,
}

/// The age group on 1 September of the academic year of `desired_date` (`queue_order::age_group_of`).
fn age_group(cfg: &RegionConfig, birth_month: &str, desired_date: &str) -> Result<String, RuleRefusal> {
    queue_order::age_group_of(&cfg.queue, birth_month, desired_date).map_err(|e| match e {
        AgeGroupError::BirthMonthMalformed => {
            RuleRefusal::new("event_malformed", format!("data.birth_month {birth_month} is not YYYY-MM"))
        }
        AgeGroupError::DesiredDateMalformed => {
            RuleRefusal::new("event_malformed", format!("data.desired_date {desired_date} is not a date (YYYY-MM-DD)"))
        }
        AgeGroupError::OutOfRange { months, year } => RuleRefusal::new(
            "age_out_of_range",
            format!("a child born {birth_month} is {months} months old on 1 september {year}: no age group"),
        ),
    })
}

impl Territory {
    /// The allocation year offers follow now: the open run's, else the allocation year of
    /// `today` (`queue_order::allocation_year_on`).
    fn year(&self, today: Days) -> i64 {
        self.run.as_ref().map_or_else(|| queue_order::allocation_year_on(today), |r| r.year)
    }
}

impl App {
    /// The age group the application competes with in allocation `year`: none before its
    /// target year or once the child is past the oldest group (`queue_order::competes_in`).
    fn group_in<'c>(&self, cfg: &'c RegionConfig, year: i64) -> Option<&'c str> {
        queue_order::competes_in(&cfg.queue, self.birth, self.target_year, year)
    }

    fn birth_text(&self) -> String {
        format!("{:04}-{:02}", self.birth.0, self.birth.1)
    }

    /// Whether the application competes for a place in `kg`: it prefers `kg` and has not refused
    /// an offer of it.
    fn prefers(&self, kg: &str) -> bool {
        self.preferred.iter().any(|p| p == kg) && !self.refused_offers.iter().any(|r| r == kg)
    }

    /// The allocation order's key in the order of `kg` (`None`: territory-wide, no sibling right).
    fn key_in<'a>(&'a self, cfg: &RegionConfig, kg: Option<&str>, today: Days) -> queue_order::OrderKey<'a> {
        queue_order::order_key(self.tier(cfg, kg, today).0, self.submitted_at, &self.number)
    }

    /// The tier index (into `cfg.queue.tiers`) in the order of `kg` and why (`queue_order::tier_of`).
    fn tier(&self, cfg: &RegionConfig, kg: Option<&str>, today: Days) -> (usize, Vec<String>) {
        let claims: Vec<ClaimRef> = self
            .claims
            .iter()
            .map(|c| ClaimRef { category: &c.category, recheck_on: c.recheck_on, state: c.state })
            .collect();
        let siblings: Vec<&str> = self.siblings.iter().map(String::as_str).collect();
        let (best, reasons) = queue_order::tier_of(&cfg.queue, &claims, &siblings, &self.preferred, kg, today);
        let why = reasons
            .into_iter()
            .map(|r| match r {
                TierReason::BenefitConfirmed { claim, tier } => {
                    let c = &self.claims[claim];
                    format!(
                        "benefit {} confirmed: tier {tier} until re-check on {}",
                        c.category,
                        time::format_date(c.recheck_on)
                    )
                }
                TierReason::BenefitLapsed { claim } => {
                    let c = &self.claims[claim];
                    format!(
                        "benefit {} re-check date {} has passed: counts as general until confirmed again",
                        c.category,
                        time::format_date(c.recheck_on)
                    )
                }
                TierReason::BenefitUnconfirmed { claim } => {
                    format!("benefit {} claimed, not yet confirmed: counts as general", self.claims[claim].category)
                }
                TierReason::BenefitRejected { claim } => format!("benefit {} rejected", self.claims[claim].category),
                TierReason::SiblingAttends { sibling, tier } => {
                    format!("a sibling attends kindergarten {}: tier {tier} in its order", self.siblings[sibling])
                }
            })
            .collect();
        (best, why)
    }
}

impl Queues {
    pub fn position(
        &self,
        cfg: &RegionConfig,
        today: Days,
        territory: &str,
        age_group: &str,
        id: &str,
    ) -> Option<(u64, Vec<String>)> {
        let t = self.territories.get(territory)?;
        // The application's next allocation: its target year until that comes, then the current.
        let me = t.apps.get(id)?;
        let year = queue_order::next_allocation_year(me.target_year, t.year(today));
        let in_list = |a: &App| a.status == Status::Waiting && a.group_in(cfg, year) == Some(age_group);
        let me = Some(me).filter(|a| in_list(a))?;
        let (my_tier, mut why) = me.tier(cfg, None, today);
        let my_key = queue_order::order_key(my_tier, me.submitted_at, &me.number);
        let (mut higher, mut same_earlier) = (0u64, 0u64);
        for (other_id, a) in &t.apps {
            if other_id == id || !in_list(a) {
                continue;
            }
            let (tier, _) = a.tier(cfg, None, today);
            if queue_order::order_key(tier, a.submitted_at, &a.number) < my_key {
                if tier < my_tier {
                    higher += 1;
                } else {
                    same_earlier += 1;
                }
            }
        }
        let tier_name = cfg.queue.tier_name(my_tier);
        why.insert(0, format!("tier {tier_name} ({} of {} in allocation order)", my_tier + 1, cfg.queue.tiers.len()));
        why.push(format!(
            "filed at {} (ledger time; applied at {}), number {}",
            format_instant(me.submitted_at),
            me.submitted_text,
            me.number
        ));
        why.push("territory-wide order: a sibling's right counts only in its kindergarten's order".to_owned());
        why.push(format!("allocation year {year}: age group {age_group} on 1 september {year}"));
        why.push(format!("ahead: {higher} in a higher tier, {same_earlier} in the same tier applied earlier"));
        Some((higher + same_earlier + 1, why))
    }

    /// `today`: the rules' "today" with this event's date in it (as `check` judged it).
    pub fn apply(&mut self, cfg: &RegionConfig, today: Days, a: &Applied, ev: &Event) {
        let terr = self.territories.entry(a.sid.to_owned()).or_default();
        match ev {
            Event::QueueApplicationSubmitted(d) => {
                let (Ok(_), Some(birth), Some(target_year)) = (
                    age_group(cfg, &d.birth_month, &d.desired_date),
                    time::parse_year_month(&d.birth_month),
                    queue_order::target_year(&d.desired_date),
                ) else {
                    return;
                };
                terr.apps.entry(d.application_id.clone()).or_insert(App {
                    number: d.number.clone(),
                    submitted_at: queue_order::filed_at(a.e.recorded_at, a.at, a.imported),
                    submitted_text: a.e.occurred_at.to_owned(),
                    birth,
                    target_year,
                    group_type: d.group_type.clone(),
                    preferred: d.preferred.clone(),
                    claims: Vec::new(),
                    siblings: Vec::new(),
                    consents: Vec::new(),
                    refused_offers: Vec::new(),
                    status: Status::Waiting,
                });
            }
            Event::BenefitClaimed(d) => {
                if let (Some(app), Some(recheck_on)) =
                    (terr.apps.get_mut(&d.application_id), time::parse_date(&d.recheck_on))
                {
                    app.claims.push(Claim {
                        id: d.claim_id.clone(),
                        category: d.category.clone(),
                        recheck_on,
                        state: ClaimState::Claimed,
                    });
                }
            }
            Event::BenefitConfirmed(d) => set_claim(terr, &d.application_id, &d.claim_id, ClaimState::Confirmed),
            Event::BenefitRejected(d) => set_claim(terr, &d.application_id, &d.claim_id, ClaimState::Rejected),
            Event::SiblingLinked(d) => {
                if let Some(app) = terr.apps.get_mut(&d.application_id) {
                    app.siblings.push(d.kindergarten.clone());
                }
            }
            Event::QueueApplicationWithdrawn(d) => {
                if let Some(app) = terr.apps.get_mut(&d.application_id) {
                    release_offered_place(&mut terr.free, terr.free_year, app);
                    app.status = Status::Withdrawn;
                }
            }
            Event::AllocationStarted(d) => {
                let date = time::local_date(a.at, cfg.utc_offset_minutes);
                let year = d.academic_year.unwrap_or_else(|| queue_order::allocation_year_on(date));
                terr.run = Some(OpenRun { id: d.run_id.clone(), main: d.kind == "main", year });
                if terr.free_year != Some(year) {
                    terr.free.clear();
                    terr.free_year = Some(year);
                }
                for row in &d.places {
                    terr.free
                        .insert((row.kindergarten.clone(), row.age_group.clone(), row.group_type.clone()), row.places);
                }
            }
            Event::AllocationFinished(_) => terr.run = None,
            Event::PlaceOffered(d) => {
                let year = terr.year(today);
                if let Some(app) = terr.apps.get_mut(&d.application_id) {
                    let Some(group) = app.group_in(cfg, year) else { return };
                    *terr
                        .free
                        .entry((d.kindergarten.clone(), group.to_owned(), app.group_type.clone()))
                        .or_default() -= 1;
                    app.status = Status::Offered {
                        offer: d.offer_id.clone(),
                        kindergarten: d.kindergarten.clone(),
                        age_group: group.to_owned(),
                        year,
                    };
                    terr.offers.insert(d.offer_id.clone(), d.application_id.clone());
                }
            }
            Event::OfferAccepted(d) => {
                if let Some(app) = terr.offers.get(&d.offer_id).and_then(|id| terr.apps.get_mut(id)) {
                    if let Status::Offered { kindergarten, .. } = &app.status {
                        app.status = Status::Accepted { kindergarten: kindergarten.clone() };
                    }
                }
            }
            Event::OfferRefused(d) => {
                if let Some(app) = terr.offers.get(&d.offer_id).and_then(|id| terr.apps.get_mut(id)) {
                    if let Status::Offered { kindergarten, .. } = &app.status {
                        app.refused_offers.push(kindergarten.clone());
                    }
                    if release_offered_place(&mut terr.free, terr.free_year, app) {
                        app.status = Status::Waiting;
                    }
                }
            }
            Event::KindergartenEnrolled(d) => {
                if let Some(app) = terr.apps.get_mut(&d.application_id) {
                    app.status = Status::Enrolled { kindergarten: d.kindergarten.clone() };
                    terr.enrolments.insert(a.e.id.to_owned(), d.application_id.clone());
                }
            }
            Event::OtherKindergartenConsented(d) => {
                if let Some(app) = terr.apps.get_mut(&d.application_id) {
                    app.consents.push(d.kindergarten.clone());
                }
            }
            Event::KindergartenTransferred(d) => {
                let year = terr.year(today);
                if let Some(app) = terr.apps.get_mut(&d.application_id) {
                    let Some(g) = queue_order::age_group_in(&cfg.queue, app.birth, year) else { return };
                    let (g, ty) = (g.to_owned(), app.group_type.clone());
                    *terr.free.entry((d.from_kindergarten.clone(), g.clone(), ty.clone())).or_default() += 1;
                    *terr.free.entry((d.to_kindergarten.clone(), g, ty)).or_default() -= 1;
                    app.status = Status::Enrolled { kindergarten: d.to_kindergarten.clone() };
                }
            }
            _ => {}
        }
    }
}

fn set_claim(terr: &mut Territory, app: &str, claim: &str, state: ClaimState) {
    if let Some(c) = terr.apps.get_mut(app).and_then(|a| a.claims.iter_mut().find(|c| c.id == claim)) {
        c.state = state;
    }
}

/// The most applications an `offer_out_of_order` message names.
const AHEAD_NAMED_MAX: usize = 5;

/// The waiting applications that stand ahead of `me` for a place in `kg` in allocation `year`: of
/// its age group in that year (`group`) and its group type, competing in that year, preferring
/// `kg` (and not having refused an offer of it), earlier in the order of `kg`; for an
/// application that only consented to `kg`, every one that prefers it. Sorted in order.
#[allow(clippy::too_many_arguments)] // one order, its parts named
fn standing_ahead<'t>(
    terr: &'t Territory,
    cfg: &RegionConfig,
    today: Days,
    year: i64,
    group: &str,
    me_id: &str,
    me: &App,
    kg: &str,
) -> Vec<(&'t str, &'t App)> {
    let mine = me.prefers(kg).then(|| me.key_in(cfg, Some(kg), today));
    let mut ahead: Vec<(&str, &App)> = terr
        .apps
        .iter()
        .filter(|(id, a)| {
            id.as_str() != me_id
                && a.status == Status::Waiting
                && a.group_in(cfg, year) == Some(group)
                && a.group_type == me.group_type
                && a.prefers(kg)
        })
        .filter(|(_, a)| match &mine {
            Some(m) => a.key_in(cfg, Some(kg), today) < *m,
            None => true,
        })
        .map(|(id, a)| (id.as_str(), a))
        .collect();
    ahead.sort_by(|x, y| x.1.key_in(cfg, Some(kg), today).cmp(&y.1.key_in(cfg, Some(kg), today)));
    ahead
}

pub(crate) fn check(ctx: &Ctx, ev: &Event) -> Result<(), RuleError> {
    let (auth, cfg, sid) = (ctx.auth(), ctx.cfg(), ctx.sid);
    let operator = Need::in_territory(&["queue_operator"], sid);
    let empty = Territory::default();
    let terr = ctx.rules.queue.territories.get(sid).unwrap_or(&empty);
    let frozen = || -> Result<(), RuleRefusal> {
        match &terr.run {
            Some(OpenRun { id, main: true, .. }) => {
                refuse("queue_frozen", format!("the queue of {sid} is frozen during main allocation run {id}"))
            }
            _ => Ok(()),
        }
    };
    // The allocation year offers, refusals and transfers follow (the same "today" `apply` sees).
    let today = ctx.rules.today.max(ctx.date);
    let year = terr.year(today);
    // The age group `a` competes with in this allocation year, or why it competes in none.
    let competing = |id: &str, a: &App| -> Result<String, RuleRefusal> {
        if year < a.target_year {
            return refuse(
                "allocation_year_before_desired",
                format!(
                    "application {id} asks for a place from academic year {} (its desired date): \
                     the allocation of {year} does not offer it one",
                    a.target_year
                ),
            );
        }
        a.group_in(cfg, year).map(str::to_owned).ok_or_else(|| {
            let (months, _) = time::age_months_on_sept1(a.birth, year);
            RuleRefusal::new(
                "age_out_of_range",
                format!("a child born {} is {months} months old on 1 september {year}: no age group", a.birth_text()),
            )
        })
    };
    let app = |id: &str| {
        terr.apps.get(id).ok_or_else(|| {
            RuleRefusal::new("application_unknown", format!("the queue of {sid} has no application {id}"))
        })
    };
    let waiting = |id: &str| {
        terr.apps.get(id).filter(|a| a.status == Status::Waiting).ok_or_else(|| {
            RuleRefusal::new(
                "application_not_in_queue",
                format!("application {id} is not waiting in the queue of {sid}"),
            )
        })
    };
    let kindergarten = |kg: &str| -> Result<(), RuleRefusal> {
        let i = auth.institution_of_kind(kg, &["kindergarten"], "a kindergarten place")?;
        if i.territory != sid {
            return refuse(
                "kindergarten_other_territory",
                format!("kindergarten {kg} is in territory {}, not {sid}", i.territory),
            );
        }
        Ok(())
    };
    // Only the places of this allocation year count.
    let free = |kg: &str, group: &str, a: &App| {
        if terr.free_year != Some(year) {
            return 0;
        }
        terr.free.get(&(kg.to_owned(), group.to_owned(), a.group_type.clone())).copied().unwrap_or(0)
    };
    let (who, at, ty) = (ctx.e.author, ctx.at, ctx.e.event_type);
    match ev {
        Event::QueueApplicationSubmitted(d) => {
            auth.authorize(who, at, ty, &operator)?;
            frozen()?;
            if terr.apps.contains_key(&d.application_id) {
                return refuse(
                    "application_duplicate",
                    format!("application {} is already in the queue of {sid}", d.application_id),
                );
            }
            if d.preferred.is_empty() || d.preferred.len() as i64 > cfg.queue.preferred_max {
                return refuse(
                    "preferred_invalid",
                    format!("an application names 1 to {} preferred kindergartens", cfg.queue.preferred_max),
                );
            }
            d.preferred.iter().try_for_each(|kg| kindergarten(kg))?;
            if !cfg.queue.group_types.contains(&d.group_type) {
                return refuse(
                    "group_type_unknown",
                    format!("group type {} is not one of {}", d.group_type, cfg.queue.group_types.join(", ")),
                );
            }
            age_group(cfg, &d.birth_month, &d.desired_date)?;
            Ok(())
        }
        Event::BenefitClaimed(d) => {
            auth.authorize(who, at, ty, &operator)?;
            frozen()?;
            let a = app(&d.application_id)?;
            if !cfg.queue.benefit_categories.contains_key(&d.category) {
                return refuse(
                    "benefit_category_unknown",
                    format!("benefit category {} is not a category of this region", d.category),
                );
            }
            if a.claims.iter().any(|c| c.id == d.claim_id) {
                return refuse("claim_duplicate", format!("claim {} already exists", d.claim_id));
            }
            if date_field(&d.recheck_on, "recheck_on")? <= ctx.date {
                return refuse("recheck_date_past", format!("re-check date {} is not after the claim", d.recheck_on));
            }
            Ok(())
        }
        Event::BenefitConfirmed(crate::vocabulary::BenefitConfirmed { application_id, claim_id })
        | Event::BenefitRejected(crate::vocabulary::BenefitRejected { application_id, claim_id, .. }) => {
            auth.authorize(who, at, ty, &operator)?;
            frozen()?;
            let a = app(application_id)?;
            match a.claims.iter().find(|c| &c.id == claim_id) {
                None => refuse("claim_unknown", format!("application {application_id} has no claim {claim_id}")),
                Some(c) if c.state != ClaimState::Claimed => {
                    refuse("claim_already_decided", format!("claim {claim_id} was already decided"))
                }
                Some(_) => Ok(()),
            }
        }
        Event::SiblingLinked(d) => {
            auth.authorize(who, at, ty, &operator)?;
            frozen()?;
            app(&d.application_id)?;
            kindergarten(&d.kindergarten)?;
            let id = &d.sibling_enrolment;
            match ctx.lookup.event(id)? {
                Some((stream, kind)) if kind == "queue.enrolled" && stream == ctx.e.stream => {}
                _ => {
                    return refuse(
                        "sibling_enrolment_unknown",
                        format!("data.sibling_enrolment {id} is not a queue.enrolled entry of {}", ctx.e.stream),
                    )
                }
            }
            let sibling = terr.enrolments.get(id).and_then(|app_id| terr.apps.get(app_id).map(|a| (app_id, a)));
            match sibling {
                Some((_, a)) if a.status == (Status::Enrolled { kindergarten: d.kindergarten.clone() }) => Ok(()),
                Some((app_id, _)) => refuse(
                    "sibling_not_in_kindergarten",
                    format!(
                        "the sibling's application {app_id} (enrolment {id}) is not enrolled in kindergarten {} now",
                        d.kindergarten
                    ),
                ),
                None => refuse(
                    "sibling_enrolment_unknown",
                    format!("data.sibling_enrolment {id} enrolled no application of the queue of {sid}"),
                ),
            }
        }
        Event::OtherKindergartenConsented(d) => {
            auth.authorize(who, at, ty, &operator)?;
            let a = waiting(&d.application_id)?;
            kindergarten(&d.kindergarten)?;
            if a.preferred.contains(&d.kindergarten) || a.consents.contains(&d.kindergarten) {
                return refuse(
                    "consent_duplicate",
                    format!(
                        "application {} already prefers or consented to kindergarten {}",
                        d.application_id, d.kindergarten
                    ),
                );
            }
            Ok(())
        }
        Event::QueueApplicationWithdrawn(d) => {
            auth.authorize(who, at, ty, &operator)?;
            frozen()?;
            match app(&d.application_id)?.status {
                Status::Waiting | Status::Offered { .. } => Ok(()),
                _ => refuse(
                    "application_not_in_queue",
                    format!("application {} is no longer in the queue", d.application_id),
                ),
            }
        }
        Event::AllocationStarted(d) => {
            let grant = auth.authorize(who, at, ty, &operator)?;
            if let Some(run) = &terr.run {
                return refuse(
                    "allocation_already_running",
                    format!("allocation run {} is still open in {sid}", run.id),
                );
            }
            // A run allocates the places of its date's allocation year or the next one (a main
            // allocation may begin before 1 April); an earlier year only when a migration
            // records a legacy system's past allocations.
            let own = queue_order::allocation_year_on(ctx.date);
            if let Some(y) = d.academic_year {
                let past_allowed = grant.has_role(crate::MIGRATION_ROLE);
                if y > own + 1 || (y < own && !past_allowed) {
                    return refuse(
                        "allocation_year_invalid",
                        format!(
                            "a run started on {} allocates places of academic year {own} or {}, not {y}",
                            time::format_date(ctx.date),
                            own + 1
                        ),
                    );
                }
            }
            if d.kind != "main" && d.kind != "additional" {
                return refuse(
                    "allocation_kind_unknown",
                    format!("allocation kind {} is not main or additional", d.kind),
                );
            }
            for row in &d.places {
                kindergarten(&row.kindergarten)?;
                if !cfg.queue.age_groups.iter().any(|g| g.code == row.age_group) {
                    return refuse(
                        "age_group_unknown",
                        format!("age group {} is not a group of this region", row.age_group),
                    );
                }
                if !cfg.queue.group_types.contains(&row.group_type) {
                    return refuse(
                        "group_type_unknown",
                        format!("group type {} is not one of {}", row.group_type, cfg.queue.group_types.join(", ")),
                    );
                }
                if !(0..=PLACES_MAX).contains(&row.places) {
                    return refuse("places_invalid", format!("{} free places in {}", row.places, row.kindergarten));
                }
            }
            Ok(())
        }
        Event::AllocationFinished(d) => {
            auth.authorize(who, at, ty, &operator)?;
            match &terr.run {
                Some(run) if run.id == d.run_id => Ok(()),
                _ => refuse("allocation_run_unknown", format!("allocation run {} is not open in {sid}", d.run_id)),
            }
        }
        Event::PlaceOffered(d) => {
            auth.authorize(who, at, ty, &operator)?;
            let a = waiting(&d.application_id)?;
            kindergarten(&d.kindergarten)?;
            if terr.offers.contains_key(&d.offer_id) {
                return refuse("offer_duplicate", format!("offer {} already exists", d.offer_id));
            }
            if !a.preferred.contains(&d.kindergarten) && !a.consents.contains(&d.kindergarten) {
                return refuse(
                    "kindergarten_not_preferred",
                    format!(
                        "application {} prefers [{}] and has no recorded consent to kindergarten {} \
                         (queue.other_kindergarten_consented)",
                        d.application_id,
                        a.preferred.join(", "),
                        d.kindergarten
                    ),
                );
            }
            let group = competing(&d.application_id, a)?;
            if free(&d.kindergarten, &group, a) <= 0 {
                return refuse(
                    "no_free_place",
                    format!(
                        "kindergarten {} has no free place in age group {group} (allocation year {year}), group type {}",
                        d.kindergarten, a.group_type
                    ),
                );
            }
            let ahead = standing_ahead(terr, cfg, ctx.rules.today, year, &group, &d.application_id, a, &d.kindergarten);
            if !ahead.is_empty() {
                let mut named: Vec<String> = ahead
                    .iter()
                    .take(AHEAD_NAMED_MAX)
                    .map(|(id, o)| {
                        format!(
                            "{id} (number {}, tier {}, filed {})",
                            o.number,
                            cfg.queue.tier_name(o.tier(cfg, Some(&d.kindergarten), ctx.rules.today).0),
                            format_instant(o.submitted_at)
                        )
                    })
                    .collect();
                if ahead.len() > AHEAD_NAMED_MAX {
                    named.push(format!("and {} more", ahead.len() - AHEAD_NAMED_MAX));
                }
                let (my_tier, _) = a.tier(cfg, Some(&d.kindergarten), ctx.rules.today);
                return refuse(
                    "offer_out_of_order",
                    format!(
                        "{} waiting application(s) stand ahead of {} (tier {}) in the order of kindergarten {}, \
                         allocation year {year}, age group {group}, group type {}: {}",
                        ahead.len(),
                        d.application_id,
                        cfg.queue.tier_name(my_tier),
                        d.kindergarten,
                        a.group_type,
                        named.join(", ")
                    ),
                );
            }
            Ok(())
        }
        Event::OfferAccepted(crate::vocabulary::OfferAccepted { offer_id })
        | Event::OfferRefused(crate::vocabulary::OfferRefused { offer_id, .. }) => {
            auth.authorize(who, at, ty, &operator)?;
            let Some(a) = terr.offers.get(offer_id).and_then(|id| terr.apps.get(id)) else {
                return refuse("offer_unknown", format!("the queue of {sid} has no offer {offer_id}"));
            };
            match &a.status {
                Status::Offered { offer, .. } if offer == offer_id => Ok(()),
                _ => refuse("offer_not_pending", format!("offer {offer_id} was already answered or withdrawn")),
            }
        }
        Event::AdmissionRefused(d) => {
            auth.authorize(who, at, ty, &operator)?;
            let a = waiting(&d.application_id)?;
            kindergarten(&d.kindergarten)?;
            if !cfg.queue.admission_refusal_reasons.contains(&d.reason) {
                return refuse(
                    "refusal_reason_not_allowed",
                    format!(
                        "admission is refused only for lack of places ({})",
                        cfg.queue.admission_refusal_reasons.join(", ")
                    ),
                );
            }
            // A child competing in no group of this year has no place of it either.
            let n = a.group_in(cfg, year).map_or(0, |g| free(&d.kindergarten, g, a));
            if n > 0 {
                return refuse(
                    "refusal_with_free_places",
                    format!("kindergarten {} has {n} free places for this application", d.kindergarten),
                );
            }
            Ok(())
        }
        Event::KindergartenEnrolled(d) => {
            let staff = Need::in_institution(&["institution_admin", "registrar"], &d.kindergarten);
            auth.authorize_any(who, at, ty, &[operator, staff])?;
            match &app(&d.application_id)?.status {
                Status::Accepted { kindergarten } if *kindergarten == d.kindergarten => Ok(()),
                _ => refuse(
                    "offer_not_accepted",
                    format!("application {} has no accepted offer of {}", d.application_id, d.kindergarten),
                ),
            }
        }
        Event::KindergartenTransferred(d) => {
            auth.authorize(who, at, ty, &operator)?;
            let a = app(&d.application_id)?;
            match &a.status {
                Status::Enrolled { kindergarten } if *kindergarten == d.from_kindergarten => {}
                _ => {
                    return refuse(
                        "not_enrolled",
                        format!("application {} is not enrolled in {}", d.application_id, d.from_kindergarten),
                    )
                }
            }
            kindergarten(&d.to_kindergarten)?;
            // An enrolled child moves into the group of its age in the current allocation year.
            let Some(group) = queue_order::age_group_in(&cfg.queue, a.birth, year) else {
                let (months, _) = time::age_months_on_sept1(a.birth, year);
                return refuse(
                    "age_out_of_range",
                    format!(
                        "a child born {} is {months} months old on 1 september {year}: no age group",
                        a.birth_text()
                    ),
                );
            };
            if free(&d.to_kindergarten, group, a) <= 0 {
                return refuse(
                    "no_free_place",
                    format!(
                        "kindergarten {} has no free place in age group {group} (allocation year {year})",
                        d.to_kindergarten
                    ),
                );
            }
            // A free place is the queue's (DOMAIN "Offers follow the order"): a transfer takes it
            // only if no waiting child who chose that kindergarten and fits the group stands
            // ahead (by the transferring child's own application when it chose that
            // kindergarten too; otherwise every such waiting child does).
            let ahead =
                standing_ahead(terr, cfg, ctx.rules.today, year, group, &d.application_id, a, &d.to_kindergarten);
            if let Some((first, o)) = ahead.first() {
                return refuse(
                    "transfer_ahead_of_queue",
                    format!(
                        "{} waiting application(s) who chose kindergarten {} stand ahead of the transfer of {} \
                         (allocation year {year}, age group {group}, group type {}); the place goes to them \
                         first, beginning with {first} (number {}, filed {})",
                        ahead.len(),
                        d.to_kindergarten,
                        d.application_id,
                        a.group_type,
                        o.number,
                        format_instant(o.submitted_at)
                    ),
                );
            }
            Ok(())
        }
        _ => Ok(()),
    }
}
