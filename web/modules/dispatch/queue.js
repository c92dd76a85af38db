// SPDX-License-Identifier: MIT
// web/modules/dispatch/queue.js -- the queue view: per worker type the
// pending and running runs, the waiting workers, the oldest pending age and
// the pending -> claimed wait (p50/p99 of recent claims); then the pending
// runs in the order they will be handed out (priority, then FIFO across
// branches) and the latest results, each with a link to its log.

import { API, logLink, ms } from './common.js';

export async function queueView(root, ctx) {
  const { h, api, fmt } = ctx;
  const types = h('table', { class: 'table', 'data-testid': 'dispatch-queue' });
  const pending = h('table', { class: 'table', 'data-testid': 'dispatch-pending' });
  const recent = h('table', { class: 'table', 'data-testid': 'dispatch-recent' });

  root.append(
    h('section', { class: 'panel', 'aria-labelledby': 'dispatch-queue-h' }, h('div', { class: 'panel-head' }, h('h2', { id: 'dispatch-queue-h' }, 'Queue by worker type')), types),
    h('section', { class: 'panel', 'aria-labelledby': 'dispatch-pending-h' }, h('div', { class: 'panel-head' }, h('h2', { id: 'dispatch-pending-h' }, 'Pending, in claim order')), pending),
    h('section', { class: 'panel', 'aria-labelledby': 'dispatch-recent-h' }, h('div', { class: 'panel-head' }, h('h2', { id: 'dispatch-recent-h' }, 'Latest runs')), recent),
  );

  const head = (...cols) => h('thead', {}, h('tr', {}, ...cols.map((c) => h('th', { scope: 'col' }, c))));

  function runRow(r, testid) {
    const result = r.result ? `${r.result}${r.reason && r.reason !== r.result ? ` (${r.reason})` : ''}` : r.state;
    return h(
      'tr',
      { 'data-testid': testid, 'data-task-id': r.taskId },
      h('td', {}, r.label),
      h('td', { class: 'mono' }, `${r.taskId}/${r.runId}`),
      h('td', {}, r.workerType),
      h('td', {}, r.branch || '–'),
      h('td', {}, String(r.priority)),
      h('td', {}, r.claimedAt ? ms(r.claimedAt - r.pendingSince, fmt) : fmt.ago(r.pendingSince)),
      h('td', {}, r.workerId || '–'),
      h('td', {}, result),
      h('td', {}, r.state === 'pending' ? '' : h('a', { href: logLink(r.taskId, r.runId), 'data-testid': 'dispatch-log-link' }, 'log')),
    );
  }

  async function load() {
    const [q, p, done] = await Promise.all([
      api.get(`${API}/queue`, { signal: ctx.signal }),
      api.get(`${API}/runs?state=pending&limit=100`, { signal: ctx.signal }),
      api.get(`${API}/runs?limit=30`, { signal: ctx.signal }),
    ]);
    types.replaceChildren(
      head('Worker type', 'Pending', 'Running', 'Waiting workers', 'Workers', 'Oldest pending', 'Wait p50', 'Wait p99'),
      h(
        'tbody',
        {},
        ...(q.types || []).map((t) =>
          h(
            'tr',
            { 'data-testid': 'dispatch-queue-row', 'data-worker-type': t.workerType },
            h('td', {}, t.workerType),
            h('td', { 'data-testid': 'dispatch-queue-pending' }, String(t.pending)),
            h('td', {}, String(t.claimed)),
            h('td', {}, String(t.waiting)),
            h('td', {}, String(t.workers)),
            h('td', {}, t.oldestPendingAge === null ? '–' : ms(t.oldestPendingAge, fmt)),
            h('td', {}, t.waitSamples ? ms(t.waitP50, fmt) : '–'),
            h('td', {}, t.waitSamples ? ms(t.waitP99, fmt) : '–'),
          ),
        ),
      ),
    );
    const cols = ['Label', 'Run', 'Type', 'Branch', 'Priority', 'Wait', 'Worker', 'State', ''];
    pending.replaceChildren(head(...cols), h('tbody', {}, ...(p.runs || []).map((r) => runRow(r, 'dispatch-pending-row'))));
    recent.replaceChildren(head(...cols), h('tbody', {}, ...(done.runs || []).filter((r) => r.state !== 'pending').map((r) => runRow(r, 'dispatch-recent-row'))));
  }

  ctx.every(3000, () => load().catch((err) => err.name !== 'AbortError' && ctx.showError(err)));
  ctx.onEvent('task,dispatch', () => load().catch(() => {}));
  try {
    await load();
  } catch (err) {
    if (err.name !== 'AbortError') ctx.showError(err);
  }
}
