//! Saved rule state: applying a prefix, saving, loading and applying the rest reaches the same
//! state digest and gives the same answer to every later event (accepted or refused, with the
//! same message) as applying everything at once; saved state is refused under another config,
//! ledger, genesis key or layout version, and when damaged.
//! Every scenario test of the other modules also runs on saved-and-loaded state: the harness
//! reloads the rules after each accepted event (harness.rs).

use crate::harness::*;
use crate::randomized::{Index2, Rng, Step, World};
use serde_json::json;
use zachetka_rules::{RegionConfig, RuleRefusal, Rules, StateError};

/// A generated history: every attempted event (valid or mutated) with its id.
fn history(seed: u64, rounds: usize) -> Vec<(String, Step)> {
    let mut world = World::new(seed);
    let mut rules = Rules::new(ORIGIN, AUTH, RegionConfig::default()).with_key_check(toy_key_check);
    let mut index = Index2::default();
    let mut attempts = Vec::new();
    let mut batch = world.setup();
    for _ in 0..rounds {
        for s in batch.drain(..) {
            // One id per attempted event, so a later event may name an earlier one.
            let id = format!("00000000-0000-4000-8000-{:012x}", attempts.len() + 1);
            let e = s.envelope(attempts.len(), &id);
            if rules.check_and_apply(&e, &index).is_ok() {
                index.0.insert(id.clone(), (s.stream.clone(), s.ty.to_owned()));
                world.accepted(&id, &s);
            }
            attempts.push((id, s));
        }
        batch = world.next();
    }
    attempts
}

/// Every answer of a replay of `attempts`, the final rules, and the state digest at `cut` (where
/// the rules were saved and replaced by the loaded copy, if `cut` is given).
fn replay(attempts: &[(String, Step)], cut: Option<usize>) -> (Vec<Result<(), RuleRefusal>>, Rules, Option<[u8; 32]>) {
    let mut rules = Rules::new(ORIGIN, AUTH, RegionConfig::default()).with_key_check(toy_key_check);
    let mut index = Index2::default();
    let mut answers = Vec::with_capacity(attempts.len());
    let mut digest_at_cut = None;
    for (i, (id, s)) in attempts.iter().enumerate() {
        if cut == Some(i) {
            let bytes = rules.encode_state();
            let loaded = Rules::load_state(ORIGIN, AUTH, RegionConfig::default(), &bytes)
                .unwrap_or_else(|e| panic!("state saved at {i} refused: {e}"))
                .with_key_check(toy_key_check);
            let (encoded, values) = loaded.lazy_values();
            assert_eq!(encoded, values, "a load decodes no learner's or institution's values ({i})");
            assert_eq!(loaded.encode_state(), bytes, "loaded state re-encodes differently at {i}");
            digest_at_cut = Some(rules.state_digest());
            rules = loaded;
        }
        let answer = refusal(rules.check_and_apply(&s.envelope(i, id), &index));
        if answer.is_ok() {
            index.0.insert(id.clone(), (s.stream.clone(), s.ty.to_owned()));
        }
        answers.push(answer);
    }
    (answers, rules, digest_at_cut)
}

#[test]
fn prefix_saved_loaded_then_the_rest_equals_everything_at_once() {
    let base = std::env::var("ZACHETKA_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1)
    });
    let mut changed_after_cut = 0;
    for i in 0..8 {
        let seed = base.wrapping_add(i);
        let attempts = history(seed, 300);
        let (all_answers, all_rules, _) = replay(&attempts, None);
        let refused = all_answers.iter().filter(|a| a.is_err()).count();
        assert!(refused > 0 && refused < attempts.len() / 2, "seed {seed}: degenerate history, {refused} refused");
        let mut rng = Rng(seed);
        for _ in 0..4 {
            let cut = 1 + rng.below(attempts.len() - 1);
            let (answers, rules, digest_at_cut) = replay(&attempts, Some(cut));
            for (j, (got, want)) in answers.iter().zip(&all_answers).enumerate().skip(cut) {
                assert_eq!(
                    got, want,
                    "seed {seed} (rerun with ZACHETKA_SEED={seed}), cut {cut}: attempt {j} ({}) answered differently",
                    attempts[j].1.ty
                );
            }
            assert_eq!(
                rules.state_digest(),
                all_rules.state_digest(),
                "seed {seed} (rerun with ZACHETKA_SEED={seed}), cut {cut}: state digests differ"
            );
            assert_eq!(rules.encode_state(), all_rules.encode_state());
            // The digest is not blind: the state at the cut differs from the final one when an
            // event that certainly changes it (a revocation, an attestation application) was
            // accepted after the cut. Grades and attendance add no rule state.
            let changes_state = |(a, (_, s)): (&Result<(), RuleRefusal>, &(String, Step))| {
                a.is_ok() && matches!(s.ty, "keys.revoked" | "attestation.application_submitted")
            };
            if all_answers[cut..].iter().zip(&attempts[cut..]).any(changes_state) {
                assert_ne!(digest_at_cut, Some(all_rules.state_digest()), "seed {seed}, cut {cut}");
                changed_after_cut += 1;
            }
        }
    }
    assert!(changed_after_cut > 0, "seed {base}: no cut was followed by a change of state");
    // A history's later events decode only the values they touch.
    let attempts = history(base, 300);
    let (_, rules, _) = replay(&attempts, None);
    let loaded = Rules::load_state(ORIGIN, AUTH, RegionConfig::default(), &rules.encode_state()).unwrap();
    let (encoded, values) = loaded.lazy_values();
    assert!(values > 10 && encoded == values, "seed {base}: {encoded} of {values} values encoded after a load");
    // (An event touches a few values: 20 of them cannot decode them all.)
    let (_, replayed, _) = replay(&attempts, Some(attempts.len() - 20));
    let (encoded, values) = replayed.lazy_values();
    assert!(encoded > 0, "seed {base}: 20 events after a load decoded all {values} values");
}

#[test]
fn state_is_refused_under_another_config_ledger_or_authority() {
    let h = Harness::region();
    let bytes = h.rules.encode_state();
    let mut other = RegionConfig::default();
    other.queue.preferred_max += 1;
    let e = Rules::load_state(ORIGIN, AUTH, other, &bytes).err().expect("another config is refused");
    assert!(matches!(e, StateError::ConfigMismatch { .. }), "{e}");
    assert_eq!(e.code(), "state_config_mismatch");
    let e = Rules::load_state("ru-78.edu.example", AUTH, RegionConfig::default(), &bytes).err().expect("origin");
    assert_eq!(e.code(), "state_origin_mismatch", "{e}");
    let e = Rules::load_state(ORIGIN, ADMIN, RegionConfig::default(), &bytes).err().expect("authority");
    assert_eq!(e.code(), "state_authority_mismatch", "{e}");
    assert!(Rules::load_state(ORIGIN, AUTH, RegionConfig::default(), &bytes).is_ok());
}

#[test]
fn the_genesis_authority_is_checked_after_a_rotation() {
    let mut h = Harness::region();
    h.ok(AUTH, "registry", "keys.rotated", json!({"old_key": AUTH, "new_key": "did:key:z6MkAuthorityNew"}));
    assert_eq!(h.rules.authority_did(), "did:key:z6MkAuthorityNew");
    let bytes = h.rules.encode_state();
    let loaded = Rules::load_state(ORIGIN, AUTH, RegionConfig::default(), &bytes).expect("same genesis key");
    assert_eq!(loaded.authority_did(), "did:key:z6MkAuthorityNew");
    let e = Rules::load_state(ORIGIN, "did:key:z6MkAuthorityNew", RegionConfig::default(), &bytes).err();
    assert_eq!(e.map(|e| e.code()), Some("state_authority_mismatch"));
}

#[test]
fn damaged_state_is_refused() {
    let h = Harness::region();
    let bytes = h.rules.encode_state();
    let load = |b: &[u8]| Rules::load_state(ORIGIN, AUTH, RegionConfig::default(), b);
    for len in 0..bytes.len() {
        let e = load(&bytes[..len]).err().unwrap_or_else(|| panic!("state truncated to {len} bytes was loaded"));
        assert_eq!(e.code(), "state_malformed", "truncated to {len}: {e}");
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert_eq!(load(&longer).err().map(|e| e.code()), Some("state_trailing_bytes"));
    let mut newer = bytes.clone();
    newer[0] = (zachetka_rules::STATE_FORMAT + 1) as u8;
    assert_eq!(load(&newer).err().map(|e| e.code()), Some("state_format_unsupported"));
}

#[test]
fn maps_written_out_of_order_are_refused() {
    // Two institutions: their map entries are adjacent in the canonical bytes, sorted by id.
    // Swapping the two ids' first distinct byte puts the keys out of order.
    let h = Harness::region();
    let bytes = h.rules.encode_state();
    let (a, b) = (b"kg-001".as_slice(), b"kg-002".as_slice());
    let at = |needle: &[u8]| bytes.windows(needle.len()).position(|w| w == needle).expect("id in state");
    let (ia, ib) = (at(a), at(b));
    assert!(ia < ib);
    let mut swapped = bytes.clone();
    swapped[ia + 5] = b'2';
    swapped[ib + 5] = b'1';
    let e = Rules::load_state(ORIGIN, AUTH, RegionConfig::default(), &swapped).err().expect("out of order refused");
    assert_eq!(e.code(), "state_malformed", "{e}");
}
