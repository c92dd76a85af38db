// SPDX-License-Identifier: MIT
// web/modules/graph/common.js -- what the graph module's views share: state
// colours and symbols (failures obvious without hovering: a red cell with a
// cross, blocked ones struck through), links between the views, an SVG
// element builder, and the log viewer that jumps to the first error line.

export const API = '/api/v1/graph';

// state -> [tone, symbol]; tone picks the colours from style.css variables
export const STATES = {
  unscheduled: ['idle', '·'],
  inactive: ['idle', '○'],
  pending: ['warn', '…'],
  running: ['run', '▶'],
  waiting: ['warn', '⏸'],
  completed: ['ok', '✓'],
  failed: ['bad', '✗'],
  exception: ['bad', '!'],
  blocked: ['bad', '⊘'],
  superseded: ['idle', '↷'],
};
export const STATE_ORDER = Object.keys(STATES);
export const FAILED = new Set(['failed', 'exception']);

export function tone(state) {
  return (STATES[state] || ['idle'])[0];
}
export function symbol(state) {
  return (STATES[state] || ['idle', '?'])[1];
}

/** Inline style for a state's cell: colours from style.css variables. */
export function stateStyle(state) {
  switch (tone(state)) {
    case 'ok':
      return 'background: var(--ok-soft); color: var(--ok); border-color: var(--ok);';
    case 'bad':
      return 'background: var(--bad); color: var(--panel); border-color: var(--bad); font-weight: 700;';
    case 'warn':
      return 'background: var(--warn-soft); color: var(--warn); border-color: var(--warn);';
    case 'run':
      return 'background: var(--accent-soft); color: var(--text); border-color: var(--accent);';
    default:
      return 'background: var(--bg); color: var(--muted); border-color: var(--border);';
  }
}

/** #/m/graph with a query (graph, task, log, view). */
export function link(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) if (v !== undefined && v !== null && v !== '') q.set(k, v);
  const s = q.toString();
  return s ? `#/m/graph?${s}` : '#/m/graph';
}

/** The query of the current hash (#/m/graph?graph=...). */
export function hashQuery() {
  const i = location.hash.indexOf('?');
  return new URLSearchParams(i < 0 ? '' : location.hash.slice(i + 1));
}

const SVG_NS = 'http://www.w3.org/2000/svg';
/** svg('rect', {x: 1}, children...) -- attributes as text, children as h() does. */
export function svg(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** A compact "✓ 12 ✗ 1 ..." line of counts by state. */
export function countsLine(h, counts) {
  const parts = [];
  for (const s of STATE_ORDER) {
    const n = counts ? counts[s] : 0;
    if (!n) continue;
    parts.push(
      h('span', { class: 'graph-count', title: `${n} ${s}`, style: stateStyle(s), 'data-state': s }, `${symbol(s)} ${n}`),
      ' ',
    );
  }
  return parts.length ? parts : [h('span', { class: 'muted' }, 'no tasks')];
}

// the first line that looks like an error: what a release engineer wants first
const ERROR_LINE = /(^|[^a-z])(error|fatal|failed|failure|exception|traceback|assert)/i;

/**
 * Shows a run's log (GET the dispatch log URL) in `box`, scrolled to and
 * marking the first error line. The log lives in dispatch; without it the
 * box says so.
 */
export async function showLog(h, box, url, signal) {
  box.replaceChildren(h('p', { class: 'muted' }, 'Loading the log…'));
  let text;
  try {
    // the dashboard's token (web/README.md: localStorage relengd.token)
    const token = localStorage.getItem('relengd.token');
    const res = await fetch(url, {
      signal,
      cache: 'no-store',
      headers: token ? { Authorization: `Bearer ${token}` } : {},
    });
    if (!res.ok) {
      box.replaceChildren(h('p', { class: 'notice' }, `No log (HTTP ${res.status}).`));
      return;
    }
    text = await res.text();
  } catch (err) {
    if (err.name !== 'AbortError') box.replaceChildren(h('p', { class: 'notice' }, 'The log cannot be fetched.'));
    return;
  }
  const lines = text.split('\n');
  const first = lines.findIndex((l) => ERROR_LINE.test(l));
  const pre = h('pre', { class: 'mono graph-log', 'data-testid': 'graph-log', tabindex: '0' });
  lines.forEach((l, i) => {
    const isErr = i === first;
    pre.append(
      h(
        'span',
        {
          class: isErr ? 'graph-log-error' : null,
          'data-testid': isErr ? 'graph-log-error-line' : null,
          'data-line': String(i + 1),
          style: isErr ? 'background: var(--bad-soft); color: var(--bad); font-weight: 700; display: block;' : 'display: block;',
        },
        l || ' ',
      ),
    );
  });
  box.replaceChildren(
    h(
      'p',
      { class: 'small muted' },
      first >= 0 ? `First error on line ${first + 1} of ${lines.length}.` : `${lines.length} lines, no error line found.`,
      ' ',
      h('a', { href: url, target: '_blank', rel: 'noopener' }, 'raw log'),
    ),
    pre,
  );
  const mark = pre.querySelector('[data-testid="graph-log-error-line"]');
  if (mark) mark.scrollIntoView({ block: 'center' });
}
