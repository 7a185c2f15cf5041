// Client-side state of every printer. WebSocket frames are deep-merged in; components watch
// dotted paths ("print.progress", "temps.nozzle") and are called only when one of them changed.

const printers = new Map(); // id -> view object (DESIGN §4 + read_only)
const watchers = new Map(); // id -> Set<{paths, fn}>
const listWatchers = new Set(); // fn({added, removed, reset})
const liveWatchers = new Set();
let live = false; // true while the WebSocket is open and a snapshot has arrived

const FORBIDDEN = new Set(['__proto__', 'constructor', 'prototype']);

function isObj(v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function clone(v) {
  if (Array.isArray(v)) return v.map(clone);
  if (isObj(v)) {
    const o = {};
    for (const [k, x] of Object.entries(v)) if (!FORBIDDEN.has(k)) o[k] = clone(x);
    return o;
  }
  return v;
}

/** Merge `changes` into `target`; objects key by key, everything else (lists too) replaced whole.
 *  Pushes the dotted path of every replaced value to `out`. */
export function deepMerge(target, changes, prefix = '', out = []) {
  for (const [k, v] of Object.entries(changes)) {
    if (FORBIDDEN.has(k)) continue;
    const path = prefix ? `${prefix}.${k}` : k;
    if (isObj(v) && isObj(target[k])) {
      deepMerge(target[k], v, path, out);
    } else {
      target[k] = clone(v);
      out.push(path);
    }
  }
  return out;
}

/** Does a watcher on `watched` care about a change at `changed`? (either one inside the other) */
function touches(watched, changed) {
  return (
    watched === changed ||
    watched === '' ||
    changed.startsWith(`${watched}.`) ||
    watched.startsWith(`${changed}.`)
  );
}

function notify(id, changedPaths) {
  const set = watchers.get(id);
  if (!set) return;
  const p = printers.get(id);
  for (const w of [...set]) {
    if (!set.has(w)) continue; // removed by an earlier watcher
    const hit = changedPaths === null || w.paths.some((wp) => changedPaths.some((cp) => touches(wp, cp)));
    if (hit) {
      try { w.fn(p, changedPaths); } catch (e) { console.error('store watcher:', e); }
    }
  }
}

function notifyList(evt) {
  for (const fn of [...listWatchers]) {
    try { fn(evt); } catch (e) { console.error('store list watcher:', e); }
  }
}

function validView(v) {
  return isObj(v) && (typeof v.id === 'string' || typeof v.id === 'number');
}

export const store = {
  get(id) {
    return printers.get(id) || null;
  },
  list() {
    return [...printers.values()];
  },
  has(id) {
    return printers.has(id);
  },
  isLive() {
    return live;
  },

  /** A full list (WS snapshot or GET /api/printers): replaces everything. */
  snapshot(list) {
    const seen = new Set();
    const added = [];
    for (const v of Array.isArray(list) ? list : []) {
      if (!validView(v)) continue;
      const id = String(v.id);
      seen.add(id);
      if (!printers.has(id)) added.push(id);
      printers.set(id, clone({ ...v, id }));
    }
    const removed = [...printers.keys()].filter((id) => !seen.has(id));
    for (const id of removed) printers.delete(id);
    notifyList({ added, removed, reset: true });
    for (const id of seen) notify(id, null);
  },

  /** One `printer` frame: only the changed fields. Returns the changed paths. */
  change(id, changes) {
    const p = printers.get(String(id));
    if (!p || !isObj(changes)) return [];
    const paths = deepMerge(p, changes);
    if (paths.length) notify(String(id), paths);
    return paths;
  },

  add(view) {
    if (!validView(view)) return;
    const id = String(view.id);
    const isNew = !printers.has(id);
    printers.set(id, clone({ ...view, id }));
    if (isNew) notifyList({ added: [id], removed: [], reset: false });
    notify(id, null);
  },

  remove(id) {
    id = String(id);
    if (!printers.delete(id)) return;
    notifyList({ added: [], removed: [id], reset: false });
  },

  clear() {
    const removed = [...printers.keys()];
    printers.clear();
    if (removed.length) notifyList({ added: [], removed, reset: true });
  },

  /** watch(id, ['print.progress', 'link.state'], (printer, changedPaths|null) => ...) -> unsubscribe.
   *  The callback runs once immediately (if the printer is known) and then on every relevant change. */
  watch(id, paths, fn, { immediate = true } = {}) {
    id = String(id);
    if (!watchers.has(id)) watchers.set(id, new Set());
    const w = { paths, fn };
    watchers.get(id).add(w);
    if (immediate && printers.has(id)) fn(printers.get(id), null);
    return () => {
      const set = watchers.get(id);
      if (set) {
        set.delete(w);
        if (!set.size) watchers.delete(id);
      }
    };
  },

  onList(fn) {
    listWatchers.add(fn);
    return () => listWatchers.delete(fn);
  },

  setLive(v) {
    if (v === live) return;
    live = v;
    for (const fn of [...liveWatchers]) fn(live);
  },
  onLive(fn) {
    liveWatchers.add(fn);
    return () => liveWatchers.delete(fn);
  },
};

/** onReconnect(id, fn) -> unsubscribe: fn() each time the printer's link comes back (what was
 *  fetched from its storage while it was away has failed and wants fetching again). */
export function onReconnect(id, fn) {
  let was = store.get(id)?.link?.state === 'connected';
  return store.watch(id, ['link.state'], (p) => {
    const now = p.link?.state === 'connected';
    if (now && !was) fn();
    was = now;
  }, { immediate: false });
}

/** The printer's name as the user gave it, else its id (also for a printer not, or no longer, known). */
export function printerName(id) {
  const p = printers.get(String(id));
  return (p && typeof p.name === 'string' && p.name) || String(id ?? '');
}

/** Safe nested read: pick(p, 'temps.nozzle.current') */
export function pick(obj, path) {
  let v = obj;
  for (const k of path.split('.')) {
    if (v === null || v === undefined || typeof v !== 'object') return undefined;
    v = v[k];
  }
  return v;
}
