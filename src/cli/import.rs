//! `zachetka import`: a legacy system's history appended as signed imports (`zachetka::import`
//! makes the events), to a ledger directory or a running server, in input order, with one
//! result line per input line. Not the event making and not the rules.

use super::{client, open_ledger, read_key, write_stdout, Target};
use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use zachetka::import::{Importer, LineRefusal, Lines};

/// Events appended at once: a request's worth (the server's default request limit).
const CHUNK_LEN: usize = 1000;

/// Where the signed imports go: each chunk answers one receipt or refusal (as JSON) per event.
type Sink<'a> = Box<dyn FnMut(Vec<Value>) -> Result<Vec<Value>> + 'a>;

pub(super) fn run(target: Target, db: Option<&str>, key: &Path, system: &str, files: &[PathBuf]) -> Result<ExitCode> {
    let key = read_key(key)?;
    let ledger;
    let (origin, mut sink): (String, Sink) = match (target.dir, target.server) {
        (Some(dir), _) => {
            ledger = open_ledger(&dir, db)?;
            let origin = ledger.config().origin.clone();
            let ledger = &ledger;
            let sink = move |events: Vec<Value>| -> Result<Vec<Value>> {
                // Printed only once durable: a receipt on stdout is an acknowledgement.
                ledger
                    .append_blocking(events)
                    .into_iter()
                    .map(|r| {
                        Ok(match r {
                            Ok(receipt) => serde_json::to_value(receipt)?,
                            Err(refusal) => serde_json::to_value(refusal)?,
                        })
                    })
                    .collect()
            };
            (origin, Box::new(sink))
        }
        (None, Some(server)) => {
            // The origin is the first line of the server's checkpoint.
            let note = client::checkpoint(&server)?;
            let origin = note
                .lines()
                .next()
                .filter(|l| !l.is_empty())
                .ok_or_else(|| anyhow!("{server} served no checkpoint"))?;
            let origin = origin.to_owned();
            (origin, Box::new(move |events: Vec<Value>| client::post_events(&server, events)))
        }
        (None, None) => bail!("say where to import to: --dir or --server"),
    };
    let mut importer = Importer::new(&origin, system, key).map_err(|e| anyhow!("--system: {}", e.message))?;
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template("import {pos} lines {per_sec} {msg}").expect("a valid template"),
    );
    let mut totals = Totals::default();
    let mut inputs: Vec<(String, Box<dyn std::io::Read>)> = Vec::new();
    if files.is_empty() {
        inputs.push(("stdin".into(), Box::new(std::io::stdin())));
    }
    for f in files {
        let file = std::fs::File::open(f).with_context(|| format!("couldn't open {}", f.display()))?;
        inputs.push((f.display().to_string(), Box::new(file)));
    }
    for (name, input) in inputs {
        let mut chunk = Chunk::default();
        for item in Lines::new(std::io::BufReader::new(input)) {
            let (line, text) = item.with_context(|| format!("couldn't read {name}"))?;
            bar.inc(1);
            chunk.items.push(match text.and_then(|t| importer.event(&t)) {
                Ok((record, signed)) => Item { line, record: Some(record), event: Ok(signed) },
                Err(refusal) => Item { line, record: None, event: Err(refusal) },
            });
            if chunk.events() >= CHUNK_LEN {
                chunk.flush(&name, &mut sink, &mut totals)?;
            }
        }
        chunk.flush(&name, &mut sink, &mut totals)?;
    }
    bar.finish_and_clear();
    eprintln!(
        "import from {system}: {} lines, {} appended or already in the log, {} refused",
        totals.lines, totals.accepted, totals.refused
    );
    Ok(if totals.refused > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

#[derive(Default)]
struct Totals {
    lines: u64,
    accepted: u64,
    refused: u64,
}

struct Item {
    line: u64,
    record: Option<String>,
    event: Result<Value, LineRefusal>,
}

/// Input lines waiting for their events to be appended, in order.
#[derive(Default)]
struct Chunk {
    items: Vec<Item>,
}

impl Chunk {
    fn events(&self) -> usize {
        self.items.iter().filter(|i| i.event.is_ok()).count()
    }

    /// Appends the chunk's events and prints one line per input line, in input order.
    fn flush(&mut self, input: &str, sink: &mut Sink, totals: &mut Totals) -> Result<()> {
        let items = std::mem::take(&mut self.items);
        let events: Vec<Value> = items.iter().filter_map(|i| i.event.as_ref().ok().cloned()).collect();
        let sent = events.len();
        let mut results = if sent > 0 { sink(events)? } else { Vec::new() }.into_iter();
        for item in items {
            let mut out = json!({"input": input, "line": item.line});
            if let Some(r) = &item.record {
                out["record"] = json!(r);
            }
            let result = match item.event {
                Ok(_) => results.next().ok_or_else(|| anyhow!("the ledger answered fewer results than events"))?,
                Err(refusal) => json!({"code": refusal.code, "message": refusal.message}),
            };
            let refused = result.get("code").is_some();
            if let (Value::Object(o), Value::Object(r)) = (&mut out, result) {
                o.extend(r);
            }
            totals.lines += 1;
            if refused {
                totals.refused += 1;
            } else {
                totals.accepted += 1;
            }
            write_stdout(format_args!("{out}\n"))?;
        }
        Ok(())
    }
}
