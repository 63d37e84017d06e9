//! `zachetka vc issue|verify`: W3C VC 2.0 credentials with an `eddsa-jcs-2022` proof
//! (`zachetka::vc`, DESIGN 3.4) from the command line. A thin shell: the algorithm, the checks
//! and the refusal codes are the library's.

use super::{read_key, write_stdout};
use anyhow::{Context, Result};
use clap::Subcommand;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum VcAction {
    /// Issue a credential (a VC 2.0 JSON object without `proof`, from a file or stdin) by the
    /// ledger key as did:key: sets `issuer` when absent, adds the proof, prints the credential.
    Issue {
        /// The ledger's key file (<dir>/ledger.key).
        #[arg(long)]
        key: PathBuf,
        /// The proof's `created` (RFC 3339 UTC); now when absent.
        #[arg(long)]
        created: Option<String>,
        /// The credential file; stdin when absent or `-`.
        file: Option<PathBuf>,
    },
    /// Verify a credential (file or stdin): its eddsa-jcs-2022 proof under the strict Ed25519
    /// rule, its did:key verification method and that the issuer controls it. Prints
    /// `{"verified":true,"issuer","created"}` and exits 0, or `{"code","message"}` and exits 1.
    Verify {
        /// Also require this issuer (the ledger's did:key, as `init` and the checkpoint key name it).
        #[arg(long)]
        issuer: Option<String>,
        file: Option<PathBuf>,
    },
}

fn read_input(file: Option<&Path>) -> Result<serde_json::Value> {
    let text = match file {
        None => std::io::read_to_string(std::io::stdin())?,
        Some(p) if p == Path::new("-") => std::io::read_to_string(std::io::stdin())?,
        Some(p) => std::fs::read_to_string(p).with_context(|| format!("couldn't read {}", p.display()))?,
    };
    zachetka::jcs::parse_strict(text.as_bytes()).context("the credential is not JSON (or repeats a key)")
}

pub fn run(action: VcAction) -> Result<ExitCode> {
    match action {
        VcAction::Issue { key, created, file } => {
            let key = read_key(&key)?;
            let credential = read_input(file.as_deref())?;
            let created = created.unwrap_or_else(|| {
                zachetka::time::format_rfc3339(zachetka::time::Clock::now_unix(&zachetka::time::SystemClock))
            });
            let issued = zachetka::vc::issue(&credential, &key, &created).context("couldn't issue the credential")?;
            write_stdout(format_args!("{issued}\n"))?;
            Ok(ExitCode::SUCCESS)
        }
        VcAction::Verify { issuer, file } => {
            let credential = read_input(file.as_deref())?;
            let outcome = zachetka::vc::verify(&credential).and_then(|v| match issuer {
                Some(want) if want != v.issuer => {
                    Err(zachetka::vc::VcError::IssuerMismatch { issuer: v.issuer, method: want })
                }
                _ => Ok(v),
            });
            match outcome {
                Ok(v) => {
                    let report = serde_json::json!({"verified": true, "issuer": v.issuer, "created": v.created});
                    write_stdout(format_args!("{report}\n"))?;
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    let report = serde_json::json!({"code": e.code(), "message": e.to_string()});
                    write_stdout(format_args!("{report}\n"))?;
                    Ok(ExitCode::from(1))
                }
            }
        }
    }
}
