//! The kindergarten queue of each territory: applications with benefits, withdrawals, a main
//! allocation run, answers and re-offers, enrolments, a transfer, and younger siblings of enrolled
//! children. Not the queue's rules: the offers follow the queue order as the rules define it
//! (`zachetka_projections::queue_order`: the tier, the time of filing, the number), so the script
//! and the rules cannot disagree on who comes first.
//!
//! Applications of a territory are filed at increasing times, so the ledger's time of filing
//! (`recorded_at`, whatever the batching) orders them as their numbers do.

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
use zachetka_projections::queue_order::{self, ClaimRef, ClaimState};
use zachetka_rules::RegionConfig;

pub(super) const EXTRAORDINARY: [&str; 5] =
    ["judge", "prosecutor", "chernobyl", "investigative_committee", "special_military_operation"];
pub(super) const FIRST_PRIORITY: [&str; 5] =
    ["large_family", "police", "military", "disabled_child", "disabled_parent"];

impl DemoRegion {
    /// A kindergarten queue per territory: applications with benefits, withdrawals, a main
    /// allocation run (frozen queue; offers in queue order, refusals for lack of places,
    /// acceptances and refusals, re-offers in order), enrolments, a transfer in an additional run,
    /// and younger siblings of enrolled children applying for the next year.
    pub(super) fn queues(&self, s: &mut Script) {
        let c = &self.cast;
        let cfg = RegionConfig::default();
        struct App {
            id: String,
            number: String,
            at: i64,
            group: String,
            group_type: &'static str,
            preferred: Vec<String>,
            /// A confirmed benefit's category.
            benefit: Option<&'static str>,
            withdrawn: bool,
        }
        // The day of the main allocation: benefits are checked against it (re-check in 2028).
        let today = crate::time::days_from_civil(2027, 5, 15);
        let recheck = crate::time::days_from_civil(2028, 3, 1);
        // The order of `kg` (the shared definition): the tier there, the time of filing, the number.
        let key = |a: &App, kg: &str| {
            let claims: Vec<ClaimRef> = a
                .benefit
                .iter()
                .map(|category| ClaimRef { category, recheck_on: recheck, state: ClaimState::Confirmed })
                .collect();
            let (tier, _) = queue_order::tier_of(&cfg.queue, &claims, &[], &a.preferred, Some(kg), today);
            (tier, a.at, a.number.clone())
        };
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
                // Increasing with k (a few seconds apart within a day), so the ledger's time of
                // filing orders the applications as their numbers do.
                let at = instant(d, 5 * 60) + k as i64 * 5;
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
                let preferred: Vec<String> =
                    (0..n_pref).map(|j| kgs[(usize::from(h[4]) + j) % kgs.len()].clone()).collect();
                let id = format!("{terr}-2027-{k:05}");
                let number = format!("47-{:02}-{:06}", t + 1, k + 1);
                let data = json!({"application_id": id, "number": number, "learner": format!("47-{child:06}"),
                    "birth_month": year_month(birth), "desired_date": "2027-09-01", "preferred": preferred,
                    "group_type": group_type});
                child += 1;
                s.push(at, &q, "queue.application_submitted", op, data);
                let mut benefit = None;
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
                            benefit = Some(category);
                        }
                    }
                }
                let withdrawn = h[10].is_multiple_of(30);
                if withdrawn {
                    let data = json!({"application_id": id, "reason": "семья переехала"});
                    s.push(at + 20 * 86_400, &q, "queue.application_withdrawn", op, data);
                }
                apps.push(App { id, number, at, group: group.code.clone(), group_type, preferred, benefit, withdrawn });
            }
            // The main allocation: the queue is frozen from start to finish. Places are declared
            // for three in four first choices.
            let mut waiting: Vec<&App> = apps.iter().filter(|a| !a.withdrawn).collect();
            waiting.sort_by_key(|a| key(a, &a.preferred[0]));
            let place = |a: &App, kg: &str| (kg.to_owned(), a.group.clone(), a.group_type.to_owned());
            let mut free: BTreeMap<(String, String, String), i64> = BTreeMap::new();
            for a in &waiting {
                *free.entry(place(a, &a.preferred[0])).or_default() += 1;
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
            // In queue order, each child is offered its first preferred kindergarten with a free
            // place; with none, admission is refused for lack of places. No child later in the
            // order can take a place an earlier one wanted: places only run out.
            let mut at = start + 60;
            let mut offered: Vec<(&App, String)> = Vec::new();
            let mut still_waiting: Vec<&App> = Vec::new();
            for a in &waiting {
                at += 20;
                let kg = a.preferred.iter().find(|kg| free.get(&place(a, kg)).is_some_and(|n| *n > 0));
                if let Some(kg) = kg {
                    *free.get_mut(&place(a, kg)).expect("found above") -= 1;
                    let data = json!({"offer_id": format!("{}-o1", a.id), "application_id": a.id, "kindergarten": kg});
                    s.push(at, &q, "queue.place_offered", op, data);
                    offered.push((*a, kg.clone()));
                } else {
                    let data =
                        json!({"application_id": a.id, "kindergarten": a.preferred[0], "reason": "no_free_places"});
                    s.push(at, &q, "queue.admission_refused", op, data);
                    still_waiting.push(*a);
                }
            }
            // Parents answer; one in ten refuses, which frees the place (and the family no longer
            // stands in that kindergarten's order).
            let mut accepted: Vec<(&App, String)> = Vec::new();
            let mut refused: Vec<(&App, String)> = Vec::new();
            let answer = instant(day(2027, 5, 18), 5 * 60);
            for (k, (a, kg)) in offered.iter().enumerate() {
                let at = answer + 20 * k as i64;
                let offer = format!("{}-o1", a.id);
                if mix(&self.origin, "kg-answer", t, k as u64)[0].is_multiple_of(10) {
                    let data = json!({"offer_id": offer, "reason": "выбран другой детский сад"});
                    s.push(at, &q, "queue.offer_refused", op, data);
                    refused.push((*a, kg.clone()));
                    still_waiting.push(*a);
                } else {
                    s.push(at, &q, "queue.offer_accepted", op, json!({ "offer_id": offer }));
                    accepted.push((*a, kg.clone()));
                }
            }
            // Each freed place goes to the first waiting child in that kindergarten's order.
            let reoffer = instant(day(2027, 5, 19), 5 * 60);
            for (k, (gone, kg)) in refused.iter().enumerate() {
                let refusers: Vec<&str> = refused.iter().filter(|(_, r)| r == kg).map(|(a, _)| a.id.as_str()).collect();
                let next = still_waiting
                    .iter()
                    .enumerate()
                    .filter(|(_, a)| a.group == gone.group && a.group_type == gone.group_type)
                    .filter(|(_, a)| a.preferred.contains(kg) && !refusers.contains(&a.id.as_str()))
                    .min_by_key(|(_, a)| key(a, kg))
                    .map(|(i, _)| i);
                if let Some(i) = next {
                    let next = still_waiting.remove(i);
                    let offer = format!("{}-o2", next.id);
                    let at = reoffer + 20 * k as i64;
                    let data = json!({"offer_id": offer, "application_id": next.id, "kindergarten": kg});
                    s.push(at, &q, "queue.place_offered", op, data);
                    s.push(at + 86_400, &q, "queue.offer_accepted", op, json!({ "offer_id": offer }));
                    accepted.push((next, kg.clone()));
                }
            }
            s.push(instant(day(2027, 5, 31), 5 * 60), &q, "queue.allocation_finished", op, json!({ "run_id": run }));
            // Enrolment orders of the kindergartens (their admins), or by the operator.
            let enrol = instant(day(2027, 6, 1), 5 * 60);
            let mut enrolments = Vec::new();
            for (k, (a, kg)) in accepted.iter().enumerate() {
                let kg_index = kg[3..].parse::<usize>().expect("kg-NNN") - 1;
                let by = if k % 2 == 0 { c.kg_admin[kg_index] } else { op };
                let data = json!({"application_id": a.id, "kindergarten": kg,
                    "order_ref": format!("{kg}-2027-{:04}", k + 1)});
                enrolments.push(s.push(enrol + 30 * k as i64, &q, "queue.enrolled", by, data));
            }
            // Younger siblings of the first enrolled children apply for 2028: the preferential
            // right (преимущественное) in the kindergarten the sibling attends, naming its enrolment.
            for (k, ((_, kg), enrolment)) in accepted.iter().zip(&enrolments).take(2).enumerate() {
                let at = instant(day(2027, 6, 15), 5 * 60) + 60 * k as i64;
                let id = format!("{terr}-2028-{k:05}");
                let other = kgs.iter().find(|x| *x != kg).expect("two kindergartens per territory");
                let data = json!({"application_id": id, "number": format!("47-{:02}-2028-{:06}", t + 1, k + 1),
                    "learner": format!("47-{child:06}"), "birth_month": "2025-02", "desired_date": "2028-09-01",
                    "preferred": [kg, other], "group_type": "general"});
                child += 1;
                s.push(at, &q, "queue.application_submitted", op, data);
                let data = json!({"application_id": id, "kindergarten": kg,
                    "sibling": format!("47-{:06}", 500_000 + k), "sibling_enrolment": enrolment});
                s.push(at + 30, &q, "queue.sibling_linked", op, data);
            }
            // A family moves within the territory: an additional run declares the place, then the
            // transfer. A free place is the queue's first (the rules refuse a transfer ahead of a
            // waiting child who chose that kindergarten), so the family is one whose group nobody
            // still waits for in the other kindergarten.
            let queue_wants = |a: &App, to: &String| {
                still_waiting
                    .iter()
                    .any(|w| w.group == a.group && w.group_type == a.group_type && w.preferred.contains(to))
            };
            let mover = accepted.iter().find_map(|(a, kg)| {
                let to = kgs.iter().find(|x| *x != kg).expect("two kindergartens per territory");
                (!queue_wants(a, to)).then_some((a, kg, to))
            });
            if let Some((a, kg, to)) = mover {
                let run = format!("{terr}-2027-add-1");
                let at = instant(day(2027, 8, 10), 5 * 60);
                let places =
                    json!([{"kindergarten": to, "age_group": a.group, "group_type": a.group_type, "places": 1}]);
                s.push(
                    at,
                    &q,
                    "queue.allocation_started",
                    op,
                    json!({"run_id": run, "kind": "additional", "places": places}),
                );
                let data = json!({"application_id": a.id, "from_kindergarten": kg, "to_kindergarten": to});
                s.push(at + 600, &q, "queue.transferred", op, data);
                s.push(at + 1200, &q, "queue.allocation_finished", op, json!({ "run_id": run }));
            }
        }
    }
}
