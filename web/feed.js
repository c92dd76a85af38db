// SPDX-License-Identifier: MIT
// web/feed.js -- the event feed widget used by the Overview and Events pages:
// recent history from the JSON API, then live events over SSE, newest on top,
// with a type filter, a connection indicator and a pause switch.

import * as api from './api.js';
import { h, replace, timeEl, fmt } from './dom.js';
import { EventFeed, filterMatches, recentEvents } from './events.js';

const STATE_TEXT = { live: 'Live', connecting: 'Connecting…', down: 'Disconnected' };

/**
 * eventFeedView(scope, {testid, heading, history, max, serverFilter, full})
 *   scope: the page scope (its cleanup stops the stream)
 *   history: how many recent events to show first
 *   max: rows kept
 *   serverFilter: the filter is sent to the server (?type=) and the stream
 *     restarts when it changes; else it only hides rows in the browser
 *   full: a wide table with the event data expanded (Events page)
 *   onEvent: also called with each live event
 */
export function eventFeedView(scope, opts = {}) {
  const { testid = 'event-feed', heading = 'Live events', history = 50, max = 200 } = opts;
  const full = !!opts.full;
  const serverFilter = !!opts.serverFilter;
  let filter = opts.filter || '';
  let paused = false;
  const held = [];
  let rows = 0;

  const status = h(
    'span',
    { class: 'conn conn-down', 'data-testid': 'feed-status', 'data-state': 'down', role: 'status' },
    h('span', { class: 'conn-dot', 'aria-hidden': 'true' }),
    h('span', { class: 'conn-text' }, STATE_TEXT.down),
  );
  const filterId = `${testid}-filter`;
  const filterInput = h('input', {
    id: filterId,
    type: 'search',
    class: 'input input-sm',
    placeholder: 'type prefix, e.g. task, example.noted',
    autocomplete: 'off',
    spellcheck: 'false',
    value: filter,
    'data-testid': 'feed-filter',
  });
  const pauseBtn = h('button', { type: 'button', class: 'btn btn-sm', 'aria-pressed': 'false' }, 'Pause');
  const clearBtn = h('button', { type: 'button', class: 'btn btn-sm' }, 'Clear');
  const list = h('ol', {
    class: full ? 'feed feed-full' : 'feed',
    'data-testid': testid,
    'aria-live': 'polite',
    'aria-relevant': 'additions',
    reversed: true,
  });
  const empty = h('p', { class: 'muted feed-empty' }, 'No events yet. New events appear here as they happen.');
  const note = h('p', { class: 'muted small feed-note', hidden: true });

  function rowFor(env) {
    const type = String(env.type || '');
    const li = h(
      'li',
      {
        class: 'feed-item',
        'data-testid': 'event-item',
        'data-event-id': env.id,
        'data-event-type': type,
        hidden: !serverFilter && !filterMatches(filter, type),
      },
      h('span', { class: 'feed-id mono' }, `#${env.id}`),
      h('span', { class: 'feed-time mono' }, timeEl(env.time)),
      h('span', { class: 'feed-type' }, h('code', {}, type)),
      h('span', { class: 'feed-source muted' }, env.source || ''),
    );
    const data = env.data && typeof env.data === 'object' ? env.data : {};
    if (full) {
      li.append(
        h(
          'details',
          { class: 'feed-data' },
          h('summary', { class: 'mono' }, fmt.json(data)),
          h('pre', { class: 'mono' }, JSON.stringify(env, null, 2)),
        ),
      );
    } else {
      li.append(h('span', { class: 'feed-data mono', title: JSON.stringify(data) }, fmt.json(data)));
    }
    return li;
  }

  function show(env) {
    if (paused) {
      held.push(env);
      pauseBtn.textContent = `Resume (${held.length})`;
      return;
    }
    list.prepend(rowFor(env));
    rows++;
    while (rows > max && list.lastElementChild) {
      list.lastElementChild.remove();
      rows--;
    }
    empty.hidden = rows > 0;
  }

  function applyLocalFilter() {
    for (const li of list.children) li.hidden = !filterMatches(filter, li.dataset.eventType || '');
  }

  const feed = new EventFeed({ types: serverFilter ? filter : '' });
  feed.on('event', show);
  if (opts.onEvent) feed.on('event', opts.onEvent);
  feed.on('state', (s) => {
    status.className = `conn conn-${s}`;
    status.dataset.state = s;
    status.querySelector('.conn-text').textContent = STATE_TEXT[s] || s;
  });

  async function load() {
    replace(list);
    rows = 0;
    empty.hidden = false;
    try {
      const { events, newest } = await recentEvents(api.get, {
        count: history,
        filter: serverFilter ? filter : '',
        signal: scope.signal,
      });
      for (const env of events) show(env);
      feed.types = serverFilter ? filter : '';
      feed.lastId = newest;
      note.hidden = true;
    } catch (err) {
      if (err.name === 'AbortError') return;
      note.hidden = false;
      note.textContent = `Recent events could not be loaded: ${err.message}`;
      feed.types = serverFilter ? filter : '';
      feed.lastId = null; // the stream starts at the newest event
    }
    if (!scope.closed) feed.start();
  }

  let filterTimer = null;
  filterInput.addEventListener('input', () => {
    clearTimeout(filterTimer);
    filterTimer = setTimeout(() => {
      filter = filterInput.value.trim();
      if (serverFilter) {
        feed.stop();
        load();
      } else {
        applyLocalFilter();
      }
    }, serverFilter ? 400 : 0);
  });
  pauseBtn.addEventListener('click', () => {
    paused = !paused;
    pauseBtn.setAttribute('aria-pressed', String(paused));
    pauseBtn.textContent = 'Pause';
    if (!paused) for (const env of held.splice(0)) show(env);
  });
  clearBtn.addEventListener('click', () => {
    replace(list);
    rows = 0;
    held.length = 0;
    empty.hidden = false;
  });

  scope.onCleanup(() => {
    clearTimeout(filterTimer);
    feed.stop();
  });
  load();

  return h(
    'section',
    { class: 'panel feed-panel', 'aria-labelledby': `${testid}-heading` },
    h(
      'header',
      { class: 'panel-head' },
      h('h2', { id: `${testid}-heading` }, heading),
      status,
    ),
    h(
      'div',
      { class: 'toolbar' },
      h('label', { for: filterId, class: 'sr-only' }, 'Filter events by type'),
      filterInput,
      pauseBtn,
      clearBtn,
    ),
    note,
    empty,
    list,
  );
}
