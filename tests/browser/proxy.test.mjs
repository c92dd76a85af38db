// SPDX-License-Identifier: MIT
// tests/browser/proxy.test.mjs -- the proxy page in a real browser (Debian's
// chromium, headless, playwright-core), against the daemon that
// tests/browser/run.sh started (the proxy on a port of its own, port 0, with
// the sample configuration: no backends). The page must show the figures,
// the chart, the empty in-flight and top-object views, switch the sort, and
// show the server's own message for a purge that names no backend, and the
// scope a purge needs when there is no token. The proxy listener itself is
// checked from Node: its port comes from /api/v1/proxy/stats. Skipped when
// the proxy module is not loaded.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import path from 'node:path';

const base = process.env.RELENGD_URL;
const adminToken = process.env.RELENGD_ADMIN_TOKEN;
const loaded = (process.env.RELENGD_MODULES || '').split(/\s+/).includes('proxy');
const require = createRequire(path.join(process.env.PLAYWRIGHT_DIR || process.cwd(), 'package.json'));

let browser;
const contexts = [];
const pageErrors = [];

async function newPage(token) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  context.setDefaultTimeout(10000);
  contexts.push(context);
  if (token) await context.addInitScript((t) => localStorage.setItem('relengd.token', t), token);
  const page = await context.newPage();
  page.on('pageerror', (err) => pageErrors.push(err.message));
  return page;
}

before(async () => {
  if (!loaded) return;
  const { chromium } = require('playwright-core');
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
  });
});

after(async () => {
  for (const c of contexts) await c.close();
  await browser?.close();
});

test('the proxy listener answers on its own port with JSON errors', { skip: !loaded && 'the proxy module is not loaded' }, async () => {
  const st = await (await fetch(`${base}/api/v1/proxy/stats`)).json();
  assert.ok(st.port > 0, 'the stats name the proxy port');
  const res = await fetch(`http://127.0.0.1:${st.port}/nosuch/file.tar.gz`);
  assert.equal(res.status, 404);
  assert.equal(res.headers.get('via'), '1.1 relengd');
  const body = await res.json();
  assert.equal(body.error.code, 'unknown_backend');
});

test('the proxy page shows the figures, the chart, and purges with the server\'s answer', { skip: !loaded && 'the proxy module is not loaded' }, async () => {
  const page = await newPage(adminToken);
  await page.goto(`${base}/#/m/proxy`);
  await page.getByTestId('proxy-stats').waitFor();
  await page.getByTestId('proxy-hit-ratio').filter({ hasText: '%' }).waitFor();
  assert.match(await page.getByTestId('proxy-byte-ratio').textContent(), /%$/);
  assert.match(await page.getByTestId('proxy-cache-size').textContent(), / of /);
  assert.equal(await page.getByTestId('proxy-objects').textContent(), '0');
  assert.equal(await page.getByTestId('proxy-inflight-count').textContent(), '0');
  assert.ok(await page.getByTestId('proxy-chart').isVisible());
  assert.ok(await page.getByTestId('proxy-inflight-empty').isVisible());
  await page.getByTestId('proxy-top-total').filter({ hasText: '0 objects cached' }).waitFor();

  // the sort switch
  await page.getByTestId('proxy-sort-size').click();
  assert.equal(await page.getByTestId('proxy-sort-size').getAttribute('aria-pressed'), 'true');
  assert.equal(await page.getByTestId('proxy-sort-hits').getAttribute('aria-pressed'), 'false');

  // purge: nothing given, then a backend that does not exist
  const result = page.getByTestId('proxy-purge-result');
  await page.getByTestId('proxy-purge-input').fill('   ');
  await page.getByRole('button', { name: 'Purge' }).click();
  await result.filter({ hasText: 'Give a URL' }).waitFor();
  await page.getByTestId('proxy-purge-input').fill('/nosuch/file.tar.gz');
  await page.getByRole('button', { name: 'Purge' }).click();
  await result.filter({ hasText: "no backend named 'nosuch'" }).waitFor();
  await page.getByTestId('proxy-purge-input').fill('http://example.com/x');
  await page.getByTestId('proxy-purge-prefix').check();
  await page.getByRole('button', { name: 'Purge' }).click();
  await result.filter({ hasText: 'not a configured upstream' }).waitFor();
  assert.deepEqual(pageErrors, []);
});

test('purging without a token says which scope it needs', { skip: !loaded && 'the proxy module is not loaded' }, async () => {
  const page = await newPage(null);
  await page.goto(`${base}/#/m/proxy`);
  await page.getByTestId('proxy-purge-form').waitFor();
  await page.getByTestId('proxy-purge-input').fill('/nosuch/x');
  await page.getByRole('button', { name: 'Purge' }).click();
  await page.getByTestId('proxy-purge-result').filter({ hasText: 'proxy:purge' }).waitFor();
  assert.deepEqual(pageErrors, []);
});
