//! Overload of a real `zachetka serve` process on loopback (issue "[reliability]" item 8):
//! many concurrent submitters, each on its own keep-alive connection, posting one signed
//! event at a time, for a bounded time and a bounded number of events, 127.0.0.1 only.
//!
//! The figure it is meant to reach, and why: beyond what the pipeline can take, the server
//! refuses at once instead of queueing. Before the admission bound, 12,000 submitters for 20 s
//! got 0 `busy`, p50 1.8 s, p99 6.9 s and a 1.05 GB server. Target: a `busy` answer within
//! p99 < 100 ms (a client can go elsewhere or back off at once), admitted answers p99 < 2 s
//! (the bound holds about a second of work), and the server's peak RSS < 500 MB (bounded by
//! admission and connections, not by the number of clients).
//!
//! Run: `cargo bench --bench overload -- [--submitters 12000] [--seconds 20] [--events 400000]
//! [--rounds 1] [--honor-retry-after 1]` (0: a refused submitter retries at once). Reports, per round and as medians over rounds: accepted events/s, the share
//! of `busy`, p50/p99 of all answers, of accepted answers and of `busy` answers (the time to a
//! busy answer), connections the server closed, and the server's peak RSS (VmHWM).

use std::io::BufRead;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

mod common;
use common::*;

/// A `zachetka serve` child over a fresh bare ledger (no rules: the figure is the server's).
struct Server {
    child: std::process::Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start() -> Self {
        let exe = env!("CARGO_BIN_EXE_zachetka");
        let dir = tempfile::tempdir().unwrap();
        let ledger = dir.path().join("ledger");
        let init = std::process::Command::new(exe)
            .args(["init", "--rules", "none", "--origin", ORIGIN, "--dir"])
            .arg(&ledger)
            .output()
            .unwrap();
        assert!(init.status.success(), "{}", String::from_utf8_lossy(&init.stderr));
        let mut child = std::process::Command::new(exe)
            .args(["serve", "--listen", "127.0.0.1:0", "--connections-max", "16000", "--dir"])
            .arg(&ledger)
            .env("RUST_LOG", "warn")
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        let addr = loop {
            line.clear();
            assert!(stderr.read_line(&mut line).unwrap() > 0, "the server exited before serving");
            if let Some(at) = line.find("on http://") {
                break line[at + 10..].split_whitespace().next().unwrap().to_owned();
            }
        };
        std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
        Self { child, addr, _dir: dir }
    }

    fn peak_rss_mb(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse::<f64>().unwrap() / 1024.0
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Answer {
    Accepted,
    Busy,
    Other(u16),
}

/// One POST on a kept-alive connection; the answer, or `None` if the server closed it.
async fn post(conn: &mut BufReader<TcpStream>, body: &[u8]) -> Option<Answer> {
    let head = format!(
        "POST /v1/events HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    conn.get_mut().write_all(head.as_bytes()).await.ok()?;
    conn.get_mut().write_all(body).await.ok()?;
    let (status, resp) = read_response(conn).await?;
    Some(match status {
        200 => Answer::Accepted,
        503 if resp.windows(6).any(|w| w == b"\"busy\"") => Answer::Busy,
        s => Answer::Other(s),
    })
}

struct Round {
    accepted_per_s: f64,
    busy_share: f64,
    all: (f64, f64),
    accepted: (f64, f64),
    busy: (f64, f64),
    closed: usize,
    other: usize,
    peak_rss_mb: f64,
}

fn p50_p99(v: &mut [f64]) -> (f64, f64) {
    if v.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    (percentile(v, 0.5), percentile(v, 0.99))
}

fn round(bodies: Arc<Vec<Vec<u8>>>, submitters: usize, seconds: u64, honor_retry_after: bool) -> Round {
    let server = Server::start();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let next = Arc::new(AtomicUsize::new(0));
    let closed = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let until = started + Duration::from_secs(seconds);
    let samples: Vec<(f64, Answer)> = rt.block_on(async {
        let tasks: Vec<_> = (0..submitters)
            .map(|_| {
                let (bodies, next, closed, addr) = (bodies.clone(), next.clone(), closed.clone(), server.addr.clone());
                tokio::spawn(async move {
                    let mut out = Vec::new();
                    let mut conn = None;
                    while Instant::now() < until {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(body) = bodies.get(i) else { break };
                        if conn.is_none() {
                            match TcpStream::connect(&addr).await {
                                Ok(s) => conn = Some(BufReader::new(s)),
                                Err(_) => {
                                    closed.fetch_add(1, Ordering::Relaxed);
                                    continue;
                                }
                            }
                        }
                        let t = Instant::now();
                        match post(conn.as_mut().expect("connected above"), body).await {
                            Some(a) => {
                                out.push((t.elapsed().as_secs_f64() * 1e3, a));
                                if a == Answer::Busy && honor_retry_after {
                                    // What the refusal asks (Retry-After: 1), as a real client does.
                                    tokio::time::sleep(Duration::from_secs(1)).await;
                                }
                            }
                            None => {
                                closed.fetch_add(1, Ordering::Relaxed);
                                conn = None;
                            }
                        }
                    }
                    out
                })
            })
            .collect();
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        all
    });
    let elapsed = started.elapsed().as_secs_f64();
    let ms = |pick: &dyn Fn(Answer) -> bool| -> Vec<f64> {
        samples.iter().filter(|(_, a)| pick(*a)).map(|(ms, _)| *ms).collect()
    };
    let (mut all, mut accepted, mut busy) = (ms(&|_| true), ms(&|a| a == Answer::Accepted), ms(&|a| a == Answer::Busy));
    let other = samples.iter().filter(|(_, a)| matches!(a, Answer::Other(_))).count();
    Round {
        accepted_per_s: accepted.len() as f64 / elapsed,
        busy_share: busy.len() as f64 / samples.len().max(1) as f64,
        all: p50_p99(&mut all),
        accepted: p50_p99(&mut accepted),
        busy: p50_p99(&mut busy),
        closed: closed.load(Ordering::Relaxed),
        other,
        peak_rss_mb: server.peak_rss_mb(),
    }
}

fn main() {
    let submitters = arg("--submitters", 12_000) as usize;
    let seconds = arg("--seconds", 20);
    let events = arg("--events", 400_000);
    let rounds = arg("--rounds", 1) as usize;
    let honor_retry_after = arg("--honor-retry-after", 1) == 1;
    eprintln!("signing {events} events ...");
    let bodies: Arc<Vec<Vec<u8>>> =
        Arc::new(signed_events(&teachers(), 0, events).iter().map(|v| serde_json::to_vec(v).unwrap()).collect());
    let mut results = Vec::new();
    for r in 0..rounds {
        let x = round(bodies.clone(), submitters, seconds, honor_retry_after);
        println!(
            "round {r}: {submitters} submitters (honoring Retry-After: {honor_retry_after}), {seconds} s: accepted {:.0} events/s, busy {:.1}%, answers p50 {:.1} ms p99 {:.1} ms, \
             accepted p50 {:.1} ms p99 {:.1} ms, busy p50 {:.2} ms p99 {:.2} ms, other {}, connections closed {}, server peak RSS {:.0} MB",
            x.accepted_per_s,
            x.busy_share * 100.0,
            x.all.0,
            x.all.1,
            x.accepted.0,
            x.accepted.1,
            x.busy.0,
            x.busy.1,
            x.other,
            x.closed,
            x.peak_rss_mb
        );
        results.push(x);
    }
    let med = |f: &dyn Fn(&Round) -> f64| median(&mut results.iter().map(f).collect::<Vec<_>>());
    println!(
        "median of {rounds}: accepted {:.0} events/s, busy {:.1}%, answers p50 {:.1} ms p99 {:.1} ms, accepted p50 {:.1} ms \
         p99 {:.1} ms, time to busy p50 {:.2} ms p99 {:.2} ms, server peak RSS {:.0} MB",
        med(&|x| x.accepted_per_s),
        med(&|x| x.busy_share * 100.0),
        med(&|x| x.all.0),
        med(&|x| x.all.1),
        med(&|x| x.accepted.0),
        med(&|x| x.accepted.1),
        med(&|x| x.busy.0),
        med(&|x| x.busy.1),
        med(&|x| x.peak_rss_mb),
    );
}
