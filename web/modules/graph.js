// SPDX-License-Identifier: MIT
// web/modules/graph.js -- the graph module's page (contract in
// web/README.md). Three views, chosen by the hash query:
//   #/m/graph                 the push grid (one row per graph, newest
//                             first, jobs as coloured symbols grouped by
//                             platform; a failed job links straight to the
//                             first error line of its log) and the graph
//                             list (filters, counts by state, bulk actions)
//   #/m/graph?graph=ID[&task=T][&log=1]   one graph (graph/dag.js)
//   #/m/graph?view=try        the try chooser (graph/try.js)
// Everything reads /api/v1/graph; live views follow graph.* and task.*
// events.

import { API, FAILED, countsLine, hashQuery, link, stateStyle, symbol } from './graph/common.js';
import { graphPage } from './graph/dag.js';
import { tryChooser } from './graph/try.js';

const GRID_ROWS = 20;

export async function mount(root, ctx) {
  const q = hashQuery();
  const nav = ctx.h(
    'nav',
    { class: 'toolbar', 'aria-label': 'graph views' },
    ctx.h('a', { class: 'btn btn-sm', href: link({}), 'aria-current': !q.get('graph') && !q.get('view') ? 'page' : null }, 'Pushes'),
    ctx.h('a', { class: 'btn btn-sm', href: link({ view: 'try' }), 'data-testid': 'graph-nav-try', 'aria-current': q.get('view') === 'try' ? 'page' : null }, 'Try chooser'),
  );
  root.append(nav);
  if (q.get('graph')) return graphPage(root, ctx, q.get('graph'));
  if (q.get('view') === 'try') return tryChooser(root, ctx);
  return overview(root, ctx);
}

async function overview(root, ctx) {
  const { h, api, fmt } = ctx;
  const selected = new Set();
  const grid = h('div', { 'data-testid': 'graph-grid', 'aria-live': 'polite' });
  const branch = h('input', { id: 'graph-filter-branch', class: 'input', 'data-testid': 'graph-filter-branch', placeholder: 'any' });
  const repo = h('input', { id: 'graph-filter-repository', class: 'input', 'data-testid': 'graph-filter-repository', placeholder: 'any' });
  const state = h(
    'select',
    { id: 'graph-filter-state', class: 'input', 'data-testid': 'graph-filter-state' },
    ['', 'running', 'completed', 'failed', 'canceled'].map((s) => h('option', { value: s }, s || 'any')),
  );
  const list = h('table', { class: 'table', 'data-testid': 'graph-list' });
  const bulkMsg = h('p', { class: 'form-msg', role: 'alert', 'data-testid': 'graph-bulk-msg' });
  const bulkRerun = h('button', { class: 'btn btn-sm', type: 'button', 'data-testid': 'graph-bulk-rerun', disabled: true }, 'Rerun all failed');
  const bulkActivate = h('button', { class: 'btn btn-sm', type: 'button', 'data-testid': 'graph-bulk-activate', disabled: true }, 'Activate all inactive');

  root.append(
    h(
      'section',
      { class: 'panel', 'aria-labelledby': 'graph-grid-h' },
      h('div', { class: 'panel-head' }, h('h2', { id: 'graph-grid-h' }, 'Pushes, newest first')),
      h('p', { class: 'small muted' }, 'Each symbol is a job: ✓ completed, ✗ failed, ! exception, ⊘ blocked, ▶ running, … pending, ⏸ waiting, ○ inactive. A failed job opens its log at the first error line.'),
      grid,
    ),
    h(
      'section',
      { class: 'panel', 'aria-labelledby': 'graph-list-h' },
      h('div', { class: 'panel-head' }, h('h2', { id: 'graph-list-h' }, 'Graphs')),
      h(
        'form',
        { class: 'form-grid', onsubmit: (ev) => { ev.preventDefault(); loadList(); } },
        h('div', { class: 'field' }, h('label', { for: 'graph-filter-branch' }, 'Branch'), branch),
        h('div', { class: 'field' }, h('label', { for: 'graph-filter-repository' }, 'Repository'), repo),
        h('div', { class: 'field' }, h('label', { for: 'graph-filter-state' }, 'State'), state),
        h('div', { class: 'field field-actions' }, h('button', { class: 'btn', type: 'submit', 'data-testid': 'graph-filter-apply' }, 'Filter')),
      ),
      h('div', { class: 'toolbar' }, bulkRerun, bulkActivate, h('span', { class: 'small muted' }, 'on the selected graphs')),
      bulkMsg,
      list,
    ),
  );

  function jobCell(g, t) {
    const failed = FAILED.has(t.state);
    const attrs = {
      class: 'graph-job',
      'data-testid': 'graph-job',
      'data-task-id': t.id,
      'data-state': t.state,
      title: `${t.label}: ${t.state}`,
      'aria-label': `${t.label}: ${t.state}`,
      style: `${stateStyle(t.state)} display: inline-block; min-width: 1.6em; text-align: center; margin: 1px; padding: 0 3px; border: 1px solid; border-radius: 3px; text-decoration: none;${t.state === 'blocked' ? ' text-decoration: line-through;' : ''}`,
      href: link(failed ? { graph: g.id, task: t.id, log: '1' } : { graph: g.id, task: t.id }),
    };
    return h('a', attrs, symbol(t.state));
  }

  function gridRow(g) {
    const groups = new Map();
    for (const t of g.jobs || []) {
      if (!groups.has(t.platform)) groups.set(t.platform, []);
      groups.get(t.platform).push(t);
    }
    const nFailed = (g.counts?.failed || 0) + (g.counts?.exception || 0);
    return h(
      'div',
      { class: 'graph-push', 'data-testid': 'graph-push-row', 'data-graph-id': g.id, 'data-state': g.state, style: 'display: flex; gap: 12px; align-items: baseline; padding: 4px 0; border-bottom: 1px solid var(--border); flex-wrap: wrap;' },
      h(
        'div',
        { style: 'min-width: 16em;' },
        h('a', { href: link({ graph: g.id }), 'data-testid': 'graph-push-link' }, g.name || g.id),
        h('div', { class: 'small muted' }, `${g.branch || '–'} · ${g.revision ? String(g.revision).slice(0, 12) : '–'} · ${fmt.ago(g.submittedMs)}`),
        nFailed ? h('div', { class: 'small', style: 'color: var(--bad); font-weight: 700;' }, `${nFailed} failed`) : null,
      ),
      [...groups].map(([p, ts]) => h('div', { class: 'graph-platform', 'data-platform': p }, h('span', { class: 'small muted mono' }, `${p} `), ts.map((t) => jobCell(g, t)))),
    );
  }

  async function loadGrid() {
    try {
      const res = await api.get(`${API}/graphs?include=jobs&limit=${GRID_ROWS}`, { signal: ctx.signal });
      const graphs = (res && res.graphs) || [];
      grid.replaceChildren(...(graphs.length ? graphs.map(gridRow) : [h('p', { class: 'muted' }, 'No graphs yet: submit one, or use the try chooser.')]));
    } catch (err) {
      if (err.name !== 'AbortError') ctx.showError(err);
    }
  }

  function updateBulk() {
    bulkRerun.disabled = bulkActivate.disabled = selected.size === 0;
  }

  async function loadList() {
    try {
      const res = await api.get(api.withQuery(`${API}/graphs`, { branch: branch.value.trim(), repository: repo.value.trim(), state: state.value, limit: 100 }), { signal: ctx.signal });
      const graphs = (res && res.graphs) || [];
      for (const id of [...selected]) if (!graphs.some((g) => g.id === id)) selected.delete(id);
      updateBulk();
      list.replaceChildren(
        h('thead', {}, h('tr', {}, ['', 'Graph', 'Branch', 'Repository', 'State', 'Tasks by state', 'Submitted', 'End to end'].map((c) => h('th', {}, c)))),
        h(
          'tbody',
          {},
          graphs.map((g) =>
            h(
              'tr',
              { 'data-testid': 'graph-row', 'data-graph-id': g.id, 'data-state': g.state },
              h(
                'td',
                {},
                h('input', {
                  type: 'checkbox',
                  'aria-label': `select ${g.name || g.id}`,
                  'data-testid': 'graph-select',
                  checked: selected.has(g.id),
                  onchange: (ev) => {
                    if (ev.target.checked) selected.add(g.id);
                    else selected.delete(g.id);
                    updateBulk();
                  },
                }),
              ),
              h('td', {}, h('a', { href: link({ graph: g.id }) }, g.name || g.id)),
              h('td', {}, g.branch || '–'),
              h('td', { class: 'small' }, g.repository || '–'),
              h('td', { style: stateStyle(g.state === 'running' ? 'running' : g.state === 'completed' ? 'completed' : 'failed') }, g.state),
              h('td', {}, countsLine(h, g.counts)),
              h('td', { class: 'small' }, fmt.datetime(g.submittedMs)),
              h('td', { class: 'small' }, g.durationMs != null ? fmt.duration(g.durationMs / 1000) : '–'),
            ),
          ),
        ),
      );
    } catch (err) {
      if (err.name !== 'AbortError') ctx.showError(err);
    }
  }

  async function bulk(what) {
    bulkMsg.textContent = '';
    let n = 0;
    const errors = [];
    for (const id of selected) {
      try {
        const res =
          what === 'rerun'
            ? await api.post(`${API}/graphs/${encodeURIComponent(id)}/rerun-failed`)
            : await api.post(`${API}/graphs/${encodeURIComponent(id)}/activate`, { pattern: '*' });
        n += (res.tasks || []).length;
      } catch (err) {
        errors.push(`${id}: ${err.message}`);
      }
    }
    bulkMsg.textContent = `${what === 'rerun' ? 'Rerun' : 'Activated'} ${n} tasks in ${selected.size} graphs.${errors.length ? ` ${errors.join('; ')}` : ''}`;
    await Promise.all([loadGrid(), loadList()]);
  }
  bulkRerun.addEventListener('click', () => bulk('rerun'));
  bulkActivate.addEventListener('click', () => bulk('activate'));

  // live: any graph or task change refreshes the grid and the list (throttled)
  let timer = null;
  ctx.onCleanup(() => clearTimeout(timer));
  ctx.onEvent('graph,task', () => {
    if (timer) return;
    timer = setTimeout(() => {
      timer = null;
      loadGrid();
      loadList();
    }, 500);
  });
  await Promise.all([loadGrid(), loadList()]);
}
