//! Inspection of the rule state: a learner's place in a kindergarten queue and a teacher's
//! categories, as the rules hold them to judge offers and attestation decisions. The rules'
//! tests check those decisions' inputs through them. Not what readers are served: the read side
//! folds its own models (`zachetka-projections`: kindergarten-queues, teachers), from the log.

use crate::{Rules, TeacherStatus};

impl Rules {
    /// A learner's position in a territory's kindergarten queue for an age group, with the reasons
    /// (tier and why, application time and number, who is ahead), in the list of the application's
    /// next allocation year (its target year until that comes, then the current one), where the
    /// age group is the child's on that year's 1 September. `None` if the application is not
    /// waiting in that list. A read model: "today" is the latest applied event's local date.
    pub fn queue_position(&self, territory: &str, age_group: &str, application_id: &str) -> Option<(u64, Vec<String>)> {
        self.queue.position(&self.config, self.today, territory, age_group, application_id)
    }

    /// A teacher's categories and fitness checks with their terms, and pending applications.
    /// A read model.
    pub fn teacher_status(&self, teacher_id: &str) -> Option<TeacherStatus> {
        self.attestation.status(teacher_id)
    }
}
