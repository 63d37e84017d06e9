//! `zachetka export` and `zachetka verify`: the learner record bundle from a ledger directory,
//! and its offline check. Not the format or the checks (crate `zachetka-record`).

use super::write_stdout;
use anyhow::{anyhow, Context, Result};
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use zachetka::ledger::Ledger;
use zachetka::record::{Disclosure, Options, OtherCheckpoint};

/// Exports `learner`'s bundle once the read models have applied the whole log; with `issuer`
/// (the ledger key), as a W3C VC 2.0 credential whose evidence is the bundle, after checking the
/// bundle as any verifier would. With `cosigning`, the checkpoint carries the witnesses'
/// cosignatures collected for it, each checked against its witness's key.
/// Which bundle `export` writes: whose, what it discloses, which checkpoint it is proved in
/// (and the cosignatures it may carry).
pub struct Export<'a> {
    pub learner: &'a str,
    pub only: Option<&'a str>,
    pub cosigning: Option<&'a zachetka::cosigning::Cosigning>,
    pub at: zachetka::record::BundleAt,
}

pub fn export(
    ledger: &Ledger,
    what: &Export<'_>,
    out: Option<&Path>,
    issuer: Option<&zachetka::keys::KeyPair>,
) -> Result<()> {
    let Export { learner, only, cosigning, at } = *what;
    let disclosure = only.map(Disclosure::parse).transpose().map_err(|m| anyhow!(m))?.unwrap_or_default();
    ledger.read_side().wait_applied_blocking(ledger.head().0.tree_size);
    let bundle = zachetka::record::export_learner_with(ledger, learner, &disclosure, cosigning, at)?;
    let json = bundle.to_json();
    if let Some(key) = issuer {
        let config = ledger.config();
        let report = zachetka_record::verify(&json, &config.verifier_key, &Options::default());
        if !report.ok {
            return Err(anyhow!("the exported bundle does not verify: {:?}", report.failures));
        }
        let summary =
            serde_json::json!({"record": report.record, "withheld": report.withheld, "tree_size": report.tree_size});
        let now = zachetka::time::format_rfc3339(zachetka::time::Clock::now_unix(&zachetka::time::SystemClock));
        let credential = zachetka::vc::learner_record_credential(
            &config.origin,
            learner,
            summary,
            serde_json::from_slice(&json)?,
            &now,
        );
        let issued = zachetka::vc::issue(&credential, key, &now).map_err(|e| anyhow!("{e}"))?;
        let text = serde_json::to_string(&issued)?;
        return match out {
            Some(path) => {
                Ok(std::fs::write(path, text + "\n").with_context(|| format!("couldn't write {}", path.display()))?)
            }
            None => write_stdout(format_args!("{text}\n")),
        };
    }
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

pub(super) fn read(path: &Path) -> Result<Vec<u8>> {
    if path == Path::new("-") {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)?;
        return Ok(buf);
    }
    std::fs::read(path).with_context(|| format!("couldn't read {}", path.display()))
}

/// What the verifier demands of the completeness member (`--require-complete`, `--max-uncovered`).
pub struct CompletenessPolicy {
    pub require: bool,
    pub max_uncovered: u64,
}

/// A second checkpoint and the consistency proof to it (`--checkpoint`, `--consistency`).
pub struct Others<'a> {
    pub checkpoint: Option<&'a Path>,
    pub consistency: Option<&'a Path>,
}

/// Verifies a bundle file, under the region config at `region` when given; exit status 0
/// verified, 1 not (the reasons printed).
pub fn verify(
    bundle: &Path,
    vkey: &str,
    json: bool,
    others: Others<'_>,
    region: Option<&Path>,
    completeness: CompletenessPolicy,
    witnesses: super::witness::Demand,
) -> Result<ExitCode> {
    let bytes = read(bundle)?;
    let region = match region {
        Some(p) => {
            let v: serde_json::Value = serde_json::from_slice(&read(p)?)
                .with_context(|| format!("{} is not JSON (a region config, as init --rules takes)", p.display()))?;
            Some(zachetka::rules::region_from_json(v).map_err(|e| anyhow!("{}: {e}", p.display()))?)
        }
        None => None,
    };
    let other = match (others.checkpoint, others.consistency) {
        (Some(c), Some(p)) => Some(OtherCheckpoint {
            note: read(c)?,
            proof: serde_json::from_slice(&read(p)?).with_context(|| {
                format!("{} is not a consistency proof {{\"first\",\"second\",\"hashes\"}}", p.display())
            })?,
        }),
        _ => None,
    };
    let options = Options {
        other,
        region,
        require_complete: completeness.require,
        max_uncovered: Some(completeness.max_uncovered),
        witnesses: witnesses.keys,
        witnesses_required: witnesses.required,
        ..Default::default()
    };
    let report = zachetka::record::verify(&bytes, vkey, &options);
    match (json, report.unreadable()) {
        (true, _) => write_stdout(format_args!("{}\n", report.to_json()))?,
        // Of no learner and no ledger: the file is named instead.
        (false, Some(u)) => {
            let name =
                if bundle == Path::new("-") { "the standard input".into() } else { bundle.display().to_string() };
            write_stdout(format_args!("NOT VERIFIED: {name} is not a record bundle ({}): {}\n", u.code, u.message))?
        }
        (false, None) => write_stdout(format_args!("{}", report.to_text()))?,
    }
    Ok(if report.ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// `zachetka verify --receipt`: an append's receipt against the checkpoint of its size and its
/// inclusion proof (and the entry's bytes, if given). Exits 0 verified, 1 not (with the code).
pub fn verify_receipt(
    receipt: &Path,
    note: &Path,
    proof: &Path,
    entry: Option<&Path>,
    vkey: &str,
    json: bool,
) -> Result<ExitCode> {
    let entry = entry.map(read).transpose()?;
    let result = zachetka_record::verify_receipt(&read(receipt)?, &read(note)?, &read(proof)?, entry.as_deref(), vkey);
    let (ok, text, value) = match &result {
        Ok(r) => (
            true,
            format!(
                "receipt verified: entry {} is in the log of {} as of tree size {} (root {}){}\n",
                r.seq,
                r.origin,
                r.tree_size,
                r.root_hash,
                if r.entry_checked { "; the entry's bytes hash to its leaf hash" } else { "" }
            ),
            serde_json::json!({"ok": true, "receipt": r}),
        ),
        Err(e) => (
            false,
            format!("receipt NOT verified: {}: {e}\n", e.code()),
            serde_json::json!({"ok": false, "code": e.code(), "message": e.to_string()}),
        ),
    };
    if json {
        write_stdout(format_args!("{value}\n"))?;
    } else {
        write_stdout(format_args!("{text}"))?;
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
