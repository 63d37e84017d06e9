//! Entries signed by a key at or after its effective revocation, written before the revocation
//! was. A `keys.revoked` (or `keys.rotated`) may name an `effective_at` earlier than its own
//! position ("compromised since 1 August"); the rules refuse what the key signs from the
//! revocation's position on, but what it signed before stays in the log. The audit names each
//! such entry (a warning: the log itself is intact) so that no stolen key's forgery passes
//! unseen. Judged by the rules' own grant state, so only on a ledger with rules.

use super::{AuditReport, Position};
use crate::rules::{Envelope, Rules};
use std::collections::HashMap;
use zachetka_formats::time::{parse_instant, Nanos};

/// What a key signed that the rules accepted: (seq, `occurred_at`, `recorded_at`), both in
/// nanoseconds (`occurred_at` `None` when it is no instant).
type Signed = (u64, Option<Nanos>, Nanos);

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
            if let (Some(effective), Some(signed)) = (effective, self.signed.remove(key)) {
                let effective_text = crate::time::format_rfc3339(secs(effective));
                for (seq, occurred, recorded) in signed {
                    let by = match occurred {
                        Some(o) if o >= effective => "occurred_at",
                        _ if recorded >= effective => "recorded_at",
                        _ => continue,
                    };
                    let message = format!(
                        "signed by {key}, whose {} at entry {} takes effect at {effective_text}: this entry's {by} \
                         is at or after that, and it was written before the revocation",
                        env.event_type, env.seq
                    );
                    report.warn(Position::Entry { seq }, SIGNED_AFTER_EFFECTIVE_REVOCATION, message);
                }
            }
        }
        let occurred = parse_instant(env.occurred_at);
        let entry = (env.seq, occurred, env.recorded_at);
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
