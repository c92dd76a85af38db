// SPDX-License-Identifier: MIT
// web/modules/dispatch/workers.js -- the workers view: every worker that
// ever claimed, with its state (waiting in a claim, busy, online, offline),
// current runs (links to their live logs), speed score, the label and
// branch it ran last, and a quarantine toggle (POST/DELETE
// /api/v1/dispatch/workers/ID/quarantine, scope dispatch:admin).

import { API, logLink } from './common.js';

export async function workersView(root, ctx) {
  const { h, api, fmt } = ctx;
  const table = h('table', { class: 'table', 'data-testid': 'dispatch-workers' });
  const empty = h('p', { class: 'muted', 'data-testid': 'dispatch-workers-empty', hidden: true }, 'No worker has claimed yet. Start relengd-worker on a machine (worker/README.md).');
  const msg = h('p', { class: 'form-msg', role: 'alert', 'data-testid': 'dispatch-error' });
  const summary = h('p', { class: 'small muted', 'data-testid': 'dispatch-workers-summary' });
  const open = new Set(); // workers whose quarantine form is open

  root.append(
    h(
      'section',
      { class: 'panel', 'aria-labelledby': 'dispatch-workers-h' },
      h('div', { class: 'panel-head' }, h('h2', { id: 'dispatch-workers-h' }, 'Workers'), summary),
      msg,
      empty,
      table,
    ),
  );

  function state(w) {
    if (w.waiting) return ['waiting', 'ok'];
    if (w.current && w.current.length) return ['busy', 'ok'];
    if (w.online) return ['online', 'ok'];
    return ['offline', 'bad'];
  }

  async function act(fn) {
    msg.textContent = '';
    try {
      await fn();
      await load();
    } catch (err) {
      msg.textContent = api.isAuthError(err) ? `${err.message} — this needs a token with the scope dispatch:admin (Set token, top right).` : err.message;
    }
  }

  function quarantineCell(w) {
    const id = w.workerId;
    const q = w.quarantine;
    const cell = h('td', { 'data-testid': 'dispatch-quarantine' });
    if (q) {
      cell.append(
        h('span', { class: 'badge badge-bad', 'data-testid': 'dispatch-quarantine-status' }, 'quarantined'),
        ' ',
        h('span', { class: 'small' }, `${q.reason} (by ${q.by}${q.until ? `, until ${fmt.datetime(q.until)}` : ''})`),
        ' ',
        h('button', { class: 'btn btn-sm', type: 'button', 'data-testid': 'dispatch-quarantine-toggle', onclick: () => act(() => api.del(`${API}/workers/${encodeURIComponent(id)}/quarantine`)) }, 'Lift quarantine'),
      );
      return cell;
    }
    if (!open.has(id)) {
      cell.append(
        h('button', { class: 'btn btn-sm', type: 'button', 'data-testid': 'dispatch-quarantine-toggle', onclick: () => { open.add(id); render(lastWorkers); } }, 'Quarantine…'),
      );
      return cell;
    }
    const inputId = `dispatch-q-reason-${id}`;
    const reason = h('input', { id: inputId, class: 'input', required: true, maxlength: '200', placeholder: 'why (shown to everyone)', 'data-testid': 'dispatch-quarantine-reason' });
    cell.append(
      h(
        'form',
        {
          class: 'toolbar',
          onsubmit: (ev) => {
            ev.preventDefault();
            const text = reason.value.trim();
            if (!text) {
              msg.textContent = 'Give a reason for the quarantine.';
              return;
            }
            open.delete(id);
            act(() => api.post(`${API}/workers/${encodeURIComponent(id)}/quarantine`, { reason: text }));
          },
        },
        h('label', { for: inputId, class: 'small' }, 'Reason'),
        reason,
        h('button', { class: 'btn btn-sm btn-danger', type: 'submit', 'data-testid': 'dispatch-quarantine-submit' }, 'Quarantine'),
        h('button', { class: 'btn btn-sm', type: 'button', onclick: () => { open.delete(id); render(lastWorkers); } }, 'Cancel'),
      ),
    );
    setTimeout(() => reason.focus(), 0);
    return cell;
  }

  let lastWorkers = [];
  function render(workers) {
    lastWorkers = workers;
    // keep an open quarantine form (and what is typed in it) across refreshes
    const typing = table.querySelector('input[data-testid="dispatch-quarantine-reason"]');
    if (typing && document.activeElement === typing) return;
    const rows = workers.map((w) => {
      const [s, tone] = state(w);
      const current = (w.current || []).map((r, i) => [i ? ', ' : '', h('a', { href: logLink(r.taskId, r.runId), 'data-testid': 'dispatch-current-run' }, `${r.label} (${r.taskId}/${r.runId})`)]).flat();
      return h(
        'tr',
        { 'data-testid': 'dispatch-worker-row', 'data-worker-id': w.workerId },
        h('td', { class: 'mono' }, w.workerId),
        h('td', {}, w.workerType),
        h('td', {}, h('span', { class: `badge badge-${tone}`, 'data-testid': 'dispatch-worker-state' }, s), ' ', h('span', { class: 'small muted', title: fmt.datetime(w.lastSeen) }, fmt.ago(w.lastSeen))),
        h('td', {}, current.length ? current : '–'),
        h('td', { 'data-testid': 'dispatch-worker-speed' }, Number(w.speed).toFixed(2)),
        h('td', {}, w.lastLabel ? `${w.lastLabel}${w.lastBranch ? ` @ ${w.lastBranch}` : ''}` : '–'),
        h('td', {}, String(w.runs)),
        quarantineCell(w),
      );
    });
    table.replaceChildren(
      h('thead', {}, h('tr', {}, ...['Worker', 'Type', 'State', 'Current', 'Speed', 'Last label @ branch', 'Runs', 'Quarantine'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, ...rows),
    );
    empty.hidden = workers.length > 0;
    table.hidden = workers.length === 0;
    const online = workers.filter((w) => w.online).length;
    const q = workers.filter((w) => w.quarantine).length;
    summary.textContent = `${workers.length} worker${workers.length === 1 ? '' : 's'}, ${online} online, ${q} quarantined`;
  }

  async function load() {
    const data = await api.get(`${API}/workers`, { signal: ctx.signal });
    render((data && data.workers) || []);
  }

  ctx.every(3000, () => load().catch((err) => err.name !== 'AbortError' && ctx.showError(err)));
  ctx.onEvent('dispatch,task', () => load().catch(() => {}));
  try {
    await load();
  } catch (err) {
    if (err.name !== 'AbortError') ctx.showError(err);
  }
}
