//! The demo driver of `zachetka demo`: feeds `zachetka::demo::DemoRegion`'s signed events to
//! the ledger (two batches signed ahead, four in the ledger at once) with a progress bar. Not
//! the demo region itself (`zachetka::demo`).

use anyhow::{anyhow, bail, Result};
use zachetka::ledger::Ledger;

pub(super) fn build_demo(ledger: &Ledger, size: zachetka::demo::DemoSize) -> Result<()> {
    let have = ledger.head().0.tree_size;
    if have > 0 {
        eprintln!("the demo ledger already holds {have} entries; serving it as it is");
        return Ok(());
    }
    let mut region = zachetka::demo::DemoRegion::new(&ledger.config().origin, size);
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
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<serde_json::Value>>(2);
    std::thread::scope(|s| -> Result<()> {
        s.spawn(move || loop {
            let batch = region.next_batch(4000);
            if batch.is_empty() || tx.send(batch).is_err() {
                return;
            }
        });
        // Up to four batches in the ledger at once: batch N+1 is verified while N commits.
        let mut in_flight: std::collections::VecDeque<(u64, zachetka::ledger::Pending)> = Default::default();
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
        for batch in rx {
            let n = batch.len() as u64;
            // Four submissions never fill the sequencer's queue, so `busy` cannot happen here.
            let pending = ledger.submit(batch).map_err(|r| anyhow!("demo batch refused: {r}"))?;
            in_flight.push_back((n, pending));
            if in_flight.len() >= 4 {
                settle(in_flight.pop_front().expect("non-empty"))?;
            }
        }
        while let Some(b) = in_flight.pop_front() {
            settle(b)?;
        }
        Ok(())
    })?;
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "demo: {appended} events signed and appended in {secs:.1} s ({:.0} events/s, signing and rules included); {}",
        appended as f64 / secs,
        zachetka::api::head_summary(ledger)
    );
    Ok(())
}
