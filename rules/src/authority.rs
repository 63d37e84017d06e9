//! The authority chain: genesis, institutions, key grants, revocations and rotations, and the
//! one question every other rule asks first: may this key, at this time, act in this scope?
//! Not signature checking (the caller does that) and not the domain invariants.

use crate::time::Nanos;
use crate::vocabulary::{Event, KeysGranted};
use crate::{deny, instant_field, refuse, Applied, Ctx, RuleRefusal};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// A key's right: roles in a scope for a time, until revoked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub key: String,
    /// The pseudonymous person holding the key (quorums count distinct holders).
    pub holder: String,
    pub roles: Vec<String>,
    pub institution: Option<String>,
    pub class: Option<String>,
    pub territory: Option<String>,
    pub valid_from: Nanos,
    pub valid_until: Option<Nanos>,
    /// From this instant on the key has no right.
    pub revoked_at: Option<Nanos>,
    /// The ledger's time (`recorded_at`) of the entry that revoked or rotated the key: from that
    /// log position on, a revocation already in effect refuses every entry the key signs,
    /// whatever `occurred_at` it claims.
    pub revoked_recorded_at: Option<Nanos>,
    /// The key that granted it (the authority's own grant names itself).
    pub granted_by: String,
}

impl Grant {
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    fn scope_text(&self) -> String {
        let mut parts = Vec::new();
        if let Some(i) = &self.institution {
            parts.push(format!("institution {i}"));
        }
        if let Some(c) = &self.class {
            parts.push(format!("class {c}"));
        }
        if let Some(t) = &self.territory {
            parts.push(format!("territory {t}"));
        }
        if parts.is_empty() {
            "the whole region".into()
        } else {
            parts.join(", ")
        }
    }
}

/// A registered institution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Institution {
    pub id: String,
    pub kind: String,
    pub territory: String,
}

/// What an event needs of its author: one of `roles`, in this scope.
pub(crate) struct Need<'a> {
    pub roles: &'a [&'a str],
    pub institution: Option<&'a str>,
    pub class: Option<&'a str>,
    pub territory: Option<&'a str>,
}

impl<'a> Need<'a> {
    pub fn roles(roles: &'a [&'a str]) -> Self {
        Need { roles, institution: None, class: None, territory: None }
    }
    pub fn in_institution(roles: &'a [&'a str], institution: &'a str) -> Self {
        Need { institution: Some(institution), ..Need::roles(roles) }
    }
    pub fn in_class(roles: &'a [&'a str], institution: &'a str, class: &'a str) -> Self {
        Need { institution: Some(institution), class: Some(class), ..Need::roles(roles) }
    }
    pub fn in_territory(roles: &'a [&'a str], territory: &'a str) -> Self {
        Need { territory: Some(territory), ..Need::roles(roles) }
    }

    fn matched_by(&self, g: &Grant) -> bool {
        if !self.roles.iter().any(|r| g.has_role(r)) {
            return false;
        }
        if g.has_role("authority") && self.roles.contains(&"authority") {
            return true;
        }
        // Written as matches, not `Option::is_none_or`, to keep the workspace's rust-version 1.80.
        let inst_ok = match self.institution {
            None => true,
            Some(i) => g.institution.as_deref() == Some(i),
        };
        let class_ok = match (self.class, g.class.as_deref()) {
            (Some(c), Some(gc)) => gc == c,
            _ => true,
        };
        let terr_ok = match self.territory {
            None => true,
            Some(t) => g.territory.as_deref() == Some(t),
        };
        inst_ok && class_ok && terr_ok
    }

    fn text(&self) -> String {
        let mut s = format!("one of roles [{}]", self.roles.join(", "));
        if let Some(i) = self.institution {
            s += &format!(" in institution {i}");
        }
        if let Some(c) = self.class {
            s += &format!(", class {c}");
        }
        if let Some(t) = self.territory {
            s += &format!(" in territory {t}");
        }
        s
    }
}

#[derive(Serialize, Deserialize)]
pub(crate) struct Authority {
    pub authority: String,
    /// The authority key the ledger was created with (`authority` changes by `keys.rotated`;
    /// this never does): a saved state is loaded only for the same genesis key.
    pub genesis: String,
    pub established: bool,
    /// The ledger's origin (its log and checkpoint name), fixed at `init`: `ledger.established`
    /// must name it, so a genesis signed for one ledger cannot establish another.
    pub origin: String,
    #[serde(with = "crate::state::sorted_map")]
    pub institutions: HashMap<String, Institution>,
    #[serde(with = "crate::state::sorted_map")]
    pub grants: HashMap<String, Grant>,
}

impl Authority {
    pub fn new(origin: &str, authority_did: &str) -> Self {
        let genesis = Grant {
            key: authority_did.to_owned(),
            holder: "authority".into(),
            roles: vec!["authority".into()],
            institution: None,
            class: None,
            territory: None,
            valid_from: Nanos::MIN,
            valid_until: None,
            revoked_at: None,
            revoked_recorded_at: None,
            granted_by: authority_did.to_owned(),
        };
        Self {
            authority: authority_did.to_owned(),
            genesis: authority_did.to_owned(),
            established: false,
            origin: origin.to_owned(),
            institutions: HashMap::new(),
            grants: HashMap::from([(authority_did.to_owned(), genesis)]),
        }
    }

    /// The key's grant if it is in force at `at`: granted, not revoked, within its validity.
    pub fn valid_grant(&self, key: &str, at: Nanos) -> Result<&Grant, RuleRefusal> {
        let Some(g) = self.grants.get(key) else {
            return deny("key_unknown", format!("key {key} was never granted"));
        };
        if g.revoked_at.is_some_and(|r| r <= at) {
            return deny("key_revoked", format!("key {key} was revoked before this event"));
        }
        if at < g.valid_from {
            return deny("key_not_yet_valid", format!("key {key} is not valid yet at this time"));
        }
        if g.valid_until.is_some_and(|u| at >= u) {
            return deny("key_expired", format!("key {key} expired before this event"));
        }
        Ok(g)
    }

    /// Revocation by log position: once a key's revocation (or rotation) is in the log and in
    /// effect by the ledger's time (its `effective_at`, or its `occurred_at`, is not after the
    /// `recorded_at` of the revoking entry or of this one), no later entry signed by the key is
    /// accepted, whatever `occurred_at` it claims. A revocation scheduled for later takes effect
    /// when the ledger's time reaches it.
    pub fn check_not_revoked_in_log(&self, key: &str, recorded_at: Nanos) -> Result<(), RuleRefusal> {
        let Some(g) = self.grants.get(key) else { return Ok(()) };
        let (Some(effective), Some(logged)) = (g.revoked_at, g.revoked_recorded_at) else { return Ok(()) };
        if effective <= logged.max(recorded_at) {
            return deny(
                "key_revoked",
                format!(
                    "key {key} was revoked (effective {}) by an entry recorded at {}: no later entry signed by it \
                     is accepted, whatever its occurred_at",
                    crate::format_instant(effective),
                    crate::format_instant(logged)
                ),
            );
        }
        Ok(())
    }

    /// The author's grant if it is in force and matches `need`.
    pub fn authorize(&self, key: &str, at: Nanos, event_type: &str, need: &Need) -> Result<&Grant, RuleRefusal> {
        self.authorize_any(key, at, event_type, std::slice::from_ref(need))
    }

    /// Like `authorize`, trying each alternative; the refusal names the first.
    pub fn authorize_any(&self, key: &str, at: Nanos, event_type: &str, needs: &[Need]) -> Result<&Grant, RuleRefusal> {
        let g = self.valid_grant(key, at)?;
        if needs.iter().any(|n| n.matched_by(g)) {
            return Ok(g);
        }
        let wanted: Vec<String> = needs.iter().map(Need::text).collect();
        deny(
            "not_authorized",
            format!(
                "key {key} holds [{}] in {}; {event_type} needs {}",
                g.roles.join(", "),
                g.scope_text(),
                wanted.join(" or ")
            ),
        )
    }

    /// The grant of `key` if it is in force at `at` and matches `need` (for keys named in data:
    /// commission members, the authoriser of a correction).
    pub fn holds(&self, key: &str, at: Nanos, need: &Need) -> Option<&Grant> {
        let g = self.valid_grant(key, at).ok()?;
        need.matched_by(g).then_some(g)
    }

    pub fn institution(&self, id: &str) -> Result<&Institution, RuleRefusal> {
        self.institutions
            .get(id)
            .ok_or_else(|| RuleRefusal::new("institution_unknown", format!("institution {id} is not registered")))
    }

    /// A registered institution of one of `kinds`.
    pub fn institution_of_kind(&self, id: &str, kinds: &[&str], what: &str) -> Result<&Institution, RuleRefusal> {
        let i = self.institution(id)?;
        if kinds.contains(&i.kind.as_str()) {
            Ok(i)
        } else {
            refuse(
                "institution_kind_mismatch",
                format!("{what} needs an institution of kind {}, {id} is a {}", kinds.join(" or "), i.kind),
            )
        }
    }

    pub fn apply(&mut self, a: &Applied, ev: &Event) {
        match ev {
            Event::LedgerEstablished(d) => {
                debug_assert_eq!(d.origin, self.origin, "applied only after a passing check");
                self.established = true;
            }
            Event::InstitutionRegistered(d) => {
                let i = Institution { id: d.institution.clone(), kind: d.kind.clone(), territory: d.territory.clone() };
                self.institutions.entry(d.institution.clone()).or_insert(i);
            }
            Event::KeysGranted(d) => {
                let (Some(from), until) = (
                    crate::time::parse_instant(&d.valid_from),
                    d.valid_until.as_deref().and_then(crate::time::parse_instant),
                ) else {
                    return;
                };
                let g = Grant {
                    key: d.key.clone(),
                    holder: d.holder.clone(),
                    roles: d.roles.clone(),
                    institution: d.scope.institution.clone(),
                    class: d.scope.class.clone(),
                    territory: d.scope.territory.clone(),
                    valid_from: from,
                    valid_until: until,
                    revoked_at: None,
                    revoked_recorded_at: None,
                    granted_by: a.e.author.to_owned(),
                };
                self.grants.entry(d.key.clone()).or_insert(g);
            }
            Event::KeysRevoked(d) => {
                let when = d.effective_at.as_deref().and_then(crate::time::parse_instant).unwrap_or(a.at);
                if let Some(g) = self.grants.get_mut(&d.key) {
                    g.revoked_at.get_or_insert(when);
                    g.revoked_recorded_at.get_or_insert(a.e.recorded_at);
                }
            }
            Event::KeysRotated(d) => {
                let when = d.effective_at.as_deref().and_then(crate::time::parse_instant).unwrap_or(a.at);
                let Some(old) = self.grants.get_mut(&d.old_key) else {
                    return;
                };
                old.revoked_at.get_or_insert(when);
                old.revoked_recorded_at.get_or_insert(a.e.recorded_at);
                let mut new = old.clone();
                new.key = d.new_key.clone();
                new.revoked_at = None;
                new.revoked_recorded_at = None;
                new.valid_from = new.valid_from.max(when);
                new.granted_by = a.e.author.to_owned();
                if d.old_key == self.authority {
                    self.authority = d.new_key.clone();
                }
                self.grants.entry(d.new_key.clone()).or_insert(new);
            }
            _ => {}
        }
    }
}

const INSTITUTION_ROLES: &[&str] =
    &["institution_admin", "teacher", "class_teacher", "registrar", "commission_member", "commission_secretary"];

/// A key that may be granted: `did:key:z...`, passing the caller's strict check, not granted yet.
fn check_new_key(ctx: &Ctx, key: &str) -> Result<(), RuleRefusal> {
    if !key.starts_with("did:key:z") || key.len() < 12 || key.len() > 128 {
        return refuse("key_malformed", format!("{key} is not a did:key"));
    }
    if let Some(f) = ctx.rules.key_check {
        if let Err(why) = f(key) {
            return refuse("key_weak", format!("key {key} is refused: {why}"));
        }
    }
    if ctx.auth().grants.contains_key(key) {
        return refuse("key_already_granted", format!("key {key} was already granted (keys are never reused)"));
    }
    Ok(())
}

fn check_grant(ctx: &Ctx, d: &KeysGranted) -> Result<(), RuleRefusal> {
    let auth = ctx.auth();
    let granter = auth.valid_grant(ctx.e.author, ctx.at)?;
    if d.roles.is_empty() {
        return refuse("event_malformed", "data.roles is empty");
    }
    if let Some(r) = d.roles.iter().find(|r| !ctx.cfg().roles.contains(r)) {
        return refuse("role_unknown", format!("role {r} is not a role of this region"));
    }
    if d.roles.iter().any(|r| r == "authority") {
        return deny(
            "not_authorized",
            "the authority role is never granted; the authority key changes only by keys.rotated",
        );
    }
    let scope = &d.scope;
    let institution = match &scope.institution {
        Some(i) => Some(auth.institution(i)?),
        None => None,
    };
    if institution.is_none() && scope.territory.is_none() {
        return refuse("scope_invalid", "a grant names an institution or a territory");
    }
    if scope.class.is_some() && institution.is_none() {
        return refuse("scope_invalid", "a class scope needs its institution");
    }
    if let Some(r) = d.roles.iter().find(|r| INSTITUTION_ROLES.contains(&r.as_str())) {
        if institution.is_none() {
            return refuse("scope_invalid", format!("role {r} needs an institution in its scope"));
        }
    }
    if d.roles.iter().any(|r| r == "class_teacher") && scope.class.is_none() {
        return refuse("scope_invalid", "role class_teacher needs a class in its scope");
    }
    if d.roles.iter().any(|r| r == "queue_operator") && scope.territory.is_none() {
        return refuse("scope_invalid", "role queue_operator needs a territory in its scope");
    }
    if d.roles.iter().any(|r| r.starts_with("commission_"))
        && institution.is_some_and(|i| i.kind != "attestation_commission")
    {
        return refuse("scope_invalid", "commission roles are granted within an attestation commission");
    }
    if !granter.has_role("authority") {
        let Some(admin_of) = granter.institution.as_deref().filter(|_| granter.has_role("institution_admin")) else {
            return deny(
                "not_authorized",
                format!("key {} may not grant keys: only the authority and institution admins may", ctx.e.author),
            );
        };
        if scope.institution.as_deref() != Some(admin_of) {
            return deny("not_authorized", format!("an admin of {admin_of} grants keys only within {admin_of}"));
        }
        if let Some(r) = d.roles.iter().find(|r| !ctx.cfg().admin_delegable_roles.contains(r)) {
            return deny(
                "not_authorized",
                format!("role {r} is granted by the authority, not by an institution admin"),
            );
        }
        if let (Some(t), Some(i)) = (&scope.territory, institution) {
            if *t != i.territory {
                return deny("not_authorized", format!("an admin of {admin_of} may not grant territory {t}"));
            }
        }
    }
    check_new_key(ctx, &d.key)?;
    let from = instant_field(&d.valid_from, "valid_from")?;
    if let Some(until) = &d.valid_until {
        if instant_field(until, "valid_until")? <= from {
            return refuse("validity_invalid", "data.valid_until is not after data.valid_from");
        }
    }
    Ok(())
}

/// May `author` revoke or rotate `target`? The authority, an admin of the target's institution
/// (for roles an admin may delegate), or the key itself.
fn may_manage(ctx: &Ctx, target: &Grant) -> Result<(), RuleRefusal> {
    let me = ctx.auth().valid_grant(ctx.e.author, ctx.at)?;
    if me.has_role("authority") || me.key == target.key {
        return Ok(());
    }
    let delegable = target.roles.iter().all(|r| ctx.cfg().admin_delegable_roles.contains(r));
    if me.has_role("institution_admin") && me.institution.is_some() && me.institution == target.institution && delegable
    {
        return Ok(());
    }
    deny("not_authorized", format!("key {} may not revoke or rotate key {}", ctx.e.author, target.key))
}

pub(crate) fn check(ctx: &Ctx, ev: &Event) -> Result<(), RuleRefusal> {
    let auth = ctx.auth();
    match ev {
        Event::LedgerEstablished(d) => {
            if auth.established {
                return refuse("ledger_already_established", "the ledger was already established");
            }
            auth.authorize(ctx.e.author, ctx.at, ctx.e.event_type, &Need::roles(&["authority"]))?;
            if d.authority != auth.authority {
                return deny(
                    "authority_mismatch",
                    format!("data.authority {} is not the ledger's authority {}", d.authority, auth.authority),
                );
            }
            if d.origin != auth.origin {
                return refuse(
                    "origin_mismatch",
                    format!("data.origin {:?} is not this ledger's origin {:?}", d.origin, auth.origin),
                );
            }
            Ok(())
        }
        Event::InstitutionRegistered(d) => {
            auth.authorize(ctx.e.author, ctx.at, ctx.e.event_type, &Need::roles(&["authority"]))?;
            if !ctx.cfg().institution_kinds.contains(&d.kind) {
                return refuse(
                    "institution_kind_unknown",
                    format!("institution kind {} is not one of {}", d.kind, ctx.cfg().institution_kinds.join(", ")),
                );
            }
            if auth.institutions.contains_key(&d.institution) {
                return refuse(
                    "institution_already_registered",
                    format!("institution {} is already registered", d.institution),
                );
            }
            Ok(())
        }
        Event::KeysGranted(d) => check_grant(ctx, d),
        Event::KeysRevoked(d) => {
            let Some(target) = auth.grants.get(&d.key) else {
                return refuse("revoked_key_unknown", format!("key {} was never granted", d.key));
            };
            if target.has_role("authority") {
                return deny("not_authorized", "the authority key is rotated (keys.rotated), never revoked");
            }
            may_manage(ctx, target)?;
            if target.revoked_at.is_some() {
                return refuse("key_already_revoked", format!("key {} is already revoked", d.key));
            }
            if let Some(t) = &d.effective_at {
                instant_field(t, "effective_at")?;
            }
            Ok(())
        }
        Event::KeysRotated(d) => {
            let Some(old) = auth.grants.get(&d.old_key) else {
                return refuse("rotated_key_unknown", format!("key {} was never granted", d.old_key));
            };
            may_manage(ctx, old)?;
            if old.has_role("authority") && ctx.e.author != old.key {
                return deny("not_authorized", "only the authority key rotates itself");
            }
            if old.revoked_at.is_some() {
                return refuse("key_already_revoked", format!("key {} is already revoked", d.old_key));
            }
            check_new_key(ctx, &d.new_key)?;
            if let Some(t) = &d.effective_at {
                instant_field(t, "effective_at")?;
            }
            Ok(())
        }
        Event::CompletenessCommitted(d) => check_commitment(ctx, d),
        _ => Ok(()),
    }
}

/// A completeness commitment (DESIGN 3.7) is the ledger's own statement: only the ledger key
/// writes it, and it commits to a prefix of the log that ends at or before its own position.
/// Whether its root is right is not decided here (that needs the whole log): the audit
/// recomputes it.
fn check_commitment(ctx: &Ctx, d: &crate::vocabulary::CompletenessCommitted) -> Result<(), RuleRefusal> {
    match ctx.rules.ledger_key() {
        Some(k) if k == ctx.e.author => {}
        Some(k) => {
            return deny(
                "not_authorized",
                format!("only the ledger key {k} writes {}; {} is not it", ctx.e.event_type, ctx.e.author),
            )
        }
        None => {
            return deny(
                "not_authorized",
                format!("these rules know no ledger key to accept {} from", ctx.e.event_type),
            )
        }
    }
    let lag_max = zachetka_projections::completeness::UP_TO_LAG_MAX;
    let lowest = ctx.e.seq.saturating_sub(lag_max);
    if d.up_to < 0 || (d.up_to as u64) > ctx.e.seq || (d.up_to as u64) < lowest {
        return refuse(
            "completeness_up_to_invalid",
            format!(
                "data.up_to {} must be within {lowest}..={} (at most {lag_max} before the commitment's own position)",
                d.up_to, ctx.e.seq
            ),
        );
    }
    if d.learners < 0 {
        return refuse("event_malformed", "data.learners must not be negative");
    }
    if zachetka_formats::keys::b64_decode(&d.map_root).is_none_or(|b| b.len() != 32) {
        return refuse("event_malformed", "data.map_root must be 32 bytes of standard base64");
    }
    Ok(())
}
