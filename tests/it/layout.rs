//! The crate layout of DESIGN 2, enforced: the dependency arrows read from `cargo metadata`, and
//! which modules may name a store or HTTP, read from the sources. A wrong arrow fails here.

use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::path::Path;

/// Package name -> the names of its normal (not dev) dependencies, from the resolved graph.
fn dependency_graph() -> (HashMap<String, Vec<String>>, HashMap<String, String>) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--locked"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(out.status.success(), "cargo metadata: {}", String::from_utf8_lossy(&out.stderr));
    let meta: Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: HashMap<String, String> = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap().to_owned(), p["name"].as_str().unwrap().to_owned()))
        .collect();
    let mut graph = HashMap::new();
    for node in meta["resolve"]["nodes"].as_array().unwrap() {
        let deps = node["deps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["dep_kinds"].as_array().unwrap().iter().any(|k| k["kind"].is_null() || k["kind"] == "build"))
            .map(|d| names[d["pkg"].as_str().unwrap()].clone())
            .collect();
        graph.insert(names[node["id"].as_str().unwrap()].clone(), deps);
    }
    (graph, names)
}

fn closure(graph: &HashMap<String, Vec<String>>, root: &str) -> BTreeSet<String> {
    let (mut seen, mut todo) = (BTreeSet::new(), vec![root.to_owned()]);
    while let Some(p) = todo.pop() {
        for d in graph.get(&p).into_iter().flatten() {
            if seen.insert(d.clone()) {
                todo.push(d.clone());
            }
        }
    }
    seen
}

/// I/O, storage, HTTP and thread-pool crates: what a verifier or a pure fold must not pull in.
const HEAVY: [&str; 9] = ["sled", "postgres", "tokio-postgres", "tokio", "axum", "hyper", "rayon", "ureq", "mio"];

#[test]
fn dependency_arrows_point_down() {
    let (graph, _) = dependency_graph();
    for (pkg, deps) in &graph {
        assert!(!deps.contains(&"zachetka".to_owned()), "{pkg} depends on the root package");
    }
    for lower in ["zachetka-formats", "zachetka-projections", "zachetka-rules", "zachetka-record"] {
        let all = closure(&graph, lower);
        for heavy in HEAVY {
            assert!(!all.contains(heavy), "{lower} pulls in {heavy} (through {all:?})");
        }
    }
    let formats = closure(&graph, "zachetka-formats");
    assert!(!formats.iter().any(|d| d.starts_with("zachetka")), "formats is the bottom: {formats:?}");
    let projections = closure(&graph, "zachetka-projections");
    assert!(!projections.contains("zachetka-snapshots"), "{projections:?}");
    assert!(!projections.contains("zachetka-rules"), "projections never depends on the rules: {projections:?}");
    let rules = closure(&graph, "zachetka-rules");
    assert!(rules.contains("zachetka-projections") && !rules.contains("zachetka-snapshots"), "{rules:?}");
    // The record verifier links formats and rules (and projections, through rules: `Concerns`),
    // nothing else of ours: what a university embeds carries no store and no snapshot.
    let record = closure(&graph, "zachetka-record");
    let ours: BTreeSet<&str> = record.iter().filter(|d| d.starts_with("zachetka")).map(String::as_str).collect();
    assert_eq!(ours, BTreeSet::from(["zachetka-formats", "zachetka-projections", "zachetka-rules"]), "{record:?}");
    assert!(graph["zachetka"].contains(&"zachetka-record".to_owned()), "the root package exports and serves bundles");
}

/// Every `.rs` file below `dir`, with its text.
fn sources(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        if path.is_dir() {
            out.extend(sources(&path));
        } else if path.extension().is_some_and(|x| x == "rs") {
            let rel = path.strip_prefix(env!("CARGO_MANIFEST_DIR")).unwrap().display().to_string();
            out.push((rel, std::fs::read_to_string(&path).unwrap()));
        }
    }
    out
}

/// Whether `code` names the crate `word` (as `word::`, not as the end of a longer path such as
/// `store::sled::`).
fn names_crate(code: &str, word: &str) -> bool {
    code.match_indices(word).any(|(at, _)| {
        let before = code[..at].chars().next_back();
        !before.is_some_and(|c| c == ':' || c == '_' || c.is_alphanumeric())
    })
}

/// Only the store modules name sled or SQL; only the API (`src/api/`) names axum or hyper: the
/// CLI reaches it through `zachetka::api`, and its HTTP client is ureq.
#[test]
fn only_the_store_knows_storage_and_only_the_api_knows_http() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = sources(&root.join("src"));
    for krate in ["formats", "projections", "rules", "snapshots", "record"] {
        files.extend(sources(&root.join(krate).join("src")));
    }
    for (path, text) in &files {
        let code: String = text.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n");
        if !path.starts_with("src/store/") {
            for word in ["sled::", "postgres::"] {
                assert!(!names_crate(&code, word), "{path} names {word}: only src/store/ may");
            }
        }
        if !path.starts_with("src/api/") {
            for word in ["axum::", "hyper::", "hyper_util::"] {
                assert!(!names_crate(&code, word), "{path} names {word}: only src/api/ may");
            }
        }
    }
}
