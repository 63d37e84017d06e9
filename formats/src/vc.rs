//! W3C Verifiable Credentials 2.0 secured with a Data Integrity proof of cryptosuite
//! `eddsa-jcs-2022` (W3C "Data Integrity EdDSA Cryptosuites v1.0", section 3.3): how the ledger
//! key issues a learner record as a credential (DESIGN 3.4) and how anyone verifies one.
//!
//! Not a general VC library: one proof (not proof sets or chains), one cryptosuite, `did:key`
//! verification methods resolved here (others only with the key handed in), no JSON-LD
//! processing (eddsa-jcs-2022 needs none), and JCS in our `Profile::Document` (floats refused).
//! What the credential says (the record inside `evidence`) is checked by the record verifier.
//!
//! The algorithm, for an unsecured document D and proof options P (P without `proofValue`):
//! 1. if D has `@context`, P's `@context` is set to it;
//! 2. hashData = SHA-256(JCS(P)) || SHA-256(JCS(D));
//! 3. proofValue = `z` + base58btc(Ed25519 signature over hashData).

use crate::jcs::{self, CanonError, Profile};
use crate::keys::{self, KeyError, KeyPair};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// The first `@context` of every VC 2.0 credential.
pub const CONTEXT_V2: &str = "https://www.w3.org/ns/credentials/v2";
/// The proof type of Data Integrity.
pub const PROOF_TYPE: &str = "DataIntegrityProof";
/// The one cryptosuite we create and verify.
pub const CRYPTOSUITE: &str = "eddsa-jcs-2022";
/// The proof purpose of an issuer's statement.
pub const ASSERTION_METHOD: &str = "assertionMethod";

/// Why a credential could not be secured or does not verify. Each variant has a stable code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VcError {
    #[error("a credential is a JSON object")]
    NotAnObject,
    #[error("credential is malformed: {0}")]
    Malformed(String),
    #[error("credential already carries a proof")]
    AlreadySecured,
    #[error("credential carries no proof")]
    ProofMissing,
    #[error("proof is malformed: {0}")]
    ProofMalformed(String),
    #[error("proof type {0:?} / cryptosuite {1:?} is not DataIntegrityProof / eddsa-jcs-2022")]
    CryptosuiteUnsupported(String, String),
    #[error("proof purpose {0:?} is not assertionMethod")]
    ProofPurposeMismatch(String),
    #[error("proof @context is not a prefix of the credential's @context")]
    ContextMismatch,
    #[error("no canonical form (JCS, our profile: no floats): {0}")]
    Canon(#[source] CanonError),
    #[error("verification method {0:?} is not a did:key whose fragment names the same key")]
    VerificationMethodUnresolvable(String),
    #[error("issuer {issuer:?} is not the controller of verification method {method:?}")]
    IssuerMismatch { issuer: String, method: String },
    #[error("proofValue is not z + base58btc of 64 bytes")]
    ProofValueMalformed,
    #[error("key: {0}")]
    Key(#[source] KeyError),
    #[error("signature does not verify under the strict rule")]
    SignatureInvalid,
}

impl VcError {
    /// A stable snake_case code per reason (for the CLI's JSON and for callers that branch).
    pub fn code(&self) -> &'static str {
        match self {
            VcError::NotAnObject | VcError::Malformed(_) => "credential_malformed",
            VcError::AlreadySecured => "credential_already_secured",
            VcError::ProofMissing => "proof_missing",
            VcError::ProofMalformed(_) => "proof_malformed",
            VcError::CryptosuiteUnsupported(..) => "cryptosuite_unsupported",
            VcError::ProofPurposeMismatch(_) => "proof_purpose_mismatch",
            VcError::ContextMismatch => "context_mismatch",
            VcError::Canon(_) => "canonicalization_failed",
            VcError::VerificationMethodUnresolvable(_) => "verification_method_unresolvable",
            VcError::IssuerMismatch { .. } => "issuer_mismatch",
            VcError::ProofValueMalformed => "proof_value_malformed",
            VcError::Key(_) => "key_invalid",
            VcError::SignatureInvalid => "signature_invalid",
        }
    }
}

/// The intermediates of the algorithm, exposed so the W3C test vector is checked step by step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashData {
    pub canonical_proof_config: Vec<u8>,
    pub canonical_document: Vec<u8>,
    pub proof_config_hash: [u8; 32],
    pub document_hash: [u8; 32],
}

impl HashData {
    /// What is signed: SHA-256(JCS(proof config)) || SHA-256(JCS(document)).
    pub fn bytes(&self) -> [u8; 64] {
        let mut out = [0u8; 64];
        out[..32].copy_from_slice(&self.proof_config_hash);
        out[32..].copy_from_slice(&self.document_hash);
        out
    }
}

/// Canonicalizes and hashes an unsecured document and its proof configuration (the proof
/// options without `proofValue`, `@context` already set as step 1 says).
pub fn hash_data(unsecured: &Map<String, Value>, proof_config: &Map<String, Value>) -> Result<HashData, VcError> {
    let canonical_document = canonical(unsecured)?;
    let canonical_proof_config = canonical(proof_config)?;
    Ok(HashData {
        proof_config_hash: Sha256::digest(&canonical_proof_config).into(),
        document_hash: Sha256::digest(&canonical_document).into(),
        canonical_proof_config,
        canonical_document,
    })
}

fn canonical(map: &Map<String, Value>) -> Result<Vec<u8>, VcError> {
    let mut out = String::new();
    jcs::write_canonical_object(map, Profile::Document, &mut out).map_err(VcError::Canon)?;
    Ok(out.into_bytes())
}

/// The proof configuration for `unsecured` (step 1): the options, with the document's
/// `@context` when it has one. Refuses options that carry a `proofValue`.
pub fn proof_config(
    unsecured: &Map<String, Value>,
    options: &Map<String, Value>,
) -> Result<Map<String, Value>, VcError> {
    if options.contains_key("proofValue") {
        return Err(VcError::ProofMalformed("proof options carry a proofValue".into()));
    }
    check_proof_options(options)?;
    let mut config = options.clone();
    if let Some(context) = unsecured.get("@context") {
        config.insert("@context".into(), context.clone());
    }
    Ok(config)
}

/// Secures `unsecured` with a proof made from `options` (type, cryptosuite, created,
/// verificationMethod, proofPurpose, ...) and `key`: the spec's "Create Proof". The caller is
/// responsible for `verificationMethod` naming `key`; [`issue`] does that for the ledger.
pub fn add_proof(unsecured: &Value, options: &Map<String, Value>, key: &KeyPair) -> Result<Value, VcError> {
    let document = unsecured.as_object().ok_or(VcError::NotAnObject)?;
    if document.contains_key("proof") {
        return Err(VcError::AlreadySecured);
    }
    let config = proof_config(document, options)?;
    let hashed = hash_data(document, &config)?;
    let signature = key.sign(&hashed.bytes());
    let mut proof = config;
    proof.insert("proofValue".into(), Value::String(encode_proof_value(&signature.to_bytes())));
    let mut secured = document.clone();
    secured.insert("proof".into(), Value::Object(proof));
    Ok(Value::Object(secured))
}

/// Issues `credential` (a VC 2.0 credential without `proof`) by `ledger_key` as `did:key`: sets
/// `issuer` to the ledger's did:key when absent (refuses another issuer), and adds an
/// `eddsa-jcs-2022` proof for `assertionMethod` whose verification method is
/// `did:key:z..#z..` and whose `created` is `created` (RFC 3339 UTC, `YYYY-MM-DDTHH:MM:SSZ`).
pub fn issue(credential: &Value, ledger_key: &KeyPair, created: &str) -> Result<Value, VcError> {
    let mut document = credential.as_object().ok_or(VcError::NotAnObject)?.clone();
    check_credential_shape(&document)?;
    let did = ledger_key.did();
    match document.get("issuer") {
        None => {
            document.insert("issuer".into(), Value::String(did.clone()));
        }
        Some(issuer) => {
            let named = issuer_id(issuer)?;
            if named != did {
                return Err(VcError::IssuerMismatch { issuer: named.to_owned(), method: did });
            }
        }
    }
    if crate::time::parse_rfc3339(created).is_none() {
        return Err(VcError::ProofMalformed(format!("created {created:?} is not an RFC 3339 UTC time")));
    }
    let mut options = Map::new();
    options.insert("type".into(), PROOF_TYPE.into());
    options.insert("cryptosuite".into(), CRYPTOSUITE.into());
    options.insert("created".into(), created.into());
    options.insert("verificationMethod".into(), verification_method_of(&did).into());
    options.insert("proofPurpose".into(), ASSERTION_METHOD.into());
    add_proof(&Value::Object(document), &options, ledger_key)
}

/// The credential type of an exported learner record.
pub const LEARNER_RECORD_TYPE: &str = "LearnerRecordCredential";
/// The evidence type of the record bundle inside it.
pub const BUNDLE_EVIDENCE_TYPE: &str = "LearnerRecordBundle";

/// The unsecured credential of a learner record (DESIGN 3.4), ready for [`issue`]: VC 2.0
/// context, type `LearnerRecordCredential`, `credentialSubject` naming the learner
/// (`urn:zachetka:<origin>:<learner id>`, and the plain id in `learner`) with `summary` (what the
/// caller chose to state: institutions and years, results, achievements, withheld count,
/// completeness position), and the bundle itself, unchanged, as `evidence`, so a verifier
/// re-checks the summary against the bundle. `valid_from` is RFC 3339 UTC.
pub fn learner_record_credential(
    origin: &str,
    learner_id: &str,
    summary: Value,
    bundle: Value,
    valid_from: &str,
) -> Value {
    serde_json::json!({
        "@context": [CONTEXT_V2],
        "type": ["VerifiableCredential", LEARNER_RECORD_TYPE],
        "validFrom": valid_from,
        "credentialSubject": {
            "id": format!("urn:zachetka:{origin}:{learner_id}"),
            "learner": learner_id,
            "summary": summary,
        },
        "evidence": [{"type": [BUNDLE_EVIDENCE_TYPE], "bundle": bundle}],
    })
}

/// The verification method of a did:key: `did:key:z..#z..` (the did:key method's rule).
pub fn verification_method_of(did: &str) -> String {
    let fragment = did.strip_prefix("did:key:").unwrap_or(did);
    format!("{did}#{fragment}")
}

/// The Ed25519 public key a `did:key` verification method names, checking the fragment is the
/// same multibase key as the DID (the method's only verification method).
pub fn resolve_did_key(method: &str) -> Result<[u8; 32], VcError> {
    let bad = || VcError::VerificationMethodUnresolvable(method.chars().take(120).collect());
    let (did, fragment) = method.split_once('#').ok_or_else(bad)?;
    if did.strip_prefix("did:key:") != Some(fragment) {
        return Err(bad());
    }
    keys::public_from_did(did).map_err(|_| bad())
}

/// What a verified credential established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The issuer's did:key (the controller of the verification method).
    pub issuer: String,
    /// The issuer's Ed25519 public key.
    pub public_key: [u8; 32],
    /// The proof's `created`.
    pub created: String,
}

/// Verifies a credential issued by a `did:key`: its shape (VC 2.0 context and type), the proof
/// (resolving the did:key verification method), and that `issuer` is that did:key. The
/// signature rule is the strict one of every zachetka signature (`keys::verify_strict`).
pub fn verify(secured: &Value) -> Result<Verified, VcError> {
    let document = secured.as_object().ok_or(VcError::NotAnObject)?;
    check_credential_shape(document)?;
    let proof = document.get("proof").ok_or(VcError::ProofMissing)?;
    let method = proof
        .get("verificationMethod")
        .and_then(Value::as_str)
        .ok_or_else(|| VcError::ProofMalformed("verificationMethod is not a string".into()))?;
    let public_key = resolve_did_key(method)?;
    let issuer = issuer_id(document.get("issuer").ok_or_else(|| VcError::Malformed("no issuer".into()))?)?;
    let controller = method.split_once('#').map(|(did, _)| did).unwrap_or(method);
    if issuer != controller {
        return Err(VcError::IssuerMismatch { issuer: issuer.to_owned(), method: method.to_owned() });
    }
    verify_proof(secured, &public_key)?;
    let created = proof.get("created").and_then(Value::as_str).unwrap_or_default().to_owned();
    Ok(Verified { issuer: issuer.to_owned(), public_key, created })
}

/// The spec's "Verify Proof" for eddsa-jcs-2022 with the verification method's key handed in
/// (for methods other than did:key, such as the W3C vector's https URL): proof type and
/// cryptosuite, `assertionMethod`, the `@context` prefix rule, then the signature over the
/// recomputed hash data. Says nothing about who the issuer is.
pub fn verify_proof(secured: &Value, public_key: &[u8; 32]) -> Result<HashData, VcError> {
    let document = secured.as_object().ok_or(VcError::NotAnObject)?;
    let proof = match document.get("proof") {
        None => return Err(VcError::ProofMissing),
        Some(Value::Object(p)) => p,
        Some(_) => {
            return Err(VcError::ProofMalformed("proof is not one object (proof sets are not supported)".into()))
        }
    };
    let mut options = proof.clone();
    let proof_value = match options.remove("proofValue") {
        Some(Value::String(s)) => s,
        _ => return Err(VcError::ProofValueMalformed),
    };
    check_proof_options(&options)?;
    let mut unsecured = document.clone();
    unsecured.remove("proof");
    // Spec 3.3.2 step 3: the proof's @context must be a prefix of the document's, and is the
    // context the document is verified under.
    if let Some(context) = options.get("@context") {
        let proof_ctx = as_list(context);
        let doc_ctx = unsecured.get("@context").map(as_list).unwrap_or_default();
        if proof_ctx.len() > doc_ctx.len() || proof_ctx.iter().zip(&doc_ctx).any(|(a, b)| a != b) {
            return Err(VcError::ContextMismatch);
        }
        unsecured.insert("@context".into(), context.clone());
    }
    let signature = decode_proof_value(&proof_value)?;
    let hashed = hash_data(&unsecured, &options)?;
    let key = keys::verifying_key(public_key).map_err(VcError::Key)?;
    keys::verify_strict(&key, &hashed.bytes(), &ed25519_dalek::Signature::from_bytes(&signature))
        .map_err(|_| VcError::SignatureInvalid)?;
    Ok(hashed)
}

fn as_list(v: &Value) -> Vec<&Value> {
    match v {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    }
}

fn check_proof_options(options: &Map<String, Value>) -> Result<(), VcError> {
    let field = |name: &str| options.get(name).and_then(Value::as_str);
    let (kind, suite) = (field("type").unwrap_or_default(), field("cryptosuite").unwrap_or_default());
    if kind != PROOF_TYPE || suite != CRYPTOSUITE {
        return Err(VcError::CryptosuiteUnsupported(kind.to_owned(), suite.to_owned()));
    }
    let purpose = field("proofPurpose").unwrap_or_default();
    if purpose != ASSERTION_METHOD {
        return Err(VcError::ProofPurposeMismatch(purpose.to_owned()));
    }
    if field("verificationMethod").is_none() {
        return Err(VcError::ProofMalformed("verificationMethod is not a string".into()));
    }
    if let Some(created) = options.get("created") {
        // XML Schema dateTimeStamp: a time with its offset. Our RFC 3339 grammar is that.
        if created.as_str().and_then(crate::time::parse_instant).is_none() {
            return Err(VcError::ProofMalformed(format!("created {created} is not a date-time with offset")));
        }
    }
    Ok(())
}

/// VC 2.0's minimum: `@context` starting with the v2 context, `type` naming
/// `VerifiableCredential`.
fn check_credential_shape(document: &Map<String, Value>) -> Result<(), VcError> {
    let context = document.get("@context").map(as_list).unwrap_or_default();
    if context.first().and_then(|c| c.as_str()) != Some(CONTEXT_V2) {
        return Err(VcError::Malformed(format!("@context does not start with {CONTEXT_V2}")));
    }
    let types = document.get("type").map(as_list).unwrap_or_default();
    if !types.iter().any(|t| t.as_str() == Some("VerifiableCredential")) {
        return Err(VcError::Malformed("type does not name VerifiableCredential".into()));
    }
    Ok(())
}

/// `issuer` is a URL or an object with an `id` (VC 2.0 section 4.7).
fn issuer_id(issuer: &Value) -> Result<&str, VcError> {
    match issuer {
        Value::String(s) => Ok(s),
        Value::Object(o) => {
            o.get("id").and_then(Value::as_str).ok_or_else(|| VcError::Malformed("issuer object has no id".into()))
        }
        _ => Err(VcError::Malformed("issuer is neither a string nor an object".into())),
    }
}

/// `z` + base58btc (multibase) of a 64-byte signature.
pub fn encode_proof_value(signature: &[u8; 64]) -> String {
    format!("z{}", bs58::encode(signature).into_string())
}

/// The 64 signature bytes of a multibase base58btc `proofValue`.
pub fn decode_proof_value(value: &str) -> Result<[u8; 64], VcError> {
    let b58 = value.strip_prefix('z').ok_or(VcError::ProofValueMalformed)?;
    if b58.len() > 100 {
        return Err(VcError::ProofValueMalformed);
    }
    let bytes = bs58::decode(b58).into_vec().map_err(|_| VcError::ProofValueMalformed)?;
    bytes.try_into().map_err(|_| VcError::ProofValueMalformed)
}

#[cfg(test)]
mod tests {
    //! The W3C vector (`tests/vectors/w3c-vc-di-eddsa`, provenance in `tests/vectors/SOURCES.md`)
    //! reproduced step by step, then our own issue/verify round trip and tampering.
    use super::*;
    use serde_json::json;

    const KEY_PAIR: &str = include_str!("../../tests/vectors/w3c-vc-di-eddsa/keyPair.json");
    const SIGNED: &str = include_str!("../../tests/vectors/w3c-vc-di-eddsa/signedJCS.json");
    const CANON_DOC: &str = include_str!("../../tests/vectors/w3c-vc-di-eddsa/canonDocJCS.txt");
    /// JCS of the vector's proof configuration (`proofConfigJCS.json` upstream); its SHA-256 is
    /// the vector's `proofConfigHash_hex`, checked below, so this literal is not taken on trust.
    const CANON_PROOF_CONFIG: &str = r#"{"@context":["https://www.w3.org/ns/credentials/v2","https://www.w3.org/ns/credentials/examples/v2"],"created":"2023-02-24T23:36:38Z","cryptosuite":"eddsa-jcs-2022","proofPurpose":"assertionMethod","type":"DataIntegrityProof","verificationMethod":"https://vc.example/issuers/5678#z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2"}"#;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The multibase keys of the vector: `z` + base58btc(multicodec || key), multicodec
    /// ed25519-pub 0xed01 and ed25519-priv 0x8026.
    fn vector_key() -> (KeyPair, [u8; 32]) {
        let kp: Value = serde_json::from_str(KEY_PAIR).unwrap();
        let decode = |field: &str, prefix: [u8; 2]| -> [u8; 32] {
            let s = kp[field].as_str().unwrap();
            let bytes = bs58::decode(s.strip_prefix('z').unwrap()).into_vec().unwrap();
            assert_eq!(bytes[..2], prefix, "{field} multicodec");
            bytes[2..].try_into().unwrap()
        };
        let seed = decode("secretKeyMultibase", [0x80, 0x26]);
        let public = decode("publicKeyMultibase", [0xed, 0x01]);
        (KeyPair::from_seed(&seed), public)
    }

    fn expected(field: &str) -> String {
        let kp: Value = serde_json::from_str(KEY_PAIR).unwrap();
        kp["expected"][field].as_str().unwrap().to_owned()
    }

    fn unsecured_and_options() -> (Value, Map<String, Value>) {
        let mut doc: Value = serde_json::from_str(SIGNED).unwrap();
        let mut proof = doc.as_object_mut().unwrap().remove("proof").unwrap().as_object().unwrap().clone();
        proof.remove("proofValue");
        proof.remove("@context");
        (doc, proof)
    }

    #[test]
    fn w3c_vector_intermediates_byte_for_byte() {
        let (key, public) = vector_key();
        assert_eq!(key.public(), public, "the secret key's public half is the vector's public key");
        let (doc, options) = unsecured_and_options();
        let config = proof_config(doc.as_object().unwrap(), &options).unwrap();
        let hashed = hash_data(doc.as_object().unwrap(), &config).unwrap();
        assert_eq!(std::str::from_utf8(&hashed.canonical_document).unwrap(), CANON_DOC);
        assert_eq!(std::str::from_utf8(&hashed.canonical_proof_config).unwrap(), CANON_PROOF_CONFIG);
        assert_eq!(hex(&hashed.document_hash), expected("documentHash_hex"));
        assert_eq!(hex(&hashed.proof_config_hash), expected("proofConfigHash_hex"));
        assert_eq!(hex(&Sha256::digest(CANON_PROOF_CONFIG)), expected("proofConfigHash_hex"));
        let signature = key.sign(&hashed.bytes()).to_bytes();
        assert_eq!(encode_proof_value(&signature), expected("proofValue"));
        assert_eq!(decode_proof_value(&expected("proofValue")).unwrap(), signature);
    }

    #[test]
    fn w3c_vector_secured_document_is_reproduced_and_verifies() {
        let (key, public) = vector_key();
        let (doc, options) = unsecured_and_options();
        let secured = add_proof(&doc, &options, &key).unwrap();
        let want: Value = serde_json::from_str(SIGNED).unwrap();
        assert_eq!(secured, want);
        verify_proof(&want, &public).unwrap();
        // The vector's issuer is an https URL, not a did:key: `verify` cannot resolve it.
        assert_eq!(verify(&want).unwrap_err().code(), "verification_method_unresolvable");
    }

    #[test]
    fn w3c_vector_fails_on_any_changed_value() {
        let (_, public) = vector_key();
        let want: Value = serde_json::from_str(SIGNED).unwrap();
        let mut cases: Vec<(Value, &str)> = Vec::new();
        let mut edit = |f: &dyn Fn(&mut Value), code: &'static str| {
            let mut v = want.clone();
            f(&mut v);
            cases.push((v, code));
        };
        edit(&|v| v["credentialSubject"]["alumniOf"] = json!("The School of Exampels"), "signature_invalid");
        edit(&|v| v["validFrom"] = json!("2023-01-01T00:00:01Z"), "signature_invalid");
        edit(&|v| v["proof"]["created"] = json!("2023-02-24T23:36:39Z"), "signature_invalid");
        edit(&|v| v["@context"][1] = json!("https://example.org/other"), "context_mismatch");
        edit(&|v| v["proof"]["cryptosuite"] = json!("eddsa-rdfc-2022"), "cryptosuite_unsupported");
        edit(&|v| v["proof"]["proofPurpose"] = json!("authentication"), "proof_purpose_mismatch");
        edit(&|v| v["extra"] = json!(true), "signature_invalid");
        edit(&|v| v["extra"] = json!(1.5), "canonicalization_failed");
        edit(&|v| v["proof"]["proofValue"] = json!("u63t83Y53"), "proof_value_malformed");
        edit(
            &|v| {
                v.as_object_mut().unwrap().remove("proof");
            },
            "proof_missing",
        );
        for (v, code) in cases {
            assert_eq!(verify_proof(&v, &public).unwrap_err().code(), code, "{v}");
        }
        let mut other = public;
        other[0] ^= 1;
        assert!(verify_proof(&want, &other).is_err());
    }

    fn ledger() -> KeyPair {
        KeyPair::from_seed(&[42u8; 32])
    }

    fn credential() -> Value {
        let summary = json!({"results": 3, "withheld": 1, "complete": true});
        let bundle = json!({"entries": [{"seq": 7, "stream_prev": null}], "checkpoint": "o\n1\nAA==\n"});
        learner_record_credential("ru-47.edu.example", "47-000123", summary, bundle, "2026-12-01T10:00:00Z")
    }

    #[test]
    fn issued_credentials_verify_and_name_the_ledger_did() {
        let key = ledger();
        let issued = issue(&credential(), &key, "2026-12-01T10:00:00Z").unwrap();
        assert_eq!(issued["issuer"], json!(key.did()));
        assert_eq!(issued["proof"]["verificationMethod"], json!(verification_method_of(&key.did())));
        assert_eq!(issued["proof"]["@context"], json!([CONTEXT_V2]));
        let verified = verify(&issued).unwrap();
        assert_eq!(verified.issuer, key.did());
        assert_eq!(verified.public_key, key.public());
        assert_eq!(verified.created, "2026-12-01T10:00:00Z");
        // Re-issuing is deterministic (Ed25519 is).
        assert_eq!(issue(&credential(), &key, "2026-12-01T10:00:00Z").unwrap(), issued);
    }

    #[test]
    fn issue_refuses_what_it_cannot_sign_honestly() {
        let key = ledger();
        let mut foreign = credential();
        foreign["issuer"] = json!("did:key:z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2");
        assert_eq!(issue(&foreign, &key, "2026-12-01T10:00:00Z").unwrap_err().code(), "issuer_mismatch");
        let mut ours = credential();
        ours["issuer"] = json!({"id": key.did(), "name": "ledger"});
        assert!(verify(&issue(&ours, &key, "2026-12-01T10:00:00Z").unwrap()).is_ok());
        let secured = issue(&credential(), &key, "2026-12-01T10:00:00Z").unwrap();
        assert_eq!(issue(&secured, &key, "2026-12-01T10:00:00Z").unwrap_err().code(), "credential_already_secured");
        assert_eq!(issue(&credential(), &key, "yesterday").unwrap_err().code(), "proof_malformed");
        assert_eq!(
            issue(&json!({"type": ["VerifiableCredential"]}), &key, "2026-12-01T10:00:00Z").unwrap_err().code(),
            "credential_malformed"
        );
        assert_eq!(issue(&json!([1]), &key, "2026-12-01T10:00:00Z").unwrap_err().code(), "credential_malformed");
    }

    /// Any changed byte of the serialized credential either makes it unparsable or fails
    /// verification: flip every byte of its JSON text in turn (a different ASCII letter or digit).
    #[test]
    fn any_changed_byte_fails() {
        let key = ledger();
        let text = serde_json::to_vec(&issue(&credential(), &key, "2026-12-01T10:00:00Z").unwrap()).unwrap();
        let mut checked = 0;
        for i in 0..text.len() {
            let mut t = text.clone();
            t[i] = if t[i] == b'0' {
                b'1'
            } else if t[i].is_ascii_alphanumeric() {
                b'0'
            } else {
                b'x'
            };
            let Ok(v) = jcs::parse_strict(&t) else { continue };
            // A change that leaves the same JSON value (none here: no insignificant bytes in
            // serde_json's compact output) would be no change at all.
            assert!(verify(&v).is_err(), "byte {i} changed to {:?} still verifies", t[i] as char);
            checked += 1;
        }
        assert!(checked > text.len() / 2, "most flips leave valid JSON: {checked} of {}", text.len());
    }

    #[test]
    fn did_key_methods_must_name_one_key() {
        let did = ledger().did();
        assert_eq!(resolve_did_key(&verification_method_of(&did)).unwrap(), ledger().public());
        for bad in
            [did.clone(), format!("{did}#key-1"), format!("{did}#z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2")]
        {
            assert_eq!(resolve_did_key(&bad).unwrap_err().code(), "verification_method_unresolvable", "{bad}");
        }
        let mut issued = issue(&credential(), &ledger(), "2026-12-01T10:00:00Z").unwrap();
        issued["issuer"] = json!("did:key:z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2");
        assert_eq!(verify(&issued).unwrap_err().code(), "issuer_mismatch");
    }
}
