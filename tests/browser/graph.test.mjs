// SPDX-License-Identifier: MIT
// tests/browser/graph.test.mjs -- the graph module's dashboard in a real
// browser (run by tests/browser/run.sh against one daemon with every built
// module; skipped when graph is not loaded): the try chooser renders a
// template, a job toggled off is created inactive, the form submits and
// lands on the graph page; the DAG's states change live as a breakpoint is
// released from the task panel and (with dispatch loaded) as a worker
// completes and fails jobs; the push grid shows the failure and one click
// opens its log at the first error line; bulk actions on the graph list.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import path from 'node:path';

const base = process.env.RELENGD_URL;
const adminToken = process.env.RELENGD_ADMIN_TOKEN;
const modules = (process.env.RELENGD_MODULES || '').split(/\s+/);
const hasGraph = modules.includes('graph');
const hasDispatch = modules.includes('dispatch');
const require = createRequire(path.join(process.env.PLAYWRIGHT_DIR || process.cwd(), 'package.json'));
const { chromium } = require('playwright-core');

let browser;
const contexts = [];
const pageErrors = [];

async function api(method, p, body, token = adminToken, raw = false) {
  const res = await fetch(base + p, {
    method,
    headers: {
      Accept: 'application/json',
      ...(token ? { Authorization: `Bearer ${token}` } : {}),
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
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  context.setDefaultTimeout(10000);
  contexts.push(context);
  const page = await context.newPage();
  page.on('pageerror', (err) => pageErrors.push(`${page.url()}: ${err.message}`));
  await page.addInitScript((t) => localStorage.setItem('relengd.token', t), adminToken);
  return page;
}

// A worker over dispatch's API: claims the task labelled `label` (bounded).
async function claimLabel(label, workerType) {
  const deadline = Date.now() + 10000;
  while (Date.now() < deadline) {
    const r = await api('POST', '/api/v1/dispatch/claim', { workerId: 'browser-w', workerType, capacity: 1, wait: 1 });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    for (const t of r.json.tasks) {
      if (t.label === label) return t;
      // not ours: give it back as an intermittent exception (it is retried)
      await api('POST', `/api/v1/dispatch/runs/${t.taskId}/${t.runId}/report`, { state: 'exception', reason: 'intermittent-task' });
    }
  }
  throw new Error(`no claimable task ${label}`);
}

const TEMPLATE = {
  description: 'browser test template',
  parameters: {
    revision: { type: 'string', required: true },
    platforms: { type: 'list', default: ['linux64', 'win64'] },
  },
  graph: {
    name: 'browser {revision}',
    branch: 'browser',
    repository: 'https://hg.example.org/browser',
    revision: '{revision}',
    tasks: [
      { label: 'build-{platform}', forEach: { platform: 'platforms' }, workerType: 'browser-{platform}', platform: '{platform}', payload: { command: ['make'] } },
      { label: 'test-{platform}', forEach: { platform: 'platforms' }, workerType: 'browser-{platform}', platform: '{platform}', dependencies: ['build-{platform}'], payload: { command: ['test'] } },
      { label: 'gate', workerType: 'browser-misc', platform: 'all', breakpoint: true, payload: { command: ['true'] } },
    ],
  },
};

before(async () => {
  if (!hasGraph) return;
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
  });
  const put = await api('PUT', '/api/v1/graph/templates/browser-try', TEMPLATE);
  assert.equal(put.status, 200, JSON.stringify(put.json));
});

after(async () => {
  for (const c of contexts) await c.close();
  await browser?.close();
  assert.deepEqual(pageErrors, [], 'no uncaught errors in the pages');
});

let gid = null;

test('the try chooser renders a template, toggles a job and submits the graph', { skip: !hasGraph && 'graph module not loaded' }, async () => {
  const page = await newPage();
  await page.goto(`${base}/#/m/graph?view=try`);
  await page.getByTestId('graph-try').waitFor();
  await page.getByTestId('graph-try-template').selectOption('browser-try');
  await page.getByTestId('graph-try-param-revision').fill('abc123');
  await page.getByTestId('graph-try-preview').click();
  // the resulting graph: 2 platforms x (build, test) + gate, grouped by platform
  await page.locator('[data-testid="graph-try-job"]').nth(4).waitFor();
  assert.equal(await page.getByTestId('graph-try-job').count(), 5);
  assert.equal(await page.locator('[data-testid="graph-try-platform"][data-platform="win64"] [data-testid="graph-try-job"]').count(), 2);
  // a missing required parameter is named by the server
  await page.getByTestId('graph-try-param-revision').fill('');
  await page.getByTestId('graph-try-preview').click();
  await page.getByTestId('graph-try-error').filter({ hasText: 'revision' }).waitFor();
  await page.getByTestId('graph-try-param-revision').fill('abc123');
  await page.getByTestId('graph-try-preview').click();
  // untick the win64 test: created inactive
  await page.locator('[data-testid="graph-try-job"][data-label="test-win64"]').uncheck();
  await page.locator('[data-testid="graph-try-job"][data-label="test-win64"]:not(:checked)').waitFor();
  await page.getByTestId('graph-try-submit').click();
  await page.getByTestId('graph-page').waitFor();
  gid = await page.getByTestId('graph-page').getAttribute('data-graph-id');
  assert.ok(gid);
  await page.locator('[data-testid="graph-node"][data-label="test-win64"][data-state="inactive"]').waitFor();
  await page.locator('[data-testid="graph-node"][data-label="gate"][data-state="waiting"]').waitFor();
  await page.locator('[data-testid="graph-node"][data-label="build-linux64"][data-state="pending"]').waitFor();
  const g = await api('GET', `/api/v1/graph/graphs/${gid}`);
  assert.equal(g.json.template, 'browser-try');
  assert.equal(g.json.revision, 'abc123');
  assert.equal(g.json.tasks.find((t) => t.label === 'test-win64').state, 'inactive');
  await page.close();
});

test('the graph page follows states live and the task panel releases a breakpoint', { skip: !hasGraph && 'graph module not loaded' }, async () => {
  assert.ok(gid, 'the try chooser test made a graph');
  const page = await newPage();
  await page.goto(`${base}/#/m/graph?graph=${gid}`);
  await page.getByTestId('graph-dag').locator('[data-testid="graph-node"]').first().waitFor();
  // release the breakpoint from the task panel
  await page.locator('[data-testid="graph-node"][data-label="gate"]').click();
  await page.getByTestId('graph-task-panel').waitFor();
  await page.getByTestId('graph-task-release').click();
  await page.locator('[data-testid="graph-node"][data-label="gate"][data-state="completed"]').waitFor();
  if (hasDispatch) {
    // a worker elsewhere completes the linux64 build: the page follows without a reload
    const t = await claimLabel('build-linux64', 'browser-linux64');
    await page.locator('[data-testid="graph-node"][data-label="build-linux64"][data-state="running"]').waitFor();
    const rep = await api('POST', `/api/v1/dispatch/runs/${t.taskId}/${t.runId}/report`, { state: 'completed', reason: 'completed', exitCode: 0 });
    assert.equal(rep.status, 200, JSON.stringify(rep.json));
    await page.locator('[data-testid="graph-node"][data-label="build-linux64"][data-state="completed"]').waitFor();
    await page.locator('[data-testid="graph-node"][data-label="test-linux64"][data-state="pending"]').waitFor();
  }
  // edit and rerun the released breakpoint from the panel: it waits again,
  // with the edited payload
  await page.locator('[data-testid="graph-node"][data-label="gate"]').click();
  await page.getByTestId('graph-task-edit').click();
  await page.getByTestId('graph-task-payload-edit').fill('{"command": ["echo", "edited"]}');
  await page.getByTestId('graph-task-edit-submit').click();
  await page.locator('[data-testid="graph-node"][data-label="gate"][data-state="waiting"]').waitFor();
  const gate = (await api('GET', `/api/v1/graph/graphs/${gid}`)).json.tasks.find((x) => x.label === 'gate');
  const full = await api('GET', `/api/v1/graph/tasks/${gate.id}`);
  assert.deepEqual(full.json.payload.command, ['echo', 'edited']);
  await page.getByTestId('graph-task-release').click();
  await page.locator('[data-testid="graph-node"][data-label="gate"][data-state="completed"]').waitFor();
  // activate the inactive job from the panel (backfill)
  await page.locator('[data-testid="graph-node"][data-label="test-win64"]').click();
  await page.getByTestId('graph-task-activate').click();
  await page.locator('[data-testid="graph-node"][data-label="test-win64"][data-state="unscheduled"]').waitFor();
  await page.close();
});

test('a failed job in the push grid opens its log at the first error line', { skip: (!hasGraph || !hasDispatch) && 'graph and dispatch modules needed' }, async () => {
  const t = await claimLabel('build-win64', 'browser-win64');
  const log = await api('POST', `/api/v1/dispatch/runs/${t.taskId}/${t.runId}/log?offset=0`, 'step 1 ok\nstep 2 ok\nerror: the linker fell over\nmore noise\n', adminToken, true);
  assert.equal(log.status, 200, log.text);
  const bytes = 'linker output\n';
  const art = await fetch(`${base}/api/v1/dispatch/runs/${t.taskId}/${t.runId}/artifacts/linker.txt`, {
    method: 'PUT',
    headers: {
      Authorization: `Bearer ${adminToken}`,
      'Content-Type': 'application/octet-stream',
      'X-Content-SHA256': createHash('sha256').update(bytes).digest('hex'),
    },
    body: bytes,
  });
  assert.equal(art.status, 201, await art.text());
  const rep = await api('POST', `/api/v1/dispatch/runs/${t.taskId}/${t.runId}/report`, { state: 'failed', reason: 'failed', exitCode: 2 });
  assert.equal(rep.status, 200, JSON.stringify(rep.json));

  const page = await newPage();
  await page.goto(`${base}/#/m/graph`);
  const row = page.locator(`[data-testid="graph-push-row"][data-graph-id="${gid}"]`);
  const job = row.locator(`[data-testid="graph-job"][data-task-id="${t.taskId}"][data-state="failed"]`);
  await job.waitFor();
  assert.equal(await job.textContent(), '✗');
  await job.click();
  const line = page.getByTestId('graph-log-error-line');
  await line.waitFor();
  assert.equal(await line.textContent(), 'error: the linker fell over');
  assert.equal(await line.getAttribute('data-line'), '3');
  // the run's artifacts, from the same panel
  await page.getByTestId('graph-run-artifacts').first().click();
  await page.getByTestId('graph-artifacts').getByRole('link', { name: 'linker.txt' }).waitFor();
  await page.close();
});

test('the graph list filters and reruns failed jobs in bulk', { skip: (!hasGraph || !hasDispatch) && 'graph and dispatch modules needed' }, async () => {
  const page = await newPage();
  await page.goto(`${base}/#/m/graph`);
  await page.getByTestId('graph-filter-branch').fill('browser');
  await page.getByTestId('graph-filter-state').selectOption('running');
  await page.getByTestId('graph-filter-apply').click();
  const row = page.locator(`[data-testid="graph-row"][data-graph-id="${gid}"]`);
  await row.waitFor();
  await page.getByTestId('graph-filter-branch').fill('no-such-branch');
  await page.getByTestId('graph-filter-apply').click();
  await row.waitFor({ state: 'detached' });
  await page.getByTestId('graph-filter-branch').fill('browser');
  await page.getByTestId('graph-filter-apply').click();
  await row.getByTestId('graph-select').check();
  await page.getByTestId('graph-bulk-rerun').click();
  await page.getByTestId('graph-bulk-msg').filter({ hasText: 'Rerun 1 tasks in 1 graphs.' }).waitFor();
  const g = await api('GET', `/api/v1/graph/graphs/${gid}`);
  assert.equal(g.json.tasks.find((x) => x.label === 'build-win64').state, 'pending');
  await page.close();
});

test('a draft graph is edited as JSON before it is submitted', { skip: !hasGraph && 'graph module not loaded' }, async () => {
  const page = await newPage();
  await page.goto(`${base}/#/m/graph?view=try`);
  await page.getByTestId('graph-try-template').selectOption('browser-try');
  await page.getByTestId('graph-try-param-revision').fill('draft1');
  await page.getByTestId('graph-try-param-platforms').fill('linux64');
  await page.getByTestId('graph-try-preview').click();
  await page.locator('[data-testid="graph-try-job"]').nth(2).waitFor();
  await page.getByTestId('graph-try-edit').click();
  const draft = page.getByTestId('graph-try-draft');
  const graph = JSON.parse(await draft.inputValue());
  assert.equal(graph.tasks.length, 3);
  graph.name = 'edited draft';
  graph.tasks = graph.tasks.filter((t) => t.label !== 'gate');
  await draft.fill(JSON.stringify(graph));
  await page.getByTestId('graph-try-submit').click();
  await page.getByTestId('graph-page').waitFor();
  const id = await page.getByTestId('graph-page').getAttribute('data-graph-id');
  await page.getByTestId('graph-page').getByText('edited draft').waitFor();
  const g = await api('GET', `/api/v1/graph/graphs/${id}`);
  assert.equal(g.json.name, 'edited draft');
  assert.deepEqual(g.json.tasks.map((t) => t.label).sort(), ['build-linux64', 'test-linux64']);
  await page.close();
});
