// Who is logged in: GET /api/auth/status gives the user, the CSRF token for writes and the expiry.
// It answers 200 whether or not anyone is logged in, so a fresh page logs no 401 in the console.
import { get, post, setCsrf, setCsrfRefresher } from './api.js';
import { emit } from './bus.js';

const STATUS = '/api/auth/status';
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
    } catch {
      armExpiry(); // the unit did not answer; a lost session would have come back as null
    }
  }, Math.min(ms, 2 ** 31 - 1));
}

/** The probe: the session when logged in, else null. Throws ApiError only when the unit cannot
 *  answer (network, timeout, 5xx); "not logged in" is an answer, not an error. */
async function probe(timeout) {
  const s = await get(STATUS, { auth: false, timeout });
  return s && s.authenticated && s.user ? s : null;
}

/** Load the session; returns it, or null when not logged in. With auth=true losing it emits auth:lost. */
export async function loadSession(auth = false) {
  const s = await probe();
  if (!s) {
    if (auth) emit('auth:lost', { path: STATUS }); // first: the app tells "expired" from "never in"
    clearSession();
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

/** For the WebSocket's reconnect loop: false when the session is gone (and auth:lost is emitted). */
export async function sessionAlive() {
  let s;
  try {
    s = await probe(8000);
  } catch {
    return true; // the unit did not answer: the loop tries again
  }
  if (!s) emit('auth:lost', { path: STATUS });
  return Boolean(s);
}
