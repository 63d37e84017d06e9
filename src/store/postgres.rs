//! The PostgreSQL store: the same contract as sled, for a ledger that outgrows one machine and for
//! several stateless zachetka nodes over one database, all accepting appends.
//!
//! Appends are serialized by the database, not by a process: a writer opens a transaction, locks
//! the one head row (`SELECT ... FOR UPDATE`), reads the head under that lock, and commits its
//! whole batch (entries, checkpoint, new head) in the same transaction. A writer that waits for
//! the lock reads the head its predecessor committed, so seqs stay dense whichever node writes.
//! A trigger on the head row notifies listeners, so idle nodes follow commits made by others.
//!
//! One ledger per database schema (choose it with `options=-csearch_path=...`, or a database per
//! ledger). The schema is created and upgraded on open by numbered migrations, each applied once
//! under an advisory lock in its own transaction, so nodes of different versions starting at once
//! are safe; a node older than its database refuses to start.
//!
//! A streaming replica (a server in recovery) opens read-only: no migrations (its primary's are
//! replicated; the schema must be this build's), no appends, and commits are followed by polling,
//! since a standby cannot `LISTEN`.
//!
//! Not the place for sequencing decisions (the ledger makes them) or for choosing the database.

use super::{CommitBatch, IdRecord, LedgerConfig, RawEntry, Store, StoreError, StoreStats, StreamHead};
use crate::checkpoint::TreeHead;
use crate::merkle::Hash;
use postgres::fallible_iterator::FallibleIterator;
use postgres::types::ToSql;
use postgres::{Client, NoTls, Row, Statement};
use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// The migrations, in order. A migration is never edited once released: add a new one.
pub const MIGRATIONS: &[(i32, &str)] = &[
    (
        1,
        "CREATE TABLE zt_config (
            id integer PRIMARY KEY CHECK (id = 1),
            config text NOT NULL
        );
        CREATE TABLE zt_head (
            id integer PRIMARY KEY CHECK (id = 1),
            tree_size bigint NOT NULL CHECK (tree_size >= 0),
            root bytea NOT NULL CHECK (length(root) = 32),
            checkpoint bytea NOT NULL
        );
        CREATE TABLE zt_entries (
            seq bigint PRIMARY KEY CHECK (seq >= 0),
            bytes bytea NOT NULL,
            hashes bytea NOT NULL CHECK (length(hashes) >= 32 AND length(hashes) % 32 = 0),
            id text NOT NULL UNIQUE,
            stream text NOT NULL,
            stream_version bigint NOT NULL,
            tree_size bigint NOT NULL,
            digest bytea NOT NULL CHECK (length(digest) = 32),
            UNIQUE (stream, stream_version)
        );
        CREATE TABLE zt_checkpoints (
            tree_size bigint PRIMARY KEY,
            note bytea NOT NULL
        );",
    ),
    (
        2,
        "CREATE FUNCTION zt_notify_head() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('zachetka_head', current_schema() || ' ' || NEW.tree_size);
            RETURN NEW;
        END $$;
        CREATE TRIGGER zt_head_notify AFTER UPDATE ON zt_head
            FOR EACH ROW EXECUTE FUNCTION zt_notify_head();",
    ),
    // The event's type beside its stream, so the rules' lookups read no entry bytes. Null in
    // rows written before it (no backfill: parsing every stored entry in SQL would fail the
    // migration on one damaged row); those rows answer the type from their bytes.
    (3, "ALTER TABLE zt_entries ADD COLUMN type text;"),
];

/// The channel the head trigger notifies.
const HEAD_CHANNEL: &str = "zachetka_head";
/// Most connections one store (one node) holds open at once: the writer, the follower's
/// listener and readers. A reader beyond it waits for one to come back.
pub const CONNECTIONS_MAX: usize = 24;
/// How long a reader waits for a connection before the store answers `Unavailable`.
const CONNECTION_WAIT: Duration = Duration::from_secs(10);
/// How often a read-only store (a replica, which cannot `LISTEN`) looks for new commits.
const REPLICA_POLL: Duration = Duration::from_millis(200);
/// Longest a writer waits for the head row lock (`lock_timeout`) before its batch answers
/// `unavailable`: a node that holds the lock and stalls (a frozen process) costs the other
/// nodes' clients this much, not a silent wait.
pub const APPEND_LOCK_WAIT: Duration = Duration::from_secs(5);
/// Longest a writer's transaction may sit idle between statements while holding the head row
/// lock (`idle_in_transaction_session_timeout`); the server then ends its session and the lock
/// is free. Inside the transaction a batch only catches up with what others committed while it
/// waited for the lock and admits its events (reads through other connections, milliseconds to
/// a second for a full batch under the rules), so this bounds a frozen writer's region-wide
/// stall.
pub const WRITER_IDLE_MAX: Duration = Duration::from_secs(10);
/// Longest one statement of a writer's transaction (its inserts, the head update, `COMMIT`)
/// may run on the server (`statement_timeout`).
pub const WRITER_STATEMENT_MAX: Duration = Duration::from_secs(30);
/// TCP keepalive defaults, unless the connection string sets its own: a peer that stops
/// answering (a partition, a dead host) is found within idle + interval x retries = 25 s, and
/// data left unacknowledged for [`TCP_USER_TIMEOUT`] closes the connection. They apply to TCP
/// connections only (a Unix socket has no silent peer).
pub const KEEPALIVES_IDLE: Duration = Duration::from_secs(10);
pub const KEEPALIVES_INTERVAL: Duration = Duration::from_secs(5);
pub const KEEPALIVES_RETRIES: u32 = 3;
pub const TCP_USER_TIMEOUT: Duration = Duration::from_secs(30);

/// A PostgreSQL ledger store (see the module docs).
pub struct PgStore {
    config: postgres::Config,
    idle: Mutex<Vec<Conn>>,
    /// Connections open (idle or in use), bounded by [`CONNECTIONS_MAX`].
    open: Arc<(Mutex<usize>, Condvar)>,
    /// The append in progress: its connection holds an open transaction and the head row lock.
    writer: Mutex<Option<Writer>>,
    /// The connection that listens for commits (followers).
    listener: Mutex<Option<Conn>>,
    /// Opened on a replica (a server in recovery): reads only.
    read_only: bool,
}

struct Writer {
    conn: Conn,
    /// The tree size read under the lock.
    tree_size: u64,
}

/// A connection with its prepared statements.
struct Conn {
    client: Client,
    statements: HashMap<&'static str, Statement>,
    _permit: Permit,
}

/// One of the store's [`CONNECTIONS_MAX`] connections; given back when its connection drops.
struct Permit(Arc<(Mutex<usize>, Condvar)>);

impl Drop for Permit {
    fn drop(&mut self) {
        let (open, freed) = &*self.0;
        *open.lock().expect("pool lock") -= 1;
        freed.notify_one();
    }
}

impl Conn {
    fn statement(&mut self, sql: &'static str) -> Result<Statement, StoreError> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(sql).map_err(pg)?;
        self.statements.insert(sql, s.clone());
        Ok(s)
    }

    fn query(&mut self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>, StoreError> {
        let s = self.statement(sql)?;
        self.client.query(&s, params).map_err(pg)
    }

    fn execute(&mut self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, StoreError> {
        let s = self.statement(sql)?;
        self.client.execute(&s, params).map_err(pg)
    }
}

/// Classifies a driver error: a lost or refused connection, or a server shutting down or
/// starting, is `Unavailable` (transient: retry later); anything else is `Io`.
fn pg(e: postgres::Error) -> StoreError {
    let Some(db) = e.as_db_error() else { return StoreError::Unavailable(format!("PostgreSQL: {e}")) };
    let code = db.code().code();
    let message = format!("PostgreSQL {code}: {}", db.message());
    // 08: connection exception; 57: operator intervention (shutdown, starting up); 53:
    // insufficient resources (too many connections); 40: transaction rollback (serialization);
    // 25P03: the server ended a transaction left idle too long (a stalled writer).
    // 55P03: lock_not_available, the head row lock was not had within APPEND_LOCK_WAIT.
    if code == "55P03" {
        return StoreError::Contended(format!(
            "{message} (another writer held it over {} s; a frozen node?)",
            APPEND_LOCK_WAIT.as_secs()
        ));
    }
    if e.is_closed() || code == "25P03" || ["08", "57", "53", "40"].iter().any(|c| code.starts_with(c)) {
        StoreError::Unavailable(message)
    } else {
        StoreError::Database(message)
    }
}

fn u(v: i64) -> u64 {
    v as u64
}

fn i(v: u64) -> i64 {
    i64::try_from(v).expect("sizes stay below 2^63")
}

fn hash_at(bytes: &[u8], k: usize, what: &'static str, position: u64) -> Result<Hash, StoreError> {
    bytes.get(k * 32..k * 32 + 32).map(|h| Hash(h.try_into().expect("32 bytes"))).ok_or(StoreError::Corrupt {
        what,
        position,
        detail: format!("{} bytes of hashes, hash {k} is missing", bytes.len()),
    })
}

fn digest(bytes: &[u8], position: u64) -> Result<[u8; 32], StoreError> {
    bytes.try_into().map_err(|_| StoreError::Corrupt {
        what: "id record",
        position,
        detail: format!("digest of {} bytes", bytes.len()),
    })
}

/// The event type of an entry's bytes, for the id record of a row written before migration 3
/// (whose `type` is null).
fn event_type(bytes: &[u8], position: u64) -> Result<String, StoreError> {
    let corrupt = |detail: String| StoreError::Corrupt { what: "entry", position, detail };
    let entry = crate::event::parse_entry(bytes).map_err(|e| corrupt(e.to_string()))?;
    let ty = entry.event.get("type").and_then(serde_json::Value::as_str);
    ty.map(str::to_owned).ok_or_else(|| corrupt("the event has no type".into()))
}

/// How a store is opened: by `init` (the schema created or migrated), by every other writer
/// (a ledger must already be there), or for an audit (read-only, nothing migrated).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    Create,
    Existing,
    ReadOnly,
}

impl PgStore {
    /// Connects to the database (a libpq-style connection string or URL), applies the
    /// migrations this build knows, and refuses a database migrated by a newer build.
    pub fn open(url: &str) -> Result<Self, StoreError> {
        Self::open_mode(url, Open::Create)
    }

    /// Connects to a database that already holds a ledger (every command but `init`): a schema
    /// with no ledger (a typo in the connection string's `search_path`, say) is refused before
    /// anything is created in it; a ledger of an older schema version is migrated as by `open`.
    pub fn open_existing(url: &str) -> Result<Self, StoreError> {
        Self::open_mode(url, Open::Existing)
    }

    /// Connects for an audit: every session is read-only (`default_transaction_read_only`), no
    /// migration runs (the schema must already be this build's), and the store refuses commits,
    /// so an audit over PostgreSQL changes nothing, as over sled.
    pub fn open_read_only(url: &str) -> Result<Self, StoreError> {
        Self::open_mode(url, Open::ReadOnly)
    }

    fn open_mode(url: &str, open: Open) -> Result<Self, StoreError> {
        let read_only = open == Open::ReadOnly;
        let mut config = connection_config(url)?;
        if read_only {
            let options = config.get_options().map(|o| format!("{o} ")).unwrap_or_default();
            config.options(&format!("{options}-c default_transaction_read_only=on"));
        }
        let store = Self {
            config,
            idle: Mutex::new(Vec::new()),
            open: Arc::new((Mutex::new(0), Condvar::new())),
            writer: Mutex::new(None),
            listener: Mutex::new(None),
            read_only: false,
        };
        let mut conn = store.get()?;
        if open == Open::Existing {
            let exists: bool =
                conn.client.query_one("SELECT to_regclass('zt_schema') IS NOT NULL", &[]).map_err(pg)?.get(0);
            if !exists {
                let schema: Option<String> = conn.client.query_one("SELECT current_schema()", &[]).map_err(pg)?.get(0);
                let place = match schema {
                    Some(s) => format!("schema {s} of this database holds no zachetka ledger"),
                    None => "the connection's search_path names no schema that exists".to_owned(),
                };
                return Err(StoreError::Incompatible(format!(
                    "{place}: check the connection string (its search_path), or run `zachetka init` first"
                )));
            }
        }
        let in_recovery: bool = conn.client.query_one("SELECT pg_is_in_recovery()", &[]).map_err(pg)?.get(0);
        if in_recovery || read_only {
            check_replica_schema(&mut conn.client)?;
        } else {
            migrate(&mut conn.client, MIGRATIONS)?;
        }
        store.put(conn);
        Ok(Self { read_only: in_recovery || read_only, ..store })
    }

    /// A pooled connection, or a new one while fewer than [`CONNECTIONS_MAX`] are open; else
    /// waits for one to come back, at most [`CONNECTION_WAIT`].
    fn get(&self) -> Result<Conn, StoreError> {
        let deadline = std::time::Instant::now() + CONNECTION_WAIT;
        let (open, freed) = &*self.open;
        let mut n = open.lock().expect("pool lock");
        loop {
            let idle = self.idle.lock().expect("pool lock").pop();
            if let Some(c) = idle {
                drop(n);
                if !c.client.is_closed() {
                    return Ok(c);
                }
                drop(c); // closed: its place is free again
                n = open.lock().expect("pool lock");
                continue;
            }
            if *n < CONNECTIONS_MAX {
                *n += 1;
                drop(n);
                let permit = Permit(self.open.clone());
                let client = self.config.connect(NoTls).map_err(pg)?;
                return Ok(Conn { client, statements: HashMap::new(), _permit: permit });
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Err(StoreError::Unavailable(format!("all {CONNECTIONS_MAX} connections are busy")));
            }
            n = freed.wait_timeout(n, left).expect("pool lock").0;
        }
    }

    fn put(&self, conn: Conn) {
        if conn.client.is_closed() {
            return; // dropped: its place is free again
        }
        self.idle.lock().expect("pool lock").push(conn);
        // Under the count's lock, so a reader about to wait cannot miss it.
        let _open = self.open.0.lock().expect("pool lock");
        self.open.1.notify_one();
    }

    /// Runs `f` on a pooled connection; a connection that failed is dropped, not pooled.
    fn with<T>(&self, f: impl FnOnce(&mut Conn) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let mut conn = self.get()?;
        let result = f(&mut conn);
        if !matches!(result, Err(StoreError::Unavailable(_))) {
            self.put(conn);
        }
        result
    }

    /// The schema version the database is at.
    pub fn schema_version(&self) -> Result<i32, StoreError> {
        self.with(|c| {
            Ok(c.client.query_one("SELECT coalesce(max(version), 0) FROM zt_schema", &[]).map_err(pg)?.get(0))
        })
    }

    fn commit_locked(w: &mut Writer, batch: &CommitBatch) -> Result<(), StoreError> {
        if batch.first_seq != w.tree_size {
            return Err(StoreError::NotContiguous { got: batch.first_seq, want: w.tree_size });
        }
        let n = batch.entries.len();
        let mut seqs = Vec::with_capacity(n);
        let mut bytes = Vec::with_capacity(n);
        let mut hashes = Vec::with_capacity(n);
        let mut ids = Vec::with_capacity(n);
        let mut streams = Vec::with_capacity(n);
        let mut versions = Vec::with_capacity(n);
        let mut sizes = Vec::with_capacity(n);
        let mut digests = Vec::with_capacity(n);
        let mut types = Vec::with_capacity(n);
        for e in &batch.entries {
            seqs.push(i(e.id_record.seq));
            bytes.push(&e.bytes[..]);
            hashes.push(e.hashes.iter().flat_map(|h| h.0).collect::<Vec<u8>>());
            ids.push(e.id.as_str());
            streams.push(e.stream.as_str());
            versions.push(i(e.id_record.stream_version));
            sizes.push(i(e.id_record.tree_size));
            digests.push(e.id_record.digest.as_slice());
            types.push(e.id_record.event_type.as_str());
        }
        let c = &mut w.conn;
        c.execute(
            "INSERT INTO zt_entries (seq, bytes, hashes, id, stream, stream_version, tree_size, digest, type)
             SELECT * FROM unnest($1::bigint[], $2::bytea[], $3::bytea[], $4::text[], $5::text[],
                                  $6::bigint[], $7::bigint[], $8::bytea[], $9::text[])",
            &[&seqs, &bytes, &hashes, &ids, &streams, &versions, &sizes, &digests, &types],
        )?;
        let size = i(batch.head.tree_size);
        c.execute("INSERT INTO zt_checkpoints (tree_size, note) VALUES ($1, $2)", &[&size, &batch.checkpoint])?;
        c.execute(
            "UPDATE zt_head SET tree_size = $1, root = $2, checkpoint = $3 WHERE id = 1",
            &[&size, &batch.head.root_hash.0.as_slice(), &batch.checkpoint],
        )?;
        c.client.batch_execute("COMMIT").map_err(pg)
    }

    fn head_on(c: &mut Conn, sql: &'static str) -> Result<Option<(TreeHead, Vec<u8>)>, StoreError> {
        let rows = c.query(sql, &[])?;
        let Some(row) = rows.first() else { return Ok(None) };
        let note: Vec<u8> = row.get(2);
        if note.is_empty() {
            return Ok(None);
        }
        let root: Vec<u8> = row.get(1);
        let root = hash_at(&root, 0, "head", 0)?;
        Ok(Some((TreeHead { tree_size: u(row.get(0)), root_hash: root }, note)))
    }
}

/// The driver's configuration for a connection string, with this store's defaults where the
/// string sets none: a connect timeout of 5 s, the application name, and TCP keepalives
/// ([`KEEPALIVES_IDLE`], [`KEEPALIVES_INTERVAL`], [`KEEPALIVES_RETRIES`]) and
/// [`TCP_USER_TIMEOUT`], so a connection whose peer went silent fails within ~30 s instead of
/// after the kernel's two hours. `keepalives=0` in the string turns keepalives off.
pub fn connection_config(url: &str) -> Result<postgres::Config, StoreError> {
    let mut config: postgres::Config =
        url.parse().map_err(|e| StoreError::Incompatible(format!("bad PostgreSQL connection string: {e}")))?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(5));
    }
    if config.get_application_name().is_none() {
        config.application_name("zachetka");
    }
    // The driver reports its own 2 h default for an unset idle time, so whether the string
    // names it is read from the string.
    if !url.contains("keepalives_idle") {
        config.keepalives_idle(KEEPALIVES_IDLE);
    }
    if config.get_keepalives_interval().is_none() {
        config.keepalives_interval(KEEPALIVES_INTERVAL);
    }
    if config.get_keepalives_retries().is_none() {
        config.keepalives_retries(KEEPALIVES_RETRIES);
    }
    if config.get_tcp_user_timeout().is_none() {
        config.tcp_user_timeout(TCP_USER_TIMEOUT);
    }
    Ok(config)
}

/// A replica's schema must be exactly this build's: it cannot migrate, and a newer one could be
/// misread.
fn check_replica_schema(client: &mut Client) -> Result<(), StoreError> {
    let latest = MIGRATIONS.last().map(|m| m.0).unwrap_or(0);
    let exists: bool = client.query_one("SELECT to_regclass('zt_schema') IS NOT NULL", &[]).map_err(pg)?.get(0);
    let current: i32 = if exists {
        client.query_one("SELECT coalesce(max(version), 0) FROM zt_schema", &[]).map_err(pg)?.get(0)
    } else {
        0
    };
    if current != latest {
        return Err(StoreError::Incompatible(format!(
            "the database schema is at version {current}, this build needs {latest}: open the primary with this build first"
        )));
    }
    Ok(())
}

/// Applies `migrations` this database lacks, each in its own transaction under an advisory lock
/// (so concurrent starts apply each once); refuses a database newer than `migrations`.
pub fn migrate(client: &mut Client, migrations: &[(i32, &str)]) -> Result<(), StoreError> {
    let latest = migrations.last().map(|m| m.0).unwrap_or(0);
    loop {
        let mut tx = client.transaction().map_err(pg)?;
        tx.execute("SELECT pg_advisory_xact_lock(hashtext('zachetka-migrate ' || current_schema()))", &[])
            .map_err(pg)?;
        tx.batch_execute(
            "SET LOCAL client_min_messages = warning;
             CREATE TABLE IF NOT EXISTS zt_schema (
                version integer PRIMARY KEY,
                applied_at timestamptz NOT NULL DEFAULT now()
            )",
        )
        .map_err(pg)?;
        let current: i32 = tx.query_one("SELECT coalesce(max(version), 0) FROM zt_schema", &[]).map_err(pg)?.get(0);
        if current > latest {
            return Err(StoreError::Incompatible(format!(
                "the database schema is at version {current}, newer than this build's {latest}; run a newer zachetka"
            )));
        }
        let Some((version, sql)) = migrations.iter().find(|m| m.0 > current) else {
            return tx.commit().map_err(pg);
        };
        tx.batch_execute(sql).map_err(|e| match pg(e) {
            StoreError::Database(m) => StoreError::Database(format!("migration {version} failed: {m}")),
            other => other,
        })?;
        tx.execute("INSERT INTO zt_schema (version) VALUES ($1)", &[version]).map_err(pg)?;
        tx.commit().map_err(pg)?;
        tracing::info!(version, "applied a schema migration");
    }
}

impl Store for PgStore {
    fn config(&self) -> Result<Option<LedgerConfig>, StoreError> {
        self.with(|c| {
            let rows = c.query("SELECT config FROM zt_config WHERE id = 1", &[])?;
            rows.first()
                .map(|r| {
                    serde_json::from_str(r.get(0)).map_err(|e| StoreError::Corrupt {
                        what: "ledger config",
                        position: 0,
                        detail: e.to_string(),
                    })
                })
                .transpose()
        })
    }

    fn init(&self, config: &LedgerConfig) -> Result<(), StoreError> {
        let json = serde_json::to_string(config).expect("config serializes");
        self.with(|c| {
            let mut tx = c.client.transaction().map_err(pg)?;
            let n = tx
                .execute("INSERT INTO zt_config (id, config) VALUES (1, $1) ON CONFLICT (id) DO NOTHING", &[&json])
                .map_err(pg)?;
            if n == 0 {
                return Err(StoreError::AlreadyInitialized);
            }
            tx.execute(
                "INSERT INTO zt_head (id, tree_size, root, checkpoint) VALUES (1, 0, $1, ''::bytea)",
                &[&crate::merkle::EMPTY_ROOT.0.as_slice()],
            )
            .map_err(pg)?;
            tx.commit().map_err(pg)
        })
    }

    fn head(&self) -> Result<Option<(TreeHead, Vec<u8>)>, StoreError> {
        self.with(|c| Self::head_on(c, "SELECT tree_size, root, checkpoint FROM zt_head WHERE id = 1"))
    }

    fn is_shared(&self) -> bool {
        true
    }

    fn is_read_only(&self) -> bool {
        self.read_only
    }

    fn begin_append(&self) -> Result<Option<(TreeHead, Vec<u8>)>, StoreError> {
        if self.read_only {
            return Err(StoreError::ReadOnly);
        }
        self.abort_append();
        let mut conn = self.get()?;
        let locked = (|| {
            // A writer that stalls while holding the lock (a frozen process, a half-open
            // connection) is ended by the server instead of blocking every other node forever;
            // a writer waiting for the lock gives up after APPEND_LOCK_WAIT and its batch
            // answers `unavailable`, instead of holding its clients for the whole stall.
            conn.client
                .batch_execute(&format!(
                    "BEGIN; SET LOCAL idle_in_transaction_session_timeout = '{}ms'; \
                     SET LOCAL lock_timeout = '{}ms'; SET LOCAL statement_timeout = '{}ms'",
                    WRITER_IDLE_MAX.as_millis(),
                    APPEND_LOCK_WAIT.as_millis(),
                    WRITER_STATEMENT_MAX.as_millis()
                ))
                .map_err(pg)?;
            Self::head_on(&mut conn, "SELECT tree_size, root, checkpoint FROM zt_head WHERE id = 1 FOR UPDATE")
        })();
        match locked {
            Ok(head) => {
                let tree_size = head.as_ref().map(|h| h.0.tree_size).unwrap_or(0);
                *self.writer.lock().expect("writer lock") = Some(Writer { conn, tree_size });
                Ok(head)
            }
            Err(e) => {
                if !conn.client.is_closed() && conn.client.batch_execute("ROLLBACK").is_ok() {
                    self.put(conn);
                }
                Err(e)
            }
        }
    }

    fn abort_append(&self) {
        if let Some(mut w) = self.writer.lock().expect("writer lock").take() {
            if w.conn.client.batch_execute("ROLLBACK").is_ok() {
                self.put(w.conn);
            }
        }
    }

    fn commit(&self, batch: &CommitBatch) -> Result<(), StoreError> {
        if self.writer.lock().expect("writer lock").is_none() {
            self.begin_append()?;
        }
        let mut w = self.writer.lock().expect("writer lock").take().expect("begun above");
        match Self::commit_locked(&mut w, batch) {
            Ok(()) => {
                self.put(w.conn);
                Ok(())
            }
            Err(e) => {
                // The transaction is rolled back (or the connection is gone): nothing was written,
                // or, if COMMIT itself was lost, the batch may be in; the ledger resyncs either way.
                if !w.conn.client.is_closed() && w.conn.client.batch_execute("ROLLBACK").is_ok() {
                    self.put(w.conn);
                }
                Err(e)
            }
        }
    }

    fn raw_entries(&self, from: u64, limit: u64) -> Result<Vec<RawEntry>, StoreError> {
        let end = i(from.saturating_add(limit).min(i64::MAX as u64));
        self.with(|c| {
            let rows = c.query(
                "SELECT seq, bytes, hashes FROM zt_entries WHERE seq >= $1 AND seq < $2 ORDER BY seq",
                &[&i(from), &end],
            )?;
            rows.into_iter()
                .map(|r| {
                    let seq = u(r.get(0));
                    let raw: &[u8] = r.get(2);
                    let hashes =
                        (0..raw.len() / 32).map(|k| hash_at(raw, k, "stored hash", seq)).collect::<Result<_, _>>()?;
                    Ok(RawEntry { seq, bytes: r.get::<_, Vec<u8>>(1).into(), hashes, damaged: None })
                })
                .collect()
        })
    }

    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, StoreError> {
        // Stored hash (level L, index k) is written by leaf ((k+1) << L) - 1, at position L.
        let place = |index: u64| {
            let (level, k) = tlog_tiles::split_stored_hash_index(index);
            (((k + 1) << level) - 1, level as usize)
        };
        let mut seqs: Vec<i64> = indexes.iter().map(|&x| i(place(x).0)).collect();
        seqs.sort_unstable();
        seqs.dedup();
        let by_seq: HashMap<u64, Vec<u8>> = self.with(|c| {
            let rows = c.query("SELECT seq, hashes FROM zt_entries WHERE seq = ANY($1)", &[&seqs])?;
            Ok(rows.into_iter().map(|r| (u(r.get(0)), r.get(1))).collect())
        })?;
        indexes
            .iter()
            .map(|&index| {
                let (seq, level) = place(index);
                let raw = by_seq.get(&seq).ok_or(StoreError::Corrupt {
                    what: "stored hash",
                    position: index,
                    detail: format!("entry {seq}, which stores it, is not committed"),
                })?;
                hash_at(raw, level, "stored hash", index)
            })
            .collect()
    }

    fn id_record(&self, id: &str) -> Result<Option<IdRecord>, StoreError> {
        Ok(self.id_records(&[id])?.pop().flatten())
    }

    fn id_records(&self, ids: &[&str]) -> Result<Vec<Option<IdRecord>>, StoreError> {
        let found: HashMap<String, IdRecord> = self.with(|c| {
            let rows = c.query(
                "SELECT id, seq, stream_version, tree_size, substring(hashes FROM 1 FOR 32), digest, stream, type,
                        CASE WHEN type IS NULL THEN bytes END
                 FROM zt_entries WHERE id = ANY($1)",
                &[&ids],
            )?;
            rows.into_iter()
                .map(|r| {
                    let seq = u(r.get(1));
                    let rec = IdRecord {
                        seq,
                        stream_version: u(r.get(2)),
                        tree_size: u(r.get(3)),
                        leaf_hash: hash_at(r.get(4), 0, "id record", seq)?,
                        digest: digest(r.get(5), seq)?,
                        stream: r.get(6),
                        event_type: match r.get::<_, Option<String>>(7) {
                            Some(ty) => ty,
                            None => event_type(r.get(8), seq)?,
                        },
                    };
                    Ok((r.get(0), rec))
                })
                .collect()
        })?;
        Ok(ids.iter().map(|id| found.get(*id).cloned()).collect())
    }

    fn stream_head(&self, stream: &str) -> Result<Option<StreamHead>, StoreError> {
        Ok(self.stream_heads(&[stream])?.pop().flatten())
    }

    fn stream_heads(&self, streams: &[&str]) -> Result<Vec<Option<StreamHead>>, StoreError> {
        let found: HashMap<String, StreamHead> = self.with(|c| {
            let rows = c.query(
                "SELECT s.stream, e.seq, e.stream_version, substring(e.hashes FROM 1 FOR 32)
                 FROM unnest($1::text[]) AS s(stream)
                 CROSS JOIN LATERAL (
                     SELECT seq, stream_version, hashes FROM zt_entries
                     WHERE stream = s.stream ORDER BY stream_version DESC LIMIT 1
                 ) AS e",
                &[&streams],
            )?;
            rows.into_iter()
                .map(|r| {
                    let seq = u(r.get(1));
                    let head = StreamHead {
                        len: u(r.get(2)) + 1,
                        last_leaf_hash: hash_at(r.get(3), 0, "stream head", seq)?,
                        last_seq: seq,
                    };
                    Ok((r.get(0), head))
                })
                .collect()
        })?;
        Ok(streams.iter().map(|s| found.get(*s).copied()).collect())
    }

    fn stream_seqs(&self, stream: &str, from_version: u64, limit: u64) -> Result<Vec<u64>, StoreError> {
        let limit = i(limit.min(i64::MAX as u64));
        self.with(|c| {
            let rows = c.query(
                "SELECT seq FROM zt_entries WHERE stream = $1 AND stream_version >= $2
                 ORDER BY stream_version LIMIT $3",
                &[&stream, &i(from_version.min(i64::MAX as u64)), &limit],
            )?;
            Ok(rows.into_iter().map(|r| u(r.get(0))).collect())
        })
    }

    fn checkpoints(&self, from_size: u64, limit: u64) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let limit = i(limit.min(i64::MAX as u64));
        self.with(|c| {
            let rows = c.query(
                "SELECT tree_size, note FROM zt_checkpoints WHERE tree_size >= $1 ORDER BY tree_size LIMIT $2",
                &[&i(from_size.min(i64::MAX as u64)), &limit],
            )?;
            Ok(rows.into_iter().map(|r| (u(r.get(0)), r.get(1))).collect())
        })
    }

    /// One primary-key lookup in `zt_checkpoints`, which holds a row per committed batch.
    fn checkpoint_at(&self, tree_size: u64) -> Result<Option<Vec<u8>>, StoreError> {
        let Ok(size) = i64::try_from(tree_size) else { return Ok(None) };
        self.with(|c| {
            let rows = c.query("SELECT note FROM zt_checkpoints WHERE tree_size = $1", &[&size])?;
            Ok(rows.into_iter().next().map(|r| r.get(0)))
        })
    }

    fn stats(&self) -> Result<StoreStats, StoreError> {
        self.with(|c| {
            let rows = c.query(
                "SELECT (pg_total_relation_size('zt_entries') + pg_total_relation_size('zt_checkpoints')
                         + pg_total_relation_size('zt_head'))::bigint",
                &[],
            )?;
            Ok(StoreStats { bytes_on_disk: u(rows[0].get(0)) })
        })
    }

    /// `clock_timestamp()`, the server's time now (`now()` is its transaction's start).
    fn clock_unix_ms(&self) -> Result<Option<i64>, StoreError> {
        self.with(|c| {
            let rows = c.query("SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint", &[])?;
            Ok(rows.first().map(|r| r.get(0)))
        })
    }

    fn wait_for_commit(&self, tree_size: u64, timeout: Duration) -> Result<(), StoreError> {
        if self.read_only {
            // A standby cannot LISTEN: poll, at most REPLICA_POLL behind the replica's replay.
            if self.head()?.is_some_and(|h| h.0.tree_size > tree_size) {
                return Ok(());
            }
            std::thread::sleep(timeout.min(REPLICA_POLL));
            return Ok(());
        }
        let mut listener = self.listener.lock().expect("listener lock");
        if listener.as_ref().is_none_or(|c| c.client.is_closed()) {
            *listener = None;
            let mut c = self.get()?;
            c.client.batch_execute(&format!("LISTEN {HEAD_CHANNEL}")).map_err(pg)?;
            *listener = Some(c);
        }
        // Listening before reading the head: a commit between the two still wakes us.
        if self.head()?.is_some_and(|h| h.0.tree_size > tree_size) {
            return Ok(());
        }
        let client = &mut listener.as_mut().expect("connected above").client;
        let mut notifications = client.notifications();
        let mut waiting = notifications.timeout_iter(timeout);
        let woke = waiting.next().map(|_| ());
        drop(waiting);
        // Several commits may have notified: one head read answers them all.
        let drained = woke.and_then(|()| notifications.iter().count().map(|_| ()));
        drop(notifications);
        if drained.is_err() {
            *listener = None;
        }
        drained.map_err(pg)
    }
}
