//! Snapshot files and directories: round trip, every damaged byte and every truncation refused,
//! leftovers of a crashed write ignored then removed, falling back past a damaged or unaccepted
//! snapshot with warnings, damage in the values area found when a chunk is read, the values
//! cache's limit, retention,
//! the policy, and rule state carried through a snapshot.
//! Not the ledger's open path (the root crate's tests drive that).

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use zachetka_snapshots::{
    file_name, list, newest_usable, read, set_aside, write, Section, SectionRef, SkipReason, SnapshotError,
    SnapshotPolicy, CHUNK_LEN, RULES_SECTION,
};

fn root(n: u64) -> [u8; 32] {
    let mut r = [0u8; 32];
    r[..8].copy_from_slice(&n.to_le_bytes());
    r[31] = 0xa5;
    r
}

fn sections<'a>(rules: &'a [u8], journal: &'a [u8], values: &'a [u8]) -> Vec<Section<'a>> {
    vec![
        Section { name: RULES_SECTION, version: 1, bytes: rules, values: b"rule values" },
        Section { name: "journal", version: 3, bytes: journal, values },
        Section { name: "empty.model-v", version: 7, bytes: &[], values: &[] },
    ]
}

fn write_small(dir: &Path, tree_size: u64, keep: usize) -> std::path::PathBuf {
    let rules = format!("rules at {tree_size}").into_bytes();
    write(dir, tree_size, &root(tree_size), &sections(&rules, b"journal state", b"journal values"), keep)
        .expect("write")
}

/// A read section as the one written: its name, version, bytes and values (read and checked).
fn as_written(s: SectionRef) -> (String, u32, Vec<u8>, Vec<u8>) {
    (s.name.to_owned(), s.version, s.bytes.to_vec(), s.values.read_all().expect("the values check"))
}

fn written(s: &Section) -> (String, u32, Vec<u8>, Vec<u8>) {
    (s.name.to_owned(), s.version, s.bytes.to_vec(), s.values.to_vec())
}

/// Values of `n` bytes that differ from chunk to chunk.
fn values(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 % 251) as u8).collect()
}

#[test]
fn a_snapshot_reads_back_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let big = values(100_000);
    let many = values(3 * CHUNK_LEN as usize + 5);
    let path = write(dir.path(), 1_000_000, &root(1_000_000), &sections(b"rule state", &big, &many), 2).unwrap();
    assert_eq!(path, dir.path().join("000000001000000.snap"));
    assert_eq!(file_name(1_000_000), "000000001000000.snap");
    let s = read(&path).unwrap();
    assert_eq!(s.path(), path);
    assert_eq!(s.tree_size(), 1_000_000);
    assert_eq!(s.root_hash(), &root(1_000_000));
    let got: Vec<_> = s.sections().map(as_written).collect();
    assert_eq!(got, sections(b"rule state", &big, &many).iter().map(written).collect::<Vec<_>>());
    assert_eq!(s.section("journal").map(|j| (j.version, j.bytes.len())), Some((3, big.len())));
    assert!(s.section("absent").is_none());
    s.verify_values().unwrap();
    // Where each section lies in the file (what the audit names a damaged section by).
    let file = fs::read(&path).unwrap();
    for section in sections(b"rule state", &big, &many) {
        let (start, end) = s.section_span(section.name).unwrap();
        assert_eq!(&file[start as usize..end as usize], section.bytes, "{}", section.name);
    }
    assert_eq!(s.section_span("absent"), None);
    assert_eq!(s.file_len(), fs::metadata(&path).unwrap().len());
    assert_eq!(list(dir.path()).unwrap(), vec![(1_000_000, path)]);
}

#[test]
fn every_single_byte_change_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_small(dir.path(), 42, 2);
    let good = fs::read(&path).unwrap();
    let damaged = dir.path().join("damaged");
    let mut codes = BTreeMap::new();
    for i in 0..good.len() {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut bytes = good.clone();
            bytes[i] ^= flip;
            fs::write(&damaged, &bytes).unwrap();
            // The values area is checked when first read: all of it here.
            match read(&damaged).and_then(|s| s.verify_values()) {
                Ok(()) => panic!("byte {i} xor {flip:#04x} was not noticed"),
                Err(e) => *codes.entry(e.code()).or_insert(0) += 1,
            }
        }
    }
    // Each kind of damage is reported as itself somewhere in the file.
    for code in [
        "snapshot_bad_magic",
        "snapshot_format_unsupported",
        "snapshot_header_checksum_mismatch",
        "snapshot_section_checksum_mismatch",
        "snapshot_values_checksum_mismatch",
        "snapshot_truncated",
        "snapshot_trailing_bytes",
        "snapshot_table_malformed",
    ] {
        assert!(codes.contains_key(code), "no damage gave {code}: {codes:?}");
    }
    assert!(read(&path).is_ok());
}

#[test]
fn a_damaged_section_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_small(dir.path(), 42, 2);
    let mut bytes = fs::read(&path).unwrap();
    let at = bytes.windows(13).position(|w| w == b"journal state").unwrap();
    bytes[at] ^= 1;
    fs::write(&path, &bytes).unwrap();
    match read(&path) {
        Err(SnapshotError::SectionChecksumMismatch { section, path: p, offset, end }) => {
            assert_eq!(section, "journal");
            assert_eq!(p, path);
            assert_eq!((offset, end), (at as u64, at as u64 + 13), "the section's byte range");
        }
        other => panic!("expected a section checksum mismatch, got {other:?}"),
    }
}

/// The values area is not read with the file: a chunk is read and checked when a value in it is
/// first needed. Damage there is found then, names its bytes in the file, is told to the
/// snapshot's owner (which sets the file aside), and never hands out a byte of the chunk; the
/// other chunks still read.
#[test]
fn damage_in_the_values_area_is_found_when_its_chunk_is_first_read() {
    let dir = tempfile::tempdir().unwrap();
    let many = values(3 * CHUNK_LEN as usize + 5);
    let path = write(dir.path(), 9, &root(9), &sections(b"rules", b"journal state", &many), 2).unwrap();
    let snap = read(&path).unwrap();
    // The file is damaged after it was read: the second chunk of the journal's values (the rule
    // values, 11 bytes, come first in the area).
    let area = snap.file_len() - 11 - many.len() as u64;
    let damaged_at = area + 11 + CHUNK_LEN as u64 + 100;
    let mut bytes = fs::read(&path).unwrap();
    bytes[damaged_at as usize] ^= 0x20;
    fs::write(&path, &bytes).unwrap();
    let told = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let t = told.clone();
    snap.on_damage(move |e| t.lock().unwrap().push(e.code()));
    let journal = snap.section("journal").unwrap().values.source();
    // The first chunk reads (it was not damaged), the second does not.
    assert_eq!(&*journal.read(10, 20).unwrap(), &many[10..30]);
    let chunk_start = CHUNK_LEN as u64 - 11;
    let e = journal.read(chunk_start + 5, 10).err().expect("the damaged chunk is refused");
    let (start, end) = (area + CHUNK_LEN as u64, area + 2 * CHUNK_LEN as u64);
    assert!(e.contains(&format!("bytes {start}..{end}")) && e.contains("000000000000009.snap"), "{e}");
    // A value spanning the damaged chunk is refused too, every time (nothing was kept).
    assert!(journal.read(chunk_start - 5, 10).is_err());
    assert_eq!(told.lock().unwrap().as_slice(), ["snapshot_values_checksum_mismatch"; 2]);
    match snap.verify_values() {
        Err(SnapshotError::ValuesChecksumMismatch { offset, end: e, .. }) => assert_eq!((offset, e), (start, end)),
        other => panic!("{other:?}"),
    }
    // The owner sets it aside: kept, never listed, so the next open does not pick it again.
    let aside = set_aside(&path).unwrap();
    assert!(aside.exists() && !path.exists());
    assert!(aside.to_string_lossy().ends_with(".snap.damaged"));
    assert!(list(dir.path()).unwrap().is_empty());
}

/// A reader keeps at most its limit of checked chunks, the least recently used dropped first;
/// one dropped is read and checked again when next needed, so damage done to the file since
/// is found then, while a chunk still held is served as it was checked.
#[test]
fn the_values_cache_keeps_its_limit_and_checks_a_dropped_chunk_again() {
    let dir = tempfile::tempdir().unwrap();
    let c = CHUNK_LEN as u64;
    let many = values(8 * CHUNK_LEN as usize);
    let path = write(dir.path(), 9, &root(9), &sections(b"rules", b"journal state", &many), 2).unwrap();
    let snap = read(&path).unwrap();
    assert_eq!(snap.values_cached(), 0, "reading a snapshot reads none of its values");
    snap.limit_values_cache(3 * c);
    let journal = snap.section("journal").unwrap().values.source();
    // The journal's value 89 bytes into chunk `i` of the area (the rule values, 11 bytes, first).
    let at = |i: u64| i * c + 100 - 11;
    let value = |i: u64| &many[at(i) as usize..at(i) as usize + 10];
    for i in 0..8 {
        assert_eq!(&*journal.read(at(i), 10).unwrap(), value(i));
        assert_eq!(snap.values_cached(), (i + 1).min(3) * c, "chunk {i}: at most 3 chunks held");
    }
    // Chunks 5, 6 and 7 are held; 5 is used again, so 6 is the least recently used, and goes
    // when 2 is read again.
    assert_eq!(&*journal.read(at(5), 10).unwrap(), value(5));
    assert_eq!(&*journal.read(at(2), 10).unwrap(), value(2), "a dropped chunk reads again");
    // Now 5, 7 and 2 are held. The file is damaged in chunks 5 and 6 after the fact.
    let area = snap.file_len() - 11 - many.len() as u64;
    let mut bytes = fs::read(&path).unwrap();
    for i in [5, 6] {
        bytes[(area + at(i)) as usize + 3] ^= 0x20;
    }
    fs::write(&path, &bytes).unwrap();
    assert_eq!(&*journal.read(at(5), 10).unwrap(), value(5), "a held chunk is served as it was checked");
    let e = journal.read(at(6), 10).err().expect("a dropped chunk is checked again");
    assert!(e.contains(&format!("bytes {}..{}", area + 6 * c, area + 7 * c)), "{e}");
    assert!(snap.values_cached() <= 3 * c);
    // A limit below one chunk still keeps the chunk just read.
    snap.limit_values_cache(1);
    assert_eq!(snap.values_cached(), 0);
    assert_eq!(&*journal.read(at(1), 10).unwrap(), value(1));
    assert_eq!(snap.values_cached(), c);
}

#[test]
fn every_truncation_and_any_trailing_byte_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_small(dir.path(), 42, 2);
    let good = fs::read(&path).unwrap();
    let cut = dir.path().join("cut");
    for len in 0..good.len() {
        fs::write(&cut, &good[..len]).unwrap();
        let e = read(&cut).err().unwrap_or_else(|| panic!("truncated to {len} bytes was read"));
        assert_eq!(e.code(), "snapshot_truncated", "truncated to {len}: {e}");
        assert!(e.to_string().contains("cut"), "the error names the file: {e}");
    }
    let mut longer = good.clone();
    longer.push(0);
    fs::write(&cut, &longer).unwrap();
    assert_eq!(read(&cut).err().map(|e| e.code()), Some("snapshot_trailing_bytes"));
    let e = read(&dir.path().join("missing.snap")).err().unwrap();
    assert_eq!(e.code(), "snapshot_io");
}

#[test]
fn a_leftover_tmp_is_ignored_and_the_next_write_removes_it() {
    let dir = tempfile::tempdir().unwrap();
    write_small(dir.path(), 100, 2);
    // A write that crashed before its rename.
    let leftover = dir.path().join("000000000000200.snap.tmp");
    fs::write(&leftover, b"ZACHSNAP half a snap").unwrap();
    let unrelated = dir.path().join("notes.txt");
    fs::write(&unrelated, b"operator notes").unwrap();
    assert_eq!(list(dir.path()).unwrap().len(), 1);
    let (found, warnings) = newest_usable(dir.path(), |_, _| true);
    assert_eq!(found.map(|s| s.tree_size()), Some(100));
    assert!(warnings.is_empty(), "{warnings:?}");
    assert!(leftover.exists(), "reading removes nothing");
    write_small(dir.path(), 300, 2);
    assert!(!leftover.exists(), "the next write removes the leftover");
    assert!(unrelated.exists(), "files that are not snapshots are left alone");
}

#[test]
fn newest_usable_falls_back_past_a_damaged_or_unaccepted_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let p1 = write_small(dir.path(), 1000, 3);
    let p2 = write_small(dir.path(), 2000, 3);
    let p3 = write_small(dir.path(), 3000, 3);

    let (found, warnings) = newest_usable(dir.path(), |_, _| true);
    assert_eq!(found.map(|s| s.tree_size()), Some(3000));
    assert!(warnings.is_empty());

    // The newest is damaged, the next is not the log's root at its size.
    let mut bytes = fs::read(&p3).unwrap();
    let at = bytes.windows(13).position(|w| w == b"journal state").unwrap();
    bytes[at] ^= 0x10;
    fs::write(&p3, &bytes).unwrap();
    let (found, warnings) = newest_usable(dir.path(), |size, r| *r == root(size) && size != 2000);
    let found = found.expect("the oldest is usable");
    assert_eq!((found.tree_size(), found.path()), (1000, p1.as_path()));
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert_eq!(warnings[0].path, p3);
    assert!(matches!(&warnings[0].reason, SkipReason::Unreadable(_)), "{}", warnings[0]);
    assert_eq!(warnings[1].path, p2);
    assert_eq!(warnings[1].reason.code(), "snapshot_not_accepted");
    let text = warnings[1].to_string();
    assert!(text.contains("000000000002000.snap") && text.contains("tree size 2000"), "{text}");
    assert!(p3.exists() && p2.exists(), "reading deletes nothing");

    // A snapshot under another size's name is skipped.
    fs::copy(&p1, dir.path().join(file_name(5000))).unwrap();
    let (found, warnings) = newest_usable(dir.path(), |size, r| *r == root(size));
    assert_eq!(found.map(|s| s.tree_size()), Some(2000));
    assert_eq!(
        warnings.iter().map(|w| w.reason.code()).collect::<Vec<_>>(),
        ["snapshot_name_mismatch", "snapshot_section_checksum_mismatch"]
    );

    // Nothing accepted: none, a warning for each.
    let (found, warnings) = newest_usable(dir.path(), |_, _| false);
    assert!(found.is_none());
    assert_eq!(warnings.len(), 4);

    // No directory: no snapshot and nothing to warn about.
    let (found, warnings) = newest_usable(&dir.path().join("absent"), |_, _| true);
    assert!(found.is_none() && warnings.is_empty());
}

#[test]
fn retention_keeps_the_newest_and_leaves_larger_ones_alone() {
    let dir = tempfile::tempdir().unwrap();
    let sizes = |d: &Path| list(d).unwrap().into_iter().map(|(n, _)| n).collect::<Vec<_>>();
    for n in [10, 20, 30, 40] {
        write_small(dir.path(), n, 2);
    }
    assert_eq!(sizes(dir.path()), [40, 30]);
    write_small(dir.path(), 50, 1);
    assert_eq!(sizes(dir.path()), [50]);
    write_small(dir.path(), 60, 3);
    write_small(dir.path(), 70, 3);
    write_small(dir.path(), 80, 3);
    assert_eq!(sizes(dir.path()), [80, 70, 60]);
    // A write below the newest (the log was cut back): it stays, the larger ones stay, older
    // ones below it go.
    write_small(dir.path(), 65, 2);
    assert_eq!(sizes(dir.path()), [80, 70, 65, 60]);
    write_small(dir.path(), 66, 1);
    assert_eq!(sizes(dir.path()), [80, 70, 66]);
    // Rewriting the same size replaces it.
    write_small(dir.path(), 66, 1);
    assert_eq!(sizes(dir.path()), [80, 70, 66]);
}

#[test]
fn sections_that_cannot_be_written_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let refused = |sections: &[Section], keep: usize| write(dir.path(), 1, &root(1), sections, keep).err().unwrap();
    let s = |name| Section { name, version: 1, bytes: b"x", values: b"y" };
    assert_eq!(refused(&[s("a"), s("a")], 2).code(), "snapshot_section_invalid");
    assert_eq!(refused(&[s("")], 2).code(), "snapshot_section_invalid");
    assert_eq!(refused(&[s("Journal")], 2).code(), "snapshot_section_invalid");
    let long = "x".repeat(65);
    assert_eq!(refused(&[s(&long)], 2).code(), "snapshot_section_invalid");
    assert_eq!(refused(&[s("a")], 0).code(), "snapshot_keep_zero");
    let many: Vec<String> = (0..257).map(|i| format!("m{i}")).collect();
    let many: Vec<Section> = many.iter().map(|n| s(n)).collect();
    assert_eq!(refused(&many, 2).code(), "snapshot_section_invalid");
    assert!(list(dir.path()).unwrap().is_empty(), "nothing was written");
    let ok = "a".repeat(64);
    write(dir.path(), 1, &root(1), &[s(&ok), s("z0_.-")], 2).unwrap();
}

#[test]
fn the_policy_says_when_a_snapshot_is_due() {
    let p = SnapshotPolicy { every_entries: 1000, every_seconds: 60, keep: 2 };
    for (entries, seconds, due) in
        [(0, 0, false), (0, 10_000, false), (999, 59, false), (1000, 0, true), (1, 60, true), (5000, 5000, true)]
    {
        assert_eq!(p.due(entries, seconds), due, "{entries} entries, {seconds} s");
    }
    let entries_only = SnapshotPolicy { every_seconds: 0, ..p };
    assert!(!entries_only.due(999, u64::MAX) && entries_only.due(1000, 0));
    let seconds_only = SnapshotPolicy { every_entries: 0, ..p };
    assert!(!seconds_only.due(u64::MAX, 59) && seconds_only.due(1, 60));
    let never = SnapshotPolicy { every_entries: 0, every_seconds: 0, keep: 1 };
    assert!(!never.due(u64::MAX, u64::MAX));

    let default: SnapshotPolicy = serde_json::from_str("{}").unwrap();
    assert_eq!(default, SnapshotPolicy::default());
    assert_eq!(default.keep, 2);
    let some: SnapshotPolicy = serde_json::from_str(r#"{"every_entries": 5, "keep": 3}"#).unwrap();
    assert_eq!(some, SnapshotPolicy { every_entries: 5, keep: 3, ..SnapshotPolicy::default() });
    assert!(serde_json::from_str::<SnapshotPolicy>(r#"{"every_entrie": 5}"#).is_err());
    assert!(SnapshotPolicy { keep: 0, ..p }.validate().is_err());
    assert!(p.validate().is_ok());
}

#[test]
fn rule_state_survives_a_snapshot() {
    use zachetka_rules::{RegionConfig, Rules};
    let rules = Rules::new("ru-47.edu.example", "did:key:z6MkAuthority", RegionConfig::default());
    let (state, values) = zachetka_projections::lazy::encode_apart(|| rules.encode_state());
    let dir = tempfile::tempdir().unwrap();
    let section = Section { name: RULES_SECTION, version: 1, bytes: &state, values: &values };
    let path = write(dir.path(), 7, &root(7), &[section], 2).unwrap();
    let snap = read(&path).unwrap();
    let section = snap.section(RULES_SECTION).unwrap();
    let loaded = zachetka_projections::lazy::load_apart(section.values.source(), || {
        Rules::load_state("ru-47.edu.example", "did:key:z6MkAuthority", RegionConfig::default(), section.bytes)
    })
    .unwrap();
    assert_eq!(loaded.state_digest(), rules.state_digest());
}

/// Review s11 (ops finding 8): snapshots were 0644 in a 0755 directory, readable by any local
/// user. A new snapshot directory is 0700 and every snapshot file 0600, whatever the umask.
#[test]
fn snapshots_are_private_files_in_a_private_directory() {
    use std::os::unix::fs::PermissionsExt;
    let ground = tempfile::tempdir().unwrap();
    let dir = ground.path().join("snapshots");
    let path = write_small(&dir, 10, 2);
    assert_eq!(fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
    assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
}
