// SPDX-License-Identifier: MIT
// web/pages/module.js -- #/m/<name>: a module's page. If the module is loaded
// the page runs the module's own script, web/modules/<name>.js (see
// web/README.md for the contract); a loaded module without a script gets its
// status figures; a module that is not loaded gets a clear message saying
// how to load it.

import { h, replace, fmt, stateBadge, statusFigures } from '../dom.js';
import * as dom from '../dom.js';
import { EventFeed } from '../events.js';

export function title(args) {
  return args.name;
}

function figuresTable(m) {
  const figures = statusFigures(m.status, 50);
  if (!figures.length) return h('p', { class: 'muted' }, 'This module reports no status figures.');
  return h(
    'dl',
    { class: 'figures figures-wide', 'data-testid': 'module-figures' },
    figures.map(([k, v]) => h('div', { class: 'figure' }, h('dt', {}, fmt.label(k)), h('dd', { class: 'mono' }, v))),
  );
}

/** Does web/modules/<name>.js exist? (HEAD, so a missing script is not an error.) */
async function hasScript(url, signal) {
  const res = await fetch(url, { method: 'HEAD', cache: 'no-store', signal });
  if (res.status === 404) return false;
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  return true;
}

export function mount(main, ctx) {
  const name = ctx.name;
  const known = ctx.modules.find((m) => m.name === name);
  const heading = h('h1', {}, known ? known.title : name);
  const meta = h('span', { class: 'page-meta' });
  const body = h('div', { class: 'module-body', 'data-testid': 'module-page', 'data-module': name });
  replace(
    main,
    h('div', { class: 'page-head' }, heading, meta),
    known ? h('p', { class: 'muted lead' }, known.job) : null,
    body,
  );

  ctx.statusReady().then(async () => {
    if (ctx.scope.closed) return;
    const st = ctx.status();
    if (!st) {
      const err = ctx.statusError();
      replace(
        body,
        h('p', { class: 'notice notice-bad' }, `The appliance status could not be read: ${err ? err.message : 'no answer'}`),
      );
      return;
    }
    const m = (st.modules || []).find((x) => x.name === name);
    if (!m) {
      replace(
        body,
        h(
          'div',
          { class: 'notice', 'data-testid': 'module-not-loaded', role: 'note' },
          h(
            'p',
            {},
            `The ${name} module is not loaded in this appliance (add it to `,
            h('code', {}, 'modules'),
            ' in relengd.conf)',
          ),
          h(
            'p',
            { class: 'muted small' },
            'For example ',
            h('code', {}, `modules = ${[...(st.modules || []).map((x) => x.name), name].join(' ')}`),
            ` in the [relengd] section, with its settings in etc/modules.d/${name}.conf; then restart relengd.`,
          ),
        ),
      );
      return;
    }
    replace(meta, h('span', { class: 'mono muted' }, m.version ? `v${m.version}` : ''), ' ', stateBadge(m.state, 'module-state'));

    const url = `modules/${encodeURIComponent(name)}.js`;
    let script = false;
    try {
      script = await hasScript(url, ctx.scope.signal);
    } catch (err) {
      if (err.name === 'AbortError') return;
      ctx.showError(err);
    }
    if (ctx.scope.closed) return;
    if (!script) {
      replace(
        body,
        h(
          'section',
          { class: 'panel', 'aria-labelledby': 'module-status-h' },
          h('h2', { id: 'module-status-h' }, 'Status'),
          figuresTable(m),
        ),
        h(
          'p',
          { class: 'small muted' },
          `The ${name} module has no dashboard page of its own (web/modules/${name}.js). Its API: `,
          h('a', { href: `/api/v1/modules/${encodeURIComponent(name)}` }, `/api/v1/modules/${name}`),
        ),
      );
      return;
    }
    let mod;
    try {
      mod = await import(`../${url}`);
    } catch (err) {
      replace(body, h('p', { class: 'notice notice-bad' }, `The page script ${url} failed to load: ${err.message}`));
      return;
    }
    if (ctx.scope.closed) return;
    const mount = mod.mount || mod.default;
    if (typeof mount !== 'function') {
      replace(body, h('p', { class: 'notice notice-bad' }, `${url} exports no mount() function.`));
      return;
    }
    replace(body);
    const mctx = {
      module: m,
      name,
      api: ctx.api,
      h: dom.h,
      dom,
      fmt: dom.fmt,
      signal: ctx.scope.signal,
      showError: ctx.showError,
      every: (ms, fn) => ctx.scope.every(ms, fn),
      onCleanup: (fn) => ctx.scope.onCleanup(fn),
      /** Live events whose type matches types ("example", "task.res*", comma-separated). */
      onEvent(types, fn) {
        const feed = new EventFeed({ types });
        feed.on('event', fn).start();
        ctx.scope.onCleanup(() => feed.stop());
        return feed;
      },
      /** The module's current entry of /api/v1/status (refreshed every few seconds). */
      status: () => ((ctx.status() || {}).modules || []).find((x) => x.name === name) || null,
      onStatus: (fn) =>
        ctx.scope.onStatus((s) => {
          const mm = s && (s.modules || []).find((x) => x.name === name);
          if (mm) fn(mm);
        }),
    };
    try {
      const cleanup = await mount(body, mctx);
      if (typeof cleanup === 'function') ctx.scope.onCleanup(cleanup);
    } catch (err) {
      console.error(err);
      replace(body, h('p', { class: 'notice notice-bad' }, `The ${name} page failed: ${err.message}`));
    }
  });
}
