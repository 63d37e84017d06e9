//! Timings of the snapshot path a ledger's open takes: writing and reading (with full
//! verification) a snapshot with a 200 MB section, and saving and loading a rule state with
//! 100,000 key grants. The figure to reach: a 1,000,000-entry ledger opens in under 1 s, so a
//! read of its snapshot must take a fraction of that.
//! Run: `cargo run --release -p zachetka-snapshots --example snapshot_timing [dir]` (the
//! directory defaults to a temporary one; give one on the disk the ledger uses).

use serde_json::json;
use std::time::Instant;
use zachetka_rules::{Envelope, NoLookup, RegionConfig, Rules};
use zachetka_snapshots::{read, write, Section, RULES_SECTION};

fn main() {
    let arg = std::env::args().nth(1);
    let tmp = tempfile::tempdir().expect("temporary directory");
    let dir = arg.as_deref().map(std::path::Path::new).unwrap_or(tmp.path());

    let section: Vec<u8> = (0..200_000_000u64).map(|i| (i.wrapping_mul(0x9e37_79b9) >> 13) as u8).collect();
    let mb = section.len() as f64 / 1e6;
    let t = Instant::now();
    let digest = sha2_digest(&section);
    let sha = t.elapsed();
    println!(
        "sha256 of {mb:.0} MB: {:.1} ms ({:.2} GB/s) [{:02x}{:02x}..]",
        ms(sha),
        mb / 1e3 / sha.as_secs_f64(),
        digest[0],
        digest[1]
    );

    for round in 0..3 {
        let t = Instant::now();
        let path = write(
            dir,
            1_000_000 + round,
            &[7; 32],
            &[Section { name: "big", version: 1, bytes: &section, values: &[] }],
            2,
        )
        .expect("write");
        let w = t.elapsed();
        let t = Instant::now();
        let snap = read(&path).expect("read");
        let r = t.elapsed();
        assert_eq!(snap.section("big").map(|s| s.bytes.len()), Some(section.len()));
        println!(
            "round {round}: write+fsync {:.1} ms, read+verify {:.1} ms ({:.2} GB/s)",
            ms(w),
            ms(r),
            mb / 1e3 / r.as_secs_f64()
        );
    }

    let grants = 100_000;
    let mut rules = Rules::new("ru-47.edu.example", "did:key:z6MkAuthority", RegionConfig::default());
    let apply = |rules: &mut Rules, seq: u64, stream: &str, ty: &str, data: serde_json::Value| {
        let id = format!("00000000-0000-4000-8000-{seq:012x}");
        let e = Envelope {
            seq,
            stream,
            event_type: ty,
            id: &id,
            occurred_at: "2026-09-01T09:00:00Z",
            recorded_at: zachetka_rules::time::parse_instant("2026-09-01T09:00:00Z").unwrap_or(0),
            author: "did:key:z6MkAuthority",
            data: &data,
        };
        rules.check_and_apply(&e, &NoLookup).unwrap_or_else(|e| panic!("{ty}: {e}"));
    };
    apply(
        &mut rules,
        0,
        "registry",
        "ledger.established",
        json!({"v": 1, "origin": "ru-47.edu.example", "authority": "did:key:z6MkAuthority"}),
    );
    apply(
        &mut rules,
        1,
        "registry",
        "registry.institution_registered",
        json!({"v": 1, "institution": "sch-001", "kind": "school", "territory": "t"}),
    );
    let t = Instant::now();
    for i in 0..grants {
        apply(
            &mut rules,
            2 + i,
            "registry",
            "keys.granted",
            json!({"v": 1, "key": format!("did:key:z6MkT{i:07}"), "holder": format!("t-{i}"), "roles": ["teacher"], "scope": {"institution": "sch-001"}, "valid_from": "2026-01-01T00:00:00Z"}),
        );
    }
    let replay = t.elapsed();
    let t = Instant::now();
    let state = rules.encode_state();
    let enc = t.elapsed();
    let t = Instant::now();
    let loaded =
        Rules::load_state("ru-47.edu.example", "did:key:z6MkAuthority", RegionConfig::default(), &state).expect("load");
    let load = t.elapsed();
    let t = Instant::now();
    let d = loaded.state_digest();
    let dig = t.elapsed();
    assert_eq!(d, rules.state_digest());
    let path = write(dir, 5, &[7; 32], &[Section { name: RULES_SECTION, version: 1, bytes: &state, values: &[] }], 2)
        .expect("write");
    let t = Instant::now();
    let snap = read(&path).expect("read");
    let r = t.elapsed();
    assert_eq!(snap.section(RULES_SECTION).map(|s| s.bytes), Some(&state[..]));
    println!(
        "rule state with {grants} grants: {} bytes; replay {:.0} ms ({:.1} us/event), encode {:.1} ms, load {:.1} ms, state_digest {:.1} ms, snapshot read {:.1} ms",
        state.len(),
        ms(replay),
        replay.as_secs_f64() * 1e6 / grants as f64,
        ms(enc),
        ms(load),
        ms(dig),
        ms(r)
    );
}

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn sha2_digest(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}
