// fetch wrapper: same-origin cookies, JSON in/out, X-CSRF-Token on every write, errors as ApiError.
// A 401 on any authenticated call emits 'auth:lost' so the app can go back to the login page.
import { emit } from './bus.js';

const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
let csrfToken = null;
let csrfRefresher = null;

export class ApiError extends Error {
  constructor(status, code, message, body = null, retryAfter = null) {
    super(message || code || `HTTP ${status}`);
    this.status = status;
    this.code = code;
    this.body = body;
    this.retryAfter = retryAfter;
  }
}

export function setCsrf(token) {
  csrfToken = token || null;
}

/** The CSRF token for writes that do not go through api() (uploads with progress). */
export function csrf() {
  return csrfToken;
}

/** Fetch a fresh CSRF token (after a 403 csrf); null when none can be had. */
export async function refreshCsrf() {
  if (!csrfRefresher) return null;
  return csrfRefresher().catch(() => null);
}

/** fn() -> Promise<string|null>: fetches a fresh CSRF token (used once when the server says csrf). */
export function setCsrfRefresher(fn) {
  csrfRefresher = fn;
}

async function parse(res) {
  if (res.status === 204) return null;
  const text = await res.text();
  if (!text) return null;
  try { return JSON.parse(text); } catch { return { message: text.slice(0, 300) }; }
}

/**
 * api('GET', '/api/printers') / api('POST', '/api/x', {body}).
 * opts.auth=false: a 401 is an ordinary answer (login, setup, session probe), not "session lost".
 */
export async function api(method, path, body, opts = {}) {
  const { auth = true, timeout = 15000, retry = true } = opts;
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (UNSAFE.has(method) && csrfToken) headers['X-CSRF-Token'] = csrfToken;
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), timeout);
  let res;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
      cache: 'no-store',
      signal: ctl.signal,
    });
  } catch (e) {
    throw new ApiError(0, ctl.signal.aborted ? 'timeout' : 'network', null);
  } finally {
    clearTimeout(timer);
  }
  const data = await parse(res);
  if (res.ok) return data;
  const code = (data && typeof data.error === 'string' && data.error) || `http_${res.status}`;
  const message = data && typeof data.message === 'string' ? data.message : null;
  if (res.status === 403 && code === 'csrf' && retry && csrfRefresher) {
    // The token went stale (e.g. the session was renewed): fetch a fresh one and try once more.
    const fresh = await csrfRefresher().catch(() => null);
    if (fresh) return api(method, path, body, { ...opts, retry: false });
  }
  if (res.status === 401 && auth) emit('auth:lost', { path });
  const retryAfter = Number(res.headers.get('Retry-After')) || null;
  throw new ApiError(res.status, code, message, data, retryAfter);
}

export const get = (path, opts) => api('GET', path, undefined, opts);
export const post = (path, body = {}, opts) => api('POST', path, body, opts);
export const put = (path, body = {}, opts) => api('PUT', path, body, opts);
export const del = (path, opts) => api('DELETE', path, undefined, opts);

/** Lists may come bare or wrapped ({"items": [...]} / {"users": [...]}); accept both. */
export function asList(data, key) {
  if (Array.isArray(data)) return data;
  if (data && Array.isArray(data[key])) return data[key];
  if (data && Array.isArray(data.items)) return data.items;
  return [];
}

export const enc = encodeURIComponent;
