//! Who may read what: the read roles and their scopes (DESIGN 3.5, "Reads are scoped by role"),
//! the one pure decision of whether a principal may read a view of a scope ([`may_read`]) or the
//! raw entries ([`may_read_entries`]), and the operator-managed bearer tokens that name a
//! principal: their secrets, the token file (`<ledger dir>/tokens.json`), and a cache of it that
//! a running server re-reads when the file changes. Not HTTP (`crate::api` reads the header and
//! answers), and not the write side: writes are authorized by event signatures and the rules.

use crate::refusal::{Code, Refusal};
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
pub use zachetka_projections::Scope;

/// The default token file of a ledger directory.
pub const TOKENS_FILE: &str = "tokens.json";
/// What every token string starts with (so a leaked one is recognisable, e.g. by secret scanners).
pub const TOKEN_PREFIX: &str = "zt_";
/// Random bytes in a token.
pub const TOKEN_BYTES: usize = 32;
/// Characters of a token string: the prefix and unpadded base64url of [`TOKEN_BYTES`].
pub const TOKEN_CHARS: usize = TOKEN_PREFIX.len() + 43;
/// Largest token file read (checked before reading): about 40,000 tokens.
pub const TOKENS_FILE_BYTES_MAX: u64 = 16 << 20;
/// Longest label or scope id, in bytes.
pub const NAME_BYTES_MAX: usize = 128;
const FILE_VERSION: u32 = 1;

/// A reader's role. Each role holds one kind of scope ([`check_grant`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Every read (entries, entry tiles, streams, the feed, read models, learner records). Scope:
    /// the region.
    Auditor,
    /// A platform read service (e-diary, e-journal, queue pages, analytics). Scoped to the region:
    /// every read model and the raw log (entries, streams, the feed). Scoped to a territory or an
    /// institution: only the read-model views of that scope, no raw entries.
    ReadService,
    /// Institution staff: views of their institution, or of their territory for a queue operator.
    Staff,
    /// A learner or their parent: views of that learner.
    Learner,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Auditor, Role::ReadService, Role::Staff, Role::Learner];

    /// The role's name in the token file and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Auditor => "auditor",
            Role::ReadService => "read-service",
            Role::Staff => "staff",
            Role::Learner => "learner",
        }
    }
}

/// Who is reading: the holder of a valid token, or anyone at all when the operator turned on
/// public reads (`serve --public-reads`, the behaviour before tokens).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// `serve --public-reads`: every read is open; no token is looked at.
    PublicReads,
    /// The holder of the token `id` (never the secret).
    Token { id: String, role: Role, scope: Scope },
}

/// Whether `principal` may read a read-model view (or learner record) whose data is of `scope`.
/// Pure; the table test below lists every role against every kind of scope.
pub fn may_read(principal: &Principal, scope: &Scope) -> bool {
    let (role, held) = match principal {
        Principal::PublicReads => return true,
        Principal::Token { role, scope, .. } => (*role, scope),
    };
    match (role, held) {
        (Role::Auditor, _) => true,
        (Role::ReadService, Scope::Region) => true,
        // A scoped read service, staff and learners see exactly their own scope: a school's staff
        // do not see a learner's diary through it (which learners are whose is data, not scope),
        // nor the region's aggregates. A queue application is its applicant's and its
        // territory's: the territory's queue operator answers the applicant's questions.
        (Role::ReadService | Role::Staff | Role::Learner, held) => match scope {
            Scope::Application { learner, territory } => match held {
                Scope::Learner(l) => l == learner,
                Scope::Territory(t) => t == territory,
                _ => false,
            },
            _ => held == scope,
        },
    }
}

/// Whether `principal` may read raw entries: `/v1/entries`, `/tile/entries/...`, `/v1/streams/..`
/// and `/v1/feed`. Entries name every learner, so only the auditor and a read service of the
/// whole region may (and anyone under `--public-reads`).
pub fn may_read_entries(principal: &Principal) -> bool {
    match principal {
        Principal::PublicReads => true,
        Principal::Token { role, scope, .. } => {
            *role == Role::Auditor || (*role == Role::ReadService && *scope == Scope::Region)
        }
    }
}

/// [`may_read`] as a refusal: `forbidden` (403), naming the token but nothing of the data. The
/// projections handlers call this with the view's scope before they answer its body.
pub fn authorize_view(principal: &Principal, scope: &Scope) -> Result<(), Refusal> {
    if may_read(principal, scope) {
        return Ok(());
    }
    Err(Refusal::new(Code::Forbidden, format!("{} may not read data of this scope", describe(principal))))
}

/// [`may_read_entries`] as a refusal: `forbidden` (403).
pub fn authorize_entries(principal: &Principal) -> Result<(), Refusal> {
    if may_read_entries(principal) {
        return Ok(());
    }
    let message =
        format!("{} may not read raw entries (only an auditor or a region read service may)", describe(principal));
    Err(Refusal::new(Code::Forbidden, message))
}

fn describe(principal: &Principal) -> String {
    match principal {
        Principal::PublicReads => "anyone".into(),
        Principal::Token { id, role, scope } => format!("token {id} ({} of {})", role.as_str(), scope_text(scope)),
    }
}

/// A scope as people write it: `region`, `institution sch-001`, `territory luga`,
/// `learner 47-000001`.
pub fn scope_text(scope: &Scope) -> String {
    match scope {
        Scope::Region => "region".into(),
        Scope::Territory(t) => format!("territory {t}"),
        Scope::Institution(i) => format!("institution {i}"),
        Scope::Learner(l) => format!("learner {l}"),
        Scope::Application { learner, territory } => {
            format!("learner {learner}'s application in territory {territory}")
        }
    }
}

/// Why a role and a scope do not make a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct GrantError(String);

/// The role and scope combinations a token may hold: an auditor of the region; a read service
/// of the region, a territory or an institution; staff of an institution or (a queue operator)
/// a territory; a learner of themselves. Ids are 1 to [`NAME_BYTES_MAX`] bytes with no
/// whitespace or control characters.
pub fn check_grant(role: Role, scope: &Scope) -> Result<(), GrantError> {
    let id = match scope {
        Scope::Application { .. } => return Err(GrantError("a token holds no application's scope".into())),
        Scope::Region => None,
        Scope::Territory(x) | Scope::Institution(x) | Scope::Learner(x) => Some(x),
    };
    if let Some(id) = id {
        if id.is_empty() || id.len() > NAME_BYTES_MAX || id.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(GrantError(format!(
                "a scope id is 1 to {NAME_BYTES_MAX} bytes without whitespace or control characters, not {id:?}"
            )));
        }
    }
    let ok = matches!(
        (role, scope),
        (Role::Auditor, Scope::Region)
            | (Role::ReadService, Scope::Region | Scope::Territory(_) | Scope::Institution(_))
            | (Role::Staff, Scope::Institution(_) | Scope::Territory(_))
            | (Role::Learner, Scope::Learner(_))
    );
    if ok {
        return Ok(());
    }
    let wants = match role {
        Role::Auditor => "an auditor reads the whole region: give no --institution, --territory or --learner",
        Role::ReadService => "a read service is scoped to the region (no flag), a --territory or an --institution",
        Role::Staff => "staff are scoped to an --institution (or a --territory, for a queue operator)",
        Role::Learner => "a learner token is scoped to a --learner",
    };
    let role = role.as_str();
    let article = if role.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" };
    Err(GrantError(format!("{article} {role} token cannot be scoped to {}: {wants}", scope_text(scope))))
}

/// A token's secret: 32 random bytes, shown once as `zt_<base64url>`. Only its SHA-256 is
/// stored. Its `Debug` does not print it.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenSecret([u8; TOKEN_BYTES]);

impl std::fmt::Debug for TokenSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSecret(..)")
    }
}

impl TokenSecret {
    /// A fresh secret from the operating system's generator.
    pub fn generate() -> Self {
        Self::generate_with(&mut rand_core::OsRng)
    }

    /// A fresh secret from `rng` (tests inject theirs).
    pub fn generate_with(rng: &mut (impl rand_core::RngCore + rand_core::CryptoRng)) -> Self {
        let mut b = [0u8; TOKEN_BYTES];
        rng.fill_bytes(&mut b);
        Self(b)
    }

    pub fn from_bytes(bytes: [u8; TOKEN_BYTES]) -> Self {
        Self(bytes)
    }

    /// The secret of a token string, or `None` when it is not `zt_` and 43 base64url characters.
    /// The length is checked before anything is decoded.
    pub fn parse(text: &str) -> Option<Self> {
        if text.len() != TOKEN_CHARS {
            return None;
        }
        let b64 = text.strip_prefix(TOKEN_PREFIX)?;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(b64).ok()?;
        Some(Self(bytes.try_into().ok()?))
    }

    /// The token string a holder presents: `zt_<base64url>`.
    pub fn expose(&self) -> String {
        format!("{TOKEN_PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self.0))
    }

    /// SHA-256 of the secret: what the token file keeps. A high-entropy secret needs no slow
    /// password hash: no guess list gets anywhere near 2^256.
    pub fn digest(&self) -> [u8; 32] {
        Sha256::digest(self.0).into()
    }
}

/// One token as the token file keeps it: never the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRecord {
    /// Names the token in `token list`, `token revoke` and logs: 12 hex digits of a hash of the
    /// digest (it tells nothing of the secret).
    pub id: String,
    pub label: String,
    pub role: Role,
    #[serde(with = "scope_repr")]
    pub scope: Scope,
    /// SHA-256 of the secret, 64 lowercase hex digits.
    pub sha256: String,
    /// RFC 3339, UTC.
    pub created_at: String,
    pub revoked: bool,
}

/// The scope in the token file: `{"kind":"institution","id":"sch-001"}`, the shape
/// `zachetka_projections::Scope` serializes to.
mod scope_repr {
    use super::Scope;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    #[serde(tag = "kind", content = "id", rename_all = "snake_case", deny_unknown_fields)]
    enum Repr {
        Region,
        Territory(String),
        Institution(String),
        Learner(String),
    }

    pub(super) fn serialize<S: Serializer>(scope: &Scope, s: S) -> Result<S::Ok, S::Error> {
        scope.serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Scope, D::Error> {
        Ok(match Repr::deserialize(d)? {
            Repr::Region => Scope::Region,
            Repr::Territory(x) => Scope::Territory(x),
            Repr::Institution(x) => Scope::Institution(x),
            Repr::Learner(x) => Scope::Learner(x),
        })
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenFileRepr {
    version: u32,
    tokens: Vec<TokenRecord>,
}

/// What went wrong with the token file or a token command.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error("couldn't {action} {}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("token file {} is not valid: {reason}", path.display())]
    Malformed { path: PathBuf, reason: String },
    #[error("token file {} is larger than {TOKENS_FILE_BYTES_MAX} bytes", path.display())]
    TooLarge { path: PathBuf },
    #[error(transparent)]
    Grant(#[from] GrantError),
    #[error("a label is at most {NAME_BYTES_MAX} bytes without control characters")]
    Label,
    #[error("no token {0} in the token file")]
    UnknownToken(String),
    #[error("token {0} is already in the token file")]
    DuplicateToken(String),
}

fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> AccessError + 'a {
    move |source| AccessError::Io { action, path: path.to_owned(), source }
}

/// The tokens of a token file, revoked ones included (they stay listed, as a record).
pub fn read_tokens(path: &Path) -> Result<Vec<TokenRecord>, AccessError> {
    Ok(load(path)?.map(|(_, t)| t).unwrap_or_default())
}

/// Creates a token for `secret` (the caller shows `secret.expose()` once; the file keeps only
/// its SHA-256), under the file lock, and writes the file atomically.
pub fn create_token(
    path: &Path,
    secret: &TokenSecret,
    role: Role,
    scope: Scope,
    label: &str,
    created_at_unix: i64,
) -> Result<TokenRecord, AccessError> {
    check_grant(role, &scope)?;
    if label.len() > NAME_BYTES_MAX || label.chars().any(char::is_control) {
        return Err(AccessError::Label);
    }
    let digest = secret.digest();
    let id_hash = Sha256::new().chain_update(b"zachetka/token-id\n").chain_update(digest).finalize();
    let record = TokenRecord {
        id: hex(&id_hash[..6]),
        label: label.to_owned(),
        role,
        scope,
        sha256: hex(&digest),
        created_at: crate::time::format_rfc3339(created_at_unix),
        revoked: false,
    };
    update(path, |tokens| {
        if tokens.iter().any(|t| t.id == record.id || t.sha256 == record.sha256) {
            return Err(AccessError::DuplicateToken(record.id.clone()));
        }
        tokens.push(record.clone());
        Ok(())
    })?;
    Ok(record)
}

/// Revokes token `id` (kept in the file, marked revoked); a running server refuses it from its
/// next request. Revoking a revoked token changes nothing and is not an error.
pub fn revoke_token(path: &Path, id: &str) -> Result<TokenRecord, AccessError> {
    update(path, |tokens| {
        let t = tokens.iter_mut().find(|t| t.id == id).ok_or_else(|| AccessError::UnknownToken(id.to_owned()))?;
        t.revoked = true;
        Ok(t.clone())
    })
}

/// Read, change and write the token file under an exclusive lock on `<file>.lock`, so that two
/// token commands never lose each other's change. The write is atomic: a temporary file (0600)
/// written and fsynced, renamed over the file, then the directory fsynced. A crash leaves the
/// old file or the new one, never a mix; a server reading meanwhile sees one or the other.
fn update<T>(
    path: &Path,
    change: impl FnOnce(&mut Vec<TokenRecord>) -> Result<T, AccessError>,
) -> Result<T, AccessError> {
    use fs2::FileExt;
    let lock_path = sibling(path, ".lock");
    let lock = private_file(&lock_path, false).map_err(io_err("open the lock file", &lock_path))?;
    lock.lock_exclusive().map_err(io_err("lock", &lock_path))?;
    let mut tokens = read_tokens(path)?;
    let out = change(&mut tokens)?;
    let mut text = serde_json::to_string_pretty(&TokenFileRepr { version: FILE_VERSION, tokens })
        .expect("token records serialize");
    text.push('\n');
    let tmp = sibling(path, ".tmp");
    let mut f = private_file(&tmp, true).map_err(io_err("create", &tmp))?;
    f.write_all(text.as_bytes()).and_then(|()| f.sync_all()).map_err(io_err("write", &tmp))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(io_err("rename onto", path))?;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io_err("fsync", dir))?;
    // The lock is released when `lock` is dropped, after the rename is durable.
    drop(lock);
    Ok(out)
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Opens (`truncate`: creates or empties) a file readable by its owner only.
fn private_file(path: &Path, truncate: bool) -> std::io::Result<std::fs::File> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(truncate);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    opts.open(path)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The identity of one version of the token file: a rename (every write of [`update`]) gives a
/// new inode; an edit in place changes the length or a time. Compared, never interpreted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

impl Stamp {
    #[cfg(unix)]
    fn of(m: &std::fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        Stamp {
            dev: m.dev(),
            ino: m.ino(),
            len: m.len(),
            mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
            ctime_ns: i128::from(m.ctime()) * 1_000_000_000 + i128::from(m.ctime_nsec()),
        }
    }

    #[cfg(not(unix))]
    fn of(m: &std::fs::Metadata) -> Self {
        let ns = |t: std::io::Result<std::time::SystemTime>| {
            t.ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map_or(0, |d| d.as_nanos() as i128)
        };
        Stamp { dev: 0, ino: 0, len: m.len(), mtime_ns: ns(m.modified()), ctime_ns: ns(m.created()) }
    }
}

/// The token file's records and the stamp of the very file they were read from (`None`: there
/// is no file, so no token). The stamp comes from the open handle, so it never belongs to a
/// newer file than the bytes.
fn load(path: &Path) -> Result<Option<(Stamp, Vec<TokenRecord>)>, AccessError> {
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err("open", path)(e)),
    };
    let meta = f.metadata().map_err(io_err("stat", path))?;
    if meta.len() > TOKENS_FILE_BYTES_MAX {
        return Err(AccessError::TooLarge { path: path.to_owned() });
    }
    let mut text = Vec::with_capacity(meta.len() as usize);
    (&mut f).take(TOKENS_FILE_BYTES_MAX + 1).read_to_end(&mut text).map_err(io_err("read", path))?;
    if text.len() as u64 > TOKENS_FILE_BYTES_MAX {
        return Err(AccessError::TooLarge { path: path.to_owned() });
    }
    let malformed = |reason: String| AccessError::Malformed { path: path.to_owned(), reason };
    let file: TokenFileRepr = serde_json::from_slice(&text).map_err(|e| malformed(e.to_string()))?;
    if file.version != FILE_VERSION {
        return Err(malformed(format!("version {} (this build reads {FILE_VERSION})", file.version)));
    }
    for t in &file.tokens {
        check_grant(t.role, &t.scope).map_err(|e| malformed(format!("token {}: {e}", t.id)))?;
        if t.sha256.len() != 64 || !t.sha256.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return Err(malformed(format!("token {}: sha256 is not 64 lowercase hex digits", t.id)));
        }
    }
    Ok(Some((Stamp::of(&meta), file.tokens)))
}

/// A live (not revoked) token as the server matches it.
struct Live {
    digest: [u8; 32],
    id: String,
    role: Role,
    scope: Scope,
}

/// Equality of two SHA-256 digests in time independent of where they differ. Timing would at
/// most tell an attacker about a digest of their own guess, never about a secret (finding a
/// preimage is the hard part), so a fixed-length XOR fold suffices: no `subtle` needed.
fn digests_equal(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Where a server's readers are checked: the token file (re-read whenever it changes: one
/// `stat` per request, a microsecond) or, by the operator's explicit choice, nobody
/// (`--public-reads`). Cheap to clone; clones share one cache.
#[derive(Clone)]
pub struct Access(AccessInner);

#[derive(Clone)]
enum AccessInner {
    PublicReads,
    Tokens(Arc<TokenCache>),
}

struct TokenCache {
    /// `None`: no token file at all (every non-public read is refused).
    path: Option<PathBuf>,
    /// The stamp of the file the live tokens were read from (`None`: no file), and them.
    current: Mutex<(Option<Stamp>, Arc<Vec<Live>>)>,
}

impl Access {
    /// Readers hold tokens of the file at `path` (absent: no tokens yet).
    pub fn tokens(path: impl Into<PathBuf>) -> Self {
        Self::cache(Some(path.into()))
    }

    /// No token is valid: only public endpoints answer (what `api::router` serves).
    pub fn no_tokens() -> Self {
        Self::cache(None)
    }

    /// Every read is public, as before tokens existed. An operator's explicit choice
    /// (`serve --public-reads`), never a default.
    pub fn public_reads() -> Self {
        Access(AccessInner::PublicReads)
    }

    fn cache(path: Option<PathBuf>) -> Self {
        Access(AccessInner::Tokens(Arc::new(TokenCache { path, current: Mutex::new((None, Arc::new(Vec::new()))) })))
    }

    pub fn is_public_reads(&self) -> bool {
        matches!(self.0, AccessInner::PublicReads)
    }

    /// The principal of an `Authorization` header value (`None`: no header). A missing header,
    /// one that is not `Bearer <token>`, and an unknown or revoked token are `unauthorized`
    /// (alike: the answer tells nothing of which tokens exist); a token file that cannot be
    /// read is `unavailable` (fail closed: no read is let through on an old file by default).
    pub fn authenticate(&self, authorization: Option<&[u8]>) -> Result<Principal, Refusal> {
        let cache = match &self.0 {
            AccessInner::PublicReads => return Ok(Principal::PublicReads),
            AccessInner::Tokens(c) => c,
        };
        let unauthorized = |m: &str| Refusal::new(Code::Unauthorized, m);
        let Some(header) = authorization else {
            return Err(unauthorized("this read needs a bearer token: Authorization: Bearer zt_..."));
        };
        // RFC 7235: the scheme is case-insensitive; one space, then the token.
        let token = match header.split_at_checked(7) {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case(b"bearer ") => token,
            _ => return Err(unauthorized("the Authorization header is not `Bearer <token>`")),
        };
        let secret = std::str::from_utf8(token).ok().and_then(|t| TokenSecret::parse(t.trim()));
        let Some(secret) = secret else {
            return Err(unauthorized("the bearer token is not a zachetka token (zt_ and 43 base64url characters)"));
        };
        let digest = secret.digest();
        let live = cache.live()?;
        // Every live token is compared: the time taken depends on how many there are, not on
        // which one (if any) matches.
        let found = live.iter().fold(None, |hit, t| if digests_equal(&t.digest, &digest) { Some(t) } else { hit });
        match found {
            Some(t) => Ok(Principal::Token { id: t.id.clone(), role: t.role, scope: t.scope.clone() }),
            None => Err(unauthorized("the bearer token is unknown or revoked")),
        }
    }

    /// Whether `principal` still holds: its token is in the file and not revoked. A long read
    /// (the feed) asks this before each chunk, so a revocation ends it too.
    pub fn still_valid(&self, principal: &Principal) -> Result<bool, Refusal> {
        match (&self.0, principal) {
            (AccessInner::PublicReads, _) => Ok(true),
            (AccessInner::Tokens(_), Principal::PublicReads) => Ok(false),
            (AccessInner::Tokens(cache), Principal::Token { id, .. }) => Ok(cache.live()?.iter().any(|t| &t.id == id)),
        }
    }
}

impl TokenCache {
    /// The live tokens of the file as it is now: one `stat`; the file is re-read only when its
    /// stamp changed since the last read.
    fn live(&self) -> Result<Arc<Vec<Live>>, Refusal> {
        let Some(path) = &self.path else { return Ok(Arc::new(Vec::new())) };
        let unavailable = |e: AccessError| {
            tracing::error!(error = %crate::store::error_chain(&e), "token file unreadable: reads that need a token are refused");
            Refusal::new(Code::Unavailable, "couldn't read the token file; the operator must fix it")
        };
        let now = match std::fs::metadata(path) {
            Ok(m) => Some(Stamp::of(&m)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(unavailable(io_err("stat", path)(e))),
        };
        let mut current = self.current.lock().expect("token cache lock");
        if current.0 == now {
            return Ok(current.1.clone());
        }
        let (stamp, records) = match load(path).map_err(unavailable)? {
            Some((stamp, records)) => (Some(stamp), records),
            None => (None, Vec::new()),
        };
        let live: Vec<Live> = records
            .into_iter()
            .filter(|t| !t.revoked)
            .filter_map(|t| {
                let mut digest = [0u8; 32];
                for (i, d) in digest.iter_mut().enumerate() {
                    *d = u8::from_str_radix(t.sha256.get(2 * i..2 * i + 2)?, 16).ok()?;
                }
                Some(Live { digest, id: t.id, role: t.role, scope: t.scope })
            })
            .collect();
        *current = (stamp, Arc::new(live));
        Ok(current.1.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(role: Role, scope: Scope) -> Principal {
        Principal::Token { id: "t".into(), role, scope }
    }

    fn inst(x: &str) -> Scope {
        Scope::Institution(x.into())
    }
    fn terr(x: &str) -> Scope {
        Scope::Territory(x.into())
    }
    fn learner(x: &str) -> Scope {
        Scope::Learner(x.into())
    }

    /// Review s11 (ops finding 12): the refusal read "a auditor token".
    #[test]
    fn a_refused_grant_names_the_role_with_its_article() {
        let e = check_grant(Role::Auditor, &inst("sch-001")).unwrap_err().to_string();
        assert!(e.starts_with("an auditor token cannot be scoped to"), "{e}");
        let e = check_grant(Role::Staff, &Scope::Region).unwrap_err().to_string();
        assert!(e.starts_with("a staff token cannot be scoped to"), "{e}");
    }

    /// Every role with every kind of scope it may hold, against a view of every kind of scope
    /// (the holder's own, and another of the same kind). `Y` may read, `.` may not. Columns:
    /// region, territory luga, territory tosno, institution sch-001, institution sch-002,
    /// learner 47-000001, learner 47-000002, learner 47-000001's queue application in luga;
    /// then raw entries.
    #[test]
    fn who_may_read_what() {
        let views = [
            Scope::Region,
            terr("luga"),
            terr("tosno"),
            inst("sch-001"),
            inst("sch-002"),
            learner("47-000001"),
            learner("47-000002"),
            Scope::Application { learner: "47-000001".into(), territory: "luga".into() },
        ];
        let table: [(Principal, &str, bool); 9] = [
            (Principal::PublicReads, "YYYYYYYY", true),
            (token(Role::Auditor, Scope::Region), "YYYYYYYY", true),
            (token(Role::ReadService, Scope::Region), "YYYYYYYY", true),
            (token(Role::ReadService, terr("luga")), ".Y.....Y", false),
            (token(Role::ReadService, inst("sch-001")), "...Y....", false),
            (token(Role::Staff, inst("sch-001")), "...Y....", false),
            (token(Role::Staff, terr("luga")), ".Y.....Y", false),
            (token(Role::Learner, learner("47-000001")), ".....Y.Y", false),
            (token(Role::Learner, learner("47-000002")), "......Y.", false),
        ];
        for (principal, row, entries) in &table {
            let got: String = views.iter().map(|v| if may_read(principal, v) { 'Y' } else { '.' }).collect();
            assert_eq!(&got, row, "{principal:?}");
            assert_eq!(may_read_entries(principal), *entries, "{principal:?}");
            for v in &views {
                assert_eq!(authorize_view(principal, v).is_ok(), may_read(principal, v));
            }
            let refused = authorize_entries(principal);
            assert_eq!(refused.is_ok(), *entries);
            if let Err(r) = refused {
                assert_eq!((r.code, r.code.http_status()), (Code::Forbidden, 403));
            }
        }
        // Every role appears in the table with every scope kind it may hold.
        for role in Role::ALL {
            for s in [Scope::Region, terr("luga"), inst("sch-001"), learner("47-000001")] {
                let held = check_grant(role, &s).is_ok();
                let listed = table.iter().any(|(p, _, _)| {
                    matches!(p, Principal::Token { role: r, scope, .. }
                        if *r == role && std::mem::discriminant(scope) == std::mem::discriminant(&s))
                });
                assert_eq!(held, listed, "{role:?} with {s:?}");
            }
        }
    }

    #[test]
    fn grants_refuse_roles_with_scopes_they_cannot_hold() {
        let rows: [(Role, Scope, bool); 16] = [
            (Role::Auditor, Scope::Region, true),
            (Role::Auditor, terr("luga"), false),
            (Role::Auditor, inst("sch-001"), false),
            (Role::Auditor, learner("47-000001"), false),
            (Role::ReadService, Scope::Region, true),
            (Role::ReadService, terr("luga"), true),
            (Role::ReadService, inst("sch-001"), true),
            (Role::ReadService, learner("47-000001"), false),
            (Role::Staff, Scope::Region, false),
            (Role::Staff, terr("luga"), true),
            (Role::Staff, inst("sch-001"), true),
            (Role::Staff, learner("47-000001"), false),
            (Role::Learner, Scope::Region, false),
            (Role::Learner, terr("luga"), false),
            (Role::Learner, inst("sch-001"), false),
            (Role::Learner, learner("47-000001"), true),
        ];
        for (role, scope, ok) in rows {
            assert_eq!(check_grant(role, &scope).is_ok(), ok, "{role:?} {scope:?}");
        }
        for bad in ["", "a b", "x\n", &"x".repeat(NAME_BYTES_MAX + 1)] {
            assert!(check_grant(Role::Staff, &inst(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_token_string_round_trips_and_nothing_else_parses() {
        let s = TokenSecret::from_bytes([0xab; 32]);
        let text = s.expose();
        assert_eq!(text.len(), TOKEN_CHARS);
        assert!(text.starts_with("zt_"));
        assert_eq!(TokenSecret::parse(&text), Some(s.clone()));
        assert_eq!(format!("{s:?}"), "TokenSecret(..)");
        for bad in
            [&text[..TOKEN_CHARS - 1], &format!("xx_{}", &text[3..]), &format!("{text}A"), &text.replace('q', "+")]
        {
            assert_eq!(TokenSecret::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn digests_compare_equal_only_when_equal() {
        let a = [7u8; 32];
        for i in 0..32 {
            let mut b = a;
            b[i] ^= 1;
            assert!(!digests_equal(&a, &b));
        }
        assert!(digests_equal(&a, &a));
    }
}
