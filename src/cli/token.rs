//! `zachetka token`: create, revoke and list the bearer tokens of readers (`zachetka::access`),
//! and the `--tokens` / `--public-reads` flags of `serve` and `demo`. A token's secret is printed
//! once, by `create`; the file keeps its SHA-256 only, and `list` never prints either. Not the
//! decision of who may read what (`zachetka::access`).

use super::write_stdout;
use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use std::path::{Path, PathBuf};
use zachetka::access::{self, Access, Role, Scope, TokenSecret};

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
    fn path(&self) -> PathBuf {
        tokens_path(self.dir.as_deref(), self.tokens.as_deref())
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

    /// The server's access, announced on stderr.
    pub(super) fn access(&self, dir: &Path) -> Result<Access> {
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

pub(super) fn run(action: TokenAction) -> Result<()> {
    match action {
        TokenAction::Create { file, role, institution, territory, learner, label } => {
            let scope = match (institution, territory, learner) {
                (Some(i), _, _) => Scope::Institution(i),
                (_, Some(t), _) => Scope::Territory(t),
                (_, _, Some(l)) => Scope::Learner(l),
                _ => Scope::Region,
            };
            if let Err(e) = access::check_grant(role, &scope) {
                bail!("{e}");
            }
            let path = file.path();
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
            let t = access::revoke_token(&file.path(), &id)?;
            eprintln!("revoked token {} ({} of {})", t.id, t.role.as_str(), access::scope_text(&t.scope));
        }
        TokenAction::List { file } => {
            for t in access::read_tokens(&file.path())? {
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
