//! The demo driver of `zachetka demo`: feeds `zachetka::demo::DemoRegion`'s signed events to
//! the ledger (two batches signed ahead, up to 16,384 events in the ledger at once) with a
//! progress bar, and
//! the demo's readers: a token per role with a ready `curl` line. Not the demo region itself
//! (`zachetka::demo`).

use super::write_stdout;
use anyhow::{anyhow, bail, Result};
use std::path::Path;
use zachetka::access::{Role, Scope};
use zachetka::ledger::Ledger;

/// Labels of the demo's tokens start so; each run revokes the live ones of earlier runs.
const DEMO_LABEL: &str = "demo: ";

/// Creates a token for each kind of reader of the demo region (an auditor, one school's staff,
/// one learner's parent, and in a region with a history one student reading their lifelong
/// profile) in `tokens`, revoking those of earlier demo runs, and prints each with a `curl` line
/// against `listen`. The ids are real ids of a region of `size`.
pub(super) fn print_tokens(tokens: &Path, size: zachetka::demo::DemoSize, history: bool, listen: &str) -> Result<()> {
    for t in zachetka::access::read_tokens(tokens)? {
        if !t.revoked && t.label.starts_with(DEMO_LABEL) {
            zachetka::access::revoke_token(tokens, &t.id)?;
        }
    }
    let sample = zachetka::demo::sample(size);
    let base = format!("http://{}", listen.replace("0.0.0.0", "127.0.0.1"));
    let journal = [sample.school.as_str(), &sample.class, sample.subject].map(path_segment).join("/");
    let mut readers = vec![
        ("an auditor (every read)", Role::Auditor, Scope::Region, "/v1/entries?limit=3".to_owned()),
        (
            "staff of one school",
            Role::Staff,
            Scope::Institution(sample.school.clone()),
            format!("/v1/projections/journals/{journal}"),
        ),
        (
            "one learner's parent",
            Role::Learner,
            Scope::Learner(sample.learner.clone()),
            format!("/v1/projections/diaries/{}", path_segment(&sample.learner)),
        ),
    ];
    if history {
        readers.push((
            "a student whose profile runs from the kindergarten queue to college (earlier years imported)",
            Role::Learner,
            Scope::Learner(sample.lifelong.clone()),
            format!("/v1/projections/profiles/{}", path_segment(&sample.lifelong)),
        ));
    }
    write_stdout(format_args!(
        "readers' tokens (in {}; each shown only now):
",
        tokens.display()
    ))?;
    for (who, role, scope, path) in readers {
        let label = format!("{DEMO_LABEL}{who}");
        let (id, token) = super::token::create(tokens, role, scope.clone(), &label)?;
        let scope = zachetka::access::scope_text(&scope);
        write_stdout(format_args!(
            "  {who}: token {id}, {} of {scope}
    curl -H 'Authorization: Bearer {token}' '{base}{path}'
",
            role.as_str()
        ))?;
    }
    Ok(())
}

/// A path segment percent-encoded (RFC 3986: everything but unreserved characters), so that a
/// class such as `5А` or a subject such as `Математика` is one valid URL segment.
fn path_segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            b => format!("%{b:02X}"),
        })
        .collect()
}

/// The demo ledger's clock: while the demo's year is written, pinned to the day being written (a
/// ledger living through that year records each event on its day, so the ledger-time rules
/// accept it); the system clock otherwise.
#[derive(Default)]
pub(super) struct DemoClock(std::sync::atomic::AtomicI64);

impl DemoClock {
    /// Pins the clock at unix time `at` (0 releases it to the system clock).
    fn pin(&self, at: i64) {
        self.0.store(at, std::sync::atomic::Ordering::SeqCst);
    }
}

impl zachetka::time::Clock for DemoClock {
    fn now_unix(&self) -> i64 {
        match self.0.load(std::sync::atomic::Ordering::SeqCst) {
            0 => zachetka::time::Clock::now_unix(&zachetka::time::SystemClock),
            at => at,
        }
    }
}

/// Events the demo driver keeps in the ledger at once (verified, queued, sequenced, committing),
/// and at most so many batches (a day's batch may be small).
const IN_FLIGHT_EVENTS: u64 = 16_384;
const IN_FLIGHT_BATCHES: usize = 256;

pub(super) fn build_demo(
    ledger: &Ledger,
    size: zachetka::demo::DemoSize,
    targets: Option<zachetka::demo::IndicatorTargets>,
    clock: &DemoClock,
) -> Result<()> {
    let have = ledger.head().0.tree_size;
    if have > 0 {
        eprintln!("the demo ledger already holds {have} entries; serving it as it is");
        return Ok(());
    }
    let origin = &ledger.config().origin;
    let mut region = match targets {
        Some(t) => zachetka::demo::DemoRegion::with_targets(origin, size, t),
        None => zachetka::demo::DemoRegion::new(origin, size),
    };
    if region.authority_did() != ledger.config().authority {
        bail!("the ledger's authority is not the demo authority; use a fresh --dir");
    }
    let bar = indicatif::ProgressBar::new(region.remaining());
    bar.set_style(
        indicatif::ProgressStyle::with_template("demo {bar:40} {pos}/{len} events {per_sec} eta {eta}")
            .expect("valid template"),
    );
    let started = std::time::Instant::now();
    let mut appended = 0u64;
    // Two batches in flight: one being signed while the ledger appends the other.
    let (tx, rx) = std::sync::mpsc::sync_channel::<(Vec<serde_json::Value>, Option<i64>)>(2);
    let built = std::thread::scope(|s| -> Result<()> {
        s.spawn(move || loop {
            let (batch, recorded_at) = region.next_batch_recorded(4000);
            if batch.is_empty() || tx.send((batch, recorded_at)).is_err() {
                return;
            }
        });
        // Batches in the ledger at once, up to IN_FLIGHT_EVENTS: batch N+1 is verified while N
        // is sequenced and earlier ones commit, and the sequencer gathers what queued into one
        // commit.
        let mut in_flight: std::collections::VecDeque<(u64, zachetka::ledger::Pending)> = Default::default();
        let mut in_flight_events = 0u64;
        let mut settle = |(n, pending): (u64, zachetka::ledger::Pending)| -> Result<()> {
            for r in pending.wait_blocking() {
                if let Err(refusal) = r {
                    bail!("demo event refused: {refusal}");
                }
            }
            appended += n;
            bar.inc(n);
            Ok(())
        };
        let mut pinned: Option<i64> = None;
        for (batch, recorded_at) in rx {
            let n = batch.len() as u64;
            // One local day per batch: before the clock moves to another day, the sequencer has
            // read it for every batch of the day before (they must be recorded on their own day).
            // Their commits need not wait: the ledger time of a batch is fixed when it is sequenced.
            if let Some(at) = recorded_at {
                let day = zachetka::demo::DemoRegion::local_day;
                if pinned.is_some_and(|p| day(p) != day(at)) {
                    for (_, pending) in in_flight.iter_mut() {
                        pending.wait_sequenced_blocking();
                    }
                }
                let at = pinned.map_or(at, |p| p.max(at));
                clock.pin(at);
                pinned = Some(at);
            }
            // IN_FLIGHT_BATCHES submissions (and the read side's commitments, one at a time)
            // never fill the sequencer's queue (1,024), so `busy` cannot happen here.
            let pending = ledger.submit(batch).map_err(|r| anyhow!("demo batch refused: {r}"))?;
            in_flight.push_back((n, pending));
            in_flight_events += n;
            while in_flight_events > IN_FLIGHT_EVENTS || in_flight.len() >= IN_FLIGHT_BATCHES {
                let oldest = in_flight.pop_front().expect("non-empty");
                in_flight_events -= oldest.0;
                settle(oldest)?;
            }
        }
        while let Some(b) = in_flight.pop_front() {
            settle(b)?;
        }
        Ok(())
    });
    clock.pin(0);
    built?;
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "demo: {appended} events signed and appended in {secs:.1} s ({:.0} events/s, signing and rules included); {}",
        appended as f64 / secs,
        zachetka::api::head_summary(ledger)
    );
    Ok(())
}
