//! `zachetka token`: create, revoke and list the bearer tokens of readers (`zachetka::access`),
//! and the `--tokens` / `--public-reads` flags of `serve` and `demo`. A token's secret is printed
//! once, by `create`; the file keeps its SHA-256 only, and `list` never prints either. `create`
//! refuses an institution or territory scope the ledger's registry does not know. Not the
//! decision of who may read what (`zachetka::access`).

use super::write_stdout;
use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use zachetka::access::{self, Access, Role, Scope, TokenSecret};
use zachetka::store::postgres::PgStore;
use zachetka::store::sled::SledStore;
use zachetka::store::Store;

/// Where the token file is: `--tokens <file>`, else `<dir>/tokens.json`.
#[derive(Args)]
pub(super) struct TokenFile {
    /// Ledger directory; its token file is <dir>/tokens.json unless --tokens names another.
    #[arg(long, required_unless_present = "tokens")]
    dir: Option<PathBuf>,
    /// The token file, e.g. one file shared by the nodes of a PostgreSQL ledger.
    #[arg(long)]
    tokens: Option<PathBuf>,
}

impl TokenFile {
    /// The token file; with `--dir` alone, the directory must hold a ledger (a typo in it would
    /// otherwise fail on the token file's lock, which says nothing of the cause).
    fn path(&self) -> Result<PathBuf> {
        if let (None, Some(dir)) = (&self.tokens, &self.dir) {
            if !dir.join("ledger.key").exists() {
                anyhow::bail!("{} holds no ledger (no ledger.key); run `zachetka init` first", dir.display());
            }
        }
        Ok(tokens_path(self.dir.as_deref(), self.tokens.as_deref()))
    }
}

fn tokens_path(dir: Option<&Path>, tokens: Option<&Path>) -> PathBuf {
    match (tokens, dir) {
        (Some(t), _) => t.to_owned(),
        (None, Some(d)) => d.join(access::TOKENS_FILE),
        (None, None) => unreachable!("clap requires --dir or --tokens"),
    }
}

#[derive(Subcommand)]
pub(super) enum TokenAction {
    /// Create a token and print it (`zt_...`) on stdout, once: only its SHA-256 is kept. A
    /// running server accepts it from its next request.
    Create {
        #[command(flatten)]
        file: TokenFile,
        /// auditor (every read), read-service (read models; the raw log too when scoped to the
        /// region), staff (an institution's views, or a territory's for a queue operator),
        /// learner (one learner's views, for the learner or a parent).
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// Scope the token to an institution (staff, read-service).
        #[arg(long, group = "scope")]
        institution: Option<String>,
        /// Scope the token to a queue territory (staff as queue operator, read-service).
        #[arg(long, group = "scope")]
        territory: Option<String>,
        /// Scope the token to a learner (learner).
        #[arg(long, group = "scope")]
        learner: Option<String>,
        /// A note for `token list` (who holds it, what for).
        #[arg(long, default_value = "")]
        label: String,
        /// Create it although the ledger has not registered the --institution (or any
        /// institution of the --territory): for one to be registered later. Without it such a
        /// scope, most likely a typo, is refused.
        #[arg(long)]
        allow_unknown_scope: bool,
    },
    /// Revoke a token by its id; a running server refuses it from its next request.
    Revoke {
        #[command(flatten)]
        file: TokenFile,
        /// The token's id (from `create` or `list`).
        id: String,
    },
    /// List tokens: id, role, scope, created, live or revoked, label. Never a secret or hash.
    List {
        #[command(flatten)]
        file: TokenFile,
    },
}

fn parse_role(s: &str) -> Result<Role, String> {
    Role::ALL.into_iter().find(|r| r.as_str() == s).ok_or_else(|| {
        let names: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
        format!("roles are {}", names.join(", "))
    })
}

/// Who may read (`serve`, `demo`).
#[derive(Args)]
pub(super) struct AccessFlags {
    /// The token file readers' bearer tokens are checked against (default <dir>/tokens.json);
    /// re-read when it changes, so `token create` and `token revoke` apply without a restart.
    #[arg(long)]
    tokens: Option<PathBuf>,
    /// Serve every read without a token (entries, streams, the feed), as before tokens existed.
    /// Off by default: entries hold minors' records. Only for a ledger with no personal data.
    #[arg(long, conflicts_with = "tokens")]
    public_reads: bool,
}

impl AccessFlags {
    pub(super) fn tokens_path(&self, dir: &Path) -> PathBuf {
        tokens_path(Some(dir), self.tokens.as_deref())
    }

    /// The server's access, announced on stderr. Over a shared store (`database`), a token
    /// file of the node's own directory is announced with a warning: a revocation there does
    /// not reach the other nodes.
    pub(super) fn access(&self, dir: &Path, database: bool) -> Result<Access> {
        if database && !self.public_reads && self.tokens.is_none() {
            tracing::warn!(
                tokens = %self.tokens_path(dir).display(),
                "the token file is this node's own: a token created or revoked here is not on the other nodes \
                 of the database; name one shared file with --tokens on every node"
            );
        }
        if self.public_reads {
            eprintln!("reads: PUBLIC (--public-reads): entries, streams and the feed need no token");
            return Ok(Access::public_reads());
        }
        let path = self.tokens_path(dir);
        let tokens = access::read_tokens(&path)?;
        let live = tokens.iter().filter(|t| !t.revoked).count();
        if tokens.is_empty() {
            eprintln!(
                "reads: no token in {} yet: only public endpoints answer until `zachetka token create` adds one",
                path.display()
            );
        } else {
            eprintln!("reads: {live} live tokens in {} (re-read when it changes)", path.display());
        }
        Ok(Access::tokens(path))
    }
}

/// Creates a token and returns its id and the secret's token string (shown once).
pub(super) fn create(path: &Path, role: Role, scope: Scope, label: &str) -> Result<(String, String)> {
    let secret = TokenSecret::generate();
    let now = zachetka::time::Clock::now_unix(&zachetka::time::SystemClock);
    let record = access::create_token(path, &secret, role, scope, label, now)?;
    Ok((record.id, secret.expose()))
}

/// What the ledger registered (`registry.institution_registered`): institution ids, and each
/// one's territory.
struct Registered {
    institutions: BTreeMap<String, String>,
    store: Arc<dyn Store>,
}

impl Registered {
    /// Read from the `registry` stream of the log, the one source of truth (the read models and
    /// the rule state are derived from it, and a snapshot may lag behind it). The store is
    /// opened read-only, as `audit` opens it: nothing in the directory changes, and a running
    /// server keeps its store (the embedded one is read from a private copy of its index).
    fn read(dir: Option<&Path>, db: Option<&str>) -> Result<Self> {
        let store: Arc<dyn Store> = match (db, dir) {
            (Some(url), _) => Arc::new(PgStore::open_read_only(url).context("couldn't open the PostgreSQL store")?),
            (None, Some(dir)) => {
                if !dir.join("ledger.key").exists() {
                    bail!(
                        "{} holds no ledger (no ledger.key) to check the scope against; pass --allow-unknown-scope to create the token unchecked",
                        dir.display()
                    );
                }
                Arc::new(
                    SledStore::open_read_only(&super::store_dir(dir))
                        .with_context(|| format!("couldn't read the store in {}", dir.display()))?,
                )
            }
            (None, None) => bail!(
                "the scope cannot be checked against the ledger without --dir or --database-url; give one, or pass --allow-unknown-scope to create the token unchecked"
            ),
        };
        let mut institutions = BTreeMap::new();
        for entry in stream_entries(store.as_ref(), "registry")? {
            let ev = &entry["event"];
            if ev["type"] != "registry.institution_registered" {
                continue;
            }
            if let (Some(id), Some(territory)) = (ev["data"]["institution"].as_str(), ev["data"]["territory"].as_str())
            {
                institutions.entry(id.to_owned()).or_insert_with(|| territory.to_owned());
            }
        }
        Ok(Registered { institutions, store })
    }

    /// Whether the log knows `learner`: their own stream has an entry, or an application names
    /// them (a child waiting for a kindergarten or the 1st grade has no stream of its own yet:
    /// the territories' queue streams and the schools' streams are read for it).
    fn knows_learner(&self, learner: &str) -> Result<bool> {
        if self.store.stream_head(&format!("learner/{learner}"))?.is_some() {
            return Ok(true);
        }
        let territories: BTreeSet<&String> = self.institutions.values().collect();
        let streams = territories
            .into_iter()
            .map(|t| format!("queue/kg/{t}"))
            .chain(self.institutions.keys().map(|i| format!("institution/{i}")));
        for stream in streams {
            for entry in stream_entries(self.store.as_ref(), &stream)? {
                if entry["event"]["data"]["learner"] == learner {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// Why `scope` names nothing the log knows, or `None` when it does.
    fn unknown(&self, scope: &Scope) -> Result<Option<String>> {
        let (what, id, known): (&str, &str, Vec<&str>) = match scope {
            Scope::Learner(l) if !self.knows_learner(l)? => {
                return Ok(Some(format!(
                    "learner {l} is not known to the ledger (no entry on learner/{l}, no kindergarten or 1st-grade application names them); check the id, or pass --allow-unknown-scope for a learner to be written later"
                )));
            }
            Scope::Institution(i) if !self.institutions.contains_key(i) => {
                ("institution", i, self.institutions.keys().map(String::as_str).collect())
            }
            Scope::Territory(t) if !self.institutions.values().any(|x| x == t) => {
                let known: BTreeSet<&str> = self.institutions.values().map(String::as_str).collect();
                ("territory", t, known.into_iter().collect())
            }
            _ => return Ok(None),
        };
        const SHOWN: usize = 10;
        let mut list = known.iter().take(SHOWN).copied().collect::<Vec<_>>().join(", ");
        if known.len() > SHOWN {
            list += &format!(" and {} more", known.len() - SHOWN);
        }
        if known.is_empty() {
            list = "none".into();
        }
        Ok(Some(format!(
            "{what} {id} is not registered in the ledger (registry.institution_registered; registered {what} ids: {list}); check the id (auditors read them at GET /v1/streams/registry), or pass --allow-unknown-scope for one to be registered later"
        )))
    }
}

/// The entries of `stream`, parsed, in stream order.
fn stream_entries(store: &dyn Store, stream: &str) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    for seq in store.stream_seqs(stream, 0, u64::MAX)? {
        for bytes in store.entries(seq, 1)? {
            out.push(
                serde_json::from_slice(&bytes).with_context(|| format!("couldn't parse entry {seq} of {stream}"))?,
            );
        }
    }
    Ok(out)
}

pub(super) fn run(action: TokenAction, db: Option<&str>) -> Result<()> {
    match action {
        TokenAction::Create { file, role, institution, territory, learner, label, allow_unknown_scope } => {
            let scope = match (institution, territory, learner) {
                (Some(i), _, _) => Scope::Institution(i),
                (_, Some(t), _) => Scope::Territory(t),
                (_, _, Some(l)) => Scope::Learner(l),
                _ => Scope::Region,
            };
            if let Err(e) = access::check_grant(role, &scope) {
                bail!("{e}");
            }
            if !matches!(scope, Scope::Region) {
                let unknown = if allow_unknown_scope {
                    // Checked when it can be, to say so; never refused.
                    Registered::read(file.dir.as_deref(), db).ok().and_then(|r| r.unknown(&scope).ok().flatten())
                } else {
                    Registered::read(file.dir.as_deref(), db)?.unknown(&scope)?
                };
                match unknown {
                    Some(why) if !allow_unknown_scope => bail!("{why}"),
                    Some(_) => eprintln!(
                        "{} is not known to the ledger yet; created as asked (--allow-unknown-scope)",
                        access::scope_text(&scope)
                    ),
                    None => {}
                }
            }
            let path = file.path()?;
            let (id, token) = create(&path, role, scope.clone(), &label)?;
            // Shown once: a token whose secret never reached its holder (stdout closed) is
            // revoked at once rather than left live with nobody knowing it.
            if let Err(e) = write_stdout(format_args!("{token}\n")) {
                access::revoke_token(&path, &id)?;
                return Err(e);
            }
            eprintln!(
                "created token {id} ({} of {}) in {}; it is shown only now",
                role.as_str(),
                access::scope_text(&scope),
                path.display()
            );
        }
        TokenAction::Revoke { file, id } => {
            let t = access::revoke_token(&file.path()?, &id)?;
            eprintln!("revoked token {} ({} of {})", t.id, t.role.as_str(), access::scope_text(&t.scope));
        }
        TokenAction::List { file } => {
            for t in access::read_tokens(&file.path()?)? {
                let state = if t.revoked { "revoked" } else { "live" };
                let scope = access::scope_text(&t.scope);
                write_stdout(format_args!(
                    "{}\t{}\t{scope}\t{}\t{state}\t{}\n",
                    t.id,
                    t.role.as_str(),
                    t.created_at,
                    t.label
                ))?;
            }
        }
    }
    Ok(())
}
