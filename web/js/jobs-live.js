// What the queue and the history know about each printer, for its card and page: the bed's state
// (the queue's readiness: after a print the bed is "not clear" until someone says it is) and the
// record of the current print (its plate picture). Fetched once when a card first asks, kept live
// by `queue` and `history` frames, and fetched again after the WebSocket reconnects (frames sent
// while it was down are lost).
import { ApiError, get } from './api.js';
import { on } from './bus.js';
import { onWsBack } from './ws.js';

const beds = new Map(); // printer id -> {id, bed_clear, ready, reason}
const records = new Map(); // printer id -> latest history record seen
const watchers = new Set(); // {id, fn}
let wanted = false;
let loading = null;
let queueOn = true; // false when this unit runs no queue (503): no bed actions then

function notify(id) {
  for (const w of [...watchers]) {
    if (w.id === id) {
      try { w.fn(); } catch (e) { console.error('jobs-live watcher:', e); }
    }
  }
}

function notifyAll() {
  for (const w of [...watchers]) {
    try { w.fn(); } catch (e) { console.error('jobs-live watcher:', e); }
  }
}

function keepRecord(r) {
  if (!r || typeof r !== 'object' || typeof r.printer_id !== 'string') return false;
  const cur = records.get(r.printer_id);
  if (cur && Number(cur.id) > Number(r.id)) return false; // an older print's late update
  records.set(r.printer_id, r);
  return true;
}

async function load() {
  if (loading) return loading;
  loading = (async () => {
    const [q, hist] = await Promise.allSettled([
      get('/api/queue/printers'),
      get('/api/history?outcome=running&limit=500'),
    ]);
    if (q.status === 'fulfilled') {
      queueOn = true;
      beds.clear();
      for (const p of Array.isArray(q.value?.printers) ? q.value.printers : []) {
        if (p && typeof p.id === 'string') beds.set(p.id, p);
      }
    } else if (q.reason instanceof ApiError && q.reason.status === 503) {
      queueOn = false;
      beds.clear();
    }
    if (hist.status === 'fulfilled') {
      for (const r of Array.isArray(hist.value?.items) ? hist.value.items : []) keepRecord(r);
    }
    notifyAll();
  })().finally(() => { loading = null; });
  return loading;
}

on('ws:queue', (msg) => {
  const p = msg?.printer;
  if (p && typeof p.id === 'string') {
    beds.set(p.id, p);
    notify(p.id);
  }
});

on('ws:history', (msg) => {
  if (keepRecord(msg?.record)) notify(msg.record.printer_id);
});

onWsBack(() => { if (wanted) load(); });

on('auth:lost', () => {
  beds.clear();
  records.clear();
  wanted = false;
});

/** watchPrinterJobs(id, fn) -> unsubscribe; fn() runs now and whenever bed or record changes. */
export function watchPrinterJobs(id, fn) {
  const w = { id: String(id), fn };
  watchers.add(w);
  if (!wanted) {
    wanted = true;
    load();
  }
  fn();
  return () => watchers.delete(w);
}

export function bedOf(id) {
  return beds.get(String(id)) || null;
}

export function recordOf(id) {
  return records.get(String(id)) || null;
}

export function queueAvailable() {
  return queueOn;
}

/** After POST .../bed: the answer is the new readiness (the frame follows; both are fine). */
export function setBed(readiness) {
  if (readiness && typeof readiness.id === 'string') {
    beds.set(readiness.id, readiness);
    notify(readiness.id);
  }
}
