//! Entries signed by a key at or after its effective revocation, written before the revocation
//! was. A `keys.revoked` (or `keys.rotated`) may name an `effective_at` earlier than its own
//! position ("compromised since 1 August"); the rules refuse what the key signs from the
//! revocation's position on, but what it signed before stays in the log. The audit names each
//! such entry (a warning: the log itself is intact) so that no stolen key's forgery passes
//! unseen. Judged by the rules' own grant state, so only on a ledger with rules.
//!
//! With an `effective_at`, an entry is named when its `occurred_at` or its `recorded_at` is at
//! or after it. Without one the revocation takes effect at its own `occurred_at`, the time its
//! author signed it; entries the ledger recorded while it was on its way (in the same batch, a
//! few seconds) are not a retroactive claim, so there only `occurred_at` is compared.

use super::{AuditReport, Position};
use crate::rules::{Envelope, Rules};
use std::collections::HashMap;
use zachetka_formats::time::{parse_instant, Nanos};

/// What a key signed that the rules accepted: its seq, its `occurred_at` and its `recorded_at`
/// in nanoseconds (24 bytes an entry: the audit keeps one per entry until its key is revoked).
type Signed = (u64, i64, i64);

/// The entries each key signed so far, until the key is revoked.
#[derive(Default)]
pub(super) struct Revocations {
    signed: HashMap<String, Vec<Signed>>,
}

/// The stable code of the warning.
pub const SIGNED_AFTER_EFFECTIVE_REVOCATION: &str = "signed_after_effective_revocation";

impl Revocations {
    /// An entry the rules accepted (they have already applied it): a revocation names what its
    /// key signed at or after its effective time; then the entry is remembered by its signer.
    pub(super) fn accepted(&mut self, env: &Envelope<'_>, rules: &Rules, report: &mut AuditReport) {
        let field = match env.event_type {
            "keys.revoked" => "key",
            "keys.rotated" => "old_key",
            _ => "",
        };
        let revoked = env.data.get(field).and_then(serde_json::Value::as_str);
        if let Some(key) = revoked {
            let effective = rules.grant(key).and_then(|g| g.revoked_at);
            let explicit = env.data.get("effective_at").is_some_and(|v| !v.is_null());
            if let (Some(effective), Some(signed)) = (effective, self.signed.remove(key)) {
                let at = crate::time::format_rfc3339(secs(effective));
                let how = if explicit { "effective_at" } else { "occurred_at (it names no effective_at)" };
                for (seq, occurred, recorded) in signed {
                    let (by, when) = if Nanos::from(occurred) >= effective {
                        ("occurred_at", occurred)
                    } else if explicit && Nanos::from(recorded) >= effective {
                        ("recorded_at", recorded)
                    } else {
                        continue;
                    };
                    let message = format!(
                        "signed by {key}, whose {} at entry {} takes effect from its {how} {at}: this entry's {by} \
                         {} is at or after that, and it was written before the revocation",
                        env.event_type,
                        env.seq,
                        crate::time::format_rfc3339(secs(Nanos::from(when)))
                    );
                    report.warn(Position::Entry { seq }, SIGNED_AFTER_EFFECTIVE_REVOCATION, message);
                }
            }
        }
        let nanos = |n: Nanos| i64::try_from(n).unwrap_or(if n < 0 { i64::MIN } else { i64::MAX });
        let occurred = parse_instant(env.occurred_at).map_or(i64::MIN, nanos);
        let entry = (env.seq, occurred, nanos(env.recorded_at));
        match self.signed.get_mut(env.author) {
            Some(list) => list.push(entry),
            None => {
                self.signed.insert(env.author.to_owned(), vec![entry]);
            }
        }
    }
}

/// Whole seconds of an instant in nanoseconds (rounded down).
fn secs(at: Nanos) -> i64 {
    i64::try_from(at.div_euclid(1_000_000_000)).unwrap_or(i64::MAX)
}
