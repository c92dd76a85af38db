// SPDX-License-Identifier: MIT
// web/app.js -- the dashboard shell: header (version, uptime, who you are),
// navigation, the token dialog, error banner, and a hash router that mounts
// one page at a time. Pages and module scripts get a PageScope whose cleanup
// runs when the user navigates away (streams closed, timers cleared).

import * as api from './api.js';
import { h, replace, fmt } from './dom.js';
import * as overview from './pages/overview.js';
import * as modulePage from './pages/module.js';
import * as eventsPage from './pages/events.js';
import * as tokensPage from './pages/tokens.js';

/** The appliance's modules, in navigation order, with what each is for. */
export const MODULES = [
  { name: 'proxy', title: 'Proxy', job: 'Caching HTTP proxy for build artifacts and tool downloads' },
  { name: 'graph', title: 'Graph', job: 'Task graphs: the builds and tests of a push, with dependencies' },
  { name: 'dispatch', title: 'Dispatch', job: 'Worker pools claiming and running tasks' },
  { name: 'talos', title: 'Talos', job: 'Performance results classified: good, spike, regression' },
  { name: 'partials', title: 'Partials', job: 'MAR partial updates with a diff cache' },
  { name: 'signing', title: 'Signing', job: 'Signing of MARs and files; keys never leave the appliance' },
];

/* ------------------------------------------------------------ status */

// One shared copy of /api/v1/status, refreshed every few seconds while the
// tab is visible; pages subscribe to it instead of polling on their own.
const status = {
  data: null,
  error: null,
  fetchedAt: 0,
  listeners: new Set(),
  timer: null,
};

export function currentStatus() {
  return status.data;
}

async function refreshStatus() {
  try {
    status.data = await api.get('/api/v1/status');
    status.error = null;
    status.fetchedAt = Date.now();
  } catch (err) {
    status.error = err;
  }
  renderHeader();
  renderNav();
  for (const fn of status.listeners) {
    try {
      fn(status.data, status.error);
    } catch (err) {
      console.error(err);
    }
  }
}

// Coalesces refresh requests (e.g. one per arriving event) to one a second.
let soonTimer = null;
function refreshStatusSoon() {
  if (!soonTimer) {
    soonTimer = setTimeout(() => {
      soonTimer = null;
      refreshStatus();
    }, 1000);
  }
}

function scheduleStatus() {
  clearInterval(status.timer);
  status.timer = setInterval(() => {
    if (document.visibilityState === 'visible') refreshStatus();
  }, 5000);
}

/* ------------------------------------------------------------ errors */

const banner = () => document.getElementById('error-banner');

/** Shows an error (ApiError or Error) in the banner at the top of the page. */
export function showError(err) {
  const el = banner();
  const msg = err && err.message ? err.message : String(err);
  replace(
    el,
    h('span', { class: 'banner-text', 'data-testid': 'error-message' }, msg),
    api.isAuthError(err) ? h('button', { type: 'button', class: 'btn btn-sm', onclick: openTokenDialog }, 'Set token') : null,
    h('button', { type: 'button', class: 'btn btn-sm btn-ghost', 'aria-label': 'Dismiss', onclick: () => (el.hidden = true) }, '×'),
  );
  el.hidden = false;
}

function clearError() {
  banner().hidden = true;
}

/* ------------------------------------------------------------ header */

let whoami = null;

async function refreshWhoami() {
  try {
    whoami = await api.get('/api/v1/whoami');
  } catch (err) {
    whoami = { error: err };
  }
  renderHeader();
}

function renderHeader() {
  const ver = document.querySelector('[data-testid="app-version"]');
  const up = document.querySelector('[data-testid="app-uptime"]');
  const who = document.querySelector('[data-testid="whoami"]');
  const d = status.data;
  ver.textContent = d ? `v${d.version}` : '';
  if (d) {
    const since = Date.now() - status.fetchedAt;
    up.textContent = `up ${fmt.duration(d.uptime_s + since / 1000)}`;
    up.title = `running since ${d.started}`;
  } else if (status.error) {
    up.textContent = api.isAuthError(status.error) ? 'needs a token' : status.error.status === 0 ? 'unreachable' : 'error';
    up.title = status.error.message;
  } else {
    up.textContent = '';
  }
  if (whoami && whoami.error) {
    who.textContent = api.getToken() ? 'token rejected' : 'anonymous';
    who.title = whoami.error.message;
  } else if (whoami) {
    const name = whoami.name || (whoami.anonymous ? 'anonymous' : 'unknown');
    who.textContent = name;
    who.title = Array.isArray(whoami.scopes) && whoami.scopes.length ? `scopes: ${whoami.scopes.join(', ')}` : '';
  }
}

/* ------------------------------------------------------------ navigation */

function loadedNames() {
  return new Set(((status.data && status.data.modules) || []).map((m) => m.name));
}

function navLink(href, label, testid, extra) {
  return h('li', {}, h('a', { href, 'data-testid': testid, class: 'nav-link' }, h('span', {}, label), extra));
}

function renderNav() {
  const nav = document.getElementById('nav-list');
  const loaded = loadedNames();
  const known = new Set(MODULES.map((m) => m.name));
  const others = [...loaded].filter((n) => !known.has(n)).sort();
  const dot = (name) =>
    h('span', {
      class: `nav-dot ${loaded.has(name) ? 'on' : 'off'}`,
      title: loaded.has(name) ? 'loaded' : 'not loaded',
      'aria-label': loaded.has(name) ? 'loaded' : 'not loaded',
      role: 'img',
    });
  replace(
    nav,
    navLink('#/', 'Overview', 'nav-overview'),
    h('li', { class: 'nav-group', 'aria-hidden': 'true' }, 'Modules'),
    MODULES.map((m) => navLink(`#/m/${m.name}`, m.title, `nav-module-${m.name}`, dot(m.name))),
    others.length ? h('li', { class: 'nav-group', 'aria-hidden': 'true' }, 'Other modules') : null,
    others.map((n) => navLink(`#/m/${encodeURIComponent(n)}`, n, `nav-module-${n}`, dot(n))),
    h('li', { class: 'nav-group', 'aria-hidden': 'true' }, 'Appliance'),
    navLink('#/events', 'Events', 'nav-events'),
    navLink('#/tokens', 'Tokens', 'nav-tokens'),
  );
  markCurrent();
}

function markCurrent() {
  const here = location.hash || '#/';
  for (const a of document.querySelectorAll('#nav-list a')) {
    const href = a.getAttribute('href');
    const current = href === here || (href === '#/' && (here === '#' || here === '#/overview'));
    if (current) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

/* ------------------------------------------------------------ token dialog */

function openTokenDialog() {
  const dlg = document.getElementById('token-dialog');
  const input = document.getElementById('token-input');
  const info = document.getElementById('token-info');
  input.value = '';
  info.textContent = api.getToken()
    ? 'A token is stored in this browser. Paste a new one to replace it, or clear it.'
    : 'No token is stored: you are anonymous (reads only, if the appliance allows them).';
  dlg.showModal();
  input.focus();
}

function setupTokenDialog() {
  const dlg = document.getElementById('token-dialog');
  const form = document.getElementById('token-form');
  document.querySelector('[data-testid="token-button"]').addEventListener('click', openTokenDialog);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const action = ev.submitter ? ev.submitter.value : 'save';
    if (action === 'save') {
      const v = document.getElementById('token-input').value.trim();
      if (!v) {
        document.getElementById('token-info').textContent = 'Paste a token first (it starts with rd_).';
        return;
      }
      api.setToken(v);
    } else if (action === 'clear') {
      api.setToken('');
    }
    dlg.close();
  });
  window.addEventListener('relengd:token', () => {
    clearError();
    refreshWhoami();
    refreshStatus();
    route(false); // remount: streams and lists use the new token
  });
}

/* ------------------------------------------------------------ router */

/** What a page or module script gets; its cleanups run when the page goes. */
export class PageScope {
  constructor() {
    this.cleanups = [];
    this.controller = new AbortController();
    this.closed = false;
  }
  get signal() {
    return this.controller.signal;
  }
  onCleanup(fn) {
    this.cleanups.push(fn);
  }
  every(ms, fn) {
    const t = setInterval(() => {
      if (document.visibilityState === 'visible') fn();
    }, ms);
    this.onCleanup(() => clearInterval(t));
  }
  onStatus(fn) {
    status.listeners.add(fn);
    this.onCleanup(() => status.listeners.delete(fn));
  }
  close() {
    this.closed = true;
    this.controller.abort();
    for (const fn of this.cleanups.splice(0).reverse()) {
      try {
        fn();
      } catch (err) {
        console.error(err);
      }
    }
  }
}

let scope = null;

function parseRoute() {
  // "#/events?type=task" -> path "events"; the page reads its own query
  const hash = decodeURIComponent(location.hash.replace(/^#\/?/, '').split('?')[0]);
  const parts = hash.split('/').filter(Boolean);
  if (parts.length === 0 || parts[0] === 'overview') return { page: overview, args: {} };
  if (parts[0] === 'm' && parts[1]) return { page: modulePage, args: { name: parts[1] } };
  if (parts[0] === 'events') return { page: eventsPage, args: {} };
  if (parts[0] === 'tokens') return { page: tokensPage, args: {} };
  return { page: null, args: { hash } };
}

function route(focusHeading = false) {
  if (scope) scope.close();
  scope = new PageScope();
  const main = document.getElementById('main');
  const { page, args } = parseRoute();
  markCurrent();
  clearError();
  const ctx = {
    scope,
    api,
    status: currentStatus,
    statusError: () => status.error,
    statusReady,
    refreshStatus: refreshStatusSoon,
    showError,
    openTokenDialog,
    modules: MODULES,
    ...args,
  };
  replace(main);
  if (!page) {
    document.title = 'Not found · relengd';
    replace(
      main,
      h('h1', { tabindex: '-1' }, 'Page not found'),
      h('p', {}, 'There is no page at ', h('code', {}, `#/${args.hash}`), '. ', h('a', { href: '#/' }, 'Go to the overview'), '.'),
    );
  } else {
    document.title = `${page.title(args)} · relengd`;
    try {
      page.mount(main, ctx);
    } catch (err) {
      console.error(err);
      showError(err);
    }
  }
  // after a navigation, move focus to the new page's heading (screen readers)
  const heading = main.querySelector('h1');
  if (heading && focusHeading) {
    heading.setAttribute('tabindex', '-1');
    heading.focus({ preventScroll: true });
  }
}

/** Resolves with the status once it has been fetched (or failed) once. */
let firstStatus;
function statusReady() {
  return firstStatus;
}

function setupSkipLink() {
  // the hash belongs to the router: move focus without touching it
  document.querySelector('[data-skip]').addEventListener('click', (ev) => {
    ev.preventDefault();
    const main = document.getElementById('main');
    (main.querySelector('h1') || main).focus();
  });
}

function start() {
  setupSkipLink();
  setupTokenDialog();
  renderNav();
  firstStatus = refreshStatus();
  refreshWhoami();
  scheduleStatus();
  setInterval(renderHeader, 1000);
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible') refreshStatus();
  });
  window.addEventListener('hashchange', () => route(true));
  route();
}

start();
