//! The demo region: a synthetic, deterministic school year of a region that the default education
//! rules accept, covering every subsystem of DOMAIN.md. The authority establishes the ledger,
//! registers institutions of every kind and grants keys; institution admins grant their staff; then
//! a dated year follows: kindergarten queues with benefits and a main allocation, 1st-grade windows
//! and orders, clubs, teacher attestation before a commission, term/year grades, debts, final exams,
//! certificates and diplomas, merged in time order with a streamed journal (lessons, grades,
//! attendance, corrections, college and university results, portfolio achievements). Events are
//! generated sequentially and signed on every core. Not the vocabulary (that is
//! `zachetka-projections`).

use crate::event::{sign_event_owned, uuid_v7};
use crate::keys::KeyPair;
use crate::time::{days_from_civil, format_rfc3339};
use rayon::prelude::*;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, VecDeque};
use zachetka_rules::RegionConfig;

/// Sizes of a demo region. The structural events (set-up, queues, enrolment, clubs, attestation,
/// term grades, documents) scale with `learners` and `teachers`; `events` is the streamed journal.
#[derive(Debug, Clone, Copy)]
pub struct DemoSize {
    /// School learners (college and university students, kindergarten children and future
    /// 1st-graders are derived from it).
    pub learners: u64,
    pub teachers: u64,
    /// Streamed journal events (lessons, grades, attendance, corrections, college and university
    /// results, portfolio achievements), merged in time order with the structural ones.
    pub events: u64,
}

const SUBJECTS: [&str; 6] = ["Математика", "Русский язык", "Физика", "История", "Биология", "Литература"];
/// Grade kinds and their weights, as in the default region config.
const KINDS: [(&str, i64); 3] = [("test", 5), ("classwork", 3), ("homework", 1)];
const LETTERS: [&str; 3] = ["А", "Б", "В"];
const ATTENDANCE: [&str; 4] = ["Н", "Б", "УП", "ОП"];
const FOUR_LEVEL: [&str; 4] = ["отлично", "хорошо", "удовлетворительно", "неудовлетворительно"];
const GRANTS_VALID_FROM: &str = "2026-08-01T00:00:00Z";
/// Municipal districts of the region: one kindergarten queue each (as many as the size needs).
const TERRITORIES: [&str; 18] = [
    "tikhvin",
    "luga",
    "gatchina",
    "vyborg",
    "kirishi",
    "kingisepp",
    "volkhov",
    "vsevolozhsk",
    "kirovsk",
    "lodeynoye-pole",
    "lomonosov",
    "podporozhye",
    "priozersk",
    "slantsy",
    "tosno",
    "boksitogorsk",
    "volosovo",
    "sosnovy-bor",
];
const EXTRAORDINARY: [&str; 5] =
    ["judge", "prosecutor", "chernobyl", "investigative_committee", "special_military_operation"];
const FIRST_PRIORITY: [&str; 5] = ["large_family", "police", "military", "disabled_child", "disabled_parent"];
const PROGRAMS: [(&str, &str); 6] = [
    ("robotics", "technical"),
    ("chess", "intellectual"),
    ("dance", "art"),
    ("football", "sport"),
    ("painting", "art"),
    ("ecology", "natural_science"),
];
const COLLEGE_PROGRAMS: [&str; 3] = ["ИС", "ЭК", "ТМ"];
const COLLEGE_COURSES: [&str; 4] = ["Базы данных", "Программирование", "Экономика организации", "Техническая механика"];
const UNI_PROGRAMS: [&str; 3] = ["ПМИ", "ЮР", "ФИЗ"];
const UNI_COURSES: [&str; 5] = ["Математический анализ", "Линейная алгебра", "История России", "Физика", "Философия"];
/// Commission members (the largest quorum, 7, plus two).
const MEMBERS: usize = 9;
/// Scripted events' numbers (for their ids) start here; journal slot `i` is number `i`.
const SCRIPT_BASE: u64 = 1 << 40;

/// A deterministic key for demo role `label` (never use demo keys for anything real).
pub fn demo_key(origin: &str, label: &str) -> KeyPair {
    let seed: [u8; 32] = Sha256::digest(format!("zachetka demo key\n{origin}\n{label}")).into();
    KeyPair::from_seed(&seed)
}

/// The id of event number `n`, occurring at `at` (unix seconds): a UUIDv7, as README recommends
/// to every client, so ids arrive nearly in time order and the id index grows at its end.
fn event_id(origin: &str, n: u64, at: i64) -> String {
    let h: [u8; 32] = Sha256::digest(format!("{origin}\nid\n{n}")).into();
    let ms = u64::try_from(at).expect("demo events occur after 1970") * 1000;
    uuid_v7(ms, h[..10].try_into().expect("10 bytes"))
}

/// A deterministic hash of (tag, a, b) within a region.
fn mix(origin: &str, tag: &str, a: u64, b: u64) -> [u8; 32] {
    let mut s = Sha256::new();
    s.update(origin.as_bytes());
    s.update([0]);
    s.update(tag.as_bytes());
    s.update(a.to_be_bytes());
    s.update(b.to_be_bytes());
    s.finalize().into()
}

fn day(y: i64, m: u32, d: u32) -> i64 {
    days_from_civil(y, m, d)
}

/// Unix seconds at `minutes` after 00:00 UTC of `day` (keep it under 21:00 UTC: the region's
/// date, UTC+3, is then the same day).
fn instant(day: i64, minutes: i64) -> i64 {
    day * 86_400 + minutes * 60
}

fn date(day: i64) -> String {
    crate::time::format_date(day)
}

fn year_month(months: i64) -> String {
    format!("{:04}-{:02}", months.div_euclid(12), months.rem_euclid(12) + 1)
}

fn learner_stream(n: u64) -> String {
    format!("learner/47-{n:06}")
}

fn sch(s: u64) -> String {
    format!("sch-{:03}", s + 1)
}

fn u64_of(h: &[u8; 32]) -> u64 {
    u64::from_be_bytes(h[0..8].try_into().expect("8 bytes"))
}

/// A journal slot: its hash, day, time, and whose record it is (a population index).
struct Slot {
    h: [u8; 32],
    day: i64,
    at: i64,
    who: u64,
}

/// One event with its time and signer (an index into the region's keys).
struct Item {
    at: i64,
    event: Value,
    signer: usize,
}

/// Who holds which key (indices into `DemoRegion::keys`) and how big each part of the region is.
struct Cast {
    learners: u64,
    schools: u64,
    /// Teachers are keys `0..teachers`; teacher `i` works in school `i % schools`.
    teachers: usize,
    territories: u64,
    kgs_per_territory: u64,
    colleges: u64,
    universities: u64,
    college_students: u64,
    uni_students: u64,
    ados: u64,
    /// First learner numbers of kindergarten children and future 1st-graders.
    kg_base: u64,
    fg_base: u64,
    authority: usize,
    olympiad_issuer: usize,
    school_admin: Vec<usize>,
    school_registrar: Vec<usize>,
    school_issuer: Vec<usize>,
    /// Per school, the class teacher of `<year>А` for years 1 to 11.
    class_teacher: Vec<Vec<usize>>,
    kg_admin: Vec<usize>,
    operator: Vec<usize>,
    college_admin: Vec<usize>,
    college_registrar: Vec<usize>,
    college_teachers: Vec<Vec<usize>>,
    uni_admin: Vec<usize>,
    uni_registrar: Vec<usize>,
    uni_teachers: Vec<Vec<usize>>,
    ado_admin: Vec<usize>,
    ado_registrar: Vec<usize>,
    com_admin: usize,
    secretary: usize,
    members: Vec<usize>,
}

/// A school learner's place: school, school year 1 to 11, class letter index.
#[derive(Clone, Copy)]
struct Pupil {
    n: u64,
    school: u64,
    year: u64,
    letter: usize,
}

impl Pupil {
    fn class(&self) -> String {
        format!("{}{}", self.year, LETTERS[self.letter])
    }
}

/// A college or university student.
#[derive(Clone, Copy)]
struct Student {
    n: u64,
    college: bool,
    institution: u64,
    year: u64,
    program: usize,
}

impl Student {
    fn institution_id(&self) -> String {
        format!("{}-{:03}", if self.college { "col" } else { "uni" }, self.institution + 1)
    }
    fn group(&self) -> String {
        let programs = if self.college { COLLEGE_PROGRAMS } else { UNI_PROGRAMS };
        format!("{}-{}1", programs[self.program], 27 - self.year)
    }
}

impl Cast {
    fn pupil(&self, n: u64) -> Pupil {
        let s = self.schools;
        Pupil { n, school: n % s, year: 1 + (n / s) % 11, letter: (n / s / 11 % 3) as usize }
    }

    /// Population index `p` (school learners first, then college, then university students).
    fn student(&self, p: u64) -> Student {
        let college = p < self.learners + self.college_students;
        let (k, count) = if college {
            (p - self.learners, self.colleges)
        } else {
            (p - self.learners - self.college_students, self.universities)
        };
        Student {
            n: p,
            college,
            institution: k % count,
            year: 1 + (k / count) % 4,
            program: (k / count / 4 % 3) as usize,
        }
    }

    /// The `k`-th subject teacher of school `s`.
    fn teacher_of(&self, s: u64, k: u64) -> usize {
        let per_school = (self.teachers as u64).div_ceil(self.schools);
        let t = (s + self.schools * (k % per_school)) as usize;
        if t >= self.teachers {
            s as usize
        } else {
            t
        }
    }

    /// Who authorises a correction or signs a promotion in a class: its class teacher, else the admin.
    fn class_authority(&self, p: &Pupil) -> usize {
        if p.letter == 0 {
            self.class_teacher[p.school as usize][p.year as usize - 1]
        } else {
            self.school_admin[p.school as usize]
        }
    }

    fn territory_of_kg(&self, k: u64) -> &'static str {
        TERRITORIES[(k % self.territories) as usize]
    }
}

/// Builds the structural events; each gets the next number (for its id) in build order.
struct Script<'a> {
    origin: &'a str,
    dids: &'a [String],
    items: Vec<Item>,
    n: u64,
}

impl Script<'_> {
    fn push(&mut self, at: i64, stream: &str, ty: &str, signer: usize, mut data: Value) -> String {
        data.as_object_mut().expect("event data is an object").insert("v".into(), json!(1));
        self.n += 1;
        let id = event_id(self.origin, self.n, at);
        let event = json!({
            "ledger": self.origin, "stream": stream, "type": ty, "id": id,
            "occurred_at": format_rfc3339(at), "author": self.dids[signer], "data": data,
        });
        self.items.push(Item { at, event, signer });
        id
    }
}

/// Generates the demo region's signed events, in log order.
pub struct DemoRegion {
    origin: String,
    size: DemoSize,
    keys: Vec<KeyPair>,
    dids: Vec<String>,
    cast: Cast,
    /// Structural events in time order, not yet handed out.
    script: VecDeque<Item>,
    /// The next journal event, generated ahead to merge by time.
    pending: Option<Item>,
    next: u64,
    day0: i64,
}

struct KeyRing<'a> {
    origin: &'a str,
    keys: Vec<KeyPair>,
}

impl KeyRing<'_> {
    fn add(&mut self, label: String) -> usize {
        self.keys.push(demo_key(self.origin, &label));
        self.keys.len() - 1
    }
}

impl DemoRegion {
    pub fn new(origin: &str, size: DemoSize) -> Self {
        let learners = size.learners.max(1);
        let teachers = size.teachers.max(1) as usize;
        let schools = (teachers as u64).div_ceil(30).max(1);
        let territories = (2 + learners / 10_000).min(TERRITORIES.len() as u64);
        let colleges = 1 + learners / 40_000;
        let universities = 1 + learners / 100_000;
        let college_students = (learners / 20).max(10);
        let uni_students = (learners / 20).max(10);
        let mut ring = KeyRing { origin, keys: Vec::new() };
        for i in 0..teachers {
            ring.add(format!("teacher/{i}"));
        }
        let kgs_per_territory = (1 + learners / (territories * 1000)).clamp(2, 12);
        let ados = 1 + learners / 50_000;
        let staff_per = |n: usize| n.clamp(2, 40);
        let kg_base = learners + college_students + uni_students;
        let mut cast = Cast {
            learners,
            schools,
            teachers,
            territories,
            kgs_per_territory,
            colleges,
            universities,
            college_students,
            uni_students,
            ados,
            kg_base,
            fg_base: kg_base + 1_000_000,
            authority: ring.add("authority".into()),
            olympiad_issuer: ring.add("issuer/olympiads".into()),
            school_admin: (0..schools).map(|s| ring.add(format!("admin/{}", sch(s)))).collect(),
            school_registrar: (0..schools).map(|s| ring.add(format!("registrar/{}", sch(s)))).collect(),
            school_issuer: (0..schools).map(|s| ring.add(format!("issuer/{}", sch(s)))).collect(),
            class_teacher: Vec::new(),
            kg_admin: (0..territories * kgs_per_territory)
                .map(|k| ring.add(format!("admin/kg-{:03}", k + 1)))
                .collect(),
            operator: (0..territories).map(|t| ring.add(format!("operator/{}", TERRITORIES[t as usize]))).collect(),
            college_admin: (0..colleges).map(|c| ring.add(format!("admin/col-{:03}", c + 1))).collect(),
            college_registrar: (0..colleges).map(|c| ring.add(format!("registrar/col-{:03}", c + 1))).collect(),
            college_teachers: Vec::new(),
            uni_admin: (0..universities).map(|u| ring.add(format!("admin/uni-{:03}", u + 1))).collect(),
            uni_registrar: (0..universities).map(|u| ring.add(format!("registrar/uni-{:03}", u + 1))).collect(),
            uni_teachers: Vec::new(),
            ado_admin: (0..ados).map(|a| ring.add(format!("admin/ado-{:03}", a + 1))).collect(),
            ado_registrar: (0..ados).map(|a| ring.add(format!("registrar/ado-{:03}", a + 1))).collect(),
            com_admin: ring.add("admin/com-001".into()),
            secretary: ring.add("secretary/com-001".into()),
            members: (0..MEMBERS).map(|m| ring.add(format!("member/com-001/{m}"))).collect(),
        };
        cast.class_teacher = (0..schools)
            .map(|s| (1..=11).map(|y| ring.add(format!("class_teacher/{}/{y}А", sch(s)))).collect())
            .collect();
        let per_college = staff_per(teachers / (20 * colleges as usize));
        cast.college_teachers = (0..colleges)
            .map(|c| (0..per_college).map(|k| ring.add(format!("teacher/col-{:03}/{k}", c + 1))).collect())
            .collect();
        let per_uni = staff_per(teachers / (20 * universities as usize));
        cast.uni_teachers = (0..universities)
            .map(|u| (0..per_uni).map(|k| ring.add(format!("teacher/uni-{:03}/{k}", u + 1))).collect())
            .collect();
        let keys = ring.keys;
        let dids: Vec<String> = keys.par_iter().map(KeyPair::did).collect();
        let mut region = Self {
            origin: origin.to_owned(),
            size,
            keys,
            dids,
            cast,
            script: VecDeque::new(),
            pending: None,
            next: 0,
            day0: day(2026, 9, 1),
        };
        let mut script = Script { origin, dids: &region.dids, items: Vec::new(), n: SCRIPT_BASE };
        region.setup(&mut script);
        region.additional(&mut script);
        region.queues(&mut script);
        region.attestation(&mut script);
        region.school_year(&mut script);
        region.first_grade(&mut script);
        region.graduation(&mut script);
        let mut items = script.items;
        // Stable: events at the same instant keep their build order (causes before effects).
        items.sort_by_key(|it| it.at);
        region.script = items.into();
        region
    }

    /// The authority key's did (the ledger must be initialized with it).
    pub fn authority_did(&self) -> String {
        self.dids[self.cast.authority].clone()
    }

    // ---- the structural events ----

    /// Genesis, institutions, the authority's grants, then the admins' grants of their staff.
    fn setup(&self, s: &mut Script) {
        let c = &self.cast;
        let at = instant(day(2026, 8, 1), 0);
        let a = c.authority;
        s.push(at, "registry", "ledger.established", a, json!({"origin": self.origin, "authority": self.dids[a]}));
        let terr = |i: u64| TERRITORIES[(i % c.territories) as usize];
        let mut institutions: Vec<(String, &str, &str)> = (0..c.schools).map(|i| (sch(i), "school", terr(i))).collect();
        for k in 0..c.territories * c.kgs_per_territory {
            institutions.push((format!("kg-{:03}", k + 1), "kindergarten", c.territory_of_kg(k)));
        }
        institutions.extend((0..c.colleges).map(|i| (format!("col-{:03}", i + 1), "college", terr(i))));
        institutions.extend((0..c.universities).map(|i| (format!("uni-{:03}", i + 1), "university", "spb")));
        institutions.extend((0..c.ados).map(|i| (format!("ado-{:03}", i + 1), "additional_education", terr(i))));
        institutions.push(("com-001".into(), "attestation_commission", "region"));
        for (id, kind, territory) in institutions {
            let data = json!({"institution": id, "kind": kind, "territory": territory});
            s.push(at, "registry", "registry.institution_registered", a, data);
        }
        let grant = |s: &mut Script, by: usize, key: usize, holder: &str, roles: &[&str], scope: Value| {
            let data = json!({"key": self.dids[key], "holder": holder, "roles": roles, "scope": scope,
                "valid_from": GRANTS_VALID_FROM});
            s.push(at, "registry", "keys.granted", by, data);
        };
        let inst = |id: String| json!({ "institution": id });
        // The authority: teachers (as the regional HR system does), institution admins, queue
        // operators and the olympiad organiser.
        for i in 0..c.teachers {
            grant(s, a, i, &format!("t-{i:05}"), &["teacher"], inst(sch(i as u64 % c.schools)));
        }
        grant(s, a, c.olympiad_issuer, "p-olymp", &["achievement_issuer"], inst("ado-001".into()));
        for (i, &k) in c.school_admin.iter().enumerate() {
            grant(s, a, k, &format!("p-adm-{}", sch(i as u64)), &["institution_admin"], inst(sch(i as u64)));
        }
        for (k, &key) in c.kg_admin.iter().enumerate() {
            let id = format!("kg-{:03}", k + 1);
            grant(s, a, key, &format!("p-adm-{id}"), &["institution_admin"], inst(id));
        }
        for (t, &key) in c.operator.iter().enumerate() {
            let territory = TERRITORIES[t];
            grant(s, a, key, &format!("p-op-{territory}"), &["queue_operator"], json!({ "territory": territory }));
        }
        let prefixed = |prefix: &str, admins: &[usize], s: &mut Script| {
            for (i, &key) in admins.iter().enumerate() {
                let id = format!("{prefix}-{:03}", i + 1);
                grant(s, a, key, &format!("p-adm-{id}"), &["institution_admin"], inst(id));
            }
        };
        prefixed("col", &c.college_admin, s);
        prefixed("uni", &c.uni_admin, s);
        prefixed("ado", &c.ado_admin, s);
        grant(s, a, c.com_admin, "p-adm-com-001", &["institution_admin"], inst("com-001".into()));
        // Institution admins grant their own staff.
        for school in 0..c.schools {
            let (i, id) = (school as usize, sch(school));
            let admin = c.school_admin[i];
            grant(s, admin, c.school_registrar[i], &format!("p-reg-{id}"), &["registrar"], inst(id.clone()));
            grant(s, admin, c.school_issuer[i], &format!("p-iss-{id}"), &["achievement_issuer"], inst(id.clone()));
            for (y, &key) in c.class_teacher[i].iter().enumerate() {
                let holder = format!("t-{:05}", c.teacher_of(school, y as u64));
                let scope = json!({"institution": id, "class": format!("{}А", y + 1)});
                grant(s, admin, key, &holder, &["class_teacher", "teacher"], scope);
            }
        }
        let staff = |prefix: &str, admins: &[usize], registrars: &[usize], teachers: &[Vec<usize>], s: &mut Script| {
            for (i, (&admin, &registrar)) in admins.iter().zip(registrars).enumerate() {
                let id = format!("{prefix}-{:03}", i + 1);
                grant(s, admin, registrar, &format!("p-reg-{id}"), &["registrar"], inst(id.clone()));
                for (k, &key) in teachers[i].iter().enumerate() {
                    grant(s, admin, key, &format!("t-{id}-{k:03}"), &["teacher"], inst(id.clone()));
                }
            }
        };
        staff("col", &c.college_admin, &c.college_registrar, &c.college_teachers, s);
        staff("uni", &c.uni_admin, &c.uni_registrar, &c.uni_teachers, s);
        for (i, (&admin, &registrar)) in c.ado_admin.iter().zip(&c.ado_registrar).enumerate() {
            let id = format!("ado-{:03}", i + 1);
            grant(s, admin, registrar, &format!("p-reg-{id}"), &["registrar"], inst(id.clone()));
        }
        let com = inst("com-001".into());
        grant(s, c.com_admin, c.secretary, "p-sec-com-001", &["commission_secretary"], com.clone());
        for (m, &key) in c.members.iter().enumerate() {
            grant(s, c.com_admin, key, &format!("m-{m:02}"), &["commission_member"], com.clone());
        }
    }

    /// Clubs: programs with capacities, funding certificates, enrolments, some leaving in December.
    fn additional(&self, s: &mut Script) {
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

    /// A kindergarten queue per territory: applications with benefits and siblings, withdrawals,
    /// a main allocation run (frozen queue; offers in tier order, refusals for lack of places,
    /// acceptances and refusals, re-offers), enrolments, and a transfer in an additional run.
    fn queues(&self, s: &mut Script) {
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

    /// Teacher attestation: applications (by the teacher or the school admin), each member's vote
    /// with their own key, the secretary's decision; one teacher goes первая → высшая → методист.
    fn attestation(&self, s: &mut Script) {
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

    /// For a sample of learners: term grades, year grades, intermediate attestation, debts and
    /// retakes, promotion; final exams and certificates for 9th and 11th years; a few transfers.
    fn school_year(&self, s: &mut Script) {
        let c = &self.cast;
        let terms = [day(2026, 10, 30), day(2026, 12, 28), day(2027, 3, 19), day(2027, 5, 26)];
        for n in (0..c.learners).step_by(40) {
            let p = c.pupil(n);
            let (inst, class, stream) = (sch(p.school), p.class(), learner_stream(n));
            let k = n / 40;
            let minute = 6 * 60 + (k % 400) as i64;
            let teacher = c.teacher_of(p.school, k);
            let subject = SUBJECTS[(k % SUBJECTS.len() as u64) as usize];
            let class_authority = c.class_authority(&p);
            let mut debt_open = false;
            if p.year > 1 {
                for (term, d) in terms.iter().enumerate() {
                    let mark = 3 + ((k + term as u64) % 3) as i64;
                    let data = json!({"institution": inst, "class": class, "subject": subject, "academic_year": 2026,
                        "term": term as i64 + 1, "mark": mark, "scale": "five_point"});
                    s.push(instant(*d, minute), &stream, "journal.term_grade_set", teacher, data);
                }
                let year_by = if p.letter == 0 { class_authority } else { teacher };
                let data = json!({"institution": inst, "class": class, "subject": subject, "academic_year": 2026,
                    "mark": 3 + (k % 3) as i64, "scale": "five_point"});
                s.push(instant(day(2027, 5, 27), minute), &stream, "journal.year_grade_set", year_by, data);
                let fails = k % 3 == 0 && p.year != 9 && p.year != 11;
                let data = json!({"institution": inst, "class": class, "subject": subject, "academic_year": 2026,
                    "mark": if fails { 2 } else { 3 + (k % 3) as i64 }, "scale": "five_point"});
                let att = s.push(
                    instant(day(2027, 5, 20), minute),
                    &stream,
                    "journal.intermediate_attestation_recorded",
                    teacher,
                    data,
                );
                if fails {
                    let debt = format!("debt-{}-{n}", inst);
                    let data = json!({"debt_id": debt, "institution": inst, "class": class, "subject": subject,
                        "academic_year": 2026, "opened_on": "2027-05-21", "attestation_event_id": att});
                    s.push(
                        instant(day(2027, 5, 21), minute),
                        &stream,
                        "journal.academic_debt_opened",
                        class_authority,
                        data,
                    );
                    debt_open = k % 6 == 0;
                    let data = json!({"debt_id": debt, "institution": inst, "class": class, "held_on": "2027-06-05",
                        "mark": if debt_open { 2 } else { 4 }, "scale": "five_point"});
                    s.push(instant(day(2027, 6, 5), minute), &stream, "journal.retake_recorded", teacher, data);
                }
            }
            if p.year == 9 || p.year == 11 {
                let (exam, level) = if p.year == 9 { ("oge", "basic_general") } else { ("ege", "secondary_general") };
                for (j, subject) in ["Математика", "Русский язык"].iter().enumerate() {
                    let score = 40 + ((k * 7 + j as u64 * 13) % 60) as i64;
                    let data = json!({"institution": inst, "exam": exam, "subject": subject, "academic_year": 2026, "score": score});
                    s.push(
                        instant(day(2027, 6, 15) + j as i64 * 3, minute),
                        &stream,
                        "journal.final_attestation_recorded",
                        c.school_registrar[p.school as usize],
                        data,
                    );
                }
                let data = json!({"institution": inst, "level": level, "number": format!("{inst}-{exam}-{n:06}"),
                    "issued_on": "2027-06-25"});
                s.push(
                    instant(day(2027, 6, 25), minute),
                    &stream,
                    "journal.certificate_issued",
                    c.school_admin[p.school as usize],
                    data,
                );
            } else {
                let data = json!({"institution": inst, "from_class": class, "to_class": format!("{}{}", p.year + 1, LETTERS[p.letter]),
                    "academic_year": 2026, "basis": if debt_open { "conditional" } else { "full" }});
                s.push(instant(day(2027, 6, 10), minute), &stream, "journal.promoted", class_authority, data);
            }
        }
        // A few families move at the end of the year: to another school, or to another region.
        for n in (17..c.learners).step_by(200) {
            let p = c.pupil(n);
            let data = if c.schools > 1 && n % 400 == 17 {
                json!({"from_institution": sch(p.school), "to_institution": sch((p.school + 1) % c.schools),
                    "transferred_on": "2027-06-30"})
            } else {
                json!({"from_institution": sch(p.school), "to_institution": "78-sch-0001", "to_region": "ru-78",
                    "transferred_on": "2027-06-30"})
            };
            let at = instant(day(2027, 6, 30), 6 * 60 + (n % 300) as i64);
            s.push(at, &learner_stream(n), "learner.transferred", c.school_registrar[p.school as usize], data);
        }
    }

    /// 1st grade for 2027 at every school: places, window-1 and window-2 applications, two orders.
    fn first_grade(&self, s: &mut Script) {
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

    /// Diplomas of final-year college and university students.
    fn graduation(&self, s: &mut Script) {
        let c = &self.cast;
        for p in c.learners..c.learners + c.college_students + c.uni_students {
            let st = c.student(p);
            if st.year != 4 {
                continue;
            }
            let inst = st.institution_id();
            let (registrar, level, d) = if st.college {
                (c.college_registrar[st.institution as usize], "secondary_vocational", day(2027, 6, 28))
            } else {
                (c.uni_registrar[st.institution as usize], "bachelor", day(2027, 7, 1))
            };
            let data =
                json!({"institution": inst, "level": level, "number": format!("{inst}-{p:07}"), "issued_on": date(d)});
            s.push(
                instant(d, 6 * 60 + (p % 500) as i64),
                &learner_stream(p),
                "college.diploma_issued",
                registrar,
                data,
            );
        }
    }

    // ---- the streamed journal ----

    /// Journal slot `i`: its hash, day and time, and whose record it is.
    fn slot(&self, i: u64) -> Slot {
        let h: [u8; 32] = Sha256::digest(format!("{}\n{i}", self.origin)).into();
        let c = &self.cast;
        let population = c.learners + c.college_students + c.uni_students;
        let who = u64_of(&h) % population;
        let d = self.day0 + (i * 270 / self.size.events.max(1)) as i64;
        let at = instant(d, 6 * 60 + i64::from(h[9]));
        Slot { h, day: d, at, who }
    }

    fn journal_event(&self, i: u64) -> Item {
        let Slot { h, day: d, at, who } = self.slot(i);
        let c = &self.cast;
        if who >= c.learners {
            return self.student_event(i, h, d, at, c.student(who));
        }
        // A correction of the previous slot's grade or attendance mark, an hour later.
        if i > 0 && h[14] < 8 {
            let Slot { h: ph, day: pd, at: pat, who: pwho } = self.slot(i - 1);
            if pwho < c.learners && ph[14] >= 8 {
                let p = c.pupil(pwho);
                let kind = school_kind(&ph, &p);
                if kind == SchoolKind::Grade || kind == SchoolKind::Attendance {
                    let (_, _, _, author) = self.school_record(&ph, pd, &p);
                    let mut data = json!({"v": 1, "institution": sch(p.school), "class": p.class(),
                        "corrected_event_id": event_id(&self.origin, i - 1, pat),
                        "authorised_by": self.dids[c.class_authority(&p)]});
                    if kind == SchoolKind::Grade {
                        let old = 2 + i64::from(ph[12] % 4);
                        data["mark"] = json!(if old == 5 { 4 } else { old + 1 });
                        data["scale"] = json!("five_point");
                        data["reason"] = json!("ошибка при вводе отметки");
                    } else {
                        data["code"] = json!("УП");
                        data["reason"] = json!("представлена справка");
                    }
                    return self.item(i, &learner_stream(pwho), "journal.record_corrected", pat + 3600, author, data);
                }
            }
        }
        let p = c.pupil(who);
        let (stream, ty, data, author) = self.school_record(&h, d, &p);
        self.item(i, &stream, ty, at, author, data)
    }

    /// The school record of a slot (before corrections): stream, type, data, and its author.
    fn school_record(&self, h: &[u8; 32], d: i64, p: &Pupil) -> (String, &'static str, Value, usize) {
        let c = &self.cast;
        let (inst, class, subject) = (sch(p.school), p.class(), SUBJECTS[(h[8] % SUBJECTS.len() as u8) as usize]);
        let lesson_date = date(d);
        let teacher = c.teacher_of(p.school, u64::from(h[13]));
        let stream = learner_stream(p.n);
        match school_kind(h, p) {
            SchoolKind::Olympiad => {
                let level = if h[11].is_multiple_of(4) { "regional" } else { "municipal" };
                let data = json!({"v": 1, "achievement_id": format!("olymp-{}", hex8(h)), "kind": "olympiad",
                    "level": level, "date": lesson_date, "result": if h[12].is_multiple_of(3) { "победитель" } else { "призёр" },
                    "contest_ref": format!("vsosh-2026-{}", h[8] % 6)});
                (stream, "portfolio.achievement_attested", data, c.olympiad_issuer)
            }
            SchoolKind::SchoolAchievement => {
                let kinds = ["gto", "volunteering", "sport", "creative", "competition"];
                let data = json!({"v": 1, "achievement_id": format!("{inst}-{}", hex8(h)),
                    "kind": kinds[usize::from(h[11]) % kinds.len()], "level": "school", "date": lesson_date,
                    "result": "участник"});
                (stream, "portfolio.achievement_attested", data, c.school_issuer[p.school as usize])
            }
            SchoolKind::Lesson => {
                let data = json!({"v": 1, "lesson_id": format!("{inst}-{}", hex8(h)), "class": class,
                    "subject": subject, "lesson_date": lesson_date, "topic": format!("Тема {}", 1 + h[12] % 40)});
                (format!("institution/{inst}"), "journal.lesson_held", data, teacher)
            }
            SchoolKind::Attendance => {
                let data = json!({"v": 1, "institution": inst, "class": class, "subject": subject,
                    "lesson_date": lesson_date, "code": ATTENDANCE[usize::from(h[11]) % ATTENDANCE.len()]});
                (stream, "journal.attendance_marked", data, teacher)
            }
            SchoolKind::Grade => {
                let (kind, weight) = KINDS[(h[11] % 3) as usize];
                let data = json!({"v": 1, "institution": inst, "class": class, "subject": subject,
                    "mark": 2 + i64::from(h[12] % 4), "scale": "five_point", "weight": weight, "kind": kind,
                    "lesson_date": lesson_date});
                (stream, "journal.grade_recorded", data, teacher)
            }
        }
    }

    /// A college or university record: a lesson of the group, a course result, or (in the
    /// examination sessions) an exam or credit, on the scales the level uses.
    fn student_event(&self, i: u64, h: [u8; 32], d: i64, at: i64, st: Student) -> Item {
        let c = &self.cast;
        let inst = st.institution_id();
        let staff = &if st.college { &c.college_teachers } else { &c.uni_teachers }[st.institution as usize];
        let teacher = staff[usize::from(h[13]) % staff.len()];
        let courses: &[&str] = if st.college { &COLLEGE_COURSES } else { &UNI_COURSES };
        let course = courses[usize::from(h[8]) % courses.len()];
        let term = 2 * st.year as i64 - i64::from(d < day(2027, 2, 1));
        if h[10] < 20 {
            let data = json!({"v": 1, "lesson_id": format!("{inst}-{}", hex8(&h)), "class": st.group(),
                "subject": course, "lesson_date": date(d)});
            return self.item(i, &format!("institution/{inst}"), "journal.lesson_held", at, teacher, data);
        }
        let stream = learner_stream(st.n);
        let four = FOUR_LEVEL[[0, 0, 1, 1, 1, 2, 2, 3][usize::from(h[12] % 8)]];
        let pass = if h[12].is_multiple_of(10) { "не зачтено" } else { "зачтено" };
        let five = json!(3 + i64::from(h[12] % 3));
        let in_session = (day(2026, 12, 20)..=day(2027, 1, 25)).contains(&d) || d >= day(2027, 5, 20);
        let (form, scale, mark) = match (h[11] % 3, st.college) {
            (0, true) => ("exam", "five_point", five),
            (0, false) => ("exam", "four_level", json!(four)),
            (1, _) => ("credit", "pass_fail", json!(pass)),
            (_, true) => ("differentiated_credit", "five_point", five),
            (_, false) => ("differentiated_credit", "four_level", json!(four)),
        };
        let mut data = json!({"v": 1, "institution": inst, "group": st.group(), "course": course, "term": term,
            "mark": mark, "scale": scale});
        if in_session {
            data["form"] = json!(form);
            return self.item(i, &stream, "college.exam_recorded", at, teacher, data);
        }
        if st.college && h[11] % 3 == 2 {
            data["mark"] = json!(four);
            data["scale"] = json!("four_level");
        }
        self.item(i, &stream, "college.course_result_recorded", at, teacher, data)
    }

    fn item(&self, n: u64, stream: &str, ty: &str, at: i64, signer: usize, data: Value) -> Item {
        let event = json!({
            "ledger": self.origin, "stream": stream, "type": ty, "id": event_id(&self.origin, n, at),
            "occurred_at": format_rfc3339(at), "author": self.dids[signer], "data": data,
        });
        Item { at, event, signer }
    }

    /// The next unsigned event and the index of its signer, or `None` when the demo is complete.
    fn next_unsigned(&mut self) -> Option<(Value, usize)> {
        if self.pending.is_none() && self.next < self.size.events {
            self.pending = Some(self.journal_event(self.next));
            self.next += 1;
        }
        let take_script = match (self.script.front(), &self.pending) {
            (Some(s), Some(j)) => s.at <= j.at,
            (Some(_), None) => true,
            (None, _) => false,
        };
        let item = if take_script { self.script.pop_front() } else { self.pending.take() }?;
        Some((item.event, item.signer))
    }

    /// Up to `n` next signed events, signed on every core.
    pub fn next_batch(&mut self, n: usize) -> Vec<Value> {
        let unsigned: Vec<(Value, usize)> = (0..n).map_while(|_| self.next_unsigned()).collect();
        unsigned
            .into_par_iter()
            .map(|(ev, signer)| sign_event_owned(ev, &self.keys[signer]).expect("demo events are canonicalizable"))
            .collect()
    }

    /// Events still to come, the structural ones included.
    pub fn remaining(&self) -> u64 {
        self.script.len() as u64 + u64::from(self.pending.is_some()) + self.size.events - self.next
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SchoolKind {
    Olympiad,
    SchoolAchievement,
    Lesson,
    Attendance,
    Grade,
}

/// What a school learner's journal slot records (no marks in 1st grade: attendance there).
fn school_kind(h: &[u8; 32], p: &Pupil) -> SchoolKind {
    match h[10] {
        0 => SchoolKind::Olympiad,
        1 => SchoolKind::SchoolAchievement,
        2..=21 => SchoolKind::Lesson,
        x if p.year == 1 || x.is_multiple_of(5) => SchoolKind::Attendance,
        _ => SchoolKind::Grade,
    }
}

fn hex8(h: &[u8; 32]) -> String {
    h[16..24].iter().map(|b| format!("{b:02x}")).collect()
}
