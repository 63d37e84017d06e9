//! RFC 9162 Merkle trees: transparency-dev's inclusion and consistency vectors (negative ones
//! too), the classic CT reference tree, and exhaustive checks of our proofs against our
//! verifiers and against a from-scratch recursive MTH.

use super::{b64d, hex, path};
use proptest::prelude::*;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use zachetka::merkle::{
    leaf_hash, prove_consistency, prove_inclusion, verify_consistency, verify_inclusion, Hash, MemoryTree, EMPTY_ROOT,
};

fn json_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let p = e.unwrap().path();
        if p.is_dir() {
            json_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "json") {
            out.push(p);
        }
    }
    out.sort();
}

/// A vector's hash; `None` when it is not 32 bytes of base64 (the verification then fails).
fn hash(v: &Value) -> Option<Hash> {
    let bytes = zachetka::keys::b64_decode(v.as_str()?)?;
    Some(Hash(bytes.try_into().ok()?))
}

fn proof(v: &Value) -> Option<Vec<Hash>> {
    match v {
        Value::Null => Some(vec![]),
        Value::Array(a) => a.iter().map(hash).collect(),
        _ => panic!("proof is {v}"),
    }
}

fn vectors(kind: &str) -> Vec<(String, Value)> {
    let root = path("transparency-dev-merkle/testdata").join(kind);
    let mut files = vec![];
    json_files(&root, &mut files);
    files
        .into_iter()
        .map(|p| {
            let name = p.strip_prefix(&root).unwrap().display().to_string();
            (name, serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap())
        })
        .collect()
}

#[test]
fn transparency_dev_inclusion_vectors() {
    let vs = vectors("inclusion");
    assert_eq!(vs.len(), 98);
    let mut wrong = vec![];
    let mut happy = 0;
    for (name, v) in &vs {
        let ok = (|| {
            let (leaf, root, proof) = (hash(&v["leafHash"])?, hash(&v["root"])?, proof(&v["proof"])?);
            Some(verify_inclusion(v["leafIdx"].as_u64()?, v["treeSize"].as_u64()?, leaf, &proof, root).is_ok())
        })()
        .unwrap_or(false);
        let want_err = v["wantErr"].as_bool().unwrap();
        happy += usize::from(!want_err);
        if ok == want_err {
            wrong.push(format!("{name}: verified={ok}, wantErr={want_err}"));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    assert_eq!(happy, 6, "happy-path vectors (0-4 and single-entry)");
}

/// The one vector whose expected outcome our API cannot express: two equal 12-byte "roots" of
/// equal size 1. transparency-dev compares roots as byte strings and calls that consistent; in
/// zachetka a root is a 32-byte `Hash` (and `Hash::from_b64` refuses anything else), so the
/// check fails before it starts. Kept as a pinned, documented divergence.
const CONSISTENCY_NOT_A_HASH: &str = "additional/sizes-are-equal-one-and-proof-is-empty.json";

#[test]
fn transparency_dev_consistency_vectors() {
    let vs = vectors("consistency");
    assert_eq!(vs.len(), 98);
    let mut wrong = vec![];
    let mut happy = 0;
    for (name, v) in &vs {
        let ok = (|| {
            let (root1, root2, proof) = (hash(&v["root1"])?, hash(&v["root2"])?, proof(&v["proof"])?);
            Some(verify_consistency(v["size1"].as_u64()?, v["size2"].as_u64()?, root1, root2, &proof).is_ok())
        })()
        .unwrap_or(false);
        let want_err = v["wantErr"].as_bool().unwrap();
        happy += usize::from(!want_err);
        if ok == want_err {
            wrong.push(name.clone());
        }
    }
    assert_eq!(wrong, [CONSISTENCY_NOT_A_HASH], "vectors whose outcome differs from !wantErr");
    assert_eq!(
        b64d(vs.iter().find(|(n, _)| n == CONSISTENCY_NOT_A_HASH).unwrap().1["root1"].as_str().unwrap()).len(),
        12
    );
    assert_eq!(happy, 6, "happy-path vectors (0-4 and additional)");
}

/// RFC 6962 / certificate-transparency reference tree: leaves and roots for sizes 1-8.
#[test]
fn ct_reference_tree() {
    const LEAVES: [&str; 8] =
        ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"];
    const ROOTS: [&str; 8] = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];
    assert_eq!(EMPTY_ROOT.0.as_slice(), hex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
    let mut tree = MemoryTree::default();
    assert_eq!(tree.root(), EMPTY_ROOT);
    for (i, leaf) in LEAVES.iter().enumerate() {
        tree.push(leaf_hash(&hex(leaf)));
        assert_eq!(tree.root().0.as_slice(), hex(ROOTS[i]), "size {}", i + 1);
    }
    for (i, want) in ROOTS.iter().enumerate() {
        assert_eq!(tree.root_at(i as u64 + 1).0.as_slice(), hex(want), "root_at({})", i + 1);
    }
}

/// RFC 9162 2.1.1 MTH, written from the text: no shared code with the library.
fn mth(leaves: &[Vec<u8>]) -> [u8; 32] {
    match leaves.len() {
        0 => Sha256::digest(b"").into(),
        1 => Sha256::new().chain_update([0u8]).chain_update(&leaves[0]).finalize().into(),
        n => {
            let k = 1usize << (usize::BITS - 1 - (n - 1).leading_zeros()); // largest power of 2 < n
            Sha256::new()
                .chain_update([1u8])
                .chain_update(mth(&leaves[..k]))
                .chain_update(mth(&leaves[k..]))
                .finalize()
                .into()
        }
    }
}

fn leaf_data(i: usize) -> Vec<u8> {
    format!("leaf {i}").into_bytes()
}

fn tree_of(n: usize) -> MemoryTree {
    let mut t = MemoryTree::default();
    for i in 0..n {
        t.push(leaf_hash(&leaf_data(i)));
    }
    t
}

fn flip_bit(proof: &[Hash], at: usize) -> Vec<Hash> {
    let mut p = proof.to_vec();
    let h = at % p.len();
    let bit = (at / p.len()) % 256;
    p[h].0[bit / 8] ^= 1 << (bit % 8);
    p
}

#[test]
fn roots_equal_a_from_scratch_mth() {
    let leaves: Vec<Vec<u8>> = (0..300).map(leaf_data).collect();
    let tree = tree_of(300);
    assert_eq!(tree.root_at(0).0, mth(&[]));
    for n in 1..=300 {
        assert_eq!(tree.root_at(n as u64).0, mth(&leaves[..n]), "size {n}");
    }
}

#[test]
fn every_inclusion_proof_up_to_300_verifies() {
    let tree = tree_of(300);
    let leaves: Vec<Hash> = (0..300).map(|i| leaf_hash(&leaf_data(i))).collect();
    for n in 1..=300u64 {
        let root = tree.root_at(n);
        for i in 0..n {
            let proof = prove_inclusion(i, n, &tree).unwrap();
            let leaf = leaves[i as usize];
            assert_eq!(verify_inclusion(i, n, leaf, &proof, root), Ok(()), "leaf {i} of {n}");
            if !proof.is_empty() {
                let bad = flip_bit(&proof, (i * 31 + n) as usize);
                assert!(verify_inclusion(i, n, leaf, &bad, root).is_err(), "flipped proof of leaf {i} of {n}");
            }
            if n > 1 {
                assert!(
                    verify_inclusion((i + 1) % n, n, leaf, &proof, root).is_err(),
                    "leaf {i} claimed at {} of {n}",
                    (i + 1) % n
                );
            }
        }
        assert!(prove_inclusion(n, n, &tree).is_err());
    }
}

#[test]
fn every_consistency_proof_up_to_200_verifies() {
    let tree = tree_of(200);
    let roots: Vec<Hash> = (0..=200).map(|n| tree.root_at(n)).collect();
    for n in 1..=200u64 {
        for m in 1..=n {
            let proof = prove_consistency(m, n, &tree).unwrap();
            let (r1, r2) = (roots[m as usize], roots[n as usize]);
            assert_eq!(verify_consistency(m, n, r1, r2, &proof), Ok(()), "{m} -> {n}");
            if m == n {
                assert!(proof.is_empty());
                continue;
            }
            let bad = flip_bit(&proof, (m * 37 + n) as usize);
            assert!(verify_consistency(m, n, r1, r2, &bad).is_err(), "flipped proof {m} -> {n}");
            assert!(
                verify_consistency(m, n, roots[m as usize - 1], r2, &proof).is_err(),
                "wrong first root {m} -> {n}"
            );
        }
    }
    assert!(prove_consistency(0, 5, &tree).is_err());
    assert!(prove_consistency(6, 5, &tree).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Random leaf contents and larger trees than the exhaustive loops reach.
    #[test]
    fn random_trees_agree_with_mth(leaves in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 1..1200), pick in any::<prop::sample::Index>(), pick2 in any::<prop::sample::Index>()) {
        let mut tree = MemoryTree::default();
        for l in &leaves {
            tree.push(leaf_hash(l));
        }
        let n = leaves.len();
        prop_assert_eq!(tree.root().0, mth(&leaves));
        let i = pick.index(n);
        let proof = prove_inclusion(i as u64, n as u64, &tree).unwrap();
        prop_assert!(verify_inclusion(i as u64, n as u64, leaf_hash(&leaves[i]), &proof, tree.root()).is_ok());
        let m = pick2.index(n) + 1;
        let proof = prove_consistency(m as u64, n as u64, &tree).unwrap();
        prop_assert!(verify_consistency(m as u64, n as u64, Hash(mth(&leaves[..m])), tree.root(), &proof).is_ok());
    }
}
