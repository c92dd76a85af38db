// SPDX-License-Identifier: MIT
// tests/browser/dispatch.test.mjs -- the dispatch module's dashboard page in
// a real browser (run by tests/browser/run.sh): the workers page shows a
// worker busy with its current run, the quarantine toggle quarantines it
// and lifts it again (checked through the API), the live log viewer shows
// a running task's log and then what a worker sends afterwards until the
// run ends, and the queue page shows pending runs per worker type.
// Skips itself when the dispatch module is not loaded.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import path from 'node:path';

const base = process.env.RELENGD_URL;
const adminToken = process.env.RELENGD_ADMIN_TOKEN;
const require = createRequire(path.join(process.env.PLAYWRIGHT_DIR || process.cwd(), 'package.json'));
const { chromium } = require('playwright-core');
const modules = (process.env.RELENGD_MODULES || '').split(/\s+/);
const hasDispatch = modules.includes('dispatch');
const TYPE = 'browser-dispatch'; // no other test claims these types

let browser;
const contexts = [];
const pageErrors = [];

async function api(method, p, body, raw) {
  const res = await fetch(base + p, {
    method,
    headers: {
      Authorization: `Bearer ${adminToken}`,
      ...(body !== undefined ? { 'Content-Type': raw ? 'application/octet-stream' : 'application/json' } : {}),
    },
    body: body === undefined ? undefined : raw ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  return { status: res.status, json, text };
}

async function newPage() {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  context.setDefaultTimeout(10000);
  contexts.push(context);
  const page = await context.newPage();
  page.on('pageerror', (err) => pageErrors.push(`${page.url()}: ${err.message}`));
  await page.addInitScript((t) => localStorage.setItem('relengd.token', t), adminToken);
  return page;
}

// A run claimed by worker id through the API, as relengd-worker would.
async function claimed(taskId, workerId, type) {
  let r = await api('POST', '/api/v1/dispatch/enqueue', { taskId, workerType: type, label: `job-${taskId}`, branch: 'main', payload: { command: 'true' } });
  assert.equal(r.status, 201, JSON.stringify(r.json));
  r = await api('POST', '/api/v1/dispatch/claim', { workerId, workerType: type, capacity: 1, wait: 0 });
  assert.equal(r.status, 200, JSON.stringify(r.json));
  assert.equal(r.json.tasks.length, 1, 'the run was claimed');
  assert.equal(r.json.tasks[0].taskId, taskId);
}

before(async () => {
  if (!hasDispatch) return;
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
  });
});

after(async () => {
  for (const c of contexts) await c.close();
  await browser?.close();
  assert.deepEqual(pageErrors, [], 'no uncaught errors in the pages');
});

test('the workers page shows a busy worker and toggles its quarantine', { skip: !hasDispatch && 'dispatch module not loaded' }, async () => {
  await claimed('bd-busy', 'bd-worker-1', TYPE);
  const page = await newPage();
  await page.goto(`${base}/#/m/dispatch`);
  const row = page.locator('[data-testid="dispatch-worker-row"][data-worker-id="bd-worker-1"]');
  await row.waitFor();
  assert.equal(await row.getByTestId('dispatch-worker-state').textContent(), 'busy');
  assert.match(await row.getByTestId('dispatch-current-run').textContent(), /bd-busy\/0/);

  // quarantine with a reason
  await row.getByTestId('dispatch-quarantine-toggle').click();
  await row.getByTestId('dispatch-quarantine-reason').fill('fan failure');
  await row.getByTestId('dispatch-quarantine-submit').click();
  await row.getByTestId('dispatch-quarantine-status').waitFor();
  let w = await api('GET', '/api/v1/dispatch/workers/bd-worker-1');
  assert.equal(w.json.quarantine.reason, 'fan failure');
  assert.ok(w.json.quarantine.by, 'who quarantined it is recorded');
  // a quarantined worker gets nothing
  await api('POST', '/api/v1/dispatch/enqueue', { taskId: 'bd-wait', workerType: TYPE, label: 'x', payload: {} });
  const c = await api('POST', '/api/v1/dispatch/claim', { workerId: 'bd-worker-1', workerType: TYPE, wait: 0 });
  assert.equal(c.json.tasks.length, 0);
  assert.equal(c.json.quarantined, true);

  // and lift it
  await row.getByTestId('dispatch-quarantine-toggle').click();
  await row.getByTestId('dispatch-quarantine-status').waitFor({ state: 'detached' });
  w = await api('GET', '/api/v1/dispatch/workers/bd-worker-1');
  assert.equal(w.json.quarantine, null);
});

test('the log viewer follows a running task live until it ends', { skip: !hasDispatch && 'dispatch module not loaded' }, async () => {
  await claimed('bd-log', 'bd-worker-2', `${TYPE}-log`);
  let r = await api('POST', '/api/v1/dispatch/runs/bd-log/0/log?offset=0', 'first line\n', true);
  assert.equal(r.status, 200, r.text);
  const page = await newPage();
  await page.goto(`${base}/#/m/dispatch?log=bd-log/0`);
  const log = page.getByTestId('dispatch-log');
  await page.waitForFunction(() => document.querySelector('[data-testid="dispatch-log"]')?.textContent.includes('first line'));
  assert.equal(await page.getByTestId('dispatch-log-status').textContent(), 'live');
  // more output while the page is open arrives without a reload
  r = await api('POST', '/api/v1/dispatch/runs/bd-log/0/log?offset=11', 'second line\n', true);
  assert.equal(r.status, 200, r.text);
  await page.waitForFunction(() => document.querySelector('[data-testid="dispatch-log"]')?.textContent.includes('second line'));
  r = await api('POST', '/api/v1/dispatch/runs/bd-log/0/report', { state: 'failed', exitCode: 3 });
  assert.equal(r.status, 200, r.text);
  await page.getByTestId('dispatch-log-status').filter({ hasText: 'complete' }).waitFor();
  assert.equal(await log.textContent(), 'first line\nsecond line\n');
  await page.getByTestId('dispatch-log-run').filter({ hasText: 'exit 3' }).waitFor();
});

test('the queue page shows pending runs per worker type', { skip: !hasDispatch && 'dispatch module not loaded' }, async () => {
  const r = await api('POST', '/api/v1/dispatch/enqueue', { taskId: 'bd-queued', workerType: 'browser-queue', label: 'queued-job', branch: 'beta', priority: 3, payload: {} });
  assert.equal(r.status, 201, JSON.stringify(r.json));
  const page = await newPage();
  await page.goto(`${base}/#/m/dispatch?view=queue`);
  const row = page.locator('[data-testid="dispatch-queue-row"][data-worker-type="browser-queue"]');
  await row.waitFor();
  assert.equal(await row.getByTestId('dispatch-queue-pending').textContent(), '1');
  await page.locator('[data-testid="dispatch-pending-row"][data-task-id="bd-queued"]').waitFor();
  // from the queue to a finished run's log
  await page.getByTestId('dispatch-nav-workers').click();
  await page.getByTestId('dispatch-workers').waitFor();
});
