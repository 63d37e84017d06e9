// Drives the record verifier page (web/verify.*) in headless Chromium for tests/it/web.rs, which
// starts the server, builds the bundles and judges the outcome; this script only operates the
// browser and reports what the page showed. Usage: node drive.mjs <config.json>; prints one JSON
// object on stdout:
//   {"cases":[{"name","state","status","facts","achievements","results","report","requests","wall_ms","screenshot"}],
//    "ed25519":[true|false, ...], "known":{"jcs","leaves","inclusion","consistency","notes","b64",
//    "map_proofs"},
//    "baseline":{"n","digest_ms","verify_ms","all_valid"}}
// config: {"chromium","base","artifacts","cases":[{"name","bundle","key"?,"require_complete"?,
// "other_note"?,"other_proof"?,"witnesses"?,"witnesses_required"?}],
// "ed25519":[{"pk","msg","sig"}]} (key absent: the page keeps the key the server filled in;
// require_complete: the page's checkbox ticked; other_note, other_proof: files for the second
// checkpoint's inputs; witnesses: verifier keys typed one per line into the witnesses field,
// witnesses_required: the count typed beside it; hex fields in ed25519).
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const config = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
// A fresh profile each run; the background-networking flags keep Chromium from dialling out
// (this machine's closed network refuses those connections).
const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'zachetka-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: config.chromium,
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
  viewport: { width: 1100, height: 900 },
});
const out = { cases: [], ed25519: [] };
try {
  fs.mkdirSync(config.artifacts, { recursive: true });
  for (const c of config.cases) {
    const page = await context.newPage();
    const requests = [];
    page.on('request', (r) => requests.push(r.method() + ' ' + new URL(r.url()).pathname));
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(config.base + '/verify');
    if (c.key !== undefined) await page.fill('#key', c.key);
    if (c.require_complete) await page.check('#require-complete');
    if (c.other_note || c.other_proof) {
      await page.click('#second summary');
      if (c.other_note) await page.setInputFiles('#other-note', c.other_note);
      if (c.other_proof) await page.setInputFiles('#other-proof', c.other_proof);
    }
    if (c.witnesses) {
      await page.click('#witnesses-box summary');
      await page.fill('#witnesses', c.witnesses.join('\n'));
      if (c.witnesses_required !== undefined) await page.fill('#witnesses-required', String(c.witnesses_required));
    }
    const started = Date.now();
    await page.setInputFiles('#file', c.bundle);
    await page.waitForFunction(() => ['verified', 'unanchored', 'failed'].includes(document.getElementById('status').dataset.state),
      null, { timeout: 60000 });
    const wall = Date.now() - started;
    const shown = await page.evaluate(() => ({
      state: document.getElementById('status').dataset.state,
      status: document.getElementById('status').textContent,
      failures: Array.from(document.querySelectorAll('#failures li'), (li) => li.textContent),
      facts: Object.fromEntries(Array.from(document.querySelectorAll('#facts dt'), (dt) => [dt.textContent, dt.nextElementSibling.textContent])),
      // The achievements and results tables as shown: each row's cells.
      ...Object.fromEntries(['Achievements', 'Results'].map((title) => {
        const h = Array.from(document.querySelectorAll('h2')).find((e) => e.textContent === title);
        const t = h && h.nextElementSibling;
        return [title.toLowerCase(), t && t.tagName === 'TABLE' ? Array.from(t.querySelectorAll('tbody tr'), (tr) => Array.from(tr.cells, (td) => td.textContent)) : []];
      })),
      report: window.zachetkaLastReport,
    }));
    const screenshot = path.join(config.artifacts, c.name + '.png');
    await page.screenshot({ path: screenshot, fullPage: true });
    out.cases.push({ name: c.name, ...shown, requests, errors, wall_ms: wall, screenshot });
    await page.close();
  }
  if (config.known) {
    // Known-answer vectors through the page's own functions: JCS of events, leaf hashes,
    // RFC 9162 inclusion proofs, checkpoint notes.
    const page = await context.newPage();
    await page.goto(config.base + '/verify');
    out.known = await page.evaluate(async (k) => {
      const v = window.zachetkaVerifier;
      const b64 = (s) => v.b64decode(s);
      const res = { jcs: [], leaves: [], inclusion: [], notes: [] };
      for (const c of k.jcs) {
        try { res.jcs.push(v.canonical(c, false)); } catch (e) { res.jcs.push('refused: ' + e.code); }
      }
      for (const bytes of k.leaves) res.leaves.push(v.b64encode(await v.leafHash(new TextEncoder().encode(bytes))));
      for (const c of k.inclusion) {
        const leaf = b64(c.leaf), root = b64(c.root), proof = c.proof.map(b64);
        const ok = leaf && leaf.length === 32 && root && proof.every((p) => p && p.length === 32) && c.index >= 0 && c.size >= 0;
        const got = ok ? await v.rootFromInclusion(c.index, c.size, leaf, proof) : null;
        res.inclusion.push(got !== null && v.b64encode(got) === c.root);
      }
      for (const c of k.notes) res.notes.push(await v.checkNote(c.note, c.vkey, c.origin));
      res.consistency = [];
      for (const c of k.consistency) {
        const r1 = b64(c.root1), r2 = b64(c.root2), proof = c.proof.map(b64);
        const ok = r1 && r1.length === 32 && r2 && r2.length === 32 && proof.every((p) => p && p.length === 32);
        res.consistency.push(ok ? await v.verifyConsistency(c.size1, c.size2, r1, r2, proof) : false);
      }
      res.map_proofs = [];
      for (const c of k.map_proofs) res.map_proofs.push(await v.checkMapProof(c.root, c.learner, c.value, c.proof));
      res.b64 = k.b64.map((s) => {
        const b = v.b64decode(s);
        return b ? Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('') : null;
      });
      return res;
    }, config.known);
    await page.close();
  }
  if (config.baseline) {
    // The browser's own floor under this machine's load: n SHA-256 digests of 65 bytes and n
    // Ed25519 verifications, all in flight at once as the page issues them.
    const page = await context.newPage();
    await page.goto(config.base + '/verify');
    out.baseline = await page.evaluate(async ({ n, pk, msg, sig }) => {
      const bytes = (h) => new Uint8Array(h.match(/../g).map((x) => parseInt(x, 16)));
      const buf = new Uint8Array(65);
      let t = performance.now();
      await Promise.all(Array.from({ length: n }, () => crypto.subtle.digest('SHA-256', buf)));
      const digest_ms = performance.now() - t;
      const key = await crypto.subtle.importKey('raw', bytes(pk), { name: 'Ed25519' }, false, ['verify']);
      t = performance.now();
      const ok = await Promise.all(Array.from({ length: n }, () => crypto.subtle.verify({ name: 'Ed25519' }, key, bytes(sig), bytes(msg))));
      return { n, digest_ms: Math.round(digest_ms), verify_ms: Math.round(performance.now() - t), all_valid: ok.every((x) => x) };
    }, config.baseline);
    await page.close();
  }
  if (config.ed25519 && config.ed25519.length) {
    const page = await context.newPage();
    await page.goto(config.base + '/verify');
    out.ed25519 = await page.evaluate(async (vectors) => {
      const bytes = (h) => new Uint8Array(h.match(/../g)?.map((x) => parseInt(x, 16)) ?? []);
      const results = [];
      for (const v of vectors) {
        results.push((await window.zachetkaVerifier.verifyStrict(bytes(v.pk), bytes(v.msg), bytes(v.sig))) === '');
      }
      return results;
    }, config.ed25519);
    await page.close();
  }
} finally {
  await context.close();
  fs.rmSync(profile, { recursive: true, force: true });
}
process.stdout.write(JSON.stringify(out) + '\n');
