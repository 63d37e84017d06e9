//! The kindergarten queue of each territory: applications with benefits and siblings,
//! withdrawals, a main allocation run, answers and re-offers, enrolments and a transfer. Not the
//! queue's rules, though it repeats one: `queues` re-implements the tier order (`tier_of`, the
//! sibling tier, then the sort of `waiting` by tier, time and number over a frozen queue) that
//! `projections/src/queue.rs` already has, to script offers the rules accept. The rules engine
//! decides (a divergence shows as a refused demo event); issue "[layout]" notes the duplicate,
//! left until the rules move to their own crate.

use super::day;
use super::instant;
use super::mix;
use super::population::TERRITORIES;
use super::year_month;
use super::DemoRegion;
use super::Script;
use serde_json::json;
use serde_json::Value;
use std::collections::BTreeMap;
use std::collections::VecDeque;
use zachetka_rules::RegionConfig;

pub(super) const EXTRAORDINARY: [&str; 5] =
    ["judge", "prosecutor", "chernobyl", "investigative_committee", "special_military_operation"];
pub(super) const FIRST_PRIORITY: [&str; 5] =
    ["large_family", "police", "military", "disabled_child", "disabled_parent"];

impl DemoRegion {
    /// A kindergarten queue per territory: applications with benefits and siblings, withdrawals,
    /// a main allocation run (frozen queue; offers in tier order, refusals for lack of places,
    /// acceptances and refusals, re-offers), enrolments, and a transfer in an additional run.
    pub(super) fn queues(&self, s: &mut Script) {
        let c = &self.cast;
        let cfg = RegionConfig::default();
        let tier_of = |tier: &str| cfg.queue.tiers.iter().position(|t| t == tier).unwrap_or(cfg.queue.tiers.len());
        let general = tier_of("general");
        let sibling_tier = tier_of(&cfg.queue.sibling_tier);
        struct App {
            id: String,
            number: String,
            at: i64,
            key: (String, String, String),
            tier: usize,
            withdrawn: bool,
        }
        let mut child = c.kg_base;
        for t in 0..c.territories {
            let terr = TERRITORIES[t as usize];
            let q = format!("queue/kg/{terr}");
            let op = c.operator[t as usize];
            let kgs: Vec<String> =
                (0..c.kgs_per_territory).map(|j| format!("kg-{:03}", t + j * c.territories + 1)).collect();
            let n_apps = (c.learners / (25 * c.territories)).max(8);
            let mut apps = Vec::new();
            for k in 0..n_apps {
                let h = mix(&self.origin, "kg", t, k);
                let d = day(2026, 9, 2) + (k * 210 / n_apps) as i64;
                let at = instant(d, 5 * 60 + i64::from(h[0]));
                let birth = 2022 * 12 + 2 + i64::from(h[1] % 40);
                let (young, _) = zachetka_formats::time::age_months_on_sept1(
                    (birth.div_euclid(12), (birth.rem_euclid(12) + 1) as u32),
                    2027,
                );
                let Some(group) = cfg.queue.age_groups.iter().find(|g| (g.months_min..=g.months_max).contains(&young))
                else {
                    continue;
                };
                let group_type = if h[2].is_multiple_of(7) { "combined" } else { "general" };
                let n_pref = 1 + usize::from(h[3]) % kgs.len().min(3);
                let preferred: Vec<&String> = (0..n_pref).map(|j| &kgs[(usize::from(h[4]) + j) % kgs.len()]).collect();
                let id = format!("{terr}-2027-{k:05}");
                let number = format!("47-{:02}-{:06}", t + 1, k + 1);
                let data = json!({"application_id": id, "number": number, "learner": format!("47-{child:06}"),
                    "birth_month": year_month(birth), "desired_date": "2027-09-01", "preferred": preferred,
                    "group_type": group_type});
                child += 1;
                s.push(at, &q, "queue.application_submitted", op, data);
                let mut tier = general;
                if h[5] % 10 < 3 {
                    let category = if h[6].is_multiple_of(3) {
                        EXTRAORDINARY[usize::from(h[7]) % EXTRAORDINARY.len()]
                    } else {
                        FIRST_PRIORITY[usize::from(h[7]) % FIRST_PRIORITY.len()]
                    };
                    let claim = format!("{id}-b1");
                    let data = json!({"application_id": id, "claim_id": claim, "category": category,
                        "evidence_ref": format!("doc-store:{claim}"), "recheck_on": "2028-03-01"});
                    s.push(at + 600, &q, "queue.benefit_claimed", op, data);
                    let decided = at + 3 * 86_400;
                    match h[8] % 10 {
                        0 => {
                            let data = json!({"application_id": id, "claim_id": claim, "reason": "документ не подтверждает льготу"});
                            s.push(decided, &q, "queue.benefit_rejected", op, data);
                        }
                        1 => {} // not yet confirmed: counts as general
                        _ => {
                            s.push(
                                decided,
                                &q,
                                "queue.benefit_confirmed",
                                op,
                                json!({"application_id": id, "claim_id": claim}),
                            );
                            tier = cfg.queue.benefit_categories.get(category).map_or(general, |t| tier_of(t));
                        }
                    }
                }
                if h[9].is_multiple_of(10) {
                    // An older child already in that kindergarten (a pseudonymous id of its own).
                    let sibling = format!("47-{:06}", child + 500_000);
                    let data = json!({"application_id": id, "kindergarten": preferred[0], "sibling": sibling});
                    s.push(at + 1200, &q, "queue.sibling_linked", op, data);
                    tier = tier.min(sibling_tier);
                }
                let withdrawn = h[10].is_multiple_of(30);
                if withdrawn {
                    let data = json!({"application_id": id, "reason": "семья переехала"});
                    s.push(at + 20 * 86_400, &q, "queue.application_withdrawn", op, data);
                }
                let key = (preferred[0].clone(), group.code.clone(), group_type.to_owned());
                apps.push(App { id, number, at, key, tier, withdrawn });
            }
            // The main allocation: the queue is frozen from start to finish.
            let mut waiting: Vec<&App> = apps.iter().filter(|a| !a.withdrawn).collect();
            waiting.sort_by(|a, b| (a.tier, a.at, &a.number).cmp(&(b.tier, b.at, &b.number)));
            let mut free: BTreeMap<&(String, String, String), i64> = BTreeMap::new();
            for a in &waiting {
                *free.entry(&a.key).or_default() += 1;
            }
            for n in free.values_mut() {
                *n = (*n * 3 + 3) / 4;
            }
            let places: Vec<Value> = free
                .iter()
                .map(|((kg, group, ty), n)| json!({"kindergarten": kg, "age_group": group, "group_type": ty, "places": n}))
                .collect();
            let run = format!("{terr}-2027-main");
            let start = instant(day(2027, 5, 15), 5 * 60);
            s.push(start, &q, "queue.allocation_started", op, json!({"run_id": run, "kind": "main", "places": places}));
            let mut at = start + 60;
            let mut offered = Vec::new();
            let mut refused_admission: BTreeMap<&(String, String, String), VecDeque<&App>> = BTreeMap::new();
            for a in &waiting {
                at += 20;
                let n = free.get_mut(&a.key).expect("every waiting key has a row");
                if *n > 0 {
                    *n -= 1;
                    let data =
                        json!({"offer_id": format!("{}-o1", a.id), "application_id": a.id, "kindergarten": a.key.0});
                    s.push(at, &q, "queue.place_offered", op, data);
                    offered.push(*a);
                } else {
                    let data = json!({"application_id": a.id, "kindergarten": a.key.0, "reason": "no_free_places"});
                    s.push(at, &q, "queue.admission_refused", op, data);
                    refused_admission.entry(&a.key).or_default().push_back(*a);
                }
            }
            // Parents answer; a refused offer frees its place for the next child refused for lack of it.
            let mut accepted = Vec::new();
            let answer = instant(day(2027, 5, 18), 5 * 60);
            let reoffer = instant(day(2027, 5, 19), 5 * 60);
            for (k, a) in offered.iter().enumerate() {
                let at = answer + 20 * k as i64;
                let offer = format!("{}-o1", a.id);
                if mix(&self.origin, "kg-answer", t, k as u64)[0].is_multiple_of(10) {
                    s.push(
                        at,
                        &q,
                        "queue.offer_refused",
                        op,
                        json!({"offer_id": offer, "reason": "выбран другой детский сад"}),
                    );
                    if let Some(next) = refused_admission.get_mut(&a.key).and_then(VecDeque::pop_front) {
                        let offer = format!("{}-o2", next.id);
                        let at = reoffer + 20 * k as i64;
                        let data = json!({"offer_id": offer, "application_id": next.id, "kindergarten": next.key.0});
                        s.push(at, &q, "queue.place_offered", op, data);
                        s.push(at + 86_400, &q, "queue.offer_accepted", op, json!({ "offer_id": offer }));
                        accepted.push(next);
                    }
                } else {
                    s.push(at, &q, "queue.offer_accepted", op, json!({ "offer_id": offer }));
                    accepted.push(a);
                }
            }
            s.push(instant(day(2027, 5, 31), 5 * 60), &q, "queue.allocation_finished", op, json!({ "run_id": run }));
            // Enrolment orders of the kindergartens (their admins), or by the operator.
            let enrol = instant(day(2027, 6, 1), 5 * 60);
            for (k, a) in accepted.iter().enumerate() {
                let kg_index = a.key.0[3..].parse::<usize>().expect("kg-NNN") - 1;
                let by = if k % 2 == 0 { c.kg_admin[kg_index] } else { op };
                let data = json!({"application_id": a.id, "kindergarten": a.key.0,
                    "order_ref": format!("{}-2027-{:04}", a.key.0, k + 1)});
                s.push(enrol + 30 * k as i64, &q, "queue.enrolled", by, data);
            }
            // A family moves within the territory: an additional run declares the place, then the transfer.
            if let Some(a) = accepted.first() {
                let to = kgs.iter().find(|kg| **kg != a.key.0).expect("two kindergartens per territory");
                let run = format!("{terr}-2027-add-1");
                let at = instant(day(2027, 8, 10), 5 * 60);
                let places = json!([{"kindergarten": to, "age_group": a.key.1, "group_type": a.key.2, "places": 1}]);
                s.push(
                    at,
                    &q,
                    "queue.allocation_started",
                    op,
                    json!({"run_id": run, "kind": "additional", "places": places}),
                );
                let data = json!({"application_id": a.id, "from_kindergarten": a.key.0, "to_kindergarten": to});
                s.push(at + 600, &q, "queue.transferred", op, data);
                s.push(at + 1200, &q, "queue.allocation_finished", op, json!({ "run_id": run }));
            }
        }
    }
}
