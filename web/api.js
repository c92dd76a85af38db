// SPDX-License-Identifier: MIT
// web/api.js -- the dashboard's only way to the daemon: fetch() over the JSON
// API at /api/v1 with the token kept in localStorage, and API errors turned
// into ApiError carrying the server's {"error":{"code","message"}}.

const TOKEN_KEY = 'relengd.token';

/** An answer with a non-2xx status, or no answer at all (status 0). */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

export function getToken() {
  try {
    return localStorage.getItem(TOKEN_KEY) || '';
  } catch {
    return '';
  }
}

/** Stores (or with '' forgets) the token and tells listeners of 'relengd:token'. */
export function setToken(token) {
  const t = (token || '').trim();
  try {
    if (t) localStorage.setItem(TOKEN_KEY, t);
    else localStorage.removeItem(TOKEN_KEY);
  } catch {
    // private mode without storage: the token lasts for this page only
    memoryToken = t;
  }
  window.dispatchEvent(new CustomEvent('relengd:token', { detail: { hasToken: !!t } }));
}

let memoryToken = '';
function currentToken() {
  return getToken() || memoryToken;
}

/**
 * request('GET', '/api/v1/status') -> parsed JSON (null for an empty body).
 * Throws ApiError with the server's message on a non-2xx answer, or with
 * status 0 when the daemon cannot be reached.
 */
export async function request(method, path, body, { signal } = {}) {
  const headers = { Accept: 'application/json' };
  const token = currentToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  const init = { method, headers, signal, cache: 'no-store' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (err) {
    if (err && err.name === 'AbortError') throw err;
    throw new ApiError(0, 'unreachable', 'The relengd daemon cannot be reached.');
  }
  const text = await res.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!res.ok) {
    const e = data && data.error ? data.error : null;
    throw new ApiError(
      res.status,
      (e && e.code) || `http_${res.status}`,
      (e && e.message) || `${method} ${path}: HTTP ${res.status} ${res.statusText}`.trim(),
    );
  }
  if (text && data === null) {
    throw new ApiError(res.status, 'bad_json', `${method} ${path}: the answer is not JSON`);
  }
  return data;
}

export const get = (path, opts) => request('GET', path, undefined, opts);
export const post = (path, body, opts) => request('POST', path, body ?? {}, opts);
export const del = (path, opts) => request('DELETE', path, undefined, opts);

/** "/api/v1/events?k=v" from an object; empty values are left out. */
export function withQuery(path, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}

/**
 * The URL for an EventSource on /api/v1/events. EventSource cannot send an
 * Authorization header, so a set token travels as ?access_token=.
 */
export function eventStreamUrl(params) {
  const token = currentToken();
  return withQuery('/api/v1/events', { ...params, access_token: token || undefined });
}

/** True for errors that mean "you need a (better) token". */
export function isAuthError(err) {
  return err instanceof ApiError && (err.status === 401 || err.status === 403);
}
