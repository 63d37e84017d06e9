//! 1st-grade enrolment for 2027 at every school: places, window-1 and window-2 applications,
//! two orders. Not the enrolment rules.

use super::date;
use super::day;
use super::instant;
use super::mix;
use super::sch;
use super::year_month;
use super::DemoRegion;
use super::Script;
use serde_json::json;

impl DemoRegion {
    /// 1st grade for 2027 at every school: places, window-1 and window-2 applications, two orders.
    pub(super) fn first_grade(&self, s: &mut Script) {
        let c = &self.cast;
        let per_school = (c.learners / (22 * c.schools)).max(4);
        let mut child = c.fg_base;
        for school in 0..c.schools {
            let stream = format!("institution/{}", sch(school));
            let (registrar, admin) = (c.school_registrar[school as usize], c.school_admin[school as usize]);
            let w1 = per_school * 3 / 4;
            let w2 = per_school - w1;
            let places = (w1 + w2 - u64::from(w2 >= 2)) as i64;
            let minute = 6 * 60 + school as i64 % 600;
            s.push(
                instant(day(2027, 3, 25), minute),
                &stream,
                "enrolment.places_published",
                admin,
                json!({"target_year": 2027, "places": places}),
            );
            let mut window_apps = [Vec::new(), Vec::new()];
            for k in 0..per_school {
                let h = mix(&self.origin, "fg", school, k);
                let (window, d, basis) = if k < w1 {
                    let basis = match h[0] % 20 {
                        0..=1 => "priority",
                        2..=6 => "sibling",
                        _ => "territory",
                    };
                    // 1 April to 28 June (the window runs to 30 June, local time).
                    (1, day(2027, 4, 1) + (k * 88 / w1) as i64, basis)
                } else {
                    (
                        2,
                        day(2027, 7, 6) + ((k - w1) * 50 / w2) as i64,
                        if h[0].is_multiple_of(5) { "territory" } else { "general" },
                    )
                };
                let id = format!("{}-2027-{:04}", sch(school), k + 1);
                let mut data = json!({"application_id": id, "learner": format!("47-{child:06}"), "target_year": 2027,
                    "window": window, "basis": basis, "birth_month": year_month(2020 * 12 + 2 + i64::from(h[1] % 12))});
                child += 1;
                if k == 0 && per_school >= 6 {
                    // Younger than 6.5 on 1 September: admitted with the founder's permission.
                    data["birth_month"] = json!("2021-05");
                    data["founder_permission_ref"] = json!(format!("permission-{}-2027", sch(school)));
                }
                s.push(
                    instant(d, minute + i64::from(h[2])),
                    &stream,
                    "enrolment.application_submitted",
                    registrar,
                    data,
                );
                window_apps[window as usize - 1].push(id);
            }
            let order = |s: &mut Script, apps: &[String], tag: &str, d: i64| {
                for (j, chunk) in apps.chunks(200).enumerate() {
                    let data = json!({"order_id": format!("{}-2027-{tag}-{}", sch(school), j + 1), "target_year": 2027,
                        "applications": chunk, "order_date": date(d)});
                    s.push(instant(d, minute + j as i64), &stream, "enrolment.order_issued", admin, data);
                }
            };
            // Window 1: within 3 working days after 30 June; window 2: while places last.
            order(s, &window_apps[0], "w1", day(2027, 7, 2));
            let rest = (places as usize).saturating_sub(window_apps[0].len()).min(window_apps[1].len());
            order(s, &window_apps[1][..rest], "w2", day(2027, 8, 31));
        }
    }
}
