// SPDX-License-Identifier: MIT
// tests/browser/overview.test.mjs -- the dashboard in a real browser: Debian's
// chromium, headless, driven by playwright-core against the running daemon
// that tests/browser/run.sh started (loaded modules: example, hostcheck).
//
// Environment (set by run.sh):
//   RELENGD_URL          http://127.0.0.1:PORT
//   RELENGD_ADMIN_TOKEN  the daemon's admin token (for API calls from Node)
//   PLAYWRIGHT_DIR       the directory whose node_modules holds playwright-core
//   SCREENSHOT           where to save the overview screenshot
//   CHROMIUM             the browser (default /usr/bin/chromium)

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import path from 'node:path';

const base = process.env.RELENGD_URL;
const adminToken = process.env.RELENGD_ADMIN_TOKEN;
const screenshot = process.env.SCREENSHOT || path.resolve('overview.png');
const require = createRequire(path.join(process.env.PLAYWRIGHT_DIR || process.cwd(), 'package.json'));
const { chromium } = require('playwright-core');

assert.ok(base, 'RELENGD_URL must name the running daemon');
assert.ok(adminToken, 'RELENGD_ADMIN_TOKEN must be the daemon admin token');

let browser;
const contexts = [];
const pageErrors = [];

async function api(method, p, body, token = adminToken) {
  const res = await fetch(base + p, {
    method,
    headers: {
      Accept: 'application/json',
      ...(token ? { Authorization: `Bearer ${token}` } : {}),
      ...(body ? { 'Content-Type': 'application/json' } : {}),
    },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : null };
}

// Each page gets a context of its own, so one test's token (localStorage)
// never leaks into another's.
async function newPage({ token } = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  context.setDefaultTimeout(10000);
  contexts.push(context);
  const page = await context.newPage();
  page.on('pageerror', (err) => pageErrors.push(`${page.url()}: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') pageErrors.push(`${page.url()}: console: ${msg.text()}`);
  });
  if (token) {
    await page.addInitScript((t) => localStorage.setItem('relengd.token', t), token);
  }
  return page;
}

before(async () => {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
});

after(async () => {
  for (const c of contexts) await c.close();
  await browser?.close();
});

test('the overview lists the loaded modules with their state', async () => {
  const status = await api('GET', '/api/v1/status');
  assert.equal(status.status, 200);
  const names = status.json.modules.map((m) => m.name).sort();
  // run.sh loads the test modules and every appliance module that is built
  const loaded = (process.env.RELENGD_MODULES || 'example hostcheck').split(/\s+/).filter(Boolean);
  assert.deepEqual(names, loaded.sort());

  const page = await newPage();
  await page.goto(`${base}/`);
  const list = page.getByTestId('module-list');
  await list.getByTestId('module-card-example').waitFor();
  await list.getByTestId('module-card-hostcheck').waitFor();
  const cards = await list.locator('[data-module]').evaluateAll((els) => els.map((e) => e.dataset.module));
  assert.deepEqual(cards.sort(), names);
  for (const m of status.json.modules) {
    const card = list.getByTestId(`module-card-${m.name}`);
    assert.equal(await card.getByTestId('module-state').textContent(), m.state);
    assert.equal(await card.getByTestId('module-version').textContent(), `v${m.version}`);
  }
  // the example module's status figure (its note count) is on its card
  assert.match(await list.getByTestId('module-card-example').textContent(), /notes/);
  assert.equal(await page.getByTestId('app-version').textContent(), `v${status.json.version}`);
  assert.match(await page.getByTestId('app-uptime').textContent(), /^up \d/);
  // navigation: the six appliance modules plus the loaded extras
  for (const n of ['proxy', 'graph', 'dispatch', 'talos', 'partials', 'signing', 'example', 'hostcheck']) {
    await page.getByTestId(`nav-module-${n}`).waitFor();
  }
  await page.close();
});

test('a newly published event appears in the live feed', async () => {
  const page = await newPage();
  await page.goto(`${base}/`);
  const feed = page.getByTestId('event-feed');
  await page.locator('[data-testid="feed-status"][data-state="live"]').waitFor();

  const text = `browser test note ${Date.now()}`;
  const res = await api('POST', '/api/v1/example/notes', { text });
  assert.equal(res.status, 201, JSON.stringify(res.json));
  const id = res.json.id;

  // the event reaches the page over SSE, without a reload, within a few seconds
  const item = feed.locator('[data-testid="event-item"][data-event-type="example.noted"]', { hasText: text });
  await item.waitFor({ timeout: 5000 });
  const top = feed.getByTestId('event-item').first();
  assert.equal(await top.getAttribute('data-event-type'), 'example.noted');
  assert.match(await top.textContent(), new RegExp(`"id":${id}\\b`));

  // the event makes the overview refresh the module cards: the note count follows
  const st = await api('GET', '/api/v1/status');
  const notes = st.json.modules.find((m) => m.name === 'example').status.notes;
  await page
    .getByTestId('module-card-example')
    .locator('.figure', { hasText: 'notes' })
    .locator('dd', { hasText: new RegExp(`^${notes}$`) })
    .waitFor({ timeout: 5000 });

  await page.screenshot({ path: screenshot, fullPage: false });

  // the type filter hides what does not match and shows it again
  await page.getByTestId('feed-filter').first().fill('nothing.matches');
  await item.waitFor({ state: 'hidden' });
  await page.getByTestId('feed-filter').first().fill('example');
  await item.waitFor({ state: 'visible' });
  await page.close();
});

test('a module that is not loaded says how to load it', async () => {
  const page = await newPage();
  await page.goto(`${base}/#/m/talos`);
  const msg = page.getByTestId('module-not-loaded');
  await msg.waitFor();
  assert.match(
    (await msg.textContent()).replace(/\s+/g, ' '),
    /The talos module is not loaded in this appliance \(add it to modules in relengd\.conf\)/,
  );
  assert.equal(await page.getByTestId('nav-module-talos').getAttribute('aria-current'), 'page');
  // navigating to another absent module through the menu says the same for it
  await page.getByTestId('nav-module-signing').click();
  await page.getByTestId('module-not-loaded').filter({ hasText: 'The signing module is not loaded' }).waitFor();
  await page.close();
});

test('the example module page lists notes and adds one with a token', async () => {
  const tok = await api('POST', '/api/v1/tokens', { name: 'browser-writer', scopes: ['example:write'], expires_in: '1d' });
  assert.equal(tok.status, 201, JSON.stringify(tok.json));

  const page = await newPage({ token: tok.json.token });
  await page.goto(`${base}/#/m/example`);
  await page.getByTestId('example-note-form').waitFor();
  const existing = await api('GET', '/api/v1/example/notes?limit=500', null, null);
  assert.ok(existing.json.notes.length >= 1);
  const newest = existing.json.notes[existing.json.notes.length - 1];
  await page.locator(`[data-testid="example-note"][data-note-id="${newest.id}"]`).waitFor();

  const text = `added from the page ${Date.now()}`;
  await page.getByLabel('New note').fill(text);
  await page.getByRole('button', { name: 'Add note' }).click();
  await page.getByTestId('example-notes').getByText(text).waitFor();
  const list = await api('GET', '/api/v1/example/notes?limit=500', null, null);
  const stored = list.json.notes.find((n) => n.text === text);
  assert.ok(stored, 'the note was stored through the API');
  assert.equal(stored.author, 'browser-writer');
  await page.close();
});

test('without the scope the server message is shown', async () => {
  const page = await newPage(); // anonymous
  await page.goto(`${base}/#/m/example`);
  await page.getByLabel('New note').fill('should not be stored');
  await page.getByRole('button', { name: 'Add note' }).click();
  const err = page.getByTestId('example-note-error');
  await err.filter({ hasText: /\S/ }).waitFor();
  const direct = await api('POST', '/api/v1/example/notes', { text: 'x' }, null);
  assert.ok(direct.status === 401 || direct.status === 403);
  assert.ok((await err.textContent()).includes(direct.json.error.message));
  await page.close();
});

test('the token dialog, and the tokens page creating, showing once and revoking a token', async () => {
  // anonymous first: the page says an admin token is needed
  const page = await newPage();
  page.on('dialog', (d) => d.accept());
  await page.goto(`${base}/#/tokens`);
  await page.getByTestId('token-admin-needed').waitFor();
  assert.equal(await page.getByTestId('whoami').textContent(), 'anonymous');

  // the token dialog stores the admin token; the page reloads its data with it
  await page.getByTestId('token-button').click();
  await page.getByTestId('token-input').fill(adminToken);
  await page.getByTestId('token-save').click();
  await page.getByTestId('token-table').waitFor();
  await page.getByTestId('whoami').filter({ hasText: 'bootstrap-admin' }).waitFor();
  assert.equal(await page.evaluate(() => localStorage.getItem('relengd.token')), adminToken);

  await page.getByLabel('Name').fill('browser-made');
  await page.getByLabel('Scopes').fill('example:write, graph:*');
  await page.getByRole('button', { name: 'Create token' }).click();
  const secret = await page.getByTestId('token-secret').textContent();
  assert.match(secret, /^rd_[A-Za-z0-9_-]{43}$/);

  // the secret works, and the list shows the token without it
  const who = await api('GET', '/api/v1/whoami', null, secret);
  assert.equal(who.status, 200);
  const listed = await api('GET', '/api/v1/tokens');
  const tok = listed.json.tokens.find((t) => t.name === 'browser-made');
  assert.ok(tok);
  assert.deepEqual([...tok.scopes].sort(), ['example:write', 'graph:*']);
  const row = page.getByTestId(`token-row-${tok.id}`);
  await row.waitFor();
  assert.ok(!(await page.getByTestId('token-table').textContent()).includes(secret));

  await page.getByTestId(`token-revoke-${tok.id}`).click();
  await row.getByText('revoked').waitFor();
  const after = await api('GET', '/api/v1/whoami', null, secret);
  assert.equal(after.status, 401);
  await page.close();
});

test('the events page filters on the server and streams only matching events', async () => {
  const page = await newPage();
  await page.goto(`${base}/#/events`);
  const feed = page.getByTestId('events-page-feed');
  await page.locator('[data-testid="feed-status"][data-state="live"]').waitFor();
  await feed.locator('[data-event-type="example.noted"]').first().waitFor();

  // only hostcheck events: history and stream both come filtered by the server
  const onlyTypes = (prefix) =>
    page.waitForFunction((p) => {
      const items = [...document.querySelectorAll('[data-testid="events-page-feed"] [data-testid="event-item"]')];
      return items.length > 0 && items.every((e) => e.dataset.eventType.startsWith(p));
    }, prefix);
  await page.getByTestId('feed-filter').fill('hostcheck');
  await onlyTypes('hostcheck.');
  await page.locator('[data-testid="feed-status"][data-state="live"]').waitFor();
  const typesOf = () => feed.getByTestId('event-item').evaluateAll((els) => els.map((e) => e.dataset.eventType));
  assert.ok((await typesOf()).every((t) => t.startsWith('hostcheck.')), (await typesOf()).join(' '));
  const hidden = `filtered out ${Date.now()}`;
  assert.equal((await api('POST', '/api/v1/example/notes', { text: hidden })).status, 201);
  await page.waitForTimeout(1500); // live delivery takes well under this (see the overview test)
  assert.ok((await typesOf()).every((t) => t.startsWith('hostcheck.')), (await typesOf()).join(' '));

  // back to example: the note is in the history, and a new one streams in live
  await page.getByTestId('feed-filter').fill('example.noted');
  await onlyTypes('example.noted');
  await feed.locator('[data-testid="event-item"]', { hasText: hidden }).waitFor();
  await page.locator('[data-testid="feed-status"][data-state="live"]').waitFor();
  const live = `streamed ${Date.now()}`;
  assert.equal((await api('POST', '/api/v1/example/notes', { text: live })).status, 201);
  await feed.locator('[data-testid="event-item"]', { hasText: live }).waitFor({ timeout: 5000 });
  assert.ok((await typesOf()).every((t) => t === 'example.noted'));
  await page.close();
});

test('no page raised an error', () => {
  assert.deepEqual(pageErrors.filter((e) => !/status of 40[13]/.test(e)), []);
});
