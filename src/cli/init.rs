//! `zachetka init`: the rules a new ledger fixes, then its key files and store config, written
//! so that a refused init leaves no file it created. Not the ledger's own initialization
//! (`zachetka::ledger::init_store`).

use super::{store_dir, write_new_file};
use anyhow::{anyhow, bail, Context, Result};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use zachetka::keys::KeyPair;
use zachetka::store::postgres::PgStore;
use zachetka::store::sled::SledStore;
use zachetka::store::Store;

/// The rules a new ledger fixes: `none`, `education` (the default region), or a region file.
fn rules_config(rules: &str) -> Result<Option<serde_json::Value>> {
    Ok(match rules {
        "none" => None,
        "education" => Some(zachetka::rules::default_region()),
        path => {
            let text = std::fs::read_to_string(path).with_context(|| format!("couldn't read region config {path}"))?;
            let region =
                zachetka::rules::RegionConfig::from_json(&text).map_err(|e| anyhow!("region config {path}: {e}"))?;
            Some(serde_json::to_value(region)?)
        }
    })
}

/// Creates a ledger: checks everything that can refuse before writing a key, then writes the
/// key files (never over existing ones) and the store's config. A refused init (a ledger already
/// in the store or the directory, a config the store refuses) leaves no file it created: key
/// files and a store directory made by this call are removed again.
pub(super) fn init(
    dir: &Path,
    database: Option<&str>,
    origin: &str,
    authority_did: Option<String>,
    rules: &str,
) -> Result<String> {
    init_with(dir, database, origin, authority_did, rules_config(rules)?)
}

/// `init` with the region config already read (`None`: a bare signed log); the demo passes its
/// own region's (`zachetka::demo::region_config`, the default lists and its migration cutover).
pub(super) fn init_with(
    dir: &Path,
    database: Option<&str>,
    origin: &str,
    authority_did: Option<String>,
    rules: Option<serde_json::Value>,
) -> Result<String> {
    if !signed_note_name_ok(origin) {
        bail!("origin {origin:?} must be non-empty without spaces or '+'");
    }
    if let Some(did) = &authority_did {
        zachetka::keys::public_from_did(did)?;
    }
    std::fs::create_dir_all(dir).with_context(|| format!("couldn't create the ledger directory {}", dir.display()))?;
    super::make_ledger_dir_private(dir)?;
    let mut created = Vec::new();
    let lock_path = dir.join("LOCK");
    let lock_created = !lock_path.exists();
    let _dir_lock = zachetka::store::lock_ledger_dir(dir)?;
    if lock_created {
        // A refused init leaves nothing behind, its lock file included.
        created.push(lock_path);
    }
    let store_created = database.is_none() && !store_dir(dir).exists();
    if store_created {
        created.push(store_dir(dir));
    }
    let result = init_files(dir, database, origin, authority_did, rules, &mut created);
    if result.is_err() {
        // Nothing of this ledger was committed: the keys we wrote never signed anything kept.
        for path in created.iter().rev() {
            let _ = if path.is_dir() { std::fs::remove_dir_all(path) } else { std::fs::remove_file(path) };
        }
    }
    result
}

/// `init`'s writes; every path it creates is pushed to `created` as soon as it exists.
fn init_files(
    dir: &Path,
    database: Option<&str>,
    origin: &str,
    authority_did: Option<String>,
    rules: Option<serde_json::Value>,
    created: &mut Vec<PathBuf>,
) -> Result<String> {
    let store: Arc<dyn Store> = match database {
        Some(url) => Arc::new(PgStore::open(url).context("couldn't open the PostgreSQL store")?),
        None => Arc::new(
            SledStore::open(&store_dir(dir))
                .with_context(|| format!("couldn't open the store in {}", dir.display()))?,
        ),
    };
    if let Some(config) = store.config()? {
        bail!("the store already holds ledger {} (verifier key {})", config.origin, config.verifier_key);
    }
    let mut key_files = vec![dir.join("ledger.key")];
    if authority_did.is_none() {
        key_files.push(dir.join("authority.key"));
    }
    if let Some(existing) = key_files.iter().find(|p| p.exists()) {
        bail!("{} already exists: {} holds a ledger's keys", existing.display(), dir.display());
    }
    let authority = match authority_did {
        Some(did) => did,
        None => {
            let k = KeyPair::generate();
            let path = dir.join("authority.key");
            write_new_file(&path, &k.to_key_file())?;
            created.push(path);
            k.did()
        }
    };
    let key = KeyPair::generate();
    let path = dir.join("ledger.key");
    write_new_file(&path, &key.to_key_file())?;
    created.push(path);
    // Here the keys are durable and the store not initialized: a crash leaves key files beside
    // an empty store, which `init` refuses as it stands (the files exist) until they are removed.
    let config = zachetka::ledger::init_store(&*store, origin, &key, &authority, rules)?;
    Ok(config.verifier_key)
}

fn signed_note_name_ok(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(char::is_whitespace) && !name.contains('+')
}
