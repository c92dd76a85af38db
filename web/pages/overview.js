// SPDX-License-Identifier: MIT
// web/pages/overview.js -- the landing page: one card per loaded module
// (name, version, state, key figures from its status object) from
// /api/v1/status, kept fresh by the shell's status poll, and the live event
// feed beside it.

import { h, replace, fmt, stateBadge, statusFigures } from '../dom.js';
import { eventFeedView } from '../feed.js';

export function title() {
  return 'Overview';
}

function moduleCard(m, known) {
  const figures = statusFigures(m.status, 6);
  const info = known.get(m.name);
  return h(
    'article',
    { class: 'card module-card', 'data-testid': `module-card-${m.name}`, 'data-module': m.name },
    h(
      'header',
      { class: 'card-head' },
      h('h3', { class: 'card-title' }, h('a', { href: `#/m/${encodeURIComponent(m.name)}` }, m.name)),
      h('span', { class: 'muted mono small', 'data-testid': 'module-version' }, m.version ? `v${m.version}` : ''),
      stateBadge(m.state, 'module-state'),
    ),
    info ? h('p', { class: 'card-job muted small' }, info.job) : null,
    figures.length
      ? h(
          'dl',
          { class: 'figures' },
          figures.map(([k, v]) => h('div', { class: 'figure' }, h('dt', {}, fmt.label(k)), h('dd', { class: 'mono' }, v))),
        )
      : h('p', { class: 'muted small' }, m.state === 'started' ? 'No status figures.' : `The module is ${m.state}.`),
  );
}

export function mount(main, ctx) {
  const known = new Map(ctx.modules.map((m) => [m.name, m]));
  const summary = h('dl', { class: 'summary', 'data-testid': 'summary' });
  const list = h('div', { class: 'card-grid', 'data-testid': 'module-list', 'aria-busy': 'true' });
  const missing = h('p', { class: 'muted small', 'data-testid': 'modules-not-loaded' });

  function render(st, err) {
    if (!st) {
      list.setAttribute('aria-busy', 'false');
      summary.hidden = true;
      const needsToken = ctx.api.isAuthError(err);
      replace(
        list,
        h(
          'div',
          { class: 'notice notice-bad', 'data-testid': 'status-error' },
          h('p', {}, `The appliance status could not be read: ${err ? err.message : 'no answer'}`),
          needsToken
            ? h(
                'p',
                {},
                'This appliance does not allow anonymous reads. ',
                h('button', { type: 'button', class: 'btn btn-sm', onclick: ctx.openTokenDialog }, 'Set token'),
              )
            : null,
        ),
      );
      return;
    }
    summary.hidden = false;
    const mods = st.modules || [];
    const stat = (label, value, testid) =>
      h('div', { class: 'stat' }, h('dt', {}, label), h('dd', { 'data-testid': testid || null }, value));
    replace(
      summary,
      stat('Version', st.version, 'summary-version'),
      stat('Uptime', fmt.duration(st.uptime_s)),
      stat('Started', fmt.datetime(st.started)),
      stat('Modules', `${mods.filter((m) => m.state === 'started').length} of ${mods.length} started`, 'summary-modules'),
      stat('Ready', st.ready === false ? 'no' : 'yes'),
    );
    list.setAttribute('aria-busy', 'false');
    replace(list, mods.length ? mods.map((m) => moduleCard(m, known)) : h('p', { class: 'muted' }, 'No modules are loaded.'));
    const loaded = new Set(mods.map((m) => m.name));
    const absent = ctx.modules.filter((m) => !loaded.has(m.name));
    replace(
      missing,
      absent.length
        ? [
            'Not loaded in this appliance: ',
            absent.map((m, i) => [i ? ', ' : '', h('a', { href: `#/m/${m.name}` }, m.title)]),
            '.',
          ]
        : 'Every appliance module is loaded.',
    );
  }

  replace(
    main,
    h('h1', {}, 'Overview'),
    summary,
    h(
      'div',
      { class: 'overview' },
      h(
        'section',
        { class: 'overview-modules', 'aria-labelledby': 'modules-heading' },
        h('h2', { id: 'modules-heading' }, 'Modules'),
        list,
        missing,
      ),
      eventFeedView(ctx.scope, {
        testid: 'event-feed',
        heading: 'Live events',
        history: 30,
        max: 200,
        // an event usually changes some module's figures: refresh the cards
        onEvent: () => ctx.refreshStatus(),
      }),
    ),
  );
  ctx.scope.onStatus(render);
  ctx.statusReady().then(() => {
    if (!ctx.scope.closed) render(ctx.status(), ctx.statusError());
  });
}
