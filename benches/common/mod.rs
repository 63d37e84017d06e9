//! What the benches share: the workload (signed ~500-byte grade events over a municipality's
//! learner streams), the submitters that drive a ledger, and the statistics.
#![allow(dead_code)] // each bench binary uses its own part

use rayon::prelude::*;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Instant;
use zachetka::keys::KeyPair;
use zachetka::ledger::Ledger;

pub const ORIGIN: &str = "ru-47.edu.example";

pub fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

pub fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// Learner streams the pipeline figure spreads events over (a large municipality's journals).
pub const LEARNERS: u64 = 50_000;

/// `n` signed events with ~500-byte canonical forms, signed on every core.
pub fn signed_events(teachers: &[KeyPair], first: u64, n: u64) -> Vec<Value> {
    (first..first + n)
        .into_par_iter()
        .map(|i| {
            let key = &teachers[(i % teachers.len() as u64) as usize];
            let ev = json!({
                "ledger": ORIGIN,
                "stream": format!("learner/47-{:06}", i % LEARNERS),
                "type": "journal.grade_recorded",
                "id": zachetka::event::uuid_from_bytes((i as u128).to_be_bytes()),
                "occurred_at": "2026-11-23T08:00:00Z",
                "author": key.did(),
                "data": {"v": 1, "subject": "Математика", "mark": 2 + (i % 4) as i64, "weight": 3, "kind": "контрольная",
                         "scale": "five_point", "lesson_date": "2026-11-23", "class": "5А", "institution": "sch-0042",
                         "lesson": format!("lesson-{}", i / 30), "comment": "работа у доски"}
            });
            zachetka::event::sign_event(&ev, key).unwrap()
        })
        .collect()
}

/// Appends `events` from `submitters` threads in requests of `request_len`, submitter `i` through
/// node `i % nodes.len()`; returns events/s.
pub fn pipeline_rate(nodes: &[Ledger], events: Vec<Value>, submitters: usize, request_len: usize) -> f64 {
    let n = events.len();
    let chunks: Vec<Vec<Value>> = events.chunks(request_len).map(<[Value]>::to_vec).collect();
    let queue = Arc::new(std::sync::Mutex::new(chunks.into_iter()));
    let started = Instant::now();
    std::thread::scope(|s| {
        for i in 0..submitters {
            let queue = queue.clone();
            let ledger = &nodes[i % nodes.len()];
            s.spawn(move || loop {
                let Some(chunk) = queue.lock().unwrap().next() else { return };
                for r in ledger.append_blocking(chunk) {
                    r.expect("bench events are valid");
                }
            });
        }
    });
    n as f64 / started.elapsed().as_secs_f64()
}

/// The 500 teacher keys the workload's events are signed with.
pub fn teachers() -> Vec<KeyPair> {
    (0..500u64)
        .map(|i| KeyPair::from_seed(&zachetka::keys::decode_hex32(&format!("{:064x}", i + 7)).unwrap()))
        .collect()
}

/// Reads one HTTP/1.1 response (status line, headers, a `Content-Length` body) from a kept-alive
/// connection; `None` if the server closed it or sent something else.
pub async fn read_response(conn: &mut tokio::io::BufReader<tokio::net::TcpStream>) -> Option<(u16, Vec<u8>)> {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt};
    let mut line = String::new();
    conn.read_line(&mut line).await.ok()?;
    let status: u16 = line.split_whitespace().nth(1)?.parse().ok()?;
    let mut len = 0usize;
    loop {
        line.clear();
        if conn.read_line(&mut line).await.ok()? == 0 {
            return None;
        }
        if line == "\r\n" {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().ok()?;
            }
        }
    }
    let mut body = vec![0u8; len];
    conn.read_exact(&mut body).await.ok()?;
    Some((status, body))
}
