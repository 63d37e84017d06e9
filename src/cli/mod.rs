//! The `zachetka` command line: clap definitions of every verb and flag, and the dispatch;
//! the ledger's store and key files; stdout through one helper. Verbs with more to them live
//! beside it: `init`, `audit`, the demo driver (`demo`), readers' tokens (`token`), and the
//! HTTP client of `--server` (`client`). A thin shell over the library: not the place for a rule, a format or a route.

mod audit;
mod client;
mod demo;
mod import;
mod init;
mod rebuild;
mod record;
mod token;
mod vc;
mod witness;

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use init::{init, init_with};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use zachetka::keys::KeyPair;
use zachetka::ledger::{Ledger, Limits, OpenOptions};
use zachetka::store::postgres::PgStore;
use zachetka::store::sled::SledStore;
use zachetka::store::Store;

#[derive(Parser)]
#[command(name = "zachetka", version, about = "A region's education records as a signed, append-only, verifiable log")]
pub struct Cli {
    /// Keep the log in PostgreSQL instead of the embedded store in <dir>/store, e.g.
    /// `host=/run/postgresql dbname=zachetka` or `postgres://user@host/db`. Several servers may
    /// share one database; each needs the ledger's key (<dir>/ledger.key).
    #[arg(long, global = true, env = "ZACHETKA_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a ledger in a directory: its key, its store, and print its verifier key.
    Init {
        /// Ledger directory (created; must not hold a ledger).
        #[arg(long)]
        dir: PathBuf,
        /// The log origin, e.g. ru-47.edu.example (also the checkpoint key name).
        #[arg(long)]
        origin: String,
        /// The region authority's did:key. Without it, a new authority key is written to
        /// <dir>/authority.key (fine for trials; keep a real one off the server).
        #[arg(long)]
        authority_did: Option<String>,
        /// The rules the ledger enforces, fixed for its life: `education` (the education rules
        /// with the default region lists), a path to a region config JSON (see
        /// rules/region-default.json), or `none` for a bare signed log.
        #[arg(long, default_value = "education")]
        rules: String,
    },
    /// Generate an Ed25519 key file and print its did:key.
    Keygen {
        /// Where to write the key file (refuses to overwrite).
        #[arg(long)]
        out: PathBuf,
        /// Write the demo region's deterministic key of this role instead of a new one, to sign
        /// events against `zachetka demo` (never for anything real): `authority`, `teacher/<n>`,
        /// `admin/sch-001`, `registrar/sch-001`, `issuer/sch-001`, `operator/<territory>`,
        /// `issuer/olympiads`, `issuer/staff`, ... (README, "The demo's keys").
        #[arg(long, value_name = "LABEL")]
        demo: Option<String>,
        /// The demo ledger's origin (with --demo).
        #[arg(long, requires = "demo", default_value = "ru-47.edu.example")]
        origin: String,
    },
    /// Sign an event object (file or stdin); fills author, id and occurred_at when absent.
    Sign {
        /// The author's key file.
        #[arg(long)]
        key: PathBuf,
        /// The ledger origin to put in `ledger` when absent.
        #[arg(long)]
        ledger: Option<String>,
        /// The event JSON file; `-` or absent reads stdin.
        file: Option<PathBuf>,
    },
    /// Append signed events (JSON lines or arrays, files or stdin); print one receipt or refusal per line.
    Append {
        #[command(flatten)]
        target: Target,
        /// Files of signed events; none reads stdin.
        files: Vec<PathBuf>,
    },
    /// Import a legacy system's history (BARS, СОЛО; DOMAIN, Migration): records, one JSON object
    /// a line (`{"record","type","stream","occurred_at","data"}`), become events signed by a key
    /// holding the `migration` role, each naming its source (`data.migrated_from`). Idempotent:
    /// after an interruption run it again. Prints one receipt or refusal per input line; exits 1
    /// if any line was refused. See README, Migration.
    Import {
        #[command(flatten)]
        target: Target,
        /// The migration key's file (granted the `migration` role by the authority).
        #[arg(long)]
        key: PathBuf,
        /// The legacy system the records come from, e.g. BARS or СОЛО.
        #[arg(long)]
        system: String,
        /// Files of legacy records; none reads stdin.
        files: Vec<PathBuf>,
    },
    /// Cosign a checkpoint note by hand as a witness (C2SP tlog-cosignature, Ed25519; DESIGN
    /// 3.6): the manual, stateless tool. It checks the ledger's signature under --ledger-vkey,
    /// then prints the note with this witness's cosignature line added, timestamped now; it keeps
    /// no state, so it does not check consistency with what it cosigned before (`zachetka
    /// witness` does). The witness's key is a key file as `keygen` writes it; its verifier key
    /// (what verifiers pass to `verify --witness`) is printed by `--print-vkey`.
    Cosign {
        /// The witness's key file.
        #[arg(long)]
        key: PathBuf,
        /// The witness's name (a schema-less URL, e.g. witness.example.org/w1; no spaces, no +).
        #[arg(long)]
        name: String,
        /// The ledger's verifier key: the note must carry the ledger's valid signature.
        #[arg(long, required_unless_present = "print_vkey")]
        ledger_vkey: Option<String>,
        /// Print the witness's verifier key (<name>+<hex key id>+<base64(0x04 || key)>) and stop.
        #[arg(long, conflicts_with_all = ["ledger_vkey", "note", "out"])]
        print_vkey: bool,
        /// The checkpoint note (`-` reads stdin).
        #[arg(required_unless_present = "print_vkey")]
        note: Option<PathBuf>,
        /// Write the cosigned note here instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Run a witness (C2SP tlog-witness; DESIGN 3.6): serve `POST /add-checkpoint`, cosigning a
    /// ledger's checkpoint only if the ledger signed it and a consistency proof shows it extends
    /// the last one this witness cosigned for that ledger (so it refuses a split view or a
    /// rollback). What it cosigned is kept in --state, durable before it answers.
    Witness {
        /// The witness's key file (`keygen`).
        #[arg(long)]
        key: PathBuf,
        /// The witness's name (a schema-less URL, e.g. witness.example.org/w1; no spaces, no +).
        #[arg(long)]
        name: String,
        /// The witness's state directory (created; locked while the witness runs).
        #[arg(long)]
        state: PathBuf,
        /// A ledger's verifier key (its key name is the ledger's origin); repeatable.
        #[arg(long = "log", value_name = "LEDGER_VKEY", required = true)]
        logs: Vec<String>,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8048")]
        listen: String,
        #[command(flatten)]
        server: ServeFlags,
    },
    /// Print the latest checkpoint note.
    Checkpoint {
        #[command(flatten)]
        target: Target,
    },
    /// Print an inclusion or consistency proof as JSON.
    Prove {
        #[command(flatten)]
        target: Target,
        #[command(subcommand)]
        proof: ProofKind,
    },
    /// Serve the HTTP API over a ledger directory.
    Serve {
        /// Ledger directory (made by `zachetka init`).
        #[arg(long)]
        dir: PathBuf,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8047")]
        listen: String,
        #[command(flatten)]
        server: ServeFlags,
        #[command(flatten)]
        access: token::AccessFlags,
        #[command(flatten)]
        snapshots: SnapshotFlags,
        #[command(flatten)]
        completeness: CompletenessFlags,
        #[command(flatten)]
        witnesses: WitnessFlags,
    },
    /// Bearer tokens of readers (auditors, read services, staff, learners and parents): create,
    /// revoke, list. Reads of entries and read models need one; see README, Access.
    Token {
        #[command(subcommand)]
        action: token::TokenAction,
    },
    /// Rebuild what is derived from the log, from the log alone: the store's index (event ids,
    /// stream positions, checkpoint offsets; embedded store only) and every read model and the
    /// rule state, written as a fresh snapshot. For derived data you no longer trust; an
    /// unreadable index or snapshot is rebuilt on open by itself. Stop the server first.
    Rebuild {
        /// Ledger directory (made by `zachetka init`).
        #[arg(long)]
        dir: PathBuf,
    },
    /// Audit a ledger directory: signatures, hashes, roots, checkpoints, chains, indexes.
    /// Reads only: no byte of the ledger changes, and it runs on a copy or a stopped ledger.
    /// Exits 0 if clean, 1 if anything is wrong (naming every position), 2 if it could not run.
    Audit {
        /// Ledger directory (made by `zachetka init`).
        #[arg(long)]
        dir: PathBuf,
        /// Print the full report as JSON.
        #[arg(long)]
        json: bool,
        /// Also compare the read models a running server serves (their digests at the server's
        /// positions) with the models rebuilt from this log, e.g. http://127.0.0.1:8047.
        #[arg(long)]
        served_by: Option<String>,
        /// The bearer token for --served-by (an auditor's).
        #[arg(long, env = "ZACHETKA_TOKEN", hide_env_values = true)]
        token: Option<String>,
    },
    /// W3C VC 2.0 credentials (Data Integrity, eddsa-jcs-2022) issued by the ledger key as
    /// did:key: issue one, or verify one offline.
    Vc {
        #[command(subcommand)]
        action: vc::VcAction,
    },
    /// Personal data kept beside the log (names, birth dates): put, get, or erase a subject's
    /// record. Sealed per subject in <dir>/personal; never in the signed log.
    Personal {
        /// Ledger directory (made by `zachetka init`).
        #[arg(long)]
        dir: PathBuf,
        #[command(subcommand)]
        action: PersonalAction,
    },
    /// Export a learner's record bundle (record/FORMAT.md): every entry that concerns them,
    /// the withheld ones as position and hash only, with proofs in one checkpoint and the
    /// authority chain. Stop the server first (or use GET /v1/learners/<id>/record).
    Export {
        /// Ledger directory (made by `zachetka init`).
        #[arg(long)]
        dir: PathBuf,
        /// The learner's pseudonymous id.
        #[arg(long)]
        learner: String,
        /// Disclose only these (comma-separated): final-results, documents, achievements,
        /// enrolments, an event family with its dot (journal.) or an event type. Default: all.
        #[arg(long)]
        only: Option<String>,
        /// Write the bundle here instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Export a W3C VC 2.0 credential instead: issued by the ledger key as did:key, a
        /// DataIntegrityProof (eddsa-jcs-2022), the bundle as its evidence.
        #[arg(long)]
        vc: bool,
        /// A witness's verifier key (repeatable): its cosignature of the bundle's checkpoint, if
        /// `serve --witness` collected one (<dir>/cosignatures), is added to the bundle's
        /// checkpoint once checked against this key.
        #[arg(long = "witness", value_name = "VKEY")]
        witnesses: Vec<String>,
        /// Prove the bundle in the newest checkpoint those witnesses cosigned instead of the
        /// freshest (entries after it are left out), so that a verifier demanding their
        /// cosignatures accepts it. Needs --witness.
        #[arg(long, requires = "witnesses")]
        cosigned: bool,
    },
    /// Verify a record bundle offline under the ledger's verifier key: proofs, checkpoint,
    /// signatures, stream chains, every author's right, and (given a second checkpoint and a
    /// consistency proof) that both are one history. Exits 0 verified, 1 not, 2 could not run.
    Verify {
        /// The bundle file (`-` reads stdin).
        #[arg(required_unless_present = "receipt")]
        bundle: Option<PathBuf>,
        /// The ledger's verifier key (<origin>+<hex id>+<base64>), as `zachetka init` printed it.
        #[arg(long)]
        vkey: String,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// A second checkpoint note of the same ledger (older or newer than the bundle's).
        #[arg(long, requires = "consistency")]
        checkpoint: Option<PathBuf>,
        /// The consistency proof between the two sizes, as `zachetka prove consistency` prints it.
        #[arg(long, requires = "checkpoint")]
        consistency: Option<PathBuf>,
        /// Refuse a bundle that carries no completeness commitment (`completeness_missing`); one
        /// complete only up to its commitment's position is accepted, its report saying so.
        #[arg(long)]
        require_complete: bool,
        /// The most log positions the completeness commitment may leave uncovered, up to the
        /// bundle's checkpoint or the newer --checkpoint (`completeness_stale` beyond); the
        /// default is twice the ledger's default commitment spacing.
        #[arg(long, default_value_t = zachetka_record::MAX_UNCOVERED_DEFAULT)]
        max_uncovered: u64,
        /// A witness's verifier key (<name>+<hex key id>+<base64(0x04 || key)>, as `cosign
        /// --print-vkey` prints it); repeatable. The checkpoints' cosignatures by these are checked.
        #[arg(long = "witness", value_name = "VKEY", conflicts_with = "receipt")]
        witnesses: Vec<String>,
        /// How many distinct witnesses of --witness must have cosigned the bundle's checkpoint
        /// (and --checkpoint): `cosignatures_insufficient` below. Default: all of them.
        #[arg(long, requires = "witnesses")]
        witnesses_required: Option<usize>,
        /// The region config the ledger enforces (its JSON, as `init --rules` took it; a region
        /// publishes it): the authors' rights are replayed under it. Default: the default region
        /// lists (rules/region-default.json).
        #[arg(long, conflicts_with = "receipt")]
        region: Option<PathBuf>,
        /// Instead of a bundle, an append's receipt (its JSON) to check against the checkpoint of
        /// its tree size (`--receipt-checkpoint`, from `GET /v1/checkpoints/<tree_size>`) and its
        /// inclusion proof (`--proof`, from `GET /v1/proofs/inclusion`): that the entry is in the
        /// log as the receipt says, however far the head has moved since.
        #[arg(long, conflicts_with_all = ["bundle", "checkpoint", "consistency", "require_complete"],
              requires_all = ["receipt_checkpoint", "proof"])]
        receipt: Option<PathBuf>,
        /// The signed checkpoint note of the receipt's tree size.
        #[arg(long, requires = "receipt")]
        receipt_checkpoint: Option<PathBuf>,
        /// The inclusion proof of the receipt's seq in its tree size (JSON).
        #[arg(long, requires = "receipt")]
        proof: Option<PathBuf>,
        /// The entry's bytes (`/v1/entries`), to check they hash to the receipt's leaf hash.
        #[arg(long, requires = "receipt")]
        entry: Option<PathBuf>,
    },
    /// Build a demo region ledger (synthetic, deterministic) and serve it.
    Demo {
        /// Ledger directory (created if absent; reused if it holds the demo).
        #[arg(long, default_value = "demo-region")]
        dir: PathBuf,
        #[arg(long, default_value = "ru-47.edu.example")]
        origin: String,
        /// Learners in the region.
        #[arg(long, default_value_t = 2000)]
        learners: u64,
        /// Teachers in the region.
        #[arg(long, default_value_t = 150)]
        teachers: u64,
        /// Journal events to write.
        #[arg(long, default_value_t = 100_000)]
        events: u64,
        /// A region of published figures instead of `--learners`/`--teachers`: `leningrad-2021`
        /// (the 2021 monitoring: 174,876 students, 14,269 teachers, 202,217 assignments; the
        /// indicators computed from the log equal the table's numerators).
        #[arg(long, value_parser = ["leningrad-2021"])]
        region: Option<String>,
        /// Address to serve on after building.
        #[arg(long, default_value = "127.0.0.1:8047")]
        listen: String,
        /// Build only; do not serve.
        #[arg(long)]
        no_serve: bool,
        #[command(flatten)]
        server: ServeFlags,
        #[command(flatten)]
        access: token::AccessFlags,
        #[command(flatten)]
        snapshots: SnapshotFlags,
        #[command(flatten)]
        completeness: CompletenessFlags,
        #[command(flatten)]
        witnesses: WitnessFlags,
    },
}

/// Connection limits of `serve` (src/api/server.rs).
#[derive(Args)]
struct ServeFlags {
    /// Milliseconds from a request head's first byte to its end; slower clients are closed.
    #[arg(long, default_value_t = 10_000)]
    header_timeout_ms: u64,
    /// Milliseconds from a request's start to its body's end; slower bodies are answered
    /// `body_timeout` (408) and closed.
    #[arg(long, default_value_t = 60_000)]
    body_timeout_ms: u64,
    /// Milliseconds a connection may wait with no request in progress (new or kept alive).
    #[arg(long, default_value_t = 60_000)]
    idle_timeout_ms: u64,
    /// Milliseconds a response write may wait on a client that stopped reading (a feed left
    /// unread); then the connection is closed.
    #[arg(long, default_value_t = 60_000)]
    write_timeout_ms: u64,
    /// Most open connections, lowered to the open-file limit less 256 descriptors; at the cap
    /// a new connection closes the oldest idle one.
    #[arg(long, default_value_t = 4096)]
    connections_max: usize,
}

impl ServeFlags {
    fn config(&self) -> zachetka::api::server::ServerConfig {
        use std::time::Duration;
        zachetka::api::server::ServerConfig {
            header_timeout: Duration::from_millis(self.header_timeout_ms),
            body_timeout: Duration::from_millis(self.body_timeout_ms),
            idle_timeout: Duration::from_millis(self.idle_timeout_ms),
            write_timeout: Duration::from_millis(self.write_timeout_ms),
            connections_max: self.connections_max,
        }
    }
}

/// The witnesses `serve` asks to cosign its checkpoints (src/cosigning.rs).
#[derive(Args)]
struct WitnessFlags {
    /// A witness: its submission URL and its verifier key, `URL=VKEY` (e.g.
    /// `http://witness.example:8048=witness.example/w1+1a2b3c4d+BASE64`; the URL holds no `=`);
    /// repeatable. The newest checkpoint is submitted to each, and the cosignatures got are
    /// served with `/checkpoint`, `/v1/checkpoints/<size>` and record bundles.
    #[arg(long = "witness", value_name = "URL=VKEY")]
    witnesses: Vec<String>,
    /// Least milliseconds between two rounds of submissions to the witnesses.
    #[arg(long, default_value_t = 5_000)]
    witness_interval_ms: u64,
    /// Milliseconds each request to a witness may take.
    #[arg(long, default_value_t = 10_000)]
    witness_timeout_ms: u64,
}

impl WitnessFlags {
    fn config(&self) -> Result<Option<zachetka::cosigning::CosigningConfig>> {
        use std::time::Duration;
        if self.witnesses.is_empty() {
            return Ok(None);
        }
        let witnesses = (self.witnesses.iter())
            .map(|w| zachetka::cosigning::WitnessTarget::parse(w).map_err(|e| anyhow!("--witness: {e}")))
            .collect::<Result<Vec<_>>>()?;
        Ok(Some(zachetka::cosigning::CosigningConfig {
            witnesses,
            interval: Duration::from_millis(self.witness_interval_ms.max(1)),
            request_timeout: Duration::from_millis(self.witness_timeout_ms.max(1)),
            keep: zachetka::cosigning::COSIGNED_KEEP,
        }))
    }
}

/// When `serve` writes snapshots of the rule state and read models (into <dir>/snapshots), so
/// that a restart replays only the entries after the newest one.
#[derive(Args)]
struct SnapshotFlags {
    /// Write a snapshot once this many entries were applied since the last one.
    #[arg(long, default_value_t = zachetka::read::SnapshotPolicy::default().every_entries)]
    snapshot_every_entries: u64,
    /// Write a snapshot once this many seconds passed since the last one (if anything is new).
    #[arg(long, default_value_t = zachetka::read::SnapshotPolicy::default().every_seconds)]
    snapshot_every_secs: u64,
    /// Snapshots kept; older ones are removed after a new one is written.
    #[arg(long, default_value_t = zachetka::read::SnapshotPolicy::default().keep)]
    snapshots_keep: usize,
}

impl SnapshotFlags {
    fn options(&self, dir: &Path) -> zachetka::read::SnapshotOptions {
        let policy = zachetka::read::SnapshotPolicy {
            every_entries: self.snapshot_every_entries,
            every_seconds: self.snapshot_every_secs,
            keep: self.snapshots_keep,
        };
        zachetka::read::SnapshotOptions::in_ledger_dir(dir, policy).exiting_on_damage()
    }
}

/// When the ledger appends completeness commitments (DESIGN 3.7; README, Formats): signed by
/// the ledger key, each commits to every learner's chain of entries up to its position.
#[derive(Args)]
struct CompletenessFlags {
    /// Commit once this many entries (other than commitments) came since the last commitment
    /// (0: never by count).
    #[arg(long, default_value_t = zachetka::read::CompletenessPolicy::default().every_entries)]
    completeness_every_entries: u64,
    /// Commit once this many seconds passed since the last commitment, if anything came (0: never
    /// by time).
    #[arg(long, default_value_t = zachetka::read::CompletenessPolicy::default().every_seconds)]
    completeness_every_secs: u64,
}

impl CompletenessFlags {
    fn policy(&self) -> Option<zachetka::read::CompletenessPolicy> {
        let policy = zachetka::read::CompletenessPolicy {
            every_entries: self.completeness_every_entries,
            every_seconds: self.completeness_every_secs,
        };
        (policy.every_entries > 0 || policy.every_seconds > 0).then_some(policy)
    }
}

#[derive(Args)]
struct Target {
    /// A local ledger directory.
    #[arg(long, conflicts_with = "server")]
    dir: Option<PathBuf>,
    /// A running server's base URL, e.g. http://127.0.0.1:8047.
    #[arg(long)]
    server: Option<String>,
}

#[derive(Subcommand)]
enum PersonalAction {
    /// Store a subject's record: a JSON object of strings from a file (or stdin).
    Put { subject: String, file: Option<PathBuf> },
    /// Print a subject's record (nothing if none or erased).
    Get { subject: String },
    /// Erase a subject's record; the log and its proofs are untouched.
    Erase { subject: String },
}

#[derive(Subcommand)]
enum ProofKind {
    /// Inclusion of one leaf in a tree.
    Inclusion {
        #[arg(long)]
        leaf_index: u64,
        #[arg(long)]
        tree_size: u64,
    },
    /// Consistency of two tree sizes.
    Consistency {
        #[arg(long)]
        first: u64,
        #[arg(long)]
        second: u64,
    },
}

/// Exit status when stdout was closed under us: 128 + SIGPIPE, what shells report for a writer
/// whose reader left, so `set -o pipefail` scripts still see that not everything was printed.
pub const STDOUT_CLOSED_STATUS: u8 = 141;

/// Stdout was closed by its reader (a broken pipe): `main` exits quietly.
#[derive(Debug, thiserror::Error)]
#[error("stdout was closed")]
pub struct StdoutClosed;

/// Prints a command's output to stdout: through the locked handle, flushed before it returns (so
/// a line printed is a line delivered, e.g. an append receipt), and with a closed pipe turned into
/// `StdoutClosed` (a quiet exit in `main`) instead of `println!`'s panic. Every command's stdout
/// goes through here: `write_stdout(format_args!("{x}\n"))?`.
fn write_stdout(args: std::fmt::Arguments<'_>) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_fmt(args).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(StdoutClosed.into()),
        Err(e) => Err(anyhow::Error::new(e).context("couldn't write to stdout")),
    }
}

fn store_dir(dir: &Path) -> PathBuf {
    dir.join("store")
}

/// Makes the ledger directory and its `snapshots/` private (0700): snapshots hold every read
/// model, and a directory made before this rule (or by hand) may be world-readable. The store's
/// own directories are made private by its open.
fn make_ledger_dir_private(dir: &Path) -> Result<()> {
    for d in [dir.to_owned(), dir.join("snapshots")] {
        if d.is_dir() {
            zachetka::store::sled::make_private(&d)?;
        }
    }
    Ok(())
}

/// Takes the ledger directory's lock (`zachetka::store::lock_ledger_dir`) for a command that
/// writes in it, held until the returned file drops; `None` when `dir` does not exist (the
/// command's own open then says what is missing).
fn lock_ledger_dir(dir: &Path) -> Result<Option<std::fs::File>> {
    if !dir.is_dir() {
        return Ok(None);
    }
    Ok(Some(zachetka::store::lock_ledger_dir(dir)?))
}

/// The store of a ledger: PostgreSQL when a database is named, else the embedded store in `dir`.
fn open_store(dir: &Path, database: Option<&str>) -> Result<Arc<dyn Store>> {
    make_ledger_dir_private(dir)?;
    if let Some(url) = database {
        return Ok(Arc::new(PgStore::open_existing(url).context("couldn't open the PostgreSQL store")?));
    }
    if !dir.join("ledger.key").exists() {
        bail!("{} holds no ledger (no ledger.key); run `zachetka init` first", dir.display());
    }
    // Early: the index opens while the caller loads its snapshots; the ledger's open waits for
    // it (`Store::ready`) before serving anything.
    // The index's tier size (README, Operations): the crash tests seal tiers every few commits.
    let tier_entries = match std::env::var("ZACHETKA_INDEX_TIER_ENTRIES") {
        Ok(n) => n.parse().with_context(|| format!("ZACHETKA_INDEX_TIER_ENTRIES={n} is not a count of entries"))?,
        Err(_) => zachetka::store::sled::TIER_ENTRIES,
    };
    let store = SledStore::open_early_with(&store_dir(dir), tier_entries)
        .with_context(|| format!("couldn't open the store in {}", dir.display()))?;
    Ok(Arc::new(store))
}

/// Opens the ledger in `dir` for a short command: from the newest snapshot, writing none.
fn open_ledger(dir: &Path, database: Option<&str>) -> Result<Ledger> {
    open_ledger_with(dir, database, zachetka::read::SnapshotOptions::load_only(dir).exiting_on_damage(), None)
}

fn open_ledger_with(
    dir: &Path,
    database: Option<&str>,
    snapshots: zachetka::read::SnapshotOptions,
    completeness: Option<zachetka::read::CompletenessPolicy>,
) -> Result<Ledger> {
    let clock = Arc::new(zachetka::time::SystemClock);
    open_ledger_clocked(dir, database, snapshots, completeness, clock, zachetka::ledger::StoreClock::Checked)
}

/// `open_ledger_with` whose entries get their `recorded_at` from `clock`, checked against a
/// shared store's clock or not (`store_clock`: the demo writes history with a clock of its own).
fn open_ledger_clocked(
    dir: &Path,
    database: Option<&str>,
    snapshots: zachetka::read::SnapshotOptions,
    completeness: Option<zachetka::read::CompletenessPolicy>,
    clock: Arc<dyn zachetka::time::Clock>,
    store_clock: zachetka::ledger::StoreClock,
) -> Result<Ledger> {
    let key = read_key(&dir.join("ledger.key"))?;
    let store = open_store(dir, database)?;
    let options = OpenOptions {
        limits: Limits::default(),
        snapshots: Some(snapshots),
        completeness,
        store_clock,
        ..Default::default()
    };
    Ok(Ledger::open_opts(store, key, clock, options)?)
}

fn read_key(path: &Path) -> Result<KeyPair> {
    let text = std::fs::read_to_string(path).with_context(|| format!("couldn't read key file {}", path.display()))?;
    Ok(KeyPair::from_key_file(&text)?)
}

fn write_new_file(path: &Path, text: &str) -> Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(path).with_context(|| format!("couldn't create {} (it must not exist)", path.display()))?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    Ok(())
}

/// Calls `each` with the signed events of every JSON value in the inputs (a signed event or an
/// array of them), as soon as the value is complete: a pipe is appended as it flows.
fn for_each_input(files: &[PathBuf], mut each: impl FnMut(Vec<serde_json::Value>) -> Result<()>) -> Result<()> {
    let mut readers: Vec<Box<dyn std::io::Read>> = Vec::new();
    if files.is_empty() {
        readers.push(Box::new(std::io::stdin()));
    }
    for f in files {
        readers.push(Box::new(std::fs::File::open(f).with_context(|| format!("couldn't open {}", f.display()))?));
    }
    for r in readers {
        let values = serde_json::Deserializer::from_reader(std::io::BufReader::new(r)).into_iter::<serde_json::Value>();
        for v in values {
            match v.context("input is not a sequence of JSON values")? {
                serde_json::Value::Array(items) => each(items)?,
                v => each(vec![v])?,
            }
        }
    }
    Ok(())
}

pub fn run(cli: Cli) -> Result<std::process::ExitCode> {
    use std::process::ExitCode;
    let db = cli.database_url.as_deref();
    match cli.command {
        Command::Init { dir, origin, authority_did, rules } => {
            let vkey = init(&dir, db, &origin, authority_did, &rules)?;
            write_stdout(format_args!("{vkey}\n"))?;
        }
        Command::Keygen { out, demo, origin } => {
            let k = match demo {
                Some(label) => zachetka::demo::demo_key(&origin, &label),
                None => KeyPair::generate(),
            };
            write_new_file(&out, &k.to_key_file())?;
            write_stdout(format_args!("{}\n", k.did()))?;
        }
        Command::Sign { key, ledger, file } => {
            let key = read_key(&key)?;
            let text = match file.as_deref() {
                None => std::io::read_to_string(std::io::stdin())?,
                Some(p) if p == Path::new("-") => std::io::read_to_string(std::io::stdin())?,
                Some(p) => std::fs::read_to_string(p)?,
            };
            let mut event: serde_json::Value =
                zachetka::jcs::parse_strict(text.as_bytes()).context("event is not JSON")?;
            let obj = event.as_object_mut().ok_or_else(|| anyhow!("the event must be a JSON object"))?;
            obj.entry("author").or_insert_with(|| key.did().into());
            obj.entry("id").or_insert_with(|| zachetka::event::new_event_id().into());
            obj.entry("occurred_at").or_insert_with(|| {
                zachetka::time::format_rfc3339(zachetka::time::Clock::now_unix(&zachetka::time::SystemClock)).into()
            });
            if let Some(l) = ledger {
                obj.entry("ledger").or_insert_with(|| l.into());
            }
            if obj.get("author").and_then(|a| a.as_str()) != Some(key.did().as_str()) {
                bail!("event.author is not the did of the signing key");
            }
            let signed = zachetka::event::sign_event(&event, &key)?;
            write_stdout(format_args!("{signed}\n"))?;
        }
        Command::Append { target, files } => {
            let mut refused = 0u64;
            let mut print = |r: serde_json::Value| -> Result<()> {
                if r.get("code").is_some() {
                    refused += 1;
                }
                write_stdout(format_args!("{r}\n"))
            };
            match (target.dir, target.server) {
                (Some(dir), _) => {
                    let ledger = open_ledger(&dir, db)?;
                    let chunk_len = ledger.limits().request_len_max;
                    for_each_input(&files, |events| {
                        for chunk in events.chunks(chunk_len) {
                            // Printed only once durable: a receipt on stdout is an acknowledgement.
                            for r in ledger.append_blocking(chunk.to_vec()) {
                                print(match r {
                                    Ok(receipt) => serde_json::to_value(receipt)?,
                                    Err(refusal) => serde_json::to_value(refusal)?,
                                })?;
                            }
                        }
                        Ok(())
                    })?;
                }
                (None, Some(server)) => client::append(&server, &files, &mut print)?,
                (None, None) => bail!("say where to append: --dir or --server"),
            }
            if refused > 0 {
                return Ok(ExitCode::from(1));
            }
        }
        Command::Import { target, key, system, files } => return import::run(target, db, &key, &system, &files),
        Command::Checkpoint { target } => match (target.dir, target.server) {
            (Some(dir), _) => {
                let store = open_store(&dir, db)?;
                let (_, note) =
                    store.head()?.ok_or_else(|| anyhow!("the ledger has no checkpoint yet (no entries)"))?;
                write_stdout(format_args!("{}", String::from_utf8_lossy(&note)))?;
            }
            (None, Some(server)) => write_stdout(format_args!("{}", client::checkpoint(&server)?))?,
            (None, None) => bail!("say which ledger: --dir or --server"),
        },
        Command::Prove { target, proof } => {
            let (path, query) = match proof {
                ProofKind::Inclusion { leaf_index, tree_size } => {
                    ("inclusion", format!("leaf_index={leaf_index}&tree_size={tree_size}"))
                }
                ProofKind::Consistency { first, second } => ("consistency", format!("first={first}&second={second}")),
            };
            match (target.dir, target.server) {
                (Some(dir), _) => {
                    let ledger = open_ledger(&dir, db)?;
                    let out = match proof {
                        ProofKind::Inclusion { leaf_index, tree_size } => {
                            serde_json::to_string(&zachetka::merkle::InclusionProof {
                                leaf_index,
                                tree_size,
                                hashes: zachetka::merkle::hashes_to_b64(
                                    &ledger.prove_inclusion(leaf_index, tree_size)?,
                                ),
                            })?
                        }
                        ProofKind::Consistency { first, second } => {
                            serde_json::to_string(&zachetka::merkle::ConsistencyProof {
                                first,
                                second,
                                hashes: zachetka::merkle::hashes_to_b64(&ledger.prove_consistency(first, second)?),
                            })?
                        }
                    };
                    write_stdout(format_args!("{out}\n"))?;
                }
                (None, Some(server)) => {
                    let text = client::prove(&server, path, &query)?;
                    write_stdout(format_args!("{}\n", text.trim_end()))?;
                }
                (None, None) => bail!("say which ledger: --dir or --server"),
            }
        }
        Command::Serve { dir, listen, server, access, snapshots, completeness, witnesses } => {
            let _dir_lock = lock_ledger_dir(&dir)?;
            let witnesses = witnesses.config()?;
            let ledger = open_ledger_with(&dir, db, snapshots.options(&dir), completeness.policy())?;
            let cosigning = open_cosigning(&ledger, &dir, witnesses)?;
            serve(ledger, &listen, server.config(), access.access(&dir, db.is_some())?, cosigning)?
        }
        Command::Witness { key, name, state, logs, listen, server } => {
            witness::serve(&key, &name, &state, &logs, &listen, server.config())?
        }
        Command::Token { action } => token::run(action, db)?,
        Command::Rebuild { dir } => {
            let _dir_lock = lock_ledger_dir(&dir)?;
            let store: Arc<dyn Store> = match db {
                // PostgreSQL keeps its indexes in the database: only derived state is rebuilt.
                Some(_) => open_store(&dir, db)?,
                None => {
                    make_ledger_dir_private(&dir)?;
                    let store = SledStore::rebuild_index(&store_dir(&dir))
                        .with_context(|| format!("couldn't rebuild the index in {}", dir.display()))?;
                    let size = store.head()?.map(|(h, _)| h.tree_size).unwrap_or(0);
                    eprintln!("rebuilt the index of {size} entries from the log");
                    Arc::new(store)
                }
            };
            rebuild::rebuild_read_models(&*store, &dir)?;
        }
        Command::Audit { dir, json, served_by, token } => {
            let served = match served_by {
                Some(server) => Some((server.clone(), client::served_digests(&server, token.as_deref())?)),
                None => None,
            };
            return audit::audit(&dir, db, json, served);
        }
        Command::Vc { action } => return vc::run(action),
        Command::Personal { dir, action } => {
            let store = zachetka::personal::PersonalStore::open(&dir.join("personal"))?;
            match action {
                PersonalAction::Put { subject, file } => {
                    let text = match file {
                        Some(p) => std::fs::read_to_string(p)?,
                        None => std::io::read_to_string(std::io::stdin())?,
                    };
                    let record: serde_json::Value = serde_json::from_str(&text).context("the record is not JSON")?;
                    store.put(&subject, &record)?;
                }
                PersonalAction::Get { subject } => match store.get(&subject)? {
                    Some(r) => write_stdout(format_args!("{r}\n"))?,
                    None => return Ok(ExitCode::from(1)),
                },
                PersonalAction::Erase { subject } => {
                    let had = store.erase(&subject)?;
                    eprintln!("{}", if had { "erased" } else { "nothing to erase" });
                }
            }
        }
        Command::Export { dir, learner, only, out, vc, witnesses, cosigned } => {
            let keys = witness::Demand::parse(&witnesses, None)?.keys;
            let ledger = open_ledger(&dir, db)?;
            let issuer = if vc { Some(read_key(&dir.join("ledger.key"))?) } else { None };
            let cosigning =
                (!keys.is_empty()).then(|| zachetka::cosigning::Cosigning::read_only(ledger.clone(), &dir, keys));
            let at = if cosigned { zachetka::record::BundleAt::Cosigned } else { zachetka::record::BundleAt::Applied };
            let bundle_of =
                record::Export { learner: &learner, only: only.as_deref(), cosigning: cosigning.as_ref(), at };
            record::export(&ledger, &bundle_of, out.as_deref(), issuer.as_ref())?;
        }
        Command::Verify {
            bundle,
            vkey,
            json,
            checkpoint,
            consistency,
            require_complete,
            max_uncovered,
            witnesses,
            witnesses_required,
            region,
            receipt,
            receipt_checkpoint,
            proof,
            entry,
        } => {
            if let (Some(receipt), Some(note), Some(proof)) = (receipt, receipt_checkpoint, proof) {
                return record::verify_receipt(&receipt, &note, &proof, entry.as_deref(), &vkey, json);
            }
            let bundle = bundle.ok_or_else(|| anyhow!("say what to verify: a bundle, or --receipt"))?;
            let completeness = record::CompletenessPolicy { require: require_complete, max_uncovered };
            let others = record::Others { checkpoint: checkpoint.as_deref(), consistency: consistency.as_deref() };
            let witnesses = witness::Demand::parse(&witnesses, witnesses_required)?;
            return record::verify(&bundle, &vkey, json, others, region.as_deref(), completeness, witnesses);
        }
        Command::Cosign { key, name, ledger_vkey, print_vkey, note, out } => {
            let witness = witness::open(&key, &name)?;
            if print_vkey {
                write_stdout(format_args!("{}\n", witness.verifier_key().encode()))?;
            } else if let (Some(vkey), Some(note)) = (ledger_vkey, note) {
                witness::cosign(&witness, &vkey, &note, out.as_deref())?;
            }
        }
        Command::Demo {
            dir,
            origin,
            learners,
            teachers,
            events,
            region,
            listen,
            no_serve,
            server,
            access,
            snapshots,
            completeness,
            witnesses,
        } => {
            let witnesses = witnesses.config()?;
            if !dir.join("ledger.key").exists() {
                let authority = zachetka::demo::demo_key(&origin, "authority").did();
                let vkey = init_with(&dir, db, &origin, Some(authority), Some(zachetka::demo::region_config()))?;
                eprintln!("created {} with verifier key {vkey}", dir.display());
            }
            // After `init_with`, which takes (and releases) the same lock.
            let _dir_lock = lock_ledger_dir(&dir)?;
            let clock = Arc::new(demo::DemoClock::default());
            // The demo stamps a past school year with its own clock: no check against the
            // database's (see README, "Ledger time decides").
            let unchecked = zachetka::ledger::StoreClock::Ignored;
            let ledger = open_ledger_clocked(
                &dir,
                db,
                snapshots.options(&dir),
                completeness.policy(),
                clock.clone(),
                unchecked,
            )?;
            if ledger.config().origin != origin {
                bail!("{} holds ledger {}, not {origin}", dir.display(), ledger.config().origin);
            }
            let (size, targets) = match region.as_deref() {
                Some(_leningrad_2021) => {
                    let (size, targets) = zachetka::demo::leningrad_2021(events);
                    (size, Some(targets))
                }
                None => (zachetka::demo::DemoSize { learners, teachers, events }, None),
            };
            demo::build_demo(&ledger, size, targets, &clock)?;
            // The read models catch up, and the completeness commitments the policy owes are
            // appended, before the command ends or serves.
            loop {
                let size = ledger.head().0.tree_size;
                ledger.read_side().wait_settled_blocking(size);
                if ledger.head().0.tree_size == size {
                    break;
                }
            }
            demo::print_tokens(&access.tokens_path(&dir), size, targets.is_none(), &listen)?;
            if !no_serve {
                let cosigning = open_cosigning(&ledger, &dir, witnesses)?;
                serve(ledger, &listen, server.config(), access.access(&dir, db.is_some())?, cosigning)?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The cosignatures `serve` collects, when witnesses are configured (kept in <dir>/cosignatures).
fn open_cosigning(
    ledger: &Ledger,
    dir: &Path,
    witnesses: Option<zachetka::cosigning::CosigningConfig>,
) -> Result<Option<Arc<zachetka::cosigning::Cosigning>>> {
    let Some(config) = witnesses else { return Ok(None) };
    let folder = dir.join(zachetka::cosigning::COSIGNATURES_DIR);
    let cosigning = zachetka::cosigning::Cosigning::open(ledger.clone(), dir, config)
        .with_context(|| format!("couldn't open {}", folder.display()))?;
    Ok(Some(cosigning))
}

fn serve(
    ledger: Ledger,
    listen: &str,
    config: zachetka::api::server::ServerConfig,
    access: zachetka::access::Access,
    cosigning: Option<Arc<zachetka::cosigning::Cosigning>>,
) -> Result<()> {
    // Blocking tasks (verification waits on rayon's pool; store reads) are bounded by the
    // admission bound and the connection cap already; 64 threads keep their stacks and
    // per-thread allocator heaps from growing with the load (tokio's default is 512).
    let rt = tokio::runtime::Builder::new_multi_thread().max_blocking_threads(64).enable_all().build()?;
    rt.block_on(async move {
        let listener =
            tokio::net::TcpListener::bind(listen).await.with_context(|| format!("couldn't listen on {listen}"))?;
        eprintln!(
            "serving {} on http://{} ({})",
            ledger.config().origin,
            listener.local_addr()?,
            zachetka::api::head_summary(&ledger)
        );
        eprintln!("verifier key: {}", ledger.config().verifier_key);
        // SIGTERM (what service managers send) and SIGINT (Ctrl-C) both stop cleanly: no new
        // connections, requests in progress finish, then the read side's shutdown snapshot.
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("couldn't listen for SIGTERM")?;
        let shutdown = async move {
            let signal = tokio::select! {
                _ = tokio::signal::ctrl_c() => "SIGINT",
                _ = term.recv() => "SIGTERM",
            };
            eprintln!("stopping on {signal}: no new connections; requests in progress may finish");
        };
        if let Some(c) = &cosigning {
            c.start();
        }
        let router = zachetka::api::router_with_cosigning(ledger.clone(), access, cosigning);
        let served = zachetka::api::server::serve(listener, router, config, shutdown).await;
        // The last handle of the ledger goes with this block: its read side then writes a
        // snapshot of what it applied since the last one (logged with its path).
        eprintln!("stopped serving at tree size {}", ledger.head().0.tree_size);
        served?;
        Ok(())
    })
}
