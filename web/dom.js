// SPDX-License-Identifier: MIT
// web/dom.js -- a tiny DOM builder and formatters shared by the pages and the
// module scripts. Text always goes in as text nodes (never innerHTML), so
// data from the API cannot inject markup.

/**
 * h('div', {class: 'card', 'data-testid': 'x', onclick: fn}, 'text', child, [more])
 * Attributes: class, on<event> (a function), true (present), false/null (absent);
 * everything else is set with setAttribute. Children: nodes, strings, numbers,
 * arrays (flattened); null/undefined/false are skipped.
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'value' && 'value' in el) el.value = v;
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

/** Appends children as h() does. Returns el. */
export function append(el, children) {
  for (const c of [children].flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** Replaces el's children. */
export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

const nf = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 });

export const fmt = {
  /** 93784 -> "1d 2h 3m" */
  duration(seconds) {
    let s = Math.max(0, Math.floor(Number(seconds) || 0));
    const d = Math.floor(s / 86400);
    s -= d * 86400;
    const hr = Math.floor(s / 3600);
    s -= hr * 3600;
    const m = Math.floor(s / 60);
    s -= m * 60;
    if (d) return `${d}d ${hr}h ${m}m`;
    if (hr) return `${hr}h ${m}m ${s}s`;
    if (m) return `${m}m ${s}s`;
    return `${s}s`;
  },
  /** numbers with separators; other values as text */
  number(n) {
    return typeof n === 'number' ? nf.format(n) : String(n);
  },
  /** 1536 -> "1.5 KiB" */
  bytes(n) {
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let v = Number(n) || 0;
    let i = 0;
    while (v >= 1024 && i < units.length - 1) {
      v /= 1024;
      i++;
    }
    return `${i ? v.toFixed(1) : v} ${units[i]}`;
  },
  /** ISO string or epoch milliseconds -> Date (or null) */
  date(t) {
    if (t === null || t === undefined || t === '') return null;
    const d = typeof t === 'number' ? new Date(t) : new Date(String(t));
    return Number.isNaN(d.getTime()) ? null : d;
  },
  /** "14:03:22" in local time; the full date goes in a title */
  time(t) {
    const d = fmt.date(t);
    return d ? d.toLocaleTimeString(undefined, { hour12: false }) : '–';
  },
  /** "2026-01-02 14:03" local */
  datetime(t) {
    const d = fmt.date(t);
    if (!d) return '–';
    const pad = (x) => String(x).padStart(2, '0');
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
  },
  /** "3m ago" */
  ago(t) {
    const d = fmt.date(t);
    if (!d) return '–';
    const s = Math.round((Date.now() - d.getTime()) / 1000);
    if (s < 0) return `in ${fmt.duration(-s)}`;
    if (s < 5) return 'just now';
    return `${fmt.duration(s).split(' ')[0]} ago`;
  },
  /** a compact one-line rendering of any JSON value */
  json(v) {
    if (v === undefined) return '';
    return typeof v === 'string' ? v : JSON.stringify(v);
  },
  /** "notes_total" -> "notes total" */
  label(key) {
    return String(key).replace(/[_.]+/g, ' ');
  },
};

/** A <time> element with the local time and the full timestamp as title. */
export function timeEl(t, style = 'time') {
  const d = fmt.date(t);
  return h(
    'time',
    { datetime: d ? d.toISOString() : null, title: d ? d.toString() : null },
    style === 'datetime' ? fmt.datetime(t) : style === 'ago' ? fmt.ago(t) : fmt.time(t),
  );
}

/** A state badge: started / failed / ... */
export function stateBadge(state, testid) {
  const s = String(state || 'unknown');
  const tone =
    s === 'started' || s === 'active' || s === 'live'
      ? 'ok'
      : s === 'failed' || s === 'revoked' || s === 'down'
        ? 'bad'
        : 'warn';
  return h('span', { class: `badge badge-${tone}`, 'data-testid': testid || null }, s);
}

/**
 * The figures of a module status object as [label, text] pairs, at most max:
 * top-level scalars first, then small objects of scalars flattened one level
 * ("tasks.pending"), then bigger objects and arrays as counts.
 */
export function statusFigures(status, max = 8) {
  const scalar = (v) => v === null || typeof v !== 'object';
  const text = (v) => {
    if (v === null || v === undefined) return '–';
    if (typeof v === 'number') return fmt.number(v);
    if (typeof v === 'boolean') return v ? 'yes' : 'no';
    return String(v);
  };
  const first = [];
  const second = [];
  const third = [];
  for (const [k, v] of Object.entries(status || {})) {
    if (scalar(v)) first.push([k, text(v)]);
    else if (Array.isArray(v)) third.push([k, `${v.length} item${v.length === 1 ? '' : 's'}`]);
    else {
      const entries = Object.entries(v);
      if (entries.length <= 4 && entries.every(([, x]) => scalar(x))) {
        for (const [k2, x] of entries) second.push([`${k}.${k2}`, text(x)]);
      } else {
        third.push([k, `${entries.length} entr${entries.length === 1 ? 'y' : 'ies'}`]);
      }
    }
  }
  return [...first, ...second, ...third].slice(0, max);
}
