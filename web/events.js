// SPDX-License-Identifier: MIT
// web/events.js -- the live event stream: an EventSource on /api/v1/events
// with a connection state, type-prefix filters and resumption. EventSource
// itself reconnects with Last-Event-ID after a network error; when the server
// closes the stream for good (an error status) we reconnect ourselves with
// ?after=<last id> and a growing delay, so no event is lost or repeated.

import { eventStreamUrl } from './api.js';

/** Does event type `type` match one pattern ("task", "task.*", "task.res*", "*")? */
export function typeMatches(pattern, type) {
  const p = pattern.trim();
  if (!p || p === '*') return true;
  if (p.endsWith('*')) return type.startsWith(p.slice(0, -1));
  return type === p || type.startsWith(`${p}.`);
}

/** Comma-separated patterns; an empty filter matches everything. */
export function filterMatches(filter, type) {
  const parts = String(filter || '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  return parts.length === 0 || parts.some((p) => typeMatches(p, type));
}

/**
 * new EventFeed({types: 'example,task', after: 41})
 *   .on('event', env => ...)      an envelope {id, type, time, source, data}
 *   .on('state', s => ...)        'connecting' | 'live' | 'down'
 *   .start() / .stop()
 */
export class EventFeed {
  constructor({ types = '', after = null } = {}) {
    this.types = types;
    this.lastId = after;
    this.state = 'down';
    this.es = null;
    this.timer = null;
    this.delayMs = 1000;
    this.stopped = true;
    this.handlers = { event: new Set(), state: new Set() };
  }

  on(what, fn) {
    this.handlers[what].add(fn);
    return this;
  }

  emit(what, arg) {
    for (const fn of this.handlers[what]) {
      try {
        fn(arg);
      } catch (err) {
        console.error(err);
      }
    }
  }

  setState(s) {
    if (s !== this.state) {
      this.state = s;
      this.emit('state', s);
    }
  }

  start() {
    this.stopped = false;
    this.connect();
    return this;
  }

  /** Changes the server-side filter: reconnects from the last id seen. */
  setTypes(types) {
    this.types = types;
    if (!this.stopped) {
      this.close();
      this.connect();
    }
  }

  connect() {
    clearTimeout(this.timer);
    this.timer = null;
    const params = { type: this.types || undefined };
    if (this.lastId !== null && this.lastId !== undefined) params.after = this.lastId;
    this.setState('connecting');
    const es = new EventSource(eventStreamUrl(params));
    this.es = es;
    es.onopen = () => {
      this.delayMs = 1000;
      this.setState('live');
    };
    es.onmessage = (msg) => {
      let env;
      try {
        env = JSON.parse(msg.data);
      } catch {
        return;
      }
      const id = Number(msg.lastEventId || (env && env.id));
      // never show an event twice, whatever a reconnect sends again
      if (Number.isFinite(id) && this.lastId !== null && id <= Number(this.lastId)) return;
      if (Number.isFinite(id)) this.lastId = id;
      this.emit('event', env);
    };
    es.onerror = () => {
      if (this.es !== es) return;
      if (es.readyState === EventSource.CLOSED) {
        // closed for good (error status, wrong type): retry ourselves
        this.close();
        this.setState('down');
        this.timer = setTimeout(() => this.connect(), this.delayMs);
        this.delayMs = Math.min(this.delayMs * 2, 30000);
      } else {
        // the browser reconnects with Last-Event-ID by itself
        this.setState('connecting');
      }
    };
  }

  close() {
    if (this.es) {
      this.es.onopen = this.es.onmessage = this.es.onerror = null;
      this.es.close();
      this.es = null;
    }
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = null;
    this.close();
    this.setState('down');
  }
}

/**
 * The newest event id, or 0 when there is none: every JSON answer of the
 * events API carries it as newest_id.
 */
export async function newestEventId(get, signal) {
  const page = await get('/api/v1/events?after=0&limit=1', { signal });
  return page && Number.isFinite(Number(page.newest_id)) ? Number(page.newest_id) : 0;
}

/** The last `count` events (oldest first) whose type matches filter, with the newest id. */
export async function recentEvents(get, { count = 50, filter = '', signal } = {}) {
  const newest = await newestEventId(get, signal);
  if (!newest) return { events: [], newest: 0 };
  const start = Math.max(0, newest - count);
  const params = new URLSearchParams({ after: String(start), limit: String(Math.min(count, 1000)) });
  if (filter) params.set('type', filter);
  const page = await get(`/api/v1/events?${params}`, { signal });
  const events = (page && page.events) || [];
  return { events: events.filter((e) => Number(e.id) <= newest), newest };
}
