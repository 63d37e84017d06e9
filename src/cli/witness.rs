//! Witnesses on the command line (DESIGN 3.6): `witness` (the stateful witness served over
//! HTTP), `cosign` (the manual, stateless tool: a witness adds its cosignature to a
//! checkpoint note whose ledger signature it checked) and the `--witness`/`--witnesses-required`
//! demand of `verify`. The formats are `zachetka::cosignature`'s; no rule lives here.

use super::{read_key, write_stdout};
use anyhow::{anyhow, bail, Context, Result};
use std::path::Path;
use zachetka::cosignature::{Witness, WitnessKey};

/// The witnesses `verify` is given and how many of them must have cosigned.
pub struct Demand {
    pub keys: Vec<WitnessKey>,
    pub required: usize,
}

impl Demand {
    /// Each `--witness` parsed (a bad one stops the command before anything is verified);
    /// `required` defaults to every distinct witness given.
    pub fn parse(vkeys: &[String], required: Option<usize>) -> Result<Self> {
        let mut keys: Vec<WitnessKey> = Vec::new();
        for v in vkeys {
            let k = WitnessKey::parse(v).map_err(|e| anyhow!("--witness {v:?} is no witness verifier key: {e}"))?;
            if !keys.contains(&k) {
                keys.push(k);
            }
        }
        let required = required.unwrap_or(keys.len());
        if required > keys.len() {
            bail!("--witnesses-required {required} is more than the {} distinct witnesses given", keys.len());
        }
        Ok(Self { keys, required })
    }
}

/// The witness of a key file and a name.
pub fn open(key: &Path, name: &str) -> Result<Witness> {
    Ok(Witness::new(name, read_key(key)?)?)
}

/// Checks the ledger's signature on the note, then writes it with the witness's cosignature
/// (timestamped now) to `out` or stdout.
pub fn cosign(witness: &Witness, ledger_vkey: &str, note: &Path, out: Option<&Path>) -> Result<()> {
    let bytes = super::record::read(note)?;
    // The checkpoint's key name is the ledger's origin (DESIGN 3.3).
    let origin = ledger_vkey.split('+').next().unwrap_or_default();
    zachetka::checkpoint::verify_checkpoint(&bytes, ledger_vkey, origin)
        .with_context(|| format!("{} is not a checkpoint the ledger {origin} signed; not cosigned", note.display()))?;
    let now = zachetka::time::Clock::now_unix(&zachetka::time::SystemClock);
    let cosigned = witness.cosign(&bytes, u64::try_from(now).context("the clock is before 1970")?)?;
    match out {
        Some(p) => std::fs::write(p, &cosigned).with_context(|| format!("couldn't write {}", p.display()))?,
        None => write_stdout(format_args!("{}", String::from_utf8_lossy(&cosigned)))?,
    }
    Ok(())
}

/// `zachetka witness`: the stateful witness (`zachetka::witness`) served over HTTP until SIGINT
/// or SIGTERM.
pub fn serve(
    key: &Path,
    name: &str,
    state: &Path,
    logs: &[String],
    listen: &str,
    config: zachetka::api::server::ServerConfig,
) -> Result<()> {
    let witness = open(key, name)?;
    let vkey = witness.verifier_key().encode();
    let logs = zachetka::witness::Logs::parse(logs).map_err(|e| anyhow!("--log: {e}"))?;
    let clock = std::sync::Arc::new(zachetka::time::SystemClock);
    let service = zachetka::witness::WitnessService::open(state, witness, logs, clock)?;
    let router = zachetka::api::witness::router(std::sync::Arc::new(service));
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async move {
        let listener =
            tokio::net::TcpListener::bind(listen).await.with_context(|| format!("couldn't listen on {listen}"))?;
        eprintln!("witness {name} on http://{}/add-checkpoint", listener.local_addr()?);
        eprintln!("witness verifier key: {vkey}");
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("couldn't listen for SIGTERM")?;
        let shutdown = async move {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        };
        zachetka::api::server::serve(listener, router, config, shutdown).await?;
        Ok(())
    })
}
