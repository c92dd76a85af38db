// SPDX-License-Identifier: MIT
// web/modules/partials.js -- the partials module's page (contract in
// web/README.md): the diff cache's hit rate, bytes and time saved
// (GET /api/v1/partials/cache), a per-platform timing chart (average phase
// times of the recent finished jobs, stacked), the jobs with their phase
// timings (GET /api/v1/partials/jobs, detail on click), and a form that
// queues a job from two URLs (POST /api/v1/partials/jobs, scope
// partials:create). Follows partials.job.* events.

const LIMIT = 100; // jobs shown and charted
const PHASES = ['download', 'unpack', 'diff', 'pack', 'verify', 'sign'];
// one colour per phase, from the style sheet's palette (both schemes)
const PHASE_COLOURS = {
  download: 'var(--muted)',
  unpack: 'var(--warn)',
  diff: 'var(--accent)',
  pack: 'var(--ok)',
  verify: 'var(--border-strong)',
  sign: 'var(--bad)',
};
const SVG = 'http://www.w3.org/2000/svg';

function svg(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v !== null && v !== undefined) el.setAttribute(k, String(v));
  for (const c of children) el.append(c);
  return el;
}

export async function mount(root, ctx) {
  const { h, fmt, api } = ctx;
  const ms = (v) => (typeof v === 'number' ? (v >= 1000 ? `${(v / 1000).toFixed(1)} s` : `${v} ms`) : '–');
  const pct = (v) => (typeof v === 'number' ? `${(v * 100).toFixed(0)} %` : '–');

  // ---------------------------------------------------------- figures
  const figures = h('dl', { class: 'figures figures-wide', 'data-testid': 'partials-figures' });
  function figure(label, value, testid) {
    return h('div', { class: 'figure' }, h('dt', {}, label), h('dd', { 'data-testid': testid }, value));
  }
  function showFigures(doc) {
    const c = doc?.cache || {};
    const t = doc?.totals || {};
    figures.replaceChildren(
      figure('cache hit rate', pct(t.cache_hit_rate), 'partials-hit-rate'),
      figure('hits / misses', `${fmt.number(t.cache_hits ?? 0)} / ${fmt.number(t.cache_misses ?? 0)}`, 'partials-hits'),
      figure('bypassed (small)', fmt.number(t.cache_bypassed ?? 0), 'partials-bypassed'),
      figure('corrupt, regenerated', fmt.number(t.cache_corrupt ?? 0), 'partials-corrupt'),
      figure('bytes from cache', fmt.bytes(t.bytes_from_cache ?? 0), 'partials-bytes-saved'),
      figure('diff time saved', ms(t.ms_saved ?? 0), 'partials-time-saved'),
      figure('cache size', `${fmt.bytes(c.bytes ?? 0)} of ${fmt.bytes(c.max_bytes ?? 0)}`, 'partials-cache-size'),
      figure('cache entries', fmt.number(c.entries ?? 0), 'partials-cache-entries'),
      figure('jobs done / failed', `${fmt.number(t.done ?? 0)} / ${fmt.number(t.failed ?? 0)}`, 'partials-jobs-done'),
      figure('active jobs', fmt.number(t.active ?? 0), 'partials-jobs-active'),
    );
  }

  // ------------------------------------------------------------ chart
  const chartBox = h('div', { 'data-testid': 'partials-chart' });
  function showChart(jobs) {
    const per = new Map(); // platform -> {n, sums per phase}
    for (const j of jobs) {
      if (j.state !== 'done' || !j.phases) continue;
      const e = per.get(j.platform) || { n: 0, sums: {} };
      e.n++;
      for (const p of PHASES) e.sums[p] = (e.sums[p] || 0) + (j.phases[p] || 0);
      per.set(j.platform, e);
    }
    if (per.size === 0) {
      chartBox.replaceChildren(h('p', { class: 'muted' }, 'No finished jobs yet.'));
      return;
    }
    const rows = [...per.entries()].sort((a, b) => a[0].localeCompare(b[0]));
    const avg = rows.map(([platform, e]) => {
      const phases = PHASES.map((p) => [p, e.sums[p] / e.n]);
      return { platform, n: e.n, phases, total: phases.reduce((s, [, v]) => s + v, 0) };
    });
    const max = Math.max(1, ...avg.map((a) => a.total));
    const label = 110;
    const width = 640;
    const barH = 18;
    const gap = 8;
    const height = avg.length * (barH + gap) + 24;
    const chart = svg('svg', {
      viewBox: `0 0 ${width} ${height}`,
      width: '100%',
      role: 'img',
      'aria-label': 'average phase times per platform',
    });
    avg.forEach((a, i) => {
      const y = i * (barH + gap);
      chart.append(
        svg('text', { x: 0, y: y + barH - 4, 'font-size': 12, fill: 'currentColor' }, a.platform),
      );
      let x = label;
      for (const [p, v] of a.phases) {
        const w = ((width - label - 70) * v) / max;
        if (w <= 0) continue;
        const rect = svg('rect', {
          x,
          y,
          width: Math.max(w, 1),
          height: barH,
          style: `fill: ${PHASE_COLOURS[p]}`,
          'data-testid': 'partials-chart-bar',
          'data-platform': a.platform,
          'data-phase': p,
        });
        rect.append(svg('title', {}, `${a.platform} ${p}: ${ms(Math.round(v))} average over ${a.n} job(s)`));
        chart.append(rect);
        x += w;
      }
      chart.append(
        svg('text', { x: x + 6, y: y + barH - 4, 'font-size': 12, fill: 'currentColor' }, ms(Math.round(a.total))),
      );
    });
    // legend
    let lx = label;
    const ly = avg.length * (barH + gap) + 8;
    for (const p of PHASES) {
      chart.append(svg('rect', { x: lx, y: ly, width: 10, height: 10, style: `fill: ${PHASE_COLOURS[p]}` }));
      chart.append(svg('text', { x: lx + 14, y: ly + 9, 'font-size': 11, fill: 'currentColor' }, p));
      lx += 80;
    }
    chartBox.replaceChildren(chart);
  }

  // ------------------------------------------------------------- jobs
  const tbody = h('tbody', {});
  const table = h(
    'table',
    { class: 'table', 'data-testid': 'partials-jobs' },
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        ...['#', 'state', 'platform', 'locale', ...PHASES, 'hits / misses', 'size', ''].map((t) => h('th', {}, t)),
      ),
    ),
    tbody,
  );
  const empty = h('p', { class: 'muted' }, 'No jobs yet.');
  const detail = h('section', { class: 'panel', 'data-testid': 'partials-job-detail', hidden: true });

  function badge(state) {
    const tone = state === 'done' ? 'ok' : state === 'failed' ? 'bad' : 'warn';
    return h('span', { class: `badge badge-${tone}`, 'data-testid': 'partials-job-state' }, state);
  }

  function showDetail(j) {
    const s = j.stats || {};
    const rows = [
      ['platform / locale', `${j.platform} / ${j.locale}`],
      ['update number', String(j.update_number ?? 0)],
      ['channel / version', `${j.channel || '(from the to MAR)'} / ${j.version || '(from the to MAR)'}`],
      ['from', j.from?.url || `upload ${j.from?.upload || '?'}`],
      ['to', j.to?.url || `upload ${j.to?.upload || '?'}`],
      ['created', fmt.datetime(j.created_ms)],
      ['files', `${s.compared ?? 0} compared: ${s.unchanged ?? 0} unchanged, ${s.patched ?? 0} patched, ${s.full ?? 0} whole`],
      ['cache', `${s.cache_hits ?? 0} hits, ${s.cache_misses ?? 0} misses, ${s.cache_bypassed ?? 0} bypassed, ${s.cache_corrupt ?? 0} corrupt; ${fmt.bytes(s.bytes_from_cache ?? 0)} and ${ms(s.ms_saved ?? 0)} saved`],
    ];
    if (j.error) rows.push(['error', `${j.failed_phase}: ${j.error}`]);
    if (j.result) rows.push(['result', `${fmt.bytes(j.result.size)} · sha256 ${j.result.sha256} · ${j.result.signed ? 'signed' : 'unsigned'}`]);
    detail.replaceChildren(
      h('div', { class: 'panel-head' }, h('h2', {}, `Job #${j.id}`), badge(j.state)),
      h('dl', { class: 'figures figures-wide' }, ...rows.map(([k, v]) => figure(k, v, null))),
    );
    detail.hidden = false;
  }

  function row(j) {
    const s = j.stats || {};
    return h(
      'tr',
      { 'data-testid': 'partials-job-row', 'data-job-id': j.id },
      h('td', { class: 'mono' }, h('button', { type: 'button', class: 'btn btn-sm btn-ghost', onclick: () => showDetail(j) }, `#${j.id}`)),
      h('td', {}, badge(j.state)),
      h('td', {}, j.platform),
      h('td', {}, j.locale),
      ...PHASES.map((p) => h('td', { class: 'mono small', 'data-phase': p }, j.phases && p in j.phases ? ms(j.phases[p]) : '–')),
      h('td', { class: 'mono small' }, j.state === 'done' || j.state === 'failed' ? `${s.cache_hits ?? 0} / ${s.cache_misses ?? 0}` : '–'),
      h('td', { class: 'mono small' }, j.result ? fmt.bytes(j.result.size) : '–'),
      h(
        'td',
        { class: 'actions' },
        j.result ? h('a', { href: j.result.url, download: `partial-${j.id}.mar`, 'data-testid': 'partials-download' }, 'download') : '',
      ),
    );
  }

  // ------------------------------------------------------------- form
  const msg = h('p', { class: 'form-msg', role: 'alert', 'data-testid': 'partials-form-error' });
  const input = (id, label, placeholder, wide) =>
    h(
      'div',
      { class: wide ? 'field field-wide' : 'field' },
      h('label', { for: id }, label),
      h('input', { id, class: 'input', placeholder, 'data-testid': id, required: true }),
    );
  const form = h(
    'form',
    { class: 'panel form-grid', 'data-testid': 'partials-form' },
    h('h2', {}, 'Queue a partial from two complete MARs'),
    input('partials-from-url', 'from MAR URL', 'https://…/firefox-1.0.complete.mar', true),
    input('partials-to-url', 'to MAR URL', 'https://…/firefox-2.0.complete.mar', true),
    input('partials-platform', 'platform', 'linux64'),
    input('partials-locale', 'locale', 'en-US'),
    h('div', { class: 'field field-actions' }, h('button', { type: 'submit', class: 'btn btn-primary' }, 'Queue')),
    msg,
  );
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    msg.textContent = '';
    const v = (id) => form.querySelector(`#${id}`).value.trim();
    try {
      await api.post('/api/v1/partials/jobs', {
        from_url: v('partials-from-url'),
        to_url: v('partials-to-url'),
        platform: v('partials-platform'),
        locale: v('partials-locale'),
      });
      await refresh();
    } catch (err) {
      msg.textContent = api.isAuthError(err)
        ? `${err.message} — set a token with the scope partials:create (Set token, top right).`
        : err.message;
    }
  });

  // ------------------------------------------------------------ layout
  root.append(
    h('section', { class: 'panel' }, h('div', { class: 'panel-head' }, h('h2', {}, 'Diff cache')), figures),
    h('section', { class: 'panel' }, h('div', { class: 'panel-head' }, h('h2', {}, 'Average phase times per platform')), chartBox),
    h('section', { class: 'panel' }, h('div', { class: 'panel-head' }, h('h2', {}, 'Jobs, newest first')), empty, table),
    detail,
    form,
  );

  let pending = null;
  async function refresh() {
    if (pending) return pending;
    pending = (async () => {
      const [cache, list] = await Promise.all([
        api.get('/api/v1/partials/cache', { signal: ctx.signal }),
        api.get(`/api/v1/partials/jobs?limit=${LIMIT}`, { signal: ctx.signal }),
      ]);
      const jobs = list?.jobs || [];
      showFigures(cache);
      showChart(jobs);
      tbody.replaceChildren(...jobs.map(row));
      empty.hidden = jobs.length > 0;
      table.hidden = jobs.length === 0;
    })();
    try {
      await pending;
    } catch (err) {
      if (err.name !== 'AbortError') ctx.showError(err);
    } finally {
      pending = null;
    }
  }

  ctx.onEvent('partials.job', () => refresh());
  ctx.every(5000, () => refresh());
  await refresh();
}
