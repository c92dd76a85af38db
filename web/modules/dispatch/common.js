// SPDX-License-Identifier: MIT
// web/modules/dispatch/common.js -- helpers shared by the dispatch views:
// links inside the page, the hash query, a run's log link.

export const API = '/api/v1/dispatch';

/** The query part of the hash (#/m/dispatch?view=queue). */
export function hashQuery() {
  const hash = window.location.hash || '';
  const i = hash.indexOf('?');
  return new URLSearchParams(i >= 0 ? hash.slice(i + 1) : '');
}

/** A link to a view of this page: link({view: 'queue'}), link({log: 'task/0'}). */
export function link(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null) q.set(k, String(v));
  const s = q.toString();
  return `#/m/dispatch${s ? `?${s}` : ''}`;
}

/** The log viewer's link for a run. */
export function logLink(taskId, runId) {
  return link({ log: `${taskId}/${runId}` });
}

/** Milliseconds as "850 ms", "4.2 s", "3m 10s". */
export function ms(v, fmt) {
  if (v === null || v === undefined || Number.isNaN(Number(v))) return '–';
  const n = Number(v);
  if (n < 1000) return `${Math.round(n)} ms`;
  if (n < 60000) return `${(n / 1000).toFixed(1)} s`;
  return fmt.duration(n / 1000);
}
