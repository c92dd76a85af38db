// SPDX-License-Identifier: MIT
// tests/browser/partials.test.mjs -- the partials page in a real browser
// (Debian's chromium, headless, playwright-core), against the daemon that
// tests/browser/run.sh started. Two complete MARs are made with the built
// relengd-mar, uploaded, and a job is run through the API; the page must
// show it with its phase timings, the cache figures and the per-platform
// chart, open its detail, and show the server's message for a bad form.
// Skipped when the partials module is not loaded.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const base = process.env.RELENGD_URL;
const adminToken = process.env.RELENGD_ADMIN_TOKEN;
const loaded = (process.env.RELENGD_MODULES || '').split(/\s+/).includes('partials');
const builddir = process.env.top_builddir || path.resolve(process.cwd(), '..', '..');
const marTool = path.join(builddir, 'cli', 'mar', 'relengd-mar');
const require = createRequire(path.join(process.env.PLAYWRIGHT_DIR || process.cwd(), 'package.json'));

let browser;
let context;
const pageErrors = [];
let tmp;

async function api(method, p, body, headers = {}) {
  const res = await fetch(base + p, {
    method,
    headers: { Authorization: `Bearer ${adminToken}`, ...headers },
    body,
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : null };
}

// A complete MAR of the files in tree (name -> Buffer), made by relengd-mar.
function makeMar(name, tree, version) {
  const dir = path.join(tmp, name);
  for (const [f, data] of Object.entries(tree)) {
    fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
    fs.writeFileSync(path.join(dir, f), data);
  }
  const out = path.join(tmp, `${name}.mar`);
  execFileSync(marTool, ['create', '-C', dir, '-H', 'firefox-test', '-V', version, out, ...Object.keys(tree)]);
  return fs.readFileSync(out);
}

async function upload(bytes) {
  const r = await api('POST', '/api/v1/partials/uploads', bytes, { 'Content-Type': 'application/octet-stream' });
  assert.equal(r.status, 201, JSON.stringify(r.json));
  return r.json.id;
}

async function waitJob(id) {
  const deadline = Date.now() + 30000;
  while (Date.now() < deadline) {
    const r = await api('GET', `/api/v1/partials/jobs/${id}`);
    if (r.json.state === 'done' || r.json.state === 'failed') return r.json;
    await new Promise((res) => setTimeout(res, 100));
  }
  throw new Error(`job ${id} did not finish in 30 s`);
}

before(async () => {
  if (!loaded) return;
  const { chromium } = require('playwright-core');
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'partials-browser-'));
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
  });
  context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  context.setDefaultTimeout(10000);
  await context.addInitScript((t) => localStorage.setItem('relengd.token', t), adminToken);
});

after(async () => {
  await context?.close();
  await browser?.close();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

test('the partials page shows a finished job, its phases, the cache and the chart', { skip: !loaded && 'the partials module is not loaded' }, async () => {
  // two builds: a binary-like file with a few bytes changed, a new file, a removed one
  const bin = randomBytes(300 * 1024);
  const bin2 = Buffer.from(bin);
  for (let i = 0; i < bin2.length; i += 4099) bin2[i] ^= 0x5a;
  const from = makeMar('from', {
    precomplete: 'remove "libxul.so"\n',
    'libxul.so': bin,
    'old.txt': 'gone\n',
  }, '1.0');
  const to = makeMar('to', {
    precomplete: 'remove "libxul.so"\nremove "new.txt"\n',
    'libxul.so': bin2,
    'new.txt': 'hello\n',
  }, '2.0');
  const fromId = await upload(from);
  const toId = await upload(to);
  const created = await api(
    'POST',
    '/api/v1/partials/jobs',
    JSON.stringify({ from_upload: fromId, to_upload: toId, platform: 'browser-linux64', locale: 'en-GB' }),
    { 'Content-Type': 'application/json' },
  );
  assert.equal(created.status, 202, JSON.stringify(created.json));
  const job = await waitJob(created.json.id);
  assert.equal(job.state, 'done', job.error);
  assert.equal(job.stats.patched, 1);

  const page = await context.newPage();
  page.on('pageerror', (err) => pageErrors.push(err.message));
  await page.goto(`${base}/#/m/partials`);
  const row = page.locator(`[data-testid="partials-job-row"][data-job-id="${job.id}"]`);
  await row.waitFor();
  assert.equal(await row.getByTestId('partials-job-state').textContent(), 'done');
  assert.match(await row.locator('td[data-phase="diff"]').textContent(), /\d+ (ms|s)/);
  assert.match(await row.locator('td[data-phase="verify"]').textContent(), /\d+ (ms|s)/);
  assert.equal(await row.locator('td[data-phase="download"]').textContent(), '–');
  assert.equal(await row.getByTestId('partials-download').getAttribute('href'), `/api/v1/partials/jobs/${job.id}/result`);

  // the cache: the 300 KiB file was diffed once and stored
  const misses = await page.getByTestId('partials-hits').textContent();
  assert.match(misses, /^\d+ \/ [1-9]\d*$/);
  assert.match(await page.getByTestId('partials-cache-entries').textContent(), /^[1-9]/);
  assert.match(await page.getByTestId('partials-hit-rate').textContent(), /%$/);

  // the chart has a diff bar for the platform
  await page.locator('[data-testid="partials-chart-bar"][data-platform="browser-linux64"][data-phase="diff"]').waitFor();

  // the detail
  await row.getByRole('button', { name: `#${job.id}` }).click();
  const detail = page.getByTestId('partials-job-detail');
  await detail.waitFor();
  assert.match(await detail.textContent(), new RegExp(`Job #${job.id}`));
  assert.match(await detail.textContent(), /1 patched/);

  // a bad form gets the server's message
  await page.getByTestId('partials-from-url').fill('ftp://example.com/a.mar');
  await page.getByTestId('partials-to-url').fill('https://example.com/b.mar');
  await page.getByTestId('partials-platform').fill('linux64');
  await page.getByTestId('partials-locale').fill('de');
  await page.getByRole('button', { name: 'Queue' }).click();
  await page.getByTestId('partials-form-error').filter({ hasText: 'from_url' }).waitFor();

  assert.deepEqual(pageErrors, []);
  await page.close();
});
