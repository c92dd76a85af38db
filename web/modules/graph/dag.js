// SPDX-License-Identifier: MIT
// web/modules/graph/dag.js -- one graph: its header (state, counts by
// state, end-to-end time, actions), the DAG drawn in SVG (columns by
// dependency depth, nodes coloured by state, updated live from task.* and
// graph.* events), the task list, and the task panel (payload, runs with
// wait/run times, log with its first error line, artifacts, and the
// actions rerun, edit-and-rerun, cancel, activate, release).

import { API, FAILED, STATE_ORDER, countsLine, link, showLog, stateStyle, svg, symbol } from './common.js';

const DRAW_MAX = 400; // larger graphs get the list only
const COL_W = 190;
const ROW_H = 34;
const NODE_W = 160;
const NODE_H = 24;

/** Columns by longest dependency path; rows in order within a column. */
function layout(tasks) {
  const byId = new Map(tasks.map((t) => [t.id, t]));
  const depth = new Map();
  // tasks come in index order; dependencies usually precede dependents, but
  // added tasks may not: iterate to a fixed point (bounded by the size)
  for (let pass = 0; pass < tasks.length + 1; pass++) {
    let changed = false;
    for (const t of tasks) {
      let d = 0;
      for (const dep of t.dependencies || []) if (byId.has(dep)) d = Math.max(d, (depth.get(dep) ?? 0) + 1);
      if (t.final) d = Math.max(d, ...[...depth.values()].map((v) => v + 1), 0);
      if (depth.get(t.id) !== d) {
        depth.set(t.id, d);
        changed = true;
      }
    }
    if (!changed) break;
  }
  const cols = [];
  for (const t of tasks) {
    const d = depth.get(t.id) ?? 0;
    (cols[d] ||= []).push(t);
  }
  const pos = new Map();
  cols.forEach((col, x) => col.forEach((t, y) => pos.set(t.id, { x: 10 + x * COL_W, y: 10 + y * ROW_H })));
  const height = Math.max(...cols.map((c) => c.length), 1) * ROW_H + 20;
  return { pos, width: cols.length * COL_W + 20, height };
}

export async function graphPage(root, ctx, gid) {
  const { h, api, fmt } = ctx;
  const q = new URLSearchParams(location.hash.split('?')[1] || '');
  let graph = null;
  let selected = q.get('task');
  const nodes = new Map(); // task id -> {g, rect, text}
  const rows = new Map(); // task id -> table row state cell

  const head = h('section', { class: 'panel', 'data-testid': 'graph-page', 'data-graph-id': gid });
  const dagBox = h('div', { class: 'panel', 'data-testid': 'graph-dag', style: 'overflow: auto; max-height: 60vh;' });
  const panel = h('section', { class: 'panel', 'data-testid': 'graph-task-panel', hidden: true });
  const list = h('table', { class: 'table', 'data-testid': 'graph-task-table' });
  const msg = h('p', { class: 'form-msg', role: 'alert', 'data-testid': 'graph-action-error' });
  root.append(
    h('p', {}, h('a', { href: link({}) }, '← all pushes')),
    head,
    msg,
    dagBox,
    panel,
    h('section', { class: 'panel' }, h('h2', {}, 'Tasks'), list),
  );

  async function act(fn) {
    msg.textContent = '';
    try {
      await fn();
      await reload();
    } catch (err) {
      msg.textContent = api.isAuthError(err)
        ? `${err.message} — set a token with the scope graph:operate (Set token, top right).`
        : err.message;
    }
  }

  function renderHead() {
    const g = graph;
    head.replaceChildren(
      h(
        'div',
        { class: 'panel-head' },
        h('h2', {}, g.name || `graph ${g.id}`),
        h('span', { class: 'graph-state', 'data-testid': 'graph-state', style: stateStyle(g.state === 'running' ? 'running' : g.state === 'completed' ? 'completed' : 'failed') }, g.state),
      ),
      h(
        'p',
        { class: 'small muted' },
        `${g.repository || '–'} · ${g.revision || '–'} · branch ${g.branch || '–'} · by ${g.owner || '–'} · submitted ${fmt.datetime(g.submittedMs)}`,
        g.durationMs != null ? ` · end to end ${fmt.duration(g.durationMs / 1000)}` : '',
      ),
      h('p', { 'data-testid': 'graph-counts' }, countsLine(h, g.counts)),
      h(
        'div',
        { class: 'toolbar' },
        h('button', { class: 'btn btn-sm', type: 'button', 'data-testid': 'graph-rerun-failed', onclick: () => act(() => api.post(`${API}/graphs/${gid}/rerun-failed`)) }, 'Rerun failed'),
        h('button', { class: 'btn btn-sm', type: 'button', 'data-testid': 'graph-activate-all', onclick: () => act(() => api.post(`${API}/graphs/${gid}/activate`, { pattern: '*' })) }, 'Activate all inactive'),
        g.state === 'running'
          ? h('button', { class: 'btn btn-sm btn-danger', type: 'button', 'data-testid': 'graph-cancel', onclick: () => act(() => api.post(`${API}/graphs/${gid}/cancel`)) }, 'Cancel graph')
          : null,
      ),
    );
  }

  function paintNode(id, state) {
    const n = nodes.get(id);
    if (n) {
      n.g.setAttribute('data-state', state);
      n.rect.setAttribute('style', stateStyle(state).replace(/background/g, 'fill').replace(/border-color/g, 'stroke').replace(/color: [^;]*;/, ''));
      n.title.textContent = `${n.label}: ${state}`;
      n.sym.textContent = symbol(state);
    }
    const r = rows.get(id);
    if (r) {
      r.textContent = `${symbol(state)} ${state}`;
      r.setAttribute('style', stateStyle(state));
      r.parentElement?.setAttribute('data-state', state);
    }
  }

  function renderDag() {
    nodes.clear();
    const tasks = graph.tasks || [];
    if (tasks.length > DRAW_MAX) {
      dagBox.replaceChildren(h('p', { class: 'muted' }, `${tasks.length} tasks: too many to draw; see the list below.`));
      return;
    }
    const { pos, width, height } = layout(tasks);
    const edges = svg('g', { stroke: 'currentColor', 'stroke-opacity': '0.35', fill: 'none' });
    for (const t of tasks) {
      const to = pos.get(t.id);
      for (const d of t.dependencies || []) {
        const from = pos.get(d);
        if (!from || !to) continue;
        edges.append(
          svg('path', {
            d: `M${from.x + NODE_W},${from.y + NODE_H / 2} C${from.x + NODE_W + 20},${from.y + NODE_H / 2} ${to.x - 20},${to.y + NODE_H / 2} ${to.x},${to.y + NODE_H / 2}`,
          }),
        );
      }
    }
    const layer = svg('g', {});
    for (const t of tasks) {
      const p = pos.get(t.id);
      const rect = svg('rect', { x: p.x, y: p.y, width: NODE_W, height: NODE_H, rx: 4, 'stroke-width': t.id === selected ? 3 : 1 });
      const title = svg('title', {}, `${t.label}: ${t.state}`);
      const sym = svg('text', { x: p.x + 6, y: p.y + 16, 'font-size': 12, fill: 'currentColor' }, symbol(t.state));
      const label = t.label.length > 20 ? `${t.label.slice(0, 19)}…` : t.label;
      const g = svg(
        'g',
        {
          'data-testid': 'graph-node',
          'data-task-id': t.id,
          'data-label': t.label,
          'data-state': t.state,
          tabindex: '0',
          role: 'button',
          'aria-label': `${t.label}: ${t.state}`,
          style: 'cursor: pointer;',
          onclick: () => selectTask(t.id),
          onkeydown: (ev) => {
            if (ev.key === 'Enter' || ev.key === ' ') selectTask(t.id);
          },
        },
        title,
        rect,
        sym,
        svg('text', { x: p.x + 22, y: p.y + 16, 'font-size': 12, fill: 'currentColor' }, label),
      );
      nodes.set(t.id, { g, rect, title, sym, label: t.label });
      layer.append(g);
    }
    dagBox.replaceChildren(svg('svg', { width, height, viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': 'task graph', style: 'color: var(--text)' }, edges, layer));
    for (const t of tasks) paintNode(t.id, t.state);
  }

  function renderList() {
    rows.clear();
    const body = h('tbody');
    for (const t of graph.tasks || []) {
      const st = h('td', { 'data-testid': 'graph-task-state' });
      rows.set(t.id, st);
      const lr = t.lastRun;
      body.append(
        h(
          'tr',
          { 'data-testid': 'graph-task-row', 'data-task-id': t.id, 'data-state': t.state },
          h('td', {}, h('a', { href: link({ graph: gid, task: t.id }), onclick: (ev) => { ev.preventDefault(); selectTask(t.id); } }, t.label)),
          st,
          h('td', {}, t.platform),
          h('td', { class: 'small' }, [t.inactive ? 'inactive ' : '', t.breakpoint ? 'breakpoint ' : '', t.final ? 'final' : '']),
          h('td', {}, String(t.runs)),
          h('td', { class: 'small' }, lr && lr.waitMs != null ? fmt.duration(lr.waitMs / 1000) : '–'),
          h('td', { class: 'small' }, lr && lr.runMs != null ? fmt.duration(lr.runMs / 1000) : '–'),
          h('td', {}, lr && FAILED.has(t.state) ? h('a', { href: link({ graph: gid, task: t.id, log: '1' }), 'data-testid': 'graph-task-log-link' }, 'log') : ''),
        ),
      );
    }
    list.replaceChildren(
      h('thead', {}, h('tr', {}, ['Label', 'State', 'Platform', 'Flags', 'Runs', 'Wait', 'Run', ''].map((c) => h('th', {}, c)))),
      body,
    );
    for (const t of graph.tasks || []) paintNode(t.id, t.state);
  }

  async function selectTask(id, openLog = false) {
    selected = id;
    for (const [tid, n] of nodes) n.rect.setAttribute('stroke-width', tid === id ? 3 : 1);
    history.replaceState(null, '', link({ graph: gid, task: id }));
    let t;
    try {
      t = await api.get(`${API}/tasks/${encodeURIComponent(id)}`, { signal: ctx.signal });
    } catch (err) {
      if (err.name !== 'AbortError') ctx.showError(err);
      return;
    }
    renderPanel(t, openLog);
  }

  function renderPanel(t, openLog) {
    const logBox = h('div', { 'data-testid': 'graph-log-box' });
    const artBox = h('div', { 'data-testid': 'graph-artifacts' });
    const editor = h('textarea', { id: 'graph-payload-edit', class: 'input mono', rows: '8', 'data-testid': 'graph-task-payload-edit', hidden: true });
    editor.value = JSON.stringify(t.payload, null, 2);
    const editBtn = h('button', { class: 'btn btn-sm', type: 'button', 'data-testid': 'graph-task-edit' }, 'Edit and rerun…');
    const editGo = h('button', { class: 'btn btn-sm btn-primary', type: 'button', 'data-testid': 'graph-task-edit-submit', hidden: true }, 'Rerun with this payload');
    editBtn.onclick = () => {
      editor.hidden = !editor.hidden;
      editGo.hidden = editor.hidden;
    };
    editGo.onclick = () =>
      act(async () => {
        let payload;
        try {
          payload = JSON.parse(editor.value);
        } catch {
          throw new Error('The payload is not valid JSON.');
        }
        await api.post(`${API}/tasks/${encodeURIComponent(t.id)}/rerun`, { payload });
        await selectTask(t.id);
      });
    const resolved = ['completed', 'failed', 'exception'].includes(t.state);
    const runs = h('tbody');
    for (const r of t.runs || []) {
      runs.append(
        h(
          'tr',
          { 'data-testid': 'graph-run-row', 'data-run-id': r.runId },
          h('td', {}, String(r.runId)),
          h('td', { style: stateStyle(r.state) }, r.state),
          h('td', { class: 'small' }, `${r.reasonCreated} → ${r.reasonResolved || '…'}`),
          h('td', { class: 'small' }, r.workerId || '–'),
          h('td', { class: 'small' }, r.waitMs != null ? fmt.duration(r.waitMs / 1000) : '–'),
          h('td', { class: 'small' }, r.runMs != null ? fmt.duration(r.runMs / 1000) : '–'),
          h(
            'td',
            {},
            h('a', { href: r.logUrl, 'data-testid': 'graph-run-log', onclick: (ev) => { ev.preventDefault(); showLog(h, logBox, r.logUrl, ctx.signal); } }, 'log'),
            ' ',
            h('a', { href: r.artifactsUrl, 'data-testid': 'graph-run-artifacts', onclick: (ev) => { ev.preventDefault(); loadArtifacts(artBox, r.artifactsUrl); } }, 'artifacts'),
          ),
        ),
      );
    }
    panel.hidden = false;
    panel.replaceChildren(
      h('div', { class: 'panel-head' }, h('h2', {}, `Task ${t.label}`), h('span', { 'data-testid': 'graph-task-panel-state', style: stateStyle(t.state) }, `${symbol(t.state)} ${t.state}`)),
      h('p', { class: 'small muted mono' }, `${t.id} · ${t.workerType} · requires ${t.requires} · retries ${t.retriesLeft}/${t.retries}${t.reason ? ` · ${t.reason}` : ''}`),
      h(
        'div',
        { class: 'toolbar' },
        resolved ? h('button', { class: 'btn btn-sm', type: 'button', 'data-testid': 'graph-task-rerun', onclick: () => act(async () => { await api.post(`${API}/tasks/${encodeURIComponent(t.id)}/rerun`); await selectTask(t.id); }) }, 'Rerun') : null,
        resolved ? editBtn : null,
        !resolved && t.state !== 'blocked' && t.state !== 'superseded'
          ? h('button', { class: 'btn btn-sm btn-danger', type: 'button', 'data-testid': 'graph-task-cancel', onclick: () => act(async () => { await api.post(`${API}/tasks/${encodeURIComponent(t.id)}/cancel`); await selectTask(t.id); }) }, 'Cancel')
          : null,
        t.state === 'inactive' ? h('button', { class: 'btn btn-sm btn-primary', type: 'button', 'data-testid': 'graph-task-activate', onclick: () => act(async () => { await api.post(`${API}/tasks/${encodeURIComponent(t.id)}/activate`); await selectTask(t.id); }) }, 'Activate') : null,
        t.state === 'waiting'
          ? [
              h('button', { class: 'btn btn-sm btn-primary', type: 'button', 'data-testid': 'graph-task-release', onclick: () => act(async () => { await api.post(`${API}/tasks/${encodeURIComponent(t.id)}/release`, { state: 'completed' }); await selectTask(t.id); }) }, 'Release (completed)'),
              h('button', { class: 'btn btn-sm btn-danger', type: 'button', 'data-testid': 'graph-task-release-failed', onclick: () => act(async () => { await api.post(`${API}/tasks/${encodeURIComponent(t.id)}/release`, { state: 'failed' }); await selectTask(t.id); }) }, 'Release as failed'),
            ]
          : null,
      ),
      h('label', { for: 'graph-payload-edit', class: 'small muted', hidden: true }, 'Payload'),
      editor,
      editGo,
      h('h3', {}, 'Payload'),
      h('pre', { class: 'mono', 'data-testid': 'graph-task-payload' }, JSON.stringify(t.payload, null, 2)),
      h('h3', {}, 'Runs'),
      (t.runs || []).length
        ? h('table', { class: 'table' }, h('thead', {}, h('tr', {}, ['Run', 'State', 'Reasons', 'Worker', 'Wait', 'Run time', ''].map((c) => h('th', {}, c)))), runs)
        : h('p', { class: 'muted' }, 'No run yet.'),
      h('p', { class: 'small muted' }, `Dependencies: ${(t.dependencies || []).map((d) => `${d.label} (${d.state})`).join(', ') || 'none'}. Dependents: ${(t.dependents || []).map((d) => `${d.label} (${d.state})`).join(', ') || 'none'}.`),
      artBox,
      logBox,
    );
    const last = (t.runs || [])[t.runs.length - 1];
    if (openLog && last) showLog(h, logBox, last.logUrl, ctx.signal);
  }

  async function loadArtifacts(box, url) {
    try {
      const res = await api.get(url, { signal: ctx.signal });
      const items = (res && res.artifacts) || [];
      box.replaceChildren(
        h('h3', {}, 'Artifacts'),
        items.length
          ? h('ul', {}, items.map((a) => h('li', {}, h('a', { href: a.url }, a.name), ` ${ctx.fmt.bytes(a.size)}`)))
          : h('p', { class: 'muted' }, 'No artifacts.'),
      );
    } catch (err) {
      if (err.name !== 'AbortError') box.replaceChildren(h('p', { class: 'notice' }, `Artifacts: ${err.message}`));
    }
  }

  async function reload() {
    try {
      graph = await api.get(`${API}/graphs/${encodeURIComponent(gid)}`, { signal: ctx.signal });
    } catch (err) {
      if (err.name === 'AbortError') return;
      if (err.status === 404) {
        head.replaceChildren(h('p', { class: 'notice', 'data-testid': 'graph-not-found' }, `No graph ${gid}.`));
        return;
      }
      ctx.showError(err);
      return;
    }
    renderHead();
    renderDag();
    renderList();
  }

  // live: task states paint at once; counts and the header follow (throttled)
  let refreshTimer = null;
  function refreshSoon() {
    if (refreshTimer) return;
    refreshTimer = setTimeout(async () => {
      refreshTimer = null;
      try {
        const g = await api.get(`${API}/graphs/${encodeURIComponent(gid)}`, { signal: ctx.signal });
        const known = new Set((graph?.tasks || []).map((t) => t.id));
        graph = g;
        renderHead();
        if ((g.tasks || []).some((t) => !known.has(t.id))) {
          renderDag();
          renderList();
        } else {
          for (const t of g.tasks || []) paintNode(t.id, t.state);
        }
      } catch (err) {
        if (err.name !== 'AbortError') ctx.showError(err);
      }
    }, 300);
  }
  ctx.onCleanup(() => clearTimeout(refreshTimer));
  ctx.onEvent('task,graph', (env) => {
    const d = env.data || {};
    if (d.graphId !== gid) return;
    if (d.taskId && d.state && STATE_ORDER.includes(d.state)) paintNode(d.taskId, d.state);
    refreshSoon();
  });

  await reload();
  if (selected && graph) await selectTask(selected, q.get('log') === '1');
}
