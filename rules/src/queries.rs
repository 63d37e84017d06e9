//! Read-model queries over the rule state: a learner's place in a kindergarten queue and a
//! teacher's categories. They decide nothing (no rule calls them); they sit here only because
//! they read state the rules already fold. Not rules: once `zachetka-projections` folds its own
//! queue and attestation read models, these move there.

use crate::{Rules, TeacherStatus};

impl Rules {
    /// A learner's position in a territory's kindergarten queue for an age group, with the reasons
    /// (tier and why, application time and number, who is ahead). `None` if the application is not
    /// waiting in that queue. A read model: "today" is the latest applied event's local date.
    pub fn queue_position(&self, territory: &str, age_group: &str, application_id: &str) -> Option<(u64, Vec<String>)> {
        self.queue.position(&self.config, self.today, territory, age_group, application_id)
    }

    /// A teacher's categories and fitness checks with their terms, and pending applications.
    /// A read model.
    pub fn teacher_status(&self, teacher_id: &str) -> Option<TeacherStatus> {
        self.attestation.status(teacher_id)
    }
}
