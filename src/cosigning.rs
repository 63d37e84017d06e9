//! The ledger's side of witnessing (C2SP `tlog-witness`, DESIGN 3.6): a background task submits
//! the newest checkpoint to each configured witness with a consistency proof from the size that
//! witness last cosigned (learnt from its 409 answer when unknown), checks every cosignature line
//! it gets back against that witness's key, and keeps the lines per tree size, durable in
//! `<ledger dir>/cosignatures/<tree_size>.note` (the ledger's note with the lines appended,
//! written atomically). The API appends the lines held for a checkpoint's exact body to the
//! ledger's note, whose own signature line stays first and unchanged.
//!
//! **Invariant:** never on the append path: appends never wait on a witness. **Invariant:** no
//! line is served that was not verified against a configured witness's key, on receipt and
//! again when read back from disk (the files are derived evidence, not the log: an unreadable or
//! foreign one is ignored with a warning). Not the witness (`crate::witness`).

use crate::cosignature::{self, WitnessKey};
use crate::ledger::Ledger;
use crate::witness::{write_atomic, AddCheckpoint, SIZE_CONTENT_TYPE};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Largest witness answer read (a few cosignature lines, or a size).
pub const RESPONSE_BYTES_MAX: u64 = 16 << 10;

/// How often a failing witness's failure is logged at most (each new kind of failure is logged
/// at once).
const WARNING_INTERVAL: Duration = Duration::from_secs(60);

/// The folder of the ledger directory that holds the cosigned notes.
pub const COSIGNATURES_DIR: &str = "cosignatures";

/// How many cosigned notes are kept (the newest; ~80 minutes of a ledger written all day at the
/// default interval). Older ones are removed as new ones are written: a witness cosigns a size
/// only after checking it consistent with every size it cosigned before, so the newest
/// cosignature vouches for every older checkpoint through a consistency proof, and a bundle is
/// exported at the newest cosigned size when asked to be (`BundleAt::Cosigned`).
pub const COSIGNED_KEEP: usize = 1000;

/// A witness the ledger submits its checkpoints to.
#[derive(Debug, Clone)]
pub struct WitnessTarget {
    /// The witness's submission prefix, e.g. `http://witness.example:8048` (`/add-checkpoint`
    /// is appended).
    pub url: String,
    pub key: WitnessKey,
}

impl WitnessTarget {
    /// `URL=VKEY`: the witness's submission prefix and its verifier key (the URL holds no `=`).
    pub fn parse(s: &str) -> Result<Self, String> {
        let (url, vkey) = s.split_once('=').ok_or_else(|| format!("{s:?} is not URL=VKEY"))?;
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(format!("the witness URL {url:?} is not http:// or https://"));
        }
        let key = WitnessKey::parse(vkey).map_err(|e| format!("{vkey:?} is no witness verifier key: {e}"))?;
        Ok(Self { url: url.trim_end_matches('/').to_owned(), key })
    }
}

/// Which witnesses, and how often and how patiently they are asked.
#[derive(Debug, Clone)]
pub struct CosigningConfig {
    pub witnesses: Vec<WitnessTarget>,
    /// Least time between two rounds of submissions.
    pub interval: Duration,
    /// Each request's timeout (connect, send, answer).
    pub request_timeout: Duration,
    /// How many cosigned notes are kept on disk, the newest ([`COSIGNED_KEEP`] by default).
    pub keep: usize,
}

/// How one submission ended, a label of `zachetka_witness_submissions_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    Cosigned,
    /// 409: the witness holds another size (learnt, and asked again) or another root.
    Conflict,
    /// Any other refusal by the witness (4xx, 5xx).
    Refused,
    /// No answer: connection refused, timeout, a body beyond the cap.
    Unreachable,
    /// 200 without a valid cosignature by the witness's key.
    InvalidCosignature,
}

impl Outcome {
    const ALL: [Outcome; 5] =
        [Self::Cosigned, Self::Conflict, Self::Refused, Self::Unreachable, Self::InvalidCosignature];
    fn label(self) -> &'static str {
        match self {
            Self::Cosigned => "cosigned",
            Self::Conflict => "conflict",
            Self::Refused => "refused",
            Self::Unreachable => "unreachable",
            Self::InvalidCosignature => "invalid_cosignature",
        }
    }
}

#[derive(Default)]
struct WitnessStatus {
    /// The size the witness holds for this log, as far as we know (`old` of the next request).
    known_size: Option<u64>,
    last_cosigned_size: Option<u64>,
    last_error: Option<String>,
    /// The kind of the last failure, and when one was last logged (rate limit).
    last_failure: Option<Outcome>,
    submissions: [u64; 5],
    last_warning: Option<Instant>,
}

/// Cosignature lines of one checkpoint: (index of the witness in the config, the line).
type Lines = Vec<(usize, String)>;

/// The cosignatures a ledger collects and serves. Shared by the collecting task and the API.
pub struct Cosigning {
    ledger: Ledger,
    dir: PathBuf,
    config: CosigningConfig,
    keys: Vec<WitnessKey>,
    /// The newest tree size that has cosignatures, and its lines (witness index, line).
    latest: Mutex<Option<(u64, Lines)>>,
    status: Mutex<Vec<WitnessStatus>>,
}

impl Cosigning {
    /// Opens the cosigned notes of the ledger in `ledger_dir` (creating the folder), loading the
    /// newest one that still verifies.
    pub fn open(ledger: Ledger, ledger_dir: &Path, config: CosigningConfig) -> std::io::Result<Arc<Self>> {
        let dir = ledger_dir.join(COSIGNATURES_DIR);
        std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700).create(&dir)?;
        let keys: Vec<WitnessKey> = config.witnesses.iter().map(|w| w.key.clone()).collect();
        let status = config.witnesses.iter().map(|_| WitnessStatus::default()).collect();
        let this = Self { ledger, dir, config, keys, latest: Mutex::new(None), status: Mutex::new(status) };
        if let Some((size, lines)) = this.newest_on_disk()? {
            let mut status = this.status.lock().expect("cosigning status lock");
            for (i, _) in &lines {
                status[*i].last_cosigned_size = Some(size);
            }
            drop(status);
            *this.latest.lock().expect("cosigning lock") = Some((size, lines));
        }
        Ok(Arc::new(this))
    }

    /// The tree sizes of the cosigned notes on disk, in order.
    fn sizes_on_disk(&self) -> std::io::Result<Vec<u64>> {
        let mut sizes: Vec<u64> = std::fs::read_dir(&self.dir)?
            .filter_map(|e| e.ok()?.file_name().to_str()?.strip_suffix(".note")?.parse().ok())
            .collect();
        sizes.sort_unstable();
        Ok(sizes)
    }

    /// The newest cosigned note on disk that still verifies, with its lines.
    fn newest_on_disk(&self) -> std::io::Result<Option<(u64, Lines)>> {
        let sizes = match self.sizes_on_disk() {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            s => s?,
        };
        Ok(sizes.into_iter().rev().map(|size| (size, self.lines_on_disk(size, None))).find(|(_, l)| !l.is_empty()))
    }

    /// The newest tree size whose checkpoint carries a cosignature held here.
    pub fn newest_cosigned(&self) -> Option<u64> {
        if let Some((size, _)) = &*self.latest.lock().expect("cosigning lock") {
            return Some(*size);
        }
        self.newest_on_disk().ok().flatten().map(|(size, _)| size)
    }

    /// Removes all but the newest `keep` cosigned notes ([`COSIGNED_KEEP`] says why that is safe).
    fn prune(&self) {
        let Ok(sizes) = self.sizes_on_disk() else { return };
        for size in sizes.iter().rev().skip(self.config.keep) {
            let path = self.dir.join(format!("{size}.note"));
            if let Err(e) = std::fs::remove_file(&path) {
                tracing::warn!(path = %path.display(), error = %e, "couldn't remove an old cosigned checkpoint");
            }
        }
    }

    /// The cosigned notes of the ledger in `ledger_dir`, read (and checked against `keys`) as
    /// they are asked for, for an export that asks no witness: nothing is created or started.
    pub fn read_only(ledger: Ledger, ledger_dir: &Path, keys: Vec<WitnessKey>) -> Self {
        let witnesses: Vec<WitnessTarget> =
            keys.iter().map(|key| WitnessTarget { url: String::new(), key: key.clone() }).collect();
        let status = witnesses.iter().map(|_| WitnessStatus::default()).collect();
        let config =
            CosigningConfig { witnesses, interval: Duration::MAX, request_timeout: Duration::ZERO, keep: usize::MAX };
        let dir = ledger_dir.join(COSIGNATURES_DIR);
        Self { ledger, dir, config, keys, latest: Mutex::new(None), status: Mutex::new(status) }
    }

    /// Starts the collecting task on the current tokio runtime: a round after the head moves,
    /// at most one per interval; a round is also retried each interval while a witness lags.
    pub fn start(self: &Arc<Self>) {
        let this = self.clone();
        let mut heads = self.ledger.watch_tree_size();
        tokio::spawn(async move {
            loop {
                let round = this.clone();
                let all_caught_up = tokio::task::spawn_blocking(move || round.round()).await.unwrap_or(false);
                tokio::time::sleep(this.config.interval).await;
                if all_caught_up && heads.changed().await.is_err() {
                    return;
                }
            }
        });
    }

    /// One round: the head's checkpoint to every witness that has not cosigned it; the lines
    /// got are checked, kept durable, then served. Returns whether every witness has cosigned
    /// the head.
    fn round(&self) -> bool {
        let (head, note) = self.ledger.head();
        let size = head.tree_size;
        if size == 0 {
            return true;
        }
        let mut lines = match &*self.latest.lock().expect("cosigning lock") {
            Some((s, l)) if *s == size => l.clone(),
            _ => Vec::new(),
        };
        // The witnesses are asked at once, so a slow one delays no other.
        let lagging: Vec<usize> =
            (0..self.config.witnesses.len()).filter(|i| !lines.iter().any(|(j, _)| j == i)).collect();
        let note_bytes: &[u8] = &note;
        let got: Lines = std::thread::scope(|scope| {
            let asked: Vec<_> = lagging
                .iter()
                .map(|&i| scope.spawn(move || self.submit(i, size, note_bytes).map(|l| (i, l))))
                .collect();
            asked.into_iter().filter_map(|h| h.join().expect("a submission does not panic")).collect()
        });
        if !got.is_empty() {
            lines.extend(got);
            lines.sort_unstable_by_key(|(i, _)| *i);
            let mut cosigned = note.as_ref().clone();
            lines.iter().for_each(|(_, l)| cosigned.extend_from_slice(l.as_bytes()));
            match write_atomic(&self.dir, &format!("{size}.note"), &cosigned) {
                Ok(()) => self.prune(),
                // Still served from memory; a restart asks the witnesses again.
                Err(e) => tracing::warn!(tree_size = size, error = %e, "couldn't keep the cosigned checkpoint on disk"),
            }
            let mut status = self.status.lock().expect("cosigning status lock");
            for (i, _) in &lines {
                status[*i].last_cosigned_size = Some(size);
            }
            drop(status);
            *self.latest.lock().expect("cosigning lock") = Some((size, lines.clone()));
        }
        lines.len() == self.config.witnesses.len()
    }

    /// Submits the checkpoint of `size` to witness `i`; its checked cosignature line, or `None`
    /// (the failure counted, logged and shown in the status).
    fn submit(&self, i: usize, size: u64, note: &[u8]) -> Option<String> {
        // A first 409 teaches the witness's size; the second request uses it.
        for _ in 0..2 {
            let old = self.status.lock().expect("cosigning status lock")[i].known_size.unwrap_or(0);
            let outcome = self.submit_once(i, old, size, note);
            let mut status = self.status.lock().expect("cosigning status lock");
            let s = &mut status[i];
            let label = match &outcome {
                Ok(_) => Outcome::Cosigned,
                Err(f) => f.outcome,
            };
            s.submissions[Outcome::ALL.iter().position(|o| *o == label).expect("every outcome is listed")] += 1;
            match outcome {
                Ok(line) => {
                    s.known_size = Some(size);
                    s.last_error = None;
                    s.last_failure = None;
                    return Some(line);
                }
                Err(Failure { outcome: Outcome::Conflict, latest: Some(latest), .. })
                    if latest != s.known_size.unwrap_or(0) =>
                {
                    s.known_size = Some(latest);
                }
                Err(f) => {
                    let w = &self.config.witnesses[i];
                    let message = format!(
                        "witness {} at {}: {} (checkpoint of tree size {size}, old size {old})",
                        w.key.name, w.url, f.detail
                    );
                    let new_kind = s.last_failure != Some(f.outcome);
                    s.last_failure = Some(f.outcome);
                    if new_kind || s.last_warning.is_none_or(|t| t.elapsed() >= WARNING_INTERVAL) {
                        tracing::warn!(witness = %self.config.witnesses[i].key.name, "{message}");
                        s.last_warning = Some(Instant::now());
                    }
                    s.last_error = Some(message);
                    return None;
                }
            }
        }
        None
    }

    /// One `add-checkpoint` request: the checked cosignature line, or why not.
    fn submit_once(&self, i: usize, old: u64, size: u64, note: &[u8]) -> Result<String, Failure> {
        let w = &self.config.witnesses[i];
        let fail = |outcome, detail: String| Failure { outcome, latest: None, detail };
        let proof = match old {
            0 => Vec::new(),
            o if o >= size => Vec::new(),
            o => (self.ledger.prove_consistency(o, size))
                .map_err(|e| fail(Outcome::Refused, format!("couldn't prove consistency from {o}: {e}")))?,
        };
        let body = AddCheckpoint { old, proof, checkpoint: note.to_vec() }.to_bytes();
        let agent = ureq::AgentBuilder::new().timeout(self.config.request_timeout).build();
        let answer = agent.post(&format!("{}/add-checkpoint", w.url)).send_bytes(&body);
        let resp = match answer {
            Ok(r) => r,
            Err(ureq::Error::Status(409, r)) => {
                let is_size = r.content_type() == SIZE_CONTENT_TYPE;
                let latest = read_capped(r).ok().filter(|_| is_size).and_then(|b| parse_size(&b));
                let detail = match latest {
                    Some(l) => format!("refused as conflicting (409): it holds tree size {l}, or another root at it"),
                    None => "refused as conflicting (409) without a size".to_owned(),
                };
                return Err(Failure { outcome: Outcome::Conflict, latest, detail });
            }
            Err(ureq::Error::Status(code, r)) => {
                let text = read_capped(r).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
                let text: String = text.trim().chars().take(300).collect();
                return Err(fail(Outcome::Refused, format!("refused ({code}): {text}")));
            }
            Err(ureq::Error::Transport(e)) => return Err(fail(Outcome::Unreachable, format!("no answer: {e}"))),
        };
        let answer =
            read_capped(resp).map_err(|e| fail(Outcome::Unreachable, format!("couldn't read the answer: {e}")))?;
        let mut cosigned = note.to_vec();
        cosigned.extend_from_slice(&answer);
        let invalid = || fail(Outcome::InvalidCosignature, "answered with no valid cosignature by its key".into());
        let lines =
            cosignature::valid_cosignature_lines(&cosigned, std::slice::from_ref(&w.key)).map_err(|_| invalid())?;
        lines.into_iter().next().map(|(_, line)| line).ok_or_else(invalid)
    }

    /// The lines in `<size>.note` that verify against the configured witnesses, over the body
    /// of the ledger's own note at that size (`ours`, read from the store when not given); an
    /// unreadable or foreign file gives none.
    fn lines_on_disk(&self, size: u64, ours: Option<&[u8]>) -> Lines {
        let path = self.dir.join(format!("{size}.note"));
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "couldn't read a cosigned checkpoint; ignored");
                return Vec::new();
            }
        };
        let stored;
        let ours = match ours {
            Some(n) => n,
            None => match self.ledger.checkpoint_at(size) {
                Ok(Some(n)) => {
                    stored = n;
                    &stored
                }
                _ => return Vec::new(),
            },
        };
        let same_body = cosignature::note_body(&bytes).ok() == cosignature::note_body(ours).ok();
        match cosignature::valid_cosignature_lines(&bytes, &self.keys) {
            Ok(lines) if same_body => lines,
            _ => {
                tracing::warn!(path = %path.display(), "a cosigned checkpoint is not of this ledger's checkpoint; ignored");
                Vec::new()
            }
        }
    }

    /// `note` (the ledger's checkpoint of `size`) with every cosignature line held for it
    /// appended: from memory for the newest, else read back from disk and checked again.
    pub fn cosigned(&self, size: u64, note: &[u8]) -> Vec<u8> {
        let held = match &*self.latest.lock().expect("cosigning lock") {
            Some((s, lines)) if *s == size => Some(lines.clone()),
            _ => None,
        };
        let lines = held.unwrap_or_else(|| self.lines_on_disk(size, Some(note)));
        let mut out = note.to_vec();
        lines.iter().for_each(|(_, l)| out.extend_from_slice(l.as_bytes()));
        out
    }

    /// `note` with the lines held for `size` if they are in memory (the newest), without
    /// touching the disk: what `GET /checkpoint` serves.
    pub fn cosigned_head(&self, size: u64, note: &[u8]) -> Vec<u8> {
        let mut out = note.to_vec();
        if let Some((s, lines)) = &*self.latest.lock().expect("cosigning lock") {
            if *s == size {
                lines.iter().for_each(|(_, l)| out.extend_from_slice(l.as_bytes()));
            }
        }
        out
    }

    /// Each witness's state for `/v1/status`.
    pub fn status_json(&self) -> serde_json::Value {
        let status = self.status.lock().expect("cosigning status lock");
        let list: Vec<_> = (self.config.witnesses.iter().zip(status.iter()))
            .map(|(w, s)| {
                serde_json::json!({
                    "name": w.key.name,
                    "url": w.url,
                    "last_cosigned_size": s.last_cosigned_size,
                    "last_error": s.last_error,
                })
            })
            .collect();
        serde_json::Value::Array(list)
    }

    /// `zachetka_witness_submissions_total{witness,result}` and the last cosigned size, in
    /// Prometheus text.
    pub fn metrics_text(&self) -> String {
        let status = self.status.lock().expect("cosigning status lock");
        let mut out = String::from(
            "# TYPE zachetka_witness_submissions_total counter\n# TYPE zachetka_witness_cosigned_tree_size gauge\n",
        );
        for (w, s) in self.config.witnesses.iter().zip(status.iter()) {
            let name = w.key.name.replace('\\', "\\\\").replace('"', "\\\"");
            for (o, n) in Outcome::ALL.iter().zip(s.submissions) {
                out.push_str(&format!(
                    "zachetka_witness_submissions_total{{witness=\"{name}\",result=\"{}\"}} {n}\n",
                    o.label()
                ));
            }
            let size = s.last_cosigned_size.unwrap_or(0);
            out.push_str(&format!("zachetka_witness_cosigned_tree_size{{witness=\"{name}\"}} {size}\n"));
        }
        out
    }
}

/// Why a submission got no cosignature.
struct Failure {
    outcome: Outcome,
    /// The witness's size for the log, from a 409 answer.
    latest: Option<u64>,
    detail: String,
}

fn read_capped(resp: ureq::Response) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    resp.into_reader().take(RESPONSE_BYTES_MAX + 1).read_to_end(&mut out)?;
    if out.len() as u64 > RESPONSE_BYTES_MAX {
        return Err(std::io::Error::other("the witness's answer exceeds the cap"));
    }
    Ok(out)
}

fn parse_size(b: &[u8]) -> Option<u64> {
    std::str::from_utf8(b).ok()?.strip_suffix('\n')?.parse().ok()
}
