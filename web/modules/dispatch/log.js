// SPDX-License-Identifier: MIT
// web/modules/dispatch/log.js -- the live log viewer: the run's log so far,
// then long-polls GET /api/v1/dispatch/runs/T/R/log?offset=N&wait=S for
// what comes next until X-Log-Complete says the run is over. Text goes in
// as text (a <pre>), never as HTML; the last KEEP bytes stay on the page.

import { getToken } from '../../api.js';
import { API, link } from './common.js';

const WAIT_S = 15;
const KEEP = 2 * 1024 * 1024;

export async function logView(root, ctx, spec) {
  const { h } = ctx;
  const [taskId, runId] = String(spec || '').split('/');
  const status = h('span', { class: 'badge badge-warn', 'data-testid': 'dispatch-log-status' }, 'loading');
  const pre = h('pre', { class: 'mono', 'data-testid': 'dispatch-log', 'aria-live': 'polite', style: 'white-space: pre-wrap; max-height: 70vh; overflow: auto;' });
  const info = h('p', { class: 'small muted', 'data-testid': 'dispatch-log-run' });
  const base = `${API}/runs/${encodeURIComponent(taskId || '')}/${encodeURIComponent(runId || '')}`;

  root.append(
    h(
      'section',
      { class: 'panel', 'aria-labelledby': 'dispatch-log-h' },
      h('div', { class: 'panel-head' }, h('h2', { id: 'dispatch-log-h' }, `Log of ${taskId}/${runId}`), status),
      info,
      h('p', { class: 'small' }, h('a', { href: `${base}/log`, 'data-testid': 'dispatch-log-download' }, 'download the whole log'), ' · ', h('a', { href: link({ view: 'queue' }) }, 'back to the queue')),
      pre,
    ),
  );

  let text = '';
  function add(chunk) {
    if (!chunk) return;
    const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    text += chunk;
    if (text.length > KEEP) text = text.slice(text.length - KEEP);
    pre.textContent = text;
    if (atBottom) pre.scrollTop = pre.scrollHeight;
  }

  async function fetchText(offset) {
    const headers = {};
    const token = getToken();
    if (token) headers.Authorization = `Bearer ${token}`;
    const res = await fetch(`${base}/log?offset=${offset}&wait=${WAIT_S}`, { headers, signal: ctx.signal, cache: 'no-store' });
    if (!res.ok) {
      let message = `HTTP ${res.status}`;
      try {
        const j = await res.json();
        message = (j && j.error && j.error.message) || message;
      } catch {
        // not JSON: keep the status
      }
      throw new Error(message);
    }
    return { body: await res.text(), next: Number(res.headers.get('X-Log-Offset')), complete: res.headers.get('X-Log-Complete') === '1' };
  }

  try {
    const run = await ctx.api.get(base, { signal: ctx.signal });
    info.textContent = `${run.label} on ${run.workerId || 'no worker yet'} · ${run.state}${run.result ? ` (${run.result}${run.exitCode !== null ? `, exit ${run.exitCode}` : ''})` : ''}`;
  } catch (err) {
    if (err.name !== 'AbortError') ctx.showError(err);
    status.textContent = 'unknown run';
    status.className = 'badge badge-bad';
    return;
  }
  let offset = 0;
  status.textContent = 'live';
  status.className = 'badge badge-ok';
  while (!ctx.signal.aborted) {
    let part;
    try {
      part = await fetchText(offset);
    } catch (err) {
      if (err.name === 'AbortError') return;
      status.textContent = 'connection lost, retrying';
      status.className = 'badge badge-warn';
      await new Promise((r) => setTimeout(r, 2000));
      continue;
    }
    add(part.body);
    offset = Number.isFinite(part.next) ? part.next : offset + part.body.length;
    if (part.complete) {
      status.textContent = 'complete';
      status.className = 'badge badge-ok';
      try {
        const run = await ctx.api.get(base, { signal: ctx.signal });
        info.textContent = `${run.label} on ${run.workerId || '–'} · ${run.state}${run.result ? ` (${run.result}${run.exitCode !== null ? `, exit ${run.exitCode}` : ''})` : ''}`;
      } catch {
        // the log is what matters here
      }
      return;
    }
    status.textContent = 'live';
    status.className = 'badge badge-ok';
  }
}
