//! `zachetka export` and `zachetka verify`: the learner record bundle from a ledger directory,
//! and its offline check. Not the format or the checks (crate `zachetka-record`).

use super::write_stdout;
use anyhow::{anyhow, Context, Result};
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use zachetka::ledger::Ledger;
use zachetka::record::{Disclosure, Options, OtherCheckpoint};

/// Exports `learner`'s bundle once the read models have applied the whole log.
pub fn export(ledger: &Ledger, learner: &str, only: Option<&str>, out: Option<&Path>) -> Result<()> {
    let disclosure = only.map(Disclosure::parse).transpose().map_err(|m| anyhow!(m))?.unwrap_or_default();
    ledger.read_side().wait_applied_blocking(ledger.head().0.tree_size);
    let bundle = zachetka::record::export_learner(ledger, learner, &disclosure)?;
    let json = bundle.to_json();
    match out {
        Some(path) => {
            let mut f = std::fs::File::create(path).with_context(|| format!("couldn't create {}", path.display()))?;
            f.write_all(&json)?;
            f.write_all(b"\n")?;
            f.sync_all()?;
            let withheld = bundle.entries.iter().filter(|i| i.leaf_hash.is_some()).count();
            eprintln!(
                "wrote {} ({} bytes): {} entries ({withheld} withheld), {} authority entries, checkpoint of tree size {}",
                path.display(),
                json.len() + 1,
                bundle.entries.len(),
                bundle.authority.len(),
                zachetka::checkpoint::parse_unverified(bundle.checkpoint.as_bytes()).map_or(0, |(_, h)| h.tree_size)
            );
        }
        None => write_stdout(format_args!("{}\n", String::from_utf8_lossy(&json)))?,
    }
    Ok(())
}

fn read(path: &Path) -> Result<Vec<u8>> {
    if path == Path::new("-") {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)?;
        return Ok(buf);
    }
    std::fs::read(path).with_context(|| format!("couldn't read {}", path.display()))
}

/// Verifies a bundle file; exit status 0 verified, 1 not (the reasons printed).
pub fn verify(
    bundle: &Path,
    vkey: &str,
    json: bool,
    checkpoint: Option<&Path>,
    consistency: Option<&Path>,
) -> Result<ExitCode> {
    let bytes = read(bundle)?;
    let other = match (checkpoint, consistency) {
        (Some(c), Some(p)) => Some(OtherCheckpoint {
            note: read(c)?,
            proof: serde_json::from_slice(&read(p)?).with_context(|| {
                format!("{} is not a consistency proof {{\"first\",\"second\",\"hashes\"}}", p.display())
            })?,
        }),
        _ => None,
    };
    let report = zachetka::record::verify(&bytes, vkey, &Options { other, ..Default::default() });
    if json {
        write_stdout(format_args!("{}\n", report.to_json()))?;
    } else {
        write_stdout(format_args!("{}", report.to_text()))?;
    }
    Ok(if report.ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
