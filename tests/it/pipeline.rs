//! The append pipeline: receipts, idempotency, concurrency control, chains, limits, refusals in
//! order, saturation, and what each injected store fault must leave behind.

use super::support::*;
use serde_json::json;
use std::sync::Arc;
use zachetka::event::parse_entry;
use zachetka::ledger::Limits;
use zachetka::refusal::Code;

fn codes(results: &[Result<zachetka::ledger::Receipt, zachetka::refusal::Refusal>]) -> Vec<Option<Code>> {
    results.iter().map(|r| r.as_ref().err().map(|e| e.code)).collect()
}

#[test]
fn append_returns_a_receipt_provable_at_once() {
    let (_d, ledger) = temp_ledger();
    let r = ledger.append_blocking(vec![grade(1, "learner/47-000001", Some(0))]);
    let receipt = r[0].clone().unwrap();
    assert_eq!((receipt.seq, receipt.stream_version, receipt.tree_size), (0, 0, 1));
    let (head, _) = ledger.head();
    assert_eq!(head.tree_size, 1);
    let entry = &ledger.entries(0, 1).unwrap()[0];
    assert_eq!(zachetka::merkle::leaf_hash(entry), receipt.leaf_hash);
    let parsed = parse_entry(entry).unwrap();
    assert_eq!(parsed.meta.stream_prev, None);
    assert_eq!(zachetka::time::format_rfc3339(parsed.meta.recorded_at_unix), "2026-11-18T11:06:40Z");
    check_log(&ledger);
}

#[test]
fn the_same_signed_event_twice_gets_the_same_receipt() {
    let (_d, ledger) = temp_ledger();
    let ev = grade(1, "learner/a", None);
    let first = ledger.append_blocking(vec![ev.clone()])[0].clone().unwrap();
    ledger.append_blocking(vec![grade(2, "learner/a", None)]);
    let again = ledger.append_blocking(vec![ev.clone()])[0].clone().unwrap();
    assert_eq!(first, again, "a retry must get the original receipt, tree_size included");
    // Twice in one batch: one entry, the same receipt for both.
    let ev3 = grade(3, "learner/a", None);
    let r = ledger.append_blocking(vec![ev3.clone(), ev3]);
    assert_eq!(r[0], r[1]);
    assert_eq!(ledger.head().0.tree_size, 3);
    check_log(&ledger);
}

#[test]
fn the_same_id_with_other_content_is_refused() {
    let (_d, ledger) = temp_ledger();
    ledger.append_blocking(vec![grade_by(&teacher(), 1, "learner/a", None, 5)]);
    let r = ledger.append_blocking(vec![grade_by(&teacher(), 1, "learner/a", None, 4)]);
    assert_eq!(codes(&r), vec![Some(Code::EventIdConflict)]);
    let r = ledger.append_blocking(vec![
        grade_by(&teacher(), 7, "learner/a", None, 5),
        grade_by(&teacher(), 7, "learner/a", None, 3),
    ]);
    assert_eq!(codes(&r), vec![None, Some(Code::EventIdConflict)]);
    assert_eq!(ledger.head().0.tree_size, 2);
    check_log(&ledger);
}

#[test]
fn expected_version_is_optimistic_concurrency_on_the_stream() {
    let (_d, ledger) = temp_ledger();
    let r = ledger.append_blocking(vec![
        grade(1, "learner/a", Some(0)),
        grade(2, "learner/a", Some(1)),
        grade(3, "learner/b", Some(0)),
    ]);
    assert_eq!(codes(&r), vec![None, None, None]);
    let r = ledger.append_blocking(vec![
        grade(4, "learner/a", Some(1)),
        grade(5, "learner/a", Some(3)),
        grade(6, "learner/a", Some(2)),
    ]);
    assert_eq!(codes(&r), vec![Some(Code::StreamVersionConflict), Some(Code::StreamVersionConflict), None]);
    assert_eq!(r[2].as_ref().unwrap().stream_version, 2);
    // The chain: each entry names its predecessor's leaf hash.
    let entries: Vec<_> = ledger.entries(0, 10).unwrap().iter().map(|e| parse_entry(e).unwrap()).collect();
    let leaf = |i: usize| zachetka::merkle::leaf_hash(&ledger.entries(i as u64, 1).unwrap()[0]);
    assert_eq!(entries[1].meta.stream_prev, Some(leaf(0)));
    assert_eq!(entries[2].meta.stream_prev, None);
    assert_eq!(entries[3].meta.stream_prev, Some(leaf(1)));
    check_log(&ledger);
}

#[test]
fn refusals_come_back_in_order_with_precise_codes() {
    let (_d, ledger) = temp_ledger();
    let mut bad_sig = grade(2, "learner/a", None);
    bad_sig["event"]["data"]["mark"] = json!(2);
    let mut other_ledger = grade(3, "learner/a", None);
    other_ledger["event"]["ledger"] = json!("ru-78.edu.example");
    let mut float = grade(4, "learner/a", None);
    float["event"]["data"]["mark"] = json!(4.5);
    let mut bad_id = grade(5, "learner/a", None);
    bad_id["event"]["id"] = json!("not-a-uuid");
    let mut short_sig = grade(6, "learner/a", None);
    short_sig["sig"] = json!("AAAA");
    let mut unknown = grade(7, "learner/a", None);
    unknown["event"]["extra"] = json!("x");
    let mut bad_author = grade(8, "learner/a", None);
    bad_author["event"]["author"] = json!("did:web:school.example");
    let mut big = json!({"ledger": ORIGIN, "stream": "learner/a", "type": "journal.grade_recorded", "id": id(9),
        "occurred_at": "2026-11-23T08:00:00Z", "author": teacher().did(), "data": {"text": "я".repeat(17_000)}});
    big = zachetka::event::sign_event(&big, &teacher()).unwrap();
    let r = ledger.append_blocking(vec![
        grade(1, "learner/a", None),
        bad_sig,
        other_ledger,
        float,
        bad_id,
        short_sig,
        unknown,
        bad_author,
        big,
        json!([1, 2]),
        grade(10, "learner/a", None),
    ]);
    assert_eq!(
        codes(&r),
        vec![
            None,
            Some(Code::SignatureInvalid),
            Some(Code::WrongLedger),
            Some(Code::PayloadTypeNotAllowed),
            Some(Code::EventIdMalformed),
            Some(Code::SignatureMalformed),
            Some(Code::EventMalformed),
            Some(Code::AuthorMalformed),
            Some(Code::EventTooLarge),
            Some(Code::MalformedJson),
            None,
        ]
    );
    assert_eq!(r[10].as_ref().unwrap().seq, 1, "refused events take no seq");
    for e in r.iter().filter_map(|r| r.as_ref().err()) {
        assert!(!e.message.is_empty() && !e.message.ends_with('.'), "{e}");
    }
    check_log(&ledger);
}

#[test]
fn a_request_over_the_length_limit_is_refused_whole() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open_ledger(new_store(dir.path()), Limits { request_len_max: 2, ..Limits::default() });
    let err = ledger.submit(vec![grade(1, "s/a", None), grade(2, "s/a", None), grade(3, "s/a", None)]).err().unwrap();
    assert_eq!(err.code, Code::BatchTooLong);
    assert_eq!(ledger.head().0.tree_size, 0);
}

#[test]
fn a_saturated_sequencer_answers_busy_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (store, entered_rx, release_tx) = blocking_store(dir.path());
    let ledger = open_ledger(store.clone(), Limits { queue_depth_max: 1, ..Limits::default() });
    // The first submission reaches the sequencer, which blocks while admitting it.
    let p0 = ledger.submit(vec![grade(0, "s/a", None)]).unwrap();
    entered_rx.recv().unwrap();
    // The second fills the queue; the third finds it full and is refused at once.
    let p1 = ledger.submit(vec![grade(1, "s/a", None)]).unwrap();
    let busy = ledger.submit(vec![grade(2, "s/a", None)]).err().unwrap();
    assert_eq!(busy.code, Code::Busy);
    assert!(busy.code.retryable());
    assert_eq!(busy.code.http_status(), 503);
    let pending = vec![p0, p1];
    let n = 2;
    store.set(Fault::None);
    release_tx.send(()).unwrap();
    for p in pending {
        assert!(p.wait_blocking()[0].is_ok());
    }
    assert!(ledger.append_blocking(vec![grade(n, "s/a", None)])[0].is_ok(), "the refused event can be retried");
    assert_eq!(ledger.head().0.tree_size, n + 1);
    check_log(&ledger);
}

/// Each row: the fault on the next commit, what the client hears, and what reopening shows.
#[test]
fn store_faults_never_lose_an_acknowledged_entry() {
    struct Row {
        fault: Fault,
        // Entries present after reopening: the 2 acknowledged ones plus this many.
        extra_after_reopen: u64,
    }
    let rows = [
        Row { fault: Fault::FailBeforeWrite, extra_after_reopen: 0 },
        // Written but not acknowledged: allowed to survive, whole.
        Row { fault: Fault::FailAfterWrite, extra_after_reopen: 2 },
    ];
    for row in rows {
        let dir = tempfile::tempdir().unwrap();
        let sled = new_store(dir.path());
        let store = Arc::new(FaultStore::new(sled));
        let ledger = open_ledger(store.clone(), Limits::default());
        let acked = ledger.append_blocking(vec![grade(1, "s/a", None), grade(2, "s/b", None)]);
        assert!(acked.iter().all(Result::is_ok));
        store.set(row.fault);
        let r = ledger.append_blocking(vec![grade(3, "s/a", None), grade(4, "s/c", None)]);
        // Not `unavailable` ("retry"): no retry can work until a restart, and the answer says why.
        assert_eq!(codes(&r), vec![Some(Code::WritesStopped); 2], "{:?}", row.fault);
        let message = &r[0].as_ref().unwrap_err().message;
        assert!(message.contains("injected:") && message.contains("restart"), "{message}");
        assert!(!Code::WritesStopped.retryable());
        assert!(ledger.is_failed(), "a failed commit stops writes");
        assert!(ledger.writes_stopped().is_some_and(|why| why.contains("injected:")), "{:?}", row.fault);
        // Reads continue.
        assert_eq!(ledger.head().0.tree_size, 2);
        assert_eq!(ledger.entries(0, 10).unwrap().len(), 2);
        store.set(Fault::None);
        let again = ledger.submit(vec![grade(5, "s/a", None)]).err().unwrap();
        assert_eq!(again.code, Code::WritesStopped, "no writes after a failed commit until reopened");
        assert!(again.message.contains("injected:"), "{}", again.message);
        drop(ledger);
        drop(store);
        // Reopen: the acknowledged prefix, plus possibly the unacknowledged batch whole.
        let sled = Arc::new(zachetka::store::sled::SledStore::open(dir.path()).unwrap());
        let ledger = open_ledger(sled, Limits::default());
        assert_eq!(ledger.head().0.tree_size, 2 + row.extra_after_reopen, "{:?}", row.fault);
        for (i, a) in acked.iter().enumerate() {
            assert_eq!(
                zachetka::merkle::leaf_hash(&ledger.entries(i as u64, 1).unwrap()[0]),
                a.as_ref().unwrap().leaf_hash
            );
        }
        // The client's retry of the unacknowledged events succeeds either way.
        let retry = ledger.append_blocking(vec![grade(3, "s/a", None), grade(4, "s/c", None)]);
        assert!(retry.iter().all(Result::is_ok), "{retry:?}");
        assert_eq!(ledger.head().0.tree_size, 4);
        check_log(&ledger);
    }
}

#[test]
fn reopening_continues_the_chains() {
    let dir = tempfile::tempdir().unwrap();
    {
        let ledger = open_ledger(new_store(dir.path()), Limits::default());
        ledger.append_blocking(vec![grade(1, "s/a", Some(0)), grade(2, "s/a", Some(1))]);
    }
    let store = Arc::new(zachetka::store::sled::SledStore::open(dir.path()).unwrap());
    let ledger = open_ledger(store, Limits::default());
    let r = ledger.append_blocking(vec![grade(3, "s/a", Some(2)), grade(1, "s/a", Some(0))]);
    assert_eq!(r[0].as_ref().unwrap().stream_version, 2);
    assert_eq!(r[1].as_ref().unwrap().seq, 0, "idempotency survives a restart");
    check_log(&ledger);
}

#[test]
fn concurrent_submitters_get_dense_unique_seqs() {
    let (_d, ledger) = temp_ledger();
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let ledger = ledger.clone();
            std::thread::spawn(move || {
                let mut seqs = Vec::new();
                for b in 0..10u64 {
                    let batch =
                        (0..25u64).map(|i| grade(t * 1000 + b * 25 + i, &format!("learner/{}", i % 7), None)).collect();
                    for r in ledger.append_blocking(batch) {
                        seqs.push(r.unwrap().seq);
                    }
                }
                seqs
            })
        })
        .collect();
    let mut all: Vec<u64> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
    all.sort_unstable();
    assert_eq!(all, (0..1000).collect::<Vec<u64>>());
    check_log(&ledger);
}

/// Random histories against a model: valid and stale expected versions, retries of the same
/// event, and reuse of an id for other content.
#[test]
fn randomized_histories_match_the_model() {
    let (seed, mut next) = seeded("randomized_histories_match_the_model");
    let (_d, ledger) = temp_ledger();
    // The model: stream lengths and the accepted events by id number.
    let mut lens = std::collections::HashMap::<String, u64>::new();
    let mut accepted = std::collections::BTreeMap::<u64, serde_json::Value>::new();
    for round in 0..40u64 {
        let mut batch = Vec::new();
        let mut want = Vec::new();
        for i in 0..(1 + next(20)) {
            let choice = next(8);
            if choice == 0 && !accepted.is_empty() {
                // A retry of an accepted event: idempotent.
                let k = *accepted.keys().nth(next(accepted.len() as u64) as usize).unwrap();
                batch.push(accepted[&k].clone());
                want.push(None);
                continue;
            }
            if choice == 1 && !accepted.is_empty() {
                // The same id, other content.
                let k = *accepted.keys().nth(next(accepted.len() as u64) as usize).unwrap();
                batch.push(grade_by(&teacher(), k, "learner/x", None, 2));
                want.push(Some(Code::EventIdConflict));
                continue;
            }
            let stream = format!("learner/{}", next(5));
            let len = *lens.get(&stream).unwrap_or(&0);
            let expected = match next(3) {
                0 => None,
                1 => Some(len),
                _ => Some(len + 1 + next(3)),
            };
            let n = round * 100 + i;
            let ev = grade_by(&teacher(), n, &stream, expected, 5);
            if expected.is_none_or(|e| e == len) {
                lens.insert(stream, len + 1);
                accepted.insert(n, ev.clone());
                want.push(None);
            } else {
                want.push(Some(Code::StreamVersionConflict));
            }
            batch.push(ev);
        }
        let r = ledger.append_blocking(batch);
        assert_eq!(codes(&r), want, "seed {seed} round {round}");
    }
    assert_eq!(ledger.head().0.tree_size, accepted.len() as u64, "seed {seed}");
    check_log(&ledger);
}

/// A batch's ledger time is fixed when the sequencer takes it: `Pending::wait_sequenced_blocking`
/// returns then, before the batch is durable, and not before; moving the clock afterwards does
/// not change its `recorded_at` (the demo moves its pinned clock to the next day on this signal).
#[test]
fn a_batch_keeps_the_ledger_time_read_when_it_was_sequenced() {
    use std::time::Duration;
    let dir = tempfile::tempdir().unwrap();
    let (store, entered_rx, release_tx) = blocking_store(dir.path());
    let ledger = open_ledger(store.clone(), Limits::default());
    let (day1, day2) = (1_800_000_000, 1_800_086_400);
    let waiting = |mut pending: zachetka::ledger::Pending| {
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = std::thread::spawn(move || {
            pending.wait_sequenced_blocking();
            tx.send(()).unwrap();
            pending
        });
        (rx, waiter)
    };
    pin_clock(day1);
    // The sequencer reads the clock for the first batch, then blocks while admitting it:
    // sequenced, not durable.
    let (first_rx, first) = waiting(ledger.submit(vec![grade(0, "learner/47-000001", None)]).unwrap());
    first_rx.recv_timeout(Duration::from_secs(60)).expect("sequenced while its admission is blocked");
    entered_rx.recv().unwrap();
    // The second waits behind it: not sequenced while the sequencer is held.
    let (second_rx, second) = waiting(ledger.submit(vec![grade(1, "learner/47-000001", None)]).unwrap());
    let early = second_rx.recv_timeout(Duration::from_millis(300)).is_ok();
    let durable = ledger.head().0.tree_size;
    pin_clock(day2);
    store.set(Fault::None);
    release_tx.send(()).unwrap();
    // (Asserted once the sequencer is free, so that a failure cannot hang the ledger's drop.)
    assert!(!early, "sequenced before the sequencer took it");
    assert_eq!(durable, 0, "nothing was durable while the sequencer was held");
    second_rx.recv_timeout(Duration::from_secs(60)).expect("sequenced once the sequencer is free");
    let recorded = |pending: zachetka::ledger::Pending| {
        let receipt = pending.wait_blocking().remove(0).unwrap();
        parse_entry(&ledger.entries(receipt.seq, 1).unwrap()[0]).unwrap().meta.recorded_at_unix
    };
    assert_eq!(recorded(first.join().unwrap()), day1);
    assert_eq!(recorded(second.join().unwrap()), day2);
    // Nothing queued (every event refused before the sequencer): no wait.
    let mut refused = ledger.submit(vec![json!({"not": "an event"})]).unwrap();
    refused.wait_sequenced_blocking();
    assert!(refused.wait_blocking()[0].is_err());
    check_log(&ledger);
}
