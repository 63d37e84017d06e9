//! The demo region's population and keys: sizes derived from `DemoSize`, who holds which
//! deterministic key (`Cast`), school learners and college or university students, and the
//! set-up events (genesis, institutions, the authority's and the admins' grants). Not the
//! events of the year (the sibling modules).

use super::day;
use super::instant;
use super::sch;
use super::DemoRegion;
use super::DemoSize;
use super::Script;
use crate::keys::KeyPair;
use serde_json::json;
use serde_json::Value;
use sha2::{Digest, Sha256};

pub(super) const SUBJECTS: [&str; 6] = ["Математика", "Русский язык", "Физика", "История", "Биология", "Литература"];
pub(super) const LETTERS: [&str; 3] = ["А", "Б", "В"];
/// Municipal districts of the region: one kindergarten queue each (as many as the size needs).
pub(super) const TERRITORIES: [&str; 18] = [
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
pub(super) const COLLEGE_PROGRAMS: [&str; 3] = ["ИС", "ЭК", "ТМ"];
pub(super) const UNI_PROGRAMS: [&str; 3] = ["ПМИ", "ЮР", "ФИЗ"];
/// Commission members (the largest quorum, 7, plus two).
pub(super) const MEMBERS: usize = 9;
pub(super) const GRANTS_VALID_FROM: &str = "2026-08-01T00:00:00Z";

/// A deterministic key for demo role `label` (never use demo keys for anything real).
pub fn demo_key(origin: &str, label: &str) -> KeyPair {
    let seed: [u8; 32] = Sha256::digest(format!("zachetka demo key\n{origin}\n{label}")).into();
    KeyPair::from_seed(&seed)
}

/// Schools in a region of `size`: one per 30 teachers.
pub(super) fn schools(size: DemoSize) -> u64 {
    size.teachers.max(1).div_ceil(30).max(1)
}

/// Colleges, universities, college students and university students in a region of `size`.
pub(super) fn higher_counts(size: DemoSize) -> (u64, u64, u64, u64) {
    let learners = size.learners.max(1);
    (1 + learners / 40_000, 1 + learners / 100_000, (learners / 20).max(10), (learners / 20).max(10))
}

/// Who holds which key (indices into `DemoRegion::keys`) and how big each part of the region is.
pub(super) struct Cast {
    pub(super) learners: u64,
    pub(super) schools: u64,
    /// Teachers are keys `0..teachers`; teacher `i` works in school `i % schools`.
    pub(super) teachers: usize,
    pub(super) territories: u64,
    pub(super) kgs_per_territory: u64,
    pub(super) colleges: u64,
    pub(super) universities: u64,
    pub(super) college_students: u64,
    pub(super) uni_students: u64,
    pub(super) ados: u64,
    /// First learner numbers of kindergarten children and future 1st-graders.
    pub(super) kg_base: u64,
    pub(super) fg_base: u64,
    pub(super) authority: usize,
    pub(super) olympiad_issuer: usize,
    pub(super) school_admin: Vec<usize>,
    pub(super) school_registrar: Vec<usize>,
    pub(super) school_issuer: Vec<usize>,
    /// Per school, the class teacher of `<year>А` for years 1 to 11.
    pub(super) class_teacher: Vec<Vec<usize>>,
    pub(super) kg_admin: Vec<usize>,
    pub(super) operator: Vec<usize>,
    pub(super) college_admin: Vec<usize>,
    pub(super) college_registrar: Vec<usize>,
    pub(super) college_teachers: Vec<Vec<usize>>,
    pub(super) uni_admin: Vec<usize>,
    pub(super) uni_registrar: Vec<usize>,
    pub(super) uni_teachers: Vec<Vec<usize>>,
    pub(super) ado_admin: Vec<usize>,
    pub(super) ado_registrar: Vec<usize>,
    pub(super) com_admin: usize,
    pub(super) secretary: usize,
    pub(super) members: Vec<usize>,
    /// The region's attester of teachers' courses and competitions (`staff_record_issuer`).
    pub(super) staff_issuer: usize,
    /// Keys of the migration from the legacy systems (`history`), each with the `migration` role
    /// and the roles its imports need, in one institution or territory: per school, the other
    /// region's school, per territory's queue, per college, per university.
    pub(super) migration_school: Vec<usize>,
    pub(super) migration_other_school: usize,
    pub(super) migration_queue: Vec<usize>,
    pub(super) migration_college: Vec<usize>,
    pub(super) migration_uni: Vec<usize>,
    /// The new key of the teacher whose key is revoked mid-year, and the key the first school's
    /// registrar rotates to (`history`).
    pub(super) teacher_renewed: usize,
    pub(super) registrar_rotated: usize,
}

/// A school learner's place: school, school year 1 to 11, class letter index.
#[derive(Clone, Copy)]
pub(super) struct Pupil {
    pub(super) n: u64,
    pub(super) school: u64,
    pub(super) year: u64,
    pub(super) letter: usize,
}

impl Pupil {
    /// School learner number `n` among `schools` schools: schools first, then years, then letters.
    pub(super) fn of(n: u64, schools: u64) -> Pupil {
        let s = schools;
        Pupil { n, school: n % s, year: 1 + (n / s) % 11, letter: (n / s / 11 % 3) as usize }
    }

    pub(super) fn class(&self) -> String {
        format!("{}{}", self.year, LETTERS[self.letter])
    }
}

/// A college or university student.
#[derive(Clone, Copy)]
pub(super) struct Student {
    pub(super) n: u64,
    pub(super) college: bool,
    pub(super) institution: u64,
    pub(super) year: u64,
    pub(super) program: usize,
}

impl Student {
    pub(super) fn institution_id(&self) -> String {
        format!("{}-{:03}", if self.college { "col" } else { "uni" }, self.institution + 1)
    }
    pub(super) fn group(&self) -> String {
        let programs = if self.college { COLLEGE_PROGRAMS } else { UNI_PROGRAMS };
        format!("{}-{}1", programs[self.program], 27 - self.year)
    }
}

impl Cast {
    pub(super) fn pupil(&self, n: u64) -> Pupil {
        Pupil::of(n, self.schools)
    }

    /// The `k`-th (modulo their number) school learner of class (`school`, `year`, `letter`),
    /// a class some learner is in: `Pupil::of` numbers learners schools first, then years, then
    /// letters, so the class's learners are `base`, `base + 33 * schools`, ...
    pub(super) fn member_of(&self, school: u64, year: u64, letter: usize, k: u64) -> u64 {
        let base = school + self.schools * ((year - 1) + 11 * letter as u64);
        let step = 33 * self.schools;
        let members = self.learners.saturating_sub(base).div_ceil(step).max(1);
        base + step * (k % members)
    }

    /// Population index `p` (school learners first, then college, then university students).
    pub(super) fn student(&self, p: u64) -> Student {
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
    pub(super) fn teacher_of(&self, s: u64, k: u64) -> usize {
        let per_school = (self.teachers as u64).div_ceil(self.schools);
        let t = (s + self.schools * (k % per_school)) as usize;
        if t >= self.teachers {
            s as usize
        } else {
            t
        }
    }

    /// Who authorises a correction or signs a promotion in a class: its class teacher, else the admin.
    pub(super) fn class_authority(&self, p: &Pupil) -> usize {
        if p.letter == 0 {
            self.class_teacher[p.school as usize][p.year as usize - 1]
        } else {
            self.school_admin[p.school as usize]
        }
    }

    pub(super) fn territory_of_kg(&self, k: u64) -> &'static str {
        TERRITORIES[(k % self.territories) as usize]
    }
}

struct KeyRing<'a> {
    origin: &'a str,
    keys: Vec<KeyPair>,
}

impl KeyRing<'_> {
    pub(super) fn add(&mut self, label: String) -> usize {
        self.keys.push(demo_key(self.origin, &label));
        self.keys.len() - 1
    }
}

/// The region's cast for `size`, and every key, in the order they are derived (the order
/// fixes each key's index, hence the demo's bytes).
pub(super) fn cast(origin: &str, size: DemoSize) -> (Cast, Vec<KeyPair>) {
    let learners = size.learners.max(1);
    let teachers = size.teachers.max(1) as usize;
    let schools = schools(size);
    let territories = (2 + learners / 10_000).min(TERRITORIES.len() as u64);
    let (colleges, universities, college_students, uni_students) = higher_counts(size);
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
        kg_admin: (0..territories * kgs_per_territory).map(|k| ring.add(format!("admin/kg-{:03}", k + 1))).collect(),
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
        staff_issuer: 0,
        migration_school: Vec::new(),
        migration_other_school: 0,
        migration_queue: Vec::new(),
        migration_college: Vec::new(),
        migration_uni: Vec::new(),
        teacher_renewed: 0,
        registrar_rotated: 0,
    };
    cast.class_teacher =
        (0..schools).map(|s| (1..=11).map(|y| ring.add(format!("class_teacher/{}/{y}А", sch(s)))).collect()).collect();
    let per_college = staff_per(teachers / (20 * colleges as usize));
    cast.college_teachers = (0..colleges)
        .map(|c| (0..per_college).map(|k| ring.add(format!("teacher/col-{:03}/{k}", c + 1))).collect())
        .collect();
    let per_uni = staff_per(teachers / (20 * universities as usize));
    cast.uni_teachers = (0..universities)
        .map(|u| (0..per_uni).map(|k| ring.add(format!("teacher/uni-{:03}/{k}", u + 1))).collect())
        .collect();
    cast.staff_issuer = ring.add("issuer/staff".into());
    cast.migration_school = (0..schools).map(|s| ring.add(format!("migration/{}", sch(s)))).collect();
    cast.migration_other_school = ring.add(format!("migration/{}", super::history::OTHER_REGION_SCHOOL));
    cast.migration_queue =
        (0..territories).map(|t| ring.add(format!("migration/queue/{}", TERRITORIES[t as usize]))).collect();
    cast.migration_college = (0..colleges).map(|c| ring.add(format!("migration/col-{:03}", c + 1))).collect();
    cast.migration_uni = (0..universities).map(|u| ring.add(format!("migration/uni-{:03}", u + 1))).collect();
    cast.teacher_renewed = ring.add(format!("teacher/{}/renewed", super::history::REVOKED_TEACHER));
    cast.registrar_rotated = ring.add(format!("registrar/{}/rotated", sch(0)));
    (cast, ring.keys)
}

impl DemoRegion {
    /// Genesis, institutions, the authority's grants, then the admins' grants of their staff.
    pub(super) fn setup(&self, s: &mut Script) {
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
        // The region's institute of education development attests teachers' courses and
        // competitions (a role only the authority grants).
        grant(s, a, c.staff_issuer, "p-staff-issuer", &["staff_record_issuer"], json!({"territory": "region"}));
    }
}
