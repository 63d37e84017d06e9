//! The education event vocabulary: one typed record per event type, read from an event's `data`
//! object with errors that name the field, and the type table (name, schema version, stream).
//! Not the rules: what a record may say in context is decided by `zachetka-rules`.

use serde_json::{Map, Value};
use std::fmt;

/// The longest string a data field may hold, in bytes.
pub const STRING_LEN_MAX: usize = 512;
/// The longest list a data field may hold.
pub const LIST_LEN_MAX: usize = 256;
/// The deepest nesting of objects and arrays in `data`.
pub const DEPTH_MAX: usize = 4;

/// Which stream an event type is written to; the part after the prefix is the stream's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    /// `registry`: the authority chain.
    Registry,
    /// `institution/<institution id>`: an institution's own records (lessons, 1st-grade intake, programs).
    Institution,
    /// `learner/<pseudonymous learner id>`: a learner's lifelong record.
    Learner,
    /// `queue/kg/<territory>`: a territory's kindergarten queue.
    Queue,
    /// `teacher/<pseudonymous teacher id>`: a teacher's attestation history.
    Teacher,
    /// `completeness`: the ledger's completeness commitments (DESIGN 3.7), one chain.
    Completeness,
}

impl StreamKind {
    /// The stream name's fixed part.
    pub fn prefix(self) -> &'static str {
        match self {
            StreamKind::Registry => "registry",
            StreamKind::Institution => "institution/",
            StreamKind::Learner => "learner/",
            StreamKind::Queue => "queue/kg/",
            StreamKind::Teacher => "teacher/",
            StreamKind::Completeness => "completeness",
        }
    }

    /// The id a stream names, if the stream has this kind (`""` for the registry and the
    /// completeness stream, which are one stream each).
    pub fn id_of(self, stream: &str) -> Option<&str> {
        if self.is_single() {
            return (stream == self.prefix()).then_some("");
        }
        let id = stream.strip_prefix(self.prefix())?;
        (!id.is_empty() && !id.contains('/') && id.len() <= 128).then_some(id)
    }
}

impl StreamKind {
    /// Whether the kind is one stream whose name is its prefix (`registry`, `completeness`).
    pub fn is_single(self) -> bool {
        matches!(self, StreamKind::Registry | StreamKind::Completeness)
    }
}

/// One row of the type table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TypeInfo {
    pub name: &'static str,
    /// The schema version events of this type carry as `data.v`.
    pub version: i64,
    pub stream: StreamKind,
}

/// Where a field sits, for error messages (`data.scope.institution`).
pub struct Path<'p> {
    pub parent: &'p str,
    pub name: &'p str,
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.parent, self.name)
    }
}

/// A value a data field can hold.
pub trait Field: Sized {
    fn take(v: Option<&Value>, at: &Path) -> Result<Self, String>;
}

/// A record read from a JSON object with a fixed set of fields.
pub trait Record: Sized {
    const FIELDS: &'static [&'static str];
    fn from_object(obj: &Map<String, Value>, parent: &str) -> Result<Self, String>;
}

impl Field for String {
    fn take(v: Option<&Value>, at: &Path) -> Result<Self, String> {
        match v {
            None => Err(format!("{at} is missing")),
            Some(Value::String(s)) if s.is_empty() => Err(format!("{at} is empty")),
            Some(Value::String(s)) if s.len() > STRING_LEN_MAX => {
                Err(format!("{at} is longer than {STRING_LEN_MAX} bytes"))
            }
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(format!("{at} must be a string")),
        }
    }
}

impl Field for i64 {
    fn take(v: Option<&Value>, at: &Path) -> Result<Self, String> {
        match v {
            None => Err(format!("{at} is missing")),
            Some(v) => v.as_i64().ok_or_else(|| format!("{at} must be an integer")),
        }
    }
}

impl<T: Field> Field for Option<T> {
    fn take(v: Option<&Value>, at: &Path) -> Result<Self, String> {
        match v {
            None => Ok(None),
            Some(_) => T::take(v, at).map(Some),
        }
    }
}

impl<T: Field> Field for Vec<T> {
    fn take(v: Option<&Value>, at: &Path) -> Result<Self, String> {
        match v {
            None => Err(format!("{at} is missing")),
            Some(Value::Array(items)) if items.len() > LIST_LEN_MAX => {
                Err(format!("{at} has more than {LIST_LEN_MAX} items"))
            }
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, item)| T::take(Some(item), at).map_err(|e| format!("{e} (item {i})")))
                .collect(),
            Some(_) => Err(format!("{at} must be an array")),
        }
    }
}

/// A mark: an integer (`5`) or a word (`"зачтено"`), kept as its string form, which is how
/// scales list their marks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mark(pub String);

impl Field for Mark {
    fn take(v: Option<&Value>, at: &Path) -> Result<Self, String> {
        match v {
            Some(Value::Number(n)) if n.is_i64() || n.is_u64() => Ok(Mark(n.to_string())),
            Some(Value::String(_)) => String::take(v, at).map(Mark),
            None => Err(format!("{at} is missing")),
            Some(_) => Err(format!("{at} must be an integer or a string")),
        }
    }
}

macro_rules! record {
    ($(#[$m:meta])* $name:ident { $($(#[$fm:meta])* $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name { $($(#[$fm])* pub $field: $ty,)* }

        impl Record for $name {
            const FIELDS: &'static [&'static str] = &[$(stringify!($field)),*];
            fn from_object(obj: &Map<String, Value>, parent: &str) -> Result<Self, String> {
                for k in obj.keys() {
                    if !(Self::FIELDS.contains(&k.as_str()) || (parent == "data" && (k == "v" || k == MIGRATED_FROM))) {
                        return Err(format!("{parent}.{k} is not a field of this record"));
                    }
                }
                Ok(Self { $($field: Field::take(obj.get(stringify!($field)), &Path { parent, name: stringify!($field) })?,)* })
            }
        }

        impl Field for $name {
            fn take(v: Option<&Value>, at: &Path) -> Result<Self, String> {
                match v {
                    None => Err(format!("{at} is missing")),
                    Some(Value::Object(o)) => Self::from_object(o, &at.to_string()),
                    Some(_) => Err(format!("{at} must be an object")),
                }
            }
        }

        // The same record read straight from JSON text (`crate::strict`: never more lenient).
        impl crate::strict::StrictRecord for $name {
            fn from_map<'de, A: serde::de::MapAccess<'de>>(
                mut map: A,
                top: bool,
            ) -> Result<(Self, Option<MigratedFrom>), A::Error> {
                $(let mut $field: Option<$ty> = None;)*
                let mut v_seen = false;
                let mut migrated = None;
                while let Some(i) = map.next_key_seed(crate::strict::Key { names: Self::FIELDS, top })? {
                    let mut at = 0usize;
                    $(
                        if i == at {
                            if $field.is_some() {
                                return Err(crate::strict::twice(stringify!($field)));
                            }
                            $field = Some(map.next_value::<crate::strict::Strict<$ty>>()?.0);
                            continue;
                        }
                        at += 1;
                    )*
                    crate::strict::extra(&mut map, i - at, &mut v_seen, &mut migrated)?;
                }
                let record = Self {
                    $($field: match $field {
                        Some(value) => value,
                        None => <$ty as crate::strict::StrictField>::absent()
                            .ok_or_else(|| crate::strict::missing(stringify!($field)))?,
                    },)*
                };
                Ok((record, migrated))
            }
        }

        impl crate::strict::StrictField for $name {
            fn read<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                crate::strict::read_nested(d)
            }
        }
    };
}

// ---- authority chain (stream `registry`) ----
record!(
    /// Genesis: the region authority establishes the ledger.
    LedgerEstablished { origin: String, authority: String }
);
record!(
    /// The authority registers an institution of a kind in a territory.
    InstitutionRegistered { institution: String, kind: String, territory: String }
);
record!(
    /// Where a key's roles apply: an institution (and one class in it), or a queue territory.
    Scope { institution: Option<String>, class: Option<String>, territory: Option<String> }
);
record!(
    /// A key gets roles in a scope for a time. `holder` is the pseudonymous person holding it
    /// (quorums count distinct holders, not keys).
    KeysGranted { key: String, holder: String, roles: Vec<String>, scope: Scope, valid_from: String, valid_until: Option<String> }
);
record!(
    /// A key loses every right from `effective_at` (default: the event's `occurred_at`).
    KeysRevoked { key: String, reason: String, effective_at: Option<String> }
);
record!(
    /// A key is replaced: the new key gets the old one's grant, the old one is revoked.
    KeysRotated { old_key: String, new_key: String, effective_at: Option<String> }
);

// ---- kindergarten queue (stream `queue/kg/<territory>`) ----
record!(
    /// A place is requested. `birth_month` (`YYYY-MM`) is the least the ledger needs to compute the
    /// age group on 1 September; the birth date itself stays outside the log.
    QueueApplicationSubmitted {
        application_id: String,
        number: String,
        learner: String,
        birth_month: String,
        desired_date: String,
        preferred: Vec<String>,
        group_type: String,
    }
);
record!(
    /// A benefit is claimed with a reference to its evidence (kept outside the log).
    BenefitClaimed { application_id: String, claim_id: String, category: String, evidence_ref: String, recheck_on: String }
);
record!(BenefitConfirmed { application_id: String, claim_id: String });
record!(BenefitRejected { application_id: String, claim_id: String, reason: String });
record!(
    /// A sibling attends `kindergarten` (преимущественное право there, and only there):
    /// `sibling_enrolment` is the id of the sibling's `queue.enrolled` event in that kindergarten.
    /// Schema version 2: version 1 had no `sibling_enrolment` and raised the tier territory-wide.
    SiblingLinked { application_id: String, kindergarten: String, sibling: String, sibling_enrolment: String }
);
record!(
    /// The family agrees to be offered a kindergarten it did not list as preferred.
    OtherKindergartenConsented { application_id: String, kindergarten: String }
);
record!(QueueApplicationWithdrawn { application_id: String, reason: String });
record!(
    /// Free places in one kindergarten group, declared by an allocation run.
    PlacesRow { kindergarten: String, age_group: String, group_type: String, places: i64 }
);
record!(
    /// An allocation run (комплектование) starts; a `main` run freezes the queue. `academic_year`
    /// (the year of the 1 September its places are for) is the allocation year whose order and
    /// age groups its offers follow; without it, the allocation year of the run's date
    /// (`queue_order::allocation_year_on`).
    AllocationStarted { run_id: String, kind: String, places: Vec<PlacesRow>, academic_year: Option<i64> }
);
record!(AllocationFinished { run_id: String });
record!(PlaceOffered { offer_id: String, application_id: String, kindergarten: String });
record!(OfferAccepted { offer_id: String });
record!(OfferRefused { offer_id: String, reason: String });
record!(AdmissionRefused { application_id: String, kindergarten: String, reason: String });
record!(KindergartenEnrolled { application_id: String, kindergarten: String, order_ref: String });
record!(KindergartenTransferred { application_id: String, from_kindergarten: String, to_kindergarten: String });

// ---- 1st grade (stream `institution/<school>`) ----
record!(FirstGradePlacesPublished { target_year: i64, places: i64 });
record!(
    /// A 1st-grade application in window 1 or 2 on a basis (priority, sibling, territory, general).
    FirstGradeApplicationSubmitted {
        application_id: String,
        learner: String,
        target_year: i64,
        window: i64,
        basis: String,
        birth_month: String,
        founder_permission_ref: Option<String>,
    }
);
record!(EnrolmentOrderIssued { order_id: String, target_year: i64, applications: Vec<String>, order_date: String });

// ---- school journal (learner streams; lessons on the institution stream) ----
record!(LessonHeld { lesson_id: String, class: String, subject: String, lesson_date: String, topic: Option<String> });
record!(
    /// A mark with its scale, the kind of work and that kind's weight.
    GradeRecorded {
        institution: String,
        class: String,
        subject: String,
        mark: Mark,
        scale: String,
        weight: i64,
        kind: String,
        lesson_date: String,
    }
);
record!(AttendanceMarked { institution: String, class: String, subject: Option<String>, lesson_date: String, code: String });
record!(
    /// A correction names the corrected event, the reason and the key that authorised it; the
    /// new value (a mark or an attendance code) is optional: none annuls the record.
    RecordCorrected {
        institution: String,
        class: String,
        corrected_event_id: String,
        reason: String,
        authorised_by: String,
        mark: Option<Mark>,
        scale: Option<String>,
        code: Option<String>,
    }
);
record!(TermGradeSet {
    institution: String,
    class: String,
    subject: String,
    academic_year: i64,
    term: i64,
    mark: Mark,
    scale: String
});
record!(YearGradeSet {
    institution: String,
    class: String,
    subject: String,
    academic_year: i64,
    mark: Mark,
    scale: String
});
record!(IntermediateAttestationRecorded {
    institution: String,
    class: String,
    subject: String,
    academic_year: i64,
    mark: Mark,
    scale: String,
});
record!(AcademicDebtOpened {
    debt_id: String,
    institution: String,
    class: String,
    subject: String,
    academic_year: i64,
    opened_on: String,
    attestation_event_id: String,
});
record!(
    /// A retake of a debt; `commission` lists member keys (needed from the second attempt).
    RetakeRecorded {
        debt_id: String,
        institution: String,
        class: String,
        held_on: String,
        mark: Mark,
        scale: String,
        commission: Option<Vec<String>>,
    }
);
record!(Promoted { institution: String, from_class: String, to_class: String, academic_year: i64, basis: String });
record!(FinalAttestationRecorded {
    institution: String,
    exam: String,
    subject: String,
    academic_year: i64,
    score: i64
});
record!(CertificateIssued { institution: String, level: String, number: String, issued_on: String });

// ---- additional education ----
record!(AdditionalCertificateIssued { certificate_id: String, institution: String, year: i64 });
record!(ProgramRegistered { program_id: String, capacity: i64, focus: Option<String> });
record!(ProgramEnrolled { institution: String, program_id: String, certificate_id: Option<String> });
record!(ProgramLeft { institution: String, program_id: String, reason: String });

// ---- college and university ----
record!(CourseResultRecorded {
    institution: String,
    group: String,
    course: String,
    term: i64,
    mark: Mark,
    scale: String
});
record!(ExamRecorded {
    institution: String,
    group: String,
    course: String,
    term: i64,
    form: String,
    mark: Mark,
    scale: String
});
record!(DiplomaIssued { institution: String, level: String, number: String, issued_on: String });

// ---- teacher attestation (stream `teacher/<teacher id>`) ----
record!(AttestationApplicationSubmitted {
    application_id: String,
    commission: String,
    institution: String,
    category: String
});
record!(
    /// One commission member's signed vote (the event's author is the member).
    VoteCast { application_id: String, vote: String }
);
record!(
    /// The commission's decision, recorded by its secretary; quorum is counted over the votes.
    DecisionRecorded { application_id: String, decision: String, decided_on: String }
);

// ---- the ledger's own (stream `completeness`, author the ledger key) ----
record!(
    /// The map of every learner's completeness value over the entries with seq < `up_to`
    /// (DESIGN 3.7; `crate::completeness`). `map_root` is base64, `learners` the map's size.
    CompletenessCommitted { up_to: i64, map_root: String, learners: i64 }
);

// ---- digital profile ----
record!(AchievementAttested {
    achievement_id: String,
    kind: String,
    level: String,
    date: String,
    result: String,
    contest_ref: Option<String>,
});
record!(AchievementRevoked { achievement_id: String, reason: String });
record!(LearnerTransferred { from_institution: String, to_institution: String, to_region: Option<String>, transferred_on: String });

// ---- contingent: who is in which institution and class (learner streams) ----
record!(
    /// Admission to an institution: a school class of any year, or a college or university group
    /// (`class` is the group there, as in key scopes), from `admitted_on`, by the institution's
    /// order `order_ref`. `program_id` names a college or university curriculum
    /// (`college.curriculum_registered`); a school admission has none.
    ContingentAdmitted {
        institution: String,
        class: String,
        academic_year: i64,
        admitted_on: String,
        order_ref: String,
        program_id: Option<String>,
    }
);
record!(
    /// The learner's class (group) from `assigned_on`: the class of a new academic year, or a move
    /// between classes during one.
    ClassAssigned { institution: String, class: String, academic_year: i64, assigned_on: String }
);
record!(
    /// The learner leaves the institution before completing it, from `expelled_on`.
    ContingentExpelled { institution: String, expelled_on: String, reason: String }
);
record!(
    /// The learner completed the institution's programme and leaves it on `graduated_on`.
    ContingentGraduated { institution: String, graduated_on: String }
);
record!(
    /// Academic leave at a college or university: no results are recorded from `starts_on` until
    /// the day before `ends_on`.
    AcademicLeaveGranted { institution: String, starts_on: String, ends_on: String, reason: String }
);
record!(
    /// A college or university programme's curriculum: the courses a diploma needs passed
    /// (stream `institution/<id>`).
    CurriculumRegistered { program_id: String, level: String, courses: Vec<String> }
);

// ---- staff records (stream `teacher/<teacher id>`) ----
record!(
    /// A professional development course completed, attested by its provider; `institution` is
    /// where the teacher works (it scopes reads).
    StaffCourseCompleted {
        record_id: String,
        institution: String,
        course: String,
        provider: String,
        hours: i64,
        completed_on: String,
    }
);
record!(
    /// A result in a professional competition («Конкурсы профессионального мастерства»: teacher
    /// of the year and the like), attested by its organiser.
    StaffCompetitionResult {
        record_id: String,
        institution: String,
        competition: String,
        level: String,
        result: String,
        date: String,
    }
);

// ---- what the digital-maturity indicators count ----
record!(
    /// A recommendation or an individual trajectory offered to a learner from their portfolio
    /// (learner stream), by staff of the institution the learner attends.
    RecommendationOffered { recommendation_id: String, institution: String, kind: String, offered_on: String }
);
record!(
    /// A teacher's access to a verified digital content service (stream `teacher/<id>`).
    TeacherContentAccessGranted { access_id: String, institution: String, service: String, granted_on: String }
);
record!(
    /// A learner's free access to a digital content service for self-study (learner stream).
    LearnerContentAccessGranted { access_id: String, institution: String, service: String, granted_on: String }
);
record!(
    /// An electronic assignment given to a class and how it is checked (`automatic` or `manual`),
    /// on the institution's stream.
    AssignmentRecorded { assignment_id: String, class: String, subject: String, checking: String, assigned_on: String }
);

macro_rules! vocabulary {
    ($($name:literal => $variant:ident($rec:ident) in $stream:ident v $ver:literal,)*) => {
        /// An event's data, typed.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum Event { $($variant($rec),)* }

        /// Every event type: name, schema version, stream.
        pub const TYPES: &[TypeInfo] = &[$(TypeInfo { name: $name, version: $ver, stream: StreamKind::$stream },)*];

        const NAMES: &[&str] = &[$($name,)*];

        fn parse_known(event_type: &str, data: &Map<String, Value>) -> Option<Result<Event, String>> {
            match event_type {
                $($name => Some($rec::from_object(data, "data").map(Event::$variant)),)*
                _ => None,
            }
        }

        /// `data` read straight from JSON as the record of `event_type` (`crate::strict`), with
        /// the type's name as the table has it and `data.migrated_from` (not yet checked against
        /// `MIGRATABLE_TYPES`); `None` if the type is unknown.
        #[allow(clippy::type_complexity)] // one use, in `model`
        pub(crate) fn parse_strict<'de, D: serde::Deserializer<'de>>(
            event_type: &str,
            data: D,
        ) -> Option<(&'static str, Result<(Event, Option<MigratedFrom>), D::Error>)> {
            match event_type {
                $($name => Some(($name, crate::strict::read_data::<$rec, D>(data).map(|(r, m)| (Event::$variant(r), m)))),)*
                _ => None,
            }
        }
    };
}

vocabulary! {
    "ledger.established" => LedgerEstablished(LedgerEstablished) in Registry v 1,
    "registry.institution_registered" => InstitutionRegistered(InstitutionRegistered) in Registry v 1,
    "keys.granted" => KeysGranted(KeysGranted) in Registry v 1,
    "keys.revoked" => KeysRevoked(KeysRevoked) in Registry v 1,
    "keys.rotated" => KeysRotated(KeysRotated) in Registry v 1,
    "queue.application_submitted" => QueueApplicationSubmitted(QueueApplicationSubmitted) in Queue v 1,
    "queue.benefit_claimed" => BenefitClaimed(BenefitClaimed) in Queue v 1,
    "queue.benefit_confirmed" => BenefitConfirmed(BenefitConfirmed) in Queue v 1,
    "queue.benefit_rejected" => BenefitRejected(BenefitRejected) in Queue v 1,
    "queue.sibling_linked" => SiblingLinked(SiblingLinked) in Queue v 2,
    "queue.application_withdrawn" => QueueApplicationWithdrawn(QueueApplicationWithdrawn) in Queue v 1,
    "queue.allocation_started" => AllocationStarted(AllocationStarted) in Queue v 1,
    "queue.allocation_finished" => AllocationFinished(AllocationFinished) in Queue v 1,
    "queue.place_offered" => PlaceOffered(PlaceOffered) in Queue v 1,
    "queue.offer_accepted" => OfferAccepted(OfferAccepted) in Queue v 1,
    "queue.offer_refused" => OfferRefused(OfferRefused) in Queue v 1,
    "queue.admission_refused" => AdmissionRefused(AdmissionRefused) in Queue v 1,
    "queue.enrolled" => KindergartenEnrolled(KindergartenEnrolled) in Queue v 1,
    "queue.transferred" => KindergartenTransferred(KindergartenTransferred) in Queue v 1,
    "enrolment.places_published" => FirstGradePlacesPublished(FirstGradePlacesPublished) in Institution v 1,
    "enrolment.application_submitted" => FirstGradeApplicationSubmitted(FirstGradeApplicationSubmitted) in Institution v 1,
    "enrolment.order_issued" => EnrolmentOrderIssued(EnrolmentOrderIssued) in Institution v 1,
    "journal.lesson_held" => LessonHeld(LessonHeld) in Institution v 1,
    "journal.grade_recorded" => GradeRecorded(GradeRecorded) in Learner v 1,
    "journal.attendance_marked" => AttendanceMarked(AttendanceMarked) in Learner v 1,
    "journal.record_corrected" => RecordCorrected(RecordCorrected) in Learner v 1,
    "journal.term_grade_set" => TermGradeSet(TermGradeSet) in Learner v 1,
    "journal.year_grade_set" => YearGradeSet(YearGradeSet) in Learner v 1,
    "journal.intermediate_attestation_recorded" => IntermediateAttestationRecorded(IntermediateAttestationRecorded) in Learner v 1,
    "journal.academic_debt_opened" => AcademicDebtOpened(AcademicDebtOpened) in Learner v 1,
    "journal.retake_recorded" => RetakeRecorded(RetakeRecorded) in Learner v 1,
    "journal.promoted" => Promoted(Promoted) in Learner v 1,
    "journal.final_attestation_recorded" => FinalAttestationRecorded(FinalAttestationRecorded) in Learner v 1,
    "journal.certificate_issued" => CertificateIssued(CertificateIssued) in Learner v 1,
    "additional.certificate_issued" => AdditionalCertificateIssued(AdditionalCertificateIssued) in Learner v 1,
    "additional.program_registered" => ProgramRegistered(ProgramRegistered) in Institution v 1,
    "additional.enrolled" => ProgramEnrolled(ProgramEnrolled) in Learner v 1,
    "additional.left" => ProgramLeft(ProgramLeft) in Learner v 1,
    "college.course_result_recorded" => CourseResultRecorded(CourseResultRecorded) in Learner v 1,
    "college.exam_recorded" => ExamRecorded(ExamRecorded) in Learner v 1,
    "college.diploma_issued" => DiplomaIssued(DiplomaIssued) in Learner v 1,
    "attestation.application_submitted" => AttestationApplicationSubmitted(AttestationApplicationSubmitted) in Teacher v 1,
    "attestation.vote_cast" => VoteCast(VoteCast) in Teacher v 1,
    "attestation.decision_recorded" => DecisionRecorded(DecisionRecorded) in Teacher v 1,
    "portfolio.achievement_attested" => AchievementAttested(AchievementAttested) in Learner v 1,
    "portfolio.achievement_revoked" => AchievementRevoked(AchievementRevoked) in Learner v 1,
    "learner.transferred" => LearnerTransferred(LearnerTransferred) in Learner v 1,
    "queue.other_kindergarten_consented" => OtherKindergartenConsented(OtherKindergartenConsented) in Queue v 1,
    "contingent.admitted" => ContingentAdmitted(ContingentAdmitted) in Learner v 1,
    "contingent.class_assigned" => ClassAssigned(ClassAssigned) in Learner v 1,
    "contingent.expelled" => ContingentExpelled(ContingentExpelled) in Learner v 1,
    "contingent.graduated" => ContingentGraduated(ContingentGraduated) in Learner v 1,
    "contingent.academic_leave_granted" => AcademicLeaveGranted(AcademicLeaveGranted) in Learner v 1,
    "college.curriculum_registered" => CurriculumRegistered(CurriculumRegistered) in Institution v 1,
    "staff.course_completed" => StaffCourseCompleted(StaffCourseCompleted) in Teacher v 1,
    "staff.competition_result_recorded" => StaffCompetitionResult(StaffCompetitionResult) in Teacher v 1,
    "digital.recommendation_offered" => RecommendationOffered(RecommendationOffered) in Learner v 1,
    "digital.teacher_content_access_granted" => TeacherContentAccessGranted(TeacherContentAccessGranted) in Teacher v 1,
    "digital.learner_content_access_granted" => LearnerContentAccessGranted(LearnerContentAccessGranted) in Learner v 1,
    "digital.assignment_recorded" => AssignmentRecorded(AssignmentRecorded) in Institution v 1,
    "ledger.completeness_committed" => CompletenessCommitted(CompletenessCommitted) in Completeness v 1,
}

/// The data field naming an imported record's source: `{"system": "BARS", "record": "<id>"}`.
pub const MIGRATED_FROM: &str = "migrated_from";

/// The event types a migration from a legacy system imports (and so may carry `data.migrated_from`):
/// a learner's past records and the contingent they were made in (admissions, classes, transfers,
/// leave, expulsion, graduation), whose own dates are in their data, and the kindergarten
/// placements the legacy queue made (its allocation runs, offers, acceptances and enrolments,
/// dated when they were made there; the rules still check their order). Not 1st-grade orders or
/// attestation votes, nor keys and grants.
pub const MIGRATABLE_TYPES: &[&str] = &[
    "queue.application_submitted",
    "queue.allocation_started",
    "queue.place_offered",
    "queue.offer_accepted",
    "queue.enrolled",
    "queue.allocation_finished",
    "contingent.admitted",
    "contingent.class_assigned",
    "contingent.academic_leave_granted",
    "contingent.expelled",
    "contingent.graduated",
    "learner.transferred",
    "journal.lesson_held",
    "journal.grade_recorded",
    "journal.attendance_marked",
    "journal.term_grade_set",
    "journal.year_grade_set",
    "journal.final_attestation_recorded",
    "journal.certificate_issued",
    "college.course_result_recorded",
    "college.exam_recorded",
    "college.diploma_issued",
    "portfolio.achievement_attested",
];

record!(
    /// Where an imported record comes from: the legacy system (`BARS`, `СОЛО`) and its record id.
    MigratedFrom { system: String, record: String }
);

/// `data.migrated_from` of an event: `None` when absent; an error naming the field when it is
/// malformed or the type is not one a migration imports.
pub fn migrated_from(event_type: &str, data: &Map<String, Value>) -> Result<Option<MigratedFrom>, String> {
    let Some(v) = data.get(MIGRATED_FROM) else { return Ok(None) };
    if !MIGRATABLE_TYPES.contains(&event_type) {
        return Err(format!("data.{MIGRATED_FROM} is not a field of {event_type} (not an imported type)"));
    }
    MigratedFrom::take(Some(v), &Path { parent: "data", name: MIGRATED_FROM }).map(Some)
}

/// Every event type the vocabulary knows.
pub fn event_types() -> &'static [&'static str] {
    NAMES
}

/// The type table row of an event type.
pub fn type_info(event_type: &str) -> Option<&'static TypeInfo> {
    TYPES.iter().find(|t| t.name == event_type)
}

/// The schema version (`data.v`) events of a type carry.
pub fn schema_version(event_type: &str) -> Option<i64> {
    type_info(event_type).map(|t| t.version)
}

/// Reads `data` as the record of `event_type`; `None` if the type is unknown.
pub fn parse(event_type: &str, data: &Map<String, Value>) -> Option<Result<Event, String>> {
    let parsed = parse_known(event_type, data)?;
    Some(parsed.and_then(|ev| migrated_from(event_type, data).map(|_| ev)))
}

/// Scans a data value for what a signed payload may not carry: floats, booleans, nulls, and
/// nesting deeper than `DEPTH_MAX`. Returns (code, message).
pub fn scan_payload(v: &Value, path: &mut String, depth: usize) -> Result<(), (&'static str, String)> {
    if depth > DEPTH_MAX {
        return Err(("event_malformed", format!("{path} nests deeper than {DEPTH_MAX} levels")));
    }
    match v {
        Value::Null => Err(("payload_type_not_allowed", format!("{path} is null (integers and strings only)"))),
        Value::Bool(_) => Err(("payload_type_not_allowed", format!("{path} is a boolean (integers and strings only)"))),
        Value::Number(n) if !(n.is_i64() || n.is_u64()) => {
            Err(("payload_type_not_allowed", format!("{path} is a float (integers and strings only)")))
        }
        Value::Number(_) | Value::String(_) => Ok(()),
        Value::Array(items) => items.iter().try_for_each(|item| scan_payload(item, path, depth + 1)),
        Value::Object(o) => o.iter().try_for_each(|(k, item)| {
            let len = path.len();
            path.push('.');
            path.push_str(k);
            let r = scan_payload(item, path, depth + 1);
            path.truncate(len);
            r
        }),
    }
}

/// Finds a field whose name marks it as personal data (a `_`-separated word of the name is in
/// `words`; `birth_month` is the one allowed exception), or a string that looks like a SNILS.
pub fn find_personal_data(v: &Value, words: &[String], path: &mut String) -> Option<String> {
    match v {
        Value::Object(o) => o.iter().find_map(|(k, item)| {
            // Not copied when it is ASCII without capitals, which lowercasing leaves as it is
            // (vocabulary field names are): the rules scan every key of every event.
            let lower = match k.bytes().all(|b| b.is_ascii() && !b.is_ascii_uppercase()) {
                true => std::borrow::Cow::Borrowed(k.as_str()),
                false => std::borrow::Cow::Owned(k.to_lowercase()),
            };
            let len = path.len();
            path.push('.');
            path.push_str(k);
            let hit = lower != "birth_month" && lower.split(['_', '-']).any(|w| words.iter().any(|p| p == w));
            let r = if hit {
                Some(format!("{path} is named like personal data"))
            } else {
                find_personal_data(item, words, path)
            };
            path.truncate(len);
            r
        }),
        Value::Array(items) => items.iter().find_map(|item| find_personal_data(item, words, path)),
        Value::String(s) if looks_like_snils(s) => Some(format!("{path} holds what looks like a SNILS number")),
        _ => None,
    }
}

/// `123-456-789 01` or `123-456-789-01`: the SNILS layouts people type.
fn looks_like_snils(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 14
        && b.iter().enumerate().all(|(i, c)| match i {
            3 | 7 => *c == b'-',
            11 => *c == b' ' || *c == b'-',
            _ => c.is_ascii_digit(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn type_table_is_consistent() {
        assert_eq!(TYPES.len(), event_types().len());
        let mut names: Vec<_> = event_types().to_vec();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), TYPES.len(), "duplicate type names");
        for t in TYPES {
            assert_eq!(schema_version(t.name), Some(t.version));
            let (head, tail) = t.name.split_once('.').unwrap();
            assert!(!head.is_empty() && tail.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{}", t.name);
        }
    }

    #[test]
    fn field_errors_name_the_field() {
        let o = json!({"key": "did:key:z6Mk", "holder": "p-1", "roles": ["teacher"], "scope": {"institution": 5}, "valid_from": "2026-01-01T00:00:00Z"});
        let err = parse("keys.granted", o.as_object().unwrap()).unwrap().unwrap_err();
        assert_eq!(err, "data.scope.institution must be a string");
        let o = json!({"key": "k", "holder": "p", "roles": ["teacher", 1], "scope": {}, "valid_from": "x"});
        let err = parse("keys.granted", o.as_object().unwrap()).unwrap().unwrap_err();
        assert_eq!(err, "data.roles must be a string (item 1)");
        let o = json!({"offer_id": "o", "extra": "x"});
        let err = parse("queue.offer_accepted", o.as_object().unwrap()).unwrap().unwrap_err();
        assert_eq!(err, "data.extra is not a field of this record");
        let o = json!({});
        let err = parse("queue.offer_accepted", o.as_object().unwrap()).unwrap().unwrap_err();
        assert_eq!(err, "data.offer_id is missing");
        assert!(parse("no.such", o.as_object().unwrap()).is_none());
    }

    #[test]
    fn personal_data_and_payload_types_are_found() {
        // A few of the region profile's words (the profile is `zachetka-rules`' RegionConfig).
        let words: Vec<String> = ["name", "birth", "snils"].map(String::from).to_vec();
        let mut p = String::from("data");
        assert!(find_personal_data(&json!({"child": {"first_name": "x"}}), &words, &mut p)
            .unwrap()
            .contains("data.child.first_name"));
        assert!(find_personal_data(&json!({"birth_date": "2020-01-01"}), &words, &mut p).is_some());
        assert!(find_personal_data(&json!({"ref": "123-456-789 01"}), &words, &mut p).is_some());
        assert!(find_personal_data(&json!({"birth_month": "2020-01", "nameless": 1}), &words, &mut p).is_none());
        // Names are compared lowercased, capitals and titlecase letters included.
        assert!(find_personal_data(&json!({"Birth_Date": "2020-01-01"}), &words, &mut p).is_some());
        assert!(find_personal_data(&json!({"BIRTH_MONTH": "2020-01"}), &words, &mut p).is_none());
        let titlecase: Vec<String> = vec!["\u{1c6}em".into()];
        assert!(find_personal_data(&json!({"\u{1c5}em_x": 1}), &titlecase, &mut p).is_some());
        assert_eq!(scan_payload(&json!({"a": [1, 2.5]}), &mut p, 0).unwrap_err().0, "payload_type_not_allowed");
        assert_eq!(scan_payload(&json!({"a": true}), &mut p, 0).unwrap_err().0, "payload_type_not_allowed");
        assert_eq!(scan_payload(&json!({"a": [[[[["x"]]]]]}), &mut p, 0).unwrap_err().0, "event_malformed");
        assert!(scan_payload(&json!({"a": [1, "x", {"b": -3}]}), &mut p, 0).is_ok());
    }
}
