//! Teacher attestation before the commission: applications, each member's vote with their
//! own key, the secretary's decision; one teacher climbs первая → высшая → методист. Not the
//! quorum rules (read from the default region config).

use super::date;
use super::day;
use super::instant;
use super::mix;
use super::population::MEMBERS;
use super::sch;
use super::DemoRegion;
use super::Script;
use serde_json::json;
use zachetka_rules::RegionConfig;

impl DemoRegion {
    /// Teacher attestation: applications (by the teacher or the school admin), each member's vote
    /// with their own key, the secretary's decision; one teacher goes первая → высшая → методист.
    pub(super) fn attestation(&self, s: &mut Script) {
        let c = &self.cast;
        let cfg = RegionConfig::default();
        let path_teacher = usize::from(c.teachers > 1);
        let case = |s: &mut Script, i: usize, app: &str, category: &str, applied: i64, votes: usize, yes: usize| {
            let teacher = format!("teacher/t-{i:05}");
            let school = i as u64 % c.schools;
            let by = if mix(&self.origin, "att-by", i as u64, 0)[0].is_multiple_of(3) {
                c.school_admin[school as usize]
            } else {
                i
            };
            let data = json!({"application_id": app, "commission": "com-001", "institution": sch(school), "category": category});
            s.push(instant(applied, 6 * 60), &teacher, "attestation.application_submitted", by, data);
            let first = mix(&self.origin, "att-members", i as u64, applied as u64)[0] as usize;
            for k in 0..votes {
                let member = c.members[(first + k) % MEMBERS];
                let vote = if k < yes { "granted" } else { "refused" };
                let at = instant(applied + 14, 6 * 60 + 10 * k as i64);
                s.push(at, &teacher, "attestation.vote_cast", member, json!({"application_id": app, "vote": vote}));
            }
            let decision = if 2 * yes > votes { "granted" } else { "refused" };
            let data = json!({"application_id": app, "decision": decision, "decided_on": date(applied + 15)});
            s.push(instant(applied + 15, 8 * 60), &teacher, "attestation.decision_recorded", c.secretary, data);
        };
        let quorum = |category: &str| cfg.attestation.quorum.get(category).copied().unwrap_or(5) as usize;
        case(s, path_teacher, "att-first", "first", day(2026, 10, 5), quorum("first"), quorum("first"));
        case(s, path_teacher, "att-highest", "highest", day(2027, 1, 11), quorum("highest") + 1, quorum("highest"));
        case(s, path_teacher, "att-methodist", "methodist", day(2027, 3, 1), quorum("methodist"), quorum("methodist"));
        let applicants: Vec<usize> = (0..c.teachers).filter(|i| i % 12 == 5 && *i != path_teacher).collect();
        for (k, &i) in applicants.iter().enumerate() {
            let h = mix(&self.origin, "att", i as u64, 0);
            let category = match h[0] % 10 {
                0..=5 => "first",
                6..=7 => "highest",
                _ => "fitness",
            };
            let votes = quorum(category) + usize::from(h[1] % 2);
            let yes = if h[2].is_multiple_of(6) { votes / 2 } else { votes - usize::from(h[3] % 2) };
            let applied = day(2026, 10, 1) + (k * 180 / applicants.len()) as i64;
            case(s, i, &format!("att-{i:05}-2026"), category, applied, votes, yes);
        }
    }
}
