// SPDX-License-Identifier: MIT
// web/modules/proxy.js -- the proxy module's page (contract in web/README.md):
// hit ratio and bandwidth saved (figures, and a chart of both over the time
// this page has been open, sampled from GET /api/v1/proxy/stats), per-backend
// counters, downloads in flight with progress (GET /api/v1/proxy/inflight),
// the hottest and biggest objects (GET /api/v1/proxy/objects), and purge by
// URL or prefix (POST /api/v1/proxy/purge, scope proxy:purge).

const POLL_MS = 2000;
const KEEP_SAMPLES = 180; // 6 minutes at 2 s
const SVG = 'http://www.w3.org/2000/svg';

function pct(x) {
  return `${(100 * (x || 0)).toFixed(1)} %`;
}

// An SVG element with attributes (the DOM builder makes HTML elements).
function svg(tag, attrs = {}) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

export async function mount(root, ctx) {
  const { h, fmt, api } = ctx;
  const samples = []; // {t, ratio, saved}

  // ---- figures
  function figure(id, label) {
    const value = h('div', { class: 'figure-value', 'data-testid': `proxy-${id}` }, '–');
    return { el: h('div', { class: 'card' }, h('div', { class: 'muted small' }, label), value), value };
  }
  const fRatio = figure('hit-ratio', 'Hit ratio (requests)');
  const fByteRatio = figure('byte-ratio', 'Hit ratio (bytes)');
  const fSaved = figure('saved', 'Bandwidth saved');
  const fCache = figure('cache-size', 'Cache size');
  const fObjects = figure('objects', 'Cached objects');
  const fInflight = figure('inflight-count', 'Downloads in flight');
  const disk = h('p', { class: 'notice', hidden: true, 'data-testid': 'proxy-disk-full' },
    'The cache disk is full: caching is stopped, requests are passed through.');

  // ---- chart: hit ratio (line, 0..100 %) and bytes saved per interval (bars)
  const W = 600;
  const H = 120;
  const chart = svg('svg', {
    viewBox: `0 0 ${W} ${H}`,
    width: '100%',
    height: H,
    role: 'img',
    'aria-label': 'Hit ratio and bandwidth saved over time',
    'data-testid': 'proxy-chart',
  });
  const bars = svg('g', { fill: 'var(--ok, #2e7d32)', opacity: '0.35' });
  const line = svg('polyline', { fill: 'none', stroke: 'var(--accent, #1565c0)', 'stroke-width': 2 });
  chart.append(svg('rect', { x: 0, y: 0, width: W, height: H, fill: 'none', stroke: 'currentColor', opacity: '0.2' }), bars, line);
  const chartNote = h('p', { class: 'small muted' },
    'Line: hit ratio by requests since the daemon started (0–100 %). Bars: bytes saved in each interval. Sampled every 2 s while this page is open.');

  function drawChart() {
    const n = samples.length;
    bars.replaceChildren();
    if (n === 0) return;
    const step = W / Math.max(KEEP_SAMPLES - 1, 1);
    const deltas = samples.map((s, i) => (i === 0 ? 0 : Math.max(0, s.saved - samples[i - 1].saved)));
    const maxDelta = Math.max(1, ...deltas);
    const pts = samples.map((s, i) => `${(i * step).toFixed(1)},${(H - 2 - s.ratio * (H - 4)).toFixed(1)}`);
    line.setAttribute('points', pts.join(' '));
    deltas.forEach((d, i) => {
      if (!d) return;
      const bh = (d / maxDelta) * (H - 4);
      bars.append(svg('rect', { x: (i * step).toFixed(1), y: (H - bh).toFixed(1), width: Math.max(step - 1, 1).toFixed(1), height: bh.toFixed(1) }));
    });
  }

  // ---- per backend
  const backendBody = h('tbody', {});
  const backends = h(
    'table',
    { class: 'table', 'data-testid': 'proxy-backends' },
    h('thead', {}, h('tr', {}, ...['Backend', 'Upstream', 'Requests', 'Hits', 'Misses', 'Coalesced', 'Stale', 'Errors', 'Hit ratio', 'Served', 'From upstream', 'Saved'].map((t) => h('th', { scope: 'col' }, t)))),
    backendBody,
  );

  // ---- in flight
  const inflightBody = h('tbody', {});
  const inflightEmpty = h('p', { class: 'muted', 'data-testid': 'proxy-inflight-empty' }, 'Nothing is being downloaded.');
  const inflight = h(
    'table',
    { class: 'table', 'data-testid': 'proxy-inflight' },
    h('thead', {}, h('tr', {}, ...['URL', 'Progress', 'Received', 'Clients', 'Started'].map((t) => h('th', { scope: 'col' }, t)))),
    inflightBody,
  );

  // ---- top objects
  let sort = 'hits';
  const topBody = h('tbody', {});
  const topTotal = h('span', { class: 'muted small', 'data-testid': 'proxy-top-total' });
  const sortHits = h('button', { type: 'button', class: 'btn btn-sm', 'aria-pressed': 'true', 'data-testid': 'proxy-sort-hits' }, 'Hottest');
  const sortSize = h('button', { type: 'button', class: 'btn btn-sm', 'aria-pressed': 'false', 'data-testid': 'proxy-sort-size' }, 'Biggest');
  const top = h(
    'table',
    { class: 'table', 'data-testid': 'proxy-top' },
    h('thead', {}, h('tr', {}, ...['Backend', 'Path', 'Size', 'Hits', 'Last used', 'Stored'].map((t) => h('th', { scope: 'col' }, t)))),
    topBody,
  );

  // ---- purge
  const purgeInput = h('input', {
    id: 'proxy-purge-url',
    class: 'input mono',
    required: true,
    placeholder: '/BACKEND/path or https://upstream/path',
    'data-testid': 'proxy-purge-input',
  });
  const purgePrefix = h('input', { id: 'proxy-purge-prefix', type: 'checkbox', 'data-testid': 'proxy-purge-prefix' });
  const purgeMsg = h('p', { class: 'form-msg', role: 'status', 'data-testid': 'proxy-purge-result' });
  const purgeBtn = h('button', { type: 'submit', class: 'btn btn-danger' }, 'Purge');
  const purgeForm = h(
    'form',
    { class: 'panel', 'data-testid': 'proxy-purge-form' },
    h('h2', {}, 'Purge'),
    h('div', { class: 'field' }, h('label', { for: 'proxy-purge-url' }, 'URL'), purgeInput),
    h('div', { class: 'field' }, h('label', { for: 'proxy-purge-prefix' }, purgePrefix, ' everything under this prefix')),
    h('p', { class: 'small muted' }, 'Needs a token with the scope ', h('code', {}, 'proxy:purge'), '.'),
    h('div', { class: 'toolbar' }, purgeBtn),
    purgeMsg,
  );

  root.append(
    h('section', { class: 'panel', 'data-testid': 'proxy-stats' },
      h('div', { class: 'cards' }, fRatio.el, fByteRatio.el, fSaved.el, fCache.el, fObjects.el, fInflight.el),
      disk, chart, chartNote),
    h('section', { class: 'panel', 'aria-labelledby': 'proxy-backends-h' }, h('h2', { id: 'proxy-backends-h' }, 'Backends'), backends),
    h('section', { class: 'panel', 'aria-labelledby': 'proxy-inflight-h' }, h('h2', { id: 'proxy-inflight-h' }, 'Downloads in flight'), inflightEmpty, inflight),
    h('section', { class: 'panel', 'aria-labelledby': 'proxy-top-h' },
      h('div', { class: 'panel-head' }, h('h2', { id: 'proxy-top-h' }, 'Top objects'), h('div', { class: 'toolbar' }, sortHits, sortSize), topTotal),
      top),
    purgeForm,
  );

  // ---- refresh
  function renderStats(st) {
    const t = st.total || {};
    fRatio.value.textContent = pct(t.hit_ratio);
    fByteRatio.value.textContent = pct(t.byte_hit_ratio);
    fSaved.value.textContent = fmt.bytes(t.bytes_saved || 0);
    fCache.value.textContent = `${fmt.bytes(st.cache.bytes)} of ${fmt.bytes(st.cache.max_bytes)}`;
    fObjects.value.textContent = fmt.number(st.cache.objects);
    fInflight.value.textContent = fmt.number(st.inflight);
    disk.hidden = !st.cache.disk_full;
    backendBody.replaceChildren(
      ...Object.entries(st.backends || {}).map(([name, b]) =>
        h('tr', { 'data-testid': 'proxy-backend-row', 'data-backend': name },
          h('td', { class: 'mono' }, name),
          h('td', { class: 'mono small' }, b.url || ''),
          h('td', {}, fmt.number(b.requests)),
          h('td', {}, fmt.number(b.hits)),
          h('td', {}, fmt.number(b.misses)),
          h('td', {}, fmt.number(b.coalesced)),
          h('td', {}, fmt.number(b.stale)),
          h('td', {}, fmt.number(b.errors)),
          h('td', {}, pct(b.hit_ratio)),
          h('td', {}, fmt.bytes(b.bytes_served)),
          h('td', {}, fmt.bytes(b.bytes_upstream)),
          h('td', {}, fmt.bytes(b.bytes_saved)))),
    );
    samples.push({ t: st.time_ms, ratio: t.hit_ratio || 0, saved: t.bytes_saved || 0 });
    if (samples.length > KEEP_SAMPLES) samples.shift();
    drawChart();
  }

  function renderInflight(list) {
    inflightEmpty.hidden = list.length > 0;
    inflight.hidden = list.length === 0;
    inflightBody.replaceChildren(
      ...list.map((o) => {
        const known = o.length >= 0;
        const bar = h('progress', { max: known ? o.length : 1, value: known ? o.bytes : 0, 'aria-label': `progress of ${o.url}` });
        return h('tr', { 'data-testid': 'proxy-inflight-row' },
          h('td', { class: 'mono small' }, o.url),
          h('td', {}, bar, known ? ` ${pct(o.length ? o.bytes / o.length : 1)}` : ' size unknown'),
          h('td', {}, fmt.bytes(o.bytes)),
          h('td', {}, fmt.number(o.readers)),
          h('td', {}, fmt.ago(o.started_ms)));
      }),
    );
  }

  function renderTop(r) {
    topTotal.textContent = `${fmt.number(r.total)} objects cached`;
    topBody.replaceChildren(
      ...r.objects.map((o) =>
        h('tr', { 'data-testid': 'proxy-top-row', 'data-key': o.key },
          h('td', { class: 'mono' }, o.backend),
          h('td', { class: 'mono small' }, o.path),
          h('td', {}, fmt.bytes(o.size)),
          h('td', {}, fmt.number(o.hits)),
          h('td', {}, fmt.ago(o.last_access_ms)),
          h('td', {}, fmt.datetime(o.stored_ms)))),
    );
  }

  async function refresh() {
    try {
      const [st, inf, tops] = await Promise.all([
        api.get('/api/v1/proxy/stats', { signal: ctx.signal }),
        api.get('/api/v1/proxy/inflight', { signal: ctx.signal }),
        api.get(`/api/v1/proxy/objects?sort=${sort}&limit=20`, { signal: ctx.signal }),
      ]);
      renderStats(st);
      renderInflight(inf.objects || []);
      renderTop(tops);
    } catch (err) {
      if (err.name !== 'AbortError') ctx.showError(err);
    }
  }

  for (const [btn, value] of [[sortHits, 'hits'], [sortSize, 'size']]) {
    btn.addEventListener('click', () => {
      sort = value;
      sortHits.setAttribute('aria-pressed', String(value === 'hits'));
      sortSize.setAttribute('aria-pressed', String(value === 'size'));
      refresh();
    });
  }

  purgeForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    purgeMsg.textContent = '';
    const value = purgeInput.value.trim();
    if (!value) {
      purgeMsg.textContent = 'Give a URL or a /BACKEND/path first.';
      return;
    }
    purgeBtn.disabled = true;
    try {
      const r = await api.post('/api/v1/proxy/purge', purgePrefix.checked ? { prefix: value } : { url: value });
      purgeMsg.textContent = `Purged ${r.purged} object${r.purged === 1 ? '' : 's'} (${fmt.bytes(r.bytes)})` +
        (r.inflight ? `; ${r.inflight} download${r.inflight === 1 ? '' : 's'} in flight will not be kept.` : '.');
      refresh();
    } catch (err) {
      purgeMsg.textContent = api.isAuthError(err)
        ? `${err.message} — set a token with the scope proxy:purge (Set token, top right).`
        : err.message;
    } finally {
      purgeBtn.disabled = false;
    }
  });

  ctx.every(POLL_MS, refresh);
  await refresh();
}
