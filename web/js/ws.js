// Live updates over /api/ws: snapshot first, then printer deltas, command outcomes, added/removed.
// Reconnects forever with capped exponential backoff and jitter; reports its state on the bus
// ('ws:state' {state: 'connecting'|'open'|'lost', retryAt, attempt}) for the banner.
import { emit, on } from './bus.js';
import { store } from './store.js';

const BASE_MS = 1000;
const MAX_MS = 30000;

let sock = null;
let attempt = 0;
let timer = null;
let wanted = false;
let probe = null; // async () => boolean: is the session still valid? (false -> stop, app logs out)
let state = 'idle';

function setState(s, extra = {}) {
  state = s;
  emit('ws:state', { state: s, attempt, ...extra });
}

export function wsState() {
  return state;
}

/** onWsBack(fn) -> unsubscribe: fn() each time the connection opens again after it was lost
 *  (frames sent while it was down are gone: what a page fetched wants fetching again). */
export function onWsBack(fn) {
  let lost = false;
  return on('ws:state', (ev) => {
    if (ev?.state === 'lost') lost = true;
    if (ev?.state === 'open' && lost) { lost = false; fn(); }
  });
}

function url() {
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${proto}//${location.host}/api/ws`;
}

function handle(msg) {
  if (!msg || typeof msg !== 'object') return;
  switch (msg.type) {
    case 'snapshot':
      store.snapshot(msg.printers);
      attempt = 0;
      store.setLive(true);
      setState('open');
      break;
    case 'printer':
      if (msg.id !== undefined && msg.changes) store.change(msg.id, msg.changes);
      break;
    case 'printer_added':
      store.add(msg.printer);
      break;
    case 'printer_removed':
      store.remove(msg.id);
      break;
    case 'command':
      emit('command', msg);
      break;
    default:
      emit(`ws:${msg.type}`, msg); // other event types: whoever cares may listen
  }
}

function open() {
  clearTimeout(timer);
  timer = null;
  if (!wanted) return;
  setState('connecting');
  let ws;
  try {
    ws = new WebSocket(url());
  } catch (e) {
    schedule();
    return;
  }
  sock = ws;
  ws.addEventListener('message', (ev) => {
    if (sock !== ws || typeof ev.data !== 'string') return;
    let msg;
    try { msg = JSON.parse(ev.data); } catch { return; }
    handle(msg);
  });
  ws.addEventListener('close', () => {
    if (sock !== ws) return;
    sock = null;
    store.setLive(false);
    if (wanted) schedule();
  });
  ws.addEventListener('error', () => { /* 'close' follows */ });
}

async function schedule() {
  attempt += 1;
  const exp = Math.min(MAX_MS, BASE_MS * 2 ** Math.min(attempt - 1, 10));
  const delay = Math.round(exp / 2 + Math.random() * (exp / 2)); // jitter: 50..100 %
  setState('lost', { retryAt: Date.now() + delay });
  // A closed socket may mean the session ended: ask once, and stop if it did.
  if (probe) {
    const ok = await probe().catch(() => true);
    if (!ok) { stopWs(); return; }
  }
  if (!wanted) return;
  clearTimeout(timer);
  timer = setTimeout(open, delay);
}

/** Start (or keep) the live connection. sessionProbe: async () => false when logged out. */
export function startWs(sessionProbe) {
  probe = sessionProbe || null;
  if (wanted && (sock || timer)) return;
  wanted = true;
  attempt = 0;
  open();
}

export function stopWs() {
  wanted = false;
  clearTimeout(timer);
  timer = null;
  if (sock) {
    const ws = sock;
    sock = null;
    try { ws.close(1000); } catch { /* ignore */ }
  }
  store.setLive(false);
  setState('idle');
}

/** "Retry now" from the banner. */
export function reconnectNow() {
  if (!wanted) return;
  if (sock && sock.readyState <= 1) return;
  open();
}

// Coming back online or to the tab: don't wait out a long backoff.
window.addEventListener('online', () => { if (wanted && !sock) reconnectNow(); });
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible' && wanted && !sock && timer) reconnectNow();
});
