//! `zachetka audit`: opens the store read-only (or PostgreSQL), runs `zachetka::audit` with a
//! progress bar on stderr, and prints every violation and a summary (or the report as JSON).
//! Not the audit itself (`zachetka::audit` decides what is a violation).

use super::{store_dir, write_stdout};
use anyhow::{Context, Result};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use zachetka::store::postgres::PgStore;
use zachetka::store::sled::SledStore;
use zachetka::store::Store;

/// Audits the ledger in `dir` (or the database): exit 0 if clean, 1 if anything is wrong.
pub(super) fn audit(
    dir: &Path,
    db: Option<&str>,
    json: bool,
    served: Option<(String, Vec<zachetka::audit::ServedDigest>)>,
) -> Result<ExitCode> {
    let store: Arc<dyn Store> = match db {
        Some(url) => Arc::new(PgStore::open_read_only(url).context("couldn't open the PostgreSQL store")?),
        None => Arc::new(
            SledStore::open_read_only(&store_dir(dir))
                .with_context(|| format!("couldn't read the store in {}", dir.display()))?,
        ),
    };
    let snapshots = dir.join("snapshots");
    let derived = zachetka::audit::DerivedSources { snapshots: snapshots.is_dir().then_some(snapshots), served };
    let report = audit_with_progress(&*store, &derived)?;
    let mut out = String::new();
    if json {
        out = serde_json::to_string_pretty(&report)? + "\n";
    } else {
        for v in &report.violations {
            out += &format!("{v}\n");
            for c in report.consequences.iter().filter(|c| matches!(v.position, zachetka::audit::Position::Entry { seq } if seq == c.caused_by && is_cause(v.code))) {
                out += &format!("  consequence: {} x {}: {}\n", c.count, c.code, c.message);
            }
        }
        for w in &report.warnings {
            out += &format!("warning: {w}\n");
        }
        let consequences: u64 = report.consequences.iter().map(|c| c.count).sum();
        out += &format!(
            "audited {} entries, {} signatures, {} checkpoints ({} consecutive pairs consistent), {} streams, {} \
             completeness commitments recomputed of {}: {}\n",
            report.entries_checked,
            report.signatures_checked,
            report.checkpoints_checked,
            report.checkpoint_pairs_checked,
            report.streams_checked,
            report.commitments_recomputed,
            report.origin,
            if report.is_clean() {
                "clean".to_owned()
            } else {
                let n = report.violations.len();
                let found = format!("{n} violation{}", if n == 1 { "" } else { "s" });
                match consequences {
                    0 => found,
                    1 => format!("{found}, and 1 mismatch as a consequence"),
                    c => format!("{found}, and {c} mismatches as their consequences"),
                }
            }
        );
        if let Some(grew) = report.log_grew_to {
            out += &format!(
                "the log grew to {grew} entries while the audit ran (a server appending): entries {} to {} are for \
                 the next audit\n",
                report.tree_size,
                grew - 1
            );
        }
        let imported = &report.imported;
        out += &format!("imported entries: {}\n", imported.entries);
        for k in &imported.by_key {
            out += &format!(
                "  by {}: {} (entries {} to {}, recorded {} to {})\n",
                k.key, k.entries, k.first_seq, k.last_seq, k.first_recorded_at, k.last_recorded_at
            );
        }
        if !report.warnings.is_empty() {
            out += &format!("{} warnings (they do not fail the audit)\n", report.warnings.len());
        }
        let d = &report.derived;
        out +=
            &format!("compared with the log: {} snapshot sections in {} snapshots", d.snapshot_sections, d.snapshots);
        if let Some(from) = &d.served_by {
            out += &format!(", {} read models served by {from}", d.served_models);
        }
        out += "\n";
        for n in &d.not_compared {
            out += &format!("not compared: {n}\n");
        }
    }
    write_stdout(format_args!("{out}"))?;
    if !report.is_clean() {
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// Codes of an entry whose bytes changed (a cause consequences are counted against).
fn is_cause(code: &str) -> bool {
    matches!(code, "leaf_hash_mismatch" | "record_malformed" | "entry_missing")
}

fn audit_with_progress(
    store: &dyn Store,
    derived: &zachetka::audit::DerivedSources,
) -> Result<zachetka::audit::AuditReport> {
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("audit {bar:40} {pos}/{len} entries {per_sec} eta {eta}")
            .expect("valid template"),
    );
    let report = zachetka::audit::audit_with(store, derived, &|done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })?;
    bar.finish_and_clear();
    Ok(report)
}
