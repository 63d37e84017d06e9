// zachetka record verifier for the browser: checks a learner record bundle (record/FORMAT.md,
// version 1) entirely in the page with WebCrypto (SHA-256, Ed25519) and renders what it holds.
// Nothing is uploaded: the page makes no request (its Content-Security-Policy forbids any).
//
// What this file checks, in FORMAT.md section 4's order: shape and limits (unknown members,
// duplicate keys, base64, sizes); the checkpoint (C2SP signed note: key name, key id, strict
// Ed25519 signature, origin) under the key the user trusts; every leaf hash and RFC 9162
// inclusion proof against the checkpoint root; each disclosed entry's canonical JCS bytes, seq,
// ledger and author signature (strict Ed25519, see verifyStrict); that each disclosed entry
// concerns the learner (the Concerns definition); stream chains; the authority: the
// establishment, then the registry replayed (grants, revocations, rotations) and, for every
// disclosed entry and every registration the authority part carries (a college curriculum, a
// club programme), the author's grant in force at occurred_at (an import's: at recorded_at, with
// the migration role) (the "grant check"); registry entries' own authors (authority, or an
// institution admin within its institution); completeness (FORMAT.md section 6): the commitment
// entry (proof, canonical bytes, signature, author = the trusted ledger key), the learner's value
// recomputed from the bundle's items with WebCrypto SHA-256, the map proof against the
// commitment's map root, and the freshness bound.
// What only the Rust verifier checks: the full rule replay (zachetka_rules::check_and_apply: the
// role and scope each event type needs, domain invariants), and consistency between two
// checkpoints (section 4.7: not an input of this page).
//
// No framework, no library: plain ES2020 and WebCrypto.
'use strict';

(function (global) {
  const FORMAT = 'zachetka-record';
  const BUNDLE_BYTES_MAX = 64 * 1024 * 1024;
  const ITEMS_MAX = 200000;
  const PROOF_HASHES_MAX = 64;
  const ENTRY_BYTES_MAX = 65535;
  const NOTE_BYTES_MAX = 16 * 1024;
  const SAFE_MAX = Number.MAX_SAFE_INTEGER;
  const EVENT_DOMAIN = 'zachetka/event/v1\n';

  const enc = new TextEncoder();
  const utf8 = new TextDecoder('utf-8', { fatal: true });

  class Failure extends Error {
    constructor(code, message, seq) {
      super(message);
      this.code = code;
      if (seq !== undefined) this.seq = seq;
    }
  }
  const fail = (code, message, seq) => { throw new Failure(code, message, seq); };

  // ---- bytes ----------------------------------------------------------------------------------

  const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  const B64_INDEX = new Int16Array(128).fill(-1);
  for (let i = 0; i < 64; i++) B64_INDEX[B64.charCodeAt(i)] = i;

  // Standard padded base64, strict (RFC 4648 section 4: canonical padding and trailing bits,
  // no whitespace), as the Rust side's `base64` STANDARD engine decodes it; null when
  // malformed. Decoded by hand (atob is lenient and needs a round trip to be made strict; a
  // bundle holds tens of thousands of hashes).
  const sextet = (s, i) => { const c = s.charCodeAt(i); return c < 128 ? B64_INDEX[c] : -1; };
  function b64decode(s) {
    if (typeof s !== 'string' || s.length % 4 !== 0) return null;
    const n = s.length;
    const pad = n === 0 || s.charCodeAt(n - 1) !== 61 ? 0 : s.charCodeAt(n - 2) === 61 ? 2 : 1;
    const out = new Uint8Array((n / 4) * 3 - pad);
    let o = 0;
    for (let i = 0; i < n; i += 4) {
      const c0 = sextet(s, i), c1 = sextet(s, i + 1);
      if (i + 4 < n || pad === 0) {
        const c2 = sextet(s, i + 2), c3 = sextet(s, i + 3);
        if ((c0 | c1 | c2 | c3) < 0) return null;
        out[o++] = (c0 << 2) | (c1 >> 4);
        out[o++] = ((c1 & 15) << 4) | (c2 >> 2);
        out[o++] = ((c2 & 3) << 6) | c3;
      } else if (pad === 1) {
        const c2 = sextet(s, i + 2);
        if ((c0 | c1 | c2) < 0 || (c2 & 3) !== 0) return null;
        out[o++] = (c0 << 2) | (c1 >> 4);
        out[o++] = ((c1 & 15) << 4) | (c2 >> 2);
      } else {
        if ((c0 | c1) < 0 || (c1 & 15) !== 0) return null;
        out[o++] = (c0 << 2) | (c1 >> 4);
      }
    }
    return out;
  }

  const binary = (bytes) => {
    let s = '';
    for (let i = 0; i < bytes.length; i += 8192) s += String.fromCharCode.apply(null, bytes.subarray(i, i + 8192));
    return s;
  };
  const b64encode = (bytes) => btoa(binary(bytes));

  const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');

  function equalBytes(a, b) {
    if (a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
    return true;
  }

  function concat(...parts) {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let o = 0;
    for (const p of parts) { out.set(p, o); o += p.length; }
    return out;
  }

  const B58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';
  function b58decode(s) {
    let n = 0n;
    for (const ch of s) {
      const v = B58.indexOf(ch);
      if (v < 0) return null;
      n = n * 58n + BigInt(v);
    }
    const bytes = [];
    while (n > 0n) { bytes.unshift(Number(n & 0xffn)); n >>= 8n; }
    for (const ch of s) { if (ch !== '1') break; bytes.unshift(0); }
    return new Uint8Array(bytes);
  }

  function b58encode(bytes) {
    let n = 0n;
    for (const b of bytes) n = (n << 8n) | BigInt(b);
    let out = '';
    while (n > 0n) { out = B58[Number(n % 58n)] + out; n /= 58n; }
    for (const b of bytes) { if (b !== 0) break; out = '1' + out; }
    return out;
  }

  // did:key of an Ed25519 key: `did:key:z` + base58btc(0xed 0x01 || 32-byte key) (DESIGN 3.1).
  // A bundle has few authors and many entries: decoded once each.
  const didCache = new Map();
  function publicFromDid(did) {
    if (typeof did !== 'string' || !did.startsWith('did:key:z') || did.length > 9 + 64) return null;
    if (didCache.has(did)) return didCache.get(did);
    const bytes = b58decode(did.slice(9));
    const key = bytes && bytes.length === 34 && bytes[0] === 0xed && bytes[1] === 0x01 ? bytes.slice(2) : null;
    didCache.set(did, key);
    return key;
  }

  const didFromPublic = (publicKey) => 'did:key:z' + b58encode(concat(new Uint8Array([0xed, 0x01]), publicKey));

  // ---- hashing (WebCrypto) ------------------------------------------------------------------

  const sha256 = async (bytes) => new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  const leafHash = (entryBytes) => sha256(concat(new Uint8Array([0]), entryBytes));
  // Interior nodes by content: the proofs of a learner's entries share most of their upper
  // nodes (and neighbouring leaves each other's), so a bundle of n items needs about 2n node
  // hashes instead of n log N. Buckets by a few bytes of both inputs; a hit is used only when
  // both inputs are equal byte for byte, so the memo can only return what SHA-256 would.
  let nodeMemo = new Map();
  const u32 = (b) => ((b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]) >>> 0;
  const nodeHash = (left, right) => {
    const bucket = u32(left) * 4294967296 + u32(right);
    const hit = nodeMemo.get(bucket);
    if (hit && equalBytes(hit.left, left) && equalBytes(hit.right, right)) return hit.hash;
    const buf = new Uint8Array(65);
    buf[0] = 1; buf.set(left, 1); buf.set(right, 33);
    const hash = sha256(buf);
    nodeMemo.set(bucket, { left, right, hash });
    return hash;
  };

  // RFC 9162 2.1.3.2: the root an inclusion proof of leaf `index` in a tree of `size` gives,
  // or null when the proof has the wrong length. Sizes are below 2^53, so arithmetic stays in
  // doubles (no 32-bit bit operations).
  async function rootFromInclusion(index, size, leaf, proof) {
    if (index >= size) return null;
    let fn = index, sn = size - 1, r = leaf;
    for (const p of proof) {
      if (sn === 0) return null;
      if (fn % 2 === 1 || fn === sn) {
        r = await nodeHash(p, r);
        if (fn % 2 === 0) {
          while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
        }
      } else {
        r = await nodeHash(r, p);
      }
      fn = Math.floor(fn / 2); sn = Math.floor(sn / 2);
    }
    return sn === 0 ? r : null;
  }

  // RFC 9162 2.1.4.2: whether `proof` shows that the tree of size `second` (root `secondRoot`)
  // extends the tree of size `first` (root `firstRoot`), as merkle::verify_consistency decides
  // (a first size of 0 is refused; equal sizes need equal roots and no hashes).
  async function verifyConsistency(first, second, firstRoot, secondRoot, proof) {
    if (!(first > 0) || first > second) return false;
    if (first === second) return proof.length === 0 && equalBytes(firstRoot, secondRoot);
    let odd = first;
    while (odd % 2 === 0) odd /= 2;
    const path = odd === 1 ? [firstRoot].concat(proof) : proof;
    if (path.length === 0) return false;
    let fn = first - 1, sn = second - 1;
    while (fn % 2 === 1) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
    let fr = path[0], sr = path[0];
    for (const c of path.slice(1)) {
      if (sn === 0) return false;
      if (fn % 2 === 1 || fn === sn) {
        fr = await nodeHash(c, fr);
        sr = await nodeHash(c, sr);
        while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
      } else {
        sr = await nodeHash(sr, c);
      }
      fn = Math.floor(fn / 2); sn = Math.floor(sn / 2);
    }
    return sn === 0 && equalBytes(fr, firstRoot) && equalBytes(sr, secondRoot);
  }

  // FORMAT.md 4, step 7: a second checkpoint note of the same ledger (older or newer) and the
  // consistency proof between the two sizes ({first, second, hashes}, as the ledger serves it).
  // The checked sizes, or undefined with the failure noted.
  async function checkConsistency(other, cp, key, origin, failures, demand, report) {
    const fail = (message) => { failures.push({ code: 'consistency_invalid', message }); };
    if (other.note === undefined || other.proof === undefined) {
      fail('a second checkpoint is checked only with the consistency proof between the two sizes: give both');
      return undefined;
    }
    let o;
    try {
      o = await verifyCheckpoint(other.note, key, origin);
    } catch (e) {
      if (!(e instanceof Failure)) throw e;
      // (too long is malformed for the bundle's own note; for this one the note is what is wrong)
      failures.push({ code: e.code === 'bundle_malformed' ? 'checkpoint_invalid' : e.code, message: 'the second checkpoint: ' + e.message });
      return undefined;
    }
    if (demand) report.cosignatures.second_checkpoint = await checkCosignatures(other.note, demand, 'the second checkpoint', failures);
    const [small, large] = o.treeSize <= cp.treeSize ? [o, cp] : [cp, o];
    const p = other.proof;
    if (p === null || typeof p !== 'object' || !Array.isArray(p.hashes)) {
      fail('the consistency proof is not an object {"first", "second", "hashes"}');
      return undefined;
    }
    if (p.first !== small.treeSize || p.second !== large.treeSize) {
      fail('the consistency proof is from ' + p.first + ' to ' + p.second + ', the checkpoints are of sizes ' + small.treeSize + ' and ' + large.treeSize);
      return undefined;
    }
    const hashes = p.hashes.map((h) => (typeof h === 'string' ? b64decode(h) : null));
    if (hashes.some((h) => !h || h.length !== 32)) {
      fail('the consistency proof is malformed: a hash is not base64 of 32 bytes');
      return undefined;
    }
    if (!(await verifyConsistency(small.treeSize, large.treeSize, small.root, large.root, hashes))) {
      fail('the tree of size ' + large.treeSize + ' does not extend the tree of size ' + small.treeSize + ' (a rewritten history?)');
      return undefined;
    }
    return { first: small.treeSize, second: large.treeSize };
  }

  // ---- strict Ed25519 over WebCrypto --------------------------------------------------------
  //
  // zachetka accepts a signature by ed25519-dalek's `verify_strict`: canonical S (S < L), A and
  // R not of small order, the cofactorless equation checked by comparing R with the encoding of
  // [S]B - [k]A. Chromium's WebCrypto (BoringSSL) checks S < L and the same cofactorless
  // encoding comparison, but accepts small-order A and R. So the page refuses those itself
  // before calling WebCrypto: a point has small order exactly when its y coordinate (mod p) is
  // one of the five below, whatever the encoding's sign bit or canonicity. A non-canonical
  // encoding of A (y >= p) is refused too, as verify_strict refuses every CCTV vector flagged
  // non_canonical_A. With these checks the
  // page accepts the set verify_strict accepts; `tests/web` runs every Wycheproof and CCTV
  // vector through this function and compares it with the Rust decision.
  const P = (1n << 255n) - 19n;
  const L = (1n << 252n) + 27742317777372353535851937790883648493n;
  const Y8 = 2707385501144840649318225287225658788936804267575313519463743609750303402022n;
  const SMALL_ORDER_Y = new Set([0n, 1n, P - 1n, Y8, P - Y8]);

  function littleEndian(bytes) {
    let n = 0n;
    for (let i = bytes.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(bytes[i]);
    return n;
  }
  function encode255(n) {
    const out = new Uint8Array(32);
    for (let i = 0; i < 32; i++) { out[i] = Number(n & 0xffn); n >>= 8n; }
    return out;
  }
  // The y values (below 2^255, sign bit cleared) whose points have small order: the five
  // canonical ones and the non-canonical encodings p and p+1 of 0 and 1.
  const SMALL_ORDER_ENCODINGS = [...SMALL_ORDER_Y, P, P + 1n].map(encode255);

  function hasSmallOrder(encoding) {
    outer: for (const e of SMALL_ORDER_ENCODINGS) {
      for (let i = 0; i < 31; i++) if (encoding[i] !== e[i]) continue outer;
      if ((encoding[31] & 0x7f) === e[31]) return true;
    }
    return false;
  }

  // y >= p for the 255 low bits: y is p + k for k < 19, i.e. bytes ed..ff ff.. 7f.
  function nonCanonicalY(encoding) {
    if ((encoding[31] & 0x7f) !== 0x7f) return false;
    for (let i = 30; i >= 1; i--) if (encoding[i] !== 0xff) return false;
    return encoding[0] >= 0xed;
  }

  // S < L, L = 2^252 + 27742317777372353535851937790883648493: most S are below 2^252.
  function canonicalS(s) {
    if (s[31] < 0x10) return true;
    if (s[31] > 0x10) return false;
    return littleEndian(s) < L;
  }

  const keyCache = new Map();
  async function importKey(publicKey) {
    const id = b64encode(publicKey);
    let key = keyCache.get(id);
    if (!key) {
      key = crypto.subtle.importKey('raw', publicKey, { name: 'Ed25519' }, false, ['verify']);
      keyCache.set(id, key);
    }
    return key;
  }

  // Why a signature is refused ('' when accepted): the strict rule, stated per reason.
  async function verifyStrict(publicKey, message, signature) {
    if (publicKey.length !== 32) return 'public key is not 32 bytes';
    if (signature.length !== 64) return 'signature is not 64 bytes';
    if (!canonicalS(signature.subarray(32))) return 'S is not canonical (S >= L)';
    if (nonCanonicalY(publicKey)) return 'public key encoding is not canonical (y >= p)';
    if (hasSmallOrder(publicKey)) return 'public key has small order';
    if (hasSmallOrder(signature.subarray(0, 32))) return 'R has small order';
    let key;
    try {
      key = await importKey(publicKey);
    } catch (e) {
      return 'public key is not a point on the curve';
    }
    try {
      return (await crypto.subtle.verify({ name: 'Ed25519' }, key, signature, message)) ? '' : 'signature does not verify';
    } catch (e) {
      return 'signature does not verify (' + e.name + ')';
    }
  }

  // ---- JSON: strict parse, JCS ---------------------------------------------------------------

  // JSON.parse keeps the last of two duplicate keys; a strict reader must refuse them (two
  // parsers keeping different duplicates would see different content). Runs on text JSON.parse
  // accepted, so it only tracks strings, object nesting and which strings are keys.
  function assertNoDuplicateKeys(text) {
    const stack = [];
    let i = 0;
    const n = text.length;
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c === 34) { // string: jump to its closing quote (one not preceded by an odd run of backslashes)
        let j = i, escaped = false;
        for (;;) {
          j = text.indexOf('"', j + 1);
          let k = j - 1;
          while (text.charCodeAt(k) === 92) k--;
          if (k < j - 1) escaped = true;
          if ((j - 1 - k) % 2 === 0) break;
        }
        const top = stack[stack.length - 1];
        if (top && top.expectKey) {
          const raw = text.slice(i, j + 1);
          const key = escaped ? JSON.parse(raw) : raw.slice(1, -1);
          if (top.keys.has(key)) fail('bundle_malformed', 'duplicate key ' + JSON.stringify(key));
          top.keys.add(key);
          top.expectKey = false;
        }
        i = j + 1;
        continue;
      }
      if (c === 123) stack.push({ keys: new Set(), expectKey: true, object: true });
      else if (c === 91) stack.push({ object: false });
      else if (c === 125 || c === 93) stack.pop();
      else if (c === 44) { const top = stack[stack.length - 1]; if (top && top.object) top.expectKey = true; }
      i++;
    }
  }

  // RFC 8785 canonical form for our entry profile: objects, arrays, strings, integers within
  // ±(2^53-1), null; `allowNull` false for events (integers and strings only, DESIGN 3.1).
  // JSON.stringify of a string is exactly RFC 8785's string form; keys sort by UTF-16 code
  // units, which is how JavaScript compares strings.
  function canonical(v, allowNull, depth = 0) {
    if (depth > 32) fail('entry_not_canonical', 'nesting deeper than 32 levels');
    if (v === null) {
      if (!allowNull) fail('entry_not_canonical', 'null in a signed event');
      return 'null';
    }
    switch (typeof v) {
      case 'string': return JSON.stringify(v);
      case 'number':
        if (!Number.isInteger(v)) fail('entry_not_canonical', 'number ' + v + ' is not an integer');
        if (Math.abs(v) > SAFE_MAX) fail('entry_not_canonical', 'integer ' + v + ' is outside ±(2^53-1)');
        return String(v);
      case 'boolean': fail('entry_not_canonical', 'a boolean is not allowed (integers and strings only)');
      // falls through (fail throws)
      case 'object':
        if (Array.isArray(v)) return '[' + v.map((x) => canonical(x, allowNull, depth + 1)).join(',') + ']';
        return '{' + Object.keys(v).sort().map((k) => JSON.stringify(k) + ':' + canonical(v[k], allowNull, depth + 1)).join(',') + '}';
      default: fail('entry_not_canonical', 'unsupported value');
    }
    return '';
  }

  // ---- time ------------------------------------------------------------------------------------

  // RFC 3339 `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` to nanoseconds since the epoch (BigInt),
  // the grammar of formats/src/time.rs; null when malformed.
  const INSTANT = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/;
  function parseInstant(s) {
    const m = typeof s === 'string' && INSTANT.exec(s);
    if (!m) return null;
    const [y, mo, d, h, mi, se] = m.slice(1, 7).map(Number);
    const dim = [31, (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0 ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if (mo < 1 || mo > 12 || d < 1 || d > dim[mo - 1] || h > 23 || mi > 59 || se > 59) return null;
    let offset = 0;
    if (m[8] !== 'Z') {
      const oh = Number(m[8].slice(1, 3)), om = Number(m[8].slice(4, 6));
      if (oh > 23 || om > 59) return null;
      offset = (m[8][0] === '-' ? -1 : 1) * (oh * 60 + om);
    }
    const days = Date.UTC(y, mo - 1, d) / 86400000;
    const secs = BigInt(days) * 86400n + BigInt(h * 3600 + mi * 60 + se) - BigInt(offset * 60);
    return secs * 1000000000n + BigInt((m[7] || '').padEnd(9, '0') || '0');
  }

  // ---- the note and its verifier key (C2SP signed-note, DESIGN 3.3) -----------------------

  async function parseVerifierKey(vkey) {
    // The name holds no '+'; the base64 key may.
    const m = typeof vkey === 'string' ? /^([^+]+)\+([^+]*)\+(.*)$/.exec(vkey) : null;
    if (!m) fail('checkpoint_invalid', 'verifier key is not <name>+<hex id>+<base64 key>');
    const [, name, idHex, keyB64] = m;
    const keyBytes = b64decode(keyB64);
    if (!/^[0-9a-f]{8}$/.test(idHex) || !keyBytes || keyBytes.length !== 33 || keyBytes[0] !== 1 || !name) {
      fail('checkpoint_invalid', 'verifier key is malformed (want <name>+<8 hex digits>+<base64 of 0x01 || 32-byte key>)');
    }
    const id = (await sha256(concat(enc.encode(name), new Uint8Array([0x0a]), keyBytes))).slice(0, 4);
    if (hex(id) !== idHex) fail('checkpoint_invalid', 'verifier key id ' + idHex + ' is not the hash of its name and key (' + hex(id) + ')');
    return { name, id, publicKey: keyBytes.slice(1), text: vkey };
  }

  // Verifies the note's signature by `key` and parses its checkpoint body.
  async function verifyCheckpoint(note, key, origin) {
    if (enc.encode(note).length > NOTE_BYTES_MAX) fail('bundle_malformed', 'checkpoint note is longer than 16 KiB');
    const split = note.indexOf('\n\n');
    if (split < 0 || !note.endsWith('\n')) fail('checkpoint_invalid', 'checkpoint is not a signed note (no blank line before signatures)');
    const text = note.slice(0, split + 1);
    const sigLines = note.slice(split + 2, -1).split('\n');
    let found = false, verified = false, why = '';
    for (const line of sigLines) {
      const m = /^\u2014 (\S+) (\S+)$/.exec(line);
      if (!m) fail('checkpoint_invalid', 'malformed signature line ' + JSON.stringify(line));
      if (m[1] !== key.name) continue; // a witness cosignature: kept, not required (DESIGN 3.6)
      const sig = b64decode(m[2]);
      if (!sig || sig.length < 4 || !equalBytes(sig.slice(0, 4), key.id)) continue;
      found = true;
      if (sig.length !== 68) { why = 'signature is not 64 bytes'; continue; }
      why = await verifyStrict(key.publicKey, enc.encode(text), sig.slice(4));
      if (!why) { verified = true; break; }
    }
    if (!found) fail('checkpoint_invalid', 'no signature by ' + key.name + ' with key id ' + hex(key.id) + ' (is this the ledger you trust?)');
    if (!verified) fail('checkpoint_invalid', 'checkpoint signature by ' + key.name + ': ' + why);
    const lines = text.slice(0, -1).split('\n');
    if (lines.length < 3) fail('checkpoint_invalid', 'checkpoint body has fewer than three lines');
    if (lines[0] !== origin) fail('checkpoint_invalid', 'checkpoint origin ' + JSON.stringify(lines[0]) + ' is not the bundle origin ' + JSON.stringify(origin));
    if (!/^(0|[1-9]\d{0,15})$/.test(lines[1]) || Number(lines[1]) > SAFE_MAX) fail('checkpoint_invalid', 'tree size is not a decimal integer');
    const root = b64decode(lines[2]);
    if (!root || root.length !== 32) fail('checkpoint_invalid', 'root hash is not base64 of 32 bytes');
    return { treeSize: Number(lines[1]), root };
  }

  // ---- witnesses' cosignatures (C2SP tlog-cosignature, Ed25519; DESIGN 3.6) -------------------

  // A witness verifier key <name>+<hex key id>+<base64(0x04 || 32-byte key)>, checked as
  // zachetka_formats::cosignature::WitnessKey::parse checks it; a bad one is the caller's error
  // (`bad_query`, as POST /v1/verify refuses it).
  async function parseWitnessKey(vkey) {
    const bad = (why) => fail('bad_query', 'witnesses: ' + JSON.stringify(vkey) + ' is no witness verifier key: ' + why);
    const parts = vkey.split('+');
    if (parts.length < 3) bad('a witness key is <name>+<hex key id>+<base64 key>, this one has ' + parts.length + ' part(s)');
    const [name, idHex] = parts;
    const keyB64 = parts.slice(2).join('+');
    if (!name || /\s/.test(name)) bad('the witness name ' + JSON.stringify(name) + ' is empty or holds a space or a +');
    if (!/^[0-9a-fA-F]{8}$/.test(idHex)) bad('the key id ' + JSON.stringify(idHex) + ' is not 8 hex digits');
    const keyBytes = b64decode(keyB64);
    if (!keyBytes) bad('the key is not standard padded base64');
    if (keyBytes.length < 1) bad('the key is 0 bytes after its type byte, an ed25519 key is 32');
    if (keyBytes[0] !== 4) bad('the key is of signature type 0x' + keyBytes[0].toString(16).padStart(2, '0') + ', an ed25519 cosignature key is of type 0x04');
    if (keyBytes.length !== 33) bad('the key is ' + (keyBytes.length - 1) + ' bytes after its type byte, an ed25519 key is 32');
    const publicKey = keyBytes.slice(1);
    if (hasSmallOrder(publicKey)) bad('the key is no usable ed25519 public key');
    try { await importKey(publicKey); } catch (e) { bad('the key is no usable ed25519 public key'); }
    const id = (await sha256(concat(enc.encode(name), new Uint8Array([0x0a, 0x04]), publicKey))).slice(0, 4);
    if (hex(id) !== idHex.toLowerCase()) bad('the key id ' + idHex.toLowerCase() + ' is not the key\'s, which is ' + hex(id));
    return { name, id, idHex: hex(id), publicKey };
  }

  // The witnesses given (one per line or separated by blanks), each once, and how many must have
  // cosigned (blank: all of them).
  async function witnessDemand(texts, required) {
    const witnesses = [];
    for (const v of texts) {
      const w = await parseWitnessKey(v);
      if (!witnesses.some((o) => o.name === w.name && o.idHex === w.idHex && equalBytes(o.publicKey, w.publicKey))) witnesses.push(w);
    }
    const k = required === undefined || required === null || required === '' ? witnesses.length : Number(required);
    if (!Number.isInteger(k) || k < 0) fail('bad_query', 'witnesses_required ' + JSON.stringify(required) + ' is not a count');
    if (k > witnesses.length) fail('bad_query', 'witnesses_required ' + k + ' is more than the ' + witnesses.length + ' distinct witnesses given');
    return { witnesses, required: k };
  }

  // FORMAT.md 4, "Witnesses", as record/src/verify.rs `check_cosignatures`: every signature line
  // of a verified note that names a given witness (name and key id) is a timestamp and an
  // Ed25519 signature over "cosignature/v1\ntime <t>\n" || body, by the strict rule
  // (`cosignature_invalid`); at least `required` distinct witnesses cosigned
  // (`cosignatures_insufficient`). The witnesses whose cosignature verified, in the order given.
  async function checkCosignatures(note, demand, what, failures) {
    const split = note.indexOf('\n\n');
    const body = note.slice(0, split + 1);
    const valid = new Map();
    for (const line of note.slice(split + 2, -1).split('\n')) {
      const m = /^\u2014 (\S+) (\S+)$/.exec(line);
      const sig = m && b64decode(m[2]);
      if (!sig || sig.length < 5) continue;
      const idHex = hex(sig.slice(0, 4));
      for (const w of demand.witnesses) {
        if (w.name !== m[1] || w.idHex !== idHex) continue;
        const raw = sig.slice(4);
        let why = '', time = null;
        if (raw.length !== 72) {
          why = 'the cosignature is ' + raw.length + ' bytes after its key id, a timestamp and a signature are 72';
        } else {
          time = 0n;
          for (let i = 0; i < 8; i++) time = (time << 8n) | BigInt(raw[i]);
          if (time > (1n << 63n) - 1n) why = 'its timestamp ' + time + ' exceeds 2^63-1';
          else {
            const message = concat(enc.encode('cosignature/v1\ntime ' + time + '\n'), enc.encode(body));
            if (await verifyStrict(w.publicKey, message, raw.slice(8))) why = 'the signature over the checkpoint at time ' + time + ' does not verify';
          }
        }
        if (why) failures.push({ code: 'cosignature_invalid', message: 'the cosignature of witness ' + w.name + ' (' + w.idHex + ') on ' + what + ' does not verify: ' + why });
        else if (!valid.has(w)) valid.set(w, Number(time));
      }
    }
    const cosigned = demand.witnesses.filter((w) => valid.has(w)).map((w) => ({ witness: w.name, key_id: w.idHex, timestamp: valid.get(w) }));
    if (cosigned.length < demand.required) {
      const names = cosigned.map((c) => c.witness);
      failures.push({ code: 'cosignatures_insufficient', message: what + ' carries valid cosignatures of ' + cosigned.length + ' of the ' + demand.witnesses.length +
        ' witnesses given (' + (names.length ? names.join(', ') : 'none') + '), ' + demand.required + ' required' });
    }
    return cosigned;
  }

  // ---- shape (FORMAT.md sections 1-2) ----------------------------------------------------------

  const TOP = ['format', 'version', 'origin', 'verifier_key', 'learner', 'checkpoint', 'disclosure', 'entries', 'authority', 'completeness'];
  const TOP_REQUIRED = TOP.filter((k) => k !== 'completeness');
  const ENTRY_MEMBERS = ['event', 'recorded_at', 'seq', 'sig', 'stream_prev', 'stream_version'];

  const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
  const isIndex = (v) => Number.isInteger(v) && v >= 0 && v <= SAFE_MAX;

  function checkMembers(obj, allowed, required, where) {
    if (!isObject(obj)) fail('bundle_malformed', where + ' is not an object');
    for (const k of Object.keys(obj)) if (!allowed.includes(k)) fail('bundle_malformed', where + ' has an unknown member ' + JSON.stringify(k));
    for (const k of required) if (!(k in obj)) fail('bundle_malformed', where + ' has no ' + JSON.stringify(k));
  }

  function parseItem(item, where) {
    const kind = isObject(item) && 'entry' in item ? 'entry' : 'leaf_hash';
    checkMembers(item, ['seq', 'proof', kind], ['seq', 'proof', kind], where);
    if (!isIndex(item.seq)) fail('bundle_malformed', where + ': seq is not an integer within 0..2^53-1');
    const at = where + ' (seq ' + item.seq + ')';
    if (!Array.isArray(item.proof) || item.proof.length > PROOF_HASHES_MAX) fail('bundle_malformed', at + ': proof is not an array of at most 64 hashes');
    const proof = item.proof.map((h) => {
      const b = b64decode(h);
      if (!b || b.length !== 32) fail('bundle_malformed', at + ': a proof hash is not base64 of 32 bytes');
      return b;
    });
    if (kind === 'entry') {
      const bytes = b64decode(item.entry);
      if (!bytes) fail('bundle_malformed', at + ': entry is not standard padded base64');
      if (bytes.length > ENTRY_BYTES_MAX) fail('bundle_malformed', at + ': entry is longer than 65,535 bytes');
      return { seq: item.seq, proof, bytes, disclosed: true };
    }
    const leaf = b64decode(item.leaf_hash);
    if (!leaf || leaf.length !== 32) fail('bundle_malformed', at + ': leaf_hash is not base64 of 32 bytes');
    return { seq: item.seq, proof, leaf, disclosed: false };
  }

  function parseBundle(text) {
    if (text.length > BUNDLE_BYTES_MAX) fail('bundle_too_large', 'the file is larger than 64 MiB');
    let b;
    try {
      b = JSON.parse(text);
    } catch (e) {
      fail('bundle_malformed', 'not JSON: ' + e.message);
    }
    assertNoDuplicateKeys(text);
    checkMembers(b, TOP, TOP_REQUIRED, 'the bundle');
    if (b.format !== FORMAT || b.version !== 1) {
      fail('bundle_format_unsupported', 'format ' + JSON.stringify(b.format) + ' version ' + JSON.stringify(b.version) + ' (this page reads zachetka-record version 1)');
    }
    for (const k of ['origin', 'verifier_key', 'learner', 'checkpoint']) {
      if (typeof b[k] !== 'string') fail('bundle_malformed', k + ' is not a string');
    }
    checkMembers(b.disclosure, ['only'], ['only'], 'disclosure');
    if (b.disclosure.only !== null && !(Array.isArray(b.disclosure.only) && b.disclosure.only.every((c) => typeof c === 'string'))) {
      fail('bundle_malformed', 'disclosure.only is neither null nor an array of strings');
    }
    if (!Array.isArray(b.entries) || !Array.isArray(b.authority)) fail('bundle_malformed', 'entries and authority are arrays');
    if (b.entries.length + b.authority.length > ITEMS_MAX) fail('bundle_too_many_entries', 'more than 200,000 items');
    if (b.completeness !== undefined && b.completeness !== null && !isObject(b.completeness)) fail('bundle_malformed', 'completeness is neither null nor an object');
    const completeness = b.completeness == null ? null : parseCompleteness(b.completeness);
    const entries = b.entries.map((it, i) => parseItem(it, 'entries[' + i + ']'));
    const authority = b.authority.map((it, i) => parseItem(it, 'authority[' + i + ']'));
    const seen = new Set();
    for (const [name, list] of [['entries', entries], ['authority', authority]]) {
      for (let i = 0; i < list.length; i++) {
        if (i > 0 && list[i].seq <= list[i - 1].seq) fail('entries_out_of_order', name + ': seq ' + list[i].seq + ' does not follow ' + list[i - 1].seq, list[i].seq);
        if (seen.has(list[i].seq)) fail('entries_out_of_order', 'seq ' + list[i].seq + ' is in both entries and authority', list[i].seq);
        seen.add(list[i].seq);
      }
    }
    for (const it of authority) if (!it.disclosed) fail('bundle_malformed', 'authority item seq ' + it.seq + ' is withheld (authority items are always disclosed)');
    return { b, entries, authority, completeness };
  }

  // The completeness member's shape (FORMAT.md section 6); the map proof is read when checked,
  // so that a malformed one is map_proof_malformed rather than an unreadable bundle.
  const COMPLETENESS_MEMBERS = ['commitment', 'up_to', 'value', 'map_proof'];
  function parseCompleteness(c) {
    checkMembers(c, COMPLETENESS_MEMBERS, COMPLETENESS_MEMBERS, 'completeness');
    if (!isIndex(c.up_to)) fail('bundle_malformed', 'completeness.up_to is not an integer within 0..2^53-1');
    checkMembers(c.value, ['count', 'digest'], ['count', 'digest'], 'completeness.value');
    if (!isIndex(c.value.count) || typeof c.value.digest !== 'string') fail('bundle_malformed', 'completeness.value is not {"count": <integer>, "digest": <string>}');
    return { commitment: parseItem(c.commitment, 'completeness.commitment'), up_to: c.up_to, value: c.value, map_proof: c.map_proof };
  }

  // Whether `v` is in the entries' profile (strings, integers within ±(2^53-1), null where
  // allowed) with every object's keys ascending by UTF-16 code units and none an array index
  // (which JSON.parse would move first). For such a value JSON.stringify writes exactly its
  // RFC 8785 form, so `canonical` need not rebuild it; anything else takes `canonical`'s path.
  const ARRAY_INDEX = /^(0|[1-9][0-9]*)$/;
  function sortedProfile(v, allowNull, depth) {
    if (v === null) return allowNull;
    switch (typeof v) {
      case 'string': return true;
      case 'number': return Number.isInteger(v) && Math.abs(v) <= SAFE_MAX && !Object.is(v, -0);
      case 'object': {
        if (depth >= 32) return false;
        if (Array.isArray(v)) return v.every((x) => sortedProfile(x, allowNull, depth + 1));
        let prev = null;
        for (const k of Object.keys(v)) {
          if ((prev !== null && !(prev < k)) || ARRAY_INDEX.test(k) || !sortedProfile(v[k], allowNull, depth + 1)) return false;
          prev = k;
        }
        return true;
      }
      default: return false;
    }
  }

  const EVENT_END = enc.encode(',"recorded_at":"');
  // The byte offset where the event's canonical bytes end: the last `,"recorded_at":"` (the
  // members after it hold no such text).
  function eventEnd(bytes) {
    outer: for (let i = bytes.length - EVENT_END.length; i >= 9; i--) {
      for (let j = 0; j < EVENT_END.length; j++) if (bytes[i + j] !== EVENT_END[j]) continue outer;
      return i;
    }
    return -1;
  }

  // Why an item's author signature fails the strict rule, or undefined when it verifies.
  async function signatureProblem(it) {
    const ev = it.event;
    const pk = publicFromDid(ev.author);
    const sig = b64decode(it.entry.sig);
    if (!pk) return 'author ' + ev.author + ' is not a did:key Ed25519 identifier';
    if (!sig || sig.length !== 64) return 'sig is not base64 of 64 bytes';
    return await verifyStrict(pk, signedMessage(it), sig);
  }

    // What the author signed: `zachetka/event/v1\n` || JCS(event), the event's bytes taken from
    // the (canonical) entry bytes.
    const EVENT_DOMAIN_BYTES = enc.encode(EVENT_DOMAIN);
  function signedMessage(item) {
    const end = eventEnd(item.bytes);
    if (end < 0) return enc.encode(EVENT_DOMAIN + item.eventText);
    const out = new Uint8Array(EVENT_DOMAIN_BYTES.length + end - 9);
    out.set(EVENT_DOMAIN_BYTES, 0);
    out.set(item.bytes.subarray(9, end), EVENT_DOMAIN_BYTES.length);
    return out;
  }

  // Parses a disclosed entry's bytes: UTF-8 JSON, exactly the six members, already canonical.
  function parseEntry(item) {
    let text, e;
    try {
      text = utf8.decode(item.bytes);
      e = JSON.parse(text);
    } catch (err) {
      fail('entry_not_canonical', 'entry bytes are not UTF-8 JSON', item.seq);
    }
    const keys = isObject(e) ? Object.keys(e) : [];
    const fast = keys.length === 6 && keys.every((k, i) => k === ENTRY_MEMBERS[i]) && isObject(e.event) &&
      sortedProfile(e.event, false, 1) && ENTRY_MEMBERS.slice(1).every((k) => sortedProfile(e[k], true, 1)) &&
      JSON.stringify(e) === text;
    if (fast) item.eventText = text.slice(9, text.lastIndexOf(',"recorded_at":"'));
    else try {
      if (!isObject(e) || Object.keys(e).length !== 6 || !ENTRY_MEMBERS.every((k) => k in e)) {
        fail('entry_not_canonical', 'an entry has exactly the members ' + ENTRY_MEMBERS.join(', '));
      }
      if (!isObject(e.event)) fail('entry_not_canonical', 'event is not an object');
      // The members sort as event, recorded_at, seq, sig, stream_prev, stream_version; the
      // event's canonical form (integers and strings only) is also what its author signed.
      item.eventText = canonical(e.event, false);
      const rest = ENTRY_MEMBERS.slice(1).map((k) => ',' + JSON.stringify(k) + ':' + canonical(e[k], true)).join('');
      if ('{"event":' + item.eventText + rest + '}' !== text) fail('entry_not_canonical', 'entry bytes are not their RFC 8785 canonical form');
    } catch (err) {
      if (err instanceof Failure) { err.seq = item.seq; throw err; }
      throw err;
    }
    if (e.seq !== item.seq) fail('entry_seq_mismatch', 'entry says seq ' + e.seq + ', the item ' + item.seq, item.seq);
    const ev = e.event;
    for (const k of ['ledger', 'stream', 'type', 'id', 'occurred_at', 'author']) {
      if (typeof ev[k] !== 'string') fail('entry_not_canonical', 'event.' + k + ' is not a string', item.seq);
    }
    if (!isObject(ev.data)) fail('entry_not_canonical', 'event.data is not an object', item.seq);
    if (!isIndex(e.stream_version) || (e.stream_prev !== null && typeof e.stream_prev !== 'string') || typeof e.sig !== 'string') {
      fail('entry_not_canonical', 'stream_version, stream_prev or sig has the wrong type', item.seq);
    }
    item.entry = e;
    item.event = ev;
    return e;
  }

  // ---- which entries concern the learner (projections/src/models/concerns.rs) -----------------

  function streamId(stream, prefix) {
    if (!stream.startsWith(prefix)) return null;
    const id = stream.slice(prefix.length);
    return id && !id.includes('/') && id.length <= 128 ? id : null;
  }

  const QUEUE_BY_APPLICATION = ['queue.benefit_claimed', 'queue.benefit_confirmed', 'queue.benefit_rejected', 'queue.sibling_linked',
    'queue.application_withdrawn', 'queue.place_offered', 'queue.admission_refused', 'queue.enrolled', 'queue.transferred'];

  class Concerns {
    constructor() { this.queueApps = new Map(); this.queueOffers = new Map(); this.firstGradeApps = new Map(); }
    static slot(map, key) { if (!map.has(key)) map.set(key, new Map()); return map.get(key); }
    apply(ev) {
      const d = ev.data;
      const territory = streamId(ev.stream, 'queue/kg/');
      const school = streamId(ev.stream, 'institution/');
      if (ev.type === 'queue.application_submitted' && territory !== null) {
        const apps = Concerns.slot(this.queueApps, territory);
        if (!apps.has(d.application_id)) apps.set(d.application_id, d.learner);
      } else if (ev.type === 'queue.place_offered' && territory !== null) {
        const learner = this.queueApps.get(territory)?.get(d.application_id);
        if (learner !== undefined) {
          const offers = Concerns.slot(this.queueOffers, territory);
          if (!offers.has(d.offer_id)) offers.set(d.offer_id, learner);
        }
      } else if (ev.type === 'enrolment.application_submitted' && school !== null) {
        const apps = Concerns.slot(this.firstGradeApps, school);
        if (!apps.has(d.application_id)) apps.set(d.application_id, d.learner);
      }
    }
    learners(ev) {
      const own = streamId(ev.stream, 'learner/');
      if (own !== null) return [own];
      const d = ev.data;
      const territory = streamId(ev.stream, 'queue/kg/');
      const school = streamId(ev.stream, 'institution/');
      const one = (v) => (v === undefined ? [] : [v]);
      if (ev.type === 'queue.application_submitted') return territory !== null ? [d.learner] : [];
      if (QUEUE_BY_APPLICATION.includes(ev.type)) return territory !== null ? one(this.queueApps.get(territory)?.get(d.application_id)) : [];
      if (ev.type === 'queue.offer_accepted' || ev.type === 'queue.offer_refused') {
        return territory !== null ? one(this.queueOffers.get(territory)?.get(d.offer_id)) : [];
      }
      if (ev.type === 'enrolment.application_submitted') return school !== null ? [d.learner] : [];
      if (ev.type === 'enrolment.order_issued' && school !== null) {
        const apps = this.firstGradeApps.get(school);
        return apps && Array.isArray(d.applications) ? d.applications.map((a) => apps.get(a)).filter((l) => l !== undefined) : [];
      }
      return [];
    }
  }

  // ---- authority: the registry replayed, the grant check (FORMAT.md 4.6) ----------------------

  class Registry {
    constructor(authority) {
      this.authority = authority;
      this.grants = new Map([[authority, { roles: ['authority'], scope: {}, validFrom: null, validUntil: null, revokedAt: null, holder: 'authority' }]]);
      // Institutions registered so far: a grant scoped to another is refused, as the rules
      // refuse it (rules/src/authority.rs `check_grant`).
      this.institutions = new Set();
    }
    // The key's grant in force at `at` (nanoseconds), or a refusal code and message
    // (rules/src/authority.rs `valid_grant`).
    inForce(key, at) {
      const g = this.grants.get(key);
      if (!g) return { code: 'key_unknown', message: 'key ' + key + ' was never granted' };
      if (g.revokedAt !== null && g.revokedAt <= at) return { code: 'key_revoked', message: 'key ' + key + ' was revoked before this event' };
      if (g.validFrom !== null && at < g.validFrom) return { code: 'key_not_yet_valid', message: 'key ' + key + ' is not valid yet at this time' };
      if (g.validUntil !== null && at >= g.validUntil) return { code: 'key_expired', message: 'key ' + key + ' expired before this event' };
      return { grant: g };
    }
    // The author's right to write this registry event (the rights part of the registry rules):
    // the authority for everything; an institution admin for grants within its institution and
    // revocations and rotations of keys of its institution; a key for its own revocation or
    // rotation. Returns a refusal, or null.
    refuse(ev, at) {
      const d0 = isObject(ev.data) ? ev.data : {};
      // The key a revocation or rotation names must have been granted (checked first, as the
      // rules check it).
      if (ev.type === 'keys.revoked' && !this.grants.has(d0.key)) return { code: 'revoked_key_unknown', message: 'key ' + d0.key + ' was never granted' };
      if (ev.type === 'keys.rotated' && !this.grants.has(d0.old_key)) return { code: 'rotated_key_unknown', message: 'key ' + d0.old_key + ' was never granted' };
      const held = this.inForce(ev.author, at);
      if (held.code) return held;
      const g = held.grant, d = ev.data;
      const isAuthority = ev.author === this.authority;
      const adminOf = (inst) => g.roles.includes('institution_admin') && g.scope.institution !== undefined && g.scope.institution === inst;
      const deny = { code: 'not_authorized', message: 'key ' + ev.author + ' may not write ' + ev.type + ' here' };
      switch (ev.type) {
        case 'registry.institution_registered':
          return isAuthority ? null : deny;
        case 'keys.granted':
          if (isObject(d.scope) && typeof d.scope.institution === 'string' && !this.institutions.has(d.scope.institution)) {
            return { code: 'institution_unknown', message: 'institution ' + d.scope.institution + ' is not registered' };
          }
          if (isAuthority) return null;
          return isObject(d.scope) && adminOf(d.scope.institution) ? null : deny;
        case 'keys.revoked': {
          const target = this.grants.get(d.key);
          if (target.roles.includes('authority')) return { code: 'not_authorized', message: 'the authority key is rotated (keys.rotated), never revoked' };
          if (!(isAuthority || d.key === ev.author || adminOf(target.scope.institution))) return deny;
          return target.revokedAt === null ? null : { code: 'key_already_revoked', message: 'key ' + d.key + ' is already revoked' };
        }
        case 'keys.rotated': {
          const target = this.grants.get(d.old_key);
          if (d.old_key === this.authority) {
            if (ev.author !== this.authority) return deny;
          } else if (!(isAuthority || d.old_key === ev.author || adminOf(target.scope.institution))) {
            return deny;
          }
          return target.revokedAt === null ? null : { code: 'key_already_revoked', message: 'key ' + d.old_key + ' is already revoked' };
        }
        default:
          return { code: 'authority_entry_invalid', message: ev.type + ' is not a registry event' };
      }
    }
    apply(ev, at) {
      const d = ev.data;
      if (ev.type === 'registry.institution_registered' && typeof d.institution === 'string') {
        this.institutions.add(d.institution);
      } else if (ev.type === 'keys.granted') {
        const from = parseInstant(d.valid_from);
        const until = d.valid_until === undefined ? null : parseInstant(d.valid_until);
        if (from === null || (d.valid_until !== undefined && until === null) || this.grants.has(d.key)) return;
        this.grants.set(d.key, { roles: Array.isArray(d.roles) ? d.roles : [], scope: isObject(d.scope) ? d.scope : {}, validFrom: from, validUntil: until, revokedAt: null, holder: d.holder });
      } else if (ev.type === 'keys.revoked') {
        const when = (d.effective_at !== undefined && parseInstant(d.effective_at)) || at;
        const g = this.grants.get(d.key);
        if (g && g.revokedAt === null) g.revokedAt = when;
      } else if (ev.type === 'keys.rotated') {
        const when = (d.effective_at !== undefined && parseInstant(d.effective_at)) || at;
        const old = this.grants.get(d.old_key);
        if (!old) return;
        if (old.revokedAt === null) old.revokedAt = when;
        if (!this.grants.has(d.new_key)) {
          this.grants.set(d.new_key, { ...old, revokedAt: null, validFrom: old.validFrom === null || old.validFrom < when ? when : old.validFrom });
        }
        if (d.old_key === this.authority) this.authority = d.new_key;
      }
    }
  }

  // ---- the record, for people (FORMAT.md section 5's `record`) --------------------------------

  const RESULT_TYPES = ['journal.term_grade_set', 'journal.year_grade_set', 'journal.intermediate_attestation_recorded',
    'journal.final_attestation_recorded', 'journal.promoted', 'college.course_result_recorded', 'college.exam_recorded'];
  const DOCUMENT_TYPES = ['journal.certificate_issued', 'additional.certificate_issued', 'college.diploma_issued'];
  // The types a journal.record_corrected may name (the rules' CORRECTABLE).
  const CORRECTABLE = ['journal.grade_recorded', 'journal.attendance_marked', 'journal.term_grade_set',
    'journal.year_grade_set', 'journal.intermediate_attestation_recorded', 'journal.retake_recorded',
    'journal.record_corrected', 'college.course_result_recorded', 'college.exam_recorded'];

  // `withheld`: the seqs of the withheld items of `entries` (a revocation may be among them).
  function summarize(items, withheld) {
    const institutions = new Map(), results = [], documents = [], achievements = new Map(), other = new Map();
    const revoked = new Set();
    // Event ids a correction may name -> the result they stand for (a correction may correct a
    // correction), and each result's disclosed corrections.
    const correctable = new Map(), corrections = new Map();
    for (const it of items) {
      const ev = it.event, d = ev.data;
      const year = Number(ev.occurred_at.slice(0, 4));
      for (const k of ['institution', 'to_institution', 'from_institution']) {
        if (typeof d[k] === 'string') {
          if (!institutions.has(d[k])) institutions.set(d[k], new Set());
          institutions.get(d[k]).add(typeof d.academic_year === 'number' ? d.academic_year : year);
        }
      }
      if (RESULT_TYPES.includes(ev.type)) {
        const r = { seq: it.seq, type: ev.type, institution: d.institution, subject: d.subject ?? d.course ?? d.exam ?? '', mark: d.mark ?? d.score ?? d.to_class ?? '', year: d.academic_year ?? d.term ?? year };
        if (CORRECTABLE.includes(ev.type)) {
          correctable.set(ev.id, r);
          corrections.set(r, []);
        }
        results.push(r);
      } else if (ev.type === 'journal.record_corrected') {
        const r = correctable.get(d.corrected_event_id);
        if (r) {
          const c = { seq: it.seq };
          for (const k of ['mark', 'scale', 'code', 'reason']) if (d[k] !== undefined && d[k] !== null) c[k] = d[k];
          corrections.get(r).push(c);
          correctable.set(ev.id, r);
        }
      } else if (DOCUMENT_TYPES.includes(ev.type)) {
        documents.push({ seq: it.seq, type: ev.type, institution: d.institution, level: d.level ?? '', number: d.number ?? d.certificate_id ?? '', issued_on: d.issued_on ?? String(d.year ?? '') });
      } else if (ev.type === 'portfolio.achievement_attested') {
        achievements.set(d.achievement_id, { seq: it.seq, achievement_id: d.achievement_id, kind: d.kind, level: d.level, result: d.result, date: d.date, revoked: false });
      } else if (ev.type === 'portfolio.achievement_revoked') {
        revoked.add(d.achievement_id);
      } else {
        other.set(ev.type, (other.get(ev.type) || 0) + 1);
      }
    }
    // FORMAT.md section 5: a result is corrected when a disclosed correction names it; unknown
    // (null, with the reason) when, with none, withheld entries follow it, since one may be it.
    for (const [r, list] of corrections) {
      const latest = list.length ? list[list.length - 1].seq : r.seq;
      const later = withheld.filter((w) => w > latest).length;
      r.corrected = list.length ? true : later > 0 ? null : false;
      if (later > 0) {
        const after = list.length ? 'its latest correction (seq ' + latest + ')' : 'it';
        r.corrected_unknown = later === 1 ? '1 withheld entry of the learner comes after ' + after + '; it may correct it'
          : later + ' withheld entries of the learner come after ' + after + '; one of them may correct it';
      }
      if (list.length) r.corrections = list;
    }
    // FORMAT.md section 5: revoked when a disclosed revocation names it; else unknown (null,
    // with the reason) while withheld entries follow it, since one of them may be its revocation.
    for (const a of achievements.values()) {
      const later = withheld.filter((w) => w > a.seq).length;
      if (revoked.has(a.achievement_id)) a.revoked = true;
      else if (later > 0) {
        a.revoked = null;
        a.revoked_unknown = later === 1 ? '1 withheld entry of the learner comes after it; it may revoke it'
          : later + ' withheld entries of the learner come after it; one of them may revoke it';
      }
    }
    return {
      institutions: Array.from(institutions, ([institution, years]) => ({ institution, years: Array.from(years).sort() })),
      results, documents, achievements: Array.from(achievements.values()),
      other: Array.from(other, ([type, count]) => ({ type, count })).sort((a, b) => (a.type < b.type ? -1 : 1)),
    };
  }

  // ---- completeness (FORMAT.md section 6; the commitment format of README) ------------------

  const MAX_UNCOVERED_DEFAULT = 200000;
  const COMMITMENT_TYPE = 'ledger.completeness_committed';
  const COMMITMENT_STREAM = 'completeness';
  const CHAIN_DOMAIN = enc.encode('zachetka/completeness/v1\n');
  const MAP_PROOF_HASHES_MAX = 64;
  const ZERO32 = new Uint8Array(32);
  // SHA-256 of nothing: the root of the empty map.
  const EMPTY_ROOT = b64decode('47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=');

  class MapProofError extends Error {
    constructor(code, message) { super(message); this.code = code; }
  }
  const malformed = (m) => { throw new MapProofError('map_proof_malformed', m); };
  const invalid = (m) => { throw new MapProofError('map_proof_invalid', m); };

  function compareBytes(a, b) {
    for (let i = 0; i < a.length && i < b.length; i++) if (a[i] !== b[i]) return a[i] - b[i];
    return a.length - b.length;
  }

  // The map leaf hash: SHA-256(0x00 || key hash || count as 8 bytes big-endian || digest).
  function mapLeafHash(keyHash, count, digest) {
    const data = new Uint8Array(73);
    data.set(keyHash, 1);
    let n = BigInt(count);
    for (let i = 40; i >= 33; i--) { data[i] = Number(n & 0xffn); n >>= 8n; }
    data.set(digest, 41);
    return sha256(data);
  }

  const hash32 = (s) => {
    const b = b64decode(s);
    if (!b || b.length !== 32) malformed('a hash is not 32 bytes of standard base64: ' + JSON.stringify(String(s).slice(0, 60)));
    return b;
  };

  async function checkPath(mapRoot, mapSize, leafIndex, leaf, hashes) {
    if (hashes.length > MAP_PROOF_HASHES_MAX) malformed('more than 64 hashes in one path');
    const path = hashes.map(hash32);
    const root = await rootFromInclusion(leafIndex, mapSize, leaf, path);
    if (!root || !equalBytes(root, mapRoot)) invalid('the inclusion proof of leaf ' + leafIndex + ' does not verify against the map root');
  }

  // The map proof's JSON shape, as the Rust verifier reads it into `MapProof` (unknown members
  // refused; `present` and `absent` optional or null; integers within 0..2^53-1).
  function shapeOf(proof) {
    const obj = (v, allowed, required, where) => {
      if (!isObject(v) || Object.keys(v).some((k) => !allowed.includes(k)) || required.some((k) => !(k in v))) {
        malformed(where + ' is not an object of ' + allowed.join(', '));
      }
      return v;
    };
    const hashes = (v, where) => {
      if (!Array.isArray(v) || v.some((h) => typeof h !== 'string')) malformed(where + '.hashes is not an array of strings');
      return v;
    };
    const index = (v, where) => { if (!isIndex(v)) malformed(where + ' is not an integer'); return v; };
    obj(proof, ['map_size', 'present', 'absent'], ['map_size'], 'the map proof');
    index(proof.map_size, 'map_size');
    let present = null, absent = null;
    if (proof.present != null) {
      obj(proof.present, ['leaf_index', 'hashes'], ['leaf_index', 'hashes'], 'present');
      present = { leaf_index: index(proof.present.leaf_index, 'present.leaf_index'), hashes: hashes(proof.present.hashes, 'present') };
    }
    if (proof.absent != null) {
      obj(proof.absent, ['left', 'right'], [], 'absent');
      const neighbour = (n, where) => {
        if (n == null) return null;
        obj(n, ['leaf_index', 'key_hash', 'value', 'hashes'], ['leaf_index', 'key_hash', 'value', 'hashes'], where);
        if (typeof n.key_hash !== 'string') malformed(where + '.key_hash is not a string');
        obj(n.value, ['count', 'digest'], ['count', 'digest'], where + '.value');
        if (!isIndex(n.value.count) || typeof n.value.digest !== 'string') malformed(where + '.value is not {"count", "digest"}');
        return { leaf_index: index(n.leaf_index, where + '.leaf_index'), key_hash: n.key_hash, value: n.value, hashes: hashes(n.hashes, where) };
      };
      absent = { left: neighbour(proof.absent.left, 'absent.left'), right: neighbour(proof.absent.right, 'absent.right') };
    }
    return { map_size: proof.map_size, present, absent };
  }

  // zachetka_projections::completeness::verify_map_proof, step for step (same order, same codes).
  async function verifyMapProof(mapRoot, learner, value, proof) {
    const k = await sha256(enc.encode(learner));
    if (proof.present && !proof.absent) {
      await checkPath(mapRoot, proof.map_size, proof.present.leaf_index, await mapLeafHash(k, value.count, value.digest), proof.present.hashes);
      return;
    }
    if (!proof.absent || proof.present) malformed('the proof must hold exactly one of present and absent');
    if (value.count !== 0 || !equalBytes(value.digest, ZERO32)) invalid('an absent learner\'s value must be count 0 and a zero digest');
    const check = async (n) => {
      if (!n) return null;
      const nk = hash32(n.key_hash);
      const digest = hash32(n.value.digest);
      await checkPath(mapRoot, proof.map_size, n.leaf_index, await mapLeafHash(nk, n.value.count, digest), n.hashes);
      return { k: nk, i: n.leaf_index };
    };
    const left = await check(proof.absent.left);
    const right = await check(proof.absent.right);
    let ok;
    if (!left && !right) ok = proof.map_size === 0 && equalBytes(mapRoot, EMPTY_ROOT);
    else if (left && !right) ok = compareBytes(left.k, k) < 0 && left.i + 1 === proof.map_size;
    else if (!left && right) ok = compareBytes(k, right.k) < 0 && right.i === 0;
    else ok = compareBytes(left.k, k) < 0 && compareBytes(k, right.k) < 0 && left.i + 1 === right.i;
    if (!ok) invalid('the neighbours do not enclose the learner\'s key (order or adjacency)');
  }

  // The learner's value from the leaf hashes of their entries in log order: the count, and
  // d_i = SHA-256("zachetka/completeness/v1\n" || d_{i-1} || leaf_i) from 32 zero bytes.
  // Sequential by nature; the page starts it as soon as the leaf hashes are known, so it runs
  // beside the signature checks.
  async function chainValue(leaves) {
    let d = ZERO32;
    const buf = new Uint8Array(CHAIN_DOMAIN.length + 64);
    buf.set(CHAIN_DOMAIN, 0);
    for (const leaf of leaves) {
      buf.set(d, CHAIN_DOMAIN.length);
      buf.set(leaf, CHAIN_DOMAIN.length + 32);
      d = new Uint8Array(await crypto.subtle.digest('SHA-256', buf));
    }
    return { count: leaves.length, digest: d };
  }

  // The commitment event's own checks: stream, type, author the trusted ledger key, data in
  // shape. Returns { data } or { problems } (each a completeness_commitment_invalid message).
  function commitmentData(ev, key) {
    const problems = [];
    if (ev.stream !== COMMITMENT_STREAM || ev.type !== COMMITMENT_TYPE) {
      problems.push('it is ' + ev.type + ' on stream ' + JSON.stringify(ev.stream) + ', not ' + COMMITMENT_TYPE + ' on stream ' + JSON.stringify(COMMITMENT_STREAM));
    }
    const ledger = didFromPublic(key.publicKey);
    if (ev.author !== ledger) problems.push('its author ' + ev.author + ' is not the ledger key ' + ledger + ' of the verifier key you trust');
    const d = ev.data;
    const root = isObject(d) && typeof d.map_root === 'string' ? b64decode(d.map_root) : null;
    const shaped = isObject(d) && Object.keys(d).length === 4 && d.v === 1 && isIndex(d.up_to) && isIndex(d.learners) && root && root.length === 32;
    if (!shaped) problems.push('its data is not {"v": 1, "up_to", "map_root": <base64 of 32 bytes>, "learners"}');
    return problems.length ? { problems } : { data: { up_to: d.up_to, map_root: root, learners: d.learners } };
  }

  // FORMAT.md section 6, after the other checks. `chain` is the value recomputed from the items
  // below `up_to` (started early); failures go to `failures`, the summary is returned.
  async function checkCompleteness(b, c, entries, cp, key, options, failures, report, chain) {
    const maxUncovered = options.maxUncovered ?? MAX_UNCOVERED_DEFAULT;
    const out = { status: 'failed', max_uncovered: maxUncovered };
    if (!c) {
      out.status = 'not_present';
      if (options.requireComplete) failures.push({ code: 'completeness_missing', message: 'the bundle carries no completeness commitment, and this verification requires one' });
      return out;
    }
    const before = failures.length;
    const it = c.commitment, S = it.seq, P = c.up_to;
    Object.assign(out, { up_to: P, commitment_seq: S });
    const push = (code, message, seq) => failures.push(seq === undefined ? { code, message } : { code, seq, message });
    // 1. The commitment as any item: proof, canonical bytes, ledger, signature.
    let data = null;
    if (!it.disclosed) {
      push('bundle_malformed', 'the completeness commitment is withheld; it must be disclosed', S);
    } else {
      it.leaf = await leafHash(it.bytes);
      const root = S < cp.treeSize ? await rootFromInclusion(S, cp.treeSize, it.leaf, it.proof) : null;
      report.proofs_checked++;
      if (!root || !equalBytes(root, cp.root)) push('proof_invalid', 'the completeness commitment: the inclusion proof of seq ' + S + ' does not lead to the checkpoint root at tree size ' + cp.treeSize, S);
      let parsed = true;
      try { parseEntry(it); } catch (e) {
        if (!(e instanceof Failure)) throw e;
        push(e.code, 'the completeness commitment: ' + e.message, S);
        parsed = false;
      }
      if (parsed) {
        const ev = it.event;
        if (ev.ledger !== b.origin) push('wrong_ledger', 'the completeness commitment: event for ledger ' + ev.ledger + ', not ' + b.origin, S);
        const why = await signatureProblem(it);
        report.signatures_checked++;
        if (why) push('signature_invalid', 'the completeness commitment: signature by ' + ev.author + ': ' + why, S);
        // 2. A commitment of this ledger, saying what the member says.
        const got = commitmentData(ev, key);
        for (const p of got.problems || []) push('completeness_commitment_invalid', 'entry ' + S + ' is no completeness commitment of this ledger: ' + p, S);
        data = got.data || null;
        if (data && data.up_to !== P) push('completeness_commitment_invalid', 'the commitment at seq ' + S + ' covers positions below ' + data.up_to + ', the bundle says ' + P, S);
        else if (data && P > S) push('completeness_commitment_invalid', 'the commitment at seq ' + S + ' claims to cover positions up to ' + P + ', after itself', S);
      }
    }
    // 3. The value from the items below P (withheld ones by their leaf hash).
    const digest = b64decode(c.value.digest);
    const claimed = digest && digest.length === 32 ? { count: c.value.count, digest } : null;
    if (!claimed) push('bundle_malformed', 'completeness.value.digest is not base64 of 32 bytes');
    const below = entries.filter((x) => x.seq < P);
    out.after = entries.length - below.length;
    out.covered_withheld = below.filter((x) => !x.disclosed).length;
    const got = await chain;
    if (claimed) {
      out.covered = claimed.count;
      if (got.count !== claimed.count || !equalBytes(got.digest, claimed.digest)) {
        let why;
        if (got.count < claimed.count) why = 'the commitment counts ' + claimed.count + ' entries of learner ' + b.learner + ' below position ' + P + ', the bundle holds ' + got.count + ': ' + (claimed.count - got.count) + ' left out';
        else if (got.count > claimed.count) why = 'the bundle holds ' + got.count + ' entries below position ' + P + ', the commitment counts ' + claimed.count + ' of learner ' + b.learner + ': the bundle holds entries the commitment does not';
        else why = 'the bundle\'s ' + got.count + ' entries below position ' + P + ' chain to another digest than the commitment\'s: an entry was replaced, or one left out and another added';
        push('completeness_value_mismatch', why);
      }
    }
    // 4. The value is the learner's in the committed map.
    try {
      const proof = shapeOf(c.map_proof);
      if (data && claimed) {
        if (proof.map_size !== data.learners) invalid('the map proof is for a map of ' + proof.map_size + ' learners, the commitment\'s holds ' + data.learners);
        try {
          await verifyMapProof(data.map_root, b.learner, claimed, proof);
        } catch (e) {
          if (!(e instanceof MapProofError)) throw e;
          e.message = 'the value {count ' + claimed.count + '} of learner ' + b.learner + ' is not proved in the commitment\'s map: ' + e.message;
          throw e;
        }
      }
    } catch (e) {
      if (!(e instanceof MapProofError)) throw e;
      push(e.code, e.message);
    }
    // 5. Freshness: how far the commitment is behind the bundle's checkpoint, and behind a newer
    // second checkpoint that proved consistent with it.
    const uncovered = Math.max(0, cp.treeSize - P);
    out.uncovered_positions = uncovered;
    if (uncovered > maxUncovered) {
      push('completeness_stale', 'the commitment covers positions below ' + P + ', the bundle\'s checkpoint is at ' + cp.treeSize + ': ' + uncovered + ' positions are not covered, more than the bound ' + maxUncovered + '; an entry among them (a revocation, a correction) could be left out: ask for a bundle exported against the latest commitment');
    }
    const newer = report.consistency && report.consistency.second > cp.treeSize ? report.consistency.second : null;
    if (newer !== null) {
      out.behind = Math.max(0, newer - P);
      if (out.behind > maxUncovered) {
        push('completeness_stale', 'the commitment covers positions below ' + P + ', the newer checkpoint you gave is at ' + newer + ': ' + out.behind + ' positions since are not covered, more than the bound ' + maxUncovered + '; ask for a bundle exported now');
      }
    }
    // Complete only when no position but the commitment's own is uncovered, up to the bundle's
    // checkpoint and to a newer one given; else the learner's entries from P on (in the bundle,
    // or cut off its end, which no check sees) are covered by no commitment: complete up to P.
    if (failures.length === before) {
      const newest = Math.max(cp.treeSize, newer ?? 0);
      out.status = out.after === 0 && newest - P <= 1 ? 'complete' : 'complete_up_to';
    } else out.reason = failures[before].code;
    return out;
  }

  // ---- the verifier ----------------------------------------------------------------------------

  // The order of one item's checks (record/src/verify.rs `check_item`), for ordering failures.
  const ITEM_CHECKS = { bundle_malformed: 0, proof_invalid: 1, entry_not_canonical: 2, entry_seq_mismatch: 3, wrong_ledger: 4, authority_entry_invalid: 5, signature_invalid: 6 };

  // Verifies bundle `text` under `trustedKey` (a C2SP verifier key string). Never throws: the
  // report lists every failure with its FORMAT.md code (and `seq` where one item is to blame).
  // `options`: { requireComplete, maxUncovered } (FORMAT.md section 6), `other`: { note,
  // proof } a second checkpoint note and the consistency proof to it (FORMAT.md section 4, 7),
  // and `witnesses` (verifier key strings), `witnessesRequired` (FORMAT.md section 4, "Witnesses").
  async function verifyBundle(text, trustedKey, options = {}) {
    const started = performance.now();
    nodeMemo = new Map();
    const phases = {};
    let mark = started;
    const phase = (name) => { const now = performance.now(); phases[name] = Math.round(now - mark); mark = now; };
    const report = { ok: false, failures: [], withheld: 0, disclosed: 0, signatures_checked: 0, proofs_checked: 0, grant_checks: 0 };
    const failures = report.failures;
    // Where the items' own failures start and end (set as their checks run), and the items' seqs
    // in bundle order.
    let itemsFrom = -1, itemsTo = -1, itemOrder = [];
    const note = (e) => {
      if (!(e instanceof Failure)) throw e;
      const f = { code: e.code, message: e.message };
      if (e.seq !== undefined) f.seq = e.seq;
      failures.push(f);
    };
    try {
      const { b, entries, authority, completeness } = parseBundle(text);
      phase('parse');
      Object.assign(report, { origin: b.origin, learner: b.learner, entries: entries.length, authority_entries: authority.length });
      let key = null;
      if (!trustedKey) {
        report.key_from_bundle = true;
        trustedKey = b.verifier_key;
      }
      key = await parseVerifierKey(trustedKey);
      if (b.verifier_key !== trustedKey) {
        failures.push({ code: 'verifier_key_mismatch', message: 'the bundle names verifier key ' + b.verifier_key + ', the page trusts ' + trustedKey });
      }
      if (key.name !== b.origin) {
        failures.push({ code: 'checkpoint_invalid', message: 'the trusted key is named ' + key.name + ', the bundle is of ledger ' + b.origin });
      }
      // The witnesses asked for are the caller's input: a bad one stops everything (as the CLI
      // and POST /v1/verify refuse it before verifying).
      const demand = options.witnesses && options.witnesses.length ? await witnessDemand(options.witnesses, options.witnessesRequired) : null;
      const cp = await verifyCheckpoint(b.checkpoint, key, b.origin);
      Object.assign(report, { tree_size: cp.treeSize, root_hash: b64encode(cp.root) });
      if (demand) {
        report.cosignatures = { required: demand.required, witnesses: demand.witnesses.length, checkpoint: null, second_checkpoint: null };
        report.cosignatures.checkpoint = await checkCosignatures(b.checkpoint, demand, 'the bundle\'s checkpoint', failures);
      }
      // 7. one history with the second checkpoint, if one is given (before completeness, whose
      // freshness also counts from a newer one).
      // Its failures are reported where the Rust verifier reports them: after the authority's.
      const consistencyFailures = [];
      if (options.other) report.consistency = await checkConsistency(options.other, cp, key, b.origin, consistencyFailures, demand, report);
      phase('checkpoint');
      itemsFrom = failures.length;

      // 3. leaf hashes and proofs, all in flight at once (WebCrypto runs them off the main thread).
      const all = entries.concat(authority);
      itemOrder = all.map((it) => it.seq);
      await Promise.all(all.map(async (it) => {
        if (it.disclosed) it.leaf = await leafHash(it.bytes);
        if (it.seq >= cp.treeSize) {
          failures.push({ code: 'proof_invalid', seq: it.seq, message: 'seq ' + it.seq + ' is not below the checkpoint tree size ' + cp.treeSize });
          return;
        }
        const root = await rootFromInclusion(it.seq, cp.treeSize, it.leaf, it.proof);
        report.proofs_checked++;
        if (!root || !equalBytes(root, cp.root)) {
          failures.push({ code: 'proof_invalid', seq: it.seq, message: 'the inclusion proof of seq ' + it.seq + (it.disclosed ? ' (entry bytes as given)' : ' (withheld leaf hash)') + ' does not lead to the checkpoint root' });
        }
      }));
      phase('proofs');
      // The completeness value's chain is sequential: started now, it runs beside the
      // signature checks and is awaited in step 8.
      const chain = completeness ? chainValue(entries.filter((it) => it.seq < completeness.up_to).map((it) => it.leaf)) : null;

      // 4. entries: canonical bytes, seq, ledger, author signatures.
      const disclosed = [];
      for (const it of all) {
        if (!it.disclosed) continue;
        try { parseEntry(it); disclosed.push(it); } catch (e) { note(e); }
      }
      phase('entries');
      for (const it of authority) {
        if (!it.event) continue;
        // A registry entry, or an institution's curriculum, programme or lesson, or a queue's
        // allocation run a disclosed entry names (checked by the grant like the disclosed entries).
        const stream = typeof it.event.stream === 'string' ? it.event.stream : '';
        const registration = (stream.startsWith('institution/')
          && ['college.curriculum_registered', 'additional.program_registered', 'journal.lesson_held'].includes(it.event.type))
          || (stream.startsWith('queue/kg/') && ['queue.allocation_started', 'queue.allocation_finished'].includes(it.event.type));
        if (it.event.stream !== 'registry' && !registration) failures.push({ code: 'authority_entry_invalid', seq: it.seq, message: 'authority item ' + it.event.type + ' on stream ' + it.event.stream + ': neither a registry entry nor an institution\'s curriculum, programme or lesson, nor a queue\'s allocation run' });
      }
      await Promise.all(disclosed.map(async (it) => {
        const ev = it.event;
        if (ev.ledger !== b.origin) {
          failures.push({ code: 'wrong_ledger', seq: it.seq, message: 'event for ledger ' + ev.ledger + ', not ' + b.origin });
        }
        const why = await signatureProblem(it);
        report.signatures_checked++;
        if (why) failures.push({ code: 'signature_invalid', seq: it.seq, message: 'signature of ' + ev.type + ' by ' + ev.author + ': ' + why });
      }));
      phase('signatures');
      itemsTo = failures.length;
      const disclosedEntries = entries.filter((it) => it.event);
      report.disclosed = disclosedEntries.length;
      report.withheld = entries.length - report.disclosed;
      const concerns = new Concerns();
      for (const it of disclosedEntries) {
        concerns.apply(it.event);
        if (!concerns.learners(it.event).includes(b.learner)) {
          failures.push({ code: 'entry_not_concerning_learner', seq: it.seq, message: it.event.type + ' on ' + it.event.stream + ' does not concern learner ' + b.learner });
        }
      }
      // 5. stream chains.
      checkChains(b.learner, entries, authority, failures);

      // 6. authority.
      checkAuthority(b.origin, entries, authority, report, failures);
      failures.push(...consistencyFailures);

      phase('chains_authority');

      // 8. completeness.
      report.completeness = await checkCompleteness(b, completeness, entries, cp, key, options, failures, report, chain);
      phase('completeness');
      report.record = summarize(disclosedEntries, entries.filter((it) => !it.disclosed).map((it) => it.seq));
      phase('record');
    } catch (e) {
      note(e);
    }
    // FORMAT.md section 5: failures in the order the checks run, as record/src/verify.rs lists
    // them: the bundle's own, then each item's (by its place in entries then authority; for one
    // item: proof, bytes, seq, ledger, kind, signature), then the checks over several entries.
    // The item checks here run all items at once, phase by phase, so their failures are put
    // back in that order.
    if (itemsFrom >= 0) {
      if (itemsTo < 0) itemsTo = failures.length;
      const place = new Map();
      itemOrder.forEach((seq, i) => { if (!place.has(seq)) place.set(seq, i); });
      const at = (f) => place.get(f.seq) ?? itemOrder.length;
      const items = failures.slice(itemsFrom, itemsTo)
        .map((f, i) => ({ f, i }))
        .sort((x, y) => at(x.f) - at(y.f) || (ITEM_CHECKS[x.f.code] ?? 9) - (ITEM_CHECKS[y.f.code] ?? 9) || x.i - y.i)
        .map((x) => x.f);
      failures.splice(itemsFrom, items.length, ...items);
    }
    report.ok = failures.length === 0;
    report.millis = Math.round(performance.now() - started);
    report.phases_ms = phases;
    nodeMemo = new Map();
    return report;
  }

  // FORMAT.md 4.5, as record/src/verify.rs does it: direct links on every stream; the learner's
  // own stream whole, withheld items placed by the links that name them, and no hole between
  // two accounted-for versions larger than the unplaced withheld items whose seq lies between.
  function checkChains(learner, entries, authority, failures) {
    const own = 'learner/' + learner;
    const gap = (seq, message) => failures.push({ code: 'stream_gap', seq, message });
    const disclosed = entries.map((it) => [it, false]).concat(authority.map((it) => [it, true]))
      .filter(([it]) => it.entry).sort((a, b) => a[0].seq - b[0].seq);
    const versions = new Map(); // stream + version -> item
    for (const [it] of disclosed) {
      const key = it.event.stream + '\n' + it.entry.stream_version;
      const other = versions.get(key);
      if (other) gap(it.seq, 'entries ' + other.seq + ' and ' + it.seq + ' both claim version ' + it.entry.stream_version + ' of stream ' + it.event.stream);
      versions.set(key, it);
    }
    const withheld = new Map(entries.filter((it) => !it.disclosed).map((it) => [b64encode(it.leaf), it.seq]));
    const placed = new Set();
    const ownVersions = new Map(); // version of the learner's own stream -> the seq accounting for it
    for (const [it, inAuthority] of disclosed) {
      const s = it.event.stream, v = it.entry.stream_version, prev = it.entry.stream_prev;
      const isOwn = !inAuthority && s === own;
      if (isOwn) ownVersions.set(v, it.seq);
      if (v === 0) {
        if (prev !== null) gap(it.seq, 'entry ' + it.seq + ' is version 0 of ' + s + ' but names a previous entry');
        continue;
      }
      if (prev === null) { gap(it.seq, 'entry ' + it.seq + ' is version ' + v + ' of ' + s + ' but names no previous entry'); continue; }
      const before = versions.get(s + '\n' + (v - 1));
      if (before) {
        if (b64encode(before.leaf) !== prev || before.seq >= it.seq) {
          gap(it.seq, 'entry ' + it.seq + ' of ' + s + ' does not chain to entry ' + before.seq + ', version ' + (v - 1) + ' of its stream');
        }
      } else if (isOwn) {
        const wseq = withheld.get(prev);
        if (wseq !== undefined && wseq < it.seq) {
          if (placed.has(prev)) gap(it.seq, 'two entries of ' + s + ' name withheld entry ' + wseq + ' as their previous');
          placed.add(prev);
          ownVersions.set(v - 1, wseq);
        } else {
          gap(it.seq, 'entry ' + it.seq + ' (version ' + v + ' of ' + s + ') names a previous entry ' + prev + ' that is not in the bundle');
        }
      }
    }
    const unplaced = Array.from(withheld).filter(([leaf]) => !placed.has(leaf)).map(([, seq]) => seq);
    let below = null;
    for (const v of Array.from(ownVersions.keys()).sort((a, b) => a - b)) {
      const seq = ownVersions.get(v);
      const missing = below === null ? v : v - below.v - 1;
      const from = below === null ? 0 : below.seq + 1;
      const available = unplaced.filter((w) => w >= from && w < seq).length;
      if (missing > available) {
        gap(seq, missing + ' versions of ' + own + ' before entry ' + seq + ' (version ' + v + ') are neither disclosed nor withheld in the bundle (only ' + available + ' withheld entries could stand for them)');
      }
      below = { v, seq };
    }
  }

  function checkAuthority(origin, entries, authority, report, failures) {
    const first = authority[0];
    const est = first && first.event;
    if (!est || first.seq !== 0 || est.type !== 'ledger.established' || est.data.origin !== origin || typeof est.data.authority !== 'string' || est.author !== est.data.authority) {
      failures.push({ code: 'authority_chain_incomplete', message: 'authority does not start with ledger.established of ' + origin + ' at seq 0, signed by its authority key' });
      return;
    }
    report.genesis_authority = est.data.authority;
    const registry = new Registry(est.data.authority);
    const merged = entries.concat(authority.slice(1)).filter((it) => it.event).sort((a, b) => a.seq - b.seq);
    for (const it of merged) {
      const ev = it.event;
      const at = parseInstant(ev.occurred_at);
      if (at === null) {
        failures.push({ code: 'event_malformed', seq: it.seq, message: 'occurred_at ' + JSON.stringify(ev.occurred_at) + ' is not an RFC 3339 time' });
        continue;
      }
      if (ev.stream === 'registry' && authority.includes(it)) {
        const refusal = registry.refuse(ev, at);
        if (refusal) failures.push({ code: refusal.code, seq: it.seq, message: ev.type + ': ' + refusal.message });
        else registry.apply(ev, at);
        continue;
      }
      report.grant_checks++;
      // A migration's import (data.migrated_from) is judged as the rules judge it: at the entry's
      // recorded_at (its old occurred_at is the legacy system's), by a key with the migration role.
      const imported = isObject(ev.data) && ev.data.migrated_from !== undefined;
      const keyAt = imported ? parseInstant(it.entry.recorded_at) : at;
      const held = keyAt === null ? { code: 'entry_not_canonical', message: 'recorded_at is not an RFC 3339 time' } : registry.inForce(ev.author, keyAt);
      if (held.code) failures.push({ code: held.code, seq: it.seq, message: ev.type + ' at ' + ev.occurred_at + ': ' + held.message });
      else if (imported && !held.grant.roles.includes('migration')) {
        failures.push({ code: 'not_authorized', seq: it.seq, message: ev.type + ': key ' + ev.author + ' holds no migration role; data.migrated_from is written only by one' });
      } else it.grant = held.grant;
    }
  }

  // Known-answer hooks for tests/web: the same functions the bundle check uses.
  async function checkNote(note, vkey, origin) {
    try {
      const cp = await verifyCheckpoint(note, await parseVerifierKey(vkey), origin);
      return { ok: true, tree_size: cp.treeSize, root_hash: b64encode(cp.root) };
    } catch (e) {
      if (!(e instanceof Failure)) throw e;
      return { ok: false, code: e.code, message: e.message };
    }
  }
  // A map proof checked as the bundle check does (for the known answers of tests/web): the
  // code of the failure, or 'ok'.
  async function checkMapProof(rootB64, learner, value, proof) {
    try {
      const digest = b64decode(value.digest);
      if (!digest || digest.length !== 32) return 'bundle_malformed';
      await verifyMapProof(b64decode(rootB64), learner, { count: value.count, digest }, shapeOf(proof));
      return 'ok';
    } catch (e) {
      if (e instanceof MapProofError) return e.code;
      throw e;
    }
  }
  const api = { checkMapProof, verifyConsistency, verifyBundle, verifyStrict, canonical, checkNote, parseInstant, b64decode, b64encode, rootFromInclusion, leafHash, verifyMapProof, chainValue, didFromPublic, Failure };
  global.zachetkaVerifier = api;
})(typeof window !== 'undefined' ? window : globalThis);

// ---- the page ----------------------------------------------------------------------------------

(function () {
  if (typeof document === 'undefined') return;
  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return e;
  }

  function table(headers, rows) {
    if (!rows.length) return el('p', { class: 'none' }, 'None disclosed.');
    return el('table', {}, el('thead', {}, el('tr', {}, ...headers.map((h) => el('th', {}, h)))),
      el('tbody', {}, ...rows.map((r) => el('tr', {}, ...r.map((c) => el('td', {}, c))))));
  }

  function describeCompleteness(c, treeSize) {
    if (c.status === 'not_present') {
      return 'not present in this bundle: it proves that what it holds is authentic as of position ' + treeSize + ', not that nothing is missing';
    }
    if (c.status === 'complete') {
      return 'complete: the checkpoint ends at the commitment (seq ' + c.commitment_seq + '), which covers every position before it: the bundle holds all ' +
        c.covered + ' entries of the learner (' + c.covered_withheld + ' withheld)';
    }
    if (c.status === 'complete_up_to') {
      return 'complete up to position ' + c.up_to + ' (commitment at seq ' + c.commitment_seq + '): covers ' + c.covered + ' entries of the learner (' +
        c.covered_withheld + ' withheld); ' + c.after + ' entries of the bundle are after it and not covered by any commitment; the ' +
        c.uncovered_positions + ' positions from ' + c.up_to + ' to the checkpoint may hold entries of the learner that this bundle does not show (bound ' +
        c.max_uncovered + ')' + (c.behind !== undefined ? '; the newer checkpoint is ' + c.behind + ' positions past ' + c.up_to : '');
    }
    return 'NOT proved (' + c.reason + ')' + (c.up_to !== undefined ? ' for the commitment at seq ' + c.commitment_seq + ', position ' + c.up_to : '') + ': see why it fails below';
  }

  // An achievement no disclosed revocation names, none withheld after it: in force as far as
  // the completeness reaches (a revocation after P could be cut off the bundle's end).
  function inForce(c) {
    if (c && c.status === 'complete') return 'in force';
    if (c && c.status === 'complete_up_to') return 'in force up to position ' + c.up_to + ' (a revocation after it is covered by no commitment)';
    return 'in force among the entries shown (completeness not proved)';
  }

  // A result's status: its current value after its disclosed corrections, or why it is
  // unknown; with none, as recorded as far as the completeness reaches.
  function resultStatus(x, c) {
    if (x.corrected === undefined) return '';
    if (x.corrected === null) return 'unknown: ' + x.corrected_unknown;
    if (x.corrected === true) {
      const last = x.corrections[x.corrections.length - 1];
      const now = last.mark !== undefined ? 'mark ' + last.mark : last.code !== undefined ? 'code ' + last.code : 'annulled';
      return 'corrected at seq ' + last.seq + ': ' + now + (last.reason ? ' (' + last.reason + ')' : '')
        + (x.corrected_unknown ? '; later unknown: ' + x.corrected_unknown : '');
    }
    if (c && c.status === 'complete') return 'as recorded';
    if (c && c.status === 'complete_up_to') return 'as recorded up to position ' + c.up_to + ' (a correction after it is covered by no commitment)';
    return 'as recorded among the entries shown (completeness not proved)';
  }

  function render(report, fileName) {
    const out = $('result');
    out.replaceChildren();
    const status = $('status');
    // Without a trusted key a bundle proves only that it agrees with itself: anyone can make a
    // ledger of that name and a bundle under its key, so that is never shown as verified.
    status.dataset.state = !report.ok ? 'failed' : report.key_from_bundle ? 'unanchored' : 'verified';
    status.textContent = !report.ok
      ? 'NOT verified: ' + fileName + ' (' + report.failures[0].code + ')'
      : report.key_from_bundle
        ? 'NOT verified against a trusted key: ' + fileName + ' is consistent only under the key it names itself; enter the ledger key you trust'
        : 'Verified: ' + fileName;
    const facts = [];
    if (report.learner !== undefined) facts.push(['Learner', report.learner]);
    if (report.origin !== undefined) facts.push(['Ledger', report.origin]);
    if (report.tree_size !== undefined) facts.push(['Checkpoint', 'tree size ' + report.tree_size + ', root ' + report.root_hash]);
    if (report.entries !== undefined) facts.push(['Entries', report.disclosed + ' disclosed, ' + report.withheld + ' withheld (withheld entries are counted, never shown)']);
    if (report.consistency) facts.push(['History', 'one history with the second checkpoint: the tree of size ' + report.consistency.second + ' extends the tree of size ' + report.consistency.first + ' (consistency proof checked)']);
    if (report.cosignatures) {
      const c = report.cosignatures;
      // (a timestamp beyond what a Date holds, which a witness could sign, is shown in seconds)
      const when = (t) => (t * 1000 <= 8.64e15 ? new Date(t * 1000).toISOString().replace('.000Z', 'Z') : t + ' s after 1970');
      const say = (list) => list.length + ' of ' + c.witnesses + ' witnesses given (' + c.required + ' required)' +
        (list.length ? ': ' + list.map((w) => w.witness + ' at ' + when(w.timestamp)).join(', ') : '');
      if (c.checkpoint) facts.push(['Witnesses', 'cosigned the checkpoint: ' + say(c.checkpoint) + (c.second_checkpoint ? '; the second checkpoint: ' + say(c.second_checkpoint) : '')]);
    }
    if (report.completeness) facts.push(['Completeness', describeCompleteness(report.completeness, report.tree_size)]);
    facts.push(['Checked', report.signatures_checked + ' signatures, ' + report.proofs_checked + ' inclusion proofs, ' + report.grant_checks + ' grant checks in ' + report.millis + ' ms']);
    facts.push(['Authority', 'grant check only (the author held a grant in force at the event time); the roles, scopes and domain rules each event needs are checked by the zachetka verify command']);
    if (report.key_from_bundle) facts.push(['Warning', 'no trusted key was given: the key was taken from the bundle itself, which proves integrity, not origin']);
    out.append(el('dl', { id: 'facts' }, ...facts.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)])));
    if (report.failures.length) {
      out.append(el('h2', {}, 'Why it fails'));
      out.append(el('ul', { id: 'failures' }, ...report.failures.map((f) =>
        el('li', { 'data-code': f.code }, el('code', {}, f.code), f.seq !== undefined ? ' at seq ' + f.seq + ': ' : ': ', f.message))));
    }
    const r = report.record;
    if (!r) return;
    if (!report.ok) out.append(el('p', { class: 'warning' }, 'The record below did NOT verify: it is shown only to locate the failures above, not as a statement of the ledger.'));
    out.append(el('h2', {}, 'Institutions and years'),
      table(['Institution', 'Years'], r.institutions.map((i) => [i.institution, i.years.join(', ')])));
    out.append(el('h2', {}, 'Results'),
      table(['Seq', 'Type', 'Institution', 'Subject', 'Mark', 'Year', 'Status'], r.results.map((x) => [x.seq, x.type, x.institution, x.subject, x.mark, x.year, resultStatus(x, report.completeness)])));
    out.append(el('h2', {}, 'Documents'),
      table(['Seq', 'Type', 'Institution', 'Level', 'Number', 'Issued'], r.documents.map((x) => [x.seq, x.type, x.institution, x.level, x.number, x.issued_on])));
    out.append(el('h2', {}, 'Achievements'),
      table(['Seq', 'Kind', 'Level', 'Result', 'Date', 'Status'], r.achievements.map((x) => [x.seq, x.kind, x.level, x.result, x.date, x.revoked === true ? 'revoked' : x.revoked === null ? 'unknown: ' + x.revoked_unknown : inForce(report.completeness)])));
    out.append(el('h2', {}, 'Other entries'), table(['Type', 'Count'], r.other.map((x) => [x.type, x.count])));
  }

  async function verifyFile(file) {
    const status = $('status');
    status.dataset.state = 'working';
    status.textContent = 'Verifying ' + file.name + '...';
    const text = await file.text();
    const options = { requireComplete: $('require-complete').checked };
    const witnesses = $('witnesses').value.split(/\s+/).filter((w) => w);
    if (witnesses.length) {
      options.witnesses = witnesses;
      options.witnessesRequired = $('witnesses-required').value.trim();
    }
    const [noteFile, proofFile] = [$('other-note').files[0], $('other-proof').files[0]];
    if (noteFile || proofFile) {
      options.other = {};
      if (noteFile) options.other.note = await noteFile.text();
      if (proofFile) {
        try { options.other.proof = JSON.parse(await proofFile.text()); } catch (e) { options.other.proof = null; }
      }
    }
    const report = await window.zachetkaVerifier.verifyBundle(text, $('key').value.trim(), options);
    window.zachetkaLastReport = report;
    render(report, file.name);
  }

  document.addEventListener('DOMContentLoaded', () => {
    const meta = document.querySelector('meta[name="zachetka-verifier-key"]');
    if (meta && !meta.content.startsWith('{{')) $('key').value = meta.content;
    $('file').addEventListener('change', (e) => { if (e.target.files[0]) verifyFile(e.target.files[0]); });
    const drop = $('drop');
    drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
    drop.addEventListener('dragleave', () => drop.classList.remove('over'));
    drop.addEventListener('drop', (e) => {
      e.preventDefault();
      drop.classList.remove('over');
      if (e.dataTransfer.files[0]) verifyFile(e.dataTransfer.files[0]);
    });
  });
})();
