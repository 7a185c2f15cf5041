// Who is logged in: GET /api/session gives the user, the CSRF token for writes and the expiry.
import { get, post, setCsrf, setCsrfRefresher, ApiError } from './api.js';
import { emit } from './bus.js';

let current = null; // {user: {id, name, role}, csrf, expires_at}
let expiryTimer = null;

export function session() {
  return current;
}

export function user() {
  return current?.user || null;
}

export function isAdmin() {
  return current?.user?.role === 'admin';
}

function armExpiry() {
  clearTimeout(expiryTimer);
  const exp = Number(current?.expires_at);
  if (!exp) return;
  // Check shortly after the announced expiry (the server may have extended it meanwhile).
  const ms = Math.max(5000, exp * 1000 - Date.now() + 2000);
  expiryTimer = setTimeout(async () => {
    try {
      await loadSession(true);
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 401)) armExpiry();
    }
  }, Math.min(ms, 2 ** 31 - 1));
}

/** Load the session; returns it, or null when not logged in. With auth=true a 401 emits auth:lost. */
export async function loadSession(auth = false) {
  let s;
  try {
    s = await get('/api/session', { auth });
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) {
      clearSession();
      return null;
    }
    throw e;
  }
  if (!s || !s.user) {
    clearSession();
    if (auth) emit('auth:lost', { path: '/api/session' });
    return null;
  }
  current = s;
  setCsrf(s.csrf);
  armExpiry();
  return s;
}

export function clearSession() {
  current = null;
  setCsrf(null);
  clearTimeout(expiryTimer);
}

setCsrfRefresher(async () => {
  const s = await loadSession(true);
  return s ? s.csrf : null;
});

export async function login(username, password) {
  await post('/api/auth/login', { username, password }, { auth: false });
  return loadSession();
}

export async function logout() {
  try {
    await post('/api/auth/logout', {}, { auth: false });
  } finally {
    clearSession();
  }
}

/** For the WebSocket's reconnect loop: false when the session is gone (api emits auth:lost). */
export async function sessionAlive() {
  try {
    const s = await get('/api/session', { auth: true, timeout: 8000 });
    if (s && s.user) return true;
    emit('auth:lost', { path: '/api/session' });
    return false;
  } catch (e) {
    return !(e instanceof ApiError && e.status === 401);
  }
}
